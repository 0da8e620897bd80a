// Differential scenarios of IPv6 scope ids (RFC 4007) against the host
// kernel: two Ethernet interfaces without a carrier (net_diff.h's
// make_ether) holding fe80::1 and fe80::2, in a network namespace of the
// host run's own (root; else skipped) and in a fresh rump kernel.
//
// Covered, per call and socket type, as Linux decides them: which
// link-local destinations need an interface (connect on UDP, raw, ping and
// TCP sockets and sendto on ping sockets: EINVAL without one; sendto on
// UDP and raw sockets: the route's), a scope id that names no interface
// (ENETUNREACH; ENODEV for bind), one that contradicts the bound interface,
// bind's order of checks, and the scope ids reported by getsockname,
// getpeername, recvfrom and accept for traffic between our own link-local
// addresses.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>

#include <string>

#include "net_diff.h"
#include "netlink/nl_scenario.h"
#include "sockaddr6.h"

using namespace net_test;
using namespace nl_test;

namespace {

template <class S>
int if_index(const char* name) {
  int s = static_cast<int>(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
  ifreq ifr{};
  std::strcpy(ifr.ifr_name, name);
  int r = static_cast<int>(SYS(ioctl, s, SIOCGIFINDEX, &ifr));
  SYS(close, s);
  return r == 0 ? ifr.ifr_ifindex : -1;
}

// A link-local address without duplicate detection (the host's would
// stay tentative on a link without a carrier).
template <class S>
int add_ll(Nl<S>& nl, const char* a, int index) {
  Req r(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg* i = r.fixed<ifaddrmsg>();
  i->ifa_family = AF_INET6;
  i->ifa_prefixlen = 64;
  i->ifa_flags = IFA_F_NODAD;
  i->ifa_index = static_cast<uint32_t>(index);
  r.in6(IFA_LOCAL, a);
  return nl.call(r);
}

struct Ifs {
  int i0, i1, lo;
  // A scope id as the name of its interface, comparable across kernels.
  std::string name(uint32_t id) const {
    if (id == 0) return "0";
    if (static_cast<int>(id) == i0) return "shmif0";
    if (static_cast<int>(id) == i1) return "shmif1";
    if (static_cast<int>(id) == lo) return "lo";
    return "other";
  }
};

sockaddr_in6 ll(const char* a, uint16_t port, int scope) {
  sockaddr_in6 s = in6(a, port);
  s.sin6_scope_id = static_cast<uint32_t>(scope);
  return s;
}

std::string text(const sockaddr_in6& a) {
  char b[64];
  inet_ntop(AF_INET6, &a.sin6_addr, b, sizeof b);
  return b;
}

// Logs a socket's name (or its peer's) with the scope id by interface.
template <class S>
void log_name(Log& L, int line, int fd, bool peer, const Ifs& ifs) {
  sockaddr_in6 a{};
  socklen_t n = sizeof a;
  long r = peer ? SYS(getpeername, fd, reinterpret_cast<sockaddr*>(&a), &n)
                : SYS(getsockname, fd, reinterpret_cast<sockaddr*>(&a), &n);
  if (r < 0) L.add(line, "%s = -1 errno %d", peer ? "peer" : "name", errno);
  else L.add(line, "%s %s port %d scope %s", peer ? "peer" : "name", text(a).c_str(), a.sin6_port != 0,
             ifs.name(a.sin6_scope_id).c_str());
}
#define NAME(fd) log_name<S>(L, __LINE__, fd, false, ifs)
#define PEER(fd) log_name<S>(L, __LINE__, fd, true, ifs)

template <class S>
void sc_scope(Log& L, const Env&) {
  if (!enter_netns<S>(L)) return;
  R(make_ether<S>("shmif0"));
  R(make_ether<S>("shmif1"));
  R(if_up<S>("lo"));
  R(if_up<S>("shmif0"));
  R(if_up<S>("shmif1"));
  Ifs ifs{if_index<S>("shmif0"), if_index<S>("shmif1"), if_index<S>("lo")};
  V("indexes %d %d", ifs.i0 > 0, ifs.i1 > 0);
  Nl<S> nl;
  R(nl.open());
  R(add_ll(nl, "fe80::1", ifs.i0));
  R(add_ll(nl, "fe80::2", ifs.i1));
  nl.close();
  const int kNone = 999;
  const char* far = "fe80::99";

  // UDP sendto: a scope id picks the interface, else the route's; one
  // that names nothing is ENETUNREACH.
  int u = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 d = ll(far, 9, 0);
  R(SYS(sendto, u, "x", 1, 0, sa6(d), sizeof d));
  d = ll(far, 9, kNone);
  R(SYS(sendto, u, "x", 1, 0, sa6(d), sizeof d));
  d = ll(far, 9, ifs.i1);
  R(SYS(sendto, u, "x", 1, 0, sa6(d), sizeof d));
  d = ll("ff02::1", 9, 0);
  R(SYS(sendto, u, "x", 1, 0, sa6(d), sizeof d));
  SYS(close, u);
  // lo has no link-scope route: ENETUNREACH through it, even to our own
  // address, for sendto, connect and TCP.
  u = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
  d = ll("fe80::1", 9, ifs.lo);
  R(SYS(sendto, u, "x", 1, 0, sa6(d), sizeof d));
  d = ll("ff02::1", 9, ifs.lo);
  R(SYS(sendto, u, "x", 1, 0, sa6(d), sizeof d));
  d = ll("fe80::1", 9, ifs.lo);
  R(SYS(connect, u, sa6(d), sizeof d));
  SYS(close, u);
  {
    int t = F(SYS(socket, AF_INET6, SOCK_STREAM, 0));
    d = ll("fe80::1", 9, ifs.lo);
    R(SYS(connect, t, sa6(d), sizeof d));
    SYS(close, t);
  }

  // UDP connect wants an interface and ties the socket to it.
  u = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
  d = ll(far, 9, 0);
  R(SYS(connect, u, sa6(d), sizeof d));
  d = ll(far, 9, kNone);
  R(SYS(connect, u, sa6(d), sizeof d));
  SYS(close, u);
  u = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
  d = ll(far, 9, ifs.i0);
  R(SYS(connect, u, sa6(d), sizeof d));
  PEER(u);
  d = ll(far, 9, ifs.i1);
  R(SYS(connect, u, sa6(d), sizeof d));
  // sendto overrides it with a scope id of its own.
  R(SYS(sendto, u, "x", 1, 0, sa6(d), sizeof d));
  d = ll(far, 9, 0);
  R(SYS(connect, u, sa6(d), sizeof d));
  SYS(close, u);

  // bind: the scope id (else the bound interface) must exist and hold a
  // unicast address; EINVAL comes before EADDRNOTAVAIL.
  for (int scope : {0, kNone, ifs.i1, ifs.i0}) {
    int b = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
    sockaddr_in6 me = ll("fe80::1", 0, scope);
    R(SYS(bind, b, sa6(me), sizeof me));
    if (scope == ifs.i0) {
      NAME(b);
      // Bound to shmif0: an unscoped destination goes there, connect with
      // another scope id is EINVAL, sendto with one is not.
      d = ll(far, 9, 0);
      R(SYS(sendto, b, "x", 1, 0, sa6(d), sizeof d));
      d = ll(far, 9, ifs.i1);
      R(SYS(sendto, b, "x", 1, 0, sa6(d), sizeof d));
      R(SYS(connect, b, sa6(d), sizeof d));
      d = ll(far, 9, 0);
      R(SYS(connect, b, sa6(d), sizeof d));
      PEER(b);
    }
    SYS(close, b);
  }
  for (int scope : {0, ifs.i0}) {
    int b = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
    sockaddr_in6 other = ll("fe80::1234", 0, scope);
    R(SYS(bind, b, sa6(other), sizeof other));
    SYS(close, b);
  }

  // TCP: multicast is unreachable, a link-local peer needs an interface.
  for (int scope : {0, kNone}) {
    int t = F(SYS(socket, AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0));
    d = ll(far, 9, scope);
    R(SYS(connect, t, sa6(d), sizeof d));
    SYS(close, t);
  }
  {
    int t = F(SYS(socket, AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0));
    d = ll("ff02::1", 9, ifs.i0);
    R(SYS(connect, t, sa6(d), sizeof d));
    SYS(close, t);
    t = F(SYS(socket, AF_INET6, SOCK_STREAM, 0));
    sockaddr_in6 me = ll("fe80::1", 0, 0);
    R(SYS(bind, t, sa6(me), sizeof me));
    SYS(close, t);
  }

  // Raw ICMPv6: sendto as UDP, connect wants an interface.
  uint8_t echo[8] = {ICMP6_ECHO_REQUEST, 0, 0, 0, 0, 1, 0, 1};
  int r = F(SYS(socket, AF_INET6, SOCK_RAW, IPPROTO_ICMPV6));
  d = ll("fe80::98", 0, 0);
  R(SYS(sendto, r, echo, sizeof echo, 0, sa6(d), sizeof d));
  d = ll("fe80::98", 0, kNone);
  R(SYS(sendto, r, echo, sizeof echo, 0, sa6(d), sizeof d));
  d = ll("fe80::98", 0, 0);
  R(SYS(connect, r, sa6(d), sizeof d));
  for (int scope : {0, kNone, ifs.i0}) {
    int b = F(SYS(socket, AF_INET6, SOCK_RAW, IPPROTO_ICMPV6));
    sockaddr_in6 other = ll("fe80::1234", 0, scope);
    R(SYS(bind, b, sa6(other), sizeof other));
    SYS(close, b);
  }
  SYS(close, r);

  // Ping sockets want an interface for sendto too; bind wants the scope
  // id in the address.
  if (allow_ping<S>(L)) {
    int p = F(SYS(socket, AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6));
    d = ll("fe80::98", 0, 0);
    R(SYS(sendto, p, echo, sizeof echo, 0, sa6(d), sizeof d));
    d = ll("fe80::98", 0, kNone);
    R(SYS(sendto, p, echo, sizeof echo, 0, sa6(d), sizeof d));
    d = ll("fe80::98", 0, ifs.i1);
    R(SYS(sendto, p, echo, sizeof echo, 0, sa6(d), sizeof d));
    d = ll("fe80::98", 0, 0);
    R(SYS(connect, p, sa6(d), sizeof d));
    SYS(close, p);
    for (const char* a : {"fe80::1", "fe80::1234"})
      for (int scope : {0, kNone, ifs.i0}) {
        int b = F(SYS(socket, AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6));
        sockaddr_in6 me = ll(a, 0, scope);
        R(SYS(bind, b, sa6(me), sizeof me));
        SYS(close, b);
      }
  }

  // Traffic to our own link-local addresses: recvfrom reports the scope
  // of the interface holding them (the packets pass through lo).
  int rs = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 any = in6("::", 5555);
  R(SYS(bind, rs, sa6(any), sizeof any));
  int ss = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
  // The host delivers over lo a moment later: wait for it. Its first
  // datagrams to a link-local address of an interface without a carrier
  // can be lost (not logged): one goes first until one arrives.
  pollfd pf{rs, POLLIN, 0};
  for (int i = 0; i < 5; i++) {
    d = ll("fe80::2", 5555, ifs.i1);
    SYS(sendto, ss, "w", 1, 0, sa6(d), sizeof d);
    if (SYS(poll, &pf, 1, 1000) == 1) {
      char w[8];
      SYS(recv, rs, w, sizeof w, 0);
      break;
    }
  }
  for (int scope : {ifs.i1, 0}) {
    d = ll("fe80::2", 5555, scope);
    R(SYS(sendto, ss, "hi", 2, 0, sa6(d), sizeof d));
    R(SYS(poll, &pf, 1, 5000));
    char buf[8];
    sockaddr_in6 from{};
    socklen_t fl = sizeof from;
    R(SYS(recvfrom, rs, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fl));
    V("from %s len %u scope %s", text(from).c_str(), fl, ifs.name(from.sin6_scope_id).c_str());
  }
  SYS(close, rs);
  SYS(close, ss);

  // TCP between our own link-local addresses: the names of both ends and
  // accept's peer carry the interface.
  int ls = F(SYS(socket, AF_INET6, SOCK_STREAM, 0));
  sockaddr_in6 lany = in6("::", 5556);
  R(SYS(bind, ls, sa6(lany), sizeof lany));
  R(SYS(listen, ls, 4));
  int c = F(SYS(socket, AF_INET6, SOCK_STREAM, 0));
  d = ll("fe80::2", 5556, ifs.i1);
  R(SYS(connect, c, sa6(d), sizeof d));
  NAME(c);
  PEER(c);
  sockaddr_in6 from{};
  socklen_t fl = sizeof from;
  int a = F(SYS(accept, ls, reinterpret_cast<sockaddr*>(&from), &fl));
  V("accepted from %s scope %s", text(from).c_str(), ifs.name(from.sin6_scope_id).c_str());
  NAME(a);
  PEER(a);
  R(SYS(send, a, "pong", 4, 0));
  char buf[8];
  R(SYS(recv, c, buf, sizeof buf, 0));
  SYS(close, a);
  SYS(close, c);
  // Without a scope id even our own link-local address needs one.
  c = F(SYS(socket, AF_INET6, SOCK_STREAM, 0));
  d = ll("fe80::2", 5556, 0);
  R(SYS(connect, c, sa6(d), sizeof d));
  SYS(close, c);
  SYS(close, ls);
}

}  // namespace

TEST_CASE("ipv6 scope ids: which calls want an interface and which scope ids come back, as the host kernel's",
          "[inet][ipv6][diff]") {
  if (!can_unshare_net()) {
    WARN("scope id differential test skipped: no CLONE_NEWNET (needs root)");
    return;
  }
  run_diff(sc_scope<K<false>>, sc_scope<K<true>>);
}
