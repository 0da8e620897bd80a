// Interfaces (see if.h): attach and detach, addresses with their connected
// routes, and the input queue that runs the stack.
#include "net/inet/if.h"

#include <linux/if_ether.h>
#include <net/if_arp.h>

#include <cstring>

#include "net/inet/ip_var.h"

namespace rump {

// Network-layer input (net/inet/ip_input.cc, ip6.cc).
void ip_input(InetState& st, Ifnet& ifp, Pkt* p);
void ip6_input(InetState& st, Ifnet& ifp, Pkt* p);

Ifnet::~Ifnet() {
  if_impair_free(*this);
  PktList left;
  {
    SpinLocker g(inq_lock_);
    left.splice(left.end(), inq_);
  }
  pkt_list_free(left);
}

Result<void> if_attach(InetState& st, Ifnet& ifp) {
  Locker<RwLock> g(st.if_lock_);
  for (const Ifnet& i : st.ifs_)
    if (std::strncmp(i.name, ifp.name, IFNAMSIZ) == 0) return err(EEXIST);
  ifp.index = st.next_ifindex_++;
  ifp.ref();
  st.ifs_.push_back(ifp);
  return {};
}

namespace {

// Removes the routes through ifindex. Linux announces the IPv6 ones
// going; the IPv4 ones of an interface that goes down are flushed
// without a word (fib_sync_down_dev).
void remove_routes_of(InetState& st, int ifindex) {
  RouteList gone;
  {
    Locker<RwLock> g(st.rt_lock_);
    for (auto it = st.routes_.begin(); it != st.routes_.end();) {
      RouteEntry& e = *it++;
      if (e.ifindex == ifindex) {
        st.routes_.erase(st.routes_.iterator_to(e));
        gone.push_back(e);
      }
    }
  }
  gone.clear_and_dispose([&](RouteEntry* e) {
    if (e->dst.family == AF_INET6) rtnl_notify_route(st, *e, false);
    delete e;
  });
}

}  // namespace

void if_detach(InetState& st, Ifnet& ifp) {
  IfAddr4 a4[Ifnet::kMaxAddr4];
  IfAddr6 a6[Ifnet::kMaxAddr6];
  int n4, n6;
  {
    Locker<RwLock> g(st.if_lock_);
    if (!ifp.hook.is_linked()) return;
    st.ifs_.erase(st.ifs_.iterator_to(ifp));
    n4 = ifp.naddr4;
    n6 = ifp.naddr6;
    for (int i = 0; i < n4; i++) a4[i] = ifp.addr4[i];
    for (int i = 0; i < n6; i++) a6[i] = ifp.addr6[i];
    ifp.naddr4 = 0;
    ifp.naddr6 = 0;
  }
  // What listeners hear, in Linux's order (unregister_netdevice): the
  // link goes down, its neighbours and IPv6 routes go, then its
  // addresses (IPv6 first) with their local routes, then the link.
  uint32_t was = ifp.flags.fetch_and(~static_cast<uint32_t>(IFF_UP | IFF_RUNNING));
  if (was & IFF_UP) rtnl_notify_link(ifp);
  rtnl_notify_neighs_gone(ifp);
  remove_routes_of(st, ifp.index);
  for (int i = 0; i < n6; i++) rtnl_notify_addr6(ifp, a6[i], false);
  for (int i = 0; i < n4; i++) rtnl_notify_addr4(ifp, a4[i], false);
  if (ifp.ops().destroy) ifp.ops().destroy(ifp);
  // Nothing receives any more: packets held back go, with the timer.
  if_impair_free(ifp);
  rtnl_notify_link_gone(ifp);
  ifp.unref();  // the list's
}

Result<void> if_set_up(Ifnet& ifp, bool up) {
  if (ifp.ops().set_up) TRY(ifp.ops().set_up(ifp, up));
  uint32_t was = up ? ifp.flags.fetch_or(IFF_UP | IFF_RUNNING)
                    : ifp.flags.fetch_and(~static_cast<uint32_t>(IFF_UP | IFF_RUNNING));
  if (static_cast<bool>(was & IFF_UP) != up) rtnl_notify_link(ifp);
  if (up && !(was & IFF_UP) && ifp.type == ARPHRD_ETHER) {
    // Duplicate address detection for the IPv6 addresses it already has.
    In6Addr addrs[Ifnet::kMaxAddr6];
    int n;
    {
      SharedLocker g(ifp.state().if_lock_);
      n = ifp.naddr6;
      for (int i = 0; i < n; i++) addrs[i] = ifp.addr6[i].addr;
    }
    bool have_ll = false;
    for (int i = 0; i < n; i++) {
      nd6_dad_start(ifp, addrs[i]);
      have_ll = have_ll || addrs[i].linklocal();
    }
    // A link-local address from the MAC (modified EUI-64, RFC 4291
    // appendix A), as Linux makes with addr_gen_mode eui64, and a router
    // solicitation.
    if (!have_ll) {
      In6Addr fe80;
      fe80.b[0] = 0xfe;
      fe80.b[1] = 0x80;
      In6Addr ll = nd6_eui64(fe80, ifp.hwaddr);
      // No room for it (every slot taken) leaves the interface without one.
      (void)if_add_addr6(ifp, ll, 64);
    }
    nd6_router_solicit(ifp);
  }
  return {};
}

namespace {

InAddr mask_of(int plen) { return InAddr::host(plen == 0 ? 0 : ~0u << (32 - plen)); }

In6Addr prefix6(const In6Addr& a, int plen) {
  In6Addr r = a;
  for (int i = 0; i < 16; i++) {
    int bits = plen - i * 8;
    if (bits >= 8) continue;
    r.b[i] = bits <= 0 ? 0 : static_cast<uint8_t>(r.b[i] & (0xff << (8 - bits)));
  }
  return r;
}

}  // namespace

Result<void> if_add_addr4(Ifnet& ifp, InAddr a, int plen, bool primary, const InAddr* bcast) {
  if (plen < 0 || plen > 32) return err(EINVAL);
  if (a.multicast() || a.limited_broadcast()) return err(EINVAL);
  InetState& st = ifp.state();
  InAddr m = mask_of(plen);
  IfAddr4 added;
  {
    Locker<RwLock> g(st.if_lock_);
    IfAddr4* slot = nullptr;
    for (int i = 0; i < ifp.naddr4; i++)
      if (ifp.addr4[i].addr == a) slot = &ifp.addr4[i];
    if (!slot) {
      if (ifp.naddr4 == Ifnet::kMaxAddr4) return err(ENOSPC);
      if (primary) {
        for (int i = ifp.naddr4; i > 0; i--) ifp.addr4[i] = ifp.addr4[i - 1];
        slot = &ifp.addr4[0];
        ifp.naddr4++;
      } else {
        slot = &ifp.addr4[ifp.naddr4++];
      }
    }
    slot->addr = a;
    slot->mask = m;
    slot->plen = static_cast<uint8_t>(plen);
    slot->bcast = bcast ? *bcast : InAddr{a.s | ~m.s};
    added = *slot;
  }
  rtnl_notify_addr4(ifp, added, true);
  // The connected route of the prefix (a /32 has none).
  if (plen < 32) {
    IpAddr dst = IpAddr::of(InAddr{a.s & m.s});
    TRY(route_add(st, dst, plen, IpAddr(), ifp.index, true));
  }
  return {};
}

Result<void> if_add_addr6(Ifnet& ifp, const In6Addr& a, int plen, const IfAddr6* life) {
  if (plen < 0 || plen > 128) return err(EINVAL);
  if (a.multicast() || a.any()) return err(EINVAL);
  InetState& st = ifp.state();
  IfAddr6 added;
  {
    Locker<RwLock> g(st.if_lock_);
    IfAddr6* slot = nullptr;
    for (int i = 0; i < ifp.naddr6; i++)
      if (ifp.addr6[i].addr == a) slot = &ifp.addr6[i];
    if (!slot) {
      if (ifp.naddr6 == Ifnet::kMaxAddr6) return err(ENOSPC);
      slot = &ifp.addr6[ifp.naddr6++];
    }
    slot->addr = a;
    slot->plen = static_cast<uint8_t>(plen);
    slot->autoconf = life && life->autoconf;
    slot->deprecated_told = false;
    slot->valid_until_ns = life ? life->valid_until_ns : 0;
    slot->preferred_until_ns = life ? life->preferred_until_ns : 0;
    added = *slot;
  }
  rtnl_notify_addr6(ifp, added, true);
  // Without scope ids to choose by, the link-local prefix stays on the
  // interface that had it first.
  IpAddr net = IpAddr::of(prefix6(a, plen));
  if (plen < 128 && !(a.linklocal() && route_exists(st, net, plen))) TRY(route_add(st, net, plen, IpAddr(), ifp.index, true));
  if (ifp.type == ARPHRD_ETHER && ifp.up()) nd6_dad_start(ifp, a);
  return {};
}

Result<void> if_del_addr6(Ifnet& ifp, const In6Addr& a) {
  InetState& st = ifp.state();
  IfAddr6 old;
  {
    Locker<RwLock> g(st.if_lock_);
    int i = 0;
    while (i < ifp.naddr6 && !(ifp.addr6[i].addr == a)) i++;
    if (i == ifp.naddr6) return err(EADDRNOTAVAIL);
    old = ifp.addr6[i];
    for (; i + 1 < ifp.naddr6; i++) ifp.addr6[i] = ifp.addr6[i + 1];
    ifp.naddr6--;
  }
  rtnl_notify_addr6(ifp, old, false);
  if (old.plen < 128) (void)route_delete(st, IpAddr::of(prefix6(old.addr, old.plen)), old.plen);
  return {};
}

Result<void> if_del_addr4(Ifnet& ifp, InAddr a) {
  InetState& st = ifp.state();
  IfAddr4 old;
  {
    Locker<RwLock> g(st.if_lock_);
    int i = 0;
    while (i < ifp.naddr4 && !(ifp.addr4[i].addr == a)) i++;
    if (i == ifp.naddr4) return err(EADDRNOTAVAIL);
    old = ifp.addr4[i];
    for (; i + 1 < ifp.naddr4; i++) ifp.addr4[i] = ifp.addr4[i + 1];
    ifp.naddr4--;
  }
  rtnl_notify_addr4(ifp, old, false);
  if (old.plen < 32) (void)route_delete(st, IpAddr::of(InAddr{old.addr.s & old.mask.s}), old.plen);
  return {};
}

Result<IfAddr4> if_primary_addr4(Ifnet& ifp) {
  SharedLocker g(ifp.state().if_lock_);
  if (ifp.naddr4 == 0) return err(EADDRNOTAVAIL);
  return ifp.addr4[0];
}

void if_input(Ifnet& ifp, Pkt* p, uint16_t proto) {
  ifp.counters.ipackets.fetch_add(1, std::memory_order_relaxed);
  ifp.counters.ibytes.fetch_add(p->len(), std::memory_order_relaxed);
  if (!ifp.up()) {
    ifp.counters.iqdrops.fetch_add(1, std::memory_order_relaxed);
    Pkt::free(p);
    return;
  }
  if (IfImpair* im = ifp.impair.load(std::memory_order_acquire)) {
    if_impair_input(ifp, *im, p, proto);
    return;
  }
  if_enqueue(ifp, p, proto);
}

void if_enqueue(Ifnet& ifp, Pkt* p, uint16_t proto) {
  InetState& st = ifp.state();
  p->meta.rcvif = ifp.index;
  // The protocol travels in aux while queued.
  p->meta.aux = proto;
  bool drop = false, drain = false;
  {
    SpinLocker g(ifp.inq_lock_);
    if (ifp.inq_.size() >= Ifnet::kInqMax) {
      drop = true;
    } else {
      ifp.inq_.push_back(*p);
      // Drain unless someone else is at it: they will see our packet.
      if (!ifp.draining_) drain = ifp.draining_ = true;
    }
  }
  if (drop) {
    ifp.counters.iqdrops.fetch_add(1, std::memory_order_relaxed);
    Pkt::free(p);
    return;
  }
  if (!drain) return;
  for (;;) {
    Pkt* q;
    {
      SpinLocker g(ifp.inq_lock_);
      if (ifp.inq_.empty()) {
        ifp.draining_ = false;
        break;
      }
      q = &ifp.inq_.front();
      ifp.inq_.pop_front();
    }
    uint16_t pr = static_cast<uint16_t>(q->meta.aux);
    q->meta.aux = 0;
    switch (pr) {
      case ETH_P_IP: ip_input(st, ifp, q); break;
      case ETH_P_IPV6: ip6_input(st, ifp, q); break;
      default:
        ifp.counters.iqdrops.fetch_add(1, std::memory_order_relaxed);
        Pkt::free(q);
        break;
    }
  }
}

}  // namespace rump
