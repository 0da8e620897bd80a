// Helpers for the VFS tests: a kernel per test case, errno checks.
#pragma once

#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#include <catch2/catch.hpp>
#include <cerrno>

#define CHECK_ERRNO(e, expr)                                                        \
  do {                                                                              \
    errno = 0;                                                                      \
    long r_ = static_cast<long>(expr);                                              \
    int e_ = errno;                                                                 \
    INFO(#expr << " returned " << r_ << ", errno " << e_ << " (want " << (e) << ")"); \
    CHECK(r_ == -1);                                                                \
    CHECK(e_ == (e));                                                               \
  } while (0)

#define CHECK_OK(expr)                                                   \
  do {                                                                   \
    errno = 0;                                                           \
    long r_ = static_cast<long>(expr);                                   \
    INFO(#expr << " returned " << r_ << ", errno " << errno);            \
    CHECK(r_ >= 0);                                                      \
  } while (0)

// Boots a kernel, makes it current on this thread; halts it at the end.
struct KernelUp {
  rump_kernel* k = nullptr;
  explicit KernelUp(const rump_boot_config* c = nullptr) {
    int e = rump_kernel_boot(c, &k);
    REQUIRE(e == 0);
    REQUIRE(rump_kernel_set_current(k) == 0);
  }
  ~KernelUp() {
    if (!k) return;
    rump_lwproc_switch(nullptr);
    rump_kernel_set_current(nullptr);
    rump_kernel_halt(k);
  }
  KernelUp(const KernelUp&) = delete;
  KernelUp& operator=(const KernelUp&) = delete;
};
