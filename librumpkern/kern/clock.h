// clock.h: the kernel's view of time, through the clock hypercalls.
#pragma once

#include <rump/rumpuser.h>

#include <cstdint>

namespace rump {

inline constexpr int64_t kNsPerSec = 1000000000;

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
