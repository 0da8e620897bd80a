// tcp_script.cc: the script player: segment text, routing, virtual time.
#include "tcp_script.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace tcptest {
namespace {

std::vector<std::string> split(std::string_view s, const char* seps) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (std::string_view(seps).find(c) != std::string_view::npos) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

uint32_t num(const std::string& s) { return static_cast<uint32_t>(strtoul(s.c_str(), nullptr, 10)); }

// A segment's text in parts, so that expectations can leave parts out.
struct Parts {
  std::string head;  // flags and seq range
  std::string ack;
  std::string win;
  std::string opts;  // "<...>", "<>" for none, "" for not given
  bool has_win = false;
  bool has_opts = false;
  bool has_ack = false;
};

Parts split_parts(std::string_view text) {
  Parts p;
  std::string t(text);
  size_t lt = t.find('<');
  if (lt != std::string::npos) {
    p.opts = t.substr(lt);
    p.has_opts = true;
    t = t.substr(0, lt);
  }
  auto toks = split(t, " ");
  for (size_t i = 0; i < toks.size(); i++) {
    if (toks[i] == "ack" && i + 1 < toks.size()) {
      p.ack = toks[++i];
      p.has_ack = true;
    } else if (toks[i] == "win" && i + 1 < toks.size()) {
      p.win = toks[++i];
      p.has_win = true;
    } else {
      p.head += (p.head.empty() ? "" : " ") + toks[i];
    }
  }
  return p;
}

bool token_match(const std::string& want, const std::string& got) {
  auto w = split(want, " ,<>:()");
  auto g = split(got, " ,<>:()");
  if (w.size() != g.size()) return false;
  for (size_t i = 0; i < w.size(); i++) {
    if (w[i] != "*" && w[i] != g[i]) return false;
  }
  return true;
}

std::string flags_text(uint8_t f) {
  std::string s;
  if (f & kFin) s += 'F';
  if (f & kSyn) s += 'S';
  if (f & kRst) s += 'R';
  if (f & kPsh) s += 'P';
  if (f & kUrg) s += 'U';
  if (f & kEce) s += 'E';
  if (f & kCwr) s += 'W';
  if (f & kAck) s += '.';
  return s;
}

}  // namespace

void FakeHost::output(const TcpEndpoints& ep, const TcpSegment& seg) {
  Sent s;
  s.seg = seg;
  s.payload.insert(s.payload.end(), seg.data, seg.data + seg.len);
  if (seg.len2) s.payload.insert(s.payload.end(), seg.data2, seg.data2 + seg.len2);
  s.seg.data = nullptr;
  s.seg.data2 = nullptr;
  s.to_port = ep.fport;
  if (seg.opt.has_ts) last_tsval = seg.opt.tsval;
  sent.push_back(std::move(s));
}

Script::Script(const TcpConfig& cfg) : cfg_(cfg) {}

Script::~Script() {
  delete listener_;
  for (TcpConnection* c : all_) delete c;
  CHECK(kmem_.live_allocations() == 0);
}

static TcpEndpoints endpoints(uint16_t peer_port) {
  TcpEndpoints ep;
  ep.family = 2;
  ep.laddr[0] = 127;
  ep.laddr[3] = 1;
  ep.faddr[0] = 127;
  ep.faddr[3] = 2;
  ep.lport = Script::kLocalPort;
  ep.fport = peer_port;
  return ep;
}

TcpConnection& Script::connect(uint32_t iss) {
  auto c = TcpConnection::create(kmem_, host_, endpoints(kPeerPort), cfg_);
  REQUIRE(c.ok());
  active_ = *c;
  all_.push_back(active_);
  our_iss_ = iss;
  host_.randoms.push_back(iss);
  host_.randoms.push_back(0);  // timestamp offset
  REQUIRE(active_->connect().ok());
  return *active_;
}

TcpListener& Script::listen(int backlog, uint32_t iss) {
  TcpEndpoints ep = endpoints(0);
  auto l = TcpListener::create(kmem_, host_, ep, backlog, cfg_);
  REQUIRE(l.ok());
  listener_ = *l;
  our_iss_ = iss;
  for (int i = 0; i < 64; i++) {
    host_.randoms.push_back(iss);
    host_.randoms.push_back(0);
  }
  return *listener_;
}

bool Script::has_conn(uint16_t peer_port) const {
  if (active_ != nullptr) return true;
  return children_.count(peer_port) != 0;
}

TcpConnection& Script::conn(uint16_t peer_port) {
  TcpConnection* c = route(peer_port);
  REQUIRE(c != nullptr);
  return *c;
}

TcpConnection* Script::route(uint16_t peer_port) {
  if (active_ != nullptr) return active_;
  auto it = children_.find(peer_port);
  return it == children_.end() ? nullptr : it->second;
}

TcpSegment Script::parse(std::string_view text, uint16_t peer_port, std::vector<uint8_t>& payload) {
  Parts p = split_parts(text);
  TcpSegment s;
  s.sport = peer_port;
  s.dport = kLocalPort;
  auto head = split(p.head, " ");
  REQUIRE(head.size() >= 2);
  for (char c : head[0]) {
    switch (c) {
      case 'F': s.flags |= kFin; break;
      case 'S': s.flags |= kSyn; break;
      case 'R': s.flags |= kRst; break;
      case 'P': s.flags |= kPsh; break;
      case 'U': s.flags |= kUrg; break;
      case '.': s.flags |= kAck; break;
      default: FAIL("bad flag in " << text);
    }
  }
  auto range = split(head[1], ":()");
  REQUIRE(range.size() == 3);
  uint32_t start = num(range[0]);
  uint32_t len = num(range[2]);
  s.seq = peer_iss_ + start;
  for (size_t i = 2; i < head.size(); i++) {
    if (head[i] == "urg" && i + 1 < head.size()) s.urp = static_cast<uint16_t>(num(head[++i]));
  }
  if (p.has_ack) s.ack = our_iss_ + num(p.ack);
  s.window = p.has_win ? static_cast<uint16_t>(num(p.win)) : 65535;
  if (p.has_opts) {
    auto opts = split(p.opts, "<>,");
    for (auto& o : opts) {
      auto t = split(o, " ");
      if (t.empty()) continue;
      if (t[0] == "mss") {
        s.opt.has_mss = true;
        s.opt.mss = static_cast<uint16_t>(num(t.at(1)));
      } else if (t[0] == "wscale") {
        s.opt.has_wscale = true;
        s.opt.wscale = static_cast<uint8_t>(num(t.at(1)));
      } else if (t[0] == "sackOK") {
        s.opt.sack_permitted = true;
      } else if (t[0] == "TS") {
        s.opt.has_ts = true;
        s.opt.tsval = num(t.at(2));
        s.opt.tsecr = t.at(4) == "*" ? host_.last_tsval : num(t.at(4));
      } else if (t[0] == "sack") {
        for (size_t i = 1; i < t.size() && s.opt.nsack < kMaxSackBlocks; i++) {
          auto b = split(t[i], ":");
          s.opt.sack[s.opt.nsack++] = SackBlock{our_iss_ + num(b.at(0)), our_iss_ + num(b.at(1))};
        }
      } else if (t[0] != "nop") {
        FAIL("bad option " << o);
      }
    }
  }
  payload.resize(len);
  // The peer's stream starts at relative sequence 1.
  for (uint32_t i = 0; i < len; i++) payload[i] = pattern(start + i - 1);
  s.data = payload.data();
  s.len = len;
  return s;
}

void Script::in(std::string_view text, uint16_t peer_port) {
  std::vector<uint8_t> payload;
  TcpSegment s = parse(text, peer_port, payload);
  TcpConnection* c = route(peer_port);
  if (c != nullptr && c->state() == TcpState::kClosed && listener_ != nullptr) {
    children_.erase(peer_port);
    c = nullptr;
  }
  if (c != nullptr) {
    c->input(s);
    return;
  }
  if (listener_ != nullptr) {
    TcpConnection* child = listener_->input(endpoints(peer_port), s);
    if (child != nullptr) {
      children_[peer_port] = child;
      all_.push_back(child);
    }
    return;
  }
  tcp_respond_closed(host_, endpoints(peer_port), s);
}

std::string Script::format(const Sent& x) const {
  const TcpSegment& s = x.seg;
  std::ostringstream o;
  uint32_t len = static_cast<uint32_t>(x.payload.size());
  uint32_t start = s.seq - our_iss_;
  o << flags_text(s.flags) << " " << start << ":" << start + len << "(" << len << ")";
  if (s.flags & kAck) o << " ack " << (s.ack - peer_iss_);
  o << " win " << s.window;
  if (s.urp) o << " urg " << s.urp;
  o << " <";
  bool first = true;
  auto sep = [&] {
    if (!first) o << ",";
    first = false;
  };
  if (s.opt.has_mss) { sep(); o << "mss " << s.opt.mss; }
  if (s.opt.sack_permitted) { sep(); o << "sackOK"; }
  if (s.opt.has_ts) { sep(); o << "TS val " << s.opt.tsval << " ecr " << s.opt.tsecr; }
  if (s.opt.has_wscale) { sep(); o << "wscale " << int(s.opt.wscale); }
  if (s.opt.nsack) {
    sep();
    o << "sack";
    for (int i = 0; i < s.opt.nsack; i++) {
      o << " " << (s.opt.sack[i].left - peer_iss_) << ":" << (s.opt.sack[i].right - peer_iss_);
    }
  }
  o << ">";
  return o.str();
}

void Script::out(std::string_view text) {
  out_count_++;
  if (host_.sent.empty()) {
    FAIL("output #" << out_count_ << ": expected `" << text << "`, nothing was sent");
  }
  Sent x = host_.sent.front();
  host_.sent.pop_front();
  Parts want = split_parts(text);
  // A SYN tells us the ISS (cookies and children choose their own).
  if ((x.seg.flags & kSyn) && want.head.find('S') != std::string::npos) our_iss_ = x.seg.seq;
  std::string got_text = format(x);
  Parts got = split_parts(got_text);
  bool ok = token_match(want.head, got.head) && want.has_ack == got.has_ack &&
            (!want.has_ack || token_match(want.ack, got.ack)) &&
            (!want.has_win || token_match(want.win, got.win)) &&
            (!want.has_opts || token_match(want.opts, got.opts));
  if (!ok) {
    FAIL("output #" << out_count_ << " at t=" << host_.now / 1000000 << "ms\n  expected: " << text
                    << "\n  got:      " << got_text);
  }
  // Data we send follows our pattern.
  uint32_t start = x.seg.seq - our_iss_;
  for (size_t i = 0; i < x.payload.size(); i++) {
    if (x.payload[i] != pattern(static_cast<uint32_t>(start + i - 1) ^ 0x55)) {
      FAIL("output #" << out_count_ << ": payload byte " << i << " differs in " << got_text);
    }
  }
}

void Script::none() {
  if (!host_.sent.empty()) {
    FAIL("expected no output at t=" << host_.now / 1000000 << "ms, got: "
                                    << format(host_.sent.front()));
  }
}

void Script::advance_ns(int64_t ns) {
  int64_t target = host_.now + ns;
  for (;;) {
    TcpConnection* next = nullptr;
    int64_t d = INT64_MAX;
    for (TcpConnection* c : all_) {
      int64_t t = c->next_deadline();
      if (t < d) {
        d = t;
        next = c;
      }
    }
    if (next == nullptr || d > target) break;
    if (d > host_.now) host_.now = d;
    next->on_timer();
  }
  host_.now = target;
}

void Script::advance_ms(int64_t ms) { advance_ns(ms * 1000000); }

size_t Script::send(size_t n, bool more) {
  std::vector<uint8_t> buf(n);
  // Our stream is the pattern of (offset ^ 0x55), so the two directions differ.
  for (size_t i = 0; i < n; i++) buf[i] = pattern(static_cast<uint32_t>(send_off_ + i) ^ 0x55);
  TcpConnection& c = active_ != nullptr ? *active_ : *children_.begin()->second;
  auto r = c.send(buf.data(), n, more);
  REQUIRE(r.ok());
  send_off_ += static_cast<uint32_t>(*r);
  return *r;
}

size_t Script::recv_check(size_t max) {
  TcpConnection& c = active_ != nullptr ? *active_ : *children_.begin()->second;
  std::vector<uint8_t> buf(max);
  auto r = c.recv(buf.data(), max);
  if (!r.ok()) return 0;
  for (size_t i = 0; i < *r; i++) {
    if (buf[i] != pattern(recv_off_ + static_cast<uint32_t>(i))) {
      FAIL("received byte at stream offset " << recv_off_ + i << " differs");
    }
  }
  recv_off_ += static_cast<uint32_t>(*r);
  return *r;
}

}  // namespace tcptest
