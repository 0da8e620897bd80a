// The socket plumbing the inet datagram transports share (see
// inet_sock.h), with Linux's errors for bind and the IP options.
#include "net/inet/inet_sock.h"

#include <netinet/icmp6.h>
#include <netinet/ip.h>

#include <cstring>

#include "kern/kernel.h"
#include "kern/proc.h"

namespace rump {

namespace {

// The sender's address travels after the data of a received record.
struct RecordTrailer {
  IpAddr src;
  uint16_t port;
  uint32_t scope;  // sin6_scope_id
};

InPcbTable* table_for(InetState& st, Socket& so) {
  if (so.proto().type == SOCK_RAW) return &st.raw;
  if (so.protocol_ == IPPROTO_ICMP || so.protocol_ == IPPROTO_ICMPV6) return &st.ping;
  if (so.proto().type == SOCK_STREAM) return &st.tcp;
  return &st.udp;
}

IpAddr normalize(const IpAddr& a) {
  if (a.family == AF_INET6 && a.v6.v4mapped()) return IpAddr::of(a.v6.v4());
  return a;
}

}  // namespace

Result<void> inet_sock_attach(Socket& so, int family) {
  InetState* st = TRY(inet_state(so.kernel()));
  auto* cb = new (so.kernel().kmem()) InetCb(so, family, *st, *table_for(*st, so));
  if (!cb) return err(ENOMEM);
  st->ref();
  so.pcb_ = cb;
  return {};
}

void inet_sock_detach(Socket& so) {
  InetCb& cb = inet_cb(so);
  cb.table->remove(cb.pcb);
  MutexLocker g(so.lock_);
  so.state_ &= ~kSsConnected;
  so.state_ |= kSsClosed | kSsCantRcvMore | kSsCantSendMore;
  so.wake_locked();
}

void inet_sock_free_pcb(Socket& so) {
  auto* cb = static_cast<InetCb*>(so.pcb_);
  if (!cb) return;
  cb->table->remove(cb->pcb);
  InetState* st = cb->st;
  delete cb;
  so.pcb_ = nullptr;
  st->unref();
}

void inet_sock_sync_opts(Socket& so) {
  InetCb& cb = inet_cb(so);
  bool ra, rp;
  {
    MutexLocker g(so.lock_);
    ra = so.options_ & kSoReuseAddr;
    rp = so.options_ & kSoReusePort;
  }
  // Raw sockets share their protocol freely.
  if (so.proto().type == SOCK_RAW) ra = true;
  cb.table->set_sharing(cb.pcb, ra, rp, so.creator_.uid);
}

Result<void> inet_sock_dest(Socket& so, const SockAddr& a, IpAddr& dst, uint16_t& port) {
  InetCb& cb = inet_cb(so);
  if (a.len < sizeof(sa_family_t)) return err(EINVAL);
  if (cb.pcb.family == AF_INET) {
    if (a.family != AF_INET) return err(EAFNOSUPPORT);
    if (a.len < sizeof(sockaddr_in)) return err(EINVAL);
  } else if (a.family == AF_INET) {
    // An IPv6 socket takes a sockaddr_in as IPv4 (Linux's udpv6_sendmsg
    // and ip6_datagram_connect).
    if (a.len < sizeof(sockaddr_in)) return err(EINVAL);
  } else {
    if (a.len < 24) return err(EINVAL);  // SIN6_LEN_RFC2133: without the scope id
    if (a.family != AF_INET6) return err(EAFNOSUPPORT);
  }
  TRY(sockaddr_to_ip(a, dst, port));
  dst = normalize(dst);
  if (cb.pcb.family == AF_INET6 && dst.family == AF_INET && cb.table->ends(cb.pcb).v6only) return err(ENETUNREACH);
  return {};
}

Result<void> inet_sock_bind(Lwp& l, Socket& so, const SockAddr& a) {
  InetCb& cb = inet_cb(so);
  IpAddr ip;
  uint16_t port = 0;
  if (cb.pcb.family == AF_INET) {
    if (a.len < sizeof(sockaddr_in)) return err(EINVAL);
    if (a.family != AF_INET) {
      // Linux takes AF_UNSPEC with INADDR_ANY, for old programs.
      if (a.family != AF_UNSPEC || a.in.sin_addr.s_addr != 0) return err(EAFNOSUPPORT);
    }
    ip = IpAddr::of(InAddr{a.in.sin_addr.s_addr});
    port = ntohs(a.in.sin_port);
  } else {
    if (a.len < sizeof(sockaddr_in6)) return err(EINVAL);
    if (a.family != AF_INET6) return err(EAFNOSUPPORT);
    TRY(sockaddr_to_ip(a, ip, port));
    if (ip.v6.v4mapped() && cb.table->ends(cb.pcb).v6only) return err(EINVAL);
    ip = normalize(ip);
  }
  if (so.proto().type == SOCK_RAW) port = 0;  // a raw socket's "port" is its protocol
  bool local = ip.any() || ip_is_local(so.kernel(), ip) || (ip.family == AF_INET && ip.v4.loopback());
  // An address that needs a scope names an interface with it (Linux's
  // __inet6_bind and ping_check_bind_addr): the scope id's (which
  // replaces the bound one), else the bound one, else EINVAL; ENODEV if
  // it does not exist; it must hold a unicast address.
  bool ping = (so.protocol_ == IPPROTO_ICMP || so.protocol_ == IPPROTO_ICMPV6) && so.proto().type == SOCK_DGRAM;
  int scope = 0;
  if (ip.family == AF_INET6 && ip.v6.needs_scope()) {
    uint32_t sid = a.in6.sin6_scope_id;
    if (ping && !sid) return err(EINVAL);  // ping sockets want it in the address
    if (sid > INT32_MAX) return err(ENODEV);
    scope = sid ? static_cast<int>(sid) : cb.bound_if.load(std::memory_order_relaxed);
    if (!scope) return err(EINVAL);
    RefPtr<Ifnet> ifp = cb.st->find_if(scope);
    if (!ifp) return err(ENODEV);
    if (!ip.v6.multicast()) {
      bool has = false;
      {
        SharedLocker g(cb.st->if_lock_);
        for (int k = 0; k < ifp->naddr6; k++)
          if (ifp->addr6[k].addr == ip.v6) has = true;
      }
      if (!has) return err(EADDRNOTAVAIL);
    }
    local = true;
  }
  // Datagram sockets may bind to a broadcast or multicast address.
  if (!local && so.proto().type == SOCK_DGRAM && (ip.multicast() || (ip.family == AF_INET && ip.v4.limited_broadcast())))
    local = true;
  if (!local) return err(EADDRNOTAVAIL);
  // Ping sockets' "port" is their echo identifier: no privileged range.
  if (port != 0 && port < 1024 && !ping && !l.cred().is_root()) return err(EACCES);
  inet_sock_sync_opts(so);
  if (so.proto().type == SOCK_RAW) {
    // Raw sockets are filed under their protocol and share it freely;
    // binding only sets the local address.
    cb.table->remove(cb.pcb);
    TRY(cb.table->bind(cb.pcb, ip, static_cast<uint16_t>(so.protocol_)));
  } else {
    TRY(cb.table->bind(cb.pcb, ip, port));
  }
  if (scope) cb.bound_if.store(scope, std::memory_order_relaxed);
  return {};
}

void inet_sock_sockname(Socket& so, SockAddr& a) {
  InetCb& cb = inet_cb(so);
  InPcbEnds e = cb.table->ends(cb.pcb);
  IpAddr ip = e.laddr;
  uint16_t port = so.proto().type == SOCK_RAW ? 0 : e.lport;
  if (cb.pcb.family == AF_INET6) {
    if (ip.family == AF_INET) ip = IpAddr::of(In6Addr::mapped(ip.v4));
    else if (ip.family == 0) ip = IpAddr::of(In6Addr());
  } else if (ip.family == 0) {
    ip = IpAddr::of(InAddr());
  }
  ip_to_sockaddr(ip, port, a);
  if (ip.family == AF_INET6) a.in6.sin6_scope_id = inet_sock_name_scope(so, ip);
}

Result<void> inet_sock_peername(Socket& so, SockAddr& a) {
  InetCb& cb = inet_cb(so);
  {
    MutexLocker g(so.lock_);
    if (!(so.state_ & kSsConnected)) return err(ENOTCONN);
  }
  InPcbEnds e = cb.table->ends(cb.pcb);
  IpAddr ip = e.faddr;
  if (cb.pcb.family == AF_INET6 && ip.family == AF_INET) ip = IpAddr::of(In6Addr::mapped(ip.v4));
  ip_to_sockaddr(ip, so.proto().type == SOCK_RAW ? 0 : e.fport, a);
  if (ip.family == AF_INET6) a.in6.sin6_scope_id = inet_sock_name_scope(so, ip);
  return {};
}

namespace {

// The scope id a destination address carries (0: none, or it needs none).
uint32_t scope_id_of(const SockAddr* a) {
  if (!a || a->family != AF_INET6 || a->len < sizeof(sockaddr_in6)) return 0;
  return a->in6.sin6_scope_id;
}

// Linux gives lo no route of link scope (no fe80::/64, no multicast): a
// link-scope destination through it is ENETUNREACH from the route lookup.
Result<int> not_lo(InetCb& cb, int oif) {
  if (oif && cb.st->lo_ && oif == cb.st->lo_->index) return err(ENETUNREACH);
  return oif;
}

}  // namespace

Result<int> inet_sock_send_scope(Socket& so, const SockAddr* a, const IpAddr& dst, bool strict) {
  if (dst.family != AF_INET6 || !dst.v6.needs_scope()) return 0;
  int bound = inet_cb(so).bound_if.load(std::memory_order_relaxed);
  uint32_t sid = scope_id_of(a);
  // A scope id no interface has is ENETUNREACH from the route lookup.
  if (sid > INT32_MAX) return err(ENETUNREACH);
  int oif = sid ? static_cast<int>(sid) : bound;
  if (strict && (!oif || (bound && oif != bound))) return err(EINVAL);
  return not_lo(inet_cb(so), oif);
}

Result<int> inet_sock_connect_scope(Socket& so, const SockAddr& a, const IpAddr& dst) {
  if (dst.family != AF_INET6 || !dst.v6.needs_scope()) return 0;
  InetCb& cb = inet_cb(so);
  int bound = cb.bound_if.load(std::memory_order_relaxed);
  uint32_t sid = scope_id_of(&a);
  if (sid) {
    if (bound && static_cast<uint32_t>(bound) != sid) return err(EINVAL);
    if (sid > INT32_MAX || !cb.st->find_if(static_cast<int>(sid))) return err(ENETUNREACH);
    return not_lo(cb, static_cast<int>(sid));
  }
  if (!bound) return err(EINVAL);
  return not_lo(cb, bound);
}

uint32_t inet_sock_name_scope(Socket& so, const IpAddr& a) {
  if (a.family != AF_INET6 || !a.v6.needs_scope()) return 0;
  return static_cast<uint32_t>(inet_cb(so).bound_if.load(std::memory_order_relaxed));
}

int inet_addr_owner(InetState& st, const IpAddr& a) {
  if (a.family != AF_INET6) return 0;
  SharedLocker g(st.if_lock_);
  for (const Ifnet& i : st.ifs_) {
    if (&i == st.lo_) continue;
    for (int k = 0; k < i.naddr6; k++)
      if (i.addr6[k].addr == a.v6) return i.index;
  }
  return 0;
}

int inet_scope_oif(InetState& st, const IpAddr& src, const IpAddr& dst, int bound) {
  if (dst.family != AF_INET6 || !dst.v6.needs_scope()) return 0;
  if (bound) return bound;
  return src.family == AF_INET6 && src.v6.needs_scope() ? inet_addr_owner(st, src) : 0;
}

uint32_t inet_recv_scope(InetState& st, const IpHdrInfo& ip) {
  if (ip.src.family != AF_INET6 || !ip.src.v6.needs_scope()) return 0;
  if (st.lo_ && ip.ifindex == st.lo_->index) {
    if (int o = inet_addr_owner(st, ip.dst)) return static_cast<uint32_t>(o);
  }
  return static_cast<uint32_t>(ip.ifindex);
}

IpOutOpts inet_sock_out_opts(Socket& so) {
  InetCb& cb = inet_cb(so);
  IpOutOpts o;
  o.ttl = cb.ttl.load(std::memory_order_relaxed);
  o.tos = static_cast<uint8_t>(cb.tos.load(std::memory_order_relaxed));
  MutexLocker g(so.lock_);
  o.broadcast = so.options_ & kSoBroadcast;
  return o;
}

Result<void> inet_sock_ctloutput(Lwp& l, Socket& so, SockOptArg& o) {
  InetCb& cb = inet_cb(so);
  auto get_int = [&](int& v) -> Result<void> {
    // Linux's ip_setsockopt takes an int, or a single byte for some.
    if (o.len >= sizeof(int)) std::memcpy(&v, o.val, sizeof v);
    else if (o.len >= 1) v = static_cast<unsigned char>(o.val[0]);
    else return err(EINVAL);
    return {};
  };
  auto put_int = [&](int v) {
    socklen_t n = o.len < sizeof(int) ? o.len : sizeof(int);
    std::memcpy(o.val, &v, n);
    o.len = n;
  };
  if (o.level == IPPROTO_IP) {
    switch (o.name) {
      case IP_TTL:
        if (o.set) {
          int v;
          TRY(get_int(v));
          if (v != -1 && (v < 1 || v > 255)) return err(EINVAL);
          cb.ttl.store(v);
        } else {
          int v = cb.ttl.load();
          put_int(v < 0 ? cb.st->ip_default_ttl.load() : v);
        }
        return {};
      case IP_TOS:
        if (o.set) {
          int v;
          TRY(get_int(v));
          cb.tos.store(v & 0xff & ~3);  // the ECN bits are not the socket's
        } else {
          put_int(cb.tos.load());
        }
        return {};
      case IP_HDRINCL:
        if (so.proto().type != SOCK_RAW) return err(ENOPROTOOPT);
        if (o.set) {
          int v;
          TRY(get_int(v));
          cb.hdrincl.store(v != 0);
        } else {
          put_int(cb.hdrincl.load() ? 1 : 0);
        }
        return {};
      case IP_RECVERR:
        if (o.set) {
          int v;
          TRY(get_int(v));
          cb.recverr.store(v != 0);
        } else {
          put_int(cb.recverr.load() ? 1 : 0);
        }
        return {};
      default: return err(ENOPROTOOPT);
    }
  }
  if (o.level == IPPROTO_IPV6 && cb.pcb.family == AF_INET6) {
    if (o.name == IPV6_V6ONLY) {
      if (o.set) {
        int v;
        TRY(get_int(v));
        TRY(cb.table->set_v6only(cb.pcb, v != 0));
      } else {
        put_int(cb.table->ends(cb.pcb).v6only ? 1 : 0);
      }
      return {};
    }
    if (o.name == IPV6_CHECKSUM && so.proto().type == SOCK_RAW) {
      // rawv6_setsockopt: an int; not on ICMPv6 sockets (always 2 there);
      // an odd offset is EINVAL, a negative one turns it off.
      if (o.set) {
        if (o.len < sizeof(int)) return err(EINVAL);
        if (so.protocol_ == IPPROTO_ICMPV6) return err(EINVAL);
        int v;
        std::memcpy(&v, o.val, sizeof v);
        if (v > 0 && (v & 1)) return err(EINVAL);
        cb.v6_csum.store(v < 0 ? -1 : v, std::memory_order_relaxed);
      } else {
        put_int(cb.v6_csum.load(std::memory_order_relaxed));
      }
      return {};
    }
    return err(ENOPROTOOPT);
  }
  if (o.level == IPPROTO_ICMPV6 && so.proto().type == SOCK_RAW && cb.pcb.family == AF_INET6) {
    // ICMP6_FILTER (RFC 3542 3.2; Linux: only on ICMPv6 raw sockets, a
    // set bit blocks its type, a short value sets the words it holds).
    if (o.name != ICMP6_FILTER) return err(ENOPROTOOPT);
    if (so.protocol_ != IPPROTO_ICMPV6) return err(EOPNOTSUPP);
    uint32_t f[8];
    for (int i = 0; i < 8; i++) f[i] = cb.icmp6_filter[i].load(std::memory_order_relaxed);
    if (o.set) {
      std::memcpy(f, o.val, o.len < sizeof f ? o.len : sizeof f);
      for (int i = 0; i < 8; i++) cb.icmp6_filter[i].store(f[i], std::memory_order_relaxed);
    } else {
      socklen_t n = o.len < sizeof f ? o.len : sizeof f;
      std::memcpy(o.val, f, n);
      o.len = n;
    }
    return {};
  }
  return err(ENOPROTOOPT);
}

Result<void> inet_dgram_connect(Lwp& l, Socket& so, const SockAddr& a, bool nonblock) {
  InetCb& cb = inet_cb(so);
  if (a.len >= sizeof(sa_family_t) && a.family == AF_UNSPEC) {
    cb.table->disconnect(cb.pcb);
    MutexLocker g(so.lock_);
    so.state_ &= ~kSsConnected;
    return {};
  }
  IpAddr dst;
  uint16_t port;
  TRY(inet_sock_dest(so, a, dst, port));
  if (dst.family == AF_INET && dst.v4.any()) dst.v4 = InAddr::host(0x7f000001);  // as BSD and Linux
  if (dst.family == AF_INET6 && dst.v6.any()) dst.v6.b[15] = 1;                   // :: is ::1
  if (ip_is_broadcast(so.kernel(), dst)) {
    MutexLocker g(so.lock_);
    if (!(so.options_ & kSoBroadcast)) return err(EACCES);
  }
  int oif = TRY(inet_sock_connect_scope(so, a, dst));
  IpAddr src = TRY(ip_select_source(so.kernel(), dst, oif));
  // Connecting to a link-scope address ties the socket to its interface
  // (Linux's __ip6_datagram_connect).
  if (oif) cb.bound_if.store(oif, std::memory_order_relaxed);
  inet_sock_sync_opts(so);
  if (so.proto().type == SOCK_RAW || so.protocol_ == IPPROTO_ICMP || so.protocol_ == IPPROTO_ICMPV6) port = 0;
  TRY(cb.table->connect(cb.pcb, src, dst, port, false));
  MutexLocker g(so.lock_);
  so.error_ = 0;
  so.state_ |= kSsConnected;
  return {};
}

Result<void> inet_sock_send_check(Socket& so) {
  MutexLocker g(so.lock_);
  if (so.error_) {
    int e = so.error_;
    so.error_ = 0;
    return err(e);
  }
  if (so.state_ & kSsCantSendMore) return err(EPIPE);
  return {};
}

Result<InPcbEnds> inet_sock_autobind(Socket& so) {
  InetCb& cb = inet_cb(so);
  if (!cb.table->ends(cb.pcb).bound) {
    inet_sock_sync_opts(so);
    Result<void> b = cb.table->bind(cb.pcb, IpAddr(), 0);
    if (!b.ok() && b.error() != EINVAL) return err(b.error());  // EINVAL: bound meanwhile
  }
  return cb.table->ends(cb.pcb);
}

Result<void> inet_dgram_dest(Socket& so, const SockMsg& m, IpAddr& dst, uint16_t& port) {
  InetCb& cb = inet_cb(so);
  if (m.to) return inet_sock_dest(so, *m.to, dst, port);
  {
    MutexLocker g(so.lock_);
    if (!(so.state_ & kSsConnected)) return err(EDESTADDRREQ);
  }
  InPcbEnds e = cb.table->ends(cb.pcb);
  if (!e.connected) return err(EDESTADDRREQ);
  dst = e.faddr;
  port = e.fport;
  return {};
}

Result<void> inet_dgram_shutdown(Socket& so, int how) {
  MutexLocker g(so.lock_);
  if (!(so.state_ & kSsConnected)) return err(ENOTCONN);
  if (how == SHUT_RD || how == SHUT_RDWR) so.state_ |= kSsCantRcvMore;
  if (how == SHUT_WR || how == SHUT_RDWR) so.state_ |= kSsCantSendMore;
  so.wake_locked();
  return {};
}

short inet_dgram_poll_locked(Socket& so) {
  short mask = POLLOUT | POLLWRNORM | POLLWRBAND;
  if (so.error_) mask |= POLLERR;
  if (!so.rcv_.empty() || (so.state_ & kSsCantRcvMore)) mask |= POLLIN | POLLRDNORM;
  if (so.state_ & kSsCantRcvMore) mask |= POLLRDHUP;
  if ((so.state_ & kSsCantRcvMore) && (so.state_ & kSsCantSendMore)) mask |= POLLHUP;
  return mask;
}

void inet_dgram_source_name(SockRecord& r, SockAddr& a) {
  RecordTrailer t;
  // After the bytes, or alone in data when the bytes are borrowed.
  std::memcpy(&t, r.data + (r.ext ? 0 : r.len), sizeof t);
  ip_to_sockaddr(t.src, t.port, a);
  if (t.src.family == AF_INET6) a.in6.sin6_scope_id = t.scope;
}

namespace {

// A payload from this size on, in one piece of the packet, is borrowed by
// the record instead of copied (below, a copy into a small record costs
// less than keeping the packet's buffer).
constexpr size_t kBorrowMin = 512;

void free_pkt(void* p) { Pkt::free(static_cast<Pkt*>(p)); }

}  // namespace

bool inet_dgram_deliver(InetState& st, Socket& so, const Pkt& p, size_t off, const IpHdrInfo& ip, uint16_t sport) {
  Pkt* none = nullptr;
  return inet_dgram_deliver_pkt(st, so, p, off, ip, sport, none);
}

bool inet_dgram_deliver_pkt(InetState& st, Socket& so, const Pkt& p, size_t off, const IpHdrInfo& ip, uint16_t sport,
                            Pkt*& own) {
  size_t n = p.len() - off;
  const char* piece = nullptr;
  size_t plen = 0;
  bool borrow = own && n >= kBorrowMin && p.pieces(off, &piece, &plen, 1) == 1;
  SockRecord* rec = SockRecord::alloc(st.kernel.kmem(), (borrow ? 0 : n) + sizeof(RecordTrailer));
  if (!rec) return false;
  rec->len = static_cast<uint32_t>(n);
  size_t tail = n;
  if (borrow) {
    rec->ext = piece;
    rec->ext_free = &free_pkt;
    rec->ext_arg = own;
    own = nullptr;
    tail = 0;
  } else {
    p.copy_out(off, n, rec->data);
  }
  RecordTrailer t{ip.src, sport, inet_recv_scope(st, ip)};
  InetCb& cb = inet_cb(so);
  if (cb.pcb.family == AF_INET6 && t.src.family == AF_INET) t.src = IpAddr::of(In6Addr::mapped(t.src.v4));
  std::memcpy(rec->data + tail, &t, sizeof t);
  {
    MutexLocker g(so.lock_);
    if (!(so.state_ & (kSsCantRcvMore | kSsClosed)) && so.rcv_cc_ + n <= static_cast<size_t>(so.rcvbuf_)) {
      so.deliver_locked(rec);
      rec = nullptr;
    }
  }
  if (rec) {
    SockRecord::dispose(rec);
    return false;
  }
  return true;
}

}  // namespace rump
