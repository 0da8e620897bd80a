// realtime.h: the kernel's realtime clock (CLOCK_REALTIME), which is the
// host's wall clock plus an offset that clock_settime and settimeofday
// move, and the notification that it was set.
//
// Each kernel has one (Kernel::realtime()); setting it moves only that
// kernel's time. Objects that must react when the clock is set (a
// timerfd armed with TFD_TIMER_CANCEL_ON_SET, as Linux's
// timerfd_clock_was_set) link a RealtimeWatcher; set() calls each one's
// was_set, under the watcher lock, after the new time is visible.
//
// Locking: RealtimeClock::lock_ (rank kFile) guards the watcher list; a
// watcher's callback runs under it and may take locks ranked above kFile
// (an object's own lock, kSocket), never a lower one. watch/unwatch are
// called with no lock of rank kFile or above held; once unwatch returns,
// no callback of that watcher runs.
#pragma once

#include <atomic>
#include <boost/intrusive/list.hpp>
#include <cstdint>

#include <rump/rumpuser.h>

#include "sync/mutex.h"

namespace rump {

struct RealtimeWatcher {
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;
  void (*was_set)(RealtimeWatcher& w) = nullptr;
};

class RealtimeClock {
 public:
  // The current realtime (ns since the epoch).
  int64_t now_ns() const { return host_wall_ns() + offset_.load(std::memory_order_acquire); }
  // How far this kernel's realtime is from the host's wall clock.
  int64_t offset_ns() const { return offset_.load(std::memory_order_acquire); }

  // Sets the realtime to ns, then tells every watcher.
  void set(int64_t ns) {
    MutexLocker g(lock_);
    offset_.store(ns - host_wall_ns(), std::memory_order_release);
    for (RealtimeWatcher& w : watchers_) w.was_set(w);
  }

  void watch(RealtimeWatcher& w) {
    MutexLocker g(lock_);
    if (!w.hook.is_linked()) watchers_.push_back(w);
  }
  void unwatch(RealtimeWatcher& w) {
    MutexLocker g(lock_);
    if (w.hook.is_linked()) watchers_.erase(watchers_.iterator_to(w));
  }

 private:
  // The host's wall clock (kern/clock.h's wall_now_ns; that header is not
  // included here, as kernel.h includes this one).
  static int64_t host_wall_ns() {
    int64_t s = 0;
    long ns = 0;
    rumpuser_clock_gettime(RUMPUSER_CLOCK_RELWALL, &s, &ns);
    return s * 1000000000 + ns;
  }

  std::atomic<int64_t> offset_{0};
  Mutex lock_{LockRank::kFile};
  using List = boost::intrusive::list<
      RealtimeWatcher,
      boost::intrusive::member_hook<RealtimeWatcher, decltype(RealtimeWatcher::hook), &RealtimeWatcher::hook>,
      boost::intrusive::constant_time_size<false>>;
  List watchers_ ABSL_GUARDED_BY(lock_);
};

}  // namespace rump
