// Pipes used from an isolated process: the bytes move straight between the
// guest's memory and the pipe's ring (through copyin/copyout), so a
// wrapping ring, a second thread of the process and bad buffers are
// checked here.
#include <fcntl.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include <rump/rump.h>
#include <rump/vmspace.h>

#include "rump_test.h"

using rump_test::guest_map;
using rump_test::isolated_proc;
using rump_test::KernelUp;

namespace {

constexpr size_t kPg = 4096;

void fill(void* guest, size_t n, unsigned seed) {
  std::vector<unsigned char> b(n);
  for (size_t i = 0; i < n; i++) b[i] = static_cast<unsigned char>((seed + i) % 251);
  REQUIRE(rump_copyout(b.data(), guest, n) == 0);
}

bool holds(void* guest, size_t n, unsigned seed) {
  std::vector<unsigned char> b(n);
  REQUIRE(rump_copyin(guest, b.data(), n) == 0);
  for (size_t i = 0; i < n; i++)
    if (b[i] != static_cast<unsigned char>((seed + i) % 251)) return false;
  return true;
}

// pipe2 into guest memory; the descriptors come back to the host.
void guest_pipe(int* fds, int flags) {
  void* g = guest_map(kPg);
  REQUIRE(g != MAP_FAILED);
  REQUIRE(rump_sys_pipe2(static_cast<int*>(g), flags) == 0);
  REQUIRE(rump_copyin(g, fds, 2 * sizeof(int)) == 0);
}

}  // namespace

TEST_CASE("pipe: an isolated process's bytes go through a wrapping ring in order", "[vm][pipe]") {
  KernelUp k({.ncpu = 2});
  isolated_proc();
  int p[2];
  guest_pipe(p, O_NONBLOCK);
  char* src = static_cast<char*>(guest_map(64 * kPg));
  char* dst = static_cast<char*>(guest_map(64 * kPg));
  REQUIRE(src != MAP_FAILED);
  REQUIRE(dst != MAP_FAILED);
  // 40000 in, 30000 out, 40000 in (wraps the 64 KiB ring), 50000 out.
  fill(src, 40000, 0);
  CHECK(rump_sys_write(p[1], src, 40000) == 40000);
  CHECK(rump_sys_read(p[0], dst, 30000) == 30000);
  CHECK(holds(dst, 30000, 0));
  fill(src, 40000, 40000);
  CHECK(rump_sys_write(p[1], src, 40000) == 40000);
  CHECK(rump_sys_read(p[0], dst, 64 * kPg) == 50000);
  CHECK(holds(dst, 50000, 30000));
  // Full: a non-blocking write takes what fits, then EAGAIN.
  fill(src, 64 * kPg, 7);
  CHECK(rump_sys_write(p[1], src, 64 * kPg) == 65536);
  CHECK(rump_sys_write(p[1], src, 1) == -1);
  CHECK(errno == EAGAIN);
  CHECK(rump_sys_read(p[0], dst, 64 * kPg) == 65536);
  CHECK(holds(dst, 65536, 7));
  rump_sys_close(p[0]);
  rump_sys_close(p[1]);
  rump_lwproc_releaselwp();
}

TEST_CASE("pipe: unmapped buffers are EFAULT and move nothing", "[vm][pipe]") {
  KernelUp k({.ncpu = 2});
  isolated_proc();
  int p[2];
  guest_pipe(p, O_NONBLOCK);
  char* g = static_cast<char*>(guest_map(2 * kPg));
  REQUIRE(g != MAP_FAILED);
  REQUIRE(rump_sys_munmap(g + kPg, kPg) == 0);
  char* hole = g + kPg;
  CHECK(rump_sys_write(p[1], hole, 100) == -1);
  CHECK(errno == EFAULT);
  CHECK(rump_sys_read(p[0], g, 100) == -1);
  CHECK(errno == EAGAIN);  // nothing went in
  fill(g, 100, 3);
  CHECK(rump_sys_write(p[1], g, 100) == 100);
  CHECK(rump_sys_read(p[0], hole, 100) == -1);
  CHECK(errno == EFAULT);
  CHECK(rump_sys_read(p[0], g + 200, 100) == 100);  // still there
  CHECK(holds(g + 200, 100, 3));
  rump_sys_close(p[0]);
  rump_sys_close(p[1]);
  rump_lwproc_releaselwp();
}

TEST_CASE("pipe: two threads of an isolated process stream through it", "[vm][pipe][concurrency]") {
  KernelUp k({.ncpu = 2});
  struct lwp* reader = isolated_proc();
  int p[2];
  guest_pipe(p, 0);
  constexpr size_t kChunk = 24 * kPg, kRounds = 64;
  char* src = static_cast<char*>(guest_map(kChunk));
  char* dst = static_cast<char*>(guest_map(kChunk));
  REQUIRE(src != MAP_FAILED);
  REQUIRE(dst != MAP_FAILED);
  fill(src, kChunk, 11);
  REQUIRE(rump_lwproc_newlwp(rump_sys_getpid()) == 0);
  struct lwp* writer = rump_lwproc_curlwp();
  rump_lwproc_switch(reader);
  std::atomic<int> bad{0};
  std::thread w([&] {
    rump_kernel_set_current(k.k);
    rump_lwproc_switch(writer);
    for (size_t i = 0; i < kRounds; i++)
      if (rump_sys_write(p[1], src, kChunk) != static_cast<long>(kChunk)) bad++;
    rump_sys_close(p[1]);
    rump_lwproc_releaselwp();
  });
  // The stream is the same chunk over and over: check each byte against
  // its place in the chunk.
  size_t total = 0;
  bool ok = true;
  std::vector<unsigned char> b(kChunk);
  for (;;) {
    long n = rump_sys_read(p[0], dst, kChunk);
    REQUIRE(n >= 0);
    if (n == 0) break;
    REQUIRE(rump_copyin(dst, b.data(), n) == 0);
    for (long i = 0; i < n; i++)
      if (b[i] != static_cast<unsigned char>((11 + (total + i) % kChunk) % 251)) ok = false;
    total += n;
  }
  w.join();
  CHECK(bad == 0);
  CHECK(ok);
  CHECK(total == kChunk * kRounds);
  rump_sys_close(p[0]);
  rump_lwproc_releaselwp();
}
