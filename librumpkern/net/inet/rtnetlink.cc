// rtnetlink (NETLINK_ROUTE): the requests about interfaces (RTM_*LINK),
// addresses (RTM_*ADDR), routes (RTM_*ROUTE) and neighbours (RTM_*NEIGH)
// over the inet state, with Linux's messages, attributes and errors
// (net/core/rtnetlink.c, neighbour.c, net/ipv4/devinet.c, fib_frontend.c,
// route.c, net/ipv6/addrconf.c, route.c), and the notifications of
// changes made by any path.
//
// What Linux has and this kernel does not: policy rules (lookups use
// table main, then default; routes of other tables are kept and listed;
// the IPv4 prefix routes of loopback interfaces, which Linux keeps as
// local routes in table local, are reported there), no route types besides
// unicast, no link creation or renaming (deletion: the interfaces made by
// name, not lo), no proxy neighbours, and neighbour notifications only
// for what an administrator changes (not for what the protocols learn).
// Errors carry Linux's extended ACK message where this file names one
// (NETLINK_EXT_ACK), and the offset of the attribute for a policy error,
// but no NLMSGERR_ATTR_POLICY.
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if_arp.h>

#include "kern/clock.h"
#include "kern/kernel.h"
#include "kern/proc.h"
#include "net/inet/if_ether.h"
#include "net/inet/ip_var.h"
#include "net/inet/netlink.h"

namespace rump {

namespace {

constexpr uint32_t kInfinityLife = 0xffffffff;
constexpr uint32_t kIp6RtPrioUser = 1024, kIp6RtPrioAddrconf = 256;
// <linux/if.h>'s, which cannot be included next to <net/if.h>.
constexpr uint32_t kIffLowerUp = 1u << 16, kIffDormant = 1u << 17;
constexpr uint8_t kOperUnknown = 0, kOperDown = 2, kOperUp = 6;

// --- attributes of requests

// Linux's policy check of a fixed-size attribute: shorter is ERANGE.
int need(NlRequest& rq, const NlAttrs& a, int type, size_t len) {
  if (!a.tb[type] || a.len(type) >= len) return 0;
  return rq.fail(ERANGE, "Attribute failed policy validation", a.tb[type]);
}

uint32_t get_u32(const NlAttrs& a, int type) {
  uint32_t v;
  std::memcpy(&v, a.data(type), 4);
  return v;
}

// An address attribute of family f (ERANGE: too short; EAFNOSUPPORT: f).
int get_addr(const NlAttrs& a, int type, int f, IpAddr& out) {
  if (!a.tb[type]) return 0;
  if (f == AF_INET) {
    if (a.len(type) < 4) return ERANGE;
    InAddr x;
    std::memcpy(&x.s, a.data(type), 4);
    out = IpAddr::of(x);
    return 0;
  }
  if (a.len(type) < 16) return EINVAL;
  In6Addr x;
  std::memcpy(x.b, a.data(type), 16);
  out = IpAddr::of(x);
  return 0;
}

// IFLA_IFNAME as a C string (ERANGE: too long).
int get_ifname(const NlAttrs& a, char (&name)[IFNAMSIZ]) {
  std::memset(name, 0, sizeof name);
  if (!a.tb[IFLA_IFNAME]) return 0;
  size_t n = a.len(IFLA_IFNAME);
  const char* s = static_cast<const char*>(a.data(IFLA_IFNAME));
  if (n && s[n - 1] == '\0') n--;
  size_t z = 0;
  while (z < n && s[z]) z++;
  if (z > IFNAMSIZ - 1) return ERANGE;
  std::memcpy(name, s, z);
  return 0;
}

template <class T>
bool fixed(const NlRequest& rq, T& out, NlAttrs& attrs) {
  if (rq.payload_len() < sizeof(T)) return false;
  std::memcpy(&out, rq.payload(), sizeof(T));
  size_t hl = NLMSG_ALIGN(sizeof(T));
  if (rq.payload_len() > hl) nl_parse(rq.payload() + hl, rq.payload_len() - hl, attrs);
  return true;
}

// Does a dump asked for family cover f? (A family nobody serves falls
// back to PF_UNSPEC's handler, which dumps them all.)
bool dumps_family(int family, int f) { return family == f || (family != AF_INET && family != AF_INET6); }

uint8_t scope_of(const IpAddr& a) {
  if (a.family == AF_INET) return a.v4.loopback() ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
  if (a.v6.loopback()) return RT_SCOPE_HOST;
  return a.v6.linklocal() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
}

uint32_t centisecs(Kernel& k) {
  int64_t ns = mono_now_ns() - k.boot_time_ns();
  return static_cast<uint32_t>(ns / 10000000);
}

// NLMSG_DONE, in a record of its own after the objects (Linux's dump
// callback returns once more, with nothing, before it is sent).
Result<void> done(NlRequest& rq, NlOut& dump) {
  dump.finish();
  NlMsg m(NLMSG_DONE, NLM_F_MULTI, rq.hdr.nlmsg_seq, rq.portid);
  *m.header<int>() = 0;
  return dump.add(m.data(), m.len());
}

// --- links

uint32_t link_flags(const Ifnet& ifp) {
  uint32_t f = ifp.flags.load() & ~static_cast<uint32_t>(IFF_RUNNING | kIffLowerUp | kIffDormant);
  if (f & IFF_UP) f |= IFF_RUNNING | kIffLowerUp;
  return f;
}

void fill_link(NlMsg& m, const Ifnet& ifp, uint32_t change) {
  auto* i = m.header<ifinfomsg>();
  i->ifi_family = AF_UNSPEC;
  i->ifi_type = static_cast<unsigned short>(ifp.type);
  i->ifi_index = ifp.index;
  i->ifi_flags = link_flags(ifp);
  i->ifi_change = change;
  bool up = ifp.up();
  bool loop = ifp.type == ARPHRD_LOOPBACK;
  m.put_str(IFLA_IFNAME, ifp.name);
  m.put_u32(IFLA_TXQLEN, loop ? 1000 : 1000);
  m.put_u8(IFLA_OPERSTATE, !up ? kOperDown : loop ? kOperUnknown : kOperUp);
  m.put_u8(IFLA_LINKMODE, 0);
  m.put_u32(IFLA_MTU, ifp.mtu.load());
  m.put_u32(IFLA_GROUP, 0);
  m.put_u32(IFLA_PROMISCUITY, 0);
  m.put_u32(IFLA_NUM_TX_QUEUES, 1);
  m.put_u32(IFLA_NUM_RX_QUEUES, 1);
  m.put_u8(IFLA_CARRIER, 1);
  uint8_t bcast[6];
  std::memset(bcast, loop ? 0 : 0xff, sizeof bcast);
  m.put(IFLA_ADDRESS, ifp.hwaddr, 6);
  m.put(IFLA_BROADCAST, bcast, 6);
  const IfCounters& c = ifp.counters;
  rtnl_link_stats64 s64{};
  s64.rx_packets = c.ipackets.load();
  s64.rx_bytes = c.ibytes.load();
  s64.rx_errors = c.ierrors.load();
  s64.rx_dropped = c.iqdrops.load();
  s64.tx_packets = c.opackets.load();
  s64.tx_bytes = c.obytes.load();
  s64.tx_errors = c.oerrors.load();
  m.put(IFLA_STATS64, &s64, sizeof s64);
  rtnl_link_stats s{};
  s.rx_packets = static_cast<uint32_t>(s64.rx_packets);
  s.rx_bytes = static_cast<uint32_t>(s64.rx_bytes);
  s.rx_errors = static_cast<uint32_t>(s64.rx_errors);
  s.rx_dropped = static_cast<uint32_t>(s64.rx_dropped);
  s.tx_packets = static_cast<uint32_t>(s64.tx_packets);
  s.tx_bytes = static_cast<uint32_t>(s64.tx_bytes);
  s.tx_errors = static_cast<uint32_t>(s64.tx_errors);
  m.put(IFLA_STATS, &s, sizeof s);
}

int dump_links(NlRequest& rq, NlOut& dump) {
  {
    SharedLocker g(rq.st.if_lock_);
    for (const Ifnet& i : rq.st.ifs_) {
      NlMsg m(RTM_NEWLINK, NLM_F_MULTI, rq.hdr.nlmsg_seq, rq.portid);
      fill_link(m, i, 0);
      if (!dump.add(m.data(), m.len()).ok()) return ENOMEM;
    }
  }
  return done(rq, dump).ok() ? kNlDumpStarted : ENOMEM;
}

// The interface a link request names: by index, else by IFLA_IFNAME.
// null with err: EINVAL (neither), ENODEV, ERANGE.
RefPtr<Ifnet> link_of(NlRequest& rq, const ifinfomsg& ifm, const NlAttrs& a, int& error, bool name_needed) {
  char name[IFNAMSIZ];
  if ((error = get_ifname(a, name))) return nullptr;
  RefPtr<Ifnet> ifp;
  if (ifm.ifi_index > 0) {
    ifp = rq.st.find_if(ifm.ifi_index);
  } else if (a.tb[IFLA_IFNAME]) {
    ifp = rq.st.find_if(name);
  } else {
    error = name_needed ? EINVAL : ENODEV;
    return nullptr;
  }
  if (!ifp) error = ENODEV;
  return ifp;
}

int get_link(NlRequest& rq, NlOut& out) {
  ifinfomsg ifm;
  NlAttrs a;
  if (!fixed(rq, ifm, a)) return EINVAL;
  int error = 0;
  RefPtr<Ifnet> ifp = link_of(rq, ifm, a, error, true);
  if (!ifp) return error;
  NlMsg m(RTM_NEWLINK, 0, rq.hdr.nlmsg_seq, rq.portid);
  {
    SharedLocker g(rq.st.if_lock_);
    fill_link(m, *ifp, 0);
  }
  return out.add(m.data(), m.len()).ok() ? 0 : ENOMEM;
}

// do_setlink: the MTU, then the flags (only IFF_UP has an effect here).
int set_link(NlRequest& rq, Ifnet& ifp, const ifinfomsg& ifm, const NlAttrs& a) {
  if (int e = need(rq, a, IFLA_MTU, 4)) return e;
  char name[IFNAMSIZ];
  if (int e = get_ifname(a, name)) return e;
  if (a.tb[IFLA_IFNAME] && ifm.ifi_index > 0 && std::strncmp(name, ifp.name, IFNAMSIZ) != 0) return EOPNOTSUPP;
  if (a.tb[IFLA_MTU]) {
    uint32_t mtu = get_u32(a, IFLA_MTU);
    if (mtu < 68 || mtu > 65536) return EINVAL;
    if (ifp.mtu.exchange(mtu) != mtu) rtnl_notify_link(ifp);
  }
  if (ifm.ifi_flags || ifm.ifi_change) {
    uint32_t want = ifm.ifi_flags;
    if (ifm.ifi_change) want = (want & ifm.ifi_change) | (link_flags(ifp) & ~ifm.ifi_change);
    bool up = want & IFF_UP;
    if (up != ifp.up()) {
      Result<void> r = if_set_up(ifp, up);
      if (!r.ok()) return r.error();
    }
  }
  return 0;
}

int new_link(NlRequest& rq, bool setlink) {
  ifinfomsg ifm;
  NlAttrs a;
  if (!fixed(rq, ifm, a)) return EINVAL;
  int error = 0;
  RefPtr<Ifnet> ifp = link_of(rq, ifm, a, error, setlink);
  if (!ifp) {
    if (setlink || error != ENODEV || !(rq.hdr.nlmsg_flags & NLM_F_CREATE)) return error;
    return EOPNOTSUPP;  // making links (IFLA_LINKINFO) is not supported
  }
  if (!setlink) {
    if (rq.hdr.nlmsg_flags & NLM_F_EXCL) return EEXIST;
    if (rq.hdr.nlmsg_flags & NLM_F_REPLACE) return EOPNOTSUPP;
  }
  return set_link(rq, *ifp, ifm, a);
}

int del_link(NlRequest& rq) {
  ifinfomsg ifm;
  NlAttrs a;
  if (!fixed(rq, ifm, a)) return EINVAL;
  int error = 0;
  RefPtr<Ifnet> ifp = link_of(rq, ifm, a, error, true);
  if (!ifp) return error;
  // lo stays, as Linux's (it has no rtnl_link_ops to delete it by).
  if (ifp->type == ARPHRD_LOOPBACK) return EOPNOTSUPP;
  if_detach(rq.st, *ifp);
  return 0;
}

// --- addresses

bool secondary4(const Ifnet& ifp, int n) {
  const IfAddr4& x = ifp.addr4[n];
  for (int i = 0; i < n; i++)
    if (ifp.addr4[i].plen == x.plen && (ifp.addr4[i].addr.s & x.mask.s) == (x.addr.s & x.mask.s)) return true;
  return false;
}

void fill_addr4(NlMsg& m, const Ifnet& ifp, const IfAddr4& x, bool secondary, uint32_t now) {
  auto* h = m.header<ifaddrmsg>();
  uint32_t flags = IFA_F_PERMANENT | (secondary ? IFA_F_SECONDARY : 0);
  h->ifa_family = AF_INET;
  h->ifa_prefixlen = x.plen;
  h->ifa_flags = static_cast<uint8_t>(flags);
  h->ifa_scope = scope_of(IpAddr::of(x.addr));
  h->ifa_index = static_cast<uint32_t>(ifp.index);
  m.put(IFA_ADDRESS, &x.addr.s, 4);
  m.put(IFA_LOCAL, &x.addr.s, 4);
  // lo's own 127.0.0.1 has no broadcast address in Linux's listing (127/8
  // broadcasts are a route there); ours keeps one for delivery.
  bool lo_own = ifp.type == ARPHRD_LOOPBACK && x.addr.loopback();
  if (x.bcast.s && !lo_own) m.put(IFA_BROADCAST, &x.bcast.s, 4);
  m.put_str(IFA_LABEL, ifp.name);
  m.put_u32(IFA_FLAGS, flags);
  ifa_cacheinfo ci{kInfinityLife, kInfinityLife, now, now};
  m.put(IFA_CACHEINFO, &ci, sizeof ci);
}

// Seconds left until a lifetime's deadline (0: infinite).
uint32_t life_left(int64_t until_ns, int64_t now_ns) {
  if (!until_ns) return kInfinityLife;
  return until_ns > now_ns ? static_cast<uint32_t>((until_ns - now_ns) / kNsPerSec) : 0;
}

void fill_addr6(NlMsg& m, const Ifnet& ifp, const IfAddr6& x, uint32_t now, bool tentative = false) {
  auto* h = m.header<ifaddrmsg>();
  int64_t now_ns = mono_now_ns();
  // An autoconfigured address is not permanent ("dynamic" to ip) and
  // reports what is left of its lifetimes; past the preferred one it is
  // deprecated.
  uint32_t flags = x.autoconf ? 0 : IFA_F_PERMANENT;
  if (tentative || x.tentative_until_ns > now_ns) flags |= IFA_F_TENTATIVE;
  if (x.deprecated(now_ns)) flags |= IFA_F_DEPRECATED;
  h->ifa_family = AF_INET6;
  h->ifa_prefixlen = x.plen;
  h->ifa_flags = static_cast<uint8_t>(flags);
  h->ifa_scope = scope_of(IpAddr::of(x.addr));
  h->ifa_index = static_cast<uint32_t>(ifp.index);
  m.put(IFA_ADDRESS, x.addr.b, 16);
  ifa_cacheinfo ci{kInfinityLife, kInfinityLife, now, now};
  if (x.autoconf) {
    ci.ifa_prefered = life_left(x.preferred_until_ns, now_ns);
    ci.ifa_valid = life_left(x.valid_until_ns, now_ns);
  }
  m.put(IFA_CACHEINFO, &ci, sizeof ci);
  m.put_u32(IFA_FLAGS, flags);
}

int dump_addrs(NlRequest& rq, NlOut& dump) {
  if (rq.payload_len() < 1) return EINVAL;
  int family = static_cast<uint8_t>(rq.payload()[0]);
  ifaddrmsg ifm{};
  NlAttrs a;
  int only = 0;
  if (fixed(rq, ifm, a) && rq.strict) only = static_cast<int>(ifm.ifa_index);
  uint32_t now = centisecs(rq.st.kernel);
  {
    SharedLocker g(rq.st.if_lock_);
    for (int f : {AF_INET, AF_INET6}) {
      if (!dumps_family(family, f)) continue;
      for (const Ifnet& i : rq.st.ifs_) {
        if (only && i.index != only) continue;
        int n = f == AF_INET ? i.naddr4 : i.naddr6;
        for (int k = 0; k < n; k++) {
          NlMsg m(RTM_NEWADDR, NLM_F_MULTI, rq.hdr.nlmsg_seq, rq.portid);
          if (f == AF_INET) fill_addr4(m, i, i.addr4[k], secondary4(i, k), now);
          else fill_addr6(m, i, i.addr6[k], now);
          if (!dump.add(m.data(), m.len()).ok()) return ENOMEM;
        }
      }
    }
  }
  return done(rq, dump).ok() ? kNlDumpStarted : ENOMEM;
}

// IFA_LOCAL, else IFA_ADDRESS (IPv6's extract_addr; IPv4 needs IFA_LOCAL).
int addr_of_request(const NlAttrs& a, int family, IpAddr& addr) {
  if (family == AF_INET) {
    if (!a.tb[IFA_LOCAL]) return EINVAL;
    return get_addr(a, IFA_LOCAL, AF_INET, addr);
  }
  if (a.tb[IFA_LOCAL]) return get_addr(a, IFA_LOCAL, AF_INET6, addr);
  if (a.tb[IFA_ADDRESS]) return get_addr(a, IFA_ADDRESS, AF_INET6, addr);
  return EINVAL;
}

int new_addr(NlRequest& rq, int family) {
  ifaddrmsg ifm;
  NlAttrs a;
  if (!fixed(rq, ifm, a)) return EINVAL;
  IpAddr addr;
  if (family == AF_INET && ifm.ifa_prefixlen > 32) return EINVAL;
  if (int e = addr_of_request(a, family, addr)) return e;
  if (family == AF_INET6 && ifm.ifa_prefixlen > 128) return EINVAL;
  RefPtr<Ifnet> ifp = rq.st.find_if(static_cast<int>(ifm.ifa_index));
  if (!ifp) return ENODEV;
  bool exists = false;
  {
    SharedLocker g(rq.st.if_lock_);
    if (family == AF_INET) {
      for (int i = 0; i < ifp->naddr4; i++)
        if (ifp->addr4[i].addr == addr.v4 && ifp->addr4[i].plen == ifm.ifa_prefixlen) exists = true;
    } else {
      for (int i = 0; i < ifp->naddr6; i++)
        if (ifp->addr6[i].addr == addr.v6) exists = true;
    }
  }
  uint16_t fl = rq.hdr.nlmsg_flags;
  if (exists && ((fl & NLM_F_EXCL) || !(fl & NLM_F_REPLACE))) return EEXIST;
  Result<void> r;
  if (family == AF_INET) {
    IpAddr bcast = IpAddr::of(InAddr{});
    if (int e = get_addr(a, IFA_BROADCAST, AF_INET, bcast)) return e;
    r = if_add_addr4(*ifp, addr.v4, ifm.ifa_prefixlen, false, &bcast.v4);
  } else {
    r = if_add_addr6(*ifp, addr.v6, ifm.ifa_prefixlen);
  }
  return r.ok() ? 0 : r.error();
}

int del_addr(NlRequest& rq, int family) {
  ifaddrmsg ifm;
  NlAttrs a;
  if (!fixed(rq, ifm, a)) return EINVAL;
  if (family == AF_INET6) {
    IpAddr addr;
    if (int e = addr_of_request(a, family, addr)) return e;
    if (ifm.ifa_prefixlen > 128) return EINVAL;
    if (!ifm.ifa_index) return ENODEV;
    RefPtr<Ifnet> ifp = rq.st.find_if(static_cast<int>(ifm.ifa_index));
    if (!ifp) return ENODEV;
    bool found = false;
    {
      SharedLocker g(rq.st.if_lock_);
      for (int i = 0; i < ifp->naddr6; i++)
        if (ifp->addr6[i].addr == addr.v6 && ifp->addr6[i].plen == ifm.ifa_prefixlen) found = true;
    }
    if (!found) return EADDRNOTAVAIL;
    Result<void> r = if_del_addr6(*ifp, addr.v6);
    return r.ok() ? 0 : r.error();
  }
  // IPv4: the first address that matches every attribute given
  // (inet_rtm_deladdr).
  RefPtr<Ifnet> ifp = rq.st.find_if(static_cast<int>(ifm.ifa_index));
  if (!ifp) return ENODEV;
  IpAddr local, address;
  if (int e = get_addr(a, IFA_LOCAL, AF_INET, local)) return e;
  if (int e = get_addr(a, IFA_ADDRESS, AF_INET, address)) return e;
  char label[IFNAMSIZ] = {};
  if (a.tb[IFA_LABEL]) {
    size_t n = a.len(IFA_LABEL) < IFNAMSIZ - 1 ? a.len(IFA_LABEL) : IFNAMSIZ - 1;
    std::memcpy(label, a.data(IFA_LABEL), n);
  }
  InAddr victim;
  bool found = false;
  {
    SharedLocker g(rq.st.if_lock_);
    for (int i = 0; i < ifp->naddr4 && !found; i++) {
      const IfAddr4& x = ifp->addr4[i];
      if (a.tb[IFA_LOCAL] && !(x.addr == local.v4)) continue;
      if (a.tb[IFA_LABEL] && std::strncmp(label, ifp->name, IFNAMSIZ) != 0) continue;
      if (a.tb[IFA_ADDRESS] &&
          (ifm.ifa_prefixlen != x.plen || (address.v4.s & x.mask.s) != (x.addr.s & x.mask.s)))
        continue;
      victim = x.addr;
      found = true;
    }
  }
  if (!found) return EADDRNOTAVAIL;
  Result<void> r = if_del_addr4(*ifp, victim);
  return r.ok() ? 0 : r.error();
}

int get_addr6(NlRequest& rq, NlOut& out) {
  ifaddrmsg ifm;
  NlAttrs a;
  if (!fixed(rq, ifm, a)) return EINVAL;
  IpAddr addr;
  if (int e = addr_of_request(a, AF_INET6, addr)) return e;
  uint32_t now = centisecs(rq.st.kernel);
  SharedLocker g(rq.st.if_lock_);
  for (const Ifnet& i : rq.st.ifs_) {
    if (ifm.ifa_index && i.index != static_cast<int>(ifm.ifa_index)) continue;
    for (int k = 0; k < i.naddr6; k++) {
      if (!(i.addr6[k].addr == addr.v6)) continue;
      NlMsg m(RTM_NEWADDR, 0, rq.hdr.nlmsg_seq, rq.portid);
      fill_addr6(m, i, i.addr6[k], now);
      return out.add(m.data(), m.len()).ok() ? 0 : ENOMEM;
    }
  }
  return EADDRNOTAVAIL;
}

// --- routes

// How a route is reported: IPv4 prefix routes of a loopback interface
// are local routes of table local, as Linux makes them.
struct RouteView {
  uint32_t table;
  uint8_t type, scope, protocol;
  uint32_t priority;
  IpAddr prefsrc;
};

RouteView view_of(InetState& st, const RouteEntry& e) {
  RouteView v{};
  bool v4 = e.dst.family == AF_INET;
  v.table = e.info.table;
  v.type = RTN_UNICAST;
  v.protocol = e.info.protocol != RouteInfo::kDerive ? e.info.protocol : e.connected ? RTPROT_KERNEL : RTPROT_BOOT;
  v.scope = !v4 ? RT_SCOPE_UNIVERSE
            : e.info.scope != RouteInfo::kDerive ? e.info.scope
            : e.gateway.family ? RT_SCOPE_UNIVERSE
                               : RT_SCOPE_LINK;
  v.priority = e.info.priority;
  if (!v4 && v.priority == 0) v.priority = e.connected ? kIp6RtPrioAddrconf : kIp6RtPrioUser;
  v.prefsrc = e.info.prefsrc;
  if (v4 && e.connected) {
    // The address that made it is its preferred source.
    RefPtr<Ifnet> ifp = st.find_if(e.ifindex);
    if (ifp) {
      SharedLocker g(st.if_lock_);
      for (int i = 0; i < ifp->naddr4; i++)
        if (ifp->addr4[i].plen == e.plen && (ifp->addr4[i].addr.s & ifp->addr4[i].mask.s) == e.dst.v4.s) {
          v.prefsrc = IpAddr::of(ifp->addr4[i].addr);
          break;
        }
      if (ifp->type == ARPHRD_LOOPBACK) {
        v.table = RT_TABLE_LOCAL;
        v.type = RTN_LOCAL;
        v.scope = RT_SCOPE_HOST;
      }
    }
  }
  return v;
}

size_t addr_len(const IpAddr& a) { return a.family == AF_INET ? 4 : 16; }
const void* addr_bytes(const IpAddr& a) {
  return a.family == AF_INET ? static_cast<const void*>(&a.v4.s) : static_cast<const void*>(a.v6.b);
}

void fill_route(NlMsg& m, const RouteEntry& e, const RouteView& v) {
  auto* r = m.header<rtmsg>();
  r->rtm_family = e.dst.family;
  r->rtm_dst_len = e.plen;
  r->rtm_table = static_cast<uint8_t>(v.table < 256 ? v.table : RT_TABLE_COMPAT);
  r->rtm_protocol = v.protocol;
  r->rtm_scope = v.scope;
  r->rtm_type = v.type;
  m.put_u32(RTA_TABLE, v.table);
  if (e.plen) m.put(RTA_DST, addr_bytes(e.dst), addr_len(e.dst));
  if (e.dst.family == AF_INET && v.priority) m.put_u32(RTA_PRIORITY, v.priority);
  if (v.prefsrc.family) m.put(RTA_PREFSRC, addr_bytes(v.prefsrc), addr_len(v.prefsrc));
  if (e.gateway.family) m.put(RTA_GATEWAY, addr_bytes(e.gateway), addr_len(e.gateway));
  m.put_u32(RTA_OIF, static_cast<uint32_t>(e.ifindex));
  if (e.dst.family == AF_INET6) {
    m.put_u32(RTA_PRIORITY, v.priority);
    m.put_u8(RTA_PREF, 0);
  }
}

// The route of table local for one of our addresses (a host route of
// type local through the interface that holds it).
void fill_local_route(NlMsg& m, const IpAddr& a, int ifindex) {
  RouteEntry e;
  bool v4 = a.family == AF_INET;
  e.dst = a;
  e.plen = v4 ? 32 : 128;
  e.ifindex = ifindex;
  RouteView v{RT_TABLE_LOCAL, RTN_LOCAL, static_cast<uint8_t>(v4 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE), RTPROT_KERNEL, 0,
              v4 ? a : IpAddr()};
  fill_route(m, e, v);
}

// Table local as far as this kernel has it: a host route of type local
// for each address, through the interface that holds it.
int dump_local_routes(NlRequest& rq, int family, NlOut& dump) {
  SharedLocker g(rq.st.if_lock_);
  for (int f : {AF_INET, AF_INET6}) {
    if (!dumps_family(family, f)) continue;
    for (const Ifnet& i : rq.st.ifs_) {
      int n = f == AF_INET ? i.naddr4 : i.naddr6;
      for (int k = 0; k < n; k++) {
        NlMsg m(RTM_NEWROUTE, NLM_F_MULTI, rq.hdr.nlmsg_seq, rq.portid);
        fill_local_route(m, f == AF_INET ? IpAddr::of(i.addr4[k].addr) : IpAddr::of(i.addr6[k].addr), i.index);
        if (!dump.add(m.data(), m.len()).ok()) return ENOMEM;
      }
    }
  }
  return 0;
}

int dump_routes(NlRequest& rq, NlOut& dump) {
  if (rq.payload_len() < 1) return EINVAL;
  int family = static_cast<uint8_t>(rq.payload()[0]);
  rtmsg rtm{};
  NlAttrs a;
  uint32_t table = 0;
  if (fixed(rq, rtm, a) && rq.strict) {
    // Strict dumps filter by table (RTA_TABLE over rtm_table).
    table = rtm.rtm_table;
    if (a.tb[RTA_TABLE] && a.len(RTA_TABLE) >= 4) table = get_u32(a, RTA_TABLE);
  }
  // One route at a time is copied out under the table's lock: its view
  // reads the interfaces.
  for (int f : {AF_INET, AF_INET6}) {
    if (!dumps_family(family, f)) continue;
    int n = 0;
    {
      SharedLocker g(rq.st.rt_lock_);
      for (const RouteEntry& e : rq.st.routes_)
        if (e.dst.family == f) n++;
    }
    for (int k = 0; k < n; k++) {
      RouteEntry copy;
      bool have = false;
      {
        SharedLocker g(rq.st.rt_lock_);
        int j = 0;
        for (const RouteEntry& e : rq.st.routes_) {
          if (e.dst.family != f) continue;
          if (j++ == k) {
            copy.dst = e.dst;
            copy.plen = e.plen;
            copy.gateway = e.gateway;
            copy.ifindex = e.ifindex;
            copy.connected = e.connected;
            copy.info = e.info;
            have = true;
            break;
          }
        }
      }
      if (!have) break;
      RouteView v = view_of(rq.st, copy);
      if (table && v.table != table) continue;
      NlMsg m(RTM_NEWROUTE, NLM_F_MULTI, rq.hdr.nlmsg_seq, rq.portid);
      fill_route(m, copy, v);
      if (!dump.add(m.data(), m.len()).ok()) return ENOMEM;
    }
  }
  if (!table || table == RT_TABLE_LOCAL) {
    if (int e = dump_local_routes(rq, family, dump)) return e;
  }
  return done(rq, dump).ok() ? kNlDumpStarted : ENOMEM;
}

struct RouteReq {
  rtmsg rtm;
  NlAttrs a;
  IpAddr dst, gw, prefsrc;
  int oif = 0;
  int64_t priority = -1;
  uint32_t table = 0;
};

// rtm_to_fib_config / rtm_to_fib6_config: the checks both families share.
int parse_route(NlRequest& rq, int family, RouteReq& r) {
  if (!fixed(rq, r.rtm, r.a)) return EINVAL;
  const NlAttrs& a = r.a;
  int maxlen = family == AF_INET ? 32 : 128;
  for (int t : {RTA_OIF, RTA_PRIORITY, RTA_TABLE})
    if (int e = need(rq, a, t, 4)) return e;
  if (r.rtm.rtm_dst_len > maxlen) return EINVAL;
  if (int e = get_addr(a, RTA_DST, family, r.dst)) return e;
  if (int e = get_addr(a, RTA_GATEWAY, family, r.gw)) return e;
  if (int e = get_addr(a, RTA_PREFSRC, family, r.prefsrc)) return e;
  if (!r.dst.family) r.dst.family = static_cast<uint8_t>(family);
  if (a.tb[RTA_OIF]) r.oif = static_cast<int>(get_u32(a, RTA_OIF));
  if (a.tb[RTA_PRIORITY]) r.priority = get_u32(a, RTA_PRIORITY);
  r.table = r.rtm.rtm_table;
  if (a.tb[RTA_TABLE]) r.table = get_u32(a, RTA_TABLE);
  return 0;
}

// The prefix of a route to add or delete: IPv4 rejects host bits
// (EINVAL), IPv6 clears them.
int route_prefix(IpAddr& a, int plen) {
  IpAddr p = ip_prefix(a, plen);
  if (a.family == AF_INET && !(p == a)) return EINVAL;
  a = p;
  return 0;
}

int new_route(NlRequest& rq, int family) {
  RouteReq r;
  if (int e = parse_route(rq, family, r)) return e;
  if (r.rtm.rtm_type != RTN_UNICAST) return EOPNOTSUPP;
  if (int e = route_prefix(r.dst, r.rtm.rtm_dst_len)) return e;
  RefPtr<Ifnet> ifp;
  if (r.oif) {
    ifp = rq.st.find_if(r.oif);
    if (!ifp) return ENODEV;
    if (!ifp->up()) return ENETDOWN;
  } else if (!r.gw.family) {
    return ENODEV;
  }
  RouteInfo info;
  info.priority = r.priority >= 0 ? static_cast<uint32_t>(r.priority) : family == AF_INET6 ? kIp6RtPrioUser : 0;
  info.protocol = r.rtm.rtm_protocol;
  info.scope = family == AF_INET ? r.rtm.rtm_scope : RT_SCOPE_UNIVERSE;
  info.prefsrc = r.prefsrc;
  // Any table (0: main), made by its first route as fib_new_table does.
  info.table = r.table ? r.table : RT_TABLE_MAIN;
  uint16_t fl = rq.hdr.nlmsg_flags;
  bool exists = false;
  {
    SharedLocker g(rq.st.rt_lock_);
    for (const RouteEntry& e : rq.st.routes_)
      if (e.plen == r.rtm.rtm_dst_len && e.info.priority == info.priority && e.dst == r.dst &&
          e.info.table == info.table)
        exists = true;
  }
  if (exists && ((fl & NLM_F_EXCL) || !(fl & NLM_F_REPLACE))) return EEXIST;
  if (!exists && !(fl & NLM_F_CREATE)) return ENOENT;
  Result<void> res = route_add(rq.st, r.dst, r.rtm.rtm_dst_len, r.gw, r.oif, false, info);
  if (!res.ok()) return res.error() == ENXIO ? ENODEV : res.error();
  return 0;
}

int del_route(NlRequest& rq, int family) {
  RouteReq r;
  if (int e = parse_route(rq, family, r)) return e;
  if (int e = route_prefix(r.dst, r.rtm.rtm_dst_len)) return e;
  Result<void> res =
      route_delete(rq.st, r.dst, r.rtm.rtm_dst_len, r.priority, r.oif, r.gw, r.table ? r.table : RT_TABLE_MAIN);
  return res.ok() ? 0 : res.error();
}

// The preferred source of the table local route an IPv4 destination of
// our own matches (Linux's fib_add_ifaddr makes them): its own address's,
// else the prefix route of an address of lo (127.0.0.0/8 src 127.0.0.1).
IpAddr local_prefsrc(InetState& st, const IpAddr& dst) {
  SharedLocker g(st.if_lock_);
  for (const Ifnet& i : st.ifs_)
    for (int k = 0; k < i.naddr4; k++)
      if (i.addr4[k].addr == dst.v4) return dst;
  const IfAddr4* a = lo_prefix_locked(st, dst.v4);
  return a ? IpAddr::of(a->addr) : dst;
}

// `ip route get`: the route one packet to RTA_DST would take.
int get_route(NlRequest& rq, int family, NlOut& out) {
  RouteReq r;
  if (int e = parse_route(rq, family, r)) return e;
  Result<RouteResult> rr = route_lookup(rq.st, r.dst);
  if (!rr.ok()) return rr.error();
  IpAddr src = r.dst;
  if (!rr->local) {
    Result<IpAddr> s = ip_select_source(rq.st.kernel, r.dst);
    if (s.ok()) src = *s;
  } else if (family == AF_INET) {
    src = local_prefsrc(rq.st, r.dst);
  }
  NlMsg m(RTM_NEWROUTE, 0, rq.hdr.nlmsg_seq, rq.portid);
  auto* h = m.header<rtmsg>();
  // IPv6 names the table the route came from (rt6_fill_node: local for
  // our own addresses); IPv4 says main whichever of main and default it
  // was, as Linux does without policy rules.
  uint32_t table = family == AF_INET6 ? rr->table : RT_TABLE_MAIN;
  h->rtm_family = static_cast<uint8_t>(family);
  h->rtm_dst_len = family == AF_INET ? 32 : 128;
  h->rtm_table = static_cast<uint8_t>(table < 256 ? table : RT_TABLE_COMPAT);
  h->rtm_protocol = RTPROT_UNSPEC;
  h->rtm_scope = RT_SCOPE_UNIVERSE;
  h->rtm_type = rr->local ? RTN_LOCAL : RTN_UNICAST;
  h->rtm_flags = family == AF_INET ? RTM_F_CLONED : 0;
  m.put_u32(RTA_TABLE, table);
  m.put(RTA_DST, addr_bytes(r.dst), addr_len(r.dst));
  m.put_u32(RTA_OIF, static_cast<uint32_t>(rr->ifp->index));
  m.put(RTA_PREFSRC, addr_bytes(src), addr_len(src));
  if (!(rr->nexthop == r.dst)) m.put(RTA_GATEWAY, addr_bytes(rr->nexthop), addr_len(rr->nexthop));
  return out.add(m.data(), m.len()).ok() ? 0 : ENOMEM;
}


// --- neighbours (net/core/neighbour.c: neigh_add, neigh_delete,
// neigh_get, neigh_dump_info)

constexpr uint16_t kNudValid = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY;
constexpr size_t kNeighMax = 256;  // the most one interface's cache holds
constexpr int kMaxEtherIfs = 64;   // the interfaces one dump covers

// ip's entry on ifp, if there is one.
bool rtnl_neigh_of(Ifnet& ifp, const IpAddr& ip, NeighInfo& out) {
  auto* all = static_cast<NeighInfo*>(ifp.state().kernel.kmem().alloc(kNeighMax * sizeof(NeighInfo)));
  if (!all) return false;
  size_t n = ether_neigh_list(ifp, ip.family, all, kNeighMax);
  bool found = false;
  for (size_t j = 0; j < n && j < kNeighMax && !found; j++)
    if (all[j].ip == ip) {
      out = all[j];
      found = true;
    }
  Kmem::free(all);
  return found;
}

void fill_neigh(NlMsg& m, int ifindex, const NeighInfo& n) {
  auto* h = m.header<ndmsg>();
  h->ndm_family = n.ip.family;
  h->ndm_ifindex = ifindex;
  h->ndm_state = n.nud;
  h->ndm_type = RTN_UNICAST;
  m.put(NDA_DST, addr_bytes(n.ip), addr_len(n.ip));
  if (n.nud & kNudValid) m.put(NDA_LLADDR, n.mac, 6);
  m.put_u32(NDA_PROBES, n.probes);
  nda_cacheinfo ci{n.age_cs, n.age_cs, n.age_cs, 0};
  m.put(NDA_CACHEINFO, &ci, sizeof ci);
}

// The Ethernet interfaces (index 0: all), referenced, in index order.
int ether_ifs(InetState& st, int only, RefPtr<Ifnet>* out, int max) {
  int n = 0;
  SharedLocker g(st.if_lock_);
  for (Ifnet& i : st.ifs_) {
    if (i.type != ARPHRD_ETHER || (only && i.index != only) || n == max) continue;
    i.ref();
    out[n++] = adopt_ref(&i);
  }
  return n;
}

int dump_neigh(NlRequest& rq, NlOut& dump) {
  int family = static_cast<uint8_t>(rq.payload()[0]);
  ndmsg ndm{};
  NlAttrs a;
  bool whole = fixed(rq, ndm, a);
  if (rq.strict) {
    if (!whole) return rq.fail(EINVAL, "Invalid header for neighbor dump request");
    if (ndm.ndm_pad1 || ndm.ndm_pad2 || ndm.ndm_ifindex || ndm.ndm_state || ndm.ndm_type)
      return rq.fail(EINVAL, "Invalid values in header for neighbor dump request");
    if (ndm.ndm_flags & ~NTF_PROXY) return rq.fail(EINVAL, "Invalid flags in header for neighbor dump request");
    for (int t = 0; t < NlAttrs::kMax; t++)
      if (a.tb[t] && t != NDA_IFINDEX && t != NDA_MASTER)
        return rq.fail(EINVAL, "Unsupported attribute in neighbor dump request");
  }
  int only = a.tb[NDA_IFINDEX] && a.len(NDA_IFINDEX) >= 4 ? static_cast<int>(get_u32(a, NDA_IFINDEX)) : 0;
  bool proxy = whole && ndm.ndm_flags == NTF_PROXY;  // no proxy entries here
  auto flags = static_cast<uint16_t>(NLM_F_MULTI | (only ? NLM_F_DUMP_FILTERED : 0));
  RefPtr<Ifnet> ifs[kMaxEtherIfs];
  int nifs = proxy || only < 0 ? 0 : ether_ifs(rq.st, only, ifs, kMaxEtherIfs);
  auto* buf = static_cast<NeighInfo*>(rq.st.kernel.kmem().alloc(kNeighMax * sizeof(NeighInfo)));
  if (!buf) return ENOMEM;
  int error = 0;
  // ARP's table first, then neighbour discovery's, as Linux's order.
  for (int f : {AF_INET, AF_INET6}) {
    if (family && family != f) continue;
    for (int k = 0; k < nifs && !error; k++) {
      size_t n = ether_neigh_list(*ifs[k], f, buf, kNeighMax);
      if (n > kNeighMax) n = kNeighMax;
      for (size_t j = 0; j < n; j++) {
        NlMsg m(RTM_NEWNEIGH, flags, rq.hdr.nlmsg_seq, rq.portid);
        fill_neigh(m, ifs[k]->index, buf[j]);
        if (!dump.add(m.data(), m.len()).ok()) {
          error = ENOMEM;
          break;
        }
      }
    }
  }
  Kmem::free(buf);
  if (error) return error;
  return done(rq, dump).ok() ? kNlDumpStarted : ENOMEM;
}

// The family's key length (0: no neighbour table for it).
size_t neigh_key_len(int family) { return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0; }

IpAddr neigh_key(int family, const void* p) {
  IpAddr ip;
  if (family == AF_INET) {
    InAddr x;
    std::memcpy(&x.s, p, 4);
    ip = IpAddr::of(x);
  } else {
    In6Addr x;
    std::memcpy(x.b, p, 16);
    ip = IpAddr::of(x);
  }
  return ip;
}

int get_neigh(NlRequest& rq, NlOut& out) {
  ndmsg ndm;
  NlAttrs a;
  if (!fixed(rq, ndm, a)) return rq.fail(EINVAL, "Invalid header for neighbor get request");
  if (ndm.ndm_pad1 || ndm.ndm_pad2 || ndm.ndm_state || ndm.ndm_type)
    return rq.fail(EINVAL, "Invalid values in header for neighbor get request");
  if (ndm.ndm_flags & ~NTF_PROXY) return rq.fail(EINVAL, "Invalid flags in header for neighbor get request");
  size_t klen = neigh_key_len(ndm.ndm_family);
  if (!klen) return rq.fail(EAFNOSUPPORT, "Unsupported family in header for neighbor get request");
  for (int t = 0; t < NlAttrs::kMax; t++) {
    if (!a.tb[t]) continue;
    if (t != NDA_DST) return rq.fail(EINVAL, "Unsupported attribute in neighbor get request");
    if (a.len(t) != klen) return rq.fail(EINVAL, "Invalid network address in neighbor get request");
  }
  RefPtr<Ifnet> ifp;
  if (ndm.ndm_ifindex) {
    ifp = rq.st.find_if(ndm.ndm_ifindex);
    if (!ifp) return rq.fail(ENODEV, "Unknown device ifindex");
  }
  if (!a.tb[NDA_DST]) return EINVAL;  // (Linux's neigh_get says no more)
  if (ndm.ndm_flags & NTF_PROXY) return rq.fail(ENOENT, "Proxy neighbour entry not found");
  if (!ifp) return rq.fail(EINVAL, "No device specified");
  IpAddr key = neigh_key(ndm.ndm_family, a.data(NDA_DST));
  NeighInfo found;
  if (!rtnl_neigh_of(*ifp, key, found)) return rq.fail(ENOENT, "Neighbour entry not found");
  NlMsg m(RTM_NEWNEIGH, 0, rq.hdr.nlmsg_seq, rq.portid);
  fill_neigh(m, ifp->index, found);
  return out.add(m.data(), m.len()).ok() ? 0 : ENOMEM;
}

// neigh_add and neigh_delete: the request's header and attributes, and
// the checks they share, in Linux's order. The interface and key of the
// request, or an errno.
int neigh_target(NlRequest& rq, bool add, ndmsg& ndm, NlAttrs& a, RefPtr<Ifnet>& ifp, IpAddr& key) {
  if (!fixed(rq, ndm, a)) return EINVAL;
  if (!a.tb[NDA_DST]) return rq.fail(EINVAL, "Network address not specified");
  if (ndm.ndm_ifindex) {
    ifp = rq.st.find_if(ndm.ndm_ifindex);
    if (!ifp) return ENODEV;
    if (add && a.tb[NDA_LLADDR] && a.len(NDA_LLADDR) < (ifp->type == ARPHRD_ETHER ? 6u : 0u))
      return rq.fail(EINVAL, "Invalid link address");
  }
  size_t klen = neigh_key_len(ndm.ndm_family);
  if (!klen) return EAFNOSUPPORT;
  if (a.len(NDA_DST) < klen) return rq.fail(EINVAL, "Invalid network address");
  if (ndm.ndm_flags & NTF_PROXY) return EOPNOTSUPP;  // no proxy entries here
  if (!ifp) return add ? rq.fail(EINVAL, "Device not specified") : EINVAL;
  key = neigh_key(ndm.ndm_family, a.data(NDA_DST));
  return 0;
}

int new_neigh(NlRequest& rq) {
  ndmsg ndm;
  NlAttrs a;
  RefPtr<Ifnet> ifp;
  IpAddr key;
  if (int e = neigh_target(rq, true, ndm, a, ifp, key)) return e;
  uint16_t fl = rq.hdr.nlmsg_flags;
  const uint8_t* mac = a.tb[NDA_LLADDR] ? static_cast<const uint8_t*>(a.data(NDA_LLADDR)) : nullptr;
  Result<bool> r = ether_neigh_set(*ifp, key, mac, ndm.ndm_state, fl & NLM_F_CREATE, fl & NLM_F_EXCL, fl & NLM_F_REPLACE);
  if (!r.ok()) {
    if (r.error() == EINVAL && !mac) return rq.fail(EINVAL, "No link layer address given");
    return r.error();
  }
  if (*r) rtnl_notify_neigh(*ifp, key, true);
  return 0;
}

int del_neigh(NlRequest& rq) {
  ndmsg ndm;
  NlAttrs a;
  RefPtr<Ifnet> ifp;
  IpAddr key;
  if (int e = neigh_target(rq, false, ndm, a, ifp, key)) return e;
  NeighInfo gone;
  if (!rtnl_neigh_of(*ifp, key, gone)) return ENOENT;
  Result<void> r = ether_neigh_delete(*ifp, key);
  if (!r.ok()) return r.error();
  rtnl_notify_neigh_failed(*ifp, gone);
  return 0;
}

// --- policy rules (net/core/fib_rules.c): Linux's default rules only,
// which route lookups follow (local, then main, then default for IPv4;
// local, then main for IPv6); none can be added or removed.

int dump_rules(NlRequest& rq, NlOut& dump) {
  int family = static_cast<uint8_t>(rq.payload()[0]);
  struct Rule {
    uint32_t pref, table;
  };
  static constexpr Rule kRules[] = {{0, RT_TABLE_LOCAL}, {32766, RT_TABLE_MAIN}, {32767, RT_TABLE_DEFAULT}};
  for (int f : {AF_INET, AF_INET6}) {
    if (!dumps_family(family, f)) continue;
    for (const Rule& r : kRules) {
      if (f == AF_INET6 && r.table == RT_TABLE_DEFAULT) continue;
      NlMsg m(RTM_NEWRULE, NLM_F_MULTI, rq.hdr.nlmsg_seq, rq.portid);
      auto* h = m.header<fib_rule_hdr>();
      h->family = static_cast<uint8_t>(f);
      h->table = static_cast<uint8_t>(r.table);
      h->action = FR_ACT_TO_TBL;
      m.put_u32(FRA_TABLE, r.table);
      m.put_u32(FRA_SUPPRESS_PREFIXLEN, UINT32_MAX);
      m.put_u8(FRA_PROTOCOL, RTPROT_KERNEL);
      if (r.pref) m.put_u32(FRA_PRIORITY, r.pref);
      if (!dump.add(m.data(), m.len()).ok()) return ENOMEM;
    }
  }
  return done(rq, dump).ok() ? kNlDumpStarted : ENOMEM;
}

}  // namespace

int rtnl_rcv_msg(NlRequest& rq, NlOut& out, NlOut& dump) {
  uint16_t type = rq.hdr.nlmsg_type;
  if (type > RTM_MAX) return EOPNOTSUPP;
  // Every request carries at least a family byte; without one it is
  // ignored (rtnetlink_rcv_msg).
  if (rq.payload_len() < 1) return 0;
  int family = static_cast<uint8_t>(rq.payload()[0]);
  int kind = (type - RTM_BASE) & 3;  // new, del, get, set
  if (kind != 2 && !rq.l.cred().is_root()) return EPERM;
  bool inet = family == AF_INET || family == AF_INET6;
  if (kind == 2 && (rq.hdr.nlmsg_flags & NLM_F_DUMP)) {
    switch (type) {
      case RTM_GETLINK: return dump_links(rq, dump);
      case RTM_GETADDR: return dump_addrs(rq, dump);
      case RTM_GETROUTE: return dump_routes(rq, dump);
      case RTM_GETNEIGH: return dump_neigh(rq, dump);
      case RTM_GETRULE: return dump_rules(rq, dump);
      default: return EOPNOTSUPP;
    }
  }
  switch (type) {
    case RTM_GETLINK: return get_link(rq, out);
    case RTM_NEWLINK: return new_link(rq, false);
    case RTM_SETLINK: return new_link(rq, true);
    case RTM_DELLINK: return del_link(rq);
    case RTM_NEWADDR: return inet ? new_addr(rq, family) : EOPNOTSUPP;
    case RTM_DELADDR: return inet ? del_addr(rq, family) : EOPNOTSUPP;
    case RTM_GETADDR: return family == AF_INET6 ? get_addr6(rq, out) : EOPNOTSUPP;
    case RTM_NEWROUTE: return inet ? new_route(rq, family) : EOPNOTSUPP;
    case RTM_DELROUTE: return inet ? del_route(rq, family) : EOPNOTSUPP;
    case RTM_GETROUTE: return inet ? get_route(rq, family, out) : EOPNOTSUPP;
    case RTM_NEWNEIGH: return new_neigh(rq);
    case RTM_DELNEIGH: return del_neigh(rq);
    case RTM_GETNEIGH: return get_neigh(rq, out);
    case RTM_NEWRULE:
    case RTM_DELRULE: return rq.fail(EOPNOTSUPP, "Policy rules cannot be changed here");
    default: return EOPNOTSUPP;
  }
}

// --- notifications

void rtnl_notify_link(Ifnet& ifp) {
  InetState& st = ifp.state();
  if (st.nl_listeners_.load(std::memory_order_acquire) == 0) return;
  NlMsg m(RTM_NEWLINK, 0, 0, 0);
  {
    SharedLocker g(st.if_lock_);
    fill_link(m, ifp, 0);
  }
  nl_multicast(st, RTNLGRP_LINK, m);
}

void rtnl_notify_link_gone(Ifnet& ifp) {
  InetState& st = ifp.state();
  if (st.nl_listeners_.load(std::memory_order_acquire) == 0) return;
  NlMsg m(RTM_DELLINK, 0, 0, 0);
  fill_link(m, ifp, 0);
  nl_multicast(st, RTNLGRP_LINK, m);
}

namespace {

// The route of table local that goes with an address.
void notify_local_route(Ifnet& ifp, const IpAddr& a, bool add) {
  NlMsg m(add ? RTM_NEWROUTE : RTM_DELROUTE, 0, 0, 0);
  fill_local_route(m, a, ifp.index);
  nl_multicast(ifp.state(), a.family == AF_INET ? RTNLGRP_IPV4_ROUTE : RTNLGRP_IPV6_ROUTE, m);
}

}  // namespace

void rtnl_notify_addr4(Ifnet& ifp, const IfAddr4& a, bool add) {
  InetState& st = ifp.state();
  if (st.nl_listeners_.load(std::memory_order_acquire) == 0) return;
  NlMsg m(add ? RTM_NEWADDR : RTM_DELADDR, 0, 0, 0);
  fill_addr4(m, ifp, a, false, centisecs(st.kernel));
  nl_multicast(st, RTNLGRP_IPV4_IFADDR, m);
  // Then its route of table local, as fib_add_ifaddr/fib_del_ifaddr.
  notify_local_route(ifp, IpAddr::of(a.addr), add);
}

void rtnl_notify_addr6(Ifnet& ifp, const IfAddr6& a, bool add) {
  InetState& st = ifp.state();
  if (st.nl_listeners_.load(std::memory_order_acquire) == 0) return;
  uint32_t now = centisecs(st.kernel);
  if (add && a.tentative_until_ns <= mono_now_ns()) {
    // An address that needs no duplicate detection (loopback) is
    // announced tentative first, then final, as Linux's
    // addrconf_dad_completed does at once.
    NlMsg t(RTM_NEWADDR, 0, 0, 0);
    fill_addr6(t, ifp, a, now, true);
    nl_multicast(st, RTNLGRP_IPV6_IFADDR, t);
  }
  if (!add) notify_local_route(ifp, IpAddr::of(a.addr), false);
  NlMsg m(add ? RTM_NEWADDR : RTM_DELADDR, 0, 0, 0);
  fill_addr6(m, ifp, a, now);
  nl_multicast(st, RTNLGRP_IPV6_IFADDR, m);
  if (add) notify_local_route(ifp, IpAddr::of(a.addr), true);
}

void rtnl_notify_addr6_changed(Ifnet& ifp, const IfAddr6& a) {
  InetState& st = ifp.state();
  if (st.nl_listeners_.load(std::memory_order_acquire) == 0) return;
  NlMsg m(RTM_NEWADDR, 0, 0, 0);
  fill_addr6(m, ifp, a, centisecs(st.kernel));
  nl_multicast(st, RTNLGRP_IPV6_IFADDR, m);
}

void rtnl_notify_neigh(Ifnet& ifp, const IpAddr& ip, bool add) {
  InetState& st = ifp.state();
  if (st.nl_listeners_.load(std::memory_order_acquire) == 0) return;
  NeighInfo n;
  if (!rtnl_neigh_of(ifp, ip, n)) return;
  rtnl_notify_neigh_entry(ifp, n, add);
}

void rtnl_notify_neigh_entry(Ifnet& ifp, const NeighInfo& n, bool add) {
  InetState& st = ifp.state();
  if (st.nl_listeners_.load(std::memory_order_acquire) == 0) return;
  NlMsg m(add ? RTM_NEWNEIGH : RTM_DELNEIGH, 0, 0, 0);
  fill_neigh(m, ifp.index, n);
  nl_multicast(st, RTNLGRP_NEIGH, m);
}

void rtnl_notify_neigh_failed(Ifnet& ifp, const NeighInfo& n) {
  NeighInfo f = n;
  f.nud = NUD_FAILED;
  rtnl_notify_neigh_entry(ifp, f, true);
  rtnl_notify_neigh_entry(ifp, f, false);
}

void rtnl_notify_neighs_gone(Ifnet& ifp) {
  InetState& st = ifp.state();
  if (st.nl_listeners_.load(std::memory_order_acquire) == 0) return;
  auto* all = static_cast<NeighInfo*>(st.kernel.kmem().alloc(kNeighMax * sizeof(NeighInfo)));
  if (!all) return;
  size_t n = ether_neigh_list(ifp, 0, all, kNeighMax);
  for (size_t j = 0; j < n && j < kNeighMax; j++) {
    NlMsg m(RTM_DELNEIGH, 0, 0, 0);
    fill_neigh(m, ifp.index, all[j]);
    nl_multicast(st, RTNLGRP_NEIGH, m);
  }
  Kmem::free(all);
}

void rtnl_notify_route(InetState& st, const RouteEntry& e, bool add) {
  if (st.nl_listeners_.load(std::memory_order_acquire) == 0) return;
  NlMsg m(add ? RTM_NEWROUTE : RTM_DELROUTE, 0, 0, 0);
  fill_route(m, e, view_of(st, e));
  nl_multicast(st, e.dst.family == AF_INET ? RTNLGRP_IPV4_ROUTE : RTNLGRP_IPV6_ROUTE, m);
}

}  // namespace rump
