// Time system calls: clock_gettime, clock_nanosleep, nanosleep,
// gettimeofday, clock_settime, settimeofday. Time comes from the clock hypercalls (kern/clock.h); sleeps
// are interruptible Lwp::sleep()s, so a signal ends them with EINTR.
//
// Clocks: REALTIME (and REALTIME_COARSE, TAI: the kernel's realtime clock,
// the host's wall clock plus what clock_settime moved, kern/realtime.h;
// this kernel keeps no leap-second offset), MONOTONIC, MONOTONIC_RAW,
// MONOTONIC_COARSE, BOOTTIME (the host's monotonic clock; the kernel never
// suspends, so boot time equals monotonic), and the CPU-time clocks of the
// calling process and thread, approximated by the monotonic time since this
// kernel booted (the kernel does not account CPU time).
#include <ctime>

#include "kern/clock.h"
#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"

#ifndef CLOCK_TAI
#define CLOCK_TAI 11
#endif

namespace rump {

namespace {

enum class ClockBase { kWall, kMono, kCpu };

Result<ClockBase> clock_base(clockid_t clk) {
  switch (clk) {
    case CLOCK_REALTIME:
    case CLOCK_REALTIME_COARSE:
    case CLOCK_TAI:
      return ClockBase::kWall;
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME:
      return ClockBase::kMono;
    case CLOCK_PROCESS_CPUTIME_ID:
    case CLOCK_THREAD_CPUTIME_ID:
      return ClockBase::kCpu;
    default:
      // Including negative ids (another process's CPU clock, a clock fd):
      // not supported.
      return err(EINVAL);
  }
}

int64_t now_ns(Kernel& k, ClockBase b) {
  switch (b) {
    case ClockBase::kWall: return k.realtime().now_ns();
    case ClockBase::kMono: return mono_now_ns();
    case ClockBase::kCpu: return mono_now_ns() - static_cast<int64_t>(k.boot_time_ns());
  }
  return 0;
}

timespec to_timespec(int64_t ns) {
  if (ns < 0) ns = 0;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / kNsPerSec);
  ts.tv_nsec = static_cast<long>(ns % kNsPerSec);
  return ts;
}

Result<int64_t> timespec_ns(const timespec& ts) {
  if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= kNsPerSec) return err(EINVAL);
  // Clamp far-future times instead of overflowing (about 292 years).
  constexpr int64_t kMaxSec = INT64_MAX / kNsPerSec - 1;
  int64_t sec = ts.tv_sec > kMaxSec ? kMaxSec : static_cast<int64_t>(ts.tv_sec);
  return sec * kNsPerSec + ts.tv_nsec;
}

// Sleeps until the clock b reads `until` (absolute, on that clock).
// Returns EINTR, with *left the time that remained, if a signal (or the
// process's exit) interrupts it.
Result<void> sleep_until(Lwp& l, ClockBase b, int64_t until, int64_t* left) {
  Kernel& k = l.kernel();
  // A private wait channel: nobody wakes it but interrupt(); the sleep ends
  // at its deadline.
  Mutex m;
  CondVar cv;
  MutexLocker g(m);
  for (;;) {
    int64_t now = now_ns(k, b);
    if (now >= until) return {};
    // The deadline on the monotonic clock, recomputed each round so a wall
    // clock that is set meanwhile is followed.
    int64_t deadline = mono_now_ns() + (until - now);
    int e = l.sleep(cv, m, deadline, true);
    if (e == EINTR) {
      *left = until - now_ns(k, b);
      if (*left < 0) *left = 0;
      return err(EINTR);
    }
  }
}

Result<long> do_nanosleep(Lwp& l, clockid_t clk, int flags, UserPtr<timespec> req, UserPtr<timespec> rem) {
  // As Linux: CPU-time clocks of other threads can't be slept on; the
  // thread's own cannot either; raw/coarse clocks have no sleep.
  if (clk == CLOCK_THREAD_CPUTIME_ID) return err(EINVAL);
  ClockBase b = TRY(clock_base(clk));
  if (clk == CLOCK_MONOTONIC_RAW || clk == CLOCK_MONOTONIC_COARSE || clk == CLOCK_REALTIME_COARSE)
    return err(EOPNOTSUPP);
  // Other flag bits are ignored, as on Linux.
  timespec ts = TRY(copyin_obj(l, req));
  int64_t ns = TRY(timespec_ns(ts));
  bool abs = flags & TIMER_ABSTIME;
  int64_t until = abs ? ns : now_ns(l.kernel(), b) + ns;
  int64_t left = 0;
  Result<void> r = sleep_until(l, b, until, &left);
  if (!r.ok()) {
    // Only relative sleeps report what remained (Linux).
    if (!abs && rem) {
      timespec rts = to_timespec(left);
      TRY(copyout_obj(l, rts, rem));
    }
    return Error{r.error()};
  }
  return 0;
}

}  // namespace

Result<long> sys_clock_gettime(Lwp& l, clockid_t clk, UserPtr<struct timespec> tp) {
  ClockBase b = TRY(clock_base(clk));
  timespec ts = to_timespec(now_ns(l.kernel(), b));
  TRY(copyout_obj(l, ts, tp));
  return 0;
}

Result<long> sys_clock_nanosleep(Lwp& l, clockid_t clk, int flags, UserPtr<struct timespec> req,
                                 UserPtr<struct timespec> rem) {
  return do_nanosleep(l, clk, flags, req, rem);
}

Result<long> sys_nanosleep(Lwp& l, UserPtr<struct timespec> req, UserPtr<struct timespec> rem) {
  return do_nanosleep(l, CLOCK_MONOTONIC, 0, req, rem);
}

Result<long> sys_gettimeofday(Lwp& l, UserPtr<struct timeval> tv, UserPtr<struct timezone> tz) {
  if (tv) {
    int64_t ns = l.kernel().realtime().now_ns();
    timeval t{};
    t.tv_sec = static_cast<time_t>(ns / kNsPerSec);
    t.tv_usec = static_cast<suseconds_t>((ns % kNsPerSec) / 1000);
    TRY(copyout_obj(l, t, tv));
  }
  if (tz) {
    // The kernel keeps no time zone: UTC, no DST (Linux's default).
    struct timezone z{};
    TRY(copyout_obj(l, z, tz));
  }
  return 0;
}

// Setting the realtime clock, in Linux's order of checks: a clock that
// cannot be set (EINVAL), the value (EFAULT, EINVAL), then the privilege
// (root only: CAP_SYS_TIME; EPERM). Only CLOCK_REALTIME can be set.
// Watchers (a timerfd with TFD_TIMER_CANCEL_ON_SET) are told.
Result<long> sys_clock_settime(Lwp& l, clockid_t clk, UserPtr<struct timespec> tp) {
  if (clk != CLOCK_REALTIME) return err(EINVAL);
  timespec ts = TRY(copyin_obj(l, tp));
  int64_t ns = TRY(timespec_ns(ts));
  if (!l.cred().is_root()) return err(EPERM);
  l.kernel().realtime().set(ns);
  return 0;
}

Result<long> sys_settimeofday(Lwp& l, UserPtr<struct timeval> tv, UserPtr<struct timezone> tz) {
  timeval t{};
  if (tv) {
    t = TRY(copyin_obj(l, tv));
    if (t.tv_usec < 0 || t.tv_usec >= 1000000 || t.tv_sec < 0) return err(EINVAL);
  }
  struct timezone z{};
  if (tz) z = TRY(copyin_obj(l, tz));
  if (!l.cred().is_root()) return err(EPERM);
  if (tz && (z.tz_minuteswest < -15 * 60 || z.tz_minuteswest > 15 * 60)) return err(EINVAL);
  // The time zone is checked and not kept (the kernel runs on UTC).
  if (tv) l.kernel().realtime().set(static_cast<int64_t>(t.tv_sec) * kNsPerSec + t.tv_usec * 1000);
  return 0;
}

}  // namespace rump
