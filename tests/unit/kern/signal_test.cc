// Signals: kill permissions and targets, fatal/ignored/caught dispositions,
// rt_sigaction (kernel layout), rt_sigprocmask, pending blocked signals,
// SIGCHLD auto-reaping, and EINTR for an LWP sleeping in wait4.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <unistd.h>

#include "rump_test.h"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <thread>

namespace {

using rump_test::as;
using rump_test::fork_kid;
using rump_test::Kid;

using rump_test::KernelUp;
using rump_test::kDfl;
using rump_test::kHandler;
using rump_test::kIgn;
using rump_test::KSigaction;
using rump_test::set_action;
using rump_test::set_mask;
constexpr uint64_t bit(int sig) { return rump_test::sig_bit(sig); }
// Wait status of child pid of the calling process (blocking).
int reap(pid_t pid) {
  int st = -1;
  pid_t r = rump_sys_wait4(pid, &st, 0, nullptr);
  REQUIRE(r == pid);
  return st;
}
bool alive(pid_t pid) { return rump_sys_kill(pid, 0) == 0; }

}  // namespace

TEST_CASE("kill permission: uid 1000 can't signal root's process, can signal its own", "[signal]") {
  KernelUp up;
  Kid root = fork_kid();
  Kid a = fork_kid();
  Kid b = fork_kid();
  REQUIRE(as(a.l, [] { return rump_sys_setuid(1000); }) == 0);
  REQUIRE(as(b.l, [] { return rump_sys_setuid(1000); }) == 0);
  rump_lwproc_switch(a.l);
  CHECK_ERRNO(EPERM, rump_sys_kill(root.pid, 0));
  CHECK_ERRNO(EPERM, rump_sys_kill(root.pid, SIGTERM));
  CHECK_ERRNO(EPERM, rump_sys_kill(1, SIGTERM));
  CHECK(rump_sys_kill(b.pid, 0) == 0);
  rump_lwproc_switch(nullptr);
  CHECK(alive(root.pid));
  CHECK(alive(b.pid));
  // Same uid: allowed, and b (no LWP in the kernel) dies at once.
  rump_lwproc_switch(a.l);
  CHECK(rump_sys_kill(b.pid, SIGTERM) == 0);
  rump_lwproc_switch(nullptr);
  CHECK_ERRNO(ESRCH, rump_sys_kill(b.pid, 0));  // init reaped it
  // Root may signal anyone.
  CHECK(rump_sys_kill(a.pid, SIGKILL) == 0);
  CHECK_ERRNO(ESRCH, rump_sys_kill(a.pid, 0));
  CHECK(alive(root.pid));
}

TEST_CASE("a saved uid equal to the target's lets a non-root process signal it", "[signal]") {
  KernelUp up;
  Kid t = fork_kid();
  REQUIRE(as(t.l, [] { return rump_sys_setresuid(2000, 2000, 2000); }) == 0);
  Kid s = fork_kid();
  // Real 1000, effective 3000: matches neither the target's real nor saved uid.
  REQUIRE(as(s.l, [] { return rump_sys_setresuid(1000, 3000, 2000); }) == 0);
  CHECK(as(s.l, [&] { return rump_sys_kill(t.pid, 0) == -1 && errno == EPERM; }));
  // Effective 2000 (its saved uid) matches.
  REQUIRE(as(s.l, [] { return rump_sys_setresuid(-1, 2000, -1); }) == 0);
  CHECK(as(s.l, [&] { return rump_sys_kill(t.pid, 0); }) == 0);
}

TEST_CASE("kill: ESRCH for no such process, EINVAL for bad signals, 0 checks existence", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  CHECK_ERRNO(ESRCH, rump_sys_kill(99999, 0));
  CHECK_ERRNO(ESRCH, rump_sys_kill(99999, SIGTERM));
  CHECK_ERRNO(ESRCH, rump_sys_kill(-99999, SIGTERM));  // no such group
  CHECK_ERRNO(EINVAL, rump_sys_kill(p.pid, 65));
  CHECK_ERRNO(EINVAL, rump_sys_kill(p.pid, -1));
  CHECK_ERRNO(EINVAL, rump_sys_kill(p.pid, 1000));
  CHECK(rump_sys_kill(p.pid, 0) == 0);
  CHECK(alive(p.pid));
  CHECK(as(p.l, [] { return rump_sys_getpid(); }) == p.pid);
}

TEST_CASE("SIGTERM or SIGKILL to a process with no LWP in the kernel: WIFSIGNALED for the parent",
          "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  for (int sig : {SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGUSR1, SIGSEGV, 40}) {
    INFO("signal " << sig);
    Kid c = fork_kid();
    REQUIRE(rump_sys_kill(c.pid, sig) == 0);
    int st = reap(c.pid);
    CHECK(WIFSIGNALED(st));
    CHECK(WTERMSIG(st) == sig);
  }
}

TEST_CASE("default-ignored, stop and continue signals don't kill", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  for (int sig : {SIGCHLD, SIGURG, SIGWINCH, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU}) {
    INFO("signal " << sig);
    CHECK(rump_sys_kill(c.pid, sig) == 0);
    int st;
    CHECK(rump_sys_wait4(c.pid, &st, WNOHANG, nullptr) == 0);
  }
  CHECK(as(c.l, [] { return rump_sys_getpid(); }) == c.pid);
  // And nothing is left pending.
  uint64_t pend = ~uint64_t{0};
  REQUIRE(as(c.l, [&] { return rump_sys_rt_sigpending(reinterpret_cast<sigset_t*>(&pend), 8); }) == 0);
  CHECK(pend == 0);
}

TEST_CASE("rt_sigaction takes the kernel layout with sigsetsize 8 and returns the old action", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  KSigaction a{kHandler, SA_RESTART, reinterpret_cast<void*>(uintptr_t{0x2000}), bit(SIGUSR2)};
  KSigaction old;
  std::memset(&old, 0xaa, sizeof old);
  REQUIRE(rump_sys_rt_sigaction(SIGUSR1, &a, &old, 8) == 0);
  CHECK(old.handler == nullptr);  // SIG_DFL
  CHECK(old.flags == 0);
  CHECK(old.mask == 0);
  KSigaction b{kIgn, 0, nullptr, 0};
  REQUIRE(rump_sys_rt_sigaction(SIGUSR1, &b, &old, 8) == 0);
  CHECK(old.handler == kHandler);
  CHECK(old.flags == SA_RESTART);
  CHECK(old.restorer == a.restorer);
  CHECK(old.mask == bit(SIGUSR2));
  // Query only.
  REQUIRE(rump_sys_rt_sigaction(SIGUSR1, nullptr, &old, 8) == 0);
  CHECK(old.handler == kIgn);
  // SIGKILL and SIGSTOP can't be masked in a handler's mask.
  KSigaction m{kHandler, 0, nullptr, bit(SIGKILL) | bit(SIGSTOP) | bit(SIGINT)};
  REQUIRE(rump_sys_rt_sigaction(SIGUSR2, &m, nullptr, 8) == 0);
  REQUIRE(rump_sys_rt_sigaction(SIGUSR2, nullptr, &old, 8) == 0);
  CHECK(old.mask == bit(SIGINT));
  // A child inherits actions.
  Kid c = fork_kid();
  REQUIRE(as(c.l, [&] { return rump_sys_rt_sigaction(SIGUSR2, nullptr, &old, 8); }) == 0);
  CHECK(old.handler == kHandler);
}

TEST_CASE("rt_sigaction: EINVAL for sigsetsize != 8, SIGKILL/SIGSTOP and bad numbers", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  KSigaction a{kHandler, 0, nullptr, 0}, old;
  for (size_t sz : {0ul, 4ul, 7ul, 16ul, 128ul}) {
    INFO("sigsetsize " << sz);
    CHECK_ERRNO(EINVAL, rump_sys_rt_sigaction(SIGUSR1, &a, nullptr, sz));
  }
  CHECK_ERRNO(EINVAL, rump_sys_rt_sigaction(SIGKILL, &a, nullptr, 8));
  CHECK_ERRNO(EINVAL, rump_sys_rt_sigaction(SIGSTOP, &a, nullptr, 8));
  KSigaction ign{kIgn, 0, nullptr, 0};
  CHECK_ERRNO(EINVAL, rump_sys_rt_sigaction(SIGKILL, &ign, nullptr, 8));
  // Querying them is fine (Linux).
  CHECK(rump_sys_rt_sigaction(SIGKILL, nullptr, &old, 8) == 0);
  CHECK_ERRNO(EINVAL, rump_sys_rt_sigaction(0, &a, nullptr, 8));
  CHECK_ERRNO(EINVAL, rump_sys_rt_sigaction(65, &a, nullptr, 8));
  CHECK_ERRNO(EINVAL, rump_sys_rt_sigaction(-1, nullptr, &old, 8));
  // Nothing changed.
  REQUIRE(rump_sys_rt_sigaction(SIGUSR1, nullptr, &old, 8) == 0);
  CHECK(old.handler == nullptr);
}

TEST_CASE("a caught signal does not kill; it is consumed when the process runs", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  REQUIRE(as(c.l, [] { return set_action(SIGUSR1, kHandler); }) == 0);
  REQUIRE(as(c.l, [] { return set_action(SIGTERM, kHandler); }) == 0);
  REQUIRE(rump_sys_kill(c.pid, SIGUSR1) == 0);
  REQUIRE(rump_sys_kill(c.pid, SIGTERM) == 0);
  int st;
  CHECK(rump_sys_wait4(c.pid, &st, WNOHANG, nullptr) == 0);
  // The child runs: it is alive, and the signals were delivered.
  CHECK(as(c.l, [] { return rump_sys_getpid(); }) == c.pid);
  uint64_t pend = 1;
  REQUIRE(as(c.l, [&] { return rump_sys_rt_sigpending(reinterpret_cast<sigset_t*>(&pend), 8); }) == 0);
  CHECK(pend == 0);
  CHECK(rump_sys_wait4(c.pid, &st, WNOHANG, nullptr) == 0);
  // SIGKILL can't be caught.
  REQUIRE(rump_sys_kill(c.pid, SIGKILL) == 0);
  st = reap(c.pid);
  CHECK(WTERMSIG(st) == SIGKILL);
}

TEST_CASE("an explicitly ignored fatal signal does not kill", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  REQUIRE(as(c.l, [] { return set_action(SIGTERM, kIgn); }) == 0);
  REQUIRE(rump_sys_kill(c.pid, SIGTERM) == 0);
  int st;
  CHECK(rump_sys_wait4(c.pid, &st, WNOHANG, nullptr) == 0);
  CHECK(as(c.l, [] { return rump_sys_getpid(); }) == c.pid);
}

TEST_CASE("rt_sigprocmask SIG_BLOCK/SIG_UNBLOCK/SIG_SETMASK; EINVAL for bad how or size", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  uint64_t old = 1;
  REQUIRE(set_mask(SIG_BLOCK, bit(SIGUSR1), &old) == 0);
  CHECK(old == 0);
  REQUIRE(set_mask(SIG_BLOCK, bit(SIGUSR2) | bit(SIGKILL) | bit(SIGSTOP), &old) == 0);
  CHECK(old == bit(SIGUSR1));
  REQUIRE(set_mask(SIG_UNBLOCK, bit(SIGUSR1), &old) == 0);
  CHECK(old == (bit(SIGUSR1) | bit(SIGUSR2)));  // SIGKILL/SIGSTOP never blocked
  REQUIRE(set_mask(SIG_SETMASK, bit(SIGINT) | bit(SIGHUP), &old) == 0);
  CHECK(old == bit(SIGUSR2));
  // Query only.
  REQUIRE(rump_sys_rt_sigprocmask(SIG_BLOCK, nullptr, reinterpret_cast<sigset_t*>(&old), 8) == 0);
  CHECK(old == (bit(SIGINT) | bit(SIGHUP)));
  for (int how : {3, -1, 100}) {
    INFO("how " << how);
    uint64_t s = bit(SIGUSR1);
    CHECK_ERRNO(EINVAL, rump_sys_rt_sigprocmask(how, reinterpret_cast<sigset_t*>(&s), nullptr, 8));
  }
  uint64_t s = 0;
  CHECK_ERRNO(EINVAL, rump_sys_rt_sigprocmask(SIG_SETMASK, reinterpret_cast<sigset_t*>(&s), nullptr, 4));
  CHECK_ERRNO(EINVAL, rump_sys_rt_sigprocmask(SIG_SETMASK, reinterpret_cast<sigset_t*>(&s), nullptr, 16));
  // Unchanged by the failures.
  REQUIRE(rump_sys_rt_sigprocmask(SIG_BLOCK, nullptr, reinterpret_cast<sigset_t*>(&old), 8) == 0);
  CHECK(old == (bit(SIGINT) | bit(SIGHUP)));
  // The mask is the LWP's: a child's first LWP inherits it, another LWP
  // of the process starts with its own.
  Kid c = fork_kid();
  REQUIRE(as(c.l, [&] { return rump_sys_rt_sigprocmask(SIG_BLOCK, nullptr, reinterpret_cast<sigset_t*>(&old), 8); }) == 0);
  CHECK(old == (bit(SIGINT) | bit(SIGHUP)));
}

TEST_CASE("a blocked fatal signal is pending and kills only once unblocked", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  REQUIRE(as(c.l, [] { return set_mask(SIG_BLOCK, bit(SIGTERM)); }) == 0);
  REQUIRE(rump_sys_kill(c.pid, SIGTERM) == 0);
  int st;
  CHECK(rump_sys_wait4(c.pid, &st, WNOHANG, nullptr) == 0);
  // The child runs with it pending.
  rump_lwproc_switch(c.l);
  CHECK(rump_sys_getpid() == c.pid);
  uint64_t pend = 0;
  REQUIRE(rump_sys_rt_sigpending(reinterpret_cast<sigset_t*>(&pend), 8) == 0);
  CHECK(pend == bit(SIGTERM));
  // Unblocking: the call returns, and then the process is gone.
  CHECK(set_mask(SIG_UNBLOCK, bit(SIGTERM)) == 0);
  CHECK(rump_lwproc_curlwp() == nullptr);
  CHECK(rump_sys_getpid() == 1);
  rump_lwproc_switch(p.l);
  st = reap(c.pid);
  CHECK(WIFSIGNALED(st));
  CHECK(WTERMSIG(st) == SIGTERM);
}

TEST_CASE("a blocked SIGKILL still kills", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  REQUIRE(as(c.l, [] { return set_mask(SIG_BLOCK, ~uint64_t{0}); }) == 0);
  REQUIRE(rump_sys_kill(c.pid, SIGKILL) == 0);
  int st = reap(c.pid);
  CHECK(WTERMSIG(st) == SIGKILL);
}

TEST_CASE("kill(0, sig) signals the caller's process group", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  REQUIRE(rump_sys_setpgid(0, 0) == 0);
  Kid a = fork_kid();
  Kid b = fork_kid();
  REQUIRE(set_action(SIGUSR1, kHandler) == 0);  // p itself survives (after the forks: inherited)
  Kid other = fork_kid();
  REQUIRE(as(other.l, [] { return rump_sys_setpgid(0, 0); }) == 0);
  REQUIRE(rump_sys_kill(0, SIGUSR1) == 0);
  CHECK(rump_sys_getpid() == p.pid);
  CHECK(WTERMSIG(reap(a.pid)) == SIGUSR1);
  CHECK(WTERMSIG(reap(b.pid)) == SIGUSR1);
  int st;
  CHECK(rump_sys_wait4(other.pid, &st, WNOHANG, nullptr) == 0);  // another group
}

TEST_CASE("kill(-pgid, sig) signals every process in that group", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid a = fork_kid();
  REQUIRE(as(a.l, [] { return rump_sys_setpgid(0, 0); }) == 0);
  Kid a1 = as(a.l, [] { return fork_kid(); });
  Kid b = fork_kid();  // p's group
  REQUIRE(rump_sys_kill(-a.pid, SIGTERM) == 0);
  CHECK(WTERMSIG(reap(a.pid)) == SIGTERM);
  CHECK_ERRNO(ESRCH, rump_sys_kill(a1.pid, 0));
  int st;
  CHECK(rump_sys_wait4(b.pid, &st, WNOHANG, nullptr) == 0);
  CHECK_ERRNO(ESRCH, rump_sys_kill(-a.pid, SIGTERM));  // the group is gone
}

TEST_CASE("kill(-1, sig) signals every process the caller may, except init and itself", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  CHECK(as(p.l, [] { return rump_sys_kill(-1, SIGTERM) == -1 && errno == ESRCH; }));  // nobody else
  Kid a = fork_kid();
  Kid b = fork_kid();
  REQUIRE(as(p.l, [] { return rump_sys_kill(-1, SIGTERM); }) == 0);
  CHECK_ERRNO(ESRCH, rump_sys_kill(a.pid, 0));
  CHECK_ERRNO(ESRCH, rump_sys_kill(b.pid, 0));
  CHECK(alive(p.pid));
  CHECK(rump_sys_getpid() == 1);
  // Non-root: only its own uid's processes; EPERM if none may be signalled.
  Kid u = fork_kid();
  Kid r = fork_kid();
  Kid same = fork_kid();
  REQUIRE(as(u.l, [] { return rump_sys_setuid(1000); }) == 0);
  REQUIRE(as(same.l, [] { return rump_sys_setuid(1000); }) == 0);
  REQUIRE(as(u.l, [] { return rump_sys_kill(-1, SIGTERM); }) == 0);
  CHECK_ERRNO(ESRCH, rump_sys_kill(same.pid, 0));
  CHECK(alive(r.pid));
  CHECK(alive(p.pid));
  CHECK(as(u.l, [] { return rump_sys_kill(-1, SIGTERM) == -1 && errno == EPERM; }));
}

// (Under ASan/TSan this shows the use-after-free in curlwp.cc leave_inline
// after an auto-reaped exit: see core_test.cc "exit() of a process whose
// parent reaps at once".)
TEST_CASE("with SIGCHLD ignored, children are reaped at once: wait4 is ECHILD", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  REQUIRE(set_action(SIGCHLD, kIgn) == 0);
  Kid c = fork_kid();
  Kid d = fork_kid();
  as(c.l, [] { return rump_sys_exit(3); });
  REQUIRE(rump_sys_kill(d.pid, SIGKILL) == 0);
  int st;
  CHECK_ERRNO(ECHILD, rump_sys_wait4(-1, &st, 0, nullptr));
  CHECK_ERRNO(ESRCH, rump_sys_kill(c.pid, 0));
  // SA_NOCLDWAIT does the same with a handler.
  REQUIRE(set_action(SIGCHLD, kHandler, SA_NOCLDWAIT) == 0);
  Kid e = fork_kid();
  as(e.l, [] { return rump_sys_exit(0); });
  CHECK_ERRNO(ECHILD, rump_sys_wait4(-1, &st, 0, nullptr));
  // Default again: zombies are kept.
  REQUIRE(set_action(SIGCHLD, kDfl) == 0);
  Kid f = fork_kid();
  as(f.l, [] { return rump_sys_exit(4); });
  CHECK(WEXITSTATUS(reap(f.pid)) == 4);
}

TEST_CASE("an LWP sleeping in wait4 wakes with EINTR on a caught signal", "[signal][concurrency]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  REQUIRE(set_action(SIGUSR1, kHandler) == 0);
  Kid c = fork_kid();  // alive: wait4 sleeps
  std::atomic<int> result{0}, err{0};
  std::atomic<bool> started{false};
  std::thread t([&] {
    rump_kernel_set_current(up.k);
    if (rump_lwproc_newlwp(p.pid) != 0) {
      result = -2;
      return;
    }
    started = true;
    int st;
    int r = rump_sys_wait4(-1, &st, 0, nullptr);
    err = errno;
    result = r;
    rump_lwproc_releaselwp();
  });
  while (!started) usleep(1000);
  usleep(50 * 1000);  // (not needed for correctness: a pending signal also gives EINTR)
  rump_lwproc_switch(nullptr);
  REQUIRE(rump_sys_kill(p.pid, SIGUSR1) == 0);
  t.join();
  CHECK(result == -1);
  CHECK(err == EINTR);
  // p is alive, c untouched.
  rump_lwproc_switch(p.l);
  CHECK(rump_sys_getpid() == p.pid);
  int st;
  CHECK(rump_sys_wait4(c.pid, &st, WNOHANG, nullptr) == 0);
}

TEST_CASE("a fatal signal ends a process whose LWP sleeps in wait4", "[signal][concurrency]") {
  KernelUp up;
  Kid p = fork_kid();
  rump_lwproc_switch(p.l);
  Kid c = fork_kid();
  rump_lwproc_switch(nullptr);
  std::atomic<int> result{0};
  std::atomic<bool> started{false};
  std::thread t([&] {
    rump_kernel_set_current(up.k);
    rump_lwproc_switch(p.l);
    started = true;
    int st;
    result = rump_sys_wait4(-1, &st, 0, nullptr);
    result = result * 1000 + (rump_lwproc_curlwp() == nullptr ? 1 : 0);
  });
  while (!started) usleep(1000);
  usleep(50 * 1000);
  REQUIRE(rump_sys_kill(p.pid, SIGTERM) == 0);
  t.join();
  // wait4 was interrupted, and the thread left the kernel with no process.
  CHECK(result == -1000 + 1);
  CHECK_ERRNO(ESRCH, rump_sys_kill(p.pid, 0));  // init reaped p
  CHECK(as(c.l, [] { return rump_sys_getppid(); }) == 1);  // c lives on, init's
}

TEST_CASE("tgkill of a fatal signal to another LWP of the caller's own process ends the process", "[signal]") {
  KernelUp up;
  Kid p = fork_kid();
  // A second LWP of p, idle (not in the kernel): the signal ends p at
  // once, while the sender is inside tgkill. The sender used to wait for
  // itself to leave the kernel, for good.
  rump_lwproc_switch(p.l);
  REQUIRE(rump_lwproc_newlwp(p.pid) == 0);
  pid_t tid = static_cast<pid_t>(rump_sys_gettid());
  REQUIRE(tid != p.pid);
  rump_lwproc_switch(p.l);
  CHECK(rump_sys_tgkill(p.pid, tid, SIGTERM) == 0);
  rump_lwproc_switch(nullptr);
  CHECK_ERRNO(ESRCH, rump_sys_kill(p.pid, 0));  // init reaped p
}
