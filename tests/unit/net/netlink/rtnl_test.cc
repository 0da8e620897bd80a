// rtnetlink against the rump kernel alone: what the host cannot show for
// comparison (notifications of changes made through rump_pub_netconfig_*,
// seeded random requests), socket-level rules (port ids, options).
#include <rump/rumpnet.h>

#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "nl_scenario.h"

using namespace net_test;
using namespace nl_test;

namespace {

using RumpNl = Nl<K<true>>;

void in_kernel(const std::function<void()>& fn) {
  Env env = make_env();
  in_rump(env, fn);
  std::error_code ec;
  std::filesystem::remove_all(env.dir, ec);
}

// Every record waiting on nl, split (CHECKed to be well formed).
std::vector<Msg> drain(RumpNl& nl) {
  std::vector<Msg> all;
  for (;;) {
    std::vector<char> buf;
    long n = nl.recv_one(buf, true);
    if (n < 0) {
      CHECK(n == -EAGAIN);
      return all;
    }
    CHECK(split(buf.data(), static_cast<size_t>(n), all));
  }
}

}  // namespace

TEST_CASE("rtnetlink: netconfig changes reach listeners", "[netlink]") {
  in_kernel([] {
    RumpNl mon;
    REQUIRE(mon.open(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR));
    REQUIRE(rump_pub_netconfig_ipv4_ifaddr_cidr("lo", "10.5.0.1", 24) == 0);
    std::vector<Msg> ms = drain(mon);
    std::vector<std::string> lines;
    for (Msg& m : ms) lines.push_back(mon.line(m));
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].find("addr 10.5.0.1/24") == 0);
    // The address's own route of table local, then (on lo) the prefix
    // route, a local route of table local too.
    CHECK(lines[1].find("route 10.5.0.1/32 family 2 table 255/255 proto 2 scope 254 type 2") == 0);
    CHECK(lines[2].find("route 10.5.0.0/24 family 2 table 255/255 proto 2 scope 254 type 2") == 0);
    CHECK(mon.last_from.nl_pid == 0);
    CHECK(mon.last_from.nl_groups == RTMGRP_IPV4_ROUTE);
    REQUIRE(rump_pub_netconfig_ifdown("lo") == 0);
    ms = drain(mon);
    REQUIRE(ms.size() == 1);
    CHECK(ms[0].h.nlmsg_type == RTM_NEWLINK);
    ifinfomsg i;
    std::memcpy(&i, ms[0].body.data(), sizeof i);
    CHECK(!(i.ifi_flags & IFF_UP));
    REQUIRE(rump_pub_netconfig_ifup("lo") == 0);
    CHECK(drain(mon).size() == 1);
    // Without a group, nothing.
    RumpNl quiet;
    REQUIRE(quiet.open());
    REQUIRE(rump_pub_netconfig_ipv4_ifaddr_cidr("lo", "10.6.0.1", 24) == 0);
    CHECK(drain(quiet).empty());
    CHECK(drain(mon).size() == 3);
  });
}

TEST_CASE("rtnetlink: port ids are unique and bind rules are Linux's", "[netlink]") {
  in_kernel([] {
    RumpNl a, b;
    REQUIRE(a.open());
    REQUIRE(b.open());
    sockaddr_nl na{}, nb{};
    socklen_t l = sizeof na;
    REQUIRE(rump_sys_getsockname(a.fd, reinterpret_cast<sockaddr*>(&na), &l) == 0);
    REQUIRE(rump_sys_getsockname(b.fd, reinterpret_cast<sockaddr*>(&nb), &l) == 0);
    CHECK(na.nl_pid == static_cast<uint32_t>(rump_sys_getpid()));
    CHECK(nb.nl_pid != na.nl_pid);
    CHECK(static_cast<int32_t>(nb.nl_pid) < 0);
    // Another id once bound: EINVAL; a taken one: EADDRINUSE.
    sockaddr_nl x{};
    x.nl_family = AF_NETLINK;
    x.nl_pid = 4242;
    CHECK(rump_sys_bind(a.fd, reinterpret_cast<sockaddr*>(&x), sizeof x) == -1);
    CHECK(errno == EINVAL);
    int c = rump_sys_socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE);
    REQUIRE(c >= 0);
    x.nl_pid = na.nl_pid;
    CHECK(rump_sys_bind(c, reinterpret_cast<sockaddr*>(&x), sizeof x) == -1);
    CHECK(errno == EADDRINUSE);
    x.nl_family = AF_INET;
    CHECK(rump_sys_bind(c, reinterpret_cast<sockaddr*>(&x), sizeof x) == -1);
    CHECK(errno == EINVAL);
    CHECK(rump_sys_bind(c, reinterpret_cast<sockaddr*>(&x), 4) == -1);
    CHECK(errno == EINVAL);
    // Options: accepted, read back; unknown ones ENOPROTOOPT.
    int one = 1, v = 0;
    socklen_t vl = sizeof v;
    CHECK(rump_sys_setsockopt(c, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) == 0);
    CHECK(rump_sys_setsockopt(c, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one) == 0);
    CHECK(rump_sys_getsockopt(c, SOL_NETLINK, NETLINK_EXT_ACK, &v, &vl) == 0);
    CHECK(v == 1);
    CHECK(rump_sys_setsockopt(c, SOL_NETLINK, 99, &one, sizeof one) == -1);
    CHECK(errno == ENOPROTOOPT);
    int g = 0;
    CHECK(rump_sys_setsockopt(c, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) == -1);
    CHECK(errno == EINVAL);
    g = RTNLGRP_IPV6_ROUTE;
    CHECK(rump_sys_setsockopt(c, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) == 0);
    uint32_t groups[2] = {};
    vl = sizeof groups;
    CHECK(rump_sys_getsockopt(c, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &vl) == 0);
    CHECK(groups[0] == RTMGRP_IPV6_ROUTE);
    // Other types and protocols.
    CHECK(rump_sys_socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE) == -1);
    CHECK(errno == ESOCKTNOSUPPORT);
    CHECK(rump_sys_socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC) == -1);
    CHECK(errno == EPROTONOSUPPORT);
    rump_sys_close(c);
    a.close();
    b.close();
  });
}

TEST_CASE("rtnetlink: seeded random requests never break the kernel", "[netlink]") {
  in_kernel([] {
    RumpNl nl;
    REQUIRE(nl.open());
    std::mt19937 rng(12345);
    int replies = 0;
    for (int iter = 0; iter < 400; iter++) {
      // A plausible header over random bytes, with random cuts.
      char buf[256];
      for (char& c : buf) c = static_cast<char>(rng());
      size_t len = 16 + rng() % (sizeof buf - 16);
      nlmsghdr h{};
      h.nlmsg_len = static_cast<uint32_t>(rng() % 4 ? len : rng() % 300);
      static const uint16_t kTypes[] = {RTM_NEWLINK, RTM_GETLINK, RTM_SETLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR,
                                        RTM_GETADDR, RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE, NLMSG_NOOP, 0x3ff};
      h.nlmsg_type = kTypes[rng() % 12];
      h.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | (rng() % 3 == 0 ? NLM_F_DUMP : 0) |
                                            (rng() % 2 ? NLM_F_CREATE : 0) | (rng() % 2 ? NLM_F_REPLACE : 0));
      h.nlmsg_seq = static_cast<uint32_t>(iter);
      std::memcpy(buf, &h, sizeof h);
      // Keep families and attribute lengths plausible half of the time.
      if (rng() % 2) buf[16] = static_cast<char>(rng() % 2 ? AF_INET : AF_INET6);
      long n = rump_sys_sendto(nl.fd, buf, len, 0, nullptr, 0);
      CHECK(n == static_cast<long>(len));
      for (Msg& m : drain(nl)) {
        replies++;
        CHECK(m.h.nlmsg_len >= NLMSG_HDRLEN);
      }
    }
    CHECK(replies > 0);
    // lo is still there and the socket still answers.
    CHECK(nl.dump(RTM_GETLINK, AF_UNSPEC, replies).size() >= 1);
    nl.close();
  });
}

// Addresses come and go through netconfig on one CPU while listeners
// subscribe, read and leave and another socket dumps on the other: every
// record stays well formed and nothing deadlocks (the table lock is taken
// before socket locks, never under one).
TEST_CASE("rtnetlink: notifications and dumps race with changes", "[netlink][concurrency]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up({.ncpu = 2});
    std::atomic<int> failures{0};
    std::atomic<bool> stop{false}, go{false};
    constexpr int kRounds = 200;
    std::thread changer([&] {
      rump_kernel_set_current(up.k);
      while (!go) std::this_thread::yield();
      for (int i = 0; i < kRounds; i++) {
        char a[32];
        snprintf(a, sizeof a, "10.7.%d.1", i % 4);
        if (rump_pub_netconfig_ipv4_ifaddr_cidr("lo", a, 24) != 0) failures++;
        if ((i % 2 ? rump_pub_netconfig_ifup("lo") : rump_pub_netconfig_ifdown("lo")) != 0) failures++;
      }
      stop = true;
    });
    std::thread listener([&] {
      rump_kernel_set_current(up.k);
      while (!stop) {
        RumpNl mon;
        if (!mon.open(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE)) {
          failures++;
          break;
        }
        for (int j = 0; j < 20; j++) {
          std::vector<char> buf;
          long n = mon.recv_one(buf, true);
          if (n == -EAGAIN) continue;
          std::vector<Msg> ms;
          if (n < 0 && n != -ENOBUFS) failures++;
          if (n > 0 && !split(buf.data(), static_cast<size_t>(n), ms)) failures++;
        }
        mon.close();
      }
    });
    rump_test::Kid kid = rump_test::fork_kid();
    rump_lwproc_switch(kid.l);
    RumpNl nl;
    REQUIRE(nl.open());
    int dumps = 0;
    go = true;
    while (!stop || dumps < 20) {
      int err = 0;
      nl.dump(RTM_GETADDR, AF_INET, err);
      if (err != 0) failures++;
      dumps++;
    }
    changer.join();
    listener.join();
    nl.close();
    rump_lwproc_switch(nullptr);
    CHECK(failures == 0);
    CHECK(dumps > 0);
  });
}
