// tcp_pair_test.cc: two TCP engines talking over a simulated link with
// seeded loss, duplication and reordering, on a virtual clock: a bulk
// transfer must arrive byte for byte and both ends must close cleanly.
// Exercises retransmission, reassembly, SACK blocks, fast recovery and the
// close handshakes together, as the scripted tests cannot.
#include <catch2/catch.hpp>

#include <cstring>
#include <deque>
#include <vector>

#include "net/inet/tcp/tcp_conn.h"
#include "net/inet/tcp/tcp_listen.h"

using namespace rump::tcp;

namespace {

struct Impair {
  uint64_t seed = 1;
  double loss = 0;
  double duplicate = 0;
  double reorder = 0;
};

class Link;

// One side's host: output goes into the link.
class PairHost : public TcpHost {
 public:
  PairHost(Link& link, int side) : link_(link), side_(side) {}
  int64_t now_ns() override;
  uint32_t random32() override { return 0x1000 * static_cast<uint32_t>(side_ + 1) + 77; }
  void output(const TcpEndpoints& ep, const TcpSegment& seg) override;
  void notify(TcpConnection&) override {}
  void listener_ready(TcpListener&) override {}
  uint64_t cookie_secret() override { return 42; }

 private:
  Link& link_;
  int side_;
};

struct InFlight {
  int64_t at;
  int to;  // side that receives
  TcpSegment seg;
  std::vector<uint8_t> payload;
};

class Link {
 public:
  explicit Link(const Impair& imp) : imp_(imp), rng_(imp.seed * 0x9e3779b97f4a7c15ULL + 1) {}
  int64_t now = 1000000000;
  int64_t delay_ns = 1000000;  // 1 ms each way
  uint64_t sent = 0, dropped = 0, duplicated = 0, reordered = 0;

  double uniform() {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return static_cast<double>(rng_ >> 11) / static_cast<double>(1ULL << 53);
  }

  void send(int from, const TcpSegment& seg) {
    sent++;
    if (uniform() < imp_.loss) {
      dropped++;
      return;
    }
    int copies = uniform() < imp_.duplicate ? 2 : 1;
    if (copies == 2) duplicated++;
    for (int i = 0; i < copies; i++) {
      InFlight f;
      f.at = now + delay_ns;
      if (uniform() < imp_.reorder) {
        f.at += delay_ns * 3;  // overtaken by later segments
        reordered++;
      }
      f.to = 1 - from;
      f.seg = seg;
      f.payload.assign(seg.data, seg.data + seg.len);
      if (seg.len2) f.payload.insert(f.payload.end(), seg.data2, seg.data2 + seg.len2);
      f.seg.data = nullptr;
      f.seg.len = f.payload.size();
      f.seg.data2 = nullptr;
      f.seg.len2 = 0;
      // Keep the queue ordered by arrival time (stable for equal times).
      auto it = queue_.end();
      while (it != queue_.begin() && std::prev(it)->at > f.at) --it;
      queue_.insert(it, std::move(f));
    }
  }

  std::deque<InFlight> queue_;

 private:
  Impair imp_;
  uint64_t rng_;
};

int64_t PairHost::now_ns() { return link_.now; }
void PairHost::output(const TcpEndpoints&, const TcpSegment& seg) { link_.send(side_, seg); }

TcpEndpoints ends(int side) {
  TcpEndpoints e;
  e.family = 2;
  e.laddr[3] = static_cast<uint8_t>(side + 1);
  e.faddr[3] = static_cast<uint8_t>(2 - side);
  e.lport = side == 0 ? 40000 : 80;
  e.fport = side == 0 ? 80 : 40000;
  return e;
}

uint8_t byte_at(size_t off) { return static_cast<uint8_t>((off * 131) ^ (off >> 9)); }

struct Result {
  size_t received = 0;  // by the server; by the client, in received_back
  size_t received_back = 0;
  bool eof = false;
  bool eof_back = false;
  TcpState client_state = TcpState::kClosed;
  TcpState server_state = TcpState::kClosed;
  uint32_t retrans = 0;
  uint32_t retrans_back = 0;
};

// One application's side of the stream: what it wrote and read.
struct Stream {
  size_t total = 0;  // to send
  size_t sent = 0;
  bool shut = false;
  size_t* received = nullptr;
  bool* eof = nullptr;
};

// Writes what the connection takes of s's bytes, shutting writing down after the last.
void write_side(TcpConnection* c, Stream& s, std::vector<uint8_t>& chunk) {
  if (s.sent < s.total) {
    size_t n = std::min(chunk.size(), s.total - s.sent);
    for (size_t i = 0; i < n; i++) chunk[i] = byte_at(s.sent + i);
    auto r = c->send(chunk.data(), n);
    if (r.ok()) s.sent += *r;
  }
  if (s.sent == s.total && !s.shut) {
    REQUIRE(c->shutdown_write().ok());
    s.shut = true;
  }
}

// Reads everything there is, checking each byte; true at the end of the stream.
bool read_side(TcpConnection* c, Stream& s, std::vector<uint8_t>& chunk) {
  for (;;) {
    auto r = c->recv(chunk.data(), chunk.size());
    if (!r.ok()) return false;
    if (*r == 0) {
      *s.eof = true;
      return true;
    }
    for (size_t i = 0; i < *r; i++) {
      if (chunk[i] != byte_at(*s.received + i)) {
        FAIL("byte " << *s.received + i << " differs");
      }
    }
    *s.received += *r;
  }
}

// The client sends `total` bytes to the server and, with back > 0, the
// server sends `back` bytes to the client at the same time; both ends'
// buffers hold `buf` bytes.
Result run_transfer(const Impair& imp, size_t total, CcAlgo cc, size_t back = 0, uint32_t buf = 64 * 1024) {
  Link link(imp);
  PairHost host_a(link, 0), host_b(link, 1);
  rump::Kmem kmem;
  TcpConfig cfg;
  cfg.cc = cc;
  cfg.sndbuf = buf;
  cfg.rcvbuf = buf;
  TcpListener* listener = *TcpListener::create(kmem, host_b, ends(1), 4, cfg);
  TcpConnection* client = *TcpConnection::create(kmem, host_a, ends(0), cfg);
  TcpConnection* server = nullptr;
  std::vector<TcpConnection*> children;
  REQUIRE(client->connect().ok());

  Result res;
  Stream up{total, 0, false, &res.received, &res.eof};
  Stream down{back, 0, false, &res.received_back, &res.eof_back};
  bool server_closed = false;
  std::vector<uint8_t> chunk(16384);
  for (int step = 0; step < 4000000; step++) {
    // Applications: each side writes its stream and reads and checks the
    // other's; the server closes after the end of the client's stream and
    // of its own.
    if (client->state() == TcpState::kEstablished || client->state() == TcpState::kCloseWait) {
      write_side(client, up, chunk);
    }
    if (back > 0 && !res.eof_back) read_side(client, down, chunk);
    if (server == nullptr) server = listener->accept();
    if (server != nullptr && !server_closed) {
      if (back > 0) write_side(server, down, chunk);
      if (res.eof || read_side(server, up, chunk)) {
        if (down.shut || back == 0) {
          server->close();
          server_closed = true;
        }
      }
    }
    // The next event: a packet arrival or a timer.
    int64_t next = INT64_MAX;
    if (!link.queue_.empty()) next = link.queue_.front().at;
    std::vector<TcpConnection*> all = children;
    all.push_back(client);
    for (TcpConnection* c : all) next = std::min(next, c->next_deadline());
    if (next == INT64_MAX) break;
    if (next > link.now) link.now = next;
    if (!link.queue_.empty() && link.queue_.front().at <= link.now) {
      InFlight f = std::move(link.queue_.front());
      link.queue_.pop_front();
      f.seg.data = f.payload.data();
      if (f.to == 0) {
        client->input(f.seg);
      } else {
        TcpConnection* c = nullptr;
        for (TcpConnection* x : children) {
          if (x->state() != TcpState::kClosed) c = x;
        }
        if (c != nullptr) {
          c->input(f.seg);
        } else if (TcpConnection* child = listener->input(ends(1), f.seg)) {
          children.push_back(child);
        }
      }
      continue;
    }
    for (TcpConnection* c : all) {
      if (c->next_deadline() <= link.now) c->on_timer();
    }
  }
  res.client_state = client->state();
  res.server_state = server != nullptr ? server->state() : TcpState::kClosed;
  res.retrans = client->stats().total_retrans;
  res.retrans_back = server != nullptr ? server->stats().total_retrans : 0;
  INFO("sent " << link.sent << " dropped " << link.dropped << " dup " << link.duplicated
               << " reordered " << link.reordered << " retrans " << res.retrans << " back "
               << res.retrans_back);
  delete listener;
  delete client;
  for (TcpConnection* c : children) delete c;
  CHECK(kmem.live_allocations() == 0);
  return res;
}

}  // namespace

TEST_CASE("a bulk transfer over a clean link arrives byte for byte and both ends close", "[tcp]") {
  Result r = run_transfer(Impair{}, 2 << 20, CcAlgo::kCubic);
  CHECK(r.received == (2u << 20));
  CHECK(r.eof);
  CHECK(r.retrans == 0);
  // The client closed first: it ends in TIME_WAIT's expiry, the server in CLOSED.
  CHECK(r.client_state == TcpState::kClosed);
  CHECK(r.server_state == TcpState::kClosed);
}

#ifndef TCP_PAIR_SEEDS
#define TCP_PAIR_SEEDS 6
#endif
constexpr uint64_t kSeeds = TCP_PAIR_SEEDS;

TEST_CASE("bulk transfers survive seeded loss, duplication and reordering", "[tcp]") {
  for (uint64_t seed = 1; seed <= kSeeds; seed++) {
    for (CcAlgo cc : {CcAlgo::kCubic, CcAlgo::kReno}) {
      Impair imp;
      imp.seed = seed;
      imp.loss = 0.01 * static_cast<double>(seed % 3 + 1) * 3;  // 3 %, 6 %, 9 %
      imp.duplicate = 0.02;
      imp.reorder = 0.05;
      INFO("seed " << seed << " " << cc_name(cc));
      Result r = run_transfer(imp, 512 << 10, cc);
      CHECK(r.received == (512u << 10));
      CHECK(r.eof);
      CHECK(r.retrans > 0);
      CHECK(r.client_state == TcpState::kClosed);
      CHECK(r.server_state == TcpState::kClosed);
    }
  }
}

TEST_CASE("bulk transfers both ways at once survive seeded loss, duplication and reordering", "[tcp]") {
  // Both ends retransmit after timeouts at once: each one's ACKs must stay
  // acceptable to the other (numbered from the highest byte sent, not from
  // SND.NXT taken back by the timeout, and SND.MAX covering every byte a
  // retransmission carried), or the two answer each other's ACKs as
  // duplicates or ACKs of unsent data forever. Seeds 1, 2 and 4 stalled so.
  for (uint64_t seed = 1; seed <= kSeeds; seed++) {
    Impair imp;
    imp.seed = seed;
    imp.loss = 0.01 * static_cast<double>(seed % 3 + 1) * 3;  // 3 %, 6 %, 9 %
    imp.duplicate = 0.02;
    imp.reorder = 0.05;
    // Small buffers keep both windows full and segments often short.
    uint32_t buf = seed % 2 ? 64 * 1024 : 8 * 1024;
    INFO("seed " << seed << " buffers " << buf);
    Result r = run_transfer(imp, 512 << 10, CcAlgo::kCubic, 512 << 10, buf);
    CHECK(r.received == (512u << 10));
    CHECK(r.received_back == (512u << 10));
    CHECK(r.eof);
    CHECK(r.eof_back);
    CHECK(r.retrans > 0);
    CHECK(r.retrans_back > 0);
    CHECK(r.client_state == TcpState::kClosed);
    CHECK(r.server_state == TcpState::kClosed);
  }
}
