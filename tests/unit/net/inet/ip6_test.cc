// IPv6 beyond lo's basics: neighbour discovery on an Ethernet interface
// (frames checked field by field against RFC 4861, and two kernels joined
// by an in-memory wire), fragmentation and reassembly with RFC 5722's
// overlap rule, path MTU from packet too big, ICMPv6 raw sockets with
// ICMP6_FILTER and ICMPv6 ping sockets.
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip6.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <rump/rump.h>
#include <rump/rumpnet.h>
#include <rump/sim.h>

#include <functional>

#include "kern/curlwp.h"
#include "kern/kernel.h"
#include "net/inet/if.h"
#include "net/inet/if_ether.h"
#include "net_diff.h"
#include "netlink/nl_scenario.h"

using namespace net_test;

#include "net_stats.h"
#include "sockaddr6.h"

namespace {

using Bytes = std::vector<uint8_t>;

Bytes addr6(const char* a) {
  Bytes b(16);
  inet_pton(AF_INET6, a, b.data());
  return b;
}

std::map<std::string, uint64_t> counters(const char* node) { return net_stats(node); }

// The Internet checksum of an ICMPv6 message under its pseudo-header
// (zero when the message's own checksum is right).
uint16_t icmp6_sum(const uint8_t* src, const uint8_t* dst, const uint8_t* m, size_t n) {
  Bytes b(40 + n);
  std::memcpy(&b[0], src, 16);
  std::memcpy(&b[16], dst, 16);
  b[34] = static_cast<uint8_t>(n >> 8);
  b[35] = static_cast<uint8_t>(n);
  b[39] = IPPROTO_ICMPV6;
  std::memcpy(&b[40], m, n);
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < b.size(); i += 2) s += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  if (b.size() & 1) s += static_cast<uint32_t>(b.back() << 8);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

// An IPv6 packet (hop limit hlim) with a payload; an ICMPv6 payload gets
// its checksum.
Bytes ip6(const char* src, const char* dst, uint8_t nxt, Bytes payload, uint8_t hlim = 64) {
  Bytes s = addr6(src), d = addr6(dst);
  if (nxt == IPPROTO_ICMPV6 && payload.size() >= 4) {
    payload[2] = payload[3] = 0;
    uint16_t c = icmp6_sum(s.data(), d.data(), payload.data(), payload.size());
    payload[2] = static_cast<uint8_t>(c >> 8);
    payload[3] = static_cast<uint8_t>(c);
  }
  Bytes v(40);
  v[0] = 0x60;
  v[4] = static_cast<uint8_t>(payload.size() >> 8);
  v[5] = static_cast<uint8_t>(payload.size());
  v[6] = nxt;
  v[7] = hlim;
  std::memcpy(&v[8], s.data(), 16);
  std::memcpy(&v[24], d.data(), 16);
  v.insert(v.end(), payload.begin(), payload.end());
  return v;
}

// A fragment header and its piece of the fragmentable part.
Bytes fragment(uint8_t nxt, uint32_t off, bool more, uint32_t id, const Bytes& piece) {
  Bytes f = {nxt, 0, static_cast<uint8_t>(off >> 8), static_cast<uint8_t>((off & 0xf8) | (more ? 1 : 0)),
             static_cast<uint8_t>(id >> 24), static_cast<uint8_t>(id >> 16), static_cast<uint8_t>(id >> 8),
             static_cast<uint8_t>(id)};
  f.insert(f.end(), piece.begin(), piece.end());
  return f;
}

Bytes udp(uint16_t sport, uint16_t dport, const std::string& data) {
  Bytes u = {static_cast<uint8_t>(sport >> 8), static_cast<uint8_t>(sport), static_cast<uint8_t>(dport >> 8),
             static_cast<uint8_t>(dport), static_cast<uint8_t>((8 + data.size()) >> 8),
             static_cast<uint8_t>(8 + data.size()), 0, 0};
  u.insert(u.end(), data.begin(), data.end());
  return u;
}

// Runs fn inside the current kernel with its inet state.
template <class Fn>
void in_kernel(Fn fn) {
  rump::Kernel* k = rump::current_kernel();
  REQUIRE(k != nullptr);
  rump::Lwp* l = rump::enter(*k);
  REQUIRE(l != nullptr);
  rump::InetState* st = rump::inet_state_or_null(*k);
  REQUIRE(st != nullptr);
  fn(*st);
  rump::leave(*k, l);
}

// Hands bytes to an interface of the current kernel: an Ethernet frame
// to ether_input, or an IPv6 packet to lo's input.
void rx(const char* ifname, const Bytes& bytes) {
  in_kernel([&](rump::InetState& st) {
    rump::RefPtr<rump::Ifnet> ifp = st.find_if(ifname);
    REQUIRE(ifp);
    rump::Pkt* p = rump::Pkt::alloc(st.pool, 0).value();
    REQUIRE(p->append(bytes.data(), bytes.size()).ok());
    if (ifp->type == ARPHRD_ETHER) rump::ether_input(*ifp, p);
    else rump::if_input(*ifp, p, ETH_P_IPV6);
  });
}

// The frames an interface sent (the callout thread sends too).
struct Frames {
  std::mutex mu;
  std::deque<Bytes> q;
  Bytes pop() {
    std::lock_guard<std::mutex> g(mu);
    if (q.empty()) return {};
    Bytes f = std::move(q.front());
    q.pop_front();
    return f;
  }
  size_t size() {
    std::lock_guard<std::mutex> g(mu);
    return q.size();
  }
  void clear() {
    std::lock_guard<std::mutex> g(mu);
    q.clear();
  }
};
void keep_frame(void* arg, rump::Ifnet&, rump::Pkt* p) {
  Bytes f(p->len());
  p->copy_out(0, p->len(), f.data());
  rump::Pkt::free(p);
  auto* fr = static_cast<Frames*>(arg);
  std::lock_guard<std::mutex> g(fr->mu);
  fr->q.push_back(std::move(f));
}

void attach_ether(const char* name, const uint8_t mac[6], Frames& out) {
  in_kernel([&](rump::InetState& st) {
    REQUIRE(rump::ether_attach(st, name, mac, rump::EtherLink{&keep_frame, &out}).ok());
  });
}

Bytes ether(const uint8_t dst[6], const uint8_t src[6], const Bytes& body) {
  Bytes f(dst, dst + 6);
  f.insert(f.end(), src, src + 6);
  f.push_back(ETH_P_IPV6 >> 8);
  f.push_back(ETH_P_IPV6 & 0xff);
  f.insert(f.end(), body.begin(), body.end());
  return f;
}

// A frame's parts (an IPv6 frame with an ICMPv6 message is checked for a
// hop limit of 255 and a good checksum by the caller).
struct Nd {
  Bytes dmac, smac, src, dst, msg;
  int hlim = 0;
  bool ok = false;
};
Nd parse_nd(const Bytes& f) {
  Nd n;
  if (f.size() < 14 + 40 + 8 || (f[12] << 8 | f[13]) != ETH_P_IPV6 || f[14 + 6] != IPPROTO_ICMPV6) return n;
  n.dmac.assign(f.begin(), f.begin() + 6);
  n.smac.assign(f.begin() + 6, f.begin() + 12);
  n.hlim = f[14 + 7];
  n.src.assign(f.begin() + 22, f.begin() + 38);
  n.dst.assign(f.begin() + 38, f.begin() + 54);
  n.msg.assign(f.begin() + 54, f.end());
  n.ok = icmp6_sum(n.src.data(), n.dst.data(), n.msg.data(), n.msg.size()) == 0;
  return n;
}

const uint8_t kMacA[6] = {0x02, 0, 0, 0, 0, 0x0a};
const uint8_t kMacB[6] = {0x02, 0, 0, 0, 0, 0x0b};
const uint8_t kMacC[6] = {0x02, 0, 0, 0, 0, 0x0c};

Bytes mac(const uint8_t m[6]) { return Bytes(m, m + 6); }

// A neighbour advertisement for target with flags (0x40 solicited, 0x20
// override) and a target link-layer option.
Bytes na(const char* target, uint8_t flags, const uint8_t* tll) {
  Bytes m = {ND_NEIGHBOR_ADVERT, 0, 0, 0, flags, 0, 0, 0};
  Bytes t = addr6(target);
  m.insert(m.end(), t.begin(), t.end());
  if (tll) {
    m.push_back(2);
    m.push_back(1);
    m.insert(m.end(), tll, tll + 6);
  }
  return m;
}
Bytes ns(const char* target, const uint8_t* sll) {
  Bytes m = {ND_NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0};
  Bytes t = addr6(target);
  m.insert(m.end(), t.begin(), t.end());
  if (sll) {
    m.push_back(1);
    m.push_back(1);
    m.insert(m.end(), sll, sll + 6);
  }
  return m;
}

// A kernel booted here, current while the test runs in it.
struct OwnKernel {
  rump_kernel* k = nullptr;
  OwnKernel() {
    rump_boot_config c;
    rump_boot_config_init(&c);
    if (rump_kernel_boot(&c, &k) != 0) k = nullptr;
  }
  ~OwnKernel() {
    if (k) {
      rump_kernel_set_current(k);
      CHECK(rump_kernel_halt(k) == 0);
      rump_kernel_set_current(nullptr);
    }
  }
  void use() const { rump_kernel_set_current(k); }
};

}  // namespace

TEST_CASE("ipv6 nd: DAD on up, solicitation to the solicited-node group, advertisement releases held packets",
          "[inet][ipv6][nd]") {
  in_rump(make_env(), [] {
    Frames out;
    attach_ether("eth0", kMacA, out);
    REQUIRE(rump_pub_netconfig_ipv6_ifaddr("eth0", "2001:db8::1", 64) == 0);
    CHECK(out.size() == 0);  // down: no DAD yet
    auto icmp_before = counters("net.inet6.icmp6.stats");
    REQUIRE(rump_pub_netconfig_ifup("eth0") == 0);
    // DAD: a solicitation for our address from ::, to ff02::1:ff00:1 at
    // 33:33:ff:00:00:01, hop limit 255, no source option; then the same
    // for the link-local address made from the MAC (modified EUI-64:
    // 02:00:00:00:00:0a gives fe80::ff:fe00:a), then a router
    // solicitation from :: to all routers, without a source option.
    REQUIRE(out.size() == 3);
    Nd d = parse_nd(out.pop());
    CHECK(d.ok);
    CHECK(d.hlim == 255);
    CHECK(d.dmac == Bytes({0x33, 0x33, 0xff, 0, 0, 1}));
    CHECK(d.smac == mac(kMacA));
    CHECK(d.src == addr6("::"));
    CHECK(d.dst == addr6("ff02::1:ff00:1"));
    REQUIRE(d.msg.size() == 24);
    CHECK(d.msg[0] == ND_NEIGHBOR_SOLICIT);
    CHECK(Bytes(d.msg.begin() + 8, d.msg.begin() + 24) == addr6("2001:db8::1"));
    Nd ll = parse_nd(out.pop());
    CHECK(ll.ok);
    CHECK(ll.dmac == Bytes({0x33, 0x33, 0xff, 0, 0, 0x0a}));
    CHECK(ll.src == addr6("::"));
    CHECK(ll.dst == addr6("ff02::1:ff00:a"));
    REQUIRE(ll.msg.size() == 24);
    CHECK(ll.msg[0] == ND_NEIGHBOR_SOLICIT);
    CHECK(Bytes(ll.msg.begin() + 8, ll.msg.begin() + 24) == addr6("fe80::ff:fe00:a"));
    Nd rs = parse_nd(out.pop());
    CHECK(rs.ok);
    CHECK(rs.hlim == 255);
    CHECK(rs.dmac == Bytes({0x33, 0x33, 0, 0, 0, 2}));
    CHECK(rs.src == addr6("::"));
    CHECK(rs.dst == addr6("ff02::2"));
    REQUIRE(rs.msg.size() == 8);
    CHECK(rs.msg[0] == ND_ROUTER_SOLICIT);
    CHECK(counters("net.inet6.icmp6.stats")["OutRouterSolicits"] - icmp_before["OutRouterSolicits"] == 1);

    int r = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 me = in6("2001:db8::1", 7000);
    REQUIRE(rump_sys_bind(r, sa6(me), sizeof me) == 0);
    int s = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 peer = in6("2001:db8::2", 9999);
    for (int i = 0; i < 5; i++) {
      char m = static_cast<char>('0' + i);
      REQUIRE(rump_sys_sendto(s, &m, 1, 0, sa6(peer), sizeof peer) == 1);
    }
    // One solicitation, from our address, with our MAC in a source
    // link-layer option.
    REQUIRE(out.size() == 1);
    Nd q = parse_nd(out.pop());
    CHECK(q.ok);
    CHECK(q.hlim == 255);
    CHECK(q.dmac == Bytes({0x33, 0x33, 0xff, 0, 0, 2}));
    CHECK(q.src == addr6("2001:db8::1"));
    CHECK(q.dst == addr6("ff02::1:ff00:2"));
    REQUIRE(q.msg.size() == 32);
    CHECK(q.msg[0] == ND_NEIGHBOR_SOLICIT);
    CHECK(Bytes(q.msg.begin() + 8, q.msg.begin() + 24) == addr6("2001:db8::2"));
    CHECK(q.msg[24] == 1);
    CHECK(q.msg[25] == 1);
    CHECK(Bytes(q.msg.begin() + 26, q.msg.end()) == mac(kMacA));

    // An advertisement forwarded by a router (hop limit 64) is ignored.
    auto before = counters("net.inet6.icmp6.stats");
    rx("eth0", ether(kMacA, kMacB, ip6("2001:db8::2", "2001:db8::1", IPPROTO_ICMPV6, na("2001:db8::2", 0x60, kMacB),
                                       64)));
    CHECK(out.size() == 0);
    CHECK(counters("net.inet6.icmp6.stats")["InErrors"] - before["InErrors"] == 1);
    // The real one releases the last three datagrams to the peer's MAC.
    rx("eth0", ether(kMacA, kMacB, ip6("2001:db8::2", "2001:db8::1", IPPROTO_ICMPV6, na("2001:db8::2", 0x60, kMacB),
                                       255)));
    REQUIRE(out.size() == 3);
    for (int i = 0; i < 3; i++) {
      Bytes f = out.pop();
      REQUIRE(f.size() == 14 + 40 + 8 + 1);
      CHECK(Bytes(f.begin(), f.begin() + 6) == mac(kMacB));
      CHECK(f[14 + 6] == IPPROTO_UDP);
      CHECK(f.back() == '2' + i);
    }
    // Reachable now: the next datagram goes straight out.
    REQUIRE(rump_sys_sendto(s, "x", 1, 0, sa6(peer), sizeof peer) == 1);
    REQUIRE(out.size() == 1);
    CHECK(Bytes(out.q.front().begin(), out.q.front().begin() + 6) == mac(kMacB));
    out.clear();

    // A third node asks for us: a solicited, override advertisement back
    // to its MAC, with ours as the target option.
    rx("eth0", ether(Bytes({0x33, 0x33, 0xff, 0, 0, 1}).data(), kMacC,
                     ip6("2001:db8::3", "ff02::1:ff00:1", IPPROTO_ICMPV6, ns("2001:db8::1", kMacC), 255)));
    REQUIRE(out.size() == 1);
    Nd a = parse_nd(out.pop());
    CHECK(a.ok);
    CHECK(a.hlim == 255);
    CHECK(a.dmac == mac(kMacC));
    CHECK(a.src == addr6("2001:db8::1"));
    CHECK(a.dst == addr6("2001:db8::3"));
    REQUIRE(a.msg.size() == 32);
    CHECK(a.msg[0] == ND_NEIGHBOR_ADVERT);
    CHECK(a.msg[4] == 0x60);  // solicited, override, not a router
    CHECK(Bytes(a.msg.begin() + 8, a.msg.begin() + 24) == addr6("2001:db8::1"));
    CHECK(a.msg[24] == 2);
    CHECK(Bytes(a.msg.begin() + 26, a.msg.end()) == mac(kMacA));
    // A solicitation for an address that is not ours, one with a
    // multicast target, and one with a zero-length option: no answer.
    before = counters("net.inet6.icmp6.stats");
    rx("eth0", ether(Bytes({0x33, 0x33, 0xff, 0, 0, 7}).data(), kMacC,
                     ip6("2001:db8::3", "ff02::1:ff00:7", IPPROTO_ICMPV6, ns("2001:db8::7", kMacC), 255)));
    rx("eth0", ether(kMacA, kMacC, ip6("2001:db8::3", "2001:db8::1", IPPROTO_ICMPV6, ns("ff02::1", kMacC), 255)));
    Bytes bad = ns("2001:db8::1", kMacC);
    bad[25] = 0;
    rx("eth0", ether(kMacA, kMacC, ip6("2001:db8::3", "2001:db8::1", IPPROTO_ICMPV6, bad, 255)));
    CHECK(out.size() == 0);
    CHECK(counters("net.inet6.icmp6.stats")["InErrors"] - before["InErrors"] == 2);
    rump_sys_close(r);
    rump_sys_close(s);
    CHECK(rump_pub_netconfig_ifdestroy("eth0") == 0);
  });
}

// A router advertisement (RFC 4861 4.2) with a router lifetime in
// seconds, then options.
Bytes ra(uint16_t lifetime, std::initializer_list<Bytes> options) {
  Bytes m = {ND_ROUTER_ADVERT, 0, 0, 0, 64, 0, static_cast<uint8_t>(lifetime >> 8), static_cast<uint8_t>(lifetime),
             0, 0, 0, 0, 0, 0, 0, 0};
  for (const Bytes& o : options) m.insert(m.end(), o.begin(), o.end());
  return m;
}
Bytes be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
          static_cast<uint8_t>(v)};
}
Bytes opt_sll(const uint8_t m[6]) {
  Bytes o = {1, 1};
  o.insert(o.end(), m, m + 6);
  return o;
}
Bytes opt_mtu(uint32_t mtu) {
  Bytes o = {5, 1, 0, 0};
  Bytes v = be32(mtu);
  o.insert(o.end(), v.begin(), v.end());
  return o;
}
Bytes opt_prefix(const char* prefix, uint8_t plen, uint8_t flags, uint32_t valid, uint32_t preferred) {
  Bytes o = {3, 4, plen, flags};
  for (uint32_t v : {valid, preferred}) {
    Bytes b = be32(v);
    o.insert(o.end(), b.begin(), b.end());
  }
  o.insert(o.end(), 4, 0);
  Bytes p = addr6(prefix);
  o.insert(o.end(), p.begin(), p.end());
  return o;
}

// The IPv6 addresses of an interface, as text.
std::vector<std::string> addrs6(const char* ifname) {
  std::vector<std::string> out;
  in_kernel([&](rump::InetState& st) {
    rump::RefPtr<rump::Ifnet> ifp = st.find_if(ifname);
    REQUIRE(ifp);
    rump::SharedLocker g(st.if_lock_);
    for (int i = 0; i < ifp->naddr6; i++) {
      char b[64];
      inet_ntop(AF_INET6, ifp->addr6[i].addr.b, b, sizeof b);
      out.push_back(std::string(b) + "/" + std::to_string(ifp->addr6[i].plen));
    }
  });
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

TEST_CASE("ipv6 nd: a router advertisement gives a SLAAC address, a default route and the IPv6 MTU",
          "[inet][ipv6][nd]") {
  in_rump(make_env(), [] {
    Frames out;
    attach_ether("eth0", kMacA, out);
    REQUIRE(rump_pub_netconfig_ifup("eth0") == 0);
    out.clear();
    const uint8_t all_nodes[6] = {0x33, 0x33, 0, 0, 0, 1};
    auto before = counters("net.inet6.icmp6.stats");
    Bytes good = ra(1800, {opt_sll(kMacC), opt_mtu(1280), opt_prefix("2001:db8:77::", 64, 0xc0, 86400, 14400),
                           opt_prefix("2001:db8:88::", 48, 0x40, 86400, 14400),
                           opt_prefix("fe80::", 64, 0x40, 86400, 14400),
                           opt_prefix("2001:db8:66::", 64, 0x40, 100, 200)});
    // Not from a router on the link: forwarded (hop limit 64), from a
    // global source, or with an option of length zero.
    rx("eth0", ether(all_nodes, kMacC, ip6("fe80::1", "ff02::1", IPPROTO_ICMPV6, good, 64)));
    rx("eth0", ether(all_nodes, kMacC, ip6("2001:db8::9", "ff02::1", IPPROTO_ICMPV6, good, 255)));
    Bytes bad = good;
    bad[17] = 0;
    rx("eth0", ether(all_nodes, kMacC, ip6("fe80::1", "ff02::1", IPPROTO_ICMPV6, bad, 255)));
    auto after = counters("net.inet6.icmp6.stats");
    CHECK(after["InRouterAdvertisements"] - before["InRouterAdvertisements"] == 3);
    CHECK(after["InErrors"] - before["InErrors"] == 3);
    int s = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 far = in6("2001:db8:99::1", 9);
    CHECK(rump_sys_sendto(s, "x", 1, 0, sa6(far), sizeof far) == -1);
    CHECK(errno == ENETUNREACH);
    CHECK(out.size() == 0);

    rx("eth0", ether(all_nodes, kMacC, ip6("fe80::1", "ff02::1", IPPROTO_ICMPV6, good, 255)));
    // The /64 with the autonomous flag gave an address from the MAC
    // (02:00:00:00:00:0a: ::ff:fe00:a), with duplicate detection; the
    // /48, the link-local prefix and the one whose preferred lifetime
    // exceeds its valid one gave none.
    std::vector<std::string> a = addrs6("eth0");
    CHECK(has(a, "2001:db8:77::ff:fe00:a/64"));
    CHECK(a.size() == 2);  // and the link-local one
    REQUIRE(out.size() == 1);
    Nd dad = parse_nd(out.pop());
    CHECK(dad.src == addr6("::"));
    CHECK(Bytes(dad.msg.begin() + 8, dad.msg.begin() + 24) == addr6("2001:db8:77::ff:fe00:a"));
    // The default route goes through the router, whose MAC the source
    // option put in the neighbour cache: a datagram goes straight to it,
    // from the new address.
    REQUIRE(rump_sys_sendto(s, "x", 1, 0, sa6(far), sizeof far) == 1);
    REQUIRE(out.size() == 1);
    Bytes f = out.pop();
    CHECK(Bytes(f.begin(), f.begin() + 6) == mac(kMacC));
    CHECK(Bytes(f.begin() + 22, f.begin() + 38) == addr6("2001:db8:77::ff:fe00:a"));
    CHECK(Bytes(f.begin() + 38, f.begin() + 54) == addr6("2001:db8:99::1"));
    // The MTU option: 1400 bytes go in fragments of at most 1280.
    std::string big(1400, 'b');
    REQUIRE(rump_sys_sendto(s, big.data(), big.size(), 0, sa6(far), sizeof far) == 1400);
    REQUIRE(out.size() == 2);
    for (int i = 0; i < 2; i++) {
      Bytes g = out.pop();
      CHECK(g.size() <= 14 + 1280);
      CHECK(g[14 + 6] == IPPROTO_FRAGMENT);
    }
    // The same advertisement again changes nothing.
    rx("eth0", ether(all_nodes, kMacC, ip6("fe80::1", "ff02::1", IPPROTO_ICMPV6, good, 255)));
    CHECK(addrs6("eth0").size() == 2);
    CHECK(out.size() == 0);
    // A router lifetime of zero: no longer a default router.
    rx("eth0", ether(all_nodes, kMacC, ip6("fe80::1", "ff02::1", IPPROTO_ICMPV6, ra(0, {}), 255)));
    CHECK(rump_sys_sendto(s, "x", 1, 0, sa6(far), sizeof far) == -1);
    CHECK(errno == ENETUNREACH);
    // The on-link prefix stays reachable without a router.
    sockaddr_in6 near = in6("2001:db8:77::5", 9);
    CHECK(rump_sys_sendto(s, "x", 1, 0, sa6(near), sizeof near) == 1);
    rump_sys_close(s);
    CHECK(rump_pub_netconfig_ifdestroy("eth0") == 0);
  });
}

int ifindex(const char* name) {
  int s = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
  ifreq ifr{};
  std::strcpy(ifr.ifr_name, name);
  int r = rump_sys_ioctl(s, SIOCGIFINDEX, &ifr);
  rump_sys_close(s);
  return r == 0 ? ifr.ifr_ifindex : -1;
}

// Takes every frame an interface sent and counts the neighbour
// solicitations for target among them (retransmissions included), with
// the IPv6 source of the last.
int ns_for(Frames& f, const char* target, Bytes* src = nullptr) {
  int n = 0;
  for (Bytes b = f.pop(); !b.empty(); b = f.pop()) {
    Nd d = parse_nd(b);
    if (!d.ok || d.msg.size() < 24 || d.msg[0] != ND_NEIGHBOR_SOLICIT) continue;
    if (Bytes(d.msg.begin() + 8, d.msg.begin() + 24) != addr6(target)) continue;
    n++;
    if (src) *src = d.src;
  }
  return n;
}

TEST_CASE("ipv6: a link-local destination takes its interface from the scope id, else the bound one, else the route's",
          "[inet][ipv6]") {
  in_rump(make_env(), [] {
    Frames out0, out1;
    attach_ether("eth0", kMacA, out0);
    attach_ether("eth1", kMacB, out1);
    REQUIRE(rump_pub_netconfig_ifup("eth0") == 0);
    REQUIRE(rump_pub_netconfig_ifup("eth1") == 0);
    out0.clear();
    out1.clear();
    int i0 = ifindex("eth0"), i1 = ifindex("eth1");
    REQUIRE(i0 > 0);
    REQUIRE(i1 > 0);
    int s = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 peer = in6("fe80::99", 9);
    // Two interfaces with link-local addresses: sendto takes the route's
    // (the first interface's, as Linux's first fe80::/64 route).
    CHECK(rump_sys_sendto(s, "x", 1, 0, sa6(peer), sizeof peer) == 1);
    CHECK(ns_for(out0, "fe80::99") >= 1);
    CHECK(ns_for(out1, "fe80::99") == 0);
    peer.sin6_scope_id = 999;
    CHECK(rump_sys_sendto(s, "x", 1, 0, sa6(peer), sizeof peer) == -1);
    CHECK(errno == ENETUNREACH);
    // Through eth1: resolved there, from eth1's link-local address.
    peer.sin6_scope_id = static_cast<uint32_t>(i1);
    REQUIRE(rump_sys_sendto(s, "x", 1, 0, sa6(peer), sizeof peer) == 1);
    Bytes src;
    CHECK(ns_for(out0, "fe80::99") == 0);
    CHECK(ns_for(out1, "fe80::99", &src) >= 1);
    CHECK(src == addr6("fe80::ff:fe00:b"));
    // A raw ICMPv6 socket the same way, through eth0.
    int r = rump_sys_socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
    REQUIRE(r >= 0);
    uint8_t echo[8] = {ICMP6_ECHO_REQUEST, 0, 0, 0, 0, 1, 0, 1};
    sockaddr_in6 rp = in6("fe80::98", 0);
    CHECK(rump_sys_connect(r, sa6(rp), sizeof rp) == -1);
    CHECK(errno == EINVAL);
    rp.sin6_scope_id = static_cast<uint32_t>(i0);
    REQUIRE(rump_sys_sendto(r, echo, sizeof echo, 0, sa6(rp), sizeof rp) == sizeof echo);
    CHECK(ns_for(out0, "fe80::98", &src) >= 1);
    CHECK(src == addr6("fe80::ff:fe00:a"));
    CHECK(ns_for(out1, "fe80::98") == 0);
    rump_sys_close(r);
    // connect with a scope id ties the socket to the interface.
    int c = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 cp = in6("fe80::97", 9);
    CHECK(rump_sys_connect(c, sa6(cp), sizeof cp) == -1);
    CHECK(errno == EINVAL);
    cp.sin6_scope_id = static_cast<uint32_t>(i0);
    REQUIRE(rump_sys_connect(c, sa6(cp), sizeof cp) == 0);
    sockaddr_in6 me{};
    socklen_t ml = sizeof me;
    REQUIRE(rump_sys_getsockname(c, sa6(me), &ml) == 0);
    CHECK(Bytes(me.sin6_addr.s6_addr, me.sin6_addr.s6_addr + 16) == addr6("fe80::ff:fe00:a"));
    REQUIRE(rump_sys_send(c, "y", 1, 0) == 1);
    CHECK(ns_for(out0, "fe80::97") >= 1);
    CHECK(ns_for(out1, "fe80::97") == 0);
    rump_sys_close(c);
    // bind: the scope id's interface must hold the address.
    int b = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 ll1 = in6("fe80::ff:fe00:b", 0);
    CHECK(rump_sys_bind(b, sa6(ll1), sizeof ll1) == -1);
    CHECK(errno == EINVAL);
    ll1.sin6_scope_id = static_cast<uint32_t>(i0);
    CHECK(rump_sys_bind(b, sa6(ll1), sizeof ll1) == -1);
    CHECK(errno == EADDRNOTAVAIL);
    ll1.sin6_scope_id = static_cast<uint32_t>(i1);
    REQUIRE(rump_sys_bind(b, sa6(ll1), sizeof ll1) == 0);
    // Bound to eth1: an unscoped link-local destination goes there; a
    // scope id for another interface takes sendto there, and is EINVAL
    // for connect.
    sockaddr_in6 p2 = in6("fe80::96", 9);
    REQUIRE(rump_sys_sendto(b, "z", 1, 0, sa6(p2), sizeof p2) == 1);
    CHECK(ns_for(out1, "fe80::96") >= 1);
    CHECK(ns_for(out0, "fe80::96") == 0);
    p2.sin6_scope_id = static_cast<uint32_t>(i0);
    CHECK(rump_sys_sendto(b, "z", 1, 0, sa6(p2), sizeof p2) == 1);
    CHECK(ns_for(out0, "fe80::96") >= 1);
    CHECK(rump_sys_connect(b, sa6(p2), sizeof p2) == -1);
    CHECK(errno == EINVAL);
    rump_sys_close(b);
    // With one interface left, nothing is ambiguous.
    REQUIRE(rump_pub_netconfig_ifdestroy("eth1") == 0);
    sockaddr_in6 p3 = in6("fe80::95", 9);
    REQUIRE(rump_sys_sendto(s, "x", 1, 0, sa6(p3), sizeof p3) == 1);
    CHECK(ns_for(out0, "fe80::95") >= 1);
    rump_sys_close(s);
    CHECK(rump_pub_netconfig_ifdestroy("eth0") == 0);
  });
}

TEST_CASE("ipv6 nd: a neighbour claiming a tentative address makes it a duplicate, removed", "[inet][ipv6][nd]") {
  in_rump(make_env(), [] {
    Frames out;
    attach_ether("eth0", kMacA, out);
    REQUIRE(rump_pub_netconfig_ifup("eth0") == 0);
    CHECK(out.size() == 2);  // the link-local address's DAD, a router solicitation
    out.clear();
    REQUIRE(rump_pub_netconfig_ipv6_ifaddr("eth0", "2001:db8::5", 64) == 0);
    REQUIRE(rump_pub_netconfig_ipv6_ifaddr("eth0", "2001:db8::6", 64) == 0);
    CHECK(out.size() == 2);  // one DAD solicitation each
    auto before = counters("net.inet6.icmp6.stats");
    // Someone else advertises ::5; someone else runs DAD for ::6.
    rx("eth0", ether(Bytes({0x33, 0x33, 0, 0, 0, 1}).data(), kMacB,
                     ip6("2001:db8::99", "ff02::1", IPPROTO_ICMPV6, na("2001:db8::5", 0x20, kMacB), 255)));
    rx("eth0", ether(Bytes({0x33, 0x33, 0xff, 0, 0, 6}).data(), kMacB,
                     ip6("::", "ff02::1:ff00:6", IPPROTO_ICMPV6, ns("2001:db8::6", nullptr), 255)));
    CHECK(counters("net.inet6.icmp6.stats")["NdDupAddrs"] - before["NdDupAddrs"] == 2);
    int s = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 a5 = in6("2001:db8::5", 0), a6 = in6("2001:db8::6", 0);
    CHECK(rump_sys_bind(s, sa6(a5), sizeof a5) == -1);
    CHECK(errno == EADDRNOTAVAIL);
    CHECK(rump_sys_bind(s, sa6(a6), sizeof a6) == -1);
    CHECK(errno == EADDRNOTAVAIL);
    rump_sys_close(s);
    CHECK(rump_pub_netconfig_ifdestroy("eth0") == 0);
  });
}

TEST_CASE("ipv6: two kernels on one Ethernet wire: UDP in fragments, ping and an ICMPv6 raw socket with a filter",
          "[inet][ipv6][nd][frag]") {
  OwnKernel ka, kb;
  REQUIRE(ka.k);
  REQUIRE(kb.k);
  Frames from_a, from_b;
  // Moves frames across until the wire is quiet.
  auto pump = [&] {
    for (int round = 0; round < 100 && (from_a.size() || from_b.size()); round++) {
      kb.use();
      for (Bytes f = from_a.pop(); !f.empty(); f = from_a.pop()) rx("eth0", f);
      ka.use();
      for (Bytes f = from_b.pop(); !f.empty(); f = from_b.pop()) rx("eth0", f);
    }
  };
  ka.use();
  attach_ether("eth0", kMacA, from_a);
  REQUIRE(rump_pub_netconfig_ipv6_ifaddr("eth0", "2001:db8::a", 64) == 0);
  REQUIRE(rump_pub_netconfig_ifup("eth0") == 0);
  const char range[] = "0 0";
  REQUIRE(rump_sys_sysctlbyname("net.ipv4.ping_group_range", nullptr, nullptr, range, sizeof range - 1) == 0);
  kb.use();
  attach_ether("eth0", kMacB, from_b);
  REQUIRE(rump_pub_netconfig_ipv6_ifaddr("eth0", "2001:db8::b", 64) == 0);
  REQUIRE(rump_pub_netconfig_ifup("eth0") == 0);
  int rb = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 any = in6("::", 5000);
  REQUIRE(rump_sys_bind(rb, sa6(any), sizeof any) == 0);
  int raw = rump_sys_socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
  REQUIRE(raw >= 0);
  icmp6_filter filt;
  ICMP6_FILTER_SETBLOCKALL(&filt);
  ICMP6_FILTER_SETPASS(ICMP6_ECHO_REQUEST, &filt);
  REQUIRE(rump_sys_setsockopt(raw, IPPROTO_ICMPV6, ICMP6_FILTER, &filt, sizeof filt) == 0);
  icmp6_filter got{};
  socklen_t gl = sizeof got;
  REQUIRE(rump_sys_getsockopt(raw, IPPROTO_ICMPV6, ICMP6_FILTER, &got, &gl) == 0);
  CHECK(gl == sizeof got);
  CHECK(std::memcmp(&got, &filt, sizeof got) == 0);
  pump();

  // 3000 bytes of UDP: three fragments on a 1500-byte link, held while
  // the neighbour is resolved, reassembled on the other side.
  ka.use();
  std::string data(3000, 'x');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>('a' + i % 26);
  int sa = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 to_b = in6("2001:db8::b", 5000);
  auto fa = counters("net.inet6.ip6.stats");
  REQUIRE(rump_sys_sendto(sa, data.data(), data.size(), 0, sa6(to_b), sizeof to_b) == 3000);
  CHECK(counters("net.inet6.ip6.stats")["FragCreates"] - fa["FragCreates"] == 3);
  pump();
  kb.use();
  std::string buf(4000, '\0');
  sockaddr_in6 from{};
  socklen_t fl = sizeof from;
  REQUIRE(rump_sys_recvfrom(rb, buf.data(), buf.size(), MSG_DONTWAIT, sa6(from), &fl) == 3000);
  CHECK(buf.substr(0, 3000) == data);
  CHECK(std::memcmp(&from.sin6_addr, addr6("2001:db8::a").data(), 16) == 0);
  CHECK(counters("net.inet6.ip6.stats")["ReasmOKs"] >= 1);

  // An ICMPv6 ping socket: the stack sets the identifier and checksum;
  // the reply comes back to it. B's raw socket sees the request only.
  ka.use();
  int ping = rump_sys_socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
  REQUIRE(ping >= 0);
  uint8_t req[12] = {ICMP6_ECHO_REQUEST, 0, 0, 0, 0, 0, 0, 7, 'h', 'e', 'l', 'o'};
  REQUIRE(rump_sys_sendto(ping, req, sizeof req, 0, sa6(to_b), sizeof to_b) == sizeof req);
  pump();
  uint8_t rep[64];
  REQUIRE(rump_sys_recvfrom(ping, rep, sizeof rep, MSG_DONTWAIT, nullptr, nullptr) == sizeof req);
  CHECK(rep[0] == ICMP6_ECHO_REPLY);
  CHECK(rep[7] == 7);
  CHECK(std::memcmp(rep + 8, "helo", 4) == 0);
  kb.use();
  REQUIRE(rump_sys_recvfrom(raw, rep, sizeof rep, MSG_DONTWAIT, nullptr, nullptr) == sizeof req);
  CHECK(rep[0] == ICMP6_ECHO_REQUEST);  // the payload alone, no IPv6 header
  CHECK(rump_sys_recvfrom(raw, rep, sizeof rep, MSG_DONTWAIT, nullptr, nullptr) == -1);  // ND was filtered

  // A raw ICMPv6 socket sends an echo request with no checksum: the stack
  // fills it in, and A answers.
  ICMP6_FILTER_SETPASSALL(&filt);
  ICMP6_FILTER_SETBLOCK(ND_NEIGHBOR_SOLICIT, &filt);
  ICMP6_FILTER_SETBLOCK(ND_NEIGHBOR_ADVERT, &filt);
  REQUIRE(rump_sys_setsockopt(raw, IPPROTO_ICMPV6, ICMP6_FILTER, &filt, sizeof filt) == 0);
  sockaddr_in6 to_a = in6("2001:db8::a", 0);
  REQUIRE(rump_sys_sendto(raw, req, sizeof req, 0, sa6(to_a), sizeof to_a) == sizeof req);
  pump();
  kb.use();
  REQUIRE(rump_sys_recvfrom(raw, rep, sizeof rep, MSG_DONTWAIT, nullptr, nullptr) == sizeof req);
  CHECK(rep[0] == ICMP6_ECHO_REPLY);
  ka.use();
  rump_sys_close(sa);
  rump_sys_close(ping);
  kb.use();
  rump_sys_close(rb);
  rump_sys_close(raw);
  rump_kernel_set_current(nullptr);
}

TEST_CASE("ipv6: fragments on lo are reassembled; overlapping ones drop the datagram; bad lengths are counted",
          "[inet][ipv6][frag]") {
  in_rump(make_env(), [] {
    int r = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 lo = in6("::1", 0);
    REQUIRE(rump_sys_bind(r, sa6(lo), sizeof lo) == 0);
    sockaddr_in6 me{};
    socklen_t ml = sizeof me;
    REQUIRE(rump_sys_getsockname(r, sa6(me), &ml) == 0);
    uint16_t port = ntohs(me.sin6_port);
    // Two fragments, the second first; an exact duplicate is harmless.
    Bytes u = udp(4444, port, std::string(24, 'f'));
    {
      // UDP over IPv6 needs its checksum.
      Bytes ph(40 + u.size(), 0);
      Bytes one = addr6("::1");
      std::memcpy(&ph[0], one.data(), 16);
      std::memcpy(&ph[16], one.data(), 16);
      ph[35] = static_cast<uint8_t>(u.size());
      ph[39] = IPPROTO_UDP;
      std::memcpy(&ph[40], u.data(), u.size());
      uint32_t s = 0;
      for (size_t i = 0; i + 1 < ph.size(); i += 2) s += static_cast<uint32_t>(ph[i] << 8 | ph[i + 1]);
      while (s >> 16) s = (s & 0xffff) + (s >> 16);
      uint16_t c = static_cast<uint16_t>(~s);
      u[6] = static_cast<uint8_t>(c >> 8);
      u[7] = static_cast<uint8_t>(c);
    }
    auto b = counters("net.inet6.ip6.stats");
    Bytes first(u.begin(), u.begin() + 16), second(u.begin() + 16, u.end());
    rx("lo", ip6("::1", "::1", IPPROTO_FRAGMENT, fragment(IPPROTO_UDP, 16, false, 77, second)));
    rx("lo", ip6("::1", "::1", IPPROTO_FRAGMENT, fragment(IPPROTO_UDP, 16, false, 77, second)));
    char buf[64];
    CHECK(rump_sys_recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) == -1);
    rx("lo", ip6("::1", "::1", IPPROTO_FRAGMENT, fragment(IPPROTO_UDP, 0, true, 77, first)));
    CHECK(rump_sys_recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) == 24);
    CHECK(std::string(buf, 24) == std::string(24, 'f'));
    // Overlap: bytes 8..23 again in a different fragment.
    rx("lo", ip6("::1", "::1", IPPROTO_FRAGMENT, fragment(IPPROTO_UDP, 0, true, 78, first)));
    rx("lo", ip6("::1", "::1", IPPROTO_FRAGMENT, fragment(IPPROTO_UDP, 8, true, 78, Bytes(u.begin() + 8, u.begin() + 24))));
    rx("lo", ip6("::1", "::1", IPPROTO_FRAGMENT, fragment(IPPROTO_UDP, 16, false, 78, second)));
    CHECK(rump_sys_recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) == -1);
    // A middle fragment whose length is not a multiple of 8, and one that
    // would make the datagram longer than 65535 bytes.
    rx("lo", ip6("::1", "::1", IPPROTO_FRAGMENT, fragment(IPPROTO_UDP, 0, true, 79, Bytes(12, 1))));
    rx("lo", ip6("::1", "::1", IPPROTO_FRAGMENT, fragment(IPPROTO_UDP, 65528, false, 80, Bytes(16, 1))));
    // An atomic fragment (offset 0, no more) is the packet itself.
    rx("lo", ip6("::1", "::1", IPPROTO_FRAGMENT, fragment(IPPROTO_UDP, 0, false, 81, u)));
    CHECK(rump_sys_recvfrom(r, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) == 24);
    auto a = counters("net.inet6.ip6.stats");
    CHECK(a["ReasmOKs"] - b["ReasmOKs"] == 1);
    CHECK(a["ReasmOverlaps"] - b["ReasmOverlaps"] == 1);
    CHECK(a["InHdrErrors"] - b["InHdrErrors"] == 2);

    // A datagram larger than lo's MTU (lowered to 1280) goes out in
    // fragments and comes back whole.
    int fd = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    ifr.ifr_mtu = 1280;
    REQUIRE(rump_sys_ioctl(fd, SIOCSIFMTU, &ifr) == 0);
    std::string big(5000, 'B');
    sockaddr_in6 to = in6("::1", port);
    b = counters("net.inet6.ip6.stats");
    REQUIRE(rump_sys_sendto(fd, big.data(), big.size(), 0, sa6(to), sizeof to) == 5000);
    a = counters("net.inet6.ip6.stats");
    CHECK(a["FragCreates"] - b["FragCreates"] == 5);  // 5008 bytes in pieces of 1232
    CHECK(a["ReasmOKs"] - b["ReasmOKs"] == 1);
    std::string got(6000, '\0');
    CHECK(rump_sys_recvfrom(r, got.data(), got.size(), MSG_DONTWAIT, nullptr, nullptr) == 5000);
    CHECK(got.substr(0, 5000) == big);
    ifr.ifr_mtu = 65536;
    REQUIRE(rump_sys_ioctl(fd, SIOCSIFMTU, &ifr) == 0);
    rump_sys_close(fd);
    rump_sys_close(r);
  });
}

TEST_CASE("ipv6: packet too big lowers the path MTU (not below 1280); reassembly timeout sends time exceeded",
          "[inet][ipv6][frag]") {
  in_rump(make_env(), [] {
    int s = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 to = in6("::1", 9);
    std::string data(2000, 'p');
    auto b = counters("net.inet6.ip6.stats");
    REQUIRE(rump_sys_sendto(s, data.data(), data.size(), 0, sa6(to), sizeof to) == 2000);
    CHECK(counters("net.inet6.ip6.stats")["FragCreates"] == b["FragCreates"]);
    // Packet too big, MTU 1400, quoting a datagram to ::1.
    Bytes quoted = ip6("::1", "::1", IPPROTO_UDP, udp(1, 9, std::string(100, 'p')));
    Bytes ptb = {ICMP6_PACKET_TOO_BIG, 0, 0, 0, 0, 0, 1400 >> 8, 1400 & 0xff};
    ptb.insert(ptb.end(), quoted.begin(), quoted.end());
    auto ib = counters("net.inet6.icmp6.stats");
    rx("lo", ip6("::1", "::1", IPPROTO_ICMPV6, ptb));
    CHECK(counters("net.inet6.icmp6.stats")["InPktTooBigs"] - ib["InPktTooBigs"] == 1);
    b = counters("net.inet6.ip6.stats");
    REQUIRE(rump_sys_sendto(s, data.data(), data.size(), 0, sa6(to), sizeof to) == 2000);
    CHECK(counters("net.inet6.ip6.stats")["FragCreates"] - b["FragCreates"] == 2);  // 2008 in pieces of 1352
    // 600 is below IPv6's minimum: the path MTU becomes 1280.
    ptb[6] = 600 >> 8;
    ptb[7] = 600 & 0xff;
    rx("lo", ip6("::1", "::1", IPPROTO_ICMPV6, ptb));
    b = counters("net.inet6.ip6.stats");
    std::string d2(1300, 'q');
    REQUIRE(rump_sys_sendto(s, d2.data(), d2.size(), 0, sa6(to), sizeof to) == 1300);
    CHECK(counters("net.inet6.ip6.stats")["FragCreates"] - b["FragCreates"] == 2);  // 1348 > 1280
    rump_sys_close(s);

    // Fragment zero alone: after ip6frag_time, time exceeded (reassembly).
    int one = 1;
    REQUIRE(rump_sys_sysctlbyname("net.ipv6.ip6frag_time", nullptr, nullptr, &one, sizeof one) == 0);
    b = counters("net.inet6.ip6.stats");
    ib = counters("net.inet6.icmp6.stats");
    rx("lo", ip6("::1", "::1", IPPROTO_FRAGMENT, fragment(IPPROTO_UDP, 0, true, 99, Bytes(16, 0))));
    // The timer runs on the callout thread; wait for it (bounded).
    for (int i = 0; i < 1000 && counters("net.inet6.icmp6.stats")["InTimeExcds"] == ib["InTimeExcds"]; i++)
      usleep(10000);
    auto a = counters("net.inet6.ip6.stats");
    CHECK(a["ReasmTimeout"] - b["ReasmTimeout"] == 1);
    auto ia = counters("net.inet6.icmp6.stats");
    CHECK(ia["OutTimeExcds"] - ib["OutTimeExcds"] == 1);
    CHECK(ia["InTimeExcds"] - ib["InTimeExcds"] == 1);  // it came back over lo
  });
}

namespace {

// Runs fn as a client fiber of a fresh kernel on the "sim" backend, whose
// clock moves only when every fiber waits: lifetimes of minutes pass in no
// wall time. fn checks with CHECK (an exception must not leave a fiber).
void in_sim(const std::function<void()>& fn) {
  rump_boot_config c;
  rump_boot_config_init(&c);
  c.backend = "sim";
  c.seed = 7;
  rump_kernel* k = nullptr;
  REQUIRE(rump_kernel_boot(&c, &k) == 0);
  rump_kernel_set_current(k);
  REQUIRE(rump_sim_spawn(
              k, [](void* a) { (*static_cast<const std::function<void()>*>(a))(); },
              const_cast<void*>(static_cast<const void*>(&fn))) == 0);
  CHECK(rump_sim_run(k) == 0);
  CHECK(rump_kernel_halt(k) == 0);
  rump_kernel_set_current(nullptr);
}

void sleep_s(int s) {
  timespec ts{s, 0};
  rump_sys_nanosleep(&ts, nullptr);
}

using RumpNl = nl_test::Nl<K<true>>;

// What a listener heard so far, one line per message.
std::vector<std::string> heard(RumpNl& mon) {
  std::vector<std::string> out;
  for (;;) {
    std::vector<char> buf;
    long n = mon.recv_one(buf, true);
    if (n < 0) break;
    std::vector<nl_test::Msg> ms;
    nl_test::split(buf.data(), static_cast<size_t>(n), ms);
    for (nl_test::Msg& m : ms) out.push_back(mon.line(m));
  }
  return out;
}

// The lines that hold every one of the words.
size_t count(const std::vector<std::string>& v, std::initializer_list<const char*> words) {
  size_t n = 0;
  for (const std::string& l : v) {
    bool all = true;
    for (const char* w : words) all = all && l.find(w) != std::string::npos;
    n += all;
  }
  return n;
}

// An ARP packet (RFC 826) in an Ethernet frame.
Bytes arp(uint16_t op, const uint8_t sha[6], const char* spa, const uint8_t tha[6], const char* tpa,
          const uint8_t dst[6]) {
  Bytes f(dst, dst + 6);
  f.insert(f.end(), sha, sha + 6);
  f.push_back(ETH_P_ARP >> 8);
  f.push_back(ETH_P_ARP & 0xff);
  Bytes a = {0, 1, 8, 0, 6, 4, 0, static_cast<uint8_t>(op)};
  a.insert(a.end(), sha, sha + 6);
  in_addr x;
  inet_pton(AF_INET, spa, &x);
  a.insert(a.end(), reinterpret_cast<uint8_t*>(&x), reinterpret_cast<uint8_t*>(&x) + 4);
  a.insert(a.end(), tha, tha + 6);
  inet_pton(AF_INET, tpa, &x);
  a.insert(a.end(), reinterpret_cast<uint8_t*>(&x), reinterpret_cast<uint8_t*>(&x) + 4);
  f.insert(f.end(), a.begin(), a.end());
  return f;
}

// eth0 (kMacA) up with 2001:db8::1/64 and 10.0.0.1/24, duplicate address
// detection over, nothing of it in out; mon listening to RTNLGRP_NEIGH.
void neigh_bed(Frames& out, RumpNl& mon) {
  attach_ether("eth0", kMacA, out);
  CHECK(rump_pub_netconfig_ifup("eth0") == 0);
  CHECK(rump_pub_netconfig_ipv6_ifaddr("eth0", "2001:db8::1", 64) == 0);
  CHECK(rump_pub_netconfig_ipv4_ifaddr_cidr("eth0", "10.0.0.1", 24) == 0);
  sleep_s(2);
  out.clear();
  CHECK(mon.open(RTMGRP_NEIGH));
  mon.names[ifindex("eth0")] = "eth0";
}

}  // namespace

TEST_CASE("neighbours learnt, changed and failed by traffic are announced to RTNLGRP_NEIGH as Linux does",
          "[inet][ipv6][nd][netlink]") {
  in_sim([] {
    Frames out;
    RumpNl mon;
    neigh_bed(out, mon);
    // A solicitation with a source option makes its sender STALE.
    rx("eth0", ether(kMacA, kMacC, ip6("2001:db8::5", "2001:db8::1", IPPROTO_ICMPV6, ns("2001:db8::1", kMacC), 255)));
    std::vector<std::string> v = heard(mon);
    CHECK(v.size() == 1);
    CHECK(count(v, {"neigh 2001:db8::5 dev eth0", "state 0x4 ", "lladdr 02:00:00:00:00:0c"}) == 1);
    // The same solicitation again changes nothing: no message.
    rx("eth0", ether(kMacA, kMacC, ip6("2001:db8::5", "2001:db8::1", IPPROTO_ICMPV6, ns("2001:db8::1", kMacC), 255)));
    CHECK(heard(mon).empty());
    // Resolving a new neighbour (INCOMPLETE: not announced), then its
    // solicited advertisement: REACHABLE.
    int s = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 d6 = in6("2001:db8::6", 9);
    CHECK(rump_sys_sendto(s, "x", 1, 0, sa6(d6), sizeof d6) == 1);
    CHECK(heard(mon).empty());
    rx("eth0", ether(kMacA, kMacB, ip6("2001:db8::6", "2001:db8::1", IPPROTO_ICMPV6, na("2001:db8::6", 0x60, kMacB), 255)));
    v = heard(mon);
    CHECK(count(v, {"neigh 2001:db8::6 dev eth0", "state 0x2 ", "lladdr 02:00:00:00:00:0b"}) == 1);
    CHECK(v.size() == 1);
    // An overriding advertisement with another address: the new one,
    // STALE (not solicited).
    rx("eth0", ether(kMacA, kMacC, ip6("2001:db8::6", "2001:db8::1", IPPROTO_ICMPV6, na("2001:db8::6", 0x20, kMacC), 255)));
    v = heard(mon);
    CHECK(count(v, {"neigh 2001:db8::6 dev eth0", "state 0x4 ", "lladdr 02:00:00:00:00:0c"}) == 1);
    CHECK(v.size() == 1);
    // A neighbour that never answers: after the solicitations it FAILS
    // (announced) and goes (RTM_DELNEIGH).
    sockaddr_in6 d7 = in6("2001:db8::7", 9);
    CHECK(rump_sys_sendto(s, "x", 1, 0, sa6(d7), sizeof d7) == 1);
    sleep_s(5);
    v = heard(mon);
    CHECK(count(v, {"neigh 2001:db8::7 dev eth0", "state 0x20 "}) == 2);
    CHECK(count(v, {"del neigh 2001:db8::7 dev eth0", "state 0x20 "}) == 1);
    // The stale neighbour used: DELAY (not announced), then PROBE after
    // five seconds (announced), then, unanswered, FAILED and gone.
    CHECK(rump_sys_sendto(s, "x", 1, 0, sa6(d6), sizeof d6) == 1);
    CHECK(heard(mon).empty());
    sleep_s(12);
    v = heard(mon);
    std::vector<std::string> six;
    for (const std::string& l : v)
      if (l.find(" 2001:db8::6 ") != std::string::npos) six.push_back(l);
    CHECK(six.size() == 3);
    if (six.size() == 3) {
      CHECK(count({six[0]}, {"neigh 2001:db8::6 dev eth0", "state 0x10 "}) == 1);
      CHECK(count({six[1]}, {"neigh 2001:db8::6 dev eth0", "state 0x20 "}) == 1);
      CHECK(count({six[2]}, {"del neigh 2001:db8::6 dev eth0", "state 0x20 "}) == 1);
    }
    rump_sys_close(s);
    // ARP: a reply to our request makes the neighbour REACHABLE; a
    // request to us from a new neighbour enters it too.
    int s4 = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in d4{};
    d4.sin_family = AF_INET;
    d4.sin_port = htons(9);
    inet_pton(AF_INET, "10.0.0.2", &d4.sin_addr);
    CHECK(rump_sys_sendto(s4, "x", 1, 0, reinterpret_cast<sockaddr*>(&d4), sizeof d4) == 1);
    CHECK(heard(mon).empty());
    rx("eth0", arp(2, kMacB, "10.0.0.2", kMacA, "10.0.0.1", kMacA));
    v = heard(mon);
    CHECK(count(v, {"neigh 10.0.0.2 dev eth0", "state 0x2 ", "lladdr 02:00:00:00:00:0b"}) == 1);
    CHECK(v.size() == 1);
    const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const uint8_t zero[6] = {};
    rx("eth0", arp(1, kMacC, "10.0.0.3", zero, "10.0.0.1", bcast));
    v = heard(mon);
    CHECK(count(v, {"neigh 10.0.0.3 dev eth0", "lladdr 02:00:00:00:00:0c"}) == 1);
    // The reply again: nothing changed, nothing said.
    rx("eth0", arp(2, kMacB, "10.0.0.2", kMacA, "10.0.0.1", kMacA));
    CHECK(heard(mon).empty());
    rump_sys_close(s4);
    mon.close();
    CHECK(rump_pub_netconfig_ifdestroy("eth0") == 0);
  });
}

namespace {

// The ARP packets among frames: (op, Ethernet destination, target
// protocol address as text).
struct ArpSeen {
  int op;
  Bytes dmac;
  std::string tpa;
};
std::vector<ArpSeen> arps(Frames& out) {
  std::vector<ArpSeen> v;
  for (Bytes f = out.pop(); !f.empty(); f = out.pop()) {
    if (f.size() < 14 + 28 || (f[12] << 8 | f[13]) != ETH_P_ARP) continue;
    char t[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, f.data() + 14 + 24, t, sizeof t);
    v.push_back({f[14 + 7], Bytes(f.begin(), f.begin() + 6), t});
  }
  return v;
}

}  // namespace

TEST_CASE("neighbours follow Linux's NUD timers: REACHABLE to STALE announced, ARP probes, fails and is collected",
          "[inet][ipv6][nd][netlink]") {
  in_sim([] {
    Frames out;
    RumpNl mon;
    neigh_bed(out, mon);
    const Bytes mac_b(kMacB, kMacB + 6), bcast(6, 0xff);
    int s4 = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in d4{};
    d4.sin_family = AF_INET;
    d4.sin_port = htons(9);
    inet_pton(AF_INET, "10.0.0.2", &d4.sin_addr);
    auto* d4a = reinterpret_cast<sockaddr*>(&d4);
    // Resolved by a reply sent to us: REACHABLE.
    CHECK(rump_sys_sendto(s4, "x", 1, 0, d4a, sizeof d4) == 1);
    rx("eth0", arp(2, kMacB, "10.0.0.2", kMacA, "10.0.0.1", kMacA));
    std::vector<std::string> v = heard(mon);
    CHECK(count(v, {"neigh 10.0.0.2 dev eth0", "state 0x2 "}) == 1);
    // Unused past its reachable time (at most 1.5 x 30 s): STALE, and
    // said so.
    sleep_s(46);
    v = heard(mon);
    CHECK(v.size() == 1);
    CHECK(count(v, {"neigh 10.0.0.2 dev eth0", "state 0x4 ", "lladdr 02:00:00:00:00:0b"}) == 1);
    // Used: DELAY (quiet), five seconds on PROBE (said), a unicast
    // request to the address it has; a reply to us: REACHABLE again.
    out.clear();
    CHECK(rump_sys_sendto(s4, "x", 1, 0, d4a, sizeof d4) == 1);
    CHECK(heard(mon).empty());
    sleep_s(6);
    v = heard(mon);
    CHECK(count(v, {"neigh 10.0.0.2 dev eth0", "state 0x10 "}) == 1);
    std::vector<ArpSeen> a = arps(out);
    size_t probes = 0;
    for (const ArpSeen& x : a) probes += x.op == 1 && x.dmac == mac_b && x.tpa == "10.0.0.2";
    CHECK(probes >= 1);
    rx("eth0", arp(2, kMacB, "10.0.0.2", kMacA, "10.0.0.1", kMacA));
    v = heard(mon);
    CHECK(count(v, {"neigh 10.0.0.2 dev eth0", "state 0x2 "}) == 1);
    // A request to us from a new neighbour: it goes in STALE (Linux's
    // neigh_event_ns), and gets its reply.
    const uint8_t zero[6] = {};
    const uint8_t bc[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    out.clear();
    rx("eth0", arp(1, kMacC, "10.0.0.3", zero, "10.0.0.1", bc));
    v = heard(mon);
    CHECK(count(v, {"neigh 10.0.0.3 dev eth0", "state 0x4 ", "lladdr 02:00:00:00:00:0c"}) == 1);
    a = arps(out);
    CHECK(a.size() == 1);
    if (a.size() == 1) {
      CHECK(a[0].op == 2);
      CHECK(a[0].dmac == Bytes(kMacC, kMacC + 6));
    }
    // A broadcast reply does not prove reachability: STALE stays.
    rx("eth0", arp(2, kMacC, "10.0.0.3", zero, "10.0.0.1", bc));
    CHECK(heard(mon).empty());
    // IPv6 the same: REACHABLE from a solicited advertisement, STALE when
    // its time is up.
    int s6 = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 d6 = in6("2001:db8::6", 9);
    CHECK(rump_sys_sendto(s6, "x", 1, 0, sa6(d6), sizeof d6) == 1);
    rx("eth0", ether(kMacA, kMacB, ip6("2001:db8::6", "2001:db8::1", IPPROTO_ICMPV6, na("2001:db8::6", 0x60, kMacB), 255)));
    v = heard(mon);
    CHECK(count(v, {"neigh 2001:db8::6 dev eth0", "state 0x2 "}) == 1);
    sleep_s(46);
    v = heard(mon);
    CHECK(count(v, {"neigh 2001:db8::6 dev eth0", "state 0x4 "}) == 1);
    CHECK(count(v, {"neigh 10.0.0.2 dev eth0", "state 0x4 "}) == 1);
    rump_sys_close(s6);
    // An IPv4 neighbour that never answers: three broadcast requests a
    // second apart, then FAILED (said) and gone; the waiting datagram
    // comes back as host unreachable to its connected socket.
    out.clear();
    int c4 = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in d9 = d4;
    inet_pton(AF_INET, "10.0.0.9", &d9.sin_addr);
    CHECK(rump_sys_connect(c4, reinterpret_cast<sockaddr*>(&d9), sizeof d9) == 0);
    CHECK(rump_sys_send(c4, "x", 1, 0) == 1);
    sleep_s(5);
    a = arps(out);
    size_t requests = 0;
    for (const ArpSeen& x : a) requests += x.op == 1 && x.dmac == bcast && x.tpa == "10.0.0.9";
    CHECK(requests == 3);
    v = heard(mon);
    CHECK(count(v, {"neigh 10.0.0.9 dev eth0", "state 0x20 "}) == 2);
    CHECK(count(v, {"del neigh 10.0.0.9 dev eth0"}) == 1);
    char b;
    errno = 0;
    CHECK(rump_sys_recv(c4, &b, 1, MSG_DONTWAIT) == -1);
    CHECK(errno == EHOSTUNREACH);
    rump_sys_close(c4);
    // Garbage collection: with gc_thresh1 (128) entries or more, STALE
    // ones unused for gc_stale_time (60 s) go, announced.
    for (int i = 0; i < 130; i++) {
      char ip[16];
      snprintf(ip, sizeof ip, "10.0.0.%d", 100 + i);
      uint8_t m[6] = {0x02, 0, 0, 0, 1, static_cast<uint8_t>(i)};
      rx("eth0", arp(1, m, ip, zero, "10.0.0.1", bc));
    }
    v = heard(mon);
    CHECK(count(v, {"neigh 10.0.0.", "state 0x4 "}) == 130);
    sleep_s(90);
    v = heard(mon);
    CHECK(count(v, {"del neigh 10.0.0.", "state 0x4 "}) >= 130);
    rump_sys_close(s4);
    mon.close();
    CHECK(rump_pub_netconfig_ifdestroy("eth0") == 0);
  });
}

TEST_CASE("router advertisement lifetimes count down: addresses deprecated then removed, default route expires",
          "[inet][ipv6][nd][netlink]") {
  in_sim([] {
    Frames out;
    attach_ether("eth0", kMacA, out);
    CHECK(rump_pub_netconfig_ifup("eth0") == 0);
    sleep_s(2);
    out.clear();
    RumpNl mon;
    CHECK(mon.open(RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE));
    mon.names[ifindex("eth0")] = "eth0";
    const uint8_t all_nodes[6] = {0x33, 0x33, 0, 0, 0, 1};
    // A router for 30 s; a prefix valid for 20 s, preferred for 10 s; an
    // on-link-only prefix valid for 15 s.
    rx("eth0", ether(all_nodes, kMacC,
                     ip6("fe80::1", "ff02::1", IPPROTO_ICMPV6,
                         ra(30, {opt_sll(kMacC), opt_prefix("2001:db8:77::", 64, 0xc0, 20, 10),
                                 opt_prefix("2001:db8:88::", 64, 0x80, 15, 15)}),
                         255)));
    CHECK(has(addrs6("eth0"), "2001:db8:77::ff:fe00:a/64"));
    sleep_s(2);  // its duplicate detection
    // A second address on the prefix, configured by hand: the source
    // while the autoconfigured one is deprecated.
    CHECK(rump_pub_netconfig_ipv6_ifaddr("eth0", "2001:db8:77::99", 64) == 0);
    sleep_s(2);
    std::vector<std::string> v = heard(mon);
    // Autoconfigured: not permanent (dynamic).
    CHECK(count(v, {"addr 2001:db8:77::ff:fe00:a/64", "flags 0/0 "}) >= 1);
    int s = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 far = in6("2001:db8:99::1", 9);
    // The source address a datagram to far would have.
    auto src_of_send = [&]() -> Bytes {
      int c = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
      sockaddr_in6 me{};
      socklen_t ml = sizeof me;
      bool ok = rump_sys_connect(c, sa6(far), sizeof far) == 0 && rump_sys_getsockname(c, sa6(me), &ml) == 0;
      rump_sys_close(c);
      return ok ? Bytes(me.sin6_addr.s6_addr, me.sin6_addr.s6_addr + 16) : Bytes();
    };
    CHECK(src_of_send() == addr6("2001:db8:77::ff:fe00:a"));
    // Past the preferred lifetime: deprecated (announced once, with
    // IFA_F_DEPRECATED), and sources avoid it.
    sleep_s(7);  // 11 s after the advertisement
    v = heard(mon);
    CHECK(count(v, {"addr 2001:db8:77::ff:fe00:a/64", "flags 0x20/0x20 "}) == 1);
    CHECK(src_of_send() == addr6("2001:db8:77::99"));
    // The on-link prefix's route goes at 15 s, the address at 20 s (its
    // connected route with it), the default route at 30 s.
    sleep_s(5);
    v = heard(mon);
    CHECK(count(v, {"del route 2001:db8:88::/64"}) == 1);
    sleep_s(5);
    v = heard(mon);
    CHECK(count(v, {"del addr 2001:db8:77::ff:fe00:a/64"}) == 1);
    CHECK(!has(addrs6("eth0"), "2001:db8:77::ff:fe00:a/64"));
    CHECK(src_of_send() == addr6("2001:db8:77::99"));
    sleep_s(10);
    v = heard(mon);
    CHECK(count(v, {"del route -/0", "via fe80::1"}) == 1);
    CHECK(rump_sys_sendto(s, "x", 1, 0, sa6(far), sizeof far) == -1);
    CHECK(errno == ENETUNREACH);
    rump_sys_close(s);
    mon.close();
    CHECK(rump_pub_netconfig_ifdestroy("eth0") == 0);
  });
}
