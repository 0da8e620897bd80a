// CPU-time accounting against the host: getrusage, times, the CPU-time
// clocks (the two constants and Linux's encoded ids), wait4's rusage and
// ITIMER_VIRTUAL/ITIMER_PROF. The work is a busy loop that runs until the
// host's own clock of the thread shows the CPU time wanted, so no figure
// depends on how fast or loaded the machine is; the kernel's figures are
// checked against the host's readings of the same thread taken between
// them.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

// The kernel's own headers before differential.h, whose one-letter
// macros (T, V) would otherwise reach Boost's templates.
#include "kern/cputime.h"
#include "kern/curlwp.h"
#include "kern/kernel.h"
#include "kern/kthread.h"
#include "differential.h"
#include "rump_test.h"

namespace {

using rump_diff::differential;
using rump_diff::kHost;
using rump_diff::Sys;
using rump_diff::Trace;
using rump_test::as;
using rump_test::fork_kid;
using rump_test::Kid;
using rump_test::KernelUp;

constexpr int64_t kMs = 1000 * 1000;

int64_t ts_ns(const timespec& ts) { return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec; }
int64_t tv_ns(const timeval& tv) { return static_cast<int64_t>(tv.tv_sec) * 1000000000 + tv.tv_usec * 1000; }

using rump_test::host_thread_ns;
void burn(int64_t ns) { rump_test::burn_thread_cpu(ns); }

// Burns CPU time until sig is pending for the caller (true), or gives up
// after 10 s of CPU time (false).
bool burn_until_pending(Sys sys, int sig) {
  int64_t end = host_thread_ns() + 10000 * kMs;
  while (host_thread_ns() < end) {
    burn(kMs);
    uint64_t pending = 0;
    if (sys(SYS_rt_sigpending, &pending, 8) != 0) return false;
    if (pending & rump_test::sig_bit(sig)) return true;
  }
  return false;
}

clockid_t process_clock(pid_t pid, int which) { return static_cast<clockid_t>((~pid << 3) | which); }
clockid_t thread_clock(pid_t tid, int which) { return static_cast<clockid_t>((~tid << 3) | 4 | which); }

}  // namespace

TEST_CASE("A busy thread's CPU time grows in getrusage, times and the CPU-time clocks, as on the host",
          "[time][cputime][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    struct rusage a, b, sa, sb;
    timespec t0{}, t1{}, p0{}, p1{};
    struct tms m0, m1;
    T(sys(SYS_getrusage, RUSAGE_THREAD, &a));
    T(sys(SYS_getrusage, RUSAGE_SELF, &sa));
    T(sys(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &t0));
    T(sys(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, &p0));
    V(sys(SYS_times, &m0) >= 0);
    burn(100 * kMs);
    T(sys(SYS_getrusage, RUSAGE_THREAD, &b));
    T(sys(SYS_getrusage, RUSAGE_SELF, &sb));
    T(sys(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &t1));
    T(sys(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, &p1));
    V(sys(SYS_times, &m1) >= 0);
    V(ts_ns(t1) - ts_ns(t0) >= 100 * kMs);
    V(ts_ns(p1) - ts_ns(p0) >= 100 * kMs);
    // rusage is in microseconds: allow for the rounding of each reading.
    V(tv_ns(b.ru_utime) + tv_ns(b.ru_stime) - tv_ns(a.ru_utime) - tv_ns(a.ru_stime) >= 100 * kMs - 2000);
    V(tv_ns(sb.ru_utime) + tv_ns(sb.ru_stime) - tv_ns(sa.ru_utime) - tv_ns(sa.ru_stime) >= 100 * kMs - 2000);
    V(tv_ns(b.ru_utime) > tv_ns(a.ru_utime));
    // times() counts in 10 ms ticks.
    V((m1.tms_utime + m1.tms_stime) - (m0.tms_utime + m0.tms_stime) >= 9);
    // The thread's own clock is at most the process's.
    V(ts_ns(t1) <= ts_ns(p1));
    return trace;
  });
}

TEST_CASE("CLOCK_THREAD_CPUTIME_ID is the host's clock of the same thread while it runs an LWP",
          "[time][cputime]") {
  KernelUp up;
  Kid k = fork_kid();
  as(k.l, [] {
    int64_t last = 0;
    for (int round = 0; round < 5; round++) {
      int64_t before = host_thread_ns();
      timespec r0{};
      REQUIRE(rump_sys_clock_gettime(CLOCK_THREAD_CPUTIME_ID, &r0) == 0);
      int64_t h0 = host_thread_ns();
      burn(10 * kMs);
      int64_t h1 = host_thread_ns();
      timespec r1{};
      REQUIRE(rump_sys_clock_gettime(CLOCK_THREAD_CPUTIME_ID, &r1) == 0);
      int64_t after = host_thread_ns();
      // The kernel's readings bracket the host's and are bracketed by them.
      CHECK(ts_ns(r1) - ts_ns(r0) >= h1 - h0);
      CHECK(ts_ns(r1) - ts_ns(r0) <= after - before);
      // Monotonic.
      CHECK(ts_ns(r0) >= last);
      CHECK(ts_ns(r1) >= ts_ns(r0));
      last = ts_ns(r1);
    }
    return 0;
  });
}

TEST_CASE("ITIMER_PROF and ITIMER_VIRTUAL expire after CPU time, as on the host", "[time][cputime][itimer][differential]") {
  KernelUp up;
  for (int which : {ITIMER_PROF, ITIMER_VIRTUAL}) {
    int sig = which == ITIMER_PROF ? SIGPROF : SIGVTALRM;
    differential([which, sig](Sys sys) {
      Trace trace;
      // Blocked, so that it stays pending (its default action ends the
      // process).
      uint64_t set = rump_test::sig_bit(sig);
      T(sys(SYS_rt_sigprocmask, SIG_BLOCK, &set, nullptr, 8));
      itimerval v{{0, 0}, {0, 30000}};
      T(sys(SYS_setitimer, which, &v, nullptr));
      V(burn_until_pending(sys, sig));
      // A one-shot timer that expired reads as disarmed.
      itimerval now{};
      T(sys(SYS_getitimer, which, &now));
      V(now.it_value.tv_sec == 0 && now.it_value.tv_usec == 0);
      // A periodic one goes on: after the pending signal is taken, it
      // comes again.
      siginfo_t si;
      timespec zero{0, 0};
      V(sys(SYS_rt_sigtimedwait, &set, &si, &zero, 8) == sig);
      itimerval p{{0, 20000}, {0, 20000}};
      T(sys(SYS_setitimer, which, &p, nullptr));
      V(burn_until_pending(sys, sig));
      T(sys(SYS_getitimer, which, &now));
      V(now.it_interval.tv_usec == 20000);
      V(now.it_value.tv_sec == 0 && now.it_value.tv_usec > 0 && now.it_value.tv_usec <= 20000);
      itimerval off{};
      T(sys(SYS_setitimer, which, &off, nullptr));
      V(sys(SYS_rt_sigtimedwait, &set, &si, &zero, 8) == sig);
      return trace;
    });
  }
}

TEST_CASE("POSIX timers on CPU-time clocks expire after that much CPU time, not while the process sleeps, as on the host",
          "[time][cputime][timer][differential]") {
  KernelUp up;
  for (int kind = 0; kind < 3; kind++) {
    differential([kind](Sys sys) {
      Trace trace;
      pid_t me = static_cast<pid_t>(sys(SYS_getpid));
      // The process's clock, the thread's, and the process's by its
      // encoded id (CPUCLOCK_SCHED).
      clockid_t clk = kind == 0 ? CLOCK_PROCESS_CPUTIME_ID : kind == 1 ? CLOCK_THREAD_CPUTIME_ID : process_clock(me, 2);
      uint64_t set = rump_test::sig_bit(SIGUSR1);
      T(sys(SYS_rt_sigprocmask, SIG_BLOCK, &set, nullptr, 8));
      struct sigevent ev;
      std::memset(&ev, 0, sizeof ev);
      ev.sigev_notify = SIGEV_SIGNAL;
      ev.sigev_signo = SIGUSR1;
      int id = -1;
      T(sys(SYS_timer_create, clk, &ev, &id));
      timespec armed_at{};
      T(sys(SYS_clock_gettime, clk, &armed_at));
      itimerspec v{{0, 0}, {0, 30 * kMs}};
      T(sys(SYS_timer_settime, id, 0, &v, nullptr));
      // Asleep for twice its value: its clock hardly moves, so it stays
      // armed and silent (on the monotonic clock it would have fired).
      timespec nap{0, 60 * kMs};
      T(sys(SYS_nanosleep, &nap, nullptr));
      uint64_t pending = ~0ull;
      T(sys(SYS_rt_sigpending, &pending, 8));
      V(pending & set);
      itimerspec cur{};
      T(sys(SYS_timer_gettime, id, &cur));
      V(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 30 * kMs);
      // Busy: it fires, and only once its clock has run 30 ms.
      V(burn_until_pending(sys, SIGUSR1));
      timespec fired{};
      T(sys(SYS_clock_gettime, clk, &fired));
      V(ts_ns(fired) - ts_ns(armed_at) >= 30 * kMs);
      T(sys(SYS_timer_gettime, id, &cur));
      V(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
      siginfo_t si;
      timespec zero{0, 0};
      V(sys(SYS_rt_sigtimedwait, &set, &si, &zero, 8) == SIGUSR1);
      // Periodic, absolute first expiry on the clock's own scale.
      timespec now{};
      T(sys(SYS_clock_gettime, clk, &now));
      int64_t first = ts_ns(now) + 10 * kMs;
      itimerspec p{{0, 10 * kMs}, {static_cast<time_t>(first / 1000000000), static_cast<long>(first % 1000000000)}};
      T(sys(SYS_timer_settime, id, TIMER_ABSTIME, &p, nullptr));
      V(burn_until_pending(sys, SIGUSR1));
      T(sys(SYS_clock_gettime, clk, &fired));
      V(ts_ns(fired) >= first);
      T(sys(SYS_timer_gettime, id, &cur));
      V(cur.it_interval.tv_nsec == 10 * kMs);
      V(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 10 * kMs);
      V(sys(SYS_rt_sigtimedwait, &set, &si, &zero, 8) == SIGUSR1);
      T(sys(SYS_timer_delete, id));
      return trace;
    });
  }
}

TEST_CASE("timer_create on encoded CPU-time clocks: the ids accepted and refused as on the host",
          "[time][cputime][timer][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    pid_t me = static_cast<pid_t>(sys(SYS_getpid));
    pid_t tid = static_cast<pid_t>(sys(SYS_gettid));
    struct sigevent ev;
    std::memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_NONE;
    for (clockid_t clk : {process_clock(0, 0), process_clock(0, 1), process_clock(0, 2), process_clock(0, 3),
                          process_clock(me, 0), thread_clock(0, 2), thread_clock(tid, 1), thread_clock(tid, 3),
                          process_clock(0x3fffffff, 2), thread_clock(0x3fffffff, 2)}) {
      int id = -1;
      long r = T(sys(SYS_timer_create, clk, &ev, &id));
      if (r == 0) T(sys(SYS_timer_delete, id));
    }
    return trace;
  });
}

TEST_CASE("wait4 reports the child's CPU time, and so do RUSAGE_CHILDREN and times()", "[time][cputime]") {
  KernelUp up;
  Kid parent = fork_kid();
  rump_lwproc_switch(parent.l);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  pid_t child = rump_sys_getpid();
  int64_t h0 = host_thread_ns();
  burn(50 * kMs);
  int64_t used = host_thread_ns() - h0;
  // The last LWP going ends the process (status 0).
  rump_lwproc_releaselwp();
  rump_lwproc_switch(parent.l);
  struct rusage before;
  REQUIRE(rump_sys_getrusage(RUSAGE_CHILDREN, &before) == 0);
  CHECK(tv_ns(before.ru_utime) + tv_ns(before.ru_stime) == 0);
  CHECK(before.ru_maxrss == 0);
  int st = -1;
  struct rusage ru;
  std::memset(&ru, 0xff, sizeof ru);
  REQUIRE(rump_sys_wait4(child, &st, 0, &ru) == child);
  CHECK(WIFEXITED(st));
  CHECK(tv_ns(ru.ru_utime) + tv_ns(ru.ru_stime) >= used - 2000);
  // A process in the host's space reports the host process's peak.
  CHECK(ru.ru_maxrss > 0);
  struct rusage after;
  REQUIRE(rump_sys_getrusage(RUSAGE_CHILDREN, &after) == 0);
  CHECK(tv_ns(after.ru_utime) + tv_ns(after.ru_stime) == tv_ns(ru.ru_utime) + tv_ns(ru.ru_stime));
  CHECK(after.ru_maxrss == ru.ru_maxrss);
  struct tms t;
  REQUIRE(rump_sys_times(&t) >= 0);
  CHECK(t.tms_cutime + t.tms_cstime >= used / (10 * kMs) - 1);
  rump_lwproc_switch(nullptr);
}

TEST_CASE("ru_maxrss: set for the process and the thread, none for children yet, as on the host",
          "[time][cputime][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    struct rusage ru{};
    T(sys(SYS_getrusage, RUSAGE_CHILDREN, &ru));
    V(ru.ru_maxrss);
    T(sys(SYS_getrusage, RUSAGE_SELF, &ru));
    V(ru.ru_maxrss > 0);
    long self = ru.ru_maxrss;
    T(sys(SYS_getrusage, RUSAGE_THREAD, &ru));
    V(ru.ru_maxrss >= self);
    return trace;
  });
}

TEST_CASE("a kernel thread's CPU time is charged to proc0, the kernel's own", "[time][cputime]") {
  KernelUp up;
  rump::Kernel& k = *reinterpret_cast<rump::Kernel*>(up.k);
  auto usage0 = [&k] {
    rump::Proc* p0;
    {
      rump::ProcTable& t = k.procs();
      rump::MutexLocker g(t.lock());
      p0 = t.proc0();
    }
    return rump::cpu_proc_usage(*p0, false).total_ns();
  };
  static int64_t used;
  used = 0;
  rump::Lwp* l = rump::enter(k);
  REQUIRE(l != nullptr);
  int64_t before = usage0();
  rump::Result<rump::Kthread*> t = rump::kthread_create(
      k, "burn",
      [](void*) {
        int64_t h0 = host_thread_ns();
        burn(20 * kMs);
        used = host_thread_ns() - h0;
      },
      nullptr);
  REQUIRE(t.ok());
  rump::kthread_join(t.value());
  int64_t after = usage0();
  rump::leave(k, l);
  CHECK(used >= 20 * kMs);
  CHECK(after - before >= used);
}

TEST_CASE("Encoded CPU-time clock ids: validation as the host", "[time][cputime][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    pid_t pid = static_cast<pid_t>(sys(SYS_getpid));
    pid_t tid = static_cast<pid_t>(sys(SYS_gettid));
    timespec ts{};
    for (int which : {0, 1, 2, 3}) {
      T(sys(SYS_clock_gettime, process_clock(pid, which), &ts));
      T(sys(SYS_clock_gettime, process_clock(0, which), &ts));
      T(sys(SYS_clock_gettime, thread_clock(tid, which), &ts));
      T(sys(SYS_clock_gettime, thread_clock(0, which), &ts));
      T(sys(SYS_clock_gettime, process_clock(4000000, which), &ts));  // no such process
      T(sys(SYS_clock_getres, process_clock(pid, which), &ts));
      T(sys(SYS_clock_getres, process_clock(4000000, which), &ts));
    }
    T(sys(SYS_clock_getres, process_clock(pid, 2), &ts));
    V(ts.tv_sec == 0 && ts.tv_nsec == 1);
    // A thread's CPU clock can't be slept on.
    timespec nap{0, 1000};
    T(sys(SYS_clock_nanosleep, thread_clock(tid, 2), 0, &nap, nullptr));
    T(sys(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &nap, nullptr));
    // The process's can: another thread's work, or this one's before, moves it.
    timespec now{};
    T(sys(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, &now));
    T(sys(SYS_clock_nanosleep, CLOCK_PROCESS_CPUTIME_ID, TIMER_ABSTIME, &now, nullptr));
    return trace;
  });
}

TEST_CASE("Quick LWP switches on one thread lose none of its CPU time", "[time][cputime]") {
  // Switches close together share one reading of the thread's clock, so
  // single stretches may be charged to a neighbour, but the process's two
  // LWPs still add up to the thread's time.
  KernelUp up;
  Kid k = fork_kid();
  REQUIRE(rump_lwproc_newlwp(k.pid) == 0);
  lwp* l2 = rump_lwproc_curlwp();
  auto process_ns = [] {
    timespec ts{};
    REQUIRE(rump_sys_clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0);
    return ts_ns(ts);
  };
  int64_t p0 = process_ns();
  int64_t h0 = host_thread_ns();
  for (int i = 0; i < 2000; i++) {
    rump_lwproc_switch(i % 2 ? l2 : k.l);
    burn(i % 2 ? 30 * 1000 : 10 * 1000);
  }
  int64_t h1 = host_thread_ns();
  int64_t p1 = process_ns();
  CHECK(p1 - p0 >= h1 - h0);
  // Each end may sit one shared reading's age (50 us) away.
  CHECK(p1 - p0 <= h1 - h0 + 2 * 50 * 1000 + (h1 - h0) / 100);
  rump_lwproc_switch(l2);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(k.l);
  rump_lwproc_releaselwp();
}
