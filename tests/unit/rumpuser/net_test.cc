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
