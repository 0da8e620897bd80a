// A kernel on a host tap device (virt0) talking to the host's own Linux
// stack, inside a network namespace this test makes for itself (the
// test's thread unshares its network namespace; the tap, the addresses
// and the host servers live and die in it): ping both ways, the host's
// curl fetching from an HTTP server written with rump_sys_* calls, and a
// client in the kernel fetching from a host HTTP server (python3's
// http.server), large bodies checked byte for byte. Needs root and
// /dev/net/tun; without them it says so and passes nothing.
#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "netif_util.h"
#include "rump_test.h"

using namespace netif_test;

namespace {

constexpr const char* kTap = "rumptap0";
constexpr const char* kHostAddr = "10.77.0.1";
constexpr const char* kRumpAddr = "10.77.0.2";

// Why the host cannot run these tests ("" if it can).
std::string cannot_run() {
  if (geteuid() != 0) return "not root";
  if (access("/dev/net/tun", R_OK | W_OK) != 0) return "no /dev/net/tun";
  if (system("command -v ip >/dev/null && command -v ping >/dev/null && command -v curl >/dev/null && "
             "command -v python3 >/dev/null") != 0)
    return "ip, ping, curl or python3 missing";
  return "";
}

int sh(const std::string& cmd) {
  int st = system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

uint16_t icmp_cksum(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  if (n & 1) s += static_cast<uint32_t>(b[n - 1] << 8);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return htons(static_cast<uint16_t>(~s));
}

// Echo requests from the kernel to dst over a raw ICMP socket until one
// is answered: true when a reply with our id and sequence came.
bool kernel_ping(const char* dst) {
  int s = rump_sys_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (s < 0) return false;
  recv_timeout(s, 200);
  sockaddr_in to = in4(dst, 0);
  bool ok = false;
  for (uint16_t seq = 1; seq <= 25 && !ok; seq++) {
    uint8_t req[64] = {};
    icmphdr h{};
    h.type = ICMP_ECHO;
    h.un.echo.id = htons(0x4242);
    h.un.echo.sequence = htons(seq);
    std::memcpy(req, &h, sizeof h);
    std::memcpy(req + sizeof h, "rump ping", 9);
    h.checksum = icmp_cksum(req, sizeof req);
    std::memcpy(req, &h, sizeof h);
    if (rump_sys_sendto(s, req, sizeof req, 0, sa(to), sizeof to) != sizeof req) break;
    for (;;) {
      uint8_t buf[256];
      long n = rump_sys_recvfrom(s, buf, sizeof buf, 0, nullptr, nullptr);
      if (n < 0) break;
      size_t hl = (buf[0] & 0xf) * 4u;
      if (static_cast<size_t>(n) < hl + sizeof(icmphdr)) continue;
      icmphdr r;
      std::memcpy(&r, buf + hl, sizeof r);
      if (r.type == ICMP_ECHOREPLY && r.un.echo.id == htons(0x4242) && r.un.echo.sequence == htons(seq)) {
        ok = true;
        break;
      }
    }
  }
  rump_sys_close(s);
  return ok;
}

// Serves n requests on l: each gets `size` bytes of the stream with seed
// as an HTTP/1.0 response. Returns how many were served whole.
int http_serve(int l, int n, uint64_t seed, uint64_t size) {
  int served = 0;
  for (int i = 0; i < n; i++) {
    int c = rump_sys_accept(l, nullptr, nullptr);
    if (c < 0) break;
    std::string req;
    char buf[1024];
    while (req.find("\r\n\r\n") == std::string::npos) {
      long k = rump_sys_read(c, buf, sizeof buf);
      if (k <= 0) break;
      req.append(buf, static_cast<size_t>(k));
    }
    if (req.rfind("GET ", 0) == 0) {
      std::string hdr = "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                        std::to_string(size) + "\r\n\r\n";
      bool ok = rump_sys_write(c, hdr.data(), hdr.size()) == static_cast<long>(hdr.size());
      // stream_send shuts the sending side: the client sees EOF.
      if (ok && stream_send(c, seed, size)) served++;
    }
    rump_sys_close(c);
  }
  return served;
}

// The body of GET path from host:port, read by a kernel client; connects
// again while the server is not listening yet.
bool kernel_http_get(const char* host, uint16_t port, const char* path, std::string* body) {
  int s = -1;
  for (int i = 0; i < 100 && s < 0; i++) {
    s = tcp_connect(host, port);
    if (s < 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (s < 0) return false;
  std::string req = std::string("GET ") + path + " HTTP/1.0\r\nHost: " + host + "\r\n\r\n";
  if (rump_sys_write(s, req.data(), req.size()) != static_cast<long>(req.size())) return false;
  std::string resp;
  std::vector<char> buf(65536);
  for (;;) {
    long n = rump_sys_read(s, buf.data(), buf.size());
    if (n <= 0) break;
    resp.append(buf.data(), static_cast<size_t>(n));
  }
  rump_sys_close(s);
  size_t h = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.0 200", 0) != 0 || h == std::string::npos) return false;
  *body = resp.substr(h + 4);
  return true;
}

bool matches_stream(const std::string& got, uint64_t seed, uint64_t size) {
  if (got.size() != size) return false;
  std::vector<char> want(size);
  stream_fill(seed, 0, want.data(), size);
  return std::memcmp(got.data(), want.data(), size) == 0;
}

std::string read_file(const std::string& path) {
  std::string s;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return s;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

// TCP both ways, checked byte for byte: the host's curl fetches size
// bytes of the stream with seed from an HTTP server in kernel k at
// rump_addr:8080, then a kernel client fetches size bytes of the stream
// with seed + 1 from python3's http.server at host_addr:8081 serving dir.
void http_both_ways(rump_kernel* k, const std::string& dir, const char* rump_addr, const char* host_addr,
                    uint64_t size, uint64_t seed) {
  bool v6 = std::strchr(rump_addr, ':') != nullptr;
  std::string url_host = v6 ? std::string("[") + rump_addr + "]" : rump_addr;
  int l = tcp_listen(rump_addr, 8080);
  REQUIRE(l >= 0);
  int served = 0;
  std::thread server([&] {
    rump_kernel_set_current(k);
    served = http_serve(l, 1, seed, size);
  });
  std::string out = dir + "/fetched";
  CHECK(sh("curl -g -s -f --max-time 300 -o " + out + " http://" + url_host + ":8080/data") == 0);
  server.join();
  CHECK(served == 1);
  CHECK(matches_stream(read_file(out), seed, size));
  unlink(out.c_str());
  rump_sys_close(l);

  std::string file = dir + "/data";
  {
    std::vector<char> d(size);
    stream_fill(seed + 1, 0, d.data(), size);
    FILE* f = std::fopen(file.c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(std::fwrite(d.data(), 1, size, f) == size);
    std::fclose(f);
  }
  pid_t py = fork();
  REQUIRE(py >= 0);
  if (py == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execlp("python3", "python3", "-m", "http.server", "8081", "--bind", host_addr, "--directory", dir.c_str(),
           static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string body;
  CHECK(kernel_http_get(host_addr, 8081, "/data", &body));
  CHECK(matches_stream(body, seed + 1, size));
  kill(py, SIGTERM);
  waitpid(py, nullptr, 0);
  unlink(file.c_str());
}

// Echo requests from the kernel to dst (IPv6, scope id scope) over a raw
// ICMPv6 socket (the kernel puts the checksum) until one is answered.
bool kernel_ping6(const char* dst, uint32_t scope) {
  int s = rump_sys_socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
  if (s < 0) return false;
  recv_timeout(s, 200);
  sockaddr_in6 to{};
  any_addr(dst, 0, to);
  to.sin6_scope_id = scope;
  bool ok = false;
  // The host may still run duplicate detection for its address (which
  // then takes nothing): a few seconds of tries.
  for (uint8_t seq = 1; seq <= 50 && !ok; seq++) {
    uint8_t req[16] = {128, 0, 0, 0, 0x42, 0x43, 0, seq, 'r', 'u', 'm', 'p', 'p', 'i', 'n', 'g'};
    if (rump_sys_sendto(s, req, sizeof req, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) != sizeof req) break;
    for (;;) {
      uint8_t buf[256];
      long n = rump_sys_recvfrom(s, buf, sizeof buf, 0, nullptr, nullptr);
      if (n < 0) break;
      if (n >= 8 && buf[0] == 129 && buf[4] == 0x42 && buf[5] == 0x43 && buf[7] == seq) {
        ok = true;
        break;
      }
    }
  }
  rump_sys_close(s);
  return ok;
}

// The host's counters of a device in this thread's network namespace
// (/proc/thread-self/net/dev): bytes and frames the host received from
// the tap (what the kernel sent) and sent into it.
struct TapCounters {
  uint64_t rx_bytes = 0, rx_frames = 0, tx_bytes = 0, tx_frames = 0;
};
TapCounters tap_counters(const char* dev) {
  TapCounters c;
  FILE* f = std::fopen("/proc/thread-self/net/dev", "r");
  if (!f) return c;
  char line[512];
  std::string want = std::string(dev) + ":";
  while (std::fgets(line, sizeof line, f)) {
    char* p = line;
    while (*p == ' ') p++;
    if (std::strncmp(p, want.c_str(), want.size()) != 0) continue;
    unsigned long long v[16] = {};
    if (std::sscanf(p + want.size(), "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                    &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) == 10) {
      c.rx_bytes = v[0];
      c.rx_frames = v[1];
      c.tx_bytes = v[8];
      c.tx_frames = v[9];
    }
  }
  std::fclose(f);
  return c;
}

// The link-local address modified EUI-64 makes from a MAC, as text.
std::string eui64_linklocal(const uint8_t m[6]) {
  char b[64];
  std::snprintf(b, sizeof b, "fe80::%x:%xff:fe%02x:%x", (m[0] ^ 2) << 8 | m[1], m[2], m[3], m[4] << 8 | m[5]);
  return b;
}

}  // namespace

TEST_CASE("virt: IPv6 on a host tap: ping6 both ways (global and link-local), TCP both ways", "[netif][virt][root]") {
  std::string why = cannot_run();
  if (!why.empty()) {
    WARN("virt IPv6 interop test skipped: " << why);
    return;
  }
  rump_test::on_fresh_thread([] {
    if (unshare(CLONE_NEWNET) != 0) {
      WARN("virt IPv6 interop test skipped: unshare(CLONE_NEWNET): " << std::strerror(errno));
      return;
    }
    char dir[] = "/tmp/rump-virt6-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    const char* kHost6 = "2001:db8:76::1";
    const char* kRump6 = "2001:db8:76::2";
    rump_test::KernelUp up(rump_test::BootOpts{.ncpu = 2});
    REQUIRE(rump_pub_netconfig_ifcreate("virt0") == 0);
    REQUIRE(rump_pub_netconfig_ifsetlinkstr("virt0", kTap) == 0);
    REQUIRE(rump_pub_netconfig_ipv6_ifaddr("virt0", kRump6, 64) == 0);
    REQUIRE(rump_pub_netconfig_ifup("virt0") == 0);
    REQUIRE(sh(std::string("ip link set lo up && ip link set ") + kTap + " up && ip addr add " + kHost6 + "/64 dev " +
               kTap + " nodad") == 0);
    int s = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "virt0");
    REQUIRE(rump_sys_ioctl(s, SIOCGIFHWADDR, &ifr) == 0);
    std::string rump_ll = eui64_linklocal(reinterpret_cast<const uint8_t*>(ifr.ifr_hwaddr.sa_data));
    REQUIRE(rump_sys_ioctl(s, SIOCGIFINDEX, &ifr) == 0);
    uint32_t virt_index = static_cast<uint32_t>(ifr.ifr_ifindex);
    rump_sys_close(s);
    int hs = socket(AF_INET6, SOCK_DGRAM, 0);
    ifreq hr{};
    std::strcpy(hr.ifr_name, kTap);
    REQUIRE(ioctl(hs, SIOCGIFHWADDR, &hr) == 0);
    close(hs);
    std::string host_ll = eui64_linklocal(reinterpret_cast<const uint8_t*>(hr.ifr_hwaddr.sa_data));

    // ping6 both ways, to the global addresses and the link-local ones
    // (the kernel names its interface by scope id; its pings wait until
    // the host's link-local address has passed duplicate detection, which
    // the host's own ping to a link-local address needs as its source).
    CHECK(sh(std::string("ping -6 -c 3 -W 5 ") + kRump6 + " >/dev/null") == 0);
    CHECK(kernel_ping6(kHost6, 0));
    CHECK(kernel_ping6(host_ll.c_str(), virt_index));
    CHECK(sh("ping -6 -c 2 -W 5 " + rump_ll + "%" + kTap + " >/dev/null") == 0);

    // TCP: the host's curl fetches 1 MiB from the kernel, a kernel client
    // fetches 1 MiB from python3's http.server on the host.
    http_both_ways(up.k, dir, kRump6, kHost6, 1u << 20, 7);
    rmdir(dir);
  });
}

TEST_CASE("virt: a kernel on a host tap talks to the host's stack in a private netns", "[netif][virt][root]") {
  std::string why = cannot_run();
  if (!why.empty()) {
    WARN("virt host interop test skipped: " << why);
    return;
  }
  rump_test::on_fresh_thread([] {
    // This thread (and what it starts) gets a network namespace of its
    // own, which goes when the thread and its tap are gone.
    if (unshare(CLONE_NEWNET) != 0) {
      WARN("virt host interop test skipped: unshare(CLONE_NEWNET): " << std::strerror(errno));
      return;
    }
    char dir[] = "/tmp/rump-virt-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    rump_test::KernelUp up(rump_test::BootOpts{.ncpu = 2});
    REQUIRE(rump_pub_netconfig_ifcreate("virt0") == 0);
    REQUIRE(rump_pub_netconfig_ifsetlinkstr("virt0", kTap) == 0);
    REQUIRE(if_config("virt0", kRumpAddr, 24) == 0);
    REQUIRE(sh(std::string("ip link set lo up && ip addr add ") + kHostAddr + "/24 dev " + kTap + " && ip link set " +
               kTap + " up") == 0);

    // Ping both ways.
    CHECK(sh(std::string("ping -c 3 -W 5 ") + kRumpAddr + " >/dev/null") == 0);
    CHECK(kernel_ping(kHostAddr));

    // The host's curl fetches 16 MiB from the kernel's HTTP server, a
    // kernel client 16 MiB from python3's http.server on the host.
    TapCounters before = tap_counters(kTap);
    http_both_ways(up.k, dir, kRumpAddr, kHostAddr, 16u << 20, 5);
    TapCounters after = tap_counters(kTap);
    // The tap has offloads (the default): each side handed the other TCP
    // segments of many MSS as one frame (the kernel's TSO, the host's TSO
    // and GRO), with partial checksums that the receiving side takes as
    // good (as Linux with virtio-net): the byte-for-byte checks above show
    // the segments right. On average a frame carried more than an
    // Ethernet MTU each way.
    uint64_t rx_frames = after.rx_frames - before.rx_frames, tx_frames = after.tx_frames - before.tx_frames;
    REQUIRE(rx_frames > 0);
    REQUIRE(tx_frames > 0);
    CHECK((after.rx_bytes - before.rx_bytes) / rx_frames > 1514);
    CHECK((after.tx_bytes - before.tx_bytes) / tx_frames > 1514);
    rmdir(dir);
  });
}

TEST_CASE("virt: a tap without offloads (RUMP_VIRT_OFFLOAD=0) carries frames of at most the MTU, TCP both ways",
          "[netif][virt][root]") {
  std::string why = cannot_run();
  if (!why.empty()) {
    WARN("virt plain tap test skipped: " << why);
    return;
  }
  rump_test::on_fresh_thread([] {
    if (unshare(CLONE_NEWNET) != 0) {
      WARN("virt plain tap test skipped: unshare(CLONE_NEWNET): " << std::strerror(errno));
      return;
    }
    char dir[] = "/tmp/rump-virtp-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    rump_test::KernelUp up(rump_test::BootOpts{.ncpu = 2});
    REQUIRE(rump_pub_netconfig_ifcreate("virt0") == 0);
    setenv("RUMP_VIRT_OFFLOAD", "0", 1);
    int e = rump_pub_netconfig_ifsetlinkstr("virt0", kTap);
    unsetenv("RUMP_VIRT_OFFLOAD");
    REQUIRE(e == 0);
    REQUIRE(if_config("virt0", kRumpAddr, 24) == 0);
    REQUIRE(sh(std::string("ip link set lo up && ip addr add ") + kHostAddr + "/24 dev " + kTap + " && ip link set " +
               kTap + " up") == 0);
    CHECK(sh(std::string("ping -c 2 -W 5 ") + kRumpAddr + " >/dev/null") == 0);
    TapCounters before = tap_counters(kTap);
    http_both_ways(up.k, dir, kRumpAddr, kHostAddr, 2u << 20, 9);
    TapCounters after = tap_counters(kTap);
    // Every frame within the MTU, each way: the largest average possible
    // is that of full frames (the host checks every checksum of a frame
    // without a virtio-net header).
    uint64_t rx_frames = after.rx_frames - before.rx_frames, tx_frames = after.tx_frames - before.tx_frames;
    REQUIRE(rx_frames > 1000);
    REQUIRE(tx_frames > 1000);
    CHECK((after.rx_bytes - before.rx_bytes) / rx_frames <= 1514);
    CHECK((after.tx_bytes - before.tx_bytes) / tx_frames <= 1514);
    rmdir(dir);
  });
}
