// ext4 inline_data written through the kernel: files and directories
// that mke2fs made inline are moved out to blocks when they outgrow the
// inode (files that still fit stay), keeping their bytes and entries;
// small new files are made inline; e2fsck -fn stays clean.
#include <sys/mman.h>

#include "ext2_test_util.h"

using namespace ext2_test;

namespace {

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
  std::string out = fsck_problems(img);
  INFO(out);
  CHECK(out.empty());
  CHECK(has_inline_flag(img, "/tiny"));  // 11 bytes still fit
  CHECK(has_inline_flag(img, "/cut"));
  CHECK_FALSE(has_inline_flag(img, "/edge"));
  CHECK_FALSE(has_inline_flag(img, "/grow"));
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

TEST_CASE("with inline_data, small new files are made in the inode and move out when they grow, e2fsck-clean",
          "[ext2][inline]") {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext4", 1024, "", 16, "-O inline_data"));
  const std::string big(5000, 'B');
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    auto put = [](const char* p, const std::string& data) {
      int fd = rump_sys_open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
      REQUIRE(fd >= 0);
      REQUIRE(rump_sys_write(fd, data.data(), data.size()) == static_cast<long>(data.size()));
      REQUIRE(rump_sys_close(fd) == 0);
    };
    put("/mnt/small", "twenty bytes of data");
    put("/mnt/sixty", std::string(60, '6'));
    put("/mnt/more", std::string(61, 'm'));
    put("/mnt/grows", "thirty bytes, then it grows..");
    REQUIRE(rump_sys_sync() == 0);
    int fd = rump_sys_open("/mnt/grows", O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_pwrite64(fd, big.data(), big.size(), 29) == static_cast<long>(big.size()));
    REQUIRE(rump_sys_close(fd) == 0);
    put("/mnt/shrunk", std::string(50, 's'));
    REQUIRE(rump_sys_sync() == 0);
    REQUIRE(rump_sys_truncate("/mnt/shrunk", 5) == 0);
    REQUIRE(rump_sys_truncate("/mnt/shrunk", 8) == 0);  // three zeros after the five
    // Stores through a shared mapping of a small file.
    fd = rump_sys_open("/mnt/mapped", O_CREAT | O_RDWR, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_ftruncate(fd, 40) == 0);
    rump_test::isolated_proc();
    char* p = static_cast<char*>(rump_sys_mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    REQUIRE(p != MAP_FAILED);
    REQUIRE(rump_copyout("mapped", p + 30, 6) == 0);
    REQUIRE(rump_sys_msync(p, 4096, MS_SYNC) == 0);
    rump_lwproc_releaselwp();
    rump_lwproc_switch(nullptr);
    rump_sys_close(fd);
    // Directories: a few entries stay in the inode, more move out.
    REQUIRE(rump_sys_mkdir("/mnt/d", 0755) == 0);
    put("/mnt/d/a", "a");
    REQUIRE(rump_sys_mkdir("/mnt/d/sub", 0755) == 0);
    REQUIRE(rump_sys_mkdir("/mnt/many", 0755) == 0);
    for (int i = 0; i < 30; i++) put(("/mnt/many/entry_" + std::to_string(i)).c_str(), "x");
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  std::string out = fsck_problems(img);
  INFO(out);
  CHECK(out.empty());
  CHECK(has_inline_flag(img, "/d"));
  CHECK(has_inline_flag(img, "/d/sub"));
  CHECK_FALSE(has_inline_flag(img, "/many"));
  {
    Mounted m(img, "ext4");
    REQUIRE(m.mount_result == 0);
    Listed d = rump_list("/mnt/d");
    CHECK(d.entries == std::map<std::string, unsigned char>{{"a", DT_REG}, {"sub", DT_DIR}});
    CHECK(rump_list("/mnt/many").entries.size() == 30);
    struct stat st;
    REQUIRE(rump_sys_stat("/mnt/d", &st) == 0);
    CHECK(st.st_nlink == 3);
  }
  CHECK(has_inline_flag(img, "/small"));
  CHECK(has_inline_flag(img, "/sixty"));
  CHECK(has_inline_flag(img, "/shrunk"));
  CHECK(has_inline_flag(img, "/mapped"));
  CHECK_FALSE(has_inline_flag(img, "/more"));
  CHECK_FALSE(has_inline_flag(img, "/grows"));
  // Read back through the kernel (debugfs's cat shows an inline file's
  // whole 60 bytes, whatever its size).
  Mounted again(img, "ext4");
  REQUIRE(again.mount_result == 0);
  auto read_back = [](const std::string& path) {
    std::string got;
    REQUIRE(rump_read_all("/mnt" + path, got));
    return got;
  };
  CHECK(read_back("/small") == "twenty bytes of data");
  CHECK(read_back("/sixty") == std::string(60, '6'));
  CHECK(read_back("/more") == std::string(61, 'm'));
  CHECK(read_back("/grows") == "thirty bytes, then it grows.." + big);
  CHECK(read_back("/shrunk") == std::string(5, 's') + std::string(3, '\0'));
  std::string mapped(40, '\0');
  mapped.replace(30, 6, "mapped");
  CHECK(read_back("/mapped") == mapped);
}
