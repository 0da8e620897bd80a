// statfs f_flags for each mount: ST_VALID, the mount's options, and
// relatime by default (Linux's), as the host reports for its own mounts.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

#include "rump_test.h"

using rump_test::KernelUp;

namespace {
constexpr long kValid = 0x20;  // ST_VALID
long flags_of(const char* path) {
  struct statfs sf {};
  REQUIRE(rump_sys_statfs(path, &sf) == 0);
  return sf.f_flags;
}
}  // namespace

TEST_CASE("statfs f_flags: relatime by default, each mount's options", "[vfs][mount]") {
  KernelUp up;
  CHECK(flags_of("/") == (kValid | ST_RELATIME));
  struct {
    const char* dir;
    unsigned long mflags;
    long want;
  } cases[] = {
      {"/a", MS_NOATIME | MS_NOSUID | MS_NODEV, kValid | ST_NOATIME | ST_NOSUID | ST_NODEV},
      {"/b", MS_STRICTATIME | MS_RDONLY, kValid | ST_RDONLY},
      {"/c", MS_NODIRATIME | MS_SYNCHRONOUS | MS_NOEXEC, kValid | ST_NODIRATIME | ST_SYNCHRONOUS | ST_NOEXEC | ST_RELATIME},
      {"/d", MS_RELATIME | MS_LAZYTIME | MS_MANDLOCK, kValid | ST_RELATIME},
  };
  for (auto& c : cases) {
    INFO(c.dir);
    REQUIRE(rump_sys_mkdir(c.dir, 0755) == 0);
    REQUIRE(rump_sys_mount("tmpfs", c.dir, "tmpfs", c.mflags, nullptr) == 0);
    CHECK(flags_of(c.dir) == c.want);
  }
  // A remount changes them.
  REQUIRE(rump_sys_mount("tmpfs", "/a", "tmpfs", MS_REMOUNT | MS_RDONLY, nullptr) == 0);
  CHECK(flags_of("/a") == (kValid | ST_RDONLY | ST_RELATIME));
}
