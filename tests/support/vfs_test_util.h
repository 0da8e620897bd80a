// Helpers for the pipes/poll/devices/etfs tests: a kernel per test case,
// errno checks, processes and signal actions.
#pragma once

#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpvfs.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdint>

#define CHECK_ERRNO(e, expr)                                                        \
  do {                                                                              \
    errno = 0;                                                                      \
    long r_ = static_cast<long>(expr);                                              \
    int e_ = errno;                                                                 \
    INFO(#expr << " returned " << r_ << ", errno " << e_ << " (want " << (e) << ")"); \
    CHECK(r_ == -1);                                                                \
    CHECK(e_ == (e));                                                               \
  } while (0)

struct KernelUp {
  rump_kernel* k = nullptr;
  explicit KernelUp(int ncpu = 0) {
    rump_boot_config c;
    rump_boot_config_init(&c);
    c.ncpu = ncpu;
    c.verbose = 0;
    int e = rump_kernel_boot(&c, &k);
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

// A new process (child of the caller's), bound to the calling thread.
struct Kid {
  pid_t pid;
  struct lwp* l;
};
inline Kid fork_kid(int flags = RUMP_RFFDG) {
  REQUIRE(rump_lwproc_rfork(flags) == 0);
  return Kid{rump_sys_getpid(), rump_lwproc_curlwp()};
}

struct KSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};
inline void* const kHandler = reinterpret_cast<void*>(uintptr_t{0x1000});  // "caught"
inline void* const kIgn = reinterpret_cast<void*>(uintptr_t{1});
inline int set_action(int sig, void* handler) {
  KSigaction a{handler, 0, nullptr, 0};
  return rump_sys_rt_sigaction(sig, &a, nullptr, 8);
}

// Catch2 v2 assertions are not thread-safe: helper threads count their
// failures here and the test's thread checks the count after join().
#include <atomic>
inline std::atomic<int> thread_failures{0};
#define TCHECK(expr)                                     \
  do {                                                   \
    if (!(expr)) thread_failures.fetch_add(1);           \
  } while (0)

// Sends sig to pid in kernel k from another host thread, 30 ms from now
// (long enough for the caller to block): the caller joins the thread and
// then checks thread_failures.
#include <chrono>
#include <thread>
inline std::thread kill_later(struct rump_kernel* k, pid_t pid, int sig) {
  return std::thread([k, pid, sig] {
    rump_kernel_set_current(k);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    TCHECK(rump_sys_kill(pid, sig) == 0);
  });
}
