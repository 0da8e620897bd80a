// kernel_clock.h: a kernel's realtime clock (CLOCK_REALTIME), and the
// notification that it was set.
//
// The realtime clock is each kernel's own: the host's wall clock plus an
// offset that clock_settime and settimeofday move (KernelClock::set_realtime,
// the one writer), so that setting the time in one kernel changes nothing in
// the host or in any other kernel. Objects that must react when the clock is
// set (a timerfd armed with TFD_TIMER_CANCEL_ON_SET, as Linux's
// timerfd_clock_was_set) link a RealtimeWatcher; set_realtime calls each
// one's was_set, under the watcher lock, after the new time is visible.
// set_realtime is defined in kern/sys_time.cc.
//
// Locking: KernelClock::lock_ (rank kFile) guards the watcher list; a
// watcher's callback runs under it and may take locks ranked above kFile
// (an object's own lock, kSocket), never a lower one. watch/unwatch are
// called with no lock of rank kFile or above held; once unwatch returns,
// no callback of that watcher runs.
#pragma once

#include <sys/time.h>

#include <atomic>
#include <boost/intrusive/list.hpp>
#include <cstdint>

#include <rump/rumpuser.h>

#include "base/result.h"
#include "sync/mutex.h"

namespace rump {

struct RealtimeWatcher {
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;
  void (*was_set)(RealtimeWatcher& w) = nullptr;
};

// A kernel's realtime clock (Kernel::clock()).
class KernelClock {
 public:
  // The kernel's realtime, in nanoseconds since the epoch.
  int64_t realtime_ns() const { return host_wall_ns() + offset_ns_.load(std::memory_order_acquire); }
  // Sets the realtime clock (the caller checked the privilege), then tells
  // every watcher. EINVAL for a time before the monotonic clock's reading,
  // as Linux (the realtime clock may not go back past boot).
  Result<void> set_realtime(int64_t ns);

  void watch(RealtimeWatcher& w) {
    MutexLocker g(lock_);
    if (!w.hook.is_linked()) watchers_.push_back(w);
  }
  void unwatch(RealtimeWatcher& w) {
    MutexLocker g(lock_);
    if (w.hook.is_linked()) watchers_.erase(watchers_.iterator_to(w));
  }

  // The time zone settimeofday records and gettimeofday reports (the
  // kernel itself keeps UTC).
  struct timezone timezone() const {
    int64_t v = tz_.load(std::memory_order_relaxed);
    struct timezone z{};
    z.tz_minuteswest = static_cast<int>(v >> 32);
    z.tz_dsttime = static_cast<int>(static_cast<uint32_t>(v));
    return z;
  }
  void set_timezone(const struct timezone& z) {
    tz_.store((static_cast<int64_t>(z.tz_minuteswest) << 32) | static_cast<uint32_t>(z.tz_dsttime),
              std::memory_order_relaxed);
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

  std::atomic<int64_t> offset_ns_{0};
  std::atomic<int64_t> tz_{0};
  Mutex lock_{LockRank::kFile};
  using List = boost::intrusive::list<
      RealtimeWatcher,
      boost::intrusive::member_hook<RealtimeWatcher, decltype(RealtimeWatcher::hook), &RealtimeWatcher::hook>,
      boost::intrusive::constant_time_size<false>>;
  List watchers_ ABSL_GUARDED_BY(lock_);
};

}  // namespace rump
