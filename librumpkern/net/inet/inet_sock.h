// inet_sock.h: what the datagram transports of net/inet (UDP, raw IP,
// ICMP ping sockets) share as sockets: their control block (an InPcb in
// one InPcbTable, the inet state it holds a reference on, the IP-level
// options) and the Protosw hooks that are the same for all of them
// (bind, names, IP options, teardown). Only net/inet code uses it.
#pragma once

#include <poll.h>

#include "net/inet/if.h"
#include "net/inet/ip.h"
#include "net/socket.h"

namespace rump {

struct InetCb : public KObject {
  InetCb(Socket& so, int family, InetState& s, InPcbTable& t) : pcb(so, family), st(&s), table(&t) {}
  InPcb pcb;
  InetState* st;      // referenced
  InPcbTable* table;  // the transport's
  // IP options; read by the socket's senders, written by setsockopt.
  std::atomic<int> ttl{-1};  // IP_TTL (-1: the default)
  std::atomic<int> tos{0};
  std::atomic<bool> hdrincl{false};  // IP_HDRINCL (raw)
  std::atomic<bool> recverr{false};
  // The interface a bind or connect with a scope id tied the socket to,
  // for its link-scope destinations (Linux's sk_bound_dev_if, which also
  // narrows other routes; 0: none).
  std::atomic<int> bound_if{0};
  // IPV6_CHECKSUM of an IPv6 raw socket (RFC 3542 3.1): where in the
  // payload the stack puts the checksum it computes on sending and checks
  // on receiving; -1: none. ICMPv6 sockets have 2, fixed.
  std::atomic<int> v6_csum{-1};
  // ICMP6_FILTER of an ICMPv6 raw socket: a set bit blocks that type.
  std::atomic<uint32_t> icmp6_filter[8] = {};
};

inline InetCb& inet_cb(Socket& so) { return *static_cast<InetCb*>(so.pcb_); }

// Makes the control block in the transport table of so's protocol.
// EAFNOSUPPORT when the inet component is not running.
Result<void> inet_sock_attach(Socket& so, int family);
void inet_sock_detach(Socket& so);
void inet_sock_free_pcb(Socket& so);
Result<void> inet_sock_bind(Lwp& l, Socket& so, const SockAddr& a);
void inet_sock_sockname(Socket& so, SockAddr& a);
Result<void> inet_sock_peername(Socket& so, SockAddr& a);
Result<void> inet_sock_ctloutput(Lwp& l, Socket& so, SockOptArg& o);
// A destination from connect/sendto, checked against the socket's family
// (v4-mapped IPv6 addresses become IPv4).
Result<void> inet_sock_dest(Socket& so, const SockAddr& a, IpAddr& dst, uint16_t& port);
// Scope ids (RFC 4007) as Linux applies them to an IPv6 address that
// needs one (In6Addr::needs_scope); every function gives 0 for other
// addresses.
//
// sendto: the interface the datagram goes through: the address's scope
// id, else the socket's bound interface, else 0 (the route's). strict
// (ping sockets, Linux's ping_v6_sendmsg): without either EINVAL, and a
// scope id other than the bound interface EINVAL.
Result<int> inet_sock_send_scope(Socket& so, const SockAddr* a, const IpAddr& dst, bool strict);
// connect (datagram and TCP sockets): the address's scope id (EINVAL if
// the socket is bound to another interface, ENETUNREACH if there is no
// such interface), else the bound interface, else EINVAL: Linux wants an
// interface even when only one could carry it. The caller ties the
// socket to it (bound_if).
Result<int> inet_sock_connect_scope(Socket& so, const SockAddr& a, const IpAddr& dst);
// The sin6_scope_id that goes with address a in the socket's names
// (getsockname, getpeername, accept): its bound interface (Linux's
// ipv6_iface_scope_id of sk_bound_dev_if).
uint32_t inet_sock_name_scope(Socket& so, const IpAddr& a);
// The interface other than lo that holds address a (0: none).
int inet_addr_owner(InetState& st, const IpAddr& a);
// The interface a packet from src (ours) to dst goes through: bound if
// set, else the one holding src when dst needs a scope (a listener's
// replies to link-local peers, resets), else 0 (the route's).
int inet_scope_oif(InetState& st, const IpAddr& src, const IpAddr& dst, int bound);
// The sin6_scope_id of a received packet's source: the interface it came
// in on, or for traffic to ourselves (over lo) the one holding its
// destination, as Linux's inet6_iif.
uint32_t inet_recv_scope(InetState& st, const IpHdrInfo& ip);
// Copies SO_REUSEADDR, SO_REUSEPORT and the owner into the pcb (before a
// bind).
void inet_sock_sync_opts(Socket& so);
// Before a datagram send: a pending error (taken and cleared) or EPIPE
// after shutdown for writing.
Result<void> inet_sock_send_check(Socket& so);
IpOutOpts inet_sock_out_opts(Socket& so);
// Binds an unbound socket to the wildcard and an ephemeral port (a send
// or listen before bind) and returns its endpoints.
Result<InPcbEnds> inet_sock_autobind(Socket& so);

// --- datagram sockets (UDP, raw, ping)
// connect: a peer (AF_UNSPEC dissolves it); the port is ignored for raw
// and ping sockets.
Result<void> inet_dgram_connect(Lwp& l, Socket& so, const SockAddr& a, bool nonblock);
Result<void> inet_dgram_shutdown(Socket& so, int how);
// The destination of a datagram send: m.to checked, or the connected
// peer (EDESTADDRREQ without one).
Result<void> inet_dgram_dest(Socket& so, const SockMsg& m, IpAddr& dst, uint16_t& port);
short inet_dgram_poll_locked(Socket& so) ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_);
// Records carry their sender's address after the data, where
// source_name finds it.
void inet_dgram_source_name(SockRecord& r, SockAddr& a);
// Queues a copy of bytes [off, end) of p on so as one record from
// ip.src:sport. False when the socket's buffer is full (or it is shut for
// reading, or out of memory).
// ip: the packet's addresses and interface (the source's scope id).
bool inet_dgram_deliver(InetState& st, Socket& so, const Pkt& p, size_t off, const IpHdrInfo& ip, uint16_t sport);
// The same for a packet the caller owns (own == &p): a large payload in
// one piece is not copied, the record takes the packet over (own becomes
// null; on failure too, once taken: the record frees it).
bool inet_dgram_deliver_pkt(InetState& st, Socket& so, const Pkt& p, size_t off, const IpHdrInfo& ip, uint16_t sport,
                            Pkt*& own);

}  // namespace rump
