// One scenario of file-backed mmap, run against the host kernel and against
// the rump kernel (rump_diff::Trace, differential.h): MAP_SHARED stores
// seen by read(2) at once and write(2) seen by loads, bytes past the end of
// the file kept out of it, MAP_PRIVATE copy-on-write, msync, truncation
// under a mapping (a load past the new end is a bus fault, a system call's
// copy from there EFAULT), and the data kept after munmap.
//
// Loads and stores go through a Mem: the host's are plain memory accesses
// with SIGBUS/SIGSEGV caught (host_mem, in a host child only: it installs
// handlers); the rump kernel's are rump_copyin/rump_copyout from an
// isolated process (rump_mem), where a bus fault is EFAULT and posts
// SIGBUS, which the scenario catches with a handler so that the process
// lives on (the handler never runs in the rump kernel).
#pragma once

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cstring>
#include <string>

#include <rump/rump.h>

#include "differential.h"

namespace file_map_test {

using rump_diff::Sys;
using rump_diff::Trace;

// Memory access of the process running the scenario: true if it worked,
// false on a fault.
struct Mem {
  bool (*load)(void* dst, const void* src, size_t n);
  bool (*store)(void* dst, const void* src, size_t n);
};

inline sigjmp_buf& host_fault_jmp() {
  static sigjmp_buf j;
  return j;
}
inline void host_fault_handler(int) { siglongjmp(host_fault_jmp(), 1); }

inline bool host_access(void* dst, const void* src, size_t n) {
  struct sigaction sa {};
  sa.sa_handler = host_fault_handler;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_bus, old_segv;
  sigaction(SIGBUS, &sa, &old_bus);
  sigaction(SIGSEGV, &sa, &old_segv);
  bool ok = true;
  if (sigsetjmp(host_fault_jmp(), 1) == 0) {
    volatile char* d = static_cast<volatile char*>(dst);
    const volatile char* s = static_cast<const volatile char*>(src);
    for (size_t i = 0; i < n; i++) d[i] = s[i];
  } else {
    ok = false;
  }
  sigaction(SIGBUS, &old_bus, nullptr);
  sigaction(SIGSEGV, &old_segv, nullptr);
  return ok;
}

inline constexpr Mem kHostMem{&host_access, &host_access};
inline constexpr Mem kRumpMem{
    [](void* dst, const void* src, size_t n) { return rump_copyin(src, dst, n) == 0; },
    [](void* dst, const void* src, size_t n) { return rump_copyout(src, dst, n) == 0; }};

inline void ignore_signal(int) {}

// dir: a directory of the file system under test, in the scenario's own
// namespace; scratch: kScratch bytes of the calling process's memory
// (guest memory of an isolated process), where every argument a call
// reads or writes lives. Records everything in the returned Trace.
inline constexpr size_t kScratch = 4 * 4096;

inline Trace scenario(Sys sys, Mem mem, const std::string& dir, char* scratch) {
  Trace trace;
  constexpr long kPg = 4096;
  // The scratch layout: three path names, a data buffer, a stat buffer, a
  // sigaction.
  char* path = scratch;
  char* other = scratch + 512;
  char* dirp = scratch + 1024;
  char* ubuf = scratch + 2048;
  char* ustat = scratch + 4096;
  char* uact = scratch + 8192;
  auto put_str = [&](char* at, const std::string& str) { V(mem.store(at, str.c_str(), str.size() + 1)); };
  put_str(path, dir + "/mapped");
  put_str(other, dir + "/other");
  put_str(dirp, dir);
  char buf[64] = {};
  // Reads n bytes of the user buffer into buf.
  auto fetch = [&](size_t n) {
    std::memset(buf, 0, sizeof buf);
    V(mem.load(buf, ubuf, n));
  };
  auto put = [&](const char* str, size_t n) {
    V(mem.store(ubuf, str, n));
    return ubuf;
  };
  // A caught SIGBUS: the host's handler jumps back; the rump kernel's is
  // never run, and the process lives on with it pending.
  struct {
    void* handler;
    unsigned long flags;
    void* restorer;
    uint64_t mask;
  } act{reinterpret_cast<void*>(&ignore_signal), 0, nullptr, 0};
  V(mem.store(uact, &act, sizeof act));
  T(sys(SYS_rt_sigaction, SIGBUS, uact, nullptr, 8));
  // Descriptor numbers differ between the two processes: record whether
  // an open worked and its errno.
  auto open_at = [&](char* at, int flags, int mode) {
    long r = sys(SYS_openat, AT_FDCWD, at, flags, mode);
    trace.call(r < 0 ? -1 : 0, __LINE__);
    return static_cast<int>(r);
  };

  int fd = open_at(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  const long size = 3 * kPg + 100;
  T(sys(SYS_ftruncate, fd, size));
  T(sys(SYS_pwrite64, fd, put("hello", 5), 5, 10));
  char* m = reinterpret_cast<char*>(sys(SYS_mmap, nullptr, 4 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  V(m != MAP_FAILED);
  if (m == MAP_FAILED) return trace;
  // write then mmap read.
  V(mem.load(buf, m + 10, 5));
  V(std::memcmp(buf, "hello", 5));
  // mmap write then read(2) at once.
  V(mem.store(m + kPg + 7, "WORLD", 5));
  T(sys(SYS_pread64, fd, ubuf, 5, kPg + 7));
  fetch(5);
  V(std::memcmp(buf, "WORLD", 5));
  // write(2) over a page a mapping has touched: the next load sees it.
  T(sys(SYS_pwrite64, fd, put("xyz", 3), 3, 8));
  V(mem.load(buf, m + 8, 5));
  V(std::memcmp(buf, "xyzlo", 5));
  // Past the end, inside the last page: stays out of the file.
  V(mem.store(m + size + 10, "tail", 4));
  T(sys(SYS_fstat, fd, ustat));
  struct stat st {};
  V(mem.load(&st, ustat, sizeof st));
  V(st.st_size);
  T(sys(SYS_pread64, fd, ubuf, 4, size + 10));
  // A page wholly past the end of the file: a bus fault.
  V(mem.load(buf, m + 3 * kPg + 200, 1));
  V(mem.load(buf, m + 4 * kPg - 1, 1));
  // A second descriptor's view, and a mapping of it at an offset.
  int fd2 = open_at(path, O_RDONLY, 0);
  char* m2 = reinterpret_cast<char*>(sys(SYS_mmap, nullptr, kPg, PROT_READ, MAP_SHARED, fd2, kPg));
  V(m2 != MAP_FAILED);
  V(mem.load(buf, m2 + 7, 5));
  V(std::memcmp(buf, "WORLD", 5));
  // A read-only descriptor: no writable shared mapping, a private one is fine.
  T(sys(SYS_mmap, nullptr, kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0));
  // MAP_PRIVATE: copy-on-write; the file and the shared mapping keep their bytes.
  char* p = reinterpret_cast<char*>(sys(SYS_mmap, nullptr, 2 * kPg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd2, 0));
  V(p != MAP_FAILED);
  V(mem.load(buf, p + 8, 5));
  V(std::memcmp(buf, "xyzlo", 5));
  V(mem.store(p + 8, "PRIV!", 5));
  V(mem.load(buf, p + 8, 5));
  V(std::memcmp(buf, "PRIV!", 5));
  V(mem.load(buf, m + 8, 5));
  V(std::memcmp(buf, "xyzlo", 5));
  T(sys(SYS_pread64, fd, ubuf, 5, 8));
  fetch(5);
  V(std::memcmp(buf, "xyzlo", 5));
  // msync.
  T(sys(SYS_msync, m, 4 * kPg, MS_SYNC));
  T(sys(SYS_msync, m, kPg, MS_ASYNC));
  T(sys(SYS_msync, m, kPg, MS_INVALIDATE));
  T(sys(SYS_msync, m, kPg, MS_ASYNC | MS_SYNC));
  T(sys(SYS_msync, m + 1, kPg, MS_SYNC));
  V(mem.load(buf, m + kPg + 7, 5));
  V(std::memcmp(buf, "WORLD", 5));
  // write(2) from a mapping of the file into another file.
  int fo = open_at(other, O_RDWR | O_CREAT | O_TRUNC, 0644);
  T(sys(SYS_write, fo, m + kPg, 64));
  T(sys(SYS_pread64, fo, ubuf, 5, 7));
  fetch(5);
  V(std::memcmp(buf, "WORLD", 5));
  // read(2) into a shared mapping: lands in the file.
  T(sys(SYS_pwrite64, fo, put("from-read", 9), 9, 100));
  T(sys(SYS_pread64, fo, m + 2 * kPg + 1, 9, 100));
  T(sys(SYS_pread64, fd, ubuf, 9, 2 * kPg + 1));
  fetch(9);
  V(std::memcmp(buf, "from-read", 9));
  // Truncation under the mapping: the cut pages fault, the tail of the
  // last page reads as zero, the copies of system calls are EFAULT.
  T(sys(SYS_ftruncate, fd, kPg + 9));
  std::memset(buf, 1, sizeof buf);
  V(mem.load(buf, m + kPg + 7, 5));
  V(buf[0] == 'W' && buf[1] == 'O' && buf[2] == 0 && buf[3] == 0);
  V(mem.load(buf, m + 2 * kPg, 1));
  V(mem.store(m + 2 * kPg, "x", 1));
  T(sys(SYS_write, fo, m + 2 * kPg, 10));
  T(sys(SYS_pread64, fo, m + 2 * kPg, 10, 0));
  // Growing the file again: the pages come back, zero-filled.
  T(sys(SYS_ftruncate, fd, 3 * kPg));
  std::memset(buf, 1, sizeof buf);
  V(mem.load(buf, m + 2 * kPg + 1, 4));
  V(buf[0] == 0 && buf[3] == 0);
  V(mem.store(m + 2 * kPg + 1, "back", 4));
  // munmap and close keep the data.
  T(sys(SYS_munmap, m, 4 * kPg));
  T(sys(SYS_munmap, m2, kPg));
  T(sys(SYS_munmap, p, 2 * kPg));
  T(sys(SYS_close, fd));
  T(sys(SYS_close, fd2));
  T(sys(SYS_close, fo));
  fd = open_at(path, O_RDONLY, 0);
  T(sys(SYS_pread64, fd, ubuf, 4, 2 * kPg + 1));
  fetch(4);
  V(std::memcmp(buf, "back", 4));
  T(sys(SYS_pread64, fd, ubuf, 5, 8));
  fetch(5);
  V(std::memcmp(buf, "xyzlo", 5));
  // Mapping what has no pages: a directory.
  int dfd = open_at(dirp, O_RDONLY | O_DIRECTORY, 0);
  T(sys(SYS_mmap, nullptr, kPg, PROT_READ, MAP_PRIVATE, dfd, 0));
  T(sys(SYS_close, dfd));
  T(sys(SYS_close, fd));
  T(sys(SYS_unlinkat, AT_FDCWD, path, 0));
  T(sys(SYS_unlinkat, AT_FDCWD, other, 0));
  return trace;
}

}  // namespace file_map_test
