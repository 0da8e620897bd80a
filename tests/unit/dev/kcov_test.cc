// /dev/kcov and rump/kcov.h: per-LWP coverage. In a kernel built with
// -Dkcov=true (RUMP_KCOV_BUILT here), an LWP sees the kernel code its own
// calls reach and nothing of another LWP's; built without, neither the
// device nor the C API exists.
#include <rump/kcov.h>
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <set>
#include <thread>

#include "rump_test.h"

using rump_test::KernelUp;

namespace {

constexpr size_t kWords = 64 * 1024;

#if RUMP_KCOV_BUILT
// The PCs one call of fn records.
template <class Fn>
std::set<uint64_t> pcs_of(uint64_t* area, Fn&& fn) {
  __atomic_store_n(&area[0], 0, __ATOMIC_RELAXED);
  fn();
  uint64_t n = __atomic_load_n(&area[0], __ATOMIC_RELAXED);
  REQUIRE(n < kWords);
  return std::set<uint64_t>(area + 1, area + 1 + n);
}
#endif

}  // namespace

#if RUMP_KCOV_BUILT

TEST_CASE("kcov: an LWP sees coverage of its own calls and none of another LWP's", "[kcov]") {
  KernelUp k;
  rump_kcov* kc = nullptr;
  REQUIRE(rump_kcov_open(kWords, &kc) == 0);
  uint64_t* area = rump_kcov_area(kc);
  REQUIRE(area != nullptr);
  REQUIRE(rump_kcov_enable(kc, RUMP_KCOV_TRACE_PC) == 0);
  CHECK(rump_kcov_enable(kc, RUMP_KCOV_TRACE_PC) == EBUSY);
  __atomic_store_n(&area[0], 0, __ATOMIC_RELAXED);
  // Another host thread (its own implicit LWP) works in the kernel.
  std::thread other([] {
    for (int i = 0; i < 100; i++) {
      int fd = rump_sys_open("/dev/null", O_RDONLY, 0);
      rump_sys_close(fd);
    }
    // Another LWP cannot stop this one's tracing.
  });
  other.join();
  CHECK(__atomic_load_n(&area[0], __ATOMIC_RELAXED) == 0);
  // This thread's own call is seen.
  CHECK(rump_sys_getpid() == 1);
  CHECK(__atomic_load_n(&area[0], __ATOMIC_RELAXED) > 0);
  REQUIRE(rump_kcov_disable(kc) == 0);
  __atomic_store_n(&area[0], 0, __ATOMIC_RELAXED);
  CHECK(rump_sys_getpid() == 1);
  CHECK(__atomic_load_n(&area[0], __ATOMIC_RELAXED) == 0);
  CHECK(rump_kcov_disable(kc) == EINVAL);
  rump_kcov_close(kc);
}

TEST_CASE("kcov: different syscalls reach different code", "[kcov]") {
  KernelUp k;
  rump_kcov* kc = nullptr;
  REQUIRE(rump_kcov_open(kWords, &kc) == 0);
  uint64_t* area = rump_kcov_area(kc);
  REQUIRE(rump_kcov_enable(kc, RUMP_KCOV_TRACE_PC) == 0);
  std::set<uint64_t> getpid = pcs_of(area, [] { rump_sys_getpid(); });
  std::set<uint64_t> open = pcs_of(area, [] { rump_sys_close(rump_sys_open("/dev/null", O_RDONLY, 0)); });
  std::set<uint64_t> getpid2 = pcs_of(area, [] { rump_sys_getpid(); });
  CHECK(!getpid.empty());
  CHECK(getpid == getpid2);  // the same call, the same code
  size_t only_open = 0;
  for (uint64_t pc : open) only_open += getpid.count(pc) == 0;
  CHECK(only_open > 0);
  CHECK(open.size() > getpid.size());
  REQUIRE(rump_kcov_disable(kc) == 0);
  rump_kcov_close(kc);
}

TEST_CASE("kcov: comparison records carry type, operands and PC", "[kcov]") {
  KernelUp k;
  rump_kcov* kc = nullptr;
  REQUIRE(rump_kcov_open(kWords, &kc) == 0);
  uint64_t* area = rump_kcov_area(kc);
  REQUIRE(rump_kcov_enable(kc, RUMP_KCOV_TRACE_CMP) == 0);
  __atomic_store_n(&area[0], 0, __ATOMIC_RELAXED);
  CHECK(rump_sys_open("/no/such/file", O_RDONLY, 0) == -1);
  uint64_t n = __atomic_load_n(&area[0], __ATOMIC_RELAXED);
  REQUIRE(n > 0);
  REQUIRE(n * 4 + 1 <= kWords);
  bool saw_const = false;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t type = area[1 + i * 4];
    CHECK(type <= (RUMP_KCOV_CMP_SIZE(3) | RUMP_KCOV_CMP_CONST));
    CHECK(area[1 + i * 4 + 3] != 0);  // a PC
    saw_const |= (type & RUMP_KCOV_CMP_CONST) != 0;
  }
  CHECK(saw_const);
  REQUIRE(rump_kcov_disable(kc) == 0);
  rump_kcov_close(kc);
}

// The example of Linux's Documentation/dev-tools/kcov.rst, on rump_sys_*.
TEST_CASE("kcov: Linux's usage example works through /dev/kcov", "[kcov]") {
  KernelUp k;
  constexpr unsigned long kCoverSize = 64 << 10;
  int fd = rump_sys_open("/dev/kcov", O_RDWR, 0);
  REQUIRE(fd >= 0);
  // Setup trace mode and trace size.
  REQUIRE(rump_sys_ioctl(fd, RUMP_KCOV_INIT_TRACE, reinterpret_cast<void*>(kCoverSize)) == 0);
  // Mmap buffer shared between kernel- and user-space.
  void* m = rump_sys_mmap(nullptr, kCoverSize * sizeof(unsigned long), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  REQUIRE(m != MAP_FAILED);
  auto* cover = static_cast<unsigned long*>(m);
  // Enable coverage collection on the current thread.
  REQUIRE(rump_sys_ioctl(fd, RUMP_KCOV_ENABLE, reinterpret_cast<void*>(RUMP_KCOV_TRACE_PC)) == 0);
  // Reset coverage from the tail of the ioctl() call.
  __atomic_store_n(&cover[0], 0, __ATOMIC_RELAXED);
  // Call the target syscall call.
  rump_sys_read(-1, nullptr, 0);
  // Read number of PCs collected.
  unsigned long n = __atomic_load_n(&cover[0], __ATOMIC_RELAXED);
  CHECK(n > 0);
  for (unsigned long i = 0; i < n; i++) CHECK(cover[i + 1] != 0);
  // Disable coverage collection for the current thread. After this call
  // coverage can be enabled for a different thread.
  REQUIRE(rump_sys_ioctl(fd, RUMP_KCOV_DISABLE, nullptr) == 0);
  // A wrong size or a second INIT_TRACE are errors, as on Linux.
  CHECK(rump_sys_mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED);
  CHECK(rump_sys_ioctl(fd, RUMP_KCOV_INIT_TRACE, reinterpret_cast<void*>(kCoverSize)) == -1);
  // Free resources.
  CHECK(rump_sys_munmap(m, kCoverSize * sizeof(unsigned long)) == 0);
  CHECK(rump_sys_close(fd) == 0);
}

TEST_CASE("kcov: a process with an isolated address space maps the buffer too", "[kcov]") {
  KernelUp k;
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG | RUMP_RFVMSPACE) == 0);
  constexpr size_t kBytes = kWords * sizeof(uint64_t);
  // Paths and buffers live in the process's own space.
  void* scratch = rump_sys_mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(scratch != MAP_FAILED);
  static const char kPath[] = "/dev/kcov";
  REQUIRE(rump_copyout(kPath, scratch, sizeof kPath) == 0);
  int fd = rump_sys_open(static_cast<const char*>(scratch), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(rump_sys_ioctl(fd, RUMP_KCOV_INIT_TRACE, reinterpret_cast<void*>(kWords)) == 0);
  CHECK(rump_sys_mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) == MAP_FAILED);
  CHECK(rump_sys_mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
  void* m = rump_sys_mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  REQUIRE(m != MAP_FAILED);
  auto word = [&](size_t i) {
    uint64_t v = 0;
    REQUIRE(rump_copyin(static_cast<uint64_t*>(m) + i, &v, sizeof v) == 0);
    return v;
  };
  REQUIRE(rump_sys_ioctl(fd, RUMP_KCOV_ENABLE, reinterpret_cast<void*>(RUMP_KCOV_TRACE_PC)) == 0);
  // The count is reset through the mapping, as an executor does it.
  uint64_t zero = 0;
  REQUIRE(rump_copyout(&zero, m, sizeof zero) == 0);
  rump_sys_getppid();
  uint64_t n = word(0);
  CHECK(n > 0);
  for (uint64_t i = 1; i <= n && i < 16; i++) CHECK(word(i) != 0);
  REQUIRE(rump_sys_ioctl(fd, RUMP_KCOV_DISABLE, nullptr) == 0);
  uint64_t after = word(0);
  // The mapping keeps the buffer after the descriptor is gone.
  REQUIRE(rump_sys_close(fd) == 0);
  CHECK(word(0) == after);
  CHECK(rump_sys_munmap(m, kBytes) == 0);
  rump_lwproc_releaselwp();
}

TEST_CASE("kcov: an LWP that ends while tracing lets its buffer go", "[kcov]") {
  KernelUp k;
  rump_kcov* kc = nullptr;
  REQUIRE(rump_kcov_open(kWords, &kc) == 0);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  REQUIRE(rump_kcov_enable(kc, RUMP_KCOV_TRACE_PC) == 0);
  rump_lwproc_releaselwp();  // the process ends with the buffer enabled
  // The buffer is free for another LWP.
  REQUIRE(rump_kcov_enable(kc, RUMP_KCOV_TRACE_PC) == 0);
  REQUIRE(rump_kcov_disable(kc) == 0);
  rump_kcov_close(kc);
}

#else

TEST_CASE("kcov: absent from a kernel built without it", "[kcov]") {
  KernelUp k;
  rump_kcov* kc = nullptr;
  CHECK(rump_kcov_open(kWords, &kc) == ENOSYS);
  errno = 0;
  CHECK(rump_sys_open("/dev/kcov", O_RDWR, 0) == -1);
  CHECK(errno == ENOENT);
}

#endif
