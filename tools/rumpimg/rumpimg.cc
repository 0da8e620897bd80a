// rumpimg: move files in and out of ext2/ext3/ext4 disk images without
// root, a loop device or FUSE: the kernel's own file-system driver runs in
// this process (a rump kernel), with the image as its block device.
//
// A path inside an image is written IMAGE:PATH, as scp writes remote
// paths: rumpimg ls disk.img:/etc, rumpimg cp -a tree disk.img:/srv. See
// usage() for the commands. Every file operation is one system call made
// either to the host kernel or to the rump kernel through the same Side
// interface, so a copy in either direction is the same code. A copy from
// one image to another runs two kernels, one per image.
#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpvfs.h>

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace {

const char* g_prog = "rumpimg";
constexpr const char* kMountPoint = "/img";

// ----------------------------------------------------------------- sides

// The rump kernels: one per image named on the command line (at most two,
// for cp from one image to another).
rump_kernel* g_kernels[2];

// Where a path lives: the host, or the image mounted in a rump kernel.
// call() is the raw system call (host syscall(2) or rump_syscall in that
// image's kernel), -1 and errno on failure.
struct Side {
  bool image;
  int kernel = 0;  // which of g_kernels
  long call(long nr, long a0 = 0, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0) const {
    if (!image) return syscall(nr, a0, a1, a2, a3, a4, a5);
    if (g_kernels[1]) rump_kernel_set_current(g_kernels[kernel]);
    long a[6] = {a0, a1, a2, a3, a4, a5};
    long r = rump_syscall(nr, a);
    if (r < 0 && r >= -4095) {
      errno = static_cast<int>(-r);
      return -1;
    }
    return r;
  }
  // The path as this side names it.
  std::string real(const std::string& p) const { return image ? std::string(kMountPoint) + p : p; }
};

template <class T>
long L(T v) {
  if constexpr (std::is_pointer_v<T>)
    return static_cast<long>(reinterpret_cast<uintptr_t>(v));
  else
    return static_cast<long>(v);
}

const Side kHostSide{false};
const Side kImageSide{true};
const Side kSecondImageSide{true, 1};

// A command-line operand: a host path, or IMAGE:PATH.
struct Operand {
  bool in_image = false;
  bool second = false;  // in the second image (cp between two images)
  std::string image;  // host path of the image
  std::string path;   // inside the image (absolute) or on the host
  std::string text;   // as written
  const Side& side() const { return in_image ? (second ? kSecondImageSide : kImageSide) : kHostSide; }
  std::string real() const { return side().real(path); }
};

// IMAGE:PATH when the part before a colon names an existing host file or
// block device (so host paths with colons still work).
Operand parse_operand(const std::string& s) {
  Operand o;
  o.text = s;
  for (size_t at = s.find(':'); at != std::string::npos; at = s.find(':', at + 1)) {
    std::string img = s.substr(0, at);
    struct stat st;
    if (!img.empty() && stat(img.c_str(), &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
      o.in_image = true;
      o.image = img;
      o.path = s.substr(at + 1);
      if (o.path.empty() || o.path[0] != '/') o.path = "/" + o.path;
      while (o.path.size() > 1 && o.path.back() == '/') o.path.pop_back();
      return o;
    }
  }
  o.path = s;
  return o;
}

std::string base_name(const std::string& p) {
  std::string s = p;
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  size_t at = s.rfind('/');
  return at == std::string::npos ? s : s.substr(at + 1);
}

std::string join(const std::string& dir, const std::string& name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// ---------------------------------------------------------------- errors

int g_status = 0;

void fail(const char* fmt, ...) {
  std::fprintf(stderr, "%s: ", g_prog);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
  g_status = 1;
}

[[noreturn]] void die(int status, const char* fmt, ...) {
  std::fprintf(stderr, "%s: ", g_prog);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
  std::exit(status);
}

// ---------------------------------------------------------------- kernel

// Which driver name the image's superblock asks for: ext4 when it uses a
// feature ext3 lacks, ext3 with a journal, else ext2. Empty: no ext
// superblock.
std::string detect_type(const std::string& image) {
  int fd = open(image.c_str(), O_RDONLY);
  if (fd < 0) return "";
  unsigned char sb[1024];
  ssize_t n = pread(fd, sb, sizeof sb, 1024);
  close(fd);
  if (n != static_cast<ssize_t>(sizeof sb)) return "";
  auto le32 = [&](int off) {
    return uint32_t{sb[off]} | uint32_t{sb[off + 1]} << 8 | uint32_t{sb[off + 2]} << 16 | uint32_t{sb[off + 3]} << 24;
  };
  if (sb[56] != 0x53 || sb[57] != 0xef) return "";
  uint32_t compat = le32(92), incompat = le32(96), ro_compat = le32(100);
  // INCOMPAT beyond filetype|recover|journal_dev|meta_bg, or RO_COMPAT
  // beyond sparse_super|large_file|btree_dir: ext4.
  if ((incompat & ~uint32_t{0x0002 | 0x0004 | 0x0008 | 0x0010}) || (ro_compat & ~uint32_t{0x1 | 0x2 | 0x4})) return "ext4";
  if (compat & 0x0004) return "ext3";
  return "ext2";
}

struct Kernel {
  rump_kernel* k = nullptr;
  bool mounted = false;
  ~Kernel() {
    if (k) rump_kernel_set_current(k);
    if (mounted) {
      if (rump_sys_umount2(kMountPoint, 0) != 0) fail("cannot unmount the image: %s", std::strerror(errno));
    }
    if (k) rump_kernel_halt(k);
  }
};

void boot_and_mount(Kernel& kern, const std::string& image, std::string type, bool write) {
  if (type.empty()) type = detect_type(image);
  if (type.empty()) die(1, "%s: no ext2/ext3/ext4 file system found (use --type)", image.c_str());
  rump_boot_config cfg;
  rump_boot_config_init(&cfg);
  cfg.verbose = 0;
  if (int e = rump_kernel_boot(&cfg, &kern.k)) die(1, "cannot start the kernel: %s", std::strerror(e));
  rump_kernel_set_current(kern.k);
  if (rump_pub_etfs_register("/dev/image", image.c_str(), RUMP_ETFS_BLK) != 0)
    die(1, "%s: %s", image.c_str(), std::strerror(errno));
  if (rump_sys_mkdir(kMountPoint, 0755) != 0) die(1, "cannot make the mount point: %s", std::strerror(errno));
  if (rump_sys_mount("/dev/image", kMountPoint, type.c_str(), write ? 0 : MS_RDONLY, nullptr) != 0) {
    char msg[512] = "";
    rump_msgbuf_read(msg, sizeof msg);
    die(1, "%s: cannot mount as %s: %s", image.c_str(), type.c_str(), std::strerror(errno));
  }
  kern.mounted = true;
}

// --------------------------------------------------------- file helpers

bool xlstat(const Side& s, const std::string& p, struct stat* st) {
  return s.call(SYS_newfstatat, AT_FDCWD, L(p.c_str()), L(st), AT_SYMLINK_NOFOLLOW) == 0;
}
bool xstat(const Side& s, const std::string& p, struct stat* st) {
  return s.call(SYS_newfstatat, AT_FDCWD, L(p.c_str()), L(st), 0) == 0;
}

// The names in a directory (without . and ..), sorted.
bool list_dir(const Side& s, const std::string& p, std::vector<std::string>& names) {
  int fd = static_cast<int>(s.call(SYS_openat, AT_FDCWD, L(p.c_str()), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0));
  if (fd < 0) return false;
  char buf[16384];
  for (;;) {
    long n = s.call(SYS_getdents64, fd, L(buf), sizeof buf);
    if (n < 0) {
      int e = errno;
      s.call(SYS_close, fd);
      errno = e;
      return false;
    }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      std::string nm = d->d_name;
      if (nm != "." && nm != "..") names.push_back(nm);
      off += d->d_reclen;
    }
  }
  s.call(SYS_close, fd);
  std::sort(names.begin(), names.end());
  return true;
}

// ---------------------------------------------------------------- progress

struct Progress {
  bool on = false;
  uint64_t total = 0, done = 0, shown = 0;
  void add(uint64_t n) {
    done += n;
    if (!on || done - shown < (1u << 20)) return;
    shown = done;
    draw();
  }
  void draw() const {
    int pct = total ? static_cast<int>(done * 100 / total) : 100;
    if (pct > 100) pct = 100;
    char bar[41];
    int fill = pct * 40 / 100;
    for (int i = 0; i < 40; i++) bar[i] = i < fill ? '#' : ' ';
    bar[40] = 0;
    std::fprintf(stderr, "\r[%s] %3d%% %.1f/%.1f MiB", bar, pct, done / 1048576.0, total / 1048576.0);
    std::fflush(stderr);
  }
  void finish() const {
    if (!on || shown == 0) return;
    draw();
    std::fputc('\n', stderr);
  }
};

uint64_t tree_bytes(const Side& s, const std::string& p) {
  struct stat st;
  if (!xlstat(s, p, &st)) return 0;
  if (S_ISREG(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  if (!S_ISDIR(st.st_mode)) return 0;
  std::vector<std::string> names;
  if (!list_dir(s, p, names)) return 0;
  uint64_t t = 0;
  for (auto& n : names) t += tree_bytes(s, join(p, n));
  return t;
}

// -------------------------------------------------------------------- cp

struct CopyOpts {
  bool recursive = false;
  bool preserve = false;  // -a / -p: modes, owners, times, xattrs
  bool deref = true;      // follow symlinks at the top (not with -a or -r)
};

struct Copier {
  const Side& from;
  const Side& to;
  CopyOpts o;
  Progress progress;
  // Hard links: (device, inode) of a source with several names → where
  // its first copy went.
  std::map<std::pair<dev_t, ino_t>, std::string> linked;

  bool copy_data(const std::string& src, const std::string& dst, const struct stat& st) {
    int in = static_cast<int>(from.call(SYS_openat, AT_FDCWD, L(src.c_str()), O_RDONLY | O_CLOEXEC, 0));
    if (in < 0) return fail("cannot open '%s': %s", src.c_str(), std::strerror(errno)), false;
    int out = static_cast<int>(
        to.call(SYS_openat, AT_FDCWD, L(dst.c_str()), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777));
    if (out < 0) {
      fail("cannot create '%s': %s", dst.c_str(), std::strerror(errno));
      from.call(SYS_close, in);
      return false;
    }
    std::vector<char> buf(1 << 20);
    bool ok = true;
    off_t size = st.st_size, pos = 0;
    // Holes stay holes: only the data extents are copied.
    while (ok && pos < size) {
      off_t data = from.call(SYS_lseek, in, pos, SEEK_DATA);
      if (data < 0) break;  // no more data: the rest is a hole
      off_t hole = from.call(SYS_lseek, in, data, SEEK_HOLE);
      if (hole < 0) hole = size;
      for (off_t at = data; ok && at < hole;) {
        size_t want = static_cast<size_t>(std::min<off_t>(hole - at, static_cast<off_t>(buf.size())));
        long n = from.call(SYS_pread64, in, L(buf.data()), want, at);
        if (n <= 0) {
          if (n < 0) ok = false, fail("error reading '%s': %s", src.c_str(), std::strerror(errno));
          hole = at;
          break;
        }
        for (long w = 0; w < n;) {
          long m = to.call(SYS_pwrite64, out, L(buf.data() + w), n - w, at + w);
          if (m <= 0) {
            ok = false;
            fail("error writing '%s': %s", dst.c_str(), std::strerror(m < 0 ? errno : EIO));
            break;
          }
          w += m;
        }
        at += n;
        progress.add(static_cast<uint64_t>(n));
      }
      pos = hole;
    }
    if (ok && to.call(SYS_ftruncate, out, size) != 0) ok = false, fail("cannot size '%s': %s", dst.c_str(), std::strerror(errno));
    from.call(SYS_close, in);
    if (to.call(SYS_close, out) != 0 && ok) ok = false, fail("error writing '%s': %s", dst.c_str(), std::strerror(errno));
    return ok;
  }

  void copy_xattrs(const std::string& src, const std::string& dst) {
    std::vector<char> names(65536);
    long n = from.call(SYS_llistxattr, L(src.c_str()), L(names.data()), names.size());
    if (n <= 0) return;
    std::vector<char> value(65536);
    for (long off = 0; off < n;) {
      const char* name = names.data() + off;
      off += static_cast<long>(std::strlen(name)) + 1;
      long v = from.call(SYS_lgetxattr, L(src.c_str()), L(name), L(value.data()), value.size());
      if (v < 0) continue;
      if (to.call(SYS_lsetxattr, L(dst.c_str()), L(name), L(value.data()), v, 0) != 0 && errno != EOPNOTSUPP &&
          errno != EPERM)
        fail("cannot set attribute %s of '%s': %s", name, dst.c_str(), std::strerror(errno));
    }
  }

  void copy_attrs(const std::string& src, const std::string& dst, const struct stat& st) {
    if (!o.preserve) return;
    if (to.call(SYS_fchownat, AT_FDCWD, L(dst.c_str()), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0 &&
        errno != EPERM)
      fail("cannot set the owner of '%s': %s", dst.c_str(), std::strerror(errno));
    if (!S_ISLNK(st.st_mode) && to.call(SYS_fchmodat, AT_FDCWD, L(dst.c_str()), st.st_mode & 07777) != 0)
      fail("cannot set the mode of '%s': %s", dst.c_str(), std::strerror(errno));
    copy_xattrs(src, dst);
    struct timespec t[2] = {st.st_atim, st.st_mtim};
    if (to.call(SYS_utimensat, AT_FDCWD, L(dst.c_str()), L(t), AT_SYMLINK_NOFOLLOW) != 0)
      fail("cannot set the times of '%s': %s", dst.c_str(), std::strerror(errno));
  }

  // Copies src (a path on `from`) to dst (on `to`, not existing yet, or an
  // existing file that is replaced).
  void copy(const std::string& src, const std::string& dst, bool top) {
    struct stat st;
    bool follow = top && o.deref;
    if (!(follow ? xstat(from, src, &st) : xlstat(from, src, &st))) {
      fail("cannot stat '%s': %s", src.c_str(), std::strerror(errno));
      return;
    }
    if (S_ISDIR(st.st_mode)) {
      if (!o.recursive) {
        fail("-r not specified; omitting directory '%s'", src.c_str());
        return;
      }
      struct stat dt;
      if (!xlstat(to, dst, &dt)) {
        if (to.call(SYS_mkdirat, AT_FDCWD, L(dst.c_str()), (st.st_mode & 07777) | 0700) != 0) {
          fail("cannot create directory '%s': %s", dst.c_str(), std::strerror(errno));
          return;
        }
      } else if (!S_ISDIR(dt.st_mode)) {
        fail("cannot overwrite non-directory '%s' with directory '%s'", dst.c_str(), src.c_str());
        return;
      }
      std::vector<std::string> names;
      if (!list_dir(from, src, names)) {
        fail("cannot read directory '%s': %s", src.c_str(), std::strerror(errno));
        return;
      }
      for (auto& n : names) copy(join(src, n), join(dst, n), false);
      // Times after the contents, which change them.
      copy_attrs(src, dst, st);
      if (!o.preserve) to.call(SYS_fchmodat, AT_FDCWD, L(dst.c_str()), st.st_mode & 07777);
      return;
    }
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && o.recursive) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      auto it = linked.find(key);
      if (it != linked.end()) {
        to.call(SYS_unlinkat, AT_FDCWD, L(dst.c_str()), 0);
        if (to.call(SYS_linkat, AT_FDCWD, L(it->second.c_str()), AT_FDCWD, L(dst.c_str()), 0) != 0)
          fail("cannot link '%s' to '%s': %s", dst.c_str(), it->second.c_str(), std::strerror(errno));
        return;
      }
      linked[key] = dst;
    }
    if (S_ISREG(st.st_mode)) {
      if (!copy_data(src, dst, st)) return;
    } else if (S_ISLNK(st.st_mode)) {
      std::vector<char> target(static_cast<size_t>(st.st_size) + 2);
      long n = from.call(SYS_readlinkat, AT_FDCWD, L(src.c_str()), L(target.data()), target.size());
      if (n < 0) {
        fail("cannot read link '%s': %s", src.c_str(), std::strerror(errno));
        return;
      }
      target[static_cast<size_t>(n)] = 0;
      to.call(SYS_unlinkat, AT_FDCWD, L(dst.c_str()), 0);
      if (to.call(SYS_symlinkat, L(target.data()), AT_FDCWD, L(dst.c_str())) != 0) {
        fail("cannot create symbolic link '%s': %s", dst.c_str(), std::strerror(errno));
        return;
      }
    } else {
      to.call(SYS_unlinkat, AT_FDCWD, L(dst.c_str()), 0);
      if (to.call(SYS_mknodat, AT_FDCWD, L(dst.c_str()), st.st_mode, st.st_rdev) != 0) {
        fail("cannot create special file '%s': %s", dst.c_str(), std::strerror(errno));
        return;
      }
    }
    copy_attrs(src, dst, st);
  }
};

// -------------------------------------------------------------- commands

void print_long(const Side& s, const std::string& p, const std::string& shown, const struct stat& st) {
  char type = S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : S_ISCHR(st.st_mode) ? 'c'
              : S_ISBLK(st.st_mode) ? 'b' : S_ISFIFO(st.st_mode) ? 'p' : S_ISSOCK(st.st_mode) ? 's' : '-';
  char m[11];
  m[0] = type;
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; i++) m[i + 1] = (st.st_mode & (0400 >> i)) ? rwx[i] : '-';
  if (st.st_mode & S_ISUID) m[3] = (st.st_mode & 0100) ? 's' : 'S';
  if (st.st_mode & S_ISGID) m[6] = (st.st_mode & 010) ? 's' : 'S';
  if (st.st_mode & S_ISVTX) m[9] = (st.st_mode & 01) ? 't' : 'T';
  m[10] = 0;
  char when[32];
  struct tm tm;
  time_t t = st.st_mtim.tv_sec;
  gmtime_r(&t, &tm);
  strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
  std::printf("%s %3lu %5u %5u ", m, static_cast<unsigned long>(st.st_nlink), st.st_uid, st.st_gid);
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
    std::printf("%4u, %4u", major(st.st_rdev), minor(st.st_rdev));
  else
    std::printf("%10lld", static_cast<long long>(st.st_size));
  std::printf(" %s %s", when, shown.c_str());
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    long n = s.call(SYS_readlinkat, AT_FDCWD, L(p.c_str()), L(target), sizeof target - 1);
    if (n >= 0) {
      target[n] = 0;
      std::printf(" -> %s", target);
    }
  }
  std::putchar('\n');
}

int cmd_ls(std::vector<Operand>& ops, bool long_format, bool recursive) {
  int status = 0;
  for (size_t i = 0; i < ops.size(); i++) {
    const Operand& o = ops[i];
    std::vector<std::pair<std::string, std::string>> todo{{o.real(), o.text}};
    while (!todo.empty()) {
      auto [p, shown] = todo.front();
      todo.erase(todo.begin());
      struct stat st;
      if (!xlstat(o.side(), p, &st)) {
        fail("cannot access '%s': %s", shown.c_str(), std::strerror(errno));
        status = 2;
        continue;
      }
      if (!S_ISDIR(st.st_mode)) {
        if (long_format) print_long(o.side(), p, shown, st);
        else std::printf("%s\n", shown.c_str());
        continue;
      }
      std::vector<std::string> names;
      if (!list_dir(o.side(), p, names)) {
        fail("cannot open directory '%s': %s", shown.c_str(), std::strerror(errno));
        status = std::max(status, 1);
        continue;
      }
      if (ops.size() > 1 || recursive) std::printf("%s:\n", shown.c_str());
      for (auto& n : names) {
        std::string cp = join(p, n);
        struct stat cst;
        bool have = xlstat(o.side(), cp, &cst);
        if (long_format && have) print_long(o.side(), cp, n, cst);
        else std::printf("%s\n", n.c_str());
        if (recursive && have && S_ISDIR(cst.st_mode)) todo.push_back({cp, join(shown, n)});
      }
      if (ops.size() > 1 || recursive) std::putchar('\n');
    }
  }
  return status ? status : g_status;
}

int cmd_cat(std::vector<Operand>& ops) {
  std::vector<char> buf(1 << 16);
  for (auto& o : ops) {
    int fd = static_cast<int>(o.side().call(SYS_openat, AT_FDCWD, L(o.real().c_str()), O_RDONLY, 0));
    if (fd < 0) {
      fail("%s: %s", o.text.c_str(), std::strerror(errno));
      continue;
    }
    long n;
    while ((n = o.side().call(SYS_read, fd, L(buf.data()), buf.size())) > 0) {
      if (std::fwrite(buf.data(), 1, static_cast<size_t>(n), stdout) != static_cast<size_t>(n))
        die(1, "write error: %s", std::strerror(errno));
    }
    if (n < 0) fail("%s: %s", o.text.c_str(), std::strerror(errno));
    o.side().call(SYS_close, fd);
  }
  return g_status;
}

int cmd_cp(std::vector<Operand>& ops, const CopyOpts& co) {
  if (ops.size() < 2) die(1, "missing destination file operand after '%s'", ops.empty() ? "" : ops[0].text.c_str());
  Operand dst = ops.back();
  ops.pop_back();
  struct stat dt;
  bool dst_dir = xstat(dst.side(), dst.real(), &dt) && S_ISDIR(dt.st_mode);
  if (ops.size() > 1 && !dst_dir) die(1, "target '%s' is not a directory", dst.text.c_str());
  for (auto& src : ops) {
    Copier c{src.side(), dst.side(), co, {}, {}};
    c.progress.on = isatty(STDERR_FILENO);
    if (c.progress.on) c.progress.total = tree_bytes(src.side(), src.real());
    std::string target = dst_dir ? join(dst.real(), base_name(src.path)) : dst.real();
    c.copy(src.real(), target, true);
    c.progress.finish();
  }
  return g_status;
}

int cmd_mkdir(std::vector<Operand>& ops, bool parents, mode_t mode) {
  for (auto& o : ops) {
    if (parents) {
      for (size_t at = 1; at <= o.path.size(); at++) {
        if (at < o.path.size() && o.path[at] != '/') continue;
        std::string p = o.side().real(o.path.substr(0, at));
        struct stat st;
        if (xstat(o.side(), p, &st)) continue;
        if (o.side().call(SYS_mkdirat, AT_FDCWD, L(p.c_str()), at == o.path.size() ? mode : 0777) != 0) {
          fail("cannot create directory '%s': %s", o.text.c_str(), std::strerror(errno));
          break;
        }
      }
    } else if (o.side().call(SYS_mkdirat, AT_FDCWD, L(o.real().c_str()), mode) != 0) {
      fail("cannot create directory '%s': %s", o.text.c_str(), std::strerror(errno));
    }
  }
  return g_status;
}

bool remove_tree(const Side& s, const std::string& p, const std::string& shown) {
  struct stat st;
  if (!xlstat(s, p, &st)) return fail("cannot remove '%s': %s", shown.c_str(), std::strerror(errno)), false;
  if (S_ISDIR(st.st_mode)) {
    std::vector<std::string> names;
    if (!list_dir(s, p, names)) return fail("cannot remove '%s': %s", shown.c_str(), std::strerror(errno)), false;
    bool ok = true;
    for (auto& n : names) ok &= remove_tree(s, join(p, n), join(shown, n));
    if (ok && s.call(SYS_unlinkat, AT_FDCWD, L(p.c_str()), AT_REMOVEDIR) != 0)
      return fail("cannot remove '%s': %s", shown.c_str(), std::strerror(errno)), false;
    return ok;
  }
  if (s.call(SYS_unlinkat, AT_FDCWD, L(p.c_str()), 0) != 0)
    return fail("cannot remove '%s': %s", shown.c_str(), std::strerror(errno)), false;
  return true;
}

int cmd_rm(std::vector<Operand>& ops, bool recursive, bool force) {
  for (auto& o : ops) {
    struct stat st;
    if (!xlstat(o.side(), o.real(), &st)) {
      if (!(force && errno == ENOENT)) fail("cannot remove '%s': %s", o.text.c_str(), std::strerror(errno));
      continue;
    }
    if (S_ISDIR(st.st_mode) && !recursive) {
      fail("cannot remove '%s': Is a directory", o.text.c_str());
      continue;
    }
    remove_tree(o.side(), o.real(), o.text);
  }
  return g_status;
}

int cmd_mv(std::vector<Operand>& ops) {
  if (ops.size() != 2) die(1, "mv takes a source and a destination inside one image");
  std::string dst = ops[1].real();
  struct stat st;
  if (xstat(kImageSide, dst, &st) && S_ISDIR(st.st_mode)) dst = join(dst, base_name(ops[0].path));
  if (kImageSide.call(SYS_renameat, AT_FDCWD, L(ops[0].real().c_str()), AT_FDCWD, L(dst.c_str())) != 0)
    fail("cannot move '%s' to '%s': %s", ops[0].text.c_str(), ops[1].text.c_str(), std::strerror(errno));
  return g_status;
}

int cmd_ln(const std::string& target, Operand& link, bool symbolic, const Operand* target_op) {
  std::string lp = link.real();
  struct stat st;
  if (xstat(kImageSide, lp, &st) && S_ISDIR(st.st_mode)) lp = join(lp, base_name(target));
  long r = symbolic ? kImageSide.call(SYS_symlinkat, L(target.c_str()), AT_FDCWD, L(lp.c_str()))
                    : kImageSide.call(SYS_linkat, AT_FDCWD, L(target_op->real().c_str()), AT_FDCWD, L(lp.c_str()), 0);
  if (r != 0) fail("failed to create %s link '%s': %s", symbolic ? "symbolic" : "hard", link.text.c_str(),
                   std::strerror(errno));
  return g_status;
}

int cmd_chmod(const std::string& mode_text, std::vector<Operand>& ops) {
  char* end = nullptr;
  long mode = std::strtol(mode_text.c_str(), &end, 8);
  if (mode_text.empty() || *end || mode < 0 || mode > 07777) die(1, "invalid mode: '%s' (octal modes only)", mode_text.c_str());
  for (auto& o : ops)
    if (o.side().call(SYS_fchmodat, AT_FDCWD, L(o.real().c_str()), mode) != 0)
      fail("changing permissions of '%s': %s", o.text.c_str(), std::strerror(errno));
  return g_status;
}

bool parse_id(const std::string& s, bool group, long* id) {
  if (s.empty()) return false;
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (*end == 0 && v >= 0) {
    *id = v;
    return true;
  }
  // A name is looked up in the host's databases.
  if (group) {
    if (struct group* g = getgrnam(s.c_str())) return *id = g->gr_gid, true;
  } else if (struct passwd* p = getpwnam(s.c_str())) {
    return *id = p->pw_uid, true;
  }
  return false;
}

int cmd_chown(const std::string& spec, std::vector<Operand>& ops) {
  long uid = -1, gid = -1;
  size_t colon = spec.find(':');
  std::string u = spec.substr(0, colon), g = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (!u.empty() && !parse_id(u, false, &uid)) die(1, "invalid user: '%s'", spec.c_str());
  if (!g.empty() && !parse_id(g, true, &gid)) die(1, "invalid group: '%s'", spec.c_str());
  for (auto& o : ops)
    if (o.side().call(SYS_fchownat, AT_FDCWD, L(o.real().c_str()), uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
      fail("changing ownership of '%s': %s", o.text.c_str(), std::strerror(errno));
  return g_status;
}

int cmd_stat(std::vector<Operand>& ops) {
  for (auto& o : ops) {
    struct stat st;
    if (!xlstat(o.side(), o.real(), &st)) {
      fail("cannot stat '%s': %s", o.text.c_str(), std::strerror(errno));
      continue;
    }
    const char* kind = S_ISREG(st.st_mode) ? "regular file" : S_ISDIR(st.st_mode) ? "directory"
                       : S_ISLNK(st.st_mode) ? "symbolic link" : S_ISCHR(st.st_mode) ? "character special file"
                       : S_ISBLK(st.st_mode) ? "block special file" : S_ISFIFO(st.st_mode) ? "fifo" : "socket";
    std::printf("  File: %s\n  Size: %-15lld Blocks: %-10lld IO Block: %-6ld %s\n", o.text.c_str(),
                static_cast<long long>(st.st_size), static_cast<long long>(st.st_blocks),
                static_cast<long>(st.st_blksize), kind);
    std::printf("Inode: %-15llu Links: %lu\n", static_cast<unsigned long long>(st.st_ino),
                static_cast<unsigned long>(st.st_nlink));
    std::printf("Access: (%04o)  Uid: %5u   Gid: %5u\n", st.st_mode & 07777, st.st_uid, st.st_gid);
    const struct timespec* ts[3] = {&st.st_atim, &st.st_mtim, &st.st_ctim};
    const char* label[3] = {"Access", "Modify", "Change"};
    for (int i = 0; i < 3; i++) {
      char when[64];
      struct tm tm;
      gmtime_r(&ts[i]->tv_sec, &tm);
      strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
      std::printf("%s: %s.%09ld +0000\n", label[i], when, ts[i]->tv_nsec);
    }
  }
  return g_status;
}

int cmd_df(const Operand& o) {
  struct statfs sf;
  if (rump_sys_statfs(kMountPoint, &sf) != 0) die(1, "%s: %s", o.image.c_str(), std::strerror(errno));
  uint64_t k = static_cast<uint64_t>(sf.f_bsize) / 1024;
  uint64_t size = sf.f_blocks * k, avail = sf.f_bavail * k, used = (sf.f_blocks - sf.f_bfree) * k;
  std::printf("%-20s %12s %12s %12s %5s %10s %10s\n", "Image", "1K-blocks", "Used", "Available", "Use%", "Inodes",
              "IFree");
  unsigned pct = (used + avail) ? static_cast<unsigned>((used * 100 + used + avail - 1) / (used + avail)) : 0;
  std::printf("%-20s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %4u%% %10" PRIu64 " %10" PRIu64 "\n", o.image.c_str(),
              size, used, avail, pct, static_cast<uint64_t>(sf.f_files), static_cast<uint64_t>(sf.f_ffree));
  return 0;
}

void usage(FILE* f) {
  std::fprintf(f,
"NAME\n"
"    rumpimg - copy files in and out of ext2/ext3/ext4 images, without root\n"
"\n"
"SYNOPSIS\n"
"    rumpimg [--type TYPE] COMMAND [OPTIONS] ARGS...\n"
"\n"
"DESCRIPTION\n"
"    Runs the rump kernel's own ext2/ext3/ext4 driver in this process, with\n"
"    the image as its block device: no root, no loop device, no FUSE. A path\n"
"    inside an image is written IMAGE:PATH (disk.img:/etc); any other operand\n"
"    is a host path. One image per command, except cp from one image into\n"
"    another.\n"
"\n"
"COMMANDS\n"
"    ls [-l] [-R] IMAGE:PATH...      list directories or files\n"
"    cat IMAGE:PATH...               write files to standard output\n"
"    cp [-a] [-r] [-p] SRC... DST    copy host -> image, image -> host, within\n"
"                                    an image, or image -> another image;\n"
"                                    -r: directories recursively;\n"
"                                    -p: keep modes, owners, times and extended\n"
"                                    attributes; -a: both, and symbolic links as\n"
"                                    links. Hard links and holes are kept.\n"
"    mkdir [-p] [-m MODE] IMAGE:PATH...\n"
"    rm [-r] [-f] IMAGE:PATH...\n"
"    mv IMAGE:SRC IMAGE:DST\n"
"    ln [-s] TARGET IMAGE:LINK       hard link (TARGET is IMAGE:PATH) or, with -s,\n"
"                                    a symbolic link holding TARGET\n"
"    chmod MODE IMAGE:PATH...        MODE is octal\n"
"    chown USER[:GROUP] IMAGE:PATH...\n"
"    stat IMAGE:PATH...\n"
"    df IMAGE\n"
"\n"
"OPTIONS\n"
"    --type TYPE    ext2, ext3 or ext4; by default read from the superblock\n"
"    -h, --help     this text\n"
"\n"
"EXIT STATUS\n"
"    0 on success, 1 when an operand failed or the image cannot be used, as\n"
"    coreutils (ls: 1 for a problem below an operand, 2 for an operand).\n"
"    Errors are one line each on standard error. A copy to a terminal shows a\n"
"    progress bar.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string type;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    }
    if (a == "--type" && i + 1 < argc) {
      type = argv[++i];
    } else if (a.rfind("--type=", 0) == 0) {
      type = a.substr(7);
    } else {
      usage(stderr);
      return 1;
    }
  }
  if (!type.empty() && type != "ext2" && type != "ext3" && type != "ext4") die(1, "unknown type '%s'", type.c_str());
  if (i >= argc) {
    usage(stderr);
    return 1;
  }
  std::string cmd = argv[i++];
  // Options of the command, then operands.
  std::string flags;
  std::string mode_arg;
  std::vector<std::string> args;
  for (; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--") {
      for (i++; i < argc; i++) args.push_back(argv[i]);
      break;
    }
    if (a.size() > 1 && a[0] == '-' && args.empty()) {
      for (size_t j = 1; j < a.size(); j++) {
        if (a[j] == 'm' && cmd == "mkdir") {
          mode_arg = j + 1 < a.size() ? a.substr(j + 1) : (i + 1 < argc ? argv[++i] : "");
          break;
        }
        flags += a[j];
      }
      continue;
    }
    args.push_back(a);
  }
  auto has = [&](char c) { return flags.find(c) != std::string::npos; };
  const std::string known = cmd == "ls" ? "lRa" : cmd == "cp" ? "arRpP" : cmd == "mkdir" ? "p" : cmd == "rm" ? "rRf"
                            : cmd == "ln" ? "sf" : "";
  for (char c : flags)
    if (known.find(c) == std::string::npos) die(cmd == "ls" ? 2 : 1, "%s: invalid option -- '%c'", cmd.c_str(), c);

  // What the command acts on; a first operand that is not a path (chmod's
  // mode, chown's owner, ln -s's target) is set aside.
  std::string lead;
  if (cmd == "chmod" || cmd == "chown" || (cmd == "ln" && has('s'))) {
    if (args.empty()) die(1, "missing operand");
    lead = args.front();
    args.erase(args.begin());
  }
  std::vector<Operand> ops;
  for (auto& a : args) ops.push_back(parse_operand(a));
  if (cmd == "df" && args.size() == 1 && !ops[0].in_image) ops[0] = parse_operand(args[0] + ":/");
  if (ops.empty()) die(cmd == "ls" ? 2 : 1, "missing operand (try --help)");
  // The image the command acts on; cp may copy from one image (every
  // source) into another (the destination).
  std::string image, second;
  for (auto& o : ops) {
    if (!o.in_image) continue;
    if (!image.empty() && o.image != image) {
      if (cmd == "cp" && &o == &ops.back() && second.empty()) {
        second = o.image;
        o.second = true;
        continue;
      }
      die(1, "%s ('%s' and '%s')", cmd == "cp" ? "cp copies from one image into another" : "one image per command",
          image.c_str(), o.image.c_str());
    }
    image = o.image;
  }
  if (image.empty()) die(1, "no IMAGE:PATH operand");
  if (!second.empty()) {
    struct stat a, b;
    if (stat(image.c_str(), &a) == 0 && stat(second.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
      die(1, "'%s' and '%s' are the same image", image.c_str(), second.c_str());
  }
  static const char* const kCommands[] = {"ls", "cat", "cp", "mkdir", "rm", "mv", "ln", "chmod", "chown", "stat", "df"};
  bool known_cmd = false;
  for (const char* c : kCommands) known_cmd |= cmd == c;
  if (!known_cmd) die(1, "unknown command '%s' (try --help)", cmd.c_str());
  // Everything but cp and the read-only commands acts on the image alone.
  bool reads_only = cmd == "ls" || cmd == "cat" || cmd == "stat" || cmd == "df";
  bool writes = !reads_only && !(cmd == "cp" && ops.back().in_image == false);
  if (cmd != "cp" && !reads_only)
    for (auto& o : ops)
      if (!o.in_image) die(1, "%s: '%s' is not an IMAGE:PATH", cmd.c_str(), o.text.c_str());

  Kernel kern, kern2;
  // With two images the first is only read.
  boot_and_mount(kern, image, type, writes && second.empty());
  g_kernels[0] = kern.k;
  if (!second.empty()) {
    boot_and_mount(kern2, second, type, true);
    g_kernels[1] = kern2.k;
  }
  int status = 0;
  if (cmd == "ls") {
    status = cmd_ls(ops, has('l'), has('R'));
  } else if (cmd == "cat") {
    status = cmd_cat(ops);
  } else if (cmd == "cp") {
    CopyOpts co;
    co.recursive = has('r') || has('R') || has('a');
    co.preserve = has('a') || has('p');
    co.deref = !has('a') && !has('P') && !co.recursive;
    status = cmd_cp(ops, co);
  } else if (cmd == "mkdir") {
    mode_t mode = 0777;
    if (!mode_arg.empty()) {
      char* end = nullptr;
      mode = static_cast<mode_t>(std::strtol(mode_arg.c_str(), &end, 8));
      if (*end) die(1, "invalid mode '%s'", mode_arg.c_str());
    }
    status = cmd_mkdir(ops, has('p'), mode);
  } else if (cmd == "rm") {
    status = cmd_rm(ops, has('r') || has('R'), has('f'));
  } else if (cmd == "mv") {
    status = cmd_mv(ops);
  } else if (cmd == "ln") {
    if (has('s')) {
      if (ops.size() != 1) die(1, "ln -s takes a target and one IMAGE:LINK");
      status = cmd_ln(lead, ops[0], true, nullptr);
    } else {
      if (ops.size() != 2) die(1, "ln takes IMAGE:TARGET and IMAGE:LINK");
      status = cmd_ln(ops[0].path, ops[1], false, &ops[0]);
    }
  } else if (cmd == "chmod") {
    status = cmd_chmod(lead, ops);
  } else if (cmd == "chown") {
    status = cmd_chown(lead, ops);
  } else if (cmd == "stat") {
    status = cmd_stat(ops);
  } else if (cmd == "df") {
    status = cmd_df(ops[0]);
  }
  std::fflush(stdout);
  return status ? status : g_status;
}
