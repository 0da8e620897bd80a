// The support every Catch2 suite of the rump kernel shares:
//  - KernelUp, the fixture that boots a kernel with BootOpts, makes it
//    current for the test's thread and halts it at the end;
//  - CHECK_ERRNO / CHECK_OK, errno-checking assertions;
//  - processes made with rump_lwproc_rfork (fork_kid, fork_and_switch) and
//    running code as one of them (as);
//  - signal actions in the kernel's layout (set_action, set_mask);
//  - assertions from helper threads (TCHECK, CHECK_THREADS_OK) and a
//    signal sender on another thread (kill_later);
//  - processes with an isolated address space and memory in it
//    (isolated_proc, guest_map, warm_up);
//  - running code in a host child process (host_child), to compare the
//    host kernel with the rump kernel, and on a fresh host thread.
//
// Public headers only (<rump/rump.h>). Everything but the macros is in
// namespace rump_test.
#pragma once

#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#include <catch2/catch.hpp>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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

// The boot settings tests vary. 0 and NULL are rump_boot_config_init's
// defaults (from the environment), except verbose: tests boot quietly.
struct BootOpts {
  int ncpu = 0;
  size_t memlimit = 0;
  const char* hostname = nullptr;
  int verbose = 0;
  int maxproc = 0;
  int pid_max = 0;
  const char* backend = nullptr;
};

inline rump_boot_config boot_config(const BootOpts& o) {
  rump_boot_config c;
  rump_boot_config_init(&c);
  c.ncpu = o.ncpu;
  c.memlimit = o.memlimit;
  c.hostname = o.hostname;
  c.verbose = o.verbose;
  c.maxproc = o.maxproc;
  c.pid_max = o.pid_max;
  c.backend = o.backend;
  return c;
}

// ------------------------------------------------------------------ kernels

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
// KernelUp up({.ncpu = 2}) for other settings.
struct KernelUp {
  rump_kernel* k = nullptr;
  explicit KernelUp(const BootOpts& o = {}) {
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

// ---------------------------------------------------------------- processes

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

// A process made with rump_lwproc_rfork from the calling context; the
// thread goes on as the new process's LWP.
inline Kid fork_and_switch(int flags = RUMP_RFFDG) {
  int e = rump_lwproc_rfork(flags);
  REQUIRE(e == 0);
  Kid k{rump_sys_getpid(), rump_lwproc_curlwp()};
  REQUIRE(k.l != nullptr);
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

// ---------------------------------------------------------------- signals

// Linux's struct kernel_sigaction (what rt_sigaction takes).
struct KSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};
// A handler address the kernel records but never runs (there is no user
// code to run): the signal is "caught", so it interrupts sleeps with EINTR.
inline void* const kHandler = reinterpret_cast<void*>(uintptr_t{0x1000});
inline void* const kIgn = reinterpret_cast<void*>(uintptr_t{1});  // SIG_IGN
inline void* const kDfl = nullptr;                                // SIG_DFL

// The bit of sig in a kernel sigset.
constexpr uint64_t sig_bit(int sig) { return uint64_t{1} << (sig - 1); }

// rt_sigaction(sig, {handler, flags, mask}, NULL) for the calling process.
inline int set_action(int sig, void* handler, unsigned long flags = 0, uint64_t mask = 0) {
  KSigaction a{handler, flags, nullptr, mask};
  return rump_sys_rt_sigaction(sig, &a, nullptr, 8);
}
// rt_sigprocmask(how, set, old) for the calling LWP.
inline int set_mask(int how, uint64_t set, uint64_t* old = nullptr) {
  return rump_sys_rt_sigprocmask(how, reinterpret_cast<const sigset_t*>(&set), reinterpret_cast<sigset_t*>(old), 8);
}

// ---------------------------------------------------------- helper threads

// Catch2 v2 assertions are not thread-safe: helper threads record their
// failures here (TCHECK, TFAIL) and the test's thread checks them after
// join() with CHECK_THREADS_OK(), which also resets the record.
class ThreadFailures {
 public:
  void add(const char* what, const char* file, int line) {
    if (n_.fetch_add(1) == 0) {
      std::lock_guard<std::mutex> g(m_);
      first_ = std::string(what) + " at " + file + ":" + std::to_string(line);
    }
  }
  // The number of failures since the last take(), and the first of them.
  int take(std::string* first) {
    std::lock_guard<std::mutex> g(m_);
    *first = std::move(first_);
    first_.clear();
    return n_.exchange(0);
  }

 private:
  std::atomic<int> n_{0};
  std::mutex m_;
  std::string first_;
};
inline ThreadFailures thread_failures;

}  // namespace rump_test

// In a helper thread: records a failure if expr is false.
#define TCHECK(expr)                                                                \
  do {                                                                              \
    if (!(expr)) ::rump_test::thread_failures.add(#expr, __FILE__, __LINE__);       \
  } while (0)
// In a helper thread: records a failure.
#define TFAIL(what) ::rump_test::thread_failures.add(what, __FILE__, __LINE__)
// On the test's thread, after joining the helpers: none of them failed.
#define CHECK_THREADS_OK()                                       \
  do {                                                           \
    std::string first_;                                          \
    int n_ = ::rump_test::thread_failures.take(&first_);         \
    INFO("first failure in a helper thread: " << first_);        \
    CHECK(n_ == 0);                                              \
  } while (0)

namespace rump_test {

// Sends sig to pid in kernel k from another host thread, after a pause in
// which the caller goes to sleep in the call under test; the caller joins
// the thread, then CHECK_THREADS_OK(). The outcome does not depend on the
// pause: a caught signal that arrives before the sleep is pending when it
// begins and interrupts it at once.
inline std::thread kill_later(rump_kernel* k, pid_t pid, int sig) {
  return std::thread([k, pid, sig] {
    rump_kernel_set_current(k);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    TCHECK(rump_sys_kill(pid, sig) == 0);
  });
}

// ------------------------------------------------ isolated address spaces

// The calling thread becomes a new process (a child of init) with a fresh
// isolated address space: every user pointer it passes is checked.
inline lwp* isolated_proc() {
  REQUIRE(rump_lwproc_rfork(RUMP_RFVMSPACE | RUMP_RFNOWAIT) == 0);
  return rump_lwproc_curlwp();
}

// Anonymous private memory in the calling process's space.
inline void* guest_map(size_t len, int prot = PROT_READ | PROT_WRITE, void* at = nullptr, int extra = 0) {
  return rump_sys_mmap(at, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
}

// The host's CPU clock of the calling thread, in nanoseconds.
inline int64_t host_thread_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Burns ns of the calling thread's CPU time in user code.
inline void burn_thread_cpu(int64_t ns) {
  int64_t end = host_thread_ns() + ns;
  volatile uint64_t x = 0;
  while (host_thread_ns() < end)
    for (uint64_t i = 0; i < 10000; i++) x = x + i;
}

inline uintptr_t U(void* p) { return reinterpret_cast<uintptr_t>(p); }
inline void* P(uintptr_t a) { return reinterpret_cast<void*>(a); }

// The thread's implicit LWP and the process table's growth to a few
// entries stay for the kernel's life: make them before measuring memory.
inline void warm_up() {
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  lwp* a = rump_lwproc_curlwp();
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  lwp* b = rump_lwproc_curlwp();
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(b);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(a);
  rump_lwproc_releaselwp();
}

// ---------------------------------------------------------- host children

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


// One entry of a directory, as getdents64 gives it.
struct Dirent {
  std::string name;
  unsigned char type;  // DT_*
};

// The entries of the current kernel's directory path in getdents64 order
// ("." and ".." too); false (and what was read) when the open or a
// getdents64 failed.
inline bool rump_dirents(const std::string& path, std::vector<Dirent>& out) {
  int fd = rump_sys_open(path.c_str(), O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return false;
  bool ok = true;
  char buf[8192];
  for (;;) {
    long n = rump_sys_getdents64(fd, buf, sizeof buf);
    if (n < 0) ok = false;
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      out.push_back(Dirent{d->d_name, d->d_type});
      off += d->d_reclen;
    }
  }
  rump_sys_close(fd);
  return ok;
}

}  // namespace rump_test
