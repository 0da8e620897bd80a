// Ethernet framing and ARP (see if_ether.h).
#include "net/inet/if_ether.h"

#include <linux/if_ether.h>
#include <linux/neighbour.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>
#include <rump/rumpuser.h>

#include <algorithm>
#include <cstring>

#include "kern/clock.h"
#include "kern/kernel.h"
#include "net/inet/ip_var.h"

namespace rump {

namespace {

constexpr size_t kArpHold = 3;
constexpr int kNeighMaxEntries = 256;
// Linux's neighbour table parameters (the same for ARP and neighbour
// discovery; RFC 4861 10 names them RetransTimer, REACHABLE_TIME,
// DELAY_FIRST_PROBE_TIME, MAX_MULTICAST_SOLICIT and MAX_UNICAST_SOLICIT):
// retrans_time_ms, base_reachable_time_ms (an entry stays REACHABLE for a
// random time between half and one and a half of it, per interface),
// delay_first_probe_time, mcast/ucast_solicit, ARP's locktime, and the
// garbage collection of entries unused for gc_stale_time once there are
// gc_thresh1 of them, every base_reachable_time / 2.
constexpr int64_t kRetransNs = kNsPerSec;
constexpr int64_t kBaseReachableNs = 30 * kNsPerSec;
constexpr int64_t kDelayProbeNs = 5 * kNsPerSec;
constexpr int kMaxProbes = 3;
constexpr int64_t kLocktimeNs = kNsPerSec;
constexpr int64_t kGcStaleNs = 60 * kNsPerSec;
constexpr size_t kGcThresh1 = 128;
const uint8_t kBroadcastMac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// A neighbour (ARP or IPv6 neighbour cache entry) in Linux's NUD states:
// INCOMPLETE while solicited, REACHABLE until its reachable time runs out
// (then STALE, or DELAY if it was used meanwhile), STALE until used, then
// DELAY (a few seconds for a confirmation), PROBE (unicast solicitations)
// and REACHABLE again on an answer, or gone (announced as FAILED) after
// kMaxProbes without one.
enum class NeighState : uint8_t { kIncomplete, kReachable, kStale, kDelay, kProbe };

struct NeighEntry : public KObject {
  IpAddr ip;
  uint8_t mac[6] = {};
  NeighState state = NeighState::kIncomplete;
  int64_t until_ns = 0;      // the timer's next step for it (INCOMPLETE, REACHABLE, DELAY, PROBE)
  int64_t confirmed_ns = 0;  // last proof of reachability
  int64_t used_ns = 0;       // last packet sent through it
  int probes = 0;            // solicitations sent in this state
  uint16_t admin = 0;        // NUD_PERMANENT or NUD_NOARP: set by an administrator, never expires
  int64_t made_ns = 0;       // when it was made or last changed
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
  // Moves entries through their states (neigh_timer); armed for the
  // earliest step any entry waits for, and for garbage collection.
  Callout nd_timer;
  bool nd_armed ABSL_GUARDED_BY(lock) = false;
  int64_t timer_at ABSL_GUARDED_BY(lock) = 0;
  int64_t reachable_ns = kBaseReachableNs;  // this interface's reachable time (set at attach)
  ~EtherSoftc() {
    MutexLocker g(lock);
    cache.clear_and_dispose([](NeighEntry* e) {
      pkt_list_free(e->hold);
      delete e;
    });
  }
};

EtherSoftc& softc(Ifnet& ifp) { return *static_cast<EtherSoftc*>(ifp.softc); }

uint16_t nud_of(const NeighEntry& e) {
  if (e.admin) return e.admin;
  switch (e.state) {
    case NeighState::kIncomplete: return NUD_INCOMPLETE;
    case NeighState::kReachable: return NUD_REACHABLE;
    case NeighState::kStale: return NUD_STALE;
    case NeighState::kDelay: return NUD_DELAY;
    case NeighState::kProbe: return NUD_PROBE;
  }
  return NUD_NONE;
}

// Does the timer move e on?
bool timed(const NeighEntry& e) { return !e.admin && e.state != NeighState::kStale; }

// An entry as rtnetlink shows it.
NeighInfo info_of(const NeighEntry& e, int64_t now) {
  NeighInfo x;
  x.ip = e.ip;
  std::memcpy(x.mac, e.mac, 6);
  x.nud = nud_of(e);
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
  void before(const NeighEntry* e) {
    if (!e) return;
    old_nud = nud_of(*e);
    std::memcpy(old_mac, e->mac, 6);
  }
  void after(const NeighEntry* e, int64_t t) {
    if (!e) return;
    uint16_t n = nud_of(*e);
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

// Arms the timer for `at` unless it runs earlier already.
void arm_locked(EtherSoftc& sc, int64_t at, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(sc.lock) {
  if (sc.nd_armed && sc.timer_at <= at) return;
  sc.nd_armed = true;
  sc.timer_at = at;
  sc.nd_timer.schedule(at - now);
}

// A fresh entry for ip (the oldest goes when the cache is full); null
// when out of memory.
NeighEntry* make_locked(InetState& st, EtherSoftc& sc, const IpAddr& ip, PktList& drop)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(sc.lock) {
  if (sc.cache.size() >= kNeighMaxEntries) {
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
  // Enough entries for garbage collection to begin.
  if (sc.cache.size() == kGcThresh1) arm_locked(sc, e->made_ns + kBaseReachableNs / 2, e->made_ns);
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

// Puts e in state ns (not STALE: no timer) from now, its timer at its
// next step.
void enter_locked(EtherSoftc& sc, NeighEntry& e, NeighState ns, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(sc.lock) {
  if (ns != e.state) e.probes = 0;
  e.state = ns;
  e.made_ns = now;
  if (ns == NeighState::kReachable) e.confirmed_ns = now;
  switch (ns) {
    case NeighState::kReachable: e.until_ns = now + sc.reachable_ns; break;
    case NeighState::kDelay: e.until_ns = now + kDelayProbeNs; break;
    case NeighState::kIncomplete:
    case NeighState::kProbe: e.until_ns = now + kRetransNs; break;
    case NeighState::kStale: return;
  }
  if (!e.admin) arm_locked(sc, e.until_ns, now);
}

// What an ARP packet or neighbour message says about e (Linux's
// __neigh_update without the administrator's flag): mac for it, and the
// state it asserts (REACHABLE or STALE). A valid entry takes a different
// address only with override; a STALE assertion of the address it has
// changes nothing. Packets that waited for it are moved to release.
void update_locked(EtherSoftc& sc, NeighEntry& e, const uint8_t mac[6], NeighState ns, bool override, int64_t now,
                   PktList& release) ABSL_EXCLUSIVE_LOCKS_REQUIRED(sc.lock) {
  if (e.admin) return;
  bool valid = e.state != NeighState::kIncomplete;
  bool same = valid && std::memcmp(e.mac, mac, 6) == 0;
  if (valid && !same && !override) return;
  if (same && ns == NeighState::kStale) return;
  if (!same) std::memcpy(e.mac, mac, 6);
  if (ns != e.state || !same) enter_locked(sc, e, ns, now);
  else e.confirmed_ns = now;  // REACHABLE again: its timer looks at this
  if (!valid) release.splice(release.end(), e.hold);
}

// The Ethernet address of an IPv6 multicast group (RFC 2464 7).
void mcast6_mac(const In6Addr& a, uint8_t mac[6]) {
  mac[0] = mac[1] = 0x33;
  std::memcpy(mac + 2, a.b + 12, 4);
}

// Asks for target's link-layer address: an ARP request or a neighbour
// solicitation, to mac (a probe of a known entry) or to everyone (null).
void solicit(Ifnet& ifp, const IpAddr& target, const uint8_t* mac) {
  if (target.family == AF_INET6) {
    nd6_solicit(ifp, target.v6, mac);
    return;
  }
  static const uint8_t zero[6] = {};
  send_arp(ifp, ARPOP_REQUEST, our_addr_for(ifp, target.v4), zero, target.v4, mac ? mac : kBroadcastMac);
}

// Output to a unicast next hop through the neighbour cache (both
// families, Linux's neigh_resolve_output): a new entry is INCOMPLETE and
// holds the packet while the first solicitation goes; a STALE one is used
// and moves to DELAY (RFC 4861 7.3.3).
Result<void> neigh_output(Ifnet& ifp, Pkt* p, const IpAddr& nh, uint16_t type) {
  EtherSoftc& sc = softc(ifp);
  uint8_t mac[6];
  bool have = false, ask = false;
  PktList drop;
  int64_t now = mono_now_ns();
  {
    MutexLocker g(sc.lock);
    NeighEntry* e = find_locked(sc, nh);
    if (!e) {
      e = make_locked(ifp.state(), sc, nh, drop);
      if (e) {
        enter_locked(sc, *e, NeighState::kIncomplete, now);
        e->probes = 1;
        ask = true;
      }
    }
    if (!e) {
      drop.push_back(*p);
    } else if (e->state == NeighState::kIncomplete && !e->admin) {
      hold_locked(*e, p, drop);
    } else {
      e->used_ns = now;
      if (e->state == NeighState::kStale && !e->admin) enter_locked(sc, *e, NeighState::kDelay, now);
      std::memcpy(mac, e->mac, 6);
      have = true;
    }
  }
  pkt_list_free(drop);
  if (have) {
    ether_send_frame(ifp, p, mac, type);
    return {};
  }
  if (ask) solicit(ifp, nh, nullptr);
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
    return neigh_output(ifp, p, nh, ETH_P_IPV6);
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
  return neigh_output(ifp, p, nh, ETH_P_IP);
}

// A packet that waited for a neighbour that never answered: destination
// unreachable back to its sender (Linux: host unreachable for IPv4 from
// arp_error_report, address unreachable for IPv6, RFC 4861 7.2.2).
void neigh_unreachable(InetState& st, const Pkt& p, int family) {
  if (family == AF_INET6) {
    icmp6_error_pkt(st, p, ICMP6_DST_UNREACH, ICMP6_DST_UNREACH_ADDR, 0);
    return;
  }
  uint8_t buf[60 + 8];
  if (p.len() < 20) return;
  size_t n = p.len() < sizeof buf ? p.len() : sizeof buf;
  p.copy_out(0, n, buf);
  size_t hl = (buf[0] & 0xfu) * 4u;
  if (hl < 20 || hl > n) return;
  icmp_error(st, buf, hl, buf + hl, n - hl, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0);
}

// The timer's step for an entry whose time came (Linux's
// neigh_timer_handler): REACHABLE goes DELAY if it was used lately, else
// STALE (announced); DELAY goes REACHABLE if confirmed meanwhile, else
// PROBE (announced); INCOMPLETE and PROBE solicit again, up to
// kMaxProbes, then fail. Returns whether e failed (the caller removes it);
// *announce: its state changed in a way that is announced; *ask: a
// solicitation goes (unicast in PROBE).
bool neigh_step_locked(EtherSoftc& sc, NeighEntry& e, int64_t now, bool* announce, bool* ask)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(sc.lock) {
  switch (e.state) {
    case NeighState::kReachable:
      if (now < e.confirmed_ns + sc.reachable_ns) {
        e.until_ns = e.confirmed_ns + sc.reachable_ns;
      } else if (now - e.used_ns <= kDelayProbeNs) {
        int64_t c = e.confirmed_ns;
        enter_locked(sc, e, NeighState::kDelay, now);
        e.confirmed_ns = c;
      } else {
        e.state = NeighState::kStale;
        e.made_ns = now;
        *announce = true;
      }
      return false;
    case NeighState::kDelay:
      if (now - e.confirmed_ns <= kDelayProbeNs) {
        int64_t c = e.confirmed_ns;
        enter_locked(sc, e, NeighState::kReachable, now);
        e.confirmed_ns = c;
        e.until_ns = c + sc.reachable_ns;
        *announce = true;
        return false;
      }
      enter_locked(sc, e, NeighState::kProbe, now);
      *announce = true;
      break;
    case NeighState::kIncomplete:
    case NeighState::kProbe: break;
    case NeighState::kStale: return false;
  }
  if (e.probes >= kMaxProbes) return true;
  e.probes++;
  e.until_ns = now + kRetransNs;
  *ask = true;
  return false;
}

void neigh_timer(void* arg) {
  Ifnet& ifp = *static_cast<Ifnet*>(arg);
  EtherSoftc& sc = softc(ifp);
  InetState& st = ifp.state();
  struct Ask {
    IpAddr target;
    uint8_t mac[6];
    bool unicast;
  };
  constexpr int kBatch = 32;
  Ask out[kBatch];
  int nout = 0;
  // Entries whose state changed, and that failed (announced, then gone);
  // those the garbage collector took.
  NeighInfo changed[kBatch], gone[kBatch];
  int nchanged = 0, ngone = 0;
  NeighList collected;
  PktList failed4, failed6;
  int64_t now = mono_now_ns();
  {
    MutexLocker g(sc.lock);
    int64_t next = INT64_MAX;
    bool gc = sc.cache.size() >= kGcThresh1;
    for (auto it = sc.cache.begin(); it != sc.cache.end();) {
      NeighEntry& e = *it++;
      if (gc && !e.admin && e.state == NeighState::kStale && now - std::max(e.used_ns, e.made_ns) > kGcStaleNs) {
        sc.cache.erase(sc.cache.iterator_to(e));
        collected.push_back(e);
        continue;
      }
      if (!timed(e)) continue;
      if (e.until_ns > now) {
        next = std::min(next, e.until_ns);
        continue;
      }
      if (nout == kBatch || nchanged == kBatch || ngone == kBatch) {  // the rest at once
        next = now;
        continue;
      }
      bool announce = false, ask = false;
      if (neigh_step_locked(sc, e, now, &announce, &ask)) {
        if (e.state == NeighState::kIncomplete && e.ip.family == AF_INET6)
          st.icmp6_stats.NdResolveFails.fetch_add(1, std::memory_order_relaxed);
        gone[ngone++] = info_of(e, now);
        PktList& failed = e.ip.family == AF_INET6 ? failed6 : failed4;
        failed.splice(failed.end(), e.hold);
        sc.cache.erase(sc.cache.iterator_to(e));
        delete &e;
        continue;
      }
      if (announce) changed[nchanged++] = info_of(e, now);
      if (ask) {
        out[nout].target = e.ip;
        std::memcpy(out[nout].mac, e.mac, 6);
        out[nout].unicast = e.state == NeighState::kProbe;
        nout++;
      }
      if (timed(e)) next = std::min(next, e.until_ns);
    }
    if (sc.cache.size() >= kGcThresh1) next = std::min(next, now + kBaseReachableNs / 2);
    sc.nd_armed = next != INT64_MAX;
    if (sc.nd_armed) {
      sc.timer_at = next;
      sc.nd_timer.schedule(next - now);
    }
  }
  for (int i = 0; i < nchanged; i++) rtnl_notify_neigh_entry(ifp, changed[i], true);
  collected.clear_and_dispose([&](NeighEntry* e) {
    rtnl_notify_neigh_entry(ifp, info_of(*e, now), false);
    pkt_list_free(e->hold);
    delete e;
  });
  for (int i = 0; i < ngone; i++) rtnl_notify_neigh_failed(ifp, gone[i]);
  for (int i = 0; i < nout; i++) solicit(ifp, out[i].target, out[i].unicast ? out[i].mac : nullptr);
  failed4.clear_and_dispose([&](Pkt* p) {
    neigh_unreachable(st, *p, AF_INET);
    Pkt::free(p);
  });
  failed6.clear_and_dispose([&](Pkt* p) {
    neigh_unreachable(st, *p, AF_INET6);
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
  bool unicast = !(p->meta.flags & (kPktBroadcast | kPktMulticast));
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
  uint8_t to[6];
  {
    MutexLocker g(sc.lock);
    int64_t now = mono_now_ns();
    NeighEntry* e = find_locked(sc, IpAddr::of(spa));
    ch.before(e);
    if (spa.any()) {
      e = nullptr;  // a probe (RFC 5227) teaches nothing
    } else if (op == ARPOP_REQUEST && for_us) {
      // The requester (Linux's neigh_event_ns): made if missing, STALE
      // until used, its address taken.
      if (!e) e = make_locked(ifp.state(), sc, IpAddr::of(spa), drop);
      if (e) update_locked(sc, *e, a.sha, NeighState::kStale, true, now, release);
    } else if (e) {
      // Only a reply sent to us proves reachability; a changed address is
      // taken once the entry is older than the lock time, or from a
      // gratuitous ARP.
      bool reach = op == ARPOP_REPLY && unicast;
      bool override = now - e->made_ns >= kLocktimeNs || spa == tpa;
      update_locked(sc, *e, a.sha, reach ? NeighState::kReachable : NeighState::kStale, override, now, release);
    }
    if (e) std::memcpy(to, e->mac, 6);
    ch.after(e, now);
  }
  pkt_list_free(drop);
  ch.send(ifp);
  release.clear_and_dispose([&](Pkt* q) { ether_send_frame(ifp, q, to, ETH_P_IP); });
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
    ch.before(e);
    if (!is_na) {
      // A solicitation's source link-layer option (RFC 4861 7.2.3): a new
      // or changed address is STALE until used and confirmed.
      if (!mac) return;
      if (!e) e = make_locked(ifp.state(), sc, IpAddr::of(ip), drop);
      if (!e) return;
      update_locked(sc, *e, mac, NeighState::kStale, true, now, release);
    } else if (e) {
      // An advertisement (RFC 4861 7.2.5); none is wanted for an address
      // with no entry. Without its own option it speaks of the address
      // the entry has.
      if (e->state == NeighState::kIncomplete && !mac) return;
      const uint8_t* m = mac ? mac : e->mac;
      bool differs = std::memcmp(e->mac, m, 6) != 0;
      if (e->state != NeighState::kIncomplete && differs && !override) {
        // Not an override: a REACHABLE entry only goes STALE, keeping its
        // address (Linux's NEIGH_UPDATE_F_WEAK_OVERRIDE).
        if (e->state == NeighState::kReachable) enter_locked(sc, *e, NeighState::kStale, now);
      } else {
        update_locked(sc, *e, m, solicited ? NeighState::kReachable : NeighState::kStale, true, now, release);
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
    changed = !e || nud_of(*e) != nud || (mac && std::memcmp(e->mac, mac, 6) != 0);
    if (!e) {
      e = make_locked(ifp.state(), sc, ip, drop);
      if (!e) {
        pkt_list_free(drop);
        return err(ENOMEM);
      }
    }
    if (mac) std::memcpy(e->mac, mac, 6);
    e->admin = nud == NUD_PERMANENT || nud == NUD_NOARP ? nud : 0;
    e->probes = 0;
    enter_locked(sc, *e, state, now);
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
  sc->nd_timer.init(*st.kernel.services().callouts(), &neigh_timer, ifp);
  // Linux's neigh_rand_reach_time: between half and one and a half of
  // the base.
  uint64_t rnd = 0;
  size_t got = 0;
  rumpuser_getrandom(&rnd, sizeof rnd, 0, &got);
  sc->reachable_ns = kBaseReachableNs / 2 + static_cast<int64_t>(rnd % static_cast<uint64_t>(kBaseReachableNs));
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
