// tcp_script.h: packetdrill-style scripts for the TCP engine.
//
// A Script plays the peer of one TCP endpoint under test (an active
// connection or a listener and its children) on a virtual clock. Segments
// are written as tcpdump/packetdrill print them, with sequence numbers
// relative to each side's initial sequence number:
//
//   "S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 1000 ecr 900,wscale 7>"
//
// in() injects a segment from the peer (seq relative to the peer's ISN, ack
// to ours); out() checks the next segment the engine sent (seq relative to
// our ISN, ack to the peer's). In expectations "*" matches any one value,
// a missing "win" matches any window and a missing "<...>" any options
// ("<>" means none); in input, "ecr *" echoes our latest TSval. A mismatch fails the test with both segments printed.
// Payload bytes follow a fixed pattern of the sequence number, so data can
// be checked end to end.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "net/inet/tcp/tcp_conn.h"
#include "net/inet/tcp/tcp_listen.h"

namespace tcptest {

using namespace rump::tcp;

// A captured output segment with its own copy of the payload.
struct Sent {
  TcpSegment seg;
  std::vector<uint8_t> payload;
  uint16_t to_port;
};

class FakeHost : public TcpHost {
 public:
  int64_t now_ns() override { return now; }
  uint32_t random32() override {
    if (randoms.empty()) return 0;
    uint32_t v = randoms.front();
    randoms.pop_front();
    return v;
  }
  void output(const TcpEndpoints& ep, const TcpSegment& seg) override;
  void notify(TcpConnection&) override { notifications++; }
  void listener_ready(TcpListener&) override { ready++; }
  uint64_t cookie_secret() override { return 0x5eed5eed1234abcdULL; }

  int64_t now = 1000000000;  // 1 s: timestamps start at 1000
  std::deque<uint32_t> randoms;
  std::deque<Sent> sent;
  uint32_t last_tsval = 0;  // our latest TSval, for "ecr *" in input
  int notifications = 0;
  int ready = 0;
};

// The byte at (relative) stream offset off of a side's pattern.
inline uint8_t pattern(uint32_t off) { return static_cast<uint8_t>(off * 7 + 3); }

class Script {
 public:
  static constexpr uint16_t kLocalPort = 8080;
  static constexpr uint16_t kPeerPort = 40000;
  static constexpr uint32_t kPeerIss = 0x40000000;

  explicit Script(const TcpConfig& cfg = TcpConfig{});
  ~Script();

  // The endpoint under test.
  // Active open: our ISS is iss; sends the SYN.
  TcpConnection& connect(uint32_t iss = 0x10000000);
  // Passive: a listener with this backlog; children take ISS iss.
  TcpListener& listen(int backlog, uint32_t iss = 0x10000000);
  // The connection segments go to (for the listener case: the child for
  // the peer port, once it exists).
  TcpConnection& conn(uint16_t peer_port = kPeerPort);
  bool has_conn(uint16_t peer_port = kPeerPort) const;
  TcpListener& listener() { return *listener_; }
  FakeHost& host() { return host_; }

  // Relative sequence bases; set_peer_iss for wrap tests.
  void set_peer_iss(uint32_t iss) { peer_iss_ = iss; }
  uint32_t our_iss() const { return our_iss_; }

  void in(std::string_view text, uint16_t peer_port = kPeerPort);
  void out(std::string_view text);
  // No segment was sent.
  void none();
  // Drops every segment sent so far without checking.
  void skip_all() { host_.sent.clear(); }
  size_t pending_out() const { return host_.sent.size(); }
  // Moves the clock forward by ms, running timers at their deadlines.
  void advance_ms(int64_t ms);
  void advance_ns(int64_t ns);

  // Sends n pattern bytes from our stream position (relative seq, 1-based).
  size_t send(size_t n, bool more = false);
  // Reads everything readable and checks it against the peer's pattern.
  size_t recv_check(size_t max = 1 << 20);

  // The text of a captured segment (for messages).
  std::string format(const Sent& s) const;

 private:
  TcpSegment parse(std::string_view text, uint16_t peer_port, std::vector<uint8_t>& payload);
  TcpConnection* route(uint16_t peer_port);

  FakeHost host_;
  rump::Kmem kmem_;
  TcpConfig cfg_;
  TcpConnection* active_ = nullptr;
  TcpListener* listener_ = nullptr;
  std::map<uint16_t, TcpConnection*> children_;
  std::vector<TcpConnection*> all_;
  uint32_t our_iss_ = 0;
  uint32_t peer_iss_ = kPeerIss;
  uint32_t send_off_ = 0;
  uint32_t recv_off_ = 0;
  int out_count_ = 0;
};

}  // namespace tcptest
