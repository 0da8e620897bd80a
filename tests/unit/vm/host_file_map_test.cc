// MAP_SHARED file mappings of a process living in the host's address space
// (a program calling rump_sys_* directly): the mapping is a view of the
// file cache's own frames. Against the host kernel's tmpfs (the same
// scenario, plain loads and stores, faults caught): stores seen by read(2)
// at once, write(2) seen by loads, two mappings seeing each other, SIGBUS
// past the end, EACCES for writable views of read-only descriptors, msync,
// partial munmap, truncation under a mapping. Then: a process exiting with
// its mapping in place, pinned pages under a memory limit, a memfd, and a
// forked host child that gets none of the kernel's frames. A view outlives
// a truncation and shows the file's pages again once it grows; reading a
// sparse mapped file allocates nothing.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <rump/rump.h>

#include "differential.h"
#include "file_map_scenario.h"
#include "rump_test.h"

using file_map_test::host_access;
using rump_diff::Sys;
using rump_diff::Trace;
using rump_test::KernelUp;

namespace {

constexpr long kPg = 4096;

// A host directory on a tmpfs when there is one.
std::string host_tmp_dir() { return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"; }

// True if the byte at p can be read (false: SIGBUS or SIGSEGV).
bool loadable(const char* p) {
  char c;
  return host_access(&c, p, 1);
}

Trace shared_scenario(Sys sys, const std::string& dir) {
  Trace trace;
  const std::string path = dir + "/mapped";
  char buf[16] = {};
  int fd = static_cast<int>(sys(SYS_openat, AT_FDCWD, path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  V(fd >= 0);
  const long size = 2 * kPg + 100;
  T(sys(SYS_ftruncate, fd, size));
  T(sys(SYS_pwrite64, fd, "hello", 5, 10));
  auto* m = reinterpret_cast<char*>(sys(SYS_mmap, nullptr, 4 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  V(m != MAP_FAILED);
  if (m == MAP_FAILED) return trace;
  // write(2), then a load; a store, then read(2) at once.
  V(std::memcmp(m + 10, "hello", 5));
  std::memcpy(m + kPg + 7, "WORLD", 5);
  T(sys(SYS_pread64, fd, buf, 5, kPg + 7));
  V(std::memcmp(buf, "WORLD", 5));
  T(sys(SYS_pwrite64, fd, "xyz", 3, 8));
  V(std::memcmp(m + 8, "xyzlo", 5));
  // A second mapping at an offset: each sees the other's stores.
  auto* m2 = reinterpret_cast<char*>(sys(SYS_mmap, nullptr, kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, kPg));
  V(m2 != MAP_FAILED);
  if (m2 == MAP_FAILED) return trace;
  V(std::memcmp(m2 + 7, "WORLD", 5));
  std::memcpy(m2 + 100, "two", 3);
  V(std::memcmp(m + kPg + 100, "two", 3));
  std::memcpy(m + kPg + 200, "one", 3);
  V(std::memcmp(m2 + 200, "one", 3));
  // Past the end inside the last page: stays out of the file. A page
  // wholly past the end: SIGBUS.
  std::memcpy(m + size + 10, "tail", 4);
  T(sys(SYS_pread64, fd, buf, 4, size + 10));
  V(loadable(m + 2 * kPg + 5));
  V(loadable(m + 3 * kPg));
  V(loadable(m + 4 * kPg - 1));
  // A read-only descriptor: no writable view, not even later.
  int ro = static_cast<int>(sys(SYS_openat, AT_FDCWD, path.c_str(), O_RDONLY, 0));
  V(ro >= 0);
  T(sys(SYS_mmap, nullptr, kPg, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0));
  auto* r = reinterpret_cast<char*>(sys(SYS_mmap, nullptr, kPg, PROT_READ, MAP_SHARED, ro, 0));
  V(r != MAP_FAILED);
  if (r == MAP_FAILED) return trace;
  T(sys(SYS_mprotect, r, kPg, PROT_READ | PROT_WRITE));
  V(std::memcmp(r + 8, "xyzlo", 5));
  // msync.
  T(sys(SYS_msync, m, 4 * kPg, MS_SYNC));
  T(sys(SYS_msync, m, kPg, MS_ASYNC));
  T(sys(SYS_msync, m, kPg, MS_INVALIDATE));
  T(sys(SYS_msync, m, kPg, MS_ASYNC | MS_SYNC));
  V(std::memcmp(m + kPg + 7, "WORLD", 5));
  // The middle page unmapped: the rest stays, the file keeps the stores.
  T(sys(SYS_munmap, m + kPg, kPg));
  V(loadable(m + kPg));
  V(std::memcmp(m + 8, "xyzlo", 5));
  std::memcpy(m + 2 * kPg, "end", 3);
  T(sys(SYS_pread64, fd, buf, 3, kPg + 100));
  V(std::memcmp(buf, "two", 3));
  T(sys(SYS_pread64, fd, buf, 3, 2 * kPg));
  V(std::memcmp(buf, "end", 3));
  // Truncation under the mappings: the tail of the last page reads as
  // zero, the pages past the new end are SIGBUS.
  T(sys(SYS_ftruncate, fd, kPg + 9));
  V(m2[7] == 'W' && m2[8] == 'O' && m2[9] == 0 && m2[100] == 0);
  V(loadable(m + 2 * kPg));
  V(loadable(m + 8));
  T(sys(SYS_munmap, m, 4 * kPg));
  T(sys(SYS_munmap, m2, kPg));
  T(sys(SYS_munmap, r, kPg));
  T(sys(SYS_close, ro));
  T(sys(SYS_close, fd));
  fd = static_cast<int>(sys(SYS_openat, AT_FDCWD, path.c_str(), O_RDONLY, 0));
  std::memset(buf, 0, sizeof buf);
  T(sys(SYS_pread64, fd, buf, 16, 0));
  V(std::memcmp(buf + 8, "xyzlo", 5));
  T(sys(SYS_pread64, fd, buf, 16, kPg));
  V(std::memcmp(buf + 7, "WO", 3));
  T(sys(SYS_close, fd));
  T(sys(SYS_unlinkat, AT_FDCWD, path.c_str(), 0));
  return trace;
}

// The byte at p, or -1 if it cannot be read (SIGBUS or SIGSEGV).
int load(const char* p) {
  unsigned char c = 0;
  return host_access(&c, p, 1) ? c : -1;
}

// A mapping outliving a truncation: the pages past the new end are
// SIGBUS; once the file grows again (ftruncate, a write past its end),
// those within the new size read the file (zeros, the bytes written)
// again and take stores.
Trace regrow_scenario(Sys sys, const std::string& dir) {
  Trace trace;
  const std::string path = dir + "/regrow";
  char buf[4] = {};
  int fd = static_cast<int>(sys(SYS_openat, AT_FDCWD, path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  V(fd >= 0);
  T(sys(SYS_ftruncate, fd, 3 * kPg));
  T(sys(SYS_pwrite64, fd, "abc", 3, 2 * kPg));
  auto* m = reinterpret_cast<char*>(sys(SYS_mmap, nullptr, 5 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  V(m != MAP_FAILED);
  if (m == MAP_FAILED) return trace;
  V(load(m + 2 * kPg));
  V(load(m + 3 * kPg));
  T(sys(SYS_ftruncate, fd, kPg));
  V(load(m + kPg));
  V(load(m + 2 * kPg));
  T(sys(SYS_ftruncate, fd, 2 * kPg + 10));
  V(load(m + kPg));
  V(load(m + 2 * kPg));
  V(load(m + 2 * kPg + 9));
  V(load(m + 3 * kPg));
  V(host_access(m + 2 * kPg + 5, "s", 1));
  T(sys(SYS_pread64, fd, buf, 1, 2 * kPg + 5));
  V(buf[0]);
  // A write past the end: the page it reaches is seen through the view,
  // the one past it stays SIGBUS.
  T(sys(SYS_pwrite64, fd, "xyz", 3, 3 * kPg + 1));
  V(load(m + 3 * kPg + 2));
  V(load(m + 4 * kPg));
  V(host_access(m + 3 * kPg + 7, "t", 1));
  T(sys(SYS_pread64, fd, buf, 1, 3 * kPg + 7));
  V(buf[0]);
  // A second view made while the file is short grows with it too.
  T(sys(SYS_ftruncate, fd, kPg));
  auto* m2 = reinterpret_cast<char*>(sys(SYS_mmap, nullptr, 2 * kPg, PROT_READ, MAP_SHARED, fd, 0));
  V(m2 != MAP_FAILED);
  if (m2 == MAP_FAILED) return trace;
  V(load(m2 + kPg));
  T(sys(SYS_pwrite64, fd, "u", 1, kPg + 3));
  V(load(m2 + kPg + 3));
  V(load(m + kPg + 3));
  // Read-only stays read-only.
  V(host_access(m2 + kPg, "w", 1));
  T(sys(SYS_munmap, m, 5 * kPg));
  T(sys(SYS_munmap, m2, 2 * kPg));
  T(sys(SYS_close, fd));
  T(sys(SYS_unlinkat, AT_FDCWD, path.c_str(), 0));
  return trace;
}

// A sparse file mapped shared and written in one page: reading it with
// read(2), msync and munmap give it no more blocks than that page.
Trace sparse_read_scenario(Sys sys, const std::string& dir) {
  Trace trace;
  const std::string path = dir + "/sparse";
  int fd = static_cast<int>(sys(SYS_openat, AT_FDCWD, path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  V(fd >= 0);
  T(sys(SYS_ftruncate, fd, 16 * kPg));
  struct stat st {};
  T(sys(SYS_fstat, fd, &st));
  V(st.st_blocks);
  auto* m = reinterpret_cast<char*>(sys(SYS_mmap, nullptr, 16 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  V(m != MAP_FAILED);
  if (m == MAP_FAILED) return trace;
  std::memcpy(m + 5 * kPg + 1, "one", 3);
  std::string back(16 * kPg, 'x');
  T(sys(SYS_pread64, fd, back.data(), back.size(), 0));
  V(back.compare(5 * kPg + 1, 3, "one") == 0);
  V(back.find_first_not_of('\0') == 5 * kPg + 1);
  T(sys(SYS_fstat, fd, &st));
  V(st.st_blocks);
  T(sys(SYS_msync, m, 16 * kPg, MS_SYNC));
  T(sys(SYS_munmap, m, 16 * kPg));
  T(sys(SYS_fstat, fd, &st));
  V(st.st_blocks);
  T(sys(SYS_close, fd));
  T(sys(SYS_unlinkat, AT_FDCWD, path.c_str(), 0));
  return trace;
}

}  // namespace

TEST_CASE("a host-space MAP_SHARED view of a tmpfs file behaves as the host's", "[vm][file_map][host_map][differential]") {
  KernelUp up;
  rump_diff::differential_in_dir(host_tmp_dir(), shared_scenario);
}

TEST_CASE("a host-space view truncated and grown again shows the file's new pages, as the host's",
          "[vm][file_map][host_map][differential]") {
  KernelUp up;
  rump_diff::differential_in_dir(host_tmp_dir(), regrow_scenario);
}

TEST_CASE("reading a sparse tmpfs file a host-space view maps gives it no blocks, as the host's",
          "[vm][file_map][host_map][differential]") {
  KernelUp up;
  rump_diff::differential_in_dir(host_tmp_dir(), sparse_read_scenario);
}

TEST_CASE("a host-space process exits with a shared mapping in place: the stores stay in the file",
          "[vm][file_map][host_map]") {
  KernelUp up;
  rump_test::Kid k = rump_test::fork_kid();
  rump_lwproc_switch(k.l);
  int fd = rump_sys_open("/f", O_RDWR | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(rump_sys_ftruncate(fd, 3 * kPg) == 0);
  auto* m = static_cast<char*>(rump_sys_mmap(nullptr, 3 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  REQUIRE(m != MAP_FAILED);
  std::memcpy(m + 2 * kPg + 1, "exit", 4);
  rump_lwproc_releaselwp();  // the process exits: the mapping goes with it
  rump_lwproc_switch(nullptr);
  char buf[4] = {};
  fd = rump_sys_open("/f", O_RDONLY, 0);
  REQUIRE(fd >= 0);
  CHECK(rump_sys_pread(fd, buf, 4, 2 * kPg + 1) == 4);
  CHECK(std::memcmp(buf, "exit", 4) == 0);
  rump_sys_close(fd);
  REQUIRE(rump_sys_unlink("/f") == 0);
}

TEST_CASE("pages a host-space view pins are never evicted under the memory limit", "[vm][file_map][host_map]") {
  KernelUp up({.memlimit = 4 << 20});
  int fd = rump_sys_open("/big", O_RDWR | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  constexpr long kLen = 16L << 20;
  constexpr long kPinned = 256 * kPg;  // 1 MiB
  REQUIRE(rump_sys_ftruncate(fd, kLen) == 0);  // sparse: no memory yet
  auto* m = static_cast<char*>(rump_sys_mmap(nullptr, kPinned, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  REQUIRE(m != MAP_FAILED);
  for (long i = 0; i < kPinned; i += kPg) m[i] = static_cast<char>('a' + i / kPg % 26);
  // read(2) has the stores written through to tmpfs first (its own pages,
  // taken while there is room).
  std::string back(kPinned, '\0');
  REQUIRE(rump_sys_pread(fd, back.data(), back.size(), 0) == kPinned);
  CHECK(back[5 * kPg] == 'f');
  // A private copy of the whole file fills the same cache four times past
  // the limit: its clean pages are given back to make room, the pinned
  // ones stay.
  for (int round = 0; round < 2; round++) {
    void* pm = rump_sys_mmap(nullptr, kLen, PROT_READ, MAP_PRIVATE, fd, 0);
    REQUIRE(pm != MAP_FAILED);
    REQUIRE(rump_sys_munmap(pm, kLen) == 0);
  }
  CHECK(up.mem() <= (4u << 20));
  bool same = true;
  for (long i = 0; i < kPinned; i += kPg) same = same && m[i] == static_cast<char>('a' + i / kPg % 26);
  CHECK(same);
  // Still the cache's frames: a store now is what read(2) sees.
  m[100 * kPg + 1] = 'Z';
  char c = 0;
  REQUIRE(rump_sys_pread(fd, &c, 1, 100 * kPg + 1) == 1);
  CHECK(c == 'Z');
  // The kernel halts with the view in place: every byte comes back (the
  // halt's leak check).
}

TEST_CASE("a forked host child does not get the kernel's frames", "[vm][file_map][host_map]") {
  KernelUp up;
  int fd = rump_sys_open("/f", O_RDWR | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(rump_sys_ftruncate(fd, kPg) == 0);
  auto* m = static_cast<char*>(rump_sys_mmap(nullptr, kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  REQUIRE(m != MAP_FAILED);
  m[0] = 'p';
  // The child's copy of the kernel would otherwise write into the parent's
  // caches: neither the frames nor their views are inherited.
  int child = rump_test::host_child<int>([&] { return loadable(m) ? 1 : 0; });
  CHECK(child == 0);
  CHECK(m[0] == 'p');
  REQUIRE(rump_sys_munmap(m, kPg) == 0);
  rump_sys_close(fd);
}
