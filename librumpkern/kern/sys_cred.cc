// Credential system calls, with Linux's permission rules (root = euid 0,
// standing in for CAP_SETUID/CAP_SETGID).
#include <cstring>

#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"

namespace rump {

namespace {

constexpr uid_t kNoId = static_cast<uid_t>(-1);

// Linux's capability effects of a change of user ids (without
// SECBIT_KEEP_CAPS): leaving root in all of the real, effective and saved
// ids drops the permitted and effective sets; the effective id leaving 0
// drops the effective set, and coming back to 0 restores it from the
// permitted one.
void fix_caps_for_uids(const Cred& o, Cred& n) {
  if ((o.uid == 0 || o.euid == 0 || o.suid == 0) && n.uid != 0 && n.euid != 0 && n.suid != 0) {
    n.cap_permitted = 0;
    n.cap_effective = 0;
  }
  if (o.euid == 0 && n.euid != 0) n.cap_effective = 0;
  if (o.euid != 0 && n.euid == 0) n.cap_effective = n.cap_permitted;
}

// Applies change to a private copy of the caller's credentials and
// publishes it. change returns an errno or 0. As Linux's commit_creds, a
// change of the effective or file-system ids makes the process not
// dumpable and forgets its parent-death signal.
template <class Fn>
Result<long> change_cred(Lwp& l, Fn&& change) {
  Proc& p = l.proc();
  Ref<Cred> cur = p.cred();
  Ref<Cred> n = TRY(cur->clone());
  if (int e = change(*cur, *n)) return err(e);
  fix_caps_for_uids(*cur, *n);
  bool ids_changed = cur->euid != n->euid || cur->egid != n->egid || cur->fsuid != n->fsuid ||
                     cur->fsgid != n->fsgid;
  p.set_cred(std::move(n));
  if (ids_changed) {
    MutexLocker g(p.lock_);
    p.dumpable_ = 0;
    p.pdeath_signal_ = 0;
  }
  l.refresh_cred();
  return 0;
}

bool one_of(uid_t v, uid_t a, uid_t b, uid_t c) { return v == a || v == b || v == c; }

}  // namespace

Result<long> sys_getuid(Lwp& l) { return l.cred().uid; }
Result<long> sys_geteuid(Lwp& l) { return l.cred().euid; }
Result<long> sys_getgid(Lwp& l) { return l.cred().gid; }
Result<long> sys_getegid(Lwp& l) { return l.cred().egid; }

Result<long> sys_setuid(Lwp& l, uid_t uid) {
  if (uid == kNoId) return err(EINVAL);
  return change_cred(l, [&](const Cred& o, Cred& n) {
    if (o.is_root()) {
      n.uid = n.euid = n.suid = n.fsuid = uid;
    } else if (uid == o.uid || uid == o.suid) {
      n.euid = n.fsuid = uid;
    } else {
      return EPERM;
    }
    return 0;
  });
}

Result<long> sys_setgid(Lwp& l, gid_t gid) {
  if (gid == kNoId) return err(EINVAL);
  return change_cred(l, [&](const Cred& o, Cred& n) {
    if (o.is_root()) {
      n.gid = n.egid = n.sgid = n.fsgid = gid;
    } else if (gid == o.gid || gid == o.sgid) {
      n.egid = n.fsgid = gid;
    } else {
      return EPERM;
    }
    return 0;
  });
}

Result<long> sys_setreuid(Lwp& l, uid_t ruid, uid_t euid) {
  return change_cred(l, [&](const Cred& o, Cred& n) {
    bool root = o.is_root();
    if (ruid != kNoId) {
      if (!root && ruid != o.uid && ruid != o.euid) return EPERM;
      n.uid = ruid;
    }
    if (euid != kNoId) {
      if (!root && !one_of(euid, o.uid, o.euid, o.suid)) return EPERM;
      n.euid = euid;
    }
    // The saved id follows the effective one when the real id is set, or
    // the effective id is set to something other than the old real id.
    if (ruid != kNoId || (euid != kNoId && euid != o.uid)) n.suid = n.euid;
    n.fsuid = n.euid;
    return 0;
  });
}

Result<long> sys_setregid(Lwp& l, gid_t rgid, gid_t egid) {
  return change_cred(l, [&](const Cred& o, Cred& n) {
    bool root = o.is_root();
    if (rgid != kNoId) {
      if (!root && rgid != o.gid && rgid != o.egid) return EPERM;
      n.gid = rgid;
    }
    if (egid != kNoId) {
      if (!root && !one_of(egid, o.gid, o.egid, o.sgid)) return EPERM;
      n.egid = egid;
    }
    if (rgid != kNoId || (egid != kNoId && egid != o.gid)) n.sgid = n.egid;
    n.fsgid = n.egid;
    return 0;
  });
}

Result<long> sys_setresuid(Lwp& l, uid_t ruid, uid_t euid, uid_t suid) {
  return change_cred(l, [&](const Cred& o, Cred& n) {
    if (!o.is_root()) {
      for (uid_t v : {ruid, euid, suid})
        if (v != kNoId && !one_of(v, o.uid, o.euid, o.suid)) return EPERM;
    }
    if (ruid != kNoId) n.uid = ruid;
    if (euid != kNoId) n.euid = euid;
    if (suid != kNoId) n.suid = suid;
    n.fsuid = n.euid;
    return 0;
  });
}

Result<long> sys_setresgid(Lwp& l, gid_t rgid, gid_t egid, gid_t sgid) {
  return change_cred(l, [&](const Cred& o, Cred& n) {
    if (!o.is_root()) {
      for (gid_t v : {rgid, egid, sgid})
        if (v != kNoId && !one_of(v, o.gid, o.egid, o.sgid)) return EPERM;
    }
    if (rgid != kNoId) n.gid = rgid;
    if (egid != kNoId) n.egid = egid;
    if (sgid != kNoId) n.sgid = sgid;
    n.fsgid = n.egid;
    return 0;
  });
}

Result<long> sys_getresuid(Lwp& l, UserPtr<uid_t> ruid, UserPtr<uid_t> euid, UserPtr<uid_t> suid) {
  const Cred& c = l.cred();
  TRY(copyout_obj(l, c.uid, ruid));
  TRY(copyout_obj(l, c.euid, euid));
  TRY(copyout_obj(l, c.suid, suid));
  return 0;
}

Result<long> sys_getresgid(Lwp& l, UserPtr<gid_t> rgid, UserPtr<gid_t> egid, UserPtr<gid_t> sgid) {
  const Cred& c = l.cred();
  TRY(copyout_obj(l, c.gid, rgid));
  TRY(copyout_obj(l, c.egid, egid));
  TRY(copyout_obj(l, c.sgid, sgid));
  return 0;
}

Result<long> sys_getgroups(Lwp& l, int size, UserPtr<gid_t> list) {
  if (size < 0) return err(EINVAL);
  const Cred& c = l.cred();
  size_t n = c.ngroups();
  if (size == 0) return static_cast<long>(n);
  if (static_cast<size_t>(size) < n) return err(EINVAL);
  TRY(copyout(l, c.groups(), list.addr, n * sizeof(gid_t)));
  return static_cast<long>(n);
}

Result<long> sys_setgroups(Lwp& l, size_t size, UserPtr<gid_t> list) {
  // Linux checks the privilege first, then the size.
  if (!l.cred().is_root()) return err(EPERM);
  if (size > static_cast<size_t>(Cred::kMaxGroups)) return err(EINVAL);
  Kmem& kmem = l.kernel().kmem();
  gid_t* groups = nullptr;
  if (size) {
    groups = static_cast<gid_t*>(kmem.alloc(size * sizeof(gid_t)));
    if (!groups) return err(ENOMEM);
  }
  Result<void> in = copyin(l, list.addr, groups, size * sizeof(gid_t));
  if (!in.ok()) {
    Kmem::free(groups);
    return Error{in.error()};
  }
  Result<long> r = change_cred(l, [&](const Cred&, Cred& n) {
    Result<void> s = n.set_groups(groups, size);
    return s.ok() ? 0 : s.error();
  });
  Kmem::free(groups);
  return r;
}

// --- capabilities: capget(2), capset(2)

namespace {

constexpr uint32_t kCapVersion1 = 0x19980330;  // one 32-bit word per set
constexpr uint32_t kCapVersion2 = 0x20071026;  // two words (deprecated)
constexpr uint32_t kCapVersion3 = 0x20080522;  // two words

struct CapHeader {
  uint32_t version;
  int pid;
};
struct CapData {
  uint32_t effective;
  uint32_t permitted;
  uint32_t inheritable;
};

// Checks the header's version: the number of data words it implies, or,
// for an unknown version, the preferred one written back and EINVAL.
Result<int> cap_validate(Lwp& l, UserPtr<CapHeader> hdr, CapHeader& h) {
  h = TRY(copyin_obj(l, hdr));
  switch (h.version) {
    case kCapVersion1: return 1;
    case kCapVersion2:
    case kCapVersion3: return 2;
    default: {
      uint32_t v = kCapVersion3;
      TRY(copyout(l, &v, hdr.addr, sizeof v));
      return err(EINVAL);
    }
  }
}

}  // namespace

Result<long> sys_capget(Lwp& l, UserPtr<void> hdrp, UserPtr<void> datap) {
  CapHeader h;
  UserPtr<CapHeader> hdr{hdrp.addr};
  Result<int> words = cap_validate(l, hdr, h);
  // An unknown version with no data buffer is how programs ask for the
  // preferred version: success.
  if (!words.ok()) return !datap && words.error() == EINVAL ? Result<long>(0) : Error{words.error()};
  if (!datap) return 0;
  int n = words.value();
  if (h.pid < 0) return err(EINVAL);
  Ref<Cred> c = l.proc().cred();
  if (h.pid != 0 && h.pid != l.proc().pid()) {
    ProcTable& t = l.kernel().procs();
    MutexLocker g(t.lock());
    Proc* q = t.find_locked(h.pid);
    if (!q || q == t.proc0()) return err(ESRCH);
    q->assert_tree_locked();
    if (q->state_ != Proc::State::kActive) return err(ESRCH);
    c = q->cred();
  }
  CapData d[2] = {};
  for (int i = 0; i < 2; i++) {
    d[i].effective = static_cast<uint32_t>(c->cap_effective >> (32 * i));
    d[i].permitted = static_cast<uint32_t>(c->cap_permitted >> (32 * i));
    d[i].inheritable = static_cast<uint32_t>(c->cap_inheritable >> (32 * i));
  }
  TRY(copyout(l, d, datap.addr, sizeof(CapData) * static_cast<size_t>(n)));
  return 0;
}

Result<long> sys_capset(Lwp& l, UserPtr<void> hdrp, UserPtr<void> datap) {
  CapHeader h;
  int n = TRY(cap_validate(l, UserPtr<CapHeader>{hdrp.addr}, h));
  // Only the caller's own capabilities can be set.
  if (h.pid != 0 && h.pid != l.proc().pid()) return err(EPERM);
  CapData d[2] = {};
  TRY(copyin(l, datap.addr, d, sizeof(CapData) * static_cast<size_t>(n)));
  uint64_t eff = 0, perm = 0, inh = 0;
  for (int i = 0; i < n; i++) {
    eff |= uint64_t{d[i].effective} << (32 * i);
    perm |= uint64_t{d[i].permitted} << (32 * i);
    inh |= uint64_t{d[i].inheritable} << (32 * i);
  }
  eff &= kCapAll, perm &= kCapAll, inh &= kCapAll;
  return change_cred(l, [&](const Cred& o, Cred& c) {
    // Linux's rules: inheritable within the old inheritable and permitted
    // sets (unless CAP_SETPCAP), permitted only shrinks, effective within
    // the new permitted set.
    if (!o.capable(kCapSetpcap) && (inh & ~(o.cap_inheritable | o.cap_permitted)) != 0) return EPERM;
    if ((perm & ~o.cap_permitted) != 0) return EPERM;
    if ((eff & ~perm) != 0) return EPERM;
    c.cap_effective = eff;
    c.cap_permitted = perm;
    c.cap_inheritable = inh;
    return 0;
  });
}

}  // namespace rump
