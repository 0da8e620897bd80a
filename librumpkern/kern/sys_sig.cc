// Signal system calls: kill, tkill, tgkill, rt_sigqueueinfo,
// rt_tgsigqueueinfo, rt_sigaction, rt_sigprocmask, rt_sigpending,
// rt_sigtimedwait, rt_sigsuspend, pause, sigaltstack.
#include <cstring>

#include "kern/clock.h"
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

// Linux's kernel_siginfo: what a sender's siginfo_t carries in (the rest
// of the 128 bytes must be zero for si_codes of no known layout).
constexpr size_t kKernelSiginfoSize = 48;

// Does a siginfo with this si_code have a layout Linux knows (so that the
// tail past kKernelSiginfoSize carries nothing)?
bool known_siginfo_layout(int sig, int code) {
  if (code == SI_KERNEL) return true;
  if (code > SI_USER) {
    int limit;
    switch (sig) {
      case SIGILL: limit = 11; break;
      case SIGFPE: limit = 15; break;
      case SIGSEGV: limit = 10; break;
      case SIGBUS: limit = 5; break;
      case SIGTRAP: limit = 6; break;
      case SIGCHLD: limit = 6; break;
      case SIGSYS: limit = 2; break;
      default: limit = 6; break;  // NSIGPOLL
    }
    return code <= limit;
  }
  return code >= SI_DETHREAD || code == SI_ASYNCNL;
}

// rt_sigqueueinfo's siginfo, as Linux reads it: si_signo becomes sig.
Result<siginfo_t> copyin_siginfo(Lwp& l, int sig, UserPtr<siginfo_t> u) {
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  TRY(copyin(l, u.addr, &info, kKernelSiginfoSize));
  info.si_signo = sig;
  if (!known_siginfo_layout(sig, info.si_code)) {
    unsigned char tail[sizeof(siginfo_t) - kKernelSiginfoSize];
    TRY(copyin(l, u.addr + kKernelSiginfoSize, tail, sizeof tail));
    for (unsigned char c : tail)
      if (c) return err(E2BIG);
  }
  return info;
}

// The LWP with thread id tid, if its process is alive. Tree lock held.
Lwp* find_lwp_locked(ProcTable& t, pid_t tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.lock()) {
  Lwp* x = t.find_tid_locked(tid);
  if (!x || x->dead_.load(std::memory_order_acquire) || !x->proc_hook_.is_linked()) return nullptr;
  return x;
}

// Sends info (a signal to one process, or with `thread` to that LWP of it)
// after Linux's permission check. target/thread found under the tree lock.
Result<void> send_checked(Lwp& l, Proc& target, Lwp* thread, int sig, const siginfo_t& info, pid_t* fatal)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(l.proc().tree_lock(), target.tree_lock()) {
  if (!sig_valid(sig) && sig != 0) return err(EINVAL);
  // A kernel-style si_code (> 0, only ever to itself) skips the check.
  if (info.si_code <= 0 && !can_signal(l.cred(), l.proc(), target, sig)) return err(EPERM);
  if (sig == 0 || target.state_ != Proc::State::kActive) return {};
  if (TRY(post_signal_info(target, thread, info))) *fatal = target.pid();
  return {};
}

// rt_sigqueueinfo and kill-like sends to the process that has thread tid.
Result<long> send_to_process(Lwp& l, pid_t tid, int sig, const siginfo_t& info) {
  Kernel& k = l.kernel();
  pid_t fatal = 0;
  {
    ProcTable& t = k.procs();
    MutexLocker g(t.lock());
    l.proc().assert_tree_locked();
    Proc* p = nullptr;
    if (tid > 0) {
      p = t.find_locked(tid);
      if (!p)
        if (Lwp* x = find_lwp_locked(t, tid)) p = &x->proc();
    }
    if (!p || p == t.proc0()) return err(ESRCH);
    p->assert_tree_locked();
    TRY(send_checked(l, *p, nullptr, sig, info, &fatal));
  }
  if (fatal) kill_proc(k, fatal, sig);
  return 0;
}

// tkill, tgkill and rt_tgsigqueueinfo: to thread tid (of process tgid, if
// tgid > 0).
Result<long> send_to_thread(Lwp& l, pid_t tgid, pid_t tid, int sig, const siginfo_t& info) {
  Kernel& k = l.kernel();
  pid_t fatal = 0;
  {
    ProcTable& t = k.procs();
    MutexLocker g(t.lock());
    l.proc().assert_tree_locked();
    Lwp* x = find_lwp_locked(t, tid);
    if (!x || (tgid > 0 && x->proc().pid() != tgid) || &x->proc() == t.proc0()) return err(ESRCH);
    Proc& p = x->proc();
    p.assert_tree_locked();
    TRY(send_checked(l, p, x, sig, info, &fatal));
  }
  if (fatal) kill_proc(k, fatal, sig);
  return 0;
}

// A user timespec as a relative deadline on the monotonic clock: 0 for a
// zero timeout (poll), saturating far in the future.
Result<int64_t> timeout_deadline(Lwp& l, UserPtr<struct timespec> ts_p) {
  timespec ts = TRY(copyin_obj(l, ts_p));
  if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000) return err(EINVAL);
  if (ts.tv_sec == 0 && ts.tv_nsec == 0) return int64_t{0};
  constexpr int64_t kMaxSec = INT64_MAX / 1000000000 / 2;
  if (ts.tv_sec >= kMaxSec) return int64_t{INT64_MAX / 2};
  return mono_now_ns() + ts.tv_sec * int64_t{1000000000} + ts.tv_nsec;
}

}  // namespace

Result<long> sys_kill(Lwp& l, pid_t pid, int sig) {
  if (sig < 0 || sig > kNsig) return err(EINVAL);
  if (pid == INT32_MIN) return err(ESRCH);
  Kernel& k = l.kernel();
  Proc& self = l.proc();
  const Cred& cred = l.cred();
  // Targets that must die at once are collected and ended after the lock.
  FatalSignals<64> fatal;
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
      fatal.post(*p, sig_user_info(l, sig, SI_USER));
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
  fatal.kill_all(k);
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
    if (ignored) {
      MutexLocker g(p.lock_);
      sig_discard_locked(p, sig_bit(sig));
    }
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
    Proc& p = l.proc();
    MutexLocker g(p.lock_);
    sig_set_mask_locked(p, l, n);
  }
  if (oset) TRY(copyout(l, &old, oset.addr, sizeof old));
  return 0;
}

Result<long> sys_rt_sigpending(Lwp& l, UserPtr<sigset_t> set, size_t sigsetsize) {
  if (sigsetsize > sizeof(SigSet)) return err(EINVAL);
  SigSet pend = l.proc().pending_for(l) & l.sigmask_.load();
  TRY(copyout(l, &pend, set.addr, sigsetsize));
  return 0;
}

Result<long> sys_tkill(Lwp& l, pid_t tid, int sig) {
  if (tid <= 0) return err(EINVAL);
  return send_to_thread(l, 0, tid, sig, sig_user_info(l, sig, SI_TKILL));
}

Result<long> sys_tgkill(Lwp& l, pid_t tgid, pid_t tid, int sig) {
  if (tid <= 0 || tgid <= 0) return err(EINVAL);
  return send_to_thread(l, tgid, tid, sig, sig_user_info(l, sig, SI_TKILL));
}

Result<long> sys_rt_sigqueueinfo(Lwp& l, pid_t tgid, int sig, UserPtr<siginfo_t> uinfo) {
  siginfo_t info = TRY(copyin_siginfo(l, sig, uinfo));
  // Nobody may pose as the kernel or as kill/tkill (which add the
  // sender's identity) towards another thread.
  if ((info.si_code >= 0 || info.si_code == SI_TKILL) && l.tid() != tgid) return err(EPERM);
  return send_to_process(l, tgid, sig, info);
}

Result<long> sys_rt_tgsigqueueinfo(Lwp& l, pid_t tgid, pid_t tid, int sig, UserPtr<siginfo_t> uinfo) {
  siginfo_t info = TRY(copyin_siginfo(l, sig, uinfo));
  if (tid <= 0 || tgid <= 0) return err(EINVAL);
  if ((info.si_code >= 0 || info.si_code == SI_TKILL) && l.tid() != tid) return err(EPERM);
  return send_to_thread(l, tgid, tid, sig, info);
}

Result<long> sys_rt_sigtimedwait(Lwp& l, UserPtr<sigset_t> set, UserPtr<siginfo_t> info,
                                 UserPtr<struct timespec> timeout, size_t sigsetsize) {
  if (sigsetsize != sizeof(SigSet)) return err(EINVAL);
  SigSet s;
  TRY(copyin(l, set.addr, &s, sizeof s));
  int64_t deadline = -1;
  if (timeout) deadline = TRY(timeout_deadline(l, timeout));
  siginfo_t si;
  std::atomic<SigSet> which{s};
  Result<int> r = sig_wait(l, which, &si, deadline);
  // Never restarted after a handler (signal(7)).
  if (!r.ok()) return err(eintr_if_restart(r.error()));
  int sig = *r;
  if (info) TRY(copyout(l, &si, info.addr, sizeof si));
  return sig;
}

Result<long> sys_rt_sigsuspend(Lwp& l, UserPtr<sigset_t> mask, size_t sigsetsize) {
  if (sigsetsize != sizeof(SigSet)) return err(EINVAL);
  SigSet m;
  TRY(copyin(l, mask.addr, &m, sizeof m));
  Proc& p = l.proc();
  SigSet old = begin_temp_sigmask(l, m);
  {
    MutexLocker g(p.lock_);
    // Until a signal the new mask lets through arrives. One whose action
    // became "ignore" meanwhile goes, and the wait goes on (Linux restarts
    // the call for it).
    for (;;) {
      int r = l.sleep(p.sigwait_cv_, p.lock_, -1, true);
      if (!is_restart(r)) continue;
      if (l.exiting_.load()) break;
      SigSet pend = p.pending_unblocked(l);
      SigSet ignored = 0;
      for (SigSet rest = pend; rest; rest &= rest - 1) {
        int sig = __builtin_ctzll(rest) + 1;
        KernelSigaction a = p.sigacts_ ? p.sigacts_->get(sig) : KernelSigaction{};
        bool ign = a.handler == reinterpret_cast<uintptr_t>(SIG_IGN) ||
                   (a.handler == reinterpret_cast<uintptr_t>(SIG_DFL) && sig != SIGKILL &&
                    sig_default_action(sig) != SigDefault::kTerminate && sig_default_action(sig) != SigDefault::kCore);
        if (ign) ignored |= sig_bit(sig);
      }
      if (ignored != pend) break;
      sig_discard_locked(p, ignored);
    }
  }
  // The signals are delivered under the temporary mask, then the old
  // mask returns (unless the process ended). If none was delivered after
  // all (another LWP took it), the call starts again, as Linux's
  // ERESTARTNOHAND; after a handler it is EINTR.
  Delivered d;
  if (end_temp_sigmask(l, old, true, &d)) return err(EINTR);
  return err(d.sig ? EINTR : kErestartNoHand);
}

Result<long> sys_pause(Lwp& l) {
  Proc& p = l.proc();
  MutexLocker g(p.lock_);
  int r;
  while (!is_restart(r = l.sleep(p.sigwait_cv_, p.lock_, -1, true))) {
  }
  // EINTR once a handler ran (the system call exit delivers it first).
  return err(kErestartNoHand);
}

// sigaltstack: only kept and checked here (handlers run on host threads,
// not on it). The caller's stack pointer is where this call runs: for a
// local client, the kernel runs on its host thread's stack, so a call
// made on the alternate stack is refused as Linux refuses it.
Result<long> sys_sigaltstack(Lwp& l, UserPtr<void> ss_p, UserPtr<void> old_ss) {
  UserPtr<stack_t> ss{ss_p.addr};
  constexpr int SS_AUTODISARM = 1u << 31;  // Linux's; glibc 2.36 does not name it
  constexpr size_t kMinSigStack = 2048;  // Linux's MINSIGSTKSZ on x86-64
  uintptr_t sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  auto on_stack = [&] {
    if (l.user_space() != nullptr || (l.altstack_flags_ & SS_AUTODISARM)) return false;
    return sp > l.altstack_sp_ && sp - l.altstack_sp_ <= l.altstack_size_;
  };
  stack_t n;
  if (ss) n = TRY(copyin_obj(l, ss));
  stack_t o;
  std::memset(&o, 0, sizeof o);
  o.ss_sp = reinterpret_cast<void*>(l.altstack_sp_);
  o.ss_size = l.altstack_size_;
  o.ss_flags = (l.altstack_size_ == 0 ? SS_DISABLE : on_stack() ? SS_ONSTACK : 0) | (l.altstack_flags_ & SS_AUTODISARM);
  if (ss) {
    if (on_stack()) return err(EPERM);
    // No change: fine whatever it is (Linux answers before checking).
    if (reinterpret_cast<uintptr_t>(n.ss_sp) == l.altstack_sp_ && n.ss_size == l.altstack_size_ &&
        n.ss_flags == l.altstack_flags_) {
      if (old_ss) TRY(copyout(l, &o, old_ss.addr, sizeof o));
      return 0;
    }
    int mode = n.ss_flags & ~SS_AUTODISARM;
    if (mode != SS_DISABLE && mode != SS_ONSTACK && mode != 0) return err(EINVAL);
    if (mode == SS_DISABLE) {
      n.ss_sp = nullptr;
      n.ss_size = 0;
    } else if (n.ss_size < kMinSigStack) {
      return err(ENOMEM);
    }
    l.altstack_sp_ = reinterpret_cast<uintptr_t>(n.ss_sp);
    l.altstack_size_ = n.ss_size;
    l.altstack_flags_ = n.ss_flags;
  }
  if (old_ss) TRY(copyout(l, &o, old_ss.addr, sizeof o));
  return 0;
}

}  // namespace rump
