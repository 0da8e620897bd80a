// tcp_listen.cc: listen queues and SYN cookies.
//
// Cookie layout (the ISS of a stateless SYN-ACK), in the classic shape:
//   ISS = H(secret, 4-tuple) + peer ISN + (count << 24)
//         + ((H(secret, 4-tuple, count) + mss_index) mod 2^24)
// where count advances every 64 seconds; a cookie is valid for the current
// and the previous count. With timestamps, the low 6 bits of our TSval
// carry the peer's window scale (4 bits, 15 = none) and SACK-permitted,
// so a cookie connection keeps those options. H is a keyed 64-bit mix of
// the kernel's secret with the endpoints: it keeps blind guessing costly,
// it is not a cryptographic MAC.
#include "net/inet/tcp/tcp_listen.h"

namespace rump::tcp {
namespace {

constexpr uint16_t kCookieMss[] = {536, 1220, 1440, 1460};
constexpr int64_t kCookiePeriodNs = 64LL * 1000000000;

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 29;
  return h;
}

}  // namespace

Result<TcpListener*> TcpListener::create(Kmem& kmem, TcpHost& host, const TcpEndpoints& local,
                                         int backlog, const TcpConfig& cfg) {
  auto* l = new (kmem) TcpListener(kmem, host, local, backlog < 1 ? 1 : backlog, cfg);
  if (l == nullptr) return err(ENOMEM);
  return l;
}

TcpListener::~TcpListener() {
  for (Queue* q : {&syn_queue_, &accepted_}) {
    while (!q->empty()) {
      TcpConnection& c = q->front();
      q->pop_front();
      c.listener_ = nullptr;
      c.detached_ = true;
      c.abort();
    }
  }
}

void TcpListener::set_backlog(int backlog) { backlog_ = backlog < 0 ? 0 : backlog; }

uint32_t TcpListener::cookie_count() const {
  return static_cast<uint32_t>(host_.now_ns() / kCookiePeriodNs);
}

uint32_t TcpListener::cookie_hash(const TcpEndpoints& ep, uint32_t count, uint32_t salt) const {
  uint64_t h = mix(host_.cookie_secret(), salt);
  for (int i = 0; i < 16; i += 8) {
    uint64_t a = 0, b = 0;
    for (int j = 0; j < 8; j++) {
      a = a << 8 | ep.laddr[i + j];
      b = b << 8 | ep.faddr[i + j];
    }
    h = mix(h, a);
    h = mix(h, b);
  }
  h = mix(h, static_cast<uint64_t>(ep.lport) << 16 | ep.fport);
  h = mix(h, count);
  return static_cast<uint32_t>(h);
}

TcpConnection* TcpListener::input(const TcpEndpoints& ep, const TcpSegment& seg, const Seq* iss) {
  if (seg.has(kRst)) return nullptr;
  if (seg.has(kAck) && !seg.has(kSyn)) {
    TcpConnection* c = check_cookie(ep, seg);
    if (c == nullptr) tcp_respond_closed(host_, ep, seg);
    return c;
  }
  if (!seg.has(kSyn)) return nullptr;
  if (seg.has(kAck)) {
    tcp_respond_closed(host_, ep, seg);
    return nullptr;
  }
  stats_.syns++;
  // A full accept queue drops the SYN: the peer will retry.
  if (accept_queue_full()) {
    stats_.accept_overflows++;
    return nullptr;
  }
  if (syn_queue_.size() >= static_cast<size_t>(backlog_)) {
    send_cookie_synack(ep, seg);
    return nullptr;
  }
  auto c = TcpConnection::create(kmem_, host_, ep, cfg_);
  if (!c.ok()) return nullptr;
  TcpConnection* child = *c;
  child->listener_ = this;
  syn_queue_.push_back(*child);
  child->accept_syn(seg, iss ? *iss : host_.isn(child->endpoints()));
  return child;
}

void TcpListener::send_cookie_synack(const TcpEndpoints& ep, const TcpSegment& syn) {
  uint16_t peer_mss = syn.opt.has_mss ? syn.opt.mss : 536;
  uint32_t idx = 0;
  for (uint32_t i = 0; i < sizeof(kCookieMss) / sizeof(kCookieMss[0]); i++) {
    if (kCookieMss[i] <= peer_mss) idx = i;
  }
  uint32_t count = cookie_count();
  Seq iss = cookie_hash(ep, 0, 1) + syn.seq + (count << 24) +
            ((cookie_hash(ep, count, 2) + idx) & 0xffffff);
  stats_.cookies_sent++;

  TcpSegment s;
  s.sport = ep.lport;
  s.dport = ep.fport;
  s.seq = iss;
  s.ack = syn.seq + 1;
  s.flags = kSyn | kAck;
  s.window = static_cast<uint16_t>(cfg_.rcvbuf > 65535 ? 65535 : cfg_.rcvbuf);
  s.opt.has_mss = true;
  s.opt.mss = cfg_.mss;
  bool ws = cfg_.window_scaling && syn.opt.has_wscale;
  bool sack = cfg_.sack && syn.opt.sack_permitted;
  if (cfg_.timestamps && syn.opt.has_ts) {
    // Options ride in the timestamp; without one they are lost (RFC 4987).
    uint32_t now_ts = static_cast<uint32_t>(host_.now_ns() / 1000000);
    uint32_t bits = (ws ? syn.opt.wscale : 0xfu) | (sack ? 0x10u : 0u) | 0x20u;
    s.opt.has_ts = true;
    s.opt.tsval = ((now_ts - 64) & ~0x3fu) | bits;
    s.opt.tsecr = syn.opt.tsval;
    s.opt.sack_permitted = sack;
    if (ws) {
      s.opt.has_wscale = true;
      uint8_t shift = 0;
      while (shift < 14 && (cfg_.rcvbuf >> shift) > 65535) shift++;
      s.opt.wscale = shift;
    }
  }
  host_.output(ep, s);
}

TcpConnection* TcpListener::check_cookie(const TcpEndpoints& ep, const TcpSegment& ack) {
  Seq iss = ack.ack - 1;
  Seq peer_isn = ack.seq - 1;
  uint32_t diff = iss - cookie_hash(ep, 0, 1) - peer_isn;
  uint32_t count = diff >> 24;
  uint32_t now_count = cookie_count();
  if (((now_count - count) & 0xff) > 1) {
    stats_.cookies_invalid++;
    return nullptr;
  }
  // Reconstruct the full count from its low 8 bits.
  uint32_t full = now_count - ((now_count - count) & 0xff);
  uint32_t idx = (diff - cookie_hash(ep, full, 2)) & 0xffffff;
  if (idx >= sizeof(kCookieMss) / sizeof(kCookieMss[0])) {
    stats_.cookies_invalid++;
    return nullptr;
  }
  if (accept_queue_full()) {
    stats_.accept_overflows++;
    return nullptr;
  }
  stats_.cookies_valid++;
  int wscale = -1;
  bool sack = false;
  bool ts = false;
  if (ack.opt.has_ts && (ack.opt.tsecr & 0x20u)) {
    ts = true;
    uint32_t w = ack.opt.tsecr & 0xfu;
    wscale = w == 0xf ? -1 : static_cast<int>(w);
    sack = (ack.opt.tsecr & 0x10u) != 0;
  }
  auto c = TcpConnection::create(kmem_, host_, ep, cfg_);
  if (!c.ok()) return nullptr;
  TcpConnection* child = *c;
  child->listener_ = this;
  syn_queue_.push_back(*child);
  child->accept_cookie(ack, iss, kCookieMss[idx], wscale, sack, ts);
  if (ack.payload_len() > 0 || ack.has(kFin)) child->input(ack);
  return child;
}

void TcpListener::child_established(TcpConnection& c) {
  if (c.queue_hook_.is_linked()) syn_queue_.erase(syn_queue_.iterator_to(c));
  accepted_.push_back(c);
  host_.listener_ready(*this);
}

void TcpListener::child_closed(TcpConnection& c) {
  if (c.queue_hook_.is_linked()) {
    // Only established() moves a child to the accept queue.
    if (c.was_established_) accepted_.erase(accepted_.iterator_to(c));
    else syn_queue_.erase(syn_queue_.iterator_to(c));
  }
  c.listener_ = nullptr;
  c.detached_ = true;
}

TcpConnection* TcpListener::accept() {
  if (accepted_.empty()) return nullptr;
  TcpConnection& c = accepted_.front();
  accepted_.pop_front();
  c.listener_ = nullptr;
  c.detached_ = false;
  return &c;
}

}  // namespace rump::tcp
