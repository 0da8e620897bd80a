// sim_bench: deterministic simulation ("sim" backend) next to the host.
//
//   pingpong   a 1-byte round trip over two pipes between two client
//              fibers of a sim kernel  vs  two host threads over host pipes
//   boot_halt  boot + halt of a sim kernel  vs  fork + _exit + waitpid
// Counter round_trip: seconds per round trip (shown as a rate inverted).
#include <benchmark/benchmark.h>
#include <rump/rump.h>
#include <rump/sim.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

namespace {

constexpr int kRoundTrips = 1000;

struct Pipes {
  int ab[2];
  int ba[2];
};

void ping(void* p) {
  auto* s = static_cast<Pipes*>(p);
  char c = 'x';
  for (int i = 0; i < kRoundTrips; i++) {
    rump_sys_write(s->ab[1], &c, 1);
    rump_sys_read(s->ba[0], &c, 1);
  }
}

void pong(void* p) {
  auto* s = static_cast<Pipes*>(p);
  char c;
  for (int i = 0; i < kRoundTrips; i++) {
    rump_sys_read(s->ab[0], &c, 1);
    rump_sys_write(s->ba[1], &c, 1);
  }
}

struct rump_kernel* boot_sim(uint64_t seed) {
  rump_boot_config c;
  rump_boot_config_init(&c);
  c.backend = "sim";
  c.seed = seed;
  struct rump_kernel* k = nullptr;
  if (rump_kernel_boot(&c, &k) != 0) abort();
  return k;
}

void BM_pingpong_sim(benchmark::State& s) {
  struct rump_kernel* k = boot_sim(1);
  rump_kernel_set_current(k);
  Pipes p;
  if (rump_sys_pipe(p.ab) != 0 || rump_sys_pipe(p.ba) != 0) s.SkipWithError("pipe");
  for (auto _ : s) {
    rump_sim_spawn(k, ping, &p);
    rump_sim_spawn(k, pong, &p);
    if (rump_sim_run(k) != 0) s.SkipWithError("run");
  }
  s.counters["round_trip"] = benchmark::Counter(static_cast<double>(s.iterations()) * kRoundTrips,
                                                benchmark::Counter::kIsRate |
                                                    benchmark::Counter::kInvert);
  rump_kernel_set_current(nullptr);
  rump_kernel_halt(k);
}

void BM_pingpong_host(benchmark::State& s) {
  int ab[2], ba[2];
  if (pipe(ab) != 0 || pipe(ba) != 0) s.SkipWithError("pipe");
  for (auto _ : s) {
    std::thread peer([&] {
      char c;
      for (int i = 0; i < kRoundTrips; i++) {
        if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1) abort();
      }
    });
    char c = 'x';
    for (int i = 0; i < kRoundTrips; i++) {
      if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1) abort();
    }
    peer.join();
  }
  s.counters["round_trip"] = benchmark::Counter(static_cast<double>(s.iterations()) * kRoundTrips,
                                                benchmark::Counter::kIsRate |
                                                    benchmark::Counter::kInvert);
  close(ab[0]);
  close(ab[1]);
  close(ba[0]);
  close(ba[1]);
}
BENCHMARK(BM_pingpong_sim)->Name("pingpong/sim(2 fibers)")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_pingpong_host)->Name("pingpong/host(2 threads)")->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_boot_halt_sim(benchmark::State& s) {
  uint64_t seed = 0;
  for (auto _ : s) rump_kernel_halt(boot_sim(seed++));
}
void BM_boot_halt_host(benchmark::State& s) {
  for (auto _ : s) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    int st;
    waitpid(p, &st, 0);
  }
}
BENCHMARK(BM_boot_halt_sim)->Name("boot_halt/sim")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_boot_halt_host)->Name("boot_halt/host(fork+wait)")->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
