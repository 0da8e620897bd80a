// Differential scenarios of socket timeouts and receive flags: SO_RCVTIMEO
// and SO_SNDTIMEO (EAGAIN when they run out, partial counts, a caught
// signal with SA_RESTART still EINTR), MSG_TRUNC and MSG_PEEK on each
// socket type, and recvmmsg's timeout (looked at only after each
// datagram). Host kernel and rump kernel, compared log against log
// (net_diff.h). Timeouts are short and only their outcome is compared.
#include <pthread.h>

#include <atomic>
#include <thread>

#include "net_diff.h"

using namespace net_test;

namespace {

void on_usr1(int) {}

// Sends SIGUSR1 to the calling thread (host) or its process (rump) every
// few milliseconds until the returned stop function is called, so a call
// that blocks is interrupted whenever it starts. Host: to the thread, so
// that the sender thread itself never takes it.
template <class S>
class SignalPump {
 public:
  SignalPump() {
    if (S::kRump) {
      pid_t pid = rump_sys_getpid();
      rump_kernel* k = rump_kernel_current();
      t_ = std::thread([this, pid, k] {
        rump_kernel_set_current(k);
        while (!stop_.load()) {
          rump_sys_kill(pid, SIGUSR1);
          usleep(5000);
        }
      });
    } else {
      pthread_t self = pthread_self();
      t_ = std::thread([this, self] {
        while (!stop_.load()) {
          pthread_kill(self, SIGUSR1);
          usleep(5000);
        }
      });
    }
  }
  ~SignalPump() {
    stop_.store(true);
    t_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread t_;
};

// A handler for SIGUSR1 with SA_RESTART.
template <class S>
int catch_usr1_restart() {
  if (S::kRump) {
    KSigaction a{reinterpret_cast<void*>(&on_usr1), SA_RESTART, nullptr, 0};
    return rump_sys_rt_sigaction(SIGUSR1, &a, nullptr, 8);
  }
  struct sigaction sa {};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  return sigaction(SIGUSR1, &sa, nullptr);
}

template <class S>
void sc_timeouts(Log& L, const Env& env) {
  int p[2];
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, p));
  char buf[64];
  timeval tv{0, 20000};
  R(SYS(setsockopt, p[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  // Nothing comes: EAGAIN, through recv, read and recvmsg alike.
  R(SYS(recv, p[0], buf, sizeof buf, 0));
  R(SYS(read, p[0], buf, sizeof buf));
  iovec iov{buf, sizeof buf};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  R(SYS(recvmsg, p[0], &mh, 0));
  // Part of what MSG_WAITALL asked for, then the timeout: the count.
  R(SYS(write, p[1], "abc", 3));
  R(SYS(recv, p[0], buf, 8, MSG_WAITALL));
  // An accept with a timeout.
  int ls = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un a;
  socklen_t al = path_addr(a, env, "lsn");
  R(SYS(bind, ls, sa(a), al));
  R(SYS(listen, ls, 1));
  R(SYS(setsockopt, ls, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  R(SYS(accept, ls, nullptr, nullptr));
  // A send that finds the buffer full, then a partial one.
  R(SYS(setsockopt, p[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
  static char big[1 << 20];
  long first = SYS(send, p[1], big, sizeof big, 0);
  V("partial send %d", first > 0 && first < static_cast<long>(sizeof big));
  R(SYS(send, p[1], big, sizeof big, 0));  // full: EAGAIN
  // Drain, then a send bigger than the buffer stops at the timeout with
  // what went.
  R(SYS(fcntl, p[0], F_SETFL, O_NONBLOCK));
  while (SYS(read, p[0], big, sizeof big) > 0) {
  }
  long again = SYS(send, p[1], big, sizeof big, 0);
  V("partial send after drain %d", again > 0 && again < static_cast<long>(sizeof big));
  while (SYS(read, p[0], big, sizeof big) > 0) {
  }
  R(SYS(fcntl, p[0], F_SETFL, 0));
  // A datagram sender waiting for room in a full receiver queue (a bound
  // receiver not connected back) times out.
  int d[2];
  d[0] = F(SYS(socket, AF_UNIX, SOCK_DGRAM, 0));
  d[1] = F(SYS(socket, AF_UNIX, SOCK_DGRAM, 0));
  sockaddr_un da;
  socklen_t dal = path_addr(da, env, "dgr");
  R(SYS(bind, d[0], sa(da), dal));
  R(SYS(connect, d[1], sa(da), dal));
  R(SYS(setsockopt, d[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
  int sent = 0;
  while (SYS(send, d[1], "x", 1, MSG_DONTWAIT) == 1 && sent < 1000) sent++;
  V("queued %d", sent);
  R(SYS(send, d[1], "x", 1, 0));  // EAGAIN after the timeout
  // A caught signal with SA_RESTART interrupts a call with a timeout:
  // EINTR, not a restart (Linux restarts only calls without one).
  R(catch_usr1_restart<S>());
  tv = timeval{30, 0};
  R(SYS(setsockopt, p[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  {
    SignalPump<S> pump;
    R(SYS(recv, p[0], buf, sizeof buf, 0));
  }
  // A signal after part of a MSG_WAITALL receive: the part.
  R(SYS(write, p[1], "xy", 2));
  {
    SignalPump<S> pump;
    R(SYS(recv, p[0], buf, sizeof buf, MSG_WAITALL));
  }
  for (int f : {p[0], p[1], ls, d[0], d[1]}) SYS(close, f);
}

template <class S>
void sc_trunc_peek(Log& L, const Env& env) {
  char buf[64];
  // A local stream ignores MSG_TRUNC: the bytes are copied and consumed.
  int s[2];
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, s));
  R(SYS(write, s[1], "hello world", 11));
  std::memset(buf, 0, sizeof buf);
  R(SYS(recv, s[0], buf, 4, MSG_TRUNC));
  V("got '%s'", buf);
  std::memset(buf, 0, sizeof buf);
  R(SYS(recv, s[0], buf, 3, MSG_PEEK | MSG_TRUNC));
  V("peeked '%s'", buf);
  R(SYS(recv, s[0], buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC));
  R(SYS(recv, s[0], buf, 0, MSG_TRUNC | MSG_DONTWAIT));
  std::memset(buf, 0, sizeof buf);
  R(SYS(recv, s[0], buf, sizeof buf, MSG_TRUNC));
  V("rest '%s'", buf);
  R(SYS(recv, s[0], buf, sizeof buf, MSG_TRUNC | MSG_DONTWAIT));  // EAGAIN
  // Peeks across writes see one stream; a read after them takes it all.
  R(SYS(write, s[1], "ab", 2));
  R(SYS(write, s[1], "cd", 2));
  R(SYS(recv, s[0], buf, 3, MSG_PEEK));
  R(SYS(recv, s[0], buf, sizeof buf, MSG_PEEK | MSG_WAITALL | MSG_DONTWAIT));
  std::memset(buf, 0, sizeof buf);
  R(SYS(recv, s[0], buf, sizeof buf, 0));
  V("all '%s'", buf);
  // Datagrams and seqpackets: MSG_TRUNC gives the real length, peeking or
  // not, and the record goes (or stays, peeking) whole.
  for (int type : {SOCK_DGRAM, SOCK_SEQPACKET}) {
    int d[2];
    R(SYS(socketpair, AF_UNIX, type, 0, d));
    R(SYS(write, d[1], "hello world", 11));
    R(SYS(write, d[1], "second", 6));
    R(SYS(recv, d[0], buf, 4, MSG_TRUNC | MSG_PEEK));
    R(SYS(recv, d[0], buf, 0, MSG_TRUNC | MSG_PEEK));
    R(SYS(recv, d[0], buf, 2, MSG_PEEK));
    iovec iov{buf, 5};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    R(SYS(recvmsg, d[0], &mh, MSG_TRUNC));
    V("flags %#x", mh.msg_flags);
    mh.msg_flags = 0;
    R(SYS(recvmsg, d[0], &mh, 0));
    V("flags %#x", mh.msg_flags);
    R(SYS(recv, d[0], buf, sizeof buf, MSG_TRUNC | MSG_DONTWAIT));  // EAGAIN
    SYS(close, d[0]);
    SYS(close, d[1]);
  }
  SYS(close, s[0]);
  SYS(close, s[1]);
}

template <class S>
long recvmmsg_of(int fd, mmsghdr* v, unsigned n, int flags, timespec* ts) {
  return S::kRump ? static_cast<long>(rump_sys_recvmmsg(fd, v, n, flags, ts))
                  : static_cast<long>(::recvmmsg(fd, v, n, flags, ts));
}

template <class S>
void sc_recvmmsg_timeout(Log& L, const Env& env) {
  int d[2];
  R(SYS(socketpair, AF_UNIX, SOCK_DGRAM, 0, d));
  char bufs[4][16];
  iovec iov[4];
  mmsghdr v[4];
  auto reset = [&] {
    std::memset(v, 0, sizeof v);
    for (int i = 0; i < 4; i++) {
      iov[i] = iovec{bufs[i], sizeof bufs[i]};
      v[i].msg_hdr.msg_iov = &iov[i];
      v[i].msg_hdr.msg_iovlen = 1;
    }
  };
  auto log_lens = [&](int line, long n) {
    for (long i = 0; i < n; i++) L.add(line, "msg %ld len %u", i, v[i].msg_len);
  };
  for (const char* m : {"one", "two", "three"}) R(SYS(send, d[1], m, std::strlen(m), 0));
  // A zero timeout is over after the first datagram: one, and zero left.
  reset();
  timespec ts{0, 0};
  long n = R(recvmmsg_of<S>(d[0], v, 4, 0, &ts));
  log_lens(__LINE__, n);
  V("left %ld %ld", static_cast<long>(ts.tv_sec), ts.tv_nsec);
  // A long one: what is there (MSG_DONTWAIT ends the batch with EAGAIN,
  // which is not kept), and the time left written back.
  reset();
  ts = timespec{50, 0};
  n = R(recvmmsg_of<S>(d[0], v, 4, MSG_DONTWAIT, &ts));
  log_lens(__LINE__, n);
  V("left below 50 s and above 0: %d", ts.tv_sec < 50 && (ts.tv_sec > 0 || ts.tv_nsec > 0));
  // Nothing there: EAGAIN, and the timeout is left as it was.
  reset();
  ts = timespec{7, 5};
  R(recvmmsg_of<S>(d[0], v, 4, MSG_DONTWAIT, &ts));
  V("untouched %ld %ld", static_cast<long>(ts.tv_sec), ts.tv_nsec);
  // MSG_WAITFORONE with a timeout: one datagram, then no waiting.
  R(SYS(send, d[1], "four", 4, 0));
  reset();
  ts = timespec{50, 0};
  n = R(recvmmsg_of<S>(d[0], v, 4, MSG_WAITFORONE, &ts));
  log_lens(__LINE__, n);
  // Bad timeouts.
  ts = timespec{0, 1000000000};
  R(recvmmsg_of<S>(d[0], v, 4, MSG_DONTWAIT, &ts));  // EINVAL
  ts = timespec{-1, 0};
  R(recvmmsg_of<S>(d[0], v, 4, MSG_DONTWAIT, &ts));  // EINVAL
  R(recvmmsg_of<S>(d[0], v, 0, MSG_DONTWAIT, nullptr));
  R(recvmmsg_of<S>(d[1] + 100, v, 4, MSG_DONTWAIT, nullptr));  // EBADF
  SYS(close, d[0]);
  SYS(close, d[1]);
}

}  // namespace

#define DIFF(name) run_diff(&name<K<false>>, &name<K<true>>)

TEST_CASE("net diff: SO_RCVTIMEO/SO_SNDTIMEO give EAGAIN or the partial count; a signal is EINTR despite SA_RESTART",
          "[net][diff]") {
  DIFF(sc_timeouts);
}
TEST_CASE("net diff: MSG_TRUNC and MSG_PEEK on stream, datagram and seqpacket sockets", "[net][diff]") {
  DIFF(sc_trunc_peek);
}
TEST_CASE("net diff: recvmmsg looks at its timeout after each datagram and writes back the time left",
          "[net][diff]") {
  DIFF(sc_recvmmsg_timeout);
}
