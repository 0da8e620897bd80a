// The fault-injection calls in a process that has no kernel, and its
// first boot failing at its first hypercalls: the calls
// that name a kernel (NULL: the current one) are EINVAL or count nothing,
// and fail-nth, which belongs to the calling thread, arms and disarms.
// A program of its own, so that no test has booted a kernel before.
#define CATCH_CONFIG_MAIN
#include <rump/fault.h>
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <cerrno>

namespace {

void check_no_kernel() {
  rump_fault_config c{1, 0.5, RUMP_FAULT_MEMORY};
  CHECK(rump_kernel_set_faults(nullptr, &c) == EINVAL);
  CHECK(rump_kernel_set_faults(nullptr, nullptr) == EINVAL);
  CHECK(rump_kernel_set_cache_pressure(nullptr, 1) == EINVAL);
  CHECK(rump_kernel_set_cache_pressure(nullptr, 0) == EINVAL);
  CHECK(rump_kernel_faults_injected(nullptr) == 0);
  CHECK(rump_fault_fail_nth(3) == 0);
  CHECK(rump_fault_fail_nth_fired() == 0);
  CHECK(rump_fault_fail_nth_run(1, 2) == 0);
  CHECK(rump_fault_fail_nth(0) == 0);
  CHECK(rump_fault_fail_nth_fired() == 0);
}

}  // namespace

TEST_CASE("fault calls without a kernel are EINVAL, or count nothing", "[fault]") {
  // The process's first boots with runs of failures from each of their
  // hypercalls in turn (the process-wide state the first one sets up
  // included): clean errors, never a panic, until one boots.
  rump_boot_config bc;
  rump_boot_config_init(&bc);
  bc.ncpu = 1;
  rump_kernel* k = nullptr;
  for (unsigned n = 1;; n++) {
    INFO("failures from the " << n << "th on");
    REQUIRE(n < 5000);
    REQUIRE(rump_fault_fail_nth_run(n, 4) == 0);
    int e = rump_kernel_boot(&bc, &k);
    bool fired = rump_fault_fail_nth_fired() == 1;
    rump_fault_fail_nth(0);
    if (e == 0) {
      REQUIRE(rump_kernel_halt(k) == 0);
      if (!fired) break;
      continue;
    }
    CHECK(fired);
    CHECK((e == ENOMEM || e == EAGAIN));
  }
  check_no_kernel();
  // And again once the only kernel has halted: no current kernel is left.
  REQUIRE(rump_kernel_boot(&bc, &k) == 0);
  CHECK(rump_kernel_set_cache_pressure(k, 1) == 0);
  CHECK(rump_kernel_set_cache_pressure(nullptr, 0) == 0);  // the current one: k
  REQUIRE(rump_kernel_halt(k) == 0);
  check_no_kernel();
}
