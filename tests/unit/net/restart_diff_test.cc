// Differential scenarios of SA_RESTART: a call blocked in a pipe, socket,
// accept, wait4, futex or flock is interrupted again and again by a caught
// SIGUSR1, installed with and without SA_RESTART; the host kernel and the
// rump kernel must agree on EINTR (no SA_RESTART) against completion (the
// call restarts and ends when its event comes). Calls that are never
// restarted after a handler (poll, epoll_wait, nanosleep, rt_sigtimedwait,
// futex with a timeout) give EINTR even with SA_RESTART. A blocking
// signalfd read follows a change of the signalfd's set made while it
// sleeps. Log against log (net_diff.h).
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <atomic>
#include <functional>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "net_diff.h"
#include "repeat_sender.h"
#include "rump_test.h"

using namespace net_test;

namespace {

void on_usr1(int) {}

// SIGUSR1 caught, with or without SA_RESTART.
template <class S>
int catch_usr1(bool restart) {
  unsigned long flags = restart ? SA_RESTART : 0;
  if (S::kRump) {
    KSigaction a{reinterpret_cast<void*>(&on_usr1), flags, nullptr, 0};
    return rump_sys_rt_sigaction(SIGUSR1, &a, nullptr, 8);
  }
  struct sigaction sa {};
  sa.sa_handler = on_usr1;
  sa.sa_flags = static_cast<int>(flags);
  return sigaction(SIGUSR1, &sa, nullptr);
}

// Interrupts the calling thread's blocking calls: every millisecond a
// SIGUSR1 (host: to that thread; rump: to its process, from an LWP of it
// that blocks every signal), and at given counts a step (run on the
// sender's thread; rump: as that LWP), so that a call that is restarted
// rather than failed ends when the step makes its event come. Signals
// stop after kMaxSignals, the steps go on.
template <class S>
class Interrupter {
 public:
  static constexpr int kMaxSignals = 1500;
  using Steps = std::vector<std::pair<int, std::function<void()>>>;

  Interrupter(Steps steps, bool signal = true) : steps_(std::move(steps)), signal_(signal) {
    if (S::kRump) {
      pid_t pid = rump_sys_getpid();
      sender_.emplace(rump_kernel_current(), pid, true, [this, pid] {
        tick([pid] { rump_sys_kill(pid, SIGUSR1); });
      });
    } else {
      pthread_t self = pthread_self();
      host_ = std::thread([this, self] {
        while (!stop_.load()) {
          tick([self] { pthread_kill(self, SIGUSR1); });
          usleep(1000);
        }
      });
    }
  }
  ~Interrupter() {
    stop_.store(true);
    if (host_.joinable()) host_.join();
    if (sender_) sender_->stop();
  }

 private:
  template <class Send>
  void tick(Send send) {
    int n = ++count_;
    if (signal_ && n <= kMaxSignals) send();
    for (auto& [at, step] : steps_)
      if (n == at) step();
  }

  Steps steps_;
  bool signal_;
  int count_ = 0;
  std::atomic<bool> stop_{false};
  std::thread host_;
  std::optional<rump_test::RepeatSender> sender_;
};

// Finished after this many signals: a restarted call ends then.
constexpr int kFinishAt = 20;
// For calls that must fail: their event comes only after this many, so a
// call wrongly restarted ends with a result, not EINTR.
constexpr int kLateAt = 1200;

inline int finish_at(bool restart) { return restart ? kFinishAt : kLateAt; }

template <class S>
long futex_call(uint32_t* w, int op, uint32_t val, const timespec* ts) {
  if (S::kRump) return rump_sys_futex(w, op, val, ts, nullptr, 0);
  return syscall(SYS_futex, w, op, val, ts, nullptr, 0);
}

template <class S>
int signalfd_call(int fd, uint64_t mask) {
  if (S::kRump) return rump_sys_signalfd4(fd, reinterpret_cast<sigset_t*>(&mask), 8, 0);
  return static_cast<int>(syscall(SYS_signalfd4, fd, &mask, 8, 0));
}

template <class S>
int block(uint64_t mask) {
  if (S::kRump) return rump_sys_rt_sigprocmask(SIG_BLOCK, reinterpret_cast<sigset_t*>(&mask), nullptr, 8);
  return static_cast<int>(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &mask, nullptr, 8));
}

inline uint64_t bit(int sig) { return uint64_t{1} << (sig - 1); }

// Reads and writes on a pipe and a stream socketpair, and accept.
template <class S, bool Restart>
void sc_io(Log& L, const Env& env) {
  R(catch_usr1<S>(Restart));
  char buf[64];
  int p[2];
  R(SYS(pipe, p));
  {
    Interrupter<S> in({{finish_at(Restart), [&] { SYS(write, p[1], "abc", 3); }}});
    R(SYS(read, p[0], buf, sizeof buf));
  }
  // A write into a full pipe, finished by draining it.
  R(SYS(fcntl, p[1], F_SETFL, O_NONBLOCK));
  static char big[4096];
  while (SYS(write, p[1], big, sizeof big) > 0) {
  }
  R(SYS(fcntl, p[1], F_SETFL, 0));
  R(SYS(fcntl, p[0], F_SETFL, O_NONBLOCK));
  {
    Interrupter<S> in({{finish_at(Restart), [&] {
                          while (SYS(read, p[0], big, sizeof big) > 0) {
                          }
                        }}});
    R(SYS(write, p[1], big, sizeof big));
  }
  int s[2];
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, s));
  {
    Interrupter<S> in({{finish_at(Restart), [&] { SYS(write, s[1], "hello", 5); }}});
    R(SYS(recv, s[0], buf, sizeof buf, 0));
  }
  int ls = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un a;
  socklen_t al = path_addr(a, env, Restart ? "lsn-r" : "lsn");
  R(SYS(bind, ls, sa(a), al));
  R(SYS(listen, ls, 4));
  int c = -1;
  {
    Interrupter<S> in({{finish_at(Restart), [&] {
                          c = static_cast<int>(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
                          SYS(connect, c, sa(a), al);
                        }}});
    int x = F(SYS(accept, ls, nullptr, nullptr));
    if (x >= 0) SYS(close, x);
  }
  for (int f : {p[0], p[1], s[0], s[1], ls, c}) SYS(close, f);
}

// wait4 for a child that the sender kills; futex without a timeout; flock
// on a file another open description has locked.
template <class S, bool Restart>
void sc_wait_futex_lock(Log& L, const Env& env) {
  R(catch_usr1<S>(Restart));
  pid_t kid;
  if (S::kRump) {
    kid = rump_test::fork_kid().pid;
  } else {
    kid = fork();
    if (kid == 0) {
      for (;;) pause();
    }
  }
  int st = 0;
  {
    Interrupter<S> in({{finish_at(Restart), [&] { SYS(kill, kid, SIGKILL); }}});
    long r = SYS(wait4, kid, &st, 0, nullptr);
    int e = errno;
    V("wait4: %s errno %d", r == kid ? "the child" : "none", r == kid ? 0 : e);
  }
  SYS(kill, kid, SIGKILL);
  while (SYS(wait4, kid, &st, 0, nullptr) < 0 && errno == EINTR) {
  }
  // A wake after a restart may find the word changed (EAGAIN) or come
  // while the waiter sleeps (0): both are "not interrupted".
  static uint32_t word;
  word = 0;
  {
    Interrupter<S> in({{finish_at(Restart), [&] {
                          __atomic_store_n(&word, 1, __ATOMIC_SEQ_CST);
                          futex_call<S>(&word, FUTEX_WAKE_PRIVATE, 1, nullptr);
                        }}});
    long r = futex_call<S>(&word, FUTEX_WAIT_PRIVATE, 0, nullptr);
    int e = errno;
    V("futex wait: %s", r == 0 || e == EAGAIN ? "ended" : e == EINTR ? "EINTR" : "other");
  }
  char path[128];
  snprintf(path, sizeof path, "%s/%s", env.dir, Restart ? "lock-r" : "lock");
  int f1 = F(SYS(open, path, O_RDWR | O_CREAT, 0600));
  int f2 = F(SYS(open, path, O_RDWR));
  R(SYS(flock, f1, LOCK_EX));
  {
    Interrupter<S> in({{finish_at(Restart), [&] { SYS(flock, f1, LOCK_UN); }}});
    R(SYS(flock, f2, LOCK_EX));
  }
  SYS(close, f1);
  SYS(close, f2);
}

// Never restarted after a handler, SA_RESTART or not: EINTR. Each one's
// event comes later, so a wrong restart ends with a result instead.
template <class S>
void sc_never_restarted(Log& L, const Env&) {
  R(catch_usr1<S>(true));
  int p[2];
  R(SYS(pipe, p));
  // (Drained after each wait without blocking: the data comes only for a
  // call wrongly restarted.)
  R(SYS(fcntl, p[0], F_SETFL, O_NONBLOCK));
  {
    Interrupter<S> in({{kLateAt, [&] { SYS(write, p[1], "x", 1); }}});
    pollfd pf{p[0], POLLIN, 0};
    R(SYS(poll, &pf, 1, -1));
  }
  char c;
  SYS(read, p[0], &c, 1);
  int ep = F(SYS(epoll_create1, 0));
  epoll_event ev{};
  ev.events = EPOLLIN;
  R(SYS(epoll_ctl, ep, EPOLL_CTL_ADD, p[0], &ev));
  {
    Interrupter<S> in({{kLateAt, [&] { SYS(write, p[1], "x", 1); }}});
    epoll_event out;
    R(SYS(epoll_wait, ep, &out, 1, -1));
  }
  SYS(read, p[0], &c, 1);
  {
    Interrupter<S> in({});
    timespec ts{3, 0};
    R(SYS(nanosleep, &ts, nullptr));
  }
  static uint32_t word;
  word = 0;
  {
    Interrupter<S> in({{kLateAt, [&] {
                          __atomic_store_n(&word, 1, __ATOMIC_SEQ_CST);
                          futex_call<S>(&word, FUTEX_WAKE_PRIVATE, 1, nullptr);
                        }}});
    timespec ts{30, 0};
    R(futex_call<S>(&word, FUTEX_WAIT_PRIVATE, 0, &ts));
  }
  R(block<S>(bit(SIGUSR2)));
  {
    pid_t self = static_cast<pid_t>(SYS(getpid));
    Interrupter<S> in({{kLateAt, [&] { SYS(kill, self, SIGUSR2); }}});
    uint64_t set = bit(SIGUSR2);
    long r = S::kRump ? rump_sys_rt_sigtimedwait(reinterpret_cast<sigset_t*>(&set), nullptr, nullptr, 8)
                      : syscall(SYS_rt_sigtimedwait, &set, nullptr, nullptr, 8);
    R(r);
  }
  for (int f : {p[0], p[1], ep}) SYS(close, f);
}

// A signalfd read is restarted like a read (SIGUSR1 is not in its set).
template <class S, bool Restart>
void sc_signalfd_restart(Log& L, const Env&) {
  R(catch_usr1<S>(Restart));
  R(block<S>(bit(SIGUSR2)));
  int fd = F(signalfd_call<S>(-1, bit(SIGUSR2)));
  pid_t self = static_cast<pid_t>(SYS(getpid));
  {
    Interrupter<S> in({{finish_at(Restart), [&] { SYS(kill, self, SIGUSR2); }}});
    signalfd_siginfo si{};
    R(SYS(read, fd, &si, sizeof si));
    V("signo %u", si.ssi_signo);
  }
  SYS(close, fd);
}

// A read asleep on a set without SIGUSR2, which is pending, takes it as
// soon as the set changes to include it; only if it did not would the
// later SIGHUP end the read.
template <class S>
void sc_signalfd_mask_change(Log& L, const Env&) {
  R(block<S>(bit(SIGUSR2) | bit(SIGHUP)));
  pid_t self = static_cast<pid_t>(SYS(getpid));
  R(SYS(kill, self, SIGUSR2));
  int fd = F(signalfd_call<S>(-1, bit(SIGHUP)));
  {
    Interrupter<S> in({{kFinishAt, [&] { signalfd_call<S>(fd, bit(SIGHUP) | bit(SIGUSR2)); }},
                       {kLateAt, [&] { SYS(kill, self, SIGHUP); }}},
                      false);
    signalfd_siginfo si{};
    R(SYS(read, fd, &si, sizeof si));
    V("signo %u", si.ssi_signo);
  }
  SYS(close, fd);
}

}  // namespace

TEST_CASE("restart diff: pipe, socket and accept fail with EINTR without SA_RESTART", "[net][diff][signal]") {
  run_diff(&sc_io<K<false>, false>, &sc_io<K<true>, false>);
}
TEST_CASE("restart diff: pipe, socket and accept are restarted with SA_RESTART", "[net][diff][signal]") {
  run_diff(&sc_io<K<false>, true>, &sc_io<K<true>, true>);
}
TEST_CASE("restart diff: wait4, futex and flock fail with EINTR without SA_RESTART", "[net][diff][signal]") {
  run_diff(&sc_wait_futex_lock<K<false>, false>, &sc_wait_futex_lock<K<true>, false>);
}
TEST_CASE("restart diff: wait4, futex and flock are restarted with SA_RESTART", "[net][diff][signal]") {
  run_diff(&sc_wait_futex_lock<K<false>, true>, &sc_wait_futex_lock<K<true>, true>);
}
TEST_CASE("restart diff: poll, epoll_wait, nanosleep, timed futex and rt_sigtimedwait give EINTR despite SA_RESTART",
          "[net][diff][signal]") {
  run_diff(&sc_never_restarted<K<false>>, &sc_never_restarted<K<true>>);
}
TEST_CASE("restart diff: a signalfd read is restarted with SA_RESTART and fails with EINTR without",
          "[net][diff][signal]") {
  run_diff(&sc_signalfd_restart<K<false>, true>, &sc_signalfd_restart<K<true>, true>);
  run_diff(&sc_signalfd_restart<K<false>, false>, &sc_signalfd_restart<K<true>, false>);
}
TEST_CASE("restart diff: a blocking signalfd read takes a signal its set gained while it slept", "[net][diff][signal]") {
  run_diff(&sc_signalfd_mask_change<K<false>>, &sc_signalfd_mask_change<K<true>>);
}
