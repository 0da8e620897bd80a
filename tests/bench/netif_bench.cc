// netif_bench: TCP bulk throughput over the interfaces that leave one
// kernel, next to the host's own virtual Ethernet, in one run.
//
//   shmif_tcp/rump   two kernels in this process on a shmif bus (a file in
//                    /tmp): kernel A sends, kernel B receives on a thread
//                    of its own; items are bytes
//   tap_tcp/rump     a kernel on a host tap (virt0) sends to a receiver of
//                    the host's stack at the tap's other end
//   veth_tcp/host    the host's own stack on both ends of a veth pair, each
//                    end in a network namespace of its own: the same work
//                    (TCP between two stacks over a virtual Ethernet)
//
// Each iteration writes 1 MiB on one connection (the receiver drains the
// connection for the whole run). The tap and veth cases need root: they
// make the network namespaces rumpbench_{a,b,t} with ip(8) and delete them
// at the end (without root they are skipped). At the end: each rump figure
// over the host's veth figure.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <rump/rump.h>
#include <rump/rumpnet.h>
#include <sched.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kChunk = 1 << 20;

sockaddr_in in4(const char* a, uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  inet_pton(AF_INET, a, &s.sin_addr);
  return s;
}

bool sh(const std::string& cmd) { return system(cmd.c_str()) == 0; }

// Moves the calling thread into the named network namespace.
bool enter_netns(const char* name) {
  std::string p = std::string("/run/netns/") + name;
  int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = setns(fd, CLONE_NEWNET) == 0;
  close(fd);
  return ok;
}

struct Namespaces {
  bool ok = false;
  Namespaces() {
    if (geteuid() != 0) return;
    sh("ip netns del rumpbench_a 2>/dev/null; ip netns del rumpbench_b 2>/dev/null; ip netns del rumpbench_t "
       "2>/dev/null");
    ok = sh("ip netns add rumpbench_a && ip netns add rumpbench_b && ip netns add rumpbench_t && "
            "ip link add va netns rumpbench_a type veth peer name vb netns rumpbench_b && "
            "ip -n rumpbench_a addr add 10.88.0.1/24 dev va && ip -n rumpbench_b addr add 10.88.0.2/24 dev vb && "
            "ip -n rumpbench_a link set va up && ip -n rumpbench_b link set vb up && "
            "ip -n rumpbench_a link set lo up && ip -n rumpbench_b link set lo up && "
            "ip -n rumpbench_t link set lo up");
  }
  ~Namespaces() {
    sh("ip netns del rumpbench_a 2>/dev/null; ip netns del rumpbench_b 2>/dev/null; ip netns del rumpbench_t "
       "2>/dev/null");
  }
};
Namespaces& namespaces() {
  static Namespaces n;
  return n;
}

// A host-stack receiver draining one connection on addr:port (in the
// calling thread's namespace when netns is null).
struct HostSink {
  std::thread t;
  std::atomic<int> listening{0};
  HostSink(const char* netns, const char* addr, uint16_t port) {
    t = std::thread([this, netns, addr, port] {
      if (netns && !enter_netns(netns)) {
        listening = -1;
        return;
      }
      int l = socket(AF_INET, SOCK_STREAM, 0);
      int one = 1;
      setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in a = in4(addr, port);
      if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 1) != 0) {
        listening = -1;
        return;
      }
      listening = 1;
      int c = accept(l, nullptr, nullptr);
      std::vector<char> buf(1 << 18);
      while (c >= 0 && read(c, buf.data(), buf.size()) > 0) {
      }
      if (c >= 0) close(c);
      close(l);
    });
    while (listening == 0) std::this_thread::yield();
  }
  ~HostSink() { t.join(); }
};

// A rump kernel receiver draining one connection (kernel k).
struct RumpSink {
  std::thread t;
  std::atomic<int> listening{0};
  RumpSink(rump_kernel* k, const char* addr, uint16_t port) {
    t = std::thread([this, k, addr, port] {
      rump_kernel_set_current(k);
      int l = rump_sys_socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a = in4(addr, port);
      if (rump_sys_bind(l, &a, sizeof a) != 0 || rump_sys_listen(l, 1) != 0) {
        listening = -1;
        return;
      }
      listening = 1;
      int c = rump_sys_accept(l, nullptr, nullptr);
      std::vector<char> buf(1 << 18);
      while (c >= 0 && rump_sys_read(c, buf.data(), buf.size()) > 0) {
      }
      if (c >= 0) rump_sys_close(c);
      rump_sys_close(l);
    });
    while (listening == 0) std::this_thread::yield();
  }
  ~RumpSink() { t.join(); }
};

rump_kernel* boot() {
  rump_kernel* k = nullptr;
  rump_boot_config c;
  rump_boot_config_init(&c);
  c.ncpu = 2;
  if (rump_kernel_boot(&c, &k) != 0) abort();
  return k;
}

// Writes kChunk per iteration on the connected rump socket s.
void rump_pump(benchmark::State& st, int s) {
  std::vector<char> buf(kChunk, 'x');
  for (auto _ : st) {
    size_t done = 0;
    while (done < kChunk) {
      long w = rump_sys_write(s, buf.data() + done, kChunk - done);
      if (w <= 0) {
        st.SkipWithError("write failed");
        return;
      }
      done += static_cast<size_t>(w);
    }
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * kChunk));
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * kChunk));
}

void BM_shmif_tcp(benchmark::State& st) {
  char dir[] = "/tmp/rump-bench-shmif-XXXXXX";
  if (!mkdtemp(dir)) {
    st.SkipWithError("mkdtemp");
    return;
  }
  std::string bus = std::string(dir) + "/bus";
  rump_kernel* a = boot();
  rump_kernel* b = boot();
  int unit;
  rump_kernel_set_current(b);
  rump_pub_shmif_create(bus.c_str(), &unit);
  rump_pub_netconfig_ipv4_ifaddr_cidr("shmif0", "10.0.0.2", 24);
  rump_pub_netconfig_ifup("shmif0");
  rump_kernel_set_current(a);
  rump_pub_shmif_create(bus.c_str(), &unit);
  rump_pub_netconfig_ipv4_ifaddr_cidr("shmif0", "10.0.0.1", 24);
  rump_pub_netconfig_ifup("shmif0");
  {
    RumpSink sink(b, "10.0.0.2", 9000);
    rump_kernel_set_current(a);
    int s = rump_sys_socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to = in4("10.0.0.2", 9000);
    if (rump_sys_connect(s, &to, sizeof to) != 0) {
      st.SkipWithError("connect over shmif failed");
    } else {
      rump_pump(st, s);
    }
    rump_sys_close(s);
  }
  rump_kernel_set_current(nullptr);
  rump_kernel_halt(a);
  rump_kernel_halt(b);
  unlink(bus.c_str());
  rmdir(dir);
}

void BM_tap_tcp(benchmark::State& st) {
  if (!namespaces().ok) {
    st.SkipWithError("needs root and ip(8): no network namespaces");
    return;
  }
  std::thread runner([&] {
    if (!enter_netns("rumpbench_t")) {
      st.SkipWithError("setns");
      return;
    }
    rump_kernel* k = boot();
    rump_kernel_set_current(k);
    bool ok = rump_pub_netconfig_ifcreate("virt0") == 0 && rump_pub_netconfig_ifsetlinkstr("virt0", "rbtap0") == 0 &&
              rump_pub_netconfig_ipv4_ifaddr_cidr("virt0", "10.89.0.2", 24) == 0 &&
              rump_pub_netconfig_ifup("virt0") == 0 &&
              sh("ip addr add 10.89.0.1/24 dev rbtap0 && ip link set rbtap0 up");
    if (!ok) {
      st.SkipWithError("tap setup failed");
    } else {
      HostSink sink(nullptr, "10.89.0.1", 9000);
      int s = rump_sys_socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in to = in4("10.89.0.1", 9000);
      if (rump_sys_connect(s, &to, sizeof to) != 0) {
        st.SkipWithError("connect over the tap failed");
      } else {
        rump_pump(st, s);
      }
      rump_sys_close(s);
    }
    rump_kernel_set_current(nullptr);
    rump_kernel_halt(k);
  });
  runner.join();
}

void BM_veth_tcp(benchmark::State& st) {
  if (!namespaces().ok) {
    st.SkipWithError("needs root and ip(8): no network namespaces");
    return;
  }
  HostSink sink("rumpbench_b", "10.88.0.2", 9000);
  std::thread runner([&] {
    if (!enter_netns("rumpbench_a")) {
      st.SkipWithError("setns");
      return;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to = in4("10.88.0.2", 9000);
    if (connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      st.SkipWithError("connect over veth failed");
      close(s);
      return;
    }
    std::vector<char> buf(kChunk, 'x');
    for (auto _ : st) {
      size_t done = 0;
      while (done < kChunk) {
        ssize_t w = write(s, buf.data() + done, kChunk - done);
        if (w <= 0) {
          st.SkipWithError("write failed");
          close(s);
          return;
        }
        done += static_cast<size_t>(w);
      }
    }
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * kChunk));
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * kChunk));
    close(s);
  });
  runner.join();
}

BENCHMARK(BM_shmif_tcp)->Name("shmif_tcp/rump")->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_tap_tcp)->Name("tap_tcp/rump")->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_veth_tcp)->Name("veth_tcp/host")->UseRealTime()->MinTime(2.0);

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      auto it = r.counters.find("items_per_second");
      if (it != r.counters.end()) rate_[r.benchmark_name()] = it->second.value;
    }
  }
  void print_ratios() const {
    double host = rate("veth_tcp/host");
    for (const char* name : {"shmif_tcp/rump", "tap_tcp/rump"}) {
      double rump = rate(name);
      if (rump == 0 || host == 0) continue;
      printf("%s: rump %.1f MB/s, host veth %.1f MB/s, ratio %.3f\n", name, rump / 1e6, host / 1e6, rump / host);
    }
  }

 private:
  // The rate of the run whose name starts with prefix (0: none).
  double rate(const std::string& prefix) const {
    for (const auto& [name, v] : rate_)
      if (name.rfind(prefix, 0) == 0) return v;
    return 0;
  }
  std::map<std::string, double> rate_;
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
