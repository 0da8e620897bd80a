// IPv6 neighbour discovery on Ethernet interfaces (RFC 4861) and duplicate
// address detection (RFC 4862 5.4): the messages. The neighbour cache and
// its states live with the Ethernet code (if_ether.cc), which calls
// nd6_solicit() to resolve an address and hears through ether_nd_learn()
// what arrived.
//
// Received solicitations and advertisements are checked as RFC 4861
// 7.1.1 and 7.1.2 ask (hop limit 255, code 0, length, no multicast
// target, options of nonzero length, a DAD solicitation to a
// solicited-node group without a source option, no Solicited flag on a
// multicast advertisement); anything else is counted in InErrors and
// dropped. A solicitation for one of our addresses is answered with an
// advertisement carrying our MAC (Solicited set unless it was DAD, then to
// all-nodes; Override set). Router advertisements are processed
// (nd6_ra_input); redirects are not.
#include <linux/if_ether.h>
#include <linux/rtnetlink.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/ip6.h>

#include <cstdio>
#include <cstring>

#include "kern/clock.h"
#include "kern/kernel.h"
#include "net/inet/if_ether.h"
#include "net/inet/ip_var.h"

namespace rump {

namespace {

void bump(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

constexpr uint8_t kOptSourceLl = 1, kOptTargetLl = 2;
constexpr int64_t kDadNs = kNsPerSec;  // RetransTimer x DupAddrDetectTransmits (1)

In6Addr solicited_node(const In6Addr& a) {
  In6Addr g;
  g.b[0] = 0xff;
  g.b[1] = 0x02;
  g.b[11] = 0x01;
  g.b[12] = 0xff;
  std::memcpy(g.b + 13, a.b + 13, 3);
  return g;
}

In6Addr all_nodes() {
  In6Addr g;
  g.b[0] = 0xff;
  g.b[1] = 0x02;
  g.b[15] = 1;
  return g;
}

// An ND message (body: the ICMPv6 message with a zero checksum) under an
// IPv6 header with hop limit 255, checksummed. Null when out of buffers.
Pkt* nd_packet(InetState& st, const In6Addr& src, const In6Addr& dst, const uint8_t* body, size_t n) {
  Result<Pkt*> r = Pkt::alloc(st.pool, sizeof(ip6_hdr) + n);
  if (!r.ok()) return nullptr;
  Pkt* p = r.value();
  uint32_t ps = in_pseudo6(src.b, dst.b, IPPROTO_ICMPV6, static_cast<uint32_t>(n));
  uint8_t msg[64];
  std::memcpy(msg, body, n);
  uint16_t c = htons(in_cksum_fold(in_cksum_add(ps, msg, n)));
  std::memcpy(msg + 2, &c, 2);
  ip6_hdr h{};
  h.ip6_flow = htonl(6u << 28);
  h.ip6_plen = htons(static_cast<uint16_t>(n));
  h.ip6_nxt = IPPROTO_ICMPV6;
  h.ip6_hlim = 255;
  std::memcpy(&h.ip6_src, src.b, 16);
  std::memcpy(&h.ip6_dst, dst.b, 16);
  p->copy_in(0, sizeof h, &h);
  p->copy_in(sizeof h, n, msg);
  return p;
}

// Our source for a solicitation about target: an address of ifp on the
// same prefix, else a link-local one, else any (unspecified if none).
In6Addr source_for(Ifnet& ifp, const In6Addr& target) {
  SharedLocker g(ifp.state().if_lock_);
  int best = -1, score = -1;
  for (int i = 0; i < ifp.naddr6; i++) {
    const IfAddr6& a = ifp.addr6[i];
    int s = 0;
    int full = a.plen / 8;
    if (std::memcmp(a.addr.b, target.b, full < 16 ? full : 16) == 0) s = 2;
    else if (a.addr.linklocal() == target.linklocal()) s = 1;
    if (s > score) {
      score = s;
      best = i;
    }
  }
  return best >= 0 ? ifp.addr6[best].addr : In6Addr();
}

// One of ifp's addresses: 0 no, 1 yes, 2 yes and still tentative.
int our_addr(Ifnet& ifp, const In6Addr& a, int64_t now) {
  SharedLocker g(ifp.state().if_lock_);
  for (int i = 0; i < ifp.naddr6; i++)
    if (ifp.addr6[i].addr == a) return ifp.addr6[i].tentative_until_ns > now ? 2 : 1;
  return 0;
}

void duplicate_found(Ifnet& ifp, const In6Addr& a) {
  InetState& st = ifp.state();
  bump(st.icmp6_stats.NdDupAddrs);
  if (if_del_addr6(ifp, a).ok()) {
    char text[48];
    int n = 0;
    for (int i = 0; i < 16; i += 2)
      n += snprintf(text + n, sizeof text - static_cast<size_t>(n), "%s%x", i ? ":" : "", a.b[i] << 8 | a.b[i + 1]);
    st.kernel.printf("%s: IPv6 duplicate address %s detected, removed\n", ifp.name, text);
  }
}

void send_na(Ifnet& ifp, const In6Addr& src, const In6Addr& dst, const In6Addr& target, bool solicited) {
  InetState& st = ifp.state();
  uint8_t m[32] = {ND_NEIGHBOR_ADVERT, 0, 0, 0, static_cast<uint8_t>(0x20 | (solicited ? 0x40 : 0))};
  std::memcpy(m + 8, target.b, 16);
  m[24] = kOptTargetLl;
  m[25] = 1;
  std::memcpy(m + 26, ifp.hwaddr, 6);
  Pkt* p = nd_packet(st, src, dst, m, sizeof m);
  if (!p) {
    bump(st.icmp6_stats.OutErrors);
    return;
  }
  bump(st.icmp6_stats.OutMsgs);
  bump(st.icmp6_stats.OutNeighborAdvertisements);
  // Through the cache: the solicitation's source option put the asker in
  // it (a solicitation without one is resolved first).
  if (!ifp.ops().output(ifp, p, IpAddr::of(dst), ETH_P_IPV6).ok()) bump(st.icmp6_stats.OutErrors);
}

// The link-layer option of type want, if present and well-formed: false
// when an option is malformed (length zero or past the end).
bool parse_options(const uint8_t* o, size_t n, uint8_t want, const uint8_t** mac) {
  *mac = nullptr;
  while (n > 0) {
    if (n < 2 || o[1] == 0 || o[1] * 8u > n) return false;
    size_t len = o[1] * 8u;
    if (o[0] == want && len >= 8) *mac = o + 2;
    o += len;
    n -= len;
  }
  return true;
}

uint32_t be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }

// A lifetime in seconds from now as a monotonic deadline (0: infinite,
// all ones in the option).
int64_t deadline_of(uint32_t seconds, int64_t now) {
  return seconds == 0xffffffffu ? 0 : now + static_cast<int64_t>(seconds) * kNsPerSec;
}

// RFC 4862 5.5.3 e), as Linux's addrconf_prefix_rcv_add_addr: an
// advertised valid lifetime shorter than what is left is taken only down
// to two hours (so that a forged advertisement cannot end an address at
// once).
constexpr int64_t kMinValidNs = 2 * 3600 * kNsPerSec;
int64_t refreshed_valid(int64_t old_until, uint32_t valid, int64_t now) {
  int64_t until = deadline_of(valid, now);
  if (!until || !old_until) return until;
  int64_t left = old_until > now ? old_until - now : 0;
  int64_t floor = now + (left < kMinValidNs ? left : kMinValidNs);
  return until > floor ? until : floor;
}

// RFC 4861 4.6.2: a prefix information option (32 bytes).
void ra_prefix(InetState& st, Ifnet& ifp, const uint8_t* o) {
  int plen = o[2];
  bool onlink = o[3] & ND_OPT_PI_FLAG_ONLINK, autonomous = o[3] & ND_OPT_PI_FLAG_AUTO;
  uint32_t valid = be32(o + 4), preferred = be32(o + 8);
  In6Addr prefix;
  std::memcpy(prefix.b, o + 16, 16);
  // RFC 4862 5.5.3 a) and c); a prefix longer than 128 bits is nonsense.
  if (plen > 128 || prefix.linklocal() || prefix.multicast() || preferred > valid) return;
  IpAddr net = ip_prefix(IpAddr::of(prefix), plen);
  if (autonomous && plen == 64 && valid > 0) {
    // The interface identifier is 64 bits (RFC 4291 2.5.1): other
    // lengths make no address, as Linux logs and ignores.
    In6Addr a = nd6_eui64(net.v6, ifp.hwaddr);
    int64_t now = mono_now_ns();
    bool have = false, told = false;
    IfAddr6 upd;
    {
      Locker<RwLock> g(st.if_lock_);
      for (int i = 0; i < ifp.naddr6; i++) {
        IfAddr6& x = ifp.addr6[i];
        if (!(x.addr == a)) continue;
        have = true;
        if (!x.autoconf) break;  // configured by hand: its lifetimes are not the router's
        // The lifetimes start again (the valid one not below two hours
        // left); a preferred lifetime undeprecates it.
        x.valid_until_ns = refreshed_valid(x.valid_until_ns, valid, now);
        x.preferred_until_ns = deadline_of(preferred, now);
        if (!x.deprecated(now)) x.deprecated_told = false;
        upd = x;
        told = x.tentative_until_ns <= now;
      }
    }
    if (told) rtnl_notify_addr6_changed(ifp, upd);
    if (!have) {
      IfAddr6 life;
      life.autoconf = true;
      life.valid_until_ns = deadline_of(valid, now);
      life.preferred_until_ns = deadline_of(preferred, now);
      (void)if_add_addr6(ifp, a, 64, &life);
    }
  }
  if (onlink && valid > 0) {
    // The prefix's route lives as long as its valid lifetime (the
    // connected route of an address made from it goes with the address).
    int64_t expires = deadline_of(valid, mono_now_ns());
    bool have = false;
    {
      Locker<RwLock> g(st.rt_lock_);
      for (RouteEntry& e : st.routes_)
        if (e.plen == plen && e.dst == net && e.info.table == RouteInfo::kTableMain) {
          have = true;
          if (!e.connected) e.info.expires_ns = expires;
        }
    }
    if (!have) {
      RouteInfo info;
      info.priority = 256;  // IP6_RT_PRIO_ADDRCONF
      info.protocol = RTPROT_KERNEL;
      info.expires_ns = expires;
      (void)route_add(st, net, plen, IpAddr(), ifp.index, false, info);
    }
  }
}

}  // namespace

In6Addr nd6_eui64(const In6Addr& prefix, const uint8_t mac[6]) {
  In6Addr a = prefix;
  a.b[8] = static_cast<uint8_t>(mac[0] ^ 0x02);
  a.b[9] = mac[1];
  a.b[10] = mac[2];
  a.b[11] = 0xff;
  a.b[12] = 0xfe;
  a.b[13] = mac[3];
  a.b[14] = mac[4];
  a.b[15] = mac[5];
  return a;
}

void nd6_ra_input(InetState& st, Ifnet& ifp, Pkt* p, const IpHdrInfo& ip) {
  Icmp6Stats& s = st.icmp6_stats;
  bump(s.InRouterAdvertisements);
  uint8_t m[1024];
  size_t n = p->len();
  // RFC 4861 6.1.2: hop limit 255, a link-local source, code 0, 16 bytes
  // at least, options of nonzero length; on Ethernet (ND's only medium
  // here).
  bool ok = n >= 16 && n <= sizeof m && ip.ttl == 255 && ip.src.family == AF_INET6 && ip.src.v6.linklocal() &&
            ifp.type == ARPHRD_ETHER;
  if (ok) p->copy_out(0, n, m);
  Pkt::free(p);
  const uint8_t* sll = nullptr;
  if (!ok || m[1] != 0 || !parse_options(m + 16, n - 16, kOptSourceLl, &sll)) {
    bump(s.InErrors);
    return;
  }
  if (sll) ether_nd_learn(ifp, ip.src.v6, sll, false, false, false);
  // The default router (6.3.4): a lifetime in seconds, zero: not one.
  uint16_t lifetime = static_cast<uint16_t>(m[6] << 8 | m[7]);
  RouteInfo info;
  info.priority = 1024;  // IP6_RT_PRIO_USER, as Linux's RA routes
  info.protocol = RTPROT_RA;
  IpAddr any6 = IpAddr::of(In6Addr());
  if (lifetime) {
    // It lasts lifetime seconds from the last advertisement.
    info.expires_ns = mono_now_ns() + lifetime * kNsPerSec;
    bool have = false;
    {
      Locker<RwLock> g(st.rt_lock_);
      for (RouteEntry& e : st.routes_)
        if (e.plen == 0 && e.dst.family == AF_INET6 && e.info.priority == info.priority && e.gateway == ip.src &&
            e.ifindex == ifp.index) {
          have = true;
          e.info.expires_ns = info.expires_ns;
        }
    }
    if (!have) (void)route_add(st, any6, 0, ip.src, ifp.index, false, info);
  } else {
    (void)route_delete(st, any6, 0, info.priority, ifp.index, ip.src);
  }
  // The options (their lengths were checked above).
  for (size_t off = 16; off < n;) {
    const uint8_t* o = m + off;
    size_t len = o[1] * 8u;
    if (o[0] == ND_OPT_MTU && len == 8) {
      uint32_t mtu = be32(o + 4);
      if (mtu >= 1280 && mtu <= ifp.mtu.load(std::memory_order_relaxed)) ifp.mtu6.store(mtu, std::memory_order_relaxed);
    } else if (o[0] == ND_OPT_PREFIX_INFORMATION && len == 32) {
      ra_prefix(st, ifp, o);
    }
    off += len;
  }
  nd6_lifetimes_arm(st);
}

namespace {

// What is due at now: addresses to deprecate (announced) or remove,
// routes to remove.
struct LifetimeScan {
  static constexpr int kMax = 16;  // per pass; the rest the next, at once
  struct Addr {
    int ifindex;
    IfAddr6 a;
  };
  Addr deprecate[kMax], expire[kMax];
  int ndeprecate = 0, nexpire = 0;
  struct Route {
    IpAddr dst, gw;
    int plen, ifindex;
    uint32_t priority, table;
  };
  Route routes[kMax];
  int nroutes = 0;
};

void scan_lifetimes(InetState& st, int64_t now, LifetimeScan& sc) {
  {
    Locker<RwLock> g(st.if_lock_);
    for (Ifnet& i : st.ifs_) {
      for (int k = 0; k < i.naddr6; k++) {
        IfAddr6& x = i.addr6[k];
        if (!x.autoconf) continue;
        if (x.valid_until_ns && x.valid_until_ns <= now) {
          if (sc.nexpire < LifetimeScan::kMax) sc.expire[sc.nexpire++] = {i.index, x};
        } else if (x.deprecated(now) && !x.deprecated_told && sc.ndeprecate < LifetimeScan::kMax) {
          x.deprecated_told = true;
          sc.deprecate[sc.ndeprecate++] = {i.index, x};
        }
      }
    }
  }
  SharedLocker g(st.rt_lock_);
  for (const RouteEntry& e : st.routes_)
    if (e.info.expires_ns && e.info.expires_ns <= now && sc.nroutes < LifetimeScan::kMax)
      sc.routes[sc.nroutes++] = {e.dst, e.gateway, e.plen, e.ifindex, e.info.priority, e.info.table};
}

}  // namespace

void nd6_lifetimes_arm(InetState& st) {
  // The routing table's lock, held exclusively, orders the callers that
  // compute and set the next deadline (each sees what the one before it
  // changed); if_lock_ nests inside it as in route lookups.
  Locker<RwLock> g(st.rt_lock_);
  int64_t now = mono_now_ns();
  int64_t next = INT64_MAX;
  {
    SharedLocker gi(st.if_lock_);
    for (const Ifnet& i : st.ifs_)
      for (int k = 0; k < i.naddr6; k++) {
        const IfAddr6& x = i.addr6[k];
        if (!x.autoconf) continue;
        if (x.valid_until_ns && x.valid_until_ns < next) next = x.valid_until_ns;
        if (x.preferred_until_ns && !x.deprecated_told && x.preferred_until_ns < next) next = x.preferred_until_ns;
      }
  }
  for (const RouteEntry& e : st.routes_)
    if (e.info.expires_ns && e.info.expires_ns < next) next = e.info.expires_ns;
  if (next == INT64_MAX) st.addrconf_timer_.stop();
  else st.addrconf_timer_.schedule(next - now);
}

void nd6_lifetime_timer(void* arg) {
  InetState& st = *static_cast<InetState*>(arg);
  LifetimeScan sc;
  scan_lifetimes(st, mono_now_ns(), sc);
  for (int i = 0; i < sc.ndeprecate; i++)
    if (RefPtr<Ifnet> ifp = st.find_if(sc.deprecate[i].ifindex)) rtnl_notify_addr6_changed(*ifp, sc.deprecate[i].a);
  for (int i = 0; i < sc.nexpire; i++)
    if (RefPtr<Ifnet> ifp = st.find_if(sc.expire[i].ifindex)) (void)if_del_addr6(*ifp, sc.expire[i].a.addr);
  for (int i = 0; i < sc.nroutes; i++) {
    const LifetimeScan::Route& r = sc.routes[i];
    (void)route_delete(st, r.dst, r.plen, r.priority, r.ifindex, r.gw, r.table);
  }
  nd6_lifetimes_arm(st);
}

bool nd6_joined(Ifnet& ifp, const In6Addr& a) {
  if (a == all_nodes()) return true;
  if (!(a.b[0] == 0xff && a.b[1] == 0x02 && a.b[11] == 0x01 && a.b[12] == 0xff)) return false;
  for (int i = 2; i < 11; i++)
    if (a.b[i]) return false;
  SharedLocker g(ifp.state().if_lock_);
  for (int i = 0; i < ifp.naddr6; i++)
    if (std::memcmp(ifp.addr6[i].addr.b + 13, a.b + 13, 3) == 0) return true;
  return false;
}

void nd6_solicit(Ifnet& ifp, const In6Addr& target, const uint8_t* mac) {
  InetState& st = ifp.state();
  In6Addr src = source_for(ifp, target);
  In6Addr dst = mac ? target : solicited_node(target);
  uint8_t m[32] = {ND_NEIGHBOR_SOLICIT, 0};
  std::memcpy(m + 8, target.b, 16);
  size_t n = 24;
  if (!src.any()) {
    m[24] = kOptSourceLl;
    m[25] = 1;
    std::memcpy(m + 26, ifp.hwaddr, 6);
    n = 32;
  }
  Pkt* p = nd_packet(st, src, dst, m, n);
  if (!p) {
    bump(st.icmp6_stats.OutErrors);
    return;
  }
  bump(st.icmp6_stats.OutMsgs);
  bump(st.icmp6_stats.OutNeighborSolicits);
  uint8_t to[6] = {0x33, 0x33};
  if (mac) std::memcpy(to, mac, 6);
  else std::memcpy(to + 2, dst.b + 12, 4);
  ether_send_frame(ifp, p, to, ETH_P_IPV6);
}

void nd6_dad_start(Ifnet& ifp, const In6Addr& a) {
  InetState& st = ifp.state();
  {
    Locker<RwLock> g(st.if_lock_);
    bool found = false;
    for (int i = 0; i < ifp.naddr6; i++)
      if (ifp.addr6[i].addr == a) {
        ifp.addr6[i].tentative_until_ns = mono_now_ns() + kDadNs;
        found = true;
      }
    if (!found) return;
  }
  uint8_t m[24] = {ND_NEIGHBOR_SOLICIT, 0};
  std::memcpy(m + 8, a.b, 16);
  In6Addr dst = solicited_node(a);
  Pkt* p = nd_packet(st, In6Addr(), dst, m, sizeof m);
  if (!p) return;
  bump(st.icmp6_stats.OutMsgs);
  bump(st.icmp6_stats.OutNeighborSolicits);
  uint8_t to[6] = {0x33, 0x33};
  std::memcpy(to + 2, dst.b + 12, 4);
  ether_send_frame(ifp, p, to, ETH_P_IPV6);
}

void nd6_router_solicit(Ifnet& ifp) {
  InetState& st = ifp.state();
  // Type, code, checksum, 4 reserved bytes; no source link-layer option
  // from the unspecified address (RFC 4861 4.1).
  uint8_t m[8] = {ND_ROUTER_SOLICIT, 0};
  In6Addr dst;
  dst.b[0] = 0xff;
  dst.b[1] = 0x02;
  dst.b[15] = 2;  // all routers
  Pkt* p = nd_packet(st, In6Addr(), dst, m, sizeof m);
  if (!p) {
    bump(st.icmp6_stats.OutErrors);
    return;
  }
  bump(st.icmp6_stats.OutMsgs);
  bump(st.icmp6_stats.OutRouterSolicits);
  uint8_t to[6] = {0x33, 0x33, 0, 0, 0, 2};
  ether_send_frame(ifp, p, to, ETH_P_IPV6);
}

void nd6_input(InetState& st, Ifnet& ifp, Pkt* p, const IpHdrInfo& ip, uint8_t type) {
  Icmp6Stats& s = st.icmp6_stats;
  bump(type == ND_NEIGHBOR_SOLICIT ? s.InNeighborSolicits : s.InNeighborAdvertisements);
  uint8_t m[256];
  size_t n = p->len();
  if (n < 24 || n > sizeof m || ip.ttl != 255 || ifp.type != ARPHRD_ETHER) {
    // Too short, forwarded by a router, or too long for an option list
    // we would care about; ND runs on Ethernet only.
    bump(s.InErrors);
    Pkt::free(p);
    return;
  }
  p->copy_out(0, n, m);
  Pkt::free(p);
  In6Addr target;
  std::memcpy(target.b, m + 8, 16);
  const uint8_t* mac;
  bool dad = ip.src.v6.any();
  if (m[1] != 0 || target.multicast() ||
      !parse_options(m + 24, n - 24, type == ND_NEIGHBOR_SOLICIT ? kOptSourceLl : kOptTargetLl, &mac)) {
    bump(s.InErrors);
    return;
  }
  int64_t now = mono_now_ns();
  int ours = our_addr(ifp, target, now);
  if (type == ND_NEIGHBOR_SOLICIT) {
    if (dad && (mac || !(ip.dst.v6 == solicited_node(target)))) {
      bump(s.InErrors);
      return;
    }
    if (!ours) return;  // not a target of ours (we proxy nothing)
    if (dad) {
      // Someone else wants the address: if ours is still tentative, it
      // is theirs (RFC 4862 5.4.3); otherwise defend it.
      if (ours == 2) {
        duplicate_found(ifp, target);
        return;
      }
      send_na(ifp, target, all_nodes(), target, false);
      return;
    }
    if (mac) ether_nd_learn(ifp, ip.src.v6, mac, false, false, false);
    send_na(ifp, target, ip.src.v6, target, true);
    return;
  }
  bool solicited = m[4] & 0x40, override = m[4] & 0x20;
  if (solicited && ip.dst.v6.multicast()) {
    bump(s.InErrors);
    return;
  }
  if (ours) {
    // Someone advertises our address: a duplicate while DAD runs (RFC
    // 4862 5.4.4), otherwise left to the administrator.
    if (ours == 2) duplicate_found(ifp, target);
    return;
  }
  ether_nd_learn(ifp, target, mac, true, solicited, override);
}

}  // namespace rump
