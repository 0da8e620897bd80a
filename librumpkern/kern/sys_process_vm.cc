// process_vm_readv(2) and process_vm_writev(2): copies between the
// caller's memory and another process's, whichever spaces they live in
// (the host's, or isolated ones: then every address on either side is
// checked, and a bad one ends the copy).
//
// Linux's rules: flags must be 0; at most 1024 segments a side (EINVAL); an
// empty local side copies nothing and looks no further; then ESRCH for no
// such process and EPERM unless the caller may trace it (the same real uid
// and gid as all of the target's ids, and the target dumpable, or
// CAP_SYS_PTRACE). The copy stops at the first address that faults, on
// either side: the result is the bytes copied before it, or EFAULT if none
// were.
//
// The target's space is held (UserSpace::hold) for the copy, so that the
// target may exit meanwhile; data goes through a kernel buffer, one chunk
// at a time, so no lock is held while either space is touched.
#include <sys/uio.h>

#include <climits>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "base/kmem.h"
#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"

namespace rump {

namespace {

constexpr unsigned long kMaxIov = 1024;  // Linux UIO_MAXIOV
constexpr size_t kChunk = 512;

// The iovec array of n entries at u, in kernel memory the caller frees.
Result<iovec*> copyin_iov(Lwp& l, UserPtr<void> u, unsigned long n) {
  if (n == 0) return nullptr;
  auto* v = static_cast<iovec*>(l.kernel().kmem().alloc(n * sizeof(iovec)));
  if (!v) return err(ENOMEM);
  Result<void> r = copyin(l, u.addr, v, n * sizeof(iovec));
  if (!r.ok()) {
    Kmem::free(v);
    return Error{r.error()};
  }
  for (unsigned long i = 0; i < n; i++) {
    if (static_cast<ssize_t>(v[i].iov_len) < 0) {
      Kmem::free(v);
      return err(EINVAL);
    }
  }
  return v;
}

// May the caller reach into target's memory? (Linux's ptrace access check
// with the real ids.) Holds the target's space for the caller: *space is
// its space, held, or null for the host's.
Result<void> attach_space(Lwp& l, pid_t pid, UserSpace** space) {
  ProcTable& t = l.kernel().procs();
  MutexLocker g(t.lock());
  Proc* p = pid == 0 ? nullptr : t.find_locked(pid);
  if (!p || p == t.proc0()) return err(ESRCH);
  p->assert_tree_locked();
  if (p->state_ != Proc::State::kActive) return err(ESRCH);
  const Cred& c = l.cred();
  MutexLocker pg(p->lock_);
  if (p->exiting_) return err(ESRCH);
  if (p != &l.proc() && !c.capable(kCapSysPtrace)) {
    const Cred& tc = *p->cred_;
    bool same = c.uid == tc.uid && c.uid == tc.euid && c.uid == tc.suid && c.gid == tc.gid &&
                c.gid == tc.egid && c.gid == tc.sgid;
    if (!same || p->dumpable_ == 0) return err(EPERM);
  }
  *space = p->space_;
  if (*space) (*space)->hold();
  return {};
}

Result<long> process_vm(Lwp& l, pid_t pid, UserPtr<void> lvec, unsigned long liovcnt, UserPtr<void> rvec,
                        unsigned long riovcnt, unsigned long flags, bool write) {
  if (flags != 0) return err(EINVAL);
  if (liovcnt > kMaxIov || riovcnt > kMaxIov) return err(EINVAL);
  iovec* lv = TRY(copyin_iov(l, lvec, liovcnt));
  absl::Cleanup free_lv = [lv] { Kmem::free(lv); };
  size_t total = 0;
  for (unsigned long i = 0; i < liovcnt; i++) {
    if (lv[i].iov_len > SSIZE_MAX - total) return err(EINVAL);
    total += lv[i].iov_len;
  }
  if (total == 0) return 0;
  iovec* rv = TRY(copyin_iov(l, rvec, riovcnt));
  absl::Cleanup free_rv = [rv] { Kmem::free(rv); };
  size_t rtotal = 0;
  for (unsigned long i = 0; i < riovcnt; i++) {
    if (rv[i].iov_len > SSIZE_MAX - rtotal) return err(EINVAL);
    rtotal += rv[i].iov_len;
  }
  if (rtotal == 0) return 0;
  UserSpace* remote = nullptr;
  TRY(attach_space(l, pid, &remote));
  absl::Cleanup release = [remote] {
    if (remote) remote->release();
  };
  UserSpace* local = l.user_space();

  // Walk both sides together, a chunk at a time.
  unsigned char buf[kChunk];
  size_t copied = 0;
  unsigned long li = 0, ri = 0;
  size_t loff = 0, roff = 0;
  int fault = 0;
  while (li < liovcnt && ri < riovcnt && !fault) {
    if (loff == lv[li].iov_len) {
      li++, loff = 0;
      continue;
    }
    if (roff == rv[ri].iov_len) {
      ri++, roff = 0;
      continue;
    }
    size_t n = lv[li].iov_len - loff;
    if (rv[ri].iov_len - roff < n) n = rv[ri].iov_len - roff;
    if (n > kChunk) n = kChunk;
    uintptr_t la = reinterpret_cast<uintptr_t>(lv[li].iov_base) + loff;
    uintptr_t ra = reinterpret_cast<uintptr_t>(rv[ri].iov_base) + roff;
    // Source first, then as much of it as the destination takes.
    size_t got = 0, put = 0;
    Result<void> in = write ? space_copy(local, false, la, buf, n, &got) : space_copy(remote, false, ra, buf, n, &got);
    if (!in.ok()) fault = in.error();
    Result<void> out = write ? space_copy(remote, true, ra, buf, got, &put) : space_copy(local, true, la, buf, got, &put);
    if (!out.ok()) fault = out.error();
    copied += put;
    loff += put;
    roff += put;
  }
  if (copied == 0 && fault) return err(fault);
  return static_cast<long>(copied);
}

}  // namespace

Result<long> sys_process_vm_readv(Lwp& l, pid_t pid, UserPtr<void> local_iov, unsigned long liovcnt,
                                  UserPtr<void> remote_iov, unsigned long riovcnt, unsigned long flags) {
  return process_vm(l, pid, local_iov, liovcnt, remote_iov, riovcnt, flags, false);
}

Result<long> sys_process_vm_writev(Lwp& l, pid_t pid, UserPtr<void> local_iov, unsigned long liovcnt,
                                   UserPtr<void> remote_iov, unsigned long riovcnt, unsigned long flags) {
  return process_vm(l, pid, local_iov, liovcnt, remote_iov, riovcnt, flags, true);
}

}  // namespace rump
