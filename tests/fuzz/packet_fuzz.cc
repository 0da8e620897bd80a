// packet_fuzz: frames and packets from the wire into the network stack,
// with state kept across the frames of one input.
//
// Each input boots a fresh kernel with an Ethernet interface eth0
// (10.0.0.1/24, 2001:db8::1/64, up; what it transmits is dropped) next to
// lo, and sockets that give the packets somewhere to go: a dual-stack TCP
// listener on port 80 with one connection of its own over lo, UDP sockets
// on port 53 (IPv4 and IPv6), raw ICMP and ICMPv6 sockets and ICMP ping
// sockets. The input is a sequence of records, each one frame:
//
//   byte 0   bit 0: into lo (a packet) or eth0 (a frame);
//            bits 1-2: eth0's destination MAC (ours, broadcast, the
//            solicited-node group of 2001:db8::1, another host's);
//            bits 3-4: the EtherType (IPv4, IPv6, ARP, the next two
//            bytes); bit 5: fix the packet up (version, lengths, our
//            addresses, the IPv4 header checksum and the transport
//            checksum), so that the stack looks deeper; bit 6: drain the
//            sockets after this frame; bit 7: IPv4 (0) or IPv6 (1) for lo
//   byte 1-2 the length of the packet (little endian, at most 2048)
//   then     the packet's bytes
//
// PACKET_FUZZ_PRINT=1 prints the stack's nonzero counters after each
// input. The stack must take every frame (malformed ones are counted and
// dropped), never crash, and give back all of its memory at halt (a
// debug build panics on a leak).
//
// Built as a libFuzzer target with -Dfuzz=true (clang); packet_fuzz_replay
// runs the seed corpus and seeded random inputs in the normal test suite.
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>

#include <rump/rump.h>
#include <rump/rumpnet.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kern/curlwp.h"
#include "kern/kernel.h"
#include "net/inet/if.h"
#include "net/inet/if_ether.h"

namespace {

const uint8_t kOurMac[6] = {0x02, 0, 0, 0, 0, 0x01};
const uint8_t kPeerMac[6] = {0x02, 0, 0, 0, 0, 0x02};
const uint8_t kOtherMac[6] = {0x02, 0, 0, 0, 0, 0x03};
const uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
const uint8_t kSolicitedNode[6] = {0x33, 0x33, 0xff, 0, 0, 0x01};

void drop_frame(void*, rump::Ifnet&, rump::Pkt* p) { rump::Pkt::free(p); }

uint32_t sum16(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) s += static_cast<uint32_t>(p[n - 1] << 8);
  return s;
}
uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

// The offset of a transport's checksum field, or -1.
int csum_at(uint8_t proto) {
  switch (proto) {
    case IPPROTO_TCP: return 16;
    case IPPROTO_UDP: return 6;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6: return 2;
    default: return -1;
  }
}

void set_csum(uint8_t* l4, size_t n, int at, uint32_t pseudo) {
  if (at < 0 || n < static_cast<size_t>(at) + 2) return;
  l4[at] = l4[at + 1] = 0;
  uint16_t c = fold(sum16(l4, n, pseudo));
  l4[at] = static_cast<uint8_t>(c >> 8);
  l4[at + 1] = static_cast<uint8_t>(c);
}

// Makes a packet plausible: the fuzzer keeps the content, the harness the
// bookkeeping it would rarely get right by chance.
void fix_up(std::vector<uint8_t>& p, bool v6, bool to_lo) {
  if (!v6) {
    if (p.size() < 20) return;
    p[0] = static_cast<uint8_t>(0x40 | (p[0] & 0x0f));
    size_t hl = (p[0] & 0x0f) * 4u;
    if (hl < 20 || hl > p.size()) {
      p[0] = 0x45;
      hl = 20;
    }
    p[2] = static_cast<uint8_t>(p.size() >> 8);
    p[3] = static_cast<uint8_t>(p.size());
    uint32_t src = to_lo ? htonl(INADDR_LOOPBACK) : inet_addr("10.0.0.2");
    uint32_t dst = to_lo ? htonl(INADDR_LOOPBACK) : inet_addr("10.0.0.1");
    std::memcpy(&p[12], &src, 4);
    std::memcpy(&p[16], &dst, 4);
    p[10] = p[11] = 0;
    uint16_t c = fold(sum16(p.data(), hl));
    p[10] = static_cast<uint8_t>(c >> 8);
    p[11] = static_cast<uint8_t>(c);
    bool frag = (p[6] & 0x3f) || p[7];
    if (frag) return;
    size_t n = p.size() - hl;
    uint8_t proto = p[9];
    uint32_t ps = proto == IPPROTO_ICMP ? 0 : sum16(&p[12], 8, proto + static_cast<uint32_t>(n));
    set_csum(&p[hl], n, csum_at(proto), ps);
    return;
  }
  if (p.size() < 40) return;
  p[0] = static_cast<uint8_t>(0x60 | (p[0] & 0x0f));
  size_t n = p.size() - 40;
  p[4] = static_cast<uint8_t>(n >> 8);
  p[5] = static_cast<uint8_t>(n);
  in6_addr src{}, dst{};
  if (to_lo) {
    src = in6addr_loopback;
    dst = in6addr_loopback;
  } else {
    inet_pton(AF_INET6, "2001:db8::2", &src);
    // Keep a multicast destination the fuzzer chose (ND goes there).
    if (p[24] == 0xff) std::memcpy(&dst, &p[24], 16);
    else inet_pton(AF_INET6, "2001:db8::1", &dst);
  }
  std::memcpy(&p[8], &src, 16);
  std::memcpy(&p[24], &dst, 16);
  uint8_t nxt = p[6];
  uint32_t ps = sum16(&p[8], 32, static_cast<uint32_t>(n) + nxt);
  set_csum(&p[40], n, csum_at(nxt), ps);
}

struct Sockets {
  std::vector<int> drain;  // datagram sockets read after frames
  int listener = -1;
};

Sockets make_sockets() {
  Sockets s;
  int on = 1;
  s.listener = rump_sys_socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in6 a6{};
  a6.sin6_family = AF_INET6;
  a6.sin6_port = htons(80);
  rump_sys_setsockopt(s.listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (rump_sys_bind(s.listener, reinterpret_cast<sockaddr*>(&a6), sizeof a6) != 0) abort();
  if (rump_sys_listen(s.listener, 4) != 0) abort();
  // A connection of our own over lo, so that segments can hit an
  // established connection too.
  int c = rump_sys_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in lo{};
  lo.sin_family = AF_INET;
  lo.sin_port = htons(80);
  lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  rump_sys_connect(c, reinterpret_cast<sockaddr*>(&lo), sizeof lo);
  s.drain.push_back(c);
  int u6 = rump_sys_socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  a6.sin6_port = htons(53);
  rump_sys_setsockopt(u6, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  if (rump_sys_bind(u6, reinterpret_cast<sockaddr*>(&a6), sizeof a6) != 0) abort();
  s.drain.push_back(u6);
  int u4 = rump_sys_socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  sockaddr_in a4{};
  a4.sin_family = AF_INET;
  a4.sin_port = htons(53);
  if (rump_sys_bind(u4, reinterpret_cast<sockaddr*>(&a4), sizeof a4) != 0) abort();
  s.drain.push_back(u4);
  s.drain.push_back(rump_sys_socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_ICMP));
  s.drain.push_back(rump_sys_socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_ICMPV6));
  s.drain.push_back(rump_sys_socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_UDP));
  const char range[] = "0 0";
  rump_sys_sysctlbyname("net.ipv4.ping_group_range", nullptr, nullptr, range, sizeof range - 1);
  int p4 = rump_sys_socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, IPPROTO_ICMP);
  int p6 = rump_sys_socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, IPPROTO_ICMPV6);
  // Ping sockets get their identifiers from a first echo each.
  uint8_t echo[8] = {ICMP_ECHO, 0};
  sockaddr_in to4 = lo;
  to4.sin_port = 0;
  rump_sys_sendto(p4, echo, sizeof echo, 0, reinterpret_cast<sockaddr*>(&to4), sizeof to4);
  echo[0] = ICMP6_ECHO_REQUEST;
  sockaddr_in6 to6{};
  to6.sin6_family = AF_INET6;
  to6.sin6_addr = in6addr_loopback;
  rump_sys_sendto(p6, echo, sizeof echo, 0, reinterpret_cast<sockaddr*>(&to6), sizeof to6);
  s.drain.push_back(p4);
  s.drain.push_back(p6);
  return s;
}

void drain(const Sockets& s) {
  char buf[2048];
  for (int fd : s.drain)
    while (rump_sys_recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr) > 0) {
    }
  int c;
  while ((c = rump_sys_accept4(s.listener, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
    rump_sys_recvfrom(c, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr);
    rump_sys_close(c);
  }
}

void deliver(rump::InetState& st, rump::Ifnet& ifp, const std::vector<uint8_t>& bytes, bool frame, uint16_t proto) {
  rump::Result<rump::Pkt*> r = rump::Pkt::alloc(st.pool, 0);
  if (!r.ok()) return;
  rump::Pkt* p = r.value();
  if (!p->append(bytes.data(), bytes.size()).ok()) {
    rump::Pkt::free(p);
    return;
  }
  if (frame) rump::ether_input(ifp, p);
  else rump::if_input(ifp, p, proto);
}

void run(const uint8_t* data, size_t size) {
  rump::Kernel* k = rump::current_kernel();
  {
    rump::Lwp* l = rump::enter(*k);
    rump::InetState* st = rump::inet_state_or_null(*k);
    if (!st && rump::inet_state(*k).ok()) st = rump::inet_state_or_null(*k);
    if (!st || !rump::ether_attach(*st, "eth0", kOurMac, rump::EtherLink{&drop_frame, nullptr}).ok()) abort();
    rump::leave(*k, l);
  }
  if (rump_pub_netconfig_ipv4_ifaddr_cidr("eth0", "10.0.0.1", 24) != 0) abort();
  if (rump_pub_netconfig_ipv6_ifaddr("eth0", "2001:db8::1", 64) != 0) abort();
  if (rump_pub_netconfig_ifup("eth0") != 0) abort();
  Sockets socks = make_sockets();
  size_t i = 0;
  std::vector<uint8_t> pkt;
  for (int frames = 0; i + 3 <= size && frames < 64; frames++) {
    uint8_t sel = data[i];
    size_t len = (data[i + 1] | data[i + 2] << 8) % 2049;
    i += 3;
    if (len > size - i) len = size - i;
    pkt.assign(data + i, data + i + len);
    i += len;
    bool to_lo = sel & 1;
    bool v6;
    uint16_t type;
    size_t body = 0;
    if (to_lo) {
      v6 = sel & 0x80;
      type = v6 ? ETH_P_IPV6 : ETH_P_IP;
    } else {
      switch ((sel >> 3) & 3) {
        case 0: type = ETH_P_IP; break;
        case 1: type = ETH_P_IPV6; break;
        case 2: type = ETH_P_ARP; break;
        default:
          type = pkt.size() >= 2 ? static_cast<uint16_t>(pkt[0] << 8 | pkt[1]) : 0;
          body = pkt.size() >= 2 ? 2 : pkt.size();
          break;
      }
      v6 = type == ETH_P_IPV6;
    }
    std::vector<uint8_t> l3(pkt.begin() + static_cast<long>(body), pkt.end());
    if ((sel & 0x20) && (type == ETH_P_IP || type == ETH_P_IPV6)) fix_up(l3, v6, to_lo);
    rump::Lwp* l = rump::enter(*k);
    rump::InetState* st = rump::inet_state_or_null(*k);
    rump::RefPtr<rump::Ifnet> ifp = st->find_if(to_lo ? "lo" : "eth0");
    if (to_lo) {
      deliver(*st, *ifp, l3, false, type);
    } else {
      static const uint8_t* const kDst[4] = {kOurMac, kBroadcast, kSolicitedNode, kOtherMac};
      std::vector<uint8_t> f(kDst[(sel >> 1) & 3], kDst[(sel >> 1) & 3] + 6);
      f.insert(f.end(), kPeerMac, kPeerMac + 6);
      f.push_back(static_cast<uint8_t>(type >> 8));
      f.push_back(static_cast<uint8_t>(type));
      f.insert(f.end(), l3.begin(), l3.end());
      deliver(*st, *ifp, f, true, 0);
    }
    ifp = nullptr;
    rump::leave(*k, l);
    if (sel & 0x40) drain(socks);
  }
  drain(socks);
  if (getenv("PACKET_FUZZ_PRINT")) {
    // The counters, to see how far an input got.
    for (const char* node : {"net.inet.ip.stats", "net.inet6.ip6.stats", "net.inet6.icmp6.stats",
                             "net.inet.tcp.stats", "net.inet.udp.stats"}) {
      char buf[4096];
      size_t len = sizeof buf;
      if (rump_sys_sysctlbyname(node, buf, &len, nullptr, 0) == 0) {
        std::string nonzero;
        for (size_t at = 0; at < len;) {
          size_t nl = std::string(buf, len).find('\n', at);
          if (nl == std::string::npos) break;
          std::string line(buf + at, nl - at);
          if (line.size() < 2 || line.compare(line.size() - 2, 2, " 0") != 0) nonzero += " " + line;
          at = nl + 1;
        }
        fprintf(stderr, "%s:%s\n", node, nonzero.c_str());
      }
    }
  }
  for (int fd : socks.drain) rump_sys_close(fd);
  rump_sys_close(socks.listener);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  struct rump_kernel* k = nullptr;
  struct rump_boot_config cfg;
  rump_boot_config_init(&cfg);
  cfg.ncpu = 1;
  cfg.memlimit = 64 << 20;
  if (rump_kernel_boot(&cfg, &k) != 0) abort();
  rump_kernel_set_current(k);
  run(data, size);
  rump_kernel_set_current(nullptr);
  if (rump_kernel_halt(k) != 0) abort();
  return 0;
}
