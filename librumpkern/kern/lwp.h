// lwp.h: light-weight processes, the kernel's threads of execution.
//
// Every thread running in the kernel has an Lwp (invariant 3): LWPs of
// processes (made by fork1 or rump_lwproc_newlwp, bound to host threads by
// rump_lwproc_switch), implicit LWPs that a host thread calling in without
// one gets (attached to init and cached per thread), and kernel threads
// (attached to proc0). An Lwp belongs to one Proc and is linked on its list.
//
// Sleeping: Lwp::sleep() is the one way kernel code waits for an event with
// a timeout or interruptibly. An interruptible sleep ends with kErestartSys
// when a signal is posted to this LWP, or to the process and picked for
// this LWP (Lwp::interrupt(); kern/sig.cc says which LWP a process-directed
// signal goes to). The other LWPs sleep on undisturbed, as on Linux.
//
// Restarting (Linux's rules, signal(7)): kErestartSys and kErestartNoHand
// are internal errno values that never reach a user. A call returns one of
// them when a signal interrupted it; the system call exit (kern/restart.cc)
// delivers the pending signals and then restarts the call with the same
// arguments, or answers EINTR:
//   kErestartSys     restarts if no signal was delivered or the first one
//                    delivered is caught with SA_RESTART (read, write and
//                    ioctl on pipes and sockets without a timeout, accept,
//                    connect, wait4, futex without a timeout, flock,
//                    F_SETLKW, FIFO opens);
//   kErestartNoHand  restarts only if no signal was delivered (pause,
//                    rt_sigsuspend).
// Calls that are never restarted after a handler ran whatever SA_RESTART
// says (those with a timeout: poll, select, epoll_wait, nanosleep,
// rt_sigtimedwait, sockets with SO_RCVTIMEO/SO_SNDTIMEO, futex with a
// timeout) turn kErestartSys into EINTR themselves (eintr_if_restart).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <boost/intrusive/list.hpp>
#include <boost/intrusive/unordered_set_hook.hpp>
#include <cerrno>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "base/kmem.h"
#include "base/ref.h"
#include "kern/cputime.h"
#include "kern/cred.h"
#include "kern/signal.h"
#include "sync/mutex.h"

namespace rump {

class Kcov;
class Parker;

class Proc;
class Kernel;
struct Cpu;
class UserSpace;

namespace bi = boost::intrusive;
using ListHook = bi::list_member_hook<bi::link_mode<bi::safe_link>>;

// Linux's numbers for the same codes (ERESTARTSYS, ERESTARTNOHAND).
inline constexpr int kErestartSys = 512;
inline constexpr int kErestartNoHand = 514;
inline constexpr bool is_restart(int e) { return e == kErestartSys || e == kErestartNoHand; }
// An interrupted sleep seen by a call that is never restarted: EINTR.
inline constexpr int eintr_if_restart(int e) { return is_restart(e) ? EINTR : e; }

class Lwp : public KObject {
 public:
  enum class Kind : uint8_t { kProcess, kImplicit, kKthread };

  Lwp(Kernel& k, Proc& p, pid_t tid, Kind kind);
  ~Lwp();

  Kernel& kernel() const { return kernel_; }
  Proc& proc() const { return *proc_; }
  pid_t tid() const { return tid_; }
  Kind kind() const { return kind_; }
  bool implicit() const { return kind_ == Kind::kImplicit; }
  Cpu* cpu() const { return cpu_.load(std::memory_order_relaxed); }

  // The credentials this LWP acts with: its process's, refreshed at each
  // kernel entry if the process changed them.
  const Cred& cred() const { return *cred_; }
  void refresh_cred();

  // The user space the calling syscalls address: the process's, unless
  // vmspace_ctl(RUN) made another one current for this LWP.
  UserSpace* user_space() const;
  UserSpace* space_override_ = nullptr;

  // Sleeps on cv with m held. deadline_ns is on the monotonic clock, < 0
  // for none. Returns 0 (woken: possibly spuriously, re-check and sleep
  // again), ETIMEDOUT, or kErestartSys (interruptible sleeps only: an
  // unblocked signal is pending or the process is exiting). Callers loop:
  //   while (!cond) if (int e = l.sleep(cv, m, deadline, true)) return err(e);
  int sleep(CondVar& cv, Mutex& m, int64_t deadline_ns, bool interruptible)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(m);
  // Waits a little, without sleeping, for word to differ from seen: the
  // cheap path of a wait that the other side will end within microseconds
  // (a peer copying into a pipe), where a sleep and a host wake-up would
  // cost more than the wait itself. Gives the CPU back while it spins, so
  // the peer can run even with every CPU taken, and holds no lock. Gives up
  // after max_ns or when an interrupt is pending (the caller's next sleep()
  // then answers kErestartSys). Returns true if word changed within max_ns (a
  // change noticed only later, after the host preempted the spinner, is
  // false: the caller re-checks anyway). Pointless, and not attempted, in
  // a kernel with one CPU.
  bool spin_wait(const std::atomic<uint32_t>& word, uint32_t seen, int64_t max_ns);
  // Wakes an interruptible sleep of this LWP (signal delivery, exit).
  void interrupt();
  // True if an unblocked signal is pending for this LWP (sent to it, or
  // sent to the process and picked for it: sigclaim_) or the LWP was told
  // to stop (process exit).
  bool interrupt_pending() const;

  // Set when the process is exiting: syscalls return and the LWP goes.
  std::atomic<bool> exiting_{false};
  // Bound to a host thread (rump_lwproc_switch); such an LWP is freed by
  // that thread, not by process exit.
  std::atomic<bool> bound_{false};
  // The process has gone: the LWP is a husk waiting for its host thread.
  std::atomic<bool> dead_{false};

  // Changed under the process lock, read without it.
  std::atomic<SigSet> sigmask_{0};
  // Signals sent to this LWP alone (tkill, tgkill, rt_tgsigqueueinfo):
  // the set changes under the process lock and is read without it; the
  // records are in sigqueue_ (kern/signal.h).
  std::atomic<SigSet> sigpending_{0};
  SigQueue sigqueue_ ABSL_GUARDED_BY(sig_lock_);
  // The process-directed pending signals this LWP was picked to take
  // (Linux's TIF_SIGPENDING, one bit per signal; kern/sig.cc): only they,
  // of the process's set, interrupt its sleeps, and while it is in the
  // kernel no other LWP takes them as it leaves. Changed under the
  // process lock, read without it.
  std::atomic<SigSet> sigclaim_{0};
  // The signals this LWP waits to dequeue (rt_sigtimedwait, a signalfd
  // read): they wake it, and don't interrupt it, although they may be
  // unblocked. Set by the LWP under the process lock; 0 when not waiting.
  std::atomic<SigSet> sigwaiting_{0};
  // Says that the caller holds the process's lock, which guards the
  // LWP's signal records (a path the analysis can't follow).
  void assert_sig_locked() const ABSL_ASSERT_EXCLUSIVE_LOCK(sig_lock_) { sig_lock_.assert_held(); }
  // sigaltstack(2): the alternate signal stack. Only the LWP itself
  // touches it (and fork1, on the parent's LWP, to copy it).
  uintptr_t altstack_sp_ = 0;
  size_t altstack_size_ = 0;
  int altstack_flags_ = SS_DISABLE;
  // Set by the entry path while a host thread runs this LWP in the kernel.
  std::atomic<bool> in_kernel_{false};
  ListHook proc_hook_;  // Proc::lwps_
  ListHook kernel_hook_;  // Kernel::all_lwps_
  bi::unordered_set_member_hook<> tid_hook_;  // ProcTable's tid -> Lwp table

  // The coverage buffer this LWP traces into (kern/kcov.h), or null. Set
  // and cleared only by the LWP itself (KCOV_ENABLE/DISABLE) and read by it
  // at every instrumented edge; an LWP that ends while enabled lets go in
  // its destructor.
  Kcov* kcov_ = nullptr;

  // set_tid_address(2) and set_robust_list(2): user addresses (0: none)
  // that futex_lwp_exit (kern/futex.h) works on when the LWP ends. Written
  // by the LWP itself; get_robust_list reads them from any LWP.
  std::atomic<uintptr_t> clear_child_tid_{0};
  std::atomic<uintptr_t> robust_list_{0};
  // What a futex sleep of this LWP waits on (kern/parker.h): made by its
  // first one, used only by the LWP itself and, through a reference, by
  // its wakers; the LWP's reference goes with the LWP.
  Parker* futex_parker_ = nullptr;

  // Scheduler state, touched only by the thread running this LWP.
  // Written only by the LWP's own thread (schedule/unschedule); atomic
  // so that others (procfs, getcpu of another) may look.
  std::atomic<Cpu*> cpu_{nullptr};
  int last_cpu_ = 0;

  // CPU-time accounting (kern/cputime.h), guarded by acct_lock() but for
  // its atomic counters.
  LwpCpu acct_;
  SpinLock& acct_lock() const ABSL_LOCK_RETURNED(sleep_lock_) { return sleep_lock_; }

 private:
  Kernel& kernel_;
  Proc* proc_;
  pid_t tid_;
  Kind kind_;
  Mutex& sig_lock_;  // the process's lock_ (Proc::lock_)
  RefPtr<Cred> cred_;
  uint32_t cred_gen_ = 0;

  // An interruptible sleep in progress: what to wake (see Lwp::sleep).
  // Also guards acct_ (a leaf, held for a few instructions either way).
  mutable SpinLock sleep_lock_;
  rumpuser_mtx* sleep_mtx_ = nullptr;
  rumpuser_cv* sleep_cv_ = nullptr;
  friend class Proc;
};

// Makes LWPs leave the kernel and returns once none is inside: exit (the
// other LWPs of the exiting process) and halt (every LWP of the kernel)
// share it. for_each(visit) calls visit(Lwp&) on each LWP concerned, under
// whatever lock keeps its list stable; each one found inside the kernel is
// told to leave (exiting_, interrupt()), and the caller polls with a growing
// pause, since they leave within microseconds.
void drain_lwps(absl::FunctionRef<void(absl::FunctionRef<void(Lwp&)>)> for_each);

using LwpList = bi::list<Lwp, bi::member_hook<Lwp, ListHook, &Lwp::proc_hook_>,
                         bi::constant_time_size<false>>;
using KernelLwpList = bi::list<Lwp, bi::member_hook<Lwp, ListHook, &Lwp::kernel_hook_>,
                               bi::constant_time_size<false>>;

}  // namespace rump
