// The network hypercalls of <rump/rumpuser_net.h> against the real host:
// shared mappings of one file seen through two mappings, the shared
// futex wait and wake, and the tap calls' argument errors (opening a real
// tap is the virt interface's test, tests/unit/net/netif/tap_test.cc).
#include <rump/rumpuser_net.h>

#include <catch2/catch.hpp>
#include <sys/stat.h>
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
