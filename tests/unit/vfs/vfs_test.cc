// The VFS faction and tmpfs through the public API: every test case boots
// its own kernel. Expectations are Linux's.
#include <dirent.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <linux/close_range.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <rump/rump_syscalls.h>

#include "rump_test.h"

using rump_test::KernelUp;

namespace {

// The raw getcwd system call: the length with its NUL, or -1 and errno
// (rump_sys_getcwd is libc's form, returning the buffer).
long getcwd_len(char* buf, size_t size) { return rump___sysimpl_getcwd(buf, size); }

struct Dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  uint16_t d_reclen;
  uint8_t d_type;
  char d_name[];
};

std::set<std::string> list_dir(const char* path) {
  std::set<std::string> out;
  int fd = rump_sys_open(path, O_RDONLY | O_DIRECTORY, 0);
  REQUIRE(fd >= 0);
  alignas(8) char buf[512];
  for (;;) {
    ssize_t n = rump_sys_getdents64(fd, buf, sizeof buf);
    REQUIRE(n >= 0);
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      auto* d = reinterpret_cast<Dirent64*>(buf + off);
      out.insert(d->d_name);
      off += d->d_reclen;
    }
  }
  rump_sys_close(fd);
  return out;
}

int make_file(const char* path, const char* data = "", mode_t mode = 0644) {
  int fd = rump_sys_open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
  REQUIRE(fd >= 0);
  size_t n = std::strlen(data);
  REQUIRE(rump_sys_write(fd, data, n) == static_cast<ssize_t>(n));
  rump_sys_close(fd);
  return 0;
}

struct stat stat_of(const char* path) {
  struct stat st {};
  REQUIRE(rump_sys_lstat(path, &st) == 0);
  return st;
}

// Becomes uid/gid 1000 in a fresh child process (descriptors copied).
void become_user(uid_t uid = 1000, gid_t gid = 1000) {
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  REQUIRE(rump_sys_setgid(gid) == 0);
  REQUIRE(rump_sys_setuid(uid) == 0);
}

}  // namespace

TEST_CASE("root is a tmpfs directory, cwd is /", "[vfs]") {
  KernelUp k;
  struct stat st = stat_of("/");
  CHECK(S_ISDIR(st.st_mode));
  CHECK(st.st_nlink == 4);  // 2 + two subdirectories: /dev and /proc
  struct statfs sf {};
  REQUIRE(rump_sys_statfs("/", &sf) == 0);
  CHECK(sf.f_type == 0x01021994);
  char buf[64];
  CHECK(getcwd_len(buf, sizeof buf) == 2);
  CHECK(std::string(buf) == "/");
  // Boot makes /dev (the device nodes) and /proc; nothing else.
  CHECK(list_dir("/") == std::set<std::string>{".", "..", "dev", "proc"});
}

TEST_CASE("create, write, read back, stat", "[vfs]") {
  KernelUp k;
  int fd = rump_sys_open("/f", O_CREAT | O_RDWR, 0666);
  REQUIRE(fd >= 0);
  CHECK(rump_sys_write(fd, "hello world", 11) == 11);
  CHECK(rump_sys_lseek(fd, 0, SEEK_SET) == 0);
  char buf[32] = {};
  CHECK(rump_sys_read(fd, buf, sizeof buf) == 11);
  CHECK(std::string(buf) == "hello world");
  CHECK(rump_sys_pread64(fd, buf, 5, 6) == 5);
  CHECK(std::string(buf, 5) == "world");
  struct stat st {};
  REQUIRE(rump_sys_fstat(fd, &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK((st.st_mode & 07777) == 0644);  // umask 022
  CHECK(st.st_size == 11);
  CHECK(st.st_nlink == 1);
  CHECK(st.st_blksize == 4096);
  CHECK(st.st_blocks == 8);
  struct stat st2 = stat_of("/f");
  CHECK(st2.st_ino == st.st_ino);
  CHECK(st2.st_dev == st.st_dev);
  CHECK(rump_sys_close(fd) == 0);
  CHECK_ERRNO(EBADF, rump_sys_close(fd));
  CHECK_ERRNO(EBADF, rump_sys_read(fd, buf, 1));
}

TEST_CASE("readv, writev, preadv, pwritev", "[vfs]") {
  KernelUp k;
  int fd = rump_sys_open("/v", O_CREAT | O_RDWR, 0644);
  REQUIRE(fd >= 0);
  char a[] = "abc", b[] = "defgh";
  iovec w[2] = {{a, 3}, {b, 5}};
  CHECK(rump_sys_writev(fd, w, 2) == 8);
  CHECK(rump_sys_pwritev(fd, w, 1, 8) == 3);
  char x[4] = {}, y[7] = {};
  iovec r[2] = {{x, 4}, {y, 7}};
  CHECK(rump_sys_preadv(fd, r, 2, 0) == 11);
  CHECK(std::string(x, 4) == "abcd");
  CHECK(std::string(y, 7) == "efghabc");
  CHECK(rump_sys_lseek(fd, 0, SEEK_CUR) == 8);
  CHECK(rump_sys_lseek(fd, 2, SEEK_SET) == 2);
  CHECK(rump_sys_readv(fd, r, 1) == 4);
  CHECK(std::string(x, 4) == "cdef");
  CHECK_ERRNO(EINVAL, rump_sys_readv(fd, r, -1));
  CHECK_ERRNO(EINVAL, rump_sys_readv(fd, r, 1025));
  CHECK_ERRNO(EFAULT, rump_sys_writev(fd, reinterpret_cast<iovec*>(8), 1));
  CHECK_ERRNO(EINVAL, rump_sys_pread64(fd, x, 1, -1));
  rump_sys_close(fd);
}

TEST_CASE("bad user pointers are EFAULT", "[vfs]") {
  KernelUp k;
  CHECK_ERRNO(EFAULT, rump_sys_open(reinterpret_cast<const char*>(16), O_RDONLY, 0));
  CHECK_ERRNO(EFAULT, rump_sys_stat("/", reinterpret_cast<struct stat*>(16)));
  int fd = rump_sys_open("/f", O_CREAT | O_RDWR, 0644);
  CHECK_ERRNO(EFAULT, rump_sys_write(fd, reinterpret_cast<void*>(16), 10));
  CHECK_ERRNO(EFAULT, rump_sys_mkdir(reinterpret_cast<const char*>(8), 0755));
}

TEST_CASE("name-space errors as Linux", "[vfs]") {
  KernelUp k;
  CHECK_ERRNO(ENOENT, rump_sys_open("/nope", O_RDONLY, 0));
  CHECK_ERRNO(ENOENT, rump_sys_open("", O_RDONLY, 0));
  CHECK_ERRNO(ENOENT, rump_sys_mkdir("/a/b", 0755));
  make_file("/file");
  CHECK_ERRNO(ENOTDIR, rump_sys_open("/file/x", O_RDONLY, 0));
  CHECK_ERRNO(ENOTDIR, rump_sys_mkdir("/file/x", 0755));
  CHECK_ERRNO(ENOTDIR, rump_sys_open("/file/", O_RDONLY, 0));
  CHECK_ERRNO(ENOTDIR, rump_sys_open("/file", O_RDONLY | O_DIRECTORY, 0));
  CHECK_ERRNO(EEXIST, rump_sys_mkdir("/file", 0755));
  CHECK_ERRNO(EEXIST, rump_sys_open("/file", O_CREAT | O_EXCL | O_WRONLY, 0644));
  REQUIRE(rump_sys_mkdir("/d", 0755) == 0);
  CHECK_ERRNO(EEXIST, rump_sys_mkdir("/d/", 0755));
  CHECK_ERRNO(EISDIR, rump_sys_open("/d", O_WRONLY, 0));
  CHECK_ERRNO(EISDIR, rump_sys_open("/d", O_CREAT | O_WRONLY, 0644));
  CHECK_ERRNO(EISDIR, rump_sys_unlink("/d"));
  CHECK_ERRNO(ENOTDIR, rump_sys_rmdir("/file"));
  CHECK_ERRNO(ENOTDIR, rump_sys_unlink("/file/"));
  CHECK_ERRNO(EISDIR, rump_sys_open("/new/", O_CREAT | O_WRONLY, 0644));
  make_file("/d/x");
  CHECK_ERRNO(ENOTEMPTY, rump_sys_rmdir("/d"));
  CHECK_ERRNO(EINVAL, rump_sys_rmdir("/d/."));
  CHECK_ERRNO(ENOTEMPTY, rump_sys_rmdir("/d/.."));
  CHECK_ERRNO(EBUSY, rump_sys_rmdir("/"));
  CHECK_ERRNO(ENOENT, rump_sys_unlink("/d/y"));
  CHECK(rump_sys_unlink("/d/x") == 0);
  CHECK(rump_sys_rmdir("/d/") == 0);
  CHECK_ERRNO(ENOENT, rump_sys_rmdir("/d"));
  int fd = rump_sys_open("/file", O_RDONLY, 0);
  char c;
  CHECK_ERRNO(EBADF, rump_sys_write(fd, "x", 1));
  int dfd = rump_sys_open("/", O_RDONLY, 0);
  CHECK_ERRNO(EISDIR, rump_sys_read(dfd, &c, 1));
  CHECK_ERRNO(EINVAL, rump_sys_open("/file", O_RDWR | O_WRONLY | O_RDONLY | 3, 0));
}

TEST_CASE("ENAMETOOLONG for long components and paths", "[vfs]") {
  KernelUp k;
  std::string comp(256, 'a');
  CHECK_ERRNO(ENAMETOOLONG, rump_sys_mkdir(("/" + comp).c_str(), 0755));
  CHECK(rump_sys_mkdir(("/" + comp.substr(0, 255)).c_str(), 0755) == 0);
  std::string path;
  while (path.size() < 4096) path += "/x";
  CHECK_ERRNO(ENAMETOOLONG, rump_sys_open(path.c_str(), O_RDONLY, 0));
  // 4095 bytes plus the NUL fits: then it is just absent.
  std::string p2 = "/" + std::string(4094, '/');
  CHECK(rump_sys_access(p2.c_str(), F_OK) == 0);
}

TEST_CASE("dot, dot-dot, relative paths and chdir", "[vfs]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/a", 0755) == 0);
  REQUIRE(rump_sys_mkdir("/a/b", 0755) == 0);
  CHECK(rump_sys_chdir("/a/b") == 0);
  make_file("f");
  CHECK(rump_sys_access("/a/b/f", F_OK) == 0);
  CHECK(rump_sys_access("../b/./f", F_OK) == 0);
  CHECK(rump_sys_access("/../../a/b/f", F_OK) == 0);
  char buf[64];
  CHECK(getcwd_len(buf, sizeof buf) == 5);
  CHECK(std::string(buf) == "/a/b");
  CHECK_ERRNO(ERANGE, getcwd_len(buf, 3));
  CHECK(rump_sys_chdir("..") == 0);
  CHECK(getcwd_len(buf, sizeof buf) == 3);
  CHECK_ERRNO(ENOTDIR, rump_sys_chdir("/a/b/f"));
  int fd = rump_sys_open("/a/b", O_RDONLY | O_DIRECTORY, 0);
  CHECK(rump_sys_fchdir(fd) == 0);
  CHECK(rump_sys_access("f", F_OK) == 0);
  // *at calls
  CHECK(rump_sys_mkdirat(fd, "sub", 0700) == 0);
  struct stat st {};
  CHECK(rump_sys_newfstatat(fd, "sub", &st, 0) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK(rump_sys_newfstatat(fd, "", &st, AT_EMPTY_PATH) == 0);
  CHECK(st.st_nlink == 3);
  CHECK_ERRNO(ENOENT, rump_sys_newfstatat(fd, "", &st, 0));
  int ffd = rump_sys_open("/a/b/f", O_RDONLY, 0);
  CHECK_ERRNO(ENOTDIR, rump_sys_newfstatat(ffd, "x", &st, 0));
  CHECK_ERRNO(EBADF, rump_sys_newfstatat(99, "x", &st, 0));
  CHECK(rump_sys_unlinkat(fd, "sub", AT_REMOVEDIR) == 0);
  CHECK_ERRNO(EISDIR, rump_sys_unlinkat(AT_FDCWD, "/a/b", 0));
  CHECK_ERRNO(EINVAL, rump_sys_unlinkat(AT_FDCWD, "/a/b", 0x4));
}

TEST_CASE("symlinks: follow, nofollow, ELOOP, readlink", "[vfs]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/d", 0755) == 0);
  make_file("/d/f", "data");
  CHECK(rump_sys_symlink("/d/f", "/abs") == 0);
  CHECK(rump_sys_symlink("d/f", "/rel") == 0);
  CHECK(rump_sys_symlink("d", "/dl") == 0);
  CHECK(rump_sys_symlink("nowhere", "/dangling") == 0);
  CHECK(rump_sys_symlink("loop2", "/loop1") == 0);
  CHECK(rump_sys_symlink("loop1", "/loop2") == 0);
  char buf[64] = {};
  int fd = rump_sys_open("/abs", O_RDONLY, 0);
  REQUIRE(fd >= 0);
  CHECK(rump_sys_read(fd, buf, sizeof buf) == 4);
  rump_sys_close(fd);
  CHECK(rump_sys_access("/rel", F_OK) == 0);
  CHECK(rump_sys_access("/dl/f", F_OK) == 0);
  CHECK(rump_sys_access("/dl/", F_OK) == 0);
  CHECK_ERRNO(ENOENT, rump_sys_access("/dangling", F_OK));
  CHECK_ERRNO(ELOOP, rump_sys_access("/loop1", F_OK));
  CHECK_ERRNO(ELOOP, rump_sys_open("/abs", O_RDONLY | O_NOFOLLOW, 0));
  CHECK(rump_sys_open("/abs", O_PATH | O_NOFOLLOW, 0) >= 0);
  struct stat st = stat_of("/abs");
  CHECK(S_ISLNK(st.st_mode));
  CHECK(st.st_size == 4);
  CHECK((st.st_mode & 0777) == 0777);
  CHECK(rump_sys_readlink("/rel", buf, sizeof buf) == 3);
  CHECK(std::string(buf, 3) == "d/f");
  CHECK(rump_sys_readlink("/rel", buf, 2) == 2);
  CHECK_ERRNO(EINVAL, rump_sys_readlink("/d/f", buf, sizeof buf));
  CHECK_ERRNO(EEXIST, rump_sys_symlink("x", "/abs"));
  CHECK_ERRNO(ENOENT, rump_sys_symlink("", "/empty"));
  // A chain of 40 links resolves; 41 is ELOOP.
  CHECK(rump_sys_symlink("/d/f", "/c0") == 0);
  for (int i = 1; i <= 41; i++) {
    std::string from = "/c" + std::to_string(i - 1), to = "/c" + std::to_string(i);
    REQUIRE(rump_sys_symlink(from.c_str(), to.c_str()) == 0);
  }
  CHECK(rump_sys_access("/c39", F_OK) == 0);
  CHECK_ERRNO(ELOOP, rump_sys_access("/c41", F_OK));
  // unlink removes the link, not the target
  CHECK(rump_sys_unlink("/abs") == 0);
  CHECK(rump_sys_access("/d/f", F_OK) == 0);
  // O_CREAT|O_EXCL on a symlink: EEXIST even if dangling
  CHECK_ERRNO(EEXIST, rump_sys_open("/dangling", O_CREAT | O_EXCL | O_WRONLY, 0644));
}

TEST_CASE("link counts and hard links", "[vfs]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/d", 0755) == 0);
  CHECK(stat_of("/d").st_nlink == 2);
  CHECK(stat_of("/").st_nlink == 5);  // /dev, /proc and /d
  REQUIRE(rump_sys_mkdir("/d/s1", 0755) == 0);
  REQUIRE(rump_sys_mkdir("/d/s2", 0755) == 0);
  CHECK(stat_of("/d").st_nlink == 4);
  CHECK(rump_sys_rmdir("/d/s2") == 0);
  CHECK(stat_of("/d").st_nlink == 3);
  make_file("/d/f", "x");
  CHECK(rump_sys_link("/d/f", "/g") == 0);
  CHECK(stat_of("/d/f").st_nlink == 2);
  CHECK(stat_of("/g").st_ino == stat_of("/d/f").st_ino);
  CHECK_ERRNO(EEXIST, rump_sys_link("/d/f", "/g"));
  CHECK_ERRNO(EPERM, rump_sys_link("/d", "/dd"));
  CHECK_ERRNO(ENOENT, rump_sys_link("/nope", "/dd"));
  int fd = rump_sys_open("/g", O_RDONLY, 0);
  CHECK(rump_sys_unlink("/d/f") == 0);
  CHECK(rump_sys_unlink("/g") == 0);
  struct stat st {};
  CHECK(rump_sys_fstat(fd, &st) == 0);
  CHECK(st.st_nlink == 0);
  char c;
  CHECK(rump_sys_read(fd, &c, 1) == 1);  // still readable while open
  rump_sys_close(fd);
  // rename of a directory to another parent moves a link
  REQUIRE(rump_sys_mkdir("/e", 0755) == 0);
  CHECK(rump_sys_rename("/d/s1", "/e/s1") == 0);
  CHECK(stat_of("/d").st_nlink == 2);
  CHECK(stat_of("/e").st_nlink == 3);
}

TEST_CASE("rename rules and renameat2 flags", "[vfs]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/d", 0755) == 0);
  REQUIRE(rump_sys_mkdir("/d/sub", 0755) == 0);
  REQUIRE(rump_sys_mkdir("/e", 0755) == 0);
  make_file("/a", "A");
  make_file("/b", "B");
  CHECK(rump_sys_rename("/a", "/c") == 0);
  CHECK_ERRNO(ENOENT, rump_sys_access("/a", F_OK));
  CHECK(rump_sys_rename("/c", "/b") == 0);  // replaces
  char buf[4] = {};
  int fd = rump_sys_open("/b", O_RDONLY, 0);
  CHECK(rump_sys_read(fd, buf, 4) == 1);
  CHECK(buf[0] == 'A');
  rump_sys_close(fd);
  CHECK_ERRNO(EISDIR, rump_sys_rename("/b", "/d"));
  CHECK_ERRNO(ENOTDIR, rump_sys_rename("/d", "/b"));
  CHECK_ERRNO(EINVAL, rump_sys_rename("/d", "/d/sub/x"));
  CHECK_ERRNO(ENOTEMPTY, rump_sys_rename("/e", "/d"));
  CHECK(rump_sys_rename("/d/sub", "/e/sub") == 0);
  CHECK_ERRNO(ENOENT, rump_sys_rename("/nope", "/x"));
  CHECK_ERRNO(ENOTDIR, rump_sys_rename("/b/", "/x"));
  CHECK_ERRNO(EBUSY, rump_sys_rename("/d/.", "/x"));
  make_file("/c", "C");
  CHECK_ERRNO(EEXIST, rump_sys_renameat2(AT_FDCWD, "/b", AT_FDCWD, "/c", RENAME_NOREPLACE));
  CHECK(rump_sys_renameat2(AT_FDCWD, "/b", AT_FDCWD, "/c", RENAME_EXCHANGE) == 0);
  fd = rump_sys_open("/c", O_RDONLY, 0);
  CHECK(rump_sys_read(fd, buf, 4) == 1);
  CHECK(buf[0] == 'A');
  rump_sys_close(fd);
  CHECK(rump_sys_renameat2(AT_FDCWD, "/e", AT_FDCWD, "/c", RENAME_EXCHANGE) == 0);
  CHECK(S_ISDIR(stat_of("/c").st_mode));
  CHECK(S_ISREG(stat_of("/e").st_mode));
  CHECK_ERRNO(ENOENT, rump_sys_renameat2(AT_FDCWD, "/e", AT_FDCWD, "/zz", RENAME_EXCHANGE));
  CHECK_ERRNO(EINVAL, rump_sys_renameat2(AT_FDCWD, "/e", AT_FDCWD, "/zz", RENAME_EXCHANGE | RENAME_NOREPLACE));
  // renaming a hard link onto its twin is a no-op
  CHECK(rump_sys_link("/e", "/e2") == 0);
  CHECK(rump_sys_rename("/e", "/e2") == 0);
  CHECK(rump_sys_access("/e", F_OK) == 0);
}

TEST_CASE("descriptors: dup, dup2, dup3, fcntl, cloexec, shared offsets", "[vfs]") {
  KernelUp k;
  int fd = rump_sys_open("/f", O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  CHECK(rump_sys_fcntl(fd, F_GETFD, 0) == FD_CLOEXEC);
  int d = rump_sys_dup(fd);
  CHECK(d == fd + 1);
  CHECK(rump_sys_fcntl(d, F_GETFD, 0) == 0);
  CHECK(rump_sys_write(fd, "abcdef", 6) == 6);
  CHECK(rump_sys_lseek(d, 0, SEEK_CUR) == 6);  // one description
  CHECK(rump_sys_dup2(fd, 10) == 10);
  CHECK(rump_sys_dup2(10, 10) == 10);
  CHECK_ERRNO(EBADF, rump_sys_dup2(50, 51));
  CHECK_ERRNO(EINVAL, rump_sys_dup3(10, 10, 0));
  CHECK_ERRNO(EINVAL, rump_sys_dup3(10, 11, 1));
  CHECK(rump_sys_dup3(10, 11, O_CLOEXEC) == 11);
  CHECK(rump_sys_fcntl(11, F_GETFD, 0) == FD_CLOEXEC);
  CHECK(rump_sys_fcntl(fd, F_DUPFD, 20) == 20);
  CHECK(rump_sys_fcntl(fd, F_DUPFD_CLOEXEC, 20) == 21);
  CHECK(rump_sys_fcntl(21, F_GETFD, 0) == FD_CLOEXEC);
  CHECK(rump_sys_fcntl(21, F_SETFD, 0) == 0);
  CHECK(rump_sys_fcntl(21, F_GETFD, 0) == 0);
  CHECK(rump_sys_ioctl(21, FIOCLEX, nullptr) == 0);
  CHECK(rump_sys_fcntl(21, F_GETFD, 0) == FD_CLOEXEC);
  CHECK(rump_sys_ioctl(21, FIONCLEX, nullptr) == 0);
  CHECK(rump_sys_fcntl(21, F_GETFD, 0) == 0);
  int fl = rump_sys_fcntl(fd, F_GETFL, 0);
  CHECK((fl & O_ACCMODE) == O_RDWR);
  CHECK(rump_sys_fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK | O_RDONLY) == 0);
  fl = rump_sys_fcntl(d, F_GETFL, 0);
  CHECK((fl & O_ACCMODE) == O_RDWR);  // access mode unchangeable
  CHECK((fl & O_APPEND));
  CHECK((fl & O_NONBLOCK));
  int on = 0;
  CHECK(rump_sys_ioctl(fd, FIONBIO, &on) == 0);
  CHECK(!(rump_sys_fcntl(fd, F_GETFL, 0) & O_NONBLOCK));
  CHECK_ERRNO(EINVAL, rump_sys_fcntl(fd, 9999, 0));
  CHECK_ERRNO(EBADF, rump_sys_fcntl(99, F_GETFD, 0));
  CHECK_ERRNO(ENOTTY, rump_sys_ioctl(fd, 0x5401 /* TCGETS */, nullptr));
  CHECK(rump_sys_lseek(fd, 2, SEEK_SET) == 2);
  int n = -1;
  CHECK(rump_sys_ioctl(fd, FIONREAD, &n) == 0);
  CHECK(n == 4);
  // close_range
  CHECK(rump_sys_close_range(20, 21, 0) == 0);
  CHECK_ERRNO(EBADF, rump_sys_fcntl(20, F_GETFD, 0));
  CHECK(rump_sys_close_range(10, ~0u, CLOSE_RANGE_CLOEXEC) == 0);
  CHECK(rump_sys_fcntl(10, F_GETFD, 0) == FD_CLOEXEC);
  CHECK_ERRNO(EINVAL, rump_sys_close_range(5, 4, 0));
  CHECK(rump_sys_close_range(10, ~0u, 0) == 0);
  CHECK_ERRNO(EBADF, rump_sys_close(11));
}

TEST_CASE("O_APPEND, O_TRUNC, lseek whence, SEEK_DATA/HOLE", "[vfs]") {
  KernelUp k;
  make_file("/f", "12345");
  int fd = rump_sys_open("/f", O_WRONLY | O_APPEND, 0);
  CHECK(rump_sys_lseek(fd, 0, SEEK_SET) == 0);
  CHECK(rump_sys_write(fd, "67", 2) == 2);
  CHECK(rump_sys_lseek(fd, 0, SEEK_CUR) == 7);
  CHECK(stat_of("/f").st_size == 7);
  CHECK(rump_sys_lseek(fd, -2, SEEK_END) == 5);
  CHECK_ERRNO(EINVAL, rump_sys_lseek(fd, -10, SEEK_CUR));
  CHECK_ERRNO(EINVAL, rump_sys_lseek(fd, 0, 99));
  CHECK(rump_sys_lseek(fd, 100, SEEK_SET) == 100);  // past the end is fine
  rump_sys_close(fd);
  fd = rump_sys_open("/f", O_RDWR | O_TRUNC, 0);
  CHECK(stat_of("/f").st_size == 0);
  // A sparse file: data at 0 and at 1 MiB.
  CHECK(rump_sys_pwrite64(fd, "x", 1, 0) == 1);
  CHECK(rump_sys_pwrite64(fd, "y", 1, 1 << 20) == 1);
  CHECK(rump_sys_lseek(fd, 0, SEEK_DATA) == 0);
  CHECK(rump_sys_lseek(fd, 0, SEEK_HOLE) == 4096);
  CHECK(rump_sys_lseek(fd, 4096, SEEK_DATA) == 1 << 20);
  CHECK(rump_sys_lseek(fd, 1 << 20, SEEK_HOLE) == (1 << 20) + 1);
  CHECK_ERRNO(ENXIO, rump_sys_lseek(fd, (1 << 20) + 1, SEEK_DATA));
  CHECK_ERRNO(ENXIO, rump_sys_lseek(fd, 2 << 20, SEEK_HOLE));
  rump_sys_close(fd);
}

TEST_CASE("sparse files: holes read as zeros, st_blocks counts pages", "[vfs]") {
  KernelUp k;
  int fd = rump_sys_open("/s", O_CREAT | O_RDWR, 0644);
  CHECK(rump_sys_ftruncate(fd, 10 << 20) == 0);
  struct stat st {};
  rump_sys_fstat(fd, &st);
  CHECK(st.st_size == 10 << 20);
  CHECK(st.st_blocks == 0);
  CHECK(rump_sys_pwrite64(fd, "abc", 3, 5 << 20) == 3);
  rump_sys_fstat(fd, &st);
  CHECK(st.st_blocks == 8);
  std::vector<char> buf(8192, 'q');
  CHECK(rump_sys_pread64(fd, buf.data(), buf.size(), (5 << 20) - 4096) == 8192);
  CHECK(buf[0] == 0);
  CHECK(buf[4095] == 0);
  CHECK(std::string(&buf[4096], 3) == "abc");
  CHECK(buf[4099] == 0);
  // fallocate: allocate, keep size, punch
  CHECK(rump_sys_fallocate(fd, 0, 0, 16384) == 0);
  rump_sys_fstat(fd, &st);
  CHECK(st.st_blocks == 40);
  CHECK(rump_sys_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 8192) == 0);
  rump_sys_fstat(fd, &st);
  CHECK(st.st_blocks == 24);
  CHECK(st.st_size == 10 << 20);
  CHECK(rump_sys_fallocate(fd, FALLOC_FL_KEEP_SIZE, 20 << 20, 4096) == 0);
  rump_sys_fstat(fd, &st);
  CHECK(st.st_size == 10 << 20);
  CHECK(st.st_blocks == 32);
  CHECK_ERRNO(EOPNOTSUPP, rump_sys_fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 1));
  CHECK_ERRNO(EINVAL, rump_sys_fallocate(fd, 0, 0, 0));
  // truncate down frees pages and zeroes the tail
  CHECK(rump_sys_ftruncate(fd, (5 << 20) + 1) == 0);
  char c3[3];
  CHECK(rump_sys_pread64(fd, c3, 3, 5 << 20) == 1);
  CHECK(rump_sys_ftruncate(fd, 100 << 20) == 0);
  CHECK(rump_sys_pread64(fd, c3, 3, 5 << 20) == 3);
  CHECK(c3[0] == 'a');
  CHECK(c3[1] == 0);
  CHECK_ERRNO(EINVAL, rump_sys_ftruncate(fd, -1));
  int ro = rump_sys_open("/s", O_RDONLY, 0);
  CHECK_ERRNO(EINVAL, rump_sys_ftruncate(ro, 0));
  CHECK_ERRNO(EBADF, rump_sys_fallocate(ro, 0, 0, 1));
  CHECK(rump_sys_truncate("/s", 0) == 0);
  CHECK(stat_of("/s").st_blocks == 0);
  CHECK_ERRNO(EISDIR, rump_sys_truncate("/", 0));
}

TEST_CASE("large reads and writes cross the chunk size", "[vfs]") {
  KernelUp k;
  std::vector<char> data(300000);
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 7);
  int fd = rump_sys_open("/big", O_CREAT | O_RDWR, 0644);
  CHECK(rump_sys_write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  std::vector<char> back(data.size() + 100);
  CHECK(rump_sys_pread64(fd, back.data(), back.size(), 0) == static_cast<ssize_t>(data.size()));
  CHECK(std::memcmp(back.data(), data.data(), data.size()) == 0);
  // sendfile and copy_file_range
  int out = rump_sys_open("/copy", O_CREAT | O_RDWR, 0644);
  off_t off = 1000;
  CHECK(rump_sys_sendfile(out, fd, &off, 200000) == 200000);
  CHECK(off == 201000);
  CHECK(rump_sys_pread64(out, back.data(), 200000, 0) == 200000);
  CHECK(std::memcmp(back.data(), data.data() + 1000, 200000) == 0);
  off_t in_off = 0, out_off = 0;
  int out2 = rump_sys_open("/copy2", O_CREAT | O_RDWR, 0644);
  CHECK(rump_sys_copy_file_range(fd, &in_off, out2, &out_off, data.size(), 0) == static_cast<ssize_t>(data.size()));
  CHECK(stat_of("/copy2").st_size == static_cast<off_t>(data.size()));
  CHECK_ERRNO(EINVAL, rump_sys_copy_file_range(fd, &in_off, out2, &out_off, 10, 1));
  in_off = 0;
  out_off = 10;
  CHECK_ERRNO(EINVAL, rump_sys_copy_file_range(fd, &in_off, fd, &out_off, 100, 0));
}

TEST_CASE("rfork descriptor semantics", "[vfs]") {
  KernelUp k;
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);  // a parent process
  struct lwp* parent = rump_lwproc_curlwp();
  int fd = rump_sys_open("/f", O_CREAT | O_RDWR, 0644);
  REQUIRE(fd >= 0);
  CHECK(rump_sys_write(fd, "0123456789", 10) == 10);

  SECTION("RFFDG copies the table, offsets stay shared") {
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    CHECK(rump_sys_lseek(fd, 3, SEEK_SET) == 3);
    CHECK(rump_sys_close(fd) == 0);
    rump_lwproc_releaselwp();
    rump_lwproc_switch(parent);
    CHECK(rump_sys_lseek(fd, 0, SEEK_CUR) == 3);  // same description
  }
  SECTION("RFCFDG starts empty") {
    REQUIRE(rump_lwproc_rfork(RUMP_RFCFDG) == 0);
    CHECK_ERRNO(EBADF, rump_sys_lseek(fd, 0, SEEK_CUR));
    int n = rump_sys_open("/f", O_RDONLY, 0);
    CHECK(n == 0);
    rump_lwproc_releaselwp();
    rump_lwproc_switch(parent);
    CHECK(rump_sys_lseek(fd, 0, SEEK_CUR) == 10);
  }
  SECTION("no flag shares the table") {
    REQUIRE(rump_lwproc_rfork(0) == 0);
    CHECK(rump_sys_close(fd) == 0);
    CHECK_ERRNO(EBADF, rump_sys_lseek(fd, 0, SEEK_CUR));
    struct lwp* child = rump_lwproc_curlwp();
    rump_lwproc_switch(parent);
    CHECK_ERRNO(EBADF, rump_sys_lseek(fd, 0, SEEK_CUR));  // the child's close
    rump_lwproc_switch(child);
    int n = rump_sys_open("/f", O_RDONLY, 0);
    CHECK(n == fd);
    rump_lwproc_switch(parent);
    CHECK(rump_sys_lseek(n, 0, SEEK_CUR) == 0);  // the child's new description
    rump_lwproc_switch(child);
    rump_lwproc_releaselwp();
    rump_lwproc_switch(parent);
  }
  SECTION("cwd is inherited, then independent") {
    REQUIRE(rump_sys_mkdir("/d", 0755) == 0);
    REQUIRE(rump_sys_chdir("/d") == 0);
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    char buf[16];
    CHECK(getcwd_len(buf, sizeof buf) == 3);
    CHECK(rump_sys_chdir("/") == 0);
    rump_lwproc_releaselwp();
    rump_lwproc_switch(parent);
    CHECK(getcwd_len(buf, sizeof buf) == 3);
  }
  rump_lwproc_switch(parent);
  rump_lwproc_releaselwp();
}

TEST_CASE("RLIMIT_NOFILE gives EMFILE", "[vfs]") {
  KernelUp k;
  REQUIRE(rump_lwproc_rfork(RUMP_RFCFDG) == 0);
  struct rlimit rl = {8, 8};
  REQUIRE(rump_sys_setrlimit(RLIMIT_NOFILE, &rl) == 0);
  for (int i = 0; i < 8; i++) CHECK(rump_sys_open("/", O_RDONLY, 0) == i);
  CHECK_ERRNO(EMFILE, rump_sys_open("/", O_RDONLY, 0));
  CHECK_ERRNO(EMFILE, rump_sys_dup(0));
  CHECK_ERRNO(EINVAL, rump_sys_fcntl(0, F_DUPFD, 8));
  CHECK_ERRNO(EBADF, rump_sys_dup2(0, 8));
  rump_lwproc_releaselwp();
}

TEST_CASE("permissions as an unprivileged user", "[vfs]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/priv", 0700) == 0);
  make_file("/priv/f", "x");
  make_file("/ro", "x", 0644);
  REQUIRE(rump_sys_chmod("/ro", 0644) == 0);
  REQUIRE(rump_sys_mkdir("/pub", 0777) == 0);
  REQUIRE(rump_sys_chmod("/pub", 0777) == 0);
  make_file("/noexec", "x", 0644);
  become_user();
  CHECK_ERRNO(EACCES, rump_sys_open("/priv/f", O_RDONLY, 0));
  CHECK_ERRNO(EACCES, rump_sys_access("/priv/f", F_OK));
  CHECK_ERRNO(EACCES, rump_sys_chdir("/priv"));
  CHECK_ERRNO(EACCES, rump_sys_open("/priv", O_RDONLY, 0));
  CHECK_ERRNO(EACCES, rump_sys_open("/ro", O_WRONLY, 0));
  CHECK_ERRNO(EACCES, rump_sys_access("/ro", W_OK));
  CHECK(rump_sys_access("/ro", R_OK) == 0);
  CHECK_ERRNO(EACCES, rump_sys_mkdir("/x", 0755));
  CHECK_ERRNO(EACCES, rump_sys_unlink("/ro"));
  CHECK_ERRNO(EPERM, rump_sys_chmod("/ro", 0777));
  CHECK_ERRNO(EPERM, rump_sys_chown("/ro", 1000, 1000));
  CHECK_ERRNO(EPERM, rump_sys_mknod("/pub/dev", S_IFCHR | 0600, makedev(1, 3)));
  CHECK_ERRNO(EPERM, rump_sys_chroot("/pub"));
  CHECK_ERRNO(EPERM, rump_sys_mount("none", "/pub", "tmpfs", 0, nullptr));
  int fd = rump_sys_open("/pub/mine", O_CREAT | O_WRONLY, 0600);
  REQUIRE(fd >= 0);
  struct stat st = stat_of("/pub/mine");
  CHECK(st.st_uid == 1000);
  CHECK(st.st_gid == 1000);
  CHECK(rump_sys_fchmod(fd, 0640) == 0);
  CHECK(rump_sys_chown("/pub/mine", static_cast<uid_t>(-1), 1000) == 0);
  CHECK_ERRNO(EPERM, rump_sys_chown("/pub/mine", static_cast<uid_t>(-1), 0));
  CHECK_ERRNO(EACCES, rump_sys_access("/noexec", X_OK));
  // utimensat: explicit times need ownership
  struct timespec ts[2] = {{1, 0}, {2, 0}};
  CHECK_ERRNO(EPERM, rump_sys_utimensat(AT_FDCWD, "/ro", ts, 0));
  CHECK_ERRNO(EACCES, rump_sys_utimensat(AT_FDCWD, "/ro", nullptr, 0));
  CHECK(rump_sys_utimensat(AT_FDCWD, "/pub/mine", ts, 0) == 0);
  CHECK(stat_of("/pub/mine").st_mtime == 2);
  rump_lwproc_releaselwp();
  // root bypasses read/write checks but needs an x bit to execute
  CHECK(rump_sys_access("/priv/f", R_OK | W_OK) == 0);
  CHECK_ERRNO(EACCES, rump_sys_access("/noexec", X_OK));
  REQUIRE(rump_sys_chmod("/noexec", 0001) == 0);
  CHECK(rump_sys_access("/noexec", X_OK) == 0);
}

TEST_CASE("sticky directories", "[vfs]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/tmp", 01777) == 0);
  REQUIRE(rump_sys_chmod("/tmp", 01777) == 0);
  make_file("/tmp/roots", "x", 0666);
  become_user(1000, 1000);
  make_file("/tmp/a", "x", 0666);
  CHECK_ERRNO(EPERM, rump_sys_unlink("/tmp/roots"));
  CHECK_ERRNO(EPERM, rump_sys_rename("/tmp/roots", "/tmp/r2"));
  rump_lwproc_releaselwp();
  become_user(1001, 1001);
  CHECK_ERRNO(EPERM, rump_sys_unlink("/tmp/a"));
  make_file("/tmp/b", "x", 0666);
  CHECK(rump_sys_unlink("/tmp/b") == 0);
  rump_lwproc_releaselwp();
  CHECK(rump_sys_unlink("/tmp/a") == 0);  // root may
}

TEST_CASE("setgid directories and umask", "[vfs]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/g", 0777) == 0);
  REQUIRE(rump_sys_chown("/g", 0, 500) == 0);
  REQUIRE(rump_sys_chmod("/g", 02777) == 0);
  make_file("/g/f");
  CHECK(stat_of("/g/f").st_gid == 500);
  REQUIRE(rump_sys_mkdir("/g/sub", 0755) == 0);
  struct stat st = stat_of("/g/sub");
  CHECK(st.st_gid == 500);
  CHECK((st.st_mode & S_ISGID));
  CHECK(rump_sys_umask(077) == 022);
  make_file("/u", "", 0666);
  CHECK((stat_of("/u").st_mode & 0777) == 0600);
  REQUIRE(rump_sys_mkdir("/ud", 0777) == 0);
  CHECK((stat_of("/ud").st_mode & 0777) == 0700);
  // non-members lose S_ISGID on chmod
  become_user(1000, 1000);
  make_file("/g/mine");
  CHECK(rump_sys_chmod("/g/mine", 02755) == 0);
  CHECK(!(stat_of("/g/mine").st_mode & S_ISGID));
  rump_lwproc_releaselwp();
}

TEST_CASE("times follow POSIX", "[vfs]") {
  KernelUp k;
  make_file("/f", "abc");
  struct timespec old[2] = {{1000, 0}, {2000, 0}};
  REQUIRE(rump_sys_utimensat(AT_FDCWD, "/f", old, 0) == 0);
  struct stat st = stat_of("/f");
  CHECK(st.st_atime == 1000);
  CHECK(st.st_mtime == 2000);
  time_t ct = st.st_ctime;
  CHECK(ct > 2000);
  // read updates atime (relatime: atime <= mtime)
  int fd = rump_sys_open("/f", O_RDWR, 0);
  char c;
  REQUIRE(rump_sys_read(fd, &c, 1) == 1);
  CHECK(stat_of("/f").st_atime > 2000);
  // write updates mtime and ctime
  REQUIRE(rump_sys_utimensat(AT_FDCWD, "/f", old, 0) == 0);
  REQUIRE(rump_sys_write(fd, "x", 1) == 1);
  st = stat_of("/f");
  CHECK(st.st_mtime > 2000);
  // UTIME_OMIT keeps, UTIME_NOW sets now
  struct timespec t2[2] = {{5, UTIME_OMIT}, {7, 0}};
  REQUIRE(rump_sys_utimensat(AT_FDCWD, "/f", t2, 0) == 0);
  st = stat_of("/f");
  CHECK(st.st_mtime == 7);
  CHECK(st.st_atime == 1000);
  struct timespec bad[2] = {{5, 1000000000}, {7, 0}};
  CHECK_ERRNO(EINVAL, rump_sys_utimensat(AT_FDCWD, "/f", bad, 0));
  // directory mtime changes with its entries
  REQUIRE(rump_sys_mkdir("/d", 0755) == 0);
  REQUIRE(rump_sys_utimensat(AT_FDCWD, "/d", old, 0) == 0);
  make_file("/d/x");
  CHECK(stat_of("/d").st_mtime > 2000);
  // chmod changes ctime only
  REQUIRE(rump_sys_utimensat(AT_FDCWD, "/f", old, 0) == 0);
  REQUIRE(rump_sys_chmod("/f", 0600) == 0);
  st = stat_of("/f");
  CHECK(st.st_mtime == 2000);
  struct statx sx {};
  REQUIRE(rump_sys_statx(AT_FDCWD, "/f", 0, STATX_ALL, &sx) == 0);
  CHECK(sx.stx_mtime.tv_sec == 2000);
  CHECK((sx.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS);
  CHECK(sx.stx_size == 3);
  CHECK_ERRNO(EINVAL, rump_sys_statx(AT_FDCWD, "/f", 0x80000000, STATX_ALL, &sx));
}

TEST_CASE("O_TMPFILE, linkat AT_EMPTY_PATH", "[vfs]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/d", 0755) == 0);
  int fd = rump_sys_open("/d", O_TMPFILE | O_RDWR, 0600);
  REQUIRE(fd >= 0);
  CHECK(rump_sys_write(fd, "tmp", 3) == 3);
  struct stat st {};
  rump_sys_fstat(fd, &st);
  CHECK(st.st_nlink == 0);
  CHECK(list_dir("/d").size() == 2);
  CHECK(rump_sys_linkat(fd, "", AT_FDCWD, "/d/named", AT_EMPTY_PATH) == 0);
  CHECK(stat_of("/d/named").st_size == 3);
  CHECK(stat_of("/d/named").st_nlink == 1);
  CHECK_ERRNO(EINVAL, rump_sys_open("/d", O_TMPFILE | O_RDONLY, 0600));
  CHECK_ERRNO(ENOTDIR, rump_sys_open("/d/named", O_TMPFILE | O_RDWR, 0600));
  int ex = rump_sys_open("/d", O_TMPFILE | O_RDWR | O_EXCL, 0600);
  REQUIRE(ex >= 0);
  CHECK_ERRNO(ENOENT, rump_sys_linkat(ex, "", AT_FDCWD, "/d/n2", AT_EMPTY_PATH));
}

TEST_CASE("getdents64 lists entries and resumes", "[vfs]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/d", 0755) == 0);
  std::set<std::string> want{".", ".."};
  for (int i = 0; i < 100; i++) {
    std::string n = "/d/file" + std::to_string(i);
    make_file(n.c_str());
    want.insert("file" + std::to_string(i));
  }
  CHECK(list_dir("/d") == want);
  int fd = rump_sys_open("/d", O_RDONLY | O_DIRECTORY, 0);
  char tiny[16];
  CHECK_ERRNO(EINVAL, rump_sys_getdents64(fd, tiny, sizeof tiny));
  int f = rump_sys_open("/d/file1", O_RDONLY, 0);
  CHECK_ERRNO(ENOTDIR, rump_sys_getdents64(f, tiny, sizeof tiny));
  // Seeking back to 0 restarts.
  alignas(8) char buf[4096];
  ssize_t n1 = rump_sys_getdents64(fd, buf, sizeof buf);
  CHECK(n1 > 0);
  CHECK(rump_sys_lseek(fd, 0, SEEK_SET) == 0);
  CHECK(rump_sys_getdents64(fd, buf, sizeof buf) == n1);
  auto* d = reinterpret_cast<Dirent64*>(buf);
  CHECK(std::string(d->d_name) == ".");
  CHECK(d->d_type == DT_DIR);
}

TEST_CASE("mknod: FIFOs and devices store their type", "[vfs]") {
  KernelUp k;
  CHECK(rump_sys_mknod("/fifo", S_IFIFO | 0644, 0) == 0);
  CHECK(S_ISFIFO(stat_of("/fifo").st_mode));
  CHECK(rump_sys_mknod("/null", S_IFCHR | 0666, makedev(1, 3)) == 0);
  struct stat st = stat_of("/null");
  CHECK(S_ISCHR(st.st_mode));
  CHECK(st.st_rdev == makedev(1, 3));
  CHECK(rump_sys_mknod("/reg", 0644, 0) == 0);
  CHECK(S_ISREG(stat_of("/reg").st_mode));
  CHECK_ERRNO(EPERM, rump_sys_mknod("/dir", S_IFDIR | 0755, 0));
  CHECK_ERRNO(EEXIST, rump_sys_mknod("/fifo", S_IFIFO | 0644, 0));
  // 1:3 is the null device's driver; a number no driver serves is ENXIO.
  int fd = rump_sys_open("/null", O_RDWR, 0);
  CHECK(fd >= 0);
  CHECK(rump_sys_close(fd) == 0);
  CHECK(rump_sys_mknod("/nodrv", S_IFCHR | 0666, makedev(250, 7)) == 0);
  CHECK_ERRNO(ENXIO, rump_sys_open("/nodrv", O_RDWR, 0));
}

TEST_CASE("mount, crossing, umount, EBUSY, EROFS, EXDEV, ENOSPC", "[vfs]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/mnt", 0755) == 0);
  make_file("/mnt/under", "u");
  CHECK_ERRNO(ENODEV, rump_sys_mount("none", "/mnt", "nofs", 0, nullptr));
  CHECK_ERRNO(ENOENT, rump_sys_mount("none", "/nope", "tmpfs", 0, nullptr));
  REQUIRE(rump_sys_mount("none", "/mnt", "tmpfs", 0, "size=64k") == 0);
  CHECK_ERRNO(ENOENT, rump_sys_access("/mnt/under", F_OK));
  CHECK(stat_of("/mnt").st_dev != stat_of("/").st_dev);
  REQUIRE(rump_sys_mkdir("/mnt/sub", 0755) == 0);
  CHECK(rump_sys_chdir("/mnt/sub") == 0);
  CHECK(rump_sys_access("../../mnt/sub", F_OK) == 0);
  CHECK(rump_sys_access("../..", F_OK) == 0);
  char buf[64];
  CHECK(getcwd_len(buf, sizeof buf) > 0);
  CHECK(std::string(buf) == "/mnt/sub");
  CHECK_ERRNO(EBUSY, rump_sys_umount2("/mnt", 0));
  CHECK(rump_sys_chdir("/") == 0);
  make_file("/mnt/f", "x");
  CHECK_ERRNO(EXDEV, rump_sys_rename("/mnt/f", "/f"));
  CHECK_ERRNO(EXDEV, rump_sys_link("/mnt/f", "/f"));
  CHECK_ERRNO(EBUSY, rump_sys_rmdir("/mnt"));
  // ENOSPC at 64 KiB
  int fd = rump_sys_open("/mnt/big", O_CREAT | O_WRONLY, 0644);
  std::vector<char> data(100000, 'z');
  ssize_t n = rump_sys_write(fd, data.data(), data.size());
  CHECK(n > 0);
  CHECK(n < 65536);
  CHECK_ERRNO(ENOSPC, rump_sys_write(fd, data.data(), data.size()));
  struct statfs sf {};
  CHECK(rump_sys_fstatfs(fd, &sf) == 0);
  CHECK(sf.f_blocks == 16);
  CHECK(sf.f_bfree == 0);
  CHECK_ERRNO(EBUSY, rump_sys_umount2("/mnt", 0));
  rump_sys_close(fd);
  CHECK(rump_sys_unlink("/mnt/big") == 0);
  // read-only remount
  REQUIRE(rump_sys_mount(nullptr, "/mnt", nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0);
  CHECK_ERRNO(EROFS, rump_sys_open("/mnt/new", O_CREAT | O_WRONLY, 0644));
  CHECK_ERRNO(EROFS, rump_sys_open("/mnt/f", O_WRONLY, 0));
  CHECK_ERRNO(EROFS, rump_sys_mkdir("/mnt/d", 0755));
  CHECK_ERRNO(EROFS, rump_sys_unlink("/mnt/f"));
  CHECK_ERRNO(EROFS, rump_sys_access("/mnt/f", W_OK));
  CHECK(rump_sys_open("/mnt/f", O_RDONLY, 0) >= 0);
  CHECK(rump_sys_statfs("/mnt", &sf) == 0);
  CHECK((sf.f_flags & ST_RDONLY));
  CHECK_ERRNO(EBUSY, rump_sys_umount2("/mnt", 0));  // the open above
  CHECK(rump_sys_umount2("/mnt", MNT_DETACH) == 0);
  CHECK(rump_sys_access("/mnt/under", F_OK) == 0);
  CHECK_ERRNO(EINVAL, rump_sys_umount2("/mnt", 0));  // not a mount point
  CHECK_ERRNO(EBUSY, rump_sys_umount2("/", 0));
  CHECK_ERRNO(EINVAL, rump_sys_umount2("/mnt", 0x100));
  // mount and clean unmount
  REQUIRE(rump_sys_mount("none", "/mnt", "tmpfs", MS_NODEV, nullptr) == 0);
  CHECK(rump_sys_mknod("/mnt/null", S_IFCHR | 0666, makedev(1, 3)) == 0);
  CHECK_ERRNO(EACCES, rump_sys_open("/mnt/null", O_RDONLY, 0));
  CHECK_ERRNO(EINVAL, rump_sys_mount("none", "/mnt", "tmpfs", 0, "bogus=1"));
  CHECK(rump_sys_umount2("/mnt", 0) == 0);
}

TEST_CASE("chroot confines lookups", "[vfs]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/jail", 0755) == 0);
  REQUIRE(rump_sys_mkdir("/jail/in", 0755) == 0);
  make_file("/secret");
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  REQUIRE(rump_sys_chroot("/jail") == 0);
  REQUIRE(rump_sys_chdir("/") == 0);
  CHECK(rump_sys_access("/in", F_OK) == 0);
  CHECK_ERRNO(ENOENT, rump_sys_access("/secret", F_OK));
  CHECK_ERRNO(ENOENT, rump_sys_access("/../../secret", F_OK));
  CHECK(rump_sys_access("/../in", F_OK) == 0);
  char buf[32];
  REQUIRE(rump_sys_chdir("/in") == 0);
  CHECK(getcwd_len(buf, sizeof buf) == 4);
  CHECK(std::string(buf) == "/in");
  rump_lwproc_releaselwp();
  CHECK(rump_sys_access("/secret", F_OK) == 0);
}

TEST_CASE("record locks between processes", "[vfs][concurrency]") {
  KernelUp k;
  make_file("/lk", "0123456789");
  REQUIRE(rump_lwproc_rfork(RUMP_RFCFDG) == 0);
  struct lwp* a = rump_lwproc_curlwp();
  int fa = rump_sys_open("/lk", O_RDWR, 0);
  REQUIRE(fa >= 0);
  rump_lwproc_switch(nullptr);
  REQUIRE(rump_lwproc_rfork(RUMP_RFCFDG) == 0);
  struct lwp* b = rump_lwproc_curlwp();
  int fb = rump_sys_open("/lk", O_RDWR, 0);
  REQUIRE(fb >= 0);

  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 5;
  rump_lwproc_switch(a);
  CHECK(rump_sys_fcntl(fa, F_SETLK, reinterpret_cast<unsigned long>(&fl)) == 0);
  rump_lwproc_switch(b);
  CHECK_ERRNO(EAGAIN, rump_sys_fcntl(fb, F_SETLK, reinterpret_cast<unsigned long>(&fl)));
  struct flock q = fl;
  q.l_type = F_RDLCK;
  CHECK(rump_sys_fcntl(fb, F_GETLK, reinterpret_cast<unsigned long>(&q)) == 0);
  CHECK(q.l_type == F_WRLCK);
  CHECK(q.l_start == 0);
  CHECK(q.l_len == 5);
  rump_lwproc_switch(a);
  pid_t apid = rump_sys_getpid();
  rump_lwproc_switch(b);
  CHECK(q.l_pid == apid);
  struct flock other = fl;
  other.l_start = 5;
  CHECK(rump_sys_fcntl(fb, F_SETLK, reinterpret_cast<unsigned long>(&other)) == 0);
  // a waits for b's lock in a thread; b then asks for a's: EDEADLK.
  std::atomic<int> waited{-1};
  std::thread t([&] {
    rump_kernel_set_current(k.k);
    rump_lwproc_switch(a);
    struct flock w = other;
    waited = rump_sys_fcntl(fa, F_SETLKW, reinterpret_cast<unsigned long>(&w));
    rump_lwproc_switch(nullptr);
  });
  // Give the waiter time to sleep.
  for (int i = 0; i < 200 && waited.load() == -1; i++) {
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, nullptr);
  }
  CHECK_ERRNO(EDEADLK, rump_sys_fcntl(fb, F_SETLKW, reinterpret_cast<unsigned long>(&fl)));
  // Closing any descriptor of the file drops b's locks: a gets its lock.
  CHECK(rump_sys_close(fb) == 0);
  t.join();
  CHECK(waited.load() == 0);
  // OFD locks conflict with the POSIX locks of another owner.
  rump_lwproc_switch(b);
  fb = rump_sys_open("/lk", O_RDWR, 0);
  struct flock ofd = fl;
  ofd.l_pid = 0;
  CHECK_ERRNO(EAGAIN, rump_sys_fcntl(fb, F_OFD_SETLK, reinterpret_cast<unsigned long>(&ofd)));
  ofd.l_start = 20;
  CHECK(rump_sys_fcntl(fb, F_OFD_SETLK, reinterpret_cast<unsigned long>(&ofd)) == 0);
  ofd.l_pid = 1;
  CHECK_ERRNO(EINVAL, rump_sys_fcntl(fb, F_OFD_SETLK, reinterpret_cast<unsigned long>(&ofd)));
  // flock
  CHECK(rump_sys_flock(fb, LOCK_EX) == 0);
  rump_lwproc_switch(a);
  CHECK_ERRNO(EWOULDBLOCK, rump_sys_flock(fa, LOCK_SH | LOCK_NB));
  rump_lwproc_switch(b);
  CHECK(rump_sys_flock(fb, LOCK_UN) == 0);
  rump_lwproc_switch(a);
  CHECK(rump_sys_flock(fa, LOCK_SH | LOCK_NB) == 0);
  CHECK_ERRNO(EINVAL, rump_sys_flock(fa, 0));
  rump_lwproc_releaselwp();
  rump_lwproc_switch(b);
  rump_lwproc_releaselwp();
}

TEST_CASE("concurrent create, rename, unlink in one directory", "[vfs][concurrency]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/c", 0755) == 0);
  constexpr int kThreads = 4, kIters = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      rump_kernel_set_current(k.k);
      for (int i = 0; i < kIters; i++) {
        std::string a = "/c/t" + std::to_string(t) + "_" + std::to_string(i);
        std::string b = a + "r";
        int fd = rump_sys_open(a.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd < 0) {
          failures++;
          continue;
        }
        if (rump_sys_write(fd, "x", 1) != 1) failures++;
        rump_sys_close(fd);
        if (rump_sys_rename(a.c_str(), b.c_str()) != 0) failures++;
        if (i % 2 == 0 && rump_sys_unlink(b.c_str()) != 0) failures++;
        // also race on a shared name
        rump_sys_rename(b.c_str(), "/c/shared");
      }
      rump_kernel_set_current(nullptr);
    });
  }
  for (auto& th : ts) th.join();
  CHECK(failures.load() == 0);
  auto names = list_dir("/c");
  CHECK(names.count("shared") == 1);
  struct stat st = stat_of("/c");
  CHECK(st.st_nlink == 2);
  CHECK(st.st_size == static_cast<off_t>(20 * names.size()));
}

TEST_CASE("halting with open files and mounts frees everything", "[vfs]") {
  rump_kernel* k = nullptr;
  REQUIRE(rump_kernel_boot(nullptr, &k) == 0);
  REQUIRE(rump_kernel_set_current(k) == 0);
  REQUIRE(rump_sys_mkdir("/m", 0755) == 0);
  REQUIRE(rump_sys_mount("x", "/m", "tmpfs", 0, nullptr) == 0);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  int fd = rump_sys_open("/m/f", O_CREAT | O_RDWR, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(rump_sys_write(fd, "data", 4) == 4);
  REQUIRE(rump_sys_chdir("/m") == 0);
  rump_lwproc_switch(nullptr);
  rump_kernel_set_current(nullptr);
  CHECK(rump_kernel_halt(k) == 0);
}

TEST_CASE("a write by a non-root user clears set-user-ID and group-executable set-group-ID", "[vfs][perm]") {
  KernelUp k;
  REQUIRE(rump_sys_mkdir("/t", 01777) == 0);
  REQUIRE(rump_sys_chmod("/t", 01777) == 0);
  // Root's writes keep the bits.
  int rfd = rump_sys_open("/t/rootfile", O_CREAT | O_RDWR, 0755);
  REQUIRE(rfd >= 0);
  REQUIRE(rump_sys_fchmod(rfd, 06755) == 0);
  CHECK(rump_sys_write(rfd, "x", 1) == 1);
  struct stat st {};
  REQUIRE(rump_sys_fstat(rfd, &st) == 0);
  CHECK((st.st_mode & 07777) == 06755);
  rump_sys_close(rfd);

  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  REQUIRE(rump_sys_setresgid(1000, 1000, 1000) == 0);
  REQUIRE(rump_sys_setresuid(1000, 1000, 1000) == 0);
  int fd = rump_sys_open("/t/f", O_CREAT | O_RDWR, 0755);
  REQUIRE(fd >= 0);
  REQUIRE(rump_sys_fchmod(fd, 06775) == 0);
  REQUIRE(rump_sys_fstat(fd, &st) == 0);
  REQUIRE((st.st_mode & 07777) == 06775);
  CHECK(rump_sys_write(fd, "data", 4) == 4);
  REQUIRE(rump_sys_fstat(fd, &st) == 0);
  CHECK((st.st_mode & 07777) == 0775);
  // Set-group-ID without group execute marks mandatory locking: it stays.
  REQUIRE(rump_sys_fchmod(fd, 02764) == 0);
  CHECK(rump_sys_write(fd, "more", 4) == 4);
  REQUIRE(rump_sys_fstat(fd, &st) == 0);
  CHECK((st.st_mode & 07777) == 02764);
  rump_sys_close(fd);
  rump_lwproc_releaselwp();
}
