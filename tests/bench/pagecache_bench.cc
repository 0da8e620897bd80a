// pagecache_bench: file data through the page cache of an ext4 image
// (made by the host's mke2fs, mounted in the kernel) next to the host
// kernel's tmpfs (/dev/shm) doing the same work, in one run. Divide the
// rump figure by the host's for the ratio.
//
//   seq_write_64m   open(O_TRUNC) + 64 one-MiB writes + fsync + close
//   seq_read_64m    open + 64 one-MiB reads + close of a 64 MiB file
//   mmap_read_64m   mmap(MAP_SHARED) of that file, copy all 64 MiB out of
//                   the mapping, munmap (rump: from an isolated process,
//                   through rump_copyin, as a fuzzer or remote client
//                   reaches its memory)
//   view_fsync_64m  one store through a writable MAP_SHARED view of a
//                   64 MiB file (rump: a host-space view of the cache's
//                   frames), then fsync (host: msync MS_SYNC): write-back
//                   compares every viewed page with its sum and writes the
//                   one that changed
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpvfs.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_image.h"

namespace {

constexpr size_t kFile = 64u << 20;
constexpr size_t kChunk = 1u << 20;

std::vector<char>& chunk() {
  static std::vector<char> c = [] {
    std::vector<char> v(kChunk);
    for (size_t i = 0; i < v.size(); i++) v[i] = static_cast<char>(i * 131 + 7);
    return v;
  }();
  return c;
}

// The kernel with an ext4 image mounted at /mnt, and /mnt/read holding
// 64 MiB; one per run.
struct RumpSide {
  struct rump_kernel* k = nullptr;
  std::string img;
  lwp* host_lwp = nullptr;
  lwp* isolated = nullptr;
  RumpSide() {
    img = "/tmp/pagecache_bench." + std::to_string(getpid());
    k = boot_with_ext4(img, "512M");
    int fd = rump_sys_open("/mnt/read", O_CREAT | O_WRONLY, 0644);
    for (size_t off = 0; off < kFile; off += kChunk)
      if (rump_sys_write(fd, chunk().data(), kChunk) != static_cast<long>(kChunk)) abort();
    rump_sys_fsync(fd);
    rump_sys_close(fd);
    host_lwp = rump_lwproc_curlwp();
  }
};

RumpSide& rump_side() {
  static RumpSide* r = new RumpSide();
  rump_kernel_set_current(r->k);
  return *r;
}

std::string host_dir() {
  std::string d = "/dev/shm/pagecache_bench." + std::to_string(getpid());
  if (::mkdir(d.c_str(), 0755) == 0) {
    int fd = ::open((d + "/read").c_str(), O_CREAT | O_WRONLY, 0644);
    for (size_t off = 0; off < kFile; off += kChunk)
      if (::write(fd, chunk().data(), kChunk) != static_cast<ssize_t>(kChunk)) abort();
    ::close(fd);
  }
  return d;
}

void BM_seq_write_rump(benchmark::State& s) {
  rump_side();
  for (auto _ : s) {
    int fd = rump_sys_open("/mnt/write", O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) abort();
    for (size_t off = 0; off < kFile; off += kChunk)
      if (rump_sys_write(fd, chunk().data(), kChunk) != static_cast<long>(kChunk)) abort();
    if (rump_sys_fsync(fd) != 0) abort();
    rump_sys_close(fd);
  }
  s.SetBytesProcessed(static_cast<int64_t>(s.iterations() * kFile));
}

void BM_seq_write_host(benchmark::State& s) {
  std::string f = host_dir() + "/write";
  for (auto _ : s) {
    int fd = ::open(f.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) abort();
    for (size_t off = 0; off < kFile; off += kChunk)
      if (::write(fd, chunk().data(), kChunk) != static_cast<ssize_t>(kChunk)) abort();
    if (::fsync(fd) != 0) abort();
    ::close(fd);
  }
  s.SetBytesProcessed(static_cast<int64_t>(s.iterations() * kFile));
}

void BM_seq_read_rump(benchmark::State& s) {
  rump_side();
  std::vector<char> buf(kChunk);
  for (auto _ : s) {
    int fd = rump_sys_open("/mnt/read", O_RDONLY, 0);
    for (size_t off = 0; off < kFile; off += kChunk)
      if (rump_sys_read(fd, buf.data(), kChunk) != static_cast<long>(kChunk)) abort();
    rump_sys_close(fd);
  }
  s.SetBytesProcessed(static_cast<int64_t>(s.iterations() * kFile));
}

void BM_seq_read_host(benchmark::State& s) {
  std::string f = host_dir() + "/read";
  std::vector<char> buf(kChunk);
  for (auto _ : s) {
    int fd = ::open(f.c_str(), O_RDONLY);
    for (size_t off = 0; off < kFile; off += kChunk)
      if (::read(fd, buf.data(), kChunk) != static_cast<ssize_t>(kChunk)) abort();
    ::close(fd);
  }
  s.SetBytesProcessed(static_cast<int64_t>(s.iterations() * kFile));
}

void BM_mmap_read_rump(benchmark::State& s) {
  RumpSide& r = rump_side();
  if (r.isolated == nullptr) {
    if (rump_lwproc_rfork(RUMP_RFVMSPACE | RUMP_RFNOWAIT) != 0) abort();
    r.isolated = rump_lwproc_curlwp();
  }
  rump_lwproc_switch(r.isolated);
  std::vector<char> buf(kChunk);
  for (auto _ : s) {
    int fd = rump_sys_open("/mnt/read", O_RDONLY, 0);
    void* p = rump_sys_mmap(nullptr, kFile, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) abort();
    for (size_t off = 0; off < kFile; off += kChunk)
      if (rump_copyin(static_cast<char*>(p) + off, buf.data(), kChunk) != 0) abort();
    rump_sys_munmap(p, kFile);
    rump_sys_close(fd);
  }
  rump_lwproc_switch(r.host_lwp);
  s.SetBytesProcessed(static_cast<int64_t>(s.iterations() * kFile));
}

void BM_mmap_read_host(benchmark::State& s) {
  std::string f = host_dir() + "/read";
  std::vector<char> buf(kChunk);
  for (auto _ : s) {
    int fd = ::open(f.c_str(), O_RDONLY);
    void* p = ::mmap(nullptr, kFile, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) abort();
    for (size_t off = 0; off < kFile; off += kChunk) std::memcpy(buf.data(), static_cast<char*>(p) + off, kChunk);
    benchmark::DoNotOptimize(buf.data());
    ::munmap(p, kFile);
    ::close(fd);
  }
  s.SetBytesProcessed(static_cast<int64_t>(s.iterations() * kFile));
}

void BM_view_fsync_rump(benchmark::State& s) {
  rump_side();
  int fd = rump_sys_open("/mnt/read", O_RDWR, 0);
  auto* p = static_cast<char*>(rump_sys_mmap(nullptr, kFile, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  if (p == MAP_FAILED) abort();
  uint64_t i = 0;
  for (auto _ : s) {
    p[(i++ % (kFile / 4096)) * 4096] ^= 1;
    if (rump_sys_fsync(fd) != 0) abort();
  }
  rump_sys_munmap(p, kFile);
  rump_sys_close(fd);
}

void BM_view_fsync_host(benchmark::State& s) {
  std::string f = host_dir() + "/read";
  int fd = ::open(f.c_str(), O_RDWR);
  auto* p = static_cast<char*>(::mmap(nullptr, kFile, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  if (p == MAP_FAILED) abort();
  uint64_t i = 0;
  for (auto _ : s) {
    p[(i++ % (kFile / 4096)) * 4096] ^= 1;
    if (::msync(p, kFile, MS_SYNC) != 0) abort();
  }
  ::munmap(p, kFile);
  ::close(fd);
}

}  // namespace

BENCHMARK(BM_seq_write_rump)->Name("seq_write_64m/rump")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_seq_write_host)->Name("seq_write_64m/host")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_seq_read_rump)->Name("seq_read_64m/rump")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_seq_read_host)->Name("seq_read_64m/host")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_mmap_read_rump)->Name("mmap_read_64m/rump")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_mmap_read_host)->Name("mmap_read_64m/host")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_view_fsync_rump)->Name("view_fsync_64m/rump")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_view_fsync_host)->Name("view_fsync_64m/host")->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  std::string pid = std::to_string(getpid());
  std::system(("rm -rf /tmp/pagecache_bench." + pid + " /dev/shm/pagecache_bench." + pid).c_str());
  return 0;
}
