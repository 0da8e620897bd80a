// The hand-over between a writer and a reader that waits for it, on local
// stream sockets and on pipes: the one copy from the writer's buffer
// straight into the waiting reader's (several iovecs on each side), the
// fall-back through the buffer, faults on either side, signals and a
// halt while readers wait with their buffers offered.
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#include "rump_test.h"

using rump_test::fork_and_switch;
using rump_test::KernelUp;
using rump_test::Kid;

namespace {

// Two one-way byte channels between sides A and B.
struct Channels {
  int a_to_b_wr, a_to_b_rd;
  int b_to_a_wr, b_to_a_rd;
  void close_all() const {
    for (int fd : {a_to_b_wr, a_to_b_rd, b_to_a_wr, b_to_a_rd}) rump_sys_close(fd);
  }
};

enum class Kind { kSocketpair, kPipes };

const char* name(Kind k) { return k == Kind::kSocketpair ? "socketpair" : "pipes"; }

Channels open_channels(Kind k) {
  if (k == Kind::kSocketpair) {
    int p[2];
    REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0);
    int q0 = rump_sys_dup(p[0]), q1 = rump_sys_dup(p[1]);
    REQUIRE(q0 >= 0);
    REQUIRE(q1 >= 0);
    // Each direction gets descriptors of its own (a direction ends with
    // shutdown(SHUT_WR)).
    return {p[0], p[1], q1, q0};
  }
  int x[2], y[2];
  REQUIRE(rump_sys_pipe(x) == 0);
  REQUIRE(rump_sys_pipe(y) == 0);
  return {x[1], x[0], y[1], y[0]};
}

// A small deterministic generator (per thread).
struct Lcg {
  uint64_t s;
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 33);
  }
  size_t upto(size_t n) { return 1 + next() % n; }
};

unsigned char pattern(size_t at, int dir) { return static_cast<unsigned char>(at * 7 + at / 251 + dir * 101); }

// Splits [base, base + len) into 1..3 iovecs of random sizes.
int split(Lcg& g, unsigned char* base, size_t len, iovec* iov) {
  int n = 1 + static_cast<int>(g.next() % 3);
  if (static_cast<size_t>(n) > len) n = static_cast<int>(len);
  size_t left = len;
  for (int i = 0; i < n; i++) {
    size_t part = i == n - 1 ? left : 1 + g.next() % (left - (n - 1 - i));
    iov[i] = {base, part};
    base += part;
    left -= part;
  }
  return n;
}

// Writes total bytes of direction dir's pattern in random writev calls,
// then ends the direction (a socket's shutdown, a pipe end's close).
void write_stream(int wr, size_t total, int dir, uint64_t seed) {
  Lcg g{seed};
  std::vector<unsigned char> buf(70000);
  size_t sent = 0;
  while (sent < total) {
    size_t len = g.upto(buf.size());
    if (len > total - sent) len = total - sent;
    for (size_t i = 0; i < len; i++) buf[i] = pattern(sent + i, dir);
    iovec iov[3];
    int n = split(g, buf.data(), len, iov);
    long r = rump_sys_writev(wr, iov, n);
    if (r <= 0) {
      TFAIL("writev returned <= 0");
      break;
    }
    sent += static_cast<size_t>(r);
  }
  if (rump_sys_shutdown(wr, SHUT_WR) != 0) TCHECK(rump_sys_close(wr) == 0);
}

// Reads direction dir's stream in random readv calls up to EOF; checks
// every byte and the total.
void read_stream(int rd, size_t total, int dir, uint64_t seed) {
  Lcg g{seed};
  std::vector<unsigned char> buf(20000);
  size_t got = 0;
  bool intact = true;
  for (;;) {
    iovec iov[3];
    int n = split(g, buf.data(), g.upto(buf.size()), iov);
    long r = rump_sys_readv(rd, iov, n);
    if (r < 0) {
      TFAIL("readv failed");
      break;
    }
    if (r == 0) break;
    for (long i = 0; i < r; i++) intact = intact && buf[i] == pattern(got + i, dir);
    got += static_cast<size_t>(r);
  }
  TCHECK(intact);
  TCHECK(got == total);
}

// Writes (or reads) exactly len bytes, going on after EINTR (a signal
// that came before any byte moved) and after short counts (one that came
// after).
bool move_all(bool write, int fd, void* p, size_t len, std::atomic<long>& eintr) {
  char* c = static_cast<char*>(p);
  while (len > 0) {
    long r = write ? rump_sys_write(fd, c, len) : rump_sys_read(fd, c, len);
    if (r < 0 && errno == EINTR) {
      eintr++;
      continue;
    }
    if (r <= 0) return false;
    c += r;
    len -= static_cast<size_t>(r);
  }
  return true;
}
bool write_all(int fd, void* p, size_t len, std::atomic<long>& eintr) { return move_all(true, fd, p, len, eintr); }
bool read_all(int fd, void* p, size_t len, std::atomic<long>& eintr) { return move_all(false, fd, p, len, eintr); }

// Runs fn on a new thread with an LWP of process pid.
template <class F>
std::thread run_in(rump_kernel* k, pid_t pid, F fn) {
  return std::thread([k, pid, fn] {
    rump_kernel_set_current(k);
    TCHECK(rump_lwproc_newlwp(pid) == 0);
    fn();
    rump_lwproc_releaselwp();
  });
}

}  // namespace

TEST_CASE("hand-over: streams both ways at once in random writev/readv pieces arrive intact, then EOF",
          "[net][pipe][concurrency]") {
  for (Kind kind : {Kind::kSocketpair, Kind::kPipes}) {
    INFO(name(kind));
    KernelUp up({.ncpu = 2});
    Kid k = fork_and_switch();
    Channels c = open_channels(kind);
    constexpr size_t kTotal = 3 << 20;
    auto run = [&](auto fn) { return run_in(up.k, k.pid, fn); };
    std::thread t1 = run([&] { write_stream(c.a_to_b_wr, kTotal, 0, 1); });
    std::thread t2 = run([&] { read_stream(c.a_to_b_rd, kTotal, 0, 2); });
    std::thread t3 = run([&] { write_stream(c.b_to_a_wr, kTotal, 1, 3); });
    std::thread t4 = run([&] { read_stream(c.b_to_a_rd, kTotal, 1, 4); });
    t1.join();
    t2.join();
    t3.join();
    t4.join();
    CHECK_THREADS_OK();
    if (kind == Kind::kSocketpair) {
      c.close_all();
    } else {
      rump_sys_close(c.a_to_b_rd);
      rump_sys_close(c.b_to_a_rd);
    }
  }
}

TEST_CASE("hand-over: a ping-pong with signals to both players loses and repeats no byte", "[net][pipe][concurrency]") {
  // Small messages go through the buffer; large ones (more than PIPE_BUF
  // and a small record) straight into the waiting reader's buffer, or
  // after the writer spun for the reader's offer.
  struct Shape {
    uint32_t words, rounds;
  };
  for (Shape shape : {Shape{4, 3000}, Shape{5000, 300}})
  for (Kind kind : {Kind::kSocketpair, Kind::kPipes}) {
    INFO(name(kind) << ", " << shape.words * 4 << "-byte messages");
    KernelUp up({.ncpu = 2});
    Kid k = fork_and_switch();
    // Caught without SA_RESTART: an interrupted wait that moved nothing
    // is EINTR (the players go on), one that moved bytes a short count.
    REQUIRE(rump_test::set_action(SIGUSR1, rump_test::kHandler) == 0);
    Channels c = open_channels(kind);
    const uint32_t kRounds = shape.rounds;
    std::atomic<pid_t> tid[2] = {0, 0};
    std::atomic<int> left{2};
    std::atomic<long> eintr{0};
    auto player = [&](int me) {
      rump_kernel_set_current(up.k);
      TCHECK(rump_lwproc_newlwp(k.pid) == 0);
      tid[me] = static_cast<pid_t>(rump_sys_gettid());
      int wr = me == 0 ? c.a_to_b_wr : c.b_to_a_wr;
      int rd = me == 0 ? c.b_to_a_rd : c.a_to_b_rd;
      std::vector<uint32_t> v(shape.words);
      size_t bytes = v.size() * sizeof(uint32_t);
      for (uint32_t i = 0; i < kRounds; i++) {
        // A sends 2i and reads 2i + 1; B reads 2i and answers 2i + 1.
        bool ok = true;
        if (me == 0) {
          for (uint32_t& x : v) x = 2 * i;
          if (!write_all(wr, v.data(), bytes, eintr)) TFAIL("A's write");
          if (!read_all(rd, v.data(), bytes, eintr)) TFAIL("A's read");
          for (uint32_t x : v) ok = ok && x == 2 * i + 1;
        } else {
          if (!read_all(rd, v.data(), bytes, eintr)) TFAIL("B's read");
          for (uint32_t x : v) ok = ok && x == 2 * i;
          for (uint32_t& x : v) x = 2 * i + 1;
          if (!write_all(wr, v.data(), bytes, eintr)) TFAIL("B's write");
        }
        TCHECK(ok);
      }
      left--;
      // Stays until the sender stopped (its tkill needs the LWP).
      while (left.load() > -1) std::this_thread::yield();
      rump_lwproc_releaselwp();
    };
    std::thread sender([&] {
      rump_kernel_set_current(up.k);
      TCHECK(rump_lwproc_newlwp(k.pid) == 0);
      TCHECK(rump_test::set_mask(SIG_BLOCK, ~uint64_t{0}) == 0);
      for (unsigned n = 0; left.load() > 0; n++) {
        if (pid_t t = tid[n % 2].load()) TCHECK(rump_sys_tkill(t, SIGUSR1) == 0);
        for (int y = 0; y < 50; y++) std::this_thread::yield();
      }
      left = -1;
      rump_lwproc_releaselwp();
    });
    std::thread a(player, 0), b(player, 1);
    a.join();
    b.join();
    sender.join();
    CHECK_THREADS_OK();
    INFO("calls ended by a signal: " << eintr.load());
    c.close_all();
  }
}

TEST_CASE("hand-over: halting the kernel while both sides wait to read ends both reads and the halt completes",
          "[net][pipe][concurrency]") {
  for (Kind kind : {Kind::kSocketpair, Kind::kPipes}) {
    for (int round = 0; round < 20; round++) {
      INFO(name(kind) << " round " << round);
      rump_boot_config cfg;
      rump_boot_config_init(&cfg);
      cfg.ncpu = 2;
      rump_kernel* kk = nullptr;
      REQUIRE(rump_kernel_boot(&cfg, &kk) == 0);
      rump_kernel_set_current(kk);
      REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
      pid_t pid = rump_sys_getpid();
      Channels c = open_channels(kind);
      rump_lwproc_switch(nullptr);
      std::atomic<int> waiting{0};
      std::atomic<long> r[2] = {99, 99};
      std::atomic<int> e[2] = {0, 0};
      auto player = [&](int me) {
        rump_kernel_set_current(kk);
        TCHECK(rump_lwproc_newlwp(pid) == 0);
        int wr = me == 0 ? c.a_to_b_wr : c.b_to_a_wr;
        int rd = me == 0 ? c.b_to_a_rd : c.a_to_b_rd;
        std::atomic<long> eintr{0};
        // A few exchanges (one copy each), then both read.
        for (uint32_t i = 0; i < 20; i++) {
          uint32_t v = i;
          if (me == 0) {
            TCHECK(write_all(wr, &v, sizeof v, eintr));
            TCHECK(read_all(rd, &v, sizeof v, eintr) && v == i);
          } else {
            TCHECK(read_all(rd, &v, sizeof v, eintr) && v == i);
            TCHECK(write_all(wr, &v, sizeof v, eintr));
          }
        }
        char buf[64];
        waiting++;
        r[me] = rump_sys_read(rd, buf, sizeof buf);
        e[me] = errno;
        // The kernel is gone: the thread leaves without calling in again.
      };
      std::thread a(player, 0), b(player, 1);
      while (waiting.load() < 2) std::this_thread::yield();
      // Halt while the readers spin, or after they went to sleep.
      for (int y = 0; y < round * 50; y++) std::this_thread::yield();
      rump_kernel_set_current(nullptr);
      CHECK(rump_kernel_halt(kk) == 0);
      a.join();
      b.join();
      CHECK_THREADS_OK();
      for (int i = 0; i < 2; i++) {
        CHECK(r[i] == -1);
        CHECK(e[i] == EINTR);
      }
    }
  }
}

TEST_CASE("hand-over: a fault on either side loses no byte: the faulting side gets EFAULT, the data stays",
          "[net][pipe]") {
  for (Kind kind : {Kind::kSocketpair, Kind::kPipes}) {
    INFO(name(kind));
    KernelUp up({.ncpu = 2});
    Kid k = fork_and_switch();
    Channels c = open_channels(kind);
    void* bad = reinterpret_cast<void*>(uintptr_t{8});
    // Large enough to go straight into a waiting reader's buffer.
    constexpr size_t kLen = 3 * 4096;
    std::vector<unsigned char> out(kLen);
    for (size_t i = 0; i < kLen; i++) out[i] = pattern(i, 2);
    auto read_whole = [&](std::vector<unsigned char>& in) {
      size_t got = 0;
      while (got < kLen) {
        long n = rump_sys_read(c.a_to_b_rd, in.data() + got, kLen - got);
        if (n <= 0) return false;
        got += static_cast<size_t>(n);
      }
      return true;
    };
    // A reader with a bad buffer, waiting (or not yet) when the bytes come.
    std::atomic<long> r{99};
    std::atomic<int> e{0};
    std::thread reader([&] {
      rump_kernel_set_current(up.k);
      TCHECK(rump_lwproc_newlwp(k.pid) == 0);
      r = rump_sys_read(c.a_to_b_rd, bad, kLen);
      e = errno;
      rump_lwproc_releaselwp();
    });
    CHECK(rump_sys_write(c.a_to_b_wr, out.data(), kLen) == static_cast<long>(kLen));
    reader.join();
    CHECK(r == -1);
    CHECK(e == EFAULT);
    std::vector<unsigned char> in(kLen);
    CHECK(read_whole(in));
    CHECK(in == out);
    // A writer with a bad buffer: EFAULT, and the waiting reader gets the
    // next good write whole.
    std::vector<unsigned char> in2(kLen);
    std::thread reader2([&] {
      rump_kernel_set_current(up.k);
      TCHECK(rump_lwproc_newlwp(k.pid) == 0);
      TCHECK(read_whole(in2));
      rump_lwproc_releaselwp();
    });
    CHECK_ERRNO(EFAULT, rump_sys_write(c.a_to_b_wr, bad, kLen));
    CHECK(rump_sys_write(c.a_to_b_wr, out.data(), kLen) == static_cast<long>(kLen));
    reader2.join();
    CHECK_THREADS_OK();
    CHECK(in2 == out);
    c.close_all();
  }
}

TEST_CASE("hand-over: an isolated process echoes every size intact, straight into waiting readers or through the buffer",
          "[net][pipe][concurrency]") {
  for (Kind kind : {Kind::kSocketpair, Kind::kPipes}) {
    INFO(name(kind));
    KernelUp up({.ncpu = 2});
    Kid host = fork_and_switch();
    Channels c = open_channels(kind);
    Kid iso = rump_test::fork_kid(RUMP_RFFDG | RUMP_RFVMSPACE);
    // Around PIPE_BUF, a record piece, a pipe's ring, a socket's buffer,
    // and past it.
    const std::vector<size_t> sizes = {4096, 4097, 16384, 16385, 65536, 65537, 212992, 300000};
    constexpr size_t kMax = 300000;
    // The isolated process reads each message into its own memory and
    // writes it back from there; host-space threads send and check.
    std::thread echo = run_in(up.k, iso.pid, [&] {
      char* g = static_cast<char*>(rump_test::guest_map(kMax));
      TCHECK(g != MAP_FAILED);
      std::atomic<long> eintr{0};
      for (size_t n : sizes) {
        TCHECK(read_all(c.a_to_b_rd, g, n, eintr));
        TCHECK(write_all(c.b_to_a_wr, g, n, eintr));
      }
    });
    std::thread sender = run_in(up.k, host.pid, [&] {
      std::vector<unsigned char> out(kMax);
      std::atomic<long> eintr{0};
      for (size_t n : sizes) {
        for (size_t i = 0; i < n; i++) out[i] = pattern(i + n, 3);
        TCHECK(write_all(c.a_to_b_wr, out.data(), n, eintr));
      }
    });
    std::vector<unsigned char> in(kMax);
    std::atomic<long> eintr{0};
    for (size_t n : sizes) {
      INFO("size " << n);
      REQUIRE(read_all(c.b_to_a_rd, in.data(), n, eintr));
      bool intact = true;
      for (size_t i = 0; i < n; i++) intact = intact && in[i] == pattern(i + n, 3);
      CHECK(intact);
    }
    echo.join();
    sender.join();
    CHECK_THREADS_OK();
    c.close_all();
  }
}

TEST_CASE("hand-over: a fault in an isolated process's buffer is EFAULT to it, and no byte is lost", "[net][pipe]") {
  for (Kind kind : {Kind::kSocketpair, Kind::kPipes}) {
    INFO(name(kind));
    KernelUp up({.ncpu = 2});
    Kid host = fork_and_switch();
    Channels c = open_channels(kind);
    Kid iso = rump_test::fork_kid(RUMP_RFFDG | RUMP_RFVMSPACE);
    constexpr size_t kPage = 4096;
    constexpr size_t kLen = 3 * kPage;  // more than PIPE_BUF and a small record: may go straight
    // In the isolated space: good at g, and at g + kPage a buffer whose
    // last page is not mapped.
    char* g = rump_test::as(iso.l, [&] {
      char* m = static_cast<char*>(rump_test::guest_map(4 * kPage));
      REQUIRE(m != MAP_FAILED);
      REQUIRE(rump_sys_munmap(m + 3 * kPage, kPage) == 0);
      return m;
    });
    std::vector<unsigned char> out(kLen);
    for (size_t i = 0; i < kLen; i++) out[i] = pattern(i, 4);

    // The isolated reader faults (waiting, or not yet, when the bytes come):
    // EFAULT, and the bytes stay for its next read.
    std::atomic<long> r{99};
    std::atomic<int> e{0};
    std::thread reader = run_in(up.k, iso.pid, [&] {
      r = rump_sys_read(c.a_to_b_rd, g + kPage, kLen);
      e = errno;
    });
    CHECK(rump_sys_write(c.a_to_b_wr, out.data(), kLen) == static_cast<long>(kLen));
    reader.join();
    CHECK(r == -1);
    CHECK(e == EFAULT);
    std::vector<unsigned char> in(kLen);
    rump_test::as(iso.l, [&] {
      std::atomic<long> eintr{0};
      CHECK(read_all(c.a_to_b_rd, g, kLen, eintr));
      CHECK(rump_copyin(g, in.data(), kLen) == 0);
      return 0;
    });
    CHECK(in == out);

    // The isolated writer faults: EFAULT, nothing of it arrives, and the
    // waiting host-space reader gets the next good write whole.
    std::vector<unsigned char> in2(kLen);
    std::thread reader2 = run_in(up.k, host.pid, [&] {
      std::atomic<long> eintr{0};
      TCHECK(read_all(c.a_to_b_rd, in2.data(), kLen, eintr));
    });
    rump_test::as(iso.l, [&] {
      CHECK(rump_copyout(out.data(), g, kLen) == 0);
      CHECK_ERRNO(EFAULT, rump_sys_write(c.a_to_b_wr, g + kPage, kLen));
      CHECK(rump_sys_write(c.a_to_b_wr, g, kLen) == static_cast<long>(kLen));
      return 0;
    });
    reader2.join();
    CHECK_THREADS_OK();
    CHECK(in2 == out);
    c.close_all();
  }
}

TEST_CASE("hand-over: three writers and one reader on one stream: each writer's bytes arrive whole and in order",
          "[net][pipe][concurrency]") {
  for (Kind kind : {Kind::kSocketpair, Kind::kPipes}) {
    INFO(name(kind));
    KernelUp up({.ncpu = 2});
    Kid k = fork_and_switch();
    Channels c = open_channels(kind);
    // Every write and read is a multiple of 8 bytes, a tag (writer,
    // sequence) each, and so is every piece the kernel moves: the tags
    // arrive whole, each writer's in order, whatever the interleaving.
    constexpr int kWriters = 3;
    constexpr uint32_t kTags = 150000;  // per writer, 1.2 MB
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; w++) {
      writers.push_back(std::thread([&, w] {
        rump_kernel_set_current(up.k);
        TCHECK(rump_lwproc_newlwp(k.pid) == 0);
        Lcg g{static_cast<uint64_t>(10 + w)};
        std::vector<uint32_t> buf(2 * 9000);
        std::atomic<long> eintr{0};
        for (uint32_t seq = 0; seq < kTags;) {
          uint32_t n = static_cast<uint32_t>(g.upto(9000));
          if (n > kTags - seq) n = kTags - seq;
          for (uint32_t i = 0; i < n; i++) {
            buf[2 * i] = static_cast<uint32_t>(w);
            buf[2 * i + 1] = seq + i;
          }
          if (!write_all(c.a_to_b_wr, buf.data(), n * 8, eintr)) {
            TFAIL("write");
            break;
          }
          seq += n;
        }
        rump_lwproc_releaselwp();
      }));
    }
    Lcg g{99};
    std::vector<uint32_t> buf(2 * 12000);
    uint32_t next[kWriters] = {};
    bool whole = true;
    size_t left = size_t{kWriters} * kTags * 8;
    while (left > 0 && whole) {
      size_t want = 8 * g.upto(12000);
      if (want > left) want = left;
      long r = rump_sys_read(c.a_to_b_rd, buf.data(), want);
      REQUIRE(r > 0);
      if (r % 8 != 0) {
        whole = false;
        break;
      }
      for (long i = 0; i < r / 8; i++) {
        uint32_t w = buf[2 * i], seq = buf[2 * i + 1];
        if (w >= kWriters || seq != next[w]) {
          whole = false;
          break;
        }
        next[w]++;
      }
      left -= static_cast<size_t>(r);
    }
    for (std::thread& t : writers) t.join();
    CHECK_THREADS_OK();
    CHECK(whole);
    for (uint32_t n : next) CHECK(n == kTags);
    c.close_all();
  }
}
