// Kernel core: boot and halt, several kernels, the lwproc API, exit and
// wait, process groups and sessions, limits, pid allocation, the raw
// syscall entry, tracing, the message buffer and bad user pointers.
//
// Each TEST_CASE boots its own kernel (KernelUp) so tests are isolated.
// Where the semantics are Linux's, expectations are Linux's (checked
// against the host kernel where that is cheap: see host_child()).
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <unistd.h>

#include "rump_test.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <thread>
#include <vector>

namespace {

using rump_test::as;
using rump_test::fork_kid;
using rump_test::host_child;
using rump_test::KernelUp;
using rump_test::Kid;

rump_boot_config config(int ncpu = 0, int maxproc = 0, int pid_max = 0, const char* host = nullptr) {
  return rump_test::boot_config({.ncpu = ncpu, .hostname = host, .maxproc = maxproc, .pid_max = pid_max});
}

// Ends k with exit(status) from its own LWP.
void exit_kid(const Kid& k, int status) {
  as(k.l, [&] {
    int r = rump_sys_exit(status);
    CHECK(r == 0);
    CHECK(rump_lwproc_curlwp() == nullptr);
    return 0;
  });
}
// Ends k by releasing its only LWP.
void release_kid(const Kid& k) {
  as(k.l, [] {
    rump_lwproc_releaselwp();
    return 0;
  });
}

struct RetErr {
  long ret;
  int err;
  bool operator==(const RetErr& o) const { return ret == o.ret && err == o.err; }
};
std::ostream& operator<<(std::ostream& os, const RetErr& r) {
  return os << "{ret " << r.ret << ", errno " << r.err << "}";
}
template <class F>
RetErr ret_err(F f) {
  errno = 0;
  long r = static_cast<long>(f());
  return {r, r == -1 ? errno : 0};
}

std::string msgbuf() {
  size_t n = rump_msgbuf_read(nullptr, 0);
  std::string s(n + 1, '\0');
  rump_msgbuf_read(s.data(), s.size());
  s.resize(std::strlen(s.c_str()));
  return s;
}

}  // namespace

// ---------------------------------------------------------------- boot

TEST_CASE("a booted kernel is current, serves syscalls, and halts", "[core][boot]") {
  rump_kernel* k = nullptr;
  REQUIRE(rump_kernel_boot(nullptr, &k) == 0);
  REQUIRE(k != nullptr);
  REQUIRE(rump_kernel_set_current(k) == 0);
  CHECK(rump_kernel_current() == k);
  CHECK(rump_sys_getpid() == 1);  // implicit context: init
  CHECK(rump_sys_getuid() == 0);
  CHECK(rump_kernel_memory_in_use(k) > 0);
  REQUIRE(rump_kernel_set_current(nullptr) == 0);
  CHECK(rump_kernel_halt(k) == 0);
  // Gone: neither current-able nor haltable again.
  CHECK(rump_kernel_set_current(k) == EINVAL);
  CHECK(rump_kernel_halt(k) == EINVAL);
}

TEST_CASE("rump_kernel_boot with a NULL result pointer or bad config is EINVAL", "[core][boot]") {
  CHECK(rump_kernel_boot(nullptr, nullptr) == EINVAL);
  rump_kernel* k = nullptr;
  rump_boot_config c = config();
  c.ncpu = -1;
  CHECK(rump_kernel_boot(&c, &k) == EINVAL);
  c = config();
  c.maxproc = -5;
  CHECK(rump_kernel_boot(&c, &k) == EINVAL);
  c = config();
  c.pid_max = -5;
  CHECK(rump_kernel_boot(&c, &k) == EINVAL);
  std::string longname(100, 'x');
  c = config(0, 0, 0, longname.c_str());
  CHECK(rump_kernel_boot(&c, &k) == EINVAL);
  CHECK(k == nullptr);
}

TEST_CASE("rump_init is idempotent and boots the default kernel", "[core][boot]") {
  rump_kernel_set_current(nullptr);
  REQUIRE(rump_init() == 0);
  rump_kernel* k1 = rump_kernel_current();
  REQUIRE(k1 != nullptr);
  REQUIRE(rump_init() == 0);
  CHECK(rump_kernel_current() == k1);
  CHECK(rump_sys_getpid() == 1);
  // Halting the default kernel (NULL: the current one) leaves none.
  CHECK(rump_kernel_halt(nullptr) == 0);
  CHECK(rump_kernel_current() == nullptr);
}

TEST_CASE("boot and halt 100 times: the same footprint each time", "[core][boot]") {
  rump_boot_config c = config(1);
  size_t first = 0;
  for (int i = 0; i < 100; i++) {
    rump_kernel* k = nullptr;
    REQUIRE(rump_kernel_boot(&c, &k) == 0);
    size_t m = rump_kernel_memory_in_use(k);
    if (i == 0) first = m;
    INFO("boot " << i);
    REQUIRE(m == first);
    REQUIRE(rump_kernel_halt(k) == 0);
  }
}

TEST_CASE("process churn does not grow kernel memory", "[core][boot]") {
  KernelUp up({.ncpu = 1});
  auto cycle = [] {
    for (int i = 0; i < 20; i++) {
      REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
      rump_lwproc_releaselwp();
    }
  };
  cycle();
  size_t steady = rump_kernel_memory_in_use(up.k);
  for (int round = 0; round < 10; round++) {
    cycle();
    INFO("round " << round);
    CHECK(rump_kernel_memory_in_use(up.k) == steady);
  }
}

TEST_CASE("several kernels side by side are independent", "[core][boot]") {
  rump_boot_config ca = config(1, 0, 0, "alpha");
  rump_boot_config cb = config(1, 0, 0, "beta");
  rump_kernel *a = nullptr, *b = nullptr;
  REQUIRE(rump_kernel_boot(&ca, &a) == 0);
  REQUIRE(rump_kernel_boot(&cb, &b) == 0);
  REQUIRE(a != b);

  // Host names per kernel.
  struct utsname u;
  REQUIRE(rump_kernel_set_current(a) == 0);
  REQUIRE(rump_sys_uname(&u) == 0);
  CHECK(std::string(u.nodename) == "alpha");
  REQUIRE(rump_kernel_set_current(b) == 0);
  REQUIRE(rump_sys_uname(&u) == 0);
  CHECK(std::string(u.nodename) == "beta");

  // Two processes in a, one in b: pids are allocated per kernel.
  REQUIRE(rump_kernel_set_current(a) == 0);
  Kid a1 = fork_kid();
  Kid a2 = fork_kid();
  REQUIRE(rump_kernel_set_current(b) == 0);
  Kid b1 = fork_kid();
  CHECK(b1.pid == a1.pid);  // both kernels start from the same pid
  CHECK(a2.pid != a1.pid);
  // The thread's LWP binding is per kernel: bound to a2 in a, implicit in b.
  REQUIRE(rump_kernel_set_current(a) == 0);
  rump_lwproc_switch(a2.l);
  CHECK(rump_sys_getpid() == a2.pid);
  REQUIRE(rump_kernel_set_current(b) == 0);
  CHECK(rump_sys_getpid() == 1);
  CHECK(rump_lwproc_curlwp() == nullptr);
  REQUIRE(rump_kernel_set_current(a) == 0);
  rump_lwproc_switch(nullptr);

  // Halting a leaves b alone.
  REQUIRE(rump_kernel_set_current(nullptr) == 0);
  REQUIRE(rump_kernel_halt(a) == 0);
  REQUIRE(rump_kernel_set_current(b) == 0);
  rump_lwproc_switch(b1.l);
  CHECK(rump_sys_getpid() == b1.pid);
  CHECK(rump_sys_getppid() == 1);
  REQUIRE(rump_sys_uname(&u) == 0);
  CHECK(std::string(u.nodename) == "beta");
  rump_lwproc_switch(nullptr);
  REQUIRE(rump_kernel_set_current(nullptr) == 0);
  REQUIRE(rump_kernel_halt(b) == 0);
}

TEST_CASE("RUMP_HOSTNAME names a kernel booted without a host name", "[core][boot]") {
  REQUIRE(setenv("RUMP_HOSTNAME", "from-env", 1) == 0);
  rump_boot_config c = config();
  rump_kernel* k = nullptr;
  int e = rump_kernel_boot(&c, &k);
  unsetenv("RUMP_HOSTNAME");
  REQUIRE(e == 0);
  REQUIRE(rump_kernel_set_current(k) == 0);
  struct utsname u;
  REQUIRE(rump_sys_uname(&u) == 0);
  CHECK(std::string(u.nodename) == "from-env");
  rump_kernel_set_current(nullptr);
  REQUIRE(rump_kernel_halt(k) == 0);
}

TEST_CASE("a thread alternating between two kernels does not pile up implicit LWPs",
          "[core][boot]") {
  // (Regression: the implicit-LWP cache once held one kernel per thread,
  // so each switch back made a new implicit LWP.)
  rump_boot_config c = config(1);
  rump_kernel *a = nullptr, *b = nullptr;
  REQUIRE(rump_kernel_boot(&c, &a) == 0);
  REQUIRE(rump_kernel_boot(&c, &b) == 0);
  auto round = [&] {
    rump_kernel_set_current(a);
    pid_t ta = rump_sys_gettid();
    rump_kernel_set_current(b);
    rump_sys_gettid();
    return ta;
  };
  pid_t t0 = round();
  size_t m0 = rump_kernel_memory_in_use(a);
  pid_t t1 = t0;
  for (int i = 0; i < 100; i++) t1 = round();
  CHECK(t1 == t0);  // the same implicit LWP each time
  CHECK(rump_kernel_memory_in_use(a) == m0);
  rump_kernel_set_current(nullptr);
  REQUIRE(rump_kernel_halt(a) == 0);
  REQUIRE(rump_kernel_halt(b) == 0);
}

TEST_CASE("rump_kernel_set_current with a pointer that is not a kernel is EINVAL", "[core][boot]") {
  KernelUp up;
  int dummy = 0;
  CHECK(rump_kernel_set_current(reinterpret_cast<rump_kernel*>(&dummy)) == EINVAL);
  CHECK(rump_kernel_set_current(reinterpret_cast<rump_kernel*>(uintptr_t{8})) == EINVAL);
  CHECK(rump_kernel_current() == up.k);  // unchanged
}

TEST_CASE("with no kernel, calls fail with ENOSYS", "[core][boot]") {
  // Make sure no default kernel is left over from elsewhere.
  rump_kernel_set_current(nullptr);
  while (rump_kernel_current() != nullptr) REQUIRE(rump_kernel_halt(nullptr) == 0);
  CHECK_ERRNO(ENOSYS, rump_sys_getpid());
  CHECK_ERRNO(ENOSYS, rump_sys_setuid(5));
  long args[6] = {};
  CHECK(rump_syscall(SYS_getpid, args) == -ENOSYS);
  CHECK(rump_lwproc_rfork(RUMP_RFFDG) == ENOSYS);
  CHECK(rump_lwproc_newlwp(1) == ENOSYS);
  CHECK(rump_lwproc_curlwp() == nullptr);
  rump_lwproc_switch(nullptr);  // harmless
  rump_lwproc_releaselwp();     // harmless
  char buf[8] = "xxxxxxx";
  CHECK(rump_msgbuf_read(buf, sizeof buf) == 0);
  CHECK(buf[0] == '\0');
  CHECK(rump_kernel_halt(nullptr) == EINVAL);
  CHECK(rump_kernel_memory_in_use(nullptr) == 0);
  int x = 0, y = 0;
  CHECK(rump_copyin(&x, &y, sizeof x) == ENOSYS);
}

// ---------------------------------------------------------------- lwproc

TEST_CASE("rump_lwproc_rfork switches to the child; getppid is the parent", "[core][lwproc]") {
  KernelUp up;
  CHECK(rump_lwproc_curlwp() == nullptr);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  lwp* pl = rump_lwproc_curlwp();
  REQUIRE(pl != nullptr);
  pid_t p = rump_sys_getpid();
  CHECK(p > 1);
  CHECK(rump_sys_getppid() == 1);
  CHECK(rump_sys_gettid() == p);  // first LWP: tid == pid
  REQUIRE(rump_lwproc_rfork(0) == 0);
  CHECK(rump_lwproc_curlwp() != pl);
  pid_t c = rump_sys_getpid();
  CHECK(c != p);
  CHECK(rump_sys_getppid() == p);
  rump_lwproc_switch(pl);
  CHECK(rump_sys_getpid() == p);
}

TEST_CASE("rump_lwproc_rfork with RUMP_RFFDG|RUMP_RFCFDG is EINVAL", "[core][lwproc]") {
  KernelUp up;
  CHECK(rump_lwproc_rfork(RUMP_RFFDG | RUMP_RFCFDG) == EINVAL);
  CHECK(rump_lwproc_curlwp() == nullptr);  // still implicit
  CHECK(rump_sys_getpid() == 1);
}

TEST_CASE("rump_lwproc_rfork with unknown flags is EINVAL", "[core][lwproc]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  for (int f : {1 << 0, 1 << 3, 1 << 4 /* RFPROC is implied, not a user flag */, 1 << 13, 1 << 31,
                RUMP_RFMEM | RUMP_RFVMSPACE, -1}) {
    INFO("flags " << f);
    CHECK(rump_lwproc_rfork(f) == EINVAL);
    CHECK(rump_lwproc_curlwp() == p.l);  // unchanged on failure
  }
  // No child was made.
  CHECK_ERRNO(ECHILD, rump_sys_wait4(-1, nullptr, WNOHANG, nullptr));
}

TEST_CASE("rump_lwproc_newlwp makes a new tid in the same process", "[core][lwproc]") {
  KernelUp up;
  Kid p = fork_kid();
  REQUIRE(rump_lwproc_newlwp(p.pid) == 0);
  lwp* l2 = rump_lwproc_curlwp();
  REQUIRE(l2 != nullptr);
  CHECK(l2 != p.l);
  CHECK(rump_sys_getpid() == p.pid);
  pid_t t2 = rump_sys_gettid();
  CHECK(t2 != p.pid);
  CHECK(rump_sys_getppid() == 1);
  // Credentials are the process's: a change through one LWP shows in the other.
  REQUIRE(rump_sys_setuid(1234) == 0);
  rump_lwproc_switch(p.l);
  CHECK(rump_sys_getuid() == 1234);
  CHECK(rump_sys_gettid() == p.pid);
  // Releasing one of two LWPs leaves the process running.
  rump_lwproc_switch(l2);
  rump_lwproc_releaselwp();
  CHECK(rump_lwproc_curlwp() == nullptr);
  rump_lwproc_switch(p.l);
  CHECK(rump_lwproc_curlwp() == p.l);
  CHECK(rump_sys_getpid() == p.pid);
}

TEST_CASE("rump_lwproc_newlwp of no such pid is ESRCH", "[core][lwproc]") {
  KernelUp up;
  CHECK(rump_lwproc_newlwp(99999) == ESRCH);
  CHECK(rump_lwproc_newlwp(-1) == ESRCH);
  CHECK(rump_lwproc_newlwp(0) == ESRCH);  // proc0, the kernel's own
  CHECK(rump_lwproc_curlwp() == nullptr);
  // A process that has exited is gone too.
  Kid p = fork_kid();
  release_kid(p);
  CHECK(rump_lwproc_newlwp(p.pid) == ESRCH);
}

TEST_CASE("rump_lwproc_switch(NULL) goes back to implicit context", "[core][lwproc]") {
  KernelUp up;
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  CHECK(rump_sys_getpid() != 1);
  rump_lwproc_switch(nullptr);
  CHECK(rump_lwproc_curlwp() == nullptr);
  CHECK(rump_sys_getpid() == 1);
  CHECK(rump_sys_getppid() == 0);
}

TEST_CASE("releasing a process's last LWP ends it with status 0", "[core][lwproc][wait]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  rump_lwproc_switch(c.l);
  rump_lwproc_releaselwp();
  CHECK(rump_lwproc_curlwp() == nullptr);
  CHECK(rump_sys_getpid() == 1);
  rump_lwproc_switch(p.l);
  int st = -1;
  REQUIRE(rump_sys_wait4(c.pid, &st, 0, nullptr) == c.pid);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}

TEST_CASE("exit(7) ends the process: the parent's wait4 sees 7, the thread goes on implicit",
          "[core][lwproc][wait]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  rump_lwproc_switch(c.l);
  CHECK(rump_sys_exit(7) == 0);
  CHECK(rump_lwproc_curlwp() == nullptr);
  CHECK(rump_sys_getpid() == 1);
  rump_lwproc_switch(p.l);
  int st = -1;
  REQUIRE(rump_sys_wait4(-1, &st, 0, nullptr) == c.pid);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 7);
  // exit_group likewise; status is taken modulo 256.
  Kid d = fork_kid();
  as(d.l, [] { return rump_sys_exit_group(256 + 9); });
  REQUIRE(rump_sys_wait4(d.pid, &st, 0, nullptr) == d.pid);
  CHECK(WEXITSTATUS(st) == 9);
}

TEST_CASE("exit() of a process whose parent reaps at once (init) returns cleanly",
          "[core][lwproc][wait]") {
  // Regression (found under ASan/TSan): leaving the kernel after exit()
  // must not look at the Proc, which init has already reaped.
  KernelUp up;
  Kid c = fork_kid();  // init's child
  exit_kid(c, 3);
  CHECK_ERRNO(ESRCH, rump_sys_kill(c.pid, 0));
  Kid d = fork_kid();
  as(d.l, [] { return rump_sys_exit_group(0); });
  CHECK_ERRNO(ESRCH, rump_sys_kill(d.pid, 0));
}

TEST_CASE("exit from implicit context (init) is EPERM", "[core][lwproc]") {
  KernelUp up;
  CHECK_ERRNO(EPERM, rump_sys_exit(1));
  CHECK_ERRNO(EPERM, rump_sys_exit_group(1));
  CHECK(rump_sys_getpid() == 1);
}

// ---------------------------------------------------------------- wait

TEST_CASE("wait4 with no children is ECHILD", "[core][wait]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  int st;
  CHECK_ERRNO(ECHILD, rump_sys_wait4(-1, &st, 0, nullptr));
  CHECK_ERRNO(ECHILD, rump_sys_wait4(-1, &st, WNOHANG, nullptr));
  CHECK_ERRNO(ECHILD, rump_sys_wait4(0, &st, 0, nullptr));
  CHECK_ERRNO(ECHILD, rump_sys_wait4(12345, &st, 0, nullptr));
  // Someone else's child is not ours.
  rump_lwproc_switch(nullptr);
  Kid q = fork_kid();
  rump_lwproc_switch(p.l);
  CHECK_ERRNO(ECHILD, rump_sys_wait4(q.pid, &st, WNOHANG, nullptr));
}

TEST_CASE("wait4 with bad options is EINVAL, as on the host", "[core][wait]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  fork_kid();  // a live child, so that only the options can be wrong
  for (int opt : {WEXITED, WNOWAIT, 0x100, 0x10000000, -1}) {
    INFO("options " << opt);
    RetErr host = host_child<RetErr>([opt] {
      pid_t c = fork();
      if (c == 0) {
        pause();
        _exit(0);
      }
      RetErr r = ret_err([&] { return syscall(SYS_wait4, -1, nullptr, opt, nullptr); });
      kill(c, SIGKILL);
      return r;
    });
    RetErr rump = ret_err([&] { return rump_sys_wait4(-1, nullptr, opt, nullptr); });
    CHECK(host == (RetErr{-1, EINVAL}));
    CHECK(rump == host);
  }
}

TEST_CASE("wait4 selects children by pid, -1, 0 (own group) and -pgid", "[core][wait]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c1 = fork_kid();  // in p's group
  Kid c2 = fork_kid();
  REQUIRE(as(c2.l, [] { return rump_sys_setpgid(0, 0); }) == 0);  // its own group
  int st = -1;
  // Nothing has exited yet.
  CHECK(rump_sys_wait4(-1, &st, WNOHANG, nullptr) == 0);
  CHECK(rump_sys_wait4(0, &st, WNOHANG, nullptr) == 0);
  CHECK(rump_sys_wait4(-c2.pid, &st, WNOHANG, nullptr) == 0);
  CHECK(rump_sys_wait4(c1.pid, &st, WNOHANG, nullptr) == 0);

  exit_kid(c1, 3);
  // c1 is not in c2's group.
  CHECK(rump_sys_wait4(-c2.pid, &st, WNOHANG, nullptr) == 0);
  CHECK(rump_sys_wait4(c2.pid, &st, WNOHANG, nullptr) == 0);
  REQUIRE(rump_sys_wait4(0, &st, 0, nullptr) == c1.pid);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 3);
  // c2 is the only child left and is not in p's group.
  CHECK_ERRNO(ECHILD, rump_sys_wait4(0, &st, WNOHANG, nullptr));

  exit_kid(c2, 4);
  REQUIRE(rump_sys_wait4(-c2.pid, &st, 0, nullptr) == c2.pid);
  CHECK(WEXITSTATUS(st) == 4);
  CHECK_ERRNO(ECHILD, rump_sys_wait4(-1, &st, 0, nullptr));

  // A specific pid is reaped even when another zombie came first.
  Kid c3 = fork_kid();
  Kid c4 = fork_kid();
  exit_kid(c3, 33);
  exit_kid(c4, 44);
  REQUIRE(rump_sys_wait4(c4.pid, &st, 0, nullptr) == c4.pid);
  CHECK(WEXITSTATUS(st) == 44);
  REQUIRE(rump_sys_wait4(-1, &st, 0, nullptr) == c3.pid);
  CHECK(WEXITSTATUS(st) == 33);
  // NULL status and a zeroed rusage are fine.
  Kid c5 = fork_kid();
  exit_kid(c5, 1);
  struct rusage ru;
  std::memset(&ru, 0xff, sizeof ru);
  REQUIRE(rump_sys_wait4(c5.pid, nullptr, 0, &ru) == c5.pid);
  CHECK(ru.ru_utime.tv_sec == 0);
}

TEST_CASE("a blocking wait4 returns when another thread's child exits", "[core][wait][concurrency]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  std::thread t([&] {
    rump_kernel_set_current(up.k);
    usleep(20 * 1000);
    rump_lwproc_switch(c.l);
    rump_sys_exit(5);
  });
  int st = -1;
  pid_t r = rump_sys_wait4(-1, &st, 0, nullptr);
  t.join();
  CHECK(r == c.pid);
  CHECK(WEXITSTATUS(st) == 5);
}

TEST_CASE("waitid P_PID/P_ALL/P_PGID with WEXITED fills siginfo", "[core][wait]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  REQUIRE(rump_sys_setuid(0) == 0);

  Kid c = fork_kid();
  siginfo_t si;
  std::memset(&si, 0xff, sizeof si);
  // Nothing yet with WNOHANG: 0 and si_pid 0.
  REQUIRE(rump_sys_waitid(P_PID, c.pid, &si, WEXITED | WNOHANG, nullptr) == 0);
  CHECK(si.si_pid == 0);
  exit_kid(c, 42);
  std::memset(&si, 0, sizeof si);
  REQUIRE(rump_sys_waitid(P_PID, c.pid, &si, WEXITED, nullptr) == 0);
  CHECK(si.si_signo == SIGCHLD);
  CHECK(si.si_pid == c.pid);
  CHECK(si.si_code == CLD_EXITED);
  CHECK(si.si_status == 42);
  CHECK(si.si_uid == 0);

  Kid d = fork_kid();
  REQUIRE(as(d.l, [] { return rump_sys_setuid(77); }) == 0);
  exit_kid(d, 1);
  REQUIRE(rump_sys_waitid(P_ALL, 0, &si, WEXITED, nullptr) == 0);
  CHECK(si.si_pid == d.pid);
  CHECK(si.si_uid == 77);

  Kid e = fork_kid();
  REQUIRE(as(e.l, [] { return rump_sys_setpgid(0, 0); }) == 0);
  Kid f = fork_kid();  // in p's group
  exit_kid(e, 2);
  exit_kid(f, 3);
  REQUIRE(rump_sys_waitid(P_PGID, e.pid, &si, WEXITED, nullptr) == 0);
  CHECK(si.si_pid == e.pid);
  CHECK(si.si_status == 2);
  REQUIRE(rump_sys_waitid(P_PGID, 0, &si, WEXITED, nullptr) == 0);  // own group
  CHECK(si.si_pid == f.pid);
  CHECK(si.si_status == 3);
  CHECK_ERRNO(ECHILD, rump_sys_waitid(P_ALL, 0, &si, WEXITED, nullptr));
}

TEST_CASE("waitid with WNOWAIT leaves the zombie for a later wait", "[core][wait]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  exit_kid(c, 9);
  siginfo_t si;
  for (int i = 0; i < 2; i++) {
    std::memset(&si, 0, sizeof si);
    REQUIRE(rump_sys_waitid(P_PID, c.pid, &si, WEXITED | WNOWAIT, nullptr) == 0);
    CHECK(si.si_pid == c.pid);
    CHECK(si.si_status == 9);
  }
  int st = -1;
  REQUIRE(rump_sys_wait4(c.pid, &st, 0, nullptr) == c.pid);
  CHECK(WEXITSTATUS(st) == 9);
  CHECK_ERRNO(ECHILD, rump_sys_waitid(P_PID, c.pid, &si, WEXITED, nullptr));
}

TEST_CASE("waitid reports a killed child as CLD_KILLED with the signal", "[core][wait]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  REQUIRE(rump_sys_kill(c.pid, SIGTERM) == 0);
  siginfo_t si;
  std::memset(&si, 0, sizeof si);
  REQUIRE(rump_sys_waitid(P_PID, c.pid, &si, WEXITED, nullptr) == 0);
  CHECK(si.si_pid == c.pid);
  CHECK(si.si_code == CLD_KILLED);
  CHECK(si.si_status == SIGTERM);
}

TEST_CASE("waitid argument errors match the host", "[core][wait]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  fork_kid();  // a live child
  struct Case {
    int idtype;
    long id;
    int options;
  };
  const Case cases[] = {
      {P_ALL, 0, WNOHANG},              // none of WEXITED|WSTOPPED|WCONTINUED
      {P_ALL, 0, 0},                    //
      {P_ALL, 0, WEXITED | 0x100},      // unknown option bit
      {7, 0, WEXITED | WNOHANG},        // unknown idtype
      {P_PID, 0, WEXITED | WNOHANG},    // pid 0
      {P_PID, -3, WEXITED | WNOHANG},   // negative pid
      {P_PGID, -3, WEXITED | WNOHANG},  // negative pgid
      {P_PID, 99999, WEXITED | WNOHANG},
  };
  for (const Case& k : cases) {
    INFO("idtype " << k.idtype << " id " << k.id << " options " << k.options);
    RetErr host = host_child<RetErr>([k] {
      pid_t c = fork();
      if (c == 0) {
        pause();
        _exit(0);
      }
      siginfo_t si;
      RetErr r = ret_err([&] { return syscall(SYS_waitid, k.idtype, k.id, &si, k.options, nullptr); });
      kill(c, SIGKILL);
      return r;
    });
    siginfo_t si;
    RetErr rump = ret_err([&] { return rump_sys_waitid(k.idtype, k.id, &si, k.options, nullptr); });
    CHECK(rump == host);
  }
}

TEST_CASE("orphans are reparented to init", "[core][wait]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  rump_lwproc_switch(c.l);
  Kid g = fork_kid();
  rump_lwproc_switch(p.l);  // (not as c: c's LWP goes with it)
  CHECK(as(g.l, [] { return rump_sys_getppid(); }) == c.pid);
  exit_kid(c, 0);
  CHECK(as(g.l, [] { return rump_sys_getppid(); }) == 1);
  // c is p's zombie; g is not p's child.
  rump_lwproc_switch(p.l);
  int st;
  CHECK_ERRNO(ECHILD, rump_sys_wait4(g.pid, &st, WNOHANG, nullptr));
  REQUIRE(rump_sys_wait4(-1, &st, 0, nullptr) == c.pid);
  // An orphan that exits is reaped by init at once.
  release_kid(g);
  rump_lwproc_switch(nullptr);
  CHECK_ERRNO(ESRCH, rump_sys_kill(g.pid, 0));
  CHECK_ERRNO(ESRCH, rump_sys_getpgid(g.pid));
}

TEST_CASE("RUMP_RFNOWAIT makes the child init's", "[core][lwproc]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid(RUMP_RFNOWAIT);
  CHECK(as(c.l, [] { return rump_sys_getppid(); }) == 1);
  CHECK_ERRNO(ECHILD, rump_sys_wait4(-1, nullptr, WNOHANG, nullptr));
}

// ---------------------------------------------------------------- limits

TEST_CASE("kern.maxproc from rump_boot_config.maxproc limits rfork with EAGAIN", "[core][limits]") {
  const int maxproc = 12;
  KernelUp up({.ncpu = 1, .maxproc = maxproc});
  std::vector<Kid> kids;
  int e = 0;
  for (int i = 0; i < 100; i++) {
    e = rump_lwproc_rfork(RUMP_RFFDG);
    if (e != 0) break;
    kids.push_back({rump_sys_getpid(), rump_lwproc_curlwp()});
    rump_lwproc_switch(nullptr);
  }
  CHECK(e == EAGAIN);
  // init (and the kernel's own process 0) count as processes.
  CHECK(static_cast<int>(kids.size()) <= maxproc - 1);
  CHECK(static_cast<int>(kids.size()) >= maxproc - 2);
  CHECK(rump_lwproc_curlwp() == nullptr);
  // One gone: room for one more.
  release_kid(kids.back());
  kids.pop_back();
  CHECK(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  rump_lwproc_switch(nullptr);
  CHECK(rump_lwproc_rfork(RUMP_RFFDG) == EAGAIN);
}

TEST_CASE("RLIMIT_NPROC limits a non-root uid with EAGAIN; root is exempt", "[core][limits]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  struct rlimit rl = {2, 2};
  REQUIRE(rump_sys_setrlimit(RLIMIT_NPROC, &rl) == 0);
  // Root: exempt.
  Kid r1 = fork_kid();
  Kid r2 = fork_kid();
  Kid r3 = fork_kid();
  (void)r1, (void)r2, (void)r3;
  REQUIRE(rump_sys_setuid(1000) == 0);
  Kid c = fork_kid();  // uid 1000 has p and c now
  CHECK(rump_lwproc_rfork(RUMP_RFFDG) == EAGAIN);
  CHECK(rump_lwproc_curlwp() == p.l);
  rump_lwproc_switch(c.l);
  CHECK(rump_lwproc_rfork(RUMP_RFFDG) == EAGAIN);
  CHECK(rump_lwproc_curlwp() == c.l);
  // Another uid is not limited by uid 1000's processes.
  rump_lwproc_switch(r1.l);
  REQUIRE(rump_sys_setrlimit(RLIMIT_NPROC, &rl) == 0);
  REQUIRE(rump_sys_setuid(2000) == 0);
  CHECK(rump_lwproc_rfork(RUMP_RFFDG) == 0);
}

// ---------------------------------------------------------------- pids

TEST_CASE("pids wrap at pid_max to 300 and run out with EAGAIN", "[core][pid]") {
  KernelUp up({.ncpu = 1, .pid_max = 400});
  std::vector<pid_t> seen;
  for (int i = 0; i < 700; i++) {
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    seen.push_back(rump_sys_getpid());
    rump_lwproc_releaselwp();
  }
  int wraps = 0;
  for (size_t i = 0; i < seen.size(); i++) {
    INFO("allocation " << i << " pid " << seen[i]);
    REQUIRE(seen[i] > 1);
    REQUIRE(seen[i] < 400);
    if (i > 0 && seen[i] < seen[i - 1]) {
      wraps++;
      CHECK(seen[i - 1] == 399);
      CHECK(seen[i] == 300);
    }
    if (wraps > 0) CHECK(seen[i] >= 300);
  }
  CHECK(wraps >= 2);

  // Keep processes alive until no pid is left.
  std::vector<Kid> alive;
  int e = 0;
  for (int i = 0; i < 500; i++) {
    e = rump_lwproc_rfork(RUMP_RFFDG);
    if (e != 0) break;
    alive.push_back({rump_sys_getpid(), rump_lwproc_curlwp()});
    rump_lwproc_switch(nullptr);
  }
  REQUIRE(e == EAGAIN);
  CHECK(alive.size() <= 100);
  std::set<pid_t> distinct;
  for (const Kid& k : alive) distinct.insert(k.pid);
  CHECK(distinct.size() == alive.size());
  // Free one: the next process gets exactly that pid.
  Kid freed = alive[alive.size() / 2];
  release_kid(freed);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  CHECK(rump_sys_getpid() == freed.pid);
  rump_lwproc_switch(nullptr);
  CHECK(rump_lwproc_rfork(RUMP_RFFDG) == EAGAIN);
}

TEST_CASE("a pid still used as a process group id is not reused", "[core][pid]") {
  KernelUp up({.ncpu = 1, .pid_max = 400});
  // Get past the first pass so that the leader's pid is in the wrap range.
  Kid leader{};
  for (int i = 0; i < 400; i++) {
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    pid_t p = rump_sys_getpid();
    if (p >= 300) {
      leader = {p, rump_lwproc_curlwp()};
      rump_lwproc_switch(nullptr);
      break;
    }
    rump_lwproc_releaselwp();
  }
  REQUIRE(leader.pid >= 300);
  rump_lwproc_switch(leader.l);
  REQUIRE(rump_sys_setpgid(0, 0) == 0);
  Kid member = fork_kid();
  rump_lwproc_switch(nullptr);
  release_kid(leader);  // init reaps it; its pid lives on as member's pgid
  CHECK(as(member.l, [] { return rump_sys_getpgrp(); }) == leader.pid);
  CHECK(as(member.l, [] { return rump_sys_getppid(); }) == 1);

  for (int i = 0; i < 300; i++) {
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    pid_t p = rump_sys_getpid();
    INFO("allocation " << i);
    REQUIRE(p != leader.pid);
    rump_lwproc_releaselwp();
  }
  // Same for a session id whose leader has gone.
  rump_lwproc_switch(member.l);
  pid_t sid = rump_sys_setsid();
  REQUIRE(sid == member.pid);
  Kid smember = fork_kid();
  rump_lwproc_switch(nullptr);
  release_kid(member);
  CHECK(as(smember.l, [] { return rump_sys_getsid(0); }) == sid);
  for (int i = 0; i < 300; i++) {
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    pid_t p = rump_sys_getpid();
    INFO("allocation " << i);
    REQUIRE(p != sid);  // (leader.pid is free again: setsid left its group)
    rump_lwproc_releaselwp();
  }
  // Once the group and session are gone, the ids come back.
  release_kid(smember);
  bool leader_back = false, sid_back = false;
  for (int i = 0; i < 300; i++) {
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    pid_t p = rump_sys_getpid();
    leader_back |= p == leader.pid;
    sid_back |= p == sid;
    rump_lwproc_releaselwp();
  }
  CHECK(leader_back);
  CHECK(sid_back);
}

// ---------------------------------------------------------------- groups, sessions

TEST_CASE("getpgid, getpgrp and getsid report groups and sessions", "[core][pgrp]") {
  KernelUp up;
  CHECK(rump_sys_getpgrp() == 1);
  CHECK(rump_sys_getsid(0) == 1);
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  CHECK(rump_sys_getpgrp() == 1);  // inherited from init
  CHECK(rump_sys_getpgid(0) == 1);
  CHECK(rump_sys_getpgid(p.pid) == 1);
  CHECK(rump_sys_getsid(0) == 1);
  CHECK(rump_sys_getsid(1) == 1);
  CHECK_ERRNO(ESRCH, rump_sys_getpgid(99999));
  CHECK_ERRNO(ESRCH, rump_sys_getsid(99999));
  CHECK_ERRNO(ESRCH, rump_sys_getpgid(-1));
  CHECK_ERRNO(ESRCH, rump_sys_getsid(-1));
}

TEST_CASE("setsid makes a new session and group; a group leader gets EPERM", "[core][pgrp]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  REQUIRE(rump_sys_setsid() == p.pid);
  CHECK(rump_sys_getsid(0) == p.pid);
  CHECK(rump_sys_getpgrp() == p.pid);
  CHECK_ERRNO(EPERM, rump_sys_setsid());       // already a leader
  CHECK_ERRNO(EPERM, rump_sys_setpgid(0, 0));  // a session leader can't move
  // A child inherits both and may start its own session.
  Kid c = fork_kid();
  rump_lwproc_switch(c.l);
  CHECK(rump_sys_getsid(0) == p.pid);
  CHECK(rump_sys_getpgrp() == p.pid);
  REQUIRE(rump_sys_setsid() == c.pid);
  // A process group leader (not session leader) can't setsid.
  rump_lwproc_switch(nullptr);
  Kid q = fork_kid();
  rump_lwproc_switch(q.l);
  REQUIRE(rump_sys_setpgid(0, 0) == 0);
  CHECK(rump_sys_getpgrp() == q.pid);
  CHECK_ERRNO(EPERM, rump_sys_setsid());
  // Init leads session 1.
  rump_lwproc_switch(nullptr);
  CHECK_ERRNO(EPERM, rump_sys_setsid());
}

TEST_CASE("setpgid rules: EINVAL, ESRCH, EPERM as Linux", "[core][pgrp]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  Kid d = fork_kid();
  CHECK_ERRNO(EINVAL, rump_sys_setpgid(0, -1));
  CHECK_ERRNO(EINVAL, rump_sys_setpgid(c.pid, -7));
  CHECK_ERRNO(ESRCH, rump_sys_setpgid(99999, 0));
  // Not our child: ESRCH.
  rump_lwproc_switch(nullptr);
  Kid stranger = fork_kid();
  rump_lwproc_switch(p.l);
  CHECK_ERRNO(ESRCH, rump_sys_setpgid(stranger.pid, 0));
  // A group that doesn't exist: EPERM.
  CHECK_ERRNO(EPERM, rump_sys_setpgid(0, 99999));
  // Parent moves a child into a new group, then another child into it.
  REQUIRE(rump_sys_setpgid(c.pid, 0) == 0);
  CHECK(rump_sys_getpgid(c.pid) == c.pid);
  REQUIRE(rump_sys_setpgid(d.pid, c.pid) == 0);
  CHECK(rump_sys_getpgid(d.pid) == c.pid);
  REQUIRE(rump_sys_setpgid(d.pid, d.pid) == 0);
  CHECK(rump_sys_getpgid(d.pid) == d.pid);
  // A group in another session: EPERM.
  Kid s = fork_kid();
  REQUIRE(as(s.l, [] { return rump_sys_setsid(); }) == s.pid);
  CHECK_ERRNO(EPERM, rump_sys_setpgid(0, s.pid));
  CHECK_ERRNO(EPERM, rump_sys_setpgid(s.pid, 0));  // child in another session
  CHECK_ERRNO(EPERM, rump_sys_setpgid(c.pid, s.pid));
  // From the other session, p's groups are out of reach too.
  CHECK(as(s.l, [&] { return ret_err([&] { return rump_sys_setpgid(0, c.pid); }); }) ==
        (RetErr{-1, EPERM}));
  // A zombie child: ESRCH (Linux: the task is gone from the pid lookup).
  exit_kid(c, 0);
  CHECK_ERRNO(ESRCH, rump_sys_setpgid(c.pid, 0));
}

TEST_CASE("setpgid and getpgid argument errors match the host", "[core][pgrp]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  struct Case {
    pid_t pid, pgid;
  };
  const Case cases[] = {{-5, 0}, {0, -1}, {99999, 0}, {INT_MIN, 0}, {99999, -1}};
  for (const Case& k : cases) {
    INFO("setpgid(" << k.pid << ", " << k.pgid << ")");
    RetErr host = host_child<RetErr>([k] { return ret_err([&] { return syscall(SYS_setpgid, k.pid, k.pgid); }); });
    RetErr rump = ret_err([&] { return rump_sys_setpgid(k.pid, k.pgid); });
    CHECK(rump == host);
  }
  for (pid_t pid : {-1, 99999, INT_MIN}) {
    INFO("getpgid/getsid(" << pid << ")");
    RetErr host = host_child<RetErr>([pid] { return ret_err([&] { return syscall(SYS_getpgid, pid); }); });
    CHECK(ret_err([&] { return rump_sys_getpgid(pid); }) == host);
    host = host_child<RetErr>([pid] { return ret_err([&] { return syscall(SYS_getsid, pid); }); });
    CHECK(ret_err([&] { return rump_sys_getsid(pid); }) == host);
  }
}

TEST_CASE("setpgid with a negative pid and a valid pgid is ESRCH, as on the host",
          "[core][pgrp]") {
  // Linux only checks the pgid's sign (after pgid 0 became pid) and then
  // looks the pid up: setpgid(-5, 3) is ESRCH there.
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  RetErr host = host_child<RetErr>([] { return ret_err([] { return syscall(SYS_setpgid, -5, 3); }); });
  CHECK(host == (RetErr{-1, ESRCH}));
  CHECK(ret_err([] { return rump_sys_setpgid(-5, 3); }) == host);
}

// ---------------------------------------------------------------- umask, rlimits

TEST_CASE("umask returns the old mask; children inherit it", "[core][umask]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  CHECK(rump_sys_umask(077) == 022);
  CHECK(rump_sys_umask(027) == 077);
  Kid c = fork_kid();
  CHECK(as(c.l, [] { return rump_sys_umask(0); }) == 027);
  CHECK(as(c.l, [] { return rump_sys_umask(0); }) == 0);
  CHECK(rump_sys_umask(027) == 027);  // the parent's is its own
  // Only the permission bits are kept, as on the host.
  mode_t host = host_child<mode_t>([] {
    syscall(SYS_umask, 07777);
    return static_cast<mode_t>(syscall(SYS_umask, 022));
  });
  rump_sys_umask(07777);
  CHECK(rump_sys_umask(022) == host);
  CHECK(host == 0777);
}

TEST_CASE("getrlimit/setrlimit: EINVAL for cur > max and bad resources, EPERM raising max",
          "[core][rlimit]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  struct rlimit rl;
  REQUIRE(rump_sys_getrlimit(RLIMIT_CORE, &rl) == 0);
  rl = {10, 5};
  CHECK_ERRNO(EINVAL, rump_sys_setrlimit(RLIMIT_CORE, &rl));
  for (int res : {-1, static_cast<int>(RLIM_NLIMITS), 1000, INT_MAX}) {
    INFO("resource " << res);
    CHECK_ERRNO(EINVAL, rump_sys_getrlimit(res, &rl));
    rl = {1, 1};
    CHECK_ERRNO(EINVAL, rump_sys_setrlimit(res, &rl));
    CHECK_ERRNO(EINVAL, rump_sys_prlimit64(0, res, nullptr, &rl));
  }
  rl = {100, 200};
  REQUIRE(rump_sys_setrlimit(RLIMIT_CORE, &rl) == 0);
  struct rlimit got;
  REQUIRE(rump_sys_getrlimit(RLIMIT_CORE, &got) == 0);
  CHECK(got.rlim_cur == 100);
  CHECK(got.rlim_max == 200);
  // Root may raise the hard limit.
  rl = {100, 300};
  REQUIRE(rump_sys_setrlimit(RLIMIT_CORE, &rl) == 0);
  // Non-root: may lower, may raise cur up to max, may not raise max.
  REQUIRE(rump_sys_setuid(1000) == 0);
  rl = {100, 400};
  CHECK_ERRNO(EPERM, rump_sys_setrlimit(RLIMIT_CORE, &rl));
  rl = {50, 150};
  CHECK(rump_sys_setrlimit(RLIMIT_CORE, &rl) == 0);
  rl = {150, 150};
  CHECK(rump_sys_setrlimit(RLIMIT_CORE, &rl) == 0);
  rl = {150, 151};
  CHECK_ERRNO(EPERM, rump_sys_setrlimit(RLIMIT_CORE, &rl));
  REQUIRE(rump_sys_getrlimit(RLIMIT_CORE, &got) == 0);
  CHECK(got.rlim_cur == 150);
  CHECK(got.rlim_max == 150);
  // Children inherit limits.
  Kid c = fork_kid();
  struct rlimit cg {};
  REQUIRE(as(c.l, [&] { return rump_sys_getrlimit(RLIMIT_CORE, &cg); }) == 0);
  CHECK(cg.rlim_max == 150);
}

TEST_CASE("prlimit64 reads and sets another process's limits", "[core][rlimit]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  struct rlimit nl = {7, 8}, ol{};
  REQUIRE(rump_sys_prlimit64(c.pid, RLIMIT_CORE, &nl, &ol) == 0);
  CHECK(ol.rlim_cur == RLIM_INFINITY);
  struct rlimit seen{};
  REQUIRE(as(c.l, [&] { return rump_sys_getrlimit(RLIMIT_CORE, &seen); }) == 0);
  CHECK(seen.rlim_cur == 7);
  CHECK(seen.rlim_max == 8);
  REQUIRE(rump_sys_prlimit64(c.pid, RLIMIT_CORE, nullptr, &ol) == 0);
  CHECK(ol.rlim_max == 8);
  // pid 0 is the caller.
  REQUIRE(rump_sys_prlimit64(0, RLIMIT_CORE, nullptr, &ol) == 0);
  CHECK(ol.rlim_cur == RLIM_INFINITY);
  CHECK_ERRNO(ESRCH, rump_sys_prlimit64(99999, RLIMIT_CORE, nullptr, &ol));
  nl = {9, 8};
  CHECK_ERRNO(EINVAL, rump_sys_prlimit64(c.pid, RLIMIT_CORE, &nl, nullptr));
  // A non-root caller may not touch a process with other ids.
  Kid u = fork_kid();
  REQUIRE(as(u.l, [] { return rump_sys_setuid(1000); }) == 0);
  CHECK(as(u.l, [&] { return ret_err([&] { return rump_sys_prlimit64(c.pid, RLIMIT_CORE, nullptr, &ol); }); }) ==
        (RetErr{-1, EPERM}));
  // ... but may touch one with all the same ids.
  Kid u2 = fork_kid();
  REQUIRE(as(u2.l, [] { return rump_sys_setuid(1000); }) == 0);
  CHECK(as(u.l, [&] { return rump_sys_prlimit64(u2.pid, RLIMIT_CORE, nullptr, &ol); }) == 0);
}

TEST_CASE("prlimit64 with a negative pid is ESRCH, as on the host", "[core][rlimit]") {
  // Linux looks the pid up (find_task_by_vpid) and answers ESRCH.
  KernelUp up;
  struct rlimit ol;
  RetErr host = host_child<RetErr>([] {
    struct rlimit o;
    return ret_err([&] { return syscall(SYS_prlimit64, -1, RLIMIT_CORE, nullptr, &o); });
  });
  CHECK(host == (RetErr{-1, ESRCH}));
  CHECK(ret_err([&] { return rump_sys_prlimit64(-1, RLIMIT_CORE, nullptr, &ol); }) == host);
}

// ---------------------------------------------------------------- syscall entry

TEST_CASE("rump_syscall: out-of-range and unimplemented numbers are -ENOSYS", "[core][syscall]") {
  KernelUp up;
  long args[6] = {};
  for (long nr : {-1L, -1000L, 1024L, 100000L, LONG_MAX, LONG_MIN}) {
    INFO("nr " << nr);
    CHECK(rump_syscall(nr, args) == -ENOSYS);
  }
  // Numbers inside the table with no handler in the kernel core.
  for (long nr : {long{SYS_ptrace}, long{SYS_io_setup}, 999L, 1002L, 1023L}) {
    INFO("nr " << nr);
    CHECK(rump_syscall_name(nr) == nullptr);
    CHECK(rump_syscall(nr, args) == -ENOSYS);
  }
  // The raw entry returns the result or -errno; NULL args are zeros.
  CHECK(rump_syscall(SYS_getpid, args) == 1);
  CHECK(rump_syscall(SYS_getpid, nullptr) == 1);
  long bad[6] = {0, -1};  // setpgid(0, -1)
  CHECK(rump_syscall(SYS_setpgid, bad) == -EINVAL);
}

TEST_CASE("rump_syscall_name names the syscalls", "[core][syscall]") {
  CHECK(std::string(rump_syscall_name(SYS_getpid)) == "getpid");
  CHECK(std::string(rump_syscall_name(SYS_wait4)) == "wait4");
  CHECK(std::string(rump_syscall_name(SYS_rt_sigaction)) == "rt_sigaction");
  CHECK(std::string(rump_syscall_name(RUMP_SYS_sysctlbyname)) == "sysctlbyname");
  CHECK(rump_syscall_name(-1) == nullptr);
  CHECK(rump_syscall_name(1024) == nullptr);
  CHECK(rump_syscall_name(LONG_MAX) == nullptr);
}

namespace {
struct TraceRec {
  long nr;
  long args[6];
  long result;
};
void record(void* arg, long nr, const long a[6], long result) {
  auto* v = static_cast<std::vector<TraceRec>*>(arg);
  TraceRec r{nr, {}, result};
  std::memcpy(r.args, a, sizeof r.args);
  v->push_back(r);
}
}  // namespace

TEST_CASE("the tracing hook sees number, arguments and result", "[core][syscall]") {
  KernelUp up;
  std::vector<TraceRec> log;
  REQUIRE(rump_kernel_set_trace(up.k, record, &log) == 0);
  rump_sys_umask(0123);
  rump_sys_setpgid(0, -1);
  long args[6] = {1, 2, 3, 4, 5, 6};
  rump_syscall(100000, args);
  REQUIRE(log.size() == 3);
  CHECK(log[0].nr == SYS_umask);
  CHECK(log[0].args[0] == 0123);
  CHECK(log[0].result == 022);
  CHECK(log[1].nr == SYS_setpgid);
  CHECK(log[1].args[0] == 0);
  CHECK(log[1].args[1] == -1);
  CHECK(log[1].result == -EINVAL);
  CHECK(log[2].nr == 100000);
  CHECK(log[2].args[5] == 6);
  CHECK(log[2].result == -ENOSYS);
  // Off again; another kernel's calls are never seen.
  REQUIRE(rump_kernel_set_trace(up.k, nullptr, nullptr) == 0);
  rump_sys_getpid();
  CHECK(log.size() == 3);
  REQUIRE(rump_kernel_set_trace(up.k, record, &log) == 0);
  {
    rump_kernel* other = nullptr;
    REQUIRE(rump_kernel_boot(nullptr, &other) == 0);
    REQUIRE(rump_kernel_set_current(other) == 0);
    rump_sys_getpid();
    REQUIRE(rump_kernel_set_current(up.k) == 0);
    REQUIRE(rump_kernel_halt(other) == 0);
  }
  CHECK(log.size() == 3);
  rump_kernel_set_trace(up.k, nullptr, nullptr);
}

TEST_CASE("rump_msgbuf_read contains the boot message and truncates safely", "[core][msgbuf]") {
  KernelUp up;
  std::string s = msgbuf();
  CHECK(s.find("booting") != std::string::npos);
  CHECK(s.find("ready") != std::string::npos);
  size_t n = rump_msgbuf_read(nullptr, 0);
  CHECK(n == s.size());
  char small[8];
  std::memset(small, 'z', sizeof small);
  CHECK(rump_msgbuf_read(small, sizeof small) == n);
  CHECK(small[7] == '\0');
  CHECK(std::string(small) == s.substr(0, 7));
  char one[1] = {'z'};
  rump_msgbuf_read(one, 1);
  CHECK(one[0] == '\0');
}

// ---------------------------------------------------------------- bad pointers

TEST_CASE("bad user pointers are EFAULT, never a crash", "[core][efault]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  void* const bad[] = {nullptr,
                       reinterpret_cast<void*>(uintptr_t{8}),
                       reinterpret_cast<void*>(uintptr_t{4095}),
                       reinterpret_cast<void*>(~uintptr_t{0}),
                       reinterpret_cast<void*>(~uintptr_t{0} - 4096),
                       reinterpret_cast<void*>(uintptr_t{1} << 47),
                       reinterpret_cast<void*>((uintptr_t{1} << 47) - 2)};
  uid_t u1, u2, u3;
  for (void* b : bad) {
    INFO("pointer " << b);
    auto* ub = static_cast<uid_t*>(b);
    CHECK_ERRNO(EFAULT, rump_sys_getresuid(ub, &u2, &u3));
    CHECK_ERRNO(EFAULT, rump_sys_getresuid(&u1, ub, &u3));
    CHECK_ERRNO(EFAULT, rump_sys_getresuid(&u1, &u2, ub));
    CHECK_ERRNO(EFAULT, rump_sys_getresgid(ub, &u2, &u3));
    CHECK_ERRNO(EFAULT, rump_sys_getrlimit(RLIMIT_CORE, static_cast<struct rlimit*>(b)));
    CHECK_ERRNO(EFAULT, rump_sys_setrlimit(RLIMIT_CORE, static_cast<struct rlimit*>(b)));
    struct rlimit rl;
    CHECK_ERRNO(EFAULT, rump_sys_uname(static_cast<struct utsname*>(b)));
    CHECK_ERRNO(EFAULT, rump_sys_rt_sigpending(static_cast<sigset_t*>(b), 8));
    if (b != nullptr) {  // NULL means "none" for these
      CHECK_ERRNO(EFAULT, rump_sys_prlimit64(0, RLIMIT_CORE, nullptr, static_cast<struct rlimit*>(b)));
      CHECK_ERRNO(EFAULT, rump_sys_rt_sigaction(SIGUSR1, nullptr, b, 8));
      CHECK_ERRNO(EFAULT, rump_sys_rt_sigprocmask(SIG_BLOCK, nullptr, static_cast<sigset_t*>(b), 8));
      CHECK_ERRNO(EFAULT, rump_sys_prlimit64(0, RLIMIT_CORE, static_cast<struct rlimit*>(b), &rl));
      CHECK_ERRNO(EFAULT, rump_sys_rt_sigaction(SIGUSR1, b, nullptr, 8));
      CHECK_ERRNO(EFAULT, rump_sys_rt_sigprocmask(SIG_BLOCK, static_cast<sigset_t*>(b), nullptr, 8));
    }
    // setgroups as root reads the list.
    CHECK_ERRNO(EFAULT, rump_sys_setgroups(2, static_cast<gid_t*>(b)));
    // wait4 and waitid write status only when a child is there.
    Kid c = fork_kid();
    exit_kid(c, 1);
    if (b != nullptr) {  // NULL status is "don't report"
      CHECK_ERRNO(EFAULT, rump_sys_wait4(c.pid, static_cast<int*>(b), 0, nullptr));
    } else {
      CHECK(rump_sys_wait4(c.pid, nullptr, 0, nullptr) == c.pid);
    }
    CHECK_ERRNO(ECHILD, rump_sys_wait4(-1, nullptr, WNOHANG, nullptr));
    Kid d = fork_kid();
    exit_kid(d, 1);
    if (b != nullptr) {
      CHECK_ERRNO(EFAULT, rump_sys_waitid(P_PID, d.pid, static_cast<siginfo_t*>(b), WEXITED, nullptr));
    } else {
      CHECK(rump_sys_waitid(P_PID, d.pid, nullptr, WEXITED, nullptr) == 0);
    }
    rump_sys_wait4(-1, nullptr, WNOHANG, nullptr);
  }
  // getgroups with room for the list but a bad buffer.
  gid_t g[2] = {5, 6};
  REQUIRE(rump_sys_setgroups(2, g) == 0);
  CHECK_ERRNO(EFAULT, rump_sys_getgroups(2, reinterpret_cast<gid_t*>(uintptr_t{8})));
  // rump_copyin/copyout report EFAULT as an errno.
  int x = 0;
  CHECK(rump_copyin(reinterpret_cast<void*>(uintptr_t{8}), &x, sizeof x) == EFAULT);
  CHECK(rump_copyout(&x, reinterpret_cast<void*>(~uintptr_t{0} - 2), sizeof x) == EFAULT);
  int y = 42;
  CHECK(rump_copyin(&y, &x, sizeof x) == 0);
  CHECK(x == 42);
  // The process survived all that.
  CHECK(rump_sys_getpid() == p.pid);
}
