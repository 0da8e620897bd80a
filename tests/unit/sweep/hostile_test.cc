// Every system call in the table, called with hostile arguments from a
// process in the host's address space: out-of-range numbers, bad flags, bad
// pids and descriptors, and pointers that cannot be user memory (NULL, the
// first page, non-canonical, wrapping). Each call must answer (a result or
// -errno) and the host process must survive. Pointers into the host's real
// memory are not tried: a local client's valid-looking pointer is its own
// business, as in rump (isolated processes check every address: see
// tests/unit/vm/sweep_test.cc). Pointers that cannot be user memory must
// give EFAULT from every call that reads or writes through them
// (pointer_sweep.h).
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <rump/rump.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <sys/wait.h>

#include "kern/syscall.h"
#include "pointer_sweep.h"
#include "rump_test.h"
#include "syscall_skip.h"

namespace {

const long kInts[] = {0, 1, -1, 2, 3, 255, 4096, INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, 0x7fffffffL,
                      0xdeadbeefL, 1L << 40, -4096};
const long kPtrs[] = {0, 1, 8, 4095, -1, -4096, static_cast<long>(1UL << 47), static_cast<long>(1UL << 63),
                      static_cast<long>(~0UL - 10)};

using Booted = rump_test::KernelUp;

}  // namespace

TEST_CASE("system call numbers outside the table or without a handler are ENOSYS", "[sweep]") {
  Booted b;
  const long zero[6] = {};
  for (long nr : {-1L, -1000L, 1024L, 1025L, 100000L, LONG_MAX, LONG_MIN}) {
    INFO("nr " << nr);
    CHECK(rump_syscall(nr, zero) == -ENOSYS);
  }
  int unimplemented = 0;
  for (long nr = 0; nr < 1024; nr++) {
    if (rump_syscall_name(nr) != nullptr) continue;
    INFO("nr " << nr);
    CHECK(rump_syscall(nr, zero) == -ENOSYS);
    unimplemented++;
  }
  CHECK(unimplemented > 0);
}

TEST_CASE("every system call answers hostile arguments without harming the host", "[sweep]") {
  std::mt19937_64 rng(12345);
  int calls = 0;
  for (size_t i = 0; i < rump::kSyscallNameCount; i++) {
    const rump::SyscallName& s = rump::kSyscallNames[i];
    if (rump_test::sweep_skips(s.name)) continue;  // see syscall_skip.h
    if (std::strcmp(s.name, "kill") == 0) continue;  // below, on its own
    Booted b;  // a fresh kernel per call, so no call's effect hides another's
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    for (int round = 0; round < 60; round++) {
      long a[6] = {};
      for (int j = 0; j < s.nargs; j++) {
        if (s.ptr_mask & (1u << j)) a[j] = kPtrs[rng() % (sizeof kPtrs / sizeof kPtrs[0])];
        else a[j] = kInts[rng() % (sizeof kInts / sizeof kInts[0])];
      }
      if (rump_lwproc_curlwp() == nullptr) {
        // The call ended the process (e.g. setsid-then-kill): start another.
        REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
      }
      long r = rump_syscall(s.nr, a);
      INFO(s.name << "(" << a[0] << ", " << a[1] << ", " << a[2] << ", " << a[3] << ", " << a[4] << ", "
                  << a[5] << ") = " << r);
      // An error is a Linux errno; a success is whatever the call returns.
      if (r < 0 && r >= -4095) CHECK(-r < 134);
      calls++;
    }
  }
  CHECK(calls > 1000);
}

TEST_CASE("kill with hostile pids and signals answers and never kills the host", "[sweep]") {
  Booted b;
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  for (long pid : {0L, -1L, 1L, INT_MAX + 0L, INT_MIN + 0L, -2L, 99999L}) {
    for (long sig : {-1L, 65L, 1000L, INT_MIN + 0L}) {
      const long a[6] = {pid, sig};
      long r = rump_syscall(SYS_kill, a);
      INFO("kill(" << pid << ", " << sig << ") = " << r);
      CHECK(r == -EINVAL);
    }
  }
  for (long pid : {INT_MAX + 0L, -2L, 99999L}) {
    const long a[6] = {pid, 0};
    CHECK(rump_syscall(SYS_kill, a) == -ESRCH);
  }
  // A deadly signal to everyone but init and the caller: another process
  // of the kernel dies, the host does not.
  lwp* self = rump_lwproc_curlwp();
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  pid_t other = rump_sys_getpid();
  rump_lwproc_switch(self);
  const long a[6] = {-1, SIGKILL};
  CHECK(rump_syscall(SYS_kill, a) == 0);
  int st = 0;
  CHECK(rump_sys_wait4(other, &st, 0, nullptr) == other);
  CHECK(WIFSIGNALED(st));
  CHECK(rump_sys_getpid() > 0);
}

TEST_CASE("a pointer that cannot be user memory is EFAULT for every call that reads or writes through it",
          "[sweep]") {
  Booted b;
  // Good memory for the probes: zeroed before each, larger than anything
  // the scalars below ask a call to copy.
  alignas(4096) static unsigned char good[64 * 1024];
  // The template each probe forks: the descriptors and groups of
  // open_sweep_descriptors.
  REQUIRE(rump_lwproc_rfork(RUMP_RFCFDG) == 0);
  lwp* templ = rump_lwproc_curlwp();
  rump_test::open_sweep_descriptors();
  // Scalars stay small (no -1): with a good pointer the kernel copies to
  // and from the host's own memory, and a huge length would run past the
  // buffer, which is the caller's business here, not the kernel's.
  rump_test::PointerSweep sw{templ,
                             static_cast<long>(reinterpret_cast<uintptr_t>(good)),
                             [] { std::memset(good, 0, sizeof good); },
                             {{1, "first page"},
                              {4095, "first page, end"},
                              {-4096, "top of the address space"},
                              {static_cast<long>(1UL << 47), "non-canonical"},
                              {static_cast<long>(~0UL - 10), "wrapping"}},
                             {std::begin(rump_test::kSweepScalars), std::end(rump_test::kSweepScalars)}};
  int swept = 0;
  for (size_t i = 0; i < rump::kSyscallNameCount; i++) {
    const rump::SyscallName& sc = rump::kSyscallNames[i];
    if (rump_test::sweep_skips(sc.name) || rump_test::memory_args(sc.name, sc.ptr_mask) == 0) continue;
    INFO(sc.name);
    int efaults = rump_test::sweep_bad_pointers(sw, sc);
    const char* why = rump_test::no_efault_reason(sc.name);
    // In a host-space process mincore answers only for ranges the process
    // mapped with mmap: for the test's own buffer ENOMEM comes first (the
    // isolated sweep in tests/unit/vm/sweep_test.cc reaches its EFAULT).
    if (std::strcmp(sc.name, "mincore") == 0) why = "the good range is not the process's mapping";
    if (why) {
      INFO("expected no EFAULT: " << why);
      CHECK(efaults == 0);
    } else {
      CHECK(efaults > 0);
    }
    swept++;
  }
  CHECK(swept > 60);
  rump_lwproc_releaselwp();
}
