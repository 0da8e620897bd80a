// parker.h: one LWP's wake-up permit (park/unpark), for waits whose waker
// must not hold the waited-on object's lock while it wakes the sleeper.
//
// A waker that signals a condition variable under the lock its sleeper
// waits with makes the sleeper wake only to block on that lock, and the
// unlock then pays a second host wake-up. With a Parker the waker takes
// the sleeper off the object's queue under the object's lock, takes a
// reference to the sleeper's Parker, drops the lock and only then calls
// unpark(). The reference keeps the Parker (and its condition variable)
// alive even if the sleeper has meanwhile returned and its LWP has gone.
//
// The permit makes a wake-up that comes before the sleep, or late (after
// the sleeper saw its wait end another way), harmless: park() returns at
// once and the caller re-checks its own condition, as after any spurious
// wake-up. So every user loops:
//   while (!done) if (int e = parker.park(l, deadline)) ...;
//
// Who uses it: futexes (kern/futex.cc), one Parker per LWP, made on the
// LWP's first futex sleep and dropped with the LWP (Lwp::futex_parker_).
//
// Locking: lock_ is a leaf (kNone), held for a few instructions by
// unpark() and across the sleep by park(); no other lock is taken under it.
#pragma once

#include "base/kmem.h"
#include "base/ref.h"
#include "kern/lwp.h"
#include "sync/mutex.h"

namespace rump {

class Parker : public KObject, public RefCounted<Parker> {
 public:
  // Sleeps until unpark() gives a permit (taking it: returns 0), the
  // deadline (monotonic, < 0 for none) passes (ETIMEDOUT) or an interrupt
  // is pending (kErestartSys), as Lwp::sleep. A permit already there
  // returns at once.
  int park(Lwp& l, int64_t deadline_ns) {
    MutexLocker g(lock_);
    int e = 0;
    while (!permit_) {
      sleeping_ = true;
      e = l.sleep(cv_, lock_, deadline_ns, true);
      sleeping_ = false;
      if (e) break;
    }
    if (permit_) e = 0;
    permit_ = false;
    return e;
  }

  // Gives the permit and wakes the sleeper, if any, after dropping lock_
  // (the caller holds a reference, so the condition variable stays).
  void unpark() {
    bool wake;
    {
      MutexLocker g(lock_);
      permit_ = true;
      wake = sleeping_;
    }
    if (wake) cv_.signal();
  }

 private:
  Mutex lock_;
  CondVar cv_;
  bool permit_ ABSL_GUARDED_BY(lock_) = false;
  bool sleeping_ ABSL_GUARDED_BY(lock_) = false;
};

}  // namespace rump
