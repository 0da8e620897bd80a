// kern_bench: the kernel core's figures next to the host's for the same work.
//
//   getpid              rump_sys_getpid()           vs syscall(SYS_getpid)
//   boot_halt           boot + halt of a kernel     vs fork + _exit + waitpid
//   rfork_release       rump_lwproc_rfork + release vs fork + _exit + waitpid
//   schedule            take + give back a virtual CPU vs an uncontended host mutex
//   getpid threads      syscalls/s with 1 and 2 host threads
//   boot_at_live/N      boot of the N-th kernel while N - 1 others are alive
//                       (its halt is not timed), N = 1, 100, 10000: flat is
//                       the goal
// Counters: idle_kernel_bytes (kernel memory right after boot);
// boot_at_live: kernel_bytes_per_kernel (the kernels' own count) and
// host_bytes_per_kernel (the host heap, everything included), over the N
// live kernels.
#include <benchmark/benchmark.h>
#include <rump/rump.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <malloc.h>
#include <pthread.h>

#include <vector>

#include "kern/curlwp.h"
#include "kern/kernel.h"

namespace {

struct rump_kernel* bench_kernel() {
  static struct rump_kernel* k = [] {
    struct rump_kernel* kk = nullptr;
    if (rump_kernel_boot(nullptr, &kk) != 0) abort();
    return kk;
  }();
  rump_kernel_set_current(k);
  return k;
}

void host_fork_wait() {
  pid_t p = fork();
  if (p == 0) _exit(0);
  int st;
  waitpid(p, &st, 0);
}

void BM_getpid_rump(benchmark::State& s) {
  bench_kernel();
  for (auto _ : s) benchmark::DoNotOptimize(rump_sys_getpid());
  s.SetItemsProcessed(s.iterations());
}
void BM_getpid_host(benchmark::State& s) {
  for (auto _ : s) benchmark::DoNotOptimize(syscall(SYS_getpid));
  s.SetItemsProcessed(s.iterations());
}
BENCHMARK(BM_getpid_rump)->Name("getpid/rump")->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_getpid_host)->Name("getpid/host")->Threads(1)->Threads(2)->UseRealTime();

// The same call from a process's bound LWP (not implicit context).
void BM_getpid_bound_rump(benchmark::State& s) {
  bench_kernel();
  rump_lwproc_rfork(RUMP_RFFDG);
  for (auto _ : s) benchmark::DoNotOptimize(rump_sys_getpid());
  rump_lwproc_releaselwp();
}
BENCHMARK(BM_getpid_bound_rump)->Name("getpid_bound/rump");

void BM_boot_halt_rump(benchmark::State& s) {
  size_t idle = 0;
  for (auto _ : s) {
    struct rump_kernel* k = nullptr;
    if (rump_kernel_boot(nullptr, &k) != 0) s.SkipWithError("boot failed");
    idle = rump_kernel_memory_in_use(k);
    rump_kernel_halt(k);
  }
  s.counters["idle_kernel_bytes"] = static_cast<double>(idle);
}
void BM_boot_halt_host(benchmark::State& s) {
  for (auto _ : s) host_fork_wait();
}
BENCHMARK(BM_boot_halt_rump)->Name("boot_halt/rump")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_boot_halt_host)->Name("boot_halt/host(fork+wait)")->Unit(benchmark::kMicrosecond);

void BM_rfork_release_rump(benchmark::State& s) {
  bench_kernel();
  for (auto _ : s) {
    rump_lwproc_rfork(RUMP_RFFDG);
    rump_lwproc_releaselwp();
  }
}
void BM_rfork_release_host(benchmark::State& s) {
  for (auto _ : s) host_fork_wait();
}
BENCHMARK(BM_rfork_release_rump)->Name("rfork_release/rump")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_rfork_release_host)->Name("rfork_release/host(fork+wait)")->Unit(benchmark::kMicrosecond);

void BM_schedule_rump(benchmark::State& s) {
  rump::Kernel& k = *reinterpret_cast<rump::Kernel*>(bench_kernel());
  rump::Lwp* l = k.procs().lwp0();
  for (auto _ : s) {
    k.sched().schedule(l);
    k.sched().unschedule(l);
  }
}
void BM_schedule_host(benchmark::State& s) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  for (auto _ : s) {
    pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
  }
}
BENCHMARK(BM_schedule_rump)->Name("schedule/rump");
BENCHMARK(BM_schedule_host)->Name("schedule/host(mutex)");

// Boot time and memory per kernel with many kernels alive: a registry or a
// host resource that grows with the number of kernels shows here.
void BM_boot_at_live(benchmark::State& s) {
  const int n = static_cast<int>(s.range(0));
  rump_boot_config c;
  rump_boot_config_init(&c);
  c.ncpu = 1;
  c.verbose = 0;
  size_t heap0 = mallinfo2().uordblks;
  std::vector<struct rump_kernel*> live(n, nullptr);
  for (auto& k : live)
    if (rump_kernel_boot(&c, &k) != 0) s.SkipWithError("boot failed");
  // The memory of n live kernels, measured once (outside the timed loop).
  size_t kernel_bytes = 0;
  for (auto* o : live) kernel_bytes += rump_kernel_memory_in_use(o);
  size_t host_bytes = mallinfo2().uordblks - heap0;
  rump_kernel_halt(live.back());
  live.pop_back();
  // Timed: the boot of the n-th kernel (its halt is not timed).
  for (auto _ : s) {
    struct rump_kernel* k = nullptr;
    if (rump_kernel_boot(&c, &k) != 0) s.SkipWithError("boot failed");
    s.PauseTiming();
    rump_kernel_halt(k);
    s.ResumeTiming();
  }
  for (auto* k : live) rump_kernel_halt(k);
  s.counters["kernel_bytes_per_kernel"] = static_cast<double>(kernel_bytes) / n;
  s.counters["host_bytes_per_kernel"] = static_cast<double>(host_bytes) / n;
}
BENCHMARK(BM_boot_at_live)->Name("boot_at_live/rump")->Arg(1)->Arg(100)->Arg(10000)
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
