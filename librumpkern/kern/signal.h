// signal.h: signal numbers, sets and actions as the kernel keeps them.
//
// Linux numbering: 1..64, a set is a 64-bit mask with bit (sig - 1). A
// kernel sigaction has Linux's kernel layout (handler, flags, restorer,
// mask), which is what rt_sigaction takes.
//
// Pending signals: a process has a shared set (kill, rt_sigqueueinfo) and
// each LWP its own (tkill, tgkill, rt_tgsigqueueinfo). Each set is an
// atomic mask, read without a lock on the fast paths, plus a queue of
// SigQueued records saying who sent what (siginfo_t); both change only
// under the process's lock. A standard signal (below kSigRtMin) is queued
// once; real-time signals queue every instance. A signal whose record
// could not be kept (RLIMIT_SIGPENDING, memory) is pending without one and
// reads back as SI_USER from pid 0, as on Linux. A POSIX timer's record
// names its timer (owner); timer_delete marks the records of the timer
// dropped, and taking the signal then skips them, as Linux drops a
// deleted timer's signal at dequeue (the signal reads as pending until
// something tries to take it).
#pragma once

#include <signal.h>

#include <atomic>
#include <boost/intrusive/list.hpp>
#include <cstdint>

#include "base/kmem.h"
#include "sync/mutex.h"

namespace rump {

inline constexpr int kNsig = 64;
using SigSet = uint64_t;

inline constexpr SigSet sig_bit(int sig) { return SigSet{1} << (sig - 1); }
inline constexpr bool sig_valid(int sig) { return sig >= 1 && sig <= kNsig; }
inline constexpr SigSet kCantMask = sig_bit(SIGKILL) | sig_bit(SIGSTOP);
// The kernel's first real-time signal (libc's SIGRTMIN is 34: it keeps two).
inline constexpr int kSigRtMin = 32;
// Dequeued before any other pending signal (Linux: faults first).
inline constexpr SigSet kSyncSignals = sig_bit(SIGSEGV) | sig_bit(SIGBUS) | sig_bit(SIGILL) |
                                       sig_bit(SIGTRAP) | sig_bit(SIGFPE) | sig_bit(SIGSYS);

// One queued instance of a pending signal.
struct SigQueued : public KObject {
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;
  siginfo_t info;
  const void* owner = nullptr;  // the POSIX timer that posted it, or null
  bool dropped = false;         // its timer was deleted: never delivered
};
using SigQueue = boost::intrusive::list<
    SigQueued, boost::intrusive::member_hook<SigQueued, decltype(SigQueued::hook), &SigQueued::hook>,
    boost::intrusive::constant_time_size<false>>;

class Proc;

// Something that wants to hear of signals as they become pending (a
// signalfd's wait queue: vfs/signalfd.cc). notify runs after the signal
// is pending, with no process lock held (the process table's may be), and
// may take locks ranked above kSigWatch. sig 0 says that p has just
// become a zombie (exit1 calls it under the process table's lock, for
// pidfds: vfs/pidfd.cc), sig < 0 that p's LWP -sig has ended while p
// lives on (Kernel::unlink_lwp, under the same lock, for thread pidfds).
struct SigWatch {
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;
  void (*notify)(SigWatch& w, Proc& p, int sig) = nullptr;
};

// A kernel's watchers (Kernel::sig_watchers()). add/remove under its lock;
// notify walks them under it, so a removed watcher is never called again.
class SigWatchers {
 public:
  void add(SigWatch& w);
  void remove(SigWatch& w);
  void notify(Proc& p, int sig);

 private:
  using List = boost::intrusive::list<
      SigWatch, boost::intrusive::member_hook<SigWatch, decltype(SigWatch::hook), &SigWatch::hook>,
      boost::intrusive::constant_time_size<false>>;
  Mutex lock_{LockRank::kSigWatch};
  List list_ ABSL_GUARDED_BY(lock_);
  std::atomic<int> n_{0};  // list size, for the no-watcher fast path
};

// Linux's struct kernel_sigaction on x86-64 and arm64.
struct KernelSigaction {
  uintptr_t handler;  // SIG_DFL (0), SIG_IGN (1) or an address
  unsigned long flags;
  uintptr_t restorer;
  SigSet mask;
};

enum class SigDefault { kTerminate, kCore, kIgnore, kStop, kContinue };
SigDefault sig_default_action(int sig);

}  // namespace rump
