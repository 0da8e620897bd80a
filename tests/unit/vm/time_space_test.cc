// The time, timer and process-control calls in isolated address spaces:
// an address outside the process's map is EFAULT, as a bad address is on
// the host (the same scenario runs in a host child); getrusage's
// ru_maxrss of an isolated process is the peak of its own resident set,
// and its children's reach RUSAGE_CHILDREN and wait4 (a child touching N
// pages reports at least N pages, as a host child does).
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "differential.h"
#include "rump_test.h"

namespace {
using rump_diff::check_same;
using rump_diff::kHost;
using rump_diff::kRump;
using rump_diff::Sys;
using rump_diff::Trace;
using rump_test::host_child;
using rump_test::KernelUp;
}  // namespace

TEST_CASE("bad addresses are EFAULT for the time, timer and process-control calls, as the host",
          "[time][differential]") {
  KernelUp up;
  // scratch: 64 zeroed bytes the caller may write, in its own space.
  auto scenario = [](Sys sys, void* scratch) {
    Trace trace;
    void* bad = reinterpret_cast<void*>(uintptr_t{8});
    T(sys(SYS_clock_getres, CLOCK_MONOTONIC, bad));
    T(sys(SYS_clock_settime, CLOCK_REALTIME, bad));
    T(sys(SYS_settimeofday, bad, nullptr));
    T(sys(SYS_getrusage, RUSAGE_SELF, bad));
    T(sys(SYS_sysinfo, bad));
    T(sys(SYS_getitimer, ITIMER_REAL, bad));
    T(sys(SYS_setitimer, ITIMER_REAL, bad, nullptr));
    T(sys(SYS_timer_create, CLOCK_MONOTONIC, bad, scratch));
    T(sys(SYS_timer_create, CLOCK_MONOTONIC, nullptr, bad));
    // The first timer of a process has id 0.
    T(sys(SYS_timer_create, CLOCK_MONOTONIC, nullptr, scratch));
    T(sys(SYS_timer_gettime, 0, bad));
    T(sys(SYS_timer_settime, 0, 0, bad, nullptr));
    T(sys(SYS_timer_settime, 0, 0, scratch, bad));  // a zero value, then the old one: EFAULT
    T(sys(SYS_timer_delete, 0));
    T(sys(SYS_prctl, PR_GET_NAME, bad, 0, 0, 0));
    T(sys(SYS_prctl, PR_SET_NAME, bad, 0, 0, 0));
    T(sys(SYS_prctl, PR_GET_PDEATHSIG, bad, 0, 0, 0));
    T(sys(SYS_sched_getparam, 0, bad));
    T(sys(SYS_sched_getaffinity, 0, 8, bad));
    T(sys(SYS_capget, bad, nullptr));
    return trace;
  };
  Trace host = host_child<Trace>([&] {
    alignas(8) static unsigned char scratch[64] = {};
    return scenario(kHost, scratch);
  });
  // Isolated: every address is checked against the process's own map.
  rump_test::isolated_proc();
  void* scratch = rump_test::guest_map(4096);
  REQUIRE(scratch != MAP_FAILED);
  Trace rump = scenario(kRump, scratch);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(nullptr);
  check_same(host, rump);
}

TEST_CASE("ru_maxrss of an isolated process is its resident peak; its child's reaches wait4 and RUSAGE_CHILDREN, "
          "as a host child's",
          "[time][vm]") {
  KernelUp up;
  constexpr long kParentKib = 4096, kChildKib = 8192;
  rump_test::isolated_proc();
  // The process's system calls take pointers into its own space.
  auto* gru = static_cast<struct rusage*>(rump_test::guest_map(4096));
  REQUIRE(gru != MAP_FAILED);
  auto* gst = reinterpret_cast<int*>(gru + 1);
  auto maxrss = [&](int who) {
    REQUIRE(rump_sys_getrusage(who, gru) == 0);
    struct rusage r {};
    REQUIRE(rump_copyin(gru, &r, sizeof r) == 0);
    return r.ru_maxrss;
  };
  CHECK(maxrss(RUSAGE_SELF) < kParentKib);
  void* a = rump_test::guest_map(kParentKib * 1024, PROT_READ | PROT_WRITE, nullptr, MAP_POPULATE);
  REQUIRE(a != MAP_FAILED);
  long peak = maxrss(RUSAGE_SELF);
  CHECK(peak >= kParentKib);
  // A peak, not the current size: unmapping leaves it.
  REQUIRE(rump_sys_munmap(a, kParentKib * 1024) == 0);
  CHECK(maxrss(RUSAGE_SELF) == peak);
  CHECK(maxrss(RUSAGE_THREAD) == peak);
  CHECK(maxrss(RUSAGE_CHILDREN) == 0);
  // A child (a copy of the space) that touches twice as many pages and
  // exits; on the host, a forked child doing the same.
  long host = rump_test::host_child<long>([] {
    pid_t p = fork();
    if (p == 0) {
      auto* b = static_cast<char*>(mmap(nullptr, kChildKib * 1024, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      if (b == MAP_FAILED) _exit(1);
      for (long i = 0; i < kChildKib / 4; i++) b[i * 4096] = 1;
      _exit(0);
    }
    struct rusage hr {};
    int hst = 0;
    if (p < 0 || wait4(p, &hst, 0, &hr) != p) return -1L;
    return hr.ru_maxrss;
  });
  CHECK(host >= kChildKib);
  rump_test::Kid c = rump_test::fork_kid();
  rump_test::as(c.l, [&] {
    auto* b = static_cast<char*>(rump_test::guest_map(kChildKib * 1024));
    CHECK(b != MAP_FAILED);
    char one = 1;
    for (long i = 0; i < kChildKib / 4; i++) CHECK(rump_copyout(&one, b + i * 4096, 1) == 0);
    return rump_sys_exit(0);
  });
  REQUIRE(rump_sys_wait4(c.pid, gst, 0, gru) == c.pid);
  struct rusage ru {};
  REQUIRE(rump_copyin(gru, &ru, sizeof ru) == 0);
  long child = ru.ru_maxrss;
  CHECK(child >= kChildKib);
  CHECK(maxrss(RUSAGE_CHILDREN) == child);
  // The parent's own peak did not move.
  CHECK(maxrss(RUSAGE_SELF) == peak);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(nullptr);
}
