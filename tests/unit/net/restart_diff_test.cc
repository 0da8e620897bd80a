// Differential scenarios of SA_RESTART: a call blocked in a pipe, socket,
// accept, wait4, futex or flock is interrupted again and again by a caught
// SIGUSR1, installed with and without SA_RESTART; the host kernel and the
// rump kernel must agree on EINTR (no SA_RESTART) against completion (the
// call restarts and ends when its event comes). Calls that are never
// restarted after a handler (poll, ppoll, select, epoll_wait, nanosleep,
// clock_nanosleep, rt_sigtimedwait, futex with a timeout) give EINTR even
// with SA_RESTART, and report the time left where Linux does. A blocking
// signalfd read follows a change of the signalfd's set made while it
// sleeps. A blocking connect (AF_UNIX and TCP) to a full backlog is
// restarted like accept. Log against log (net_diff.h).
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <atomic>
#include <functional>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "inet/tcp_scenario.h"
#include "interrupter.h"
#include "net_diff.h"
#include "rump_test.h"

using namespace net_test;

namespace {

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
  // select and ppoll write the time left back, a relative clock_nanosleep
  // into rem: some, and less than the whole.
  auto some_left = [](time_t sec, long nsec, time_t of) { return (sec > 0 || nsec > 0) && sec < of; };
  {
    Interrupter<S> in({{kLateAt, [&] { SYS(write, p[1], "x", 1); }}});
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    timeval tv{30, 0};
    R(RAW(select, p[0] + 1, &rd, nullptr, nullptr, &tv));
    V("select: time left %s", some_left(tv.tv_sec, tv.tv_usec, 30) ? "yes" : "no");
  }
  SYS(read, p[0], &c, 1);
  {
    Interrupter<S> in({{kLateAt, [&] { SYS(write, p[1], "x", 1); }}});
    pollfd pf{p[0], POLLIN, 0};
    timespec ts{30, 0};
    R(RAW(ppoll, &pf, 1, &ts, nullptr, 8));
    V("ppoll: time left %s", some_left(ts.tv_sec, ts.tv_nsec, 30) ? "yes" : "no");
  }
  SYS(read, p[0], &c, 1);
  {
    Interrupter<S> in({});
    timespec ts{3, 0};
    R(SYS(nanosleep, &ts, nullptr));
    timespec rem{-1, -1};
    R(RAW(clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, &rem));
    V("clock_nanosleep: time left %s", some_left(rem.tv_sec, rem.tv_nsec, 3) ? "yes" : "no");
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

// A blocking connect to a listener whose backlog is full (backlog 0
// holds one connection: AF_UNIX waits for room, TCP's SYN is dropped and
// sent again after a second). Linux restarts it with SA_RESTART (the
// restarted TCP connect waits on for the handshake it began), and it ends
// once an accept makes room; without SA_RESTART it fails with EINTR, and
// a second blocking connect waits on (TCP) or starts again (AF_UNIX).
// With SO_SNDTIMEO it fails with EINTR whatever SA_RESTART says.
template <class S, bool Restart, class Addr>
void connect_full_backlog(Log& L, int fam, Addr& a, socklen_t al) {
  R(catch_usr1<S>(Restart));
  int ls = F(SYS(socket, fam, SOCK_STREAM, 0));
  R(SYS(bind, ls, reinterpret_cast<sockaddr*>(&a), al));
  R(SYS(listen, ls, 0));
  Addr to = a;
  socklen_t tl = al;
  R(SYS(getsockname, ls, reinterpret_cast<sockaddr*>(&to), &tl));
  sockaddr* tsa = reinterpret_cast<sockaddr*>(&to);
  int c1 = F(SYS(socket, fam, SOCK_STREAM, 0));
  R(SYS(connect, c1, tsa, tl));
  int c2 = F(SYS(socket, fam, SOCK_STREAM, 0));
  std::atomic<int> x{-1};
  {
    Interrupter<S> in({{finish_at(Restart), [&] { x = static_cast<int>(SYS(accept, ls, nullptr, nullptr)); }}});
    R(SYS(connect, c2, tsa, tl));
  }
  V("accepted by the step: %s", x >= 0 ? "yes" : "no");
  int s2 = -1;
  if (Restart) {
    // Connected already: EISCONN (after an accept: Linux's AF_UNIX
    // connect waits for room in the backlog before it looks).
    s2 = F(SYS(accept, ls, nullptr, nullptr));
    R(SYS(connect, c2, tsa, tl));
  } else {
    // Connects now, once c1's place is free.
    x = F(SYS(accept, ls, nullptr, nullptr));
    R(SYS(connect, c2, tsa, tl));
    s2 = F(SYS(accept, ls, nullptr, nullptr));
  }
  R(SYS(write, c2, "k", 1));
  char c = 0;
  R(SYS(read, s2, &c, 1));
  V("byte %c", c);
  // Full again (c3 takes the one place, c4 waits), with SO_SNDTIMEO.
  int c3 = F(SYS(socket, fam, SOCK_STREAM, 0));
  R(SYS(connect, c3, tsa, tl));
  int c4 = F(SYS(socket, fam, SOCK_STREAM, 0));
  timeval tv{30, 0};
  R(SYS(setsockopt, c4, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
  {
    Interrupter<S> in({});
    R(SYS(connect, c4, tsa, tl));
  }
  for (int f : {ls, c1, c2, x.load(), s2, c3, c4}) SYS(close, f);
}

template <class S, bool Restart>
void sc_connect_unix(Log& L, const Env& env) {
  sockaddr_un a;
  socklen_t al = path_addr(a, env, Restart ? "full-r" : "full");
  connect_full_backlog<S, Restart>(L, AF_UNIX, a, al);
}

template <class S, bool Restart>
void sc_connect_tcp(Log& L, const Env&) {
  sockaddr_in a = tcp_in4("127.0.0.1", 0);
  connect_full_backlog<S, Restart>(L, AF_INET, a, sizeof a);
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
TEST_CASE("restart diff: poll, ppoll, select, epoll_wait, nanosleep, clock_nanosleep, timed futex and rt_sigtimedwait "
          "give EINTR despite SA_RESTART",
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
TEST_CASE("restart diff: a blocking connect to a full backlog fails with EINTR without SA_RESTART",
          "[net][diff][signal]") {
  run_diff(&sc_connect_unix<K<false>, false>, &sc_connect_unix<K<true>, false>);
  run_diff(&sc_connect_tcp<K<false>, false>, &sc_connect_tcp<K<true>, false>);
}
TEST_CASE("restart diff: a blocking connect to a full backlog is restarted with SA_RESTART", "[net][diff][signal]") {
  run_diff(&sc_connect_unix<K<false>, true>, &sc_connect_unix<K<true>, true>);
  run_diff(&sc_connect_tcp<K<false>, true>, &sc_connect_tcp<K<true>, true>);
}
