// Differential harness: the same scenarios of file operations run against
// the host kernel (in a fresh mkdtemp directory under /tmp, absolute paths,
// no chdir) and against a rump kernel (a directory of the same path in its
// tmpfs); the return values, errnos and the observable state (type, mode,
// nlink, size, sorted directory listings) must agree. Ops marked peer()
// run in a second process of the same kernel (host: forked before the
// scenario opens anything; rump: rump_lwproc_rfork with an empty
// descriptor table), for locks between processes.
//
// Times are compared as relations, never as clock values: which of
// atime/mtime/ctime an operation changed from values set just before it,
// whether changed times are one clock reading ({m=c}), and explicitly set
// values exactly (op_times).
//
// Deliberate differences (this list is the one place):
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
//     in vfs_test.cc, against the rump kernel. chown changes a file to the
//     owner it has, for the same reason.
//   * atime: the rump tmpfs follows relatime (Linux's default). The times
//     scenario assumes the host's /tmp is mounted relatime too; under
//     noatime or strictatime its atime columns differ. relatime's "a day
//     old" rule is not exercised (a fresh utimensat always leaves ctime
//     newer than any atime set before it).
//   * process ids: F_GETLK's l_pid is compared as the owner's role
//     ("pid:main", "pid:peer", -1 for OFD locks), as the numbers differ.
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <rump/rump_syscalls.h>

#include "rump_test.h"

using rump_test::KernelUp;

namespace {

struct Backend;
struct Scenario;

// A second process of the kernel under test, running some of a scenario's
// ops (by index) with its own descriptor table.
struct Peer {
  virtual ~Peer() = default;
  virtual long run(size_t op_index, std::string& out) = 0;  // errno set on failure
  virtual long pid() = 0;
};

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
  std::function<long(const char*, const struct timespec*, int)> utimensat;
  std::function<long(int, const struct timespec*)> futimens;
  std::function<long(const char*, uid_t, gid_t)> chown;
  std::function<long(int, off_t)> ftruncate;
  std::function<long(int, struct stat*)> fstat;
  std::function<long(int, int)> flock;
  std::function<long()> getpid;
  std::function<long(int, off_t*, int, off_t*, size_t, unsigned)> copy_file_range;
  // A second process for the scenario's ops marked to run there (locks
  // between processes).
  std::function<std::unique_ptr<Peer>(Backend&, const Scenario&, const std::string& root)> make_peer;
};

// One operation: a name for the log, and what it does given the backend,
// the scenario's root directory and its open descriptors (by slot).
struct Op {
  std::string text;
  std::function<long(Backend&, const std::string& root, std::vector<long>& fds, std::string& out)> run;
  bool in_peer = false;  // runs in the scenario's second process
};

// Runs op in the scenario's second process (its descriptor slots are the
// peer's own).
Op peer(Op op) {
  op.text = "peer: " + op.text;
  op.in_peer = true;
  return op;
}

struct Scenario {
  std::string name;
  std::vector<Op> ops;
};

// The host's second process: forked before the scenario opens anything
// (so it shares no open file description with the first), it runs the
// ops it is sent by index and answers with the result, errno and output.
class HostPeer : public Peer {
 public:
  HostPeer(Backend& b, const Scenario& sc, const std::string& root) {
    int to[2], from[2];
    REQUIRE(pipe(to) == 0);
    REQUIRE(pipe(from) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(to[1]);
      ::close(from[0]);
      std::vector<long> fds;
      uint64_t idx;
      while (read_full(to[0], &idx, sizeof idx)) {
        std::string out;
        errno = 0;
        long r = sc.ops.at(idx).run(b, root, fds, out);
        long reply[3] = {r, r < 0 ? errno : 0, static_cast<long>(out.size())};
        if (!write_full(from[1], reply, sizeof reply) || !write_full(from[1], out.data(), out.size())) break;
      }
      _exit(0);
    }
    ::close(to[0]);
    ::close(from[1]);
    cmd_ = to[1];
    reply_ = from[0];
  }
  ~HostPeer() override {
    ::close(cmd_);
    ::close(reply_);
    int st;
    waitpid(pid_, &st, 0);
  }
  long run(size_t op_index, std::string& out) override {
    uint64_t idx = op_index;
    long reply[3];
    REQUIRE(write_full(cmd_, &idx, sizeof idx));
    REQUIRE(read_full(reply_, reply, sizeof reply));
    out.resize(static_cast<size_t>(reply[2]));
    REQUIRE(read_full(reply_, out.data(), out.size()));
    errno = static_cast<int>(reply[1]);
    return reply[0];
  }
  long pid() override { return pid_; }

 private:
  static bool read_full(int fd, void* p, size_t n) {
    for (size_t got = 0; got < n;) {
      ssize_t k = ::read(fd, static_cast<char*>(p) + got, n - got);
      if (k <= 0) return false;
      got += static_cast<size_t>(k);
    }
    return true;
  }
  static bool write_full(int fd, const void* p, size_t n) {
    for (size_t put = 0; put < n;) {
      ssize_t k = ::write(fd, static_cast<const char*>(p) + put, n - put);
      if (k <= 0) return false;
      put += static_cast<size_t>(k);
    }
    return true;
  }
  pid_t pid_;
  int cmd_ = -1, reply_ = -1;
};

// The rump kernel's second process: rfork'ed with an empty descriptor
// table; ops run with the thread switched to it.
class RumpPeer : public Peer {
 public:
  RumpPeer(Backend& b, const Scenario& sc, const std::string& root) : b_(b), sc_(sc), root_(root) {
    lwp* prev = rump_lwproc_curlwp();
    REQUIRE(rump_lwproc_rfork(RUMP_RFCFDG) == 0);
    l_ = rump_lwproc_curlwp();
    pid_ = rump_sys_getpid();
    rump_lwproc_switch(prev);
  }
  ~RumpPeer() override {
    lwp* prev = rump_lwproc_curlwp();
    rump_lwproc_switch(l_);
    rump_lwproc_releaselwp();  // the process exits: its locks go
    rump_lwproc_switch(prev);
  }
  long run(size_t op_index, std::string& out) override {
    lwp* prev = rump_lwproc_curlwp();
    rump_lwproc_switch(l_);
    errno = 0;
    long r = sc_.ops.at(op_index).run(b_, root_, fds_, out);
    int e = errno;
    rump_lwproc_switch(prev);
    errno = e;
    return r;
  }
  long pid() override { return pid_; }

 private:
  Backend& b_;
  const Scenario& sc_;
  std::string root_;
  lwp* l_ = nullptr;
  long pid_ = 0;
  std::vector<long> fds_;
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
  b.utimensat = [](const char* p, const struct timespec* t, int f) { return ::utimensat(AT_FDCWD, p, t, f); };
  b.futimens = [](int fd, const struct timespec* t) { return ::futimens(fd, t); };
  b.chown = [](const char* p, uid_t u, gid_t g) { return ::lchown(p, u, g); };
  b.ftruncate = [](int fd, off_t l) { return ::ftruncate(fd, l); };
  b.fstat = [](int fd, struct stat* st) { return ::fstat(fd, st); };
  b.flock = [](int fd, int op) { return ::flock(fd, op); };
  b.getpid = [] { return static_cast<long>(::getpid()); };
  b.copy_file_range = [](int fi, off_t* oi, int fo, off_t* oo, size_t n, unsigned f) {
    return syscall(SYS_copy_file_range, fi, oi, fo, oo, n, f);
  };
  b.make_peer = [](Backend& b, const Scenario& sc, const std::string& root) -> std::unique_ptr<Peer> {
    return std::make_unique<HostPeer>(b, sc, root);
  };
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
  b.utimensat = [](const char* p, const struct timespec* t, int f) {
    return rump_sys_utimensat(AT_FDCWD, p, t, f);
  };
  b.futimens = [](int fd, const struct timespec* t) { return rump_sys_utimensat(fd, nullptr, t, 0); };
  b.chown = [](const char* p, uid_t u, gid_t g) { return rump_sys_lchown(p, u, g); };
  b.ftruncate = [](int fd, off_t l) { return rump_sys_ftruncate(fd, l); };
  b.fstat = [](int fd, struct stat* st) { return rump_sys_fstat(fd, st); };
  b.flock = [](int fd, int op) { return rump_sys_flock(fd, op); };
  b.getpid = [] { return static_cast<long>(rump_sys_getpid()); };
  b.copy_file_range = [](int fi, off_t* oi, int fo, off_t* oo, size_t n, unsigned f) {
    return rump_sys_copy_file_range(fi, oi, fo, oo, n, f);
  };
  b.make_peer = [](Backend& b, const Scenario& sc, const std::string& root) -> std::unique_ptr<Peer> {
    return std::make_unique<RumpPeer>(b, sc, root);
  };
  return b;
}


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
// copy_file_range between the descriptors in two slots (kNoFd: a number
// that is no descriptor). An offset is a value passed by pointer and
// reported after the call, or kNullOff (the file's position is used) or
// kBadOff (a pointer into the first page: EFAULT).
constexpr int kNoFd = -1;
constexpr off_t kNullOff = INT64_MIN;
constexpr off_t kBadOff = INT64_MIN + 1;
Op op_copy_file_range(int in_slot, off_t in_off, int out_slot, off_t out_off, size_t len, unsigned flags = 0) {
  return {"copy_file_range #" + std::to_string(in_slot) + "@" + std::to_string(in_off) + " #" +
              std::to_string(out_slot) + "@" + std::to_string(out_off) + " " + std::to_string(len) + " " +
              std::to_string(flags),
          [=](Backend& b, const std::string&, std::vector<long>& fds, std::string& out) {
            auto fd = [&](int slot) { return slot == kNoFd ? 999 : static_cast<int>(fds.at(slot)); };
            off_t in = in_off, o = out_off;
            auto ptr = [](off_t& v) {
              return v == kNullOff ? nullptr : v == kBadOff ? reinterpret_cast<off_t*>(8) : &v;
            };
            long r = b.copy_file_range(fd(in_slot), ptr(in), fd(out_slot), ptr(o), len, flags);
            int e = errno;
            out = "offsets " + std::to_string(in) + " " + std::to_string(o);
            errno = e;
            return r;
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

// --- times
//
// op_times sets the watched objects' atime and mtime to known old values
// (or atime to tomorrow: relatime then leaves it alone), waits past the
// host clock's granularity, runs the actions, and reports per object
// whether each time stayed ("="), became one of the explicit values the
// actions set ("@A", "@M") or changed ("+"), and, for times that changed
// together, whether they are equal ({m=c}: one clock reading). Absolute
// clock values are never compared.

constexpr timespec kOldA = {1000000000, 111111111}, kOldM = {1000000500, 222222222};
constexpr timespec kSetA = {1234567890, 123456789}, kSetM = {1234567999, 987654321};

bool ts_eq(const timespec& a, const timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

// A watched object: a path relative to the root, or "#n", descriptor slot n.
long watch_stat(Backend& b, const std::string& r, std::vector<long>& fds, const std::string& w, struct stat* st) {
  if (w[0] == '#') return b.fstat(static_cast<int>(fds.at(std::stoul(w.substr(1)))), st);
  return b.lstat(P(r, w).c_str(), st);
}
long watch_set(Backend& b, const std::string& r, std::vector<long>& fds, const std::string& w, const timespec* t) {
  if (w[0] == '#') return b.futimens(static_cast<int>(fds.at(std::stoul(w.substr(1)))), t);
  return b.utimensat(P(r, w).c_str(), t, AT_SYMLINK_NOFOLLOW);
}

std::string time_class(const timespec& now, const timespec& before) {
  if (ts_eq(now, before)) return "=";
  if (ts_eq(now, kSetA)) return "@A";
  if (ts_eq(now, kSetM)) return "@M";
  return "+";
}

Op op_times(std::string what, std::vector<std::string> watched, std::vector<Op> actions, bool future_atime = false) {
  std::string text = "times " + what + (future_atime ? " (atime ahead)" : "") + ":";
  for (auto& a : actions) text += " {" + a.text + "}";
  return {text, [=](Backend& b, const std::string& r, std::vector<long>& fds, std::string& out) -> long {
            timespec a = kOldA;
            if (future_atime) a = timespec{time(nullptr) + 86400, 0};
            const timespec set[2] = {a, kOldM};
            std::vector<struct stat> before(watched.size());
            for (size_t i = 0; i < watched.size(); i++) {
              if (watch_set(b, r, fds, watched[i], set) != 0 || watch_stat(b, r, fds, watched[i], &before[i]) != 0) {
                out = "cannot set up " + watched[i];
                return -1;
              }
            }
            // Past the host clock's tick (file times use a coarse clock).
            struct timespec pause = {0, 12 * 1000 * 1000};
            nanosleep(&pause, nullptr);
            long rv = 0;
            std::ostringstream o;
            for (const Op& act : actions) {
              std::string ignored;
              errno = 0;
              long x = act.run(b, r, fds, ignored);
              o << (x < 0 ? -errno : (x > 0 ? 1 : 0)) << " ";
              if (x < 0) rv = -1;
            }
            for (size_t i = 0; i < watched.size(); i++) {
              struct stat st {};
              if (watch_stat(b, r, fds, watched[i], &st) != 0) {
                o << watched[i] << ":gone ";
                continue;
              }
              std::string ca = time_class(st.st_atim, before[i].st_atim);
              std::string cm = time_class(st.st_mtim, before[i].st_mtim);
              bool cc = !ts_eq(st.st_ctim, before[i].st_ctim);
              o << watched[i] << ": a" << ca << " m" << cm << " c" << (cc ? "+" : "=");
              if (cm == "+" && cc) o << (ts_eq(st.st_mtim, st.st_ctim) ? " {m=c}" : " {m!=c}");
              if (ca == "+" && cc) o << (ts_eq(st.st_atim, st.st_ctim) ? " {a=c}" : " {a!=c}");
              o << "; ";
            }
            out = o.str();
            return rv;
          }};
}

Op op_utimens(std::string rel, timespec a, timespec m, int flags = 0) {
  return {"utimensat " + rel + " " + std::to_string(a.tv_nsec) + " " + std::to_string(m.tv_nsec),
          [=](Backend& b, const std::string& r, std::vector<long>&, std::string&) {
            const timespec t[2] = {a, m};
            return b.utimensat(P(r, rel).c_str(), t, flags);
          }};
}
Op op_utimens_null(std::string rel) {
  return op_path("utimensat-null", rel, [](Backend& b, const std::string& p) { return b.utimensat(p.c_str(), nullptr, 0); });
}
// chown to the owner it already has (-1 keeps a field): the host run may
// not be root.
Op op_chown_same(std::string rel, bool keep_both) {
  return op_path(keep_both ? "chown-1-1" : "chown-same", rel, [=](Backend& b, const std::string& p) -> long {
    if (keep_both) return b.chown(p.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(-1));
    struct stat st {};
    if (b.lstat(p.c_str(), &st) != 0) return -1;
    return b.chown(p.c_str(), st.st_uid, st.st_gid);
  });
}
Op op_ftruncate(int slot, off_t len) {
  return {"ftruncate #" + std::to_string(slot) + " " + std::to_string(len),
          [=](Backend& b, const std::string&, std::vector<long>& fds, std::string&) {
            return b.ftruncate(static_cast<int>(fds.at(slot)), len);
          }};
}

// --- locks

// fcntl record locks: cmd on slot with the given flock fields; F_GETLK
// variants report what they found (the owner's pid as "pid:N", renamed by
// the run to the process's role).
Op op_lock(int slot, int cmd, short type, short whence, off_t start, off_t len, pid_t pid = 0) {
  std::ostringstream t;
  t << "fcntl #" << slot << " cmd " << cmd << " type " << type << " whence " << whence << " [" << start << ","
    << len << "]" << (pid ? " pid " + std::to_string(pid) : "");
  return {t.str(), [=](Backend& b, const std::string&, std::vector<long>& fds, std::string& out) {
            struct flock fl {};
            fl.l_type = type;
            fl.l_whence = whence;
            fl.l_start = start;
            fl.l_len = len;
            fl.l_pid = pid;
            long r = b.fcntl(static_cast<int>(fds.at(slot)), cmd, reinterpret_cast<unsigned long>(&fl));
            if (r == 0 && (cmd == F_GETLK || cmd == F_OFD_GETLK)) {
              std::ostringstream o;
              o << "type " << fl.l_type;
              if (fl.l_type != F_UNLCK)
                o << " whence " << fl.l_whence << " start " << fl.l_start << " len " << fl.l_len << " pid:" << fl.l_pid;
              out = o.str();
            }
            return r;
          }};
}
Op op_flock(int slot, int how) {
  return {"flock #" + std::to_string(slot) + " " + std::to_string(how),
          [=](Backend& b, const std::string&, std::vector<long>& fds, std::string&) {
            return b.flock(static_cast<int>(fds.at(slot)), how);
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
  // Linux checks the tree's shape (a directory moved below itself: EINVAL;
  // the target an ancestor of the source: ENOTEMPTY) before the types of
  // source and target (ENOTDIR, EISDIR).
  s.push_back({"rename-ancestry-first",
               {op_mkdir("d"), op_mkdir("d/sub"), op_open("d/sub/g", O_CREAT | O_WRONLY), op_close(0),
                op_open("f", O_CREAT | O_WRONLY), op_close(1), op_rename("d", "d/sub/g"), op_rename("d", "d/sub"),
                op_rename("d/sub", "d/sub/g"), op_rename("d/sub/g", "d"), op_rename("d/sub", "d"),
                op_rename("d/sub/g", "d", RENAME_EXCHANGE), op_rename("d/sub", "d", RENAME_EXCHANGE),
                op_rename("d", "d/sub/g", RENAME_EXCHANGE), op_rename("d", "d/sub/new"), op_rename("f", "d"),
                op_rename("d/sub", "f"), op_rename("d", "f/"), op_rename("f", "d/sub/g"), op_stat("d/sub/g", true),
                op_stat("d", true)}});
  s.push_back({"renameat2",
               {op_open("a", O_CREAT | O_WRONLY), op_write(0, "AAA"), op_close(0), op_open("b", O_CREAT | O_WRONLY),
                op_write(1, "B"), op_close(1), op_mkdir("d"), op_rename("a", "b", RENAME_NOREPLACE),
                op_rename("a", "b", RENAME_EXCHANGE), op_stat("a", true), op_stat("b", true),
                op_rename("a", "zz", RENAME_EXCHANGE), op_rename("a", "d", RENAME_EXCHANGE), op_stat("d", true),
                op_rename("a", "b", RENAME_EXCHANGE | RENAME_NOREPLACE), op_rename("d", "c", RENAME_NOREPLACE)}});
  // copy_file_range's checks in Linux's order: descriptors, offsets copied
  // in, flags, kinds of file, open modes, wrapping offsets; the count cut
  // at the input's end of file before the overlap check; negative offsets.
  s.push_back({"copy-file-range",
               {op_open("f", O_CREAT | O_RDWR), op_write(0, "0123456789"), op_open("g", O_CREAT | O_RDWR),  // #0 #1
                op_mkdir("d"), op_open("d", O_RDONLY | O_DIRECTORY), op_open("g", O_RDONLY),                 // #2 #3
                op_open("g", O_WRONLY | O_APPEND),                                                         // #4
                op_copy_file_range(kNoFd, kBadOff, 1, 0, 5, 1), op_copy_file_range(0, kBadOff, 1, 0, 5, 1),
                op_copy_file_range(0, 0, 1, kBadOff, 5, 1), op_copy_file_range(0, 0, kNoFd, kBadOff, 5, 1),
                op_copy_file_range(2, 0, 1, 0, 5, 1), op_copy_file_range(0, 0, 1, 0, 5, 2),
                op_copy_file_range(2, 0, 3, 0, 5), op_copy_file_range(0, 0, 2, 0, 5),
                op_copy_file_range(3, -1, 2, 0, 5), op_copy_file_range(0, -1, 4, 0, 5),
                op_copy_file_range(0, 0, 3, 0, 5), op_copy_file_range(3, 0, 1, 0, 5),
                op_copy_file_range(0, -1, 1, 0, 5), op_copy_file_range(0, 0, 1, -1, 5),
                op_copy_file_range(0, -4096, 1, 0, 5), op_copy_file_range(0, 0, 1, -4096, 5),
                op_copy_file_range(0, -4096, 1, 0, 0), op_copy_file_range(0, 0, 0, 0, 100),
                op_copy_file_range(0, 0, 0, 3, 5), op_copy_file_range(0, 20, 0, 0, 100),
                op_copy_file_range(0, 10, 0, 5, 100), op_copy_file_range(0, 5, 0, 0, 100),
                op_copy_file_range(0, 0, 1, 0, 100), op_copy_file_range(0, 0, 1, 0, 0),
                op_copy_file_range(0, kNullOff, 1, kNullOff, 3), op_lseek(0, 2, SEEK_SET),
                op_copy_file_range(0, kNullOff, 1, kNullOff, 3), op_lseek(0, 0, SEEK_CUR), op_lseek(1, 0, SEEK_CUR),
                op_copy_file_range(0, kNullOff, 1, 20, 4), op_lseek(0, 0, SEEK_CUR), op_stat("g", true),
                op_lseek(1, 0, SEEK_SET), op_read(1, 64), op_lseek(0, 0, SEEK_SET), op_read(0, 64)}});
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
  // Which times each operation changes (see op_times). Slots: #0 f, #1 t,
  // #2 the directory e, #3 d/x, #4 d (for getdents), later opens after.
  s.push_back({"times",
               {op_mkdir("d"), op_mkdir("e"), op_open("f", O_CREAT | O_RDWR), op_write(0, "abc"),
                op_open("t", O_CREAT | O_RDWR), op_write(1, "data"), op_symlink("f", "sl"),
                op_open("e", O_RDONLY | O_DIRECTORY), op_open("d/x", O_CREAT | O_RDWR), op_open("d", O_RDONLY | O_DIRECTORY),
                op_times("write", {"f", ""}, {op_write(0, "x")}),
                op_times("empty write", {"f"}, {op_write(0, "")}),
                op_times("read", {"f"}, {op_lseek(0, 0, SEEK_SET), op_read(0, 2)}),
                op_times("read", {"f"}, {op_lseek(0, 0, SEEK_SET), op_read(0, 2)}, true),
                op_times("read at EOF", {"f"}, {op_lseek(0, 0, SEEK_END), op_read(0, 2)}),
                op_times("stat, open, close", {"f"}, {op_stat("f", true), op_open("f", O_RDONLY), op_close(5)}),
                op_times("truncate shorter", {"f"}, {op_truncate("f", 2)}),
                op_times("ftruncate longer", {"f"}, {op_ftruncate(0, 10)}),
                op_times("chmod", {"f", ""}, {op_chmod("f", 0640)}),
                op_times("chown -1 -1", {"f"}, {op_chown_same("f", true)}),
                op_times("chown to the owner", {"f"}, {op_chown_same("f", false)}),
                op_times("link", {"f", "", "d"}, {op_link("f", "d/g")}),
                op_times("unlink a second name", {"f", "d"}, {op_unlink("d/g")}),
                op_times("rename in a directory", {"#0", ""}, {op_rename("f", "h")}),
                op_times("rename across directories", {"#0", "", "d"}, {op_rename("h", "d/h")}),
                op_times("rename a directory across", {"#2", "", "d"}, {op_rename("e", "d/e")}),
                op_times("rename over a file", {"#0", "#3", "d"}, {op_rename("d/h", "d/x")}),
                op_times("mkdir", {"d"}, {op_mkdir("d/sub")}),
                op_times("rmdir", {"d", ""}, {op_rmdir("d/sub")}),
                op_times("create", {"d"}, {op_open("d/new", O_CREAT | O_WRONLY)}),  // #6
                op_times("symlink, mkfifo", {"d"}, {op_symlink("x", "d/sl2"), op_mkfifo("d/fifo")}),
                op_times("O_TRUNC of a non-empty file", {"t"}, {op_open("t", O_WRONLY | O_TRUNC)}),  // #7
                op_times("write after O_APPEND", {"t"}, {op_open("t", O_WRONLY | O_APPEND), op_write(8, "z")}),  // #8
                op_times("utimensat NULL", {"t"}, {op_utimens_null("t")}),
                op_times("UTIME_NOW both", {"t"}, {op_utimens("t", {0, UTIME_NOW}, {0, UTIME_NOW})}),
                op_times("UTIME_OMIT both", {"t"}, {op_utimens("t", {0, UTIME_OMIT}, {0, UTIME_OMIT})}),
                op_times("UTIME_NOW, UTIME_OMIT", {"t"}, {op_utimens("t", {0, UTIME_NOW}, {0, UTIME_OMIT})}),
                op_times("UTIME_OMIT, explicit", {"t"}, {op_utimens("t", {0, UTIME_OMIT}, kSetM)}),
                op_times("explicit both", {"t"}, {op_utimens("t", kSetA, kSetM)}),
                op_times("explicit on a symlink", {"sl", "d/h"},
                         {op_utimens("sl", kSetA, kSetM, AT_SYMLINK_NOFOLLOW)}),
                op_times("getdents", {"d"}, {op_lseek(4, 0, SEEK_SET), op_getdents(4)}),
                op_times("getdents", {"d"}, {op_lseek(4, 0, SEEK_SET), op_getdents(4)}, true),
                op_times("readlink", {"sl"}, {op_readlink("sl")}),
                op_times("readlink", {"sl"}, {op_readlink("sl")}, true),
                op_times("bad utimensat", {"t"}, {op_utimens("t", {0, 1000000000}, kSetM)})}});
  // Record locks between two processes, OFD locks, flock between open
  // file descriptions; release on close; F_GETLK's report; EINVAL/EBADF.
  // Slots (in the order of the opens; a close leaves its slot): main #0 f
  // O_RDWR, #1 O_RDONLY, #2 O_WRONLY, #3 O_RDWR, #4 and #5 O_RDWR, #6 dup
  // of #4, #7 O_PATH; peer #0 f O_RDWR, #1 O_RDONLY.
  s.push_back({"locks",
               {op_open("f", O_CREAT | O_RDWR), op_write(0, "0123456789"), op_open("f", O_RDONLY),
                op_open("f", O_WRONLY), peer(op_open("f", O_RDWR)), peer(op_open("f", O_RDONLY)),
                op_lock(0, F_SETLK, F_WRLCK, SEEK_SET, 0, 5),
                peer(op_lock(0, F_SETLK, F_WRLCK, SEEK_SET, 0, 5)),
                peer(op_lock(0, F_SETLK, F_RDLCK, SEEK_SET, 4, 1)),
                peer(op_lock(0, F_GETLK, F_RDLCK, SEEK_SET, 0, 0)),
                peer(op_lock(0, F_SETLK, F_WRLCK, SEEK_SET, 5, 5)),
                op_lock(0, F_GETLK, F_WRLCK, SEEK_SET, 0, 0),
                op_lock(0, F_GETLK, F_WRLCK, SEEK_SET, 0, 5),
                op_lock(0, F_GETLK, F_RDLCK, SEEK_END, -2, 0),
                peer(op_lock(1, F_GETLK, F_WRLCK, SEEK_CUR, 2, -2)),
                // Adjacent locks of one owner merge; an unlock in the middle splits.
                op_lock(0, F_SETLK, F_WRLCK, SEEK_SET, 20, 5), op_lock(0, F_SETLK, F_WRLCK, SEEK_SET, 25, 5),
                peer(op_lock(0, F_GETLK, F_WRLCK, SEEK_SET, 15, 100)),
                op_lock(0, F_SETLK, F_UNLCK, SEEK_SET, 22, 2),
                peer(op_lock(0, F_GETLK, F_WRLCK, SEEK_SET, 15, 100)),
                peer(op_lock(0, F_GETLK, F_WRLCK, SEEK_SET, 23, 100)),
                peer(op_lock(0, F_SETLK, F_WRLCK, SEEK_SET, 22, 2)),
                op_lock(0, F_SETLK, F_RDLCK, SEEK_SET, 40, 0), peer(op_lock(0, F_GETLK, F_WRLCK, SEEK_SET, 1000, 1)),
                peer(op_lock(0, F_SETLK, F_RDLCK, SEEK_SET, 1000, 1)),
                // Errors: bad l_whence, l_type, range; the open mode.
                op_lock(0, F_SETLK, F_WRLCK, 99, 0, 1), op_lock(0, F_SETLK, 77, SEEK_SET, 0, 1),
                op_lock(0, F_GETLK, 77, SEEK_SET, 0, 1), op_lock(0, F_GETLK, F_UNLCK, SEEK_SET, 0, 1),
                op_lock(0, F_SETLK, F_WRLCK, SEEK_SET, -1, 1), op_lock(0, F_SETLK, F_WRLCK, SEEK_SET, 2, -3),
                op_lock(0, F_SETLK, 77, SEEK_SET, -1, 1), op_lock(1, F_SETLK, F_WRLCK, 99, 0, 1),
                op_lock(1, F_SETLK, F_WRLCK, SEEK_SET, 0, 1), op_lock(2, F_SETLK, F_RDLCK, SEEK_SET, 0, 1),
                op_lock(1, F_SETLK, F_RDLCK, SEEK_SET, 60, 1), op_lock(2, F_SETLK, F_WRLCK, SEEK_SET, 61, 1),
                op_lock(1, F_GETLK, F_WRLCK, SEEK_SET, 0, 1), op_lock(2, F_SETLK, F_UNLCK, SEEK_SET, 0, 0),
                op_lock(1, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1, 0), op_lock(0, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1, 7),
                op_lock(1, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1, 7),
                // Closing any descriptor of the file drops the process's locks.
                op_close(1), peer(op_lock(0, F_GETLK, F_WRLCK, SEEK_SET, 0, 0)),
                peer(op_lock(0, F_SETLK, F_WRLCK, SEEK_SET, 0, 5)),
                // OFD locks: per open file description, conflicting with
                // other descriptions of the same process too.
                op_open("f", O_RDWR), op_lock(0, F_OFD_SETLK, F_WRLCK, SEEK_SET, 100, 5),  // #3
                op_lock(3, F_OFD_SETLK, F_WRLCK, SEEK_SET, 102, 1), op_lock(3, F_OFD_GETLK, F_RDLCK, SEEK_SET, 0, 0),
                peer(op_lock(0, F_GETLK, F_RDLCK, SEEK_SET, 100, 1)), peer(op_lock(0, F_OFD_GETLK, F_RDLCK, SEEK_SET, 100, 1)),
                op_lock(3, F_SETLK, F_WRLCK, SEEK_SET, 100, 1),
                op_lock(0, F_OFD_SETLK, F_UNLCK, SEEK_SET, 100, 5), op_lock(3, F_OFD_SETLK, F_WRLCK, SEEK_SET, 102, 1),
                op_close(3), op_lock(0, F_OFD_SETLK, F_WRLCK, SEEK_SET, 102, 1),
                // flock: between descriptions, kept by a dup, released by
                // the last close; independent of record locks.
                op_open("f", O_RDWR), op_open("f", O_RDWR), op_flock(4, LOCK_EX), op_flock(5, LOCK_SH | LOCK_NB),
                peer(op_flock(1, LOCK_SH | LOCK_NB)), op_dup(4), op_close(4),  // #6
                peer(op_flock(1, LOCK_SH | LOCK_NB)), op_close(6), peer(op_flock(1, LOCK_SH | LOCK_NB)),
                op_flock(5, LOCK_SH | LOCK_NB), op_flock(5, LOCK_EX | LOCK_NB), peer(op_flock(1, LOCK_UN)),
                op_flock(5, LOCK_EX | LOCK_NB), peer(op_flock(1, LOCK_SH | LOCK_NB)), op_flock(5, 0),
                op_flock(5, LOCK_SH | LOCK_EX), op_flock(5, 99), op_flock(5, LOCK_UN),
                peer(op_flock(1, LOCK_EX | LOCK_NB)), op_open("f", O_PATH), op_flock(7, LOCK_SH),  // #7
                op_lock(7, F_GETLK, F_RDLCK, SEEK_SET, 0, 0)}});
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

// Process ids in an op's output ("pid:N") become the role of the process
// ("pid:main", "pid:peer"): the numbers differ between the kernels.
std::string name_pids(std::string out, long main_pid, long peer_pid) {
  for (auto [pid, role] : {std::pair<long, const char*>{main_pid, "main"}, {peer_pid, "peer"}}) {
    std::string from = "pid:" + std::to_string(pid);
    for (size_t at; (at = out.find(from)) != std::string::npos;) out.replace(at, from.size(), std::string("pid:") + role);
  }
  return out;
}

Outcome run(Backend& b, const std::string& root, const Scenario& sc) {
  Outcome o;
  std::vector<long> fds;
  std::unique_ptr<Peer> second;
  for (const Op& op : sc.ops)
    if (op.in_peer && !second) second = b.make_peer(b, sc, root);
  long main_pid = b.getpid(), peer_pid = second ? second->pid() : -2;
  for (size_t i = 0; i < sc.ops.size(); i++) {
    const Op& op = sc.ops[i];
    std::string out;
    errno = 0;
    long r = op.in_peer ? second->run(i, out) : op.run(b, root, fds, out);
    int e = r < 0 ? errno : 0;
    std::ostringstream line;
    line << op.text << " -> " << (r < 0 ? -1 : r) << " errno " << e;
    if (!out.empty()) line << " [" << name_pids(out, main_pid, peer_pid) << "]";
    o.lines.push_back(line.str());
  }
  for (long fd : fds)
    if (fd >= 0) b.close(static_cast<int>(fd));
  second.reset();
  o.state = snapshot(b, root);
  return o;
}

// The scenario called name (REQUIRE: the table has it).
Scenario scenario(const std::string& name) {
  for (Scenario& sc : scenarios())
    if (sc.name == name) return std::move(sc);
  FAIL("no scenario " << name);
  return {};
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

// Runs the scenario called name against the host kernel and against a
// fresh rump kernel; every op's line and the final tree must agree.
void compare_with_host(const std::string& name) {
  const Scenario sc = scenario(name);
  REQUIRE(!sc.ops.empty());
  mode_t old_mask = umask(022);
  char tmpl[] = "/tmp/rumpvfs-diff-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string hroot = tmpl;
  Backend host = host_backend();
  Outcome h = run(host, hroot, sc);
  remove_tree(hroot);
  umask(old_mask);

  // The rump run uses the same path, so absolute symlinks to the
  // scenario's files are the same bytes in both kernels.
  KernelUp k;
  REQUIRE(rump_sys_umask(022) >= 0);
  REQUIRE(rump_sys_mkdir("/tmp", 01777) == 0);
  REQUIRE(rump_sys_mkdir(hroot.c_str(), 0700) == 0);
  Backend rb = rump_backend();
  Outcome r = run(rb, hroot, sc);

  REQUIRE(h.lines.size() == sc.ops.size());
  REQUIRE(r.lines.size() == sc.ops.size());
  for (size_t i = 0; i < h.lines.size(); i++) {
    INFO("op " << i);
    CHECK(r.lines[i] == h.lines[i]);
  }
  CHECK(r.state == h.state);
}

// The scenarios the test cases below run, in the table's order.
const char* const kCovered[] = {"create-write-read", "open-errors",  "mkdir-rmdir",    "unlink",
                                "symlinks",          "creat-through-symlinks", "hard-links", "rename",
                                "rename-ancestry-first", "renameat2", "copy-file-range", "chmod-access-truncate",  "fifo-and-nodes",
                                "descriptors",       "times",        "locks",          "bulk-0",
                                "bulk-1",            "bulk-2",       "bulk-3"};

}  // namespace

TEST_CASE("differential: every scenario in the table has its test case", "[vfs][differential]") {
  std::vector<std::string> table, covered(std::begin(kCovered), std::end(kCovered));
  for (const Scenario& sc : scenarios()) table.push_back(sc.name);
  CHECK(table == covered);
}

TEST_CASE("differential: create, write, seek past the end, read, close twice and O_TRUNC as on the host",
          "[vfs][differential]") {
  compare_with_host("create-write-read");
}

TEST_CASE("differential: open's errors (missing, empty, directories, trailing slashes, O_EXCL, O_DIRECTORY) "
          "and O_PATH as on the host",
          "[vfs][differential]") {
  compare_with_host("open-errors");
}

TEST_CASE("differential: mkdir and rmdir with '.', '..', trailing slashes and non-empty directories as on the host",
          "[vfs][differential]") {
  compare_with_host("mkdir-rmdir");
}

TEST_CASE("differential: unlink and unlinkat of files, directories and trailing slashes as on the host",
          "[vfs][differential]") {
  compare_with_host("unlink");
}

TEST_CASE("differential: relative, dangling, looping and trailing-slash symlinks resolve as on the host",
          "[vfs][differential]") {
  compare_with_host("symlinks");
}

TEST_CASE("differential: open(O_CREAT) through symlinks creates the target, or fails, as on the host",
          "[vfs][differential]") {
  compare_with_host("creat-through-symlinks");
}

TEST_CASE("differential: hard links count, survive unlink of the other name and refuse directories as on the host",
          "[vfs][differential]") {
  compare_with_host("hard-links");
}

TEST_CASE("differential: rename of files and directories, onto each other and into themselves, as on the host",
          "[vfs][differential]") {
  compare_with_host("rename");
}

TEST_CASE("differential: renameat2 RENAME_NOREPLACE and RENAME_EXCHANGE as on the host", "[vfs][differential]") {
  compare_with_host("renameat2");
}

TEST_CASE("differential: rename checks that a directory does not move below itself before the types, as on the host",
          "[vfs][differential]") {
  compare_with_host("rename-ancestry-first");
}

TEST_CASE("differential: copy_file_range's errors in Linux's order, cut at end of file, overlaps, as on the host",
          "[vfs][differential]") {
  compare_with_host("copy-file-range");
}

TEST_CASE("differential: chmod, access and truncate as on the host", "[vfs][differential]") {
  compare_with_host("chmod-access-truncate");
}

TEST_CASE("differential: mkfifo makes a FIFO node as on the host", "[vfs][differential]") {
  compare_with_host("fifo-and-nodes");
}

TEST_CASE("differential: dup, lseek, fcntl flags, reads of directories and O_PATH descriptors as on the host",
          "[vfs][differential]") {
  compare_with_host("descriptors");
}

TEST_CASE("differential: each operation changes the same atime, mtime and ctime as on the host",
          "[vfs][differential]") {
  compare_with_host("times");
}

TEST_CASE("differential: record, OFD and flock locks between two processes as on the host",
          "[vfs][differential]") {
  compare_with_host("locks");
}

TEST_CASE("differential: many files in nested directories, written, renamed, linked and removed, as on the host",
          "[vfs][differential]") {
  const int round = GENERATE(0, 1, 2, 3);
  compare_with_host("bulk-" + std::to_string(round));
}

