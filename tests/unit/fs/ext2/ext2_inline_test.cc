// ext4 inline_data written through the kernel: files and directories
// that mke2fs made inline are moved out to blocks on their first change,
// keeping their bytes and entries, and e2fsck -fn stays clean.
#include "ext2_test_util.h"

using namespace ext2_test;

namespace {

std::string fsck(const std::string& img) {
  std::string out = capture("e2fsck -fn " + shell_quote(img) + " 2>&1; echo EXIT=$?");
  if (out.find("EXIT=0") != std::string::npos) return "";
  return out;
}

bool has_inline_flag(const std::string& img, const std::string& path) {
  std::string st = capture("debugfs -R " + shell_quote("stat " + path) + " " + shell_quote(img) + " 2>/dev/null");
  size_t at = st.find("Flags: 0x");
  return at != std::string::npos && (std::strtoul(st.c_str() + at + 9, nullptr, 16) & 0x10000000);
}

void host_write(const std::string& p, const std::string& data) {
  int fd = open(p.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  close(fd);
}

}  // namespace

TEST_CASE("changing inline files and directories moves them out of the inode, e2fsck-clean", "[ext2][inline]") {
  TempDir tmp;
  std::string tree = tmp.path + "/tree", img = tmp.path + "/img";
  REQUIRE(mkdir(tree.c_str(), 0755) == 0);
  host_write(tree + "/tiny", "hello");
  host_write(tree + "/edge", std::string(100, 'e'));  // past i_block, into system.data
  host_write(tree + "/cut", std::string(40, 'c'));
  host_write(tree + "/grow", std::string(30, 'g'));
  REQUIRE(mkdir((tree + "/dir").c_str(), 0755) == 0);
  host_write(tree + "/dir/a", "a");
  REQUIRE(mkdir((tree + "/dir2").c_str(), 0755) == 0);
  host_write(tree + "/dir2/x", "x");
  host_write(tree + "/dir2/y", "y");
  REQUIRE(make_image(img, "ext4", 4096, tree, 32, "-O inline_data"));
  REQUIRE(has_inline_flag(img, "/tiny"));
  REQUIRE(has_inline_flag(img, "/dir"));
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    // Appending, overwriting past the inode, truncating, extending.
    int fd = rump_sys_open("/mnt/tiny", O_WRONLY | O_APPEND);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, " world", 6) == 6);
    rump_sys_close(fd);
    fd = rump_sys_open("/mnt/edge", O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_pwrite64(fd, "EDGE", 4, 98) == 4);
    rump_sys_close(fd);
    REQUIRE(rump_sys_truncate("/mnt/cut", 10) == 0);
    std::string big(10000, 'G');
    fd = rump_sys_open("/mnt/grow", O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_pwrite64(fd, big.data(), big.size(), 30) == static_cast<long>(big.size()));
    rump_sys_close(fd);
    // Entries into and out of inline directories.
    for (int i = 0; i < 40; i++) {
      fd = rump_sys_open(("/mnt/dir/new_" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY, 0644);
      REQUIRE(fd >= 0);
      rump_sys_close(fd);
    }
    REQUIRE(rump_sys_unlink("/mnt/dir2/x") == 0);
    REQUIRE(rump_sys_mkdir("/mnt/dir2/sub", 0755) == 0);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  std::string out = fsck(img);
  INFO(out);
  CHECK(out.empty());
  CHECK_FALSE(has_inline_flag(img, "/tiny"));
  CHECK_FALSE(has_inline_flag(img, "/dir"));
  Mounted again(img, "ext4");
  REQUIRE(again.mount_result == 0);
  std::string got;
  CHECK((rump_read_all("/mnt/tiny", got) && got == "hello world"));
  CHECK((rump_read_all("/mnt/edge", got) && got == std::string(98, 'e') + "EDGE"));
  CHECK((rump_read_all("/mnt/cut", got) && got == std::string(10, 'c')));
  CHECK((rump_read_all("/mnt/grow", got) && got == std::string(30, 'g') + std::string(10000, 'G')));
  Listed l = rump_list("/mnt/dir");
  CHECK(l.entries.size() == 41);
  CHECK(l.entries.count("a") == 1);
  CHECK((rump_read_all("/mnt/dir/a", got) && got == "a"));
  Listed l2 = rump_list("/mnt/dir2");
  CHECK(l2.entries == std::map<std::string, unsigned char>{{"y", DT_REG}, {"sub", DT_DIR}});
}
