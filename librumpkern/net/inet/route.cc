// The routing table (see if.h): longest-prefix match over a short list,
// one per kernel for both families; a default route is the /0 of its
// family. Routes through an interface that is down are skipped.
#include <cstring>

#include "kern/kernel.h"
#include "net/inet/if.h"

namespace rump {

namespace {

bool prefix_match(const IpAddr& a, const IpAddr& prefix, int plen) {
  if (a.family != prefix.family) return false;
  if (a.family == AF_INET) {
    uint32_t m = plen == 0 ? 0 : ~0u << (32 - plen);
    return (a.v4.to_host() & m) == prefix.v4.to_host();
  }
  int full = plen / 8, rest = plen % 8;
  if (std::memcmp(a.v6.b, prefix.v6.b, full) != 0) return false;
  if (rest == 0) return true;
  uint8_t m = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.v6.b[full] & m) == (prefix.v6.b[full] & m);
}

}  // namespace

IpAddr ip_prefix(const IpAddr& a, int plen) {
  IpAddr r = a;
  if (a.family == AF_INET) {
    uint32_t m = plen == 0 ? 0 : ~0u << (32 - plen);
    r.v4 = InAddr::host(a.v4.to_host() & m);
    return r;
  }
  for (int i = 0; i < 16; i++) {
    int bits = plen - i * 8;
    if (bits >= 8) continue;
    r.v6.b[i] = bits <= 0 ? 0 : static_cast<uint8_t>(r.v6.b[i] & (0xff << (8 - bits)));
  }
  return r;
}

namespace {

// Is a one of ifp's addresses? (if_lock_ held)
bool has_addr_locked(const Ifnet& ifp, const IpAddr& a) {
  if (a.family == AF_INET) {
    for (int i = 0; i < ifp.naddr4; i++)
      if (ifp.addr4[i].addr == a.v4) return true;
  } else if (a.family == AF_INET6) {
    for (int i = 0; i < ifp.naddr6; i++)
      if (ifp.addr6[i].addr == a.v6) return true;
  }
  return false;
}

}  // namespace

bool ip_is_local(Kernel& k, const IpAddr& a) {
  InetState* st = inet_state_or_null(k);
  if (!st) return false;
  SharedLocker g(st->if_lock_);
  for (const Ifnet& i : st->ifs_)
    if (has_addr_locked(i, a)) return true;
  return false;
}

bool ip_is_broadcast(Kernel& k, const IpAddr& a) {
  if (a.family != AF_INET) return false;
  if (a.v4.limited_broadcast()) return true;
  InetState* st = inet_state_or_null(k);
  if (!st) return false;
  SharedLocker g(st->if_lock_);
  for (const Ifnet& i : st->ifs_)
    for (int n = 0; n < i.naddr4; n++)
      if (i.addr4[n].plen < 31 && i.addr4[n].bcast == a.v4) return true;
  return false;
}

const IfAddr4* lo_prefix_locked(const InetState& st, InAddr a) {
  if (!st.lo_) return nullptr;
  for (int k = 0; k < st.lo_->naddr4; k++) {
    const IfAddr4& x = st.lo_->addr4[k];
    if ((x.addr.s & x.mask.s) == (a.s & x.mask.s) && !(x.plen < 31 && x.bcast == a)) return &x;
  }
  return nullptr;
}

Result<RouteResult> route_lookup(InetState& st, const IpAddr& dst) {
  RouteResult r;
  // Our own addresses, and all of 127/8, go through lo (Linux's local
  // table).
  bool local = dst.family == AF_INET && dst.v4.loopback();
  if (!local) {
    SharedLocker g(st.if_lock_);
    for (const Ifnet& i : st.ifs_)
      if (has_addr_locked(i, dst)) {
        local = true;
        break;
      }
    if (!local && dst.family == AF_INET) local = lo_prefix_locked(st, dst.v4) != nullptr;
  }
  if (local) {
    if (!st.lo_ || !st.lo_->up()) return err(ENETUNREACH);
    st.lo_->ref();
    r.ifp = adopt_ref(st.lo_);
    r.nexthop = dst;
    r.local = true;
    r.table = RouteInfo::kTableLocal;
    return r;
  }
  int best_len = -1, ifindex = 0;
  uint32_t best_prio = 0, best_table = 0;
  IpAddr gw;
  // Table main, then table default if main has nothing (Linux's default
  // rules 32766 and 32767; IPv6 has only the first).
  for (uint32_t table : {RouteInfo::kTableMain, RouteInfo::kTableDefault}) {
    if (best_len >= 0 || (table == RouteInfo::kTableDefault && dst.family == AF_INET6)) break;
    SharedLocker g(st.rt_lock_);
    for (const RouteEntry& e : st.routes_) {
      if (e.info.table != table) continue;
      if (e.plen < best_len || (e.plen == best_len && e.info.priority >= best_prio)) continue;
      if (!prefix_match(dst, e.dst, e.plen)) continue;
      RefPtr<Ifnet> ifp = st.find_if(e.ifindex);
      if (!ifp || !ifp->up()) continue;
      best_len = e.plen;
      best_prio = e.info.priority;
      ifindex = e.ifindex;
      gw = e.gateway;
      best_table = table;
    }
  }
  if (best_len < 0 && dst.family == AF_INET6 && dst.v6.multicast()) {
    // Linux's multicast routes ff00::/8 of table local, one per
    // interface: the first one that is up, lo aside.
    SharedLocker g(st.if_lock_);
    for (const Ifnet& i : st.ifs_)
      if (&i != st.lo_ && i.up()) {
        best_len = 8;
        ifindex = i.index;
        best_table = RouteInfo::kTableLocal;
        break;
      }
  }
  if (best_len < 0) return err(ENETUNREACH);
  r.ifp = st.find_if(ifindex);
  if (!r.ifp) return err(ENETUNREACH);
  r.nexthop = gw.family ? gw : dst;
  r.table = best_table;
  return r;
}

bool route_exists(InetState& st, const IpAddr& dst, int plen) {
  IpAddr m = ip_prefix(dst, plen);
  SharedLocker g(st.rt_lock_);
  for (const RouteEntry& x : st.routes_)
    if (x.plen == plen && x.dst == m && x.info.table == RouteInfo::kTableMain) return true;
  return false;
}

Result<void> route_add(InetState& st, const IpAddr& dst, int plen, const IpAddr& gw, int ifindex, bool connected,
                       const RouteInfo& info) {
  int maxlen = dst.family == AF_INET ? 32 : 128;
  if (plen < 0 || plen > maxlen) return err(EINVAL);
  if (gw.family && gw.family != dst.family) return err(EINVAL);
  if (gw.family && ifindex == 0) {
    // The gateway must be on a connected network: its route gives the
    // interface.
    Result<RouteResult> via = route_lookup(st, gw);
    if (!via.ok()) return err(ENETUNREACH);
    if (via->local) {
      // Only lo's own prefix (its addresses included) has gateways of
      // ours: Linux finds its connected route of scope link.
      bool on_lo = false;
      if (gw.family == AF_INET) {
        SharedLocker g(st.if_lock_);
        on_lo = lo_prefix_locked(st, gw.v4) != nullptr;
      }
      if (!on_lo) return err(ENETUNREACH);
    }
    ifindex = via->ifp->index;
  }
  if (!st.find_if(ifindex)) return err(ENXIO);
  auto* e = new (st.kernel.kmem()) RouteEntry();
  if (!e) return err(ENOMEM);
  e->dst = ip_prefix(dst, plen);
  e->plen = static_cast<uint8_t>(plen);
  e->gateway = gw;
  e->ifindex = ifindex;
  e->connected = connected;
  e->info = info;
  e->info.excl = false;
  RouteEntry* old = nullptr;
  {
    Locker<RwLock> g(st.rt_lock_);
    for (RouteEntry& x : st.routes_)
      if (x.plen == e->plen && x.dst == e->dst && x.info.priority == e->info.priority && x.info.table == e->info.table) {
        old = &x;
        break;
      }
    if (old && info.excl) {
      delete e;
      return err(EEXIST);
    }
    if (old) st.routes_.erase(st.routes_.iterator_to(*old));
    st.routes_.push_back(*e);
  }
  if (old) rtnl_notify_route(st, *old, false);
  rtnl_notify_route(st, *e, true);
  delete old;
  return {};
}

Result<void> route_delete(InetState& st, const IpAddr& dst, int plen, int64_t priority, int ifindex, const IpAddr& gw,
                          uint32_t table) {
  RouteEntry* old = nullptr;
  IpAddr d = ip_prefix(dst, plen);
  {
    Locker<RwLock> g(st.rt_lock_);
    for (RouteEntry& x : st.routes_)
      if (x.plen == plen && x.dst == d && x.info.table == table && (priority < 0 || x.info.priority == priority) &&
          (ifindex == 0 || x.ifindex == ifindex) && (gw.family == 0 || x.gateway == gw)) {
        old = &x;
        break;
      }
    if (!old) return err(ESRCH);
    st.routes_.erase(st.routes_.iterator_to(*old));
  }
  rtnl_notify_route(st, *old, false);
  delete old;
  return {};
}

}  // namespace rump
