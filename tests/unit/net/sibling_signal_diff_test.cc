// Differential scenarios of a signal that another thread of the process
// takes: the process gets a caught SIGUSR1 every millisecond (kill, from
// a thread that blocks every signal) while its main thread waits in a
// read and a second thread (rump: a second LWP) sleeps in a timed call.
// Linux gives a process-directed signal to one thread that does not block
// it, and the second thread, which blocks SIGUSR1, sleeps on undisturbed:
// its call ends with its event (or at its timeout), never with EINTR, and
// is not started over with its whole timeout. Host child with two threads
// against a rump process with two LWPs, log against log (net_diff.h).
//
// The second thread blocks SIGUSR1 because Linux may pick it otherwise:
// the main thread is preferred, but one that has a signal pending already
// and is not on a CPU is passed over (a loaded host did so). The handler
// has SA_NODEFER, so that the main thread never blocks SIGUSR1 (while in
// the handler); and no SA_RESTART, so that a call of the second thread
// that the signal wrongly interrupted fails with EINTR.
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>

#include <cstdint>
#include <functional>

#include "interrupter.h"
#include "net_diff.h"
#include "rump_test.h"

using namespace net_test;

namespace {

int64_t mono_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// What the second thread's call gave.
struct Outcome {
  long r = 0;
  int e = 0;
};

// Runs call on a second thread while SIGUSR1s go to the process, and
// steps (on the sender's thread) make its event come. The main thread
// reads a pipe that the second thread writes once its call returned;
// each SIGUSR1 it takes interrupts that read (EINTR), and it reads again.
template <class S>
Outcome with_signals_elsewhere(typename Interrupter<S>::Steps steps, std::function<long()> call) {
  int done[2];
  Outcome out;
  if (SYS(pipe, done) != 0) {
    out.r = -2;
    return out;
  }
  {
    // The second thread first: on the host, pthread_create blocks every
    // signal of its caller for a while.
    Sibling<S> second([&] {
      block<S>(bit(SIGUSR1));
      errno = 0;
      out.r = call();
      out.e = errno;
      SYS(write, done[1], "x", 1);
    });
    Interrupter<S> in(std::move(steps), true, SignalTo::kProcess);
    char c;
    while (SYS(read, done[0], &c, 1) < 0 && errno == EINTR) {
    }
    second.join();
  }
  SYS(close, done[0]);
  SYS(close, done[1]);
  return out;
}

#define OUTCOME(o) V("%s: %ld errno %d", #o, o.r, o.r < 0 ? o.e : 0)

// poll, ppoll, select and epoll_wait on a pipe, each with a 30 s timeout,
// readable after kFinishAt signals.
template <class S>
void sc_poll_family(Log& L, const Env&) {
  R(catch_usr1<S>(false, SA_NODEFER));
  int p[2];
  R(SYS(pipe, p));
  R(SYS(fcntl, p[0], F_SETFL, O_NONBLOCK));
  auto feed = [&] { SYS(write, p[1], "x", 1); };
  char c;
  Outcome o = with_signals_elsewhere<S>({{kFinishAt, feed}}, [&] {
    pollfd pf{p[0], POLLIN, 0};
    return SYS(poll, &pf, 1, 30000);
  });
  OUTCOME(o);
  SYS(read, p[0], &c, 1);
  o = with_signals_elsewhere<S>({{kFinishAt, feed}}, [&] {
    pollfd pf{p[0], POLLIN, 0};
    timespec ts{30, 0};
    return RAW(ppoll, &pf, 1, &ts, nullptr, 8);
  });
  OUTCOME(o);
  SYS(read, p[0], &c, 1);
  o = with_signals_elsewhere<S>({{kFinishAt, feed}}, [&] {
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    timeval tv{30, 0};
    return RAW(select, p[0] + 1, &rd, nullptr, nullptr, &tv);
  });
  OUTCOME(o);
  SYS(read, p[0], &c, 1);
  int ep = F(SYS(epoll_create1, 0));
  epoll_event ev{};
  ev.events = EPOLLIN;
  R(SYS(epoll_ctl, ep, EPOLL_CTL_ADD, p[0], &ev));
  o = with_signals_elsewhere<S>({{kFinishAt, feed}}, [&] {
    epoll_event got;
    return SYS(epoll_wait, ep, &got, 1, 30000);
  });
  OUTCOME(o);
  for (int f : {p[0], p[1], ep}) SYS(close, f);
}

// nanosleep and clock_nanosleep for 100 ms: 0, and not before the time.
template <class S>
void sc_sleeps(Log& L, const Env&) {
  R(catch_usr1<S>(false, SA_NODEFER));
  int64_t slept = 0;
  Outcome o = with_signals_elsewhere<S>({}, [&] {
    timespec ts{0, 100 * 1000 * 1000};
    int64_t t0 = mono_ms();
    long r = RAW(nanosleep, &ts, nullptr);
    slept = mono_ms() - t0;
    return r;
  });
  OUTCOME(o);
  V("nanosleep slept its time: %s", slept >= 100 ? "yes" : "no");
  o = with_signals_elsewhere<S>({}, [&] {
    timespec ts{0, 100 * 1000 * 1000};
    int64_t t0 = mono_ms();
    long r = RAW(clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, nullptr);
    slept = mono_ms() - t0;
    return r;
  });
  OUTCOME(o);
  V("clock_nanosleep slept its time: %s", slept >= 100 ? "yes" : "no");
}

// A futex wait with a 30 s timeout, woken after kFinishAt signals; recv
// with SO_RCVTIMEO 30 s, fed then; rt_sigtimedwait for SIGUSR2 (blocked)
// with a 30 s timeout, sent then; a read on a pipe (no timeout), fed then.
template <class S>
void sc_waits(Log& L, const Env&) {
  R(catch_usr1<S>(false, SA_NODEFER));
  static uint32_t word;
  word = 0;
  Outcome o = with_signals_elsewhere<S>({{kFinishAt,
                                          [&] {
                                            __atomic_store_n(&word, 1, __ATOMIC_SEQ_CST);
                                            futex_call<S>(&word, FUTEX_WAKE_PRIVATE, 1, nullptr);
                                          }}},
                                        [&] {
                                          timespec ts{30, 0};
                                          long r = futex_call<S>(&word, FUTEX_WAIT_PRIVATE, 0, &ts);
                                          // Woken, or the word changed before the wait: not interrupted.
                                          return r < 0 && errno == EAGAIN ? 0 : r;
                                        });
  OUTCOME(o);
  int s[2];
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, s));
  timeval tv{30, 0};
  R(SYS(setsockopt, s[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  char buf[8];
  o = with_signals_elsewhere<S>({{kFinishAt, [&] { SYS(write, s[1], "abc", 3); }}},
                                [&] { return SYS(recv, s[0], buf, sizeof buf, 0); });
  OUTCOME(o);
  R(block<S>(bit(SIGUSR2)));
  pid_t self = static_cast<pid_t>(SYS(getpid));
  o = with_signals_elsewhere<S>({{kFinishAt, [&] { SYS(kill, self, SIGUSR2); }}}, [&] {
    uint64_t set = bit(SIGUSR2);
    timespec ts{30, 0};
    return RAW(rt_sigtimedwait, reinterpret_cast<sigset_t*>(&set), nullptr, &ts, 8);
  });
  OUTCOME(o);
  int p[2];
  R(SYS(pipe, p));
  o = with_signals_elsewhere<S>({{kFinishAt, [&] { SYS(write, p[1], "x", 1); }}},
                                [&] { return SYS(read, p[0], buf, sizeof buf); });
  OUTCOME(o);
  for (int f : {s[0], s[1], p[0], p[1]}) SYS(close, f);
}

}  // namespace

TEST_CASE("sibling signal diff: poll, ppoll, select and epoll_wait sleep on while another thread takes signals",
          "[net][diff][signal]") {
  run_diff(&sc_poll_family<K<false>>, &sc_poll_family<K<true>>);
}
TEST_CASE("sibling signal diff: nanosleep and clock_nanosleep sleep their time while another thread takes signals",
          "[net][diff][signal]") {
  run_diff(&sc_sleeps<K<false>>, &sc_sleeps<K<true>>);
}
TEST_CASE("sibling signal diff: timed futex, SO_RCVTIMEO recv, rt_sigtimedwait and a pipe read wait on while another "
          "thread takes signals",
          "[net][diff][signal]") {
  run_diff(&sc_waits<K<false>>, &sc_waits<K<true>>);
}
