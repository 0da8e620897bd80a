// memfd_create and file seals against the host: flag and name checks
// (EINVAL for unknown flags, MFD_EXEC with MFD_NOEXEC_SEAL, a name longer
// than 249 bytes; EFAULT), what fstat and F_GETFL/F_GETFD show, and every
// seal's effect: F_SEAL_SHRINK and F_SEAL_GROW on ftruncate, writes and
// fallocate; F_SEAL_WRITE on writes and hole punching; F_SEAL_SEAL;
// F_SEAL_EXEC on chmod and what it brings along; a memfd without
// MFD_ALLOW_SEALING; F_ADD_SEALS/F_GET_SEALS on a pipe; F_SEAL_WRITE
// against shared mappings that may write (EBUSY, each half of a split
// counting, until the last goes), and the mappings made after it (mmap
// EPERM, mprotect EACCES), in an isolated address space.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "differential.h"
#include "rump_test.h"

namespace {

using rump_diff::check_same;
using rump_diff::kHost;
using rump_diff::kRump;
using rump_diff::Sys;
using rump_diff::Trace;
using rump_test::KernelUp;

#ifndef MFD_EXEC
#define MFD_NOEXEC_SEAL 0x0008U
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

void stat_of(Trace& trace, Sys sys, long fd) {
  struct stat st;
  T(sys(SYS_fstat, fd, &st));
  V(st.st_mode), V(st.st_nlink), V(st.st_size), V(st.st_blksize), V(st.st_uid), V(st.st_blocks);
}

Trace memfd_scenario(Sys sys) {
  Trace trace;
  T(sys(SYS_memfd_create, "x", 0x100));
  T(sys(SYS_memfd_create, "x", MFD_EXEC | MFD_NOEXEC_SEAL));
  T(sys(SYS_memfd_create, nullptr, 0));
  std::string name249(249, 'n'), name250(250, 'n');
  long ok;
  TFD(ok, sys(SYS_memfd_create, name249.c_str(), 0));
  T(sys(SYS_close, ok));
  T(sys(SYS_memfd_create, name250.c_str(), 0));
  long empty;
  TFD(empty, sys(SYS_memfd_create, "", MFD_CLOEXEC));
  T(sys(SYS_close, empty));
  long fd;
  TFD(fd, sys(SYS_memfd_create, "test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  T(sys(SYS_fcntl, fd, F_GETFD));
  T(sys(SYS_fcntl, fd, F_GETFL));
  stat_of(trace, sys, fd);
  T(sys(SYS_fcntl, fd, F_GET_SEALS));
  T(sys(SYS_write, fd, "0123456789", 10));
  T(sys(SYS_ftruncate, fd, 4096));
  T(sys(SYS_fcntl, fd, F_ADD_SEALS, 0x40));
  // Shrink sealed: only growth.
  T(sys(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_SHRINK));
  T(sys(SYS_ftruncate, fd, 100));
  T(sys(SYS_ftruncate, fd, 8192));
  // Grow sealed too: the size is fixed; writes inside it still work.
  T(sys(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_GROW));
  T(sys(SYS_ftruncate, fd, 8193));
  T(sys(SYS_ftruncate, fd, 8192));
  T(sys(SYS_pwrite64, fd, "abcd", 4, 8190));
  T(sys(SYS_pwrite64, fd, "abcd", 4, 8188));
  T(sys(SYS_pwrite64, fd, "abcd", 4, 0));
  T(sys(SYS_fallocate, fd, 0, 8000, 1000));
  T(sys(SYS_fallocate, fd, 0, 0, 100));
  T(sys(SYS_fallocate, fd, FALLOC_FL_KEEP_SIZE, 8000, 1000));
  T(sys(SYS_fallocate, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096));
  // Write sealed: no data changes at all.
  T(sys(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_WRITE));
  T(sys(SYS_write, fd, "z", 1));
  T(sys(SYS_pwrite64, fd, "z", 1, 0));
  T(sys(SYS_fallocate, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
  T(sys(SYS_ftruncate, fd, 8192));
  T(sys(SYS_fcntl, fd, F_GET_SEALS));
  T(sys(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_SEAL));
  T(sys(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE));
  T(sys(SYS_fcntl, fd, F_ADD_SEALS, 0));
  T(sys(SYS_fcntl, fd, F_GET_SEALS));
  char buf[16] = {};
  T(sys(SYS_pread64, fd, buf, 12, 0));
  for (int i = 0; i < 12; i++) V(buf[i]);
  T(sys(SYS_pread64, fd, buf, 4, 8188));
  for (int i = 0; i < 4; i++) V(buf[i]);
  stat_of(trace, sys, fd);
  T(sys(SYS_close, fd));
  // Without MFD_ALLOW_SEALING: sealed against seals.
  long n;
  TFD(n, sys(SYS_memfd_create, "n", 0));
  T(sys(SYS_fcntl, n, F_GETFD));
  T(sys(SYS_fcntl, n, F_GET_SEALS));
  T(sys(SYS_fcntl, n, F_ADD_SEALS, F_SEAL_SHRINK));
  T(sys(SYS_close, n));
  // MFD_NOEXEC_SEAL: no execute bits, and they stay off.
  long e;
  TFD(e, sys(SYS_memfd_create, "e", MFD_NOEXEC_SEAL));
  T(sys(SYS_fcntl, e, F_GET_SEALS));
  stat_of(trace, sys, e);
  T(sys(SYS_fchmod, e, 0777));
  T(sys(SYS_fchmod, e, 0644));
  T(sys(SYS_fcntl, e, F_ADD_SEALS, F_SEAL_SHRINK));
  T(sys(SYS_fcntl, e, F_GET_SEALS));
  T(sys(SYS_close, e));
  // F_SEAL_EXEC on an executable memfd seals its contents too.
  long x;
  TFD(x, sys(SYS_memfd_create, "x", MFD_ALLOW_SEALING | MFD_EXEC));
  T(sys(SYS_fcntl, x, F_ADD_SEALS, F_SEAL_EXEC));
  T(sys(SYS_fcntl, x, F_GET_SEALS));
  T(sys(SYS_write, x, "z", 1));
  T(sys(SYS_fchmod, x, 0666));
  T(sys(SYS_fchmod, x, 0755));
  T(sys(SYS_close, x));
  // Other files have no seals.
  int p[2];
  T(sys(SYS_pipe2, p, 0));
  T(sys(SYS_fcntl, p[0], F_GET_SEALS));
  T(sys(SYS_fcntl, p[0], F_ADD_SEALS, F_SEAL_SEAL));
  T(sys(SYS_fcntl, p[1], F_ADD_SEALS, F_SEAL_SEAL));
  T(sys(SYS_fcntl, p[1], F_ADD_SEALS, 0x1000));
  T(sys(SYS_close, p[0]));
  T(sys(SYS_close, p[1]));
  return trace;
}

// F_SEAL_WRITE and shared mappings. Mapped addresses are recorded by
// outcome only (TFD): the two spaces place them differently.
// fd: a memfd made with MFD_ALLOW_SEALING (outside the scenario: an
// isolated process's system calls read pointers from its own space).
Trace seal_map_scenario(Sys sys, long fd) {
  Trace trace;
  constexpr long kPg = 4096;
  long w, r, p, m;
  T(sys(SYS_ftruncate, fd, 3 * kPg));
  // A writable shared mapping, split in two by an unmap: each piece holds
  // the seal off until the last goes.
  TFD(w, sys(SYS_mmap, 0, 3 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  T(sys(SYS_munmap, w + kPg, kPg));
  T(sys(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_WRITE));
  T(sys(SYS_munmap, w, kPg));
  T(sys(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_WRITE));
  T(sys(SYS_munmap, w + 2 * kPg, kPg));
  // A read-only shared mapping of a writable description may become
  // writable (mprotect), so it holds the seal off too.
  TFD(r, sys(SYS_mmap, 0, kPg, PROT_READ, MAP_SHARED, fd, 0));
  T(sys(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_WRITE));
  T(sys(SYS_mprotect, r, kPg, PROT_READ | PROT_WRITE));
  T(sys(SYS_munmap, r, kPg));
  // Private mappings never write the file.
  TFD(p, sys(SYS_mmap, 0, kPg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
  T(sys(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_WRITE));
  T(sys(SYS_fcntl, fd, F_GET_SEALS));
  T(sys(SYS_mprotect, p, kPg, PROT_READ));
  // After the seal: no writable shared mapping, a read-only one that stays
  // so.
  TFD(m, sys(SYS_mmap, 0, kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  TFD(m, sys(SYS_mmap, 0, kPg, PROT_READ, MAP_SHARED, fd, 0));
  T(sys(SYS_mprotect, m, kPg, PROT_READ | PROT_WRITE));
  T(sys(SYS_mprotect, m, kPg, PROT_READ | PROT_EXEC));
  T(sys(SYS_munmap, m, kPg));
  T(sys(SYS_munmap, p, kPg));
  T(sys(SYS_close, fd));
  return trace;
}

}  // namespace

TEST_CASE("F_SEAL_WRITE is EBUSY while a shared mapping may write, as the host's", "[memfd][differential]") {
  Trace host = rump_test::host_child<Trace>([] { return seal_map_scenario(kHost, memfd_create("m", MFD_ALLOW_SEALING)); });
  KernelUp up;
  // Shared file mappings need an isolated space; it shares the table.
  int fd = rump_sys_memfd_create("m", MFD_ALLOW_SEALING);
  REQUIRE(fd >= 0);
  lwp* prev = rump_lwproc_curlwp();
  lwp* iso = rump_test::isolated_proc();
  Trace rump = seal_map_scenario(kRump, fd);
  rump_lwproc_switch(iso);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(prev);
  check_same(host, rump);
}

TEST_CASE("a child's copy of a writable shared mapping holds F_SEAL_WRITE off until it goes", "[memfd]") {
  KernelUp up;
  int fd = rump_sys_memfd_create("fork", MFD_ALLOW_SEALING);
  REQUIRE(fd >= 0);
  REQUIRE(rump_sys_ftruncate(fd, 4096) == 0);
  lwp* prev = rump_lwproc_curlwp();
  lwp* iso = rump_test::isolated_proc();
  void* a = rump_sys_mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  REQUIRE(a != MAP_FAILED);
  // The child gets a copy of the space and shares the descriptor table.
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  lwp* kid = rump_lwproc_curlwp();
  rump_lwproc_switch(iso);
  REQUIRE(rump_sys_munmap(a, 4096) == 0);
  CHECK_ERRNO(EBUSY, rump_sys_fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
  rump_lwproc_switch(kid);
  REQUIRE(rump_sys_munmap(a, 4096) == 0);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(iso);
  CHECK(rump_sys_fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0);
  CHECK_ERRNO(EPERM, rump_sys_mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ? -1 : 0);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(prev);
}

TEST_CASE("memfd_create and its seals behave as the host's", "[memfd][differential]") {
  Trace host = rump_test::host_child<Trace>([] { return memfd_scenario(kHost); });
  KernelUp up;
  Trace rump = memfd_scenario(kRump);
  check_same(host, rump);
}

TEST_CASE("a memfd's file system goes with its last descriptor and gives its memory back", "[memfd]") {
  KernelUp up;
  size_t before = 0;
  for (int i = 0; i < 20; i++) {
    // The first round grows tables that stay (the descriptor table).
    if (i == 1) before = up.mem();
    int fd = rump_sys_memfd_create("leak", MFD_ALLOW_SEALING);
    REQUIRE(fd >= 0);
    char page[4096];
    std::memset(page, i, sizeof page);
    REQUIRE(rump_sys_write(fd, page, sizeof page) == static_cast<ssize_t>(sizeof page));
    int d = rump_sys_dup(fd);
    REQUIRE(rump_sys_close(fd) == 0);
    // Still there through the duplicate.
    char b = 0;
    REQUIRE(rump_sys_pread(d, &b, 1, 100) == 1);
    CHECK(b == static_cast<char>(i));
    REQUIRE(rump_sys_close(d) == 0);
  }
  CHECK(up.mem() == before);
}

TEST_CASE("memfd_create refuses huge pages: this kernel has none", "[memfd]") {
  KernelUp up;
  CHECK_ERRNO(EINVAL, rump_sys_memfd_create("h", MFD_HUGETLB));
  CHECK_ERRNO(EINVAL, rump_sys_memfd_create("h", MFD_HUGETLB | (21u << 26)));
}
