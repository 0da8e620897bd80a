// poll, ppoll, select, pselect6: readiness of pipes, FIFOs, files and
// devices; timeouts; POLLHUP/POLLERR/POLLNVAL (a FIFO's hang-up compared
// with the host's); EBADF; EINTR.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <rump/rump.h>
#include <rump/rumpvfs.h>

#include "rump_test.h"

using rump_test::fork_and_switch;
using rump_test::kHandler;
using rump_test::kIgn;
using rump_test::kill_later;
using rump_test::KernelUp;
using rump_test::Kid;
using rump_test::set_action;

namespace {
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

TEST_CASE("poll: pipe readiness, POLLHUP when the writer goes, POLLERR when the reader goes", "[poll]") {
  KernelUp up;
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  pollfd fds[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
  CHECK(rump_sys_poll(fds, 2, 0) == 1);
  CHECK(fds[0].revents == 0);
  CHECK(fds[1].revents == POLLOUT);
  REQUIRE(rump_sys_write(p[1], "x", 1) == 1);
  CHECK(rump_sys_poll(fds, 2, 0) == 2);
  CHECK(fds[0].revents == POLLIN);
  rump_sys_close(p[1]);
  pollfd r{p[0], POLLIN, 0};
  CHECK(rump_sys_poll(&r, 1, 0) == 1);
  CHECK(r.revents == (POLLIN | POLLHUP));
  char c;
  CHECK(rump_sys_read(p[0], &c, 1) == 1);
  CHECK(rump_sys_poll(&r, 1, 0) == 1);
  CHECK(r.revents == POLLHUP);
  rump_sys_close(p[0]);

  REQUIRE(rump_sys_pipe(p) == 0);
  rump_sys_close(p[0]);
  pollfd w{p[1], POLLOUT, 0};
  CHECK(rump_sys_poll(&w, 1, 0) == 1);
  CHECK(w.revents == (POLLOUT | POLLERR));
  rump_sys_close(p[1]);
}

TEST_CASE("poll: bad descriptors are POLLNVAL, negative ones ignored; nfds over RLIMIT_NOFILE EINVAL", "[poll]") {
  KernelUp up;
  pollfd fds[2] = {{99, POLLIN, 0}, {-1, POLLIN, 0}};
  CHECK(rump_sys_poll(fds, 2, 0) == 1);
  CHECK(fds[0].revents == POLLNVAL);
  CHECK(fds[1].revents == 0);
  CHECK_ERRNO(EINVAL, rump_sys_poll(fds, 1ul << 24, 0));
}

TEST_CASE("poll: regular files and devices are always ready", "[poll]") {
  KernelUp up;
  int f = rump_sys_open("/file", O_CREAT | O_RDWR, 0644);
  int n = rump_sys_open("/dev/null", O_RDWR, 0);
  REQUIRE(f >= 0);
  REQUIRE(n >= 0);
  pollfd fds[2] = {{f, POLLIN | POLLOUT, 0}, {n, POLLIN | POLLOUT, 0}};
  CHECK(rump_sys_poll(fds, 2, -1) == 2);
  CHECK(fds[0].revents == (POLLIN | POLLOUT));
  CHECK(fds[1].revents == (POLLIN | POLLOUT));
}

TEST_CASE("poll: the timeout passes (returned 0 after at least the timeout)", "[poll]") {
  KernelUp up;
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  pollfd r{p[0], POLLIN, 0};
  int64_t t0 = now_ms();
  CHECK(rump_sys_poll(&r, 1, 50) == 0);
  CHECK(now_ms() - t0 >= 50);
  timespec ts{0, 30 * 1000000};
  t0 = now_ms();
  CHECK(rump_sys_ppoll(&r, 1, &ts, nullptr, 8) == 0);
  CHECK(now_ms() - t0 >= 30);
  timespec bad{-1, 0};
  CHECK_ERRNO(EINVAL, rump_sys_ppoll(&r, 1, &bad, nullptr, 8));
}

TEST_CASE("poll: a writer on another thread wakes a poller", "[poll][concurrency]") {
  KernelUp up({.ncpu = 2});
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  std::thread t([&] {
    rump_kernel_set_current(up.k);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    TCHECK(rump_sys_write(p[1], "x", 1) == 1);
  });
  pollfd r{p[0], POLLIN, 0};
  CHECK(rump_sys_poll(&r, 1, -1) == 1);
  CHECK(r.revents == POLLIN);
  t.join();
  CHECK_THREADS_OK();
  // And a close wakes it with POLLHUP.
  char c;
  REQUIRE(rump_sys_read(p[0], &c, 1) == 1);
  std::thread t2([&] {
    rump_kernel_set_current(up.k);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    rump_sys_close(p[1]);
  });
  CHECK(rump_sys_poll(&r, 1, -1) == 1);
  CHECK(r.revents == POLLHUP);
  t2.join();
  CHECK_THREADS_OK();
}

TEST_CASE("poll and ppoll: a signal interrupts the wait (EINTR); ppoll's mask applies", "[poll][signal][concurrency]") {
  KernelUp up;
  Kid k = fork_and_switch();
  REQUIRE(set_action(SIGUSR1, kHandler) == 0);
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  std::thread t = kill_later(up.k, k.pid, SIGUSR1);
  pollfd r{p[0], POLLIN, 0};
  CHECK_ERRNO(EINTR, rump_sys_poll(&r, 1, -1));
  t.join();
  CHECK_THREADS_OK();
  // ppoll with SIGUSR1 blocked: the signal doesn't interrupt; it times out.
  uint64_t mask = uint64_t{1} << (SIGUSR1 - 1);
  std::thread t2([&] {
    rump_kernel_set_current(up.k);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    TCHECK(rump_sys_kill(k.pid, SIGUSR1) == 0);
  });
  timespec ts{0, 60 * 1000000};
  CHECK(rump_sys_ppoll(&r, 1, &ts, reinterpret_cast<sigset_t*>(&mask), 8) == 0);
  t2.join();
  CHECK_THREADS_OK();
  CHECK_ERRNO(EINVAL, rump_sys_ppoll(&r, 1, &ts, reinterpret_cast<sigset_t*>(&mask), 4));
}

TEST_CASE("select: readiness, EBADF, EINVAL, the remaining time written back", "[select]") {
  KernelUp up;
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  fd_set rs, ws;
  FD_ZERO(&rs);
  FD_ZERO(&ws);
  FD_SET(p[0], &rs);
  FD_SET(p[1], &ws);
  timeval tv{0, 0};
  CHECK(rump_sys_select(p[1] + 1, &rs, &ws, nullptr, &tv) == 1);
  CHECK(!FD_ISSET(p[0], &rs));
  CHECK(FD_ISSET(p[1], &ws));
  // Timeout: 0 ready after at least the timeout; tv written back as 0.
  FD_ZERO(&rs);
  FD_SET(p[0], &rs);
  tv = {0, 40000};
  int64_t t0 = now_ms();
  CHECK(rump_sys_select(p[0] + 1, &rs, nullptr, nullptr, &tv) == 0);
  CHECK(now_ms() - t0 >= 40);
  CHECK(tv.tv_sec == 0);
  CHECK(tv.tv_usec == 0);
  // Data: ready, and time left is below what was given.
  REQUIRE(rump_sys_write(p[1], "x", 1) == 1);
  FD_SET(p[0], &rs);
  tv = {5, 0};
  CHECK(rump_sys_select(p[0] + 1, &rs, nullptr, nullptr, &tv) == 1);
  CHECK(FD_ISSET(p[0], &rs));
  CHECK(tv.tv_sec <= 5);
  // A bad descriptor in a set: EBADF.
  FD_ZERO(&rs);
  FD_SET(50, &rs);
  tv = {0, 0};
  CHECK_ERRNO(EBADF, rump_sys_select(51, &rs, nullptr, nullptr, &tv));
  tv = {-1, 0};
  FD_ZERO(&rs);
  CHECK_ERRNO(EINVAL, rump_sys_select(1, &rs, nullptr, nullptr, &tv));
  CHECK_ERRNO(EINVAL, rump_sys_select(-1, nullptr, nullptr, nullptr, nullptr));
  CHECK_ERRNO(EINVAL, rump_sys_select(1 << 24, nullptr, nullptr, nullptr, nullptr));
}

TEST_CASE("pselect6: Linux's sigmask argument, timeout", "[select]") {
  KernelUp up;
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p[0], &rs);
  uint64_t mask = 0;
  struct {
    const void* ss;
    size_t len;
  } arg{&mask, 8};
  timespec ts{0, 20 * 1000000};
  int64_t t0 = now_ms();
  CHECK(rump_sys_pselect6(p[0] + 1, &rs, nullptr, nullptr, &ts, &arg) == 0);
  CHECK(now_ms() - t0 >= 20);
  arg.len = 4;
  FD_SET(p[0], &rs);
  CHECK_ERRNO(EINVAL, rump_sys_pselect6(p[0] + 1, &rs, nullptr, nullptr, &ts, &arg));
  REQUIRE(rump_sys_write(p[1], "x", 1) == 1);
  arg.len = 8;
  FD_SET(p[0], &rs);
  CHECK(rump_sys_pselect6(p[0] + 1, &rs, nullptr, nullptr, nullptr, &arg) == 1);
}

TEST_CASE("select: a signal interrupts (EINTR)", "[select][signal][concurrency]") {
  KernelUp up;
  Kid k = fork_and_switch();
  REQUIRE(set_action(SIGUSR1, kHandler) == 0);
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  std::thread t = kill_later(up.k, k.pid, SIGUSR1);
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p[0], &rs);
  CHECK_ERRNO(EINTR, rump_sys_select(p[0] + 1, &rs, nullptr, nullptr, nullptr));
  t.join();
  CHECK_THREADS_OK();
}

TEST_CASE("poll, ppoll, select, pselect6: bad pointers are EFAULT", "[poll]") {
  KernelUp up;
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  void* bad = reinterpret_cast<void*>(8);
  struct pollfd pfd = {p[0], POLLIN, 0};
  CHECK_ERRNO(EFAULT, rump_sys_poll(bad, 1, 0));
  struct timespec zero = {0, 0};
  CHECK_ERRNO(EFAULT, rump_sys_ppoll(bad, 1, &zero, nullptr, 8));
  CHECK_ERRNO(EFAULT, rump_sys_ppoll(&pfd, 1, static_cast<struct timespec*>(bad), nullptr, 8));
  CHECK_ERRNO(EFAULT, rump_sys_ppoll(&pfd, 1, &zero, static_cast<sigset_t*>(bad), 8));
  struct timeval tv = {0, 0};
  CHECK_ERRNO(EFAULT, rump_sys_select(p[0] + 1, bad, nullptr, nullptr, &tv));
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(p[0], &rd);
  CHECK_ERRNO(EFAULT, rump_sys_select(p[0] + 1, &rd, nullptr, nullptr, static_cast<struct timeval*>(bad)));
  FD_ZERO(&rd);
  FD_SET(p[0], &rd);
  CHECK_ERRNO(EFAULT, rump_sys_pselect6(p[0] + 1, &rd, nullptr, nullptr, &zero, bad));
  // The host agrees on the first of these.
  errno = 0;
  CHECK(poll(static_cast<struct pollfd*>(bad), 1, 0) == -1);
  CHECK(errno == EFAULT);
  rump_sys_close(p[0]);
  rump_sys_close(p[1]);
}

namespace {

// The FIFO hang-up sequence, run against either kernel: open/close/poll
// are the kernel's calls, dir a scratch directory. Returns the revents
// (or -errno) of each poll, in order.
template <class Open, class Close, class Write, class Poll>
std::vector<int> fifo_hup_sequence(const std::string& path, Open open_, Close close_, Write write_, Poll poll_) {
  std::vector<int> out;
  auto pr = [&](int fd, short events = POLLIN) {
    pollfd p{fd, events, 0};
    int n = poll_(&p, 1, 0);
    out.push_back(n < 0 ? -errno : p.revents);
  };
  // A reader opened before any writer: no POLLHUP.
  int r = open_(path.c_str(), O_RDONLY | O_NONBLOCK);
  pr(r);
  pr(r, POLLIN | POLLOUT);
  // A writer comes: nothing to read yet; it goes: now POLLHUP.
  int w = open_(path.c_str(), O_WRONLY | O_NONBLOCK);
  pr(r);
  pr(w, POLLOUT);
  close_(w);
  pr(r);
  pr(r, 0);  // POLLHUP is reported whatever was asked for
  // A second reader opened after the writer went has not seen one.
  int r2 = open_(path.c_str(), O_RDONLY | O_NONBLOCK);
  pr(r2);
  // A writer that writes and goes: data and hang-up for both.
  w = open_(path.c_str(), O_WRONLY | O_NONBLOCK);
  write_(w, "x", 1);
  close_(w);
  pr(r);
  pr(r2);
  close_(r);
  close_(r2);
  // A reader opened while a writer (O_RDWR) is there sees the hang-up
  // when it goes.
  int rw = open_(path.c_str(), O_RDWR | O_NONBLOCK);
  r = open_(path.c_str(), O_RDONLY | O_NONBLOCK);
  pr(r);
  close_(rw);
  pr(r);
  close_(r);
  return out;
}

}  // namespace

// --- the temporary signal mask of ppoll and pselect6
//
// Every scenario runs twice: in a rump process and in a forked host child
// doing the same with the host's ppoll/pselect, and the outcomes must
// agree. The process blocks SIGUSR1 and SIGUSR2 and catches SIGUSR2; the
// call's temporary mask blocks SIGUSR2 and, in some scenarios, SIGUSR1.
// Both signals arrive during the wait (from another thread) or are pending
// before the call.

#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr uint64_t sigbit(int sig) { return uint64_t{1} << (sig - 1); }

enum class Call { kPpoll, kPselect };
enum class Act { kCaught, kDefault, kIgnored };

struct MaskScenario {
  Call call;
  Act usr1;
  bool temp_blocks_usr1;
  bool from_thread;
};

std::ostream& operator<<(std::ostream& os, const MaskScenario& s) {
  const char* act[] = {"caught", "default", "ignored"};
  return os << (s.call == Call::kPpoll ? "ppoll" : "pselect6") << ", SIGUSR1 "
            << act[static_cast<int>(s.usr1)] << (s.temp_blocks_usr1 ? ", blocked" : ", unblocked")
            << " by the temporary mask, sent " << (s.from_thread ? "during the wait" : "before the call");
}

// How the call and the process ended.
struct MaskOutcome {
  bool killed = false;
  int termsig = 0;
  int ret = 0;  // the call's result, errno for -1 in err
  int err = 0;
  bool usr1_pending = false;
  bool usr2_pending = false;
  bool mask_back = false;  // the old mask is in force again
  bool operator==(const MaskOutcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const MaskOutcome& o) {
  if (o.killed) return os << "killed by " << o.termsig;
  return os << "returned " << o.ret << " errno " << o.err << ", pending USR1 " << o.usr1_pending << " USR2 "
            << o.usr2_pending << ", mask back " << o.mask_back;
}

constexpr long kMaskWaitNs = 200 * 1000000L;

MaskOutcome rump_mask_run(const MaskScenario& s) {
  KernelUp up({.ncpu = 2});
  Kid parent = fork_and_switch();
  rump_lwproc_switch(parent.l);
  Kid c = fork_and_switch();
  REQUIRE(set_action(SIGUSR2, kHandler) == 0);
  REQUIRE(set_action(SIGUSR1, s.usr1 == Act::kCaught ? kHandler : s.usr1 == Act::kIgnored ? kIgn : nullptr) == 0);
  uint64_t old = sigbit(SIGUSR1) | sigbit(SIGUSR2);
  REQUIRE(rump_sys_rt_sigprocmask(SIG_SETMASK, reinterpret_cast<sigset_t*>(&old), nullptr, 8) == 0);
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  std::thread sender;
  if (s.from_thread) {
    sender = std::thread([&] {
      rump_kernel_set_current(up.k);
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      TCHECK(rump_sys_kill(c.pid, SIGUSR2) == 0);
      TCHECK(rump_sys_kill(c.pid, SIGUSR1) == 0);
    });
  } else {
    REQUIRE(rump_sys_kill(c.pid, SIGUSR2) == 0);
    REQUIRE(rump_sys_kill(c.pid, SIGUSR1) == 0);
  }
  uint64_t temp = sigbit(SIGUSR2) | (s.temp_blocks_usr1 ? sigbit(SIGUSR1) : 0);
  timespec ts{0, kMaskWaitNs};
  int r;
  if (s.call == Call::kPpoll) {
    pollfd pf{p[0], POLLIN, 0};
    r = rump_sys_ppoll(&pf, 1, &ts, reinterpret_cast<sigset_t*>(&temp), 8);
  } else {
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct {
      const void* ss;
      size_t len;
    } arg{&temp, 8};
    r = rump_sys_pselect6(p[0] + 1, &rs, nullptr, nullptr, &ts, &arg);
  }
  int e = r < 0 ? errno : 0;
  if (sender.joinable()) sender.join();
  CHECK_THREADS_OK();
  MaskOutcome o;
  if (rump_lwproc_curlwp() == nullptr) {
    // The process is gone: its parent sees how.
    rump_lwproc_switch(parent.l);
    int st = -1;
    REQUIRE(rump_sys_wait4(c.pid, &st, 0, nullptr) == c.pid);
    o.killed = WIFSIGNALED(st);
    o.termsig = o.killed ? WTERMSIG(st) : 0;
    return o;
  }
  o.ret = r;
  o.err = e;
  uint64_t pend = 0, now = 0;
  REQUIRE(rump_sys_rt_sigpending(reinterpret_cast<sigset_t*>(&pend), 8) == 0);
  REQUIRE(rump_sys_rt_sigprocmask(SIG_BLOCK, nullptr, reinterpret_cast<sigset_t*>(&now), 8) == 0);
  o.usr1_pending = pend & sigbit(SIGUSR1);
  o.usr2_pending = pend & sigbit(SIGUSR2);
  o.mask_back = now == old;
  return o;
}

std::atomic<int> g_host_usr1_handled{0};
void host_handler(int sig) {
  if (sig == SIGUSR1) g_host_usr1_handled++;
}

// The same on the host, in a forked child; *handled is how often the
// host ran the SIGUSR1 handler.
MaskOutcome host_mask_run(const MaskScenario& s, int* handled) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    struct sigaction a2 {};
    a2.sa_handler = host_handler;
    sigaction(SIGUSR2, &a2, nullptr);
    struct sigaction a1 {};
    a1.sa_handler = s.usr1 == Act::kCaught ? host_handler : s.usr1 == Act::kIgnored ? SIG_IGN : SIG_DFL;
    sigaction(SIGUSR1, &a1, nullptr);
    sigset_t old;
    sigemptyset(&old);
    sigaddset(&old, SIGUSR1);
    sigaddset(&old, SIGUSR2);
    sigprocmask(SIG_SETMASK, &old, nullptr);
    int p[2];
    if (pipe(p) != 0) _exit(127);
    std::thread sender;
    if (s.from_thread) {
      sender = std::thread([] {  // blocks both (the mask is inherited)
        usleep(30000);
        kill(getpid(), SIGUSR2);
        kill(getpid(), SIGUSR1);
      });
    } else {
      kill(getpid(), SIGUSR2);
      kill(getpid(), SIGUSR1);
    }
    sigset_t temp;
    sigemptyset(&temp);
    sigaddset(&temp, SIGUSR2);
    if (s.temp_blocks_usr1) sigaddset(&temp, SIGUSR1);
    timespec ts{0, kMaskWaitNs};
    int r;
    if (s.call == Call::kPpoll) {
      pollfd pf{p[0], POLLIN, 0};
      r = ppoll(&pf, 1, &ts, &temp);
    } else {
      fd_set rs;
      FD_ZERO(&rs);
      FD_SET(p[0], &rs);
      r = pselect(p[0] + 1, &rs, nullptr, nullptr, &ts, &temp);
    }
    int e = r < 0 ? errno : 0;
    if (sender.joinable()) sender.join();
    sigset_t pend, now;
    sigpending(&pend);
    sigprocmask(SIG_BLOCK, nullptr, &now);
    int code = (r == -1 ? 1 : r == 0 ? 2 : 3) | (e == EINTR ? 4 : e != 0 ? 64 : 0) |
               (sigismember(&pend, SIGUSR1) ? 8 : 0) | (sigismember(&pend, SIGUSR2) ? 16 : 0) |
               (sigismember(&now, SIGUSR1) && sigismember(&now, SIGUSR2) ? 32 : 0);
    _exit(code | (g_host_usr1_handled.load() ? 128 : 0));
  }
  int st = -1;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  MaskOutcome o;
  *handled = 0;
  if (WIFSIGNALED(st)) {
    o.killed = true;
    o.termsig = WTERMSIG(st);
    return o;
  }
  REQUIRE(WIFEXITED(st));
  int code = WEXITSTATUS(st);
  REQUIRE((code & 64) == 0);
  o.ret = (code & 3) == 1 ? -1 : (code & 3) == 2 ? 0 : 1;
  o.err = (code & 4) ? EINTR : 0;
  o.usr1_pending = code & 8;
  o.usr2_pending = code & 16;
  o.mask_back = code & 32;
  *handled = (code & 128) ? 1 : 0;
  return o;
}

}  // namespace

TEST_CASE("poll: a FIFO reader sees POLLHUP only after a writer came and went, as on the host", "[poll][fifo]") {
  char tmpl[] = "/tmp/rumpfifo-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string hpath = std::string(tmpl) + "/f";
  REQUIRE(mkfifo(hpath.c_str(), 0644) == 0);
  std::vector<int> host = fifo_hup_sequence(
      hpath, [](const char* p, int f) { return ::open(p, f); }, [](int fd) { return ::close(fd); },
      [](int fd, const void* b, size_t n) { return ::write(fd, b, n); },
      [](pollfd* p, nfds_t n, int t) { return ::poll(p, n, t); });
  unlink(hpath.c_str());
  rmdir(tmpl);

  KernelUp up;
  REQUIRE(rump_sys_mknod("/f", S_IFIFO | 0644, 0) == 0);
  std::vector<int> rump = fifo_hup_sequence(
      "/f", [](const char* p, int f) { return rump_sys_open(p, f, 0); }, [](int fd) { return rump_sys_close(fd); },
      [](int fd, const void* b, size_t n) { return rump_sys_write(fd, b, n); },
      [](pollfd* p, nfds_t n, int t) { return rump_sys_poll(p, n, t); });
  CHECK(rump == host);
  // Linux's answers, so the comparison cannot pass on a kernel that
  // reports nothing at all.
  std::vector<int> want = {0,      0,          0, POLLOUT, POLLHUP, POLLHUP, 0, POLLIN | POLLHUP, POLLIN | POLLHUP,
                           0,      POLLHUP};
  CHECK(rump == want);
}

TEST_CASE("ppoll and pselect6: signals the temporary mask unblocks act before the old mask returns, as on Linux",
          "[poll][select][signal][concurrency]") {
  MaskOutcome eintr_consumed{false, 0, -1, EINTR, false, true, true};
  MaskOutcome timeout_both_pending{false, 0, 0, 0, true, true, true};
  MaskOutcome timeout_usr2_pending{false, 0, 0, 0, false, true, true};
  MaskOutcome killed{true, SIGUSR1, 0, 0, false, false, false};
  struct {
    Act act;
    bool temp_blocks;
    MaskOutcome want;
  } cases[] = {
      // A caught signal interrupts and is delivered (consumed) under the
      // temporary mask; SIGUSR2, still blocked, stays pending.
      {Act::kCaught, false, eintr_consumed},
      // A default-fatal one ends the process.
      {Act::kDefault, false, killed},
      // An ignored one is discarded and doesn't interrupt.
      {Act::kIgnored, false, timeout_usr2_pending},
      // Still blocked by the temporary mask: no interruption, pending.
      {Act::kCaught, true, timeout_both_pending},
      {Act::kDefault, true, timeout_both_pending},
  };
  for (Call call : {Call::kPpoll, Call::kPselect}) {
    for (bool from_thread : {false, true}) {
      for (auto& c : cases) {
        MaskScenario s{call, c.act, c.temp_blocks, from_thread};
        INFO(s);
        MaskOutcome got = rump_mask_run(s);
        INFO("rump: " << got);
        CHECK(got == c.want);
        int handled = 0;
        MaskOutcome host = host_mask_run(s, &handled);
        INFO("host: " << host);
        CHECK(got == host);
        CHECK(handled == (c.act == Act::kCaught && !c.temp_blocks ? 1 : 0));
      }
    }
  }
}

TEST_CASE("ppoll: a blocked ignored signal stays pending, as on Linux", "[poll][signal]") {
  // An ignored signal is kept while it is blocked (its action may change
  // before it is unblocked); with the temporary mask blocking it,
  // rt_sigpending shows it afterwards.
  MaskScenario s{Call::kPpoll, Act::kIgnored, true, false};
  MaskOutcome got = rump_mask_run(s);
  int handled = 0;
  MaskOutcome host = host_mask_run(s, &handled);
  CHECK(host.usr1_pending);
  CHECK(got.usr1_pending);
  CHECK(got == host);
}

TEST_CASE("ppoll: ready descriptors win over a signal the temporary mask unblocks; it stays pending",
          "[poll][signal]") {
  // Linux restores the old mask at once when the call was not interrupted.
  KernelUp up;
  Kid c = fork_and_switch();
  REQUIRE(set_action(SIGUSR1, kHandler) == 0);
  uint64_t old = sigbit(SIGUSR1);
  REQUIRE(rump_sys_rt_sigprocmask(SIG_SETMASK, reinterpret_cast<sigset_t*>(&old), nullptr, 8) == 0);
  REQUIRE(rump_sys_kill(c.pid, SIGUSR1) == 0);
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  REQUIRE(rump_sys_write(p[1], "x", 1) == 1);
  pollfd pf{p[0], POLLIN, 0};
  uint64_t none = 0;
  CHECK(rump_sys_ppoll(&pf, 1, nullptr, reinterpret_cast<sigset_t*>(&none), 8) == 1);
  uint64_t pend = 0;
  REQUIRE(rump_sys_rt_sigpending(reinterpret_cast<sigset_t*>(&pend), 8) == 0);
  CHECK(pend == sigbit(SIGUSR1));
  // The host does the same.
  sigset_t hold, hnone, hpend;
  sigemptyset(&hold);
  sigaddset(&hold, SIGUSR1);
  sigemptyset(&hnone);
  struct sigaction sa {}, osa{};
  sa.sa_handler = host_handler;
  REQUIRE(sigaction(SIGUSR1, &sa, &osa) == 0);
  sigset_t saved;
  REQUIRE(pthread_sigmask(SIG_BLOCK, &hold, &saved) == 0);
  int hp[2];
  REQUIRE(pipe(hp) == 0);
  REQUIRE(write(hp[1], "x", 1) == 1);
  REQUIRE(pthread_kill(pthread_self(), SIGUSR1) == 0);
  pollfd hpf{hp[0], POLLIN, 0};
  CHECK(ppoll(&hpf, 1, nullptr, &hnone) == 1);
  sigpending(&hpend);
  CHECK(sigismember(&hpend, SIGUSR1));
  // Clean up the host thread: take the signal, put everything back.
  sa.sa_handler = SIG_IGN;
  sigaction(SIGUSR1, &sa, nullptr);
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  sigaction(SIGUSR1, &osa, nullptr);
  close(hp[0]);
  close(hp[1]);
}
