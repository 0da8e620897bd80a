// Futex keys in isolated address spaces: a shared futex in MAP_SHARED
// memory is one word for every space mapping it, a private one belongs to
// its space, and a shared key needs the mapping (EFAULT without it).
#include <linux/futex.h>
#include <sys/mman.h>

#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <ctime>
#include <thread>

#include "rump_test.h"

using rump_test::KernelUp;

TEST_CASE("isolated spaces: a shared futex in MAP_SHARED memory is one word for parent and child, a private one is not",
          "[futex]") {
  KernelUp up({.ncpu = 2});
  lwp* parent = rump_test::isolated_proc();
  pid_t ppid = rump_sys_getpid();
  (void)ppid;
  void* m = rump_sys_mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(m != MAP_FAILED);
  auto* w = static_cast<uint32_t*>(m);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);  // a copy of the space; the mapping stays shared
  pid_t child = rump_sys_getpid();
  lwp* child_lwp = rump_lwproc_curlwp();
  rump_lwproc_switch(parent);
  for (int priv : {FUTEX_PRIVATE_FLAG, 0}) {
    std::atomic<long> r{99};
    std::thread t([&] {
      rump_kernel_set_current(up.k);
      TCHECK(rump_lwproc_newlwp(child) == 0);
      r = rump_sys_futex(w, FUTEX_WAIT | priv, 0, nullptr, nullptr, 0);
      rump_lwproc_releaselwp();
    });
    // Wait until the child's waiter is queued (seen from the child).
    for (;;) {
      rump_lwproc_switch(child_lwp);
      long n = rump_sys_futex(w, FUTEX_CMP_REQUEUE | priv, 0, reinterpret_cast<const timespec*>(uintptr_t{1}), w, 0);
      rump_lwproc_switch(parent);
      if (n == 1) break;
      std::this_thread::yield();
    }
    long n = rump_sys_futex(w, FUTEX_WAKE | priv, 1, nullptr, nullptr, 0);
    if (priv) {
      CHECK(n == 0);  // another space's private futex
      rump_lwproc_switch(child_lwp);
      CHECK(rump_sys_futex(w, FUTEX_WAKE | priv, 1, nullptr, nullptr, 0) == 1);
      rump_lwproc_switch(parent);
    } else {
      CHECK(n == 1);
    }
    t.join();
    CHECK(r == 0);
  }
  CHECK_THREADS_OK();
  // Unmapped memory: a shared key needs the mapping, a private one not.
  CHECK(rump_sys_munmap(m, 4096) == 0);
  CHECK_ERRNO(EFAULT, rump_sys_futex(w, FUTEX_WAKE, 1, nullptr, nullptr, 0));
  CHECK(rump_sys_futex(w, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0) == 0);
  CHECK_ERRNO(EFAULT, rump_sys_futex(w, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0));
}

