// Time calls against the host: clock_getres, clock_settime and
// settimeofday (privilege and validation), the kernel's own realtime
// clock, times, getrusage, sysinfo, interval timers and alarm (SIGALRM
// from the kernel's callouts), and POSIX timers (ids, validation, signal
// delivery, SIGEV_NONE, overruns, the siginfo of their signals, and
// timer_delete dropping a pending one).
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "differential.h"
#include "rump_test.h"

namespace {

using rump_diff::check_same;
using rump_diff::differential;
using rump_diff::kHost;
using rump_diff::kRump;
using rump_diff::Sys;
using rump_diff::Trace;
using rump_test::as;
using rump_test::fork_kid;
using rump_test::host_child;
using rump_test::Kid;
using rump_test::KernelUp;

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

constexpr long kSec = 1000000000L;

// A caught signal: the kernel records the handler (never runs it), so the
// signal interrupts sleeps. On the host a real, empty handler.
void on_signal(int) {}
long catch_signal(Sys sys, int sig) {
  if (sys.fn == kHost.fn) {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    return sigaction(sig, &sa, nullptr);
  }
  return rump_test::set_action(sig, rump_test::kHandler);
}
long block_signal(Sys sys, int how, int sig) {
  uint64_t set = rump_test::sig_bit(sig);
  return sys(SYS_rt_sigprocmask, how, &set, nullptr, 8);
}

// Waits (up to 10 s) until sig is pending for the caller: true if it is.
bool wait_pending(Sys sys, int sig) {
  for (int i = 0; i < 1000; i++) {
    uint64_t pending = 0;
    if (sys(SYS_rt_sigpending, &pending, 8) != 0) return false;
    if (pending & rump_test::sig_bit(sig)) return true;
    timespec ts{0, 10000000};
    sys(SYS_nanosleep, &ts, nullptr);
  }
  return false;
}

}  // namespace

TEST_CASE("clock_getres: 1 ns for high-resolution clocks, EINVAL for unknown ones, as the host",
          "[time][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    for (long clk : {0L, 1L, 2L, 3L, 4L, 7L, 10L, 11L, 12L, 100L, -1L}) {
      timespec ts{-1, -1};
      T(sys(SYS_clock_getres, clk, &ts));
      V(ts.tv_sec);
      V(ts.tv_nsec);
    }
    T(sys(SYS_clock_getres, CLOCK_MONOTONIC, nullptr));
    T(sys(SYS_clock_getres, 99, nullptr));
    return trace;
  });
  // The coarse clocks tick at 250 Hz here (the host's depends on its HZ).
  timespec ts{};
  REQUIRE(rump_sys_clock_getres(CLOCK_MONOTONIC_COARSE, &ts) == 0);
  CHECK(ts.tv_sec == 0);
  CHECK(ts.tv_nsec == 4000000);
  REQUIRE(rump_sys_clock_getres(CLOCK_REALTIME_COARSE, &ts) == 0);
  CHECK(ts.tv_nsec == 4000000);
}

TEST_CASE("clock_settime and settimeofday without privilege: errors in Linux's order",
          "[time][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    // Never go on as root: the host's clock must not be set.
    if (T(sys(SYS_setuid, 1000)) != 0) return trace;
    timespec now{};
    T(sys(SYS_clock_gettime, CLOCK_REALTIME, &now));
    T(sys(SYS_clock_settime, CLOCK_REALTIME, &now));
    T(sys(SYS_clock_settime, CLOCK_MONOTONIC, &now));
    T(sys(SYS_clock_settime, CLOCK_BOOTTIME, &now));
    T(sys(SYS_clock_settime, CLOCK_REALTIME_COARSE, &now));
    T(sys(SYS_clock_settime, CLOCK_TAI, &now));
    T(sys(SYS_clock_settime, CLOCK_PROCESS_CPUTIME_ID, &now));
    T(sys(SYS_clock_settime, 77, &now));
    timespec bad{now.tv_sec, 2 * kSec};
    T(sys(SYS_clock_settime, CLOCK_REALTIME, &bad));
    timespec neg{-5, 0};
    T(sys(SYS_clock_settime, CLOCK_REALTIME, &neg));
    timeval tv{now.tv_sec, 0};
    T(sys(SYS_settimeofday, &tv, nullptr));
    timeval badtv{now.tv_sec, 1000000};
    T(sys(SYS_settimeofday, &badtv, nullptr));
    struct timezone tz{24 * 60, 0};
    T(sys(SYS_settimeofday, nullptr, &tz));  // EPERM before the zone's range
    T(sys(SYS_settimeofday, nullptr, nullptr));
    return trace;
  });
}

TEST_CASE("clock_settime moves this kernel's realtime clock only", "[time]") {
  KernelUp a;
  timespec before{}, mono_before{};
  REQUIRE(rump_sys_clock_gettime(CLOCK_REALTIME, &before) == 0);
  REQUIRE(rump_sys_clock_gettime(CLOCK_MONOTONIC, &mono_before) == 0);
  timespec later = before;
  later.tv_sec += 100000;
  REQUIRE(rump_sys_clock_settime(CLOCK_REALTIME, &later) == 0);
  timespec now{};
  REQUIRE(rump_sys_clock_gettime(CLOCK_REALTIME, &now) == 0);
  CHECK(now.tv_sec >= later.tv_sec);
  CHECK(now.tv_sec < later.tv_sec + 1000);
  timeval tv{};
  REQUIRE(rump_sys_gettimeofday(&tv, nullptr) == 0);
  CHECK(tv.tv_sec >= later.tv_sec);
  // The monotonic clock and the host's realtime clock did not move.
  timespec mono{};
  REQUIRE(rump_sys_clock_gettime(CLOCK_MONOTONIC, &mono) == 0);
  CHECK(mono.tv_sec < mono_before.tv_sec + 1000);
  timespec host{};
  REQUIRE(clock_gettime(CLOCK_REALTIME, &host) == 0);
  CHECK(host.tv_sec < later.tv_sec - 1000);
  // Another kernel keeps the host's time.
  {
    rump_test::on_fresh_thread([&] {
      KernelUp b;
      timespec t{};
      REQUIRE(rump_sys_clock_gettime(CLOCK_REALTIME, &t) == 0);
      CHECK(t.tv_sec < later.tv_sec - 1000);
    });
  }
  // Before the monotonic clock's reading: EINVAL (Linux).
  timespec zero{0, 0};
  CHECK_ERRNO(EINVAL, rump_sys_clock_settime(CLOCK_REALTIME, &zero));
  // settimeofday sets it too, and records the time zone.
  timeval back{before.tv_sec, 0};
  struct timezone tz{-60, 0};
  REQUIRE(rump_sys_settimeofday(&back, &tz) == 0);
  struct timezone got{};
  REQUIRE(rump_sys_gettimeofday(&tv, &got) == 0);
  CHECK(tv.tv_sec < later.tv_sec - 1000);
  CHECK(got.tz_minuteswest == -60);
  struct timezone far{16 * 60, 0};
  CHECK_ERRNO(EINVAL, rump_sys_settimeofday(nullptr, &far));
}

TEST_CASE("times, getrusage and sysinfo: validation as the host, sane values", "[time][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    struct rusage ru;
    for (long who : {0L, -1L, 1L, 2L, -2L, 77L}) T(sys(SYS_getrusage, who, &ru));
    struct tms t;
    long a = sys(SYS_times, &t);
    long b = sys(SYS_times, nullptr);
    V(a >= 0);
    V(b >= a);
    struct sysinfo si;
    std::memset(&si, 0, sizeof si);
    T(sys(SYS_sysinfo, &si));
    V(si.mem_unit >= 1);
    V(si.uptime >= 1);
    V(si.procs >= 1);
    V(si.totalram >= si.freeram);
    return trace;
  });
}

TEST_CASE("setitimer/getitimer/alarm: values, validation and rounding as the host",
          "[time][itimer][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    itimerval v{}, old{};
    T(sys(SYS_getitimer, ITIMER_REAL, &v));
    V(v.it_value.tv_sec), V(v.it_value.tv_usec), V(v.it_interval.tv_sec);
    T(sys(SYS_getitimer, 3, &v));
    T(sys(SYS_getitimer, -1, &v));
    itimerval bad{{0, 0}, {0, 1000000}};
    T(sys(SYS_setitimer, ITIMER_REAL, &bad, nullptr));
    itimerval badi{{0, -1}, {1, 0}};
    T(sys(SYS_setitimer, ITIMER_REAL, &badi, nullptr));
    itimerval set{{1, 500}, {100, 0}};
    T(sys(SYS_setitimer, 5, &set, nullptr));
    T(sys(SYS_setitimer, ITIMER_REAL, &set, &old));
    V(old.it_value.tv_sec), V(old.it_value.tv_usec);
    T(sys(SYS_getitimer, ITIMER_REAL, &v));
    V(v.it_interval.tv_sec), V(v.it_interval.tv_usec);
    V(v.it_value.tv_sec < 100 || (v.it_value.tv_sec == 100 && v.it_value.tv_usec == 0));
    V(v.it_value.tv_sec > 0);
    // A zero value disarms, whatever the interval; the old value comes back.
    itimerval off{{5, 0}, {0, 0}};
    T(sys(SYS_setitimer, ITIMER_REAL, &off, &old));
    V(old.it_interval.tv_sec), V(old.it_interval.tv_usec);
    T(sys(SYS_getitimer, ITIMER_REAL, &v));
    V(v.it_value.tv_sec), V(v.it_value.tv_usec), V(v.it_interval.tv_sec);
    // alarm: the seconds left, rounded.
    T(sys(SYS_alarm, 100));
    T(sys(SYS_alarm, 5));  // 100 left (rounded to the nearest second)
    T(sys(SYS_getitimer, ITIMER_REAL, &v));
    V(v.it_value.tv_sec <= 5), V(v.it_interval.tv_sec);
    T(sys(SYS_alarm, 0));
    // A null new value disarms too.
    T(sys(SYS_alarm, 50));
    T(sys(SYS_setitimer, ITIMER_REAL, nullptr, &old));
    V(old.it_value.tv_sec <= 50 && old.it_value.tv_sec >= 40);
    T(sys(SYS_alarm, 0));
    // The CPU-time timers take their values (intervals read back as set).
    itimerval prof{{0, 250000}, {60, 0}};
    T(sys(SYS_setitimer, ITIMER_PROF, &prof, nullptr));
    T(sys(SYS_getitimer, ITIMER_PROF, &v));
    V(v.it_interval.tv_sec), V(v.it_interval.tv_usec);
    itimerval zero{};
    T(sys(SYS_setitimer, ITIMER_PROF, &zero, nullptr));
    return trace;
  });
}

TEST_CASE("ITIMER_REAL ends a process with SIGALRM by default and interrupts a sleep when caught",
          "[time][itimer][differential]") {
  KernelUp up;
  auto scenario = [](Sys sys, bool caught) {
    Trace trace;
    if (caught) T(catch_signal(sys, SIGALRM));
    itimerval v{{0, 0}, {0, 20000}};
    T(sys(SYS_setitimer, ITIMER_REAL, &v, nullptr));
    timespec ts{60, 0};
    T(sys(SYS_nanosleep, &ts, nullptr));
    return trace;
  };
  // Caught: the sleep ends with EINTR.
  Trace host = host_child<Trace>([&] { return scenario(kHost, true); });
  Kid k = fork_kid();
  Trace rump = as(k.l, [&] { return scenario(kRump, true); });
  check_same(host, rump);
  REQUIRE(rump.n == 6);
  CHECK(rump.v[5] == EINTR);

  // Default action: the process ends, killed by SIGALRM.
  pid_t hp = fork();
  REQUIRE(hp >= 0);
  if (hp == 0) {
    scenario(kHost, false);
    _exit(0);
  }
  int hst = 0;
  REQUIRE(waitpid(hp, &hst, 0) == hp);
  // The process has no LWP in the kernel when the timer fires: it ends at
  // once, and its parent sees it killed by SIGALRM.
  int st = 0;
  Kid parent = fork_kid();
  rump_lwproc_switch(parent.l);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  pid_t child = rump_sys_getpid();
  itimerval v{{0, 0}, {0, 20000}};
  REQUIRE(rump_sys_setitimer(ITIMER_REAL, &v, nullptr) == 0);
  rump_lwproc_switch(parent.l);
  REQUIRE(rump_sys_wait4(child, &st, 0, nullptr) == child);
  rump_lwproc_switch(nullptr);
  CHECK(WIFSIGNALED(hst));
  CHECK(WTERMSIG(hst) == SIGALRM);
  CHECK(WIFSIGNALED(st));
  CHECK(WTERMSIG(st) == SIGALRM);
}

TEST_CASE("POSIX timers: ids, validation, gettime and SIGEV_NONE as the host", "[time][timer][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    int id = -1, id2 = -1, id3 = -1;
    T(sys(SYS_timer_create, CLOCK_MONOTONIC, nullptr, &id));
    V(id);
    T(sys(SYS_timer_create, CLOCK_REALTIME, nullptr, &id2));
    V(id2);
    T(sys(SYS_timer_delete, id));
    T(sys(SYS_timer_delete, id));
    T(sys(SYS_timer_create, CLOCK_BOOTTIME, nullptr, &id3));
    V(id3);  // ids are not reused at once
    int x = -1;
    T(sys(SYS_timer_create, 77, nullptr, &x));
    T(sys(SYS_timer_create, CLOCK_MONOTONIC_RAW, nullptr, &x));
    T(sys(SYS_timer_create, CLOCK_MONOTONIC_COARSE, nullptr, &x));
    sigevent ev;
    std::memset(&ev, 0, sizeof ev);
    ev.sigev_notify = 99;
    T(sys(SYS_timer_create, CLOCK_MONOTONIC, &ev, &x));
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = 0;
    T(sys(SYS_timer_create, CLOCK_MONOTONIC, &ev, &x));
    ev.sigev_signo = 65;
    T(sys(SYS_timer_create, CLOCK_MONOTONIC, &ev, &x));
    ev.sigev_notify = SIGEV_SIGNAL | SIGEV_THREAD_ID;
    ev.sigev_signo = SIGUSR1;
    ev._sigev_un._tid = 999999;
    T(sys(SYS_timer_create, CLOCK_MONOTONIC, &ev, &x));
    ev._sigev_un._tid = static_cast<int>(sys(SYS_gettid));
    T(sys(SYS_timer_create, CLOCK_MONOTONIC, &ev, &x));
    T(sys(SYS_timer_delete, x));
    // settime and gettime.
    itimerspec its{}, old{};
    T(sys(SYS_timer_settime, 12345, 0, &its, nullptr));
    T(sys(SYS_timer_settime, id2, 0, nullptr, nullptr));
    itimerspec bad{{0, 0}, {0, kSec}};
    T(sys(SYS_timer_settime, id2, 0, &bad, nullptr));
    itimerspec set{{2, 5}, {500, 0}};
    T(sys(SYS_timer_settime, id2, 0, &set, &old));
    V(old.it_value.tv_sec), V(old.it_value.tv_nsec), V(old.it_interval.tv_sec);
    T(sys(SYS_timer_gettime, id2, &its));
    V(its.it_interval.tv_sec), V(its.it_interval.tv_nsec);
    V(its.it_value.tv_sec > 0 && its.it_value.tv_sec <= 500);
    T(sys(SYS_timer_gettime, 4444, &its));
    itimerspec off{};
    T(sys(SYS_timer_settime, id2, 0, &off, &old));
    V(old.it_interval.tv_sec), V(old.it_interval.tv_nsec);
    T(sys(SYS_timer_gettime, id2, &its));
    V(its.it_value.tv_sec), V(its.it_value.tv_nsec), V(its.it_interval.tv_sec);
    T(sys(SYS_timer_getoverrun, id2));
    T(sys(SYS_timer_getoverrun, 4444));
    // SIGEV_NONE: never signals; a one-shot past its time reads 0, a
    // periodic one moves on.
    ev.sigev_notify = SIGEV_NONE;
    int n = -1;
    T(sys(SYS_timer_create, CLOCK_MONOTONIC, &ev, &n));
    itimerspec once{{0, 0}, {0, 1}};
    T(sys(SYS_timer_settime, n, 0, &once, nullptr));
    timespec nap{0, 2000000};
    T(sys(SYS_nanosleep, &nap, nullptr));
    T(sys(SYS_timer_gettime, n, &its));
    V(its.it_value.tv_sec), V(its.it_value.tv_nsec);
    itimerspec periodic{{100, 0}, {0, 1}};
    T(sys(SYS_timer_settime, n, 0, &periodic, nullptr));
    T(sys(SYS_nanosleep, &nap, nullptr));
    T(sys(SYS_timer_gettime, n, &its));
    V(its.it_value.tv_sec < 100 && (its.it_value.tv_sec > 0 || its.it_value.tv_nsec > 0));
    V(its.it_interval.tv_sec);
    T(sys(SYS_timer_getoverrun, n));
    // An absolute time in the past fires at once: here, with the signal
    // blocked, it is then pending.
    T(block_signal(sys, SIG_BLOCK, SIGALRM));
    itimerspec past{{0, 0}, {1, 0}};
    T(sys(SYS_timer_settime, id3, TIMER_ABSTIME, &past, nullptr));
    V(wait_pending(sys, SIGALRM));
    T(sys(SYS_timer_gettime, id3, &its));
    V(its.it_value.tv_sec), V(its.it_value.tv_nsec);
    T(sys(SYS_timer_delete, n));
    T(sys(SYS_timer_delete, id2));
    T(sys(SYS_timer_delete, id3));
    return trace;
  });
}

TEST_CASE("a POSIX timer's signal interrupts a sleep; overruns count while it is blocked",
          "[time][timer][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    T(catch_signal(sys, SIGUSR1));
    sigevent ev;
    std::memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    int id = -1;
    T(sys(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id));
    itimerspec once{{0, 0}, {0, 20000000}};
    T(sys(SYS_timer_settime, id, 0, &once, nullptr));
    timespec ts{60, 0};
    T(sys(SYS_nanosleep, &ts, nullptr));  // EINTR
    // Periodic, every 20 ms, with the signal blocked: expirations while
    // it is pending are overruns, reported once it is delivered (and until
    // the next one is: the period leaves time to ask).
    T(block_signal(sys, SIG_BLOCK, SIGUSR1));
    itimerspec fast{{0, 20000000}, {0, 20000000}};
    T(sys(SYS_timer_settime, id, 0, &fast, nullptr));
    timespec nap{0, 200000000};
    T(sys(SYS_nanosleep, &nap, nullptr));
    T(block_signal(sys, SIG_UNBLOCK, SIGUSR1));  // delivered here
    long ov = sys(SYS_timer_getoverrun, id);
    V(ov > 0);
    itimerspec off{};
    T(sys(SYS_timer_settime, id, 0, &off, nullptr));
    T(sys(SYS_timer_getoverrun, id));  // 0 again after timer_settime
    T(sys(SYS_timer_delete, id));
    return trace;
  });
}

TEST_CASE("a timer signal with the default action ends the process", "[time][timer]") {
  KernelUp up;
  Kid parent = fork_kid();
  rump_lwproc_switch(parent.l);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  pid_t child = rump_sys_getpid();
  sigevent ev;
  std::memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGUSR2;
  timer_t id{};
  REQUIRE(rump_sys_timer_create(CLOCK_MONOTONIC, &ev, &id) == 0);
  itimerspec once{{0, 0}, {0, 10000000}};
  REQUIRE(rump_sys_timer_settime(id, 0, &once, nullptr) == 0);
  rump_lwproc_switch(parent.l);
  int st = 0;
  REQUIRE(rump_sys_wait4(child, &st, 0, nullptr) == child);
  CHECK(WIFSIGNALED(st));
  CHECK(WTERMSIG(st) == SIGUSR2);
  rump_lwproc_switch(nullptr);
}

TEST_CASE("libc's timer_t forms of the timer calls", "[time][timer]") {
  KernelUp up;
  Kid k = fork_kid();
  rump_lwproc_switch(k.l);
  timer_t a{}, b{};
  REQUIRE(rump_sys_timer_create(CLOCK_MONOTONIC, nullptr, &a) == 0);
  REQUIRE(rump_sys_timer_create(CLOCK_MONOTONIC, nullptr, &b) == 0);
  CHECK(reinterpret_cast<intptr_t>(a) == 0);
  CHECK(reinterpret_cast<intptr_t>(b) == 1);
  itimerspec set{{3, 0}, {30, 0}}, got{};
  REQUIRE(rump_sys_timer_settime(b, 0, &set, nullptr) == 0);
  REQUIRE(rump_sys_timer_gettime(b, &got) == 0);
  CHECK(got.it_interval.tv_sec == 3);
  CHECK(rump_sys_timer_getoverrun(b) == 0);
  REQUIRE(rump_sys_timer_delete(a) == 0);
  CHECK_ERRNO(EINVAL, rump_sys_timer_delete(a));
  REQUIRE(rump_sys_timer_delete(b) == 0);
  // Armed timers of a process that exits go with it.
  REQUIRE(rump_sys_timer_create(CLOCK_MONOTONIC, nullptr, &a) == 0);
  REQUIRE(rump_sys_timer_settime(a, 0, &set, nullptr) == 0);
  REQUIRE(rump_sys_alarm(1000) == 0);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(nullptr);
}

TEST_CASE("a SIGEV_THREAD_ID timer signals its thread, not the process", "[time][timer][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    bool rump = sys.fn == kRump.fn;
    T(block_signal(sys, SIG_BLOCK, SIGUSR2));
    pid_t pid = static_cast<pid_t>(sys(SYS_getpid));
    std::atomic<long> tid{0};
    std::atomic<bool> go{false};
    long got = 0;
    // Thread b: its tid is the timer's target; it takes the signal once
    // told to look.
    std::thread b([&] {
      if (rump && rump_lwproc_newlwp(pid) != 0) {
        tid = -1;
        return;
      }
      block_signal(sys, SIG_BLOCK, SIGUSR2);
      tid = sys(SYS_gettid);
      while (!go.load()) usleep(1000);
      uint64_t set = rump_test::sig_bit(SIGUSR2);
      timespec ts{10, 0};
      got = sys(SYS_rt_sigtimedwait, &set, nullptr, &ts, 8);
      if (rump) rump_lwproc_releaselwp();
    });
    while (tid.load() == 0) usleep(1000);
    V(tid.load() > 0);
    sigevent ev;
    std::memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL | SIGEV_THREAD_ID;
    ev.sigev_signo = SIGUSR2;
    ev._sigev_un._tid = static_cast<int>(tid.load());
    int id = -1;
    T(sys(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id));
    itimerspec once{{0, 0}, {0, 10000000}};
    T(sys(SYS_timer_settime, id, 0, &once, nullptr));
    // The creating thread never sees it (EAGAIN after its timeout, however
    // late the timer fires); b does.
    uint64_t set = rump_test::sig_bit(SIGUSR2);
    timespec wait{0, 300000000};
    T(sys(SYS_rt_sigtimedwait, &set, nullptr, &wait, 8));
    go = true;
    b.join();
    V(got);
    T(sys(SYS_timer_delete, id));
    return trace;
  });
}

namespace {

// A timer of the caller that sends sig once, 1 ms from now, with value 7
// (to the calling thread with thread), left pending: the signal is
// blocked. Returns its id.
int pending_timer(Sys sys, Trace& trace, int sig, bool thread) {
  sigevent ev;
  std::memset(&ev, 0, sizeof ev);
  ev.sigev_notify = thread ? SIGEV_SIGNAL | SIGEV_THREAD_ID : SIGEV_SIGNAL;
  ev.sigev_signo = sig;
  ev.sigev_value.sival_int = 7;
  if (thread) ev._sigev_un._tid = static_cast<int>(sys(SYS_gettid));
  int id = -1;
  T(sys(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id));
  itimerspec once{{0, 0}, {0, 1000000}};
  T(sys(SYS_timer_settime, id, 0, &once, nullptr));
  V(wait_pending(sys, sig));
  return id;
}

// Whether sig is pending for the caller now.
bool is_pending(Sys sys, int sig) {
  uint64_t pending = 0;
  sys(SYS_rt_sigpending, &pending, 8);
  return (pending & rump_test::sig_bit(sig)) != 0;
}

// What sigqueue(3) sends: SI_QUEUE from the caller, with an int value.
siginfo_t sig_queue_info(Sys sys, int sig, int value) {
  siginfo_t si;
  std::memset(&si, 0, sizeof si);
  si.si_signo = sig;
  si.si_code = SI_QUEUE;
  si.si_pid = static_cast<pid_t>(sys(SYS_getpid));
  si.si_uid = static_cast<uid_t>(sys(SYS_getuid));
  si.si_value.sival_int = value;
  return si;
}

// Takes sig if it is pending (its record in *si), or EAGAIN.
long take_now(Sys sys, int sig, siginfo_t* si) {
  uint64_t set = rump_test::sig_bit(sig);
  timespec zero{0, 0};
  std::memset(si, 0, sizeof *si);
  return sys(SYS_rt_sigtimedwait, &set, si, &zero, 8);
}

}  // namespace

TEST_CASE("a POSIX timer's signal carries SI_TIMER, its id and its value; timer_delete drops it, as the host",
          "[time][timer][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    const int rt = SIGRTMIN;
    T(block_signal(sys, SIG_BLOCK, SIGUSR1));
    T(block_signal(sys, SIG_BLOCK, rt));
    siginfo_t si;
    // Taken while the timer lives: Linux's siginfo.
    int id = pending_timer(sys, trace, SIGUSR1, false);
    T(take_now(sys, SIGUSR1, &si));
    V(si.si_code);
    V(si.si_timerid == id);
    V(si.si_value.sival_int);
    T(sys(SYS_timer_delete, id));
    // Deleted with its signal pending, to the process, to the thread, a
    // standard and a real-time signal: still shown pending, never taken,
    // then no longer pending.
    for (int sig : {SIGUSR1, rt}) {
      for (bool thread : {false, true}) {
        id = pending_timer(sys, trace, sig, thread);
        T(sys(SYS_timer_delete, id));
        V(is_pending(sys, sig));
        T(take_now(sys, sig, &si));
        V(is_pending(sys, sig));
      }
    }
    // A real-time signal queued beside the timer's is still taken.
    id = pending_timer(sys, trace, rt, false);
    siginfo_t q = sig_queue_info(sys, rt, 5);
    T(sys(SYS_rt_sigqueueinfo, sys(SYS_getpid), rt, &q));
    T(sys(SYS_timer_delete, id));
    T(take_now(sys, rt, &si));
    V(si.si_code);
    V(si.si_value.sival_int);
    T(take_now(sys, rt, &si));
    // A standard signal: the kill that came first stays (the timer's was
    // never queued); one that came after the timer's was never queued
    // either, and goes with it.
    sigevent ev;
    std::memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    T(sys(SYS_kill, sys(SYS_getpid), SIGUSR1));
    T(sys(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id));
    itimerspec once{{0, 0}, {0, 1000000}};
    T(sys(SYS_timer_settime, id, 0, &once, nullptr));
    timespec nap{0, 20000000};
    T(sys(SYS_nanosleep, &nap, nullptr));
    T(sys(SYS_timer_delete, id));
    T(take_now(sys, SIGUSR1, &si));
    V(si.si_code);
    id = pending_timer(sys, trace, SIGUSR1, false);
    T(sys(SYS_kill, sys(SYS_getpid), SIGUSR1));
    T(sys(SYS_timer_delete, id));
    T(take_now(sys, SIGUSR1, &si));
    return trace;
  });
}
