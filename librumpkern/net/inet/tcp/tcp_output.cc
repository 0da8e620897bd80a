// tcp_output.cc: what a connection sends and when: segmentation, Nagle and
// cork, the receive window it advertises, ACK scheduling, and its timers
// (retransmission after RFC 6298, persist, delayed ACK, keepalive,
// TIME_WAIT).
#include <cstring>

#include "net/inet/tcp/tcp_conn.h"

namespace rump::tcp {

uint16_t TcpConnection::advertised_window() {
  uint32_t space = static_cast<uint32_t>(rcvbuf_.allocated() ? rcv_space() : cfg_.rcvbuf);
  if (read_shut_) space = cfg_.rcvbuf;
  uint32_t max_win = 65535u << rcv_wscale_;
  if (space > max_win) space = max_win;
  // Never shrink the window already offered (RFC 9293 3.8.6.2.2); open it
  // only by a useful amount (receiver silly window avoidance).
  uint32_t adv = seq_gt(rcv_adv_, rcv_nxt_) ? rcv_adv_ - rcv_nxt_ : 0;
  uint32_t step = smss_ < cfg_.rcvbuf / 2 ? smss_ : cfg_.rcvbuf / 2;
  uint32_t win = adv;
  if (space > adv && (space - adv >= step || adv == 0 || space == max_win)) win = space;
  if (space <= adv) win = adv;
  // Round down to what the scale can express, and remember the edge.
  uint32_t wire = win >> rcv_wscale_;
  if (wire > 65535) wire = 65535;
  Seq edge = rcv_nxt_ + (wire << rcv_wscale_);
  if (seq_gt(edge, rcv_adv_)) rcv_adv_ = edge;
  return static_cast<uint16_t>(wire);
}

void TcpConnection::emit(Seq seq, size_t len, uint8_t flags) {
  TcpSegment s;
  s.sport = ep_.lport;
  s.dport = ep_.fport;
  s.seq = seq;
  s.flags = flags;
  if (flags & kAck) s.ack = rcv_nxt_;
  if (flags & kSyn) {
    // Windows in SYN segments are never scaled.
    uint32_t space = cfg_.rcvbuf;
    s.window = static_cast<uint16_t>(space > 65535 ? 65535 : space);
    rcv_adv_ = rcv_nxt_ + s.window;
  } else {
    s.window = advertised_window();
  }
  if (flags & kSyn) {
    s.opt.has_mss = true;
    s.opt.mss = cfg_.mss;
    bool synack = (flags & kAck) != 0;
    if (cfg_.sack && (!synack || sack_ok_)) s.opt.sack_permitted = true;
    if (cfg_.timestamps && (!synack || ts_ok_)) {
      s.opt.has_ts = true;
      s.opt.tsval = ts_now();
      s.opt.tsecr = synack ? ts_recent_ : 0;
    }
    if (cfg_.window_scaling && (!synack || ws_ok_)) {
      s.opt.has_wscale = true;
      s.opt.wscale = rcv_wscale_;
    }
  } else if (ts_ok_ && !(flags & kRst)) {
    s.opt.has_ts = true;
    s.opt.tsval = ts_now();
    s.opt.tsecr = ts_recent_;
  }
  if (sack_ok_ && (flags & kAck) && !(flags & (kSyn | kRst)) && !ooo_.empty()) {
    s.opt.nsack = static_cast<uint8_t>(ooo_.sack_blocks(s.opt.sack, ts_ok_ ? 3 : 4));
  }
  uint32_t nsegs = 1;
  if (len > smss_) {
    s.gso_size = static_cast<uint16_t>(smss_);
    nsegs = static_cast<uint32_t>((len + smss_ - 1) / smss_);
  }
  if (len > 0) {
    size_t off = seq - snd_buf_seq_;
    sndbuf_.pieces(off, len, &s.data, &s.len, &s.data2, &s.len2);
    stats_.data_segs_out += nsegs;
    last_data_send_ns_ = now();
  }
  if (flags & kAck) {
    last_ack_sent_ = rcv_nxt_;
    ack_now_ = false;
    delack_at_ = 0;
    unacked_segs_ = 0;
  }
  stats_.segs_out += nsegs;
  last_send_ns_ = now();
  host_->output(ep_, s);
}

// SND.MAX, the first byte never sent, as FreeBSD's and Linux's output
// number ACKs, not SND.NXT: a retransmission timeout takes SND.NXT back to
// SND.UNA while the peer may hold everything up to SND.MAX, and a segment
// numbered below the peer's RCV.NXT is a duplicate that it drops, news and
// all, answering with an ACK of its own (RFC 9293 3.10.7.4). Two ends in
// that state after timeouts at once answered each other's ACKs forever.
// Never past the peer's window (Linux's tcp_acceptable_seq): a zero-window
// probe's byte may not have been taken.
Seq TcpConnection::ack_seq() const {
  if (!synchronized()) return snd_nxt_;
  Seq edge = snd_una_ + snd_wnd_;
  return seq_gt(snd_max_, edge) ? edge : snd_max_;
}

void TcpConnection::send_syn(bool with_ack) {
  emit(iss_, 0, with_ack ? (kSyn | kAck) : kSyn);
  snd_nxt_ = iss_ + 1;
  if (seq_gt(snd_nxt_, snd_max_)) snd_max_ = snd_nxt_;
  if (rexmt_at_ == 0) arm_rexmt();
}

void TcpConnection::send_rst() {
  TcpSegment s;
  s.sport = ep_.lport;
  s.dport = ep_.fport;
  s.seq = ack_seq();
  s.flags = kRst | kAck;
  s.ack = rcv_nxt_;
  stats_.segs_out++;
  host_->output(ep_, s);
}

void TcpConnection::schedule_ack(bool now_flag) {
  if (now_flag) {
    ack_now_ = true;
    return;
  }
  if (delack_at_ == 0) delack_at_ = now() + cfg_.delack_ns;
}

void TcpConnection::arm_rexmt() {
  int64_t rto = rto_ns_ << backoff_;
  if (rto > cfg_.rto_max_ns || rto <= 0) rto = cfg_.rto_max_ns;
  rexmt_at_ = now() + rto;
}

void TcpConnection::output() {
  if (!synchronized() && state_ != TcpState::kSynReceived) return;
  if (state_ == TcpState::kSynReceived) {
    // Nothing but the SYN-ACK (sent by accept_syn and its timer) and ACKs.
    if (ack_now_) send_ack();
    return;
  }
  bool fin_state = state_ == TcpState::kFinWait1 || state_ == TcpState::kClosing ||
                   state_ == TcpState::kLastAck;
  // With TSO a segment carries as many whole MSS as the device takes.
  size_t seg_max = smss_;
  if (cfg_.gso_max > smss_) seg_max = cfg_.gso_max - cfg_.gso_max % smss_;
  for (;;) {
    size_t buffered = sndbuf_.size();
    size_t off = seq_gt(snd_nxt_, snd_buf_seq_) ? snd_nxt_ - snd_buf_seq_ : 0;
    if (off > buffered) off = buffered;  // snd_nxt past the FIN
    size_t avail = buffered - off;
    uint32_t wnd = snd_wnd_ < cc_.cwnd() ? snd_wnd_ : cc_.cwnd();
    uint32_t fl = flight();
    if (fin_sent_ && seq_gt(snd_nxt_, fin_seq_)) fl--;  // the FIN is no data
    size_t usable = wnd > fl ? wnd - fl : 0;
    size_t len = avail;
    if (len > seg_max) len = seg_max;
    if (len > usable) len = usable;
    // Whole segments only: a tail under one MSS goes by the rules below.
    if (len > smss_) len -= len % smss_;
    bool at_end = off + len == buffered;
    bool can_fin = fin_queued_ && fin_state && at_end &&
                   (!fin_sent_ || snd_nxt_ == fin_seq_) && !(fin_sent_ && seq_gt(snd_nxt_, fin_seq_));
    bool send = false;
    if (len > 0) {
      if (len >= smss_) {
        send = true;
      } else if (len == avail) {
        // The tail of the queued data: Nagle (RFC 896) holds it while data
        // is unacknowledged, unless TCP_NODELAY; cork and MSG_MORE hold it
        // until a full segment or uncorking.
        bool idle = snd_nxt_ == snd_una_;
        if (can_fin) send = true;
        else if (!cork_ && !more_ && (cfg_.nodelay || idle)) send = true;
      } else {
        // Window-limited: sender silly window avoidance (RFC 9293 3.8.6.2.1).
        if (len >= max_snd_wnd_ / 2 || snd_nxt_ == snd_una_) send = true;
      }
    } else if (can_fin && avail == 0) {
      send = true;
    }
    if (!send) break;
    uint8_t flags = kAck;
    if (len > 0 && at_end) flags |= kPsh;
    if (can_fin) flags |= kFin;
    if (len > 0 && snd_nxt_ == snd_max_ && !rtt_timing_ && !ts_ok_) {
      rtt_timing_ = true;
      rtt_seq_ = snd_nxt_;
      rtt_start_ns_ = now();
    }
    if (seq_lt(snd_nxt_, snd_max_)) {
      stats_.bytes_retrans += len;
      stats_.total_retrans++;
    }
    emit(snd_nxt_, len, flags);
    stats_.bytes_sent += len;
    snd_nxt_ += static_cast<uint32_t>(len);
    if (can_fin) {
      fin_seq_ = snd_nxt_;
      fin_sent_ = true;
      snd_nxt_++;
    }
    if (seq_gt(snd_nxt_, snd_max_)) snd_max_ = snd_nxt_;
    if (rexmt_at_ == 0) arm_rexmt();
    persist_at_ = 0;
    if (can_fin) break;
  }
  if (ack_now_) send_ack();
  // Data waits for a window that is zero and nothing is in flight: probe.
  size_t off = seq_gt(snd_nxt_, snd_buf_seq_) ? snd_nxt_ - snd_buf_seq_ : 0;
  bool waiting = off < sndbuf_.size() || (fin_queued_ && !fin_sent_);
  if (snd_wnd_ == 0 && waiting && snd_una_ == snd_max_ && rexmt_at_ == 0 && persist_at_ == 0) {
    int64_t t = rto_ns_ << persist_shift_;
    if (t > cfg_.rto_max_ns) t = cfg_.rto_max_ns;
    persist_at_ = now() + t;
  }
}

void TcpConnection::retransmit_first() {
  // One segment from SND.UNA: what the peer lacks first, up to the first
  // range it reported with SACK (no need to send that again), and nothing
  // beyond what was sent (SND.NXT and SND.MAX stay as they are).
  size_t buffered = sndbuf_.size();
  size_t len = buffered < smss_ ? buffered : smss_;
  uint32_t sent = snd_max_ - snd_una_;
  if (fin_sent_ && seq_geq(fin_seq_, snd_una_) && seq_gt(snd_max_, fin_seq_)) sent--;  // the FIN is no data
  if (len > sent) len = sent;
  for (int i = 0; i < nsacked_; i++) {
    size_t gap = sacked_[i].left - snd_una_;
    if (seq_gt(sacked_[i].left, snd_una_) && gap < len) len = gap;
  }
  Seq end = snd_una_ + static_cast<uint32_t>(len);
  uint8_t flags = kAck;
  if (fin_sent_ && end == fin_seq_ && len == buffered) flags |= kFin;
  if (len == 0 && !(flags & kFin)) {
    if (fin_sent_ && snd_una_ == fin_seq_) flags |= kFin;
    else return;
  }
  if (len > 0 && len == buffered) flags |= kPsh;
  stats_.bytes_retrans += len;
  stats_.total_retrans++;
  rtt_timing_ = false;  // Karn: no sample from a retransmitted segment
  emit(snd_una_, len, flags);
}

int64_t TcpConnection::next_deadline() const {
  int64_t d = INT64_MAX;
  for (int64_t t : {rexmt_at_, persist_at_, delack_at_, keep_at_, timewait_at_}) {
    if (t != 0 && t < d) d = t;
  }
  return d;
}

void TcpConnection::on_timer() {
  int64_t t = now();
  if (timewait_at_ != 0 && timewait_at_ <= t) {
    timewait_at_ = 0;
    // TIME_WAIT done, or an orphan in FIN_WAIT_2 waited long enough.
    to_closed(0);
    return;
  }
  if (rexmt_at_ != 0 && rexmt_at_ <= t) {
    rexmt_at_ = 0;
    on_rexmt();
    if (state_ == TcpState::kClosed) return;
  }
  if (persist_at_ != 0 && persist_at_ <= t) {
    persist_at_ = 0;
    on_persist();
  }
  if (delack_at_ != 0 && delack_at_ <= t) {
    delack_at_ = 0;
    if (state_ != TcpState::kClosed) send_ack();
  }
  if (keep_at_ != 0 && keep_at_ <= t) {
    keep_at_ = 0;
    on_keepalive();
  }
}

void TcpConnection::on_rexmt() {
  backoff_++;
  stats_.rto_expiries++;
  int limit = cfg_.retries2;
  if (state_ == TcpState::kSynSent) limit = cfg_.syn_retries;
  if (state_ == TcpState::kSynReceived) limit = cfg_.synack_retries;
  if (backoff_ > limit) {
    if (state_ != TcpState::kSynSent) send_rst();
    to_closed(ETIMEDOUT);
    return;
  }
  if (state_ == TcpState::kSynSent || state_ == TcpState::kSynReceived) {
    stats_.total_retrans++;
    rexmt_at_ = 0;
    emit(iss_, 0, state_ == TcpState::kSynSent ? kSyn : (kSyn | kAck));
    arm_rexmt();
    // RFC 6298 5.7: after a lost SYN, data starts with a 3-second RTO.
    return;
  }
  if (snd_una_ == snd_max_) return;
  // RFC 6298 5.5-5.6 and RFC 5681 (3.1, eq. 4): back off, one segment of
  // congestion window, go back to SND.UNA.
  cc_.on_rto(snd_max_ - snd_una_, now());
  in_recovery_ = false;
  recover_ = snd_max_;
  recover_valid_ = true;
  dupacks_ = 0;
  nsacked_ = 0;
  rtt_timing_ = false;
  snd_nxt_ = snd_una_;
  if (fin_sent_ && seq_leq(snd_nxt_, fin_seq_)) fin_sent_ = false;
  // The first segment goes now whatever the window (it may be a zero-window
  // retransmission after the peer shrank it).
  size_t buffered = sndbuf_.size();
  size_t len = buffered < smss_ ? buffered : smss_;
  uint8_t flags = kAck;
  bool fin = fin_queued_ && len == buffered && state_ != TcpState::kEstablished &&
             state_ != TcpState::kCloseWait;
  if (len > 0 && len == buffered) flags |= kPsh;
  if (fin) flags |= kFin;
  stats_.bytes_retrans += len;
  stats_.total_retrans++;
  emit(snd_nxt_, len, flags);
  snd_nxt_ += static_cast<uint32_t>(len);
  if (fin) {
    fin_seq_ = snd_nxt_;
    fin_sent_ = true;
    snd_nxt_++;
  }
  // The segment may carry bytes never sent before (a short last segment
  // and more queued since): SND.MAX covers them, or the peer's ACK of them
  // would be an ACK of unsent data, refused and answered (RFC 5961 5.2),
  // with nothing left in the window to send.
  if (seq_gt(snd_nxt_, snd_max_)) snd_max_ = snd_nxt_;
  arm_rexmt();
}

void TcpConnection::on_persist() {
  size_t off = seq_gt(snd_nxt_, snd_buf_seq_) ? snd_nxt_ - snd_buf_seq_ : 0;
  if (snd_wnd_ != 0 || off >= sndbuf_.size()) {
    persist_shift_ = 0;
    output();
    return;
  }
  // Zero-window probe (RFC 9293 3.8.6.1): one byte beyond the window; the
  // peer's ACK carries its current window.
  emit(snd_una_, 1, kAck);
  if (seq_lt(snd_nxt_, snd_una_ + 1)) snd_nxt_ = snd_una_ + 1;
  if (seq_gt(snd_nxt_, snd_max_)) snd_max_ = snd_nxt_;
  if (persist_shift_ < 16) persist_shift_++;
  int64_t t = rto_ns_ << persist_shift_;
  if (t > cfg_.rto_max_ns || t <= 0) t = cfg_.rto_max_ns;
  persist_at_ = now() + t;
}

void TcpConnection::reset_keepalive() {
  keep_probes_ = 0;
  if (cfg_.keepalive && (state_ == TcpState::kEstablished || state_ == TcpState::kCloseWait)) {
    keep_at_ = now() + cfg_.keepidle_ns;
  } else {
    keep_at_ = 0;
  }
}

void TcpConnection::on_keepalive() {
  if (!cfg_.keepalive || (state_ != TcpState::kEstablished && state_ != TcpState::kCloseWait)) {
    return;
  }
  if (keep_probes_ >= cfg_.keepcnt) {
    send_rst();
    to_closed(ETIMEDOUT);
    return;
  }
  // A keepalive probe: SEG.SEQ = SND.NXT - 1 and no data (RFC 1122
  // 4.2.3.6), which the peer must answer with an ACK.
  keep_probes_++;
  emit(snd_una_ - 1, 0, kAck);
  keep_at_ = now() + cfg_.keepintvl_ns;
}

void TcpConnection::enter_time_wait() {
  rexmt_at_ = persist_at_ = keep_at_ = 0;
  timewait_at_ = now() + cfg_.time_wait_ns;
  set_state(TcpState::kTimeWait);
}

}  // namespace rump::tcp
