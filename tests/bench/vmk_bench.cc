// vmk_bench: the vm faction against the host, side by side in one run.
//
//   fork64M/rump   rump_lwproc_rfork of an isolated process with 64 MiB
//                  touched, then releaselwp of the child (COW: no page copied)
//   fork64M/host   fork() of a host process with 64 MiB touched, child
//                  _exit(0), waitpid            budget: rump <= 0.5 x host
//   mmap_munmap/*  one anonymous page mapped and unmapped: rump_sys_mmap /
//                  rump_sys_munmap in an isolated process vs the host's
// After the runs, the ratios are printed.
#include <rump/rump.h>

#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace {

constexpr size_t k64M = size_t{64} << 20;
std::map<std::string, double> g_ns;  // name -> ns per iteration

void record(benchmark::State& s, const char* name, double seconds) {
  if (s.iterations()) g_ns[name] = seconds * 1e9 / static_cast<double>(s.iterations());
}

struct Isolated {
  struct lwp* l = nullptr;
  Isolated() {
    rump_init();
    rump_lwproc_switch(nullptr);
    if (rump_lwproc_rfork(RUMP_RFVMSPACE | RUMP_RFNOWAIT) != 0) std::abort();
    l = rump_lwproc_curlwp();
  }
  ~Isolated() {
    rump_lwproc_switch(l);
    rump_lwproc_releaselwp();
  }
};

void BM_fork_rump(benchmark::State& s) {
  Isolated p;
  char* g = static_cast<char*>(rump_sys_mmap(nullptr, k64M, PROT_READ | PROT_WRITE,
                                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (g == MAP_FAILED) std::abort();
  std::vector<char> chunk(1 << 20, 1);
  for (size_t off = 0; off < k64M; off += chunk.size())
    if (rump_copyout(chunk.data(), g + off, chunk.size()) != 0) std::abort();
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : s) {
    if (rump_lwproc_rfork(RUMP_RFNOWAIT) != 0) std::abort();
    rump_lwproc_releaselwp();
    rump_lwproc_switch(p.l);
  }
  record(s, "fork64M/rump", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  rump_sys_munmap(g, k64M);
}
BENCHMARK(BM_fork_rump)->Name("fork64M/rump")->Unit(benchmark::kMicrosecond);

void BM_fork_host(benchmark::State& s) {
  char* m = static_cast<char*>(mmap(nullptr, k64M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (m == MAP_FAILED) std::abort();
  std::memset(m, 1, k64M);
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : s) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    int st;
    waitpid(pid, &st, 0);
  }
  record(s, "fork64M/host", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  munmap(m, k64M);
}
BENCHMARK(BM_fork_host)->Name("fork64M/host(fork+_exit+waitpid)")->Unit(benchmark::kMicrosecond);

void BM_mmap_rump(benchmark::State& s) {
  Isolated p;
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : s) {
    void* a = rump_sys_mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    benchmark::DoNotOptimize(a);
    rump_sys_munmap(a, 4096);
  }
  record(s, "mmap_munmap/rump", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}
BENCHMARK(BM_mmap_rump)->Name("mmap_munmap/rump");

void BM_mmap_host(benchmark::State& s) {
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : s) {
    void* a = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    benchmark::DoNotOptimize(a);
    munmap(a, 4096);
  }
  record(s, "mmap_munmap/host", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}
BENCHMARK(BM_mmap_host)->Name("mmap_munmap/host");

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  auto ratio = [](const char* what, const char* r, const char* h, double budget) {
    if (!g_ns.count(r) || !g_ns.count(h)) return;
    double x = g_ns[r] / g_ns[h];
    if (budget > 0)
      std::printf("%-12s rump %10.0f ns  host %10.0f ns  ratio %.3f (budget <= %.2f: %s)\n", what, g_ns[r], g_ns[h], x,
                  budget, x <= budget ? "met" : "MISSED");
    else
      std::printf("%-12s rump %10.0f ns  host %10.0f ns  ratio %.3f\n", what, g_ns[r], g_ns[h], x);
  };
  ratio("fork64M", "fork64M/rump", "fork64M/host", 0.5);
  ratio("mmap_munmap", "mmap_munmap/rump", "mmap_munmap/host", 0);
  return 0;
}
