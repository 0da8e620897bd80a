// clock.cc: the "pthread" backend's clocks: the host's wall and monotonic
// clocks, sleeping on them, and the per-thread CPU clocks.
// Sleeping blocks, so it gives the virtual CPU back (KLOCK wrap).
#include <rump/rumpuser.h>

#include <pthread.h>
#include <time.h>

#include <cerrno>

#include "rumpuser_int.h"

namespace rumpuser_int::pth {

int clock_read(int clock, int64_t* sec, long* nsec) {
  clockid_t id;
  switch (clock) {
    case RUMPUSER_CLOCK_RELWALL: id = CLOCK_REALTIME; break;
    case RUMPUSER_CLOCK_ABSMONO: id = CLOCK_MONOTONIC; break;
    default: return EINVAL;
  }
  struct timespec ts;
  if (::clock_gettime(id, &ts) != 0) return errno;
  *sec = ts.tv_sec;
  *nsec = ts.tv_nsec;
  return 0;
}

int clock_sleep(int clock, int64_t sec, long nsec) {
  if (clock != RUMPUSER_CLOCK_RELWALL && clock != RUMPUSER_CLOCK_ABSMONO) return EINVAL;
  if (sec < 0 || nsec < 0 || nsec >= 1000000000L) return EINVAL;
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(sec);
  ts.tv_nsec = nsec;

  KlockWrap wrap;
  int rv;
  if (clock == RUMPUSER_CLOCK_RELWALL) {
    // The remainder carries over an interruption, so the total sleep is
    // the interval asked for.
    struct timespec rem;
    while ((rv = clock_nanosleep(CLOCK_REALTIME, 0, &ts, &rem)) == EINTR) ts = rem;
  } else {
    while ((rv = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr)) == EINTR) {
    }
  }
  return rv;
}

// A handle is the thread's CPU clockid_t: the host encodes the thread in
// it, and any thread of the process may read it while that thread lives.
int cpuclock_self(uint64_t* clkp) {
  clockid_t id;
  if (int e = pthread_getcpuclockid(pthread_self(), &id)) return e;
  *clkp = static_cast<uint64_t>(static_cast<uint32_t>(id));
  return 0;
}

int cpuclock_read(uint64_t clk, int64_t* nsp) {
  struct timespec ts;
  if (::clock_gettime(static_cast<clockid_t>(static_cast<uint32_t>(clk)), &ts) != 0) return errno;
  *nsp = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  return 0;
}

}  // namespace rumpuser_int::pth
