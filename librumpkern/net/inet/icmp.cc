// ICMP for IPv4 (RFC 792, RFC 1122 3.2.2): echo replies, the errors this
// host sends (port and protocol unreachable, time exceeded in reassembly,
// fragmentation needed is the transports' EMSGSIZE), and the errors it
// receives, handed to the transport of the packet they quote as an errno
// (Linux's icmp_err_convert table).
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>

#include <cstring>

#include "kern/kernel.h"
#include "net/inet/ip_var.h"

namespace rump {

namespace {

void bump(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

int unreach_errno(uint8_t code) {
  switch (code) {
    case ICMP_NET_UNREACH: return ENETUNREACH;
    case ICMP_HOST_UNREACH: return EHOSTUNREACH;
    case ICMP_PROT_UNREACH: return ENOPROTOOPT;
    case ICMP_PORT_UNREACH: return ECONNREFUSED;
    case ICMP_FRAG_NEEDED: return EMSGSIZE;
    case ICMP_SR_FAILED: return EOPNOTSUPP;
    case ICMP_NET_UNKNOWN: return ENETUNREACH;
    case ICMP_HOST_UNKNOWN: return EHOSTDOWN;
    case ICMP_HOST_ISOLATED: return ENONET;
    case ICMP_NET_ANO: return ENETUNREACH;
    case ICMP_HOST_ANO: return EHOSTUNREACH;
    case ICMP_NET_UNR_TOS: return ENETUNREACH;
    case ICMP_HOST_UNR_TOS: return EHOSTUNREACH;
    case ICMP_PKT_FILTERED: return EHOSTUNREACH;
    default: return EHOSTUNREACH;
  }
}

void send_icmp(InetState& st, Pkt* p, const IpAddr& src, const IpAddr& dst, uint8_t tos) {
  // The checksum covers the ICMP message only.
  uint16_t c = in_cksum_fold(pkt_cksum_add(*p, 0, p->len()));
  uint16_t be = htons(c);
  p->copy_in(2, 2, &be);
  IpOutOpts o;
  o.tos = tos;
  bump(st.icmp_stats.OutMsgs);
  if (!ip_output(st.kernel, p, src, dst, IPPROTO_ICMP, o).ok()) bump(st.icmp_stats.OutErrors);
}

void echo_reply(InetState& st, Pkt* p, const IpHdrInfo& ip) {
  bump(st.icmp_stats.InEchos);
  // RFC 1122 3.2.2.6: a host may ignore echo to broadcast; Linux does by
  // default (icmp_echo_ignore_broadcasts).
  if (ip.flags & (kPktBroadcast | kPktMulticast)) {
    Pkt::free(p);
    return;
  }
  uint8_t h[4] = {ICMP_ECHOREPLY, 0, 0, 0};
  p->copy_in(0, 1, h);
  p->copy_in(2, 2, h + 2);
  p->meta = PktMeta();
  bump(st.icmp_stats.OutEchoReps);
  send_icmp(st, p, ip.dst, ip.src, ip.tos);
}

void error_input(InetState& st, Pkt* p, const IpHdrInfo& ip, uint8_t type, uint8_t code, uint32_t mtu) {
  // The quoted header and at least 8 bytes of its payload.
  if (p->len() < 8 + sizeof(iphdr) + 8) {
    bump(st.icmp_stats.InErrors);
    Pkt::free(p);
    return;
  }
  uint8_t q[8 + 60 + 8];
  size_t n = p->len() < sizeof q ? p->len() : sizeof q;
  p->copy_out(0, n, q);
  Pkt::free(p);
  iphdr oh;
  std::memcpy(&oh, q + 8, sizeof oh);
  size_t ohl = oh.ihl * 4u;
  if (oh.version != 4 || ohl < sizeof(iphdr) || 8 + ohl + 8 > n) {
    bump(st.icmp_stats.InErrors);
    return;
  }
  IpCtlMsg m;
  m.icmp_type = type;
  m.icmp_code = code;
  m.error = type == ICMP_DEST_UNREACH ? unreach_errno(code) : type == ICMP_PARAMETERPROB ? EPROTO : EHOSTUNREACH;
  m.mtu = mtu;
  m.src = IpAddr::of(InAddr{oh.saddr});
  m.dst = IpAddr::of(InAddr{oh.daddr});
  m.proto = oh.protocol;
  m.l4 = q + 8 + ohl;
  m.l4len = n - 8 - ohl;
  // Fragmentation needed (RFC 1191): remember the smaller MTU towards the
  // packet's destination (never below IPv4's 68).
  if (type == ICMP_DEST_UNREACH && code == ICMP_FRAG_NEEDED && mtu >= 68) {
    uint32_t now = st.pmtu_of(m.dst);
    if (now == 0 || mtu < now) st.pmtu_learn(m.dst, mtu);
  }
  (void)ip;
  icmp_notify(st.kernel, m);
}

}  // namespace

void icmp_input(Kernel& k, Pkt* p, const IpHdrInfo& ip) {
  InetState* stp = inet_state_or_null(k);
  if (!stp) {
    Pkt::free(p);
    return;
  }
  InetState& st = *stp;
  IcmpStats& s = st.icmp_stats;
  bump(s.InMsgs);
  if (p->len() < 8) {
    bump(s.InErrors);
    Pkt::free(p);
    return;
  }
  if (p->meta.csum != kCsumVerified && in_cksum_fold(pkt_cksum_add(*p, 0, p->len())) != 0) {
    bump(s.InCsumErrors);
    bump(s.InErrors);
    Pkt::free(p);
    return;
  }
  uint8_t h[8];
  p->copy_out(0, 8, h);
  switch (h[0]) {
    case ICMP_ECHO: echo_reply(st, p, ip); return;
    case ICMP_ECHOREPLY:
      bump(s.InEchoReps);
      if (!ping_input(st, p, ip)) Pkt::free(p);
      return;
    case ICMP_DEST_UNREACH:
      bump(s.InDestUnreachs);
      error_input(st, p, ip, h[0], h[1], static_cast<uint32_t>(h[6] << 8 | h[7]));
      return;
    case ICMP_TIME_EXCEEDED:
      bump(s.InTimeExcds);
      error_input(st, p, ip, h[0], h[1], 0);
      return;
    case ICMP_PARAMETERPROB: error_input(st, p, ip, h[0], h[1], 0); return;
    default: Pkt::free(p); return;
  }
}

void icmp_notify(Kernel& k, const IpCtlMsg& m) {
  const InetProto* pr = inet_find_proto(m.proto);
  if (pr && pr->ctlinput) pr->ctlinput(k, m);
}

void icmp_error(InetState& st, const uint8_t* hdr, size_t hlen, const uint8_t* payload, size_t n, uint8_t type,
                uint8_t code, uint32_t mtu) {
  iphdr oh;
  std::memcpy(&oh, hdr, sizeof oh);
  InAddr src{oh.saddr}, dst{oh.daddr};
  // RFC 1122 3.2.2: never about an ICMP error, a non-first fragment, or a
  // packet from a broadcast/multicast/unspecified source.
  if (ntohs(oh.frag_off) & IP_OFFMASK) return;
  if (src.any() || src.limited_broadcast() || src.multicast() || dst.multicast() || dst.limited_broadcast()) return;
  if (oh.protocol == IPPROTO_ICMP && n >= 1 && payload[0] != ICMP_ECHO && payload[0] != ICMP_ECHOREPLY) return;
  if (!st.icmp_rate_ok()) {
    bump(st.icmp_stats.OutRateLimited);
    return;
  }
  if (n > 8) n = 8;
  Result<Pkt*> r = Pkt::alloc(st.pool, 8 + hlen + n);
  if (!r.ok()) {
    bump(st.icmp_stats.OutErrors);
    return;
  }
  Pkt* p = r.value();
  uint8_t ih[8] = {type, code, 0, 0, 0, 0, static_cast<uint8_t>(mtu >> 8), static_cast<uint8_t>(mtu)};
  p->copy_in(0, 8, ih);
  p->copy_in(8, hlen, hdr);
  p->copy_in(8 + hlen, n, payload);
  if (type == ICMP_DEST_UNREACH) bump(st.icmp_stats.OutDestUnreachs);
  if (type == ICMP_TIME_EXCEEDED) bump(st.icmp_stats.OutTimeExcds);
  // From the address the packet was sent to when it is ours.
  IpAddr from = ip_is_local(st.kernel, IpAddr::of(dst)) ? IpAddr::of(dst) : IpAddr();
  send_icmp(st, p, from, IpAddr::of(src), 0);
}

void ip_send_unreach(Kernel& k, Pkt* p, const IpHdrInfo& ip, int code) {
  InetState* st = inet_state_or_null(k);
  if (st && ip.src.family == AF_INET6) {
    ip6_send_unreach(*st, p, ip);
    return;
  }
  if (!st || ip.src.family != AF_INET || (ip.flags & (kPktBroadcast | kPktMulticast))) {
    Pkt::free(p);
    return;
  }
  // The header as it arrived, near enough: options are not kept.
  iphdr h{};
  h.version = 4;
  h.ihl = 5;
  h.tos = ip.tos;
  h.tot_len = htons(static_cast<uint16_t>(sizeof(iphdr) + p->len()));
  h.ttl = ip.ttl;
  h.protocol = ip.proto;
  h.saddr = ip.src.v4.s;
  h.daddr = ip.dst.v4.s;
  h.check = htons(in_cksum(&h, sizeof h));
  uint8_t first[8] = {};
  size_t n = p->len() < 8 ? p->len() : 8;
  p->copy_out(0, n, first);
  Pkt::free(p);
  icmp_error(*st, reinterpret_cast<const uint8_t*>(&h), sizeof h, first, n, ICMP_DEST_UNREACH,
             static_cast<uint8_t>(code), 0);
}

}  // namespace rump
