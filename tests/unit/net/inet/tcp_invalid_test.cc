// Answers to invalid segments: a connection answers a segment without
// data that is out of its window (or acknowledges what was never sent)
// with an ACK, at most once per net.ipv4.tcp_invalid_ratelimit
// milliseconds, as Linux's tcp_oow_rate_limited, so that two ends that
// each find the other's segments invalid cannot answer each other in a
// loop. Watched through a raw socket on lo, on a sim kernel whose clock
// moves only when told.
#include <netinet/in.h>

#include <cstdint>
#include <vector>

#include <rump/rump.h>

#include "net_diff.h"
#include "tcp_raw.h"
#include "tcp_scenario.h"

using namespace net_test;
using namespace tcp_raw;

namespace {

using RK = K<true>;

// The ACKs from sport to dport among v.
int acks(const std::vector<Seen>& v, uint16_t sport, uint16_t dport) {
  int n = 0;
  for (const Seen& s : v) n += s.sport == sport && s.dport == dport && s.flags == kAck;
  return n;
}

}  // namespace

TEST_CASE("tcp: out-of-window segments without data get one ACK per net.ipv4.tcp_invalid_ratelimit (sim kernel)",
          "[inet][tcp]") {
  rump_test::KernelUp up(rump_test::BootOpts{.backend = "sim"});
  int r = static_cast<int>(rump_sys_socket(AF_INET, SOCK_RAW, IPPROTO_TCP));
  REQUIRE(r >= 0);
  int l = static_cast<int>(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
  REQUIRE(l >= 0);
  sockaddr_in a = tcp_in4("127.0.0.1", 0);
  REQUIRE(rump_sys_bind(l, tcp_sa(a), sizeof a) == 0);
  REQUIRE(rump_sys_listen(l, 8) == 0);
  uint16_t port = tcp_port<RK>(l);
  sockaddr_in to = tcp_in4("127.0.0.1", port);
  timespec ms600{0, 600000000};
  // Three segments numbered far outside the client's window, one after
  // the other, then one more 600 ms (of the sim clock) later: what the
  // client answers to each.
  auto probe = [&](int limit_ms) {
    REQUIRE(rump_sys_sysctlbyname("net.ipv4.tcp_invalid_ratelimit", nullptr, nullptr, &limit_ms,
                                  sizeof limit_ms) == 0);
    int c = static_cast<int>(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
    REQUIRE(rump_sys_connect(c, tcp_sa(to), sizeof to) == 0);
    int s = static_cast<int>(rump_sys_accept(l, nullptr, nullptr));
    REQUIRE(s >= 0);
    uint16_t cport = tcp_port<RK>(c);
    std::vector<Seen> v = drain(r);
    const Seen* synack = find(v, port, cport, 0x02 | kAck);
    REQUIRE(synack);
    uint32_t far = synack->seq + 1 + 0x40000000u;
    std::vector<int> got;
    for (int i = 0; i < 3; i++) {
      inject(r, port, cport, far, 0, kAck);
      got.push_back(acks(drain(r), cport, port));
    }
    REQUIRE(rump_sys_nanosleep(&ms600, nullptr) == 0);
    inject(r, port, cport, far, 0, kAck);
    got.push_back(acks(drain(r), cport, port));
    // The connection is still there and works.
    REQUIRE(rump_sys_send(c, "x", 1, 0) == 1);
    char b;
    CHECK(rump_sys_recv(s, &b, 1, 0) == 1);
    rump_sys_close(s);
    rump_sys_close(c);
    return got;
  };
  CHECK(probe(500) == std::vector<int>{1, 0, 0, 1});
  CHECK(probe(0) == std::vector<int>{1, 1, 1, 1});
  CHECK(probe(1000) == std::vector<int>{1, 0, 0, 0});
  rump_sys_close(l);
  rump_sys_close(r);
}
