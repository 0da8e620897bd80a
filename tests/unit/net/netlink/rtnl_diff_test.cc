// Differential rtnetlink scenarios: each runs against the host kernel in a
// fresh network namespace (the forked host child unshares CLONE_NEWNET;
// without root the test is skipped) and against a fresh rump kernel, and
// the logs must agree (net_diff.h).
//
// Deliberate differences (this list is the one place):
//   * the rump kernel's lo is up from the start; each scenario brings it
//     up first, so both start from the same state.
//   * Linux keeps a route for ::1 in table main and local/broadcast routes
//     in table local; only the scenario's own prefixes are compared, and
//     not the IPv6 local routes, which Linux adds when duplicate address
//     detection ends (a race, as below).
//   * objects a host namespace may have besides lo (fallback tunnels of
//     loaded modules) are left out: lines are filtered by name.
//   * IPv6 addresses: Linux's duplicate detection runs later even on lo,
//     so IFA_F_TENTATIVE is masked and a repeated announcement dropped.
//   * port ids: only "assigned" is compared; cache timestamps, counters
//     and interface indexes are normalized (nl_scenario.h).
#include <fcntl.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/wait.h>

#include <rump/rumpnet.h>

#include <set>

#include "nl_scenario.h"

using namespace net_test;
using namespace nl_test;

namespace {

template <class S>
int set_link(Nl<S>& nl, const char* name, uint32_t flags, uint32_t change, uint32_t mtu = 0) {
  Req r(RTM_NEWLINK, NLM_F_REQUEST);
  ifinfomsg* i = r.fixed<ifinfomsg>();
  i->ifi_family = AF_UNSPEC;
  i->ifi_flags = flags;
  i->ifi_change = change;
  r.str(IFLA_IFNAME, name);
  if (mtu) r.u32(IFLA_MTU, mtu);
  return nl.call(r);
}

template <class S>
int addr(Nl<S>& nl, uint16_t type, uint16_t flags, int family, const char* a, int plen, int index,
         const char* brd = nullptr) {
  Req r(type, NLM_F_REQUEST | flags);
  ifaddrmsg* i = r.fixed<ifaddrmsg>();
  i->ifa_family = static_cast<uint8_t>(family);
  i->ifa_prefixlen = static_cast<uint8_t>(plen);
  i->ifa_index = static_cast<uint32_t>(index);
  if (family == AF_INET) {
    r.in4(IFA_LOCAL, a);
    r.in4(IFA_ADDRESS, a);
    if (brd) r.in4(IFA_BROADCAST, brd);
  } else {
    r.in6(IFA_LOCAL, a);
  }
  return nl.call(r);
}

// A route request; a table other than main goes in RTA_TABLE too (in
// rtm_table only if it fits), as ip sends it.
template <class S>
int route(Nl<S>& nl, uint16_t type, uint16_t flags, int family, const char* dst, int plen, int oif,
          uint32_t metric = 0, uint32_t table = RT_TABLE_MAIN) {
  Req r(type, NLM_F_REQUEST | flags);
  rtmsg* m = r.fixed<rtmsg>();
  m->rtm_family = static_cast<uint8_t>(family);
  m->rtm_dst_len = static_cast<uint8_t>(plen);
  m->rtm_table = static_cast<uint8_t>(table < 256 ? table : RT_TABLE_UNSPEC);
  if (table != RT_TABLE_MAIN) r.u32(RTA_TABLE, table);
  m->rtm_protocol = type == RTM_NEWROUTE ? RTPROT_BOOT : 0;
  m->rtm_scope = type == RTM_NEWROUTE ? (family == AF_INET ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE) : RT_SCOPE_NOWHERE;
  m->rtm_type = RTN_UNICAST;
  if (family == AF_INET) r.in4(RTA_DST, dst);
  else r.in6(RTA_DST, dst);
  if (oif) r.u32(RTA_OIF, static_cast<uint32_t>(oif));
  if (metric) r.u32(RTA_PRIORITY, metric);
  return nl.call(r);
}

// The index of lo, by a GETLINK request with IFLA_IFNAME.
template <class S>
int lo_index(Nl<S>& nl) {
  Req r(RTM_GETLINK, NLM_F_REQUEST);
  r.fixed<ifinfomsg>();
  r.str(IFLA_IFNAME, "lo");
  if (nl.send(r) < 0) return -1;
  int err;
  std::vector<Msg> ms = nl.collect(err);
  if (ms.empty()) return -1;
  ifinfomsg i;
  std::memcpy(&i, ms[0].body.data(), sizeof i);
  nl.line(ms[0]);
  return i.ifi_index;
}

template <class S>
void sc_link_addr_route(Log& L, const Env&) {
  if (!enter_netns<S>(L)) return;
  Nl<S> nl;
  R(nl.open());
  sockaddr_nl me{};
  socklen_t ml = sizeof me;
  R(SYS(getsockname, nl.fd, reinterpret_cast<sockaddr*>(&me), &ml));
  V("name len %u family %d pid %s groups %u", ml, me.nl_family, me.nl_pid ? "assigned" : "0", me.nl_groups);
  R(set_link(nl, "lo", IFF_UP, IFF_UP));
  int lo = lo_index(nl);
  V("lo found %d", lo > 0);
  int err;
  std::vector<std::string> v = nl.dump(RTM_GETLINK, AF_UNSPEC, err);
  R(err);
  LOG_LINES(v, "link lo ");

  // Links by name and index, and what is not there.
  Req g1(RTM_GETLINK, NLM_F_REQUEST);
  g1.fixed<ifinfomsg>();
  g1.str(IFLA_IFNAME, "nosuch0");
  R(nl.call(g1));
  Req g2(RTM_GETLINK, NLM_F_REQUEST);
  g2.fixed<ifinfomsg>()->ifi_index = 999;
  R(nl.call(g2));
  Req g3(RTM_GETLINK, NLM_F_REQUEST);
  g3.fixed<ifinfomsg>();
  R(nl.call(g3));
  R(set_link(nl, "nosuch0", IFF_UP, IFF_UP));

  // MTU, then back.
  R(set_link(nl, "lo", 0, 0, 1500));
  v = nl.dump(RTM_GETLINK, AF_UNSPEC, err);
  LOG_LINES(v, "link lo ");
  R(set_link(nl, "lo", 0, 0, 65536));

  // Addresses.
  R(addr(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.9.0.1", 24, lo, "10.9.0.255"));
  R(addr(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.9.0.1", 24, lo, "10.9.0.255"));
  R(addr(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.9.0.2", 24, lo));
  R(addr(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.9.0.3", 24, 999));
  R(addr(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.9.0.3", 33, lo));
  R(addr(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, AF_INET6, "2001:db8::1", 64, lo));
  R(addr(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, AF_INET6, "2001:db8::1", 64, lo));
  R(addr(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, AF_INET6, "2001:db8::2", 129, lo));
  {
    Req r(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_CREATE);
    ifaddrmsg* i = r.fixed<ifaddrmsg>();
    i->ifa_family = AF_INET;
    i->ifa_prefixlen = 24;
    i->ifa_index = static_cast<uint32_t>(lo);
    R(nl.call(r));  // no IFA_LOCAL
  }
  v = nl.dump(RTM_GETADDR, AF_UNSPEC, err);
  R(err);
  LOG_LINES(v, "addr 10.9.|addr 127.0.0.1|addr 2001:db8|addr ::1/");
  v = nl.dump(RTM_GETADDR, AF_INET, err);
  LOG_LINES(v, "addr 10.9.");
  v = nl.dump(RTM_GETADDR, AF_INET6, err);
  LOG_LINES(v, "addr 10.9.|addr 2001:db8");

  // Routes.
  R(route(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.20.0.0", 16, lo));
  R(route(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.20.0.0", 16, lo));
  R(route(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.21.0.0", 16, lo, 7));
  R(route(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.22.0.1", 16, lo));
  R(route(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.22.0.0", 16, 999));
  R(route(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.22.0.0", 33, lo));
  R(route(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, AF_INET6, "2001:db8:1::", 48, lo));
  R(route(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, AF_INET6, "2001:db8:1::", 48, lo));
  R(route(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, AF_INET6, "2001:db8:2::", 48, lo, 5));
  v = nl.dump(RTM_GETROUTE, AF_UNSPEC, err);
  R(err);
  LOG_LINES(v, "route 10.2|route 2001:db8:1:|route 2001:db8:2:|route 2001:db8::/64");
  v = nl.dump(RTM_GETROUTE, AF_INET6, err);
  LOG_LINES(v, "route 10.2|route 2001:db8:1:|route 2001:db8:2:|route 2001:db8::/64");

  // ip route get.
  for (const char* d : {"10.20.1.1", "10.21.3.4", "10.9.0.1", "192.0.2.1"}) {
    Req r(RTM_GETROUTE, NLM_F_REQUEST);
    rtmsg* m = r.fixed<rtmsg>();
    m->rtm_family = AF_INET;
    r.in4(RTA_DST, d);
    R(nl.send(r) > 0);
    std::vector<Msg> ms = nl.collect(err);
    V("get %s: err %d n %zu", d, err, ms.size());
    for (Msg& m2 : ms) V("%s", nl.line(m2).c_str());
  }
  // The same through lo (RTA_OIF): a local address, lo's own.
  for (const char* d : {"10.9.0.1", "127.0.0.1", "127.0.0.5", "10.9.0.77"}) {
    Req r(RTM_GETROUTE, NLM_F_REQUEST);
    rtmsg* m = r.fixed<rtmsg>();
    m->rtm_family = AF_INET;
    r.in4(RTA_DST, d);
    r.u32(RTA_OIF, static_cast<uint32_t>(lo));
    R(nl.send(r) > 0);
    std::vector<Msg> ms = nl.collect(err);
    V("get %s oif lo: err %d n %zu", d, err, ms.size());
    for (Msg& m2 : ms) V("%s", nl.line(m2).c_str());
  }
  // All of the prefix of an address of lo is ours: a datagram to
  // 10.9.0.77 arrives.
  {
    int u = F(SYS(socket, AF_INET, SOCK_DGRAM, 0));
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_port = htons(7777);
    R(SYS(bind, u, reinterpret_cast<sockaddr*>(&any), sizeof any));
    sockaddr_in to = any;
    inet_pton(AF_INET, "10.9.0.77", &to.sin_addr);
    R(SYS(sendto, u, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to));
    pollfd pf{u, POLLIN, 0};
    R(SYS(poll, &pf, 1, 2000));
    char b;
    R(SYS(recv, u, &b, 1, MSG_DONTWAIT));
    SYS(close, u);
  }
  {
    Req r(RTM_GETROUTE, NLM_F_REQUEST);
    r.fixed<rtmsg>()->rtm_family = AF_INET6;
    r.in6(RTA_DST, "2001:db8:1::5");
    R(nl.send(r) > 0);
    std::vector<Msg> ms = nl.collect(err);
    V("get6: err %d n %zu", err, ms.size());
    for (Msg& m2 : ms) {
      rtmsg rm;
      std::memcpy(&rm, m2.body.data(), sizeof rm);
      auto a = attrs(m2.body, sizeof rm);
      // (Its source is left out: a tentative address is no source, and
      // on the host 2001:db8::1 may still be one.)
      V("get6 dst_len %u oif %s src %d", rm.rtm_dst_len,
        a.count(RTA_OIF) ? nl.ifname(static_cast<int>(u32_of(a[RTA_OIF]))).c_str() : "-", a.count(RTA_PREFSRC) > 0);
    }
  }

  // Deletions, twice each.
  R(route(nl, RTM_DELROUTE, 0, AF_INET, "10.20.0.0", 16, 0));
  R(route(nl, RTM_DELROUTE, 0, AF_INET, "10.20.0.0", 16, 0));
  R(route(nl, RTM_DELROUTE, 0, AF_INET, "10.21.0.0", 16, 0, 7));
  R(route(nl, RTM_DELROUTE, 0, AF_INET6, "2001:db8:1::", 48, 0));
  R(route(nl, RTM_DELROUTE, 0, AF_INET6, "2001:db8:1::", 48, 0));
  R(addr(nl, RTM_DELADDR, 0, AF_INET, "10.9.0.2", 24, lo));
  R(addr(nl, RTM_DELADDR, 0, AF_INET, "10.9.0.2", 24, lo));
  R(addr(nl, RTM_DELADDR, 0, AF_INET, "10.9.0.1", 24, 999));
  R(addr(nl, RTM_DELADDR, 0, AF_INET6, "2001:db8::1", 64, lo));
  R(addr(nl, RTM_DELADDR, 0, AF_INET6, "2001:db8::1", 64, lo));
  v = nl.dump(RTM_GETADDR, AF_UNSPEC, err);
  LOG_LINES(v, "addr 10.9.|addr 2001:db8");
  v = nl.dump(RTM_GETROUTE, AF_UNSPEC, err);
  LOG_LINES(v, "route 10.2|route 2001:db8:1:|route 2001:db8:2:|route 2001:db8::/64");

  // Types and families nobody serves.
  {
    Req r(RTM_NEWADDR, NLM_F_REQUEST);
    r.fixed<ifaddrmsg>()->ifa_family = AF_UNSPEC;
    R(nl.call(r));
    Req r2(RTM_GETADDR, NLM_F_REQUEST);
    r2.fixed<ifaddrmsg>()->ifa_family = AF_INET;
    R(nl.call(r2));
  }
  nl.close();
}

// A dump larger than one record, read with the smallest SO_RCVBUF: it
// comes in several records and nothing is lost; a record read into a
// short buffer is cut, with MSG_TRUNC.
template <class S>
void sc_big_dump(Log& L, const Env&) {
  if (!enter_netns<S>(L)) return;
  Nl<S> nl;
  R(nl.open());
  R(set_link(nl, "lo", IFF_UP, IFF_UP));
  int lo = lo_index(nl);
  constexpr int kRoutes = 120;
  int bad = 0;
  for (int i = 0; i < kRoutes; i++) {
    char d[32];
    snprintf(d, sizeof d, "10.%d.%d.0", 40 + i / 200, i % 200);
    if (route(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, AF_INET, d, 24, lo) != 0) bad++;
  }
  V("added, %d failed", bad);
  int one = 1;
  R(SYS(setsockopt, nl.fd, SOL_SOCKET, SO_RCVBUF, &one, sizeof one));
  nl.recvs = 0;
  int err;
  std::vector<std::string> v = nl.dump(RTM_GETROUTE, AF_INET, err);
  R(err);
  size_t ours = 0;
  for (const std::string& s : v)
    if (s.find("route 10.4") == 0) ours++;
  V("routes %zu, more than one record %d", ours, nl.recvs > 1);
  LOG_LINES(v, "route 10.40.1");

  // A short buffer: the record is cut.
  Req r(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
  r.fixed<ifinfomsg>();
  R(nl.send(r) > 0);
  char small[64];
  iovec iov{small, sizeof small};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  R(SYS(recvmsg, nl.fd, &mh, 0));
  V("flags trunc %d", (mh.msg_flags & MSG_TRUNC) != 0);
  nlmsghdr h;
  std::memcpy(&h, small, sizeof h);
  V("first type %u multi %d", h.nlmsg_type, (h.nlmsg_flags & NLM_F_MULTI) != 0);
  // The rest of the dump still comes, up to NLMSG_DONE.
  int done = 0;
  for (int i = 0; i < 100 && !done; i++) {
    std::vector<char> buf;
    long n = nl.recv_one(buf, true);
    if (n < 0) break;
    std::vector<Msg> ms;
    split(buf.data(), static_cast<size_t>(n), ms);
    for (Msg& m : ms)
      if (m.h.nlmsg_type == NLMSG_DONE) done = 1;
  }
  V("done seen %d", done);
  nl.close();
}

// Requests that are cut, too long, of unknown types or with bad
// attributes: the errors Linux gives (or silence), and the socket works
// afterwards.
template <class S>
void sc_malformed(Log& L, const Env&) {
  if (!enter_netns<S>(L)) return;
  Nl<S> nl;
  R(nl.open());
  R(set_link(nl, "lo", IFF_UP, IFF_UP));
  int lo = lo_index(nl);
  sockaddr_nl k{};
  k.nl_family = AF_NETLINK;
  auto sa = reinterpret_cast<sockaddr*>(&k);
  std::vector<char> buf;
  // Shorter than a header; a header whose length is too small; one whose
  // length runs past the end: ignored without a reply.
  char raw[64] = {};
  R(SYS(sendto, nl.fd, raw, 10, 0, sa, sizeof k));
  nlmsghdr h{};
  h.nlmsg_len = 8;
  h.nlmsg_type = RTM_GETLINK;
  h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  std::memcpy(raw, &h, sizeof h);
  R(SYS(sendto, nl.fd, raw, 32, 0, sa, sizeof k));
  h.nlmsg_len = 60;
  std::memcpy(raw, &h, sizeof h);
  R(SYS(sendto, nl.fd, raw, 32, 0, sa, sizeof k));
  R(nl.recv_one(buf, true));
  // A header alone (no family byte) asking for an ACK: acknowledged.
  h.nlmsg_len = 16;
  std::memcpy(raw, &h, sizeof h);
  R(SYS(sendto, nl.fd, raw, 16, 0, sa, sizeof k));
  R(nl.recv_one(buf, true) > 0);
  nlmsgerr e{};
  if (buf.size() >= NLMSG_HDRLEN + sizeof e) std::memcpy(&e, buf.data() + NLMSG_HDRLEN, sizeof e);
  V("ack error %d", e.error);
  {
    Req r(0x7ff, NLM_F_REQUEST);  // an unknown type
    r.fixed<rtgenmsg>()->rtgen_family = AF_INET;
    R(nl.call(r));
    Req r2(NLMSG_NOOP, NLM_F_REQUEST);  // a control message
    r2.fixed<rtgenmsg>();
    R(nl.call(r2));
    Req r3(RTM_GETLINK, 0);  // not a request
    r3.fixed<ifinfomsg>()->ifi_index = lo;
    R(nl.call(r3));
    Req r4(RTM_NEWADDR, NLM_F_REQUEST);  // shorter than an ifaddrmsg
    r4.fixed<rtgenmsg>()->rtgen_family = AF_INET;
    R(nl.call(r4));
    Req r5(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_CREATE);  // IFA_LOCAL of 2 bytes
    ifaddrmsg* i = r5.fixed<ifaddrmsg>();
    i->ifa_family = AF_INET;
    i->ifa_prefixlen = 24;
    i->ifa_index = static_cast<uint32_t>(lo);
    uint16_t two = 7;
    r5.attr(IFA_LOCAL, &two, 2);
    R(nl.call(r5));
    Req r6(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_CREATE);  // RTA_OIF of 1 byte
    rtmsg* m = r6.fixed<rtmsg>();
    m->rtm_family = AF_INET;
    m->rtm_dst_len = 8;
    m->rtm_type = RTN_UNICAST;
    r6.in4(RTA_DST, "10.0.0.0");
    uint8_t b = 1;
    r6.attr(RTA_OIF, &b, 1);
    R(nl.call(r6));
    Req r7(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_CREATE);  // an attribute header longer than the message
    ifaddrmsg* i7 = r7.fixed<ifaddrmsg>();
    i7->ifa_family = AF_INET;
    i7->ifa_prefixlen = 24;
    i7->ifa_index = static_cast<uint32_t>(lo);
    nlattr bad{200, IFA_LOCAL};
    std::memcpy(r7.buf + r7.len, &bad, sizeof bad);
    r7.len += 8;
    r7.hdr()->nlmsg_len = static_cast<uint32_t>(r7.len);
    R(nl.call(r7));
  }
  // Two requests in one send: two answers, in order.
  {
    Req a(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
    a.fixed<ifinfomsg>()->ifi_index = 999;
    a.hdr()->nlmsg_seq = 1;
    Req b(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK);
    rtmsg* m = b.fixed<rtmsg>();
    m->rtm_family = AF_INET;
    m->rtm_dst_len = 16;
    b.in4(RTA_DST, "10.77.0.0");
    b.hdr()->nlmsg_seq = 2;
    char two[2048];
    std::memcpy(two, a.buf, a.len);
    std::memcpy(two + a.len, b.buf, b.len);
    R(SYS(sendto, nl.fd, two, a.len + b.len, 0, sa, sizeof k));
    for (int i = 0; i < 2; i++) {
      long n = nl.recv_one(buf, true);
      std::vector<Msg> ms;
      if (n > 0) split(buf.data(), static_cast<size_t>(n), ms);
      for (Msg& m2 : ms) {
        int er = 0;
        std::memcpy(&er, m2.body.data(), sizeof er);
        V("reply seq %u type %u error %d", m2.h.nlmsg_seq, m2.h.nlmsg_type, er);
      }
    }
  }
  R(nl.recv_one(buf, true));
  V("lo again %d", lo_index(nl) == lo);
  nl.close();
}

// Notifications: a listener in the address and link groups sees the
// changes made through netlink and through the interface ioctls.
template <class S>
void sc_notify(Log& L, const Env&) {
  if (!enter_netns<S>(L)) return;
  Nl<S> nl, mon;
  R(nl.open());
  R(set_link(nl, "lo", IFF_UP, IFF_UP));
  int lo = lo_index(nl);
  R(mon.open(RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR));
  int g = RTNLGRP_LINK;
  R(SYS(setsockopt, mon.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g));
  sockaddr_nl me{};
  socklen_t ml = sizeof me;
  R(SYS(getsockname, mon.fd, reinterpret_cast<sockaddr*>(&me), &ml));
  V("groups %#x", me.nl_groups);
  R(addr(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.9.0.1", 24, lo));
  R(addr(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, AF_INET6, "2001:db8::1", 64, lo));
  R(addr(nl, RTM_DELADDR, 0, AF_INET, "10.9.0.1", 24, lo));
  R(addr(nl, RTM_DELADDR, 0, AF_INET6, "2001:db8::1", 64, lo));
  // The MTU through SIOCSIFMTU.
  int s = static_cast<int>(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  ifreq ifr{};
  std::strcpy(ifr.ifr_name, "lo");
  ifr.ifr_mtu = 9000;
  R(SYS(ioctl, s, SIOCSIFMTU, &ifr));
  SYS(close, s);
  pollfd p{mon.fd, POLLIN, 0};
  R(SYS(poll, &p, 1, 0));
  std::set<std::string> seen;
  for (int i = 0; i < 20; i++) {
    std::vector<char> buf;
    long n = mon.recv_one(buf, true);
    if (n < 0) {
      V("end %ld", n);
      break;
    }
    std::vector<Msg> ms;
    split(buf.data(), static_cast<size_t>(n), ms);
    for (Msg& m : ms) {
      std::string l = mon.line(m);
      if (m.h.nlmsg_type == RTM_NEWLINK || m.h.nlmsg_type == RTM_DELLINK) {
        ifinfomsg ii;
        std::memcpy(&ii, m.body.data(), sizeof ii);
        auto a = attrs(m.body, sizeof ii);
        l = "link " + std::string(a.count(IFLA_IFNAME) ? a[IFLA_IFNAME].c_str() : "?") + " mtu " +
            std::to_string(a.count(IFLA_MTU) ? u32_of(a[IFLA_MTU]) : 0);
      }
      // An IPv6 address is announced tentative, then again once its
      // (on lo: empty) duplicate detection ended; with the tentative flag
      // normalized, the second is the same line (which may come after
      // later changes: Linux finishes the detection in a work queue).
      if (!seen.insert(l).second) continue;
      V("from pid %u groups %#x: %s", mon.last_from.nl_pid, mon.last_from.nl_groups, l.c_str());
    }
  }
  nl.close();
  mon.close();
}

// The index of a link by name (its name noted for the client's lines).
template <class S>
int link_index(Nl<S>& nl, const char* name) {
  Req r(RTM_GETLINK, NLM_F_REQUEST);
  r.fixed<ifinfomsg>();
  r.str(IFLA_IFNAME, name);
  if (nl.send(r) < 0) return -1;
  int err;
  std::vector<Msg> ms = nl.collect(err);
  if (ms.empty()) return -1;
  ifinfomsg i;
  std::memcpy(&i, ms[0].body.data(), sizeof i);
  nl.names[i.ifi_index] = name;
  return i.ifi_index;
}

template <class S>
int neigh(Nl<S>& nl, uint16_t type, uint16_t flags, int family, const char* dst, int index, uint16_t state,
          const char* mac = nullptr, size_t maclen = 6) {
  Req r(type, NLM_F_REQUEST | flags);
  ndmsg* n = r.fixed<ndmsg>();
  n->ndm_family = static_cast<uint8_t>(family);
  n->ndm_ifindex = index;
  n->ndm_state = state;
  if (dst) {
    if (family == AF_INET6) r.in6(NDA_DST, dst);
    else r.in4(NDA_DST, dst);
  }
  if (mac) {
    unsigned char b[6];
    sscanf(mac, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]);
    r.attr(NDA_LLADDR, b, maclen);
  }
  return nl.call(r);
}

// Reads what a listener got so far: its lines, sorted, those matching
// keep.
template <class S>
std::vector<std::string> heard(Nl<S>& mon) {
  std::vector<std::string> out;
  for (int i = 0; i < 200; i++) {
    std::vector<char> buf;
    long n = mon.recv_one(buf, true);
    if (n < 0) break;
    std::vector<Msg> ms;
    split(buf.data(), static_cast<size_t>(n), ms);
    for (Msg& m : ms) {
      std::string l = mon.line(m);
      if (m.h.nlmsg_type == RTM_NEWLINK || m.h.nlmsg_type == RTM_DELLINK) {
        ifinfomsg ii;
        std::memcpy(&ii, m.body.data(), sizeof ii);
        auto a = attrs(m.body, sizeof ii);
        l = std::string(m.h.nlmsg_type == RTM_DELLINK ? "del " : "") + "link " +
            (a.count(IFLA_IFNAME) ? a[IFLA_IFNAME].c_str() : "?") + " up " + std::to_string(ii.ifi_flags & IFF_UP);
      }
      out.push_back(l);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The neighbour tables (ARP and IPv6 neighbour discovery) through
// RTM_NEWNEIGH, RTM_GETNEIGH and RTM_DELNEIGH: states, link-layer
// addresses, the create/excl/replace rules, every error case with its
// extended ACK message, and what a listener of RTNLGRP_NEIGH hears.
template <class S>
void sc_neigh(Log& L, const Env&) {
  if (!enter_netns<S>(L)) return;
  R(make_ether<S>());
  Nl<S> nl, mon;
  R(nl.open());
  R(mon.open());
  int g = RTNLGRP_NEIGH;
  R(SYS(setsockopt, mon.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g));
  R(set_link(nl, "lo", IFF_UP, IFF_UP));
  R(set_link(nl, "shmif0", IFF_UP, IFF_UP));
  int ix = link_index(nl, "shmif0");
  mon.names[ix] = "shmif0";
  V("shmif0 found %d", ix > 0);
  R(addr(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.1.0.1", 24, ix));
  uint16_t ce = NLM_F_CREATE | NLM_F_EXCL;
  R(neigh(nl, RTM_NEWNEIGH, ce, AF_INET, "10.1.0.5", ix, NUD_PERMANENT, "02:00:00:00:00:05"));
  R(neigh(nl, RTM_NEWNEIGH, ce, AF_INET, "10.1.0.5", ix, NUD_PERMANENT, "02:00:00:00:00:05"));
  R(neigh(nl, RTM_NEWNEIGH, ce, AF_INET, "10.1.0.6", ix, NUD_REACHABLE, "02:00:00:00:00:06"));
  R(neigh(nl, RTM_NEWNEIGH, ce, AF_INET, "10.1.0.7", ix, NUD_STALE, "02:00:00:00:00:07"));
  R(neigh(nl, RTM_NEWNEIGH, ce, AF_INET6, "2001:db8:5::7", ix, NUD_NOARP, "02:00:00:00:00:17"));
  R(neigh(nl, RTM_NEWNEIGH, ce, AF_INET6, "fe80::8", ix, NUD_PERMANENT, "02:00:00:00:00:18"));
  // A different address without NLM_F_REPLACE leaves the entry; with it,
  // the entry changes.
  R(neigh(nl, RTM_NEWNEIGH, NLM_F_CREATE, AF_INET, "10.1.0.5", ix, NUD_PERMANENT, "02:00:00:00:00:99"));
  R(neigh(nl, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, AF_INET, "10.1.0.6", ix, NUD_PERMANENT,
          "02:00:00:00:00:66"));
  // Errors.
  R(neigh(nl, RTM_NEWNEIGH, 0, AF_INET, "10.1.0.9", ix, NUD_PERMANENT, "02:00:00:00:00:09"));
  R(neigh(nl, RTM_NEWNEIGH, ce, AF_INET, "10.1.0.9", 999, NUD_PERMANENT, "02:00:00:00:00:09"));
  R(neigh(nl, RTM_NEWNEIGH, ce, AF_INET, "10.1.0.9", 0, NUD_PERMANENT, "02:00:00:00:00:09"));
  R(neigh(nl, RTM_NEWNEIGH, ce, AF_UNSPEC, "10.1.0.9", ix, NUD_PERMANENT, "02:00:00:00:00:09"));

  int err;
  std::vector<std::string> v = nl.dump(RTM_GETNEIGH, AF_UNSPEC, err);
  R(err);
  LOG_LINES(v, "neigh 10.1.|neigh 2001:db8:5::|neigh fe80::8 ");
  v = nl.dump(RTM_GETNEIGH, AF_INET, err);
  LOG_LINES(v, "neigh 10.1.|neigh 2001:db8:5::|neigh fe80::8 ");
  v = nl.dump(RTM_GETNEIGH, AF_INET6, err);
  LOG_LINES(v, "neigh 10.1.|neigh 2001:db8:5::|neigh fe80::8 ");

  // Single entries.
  for (const char* d : {"10.1.0.5", "10.1.0.9"}) {
    Req r(RTM_GETNEIGH, NLM_F_REQUEST);
    ndmsg* n = r.fixed<ndmsg>();
    n->ndm_family = AF_INET;
    n->ndm_ifindex = ix;
    r.in4(NDA_DST, d);
    R(nl.send(r) > 0);
    std::vector<Msg> ms = nl.collect(err);
    V("get %s: err %d n %zu", d, err, ms.size());
    for (Msg& m : ms) V("%s", nl.line(m).c_str());
  }

  // The extended ACK: each error's message and the attribute at fault.
  int one = 1;
  R(SYS(setsockopt, nl.fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one));
  for (int cap = 0; cap < 2; cap++) {
    R(SYS(setsockopt, nl.fd, SOL_NETLINK, NETLINK_CAP_ACK, &cap, sizeof cap));
    std::string msg;
    uint32_t offs;
    auto ext = [&](Req& r, int line) {
      int e = nl.call_ext(r, msg, offs);
      L.add(line, "ext: err %d msg '%s' offs %u", e, msg.c_str(), offs);
    };
    {
      Req r(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE);  // no NDA_DST
      r.fixed<ndmsg>()->ndm_family = AF_INET;
      ext(r, __LINE__);
    }
    {
      Req r(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE);  // a short link-layer address
      ndmsg* n = r.fixed<ndmsg>();
      n->ndm_family = AF_INET;
      n->ndm_ifindex = ix;
      n->ndm_state = NUD_PERMANENT;
      r.in4(NDA_DST, "10.1.0.9");
      r.attr(NDA_LLADDR, "\x02\x00\x00", 3);
      ext(r, __LINE__);
    }
    {
      Req r(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE);  // a short network address
      ndmsg* n = r.fixed<ndmsg>();
      n->ndm_family = AF_INET6;
      n->ndm_ifindex = ix;
      n->ndm_state = NUD_PERMANENT;
      r.in4(NDA_DST, "10.1.0.9");
      ext(r, __LINE__);
    }
    {
      Req r(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE);  // no device
      ndmsg* n = r.fixed<ndmsg>();
      n->ndm_family = AF_INET;
      n->ndm_state = NUD_PERMANENT;
      r.in4(NDA_DST, "10.1.0.9");
      ext(r, __LINE__);
    }
    for (int k = 0; k < 7; k++) {  // the get request's checks
      Req r(RTM_GETNEIGH, NLM_F_REQUEST);
      ndmsg* n = r.fixed<ndmsg>();
      n->ndm_family = k == 3 ? AF_UNSPEC : AF_INET;
      n->ndm_ifindex = k == 5 ? 0 : k == 6 ? 999 : ix;
      if (k == 1) n->ndm_state = NUD_REACHABLE;
      if (k == 2) n->ndm_flags = NTF_ROUTER;
      if (k != 4) r.in4(NDA_DST, "10.1.0.5");
      if (k == 0) r.u32(NDA_PROBES, 1);
      ext(r, __LINE__);
    }
    {
      Req r(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_CREATE);  // RTA_OIF of 1 byte
      rtmsg* m = r.fixed<rtmsg>();
      m->rtm_family = AF_INET;
      m->rtm_dst_len = 8;
      m->rtm_type = RTN_UNICAST;
      r.in4(RTA_DST, "10.0.0.0");
      uint8_t b = 1;
      r.attr(RTA_OIF, &b, 1);
      ext(r, __LINE__);
    }
    {
      Req r(RTM_DELNEIGH, NLM_F_REQUEST);  // an acknowledgement carries nothing
      ndmsg* n = r.fixed<ndmsg>();
      n->ndm_family = AF_INET;
      n->ndm_ifindex = ix;
      r.in4(NDA_DST, cap ? "10.1.0.6" : "10.1.0.7");
      ext(r, __LINE__);
    }
  }
  R(neigh(nl, RTM_DELNEIGH, 0, AF_INET, "10.1.0.7", ix, 0));
  R(neigh(nl, RTM_DELNEIGH, 0, AF_INET, "10.1.0.5", 0, 0));
  R(neigh(nl, RTM_DELNEIGH, 0, AF_INET6, "2001:db8:5::7", ix, 0));
  v = nl.dump(RTM_GETNEIGH, AF_UNSPEC, err);
  LOG_LINES(v, "neigh 10.1.|neigh 2001:db8:5::|neigh fe80::8 ");
  v = heard(mon);
  LOG_LINES(v, "neigh 10.1.|neigh 2001:db8:5::|neigh fe80::8 ");
  nl.close();
  mon.close();
}

// Waits (a few seconds at most) until a route dump has a line starting
// with prefix: a host kernel's work queue has done its part by then.
template <class S>
void wait_route(Nl<S>& nl, const char* prefix) {
  for (int i = 0; i < 5000; i++) {
    int err;
    for (const std::string& l : nl.dump(RTM_GETROUTE, AF_UNSPEC, err))
      if (l.starts_with(prefix)) return;
    usleep(1000);
  }
}

// An interface that goes (RTM_DELLINK): a listener hears its link go
// down, its neighbours, IPv6 routes, addresses and their local routes go,
// and the link go, as Linux tells them (IPv4 routes through it are
// flushed without a word).
template <class S>
void sc_link_gone(Log& L, const Env&) {
  if (!enter_netns<S>(L)) return;
  R(make_ether<S>());
  Nl<S> nl, mon;
  R(nl.open());
  R(set_link(nl, "lo", IFF_UP, IFF_UP));
  R(set_link(nl, "shmif0", IFF_UP, IFF_UP));
  int ix = link_index(nl, "shmif0");
  R(addr(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.1.0.1", 24, ix));
  {
    Req r(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
    ifaddrmsg* i = r.fixed<ifaddrmsg>();
    i->ifa_family = AF_INET6;
    i->ifa_prefixlen = 64;
    i->ifa_flags = IFA_F_NODAD;
    i->ifa_index = static_cast<uint32_t>(ix);
    r.in6(IFA_LOCAL, "2001:db8:5::1");
    R(nl.call(r));
  }
  R(route(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.30.0.0", 16, ix));
  R(route(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, AF_INET6, "2001:db8:30::", 48, ix));
  R(neigh(nl, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.1.0.5", ix, NUD_PERMANENT, "02:00:00:00:00:05"));
  // Linux announces an IPv6 address made without DAD (RTM_NEWADDR) from
  // a work queue, and puts its route of table local in place right after:
  // on a loaded host that comes late enough for the monitor below to hear
  // it. Wait for the route, which says the announcement went.
  wait_route<S>(nl, "route 2001:db8:5::1/128 family 10 table 255/255");
  R(mon.open(RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE |
             RTMGRP_IPV6_ROUTE));
  mon.names[ix] = "shmif0";
  {
    Req r(RTM_DELLINK, NLM_F_REQUEST);
    r.fixed<ifinfomsg>()->ifi_index = ix;
    R(nl.call(r));
  }
  R(link_index(nl, "shmif0"));
  std::vector<std::string> v = heard(mon);
  // Linux puts an IPv6 address's route of table local in place from a
  // work queue: whether it was there to be removed is a race on the host.
  std::erase_if(v, [](const std::string& l) { return l.find("/128 family 10 table 255/255") != std::string::npos; });
  LOG_LINES(v, "link shmif0|neigh 10.1.|2001:db8:5::|2001:db8:30::|10.1.0.|10.30.");
  // lo cannot go.
  {
    Req r(RTM_DELLINK, NLM_F_REQUEST);
    r.fixed<ifinfomsg>();
    r.str(IFLA_IFNAME, "lo");
    R(nl.call(r));
  }
  nl.close();
  mon.close();
}

// Policy rules as `ip rule` and `ip -6 rule` dump them: Linux's default
// ones (local, main, default; IPv6 without default), in a strict dump
// too. This kernel refuses to change them
// (EOPNOTSUPP, checked on its side only: the host takes a new rule).
template <class S>
void sc_rules(Log& L, const Env&) {
  if (!enter_netns<S>(L)) return;
  Nl<S> nl;
  R(nl.open());
  int err;
  for (uint8_t f : {uint8_t{AF_INET}, uint8_t{AF_INET6}}) {
    std::vector<std::string> v = nl.dump(RTM_GETRULE, f, err);
    R(err);
    LOG_LINES(v, "rule ");
  }
  int one = 1;
  R(SYS(setsockopt, nl.fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one));
  std::vector<std::string> v = nl.dump(RTM_GETRULE, AF_INET, err);
  R(err);
  LOG_LINES(v, "rule ");
  if constexpr (S::kRump) {
    Req r(RTM_NEWRULE, NLM_F_REQUEST | NLM_F_CREATE);
    fib_rule_hdr* h = r.fixed<fib_rule_hdr>();
    h->family = AF_INET;
    h->table = 100;
    h->action = FR_ACT_TO_TBL;
    r.u32(FRA_PRIORITY, 1000);
    CHECK(nl.call(r) == EOPNOTSUPP);
  }
  nl.close();
}

// Routing tables besides main: routes added to numbered tables (one past
// 255, in RTA_TABLE alone) are kept and listed, a dump that asks for one
// table (strict checking) gets that table's, lookups use main and then
// default, and deletions name their table.
template <class S>
void sc_tables(Log& L, const Env&) {
  if (!enter_netns<S>(L)) return;
  Nl<S> nl;
  R(nl.open());
  R(set_link(nl, "lo", IFF_UP, IFF_UP));
  int lo = lo_index(nl);
  uint16_t ce = NLM_F_CREATE | NLM_F_EXCL;
  R(route(nl, RTM_NEWROUTE, ce, AF_INET, "10.50.0.0", 16, lo, 0, 100));
  R(route(nl, RTM_NEWROUTE, ce, AF_INET, "10.50.0.0", 16, lo, 0, 100));
  R(route(nl, RTM_NEWROUTE, ce, AF_INET, "10.50.0.0", 16, lo));
  R(route(nl, RTM_NEWROUTE, ce, AF_INET, "10.51.0.0", 16, lo, 0, 1000));
  R(route(nl, RTM_NEWROUTE, ce, AF_INET, "10.52.0.0", 16, lo, 0, RT_TABLE_DEFAULT));
  R(route(nl, RTM_NEWROUTE, ce, AF_INET6, "2001:db8:50::", 48, lo, 0, 100));
  int err;
  std::vector<std::string> v = nl.dump(RTM_GETROUTE, AF_UNSPEC, err);
  R(err);
  LOG_LINES(v, "route 10.5|route 2001:db8:50:");
  // One table, asked for with strict checking.
  int one = 1;
  R(SYS(setsockopt, nl.fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one));
  for (uint32_t t : {100u, 1000u}) {
    Req r(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP);
    rtmsg* m = r.fixed<rtmsg>();
    m->rtm_family = AF_INET;
    m->rtm_table = static_cast<uint8_t>(t < 256 ? t : RT_TABLE_UNSPEC);
    if (t >= 256) r.u32(RTA_TABLE, t);
    R(nl.send(r) > 0);
    std::vector<Msg> ms = nl.collect(err);
    V("table %u: err %d", t, err);
    std::vector<std::string> lines;
    for (Msg& m2 : ms) lines.push_back(nl.line(m2));
    std::sort(lines.begin(), lines.end());
    LOG_LINES(lines, "route ");
  }
  int zero = 0;
  R(SYS(setsockopt, nl.fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &zero, sizeof zero));
  // Lookups: main, then default (IPv4 only); table 100 and 1000 are
  // not consulted. IPv4 answers say main, IPv6 ones the table the route
  // came from.
  R(route(nl, RTM_NEWROUTE, ce, AF_INET6, "2001:db8:52::", 48, lo, 0, RT_TABLE_DEFAULT));
  for (const char* d : {"10.50.1.1", "10.51.1.1", "10.52.1.1", "2001:db8:50::1", "2001:db8:52::1", "::1"}) {
    bool v6 = std::strchr(d, ':') != nullptr;
    Req r(RTM_GETROUTE, NLM_F_REQUEST);
    r.fixed<rtmsg>()->rtm_family = v6 ? AF_INET6 : AF_INET;
    if (v6) r.in6(RTA_DST, d);
    else r.in4(RTA_DST, d);
    R(nl.send(r) > 0);
    std::vector<Msg> ms = nl.collect(err);
    V("get %s: err %d n %zu", d, err, ms.size());
    for (Msg& m2 : ms) {
      rtmsg rm;
      std::memcpy(&rm, m2.body.data(), sizeof rm);
      auto a = attrs(m2.body, sizeof rm);
      V("get %s table %u/%u type %u", d, rm.rtm_table, a.count(RTA_TABLE) ? u32_of(a[RTA_TABLE]) : 0, rm.rtm_type);
    }
  }
  R(route(nl, RTM_DELROUTE, 0, AF_INET6, "2001:db8:52::", 48, 0, 0, RT_TABLE_DEFAULT));
  // Deletions name their table (0: main).
  R(route(nl, RTM_DELROUTE, 0, AF_INET, "10.51.0.0", 16, 0));
  R(route(nl, RTM_DELROUTE, 0, AF_INET, "10.51.0.0", 16, 0, 0, 1000));
  R(route(nl, RTM_DELROUTE, 0, AF_INET, "10.50.0.0", 16, 0, 0, 100));
  R(route(nl, RTM_DELROUTE, 0, AF_INET, "10.50.0.0", 16, 0, 0, 100));
  R(route(nl, RTM_DELROUTE, 0, AF_INET, "10.52.0.0", 16, 0, 0, RT_TABLE_DEFAULT));
  R(route(nl, RTM_DELROUTE, 0, AF_INET6, "2001:db8:50::", 48, 0, 0, 100));
  v = nl.dump(RTM_GETROUTE, AF_UNSPEC, err);
  LOG_LINES(v, "route 10.5|route 2001:db8:50:");
  nl.close();
}

void diff(ScenarioFn host, ScenarioFn rump) {
  if (!can_unshare_net()) {
    WARN("rtnetlink differential test skipped: no CLONE_NEWNET (needs root)");
    return;
  }
  run_diff(host, rump);
}

}  // namespace

TEST_CASE("rtnetlink: links, addresses and routes as the host kernel's", "[netlink][diff]") {
  diff(sc_link_addr_route<K<false>>, sc_link_addr_route<K<true>>);
}

TEST_CASE("rtnetlink: a dump larger than the receive buffer comes in pieces", "[netlink][diff]") {
  diff(sc_big_dump<K<false>>, sc_big_dump<K<true>>);
}

TEST_CASE("rtnetlink: malformed requests get Linux's errors or silence", "[netlink][diff]") {
  diff(sc_malformed<K<false>>, sc_malformed<K<true>>);
}

TEST_CASE("rtnetlink: listeners see changes made by netlink and ioctl", "[netlink][diff]") {
  diff(sc_notify<K<false>>, sc_notify<K<true>>);
}

TEST_CASE("rtnetlink: neighbour tables and extended ACKs as the host kernel's", "[netlink][diff]") {
  diff(sc_neigh<K<false>>, sc_neigh<K<true>>);
}

TEST_CASE("rtnetlink: ip rule lists Linux's default policy rules; adding one is refused", "[netlink][diff]") {
  diff(sc_rules<K<false>>, sc_rules<K<true>>);
}

TEST_CASE("rtnetlink: a removed interface announces what goes with it", "[netlink][diff]") {
  diff(sc_link_gone<K<false>>, sc_link_gone<K<true>>);
}

TEST_CASE("rtnetlink: routes in tables besides main", "[netlink][diff]") {
  diff(sc_tables<K<false>>, sc_tables<K<true>>);
}
