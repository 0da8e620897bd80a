// if.h: network interfaces (Ifnet) and the per-kernel inet state that owns
// them, the routing table, the packet pool and the protocol counters.
//
// An Ifnet is a device the stack sends through and receives from: `lo`
// (made at boot) and Ethernet interfaces (if_ether.h: framing and ARP over
// a link a device provides: a shared-memory bus, a host tap). The
// stack calls ops->output with a packet that starts at the network header
// and the next hop; the device frames and sends it. A device hands
// received packets (network header first, link header already stripped
// and its type given) to if_input(), which queues them and runs the stack
// on them.
//
// Input runs in the thread of whoever queued first (as Linux's softirq
// runs at the end of the call that raised it): if_input() appends to the
// interface's queue and, if no thread is draining that queue, drains it
// itself. So loopback delivery needs no thread switch, deep recursion
// cannot happen (a packet sent while draining is only queued), and the
// rule for callers is: no socket lock held across ip_output() or
// if_input().
//
// Locking: InetState::if_lock_ (an RwLock, read on every packet) guards the
// interface list and every interface's addresses and MTU; rt_lock_ guards
// the routing table. Neither is held while a packet is delivered to a
// socket or handed to a device. Flags and counters are atomics.
#pragma once

#include <net/if.h>

#include <atomic>
#include <boost/intrusive/list.hpp>

#include "base/kmem.h"
#include "base/ref.h"
#include "base/siphash.h"
#include "kern/callout.h"
#include "net/inet/ip.h"
#include "net/inet/pkt.h"
#include "sync/mutex.h"

namespace rump {

class Ifnet;
struct InetState;
struct IfImpair;

struct IfOps {
  // Sends p (starting at the network header, proto an ETH_P_* value) to
  // next hop nh. Consumes p.
  Result<void> (*output)(Ifnet& ifp, Pkt* p, const IpAddr& nh, uint16_t proto);
  // IFF_UP changed (may be null).
  Result<void> (*set_up)(Ifnet& ifp, bool up);
  // rump_pub_netconfig_ifsetlinkstr (may be null: EOPNOTSUPP).
  Result<void> (*set_linkstr)(Ifnet& ifp, const char* s);
  // The interface goes (may be null).
  void (*destroy)(Ifnet& ifp);
};

struct IfAddr4 {
  InAddr addr, mask, bcast;
  uint8_t plen = 0;
};
struct IfAddr6 {
  In6Addr addr;
  uint8_t plen = 0;
  int64_t tentative_until_ns = 0;  // duplicate address detection runs until then
  // Made by stateless autoconfiguration from a router advertisement's
  // prefix (RFC 4862 5.5.3): reported dynamic, not permanent, and its
  // lifetimes count down (monotonic deadlines; 0: infinite). Past the
  // preferred one it is deprecated (source selection avoids it), past
  // the valid one it goes (nd6_lifetime_timer).
  bool autoconf = false;
  bool deprecated_told = false;  // its deprecation was announced
  int64_t valid_until_ns = 0, preferred_until_ns = 0;
  bool deprecated(int64_t now) const { return preferred_until_ns && preferred_until_ns <= now; }
};

struct IfCounters {
  std::atomic<uint64_t> ipackets{0}, ibytes{0}, ierrors{0}, iqdrops{0};
  std::atomic<uint64_t> opackets{0}, obytes{0}, oerrors{0};
};

class Ifnet : public KObject, public RefCounted<Ifnet> {
 public:
  static constexpr int kMaxAddr4 = 8, kMaxAddr6 = 8;

  Ifnet(InetState& st, const IfOps& ops) : st_(st), ops_(ops) {}
  ~Ifnet();

  InetState& state() const { return st_; }
  const IfOps& ops() const { return ops_; }

  char name[IFNAMSIZ] = {};
  int index = 0;
  int type = 0;            // ARPHRD_LOOPBACK, ARPHRD_ETHER
  // The device takes partial checksums (kCsumPartial): it finishes them
  // (a tap with offloads) or its medium needs none (lo, shmif).
  std::atomic<bool> no_csum{false};
  // The longest IP packet holding one TCP segment that the device cuts
  // into MTU-sized segments itself (TSO; 0: none). Such a packet carries
  // meta.gso_size; ip_output cuts it in software for other devices.
  std::atomic<uint32_t> tso_max{0};
  uint8_t hwaddr[6] = {};
  std::atomic<uint32_t> flags{0};  // IFF_*
  std::atomic<uint32_t> mtu{1500};
  std::atomic<uint32_t> mtu6{0};  // IPv6's, from a router advertisement (0: mtu)
  IfCounters counters;
  void* softc = nullptr;   // the device's own state (its IfOps know the type)

  // Guarded by st_.if_lock_.
  IfAddr4 addr4[kMaxAddr4];
  int naddr4 = 0;
  IfAddr6 addr6[kMaxAddr6];
  int naddr6 = 0;

  bool up() const { return flags.load(std::memory_order_acquire) & IFF_UP; }

  // Seeded impairment of what the interface receives (if_impair.cc):
  // made by the first rump_pub_netconfig_impair, kept until the interface
  // goes; null (the usual case) costs one load per packet.
  std::atomic<IfImpair*> impair{nullptr};

  // The input queue (if_input).
  SpinLock inq_lock_{LockRank::kNone};
  PktList inq_ ABSL_GUARDED_BY(inq_lock_);
  bool draining_ ABSL_GUARDED_BY(inq_lock_) = false;
  static constexpr size_t kInqMax = 1000;  // net.core.netdev_max_backlog

  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;

 private:
  friend class RefCounted<Ifnet>;
  void last_unref() { delete this; }
  InetState& st_;
  const IfOps& ops_;
};

// Queues a received packet (network header first; proto: ETH_P_IP,
// ETH_P_IPV6, ETH_P_ARP) and runs the stack on the queue unless another
// thread is at it. Consumes p. No socket lock held.
void if_input(Ifnet& ifp, Pkt* p, uint16_t proto);

// The part of if_input after the counters and the up check: queues p and
// drains the queue (impairment hands its packets on through this).
void if_enqueue(Ifnet& ifp, Pkt* p, uint16_t proto);

// Impairment (rump_pub_netconfig_impair): what an interface receives is
// dropped, duplicated, reordered and delayed at random, from a generator
// seeded by seed, so the same traffic is impaired the same way each time.
// Probabilities in [0, 1] (else EINVAL); all zero turns it off; ENOMEM.
struct ImpairConfig {
  uint64_t seed = 0;
  double loss = 0, duplicate = 0, reorder = 0;
  uint32_t delay_us = 0;
};
Result<void> if_set_impair(Ifnet& ifp, const ImpairConfig& cfg);
// Takes a received packet through the impairment (consumes it).
void if_impair_input(Ifnet& ifp, IfImpair& im, Pkt* p, uint16_t proto);
// Frees the impairment state (the interface goes: no more input).
void if_impair_free(Ifnet& ifp);

// --- routes

// What rtnetlink says about a route beyond where it leads (Linux's
// rtmsg fields and RTA_PRIORITY/RTA_PREFSRC); routes made by the ioctls
// and netconfig take the defaults, which derive them as Linux does.
struct RouteInfo {
  static constexpr uint8_t kDerive = 0xff;
  // Linux's table numbers: lookups use main, then default (its default
  // rules; there are no others); any other table only keeps its routes.
  static constexpr uint32_t kTableDefault = 253, kTableMain = 254, kTableLocal = 255;
  uint32_t table = kTableMain;
  uint32_t priority = 0;         // the metric (lower wins between equal prefixes)
  uint8_t protocol = kDerive;    // RTPROT_*: kernel for connected routes, else boot
  uint8_t scope = kDerive;       // RT_SCOPE_*: link without a gateway, else universe
  IpAddr prefsrc;                // family 0: none
  bool excl = false;             // add: EEXIST instead of replacing (NLM_F_EXCL)
  int64_t expires_ns = 0;        // learnt from a router advertisement: goes then (monotonic; 0: never)
};

struct RouteEntry : public KObject {
  IpAddr dst;       // the prefix (host bits zero)
  uint8_t plen = 0;
  IpAddr gateway;   // family 0: directly connected
  int ifindex = 0;
  bool connected = false;  // made by an address (removed with it)
  RouteInfo info;
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;
};
using RouteList = boost::intrusive::list<RouteEntry, boost::intrusive::member_hook<RouteEntry, decltype(RouteEntry::hook),
                                                                                   &RouteEntry::hook>,
                                         boost::intrusive::constant_time_size<false>>;

// a with the bits after its first plen cleared.
IpAddr ip_prefix(const IpAddr& a, int plen);

// The result of a route lookup: the interface (referenced) and the next
// hop.
struct RouteResult {
  RefPtr<Ifnet> ifp;
  IpAddr nexthop;
  bool local = false;  // dst is one of our own addresses (sent through lo)
  uint32_t table = RouteInfo::kTableMain;  // the table the route came from (local for our addresses)
};
Result<RouteResult> route_lookup(InetState& st, const IpAddr& dst);
// The address of lo whose prefix holds a (not its broadcast address), or
// null: Linux's fib_add_ifaddr makes the prefix of an address of lo a
// local route, so that all of it is ours (127.0.0.0/8 from 127.0.0.1).
// Under st.if_lock_ (read).
const IfAddr4* lo_prefix_locked(const InetState& st, InAddr a);
// Adds or replaces a route. ENETUNREACH if the gateway is not reachable
// through a connected route (for gateway routes), ENXIO for a bad ifindex.
// A route is known by its prefix and metric: adding one that exists
// replaces it (EEXIST with info.excl).
Result<void> route_add(InetState& st, const IpAddr& dst, int plen, const IpAddr& gw, int ifindex, bool connected,
                       const RouteInfo& info = {});
// Deletes the first route of the prefix in table that also matches the
// metric, interface and gateway where they are given (priority < 0,
// ifindex 0, gw family 0: any); ESRCH if none.
Result<void> route_delete(InetState& st, const IpAddr& dst, int plen, int64_t priority = -1, int ifindex = 0,
                          const IpAddr& gw = IpAddr(), uint32_t table = RouteInfo::kTableMain);
// True if a route for exactly dst/plen is in table main.
bool route_exists(InetState& st, const IpAddr& dst, int plen);

// --- counters (/proc/net/snmp names)

#define RUMP_IP_STATS(X)                                                                                   \
  X(InReceives) X(InHdrErrors) X(InAddrErrors) X(ForwDatagrams) X(InUnknownProtos) X(InDiscards)          \
  X(InDelivers) X(OutRequests) X(OutDiscards) X(OutNoRoutes) X(ReasmTimeout) X(ReasmReqds) X(ReasmOKs)   \
  X(ReasmFails) X(FragOKs) X(FragFails) X(FragCreates) X(InTruncatedPkts) X(InCsumErrors) X(ReasmOverlaps)
#define RUMP_ICMP_STATS(X)                                                                                 \
  X(InMsgs) X(InErrors) X(InCsumErrors) X(InDestUnreachs) X(InTimeExcds) X(InEchos) X(InEchoReps)         \
  X(OutMsgs) X(OutErrors) X(OutDestUnreachs) X(OutTimeExcds) X(OutEchos) X(OutEchoReps) X(OutRateLimited)
#define RUMP_UDP_STATS(X)                                                                                  \
  X(InDatagrams) X(NoPorts) X(InErrors) X(OutDatagrams) X(RcvbufErrors) X(SndbufErrors) X(InCsumErrors)
#define RUMP_TCP_STATS(X)                                                                                  \
  X(ActiveOpens) X(PassiveOpens) X(InSegs) X(InErrs) X(InCsumErrors) X(NoPorts) X(OutRsts)

#define RUMP_IP6_STATS(X)                                                                                  \
  X(InReceives) X(InHdrErrors) X(InAddrErrors) X(InUnknownProtos) X(InTruncatedPkts) X(InDelivers)        \
  X(OutRequests) X(OutDiscards) X(OutNoRoutes) X(ReasmTimeout) X(ReasmReqds) X(ReasmOKs) X(ReasmFails)   \
  X(ReasmOverlaps) X(FragOKs) X(FragFails) X(FragCreates)
#define RUMP_ICMP6_STATS(X)                                                                                \
  X(InMsgs) X(InErrors) X(InCsumErrors) X(InDestUnreachs) X(InPktTooBigs) X(InTimeExcds) X(InParmProblems) \
  X(InEchos) X(InEchoReps) X(InNeighborSolicits) X(InNeighborAdvertisements) X(OutMsgs) X(OutErrors)      \
  X(OutDestUnreachs) X(OutPktTooBigs) X(OutTimeExcds) X(OutParmProblems) X(OutEchos) X(OutEchoReps)       \
  X(OutNeighborSolicits) X(OutNeighborAdvertisements) X(OutRateLimited) X(NdDupAddrs) X(NdResolveFails)       \
  X(OutRouterSolicits) X(InRouterAdvertisements)

#define RUMP_STAT_FIELD(n) std::atomic<uint64_t> n{0};
struct IpStats {
  RUMP_IP_STATS(RUMP_STAT_FIELD)
};
struct IcmpStats {
  RUMP_ICMP_STATS(RUMP_STAT_FIELD)
};
struct UdpStats {
  RUMP_UDP_STATS(RUMP_STAT_FIELD)
};
struct TcpStats {
  RUMP_TCP_STATS(RUMP_STAT_FIELD)
};
struct Ip6Stats {
  RUMP_IP6_STATS(RUMP_STAT_FIELD)
};
struct Icmp6Stats {
  RUMP_ICMP6_STATS(RUMP_STAT_FIELD)
};
#undef RUMP_STAT_FIELD

// --- IPv4 and IPv6 reassembly: the fragments of one datagram so far,
// ordered by offset without overlap (an overlapping fragment drops the
// whole datagram, as RFC 5722 asks for IPv6 and Linux does for IPv4).

struct ReassQueue : public KObject {
  IpAddr src, dst;      // the family tells IPv4 from IPv6 queues
  uint32_t id = 0;      // IPv4: the 16-bit id (network order); IPv6: the fragment header's
  uint8_t proto = 0, ttl = 0, tos = 0;  // IPv6: proto is the first fragment's next header
  int ifindex = 0;
  uint32_t flags = 0;
  uint32_t total = 0;   // the datagram's length, once the last fragment came (0: not yet)
  uint32_t have = 0;    // payload bytes held
  int64_t expire_ns = 0;
  uint8_t hdr[60];      // the first fragment's IP header (for time exceeded; IPv6: 40 bytes)
  uint8_t hdrlen = 0;   // 0: the first fragment has not come
  uint8_t first8[8];    // and the first 8 bytes of its payload
  PktList frags;        // each Pkt's meta.aux is its offset
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;
};
using ReassList = boost::intrusive::list<ReassQueue, boost::intrusive::member_hook<ReassQueue, decltype(ReassQueue::hook),
                                                                                   &ReassQueue::hook>,
                                         boost::intrusive::constant_time_size<true>>;

// A TCP connection whose socket was closed while the connection still
// runs (FIN_WAIT, TIME_WAIT ...): it holds a reference on its socket until
// it ends, and sits on InetState::tcp_orphans_ so that stopping the stack
// ends it at once (net/inet/tcp_sock.cc).
struct TcpOrphanLink {
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;
  Socket* so = nullptr;
};
using TcpOrphanList = boost::intrusive::list<
    TcpOrphanLink, boost::intrusive::member_hook<TcpOrphanLink, decltype(TcpOrphanLink::hook), &TcpOrphanLink::hook>,
    boost::intrusive::constant_time_size<false>>;


// A netlink socket's place in InetState::nl_socks_ (net/inet/netlink.h).
struct NetlinkLink {
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;
  Socket* so = nullptr;
};
using NetlinkList = boost::intrusive::list<
    NetlinkLink, boost::intrusive::member_hook<NetlinkLink, decltype(NetlinkLink::hook), &NetlinkLink::hook>,
    boost::intrusive::constant_time_size<false>>;

// --- the per-kernel state

// Lives from its first use (inet_state) until halt and the last inet
// socket, whichever is later (sockets are closed after the components'
// fini at halt): every inet socket holds a reference (ref/unref) and
// reaches the state through its own pointer; inet_state_or_null(k) is
// null once the component stopped.
struct InetState : public KObject {
  explicit InetState(Kernel& k);
  ~InetState();
  Kernel& kernel;
  std::atomic<int> refs_{1};  // the component's, and one per inet socket
  void ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  PktPool pool;

  mutable RwLock if_lock_{LockRank::kNone};
  boost::intrusive::list<Ifnet, boost::intrusive::member_hook<Ifnet, decltype(Ifnet::hook), &Ifnet::hook>,
                         boost::intrusive::constant_time_size<false>>
      ifs_ ABSL_GUARDED_BY(if_lock_);
  int next_ifindex_ ABSL_GUARDED_BY(if_lock_) = 1;
  Ifnet* lo_ = nullptr;  // set at boot, referenced by the list

  mutable RwLock rt_lock_{LockRank::kNone};
  RouteList routes_ ABSL_GUARDED_BY(rt_lock_);

  // IPv4 and IPv6 reassembly (net/inet/ip_reass.cc).
  Mutex reass_lock_{LockRank::kNone};
  // Router-advertisement lifetimes (nd6_lifetime_timer), armed under
  // rt_lock_ held exclusively (nd6_lifetimes_arm).
  Callout addrconf_timer_;
  ReassList reass_ ABSL_GUARDED_BY(reass_lock_);
  size_t reass_bytes_ ABSL_GUARDED_BY(reass_lock_) = 0;
  Callout reass_timer_;
  std::atomic<uint32_t> ip_id_{0};
  std::atomic<uint32_t> ip6_id_{0};  // the IPv6 fragment identification

  // Path MTUs learnt from ICMP "fragmentation needed" (RFC 1191), a
  // small table of the most recent, each valid for kPmtuValidNs.
  struct PmtuEntry {
    IpAddr dst;
    uint32_t mtu = 0;
    int64_t expire_ns = 0;
  };
  static constexpr int kPmtuEntries = 16;
  static constexpr int64_t kPmtuValidNs = 600LL * 1000 * 1000 * 1000;  // Linux's mtu_expires
  mutable SpinLock pmtu_lock_{LockRank::kNone};
  PmtuEntry pmtu_[kPmtuEntries] ABSL_GUARDED_BY(pmtu_lock_);
  int pmtu_next_ ABSL_GUARDED_BY(pmtu_lock_) = 0;
  // The path MTU to dst if one was learnt (0: none).
  uint32_t pmtu_of(const IpAddr& dst) const;
  void pmtu_learn(const IpAddr& dst, uint32_t mtu);

  // ICMP errors: a token bucket for the whole kernel (Linux's
  // icmp_msgs_per_sec 1000, icmp_msgs_burst 50).
  SpinLock icmp_rate_lock_{LockRank::kNone};
  int64_t icmp_tokens_ ABSL_GUARDED_BY(icmp_rate_lock_) = 50;
  int64_t icmp_last_ns_ ABSL_GUARDED_BY(icmp_rate_lock_) = 0;
  // Takes a token: false when the error must not be sent.
  bool icmp_rate_ok();

  InPcbTable udp{IPPROTO_UDP};
  InPcbTable raw{IPPROTO_RAW};
  InPcbTable ping{IPPROTO_ICMP};
  // The TCP engine's PCBs.
  InPcbTable tcp;
  // Closed sockets whose connections still run (a leaf lock: taken under
  // a socket's lock).
  Mutex tcp_orphans_lock_{LockRank::kNone};
  TcpOrphanList tcp_orphans_ ABSL_GUARDED_BY(tcp_orphans_lock_);
  // Frees the compact TIME_WAIT records in tcp whose time is up
  // (tcp_timewait.cc), armed at the earliest.
  Callout tcp_tw_timer_;
  uint64_t tcp_cookie_secret = 0;  // for SYN cookies, chosen at boot
  SipKey tcp_isn_key;              // for ISNs and timestamp offsets, chosen at boot
  std::atomic<bool> tcp_callouts_started{false};

  // Netlink sockets, bound or not (port ids and multicast groups). The
  // table lock is taken before a socket's lock (a notification delivers
  // to each listener under it), never under one.
  Mutex nl_lock_{LockRank::kNetlinkTable};
  NetlinkList nl_socks_ ABSL_GUARDED_BY(nl_lock_);
  int32_t nl_rover_ ABSL_GUARDED_BY(nl_lock_) = -4096;  // Linux's first automatic port id
  // Sockets in a multicast group: without any, a change costs no message.
  std::atomic<int> nl_listeners_{0};

  IpStats ip_stats;
  IcmpStats icmp_stats;
  UdpStats udp_stats;
  TcpStats tcp_stats;
  Ip6Stats ip6_stats;
  Icmp6Stats icmp6_stats;

  // Sysctls.
  std::atomic<int> ip_default_ttl{64};
  std::atomic<uint32_t> ping_group_lo{1}, ping_group_hi{0};  // net.ipv4.ping_group_range (empty)
  std::atomic<int> ipfrag_high_thresh{4 * 1024 * 1024};
  std::atomic<int> ipfrag_time{30};  // seconds
  std::atomic<int> ip6frag_time{60};  // seconds (net.ipv6.ip6frag_time)
  std::atomic<int> tcp_tw_reuse{2};   // net.ipv4.tcp_tw_reuse: 2, loopback only
  std::atomic<int> tcp_invalid_ratelimit{500};  // ms, net.ipv4.tcp_invalid_ratelimit

  // Interfaces by name or index, referenced (null if none).
  RefPtr<Ifnet> find_if(const char* name) const;
  RefPtr<Ifnet> find_if(int index) const;
};
// The state, made (with lo up) by the first caller that needs it:
// EAFNOSUPPORT when the inet component is not running (halted, not
// linked), ENOMEM when it cannot be made (nothing is left behind; the
// next caller tries again).
Result<InetState*> inet_state(Kernel& k);
// The same, null on either error.
InetState* inet_state_or_null(Kernel& k);
// Resets every orphaned TCP connection (the stack stops).
void tcp_abort_orphans(InetState& st);
// Stops the TIME_WAIT records' callout and frees every record.
void tcp_time_wait_drop_all(InetState& st);
// The records' callout function (arg: the InetState).
void tcp_time_wait_timer(void* arg);
// The reassembly timer's function (arg: the InetState).
void ip_reass_timer(void* arg);
// The lifetimes of what router advertisements made (net/inet/nd6.cc):
// the timer's function (arg: the InetState) expires addresses and routes
// and deprecates addresses; arm sets it to the next deadline (stops it
// when none is left).
void nd6_lifetime_timer(void* arg);
void nd6_lifetimes_arm(InetState& st);

// Interface management (net/inet/if.cc). attach: gives it an index and
// links it. EEXIST for a name in use.
Result<void> if_attach(InetState& st, Ifnet& ifp);
// Unlinks it, removes its addresses and routes, calls ops.destroy.
void if_detach(InetState& st, Ifnet& ifp);
Result<void> if_set_up(Ifnet& ifp, bool up);
// Adds (or replaces the mask of) an address, with its connected route;
// primary: as the first address (what SIOCGIFADDR reports); bcast: the
// broadcast address (null: the prefix's, as SIOCSIFADDR sets it; 0: none).
Result<void> if_add_addr4(Ifnet& ifp, InAddr a, int plen, bool primary = false, const InAddr* bcast = nullptr);
// life: an autoconfigured address's (autoconf and lifetimes), null for
// a configured one.
Result<void> if_add_addr6(Ifnet& ifp, const In6Addr& a, int plen, const IfAddr6* life = nullptr);
// Removes an address and its connected route: EADDRNOTAVAIL if absent.
Result<void> if_del_addr4(Ifnet& ifp, InAddr a);
Result<void> if_del_addr6(Ifnet& ifp, const In6Addr& a);
// The first IPv4 address (SIOCGIFADDR's): EADDRNOTAVAIL if none.
Result<IfAddr4> if_primary_addr4(Ifnet& ifp);
// Interface types made by name (rump_pub_netconfig_ifcreate("shmif0")):
// a device registers its cloner at load time; create makes, attaches and
// returns nothing else (ENXIO for a unit it cannot make).
struct IfCloner {
  const char* prefix;
  Result<void> (*create)(InetState& st, const char* name, int unit, const void* arg);
  const void* arg;  // the type's own (handed to create)
};
void if_clone_register(const IfCloner* c);
struct IfClonerRegistrar {
  explicit IfClonerRegistrar(const IfCloner* c) { if_clone_register(c); }
};

// rtnetlink notifications (net/inet/rtnetlink.cc) of a change made by any
// path (netlink, ioctl, netconfig) to the sockets in the matching
// multicast group. No lock held; nothing is built without a listener.
void rtnl_notify_link(Ifnet& ifp);
void rtnl_notify_addr4(Ifnet& ifp, const IfAddr4& a, bool add);
void rtnl_notify_addr6(Ifnet& ifp, const IfAddr6& a, bool add);
// An address's flags or lifetimes changed (RTM_NEWADDR alone).
void rtnl_notify_addr6_changed(Ifnet& ifp, const IfAddr6& a);
void rtnl_notify_route(InetState& st, const RouteEntry& e, bool add);
// The interface goes (RTM_DELLINK); its neighbour entries go
// (RTM_DELNEIGH each); ip's entry was set or removed.
void rtnl_notify_link_gone(Ifnet& ifp);
void rtnl_notify_neighs_gone(Ifnet& ifp);
void rtnl_notify_neigh(Ifnet& ifp, const IpAddr& ip, bool add);

// The loopback interface (net/inet/if_loop.cc).
Result<void> loop_create(InetState& st);

}  // namespace rump
