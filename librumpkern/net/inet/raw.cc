// Raw IPv4 and IPv6 sockets (SOCK_RAW, any protocol; root only, as
// CAP_NET_RAW) and Linux's unprivileged ICMP datagram sockets (SOCK_DGRAM,
// IPPROTO_ICMP or IPPROTO_ICMPV6; for groups in net.ipv4.ping_group_range,
// which Linux applies to both families).
//
// A raw socket receives a copy of every datagram of its protocol for its
// address, IP header first (the header is rebuilt without options), and
// sends its payload under an IP header the stack makes (IP_HDRINCL: the
// caller's own header, whose destination and protocol are used). An IPv6
// raw socket receives the payload alone (RFC 3542 3), ICMPv6 ones only
// the types their ICMP6_FILTER passes, and the stack computes an ICMPv6
// raw socket's checksum (RFC 3542 3.1). A ping
// socket sends ICMP echo requests whose identifier the stack sets to the
// socket's "port" and whose checksum it computes, and receives the echo
// replies carrying that identifier, ICMP header first.
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>

#include <cstring>

#include "kern/kernel.h"
#include "kern/proc.h"
#include "net/inet/inet_sock.h"
#include "net/inet/ip_var.h"
#include "vfs/file.h"

namespace rump {

namespace {

void bump(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

Result<void> raw_attach(Socket& so) {
  if (so.creator_.uid != 0) return err(EPERM);
  TRY(inet_sock_attach(so, so.domain().family));
  InetCb& cb = inet_cb(so);
  inet_sock_sync_opts(so);
  // Filed under its protocol from the start: it receives without bind.
  TRY(cb.table->bind(cb.pcb, IpAddr(), static_cast<uint16_t>(so.protocol_)));
  if (so.protocol_ == IPPROTO_RAW && so.domain().family == AF_INET) cb.hdrincl.store(true);
  if (so.protocol_ == IPPROTO_ICMPV6 && so.domain().family == AF_INET6) cb.v6_csum.store(2);
  return {};
}

Result<void> ping_attach(Socket& so) {
  InetState* st = inet_state_or_null(so.kernel());
  if (!st) return err(EAFNOSUPPORT);
  uint32_t gid = so.creator_.gid;
  if (gid < st->ping_group_lo.load() || gid > st->ping_group_hi.load()) return err(EACCES);
  return inet_sock_attach(so, so.domain().family);
}

// An IPv6 payload's checksum over the pseudo-header (RFC 8200 8.1), put
// at off (ICMPv6: 2, RFC 4443 2.3; a raw socket's IPV6_CHECKSUM): EINVAL
// when the field does not fit. An unset source is the one the route
// gives.
Result<void> raw6_checksum(Kernel& k, Pkt& p, const IpAddr& src, const IpAddr& dst, uint8_t proto, size_t off,
                           int oif) {
  if (p.len() < 2 || off > p.len() - 2) return err(EINVAL);
  IpAddr sa = src;
  if (sa.family != AF_INET6 || sa.v6.any()) sa = TRY(ip_select_source(k, dst, oif));
  uint16_t zero = 0;
  p.copy_in(off, 2, &zero);
  uint32_t ps = in_pseudo6(sa.v6.b, dst.v6.b, proto, static_cast<uint32_t>(p.len()));
  uint16_t c = htons(in_cksum_fold(pkt_cksum_add(p, 0, p.len(), ps)));
  p.copy_in(off, 2, &c);
  return {};
}

Result<void> icmp6_checksum(Kernel& k, Pkt& p, const IpAddr& src, const IpAddr& dst, int oif) {
  if (p.len() < 4) return err(EINVAL);
  return raw6_checksum(k, p, src, dst, IPPROTO_ICMPV6, 2, oif);
}

// The destination of a send: the address given, or the connected peer.
Result<IpAddr> send_dest(Socket& so, SockMsg& m) {
  IpAddr dst;
  uint16_t port;
  TRY(inet_dgram_dest(so, m, dst, port));
  return dst;
}

Result<size_t> raw_send_msg(Lwp& l, Socket& so, SockMsg& m, int flags, bool nonblock) {
  InetCb& cb = inet_cb(so);
  TRY(inet_sock_send_check(so));
  size_t len = m.uio->resid;
  if (len > 65535) return err(EMSGSIZE);
  IpAddr dst = TRY(send_dest(so, m));
  int oif = TRY(inet_sock_send_scope(so, m.to, dst, false));
  Pkt* p = TRY(Pkt::alloc(cb.st->pool, 0));
  Result<void> c = p->append_uio(*m.uio, len);
  if (!c.ok()) {
    Pkt::free(p);
    return err(c.error());
  }
  IpOutOpts o = inet_sock_out_opts(so);
  if (oif) o.oif = oif;
  uint8_t proto = static_cast<uint8_t>(so.protocol_);
  IpAddr src = cb.table->ends(cb.pcb).laddr;
  if (cb.hdrincl.load()) {
    // The caller's header: its protocol, source and TTL are kept; the
    // stack rebuilds the rest (length, id, checksum).
    if (len < sizeof(iphdr)) {
      Pkt::free(p);
      return err(EINVAL);
    }
    iphdr h;
    p->copy_out(0, sizeof h, &h);
    size_t hl = h.ihl * 4u;
    if (h.version != 4 || hl < sizeof(iphdr) || hl > len) {
      Pkt::free(p);
      return err(EINVAL);
    }
    proto = h.protocol;
    if (h.saddr) src = IpAddr::of(InAddr{h.saddr});
    o.ttl = h.ttl;
    o.tos = h.tos;
    p->trim_front(hl);
  }
  int csum = cb.v6_csum.load(std::memory_order_relaxed);
  if (dst.family == AF_INET6 && csum >= 0) {
    Result<void> c = proto == IPPROTO_ICMPV6 ? icmp6_checksum(so.kernel(), *p, src, dst, o.oif)
                                             : raw6_checksum(so.kernel(), *p, src, dst, proto, static_cast<size_t>(csum), o.oif);
    if (!c.ok()) {
      Pkt::free(p);
      return err(c.error());
    }
  }
  TRY(ip_output(so.kernel(), p, src, dst, proto, o));
  return len;
}

Result<size_t> ping_send_msg(Lwp& l, Socket& so, SockMsg& m, int flags, bool nonblock) {
  InetCb& cb = inet_cb(so);
  InetState& st = *cb.st;
  TRY(inet_sock_send_check(so));
  size_t len = m.uio->resid;
  if (len < 8) return err(EINVAL);
  if (len > 65535 - sizeof(iphdr)) return err(EMSGSIZE);
  IpAddr dst = TRY(send_dest(so, m));
  int oif = TRY(inet_sock_send_scope(so, m.to, dst, true));
  InPcbEnds ends = TRY(inet_sock_autobind(so));
  Pkt* p = TRY(Pkt::alloc(st.pool, 0));
  Result<void> c = p->append_uio(*m.uio, len);
  if (!c.ok()) {
    Pkt::free(p);
    return err(c.error());
  }
  bool v6 = dst.family == AF_INET6;
  uint8_t h[8];
  p->copy_out(0, 8, h);
  if (h[0] != (v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO) || h[1] != 0) {
    Pkt::free(p);
    return err(EINVAL);
  }
  uint16_t id = htons(ends.lport);
  std::memcpy(h + 4, &id, 2);
  h[2] = h[3] = 0;
  p->copy_in(0, 8, h);
  IpOutOpts o = inet_sock_out_opts(so);
  if (oif) o.oif = oif;
  if (v6) {
    Result<void> c = icmp6_checksum(so.kernel(), *p, ends.laddr, dst, o.oif);
    if (!c.ok()) {
      Pkt::free(p);
      return err(c.error());
    }
    bump(st.icmp6_stats.OutMsgs);
    bump(st.icmp6_stats.OutEchos);
    TRY(ip_output(so.kernel(), p, ends.laddr, dst, IPPROTO_ICMPV6, o));
    return len;
  }
  uint16_t sum = htons(in_cksum_fold(pkt_cksum_add(*p, 0, p->len())));
  p->copy_in(2, 2, &sum);
  bump(st.icmp_stats.OutMsgs);
  bump(st.icmp_stats.OutEchos);
  TRY(ip_output(so.kernel(), p, ends.laddr, dst, IPPROTO_ICMP, o));
  return len;
}

Result<void> no_send(Lwp&, Socket&, SockRecord*, const SockAddr*, bool) { return err(EOPNOTSUPP); }
Result<void> no_listen(Lwp&, Socket&, int) { return err(EOPNOTSUPP); }

Protosw make_protosw(int type, int protocol, Result<void> (*attach)(Socket&),
                     Result<size_t> (*send_msg)(Lwp&, Socket&, SockMsg&, int, bool)) {
  Protosw p{};
  p.type = type;
  p.protocol = protocol;
  p.stream = false;
  p.connection = false;
  p.attach = attach;
  p.detach = &inet_sock_detach;
  p.bind = &inet_sock_bind;
  p.listen = &no_listen;
  p.connect = &inet_dgram_connect;
  p.send = &no_send;
  p.shutdown = &inet_dgram_shutdown;
  p.sockname = &inet_sock_sockname;
  p.peername = &inet_sock_peername;
  p.poll_locked = &inet_dgram_poll_locked;
  p.source_name = &inet_dgram_source_name;
  p.free_pcb = &inet_sock_free_pcb;
  p.send_msg = send_msg;
  p.ctloutput = &inet_sock_ctloutput;
  return p;
}

const Protosw kRawProtosw = make_protosw(SOCK_RAW, -1, &raw_attach, &raw_send_msg);
const Protosw kPingProtosw = make_protosw(SOCK_DGRAM, IPPROTO_ICMP, &ping_attach, &ping_send_msg);
const Protosw kPing6Protosw = make_protosw(SOCK_DGRAM, IPPROTO_ICMPV6, &ping_attach, &ping_send_msg);
const InetProtoswRegistrar g_raw4(AF_INET, kRawProtosw);
const InetProtoswRegistrar g_ping4(AF_INET, kPingProtosw, true);
const InetProtoswRegistrar g_raw6(AF_INET6, kRawProtosw);
const InetProtoswRegistrar g_ping6(AF_INET6, kPing6Protosw, true);

}  // namespace

bool raw_input(InetState& st, const Pkt& p, const IpHdrInfo& ip) {
  if (st.raw.count() == 0) return false;
  bool v6 = ip.src.family == AF_INET6;
  uint8_t icmp6_type = 0;
  if (v6 && ip.proto == IPPROTO_ICMPV6) {
    if (p.len() < 1) return false;
    p.copy_out(0, 1, &icmp6_type);
  }
  bool any = false;
  Pkt* copy = nullptr;
  int sum_ok = -1;  // the payload's checksum under the pseudo-header: -1 not yet known
  st.raw.for_each_match(ip.src, 0, ip.dst, ip.proto, [&](Socket& so) {
    InetCb& cb = inet_cb(so);
    if (cb.pcb.family != ip.src.family) return;
    if (v6 && cb.v6_csum.load(std::memory_order_relaxed) >= 0) {
      // IPV6_CHECKSUM (ICMPv6 sockets: always): what fails the check is
      // not this socket's (rawv6_rcv).
      if (sum_ok < 0) {
        uint32_t ps = in_pseudo6(ip.src.v6.b, ip.dst.v6.b, ip.proto, static_cast<uint32_t>(p.len()));
        sum_ok = in_cksum_fold(pkt_cksum_add(p, 0, p.len(), ps)) == 0 ? 1 : 0;
      }
      if (!sum_ok) return;
    }
    if (v6) {
      // The payload alone, through the socket's ICMPv6 filter.
      if (ip.proto == IPPROTO_ICMPV6 &&
          (cb.icmp6_filter[icmp6_type >> 5].load(std::memory_order_relaxed) >> (icmp6_type & 31)) & 1)
        return;
      if (inet_dgram_deliver(st, so, p, 0, ip, 0)) any = true;
      return;
    }
    if (!copy) {
      // The datagram as it arrived, under a rebuilt header.
      Result<Pkt*> r = p.copy(0, p.len());
      if (!r.ok()) return;
      copy = r.value();
      iphdr h{};
      h.version = 4;
      h.ihl = 5;
      h.tos = ip.tos;
      h.tot_len = htons(static_cast<uint16_t>(sizeof h + p.len()));
      h.ttl = ip.ttl;
      h.protocol = ip.proto;
      h.saddr = ip.src.v4.s;
      h.daddr = ip.dst.v4.s;
      h.check = htons(in_cksum(&h, sizeof h));
      Result<char*> at = copy->prepend(sizeof h);
      if (!at.ok()) {
        Pkt::free(copy);
        copy = nullptr;
        return;
      }
      std::memcpy(at.value(), &h, sizeof h);
    }
    if (inet_dgram_deliver(st, so, *copy, 0, ip, 0)) any = true;
  });
  Pkt::free(copy);
  return any;
}

bool ping_input(InetState& st, Pkt* p, const IpHdrInfo& ip) {
  uint8_t h[8];
  p->copy_out(0, 8, h);
  uint16_t id = static_cast<uint16_t>(h[4] << 8 | h[5]);
  RefPtr<Socket> so = st.ping.lookup(ip.src, 0, ip.dst, id);
  if (!so) return false;
  inet_dgram_deliver(st, *so, *p, 0, ip, 0);
  Pkt::free(p);
  return true;
}

}  // namespace rump
