// Differential scenarios of IPv6 raw sockets and ICMPv6 over ::1: the host
// run enters a network namespace of its own (root; else skipped) so that
// nothing else on the machine shares its loopback, the rump run uses a
// fresh kernel, and the logs must agree (net_diff.h).
//
// Covered: IPV6_CHECKSUM (RFC 3542 3.1) on a raw socket of another
// protocol (the offset rules, the checksum the stack puts on sending, a
// datagram failing it not delivered), ICMPv6 raw sockets (the fixed
// offset 2, echo request and reply both seen, ICMP6_FILTER), and ICMPv6
// ping sockets (the identifier the stack sets, the reply).
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>

#include <string>

#include "net_diff.h"
#include "sockaddr6.h"

using namespace net_test;

namespace {

constexpr int kProto = 253;  // RFC 3692's protocol number for experiments

template <class S>
void lo_up(Log& L) {
  int s = static_cast<int>(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  ifreq ifr{};
  std::strcpy(ifr.ifr_name, "lo");
  R(SYS(ioctl, s, SIOCGIFFLAGS, &ifr) == 0);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  R(SYS(ioctl, s, SIOCSIFFLAGS, &ifr) == 0);
  SYS(close, s);
}

std::string hex(const unsigned char* p, long n) {
  std::string s;
  for (long i = 0; i < n; i++) {
    char b[4];
    snprintf(b, sizeof b, "%02x", p[i]);
    s += b;
  }
  return s;
}

// The Internet checksum of a payload from ::1 to ::1 under next header
// nxt: 0 when the payload's own checksum is right.
uint16_t sum6_lo(const unsigned char* p, size_t n, uint8_t nxt) {
  uint32_t s = 2 + static_cast<uint32_t>(n) + nxt;  // ::1 twice, the length, the next header
  for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) s += static_cast<uint32_t>(p[n - 1] << 8);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

// Receives one datagram without waiting and logs it: its length, bytes
// and the sender.
template <class S>
void recv_log(Log& L, int line, int fd, bool icmp) {
  unsigned char b[256];
  sockaddr_in6 from{};
  socklen_t fl = sizeof from;
  errno = 0;
  long n = SYS(recvfrom, fd, b, sizeof b, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fl);
  if (n < 0) {
    L.add(line, "recv = -1 errno %d", errno);
    return;
  }
  char a[64];
  inet_ntop(AF_INET6, &from.sin6_addr, a, sizeof a);
  if (icmp && n >= 8)
    L.add(line, "recv %ld from %s port %u: type %u code %u id %u seq %u sum ok %d data %s", n, a, ntohs(from.sin6_port),
          b[0], b[1], b[4] << 8 | b[5], b[6] << 8 | b[7], sum6_lo(b, static_cast<size_t>(n), IPPROTO_ICMPV6) == 0,
          hex(b + 8, n - 8).c_str());
  else
    L.add(line, "recv %ld from %s port %u: %s", n, a, ntohs(from.sin6_port), hex(b, n).c_str());
}
#define RECV(fd, icmp) recv_log<S>(L, __LINE__, fd, icmp)

template <class S>
void sc_raw6_checksum(Log& L, const Env&) {
  if (!enter_netns<S>(L)) return;
  lo_up<S>(L);
  int v = 0;
  socklen_t vl;
  int s = F(SYS(socket, AF_INET6, SOCK_RAW, kProto));
  int plain = F(SYS(socket, AF_INET6, SOCK_RAW, kProto));
  GETOPT_V(s, IPPROTO_IPV6, IPV6_CHECKSUM, "checksum %d");
  int three = 3, four = 4, off = -7;
  R(SYS(setsockopt, s, IPPROTO_IPV6, IPV6_CHECKSUM, &three, sizeof three));
  R(SYS(setsockopt, s, IPPROTO_IPV6, IPV6_CHECKSUM, &four, 2));
  R(SYS(setsockopt, s, IPPROTO_IPV6, IPV6_CHECKSUM, &four, sizeof four));
  GETOPT_V(s, IPPROTO_IPV6, IPV6_CHECKSUM, "checksum %d");
  sockaddr_in6 one = in6("::1", 0);
  // The field must fit: offset 4 needs 6 bytes.
  unsigned char buf[16];
  for (int i = 0; i < 16; i++) buf[i] = static_cast<unsigned char>(0x30 + i);
  R(SYS(sendto, s, buf, 5, 0, sa6(one), sizeof one));
  R(SYS(sendto, s, buf, 6, 0, sa6(one), sizeof one));
  RECV(s, false);
  RECV(plain, false);
  R(SYS(sendto, s, buf, 16, 0, sa6(one), sizeof one));
  RECV(s, false);
  RECV(plain, false);
  // A datagram whose checksum is wrong reaches the plain socket only.
  R(SYS(sendto, plain, buf, 16, 0, sa6(one), sizeof one));
  RECV(plain, false);
  RECV(s, false);
  R(SYS(setsockopt, s, IPPROTO_IPV6, IPV6_CHECKSUM, &off, sizeof off));
  GETOPT_V(s, IPPROTO_IPV6, IPV6_CHECKSUM, "checksum %d");
  R(SYS(sendto, plain, buf, 16, 0, sa6(one), sizeof one));
  RECV(s, false);
  RECV(plain, false);
  // Not an option of UDP sockets; ICMP6_FILTER is ICMPv6's alone.
  int u = F(SYS(socket, AF_INET6, SOCK_DGRAM, 0));
  R(SYS(setsockopt, u, IPPROTO_IPV6, IPV6_CHECKSUM, &four, sizeof four));
  icmp6_filter f;
  ICMP6_FILTER_SETPASSALL(&f);
  R(SYS(setsockopt, s, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f));
  SYS(close, u);
  SYS(close, s);
  SYS(close, plain);
}

template <class S>
void sc_icmp6_raw_ping(Log& L, const Env&) {
  if (!enter_netns<S>(L)) return;
  lo_up<S>(L);
  int v = 0;
  socklen_t vl;
  int ic = F(SYS(socket, AF_INET6, SOCK_RAW, IPPROTO_ICMPV6));
  GETOPT_V(ic, IPPROTO_IPV6, IPV6_CHECKSUM, "checksum %d");
  int two = 2;
  R(SYS(setsockopt, ic, IPPROTO_IPV6, IPV6_CHECKSUM, &two, sizeof two));
  sockaddr_in6 one = in6("::1", 0);
  // An echo request with a wrong checksum: the stack puts the right one.
  // The raw socket sees its own request, then the reply.
  unsigned char req[12] = {ICMP6_ECHO_REQUEST, 0, 0xde, 0xad, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g'};
  R(SYS(sendto, ic, req, sizeof req, 0, sa6(one), sizeof one));
  RECV(ic, true);
  RECV(ic, true);
  RECV(ic, true);
  // ICMP6_FILTER blocks the requests.
  icmp6_filter f;
  ICMP6_FILTER_SETPASSALL(&f);
  ICMP6_FILTER_SETBLOCK(ICMP6_ECHO_REQUEST, &f);
  R(SYS(setsockopt, ic, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f));
  icmp6_filter g{};
  socklen_t gl = sizeof g;
  R(SYS(getsockopt, ic, IPPROTO_ICMPV6, ICMP6_FILTER, &g, &gl));
  V("filter len %u same %d", gl, std::memcmp(&f, &g, sizeof f) == 0);
  req[7] = 2;
  R(SYS(sendto, ic, req, sizeof req, 0, sa6(one), sizeof one));
  RECV(ic, true);
  RECV(ic, true);
  // Too short to be an ICMPv6 message.
  R(SYS(sendto, ic, req, 3, 0, sa6(one), sizeof one));

  // A ping socket: the stack sets the identifier (the socket's "port")
  // and the checksum; the reply comes back to it alone.
  allow_ping<S>(L);
  int p = F(SYS(socket, AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6));
  sockaddr_in6 me = in6("::1", 4242);
  R(SYS(bind, p, sa6(me), sizeof me));
  req[7] = 3;
  R(SYS(sendto, p, req, sizeof req, 0, sa6(one), sizeof one));
  RECV(p, true);
  RECV(p, true);
  // The raw socket (requests blocked) saw the reply too.
  RECV(ic, true);
  RECV(ic, true);
  // Only echo requests go out of a ping socket.
  unsigned char reply[8] = {ICMP6_ECHO_REPLY, 0, 0, 0, 0, 0, 0, 1};
  R(SYS(sendto, p, reply, sizeof reply, 0, sa6(one), sizeof one));
  SYS(close, p);
  SYS(close, ic);
}

void diff(ScenarioFn host, ScenarioFn rump) {
  if (!can_unshare_net()) {
    WARN("IPv6 raw socket differential test skipped: no CLONE_NEWNET (needs root)");
    return;
  }
  run_diff(host, rump);
}

}  // namespace

TEST_CASE("inet diff: IPV6_CHECKSUM on an IPv6 raw socket", "[inet][diff][ipv6]") {
  diff(sc_raw6_checksum<K<false>>, sc_raw6_checksum<K<true>>);
}

TEST_CASE("inet diff: ICMPv6 echo through a raw socket with ICMP6_FILTER and a ping socket", "[inet][diff][ipv6]") {
  diff(sc_icmp6_raw_ping<K<false>>, sc_icmp6_raw_ping<K<true>>);
}
