// Shared support for the Catch2 tests of the rump kernel: the fixture that
// boots a kernel and makes it current for the test (halting it at the end),
// errno-checking macros, making processes with rump_lwproc_rfork and running
// code as one of them, and running code in a host child process (to compare
// the host kernel with the rump kernel).
//
// Public headers only (<rump/rump.h>), so that tests/api can use it too.
// Everything is in namespace rump_test; a suite whose kernels need their own
// boot settings derives its fixture from rump_test::KernelUp.
#pragma once

#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <thread>

// Expects expr to fail with -1 (or MAP_FAILED) and errno e.
#define CHECK_ERRNO(e, expr)                                                        \
  do {                                                                              \
    errno = 0;                                                                      \
    long r_ = (long)(intptr_t)(expr);                                               \
    int e_ = errno;                                                                 \
    INFO(#expr << " returned " << r_ << ", errno " << e_ << " (want " << (e) << ")"); \
    CHECK(r_ == -1);                                                                \
    CHECK(e_ == (e));                                                               \
  } while (0)

// Expects expr to succeed (a result >= 0).
#define CHECK_OK(expr)                                                   \
  do {                                                                   \
    errno = 0;                                                           \
    long r_ = static_cast<long>(expr);                                   \
    INFO(#expr << " returned " << r_ << ", errno " << errno);            \
    CHECK(r_ >= 0);                                                      \
  } while (0)

namespace rump_test {

// The boot settings tests vary; the defaults are rump_boot_config_init's.
struct BootOpts {
  int ncpu = 0;
  size_t memlimit = 0;
  const char* hostname = nullptr;
  int verbose = -1;
};

inline rump_boot_config boot_config(const BootOpts& o) {
  rump_boot_config c;
  rump_boot_config_init(&c);
  c.ncpu = o.ncpu;
  c.memlimit = o.memlimit;
  c.hostname = o.hostname;
  c.verbose = o.verbose;
  return c;
}

// Boots a kernel (NULL config: the defaults) and makes it current on this
// thread.
inline rump_kernel* boot_current(const rump_boot_config* c) {
  rump_kernel* k = nullptr;
  int e = rump_kernel_boot(c, &k);
  REQUIRE(e == 0);
  REQUIRE(rump_kernel_set_current(k) == 0);
  return k;
}

// Boots a kernel, makes it current on this thread; halts it at the end.
struct KernelUp {
  rump_kernel* k = nullptr;
  explicit KernelUp(const rump_boot_config* c = nullptr) : k(boot_current(c)) {}
  explicit KernelUp(const BootOpts& o) {
    rump_boot_config c = boot_config(o);
    k = boot_current(&c);
  }
  ~KernelUp() {
    if (!k) return;
    rump_lwproc_switch(nullptr);
    rump_kernel_set_current(nullptr);
    rump_kernel_halt(k);
  }
  // Bytes of kernel memory in use.
  size_t mem() const { return rump_kernel_memory_in_use(k); }
  KernelUp(const KernelUp&) = delete;
  KernelUp& operator=(const KernelUp&) = delete;
};

// A process made with rump_lwproc_rfork from the calling context; the
// thread goes back to that context.
struct Kid {
  pid_t pid;
  lwp* l;
};
inline Kid fork_kid(int flags = RUMP_RFFDG) {
  lwp* prev = rump_lwproc_curlwp();
  int e = rump_lwproc_rfork(flags);
  REQUIRE(e == 0);
  Kid k{rump_sys_getpid(), rump_lwproc_curlwp()};
  REQUIRE(k.l != nullptr);
  rump_lwproc_switch(prev);
  return k;
}

// Runs f as l, then goes back to the calling context.
template <class F>
auto as(lwp* l, F f) {
  lwp* prev = rump_lwproc_curlwp();
  rump_lwproc_switch(l);
  auto r = f();
  rump_lwproc_switch(prev);
  return r;
}

// Runs f in a host child process (made with fork()) and returns what it
// returned (T is copied through a pipe as bytes): for comparing the host
// kernel with the rump kernel.
template <class T, class F>
T host_child(F f) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t p = fork();
  REQUIRE(p >= 0);
  if (p == 0) {
    close(fds[0]);
    T r = f();
    ssize_t n = write(fds[1], &r, sizeof r);
    _exit(n == static_cast<ssize_t>(sizeof r) ? 0 : 1);
  }
  close(fds[1]);
  T r{};
  size_t got = 0;
  while (got < sizeof r) {
    ssize_t n = read(fds[0], reinterpret_cast<char*>(&r) + got, sizeof r - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  int st = 0;
  waitpid(p, &st, 0);
  REQUIRE(got == sizeof r);
  REQUIRE(WIFEXITED(st));
  return r;
}

// Runs fn on a new host thread and rethrows what it threw (a failed
// REQUIRE). A thread's implicit LWP and its other per-thread state are
// keyed by kernel, and a kernel booted after a halt may sit at the same
// address: a test that boots its own kernels starts from a fresh thread.
template <class Fn>
void on_fresh_thread(Fn&& fn) {
  std::exception_ptr ep;
  std::thread t([&] {
    try {
      fn();
    } catch (...) {
      ep = std::current_exception();
    }
  });
  t.join();
  if (ep) std::rethrow_exception(ep);
}

}  // namespace rump_test
