// Signals: posting, actions, and what happens at the end of a kernel entry.
//
// Local clients run on host threads, where the kernel cannot run a signal
// handler. So: ignored signals (explicitly or by default) are dropped when
// posted; caught signals become pending, interrupt interruptible sleeps
// (EINTR) and are consumed ("delivered") when an LWP of the process leaves
// the kernel with them unblocked; fatal default actions end the process
// (WIFSIGNALED for the parent), at once when no LWP of it is in the
// kernel, otherwise when one leaves. Stop and continue signals are treated
// as ignored (no job control for in-process clients).
//
// Temporary masks (ppoll, pselect6). Linux keeps the temporary mask of a
// call that a signal interrupted until that signal is delivered, so the
// signals it unblocks act before the old mask returns. Here delivery is
// the same as at the end of any kernel entry, done under the temporary
// mask: a fatal default action ends the process, a caught signal is
// consumed, an ignored one was never queued; signals the temporary mask
// blocks stay pending and meet the old mask when the LWP leaves. A call
// that was not interrupted (ready, timed out, failed) restores the old
// mask at once, leaving signals that only the temporary mask unblocked
// pending, as Linux does.
#include "kern/fork.h"
#include "kern/kernel.h"

namespace rump {

namespace {

enum class Disposition { kDrop, kPending, kFatal };

Disposition disposition(const KernelSigaction& a, int sig) {
  if (sig == SIGKILL) return Disposition::kFatal;
  if (a.handler == reinterpret_cast<uintptr_t>(SIG_IGN)) return Disposition::kDrop;
  if (a.handler == reinterpret_cast<uintptr_t>(SIG_DFL)) {
    switch (sig_default_action(sig)) {
      case SigDefault::kIgnore:
      case SigDefault::kStop:
      case SigDefault::kContinue:
        return Disposition::kDrop;
      case SigDefault::kTerminate:
      case SigDefault::kCore:
        return Disposition::kFatal;
    }
  }
  return Disposition::kPending;
}

KernelSigaction action_of(Proc& p, int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_) {
  if (!p.sigacts_) return {};
  return p.sigacts_->get(sig);
}

}  // namespace

bool post_signal(Proc& p, int sig) {
  Kernel& k = p.kernel();
  if (&p == k.procs().init() || &p == k.procs().proc0()) {
    // Like Linux's init: only signals it catches reach it.
    MutexLocker g(p.lock_);
    if (disposition(action_of(p, sig), sig) != Disposition::kPending) return false;
  }
  bool fatal_now = false;
  MutexLocker g(p.lock_);
  if (p.exiting_) return false;
  Disposition d = disposition(action_of(p, sig), sig);
  if (d == Disposition::kDrop) return false;
  p.sigpending_.fetch_or(sig_bit(sig), std::memory_order_release);
  bool any_in_kernel = false;
  for (Lwp& l : p.lwps_) {
    bool in = l.in_kernel_.load(std::memory_order_acquire);
    any_in_kernel |= in;
    if (in && ((l.sigmask_.load() & sig_bit(sig)) == 0 || sig == SIGKILL)) {
      if (sig == SIGKILL) l.exiting_.store(true);
      l.interrupt();
    }
  }
  if (d == Disposition::kFatal && !any_in_kernel) {
    // A blocked fatal signal waits, except SIGKILL.
    bool blocked_everywhere = sig != SIGKILL && !p.lwps_.empty();
    for (Lwp& l : p.lwps_)
      if ((l.sigmask_.load() & sig_bit(sig)) == 0) blocked_everywhere = false;
    fatal_now = !blocked_everywhere;
  }
  return fatal_now;
}

bool check_fatal_signals(Lwp& l) {
  Proc& p = l.proc();
  SigSet pend = p.pending_unblocked(l);
  if (pend == 0) return false;
  if (&p == l.kernel().procs().init()) {
    // Signals caught by init: consumed.
    p.sigpending_.fetch_and(~pend);
    return false;
  }
  int fatal = 0;
  {
    MutexLocker g(p.lock_);
    for (int sig = 1; sig <= kNsig; sig++) {
      if (!(pend & sig_bit(sig))) continue;
      Disposition d = disposition(action_of(p, sig), sig);
      if (d == Disposition::kFatal) {
        fatal = sig;
        break;
      }
    }
    if (!fatal) {
      // Caught signals are delivered: their handlers can't run on a host
      // thread, so delivery consumes them.
      p.sigpending_.fetch_and(~pend);
      return false;
    }
  }
  exit1(p, &l, w_exitcode(0, fatal));
  return true;
}

bool end_temp_sigmask(Lwp& l, SigSet old, bool interrupted) {
  if (interrupted && check_fatal_signals(l)) return true;
  Proc& p = l.proc();
  MutexLocker g(p.lock_);
  l.sigmask_.store(old);
  return false;
}

}  // namespace rump
