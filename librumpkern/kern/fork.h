// fork.h: fork1, the one function behind every process-creating front end
// (rump_lwproc_rfork, the fork/vfork/clone/rfork syscalls, remote clients),
// and exit/wait.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "base/result.h"
#include "kern/lwp.h"
#include "kern/proc.h"

namespace rump {

struct ForkResult {
  Proc* child;
  Lwp* lwp;  // the child's first LWP
};

// Checks rfork flags before anything is allocated: EINVAL for unknown bits,
// RFFDG|RFCFDG, signal bits without RFTSIGZMB, a bad exit signal, RFMEM
// with RFVMSPACE, and RFPROC missing.
Result<void> fork1_check_flags(uint32_t flags);

// Creates a child of l's process. EAGAIN past kern.maxproc or the parent's
// RLIMIT_NPROC (root is exempt from the latter), ENOMEM when out of memory.
Result<ForkResult> fork1(Lwp& l, uint32_t flags, const char* comm);

// Ends process p with wait status wstatus (W* encoding). `self` is the LWP
// of p that asks (nullptr if none, e.g. a signal from outside); it is left
// to its caller (marked dead). Other LWPs are interrupted, waited for if
// they are inside the kernel, and freed (bound ones are marked dead for
// their host thread to free).
void exit1(Proc& p, Lwp* self, int wstatus);

// Posts sig to p, applying its action: ignored signals are dropped, others
// become pending and interrupt p's sleeping LWPs. Returns true when the
// signal is fatal and p has no LWP in the kernel to act on it: the caller
// then calls kill_proc() once it holds no locks. Caller may hold the tree
// lock (which keeps p alive), not p's lock.
bool post_signal(Proc& p, int sig);
// The same with what the sender says (info.si_signo is the signal), sent
// to the process or, with thread, to that LWP of it alone. EAGAIN when a
// real-time signal from sigqueue-like senders (si_code < 0, not SI_USER)
// can't be queued (RLIMIT_SIGPENDING, memory). Otherwise true as above.
// owner: the POSIX timer posting it (its record says so, for
// sig_drop_owned_locked).
Result<bool> post_signal_info(Proc& p, Lwp* thread, const siginfo_t& info, const void* owner = nullptr);
// Marks the pending records owner posted (in p's queue and its LWPs')
// dropped: timer_delete. Caller holds p.lock_.
void sig_drop_owned_locked(Proc& p, const void* owner) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_);
// A siginfo_t as kill(2) makes it: code (SI_USER, SI_TKILL), the sending
// process's pid and real uid.
siginfo_t sig_user_info(Lwp& sender, int sig, int code);
// Ends process pid as killed by sig, if it is still alive. No locks held.
void kill_proc(Kernel& k, pid_t pid, int sig);
// Ends process pid with wstatus if it is alive, not exiting and has no
// LWP left (two of its last LWPs released at once each saw the other).
void end_if_lwpless(Kernel& k, pid_t pid, int wstatus);
// Processes that signals posted under the tree lock must end: post()
// remembers them (at most N), kill_all() ends them once no lock is held.
template <int N>
struct FatalSignals {
  struct {
    pid_t pid;
    int sig;
  } at[N];
  int n = 0;
  void post(Proc& p, int sig) {
    if (post_signal(p, sig)) add(p.pid(), sig);
  }
  // A signal posted otherwise that ends process pid.
  void add(pid_t pid, int sig) {
    if (n < N) at[n++] = {pid, sig};
  }
  // The same with what the sender says (a failed post ends nothing).
  void post(Proc& p, const siginfo_t& info) {
    Result<bool> r = post_signal_info(p, nullptr, info);
    if (r.ok() && *r && n < N) at[n++] = {p.pid(), info.si_signo};
  }
  void kill_all(Kernel& k) {
    for (int i = 0; i < n; i++) kill_proc(k, at[i].pid, at[i].sig);
  }
};

// What a delivery consumed: the first caught signal (as Linux would take
// it; 0 if none) and whether its action has SA_RESTART, which decides
// whether an interrupted call restarts (kern/restart.cc).
struct Delivered {
  int sig = 0;
  bool restart = false;
};

// At the end of a kernel entry: act on pending unblocked fatal signals of
// l's process, and deliver (consume) the caught ones, saying in *d (if
// given) what was delivered. Returns true if the process ended.
bool check_fatal_signals(Lwp& l, Delivered* d = nullptr);

// Puts a temporary signal mask in place (ppoll, pselect6, epoll_pwait,
// rt_sigsuspend) and returns the old one. Pending signals it unblocks
// whose action ignores them go at once: Linux discards them when they
// come up and restarts the call, so they never interrupt it.
SigSet begin_temp_sigmask(Lwp& l, SigSet mask);
// Ends a temporary signal mask (ppoll, pselect6; see sig.cc): if the call
// was interrupted, first delivers, under the temporary mask, the pending
// signals it lets through (saying in *d what); then puts old back. Returns
// true if the process ended: l is then a husk, its process possibly freed,
// and the caller must return (EINTR) without touching either.
bool end_temp_sigmask(Lwp& l, SigSet old, bool interrupted, Delivered* d = nullptr);

// Sets l's signal mask. As Linux's: pending process-directed signals the
// mask lets through become l's to take as well, and those picked for l
// that it now blocks go to another LWP that takes them.
void sig_set_mask_locked(Proc& p, Lwp& l, SigSet mask) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_);

// Dequeues the first pending signal of set for l (l's own before the
// process's; faults first, then the lowest number) into *info; 0 if none.
int sig_dequeue_locked(Proc& p, Lwp& l, SigSet set, siginfo_t* info) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_);
// Waits until a signal of set is pending for l and dequeues it (returns
// its number). deadline_ns: monotonic, < 0 none, 0 don't wait. EAGAIN
// when the deadline passed, kErestartSys when another signal (unblocked,
// not in set) or exit interrupts. Unblocked signals of set whose action is fatal
// are not taken: they end the process as l leaves the kernel, as Linux.
// which is read again whenever the waiter wakes: a change of it followed
// by sig_wait_set_changed(p) is seen by the LWPs of p waiting on it.
Result<int> sig_wait(Lwp& l, const std::atomic<SigSet>& which, siginfo_t* info, int64_t deadline_ns);
void sig_wait_set_changed(Proc& p);
// Drops the pending instances of set, from the process and every LWP.
void sig_discard_locked(Proc& p, SigSet set) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_);
// Frees l's records as it leaves p; the process-directed signals picked
// for it go to another LWP.
void sig_flush_lwp_locked(Proc& p, Lwp& l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_);

// The wait status encodings.
inline constexpr int w_exitcode(int status, int sig) { return ((status & 0xff) << 8) | (sig & 0x7f); }

}  // namespace rump
