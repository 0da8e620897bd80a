// ext2/3/4 extended attributes: attributes written through the kernel are
// what debugfs reads and leave e2fsck -fn clean (in the inode body, in
// blocks, in shared blocks); attributes debugfs wrote are what the kernel
// reads; every call's result and errno is the host kernel's on its own
// ext4 for the same sequence; tmpfs answers as a file system without
// attributes.
#include <sys/xattr.h>

#include "ext2_test_util.h"

using namespace ext2_test;

namespace {

std::string debugfs(const std::string& img, const std::string& req, bool write = false) {
  return capture(std::string("debugfs ") + (write ? "-w " : "") + "-R " + shell_quote(req) + " " +
                 shell_quote(img) + " 2>/dev/null");
}

// The value debugfs reads for name on path (empty and false if none).
bool debugfs_value(const std::string& img, const std::string& dir, const std::string& path, const std::string& name,
                   std::string& out) {
  std::string file = dir + "/ea_value";
  unlink(file.c_str());
  debugfs(img, "ea_get -f " + file + " " + path + " " + name);
  if (access(file.c_str(), F_OK) != 0) return false;
  out = host_read_all(file);
  return true;
}

std::set<std::string> split_list(const char* buf, long n) {
  std::set<std::string> s;
  for (long i = 0; i < n;) {
    std::string one(buf + i);
    s.insert(one);
    i += static_cast<long>(one.size()) + 1;
  }
  return s;
}

std::set<std::string> rump_names(const std::string& path) {
  char buf[65536];
  long n = rump_sys_llistxattr(path.c_str(), buf, sizeof buf);
  REQUIRE(n >= 0);
  return split_list(buf, n);
}

std::string value_of(size_t len, int seed) {
  std::string v(len, '\0');
  for (size_t i = 0; i < len; i++) v[i] = static_cast<char>((i * 131 + static_cast<size_t>(seed) * 7) % 251);
  return v;
}

std::string rump_get(const std::string& path, const std::string& name) {
  std::string v(65536, '\0');
  long n = rump_sys_lgetxattr(path.c_str(), name.c_str(), v.data(), v.size());
  if (n < 0) return "<errno " + std::to_string(errno) + ">";
  v.resize(static_cast<size_t>(n));
  return v;
}

// The attributes of one test file: name -> value.
using Attrs = std::map<std::string, std::string>;

// Sets attrs on the kernel's path, checks them back, and after the
// unmount checks them with debugfs.
void write_and_check(const std::string& img, const char* type, const std::string& dir,
                     const std::map<std::string, Attrs>& files) {
  {
    Mounted m(img, type, 0);
    REQUIRE(m.mount_result == 0);
    for (auto& [f, attrs] : files) {
      std::string p = "/mnt/" + f;
      int fd = rump_sys_open(p.c_str(), O_CREAT | O_WRONLY, 0644);
      REQUIRE(fd >= 0);
      REQUIRE(rump_sys_write(fd, "data", 4) == 4);
      rump_sys_close(fd);
      for (auto& [name, value] : attrs) {
        INFO("file " << f << " attribute " << name << " size " << value.size());
        REQUIRE(rump_sys_setxattr(p.c_str(), name.c_str(), value.data(), value.size(), 0) == 0);
      }
    }
    for (auto& [f, attrs] : files) {
      std::set<std::string> want;
      for (auto& [name, value] : attrs) {
        want.insert(name);
        CHECK(rump_get("/mnt/" + f, name) == value);
      }
      CHECK(rump_names("/mnt/" + f) == want);
    }
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  std::string out = fsck_problems(img);
  INFO(out);
  CHECK(out.empty());
  for (auto& [f, attrs] : files) {
    for (auto& [name, value] : attrs) {
      if (value.empty()) continue;  // debugfs writes no file for an empty value
      INFO("debugfs: file " << f << " attribute " << name);
      std::string got;
      CHECK(debugfs_value(img, dir, "/" + f, name, got));
      CHECK((got == value));
    }
  }
  // And a fresh mount reads the same.
  Mounted again(img, type);
  REQUIRE(again.mount_result == 0);
  for (auto& [f, attrs] : files)
    for (auto& [name, value] : attrs) CHECK(rump_get("/mnt/" + f, name) == value);
}

}  // namespace

TEST_CASE("xattrs written through the kernel are what debugfs reads, and e2fsck is clean", "[ext2][xattr]") {
  struct Variant {
    const char* type;
    uint32_t bs;
    const char* extra;
  };
  // ext4 with metadata_csum and 256-byte inodes (body and block), ext3
  // with 128-byte inodes (blocks only), ext2 with 1 KiB blocks.
  for (Variant v : {Variant{"ext4", 4096, ""}, Variant{"ext3", 1024, "-I 128"}, Variant{"ext2", 1024, ""},
                    Variant{"ext4", 1024, "-O ^metadata_csum -I 512"}}) {
    DYNAMIC_SECTION(v.type << " " << v.bs << " " << v.extra) {
      TempDir tmp;
      std::string img = tmp.path + "/img";
      REQUIRE(make_image(img, v.type, v.bs, "", 32, v.extra));
      std::map<std::string, Attrs> files;
      files["small"] = {{"user.a", "1"}, {"user.bb", "two"}, {"trusted.t", "x"}};
      files["empty"] = {{"user.empty", ""}};
      files["large"] = {{"user.big", value_of(v.bs - 200, 1)}, {"security.s", value_of(40, 2)}};
      Attrs many;
      // As many as a block holds (with 1 KiB blocks about half).
      int count = v.bs == 1024 ? 10 : 20;
      for (int i = 0; i < count; i++) many["user.attribute_number_" + std::to_string(i)] = value_of(17 + i, i);
      files["many"] = many;
      files["oddname"] = {{std::string("user.") + std::string(250, 'n'), value_of(3, 3)}};
      write_and_check(img, v.type, tmp.path, files);
    }
  }
}

TEST_CASE("replacing and removing xattrs keeps the image e2fsck-clean and frees the block", "[ext2][xattr]") {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext4", 1024, "", 32));
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    struct statfs before, after;
    int fd = rump_sys_open("/mnt/f", O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    rump_sys_close(fd);
    REQUIRE(rump_sys_statfs("/mnt", &before) == 0);
    // Grow into the block, shrink back into the body, and everything away.
    for (int round = 0; round < 3; round++) {
      for (int i = 0; i < 12; i++) {
        std::string n = "user.k" + std::to_string(i), val = value_of(20 + 5 * i + round, round);
        REQUIRE(rump_sys_setxattr("/mnt/f", n.c_str(), val.data(), val.size(), 0) == 0);
      }
      for (int i = 0; i < 12; i++) {
        std::string n = "user.k" + std::to_string(i);
        CHECK(rump_get("/mnt/f", n) == value_of(20 + 5 * i + round, round));
      }
      // Replace with shorter and longer values.
      for (int i = 0; i < 12; i += 2) {
        std::string n = "user.k" + std::to_string(i), val = value_of(i * 7, 9);
        REQUIRE(rump_sys_setxattr("/mnt/f", n.c_str(), val.data(), val.size(), XATTR_REPLACE) == 0);
        CHECK(rump_get("/mnt/f", n) == val);
      }
      for (int i = 1; i < 12; i += 2) CHECK(rump_get("/mnt/f", "user.k" + std::to_string(i)) ==
                                            value_of(20 + 5 * i + round, round));
      for (int i = 0; i < 12; i++)
        REQUIRE(rump_sys_removexattr("/mnt/f", ("user.k" + std::to_string(i)).c_str()) == 0);
      CHECK(rump_names("/mnt/f").empty());
      REQUIRE(rump_sys_statfs("/mnt", &after) == 0);
      CHECK(after.f_bfree == before.f_bfree);
    }
    // A file with attributes in a block, unlinked: the block goes with it.
    std::string big = value_of(900, 4);
    REQUIRE(rump_sys_setxattr("/mnt/f", "user.big", big.data(), big.size(), 0) == 0);
    REQUIRE(rump_sys_statfs("/mnt", &after) == 0);
    CHECK(after.f_bfree == before.f_bfree - 1);
    REQUIRE(rump_sys_unlink("/mnt/f") == 0);
    REQUIRE(rump_sys_statfs("/mnt", &after) == 0);
    CHECK(after.f_bfree == before.f_bfree);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  std::string out = fsck_problems(img);
  INFO(out);
  CHECK(out.empty());
}

TEST_CASE("xattrs debugfs wrote are read by the kernel", "[ext2][xattr]") {
  for (const char* type : {"ext4", "ext2"}) {
    DYNAMIC_SECTION(type) {
      TempDir tmp;
      std::string img = tmp.path + "/img", vfile = tmp.path + "/v";
      REQUIRE(make_image(img, type, 4096, "", 32));
      debugfs(img, "write /dev/null f", true);
      std::string big = value_of(3000, 5);
      {
        FILE* f = fopen(vfile.c_str(), "w");
        REQUIRE(f);
        fwrite(big.data(), 1, big.size(), f);
        fclose(f);
      }
      debugfs(img, "ea_set /f user.small hello", true);
      debugfs(img, "ea_set -f " + vfile + " /f user.big", true);
      debugfs(img, "ea_set /f trusted.t xyz", true);
      REQUIRE(fsck_problems(img).empty());
      Mounted m(img, type);
      REQUIRE(m.mount_result == 0);
      CHECK(rump_get("/mnt/f", "user.small") == "hello");
      CHECK(rump_get("/mnt/f", "user.big") == big);
      CHECK(rump_get("/mnt/f", "trusted.t") == "xyz");
      CHECK(rump_names("/mnt/f") == std::set<std::string>{"user.small", "user.big", "trusted.t"});
      char b[4];
      CHECK_ERRNO(ERANGE, rump_sys_getxattr("/mnt/f", "user.small", b, sizeof b));
      CHECK(rump_sys_getxattr("/mnt/f", "user.big", nullptr, 0) == 3000);
      CHECK_ERRNO(ERANGE, rump_sys_listxattr("/mnt/f", b, sizeof b));
      CHECK_ERRNO(EROFS, rump_sys_setxattr("/mnt/f", "user.x", "1", 1, 0));
      CHECK_ERRNO(EROFS, rump_sys_removexattr("/mnt/f", "user.small"));
    }
  }
}

namespace {

// An image of type (no checksums, so that the refcount can be set from
// outside) with /a, /b and /c whose one attribute, user.shared = "value",
// is in one block all three share (as Linux's block sharing leaves them):
// that block's number.
unsigned long shared_block_image(const std::string& img, const std::string& type) {
  REQUIRE(make_image(img, type, 1024, "", 16, "-I 128"));
  {
    Mounted m(img, type.c_str(), 0);
    REQUIRE(m.mount_result == 0);
    for (const char* f : {"/mnt/a", "/mnt/b", "/mnt/c"}) {
      int fd = rump_sys_open(f, O_CREAT | O_WRONLY, 0644);
      REQUIRE(fd >= 0);
      rump_sys_close(fd);
    }
    REQUIRE(rump_sys_setxattr("/mnt/a", "user.shared", "value", 5, 0) == 0);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  std::string st = debugfs(img, "stat /a");
  size_t at = st.find("File ACL: ");
  REQUIRE(at != std::string::npos);
  unsigned long blk = std::strtoul(st.c_str() + at + 10, nullptr, 10);
  REQUIRE(blk != 0);
  for (const char* f : {"/b", "/c"}) {
    debugfs(img, "sif " + std::string(f) + " file_acl " + std::to_string(blk), true);
    debugfs(img, "sif " + std::string(f) + " blocks 2", true);
  }
  int fd = open(img.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  uint32_t refs = 3;
  REQUIRE(pwrite(fd, &refs, 4, static_cast<off_t>(blk * 1024 + 4)) == 4);
  close(fd);
  REQUIRE(fsck_problems(img).empty());
  return blk;
}

}  // namespace

TEST_CASE("a shared xattr block is copied before a change and released at unlink", "[ext2][xattr]") {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  unsigned long blk = shared_block_image(img, "ext2");
  {
    Mounted m(img, "ext2", 0);
    REQUIRE(m.mount_result == 0);
    for (const char* f : {"/mnt/a", "/mnt/b", "/mnt/c"}) CHECK(rump_get(f, "user.shared") == "value");
    REQUIRE(rump_sys_setxattr("/mnt/b", "user.own", "b", 1, 0) == 0);
    CHECK(rump_names("/mnt/b") == std::set<std::string>{"user.shared", "user.own"});
    CHECK(rump_names("/mnt/a") == std::set<std::string>{"user.shared"});
    CHECK(rump_names("/mnt/c") == std::set<std::string>{"user.shared"});
    REQUIRE(rump_sys_unlink("/mnt/c") == 0);
    CHECK(rump_get("/mnt/a", "user.shared") == "value");
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  std::string out = fsck_problems(img);
  INFO(out);
  CHECK(out.empty());
  std::string st2 = debugfs(img, "stat /b");
  CHECK(std::strtoul(st2.c_str() + st2.find("File ACL: ") + 10, nullptr, 10) != blk);
  std::string v;
  CHECK(debugfs_value(img, tmp.path, "/a", "user.shared", v));
  CHECK(v == "value");
}

// With a journal, a change to a shared block journals the old block's
// lowered refcount, then the change in the copy: a failure at any point
// (rump_fault_fail_nth) leaves the three files sharing the block, with
// no copy left allocated.
TEST_CASE("a change to a shared xattr block fails cleanly at each failure point", "[ext2][xattr][fault]") {
  TempDir tmp;
  std::string img = tmp.path + "/img", copy = tmp.path + "/copy";
  unsigned long blk = shared_block_image(img, "ext3");
  unsigned failed = 0;
  for (unsigned n = 1;; n++) {
    if (n == 2000) FAIL("no end to the failure points");
    INFO("n = " << n);
    REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(copy)) == 0);
    bool fired = false;
    int e = 0;
    {
      Mounted m(copy, "ext3", 0);
      REQUIRE(m.mount_result == 0);
      rump_fault_fail_nth(n);
      e = rump_sys_setxattr("/mnt/b", "user.own", "b", 1, 0) == 0 ? 0 : errno;
      fired = rump_fault_fail_nth_fired() != 0;
      rump_fault_fail_nth(0);
      INFO("errno " << e);
      if (e != 0) {
        failed++;
        CHECK((e == ENOMEM || e == EIO));
        CHECK(rump_names("/mnt/b") == std::set<std::string>{"user.shared"});
      } else {
        CHECK(rump_names("/mnt/b") == std::set<std::string>{"user.shared", "user.own"});
      }
      for (const char* f : {"/mnt/a", "/mnt/b", "/mnt/c"}) CHECK(rump_get(f, "user.shared") == "value");
      REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
    }
    std::string out = fsck_problems(copy);
    INFO(out);
    CHECK(out.empty());
    std::string st = debugfs(copy, "stat /b");
    CHECK((std::strtoul(st.c_str() + st.find("File ACL: ") + 10, nullptr, 10) == blk) == (e != 0));
    if (!fired) break;
  }
  CHECK(failed > 0);
}

namespace {

// One step of an xattr call sequence: its result and errno.
struct Outcome {
  long ret;
  int err;
  std::string data;  // what a get or list returned
  bool operator==(const Outcome& o) const { return ret == o.ret && err == o.err && data == o.data; }
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "{" << o.ret << ", errno " << o.err << ", " << o.data.size() << " bytes}";
}

struct Calls {
  long (*set)(const char*, const char*, const void*, size_t, int);
  long (*lset)(const char*, const char*, const void*, size_t, int);
  long (*get)(const char*, const char*, void*, size_t);
  long (*lget)(const char*, const char*, void*, size_t);
  long (*list)(const char*, char*, size_t);
  long (*remove)(const char*, const char*);
  long (*setuid)(uid_t);
};

template <class F>
Outcome outcome(F f) {
  errno = 0;
  long r = f();
  return Outcome{r, r < 0 ? errno : 0, ""};
}

// The sequence, against the files f (regular), d (a directory), l (a
// symlink to f) under root.
std::vector<Outcome> run_sequence(const Calls& c, const std::string& root) {
  std::vector<Outcome> out;
  std::string f = root + "/f", l = root + "/l", d = root + "/d";
  auto set = [&](const std::string& p, const std::string& n, const std::string& v, int fl) {
    out.push_back(outcome([&] { return c.set(p.c_str(), n.c_str(), v.data(), v.size(), fl); }));
  };
  auto get = [&](const std::string& p, const std::string& n, size_t len) {
    std::string buf(len, '\0');
    Outcome o = outcome([&] { return c.get(p.c_str(), n.c_str(), len ? buf.data() : nullptr, len); });
    if (o.ret > 0 && len) o.data = buf.substr(0, static_cast<size_t>(o.ret));
    out.push_back(o);
  };
  auto list = [&](const std::string& p) {
    char buf[65536];
    Outcome o = outcome([&] { return c.list(p.c_str(), buf, sizeof buf); });
    if (o.ret > 0) {
      std::string all;
      for (auto& n : split_list(buf, o.ret)) all += n + ",";
      o.data = all;
    }
    out.push_back(o);
  };
  auto remove = [&](const std::string& p, const std::string& n) {
    out.push_back(outcome([&] { return c.remove(p.c_str(), n.c_str()); }));
  };
  set(f, "user.a", "one", 0);
  set(f, "user.a", "two", XATTR_CREATE);
  set(f, "user.b", "two", XATTR_REPLACE);
  set(f, "user.a", "three", XATTR_REPLACE);
  set(f, "user.c", "x", XATTR_CREATE | XATTR_REPLACE);
  set(f, "user.c", "x", 4);
  get(f, "user.a", 100);
  get(f, "user.a", 0);
  get(f, "user.a", 2);
  get(f, "user.missing", 100);
  set(f, "user.", "v", 0);
  set(f, "nonsense.a", "v", 0);
  set(f, "", "v", 0);
  set(f, "user." + std::string(251, 'x'), "v", 0);
  set(f, "user." + std::string(250, 'x'), "v", 0);
  get(f, "user." + std::string(250, 'x'), 100);
  set(f, "user.huge", std::string(65537, 'h'), 0);
  set(f, "user.toolarge", std::string(5000, 'h'), 0);
  set(f, "user.zero", "", 0);
  get(f, "user.zero", 10);
  set(f, "trusted.t", "secret", 0);
  set(f, "security.s", "label", 0);
  list(f);
  set(d, "user.dir", "dv", 0);
  get(d, "user.dir", 10);
  list(d);
  // The symlink: followed by set/get, not by lset/lget.
  out.push_back(outcome([&] { return c.lset(l.c_str(), "user.link", "v", 1, 0); }));
  out.push_back(outcome([&] {
    char b[10];
    return c.lget(l.c_str(), "user.a", b, sizeof b);
  }));
  get(l, "user.a", 100);
  remove(f, "user.a");
  remove(f, "user.a");
  get(f, "user.a", 100);
  list(f);
  // An unprivileged caller: trusted.* is invisible, security.* readable
  // but not writable, user.* needs the file's permission.
  REQUIRE(c.setuid(1000) == 0);
  get(f, "trusted.t", 100);
  set(f, "trusted.t2", "v", 0);
  get(f, "security.s", 100);
  set(f, "security.s2", "v", 0);
  set(f, "user.nope", "v", 0);
  get(f, "user.zero", 10);
  list(f);
  REQUIRE(c.setuid(0) == 0);
  return out;
}

long rump_setuid_call(uid_t u) { return rump_sys_setresuid(static_cast<uid_t>(-1), u, static_cast<uid_t>(-1)); }
long host_setuid_call(uid_t u) { return setresuid(static_cast<uid_t>(-1), u, static_cast<uid_t>(-1)); }

}  // namespace

TEST_CASE("xattr calls give the host kernel's results on ext4", "[ext2][xattr]") {
  if (geteuid() != 0) {
    WARN("skipped: needs root (trusted.* and changing the effective uid)");
    return;
  }
  TempDir tmp;
  std::string img = tmp.path + "/img", host = tmp.path + "/host";
  // The host side: its own ext4 (the root file system here is one; a
  // different file system would answer differently, so check).
  struct statfs hs;
  REQUIRE(statfs(tmp.path.c_str(), &hs) == 0);
  if (hs.f_type != 0xEF53) {
    WARN("skipped: the host's /tmp is not ext4");
    return;
  }
  REQUIRE(chmod(tmp.path.c_str(), 0755) == 0);  // reachable by the unprivileged steps
  REQUIRE(mkdir(host.c_str(), 0755) == 0);
  REQUIRE(close(open((host + "/f").c_str(), O_CREAT | O_WRONLY, 0644)) == 0);
  REQUIRE(mkdir((host + "/d").c_str(), 0755) == 0);
  REQUIRE(symlink("f", (host + "/l").c_str()) == 0);
  REQUIRE(make_image(img, "ext4", 4096, "", 32));
  Mounted m(img, "ext4", 0);
  REQUIRE(m.mount_result == 0);
  REQUIRE(rump_sys_close(rump_sys_open("/mnt/f", O_CREAT | O_WRONLY, 0644)) == 0);
  REQUIRE(rump_sys_mkdir("/mnt/d", 0755) == 0);
  REQUIRE(rump_sys_symlink("f", "/mnt/l") == 0);
  Calls rc{[](const char* p, const char* n, const void* v, size_t s, int f) -> long { return rump_sys_setxattr(p, n, v, s, f); },
           [](const char* p, const char* n, const void* v, size_t s, int f) -> long { return rump_sys_lsetxattr(p, n, v, s, f); },
           [](const char* p, const char* n, void* v, size_t s) -> long { return rump_sys_getxattr(p, n, v, s); },
           [](const char* p, const char* n, void* v, size_t s) -> long { return rump_sys_lgetxattr(p, n, v, s); },
           [](const char* p, char* l, size_t s) -> long { return rump_sys_listxattr(p, l, s); },
           [](const char* p, const char* n) -> long { return rump_sys_removexattr(p, n); }, rump_setuid_call};
  Calls hc{[](const char* p, const char* n, const void* v, size_t s, int f) -> long { return setxattr(p, n, v, s, f); },
           [](const char* p, const char* n, const void* v, size_t s, int f) -> long { return lsetxattr(p, n, v, s, f); },
           [](const char* p, const char* n, void* v, size_t s) -> long { return getxattr(p, n, v, s); },
           [](const char* p, const char* n, void* v, size_t s) -> long { return lgetxattr(p, n, v, s); },
           [](const char* p, char* l, size_t s) -> long { return listxattr(p, l, s); },
           [](const char* p, const char* n) -> long { return removexattr(p, n); }, host_setuid_call};
  std::vector<Outcome> want = run_sequence(hc, host);
  std::vector<Outcome> got = run_sequence(rc, "/mnt");
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); i++) {
    INFO("step " << i);
    CHECK(got[i] == want[i]);
  }
  REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  std::string out = fsck_problems(img);
  INFO(out);
  CHECK(out.empty());
}

TEST_CASE("user xattrs follow user_xattr, and tmpfs has no xattrs", "[ext2][xattr]") {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 16));
  {
    Mounted m(img, "ext4", 0, "nouser_xattr");
    REQUIRE(m.mount_result == 0);
    REQUIRE(rump_sys_close(rump_sys_open("/mnt/f", O_CREAT | O_WRONLY, 0644)) == 0);
    CHECK_ERRNO(EOPNOTSUPP, rump_sys_setxattr("/mnt/f", "user.a", "1", 1, 0));
    CHECK_ERRNO(EOPNOTSUPP, rump_sys_getxattr("/mnt/f", "user.a", nullptr, 0));
    CHECK(rump_sys_setxattr("/mnt/f", "trusted.a", "1", 1, 0) == 0);
    char buf[100];
    CHECK(rump_sys_listxattr("/mnt/f", buf, sizeof buf) == 10);
    // Bad buffers are EFAULT once there is something to copy.
    int fd = rump_sys_open("/mnt/f", O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK_ERRNO(EFAULT, rump_sys_flistxattr(fd, reinterpret_cast<char*>(8), sizeof buf));
    CHECK_ERRNO(EFAULT, rump_sys_fgetxattr(fd, "trusted.a", reinterpret_cast<char*>(8), sizeof buf));
    CHECK_ERRNO(EFAULT, rump_sys_fsetxattr(fd, "trusted.b", reinterpret_cast<char*>(8), 10, 0));
    CHECK_ERRNO(EFAULT, rump_sys_fgetxattr(fd, reinterpret_cast<char*>(8), buf, sizeof buf));
    rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  // tmpfs (the root): no attributes at all; an empty list.
  KernelUp up;
  REQUIRE(rump_sys_close(rump_sys_open("/t", O_CREAT | O_WRONLY, 0644)) == 0);
  char buf[100];
  CHECK_ERRNO(EOPNOTSUPP, rump_sys_setxattr("/t", "user.a", "1", 1, 0));
  CHECK_ERRNO(EOPNOTSUPP, rump_sys_getxattr("/t", "user.a", buf, sizeof buf));
  CHECK_ERRNO(EOPNOTSUPP, rump_sys_removexattr("/t", "user.a"));
  CHECK(rump_sys_listxattr("/t", buf, sizeof buf) == 0);
  int fd = rump_sys_open("/t", O_RDONLY);
  REQUIRE(fd >= 0);
  CHECK_ERRNO(EOPNOTSUPP, rump_sys_fsetxattr(fd, "user.a", "1", 1, 0));
  CHECK(rump_sys_flistxattr(fd, buf, sizeof buf) == 0);
  rump_sys_close(fd);
}

