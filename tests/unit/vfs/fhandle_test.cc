// File handles against the host's tmpfs (/dev/shm): name_to_handle_at's
// size negotiation (EOVERFLOW with the size needed, EINVAL past 128
// bytes), flags (AT_EMPTY_PATH, AT_SYMLINK_FOLLOW, unknown ones),
// open_by_handle_at of files, directories and symlinks (ELOOP, EISDIR,
// ENOTDIR, O_PATH), malformed handles (EINVAL, ESTALE), a removed file
// (ESTALE), and EPERM without CAP_DAC_READ_SEARCH. Then ext2: handles
// carry the generation, and survive only while the inode does.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <fcntl.h>
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

struct Handle {
  uint32_t handle_bytes;
  int32_t handle_type;
  unsigned char f_handle[132];
};

// The scenario in dir (absolute, existing, empty, on a tmpfs).
Trace fhandle_scenario(Sys sys, const std::string& dir) {
  Trace trace;
  std::string file = dir + "/f", link = dir + "/l", sub = dir + "/d";
  long fd;
  TFD(fd, sys(SYS_openat, AT_FDCWD, file.c_str(), O_CREAT | O_RDWR, 0644));
  T(sys(SYS_write, fd, "hello", 5));
  T(sys(SYS_close, fd));
  T(sys(SYS_symlinkat, "f", AT_FDCWD, link.c_str()));
  T(sys(SYS_mkdirat, AT_FDCWD, sub.c_str(), 0755));
  long dfd;
  TFD(dfd, sys(SYS_openat, AT_FDCWD, dir.c_str(), O_RDONLY | O_DIRECTORY));
  int mnt = -1;
  Handle h;
  // Size negotiation.
  std::memset(&h, 0, sizeof h);
  T(sys(SYS_name_to_handle_at, AT_FDCWD, file.c_str(), &h, &mnt, 0));
  V(h.handle_bytes), V(h.handle_type);
  h.handle_bytes = 4;
  T(sys(SYS_name_to_handle_at, AT_FDCWD, file.c_str(), &h, &mnt, 0));
  V(h.handle_bytes);
  h.handle_bytes = 129;
  T(sys(SYS_name_to_handle_at, AT_FDCWD, file.c_str(), &h, &mnt, 0));
  h.handle_bytes = 128;
  T(sys(SYS_name_to_handle_at, AT_FDCWD, file.c_str(), &h, &mnt, 0x4000));
  T(sys(SYS_name_to_handle_at, AT_FDCWD, file.c_str(), nullptr, &mnt, 0));
  T(sys(SYS_name_to_handle_at, AT_FDCWD, (dir + "/missing").c_str(), &h, &mnt, 0));
  Handle fh;
  std::memset(&fh, 0, sizeof fh);
  fh.handle_bytes = 128;
  T(sys(SYS_name_to_handle_at, AT_FDCWD, file.c_str(), &fh, &mnt, 0));
  V(fh.handle_bytes), V(fh.handle_type);
  // The same file by a descriptor and by a followed symlink; the link
  // itself otherwise.
  Handle by_fd, by_link, of_link, of_dir;
  for (Handle* x : {&by_fd, &by_link, &of_link, &of_dir}) {
    std::memset(x, 0, sizeof *x);
    x->handle_bytes = 128;
  }
  T(sys(SYS_name_to_handle_at, dfd, "f", &by_fd, &mnt, 0));
  T(sys(SYS_name_to_handle_at, dfd, "", &of_dir, &mnt, 0));
  T(sys(SYS_name_to_handle_at, dfd, "", &of_dir, &mnt, AT_EMPTY_PATH));
  T(sys(SYS_name_to_handle_at, AT_FDCWD, link.c_str(), &by_link, &mnt, AT_SYMLINK_FOLLOW));
  T(sys(SYS_name_to_handle_at, AT_FDCWD, link.c_str(), &of_link, &mnt, 0));
  V(std::memcmp(&fh, &by_fd, 8 + fh.handle_bytes) == 0);
  V(std::memcmp(&fh, &by_link, 8 + fh.handle_bytes) == 0);
  V(std::memcmp(&fh, &of_link, 8 + fh.handle_bytes) == 0);
  // Opening by handle.
  long o;
  TFD(o, sys(SYS_open_by_handle_at, dfd, &fh, O_RDONLY));
  char buf[8] = {};
  T(sys(SYS_read, o, buf, sizeof buf));
  V(buf[0]), V(buf[4]);
  struct stat a, b;
  T(sys(SYS_fstat, o, &a));
  T(sys(SYS_newfstatat, AT_FDCWD, file.c_str(), &b, 0));
  V(a.st_ino == b.st_ino);
  T(sys(SYS_close, o));
  TFD(o, sys(SYS_open_by_handle_at, dfd, &fh, O_RDWR | O_DIRECTORY));
  T(sys(SYS_open_by_handle_at, dfd, &of_link, O_RDONLY));
  TFD(o, sys(SYS_open_by_handle_at, dfd, &of_link, O_PATH));
  T(sys(SYS_close, o));
  T(sys(SYS_open_by_handle_at, dfd, &of_dir, O_RDWR));
  TFD(o, sys(SYS_open_by_handle_at, dfd, &of_dir, O_RDONLY | O_DIRECTORY));
  T(sys(SYS_close, o));
  T(sys(SYS_open_by_handle_at, 9999, &fh, O_RDONLY));
  // Malformed handles.
  Handle bad = fh;
  bad.handle_bytes = 0;
  T(sys(SYS_open_by_handle_at, dfd, &bad, O_RDONLY));
  bad.handle_bytes = 129;
  T(sys(SYS_open_by_handle_at, dfd, &bad, O_RDONLY));
  bad = fh;
  bad.handle_type = -1;
  T(sys(SYS_open_by_handle_at, dfd, &bad, O_RDONLY));
  bad = fh;
  bad.f_handle[4] ^= 0x55;  // the inode number's low byte (tmpfs: word 1)
  bad.f_handle[5] ^= 0x55;
  bad.f_handle[0] ^= 0x55;
  T(sys(SYS_open_by_handle_at, dfd, &bad, O_RDONLY));
  // Removed: the handle is stale.
  T(sys(SYS_unlinkat, AT_FDCWD, link.c_str(), 0));
  T(sys(SYS_unlinkat, AT_FDCWD, file.c_str(), 0));
  T(sys(SYS_open_by_handle_at, dfd, &fh, O_RDONLY));
  T(sys(SYS_unlinkat, AT_FDCWD, sub.c_str(), AT_REMOVEDIR));
  // Without CAP_DAC_READ_SEARCH.
  T(sys(SYS_setresuid, 1000, 1000, 1000));
  T(sys(SYS_open_by_handle_at, dfd, &of_dir, O_RDONLY));
  T(sys(SYS_name_to_handle_at, dfd, "", &of_dir, &mnt, AT_EMPTY_PATH));
  T(sys(SYS_close, dfd));
  return trace;
}

}  // namespace

TEST_CASE("name_to_handle_at and open_by_handle_at on tmpfs as the host's", "[fhandle][differential]") {
  KernelUp up;
  // /dev/shm: a tmpfs on the host, as the rump kernel's root.
  rump_diff::differential_in_dir("/dev/shm", fhandle_scenario);
}
