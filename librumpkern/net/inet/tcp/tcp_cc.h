// tcp_cc.h: congestion control, per connection.
//
// Two algorithms share one state block: Reno (RFC 5681 growth, the
// NewReno loss response of RFC 6582 is in the connection) and CUBIC
// (RFC 9438), the default, as on Linux. The connection calls on_ack() for
// newly acknowledged bytes outside loss recovery, on_loss() when it enters
// fast recovery and on_rto() when the retransmission timer fires; the
// algorithm owns cwnd and ssthresh. No allocation: the state is inline.
#pragma once

#include <cstdint>
#include <string_view>

namespace rump::tcp {

enum class CcAlgo : uint8_t { kReno, kCubic };

// "reno" / "cubic"; nullopt-like false for an unknown name.
bool cc_from_name(std::string_view name, CcAlgo* out);
const char* cc_name(CcAlgo a);

class CongestionControl {
 public:
  static constexpr uint32_t kInitialWindowSegments = 10;  // RFC 6928, as Linux

  void init(CcAlgo algo, uint32_t smss);
  // The sender's MSS changed (options negotiated): cwnd is re-derived if no
  // data has been acknowledged yet.
  void set_smss(uint32_t smss);
  CcAlgo algo() const { return algo_; }
  void set_algo(CcAlgo a);

  uint32_t cwnd() const { return cwnd_; }
  uint32_t ssthresh() const { return ssthresh_; }
  bool in_slow_start() const { return cwnd_ < ssthresh_; }
  void set_cwnd(uint32_t c) { cwnd_ = c; }

  // acked: bytes newly acknowledged; now_ns the time; srtt_ns the smoothed
  // RTT (0 if none yet).
  void on_ack(uint32_t acked, int64_t now_ns, int64_t srtt_ns);
  // A loss detected by duplicate ACKs: sets ssthresh (and CUBIC's epoch);
  // flight is the data outstanding. The caller sets cwnd for recovery.
  void on_loss(uint32_t flight, int64_t now_ns);
  // The retransmission timer fired: ssthresh as for a loss, cwnd one segment.
  void on_rto(uint32_t flight, int64_t now_ns);

 private:
  void cubic_on_ack(uint32_t acked, int64_t now_ns, int64_t srtt_ns);

  CcAlgo algo_ = CcAlgo::kCubic;
  uint32_t smss_ = 536;
  uint32_t cwnd_ = 0;
  uint32_t ssthresh_ = 0x7fffffff;
  uint32_t bytes_acked_ = 0;  // Reno congestion avoidance: bytes since the last increase
  bool any_acked_ = false;
  // CUBIC, in segments and seconds.
  double w_max_ = 0;
  double k_ = 0;
  double w_est_ = 0;
  double cwnd_frac_ = 0;  // the fractional part of cwnd growth, in segments
  int64_t epoch_start_ns_ = 0;
  bool epoch_valid_ = false;
};

}  // namespace rump::tcp
