// ext_image_fuzz: a mutated ext2/3/4 image, mounted and used.
//
// Each input is a whole disk image (the seeds are small images made by the
// host's mke2fs: ext2, ext3 and ext4 with 1 KiB and 4 KiB blocks, with
// files, directories, a hashed directory, symlinks, xattrs and inline
// data). It is written to a host file, registered as an etfs block device
// in a fresh kernel, and mounted read-write as "ext4" (the one driver
// serves all three), or read-only when the driver refuses that. The walk
// then lists every directory, stats and reads every file, reads every
// link, lists and reads xattrs; and writes: a new file, a directory, a
// rename, a truncation, an xattr, an unlink, fsync and syncfs; then the
// image is unmounted and the kernel halted. Whatever the image holds, every
// call must answer (an error is fine: EIO, EUCLEAN, EINVAL ...), nothing may
// hang, and the kernel must give back all its memory at halt (a debug build
// panics on a leak).
//
// Built as a libFuzzer target with -Dfuzz=true; ext_image_fuzz_replay runs
// the seeds and bounded mutations of them in the test suite.
#include <rump/rump.h>
#include <rump/rumpvfs.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ext_image_fuzz.h"

namespace {

// Bounds that keep one input short whatever the image claims.
constexpr int kMaxDepth = 6;
constexpr int kMaxEntries = 256;          // per walk
constexpr size_t kMaxReadPerFile = 64 << 10;

struct Walk {
  int entries = 0;
};

void read_xattrs(const char* path) {
  char names[1024];
  long n = rump_sys_llistxattr(path, names, sizeof names);
  for (long off = 0; n > 0 && off < n;) {
    const char* name = names + off;
    size_t len = strnlen(name, static_cast<size_t>(n - off));
    char value[256];
    rump_sys_lgetxattr(path, name, value, sizeof value);
    off += static_cast<long>(len) + 1;
  }
}

void walk(const std::string& dir, int depth, Walk& w) {
  if (depth > kMaxDepth) return;
  int fd = rump_sys_open(dir.c_str(), O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return;
  char buf[4096];
  std::string names[64];
  int count = 0;
  for (int rounds = 0; rounds < 16; rounds++) {
    long n = rump_sys_getdents64(fd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      struct Dent {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[1];
      };
      auto* d = reinterpret_cast<const Dent*>(buf + off);
      if (d->reclen == 0) break;
      std::string nm(d->name);
      if (nm != "." && nm != ".." && count < 64) names[count++] = nm;
      off += d->reclen;
    }
  }
  rump_sys_close(fd);
  for (int i = 0; i < count && w.entries < kMaxEntries; i++, w.entries++) {
    std::string p = dir + "/" + names[i];
    struct stat st;
    if (rump_sys_lstat(p.c_str(), &st) != 0) continue;
    read_xattrs(p.c_str());
    if (S_ISDIR(st.st_mode)) {
      walk(p, depth + 1, w);
    } else if (S_ISLNK(st.st_mode)) {
      char target[4096];
      rump_sys_readlink(p.c_str(), target, sizeof target);
    } else if (S_ISREG(st.st_mode)) {
      int f = rump_sys_open(p.c_str(), O_RDONLY, 0);
      if (f < 0) continue;
      char data[8192];
      size_t total = 0;
      long got;
      while (total < kMaxReadPerFile && (got = rump_sys_read(f, data, sizeof data)) > 0)
        total += static_cast<size_t>(got);
      rump_sys_lseek(f, 0, SEEK_HOLE);
      rump_sys_close(f);
    }
  }
}

void write_some(const char* root) {
  std::string r = root;
  std::string f = r + "/fuzz_new";
  int fd = rump_sys_open(f.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    char data[6000];
    std::memset(data, 'x', sizeof data);
    rump_sys_write(fd, data, sizeof data);
    rump_sys_pwrite(fd, data, 100, 70000);  // a hole in between
    rump_sys_fsetxattr(fd, "user.fuzz", "value", 5, 0);
    rump_sys_ftruncate(fd, 3000);
    rump_sys_fsync(fd);
    rump_sys_close(fd);
  }
  std::string d = r + "/fuzz_dir";
  rump_sys_mkdir(d.c_str(), 0755);
  std::string moved = d + "/moved";
  rump_sys_rename(f.c_str(), moved.c_str());
  std::string l = r + "/fuzz_link";
  rump_sys_symlink("fuzz_dir/moved", l.c_str());
  rump_sys_link(moved.c_str(), (r + "/fuzz_hard").c_str());
  rump_sys_unlink(moved.c_str());
  // Change what the image already had: the first entries of the root.
  int dfd = rump_sys_open(root, O_RDONLY | O_DIRECTORY, 0);
  if (dfd >= 0) {
    rump_sys_syncfs(dfd);
    rump_sys_close(dfd);
  }
  rump_sys_rmdir(d.c_str());
  rump_sys_unlink((r + "/fuzz_hard").c_str());
  rump_sys_unlink(l.c_str());
}

std::string image_path() {
  const char* dir = std::getenv("TMPDIR");
  std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (dir ? dir : "/tmp");
  return base + "/ext_image_fuzz." + std::to_string(getpid());
}

}  // namespace

const char* ext_image_fuzz_path() {
  static const std::string path = image_path();
  return path.c_str();
}

int ext_image_fuzz_run(const uint8_t* data, size_t size, bool write) {
  // Too small for a superblock: nothing to mount.
  if (size < 2048) return 0;
  const std::string path = ext_image_fuzz_path();
  int hfd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (hfd < 0) abort();
  for (size_t done = 0; done < size;) {
    ssize_t n = ::write(hfd, data + done, size - done);
    if (n <= 0) abort();
    done += static_cast<size_t>(n);
  }
  close(hfd);

  struct rump_boot_config cfg;
  rump_boot_config_init(&cfg);
  cfg.ncpu = 1;
  cfg.memlimit = 64 << 20;
  cfg.backend = "pthread";
  struct rump_kernel* k = nullptr;
  if (rump_kernel_boot(&cfg, &k) != 0) abort();
  if (rump_kernel_set_current(k) != 0) abort();
  if (rump_pub_etfs_register("/dev/img", path.c_str(), RUMP_ETFS_BLK) != 0) abort();
  if (rump_sys_mkdir("/mnt", 0755) != 0) abort();
  int mounted = -1;
  if (write) mounted = rump_sys_mount("/dev/img", "/mnt", "ext4", 0, nullptr);
  bool rw = mounted == 0;
  if (mounted != 0) mounted = rump_sys_mount("/dev/img", "/mnt", "ext4", MS_RDONLY, nullptr);
  if (mounted == 0) {
    Walk w;
    walk("/mnt", 0, w);
    if (rw) {
      write_some("/mnt");
      Walk again;
      walk("/mnt", 0, again);
    }
    rump_sys_umount2("/mnt", 0);
  }
  rump_kernel_set_current(nullptr);
  if (rump_kernel_halt(k) != 0) abort();
  return mounted == 0 ? (rw ? 2 : 1) : 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ext_image_fuzz_run(data, size, true);
  return 0;
}
