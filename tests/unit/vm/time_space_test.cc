// The time, timer and process-control calls in isolated address spaces:
// an address outside the process's map is EFAULT, as a bad address is on
// the host (the same scenario runs in a host child).
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include <cstdint>

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
