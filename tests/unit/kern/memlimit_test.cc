// The kernel core at its memory limit: boot, and process creation until it
// fails, for every limit from 64 KiB to 1 MiB in 4 KiB steps. Every failure
// must be a clean errno (ENOMEM, or EAGAIN where Linux gives it for fork),
// the kernel must keep serving calls and halt, and halt must get every byte
// back (a debug build panics at halt on a leak, so a leak fails the run).
// Only the core is linked here.
#include <rump/rump.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstddef>
#include <vector>

#include "rump_test.h"

namespace {

constexpr size_t kLow = 64 * 1024;
constexpr size_t kHigh = 1024 * 1024;
constexpr size_t kStep = 4 * 1024;

rump_boot_config limited(size_t memlimit) {
  rump_test::BootOpts o;
  o.ncpu = 1;
  o.memlimit = memlimit;
  o.verbose = 0;
  return rump_test::boot_config(o);
}

// What happened at one limit.
struct Outcome {
  int boot_error = 0;
  int forks = 0;        // processes made before the first failure
  int fork_error = 0;   // that failure's errno
  bool served_after = false;  // getpid still worked after the failure
};

// Boots at memlimit, then makes processes until one fails: a chain (each
// rfork from the newest child) and, from init's implicit context, siblings,
// alternating, so that both the process table and the per-process state
// grow. Halts the kernel.
Outcome run_at(size_t memlimit) {
  Outcome o;
  rump_boot_config c = limited(memlimit);
  rump_kernel* k = nullptr;
  o.boot_error = rump_kernel_boot(&c, &k);
  if (o.boot_error != 0) return o;
  REQUIRE(rump_kernel_set_current(k) == 0);
  for (int i = 0; i < 100000; i++) {
    if (i % 2) rump_lwproc_switch(nullptr);  // a sibling: from init
    int e = rump_lwproc_rfork(RUMP_RFFDG);
    if (e != 0) {
      o.fork_error = e;
      break;
    }
    o.forks++;
    // Still within the limit, whatever was made.
    REQUIRE(rump_kernel_memory_in_use(k) <= memlimit);
  }
  // The kernel still answers (from a process if one is bound, else init).
  o.served_after = rump_sys_getpid() > 0;
  rump_lwproc_switch(nullptr);
  rump_kernel_set_current(nullptr);
  REQUIRE(rump_kernel_halt(k) == 0);
  return o;
}

}  // namespace

TEST_CASE("boot below the kernel's minimum fails with ENOMEM, and the next boot works", "[core][memlimit]") {
  for (size_t limit : {size_t{1}, size_t{512}, size_t{4096}, size_t{16384}}) {
    INFO("memlimit " << limit);
    rump_boot_config c = limited(limit);
    rump_kernel* k = nullptr;
    CHECK(rump_kernel_boot(&c, &k) == ENOMEM);
    CHECK(k == nullptr);
  }
  rump_test::KernelUp up;  // nothing was left behind that breaks a boot
  CHECK(rump_sys_getpid() > 0);
}

TEST_CASE("boot at every limit from 1 KiB to 64 KiB either works or is ENOMEM", "[core][memlimit]") {
  int booted = 0;
  for (size_t limit = 1024; limit <= kLow; limit += 1024) {
    INFO("memlimit " << limit);
    Outcome o = run_at(limit);
    CHECK((o.boot_error == 0 || o.boot_error == ENOMEM));
    if (o.boot_error == 0) booted++;
  }
  // 64 KiB is the idle budget of a kernel with every faction: the core
  // alone fits well below it.
  CHECK(booted > 0);
}

TEST_CASE("processes until the memory limit, 64 KiB to 1 MiB: clean errno, kernel haltable", "[core][memlimit]") {
  int limits = 0, enomem = 0;
  int prev_forks = -1;
  bool grows = false;
  for (size_t limit = kLow; limit <= kHigh; limit += kStep) {
    INFO("memlimit " << limit);
    Outcome o = run_at(limit);
    REQUIRE(o.boot_error == 0);
    limits++;
    // maxproc (4096) is far above what 1 MiB holds: memory runs out first.
    CHECK(o.fork_error == ENOMEM);
    if (o.fork_error == ENOMEM) enomem++;
    CHECK(o.served_after);
    if (prev_forks >= 0 && o.forks > prev_forks) grows = true;
    prev_forks = o.forks;
  }
  CHECK(limits == static_cast<int>((kHigh - kLow) / kStep + 1));
  CHECK(enomem == limits);
  // More memory, more processes: the limit is what stops them.
  CHECK(grows);
}

TEST_CASE("a kernel at its memory limit frees processes and makes new ones again", "[core][memlimit]") {
  rump_boot_config c = limited(256 * 1024);
  rump_kernel* k = nullptr;
  REQUIRE(rump_kernel_boot(&c, &k) == 0);
  REQUIRE(rump_kernel_set_current(k) == 0);
  std::vector<lwp*> kids;
  int e = 0;
  for (;;) {
    rump_lwproc_switch(nullptr);
    e = rump_lwproc_rfork(RUMP_RFFDG);
    if (e != 0) break;
    kids.push_back(rump_lwproc_curlwp());
  }
  CHECK(e == ENOMEM);
  REQUIRE(kids.size() > 2);
  size_t full = rump_kernel_memory_in_use(k);
  // Ending the processes gives their memory back ...
  for (lwp* l : kids) {
    rump_lwproc_switch(l);
    rump_lwproc_releaselwp();
  }
  rump_lwproc_switch(nullptr);
  CHECK(rump_kernel_memory_in_use(k) < full);
  // ... and as many can be made again.
  size_t again = 0;
  for (;;) {
    rump_lwproc_switch(nullptr);
    if (rump_lwproc_rfork(RUMP_RFFDG) != 0) break;
    again++;
  }
  CHECK(again >= kids.size());
  rump_lwproc_switch(nullptr);
  rump_kernel_set_current(nullptr);
  CHECK(rump_kernel_halt(k) == 0);
}
