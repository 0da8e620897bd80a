// ext2/3/4 inode flags through FS_IOC_GETFLAGS/SETFLAGS and the
// generation through FS_IOC_GETVERSION: the same call sequence against
// the host kernel's own ext4 and an image gives the same results
// (append-only and immutable refusing changes with EPERM), the flags are
// on disk where debugfs looks, and e2fsck stays clean.
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>

#include "ext2_test_util.h"

using namespace ext2_test;

namespace {

struct Step {
  long ret;
  int err;
  bool operator==(const Step& o) const { return ret == o.ret && err == o.err; }
};

std::ostream& operator<<(std::ostream& os, const Step& s) { return os << "{" << s.ret << ", errno " << s.err << "}"; }

// The calls, host's or kernel's.
struct Sys {
  int (*open)(const char*, int, mode_t);
  int (*close)(int);
  long (*write)(int, const void*, size_t);
  int (*ioctl)(int, unsigned long, void*);
  int (*truncate)(const char*, off_t);
  int (*unlink)(const char*);
  int (*rename)(const char*, const char*);
  int (*link)(const char*, const char*);
  int (*chmod)(const char*, mode_t);
  int (*mkdir)(const char*, mode_t);
  int (*setxattr)(const char*, const char*, const void*, size_t, int);
  int (*utimens)(const char*);
  int (*seteuid)(uid_t);
};

template <class F>
Step step(F f) {
  errno = 0;
  long r = static_cast<long>(f());
  return Step{r < 0 ? -1 : (r > 0 ? 1 : 0), r < 0 ? errno : 0};
}

std::vector<Step> run_sequence(const Sys& s, const std::string& root, std::vector<uint32_t>& flags_seen) {
  std::vector<Step> out;
  std::string f = root + "/f", d = root + "/d", g = root + "/d/g";
  auto get_flags = [&](const std::string& p) {
    int fd = s.open(p.c_str(), O_RDONLY, 0);
    REQUIRE(fd >= 0);
    int v = -1;
    out.push_back(step([&] { return s.ioctl(fd, FS_IOC_GETFLAGS, &v); }));
    flags_seen.push_back(static_cast<uint32_t>(v));
    s.close(fd);
  };
  auto set_flags = [&](const std::string& p, uint32_t v) {
    int fd = s.open(p.c_str(), O_RDONLY, 0);
    REQUIRE(fd >= 0);
    int x = static_cast<int>(v);
    out.push_back(step([&] { return s.ioctl(fd, FS_IOC_SETFLAGS, &x); }));
    s.close(fd);
  };
  auto open_close = [&](const std::string& p, int fl) {
    int fd = s.open(p.c_str(), fl, 0644);
    out.push_back(Step{fd < 0 ? -1 : 0, fd < 0 ? errno : 0});
    if (fd >= 0) {
      if ((fl & O_ACCMODE) != O_RDONLY) out.push_back(step([&] { return s.write(fd, "ab", 2); }));
      s.close(fd);
    }
  };
  get_flags(f);
  get_flags(d);
  // Append-only.
  set_flags(f, FS_APPEND_FL | FS_EXTENT_FL);
  get_flags(f);
  open_close(f, O_WRONLY);
  open_close(f, O_WRONLY | O_APPEND);
  open_close(f, O_RDWR | O_APPEND | O_TRUNC);
  open_close(f, O_RDONLY);
  out.push_back(step([&] { return s.truncate(f.c_str(), 0); }));
  out.push_back(step([&] { return s.unlink(f.c_str()); }));
  out.push_back(step([&] { return s.rename(f.c_str(), (root + "/f2").c_str()); }));
  out.push_back(step([&] { return s.link(f.c_str(), (root + "/f3").c_str()); }));
  out.push_back(step([&] { return s.chmod(f.c_str(), 0600); }));
  out.push_back(step([&] { return s.setxattr(f.c_str(), "user.a", "1", 1, 0); }));
  out.push_back(step([&] { return s.utimens(f.c_str()); }));
  // Immutable.
  set_flags(f, FS_IMMUTABLE_FL | FS_EXTENT_FL);
  get_flags(f);
  open_close(f, O_WRONLY | O_APPEND);
  open_close(f, O_RDONLY);
  out.push_back(step([&] { return s.unlink(f.c_str()); }));
  out.push_back(step([&] { return s.chmod(f.c_str(), 0600); }));
  out.push_back(step([&] { return s.utimens(f.c_str()); }));
  // Immutable and staying so: nothing else may change.
  set_flags(f, FS_IMMUTABLE_FL | FS_EXTENT_FL | FS_NODUMP_FL);
  // A directory: immutable refuses new names, append-only allows them
  // but no removal.
  set_flags(d, FS_IMMUTABLE_FL | FS_EXTENT_FL);
  open_close(g, O_CREAT | O_WRONLY);
  out.push_back(step([&] { return s.mkdir((d + "/sub").c_str(), 0755); }));
  set_flags(d, FS_APPEND_FL | FS_EXTENT_FL);
  open_close(g, O_CREAT | O_WRONLY | O_APPEND);
  out.push_back(step([&] { return s.unlink(g.c_str()); }));
  out.push_back(step([&] { return s.rename(g.c_str(), (root + "/moved").c_str()); }));
  // Flags that do not belong on a regular file, and unknown ones.
  set_flags(f, FS_EXTENT_FL | FS_DIRSYNC_FL);
  set_flags(f, FS_EXTENT_FL | 0x80000000u);
  // An unprivileged owner may set nodump but not immutable; others
  // nothing.
  set_flags(f, FS_EXTENT_FL);
  set_flags(d, FS_EXTENT_FL);
  REQUIRE(s.seteuid(1000) == 0);
  set_flags(f, FS_EXTENT_FL | FS_NODUMP_FL);
  REQUIRE(s.seteuid(0) == 0);
  REQUIRE(s.chmod(f.c_str(), 0666) == 0);
  REQUIRE(s.chmod(root.c_str(), 0777) == 0);
  // Owned by the caller (made with its euid).
  std::string mine = root + "/mine";
  REQUIRE(s.seteuid(1000) == 0);
  {
    int fd = s.open(mine.c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    s.close(fd);
  }
  set_flags(mine, FS_EXTENT_FL | FS_NODUMP_FL);
  get_flags(mine);
  set_flags(mine, FS_EXTENT_FL | FS_IMMUTABLE_FL);
  REQUIRE(s.seteuid(0) == 0);
  return out;
}

int rump_open3(const char* p, int f, mode_t m) { return rump_sys_open(p, f, m); }
int rump_close1(int fd) { return rump_sys_close(fd); }
long rump_write3(int fd, const void* b, size_t n) { return rump_sys_write(fd, b, n); }
int rump_ioctl3(int fd, unsigned long r, void* a) { return rump_sys_ioctl(fd, r, a); }
int rump_truncate2(const char* p, off_t l) { return rump_sys_truncate(p, l); }
int rump_unlink1(const char* p) { return rump_sys_unlink(p); }
int rump_rename2(const char* a, const char* b) { return rump_sys_rename(a, b); }
int rump_link2(const char* a, const char* b) { return rump_sys_link(a, b); }
int rump_chmod2(const char* p, mode_t m) { return rump_sys_chmod(p, m); }
int rump_mkdir2(const char* p, mode_t m) { return rump_sys_mkdir(p, m); }
int rump_setxattr5(const char* p, const char* n, const void* v, size_t s, int f) { return rump_sys_setxattr(p, n, v, s, f); }
int rump_utimens1(const char* p) { return rump_sys_utimensat(AT_FDCWD, p, nullptr, 0); }
int rump_seteuid1(uid_t u) { return rump_sys_setresuid(static_cast<uid_t>(-1), u, static_cast<uid_t>(-1)); }

int host_open3(const char* p, int f, mode_t m) { return open(p, f, m); }
long host_write3(int fd, const void* b, size_t n) { return write(fd, b, n); }
int host_ioctl3(int fd, unsigned long r, void* a) { return ioctl(fd, r, a); }
int host_utimens1(const char* p) { return utimensat(AT_FDCWD, p, nullptr, 0); }
int host_seteuid1(uid_t u) { return setresuid(static_cast<uid_t>(-1), u, static_cast<uid_t>(-1)); }

}  // namespace

TEST_CASE("FS_IOC_GETFLAGS/SETFLAGS and immutable/append-only give the host kernel's results", "[ext2][flags]") {
  if (geteuid() != 0) {
    WARN("skipped: needs root (immutable flags and changing the effective uid)");
    return;
  }
  TempDir tmp;
  struct statfs hs;
  REQUIRE(statfs(tmp.path.c_str(), &hs) == 0);
  if (hs.f_type != 0xEF53) {
    WARN("skipped: the host's /tmp is not ext4");
    return;
  }
  REQUIRE(chmod(tmp.path.c_str(), 0755) == 0);
  std::string host = tmp.path + "/host", img = tmp.path + "/img";
  REQUIRE(mkdir(host.c_str(), 0755) == 0);
  REQUIRE(close(open((host + "/f").c_str(), O_CREAT | O_WRONLY, 0644)) == 0);
  REQUIRE(mkdir((host + "/d").c_str(), 0755) == 0);
  Sys hsys{host_open3, close, host_write3, host_ioctl3, truncate, unlink, rename, link, chmod, mkdir, setxattr,
           host_utimens1, host_seteuid1};
  std::vector<uint32_t> host_flags, rump_flags;
  std::vector<Step> want = run_sequence(hsys, host, host_flags);
  // Leave the host tree removable.
  run("chattr -R -i -a " + shell_quote(host) + " 2>/dev/null");
  for (const char* p : {"/f", "/d", "/mine"}) {
    int fd = open((host + p).c_str(), O_RDONLY);
    if (fd >= 0) {
      int z = FS_EXTENT_FL;
      ioctl(fd, FS_IOC_SETFLAGS, &z);
      close(fd);
    }
  }

  REQUIRE(make_image(img, "ext4", 4096, "", 32));
  uint32_t gen = 0;
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    REQUIRE(rump_sys_close(rump_sys_open("/mnt/f", O_CREAT | O_WRONLY, 0644)) == 0);
    REQUIRE(rump_sys_mkdir("/mnt/d", 0755) == 0);
    Sys rsys{rump_open3, rump_close1, rump_write3, rump_ioctl3, rump_truncate2, rump_unlink1, rump_rename2,
             rump_link2, rump_chmod2, rump_mkdir2, rump_setxattr5, rump_utimens1, rump_seteuid1};
    std::vector<Step> got = run_sequence(rsys, "/mnt", rump_flags);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); i++) {
      INFO("step " << i);
      CHECK(got[i] == want[i]);
    }
    CHECK(rump_flags == host_flags);
    int fd = rump_sys_open("/mnt/d", O_RDONLY);
    REQUIRE(fd >= 0);
    int v = 0;
    REQUIRE(rump_sys_ioctl(fd, FS_IOC_GETVERSION, &v) == 0);
    gen = static_cast<uint32_t>(v);
    // d keeps append-only on the image.
    int fl = FS_APPEND_FL | FS_EXTENT_FL;
    REQUIRE(rump_sys_ioctl(fd, FS_IOC_SETFLAGS, &fl) == 0);
    rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  std::string out = fsck_problems(img);
  INFO(out);
  CHECK(out.empty());
  std::string st = capture("debugfs -R 'stat /d' " + shell_quote(img) + " 2>/dev/null");
  size_t at = st.find("Generation: ");
  REQUIRE(at != std::string::npos);
  CHECK(std::strtoul(st.c_str() + at + 12, nullptr, 10) == gen);
  at = st.find("Flags: 0x");
  REQUIRE(at != std::string::npos);
  CHECK(std::strtoul(st.c_str() + at + 9, nullptr, 16) == (FS_APPEND_FL | FS_EXTENT_FL));
  // tmpfs has no flags.
  KernelUp up;
  REQUIRE(rump_sys_close(rump_sys_open("/t", O_CREAT | O_WRONLY, 0644)) == 0);
  int fd = rump_sys_open("/t", O_RDONLY);
  int v;
  CHECK_ERRNO(ENOTTY, rump_sys_ioctl(fd, FS_IOC_GETFLAGS, &v));
  rump_sys_close(fd);
}
