// The hypercall backend is chosen per kernel: a kernel's threads and
// objects are served by the backend named at its boot, and another kernel
// in the same process is not touched by it. The counting backend
// (tests/support/counting_backend.h) stands in for a second backend.
#include <linux/membarrier.h>
#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpuser.h>
#include <stdlib.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <thread>

#include <catch2/catch.hpp>

#include "counting_backend.h"
#include "kern/curlwp.h"
#include "kern/kernel.h"
#include "kern/kthread.h"
#include "rump_test.h"

namespace cb = counting_backend;

namespace {

rump_kernel* boot_with(const char* backend) {
  rump_boot_config c = rump_test::boot_config({.ncpu = 2, .verbose = 0});
  c.backend = backend;
  rump_kernel* k = nullptr;
  REQUIRE(rump_kernel_boot(&c, &k) == 0);
  return k;
}

// A system call that reads the kernel's clock and one that sleeps on a
// condition variable with a timeout, in kernel k.
void clock_and_sleep(rump_kernel* k) {
  REQUIRE(rump_kernel_set_current(k) == 0);
  struct timespec ts;
  REQUIRE(rump_sys_clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
  struct timespec d = {0, 1000 * 1000};
  REQUIRE(rump_sys_nanosleep(&d, nullptr) == 0);
}

// Each test runs on a thread of its own (rump_test::on_fresh_thread): the
// thread-local counts start at zero.
using rump_test::on_fresh_thread;

struct KthreadSeen {
  long clock_calls = -1;
  const rumpuser_backend* be = nullptr;
};

void kthread_body(void* arg) {
  auto* seen = static_cast<KthreadSeen*>(arg);
  int64_t s;
  long ns;
  rumpuser_clock_gettime(RUMPUSER_CLOCK_ABSMONO, &s, &ns);
  seen->clock_calls = cb::mine.clock_calls;
  // The thread's backend, read by switching to it and straight back.
  seen->be = rumpuser_backend_switch(nullptr);
  rumpuser_backend_switch(seen->be);
}

}  // namespace

TEST_CASE("a kernel's threads, objects and clocks are served by the backend it booted with",
          "[backend][concurrency]") {
  cb::ensure_registered();
  on_fresh_thread([] {
    long live0 = cb::live_objects();
    long made0 = cb::mine.objects_made;
    rump_kernel* a = boot_with(cb::kName);
    // Booting made the kernel's locks on the counting backend.
    long made_a = cb::mine.objects_made - made0;
    CHECK(made_a > 10);

    rump_kernel* b = boot_with("pthread");
    CHECK(cb::mine.objects_made - made0 == made_a);  // none of b's

    // System calls in a: clock and sleep go to the counting backend.
    long clocks0 = cb::mine.clock_calls;
    long waits0 = cb::counts.cv_waits;
    clock_and_sleep(a);
    CHECK(cb::mine.clock_calls > clocks0);
    CHECK(cb::counts.cv_waits > waits0);

    // The same calls in b do not.
    clocks0 = cb::mine.clock_calls;
    clock_and_sleep(b);
    CHECK(cb::mine.clock_calls == clocks0);

    // A process and its LWPs in a: their locks are a's backend's too.
    REQUIRE(rump_kernel_set_current(a) == 0);
    long before_fork = cb::mine.objects_made;
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    CHECK(cb::mine.objects_made > before_fork);
    rump_lwproc_releaselwp();

    // A kernel thread of a runs on a's backend: its own hypercalls are
    // counted on its own thread.
    rump::Kernel& ka = *reinterpret_cast<rump::Kernel*>(a);
    KthreadSeen seen;
    long threads0 = cb::counts.threads_made;
    long joins0 = cb::counts.threads_joined;
    {
      rump::Lwp* l = rump::enter(ka);
      REQUIRE(l != nullptr);
      rump::Result<rump::Kthread*> t = rump::kthread_create(ka, "probe", kthread_body, &seen);
      REQUIRE(t.ok());
      rump::kthread_join(t.value());
      rump::leave(ka, l);
    }
    CHECK(cb::counts.threads_made == threads0 + 1);
    CHECK(cb::counts.threads_joined == joins0 + 1);
    CHECK(seen.clock_calls >= 1);
    CHECK(seen.be == cb::table());

    // Halting a gives back every object it made on the backend.
    REQUIRE(rump_kernel_set_current(nullptr) == 0);
    REQUIRE(rump_kernel_halt(a) == 0);
    CHECK(cb::live_objects() == live0);
    REQUIRE(rump_kernel_halt(b) == 0);
    CHECK(cb::live_objects() == live0);
  });
}

TEST_CASE("one thread alternating between kernels of two backends", "[backend][concurrency]") {
  cb::ensure_registered();
  on_fresh_thread([] {
    rump_kernel* a = boot_with(cb::kName);
    rump_kernel* b = boot_with(nullptr);
    for (int i = 0; i < 20; i++) {
      long c0 = cb::mine.clock_calls;
      REQUIRE(rump_kernel_set_current(i % 2 ? a : b) == 0);
      struct timespec ts;
      REQUIRE(rump_sys_clock_gettime(CLOCK_REALTIME, &ts) == 0);
      CHECK((cb::mine.clock_calls > c0) == (i % 2 == 1));
    }
    REQUIRE(rump_kernel_set_current(nullptr) == 0);
    REQUIRE(rump_kernel_halt(a) == 0);
    REQUIRE(rump_kernel_halt(b) == 0);
  });
}

TEST_CASE("the backend comes from RUMP_BACKEND when the config names none", "[backend][concurrency]") {
  cb::ensure_registered();
  on_fresh_thread([] {
    long live0 = cb::live_objects();
    REQUIRE(setenv("RUMP_BACKEND", cb::kName, 1) == 0);
    long made0 = cb::mine.objects_made;
    rump_kernel* k = nullptr;
    int e = rump_kernel_boot(nullptr, &k);
    unsetenv("RUMP_BACKEND");
    REQUIRE(e == 0);
    CHECK(cb::mine.objects_made > made0);
    // The config wins over the environment.
    REQUIRE(setenv("RUMP_BACKEND", cb::kName, 1) == 0);
    made0 = cb::mine.objects_made;
    rump_kernel* p = boot_with("pthread");
    unsetenv("RUMP_BACKEND");
    CHECK(cb::mine.objects_made == made0);
    REQUIRE(rump_kernel_halt(p) == 0);
    REQUIRE(rump_kernel_halt(k) == 0);
    CHECK(cb::live_objects() == live0);
  });
}

TEST_CASE("an unknown or overlong backend name is EINVAL and boots nothing", "[backend][concurrency]") {
  on_fresh_thread([] {
    rump_boot_config c = rump_test::boot_config({.ncpu = 1, .verbose = 0});
    rump_kernel* k = nullptr;
    c.backend = "no-such-backend";
    CHECK(rump_kernel_boot(&c, &k) == EINVAL);
    CHECK(k == nullptr);
    c.backend = "a-name-that-is-much-longer-than-thirty-one-characters";
    CHECK(rump_kernel_boot(&c, &k) == EINVAL);
    c.backend = nullptr;
    REQUIRE(setenv("RUMP_BACKEND", "no-such-backend", 1) == 0);
    int e = rump_kernel_boot(&c, &k);
    unsetenv("RUMP_BACKEND");
    CHECK(e == EINVAL);
    CHECK(k == nullptr);
  });
}

TEST_CASE("membarrier's barrier commands go through the host-wide barrier hypercall; query and registration do not",
          "[backend][compat]") {
  cb::ensure_registered();
  on_fresh_thread([] {
    rump_kernel* a = boot_with(cb::kName);
    REQUIRE(rump_kernel_set_current(a) == 0);
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    auto barriers = [] { return cb::calls[static_cast<int>(cb::Op::membarrier)].load(); };
    long n0 = barriers();
    CHECK(rump_sys_membarrier(MEMBARRIER_CMD_QUERY, 0, 0) > 0);
    CHECK(rump_sys_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == -1);
    CHECK(errno == EPERM);
    CHECK(rump_sys_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0);
    CHECK(barriers() == n0);
    CHECK(rump_sys_membarrier(MEMBARRIER_CMD_GLOBAL, 0, 0) == 0);
    CHECK(barriers() == n0 + 1);
    CHECK(rump_sys_membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0);
    CHECK(barriers() == n0 + 2);
    CHECK(rump_sys_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0);
    CHECK(barriers() == n0 + 3);
    rump_lwproc_releaselwp();
    REQUIRE(rump_kernel_set_current(nullptr) == 0);
    REQUIRE(rump_kernel_halt(a) == 0);
  });
}
