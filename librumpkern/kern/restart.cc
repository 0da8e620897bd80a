// The system call exit of an interrupted call: restart or EINTR.
// rt_sigsuspend, which delivers under its temporary mask before it
// returns, makes the same choice itself (kern/sys_sig.cc).
//
// A call that a signal interrupted returns kErestartSys or kErestartNoHand
// (kern/lwp.h). Here, as Linux does before it returns to user space, the
// pending signals are delivered first (check_fatal_signals: a fatal one
// ends the process, caught ones are consumed), and then the first signal
// delivered decides: none delivered (another LWP took it, or its action
// became "ignore") restarts either kind; one caught with SA_RESTART
// restarts a kErestartSys call; anything else is EINTR. A restart runs the
// handler again with the same arguments, as Linux's return to the system
// call instruction does.
#include <cerrno>

#include "kern/fork.h"
#include "kern/kernel.h"
#include "kern/syscall.h"

namespace rump {

long syscall_restart(Lwp& l, long nr, const long* args, long r) {
  for (;;) {
    // Implicit LWPs and kernel threads take no signals of their own.
    if (l.kind() != Lwp::Kind::kProcess) return -EINTR;
    if (l.exiting_.load(std::memory_order_relaxed) || l.dead_.load(std::memory_order_acquire)) return -EINTR;
    Delivered d;
    if (check_fatal_signals(l, &d)) return -EINTR;
    if (l.exiting_.load(std::memory_order_relaxed)) return -EINTR;
    bool restart = d.sig == 0 ? !l.interrupt_pending() : r == -kErestartSys && d.restart;
    if (!restart) return -EINTR;
    r = g_sysent[nr].entry(l, args);
    if (!is_restart_result(r)) return r;
  }
}

}  // namespace rump
