// utimes and futimesat against the host: microsecond times set exactly,
// a null time array (now), microseconds out of range (UTIME_NOW and
// UTIME_OMIT included) EINVAL, a relative name under a directory
// descriptor, a null name (the descriptor itself), missing files.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
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

// The scenario, in directory dir (absolute, existing, empty).
Trace utimes_scenario(Sys sys, const std::string& dir) {
  Trace trace;
  std::string file = dir + "/f";
  long fd = T(sys(SYS_openat, AT_FDCWD, file.c_str(), O_CREAT | O_RDWR, 0644));
  timeval tv[2] = {{1000, 5}, {2000, 7}};
  T(sys(SYS_utimes, file.c_str(), tv));
  struct stat st;
  T(sys(SYS_newfstatat, AT_FDCWD, file.c_str(), &st, 0));
  V(st.st_atim.tv_sec), V(st.st_atim.tv_nsec), V(st.st_mtim.tv_sec), V(st.st_mtim.tv_nsec);
  timeval big[2] = {{1, 1000000}, {1, 0}};
  T(sys(SYS_utimes, file.c_str(), big));
  timeval neg[2] = {{1, 0}, {1, -1}};
  T(sys(SYS_utimes, file.c_str(), neg));
  timeval now_omit[2] = {{1, UTIME_NOW}, {1, UTIME_OMIT}};
  T(sys(SYS_utimes, file.c_str(), now_omit));
  T(sys(SYS_utimes, (dir + "/missing").c_str(), tv));
  T(sys(SYS_utimes, file.c_str(), nullptr));
  T(sys(SYS_newfstatat, AT_FDCWD, file.c_str(), &st, 0));
  V(st.st_mtim.tv_sec > 2000);
  V(st.st_atim.tv_sec == st.st_mtim.tv_sec && st.st_atim.tv_nsec == st.st_mtim.tv_nsec);
  // futimesat: relative to a directory, on the descriptor itself.
  long dfd = T(sys(SYS_openat, AT_FDCWD, dir.c_str(), O_RDONLY | O_DIRECTORY));
  timeval t2[2] = {{3000, 999999}, {4000, 0}};
  T(sys(SYS_futimesat, dfd, "f", t2));
  T(sys(SYS_newfstatat, AT_FDCWD, file.c_str(), &st, 0));
  V(st.st_atim.tv_sec), V(st.st_atim.tv_nsec), V(st.st_mtim.tv_sec), V(st.st_mtim.tv_nsec);
  timeval t3[2] = {{5000, 1}, {6000, 2}};
  T(sys(SYS_futimesat, fd, nullptr, t3));
  T(sys(SYS_fstat, fd, &st));
  V(st.st_atim.tv_sec), V(st.st_atim.tv_nsec), V(st.st_mtim.tv_sec), V(st.st_mtim.tv_nsec);
  T(sys(SYS_futimesat, dfd, "nope", t3));
  T(sys(SYS_futimesat, 9999, "f", t3));
  T(sys(SYS_futimesat, AT_FDCWD, file.c_str(), big));
  T(sys(SYS_close, dfd));
  T(sys(SYS_close, fd));
  T(sys(SYS_unlinkat, AT_FDCWD, file.c_str(), 0));
  return trace;
}

}  // namespace

TEST_CASE("utimes and futimesat set microsecond times and reject bad ones as the host", "[vfs][differential]") {
  char tmpl[] = "/tmp/rump-utimes-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl;
  Trace host = utimes_scenario(kHost, dir);
  rmdir(tmpl);
  KernelUp up;
  REQUIRE(rump_sys_mkdir("/tmp", 0777) == 0);
  REQUIRE(rump_sys_mkdir(dir.c_str(), 0700) == 0);
  Trace rump = utimes_scenario(kRump, dir);
  check_same(host, rump);
}

TEST_CASE("file and pipe times follow the kernel's realtime clock once clock_settime moves it", "[vfs][time]") {
  KernelUp up;
  timespec now{};
  REQUIRE(rump_sys_clock_gettime(CLOCK_REALTIME, &now) == 0);
  timespec later = now;
  later.tv_sec += 100000;
  REQUIRE(rump_sys_clock_settime(CLOCK_REALTIME, &later) == 0);
  int fd = rump_sys_open("/timed", O_RDWR | O_CREAT, 0600);
  REQUIRE(fd >= 0);
  struct stat st{};
  REQUIRE(rump_sys_fstat(fd, &st) == 0);
  CHECK(st.st_mtim.tv_sec >= later.tv_sec);
  CHECK(st.st_ctim.tv_sec >= later.tv_sec);
  CHECK(st.st_mtim.tv_sec < later.tv_sec + 1000);
  // A write stamps the kernel's time too.
  timespec back = now;
  REQUIRE(rump_sys_clock_settime(CLOCK_REALTIME, &back) == 0);
  REQUIRE(rump_sys_write(fd, "x", 1) == 1);
  REQUIRE(rump_sys_fstat(fd, &st) == 0);
  CHECK(st.st_mtim.tv_sec < later.tv_sec - 1000);
  REQUIRE(rump_sys_close(fd) == 0);
  REQUIRE(rump_sys_clock_settime(CLOCK_REALTIME, &later) == 0);
  int p[2];
  REQUIRE(rump_sys_pipe(p) == 0);
  REQUIRE(rump_sys_fstat(p[0], &st) == 0);
  CHECK(st.st_mtim.tv_sec >= later.tv_sec);
  CHECK(st.st_mtim.tv_sec < later.tv_sec + 1000);
  rump_sys_close(p[0]);
  rump_sys_close(p[1]);
}
