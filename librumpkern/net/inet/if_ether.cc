// Ethernet framing and ARP (see if_ether.h).
#include "net/inet/if_ether.h"

#include <linux/if_ether.h>
#include <linux/neighbour.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>

#include <cstring>

#include "kern/clock.h"
#include "kern/kernel.h"
#include "net/inet/ip_var.h"

namespace rump {

namespace {

constexpr size_t kArpHold = 3;
constexpr int64_t kArpValidNs = 60 * kNsPerSec;
constexpr int64_t kArpRetryNs = kNsPerSec;
constexpr int kArpMaxEntries = 256;
// RFC 4861 10: RetransTimer, REACHABLE_TIME, DELAY_FIRST_PROBE_TIME,
// MAX_MULTICAST_SOLICIT and MAX_UNICAST_SOLICIT.
constexpr int64_t kNdRetransNs = kNsPerSec;
constexpr int64_t kNdReachableNs = 30 * kNsPerSec;
constexpr int64_t kNdDelayNs = 5 * kNsPerSec;
constexpr int kNdMaxSolicit = 3;
const uint8_t kBroadcastMac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// A neighbour: an ARP entry (IPv4: incomplete, or reachable until it
// expires) or an IPv6 neighbour cache entry with RFC 4861's states.
enum class NeighState : uint8_t { kIncomplete, kReachable, kStale, kDelay, kProbe };

struct NeighEntry : public KObject {
  IpAddr ip;
  uint8_t mac[6] = {};
  NeighState state = NeighState::kIncomplete;
  int64_t until_ns = 0;      // reachable: valid until; IPv6 delay/probe/incomplete: the next step
  int64_t requested_ns = 0;  // ARP: last request sent
  int probes = 0;            // IPv6: solicitations sent in this state
  uint16_t admin = 0;        // NUD_PERMANENT or NUD_NOARP: set by an administrator, never expires
  int64_t made_ns = 0;       // when it was made or last set
  PktList hold;
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;
};
using NeighList = boost::intrusive::list<NeighEntry, boost::intrusive::member_hook<NeighEntry, decltype(NeighEntry::hook),
                                                                                   &NeighEntry::hook>,
                                         boost::intrusive::constant_time_size<true>>;

struct EtherSoftc : public KObject {
  EtherLink link;
  Mutex lock{LockRank::kNone};
  NeighList cache ABSL_GUARDED_BY(lock);
  // Retransmits IPv6 solicitations and moves DELAY/PROBE entries on
  // (nd_timer); armed while an entry needs it.
  Callout nd_timer;
  bool nd_armed ABSL_GUARDED_BY(lock) = false;
  ~EtherSoftc() {
    MutexLocker g(lock);
    cache.clear_and_dispose([](NeighEntry* e) {
      pkt_list_free(e->hold);
      delete e;
    });
  }
};

EtherSoftc& softc(Ifnet& ifp) { return *static_cast<EtherSoftc*>(ifp.softc); }

uint16_t nud_of(const NeighEntry& e, int64_t now) {
  if (e.admin) return e.admin;
  switch (e.state) {
    case NeighState::kIncomplete: return NUD_INCOMPLETE;
    case NeighState::kReachable: return e.until_ns > now ? NUD_REACHABLE : NUD_STALE;
    case NeighState::kStale: return NUD_STALE;
    case NeighState::kDelay: return NUD_DELAY;
    case NeighState::kProbe: return NUD_PROBE;
  }
  return NUD_NONE;
}

// An entry as rtnetlink shows it.
NeighInfo info_of(const NeighEntry& e, int64_t now) {
  NeighInfo x;
  x.ip = e.ip;
  std::memcpy(x.mac, e.mac, 6);
  x.nud = nud_of(e, now);
  x.probes = e.admin ? 0 : static_cast<uint32_t>(e.probes);
  x.age_cs = static_cast<uint32_t>((now - e.made_ns) / 10000000);
  return x;
}

// What traffic did to an entry, announced after the cache lock is
// dropped when its state or link-layer address changed (Linux's
// __neigh_update notifies then, and not for a refresh that changes
// neither).
struct NeighChange {
  uint16_t old_nud = NUD_NONE;
  uint8_t old_mac[6] = {};
  bool announce = false;
  NeighInfo now;
  void before(const NeighEntry* e, int64_t t) {
    if (!e) return;
    old_nud = nud_of(*e, t);
    std::memcpy(old_mac, e->mac, 6);
  }
  void after(const NeighEntry* e, int64_t t) {
    if (!e) return;
    uint16_t n = nud_of(*e, t);
    if (n == old_nud && (!(n & ~NUD_INCOMPLETE) || std::memcmp(old_mac, e->mac, 6) == 0)) return;
    now = info_of(*e, t);
    announce = true;
  }
  void send(Ifnet& ifp) const {
    if (announce) rtnl_notify_neigh_entry(ifp, now, true);
  }
};

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
  ether_send_frame(ifp, r.value(), dst, ETH_P_ARP);
}

NeighEntry* find_locked(EtherSoftc& sc, const IpAddr& ip) ABSL_EXCLUSIVE_LOCKS_REQUIRED(sc.lock) {
  for (NeighEntry& e : sc.cache)
    if (e.ip == ip) return &e;
  return nullptr;
}

// A fresh entry for ip (the oldest goes when the cache is full); null
// when out of memory.
NeighEntry* make_locked(InetState& st, EtherSoftc& sc, const IpAddr& ip, PktList& drop)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(sc.lock) {
  if (sc.cache.size() >= kArpMaxEntries) {
    NeighEntry& old = sc.cache.front();
    sc.cache.pop_front();
    drop.splice(drop.end(), old.hold);
    delete &old;
  }
  auto* e = new (st.kernel.kmem()) NeighEntry();
  if (!e) return nullptr;
  e->ip = ip;
  e->made_ns = mono_now_ns();
  sc.cache.push_back(*e);
  return e;
}

// Queues p on an unresolved entry, the oldest beyond kArpHold dropped
// (Linux's unres_qlen).
void hold_locked(NeighEntry& e, Pkt* p, PktList& drop) {
  e.hold.push_back(*p);
  while (e.hold.size() > kArpHold) {
    Pkt& old = e.hold.front();
    e.hold.pop_front();
    drop.push_back(old);
  }
}

void arm_nd_locked(EtherSoftc& sc) ABSL_EXCLUSIVE_LOCKS_REQUIRED(sc.lock) {
  if (sc.nd_armed) return;
  sc.nd_armed = true;
  sc.nd_timer.schedule(kNdRetransNs);
}

// The Ethernet address of an IPv6 multicast group (RFC 2464 7).
void mcast6_mac(const In6Addr& a, uint8_t mac[6]) {
  mac[0] = mac[1] = 0x33;
  std::memcpy(mac + 2, a.b + 12, 4);
}

// IPv6 output to a unicast next hop through the neighbour cache.
Result<void> nd_output(Ifnet& ifp, Pkt* p, const In6Addr& nh) {
  EtherSoftc& sc = softc(ifp);
  uint8_t mac[6];
  bool have = false, solicit = false;
  PktList drop;
  int64_t now = mono_now_ns();
  {
    MutexLocker g(sc.lock);
    NeighEntry* e = find_locked(sc, IpAddr::of(nh));
    if (!e) {
      e = make_locked(ifp.state(), sc, IpAddr::of(nh), drop);
      if (e) {
        e->probes = 1;
        e->until_ns = now + kNdRetransNs;
        solicit = true;
        arm_nd_locked(sc);
      }
    }
    if (!e) {
      drop.push_back(*p);
    } else if (e->state == NeighState::kIncomplete) {
      hold_locked(*e, p, drop);
    } else {
      if (e->state == NeighState::kReachable && !e->admin && e->until_ns <= now) e->state = NeighState::kStale;
      if (e->state == NeighState::kStale) {
        // First use of a stale entry: send, and check on it soon (RFC
        // 4861 7.3.3).
        e->state = NeighState::kDelay;
        e->until_ns = now + kNdDelayNs;
        arm_nd_locked(sc);
      }
      std::memcpy(mac, e->mac, 6);
      have = true;
    }
  }
  pkt_list_free(drop);
  if (have) {
    ether_send_frame(ifp, p, mac, ETH_P_IPV6);
    return {};
  }
  if (solicit) nd6_solicit(ifp, nh, nullptr);
  return {};
}

Result<void> ether_output(Ifnet& ifp, Pkt* p, const IpAddr& nh, uint16_t proto) {
  if (!ifp.up()) {
    Pkt::free(p);
    return err(ENETDOWN);
  }
  if (proto == ETH_P_IPV6 && nh.family == AF_INET6) {
    if (nh.v6.multicast()) {
      uint8_t mac[6];
      mcast6_mac(nh.v6, mac);
      ether_send_frame(ifp, p, mac, ETH_P_IPV6);
      return {};
    }
    return nd_output(ifp, p, nh.v6);
  }
  if (proto != ETH_P_IP || nh.family != AF_INET) {
    Pkt::free(p);
    return err(EAFNOSUPPORT);
  }
  if ((p->meta.flags & kPktBroadcast) || nh.v4.limited_broadcast()) {
    ether_send_frame(ifp, p, kBroadcastMac, ETH_P_IP);
    return {};
  }
  if (nh.v4.multicast()) {
    uint32_t h = nh.v4.to_host();
    uint8_t mac[6] = {0x01, 0x00, 0x5e, static_cast<uint8_t>((h >> 16) & 0x7f), static_cast<uint8_t>(h >> 8),
                      static_cast<uint8_t>(h)};
    ether_send_frame(ifp, p, mac, ETH_P_IP);
    return {};
  }
  EtherSoftc& sc = softc(ifp);
  uint8_t mac[6];
  bool have = false, request = false;
  PktList drop;
  int64_t now = mono_now_ns();
  {
    MutexLocker g(sc.lock);
    NeighEntry* e = find_locked(sc, nh);
    if (e && e->state == NeighState::kReachable && (e->admin || e->until_ns > now)) {
      std::memcpy(mac, e->mac, 6);
      have = true;
    } else {
      if (!e) e = make_locked(ifp.state(), sc, nh, drop);
      if (!e) {
        drop.push_back(*p);
      } else {
        e->state = NeighState::kIncomplete;
        hold_locked(*e, p, drop);
        if (now - e->requested_ns >= kArpRetryNs || e->requested_ns == 0) {
          e->requested_ns = now;
          request = true;
        }
      }
    }
  }
  pkt_list_free(drop);
  if (have) {
    ether_send_frame(ifp, p, mac, ETH_P_IP);
    return {};
  }
  if (request) {
    static const uint8_t zero[6] = {};
    send_arp(ifp, ARPOP_REQUEST, our_addr_for(ifp, nh.v4), zero, nh.v4, kBroadcastMac);
  }
  return {};
}

// Once a second while IPv6 entries wait: solicitations again for
// incomplete entries (given up after kNdMaxSolicit, the held packets
// answered with address unreachable), DELAY entries move to PROBE, and
// PROBE entries that stay unanswered go.
void nd_timer(void* arg) {
  Ifnet& ifp = *static_cast<Ifnet*>(arg);
  EtherSoftc& sc = softc(ifp);
  InetState& st = ifp.state();
  struct Solicit {
    In6Addr target;
    uint8_t mac[6];
    bool unicast;
  };
  Solicit out[32];
  int nout = 0;
  // Entries that moved to PROBE, and that failed (announced, then gone).
  NeighInfo probing[32], gone[32];
  int nprobing = 0, ngone = 0;
  PktList failed;
  int64_t now = mono_now_ns();
  {
    MutexLocker g(sc.lock);
    bool again = false;
    for (auto it = sc.cache.begin(); it != sc.cache.end();) {
      NeighEntry& e = *it++;
      if (e.ip.family != AF_INET6) continue;
      bool waits = e.state == NeighState::kIncomplete || e.state == NeighState::kDelay || e.state == NeighState::kProbe;
      if (!waits) continue;
      if (e.until_ns > now) {
        again = true;
        continue;
      }
      if (nout == 32 || ngone == 32) {  // the rest next time
        again = true;
        continue;
      }
      bool to_probe = e.state == NeighState::kDelay;
      if (to_probe) {
        e.state = NeighState::kProbe;
        e.probes = 0;
      }
      if (e.probes >= kNdMaxSolicit) {
        if (e.state == NeighState::kIncomplete) st.icmp6_stats.NdResolveFails.fetch_add(1, std::memory_order_relaxed);
        gone[ngone++] = info_of(e, now);
        failed.splice(failed.end(), e.hold);
        sc.cache.erase(sc.cache.iterator_to(e));
        delete &e;
        continue;
      }
      if (to_probe) probing[nprobing++] = info_of(e, now);
      e.probes++;
      e.until_ns = now + kNdRetransNs;
      out[nout].target = e.ip.v6;
      std::memcpy(out[nout].mac, e.mac, 6);
      out[nout].unicast = e.state == NeighState::kProbe;
      nout++;
      again = true;
    }
    sc.nd_armed = again;
    if (again) sc.nd_timer.schedule(kNdRetransNs);
  }
  for (int i = 0; i < nprobing; i++) rtnl_notify_neigh_entry(ifp, probing[i], true);
  for (int i = 0; i < ngone; i++) rtnl_notify_neigh_failed(ifp, gone[i]);
  for (int i = 0; i < nout; i++) nd6_solicit(ifp, out[i].target, out[i].unicast ? out[i].mac : nullptr);
  // RFC 4861 7.2.2: each packet that waited gets destination unreachable
  // (address unreachable).
  failed.clear_and_dispose([&](Pkt* p) {
    icmp6_error_pkt(st, *p, ICMP6_DST_UNREACH, ICMP6_DST_UNREACH_ADDR, 0);
    Pkt::free(p);
  });
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
  NeighChange ch;
  {
    MutexLocker g(sc.lock);
    int64_t now = mono_now_ns();
    NeighEntry* e = find_locked(sc, IpAddr::of(spa));
    ch.before(e, now);
    // Learn the sender if we already wanted it, or if it talks to us
    // (RFC 826's merge, Linux's rule for new entries).
    if (!e && for_us && !spa.any()) e = make_locked(ifp.state(), sc, IpAddr::of(spa), drop);
    if (e && !spa.any() && !e->admin) {
      std::memcpy(e->mac, a.sha, 6);
      e->state = NeighState::kReachable;
      e->until_ns = now + kArpValidNs;
      release.splice(release.end(), e->hold);
      ch.after(e, now);
    }
  }
  pkt_list_free(drop);
  ch.send(ifp);
  uint8_t mac[6];
  std::memcpy(mac, a.sha, 6);
  release.clear_and_dispose([&](Pkt* q) { ether_send_frame(ifp, q, mac, ETH_P_IP); });
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
  sc->nd_timer.halt();
  ifp.softc = nullptr;
  delete sc;
}

const IfOps kEtherOps = {&ether_output, &ether_set_up, &ether_set_linkstr, &ether_destroy};

}  // namespace

void ether_send_frame(Ifnet& ifp, Pkt* p, const uint8_t dst[6], uint16_t type) {
  Result<char*> at = p->prepend(sizeof(ethhdr));
  if (!at.ok()) {
    ifp.counters.oerrors.fetch_add(1, std::memory_order_relaxed);
    Pkt::free(p);
    return;
  }
  if (p->meta.csum == kCsumPartial) p->meta.csum_start = static_cast<uint16_t>(p->meta.csum_start + sizeof(ethhdr));
  ethhdr h;
  std::memcpy(h.h_dest, dst, 6);
  std::memcpy(h.h_source, ifp.hwaddr, 6);
  h.h_proto = htons(type);
  std::memcpy(at.value(), &h, sizeof h);
  ifp.counters.opackets.fetch_add(1, std::memory_order_relaxed);
  ifp.counters.obytes.fetch_add(p->len(), std::memory_order_relaxed);
  softc(ifp).link.transmit(softc(ifp).link.arg, ifp, p);
}

void ether_nd_learn(Ifnet& ifp, const In6Addr& ip, const uint8_t* mac, bool is_na, bool solicited, bool override) {
  if (ifp.type != ARPHRD_ETHER || !ifp.softc) return;
  EtherSoftc& sc = softc(ifp);
  PktList release, drop;
  uint8_t to[6];
  int64_t now = mono_now_ns();
  NeighChange ch;
  {
    MutexLocker g(sc.lock);
    NeighEntry* e = find_locked(sc, IpAddr::of(ip));
    if (e && e->admin) return;  // what arrives does not change a static entry
    ch.before(e, now);
    if (!is_na) {
      // A solicitation's source link-layer option (RFC 4861 7.2.3): a new
      // or changed address is STALE until used and confirmed.
      if (!mac) return;
      if (!e) {
        e = make_locked(ifp.state(), sc, IpAddr::of(ip), drop);
        if (!e) return;
      } else if (e->state != NeighState::kIncomplete && std::memcmp(e->mac, mac, 6) == 0) {
        return;
      }
      std::memcpy(e->mac, mac, 6);
      e->state = NeighState::kStale;
      release.splice(release.end(), e->hold);
    } else if (e) {
      // An advertisement (RFC 4861 7.2.5); none is wanted for an address
      // with no entry.
      bool differs = mac && std::memcmp(e->mac, mac, 6) != 0;
      if (e->state == NeighState::kIncomplete) {
        if (!mac) return;
        std::memcpy(e->mac, mac, 6);
        e->state = solicited ? NeighState::kReachable : NeighState::kStale;
        e->until_ns = now + kNdReachableNs;
        release.splice(release.end(), e->hold);
      } else if (!override && differs) {
        if (e->state == NeighState::kReachable) e->state = NeighState::kStale;
      } else {
        if (differs) std::memcpy(e->mac, mac, 6);
        if (solicited) {
          e->state = NeighState::kReachable;
          e->until_ns = now + kNdReachableNs;
        } else if (differs) {
          e->state = NeighState::kStale;
        }
      }
    }
    if (e) std::memcpy(to, e->mac, 6);
    ch.after(e, now);
  }
  pkt_list_free(drop);
  ch.send(ifp);
  release.clear_and_dispose([&](Pkt* q) { ether_send_frame(ifp, q, to, ETH_P_IPV6); });
}

size_t ether_neigh_list(Ifnet& ifp, int family, NeighInfo* out, size_t max) {
  if (ifp.type != ARPHRD_ETHER || !ifp.softc) return 0;
  EtherSoftc& sc = softc(ifp);
  int64_t now = mono_now_ns();
  size_t n = 0;
  MutexLocker g(sc.lock);
  for (const NeighEntry& e : sc.cache) {
    if (family && e.ip.family != family) continue;
    if (n < max) out[n] = info_of(e, now);
    n++;
  }
  return n;
}

Result<bool> ether_neigh_set(Ifnet& ifp, const IpAddr& ip, const uint8_t* mac, uint16_t nud, bool create, bool excl,
                             bool replace) {
  if (ifp.type != ARPHRD_ETHER || !ifp.softc) return err(EOPNOTSUPP);
  NeighState state;
  switch (nud) {
    case NUD_PERMANENT:
    case NUD_NOARP:
    case NUD_REACHABLE: state = NeighState::kReachable; break;
    case NUD_STALE: state = NeighState::kStale; break;
    case NUD_DELAY: state = NeighState::kDelay; break;
    case NUD_PROBE: state = NeighState::kProbe; break;
    default: return err(EINVAL);
  }
  EtherSoftc& sc = softc(ifp);
  PktList release, drop;
  uint8_t to[6];
  int64_t now = mono_now_ns();
  bool changed;
  {
    MutexLocker g(sc.lock);
    NeighEntry* e = find_locked(sc, ip);
    if (e && excl) return err(EEXIST);
    if (!e && !create) return err(ENOENT);
    bool valid = e && (e->admin || e->state != NeighState::kIncomplete);
    if (!mac && !valid) return err(EINVAL);  // no link-layer address given
    // Without replace a valid entry keeps a different address, and then
    // its state (Linux's update without NEIGH_UPDATE_F_OVERRIDE).
    if (valid && mac && !replace && std::memcmp(e->mac, mac, 6) != 0) return false;
    changed = !e || nud_of(*e, now) != nud || (mac && std::memcmp(e->mac, mac, 6) != 0);
    if (!e) {
      e = make_locked(ifp.state(), sc, ip, drop);
      if (!e) {
        pkt_list_free(drop);
        return err(ENOMEM);
      }
    }
    if (mac) std::memcpy(e->mac, mac, 6);
    e->admin = nud == NUD_PERMANENT || nud == NUD_NOARP ? nud : 0;
    e->state = state;
    e->probes = 0;
    e->made_ns = now;
    e->until_ns = now + (state == NeighState::kReachable ? (ip.family == AF_INET ? kArpValidNs : kNdReachableNs)
                         : state == NeighState::kDelay ? kNdDelayNs
                                                       : kNdRetransNs);
    if (ip.family == AF_INET6 && (state == NeighState::kDelay || state == NeighState::kProbe)) arm_nd_locked(sc);
    release.splice(release.end(), e->hold);
    std::memcpy(to, e->mac, 6);
  }
  pkt_list_free(drop);
  uint16_t type = ip.family == AF_INET ? ETH_P_IP : ETH_P_IPV6;
  release.clear_and_dispose([&](Pkt* q) { ether_send_frame(ifp, q, to, type); });
  return changed;
}

Result<void> ether_neigh_delete(Ifnet& ifp, const IpAddr& ip) {
  if (ifp.type != ARPHRD_ETHER || !ifp.softc) return err(ENOENT);
  EtherSoftc& sc = softc(ifp);
  PktList drop;
  {
    MutexLocker g(sc.lock);
    NeighEntry* e = find_locked(sc, ip);
    if (!e) return err(ENOENT);
    drop.splice(drop.end(), e->hold);
    sc.cache.erase(sc.cache.iterator_to(*e));
    delete e;
  }
  pkt_list_free(drop);
  return {};
}

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
  sc->nd_timer.init(*st.kernel.services().callouts(), &nd_timer, ifp);
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
