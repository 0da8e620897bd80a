// random.cc: entropy from the host kernel's getrandom(2), or, for a thread
// of a "sim" world, from the world's seed (a run must not depend on it).
#include <rump/rumpuser.h>

#include <sys/random.h>

#include <cerrno>

#include "rumpuser_int.h"

extern "C" int rumpuser_getrandom(void* buf, size_t buflen, int flags, size_t* retp) {
  if (rumpuser_int::sim::fill_random(buf, buflen)) {
    *retp = buflen;
    return 0;
  }
  // RUMPUSER_RANDOM_HARD needs nothing more: the host's urandom pool is
  // cryptographically strong once initialised, and getrandom waits for that.
  if (rumpuser_int::fault_inject(RUMPUSER_FAULT_RANDOM)) {
    // What getrandom gives when the pool has nothing for a caller that
    // will not wait (and what a caller that waits must also handle).
    *retp = 0;
    return EAGAIN;
  }
  unsigned gflags = (flags & RUMPUSER_RANDOM_NOWAIT) ? GRND_NONBLOCK : 0;
  ssize_t n = rumpuser_int::retry_eintr([&] { return getrandom(buf, buflen, gflags); });
  if (n < 0) {
    *retp = 0;
    return errno;
  }
  *retp = static_cast<size_t>(n);
  return 0;
}
