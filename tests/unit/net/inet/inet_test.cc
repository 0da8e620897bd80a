// The inet stack against the rump kernel alone: what the host cannot
// show (counters of hand-made malformed packets, fragmentation with a
// small MTU on lo, netconfig, ping over raw and ping sockets, several
// processes and threads of one kernel).
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/ip_icmp.h>
#include <netinet/udp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <rump/rump.h>
#include <rump/rumpnet.h>

#include "kern/curlwp.h"
#include "kern/kernel.h"
#include "net/inet/if.h"
#include "net/inet/if_ether.h"
#include "net_diff.h"

using namespace net_test;

#include "net_stats.h"

namespace {

std::atomic<int> g_thread_failures{0};
#define TCHECK_OK(expr)                          \
  do {                                           \
    if (!(expr)) g_thread_failures.fetch_add(1); \
  } while (0)

sockaddr_in in4(const char* a, uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  inet_pton(AF_INET, a, &s.sin_addr);
  return s;
}
sockaddr* sa4(sockaddr_in& a) { return reinterpret_cast<sockaddr*>(&a); }

uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t l = sizeof a;
  REQUIRE(rump_sys_getsockname(fd, sa4(a), &l) == 0);
  return ntohs(a.sin_port);
}

// A UDP socket bound to 127.0.0.1 and an ephemeral port.
int bound_udp(uint16_t* port) {
  int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(s >= 0);
  sockaddr_in a = in4("127.0.0.1", 0);
  REQUIRE(rump_sys_bind(s, sa4(a), sizeof a) == 0);
  *port = port_of(s);
  return s;
}

std::map<std::string, uint64_t> stats(const char* node) { return net_stats(node); }

// Feeds raw bytes into lo's input, as a device would.
void inject(const std::vector<uint8_t>& bytes, uint16_t proto = ETH_P_IP) {
  rump::Kernel* k = rump::current_kernel();
  REQUIRE(k != nullptr);
  rump::Lwp* l = rump::enter(*k);
  REQUIRE(l != nullptr);
  rump::InetState* st = rump::inet_state_or_null(*k);
  REQUIRE(st != nullptr);
  rump::Result<rump::Pkt*> p = rump::Pkt::alloc(st->pool, 0);
  REQUIRE(p.ok());
  REQUIRE(p.value()->append(bytes.data(), bytes.size()).ok());
  rump::if_input(*st->lo_, p.value(), proto);
  rump::leave(*k, l);
}

uint16_t cksum(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  if (n & 1) s += static_cast<uint32_t>(b[n - 1] << 8);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return htons(static_cast<uint16_t>(~s));
}

// An IPv4 packet from 127.0.0.1 to 127.0.0.1 (correct unless bent after).
std::vector<uint8_t> ip_packet(uint8_t proto, const std::vector<uint8_t>& payload, uint16_t id = 1,
                               uint16_t frag = 0) {
  std::vector<uint8_t> v(20 + payload.size());
  iphdr h{};
  h.version = 4;
  h.ihl = 5;
  h.tot_len = htons(static_cast<uint16_t>(v.size()));
  h.id = htons(id);
  h.frag_off = htons(frag);
  h.ttl = 64;
  h.protocol = proto;
  h.saddr = htonl(INADDR_LOOPBACK);
  h.daddr = htonl(INADDR_LOOPBACK);
  h.check = cksum(&h, 20);
  std::memcpy(v.data(), &h, 20);
  std::memcpy(v.data() + 20, payload.data(), payload.size());
  return v;
}

void refix_ip_cksum(std::vector<uint8_t>& v) {
  v[10] = v[11] = 0;
  uint16_t c = cksum(v.data(), (v[0] & 15) * 4u);
  std::memcpy(&v[10], &c, 2);
}

// A UDP datagram to port dport with a correct checksum (127.0.0.1 both).
std::vector<uint8_t> udp_payload(uint16_t sport, uint16_t dport, const std::string& data) {
  std::vector<uint8_t> u(8 + data.size());
  udphdr h{};
  h.source = htons(sport);
  h.dest = htons(dport);
  h.len = htons(static_cast<uint16_t>(u.size()));
  std::memcpy(u.data(), &h, 8);
  std::memcpy(u.data() + 8, data.data(), data.size());
  std::vector<uint8_t> ph(12 + u.size());
  uint32_t a = htonl(INADDR_LOOPBACK);
  std::memcpy(&ph[0], &a, 4);
  std::memcpy(&ph[4], &a, 4);
  ph[9] = IPPROTO_UDP;
  ph[10] = static_cast<uint8_t>(u.size() >> 8);
  ph[11] = static_cast<uint8_t>(u.size());
  std::memcpy(&ph[12], u.data(), u.size());
  uint16_t c = cksum(ph.data(), ph.size());
  std::memcpy(&u[6], &c, 2);
  return u;
}

void set_lo_mtu(int mtu) {
  int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
  ifreq ifr{};
  std::strcpy(ifr.ifr_name, "lo");
  ifr.ifr_mtu = mtu;
  REQUIRE(rump_sys_ioctl(s, SIOCSIFMTU, &ifr) == 0);
  rump_sys_close(s);
}

}  // namespace

TEST_CASE("inet: UDP between two processes of one kernel", "[inet]") {
  in_rump(make_env(), [] {
    lwp* me = rump_lwproc_curlwp();
    rump_test::Kid a = rump_test::fork_kid();
    rump_test::Kid b = rump_test::fork_kid();
    rump_lwproc_switch(a.l);
    uint16_t port;
    int r = bound_udp(&port);
    rump_lwproc_switch(b.l);
    int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(s >= 0);
    sockaddr_in to = in4("127.0.0.1", port);
    for (int i = 0; i < 10; i++) {
      char msg[32];
      int n = snprintf(msg, sizeof msg, "datagram %d", i);
      REQUIRE(rump_sys_sendto(s, msg, n, 0, sa4(to), sizeof to) == n);
    }
    uint16_t sport = port_of(s);
    rump_lwproc_switch(a.l);
    for (int i = 0; i < 10; i++) {
      char buf[64] = {};
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      long n = rump_sys_recvfrom(r, buf, sizeof buf, 0, sa4(from), &fl);
      char want[32];
      snprintf(want, sizeof want, "datagram %d", i);
      REQUIRE(n == static_cast<long>(std::strlen(want)));
      CHECK(std::string(buf) == want);
      CHECK(ntohs(from.sin_port) == sport);
      CHECK(from.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    }
    rump_lwproc_switch(me);
    auto u = stats("net.inet.udp.stats");
    CHECK(u["InDatagrams"] == 10);
    CHECK(u["OutDatagrams"] == 10);
  });
}

TEST_CASE("inet: UDP from several threads to one receiver on both CPUs", "[inet][concurrency]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up(rump_test::BootOpts{.ncpu = 2});
    g_thread_failures = 0;
    uint16_t port;
    int r = bound_udp(&port);
    int big = 1 << 20;
    REQUIRE(rump_sys_setsockopt(r, SOL_SOCKET, SO_RCVBUF, &big, sizeof big) == 0);
    constexpr int kSenders = 4, kEach = 200;
    std::atomic<int> received{0};
    std::vector<std::thread> ts;
    std::thread reader([&] {
      rump_kernel_set_current(up.k);
      std::vector<int> seen(kSenders, 0);
      for (int i = 0; i < kSenders * kEach; i++) {
        char buf[16];
        long n = rump_sys_recvfrom(r, buf, sizeof buf, 0, nullptr, nullptr);
        TCHECK_OK(n == 8);
        if (n != 8) break;
        int who, seq;
        std::memcpy(&who, buf, 4);
        std::memcpy(&seq, buf + 4, 4);
        // Each sender's datagrams come in its order (one path, no loss).
        TCHECK_OK(who >= 0 && who < kSenders && seq == seen[who]);
        if (who >= 0 && who < kSenders) seen[who] = seq + 1;
        received.fetch_add(1);
      }
    });
    for (int w = 0; w < kSenders; w++) {
      ts.emplace_back([&, w] {
        rump_kernel_set_current(up.k);
        int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
        TCHECK_OK(s >= 0);
        sockaddr_in to = in4("127.0.0.1", port);
        TCHECK_OK(rump_sys_connect(s, sa4(to), sizeof to) == 0);
        for (int i = 0; i < kEach; i++) {
          char buf[8];
          std::memcpy(buf, &w, 4);
          std::memcpy(buf + 4, &i, 4);
          TCHECK_OK(rump_sys_sendto(s, buf, 8, 0, nullptr, 0) == 8);
        }
        rump_sys_close(s);
      });
    }
    for (auto& t : ts) t.join();
    reader.join();
    CHECK(g_thread_failures.load() == 0);
    CHECK(received.load() == kSenders * kEach);
    rump_sys_close(r);
  });
}

TEST_CASE("inet: malformed IPv4 packets into lo are counted and dropped", "[inet][malformed]") {
  in_rump(make_env(), [] {
    uint16_t port;
    int r = bound_udp(&port);
    std::vector<uint8_t> good = ip_packet(IPPROTO_UDP, udp_payload(1234, port, "good"));
    auto before = stats("net.inet.ip.stats");
    // Truncated below a header.
    inject(std::vector<uint8_t>(good.begin(), good.begin() + 12));
    // Wrong version; header length below 5 words; header longer than the packet.
    auto v = good;
    v[0] = 0x65;
    refix_ip_cksum(v);
    inject(v);
    v = good;
    v[0] = 0x44;
    inject(v);
    v = std::vector<uint8_t>(good.begin(), good.begin() + 22);
    v[0] = 0x46;
    inject(v);
    // Bad header checksum.
    v = good;
    v[10] ^= 0x55;
    inject(v);
    // Total length beyond the packet, and below the header.
    v = good;
    v[2] = 0x10;
    refix_ip_cksum(v);
    inject(v);
    v = good;
    v[2] = 0;
    v[3] = 10;
    refix_ip_cksum(v);
    inject(v);
    // An option whose length is zero (would loop) and one that overruns.
    for (uint8_t optlen : {0, 9}) {
      std::vector<uint8_t> o(good.size() + 4);
      std::memcpy(o.data(), good.data(), 20);
      o[0] = 0x46;
      o[2] = static_cast<uint8_t>(o.size() >> 8);
      o[3] = static_cast<uint8_t>(o.size());
      o[20] = 7;  // record route
      o[21] = optlen;
      o[22] = 4;
      o[23] = 0;
      std::memcpy(o.data() + 24, good.data() + 20, good.size() - 20);
      refix_ip_cksum(o);
      inject(o);
    }
    // Not for us.
    v = good;
    uint32_t other = inet_addr("10.9.8.7");
    std::memcpy(&v[16], &other, 4);
    refix_ip_cksum(v);
    inject(v);
    auto after = stats("net.inet.ip.stats");
    CHECK(after["InReceives"] - before["InReceives"] == 10);
    CHECK(after["InHdrErrors"] - before["InHdrErrors"] == 8);
    CHECK(after["InCsumErrors"] - before["InCsumErrors"] == 1);
    CHECK(after["InTruncatedPkts"] - before["InTruncatedPkts"] == 1);
    CHECK(after["InAddrErrors"] - before["InAddrErrors"] == 1);
    CHECK(after["InDelivers"] == before["InDelivers"]);
    // UDP: a short header, a length beyond the datagram, a bad checksum.
    auto ub = stats("net.inet.udp.stats");
    inject(ip_packet(IPPROTO_UDP, std::vector<uint8_t>(good.begin() + 20, good.begin() + 25)));
    auto u = udp_payload(1234, port, "good");
    u[5] = 200;
    inject(ip_packet(IPPROTO_UDP, u));
    u = udp_payload(1234, port, "good");
    u[9] ^= 1;
    inject(ip_packet(IPPROTO_UDP, u));
    auto ua = stats("net.inet.udp.stats");
    CHECK(ua["InErrors"] - ub["InErrors"] == 3);
    CHECK(ua["InCsumErrors"] - ub["InCsumErrors"] == 1);
    CHECK(ua["InDatagrams"] == ub["InDatagrams"]);
    // An unknown protocol: counted, answered with protocol unreachable.
    auto ib = stats("net.inet.icmp.stats");
    inject(ip_packet(253, {1, 2, 3, 4, 5, 6, 7, 8}));
    auto ia = stats("net.inet.icmp.stats");
    CHECK(stats("net.inet.ip.stats")["InUnknownProtos"] - after["InUnknownProtos"] == 1);
    CHECK(ia["OutDestUnreachs"] - ib["OutDestUnreachs"] == 1);
    // ICMP: too short, bad checksum.
    inject(ip_packet(IPPROTO_ICMP, {8, 0, 0}));
    inject(ip_packet(IPPROTO_ICMP, {8, 0, 0, 1, 0, 0, 0, 0}));
    auto ic = stats("net.inet.icmp.stats");
    CHECK(ic["InErrors"] - ia["InErrors"] == 2);
    CHECK(ic["InCsumErrors"] - ia["InCsumErrors"] == 1);
    // Nothing reached the socket; the good packet still does.
    char buf[16];
    CHECK(rump_sys_recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) == -1);
    CHECK(errno == EAGAIN);
    inject(good);
    CHECK(rump_sys_recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) == 4);
    rump_sys_close(r);
  });
}

TEST_CASE("inet: fragments: a round trip with a small MTU, overlaps and oversize dropped", "[inet][frag]") {
  in_rump(make_env(), [] {
    set_lo_mtu(576);
    uint16_t port;
    int r = bound_udp(&port);
    int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to = in4("127.0.0.1", port);
    std::vector<char> data(20000);
    for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 31 + 7);
    auto before = stats("net.inet.ip.stats");
    REQUIRE(rump_sys_sendto(s, data.data(), data.size(), 0, sa4(to), sizeof to) == 20000);
    std::vector<char> got(30000);
    REQUIRE(rump_sys_recvfrom(r, got.data(), got.size(), MSG_DONTWAIT, nullptr, nullptr) == 20000);
    CHECK(std::memcmp(got.data(), data.data(), data.size()) == 0);
    auto after = stats("net.inet.ip.stats");
    // 20008 bytes of UDP in pieces of 552: 37 fragments.
    CHECK(after["FragCreates"] - before["FragCreates"] == 37);
    CHECK(after["FragOKs"] - before["FragOKs"] == 1);
    CHECK(after["ReasmOKs"] - before["ReasmOKs"] == 1);
    CHECK(after["ReasmReqds"] - before["ReasmReqds"] == 37);
    // Overlapping fragments by hand: the datagram is dropped.
    std::vector<uint8_t> u = udp_payload(999, port, std::string(40, 'o'));
    std::vector<uint8_t> f1(u.begin(), u.begin() + 24), f2(u.begin() + 16, u.end());
    inject(ip_packet(IPPROTO_UDP, f1, 77, IP_MF | 0));
    inject(ip_packet(IPPROTO_UDP, f2, 77, 2));  // offset 16 < 24: overlap
    auto ov = stats("net.inet.ip.stats");
    CHECK(ov["ReasmOverlaps"] - after["ReasmOverlaps"] == 1);
    CHECK(ov["ReasmOKs"] == after["ReasmOKs"]);
    // The same fragments without the overlap reassemble.
    std::vector<uint8_t> g1(u.begin(), u.begin() + 24), g2(u.begin() + 24, u.end());
    inject(ip_packet(IPPROTO_UDP, g2, 78, 3));
    inject(ip_packet(IPPROTO_UDP, g1, 78, IP_MF));
    char buf[64];
    CHECK(rump_sys_recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) == 40);
    // A non-last fragment whose length is not a multiple of 8, and one
    // reaching past 65535.
    inject(ip_packet(IPPROTO_UDP, std::vector<uint8_t>(13, 1), 79, IP_MF));
    inject(ip_packet(IPPROTO_UDP, std::vector<uint8_t>(16, 1), 80, 8190));
    auto bad = stats("net.inet.ip.stats");
    CHECK(bad["InHdrErrors"] - ov["InHdrErrors"] == 2);
    CHECK(rump_sys_recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) == -1);
    // DF and too big: EMSGSIZE is for IP_MTU_DISCOVER; without it the
    // datagram is fragmented, so 65507 still goes.
    std::vector<char> max(65507, 'm');
    CHECK(rump_sys_sendto(s, max.data(), max.size(), 0, sa4(to), sizeof to) == 65507);
    int big = 1 << 20;
    rump_sys_setsockopt(r, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    CHECK(rump_sys_recvfrom(r, got.data(), got.size(), MSG_DONTWAIT | MSG_TRUNC, nullptr, nullptr) == 65507);
    set_lo_mtu(65536);
    rump_sys_close(r);
    rump_sys_close(s);
  });
}

TEST_CASE("inet: reassembly gives up after ipfrag_time and sends time exceeded", "[inet][frag]") {
  in_rump(make_env(), [] {
    int one = 1;
    REQUIRE(rump_sys_sysctlbyname("net.ipv4.ipfrag_time", nullptr, nullptr, &one, sizeof one) == 0);
    uint16_t port;
    int r = bound_udp(&port);
    std::vector<uint8_t> u = udp_payload(999, port, std::string(40, 'x'));
    auto before = stats("net.inet.ip.stats");
    auto ib = stats("net.inet.icmp.stats");
    inject(ip_packet(IPPROTO_UDP, std::vector<uint8_t>(u.begin(), u.begin() + 24), 91, IP_MF));
    // The timer runs on the callout thread; wait for it (bounded).
    for (int i = 0; i < 1000 && stats("net.inet.ip.stats")["ReasmTimeout"] == before["ReasmTimeout"]; i++)
      usleep(10000);
    auto after = stats("net.inet.ip.stats");
    CHECK(after["ReasmTimeout"] - before["ReasmTimeout"] == 1);
    CHECK(after["ReasmFails"] - before["ReasmFails"] == 1);
    CHECK(stats("net.inet.icmp.stats")["OutTimeExcds"] - ib["OutTimeExcds"] == 1);
    rump_sys_close(r);
  });
}

TEST_CASE("inet: ping 127.0.0.1 over a raw socket and over an ICMP datagram socket", "[inet][icmp]") {
  in_rump(make_env(), [] {
    // Raw: root builds the whole echo request and sees the IP header.
    int raw = rump_sys_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    REQUIRE(raw >= 0);
    uint8_t req[16] = {ICMP_ECHO, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g', '!', '!', '!', '!'};
    uint16_t c = cksum(req, sizeof req);
    std::memcpy(req + 2, &c, 2);
    sockaddr_in lo = in4("127.0.0.1", 0);
    REQUIRE(rump_sys_sendto(raw, req, sizeof req, 0, sa4(lo), sizeof lo) == sizeof req);
    // The raw socket sees its own request, then the reply.
    uint8_t buf[128];
    bool got_reply = false;
    for (int i = 0; i < 2; i++) {
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      long n = rump_sys_recvfrom(raw, buf, sizeof buf, MSG_DONTWAIT, sa4(from), &fl);
      REQUIRE(n == 20 + 16);
      CHECK((buf[0] >> 4) == 4);
      CHECK(buf[9] == IPPROTO_ICMP);
      if (buf[20] == ICMP_ECHOREPLY) {
        got_reply = true;
        CHECK(std::memcmp(buf + 24, req + 4, 12) == 0);
        CHECK(cksum(buf + 20, 16) == 0);
      }
    }
    CHECK(got_reply);
    rump_sys_close(raw);
    // Ping sockets: refused until the group is in the range.
    REQUIRE(rump_sys_socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) == -1);
    CHECK(errno == EACCES);
    const char range[] = "0 0";
    REQUIRE(rump_sys_sysctlbyname("net.ipv4.ping_group_range", nullptr, nullptr, range, 3) == 0);
    int ps = rump_sys_socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    REQUIRE(ps >= 0);
    uint8_t echo[12] = {ICMP_ECHO, 0, 0, 0, 0, 0, 0, 7, 'd', 'g', 'r', 'm'};
    REQUIRE(rump_sys_sendto(ps, echo, sizeof echo, 0, sa4(lo), sizeof lo) == sizeof echo);
    uint16_t id = port_of(ps);
    CHECK(id != 0);
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    long n = rump_sys_recvfrom(ps, buf, sizeof buf, MSG_DONTWAIT, sa4(from), &fl);
    REQUIRE(n == sizeof echo);
    CHECK(buf[0] == ICMP_ECHOREPLY);
    CHECK((buf[4] << 8 | buf[5]) == id);
    CHECK(std::memcmp(buf + 6, echo + 6, 6) == 0);
    CHECK(from.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    // Not an echo request: EINVAL; too short: EINVAL.
    uint8_t notecho[8] = {ICMP_ECHOREPLY, 0, 0, 0, 0, 0, 0, 0};
    CHECK(rump_sys_sendto(ps, notecho, 8, 0, sa4(lo), sizeof lo) == -1);
    CHECK(errno == EINVAL);
    CHECK(rump_sys_sendto(ps, echo, 4, 0, sa4(lo), sizeof lo) == -1);
    CHECK(errno == EINVAL);
    auto ic = stats("net.inet.icmp.stats");
    CHECK(ic["InEchos"] == 2);
    CHECK(ic["OutEchoReps"] == 2);
    rump_sys_close(ps);
  });
}

TEST_CASE("inet: raw sockets need root", "[inet][icmp]") {
  in_rump(make_env(), [] {
    REQUIRE(rump_sys_setuid(1000) == 0);
    CHECK(rump_sys_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) == -1);
    CHECK(errno == EPERM);
    CHECK(rump_sys_socket(AF_INET, SOCK_RAW, 0) == -1);
    CHECK(errno == EPROTONOSUPPORT);
  });
}

TEST_CASE("inet: netconfig errors, addresses, routes and lo down", "[inet][netconfig]") {
  in_rump(make_env(), [] {
    CHECK(rump_pub_netconfig_ifup("nosuch0") == ENXIO);
    CHECK(rump_pub_netconfig_ifdown("nosuch0") == ENXIO);
    CHECK(rump_pub_netconfig_ipv4_ifaddr("nosuch0", "10.0.0.1", "255.0.0.0") == ENXIO);
    CHECK(rump_pub_netconfig_ipv4_ifaddr_cidr("nosuch0", "10.0.0.1", 8) == ENXIO);
    CHECK(rump_pub_netconfig_ipv6_ifaddr("nosuch0", "fd00::1", 64) == ENXIO);
    CHECK(rump_pub_netconfig_ifsetlinkstr("nosuch0", "x") == ENXIO);
    CHECK(rump_pub_netconfig_ifdestroy("nosuch0") == ENXIO);
    CHECK(rump_pub_netconfig_ifcreate("nosuch0") == ENXIO);
    CHECK(rump_pub_netconfig_ifcreate("lo") == EEXIST);
    CHECK(rump_pub_netconfig_ifsetlinkstr("lo", "x") == EOPNOTSUPP);
    CHECK(rump_pub_netconfig_ipv4_ifaddr("lo", "10.0.0.300", "255.0.0.0") == EINVAL);
    CHECK(rump_pub_netconfig_ipv4_ifaddr("lo", "10.0.0.1", "255.0.255.0") == EINVAL);
    CHECK(rump_pub_netconfig_ipv4_ifaddr("lo", "10.0.0.1", "bogus") == EINVAL);
    CHECK(rump_pub_netconfig_ipv4_ifaddr_cidr("lo", "10.0.0.1", 33) == EINVAL);
    CHECK(rump_pub_netconfig_ipv4_ifaddr_cidr("lo", "10.0.0.1", -1) == EINVAL);
    CHECK(rump_pub_netconfig_ipv6_ifaddr("lo", "fd00::zz", 64) == EINVAL);
    CHECK(rump_pub_netconfig_ipv6_ifaddr("lo", "fd00::1", 129) == EINVAL);
    CHECK(rump_pub_netconfig_ipv4_gw("999.1.1.1") == EINVAL);
    CHECK(rump_pub_netconfig_ipv4_gw("10.1.1.1") == ENETUNREACH);
    CHECK(rump_pub_netconfig_ipv6_gw("not-an-address") == EINVAL);
    // A second address on lo: reachable, listed, a gateway on its net.
    REQUIRE(rump_pub_netconfig_ipv4_ifaddr("lo", "10.0.0.1", "255.255.255.0") == 0);
    REQUIRE(rump_pub_netconfig_ipv4_ifaddr_cidr("lo", "10.0.1.1", 24) == 0);
    CHECK(rump_pub_netconfig_ipv4_gw("10.0.0.254") == 0);
    int r = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a = in4("10.0.0.1", 0);
    REQUIRE(rump_sys_bind(r, sa4(a), sizeof a) == 0);
    uint16_t port = port_of(r);
    int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to = in4("10.0.0.1", port);
    REQUIRE(rump_sys_connect(s, sa4(to), sizeof to) == 0);
    sockaddr_in me{};
    socklen_t ml = sizeof me;
    REQUIRE(rump_sys_getsockname(s, sa4(me), &ml) == 0);
    CHECK(me.sin_addr.s_addr == inet_addr("10.0.0.1"));  // to an own address, from itself
    REQUIRE(rump_sys_send(s, "x", 1, 0) == 1);
    char buf[4];
    CHECK(rump_sys_recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) == 1);
    // lo down: nothing goes.
    REQUIRE(rump_pub_netconfig_ifdown("lo") == 0);
    CHECK(rump_sys_send(s, "x", 1, 0) == -1);
    CHECK(errno == ENETUNREACH);
    REQUIRE(rump_pub_netconfig_ifup("lo") == 0);
    CHECK(rump_sys_send(s, "x", 1, 0) == 1);
    // SIOCSIFADDR/SIOCSIFNETMASK replace lo's first address.
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    REQUIRE(rump_sys_ioctl(s, SIOCGIFADDR, &ifr) == 0);
    sockaddr_in got;
    std::memcpy(&got, &ifr.ifr_addr, sizeof got);
    CHECK(got.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    sockaddr_in m = in4("255.255.0.0", 0);
    std::memcpy(&ifr.ifr_netmask, &m, sizeof m);
    REQUIRE(rump_sys_ioctl(s, SIOCSIFNETMASK, &ifr) == 0);
    REQUIRE(rump_sys_ioctl(s, SIOCGIFNETMASK, &ifr) == 0);
    std::memcpy(&got, &ifr.ifr_netmask, sizeof got);
    CHECK(got.sin_addr.s_addr == inet_addr("255.255.0.0"));
    m = in4("255.0.255.0", 0);
    std::memcpy(&ifr.ifr_netmask, &m, sizeof m);
    CHECK(rump_sys_ioctl(s, SIOCSIFNETMASK, &ifr) == -1);
    CHECK(errno == EINVAL);
    ifr.ifr_mtu = 20;
    CHECK(rump_sys_ioctl(s, SIOCSIFMTU, &ifr) == -1);
    CHECK(errno == EINVAL);
    REQUIRE(rump_sys_setuid(1000) == 0);
    ifr.ifr_mtu = 1500;
    CHECK(rump_sys_ioctl(s, SIOCSIFMTU, &ifr) == -1);
    CHECK(errno == EPERM);
    // Unprivileged ports below 1024: EACCES.
    int u = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in low = in4("127.0.0.1", 80);
    CHECK(rump_sys_bind(u, sa4(low), sizeof low) == -1);
    CHECK(errno == EACCES);
    rump_sys_close(u);
    rump_sys_close(r);
    rump_sys_close(s);
  });
}

TEST_CASE("inet: sockets and packets give their memory back", "[inet]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    rump_test::Kid kid = rump_test::fork_kid();
    rump_lwproc_switch(kid.l);
    auto round = [] {
      uint16_t port;
      int r = bound_udp(&port);
      int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
      sockaddr_in to = in4("127.0.0.1", port);
      std::vector<char> data(3000, 'm');
      for (int i = 0; i < 50; i++) REQUIRE(rump_sys_sendto(s, data.data(), data.size(), 0, sa4(to), sizeof to) == 3000);
      rump_sys_close(r);  // unread datagrams go with it
      rump_sys_close(s);
    };
    round();
    size_t before = up.mem();
    for (int i = 0; i < 3; i++) round();
    CHECK(up.mem() == before);
    rump_lwproc_switch(nullptr);
  });
}

namespace {

// An IPv6 packet ::1 -> ::1 with next header nxt.
std::vector<uint8_t> ip6_packet(uint8_t nxt, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> v(40 + payload.size());
  ip6_hdr h{};
  h.ip6_flow = htonl(6u << 28);
  h.ip6_plen = htons(static_cast<uint16_t>(payload.size()));
  h.ip6_nxt = nxt;
  h.ip6_hlim = 64;
  h.ip6_src = in6addr_loopback;
  h.ip6_dst = in6addr_loopback;
  std::memcpy(v.data(), &h, 40);
  std::memcpy(v.data() + 40, payload.data(), payload.size());
  return v;
}

// An ICMPv6 echo request ::1 -> ::1 with its checksum.
std::vector<uint8_t> echo6() {
  std::vector<uint8_t> m = {ICMP6_ECHO_REQUEST, 0, 0, 0, 0x43, 0x21, 0, 1, 's', 'i', 'x', '!'};
  std::vector<uint8_t> ph(40 + m.size(), 0);
  std::memcpy(&ph[0], &in6addr_loopback, 16);
  std::memcpy(&ph[16], &in6addr_loopback, 16);
  ph[35] = static_cast<uint8_t>(m.size());
  ph[39] = IPPROTO_ICMPV6;
  std::memcpy(&ph[40], m.data(), m.size());
  uint16_t c = cksum(ph.data(), ph.size());
  std::memcpy(&m[2], &c, 2);
  return m;
}

}  // namespace

TEST_CASE("inet: IPv6 on lo: echo answered, malformed packets counted and dropped", "[inet][ipv6]") {
  in_rump(make_env(), [] {
    auto i6 = stats("net.inet6.icmp6.stats");
    inject(ip6_packet(IPPROTO_ICMPV6, echo6()), ETH_P_IPV6);
    auto a6 = stats("net.inet6.icmp6.stats");
    CHECK(a6["InEchos"] - i6["InEchos"] == 1);
    CHECK(a6["OutEchoReps"] - i6["OutEchoReps"] == 1);
    CHECK(a6["InEchoReps"] - i6["InEchoReps"] == 1);  // the reply came back over lo
    CHECK(a6["InCsumErrors"] == i6["InCsumErrors"]);
    // The same behind a destination-options header (skipped).
    std::vector<uint8_t> dst_opts = {IPPROTO_ICMPV6, 0, 1, 4, 0, 0, 0, 0};
    auto e = echo6();
    dst_opts.insert(dst_opts.end(), e.begin(), e.end());
    inject(ip6_packet(IPPROTO_DSTOPTS, dst_opts), ETH_P_IPV6);
    CHECK(stats("net.inet6.icmp6.stats")["InEchos"] - a6["InEchos"] == 1);
    auto b = stats("net.inet6.ip6.stats");
    auto good = ip6_packet(IPPROTO_ICMPV6, echo6());
    inject(std::vector<uint8_t>(good.begin(), good.begin() + 30), ETH_P_IPV6);  // truncated header
    auto v = good;
    v[0] = 0x40;  // version 4
    inject(v, ETH_P_IPV6);
    v = good;
    v[5] = 200;  // payload length beyond the packet
    inject(v, ETH_P_IPV6);
    // Hop-by-hop after another header; an extension header that overruns.
    std::vector<uint8_t> hbh_late = {IPPROTO_HOPOPTS, 0, 1, 4, 0, 0, 0, 0, IPPROTO_ICMPV6, 0, 1, 4, 0, 0, 0, 0};
    inject(ip6_packet(IPPROTO_DSTOPTS, hbh_late), ETH_P_IPV6);
    std::vector<uint8_t> overrun = {IPPROTO_ICMPV6, 5, 1, 4, 0, 0, 0, 0};
    inject(ip6_packet(IPPROTO_DSTOPTS, overrun), ETH_P_IPV6);
    // A first fragment: held for reassembly, counted.
    std::vector<uint8_t> frag = {IPPROTO_UDP, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8};
    inject(ip6_packet(IPPROTO_FRAGMENT, frag), ETH_P_IPV6);
    // Not ours.
    v = good;
    v[39] = 2;
    inject(v, ETH_P_IPV6);
    // An unknown next header: parameter problem back.
    inject(ip6_packet(253, {1, 2, 3, 4, 5, 6, 7, 8}), ETH_P_IPV6);
    auto a = stats("net.inet6.ip6.stats");
    CHECK(a["InHdrErrors"] - b["InHdrErrors"] == 4);
    CHECK(a["InTruncatedPkts"] - b["InTruncatedPkts"] == 1);
    CHECK(a["ReasmReqds"] - b["ReasmReqds"] == 1);
    CHECK(a["InAddrErrors"] - b["InAddrErrors"] == 1);
    CHECK(a["InUnknownProtos"] - b["InUnknownProtos"] == 1);
    CHECK(a["InDelivers"] - b["InDelivers"] == 1);  // the parameter problem itself, over lo
  });
}

namespace {

// A link that keeps every transmitted frame, for the test to look at.
struct Capture {
  std::vector<std::vector<uint8_t>> frames;
};
void capture_tx(void* arg, rump::Ifnet&, rump::Pkt* p) {
  std::vector<uint8_t> f(p->len());
  p->copy_out(0, p->len(), f.data());
  static_cast<Capture*>(arg)->frames.push_back(std::move(f));
  rump::Pkt::free(p);
}

template <class Fn>
void in_kernel(Fn fn) {
  rump::Kernel* k = rump::current_kernel();
  REQUIRE(k != nullptr);
  rump::Lwp* l = rump::enter(*k);
  REQUIRE(l != nullptr);
  fn(*rump::inet_state_or_null(*k));
  rump::leave(*k, l);
}

void ether_rx(const std::vector<uint8_t>& frame) {
  in_kernel([&](rump::InetState& st) {
    rump::RefPtr<rump::Ifnet> ifp = st.find_if("eth0");
    REQUIRE(ifp);
    rump::Pkt* p = rump::Pkt::alloc(st.pool, 0).value();
    REQUIRE(p->append(frame.data(), frame.size()).ok());
    rump::ether_input(*ifp, p);
  });
}

const uint8_t kOurMac[6] = {0x02, 0, 0, 0, 0, 0x01};
const uint8_t kPeerMac[6] = {0x02, 0, 0, 0, 0, 0x02};
const uint8_t kThirdMac[6] = {0x02, 0, 0, 0, 0, 0x03};
const uint8_t kBroadcastMacForTest[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

std::vector<uint8_t> frame(const uint8_t dst[6], const uint8_t src[6], uint16_t type, const std::vector<uint8_t>& body) {
  std::vector<uint8_t> f(14 + body.size());
  std::memcpy(&f[0], dst, 6);
  std::memcpy(&f[6], src, 6);
  f[12] = static_cast<uint8_t>(type >> 8);
  f[13] = static_cast<uint8_t>(type);
  std::memcpy(&f[14], body.data(), body.size());
  return f;
}

std::vector<uint8_t> arp(uint16_t op, const uint8_t sha[6], const char* spa, const uint8_t tha[6], const char* tpa) {
  std::vector<uint8_t> a = {0, 1, 8, 0, 6, 4, 0, static_cast<uint8_t>(op)};
  a.insert(a.end(), sha, sha + 6);
  uint32_t x = inet_addr(spa);
  a.insert(a.end(), reinterpret_cast<uint8_t*>(&x), reinterpret_cast<uint8_t*>(&x) + 4);
  a.insert(a.end(), tha, tha + 6);
  x = inet_addr(tpa);
  a.insert(a.end(), reinterpret_cast<uint8_t*>(&x), reinterpret_cast<uint8_t*>(&x) + 4);
  return a;
}

}  // namespace

TEST_CASE("inet: Ethernet: ARP resolves a next hop, holds packets meanwhile, answers for our address",
          "[inet][ether]") {
  in_rump(make_env(), [] {
    Capture cap;
    in_kernel([&](rump::InetState& st) {
      REQUIRE(rump::ether_attach(st, "eth0", kOurMac, rump::EtherLink{&capture_tx, &cap}).ok());
    });
    REQUIRE(rump_pub_netconfig_ipv4_ifaddr_cidr("eth0", "10.1.0.1", 24) == 0);
    REQUIRE(rump_pub_netconfig_ifup("eth0") == 0);
    cap.frames.clear();  // IPv6: the link-local address's DAD, a router solicitation
    uint16_t port;
    int r = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in me = in4("10.1.0.1", 0);
    REQUIRE(rump_sys_bind(r, sa4(me), sizeof me) == 0);
    port = port_of(r);
    int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in peer = in4("10.1.0.2", 9999);
    for (int i = 0; i < 5; i++) {
      char m = static_cast<char>('0' + i);
      REQUIRE(rump_sys_sendto(s, &m, 1, 0, sa4(peer), sizeof peer) == 1);
    }
    // One request, broadcast, asking for 10.1.0.2 on behalf of 10.1.0.1.
    REQUIRE(cap.frames.size() == 1);
    auto& req = cap.frames[0];
    REQUIRE(req.size() == 14 + 28);
    CHECK(std::memcmp(&req[0], "\xff\xff\xff\xff\xff\xff", 6) == 0);
    CHECK(std::memcmp(&req[6], kOurMac, 6) == 0);
    CHECK((req[12] << 8 | req[13]) == ETH_P_ARP);
    CHECK(req[21] == 1);  // request
    uint32_t spa, tpa;
    std::memcpy(&spa, &req[28], 4);
    std::memcpy(&tpa, &req[38], 4);
    CHECK(spa == inet_addr("10.1.0.1"));
    CHECK(tpa == inet_addr("10.1.0.2"));
    // The reply releases the last three datagrams (the oldest two were
    // dropped), addressed to the peer's MAC, with good checksums.
    cap.frames.clear();
    ether_rx(frame(kOurMac, kPeerMac, ETH_P_ARP, arp(2, kPeerMac, "10.1.0.2", kOurMac, "10.1.0.1")));
    REQUIRE(cap.frames.size() == 3);
    for (int i = 0; i < 3; i++) {
      auto& f = cap.frames[i];
      REQUIRE(f.size() == 14 + 20 + 8 + 1);
      CHECK(std::memcmp(&f[0], kPeerMac, 6) == 0);
      CHECK((f[12] << 8 | f[13]) == ETH_P_IP);
      CHECK(cksum(&f[14], 20) == 0);
      CHECK(f[14 + 28] == '2' + i);
      // UDP checksum over the pseudo-header.
      std::vector<uint8_t> ph(12 + 9);
      std::memcpy(&ph[0], &f[14 + 12], 8);
      ph[9] = IPPROTO_UDP;
      ph[11] = 9;
      std::memcpy(&ph[12], &f[34], 9);
      CHECK(cksum(ph.data(), ph.size()) == 0);
    }
    // Resolved: the next one goes straight out.
    cap.frames.clear();
    REQUIRE(rump_sys_sendto(s, "x", 1, 0, sa4(peer), sizeof peer) == 1);
    REQUIRE(cap.frames.size() == 1);
    CHECK(std::memcmp(&cap.frames[0][0], kPeerMac, 6) == 0);
    // Someone asks for 10.1.0.1: we answer, to them.
    cap.frames.clear();
    const uint8_t zero[6] = {};
    ether_rx(frame(kBroadcastMacForTest, kThirdMac, ETH_P_ARP, arp(1, kThirdMac, "10.1.0.3", zero, "10.1.0.1")));
    REQUIRE(cap.frames.size() == 1);
    auto& rep = cap.frames[0];
    CHECK(std::memcmp(&rep[0], kThirdMac, 6) == 0);
    CHECK(rep[21] == 2);
    CHECK(std::memcmp(&rep[22], kOurMac, 6) == 0);
    CHECK(std::memcmp(&rep[32], kThirdMac, 6) == 0);
    // An IPv4 datagram from the peer reaches the socket; one for another
    // MAC does not; a runt is counted.
    std::vector<uint8_t> ipp = ip_packet(IPPROTO_UDP, std::vector<uint8_t>(8 + 2));
    {
      uint32_t a = inet_addr("10.1.0.2"), b = inet_addr("10.1.0.1");
      std::memcpy(&ipp[12], &a, 4);
      std::memcpy(&ipp[16], &b, 4);
      refix_ip_cksum(ipp);
      udphdr uh{};
      uh.source = htons(7777);
      uh.dest = htons(port);
      uh.len = htons(10);
      uh.check = 0;  // none (IPv4 allows it)
      std::memcpy(&ipp[20], &uh, 8);
      ipp[28] = 'o';
      ipp[29] = 'k';
    }
    ether_rx(frame(kOurMac, kPeerMac, ETH_P_IP, ipp));
    ether_rx(frame(kThirdMac, kPeerMac, ETH_P_IP, ipp));
    ether_rx(std::vector<uint8_t>(10, 0));
    char buf[8];
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    CHECK(rump_sys_recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, sa4(from), &fl) == 2);
    CHECK(from.sin_addr.s_addr == inet_addr("10.1.0.2"));
    CHECK(rump_sys_recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) == -1);
    rump_sys_close(r);
    rump_sys_close(s);
    CHECK(rump_pub_netconfig_ifdestroy("eth0") == 0);
    CHECK(rump_pub_netconfig_ifup("eth0") == ENXIO);
  });
}

TEST_CASE("inet: ICMP fragmentation needed lowers the path MTU; errors are rate-limited", "[inet][icmp]") {
  in_rump(make_env(), [] {
    uint16_t port;
    int r = bound_udp(&port);
    int big = 1 << 20;
    REQUIRE(rump_sys_setsockopt(r, SOL_SOCKET, SO_RCVBUF, &big, sizeof big) == 0);
    int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to = in4("127.0.0.1", port);
    std::vector<char> data(1000, 'p');
    auto b = stats("net.inet.ip.stats");
    REQUIRE(rump_sys_sendto(s, data.data(), data.size(), 0, sa4(to), sizeof to) == 1000);
    CHECK(stats("net.inet.ip.stats")["FragCreates"] == b["FragCreates"]);  // lo's MTU is 65536
    // "Fragmentation needed, next-hop MTU 600" about a datagram to 127.0.0.1.
    std::vector<uint8_t> quoted = ip_packet(IPPROTO_UDP, udp_payload(port_of(s), port, std::string(1000, 'p')));
    std::vector<uint8_t> icmp = {ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 0, 0, 0, 0, 600 >> 8, 600 & 0xff};
    icmp.insert(icmp.end(), quoted.begin(), quoted.begin() + 28);
    uint16_t c = cksum(icmp.data(), icmp.size());
    std::memcpy(&icmp[2], &c, 2);
    inject(ip_packet(IPPROTO_ICMP, icmp));
    REQUIRE(rump_sys_sendto(s, data.data(), data.size(), 0, sa4(to), sizeof to) == 1000);
    auto a = stats("net.inet.ip.stats");
    CHECK(a["FragCreates"] - b["FragCreates"] == 2);  // 1008 bytes in pieces of 576
    char buf[2000];
    CHECK(rump_sys_recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) == 1000);
    CHECK(rump_sys_recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) == 1000);
    // A burst of datagrams to a closed port: 50 answers at once, then 1000
    // a second (the burst takes far less than the second it would need to
    // refill that much).
    uint16_t dead;
    int d = bound_udp(&dead);
    rump_sys_close(d);
    sockaddr_in dto = in4("127.0.0.1", dead);
    auto ib = stats("net.inet.icmp.stats");
    for (int i = 0; i < 1000; i++) REQUIRE(rump_sys_sendto(s, "x", 1, 0, sa4(dto), sizeof dto) == 1);
    auto ia = stats("net.inet.icmp.stats");
    CHECK(ia["OutRateLimited"] - ib["OutRateLimited"] > 0);
    CHECK(ia["OutDestUnreachs"] - ib["OutDestUnreachs"] + ia["OutRateLimited"] - ib["OutRateLimited"] == 1000);
    rump_sys_close(r);
    rump_sys_close(s);
  });
}

TEST_CASE("inet: an SO_REUSEPORT group shares the datagrams of different peers, each peer sticking to one member",
          "[inet]") {
  in_rump(make_env(), [] {
    int on = 1;
    int a = rump_sys_socket(AF_INET, SOCK_DGRAM, 0), b = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(rump_sys_setsockopt(a, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0);
    REQUIRE(rump_sys_setsockopt(b, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0);
    sockaddr_in lo = in4("127.0.0.1", 0);
    REQUIRE(rump_sys_bind(a, sa4(lo), sizeof lo) == 0);
    sockaddr_in same = in4("127.0.0.1", port_of(a));
    REQUIRE(rump_sys_bind(b, sa4(same), sizeof same) == 0);
    int got_a = 0, got_b = 0;
    for (int peer = 0; peer < 32; peer++) {
      int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
      // Three datagrams from each peer: all three reach the same member.
      for (int i = 0; i < 3; i++) REQUIRE(rump_sys_sendto(s, "r", 1, 0, sa4(same), sizeof same) == 1);
      char c;
      int na = 0, nb = 0;
      while (rump_sys_recvfrom(a, &c, 1, MSG_DONTWAIT, nullptr, nullptr) == 1) na++;
      while (rump_sys_recvfrom(b, &c, 1, MSG_DONTWAIT, nullptr, nullptr) == 1) nb++;
      CHECK(na + nb == 3);
      CHECK((na == 0 || nb == 0));
      got_a += na;
      got_b += nb;
      rump_sys_close(s);
    }
    // 32 peers all hashed to one member would be a broken hash.
    CHECK(got_a > 0);
    CHECK(got_b > 0);
    rump_sys_close(a);
    rump_sys_close(b);
  });
}

namespace {

// A kernel booted here (not the shared test environment), current for
// the calling thread until the returned one halts it.
struct OwnKernel {
  rump_kernel* k = nullptr;
  explicit OwnKernel(size_t memlimit = 0) {
    rump_boot_config c;
    rump_boot_config_init(&c);
    c.memlimit = memlimit;
    if (rump_kernel_boot(&c, &k) != 0) k = nullptr;
    if (k) rump_kernel_set_current(k);
  }
  ~OwnKernel() {
    if (k) CHECK(rump_kernel_halt(k) == 0);
  }
};

}  // namespace

TEST_CASE("inet: the stack's state is made on first use, not at boot", "[inet]") {
  OwnKernel a;
  REQUIRE(a.k);
  size_t idle = rump_kernel_memory_in_use(a.k);
  int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(s >= 0);
  // The first inet socket pays for the stack: at least the state itself.
  CHECK(rump_kernel_memory_in_use(a.k) - idle >= sizeof(rump::InetState));
  // lo came up with it.
  sockaddr_in to = in4("127.0.0.1", 9);
  CHECK(rump_sys_connect(s, sa4(to), sizeof to) == 0);
  CHECK(rump_sys_close(s) == 0);

  // A sysctl write before any socket makes the state, and the sockets
  // made later see the same one.
  OwnKernel b;
  REQUIRE(b.k);
  int ttl = 99;
  REQUIRE(rump_sys_sysctlbyname("net.ipv4.ip_default_ttl", nullptr, nullptr, &ttl, sizeof ttl) == 0);
  int u = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
  REQUIRE(u >= 0);
  int got = 0;
  size_t len = sizeof got;
  REQUIRE(rump_sys_sysctlbyname("net.ipv4.ip_default_ttl", &got, &len, nullptr, 0) == 0);
  CHECK(got == 99);
  CHECK(rump_sys_close(u) == 0);
}

TEST_CASE("inet: net.ipv4.tcp_invalid_ratelimit is Linux's 500 ms by default and takes any value", "[inet]") {
  rump_test::KernelUp up;
  int v = 0;
  size_t len = sizeof v;
  REQUIRE(rump_sys_sysctlbyname("net.ipv4.tcp_invalid_ratelimit", &v, &len, nullptr, 0) == 0);
  CHECK(v == 500);
  // As the host's /proc/sys file says it (Linux's default), through ours.
  int fd = rump_sys_open("/proc/sys/net/ipv4/tcp_invalid_ratelimit", O_RDONLY, 0);
  REQUIRE(fd >= 0);
  char b[16] = {};
  CHECK(rump_sys_read(fd, b, sizeof b - 1) == 4);
  CHECK(std::string(b) == "500\n");
  rump_sys_close(fd);
  for (int w : {0, 1000, -5}) {
    REQUIRE(rump_sys_sysctlbyname("net.ipv4.tcp_invalid_ratelimit", nullptr, nullptr, &w, sizeof w) == 0);
    len = sizeof v;
    REQUIRE(rump_sys_sysctlbyname("net.ipv4.tcp_invalid_ratelimit", &v, &len, nullptr, 0) == 0);
    CHECK(v == w);
  }
}

TEST_CASE("inet: no memory for the stack's state is ENOMEM, and the kernel halts clean", "[inet]") {
  size_t idle;
  {
    OwnKernel a;
    REQUIRE(a.k);
    idle = rump_kernel_memory_in_use(a.k);
  }
  int enomem = 0;
  bool made = false;
  for (size_t limit = idle + 256; !made && limit < idle + 256 * 1024; limit += 256) {
    OwnKernel k(limit);
    if (!k.k) continue;  // too little to boot
    (void)rump_sys_getpid();  // the thread's implicit LWP is made by its first call, and kept
    // A failed attempt leaves nothing behind but, when only the socket
    // did not fit, the state it made: a second attempt fails the same way
    // and allocates nothing that stays.
    size_t after_first = 0;
    for (int i = 0; i < 2; i++) {
      int s = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
      if (s >= 0) {
        made = true;
        CHECK(rump_sys_close(s) == 0);
        break;
      }
      REQUIRE(errno == ENOMEM);
      if (i == 0) after_first = rump_kernel_memory_in_use(k.k);
      else CHECK(rump_kernel_memory_in_use(k.k) == after_first);
      enomem++;
    }
  }
  CHECK(made);
  // The state cannot fit in the first limits tried.
  CHECK(enomem > 0);
}
