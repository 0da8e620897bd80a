// File handles on ext2/ext4: name_to_handle_at gives two words, the inode
// number and its generation (FILEID_INO32_GEN, as the host's ext4), the
// generation in the handle is the one FS_IOC_GETVERSION reports, a handle
// opens its file through any descriptor on the mount, and it goes stale
// when the file is removed, when the generation is wrong and for reserved
// inodes, without the file system calling it a corruption (the mount
// stays writable).
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "ext2_test_util.h"

using namespace ext2_test;

namespace {

struct Handle {
  uint32_t handle_bytes;
  int32_t handle_type;
  uint32_t words[32];
};

}  // namespace

TEST_CASE("ext2 file handles carry inode and generation and go stale with the file", "[ext2][fhandle]") {
  TempDir t;
  std::string img = t.path + "/fs.img";
  REQUIRE(make_image(img, "ext4", 1024, "", 8));
  Mounted m(img, "ext4", 0);
  REQUIRE(m.mount_result == 0);
  int fd = rump_sys_open("/mnt/f", O_CREAT | O_RDWR, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(rump_sys_write(fd, "ext", 3) == 3);
  int gen = -1;
  REQUIRE(rump_sys_ioctl(fd, FS_IOC_GETVERSION, &gen) == 0);
  struct stat st;
  REQUIRE(rump_sys_fstat(fd, &st) == 0);
  REQUIRE(rump_sys_close(fd) == 0);

  Handle h{};
  int mnt = -1;
  CHECK_ERRNO(EOVERFLOW, rump_sys_name_to_handle_at(AT_FDCWD, "/mnt/f", &h, &mnt, 0));
  CHECK(h.handle_bytes == 8);
  h.handle_bytes = sizeof h.words;
  REQUIRE(rump_sys_name_to_handle_at(AT_FDCWD, "/mnt/f", &h, &mnt, 0) == 0);
  CHECK(h.handle_bytes == 8);
  CHECK(h.handle_type == 1);
  CHECK(h.words[0] == st.st_ino);
  CHECK(h.words[1] == static_cast<uint32_t>(gen));

  int mfd = rump_sys_open("/mnt", O_RDONLY | O_DIRECTORY);
  REQUIRE(mfd >= 0);
  int o = rump_sys_open_by_handle_at(mfd, &h, O_RDONLY);
  REQUIRE(o >= 0);
  char buf[4] = {};
  CHECK(rump_sys_read(o, buf, 3) == 3);
  CHECK(std::strcmp(buf, "ext") == 0);
  rump_sys_close(o);
  // A handle of another file system's descriptor does not find it.
  CHECK_ERRNO(ESTALE, rump_sys_open_by_handle_at(AT_FDCWD, &h, O_RDONLY));
  // Wrong generation, reserved and out-of-range inodes: stale.
  Handle bad = h;
  bad.words[1] ^= 1;
  CHECK_ERRNO(ESTALE, rump_sys_open_by_handle_at(mfd, &bad, O_RDONLY));
  bad = h;
  bad.words[0] = 7;  // the resize inode
  CHECK_ERRNO(ESTALE, rump_sys_open_by_handle_at(mfd, &bad, O_RDONLY));
  bad.words[0] = 0x7fffffff;
  CHECK_ERRNO(ESTALE, rump_sys_open_by_handle_at(mfd, &bad, O_RDONLY));
  bad.words[0] = st.st_ino + 1;  // a free inode
  CHECK_ERRNO(ESTALE, rump_sys_open_by_handle_at(mfd, &bad, O_RDONLY));
  // The root directory has a handle too.
  Handle root{};
  root.handle_bytes = sizeof root.words;
  REQUIRE(rump_sys_name_to_handle_at(mfd, "", &root, &mnt, AT_EMPTY_PATH) == 0);
  CHECK(root.words[0] == 2);
  o = rump_sys_open_by_handle_at(mfd, &root, O_RDONLY | O_DIRECTORY);
  CHECK(o >= 0);
  rump_sys_close(o);
  // Removed: stale, and the mount is still writable (no corruption).
  REQUIRE(rump_sys_unlink("/mnt/f") == 0);
  CHECK_ERRNO(ESTALE, rump_sys_open_by_handle_at(mfd, &h, O_RDONLY));
  fd = rump_sys_open("/mnt/g", O_CREAT | O_RDWR, 0644);
  CHECK(fd >= 0);
  rump_sys_close(fd);
  rump_sys_close(mfd);
  REQUIRE(rump_sys_umount("/mnt") == 0);
}
