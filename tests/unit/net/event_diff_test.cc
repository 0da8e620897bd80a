// Differential scenarios of epoll and the event descriptors (eventfd,
// timerfd): host kernel and rump kernel, compared log against log
// (net_diff.h). Timers use short delays and blocking waits; what is
// compared never depends on how long anything took, except that a timer
// set to ten seconds has more than nine left a moment later.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

#include "net_diff.h"

using namespace net_test;

namespace {

template <class S>
long efd(unsigned v, int flags) {
  return S::kRump ? static_cast<long>(rump_sys_eventfd2(v, flags)) : static_cast<long>(::eventfd(v, flags));
}

// Waits (timeout ms) and logs the events: count, then (events, data) each.
template <class S>
long ep_log(Log& L, int line, int ep, int timeout, int max = 16) {
  epoll_event ev[16] = {};
  errno = 0;
  long n = SYS(epoll_wait, ep, ev, max, timeout);
  std::string s;
  for (long i = 0; i < n; i++) {
    char b[48];
    snprintf(b, sizeof b, " (%#x,%llu)", ev[i].events, static_cast<unsigned long long>(ev[i].data.u64));
    s += b;
  }
  L.add(line, "epoll_wait = %ld errno %d%s", n, n < 0 ? errno : 0, s.c_str());
  return n;
}
#define EPW(ep, timeout) ep_log<S>(L, __LINE__, ep, timeout)

template <class S>
long ctl(int ep, int op, int fd, uint32_t events, uint64_t data) {
  epoll_event e{};
  e.events = events;
  e.data.u64 = data;
  return SYS(epoll_ctl, ep, op, fd, &e);
}
#define CTL(ep, op, fd, ev, data) R(ctl<S>(ep, op, fd, ev, data))

template <class S>
void sc_eventfd(Log& L, const Env& env) {
  R(efd<S>(0, 0x4000000));
  int e = F(efd<S>(0, EFD_NONBLOCK | EFD_CLOEXEC));
  R(SYS(fcntl, e, F_GETFD, 0));
  uint64_t v = 0;
  R(SYS(read, e, &v, 8));  // EAGAIN
  pollfd pf{e, POLLIN | POLLOUT, 0};
  R(SYS(poll, &pf, 1, 0));
  V("revents %#x", pf.revents);
  v = 5;
  R(SYS(write, e, &v, 8));
  v = 7;
  R(SYS(write, e, &v, 8));
  R(SYS(poll, &pf, 1, 0));
  V("revents %#x", pf.revents);
  R(SYS(read, e, &v, 4));  // EINVAL
  R(SYS(read, e, &v, 8));
  V("read %llu", static_cast<unsigned long long>(v));
  v = ~uint64_t{0};
  R(SYS(write, e, &v, 8));  // EINVAL
  v = ~uint64_t{0} - 1;
  R(SYS(write, e, &v, 8));
  R(SYS(poll, &pf, 1, 0));
  V("full: revents %#x", pf.revents);
  v = 1;
  R(SYS(write, e, &v, 8));  // EAGAIN
  R(SYS(read, e, &v, 8));
  V("read %llu", static_cast<unsigned long long>(v));
  SYS(close, e);
  int s = F(efd<S>(3, EFD_SEMAPHORE | EFD_NONBLOCK));
  for (int i = 0; i < 4; i++) {
    v = 0;
    R(SYS(read, s, &v, 8));
    V("sem read %llu", static_cast<unsigned long long>(v));
  }
  SYS(close, s);
}

template <class S>
void sc_epoll_errors(Log& L, const Env& env) {
  R(SYS(epoll_create, 0));
  R(SYS(epoll_create1, 1));
  int ep = F(SYS(epoll_create1, EPOLL_CLOEXEC));
  R(SYS(fcntl, ep, F_GETFD, 0));
  int p[2];
  R(SYS(pipe, p));
  char path[96];
  snprintf(path, sizeof path, "%s/reg", env.dir);
  int reg = F(SYS(open, path, O_CREAT | O_RDWR, 0644));
  CTL(ep, EPOLL_CTL_ADD, reg, EPOLLIN, 0);        // EPERM
  CTL(ep, EPOLL_CTL_ADD, ep, EPOLLIN, 0);         // EINVAL
  CTL(p[0], EPOLL_CTL_ADD, p[1], EPOLLIN, 0);     // EINVAL: not an epoll
  CTL(ep, EPOLL_CTL_ADD, 999, EPOLLIN, 0);        // EBADF
  CTL(999, EPOLL_CTL_ADD, p[0], EPOLLIN, 0);      // EBADF
  CTL(ep, 99, p[0], EPOLLIN, 0);                  // EINVAL
  CTL(ep, EPOLL_CTL_MOD, p[0], EPOLLIN, 0);       // ENOENT
  CTL(ep, EPOLL_CTL_DEL, p[0], 0, 0);             // ENOENT
  CTL(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 1);
  CTL(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 1);       // EEXIST
  CTL(ep, EPOLL_CTL_ADD, p[1], EPOLLOUT | EPOLLEXCLUSIVE | EPOLLONESHOT, 2);  // EINVAL
  CTL(ep, EPOLL_CTL_ADD, p[1], EPOLLOUT | EPOLLEXCLUSIVE, 2);
  CTL(ep, EPOLL_CTL_MOD, p[1], EPOLLOUT, 2);      // EINVAL: exclusive
  CTL(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLEXCLUSIVE, 2);  // EINVAL
  epoll_event ev[1];
  R(SYS(epoll_wait, ep, ev, 0, 0));               // EINVAL
  R(SYS(epoll_wait, p[0], ev, 1, 0));             // EINVAL
  R(SYS(epoll_wait, 999, ev, 1, 0));              // EBADF
  // Nesting: a loop is ELOOP; an exclusive epoll target EINVAL.
  int ep2 = F(SYS(epoll_create1, 0));
  CTL(ep2, EPOLL_CTL_ADD, ep, EPOLLIN | EPOLLEXCLUSIVE, 3);  // EINVAL
  CTL(ep2, EPOLL_CTL_ADD, ep, EPOLLIN, 3);
  CTL(ep, EPOLL_CTL_ADD, ep2, EPOLLIN, 4);  // ELOOP
  CTL(ep, EPOLL_CTL_DEL, p[0], 0, 0);
  CTL(ep, EPOLL_CTL_DEL, p[0], 0, 0);  // ENOENT
  for (int f : {ep, ep2, p[0], p[1], reg}) SYS(close, f);
}

template <class S>
void sc_epoll_triggers(Log& L, const Env& env) {
  int ep = F(SYS(epoll_create1, 0));
  int a[2], b[2];
  R(SYS(pipe, a));
  R(SYS(pipe, b));
  CTL(ep, EPOLL_CTL_ADD, a[0], EPOLLIN, 10);
  CTL(ep, EPOLL_CTL_ADD, b[0], EPOLLIN | EPOLLET, 20);
  EPW(ep, 0);
  // Level-triggered: reported while it holds.
  R(SYS(write, a[1], "x", 1));
  EPW(ep, 0);
  EPW(ep, 0);
  char buf[16];
  R(SYS(read, a[0], buf, sizeof buf));
  EPW(ep, 0);
  // Edge-triggered: once per change.
  R(SYS(write, b[1], "y", 1));
  EPW(ep, -1);
  EPW(ep, 0);
  R(SYS(write, b[1], "z", 1));
  EPW(ep, 0);
  // Order: in the order they became ready.
  R(SYS(write, b[1], "1", 1));
  R(SYS(write, a[1], "2", 1));
  EPW(ep, 0);
  R(SYS(read, a[0], buf, sizeof buf));
  R(SYS(read, b[0], buf, sizeof buf));
  // One-shot: disarmed after it fired, until EPOLL_CTL_MOD.
  int e = F(efd<S>(0, EFD_NONBLOCK));
  CTL(ep, EPOLL_CTL_ADD, e, EPOLLIN | EPOLLONESHOT, 30);
  uint64_t one = 1;
  R(SYS(write, e, &one, 8));
  EPW(ep, 0);
  R(SYS(write, e, &one, 8));
  EPW(ep, 0);
  CTL(ep, EPOLL_CTL_MOD, e, EPOLLIN | EPOLLONESHOT, 31);
  EPW(ep, 0);
  EPW(ep, 0);
  // maxevents smaller than what is ready: the rest next time.
  CTL(ep, EPOLL_CTL_MOD, e, EPOLLIN, 32);
  R(SYS(write, a[1], "q", 1));
  epoll_event ev[4];
  R(SYS(epoll_wait, ep, ev, 1, 0));
  V("first (%#x,%llu)", ev[0].events, static_cast<unsigned long long>(ev[0].data.u64));
  R(SYS(epoll_wait, ep, ev, 1, 0));
  V("second (%#x,%llu)", ev[0].events, static_cast<unsigned long long>(ev[0].data.u64));
  CTL(ep, EPOLL_CTL_DEL, e, 0, 0);
  R(SYS(read, a[0], buf, sizeof buf));
  // Hang-up and RDHUP.
  int s[2];
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, s));
  CTL(ep, EPOLL_CTL_ADD, s[0], EPOLLIN | EPOLLRDHUP, 40);
  R(SYS(shutdown, s[1], SHUT_WR));
  EPW(ep, -1);
  SYS(close, s[1]);
  EPW(ep, 0);
  SYS(close, b[1]);
  EPW(ep, 0);
  // epoll_pwait and epoll_pwait2 with no mask.
  epoll_event pev[4];
  auto pwait = [&](int timeout) {
    return S::kRump ? rump_sys_epoll_pwait(ep, pev, 4, timeout, nullptr, 8) : ::epoll_pwait(ep, pev, 4, timeout, nullptr);
  };
  auto pwait2 = [&](const timespec* ts) {
    return S::kRump ? rump_sys_epoll_pwait2(ep, pev, 4, ts, nullptr, 8) : ::epoll_pwait2(ep, pev, 4, ts, nullptr);
  };
  R(pwait(0));
  timespec zero{0, 0};
  R(pwait2(&zero));
  timespec bad{0, 2000000000};
  R(pwait2(&bad));
  for (int f : {ep, a[0], a[1], b[0], e, s[0]}) SYS(close, f);
}

template <class S>
void sc_epoll_lifetime_nested(Log& L, const Env& env) {
  int ep = F(SYS(epoll_create1, 0));
  int p[2];
  R(SYS(pipe, p));
  int d = F(SYS(dup, p[0]));
  CTL(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 1);
  R(SYS(write, p[1], "x", 1));
  EPW(ep, 0);
  // Closing one descriptor of the description keeps the item ...
  SYS(close, p[0]);
  EPW(ep, 0);
  CTL(ep, EPOLL_CTL_DEL, d, 0, 0);  // ENOENT: the item is keyed by the old fd
  // ... the last one drops it.
  SYS(close, d);
  EPW(ep, 0);
  int q[2];
  R(SYS(pipe, q));
  // An epoll inside an epoll.
  int outer = F(SYS(epoll_create1, 0));
  CTL(outer, EPOLL_CTL_ADD, ep, EPOLLIN, 7);
  EPW(outer, 0);
  CTL(ep, EPOLL_CTL_ADD, q[0], EPOLLIN, 2);
  R(SYS(write, q[1], "y", 1));
  EPW(outer, -1);
  EPW(ep, 0);
  pollfd pf{ep, POLLIN, 0};
  R(SYS(poll, &pf, 1, 0));
  V("poll on the epoll %#x", pf.revents);
  for (int f : {outer, ep, p[1], q[0], q[1]}) SYS(close, f);
}

template <class S>
void sc_epoll_nested_recheck(Log& L, const Env& env) {
  int p[2];
  R(SYS(pipe, p));
  int in = F(SYS(epoll_create1, 0));
  int out = F(SYS(epoll_create1, 0));
  CTL(in, EPOLL_CTL_ADD, p[0], EPOLLIN, 1);
  CTL(out, EPOLL_CTL_ADD, in, EPOLLIN, 2);
  // Ready, then consumed before anyone looked: the outer sees nothing.
  char c;
  R(SYS(write, p[1], "x", 1));
  R(SYS(read, p[0], &c, 1));
  EPW(out, 0);
  pollfd pf{in, POLLIN, 0};
  R(SYS(poll, &pf, 1, 0));
  V("inner polled %#x", pf.revents);
  // Readiness propagates up; level-triggered it stays while it holds.
  R(SYS(write, p[1], "x", 1));
  EPW(out, 0);
  EPW(out, 0);
  // Edge-triggered on the outer: once; looking does not consume the
  // inner's event.
  CTL(out, EPOLL_CTL_MOD, in, EPOLLIN | EPOLLET, 3);
  EPW(out, 0);
  EPW(out, 0);
  EPW(in, 0);
  // A new event below is a new edge above.
  R(SYS(write, p[1], "y", 1));
  EPW(out, 0);
  EPW(out, 0);
  // A blocking wait on the outer wakes for an event two levels down.
  int top = F(SYS(epoll_create1, 0));
  CTL(top, EPOLL_CTL_ADD, out, EPOLLIN, 4);
  R(SYS(read, p[0], &c, 1));
  R(SYS(read, p[0], &c, 1));
  EPW(top, 0);
  R(SYS(write, p[1], "z", 1));
  EPW(top, -1);
  // An edge-triggered item in the inner epoll: the inner is readable
  // until the inner itself reports it.
  int q[2];
  R(SYS(pipe, q));
  CTL(in, EPOLL_CTL_DEL, p[0], 0, 0);
  CTL(in, EPOLL_CTL_ADD, q[0], EPOLLIN | EPOLLET, 5);
  CTL(out, EPOLL_CTL_MOD, in, EPOLLIN, 6);
  R(SYS(write, q[1], "w", 1));
  EPW(top, 0);
  EPW(out, 0);
  EPW(in, 0);
  EPW(out, 0);
  EPW(top, 0);
  for (int f : {p[0], p[1], q[0], q[1], in, out, top}) SYS(close, f);
}

// Linux allows a chain of at most five epolls, counting both those above
// the one added to and those below the one added; a loop is ELOOP at
// any length.
template <class S>
void sc_epoll_depth(Log& L, const Env& env) {
  int e[8], f[8];
  for (int i = 0; i < 8; i++) {
    e[i] = F(SYS(epoll_create1, 0));
    f[i] = F(SYS(epoll_create1, 0));
  }
  // Bottom up: e[i] into e[i + 1].
  for (int i = 0; i < 7; i++) CTL(e[i + 1], EPOLL_CTL_ADD, e[i], EPOLLIN, i);
  // Top down: f[i + 1] into f[i].
  for (int i = 0; i < 7; i++) CTL(f[i], EPOLL_CTL_ADD, f[i + 1], EPOLLIN, i);
  // Joining two chains in the middle.
  int g[6];
  for (int i = 0; i < 6; i++) g[i] = F(SYS(epoll_create1, 0));
  CTL(g[1], EPOLL_CTL_ADD, g[0], EPOLLIN, 0);
  CTL(g[2], EPOLL_CTL_ADD, g[1], EPOLLIN, 0);
  CTL(g[4], EPOLL_CTL_ADD, g[3], EPOLLIN, 0);
  CTL(g[3], EPOLL_CTL_ADD, g[2], EPOLLIN, 0);  // five: fine
  CTL(g[5], EPOLL_CTL_ADD, g[4], EPOLLIN, 0);  // six: ELOOP
  // Loops of two and three.
  CTL(g[0], EPOLL_CTL_ADD, g[1], EPOLLIN, 0);
  CTL(g[0], EPOLL_CTL_ADD, g[2], EPOLLIN, 0);
  // Already there: EEXIST.
  CTL(g[1], EPOLL_CTL_ADD, g[0], EPOLLIN, 0);
  // Closing the middle shortens the chain.
  SYS(close, g[2]);
  CTL(g[5], EPOLL_CTL_ADD, g[4], EPOLLIN, 0);
  for (int i = 0; i < 8; i++) {
    SYS(close, e[i]);
    SYS(close, f[i]);
  }
  for (int i : {0, 1, 3, 4, 5}) SYS(close, g[i]);
}

template <class S>
void sc_timerfd(Log& L, const Env& env) {
  R(SYS(timerfd_create, 99, 0));
  R(SYS(timerfd_create, CLOCK_MONOTONIC, 1));
  int t = F(SYS(timerfd_create, CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  uint64_t v = 0;
  R(SYS(read, t, &v, 8));  // EAGAIN
  itimerspec cur{};
  R(SYS(timerfd_gettime, t, &cur));
  V("disarmed %ld %ld", static_cast<long>(cur.it_value.tv_sec), static_cast<long>(cur.it_value.tv_nsec));
  itimerspec its{};
  its.it_value.tv_nsec = 2000000;
  R(SYS(timerfd_settime, t, 0, &its, nullptr));
  pollfd pf{t, POLLIN, 0};
  R(SYS(poll, &pf, 1, -1));
  V("revents %#x", pf.revents);
  R(SYS(read, t, &v, 4));  // EINVAL
  R(SYS(read, t, &v, 8));
  V("expirations %llu", static_cast<unsigned long long>(v));
  R(SYS(timerfd_gettime, t, &cur));
  V("after %ld %ld", static_cast<long>(cur.it_value.tv_sec), static_cast<long>(cur.it_value.tv_nsec));
  // Periodic, read through epoll.
  int ep = F(SYS(epoll_create1, 0));
  CTL(ep, EPOLL_CTL_ADD, t, EPOLLIN, 5);
  its.it_value = {0, 1000000};
  its.it_interval = {0, 1000000};
  R(SYS(timerfd_settime, t, 0, &its, nullptr));
  EPW(ep, -1);
  R(SYS(read, t, &v, 8));
  V("periodic expirations >= 1: %d", v >= 1);
  R(SYS(timerfd_gettime, t, &cur));
  V("interval %ld %ld", static_cast<long>(cur.it_interval.tv_sec), static_cast<long>(cur.it_interval.tv_nsec));
  // The old setting comes back; absolute times in the past expire at once.
  its.it_value = {10, 0};
  its.it_interval = {0, 0};
  R(SYS(timerfd_settime, t, 0, &its, nullptr));
  itimerspec old{};
  its.it_value = {1, 0};
  R(SYS(timerfd_settime, t, TFD_TIMER_ABSTIME, &its, &old));
  V("old: more than 9 s left %d, interval %ld", old.it_value.tv_sec >= 9, static_cast<long>(old.it_interval.tv_sec));
  R(SYS(poll, &pf, 1, -1));
  R(SYS(read, t, &v, 8));
  V("expirations %llu", static_cast<unsigned long long>(v));
  its.it_value = {0, 1000000000};
  R(SYS(timerfd_settime, t, 0, &its, nullptr));  // EINVAL
  R(SYS(timerfd_settime, t, 8, &its, nullptr));   // EINVAL
  int p[2];
  R(SYS(pipe, p));
  its.it_value = {1, 0};
  R(SYS(timerfd_settime, p[0], 0, &its, nullptr));  // EINVAL
  R(SYS(timerfd_gettime, p[0], &cur));              // EINVAL
  // A realtime timer at an absolute time a moment ago.
  int rt = F(SYS(timerfd_create, CLOCK_REALTIME, 0));
  timespec now{};
  SYS(clock_gettime, CLOCK_REALTIME, &now);
  its.it_value = now;
  R(SYS(timerfd_settime, rt, TFD_TIMER_ABSTIME, &its, nullptr));
  R(SYS(read, rt, &v, 8));
  V("realtime expirations %llu", static_cast<unsigned long long>(v));
  for (int f : {t, ep, p[0], p[1], rt}) SYS(close, f);
}

}  // namespace

#define DIFF(name) run_diff(&name<K<false>>, &name<K<true>>)

TEST_CASE("net diff: eventfd counter, semaphore mode, limits", "[net][diff][event]") { DIFF(sc_eventfd); }
TEST_CASE("net diff: epoll_create/epoll_ctl/epoll_wait error paths, ELOOP", "[net][diff][epoll]") {
  DIFF(sc_epoll_errors);
}
TEST_CASE("net diff: epoll level, edge, one-shot, RDHUP, HUP sequences", "[net][diff][epoll]") {
  DIFF(sc_epoll_triggers);
}
TEST_CASE("net diff: epoll items go with the description's last reference; nested epoll", "[net][diff][epoll]") {
  DIFF(sc_epoll_lifetime_nested);
}
TEST_CASE("net diff: timerfd one-shot, periodic, absolute, errors", "[net][diff][event]") { DIFF(sc_timerfd); }
TEST_CASE("net diff: an epoll inside an epoll is readable only while an item below still holds", "[net][diff][epoll]") {
  DIFF(sc_epoll_nested_recheck);
}
TEST_CASE("net diff: epoll nesting depth limit and loops are ELOOP", "[net][diff][epoll]") { DIFF(sc_epoll_depth); }
