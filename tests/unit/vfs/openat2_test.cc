// openat2 against the host: the size rules of struct open_how (EINVAL
// below 24 bytes, E2BIG past a page or with non-zero bytes beyond the
// structure), flags, mode and resolve checks (EINVAL where openat ignores),
// RESOLVE_CACHED's EAGAIN for opens that would change something, and the
// scoped lookups: RESOLVE_BENEATH (EXDEV for "/", for ".." out of the
// start and for absolute symlinks), RESOLVE_IN_ROOT ("/" and ".." stay at
// the start), RESOLVE_NO_SYMLINKS (ELOOP) and RESOLVE_NO_XDEV (EXDEV at a
// mount point, rump only: the scenario needs a mount).
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
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

// openat2 with a structure of size bytes (zero past open_how), recording
// the outcome and closing what it opened.
long open2(Trace& trace, Sys sys, int at, long dfd, const char* path, uint64_t flags, uint64_t mode,
           uint64_t resolve, size_t size = sizeof(open_how), unsigned char tail = 0) {
  unsigned char buf[8192] = {};
  open_how how{flags, mode, resolve};
  std::memcpy(buf, &how, sizeof how);
  if (size > sizeof how && size <= sizeof buf) buf[size - 1] = tail;
  long r = sys(SYS_openat2, dfd, path, buf, size);
  int e = errno;
  trace.put(rump_diff::fd_outcome(r), at);
  trace.put(r < 0 ? e : 0, at);
  if (r >= 0) {
    // (F_GETFL here leaves out O_DIRECTORY and O_NOFOLLOW, which the
    // host's shows: a difference of every open, not of openat2's.)
    long fl = sys(SYS_fcntl, r, F_GETFL);
    trace.put(fl & ~long{O_DIRECTORY | O_NOFOLLOW}, at);
    sys(SYS_close, r);
  }
  return r;
}
#define O2(...) open2(trace, sys, __LINE__, __VA_ARGS__)

Trace openat2_scenario(Sys sys, const std::string& dir) {
  Trace trace;
  long fd = sys(SYS_openat, AT_FDCWD, (dir + "/f").c_str(), O_CREAT | O_RDWR, 0644);
  V(fd >= 0);
  sys(SYS_close, fd);
  T(sys(SYS_mkdirat, AT_FDCWD, (dir + "/d").c_str(), 0755));
  fd = sys(SYS_openat, AT_FDCWD, (dir + "/d/x").c_str(), O_CREAT | O_RDWR, 0644);
  sys(SYS_close, fd);
  T(sys(SYS_symlinkat, "f", AT_FDCWD, (dir + "/lnk").c_str()));
  T(sys(SYS_symlinkat, "/", AT_FDCWD, (dir + "/abs").c_str()));
  T(sys(SYS_symlinkat, "..", AT_FDCWD, (dir + "/up").c_str()));
  long dfd = sys(SYS_openat, AT_FDCWD, dir.c_str(), O_RDONLY | O_DIRECTORY);
  V(dfd >= 0);
  // Sizes.
  O2(dfd, "f", O_RDONLY, 0, 0);
  O2(dfd, "f", O_RDONLY, 0, 0, 23);
  O2(dfd, "f", O_RDONLY, 0, 0, 4097);
  O2(dfd, "f", O_RDONLY, 0, 0, 32);
  O2(dfd, "f", O_RDONLY, 0, 0, 32, 1);
  O2(dfd, "f", O_RDONLY, 0, 0, 4096, 1);
  T(sys(SYS_openat2, dfd, "f", nullptr, sizeof(open_how)));
  // Flags, mode, resolve.
  O2(dfd, "f", uint64_t{1} << 40, 0, 0);
  O2(dfd, "f", 0x10000000, 0, 0);
  O2(dfd, "f", O_RDONLY, 0, 0x40);
  O2(dfd, "f", O_RDONLY, 0, RESOLVE_BENEATH | RESOLVE_IN_ROOT);
  O2(dfd, "f", O_RDONLY, 0644, 0);
  O2(dfd, "g", O_CREAT | O_RDWR, 010644, 0);
  O2(dfd, "g", O_CREAT | O_RDWR, 0600, 0);
  O2(dfd, "f", O_PATH | O_RDWR, 0, 0);
  O2(dfd, "f", O_PATH | O_CLOEXEC, 0, 0);
  O2(dfd, "d", O_CREAT | O_DIRECTORY | O_RDWR, 0600, 0);
  O2(dfd, "d", O_TMPFILE | O_RDONLY, 0600, 0);
  O2(dfd, "f", O_WRONLY | O_APPEND | O_NONBLOCK, 0, 0);
  // RESOLVE_CACHED.
  O2(dfd, "f", O_RDONLY, 0, RESOLVE_CACHED);
  O2(dfd, "f", O_RDWR | O_TRUNC, 0, RESOLVE_CACHED);
  O2(dfd, "h", O_RDWR | O_CREAT, 0600, RESOLVE_CACHED);
  // RESOLVE_BENEATH.
  O2(dfd, "f", O_RDONLY, 0, RESOLVE_BENEATH);
  O2(dfd, "d/x", O_RDONLY, 0, RESOLVE_BENEATH);
  O2(dfd, "d/../f", O_RDONLY, 0, RESOLVE_BENEATH);
  O2(dfd, "../f", O_RDONLY, 0, RESOLVE_BENEATH);
  O2(dfd, "/", O_RDONLY, 0, RESOLVE_BENEATH);
  O2(dfd, "lnk", O_RDONLY, 0, RESOLVE_BENEATH);
  O2(dfd, "abs", O_RDONLY, 0, RESOLVE_BENEATH);
  O2(dfd, "up/f", O_RDONLY, 0, RESOLVE_BENEATH);
  O2(dfd, "d/x/..", O_RDONLY, 0, RESOLVE_BENEATH);
  O2(dfd, "n", O_RDWR | O_CREAT, 0600, RESOLVE_BENEATH);
  O2(dfd, "../n", O_RDWR | O_CREAT, 0600, RESOLVE_BENEATH);
  // RESOLVE_IN_ROOT.
  O2(dfd, "/f", O_RDONLY, 0, RESOLVE_IN_ROOT);
  O2(dfd, "../../f", O_RDONLY, 0, RESOLVE_IN_ROOT);
  O2(dfd, "abs", O_RDONLY | O_DIRECTORY, 0, RESOLVE_IN_ROOT);
  O2(dfd, "abs/d/x", O_RDONLY, 0, RESOLVE_IN_ROOT);
  O2(dfd, "up/up/lnk", O_RDONLY, 0, RESOLVE_IN_ROOT);
  // RESOLVE_NO_SYMLINKS.
  O2(dfd, "lnk", O_RDONLY, 0, RESOLVE_NO_SYMLINKS);
  O2(dfd, "lnk", O_PATH | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS);
  O2(dfd, "up/f", O_RDONLY, 0, RESOLVE_NO_SYMLINKS);
  O2(dfd, "d/x", O_RDONLY, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  // A start that is not a directory.
  long ffd = sys(SYS_openat, dfd, "f", O_RDONLY);
  O2(ffd, "x", O_RDONLY, 0, RESOLVE_BENEATH);
  O2(ffd, "x", O_RDONLY, 0, 0);
  sys(SYS_close, ffd);
  O2(9999, "f", O_RDONLY, 0, RESOLVE_IN_ROOT);
  for (const char* n : {"g", "n", "lnk", "abs", "up", "d/x", "f"})
    T(sys(SYS_unlinkat, dfd, n, 0));
  T(sys(SYS_unlinkat, dfd, "d", AT_REMOVEDIR));
  sys(SYS_close, dfd);
  return trace;
}

}  // namespace

TEST_CASE("openat2: sizes, checks and RESOLVE_* scoping as the host's", "[openat2][differential]") {
  KernelUp up;
  rump_diff::differential_in_dir("/tmp", openat2_scenario);
}

TEST_CASE("openat2 RESOLVE_NO_XDEV stops at a mount point in both directions", "[openat2]") {
  KernelUp up;
  REQUIRE(rump_sys_mkdir("/m", 0755) == 0);
  REQUIRE(rump_sys_mount("none", "/m", "tmpfs", 0, nullptr) == 0);
  int fd = rump_sys_open("/m/f", O_CREAT | O_RDWR, 0644);
  REQUIRE(fd >= 0);
  rump_sys_close(fd);
  REQUIRE(rump_sys_symlink("/m/f", "/lnk") == 0);
  open_how how{O_RDONLY, 0, RESOLVE_NO_XDEV};
  CHECK_ERRNO(EXDEV, rump_sys_openat2(AT_FDCWD, "/m/f", &how, sizeof how));
  CHECK_ERRNO(EXDEV, rump_sys_openat2(AT_FDCWD, "/lnk", &how, sizeof how));
  int m = rump_sys_open("/m", O_RDONLY | O_DIRECTORY);
  REQUIRE(m >= 0);
  fd = rump_sys_openat2(m, "f", &how, sizeof how);
  CHECK(fd >= 0);
  rump_sys_close(fd);
  CHECK_ERRNO(EXDEV, rump_sys_openat2(m, "..", &how, sizeof how));
  CHECK_ERRNO(EXDEV, rump_sys_openat2(m, "/lnk", &how, sizeof how));
  // Without the flag the same walks cross.
  open_how plain{O_RDONLY, 0, 0};
  fd = rump_sys_openat2(AT_FDCWD, "/lnk", &plain, sizeof plain);
  CHECK(fd >= 0);
  rump_sys_close(fd);
  rump_sys_close(m);
  REQUIRE(rump_sys_unlink("/m/f") == 0);
  REQUIRE(rump_sys_umount("/m") == 0);
}
