// procfs_bench: reading /proc/self/status in the kernel next to the host's
// for the same work, in one run.
//
//   status_open_read   open + read (one 4 KiB read) + close of /proc/self/status
//   status_pread       pread at offset 0 of an open /proc/self/status (the
//                      text is made afresh on every read, as Linux's)
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <unistd.h>

#include <cstdlib>

#include "bench_kernel.h"

namespace {

struct Rump {
  static void init() { bench_kernel(); }
  static int open(const char* p, int f) { return rump_sys_open(p, f); }
  static int close(int fd) { return rump_sys_close(fd); }
  static long read(int fd, void* b, size_t n) { return rump_sys_read(fd, b, n); }
  static long pread(int fd, void* b, size_t n, off_t o) { return rump_sys_pread64(fd, b, n, o); }
};
struct Host {
  static void init() {}
  static int open(const char* p, int f) { return ::open(p, f); }
  static int close(int fd) { return ::close(fd); }
  static long read(int fd, void* b, size_t n) { return ::read(fd, b, n); }
  static long pread(int fd, void* b, size_t n, off_t o) { return ::pread(fd, b, n, o); }
};

template <class S>
void BM_status_open_read(benchmark::State& s) {
  S::init();
  char buf[4096];
  for (auto _ : s) {
    int fd = S::open("/proc/self/status", O_RDONLY);
    long n = S::read(fd, buf, sizeof buf);
    if (n <= 0) s.SkipWithError("empty status");
    S::close(fd);
    benchmark::DoNotOptimize(buf);
  }
  s.SetItemsProcessed(s.iterations());
}

template <class S>
void BM_status_pread(benchmark::State& s) {
  S::init();
  char buf[4096];
  int fd = S::open("/proc/self/status", O_RDONLY);
  for (auto _ : s) {
    if (S::pread(fd, buf, sizeof buf, 0) <= 0) s.SkipWithError("empty status");
    benchmark::DoNotOptimize(buf);
  }
  S::close(fd);
  s.SetItemsProcessed(s.iterations());
}

}  // namespace

BENCHMARK_TEMPLATE(BM_status_open_read, Rump)->Name("status_open_read/rump");
BENCHMARK_TEMPLATE(BM_status_open_read, Host)->Name("status_open_read/host");
BENCHMARK_TEMPLATE(BM_status_pread, Rump)->Name("status_pread/rump");
BENCHMARK_TEMPLATE(BM_status_pread, Host)->Name("status_pread/host");

BENCHMARK_MAIN();
