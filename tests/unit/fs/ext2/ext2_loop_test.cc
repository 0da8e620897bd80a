// The host kernel's own ext4 driver reads what the kernel wrote: a tree
// (odd names, holes, links, devices, times, owners), extended attributes,
// inode flags and a large hashed directory are written into an image
// through the kernel; the image, loop-mounted read-only on the host, then
// shows the same tree as the kernel's own mount of it, and the host finds
// every name of the hashed directory through its index. A file system
// that fallocate filled leaves ext4's metadata pool free, which neither
// mkdir nor a write may take, on the host kernel and here alike. Needs
// root and loop devices; skipped (with a warning) where the host refuses
// the mount.
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>

#include "ext2_test_util.h"

using namespace ext2_test;

namespace {

// Loop mounts need root: false (with a warning) without it.
bool loop_mounts_allowed() {
  if (geteuid() == 0) return true;
  WARN("skipped: loop mounts need root");
  return false;
}

// The host kernel's loop mount of img at mnt (made here), with the mount
// options opts; unmounted at the end of the scope. ok: the host mounted it.
struct LoopMount {
  std::string mnt;
  bool ok;
  LoopMount(const std::string& img, const std::string& dir, const std::string& opts) : mnt(dir) {
    REQUIRE(mkdir(mnt.c_str(), 0755) == 0);
    ok = run("mount -o " + opts + " " + shell_quote(img) + " " + shell_quote(mnt) + " >/dev/null 2>&1") == 0;
    if (!ok) WARN("skipped: the host refused the loop mount");
  }
  ~LoopMount() {
    if (ok) run("umount " + shell_quote(mnt) + " >/dev/null 2>&1");
  }
};

std::map<std::string, std::string> host_xattrs(const std::string& p) {
  std::map<std::string, std::string> out;
  char names[65536];
  ssize_t n = llistxattr(p.c_str(), names, sizeof names);
  for (ssize_t i = 0; i < n;) {
    std::string name(names + i);
    char v[65536];
    ssize_t vn = lgetxattr(p.c_str(), name.c_str(), v, sizeof v);
    out[name] = vn >= 0 ? std::string(v, static_cast<size_t>(vn)) : "<error>";
    i += static_cast<ssize_t>(name.size()) + 1;
  }
  return out;
}

std::map<std::string, std::string> rump_xattrs(const std::string& p) {
  std::map<std::string, std::string> out;
  char names[65536];
  long n = rump_sys_llistxattr(p.c_str(), names, sizeof names);
  for (long i = 0; i < n;) {
    std::string name(names + i);
    char v[65536];
    long vn = rump_sys_lgetxattr(p.c_str(), name.c_str(), v, sizeof v);
    out[name] = vn >= 0 ? std::string(v, static_cast<size_t>(vn)) : "<error>";
    i += static_cast<long>(name.size()) + 1;
  }
  return out;
}

// Attributes on every regular file and directory under r (kernel side),
// sizes from a few bytes to a block's worth.
void add_xattrs(const std::string& r, int& k) {
  Listed l = rump_list(r);
  for (auto& [name, dt] : l.entries) {
    std::string p = r + "/" + name;
    if (dt != DT_REG && dt != DT_DIR) continue;
    std::string v(static_cast<size_t>((k * 37) % 900), static_cast<char>('a' + k % 26));
    REQUIRE(rump_sys_lsetxattr(p.c_str(), ("user.k" + std::to_string(k % 5)).c_str(), v.data(), v.size(), 0) == 0);
    if (k % 3 == 0) REQUIRE(rump_sys_lsetxattr(p.c_str(), "trusted.t", "tv", 2, 0) == 0);
    k++;
    if (dt == DT_DIR) add_xattrs(p, k);
  }
}

void compare_xattrs(const std::string& h, const std::string& r, int& checked) {
  Listed l = rump_list(r);
  for (auto& [name, dt] : l.entries) {
    if (name == "lost+found") continue;
    std::string hp = h + "/" + name, rp = r + "/" + name;
    INFO("path " << hp);
    CHECK(host_xattrs(hp) == rump_xattrs(rp));
    checked++;
    if (dt == DT_DIR) compare_xattrs(hp, rp, checked);
  }
}

}  // namespace

TEST_CASE("the host kernel's ext4 driver reads the tree, xattrs, flags and index the kernel wrote",
          "[ext2][loop]") {
  if (!loop_mounts_allowed()) return;
  TempDir tmp;
  std::string tree = tmp.path + "/tree", img = tmp.path + "/img", mnt = tmp.path + "/mnt";
  TreeGen(77, 4096, false).make(tree);
  REQUIRE(make_image(img, "ext4", 4096, "", 128, "-N 20000"));
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    std::map<ino_t, std::string> linked;
    copy_in(tree, "/mnt", linked);
    int k = 0;
    add_xattrs("/mnt", k);
    REQUIRE(rump_sys_mkdir("/mnt/big", 0755) == 0);
    for (int i = 0; i < 6000; i++) {
      std::string p = "/mnt/big/name_" + std::to_string(i) + (i % 7 ? "" : "_\xc3\xa9\xff");
      int fd = rump_sys_open(p.c_str(), O_CREAT | O_WRONLY, 0644);
      REQUIRE(fd >= 0);
      rump_sys_close(fd);
    }
    int fd = rump_sys_open("/mnt/big", O_RDONLY);
    REQUIRE(fd >= 0);
    int fl = FS_EXTENT_FL | FS_NODUMP_FL | FS_NOATIME_FL;
    REQUIRE(rump_sys_ioctl(fd, FS_IOC_SETFLAGS, &fl) == 0);
    rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  LoopMount host(img, mnt, "loop,ro");
  if (!host.ok) return;
  Mounted m(img, "ext4");
  REQUIRE(m.mount_result == 0);
  std::map<ino_t, ino_t> inos;
  int checked = 0;
  compare_tree(mnt, "/mnt", CompareOpts{}, inos, checked);
  CHECK(checked > 6000);
  int xchecked = 0;
  compare_xattrs(mnt, "/mnt", xchecked);
  CHECK(xchecked > 6000);
  // The host finds every name of the hashed directory by lookup (its
  // index walk), and sees the flags.
  int found = 0;
  for (int i = 0; i < 6000; i++) {
    struct stat st;
    std::string p = mnt + "/big/name_" + std::to_string(i) + (i % 7 ? "" : "_\xc3\xa9\xff");
    found += lstat(p.c_str(), &st) == 0;
  }
  CHECK(found == 6000);
  int fd = open((mnt + "/big").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  int fl = 0;
  REQUIRE(ioctl(fd, FS_IOC_GETFLAGS, &fl) == 0);
  close(fd);
  CHECK((fl & (FS_NODUMP_FL | FS_NOATIME_FL | FS_INDEX_FL)) == (FS_NODUMP_FL | FS_NOATIME_FL | FS_INDEX_FL));
}

// orphan_file (Linux 5.15+): the host kernel unlinks a file that is still
// open, so its inode waits in the orphan file, and the image is copied
// while mounted (as a crash leaves it: orphan_present set). Our mount
// (read-write) frees the inode, clears the entry and the flag, and
// e2fsck -fn finds the image clean.
TEST_CASE("an orphan file left by the host kernel is processed at a read-write mount", "[ext2][loop]") {
  if (!loop_mounts_allowed()) return;
  TempDir tmp;
  std::string img = tmp.path + "/img", snap = tmp.path + "/snap", mnt = tmp.path + "/mnt";
  if (!make_image(img, "ext4", 1024, "", 32, "-O orphan_file")) {
    WARN("skipped: mke2fs without orphan_file");
    return;
  }
  {
    LoopMount host(img, mnt, "loop");
    if (!host.ok) return;
    std::string victim = mnt + "/victim";
    int fd = open(victim.c_str(), O_CREAT | O_RDWR, 0644);
    REQUIRE(fd >= 0);
    std::string data(300000, 'v');
    REQUIRE(write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    REQUIRE(fsync(fd) == 0);
    REQUIRE(unlink(victim.c_str()) == 0);
    REQUIRE(run("sync -f " + shell_quote(mnt) + " && cp --sparse=always " + shell_quote(img) + " " +
                shell_quote(snap)) == 0);
    close(fd);
  }
  std::string before = capture("dumpe2fs -h " + shell_quote(snap) + " 2>/dev/null");
  if (before.find("orphan_present") == std::string::npos) {
    WARN("skipped: the host kernel left no orphan_present flag");
    return;
  }
  {
    Mounted m(snap, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    // Writable: the orphan file did not force a read-only mount.
    int fd = rump_sys_open("/mnt/after", O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0);
    if (fd >= 0) rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  std::string after = capture("dumpe2fs -h " + shell_quote(snap) + " 2>/dev/null");
  CHECK(after.find("orphan_present") == std::string::npos);
  CHECK(fsck_problems(snap) == "");
}

namespace {

// One file system's calls, the host's or the kernel's, for the scenario
// below.
struct HostFs {
  static int open(const std::string& p, int fl) { return ::open(p.c_str(), fl, 0644); }
  static int fallocate(int fd, off_t at, off_t len) { return ::fallocate(fd, 0, at, len); }
  static int mkdir(const std::string& p) { return ::mkdir(p.c_str(), 0755); }
  static long write(int fd, const char* b, size_t n) { return ::write(fd, b, n); }
  static int close(int fd) { return ::close(fd); }
  static int statfs(const std::string& p, struct statfs* s) { return ::statfs(p.c_str(), s); }
};
struct RumpFs {
  static int open(const std::string& p, int fl) { return rump_sys_open(p.c_str(), fl, 0644); }
  static int fallocate(int fd, off_t at, off_t len) { return rump_sys_fallocate(fd, 0, at, len); }
  static int mkdir(const std::string& p) { return rump_sys_mkdir(p.c_str(), 0755); }
  static long write(int fd, const char* b, size_t n) { return rump_sys_write(fd, b, n); }
  static int close(int fd) { return rump_sys_close(fd); }
  static int statfs(const std::string& p, struct statfs* s) { return rump_sys_statfs(p.c_str(), s); }
};

struct FullFs {
  uint64_t bfree = 0;
  int mkdir_errno = 0, write_errno = 0;
};

// fallocate fills the file system at dir down to the block, then a
// directory and a one-byte write are tried: what is left free, and their
// errors (0: they succeeded).
template <class Fs>
FullFs fill_then_try(const std::string& dir) {
  FullFs r;
  int fd = Fs::open(dir + "/fill", O_CREAT | O_RDWR);
  REQUIRE(fd >= 0);
  off_t at = 0;
  for (off_t chunk = 8 << 20; chunk >= 1024; chunk /= 2)
    while (Fs::fallocate(fd, at, chunk) == 0) at += chunk;
  Fs::close(fd);
  struct statfs s;
  REQUIRE(Fs::statfs(dir, &s) == 0);
  r.bfree = s.f_bfree;
  r.mkdir_errno = Fs::mkdir(dir + "/d") == 0 ? 0 : errno;
  int w = Fs::open(dir + "/new", O_CREAT | O_WRONLY);
  REQUIRE(w >= 0);
  r.write_errno = Fs::write(w, "x", 1) == 1 ? 0 : errno;
  Fs::close(w);
  return r;
}

}  // namespace

TEST_CASE("on an ext4 that fallocate filled, only the metadata pool is left and neither mkdir nor write takes it, "
          "on the host kernel and here",
          "[ext2][loop]") {
  if (!loop_mounts_allowed()) return;
  TempDir tmp;
  std::string img = tmp.path + "/img", copy = tmp.path + "/copy", mnt = tmp.path + "/mnt";
  REQUIRE(make_image(img, "ext4", 1024, "", 16));
  REQUIRE(run("cp --sparse=always " + shell_quote(img) + " " + shell_quote(copy)) == 0);
  FullFs host;
  {
    LoopMount h(img, mnt, "loop");
    if (!h.ok) return;
    host = fill_then_try<HostFs>(mnt);
  }
  FullFs ours;
  {
    Mounted m(copy, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    ours = fill_then_try<RumpFs>("/mnt");
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  // 16,384 blocks: a pool of 327 (2%), all that is free on both.
  CHECK(host.bfree == 327);
  CHECK(ours.bfree == host.bfree);
  CHECK(host.mkdir_errno == ENOSPC);
  CHECK(ours.mkdir_errno == host.mkdir_errno);
  CHECK(host.write_errno == ENOSPC);
  CHECK(ours.write_errno == host.write_errno);
  CHECK(fsck_problems(copy) == "");
}
