// signalfd and signalfd4: flags, the mask of an existing descriptor,
// struct signalfd_siginfo records, EAGAIN and EINVAL, poll and epoll
// readiness; differential against the host kernel, plus a reader that
// another LWP wakes.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

#include <atomic>
#include <thread>

#include "sig_diff.h"

namespace {

using sig_test::bit;
using sig_test::KSigaction;
using sig_test::Log;
using sig_test::queue_info;
using sig_test::RepeatSender;

constexpr int kRt = 40;

template <class S>
long set_mask(int how, uint64_t set) {
  return SYS(rt_sigprocmask, how, reinterpret_cast<sigset_t*>(&set), nullptr, 8);
}
template <class S>
uint64_t pending() {
  uint64_t p = 0;
  SYS(rt_sigpending, reinterpret_cast<sigset_t*>(&p), 8);
  return p;
}
template <class S>
long sfd(int fd, uint64_t mask, int flags) {
  return SYS(signalfd4, fd, reinterpret_cast<sigset_t*>(&mask), 8, flags);
}
void noop_handler(int) {}
template <class S>
long set_handler(int sig) {
  if (S::kRump) {
    KSigaction a{0x1000, 0, 0, 0};
    return SYS(rt_sigaction, sig, &a, nullptr, 8);
  }
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = noop_handler;
  return sigaction(sig, &sa, nullptr);
}

// Reads up to n records and logs each.
template <class S>
long read_recs(Log& L, int line, int fd, size_t n, size_t extra = 0) {
  signalfd_siginfo recs[4];
  std::memset(recs, 0x5a, sizeof recs);
  errno = 0;
  long r = SYS(read, fd, recs, n * sizeof(signalfd_siginfo) + extra);
  if (r < 0) {
    L.add(line, "read = -1 errno %d", errno);
    return r;
  }
  long me = SYS(getpid);
  long uid = SYS(getuid);
  L.add(line, "read = %ld", r);
  for (long i = 0; i < r / static_cast<long>(sizeof(signalfd_siginfo)); i++) {
    const signalfd_siginfo& s = recs[i];
    L.add(line, "  signo %u code %d errno %d pid %s uid %s int %d ptr %#llx status %d", s.ssi_signo, s.ssi_code,
          s.ssi_errno, s.ssi_pid == static_cast<uint32_t>(me) ? "self" : s.ssi_pid == 0 ? "0" : "other",
          s.ssi_uid == static_cast<uint32_t>(uid) ? "me" : "other", s.ssi_int,
          static_cast<unsigned long long>(s.ssi_ptr), s.ssi_status);
  }
  return r;
}
#define READ(fd, n) read_recs<S>(L, __LINE__, fd, n)

template <class S>
long poll_in(int fd) {
  pollfd p{fd, POLLIN | POLLOUT | POLLRDNORM, 0};
  long r = SYS(poll, &p, 1, 0);
  return r < 0 ? r : r * 1000 + p.revents;
}

template <class S>
void sc_signalfd(Log& L) {
  long me = SYS(getpid);
  R(set_mask<S>(SIG_BLOCK, bit(SIGUSR1) | bit(SIGUSR2) | bit(kRt) | bit(SIGCHLD)));
  // Errors: size, flags, a descriptor that isn't one, a closed one.
  uint64_t m = bit(SIGUSR1);
  R(SYS(signalfd4, -1, reinterpret_cast<sigset_t*>(&m), 4, 0));
  R(SYS(signalfd4, -1, reinterpret_cast<sigset_t*>(&m), 16, 0));
  R(SYS(signalfd4, -1, reinterpret_cast<sigset_t*>(&m), 8, 1));
  R(SYS(signalfd4, -1, nullptr, 8, 0));
  int p[2];
  R(SYS(pipe2, p, 0));
  R(sfd<S>(p[0], m, 0));
  R(sfd<S>(999, m, 0));
  // SFD_NONBLOCK and SFD_CLOEXEC on a new one.
  int fd = static_cast<int>(sfd<S>(-1, bit(SIGUSR1) | bit(kRt) | bit(SIGKILL), SFD_NONBLOCK | SFD_CLOEXEC));
  V("fd ok %d", fd >= 0);
  R(SYS(fcntl, fd, F_GETFD));
  R(SYS(fcntl, fd, F_GETFL) & (O_NONBLOCK | O_ACCMODE));
  int bfd = static_cast<int>(sfd<S>(-1, bit(SIGUSR2), 0));
  R(SYS(fcntl, bfd, F_GETFD));
  R(SYS(fcntl, bfd, F_GETFL) & (O_NONBLOCK | O_ACCMODE));
  // Nothing pending: EAGAIN; a buffer shorter than a record: EINVAL.
  READ(fd, 1);
  R(SYS(read, fd, nullptr, 127));
  R(poll_in<S>(fd));
  // kill: a record with this process as sender.
  R(SYS(kill, me, SIGUSR1));
  R(poll_in<S>(fd));
  R(read_recs<S>(L, __LINE__, fd, 1, 100));  // 228 bytes: one record
  R(poll_in<S>(fd));
  // Several at once, in dequeue order; real-time ones with their values.
  for (int v : {1, 2}) {
    siginfo_t q = queue_info(SI_QUEUE, static_cast<pid_t>(me), static_cast<uid_t>(SYS(getuid)), v);
    R(SYS(rt_sigqueueinfo, me, kRt, &q));
  }
  long tid = SYS(gettid);
  R(SYS(tkill, tid, SIGUSR1));
  READ(fd, 4);
  // A signal outside the mask is not read, and stays pending.
  R(SYS(kill, me, SIGUSR2));
  READ(fd, 1);
  V("pending %#llx", static_cast<unsigned long long>(pending<S>()));
  // Changing the mask of the existing descriptor (flags unchanged).
  R(sfd<S>(fd, bit(SIGUSR2), 0) == fd);
  R(SYS(fcntl, fd, F_GETFL) & O_NONBLOCK);
  R(poll_in<S>(fd));
  READ(fd, 2);
  // The blocking one reads without waiting when something is pending.
  R(SYS(kill, me, SIGUSR2));
  READ(bfd, 1);
  // A caught signal the process doesn't block is delivered, never read.
  R(set_handler<S>(SIGUSR2));
  R(set_mask<S>(SIG_UNBLOCK, bit(SIGUSR2)));
  R(SYS(kill, me, SIGUSR2));
  R(sfd<S>(fd, bit(SIGUSR2), 0) == fd);
  READ(fd, 1);
  // epoll: not ready, ready after a signal, not ready once read.
  int ep = static_cast<int>(SYS(epoll_create1, 0));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 77;
  R(sfd<S>(fd, bit(SIGUSR1), 0) == fd);
  R(SYS(epoll_ctl, ep, EPOLL_CTL_ADD, fd, &ev));
  epoll_event out[2];
  R(SYS(epoll_wait, ep, out, 2, 0));
  R(SYS(kill, me, SIGUSR1));
  R(SYS(epoll_wait, ep, out, 2, 0));
  V("event %#x data %llu", out[0].events, static_cast<unsigned long long>(out[0].data.u64));
  READ(fd, 1);
  R(SYS(epoll_wait, ep, out, 2, 0));
  // A blocked, default-ignored SIGCHLD is read too.
  R(sfd<S>(fd, bit(SIGCHLD), 0) == fd);
  R(SYS(kill, me, SIGCHLD));
  READ(fd, 1);
  R(SYS(close, ep));
  R(SYS(close, fd));
  R(SYS(close, bfd));
  R(SYS(close, p[0]));
  R(SYS(close, p[1]));
}

}  // namespace

TEST_CASE("signalfd diff: flags, mask updates, records, EAGAIN/EINVAL, poll and epoll", "[signalfd][diff]") {
  DIFF(sc_signalfd);
}

TEST_CASE("signalfd: libc's form rump_sys_signalfd(fd, mask, flags)", "[signalfd]") {
  rump_test::KernelUp up;
  [[maybe_unused]] rump_test::Kid p = rump_test::fork_and_switch();
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR1);
  int fd = rump_sys_signalfd(-1, &m, SFD_NONBLOCK);
  REQUIRE(fd >= 0);
  CHECK((rump_sys_fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
  CHECK(rump_sys_signalfd(fd, &m, 0) == fd);
  CHECK_ERRNO(EINVAL, rump_sys_signalfd(-1, &m, 0x10));
  CHECK(rump_sys_close(fd) == 0);
}

TEST_CASE("signalfd: a blocking read wakes for a signal another LWP sends", "[signalfd][concurrency]") {
  rump_test::KernelUp up;
  [[maybe_unused]] rump_test::Kid p = rump_test::fork_and_switch();
  uint64_t set = bit(SIGUSR1) | bit(kRt);
  REQUIRE(rump_sys_rt_sigprocmask(SIG_BLOCK, reinterpret_cast<sigset_t*>(&set), nullptr, 8) == 0);
  int fd = rump_sys_signalfd4(-1, reinterpret_cast<sigset_t*>(&set), 8, 0);
  REQUIRE(fd >= 0);
  pid_t me = rump_sys_getpid();
  pid_t reader = rump_sys_gettid();
  siginfo_t q = queue_info(SI_QUEUE, me, 0, 1234);
  RepeatSender sender(up.k, me, false, [&] { rump_sys_rt_tgsigqueueinfo(me, reader, kRt, &q); });
  signalfd_siginfo rec;
  std::memset(&rec, 0, sizeof rec);
  long r = rump_sys_read(fd, &rec, sizeof rec);
  sender.stop();
  CHECK(r == static_cast<long>(sizeof rec));
  CHECK(rec.ssi_signo == static_cast<uint32_t>(kRt));
  CHECK(rec.ssi_code == SI_QUEUE);
  CHECK(rec.ssi_int == 1234);
  CHECK(rec.ssi_pid == static_cast<uint32_t>(me));
  CHECK(rump_sys_close(fd) == 0);
}

TEST_CASE("signalfd: poll sleeping on a signalfd wakes when another LWP sends", "[signalfd][concurrency]") {
  rump_test::KernelUp up;
  [[maybe_unused]] rump_test::Kid p = rump_test::fork_and_switch();
  uint64_t set = bit(SIGUSR1);
  REQUIRE(rump_sys_rt_sigprocmask(SIG_BLOCK, reinterpret_cast<sigset_t*>(&set), nullptr, 8) == 0);
  int fd = rump_sys_signalfd4(-1, reinterpret_cast<sigset_t*>(&set), 8, SFD_NONBLOCK);
  REQUIRE(fd >= 0);
  pid_t me = rump_sys_getpid();
  std::atomic<bool> go{false};
  std::thread sender([&] {
    rump_kernel_set_current(up.k);
    if (rump_lwproc_newlwp(me) != 0) return;
    uint64_t all = ~uint64_t{0};
    rump_sys_rt_sigprocmask(SIG_BLOCK, reinterpret_cast<sigset_t*>(&all), nullptr, 8);
    while (!go.load()) usleep(100);
    rump_sys_kill(me, SIGUSR1);
    rump_lwproc_releaselwp();
  });
  go = true;
  // Waits without a timeout: only the wake-up ends it (a signal sent
  // before the poll sleeps makes it ready at once).
  pollfd pf{fd, POLLIN, 0};
  long r = rump_sys_poll(&pf, 1, -1);
  sender.join();
  CHECK(r == 1);
  CHECK(pf.revents == POLLIN);
  signalfd_siginfo rec;
  CHECK(rump_sys_read(fd, &rec, sizeof rec) == static_cast<long>(sizeof rec));
  CHECK(rec.ssi_signo == static_cast<uint32_t>(SIGUSR1));
  CHECK(rec.ssi_code == SI_USER);
  CHECK(rump_sys_close(fd) == 0);
}
