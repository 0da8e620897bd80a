// callout.h: callouts, the kernel's timers.
//
// A Callout runs a function once, a given time from now on the monotonic
// clock. Each kernel has one CalloutQueue (Kernel::callouts_, made by
// services_init): a deadline-ordered set of pending callouts and one kernel
// thread ("callout") that sleeps until the earliest deadline and runs
// expired callouts' functions, one at a time, as its own kernel-thread LWP
// on a virtual CPU. A callout function must not block for long (it delays
// every other callout) and must not halt() its own callout.
//
// A Callout is embedded in its owner (a socket's retransmit timer, a
// process's alarm ...) and linked into the queue while pending; linking
// never allocates. The owner must halt() it before freeing it.
//
// Locking: the queue lock (rank kCallout) guards every callout's state; it
// is not held while a function runs, so a function may take any lock its
// owner's code may take with no kernel lock held, and may schedule() or
// stop() callouts, its own included.
#pragma once

#include <atomic>
#include <cstdint>

#include <boost/intrusive/set.hpp>

#include "base/kmem.h"
#include "base/result.h"
#include "sync/mutex.h"

namespace rump {

class CalloutQueue;
class Kernel;
class Kthread;
class Lwp;

class Callout {
 public:
  using Fn = void (*)(void* arg);

  Callout() = default;
  Callout(const Callout&) = delete;
  Callout& operator=(const Callout&) = delete;
  // A pending callout must have been stopped (halt()) before it goes.
  ~Callout();

  // Binds the callout to its queue and function; once, before any other
  // call.
  void init(CalloutQueue& q, Fn fn, void* arg);

  // (Re)arms: fn(arg) runs ns_from_now nanoseconds from now (<= 0: as
  // soon as possible). Re-arming a pending callout moves its deadline.
  void schedule(int64_t ns_from_now);
  // Disarms. Returns true if it was pending (its function will now not
  // run for that arming). A function already running is not waited for.
  bool stop();
  // stop(), then wait until the function is not running (unless called
  // from that very function). After it returns the owner may free the
  // callout. Returns what stop() returned.
  bool halt();

  bool pending() const;
  // The function is running right now on the callout thread.
  bool running() const;

 private:
  friend class CalloutQueue;
  CalloutQueue* q_ = nullptr;
  // The queue's lock (CalloutQueue::lock_), set by init(): it guards the
  // fields below. Code that holds it through the queue says so with
  // qlock_->assert_held().
  Mutex* qlock_ = nullptr;
  Fn fn_ = nullptr;
  void* arg_ = nullptr;
  int64_t deadline_ ABSL_GUARDED_BY(*qlock_) = 0;  // monotonic ns
  uint64_t seq_ ABSL_GUARDED_BY(*qlock_) = 0;      // orders equal deadlines by arming order
  boost::intrusive::set_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook_;
};

class CalloutQueue : public KObject {
 public:
  // Makes the queue; its thread starts with the first schedule(). ENOMEM.
  static Result<CalloutQueue*> create(Kernel& k);
  // Stops the thread (if it still runs) and joins it. Callouts still
  // pending are disarmed without running: their owners should have
  // halted them.
  ~CalloutQueue();

  Kernel& kernel() const { return kernel_; }
  // Starts the thread now if it has not started. schedule() otherwise
  // starts it, and making a thread takes the process table's lock: owners
  // that arm callouts with a lock held that ranks above it (a process's
  // timers, under Proc::lock_) call this first, with no lock held.
  void start();
  // The thread has been started (or is being started). Lock-free, and
  // safe to ask from outside the kernel while the kernel is up.
  bool started() const { return thread_started_.load(std::memory_order_acquire); }
  // Pending callouts (for tests and diagnostics).
  size_t pending_count() const;
  // Times schedule() woke the sleeping thread (tests).
  uint64_t wakeups() const;

 private:
  friend class Callout;
  void start_thread();
  struct ByDeadline {
    // Called by the multiset, whose every use is under the queue lock.
    bool operator()(const Callout& a, const Callout& b) const ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return a.deadline_ != b.deadline_ ? a.deadline_ < b.deadline_ : a.seq_ < b.seq_;
    }
  };
  using Set = boost::intrusive::multiset<
      Callout, boost::intrusive::member_hook<Callout, decltype(Callout::hook_), &Callout::hook_>,
      boost::intrusive::compare<ByDeadline>, boost::intrusive::constant_time_size<true>>;

  explicit CalloutQueue(Kernel& k) : kernel_(k) {}
  static void thread_main(void* arg);
  void run(Lwp& l);
  bool stop_locked(Callout& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);

  Kernel& kernel_;
  mutable Mutex lock_{LockRank::kCallout};
  CondVar wake_cv_;  // the thread: an earlier deadline, or stop
  CondVar done_cv_;  // halt(): the running function returned
  Set pending_ ABSL_GUARDED_BY(lock_);
  uint64_t next_seq_ ABSL_GUARDED_BY(lock_) = 0;
  Callout* running_ ABSL_GUARDED_BY(lock_) = nullptr;
  // When the sleeping thread wakes up by itself (INT64_MAX: never); 0
  // while it is awake, bound to look at the queue before it sleeps again.
  // schedule() wakes it only for a deadline before this: a callout that
  // was the earliest and went (halted with its owner) leaves the thread's
  // timer set, and later ones need no wake-up of their own.
  int64_t sleep_until_ ABSL_GUARDED_BY(lock_) = 0;
  uint64_t wakeups_ ABSL_GUARDED_BY(lock_) = 0;
  Lwp* thread_lwp_ ABSL_GUARDED_BY(lock_) = nullptr;
  bool stop_ ABSL_GUARDED_BY(lock_) = false;
  Kthread* thread_ ABSL_GUARDED_BY(lock_) = nullptr;
  // Written under lock_; read without it by started(), which asks on
  // paths that should not take a lock (taking up an LWP).
  std::atomic<bool> thread_started_{false};
};

}  // namespace rump
