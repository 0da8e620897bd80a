// IPv4 output: route, source address, the header, a partial checksum
// finished for devices that need it, fragmentation when larger than the
// interface MTU (RFC 791), and the hand-off to the device.
#include <linux/if_ether.h>
#include <netinet/ip.h>

#include <cstring>

#include "kern/kernel.h"
#include "net/inet/ip_var.h"

namespace rump {

// IPv6 output (net/inet/ip6.cc).
Result<void> ip6_output(InetState& st, Pkt* p, const IpAddr& src, const IpAddr& dst, uint8_t proto,
                        const IpOutOpts& opts);
Result<IpAddr> ip6_select_source(InetState& st, const IpAddr& dst, int oif);

namespace {

void bump(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

// The source address for dst through ifp (if_lock_ taken here).
Result<InAddr> source4(InetState& st, Ifnet& ifp, InAddr dst, bool local) {
  if (local) {
    if (dst.loopback()) return InAddr::host(0x7f000001);
    return dst;  // one of ours: talk to it from itself
  }
  SharedLocker g(st.if_lock_);
  for (int i = 0; i < ifp.naddr4; i++)
    if ((ifp.addr4[i].addr.s & ifp.addr4[i].mask.s) == (dst.s & ifp.addr4[i].mask.s)) return ifp.addr4[i].addr;
  // Else the first address of a wider scope than host (Linux's
  // inet_select_addr skips 127/8 for other destinations), or any.
  for (int i = 0; i < ifp.naddr4; i++)
    if (!ifp.addr4[i].addr.loopback() || dst.loopback()) return ifp.addr4[i].addr;
  if (ifp.naddr4) return ifp.addr4[0].addr;
  return err(EADDRNOTAVAIL);
}

bool is_broadcast(InetState& st, Ifnet& ifp, InAddr dst) {
  if (dst.limited_broadcast()) return true;
  SharedLocker g(st.if_lock_);
  for (int i = 0; i < ifp.naddr4; i++)
    if (ifp.addr4[i].plen < 31 && ifp.addr4[i].bcast == dst) return true;
  return false;
}

void fill_header(char* at, InAddr src, InAddr dst, uint8_t proto, uint8_t ttl, uint8_t tos, uint16_t id,
                 uint16_t frag, size_t tot) {
  iphdr h{};
  h.version = 4;
  h.ihl = 5;
  h.tos = tos;
  h.tot_len = htons(static_cast<uint16_t>(tot));
  h.id = id;
  h.frag_off = htons(frag);
  h.ttl = ttl;
  h.protocol = proto;
  h.saddr = src.s;
  h.daddr = dst.s;
  h.check = 0;
  h.check = htons(in_cksum(&h, sizeof h));
  std::memcpy(at, &h, sizeof h);
}

}  // namespace

Result<RouteResult> ip_route_out(InetState& st, const IpAddr& dst, const IpOutOpts& opts,
                                 std::atomic<uint64_t>& no_routes) {
  // A forced interface (a scope id) does not hide our own addresses:
  // they are reached through lo all the same (Linux's local table comes
  // first).
  if (opts.oif && !ip_is_local(st.kernel, dst)) {
    RouteResult rt;
    rt.ifp = st.find_if(opts.oif);
    if (!rt.ifp || !rt.ifp->up()) {
      bump(no_routes);
      return err(ENETUNREACH);
    }
    rt.nexthop = dst;
    return rt;
  }
  Result<RouteResult> r = route_lookup(st, dst);
  if (!r.ok()) bump(no_routes);
  return r;
}

Result<char*> ip_prepend_header(Ifnet& ifp, Pkt* p, size_t hlen, std::atomic<uint64_t>& discards) {
  if (p->meta.csum == kCsumPartial && !ifp.no_csum.load(std::memory_order_relaxed)) {
    Result<void> c = pkt_csum_finish(*p);
    if (!c.ok()) {
      Pkt::free(p);
      return err(c.error());
    }
  }
  Result<char*> at = p->prepend(hlen);
  if (!at.ok()) {
    bump(discards);
    Pkt::free(p);
    return err(ENOBUFS);
  }
  if (p->meta.csum == kCsumPartial) p->meta.csum_start += hlen;
  return at;
}

Result<void> ip_send_if(Ifnet& ifp, Pkt* p, const IpAddr& nexthop, uint16_t ethertype,
                        std::atomic<uint64_t>& discards) {
  Result<void> r = ifp.ops().output(ifp, p, nexthop, ethertype);
  if (!r.ok()) {
    bump(discards);
    ifp.counters.oerrors.fetch_add(1, std::memory_order_relaxed);
  }
  return r;
}

bool ip_deliver(InetState& st, Pkt* p, const IpHdrInfo& ip, std::atomic<uint64_t>& delivers) {
  const InetProto* pr = inet_find_proto(ip.proto);
  if (!pr) return false;
  bump(delivers);
  pr->input(st.kernel, p, ip);
  return true;
}

Result<IpAddr> ip_select_source(Kernel& k, const IpAddr& dst, int oif) {
  InetState* st = inet_state_or_null(k);
  if (!st) return err(ENETDOWN);
  if (dst.family == AF_INET6) return ip6_select_source(*st, dst, oif);
  RouteResult rt = TRY(route_lookup(*st, dst));
  InAddr a = TRY(source4(*st, *rt.ifp, dst.v4, rt.local));
  return IpAddr::of(a);
}

uint32_t ip_path_mtu(Kernel& k, const IpAddr& dst, uint32_t* tso_max) {
  if (tso_max) *tso_max = 0;
  InetState* st = inet_state_or_null(k);
  if (!st) return 0;
  Result<RouteResult> rt = route_lookup(*st, dst);
  if (!rt.ok()) return 0;
  uint32_t mtu = rt->ifp->mtu.load(std::memory_order_relaxed);
  uint32_t p = st->pmtu_of(dst);
  if (p && p < mtu) return p;
  if (tso_max) *tso_max = rt->ifp->tso_max.load(std::memory_order_relaxed);
  return mtu;
}

Result<void> ip_output(Kernel& k, Pkt* p, const IpAddr& src, const IpAddr& dst, uint8_t proto, const IpOutOpts& opts) {
  InetState* stp = inet_state_or_null(k);
  if (!stp) {
    Pkt::free(p);
    return err(ENETDOWN);
  }
  InetState& st = *stp;
  if (dst.family == AF_INET6) return ip6_output(st, p, src, dst, proto, opts);
  IpStats& s = st.ip_stats;
  bump(s.OutRequests);
  if (dst.family != AF_INET) {
    Pkt::free(p);
    return err(EAFNOSUPPORT);
  }
  Result<RouteResult> r = ip_route_out(st, dst, opts, s.OutNoRoutes);
  if (!r.ok()) {
    Pkt::free(p);
    return err(r.error());
  }
  RouteResult rt = std::move(r.value());
  Ifnet& ifp = *rt.ifp;
  if (is_broadcast(st, ifp, dst.v4)) {
    if (!opts.broadcast) {
      Pkt::free(p);
      return err(EACCES);
    }
    p->meta.flags |= kPktBroadcast;
  }
  InAddr sa;
  if (src.family == AF_INET && !src.v4.any()) {
    sa = src.v4;
  } else {
    Result<InAddr> a = source4(st, ifp, dst.v4, rt.local);
    if (!a.ok()) {
      Pkt::free(p);
      return err(a.error());
    }
    sa = a.value();
  }
  uint8_t ttl = static_cast<uint8_t>(opts.ttl >= 0 ? opts.ttl : st.ip_default_ttl.load(std::memory_order_relaxed));
  size_t mtu = ifp.mtu.load(std::memory_order_relaxed);
  if (uint32_t pm = st.pmtu_of(dst); pm && pm < mtu) mtu = pm;
  auto send_one = [&](Pkt* q) -> Result<void> {
    size_t tot = sizeof(iphdr) + q->len();
    uint16_t id = htons(static_cast<uint16_t>(st.ip_id_.fetch_add(1, std::memory_order_relaxed)));
    if (tot <= mtu || ip_tso_whole(ifp, *q, tot)) {
      char* at = TRY(ip_prepend_header(ifp, q, sizeof(iphdr), s.OutDiscards));
      fill_header(at, sa, dst.v4, proto, ttl, opts.tos, id, opts.df ? IP_DF : 0, tot);
      return ip_send_if(ifp, q, rt.nexthop, ETH_P_IP, s.OutDiscards);
    }
    return ip_send_fragments(ifp, q, mtu, sizeof(iphdr), opts.df, rt.nexthop, ETH_P_IP, s,
                             [&](char* at, size_t off, size_t n, bool more) {
                               uint16_t frag = static_cast<uint16_t>(off / 8) | (more ? IP_MF : 0);
                               fill_header(at, sa, dst.v4, proto, ttl, opts.tos, id, frag, sizeof(iphdr) + n);
                             });
  };
  return ip_send_gso(ifp, p, sizeof(iphdr), mtu, send_one);
}

bool ip_tso_whole(const Ifnet& ifp, const Pkt& p, size_t tot) {
  return p.meta.gso_size != 0 && tot <= ifp.tso_max.load(std::memory_order_relaxed) && tot <= 65535;
}

void tcp_gso_segment(Pkt* p, PktList& out) {
  size_t len = p->len();
  size_t mss = p->meta.gso_size;
  uint8_t h[60];
  if (len < 20 || mss == 0) {
    Pkt::free(p);
    return;
  }
  p->copy_out(0, 20, h);
  size_t hl = (h[12] >> 4) * 4u;
  if (hl < 20 || hl > len || len > 65535 || p->meta.csum != kCsumPartial) {
    Pkt::free(p);
    return;
  }
  p->copy_out(0, hl, h);
  uint32_t seq0;
  std::memcpy(&seq0, h + 4, 4);
  seq0 = ntohl(seq0);
  uint16_t sum0;
  std::memcpy(&sum0, h + 16, 2);
  uint8_t flags = h[13];
  size_t payload = len - hl;
  for (size_t off = 0; off < payload; off += mss) {
    size_t n = payload - off < mss ? payload - off : mss;
    Result<Pkt*> c = p->copy(hl + off, n, kPktHeadroom + hl);
    if (!c.ok()) break;  // the rest is lost as on a wire: retransmission recovers it
    Pkt* q = c.value();
    char* at = q->prepend(hl).value();  // the copy has the headroom
    std::memcpy(at, h, hl);
    uint32_t seq = htonl(seq0 + static_cast<uint32_t>(off));
    std::memcpy(at + 4, &seq, 4);
    bool last = off + n == payload;
    // FIN and PSH belong to the last piece, CWR to the first (as Linux's
    // tcp_gso_segment).
    at[13] = static_cast<char>(flags & ~((last ? 0 : 0x09) | (off ? 0x80 : 0)));
    {
      // The field holds the pseudo-header sum for the whole length: the
      // piece's differs in the length word only (RFC 1624 arithmetic).
      uint32_t v = ntohs(sum0) + (~static_cast<uint32_t>(len) & 0xffff) + static_cast<uint32_t>(hl + n);
      while (v >> 16) v = (v & 0xffff) + (v >> 16);
      uint16_t w = htons(static_cast<uint16_t>(v));
      std::memcpy(at + 16, &w, 2);
      q->meta.csum = kCsumPartial;
      q->meta.csum_start = 0;
      q->meta.csum_offset = 16;
    }
    q->meta.gso_size = 0;
    out.push_back(*q);
  }
  Pkt::free(p);
}

}  // namespace rump
