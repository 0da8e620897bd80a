// The AF_INET and AF_INET6 socket domains: their protocol tables, filled
// by the transports' registrations at load time (ip.h), and the address
// check shared by every inet protocol.
#include <cstring>

#include "kern/kernel.h"
#include "net/inet/ip.h"

namespace rump {

// The interface ioctls (net/inet/if_ioctl.cc).
Result<long> inet_ioctl(Lwp& l, Socket& so, unsigned long cmd, uintptr_t arg);

namespace {

constexpr int kMaxProtos = 8;
Protosw g_in_protos[kMaxProtos];
Protosw g_in6_protos[kMaxProtos];
int g_by_number[2];  // AF_INET, AF_INET6: entries registered by_number_only
// Constant-initialized, so registrations in any load order find them.
Domain g_inet_domain{AF_INET, g_in_protos, 0, &inet_check_addr, nullptr, nullptr, &inet_ioctl};
Domain g_inet6_domain{AF_INET6, g_in6_protos, 0, &inet_check_addr, nullptr, nullptr, &inet_ioctl};
const DomainRegistrar g_inet_registrar(&g_inet_domain);
const DomainRegistrar g_inet6_registrar(&g_inet6_domain);

}  // namespace

void inet_register_protosw(int family, const Protosw& p, bool by_number_only) {
  bool six = family == AF_INET6;
  Domain& d = six ? g_inet6_domain : g_inet_domain;
  Protosw* table = six ? g_in6_protos : g_in_protos;
  int& tail = g_by_number[six];
  if (d.nprotos >= kMaxProtos) return;
  // socket(2) with protocol 0 takes the first entry of its type: entries
  // reached only by their number stay after every other.
  int at = by_number_only ? d.nprotos : d.nprotos - tail;
  for (int i = d.nprotos; i > at; i--) table[i] = table[i - 1];
  table[at] = p;
  d.nprotos++;
  if (by_number_only) tail++;
}

Result<void> inet_check_addr(const void* raw, socklen_t len, SockAddr& a) {
  size_t n = len < sizeof a.bytes ? len : sizeof a.bytes;
  std::memcpy(a.bytes, raw, n);
  a.len = static_cast<socklen_t>(n);
  return {};
}

Result<void> sockaddr_to_ip(const SockAddr& a, IpAddr& ip, uint16_t& port) {
  if (a.len < sizeof(sa_family_t)) return err(EINVAL);
  if (a.family == AF_INET) {
    if (a.len < sizeof(sockaddr_in)) return err(EINVAL);
    ip = IpAddr::of(InAddr{a.in.sin_addr.s_addr});
    port = ntohs(a.in.sin_port);
    return {};
  }
  if (a.family == AF_INET6) {
    if (a.len < 24) return err(EINVAL);
    In6Addr x;
    std::memcpy(x.b, &a.in6.sin6_addr, 16);
    ip = IpAddr::of(x);
    port = ntohs(a.in6.sin6_port);
    return {};
  }
  return err(EAFNOSUPPORT);
}

void ip_to_sockaddr(const IpAddr& ip, uint16_t port, SockAddr& a) {
  a = SockAddr();
  if (ip.family == AF_INET6) {
    a.in6.sin6_family = AF_INET6;
    a.in6.sin6_port = htons(port);
    std::memcpy(&a.in6.sin6_addr, ip.v6.b, 16);
    a.len = sizeof(sockaddr_in6);
    return;
  }
  a.in.sin_family = AF_INET;
  a.in.sin_port = htons(port);
  a.in.sin_addr.s_addr = ip.v4.s;
  a.len = sizeof(sockaddr_in);
}

}  // namespace rump
