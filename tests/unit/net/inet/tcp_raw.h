// tcp_raw.h: TCP segments seen and made by hand on lo, through a raw
// IPPROTO_TCP socket of the kernel under test (which gets a copy of every
// TCP packet lo delivers), for tests that watch what a connection sends
// in answer to segments no stack would send.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#include "net_diff.h"
#include "tcp_scenario.h"

namespace tcp_raw {

using net_test::tcp_in4;
using net_test::tcp_sa;

// One TCP segment as a raw socket saw it (ports and numbers host order).
struct Seen {
  uint16_t sport = 0, dport = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
};

// Every TCP segment queued on raw socket r so far.
inline std::vector<Seen> drain(int r) {
  std::vector<Seen> out;
  uint8_t buf[2048];
  for (;;) {
    long n = rump_sys_recv(r, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) break;
    size_t hl = (buf[0] & 0xfu) * 4u;
    if (static_cast<size_t>(n) < hl + 20) continue;
    const uint8_t* t = buf + hl;
    Seen s;
    s.sport = static_cast<uint16_t>(t[0] << 8 | t[1]);
    s.dport = static_cast<uint16_t>(t[2] << 8 | t[3]);
    s.seq = uint32_t{t[4]} << 24 | uint32_t{t[5]} << 16 | uint32_t{t[6]} << 8 | t[7];
    s.ack = uint32_t{t[8]} << 24 | uint32_t{t[9]} << 16 | uint32_t{t[10]} << 8 | t[11];
    s.flags = t[13];
    out.push_back(s);
  }
  return out;
}

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;

// The first segment from sport to dport with all of flags set.
inline const Seen* find(const std::vector<Seen>& v, uint16_t sport, uint16_t dport, uint8_t flags) {
  for (const Seen& s : v)
    if (s.sport == sport && s.dport == dport && (s.flags & flags) == flags) return &s;
  return nullptr;
}

// Sends a bare TCP header (no options, no payload) from 127.0.0.1:sport
// to 127.0.0.1:dport through raw socket r, with its checksum.
inline void inject(int r, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags) {
  uint8_t t[20] = {};
  t[0] = static_cast<uint8_t>(sport >> 8);
  t[1] = static_cast<uint8_t>(sport);
  t[2] = static_cast<uint8_t>(dport >> 8);
  t[3] = static_cast<uint8_t>(dport);
  for (int i = 0; i < 4; i++) {
    t[4 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
    t[8 + i] = static_cast<uint8_t>(ack >> (24 - 8 * i));
  }
  t[12] = 5 << 4;
  t[13] = flags;
  t[14] = 0xff;  // window 65535
  t[15] = 0xff;
  // Pseudo header: 127.0.0.1 twice, protocol, length.
  uint32_t sum = 0x7f00 + 0x0001 + 0x7f00 + 0x0001 + IPPROTO_TCP + sizeof t;
  for (size_t i = 0; i < sizeof t; i += 2) sum += uint32_t{t[i]} << 8 | t[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t c = static_cast<uint16_t>(~sum);
  t[16] = static_cast<uint8_t>(c >> 8);
  t[17] = static_cast<uint8_t>(c);
  sockaddr_in to = tcp_in4("127.0.0.1", 0);
  REQUIRE(rump_sys_sendto(r, t, sizeof t, 0, tcp_sa(to), sizeof to) == static_cast<long>(sizeof t));
}

}  // namespace tcp_raw
