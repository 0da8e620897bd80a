// Time system calls: clock_gettime, clock_getres, clock_settime,
// clock_nanosleep, nanosleep, gettimeofday, settimeofday, times, getrusage,
// sysinfo. Time comes from the clock hypercalls (kern/clock.h); sleeps are
// interruptible Lwp::sleep()s, so a signal ends them with EINTR.
//
// Clocks: REALTIME (and REALTIME_COARSE, TAI: the kernel's realtime clock,
// the host's wall clock moved by clock_settime; this kernel keeps no
// leap-second offset), MONOTONIC, MONOTONIC_RAW,
// MONOTONIC_COARSE, BOOTTIME (the host's monotonic clock; the kernel never
// suspends, so boot time equals monotonic), and the CPU-time clocks: the
// calling process's and thread's, and any process's or thread's named by
// Linux's encoding (clock_getcpuclockid, pthread_getcpuclockid), read from
// the kernel's accounting (kern/cputime.h), as are times() and getrusage().
// Resolutions are Linux's: 1 ns for the high-resolution clocks, a tick of a
// 250 Hz kernel for the coarse ones.
#include <sys/sysinfo.h>
#include <sys/times.h>

#include <climits>
#include <cstring>
#include <ctime>

#include "kern/clock.h"
#include "kern/copy.h"
#include "kern/cputime.h"
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
    default:
      // The CPU-time clocks, checked when read (cpu_clock_read).
      if (is_cpu_clock(clk)) return ClockBase::kCpu;
      return err(EINVAL);
  }
}

// The clock's reading; clk is only looked at for kCpu.
Result<int64_t> now_ns(Lwp& l, ClockBase b, clockid_t clk) {
  switch (b) {
    case ClockBase::kWall: return l.kernel().clock().realtime_ns();
    case ClockBase::kMono: return mono_now_ns();
    case ClockBase::kCpu: return cpu_clock_read(l, clk);
  }
  return 0;
}

// A CPU-time clock advances only while some thread runs: a sleep on one
// looks at it again at least this often.
constexpr int64_t kCpuSleepSliceNs = 10 * 1000 * 1000;

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
Result<void> sleep_until(Lwp& l, ClockBase b, clockid_t clk, int64_t until, int64_t* left) {
  // A private wait channel: nobody wakes it but interrupt(); the sleep ends
  // at its deadline.
  Mutex m;
  CondVar cv;
  MutexLocker g(m);
  bool cpu_running = b == ClockBase::kCpu && cpu_clocks_run();
  for (;;) {
    int64_t now = TRY(now_ns(l, b, clk));
    if (now >= until) return {};
    // The deadline on the monotonic clock, recomputed each round so a wall
    // clock that is set meanwhile is followed.
    // A deadline past the monotonic clock's range is none: the sleep ends
    // only by a signal (as Linux's KTIME_MAX, which never expires).
    int64_t mono = mono_now_ns();
    int64_t wait = until - now;
    if (b == ClockBase::kCpu && wait > kCpuSleepSliceNs) wait = kCpuSleepSliceNs;
    int64_t deadline = wait > INT64_MAX - mono ? -1 : mono + wait;
    // A CPU-time clock that never advances (no CPU clocks in this backend)
    // is a sleep for good: only a signal ends it, and the sim backend sees
    // a wait with no timer rather than a poll that never ends.
    if (b == ClockBase::kCpu && !cpu_running) deadline = -1;
    int e = l.sleep(cv, m, deadline, true);
    // nanosleep and clock_nanosleep are never restarted after a handler.
    if (is_restart(e)) {
      Result<int64_t> at = now_ns(l, b, clk);
      *left = at.ok() ? until - *at : 0;
      if (*left < 0) *left = 0;
      return err(EINTR);
    }
  }
}

Result<long> do_nanosleep(Lwp& l, clockid_t clk, int flags, UserPtr<timespec> req, UserPtr<timespec> rem) {
  // As Linux: a thread's CPU-time clock can't be slept on (the constant has
  // no sleep at all: EOPNOTSUPP); raw/coarse clocks have no sleep.
  if (clk == CLOCK_THREAD_CPUTIME_ID) return err(EOPNOTSUPP);
  if (clk < 0 && (clk & kCpuClockThread)) return err(EINVAL);
  ClockBase b = TRY(clock_base(clk));
  if (clk == CLOCK_MONOTONIC_RAW || clk == CLOCK_MONOTONIC_COARSE || clk == CLOCK_REALTIME_COARSE)
    return err(EOPNOTSUPP);
  // Other flag bits are ignored, as on Linux.
  timespec ts = TRY(copyin_obj(l, req));
  int64_t ns = TRY(timespec_ns(ts));
  bool abs = flags & TIMER_ABSTIME;
  int64_t now = abs ? 0 : TRY(now_ns(l, b, clk));
  // A relative sleep past the end of time sleeps until then (no overflow).
  int64_t until = abs ? ns : (ns > INT64_MAX - now ? INT64_MAX : now + ns);
  int64_t left = 0;
  Result<void> r = sleep_until(l, b, clk, until, &left);
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
  timespec ts = to_timespec(TRY(now_ns(l, b, clk)));
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
    int64_t ns = l.kernel().clock().realtime_ns();
    timeval t{};
    t.tv_sec = static_cast<time_t>(ns / kNsPerSec);
    t.tv_usec = static_cast<suseconds_t>((ns % kNsPerSec) / 1000);
    TRY(copyout_obj(l, t, tv));
  }
  if (tz) {
    struct timezone z = l.kernel().clock().timezone();
    TRY(copyout_obj(l, z, tz));
  }
  return 0;
}

Result<void> KernelClock::set_realtime(int64_t ns) {
  // Linux refuses a realtime clock set before the monotonic clock's
  // reading (wall_to_monotonic may not become positive).
  if (ns < mono_now_ns()) return err(EINVAL);
  MutexLocker g(lock_);
  offset_ns_.store(ns - host_wall_ns(), std::memory_order_release);
  for (RealtimeWatcher& w : watchers_) w.was_set(w);
  return {};
}

Result<long> sys_clock_getres(Lwp& l, clockid_t clk, UserPtr<struct timespec> res) {
  ClockBase b = TRY(clock_base(clk));
  timespec ts{};
  bool coarse = clk == CLOCK_REALTIME_COARSE || clk == CLOCK_MONOTONIC_COARSE;
  ts.tv_nsec = coarse ? kCoarseTickNs : 1;
  if (b == ClockBase::kCpu) {
    TRY(cpu_clock_read(l, clk));  // the process or thread must exist
    ts.tv_nsec = static_cast<long>(cpu_clock_res(clk));
  }
  if (res) TRY(copyout_obj(l, ts, res));
  return 0;
}

namespace {

// The largest realtime clock_settime accepts (Linux's TIME_SETTOD_SEC_MAX:
// KTIME_SEC_MAX less 30 years, so that the clock can't wrap while running).
constexpr int64_t kSettodSecMax = INT64_MAX / kNsPerSec - 30LL * 365 * 86400;

// Sets the realtime clock: clock_settime(CLOCK_REALTIME) and
// settimeofday. EINVAL for an invalid or out-of-range time, then EPERM
// without CAP_SYS_TIME (Linux's order).
Result<void> settime(Lwp& l, const timespec& ts) {
  if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= kNsPerSec || ts.tv_sec >= kSettodSecMax)
    return err(EINVAL);
  if (!l.cred().capable(kCapSysTime)) return err(EPERM);
  return l.kernel().clock().set_realtime(static_cast<int64_t>(ts.tv_sec) * kNsPerSec + ts.tv_nsec);
}

}  // namespace

Result<long> sys_clock_settime(Lwp& l, clockid_t clk, UserPtr<struct timespec> tp) {
  // Only CLOCK_REALTIME can be set; Linux checks the clock before reading
  // the time.
  if (clk != CLOCK_REALTIME) return err(EINVAL);
  timespec ts = TRY(copyin_obj(l, tp));
  TRY(settime(l, ts));
  return 0;
}

Result<long> sys_settimeofday(Lwp& l, UserPtr<struct timeval> tv, UserPtr<struct timezone> tz) {
  timespec ts{};
  if (tv) {
    timeval t = TRY(copyin_obj(l, tv));
    if (t.tv_sec < 0 || t.tv_usec < 0 || t.tv_usec >= 1000000) return err(EINVAL);
    ts.tv_sec = t.tv_sec;
    ts.tv_nsec = t.tv_usec * 1000;
  }
  struct timezone z{};
  if (tz) z = TRY(copyin_obj(l, tz));
  if (tv && ts.tv_sec >= kSettodSecMax) return err(EINVAL);
  if (!l.cred().capable(kCapSysTime)) return err(EPERM);
  if (tz) {
    if (z.tz_minuteswest > 15 * 60 || z.tz_minuteswest < -15 * 60) return err(EINVAL);
    l.kernel().clock().set_timezone(z);
  }
  if (tv) TRY(settime(l, ts));
  return 0;
}

namespace {
constexpr int64_t kUserHz = 100;  // clock_t ticks per second (Linux's USER_HZ)
}  // namespace

Result<long> sys_times(Lwp& l, UserPtr<struct tms> buf) {
  if (buf) {
    l.kernel().services().cputick()->kick();
    CpuUsage self = cpu_proc_usage(l.proc(), false);
    CpuUsage children = cpu_proc_usage(l.proc(), true);
    constexpr int64_t kNsPerTick = kNsPerSec / kUserHz;
    struct tms t;
    std::memset(&t, 0, sizeof t);
    t.tms_utime = static_cast<clock_t>(self.utime_ns / kNsPerTick);
    t.tms_stime = static_cast<clock_t>(self.stime_ns / kNsPerTick);
    t.tms_cutime = static_cast<clock_t>(children.utime_ns / kNsPerTick);
    t.tms_cstime = static_cast<clock_t>(children.stime_ns / kNsPerTick);
    TRY(copyout_obj(l, t, buf));
  }
  int64_t up = mono_now_ns() - static_cast<int64_t>(l.kernel().boot_time_ns());
  return up / (kNsPerSec / kUserHz);
}

Result<long> sys_getrusage(Lwp& l, int who, UserPtr<struct rusage> usage) {
  if (who != RUSAGE_SELF && who != RUSAGE_CHILDREN && who != RUSAGE_THREAD) return err(EINVAL);
  l.kernel().services().cputick()->kick();
  // The process's peak: a thread reports its process's, as Linux.
  uint64_t maxrss = who == RUSAGE_CHILDREN ? 0 : cpu_note_rss(l.proc());
  CpuUsage u = who == RUSAGE_THREAD ? cpu_lwp_usage(l) : cpu_proc_usage(l.proc(), who == RUSAGE_CHILDREN);
  if (who == RUSAGE_THREAD) u.maxrss_kib = maxrss;
  struct rusage ru;
  std::memset(&ru, 0, sizeof ru);
  cpu_fill_rusage(u, ru);
  TRY(copyout_obj(l, ru, usage));
  return 0;
}

Result<long> sys_sysinfo(Lwp& l, UserPtr<struct sysinfo> info) {
  Kernel& k = l.kernel();
  struct sysinfo si;
  std::memset(&si, 0, sizeof si);
  int64_t up = mono_now_ns() - static_cast<int64_t>(k.boot_time_ns());
  // Whole seconds, rounded up (Linux).
  si.uptime = static_cast<long>((up + kNsPerSec - 1) / kNsPerSec);
  // The kernel's memory is its memory limit; without one, as much as the
  // field holds (page-aligned).
  size_t limit = k.kmem().limit();
  size_t used = k.kmem().in_use();
  si.totalram = limit ? limit : (ULONG_MAX & ~0xfffUL);
  si.freeram = si.totalram > used ? si.totalram - used : 0;
  {
    ProcTable& t = k.procs();
    MutexLocker g(t.lock());
    si.procs = static_cast<unsigned short>(t.nprocs_locked());
  }
  si.mem_unit = 1;
  TRY(copyout_obj(l, si, info));
  return 0;
}

}  // namespace rump
