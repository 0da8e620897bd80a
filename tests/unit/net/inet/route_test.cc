// The routing table through Linux's SIOCADDRT/SIOCDELRT: struct rtentry
// on an IPv4 socket, struct in6_rtmsg on an IPv6 one; the routes are
// checked by where packets go (the ARP request or neighbour solicitation
// for the next hop on an Ethernet interface).
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include <rump/rump.h>
#include <rump/rumpnet.h>

#include "kern/curlwp.h"
#include "kern/kernel.h"
#include "net/inet/if.h"
#include "net/inet/if_ether.h"
#include "net_diff.h"

using namespace net_test;

namespace {

struct Sent {
  std::vector<std::vector<uint8_t>> frames;
};
void sink(void* arg, rump::Ifnet&, rump::Pkt* p) {
  std::vector<uint8_t> f(p->len());
  p->copy_out(0, p->len(), f.data());
  static_cast<Sent*>(arg)->frames.push_back(std::move(f));
  rump::Pkt::free(p);
}

void make_eth0(Sent& s) {
  rump::Kernel* k = rump::current_kernel();
  REQUIRE(k != nullptr);
  rump::Lwp* l = rump::enter(*k);
  rump::InetState* st = rump::inet_state_or_null(*k);
  REQUIRE(st != nullptr);
  const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x21};
  REQUIRE(rump::ether_attach(*st, "eth0", mac, rump::EtherLink{&sink, &s}).ok());
  rump::leave(*k, l);
}

sockaddr sin(const char* a) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  inet_pton(AF_INET, a, &s.sin_addr);
  sockaddr r;
  std::memcpy(&r, &s, sizeof s);
  return r;
}

// The IPv4 address an ARP request in frame f asks for ("" if f is not one).
std::string arp_target(const std::vector<uint8_t>& f) {
  if (f.size() < 42 || (f[12] << 8 | f[13]) != ETH_P_ARP) return "";
  char b[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &f[38], b, sizeof b);
  return b;
}

// The target of a neighbour solicitation in frame f ("" if not one).
std::string ns_target(const std::vector<uint8_t>& f) {
  if (f.size() < 14 + 40 + 24 || (f[12] << 8 | f[13]) != ETH_P_IPV6 || f[14 + 6] != IPPROTO_ICMPV6 ||
      f[54] != 135)
    return "";
  char b[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, &f[62], b, sizeof b);
  return b;
}

}  // namespace

TEST_CASE("route ioctls: SIOCADDRT/SIOCDELRT with struct rtentry pick the next hop; bad requests fail as Linux",
          "[inet][route]") {
  in_rump(make_env(), [] {
    Sent sent;
    make_eth0(sent);
    REQUIRE(rump_pub_netconfig_ipv4_ifaddr_cidr("eth0", "10.2.0.1", 24) == 0);
    REQUIRE(rump_pub_netconfig_ifup("eth0") == 0);
    int fd = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    inet_pton(AF_INET, "10.9.3.4", &to.sin_addr);
    auto send = [&] { return rump_sys_sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to); };
    CHECK(send() == -1);
    CHECK(errno == ENETUNREACH);

    rtentry rt{};
    rt.rt_dst = sin("10.9.0.0");
    rt.rt_genmask = sin("255.255.0.0");
    rt.rt_gateway = sin("10.2.0.254");
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    REQUIRE(rump_sys_ioctl(fd, SIOCADDRT, &rt) == 0);
    CHECK(rump_sys_ioctl(fd, SIOCADDRT, &rt) == -1);
    CHECK(errno == EEXIST);
    sent.frames.clear();
    CHECK(send() == 1);
    REQUIRE(sent.frames.size() == 1);
    CHECK(arp_target(sent.frames[0]) == "10.2.0.254");  // through the gateway

    rtentry bad = rt;
    bad.rt_dst = sin("10.9.1.0");  // host bits outside the mask
    CHECK(rump_sys_ioctl(fd, SIOCADDRT, &bad) == -1);
    CHECK(errno == EINVAL);
    bad = rt;
    bad.rt_genmask = sin("255.0.255.0");  // not contiguous
    CHECK(rump_sys_ioctl(fd, SIOCADDRT, &bad) == -1);
    CHECK(errno == EINVAL);
    bad = rt;
    bad.rt_gateway = sin("10.77.0.1");  // not on a connected network
    bad.rt_dst = sin("10.10.0.0");
    CHECK(rump_sys_ioctl(fd, SIOCADDRT, &bad) == -1);
    CHECK(errno == ENETUNREACH);
    bad = rt;
    bad.rt_dst = sin("10.11.0.0");
    char nodev[] = "nosuch0";
    bad.rt_dev = nodev;
    CHECK(rump_sys_ioctl(fd, SIOCADDRT, &bad) == -1);
    CHECK(errno == ENODEV);

    REQUIRE(rump_sys_ioctl(fd, SIOCDELRT, &rt) == 0);
    CHECK(rump_sys_ioctl(fd, SIOCDELRT, &rt) == -1);
    CHECK(errno == ESRCH);
    CHECK(send() == -1);
    CHECK(errno == ENETUNREACH);

    // A default route by device alone: every destination is on-link.
    rtentry def{};
    def.rt_dst = sin("0.0.0.0");
    def.rt_genmask = sin("0.0.0.0");
    char eth0[] = "eth0";
    def.rt_dev = eth0;
    def.rt_flags = RTF_UP;
    REQUIRE(rump_sys_ioctl(fd, SIOCADDRT, &def) == 0);
    sent.frames.clear();
    CHECK(send() == 1);
    REQUIRE(sent.frames.size() == 1);
    CHECK(arp_target(sent.frames[0]) == "10.9.3.4");
    rump_sys_close(fd);
    CHECK(rump_pub_netconfig_ifdestroy("eth0") == 0);
  });
}

TEST_CASE("route ioctls: SIOCADDRT/SIOCDELRT with struct in6_rtmsg on an IPv6 socket", "[inet][route][ipv6]") {
  in_rump(make_env(), [] {
    Sent sent;
    make_eth0(sent);
    REQUIRE(rump_pub_netconfig_ipv6_ifaddr("eth0", "2001:db8::1", 64) == 0);
    REQUIRE(rump_pub_netconfig_ifup("eth0") == 0);
    int fd = rump_sys_socket(AF_INET6, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in6 to{};
    to.sin6_family = AF_INET6;
    to.sin6_port = htons(9);
    inet_pton(AF_INET6, "2001:db8:5::1", &to.sin6_addr);
    auto send = [&] { return rump_sys_sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to); };
    CHECK(send() == -1);
    CHECK(errno == ENETUNREACH);
    in6_rtmsg m{};
    inet_pton(AF_INET6, "2001:db8:5::", &m.rtmsg_dst);
    m.rtmsg_dst_len = 48;
    inet_pton(AF_INET6, "2001:db8::fe", &m.rtmsg_gateway);
    m.rtmsg_flags = RTF_UP | RTF_GATEWAY;
    REQUIRE(rump_sys_ioctl(fd, SIOCADDRT, &m) == 0);
    sent.frames.clear();
    CHECK(send() == 1);
    REQUIRE(sent.frames.size() == 1);
    CHECK(ns_target(sent.frames[0]) == "2001:db8::fe");
    in6_rtmsg bad = m;
    bad.rtmsg_dst_len = 129;
    CHECK(rump_sys_ioctl(fd, SIOCADDRT, &bad) == -1);
    CHECK(errno == EINVAL);
    REQUIRE(rump_sys_ioctl(fd, SIOCDELRT, &m) == 0);
    CHECK(send() == -1);
    CHECK(errno == ENETUNREACH);
    rump_sys_close(fd);
    CHECK(rump_pub_netconfig_ifdestroy("eth0") == 0);
  });
}
