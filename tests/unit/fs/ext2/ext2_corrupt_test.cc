// ext2/3/4 on corrupt images: checksum mismatches and bad entries fail the
// operation with EUCLEAN, and randomly damaged images, read and written,
// never crash, hang or leak (the kernel halts cleanly after every walk).
#include <random>

#include "ext2_test_util.h"

using namespace ext2_test;

namespace {

// debugfs's answer to "imap PATH": the inode's block and byte offset.
bool inode_location(const std::string& img, const std::string& path, uint64_t& block, uint64_t& offset) {
  std::string out = capture("debugfs -R " + shell_quote("imap " + path) + " " + shell_quote(img) + " 2>/dev/null");
  size_t b = out.find("located at block ");
  size_t o = out.find("offset 0x");
  if (b == std::string::npos || o == std::string::npos) return false;
  block = std::strtoull(out.c_str() + b + 17, nullptr, 10);
  offset = std::strtoull(out.c_str() + o + 9, nullptr, 16);
  return true;
}

uint64_t first_block(const std::string& img, const std::string& path) {
  std::string out = capture("debugfs -R " + shell_quote("blocks " + path) + " " + shell_quote(img) + " 2>/dev/null");
  return std::strtoull(out.c_str(), nullptr, 10);
}

void poke(const std::string& img, uint64_t off, const void* bytes, size_t n) {
  int fd = open(img.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(pwrite(fd, bytes, n, static_cast<off_t>(off)) == static_cast<ssize_t>(n));
  close(fd);
}

// Walks everything under path through the kernel, ignoring errors (each
// must be an errno, which the wrappers guarantee); counts what it saw.
void walk(const std::string& path, int depth, int& seen) {
  if (depth > 8) return;
  int fd = rump_sys_open(path.c_str(), O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return;
  std::vector<std::string> names;
  char buf[4096];
  for (int rounds = 0; rounds < 1000; rounds++) {
    long n = rump_sys_getdents64(fd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      std::string nm = d->d_name;
      if (nm != "." && nm != "..") names.push_back(nm);
      off += d->d_reclen;
    }
  }
  rump_sys_close(fd);
  for (const std::string& nm : names) {
    std::string p = path + "/" + nm;
    struct stat st;
    seen++;
    if (rump_sys_lstat(p.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      walk(p, depth + 1, seen);
    } else if (S_ISREG(st.st_mode)) {
      int f = rump_sys_open(p.c_str(), O_RDONLY, 0);
      if (f < 0) continue;
      char data[65536];
      for (int i = 0; i < 64 && rump_sys_read(f, data, sizeof data) > 0; i++) {
      }
      rump_sys_lseek(f, 0, 3 /* SEEK_DATA */);
      rump_sys_close(f);
    } else if (S_ISLNK(st.st_mode)) {
      char t[4096];
      rump_sys_readlink(p.c_str(), t, sizeof t);
    }
  }
}

// Writes, truncates, renames and removes things under path (results
// ignored: a damaged image may refuse any of them).
void change(const std::string& path, int depth, std::mt19937_64& rng) {
  if (depth > 4) return;
  int fd = rump_sys_open(path.c_str(), O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return;
  std::vector<std::string> names;
  char buf[4096];
  for (int rounds = 0; rounds < 100; rounds++) {
    long n = rump_sys_getdents64(fd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      std::string nm = d->d_name;
      if (nm != "." && nm != "..") names.push_back(nm);
      off += d->d_reclen;
    }
  }
  rump_sys_close(fd);
  std::string data(20000, 'w');
  for (const std::string& nm : names) {
    std::string p = path + "/" + nm;
    switch (rng() % 6) {
      case 0: {
        int f = rump_sys_open(p.c_str(), O_WRONLY | O_NONBLOCK, 0);
        if (f >= 0) {
          rump_sys_pwrite64(f, data.data(), data.size(), static_cast<int64_t>(rng() % 100000));
          rump_sys_close(f);
        }
        break;
      }
      case 1: rump_sys_truncate(p.c_str(), static_cast<int64_t>(rng() % 50000)); break;
      case 2: rump_sys_unlink(p.c_str()); break;
      case 3: rump_sys_rename(p.c_str(), (path + "/r" + std::to_string(rng() % 100)).c_str()); break;
      case 4: change(p, depth + 1, rng); rump_sys_rmdir(p.c_str()); break;
      default: rump_sys_mkdir((p + "_d").c_str(), 0755);
    }
  }
  int f = rump_sys_open((path + "/new").c_str(), O_CREAT | O_WRONLY, 0644);
  if (f >= 0) {
    rump_sys_write(f, data.data(), data.size());
    rump_sys_close(f);
  }
}

}  // namespace

TEST_CASE("a metadata_csum inode with a wrong checksum is EUCLEAN", "[ext2]") {
  TempDir tmp;
  std::string tree = tmp.path + "/tree", img = tmp.path + "/img";
  REQUIRE(mkdir(tree.c_str(), 0755) == 0);
  REQUIRE(run("echo hello > " + shell_quote(tree + "/f") + " && echo other > " + shell_quote(tree + "/g")) == 0);
  REQUIRE(make_image(img, "ext4", 1024, tree, 16));
  uint64_t block = 0, offset = 0;
  REQUIRE(inode_location(img, "/f", block, offset));
  uint8_t b = 0x5a;
  poke(img, block * 1024 + offset + 0x24, &b, 1);  // i_version: nothing but the checksum notices
  Mounted m(img, "ext4");
  REQUIRE(m.mount_result == 0);
  struct stat st;
  CHECK_ERRNO(EUCLEAN, rump_sys_stat("/mnt/f", &st));
  CHECK(rump_sys_stat("/mnt/g", &st) == 0);
  char msg[16384];
  rump_msgbuf_read(msg, sizeof msg);
  CHECK(std::string(msg).find("inode checksum invalid") != std::string::npos);
}

TEST_CASE("a directory block with a wrong checksum or a bad entry is EUCLEAN", "[ext2]") {
  TempDir tmp;
  std::string tree = tmp.path + "/tree";
  REQUIRE(mkdir(tree.c_str(), 0755) == 0);
  REQUIRE(mkdir((tree + "/d").c_str(), 0755) == 0);
  REQUIRE(run("echo hello > " + shell_quote(tree + "/d/f")) == 0);
  for (const char* type : {"ext2", "ext4"}) {
    DYNAMIC_SECTION(type) {
      std::string img = tmp.path + "/img" + type;
      REQUIRE(make_image(img, type, 1024, tree, 16));
      uint64_t blk = first_block(img, "/d");
      REQUIRE(blk > 0);
      // The first entry's rec_len ("."): 3 is no valid length.
      uint8_t bad[2] = {3, 0};
      poke(img, blk * 1024 + 4, bad, 2);
      Mounted m(img, type);
      REQUIRE(m.mount_result == 0);
      struct stat st;
      CHECK_ERRNO(EUCLEAN, rump_sys_stat("/mnt/d/f", &st));
      int fd = rump_sys_open("/mnt/d", O_RDONLY | O_DIRECTORY, 0);
      REQUIRE(fd >= 0);
      char buf[4096];
      CHECK_ERRNO(EUCLEAN, rump_sys_getdents64(fd, buf, sizeof buf));
      rump_sys_close(fd);
    }
  }
}

TEST_CASE("a corrupt superblock checksum or group descriptor refuses the mount", "[ext2]") {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext4", 1024, "", 16));
  SECTION("superblock") {
    uint8_t b = 0x77;
    poke(img, 1024 + 0x78, &b, 1);  // the volume name, covered by the checksum
    Mounted m(img, "ext4");
    CHECK(m.mount_result == -1);
    CHECK(m.mount_errno == EUCLEAN);
  }
  SECTION("group descriptor") {
    uint8_t b = 0x33;
    poke(img, 2048 + 0x10, &b, 1);  // group 0's used directories count
    Mounted m(img, "ext4");
    CHECK(m.mount_result == -1);
    CHECK(m.mount_errno == EUCLEAN);
  }
}

TEST_CASE("randomly damaged images never crash the kernel", "[ext2]") {
  TempDir tmp;
  std::string tree = tmp.path + "/tree";
  ext2_test::TreeGen(7, 1024).make(tree, 2);
  std::mt19937_64 rng(42);
  for (const char* type : {"ext2", "ext4"}) {
    std::string base = tmp.path + "/base" + type;
    REQUIRE(make_image(base, type, 1024, tree, 24, std::string(type) == "ext4" ? "-O ^metadata_csum" : ""));
    off_t size;
    {
      struct stat st;
      REQUIRE(stat(base.c_str(), &st) == 0);
      size = st.st_size;
    }
    for (int iter = 0; iter < 40; iter++) {
      std::string img = tmp.path + "/img";
      REQUIRE(run("cp --sparse=always " + shell_quote(base) + " " + shell_quote(img)) == 0);
      int fd = open(img.c_str(), O_RDWR);
      REQUIRE(fd >= 0);
      // Damage the metadata-rich start: descriptors, bitmaps, inode
      // tables, the first directory and extent blocks.
      int flips = 1 + static_cast<int>(rng() % 40);
      for (int i = 0; i < flips; i++) {
        off_t off = static_cast<off_t>(1024 + rng() % std::min<uint64_t>(size - 1024, 600 * 1024));
        uint8_t v = static_cast<uint8_t>(rng());
        REQUIRE(pwrite(fd, &v, 1, off) == 1);
      }
      close(fd);
      INFO(type << " iteration " << iter);
      // Every other round writes too: allocation and removal on a damaged
      // image fail cleanly.
      bool rw = iter % 2;
      Mounted m(img, type, rw ? 0 : MS_RDONLY);
      if (m.mount_result == 0) {
        int seen = 0;
        walk("/mnt", 0, seen);
        struct statfs sf;
        rump_sys_statfs("/mnt", &sf);
        if (rw) change("/mnt", 0, rng);
        rump_sys_umount2("/mnt", 0);
      }
    }
  }
}

TEST_CASE("a mount gone read-only on an error keeps its last committed state: uncommitted changes never reach the image",
          "[ext2][journal]") {
  TempDir tmp;
  std::string tree = tmp.path + "/tree", img = tmp.path + "/img";
  REQUIRE(mkdir(tree.c_str(), 0755) == 0);
  REQUIRE(mkdir((tree + "/d").c_str(), 0755) == 0);
  REQUIRE(run("echo hello > " + shell_quote(tree + "/d/f") + " && echo old > " + shell_quote(tree + "/x")) == 0);
  REQUIRE(make_image(img, "ext4", 1024, tree, 16));
  uint64_t blk = first_block(img, "/d");
  REQUIRE(blk > 0);
  std::string original(1024, '\0');
  {
    int fd = open(img.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, original.data(), 1024, static_cast<off_t>(blk * 1024)) == 1024);
    close(fd);
  }
  auto root_names = [&] {
    std::string out = capture("debugfs -R " + shell_quote("ls -p /") + " " + shell_quote(img) + " 2>/dev/null");
    std::set<std::string> names;
    for (size_t at = 0; at < out.size();) {
      size_t nl = out.find('\n', at);
      std::string line = out.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
      at = nl == std::string::npos ? out.size() : nl + 1;
      // /ino/mode/uid/gid/name/size/
      size_t s = 0;
      for (int field = 0; field < 4 && s != std::string::npos; field++) s = line.find('/', s + 1);
      size_t e = s == std::string::npos ? s : line.find('/', s + 1);
      if (e != std::string::npos) names.insert(line.substr(s + 1, e - s - 1));
    }
    return names;
  };
  {
    Mounted m(img, "ext4", 0, "errors=remount-ro,commit=600");
    REQUIRE(m.mount_result == 0);
    // Committed: a new file, fsync'ed.
    int fd = rump_sys_open("/mnt/a", O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, "committed\n", 10) == 10);
    REQUIRE(rump_sys_fsync(fd) == 0);
    rump_sys_close(fd);
    // Not committed: a new file, a new directory, an unlink.
    fd = rump_sys_open("/mnt/b", O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    rump_sys_close(fd);
    REQUIRE(rump_sys_mkdir("/mnt/c", 0755) == 0);
    REQUIRE(rump_sys_unlink("/mnt/x") == 0);
    // A damaged directory block found now turns the mount read-only.
    uint8_t bad[2] = {3, 0};
    poke(img, blk * 1024 + 4, bad, 2);
    struct stat st;
    CHECK_ERRNO(EUCLEAN, rump_sys_stat("/mnt/d/f", &st));
    CHECK_ERRNO(EROFS, rump_sys_mkdir("/mnt/e", 0755));
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  // Nothing uncommitted reached the home blocks (what was committed is
  // there or in the log, which the next mount replays).
  std::set<std::string> names = root_names();
  CHECK(names.count("x") == 1);
  CHECK(names.count("b") == 0);
  CHECK(names.count("c") == 0);
  // With the damage undone, the image with its log replayed is the
  // committed state, and clean.
  poke(img, blk * 1024, original.data(), original.size());
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
  names = root_names();
  CHECK(names.count("a") == 1);
  CHECK(names.count("x") == 1);
  CHECK(names.count("b") == 0);
  CHECK(names.count("c") == 0);
  CHECK(capture("debugfs -R " + shell_quote("cat /a") + " " + shell_quote(img) + " 2>/dev/null") == "committed\n");
}
