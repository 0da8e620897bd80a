// ext2/3/4 read side: images made by the host's mke2fs -d from generated
// trees, mounted in the kernel, every name, byte and attribute compared
// with the tree; statfs against dumpe2fs; feature checks, options and the
// wrong type for an image.
#include "ext2_test_util.h"

using namespace ext2_test;

namespace {

struct Config {
  const char* type;
  uint32_t block_size;  // 0: mke2fs's default
};

// dumpe2fs -h's value for a key ("Free blocks"), or -1.
long long dumpe2fs_value(const std::string& img, const std::string& key) {
  std::string out = capture("dumpe2fs -h " + shell_quote(img) + " 2>/dev/null");
  size_t p = out.find("\n" + key + ":");
  if (p == std::string::npos) return -1;
  return std::atoll(out.c_str() + p + key.size() + 2 + out.substr(p + key.size() + 2).find_first_not_of(' '));
}

void check_image_matches_tree(const Config& c, uint64_t seed) {
  TempDir tmp;
  std::string tree = tmp.path + "/tree", img = tmp.path + "/img";
  uint32_t bs = c.block_size ? c.block_size : 4096;
  TreeGen(seed, bs).make(tree);
  uint64_t mb = bs == 65536 ? 192 : 96;
  std::string extra = bs == 65536 ? "-E nodiscard" : "";
  REQUIRE(make_image(img, c.type, c.block_size, tree, mb, extra));
  Mounted m(img, c.type);
  INFO("type " << c.type << " block size " << c.block_size << " seed " << seed);
  REQUIRE(m.mount_result == 0);
  std::map<ino_t, ino_t> inos;
  int checked = 0;
  compare_tree(tree, "/mnt", CompareOpts{}, inos, checked);
  CHECK(checked > 10);
  // statfs: exact counts, as Linux reports them.
  struct statfs sf;
  REQUIRE(rump_sys_statfs("/mnt", &sf) == 0);
  CHECK(sf.f_type == 0xEF53);
  CHECK(static_cast<long long>(sf.f_bsize) == dumpe2fs_value(img, "Block size"));
  CHECK(static_cast<long long>(sf.f_bfree) == dumpe2fs_value(img, "Free blocks"));
  CHECK(static_cast<long long>(sf.f_ffree) == dumpe2fs_value(img, "Free inodes"));
  CHECK(static_cast<long long>(sf.f_files) == dumpe2fs_value(img, "Inode count"));
  long long overhead = dumpe2fs_value(img, "Overhead clusters");
  if (overhead > 0) CHECK(static_cast<long long>(sf.f_blocks) == dumpe2fs_value(img, "Block count") - overhead);
  // lost+found is there, and the root's "..".
  struct stat st;
  CHECK(rump_sys_stat("/mnt/lost+found", &st) == 0);
  CHECK(rump_sys_stat("/mnt/..", &st) == 0);
  CHECK(rump_sys_umount2("/mnt", 0) == 0);
}

}  // namespace

TEST_CASE("ext2/3/4 images made by mke2fs -d read back byte for byte, every block size", "[ext2]") {
  const Config configs[] = {
      {"ext2", 0},    {"ext3", 0},    {"ext4", 0},    {"ext2", 1024}, {"ext3", 1024}, {"ext4", 1024},
      {"ext2", 4096}, {"ext3", 4096}, {"ext4", 4096}, {"ext2", 65536}, {"ext4", 65536},
  };
  uint64_t seed = 1;
  for (const Config& c : configs) {
    DYNAMIC_SECTION(c.type << " bs " << c.block_size) { check_image_matches_tree(c, seed); }
    seed++;
  }
}

TEST_CASE("ext4 with 128-byte inodes, without extents, with inline_data and without filetype", "[ext2]") {
  struct Variant {
    const char* type;
    const char* opts;
  } variants[] = {
      {"ext4", "-I 128"},
      {"ext4", "-O ^extent,^64bit,^flex_bg,^metadata_csum,uninit_bg"},
      {"ext4", "-O inline_data"},
      {"ext4", "-O metadata_csum_seed,^has_journal"},
      {"ext2", "-r 0"},
      {"ext4", "-O ^64bit"},
      {"ext4", "-O meta_bg,^resize_inode"},
  };
  uint64_t seed = 100;
  for (const Variant& v : variants) {
    DYNAMIC_SECTION(v.type << " " << v.opts) {
      TempDir tmp;
      std::string tree = tmp.path + "/tree", img = tmp.path + "/img";
      TreeGen(seed, 4096, true, std::string(v.opts) != "-O inline_data").make(tree, 2);
      REQUIRE(make_image(img, v.type, 0, tree, 64, v.opts));
      Mounted m(img, v.type);
      REQUIRE(m.mount_result == 0);
      std::map<ino_t, ino_t> inos;
      int checked = 0;
      CompareOpts o;
      o.dtype = std::string(v.opts) != "-r 0";  // revision 0 has no file types in entries
      compare_tree(tree, "/mnt", o, inos, checked);
      CHECK(checked > 5);
    }
    seed++;
  }
}

TEST_CASE("nanoseconds and the epoch bits past 2038 decode as Linux decodes them", "[ext2]") {
  TempDir tmp;
  std::string tree = tmp.path + "/tree", img = tmp.path + "/img";
  REQUIRE(mkdir(tree.c_str(), 0755) == 0);
  REQUIRE(run("echo hi > " + shell_quote(tree + "/a")) == 0);
  REQUIRE(make_image(img, "ext4", 0, tree, 16));
  // mtime 0x60000000 with extra 0x1d6f3459: epoch 1, 123456790 ns;
  // atime 3000000000 (past 2038: epoch bit set, low word wraps).
  REQUIRE(run("debugfs -w -R 'sif /a mtime 0x60000000' " + shell_quote(img) + " >/dev/null 2>&1") == 0);
  REQUIRE(run("debugfs -w -R 'sif /a mtime_extra 0x1d6f3459' " + shell_quote(img) + " >/dev/null 2>&1") == 0);
  REQUIRE(run("debugfs -w -R 'sif /a atime @3000000000' " + shell_quote(img) + " >/dev/null 2>&1") == 0);
  Mounted m(img, "ext4");
  REQUIRE(m.mount_result == 0);
  struct stat st;
  REQUIRE(rump_sys_stat("/mnt/a", &st) == 0);
  CHECK(st.st_mtim.tv_sec == 0x60000000LL + (1LL << 32));
  CHECK(st.st_mtim.tv_nsec == 123456790);
  CHECK(st.st_atim.tv_sec == 3000000000LL);
}

TEST_CASE("ext4 statx reports the creation time", "[ext2]") {
  TempDir tmp;
  std::string tree = tmp.path + "/tree", img = tmp.path + "/img";
  REQUIRE(mkdir(tree.c_str(), 0755) == 0);
  REQUIRE(run("echo hello > " + shell_quote(tree + "/f")) == 0);
  REQUIRE(make_image(img, "ext4", 0, tree, 16));
  std::string out = capture("debugfs -R 'stat /f' " + shell_quote(img) + " 2>/dev/null");
  size_t p = out.find("crtime: 0x");
  REQUIRE(p != std::string::npos);
  unsigned long long crtime = std::strtoull(out.c_str() + p + 10, nullptr, 16);
  Mounted m(img, "ext4");
  REQUIRE(m.mount_result == 0);
  struct statx sx;
  REQUIRE(rump_sys_statx(AT_FDCWD, "/mnt/f", 0, STATX_BTIME, &sx) == 0);
  CHECK(sx.stx_btime.tv_sec == static_cast<long long>(crtime));
}

TEST_CASE("mounting the wrong type, unknown options and unknown features is EINVAL", "[ext2]") {
  TempDir tmp;
  std::string e2 = tmp.path + "/e2", e4 = tmp.path + "/e4";
  REQUIRE(make_image(e2, "ext2", 0, "", 16));
  REQUIRE(make_image(e4, "ext4", 0, "", 16));
  SECTION("an ext4 image is no ext2 or ext3") {
    Mounted m(e4, "ext2");
    CHECK(m.mount_result == -1);
    CHECK(m.mount_errno == EINVAL);
    CHECK_ERRNO(EINVAL, rump_sys_mount("/dev/img", "/mnt", "ext3", MS_RDONLY, nullptr));
    CHECK(rump_sys_mount("/dev/img", "/mnt", "ext4", MS_RDONLY, nullptr) == 0);
  }
  SECTION("an ext2 image has no journal for ext3, and mounts as ext4") {
    Mounted m(e2, "ext3");
    CHECK(m.mount_result == -1);
    CHECK(m.mount_errno == EINVAL);
    CHECK(rump_sys_mount("/dev/img", "/mnt", "ext4", MS_RDONLY, nullptr) == 0);
  }
  SECTION("unknown option") {
    Mounted m(e4, "ext4", MS_RDONLY, "bogus_option");
    CHECK(m.mount_result == -1);
    CHECK(m.mount_errno == EINVAL);
    char msg[16384];
    rump_msgbuf_read(msg, sizeof msg);
    CHECK(std::string(msg).find("bogus_option") != std::string::npos);
    CHECK(rump_sys_mount("/dev/img", "/mnt", "ext4", MS_RDONLY, "errors=remount-ro,user_xattr,data=ordered") == 0);
  }
  SECTION("not an ext file system") {
    REQUIRE(run("dd if=/dev/zero of=" + shell_quote(tmp.path + "/zero") + " bs=1M count=4 2>/dev/null") == 0);
    Mounted m(tmp.path + "/zero", "ext4");
    CHECK(m.mount_result == -1);
    CHECK(m.mount_errno == EINVAL);
  }
  SECTION("an unknown INCOMPAT feature refuses the mount and names it") {
    // ext2 has no superblock checksum: set bit 31 of s_feature_incompat.
    int fd = open(e2.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    uint32_t inc;
    REQUIRE(pread(fd, &inc, 4, 1024 + 0x60) == 4);
    inc |= 0x80000000u;
    REQUIRE(pwrite(fd, &inc, 4, 1024 + 0x60) == 4);
    close(fd);
    Mounted m(e2, "ext4");
    CHECK(m.mount_result == -1);
    CHECK(m.mount_errno == EINVAL);
    char msg[16384];
    rump_msgbuf_read(msg, sizeof msg);
    CHECK(std::string(msg).find("unsupported optional features (80000000") != std::string::npos);
  }
  SECTION("an unknown RO_COMPAT feature allows only read-only") {
    int fd = open(e2.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    uint32_t ro;
    REQUIRE(pread(fd, &ro, 4, 1024 + 0x64) == 4);
    ro |= 0x80000000u;
    REQUIRE(pwrite(fd, &ro, 4, 1024 + 0x64) == 4);
    close(fd);
    Mounted m(e2, "ext4", 0);
    CHECK(m.mount_result == -1);
    CHECK(m.mount_errno == EINVAL);
    CHECK(rump_sys_mount("/dev/img", "/mnt", "ext4", MS_RDONLY, nullptr) == 0);
  }
  SECTION("a device that is not a block device is ENOTBLK") {
    KernelUp up;
    REQUIRE(rump_sys_mkdir("/mnt", 0755) == 0);
    CHECK_ERRNO(ENOTBLK, rump_sys_mount("/mnt", "/mnt", "ext4", MS_RDONLY, nullptr));
    CHECK_ERRNO(ENOENT, rump_sys_mount("/nonexistent", "/mnt", "ext4", MS_RDONLY, nullptr));
  }
}
