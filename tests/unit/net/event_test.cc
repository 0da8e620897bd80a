// Event descriptors against the rump kernel alone: what the host cannot
// show without setting its own clock (a timerfd canceled when the
// realtime clock is set) and epoll under concurrent change on both
// virtual CPUs.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>

#include <atomic>
#include <thread>
#include <vector>

#include "net_diff.h"

namespace {

constexpr int64_t kSec = 1000000000;

int64_t rump_realtime() {
  timespec ts{};
  REQUIRE(rump_sys_clock_gettime(CLOCK_REALTIME, &ts) == 0);
  return ts.tv_sec * kSec + ts.tv_nsec;
}

int set_rump_realtime(int64_t ns) {
  timespec ts{ns / kSec, ns % kSec};
  return rump_sys_clock_settime(CLOCK_REALTIME, &ts);
}

// Arms t at the absolute realtime `at`.
int arm_abs(int t, int64_t at, int flags) {
  itimerspec its{};
  its.it_value = timespec{at / kSec, at % kSec};
  return rump_sys_timerfd_settime(t, TFD_TIMER_ABSTIME | flags, &its, nullptr);
}

}  // namespace

TEST_CASE("timerfd: setting the realtime clock cancels a TFD_TIMER_CANCEL_ON_SET timer (ECANCELED)", "[net][event]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    uint64_t v = 0;
    int64_t now = rump_realtime();
    int cancel = rump_sys_timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    int plain_abs = rump_sys_timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    int relative = rump_sys_timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    int mono = rump_sys_timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    REQUIRE(cancel >= 0);
    REQUIRE(arm_abs(cancel, now + 1000 * kSec, TFD_TIMER_CANCEL_ON_SET) == 0);
    REQUIRE(arm_abs(plain_abs, now + 1000 * kSec, 0) == 0);
    // CANCEL_ON_SET counts only with ABSTIME on a realtime timer.
    itimerspec rel{};
    rel.it_value = timespec{1000, 0};
    REQUIRE(rump_sys_timerfd_settime(relative, TFD_TIMER_CANCEL_ON_SET, &rel, nullptr) == 0);
    timespec mono_now{};
    REQUIRE(rump_sys_clock_gettime(CLOCK_MONOTONIC, &mono_now) == 0);
    itimerspec mono_abs{};
    mono_abs.it_value = timespec{mono_now.tv_sec + 1000, 0};
    REQUIRE(rump_sys_timerfd_settime(mono, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &mono_abs, nullptr) == 0);
    CHECK_ERRNO(EAGAIN, rump_sys_read(cancel, &v, 8));

    // Set the clock a minute forward: the canceled timer is readable and
    // its read is ECANCELED, once.
    REQUIRE(set_rump_realtime(now + 60 * kSec) == 0);
    CHECK(rump_realtime() >= now + 60 * kSec);
    pollfd pf{cancel, POLLIN, 0};
    CHECK(rump_sys_poll(&pf, 1, 0) == 1);
    CHECK(pf.revents == POLLIN);
    CHECK_ERRNO(ECANCELED, rump_sys_read(cancel, &v, 8));
    CHECK_ERRNO(EAGAIN, rump_sys_read(cancel, &v, 8));
    // It stays armed, for the realtime it named.
    itimerspec cur{};
    REQUIRE(rump_sys_timerfd_gettime(cancel, &cur) == 0);
    CHECK(cur.it_value.tv_sec > 0);
    CHECK(cur.it_value.tv_sec < 1000 - 30);
    // The others were not canceled.
    for (int t : {plain_abs, relative, mono}) CHECK_ERRNO(EAGAIN, rump_sys_read(t, &v, 8));

    // An absolute realtime timer whose time the clock jumps past expires.
    REQUIRE(set_rump_realtime(now + 2000 * kSec) == 0);
    pf.fd = plain_abs;
    CHECK(rump_sys_poll(&pf, 1, -1) == 1);
    CHECK(rump_sys_read(plain_abs, &v, 8) == 8);
    CHECK(v == 1);
    // The canceled one: the next setting counts again, and settime clears
    // a cancel nobody read.
    CHECK_ERRNO(ECANCELED, rump_sys_read(cancel, &v, 8));
    REQUIRE(arm_abs(cancel, rump_realtime() + 1000 * kSec, TFD_TIMER_CANCEL_ON_SET) == 0);
    REQUIRE(set_rump_realtime(now) == 0);
    REQUIRE(arm_abs(cancel, now + 1000 * kSec, TFD_TIMER_CANCEL_ON_SET) == 0);
    CHECK_ERRNO(EAGAIN, rump_sys_read(cancel, &v, 8));
    for (int t : {cancel, plain_abs, relative, mono}) rump_sys_close(t);
  });
}

TEST_CASE("timerfd: a blocked read and an epoll wait wake when the clock is set", "[net][event][concurrency]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up({.ncpu = 2});
    int64_t now = rump_realtime();
    // One timer for the reader, one for the waiter: a read consumes the
    // cancel, which the waiter must still see.
    int t = rump_sys_timerfd_create(CLOCK_REALTIME, 0);
    int t2 = rump_sys_timerfd_create(CLOCK_REALTIME, 0);
    REQUIRE(arm_abs(t, now + 1000 * kSec, TFD_TIMER_CANCEL_ON_SET) == 0);
    REQUIRE(arm_abs(t2, now + 1000 * kSec, TFD_TIMER_CANCEL_ON_SET) == 0);
    int ep = rump_sys_epoll_create1(0);
    epoll_event ev{EPOLLIN, {}};
    ev.data.u64 = 7;
    REQUIRE(rump_sys_epoll_ctl(ep, EPOLL_CTL_ADD, t2, &ev) == 0);
    std::atomic<long> read_r{0}, read_errno{0}, wait_r{0};
    // The reader and the waiter share this thread's process (init).
    std::thread reader([&] {
      rump_kernel_set_current(up.k);
      uint64_t v;
      long r = rump_sys_read(t, &v, 8);
      read_errno = errno;
      read_r = r;
    });
    std::thread waiter([&] {
      rump_kernel_set_current(up.k);
      epoll_event out{};
      long r = rump_sys_epoll_wait(ep, &out, 1, -1);
      wait_r = r == 1 && out.data.u64 == 7 ? 1 : -1;
    });
    // Whether they are asleep yet or not, the setting reaches them.
    REQUIRE(set_rump_realtime(now + 5 * kSec) == 0);
    reader.join();
    waiter.join();
    CHECK(read_r.load() == -1);
    CHECK(read_errno.load() == ECANCELED);
    CHECK(wait_r.load() == 1);
    uint64_t v;
    CHECK_ERRNO(ECANCELED, rump_sys_read(t2, &v, 8));
    rump_sys_close(ep);
    rump_sys_close(t);
    rump_sys_close(t2);
  });
}

TEST_CASE("clock_settime and settimeofday: only CLOCK_REALTIME, values checked, root only", "[net][event]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    timespec ts{100, 0};
    CHECK_ERRNO(EINVAL, rump_sys_clock_settime(CLOCK_MONOTONIC, &ts));
    CHECK_ERRNO(EINVAL, rump_sys_clock_settime(99, &ts));
    CHECK_ERRNO(EFAULT, rump_sys_clock_settime(CLOCK_REALTIME, reinterpret_cast<timespec*>(8)));
    timespec bad{1, 1000000000};
    CHECK_ERRNO(EINVAL, rump_sys_clock_settime(CLOCK_REALTIME, &bad));
    timeval tv{1000000, 5};
    REQUIRE(rump_sys_settimeofday(&tv, nullptr) == 0);
    timeval got{};
    REQUIRE(rump_sys_gettimeofday(&got, nullptr) == 0);
    CHECK(got.tv_sec >= 1000000);
    CHECK(got.tv_sec < 1000000 + 600);
    timeval badtv{1, 1000000};
    CHECK_ERRNO(EINVAL, rump_sys_settimeofday(&badtv, nullptr));
    struct timezone tz{24 * 60, 0};
    CHECK_ERRNO(EINVAL, rump_sys_settimeofday(nullptr, &tz));
    // Another kernel's clock is its own.
    {
      rump_test::KernelUp other;
      timeval o{};
      REQUIRE(rump_sys_gettimeofday(&o, nullptr) == 0);
      CHECK(o.tv_sec > 1000000 + 600);
    }
    rump_kernel_set_current(up.k);
    // A non-root process: EPERM.
    rump_test::Kid kid = rump_test::fork_kid();
    rump_lwproc_switch(kid.l);
    REQUIRE(rump_sys_setresuid(1000, 1000, 1000) == 0);
    CHECK_ERRNO(EPERM, rump_sys_clock_settime(CLOCK_REALTIME, &ts));
    CHECK_ERRNO(EPERM, rump_sys_settimeofday(&tv, nullptr));
    rump_lwproc_switch(nullptr);
  });
}

namespace {

std::atomic<int> g_epoll_failures{0};
#define ECHECK(expr)                                  \
  do {                                                \
    if (!(expr)) g_epoll_failures.fetch_add(1);       \
  } while (0)

}  // namespace

TEST_CASE("epoll: waiters, ctl callers, wakers and closers race on both CPUs", "[net][epoll][concurrency]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up({.ncpu = 2});
    g_epoll_failures = 0;
    constexpr int kFds = 16, kOps = 1500;
    int ep = rump_sys_epoll_create1(0);
    int stop = rump_sys_eventfd2(0, EFD_NONBLOCK);
    REQUIRE(ep >= 0);
    epoll_event sev{EPOLLIN, {}};
    sev.data.u64 = 1000;
    REQUIRE(rump_sys_epoll_ctl(ep, EPOLL_CTL_ADD, stop, &sev) == 0);
    int fds[kFds];
    for (int i = 0; i < kFds; i++) {
      fds[i] = rump_sys_eventfd2(0, EFD_NONBLOCK);
      REQUIRE(fds[i] >= 0);
    }
    std::atomic<long> events_seen{0};
    std::vector<std::thread> ts;
    // Waiters: take what is ready, consume it; end when stop is readable.
    for (int w = 0; w < 2; w++) {
      ts.emplace_back([&] {
        rump_kernel_set_current(up.k);
        for (;;) {
          epoll_event out[8];
          long n = rump_sys_epoll_wait(ep, out, 8, -1);
          ECHECK(n > 0 || (n < 0 && errno == EINTR));
          bool done = false;
          for (long i = 0; i < n; i++) {
            uint64_t d = out[i].data.u64;
            if (d == 1000) {
              done = true;
              continue;
            }
            ECHECK(d < kFds);
            ECHECK(out[i].events & (EPOLLIN | EPOLLOUT));
            uint64_t v;
            rump_sys_read(fds[d % kFds], &v, 8);  // another waiter may have taken it
            events_seen++;
          }
          if (done) return;
        }
      });
    }
    // Ctl callers: add, modify (level, edge, one-shot) and delete.
    for (int c = 0; c < 2; c++) {
      ts.emplace_back([&, c] {
        rump_kernel_set_current(up.k);
        unsigned seed = 12345u + c;
        for (int i = 0; i < kOps; i++) {
          seed = seed * 1103515245u + 12345u;
          int k = (seed >> 8) % kFds;
          epoll_event ev{};
          ev.data.u64 = k;
          static constexpr uint32_t kModes[] = {EPOLLIN, EPOLLIN | EPOLLET, EPOLLIN | EPOLLONESHOT, EPOLLIN | EPOLLOUT};
          ev.events = kModes[(seed >> 16) % 4];
          int op = (seed >> 20) % 3 == 0 ? EPOLL_CTL_DEL : (seed >> 20) % 3 == 1 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
          long r = rump_sys_epoll_ctl(ep, op, fds[k], &ev);
          int e = errno;
          if (op == EPOLL_CTL_ADD) ECHECK(r == 0 || e == EEXIST);
          else ECHECK(r == 0 || e == ENOENT);
        }
      });
    }
    // Wakers: make the descriptors ready.
    for (int m = 0; m < 2; m++) {
      ts.emplace_back([&, m] {
        rump_kernel_set_current(up.k);
        for (int i = 0; i < kOps; i++) {
          uint64_t one = 1;
          ECHECK(rump_sys_write(fds[(i * 7 + m) % kFds], &one, 8) == 8);
        }
      });
    }
    // A closer: descriptors of its own, watched, made ready and closed
    // while the waiters may be looking at them (their items go with the
    // last close).
    ts.emplace_back([&] {
      rump_kernel_set_current(up.k);
      for (int i = 0; i < kOps / 3; i++) {
        int e = rump_sys_eventfd2(0, EFD_NONBLOCK);
        ECHECK(e >= 0);
        epoll_event ev{EPOLLIN, {}};
        ev.data.u64 = 2000;  // never reported: ECHECK(d < kFds) would fail ...
        ev.events = 0;       // ... so it is watched for nothing but ERR/HUP
        ECHECK(rump_sys_epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev) == 0);
        uint64_t one = 1;
        ECHECK(rump_sys_write(e, &one, 8) == 8);
        ECHECK(rump_sys_close(e) == 0);
      }
    });
    for (size_t i = 2; i < ts.size(); i++) ts[i].join();
    uint64_t one = 1;
    REQUIRE(rump_sys_write(stop, &one, 8) == 8);
    ts[0].join();
    ts[1].join();
    CHECK(g_epoll_failures.load() == 0);
    CHECK(events_seen.load() > 0);
    // Afterwards the epoll is consistent: every descriptor watched level-
    // triggered and made ready is reported, once each.
    for (int i = 0; i < kFds; i++) {
      rump_sys_epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], nullptr);
      epoll_event ev{EPOLLIN, {}};
      ev.data.u64 = i;
      REQUIRE(rump_sys_epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) == 0);
      REQUIRE(rump_sys_write(fds[i], &one, 8) == 8);
    }
    REQUIRE(rump_sys_epoll_ctl(ep, EPOLL_CTL_DEL, stop, nullptr) == 0);
    epoll_event out[32];
    long n = rump_sys_epoll_wait(ep, out, 32, 0);
    CHECK(n == kFds);
    uint32_t seen = 0;
    for (long i = 0; i < n; i++) seen |= 1u << out[i].data.u64;
    CHECK(seen == (1u << kFds) - 1);
    for (int i = 0; i < kFds; i++) rump_sys_close(fds[i]);
    rump_sys_close(stop);
    rump_sys_close(ep);
  });
}
