// Pipes and FIFOs: data, EOF, EPIPE and SIGPIPE, FIONREAD, O_NONBLOCK,
// PIPE_BUF atomicity, EINTR, FIFO open rules.
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
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

TEST_CASE("pipe: data flows, FIONREAD counts it, EOF after the last writer closes", "[pipe]") {
  KernelUp up;
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  CHECK(rump_sys_write(p[1], "hello", 5) == 5);
  int n = -1;
  REQUIRE(rump_sys_ioctl(p[0], FIONREAD, &n) == 0);
  CHECK(n == 5);
  CHECK_ERRNO(EFAULT, rump_sys_ioctl(p[0], FIONREAD, reinterpret_cast<int*>(uintptr_t{8})));
  char buf[16] = {};
  CHECK(rump_sys_read(p[0], buf, 3) == 3);
  CHECK(std::string(buf, 3) == "hel");
  CHECK(rump_sys_read(p[0], buf, sizeof buf) == 2);
  CHECK(rump_sys_close(p[1]) == 0);
  CHECK(rump_sys_read(p[0], buf, sizeof buf) == 0);
  CHECK(rump_sys_close(p[0]) == 0);
}

TEST_CASE("pipe2: flags O_CLOEXEC and O_NONBLOCK; others EINVAL; bad pointer EFAULT", "[pipe]") {
  KernelUp up;
  int p[2];
  CHECK_ERRNO(EINVAL, rump_sys_pipe2(p, O_APPEND));
  CHECK_ERRNO(EFAULT, rump_sys_pipe2(reinterpret_cast<int*>(8), 0));
  REQUIRE(rump_sys_pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
  CHECK(rump_sys_fcntl(p[0], F_GETFD, 0) == FD_CLOEXEC);
  CHECK((rump_sys_fcntl(p[1], F_GETFL, 0) & O_NONBLOCK) != 0);
  char c;
  CHECK_ERRNO(EAGAIN, rump_sys_read(p[0], &c, 1));
  // Fill it: 64 KiB, then EAGAIN.
  std::vector<char> big(70000, 'x');
  CHECK(rump_sys_write(p[1], big.data(), big.size()) == 65536);
  CHECK_ERRNO(EAGAIN, rump_sys_write(p[1], "y", 1));
  // A small write that doesn't fit whole is EAGAIN (atomic).
  CHECK(rump_sys_read(p[0], big.data(), 100) == 100);
  CHECK_ERRNO(EAGAIN, rump_sys_write(p[1], big.data(), 200));
  CHECK(rump_sys_write(p[1], big.data(), 100) == 100);
  rump_sys_close(p[0]);
  rump_sys_close(p[1]);
}

TEST_CASE("pipe: a write with no reader is EPIPE, and SIGPIPE kills the writer by default", "[pipe][signal]") {
  KernelUp up;
  Kid parent = fork_and_switch();
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  REQUIRE(rump_sys_close(p[0]) == 0);
  SECTION("SIG_IGN: EPIPE, the process lives") {
    Kid c = fork_and_switch();
    REQUIRE(set_action(SIGPIPE, kIgn) == 0);
    CHECK_ERRNO(EPIPE, rump_sys_write(p[1], "x", 1));
    CHECK(rump_sys_getpid() == c.pid);
    rump_sys_exit(0);
    rump_lwproc_switch(parent.l);
    int st = -1;
    REQUIRE(rump_sys_wait4(c.pid, &st, 0, nullptr) == c.pid);
    CHECK(WIFEXITED(st));
  }
  SECTION("default: the writer dies of SIGPIPE") {
    Kid c = fork_and_switch();
    CHECK_ERRNO(EPIPE, rump_sys_write(p[1], "x", 1));
    rump_lwproc_switch(parent.l);
    int st = -1;
    REQUIRE(rump_sys_wait4(c.pid, &st, 0, nullptr) == c.pid);
    CHECK(WIFSIGNALED(st));
    CHECK(WTERMSIG(st) == SIGPIPE);
  }
}

TEST_CASE("pipe: a signal interrupts a blocked read (EINTR)", "[pipe][signal][concurrency]") {
  KernelUp up;
  Kid k = fork_and_switch();
  REQUIRE(set_action(SIGUSR1, kHandler) == 0);
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  std::atomic<bool> go{false};
  std::thread t([&] {
    rump_kernel_set_current(up.k);
    while (!go.load()) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    TCHECK(rump_sys_kill(k.pid, SIGUSR1) == 0);
  });
  go = true;
  char c;
  CHECK_ERRNO(EINTR, rump_sys_read(p[0], &c, 1));
  t.join();
  CHECK_THREADS_OK();
}

TEST_CASE("pipe: a blocked write interrupted after some bytes returns the count", "[pipe][signal][concurrency]") {
  KernelUp up;
  Kid k = fork_and_switch();
  REQUIRE(set_action(SIGUSR1, kHandler) == 0);
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  std::thread t = kill_later(up.k, k.pid, SIGUSR1);
  std::vector<char> big(100000, 'z');
  CHECK(rump_sys_write(p[1], big.data(), big.size()) == 65536);
  t.join();
  CHECK_THREADS_OK();
}

TEST_CASE("FIFO: mknod S_IFIFO, open rules, data through the pipe", "[fifo]") {
  KernelUp up;
  REQUIRE(rump_sys_mknod("/f", S_IFIFO | 0666, 0) == 0);
  struct stat st;
  REQUIRE(rump_sys_stat("/f", &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  // Non-blocking write-open with no reader: ENXIO.
  CHECK_ERRNO(ENXIO, rump_sys_open("/f", O_WRONLY | O_NONBLOCK, 0));
  // Non-blocking read-open succeeds at once; then a writer may open.
  int r = rump_sys_open("/f", O_RDONLY | O_NONBLOCK, 0);
  REQUIRE(r >= 0);
  int w = rump_sys_open("/f", O_WRONLY | O_NONBLOCK, 0);
  REQUIRE(w >= 0);
  CHECK(rump_sys_write(w, "abc", 3) == 3);
  char buf[8];
  CHECK(rump_sys_read(r, buf, sizeof buf) == 3);
  rump_sys_close(w);
  CHECK(rump_sys_read(r, buf, sizeof buf) == 0);
  rump_sys_close(r);
  // O_RDWR never blocks.
  int rw = rump_sys_open("/f", O_RDWR, 0);
  REQUIRE(rw >= 0);
  CHECK(rump_sys_write(rw, "q", 1) == 1);
  CHECK(rump_sys_read(rw, buf, 1) == 1);
  rump_sys_close(rw);
  // mkfifo is mknodat.
  CHECK(rump_sys_mknodat(AT_FDCWD, "/g", S_IFIFO | 0600, 0) == 0);
}

TEST_CASE("FIFO: O_RDONLY blocks until a writer opens, O_WRONLY until a reader", "[fifo][concurrency]") {
  KernelUp up({.ncpu = 2});
  REQUIRE(rump_sys_mknod("/f", S_IFIFO | 0666, 0) == 0);
  for (int round = 0; round < 2; round++) {
    bool reader_first = round == 0;
    std::atomic<bool> opened{false};
    std::thread t([&] {
      rump_kernel_set_current(up.k);
      int fd = rump_sys_open("/f", reader_first ? O_RDONLY : O_WRONLY, 0);
      opened = true;
      TCHECK(fd >= 0);
      if (reader_first) {
        char buf[4];
        TCHECK(rump_sys_read(fd, buf, 4) == 4);
      } else {
        TCHECK(rump_sys_write(fd, "ping", 4) == 4);
      }
      rump_sys_close(fd);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    CHECK(!opened.load());  // still waiting for the other side
    int fd = rump_sys_open("/f", reader_first ? O_WRONLY : O_RDONLY, 0);
    REQUIRE(fd >= 0);
    if (reader_first) {
      CHECK(rump_sys_write(fd, "pong", 4) == 4);
    } else {
      char buf[4];
      CHECK(rump_sys_read(fd, buf, 4) == 4);
    }
    t.join();
    CHECK_THREADS_OK();
    CHECK(opened.load());
    rump_sys_close(fd);
  }
}

TEST_CASE("pipe: PIPE_BUF writes from concurrent writers never interleave", "[pipe][concurrency]") {
  KernelUp up({.ncpu = 2});
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  constexpr int kWriters = 4, kRecs = 200, kSize = 4096;
  std::vector<std::thread> ws;
  for (int w = 0; w < kWriters; w++) {
    ws.emplace_back([&, w] {
      rump_kernel_set_current(up.k);
      std::vector<char> rec(kSize, static_cast<char>('a' + w));
      for (int i = 0; i < kRecs; i++) TCHECK(rump_sys_write(p[1], rec.data(), kSize) == kSize);
    });
  }
  std::vector<char> buf(kSize);
  int recs = 0;
  bool intact = true;
  while (recs < kWriters * kRecs) {
    size_t got = 0;
    while (got < kSize) {
      long n = rump_sys_read(p[0], buf.data() + got, kSize - got);
      REQUIRE(n > 0);
      got += n;
    }
    for (int i = 1; i < kSize; i++)
      if (buf[i] != buf[0]) intact = false;
    recs++;
  }
  for (auto& t : ws) t.join();
  CHECK_THREADS_OK();
  CHECK(intact);
  rump_sys_close(p[0]);
  rump_sys_close(p[1]);
}

TEST_CASE("pipe: readers and writers on both CPUs move every byte in order", "[pipe][concurrency]") {
  KernelUp up({.ncpu = 2});
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  constexpr size_t kTotal = 4 << 20;
  std::thread w([&] {
    rump_kernel_set_current(up.k);
    std::vector<unsigned char> b(10007);
    size_t sent = 0;
    while (sent < kTotal) {
      size_t n = std::min(b.size(), kTotal - sent);
      for (size_t i = 0; i < n; i++) b[i] = static_cast<unsigned char>((sent + i) % 251);
      long r = rump_sys_write(p[1], b.data(), n);
      if (r <= 0) {
        TFAIL("write returned <= 0");
        break;
      }
      sent += r;
    }
    rump_sys_close(p[1]);
  });
  std::vector<unsigned char> b(8191);
  size_t got = 0;
  bool ok = true;
  for (;;) {
    long r = rump_sys_read(p[0], b.data(), b.size());
    REQUIRE(r >= 0);
    if (r == 0) break;
    for (long i = 0; i < r; i++)
      if (b[i] != (got + i) % 251) ok = false;
    got += r;
  }
  w.join();
  CHECK_THREADS_OK();
  CHECK(ok);
  CHECK(got == kTotal);
  rump_sys_close(p[0]);
}

TEST_CASE("pipe: several readers and writers with large writes: every byte arrives exactly once", "[pipe][concurrency]") {
  KernelUp up({.ncpu = 2});
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  // Writer w sends kPer bytes of value w in writes of 40000 (larger than
  // the pieces the pipe moves at once, smaller than the ring); each reader
  // counts what it got per value.
  constexpr int kWriters = 3, kReaders = 3;
  constexpr size_t kPer = 2 << 20, kWrite = 40000;
  std::vector<std::thread> ts;
  std::atomic<int> writers_left{kWriters};
  for (int w = 0; w < kWriters; w++) {
    ts.emplace_back([&, w] {
      rump_kernel_set_current(up.k);
      std::vector<unsigned char> b(kWrite, static_cast<unsigned char>(w));
      size_t sent = 0;
      while (sent < kPer) {
        long r = rump_sys_write(p[1], b.data(), std::min(kWrite, kPer - sent));
        if (r <= 0) {
          TFAIL("write returned <= 0");
          break;
        }
        sent += r;
      }
      // The last writer out closes the write end: readers then see EOF.
      if (writers_left.fetch_sub(1) == 1) rump_sys_close(p[1]);
    });
  }
  std::vector<std::array<size_t, kWriters>> counts(kReaders);
  std::atomic<int> strays{0};
  for (int r = 0; r < kReaders; r++) {
    counts[r].fill(0);
    ts.emplace_back([&, r] {
      rump_kernel_set_current(up.k);
      std::vector<unsigned char> b(12345);
      for (;;) {
        long n = rump_sys_read(p[0], b.data(), b.size());
        if (n < 0) TFAIL("read failed");
        if (n <= 0) break;
        for (long i = 0; i < n; i++) {
          if (b[i] < kWriters) counts[r][b[i]]++;
          else strays++;
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK_THREADS_OK();
  CHECK(strays == 0);
  for (int w = 0; w < kWriters; w++) {
    size_t sum = 0;
    for (int r = 0; r < kReaders; r++) sum += counts[r][w];
    CHECK(sum == kPer);
  }
  rump_sys_close(p[0]);
}

TEST_CASE("pipe: fstat of either end is a FIFO owned by its creator, as on the host", "[pipe]") {
  int hp[2];
  REQUIRE(pipe(hp) == 0);
  struct stat hst {};
  REQUIRE(fstat(hp[0], &hst) == 0);
  close(hp[0]);
  close(hp[1]);

  KernelUp up;
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  REQUIRE(rump_sys_setresgid(30, 30, 30) == 0);
  REQUIRE(rump_sys_setresuid(20, 20, 20) == 0);
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  struct stat r0 {}, r1 {};
  REQUIRE(rump_sys_fstat(p[0], &r0) == 0);
  REQUIRE(rump_sys_fstat(p[1], &r1) == 0);
  CHECK(S_ISFIFO(r0.st_mode));
  CHECK((r0.st_mode & 07777) == (hst.st_mode & 07777));
  CHECK(r0.st_nlink == hst.st_nlink);
  CHECK(r0.st_size == hst.st_size);
  CHECK(r0.st_uid == 20);
  CHECK(r0.st_gid == 30);
  CHECK(r0.st_ino == r1.st_ino);  // both ends are one pipe
  int q[2];
  REQUIRE(rump_sys_pipe(q) == 0);
  struct stat s2 {};
  REQUIRE(rump_sys_fstat(q[0], &s2) == 0);
  CHECK(s2.st_ino != r0.st_ino);
  rump_lwproc_releaselwp();
}
