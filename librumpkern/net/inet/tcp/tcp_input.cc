// tcp_input.cc: segment arrival (RFC 9293 section 3.10.7), with the
// blind-attack checks of RFC 5961, PAWS of RFC 7323, RTT measurement of
// RFC 6298, NewReno loss recovery of RFC 6582 and out-of-order reassembly.
#include "net/inet/tcp/tcp_conn.h"
#include "net/inet/tcp/tcp_listen.h"

namespace rump::tcp {
namespace {

constexpr int64_t kPawsIdleNs = 24LL * 24 * 3600 * 1000000000;  // RFC 7323 5.5

// RFC 9293 3.10.7.4's acceptance test of a segment against the receive
// window [rcv_nxt, rcv_adv), except that a segment without data may sit at
// the right edge itself, as Linux (tcp_sequence) and BSD (the trim of
// tcp_input) take it: a peer that filled the window while some of it was
// lost numbers its ACKs there.
bool seq_acceptable(const TcpSegment& seg, Seq rcv_nxt, Seq rcv_adv) {
  uint32_t wnd = seq_gt(rcv_adv, rcv_nxt) ? rcv_adv - rcv_nxt : 0;
  uint32_t len = seg.seq_len();
  if (len == 0) {
    if (wnd == 0) return seg.seq == rcv_nxt;
    return seq_leq(rcv_nxt, seg.seq) && seq_leq(seg.seq, rcv_nxt + wnd);
  }
  if (wnd == 0) return false;
  return seq_in(seg.seq, rcv_nxt, rcv_nxt + wnd) || seq_in(seg.seq + len - 1, rcv_nxt, rcv_nxt + wnd);
}

}  // namespace

void tcp_time_wait_ack(const TcpTimeWaitState& tw, const TcpSegment& seg, int64_t now, TcpSegment& r) {
  r = TcpSegment();
  r.sport = seg.dport;
  r.dport = seg.sport;
  r.seq = tw.snd_nxt;
  r.ack = tw.rcv_nxt;
  r.flags = kAck;
  r.window = tw.window;
  if (tw.ts_ok) {
    r.opt.has_ts = true;
    r.opt.tsval = static_cast<uint32_t>(now / 1000000) + tw.ts_offset;
    r.opt.tsecr = tw.ts_recent;
  }
}

bool tcp_time_wait_accepts_syn(const TcpTimeWaitState& tw, const TcpSegment& seg) {
  if (!seg.has(kSyn) || seg.has(kAck) || seg.has(kRst)) return false;
  if (tw.ts_ok && seg.opt.has_ts) return seq_gt(seg.opt.tsval, tw.ts_recent);
  return seq_gt(seg.seq, tw.rcv_nxt);
}

TimeWaitAction tcp_time_wait_input(TcpTimeWaitState& tw, const TcpSegment& seg, int64_t now, TcpSegment& reply,
                                   TcpStats* stats) {
  if (tcp_time_wait_accepts_syn(tw, seg)) return TimeWaitAction::kReopen;
  // PAWS: an old timestamp marks an old duplicate.
  if (tw.ts_ok && seg.opt.has_ts && !seg.has(kRst) && seq_lt(seg.opt.tsval, tw.ts_recent) &&
      now - tw.ts_recent_age < kPawsIdleNs) {
    if (stats) stats->paws_drops++;
    tcp_time_wait_ack(tw, seg, now, reply);
    return TimeWaitAction::kReply;
  }
  if (!seq_acceptable(seg, tw.rcv_nxt, tw.rcv_adv)) {
    if (seg.has(kRst)) return TimeWaitAction::kDrop;
    // A retransmitted FIN: our last ACK was lost; TIME_WAIT starts over.
    if (seg.has(kFin)) tw.expire_ns = now + tw.time_wait_ns;
    tcp_time_wait_ack(tw, seg, now, reply);
    return TimeWaitAction::kReply;
  }
  // Within the window: take the timestamp of a segment that starts at or
  // before what we acknowledged (RFC 7323 4.3).
  Seq start = seq_lt(seg.seq, tw.rcv_nxt) ? tw.rcv_nxt : seg.seq;
  if (tw.ts_ok && seg.opt.has_ts && seq_leq(start, tw.last_ack_sent) && seq_geq(seg.opt.tsval, tw.ts_recent)) {
    tw.ts_recent = seg.opt.tsval;
    tw.ts_recent_age = now;
  }
  if (seg.has(kRst)) {
    // RFC 5961 3.2: only an exact match resets.
    if (seg.seq == tw.rcv_nxt) return TimeWaitAction::kClose;
    if (stats) stats->challenge_acks++;
    tcp_time_wait_ack(tw, seg, now, reply);
    return TimeWaitAction::kReply;
  }
  if (seg.has(kSyn)) {
    if (stats) stats->challenge_acks++;
    tcp_time_wait_ack(tw, seg, now, reply);
    return TimeWaitAction::kReply;
  }
  if (!seg.has(kAck)) return TimeWaitAction::kDrop;
  // RFC 5961 5.2: an ACK of what was never sent, or too old.
  bool too_old = seq_lt(seg.ack, tw.snd_nxt - tw.max_snd_wnd);
  if (seq_gt(seg.ack, tw.snd_nxt) || too_old) {
    if (too_old && stats) stats->challenge_acks++;
    tcp_time_wait_ack(tw, seg, now, reply);
    return TimeWaitAction::kReply;
  }
  // Bytes that are all old duplicates are acknowledged at once; anything
  // else (new data after the peer's FIN) is dropped.
  size_t n = seg.payload_len();
  if (n > 0 && seq_lt(seg.seq, tw.rcv_nxt) && tw.rcv_nxt - seg.seq - (seg.has(kSyn) ? 1 : 0) >= n) {
    tcp_time_wait_ack(tw, seg, now, reply);
    return TimeWaitAction::kReply;
  }
  return TimeWaitAction::kDrop;
}

bool TcpConnection::time_wait_state(TcpTimeWaitState& tw) {
  if (state_ != TcpState::kTimeWait) return false;
  tw.snd_nxt = snd_nxt_;
  tw.rcv_nxt = rcv_nxt_;
  tw.window = advertised_window();
  tw.rcv_adv = rcv_adv_;
  tw.last_ack_sent = last_ack_sent_;
  tw.max_snd_wnd = max_snd_wnd_;
  tw.ts_ok = ts_ok_;
  tw.ts_recent = ts_recent_;
  tw.ts_recent_age = ts_recent_age_;
  tw.ts_offset = ts_offset_;
  tw.expire_ns = timewait_at_;
  tw.time_wait_ns = cfg_.time_wait_ns;
  return true;
}

void TcpConnection::send_invalid_ack(const TcpSegment& seg) {
  if (seg.payload_len() == 0 || seg.has(kSyn)) {
    int64_t t = now();
    if (last_invalid_ack_ns_ >= 0 && t - last_invalid_ack_ns_ < cfg_.invalid_ratelimit_ns) return;
    last_invalid_ack_ns_ = t;
  }
  send_ack();
}

void TcpConnection::rtt_sample(int64_t r) {
  if (r < 1000) r = 1000;
  if (srtt_ns_ == 0) {
    srtt_ns_ = r;
    rttvar_ns_ = r / 2;
  } else {
    int64_t delta = srtt_ns_ > r ? srtt_ns_ - r : r - srtt_ns_;
    rttvar_ns_ = (3 * rttvar_ns_ + delta) / 4;
    srtt_ns_ = (7 * srtt_ns_ + r) / 8;
  }
  if (min_rtt_ns_ == 0 || r < min_rtt_ns_) min_rtt_ns_ = r;
  int64_t var = 4 * rttvar_ns_;
  if (var < 1000000) var = 1000000;  // clock granularity G: 1 ms
  rto_ns_ = srtt_ns_ + var;
  if (rto_ns_ < cfg_.rto_min_ns) rto_ns_ = cfg_.rto_min_ns;
  if (rto_ns_ > cfg_.rto_max_ns) rto_ns_ = cfg_.rto_max_ns;
}

bool TcpConnection::time_wait_accepts_syn(const TcpSegment& seg) const {
  if (state_ != TcpState::kTimeWait) return false;
  TcpTimeWaitState tw;
  tw.rcv_nxt = rcv_nxt_;
  tw.ts_ok = ts_ok_;
  tw.ts_recent = ts_recent_;
  return tcp_time_wait_accepts_syn(tw, seg);
}

void TcpConnection::abort_time_wait() {
  if (state_ == TcpState::kTimeWait) to_closed(0);
}

bool TcpConnection::acceptable(const TcpSegment& seg) const { return seq_acceptable(seg, rcv_nxt_, rcv_adv_); }

void TcpConnection::input(const TcpSegment& seg_in) {
  TcpSegment seg = seg_in;
  stats_.segs_in++;
  last_recv_ns_ = now();
  switch (state_) {
    case TcpState::kClosed:
      tcp_respond_closed(*host_, ep_, seg);
      return;
    case TcpState::kListen:
      return;
    case TcpState::kSynSent:
      input_syn_sent(seg);
      return;
    case TcpState::kTimeWait: {
      // The same code as a host's compact record (tcp_time_wait_input).
      TcpTimeWaitState tw;
      (void)time_wait_state(tw);
      TcpSegment reply;
      TimeWaitAction a = tcp_time_wait_input(tw, seg, now(), reply, &stats_);
      ts_recent_ = tw.ts_recent;
      ts_recent_age_ = tw.ts_recent_age;
      timewait_at_ = tw.expire_ns;
      if (a == TimeWaitAction::kClose) {
        to_closed(0);
      } else if (a != TimeWaitAction::kDrop) {
        // kReopen here: the host kept the connection; a SYN gets an ACK.
        if (a == TimeWaitAction::kReopen) tcp_time_wait_ack(tw, seg, now(), reply);
        stats_.segs_out++;
        last_send_ns_ = now();
        host_->output(ep_, reply);
      }
      return;
    }
    default:
      break;
  }

  // PAWS (RFC 7323 5.3 R1): an old timestamp marks an old duplicate.
  if (ts_ok_ && seg.opt.has_ts && !seg.has(kRst) && seq_lt(seg.opt.tsval, ts_recent_) &&
      now() - ts_recent_age_ < kPawsIdleNs) {
    stats_.paws_drops++;
    send_invalid_ack(seg);
    return;
  }

  // 1. Sequence number acceptability.
  if (!acceptable(seg)) {
    if (seg.has(kRst)) return;
    uint32_t wnd = seq_gt(rcv_adv_, rcv_nxt_) ? rcv_adv_ - rcv_nxt_ : 0;
    if (wnd == 0 && seg.seq == rcv_nxt_ && seg.has(kAck) && synchronized()) {
      // A zero window accepts no data but still takes ACKs (RFC 9293
      // 3.10.7.4): process the acknowledgment, drop the text.
      TcpSegment ack_only = seg;
      ack_only.len = ack_only.len2 = 0;
      ack_only.flags &= static_cast<uint8_t>(~(kFin | kSyn | kUrg | kPsh));
      if (!process_ack(ack_only)) return;
    }
    // (TIME_WAIT, where a retransmitted FIN is answered every time, took
    // its own path above.)
    send_invalid_ack(seg);
    if (synchronized()) output();
    return;
  }

  // Trim to the window: bytes before RCV.NXT are old, bytes beyond the
  // window's right edge are not accepted.
  if (seq_lt(seg.seq, rcv_nxt_)) {
    uint32_t d = rcv_nxt_ - seg.seq;
    if (seg.has(kSyn)) {
      seg.flags &= static_cast<uint8_t>(~kSyn);
      seg.seq++;
      d--;
    }
    if (d > 0) {
      if (d >= seg.payload_len()) {
        // Every byte is a duplicate: say so at once.
        d = static_cast<uint32_t>(seg.payload_len());
        ack_now_ = true;
      }
      seg.drop_front(d);
      seg.seq += d;
    }
  }
  {
    uint32_t wnd = seq_gt(rcv_adv_, rcv_nxt_) ? rcv_adv_ - rcv_nxt_ : 0;
    Seq right = rcv_nxt_ + wnd;
    if (seq_gt(seg.seq + static_cast<uint32_t>(seg.payload_len()), right)) {
      seg.keep_front(seq_gt(right, seg.seq) ? right - seg.seq : 0);
      seg.flags &= static_cast<uint8_t>(~kFin);
    }
  }

  // Timestamps: remember the peer's clock (RFC 7323 4.3).
  if (ts_ok_ && seg.opt.has_ts && seq_leq(seg.seq, last_ack_sent_) &&
      seq_geq(seg.opt.tsval, ts_recent_)) {
    ts_recent_ = seg.opt.tsval;
    ts_recent_age_ = now();
  }

  // 2. RST (RFC 5961 3.2): only an exact match resets; the rest of the
  // window gets a challenge ACK.
  if (seg.has(kRst)) {
    if (seg.seq != rcv_nxt_) {
      stats_.challenge_acks++;
      send_invalid_ack(seg);
      return;
    }
    process_rst(seg);
    return;
  }

  // 4. SYN in a synchronized state (RFC 5961 4.2): challenge ACK.
  if (seg.has(kSyn)) {
    stats_.challenge_acks++;
    send_invalid_ack(seg);
    return;
  }

  // 5. ACK.
  if (!seg.has(kAck)) return;
  if (!process_ack(seg)) return;
  if (state_ == TcpState::kClosed) return;
  if (synchronized() && state_ != TcpState::kTimeWait) reset_keepalive();

  // 6-7. Urgent pointer and text.
  process_data(seg);
  if (state_ == TcpState::kClosed) return;

  // 8. FIN, if it is in order now.
  if (seg.has(kFin)) {
    Seq fin_at = seg.seq + static_cast<uint32_t>(seg.payload_len());
    if (fin_at == rcv_nxt_) {
      process_fin();
    } else if (seq_gt(fin_at, rcv_nxt_)) {
      fin_ooo_ = true;
      fin_ooo_seq_ = fin_at;
    }
  }
  if (fin_ooo_ && !rcv_fin_ && rcv_nxt_ == fin_ooo_seq_) process_fin();
  if (state_ == TcpState::kClosed) return;
  output();
}

void TcpConnection::input_syn_sent(const TcpSegment& seg) {
  if (seg.has(kAck) && (seq_leq(seg.ack, iss_) || seq_gt(seg.ack, snd_max_))) {
    if (!seg.has(kRst)) {
      TcpSegment r;
      r.sport = ep_.lport;
      r.dport = ep_.fport;
      r.seq = seg.ack;
      r.flags = kRst;
      stats_.segs_out++;
      host_->output(ep_, r);
    }
    return;
  }
  if (seg.has(kRst)) {
    if (seg.has(kAck)) to_closed(ECONNREFUSED);
    return;
  }
  if (!seg.has(kSyn)) return;
  irs_ = seg.seq;
  rcv_nxt_ = rcv_user_seq_ = seg.seq + 1;
  rcv_adv_ = rcv_nxt_;  // nothing offered yet in this sequence space
  negotiate(seg.opt, seg.opt.has_wscale);
  snd_wnd_ = seg.window;  // never scaled in a SYN
  max_snd_wnd_ = snd_wnd_;
  snd_wl1_ = seg.seq;
  if (seg.has(kAck)) {
    snd_una_ = seg.ack;
    snd_wl2_ = seg.ack;
    if (ts_ok_ && seg.opt.tsecr != 0) {
      rtt_sample(static_cast<int64_t>(ts_now() - seg.opt.tsecr) * 1000000);
    } else if (backoff_ == 0) {
      rtt_sample(now() - last_send_ns_);
    }
    // RFC 6298 5.7: a lost SYN and no sample leave a 3-second RTO.
    if (backoff_ > 0 && srtt_ns_ == 0) rto_ns_ = 3LL * 1000000000;
    backoff_ = 0;
    rexmt_at_ = 0;
    last_ack_recv_ns_ = now();
    established();
    ack_now_ = true;
    output();
    return;
  }
  // Simultaneous open (RFC 9293 3.5, figure 8).
  snd_wl2_ = iss_;
  set_state(TcpState::kSynReceived);
  emit(iss_, 0, kSyn | kAck);
  arm_rexmt();
}

void TcpConnection::process_rst(const TcpSegment& seg) {
  (void)seg;
  switch (state_) {
    case TcpState::kSynReceived:
      // A passive child goes away quietly; an active open was refused.
      to_closed(passive_ ? 0 : ECONNREFUSED);
      return;
    case TcpState::kEstablished:
    case TcpState::kFinWait1:
    case TcpState::kFinWait2:
    case TcpState::kCloseWait:
      rcvbuf_.drop(rcvbuf_.size());
      // Linux's tcp_reset: the peer had finished already (CLOSE_WAIT), so
      // the reset only says nobody reads: EPIPE, not ECONNRESET.
      to_closed(state_ == TcpState::kCloseWait ? EPIPE : ECONNRESET);
      return;
    default:
      to_closed(0);
      return;
  }
}

void TcpConnection::update_window(const TcpSegment& seg) {
  if (seq_lt(snd_wl1_, seg.seq) || (snd_wl1_ == seg.seq && seq_leq(snd_wl2_, seg.ack))) {
    uint32_t w = static_cast<uint32_t>(seg.window) << snd_wscale_;
    bool opened = snd_wnd_ == 0 && w > 0;
    snd_wnd_ = w;
    if (w > max_snd_wnd_) max_snd_wnd_ = w;
    snd_wl1_ = seg.seq;
    snd_wl2_ = seg.ack;
    if (opened) {
      persist_at_ = 0;
      persist_shift_ = 0;
    }
  }
}

// Returns false if the segment is to be dropped.
bool TcpConnection::process_ack(const TcpSegment& seg) {
  if (state_ == TcpState::kSynReceived) {
    if (!(seq_lt(snd_una_, seg.ack) && seq_leq(seg.ack, snd_max_))) {
      TcpSegment r;
      r.sport = ep_.lport;
      r.dport = ep_.fport;
      r.seq = seg.ack;
      r.flags = kRst;
      stats_.segs_out++;
      host_->output(ep_, r);
      return false;
    }
    // A full accept queue leaves the child waiting: the peer's next ACK
    // (or our SYN-ACK retransmission) tries again, as Linux does.
    if (listener_ != nullptr && listener_->accept_queue_full()) {
      listener_->stats_.accept_overflows++;
      return false;
    }
    if (ts_ok_ && seg.opt.has_ts && seg.opt.tsecr != 0) {
      rtt_sample(static_cast<int64_t>(ts_now() - seg.opt.tsecr) * 1000000);
    } else if (backoff_ == 0) {
      rtt_sample(now() - last_send_ns_);
    }
    snd_una_ = seg.ack;
    if (seq_lt(snd_nxt_, snd_una_)) snd_nxt_ = snd_una_;
    backoff_ = 0;
    rexmt_at_ = 0;
    snd_wnd_ = static_cast<uint32_t>(seg.window) << snd_wscale_;
    max_snd_wnd_ = snd_wnd_;
    snd_wl1_ = seg.seq;
    snd_wl2_ = seg.ack;
    last_ack_recv_ns_ = now();
    established();
    return true;
  }
  // RFC 5961 5.2: an ACK of data never sent, or older than the largest
  // window, is answered and dropped.
  if (seq_gt(seg.ack, snd_max_) || seq_lt(seg.ack, snd_una_ - max_snd_wnd_)) {
    if (seq_lt(seg.ack, snd_una_ - max_snd_wnd_)) stats_.challenge_acks++;
    send_invalid_ack(seg);
    return false;
  }
  if (seq_gt(seg.ack, snd_una_)) {
    new_ack(seg, seg.ack);
  } else if (seg.ack == snd_una_) {
    duplicate_ack(seg);
  }
  update_window(seg);

  bool fin_acked = fin_sent_ && seq_gt(snd_una_, fin_seq_);
  switch (state_) {
    case TcpState::kFinWait1:
      if (fin_acked) {
        set_state(TcpState::kFinWait2);
        if (user_closed_) timewait_at_ = now() + cfg_.fin_timeout_ns;
      }
      break;
    case TcpState::kClosing:
      if (fin_acked) {
        enter_time_wait();
        return false;
      }
      break;
    case TcpState::kLastAck:
      if (fin_acked) {
        to_closed(0);
        return false;
      }
      break;
    default:
      break;
  }
  return true;
}

void TcpConnection::new_ack(const TcpSegment& seg, Seq ack) {
  uint32_t acked = ack - snd_una_;
  last_ack_recv_ns_ = now();
  if (ts_ok_ && seg.opt.has_ts && seg.opt.tsecr != 0) {
    rtt_sample(static_cast<int64_t>(ts_now() - seg.opt.tsecr) * 1000000);
  } else if (rtt_timing_ && seq_gt(ack, rtt_seq_)) {
    rtt_sample(now() - rtt_start_ns_);
    rtt_timing_ = false;
  }
  if (seq_gt(ack, snd_buf_seq_)) {
    size_t n = ack - snd_buf_seq_;
    if (n > sndbuf_.size()) n = sndbuf_.size();
    sndbuf_.drop(n);
    snd_buf_seq_ += static_cast<uint32_t>(n);
    stats_.bytes_acked += n;
  }
  snd_una_ = ack;
  if (seq_lt(snd_nxt_, snd_una_)) snd_nxt_ = snd_una_;
  backoff_ = 0;
  // Forget SACK blocks now below SND.UNA.
  int k = 0;
  for (int i = 0; i < nsacked_; i++) {
    if (seq_gt(sacked_[i].right, snd_una_)) sacked_[k++] = sacked_[i];
  }
  nsacked_ = k;

  if (in_recovery_) {
    if (seq_geq(ack, recover_)) {
      // Full acknowledgment (RFC 6582 3.2 step 3): deflate.
      in_recovery_ = false;
      uint32_t fl = snd_max_ - snd_una_;
      uint32_t c = fl + smss_;
      cc_.set_cwnd(c < cc_.ssthresh() ? c : cc_.ssthresh());
      dupacks_ = 0;
    } else {
      // Partial acknowledgment (step 4): retransmit the next hole, deflate
      // by what was acknowledged, add back one segment.
      retransmit_first();
      uint32_t c = cc_.cwnd();
      c = c > acked ? c - acked : 0;
      if (acked >= smss_) c += smss_;
      if (c < smss_) c = smss_;
      cc_.set_cwnd(c);
      stats_.fast_retransmits++;
    }
  } else {
    dupacks_ = 0;
    cc_.on_ack(acked, now(), srtt_ns_);
  }
  if (snd_una_ == snd_max_) {
    rexmt_at_ = 0;
  } else {
    arm_rexmt();
  }
  host_->notify(*this);
}

void TcpConnection::duplicate_ack(const TcpSegment& seg) {
  // RFC 5681 section 2: the same ACK, no data, no SYN/FIN, the same window,
  // with data outstanding.
  if (seg.payload_len() != 0 || seg.has(kSyn) || seg.has(kFin) || snd_una_ == snd_max_ ||
      (static_cast<uint32_t>(seg.window) << snd_wscale_) != snd_wnd_) {
    return;
  }
  if (sack_ok_) {
    for (int i = 0; i < seg.opt.nsack; i++) note_sack(seg.opt.sack[i]);
  }
  dupacks_++;
  if (in_recovery_) {
    cc_.set_cwnd(cc_.cwnd() + smss_);
    return;
  }
  if (dupacks_ != 3) return;
  // RFC 6582 3.2 step 2: a loss after the last recovery point starts a
  // new recovery; duplicate ACKs for data sent before it do not.
  if (recover_valid_ && !seq_gt(seg.ack, recover_)) return;
  cc_.on_loss(snd_max_ - snd_una_, now());
  recover_ = snd_max_;
  recover_valid_ = true;
  in_recovery_ = true;
  stats_.fast_retransmits++;
  retransmit_first();
  cc_.set_cwnd(cc_.ssthresh() + 3 * smss_);
  arm_rexmt();
}

// Merges a SACK block into the scoreboard: blocks above SND.UNA within what
// was sent, overlapping ones joined; when the table is full the block
// replaces the lowest (the one the next ACK will most likely cover).
void TcpConnection::note_sack(const SackBlock& b) {
  if (!seq_gt(b.left, snd_una_) || !seq_leq(b.right, snd_max_) || !seq_lt(b.left, b.right)) return;
  SackBlock nb = b;
  int k = 0;
  for (int i = 0; i < nsacked_; i++) {
    const SackBlock& x = sacked_[i];
    if (seq_leq(x.left, nb.right) && seq_leq(nb.left, x.right)) {
      nb.left = seq_min(nb.left, x.left);
      nb.right = seq_max(nb.right, x.right);
    } else {
      sacked_[k++] = x;
    }
  }
  nsacked_ = k;
  if (nsacked_ == kMaxSackBlocks) {
    int low = 0;
    for (int i = 1; i < nsacked_; i++) {
      if (seq_lt(sacked_[i].left, sacked_[low].left)) low = i;
    }
    sacked_[low] = nb;
    return;
  }
  sacked_[nsacked_++] = nb;
}

void TcpConnection::write_payload(size_t off, const TcpSegment& seg, size_t len) {
  size_t a = len < seg.len ? len : seg.len;
  rcvbuf_.write_at(off, seg.data, a);
  if (len > a) rcvbuf_.write_at(off + a, seg.data2, len - a);
}

void TcpConnection::process_data(const TcpSegment& seg) {
  size_t len = seg.payload_len();
  if (len == 0) return;
  if (state_ != TcpState::kEstablished && state_ != TcpState::kFinWait1 &&
      state_ != TcpState::kFinWait2) {
    return;  // after the peer's FIN: nothing more can be data
  }
  stats_.data_segs_in++;
  last_data_recv_ns_ = now();
  if (user_closed_) {
    // Nobody will read it: reset, as Linux does for data after close().
    send_rst();
    to_closed(0);
    return;
  }
  if (read_shut_) {
    if (seg.seq == rcv_nxt_) {
      rcv_nxt_ += static_cast<uint32_t>(len);
      rcv_user_seq_ = rcv_nxt_;
    }
    schedule_ack(true);
    return;
  }
  if (!rcvbuf_.prepare(kmem_).ok()) return;  // dropped: the peer retransmits
  // Urgent data (RFC 9293 3.8.5 and Linux's reading of the pointer: it
  // points one past the urgent byte). Without SO_OOBINLINE that byte is
  // not part of the stream.
  if (seg.has(kUrg) && seg.urp > 0) {
    Seq u = seg.seq + seg.urp - 1;
    if (seq_in(u, seg.seq, seg.seq + static_cast<uint32_t>(len)) && seq_geq(u, rcv_nxt_)) {
      urg_valid_ = true;
      urg_seq_ = u;
      stats_.urgent_dropped++;
    }
  }
  if (seg.seq == rcv_nxt_) {
    if (len > rcvbuf_.space()) len = rcvbuf_.space();
    if (seg.lender != nullptr && rcvbuf_.lent_room() >= 2) {
      // Lent by a sender on this kernel: keep its bytes where they are
      // (the one copy is the reader's).
      size_t a = len < seg.len ? len : seg.len;
      rcvbuf_.append_lent(seg.data, a, seg.lender);
      rcvbuf_.append_lent(seg.data2, len - a, seg.lender);
    } else {
      write_payload(rcvbuf_.size(), seg, len);
      rcvbuf_.commit(len);
    }
    rcv_nxt_ += static_cast<uint32_t>(len);
    stats_.bytes_received += len;
    bool filled = false;
    if (!ooo_.empty()) {
      Seq n = ooo_.take_contiguous(rcv_nxt_);
      if (n != rcv_nxt_) {
        rcvbuf_.commit(n - rcv_nxt_);
        stats_.bytes_received += n - rcv_nxt_;
        rcv_nxt_ = n;
      }
      filled = true;
    }
    // ACK every second full-sized segment at once (RFC 9293 3.8.6.3), a
    // segment that fills a hole too (RFC 5681 4.2); otherwise delay. A
    // segment of more than one MSS (coalesced by the sender's device or
    // the host's GRO) counts as the two or more it was.
    unacked_segs_ += len > cfg_.mss ? 2 : 1;
    schedule_ack(filled || unacked_segs_ >= 2);
  } else {
    size_t off = rcvbuf_.size() + (seg.seq - rcv_nxt_);
    if (off >= rcvbuf_.capacity()) {
      schedule_ack(true);
      return;
    }
    if (off + len > rcvbuf_.capacity()) len = rcvbuf_.capacity() - off;
    if (ooo_.add(seg.seq, seg.seq + static_cast<uint32_t>(len))) {
      write_payload(off, seg, len);
    }
    stats_.rcv_ooopack++;
    // An out-of-order segment is acknowledged at once, with SACK blocks: the
    // sender counts these duplicate ACKs.
    schedule_ack(true);
  }
  host_->notify(*this);
}

void TcpConnection::process_fin() {
  if (rcv_fin_) return;
  rcv_fin_ = true;
  fin_ooo_ = false;
  rcv_nxt_++;
  ack_now_ = true;
  switch (state_) {
    case TcpState::kSynReceived:
    case TcpState::kEstablished:
      set_state(TcpState::kCloseWait);
      break;
    case TcpState::kFinWait1:
      if (fin_sent_ && seq_gt(snd_una_, fin_seq_)) enter_time_wait();
      else set_state(TcpState::kClosing);
      break;
    case TcpState::kFinWait2:
      enter_time_wait();
      break;
    default:
      break;
  }
  host_->notify(*this);
}

}  // namespace rump::tcp
