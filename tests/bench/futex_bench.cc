// futex_bench: futex figures next to the host's for the same work, and the
// ratios (printed after the table).
//
//   wake_nowaiter   FUTEX_WAKE of a word nobody waits on
//                   (budget: rump <= 0.1 x host time)
//   pingpong        two threads hand a turn back and forth with
//                   FUTEX_WAIT / FUTEX_WAKE; time per round trip
//                   (budget: rump throughput >= 2 x host)
//
// The rump side runs on a kernel with two virtual CPUs, each thread an LWP
// of one process in the host's address space.
#include <benchmark/benchmark.h>
#include <linux/futex.h>
#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <thread>

namespace {

rump_kernel* g_k = nullptr;
pid_t g_pid = 0;

void ensure_kernel() {
  if (g_k) {
    rump_kernel_set_current(g_k);
    return;
  }
  rump_boot_config c;
  rump_boot_config_init(&c);
  c.ncpu = 2;
  if (rump_kernel_boot(&c, &g_k) != 0) abort();
  rump_kernel_set_current(g_k);
  if (rump_lwproc_rfork(RUMP_RFFDG) != 0) abort();
  g_pid = rump_sys_getpid();
}

template <bool Rump>
long fx(uint32_t* u, int op, uint32_t val) {
  if constexpr (Rump) return rump_sys_futex(u, op, val, nullptr, nullptr, 0);
  else return syscall(SYS_futex, u, op, val, nullptr, nullptr, 0);
}

template <bool Rump>
void BM_wake_nowaiter(benchmark::State& s) {
  if (Rump) ensure_kernel();
  alignas(4) static uint32_t w = 0;
  for (auto _ : s) benchmark::DoNotOptimize(fx<Rump>(&w, FUTEX_WAKE_PRIVATE, 1));
  s.SetItemsProcessed(s.iterations());
}
BENCHMARK(BM_wake_nowaiter<true>)->Name("wake_nowaiter/rump");
BENCHMARK(BM_wake_nowaiter<false>)->Name("wake_nowaiter/host");

template <bool Rump>
void player(uint32_t* turn, uint32_t me, long rounds) {
  for (long i = 0; i < rounds; i++) {
    uint32_t t;
    while ((t = __atomic_load_n(turn, __ATOMIC_ACQUIRE)) % 2 != me) fx<Rump>(turn, FUTEX_WAIT_PRIVATE, t);
    __atomic_fetch_add(turn, 1, __ATOMIC_RELEASE);
    fx<Rump>(turn, FUTEX_WAKE_PRIVATE, 1);
  }
}

template <bool Rump>
void BM_pingpong(benchmark::State& s) {
  if (Rump) ensure_kernel();
  constexpr long kRounds = 2000;
  alignas(4) static uint32_t turn;
  for (auto _ : s) {
    turn = 0;
    std::thread other([] {
      if (Rump) {
        rump_kernel_set_current(g_k);
        if (rump_lwproc_newlwp(g_pid) != 0) abort();
      }
      player<Rump>(&turn, 1, kRounds);
      if (Rump) rump_lwproc_releaselwp();
    });
    player<Rump>(&turn, 0, kRounds);
    other.join();
  }
  s.SetItemsProcessed(s.iterations() * kRounds);
}
BENCHMARK(BM_pingpong<true>)->Name("pingpong/rump")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_pingpong<false>)->Name("pingpong/host")->UseRealTime()->Unit(benchmark::kMicrosecond);

// Prints the table as usual, then rump / host time for each pair.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      std::string n = r.benchmark_name();
      // "pingpong/rump/real_time": the pair is named without the suffix.
      if (size_t at = n.find("/real_time"); at != std::string::npos) n.erase(at);
      times_[n] = r.GetAdjustedRealTime();
    }
    ConsoleReporter::ReportRuns(runs);
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    for (const char* n : {"wake_nowaiter", "pingpong"}) {
      auto a = times_.find(std::string(n) + "/rump"), b = times_.find(std::string(n) + "/host");
      if (a == times_.end() || b == times_.end() || b->second == 0) continue;
      std::printf("%s: rump/host time ratio %.3f (host/rump throughput %.2fx)\n", n, a->second / b->second,
                  b->second / a->second);
    }
  }

 private:
  std::map<std::string, double> times_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  RatioReporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  benchmark::Shutdown();
  return 0;
}
