// ext2/3/4 hashed directories written through the kernel: a directory
// that grows past one block becomes indexed, leaves and index nodes
// split, the tree grows a level, and e2fsck -fn (which checks every
// entry's hash against its leaf's range) stays clean through additions,
// removals and renames; debugfs sees the index.
#include "ext2_test_util.h"

using namespace ext2_test;

namespace {

// Names of varied length and bytes (some above 0x7f, where signed and
// unsigned hashing differ).
std::string name_of(int i) {
  std::string n = "n" + std::to_string(i);
  if (i % 7 == 0) n += "\xc3\xa9t\xc3\xa9";
  if (i % 5 == 0) n += std::string(static_cast<size_t>(i % 40), 'x');
  if (i % 11 == 0) n += "\xff\x80";
  return n;
}

int indirect_levels(const std::string& img, const std::string& dir) {
  std::string out = capture("debugfs -R " + shell_quote("htree " + dir) + " " + shell_quote(img) + " 2>/dev/null");
  size_t at = out.find("Indirect levels: ");
  if (at == std::string::npos) return -1;
  return std::atoi(out.c_str() + at + 17);
}

}  // namespace

TEST_CASE("a large directory written through the kernel is indexed, two levels deep, and e2fsck-clean",
          "[ext2][htree]") {
  struct Variant {
    const char* type;
    uint32_t bs;
    int files;
    int levels;  // the index depth expected
  };
  for (Variant v : {Variant{"ext4", 1024, 12000, 1}, Variant{"ext2", 1024, 10000, 1}, Variant{"ext4", 4096, 3000, 0}}) {
    DYNAMIC_SECTION(v.type << " " << v.bs << " " << v.files) {
      TempDir tmp;
      std::string img = tmp.path + "/img";
      REQUIRE(make_image(img, v.type, v.bs, "", 64, "-N 40000"));
      std::set<std::string> want;
      {
        Mounted m(img, v.type, 0);
        REQUIRE(m.mount_result == 0);
        REQUIRE(rump_sys_mkdir("/mnt/big", 0755) == 0);
        for (int i = 0; i < v.files; i++) {
          std::string p = "/mnt/big/" + name_of(i);
          int fd = rump_sys_open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
          INFO("creating " << i);
          REQUIRE(fd >= 0);
          rump_sys_close(fd);
          want.insert(name_of(i));
        }
        // Every name is found, a missing one is not, and a second create
        // of an existing name is EEXIST.
        struct stat st;
        int found = 0;
        for (int i = 0; i < v.files; i++) found += rump_sys_lstat(("/mnt/big/" + name_of(i)).c_str(), &st) == 0;
        CHECK(found == v.files);
        CHECK_ERRNO(ENOENT, rump_sys_lstat("/mnt/big/not-there", &st));
        CHECK_ERRNO(EEXIST, rump_sys_open(("/mnt/big/" + name_of(17)).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644));
        Listed l = rump_list("/mnt/big");
        CHECK(l.ok);
        CHECK(l.entries.size() == want.size());
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      {
        std::string out = fsck_problems(img);
        INFO(out);
        CHECK(out.empty());
      }
      CHECK(indirect_levels(img, "/big") == v.levels);
      // Removals, more additions, renames in and out: still clean.
      {
        Mounted m(img, v.type, 0);
        REQUIRE(m.mount_result == 0);
        REQUIRE(rump_sys_mkdir("/mnt/other", 0755) == 0);
        for (int i = 0; i < v.files; i += 3) {
          REQUIRE(rump_sys_unlink(("/mnt/big/" + name_of(i)).c_str()) == 0);
          want.erase(name_of(i));
        }
        for (int i = 1; i < v.files; i += 50) {
          if (i % 3 == 0) continue;  // removed above
          std::string from = "/mnt/big/" + name_of(i), to = "/mnt/other/" + name_of(i);
          REQUIRE(rump_sys_rename(from.c_str(), to.c_str()) == 0);
          want.erase(name_of(i));
        }
        for (int i = v.files; i < v.files + 2000; i++) {
          std::string p = "/mnt/big/" + name_of(i);
          int fd = rump_sys_open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
          REQUIRE(fd >= 0);
          rump_sys_close(fd);
          want.insert(name_of(i));
        }
        // A rename within the directory onto an existing name.
        REQUIRE(rump_sys_rename(("/mnt/big/" + name_of(2)).c_str(), ("/mnt/big/" + name_of(4)).c_str()) == 0);
        want.erase(name_of(2));
        struct stat st;
        CHECK_ERRNO(ENOENT, rump_sys_lstat(("/mnt/big/" + name_of(3)).c_str(), &st));
        CHECK(rump_sys_lstat(("/mnt/big/" + name_of(v.files + 1999)).c_str(), &st) == 0);
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      {
        std::string out = fsck_problems(img);
        INFO(out);
        CHECK(out.empty());
      }
      Mounted again(img, v.type);
      REQUIRE(again.mount_result == 0);
      Listed l = rump_list("/mnt/big");
      std::set<std::string> got;
      for (auto& [n, t] : l.entries) got.insert(n);
      CHECK(got == want);
      struct stat st;
      int found = 0;
      for (auto& n : want) found += rump_sys_lstat(("/mnt/big/" + n).c_str(), &st) == 0;
      CHECK(found == static_cast<int>(want.size()));
    }
  }
}

TEST_CASE("a directory indexed by e2fsck -D takes new entries into its index", "[ext2][htree]") {
  TempDir tmp;
  std::string tree = tmp.path + "/tree", img = tmp.path + "/img";
  REQUIRE(mkdir(tree.c_str(), 0755) == 0);
  REQUIRE(mkdir((tree + "/d").c_str(), 0755) == 0);
  for (int i = 0; i < 400; i++) REQUIRE(close(open((tree + "/d/" + name_of(i)).c_str(), O_CREAT | O_WRONLY, 0644)) == 0);
  REQUIRE(make_image(img, "ext4", 1024, tree, 32));
  run("e2fsck -fyD " + shell_quote(img) + " >/dev/null 2>&1");
  REQUIRE(indirect_levels(img, "/d") == 0);
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    struct stat st;
    for (int i = 0; i < 400; i++) REQUIRE(rump_sys_lstat(("/mnt/d/" + name_of(i)).c_str(), &st) == 0);
    for (int i = 400; i < 3000; i++) {
      int fd = rump_sys_open(("/mnt/d/" + name_of(i)).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
      REQUIRE(fd >= 0);
      rump_sys_close(fd);
    }
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  std::string out = fsck_problems(img);
  INFO(out);
  CHECK(out.empty());
  CHECK(indirect_levels(img, "/d") >= 0);  // still indexed
  Mounted again(img, "ext4");
  REQUIRE(again.mount_result == 0);
  CHECK(rump_list("/mnt/d").entries.size() == 3000);
}

TEST_CASE("a damaged hash index is not trusted: lookups fall back to a linear search, a change drops it",
          "[ext2][htree]") {
  TempDir tmp;
  std::string tree = tmp.path + "/tree", img = tmp.path + "/img";
  REQUIRE(mkdir(tree.c_str(), 0755) == 0);
  REQUIRE(mkdir((tree + "/d").c_str(), 0755) == 0);
  for (int i = 0; i < 300; i++) REQUIRE(close(open((tree + "/d/" + name_of(i)).c_str(), O_CREAT | O_WRONLY, 0644)) == 0);
  REQUIRE(make_image(img, "ext2", 1024, tree, 16));
  run("e2fsck -fyD " + shell_quote(img) + " >/dev/null 2>&1");
  REQUIRE(indirect_levels(img, "/d") == 0);
  std::string bm = capture("debugfs -R 'bmap /d 0' " + shell_quote(img) + " 2>/dev/null");
  unsigned long blk = std::strtoul(bm.c_str(), nullptr, 10);
  REQUIRE(blk != 0);
  {
    // The root's entry count past its limit.
    int fd = open(img.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    uint16_t count = 0xffff;
    REQUIRE(pwrite(fd, &count, 2, static_cast<off_t>(blk * 1024 + 0x22)) == 2);
    close(fd);
  }
  {
    Mounted m(img, "ext2", 0);
    REQUIRE(m.mount_result == 0);
    struct stat st;
    int found = 0;
    for (int i = 0; i < 300; i++) found += rump_sys_lstat(("/mnt/d/" + name_of(i)).c_str(), &st) == 0;
    CHECK(found == 300);
    CHECK_ERRNO(ENOENT, rump_sys_lstat("/mnt/d/absent", &st));
    int fd = rump_sys_open("/mnt/d/new", O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0);
    rump_sys_close(fd);
    CHECK(rump_sys_unlink(("/mnt/d/" + name_of(5)).c_str()) == 0);
    CHECK(rump_list("/mnt/d").entries.size() == 300);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  std::string out = fsck_problems(img);
  INFO(out);
  CHECK(out.empty());
  CHECK(indirect_levels(img, "/d") < 0);  // no index any more
}

// Positions are hash based (as Linux's): a listing half read, then many
// entries added (the one-block directory becomes indexed, leaves split
// and move half their entries to new blocks), then read on from the
// saved position, sees every earlier entry exactly once. Also seekdir to
// a d_off seen before: the listing goes on from there.
TEST_CASE("readdir of a hashed directory across leaf splits between getdents calls loses and repeats nothing",
          "[ext2][htree]") {
  struct Variant {
    int before;  // entries before the first getdents
  };
  for (Variant v : {Variant{20}, Variant{400}}) {
    DYNAMIC_SECTION(v.before << " entries before") {
      TempDir tmp;
      std::string img = tmp.path + "/img";
      REQUIRE(make_image(img, "ext4", 1024, "", 16));
      Mounted m(img, "ext4", 0);
      REQUIRE(m.mount_result == 0);
      REQUIRE(rump_sys_mkdir("/mnt/d", 0755) == 0);
      auto create = [](int i) {
        std::string p = "/mnt/d/" + name_of(i);
        int fd = rump_sys_open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
        REQUIRE(fd >= 0);
        rump_sys_close(fd);
      };
      std::set<std::string> old;
      for (int i = 0; i < v.before; i++) {
        create(i);
        old.insert(name_of(i));
      }
      int fd = rump_sys_open("/mnt/d", O_RDONLY | O_DIRECTORY, 0);
      REQUIRE(fd >= 0);
      std::map<std::string, int> seen;
      std::vector<std::pair<std::string, int64_t>> order;  // name, d_off
      char buf[512];
      auto read_some = [&](int calls) {
        for (int c = 0; c < calls; c++) {
          long n = rump_sys_getdents64(fd, buf, sizeof buf);
          REQUIRE(n >= 0);
          if (n == 0) return false;
          for (long off = 0; off < n;) {
            auto* d = reinterpret_cast<struct dirent64*>(buf + off);
            seen[d->d_name]++;
            order.emplace_back(d->d_name, d->d_off);
            off += d->d_reclen;
          }
        }
        return true;
      };
      // About half of the entries (a record is 24 + name bytes).
      REQUIRE(read_some(std::max(1, v.before * 32 / 2 / static_cast<int>(sizeof buf))));
      size_t first = seen.size();
      CHECK(first < old.size());
      for (int i = v.before; i < v.before + 1500; i++) create(i);
      while (read_some(1)) {
      }
      for (const std::string& n : old) {
        INFO(n);
        CHECK(seen[n] == 1);
      }
      for (auto& [n, count] : seen) {
        INFO(n);
        CHECK(count == 1);
      }
      CHECK(seen["."] == 1);
      CHECK(seen[".."] == 1);
      // Rewind: the whole directory, once each.
      REQUIRE(rump_sys_lseek(fd, 0, SEEK_SET) == 0);
      seen.clear();
      order.clear();
      while (read_some(1)) {
      }
      CHECK(seen.size() == static_cast<size_t>(v.before + 1500 + 2));
      // Seek to an entry's d_off: the next entry of the listing follows.
      REQUIRE(order.size() == seen.size());
      auto full = order;
      size_t mid = full.size() / 2;
      REQUIRE(rump_sys_lseek(fd, full[mid].second, SEEK_SET) == full[mid].second);
      order.clear();
      REQUIRE(read_some(1));
      CHECK(order.front().first == full[mid + 1].first);
      rump_sys_close(fd);
      REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      std::string out = fsck_problems(img);
      INFO(out);
      CHECK(out.empty());
    }
  }
}
