// Process descriptors against the host: pidfd_open's errors and flags,
// poll readiness (nothing while the process runs, POLLIN once it is a
// zombie, POLLIN|POLLHUP once reaped), pidfd_send_signal's argument and
// permission rules, pidfd_getfd (a duplicate of the target's descriptor,
// close-on-exec; EBADF, EINVAL, ESRCH), and waitid(P_PIDFD), including
// EAGAIN from a PIDFD_NONBLOCK descriptor; a thread's descriptor
// (PIDFD_THREAD): what it may name, where its signals go, and readiness
// once the thread ended.
#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "rump_test.h"
#include "sig_diff.h"

namespace {

using sig_test::Log;

constexpr int kPidfdNonblock = O_NONBLOCK;
constexpr unsigned kPidfdThread = O_EXCL;  // PIDFD_THREAD (Linux 6.9)

// Logs a call that returns a descriptor: whether it did (the numbers
// differ between the host process and the rump one), or its errno.
#define RFD(var, expr)                                                                   \
  do {                                                                                 \
    errno = 0;                                                                         \
    var = (expr);                                                                      \
    L.add(__LINE__, "%s: %s errno %d", #expr, var >= 0 ? "fd" : "-1", var >= 0 ? 0 : errno); \
  } while (0)
constexpr int kPPidfd = 3;

// A child of the caller that runs until it is killed.
template <class S>
pid_t spawn_running() {
  if constexpr (S::kRump) {
    return rump_test::fork_kid().pid;
  } else {
    pid_t p = fork();
    if (p == 0)
      for (;;) pause();
    return p;
  }
}

// A child of the caller that exited with code and is a zombie now.
template <class S>
pid_t spawn_exited(int code) {
  if constexpr (S::kRump) {
    rump_test::Kid k = rump_test::fork_kid();
    rump_test::as(k.l, [&] { return rump_sys_exit(code); });
    return k.pid;
  } else {
    pid_t p = fork();
    if (p == 0) _exit(code);
    siginfo_t si;
    waitid(P_PID, static_cast<id_t>(p), &si, WEXITED | WNOWAIT);
    return p;
  }
}

template <class S>
void pidfd_scenario(Log& L) {
  R(SYS(pidfd_open, -1, 0u));
  R(SYS(pidfd_open, 0, 0u));
  R(SYS(pidfd_open, 4194303, 0u));
  int pfd[2];
  R(SYS(pipe2, pfd, 0));
  pid_t c = spawn_running<S>();
  R(SYS(pidfd_open, c, 1u));
  long fd;
  RFD(fd, SYS(pidfd_open, c, 0u));
  R(SYS(fcntl, static_cast<int>(fd), F_GETFD));
  R(SYS(fcntl, static_cast<int>(fd), F_GETFL));
  pollfd p{static_cast<int>(fd), POLLIN, 0};
  R(SYS(poll, &p, 1ul, 0));
  V("revents %d", p.revents);
  // pidfd_send_signal: checks, then a probe (signal 0).
  R(SYS(pidfd_send_signal, static_cast<int>(fd), 0, nullptr, 0u));
  R(SYS(pidfd_send_signal, static_cast<int>(fd), 0, nullptr, 8u));
  R(SYS(pidfd_send_signal, static_cast<int>(fd), 100, nullptr, 0u));
  R(SYS(pidfd_send_signal, pfd[0], 0, nullptr, 0u));
  R(SYS(pidfd_send_signal, 999, 0, nullptr, 0u));
  siginfo_t si;
  std::memset(&si, 0, sizeof si);
  si.si_signo = SIGUSR2;
  si.si_code = SI_QUEUE;
  R(SYS(pidfd_send_signal, static_cast<int>(fd), SIGUSR1, &si, 0u));
  si.si_signo = SIGUSR1;
  si.si_code = SI_USER;
  R(SYS(pidfd_send_signal, static_cast<int>(fd), SIGUSR1, &si, 0u));
  // pidfd_getfd: the child's copy of the pipe's write end.
  R(SYS(pidfd_getfd, static_cast<int>(fd), pfd[1], 1u));
  R(SYS(pidfd_getfd, static_cast<int>(fd), 999, 0u));
  R(SYS(pidfd_getfd, pfd[0], 0, 0u));
  long g = SYS(pidfd_getfd, static_cast<int>(fd), pfd[1], 0u);
  V("getfd %d", g >= 0);
  R(SYS(fcntl, static_cast<int>(g), F_GETFD));
  char b = 'x';
  R(SYS(write, static_cast<int>(g), &b, 1ul));
  b = 0;
  R(SYS(read, pfd[0], &b, 1ul));
  V("read %c", b);
  R(SYS(close, static_cast<int>(g)));
  // waitid(P_PIDFD) while it runs.
  siginfo_t wi;
  std::memset(&wi, 0xff, sizeof wi);
  R(SYS(waitid, kPPidfd, static_cast<id_t>(fd), &wi, WEXITED | WNOHANG, nullptr));
  V("pid zero %d", wi.si_pid == 0);
  long nb;
  RFD(nb, SYS(pidfd_open, c, static_cast<unsigned>(kPidfdNonblock)));
  R(SYS(fcntl, static_cast<int>(nb), F_GETFL));
  R(SYS(waitid, kPPidfd, static_cast<id_t>(nb), &wi, WEXITED, nullptr));
  R(SYS(waitid, kPPidfd, static_cast<id_t>(pfd[0]), &wi, WEXITED, nullptr));
  R(SYS(waitid, kPPidfd, static_cast<id_t>(-1), &wi, WEXITED, nullptr));
  // Killed through the descriptor: readable once it is a zombie.
  R(SYS(pidfd_send_signal, static_cast<int>(fd), SIGKILL, nullptr, 0u));
  p.revents = 0;
  R(SYS(poll, &p, 1ul, -1));
  V("revents %d", p.revents);
  std::memset(&wi, 0, sizeof wi);
  R(SYS(waitid, kPPidfd, static_cast<id_t>(fd), &wi, WEXITED, nullptr));
  V("code %d status %d signo %d same pid %d", wi.si_code, wi.si_status, wi.si_signo, wi.si_pid == c);
  // Reaped: POLLHUP too, and the process is gone.
  p.revents = 0;
  R(SYS(poll, &p, 1ul, 0));
  V("revents %d", p.revents);
  R(SYS(pidfd_send_signal, static_cast<int>(fd), 0, nullptr, 0u));
  R(SYS(pidfd_getfd, static_cast<int>(fd), pfd[0], 0u));
  R(SYS(waitid, kPPidfd, static_cast<id_t>(fd), &wi, WEXITED | WNOHANG, nullptr));
  R(SYS(close, static_cast<int>(nb)));
  R(SYS(close, static_cast<int>(fd)));
  // A zombie: readable, signals are accepted and do nothing, its
  // descriptors are gone (ESRCH), and waitid collects it.
  pid_t e = spawn_exited<S>(7);
  long efd;
  RFD(efd, SYS(pidfd_open, e, 0u));
  pollfd q{static_cast<int>(efd), POLLIN, 0};
  R(SYS(poll, &q, 1ul, 0));
  V("revents %d", q.revents);
  R(SYS(pidfd_send_signal, static_cast<int>(efd), SIGTERM, nullptr, 0u));
  R(SYS(pidfd_getfd, static_cast<int>(efd), pfd[0], 0u));
  std::memset(&wi, 0, sizeof wi);
  R(SYS(waitid, kPPidfd, static_cast<id_t>(efd), &wi, WEXITED, nullptr));
  V("code %d status %d", wi.si_code, wi.si_status);
  R(SYS(close, static_cast<int>(efd)));
  R(SYS(close, pfd[0]));
  R(SYS(close, pfd[1]));
}

// A second thread of the caller's process, which ends when told: a host
// thread blocked in a read, or a second LWP of the rump process.
template <class S>
class OtherThread {
 public:
  pid_t start() {
    if constexpr (S::kRump) {
      self_ = rump_lwproc_curlwp();
      // The new LWP takes the creator's signal mask, as a thread does.
      sigset_t mask;
      sigemptyset(&mask);
      rump_sys_rt_sigprocmask(SIG_BLOCK, nullptr, &mask, 8);
      if (rump_lwproc_newlwp(rump_sys_getpid()) != 0) abort();
      other_ = rump_lwproc_curlwp();
      rump_sys_rt_sigprocmask(SIG_SETMASK, &mask, nullptr, 8);
      tid_ = static_cast<pid_t>(rump_sys_gettid());
      rump_lwproc_switch(self_);
    } else {
      if (pipe(pfd_) != 0 || pthread_create(&t_, nullptr, &body, this) != 0) abort();
      while (tid_.load() == 0) sched_yield();
    }
    return tid_;
  }
  void end() {
    if constexpr (S::kRump) {
      rump_lwproc_switch(other_);
      rump_lwproc_releaselwp();
      rump_lwproc_switch(self_);
    } else {
      char c = 0;
      if (write(pfd_[1], &c, 1) != 1) abort();
      pthread_join(t_, nullptr);
      close(pfd_[0]);
      close(pfd_[1]);
    }
  }

 private:
  static void* body(void* a) {
    auto* o = static_cast<OtherThread*>(a);
    o->tid_ = static_cast<pid_t>(syscall(SYS_gettid));
    char c;
    (void)!read(o->pfd_[0], &c, 1);
    return nullptr;
  }
  std::atomic<pid_t> tid_{0};
  lwp* self_ = nullptr;
  lwp* other_ = nullptr;
  pthread_t t_{};
  int pfd_[2] = {-1, -1};
};

template <class S>
void pidfd_thread_scenario(Log& L) {
  pid_t me = static_cast<pid_t>(SYS(getpid));
  R(SYS(pidfd_open, me, 0x100u));
  // Blocked in every thread, so that it stays pending where it went.
  // (The kernel's 8-byte set is the head of libc's sigset_t.)
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  R(SYS(rt_sigprocmask, SIG_BLOCK, &set, nullptr, 8ul));
  OtherThread<S> th;
  pid_t tid = th.start();
  // Not a process; but a thread, with PIDFD_THREAD.
  R(SYS(pidfd_open, tid, 0u));
  long tfd, lfd;
  RFD(tfd, SYS(pidfd_open, tid, kPidfdThread));
  RFD(lfd, SYS(pidfd_open, me, kPidfdThread | kPidfdNonblock));
  R(SYS(fcntl, static_cast<int>(tfd), F_GETFD));
  pollfd p[2] = {{static_cast<int>(tfd), POLLIN, 0}, {static_cast<int>(lfd), POLLIN, 0}};
  R(SYS(poll, p, 2ul, 0));
  V("revents %d %d", p[0].revents, p[1].revents);
  R(SYS(pidfd_send_signal, static_cast<int>(tfd), 0, nullptr, 0u));
  R(SYS(pidfd_send_signal, static_cast<int>(tfd), 0, nullptr, 3u));
  // By default to the thread (not pending for the caller), and to the
  // process with PIDFD_SIGNAL_THREAD_GROUP.
  sigset_t pend;
  sigemptyset(&pend);
  R(SYS(pidfd_send_signal, static_cast<int>(tfd), SIGUSR1, nullptr, 0u));
  R(SYS(rt_sigpending, &pend, 8ul));
  V("pending %d", sigismember(&pend, SIGUSR1));
  sigemptyset(&pend);
  R(SYS(pidfd_send_signal, static_cast<int>(tfd), SIGUSR1, nullptr, 2u));
  R(SYS(rt_sigpending, &pend, 8ul));
  V("pending %d", sigismember(&pend, SIGUSR1));
  siginfo_t si;
  timespec zero{0, 0};
  R(SYS(rt_sigtimedwait, &set, &si, &zero, 8ul));
  // Its process's descriptors, and no child to wait for.
  int pfd[2];
  R(SYS(pipe2, pfd, 0));
  long g = SYS(pidfd_getfd, static_cast<int>(tfd), pfd[1], 0u);
  V("getfd %d", g >= 0);
  R(SYS(close, static_cast<int>(g)));
  siginfo_t wi;
  std::memset(&wi, 0, sizeof wi);
  R(SYS(waitid, kPPidfd, static_cast<id_t>(tfd), &wi, WEXITED | WNOHANG, nullptr));
  // The thread ends: its descriptor is readable, the leader's is not;
  // nothing reaches it any more.
  th.end();
  p[0].revents = p[1].revents = 0;
  R(SYS(poll, p, 1ul, -1));
  V("readable %d", (p[0].revents & POLLIN) != 0);
  R(SYS(poll, &p[1], 1ul, 0));
  V("leader revents %d", p[1].revents);
  R(SYS(pidfd_send_signal, static_cast<int>(tfd), 0, nullptr, 0u));
  R(SYS(pidfd_send_signal, static_cast<int>(tfd), 0, nullptr, 2u));
  R(SYS(pidfd_getfd, static_cast<int>(tfd), pfd[1], 0u));
  R(SYS(pidfd_send_signal, static_cast<int>(lfd), 0, nullptr, 0u));
  R(SYS(close, static_cast<int>(tfd)));
  R(SYS(close, static_cast<int>(lfd)));
  R(SYS(close, pfd[0]));
  R(SYS(close, pfd[1]));
}

}  // namespace

TEST_CASE("pidfd_open, pidfd_send_signal, pidfd_getfd, poll and waitid(P_PIDFD) as the host",
          "[pidfd][differential]") {
  DIFF(pidfd_scenario);
}

TEST_CASE("a pidfd keeps its pid from being reused after the process is reaped", "[pidfd]") {
  rump_test::KernelUp up;
  rump_test::Kid parent = rump_test::fork_and_switch();
  rump_test::Kid c = rump_test::fork_kid();
  int fd = rump_sys_pidfd_open(c.pid, 0);
  REQUIRE(fd >= 0);
  rump_test::as(c.l, [] { return rump_sys_exit(3); });
  int st = 0;
  REQUIRE(rump_sys_wait4(c.pid, &st, 0, nullptr) == c.pid);
  // Many new processes: none gets the pid the descriptor holds.
  for (int i = 0; i < 200; i++) {
    rump_test::Kid k = rump_test::fork_kid();
    CHECK(k.pid != c.pid);
    rump_test::as(k.l, [] { return rump_sys_exit(0); });
    REQUIRE(rump_sys_wait4(k.pid, &st, 0, nullptr) == k.pid);
  }
  CHECK_ERRNO(ESRCH, rump_sys_pidfd_send_signal(fd, 0, nullptr, 0));
  CHECK(rump_sys_close(fd) == 0);
  rump_lwproc_switch(nullptr);
  (void)parent;
}

TEST_CASE("pidfd_getfd needs the target's credentials or CAP_SYS_PTRACE", "[pidfd]") {
  rump_test::KernelUp up;
  rump_test::Kid parent = rump_test::fork_and_switch();
  int pfd[2];
  REQUIRE(rump_sys_pipe(pfd) == 0);
  rump_test::Kid c = rump_test::fork_kid();
  REQUIRE(rump_test::as(c.l, [] { return rump_sys_setresuid(1000, 1000, 1000); }) == 0);
  int fd = rump_sys_pidfd_open(c.pid, 0);
  REQUIRE(fd >= 0);
  // Root may; an unrelated user may not; the same user may.
  int g = rump_sys_pidfd_getfd(fd, pfd[0], 0);
  CHECK(g >= 0);
  rump_sys_close(g);
  REQUIRE(rump_sys_setresuid(2000, 2000, 2000) == 0);
  CHECK_ERRNO(EPERM, rump_sys_pidfd_getfd(fd, pfd[0], 0));
  CHECK_ERRNO(EPERM, rump_sys_pidfd_send_signal(fd, SIGTERM, nullptr, 0));
  rump_lwproc_switch(nullptr);
  (void)parent;
}

TEST_CASE("a poll on a pidfd wakes when the process exits", "[pidfd][concurrency]") {
  rump_test::KernelUp up({.ncpu = 2});
  rump_test::Kid parent = rump_test::fork_and_switch();
  rump_test::Kid c = rump_test::fork_kid();
  int fd = rump_sys_pidfd_open(c.pid, 0);
  REQUIRE(fd >= 0);
  // A second LWP of the parent waits on the descriptor on its own thread.
  REQUIRE(rump_lwproc_newlwp(parent.pid) == 0);
  lwp* poller = rump_lwproc_curlwp();
  rump_lwproc_switch(parent.l);
  std::atomic<int> polled{-1};
  std::atomic<short> revents{0};
  rump_kernel* k = up.k;
  std::thread t([&] {
    rump_kernel_set_current(k);
    rump_lwproc_switch(poller);
    pollfd p{fd, POLLIN, 0};
    int r = rump_sys_poll(&p, 1, -1);
    revents = p.revents;
    polled = r;
    rump_lwproc_switch(nullptr);
  });
  // However the two threads interleave, the exit wakes the poll.
  rump_test::as(c.l, [] { return rump_sys_exit(0); });
  t.join();
  CHECK(polled == 1);
  CHECK(revents == POLLIN);
  rump_lwproc_switch(nullptr);
}

TEST_CASE("pidfd_send_signal reads its siginfo through copyin: EFAULT for a bad pointer", "[pidfd]") {
  rump_test::KernelUp up;
  rump_test::isolated_proc();
  int fd = rump_sys_pidfd_open(rump_sys_getpid(), 0);
  REQUIRE(fd >= 0);
  CHECK_ERRNO(EFAULT, rump_sys_pidfd_send_signal(fd, SIGUSR1, reinterpret_cast<void*>(0x6000'0000'0000), 0));
  CHECK(rump_sys_close(fd) == 0);
  rump_lwproc_releaselwp();
}

TEST_CASE("pidfd_open(PIDFD_THREAD): a thread's descriptor, its signals and its readiness as the host",
          "[pidfd][differential]") {
  DIFF(pidfd_thread_scenario);
}
