// Differential scenarios of UDP and the interface ioctls: each runs
// against the host kernel's own loopback and against the rump kernel's
// (net_diff.h) and the logs must agree.
//
// Deliberate differences (this list is the one place):
//   * port numbers: both kernels pick ephemeral ports from 32768-60999;
//     only "in range" and equalities between them are compared.
//   * no fixed port is used (other programs share the host's loopback).
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>

#include <sys/epoll.h>

#include "net_diff.h"
#include "sockaddr6.h"

using namespace net_test;

namespace {

sockaddr_in in4(const char* a, uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  inet_pton(AF_INET, a, &s.sin_addr);
  return s;
}
sockaddr* sa4(sockaddr_in& a) { return reinterpret_cast<sockaddr*>(&a); }

void log_in(Log& L, int line, const sockaddr_in& a, socklen_t len, uint16_t expect_port = 0) {
  char buf[32];
  inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  uint16_t p = ntohs(a.sin_port);
  const char* port = p == 0 ? "0" : expect_port && p == expect_port ? "expected" : (p >= 32768 && p <= 60999) ? "ephemeral" : "other";
  L.add(line, "in len %u family %d addr %s port %s", len, a.sin_family, buf, port);
}
#define LOG_IN(a, len, ...) log_in(L, __LINE__, a, len, ##__VA_ARGS__)

template <class S>
uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t l = sizeof a;
  if (SYS(getsockname, fd, sa4(a), &l) != 0) return 0;
  return ntohs(a.sin_port);
}

// A UDP port on 127.0.0.1 that nothing is bound to (just released).
template <class S>
uint16_t free_port() {
  int s = static_cast<int>(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a = in4("127.0.0.1", 0);
  SYS(bind, s, sa4(a), sizeof a);
  uint16_t p = port_of<S>(s);
  SYS(close, s);
  return p;
}

template <class S>
void sc_udp_basic(Log& L, const Env&) {
  int r = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  int s = F(SYS(socket, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0));
  sockaddr_in a{};
  socklen_t al = sizeof a;
  R(SYS(getsockname, r, sa4(a), &al));
  LOG_IN(a, al);
  sockaddr_in b = in4("127.0.0.1", 0);
  R(SYS(bind, r, sa4(b), sizeof b));
  R(SYS(bind, r, sa4(b), sizeof b));  // EINVAL: bound
  al = sizeof a;
  R(SYS(getsockname, r, sa4(a), &al));
  LOG_IN(a, al);
  uint16_t rport = ntohs(a.sin_port);
  al = sizeof a;
  R(SYS(getpeername, r, sa4(a), &al));  // ENOTCONN
  sockaddr_in to = in4("127.0.0.1", rport);
  // epoll sees the datagram arrive.
  int ep = F(SYS(epoll_create1, 0));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = 7;
  R(SYS(epoll_ctl, ep, EPOLL_CTL_ADD, r, &ev));
  epoll_event got[2] = {};
  R(SYS(epoll_wait, ep, got, 2, 0));
  R(SYS(sendto, s, "hello", 5, 0, sa4(to), sizeof to));
  R(SYS(epoll_wait, ep, got, 2, 0));
  V("event %#x data %u", got[0].events, got[0].data.u32);
  R(SYS(close, ep));
  // Autobound: the wildcard address and an ephemeral port.
  al = sizeof a;
  R(SYS(getsockname, s, sa4(a), &al));
  LOG_IN(a, al);
  uint16_t sport = ntohs(a.sin_port);
  int n = -1;
  R(SYS(ioctl, r, FIONREAD, &n));
  V("fionread %d", n);
  pollfd pf{r, POLLIN | POLLOUT, 0};
  R(SYS(poll, &pf, 1, 0));
  V("revents %#x", pf.revents);
  char buf[16] = {};
  sockaddr_in from{};
  socklen_t fl = sizeof from;
  R(SYS(recvfrom, r, buf, 2, MSG_PEEK, sa4(from), &fl));
  LOG_IN(from, fl, sport);
  R(SYS(recvfrom, r, buf, 2, MSG_TRUNC, nullptr, nullptr));  // the whole length
  V("got '%.2s'", buf);
  R(SYS(recvfrom, r, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr));  // EAGAIN
  // Zero-length datagrams, and records kept apart.
  R(SYS(sendto, s, "", 0, 0, sa4(to), sizeof to));
  R(SYS(sendto, s, "abc", 3, 0, sa4(to), sizeof to));
  R(SYS(sendto, s, "defgh", 5, 0, sa4(to), sizeof to));
  fl = sizeof from;
  R(SYS(recvfrom, r, buf, sizeof buf, 0, sa4(from), &fl));
  R(SYS(recvfrom, r, buf, sizeof buf, 0, nullptr, nullptr));
  R(SYS(recvfrom, r, buf, 4, 0, nullptr, nullptr));  // truncated: 4
  iovec iov{buf, sizeof buf};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  R(SYS(sendto, s, "0123456789", 10, 0, sa4(to), sizeof to));
  iov.iov_len = 4;
  mh.msg_name = &from;
  mh.msg_namelen = sizeof from;
  R(SYS(recvmsg, r, &mh, 0));
  V("msg_flags %#x namelen %u", mh.msg_flags, mh.msg_namelen);
  LOG_IN(from, mh.msg_namelen, sport);
  // sendmsg with an address, from the receiving socket back.
  mh = msghdr{};
  iov = iovec{const_cast<char*>("back"), 4};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  sockaddr_in back = in4("127.0.0.1", sport);
  mh.msg_name = &back;
  mh.msg_namelen = sizeof back;
  R(SYS(sendmsg, r, &mh, 0));
  R(SYS(recvfrom, s, buf, sizeof buf, 0, nullptr, nullptr));
  // Wrong families and lengths.
  sockaddr_in bad = to;
  bad.sin_family = AF_UNIX;
  R(SYS(sendto, s, "x", 1, 0, sa4(bad), sizeof bad));
  R(SYS(sendto, s, "x", 1, 0, sa4(to), sizeof to - 1));
  R(SYS(sendto, s, "x", 1, 0, nullptr, 0));  // EDESTADDRREQ
  sockaddr_in zero = in4("127.0.0.1", 0);
  R(SYS(sendto, s, "x", 1, 0, sa4(zero), sizeof zero));  // port 0: EINVAL
  static char big[70000];
  R(SYS(sendto, s, big, 65508, 0, sa4(to), sizeof to));  // EMSGSIZE
  R(SYS(close, r));
  R(SYS(close, s));
}

template <class S>
void sc_udp_connect(Log& L, const Env&) {
  uint16_t dead = free_port<S>();
  int c = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  sockaddr_in to = in4("127.0.0.1", dead);
  R(SYS(connect, c, sa4(to), sizeof to));
  sockaddr_in a{};
  socklen_t al = sizeof a;
  R(SYS(getpeername, c, sa4(a), &al));
  LOG_IN(a, al, dead);
  al = sizeof a;
  R(SYS(getsockname, c, sa4(a), &al));
  LOG_IN(a, al);
  // Nothing listens: the ICMP port unreachable comes back as
  // ECONNREFUSED on the next call, once.
  R(SYS(send, c, "ping", 4, 0));
  char buf[8];
  R(SYS(recv, c, buf, sizeof buf, MSG_DONTWAIT));
  R(SYS(recv, c, buf, sizeof buf, MSG_DONTWAIT));
  R(SYS(send, c, "ping", 4, 0));
  R(SYS(send, c, "ping", 4, 0));  // the error of the first
  int err = -1;
  socklen_t el = sizeof err;
  R(SYS(getsockopt, c, SOL_SOCKET, SO_ERROR, &err, &el));
  V("so_error %d", err);
  // A live peer: connected sockets take datagrams from it only.
  int p = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  sockaddr_in pa = in4("127.0.0.1", 0);
  R(SYS(bind, p, sa4(pa), sizeof pa));
  uint16_t pport = port_of<S>(p);
  sockaddr_in pto = in4("127.0.0.1", pport);
  R(SYS(connect, c, sa4(pto), sizeof pto));
  uint16_t cport = port_of<S>(c);
  sockaddr_in cto = in4("127.0.0.1", cport);
  R(SYS(sendto, p, "one", 3, 0, sa4(cto), sizeof cto));
  int other = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  R(SYS(sendto, other, "two", 3, 0, sa4(cto), sizeof cto));  // filtered out
  R(SYS(recv, c, buf, sizeof buf, MSG_DONTWAIT));
  R(SYS(recv, c, buf, sizeof buf, MSG_DONTWAIT));  // EAGAIN: "two" was not for it
  // sendto another address on a connected socket is allowed.
  R(SYS(sendto, c, "three", 5, 0, sa4(to), sizeof to));
  // Dissolve.
  sockaddr un{};
  un.sa_family = AF_UNSPEC;
  R(SYS(connect, c, &un, sizeof un));
  al = sizeof a;
  R(SYS(getpeername, c, sa4(a), &al));
  R(SYS(send, c, "x", 1, 0));  // EDESTADDRREQ
  R(SYS(shutdown, other, SHUT_RD));  // ENOTCONN
  R(SYS(close, c));
  R(SYS(close, p));
  R(SYS(close, other));
}

template <class S>
void sc_udp_bind_rules(Log& L, const Env&) {
  int a = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  int b = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  sockaddr_in any = in4("0.0.0.0", 0);
  R(SYS(bind, a, sa4(any), sizeof any));
  uint16_t port = port_of<S>(a);
  sockaddr_in same = in4("127.0.0.1", port);
  R(SYS(bind, b, sa4(same), sizeof same));  // EADDRINUSE: the wildcard covers it
  sockaddr_in other_ip = in4("192.0.2.1", 0);
  R(SYS(bind, b, sa4(other_ip), sizeof other_ip));  // EADDRNOTAVAIL
  R(SYS(bind, b, sa4(same), sizeof same - 1));  // EINVAL
  sockaddr_in fam = same;
  fam.sin_family = AF_INET6;
  R(SYS(bind, b, sa4(fam), sizeof fam));  // EAFNOSUPPORT
  R(SYS(close, a));
  R(SYS(close, b));
  // SO_REUSEADDR on both: shared.
  int on = 1;
  a = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  b = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  int c = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  R(SYS(setsockopt, a, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
  R(SYS(setsockopt, b, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
  sockaddr_in lo = in4("127.0.0.1", 0);
  R(SYS(bind, a, sa4(lo), sizeof lo));
  port = port_of<S>(a);
  same = in4("127.0.0.1", port);
  R(SYS(bind, b, sa4(same), sizeof same));
  R(SYS(bind, c, sa4(same), sizeof same));  // EADDRINUSE: c did not ask
  R(SYS(close, a));
  R(SYS(close, b));
  R(SYS(close, c));
  // SO_REUSEPORT on both (same user): shared; a third without: refused.
  a = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  b = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  c = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  R(SYS(setsockopt, a, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on));
  R(SYS(setsockopt, b, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on));
  int v = -1;
  socklen_t vl = sizeof v;
  R(SYS(getsockopt, b, SOL_SOCKET, SO_REUSEPORT, &v, &vl));
  V("reuseport %d", v);
  R(SYS(bind, a, sa4(lo), sizeof lo));
  port = port_of<S>(a);
  same = in4("127.0.0.1", port);
  R(SYS(bind, b, sa4(same), sizeof same));
  R(SYS(bind, c, sa4(same), sizeof same));
  R(SYS(close, a));
  R(SYS(close, b));
  R(SYS(close, c));
}

template <class S>
void sc_udp_options(Log& L, const Env&) {
  int s = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  int v = -1;
  socklen_t vl = sizeof v;
  R(SYS(getsockopt, s, IPPROTO_IP, IP_TTL, &v, &vl));
  V("ttl %d len %u", v, vl);
  v = 200;
  R(SYS(setsockopt, s, IPPROTO_IP, IP_TTL, &v, sizeof v));
  GETOPT_V(s, IPPROTO_IP, IP_TTL, "ttl %d");
  v = 0;
  R(SYS(setsockopt, s, IPPROTO_IP, IP_TTL, &v, sizeof v));  // EINVAL
  v = 256;
  R(SYS(setsockopt, s, IPPROTO_IP, IP_TTL, &v, sizeof v));  // EINVAL
  v = -1;
  R(SYS(setsockopt, s, IPPROTO_IP, IP_TTL, &v, sizeof v));  // the default again
  GETOPT_V(s, IPPROTO_IP, IP_TTL, "ttl %d");
  v = IPTOS_LOWDELAY;
  R(SYS(setsockopt, s, IPPROTO_IP, IP_TOS, &v, sizeof v));
  GETOPT_V(s, IPPROTO_IP, IP_TOS, "tos %#x");
  GETOPT_V(s, SOL_SOCKET, SO_BROADCAST, "broadcast %d");
  GETOPT_V(s, SOL_SOCKET, SO_TYPE, "type %d");
  GETOPT_V(s, SOL_SOCKET, SO_PROTOCOL, "protocol %d");
  GETOPT_V(s, SOL_SOCKET, SO_DOMAIN, "domain %d");
  R(SYS(setsockopt, s, IPPROTO_IP, 12345, &v, sizeof v));  // ENOPROTOOPT
  R(SYS(close, s));
  R(SYS(socket, AF_INET, SOCK_DGRAM, IPPROTO_TCP));  // EPROTONOSUPPORT
  int u = F(SYS(socket, AF_INET, SOCK_DGRAM, IPPROTO_UDP));
  R(SYS(close, u));
  // ping sockets are for the groups of net.ipv4.ping_group_range, which
  // is empty by default, root included.
  R(SYS(socket, AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
}

template <class S>
void sc_udp_broadcast(Log& L, const Env&) {
  int r = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  sockaddr_in any = in4("0.0.0.0", 0);
  R(SYS(bind, r, sa4(any), sizeof any));
  uint16_t port = port_of<S>(r);
  int s = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  sockaddr_in bc = in4("127.255.255.255", port);
  R(SYS(sendto, s, "b", 1, 0, sa4(bc), sizeof bc));  // EACCES
  R(SYS(connect, s, sa4(bc), sizeof bc));  // EACCES
  int on = 1;
  R(SYS(setsockopt, s, SOL_SOCKET, SO_BROADCAST, &on, sizeof on));
  R(SYS(sendto, s, "b", 1, 0, sa4(bc), sizeof bc));
  char buf[4];
  R(SYS(recv, r, buf, sizeof buf, 0));
  R(SYS(close, r));
  R(SYS(close, s));
}

template <class S>
void sc_lo_ioctls(Log& L, const Env&) {
  int s = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  ifreq ifr{};
  std::strcpy(ifr.ifr_name, "lo");
  R(SYS(ioctl, s, SIOCGIFFLAGS, &ifr));
  V("flags %#x", ifr.ifr_flags & (IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_BROADCAST));
  R(SYS(ioctl, s, SIOCGIFADDR, &ifr));
  sockaddr_in a;
  std::memcpy(&a, &ifr.ifr_addr, sizeof a);
  LOG_IN(a, sizeof a);
  R(SYS(ioctl, s, SIOCGIFNETMASK, &ifr));
  std::memcpy(&a, &ifr.ifr_netmask, sizeof a);
  LOG_IN(a, sizeof a);
  R(SYS(ioctl, s, SIOCGIFMTU, &ifr));
  V("mtu %d", ifr.ifr_mtu);
  R(SYS(ioctl, s, SIOCGIFINDEX, &ifr));
  V("index %d", ifr.ifr_ifindex);
  ifreq byidx{};
  byidx.ifr_ifindex = ifr.ifr_ifindex;
  R(SYS(ioctl, s, SIOCGIFNAME, &byidx));
  V("name %s", byidx.ifr_name);
  R(SYS(ioctl, s, SIOCGIFHWADDR, &ifr));
  V("hw family %d", ifr.ifr_hwaddr.sa_family);
  ifreq no{};
  std::strcpy(no.ifr_name, "nosuch9");
  R(SYS(ioctl, s, SIOCGIFFLAGS, &no));  // ENODEV
  // SIOCGIFCONF: the length question, then lo among the answers.
  ifconf ic{};
  R(SYS(ioctl, s, SIOCGIFCONF, &ic));
  V("needs entries %d", ic.ifc_len > 0 && ic.ifc_len % static_cast<int>(sizeof(ifreq)) == 0);
  ifreq all[16];
  ic.ifc_len = sizeof all;
  ic.ifc_req = all;
  R(SYS(ioctl, s, SIOCGIFCONF, &ic));
  bool saw_lo = false;
  for (int i = 0; i < ic.ifc_len / static_cast<int>(sizeof(ifreq)); i++) {
    std::memcpy(&a, &all[i].ifr_addr, sizeof a);
    if (std::strcmp(all[i].ifr_name, "lo") == 0 && a.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) saw_lo = true;
  }
  V("lo listed %d", saw_lo);
  R(SYS(close, s));
}


void log_in6(Log& L, int line, const sockaddr_in6& a, socklen_t len, uint16_t expect_port = 0) {
  char buf[64];
  inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
  uint16_t p = ntohs(a.sin6_port);
  const char* port = p == 0 ? "0" : expect_port && p == expect_port ? "expected" : (p >= 32768 && p <= 60999) ? "ephemeral" : "other";
  L.add(line, "in6 len %u family %d addr %s port %s flow %u scope %u", len, a.sin6_family, buf, port, a.sin6_flowinfo,
        a.sin6_scope_id);
}
#define LOG_IN6(a, len, ...) log_in6(L, __LINE__, a, len, ##__VA_ARGS__)

template <class S>
uint16_t port6_of(int fd) {
  sockaddr_in6 a{};
  socklen_t l = sizeof a;
  if (SYS(getsockname, fd, sa6(a), &l) != 0) return 0;
  return ntohs(a.sin6_port);
}

template <class S>
void sc_udp6(Log& L, const Env&) {
  int r = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
  int v = -1;
  socklen_t vl = sizeof v;
  R(SYS(getsockopt, r, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl));
  V("v6only %d", v);
  sockaddr_in6 a{};
  socklen_t al = sizeof a;
  R(SYS(getsockname, r, sa6(a), &al));
  LOG_IN6(a, al);
  sockaddr_in6 any = in6("::", 0);
  R(SYS(bind, r, sa6(any), sizeof any));
  v = 1;
  R(SYS(setsockopt, r, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v));  // EINVAL: bound
  uint16_t port = port6_of<S>(r);
  int s = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 to = in6("::1", port);
  R(SYS(sendto, s, "six", 3, 0, sa6(to), sizeof to));
  uint16_t sport = port6_of<S>(s);
  char buf[16];
  sockaddr_in6 from{};
  socklen_t fl = sizeof from;
  R(SYS(recvfrom, r, buf, sizeof buf, 0, sa6(from), &fl));
  LOG_IN6(from, fl, sport);
  // A dual-stack socket takes IPv4 and names its sender v4-mapped.
  int s4 = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  sockaddr_in to4 = in4("127.0.0.1", port);
  R(SYS(sendto, s4, "four", 4, 0, sa4(to4), sizeof to4));
  uint16_t s4port = port_of<S>(s4);
  fl = sizeof from;
  R(SYS(recvfrom, r, buf, sizeof buf, 0, sa6(from), &fl));
  LOG_IN6(from, fl, s4port);
  // And sends to v4-mapped addresses.
  sockaddr_in6 mapped = in6("::ffff:127.0.0.1", s4port);
  R(SYS(sendto, r, "back", 4, 0, sa6(mapped), sizeof mapped));
  sockaddr_in f4{};
  socklen_t f4l = sizeof f4;
  R(SYS(recvfrom, s4, buf, sizeof buf, 0, sa4(f4), &f4l));
  LOG_IN(f4, f4l, port);
  // Short and wrong-family addresses.
  R(SYS(sendto, s, "x", 1, 0, sa6(to), sizeof(sockaddr_in)));  // EINVAL
  // A sockaddr_in (in a buffer of sockaddr_in6's size) on an IPv6
  // socket: sent as IPv4.
  sockaddr_in6 as4{};
  std::memcpy(&as4, &to4, sizeof to4);
  R(SYS(sendto, s, "x", 1, 0, sa6(as4), sizeof as4));
  // IPV6_V6ONLY before bind: IPv4 no longer reaches it.
  int o = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
  v = 1;
  R(SYS(setsockopt, o, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v));
  R(SYS(bind, o, sa6(any), sizeof any));
  uint16_t oport = port6_of<S>(o);
  sockaddr_in oto = in4("127.0.0.1", oport);
  int c4 = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  R(SYS(connect, c4, sa4(oto), sizeof oto));
  R(SYS(send, c4, "x", 1, 0));
  R(SYS(recv, c4, buf, sizeof buf, MSG_DONTWAIT));  // ECONNREFUSED
  R(SYS(recv, o, buf, sizeof buf, MSG_DONTWAIT));   // EAGAIN
  // A v6 port nothing listens on: ECONNREFUSED too (ICMPv6 port unreachable).
  int d = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
  R(SYS(bind, d, sa6(any), sizeof any));
  uint16_t dead = port6_of<S>(d);
  R(SYS(close, d));
  int c6 = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 dto = in6("::1", dead);
  R(SYS(connect, c6, sa6(dto), sizeof dto));
  al = sizeof a;
  R(SYS(getsockname, c6, sa6(a), &al));
  LOG_IN6(a, al);
  R(SYS(send, c6, "x", 1, 0));
  R(SYS(recv, c6, buf, sizeof buf, MSG_DONTWAIT));
  for (int fd : {r, s, s4, o, c4, c6}) R(SYS(close, fd));
}

}  // namespace

#define DIFF(name) run_diff(&name<K<false>>, &name<K<true>>)

TEST_CASE("inet diff: UDP datagrams over loopback, names, truncation, errors", "[inet][diff]") { DIFF(sc_udp_basic); }
TEST_CASE("inet diff: connected UDP, ECONNREFUSED from port unreachable, AF_UNSPEC", "[inet][diff]") {
  DIFF(sc_udp_connect);
}
TEST_CASE("inet diff: UDP bind conflicts, SO_REUSEADDR and SO_REUSEPORT", "[inet][diff]") { DIFF(sc_udp_bind_rules); }
TEST_CASE("inet diff: IP_TTL, IP_TOS and the socket options of a UDP socket", "[inet][diff]") {
  DIFF(sc_udp_options);
}
TEST_CASE("inet diff: broadcast needs SO_BROADCAST", "[inet][diff]") { DIFF(sc_udp_broadcast); }
TEST_CASE("inet diff: lo as the interface ioctls see it", "[inet][diff]") { DIFF(sc_lo_ioctls); }
TEST_CASE("inet diff: UDP over ::1, dual-stack sockets and IPV6_V6ONLY", "[inet][diff]") { DIFF(sc_udp6); }
