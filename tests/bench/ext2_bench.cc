// ext2_bench: lookups and create+unlink in one large hashed directory on
// an ext4 image (made by the host's mke2fs, mounted in the kernel), for
// directories of 1,000 to 100,000 entries, next to the host kernel's ext4
// (a directory under /tmp) with the same names. What to read: the rump
// figure per entry should stay flat as the directory grows (the hash
// index makes a lookup O(1) in the number of entries); the host column is
// the host kernel with its dentry cache.
//
//   dir_lookup/N        lstat of an existing name, names taken in a scattered order
//   dir_create_unlink/N open(O_CREAT) + close + unlink of a new name in that directory
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpvfs.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "bench_image.h"

namespace {

std::string name_of(int i) { return "entry_" + std::to_string(i * 7919 % 1000003) + "_file"; }

// A kernel with an ext4 image holding /mnt/big with n entries; one per n,
// kept for the run.
struct RumpDir {
  struct rump_kernel* k = nullptr;
  std::string img;
  explicit RumpDir(int n) {
    img = "/tmp/ext2_bench." + std::to_string(getpid()) + "." + std::to_string(n);
    k = boot_with_ext4(img, "-N " + std::to_string(n + 1000) + " 512M");
    rump_sys_mkdir("/mnt/big", 0755);
    for (int i = 0; i < n; i++) {
      int fd = rump_sys_open(("/mnt/big/" + name_of(i)).c_str(), O_CREAT | O_WRONLY, 0644);
      if (fd < 0) abort();
      rump_sys_close(fd);
    }
  }
};

RumpDir& rump_dir(int n) {
  static RumpDir* dirs[3] = {};
  int slot = n <= 1000 ? 0 : n <= 10000 ? 1 : 2;
  if (!dirs[slot]) dirs[slot] = new RumpDir(n);
  rump_kernel_set_current(dirs[slot]->k);
  return *dirs[slot];
}

std::string host_dir(int n) {
  std::string d = "/tmp/ext2_bench_host." + std::to_string(getpid()) + "." + std::to_string(n);
  if (::mkdir(d.c_str(), 0755) == 0) {
    for (int i = 0; i < n; i++) ::close(::open((d + "/" + name_of(i)).c_str(), O_CREAT | O_WRONLY, 0644));
  }
  return d;
}

void BM_lookup_rump(benchmark::State& s) {
  int n = static_cast<int>(s.range(0));
  rump_dir(n);
  int i = 0;
  struct stat st;
  for (auto _ : s) {
    if (rump_sys_lstat(("/mnt/big/" + name_of(i)).c_str(), &st) != 0) abort();
    i = (i + 7) % n;
  }
  s.SetItemsProcessed(s.iterations());
}

void BM_lookup_host(benchmark::State& s) {
  int n = static_cast<int>(s.range(0));
  std::string d = host_dir(n);
  int i = 0;
  struct stat st;
  for (auto _ : s) {
    if (::lstat((d + "/" + name_of(i)).c_str(), &st) != 0) abort();
    i = (i + 7) % n;
  }
  s.SetItemsProcessed(s.iterations());
}

void BM_create_unlink_rump(benchmark::State& s) {
  int n = static_cast<int>(s.range(0));
  rump_dir(n);
  int i = 0;
  for (auto _ : s) {
    std::string p = "/mnt/big/new_" + std::to_string(i++ % 64);
    int fd = rump_sys_open(p.c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd < 0) abort();
    rump_sys_close(fd);
    rump_sys_unlink(p.c_str());
  }
  s.SetItemsProcessed(s.iterations());
}

void BM_create_unlink_host(benchmark::State& s) {
  int n = static_cast<int>(s.range(0));
  std::string d = host_dir(n);
  int i = 0;
  for (auto _ : s) {
    std::string p = d + "/new_" + std::to_string(i++ % 64);
    ::close(::open(p.c_str(), O_CREAT | O_WRONLY, 0644));
    ::unlink(p.c_str());
  }
  s.SetItemsProcessed(s.iterations());
}

}  // namespace

BENCHMARK(BM_lookup_rump)->Name("dir_lookup/rump")->Arg(1000)->Arg(10000)->Arg(100000);
BENCHMARK(BM_lookup_host)->Name("dir_lookup/host")->Arg(1000)->Arg(10000)->Arg(100000);
BENCHMARK(BM_create_unlink_rump)->Name("dir_create_unlink/rump")->Arg(1000)->Arg(10000)->Arg(100000);
BENCHMARK(BM_create_unlink_host)->Name("dir_create_unlink/host")->Arg(1000)->Arg(10000)->Arg(100000);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  // The images and host directories go with the run.
  std::string pid = std::to_string(getpid());
  std::system(("rm -rf /tmp/ext2_bench." + pid + ".* /tmp/ext2_bench_host." + pid + ".*").c_str());
  return 0;
}
