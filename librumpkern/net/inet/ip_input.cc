// IPv4 input: header checks (every malformed packet is counted and
// dropped), the decision whether the packet is ours, reassembly, and the
// hand-off to raw sockets and the transport (RFC 791, RFC 1122 3.2.1).
// This host does not forward: a packet for another address is counted as
// InAddrErrors and dropped, as Linux with ip_forward=0.
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>

#include <cstring>

#include "kern/kernel.h"
#include "net/inet/ip_var.h"

namespace rump {

namespace {

void bump(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

// The options are well formed: each has a length that fits (no loop on a
// zero length, no overrun). Their meaning is not acted on.
bool options_ok(const uint8_t* opt, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t t = opt[i];
    if (t == IPOPT_EOL) return true;
    if (t == IPOPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= n) return false;
    uint8_t len = opt[i + 1];
    if (len < 2 || i + len > n) return false;
    i += len;
  }
  return true;
}

// How the destination relates to us: 0 not ours, 1 unicast to us, 2
// broadcast (limited, or the subnet broadcast of an interface), 3
// multicast we take (all-hosts).
int classify_dst(InetState& st, Ifnet& ifp, InAddr dst) {
  if (dst.limited_broadcast()) return 2;
  if (dst.multicast()) return dst == InAddr::host(0xe0000001) ? 3 : 0;
  SharedLocker g(st.if_lock_);
  for (const Ifnet& i : st.ifs_) {
    for (int a = 0; a < i.naddr4; a++) {
      if (i.addr4[a].addr == dst) return 1;
      if (&i == &ifp && i.addr4[a].plen < 31 && i.addr4[a].bcast == dst) return 2;
    }
  }
  // 127/8 arriving on lo is ours (Linux's local route for the block), and
  // so is the prefix of any address of lo.
  if (dst.loopback() && (ifp.flags.load() & IFF_LOOPBACK)) return 1;
  return lo_prefix_locked(st, dst) ? 1 : 0;
}

}  // namespace

void ip_input(InetState& st, Ifnet& ifp, Pkt* p) {
  IpStats& s = st.ip_stats;
  bump(s.InReceives);
  if (p->len() < sizeof(iphdr)) {
    bump(s.InHdrErrors);
    Pkt::free(p);
    return;
  }
  Result<char*> r = p->pullup(sizeof(iphdr));
  if (!r.ok()) {
    bump(s.InDiscards);
    Pkt::free(p);
    return;
  }
  iphdr h;
  std::memcpy(&h, r.value(), sizeof h);
  size_t hlen = h.ihl * 4u;
  if (h.version != 4 || hlen < sizeof(iphdr) || p->len() < hlen) {
    bump(s.InHdrErrors);
    Pkt::free(p);
    return;
  }
  r = p->pullup(hlen);
  if (!r.ok()) {
    bump(s.InDiscards);
    Pkt::free(p);
    return;
  }
  const auto* raw = reinterpret_cast<const uint8_t*>(r.value());
  if (in_cksum(raw, hlen) != 0) {
    bump(s.InCsumErrors);
    bump(s.InHdrErrors);
    Pkt::free(p);
    return;
  }
  size_t tot = ntohs(h.tot_len);
  if (tot < hlen) {
    bump(s.InHdrErrors);
    Pkt::free(p);
    return;
  }
  if (tot > p->len()) {
    bump(s.InTruncatedPkts);
    Pkt::free(p);
    return;
  }
  if (hlen > sizeof(iphdr) && !options_ok(raw + sizeof(iphdr), hlen - sizeof(iphdr))) {
    bump(s.InHdrErrors);
    Pkt::free(p);
    return;
  }
  if (tot < p->len()) p->trim_back(p->len() - tot);
  InAddr src{h.saddr}, dst{h.daddr};
  // Martian sources: no host sends from a broadcast or multicast address.
  if (src.limited_broadcast() || src.multicast()) {
    bump(s.InAddrErrors);
    Pkt::free(p);
    return;
  }
  int kind = classify_dst(st, ifp, dst);
  if (kind == 0) {
    bump(s.InAddrErrors);
    Pkt::free(p);
    return;
  }
  IpHdrInfo ip;
  ip.src = IpAddr::of(src);
  ip.dst = IpAddr::of(dst);
  ip.proto = h.protocol;
  ip.ttl = h.ttl;
  ip.tos = h.tos;
  ip.ifindex = ifp.index;
  ip.flags = (p->meta.flags & kPktLoopback) | (kind == 2 ? kPktBroadcast : 0) | (kind == 3 ? kPktMulticast : 0);
  uint16_t frag = ntohs(h.frag_off);
  if (frag & (IP_MF | IP_OFFMASK)) {
    p = ip_reass(st, p, h, hlen, ip);
    if (!p) return;
  } else {
    p->trim_front(hlen);
  }
  // Raw sockets get a copy; the transport still sees the packet.
  bool raw_took = raw_input(st, *p, ip);
  if (ip.proto == IPPROTO_ICMP) {
    bump(s.InDelivers);
    icmp_input(st.kernel, p, ip);
    return;
  }
  if (ip_deliver(st, p, ip, s.InDelivers)) return;
  if (raw_took) {
    bump(s.InDelivers);
    Pkt::free(p);
    return;
  }
  // Protocol unreachable (no raw socket wanted it either).
  bump(s.InUnknownProtos);
  uint8_t first[8] = {};
  size_t n = p->len() < 8 ? p->len() : 8;
  p->copy_out(0, n, first);
  uint8_t hdr[20];
  iphdr oh = h;
  oh.ihl = 5;
  oh.tot_len = htons(static_cast<uint16_t>(20 + p->len()));
  std::memcpy(hdr, &oh, 20);
  if (kind == 1) icmp_error(st, hdr, 20, first, n, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH, 0);
  Pkt::free(p);
}

}  // namespace rump
