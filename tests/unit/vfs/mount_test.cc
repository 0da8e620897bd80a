// umount2 as Linux does it: MNT_DETACH (the mount leaves the namespace at
// once, its users keep working in it, the tree goes with the last of
// them), MNT_FORCE on a local file system (no effect: busy stays EBUSY),
// MNT_EXPIRE (mark, then unmount if unused since), UMOUNT_NOFOLLOW, and
// the order of the EINVAL/ENOENT/EPERM checks.
//
// The sequences run against the rump kernel and, when the host lets this
// process make a private mount namespace (root), against the host kernel
// in a forked child, and every result is compared. The expected Linux
// results are written down as well, so the rump run is checked even where
// the host part cannot run.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <dirent.h>
#include <string>
#include <vector>

#include <rump/rump_syscalls.h>

#include "rump_test.h"

using rump_test::KernelUp;

namespace {

// The calls a sequence makes, for either kernel.
struct HostSys {
  static long open(const char* p, int f, mode_t m = 0) { return ::open(p, f, m); }
  static long openat(int d, const char* p, int f, mode_t m = 0) { return ::openat(d, p, f, m); }
  static long close(int fd) { return ::close(fd); }
  static long read(int fd, void* b, size_t n) { return ::read(fd, b, n); }
  static long write(int fd, const void* b, size_t n) { return ::write(fd, b, n); }
  static long lseek(int fd, off_t o, int w) { return ::lseek(fd, o, w); }
  static long mkdir(const char* p, mode_t m) { return ::mkdir(p, m); }
  static long symlink(const char* t, const char* p) { return ::symlink(t, p); }
  static long stat(const char* p, struct stat* st) { return ::stat(p, st); }
  static long fstat(int fd, struct stat* st) { return ::fstat(fd, st); }
  static long chdir(const char* p) { return ::chdir(p); }
  static long getcwd(char* b, size_t n) { return syscall(SYS_getcwd, b, n); }
  static long getdents(int fd, void* b, size_t n) { return syscall(SYS_getdents64, fd, b, n); }
  static long mount(const char* target) { return ::mount("none", target, "tmpfs", 0, nullptr); }
  static long umount2(const char* target, int flags) { return ::umount2(target, flags); }
};

struct RumpSys {
  static long open(const char* p, int f, mode_t m = 0) { return rump_sys_open(p, f, m); }
  static long openat(int d, const char* p, int f, mode_t m = 0) { return rump_sys_openat(d, p, f, m); }
  static long close(int fd) { return rump_sys_close(fd); }
  static long read(int fd, void* b, size_t n) { return rump_sys_read(fd, b, n); }
  static long write(int fd, const void* b, size_t n) { return rump_sys_write(fd, b, n); }
  static long lseek(int fd, off_t o, int w) { return rump_sys_lseek(fd, o, w); }
  static long mkdir(const char* p, mode_t m) { return rump_sys_mkdir(p, m); }
  static long symlink(const char* t, const char* p) { return rump_sys_symlink(t, p); }
  static long stat(const char* p, struct stat* st) { return rump_sys_stat(p, st); }
  static long fstat(int fd, struct stat* st) { return rump_sys_fstat(fd, st); }
  static long chdir(const char* p) { return rump_sys_chdir(p); }
  static long getcwd(char* b, size_t n) { return rump___sysimpl_getcwd(b, n); }  // the raw call: a length
  static long getdents(int fd, void* b, size_t n) { return rump_sys_getdents64(fd, b, n); }
  static long mount(const char* target) { return rump_sys_mount("none", target, "tmpfs", 0, nullptr); }
  static long umount2(const char* target, int flags) { return rump_sys_umount2(target, flags); }
};

// Results of a sequence: each call's value, or -errno. Fixed size, so a
// host child can send it back through a pipe as bytes.
struct Results {
  static constexpr int kMax = 96;
  std::array<long, kMax> v{};
  int n = 0;
  bool skipped = false;  // the host could not make a mount namespace
  void add(long r) {
    if (n < kMax) v[n] = r < 0 ? -errno : r;
    n++;
  }
  // For descriptors: 0 on success (the numbers differ: the host child
  // has a pipe open).
  void add_ok(long r) { add(r < 0 ? r : 0); }
};

// Names of the entries of the directory open as fd, sorted, as a count
// and a check that "wanted" is among them (1) or not (0).
template <class S>
long has_entry(int fd, const char* wanted) {
  alignas(8) char buf[2048];
  if (S::lseek(fd, 0, SEEK_SET) < 0) return -1;
  long n = S::getdents(fd, buf, sizeof buf);
  if (n < 0) return n;
  for (long off = 0; off < n;) {
    uint16_t reclen;
    std::memcpy(&reclen, buf + off + 16, sizeof reclen);
    if (std::strcmp(buf + off + 19, wanted) == 0) return 1;
    off += reclen;
  }
  return 0;
}

// MNT_FORCE, MNT_EXPIRE, UMOUNT_NOFOLLOW and the EINVAL cases, in the
// scratch directory `base` (the current directory on entry).
template <class S>
Results force_and_expire(const std::string& base) {
  Results r;
  struct stat st {};
  std::string a = base + "/a";
  const char* A = a.c_str();
  r.add(S::mkdir(A, 0755));
  r.add(S::mount(A));
  r.add(S::umount2(A, 0x100));                               // unknown flag
  r.add(S::umount2(A, MNT_EXPIRE | MNT_FORCE));              // EINVAL
  r.add(S::umount2(A, MNT_EXPIRE | MNT_DETACH));             // EINVAL
  r.add(S::umount2("nonexistent", MNT_EXPIRE | MNT_FORCE));  // the path first: ENOENT
  r.add(S::umount2("nonexistent", 0x100));                   // the flags before the path
  r.add(S::umount2(base.c_str(), 0));                        // not a mount point: EINVAL
  // A busy mount: MNT_FORCE is EBUSY on a local file system, as is
  // MNT_EXPIRE.
  long fd = S::open("a/f", O_CREAT | O_RDWR, 0644);
  r.add_ok(fd);
  r.add(S::umount2(A, MNT_FORCE));
  r.add(S::umount2(A, MNT_EXPIRE));
  r.add(S::close(static_cast<int>(fd)));
  // MNT_EXPIRE: marks (EAGAIN); a use of the mount clears the mark; a
  // second call with the mark still set unmounts.
  r.add(S::umount2(A, MNT_EXPIRE));
  r.add(S::stat("a/f", &st));
  r.add(S::umount2(A, MNT_EXPIRE));
  r.add(S::stat(base.c_str(), &st));  // not a use of the mount
  r.add(S::umount2(A, MNT_EXPIRE));
  r.add(S::stat("a/f", &st));  // gone: ENOENT
  r.add(S::umount2(A, MNT_EXPIRE));  // no mount there: EINVAL
  // An idle mount: MNT_FORCE unmounts.
  r.add(S::mount(A));
  r.add(S::umount2(A, MNT_FORCE));
  // A mount with a mount below it is busy for all but MNT_DETACH.
  r.add(S::mount(A));
  r.add(S::mkdir("a/b", 0755));
  r.add(S::mount("a/b"));
  r.add(S::umount2(A, MNT_EXPIRE));
  r.add(S::umount2(A, MNT_FORCE));
  r.add(S::umount2(A, 0));
  r.add(S::umount2("a/b", 0));
  // A cwd inside keeps it busy for MNT_EXPIRE too.
  r.add(S::chdir("a"));
  r.add(S::umount2(A, MNT_EXPIRE));
  r.add(S::chdir(base.c_str()));
  // UMOUNT_NOFOLLOW: a symlink to the mount point is no mount point.
  r.add(S::symlink(A, "sl"));
  r.add(S::umount2("sl", UMOUNT_NOFOLLOW));
  r.add(S::umount2("sl", MNT_DETACH | MNT_FORCE));  // followed: unmounts
  r.add(S::stat("a/b", &st));                        // the covered directory again
  return r;
}

// MNT_DETACH with users inside: a cwd in the mount, an open file in a
// mount below it, a directory descriptor.
template <class S>
Results lazy_unmount(const std::string& base) {
  Results r;
  struct stat st {}, st2 {};
  char buf[64];
  std::string a = base + "/a";
  const char* A = a.c_str();
  r.add(S::mkdir(A, 0755));
  r.add(S::mount(A));
  r.add(S::mkdir("a/b", 0755));
  r.add(S::mkdir("a/d", 0755));
  r.add(S::mount("a/b"));
  long fd = S::open("a/b/g", O_CREAT | O_RDWR, 0644);
  r.add_ok(fd);
  r.add(S::write(static_cast<int>(fd), "hi", 2));
  long dfd = S::open("a/d", O_RDONLY | O_DIRECTORY);
  r.add_ok(dfd);
  r.add(S::chdir("a"));
  r.add(S::umount2("../a", MNT_DETACH));
  // The namespace no longer reaches it: the mount point is the covered
  // (empty) directory again ...
  r.add(S::stat((a + "/b").c_str(), &st));
  r.add(S::stat((a + "/d").c_str(), &st));
  // ... while the cwd still works inside the detached tree, where b is
  // the directory under the (also detached) mount that was on it.
  r.add(S::stat("b", &st));
  r.add(S::stat("b/g", &st));
  r.add(S::stat("d", &st));
  long nf = S::open("d/new", O_CREAT | O_RDWR, 0644);
  r.add_ok(nf);
  r.add(S::write(static_cast<int>(nf), "abc", 3));
  r.add(S::close(static_cast<int>(nf)));
  r.add_ok(S::openat(static_cast<int>(dfd), "new", O_RDONLY));
  r.add(has_entry<S>(static_cast<int>(dfd), "new"));
  r.add(S::fstat(static_cast<int>(dfd), &st));
  // ".." at the root of a detached mount is the root itself.
  r.add(S::stat(".", &st));
  r.add(S::stat("..", &st2));
  r.add(st.st_ino == st2.st_ino && st.st_dev == st2.st_dev);
  long n = S::getcwd(buf, sizeof buf);
  r.add(n);
  r.add(n > 0 && std::strcmp(buf, "(unreachable)/") == 0);
  r.add(S::chdir("d"));
  n = S::getcwd(buf, sizeof buf);
  r.add(n > 0 && std::strcmp(buf, "(unreachable)/d") == 0);
  r.add(S::chdir(".."));
  // It is no mount of the namespace any more: EINVAL; and no place to
  // mount on.
  r.add(S::umount2(".", 0));
  r.add(S::umount2(".", MNT_DETACH));
  r.add(S::mkdir("c", 0755));
  r.add(S::mount("c"));
  // The busy mount below still serves its open file.
  r.add(S::lseek(static_cast<int>(fd), 0, SEEK_SET));
  r.add(S::read(static_cast<int>(fd), buf, sizeof buf));
  r.add(S::write(static_cast<int>(fd), "more", 4));
  r.add(S::fstat(static_cast<int>(fd), &st));
  r.add(st.st_size);
  r.add(S::chdir(base.c_str()));
  r.add(S::close(static_cast<int>(dfd)));
  r.add(S::close(static_cast<int>(fd)));
  // The mount point can be mounted on again.
  r.add(S::mount(A));
  r.add(S::stat("a/b", &st));
  r.add(S::umount2(A, 0));
  return r;
}

// Runs seq on the host in a child with a private mount namespace (rooted
// at a fresh /tmp directory, the child's cwd).
template <class Seq>
Results on_host(Seq seq) {
  char tmpl[] = "/tmp/rumpvfs-mnt-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string base = tmpl;
  Results r = rump_test::host_child<Results>([&] {
    Results skip;
    skip.skipped = true;
    if (unshare(CLONE_NEWNS) != 0) return skip;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return skip;
    if (::chdir(base.c_str()) != 0) return skip;
    return seq(base);
  });
  // The namespace went with the child; what is left is the plain tree.
  for (const char* p : {"/a/c", "/a/b", "/a/d/new", "/a/d", "/a/f", "/a", "/sl"}) {
    std::string q = base + p;
    if (::unlink(q.c_str()) != 0) ::rmdir(q.c_str());
  }
  CHECK(::rmdir(tmpl) == 0);
  return r;
}

template <class Seq>
Results on_rump(Seq seq) {
  REQUIRE(rump_sys_mkdir("/w", 0755) == 0);
  REQUIRE(rump_sys_chdir("/w") == 0);
  Results r = seq(std::string("/w"));
  REQUIRE(rump_sys_chdir("/") == 0);
  return r;
}

void compare(const Results& rump, const Results& host, const std::vector<long>& linux_want) {
  REQUIRE(rump.n <= Results::kMax);
  std::vector<long> got(rump.v.begin(), rump.v.begin() + rump.n);
  if (host.skipped) {
    WARN("no private mount namespace on the host: compared with the recorded Linux results only");
  } else {
    std::vector<long> h(host.v.begin(), host.v.begin() + host.n);
    CHECK(got == h);
  }
  CHECK(got == linux_want);
}

}  // namespace

TEST_CASE("umount2: MNT_FORCE is EBUSY on a busy tmpfs, MNT_EXPIRE marks then unmounts, flags as Linux",
          "[vfs][mount]") {
  Results host = on_host(force_and_expire<HostSys>);
  KernelUp k;
  Results rump = on_rump(force_and_expire<RumpSys>);
  // What Linux 6.x answers (the host's, when it could run).
  std::vector<long> want = {0,      0,      -EINVAL, -EINVAL, -EINVAL, -ENOENT, -EINVAL, -EINVAL,
                            0,      -EBUSY, -EBUSY,  0,       -EAGAIN, 0,       -EAGAIN, 0,
                            0,      -ENOENT, -EINVAL, 0,      0,       0,       0,       0,
                            -EBUSY, -EBUSY, -EBUSY,  0,       0,       -EBUSY,  0,       0,
                            -EINVAL, 0,     -ENOENT};
  compare(rump, host, want);
}

TEST_CASE("umount2 MNT_DETACH: users keep working in the detached tree, the namespace no longer sees it",
          "[vfs][mount]") {
  Results host = on_host(lazy_unmount<HostSys>);
  KernelUp k;
  Results rump = on_rump(lazy_unmount<RumpSys>);
  std::vector<long> want = {0, 0, 0, 0, 0, 0, 2, 0, 0, 0, -ENOENT, -ENOENT, 0, -ENOENT, 0,
                            0, 3, 0, 0, 1, 0, 0, 0, 1, 15, 1, 0, 1, 0, -EINVAL, -EINVAL, 0, -ENOENT,
                            0, 2, 4, 0, 6, 0, 0, 0, 0, -ENOENT, 0};
  compare(rump, host, want);
}

TEST_CASE("MNT_DETACH: the tree is freed when its last user goes", "[vfs][mount]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/m", 0755) == 0);
  REQUIRE(rump_sys_mount("none", "/m", "tmpfs", 0, nullptr) == 0);
  REQUIRE(rump_sys_mkdir("/m/d", 0755) == 0);
  std::vector<char> data(1 << 20, 'q');
  int big = rump_sys_open("/m/d/big", O_CREAT | O_WRONLY, 0644);
  REQUIRE(big >= 0);
  REQUIRE(rump_sys_write(big, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  REQUIRE(rump_sys_close(big) == 0);
  int fd = rump_sys_open("/m/d", O_RDONLY | O_DIRECTORY, 0);
  REQUIRE(fd >= 0);
  size_t before = k.mem();
  REQUIRE(rump_sys_umount2("/m", MNT_DETACH) == 0);
  // Still there for the descriptor: the file's data has not gone.
  CHECK(k.mem() >= data.size());
  CHECK(k.mem() + 4096 >= before);
  int in = rump_sys_openat(fd, "big", O_RDONLY, 0);
  REQUIRE(in >= 0);
  char c = 0;
  CHECK(rump_sys_pread64(in, &c, 1, 12345) == 1);
  CHECK(c == 'q');
  REQUIRE(rump_sys_close(in) == 0);
  size_t still = k.mem();
  CHECK(still + 4096 >= before);
  // The last user goes: the whole tree (a megabyte of pages) with it.
  REQUIRE(rump_sys_close(fd) == 0);
  CHECK(k.mem() + data.size() <= still);
}

TEST_CASE("halting with a detached but busy mount frees everything", "[vfs][mount]") {
  rump_kernel* k = nullptr;
  REQUIRE(rump_kernel_boot(nullptr, &k) == 0);
  REQUIRE(rump_kernel_set_current(k) == 0);
  REQUIRE(rump_sys_mkdir("/m", 0755) == 0);
  REQUIRE(rump_sys_mount("x", "/m", "tmpfs", 0, nullptr) == 0);
  REQUIRE(rump_sys_mkdir("/m/sub", 0755) == 0);
  REQUIRE(rump_sys_mount("y", "/m/sub", "tmpfs", 0, nullptr) == 0);
  // init (the implicit LWPs) holds a file of the lower mount ...
  int ifd = rump_sys_open("/m/sub/g", O_CREAT | O_RDWR, 0644);
  REQUIRE(ifd >= 0);
  // ... and a process its cwd in the upper one and a file in the lower.
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  int fd = rump_sys_open("/m/sub/f", O_CREAT | O_RDWR, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(rump_sys_write(fd, "data", 4) == 4);
  REQUIRE(rump_sys_chdir("/m") == 0);
  REQUIRE(rump_sys_umount2("/m", MNT_DETACH) == 0);
  CHECK(rump_sys_mkdir("/m/x", 0755) == 0);  // the covered directory
  CHECK(rump_sys_mkdir("kept", 0755) == 0);  // inside the detached tree
  rump_lwproc_switch(nullptr);
  rump_kernel_set_current(nullptr);
  // Debug builds panic here if any of it leaked.
  CHECK(rump_kernel_halt(k) == 0);
}

namespace {

// umount2 by an unprivileged process: the flags are checked first, then
// the path, and only then the privilege.
template <class S>
Results unprivileged(const std::string& base) {
  Results r;
  std::string missing = base + "/nonexistent";
  r.add(S::umount2(missing.c_str(), 0));
  r.add(S::umount2(missing.c_str(), 0x100));
  r.add(S::umount2(missing.c_str(), MNT_EXPIRE | MNT_FORCE));
  r.add(S::umount2(base.c_str(), 0));
  r.add(S::umount2(base.c_str(), MNT_EXPIRE | MNT_DETACH));
  r.add(S::umount2("/", MNT_DETACH));
  r.add(S::mount(base.c_str()));
  return r;
}

}  // namespace

TEST_CASE("umount2 as an unprivileged user: EINVAL for flags, then the path's errors, then EPERM",
          "[vfs][mount]") {
  char tmpl[] = "/tmp/rumpvfs-mnt-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  REQUIRE(chmod(tmpl, 0755) == 0);  // searchable by the unprivileged user
  std::string base = tmpl;
  Results host = rump_test::host_child<Results>([&] {
    Results skip;
    skip.skipped = true;
    if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return skip;
    return unprivileged<HostSys>(base);
  });
  CHECK(rmdir(tmpl) == 0);
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/w", 0755) == 0);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  REQUIRE(rump_sys_setgid(65534) == 0);
  REQUIRE(rump_sys_setuid(65534) == 0);
  Results rump = unprivileged<RumpSys>("/w");
  rump_lwproc_releaselwp();
  std::vector<long> want = {-ENOENT, -EINVAL, -ENOENT, -EPERM, -EPERM, -EPERM, -EPERM};
  compare(rump, host, want);
}
