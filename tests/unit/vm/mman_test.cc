// The memory syscalls in an isolated process (Linux semantics through
// libvmspace) and in a host-space process (host memory from the hypercall
// layer, tracked per process).
#include <unistd.h>

#include <cstring>
#include <vector>

#include <rump/rump.h>
#include <rump/vmspace.h>

#include "rump_test.h"

using rump_test::guest_map;
using rump_test::isolated_proc;
using rump_test::KernelUp;
using rump_test::P;
using rump_test::U;

namespace {

constexpr size_t kPg = 4096;

// Host check: is the page at p mapped in this (host) process?
bool host_mapped(void* p) {
  unsigned char v;
  return mincore(p, kPg, &v) == 0;
}

}  // namespace

TEST_CASE("isolated mmap gives guest memory reachable only through copyin/copyout", "[vm][mman]") {
  KernelUp k({.ncpu = 2});
  isolated_proc();
  char* g = static_cast<char*>(guest_map(3 * kPg));
  REQUIRE(g != MAP_FAILED);
  char buf[64] = "hello, guest";
  CHECK(rump_copyout(buf, g + kPg - 5, sizeof buf) == 0);  // across a page boundary
  char back[64] = {};
  CHECK(rump_copyin(g + kPg - 5, back, sizeof back) == 0);
  CHECK(std::memcmp(buf, back, sizeof buf) == 0);
  // Unmapped, NULL, wrapping: EFAULT.
  CHECK(rump_copyin(nullptr, back, 1) == EFAULT);
  CHECK(rump_copyin(g + 3 * kPg, back, 1) == EFAULT);
  CHECK(rump_copyout(buf, g + 3 * kPg - 2, 4) == EFAULT);  // straddles the end
  CHECK(rump_copyin(P(~uintptr_t{0} - 10), back, 20) == EFAULT);
  // Read-only page: copyin fine, copyout EFAULT.
  REQUIRE(rump_sys_mprotect(g, kPg, PROT_READ) == 0);
  CHECK(rump_copyin(g, back, 8) == 0);
  CHECK(rump_copyout(buf, g, 8) == EFAULT);
  REQUIRE(rump_sys_mprotect(g, kPg, PROT_NONE) == 0);
  CHECK(rump_copyin(g, back, 8) == EFAULT);
  rump_lwproc_releaselwp();
}

TEST_CASE("isolated mmap validates like Linux", "[vm][mman]") {
  KernelUp k({.ncpu = 2});
  isolated_proc();
  CHECK_ERRNO(EINVAL, rump_sys_mmap(nullptr, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  CHECK_ERRNO(EINVAL, rump_sys_mmap(nullptr, kPg, PROT_READ, MAP_ANONYMOUS, -1, 0));  // neither
  CHECK_ERRNO(EINVAL, rump_sys_mmap(nullptr, kPg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 100));
  CHECK_ERRNO(EINVAL, rump_sys_mmap(nullptr, kPg, 0x100, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  CHECK_ERRNO(EINVAL, rump_sys_mmap(P(0x100001), kPg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
  CHECK_ERRNO(ENOMEM, rump_sys_mmap(nullptr, ~size_t{0} - 10, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  CHECK_ERRNO(EOPNOTSUPP, rump_sys_mmap(nullptr, kPg, PROT_READ, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x800000, -1, 0));
  // Files (file_map_test.cc has the rest): a descriptor that is not open.
  CHECK_ERRNO(EBADF, rump_sys_mmap(nullptr, kPg, PROT_READ, MAP_PRIVATE, -1, 0));
  CHECK_ERRNO(EBADF, rump_sys_mmap(nullptr, kPg, PROT_READ, MAP_PRIVATE, 3, 0));
  // Fixed placement, NOREPLACE.
  void* a = guest_map(2 * kPg, PROT_READ | PROT_WRITE, P(0x200000), MAP_FIXED);
  CHECK(a == P(0x200000));
  CHECK_ERRNO(EEXIST, guest_map(kPg, PROT_READ, P(0x201000), MAP_FIXED_NOREPLACE));
  // Shared anonymous works too.
  void* s = rump_sys_mmap(nullptr, kPg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(s != MAP_FAILED);
  rump_lwproc_releaselwp();
}

TEST_CASE("isolated munmap, mprotect, madvise, mincore, msync, mlock, mremap", "[vm][mman]") {
  KernelUp k({.ncpu = 2});
  isolated_proc();
  char* g = static_cast<char*>(guest_map(4 * kPg));
  REQUIRE(g != MAP_FAILED);
  uint32_t v = 0xdeadbeef, r = 0;

  SECTION("munmap: holes fine, pages gone, unaligned EINVAL") {
    CHECK(rump_sys_munmap(g + kPg, kPg) == 0);
    CHECK(rump_sys_munmap(g + kPg, kPg) == 0);  // already a hole
    CHECK(rump_copyout(&v, g + kPg, 4) == EFAULT);
    CHECK(rump_copyout(&v, g, 4) == 0);
    CHECK_ERRNO(EINVAL, rump_sys_munmap(g + 1, kPg));
    CHECK_ERRNO(EINVAL, rump_sys_munmap(g, 0));
  }
  SECTION("mprotect: ENOMEM over a hole, EINVAL unaligned or bad prot") {
    REQUIRE(rump_sys_munmap(g + 2 * kPg, kPg) == 0);
    CHECK_ERRNO(ENOMEM, rump_sys_mprotect(g, 4 * kPg, PROT_READ));
    CHECK_ERRNO(EINVAL, rump_sys_mprotect(g + 1, kPg, PROT_READ));
    CHECK_ERRNO(EINVAL, rump_sys_mprotect(g, kPg, 0x1000));
    CHECK(rump_sys_mprotect(g, kPg, PROT_READ) == 0);
    CHECK(rump_copyout(&v, g, 4) == EFAULT);
    CHECK(rump_copyout(&v, g + kPg, 4) == 0);
  }
  SECTION("madvise(MADV_DONTNEED) zeroes private anonymous pages") {
    REQUIRE(rump_copyout(&v, g + kPg, 4) == 0);
    CHECK(rump_sys_madvise(g, 4 * kPg, MADV_DONTNEED) == 0);
    CHECK(rump_copyin(g + kPg, &r, 4) == 0);
    CHECK(r == 0);
    CHECK_ERRNO(EINVAL, rump_sys_madvise(g, kPg, 12345));
    CHECK_ERRNO(ENOMEM, rump_sys_madvise(g + 8 * kPg, kPg, MADV_WILLNEED));
  }
  SECTION("mincore reports the touched pages through copyout") {
    REQUIRE(rump_copyout(&v, g + 2 * kPg, 4) == 0);
    // The vector lives in guest memory too.
    unsigned char* vec = static_cast<unsigned char*>(guest_map(kPg));
    REQUIRE(rump_sys_mincore(g, 4 * kPg, vec) == 0);
    unsigned char got[4];
    REQUIRE(rump_copyin(vec, got, 4) == 0);
    CHECK(got[0] == 0);
    CHECK(got[2] == 1);
    CHECK_ERRNO(EFAULT, rump_sys_mincore(g, 4 * kPg, nullptr));
    CHECK_ERRNO(EINVAL, rump_sys_mincore(g + 1, kPg, vec));
    CHECK_ERRNO(ENOMEM, rump_sys_mincore(g + 16 * kPg, kPg, vec));
    REQUIRE(rump_sys_mprotect(vec, kPg, PROT_READ) == 0);
    CHECK_ERRNO(EFAULT, rump_sys_mincore(g, 4 * kPg, vec));  // read-only output
  }
  SECTION("msync and mlock/munlock") {
    CHECK(rump_sys_msync(g, 4 * kPg, MS_SYNC) == 0);
    CHECK_ERRNO(EINVAL, rump_sys_msync(g, kPg, MS_SYNC | MS_ASYNC));
    CHECK_ERRNO(EINVAL, rump_sys_msync(g + 1, kPg, MS_SYNC));
    CHECK_ERRNO(ENOMEM, rump_sys_msync(g + 16 * kPg, kPg, MS_SYNC));
    CHECK(rump_sys_mlock(g, 2 * kPg) == 0);
    CHECK_ERRNO(EBUSY, rump_sys_msync(g, kPg, MS_INVALIDATE));
    CHECK(rump_sys_munlock(g, 2 * kPg) == 0);
    CHECK_ERRNO(ENOMEM, rump_sys_mlock(g + 16 * kPg, kPg));
  }
  SECTION("mremap grows, shrinks and moves keeping content") {
    REQUIRE(rump_copyout(&v, g, 4) == 0);
    char* n = static_cast<char*>(rump_sys_mremap(g, 4 * kPg, 64 * kPg, MREMAP_MAYMOVE, nullptr));
    REQUIRE(n != MAP_FAILED);
    CHECK(rump_copyin(n, &r, 4) == 0);
    CHECK(r == v);
    CHECK(rump_copyout(&v, n + 63 * kPg, 4) == 0);
    CHECK(rump_sys_mremap(n, 64 * kPg, kPg, 0, nullptr) == n);
    CHECK(rump_copyout(&v, n + kPg, 4) == EFAULT);
    CHECK_ERRNO(EINVAL, rump_sys_mremap(n + 1, kPg, kPg, 0, nullptr));
    CHECK_ERRNO(EFAULT, rump_sys_mremap(P(0x300000), kPg, 2 * kPg, MREMAP_MAYMOVE, nullptr));
  }
  rump_lwproc_releaselwp();
}

TEST_CASE("isolated brk: heap after the base, brk(0) is the break", "[vm][mman]") {
  KernelUp k({.ncpu = 2});
  isolated_proc();
  char* base = static_cast<char*>(rump_sys_brk(nullptr));
  REQUIRE(base != MAP_FAILED);
  REQUIRE(base != nullptr);
  uint32_t v = 7, r = 0;
  CHECK(rump_copyout(&v, base, 4) == EFAULT);  // nothing there yet
  CHECK(rump_sys_brk(base + 10000) == base + 10000);
  CHECK(rump_copyout(&v, base + 9990, 4) == 0);
  CHECK(rump_copyout(&v, base + 3 * kPg, 4) == EFAULT);  // past the page holding the break
  CHECK(rump_sys_brk(base + 100) == base + 100);          // shrink
  CHECK(rump_copyout(&v, base + 9990, 4) == EFAULT);
  CHECK(rump_sys_brk(base + 10000) == base + 10000);       // regrown pages read zero
  CHECK(rump_copyin(base + 9990, &r, 4) == 0);
  CHECK(r == 0);
  CHECK(rump_sys_brk(base - kPg) == base + 10000);          // below the base: unchanged
  CHECK(rump_sys_brk(P(~uintptr_t{0} - 10)) == base + 10000);
  // Into an existing mapping: refused.
  void* m = guest_map(kPg, PROT_READ, base + 8 * kPg, MAP_FIXED);
  REQUIRE(m == base + 8 * kPg);
  CHECK(rump_sys_brk(base + 12 * kPg) == base + 10000);
  rump_lwproc_releaselwp();
}

TEST_CASE("host-space mmap gives usable host memory; munmap and exit release it", "[vm][mman][host]") {
  KernelUp k({.ncpu = 2});
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);  // a host-space process
  size_t before = k.mem();
  char* p = static_cast<char*>(guest_map(4 * kPg));
  REQUIRE(p != MAP_FAILED);
  std::memset(p, 0x5a, 4 * kPg);  // really ours
  CHECK(host_mapped(p));
  // Partial unmap splits the region; the rest stays usable.
  CHECK(rump_sys_munmap(p + kPg, kPg) == 0);
  CHECK(!host_mapped(p + kPg));
  CHECK(host_mapped(p + 2 * kPg));
  p[3 * kPg] = 1;
  // Unmapping what we did not hand out touches nothing.
  std::vector<char> mine(8 * kPg);
  char* hostpage = reinterpret_cast<char*>((U(mine.data()) + kPg - 1) & ~(kPg - 1));
  CHECK(rump_sys_munmap(hostpage, kPg) == 0);
  CHECK(host_mapped(hostpage));
  CHECK_ERRNO(ENOMEM, rump_sys_mprotect(hostpage, kPg, PROT_READ));
  CHECK_ERRNO(ENOMEM, rump_sys_madvise(hostpage, kPg, MADV_DONTNEED));
  CHECK_ERRNO(ENOMEM, rump_sys_mlock(hostpage, kPg));
  CHECK_ERRNO(ENOMEM, rump_sys_msync(hostpage, kPg, MS_SYNC));
  // mprotect/madvise on ours.
  CHECK(rump_sys_mprotect(p, kPg, PROT_READ) == 0);
  CHECK(rump_sys_mprotect(p, kPg, PROT_READ | PROT_WRITE) == 0);
  p[0] = 9;
  CHECK(rump_sys_madvise(p, kPg, MADV_DONTNEED) == 0);
  CHECK(p[0] == 0);
  unsigned char vec[4] = {};
  CHECK(rump_sys_mincore(p + 2 * kPg, 2 * kPg, vec) == 0);
  CHECK(vec[0] == 1);
  CHECK_ERRNO(ENOMEM, rump_sys_mincore(p, 4 * kPg, vec));  // the hole
  CHECK(rump_sys_mlock(p, kPg) == 0);
  // mremap: move with content.
  char* q = static_cast<char*>(rump_sys_mremap(p + 2 * kPg, 2 * kPg, 16 * kPg, MREMAP_MAYMOVE, nullptr));
  REQUIRE(q != MAP_FAILED);
  CHECK(q[kPg] == 1);
  q[15 * kPg] = 3;
  CHECK_ERRNO(EFAULT, rump_sys_mremap(hostpage, kPg, 2 * kPg, MREMAP_MAYMOVE, nullptr));
  // brk: emulated in a reserved region.
  char* b = static_cast<char*>(rump_sys_brk(nullptr));
  REQUIRE(b != MAP_FAILED);
  CHECK(rump_sys_brk(b + 100000) == b + 100000);
  b[99999] = 1;
  CHECK(rump_sys_brk(b + (1L << 40)) == b + 100000);
  // Exit releases everything.
  char* big = static_cast<char*>(guest_map(256 * kPg));
  REQUIRE(big != MAP_FAILED);
  big[0] = 1;
  CHECK(k.mem() > before);
  rump_lwproc_releaselwp();
  CHECK(!host_mapped(p));
  CHECK(!host_mapped(q));
  CHECK(!host_mapped(big));
  CHECK(!host_mapped(b));
  CHECK(k.mem() <= before);
}

TEST_CASE("isolated memory is charged to the kernel (RUMP_MEMLIMIT covers it)", "[vm][mman]") {
  KernelUp k({.ncpu = 2, .memlimit = 8u << 20});
  isolated_proc();
  char* g = static_cast<char*>(guest_map(64u << 20));
  REQUIRE(g != MAP_FAILED);
  std::vector<char> page(kPg, 1);
  int e = 0;
  size_t i = 0;
  for (; i < (64u << 20) / kPg; i++)
    if ((e = rump_copyout(page.data(), g + i * kPg, kPg)) != 0) break;
  CHECK(e != 0);  // the limit stopped it (ENOMEM surfaces as a failed copy)
  CHECK(i < 2048);
  rump_lwproc_releaselwp();
}
