// tcp_conn.cc: a connection's life cycle and user calls: open, send,
// receive, shutdown, close, abort, options.
#include "net/inet/tcp/tcp_conn.h"

#include <cstring>

#include "net/inet/tcp/tcp_listen.h"

namespace rump::tcp {

const char* tcp_state_name(TcpState s) {
  switch (s) {
    case TcpState::kEstablished: return "ESTABLISHED";
    case TcpState::kSynSent: return "SYN_SENT";
    case TcpState::kSynReceived: return "SYN_RECEIVED";
    case TcpState::kFinWait1: return "FIN_WAIT_1";
    case TcpState::kFinWait2: return "FIN_WAIT_2";
    case TcpState::kTimeWait: return "TIME_WAIT";
    case TcpState::kClosed: return "CLOSED";
    case TcpState::kCloseWait: return "CLOSE_WAIT";
    case TcpState::kLastAck: return "LAST_ACK";
    case TcpState::kListen: return "LISTEN";
    case TcpState::kClosing: return "CLOSING";
  }
  return "?";
}

TcpConnection::TcpConnection(Kmem& kmem, TcpHost& host, const TcpEndpoints& ep,
                             const TcpConfig& cfg)
    : kmem_(kmem), host_(&host), ep_(ep), cfg_(cfg) {
  sndbuf_.set_capacity(cfg_.sndbuf);
  rcvbuf_.set_capacity(cfg_.rcvbuf);
  rto_ns_ = cfg_.rto_initial_ns;
  cc_.init(cfg_.cc, smss_);
}

Result<TcpConnection*> TcpConnection::create(Kmem& kmem, TcpHost& host, const TcpEndpoints& ep,
                                             const TcpConfig& cfg) {
  auto* c = new (kmem) TcpConnection(kmem, host, ep, cfg);
  if (c == nullptr) return err(ENOMEM);
  return c;
}

TcpConnection::~TcpConnection() {
  if (listener_ != nullptr) listener_->child_closed(*this);
}

bool TcpConnection::synchronized() const {
  return state_ != TcpState::kClosed && state_ != TcpState::kListen &&
         state_ != TcpState::kSynSent && state_ != TcpState::kSynReceived;
}

uint32_t TcpConnection::ts_now() const {
  return static_cast<uint32_t>(host_->now_ns() / 1000000) + ts_offset_;
}

void TcpConnection::set_state(TcpState s) {
  state_ = s;
  if (s == TcpState::kEstablished || s == TcpState::kCloseWait) reset_keepalive();
  else keep_at_ = 0;
  host_->notify(*this);
}

void TcpConnection::to_closed(int error) {
  if (error != 0) error_ = error;
  rexmt_at_ = persist_at_ = delack_at_ = keep_at_ = timewait_at_ = 0;
  ack_now_ = false;
  set_state(TcpState::kClosed);
  if (listener_ != nullptr) listener_->child_closed(*this);
}

void TcpConnection::established() {
  was_established_ = true;
  set_state(TcpState::kEstablished);
  if (listener_ != nullptr) listener_->child_established(*this);
}

// The sender's segment size from the peer's MSS and ours, less the
// timestamp option every segment carries once negotiated.
void TcpConnection::negotiate(const TcpOptions& o, bool peer_syn_has_ws) {
  peer_mss_ = o.has_mss ? o.mss : 536;
  ws_ok_ = cfg_.window_scaling && peer_syn_has_ws;
  if (ws_ok_) {
    snd_wscale_ = o.wscale;
  } else {
    snd_wscale_ = 0;
    rcv_wscale_ = 0;
  }
  ts_ok_ = cfg_.timestamps && o.has_ts;
  if (ts_ok_) {
    ts_recent_ = o.tsval;
    ts_recent_age_ = now();
  }
  sack_ok_ = cfg_.sack && o.sack_permitted;
  uint32_t m = peer_mss_ < cfg_.mss ? peer_mss_ : cfg_.mss;
  if (ts_ok_) m -= 12;
  if (m < 64) m = 64;
  smss_ = m;
  cc_.set_smss(smss_);
}

Result<void> TcpConnection::connect(std::optional<Seq> iss) {
  switch (state_) {
    case TcpState::kClosed:
      break;
    case TcpState::kSynSent:
    case TcpState::kSynReceived:
      return err(EALREADY);
    default:
      return err(EISCONN);
  }
  if (was_established_ || error_ != 0) return err(EISCONN);
  iss_ = iss ? *iss : host_->isn(ep_);
  ts_offset_ = host_->ts_offset(ep_);
  snd_una_ = snd_nxt_ = snd_max_ = iss_;
  snd_buf_seq_ = iss_ + 1;
  // The smallest shift that lets the whole receive buffer be advertised.
  rcv_wscale_ = 0;
  if (cfg_.window_scaling) choose_rcv_wscale();
  set_state(TcpState::kSynSent);
  send_syn(false);
  return {};
}

void TcpConnection::accept_syn(const TcpSegment& syn, Seq iss) {
  passive_ = true;
  iss_ = iss;
  ts_offset_ = host_->ts_offset(ep_);
  snd_una_ = snd_nxt_ = snd_max_ = iss_;
  snd_buf_seq_ = iss_ + 1;
  irs_ = syn.seq;
  rcv_nxt_ = rcv_user_seq_ = syn.seq + 1;
  rcv_wscale_ = 0;
  if (cfg_.window_scaling && syn.opt.has_wscale) choose_rcv_wscale();
  negotiate(syn.opt, syn.opt.has_wscale);
  snd_wnd_ = syn.window;  // never scaled in a SYN
  max_snd_wnd_ = snd_wnd_;
  snd_wl1_ = syn.seq;
  snd_wl2_ = iss_;
  last_recv_ns_ = now();
  set_state(TcpState::kSynReceived);
  send_syn(true);
}

void TcpConnection::accept_cookie(const TcpSegment& ack, Seq iss, uint16_t mss, int wscale,
                                  bool sack, bool ts) {
  passive_ = true;
  iss_ = iss;
  ts_offset_ = 0;
  irs_ = ack.seq - 1;
  rcv_nxt_ = rcv_user_seq_ = ack.seq;
  snd_buf_seq_ = iss_ + 1;
  snd_una_ = snd_nxt_ = snd_max_ = ack.ack;
  TcpOptions o;
  o.has_mss = true;
  o.mss = mss;
  o.has_wscale = wscale >= 0;
  o.wscale = static_cast<uint8_t>(wscale < 0 ? 0 : wscale);
  o.sack_permitted = sack;
  o.has_ts = ts;
  o.tsval = ack.opt.tsval;
  rcv_wscale_ = 0;
  if (cfg_.window_scaling && wscale >= 0) choose_rcv_wscale();
  negotiate(o, wscale >= 0);
  if (ts_ok_) {
    // Continue the timestamp clock the cookie SYN-ACK used (offset 0).
    ts_offset_ = 0;
  }
  snd_wnd_ = static_cast<uint32_t>(ack.window) << snd_wscale_;
  max_snd_wnd_ = snd_wnd_;
  snd_wl1_ = ack.seq;
  snd_wl2_ = ack.ack;
  rcv_adv_ = rcv_nxt_ + (cfg_.rcvbuf < 65535u << rcv_wscale_ ? cfg_.rcvbuf : 65535u << rcv_wscale_);
  last_recv_ns_ = last_ack_recv_ns_ = now();
  established();
}

Result<size_t> TcpConnection::send(const uint8_t* data, size_t n, bool more) {
  uint8_t *p1, *p2;
  size_t l1, l2;
  size_t room = TRY(send_room(&p1, &l1, &p2, &l2));
  if (room == 0 && n > 0) return err(EAGAIN);
  size_t a = n < l1 ? n : l1;
  size_t b = n - a < l2 ? n - a : l2;
  if (a) memcpy(p1, data, a);
  if (b) memcpy(p2, data + a, b);
  if (a + b == 0) {
    if (synchronized()) output();
    return size_t{0};
  }
  send_commit(a + b, more);
  return a + b;
}

size_t TcpConnection::send_space() const {
  if (!sndbuf_.allocated()) return cfg_.sndbuf;
  return sndbuf_.space();
}

bool TcpConnection::urg_pending_in_buffer() const {
  return urg_valid_ && seq_in(urg_seq_, rcv_user_seq_, rcv_user_seq_ + rcvbuf_.size());
}

bool TcpConnection::read_eof() const {
  return (rcv_fin_ || read_shut_ || state_ == TcpState::kClosed) && readable() == 0;
}

Result<size_t> TcpConnection::recv(uint8_t* dst, size_t n, bool peek) {
  size_t have = rcvbuf_.size();
  if (have == 0) {
    if (read_shut_ || rcv_fin_) return size_t{0};
    if (state_ == TcpState::kClosed) {
      if (error_ != 0) return err(take_error());
      return was_established_ ? Result<size_t>(size_t{0}) : Result<size_t>(err(ENOTCONN));
    }
    if (state_ == TcpState::kSynSent || state_ == TcpState::kSynReceived) return err(EAGAIN);
    return err(EAGAIN);
  }
  // The urgent byte is not part of the stream (no SO_OOBINLINE): a read
  // stops before it and the next one skips it.
  size_t off = 0;
  if (urg_pending_in_buffer()) {
    size_t upos = urg_seq_ - rcv_user_seq_;
    if (upos == 0) {
      off = 1;
      if (!peek) {
        rcvbuf_.drop(1);
        rcv_user_seq_++;
        urg_valid_ = false;
        off = 0;
      }
      have = rcvbuf_.size() - off;
    } else {
      have = upos;
    }
  }
  size_t take = n < have ? n : have;
  rcvbuf_.copy_out(off, dst, take);
  if (!peek) {
    rcvbuf_.drop(take);
    rcv_user_seq_ += static_cast<uint32_t>(take);
    after_read();
  }
  return take;
}

void TcpConnection::after_read() {
  // Window update: tell the peer when the window has opened by two
  // segments or half the buffer since we last advertised (RFC 1122
  // 4.2.3.3, receiver-side silly window avoidance).
  if (synchronized() && !rcv_fin_) {
    uint32_t space = static_cast<uint32_t>(rcv_space());
    uint32_t max_win = 65535u << rcv_wscale_;
    if (space > max_win) space = max_win;
    uint32_t adv = rcv_adv_ - rcv_nxt_;
    uint32_t step = 2 * smss_ < cfg_.rcvbuf / 2 ? 2 * smss_ : cfg_.rcvbuf / 2;
    if (space > adv && space - adv >= step) {
      send_ack();
    }
  }
}

size_t TcpConnection::recv_pieces(size_t off, const uint8_t** p1, size_t* l1, const uint8_t** p2, size_t* l2,
                                  void* pins[2]) const {
  size_t have = rcvbuf_.size();
  pins[0] = pins[1] = nullptr;
  if (have <= off || urg_pending_in_buffer()) {
    *p1 = *p2 = nullptr;
    *l1 = *l2 = 0;
    return 0;
  }
  have -= off;
  rcvbuf_.pieces(off, have, p1, l1, p2, l2);
  rcvbuf_.pin_lent(off, *l1 + *l2, pins);
  return have;
}

void TcpConnection::recv_consume(size_t n) {
  if (n > rcvbuf_.size()) n = rcvbuf_.size();
  // A SHUT_RD or reset meanwhile emptied the buffer: nothing to drop.
  if (n == 0) return;
  rcvbuf_.drop(n);
  rcv_user_seq_ += static_cast<uint32_t>(n);
  // Storage kept for a window offered before SO_RCVBUF shrank the buffer
  // goes once that window fits the new size.
  if (rcvbuf_.capacity() > cfg_.rcvbuf && ooo_.empty() && rcvbuf_.size() <= cfg_.rcvbuf &&
      static_cast<uint32_t>(rcv_adv_ - rcv_user_seq_) <= cfg_.rcvbuf) {
    (void)rcvbuf_.resize(kmem_, cfg_.rcvbuf);
  }
  after_read();
}

size_t TcpConnection::rcv_space() const {
  size_t space = rcvbuf_.space();
  size_t limit = cfg_.rcvbuf > rcvbuf_.size() ? cfg_.rcvbuf - rcvbuf_.size() : 0;
  return space < limit ? space : limit;
}

Result<size_t> TcpConnection::send_room(uint8_t** p1, size_t* l1, uint8_t** p2, size_t* l2) {
  if (error_ != 0 && state_ == TcpState::kClosed) return err(take_error());
  if (fin_queued_ || user_closed_) return err(EPIPE);
  switch (state_) {
    case TcpState::kClosed:
    case TcpState::kListen:
      return err(was_established_ ? EPIPE : ENOTCONN);
    case TcpState::kSynSent:
    case TcpState::kSynReceived:
    case TcpState::kEstablished:
    case TcpState::kCloseWait:
      break;
    default:
      return err(EPIPE);
  }
  TRY(sndbuf_.prepare(kmem_));
  TRY(sndbuf_.own_free_room(kmem_));
  sndbuf_.free_pieces(p1, l1, p2, l2);
  return *l1 + *l2;
}

void TcpConnection::send_commit(size_t n, bool more) {
  if (n > sndbuf_.space()) n = sndbuf_.space();
  // The connection may have failed or been shut while the host copied:
  // then the bytes are dropped, as send() would have refused them.
  if (n == 0 || fin_queued_ || state_ == TcpState::kClosed) return;
  sndbuf_.commit(n);
  more_ = more;
  if (synchronized()) output();
  more_ = false;
}

Result<void> TcpConnection::shutdown_write() {
  switch (state_) {
    case TcpState::kClosed:
      if (error_ != 0 || was_established_) return {};
      return err(ENOTCONN);
    case TcpState::kListen:
      return err(ENOTCONN);
    case TcpState::kSynSent:
      // Nothing was sent yet but the SYN: just stop.
      to_closed(0);
      return {};
    case TcpState::kSynReceived:
    case TcpState::kEstablished:
      fin_queued_ = true;
      set_state(TcpState::kFinWait1);
      break;
    case TcpState::kCloseWait:
      fin_queued_ = true;
      set_state(TcpState::kLastAck);
      break;
    default:
      return {};
  }
  if (synchronized()) output();
  return {};
}

void TcpConnection::shutdown_read() {
  read_shut_ = true;
  rcvbuf_.drop(rcvbuf_.size());
  rcv_user_seq_ = rcv_nxt_;
  host_->notify(*this);
}

void TcpConnection::close() {
  user_closed_ = true;
  detached_ = true;
  bool unread = rcvbuf_.size() > 0;
  if (state_ == TcpState::kClosed || state_ == TcpState::kTimeWait) return;
  if (state_ == TcpState::kSynSent) {
    to_closed(0);
    return;
  }
  // RFC 2525 2.17 and Linux: closing with unread data, or with SO_LINGER
  // and a zero timeout, resets the connection instead of a FIN.
  if (unread || (cfg_.linger && cfg_.linger_s == 0)) {
    abort();
    return;
  }
  (void)shutdown_write();
  if (state_ == TcpState::kFinWait2 && timewait_at_ == 0) timewait_at_ = now() + cfg_.fin_timeout_ns;
}

void TcpConnection::abort() {
  if (state_ == TcpState::kSynReceived || synchronized()) {
    if (state_ != TcpState::kTimeWait) send_rst();
  }
  rcvbuf_.drop(rcvbuf_.size());
  to_closed(0);
}

void TcpConnection::release_buffers() {
  if (!user_closed_ || (state_ != TcpState::kTimeWait && state_ != TcpState::kClosed)) return;
  sndbuf_.release();
  rcvbuf_.release();
  ooo_.clear();
}

int TcpConnection::take_error() {
  int e = error_;
  error_ = 0;
  return e;
}

void TcpConnection::set_nodelay(bool on) {
  cfg_.nodelay = on;
  if (on && synchronized()) output();
}

void TcpConnection::set_cork(bool on) {
  cork_ = on;
  if (!on && synchronized()) output();
}

Result<void> TcpConnection::set_congestion(std::string_view name) {
  CcAlgo a;
  if (!cc_from_name(name, &a)) return err(ENOENT);
  cfg_.cc = a;
  cc_.set_algo(a);
  return {};
}

void TcpConnection::set_keepalive(bool on) {
  cfg_.keepalive = on;
  reset_keepalive();
}

Result<void> TcpConnection::set_keepidle(int seconds) {
  if (seconds < 1 || seconds > 32767) return err(EINVAL);
  cfg_.keepidle_ns = static_cast<int64_t>(seconds) * 1000000000;
  reset_keepalive();
  return {};
}

Result<void> TcpConnection::set_keepintvl(int seconds) {
  if (seconds < 1 || seconds > 32767) return err(EINVAL);
  cfg_.keepintvl_ns = static_cast<int64_t>(seconds) * 1000000000;
  return {};
}

Result<void> TcpConnection::set_keepcnt(int n) {
  if (n < 1 || n > 127) return err(EINVAL);
  cfg_.keepcnt = n;
  return {};
}

void TcpConnection::set_linger(bool on, int seconds) {
  cfg_.linger = on;
  cfg_.linger_s = seconds < 0 ? 0 : seconds;
}

Result<void> TcpConnection::set_sndbuf(uint32_t bytes) {
  // Never below what is queued: those bytes stay until acknowledged.
  size_t cap = bytes > sndbuf_.size() ? bytes : sndbuf_.size();
  TRY(sndbuf_.resize(kmem_, cap));
  cfg_.sndbuf = bytes;
  return {};
}

bool TcpConnection::expand_sndbuf(uint32_t max) {
  if (!sndbuf_.allocated() || sndbuf_.space() != 0) return false;
  if (state_ != TcpState::kEstablished && state_ != TcpState::kCloseWait) return false;
  uint64_t cap = sndbuf_.capacity();
  uint32_t fly = cc_.cwnd() < snd_wnd_ ? cc_.cwnd() : snd_wnd_;
  uint64_t want = 2 * static_cast<uint64_t>(fly);
  if (want <= cap || cap >= max) return false;
  if (want < cap + cap / 2) want = cap + cap / 2;
  if (want > max) want = max;
  if (!sndbuf_.resize(kmem_, static_cast<size_t>(want)).ok()) return false;
  cfg_.sndbuf = static_cast<uint32_t>(want);
  return true;
}

Result<void> TcpConnection::set_rcvbuf(uint32_t bytes) {
  // A size the user sets stays (Linux's SOCK_RCVBUF_LOCK).
  cfg_.rcvbuf_max = 0;
  if (state_ == TcpState::kClosed) {
    cfg_.rcvbuf = bytes;
    rcvbuf_.set_capacity(bytes);
    return {};
  }
  // Out-of-order bytes sit beyond the contents and would not move: wait
  // until the hole is filled.
  if (!ooo_.empty()) return err(EAGAIN);
  // Never below the unread bytes, nor below the window already offered
  // (RFC 9293 3.8.6.2.2: it is not taken back), so that what the peer
  // sends into it is kept rather than dropped and sent again after a
  // retransmission timeout; later windows follow the new size, and the
  // storage shrinks to it once the old window fits (recv_consume).
  size_t keep = bytes > rcvbuf_.size() ? bytes : rcvbuf_.size();
  if (seq_gt(rcv_adv_, rcv_user_seq_) && rcv_adv_ - rcv_user_seq_ > keep) {
    keep = rcv_adv_ - rcv_user_seq_;
  }
  TRY(rcvbuf_.resize(kmem_, keep));
  cfg_.rcvbuf = bytes;
  // A bigger buffer opens the window at once.
  after_read();
  return {};
}

void TcpConnection::choose_rcv_wscale() {
  // The smallest shift that lets the whole buffer be advertised, the
  // buffer being the largest autotuning may make (as Linux's
  // tcp_select_initial_window with tcp_rmem[2]).
  uint32_t space = cfg_.rcvbuf_max > cfg_.rcvbuf ? cfg_.rcvbuf_max : cfg_.rcvbuf;
  rcv_wscale_ = 0;
  while (rcv_wscale_ < 14 && (space >> rcv_wscale_) > 65535) rcv_wscale_++;
}

bool TcpConnection::rcv_space_adjust() {
  if (cfg_.rcvbuf_max <= cfg_.rcvbuf || !rcvbuf_.allocated()) return false;
  if (state_ != TcpState::kEstablished && state_ != TcpState::kFinWait1 && state_ != TcpState::kFinWait2) {
    return false;
  }
  int64_t t = now();
  if (rcvq_time_ == 0) {
    // The first measure starts with ten segments' worth, at most the
    // first window (Linux's tcp_init_buffer_space).
    rcvq_seq_ = rcv_user_seq_;
    rcvq_time_ = t;
    rcvq_space_ = 10u * cfg_.mss < 65535u ? 10u * cfg_.mss : 65535u;
    return false;
  }
  // Once a round trip (the handshake's, at least; 1 ms before any).
  int64_t rtt = srtt_ns_ > 0 ? srtt_ns_ : 1000000;
  if (t - rcvq_time_ < rtt) return false;
  uint32_t copied = rcv_user_seq_ - rcvq_seq_;
  rcvq_seq_ = rcv_user_seq_;
  rcvq_time_ = t;
  if (copied <= rcvq_space_) return false;
  // Twice the rate plus some segments, more while the rate climbs.
  uint64_t win = 2ull * copied + 16ull * cfg_.mss;
  uint64_t grow = win * (copied - rcvq_space_) / rcvq_space_;
  win += 2 * grow;
  rcvq_space_ = copied;
  if (win > cfg_.rcvbuf_max) win = cfg_.rcvbuf_max;
  if (win <= cfg_.rcvbuf || win < rcvbuf_.size() || !ooo_.empty()) return false;
  if (!rcvbuf_.resize(kmem_, static_cast<size_t>(win)).ok()) return false;
  cfg_.rcvbuf = static_cast<uint32_t>(win);
  after_read();
  return true;
}

Result<void> TcpConnection::set_maxseg(int mss) {
  if (mss < 88 || mss > 65495) return err(EINVAL);
  if (state_ == TcpState::kClosed) cfg_.mss = static_cast<uint16_t>(mss);
  return {};
}

void tcp_respond_closed(TcpHost& host, const TcpEndpoints& ep, const TcpSegment& seg) {
  if (seg.has(kRst)) return;
  TcpSegment r;
  r.sport = ep.lport;
  r.dport = ep.fport;
  if (seg.has(kAck)) {
    r.seq = seg.ack;
    r.flags = kRst;
  } else {
    r.seq = 0;
    r.ack = seg.seq + seg.seq_len();
    r.flags = kRst | kAck;
  }
  host.output(ep, r);
}

}  // namespace rump::tcp
