// The memory devices and the console.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <rump/rump.h>

#include "rump_test.h"

using rump_test::KernelUp;

TEST_CASE("devices: nodes with Linux's numbers in /dev", "[dev]") {
  KernelUp up;
  struct {
    const char* path;
    unsigned maj, min;
  } devs[] = {{"/dev/null", 1, 3},   {"/dev/zero", 1, 5},    {"/dev/full", 1, 7},
              {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/console", 5, 1}};
  for (auto& d : devs) {
    struct stat st;
    INFO(d.path);
    REQUIRE(rump_sys_stat(d.path, &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
    CHECK(major(st.st_rdev) == d.maj);
    CHECK(minor(st.st_rdev) == d.min);
  }
}

TEST_CASE("devices: null, zero, full, random behave", "[dev]") {
  KernelUp up;
  char buf[100];
  int fd = rump_sys_open("/dev/null", O_RDWR, 0);
  REQUIRE(fd >= 0);
  CHECK(rump_sys_write(fd, "abc", 3) == 3);
  CHECK(rump_sys_read(fd, buf, sizeof buf) == 0);
  rump_sys_close(fd);
  fd = rump_sys_open("/dev/zero", O_RDWR, 0);
  std::memset(buf, 7, sizeof buf);
  CHECK(rump_sys_read(fd, buf, sizeof buf) == 100);
  CHECK(buf[0] == 0);
  CHECK(buf[99] == 0);
  CHECK(rump_sys_write(fd, "abc", 3) == 3);
  rump_sys_close(fd);
  fd = rump_sys_open("/dev/full", O_RDWR, 0);
  CHECK_ERRNO(ENOSPC, rump_sys_write(fd, "abc", 3));
  CHECK(rump_sys_read(fd, buf, 10) == 10);
  rump_sys_close(fd);
  for (const char* r : {"/dev/random", "/dev/urandom"}) {
    fd = rump_sys_open(r, O_RDONLY, 0);
    REQUIRE(fd >= 0);
    char a[64] = {}, b[64] = {};
    CHECK(rump_sys_read(fd, a, sizeof a) == 64);
    CHECK(rump_sys_read(fd, b, sizeof b) == 64);
    CHECK(std::memcmp(a, b, 64) != 0);
    rump_sys_close(fd);
  }
}

TEST_CASE("console: init's descriptor 1 writes reach the host through rumpuser_putchar", "[dev][console]") {
  KernelUp up;
  char path[] = "/tmp/rump_consoleXXXXXX";
  int tmp = mkstemp(path);
  REQUIRE(tmp >= 0);
  fflush(stdout);
  int saved = dup(1);
  dup2(tmp, 1);
  long n1 = rump_sys_write(1, "hello console\n", 14);
  int fd = rump_sys_open("/dev/console", O_WRONLY, 0);
  long n2 = rump_sys_write(fd, "again\n", 6);
  dup2(saved, 1);
  close(saved);
  CHECK(n1 == 14);
  CHECK(n2 == 6);
  rump_sys_close(fd);
  char buf[64] = {};
  long got = pread(tmp, buf, sizeof buf - 1, 0);
  close(tmp);
  unlink(path);
  CHECK(std::string(buf, got > 0 ? got : 0) == "hello console\nagain\n");
}
