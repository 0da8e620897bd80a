// tcp_cc.cc: Reno and CUBIC window growth and loss response.
#include "net/inet/tcp/tcp_cc.h"

#include <cmath>

namespace rump::tcp {
namespace {

// RFC 9438 section 5: C and beta_cubic.
constexpr double kCubicC = 0.4;
constexpr double kCubicBeta = 0.7;

}  // namespace

bool cc_from_name(std::string_view name, CcAlgo* out) {
  if (name == "reno") {
    *out = CcAlgo::kReno;
    return true;
  }
  if (name == "cubic") {
    *out = CcAlgo::kCubic;
    return true;
  }
  return false;
}

const char* cc_name(CcAlgo a) { return a == CcAlgo::kReno ? "reno" : "cubic"; }

void CongestionControl::init(CcAlgo algo, uint32_t smss) {
  algo_ = algo;
  smss_ = smss;
  cwnd_ = kInitialWindowSegments * smss;
  ssthresh_ = 0x7fffffff;
  bytes_acked_ = 0;
  any_acked_ = false;
  epoch_valid_ = false;
  w_max_ = 0;
}

void CongestionControl::set_smss(uint32_t smss) {
  if (!any_acked_ && cwnd_ == kInitialWindowSegments * smss_) cwnd_ = kInitialWindowSegments * smss;
  smss_ = smss;
}

void CongestionControl::set_algo(CcAlgo a) {
  if (a == algo_) return;
  algo_ = a;
  epoch_valid_ = false;
  bytes_acked_ = 0;
}

void CongestionControl::on_ack(uint32_t acked, int64_t now_ns, int64_t srtt_ns) {
  any_acked_ = true;
  if (cwnd_ < ssthresh_) {
    // Slow start with appropriate byte counting, L = 2 (RFC 3465).
    uint32_t inc = acked < 2 * smss_ ? acked : 2 * smss_;
    cwnd_ += inc;
    if (cwnd_ > ssthresh_ && ssthresh_ != 0x7fffffff) cwnd_ = ssthresh_;
    return;
  }
  if (algo_ == CcAlgo::kCubic) {
    cubic_on_ack(acked, now_ns, srtt_ns);
    return;
  }
  // Reno congestion avoidance: one SMSS per cwnd of acknowledged bytes.
  bytes_acked_ += acked;
  if (bytes_acked_ >= cwnd_) {
    bytes_acked_ -= cwnd_;
    cwnd_ += smss_;
  }
}

void CongestionControl::cubic_on_ack(uint32_t acked, int64_t now_ns, int64_t srtt_ns) {
  double cwnd_seg = static_cast<double>(cwnd_) / smss_;
  if (!epoch_valid_) {
    epoch_valid_ = true;
    epoch_start_ns_ = now_ns;
    if (cwnd_seg < w_max_) {
      k_ = std::cbrt((w_max_ - cwnd_seg) / kCubicC);
    } else {
      k_ = 0;
      w_max_ = cwnd_seg;
    }
    w_est_ = cwnd_seg;
    cwnd_frac_ = 0;
  }
  double acked_seg = static_cast<double>(acked) / smss_;
  double t = static_cast<double>(now_ns - epoch_start_ns_) / 1e9;
  double rtt = static_cast<double>(srtt_ns) / 1e9;
  auto w_cubic = [&](double x) { return kCubicC * (x - k_) * (x - k_) * (x - k_) + w_max_; };
  // Reno-friendly estimate (section 4.3).
  double alpha = w_est_ < w_max_ ? 3.0 * (1 - kCubicBeta) / (1 + kCubicBeta) : 1.0;
  w_est_ += alpha * acked_seg / cwnd_seg;
  double target;
  if (w_cubic(t) < w_est_) {
    target = w_est_;
    cwnd_frac_ += target - cwnd_seg;
  } else {
    target = w_cubic(t + rtt);
    if (target < cwnd_seg) target = cwnd_seg;
    if (target > 1.5 * cwnd_seg) target = 1.5 * cwnd_seg;
    cwnd_frac_ += (target - cwnd_seg) / cwnd_seg * acked_seg;
  }
  if (cwnd_frac_ >= 1.0) {
    double whole = std::floor(cwnd_frac_);
    cwnd_ += static_cast<uint32_t>(whole) * smss_;
    cwnd_frac_ -= whole;
  }
}

void CongestionControl::on_loss(uint32_t flight, int64_t now_ns) {
  any_acked_ = true;
  if (algo_ == CcAlgo::kReno) {
    uint32_t half = flight / 2;
    ssthresh_ = half > 2 * smss_ ? half : 2 * smss_;
    bytes_acked_ = 0;
    return;
  }
  double cwnd_seg = static_cast<double>(cwnd_) / smss_;
  // Fast convergence (section 4.7).
  if (cwnd_seg < w_max_) w_max_ = cwnd_seg * (1 + kCubicBeta) / 2;
  else w_max_ = cwnd_seg;
  auto reduced = static_cast<uint32_t>(cwnd_ * kCubicBeta);
  ssthresh_ = reduced > 2 * smss_ ? reduced : 2 * smss_;
  epoch_valid_ = false;
  (void)now_ns;
}

void CongestionControl::on_rto(uint32_t flight, int64_t now_ns) {
  on_loss(flight, now_ns);
  cwnd_ = smss_;
  bytes_acked_ = 0;
}

}  // namespace rump::tcp
