// UDP (RFC 768, RFC 1122 4.1) sockets over IPv4 (and IPv6 when it is
// carried): connected and not, SO_BROADCAST, SO_REUSEADDR/SO_REUSEPORT,
// checksums (left to the device on send: loopback needs none), IP_TTL and
// IP_TOS, and Linux's errors: ECONNREFUSED on a connected socket after an
// ICMP port unreachable (reported by the next call), EDESTADDRREQ,
// EACCES for a broadcast without SO_BROADCAST, EMSGSIZE beyond 65507.
//
// Data path: send copies the user's bytes once, into a packet whose
// headroom takes the UDP and IP headers; input hands a large payload to a
// record of the receiving socket by reference (the record holds the
// packet) and copies a small one into it (inet_dgram_deliver_pkt); recvmsg
// copies it out. Over lo that is one copy on each side.
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/udp.h>

#include <cstring>

#include "kern/kernel.h"
#include "kern/proc.h"
#include "net/inet/inet_sock.h"
#include "vfs/file.h"

namespace rump {

namespace {

void bump(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

constexpr size_t kMaxPayload4 = 65535 - sizeof(iphdr) - sizeof(udphdr);
constexpr size_t kMaxPayload6 = 65535 - sizeof(udphdr);

Result<void> udp_attach(Socket& so) { return inet_sock_attach(so, so.domain().family); }

void udp_detach(Socket& so) { inet_sock_detach(so); }

Result<size_t> udp_send_msg(Lwp& l, Socket& so, SockMsg& m, int flags, bool nonblock) {
  InetCb& cb = inet_cb(so);
  InetState& st = *cb.st;
  size_t len = m.uio->resid;
  IpAddr dst;
  uint16_t dport;
  TRY(inet_sock_send_check(so));
  TRY(inet_dgram_dest(so, m, dst, dport));
  if (m.to && dport == 0) return err(EINVAL);
  if (len > (dst.family == AF_INET6 ? kMaxPayload6 : kMaxPayload4)) return err(EMSGSIZE);
  int oif = TRY(inet_sock_send_scope(so, m.to, dst, false));
  InPcbEnds e = TRY(inet_sock_autobind(so));
  IpAddr src = e.laddr;
  if (src.family == 0 || (oif && src.family == AF_INET6 && src.v6.any()))
    src = TRY(ip_select_source(so.kernel(), dst, oif));
  Pkt* p = TRY(Pkt::alloc(st.pool, sizeof(udphdr)));
  Result<void> c = p->append_uio(*m.uio, len);
  if (!c.ok()) {
    Pkt::free(p);
    return err(c.error());
  }
  udphdr uh{};
  uh.source = htons(e.lport);
  uh.dest = htons(dport);
  uh.len = htons(static_cast<uint16_t>(sizeof(udphdr) + len));
  // The pseudo-header sum goes in the field; the device (or ip_output)
  // finishes the checksum over the whole datagram.
  uint32_t ps = src.family == AF_INET ? in_pseudo4(src.v4.s, dst.v4.s, IPPROTO_UDP, sizeof(udphdr) + len)
                                      : in_pseudo6(src.v6.b, dst.v6.b, IPPROTO_UDP, sizeof(udphdr) + len);
  uint16_t folded = static_cast<uint16_t>(~in_cksum_fold(ps));
  uh.check = htons(folded);
  p->copy_in(0, sizeof uh, &uh);
  p->meta.csum = kCsumPartial;
  p->meta.csum_start = 0;
  p->meta.csum_offset = offsetof(udphdr, check);
  IpOutOpts o = inet_sock_out_opts(so);
  if (oif) o.oif = oif;
  Result<void> r = ip_output(so.kernel(), p, src, dst, IPPROTO_UDP, o);
  if (!r.ok()) {
    if (r.error() == ENOBUFS) bump(st.udp_stats.SndbufErrors);
    return err(r.error());
  }
  bump(st.udp_stats.OutDatagrams);
  return len;
}

// The legacy send hook is never reached (send_msg takes every send).
Result<void> udp_send(Lwp& l, Socket& so, SockRecord* rec, const SockAddr* to, bool nonblock) {
  return err(EOPNOTSUPP);
}

void udp_input(Kernel& k, Pkt* p, const IpHdrInfo& ip) {
  InetState* stp = inet_state_or_null(k);
  if (!stp) {
    Pkt::free(p);
    return;
  }
  InetState& st = *stp;
  UdpStats& s = st.udp_stats;
  Result<char*> r = p->pullup(sizeof(udphdr));
  if (!r.ok()) {
    bump(s.InErrors);
    Pkt::free(p);
    return;
  }
  udphdr uh;
  std::memcpy(&uh, r.value(), sizeof uh);
  size_t ulen = ntohs(uh.len);
  if (ulen < sizeof(udphdr) || ulen > p->len()) {
    bump(s.InErrors);
    Pkt::free(p);
    return;
  }
  if (ulen < p->len()) p->trim_back(p->len() - ulen);
  // A zero checksum means none was computed (IPv4 only, RFC 768).
  bool check = p->meta.csum != kCsumVerified && (uh.check != 0 || ip.src.family == AF_INET6);
  if (check) {
    uint32_t ps = ip.src.family == AF_INET ? in_pseudo4(ip.src.v4.s, ip.dst.v4.s, IPPROTO_UDP, ulen)
                                           : in_pseudo6(ip.src.v6.b, ip.dst.v6.b, IPPROTO_UDP, ulen);
    if (in_cksum_fold(pkt_cksum_add(*p, 0, ulen, ps)) != 0) {
      bump(s.InCsumErrors);
      bump(s.InErrors);
      Pkt::free(p);
      return;
    }
  }
  uint16_t sport = ntohs(uh.source), dport = ntohs(uh.dest);
  if (ip.flags & (kPktBroadcast | kPktMulticast)) {
    bool any = false;
    st.udp.for_each_match(ip.src, sport, ip.dst, dport, [&](Socket& so) {
      // Every socket bound to the port gets one (SO_BROADCAST governs
      // sending only, as Linux).
      if (inet_dgram_deliver(st, so, *p, sizeof(udphdr), ip, sport)) any = true;
      else bump(s.RcvbufErrors);
    });
    if (any) bump(s.InDatagrams);
    else bump(s.NoPorts);
    Pkt::free(p);
    return;
  }
  RefPtr<Socket> so = st.udp.lookup(ip.src, sport, ip.dst, dport);
  if (!so) {
    bump(s.NoPorts);
    ip_send_unreach(k, p, ip, ICMP_PORT_UNREACH);
    return;
  }
  Pkt* own = p;
  if (inet_dgram_deliver_pkt(st, *so, *p, sizeof(udphdr), ip, sport, own)) {
    bump(s.InDatagrams);
  } else {
    bump(s.RcvbufErrors);
    bump(s.InErrors);
  }
  Pkt::free(own);
}

// An ICMP error about a datagram we sent: a connected socket learns it
// (Linux reports only hard errors, and only to connected sockets, without
// IP_RECVERR).
void udp_ctlinput(Kernel& k, const IpCtlMsg& m) {
  InetState* st = inet_state_or_null(k);
  if (!st || m.l4len < 4) return;
  uint16_t sport = static_cast<uint16_t>(m.l4[0] << 8 | m.l4[1]);
  uint16_t dport = static_cast<uint16_t>(m.l4[2] << 8 | m.l4[3]);
  if (m.error == EMSGSIZE) return;  // path MTU: not a socket error
  RefPtr<Socket> so = st->udp.lookup(m.dst, dport, m.src, sport, false);
  if (!so) return;
  MutexLocker g(so->lock_);
  so->error_ = m.error;
  so->wake_locked();
}

const InetProto kUdpProto = {IPPROTO_UDP, &udp_input, &udp_ctlinput};
const InetProtoRegistrar g_udp_registrar(&kUdpProto);

Protosw make_udp_protosw() {
  Protosw p{};
  p.type = SOCK_DGRAM;
  p.protocol = IPPROTO_UDP;
  p.stream = false;
  p.connection = false;
  p.attach = &udp_attach;
  p.detach = &udp_detach;
  p.bind = &inet_sock_bind;
  p.listen = [](Lwp&, Socket&, int) -> Result<void> { return err(EOPNOTSUPP); };
  p.connect = &inet_dgram_connect;
  p.connect2 = nullptr;
  p.send = &udp_send;
  p.shutdown = &inet_dgram_shutdown;
  p.sockname = &inet_sock_sockname;
  p.peername = &inet_sock_peername;
  p.poll_locked = &inet_dgram_poll_locked;
  p.wants_creds = nullptr;
  p.source_name = &inet_dgram_source_name;
  p.free_pcb = &inet_sock_free_pcb;
  p.send_msg = &udp_send_msg;
  p.ctloutput = &inet_sock_ctloutput;
  return p;
}
const Protosw kUdpProtosw = make_udp_protosw();
const InetProtoswRegistrar g_udp4(AF_INET, kUdpProtosw);
const InetProtoswRegistrar g_udp6(AF_INET6, kUdpProtosw);

}  // namespace

}  // namespace rump
