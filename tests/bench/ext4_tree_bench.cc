// ext4_tree_bench: a tree of 20,000 files (about 200 MB, made from a seed)
// copied into an ext4 image and read back, and fsync-heavy small writes,
// each next to the host doing the same work in the same run. Every figure
// is the wall time of one whole pass (manual time, fixed iteration
// counts); divide ours by the host's for the ratio.
//
//   populate/rump          mount an empty image in the kernel, copy the tree
//                          in as cp -a does (data, modes, owners, times,
//                          symlinks), unmount
//   populate/host_kernel   the host kernel: mount -o loop, cp -a, umount
//   populate/mke2fs_d      libext2fs: mke2fs -d TREE (this includes making
//                          the file system, which mke2fs_empty measures alone)
//   readback/rump          mount read-only, walk the tree reading every file
//                          and symlink, unmount
//   readback/host_kernel   the same walk on the host kernel (loop mount, ro)
//   fsync_4k/rump          256 x (4 KiB append + fsync) into a new file
//   fsync_4k/host_kernel   the same on a loop-mounted ext4 image
//
// The host-kernel rows need root and a loop device: without them the
// populate and readback rows are skipped with the reason, and fsync_4k
// runs on a file in /tmp, saying so in its label. Each write-back ends on
// the disk on both sides (our unmount and fsync sync the image file; the
// host's loop device syncs its backing file). One run takes a few minutes.
#include <benchmark/benchmark.h>
#include <dirent.h>
#include <fcntl.h>
#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpvfs.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_image.h"

namespace {

constexpr int kTopDirs = 20, kSubDirs = 10, kFilesPerDir = 100;  // 20,000 files
constexpr int kFsyncWrites = 256;
constexpr const char* kImageSize = "1G";

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

const std::string& work_dir() {
  static const std::string d = [] {
    std::string p = "/tmp/ext4_tree_bench." + std::to_string(getpid());
    if (::mkdir(p.c_str(), 0755) != 0) abort();
    return p;
  }();
  return d;
}

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The tree, made once per run from a fixed seed: kTopDirs x kSubDirs
// directories of kFilesPerDir files and one symlink each. Sizes: 65% under
// 4 KiB, 28% 4-20 KiB, 6.5% 20-84 KiB, 0.5% 84-596 KiB (about 10 KB a
// file); modes 0644 or 0755; times spread over years.
struct Tree {
  std::string root;
  uint64_t bytes = 0;
  uint64_t files = 0;
  uint64_t symlinks = 0;
  Tree() {
    root = work_dir() + "/tree";
    uint64_t seed = 20260801;
    std::vector<char> buf;
    auto pick = [&](uint64_t n) { return splitmix(seed) % n; };
    auto set_times = [&](const std::string& p) {
      timespec ts[2];
      ts[0].tv_sec = static_cast<time_t>(1500000000 + pick(200000000));
      ts[0].tv_nsec = static_cast<long>(pick(1000000000));
      ts[1] = ts[0];
      if (utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) abort();
    };
    if (::mkdir(root.c_str(), 0755) != 0) abort();
    for (int t = 0; t < kTopDirs; t++) {
      std::string td = root + "/dir" + std::to_string(t);
      if (::mkdir(td.c_str(), 0755) != 0) abort();
      for (int s = 0; s < kSubDirs; s++) {
        std::string sd = td + "/sub" + std::to_string(s);
        if (::mkdir(sd.c_str(), 0755) != 0) abort();
        for (int f = 0; f < kFilesPerDir; f++) {
          uint64_t u = pick(1000);
          uint64_t size = u < 650 ? pick(4096)
                          : u < 930 ? 4096 + pick(16384)
                          : u < 995 ? 20480 + pick(65536)
                                    : 86016 + pick(524288);
          buf.resize(size + 8);
          for (uint64_t i = 0; i < size; i += 8) {
            uint64_t v = splitmix(seed);
            std::memcpy(buf.data() + i, &v, 8);
          }
          std::string p = sd + "/file_" + std::to_string(f) + (f % 3 ? ".dat" : ".txt");
          int fd = ::open(p.c_str(), O_CREAT | O_WRONLY | O_EXCL, f % 10 == 0 ? 0755 : 0644);
          if (fd < 0 || ::write(fd, buf.data(), size) != static_cast<ssize_t>(size)) abort();
          ::close(fd);
          set_times(p);
          bytes += size;
          files++;
        }
        std::string l = sd + "/link";
        if (::symlink("file_0.txt", l.c_str()) != 0) abort();
        set_times(l);
        symlinks++;
        set_times(sd);
      }
      set_times(td);
    }
  }
};

const Tree& tree() {
  static const Tree* t = new Tree();
  return *t;
}

// The kernel of the run, booted on first use.
struct rump_kernel* kernel() {
  static struct rump_kernel* k = [] {
    struct rump_kernel* kk = boot_bench_kernel();
    rump_sys_mkdir("/mnt", 0755);
    return kk;
  }();
  rump_kernel_set_current(k);
  return k;
}

void mkfs(const std::string& img, const std::string& extra = "") {
  if (!bench_shell("mke2fs -q -F -t ext4 " + extra + " " + img + " " + kImageSize + " >/dev/null 2>&1")) abort();
}

void rump_mount(const std::string& img, unsigned long flags) {
  kernel();
  if (rump_pub_etfs_register("/dev/img", img.c_str(), RUMP_ETFS_BLK) != 0) abort();
  if (rump_sys_mount("/dev/img", "/mnt", "ext4", flags, nullptr) != 0) abort();
}

void rump_unmount() {
  if (rump_sys_umount2("/mnt", 0) != 0) abort();
  if (rump_pub_etfs_remove("/dev/img") != 0) abort();
}

// The host tree at h into the kernel at r, as GNU cp -a does it: a regular
// file's owner, mode and times go through its open descriptor before the
// close (fchown, fchmod, utimensat on the descriptor), a symlink's and a
// directory's by path, a directory's after its contents.
void copy_in(const std::string& h, const std::string& r, std::vector<char>& buf) {
  DIR* d = ::opendir(h.c_str());
  if (!d) abort();
  while (struct dirent* e = ::readdir(d)) {
    if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
    std::string hp = h + "/" + e->d_name, rp = r + "/" + e->d_name;
    struct stat st;
    if (::lstat(hp.c_str(), &st) != 0) abort();
    if (S_ISDIR(st.st_mode)) {
      if (rump_sys_mkdir(rp.c_str(), 0700) != 0) abort();
      copy_in(hp, rp, buf);
    } else if (S_ISREG(st.st_mode)) {
      int hfd = ::open(hp.c_str(), O_RDONLY);
      int fd = rump_sys_open(rp.c_str(), O_CREAT | O_WRONLY | O_EXCL, 0600);
      if (hfd < 0 || fd < 0) abort();
      for (;;) {
        ssize_t n = ::read(hfd, buf.data(), buf.size());
        if (n < 0) abort();
        if (n == 0) break;
        if (rump_sys_write(fd, buf.data(), static_cast<size_t>(n)) != n) abort();
      }
      ::close(hfd);
      struct timespec ts[2] = {st.st_atim, st.st_mtim};
      if (rump_sys_fchown(fd, st.st_uid, st.st_gid) != 0 || rump_sys_fchmod(fd, st.st_mode & 07777) != 0 ||
          rump_sys_utimensat(fd, nullptr, ts, 0) != 0 || rump_sys_close(fd) != 0)
        abort();
      continue;
    } else if (S_ISLNK(st.st_mode)) {
      ssize_t n = ::readlink(hp.c_str(), buf.data(), buf.size() - 1);
      if (n < 0) abort();
      buf[static_cast<size_t>(n)] = 0;
      if (rump_sys_symlink(buf.data(), rp.c_str()) != 0) abort();
    }
    if (rump_sys_lchown(rp.c_str(), st.st_uid, st.st_gid) != 0) abort();
    if (!S_ISLNK(st.st_mode) && rump_sys_chmod(rp.c_str(), st.st_mode & 07777) != 0) abort();
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (rump_sys_utimensat(AT_FDCWD, rp.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) abort();
  }
  ::closedir(d);
}

// Whether every entry under the kernel's r has the host h's type, size,
// mode, owner and modification time (a copy that lost one is no figure).
bool same_attrs(const std::string& h, const std::string& r) {
  DIR* d = ::opendir(h.c_str());
  if (!d) return false;
  bool ok = true;
  while (struct dirent* e = ::readdir(d)) {
    if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
    std::string hp = h + "/" + e->d_name, rp = r + "/" + e->d_name;
    struct stat hs, rs;
    if (::lstat(hp.c_str(), &hs) != 0 || rump_sys_lstat(rp.c_str(), &rs) != 0 || hs.st_mode != rs.st_mode ||
        hs.st_uid != rs.st_uid || hs.st_gid != rs.st_gid || hs.st_size != rs.st_size ||
        hs.st_mtim.tv_sec != rs.st_mtim.tv_sec || hs.st_mtim.tv_nsec != rs.st_mtim.tv_nsec ||
        (S_ISDIR(hs.st_mode) && !same_attrs(hp, rp))) {
      ok = false;
      break;
    }
  }
  ::closedir(d);
  return ok;
}

// The system calls the read-back walk makes, ours or the host's.
struct RumpCalls {
  static int open(const char* p, int fl) { return rump_sys_open(p, fl, 0); }
  static long read(int fd, void* b, size_t n) { return rump_sys_read(fd, b, n); }
  static long getdents(int fd, void* b, size_t n) { return rump_sys_getdents64(fd, b, n); }
  static long readlink(const char* p, char* b, size_t n) { return rump_sys_readlink(p, b, n); }
  static int close(int fd) { return rump_sys_close(fd); }
};
struct HostCalls {
  static int open(const char* p, int fl) { return ::open(p, fl); }
  static long read(int fd, void* b, size_t n) { return ::read(fd, b, n); }
  static long getdents(int fd, void* b, size_t n) { return ::syscall(SYS_getdents64, fd, b, n); }
  static long readlink(const char* p, char* b, size_t n) { return ::readlink(p, b, n); }
  static int close(int fd) { return ::close(fd); }
};

struct Walked {
  uint64_t bytes = 0, files = 0, symlinks = 0;
};

// Reads every file and symlink under dir (entries' types from getdents).
template <class Sys>
void walk(const std::string& dir, std::vector<char>& buf, Walked& w) {
  int dfd = Sys::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd < 0) abort();
  std::vector<char> ents(32768);
  for (;;) {
    long n = Sys::getdents(dfd, ents.data(), ents.size());
    if (n < 0) abort();
    if (n == 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(ents.data() + off);
      off += d->d_reclen;
      if (!std::strcmp(d->d_name, ".") || !std::strcmp(d->d_name, "..") || !std::strcmp(d->d_name, "lost+found"))
        continue;
      std::string p = dir + "/" + d->d_name;
      if (d->d_type == DT_DIR) {
        walk<Sys>(p, buf, w);
      } else if (d->d_type == DT_REG) {
        int fd = Sys::open(p.c_str(), O_RDONLY);
        if (fd < 0) abort();
        for (;;) {
          long r = Sys::read(fd, buf.data(), buf.size());
          if (r < 0) abort();
          if (r == 0) break;
          w.bytes += static_cast<uint64_t>(r);
        }
        Sys::close(fd);
        w.files++;
      } else if (d->d_type == DT_LNK) {
        if (Sys::readlink(p.c_str(), buf.data(), buf.size()) <= 0) abort();
        w.symlinks++;
      }
    }
  }
  Sys::close(dfd);
}

// A walk that did not see the whole tree is a broken run, not a figure.
void check_walk(const Walked& w) {
  const Tree& t = tree();
  if (w.bytes != t.bytes || w.files != t.files || w.symlinks != t.symlinks) abort();
}

void tree_counters(benchmark::State& s) {
  s.SetBytesProcessed(static_cast<int64_t>(s.iterations() * tree().bytes));
  s.counters["files"] = static_cast<double>(tree().files);
}

// --- populate

void BM_populate_rump(benchmark::State& s) {
  const Tree& t = tree();
  std::string img = work_dir() + "/populate_rump.img";
  std::vector<char> buf(1 << 20);
  for (auto _ : s) {
    mkfs(img);
    auto t0 = Clock::now();
    rump_mount(img, 0);
    copy_in(t.root, "/mnt", buf);
    rump_unmount();
    s.SetIterationTime(since(t0));
  }
  if (!bench_shell("e2fsck -fn " + img + " >/dev/null 2>&1")) s.SkipWithError("the populated image is not e2fsck clean");
  rump_mount(img, MS_RDONLY);
  if (!same_attrs(t.root, "/mnt")) s.SkipWithError("the populated image differs from the tree");
  rump_unmount();
  ::unlink(img.c_str());
  tree_counters(s);
}

void BM_populate_host_kernel(benchmark::State& s) {
  const Tree& t = tree();
  if (!host_loop_unavailable().empty()) {
    s.SkipWithError(host_loop_unavailable().c_str());
    return;
  }
  std::string img = work_dir() + "/populate_host.img", mnt = work_dir() + "/mnt_populate";
  ::mkdir(mnt.c_str(), 0755);
  for (auto _ : s) {
    mkfs(img);
    auto t0 = Clock::now();
    if (!bench_shell("mount -o loop " + img + " " + mnt + " && cp -a " + t.root + "/. " + mnt + "/ && umount " + mnt))
      abort();
    s.SetIterationTime(since(t0));
  }
  ::unlink(img.c_str());
  tree_counters(s);
}

void BM_populate_mke2fs_d(benchmark::State& s) {
  const Tree& t = tree();
  std::string img = work_dir() + "/populate_mke2fs.img";
  for (auto _ : s) {
    ::unlink(img.c_str());
    auto t0 = Clock::now();
    mkfs(img, "-d " + t.root);
    s.SetIterationTime(since(t0));
  }
  ::unlink(img.c_str());
  tree_counters(s);
}

void BM_populate_mke2fs_empty(benchmark::State& s) {
  std::string img = work_dir() + "/populate_mke2fs.img";
  for (auto _ : s) {
    ::unlink(img.c_str());
    auto t0 = Clock::now();
    mkfs(img);
    s.SetIterationTime(since(t0));
  }
  ::unlink(img.c_str());
}

// --- read back (one image made by mke2fs -d, read by both)

const std::string& readback_image() {
  static const std::string img = [] {
    std::string i = work_dir() + "/readback.img";
    mkfs(i, "-d " + tree().root);
    return i;
  }();
  return img;
}

void BM_readback_rump(benchmark::State& s) {
  const std::string& img = readback_image();
  std::vector<char> buf(1 << 20);
  for (auto _ : s) {
    auto t0 = Clock::now();
    rump_mount(img, MS_RDONLY);
    Walked w;
    walk<RumpCalls>("/mnt", buf, w);
    rump_unmount();
    s.SetIterationTime(since(t0));
    check_walk(w);
  }
  tree_counters(s);
}

void BM_readback_host_kernel(benchmark::State& s) {
  if (!host_loop_unavailable().empty()) {
    s.SkipWithError(host_loop_unavailable().c_str());
    return;
  }
  const std::string& img = readback_image();
  std::string mnt = work_dir() + "/mnt_readback";
  ::mkdir(mnt.c_str(), 0755);
  std::vector<char> buf(1 << 20);
  for (auto _ : s) {
    auto t0 = Clock::now();
    if (!bench_shell("mount -o loop,ro " + img + " " + mnt)) abort();
    Walked w;
    walk<HostCalls>(mnt, buf, w);
    if (!bench_shell("umount " + mnt)) abort();
    s.SetIterationTime(since(t0));
    check_walk(w);
  }
  tree_counters(s);
}

// --- fsync-heavy small writes

template <class Write, class Sync>
void fsync_loop(benchmark::State& s, Write write, Sync sync) {
  char block[4096];
  for (size_t i = 0; i < sizeof block; i++) block[i] = static_cast<char>(i * 31 + 5);
  for (auto _ : s) {
    auto t0 = Clock::now();
    for (int i = 0; i < kFsyncWrites; i++) {
      if (!write(block, sizeof block, static_cast<off_t>(i) * 4096)) abort();
      if (!sync()) abort();
    }
    s.SetIterationTime(since(t0));
  }
  s.SetItemsProcessed(static_cast<int64_t>(s.iterations()) * kFsyncWrites);
}

void BM_fsync_rump(benchmark::State& s) {
  static bool mounted = false;
  std::string img = work_dir() + "/fsync_rump.img";
  if (!mounted) {
    mkfs(img);
    kernel();
    if (rump_pub_etfs_register("/dev/fsyncimg", img.c_str(), RUMP_ETFS_BLK) != 0) abort();
    rump_sys_mkdir("/fs", 0755);
    if (rump_sys_mount("/dev/fsyncimg", "/fs", "ext4", 0, nullptr) != 0) abort();
    mounted = true;
  }
  kernel();
  int fd = rump_sys_open("/fs/small", O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) abort();
  fsync_loop(
      s, [&](const char* b, size_t n, off_t o) { return rump_sys_pwrite64(fd, b, n, o) == static_cast<long>(n); },
      [&] { return rump_sys_fsync(fd) == 0; });
  rump_sys_close(fd);
}

void BM_fsync_host(benchmark::State& s) {
  static std::string dir;
  if (dir.empty()) {
    if (host_loop_unavailable().empty()) {
      std::string img = work_dir() + "/fsync_host.img";
      dir = work_dir() + "/mnt_fsync";
      ::mkdir(dir.c_str(), 0755);
      mkfs(img);
      if (!bench_shell("mount -o loop " + img + " " + dir)) abort();
    } else {
      dir = work_dir();
    }
  }
  if (!host_loop_unavailable().empty()) s.SetLabel("a file in /tmp: " + host_loop_unavailable());
  int fd = ::open((dir + "/small").c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) abort();
  fsync_loop(
      s, [&](const char* b, size_t n, off_t o) { return ::pwrite(fd, b, n, o) == static_cast<ssize_t>(n); },
      [&] { return ::fsync(fd) == 0; });
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  // Fixed pass counts: one pass of the tree rows takes seconds.
  const struct {
    const char* name;
    void (*fn)(benchmark::State&);
    int passes;
  } rows[] = {
      {"populate/rump", BM_populate_rump, 2},         {"populate/host_kernel", BM_populate_host_kernel, 2},
      {"populate/mke2fs_d", BM_populate_mke2fs_d, 2}, {"populate/mke2fs_empty", BM_populate_mke2fs_empty, 2},
      {"readback/rump", BM_readback_rump, 3},         {"readback/host_kernel", BM_readback_host_kernel, 3},
      {"fsync_4k/rump", BM_fsync_rump, 4},            {"fsync_4k/host_kernel", BM_fsync_host, 4},
  };
  for (const auto& r : rows)
    benchmark::RegisterBenchmark(r.name, r.fn)->Iterations(r.passes)->UseManualTime()->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  // Everything the run made goes with it (the fsync mount first).
  std::string d = "/tmp/ext4_tree_bench." + std::to_string(getpid());
  std::system(("umount " + d + "/mnt_fsync 2>/dev/null; rm -rf " + d).c_str());
  return 0;
}
