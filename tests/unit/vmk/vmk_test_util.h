// Helpers for the vm faction's tests: a kernel per test case, an isolated
// process, errno checks.
#pragma once

#include <rump/rump.h>
#include <rump/vmspace.h>

#include <catch2/catch.hpp>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>

#define CHECK_ERRNO(e, expr)                                                        \
  do {                                                                              \
    errno = 0;                                                                      \
    long r_ = (long)(intptr_t)(expr);                                               \
    int e_ = errno;                                                                 \
    INFO(#expr << " returned " << r_ << ", errno " << e_ << " (want " << (e) << ")"); \
    CHECK(r_ == -1);                                                                \
    CHECK(e_ == (e));                                                               \
  } while (0)

// Boots a kernel, makes it current on this thread; halts it at the end.
struct KernelUp {
  rump_kernel* k = nullptr;
  explicit KernelUp(size_t memlimit = 0) {
    rump_boot_config c;
    rump_boot_config_init(&c);
    c.ncpu = 2;
    c.memlimit = memlimit;
    REQUIRE(rump_kernel_boot(&c, &k) == 0);
    REQUIRE(rump_kernel_set_current(k) == 0);
  }
  ~KernelUp() {
    rump_lwproc_switch(nullptr);
    rump_kernel_set_current(nullptr);
    rump_kernel_halt(k);
  }
  size_t mem() const { return rump_kernel_memory_in_use(k); }
  KernelUp(const KernelUp&) = delete;
  KernelUp& operator=(const KernelUp&) = delete;
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
