// vm_bench: libvmspace against the host for the same work, side by side:
// BM_<what>/rump and BM_<what>/host. Run the Release build:
//   build-vm-rel/tests/bench/vm_bench
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "vmspace.h"

namespace {

using rump::Kmem;
using rump::RefPtr;
using rump::vm::kPageSize;
using rump::vm::Vmspace;

constexpr size_t k64K = 64 * 1024;

RefPtr<Vmspace> space(Kmem& kmem) { return Vmspace::create(kmem).value(); }

uint64_t touched_region(Vmspace& vs, size_t len) {
  uint64_t a = vs.map(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS).value();
  std::vector<char> buf(len, 1);
  if (!vs.copyout(buf.data(), a, len).ok()) std::abort();
  return a;
}

// ---- copyin / copyout of 64 KiB vs memcpy ----

void copyin_rump(benchmark::State& st) {
  Kmem kmem;
  auto vs = space(kmem);
  uint64_t a = touched_region(*vs, k64K);
  std::vector<char> dst(k64K);
  for (auto _ : st) {
    if (!vs->copyin(a, dst.data(), k64K).ok()) st.SkipWithError("copyin");
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(st.iterations() * k64K);
}

void copyout_rump(benchmark::State& st) {
  Kmem kmem;
  auto vs = space(kmem);
  uint64_t a = touched_region(*vs, k64K);
  std::vector<char> src(k64K, 2);
  for (auto _ : st) {
    if (!vs->copyout(src.data(), a, k64K).ok()) st.SkipWithError("copyout");
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(st.iterations() * k64K);
}

void memcpy_host(benchmark::State& st) {
  std::vector<char> src(k64K, 1), dst(k64K);
  for (auto _ : st) {
    std::memcpy(dst.data(), src.data(), k64K);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(st.iterations() * k64K);
}

// ---- demand-zero fault of a fresh page vs the host's first touch ----
// Both sides work through a 16 MiB region one page per iteration and make a
// fresh region (untimed) when it is used up.

constexpr size_t kRegion = 16 << 20;

void demand_zero_rump(benchmark::State& st) {
  Kmem kmem;
  auto vs = space(kmem);
  uint64_t a = vs->map(0, kRegion, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS).value();
  size_t off = 0;
  char c = 1;
  for (auto _ : st) {
    if (off == kRegion) {
      st.PauseTiming();
      (void)vs->unmap(a, kRegion);
      a = vs->map(0, kRegion, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS).value();
      off = 0;
      st.ResumeTiming();
    }
    if (!vs->copyout(&c, a + off, 1).ok()) st.SkipWithError("copyout");
    off += kPageSize;
  }
}

void demand_zero_host(benchmark::State& st) {
  auto fresh = [] {
    void* p = mmap(nullptr, kRegion, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    return static_cast<volatile char*>(p);
  };
  volatile char* p = fresh();
  size_t off = 0;
  for (auto _ : st) {
    if (off == kRegion) {
      st.PauseTiming();
      munmap(const_cast<char*>(p), kRegion);
      p = fresh();
      off = 0;
      st.ResumeTiming();
    }
    p[off] = 1;
    off += kPageSize;
  }
  munmap(const_cast<char*>(p), kRegion);
}

// ---- fork of 64 MiB touched memory ----

constexpr size_t k64M = 64 << 20;

void fork_rump(benchmark::State& st) {
  Kmem kmem;
  auto vs = space(kmem);
  touched_region(*vs, k64M);
  for (auto _ : st) {
    auto child = vs->fork();
    if (!child.ok()) st.SkipWithError("fork");
    benchmark::DoNotOptimize(child.value().get());
  }  // the child is torn down inside the loop too
}

void fork_host(benchmark::State& st) {
  void* p = mmap(nullptr, k64M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  std::memset(p, 1, k64M);
  for (auto _ : st) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    int status;
    waitpid(pid, &status, 0);
  }
  munmap(p, k64M);
}

// ---- mmap + munmap pairs ----

void map_unmap_rump(benchmark::State& st) {
  Kmem kmem;
  auto vs = space(kmem);
  for (auto _ : st) {
    auto a = vs->map(0, 4 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!a.ok() || !vs->unmap(a.value(), 4 * kPageSize).ok()) st.SkipWithError("map");
  }
}

void map_unmap_host(benchmark::State& st) {
  for (auto _ : st) {
    void* p = mmap(nullptr, 4 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    benchmark::DoNotOptimize(p);
    munmap(p, 4 * kPageSize);
  }
}

}  // namespace

BENCHMARK(copyin_rump)->Name("BM_copyin_64k/rump");
BENCHMARK(memcpy_host)->Name("BM_copyin_64k/host");
BENCHMARK(copyout_rump)->Name("BM_copyout_64k/rump");
BENCHMARK(memcpy_host)->Name("BM_copyout_64k/host");
BENCHMARK(demand_zero_rump)->Name("BM_demand_zero_fault/rump");
BENCHMARK(demand_zero_host)->Name("BM_demand_zero_fault/host");
BENCHMARK(fork_rump)->Name("BM_fork_64m/rump")->Unit(benchmark::kMicrosecond);
BENCHMARK(fork_host)->Name("BM_fork_64m/host")->Unit(benchmark::kMicrosecond);
BENCHMARK(map_unmap_rump)->Name("BM_map_unmap/rump");
BENCHMARK(map_unmap_host)->Name("BM_map_unmap/host");

BENCHMARK_MAIN();
