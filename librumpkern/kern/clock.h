// clock.h: the kernel's view of time, through the clock hypercalls. The
// monotonic clock is the host's; the realtime clock is each kernel's own
// (kern/kernel_clock.h): wall_now_ns() is the host's wall clock, which
// only KernelClock should read.
#pragma once

#include <rump/rumpuser.h>

#include <cstdint>

#include "kern/kernel_clock.h"

namespace rump {

inline constexpr int64_t kNsPerSec = 1000000000;
// The resolution of the coarse clocks: a tick of a 250 Hz kernel.
inline constexpr int64_t kCoarseTickNs = kNsPerSec / 250;

inline int64_t mono_now_ns() {
  int64_t s = 0;
  long ns = 0;
  rumpuser_clock_gettime(RUMPUSER_CLOCK_ABSMONO, &s, &ns);
  return s * kNsPerSec + ns;
}

inline int64_t wall_now_ns() {
  int64_t s = 0;
  long ns = 0;
  rumpuser_clock_gettime(RUMPUSER_CLOCK_RELWALL, &s, &ns);
  return s * kNsPerSec + ns;
}

}  // namespace rump
