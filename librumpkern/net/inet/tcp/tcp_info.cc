// tcp_info.cc: TCP_INFO, in Linux's struct tcp_info (the fields that
// apply to this engine; the rest stay zero).
#include <linux/tcp.h>

#include <cstring>

#include "net/inet/tcp/tcp_conn.h"

namespace rump::tcp {
namespace {

uint32_t usec(int64_t ns) { return static_cast<uint32_t>(ns / 1000); }
uint32_t msec_since(int64_t now, int64_t then) {
  return then == 0 ? 0 : static_cast<uint32_t>((now - then) / 1000000);
}

}  // namespace

void TcpConnection::fill_info(struct tcp_info& info) const {
  memset(&info, 0, sizeof(info));
  int64_t t = host_->now_ns();
  info.tcpi_state = static_cast<uint8_t>(state_);
  // Linux's TCP_CA_Open (0), TCP_CA_Recovery (3), TCP_CA_Loss (4).
  info.tcpi_ca_state = in_recovery_ ? 3 : (backoff_ > 0 ? 4 : 0);
  info.tcpi_retransmits = static_cast<uint8_t>(backoff_);
  info.tcpi_probes = static_cast<uint8_t>(keep_probes_ > persist_shift_ ? keep_probes_ : persist_shift_);
  info.tcpi_backoff = static_cast<uint8_t>(backoff_);
  if (ts_ok_) info.tcpi_options |= TCPI_OPT_TIMESTAMPS;
  if (sack_ok_) info.tcpi_options |= TCPI_OPT_SACK;
  if (ws_ok_) {
    info.tcpi_options |= TCPI_OPT_WSCALE;
    info.tcpi_snd_wscale = snd_wscale_ & 0xf;
    info.tcpi_rcv_wscale = rcv_wscale_ & 0xf;
  }
  info.tcpi_rto = usec(rto_ns_);
  info.tcpi_ato = usec(cfg_.delack_ns);
  info.tcpi_snd_mss = smss_;
  info.tcpi_rcv_mss = cfg_.mss;
  info.tcpi_unacked = snd_max_ - snd_una_;
  for (int i = 0; i < nsacked_; i++) info.tcpi_sacked += sacked_[i].right - sacked_[i].left;
  info.tcpi_last_data_sent = msec_since(t, last_data_send_ns_);
  info.tcpi_last_data_recv = msec_since(t, last_data_recv_ns_);
  info.tcpi_last_ack_recv = msec_since(t, last_ack_recv_ns_);
  info.tcpi_pmtu = cfg_.mss + 40u;
  info.tcpi_rcv_ssthresh = cfg_.rcvbuf;
  info.tcpi_rtt = usec(srtt_ns_);
  info.tcpi_rttvar = usec(rttvar_ns_);
  info.tcpi_snd_ssthresh = cc_.ssthresh() >= 0x7fffffff ? 0x7fffffff : cc_.ssthresh() / smss_;
  info.tcpi_snd_cwnd = cc_.cwnd() / smss_;
  info.tcpi_advmss = cfg_.mss;
  info.tcpi_reordering = 3;
  info.tcpi_rcv_space = static_cast<uint32_t>(rcvbuf_.allocated() ? rcv_space() : cfg_.rcvbuf);
  info.tcpi_total_retrans = stats_.total_retrans;
  info.tcpi_bytes_acked = stats_.bytes_acked;
  info.tcpi_bytes_received = stats_.bytes_received;
  info.tcpi_segs_out = static_cast<uint32_t>(stats_.segs_out);
  info.tcpi_segs_in = static_cast<uint32_t>(stats_.segs_in);
  size_t sent = seq_gt(snd_nxt_, snd_buf_seq_) ? snd_nxt_ - snd_buf_seq_ : 0;
  info.tcpi_notsent_bytes = static_cast<uint32_t>(sndbuf_.size() > sent ? sndbuf_.size() - sent : 0);
  info.tcpi_min_rtt = usec(min_rtt_ns_);
  info.tcpi_data_segs_in = static_cast<uint32_t>(stats_.data_segs_in);
  info.tcpi_data_segs_out = static_cast<uint32_t>(stats_.data_segs_out);
  info.tcpi_bytes_sent = stats_.bytes_sent;
  info.tcpi_bytes_retrans = stats_.bytes_retrans;
  info.tcpi_dsack_dups = stats_.dsack_dups;
  info.tcpi_rcv_ooopack = stats_.rcv_ooopack;
  info.tcpi_snd_wnd = snd_wnd_;
}

}  // namespace rump::tcp
