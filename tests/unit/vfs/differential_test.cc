// Differential harness: the same scenarios of file operations run against
// the host kernel (in a fresh mkdtemp directory under /tmp, absolute paths,
// no chdir) and against a rump kernel (a directory of the same path in its
// tmpfs); the return values, errnos and the observable state (type, mode,
// nlink, size, sorted directory listings) must agree.
//
// Deliberate differences (kDifferences below, one place):
//   * directory st_size: tmpfs-specific (20 bytes per entry on Linux tmpfs,
//     filesystem-specific elsewhere: /tmp may be ext4 or overlay): not
//     compared.
//   * st_blocks: depends on the host file system's allocation: not compared.
//   * descriptor numbers: only "succeeded" is compared (>= 0).
//   * read(2) on a directory after getdents reached its end: EINVAL on
//     ext4 (its hash-cookie position overflows rw_verify_area), EISDIR on
//     tmpfs; scenarios read directories only before listing them.
//   * permission scenarios: the host run may be root (then it would pass
//     every check), so scenarios that depend on being unprivileged run only
//     in vfs_test.cc, against the rump kernel.
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <rump/rump_syscalls.h>

#include "rump_test.h"

using rump_test::KernelUp;

namespace {

// A file-system interface both kernels implement.
struct Backend {
  std::function<long(const char*, int, mode_t)> open;
  std::function<long(int, const char*, int, mode_t)> openat;
  std::function<long(const char*, mode_t)> creat;
  std::function<long(int)> close;
  std::function<long(int, const void*, size_t)> write;
  std::function<long(int, void*, size_t)> read;
  std::function<long(int, off_t, int)> lseek;
  std::function<long(const char*, mode_t)> mkdir;
  std::function<long(const char*)> rmdir;
  std::function<long(const char*)> unlink;
  std::function<long(const char*, const char*)> rename;
  std::function<long(const char*, const char*, unsigned)> renameat2;
  std::function<long(const char*, const char*)> link;
  std::function<long(const char*, const char*)> symlink;
  std::function<long(const char*, char*, size_t)> readlink;
  std::function<long(const char*, struct stat*)> lstat;
  std::function<long(const char*, struct stat*)> stat;
  std::function<long(const char*, mode_t)> chmod;
  std::function<long(const char*, off_t)> truncate;
  std::function<long(const char*, int)> access;
  std::function<long(const char*, mode_t, dev_t)> mknod;
  std::function<long(int, void*, size_t)> getdents;
  std::function<long(int, int, unsigned long)> fcntl;
  std::function<long(int)> dup;
  std::function<long(const char*, int)> unlinkat;
};

Backend host_backend() {
  Backend b;
  b.open = [](const char* p, int f, mode_t m) { return ::open(p, f, m); };
  b.openat = [](int d, const char* p, int f, mode_t m) { return ::openat(d, p, f, m); };
  b.creat = [](const char* p, mode_t m) { return ::creat(p, m); };
  b.close = [](int fd) { return ::close(fd); };
  b.write = [](int fd, const void* d, size_t n) { return ::write(fd, d, n); };
  b.read = [](int fd, void* d, size_t n) { return ::read(fd, d, n); };
  b.lseek = [](int fd, off_t o, int w) { return ::lseek(fd, o, w); };
  b.mkdir = [](const char* p, mode_t m) { return ::mkdir(p, m); };
  b.rmdir = [](const char* p) { return ::rmdir(p); };
  b.unlink = [](const char* p) { return ::unlink(p); };
  b.rename = [](const char* a, const char* c) { return ::rename(a, c); };
  b.renameat2 = [](const char* a, const char* c, unsigned f) {
    return syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, c, f);
  };
  b.link = [](const char* a, const char* c) { return ::link(a, c); };
  b.symlink = [](const char* a, const char* c) { return ::symlink(a, c); };
  b.readlink = [](const char* p, char* buf, size_t n) { return ::readlink(p, buf, n); };
  b.lstat = [](const char* p, struct stat* st) { return ::lstat(p, st); };
  b.stat = [](const char* p, struct stat* st) { return ::stat(p, st); };
  b.chmod = [](const char* p, mode_t m) { return ::chmod(p, m); };
  b.truncate = [](const char* p, off_t l) { return ::truncate(p, l); };
  b.access = [](const char* p, int m) { return ::access(p, m); };
  b.mknod = [](const char* p, mode_t m, dev_t d) { return ::mknod(p, m, d); };
  b.getdents = [](int fd, void* buf, size_t n) { return syscall(SYS_getdents64, fd, buf, n); };
  b.fcntl = [](int fd, int cmd, unsigned long a) { return ::fcntl(fd, cmd, a); };
  b.dup = [](int fd) { return ::dup(fd); };
  b.unlinkat = [](const char* p, int f) { return ::unlinkat(AT_FDCWD, p, f); };
  return b;
}

Backend rump_backend() {
  Backend b;
  b.open = [](const char* p, int f, mode_t m) { return rump_sys_open(p, f, m); };
  b.openat = [](int d, const char* p, int f, mode_t m) { return rump_sys_openat(d, p, f, m); };
  b.creat = [](const char* p, mode_t m) { return rump_sys_creat(p, m); };
  b.close = [](int fd) { return rump_sys_close(fd); };
  b.write = [](int fd, const void* d, size_t n) { return rump_sys_write(fd, d, n); };
  b.read = [](int fd, void* d, size_t n) { return rump_sys_read(fd, d, n); };
  b.lseek = [](int fd, off_t o, int w) { return rump_sys_lseek(fd, o, w); };
  b.mkdir = [](const char* p, mode_t m) { return rump_sys_mkdir(p, m); };
  b.rmdir = [](const char* p) { return rump_sys_rmdir(p); };
  b.unlink = [](const char* p) { return rump_sys_unlink(p); };
  b.rename = [](const char* a, const char* c) { return rump_sys_rename(a, c); };
  b.renameat2 = [](const char* a, const char* c, unsigned f) {
    return rump_sys_renameat2(AT_FDCWD, a, AT_FDCWD, c, f);
  };
  b.link = [](const char* a, const char* c) { return rump_sys_link(a, c); };
  b.symlink = [](const char* a, const char* c) { return rump_sys_symlink(a, c); };
  b.readlink = [](const char* p, char* buf, size_t n) { return rump_sys_readlink(p, buf, n); };
  b.lstat = [](const char* p, struct stat* st) { return rump_sys_lstat(p, st); };
  b.stat = [](const char* p, struct stat* st) { return rump_sys_stat(p, st); };
  b.chmod = [](const char* p, mode_t m) { return rump_sys_chmod(p, m); };
  b.truncate = [](const char* p, off_t l) { return rump_sys_truncate(p, l); };
  b.access = [](const char* p, int m) { return rump_sys_access(p, m); };
  b.mknod = [](const char* p, mode_t m, dev_t d) { return rump_sys_mknod(p, m, d); };
  b.getdents = [](int fd, void* buf, size_t n) { return rump_sys_getdents64(fd, buf, n); };
  b.fcntl = [](int fd, int cmd, unsigned long a) { return rump_sys_fcntl(fd, cmd, a); };
  b.dup = [](int fd) { return rump_sys_dup(fd); };
  b.unlinkat = [](const char* p, int f) { return rump_sys_unlinkat(AT_FDCWD, p, f); };
  return b;
}

// One operation: a name for the log, and what it does given the backend,
// the scenario's root directory and its open descriptors (by slot).
struct Op {
  std::string text;
  std::function<long(Backend&, const std::string& root, std::vector<long>& fds, std::string& out)> run;
};

std::string P(const std::string& root, const std::string& rel) { return rel.empty() ? root : root + "/" + rel; }

Op op_open(std::string rel, int flags, mode_t mode = 0644) {
  return {"open " + rel + " " + std::to_string(flags),
          [=](Backend& b, const std::string& r, std::vector<long>& fds, std::string&) {
            long fd = b.open(P(r, rel).c_str(), flags, mode);
            fds.push_back(fd);
            return fd >= 0 ? 0L : fd;
          }};
}
// Opens rel (relative, used verbatim) from the directory open in slot.
Op op_openat(int dir_slot, std::string rel, int flags, mode_t mode = 0644) {
  return {"openat #" + std::to_string(dir_slot) + " " + rel + " " + std::to_string(flags),
          [=](Backend& b, const std::string&, std::vector<long>& fds, std::string&) {
            long fd = b.openat(static_cast<int>(fds.at(dir_slot)), rel.c_str(), flags, mode);
            fds.push_back(fd);
            return fd >= 0 ? 0L : fd;
          }};
}
Op op_creat(std::string rel, mode_t mode = 0644) {
  return {"creat " + rel, [=](Backend& b, const std::string& r, std::vector<long>& fds, std::string&) {
            long fd = b.creat(P(r, rel).c_str(), mode);
            fds.push_back(fd);
            return fd >= 0 ? 0L : fd;
          }};
}
Op op_close(int slot) {
  return {"close #" + std::to_string(slot), [=](Backend& b, const std::string&, std::vector<long>& fds, std::string&) {
            return b.close(static_cast<int>(fds.at(slot)));
          }};
}
Op op_write(int slot, std::string data) {
  return {"write #" + std::to_string(slot) + " " + data,
          [=](Backend& b, const std::string&, std::vector<long>& fds, std::string&) {
            return b.write(static_cast<int>(fds.at(slot)), data.data(), data.size());
          }};
}
Op op_read(int slot, size_t n) {
  return {"read #" + std::to_string(slot), [=](Backend& b, const std::string&, std::vector<long>& fds, std::string& out) {
            std::string buf(n, '\0');
            long r = b.read(static_cast<int>(fds.at(slot)), buf.data(), n);
            if (r > 0) out = buf.substr(0, r);
            return r;
          }};
}
Op op_lseek(int slot, off_t off, int whence) {
  return {"lseek #" + std::to_string(slot), [=](Backend& b, const std::string&, std::vector<long>& fds, std::string&) {
            return b.lseek(static_cast<int>(fds.at(slot)), off, whence);
          }};
}
Op op_fcntl(int slot, int cmd, unsigned long arg) {
  return {"fcntl #" + std::to_string(slot) + " " + std::to_string(cmd),
          [=](Backend& b, const std::string&, std::vector<long>& fds, std::string&) {
            return b.fcntl(static_cast<int>(fds.at(slot)), cmd, arg);
          }};
}
Op op_dup(int slot) {
  return {"dup #" + std::to_string(slot), [=](Backend& b, const std::string&, std::vector<long>& fds, std::string&) {
            long fd = b.dup(static_cast<int>(fds.at(slot)));
            fds.push_back(fd);
            return fd >= 0 ? 0L : fd;
          }};
}
Op op_getdents(int slot) {
  return {"getdents #" + std::to_string(slot),
          [=](Backend& b, const std::string&, std::vector<long>& fds, std::string&) {
            alignas(8) char buf[4096];
            long r = b.getdents(static_cast<int>(fds.at(slot)), buf, sizeof buf);
            return r >= 0 ? 0L : r;
          }};
}
Op op_path(std::string name, std::string rel, std::function<long(Backend&, const std::string&)> fn) {
  return {name + " " + rel, [=](Backend& b, const std::string& r, std::vector<long>&, std::string&) {
            return fn(b, P(r, rel));
          }};
}
Op op_mkdir(std::string rel, mode_t m = 0755) {
  return op_path("mkdir", rel, [=](Backend& b, const std::string& p) { return b.mkdir(p.c_str(), m); });
}
Op op_rmdir(std::string rel) {
  return op_path("rmdir", rel, [](Backend& b, const std::string& p) { return b.rmdir(p.c_str()); });
}
Op op_unlink(std::string rel) {
  return op_path("unlink", rel, [](Backend& b, const std::string& p) { return b.unlink(p.c_str()); });
}
Op op_unlinkat(std::string rel, int flags) {
  return op_path("unlinkat", rel, [=](Backend& b, const std::string& p) { return b.unlinkat(p.c_str(), flags); });
}
Op op_chmod(std::string rel, mode_t m) {
  return op_path("chmod", rel, [=](Backend& b, const std::string& p) { return b.chmod(p.c_str(), m); });
}
Op op_truncate(std::string rel, off_t l) {
  return op_path("truncate", rel, [=](Backend& b, const std::string& p) { return b.truncate(p.c_str(), l); });
}
Op op_access(std::string rel, int m) {
  return op_path("access", rel, [=](Backend& b, const std::string& p) { return b.access(p.c_str(), m); });
}
Op op_mkfifo(std::string rel) {
  return op_path("mkfifo", rel, [](Backend& b, const std::string& p) { return b.mknod(p.c_str(), S_IFIFO | 0644, 0); });
}
Op op_stat(std::string rel, bool follow) {
  return {(follow ? "stat " : "lstat ") + rel,
          [=](Backend& b, const std::string& r, std::vector<long>&, std::string& out) {
            struct stat st {};
            long rv = follow ? b.stat(P(r, rel).c_str(), &st) : b.lstat(P(r, rel).c_str(), &st);
            if (rv == 0) {
              std::ostringstream o;
              o << std::oct << st.st_mode << std::dec << " n" << st.st_nlink;
              if (!S_ISDIR(st.st_mode)) o << " s" << st.st_size;
              out = o.str();
            }
            return rv;
          }};
}
Op op_rename(std::string a, std::string c, unsigned flags = 0) {
  return {"rename " + a + " " + c + " " + std::to_string(flags),
          [=](Backend& b, const std::string& r, std::vector<long>&, std::string&) {
            if (flags) return b.renameat2(P(r, a).c_str(), P(r, c).c_str(), flags);
            return b.rename(P(r, a).c_str(), P(r, c).c_str());
          }};
}
Op op_link(std::string a, std::string c) {
  return {"link " + a + " " + c, [=](Backend& b, const std::string& r, std::vector<long>&, std::string&) {
            return b.link(P(r, a).c_str(), P(r, c).c_str());
          }};
}
// target is used verbatim (relative symlinks stay relative).
Op op_symlink(std::string target, std::string c) {
  return {"symlink " + target + " " + c, [=](Backend& b, const std::string& r, std::vector<long>&, std::string&) {
            return b.symlink(target.c_str(), P(r, c).c_str());
          }};
}
// An absolute symlink to rel inside the scenario's root.
Op op_symlink_abs(std::string target_rel, std::string c) {
  return {"symlink /" + target_rel + " " + c, [=](Backend& b, const std::string& r, std::vector<long>&, std::string&) {
            return b.symlink(P(r, target_rel).c_str(), P(r, c).c_str());
          }};
}
Op op_readlink(std::string rel) {
  return {"readlink " + rel, [=](Backend& b, const std::string& r, std::vector<long>&, std::string& out) {
            char buf[256];
            long n = b.readlink(P(r, rel).c_str(), buf, sizeof buf);
            if (n > 0) out.assign(buf, n);
            return n;
          }};
}

// The observable state of a tree, as text.
std::string snapshot(Backend& b, const std::string& dir, const std::string& rel = "") {
  std::ostringstream o;
  long fd = b.open(dir.c_str(), O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return "<unreadable " + dir + ">";
  std::vector<std::string> names;
  alignas(8) char buf[4096];
  for (;;) {
    long n = b.getdents(static_cast<int>(fd), buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* reclen = reinterpret_cast<uint16_t*>(buf + off + 16);
      std::string name(buf + off + 19);
      if (name != "." && name != "..") names.push_back(name);
      off += *reclen;
    }
  }
  b.close(static_cast<int>(fd));
  std::sort(names.begin(), names.end());
  for (auto& n : names) {
    std::string p = dir + "/" + n;
    struct stat st {};
    if (b.lstat(p.c_str(), &st) != 0) continue;
    o << rel << n << " " << std::oct << st.st_mode << std::dec << " n" << st.st_nlink;
    if (!S_ISDIR(st.st_mode)) o << " s" << st.st_size;
    o << "\n";
    if (S_ISDIR(st.st_mode) && (st.st_mode & 0500) == 0500) o << snapshot(b, p, rel + n + "/");
  }
  return o.str();
}

struct Scenario {
  std::string name;
  std::vector<Op> ops;
};

std::vector<Scenario> scenarios() {
  std::vector<Scenario> s;
  s.push_back({"create-write-read",
               {op_open("f", O_CREAT | O_RDWR), op_write(0, "hello"), op_lseek(0, 0, SEEK_SET), op_read(0, 10),
                op_read(0, 10), op_lseek(0, 2, SEEK_END), op_write(0, "x"), op_stat("f", true), op_close(0),
                op_close(0), op_open("f", O_RDONLY | O_TRUNC), op_stat("f", true)}});
  s.push_back({"open-errors",
               {op_open("nope", O_RDONLY), op_open("", O_RDONLY), op_mkdir("d"), op_open("d", O_WRONLY),
                op_open("d", O_RDWR), op_open("d", O_RDONLY), op_open("d", O_CREAT | O_WRONLY),
                op_open("d/", O_CREAT | O_RDONLY), op_open("nf/", O_CREAT | O_WRONLY),
                op_open("f", O_CREAT | O_WRONLY), op_open("f", O_CREAT | O_EXCL | O_WRONLY),
                op_open("f/", O_RDONLY), op_open("f/x", O_RDONLY), op_open("f", O_RDONLY | O_DIRECTORY),
                op_open("d", O_RDONLY | O_DIRECTORY), op_open("f", O_WRONLY | O_APPEND),
                op_open("f", O_PATH), op_open("d", O_PATH | O_DIRECTORY)}});
  s.push_back({"mkdir-rmdir",
               {op_mkdir("a"), op_mkdir("a"), op_mkdir("a/"), op_mkdir("a/b"), op_mkdir("a/b/c"), op_mkdir("x/y"),
                op_rmdir("a"), op_rmdir("a/b/c/."), op_rmdir("a/b/c/.."), op_rmdir("a/b/c"), op_rmdir("a/b/"),
                op_rmdir("a/nope"), op_stat("a", true), op_mkdir("a/s1"), op_mkdir("a/s2"), op_stat("a", true),
                op_rmdir("a/s1"), op_stat("a", true), op_unlink("a"), op_unlinkat("a/s2", AT_REMOVEDIR),
                op_unlinkat("a", 0), op_unlinkat("a", 0x4), op_rmdir("a")}});
  s.push_back({"unlink",
               {op_open("f", O_CREAT | O_WRONLY), op_close(0), op_unlink("f/"), op_unlink("f"), op_unlink("f"),
                op_mkdir("d"), op_unlink("d"), op_unlink("d/"), op_rmdir("d"), op_unlink("d/x")}});
  s.push_back({"symlinks",
               {op_mkdir("d"), op_open("d/f", O_CREAT | O_WRONLY), op_write(0, "abc"), op_close(0),
                op_symlink("d/f", "rel"), op_symlink("d", "dl"), op_symlink("nowhere", "dangling"),
                op_symlink("l2", "l1"), op_symlink("l1", "l2"), op_stat("rel", true), op_stat("rel", false),
                op_stat("dl/f", true), op_stat("dl/", true), op_stat("dl", false), op_stat("dangling", true),
                op_stat("dangling", false), op_stat("l1", true), op_readlink("rel"), op_readlink("d/f"),
                op_readlink("nope"), op_open("rel", O_RDONLY | O_NOFOLLOW), op_open("dangling", O_CREAT | O_EXCL),
                op_symlink("x", "rel"), op_symlink("", "empty"), op_unlink("dl"), op_stat("d", true),
                op_rmdir("rel"), op_open("l1", O_RDONLY), op_access("rel", F_OK), op_access("dangling", F_OK),
                op_symlink("d/", "dslash"), op_stat("dslash/f", true)}});
  // open(O_CREAT) through symlinks: a dangling link creates its target
  // (relative, absolute, through a chain of links, from an *at directory),
  // except with O_EXCL or O_NOFOLLOW; trailing slashes are EISDIR.
  // Descriptors: slot n is the nth open/openat/creat of the scenario.
  s.push_back({"creat-through-symlinks",
               {op_mkdir("d"), op_symlink("t1", "l1"), op_open("l1", O_CREAT | O_WRONLY, 0600),  // #0
                op_write(0, "one"), op_stat("t1", false), op_symlink("d/t2", "l2"),
                op_open("l2", O_CREAT | O_RDWR, 0640), op_stat("d/t2", false),  // #1
                op_symlink_abs("d/t3", "l3"), op_creat("l3", 0600), op_write(2, "abs"), op_stat("d/t3", false),  // #2
                op_symlink("t4", "l4"), op_open("l4", O_CREAT | O_EXCL | O_WRONLY), op_access("t4", F_OK),  // #3
                op_symlink("t5", "l5"), op_open("l5", O_CREAT | O_NOFOLLOW | O_WRONLY), op_access("t5", F_OK),  // #4
                op_symlink("nodir/t6", "l6"), op_open("l6", O_CREAT | O_WRONLY),  // #5
                op_symlink("t7/", "l7"), op_open("l7", O_CREAT | O_WRONLY), op_access("t7", F_OK),  // #6
                op_symlink("d/", "l8"), op_open("l8", O_CREAT | O_WRONLY),                          // #7
                op_symlink("l1", "l9"), op_open("l9", O_CREAT | O_WRONLY | O_APPEND), op_write(8, "+"),  // #8
                op_symlink("l10b", "l10"), op_symlink("t10", "l10b"), op_open("l10", O_CREAT | O_RDWR),  // #9
                op_stat("t10", false), op_symlink("t11", "l11"), op_open("l11/", O_CREAT | O_WRONLY),  // #10
                op_access("t11", F_OK), op_open("d", O_RDONLY | O_DIRECTORY),                          // #11
                op_symlink("t13", "d/l13"), op_openat(11, "l13", O_CREAT | O_WRONLY), op_stat("d/t13", false),  // #12
                op_symlink("l14", "l14"), op_open("l14", O_CREAT | O_WRONLY),                 // #13
                op_symlink("t15", "l15"), op_open("l15", O_CREAT | O_WRONLY | O_DIRECTORY),  // #14
                op_access("t15", F_OK), op_open("t1", O_CREAT | O_EXCL | O_WRONLY),          // #15
                op_open("t1/", O_CREAT | O_EXCL | O_WRONLY), op_open("t1/", O_CREAT | O_WRONLY),  // #16 #17
                op_open("d/", O_CREAT | O_EXCL | O_WRONLY), op_open("nx/", O_CREAT | O_EXCL | O_WRONLY),  // #18 #19
                op_open("l1/", O_CREAT | O_WRONLY), op_open("l8/", O_CREAT | O_WRONLY),  // #20 #21
                op_symlink("t1/", "l17"), op_open("l17", O_CREAT | O_WRONLY),            // #22
                op_symlink("..", "l18"), op_open("l18", O_CREAT | O_WRONLY),             // #23
                op_symlink(".", "l19"), op_open("l19", O_CREAT | O_RDONLY),              // #24
                op_symlink("d/.", "l20"), op_open("l20", O_CREAT | O_RDONLY),            // #25
                op_symlink("nx/..", "l21"), op_open("l21", O_CREAT | O_RDONLY),          // #26
                op_symlink("t1/x", "l22"), op_open("l22", O_CREAT | O_RDONLY),           // #27
                op_symlink("l26", "l25"), op_symlink("t26/", "l26"), op_open("l25", O_CREAT | O_RDONLY),  // #28
                op_open("l1", O_CREAT | O_RDWR | O_TRUNC), op_stat("t1", false),  // #29: truncates the target
                op_open("l1", O_CREAT | O_EXCL | O_RDWR), op_open("l1", O_RDONLY | O_NOFOLLOW)}});  // #30 #31
  s.push_back({"hard-links",
               {op_open("f", O_CREAT | O_WRONLY), op_write(0, "data"), op_close(0), op_link("f", "g"),
                op_stat("f", true), op_link("f", "g"), op_mkdir("d"), op_link("d", "e"), op_link("nope", "x"),
                op_link("f", "d/h"), op_stat("d/h", true), op_unlink("f"), op_stat("g", true), op_unlink("g"),
                op_stat("d/h", true), op_link("d/h", "nope/x"), op_link("d/h", "d/h/")}});
  s.push_back({"rename",
               {op_mkdir("d"), op_mkdir("d/sub"), op_mkdir("e"), op_open("a", O_CREAT | O_WRONLY),
                op_write(0, "A"), op_close(0), op_open("b", O_CREAT | O_WRONLY), op_close(1),
                op_rename("a", "c"), op_rename("c", "b"), op_rename("b", "d"), op_rename("d", "b"),
                op_rename("d", "d/sub/x"), op_rename("d", "d/sub"), op_rename("e", "d"), op_rename("d/sub", "e/sub"),
                op_rename("nope", "x"), op_rename("b/", "x"), op_rename("b", "x/"), op_rename("d/.", "x"),
                op_rename("d", "e/sub"), op_rename("e", "d"), op_stat("d", true), op_stat("e", true),
                op_rename("b", "b"), op_rename("d", "d")}});
  s.push_back({"renameat2",
               {op_open("a", O_CREAT | O_WRONLY), op_write(0, "AAA"), op_close(0), op_open("b", O_CREAT | O_WRONLY),
                op_write(1, "B"), op_close(1), op_mkdir("d"), op_rename("a", "b", RENAME_NOREPLACE),
                op_rename("a", "b", RENAME_EXCHANGE), op_stat("a", true), op_stat("b", true),
                op_rename("a", "zz", RENAME_EXCHANGE), op_rename("a", "d", RENAME_EXCHANGE), op_stat("d", true),
                op_rename("a", "b", RENAME_EXCHANGE | RENAME_NOREPLACE), op_rename("d", "c", RENAME_NOREPLACE)}});
  s.push_back({"chmod-access-truncate",
               {op_open("f", O_CREAT | O_WRONLY, 0600), op_write(0, "0123456789"), op_close(0),
                op_chmod("f", 0751), op_stat("f", true), op_chmod("f", 04755), op_stat("f", true),
                op_chmod("nope", 0644), op_access("f", F_OK), op_access("f", R_OK | W_OK),
                op_access("f", 0x10), op_truncate("f", 3), op_stat("f", true), op_truncate("f", 100000),
                op_stat("f", true), op_truncate("f", -1), op_truncate("nope", 0), op_mkdir("d"),
                op_truncate("d", 0), op_chmod("d", 01777), op_stat("d", true)}});
  s.push_back({"fifo-and-nodes",
               {op_mkfifo("p"), op_stat("p", true), op_mkfifo("p"), op_open("p", O_RDONLY | O_NONBLOCK | O_PATH),
                op_unlink("p"), op_stat("p", true)}});
  s.push_back({"descriptors",
               {op_open("f", O_CREAT | O_RDWR), op_write(0, "abcdef"), op_dup(0), op_lseek(1, 0, SEEK_CUR),
                op_lseek(1, 1, SEEK_SET), op_read(0, 2), op_fcntl(0, F_GETFL, 0), op_fcntl(0, F_SETFL, O_APPEND),
                op_fcntl(1, F_GETFL, 0), op_write(1, "Z"), op_lseek(0, 0, SEEK_CUR), op_fcntl(0, F_GETFD, 0),
                op_fcntl(0, F_SETFD, FD_CLOEXEC), op_fcntl(0, F_GETFD, 0), op_fcntl(1, F_GETFD, 0),
                op_fcntl(0, 9999, 0), op_close(1), op_read(1, 1), op_lseek(0, -100, SEEK_SET),
                op_lseek(0, 0, 77), op_lseek(0, 0, SEEK_HOLE), op_lseek(0, 0, SEEK_DATA),
                op_lseek(0, 100, SEEK_DATA), op_open("f", O_RDONLY), op_write(2, "x"),
                op_open("f", O_WRONLY), op_read(3, 1), op_open(".", O_RDONLY), op_read(4, 1), op_getdents(4),
                op_getdents(0), op_open("f", O_PATH), op_read(5, 1), op_fcntl(5, F_GETFL, 0)}});
  // Bulk scenarios: many files in nested directories, renamed and removed.
  for (int round = 0; round < 4; round++) {
    Scenario sc{"bulk-" + std::to_string(round), {}};
    sc.ops.push_back(op_mkdir("t"));
    for (int i = 0; i < 12; i++) {
      std::string d = "t/d" + std::to_string(i % 3);
      std::string f = d + "/f" + std::to_string(i);
      sc.ops.push_back(op_mkdir(d));
      sc.ops.push_back(op_open(f, O_CREAT | O_WRONLY | O_EXCL));
      sc.ops.push_back(op_write(i, std::string(i * 37 + round, 'a' + i)));
      sc.ops.push_back(op_close(i));
      if (i % 4 == round) sc.ops.push_back(op_rename(f, "t/moved" + std::to_string(i)));
      if (i % 5 == round) sc.ops.push_back(op_unlink(f));
      if (i % 3 == round % 3) sc.ops.push_back(op_link("t/d0", "t/dl" + std::to_string(i)));
    }
    sc.ops.push_back(op_rmdir("t/d1"));
    sc.ops.push_back(op_rename("t/d2", "t/d0"));
    sc.ops.push_back(op_rename("t/d2", "t/renamed"));
    sc.ops.push_back(op_stat("t/renamed", true));
    sc.ops.push_back(op_stat("t", true));
    s.push_back(std::move(sc));
  }
  return s;
}

struct Outcome {
  std::vector<std::string> lines;
  std::string state;
};

Outcome run(Backend& b, const std::string& root, const Scenario& sc) {
  Outcome o;
  std::vector<long> fds;
  for (const Op& op : sc.ops) {
    std::string out;
    errno = 0;
    long r = op.run(b, root, fds, out);
    int e = r < 0 ? errno : 0;
    std::ostringstream line;
    line << op.text << " -> " << (r < 0 ? -1 : r) << " errno " << e;
    if (!out.empty()) line << " [" << out << "]";
    o.lines.push_back(line.str());
  }
  for (long fd : fds)
    if (fd >= 0) b.close(static_cast<int>(fd));
  o.state = snapshot(b, root);
  return o;
}

// Removes a host scratch tree (no chdir; paths are absolute).
void remove_tree(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string p = dir + "/" + n;
    struct stat st {};
    if (lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      chmod(p.c_str(), 0700);
      remove_tree(p);
    } else {
      unlink(p.c_str());
    }
  }
  closedir(d);
  rmdir(dir.c_str());
}

}  // namespace

TEST_CASE("differential: rump tmpfs agrees with the host kernel", "[vfs][differential]") {
  size_t total_ops = 0;
  mode_t old_mask = umask(022);
  for (const Scenario& sc : scenarios()) {
    char tmpl[] = "/tmp/rumpvfs-diff-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    std::string hroot = tmpl;
    Backend host = host_backend();
    Outcome h = run(host, hroot, sc);
    remove_tree(hroot);

    // The rump run uses the same path, so absolute symlinks to the
    // scenario's files are the same bytes in both kernels.
    KernelUp k;
    REQUIRE(rump_sys_umask(022) >= 0);
    REQUIRE(rump_sys_mkdir("/tmp", 01777) == 0);
    REQUIRE(rump_sys_mkdir(hroot.c_str(), 0700) == 0);
    Backend rb = rump_backend();
    Outcome r = run(rb, hroot, sc);

    INFO("scenario " << sc.name);
    REQUIRE(h.lines.size() == r.lines.size());
    for (size_t i = 0; i < h.lines.size(); i++) {
      INFO("op " << i);
      CHECK(r.lines[i] == h.lines[i]);
    }
    CHECK(r.state == h.state);
    total_ops += sc.ops.size();
  }
  umask(old_mask);
  CHECK(total_ops >= 250);
}
