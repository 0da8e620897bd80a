// Helpers for the vm faction's tests: a kernel per test case (2 CPUs), an
// isolated process. The fixture and errno checks are tests/support/rump_test.h.
#pragma once

#include <rump/rump.h>
#include <rump/vmspace.h>

#include "rump_test.h"

#include <catch2/catch.hpp>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>

// Boots a kernel with 2 CPUs (and memlimit bytes of memory, 0: no limit).
struct KernelUp : rump_test::KernelUp {
  explicit KernelUp(size_t memlimit = 0) : rump_test::KernelUp(rump_test::BootOpts{.ncpu = 2, .memlimit = memlimit}) {}
};

// The calling thread becomes a new process with a fresh isolated space.
inline struct lwp* isolated_proc() {
  REQUIRE(rump_lwproc_rfork(RUMP_RFVMSPACE | RUMP_RFNOWAIT) == 0);
  return rump_lwproc_curlwp();
}

inline void* guest_map(size_t len, int prot = PROT_READ | PROT_WRITE, void* at = nullptr, int extra = 0) {
  return rump_sys_mmap(at, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
}

inline uintptr_t U(void* p) { return reinterpret_cast<uintptr_t>(p); }
inline void* P(uintptr_t a) { return reinterpret_cast<void*>(a); }

// The thread's implicit LWP and the process table's growth to a few
// entries stay for the kernel's life: make them before measuring memory.
inline void warm_up() {
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  struct lwp* a = rump_lwproc_curlwp();
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  struct lwp* b = rump_lwproc_curlwp();
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(b);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(a);
  rump_lwproc_releaselwp();
}
