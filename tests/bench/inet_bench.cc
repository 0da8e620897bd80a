// inet_bench: UDP and TCP over the rump kernel's loopback next to the
// host's loopback, in one run, and their ratios.
//
//   udp_pps/{rump,host}/64    64-byte datagrams: a batch of 32 sendto, then
//                             32 recvfrom on one thread (no loss possible)
//   udp_pps/{rump,host}/1400  the same with 1400-byte datagrams
//   tcp_bulk/{rump,host}      one connection, 64 KiB send then 64 KiB
//                             recv (MSG_WAITALL) per iteration, one thread;
//                             items are bytes
//   tcp_rr/{rump,host}        1-byte request and 1-byte response per
//                             iteration (client send, server recv and
//                             send, client recv), one thread
//   tcp_crr/{rump,host}       connect + accept + close of both ends per
//                             iteration (the server end closes first)
//
// At the end: rump items/s divided by host items/s for each (for tcp_rr
// also the inverse: rump latency over host latency), and the same ratio
// in CPU time per iteration of the benchmark thread (host CPU over rump
// CPU): on a loaded machine the wall times mostly measure how long the
// thread waited for a host CPU (it is preempted, not asleep), so the CPU
// ratio is the steadier figure.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "bench_kernel.h"

namespace {

struct Rump {
  static void init() { bench_kernel(); }
  static int socket() { return rump_sys_socket(AF_INET, SOCK_DGRAM, 0); }
  static int bind(int s, const sockaddr_in& a) { return rump_sys_bind(s, &a, sizeof a); }
  static int getsockname(int s, sockaddr_in& a) {
    socklen_t l = sizeof a;
    return rump_sys_getsockname(s, &a, &l);
  }
  static int setsockopt(int s, int lvl, int opt, int v) { return rump_sys_setsockopt(s, lvl, opt, &v, sizeof v); }
  static long sendto(int s, const void* b, size_t n, const sockaddr_in& a) {
    return rump_sys_sendto(s, b, n, 0, &a, sizeof a);
  }
  static long recv(int s, void* b, size_t n) { return rump_sys_recvfrom(s, b, n, 0, nullptr, nullptr); }
  static int close(int s) { return rump_sys_close(s); }
  static int stream() { return rump_sys_socket(AF_INET, SOCK_STREAM, 0); }
  static int listen(int s, int b) { return rump_sys_listen(s, b); }
  static int connect(int s, const sockaddr_in& a) { return rump_sys_connect(s, &a, sizeof a); }
  static int accept(int s) { return rump_sys_accept(s, nullptr, nullptr); }
  static long send(int s, const void* b, size_t n) { return rump_sys_sendto(s, b, n, 0, nullptr, 0); }
  static long recvall(int s, void* b, size_t n) { return rump_sys_recvfrom(s, b, n, MSG_WAITALL, nullptr, nullptr); }
};

struct Host {
  static void init() {}
  static int socket() { return ::socket(AF_INET, SOCK_DGRAM, 0); }
  static int bind(int s, const sockaddr_in& a) { return ::bind(s, reinterpret_cast<const sockaddr*>(&a), sizeof a); }
  static int getsockname(int s, sockaddr_in& a) {
    socklen_t l = sizeof a;
    return ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &l);
  }
  static int setsockopt(int s, int lvl, int opt, int v) { return ::setsockopt(s, lvl, opt, &v, sizeof v); }
  static long sendto(int s, const void* b, size_t n, const sockaddr_in& a) {
    return ::sendto(s, b, n, 0, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  }
  static long recv(int s, void* b, size_t n) { return ::recvfrom(s, b, n, 0, nullptr, nullptr); }
  static int close(int s) { return ::close(s); }
  static int stream() { return ::socket(AF_INET, SOCK_STREAM, 0); }
  static int listen(int s, int b) { return ::listen(s, b); }
  static int connect(int s, const sockaddr_in& a) {
    return ::connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  }
  static int accept(int s) { return ::accept(s, nullptr, nullptr); }
  static long send(int s, const void* b, size_t n) { return ::send(s, b, n, 0); }
  static long recvall(int s, void* b, size_t n) { return ::recv(s, b, n, MSG_WAITALL); }
};

template <class S>
void BM_udp_pps(benchmark::State& st) {
  S::init();
  const size_t size = static_cast<size_t>(st.range(0));
  constexpr int kBatch = 32;
  int r = S::socket(), s = S::socket();
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (r < 0 || s < 0 || S::bind(r, a) != 0 || S::getsockname(r, a) != 0) abort();
  S::setsockopt(r, SOL_SOCKET, SO_RCVBUF, 4 << 20);
  std::vector<char> buf(size, 'u'), in(size);
  for (auto _ : st) {
    for (int i = 0; i < kBatch; i++)
      if (S::sendto(s, buf.data(), size, a) != static_cast<long>(size)) abort();
    for (int i = 0; i < kBatch; i++)
      if (S::recv(r, in.data(), size) != static_cast<long>(size)) abort();
  }
  S::close(r);
  S::close(s);
  st.SetItemsProcessed(st.iterations() * kBatch);
  st.SetBytesProcessed(st.iterations() * kBatch * static_cast<int64_t>(size));
}

BENCHMARK_TEMPLATE(BM_udp_pps, Rump)->Name("udp_pps/rump")->Arg(64)->Arg(1400)->UseRealTime();
BENCHMARK_TEMPLATE(BM_udp_pps, Host)->Name("udp_pps/host")->Arg(64)->Arg(1400)->UseRealTime();

// A listener on 127.0.0.1 (its address in a), for the TCP benchmarks.
template <class S>
int tcp_listener(sockaddr_in& a) {
  int l = S::stream();
  a = sockaddr_in{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (l < 0 || S::bind(l, a) != 0 || S::getsockname(l, a) != 0 || S::listen(l, 128) != 0) abort();
  return l;
}

// A connected pair over loopback (client c, server end s).
template <class S>
void tcp_pair(int& l, int& c, int& s) {
  sockaddr_in a;
  l = tcp_listener<S>(a);
  c = S::stream();
  if (c < 0 || S::connect(c, a) != 0) abort();
  s = S::accept(l);
  if (s < 0) abort();
  S::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, 1);
  S::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, 1);
}

template <class S>
void BM_tcp_bulk(benchmark::State& st) {
  S::init();
  constexpr size_t kChunk = 64 * 1024;
  int l, c, s;
  tcp_pair<S>(l, c, s);
  std::vector<char> out(kChunk, 'b'), in(kChunk);
  for (auto _ : st) {
    if (S::send(c, out.data(), kChunk) != static_cast<long>(kChunk)) abort();
    if (S::recvall(s, in.data(), kChunk) != static_cast<long>(kChunk)) abort();
  }
  S::close(c);
  S::close(s);
  S::close(l);
  st.SetItemsProcessed(st.iterations() * static_cast<int64_t>(kChunk));
  st.SetBytesProcessed(st.iterations() * static_cast<int64_t>(kChunk));
}

template <class S>
void BM_tcp_rr(benchmark::State& st) {
  S::init();
  int l, c, s;
  tcp_pair<S>(l, c, s);
  char b = 'r';
  for (auto _ : st) {
    if (S::send(c, &b, 1) != 1 || S::recvall(s, &b, 1) != 1) abort();
    if (S::send(s, &b, 1) != 1 || S::recvall(c, &b, 1) != 1) abort();
  }
  S::close(c);
  S::close(s);
  S::close(l);
  st.SetItemsProcessed(st.iterations());
}

template <class S>
void BM_tcp_crr(benchmark::State& st) {
  S::init();
  sockaddr_in a;
  int l = tcp_listener<S>(a);
  for (auto _ : st) {
    int c = S::stream();
    if (c < 0 || S::connect(c, a) != 0) abort();
    int s = S::accept(l);
    if (s < 0) abort();
    S::close(s);
    S::close(c);
  }
  S::close(l);
  st.SetItemsProcessed(st.iterations());
}

BENCHMARK_TEMPLATE(BM_tcp_bulk, Rump)->Name("tcp_bulk/rump")->UseRealTime();
BENCHMARK_TEMPLATE(BM_tcp_bulk, Host)->Name("tcp_bulk/host")->UseRealTime();
BENCHMARK_TEMPLATE(BM_tcp_rr, Rump)->Name("tcp_rr/rump")->UseRealTime();
BENCHMARK_TEMPLATE(BM_tcp_rr, Host)->Name("tcp_rr/host")->UseRealTime();
BENCHMARK_TEMPLATE(BM_tcp_crr, Rump)->Name("tcp_crr/rump")->UseRealTime();
BENCHMARK_TEMPLATE(BM_tcp_crr, Host)->Name("tcp_crr/host")->UseRealTime();

// Remembers each run's items/s to print rump/host ratios at the end.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      auto it = r.counters.find("items_per_second");
      if (it != r.counters.end()) rate_[r.benchmark_name()] = it->second.value;
      cpu_[r.benchmark_name()] = r.GetAdjustedCPUTime();
    }
  }
  // Host CPU time per iteration over rump's for the two runs (0: missing).
  double cpu_ratio(const std::string& rump, const std::string& host) const {
    auto r = cpu_.find(rump), h = cpu_.find(host);
    if (r == cpu_.end() || h == cpu_.end() || r->second == 0) return 0;
    return h->second / r->second;
  }
  void print_ratios() const {
    for (const char* arg : {"64", "1400"}) {
      auto rump = rate_.find(std::string("udp_pps/rump/") + arg + "/real_time");
      auto host = rate_.find(std::string("udp_pps/host/") + arg + "/real_time");
      if (rump == rate_.end() || host == rate_.end() || host->second == 0) continue;
      printf("udp_pps/%s: rump %.0f/s host %.0f/s ratio %.2f, CPU ratio %.2f\n", arg, rump->second, host->second,
             rump->second / host->second, cpu_ratio(rump->first, host->first));
    }
    for (const char* name : {"tcp_bulk", "tcp_rr", "tcp_crr"}) {
      auto rump = rate_.find(std::string(name) + "/rump/real_time");
      auto host = rate_.find(std::string(name) + "/host/real_time");
      if (rump == rate_.end() || host == rate_.end() || host->second == 0 || rump->second == 0) continue;
      printf("%s: rump %.0f/s host %.0f/s ratio %.2f (latency ratio %.2f), CPU ratio %.2f\n", name, rump->second,
             host->second, rump->second / host->second, host->second / rump->second,
             cpu_ratio(rump->first, host->first));
    }
  }

 private:
  std::map<std::string, double> rate_;
  std::map<std::string, double> cpu_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  RatioReporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  rep.print_ratios();
  benchmark::Shutdown();
  return 0;
}
