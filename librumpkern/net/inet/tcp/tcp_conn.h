// tcp_conn.h: one TCP connection (a TCB, RFC 9293 section 3.3.1) and the
// host interface it runs on.
//
// The engine is independent of IP: a TcpConnection is driven by
//   * segments in (input(), already demultiplexed by the caller),
//   * user calls (connect, send, recv, shutdown, close, abort, options),
//   * timer expiry (on_timer() whenever the clock reaches next_deadline()),
// and produces segments through TcpHost::output(). Time, randomness and
// output come from the TcpHost, so a test drives a connection with a
// virtual clock and a scripted peer, and the inet glue with the kernel's
// clock, callouts and IP output.
//
// Locking: a connection is not thread-safe; its owner (the socket, or the
// listener for a child not yet accepted) serialises every call with the
// lock that guards the TcpConnection object as a whole. Host callbacks run
// with that lock held and must not call back into the connection.
//
// Lifetime: the engine never frees a connection. When state() is kClosed
// and detached() is true, nothing refers to it any more and the host frees
// it (after the call that closed it has returned; never from a callback).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <boost/intrusive/list.hpp>

#include "base/kmem.h"
#include "base/result.h"
#include "net/inet/tcp/tcp_buffer.h"
#include "net/inet/tcp/tcp_cc.h"
#include "net/inet/tcp/tcp_segment.h"

struct tcp_info;

namespace rump::tcp {

class TcpConnection;
class TcpListener;

// States, numbered as Linux numbers them (TCP_INFO's tcpi_state).
enum class TcpState : uint8_t {
  kEstablished = 1,
  kSynSent = 2,
  kSynReceived = 3,
  kFinWait1 = 4,
  kFinWait2 = 5,
  kTimeWait = 6,
  kClosed = 7,
  kCloseWait = 8,
  kLastAck = 9,
  kListen = 10,
  kClosing = 11,
};
const char* tcp_state_name(TcpState s);

// The two ends of a connection, as the IP layer names them.
struct TcpEndpoints {
  uint8_t family = 0;  // AF_INET or AF_INET6
  uint8_t laddr[16] = {};
  uint8_t faddr[16] = {};
  uint16_t lport = 0;
  uint16_t fport = 0;
};

class TcpHost {
 public:
  virtual ~TcpHost() = default;
  // Monotonic time in nanoseconds.
  virtual int64_t now_ns() = 0;
  virtual uint32_t random32() = 0;
  // The initial sequence number of a connection on ep and its timestamp
  // offset (RFC 6528 and RFC 7323 section 5.4 want both unpredictable per
  // connection); random by default.
  virtual uint32_t isn(const TcpEndpoints&) { return random32(); }
  virtual uint32_t ts_offset(const TcpEndpoints&) { return random32(); }
  // Transmits seg from ep.laddr:lport to ep.faddr:fport. A packet the host
  // cannot send is simply lost: retransmission recovers.
  virtual void output(const TcpEndpoints& ep, const TcpSegment& seg) = 0;
  // c's readability, writability, state or error changed.
  virtual void notify(TcpConnection& c) = 0;
  // l has a connection ready to accept().
  virtual void listener_ready(TcpListener& l) = 0;
  // Secret for SYN cookies (stable for the host's lifetime).
  virtual uint64_t cookie_secret() = 0;
};

// Per-connection settings; defaults are Linux's.
struct TcpConfig {
  uint32_t sndbuf = 256 * 1024;
  uint32_t rcvbuf = 128 * 1024;
  uint16_t mss = 1460;  // what we announce (the route's MTU less headers)
  // Payload bytes one segment may carry when the route's device cuts it
  // into MSS-sized segments itself (TSO); 0 or at most the MSS: none.
  uint32_t gso_max = 0;
  // Receive-buffer autotuning grows rcvbuf up to this (Linux's
  // tcp_rmem[2]), and the window scale is chosen for it at SYN time;
  // 0 or at most rcvbuf: the buffer stays as set (SO_RCVBUF).
  uint32_t rcvbuf_max = 0;
  bool window_scaling = true;
  bool sack = true;
  bool timestamps = true;
  CcAlgo cc = CcAlgo::kCubic;
  bool nodelay = false;
  bool keepalive = false;
  int64_t keepidle_ns = 7200LL * 1000000000;
  int64_t keepintvl_ns = 75LL * 1000000000;
  int keepcnt = 9;
  bool linger = false;  // SO_LINGER on ...
  int linger_s = 0;     // ... with this timeout (0: close() resets)
  int syn_retries = 6;
  int synack_retries = 5;
  int retries2 = 15;
  int64_t delack_ns = 40000000;  // Linux's minimum delayed-ACK time
  int64_t rto_initial_ns = 1000000000;
  int64_t rto_min_ns = 200000000;
  int64_t rto_max_ns = 120LL * 1000000000;
  int64_t time_wait_ns = 60LL * 1000000000;  // 2*MSL, as Linux's TCP_TIMEWAIT_LEN
  int64_t fin_timeout_ns = 60LL * 1000000000;
  // At most one answer per this long to invalid segments without data
  // (net.ipv4.tcp_invalid_ratelimit, 500 ms as Linux's; 0 or less: no
  // limit).
  int64_t invalid_ratelimit_ns = 500000000;
};

// Counters for TCP_INFO and tests.
struct TcpStats {
  uint64_t segs_in = 0;
  uint64_t segs_out = 0;
  uint64_t data_segs_in = 0;
  uint64_t data_segs_out = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_retrans = 0;
  uint64_t bytes_acked = 0;
  uint64_t bytes_received = 0;
  uint32_t total_retrans = 0;
  uint32_t dsack_dups = 0;
  uint32_t rcv_ooopack = 0;
  uint32_t paws_drops = 0;
  uint32_t challenge_acks = 0;
  uint32_t fast_retransmits = 0;
  uint32_t rto_expiries = 0;
  uint32_t urgent_dropped = 0;
};

// What a connection in TIME_WAIT still needs once its user is gone: a
// host may keep this instead of the whole connection (TcpConnection::
// time_wait_state), as Linux keeps an inet_timewait_sock, and hand it the
// segments for the 4-tuple (tcp_time_wait_input).
struct TcpTimeWaitState {
  Seq snd_nxt = 0;        // SND.UNA = SND.NXT: our FIN was acknowledged
  Seq rcv_nxt = 0;        // past the peer's FIN
  Seq rcv_adv = 0;        // the right edge of the window offered
  Seq last_ack_sent = 0;
  uint32_t max_snd_wnd = 0;
  uint16_t window = 0;    // the window field of our ACKs
  bool ts_ok = false;
  uint32_t ts_recent = 0;
  int64_t ts_recent_age = 0;
  uint32_t ts_offset = 0;
  int64_t expire_ns = 0;     // when TIME_WAIT ends (monotonic)
  int64_t time_wait_ns = 0;  // how long a retransmitted FIN restarts it for
};

enum class TimeWaitAction : uint8_t {
  kDrop,    // nothing to send
  kReply,   // send the reply (an ACK)
  kClose,   // a RST ended TIME_WAIT (RFC 9293 3.10.7.4; Linux's default rfc1337=0)
  kReopen,  // a SYN that may open a new incarnation: end TIME_WAIT and give
            // it to a listener, with ISS tcp_time_wait_reopen_iss()
};

// A segment for a 4-tuple in TIME_WAIT, by RFC 9293 3.10.7.4 with PAWS
// (RFC 7323 5.3) and the challenge ACKs of RFC 5961: a retransmitted FIN
// restarts the timer and is acknowledged, an out-of-window segment is
// acknowledged, an exact RST closes, a SYN whose timestamp (without
// timestamps: sequence number) is newer than the last incarnation's may
// reopen (RFC 6191). tw's timestamp and expiry may change; reply gets
// the ACK to send (ports from seg). stats may be null.
TimeWaitAction tcp_time_wait_input(TcpTimeWaitState& tw, const TcpSegment& seg, int64_t now, TcpSegment& reply,
                                   TcpStats* stats);
// TIME_WAIT's ACK of seg (ports from seg): SND.NXT, RCV.NXT, the window
// offered, timestamps.
void tcp_time_wait_ack(const TcpTimeWaitState& tw, const TcpSegment& seg, int64_t now, TcpSegment& reply);
// Would a SYN open a new incarnation over tw (RFC 6191)?
bool tcp_time_wait_accepts_syn(const TcpTimeWaitState& tw, const TcpSegment& seg);
// The ISS of a connection that reopens tw's 4-tuple: beyond anything the
// last incarnation sent and the largest window it could still see, as
// Linux's (SND.NXT + 65535 + 2).
inline Seq tcp_time_wait_reopen_iss(const TcpTimeWaitState& tw) {
  Seq iss = tw.snd_nxt + 65535 + 2;
  return iss == 0 ? 1 : iss;
}

class TcpConnection : public KObject {
 public:
  // A connection in kClosed with the given endpoints, ready for connect()
  // (or for a listener to make it a child). ENOMEM.
  static Result<TcpConnection*> create(Kmem& kmem, TcpHost& host, const TcpEndpoints& ep,
                                       const TcpConfig& cfg);
  ~TcpConnection();

  // ---- segments and time ----
  // A segment for this connection's 4-tuple (any state but kListen).
  void input(const TcpSegment& seg);
  // A SYN that reached this connection in TIME_WAIT and may open a new
  // incarnation (RFC 6191: its timestamp is newer, or without timestamps
  // its sequence number is beyond RCV.NXT). The host then closes this
  // connection (abort_time_wait()) and gives the SYN to the listener.
  bool time_wait_accepts_syn(const TcpSegment& seg) const;
  void abort_time_wait();
  // In TIME_WAIT: fills tw with what the state still needs (the host may
  // then keep tw and free the connection). False in any other state.
  bool time_wait_state(TcpTimeWaitState& tw);
  // The earliest pending timer (INT64_MAX if none).
  int64_t next_deadline() const;
  // Runs every timer due at host.now_ns().
  void on_timer();

  // ---- user calls ----
  // Active open: sends a SYN. EISCONN / EALREADY if not closed. iss: the
  // initial sequence number to use (a TIME_WAIT taken over), else a fresh
  // one.
  Result<void> connect(std::optional<Seq> iss = std::nullopt);
  // Queues up to n bytes; returns how many (EAGAIN if none fit, EPIPE after
  // shutdown, the connection's error if it failed, ENOTCONN before
  // connect). more: more data follows at once (MSG_MORE): hold a partial
  // segment as TCP_CORK would.
  Result<size_t> send(const uint8_t* data, size_t n, bool more = false);
  // The same two calls for a host that copies user memory without holding
  // its lock (a reader or writer marked busy meanwhile, so that calls of
  // one kind never overlap): send_room() checks as send() and returns the
  // free room of the send buffer as up to two pieces, which the host
  // fills and hands over with send_commit(); recv_pieces() gives the
  // readable bytes at the head of the receive buffer (0 with *p1 null
  // when recv() must be used: end of stream, an error, urgent data
  // ahead), recv_consume() drops n of them and updates the window as
  // recv() does. Input only appends beyond those bytes meanwhile.
  Result<size_t> send_room(uint8_t** p1, size_t* l1, uint8_t** p2, size_t* l2);
  void send_commit(size_t n, bool more = false);
  // recv_pieces() starts at offset off of the readable bytes (a peek
  // going on), may give fewer bytes than are readable (the host calls
  // again), and returns how many are readable from off; pins gets
  // references on lent bytes the pieces show (ByteRing::pin_lent), which
  // the host gives back once it copied them.
  size_t recv_pieces(size_t off, const uint8_t** p1, size_t* l1, const uint8_t** p2, size_t* l2,
                     void* pins[2]) const;
  void recv_consume(size_t n);
  // Copies up to n received bytes; peek leaves them queued. Returns 0 at
  // end of stream, EAGAIN if nothing is there yet, the error of a reset
  // connection, ENOTCONN before the connection exists.
  Result<size_t> recv(uint8_t* dst, size_t n, bool peek = false);
  // SHUT_WR: a FIN after the queued data. ENOTCONN if never connected.
  Result<void> shutdown_write();
  // SHUT_RD: later data is discarded (as Linux, nothing is sent).
  void shutdown_read();
  // The user lets go (close(2)): unread data or SO_LINGER 0 reset the
  // connection; otherwise a FIN follows the queued data and the connection
  // finishes on its own. The connection is detached afterwards.
  void close();
  // Sends RST (if synchronized) and goes to kClosed with no error.
  void abort();
  // A connection its user closed that carries no data any more
  // (TIME_WAIT, CLOSED) gives its buffers' memory back, so that many
  // TIME_WAIT connections cost little. The host calls it when it likes.
  void release_buffers();
  // Marks the connection as no longer referenced by a user (children a
  // listener dropped); the host frees it once closed.
  void detach() { detached_ = true; }
  // Moves the connection to another host (a child a listener made goes to
  // the socket that accepts it). Under the lock that guards both.
  void set_host(TcpHost& host) { host_ = &host; }

  // ---- options ----
  void set_nodelay(bool on);
  void set_cork(bool on);
  Result<void> set_congestion(std::string_view name);
  const char* congestion() const { return cc_name(cc_.algo()); }
  void set_keepalive(bool on);
  Result<void> set_keepidle(int seconds);
  Result<void> set_keepintvl(int seconds);
  Result<void> set_keepcnt(int n);
  void set_linger(bool on, int seconds);
  // Buffer sizes, also on a running connection (as Linux's SO_SNDBUF and
  // SO_RCVBUF): the buffer moves to storage of the new size, never below
  // what it holds (nor, for receiving, the window already offered).
  // ENOMEM; EAGAIN for a receive buffer holding out-of-order bytes (try
  // later). The host must not be copying in or out of the buffer meanwhile.
  Result<void> set_sndbuf(uint32_t bytes);
  // Send-buffer autotuning (as Linux's tcp_sndbuf_expand): a full send
  // buffer grows to twice what the congestion and peer windows let fly
  // (at least by half, at most to max), so that a path with a long round
  // trip (a tap, a loaded host) is not held to one buffer per round trip.
  // The host calls it when the buffer is full, it is not copying into it,
  // and the user has not set SO_SNDBUF; true if it grew (config().sndbuf
  // is the new size; ENOMEM keeps the old buffer).
  bool expand_sndbuf(uint32_t max);
  Result<void> set_rcvbuf(uint32_t bytes);
  // Receive-buffer autotuning (as Linux's tcp_rcv_space_adjust): once a
  // round trip, when the reader took more in it than in the one before,
  // the buffer grows to about twice that rate's window (faster while the
  // rate climbs), up to config().rcvbuf_max. The host calls it after the
  // reader consumed bytes, the reader being itself; true if it grew
  // (config().rcvbuf is the new size; ENOMEM keeps the old buffer).
  bool rcv_space_adjust();
  Result<void> set_maxseg(int mss);
  const TcpConfig& config() const { return cfg_; }
  void fill_info(struct tcp_info& info) const;

  // ---- state ----
  TcpState state() const { return state_; }
  bool detached() const { return detached_; }
  const TcpEndpoints& endpoints() const { return ep_; }
  // Bytes readable now, whether the peer's FIN has been read up to, room
  // in the send buffer.
  size_t readable() const { return rcvbuf_.size() - (urg_pending_in_buffer() ? 1 : 0); }
  bool read_eof() const;
  size_t send_space() const;
  // The pending error (ECONNREFUSED, ECONNRESET, ETIMEDOUT), cleared by
  // take_error() as SO_ERROR reads it.
  int error() const { return error_; }
  int take_error();
  bool write_shut() const { return fin_queued_; }
  bool established_once() const { return was_established_; }
  const TcpStats& stats() const { return stats_; }
  uint32_t cwnd() const { return cc_.cwnd(); }
  uint32_t ssthresh() const { return cc_.ssthresh(); }
  uint32_t smss() const { return smss_; }
  uint32_t snd_wnd() const { return snd_wnd_; }
  int64_t rto_ns() const { return rto_ns_; }
  int64_t srtt_ns() const { return srtt_ns_; }
  uint32_t unacked() const { return snd_max_ - snd_una_; }
  size_t send_queued() const { return sndbuf_.size(); }
  // A reference on the send buffer's storage if p points into it (an
  // output segment's payload), for a packet that borrows the bytes
  // instead of copying them (ByteRing::unshare lets go); null otherwise.
  void* share_send_bytes(const uint8_t* p) const { return sndbuf_.holds(p) ? sndbuf_.share() : nullptr; }

  // The listener this connection is queued on, if any.
  TcpListener* listener() const { return listener_; }

  // Listener queues (SYN queue, accept queue).
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>>
      queue_hook_;
  // For the host's own lists (the children of a listening socket).
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>>
      host_hook_;

 private:
  friend class TcpListener;
  TcpConnection(Kmem& kmem, TcpHost& host, const TcpEndpoints& ep, const TcpConfig& cfg);

  // Passive open by a listener: the peer's SYN arrived; sends SYN-ACK.
  void accept_syn(const TcpSegment& syn, Seq iss);
  // A SYN-cookie handshake completed: straight to ESTABLISHED.
  void accept_cookie(const TcpSegment& ack, Seq iss, uint16_t mss, int wscale, bool sack,
                     bool ts);

  // Input, by state.
  void input_syn_sent(const TcpSegment& seg);
  bool acceptable(const TcpSegment& seg) const;
  void process_rst(const TcpSegment& seg);
  bool process_ack(const TcpSegment& seg);
  void new_ack(const TcpSegment& seg, Seq ack);
  void duplicate_ack(const TcpSegment& seg);
  void note_sack(const SackBlock& b);
  void process_data(const TcpSegment& seg);
  void write_payload(size_t off, const TcpSegment& seg, size_t len);
  void process_fin();
  void negotiate(const TcpOptions& o, bool peer_syn_has_ws);
  // The receive window scale for the largest buffer autotuning may give.
  void choose_rcv_wscale();
  void update_window(const TcpSegment& seg);
  void rtt_sample(int64_t rtt_ns);

  // Output.
  void output();
  // One segment: seq, len payload bytes from the send buffer at seq, flags.
  void emit(Seq seq, size_t len, uint8_t flags);
  void send_ack() { emit(ack_seq(), 0, kAck); }
  // The sequence number of a segment without data (an ACK, a reset).
  Seq ack_seq() const;
  // The ACK that answers an invalid segment (out of the window, an old
  // timestamp, an ACK of what was never sent, a RST or SYN to challenge):
  // at most one per cfg_.invalid_ratelimit_ns when that segment carries
  // no data (Linux's tcp_oow_rate_limited), so that
  // two ends that each find the other's ACKs invalid (through a fault of
  // either, or a peer that numbers its segments badly) do not answer each
  // other for ever. A segment with data is always answered (a duplicate
  // ACK the sender's recovery counts on).
  void send_invalid_ack(const TcpSegment& seg);
  // A reset, numbered as an ACK is (ack_seq).
  void send_rst();
  void send_syn(bool with_ack);
  uint16_t advertised_window();
  void schedule_ack(bool now);
  void retransmit_first();
  uint32_t flight() const { return snd_nxt_ - snd_una_; }

  // Timers.
  void arm_rexmt();
  void on_rexmt();
  void on_persist();
  void on_keepalive();
  void reset_keepalive();
  void enter_time_wait();

  // State changes.
  void set_state(TcpState s);
  void to_closed(int error);
  void established();
  uint32_t ts_now() const;
  int64_t now() const { return host_->now_ns(); }
  bool synchronized() const;
  bool urg_pending_in_buffer() const;
  // The window update after the user consumed bytes.
  void after_read();
  // Room for new bytes in the receive buffer as the user sized it (the
  // storage stays larger after SO_RCVBUF shrank it, until the window
  // offered before fits the new size).
  size_t rcv_space() const;
  Seq data_start() const { return snd_buf_seq_; }

  Kmem& kmem_;
  TcpHost* host_;  // never null
  TcpEndpoints ep_;
  TcpConfig cfg_;
  TcpState state_ = TcpState::kClosed;
  TcpListener* listener_ = nullptr;
  bool detached_ = false;
  bool user_closed_ = false;
  bool was_established_ = false;
  bool passive_ = false;
  int error_ = 0;

  // Send sequence space.
  Seq iss_ = 0;
  Seq snd_una_ = 0;
  Seq snd_nxt_ = 0;
  Seq snd_max_ = 0;
  Seq snd_buf_seq_ = 0;  // sequence number of sndbuf_'s first byte
  uint32_t snd_wnd_ = 0;
  uint32_t max_snd_wnd_ = 0;
  Seq snd_wl1_ = 0;
  Seq snd_wl2_ = 0;
  bool fin_queued_ = false;
  bool fin_sent_ = false;
  Seq fin_seq_ = 0;
  bool cork_ = false;
  bool more_ = false;

  // Receive sequence space.
  Seq irs_ = 0;
  Seq rcv_nxt_ = 0;
  Seq rcv_adv_ = 0;  // right edge of the window we advertised
  bool rcv_fin_ = false;  // the peer's FIN has been received in order
  bool fin_ooo_ = false;  // a FIN arrived beyond a hole
  Seq fin_ooo_seq_ = 0;
  bool read_shut_ = false;
  bool urg_valid_ = false;
  Seq urg_seq_ = 0;  // the urgent byte, skipped by recv()
  Seq rcv_user_seq_ = 0;  // sequence number of rcvbuf_'s first byte
  // Autotuning's measure: what the reader had consumed (rcvq_seq_) at
  // rcvq_time_, and the most it consumed in one round trip so far.
  Seq rcvq_seq_ = 0;
  int64_t rcvq_time_ = 0;
  uint32_t rcvq_space_ = 0;

  // Options.
  uint8_t snd_wscale_ = 0;
  uint8_t rcv_wscale_ = 0;
  bool ws_ok_ = false;
  bool ts_ok_ = false;
  bool sack_ok_ = false;
  uint32_t ts_recent_ = 0;
  int64_t ts_recent_age_ = 0;
  uint32_t ts_offset_ = 0;
  Seq last_ack_sent_ = 0;
  uint32_t smss_ = 536;  // sender MSS: payload bytes per segment
  uint16_t peer_mss_ = 536;

  // Round-trip time and retransmission (RFC 6298).
  int64_t srtt_ns_ = 0;
  int64_t rttvar_ns_ = 0;
  int64_t rto_ns_ = 0;
  int64_t min_rtt_ns_ = 0;
  bool rtt_timing_ = false;
  Seq rtt_seq_ = 0;
  int64_t rtt_start_ns_ = 0;
  int backoff_ = 0;

  // Loss recovery (RFC 5681, RFC 6582).
  CongestionControl cc_;
  int dupacks_ = 0;
  bool in_recovery_ = false;
  Seq recover_ = 0;
  bool recover_valid_ = false;
  // The peer's SACK blocks above SND.UNA (a small scoreboard: which
  // sequence ranges need no retransmission).
  SackBlock sacked_[kMaxSackBlocks] = {};
  int nsacked_ = 0;

  // ACK scheduling.
  bool ack_now_ = false;
  int unacked_segs_ = 0;

  // Timers: absolute deadlines, 0 = off.
  int64_t rexmt_at_ = 0;
  int64_t persist_at_ = 0;
  int64_t delack_at_ = 0;
  int64_t keep_at_ = 0;
  int64_t timewait_at_ = 0;  // TIME_WAIT, and the orphan FIN_WAIT_2 timeout
  int persist_shift_ = 0;
  int keep_probes_ = 0;
  int64_t last_recv_ns_ = 0;
  int64_t last_send_ns_ = 0;
  int64_t last_invalid_ack_ns_ = -1;  // send_invalid_ack's last ACK, -1: none yet
  int64_t last_data_recv_ns_ = 0;
  int64_t last_data_send_ns_ = 0;
  int64_t last_ack_recv_ns_ = 0;

  ByteRing sndbuf_;
  ByteRing rcvbuf_;
  RecvQueue ooo_;
  TcpStats stats_;
};

// A reply to a segment that reached no connection or listener (RFC 9293
// 3.10.7.1): RST for anything but a RST.
void tcp_respond_closed(TcpHost& host, const TcpEndpoints& ep, const TcpSegment& seg);

}  // namespace rump::tcp
