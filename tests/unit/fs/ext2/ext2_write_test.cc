// ext2/3/4 write side: trees written through the kernel into images made
// by the host's mke2fs, then checked by the host's tools (e2fsck -fn
// clean, debugfs rdump gives the same bytes) and read back in a fresh
// mount; random operation sequences applied to an image and to a host
// directory give the same tree, and e2fsck is clean after each.
#include <random>

#include "ext2_test_util.h"

using namespace ext2_test;

namespace {

// e2fsck -fn's verdict: its output when it is not clean.
std::string fsck(const std::string& img) {
  std::string out = capture("e2fsck -fn " + shell_quote(img) + " 2>&1; echo EXIT=$?");
  if (out.find("EXIT=0") != std::string::npos) return "";
  return out;
}

// Byte and name comparison of two host trees (debugfs's dump against the
// original): names, types, bytes, symlink targets.
void compare_host_trees(const std::string& a, const std::string& b, int& checked) {
  Listed la = host_list(a), lb = host_list(b);
  lb.entries.erase("lost+found");
  // rdump dumps files, directories and symlinks only.
  for (auto it = la.entries.begin(); it != la.entries.end();) {
    if (it->second == DT_REG || it->second == DT_DIR || it->second == DT_LNK) ++it;
    else it = la.entries.erase(it);
  }
  std::set<std::string> na, nb;
  for (auto& [n, t] : la.entries) na.insert(n);
  for (auto& [n, t] : lb.entries) nb.insert(n);
  INFO("directory " << a);
  CHECK(na == nb);
  for (auto& [name, dt] : la.entries) {
    if (!lb.entries.count(name)) continue;
    std::string pa = a + "/" + name, pb = b + "/" + name;
    INFO("path " << pa);
    struct stat sa, sb;
    REQUIRE(lstat(pa.c_str(), &sa) == 0);
    REQUIRE(lstat(pb.c_str(), &sb) == 0);
    CHECK((sa.st_mode & S_IFMT) == (sb.st_mode & S_IFMT));
    checked++;
    if (S_ISREG(sa.st_mode)) CHECK((host_read_all(pa) == host_read_all(pb)));
    if (S_ISLNK(sa.st_mode)) {
      char x[4096], y[4096];
      ssize_t nx = readlink(pa.c_str(), x, sizeof x), ny = readlink(pb.c_str(), y, sizeof y);
      CHECK(std::string(x, nx > 0 ? nx : 0) == std::string(y, ny > 0 ? ny : 0));
    }
    if (S_ISDIR(sa.st_mode) && S_ISDIR(sb.st_mode)) compare_host_trees(pa, pb, checked);
  }
}

void write_tree_and_check(const char* type, uint32_t bs, uint64_t seed) {
  TempDir tmp;
  std::string tree = tmp.path + "/tree", img = tmp.path + "/img", out = tmp.path + "/out";
  TreeGen(seed, bs ? bs : 4096, false).make(tree);
  std::string extra = bs == 65536 ? "-E nodiscard" : "";
  REQUIRE(make_image(img, type, bs, "", bs == 65536 ? 192 : 96, extra));
  INFO("type " << type << " block size " << bs << " seed " << seed);
  {
    Mounted m(img, type, 0);
    REQUIRE(m.mount_result == 0);
    std::map<ino_t, std::string> linked;
    copy_in(tree, "/mnt", linked);
    std::map<ino_t, ino_t> inos;
    int checked = 0;
    compare_tree(tree, "/mnt", CompareOpts{}, inos, checked);
    CHECK(checked > 10);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck(img) == "");
  REQUIRE(mkdir(out.c_str(), 0755) == 0);
  run("debugfs -R " + shell_quote("rdump / " + out) + " " + shell_quote(img) + " >/dev/null 2>&1");
  int checked = 0;
  compare_host_trees(tree, out, checked);
  CHECK(checked > 10);
  // A fresh mount reads the same tree back.
  Mounted again(img, type);
  REQUIRE(again.mount_result == 0);
  std::map<ino_t, ino_t> inos;
  int n = 0;
  compare_tree(tree, "/mnt", CompareOpts{}, inos, n);
}

}  // namespace

TEST_CASE("a tree written through the kernel is e2fsck-clean and debugfs reads it back", "[ext2]") {
  struct Config {
    const char* type;
    uint32_t bs;
  } configs[] = {{"ext2", 1024}, {"ext3", 1024}, {"ext4", 1024}, {"ext2", 4096}, {"ext3", 4096},
                 {"ext4", 4096}, {"ext4", 0},    {"ext2", 65536}, {"ext4", 65536}};
  uint64_t seed = 200;
  for (const Config& c : configs) {
    DYNAMIC_SECTION(c.type << " bs " << c.bs) { write_tree_and_check(c.type, c.bs, seed); }
    seed++;
  }
}

namespace {

// One random operation, applied to the host directory h and to the
// kernel's r; both must give the same result (success or the same errno).
class OpRunner {
 public:
  OpRunner(uint64_t seed, std::string h, std::string r) : rng_(seed), h_(std::move(h)), r_(std::move(r)) {
    paths_.push_back("/missing");  // never the top directory itself
    dirs_.push_back("");
  }

  void step() {
    uint64_t op = pick(12);
    std::string d = dirs_[pick(dirs_.size())];
    std::string p = paths_[pick(paths_.size())];
    std::string q = paths_[pick(paths_.size())];
    std::string fresh = d + "/" + new_name();
    int hr = 0, rr = 0, he = 0, re = 0;
    auto both = [&](auto host, auto kern) {
      errno = 0;
      hr = host();
      he = hr < 0 ? errno : 0;
      errno = 0;
      rr = kern();
      re = rr < 0 ? errno : 0;
    };
    std::string H = h_, R = r_;
    switch (op) {
      case 0: case 1: {  // create and write
        size_t len = pick(4) == 0 ? pick(300000) : pick(5000);
        uint64_t off = pick(3) == 0 ? pick(200000) : 0;
        std::string data(len, '\0');
        for (auto& c : data) c = static_cast<char>(rng_());
        std::string target = pick(2) ? fresh : p;
        struct stat st;
        if (lstat((H + target).c_str(), &st) == 0 && S_ISFIFO(st.st_mode)) break;  // an open would wait
        both([&] {
               int fd = open((H + target).c_str(), O_CREAT | O_WRONLY, 0644);
               if (fd < 0) return -1;
               int r = pwrite(fd, data.data(), len, static_cast<off_t>(off)) == static_cast<ssize_t>(len) ? 0 : -1;
               close(fd);
               return r;
             },
             [&] {
               int fd = rump_sys_open((R + target).c_str(), O_CREAT | O_WRONLY, 0644);
               if (fd < 0) return -1;
               int r = rump_sys_pwrite64(fd, data.data(), len, static_cast<int64_t>(off)) == static_cast<long>(len) ? 0 : -1;
               rump_sys_close(fd);
               return r;
             });
        if (hr == 0 && target == fresh) paths_.push_back(fresh);
        break;
      }
      case 2: {
        off_t len = static_cast<off_t>(pick(3) == 0 ? pick(400000) : pick(3000));
        both([&] { return truncate((H + p).c_str(), len); }, [&] { return rump_sys_truncate((R + p).c_str(), len); });
        break;
      }
      case 3:
        both([&] { return unlink((H + p).c_str()); }, [&] { return rump_sys_unlink((R + p).c_str()); });
        break;
      case 4:
        both([&] { return mkdir((H + fresh).c_str(), 0755); }, [&] { return rump_sys_mkdir((R + fresh).c_str(), 0755); });
        if (hr == 0) {
          dirs_.push_back(fresh);
          paths_.push_back(fresh);
        }
        break;
      case 5:
        both([&] { return rmdir((H + p).c_str()); }, [&] { return rump_sys_rmdir((R + p).c_str()); });
        break;
      case 6: {
        std::string to = pick(2) ? fresh : q;
        // One path inside the other: the VFS checks the kinds of the two
        // before the ancestry (Linux the other way round); not this test's
        // subject.
        auto inside = [](const std::string& a, const std::string& b) { return b.compare(0, a.size() + 1, a + "/") == 0; };
        if (inside(p, to) || inside(to, p)) break;
        both([&] { return rename((H + p).c_str(), (H + to).c_str()); },
             [&] { return rump_sys_rename((R + p).c_str(), (R + to).c_str()); });
        if (hr == 0) paths_.push_back(to);
        break;
      }
      case 7:
        both([&] { return link((H + p).c_str(), (H + fresh).c_str()); },
             [&] { return rump_sys_link((R + p).c_str(), (R + fresh).c_str()); });
        if (hr == 0) paths_.push_back(fresh);
        break;
      case 8: {
        std::string t(pick(2) ? 1 + pick(50) : 60 + pick(300), 'x');
        both([&] { return symlink(t.c_str(), (H + fresh).c_str()); },
             [&] { return rump_sys_symlink(t.c_str(), (R + fresh).c_str()); });
        if (hr == 0) paths_.push_back(fresh);
        break;
      }
      case 9: {
        mode_t mode = static_cast<mode_t>(pick(07777));
        both([&] { return chmod((H + p).c_str(), mode); }, [&] { return rump_sys_chmod((R + p).c_str(), mode); });
        break;
      }
      case 10: {
        // Many entries in one directory: blocks of entries fill and empty.
        for (int i = 0; i < 40; i++) {
          std::string f = d + "/" + new_name();
          both([&] { return mknod((H + f).c_str(), S_IFIFO | 0644, 0); },
               [&] { return rump_sys_mknod((R + f).c_str(), S_IFIFO | 0644, 0); });
          if (hr == 0) paths_.push_back(f);
          if (hr != rr || he != re) break;
        }
        break;
      }
      default: {
        uid_t u = static_cast<uid_t>(pick(100000));
        both([&] { return lchown((H + p).c_str(), u, 7); }, [&] { return rump_sys_lchown((R + p).c_str(), u, 7); });
      }
    }
    struct stat hs {}, rs {};
    int hl = lstat((H + p).c_str(), &hs), rl = rump_sys_lstat((R + p).c_str(), &rs);
    INFO("op " << op << " on " << p << " / " << q << " / " << fresh << " modes " << hl << " " << std::oct
               << hs.st_mode << " " << rl << " " << rs.st_mode << std::dec);
    CHECK(hr == rr);
    CHECK(he == re);
  }

 private:
  uint64_t pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  std::string new_name() {
    std::string n = "n" + std::to_string(counter_++);
    if (pick(3) == 0) n += std::string(pick(200), 'z');
    return n;
  }
  std::mt19937_64 rng_;
  std::string h_, r_;
  std::vector<std::string> paths_, dirs_;
  uint64_t counter_ = 0;
};

}  // namespace

TEST_CASE("on a full ext3 image, the blocks of files unlinked in the running transaction go to a mkdir, a symlink and a link",
          "[ext2]") {
  TempDir t;
  std::string img = t.path + "/img";
  // ext3: no extents, so no pool kept back for metadata, and the blocks
  // the unlinks free are the only free ones. A journal with room to
  // spare: no commit for want of log space either.
  REQUIRE(make_image(img, "ext3", 4096, "", 32, "-J size=8"));
  {
    // No commit by the timer during the test: only the retry commits.
    Mounted m(img, "ext3", 0, "commit=600");
    REQUIRE(m.mount_result == 0);
    // A directory whose one block is full: 16 entries of 252 bytes and
    // one of 40 after "." and "..". A name linked into it needs a block.
    REQUIRE(rump_sys_mkdir("/mnt/d", 0755) == 0);
    for (int i = 0; i < 17; i++) {
      std::string n = "/mnt/d/" + std::to_string(100 + i) + std::string(i < 16 ? 241 : 29, 'n');
      int fd = rump_sys_open(n.c_str(), O_CREAT | O_WRONLY, 0644);
      REQUIRE(fd >= 0);
      rump_sys_close(fd);
    }
    struct stat dst;
    REQUIRE(rump_sys_stat("/mnt/d", &dst) == 0);
    REQUIRE(dst.st_size == 4096);
    // Four files of one block each, then one that takes every block left.
    std::string block(4096, 'a');
    for (const char* p : {"/mnt/a", "/mnt/b", "/mnt/c", "/mnt/e"}) {
      int fd = rump_sys_open(p, O_CREAT | O_WRONLY, 0644);
      REQUIRE(fd >= 0);
      REQUIRE(rump_sys_write(fd, block.data(), block.size()) == 4096);
      rump_sys_close(fd);
    }
    int fd = rump_sys_open("/mnt/big", O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    std::string chunk(64 * 1024, 'b');
    while (rump_sys_write(fd, chunk.data(), chunk.size()) > 0) {
    }
    REQUIRE(rump_sys_fsync(fd) == 0);
    rump_sys_close(fd);
    // Full: a directory has no block to take, nor the full one a block
    // for one more name.
    CHECK_ERRNO(ENOSPC, rump_sys_mkdir("/mnt/before", 0755));
    CHECK_ERRNO(ENOSPC, rump_sys_link("/mnt/big", "/mnt/d/linked"));
    // The small files' blocks are free once the transaction that unlinked
    // them commits: the allocation that finds none commits and tries again.
    for (const char* p : {"/mnt/a", "/mnt/b", "/mnt/c", "/mnt/e"}) REQUIRE(rump_sys_unlink(p) == 0);
    CHECK(rump_sys_link("/mnt/big", "/mnt/d/linked") == 0);
    CHECK(rump_sys_mkdir("/mnt/after", 0755) == 0);
    CHECK(rump_sys_symlink(std::string(300, 's').c_str(), "/mnt/slow") == 0);
    struct stat st;
    CHECK(rump_sys_stat("/mnt/after", &st) == 0);
    REQUIRE(rump_sys_stat("/mnt/big", &st) == 0);
    CHECK(st.st_nlink == 2);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
}

TEST_CASE("without a journal, an image not clean when mounted stays so after the unmount; a clean one is clean again",
          "[ext2]") {
  for (bool clean : {true, false}) {
    DYNAMIC_SECTION((clean ? "clean" : "not clean")) {
      TempDir t;
      std::string img = t.path + "/img";
      REQUIRE(make_image(img, "ext2", 4096, "", 8));
      if (!clean) REQUIRE(run("debugfs -w -R " + shell_quote("ssv state 0") + " " + shell_quote(img) + " >/dev/null 2>&1") == 0);
      // The state line says "clean" or "not clean".
      auto is_clean = [&] {
        std::string line = fs_state(img);
        REQUIRE(line.find("clean") != std::string::npos);
        return line.find("not clean") == std::string::npos;
      };
      REQUIRE(is_clean() == clean);
      {
        Mounted m(img, "ext2", 0);
        REQUIRE(m.mount_result == 0);
        CHECK((kernel_messages().find("mounting unchecked fs") == std::string::npos) == clean);
        // Not clean while mounted.
        CHECK_FALSE(is_clean());
        int fd = rump_sys_open("/mnt/f", O_CREAT | O_WRONLY, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(rump_sys_write(fd, "x", 1) == 1);
        rump_sys_close(fd);
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      CHECK(is_clean() == clean);
      CHECK(fsck_problems(img) == "");
    }
  }
}

TEST_CASE("random operation sequences give the same tree as the host and stay e2fsck-clean", "[ext2]") {
  struct Config {
    const char* type;
    uint32_t bs;
    const char* extra;
  } configs[] = {{"ext2", 1024, ""}, {"ext4", 1024, ""}, {"ext4", 4096, ""}, {"ext3", 4096, ""},
                 {"ext4", 4096, "-O ^metadata_csum,uninit_bg"}, {"ext4", 1024, "-O ^extent,^64bit"}};
  uint64_t seed = 300;
  for (const Config& c : configs) {
    DYNAMIC_SECTION(c.type << " bs " << c.bs << " " << c.extra) {
      TempDir tmp;
      std::string img = tmp.path + "/img", host = tmp.path + "/host";
      REQUIRE(mkdir(host.c_str(), 0755) == 0);
      REQUIRE(make_image(img, c.type, c.bs, "", 64, c.extra));
      for (int seq = 0; seq < 3; seq++) {
        INFO("sequence " << seq);
        {
          Mounted m(img, c.type, 0);
          REQUIRE(m.mount_result == 0);
          OpRunner ops(seed * 10 + static_cast<uint64_t>(seq), host, "/mnt");
          for (int i = 0; i < 150; i++) ops.step();
          std::map<ino_t, ino_t> inos;
          int checked = 0;
          CompareOpts o;
          o.times = false;
          compare_tree(host, "/mnt", o, inos, checked);
          REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
        }
        CHECK(fsck(img) == "");
      }
      seed++;
    }
  }
}

namespace {

// The names of a directory in getdents order (a linear directory's order
// on disk), "." and ".." left out.
std::vector<std::string> names_in_order(const std::string& dir) {
  std::vector<rump_test::Dirent> ents;
  REQUIRE(rump_test::rump_dirents(dir, ents));
  std::vector<std::string> out;
  for (const rump_test::Dirent& e : ents)
    if (e.name != "." && e.name != "..") out.push_back(e.name);
  return out;
}

}  // namespace

// A name goes into the first entry of a linear directory with room for
// it (as Linux's ext4 places it), also when the names before it went to
// the end without a scan: the room an unlink left is taken by the first
// name that fits in it, a larger one goes to the end.
TEST_CASE("a linear directory takes each new name at the first place with room for it", "[ext2]") {
  for (const char* type : {"ext4", "ext2"}) {
    DYNAMIC_SECTION(type) {
      TempDir tmp;
      std::string img = tmp.path + "/img";
      REQUIRE(make_image(img, type, 1024, "", 16, "-O ^dir_index"));
      auto name = [](char c, int i, size_t len) {
        std::string n = c + std::to_string(1000 + i);
        return n + std::string(len - n.size(), 'x');
      };
      std::vector<std::string> want;
      {
        Mounted m(img, type, 0);
        REQUIRE(m.mount_result == 0);
        REQUIRE(rump_sys_mkdir("/mnt/d", 0755) == 0);
        auto create = [](const std::string& n) {
          int fd = rump_sys_open(("/mnt/d/" + n).c_str(), O_CREAT | O_WRONLY, 0644);
          REQUIRE(fd >= 0);
          rump_sys_close(fd);
        };
        // 20-byte names, 28-byte entries: 100 of them fill three blocks.
        for (int i = 0; i < 100; i++) {
          want.push_back(name('n', i, 20));
          create(want.back());
        }
        CHECK(names_in_order("/mnt/d") == want);
        for (int i : {10, 50}) REQUIRE(rump_sys_unlink(("/mnt/d/" + name('n', i, 20)).c_str()) == 0);
        // A 40-byte name needs 48 bytes: more than either hole (28).
        std::string big = name('b', 0, 40);
        create(big);
        for (int i = 0; i < 3; i++) create(name('m', i, 20));
        want[10] = name('m', 0, 20);
        want[50] = name('m', 1, 20);
        want.push_back(big);
        want.push_back(name('m', 2, 20));
        CHECK(names_in_order("/mnt/d") == want);
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      CHECK(fsck_problems(img) == "");
      Mounted m(img, type, MS_RDONLY);
      REQUIRE(m.mount_result == 0);
      CHECK(names_in_order("/mnt/d") == want);
    }
  }
}

TEST_CASE("changing a hashed directory keeps it valid", "[ext2]") {
  for (const char* type : {"ext4", "ext2"}) {
    DYNAMIC_SECTION(type) {
      TempDir tmp;
      std::string tree = tmp.path + "/tree", img = tmp.path + "/img";
      REQUIRE(mkdir(tree.c_str(), 0755) == 0);
      REQUIRE(mkdir((tree + "/big").c_str(), 0755) == 0);
      for (int i = 0; i < 600; i++)
        REQUIRE(run("touch " + shell_quote(tree + "/big/file_with_a_long_name_" + std::to_string(i))) == 0);
      REQUIRE(make_image(img, type, 1024, tree, 32));
      // e2fsck -D builds the hash index.
      run("e2fsck -fyD " + shell_quote(img) + " >/dev/null 2>&1");
      std::string flags = capture("debugfs -R 'stat /big' " + shell_quote(img) + " 2>/dev/null");
      size_t fp = flags.find("Flags: 0x");
      REQUIRE(fp != std::string::npos);
      REQUIRE((std::strtoul(flags.c_str() + fp + 9, nullptr, 16) & 0x1000));  // the index flag
      {
        Mounted m(img, type, 0);
        REQUIRE(m.mount_result == 0);
        struct stat st;
        CHECK(rump_sys_stat("/mnt/big/file_with_a_long_name_599", &st) == 0);
        for (int i = 0; i < 600; i += 3)
          REQUIRE(rump_sys_unlink(("/mnt/big/file_with_a_long_name_" + std::to_string(i)).c_str()) == 0);
        for (int i = 0; i < 100; i++) {
          int fd = rump_sys_open(("/mnt/big/new_" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY, 0644);
          REQUIRE(fd >= 0);
          rump_sys_close(fd);
        }
        REQUIRE(rump_sys_mkdir("/mnt/other", 0755) == 0);
        REQUIRE(rump_sys_rename("/mnt/big/file_with_a_long_name_1", "/mnt/other/moved") == 0);
        Listed l = rump_list("/mnt/big");
        CHECK(l.entries.size() == 600 - 200 + 100 - 1);
        CHECK_ERRNO(ENOENT, rump_sys_stat("/mnt/big/file_with_a_long_name_3", &st));
        CHECK(rump_sys_stat("/mnt/big/new_99", &st) == 0);
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      std::string out = capture("e2fsck -fn " + shell_quote(img) + " 2>&1; echo EXIT=$?");
      CHECK(out.find("EXIT=0") != std::string::npos);
      INFO(out);
    }
  }
}

TEST_CASE("lookups answered by a directory's name cache follow every change, and a directory outgrowing it",
          "[ext2]") {
  for (const char* type : {"ext4", "ext2"}) {
    DYNAMIC_SECTION(type) {
      TempDir tmp;
      std::string img = tmp.path + "/img";
      REQUIRE(make_image(img, type, 1024, "", 32));
      auto path = [](const char* dir, int i) { return std::string("/mnt/") + dir + "/entry_" + std::to_string(i); };
      auto ino_of = [](const std::string& p) -> long {
        struct stat st;
        return rump_sys_lstat(p.c_str(), &st) == 0 ? static_cast<long>(st.st_ino) : -errno;
      };
      // What each name should give: an inode number, or -ENOENT.
      std::map<std::string, long> want;
      {
        Mounted m(img, type, 0);
        REQUIRE(m.mount_result == 0);
        REQUIRE(rump_sys_mkdir("/mnt/a", 0755) == 0);
        REQUIRE(rump_sys_mkdir("/mnt/b", 0755) == 0);
        for (int i = 0; i < 40; i++) {
          int fd = rump_sys_open(path("a", i).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
          REQUIRE(fd >= 0);
          rump_sys_close(fd);
          want[path("a", i)] = ino_of(path("a", i));
          REQUIRE(want[path("a", i)] > 0);
        }
        // A lookup of a missing name before and after the cache exists.
        CHECK(ino_of(path("a", 1000)) == -ENOENT);
        CHECK_ERRNO(EEXIST, rump_sys_mkdir(path("a", 3).c_str(), 0755));
        // unlink, rename within and across directories, rename over an
        // existing name, link, symlink, mkdir and rmdir.
        for (int i = 0; i < 40; i += 4) {
          REQUIRE(rump_sys_unlink(path("a", i).c_str()) == 0);
          want[path("a", i)] = -ENOENT;
        }
        REQUIRE(rump_sys_rename(path("a", 1).c_str(), path("a", 100).c_str()) == 0);
        want[path("a", 100)] = want[path("a", 1)];
        want[path("a", 1)] = -ENOENT;
        REQUIRE(rump_sys_rename(path("a", 2).c_str(), path("b", 2).c_str()) == 0);
        want[path("b", 2)] = want[path("a", 2)];
        want[path("a", 2)] = -ENOENT;
        REQUIRE(rump_sys_rename(path("a", 5).c_str(), path("a", 6).c_str()) == 0);
        want[path("a", 6)] = want[path("a", 5)];
        want[path("a", 5)] = -ENOENT;
        REQUIRE(rump_sys_link(path("a", 7).c_str(), path("b", 7).c_str()) == 0);
        want[path("b", 7)] = want[path("a", 7)];
        REQUIRE(rump_sys_symlink("x", path("a", 0).c_str()) == 0);
        want[path("a", 0)] = ino_of(path("a", 0));
        REQUIRE(rump_sys_mkdir(path("a", 4).c_str(), 0755) == 0);
        REQUIRE(rump_sys_rmdir(path("a", 4).c_str()) == 0);
        // A directory renamed over an empty one in another directory.
        REQUIRE(rump_sys_mkdir(path("a", 200).c_str(), 0755) == 0);
        REQUIRE(rump_sys_mkdir(path("b", 200).c_str(), 0755) == 0);
        want[path("b", 200)] = ino_of(path("a", 200));
        REQUIRE(rump_sys_rename(path("a", 200).c_str(), path("b", 200).c_str()) == 0);
        want[path("a", 200)] = -ENOENT;
        CHECK(ino_of(path("b", 200) + "/..") == ino_of("/mnt/b"));
        for (const auto& [p, ino] : want) CHECK(ino_of(p) == ino);
        // "b" grows past what a name cache keeps (64 KiB of 1 KiB blocks,
        // so it is indexed on the way); every name still resolves.
        for (int i = 1000; i < 3000; i++) {
          std::string p = path("b", i) + "_with_a_name_long_enough_to_fill_blocks";
          int fd = rump_sys_open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
          REQUIRE(fd >= 0);
          rump_sys_close(fd);
          if (i % 7 == 0) {
            REQUIRE(rump_sys_unlink(p.c_str()) == 0);
            want[p] = -ENOENT;
          } else {
            want[p] = ino_of(p);
          }
        }
        struct stat st;
        REQUIRE(rump_sys_stat("/mnt/b", &st) == 0);
        CHECK(st.st_size > 64 * 1024);
        for (const auto& [p, ino] : want) CHECK(ino_of(p) == ino);
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      // From the disk, with no cache: the same answers.
      {
        Mounted m(img, type, 0);
        REQUIRE(m.mount_result == 0);
        for (const auto& [p, ino] : want) CHECK(ino_of(p) == ino);
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      CHECK(fsck_problems(img) == "");
    }
  }
}

TEST_CASE("a new inode whose inode-table block holds no other inode in use is written without reading the block",
          "[ext2]") {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  // 4 KiB blocks, 256-byte inodes: 16 inodes per inode-table block, the
  // first (inodes 1-16) holding the reserved ones and lost+found (11).
  REQUIRE(make_image(img, "ext4", 4096, "", 32, "-I 256"));
  uint64_t injected = 0;
  {
    Mounted m(img, "ext4", 0, "commit=600");
    REQUIRE(m.mount_result == 0);
    auto create = [](int i) {
      int fd = rump_sys_open(("/mnt/f" + std::to_string(i)).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
      if (fd >= 0) rump_sys_close(fd);
      return fd >= 0;
    };
    // Inodes 12-16 fill the first block.
    for (int i = 12; i <= 16; i++) REQUIRE(create(i));
    struct stat st;
    REQUIRE(rump_sys_stat("/mnt/f16", &st) == 0);
    REQUIRE(st.st_ino == 16);
    // Every device request fails from here: inode 17 starts the second
    // block, which is not read (everything else it needs is cached).
    bool made = with_io_failing(m.up.k, [&] {
      bool ok = create(17);
      injected = rump_kernel_faults_injected(m.up.k);
      return ok;
    });
    CHECK(made);
    CHECK(injected == 0);
    REQUIRE(rump_sys_stat("/mnt/f17", &st) == 0);
    CHECK(st.st_ino == 17);
    // The rest of that block, written later, keeps inode 17.
    for (int i = 18; i <= 40; i++) REQUIRE(create(i));
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
  {
    Mounted m(img, "ext4", MS_RDONLY);
    REQUIRE(m.mount_result == 0);
    struct stat st;
    for (int i = 12; i <= 40; i++) {
      REQUIRE(rump_sys_stat(("/mnt/f" + std::to_string(i)).c_str(), &st) == 0);
      CHECK(st.st_ino == static_cast<ino_t>(i));
      CHECK(st.st_mode == (S_IFREG | 0644));
    }
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
}

TEST_CASE("fsync, syncfs and sync put the data on the image while mounted", "[ext2]") {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 32));
  Mounted m(img, "ext4", 0);
  REQUIRE(m.mount_result == 0);
  auto put = [&](const char* path, const std::string& data) {
    int fd = rump_sys_open(path, O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, data.data(), data.size()) == static_cast<long>(data.size()));
    return fd;
  };
  std::string a(10000, 'a'), b(5000, 'b'), c(3000, 'c');
  int fd = put("/mnt/a", a);
  REQUIRE(rump_sys_fsync(fd) == 0);
  // fsync commits to the journal (home blocks come later): the image as
  // the host's e2fsck recovers it has the file.
  std::string copy = tmp.path + "/copy";
  REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(copy) + " && e2fsck -fy " + shell_quote(copy) +
              " >/dev/null 2>&1; true") == 0);
  CHECK(capture("debugfs -R 'cat /a' " + shell_quote(copy) + " 2>/dev/null") == a);
  rump_sys_close(fd);
  fd = put("/mnt/b", b);
  REQUIRE(rump_sys_syncfs(fd) == 0);
  CHECK(on_image(img, "/b") == b);
  rump_sys_close(fd);
  fd = put("/mnt/c", c);
  rump_sys_close(fd);
  rump_sys_sync();
  CHECK(on_image(img, "/c") == c);
}
