// The network hypercalls of <rump/rumpuser_net.h> against the real host:
// shared mappings of one file seen through two mappings, the shared
// futex wait and wake, the lock that outlives its holder's death, and the
// tap calls' argument errors (opening a real
// tap is the virt interface's test, tests/unit/net/netif/tap_test.cc).
#include <rump/rumpuser_net.h>

#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

TEST_CASE("rumpuser_shm_map: two mappings of one file share their bytes", "[rumpuser][net]") {
  char dir[] = "/tmp/rumpuser-shm-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  std::string path = std::string(dir) + "/f";
  void* a = nullptr;
  void* b = nullptr;
  CHECK(rumpuser_shm_map(path.c_str(), 0, &a) == EINVAL);
  CHECK(rumpuser_shm_map(dir, 4096, &a) == EISDIR);
  REQUIRE(rumpuser_shm_map(path.c_str(), 8192, &a) == 0);
  REQUIRE(rumpuser_shm_map(path.c_str(), 8192, &b) == 0);
  REQUIRE(a != b);
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK(st.st_size == 8192);
  auto* pa = static_cast<volatile uint32_t*>(a);
  auto* pb = static_cast<volatile uint32_t*>(b);
  CHECK(pb[100] == 0);  // new bytes read as zero
  pa[100] = 0xdeadbeef;
  CHECK(pb[100] == 0xdeadbeef);
  // A smaller mapping does not cut the file.
  void* c = nullptr;
  REQUIRE(rumpuser_shm_map(path.c_str(), 4096, &c) == 0);
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK(st.st_size == 8192);
  rumpuser_unmap(c, 4096);
  rumpuser_unmap(b, 8192);
  rumpuser_unmap(a, 8192);
  unlink(path.c_str());
  rmdir(dir);
}

TEST_CASE("rumpuser_shm_wait: times out, returns when the word differs, is woken", "[rumpuser][net]") {
  char dir[] = "/tmp/rumpuser-shm-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  std::string path = std::string(dir) + "/f";
  void* a = nullptr;
  void* b = nullptr;
  REQUIRE(rumpuser_shm_map(path.c_str(), 4096, &a) == 0);
  REQUIRE(rumpuser_shm_map(path.c_str(), 4096, &b) == 0);
  auto* wa = static_cast<uint32_t*>(a);
  auto* wb = static_cast<uint32_t*>(b);
  CHECK(rumpuser_shm_wait(wa, 0, 1000000) == ETIMEDOUT);
  CHECK(rumpuser_shm_wait(wa, 5, 1000000) == 0);  // the word is 0, not 5
  // A waiter on one mapping is woken through the other (a shared futex:
  // the same page, other addresses). Its timeout is far beyond the test's
  // own (meson's 120 s), so a wake that does not arrive fails the test.
  std::atomic<int> woke{0};
  std::thread t([&] {
    while (std::atomic_ref<uint32_t>(*wa).load() == 0) rumpuser_shm_wait(wa, 0, 3600LL * 1000 * 1000 * 1000);
    woke = 1;
  });
  std::atomic_ref<uint32_t>(*wb).store(1);
  rumpuser_shm_wake(wb);
  t.join();
  CHECK(woke.load() == 1);
  rumpuser_unmap(b, 4096);
  rumpuser_unmap(a, 4096);
  unlink(path.c_str());
  rmdir(dir);
}

namespace {

// A one-page shared mapping of a new file, removed at the end.
struct ShmPage {
  char dir[32] = "/tmp/rumpuser-shm-XXXXXX";
  std::string path;
  void* mem = nullptr;
  ShmPage() {
    REQUIRE(mkdtemp(dir) != nullptr);
    path = std::string(dir) + "/f";
    REQUIRE(rumpuser_shm_map(path.c_str(), 4096, &mem) == 0);
  }
  ~ShmPage() {
    rumpuser_unmap(mem, 4096);
    unlink(path.c_str());
    rmdir(dir);
  }
  uint32_t* word(size_t i) { return static_cast<uint32_t*>(mem) + i; }
};

uint32_t load(uint32_t* w) { return std::atomic_ref<uint32_t>(*w).load(); }

// A host child that takes the lock at w (a shared mapping, inherited),
// says so on a pipe, and then sleeps until killed (exit_at_once: exits
// instead, left unreaped by the caller: a zombie).
pid_t child_holding(uint32_t* w, bool exit_at_once) {
  int p[2];
  REQUIRE(pipe(p) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    int r = rumpuser_shm_lock(w);
    char c = r == 0 ? 'y' : 'n';
    if (write(p[1], &c, 1) != 1) _exit(2);
    if (exit_at_once) _exit(0);
    for (;;) pause();
  }
  close(p[1]);
  char c = 0;
  REQUIRE(read(p[0], &c, 1) == 1);
  close(p[0]);
  REQUIRE(c == 'y');
  return pid;
}

}  // namespace

TEST_CASE("rumpuser_shm_lock: holder's id, waiters bit, mutual exclusion", "[rumpuser][net]") {
  ShmPage page;
  uint32_t* w = page.word(2);
  REQUIRE(rumpuser_shm_lock(w) == 0);
  CHECK(load(w) == static_cast<uint32_t>(getpid()));
  rumpuser_shm_unlock(w);
  CHECK(load(w) == 0);
  // Two threads of one process, each adding under the lock: no update
  // lost, and the lock free at the end.
  constexpr int kRounds = 20000;
  uint32_t* counter = page.word(10);
  std::atomic<int> bad{0};
  auto adder = [&] {
    for (int i = 0; i < kRounds; i++) {
      if (rumpuser_shm_lock(w) != 0) bad++;
      uint32_t v = load(counter);
      std::atomic_ref<uint32_t>(*counter).store(v + 1);
      rumpuser_shm_unlock(w);
    }
  };
  std::thread t1(adder), t2(adder);
  t1.join();
  t2.join();
  CHECK(bad.load() == 0);
  CHECK(load(counter) == 2 * kRounds);
  CHECK(load(w) == 0);
}

TEST_CASE("rumpuser_shm_lock: a holder killed while holding is taken over with EOWNERDEAD", "[rumpuser][net]") {
  ShmPage page;
  uint32_t* w = page.word(2);
  pid_t holder = child_holding(w, false);
  CHECK((load(w) & ~RUMPUSER_SHM_LOCK_WAITERS) == static_cast<uint32_t>(holder));
  // A waiter blocks while the holder lives ...
  std::atomic<int> got{-1};
  std::thread waiter([&] { got = rumpuser_shm_lock(w); });
  usleep(20000);
  CHECK(got.load() == -1);
  CHECK((load(w) & RUMPUSER_SHM_LOCK_WAITERS) != 0);
  // ... and takes the lock over once it is dead.
  REQUIRE(kill(holder, SIGKILL) == 0);
  int st = 0;
  REQUIRE(waitpid(holder, &st, 0) == holder);
  waiter.join();
  CHECK(got.load() == EOWNERDEAD);
  CHECK((load(w) & ~RUMPUSER_SHM_LOCK_WAITERS) == static_cast<uint32_t>(getpid()));
  rumpuser_shm_unlock(w);
  CHECK(load(w) == 0);
  CHECK(rumpuser_shm_lock(w) == 0);
  rumpuser_shm_unlock(w);
}

TEST_CASE("rumpuser_shm_lock: a holder that exited (a zombie, not yet reaped) counts as dead", "[rumpuser][net]") {
  ShmPage page;
  uint32_t* w = page.word(2);
  pid_t holder = child_holding(w, true);
  CHECK(rumpuser_shm_lock(w) == EOWNERDEAD);
  rumpuser_shm_unlock(w);
  int st = 0;
  REQUIRE(waitpid(holder, &st, 0) == holder);
  CHECK(WIFEXITED(st));
}

TEST_CASE("rumpuser_tap_open: bad names", "[rumpuser][net]") {
  int fd = -1;
  CHECK(rumpuser_tap_open("", &fd) == EINVAL);
  CHECK(rumpuser_tap_open(nullptr, &fd) == EINVAL);
  CHECK(rumpuser_tap_open("a-name-longer-than-ifnamsiz", &fd) == EINVAL);
  CHECK(fd == -1);
}

TEST_CASE("rumpuser_tap_open_vnet: bad names; sendv and recvv: piece counts out of range", "[rumpuser][net]") {
  int fd = -1;
  CHECK(rumpuser_tap_open_vnet("", &fd) == EINVAL);
  CHECK(rumpuser_tap_open_vnet("a-name-longer-than-ifnamsiz", &fd) == EINVAL);
  CHECK(fd == -1);
  // A pipe stands in for the tap: one write, one read per frame.
  int p[2];
  REQUIRE(pipe(p) == 0);
  char a[3] = {'a', 'b', 'c'}, hdr[2] = {'h', 'i'};
  rumpuser_iovec iov[3] = {{hdr, 2}, {a, 3}, {a, 1}};
  size_t niov[2] = {0, 65}, sent = 9;
  CHECK(rumpuser_tap_sendv(p[1], iov, niov, 2, &sent) == EINVAL);
  CHECK(sent == 0);
  // Two frames: one of two pieces, one of one.
  size_t good[2] = {2, 1};
  CHECK(rumpuser_tap_sendv(p[1], iov, good, 2, &sent) == 0);
  CHECK(sent == 2);
  char in1[4] = {}, in2[8] = {};
  rumpuser_iovec rv[3] = {{in1, 1}, {in1 + 1, 3}, {in2, sizeof in2}};
  size_t rn[2] = {2, 65}, lens[2] = {}, got = 9;
  CHECK(rumpuser_tap_recvv(p[0], rv, rn, 2, lens, &got, 0) == EINVAL);
  // A pipe has no frame boundaries: the first read takes what fits.
  size_t rgood[1] = {2};
  CHECK(rumpuser_tap_recvv(p[0], rv, rgood, 1, lens, &got, 0) == 0);
  CHECK(got == 1);
  CHECK(lens[0] == 4);
  CHECK(std::memcmp(in1, "hiab", 4) == 0);
  close(p[0]);
  close(p[1]);
}
