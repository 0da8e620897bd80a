// Ethernet framing and ARP (see if_ether.h).
#include "net/inet/if_ether.h"

#include <linux/if_ether.h>
#include <net/if_arp.h>

#include <cstring>

#include "kern/clock.h"
#include "kern/kernel.h"

namespace rump {

namespace {

constexpr size_t kArpHold = 3;
constexpr int64_t kArpValidNs = 60 * kNsPerSec;
constexpr int64_t kArpRetryNs = kNsPerSec;
constexpr int kArpMaxEntries = 256;
const uint8_t kBroadcastMac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

struct ArpEntry : public KObject {
  InAddr ip;
  uint8_t mac[6] = {};
  bool resolved = false;
  int64_t expire_ns = 0;     // resolved: valid until
  int64_t requested_ns = 0;  // last request sent
  PktList hold;
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;
};
using ArpList = boost::intrusive::list<ArpEntry, boost::intrusive::member_hook<ArpEntry, decltype(ArpEntry::hook),
                                                                               &ArpEntry::hook>,
                                       boost::intrusive::constant_time_size<true>>;

struct EtherSoftc : public KObject {
  EtherLink link;
  Mutex lock{LockRank::kNone};
  ArpList cache ABSL_GUARDED_BY(lock);
  ~EtherSoftc() {
    MutexLocker g(lock);
    cache.clear_and_dispose([](ArpEntry* e) {
      pkt_list_free(e->hold);
      delete e;
    });
  }
};

EtherSoftc& softc(Ifnet& ifp) { return *static_cast<EtherSoftc*>(ifp.softc); }

struct ArpPacket {
  uint16_t htype, ptype;
  uint8_t hlen, plen;
  uint16_t op;
  uint8_t sha[6];
  uint8_t spa[4];
  uint8_t tha[6];
  uint8_t tpa[4];
} __attribute__((packed));
static_assert(sizeof(ArpPacket) == 28);

// Prepends the Ethernet header and transmits.
void send_frame(Ifnet& ifp, Pkt* p, const uint8_t dst[6], uint16_t type) {
  Result<char*> at = p->prepend(sizeof(ethhdr));
  if (!at.ok()) {
    ifp.counters.oerrors.fetch_add(1, std::memory_order_relaxed);
    Pkt::free(p);
    return;
  }
  ethhdr h;
  std::memcpy(h.h_dest, dst, 6);
  std::memcpy(h.h_source, ifp.hwaddr, 6);
  h.h_proto = htons(type);
  std::memcpy(at.value(), &h, sizeof h);
  ifp.counters.opackets.fetch_add(1, std::memory_order_relaxed);
  ifp.counters.obytes.fetch_add(p->len(), std::memory_order_relaxed);
  softc(ifp).link.transmit(softc(ifp).link.arg, ifp, p);
}

// Our address on ifp for talking to ip (the one whose subnet holds it),
// or any.
InAddr our_addr_for(Ifnet& ifp, InAddr ip) {
  SharedLocker g(ifp.state().if_lock_);
  for (int i = 0; i < ifp.naddr4; i++)
    if ((ifp.addr4[i].addr.s & ifp.addr4[i].mask.s) == (ip.s & ifp.addr4[i].mask.s)) return ifp.addr4[i].addr;
  return ifp.naddr4 ? ifp.addr4[0].addr : InAddr();
}

bool is_our_addr(Ifnet& ifp, InAddr ip) {
  SharedLocker g(ifp.state().if_lock_);
  for (int i = 0; i < ifp.naddr4; i++)
    if (ifp.addr4[i].addr == ip) return true;
  return false;
}

void send_arp(Ifnet& ifp, uint16_t op, InAddr sender, const uint8_t tha[6], InAddr target, const uint8_t dst[6]) {
  Result<Pkt*> r = Pkt::alloc(ifp.state().pool, sizeof(ArpPacket));
  if (!r.ok()) return;
  ArpPacket a;
  a.htype = htons(ARPHRD_ETHER);
  a.ptype = htons(ETH_P_IP);
  a.hlen = 6;
  a.plen = 4;
  a.op = htons(op);
  std::memcpy(a.sha, ifp.hwaddr, 6);
  std::memcpy(a.spa, &sender.s, 4);
  std::memcpy(a.tha, tha, 6);
  std::memcpy(a.tpa, &target.s, 4);
  r.value()->copy_in(0, sizeof a, &a);
  send_frame(ifp, r.value(), dst, ETH_P_ARP);
}

ArpEntry* find_locked(EtherSoftc& sc, InAddr ip) ABSL_EXCLUSIVE_LOCKS_REQUIRED(sc.lock) {
  for (ArpEntry& e : sc.cache)
    if (e.ip == ip) return &e;
  return nullptr;
}

// A fresh entry for ip (the oldest goes when the cache is full); null
// when out of memory.
ArpEntry* make_locked(InetState& st, EtherSoftc& sc, InAddr ip, PktList& drop) ABSL_EXCLUSIVE_LOCKS_REQUIRED(sc.lock) {
  if (sc.cache.size() >= kArpMaxEntries) {
    ArpEntry& old = sc.cache.front();
    sc.cache.pop_front();
    drop.splice(drop.end(), old.hold);
    delete &old;
  }
  auto* e = new (st.kernel.kmem()) ArpEntry();
  if (!e) return nullptr;
  e->ip = ip;
  sc.cache.push_back(*e);
  return e;
}

Result<void> ether_output(Ifnet& ifp, Pkt* p, const IpAddr& nh, uint16_t proto) {
  if (!ifp.up()) {
    Pkt::free(p);
    return err(ENETDOWN);
  }
  if (proto != ETH_P_IP || nh.family != AF_INET) {
    // IPv6 needs neighbour discovery, which this interface does not do.
    Pkt::free(p);
    return err(ENETUNREACH);
  }
  if ((p->meta.flags & kPktBroadcast) || nh.v4.limited_broadcast()) {
    send_frame(ifp, p, kBroadcastMac, ETH_P_IP);
    return {};
  }
  if (nh.v4.multicast()) {
    uint32_t h = nh.v4.to_host();
    uint8_t mac[6] = {0x01, 0x00, 0x5e, static_cast<uint8_t>((h >> 16) & 0x7f), static_cast<uint8_t>(h >> 8),
                      static_cast<uint8_t>(h)};
    send_frame(ifp, p, mac, ETH_P_IP);
    return {};
  }
  EtherSoftc& sc = softc(ifp);
  uint8_t mac[6];
  bool have = false, request = false;
  PktList drop;
  int64_t now = mono_now_ns();
  {
    MutexLocker g(sc.lock);
    ArpEntry* e = find_locked(sc, nh.v4);
    if (e && e->resolved && e->expire_ns > now) {
      std::memcpy(mac, e->mac, 6);
      have = true;
    } else {
      if (!e) e = make_locked(ifp.state(), sc, nh.v4, drop);
      if (!e) {
        drop.push_back(*p);
      } else {
        e->resolved = false;
        e->hold.push_back(*p);
        while (e->hold.size() > kArpHold) {
          Pkt& old = e->hold.front();
          e->hold.pop_front();
          drop.push_back(old);
        }
        if (now - e->requested_ns >= kArpRetryNs || e->requested_ns == 0) {
          e->requested_ns = now;
          request = true;
        }
      }
    }
  }
  pkt_list_free(drop);
  if (have) {
    send_frame(ifp, p, mac, ETH_P_IP);
    return {};
  }
  if (request) {
    static const uint8_t zero[6] = {};
    send_arp(ifp, ARPOP_REQUEST, our_addr_for(ifp, nh.v4), zero, nh.v4, kBroadcastMac);
  }
  return {};
}

void arp_input(Ifnet& ifp, Pkt* p) {
  ArpPacket a;
  if (p->len() < sizeof a) {
    ifp.counters.ierrors.fetch_add(1, std::memory_order_relaxed);
    Pkt::free(p);
    return;
  }
  p->copy_out(0, sizeof a, &a);
  Pkt::free(p);
  if (ntohs(a.htype) != ARPHRD_ETHER || ntohs(a.ptype) != ETH_P_IP || a.hlen != 6 || a.plen != 4) {
    ifp.counters.ierrors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  uint16_t op = ntohs(a.op);
  InAddr spa, tpa;
  std::memcpy(&spa.s, a.spa, 4);
  std::memcpy(&tpa.s, a.tpa, 4);
  // A sender claiming a broadcast/multicast MAC or address is bogus.
  if ((a.sha[0] & 1) || spa.multicast() || spa.limited_broadcast()) return;
  bool for_us = is_our_addr(ifp, tpa);
  EtherSoftc& sc = softc(ifp);
  PktList release, drop;
  {
    MutexLocker g(sc.lock);
    ArpEntry* e = find_locked(sc, spa);
    // Learn the sender if we already wanted it, or if it talks to us
    // (RFC 826's merge, Linux's rule for new entries).
    if (!e && for_us && !spa.any()) e = make_locked(ifp.state(), sc, spa, drop);
    if (e && !spa.any()) {
      std::memcpy(e->mac, a.sha, 6);
      e->resolved = true;
      e->expire_ns = mono_now_ns() + kArpValidNs;
      release.splice(release.end(), e->hold);
    }
  }
  pkt_list_free(drop);
  uint8_t mac[6];
  std::memcpy(mac, a.sha, 6);
  release.clear_and_dispose([&](Pkt* q) { send_frame(ifp, q, mac, ETH_P_IP); });
  if (op == ARPOP_REQUEST && for_us) send_arp(ifp, ARPOP_REPLY, tpa, a.sha, spa, a.sha);
}

Result<void> ether_set_up(Ifnet& ifp, bool up) { return {}; }

Result<void> ether_set_linkstr(Ifnet& ifp, const char* s) {
  EtherLink& link = softc(ifp).link;
  if (!link.set_linkstr) return err(EOPNOTSUPP);
  return link.set_linkstr(link.arg, ifp, s);
}

void ether_destroy(Ifnet& ifp) {
  auto* sc = static_cast<EtherSoftc*>(ifp.softc);
  if (!sc) return;
  // The device first: it may still be handing frames to ether_input.
  if (sc->link.destroy) sc->link.destroy(sc->link.arg, ifp);
  ifp.softc = nullptr;
  delete sc;
}

const IfOps kEtherOps = {&ether_output, &ether_set_up, &ether_set_linkstr, &ether_destroy};

}  // namespace

Result<Ref<Ifnet>> ether_attach(InetState& st, const char* name, const uint8_t mac[6], const EtherLink& link) {
  if (std::strlen(name) >= IFNAMSIZ) return err(EINVAL);
  auto* sc = new (st.kernel.kmem()) EtherSoftc();
  if (!sc) return err(ENOMEM);
  sc->link = link;
  auto* ifp = new (st.kernel.kmem()) Ifnet(st, kEtherOps);
  if (!ifp) {
    delete sc;
    return err(ENOMEM);
  }
  Ref<Ifnet> ref = adopt_ref(ifp);
  ifp->softc = sc;
  std::strcpy(ifp->name, name);
  ifp->type = ARPHRD_ETHER;
  std::memcpy(ifp->hwaddr, mac, 6);
  ifp->mtu.store(1500);
  ifp->flags.store(IFF_BROADCAST | IFF_MULTICAST);
  Result<void> r = if_attach(st, *ifp);
  if (!r.ok()) {
    sc->link.destroy = nullptr;  // the device's state stays its caller's
    ether_destroy(*ifp);
    return err(r.error());
  }
  return ref;
}

void ether_input(Ifnet& ifp, Pkt* p) {
  Result<char*> r = p->pullup(sizeof(ethhdr));
  if (!r.ok()) {
    ifp.counters.ierrors.fetch_add(1, std::memory_order_relaxed);
    Pkt::free(p);
    return;
  }
  ethhdr h;
  std::memcpy(&h, r.value(), sizeof h);
  bool bcast = std::memcmp(h.h_dest, kBroadcastMac, 6) == 0;
  bool mcast = !bcast && (h.h_dest[0] & 1);
  if (!bcast && !mcast && std::memcmp(h.h_dest, ifp.hwaddr, 6) != 0) {
    ifp.counters.iqdrops.fetch_add(1, std::memory_order_relaxed);  // not for us (no promiscuous mode)
    Pkt::free(p);
    return;
  }
  p->trim_front(sizeof h);
  if (bcast) p->meta.flags |= kPktBroadcast;
  if (mcast) p->meta.flags |= kPktMulticast;
  uint16_t type = ntohs(h.h_proto);
  switch (type) {
    case ETH_P_ARP:
      if (!ifp.up()) {
        Pkt::free(p);
        return;
      }
      arp_input(ifp, p);
      return;
    case ETH_P_IP:
    case ETH_P_IPV6: if_input(ifp, p, type); return;
    default:
      ifp.counters.iqdrops.fetch_add(1, std::memory_order_relaxed);
      Pkt::free(p);
      return;
  }
}

}  // namespace rump
