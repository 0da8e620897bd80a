// vfs_bench: the VFS faction's figures next to the host's (tmpfs at
// /dev/shm) for the same work, in one run.
//
//   create_close_unlink   open(O_CREAT) + close + unlink of an empty file
//   write_seq/read_seq    sequential 4 KiB and 1 MiB writes / reads of a 16 MiB file
//   stat_deep             stat of a 10-component path
//   pipe_throughput       64 KiB writes through a pipe, a reader thread draining it
//   pipe_pingpong         one byte back and forth between two threads
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench_kernel.h"

namespace {

// The same operations on either side.
struct Rump {
  static int open(const char* p, int f, mode_t m) { return rump_sys_open(p, f, m); }
  static int close(int fd) { return rump_sys_close(fd); }
  static int unlink(const char* p) { return rump_sys_unlink(p); }
  static long write(int fd, const void* b, size_t n) { return rump_sys_write(fd, b, n); }
  static long read(int fd, void* b, size_t n) { return rump_sys_read(fd, b, n); }
  static long lseek(int fd, off_t o, int w) { return rump_sys_lseek(fd, o, w); }
  static int stat(const char* p, struct stat* st) { return rump_sys_stat(p, st); }
  static int mkdir(const char* p, mode_t m) { return rump_sys_mkdir(p, m); }
  static int pipe(int* p) { return rump_sys_pipe(p); }
  static std::string dir() {
    bench_kernel();
    return "/bench";
  }
  static void thread_init() { bench_kernel(); }
};
struct Host {
  static int open(const char* p, int f, mode_t m) { return ::open(p, f, m); }
  static int close(int fd) { return ::close(fd); }
  static int unlink(const char* p) { return ::unlink(p); }
  static long write(int fd, const void* b, size_t n) { return ::write(fd, b, n); }
  static long read(int fd, void* b, size_t n) { return ::read(fd, b, n); }
  static long lseek(int fd, off_t o, int w) { return ::lseek(fd, o, w); }
  static int stat(const char* p, struct stat* st) { return ::stat(p, st); }
  static int mkdir(const char* p, mode_t m) { return ::mkdir(p, m); }
  static int pipe(int* p) { return ::pipe(p); }
  static std::string dir() { return "/dev/shm/vfs_bench." + std::to_string(getpid()); }
  static void thread_init() {}
};

template <class S>
void BM_create_close_unlink(benchmark::State& s) {
  std::string d = S::dir();
  S::mkdir(d.c_str(), 0755);
  std::string f = d + "/f";
  for (auto _ : s) {
    int fd = S::open(f.c_str(), O_CREAT | O_WRONLY, 0644);
    S::close(fd);
    S::unlink(f.c_str());
  }
  s.SetItemsProcessed(s.iterations());
}

template <class S>
void BM_seq(benchmark::State& s, bool write) {
  size_t bs = static_cast<size_t>(s.range(0));
  constexpr size_t kFile = 16 << 20;
  std::string d = S::dir();
  S::mkdir(d.c_str(), 0755);
  std::string f = d + "/seq";
  std::vector<char> buf(bs, 'x');
  int fd = S::open(f.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
  for (size_t off = 0; off < kFile; off += bs) S::write(fd, buf.data(), bs);
  size_t off = kFile;
  for (auto _ : s) {
    if (off >= kFile) {
      S::lseek(fd, 0, SEEK_SET);
      off = 0;
    }
    long n = write ? S::write(fd, buf.data(), bs) : S::read(fd, buf.data(), bs);
    if (n != static_cast<long>(bs)) s.SkipWithError("short transfer");
    off += bs;
  }
  S::close(fd);
  S::unlink(f.c_str());
  s.SetBytesProcessed(s.iterations() * bs);
}
template <class S>
void BM_write_seq(benchmark::State& s) { BM_seq<S>(s, true); }
template <class S>
void BM_read_seq(benchmark::State& s) { BM_seq<S>(s, false); }

template <class S>
void BM_stat_deep(benchmark::State& s) {
  std::string p = S::dir();
  S::mkdir(p.c_str(), 0755);
  for (int i = 0; i < 9; i++) {
    p += "/d" + std::to_string(i);
    S::mkdir(p.c_str(), 0755);
  }
  p += "/file";
  S::close(S::open(p.c_str(), O_CREAT | O_WRONLY, 0644));
  struct stat st;
  for (auto _ : s) benchmark::DoNotOptimize(S::stat(p.c_str(), &st));
  s.SetItemsProcessed(s.iterations());
}

template <class S>
void BM_pipe_throughput(benchmark::State& s) {
  S::dir();
  int p[2];
  S::pipe(p);
  constexpr size_t kChunk = 64 * 1024;
  std::thread r([&] {
    S::thread_init();
    std::vector<char> b(kChunk);
    while (S::read(p[0], b.data(), kChunk) > 0) {
    }
  });
  std::vector<char> buf(kChunk, 'p');
  for (auto _ : s) {
    if (S::write(p[1], buf.data(), kChunk) != static_cast<long>(kChunk)) s.SkipWithError("short write");
  }
  S::close(p[1]);
  r.join();
  S::close(p[0]);
  s.SetBytesProcessed(s.iterations() * kChunk);
}

template <class S>
void BM_pipe_pingpong(benchmark::State& s) {
  S::dir();
  int a[2], b[2];
  S::pipe(a);
  S::pipe(b);
  std::thread echo([&] {
    S::thread_init();
    char c;
    while (S::read(a[0], &c, 1) == 1) S::write(b[1], &c, 1);
    S::close(b[1]);
  });
  char c = 'x';
  for (auto _ : s) {
    S::write(a[1], &c, 1);
    S::read(b[0], &c, 1);
  }
  S::close(a[1]);
  echo.join();
  S::close(a[0]);
  S::close(b[0]);
  s.SetItemsProcessed(s.iterations());
}

}  // namespace

BENCHMARK_TEMPLATE(BM_create_close_unlink, Rump)->Name("create_close_unlink/rump");
BENCHMARK_TEMPLATE(BM_create_close_unlink, Host)->Name("create_close_unlink/host");
BENCHMARK_TEMPLATE(BM_write_seq, Rump)->Name("write_seq/rump")->Arg(4096)->Arg(1 << 20);
BENCHMARK_TEMPLATE(BM_write_seq, Host)->Name("write_seq/host")->Arg(4096)->Arg(1 << 20);
BENCHMARK_TEMPLATE(BM_read_seq, Rump)->Name("read_seq/rump")->Arg(4096)->Arg(1 << 20);
BENCHMARK_TEMPLATE(BM_read_seq, Host)->Name("read_seq/host")->Arg(4096)->Arg(1 << 20);
BENCHMARK_TEMPLATE(BM_stat_deep, Rump)->Name("stat_deep/rump");
BENCHMARK_TEMPLATE(BM_stat_deep, Host)->Name("stat_deep/host");
BENCHMARK_TEMPLATE(BM_pipe_throughput, Rump)->Name("pipe_throughput/rump")->UseRealTime();
BENCHMARK_TEMPLATE(BM_pipe_throughput, Host)->Name("pipe_throughput/host")->UseRealTime();
BENCHMARK_TEMPLATE(BM_pipe_pingpong, Rump)->Name("pipe_pingpong/rump")->UseRealTime();
BENCHMARK_TEMPLATE(BM_pipe_pingpong, Host)->Name("pipe_pingpong/host")->UseRealTime();

BENCHMARK_MAIN();
