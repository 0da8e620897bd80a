// tcp_test.cc: the TCP engine's state machine, loss recovery and timers,
// scripted as packetdrill scripts are: segments in, segments expected out,
// on a virtual clock that starts at t = 1 s (our timestamps start at 1000).
#include <linux/tcp.h>

#include <catch2/catch.hpp>

#include <cstring>

#include "tcp_script.h"

using namespace tcptest;
using rump::tcp::TcpState;

namespace {

// A peer without options: MSS 1000, no window scale, SACK or timestamps,
// which keeps the arithmetic plain.
// rtt_ms: how long the SYN-ACK takes (the first RTT sample).
void establish_plain(Script& s, uint32_t iss = 0x10000000, int rtt_ms = 0) {
  s.connect(iss);
  s.out("S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,wscale 2>");
  s.advance_ms(rtt_ms);
  s.in("S. 0:0(0) ack 1 win 65535 <mss 1000>");
  s.out(". 1:1(0) ack 1 win 65535 <>");
  REQUIRE(s.conn().state() == TcpState::kEstablished);
}

// Our data segment n (0-based) of 1000 bytes.
std::string seg_text(const char* flags, uint32_t n, const char* rest = "ack 1") {
  return std::string(flags) + " " + std::to_string(1 + n * 1000) + ":" +
         std::to_string(1 + (n + 1) * 1000) + "(1000) " + rest;
}

std::string ack_text(uint32_t rel) { return ". 1:1(0) ack " + std::to_string(rel) + " win 65535"; }

// Our receive buffer of 4000 bytes, unscaled, against a peer without
// options and MSS 1000.
TcpConfig small_window() {
  TcpConfig cfg;
  cfg.rcvbuf = 4000;
  return cfg;
}

void establish_small_window(Script& s) {
  s.connect();
  s.out("S 0:0(0) win 4000 <mss 1460,sackOK,TS val 1000 ecr 0,wscale 0>");
  s.in("S. 0:0(0) ack 1 win 65535 <mss 1000>");
  s.out(". 1:1(0) ack 1 win 4000 <>");
}

}  // namespace

TEST_CASE("active open sends SYN with options and completes on SYN-ACK", "[tcp]") {
  Script s;
  s.connect();
  REQUIRE(s.conn().state() == TcpState::kSynSent);
  s.out("S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,wscale 2>");
  s.advance_ms(10);
  s.in("S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 500 ecr 1000,wscale 7>");
  s.out(". 1:1(0) ack 1 win 32768 <TS val 1010 ecr 500>");
  TcpConnection& c = s.conn();
  REQUIRE(c.state() == TcpState::kEstablished);
  // Timestamps take 12 bytes of every segment.
  CHECK(c.smss() == 1448);
  // A window after the SYN is scaled by the peer's shift.
  s.in(". 1:1(0) ack 1 win 100 <TS val 501 ecr 1010>");
  CHECK(c.snd_wnd() == 100u << 7);
  struct tcp_info info;
  c.fill_info(info);
  CHECK(info.tcpi_state == 1);
  CHECK((info.tcpi_options & TCPI_OPT_TIMESTAMPS) != 0);
  CHECK((info.tcpi_options & TCPI_OPT_SACK) != 0);
  CHECK((info.tcpi_options & TCPI_OPT_WSCALE) != 0);
  CHECK(info.tcpi_snd_wscale == 7);
  CHECK(info.tcpi_rcv_wscale == 2);
  CHECK(info.tcpi_rtt == 10000);  // the SYN's round trip: 10 ms
  s.none();
}

TEST_CASE("passive open echoes only the options the SYN offered", "[tcp]") {
  Script s;
  TcpListener& l = s.listen(8);
  s.in("S 0:0(0) win 29200 <mss 1400,sackOK>");
  s.out("S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK>");
  REQUIRE(s.conn().state() == TcpState::kSynReceived);
  CHECK(l.syn_queue_length() == 1);
  CHECK(l.accept() == nullptr);
  s.in(". 1:1(0) ack 1 win 29200");
  REQUIRE(s.conn().state() == TcpState::kEstablished);
  CHECK(l.syn_queue_length() == 0);
  CHECK(l.accept_queue_length() == 1);
  CHECK(s.host().ready == 1);
  TcpConnection* c = l.accept();
  REQUIRE(c == &s.conn());
  CHECK(c->smss() == 1400);
  s.none();
}

TEST_CASE("a SYN-ACK whose ACK is wrong gets RST and the handshake continues", "[tcp]") {
  Script s;
  s.connect();
  s.out("S 0:0(0)");
  s.in("S. 0:0(0) ack 77 win 65535 <mss 1000>");
  s.out("R 77:77(0) win 0 <>");
  CHECK(s.conn().state() == TcpState::kSynSent);
}

TEST_CASE("simultaneous open goes through SYN_RECEIVED to ESTABLISHED", "[tcp]") {
  Script s;
  s.connect();
  s.out("S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,wscale 2>");
  // The peer's own SYN crosses ours.
  s.in("S 0:0(0) win 65535 <mss 1000>");
  CHECK(s.conn().state() == TcpState::kSynReceived);
  s.out("S. 0:0(0) ack 1 win 65535 <mss 1460>");
  // Its SYN-ACK for our SYN: old sequence number, so we answer with an ACK.
  s.in("S. 0:0(0) ack 1 win 65535 <mss 1000>");
  s.out(". 1:1(0) ack 1 win 65535 <>");
  // And its ACK of our SYN-ACK completes.
  s.in(". 1:1(0) ack 1 win 65535");
  CHECK(s.conn().state() == TcpState::kEstablished);
  s.send(10);
  s.out("P. 1:11(10) ack 1 win 65535 <>");
}

TEST_CASE("data is delivered and ACKed: every second segment at once, one alone after 40 ms",
          "[tcp]") {
  Script s;
  establish_plain(s);
  s.in("P. 1:1001(1000) ack 1 win 65535");
  s.none();
  s.advance_ms(39);
  s.none();
  s.advance_ms(1);
  s.out(ack_text(1001));
  s.in(". 1001:2001(1000) ack 1 win 65535");
  s.none();
  s.in(". 2001:3001(1000) ack 1 win 65535");
  s.out(". 1:1(0) ack 3001 win 65535 <>");
  CHECK(s.recv_check() == 3000);
  CHECK(s.conn().stats().bytes_received == 3000);
  // Data we send carries the ACK and our stream's bytes.
  s.send(100);
  s.out("P. 1:101(100) ack 3001 win 65535 <>");
  s.in(". 3001:3001(0) ack 101 win 65535");
  CHECK(s.conn().unacked() == 0);
}

TEST_CASE("Nagle holds a small segment while data is unacknowledged; TCP_NODELAY does not",
          "[tcp]") {
  Script s;
  establish_plain(s);
  s.send(10);
  s.out("P. 1:11(10) ack 1");
  s.send(10);
  s.none();  // held: 10 bytes are in flight
  s.send(10);
  s.none();
  s.in(". 1:1(0) ack 11 win 65535");
  s.out("P. 11:31(20) ack 1");
  // A full segment is not held; the 20-byte tail is.
  s.send(1020);
  s.out(". 31:1031(1000) ack 1");
  s.none();
  s.conn().set_nodelay(true);
  s.out("P. 1031:1051(20) ack 1");
  s.send(5);
  s.out("P. 1051:1056(5) ack 1");
}

TEST_CASE("TCP_CORK holds partial segments until uncorked or a segment is full", "[tcp]") {
  Script s;
  establish_plain(s);
  s.conn().set_nodelay(true);
  s.conn().set_cork(true);
  s.send(300);
  s.send(300);
  s.none();
  s.send(500);
  s.out(". 1:1001(1000) ack 1");
  s.none();
  s.conn().set_cork(false);
  s.out("P. 1001:1101(100) ack 1");
  // MSG_MORE is a cork for one call.
  s.send(10, true);
  s.none();
  s.send(10);
  s.out("P. 1101:1121(20) ack 1");
}

TEST_CASE("the retransmission timer backs off exponentially and ends in ETIMEDOUT", "[tcp]") {
  TcpConfig cfg;
  cfg.retries2 = 3;
  Script s(cfg);
  // The handshake's 100 ms sample: SRTT 100, RTTVAR 50, RTO 300 ms.
  establish_plain(s, 0x10000000, 100);
  CHECK(s.conn().rto_ns() == 300000000);
  s.send(100);
  s.out("P. 1:101(100) ack 1");
  s.advance_ms(299);
  s.none();
  s.advance_ms(1);
  s.out("P. 1:101(100) ack 1");
  s.advance_ms(599);
  s.none();
  s.advance_ms(1);
  s.out("P. 1:101(100) ack 1");
  s.advance_ms(1200);
  s.out("P. 1:101(100) ack 1");
  s.advance_ms(2399);
  s.none();
  s.advance_ms(1);
  s.out("R. 101:101(0) ack 1");
  CHECK(s.conn().state() == TcpState::kClosed);
  CHECK(s.conn().error() == ETIMEDOUT);
  uint8_t b;
  CHECK(s.conn().recv(&b, 1).error() == ETIMEDOUT);
}

TEST_CASE("after a timeout took SND.NXT back, ACKs are still numbered from the highest byte sent", "[tcp]") {
  Script s;
  establish_plain(s, 0x10000000, 100);  // RTO 300 ms
  s.conn().set_nodelay(true);
  s.send(3000);
  s.out(seg_text(".", 0));
  s.out(seg_text(".", 1));
  s.out(seg_text("P.", 2));
  s.advance_ms(300);
  s.out(seg_text(".", 0));  // go back to SND.UNA with one segment
  // The peer has all 3000 bytes, but its ACK is lost; it sends data. Our
  // ACK of it is numbered 3001, which the peer finds in its window: 1001
  // would be below its RCV.NXT, a duplicate it drops unread.
  s.in(". 1:1001(1000) ack 1 win 65535");
  s.in(". 1001:2001(1000) ack 1 win 65535");
  s.out(". 3001:3001(0) ack 2001");
  // A reset after this is numbered the same way.
  s.conn().abort();
  s.out("R. 3001:3001(0) ack 2001");
}

TEST_CASE("a timeout's segment with bytes never sent before counts them as sent", "[tcp]") {
  Script s;
  establish_plain(s);  // RTO 200 ms
  s.send(500);
  s.out("P. 1:501(500) ack 1");
  s.send(600);
  s.none();  // Nagle: a short tail while data is unacknowledged
  s.advance_ms(200);
  s.out(". 1:1001(1000) ack 1");  // one full segment from SND.UNA
  // The peer's ACK of all of it is no ACK of unsent data: taken, the rest
  // goes.
  s.in(". 1:1(0) ack 1001 win 65535");
  s.out("P. 1001:1101(100) ack 1");
}

TEST_CASE("fast retransmit resends only bytes sent before", "[tcp]") {
  Script s;
  establish_plain(s);
  s.send(500);
  s.out("P. 1:501(500) ack 1");
  s.send(600);
  s.none();
  for (int i = 0; i < 3; i++) s.in(". 1:1(0) ack 1 win 65535");
  s.out(". 1:501(500) ack 1");
  s.none();
}

TEST_CASE("an ACK ends the backoff and an RTT sample sets the RTO (RFC 6298)", "[tcp]") {
  Script s;
  // First sample R = 100 ms: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR.
  establish_plain(s, 0x10000000, 100);
  CHECK(s.conn().srtt_ns() == 100000000);
  CHECK(s.conn().rto_ns() == 300000000);
  s.send(100);
  s.out("P. 1:101(100) ack 1");
  s.advance_ms(300);
  s.out("P. 1:101(100) ack 1");
  // Karn: the ACK of a retransmitted segment gives no sample (a sample
  // here would be 50 ms and change SRTT).
  s.advance_ms(50);
  s.in(". 1:1(0) ack 101 win 65535");
  CHECK(s.conn().srtt_ns() == 100000000);
  s.send(100);
  s.out("P. 101:201(100) ack 1");
  s.advance_ms(100);
  s.in(". 1:1(0) ack 201 win 65535");
  // R = 100 ms again: RTTVAR = 3/4 * 50 + 1/4 * 0 = 37.5, RTO = 100 + 150 ms.
  CHECK(s.conn().srtt_ns() == 100000000);
  CHECK(s.conn().rto_ns() == 250000000);
  // The backoff ended with the ACK: the next timeout is one RTO.
  s.send(100);
  s.out("P. 201:301(100) ack 1");
  s.advance_ms(249);
  s.none();
  s.advance_ms(1);
  s.out("P. 201:301(100) ack 1");
}

TEST_CASE("an unanswered SYN is retried syn_retries times, then ETIMEDOUT", "[tcp]") {
  TcpConfig cfg;
  cfg.syn_retries = 2;
  Script s(cfg);
  s.connect();
  s.out("S 0:0(0)");
  s.advance_ms(1000);
  s.out("S 0:0(0)");
  s.advance_ms(2000);
  s.out("S 0:0(0)");
  s.advance_ms(4000);
  s.none();
  CHECK(s.conn().state() == TcpState::kClosed);
  CHECK(s.conn().error() == ETIMEDOUT);
}

TEST_CASE("after a lost SYN and no RTT sample the RTO is 3 seconds (RFC 6298 5.7)", "[tcp]") {
  TcpConfig cfg;
  cfg.timestamps = false;
  Script s(cfg);
  s.connect();
  s.out("S 0:0(0) win 65535 <mss 1460,sackOK,wscale 2>");
  s.advance_ms(1000);
  s.out("S 0:0(0)");
  s.in("S. 0:0(0) ack 1 win 65535 <mss 1000>");
  s.out(". 1:1(0) ack 1");
  CHECK(s.conn().rto_ns() == 3000000000);
}

TEST_CASE("a SYN with a newer sequence number may reopen a TIME_WAIT connection", "[tcp]") {
  Script s;
  establish_plain(s);
  REQUIRE(s.conn().shutdown_write().ok());
  s.out("F. 1:1(0) ack 1");
  s.in("F. 1:1(0) ack 2 win 65535");
  s.out(". 2:2(0) ack 2");
  REQUIRE(s.conn().state() == TcpState::kTimeWait);
  TcpSegment old_syn;
  old_syn.flags = kSyn;
  old_syn.seq = Script::kPeerIss + 1;  // not beyond RCV.NXT
  CHECK_FALSE(s.conn().time_wait_accepts_syn(old_syn));
  TcpSegment new_syn = old_syn;
  new_syn.seq = Script::kPeerIss + 100000;
  CHECK(s.conn().time_wait_accepts_syn(new_syn));
  s.conn().abort_time_wait();
  CHECK(s.conn().state() == TcpState::kClosed);
  s.none();
}

TEST_CASE("a TIME_WAIT state kept apart from its connection answers segments as the connection did", "[tcp]") {
  using rump::tcp::TcpTimeWaitState;
  using rump::tcp::TimeWaitAction;
  Script s;
  establish_plain(s);
  REQUIRE(s.conn().shutdown_write().ok());
  s.out("F. 1:1(0) ack 1");
  s.in("F. 1:1(0) ack 2 win 65535");
  s.out(". 2:2(0) ack 2");
  TcpTimeWaitState tw;
  REQUIRE(s.conn().time_wait_state(tw));
  const uint32_t our = s.our_iss(), peer = Script::kPeerIss;
  CHECK(tw.snd_nxt == our + 2);
  CHECK(tw.rcv_nxt == peer + 2);
  auto seg = [&](uint8_t flags, uint32_t seq, uint32_t ack) {
    TcpSegment g;
    g.sport = Script::kPeerPort;
    g.dport = Script::kLocalPort;
    g.flags = flags;
    g.seq = seq;
    g.ack = ack;
    g.window = 65535;
    return g;
  };
  TcpSegment reply;
  // The peer's FIN again: an ACK, and TIME_WAIT starts over.
  int64_t now = tw.expire_ns - 1000000000;
  CHECK(rump::tcp::tcp_time_wait_input(tw, seg(kFin | kAck, peer + 1, our + 2), now, reply, nullptr) ==
        TimeWaitAction::kReply);
  CHECK(reply.flags == kAck);
  CHECK(reply.seq == our + 2);
  CHECK(reply.ack == peer + 2);
  CHECK(reply.sport == Script::kLocalPort);
  CHECK(reply.dport == Script::kPeerPort);
  CHECK(tw.expire_ns == now + tw.time_wait_ns);
  // A bare ACK in the window: nothing.
  CHECK(rump::tcp::tcp_time_wait_input(tw, seg(kAck, peer + 2, our + 2), now, reply, nullptr) ==
        TimeWaitAction::kDrop);
  // A RST off RCV.NXT but in the window: a challenge ACK; on it: closed.
  CHECK(rump::tcp::tcp_time_wait_input(tw, seg(kRst, peer + 10, 0), now, reply, nullptr) ==
        TimeWaitAction::kReply);
  CHECK(rump::tcp::tcp_time_wait_input(tw, seg(kRst, peer + 2, 0), now, reply, nullptr) ==
        TimeWaitAction::kClose);
  // A SYN beyond RCV.NXT reopens, with an ISS past the old sequence space.
  CHECK(rump::tcp::tcp_time_wait_input(tw, seg(kSyn, peer + 100000, 0), now, reply, nullptr) ==
        TimeWaitAction::kReopen);
  CHECK(rump::tcp::tcp_time_wait_reopen_iss(tw) == our + 2 + 65537);
  // An old one gets an ACK instead.
  CHECK(rump::tcp::tcp_time_wait_input(tw, seg(kSyn, peer, 0), now, reply, nullptr) == TimeWaitAction::kReply);
  CHECK(reply.ack == peer + 2);
}

TEST_CASE("fast retransmit after three duplicate ACKs; NewReno partial ACKs retransmit the next hole",
          "[tcp]") {
  TcpConfig cfg;
  cfg.cc = rump::tcp::CcAlgo::kReno;
  Script s(cfg);
  establish_plain(s);
  s.conn().set_nodelay(true);
  s.send(10000);
  for (uint32_t n = 0; n < 10; n++) s.out(seg_text(n == 9 ? "P." : ".", n));
  s.none();  // the initial window is 10 segments
  CHECK(s.conn().cwnd() == 10000);
  // Segment 0 arrives, segments 1 and 5 are lost: each later segment
  // brings a duplicate ACK of 1001.
  s.in(". 1:1(0) ack 1001 win 65535");
  s.none();
  s.in(". 1:1(0) ack 1001 win 65535");
  s.in(". 1:1(0) ack 1001 win 65535");
  s.none();
  s.in(". 1:1(0) ack 1001 win 65535");
  s.out(seg_text(".", 1));
  CHECK(s.conn().stats().fast_retransmits == 1);
  // Reno: ssthresh = flight / 2 = 4500; cwnd = ssthresh + 3 SMSS.
  CHECK(s.conn().ssthresh() == 4500);
  CHECK(s.conn().cwnd() == 7500);
  // A partial ACK (up to the second hole at 5001) retransmits that segment.
  s.in(". 1:1(0) ack 5001 win 65535");
  s.out(seg_text(".", 5));
  // The full ACK ends recovery with cwnd = min(ssthresh, flight + SMSS).
  s.in(". 1:1(0) ack 10001 win 65535");
  CHECK(s.conn().cwnd() == 1000);
  CHECK(s.conn().unacked() == 0);
}

TEST_CASE("with SACK, a retransmission stops where the peer's SACKed data begins", "[tcp]") {
  Script s;
  s.connect();
  s.out("S 0:0(0)");
  s.in("S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK>");
  s.out(". 1:1(0) ack 1 win 65535 <>");
  s.conn().set_nodelay(true);
  s.send(5000);
  for (uint32_t n = 0; n < 5; n++) s.out(seg_text(n == 4 ? "P." : ".", n));
  // 1001..1501 is missing; the rest arrived.
  s.in(". 1:1(0) ack 1001 win 65535");
  for (int i = 0; i < 3; i++) s.in(". 1:1(0) ack 1001 win 65535 <sack 1501:3001>");
  s.out(". 1001:1501(500) ack 1");
  s.in(". 1:1(0) ack 1001 win 65535 <sack 1501:5001>");
  s.none();
  s.in(". 1:1(0) ack 5001 win 65535");
  CHECK(s.conn().unacked() == 0);
  struct tcp_info info;
  s.conn().fill_info(info);
  CHECK(info.tcpi_total_retrans == 1);
  CHECK(info.tcpi_bytes_retrans == 500);
}

TEST_CASE("CUBIC reduces the window to 0.7 and Reno to 0.5 on loss, and both grow again",
          "[tcp]") {
  for (auto algo : {rump::tcp::CcAlgo::kCubic, rump::tcp::CcAlgo::kReno}) {
    Script s;
    establish_plain(s);
    REQUIRE(s.conn().set_congestion(algo == rump::tcp::CcAlgo::kReno ? "reno" : "cubic").ok());
    CHECK(std::string(s.conn().congestion()) == (algo == rump::tcp::CcAlgo::kReno ? "reno" : "cubic"));
    s.conn().set_nodelay(true);
    s.send(10000);
    s.skip_all();
    for (int i = 0; i < 3; i++) s.in(". 1:1(0) ack 1 win 65535");
    s.skip_all();
    uint32_t expect = algo == rump::tcp::CcAlgo::kReno ? 5000 : 7000;
    CHECK(s.conn().ssthresh() == expect);
    s.in(". 1:1(0) ack 10001 win 65535");
    uint32_t after = s.conn().cwnd();
    CHECK(after <= expect);
    // Congestion avoidance: keep a window of data in flight for a while.
    uint32_t acked = 10001;
    for (int round = 0; round < 40; round++) {
      s.advance_ms(100);
      s.send(s.conn().cwnd());
      s.skip_all();
      acked += s.conn().unacked();
      s.in(". 1:1(0) ack " + std::to_string(acked) + " win 65535");
    }
    CHECK(s.conn().cwnd() > after);
    INFO(rump::tcp::cc_name(algo) << " cwnd " << s.conn().cwnd());
    if (algo == rump::tcp::CcAlgo::kReno) {
      // Slow start to ssthresh, then exactly one segment per window of
      // ACKs (one ACK per round here).
      CHECK(s.conn().cwnd() <= expect + 40 * 1000);
    }
  }
  // Unknown algorithms are ENOENT, as Linux.
  Script s;
  establish_plain(s);
  CHECK(s.conn().set_congestion("bbr").error() == ENOENT);
}

TEST_CASE("CUBIC follows W(t) = C (t - K)^3 + W_max after a loss and overtakes Reno", "[tcp]") {
  using rump::tcp::CongestionControl;
  // The same ACK clock for both: a window of ACKs every RTT of 200 ms,
  // one ACK per segment, from a loss at a window of 100 segments.
  const uint32_t mss = 1000;
  const int64_t rtt = 200000000;
  CongestionControl cc[2];
  cc[0].init(rump::tcp::CcAlgo::kReno, mss);
  cc[1].init(rump::tcp::CcAlgo::kCubic, mss);
  int64_t t = 0;
  for (auto& c : cc) {
    c.set_cwnd(100 * mss);
    c.on_loss(100 * mss, t);
    c.set_cwnd(c.ssthresh());
  }
  CHECK(cc[0].cwnd() == 50 * mss);
  CHECK(cc[1].cwnd() == 70 * mss);
  // K = cbrt(W_max (1 - beta) / C) = cbrt(100 * 0.3 / 0.4) = 4.217 s.
  auto run_until = [&](int64_t until) {
    while (t < until) {
      t += rtt;
      for (auto& c : cc) {
        uint32_t n = c.cwnd() / mss;
        for (uint32_t i = 0; i < n; i++) c.on_ack(mss, t, rtt);
      }
    }
  };
  run_until(4200000000);
  // At t = K CUBIC is back at W_max (its plateau), Reno far below.
  CHECK(cc[1].cwnd() >= 97 * mss);
  CHECK(cc[1].cwnd() <= 102 * mss);
  CHECK(cc[0].cwnd() < 75 * mss);
  run_until(8400000000);
  // At 2K: W(2K) = 0.4 * 4.217^3 + 100 = 130 segments; Reno ~ 50 + 42.
  CHECK(cc[1].cwnd() >= 125 * mss);
  CHECK(cc[1].cwnd() <= 136 * mss);
  CHECK(cc[1].cwnd() > cc[0].cwnd() + 20 * mss);
  // Reno grew by one segment per RTT.
  CHECK(cc[0].cwnd() == (50 + 42) * mss);
}

TEST_CASE("window scale: our advertised window is shifted, the peer's scaled", "[tcp]") {
  TcpConfig cfg;
  cfg.rcvbuf = 1 << 20;
  Script s(cfg);
  s.connect();
  s.out("S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,wscale 5>");
  s.in("S. 0:0(0) ack 1 win 65535 <mss 1000,wscale 3>");
  s.out(". 1:1(0) ack 1 win 32768 <>");
  s.in(". 1:1(0) ack 1 win 10");
  CHECK(s.conn().snd_wnd() == 80);
  s.conn().set_nodelay(true);
  s.send(200);
  s.out(". 1:81(80) ack 1");
  s.none();
}

TEST_CASE("without window scaling on both sides neither shift is used", "[tcp]") {
  TcpConfig cfg;
  cfg.rcvbuf = 1 << 20;
  Script s(cfg);
  s.connect();
  s.out("S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,wscale 5>");
  s.in("S. 0:0(0) ack 1 win 30000 <mss 1000>");
  s.out(". 1:1(0) ack 1 win 65535 <>");
  s.in(". 1:1(0) ack 1 win 10");
  CHECK(s.conn().snd_wnd() == 10);
}

TEST_CASE("a zero window is probed with backoff and data resumes when it opens", "[tcp]") {
  Script s;
  establish_plain(s);
  s.conn().set_nodelay(true);
  s.in(". 1:1(0) ack 1 win 0");
  CHECK(s.conn().snd_wnd() == 0);
  s.send(100);
  s.none();
  // Probes back off from the RTO (200 ms, the minimum, after the
  // handshake's sample).
  s.advance_ms(199);
  s.none();
  s.advance_ms(1);
  s.out(". 1:2(1) ack 1");  // the probe: one byte
  s.in(". 1:1(0) ack 1 win 0");
  s.advance_ms(399);
  s.none();
  s.advance_ms(1);
  s.out(". 1:2(1) ack 1");
  s.advance_ms(800);
  s.out(". 1:2(1) ack 1");
  s.in(". 1:1(0) ack 2 win 500");
  s.out("P. 2:101(99) ack 1");
}

TEST_CASE("our zero window: data beyond it is refused with an ACK, reading reopens it", "[tcp]") {
  Script s(small_window());
  establish_small_window(s);
  for (uint32_t n = 0; n < 4; n++) s.in(". " + std::to_string(1 + n * 1000) + ":" +
                                        std::to_string(1001 + n * 1000) + "(1000) ack 1 win 65535");
  s.out(". 1:1(0) ack 2001 win 2000 <>");
  s.out(". 1:1(0) ack 4001 win 0 <>");
  // A zero-window probe is not accepted, but answered.
  s.in(". 4001:4002(1) ack 1 win 65535");
  s.out(". 1:1(0) ack 4001 win 0 <>");
  CHECK(s.recv_check(1000) == 1000);
  s.none();  // 1000 bytes free: less than two segments, no update yet
  CHECK(s.recv_check(2000) == 2000);
  s.out(". 1:1(0) ack 4001 win 3000 <>");
}

TEST_CASE("an ACK numbered at the right edge of our window is taken (as Linux and BSD take it)", "[tcp]") {
  // RFC 9293's test for a segment without data, RCV.NXT <= SEG.SEQ <
  // RCV.NXT + RCV.WND, refuses a peer that filled our window while some of
  // it was lost: its ACKs are numbered at the edge. Refused, their news is
  // lost and each is answered; two such ends answer each other forever.
  Script s(small_window());
  establish_small_window(s);
  s.send(100);
  s.out("P. 1:101(100) ack 1");
  s.in(". 1:1001(1000) ack 1 win 65535");
  // 1001:2001 is lost; the rest of our window arrives out of order.
  s.in(". 2001:3001(1000) ack 1 win 65535");
  s.out(". 101:101(0) ack 1001 win 3000 <>");
  s.in(". 3001:4001(1000) ack 1 win 65535");
  s.out(". 101:101(0) ack 1001 win 3000 <>");
  // The peer's ACK of our 100 bytes, numbered 4001: the window's edge.
  s.in(". 4001:4001(0) ack 101 win 65535");
  s.none();
  // Taken: with nothing in flight, Nagle lets the next bytes go at once.
  s.send(50);
  s.out("P. 101:151(50) ack 1001");
}

TEST_CASE("PAWS drops a segment with an old timestamp and ACKs it", "[tcp]") {
  Script s;
  s.connect();
  s.out("S 0:0(0)");
  s.in("S. 0:0(0) ack 1 win 65535 <mss 1460,TS val 5000 ecr 1000>");
  s.out(". 1:1(0) ack 1 win 65535 <TS val 1000 ecr 5000>");
  s.in(". 1:101(100) ack 1 win 65535 <TS val 5010 ecr 1000>");
  s.advance_ms(40);
  s.out(". 1:1(0) ack 101 win 65535 <TS val 1040 ecr 5010>");
  // An old duplicate from a previous incarnation: its timestamp is older.
  s.in(". 101:201(100) ack 1 win 65535 <TS val 4000 ecr 1000>");
  s.out(". 1:1(0) ack 101 win 65535 <TS val 1040 ecr 5010>");
  CHECK(s.conn().stats().paws_drops == 1);
  CHECK(s.recv_check() == 100);
  // A timestamp across the 2^32 wrap is newer, not older.
  s.in(". 101:201(100) ack 1 win 65535 <TS val 5020 ecr 1000>");
  CHECK(s.recv_check() == 100);
}

TEST_CASE("out-of-order segments are SACKed at once and reassembled", "[tcp]") {
  Script s;
  s.connect();
  s.out("S 0:0(0)");
  s.in("S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK>");
  s.out(". 1:1(0) ack 1 win 65535 <>");
  s.in(". 1001:2001(1000) ack 1 win 65535");
  s.out(". 1:1(0) ack 1 win * <sack 1001:2001>");
  s.in(". 3001:4001(1000) ack 1 win 65535");
  s.out(". 1:1(0) ack 1 win * <sack 3001:4001,1001:2001>");
  CHECK(s.conn().readable() == 0);
  // The first hole fills: ACK up to the next one, at once.
  s.in(". 1:1001(1000) ack 1 win 65535");
  s.out(". 1:1(0) ack 2001 win * <sack 3001:4001>");
  s.in(". 2001:3001(1000) ack 1 win 65535");
  s.out(". 1:1(0) ack 4001 win * <>");
  CHECK(s.recv_check() == 4000);
  CHECK(s.conn().stats().rcv_ooopack == 2);
  // A duplicate is acknowledged at once.
  s.in(". 1:1001(1000) ack 1 win 65535");
  s.out(". 1:1(0) ack 4001 win *");
}

TEST_CASE("RST with the exact sequence number resets ESTABLISHED; others get a challenge ACK",
          "[tcp]") {
  Script s;
  establish_plain(s);
  // Outside the window: ignored.
  s.in("R 200000:200000(0) win 0");
  s.none();
  // Inside the window but not RCV.NXT: challenge ACK (RFC 5961 3.2).
  s.in("R 500:500(0) win 0");
  s.out(". 1:1(0) ack 1 win 65535");
  CHECK(s.conn().state() == TcpState::kEstablished);
  s.in("R 1:1(0) win 0");
  s.none();
  CHECK(s.conn().state() == TcpState::kClosed);
  CHECK(s.conn().error() == ECONNRESET);
  uint8_t b;
  CHECK(s.conn().recv(&b, 1).error() == ECONNRESET);
  // A closed connection answers anything with RST.
  s.in(". 1:1(0) ack 1 win 65535");
  s.out("R 1:1(0) win 0");
}

TEST_CASE("RST in SYN_SENT refuses the connection only with an acceptable ACK", "[tcp]") {
  Script s;
  s.connect();
  s.out("S 0:0(0)");
  s.in("R. 0:0(0) ack 7 win 0");  // unacceptable ACK: dropped
  CHECK(s.conn().state() == TcpState::kSynSent);
  s.none();
  s.in("R. 0:0(0) ack 1 win 0");
  CHECK(s.conn().state() == TcpState::kClosed);
  CHECK(s.conn().error() == ECONNREFUSED);
}

TEST_CASE("RST in SYN_RECEIVED drops the child from the listener", "[tcp]") {
  Script s;
  TcpListener& l = s.listen(4);
  s.in("S 0:0(0) win 65535 <mss 1000>");
  s.out("S. 0:0(0) ack 1");
  CHECK(l.syn_queue_length() == 1);
  s.in("R 1:1(0) win 0");
  CHECK(l.syn_queue_length() == 0);
  CHECK(s.conn().state() == TcpState::kClosed);
  CHECK(s.conn().detached());
  CHECK(s.conn().error() == 0);
}

TEST_CASE("RST in CLOSE_WAIT, LAST_ACK, FIN_WAIT_2 and TIME_WAIT closes", "[tcp]") {
  SECTION("CLOSE_WAIT") {
    Script s;
    establish_plain(s);
    s.in("F. 1:1(0) ack 1 win 65535");
    s.out(". 1:1(0) ack 2");
    CHECK(s.conn().state() == TcpState::kCloseWait);
    s.in("R 2:2(0) win 0");
    CHECK(s.conn().state() == TcpState::kClosed);
    // As Linux: the peer had finished, so the reset is EPIPE.
    CHECK(s.conn().error() == EPIPE);
  }
  SECTION("LAST_ACK") {
    Script s;
    establish_plain(s);
    s.in("F. 1:1(0) ack 1 win 65535");
    s.out(". 1:1(0) ack 2");
    REQUIRE(s.conn().shutdown_write().ok());
    s.out("F. 1:1(0) ack 2");
    CHECK(s.conn().state() == TcpState::kLastAck);
    s.in("R 2:2(0) win 0");
    CHECK(s.conn().state() == TcpState::kClosed);
    CHECK(s.conn().error() == 0);
  }
  SECTION("FIN_WAIT_2") {
    Script s;
    establish_plain(s);
    REQUIRE(s.conn().shutdown_write().ok());
    s.out("F. 1:1(0) ack 1");
    s.in(". 1:1(0) ack 2 win 65535");
    CHECK(s.conn().state() == TcpState::kFinWait2);
    s.in("R 1:1(0) win 0");
    CHECK(s.conn().state() == TcpState::kClosed);
    CHECK(s.conn().error() == ECONNRESET);
  }
  SECTION("TIME_WAIT") {
    Script s;
    establish_plain(s);
    REQUIRE(s.conn().shutdown_write().ok());
    s.out("F. 1:1(0) ack 1");
    s.in("F. 1:1(0) ack 2 win 65535");
    s.out(". 2:2(0) ack 2");
    CHECK(s.conn().state() == TcpState::kTimeWait);
    s.in("R 2:2(0) win 0");
    CHECK(s.conn().state() == TcpState::kClosed);
  }
}

TEST_CASE("a SYN on an established connection gets a challenge ACK", "[tcp]") {
  Script s;
  establish_plain(s);
  s.in("S 100:100(0) win 65535 <mss 1000>");
  s.out(". 1:1(0) ack 1 win 65535");
  CHECK(s.conn().state() == TcpState::kEstablished);
  CHECK(s.conn().stats().challenge_acks == 1);
}

TEST_CASE("an ACK for data never sent is answered and dropped", "[tcp]") {
  Script s;
  establish_plain(s);
  s.in(". 1:1(0) ack 5000 win 65535");
  s.out(". 1:1(0) ack 1 win 65535");
  CHECK(s.conn().unacked() == 0);
}

TEST_CASE("invalid segments without data are answered at most once per 500 ms (Linux's ACK-loop limit)",
          "[tcp]") {
  Script s;
  establish_plain(s);
  s.in(". 1:1(0) ack 5000 win 65535");
  s.out(". 1:1(0) ack 1 win 65535");
  // More of them (ACKs of unsent data, out of the window, a SYN) within
  // 500 ms: no answer, so two ends that each find the other's segments
  // invalid cannot keep answering each other.
  s.advance_ms(100);
  s.in(". 1:1(0) ack 5000 win 65535");
  s.in(". 900000:900000(0) ack 1 win 65535");
  s.in("S 100:100(0) win 65535 <mss 1000>");
  s.none();
  // Data out of the window is always answered (a duplicate ACK the
  // sender's recovery counts).
  s.in(". 900000:900100(100) ack 1 win 65535");
  s.out(". 1:1(0) ack 1 win 65535");
  s.advance_ms(400);
  s.in(". 1:1(0) ack 5000 win 65535");
  s.out(". 1:1(0) ack 1 win 65535");
  CHECK(s.conn().state() == TcpState::kEstablished);
}

TEST_CASE("with no limit on answers to invalid segments (tcp_invalid_ratelimit 0) each gets one", "[tcp]") {
  TcpConfig cfg;
  cfg.invalid_ratelimit_ns = 0;
  Script s(cfg);
  establish_plain(s);
  for (int i = 0; i < 3; i++) {
    s.in(". 1:1(0) ack 5000 win 65535");
    s.out(". 1:1(0) ack 1 win 65535");
  }
}

TEST_CASE("active close: FIN_WAIT_1, FIN_WAIT_2, TIME_WAIT for 60 seconds", "[tcp]") {
  Script s;
  establish_plain(s);
  s.send(100);
  s.out("P. 1:101(100) ack 1");
  REQUIRE(s.conn().shutdown_write().ok());
  CHECK(s.conn().state() == TcpState::kFinWait1);
  CHECK(s.conn().send(nullptr, 0).error() == EPIPE);
  // The FIN follows at once: it is not data, Nagle does not hold it.
  s.out("F. 101:101(0) ack 1");
  s.in(". 1:1(0) ack 101 win 65535");
  s.in(". 1:1(0) ack 102 win 65535");
  CHECK(s.conn().state() == TcpState::kFinWait2);
  // The peer still sends data in FIN_WAIT_2.
  s.in("P. 1:51(50) ack 102 win 65535");
  CHECK(s.recv_check() == 50);
  s.in("F. 51:51(0) ack 102 win 65535");
  s.out(". 102:102(0) ack 52");
  CHECK(s.conn().state() == TcpState::kTimeWait);
  uint8_t b;
  CHECK(*s.conn().recv(&b, 1) == 0);
  // A retransmitted FIN is ACKed again and restarts the timer.
  s.advance_ms(30000);
  s.in("F. 51:51(0) ack 102 win 65535");
  s.out(". 102:102(0) ack 52");
  s.advance_ms(59999);
  CHECK(s.conn().state() == TcpState::kTimeWait);
  s.advance_ms(1);
  CHECK(s.conn().state() == TcpState::kClosed);
  CHECK(s.conn().error() == 0);
  s.none();
}

TEST_CASE("a FIN with the last data goes in the same segment", "[tcp]") {
  Script s;
  establish_plain(s);
  s.conn().set_cork(true);
  s.send(100);
  REQUIRE(s.conn().shutdown_write().ok());
  s.out("FP. 1:101(100) ack 1");
}

TEST_CASE("passive close: CLOSE_WAIT, then LAST_ACK, then CLOSED", "[tcp]") {
  Script s;
  establish_plain(s);
  s.in("FP. 1:11(10) ack 1 win 65535");
  s.out(". 1:1(0) ack 12");
  CHECK(s.conn().state() == TcpState::kCloseWait);
  CHECK(s.recv_check() == 10);
  uint8_t b;
  CHECK(*s.conn().recv(&b, 1) == 0);
  CHECK(s.conn().read_eof());
  // Half-closed: we can still send.
  s.send(20);
  s.out("P. 1:21(20) ack 12");
  s.conn().close();
  CHECK(s.conn().state() == TcpState::kLastAck);
  s.out("F. 21:21(0) ack 12");
  s.in(". 12:12(0) ack 21 win 65535");
  s.in(". 12:12(0) ack 22 win 65535");
  CHECK(s.conn().state() == TcpState::kClosed);
  CHECK(s.conn().detached());
}

TEST_CASE("simultaneous close goes through CLOSING to TIME_WAIT", "[tcp]") {
  Script s;
  establish_plain(s);
  REQUIRE(s.conn().shutdown_write().ok());
  s.out("F. 1:1(0) ack 1");
  s.in("F. 1:1(0) ack 1 win 65535");
  CHECK(s.conn().state() == TcpState::kClosing);
  s.out(". 2:2(0) ack 2");
  s.in(". 2:2(0) ack 2 win 65535");
  CHECK(s.conn().state() == TcpState::kTimeWait);
  s.advance_ms(60000);
  CHECK(s.conn().state() == TcpState::kClosed);
}

TEST_CASE("a lost FIN is retransmitted by the timer", "[tcp]") {
  Script s;
  establish_plain(s);
  REQUIRE(s.conn().shutdown_write().ok());
  s.out("F. 1:1(0) ack 1");
  s.advance_ms(1000);
  s.out("F. 1:1(0) ack 1");
  s.in(". 1:1(0) ack 2 win 65535");
  CHECK(s.conn().state() == TcpState::kFinWait2);
}

TEST_CASE("a full SYN queue answers with SYN cookies; a valid cookie ACK makes the connection",
          "[tcp]") {
  Script s;
  TcpListener& l = s.listen(1);
  s.in("S 0:0(0) win 65535 <mss 1460>", 40001);
  s.out("S. 0:0(0) ack 1 win 65535 <mss 1460>");
  CHECK(l.syn_queue_length() == 1);
  // The queue is full: a stateless cookie SYN-ACK.
  s.in("S 0:0(0) win 65535 <mss 1460,sackOK,TS val 777 ecr 0,wscale 6>", 40002);
  s.out("S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val * ecr 777,wscale 2>");
  CHECK(l.syn_queue_length() == 1);
  CHECK(l.stats().cookies_sent == 1);
  CHECK_FALSE(s.has_conn(40002));
  // A forged ACK for that port is refused with RST.
  uint32_t iss = s.our_iss();
  s.set_peer_iss(Script::kPeerIss);
  s.in(". 1:1(0) ack 12345 win 100", 40003);
  s.out("R 12345:12345(0) win 0");
  CHECK(l.stats().cookies_invalid == 1);
  // The real ACK, with data, creates an established child.
  s.in("P. 1:11(10) ack 1 win 100 <TS val 778 ecr *>", 40002);
  REQUIRE(s.has_conn(40002));
  TcpConnection& c = s.conn(40002);
  CHECK(c.state() == TcpState::kEstablished);
  CHECK(l.stats().cookies_valid == 1);
  CHECK(c.smss() == 1460 - 12);
  // The window scale the SYN offered survived in the timestamp.
  CHECK(c.snd_wnd() == 100u << 6);
  CHECK(c.readable() == 10);
  (void)iss;
  REQUIRE(l.accept() == &c);
}

TEST_CASE("a full accept queue drops SYNs and completing ACKs", "[tcp]") {
  Script s;
  TcpListener& l = s.listen(1);
  s.in("S 0:0(0) win 65535 <mss 1000>", 40001);
  s.out("S. 0:0(0) ack 1");
  s.in(". 1:1(0) ack 1 win 65535", 40001);
  CHECK(l.accept_queue_length() == 1);
  s.in("S 0:0(0) win 65535 <mss 1000>", 40002);
  s.none();
  CHECK(l.stats().accept_overflows == 1);
  CHECK(l.accept() != nullptr);
  s.in("S 0:0(0) win 65535 <mss 1000>", 40002);
  s.out("S. 0:0(0) ack 1");
}

TEST_CASE("keepalive probes an idle connection and times out after TCP_KEEPCNT", "[tcp]") {
  Script s;
  establish_plain(s);
  TcpConnection& c = s.conn();
  c.set_keepalive(true);
  REQUIRE(c.set_keepidle(10).ok());
  REQUIRE(c.set_keepintvl(2).ok());
  REQUIRE(c.set_keepcnt(3).ok());
  CHECK(c.set_keepcnt(0).error() == EINVAL);
  s.advance_ms(9999);
  s.none();
  s.advance_ms(1);
  s.out(". 0:0(0) ack 1");  // SND.NXT - 1, no data
  // An answer resets the idle time.
  s.in(". 1:1(0) ack 1 win 65535");
  s.advance_ms(9999);
  s.none();
  s.advance_ms(1);
  s.out(". 0:0(0) ack 1");
  s.advance_ms(2000);
  s.out(". 0:0(0) ack 1");
  s.advance_ms(2000);
  s.out(". 0:0(0) ack 1");
  s.advance_ms(2000);
  s.out("R. 1:1(0) ack 1");
  CHECK(c.state() == TcpState::kClosed);
  CHECK(c.error() == ETIMEDOUT);
}

TEST_CASE("close with SO_LINGER 0 resets the connection", "[tcp]") {
  Script s;
  establish_plain(s);
  s.conn().set_linger(true, 0);
  s.conn().close();
  s.out("R. 1:1(0) ack 1");
  CHECK(s.conn().state() == TcpState::kClosed);
  CHECK(s.conn().detached());
}

TEST_CASE("close with unread data resets; data after close resets", "[tcp]") {
  SECTION("unread") {
    Script s;
    establish_plain(s);
    s.in("P. 1:11(10) ack 1 win 65535");
    s.conn().close();
    s.out("R. 1:1(0) ack 11");
    CHECK(s.conn().state() == TcpState::kClosed);
  }
  SECTION("after close") {
    Script s;
    establish_plain(s);
    s.conn().close();
    s.out("F. 1:1(0) ack 1");
    s.in(". 1:1(0) ack 2 win 65535");
    CHECK(s.conn().state() == TcpState::kFinWait2);
    s.in("P. 1:11(10) ack 2 win 65535");
    s.out("R. 2:2(0) ack 1");
    CHECK(s.conn().state() == TcpState::kClosed);
  }
  SECTION("an orphan in FIN_WAIT_2 goes after the FIN timeout") {
    Script s;
    establish_plain(s);
    s.conn().close();
    s.out("F. 1:1(0) ack 1");
    s.in(". 1:1(0) ack 2 win 65535");
    s.advance_ms(60000);
    CHECK(s.conn().state() == TcpState::kClosed);
  }
}

TEST_CASE("sequence numbers wrap around 2^32 on both sides", "[tcp]") {
  Script s;
  s.set_peer_iss(0xfffffc00);
  establish_plain(s, 0xfffffe00);
  s.conn().set_nodelay(true);
  s.send(3000);
  s.out(seg_text(".", 0));
  s.out(seg_text(".", 1));
  s.out(seg_text("P.", 2));
  s.in(". 1:1(0) ack 3001 win 65535");
  CHECK(s.conn().unacked() == 0);
  s.in(". 1:1001(1000) ack 3001 win 65535");
  s.in(". 2001:3001(1000) ack 3001 win 65535");
  s.out(". 3001:3001(0) ack 1001 win * <>");
  s.in(". 1001:2001(1000) ack 3001 win 65535");
  s.out(". 3001:3001(0) ack 3001 win * <>");
  CHECK(s.recv_check() == 3000);
}

TEST_CASE("the urgent byte is not delivered in the stream", "[tcp]") {
  Script s;
  establish_plain(s);
  // urg 5: the urgent byte is the 5th of the segment (offset 4).
  s.in("UP. 1:11(10) urg 5 ack 1 win 65535");
  uint8_t buf[16];
  auto r = s.conn().recv(buf, sizeof buf);
  REQUIRE(r.ok());
  CHECK(*r == 4);
  r = s.conn().recv(buf + 4, sizeof buf);
  REQUIRE(r.ok());
  CHECK(*r == 5);
  for (int i = 0; i < 4; i++) CHECK(buf[i] == pattern(i));
  for (int i = 4; i < 9; i++) CHECK(buf[i] == pattern(i + 1));
  CHECK(s.conn().stats().urgent_dropped == 1);
}

TEST_CASE("a segment for no connection is answered with RST as RFC 9293 says", "[tcp]") {
  Script s;
  s.in("S 0:0(0) win 65535");
  s.out("R. 0:0(0) ack 1 win 0 <>");
  s.in(". 5:5(0) ack 99 win 65535");
  s.out("R 99:99(0) win 0 <>");
  s.in("R 5:5(0) win 0");
  s.none();
}

TEST_CASE("the wire format round-trips headers and options", "[tcp]") {
  TcpSegment s;
  s.sport = 1234;
  s.dport = 80;
  s.seq = 0xdeadbeef;
  s.ack = 0x01020304;
  s.flags = kSyn | kAck;
  s.window = 4321;
  s.opt.has_mss = true;
  s.opt.mss = 1460;
  s.opt.sack_permitted = true;
  s.opt.has_ts = true;
  s.opt.tsval = 7;
  s.opt.tsecr = 9;
  s.opt.has_wscale = true;
  s.opt.wscale = 7;
  s.opt.nsack = 2;
  s.opt.sack[0] = {10, 20};
  s.opt.sack[1] = {30, 40};
  uint8_t buf[80] = {};
  size_t n = rump::tcp::tcp_build_header(s, buf);
  CHECK(n % 4 == 0);
  CHECK(n == 20 + 4 + 12 + 4 + 4 + 16);
  memcpy(buf + n, "abc", 3);
  TcpSegment p;
  REQUIRE(rump::tcp::tcp_parse(buf, n + 3, p).ok());
  CHECK(p.sport == 1234);
  CHECK(p.seq == 0xdeadbeef);
  CHECK(p.ack == 0x01020304);
  CHECK(p.flags == (kSyn | kAck));
  CHECK(p.window == 4321);
  CHECK(p.opt.mss == 1460);
  CHECK(p.opt.sack_permitted);
  CHECK(p.opt.tsval == 7);
  CHECK(p.opt.tsecr == 9);
  CHECK(p.opt.wscale == 7);
  CHECK(p.opt.nsack == 2);
  CHECK(p.opt.sack[1].right == 40);
  CHECK(p.len == 3);
  // Malformed: truncated header, data offset past the end, option overrun.
  CHECK(rump::tcp::tcp_parse(buf, 19, p).error() == EINVAL);
  uint8_t bad[24] = {};
  bad[12] = 6 << 4;
  CHECK(rump::tcp::tcp_parse(bad, 20, p).error() == EINVAL);
  bad[20] = 2;
  bad[21] = 40;
  CHECK(rump::tcp::tcp_parse(bad, 24, p).error() == EINVAL);
  bad[21] = 0;  // a zero length would loop forever
  CHECK(rump::tcp::tcp_parse(bad, 24, p).error() == EINVAL);
}

TEST_CASE("sequence comparisons hold across the wrap", "[tcp]") {
  using namespace rump::tcp;
  CHECK(seq_lt(0xfffffff0u, 0x10u));
  CHECK(seq_gt(0x10u, 0xfffffff0u));
  CHECK(seq_in(0x2u, 0xfffffff0u, 0x10u));
  CHECK_FALSE(seq_in(0x10u, 0xfffffff0u, 0x10u));
  CHECK(seq_max(0xfffffff0u, 0x10u) == 0x10u);
}
