// Signal system calls: kill, rt_sigaction, rt_sigprocmask, rt_sigpending.
#include <cstring>

#include "kern/copy.h"
#include "kern/fork.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"

namespace rump {

namespace {

// May the sender signal the target? Root, or the sender's real or
// effective uid equals the target's real or saved uid (Linux); SIGCONT
// within a session too.
bool can_signal(const Cred& s, const Proc& sender, Proc& target, int sig)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(sender.tree_lock(), target.tree_lock()) {
  if (s.is_root()) return true;
  Ref<Cred> t = target.cred();
  if (s.uid == t->uid || s.uid == t->suid || s.euid == t->uid || s.euid == t->suid) return true;
  if (sig == SIGCONT && sender.sid_ == target.sid_) return true;
  return false;
}

}  // namespace

Result<long> sys_kill(Lwp& l, pid_t pid, int sig) {
  if (sig < 0 || sig > kNsig) return err(EINVAL);
  if (pid == INT32_MIN) return err(ESRCH);
  Kernel& k = l.kernel();
  Proc& self = l.proc();
  const Cred& cred = l.cred();
  // Targets that must die at once are collected and ended after the lock.
  pid_t fatal[64];
  int nfatal = 0;
  bool found = false, permitted = false;
  {
    ProcTable& t = k.procs();
    MutexLocker g(t.lock());
    self.assert_tree_locked();
    auto consider = [&](Proc* p) {
      self.assert_tree_locked();
      p->assert_tree_locked();
      found = true;
      if (!can_signal(cred, self, *p, sig)) return;
      permitted = true;
      if (sig == 0) return;
      if (post_signal(*p, sig) && nfatal < 64) fatal[nfatal++] = p->pid();
    };
    if (pid > 0) {
      if (Proc* p = t.find_locked(pid)) {
        p->assert_tree_locked();
        if (p != t.proc0() && p->state_ == Proc::State::kActive) consider(p);
        else if (p->state_ == Proc::State::kZombie) found = permitted = true;  // Linux: 0
      }
    } else {
      pid_t pgid = pid == 0 ? self.pgid_ : -pid;
      t.for_each_locked([&](Proc& p) {
        p.assert_tree_locked();
        if (&p == t.proc0() || p.state_ != Proc::State::kActive) return;
        if (pid == -1) {
          if (&p == t.init() || &p == &self) return;
        } else if (p.pgid_ != pgid) {
          return;
        }
        consider(&p);
      });
    }
  }
  for (int i = 0; i < nfatal; i++) kill_proc(k, fatal[i], sig);
  if (!found) return err(ESRCH);
  if (!permitted) return err(EPERM);
  return 0;
}

Result<long> sys_rt_sigaction(Lwp& l, int sig, UserPtr<void> act, UserPtr<void> oact, size_t sigsetsize) {
  if (sigsetsize != sizeof(SigSet)) return err(EINVAL);
  if (!sig_valid(sig)) return err(EINVAL);
  KernelSigaction na{};
  if (act) {
    TRY(copyin(l, act.addr, &na, sizeof na));
    if (sig == SIGKILL || sig == SIGSTOP) return err(EINVAL);
    na.mask &= ~kCantMask;
  }
  Proc& p = l.proc();
  RefPtr<SigActs> sa;
  {
    MutexLocker g(p.lock_);
    sa = p.sigacts_;
  }
  if (!sa) return err(EINVAL);
  KernelSigaction old;
  {
    SpinLocker g(sa->lock);
    old = sa->act[sig - 1];
    if (act) sa->act[sig - 1] = na;
  }
  if (act) {
    // Setting a signal to be ignored discards it if pending (POSIX).
    bool ignored = na.handler == reinterpret_cast<uintptr_t>(SIG_IGN) ||
                   (na.handler == reinterpret_cast<uintptr_t>(SIG_DFL) &&
                    sig_default_action(sig) == SigDefault::kIgnore);
    if (ignored) p.sigpending_.fetch_and(~sig_bit(sig));
  }
  if (oact) TRY(copyout(l, &old, oact.addr, sizeof old));
  return 0;
}

Result<long> sys_rt_sigprocmask(Lwp& l, int how, UserPtr<sigset_t> set, UserPtr<sigset_t> oset,
                                size_t sigsetsize) {
  if (sigsetsize != sizeof(SigSet)) return err(EINVAL);
  SigSet old = l.sigmask_.load();
  if (set) {
    SigSet s;
    TRY(copyin(l, set.addr, &s, sizeof s));
    s &= ~kCantMask;
    SigSet n;
    switch (how) {
      case SIG_BLOCK: n = old | s; break;
      case SIG_UNBLOCK: n = old & ~s; break;
      case SIG_SETMASK: n = s; break;
      default: return err(EINVAL);
    }
    MutexLocker g(l.proc().lock_);
    l.sigmask_.store(n);
  }
  if (oset) TRY(copyout(l, &old, oset.addr, sizeof old));
  return 0;
}

Result<long> sys_rt_sigpending(Lwp& l, UserPtr<sigset_t> set, size_t sigsetsize) {
  if (sigsetsize > sizeof(SigSet)) return err(EINVAL);
  SigSet pend = l.proc().sigpending_.load() & l.sigmask_.load();
  TRY(copyout(l, &pend, set.addr, sigsetsize));
  return 0;
}

}  // namespace rump
