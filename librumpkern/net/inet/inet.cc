// The inet component: the per-kernel inet state (if.h), made with `lo` up
// on first use (a kernel that never touches IPv4/IPv6 pays neither the
// time nor the memory of the stack at boot and halt), the registry of transport protocols (ip.h), and the sysctl
// nodes of the stack (counters under net.inet.*, Linux's knobs under
// net.ipv4.*).
#include <arpa/inet.h>
#include <net/if_arp.h>

#include <cstdio>
#include <cstring>

#include "kern/clock.h"
#include "kern/component.h"
#include "kern/kernel.h"
#include "kern/sysctl.h"
#include "net/inet/if.h"

namespace rump {

namespace {

Result<void> inet_init(Kernel& k);
void inet_fini(Kernel& k);
Component g_inet_component{"inet", ComponentType::kNet, &inet_init, &inet_fini};
RUMP_COMPONENT(g_inet_component);

// What the component owns from boot to halt: the state once something
// needed it. The state is published once (release) and read without the
// lock; the lock orders its creation against halt, which sets stopped_ so
// that nothing makes a state the halt would not free.
struct InetHolder : public KObject {
  Mutex lock_{LockRank::kNone};
  std::atomic<InetState*> st_{nullptr};
  bool stopped_ ABSL_GUARDED_BY(lock_) = false;
};
const KernelSlot<InetHolder> g_inet_holder{g_inet_component};

// A new state with lo up, not yet published (ENOMEM).
Result<InetState*> make_state(Kernel& k) {
  auto* st = new (k.kmem()) InetState(k);
  if (!st) return err(ENOMEM);
  Result<void> r = loop_create(*st);
  if (!r.ok()) {
    st->unref();
    return Error{r.error()};
  }
  return st;
}

// --- protocols: registered at load time, read-only afterwards.
struct ProtoTable {
  const InetProto* by_num[256] = {};
};
ProtoTable& protos() {
  static ProtoTable t;
  return t;
}

// --- sysctl

enum : int {
  CTL_NET = 4,
  NET_INET = 2,    // BSD's PF_INET
  NET_INET6 = 24,  // BSD's PF_INET6
  NET_IPV4 = 100,  // Linux's names, this kernel's numbers
  NET_IPV6 = 101,
  INET6_IP6 = 41,
  INET6_ICMP6 = 58,
  INET_IP = 0,
  INET_ICMP = 1,
  INET_TCP = 6,
  INET_UDP = 17,
  STATS = 1000,
  IPV4_PING_GROUP_RANGE = 1,
  IPV4_DEFAULT_TTL = 2,
  IPV4_IPFRAG_TIME = 3,
  IPV4_IPFRAG_HIGH_THRESH = 4,
  IPV4_TCP_TW_REUSE = 5,
  IPV4_IP_LOCAL_PORT_RANGE = 6,
  IPV4_TCP_INVALID_RATELIMIT = 7,
  IPV6_IP6FRAG_TIME = 1,
};

// Counters as "Name value" lines, /proc/net/snmp's names.
template <class Stats>
size_t format_stats(const Stats& s, const char* const* names, const std::atomic<uint64_t>* first, size_t n,
                    char* buf, size_t cap) {
  char tmp[2048];
  size_t len = 0;
  for (size_t i = 0; i < n && len < sizeof tmp; i++) {
    int w = snprintf(tmp + len, sizeof tmp - len, "%s %llu\n", names[i],
                     static_cast<unsigned long long>(first[i].load(std::memory_order_relaxed)));
    if (w < 0) break;
    len += static_cast<size_t>(w);
  }
  if (len >= sizeof tmp) len = sizeof tmp - 1;
  tmp[len] = '\0';
  if (cap) {
    size_t c = len + 1 < cap ? len + 1 : cap;
    std::memcpy(buf, tmp, c);
    buf[c - 1] = '\0';
  }
  (void)s;
  return len + 1;
}

#define RUMP_STAT_NAME(n) #n,
const char* const kIpNames[] = {RUMP_IP_STATS(RUMP_STAT_NAME)};
const char* const kIcmpNames[] = {RUMP_ICMP_STATS(RUMP_STAT_NAME)};
const char* const kUdpNames[] = {RUMP_UDP_STATS(RUMP_STAT_NAME)};
const char* const kTcpNames[] = {RUMP_TCP_STATS(RUMP_STAT_NAME)};
const char* const kIp6Names[] = {RUMP_IP6_STATS(RUMP_STAT_NAME)};
const char* const kIcmp6Names[] = {RUMP_ICMP6_STATS(RUMP_STAT_NAME)};
#undef RUMP_STAT_NAME

size_t empty_string(char* buf, size_t cap) {
  if (cap) buf[0] = '\0';
  return 1;
}

// The counter structs are arrays of atomics laid out in declaration order.
template <class Stats, size_t N>
size_t stats_of(Kernel& k, Stats InetState::*member, const char* const (&names)[N], char* buf, size_t cap) {
  InetState* st = inet_state_or_null(k);
  if (!st) return empty_string(buf, cap);
  const Stats& s = st->*member;
  static_assert(sizeof(Stats) == N * sizeof(std::atomic<uint64_t>));
  return format_stats(s, names, reinterpret_cast<const std::atomic<uint64_t>*>(&s), N, buf, cap);
}

size_t get_ip_stats(Kernel& k, char* buf, size_t cap) { return stats_of(k, &InetState::ip_stats, kIpNames, buf, cap); }
size_t get_icmp_stats(Kernel& k, char* buf, size_t cap) {
  return stats_of(k, &InetState::icmp_stats, kIcmpNames, buf, cap);
}
size_t get_udp_stats(Kernel& k, char* buf, size_t cap) {
  return stats_of(k, &InetState::udp_stats, kUdpNames, buf, cap);
}

size_t get_tcp_stats(Kernel& k, char* buf, size_t cap) {
  return stats_of(k, &InetState::tcp_stats, kTcpNames, buf, cap);
}

size_t get_ip6_stats(Kernel& k, char* buf, size_t cap) {
  return stats_of(k, &InetState::ip6_stats, kIp6Names, buf, cap);
}
size_t get_icmp6_stats(Kernel& k, char* buf, size_t cap) {
  return stats_of(k, &InetState::icmp6_stats, kIcmp6Names, buf, cap);
}

// "a\tb", as Linux's range sysctls read.
size_t format_pair(uint32_t a, uint32_t b, char* buf, size_t cap) {
  char tmp[32];
  int n = snprintf(tmp, sizeof tmp, "%u\t%u", a, b);
  if (cap) {
    size_t c = static_cast<size_t>(n) + 1 < cap ? static_cast<size_t>(n) + 1 : cap;
    std::memcpy(buf, tmp, c);
    buf[c - 1] = '\0';
  }
  return static_cast<size_t>(n) + 1;
}

size_t get_ping_range(Kernel& k, char* buf, size_t cap) {
  InetState* st = inet_state_or_null(k);
  if (!st) return empty_string(buf, cap);
  return format_pair(st->ping_group_lo.load(), st->ping_group_hi.load(), buf, cap);
}

bool parse_uint(const char*& s, const char* end, uint32_t& v) {
  while (s < end && (*s == ' ' || *s == '\t' || *s == '\n')) s++;
  if (s == end || *s < '0' || *s > '9') return false;
  uint64_t x = 0;
  while (s < end && *s >= '0' && *s <= '9') {
    x = x * 10 + static_cast<uint64_t>(*s++ - '0');
    if (x > 0xffffffffu) return false;
  }
  v = static_cast<uint32_t>(x);
  return true;
}

// Two numbers and nothing else but blanks.
bool parse_pair(const char* s, size_t len, uint32_t& a, uint32_t& b) {
  const char* end = s + len;
  if (!parse_uint(s, end, a) || !parse_uint(s, end, b)) return false;
  while (s < end && (*s == ' ' || *s == '\t' || *s == '\n')) s++;
  return s == end;
}

Result<void> set_ping_range(Kernel& k, const char* s, size_t len) {
  InetState* st = inet_state_or_null(k);
  if (!st) return err(ENOENT);
  uint32_t lo, hi;
  if (!parse_pair(s, len, lo, hi)) return err(EINVAL);
  st->ping_group_lo.store(lo);
  st->ping_group_hi.store(hi);
  return {};
}

int get_tw_reuse(Kernel& k) {
  InetState* st = inet_state_or_null(k);
  return st ? st->tcp_tw_reuse.load() : 2;
}
Result<void> set_tw_reuse(Kernel& k, int v) {
  if (v < 0 || v > 2) return err(EINVAL);
  if (InetState* st = inet_state_or_null(k)) st->tcp_tw_reuse.store(v);
  return {};
}

// Any value, as Linux takes it (0 or less: no limit).
int get_invalid_ratelimit(Kernel& k) {
  InetState* st = inet_state_or_null(k);
  return st ? st->tcp_invalid_ratelimit.load() : 500;
}
Result<void> set_invalid_ratelimit(Kernel& k, int v) {
  if (InetState* st = inet_state_or_null(k)) st->tcp_invalid_ratelimit.store(v);
  return {};
}

// net.ipv4.ip_local_port_range: "low\thigh", for TCP and UDP.
size_t get_port_range(Kernel& k, char* buf, size_t cap) {
  InetState* st = inet_state_or_null(k);
  if (!st) return empty_string(buf, cap);
  uint16_t lo, hi;
  st->tcp.port_range(&lo, &hi);
  return format_pair(lo, hi, buf, cap);
}

Result<void> set_port_range(Kernel& k, const char* s, size_t len) {
  InetState* st = inet_state_or_null(k);
  if (!st) return err(ENOENT);
  uint32_t lo, hi;
  if (!parse_pair(s, len, lo, hi)) return err(EINVAL);
  // Linux's ipv4_local_port_range: 1 <= low <= high <= 65535.
  if (lo < 1 || hi > 65535 || lo > hi) return err(EINVAL);
  st->tcp.set_port_range(static_cast<uint16_t>(lo), static_cast<uint16_t>(hi));
  st->udp.set_port_range(static_cast<uint16_t>(lo), static_cast<uint16_t>(hi));
  return {};
}

int get_default_ttl(Kernel& k) {
  InetState* st = inet_state_or_null(k);
  return st ? st->ip_default_ttl.load() : 64;
}
Result<void> set_default_ttl(Kernel& k, int v) {
  if (v < 1 || v > 255) return err(EINVAL);
  if (InetState* st = inet_state_or_null(k)) st->ip_default_ttl.store(v);
  return {};
}
int get_frag_time(Kernel& k) {
  InetState* st = inet_state_or_null(k);
  return st ? st->ipfrag_time.load() : 30;
}
Result<void> set_frag_time(Kernel& k, int v) {
  if (v < 1) return err(EINVAL);
  if (InetState* st = inet_state_or_null(k)) st->ipfrag_time.store(v);
  return {};
}
int get_frag6_time(Kernel& k) {
  InetState* st = inet_state_or_null(k);
  return st ? st->ip6frag_time.load() : 60;
}
Result<void> set_frag6_time(Kernel& k, int v) {
  if (v < 1) return err(EINVAL);
  if (InetState* st = inet_state_or_null(k)) st->ip6frag_time.store(v);
  return {};
}
int get_frag_high(Kernel& k) {
  InetState* st = inet_state_or_null(k);
  return st ? st->ipfrag_high_thresh.load() : 0;
}
Result<void> set_frag_high(Kernel& k, int v) {
  if (v < 0) return err(EINVAL);
  if (InetState* st = inet_state_or_null(k)) st->ipfrag_high_thresh.store(v);
  return {};
}

SysctlOps str_ops(size_t (*get)(Kernel&, char*, size_t), Result<void> (*set)(Kernel&, const char*, size_t) = nullptr) {
  SysctlOps o;
  o.get_string = get;
  o.set_string = set;
  return o;
}
SysctlOps i_ops(int (*get)(Kernel&), Result<void> (*set)(Kernel&, int)) {
  SysctlOps o;
  o.get_int = get;
  o.set_int = set;
  return o;
}

struct InetNode {
  int parent[3];
  unsigned plen;
  SysctlNodeInit init;
};

using enum SysctlType;
using enum SysctlAccess;

const InetNode kInetNodes[] = {
    {{}, 0, {CTL_NET, "net", kNode, kReadOnly, {}}},
    {{CTL_NET}, 1, {NET_INET, "inet", kNode, kReadOnly, {}}},
    {{CTL_NET, NET_INET}, 2, {INET_IP, "ip", kNode, kReadOnly, {}}},
    {{CTL_NET, NET_INET}, 2, {INET_ICMP, "icmp", kNode, kReadOnly, {}}},
    {{CTL_NET, NET_INET}, 2, {INET_UDP, "udp", kNode, kReadOnly, {}}},
    {{CTL_NET, NET_INET}, 2, {INET_TCP, "tcp", kNode, kReadOnly, {}}},
    {{CTL_NET, NET_INET, INET_IP}, 3, {STATS, "stats", kString, kReadOnly, str_ops(get_ip_stats)}},
    {{CTL_NET, NET_INET, INET_ICMP}, 3, {STATS, "stats", kString, kReadOnly, str_ops(get_icmp_stats)}},
    {{CTL_NET, NET_INET, INET_UDP}, 3, {STATS, "stats", kString, kReadOnly, str_ops(get_udp_stats)}},
    {{CTL_NET, NET_INET, INET_TCP}, 3, {STATS, "stats", kString, kReadOnly, str_ops(get_tcp_stats)}},
    {{CTL_NET}, 1, {NET_INET6, "inet6", kNode, kReadOnly, {}}},
    {{CTL_NET, NET_INET6}, 2, {INET6_IP6, "ip6", kNode, kReadOnly, {}}},
    {{CTL_NET, NET_INET6}, 2, {INET6_ICMP6, "icmp6", kNode, kReadOnly, {}}},
    {{CTL_NET, NET_INET6, INET6_IP6}, 3, {STATS, "stats", kString, kReadOnly, str_ops(get_ip6_stats)}},
    {{CTL_NET, NET_INET6, INET6_ICMP6}, 3, {STATS, "stats", kString, kReadOnly, str_ops(get_icmp6_stats)}},
    {{CTL_NET}, 1, {NET_IPV4, "ipv4", kNode, kReadOnly, {}}},
    {{CTL_NET, NET_IPV4}, 2,
     {IPV4_PING_GROUP_RANGE, "ping_group_range", kString, kRootWrite, str_ops(get_ping_range, set_ping_range)}},
    {{CTL_NET, NET_IPV4}, 2,
     {IPV4_DEFAULT_TTL, "ip_default_ttl", kInt, kRootWrite, i_ops(get_default_ttl, set_default_ttl)}},
    {{CTL_NET, NET_IPV4}, 2, {IPV4_IPFRAG_TIME, "ipfrag_time", kInt, kRootWrite, i_ops(get_frag_time, set_frag_time)}},
    {{CTL_NET, NET_IPV4}, 2,
     {IPV4_IPFRAG_HIGH_THRESH, "ipfrag_high_thresh", kInt, kRootWrite, i_ops(get_frag_high, set_frag_high)}},
    {{CTL_NET, NET_IPV4}, 2, {IPV4_TCP_TW_REUSE, "tcp_tw_reuse", kInt, kRootWrite, i_ops(get_tw_reuse, set_tw_reuse)}},
    {{CTL_NET, NET_IPV4}, 2,
     {IPV4_IP_LOCAL_PORT_RANGE, "ip_local_port_range", kString, kRootWrite, str_ops(get_port_range, set_port_range)}},
    {{CTL_NET, NET_IPV4}, 2,
     {IPV4_TCP_INVALID_RATELIMIT, "tcp_invalid_ratelimit", kInt, kRootWrite,
      i_ops(get_invalid_ratelimit, set_invalid_ratelimit)}},
    {{CTL_NET}, 1, {NET_IPV6, "ipv6", kNode, kReadOnly, {}}},
    {{CTL_NET, NET_IPV6}, 2,
     {IPV6_IP6FRAG_TIME, "ip6frag_time", kInt, kRootWrite, i_ops(get_frag6_time, set_frag6_time)}},
};

Result<void> inet_init(Kernel& k) {
  auto* h = new (k.kmem()) InetHolder;
  if (!h) return err(ENOMEM);
  g_inet_holder.set(k, h);
  if (Sysctl* sc = k.services().sysctl()) {
    for (const InetNode& n : kInetNodes) {
      Result<SysctlNode*> r = sc->add(n.parent, n.plen, n.init);
      // "net" may exist already (another component's); a clashing leaf
      // is EEXIST too and leaves the first one in place.
      if (!r.ok() && r.error() != EEXIST) {
        inet_fini(k);
        return Error{r.error()};
      }
    }
  }
  return {};
}

void inet_fini(Kernel& k) {
  InetHolder* h = g_inet_holder.take(k);
  if (!h) return;
  InetState* st;
  {
    MutexLocker g(h->lock_);
    h->stopped_ = true;
    st = h->st_.exchange(nullptr, std::memory_order_acq_rel);
  }
  delete h;
  if (!st) return;
  // The callout queue goes before the last socket: no timer may outlive
  // this.
  st->reass_timer_.halt();
  st->addrconf_timer_.halt();
  tcp_abort_orphans(*st);
  tcp_time_wait_drop_all(*st);
  st->unref();
}

}  // namespace

InetState::InetState(Kernel& k) : kernel(k), pool(k.kmem()), tcp(IPPROTO_TCP, &k.kmem()) {
  uint32_t r = 0;
  size_t got = 0;
  rumpuser_getrandom(&r, sizeof r, 0, &got);
  ip_id_.store(r);
  rumpuser_getrandom(&tcp_cookie_secret, sizeof tcp_cookie_secret, 0, &got);
  rumpuser_getrandom(&tcp_isn_key, sizeof tcp_isn_key, 0, &got);
  reass_timer_.init(*k.services().callouts(), &ip_reass_timer, this);
  tcp_tw_timer_.init(*k.services().callouts(), &tcp_time_wait_timer, this);
  addrconf_timer_.init(*k.services().callouts(), &nd6_lifetime_timer, this);
}

InetState::~InetState() {
  reass_timer_.halt();
  addrconf_timer_.halt();
  tcp_time_wait_drop_all(*this);
  {
    MutexLocker g(reass_lock_);
    reass_.clear_and_dispose([](ReassQueue* q) {
      pkt_list_free(q->frags);
      delete q;
    });
    reass_bytes_ = 0;
  }
  // Interfaces: detach every one (lo last is not needed: nothing sends now).
  for (;;) {
    Ifnet* ifp = nullptr;
    {
      SharedLocker g(if_lock_);
      if (!ifs_.empty()) {
        ifp = &ifs_.front();
        ifp->ref();
      }
    }
    if (!ifp) break;
    if_detach(*this, *ifp);
    ifp->unref();
  }
  lo_ = nullptr;
  Locker<RwLock> g(rt_lock_);
  routes_.clear_and_dispose([](RouteEntry* e) { delete e; });
}

RefPtr<Ifnet> InetState::find_if(const char* name) const {
  SharedLocker g(if_lock_);
  for (const Ifnet& i : ifs_)
    if (std::strncmp(i.name, name, IFNAMSIZ) == 0) {
      i.ref();
      return adopt_ref(const_cast<Ifnet*>(&i));
    }
  return nullptr;
}

RefPtr<Ifnet> InetState::find_if(int index) const {
  SharedLocker g(if_lock_);
  for (const Ifnet& i : ifs_)
    if (i.index == index) {
      i.ref();
      return adopt_ref(const_cast<Ifnet*>(&i));
    }
  return nullptr;
}

Result<InetState*> inet_state(Kernel& k) {
  InetHolder* h = g_inet_holder.get(k);
  if (!h) return err(EAFNOSUPPORT);
  if (InetState* st = h->st_.load(std::memory_order_acquire)) return st;
  MutexLocker g(h->lock_);
  if (h->stopped_) return err(EAFNOSUPPORT);
  if (InetState* st = h->st_.load(std::memory_order_relaxed)) return st;
  InetState* st = TRY(make_state(k));
  h->st_.store(st, std::memory_order_release);
  return st;
}

InetState* inet_state_or_null(Kernel& k) {
  Result<InetState*> r = inet_state(k);
  return r.ok() ? *r : nullptr;
}

uint32_t InetState::pmtu_of(const IpAddr& dst) const {
  int64_t now = mono_now_ns();
  SpinLocker g(pmtu_lock_);
  for (const PmtuEntry& e : pmtu_)
    if (e.mtu && e.expire_ns > now && e.dst == dst) return e.mtu;
  return 0;
}

void InetState::pmtu_learn(const IpAddr& dst, uint32_t mtu) {
  int64_t now = mono_now_ns();
  SpinLocker g(pmtu_lock_);
  PmtuEntry* slot = nullptr;
  for (PmtuEntry& e : pmtu_)
    if (e.mtu && e.dst == dst) slot = &e;
  if (!slot) {
    slot = &pmtu_[pmtu_next_];
    pmtu_next_ = (pmtu_next_ + 1) % kPmtuEntries;
  }
  slot->dst = dst;
  slot->mtu = mtu;
  slot->expire_ns = now + kPmtuValidNs;
}

bool InetState::icmp_rate_ok() {
  constexpr int64_t kPerSec = 1000, kBurst = 50;
  int64_t now = mono_now_ns();
  SpinLocker g(icmp_rate_lock_);
  if (icmp_last_ns_ == 0) icmp_last_ns_ = now;
  int64_t add = (now - icmp_last_ns_) * kPerSec / kNsPerSec;
  if (add > 0) {
    icmp_tokens_ = icmp_tokens_ + add > kBurst ? kBurst : icmp_tokens_ + add;
    icmp_last_ns_ = now;
  }
  if (icmp_tokens_ <= 0) return false;
  icmp_tokens_--;
  return true;
}

void inet_register_proto(const InetProto* p) { protos().by_num[p->proto] = p; }
const InetProto* inet_find_proto(uint8_t proto) { return protos().by_num[proto]; }

}  // namespace rump
