// ip.h: what the inet transports (UDP, TCP, raw IP, ICMP sockets) share:
// address types, the IP output call, registration of a transport's input
// and error (ICMP) handlers by protocol number, and the table of inet
// protocol control blocks with Linux's bind and port rules.
//
// Who calls what: a transport registers an InetProto at load time
// (InetProtoRegistrar, like DomainRegistrar); IPv4 and IPv6 input hand it
// each packet addressed to one of our addresses with its header stripped,
// and ICMP hands it the errors about packets it sent. It sends with
// ip_output(), which picks the route and the interface, finishes a partial
// checksum, fragments, and consumes the packet.
//
// Byte order: InAddr/In6Addr hold network order (as on the wire and in
// sockaddr_in); ports in InPcb are host order.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/intrusive/list.hpp>
#include <cstdint>
#include <cstring>

#include "base/ref.h"
#include "base/result.h"
#include "net/inet/pkt.h"
#include "net/socket.h"
#include "sync/mutex.h"

namespace rump {

class Kernel;

// --- addresses

struct InAddr {
  uint32_t s = 0;  // network byte order
  static InAddr host(uint32_t h) { return InAddr{__builtin_bswap32(h)}; }
  uint32_t to_host() const { return __builtin_bswap32(s); }
  bool any() const { return s == 0; }
  bool loopback() const { return (to_host() >> 24) == 127; }
  bool multicast() const { return (to_host() >> 28) == 0xe; }
  bool limited_broadcast() const { return s == 0xffffffffu; }
  friend bool operator==(InAddr a, InAddr b) { return a.s == b.s; }
};

struct In6Addr {
  uint8_t b[16] = {};
  bool any() const {
    for (uint8_t x : b)
      if (x) return false;
    return true;
  }
  bool loopback() const {
    for (int i = 0; i < 15; i++)
      if (b[i]) return false;
    return b[15] == 1;
  }
  bool multicast() const { return b[0] == 0xff; }
  bool linklocal() const { return b[0] == 0xfe && (b[1] & 0xc0) == 0x80; }
  // Means something only together with an interface (RFC 4007; Linux's
  // __ipv6_addr_needs_scope_id): link-local unicast, and multicast of
  // interface- or link-local scope.
  bool needs_scope() const { return linklocal() || (multicast() && ((b[1] & 0x0f) == 1 || (b[1] & 0x0f) == 2)); }
  // ::ffff:a.b.c.d
  bool v4mapped() const {
    for (int i = 0; i < 10; i++)
      if (b[i]) return false;
    return b[10] == 0xff && b[11] == 0xff;
  }
  InAddr v4() const {
    InAddr a;
    std::memcpy(&a.s, b + 12, 4);
    return a;
  }
  static In6Addr mapped(InAddr a) {
    In6Addr r;
    r.b[10] = r.b[11] = 0xff;
    std::memcpy(r.b + 12, &a.s, 4);
    return r;
  }
  friend bool operator==(const In6Addr& a, const In6Addr& c) { return std::memcmp(a.b, c.b, 16) == 0; }
};

// An address of either family. family 0 is "unset".
struct IpAddr {
  uint8_t family = 0;  // 0, AF_INET or AF_INET6
  InAddr v4;
  In6Addr v6;
  static IpAddr of(InAddr a) {
    IpAddr r;
    r.family = AF_INET;
    r.v4 = a;
    return r;
  }
  static IpAddr of(const In6Addr& a) {
    IpAddr r;
    r.family = AF_INET6;
    r.v6 = a;
    return r;
  }
  bool any() const { return family == AF_INET ? v4.any() : family == AF_INET6 ? v6.any() : true; }
  bool multicast() const { return family == AF_INET ? v4.multicast() : family == AF_INET6 && v6.multicast(); }
  friend bool operator==(const IpAddr& a, const IpAddr& c) {
    if (a.family != c.family) return false;
    return a.family == AF_INET ? a.v4 == c.v4 : a.family == AF_INET6 ? a.v6 == c.v6 : true;
  }
};

// sockaddr_in / sockaddr_in6 <-> address + port (host order). A
// sockaddr_in6 holding a v4-mapped address stays AF_INET6 here; transports
// that serve both families decide what it means.
Result<void> sockaddr_to_ip(const SockAddr& a, IpAddr& ip, uint16_t& port);
void ip_to_sockaddr(const IpAddr& ip, uint16_t port, SockAddr& a);

// --- input and errors

// What IP input knows about a packet it hands to a transport. The packet
// given with it starts at the transport header (IP header and extension
// headers stripped, length trimmed to the IP payload).
struct IpHdrInfo {
  IpAddr src, dst;
  uint8_t proto = 0;
  uint8_t ttl = 0;   // hop limit for IPv6
  uint8_t tos = 0;   // traffic class for IPv6
  int ifindex = 0;   // the interface it arrived on
  uint32_t flags = 0;  // kPktBroadcast, kPktMulticast, kPktLoopback
};

// An ICMP error about a packet we sent, for its transport.
struct IpCtlMsg {
  int error = 0;         // ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EMSGSIZE, EPROTO ...
  uint8_t icmp_type = 0, icmp_code = 0;
  uint32_t mtu = 0;      // EMSGSIZE: the next-hop MTU
  IpAddr src, dst;       // of the packet we sent: our address, the peer's
  uint8_t proto = 0;
  const uint8_t* l4 = nullptr;  // the start of its transport header as quoted
  size_t l4len = 0;             // at least 8 bytes
};

struct InetProto {
  uint8_t proto;  // IPPROTO_UDP, IPPROTO_TCP ...
  // Consumes p.
  void (*input)(Kernel& k, Pkt* p, const IpHdrInfo& ip);
  // May be null.
  void (*ctlinput)(Kernel& k, const IpCtlMsg& m);
};
// Registration happens at load time; the table is read-only afterwards.
void inet_register_proto(const InetProto* p);
const InetProto* inet_find_proto(uint8_t proto);
struct InetProtoRegistrar {
  explicit InetProtoRegistrar(const InetProto* p) { inet_register_proto(p); }
};

// --- sockets: the AF_INET and AF_INET6 domains (net/inet/in_proto.cc)
// take their protocols from registrations at load time: each transport
// registers its Protosw (type, protocol number: -1 for "any nonzero", as
// raw IP) for the families it serves. by_number_only: never the default
// of its type for protocol 0 (ping sockets: SOCK_DGRAM is UDP).
void inet_register_protosw(int family, const Protosw& p, bool by_number_only = false);
struct InetProtoswRegistrar {
  InetProtoswRegistrar(int family, const Protosw& p, bool by_number_only = false) {
    inet_register_protosw(family, p, by_number_only);
  }
};
// Checks a socket address from user space for an inet socket (the
// domain's check_addr): copies what fits, keeps the length.
Result<void> inet_check_addr(const void* raw, socklen_t len, SockAddr& a);

// --- output

struct IpOutOpts {
  int ttl = -1;       // -1: the default (64)
  uint8_t tos = 0;
  bool df = false;    // don't fragment: EMSGSIZE when larger than the path MTU
  bool broadcast = false;  // may go to a broadcast address (SO_BROADCAST)
  int oif = 0;        // force this interface (0: route)
};

// Sends p (the transport header and payload) from src to dst. src may be
// unset/any: the output interface's address is used. Consumes p. Errors:
// ENETUNREACH (no route), EACCES (broadcast without opts.broadcast),
// EMSGSIZE (df and too big), ENOBUFS, EHOSTUNREACH.
Result<void> ip_output(Kernel& k, Pkt* p, const IpAddr& src, const IpAddr& dst, uint8_t proto,
                       const IpOutOpts& opts);
// The source address to use towards dst: ENETUNREACH when there is no
// route, EADDRNOTAVAIL when the interface has no address of that family.
// oif: the interface a link-scope IPv6 destination goes through (its
// scope id; 0: the route's).
Result<IpAddr> ip_select_source(Kernel& k, const IpAddr& dst, int oif = 0);
// The MTU towards dst (route's interface MTU, lowered by path-MTU
// discovery); 0 if unreachable. tso_max (if given): the interface's
// Ifnet::tso_max when path-MTU discovery has not lowered its MTU, else 0.
uint32_t ip_path_mtu(Kernel& k, const IpAddr& dst, uint32_t* tso_max = nullptr);
// Is a one of this kernel's own addresses (unicast, of an interface that
// exists)?
bool ip_is_local(Kernel& k, const IpAddr& a);
// Is a a broadcast address (255.255.255.255 or an interface's subnet
// broadcast)?
bool ip_is_broadcast(Kernel& k, const IpAddr& a);
// ICMP errors a transport generates about a packet it received (port
// unreachable ...): p is the packet as the transport got it (starting at
// its header), ip its header info. Consumes p.
void ip_send_unreach(Kernel& k, Pkt* p, const IpHdrInfo& ip, int code);

// --- protocol control blocks

// The part of a transport's control block that names its endpoints. It is
// embedded in the transport's own block and linked into that transport's
// InPcbTable while bound; the fields below are written only under the
// table's lock and read under it (InPcbTable::ends gives a snapshot).
struct InPcb {
  explicit InPcb(Socket& s, int fam) : so(&s), family(static_cast<uint8_t>(fam)) {}
  // A binding without a socket (InPcbRecord).
  explicit InPcb(int fam) : so(nullptr), family(static_cast<uint8_t>(fam)) {}
  Socket* so;             // null: an InPcbRecord
  uint8_t family;         // the socket's: AF_INET or AF_INET6
  bool v6only = false;    // IPV6_V6ONLY
  bool reuseaddr = false;  // set by the transport from SO_REUSEADDR before bind
  bool reuseport = false;
  bool listening = false;  // TCP LISTEN (SO_REUSEADDR does not share with it)
  bool bound = false;      // in the table
  bool connected = false;  // faddr/fport set
  bool laddr_from_connect = false;  // laddr was picked by connect, not bind
  uid_t uid = 0;           // the binder's (SO_REUSEPORT groups by user)
  IpAddr laddr, faddr;     // laddr family 0 or any: wildcard
  uint16_t lport = 0, fport = 0;
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> port_hook;
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> conn_hook;
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> acc_hook;
};

// A binding that outlives its socket: TCP's compact TIME_WAIT record
// (net/inet/tcp_timewait.h) is one. InPcbTable::replace puts it in the
// place of a socket's pcb: from then on the table owns it (it answers
// segments for its 4-tuple through lookup's visitor and holds its port
// for bind as an accepted connection does) until it expires, a visitor
// removes it, or the table goes; each way it is deleted through the
// virtual destructor. Its fields are the table's (written under its
// lock).
struct InPcbRecord : public InPcb {
  explicit InPcbRecord(int fam) : InPcb(fam) {}
  virtual ~InPcbRecord() = default;
  int64_t expire_ns = 0;  // monotonic
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> expire_hook;
};

// What a record does with the packet lookup found it for (the visitor
// decides under the table's lock, and may move expire_ns later).
enum class InPcbVerdict : uint8_t {
  kKeep,            // the packet was the record's
  kRemove,          // the record goes (deleted); the packet was its
  kRemoveAndPass,   // the packet goes on to a wildcard match (a listener), and the record
                    // goes; without a match the record stays and the packet was its
};
using InPcbVisitor = InPcbVerdict (*)(void* arg, InPcbRecord& r);
// May a connect take over record r, which holds the 4-tuple it asks for
// (Linux's twsk_unique)? searched: the local port came from the ephemeral
// search, not from bind. Called under the table's lock; true: r goes
// (deleted) and the connect goes on.
using InPcbTakeover = bool (*)(void* arg, InPcbRecord& r, bool searched);

// A consistent copy of a pcb's endpoints (InPcbTable::ends).
struct InPcbEnds {
  IpAddr laddr, faddr;
  uint16_t lport = 0, fport = 0;
  bool bound = false, connected = false, v6only = false;
};

// One transport's PCBs (UDP's, TCP's, raw's), hashed by local port.
class InPcbTable {
 public:
  // The ephemeral range, Linux's default (net.ipv4.ip_local_port_range,
  // set_port_range).
  static constexpr uint16_t kPortLow = 32768, kPortHigh = 60999;

  // km: where the connection hash grows (without one it keeps its first
  // size).
  explicit InPcbTable(uint8_t proto, Kmem* km = nullptr) : proto_(proto), km_(km) {}
  uint8_t proto() const { return proto_; }
  ~InPcbTable();
  InPcbTable(const InPcbTable&) = delete;
  InPcbTable& operator=(const InPcbTable&) = delete;

  // Binds pcb to laddr:lport (laddr family 0 or any: wildcard; lport 0: an
  // ephemeral port). The caller checked that laddr is local and that a
  // port below 1024 is allowed. EINVAL if already bound, EADDRINUSE on a
  // conflict (Linux's rules: SO_REUSEADDR on both and neither listening,
  // or SO_REUSEPORT on both by the same user), EAGAIN when no ephemeral
  // port is free.
  Result<void> bind(InPcb& pcb, const IpAddr& laddr, uint16_t lport);
  // Sets the foreign end. An unbound pcb is bound first to laddr (the
  // source chosen for faddr) and an ephemeral port. unique: the 4-tuple
  // must be free (TCP): EADDRNOTAVAIL when it is not, unless a record
  // holds it and takeover(arg, record, searched) lets it go. The
  // ephemeral search takes a port held by records only when no port is
  // free: one whose records are all for other 4-tuples or let go.
  Result<void> connect(InPcb& pcb, const IpAddr& laddr, const IpAddr& faddr, uint16_t fport, bool unique,
                       InPcbTakeover takeover = nullptr, void* arg = nullptr);
  // The ephemeral range (lo <= hi, both nonzero).
  void set_port_range(uint16_t lo, uint16_t hi);
  void port_range(uint16_t* lo, uint16_t* hi) const;
  // Enters a connection a listener accepted (TCP): bound to laddr:lport
  // and connected to faddr:fport at once, with no conflict check (it
  // shares the listener's port by definition). The 4-tuple is free: a
  // segment for it reached the listener, not a connected pcb. It holds the
  // port as long as it lives (TIME_WAIT included): a later bind of the port
  // without SO_REUSEADDR on both is EADDRINUSE, as on Linux.
  void attach_accepted(InPcb& pcb, const IpAddr& laddr, uint16_t lport, const IpAddr& faddr, uint16_t fport);
  // Clears the foreign end (UDP connect to AF_UNSPEC); a local address
  // that connect chose goes back to the wildcard.
  void disconnect(InPcb& pcb);
  // Takes pcb out of the table (last close).
  void remove(InPcb& pcb);
  // Marks a bound pcb listening, re-checking SO_REUSEADDR sharers (TCP
  // listen): EADDRINUSE.
  Result<void> set_listening(InPcb& pcb, bool on);

  // The best match for a packet from faddr:fport to laddr:lport: an exact
  // connected match first, then a bound one with the most specific local
  // address (SO_REUSEPORT groups pick one member by the 4-tuple's hash).
  // wildcard false: connected matches only. Returns the socket,
  // referenced, or null.
  // An exact match that is an InPcbRecord is given to visit(arg, record)
  // under the table's lock when visit is set (else it is no match): its
  // verdict says whether the lookup ends there (null returned, *visited
  // set) or goes on to the wildcard matches (kRemoveAndPass: the record
  // goes only if one is found; else it stays and *visited is set).
  RefPtr<Socket> lookup(const IpAddr& faddr, uint16_t fport, const IpAddr& laddr, uint16_t lport,
                        bool wildcard = true, InPcbVisitor visit = nullptr, void* arg = nullptr,
                        bool* visited = nullptr);
  // Puts rec in the place of live (a connected pcb whose socket goes): rec
  // takes live's endpoints, sharing options and family, is bound and
  // connected in the table, and stays until rec.expire_ns (the list by
  // expiry is kept in order); live leaves the table. False (nothing
  // changed) when the table cannot hold it (out of memory for the port
  // lists). *first: rec expires first of all records now (the caller's
  // timer must be armed for it).
  bool replace(InPcb& live, InPcbRecord& rec, bool* first);
  // Unlinks and returns a record whose time came (expire_ns <= now), or
  // null; *next: the earliest expiry left (INT64_MAX: none).
  InPcbRecord* take_expired(int64_t now, int64_t* next);
  // Unlinks and returns any record (halt), or null.
  InPcbRecord* take_record();
  // Calls fn(Socket&) for every socket that a broadcast or multicast
  // packet to laddr:lport from faddr:fport reaches (each referenced
  // during the call; the table lock is not held).
  template <class Fn>
  void for_each_match(const IpAddr& faddr, uint16_t fport, const IpAddr& laddr, uint16_t lport, Fn fn);
  // PCBs in the table.
  size_t count() const;
  // The endpoints as one snapshot (senders and getsockname read them while
  // another thread of the socket may bind or connect).
  InPcbEnds ends(const InPcb& pcb) const;
  // Sets the sharing options (from SO_REUSEADDR/SO_REUSEPORT) and owner
  // that bind compares.
  void set_sharing(InPcb& pcb, bool reuseaddr, bool reuseport, uid_t uid);
  // IPV6_V6ONLY: EINVAL once bound.
  Result<void> set_v6only(InPcb& pcb, bool on);

 private:
  static constexpr int kBuckets = 64;
  static constexpr int kConnBuckets = 64;
  using List = boost::intrusive::list<InPcb, boost::intrusive::member_hook<InPcb, decltype(InPcb::port_hook),
                                                                             &InPcb::port_hook>,
                                      boost::intrusive::constant_time_size<false>>;
  using ConnList = boost::intrusive::list<InPcb, boost::intrusive::member_hook<InPcb, decltype(InPcb::conn_hook),
                                                                                 &InPcb::conn_hook>,
                                          boost::intrusive::constant_time_size<false>>;
  using AccList = boost::intrusive::list<InPcb, boost::intrusive::member_hook<InPcb, decltype(InPcb::acc_hook),
                                                                                &InPcb::acc_hook>,
                                         boost::intrusive::constant_time_size<false>>;
  using ExpireList = boost::intrusive::list<
      InPcbRecord, boost::intrusive::member_hook<InPcbRecord, decltype(InPcbRecord::expire_hook),
                                                 &InPcbRecord::expire_hook>,
      boost::intrusive::constant_time_size<true>>;
  static constexpr int kAccBuckets = 1024;
  static constexpr int kAccPortWords = 65536 / 64;
  static int bucket(uint16_t port) { return port & (kBuckets - 1); }
  size_t conn_bucket(uint16_t lport, const IpAddr& faddr, uint16_t fport) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  ConnList& conn_list(const InPcb& pcb) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    return conns_[conn_bucket(pcb.lport, pcb.faddr, pcb.fport)];
  }
  void link_conn_locked(InPcb& pcb) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void unlink_record_locked(InPcbRecord& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Makes acc_ if it is not there yet: false when out of memory.
  bool ensure_acc_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void link_acc_locked(InPcb& pcb) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // May acc_ hold a pcb on lport? (false: surely not)
  bool acc_may_hold_locked(uint16_t lport) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void insert_expiring_locked(InPcbRecord& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void unlink_conn_locked(InPcb& pcb) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Doubles the connection hash (times 4) when it holds more than two
  // pcbs a bucket.
  void grow_conns_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  bool conflicts_locked(const InPcb& pcb, const IpAddr& laddr, uint16_t lport) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // The connected pcb (or record) on the 4-tuple, or null.
  InPcb* tuple_holder_locked(const IpAddr& laddr, uint16_t lport, const IpAddr& faddr, uint16_t fport)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // The foreign end a connect's ephemeral search is for, and who says
  // whether a record on it may go.
  struct ConnectTo {
    const IpAddr* faddr;
    uint16_t fport;
    InPcbTakeover takeover;
    void* arg;
  };
  Result<uint16_t> pick_port_locked(const InPcb& pcb, const IpAddr& laddr, const ConnectTo* to = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // May a connect to `to` share lport with the pcbs on it? Only records
  // hold it (none bound by bind, no live connection that conflicts), each
  // for another 4-tuple or one the takeover lets go.
  bool shareable_locked(const InPcb& pcb, const IpAddr& laddr, uint16_t lport, const ConnectTo& to)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Is laddr:lport -> to free for a connect: no pcb on it, or a record the
  // takeover lets go?
  bool tuple_free_locked(const IpAddr& laddr, uint16_t lport, const ConnectTo& to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // lookup's second step: the best bound, unconnected socket for the packet.
  RefPtr<Socket> wildcard_locked(const IpAddr& faddr, uint16_t fport, const IpAddr& laddr, uint16_t lport)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Collects up to n matching sockets, referenced.
  size_t collect(const IpAddr& faddr, uint16_t fport, const IpAddr& laddr, uint16_t lport, Socket** out, size_t n);

  uint8_t proto_;
  Kmem* km_;
  mutable Mutex lock_{LockRank::kNone};
  // Every bound pcb by local port (bind conflicts, wildcard lookups),
  // except accepted connections, which share their listener's port and
  // would make its bucket long, and records: they are in acc_ (by local
  // port, for bind conflicts only; kAccBuckets lists made at the first
  // one). Connected
  // pcbs also by 4-tuple, in nconn_ buckets (conns_fixed_ until the hash
  // grows).
  List ports_[kBuckets] ABSL_GUARDED_BY(lock_);
  ConnList conns_fixed_[kConnBuckets] ABSL_GUARDED_BY(lock_);
  ConnList* conns_ ABSL_GUARDED_BY(lock_) = conns_fixed_;
  size_t nconn_ ABSL_GUARDED_BY(lock_) = kConnBuckets;
  size_t nconnected_ ABSL_GUARDED_BY(lock_) = 0;
  AccList* acc_ ABSL_GUARDED_BY(lock_) = nullptr;
  // A bit per port that acc_ may hold (set on insertion, cleared by a
  // conflict check that finds none), in acc_'s block.
  mutable uint64_t* acc_ports_ ABSL_GUARDED_BY(lock_) = nullptr;
  // Records (in the hash and acc_ too), by expiry, earliest first.
  ExpireList expiring_ ABSL_GUARDED_BY(lock_);
  size_t count_ ABSL_GUARDED_BY(lock_) = 0;
  uint32_t next_port_ ABSL_GUARDED_BY(lock_) = 0;
  uint16_t port_lo_ ABSL_GUARDED_BY(lock_) = kPortLow;
  uint16_t port_hi_ ABSL_GUARDED_BY(lock_) = kPortHigh;
};

template <class Fn>
void InPcbTable::for_each_match(const IpAddr& faddr, uint16_t fport, const IpAddr& laddr, uint16_t lport, Fn fn) {
  Socket* socks[32];
  size_t n = collect(faddr, fport, laddr, lport, socks, 32);
  for (size_t i = 0; i < n; i++) {
    fn(*socks[i]);
    socks[i]->unref();
  }
}

// Does a pcb bound to la (family of the pcb: fam, v6only) accept a packet
// to a? (wildcards and v4-mapped addresses included)
bool inpcb_laddr_matches(const InPcb& pcb, const IpAddr& a);

}  // namespace rump
