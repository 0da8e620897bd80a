// net_bench: the network faction's figures next to the host's for the
// same work, in one run.
//
//   socketpair_pingpong    one byte back and forth over an AF_UNIX stream pair
//   stream_throughput      64 KiB writes into an AF_UNIX stream, a reader thread draining it
//   connect_accept_close   connect + accept + close of both ends, over a path name
//   epoll_wait_one_ready   epoll_wait with N registered descriptors (eventfds), one ready
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

struct rump_kernel* bench_kernel() {
  static struct rump_kernel* k = [] {
    struct rump_kernel* kk = nullptr;
    rump_boot_config c;
    rump_boot_config_init(&c);
    c.ncpu = 2;
    if (rump_kernel_boot(&c, &kk) != 0) abort();
    rump_kernel_set_current(kk);
    rlimit rl{65536, 65536};
    rump_sys_setrlimit(RLIMIT_NOFILE, &rl);
    return kk;
  }();
  rump_kernel_set_current(k);
  return k;
}

struct Rump {
  static void init() { bench_kernel(); }
  static int socketpair(int* p) { return rump_sys_socketpair(AF_UNIX, SOCK_STREAM, 0, p); }
  static int socket() { return rump_sys_socket(AF_UNIX, SOCK_STREAM, 0); }
  static int bind(int s, const sockaddr_un& a) { return rump_sys_bind(s, &a, sizeof a); }
  static int listen(int s, int n) { return rump_sys_listen(s, n); }
  static int connect(int s, const sockaddr_un& a) { return rump_sys_connect(s, &a, sizeof a); }
  static int accept(int s) { return rump_sys_accept(s, nullptr, nullptr); }
  static int close(int fd) { return rump_sys_close(fd); }
  static int unlink(const char* p) { return rump_sys_unlink(p); }
  static long write(int fd, const void* b, size_t n) { return rump_sys_write(fd, b, n); }
  static long read(int fd, void* b, size_t n) { return rump_sys_read(fd, b, n); }
  static int eventfd(unsigned v) { return rump_sys_eventfd2(v, EFD_NONBLOCK); }
  static int epoll_create() { return rump_sys_epoll_create1(0); }
  static int epoll_ctl(int ep, int op, int fd, epoll_event* e) { return rump_sys_epoll_ctl(ep, op, fd, e); }
  static int epoll_wait(int ep, epoll_event* e, int n, int t) { return rump_sys_epoll_wait(ep, e, n, t); }
  static std::string path() { return "/bench.sock"; }
};

struct Host {
  static void init() {
    static bool done = [] {
      rlimit rl;
      getrlimit(RLIMIT_NOFILE, &rl);
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
      return true;
    }();
    (void)done;
  }
  static int socketpair(int* p) { return ::socketpair(AF_UNIX, SOCK_STREAM, 0, p); }
  static int socket() { return ::socket(AF_UNIX, SOCK_STREAM, 0); }
  static int bind(int s, const sockaddr_un& a) { return ::bind(s, reinterpret_cast<const sockaddr*>(&a), sizeof a); }
  static int listen(int s, int n) { return ::listen(s, n); }
  static int connect(int s, const sockaddr_un& a) {
    return ::connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  }
  static int accept(int s) { return ::accept(s, nullptr, nullptr); }
  static int close(int fd) { return ::close(fd); }
  static int unlink(const char* p) { return ::unlink(p); }
  static long write(int fd, const void* b, size_t n) { return ::write(fd, b, n); }
  static long read(int fd, void* b, size_t n) { return ::read(fd, b, n); }
  static int eventfd(unsigned v) { return ::eventfd(v, EFD_NONBLOCK); }
  static int epoll_create() { return ::epoll_create1(0); }
  static int epoll_ctl(int ep, int op, int fd, epoll_event* e) { return ::epoll_ctl(ep, op, fd, e); }
  static int epoll_wait(int ep, epoll_event* e, int n, int t) { return ::epoll_wait(ep, e, n, t); }
  static std::string path() { return "/tmp/net_bench." + std::to_string(getpid()) + ".sock"; }
};

template <class S>
void BM_socketpair_pingpong(benchmark::State& s) {
  S::init();
  int p[2];
  if (S::socketpair(p) != 0) abort();
  std::thread echo([&] {
    S::init();
    char c;
    while (S::read(p[1], &c, 1) == 1) S::write(p[1], &c, 1);
  });
  char c = 'x';
  for (auto _ : s) {
    S::write(p[0], &c, 1);
    S::read(p[0], &c, 1);
  }
  S::close(p[0]);
  echo.join();
  S::close(p[1]);
  s.SetItemsProcessed(s.iterations());
}

template <class S>
void BM_stream_throughput(benchmark::State& s) {
  S::init();
  constexpr size_t kChunk = 64 * 1024;
  int p[2];
  if (S::socketpair(p) != 0) abort();
  std::thread drain([&] {
    S::init();
    std::vector<char> buf(kChunk);
    while (S::read(p[1], buf.data(), buf.size()) > 0) {
    }
  });
  std::vector<char> data(kChunk, 'd');
  for (auto _ : s) {
    size_t done = 0;
    while (done < kChunk) {
      long n = S::write(p[0], data.data() + done, kChunk - done);
      if (n <= 0) abort();
      done += n;
    }
  }
  S::close(p[0]);
  drain.join();
  S::close(p[1]);
  s.SetBytesProcessed(s.iterations() * kChunk);
}

template <class S>
void BM_connect_accept_close(benchmark::State& s) {
  S::init();
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::string path = S::path();
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  S::unlink(path.c_str());
  int l = S::socket();
  if (S::bind(l, a) != 0 || S::listen(l, 16) != 0) abort();
  for (auto _ : s) {
    int c = S::socket();
    if (S::connect(c, a) != 0) abort();
    int t = S::accept(l);
    S::close(t);
    S::close(c);
  }
  S::close(l);
  S::unlink(path.c_str());
  s.SetItemsProcessed(s.iterations());
}

template <class S>
void BM_epoll_wait_one_ready(benchmark::State& s) {
  S::init();
  const int n = static_cast<int>(s.range(0));
  int ep = S::epoll_create();
  std::vector<int> fds;
  for (int i = 0; i < n; i++) {
    int e = S::eventfd(i == n / 2 ? 1 : 0);
    if (e < 0) {
      s.SkipWithError("out of descriptors");
      break;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    S::epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev);
    fds.push_back(e);
  }
  epoll_event out[64];
  for (auto _ : s) {
    if (S::epoll_wait(ep, out, 64, 0) != 1) abort();
  }
  for (int f : fds) S::close(f);
  S::close(ep);
  s.SetItemsProcessed(s.iterations());
}

}  // namespace

BENCHMARK_TEMPLATE(BM_socketpair_pingpong, Rump)->Name("socketpair_pingpong/rump")->UseRealTime();
BENCHMARK_TEMPLATE(BM_socketpair_pingpong, Host)->Name("socketpair_pingpong/host")->UseRealTime();
BENCHMARK_TEMPLATE(BM_stream_throughput, Rump)->Name("stream_throughput/rump")->UseRealTime();
BENCHMARK_TEMPLATE(BM_stream_throughput, Host)->Name("stream_throughput/host")->UseRealTime();
BENCHMARK_TEMPLATE(BM_connect_accept_close, Rump)->Name("connect_accept_close/rump");
BENCHMARK_TEMPLATE(BM_connect_accept_close, Host)->Name("connect_accept_close/host");
BENCHMARK_TEMPLATE(BM_epoll_wait_one_ready, Rump)->Name("epoll_wait_one_ready/rump")->Arg(100)->Arg(1000)->Arg(10000);
BENCHMARK_TEMPLATE(BM_epoll_wait_one_ready, Host)->Name("epoll_wait_one_ready/host")->Arg(100)->Arg(1000)->Arg(10000);

BENCHMARK_MAIN();
