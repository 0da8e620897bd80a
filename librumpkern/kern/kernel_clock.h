// kernel_clock.h: a kernel's realtime clock.
//
// The realtime clock is each kernel's own: the host's wall clock plus an
// offset that clock_settime and settimeofday move (KernelClock::set_realtime,
// the one writer), so that setting the time in one kernel changes nothing in
// the host or in any other kernel. Defined in kern/sys_time.cc.
#pragma once

#include <sys/time.h>

#include <atomic>
#include <cstdint>

#include "base/result.h"

namespace rump {

// A kernel's realtime clock (Kernel::clock()).
class KernelClock {
 public:
  // The kernel's realtime, in nanoseconds since the epoch.
  int64_t realtime_ns() const;
  // Sets the realtime clock (the caller checked the privilege). EINVAL for
  // a time before the monotonic clock's reading, as Linux (the realtime
  // clock may not go back past boot). Everything that must learn of a
  // change of the realtime clock (absolute realtime timers) is told here.
  Result<void> set_realtime(int64_t ns);

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
  std::atomic<int64_t> offset_ns_{0};
  std::atomic<int64_t> tz_{0};
};

}  // namespace rump
