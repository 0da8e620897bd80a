// The differential harness of the signal tests: one scenario, a template
// over the kernel it talks to, runs in a forked host child against the
// host kernel (so the test program's own signal state is untouched) and
// in a fresh process of a fresh rump kernel; each logs every result and
// errno, and the two logs must be equal.
//
// SYS(name, args...) makes the raw system call: rump_sys_name() or the
// host's syscall(SYS_name). R logs an exact result, V a value the
// scenario computed (pids and uids are logged relative to the caller's).
#pragma once

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdint>
#include <atomic>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#include "repeat_sender.h"
#include "rump_test.h"

namespace sig_test {

struct Log {
  char buf[32 * 1024];
  size_t n;
  bool overflow;
  void add(int line, const char* fmt, ...) __attribute__((format(printf, 3, 4))) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    int w = snprintf(buf + n, sizeof buf - n, "%d: %s\n", line, tmp);
    if (w < 0 || static_cast<size_t>(w) >= sizeof buf - n) {
      overflow = true;
      return;
    }
    n += static_cast<size_t>(w);
  }
};

template <bool Rump>
struct K {
  static constexpr bool kRump = Rump;
};

inline long log_result(Log& L, int line, const char* text, long r) {
  int e = errno;
  if (r < 0) L.add(line, "%s = -1 errno %d", text, e);
  else L.add(line, "%s = %ld", text, r);
  errno = e;
  return r;
}

#define SYS(name, ...) \
  (S::kRump ? static_cast<long>(rump_sys_##name(__VA_ARGS__)) : static_cast<long>(::syscall(SYS_##name, ##__VA_ARGS__)))
#define R(expr) ::sig_test::log_result(L, __LINE__, #expr, (errno = 0, static_cast<long>(expr)))
#define V(fmt, ...) L.add(__LINE__, fmt, __VA_ARGS__)

using ScenarioFn = void (*)(Log&);

// Runs host and rump versions of a scenario and compares their logs. The
// rump one runs in a child process of init of a fresh kernel.
inline void run_diff(ScenarioFn host, ScenarioFn rump) {
  void* m = mmap(nullptr, sizeof(Log), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(m != MAP_FAILED);
  Log* hl = static_cast<Log*>(m);
  hl->n = 0;
  hl->overflow = false;
  hl->buf[0] = 0;
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    host(*hl);
    _exit(0);
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  INFO("host child status " << st);
  REQUIRE((WIFEXITED(st) && WEXITSTATUS(st) == 0));
  static Log rl;
  rl.n = 0;
  rl.overflow = false;
  rl.buf[0] = 0;
  {
    rump_test::KernelUp up;
    [[maybe_unused]] rump_test::Kid k = rump_test::fork_and_switch();
    rump(rl);
    rump_lwproc_switch(nullptr);
  }
  std::string h(hl->buf, hl->n), r(rl.buf, rl.n);
  munmap(m, sizeof(Log));
  CHECK_FALSE(rl.overflow);
  CHECK(h == r);
}

#define DIFF(name) ::sig_test::run_diff(&name<::sig_test::K<false>>, &name<::sig_test::K<true>>)

// The kernel's struct sigaction (rt_sigaction takes it on both kernels).
struct KSigaction {
  uintptr_t handler;
  unsigned long flags;
  uintptr_t restorer;
  uint64_t mask;
};
inline constexpr uint64_t bit(int sig) { return uint64_t{1} << (sig - 1); }

// A siginfo for rt_sigqueueinfo: code, sender pid/uid and an int value.
inline siginfo_t queue_info(int code, pid_t pid, uid_t uid, int value) {
  siginfo_t si;
  std::memset(&si, 0, sizeof si);
  si.si_code = code;
  si.si_pid = pid;
  si.si_uid = uid;
  si.si_value.sival_int = value;
  return si;
}

using rump_test::RepeatSender;

}  // namespace sig_test
