// Credential system calls, with Linux's permission rules (root = euid 0,
// standing in for CAP_SETUID/CAP_SETGID).
#include <cstring>

#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"

namespace rump {

namespace {

constexpr uid_t kNoId = static_cast<uid_t>(-1);

// Applies change to a private copy of the caller's credentials and
// publishes it. change returns an errno or 0.
template <class Fn>
Result<long> change_cred(Lwp& l, Fn&& change) {
  Proc& p = l.proc();
  Ref<Cred> cur = p.cred();
  Ref<Cred> n = TRY(cur->clone());
  if (int e = change(*cur, *n)) return err(e);
  p.set_cred(std::move(n));
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

}  // namespace rump
