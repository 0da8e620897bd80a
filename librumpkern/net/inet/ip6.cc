// IPv6 (RFC 8200) over the same interfaces and routes as IPv4: input with
// header checks and extension headers skipped (hop-by-hop, routing,
// destination options), fragments reassembled (ip_reass.cc), output
// fragmented to the path MTU (RFC 8201: ICMPv6 packet too big lowers it,
// never below 1280), source selection, and ICMPv6 (RFC 4443): echo
// replies, port unreachable for the transports, time exceeded when
// reassembly gives up, neighbour discovery handed to nd6.cc, and errors
// handed to the transport of the packet they quote.
#include <linux/if_ether.h>
#include <netinet/icmp6.h>
#include <netinet/ip6.h>

#include <cstring>

#include "kern/clock.h"
#include "kern/kernel.h"
#include "net/inet/ip_var.h"

namespace rump {

namespace {

void bump(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

bool has_addr6_locked(const Ifnet& ifp, const In6Addr& a) {
  for (int i = 0; i < ifp.naddr6; i++)
    if (ifp.addr6[i].addr == a) return true;
  return false;
}

// 0 not ours, 1 unicast to us, 3 multicast we take (all-nodes, the
// solicited-node groups of ifp's addresses).
int classify_dst6(InetState& st, Ifnet& ifp, const In6Addr& dst) {
  if (dst.multicast()) return nd6_joined(ifp, dst) ? 3 : 0;
  SharedLocker g(st.if_lock_);
  for (const Ifnet& i : st.ifs_)
    if (has_addr6_locked(i, dst)) return 1;
  return 0;
}

void send_icmp6(InetState& st, Pkt* p, const IpAddr& src, const IpAddr& dst) {
  // The checksum covers a pseudo-header (RFC 4443 2.3).
  uint16_t zero = 0;
  p->copy_in(2, 2, &zero);
  uint32_t ps = in_pseudo6(src.v6.b, dst.v6.b, IPPROTO_ICMPV6, static_cast<uint32_t>(p->len()));
  uint16_t c = htons(in_cksum_fold(pkt_cksum_add(*p, 0, p->len(), ps)));
  p->copy_in(2, 2, &c);
  bump(st.icmp6_stats.OutMsgs);
  IpOutOpts o;
  if (!ip_output(st.kernel, p, src, dst, IPPROTO_ICMPV6, o).ok()) bump(st.icmp6_stats.OutErrors);
}

}  // namespace

void icmp6_error_quote(InetState& st, const uint8_t* hdr, const uint8_t* payload, size_t n, uint8_t type,
                       uint8_t code, uint32_t param) {
  ip6_hdr h;
  std::memcpy(&h, hdr, sizeof h);
  In6Addr src, dst;
  std::memcpy(src.b, &h.ip6_src, 16);
  std::memcpy(dst.b, &h.ip6_dst, 16);
  // Never about a multicast destination (but for packet too big) or an
  // unspecified/multicast source (RFC 4443 2.4); never about an ICMPv6
  // error.
  if (src.any() || src.multicast() || (dst.multicast() && type != ICMP6_PACKET_TOO_BIG)) return;
  if (h.ip6_nxt == IPPROTO_ICMPV6 && n >= 1 && payload[0] < 128) return;
  if (!st.icmp_rate_ok()) {
    bump(st.icmp6_stats.OutRateLimited);
    return;
  }
  if (n > 1280 - 40 - 8 - 40) n = 1280 - 40 - 8 - 40;
  Result<Pkt*> r = Pkt::alloc(st.pool, 8 + 40 + n);
  if (!r.ok()) {
    bump(st.icmp6_stats.OutErrors);
    return;
  }
  Pkt* p = r.value();
  uint8_t ih[8] = {type, code, 0, 0, static_cast<uint8_t>(param >> 24), static_cast<uint8_t>(param >> 16),
                   static_cast<uint8_t>(param >> 8), static_cast<uint8_t>(param)};
  p->copy_in(0, 8, ih);
  p->copy_in(8, 40, &h);
  p->copy_in(48, n, payload);
  switch (type) {
    case ICMP6_DST_UNREACH: bump(st.icmp6_stats.OutDestUnreachs); break;
    case ICMP6_PACKET_TOO_BIG: bump(st.icmp6_stats.OutPktTooBigs); break;
    case ICMP6_TIME_EXCEEDED: bump(st.icmp6_stats.OutTimeExcds); break;
    case ICMP6_PARAM_PROB: bump(st.icmp6_stats.OutParmProblems); break;
    default: break;
  }
  // From the address it was sent to when that is ours (never from a
  // multicast group).
  IpAddr from = !dst.multicast() && ip_is_local(st.kernel, IpAddr::of(dst)) ? IpAddr::of(dst) : IpAddr();
  send_icmp6(st, p, from, IpAddr::of(src));
}

void icmp6_error_pkt(InetState& st, const Pkt& p, uint8_t type, uint8_t code, uint32_t param) {
  if (p.len() < sizeof(ip6_hdr)) return;
  uint8_t buf[1280];
  size_t n = p.len() < sizeof buf ? p.len() : sizeof buf;
  p.copy_out(0, n, buf);
  icmp6_error_quote(st, buf, buf + 40, n - 40, type, code, param);
}

namespace {

void fill_header6(char* at, const In6Addr& src, const In6Addr& dst, uint8_t nxt, uint8_t hlim, uint8_t tclass,
                  size_t plen) {
  ip6_hdr h{};
  h.ip6_flow = htonl(6u << 28 | static_cast<uint32_t>(tclass) << 20);
  h.ip6_plen = htons(static_cast<uint16_t>(plen));
  h.ip6_nxt = nxt;
  h.ip6_hlim = hlim;
  std::memcpy(&h.ip6_src, src.b, 16);
  std::memcpy(&h.ip6_dst, dst.b, 16);
  std::memcpy(at, &h, sizeof h);
}

// An ICMPv6 error about a received packet (h: its IPv6 header; payload:
// what followed it, as much as fits).
void icmp6_error(InetState& st, const ip6_hdr& h, const Pkt& payload, uint8_t type, uint8_t code, uint32_t param) {
  uint8_t buf[1280];
  size_t n = payload.len() < sizeof buf ? payload.len() : sizeof buf;
  payload.copy_out(0, n, buf);
  icmp6_error_quote(st, reinterpret_cast<const uint8_t*>(&h), buf, n, type, code, param);
}

void icmp6_input(InetState& st, Ifnet& ifp, Pkt* p, const IpHdrInfo& ip) {
  Icmp6Stats& s = st.icmp6_stats;
  bump(s.InMsgs);
  if (p->len() < 8) {
    bump(s.InErrors);
    Pkt::free(p);
    return;
  }
  uint32_t ps = in_pseudo6(ip.src.v6.b, ip.dst.v6.b, IPPROTO_ICMPV6, static_cast<uint32_t>(p->len()));
  if (p->meta.csum != kCsumVerified && in_cksum_fold(pkt_cksum_add(*p, 0, p->len(), ps)) != 0) {
    bump(s.InCsumErrors);
    bump(s.InErrors);
    Pkt::free(p);
    return;
  }
  uint8_t h[8];
  p->copy_out(0, 8, h);
  switch (h[0]) {
    case ICMP6_ECHO_REQUEST: {
      bump(s.InEchos);
      if (ip.flags & kPktMulticast) break;  // Linux answers; this host does not (no MLD here)
      uint8_t t = ICMP6_ECHO_REPLY;
      p->copy_in(0, 1, &t);
      p->meta = PktMeta();
      bump(s.OutEchoReps);
      send_icmp6(st, p, ip.dst, ip.src);
      return;
    }
    case ICMP6_ECHO_REPLY:
      bump(s.InEchoReps);
      if (ping_input(st, p, ip)) return;
      break;
    case ND_NEIGHBOR_SOLICIT:
    case ND_NEIGHBOR_ADVERT: nd6_input(st, ifp, p, ip, h[0]); return;
    case ND_ROUTER_ADVERT: nd6_ra_input(st, ifp, p, ip); return;
    case ICMP6_DST_UNREACH:
    case ICMP6_PACKET_TOO_BIG:
    case ICMP6_TIME_EXCEEDED:
    case ICMP6_PARAM_PROB: {
      bump(h[0] == ICMP6_DST_UNREACH      ? s.InDestUnreachs
           : h[0] == ICMP6_PACKET_TOO_BIG ? s.InPktTooBigs
           : h[0] == ICMP6_TIME_EXCEEDED  ? s.InTimeExcds
                                          : s.InParmProblems);
      if (p->len() < 8 + 40 + 8) {
        bump(s.InErrors);
        break;
      }
      uint8_t q[8 + 40 + 8];
      p->copy_out(0, sizeof q, q);
      ip6_hdr oh;
      std::memcpy(&oh, q + 8, 40);
      IpCtlMsg m;
      m.icmp_type = h[0];
      m.icmp_code = h[1];
      m.error = h[0] == ICMP6_DST_UNREACH ? (h[1] == ICMP6_DST_UNREACH_NOPORT ? ECONNREFUSED : EHOSTUNREACH)
                : h[0] == ICMP6_PACKET_TOO_BIG ? EMSGSIZE
                : h[0] == ICMP6_PARAM_PROB     ? EPROTO
                                               : EHOSTUNREACH;
      m.mtu = static_cast<uint32_t>(h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7]);
      In6Addr a;
      std::memcpy(a.b, &oh.ip6_src, 16);
      m.src = IpAddr::of(a);
      std::memcpy(a.b, &oh.ip6_dst, 16);
      m.dst = IpAddr::of(a);
      m.proto = oh.ip6_nxt;  // extension headers in the quote are not walked
      m.l4 = q + 48;
      m.l4len = 8;
      if (h[0] == ICMP6_PACKET_TOO_BIG) {
        // RFC 8201: remember the smaller path MTU, never below IPv6's
        // minimum link MTU.
        if (m.mtu < 1280) m.mtu = 1280;
        uint32_t now = st.pmtu_of(m.dst);
        if (now == 0 || m.mtu < now) st.pmtu_learn(m.dst, m.mtu);
      }
      icmp_notify(st.kernel, m);
      break;
    }
    default: break;
  }
  Pkt::free(p);
}

}  // namespace

void ip6_input(InetState& st, Ifnet& ifp, Pkt* p) {
  Ip6Stats& s = st.ip6_stats;
  bump(s.InReceives);
  Result<char*> r = p->pullup(sizeof(ip6_hdr));
  if (!r.ok()) {
    bump(s.InHdrErrors);
    Pkt::free(p);
    return;
  }
  ip6_hdr h;
  std::memcpy(&h, r.value(), sizeof h);
  if ((h.ip6_vfc >> 4) != 6) {
    bump(s.InHdrErrors);
    Pkt::free(p);
    return;
  }
  size_t plen = ntohs(h.ip6_plen);
  if (plen + sizeof h > p->len()) {
    bump(s.InTruncatedPkts);
    Pkt::free(p);
    return;
  }
  p->trim_back(p->len() - plen - sizeof h);
  In6Addr src, dst;
  std::memcpy(src.b, &h.ip6_src, 16);
  std::memcpy(dst.b, &h.ip6_dst, 16);
  if (src.multicast() || (src.loopback() && !(ifp.flags.load() & IFF_LOOPBACK))) {
    bump(s.InAddrErrors);
    Pkt::free(p);
    return;
  }
  int kind = classify_dst6(st, ifp, dst);
  if (kind == 0) {
    bump(s.InAddrErrors);
    Pkt::free(p);
    return;
  }
  IpHdrInfo ip;
  ip.src = IpAddr::of(src);
  ip.dst = IpAddr::of(dst);
  ip.ttl = h.ip6_hlim;
  ip.tos = static_cast<uint8_t>(ntohl(h.ip6_flow) >> 20);
  ip.ifindex = ifp.index;
  ip.flags = (p->meta.flags & kPktLoopback) | (kind == 3 ? kPktMulticast : 0);
  p->trim_front(sizeof h);
  uint8_t nxt = h.ip6_nxt;
  bool reassembled = false;
  // Extension headers (RFC 8200 4): each begins with the next header and
  // its length in 8-byte units beyond the first 8. Hop-by-hop only first;
  // a fragment header hands the rest to reassembly, and the whole
  // datagram's fragmentable part goes on from the first fragment's next
  // header.
  for (int n = 0;; n++) {
    if (nxt == IPPROTO_FRAGMENT) {
      ip6_frag fh;
      if (reassembled || p->len() < sizeof fh) {
        bump(s.InHdrErrors);
        Pkt::free(p);
        return;
      }
      p->copy_out(0, sizeof fh, &fh);
      p->trim_front(sizeof fh);
      uint16_t offlg = ntohs(fh.ip6f_offlg);
      bool more = offlg & 1u;
      uint32_t off = offlg & 0xfff8u;
      if (off == 0 && !more) {
        // An atomic fragment (RFC 6946): the packet itself.
        nxt = fh.ip6f_nxt;
        reassembled = true;
        continue;
      }
      bump(s.ReasmReqds);
      // RFC 8200 4.5: a fragment but the last carries a multiple of 8
      // bytes; none makes the datagram longer than 65535.
      size_t unfrag = plen - p->len() - sizeof fh;
      if ((more && (p->len() % 8 != 0 || p->len() == 0)) || unfrag + off + p->len() > 65535) {
        bump(s.InHdrErrors);
        bump(s.ReasmFails);
        uint32_t ptr = more && p->len() % 8 != 0 ? 4 : static_cast<uint32_t>(sizeof h + unfrag + 2);
        if (kind == 1) icmp6_error(st, h, *p, ICMP6_PARAM_PROB, ICMP6_PARAMPROB_HEADER, ptr);
        Pkt::free(p);
        return;
      }
      p = ip6_reass(st, p, h, fh, ip);
      if (!p) return;
      nxt = ip.proto;
      reassembled = true;
      continue;
    }
    bool ext = nxt == IPPROTO_HOPOPTS || nxt == IPPROTO_ROUTING || nxt == IPPROTO_DSTOPTS;
    if (!ext) break;
    uint8_t e[4];
    if (n >= 16 || (nxt == IPPROTO_HOPOPTS && n != 0) || p->len() < 8) {
      bump(s.InHdrErrors);
      Pkt::free(p);
      return;
    }
    p->copy_out(0, 4, e);
    size_t elen = (e[1] + 1u) * 8u;
    // A routing header with segments left is not for this host to follow.
    if (elen > p->len() || (nxt == IPPROTO_ROUTING && e[3] != 0)) {
      bump(s.InHdrErrors);
      Pkt::free(p);
      return;
    }
    nxt = e[0];
    p->trim_front(elen);
  }
  if (nxt == IPPROTO_NONE) {
    Pkt::free(p);
    return;
  }
  ip.proto = nxt;
  // Raw sockets get a copy; the transport still sees the packet.
  bool raw_took = raw_input(st, *p, ip);
  if (nxt == IPPROTO_ICMPV6) {
    bump(s.InDelivers);
    icmp6_input(st, ifp, p, ip);
    return;
  }
  if (ip_deliver(st, p, ip, s.InDelivers)) return;
  if (raw_took) {
    bump(s.InDelivers);
    Pkt::free(p);
    return;
  }
  bump(s.InUnknownProtos);
  if (kind == 1) {
    ip6_hdr oh = h;
    // The pointer (param) names the next-header field that was not
    // understood; extension headers walked are not counted back here.
    icmp6_error(st, oh, *p, ICMP6_PARAM_PROB, ICMP6_PARAMPROB_NEXTHEADER, 6);
  }
  Pkt::free(p);
}

void ip6_send_unreach(InetState& st, Pkt* p, const IpHdrInfo& ip) {
  if (ip.flags & kPktMulticast) {
    Pkt::free(p);
    return;
  }
  ip6_hdr h{};
  h.ip6_flow = htonl(6u << 28 | static_cast<uint32_t>(ip.tos) << 20);
  h.ip6_plen = htons(static_cast<uint16_t>(p->len()));
  h.ip6_nxt = ip.proto;
  h.ip6_hlim = ip.ttl;
  std::memcpy(&h.ip6_src, ip.src.v6.b, 16);
  std::memcpy(&h.ip6_dst, ip.dst.v6.b, 16);
  icmp6_error(st, h, *p, ICMP6_DST_UNREACH, ICMP6_DST_UNREACH_NOPORT, 0);
  Pkt::free(p);
}

Result<IpAddr> ip6_select_source(InetState& st, const IpAddr& dst, int oif) {
  Result<RouteResult> rt = route_lookup(st, dst);
  if (rt.ok() && rt->local) return dst;
  // The interface a scope id or a bound socket chose, else the route's.
  RefPtr<Ifnet> out;
  if (oif) {
    out = st.find_if(oif);
    if (!out) return err(ENETUNREACH);  // as the route lookup with that interface
  } else {
    if (!rt.ok()) return err(rt.error());
    out = rt->ifp;
  }
  SharedLocker g(st.if_lock_);
  Ifnet& ifp = *out;
  // The first address of the destination's scope (RFC 6724 rule 2, in
  // short): link-local and ::1 only for destinations of their own scope;
  // a deprecated one only when no other fits (rule 3).
  int64_t now = mono_now_ns();
  for (bool deprecated_ok : {false, true}) {
    for (int i = 0; i < ifp.naddr6; i++) {
      const In6Addr& a = ifp.addr6[i].addr;
      if (!deprecated_ok && ifp.addr6[i].deprecated(now)) continue;
      if ((!a.linklocal() || dst.v6.linklocal()) && (!a.loopback() || dst.v6.loopback())) return IpAddr::of(a);
    }
  }
  if (ifp.naddr6) return IpAddr::of(ifp.addr6[0].addr);
  return err(EADDRNOTAVAIL);
}

Result<void> ip6_output(InetState& st, Pkt* p, const IpAddr& src, const IpAddr& dst, uint8_t proto,
                        const IpOutOpts& opts) {
  Ip6Stats& s = st.ip6_stats;
  bump(s.OutRequests);
  Result<RouteResult> r = ip_route_out(st, dst, opts, s.OutNoRoutes);
  if (!r.ok()) {
    Pkt::free(p);
    return err(r.error());
  }
  RouteResult rt = std::move(r.value());
  Ifnet& ifp = *rt.ifp;
  IpAddr sa = src;
  if (sa.family != AF_INET6 || sa.v6.any()) {
    Result<IpAddr> a = ip6_select_source(st, dst, opts.oif);
    if (!a.ok()) {
      Pkt::free(p);
      return err(a.error());
    }
    sa = a.value();
  }
  size_t mtu = ifp.mtu.load(std::memory_order_relaxed);
  if (uint32_t m6 = ifp.mtu6.load(std::memory_order_relaxed); m6 && m6 < mtu) mtu = m6;
  if (uint32_t pm = st.pmtu_of(dst); pm && pm < mtu) mtu = pm;
  uint8_t hlim = static_cast<uint8_t>(opts.ttl >= 0 ? opts.ttl : 64);
  if (p->len() > 65535) {
    bump(s.FragFails);
    Pkt::free(p);
    return err(EMSGSIZE);
  }
  auto send_one = [&](Pkt* q) -> Result<void> {
    size_t tot = sizeof(ip6_hdr) + q->len();
    if (tot <= mtu || ip_tso_whole(ifp, *q, tot)) {
      char* at = TRY(ip_prepend_header(ifp, q, sizeof(ip6_hdr), s.OutDiscards));
      fill_header6(at, sa.v6, dst.v6, proto, hlim, opts.tos, q->len() - sizeof(ip6_hdr));
      return ip_send_if(ifp, q, rt.nexthop, ETH_P_IPV6, s.OutDiscards);
    }
    // Fragments (RFC 8200 4.5): each piece behind the IPv6 header and a
    // fragment header.
    uint32_t id = htonl(st.ip6_id_.fetch_add(1, std::memory_order_relaxed) + 1);
    return ip_send_fragments(ifp, q, mtu, sizeof(ip6_hdr) + sizeof(ip6_frag), opts.df, rt.nexthop, ETH_P_IPV6, s,
                             [&](char* at, size_t off, size_t n, bool more) {
                               fill_header6(at, sa.v6, dst.v6, IPPROTO_FRAGMENT, hlim, opts.tos,
                                            sizeof(ip6_frag) + n);
                               ip6_frag fh{};
                               fh.ip6f_nxt = proto;
                               fh.ip6f_offlg = htons(static_cast<uint16_t>(off | (more ? 1 : 0)));
                               fh.ip6f_ident = id;
                               std::memcpy(at + sizeof(ip6_hdr), &fh, sizeof fh);
                             });
  };
  return ip_send_gso(ifp, p, sizeof(ip6_hdr), mtu, send_one);
}

}  // namespace rump
