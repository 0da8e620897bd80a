// Kernels in one process on a shmif bus: UDP and TCP between two kernels,
// several kernels on one bus, bulk transfers checked byte for byte with
// and without seeded impairment, and the impairment's own contract
// (errors, determinism, its effect on lo).
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <atomic>
#include <limits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "netif_util.h"
#include "rump_test.h"
#include "sockaddr6.h"

using namespace netif_test;

namespace {

// A bus file in a fresh temporary directory, removed at the end.
struct BusFile {
  std::string dir, path;
  BusFile() {
    char t[] = "/tmp/rump-shmif-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    dir = t;
    path = dir + "/bus";
  }
  ~BusFile() {
    unlink(path.c_str());
    rmdir(dir.c_str());
  }
};

// A kernel on the bus with address addr/24 on shmif<unit>.
struct Node {
  rump_kernel* k = nullptr;
  std::string ifname;
  Node(const std::string& bus, const char* addr) {
    rump_test::BootOpts o;
    o.ncpu = 2;
    rump_boot_config c = rump_test::boot_config(o);
    REQUIRE(rump_kernel_boot(&c, &k) == 0);
    REQUIRE(rump_kernel_set_current(k) == 0);
    int unit = -1;
    REQUIRE(rump_pub_shmif_create(bus.c_str(), &unit) == 0);
    CHECK(unit == 0);
    ifname = "shmif" + std::to_string(unit);
    REQUIRE(if_config(ifname.c_str(), addr, 24) == 0);
  }
  ~Node() {
    rump_kernel_set_current(nullptr);
    rump_kernel_halt(k);
  }
  void use() const { rump_kernel_set_current(k); }
};

// A UDP echo server on node n at addr:port, on a thread of its own until
// a "quit" datagram (then: how many it echoed).
struct EchoServer {
  Node& n;
  int fd = -1;
  std::atomic<int> echoed{-1};
  std::thread t;
  EchoServer(Node& node, const char* addr, uint16_t port) : n(node) {
    n.use();
    fd = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a = in4(addr, port);
    REQUIRE(rump_sys_bind(fd, sa(a), sizeof a) == 0);
    t = std::thread([this] {
      n.use();
      echoed = udp_echo_until_quit(fd);
    });
  }
  // Waits for the "quit" (the caller sent it) and closes the socket.
  int finish() {
    t.join();
    n.use();
    rump_sys_close(fd);
    return echoed.load();
  }
};

// A TCP bulk transfer of n bytes from `from` to `to` (listening on
// to_addr:port): what the receiver saw.
StreamResult bulk(Node& from, Node& to, const char* to_addr, uint16_t port, uint64_t n, uint64_t seed) {
  to.use();
  int l = tcp_listen(to_addr, port);
  REQUIRE(l >= 0);
  StreamResult got;
  std::thread server([&] {
    to.use();
    int c = rump_sys_accept(l, nullptr, nullptr);
    TCHECK(c >= 0);
    if (c < 0) return;
    got = stream_recv(c, seed);
    rump_sys_close(c);
  });
  from.use();
  int s = tcp_connect(to_addr, port);
  CHECK(s >= 0);
  if (s >= 0) {
    CHECK(stream_send(s, seed, n));
  }
  server.join();
  CHECK_THREADS_OK();
  if (s >= 0) rump_sys_close(s);
  to.use();
  rump_sys_close(l);
  return got;
}

}  // namespace

TEST_CASE("shmif: UDP between two kernels in one process", "[netif][shmif]") {
  rump_test::on_fresh_thread([] {
    BusFile bus;
    Node a(bus.path, "10.0.0.1"), b(bus.path, "10.0.0.2");
    EchoServer echo(b, "10.0.0.2", 7000);
    a.use();
    int sa_ = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(sa_ >= 0);
    for (int i = 0; i < 20; i++) {
      char req[64], rep[64] = {};
      int len = std::snprintf(req, sizeof req, "datagram %d", i);
      long n = udp_request(sa_, "10.0.0.2", 7000, req, static_cast<size_t>(len), rep, sizeof rep);
      REQUIRE(n == len);
      CHECK(std::string(rep, static_cast<size_t>(n)) == req);
    }
    // A datagram bigger than the MTU: fragmented on the bus, reassembled.
    std::string big(4000, 'x');
    for (size_t i = 0; i < big.size(); i++) big[i] = static_cast<char>('a' + i % 26);
    std::string rep(5000, '\0');
    long n = udp_request(sa_, "10.0.0.2", 7000, big.data(), big.size(), rep.data(), rep.size());
    CHECK(n == static_cast<long>(big.size()));
    CHECK(rep.substr(0, big.size()) == big);
    udp_request(sa_, "10.0.0.2", 7000, "quit", 4, rep.data(), rep.size(), 5);
    CHECK(echo.finish() >= 21);
    a.use();
    rump_sys_close(sa_);
  });
}

TEST_CASE("shmif: TCP bulk between two kernels, checked byte for byte", "[netif][shmif][concurrency]") {
  rump_test::on_fresh_thread([] {
    BusFile bus;
    Node a(bus.path, "10.0.0.1"), b(bus.path, "10.0.0.2");
    StreamResult r = bulk(a, b, "10.0.0.2", 8000, 8u << 20, 1);
    CHECK(r.error == 0);
    CHECK(r.bytes == (8u << 20));
    CHECK(r.first_bad == UINT64_MAX);
    // And the other way.
    r = bulk(b, a, "10.0.0.1", 8001, 1u << 20, 2);
    CHECK(r.bytes == (1u << 20));
    CHECK(r.first_bad == UINT64_MAX);
  });
}

TEST_CASE("shmif: three kernels on one bus each reach the others", "[netif][shmif]") {
  rump_test::on_fresh_thread([] {
    BusFile bus;
    Node a(bus.path, "10.0.0.1"), b(bus.path, "10.0.0.2"), c(bus.path, "10.0.0.3");
    CHECK(bulk(a, c, "10.0.0.3", 8000, 256 << 10, 3).first_bad == UINT64_MAX);
    StreamResult r = bulk(c, b, "10.0.0.2", 8000, 256 << 10, 4);
    CHECK(r.bytes == (256u << 10));
    CHECK(r.first_bad == UINT64_MAX);
  });
}

namespace {


// An ICMPv6 echo from the current kernel to dst over a ping socket: true
// if the reply came back with the payload.
bool ping6(const char* dst, uint32_t scope = 0) {
  int s = rump_sys_socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
  if (s < 0) return false;
  timeval tv{5, 0};
  rump_sys_setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in6 to = in6(dst, 0);
  to.sin6_scope_id = scope;
  uint8_t req[8 + 9] = {128, 0, 0, 0, 0, 0, 0, 1};  // echo request, sequence 1
  std::memcpy(req + 8, "rump ping", 9);
  bool ok = false;
  // The first echo may wait for neighbour discovery: a few tries.
  for (int i = 0; i < 5 && !ok; i++) {
    if (rump_sys_sendto(s, req, sizeof req, 0, sa6(to), sizeof to) != static_cast<long>(sizeof req)) break;
    uint8_t rep[64];
    long n = rump_sys_recvfrom(s, rep, sizeof rep, 0, nullptr, nullptr);
    ok = n == static_cast<long>(sizeof req) && rep[0] == 129 && std::memcmp(rep + 8, "rump ping", 9) == 0;
  }
  rump_sys_close(s);
  return ok;
}

}  // namespace

TEST_CASE("shmif: IPv6 between two kernels: link-local addresses, ping and TCP bulk", "[netif][shmif][ipv6]") {
  rump_test::on_fresh_thread([] {
    BusFile bus;
    Node a(bus.path, "10.0.0.1"), b(bus.path, "10.0.0.2");
    const char range[] = "0 0";
    a.use();
    REQUIRE(rump_pub_netconfig_ipv6_ifaddr(a.ifname.c_str(), "2001:db8:6::1", 64) == 0);
    REQUIRE(rump_sys_sysctlbyname("net.ipv4.ping_group_range", nullptr, nullptr, range, sizeof range - 1) == 0);
    b.use();
    REQUIRE(rump_pub_netconfig_ipv6_ifaddr(b.ifname.c_str(), "2001:db8:6::2", 64) == 0);
    // Each interface got a link-local address from its MAC when it came
    // up (modified EUI-64); the other kernel reaches it over the bus.
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, b.ifname.c_str());
    int fd = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(rump_sys_ioctl(fd, SIOCGIFHWADDR, &ifr) == 0);
    rump_sys_close(fd);
    const auto* m = reinterpret_cast<const uint8_t*>(ifr.ifr_hwaddr.sa_data);
    char ll[64];
    std::snprintf(ll, sizeof ll, "fe80::%x:%xff:fe%02x:%x", (m[0] ^ 2) << 8 | m[1], m[2], m[3], m[4] << 8 | m[5]);
    a.use();
    CHECK(ping6("2001:db8:6::2"));
    ifreq ai{};
    std::strcpy(ai.ifr_name, a.ifname.c_str());
    fd = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(rump_sys_ioctl(fd, SIOCGIFINDEX, &ai) == 0);
    rump_sys_close(fd);
    CHECK(ping6(ll, static_cast<uint32_t>(ai.ifr_ifindex)));
    // TCP over IPv6, byte for byte.
    b.use();
    int l = rump_sys_socket(AF_INET6, SOCK_STREAM, 0);
    REQUIRE(l >= 0);
    sockaddr_in6 la = in6("2001:db8:6::2", 8600);
    REQUIRE(rump_sys_bind(l, sa6(la), sizeof la) == 0);
    REQUIRE(rump_sys_listen(l, 4) == 0);
    StreamResult got;
    std::thread server([&] {
      b.use();
      int c = rump_sys_accept(l, nullptr, nullptr);
      TCHECK(c >= 0);
      if (c < 0) return;
      got = stream_recv(c, 6);
      rump_sys_close(c);
    });
    a.use();
    int s = rump_sys_socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(rump_sys_connect(s, sa6(la), sizeof la) == 0);
    CHECK(stream_send(s, 6, 1u << 20));
    server.join();
    CHECK_THREADS_OK();
    rump_sys_close(s);
    CHECK(got.error == 0);
    CHECK(got.bytes == (1u << 20));
    CHECK(got.first_bad == UINT64_MAX);
    b.use();
    rump_sys_close(l);
  });
}

TEST_CASE("shmif: TCP bulk under seeded loss, duplication and reordering", "[netif][shmif][impair]") {
  struct Case {
    double loss, dup, reorder;
    uint32_t delay_us;
  };
  const Case cases[] = {{0.01, 0.01, 0.01, 0}, {0.05, 0.05, 0.05, 0}, {0.10, 0.02, 0.10, 0}, {0.02, 0.02, 0.05, 200}};
  for (const Case& cs : cases) {
    DYNAMIC_SECTION("loss " << cs.loss << " dup " << cs.dup << " reorder " << cs.reorder << " delay "
                            << cs.delay_us) {
      rump_test::on_fresh_thread([&] {
        BusFile bus;
        Node a(bus.path, "10.0.0.1"), b(bus.path, "10.0.0.2");
        rump_netconfig_impair im{42, cs.loss, cs.dup, cs.reorder, cs.delay_us};
        a.use();
        REQUIRE(rump_pub_netconfig_impair(a.ifname.c_str(), &im) == 0);
        im.seed = 43;
        b.use();
        REQUIRE(rump_pub_netconfig_impair(b.ifname.c_str(), &im) == 0);
        StreamResult r = bulk(a, b, "10.0.0.2", 8000, 2u << 20, 5);
        CHECK(r.error == 0);
        CHECK(r.bytes == (2u << 20));
        CHECK(r.first_bad == UINT64_MAX);
      });
    }
  }
}

TEST_CASE("impair: argument errors, off, and lo", "[netif][impair]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    rump_netconfig_impair im{1, 0.5, 0, 0, 0};
    CHECK(rump_pub_netconfig_impair("nosuch0", &im) == ENXIO);
    CHECK(rump_pub_netconfig_impair("lo", nullptr) == EINVAL);
    for (double bad : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
      rump_netconfig_impair b{1, bad, 0, 0, 0};
      CHECK(rump_pub_netconfig_impair("lo", &b) == EINVAL);
      b = {1, 0, bad, 0, 0};
      CHECK(rump_pub_netconfig_impair("lo", &b) == EINVAL);
      b = {1, 0, 0, bad, 0};
      CHECK(rump_pub_netconfig_impair("lo", &b) == EINVAL);
    }
    rump_netconfig_impair edge{1, 0, 1, 0, 0};
    CHECK(rump_pub_netconfig_impair("lo", &edge) == 0);
    rump_netconfig_impair off{};
    CHECK(rump_pub_netconfig_impair("lo", &off) == 0);
  });
}

namespace {

// Sends n numbered datagrams to itself over lo with the given impairment
// and returns the sequence numbers received, in arrival order.
std::vector<int> lo_datagrams(const rump_netconfig_impair& im, int n) {
  std::vector<int> got;
  rump_test::on_fresh_thread([&] {
    rump_test::KernelUp up;
    int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(s >= 0);
    int big = 4 << 20;
    REQUIRE(rump_sys_setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, sizeof big) == 0);
    sockaddr_in a = in4("127.0.0.1", 9000);
    REQUIRE(rump_sys_bind(s, sa(a), sizeof a) == 0);
    REQUIRE(rump_pub_netconfig_impair("lo", &im) == 0);
    for (int i = 0; i < n; i++) REQUIRE(rump_sys_sendto(s, &i, sizeof i, 0, sa(a), sizeof a) == sizeof i);
    // Turning it off lets every held-back packet go.
    rump_netconfig_impair off{};
    REQUIRE(rump_pub_netconfig_impair("lo", &off) == 0);
    for (;;) {
      int v;
      long k = rump_sys_recvfrom(s, &v, sizeof v, MSG_DONTWAIT, nullptr, nullptr);
      if (k != sizeof v) break;
      got.push_back(v);
    }
    rump_sys_close(s);
  });
  return got;
}

}  // namespace

TEST_CASE("impair: seeded and deterministic on lo", "[netif][impair]") {
  rump_netconfig_impair im{7, 0.2, 0.1, 0.2, 0};
  std::vector<int> one = lo_datagrams(im, 500);
  std::vector<int> two = lo_datagrams(im, 500);
  im.seed = 8;
  std::vector<int> other = lo_datagrams(im, 500);
  // Same seed, same fate for every datagram (lost, once or twice). The
  // order is compared as a multiset: a held-back datagram whose successor
  // is late (a loaded host) is let go by the timer instead.
  auto sorted = [](std::vector<int> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  CHECK(sorted(one) == sorted(two));
  CHECK(sorted(other) != sorted(one));
  // Each effect shows: some lost, some twice, some out of order.
  std::vector<int> count(500, 0);
  bool out_of_order = false;
  for (size_t i = 0; i < one.size(); i++) {
    REQUIRE(one[i] >= 0);
    REQUIRE(one[i] < 500);
    count[static_cast<size_t>(one[i])]++;
    if (i > 0 && one[i] < one[i - 1]) out_of_order = true;
  }
  int lost = 0, twice = 0;
  for (int c : count) {
    lost += c == 0;
    twice += c == 2;
  }
  // Binomial(500, 0.2) and (400, 0.1): far outside these only if broken.
  CHECK(lost > 50);
  CHECK(lost < 150);
  CHECK(twice > 10);
  CHECK(twice < 80);
  CHECK(out_of_order);
  // Off: everything, once, in order.
  rump_netconfig_impair off{};
  std::vector<int> clean = lo_datagrams(off, 200);
  REQUIRE(clean.size() == 200);
  for (int i = 0; i < 200; i++) CHECK(clean[static_cast<size_t>(i)] == i);
}

TEST_CASE("shmif: interface errors", "[netif][shmif]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    int unit = -1;
    CHECK(rump_pub_shmif_create("", &unit) == EINVAL);
    CHECK(rump_pub_shmif_create("/nonexistent-dir/bus", &unit) == ENOENT);
    // A file that is not a bus.
    BusFile f;
    int fd = open(f.path.c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "not a bus, just text", 20) == 20);
    close(fd);
    CHECK(rump_pub_shmif_create(f.path.c_str(), &unit) == EINVAL);
    unlink(f.path.c_str());
    // ifcreate makes one without a bus; the link string attaches it.
    CHECK(rump_pub_netconfig_ifcreate("shmif3") == 0);
    CHECK(rump_pub_netconfig_ifcreate("shmif3") == EEXIST);
    CHECK(rump_pub_netconfig_ifsetlinkstr("shmif3", "") == EINVAL);
    CHECK(rump_pub_netconfig_ifsetlinkstr("shmif3", f.path.c_str()) == 0);
    CHECK(rump_pub_netconfig_ifsetlinkstr("shmif3", f.path.c_str()) == 0);  // again: replaces the link
    CHECK(rump_pub_shmif_create(f.path.c_str(), &unit) == 0);
    CHECK(unit == 0);
    CHECK(rump_pub_netconfig_ifdestroy("shmif3") == 0);
    CHECK(rump_pub_netconfig_ifdestroy("shmif0") == 0);
    CHECK(rump_pub_netconfig_ifdestroy("shmif0") == ENXIO);
    CHECK(rump_pub_netconfig_ifcreate("virt0") == 0);
    CHECK(rump_pub_netconfig_ifsetlinkstr("virt0", "") == EINVAL);
    CHECK(rump_pub_netconfig_ifsetlinkstr("virt0", "a-name-longer-than-ifnamsiz") == EINVAL);
    CHECK(rump_pub_netconfig_ifdestroy("virt0") == 0);
  });
}

namespace {

// Two kernels on a bus echo a datagram; disturb(path) does something to
// the bus file from outside; five more datagrams must then come back.
void echo_survives(const std::function<void(const std::string& path)>& disturb) {
  rump_test::on_fresh_thread([&] {
    BusFile bus;
    Node a(bus.path, "10.0.0.1"), b(bus.path, "10.0.0.2");
    EchoServer echo(b, "10.0.0.2", 7000);
    a.use();
    int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    char rep[64];
    REQUIRE(udp_request(s, "10.0.0.2", 7000, "before", 6, rep, sizeof rep) == 6);
    disturb(bus.path);
    for (int i = 0; i < 5; i++) {
      std::string req = "after " + std::to_string(i);
      long n = udp_request(s, "10.0.0.2", 7000, req.data(), req.size(), rep, sizeof rep);
      REQUIRE(n == static_cast<long>(req.size()));
      CHECK(std::string(rep, static_cast<size_t>(n)) == req);
    }
    udp_request(s, "10.0.0.2", 7000, "quit", 4, rep, sizeof rep, 5);
    CHECK(echo.finish() >= 6);
    a.use();
    rump_sys_close(s);
  });
}

}  // namespace

TEST_CASE("shmif: a bus file bent by another writer costs frames, not the kernels", "[netif][shmif]") {
  echo_survives([](const std::string& path) {
    // Garbage over the positions (offset 24: write position, oldest
    // record, frame count) and over the start of the ring.
    int fd = open(path.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    std::vector<char> junk(8192);
    for (size_t i = 0; i < junk.size(); i++) junk[i] = static_cast<char>(i * 131 + 7);
    REQUIRE(pwrite(fd, junk.data(), 24, 24) == 24);
    REQUIRE(pwrite(fd, junk.data(), junk.size(), 64) == static_cast<ssize_t>(junk.size()));
    close(fd);
  });
}

TEST_CASE("shmif: a mapper that died holding the bus lock does not stop the bus", "[netif][shmif]") {
  echo_survives([](const std::string& path) {
    // A host child takes the lock as the format says (offset 8: from 0 to
    // the holder's process id), writes half a record past the write
    // position (offset 24) and dies: a writer killed in the middle of a
    // frame. It uses only system calls (the parent has threads).
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      int fd = open(path.c_str(), O_RDWR);
      if (fd < 0) _exit(1);
      constexpr size_t kRing = size_t{1} << 20;
      void* m = mmap(nullptr, 64 + kRing, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (m == MAP_FAILED) _exit(1);
      auto* base = static_cast<char*>(m);
      std::atomic_ref<uint32_t> lock(*reinterpret_cast<uint32_t*>(base + 8));
      uint32_t free_ = 0;
      while (!lock.compare_exchange_strong(free_, static_cast<uint32_t>(getpid()))) {
        free_ = 0;
        sched_yield();
      }
      uint64_t wpos = std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(base + 24)).load();
      for (size_t i = 0; i < 40; i++) base[64 + (wpos + i) % kRing] = 0x5a;
      _exit(0);
    }
    int st = 0;
    REQUIRE(waitpid(child, &st, 0) == child);
    REQUIRE(WIFEXITED(st));
    REQUIRE(WEXITSTATUS(st) == 0);
  });
}
