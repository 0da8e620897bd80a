// TCP sockets (see tcp_sock.h): the AF_INET and AF_INET6 SOCK_STREAM
// protocol, its IP input and ICMP error handlers, and the TcpHost the
// engine runs on.
//
// Data path: a sender copies the user's bytes straight into the free room
// of the connection's send buffer with the lock dropped (the send side
// marked busy), the engine cuts segments from that buffer into packets
// (one copy), input places a segment's payload in the receiver's buffer
// (one copy), and a reader copies out of that buffer with the lock
// dropped (the receive side busy). On lo checksums are skipped
// (kCsumPartial in, kCsumVerified out).
#include "net/inet/tcp_sock.h"

#include <linux/tcp.h>
#include <netinet/ip.h>
#include <rump/rumpuser.h>

#include <cstring>

#include "kern/clock.h"
#include "kern/kernel.h"
#include "kern/proc.h"
#include "kern/services.h"
#include "net/inet/ip_var.h"

namespace rump {

using tcp::TcpConnection;
using tcp::TcpEndpoints;
using tcp::TcpListener;
using tcp::TcpSegment;
using tcp::TcpState;

namespace {

// Where a queued packet goes: kept in the packet's headroom in front of
// the TCP header until it is sent.
struct OutAddr {
  IpAddr src, dst;
  int16_t ttl;
  uint8_t tos;
  int32_t oif;  // a link-scope peer's interface (inet_scope_oif; 0: the route's)
};

IpAddr ip_of(uint8_t family, const uint8_t* a) {
  if (family == AF_INET) {
    InAddr v;
    std::memcpy(&v.s, a, 4);
    return IpAddr::of(v);
  }
  In6Addr v;
  std::memcpy(v.b, a, 16);
  return IpAddr::of(v);
}

void put_ip(const IpAddr& ip, uint8_t* a) {
  if (ip.family == AF_INET) std::memcpy(a, &ip.v4.s, 4);
  else std::memcpy(a, ip.v6.b, 16);
}

// Payloads from this size on are lent to a loopback packet rather than
// copied into it (below, the copy is cheaper than the extra segment).
constexpr size_t kLendMin = 512;

// Lends the payload piece [d, d + n) of conn's send buffer to p: false
// when out of buffers.
bool lend_piece(Pkt& p, const TcpConnection& conn, const uint8_t* d, size_t n) {
  if (n == 0) return true;
  void* ref = conn.share_send_bytes(d);
  if (!ref) return p.append(d, n).ok();
  if (p.append_ext(d, n, &tcp::ByteRing::unshare, ref).ok()) return true;
  tcp::ByteRing::unshare(ref);
  return false;
}

// A segment as a packet with a partial checksum (the device finishes it,
// or lo skips it), its addresses in front. Null when out of buffers: the
// segment is lost and retransmission recovers. With lend (a connection
// over lo), a large payload is not copied: the packet borrows it from the
// send buffer, and the receiver copies it straight into its receive
// buffer.
Pkt* build_packet(InetState& st, const TcpEndpoints& ep, const TcpSegment& seg, int ttl, uint8_t tos, int bound_if,
                  const TcpConnection* lend = nullptr) {
  size_t hl = tcp::tcp_header_len(seg);
  size_t n = seg.payload_len();
  bool borrow = lend && n >= kLendMin;
  Result<Pkt*> r = Pkt::alloc(st.pool, borrow ? hl : hl + n, kPktHeadroom + sizeof(OutAddr));
  if (!r.ok()) return nullptr;
  Pkt* p = r.value();
  uint8_t hdr[tcp::kTcpMaxHeaderLen];
  tcp::tcp_build_header(seg, hdr);
  IpAddr src = ip_of(ep.family, ep.laddr), dst = ip_of(ep.family, ep.faddr);
  uint32_t ps = ep.family == AF_INET ? in_pseudo4(src.v4.s, dst.v4.s, IPPROTO_TCP, hl + n)
                                     : in_pseudo6(src.v6.b, dst.v6.b, IPPROTO_TCP, hl + n);
  uint16_t folded = htons(static_cast<uint16_t>(~in_cksum_fold(ps)));
  std::memcpy(hdr + 16, &folded, 2);
  p->copy_in(0, hl, hdr);
  if (borrow) {
    if (!lend_piece(*p, *lend, seg.data, seg.len) || !lend_piece(*p, *lend, seg.data2, seg.len2)) {
      Pkt::free(p);
      return nullptr;
    }
  } else {
    if (seg.len) p->copy_in(hl, seg.len, seg.data);
    if (seg.len2) p->copy_in(hl + seg.len, seg.len2, seg.data2);
  }
  p->meta.csum = kCsumPartial;
  p->meta.csum_start = 0;
  p->meta.csum_offset = 16;
  p->meta.gso_size = seg.gso_size;
  OutAddr oa{src, dst, static_cast<int16_t>(ttl), tos, inet_scope_oif(st, src, dst, bound_if)};
  Result<char*> at = p->prepend(sizeof oa);
  if (!at.ok()) {
    Pkt::free(p);
    return nullptr;
  }
  std::memcpy(at.value(), &oa, sizeof oa);
  return p;
}

// The host for replies that belong to no socket (RST to a closed port).
class StatelessHost final : public tcp::TcpHost {
 public:
  explicit StatelessHost(InetState& st) : st_(st) {}
  int64_t now_ns() override { return mono_now_ns(); }
  uint32_t random32() override { return 0; }
  void output(const TcpEndpoints& ep, const TcpSegment& seg) override {
    if (Pkt* p = build_packet(st_, ep, seg, -1, 0, 0)) out.push_back(*p);
  }
  void notify(TcpConnection&) override {}
  void listener_ready(TcpListener&) override {}
  uint64_t cookie_secret() override { return st_.tcp_cookie_secret; }
  PktList out;

 private:
  InetState& st_;
};

void send_list(Kernel& k, PktList& out) {
  while (!out.empty()) {
    Pkt& p = out.front();
    out.pop_front();
    OutAddr oa;
    p.copy_out(0, sizeof oa, &oa);
    p.trim_front(sizeof oa);
    IpOutOpts o;
    o.ttl = oa.ttl;
    o.tos = oa.tos;
    o.oif = oa.oif;
    (void)ip_output(k, &p, oa.src, oa.dst, IPPROTO_TCP, o);
  }
}

// The most send-buffer autotuning gives a connection (Linux's
// net.ipv4.tcp_wmem maximum).
constexpr uint32_t kSndBufAutoMax = 4 * 1024 * 1024;
// The most receive-buffer autotuning gives one (Linux's tcp_rmem[2]).
constexpr uint32_t kRcvBufAutoMax = 6 * 1024 * 1024;

// Linux's TCP_CA_NAME_MAX: the length TCP_CONGESTION reports.
constexpr size_t kCaNameMax = 16;

bool synchronizing(TcpState s) { return s == TcpState::kSynSent || s == TcpState::kSynReceived; }

// The peer will send nothing more (its FIN came, or the connection ended
// after it existed): Linux's RCV_SHUTDOWN.
bool peer_done(TcpState s) {
  return s == TcpState::kCloseWait || s == TcpState::kLastAck || s == TcpState::kClosing ||
         s == TcpState::kTimeWait || s == TcpState::kClosed;
}

// The MSS towards dst, and the payload one segment may carry when the
// route's device cuts segments itself (TSO; 0: none).
struct PathSizes {
  uint32_t mss;
  uint32_t gso_max;
};

PathSizes path_sizes(Kernel& k, const IpAddr& dst) {
  uint32_t tso = 0;
  uint32_t mtu = ip_path_mtu(k, dst, &tso);
  uint32_t ip = dst.family == AF_INET6 ? 40 : 20;
  uint32_t hdr = ip + 20;
  if (mtu < hdr + 536) return {536, 0};
  uint32_t mss = mtu - hdr;
  if (mss > 65495) mss = 65495;
  // Room for the largest TCP header.
  uint32_t gso = tso > ip + tcp::kTcpMaxHeaderLen ? tso - ip - tcp::kTcpMaxHeaderLen : 0;
  return {mss, gso > mss ? gso : 0};
}

}  // namespace

void tcp_finish(Kernel& k, TcpPending& p) {
  send_list(k, p.out);
  if (p.unref) {
    Socket* s = p.unref;
    p.unref = nullptr;
    s->unref();
  }
}

// --- the control block

TcpCb::TcpCb(Socket& s, int family, InetState& st) : InetCb(s, family, st, st.tcp), so(s) {
  orphan_link_.so = &s;
  timer_.init(*s.kernel().services().callouts(), &TcpCb::timer_fn, this);
}

TcpCb::~TcpCb() { timer_.halt(); }

int64_t TcpCb::now_ns() { return mono_now_ns(); }

uint32_t TcpCb::random32() {
  uint32_t r = 0;
  size_t got = 0;
  rumpuser_getrandom(&r, sizeof r, 0, &got);
  return r;
}

uint64_t TcpCb::cookie_secret() { return st->tcp_cookie_secret; }

// RFC 6528: ISN = M + F(endpoints, secret), with M a clock ticking every
// 4 microseconds and F a keyed hash (SipHash-2-4 under a secret drawn once
// per kernel), so that no host call is made per connection. The timestamp
// offset is the same hash under another salt, as Linux does.
namespace {

uint32_t tcp_secure_hash(const InetState& st, const TcpEndpoints& ep, uint8_t salt) {
  uint8_t m[37];
  std::memcpy(m, ep.laddr, 16);
  std::memcpy(m + 16, ep.faddr, 16);
  std::memcpy(m + 32, &ep.lport, 2);
  std::memcpy(m + 34, &ep.fport, 2);
  m[36] = salt;
  return static_cast<uint32_t>(siphash24(st.tcp_isn_key, m, sizeof m));
}

}  // namespace

uint32_t TcpCb::isn(const TcpEndpoints& ep) {
  return tcp_secure_hash(*st, ep, 0) + static_cast<uint32_t>(mono_now_ns() / 4000);
}

uint32_t TcpCb::ts_offset(const TcpEndpoints& ep) { return tcp_secure_hash(*st, ep, 1); }

void TcpCb::output(const TcpEndpoints& ep, const TcpSegment& seg) {
  // The engine calls this only from calls made under the socket's lock.
  so.lock_.assert_held();
  Pkt* p = build_packet(*st, ep, seg, ttl.load(std::memory_order_relaxed),
                        static_cast<uint8_t>(tos.load(std::memory_order_relaxed)),
                        bound_if.load(std::memory_order_relaxed), lo_path_ ? conn_ : nullptr);
  if (p) out_.push_back(*p);
}

tcp::TcpConfig TcpCb::config_locked(uint32_t mss) {
  tcp::TcpConfig c = opts_;
  c.sndbuf = static_cast<uint32_t>(so.sndbuf_);
  c.rcvbuf = static_cast<uint32_t>(so.rcvbuf_);
  c.rcvbuf_max = (so.options_ & kSoRcvBufLock) ? 0 : kRcvBufAutoMax;
  if (user_mss_ && static_cast<uint32_t>(user_mss_) < mss) mss = static_cast<uint32_t>(user_mss_);
  c.mss = static_cast<uint16_t>(mss);
  c.keepalive = so.options_ & kSoKeepAlive;
  c.linger = so.linger_.l_onoff != 0;
  c.linger_s = so.linger_.l_linger;
  c.invalid_ratelimit_ns = int64_t{st->tcp_invalid_ratelimit.load(std::memory_order_relaxed)} * 1000000;
  return c;
}

void TcpCb::sync_opts_locked() {
  if (!conn_) return;
  bool ka = so.options_ & kSoKeepAlive;
  if (ka != conn_->config().keepalive) conn_->set_keepalive(ka);
  // SO_SNDBUF and SO_RCVBUF set on a running connection resize its
  // buffers, unless someone is copying in or out of them right now (the
  // next call does it then).
  auto snd = static_cast<uint32_t>(so.sndbuf_), rcv = static_cast<uint32_t>(so.rcvbuf_);
  if (snd != conn_->config().sndbuf && !snd_busy_) (void)conn_->set_sndbuf(snd);
  if (rcv != conn_->config().rcvbuf && !so.rcv_busy_) (void)conn_->set_rcvbuf(rcv);
}

void TcpCb::sync_locked() {
  if (conn_) {
    TcpState s = conn_->state();
    if (int e = conn_->take_error()) so.error_ = e;
    if (synchronizing(s)) {
      so.state_ |= kSsConnecting;
    } else if (s == TcpState::kClosed) {
      so.state_ &= ~(kSsConnecting | kSsConnected);
    } else {
      so.state_ = (so.state_ & ~kSsConnecting) | kSsConnected;
    }
    so.rcv_cc_ = conn_->readable();
    so.snd_cc_ = conn_->send_queued();
  }
  so.wake_locked();
}

void TcpCb::rearm_locked() {
  int64_t d = INT64_MAX;
  if (conn_) d = conn_->next_deadline();
  for (TcpConnection& c : children_) {
    int64_t cd = c.next_deadline();
    if (cd < d) d = cd;
  }
  // Nothing to time: an armed callout is left to fire, finding nothing
  // due. Stopping it would make the next arm a new earliest deadline,
  // which wakes the callout thread: on every burst of a transfer whose
  // data is all acknowledged in between.
  if (d == INT64_MAX) return;
  // A later deadline leaves the callout where it is: it fires early, runs
  // nothing and re-arms. The retransmit timer moves later at every ACK,
  // and moving the callout each time would wake the callout thread.
  if (timer_at_ != 0 && d >= timer_at_) return;
  timer_at_ = d;
  timer_.schedule(d - mono_now_ns());
}

void TcpCb::after_locked(TcpPending& p) {
  if (listener_) {
    hand_over_locked();
    // Children that died on the queues (reset, handshake timed out).
    for (auto it = children_.begin(); it != children_.end();) {
      TcpConnection& c = *it;
      if (c.state() == TcpState::kClosed && c.detached()) {
        it = children_.erase(it);
        delete &c;
      } else {
        ++it;
      }
    }
  }
  sync_locked();
  // An orphan in TIME_WAIT leaves a compact record in the table instead
  // (not while the stack stops: orphans are reset then).
  if (orphan_ && conn_ && conn_->state() == TcpState::kTimeWait && inet_state_or_null(so.kernel()) &&
      tcp_time_wait_enter(*st, pcb, *conn_, ttl.load(std::memory_order_relaxed),
                          tos.load(std::memory_order_relaxed))) {
    delete conn_;
    conn_ = nullptr;
    time_wait_moved_ = true;
  }
  if (orphan_ && conn_) conn_->release_buffers();
  if (orphan_ && (!conn_ || conn_->state() == TcpState::kClosed)) {
    // The orphan ended: out of the table before its reference goes.
    table->remove(pcb);
    {
      MutexLocker g(st->tcp_orphans_lock_);
      if (orphan_link_.hook.is_linked()) st->tcp_orphans_.erase(st->tcp_orphans_.iterator_to(orphan_link_));
    }
    orphan_ = false;
    p.unref = &so;
  }
  rearm_locked();
  p.out.splice(p.out.end(), out_);
}

// --- listen, accept

Result<void> TcpCb::listen(Lwp& l, int backlog) {
  TcpPending pend;
  {
    MutexLocker g(so.lock_);
    if (conn_) return err(EINVAL);
    if (listener_) {
      so.backlog_ = backlog;
      return {};
    }
  }
  TRY(inet_sock_autobind(so));
  TRY(table->set_listening(pcb, true));
  InPcbEnds e = table->ends(pcb);
  TcpEndpoints local;
  local.family = static_cast<uint8_t>(e.laddr.family ? e.laddr.family : pcb.family);
  if (e.laddr.family) put_ip(e.laddr, local.laddr);
  local.lport = e.lport;
  so.lock_.lock();
  if (conn_ || listener_) {
    so.lock_.unlock();
    return err(EINVAL);
  }
  Result<TcpListener*> tl = TcpListener::create(so.kernel().kmem(), *this, local, backlog + 1, config_locked(65495));
  if (!tl.ok()) {
    so.lock_.unlock();
    (void)table->set_listening(pcb, false);
    return err(tl.error());
  }
  listener_ = tl.value();
  so.backlog_ = backlog;
  so.state_ |= kSsListening;
  after_locked(pend);
  so.lock_.unlock();
  tcp_finish(so.kernel(), pend);
  return {};
}

TcpConnection* TcpCb::find_child_locked(const TcpEndpoints& ep) {
  for (TcpConnection& c : children_) {
    const TcpEndpoints& e = c.endpoints();
    if (e.fport == ep.fport && e.lport == ep.lport && e.family == ep.family &&
        std::memcmp(e.faddr, ep.faddr, 16) == 0 && std::memcmp(e.laddr, ep.laddr, 16) == 0)
      return &c;
  }
  return nullptr;
}

void TcpCb::hand_over_locked() {
  while (TcpConnection* c = listener_->accept()) {
    children_.erase(children_.iterator_to(*c));
    if (!make_child_locked(c)) {
      c->abort();
      delete c;
    }
  }
}

// Makes the socket of an established child and queues it for accept().
// The child is complete before it enters the PCB table (the last step):
// until then no other thread can reach it, so its fields are written
// without its lock, and the listener's lock is the only one held.
bool TcpCb::make_child_locked(TcpConnection* c) {
  Kernel& k = so.kernel();
  // Both allocations first: a socket given up here would take its own
  // lock in its destructor, under the listener's of the same rank.
  void* cb_mem = k.kmem().alloc(sizeof(TcpCb));
  if (!cb_mem) return false;
  auto* cs = new (k.kmem()) Socket(k, so.domain(), so.proto());
  if (!cs) {
    Kmem::free(cb_mem);
    return false;
  }
  Ref<Socket> ref = adopt_ref(cs);
  cs->protocol_ = so.protocol_;
  cs->creator_ = so.creator_;
  auto* ccb = ::new (cb_mem) TcpCb(*cs, pcb.family, *st);
  st->ref();
  cs->pcb_ = static_cast<InetCb*>(ccb);
  ccb->ttl.store(ttl.load());
  ccb->tos.store(tos.load());
  const TcpEndpoints& e = c->endpoints();
  // A link-local peer ties the child to its interface (Linux's
  // tcp_v6_init_req: the SYN's, which holds the address it was sent to).
  int bif = bound_if.load(std::memory_order_relaxed);
  if (!bif && e.family == AF_INET6 && ip_of(e.family, e.faddr).v6.needs_scope())
    bif = inet_addr_owner(*st, ip_of(e.family, e.laddr));
  ccb->bound_if.store(bif, std::memory_order_relaxed);
  ccb->adopt_child(*this, c);
  // Ports and sharing as the listener's.
  table->set_sharing(ccb->pcb, pcb.reuseaddr, pcb.reuseport, pcb.uid);
  (void)table->set_v6only(ccb->pcb, table->ends(pcb).v6only);
  table->attach_accepted(ccb->pcb, ip_of(e.family, e.laddr), e.lport, ip_of(e.family, e.faddr), e.fport);
  so.accept_q_.push_back(*cs);
  so.accept_len_++;
  (void)ref.leak();  // the accept queue's reference
  return true;
}

// The unreachable child's side of make_child_locked.
void TcpCb::adopt_child(TcpCb& parent, TcpConnection* c) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  so.options_ = parent.so.options_;
  so.rcvbuf_ = parent.so.rcvbuf_;
  so.sndbuf_ = parent.so.sndbuf_;
  so.linger_ = parent.so.linger_;
  so.state_ = kSsConnected;
  connect_reported_ = true;
  opts_ = parent.opts_;
  user_mss_ = parent.user_mss_;
  lo_path_ = parent.in_lo_;
  conn_ = c;
  c->set_host(*this);
  // What sync_locked sets, without its wake-up: nobody waits here yet.
  so.rcv_cc_ = c->readable();
  so.snd_cc_ = c->send_queued();
  rearm_locked();
}

// --- connect

Result<void> TcpCb::connect(Lwp& l, const SockAddr& a, bool nonblock) {
  IpAddr dst;
  uint16_t port;
  {
    MutexLocker g(so.lock_);
    if (listener_) return err(EISCONN);
    if (conn_) {
      TcpState s = conn_->state();
      // A blocking connect on a connection still being set up (by a
      // non-blocking connect, or by one a signal interrupted, which the
      // system call exit may have restarted) waits for it, as Linux's.
      if (synchronizing(s)) return nonblock ? err(EALREADY) : wait_connected_locked(l);
      if (s != TcpState::kClosed) {
        // The first connect() after a non-blocking one completed reports
        // the success (Linux's SS_CONNECTING to SS_CONNECTED).
        if (!connect_reported_) {
          connect_reported_ = true;
          return {};
        }
        return err(EISCONN);
      }
      if (so.error_) {
        int e = so.error_;
        so.error_ = 0;
        return err(e);
      }
      return err(conn_->established_once() ? EISCONN : ECONNABORTED);
    }
  }
  TRY(inet_sock_dest(so, a, dst, port));
  if (dst.family == AF_INET && dst.v4.any()) dst.v4 = InAddr::host(0x7f000001);
  if (dst.family == AF_INET6 && dst.v6.any()) dst.v6.b[15] = 1;
  if (dst.multicast() || ip_is_broadcast(so.kernel(), dst)) return err(ENETUNREACH);
  // A link-local peer needs an interface (Linux's tcp_v6_connect), which
  // the socket is then tied to.
  int oif = TRY(inet_sock_connect_scope(so, a, dst));
  InPcbEnds e0 = table->ends(pcb);
  IpAddr src = e0.laddr;
  if (src.family == 0) src = TRY(ip_select_source(so.kernel(), dst, oif));
  if (oif) bound_if.store(oif, std::memory_order_relaxed);
  inet_sock_sync_opts(so);
  TcpTimeWaitTakeover tk;
  tk.reuse = st->tcp_tw_reuse.load(std::memory_order_relaxed);
  TRY(table->connect(pcb, src, dst, port, true, tcp_time_wait_takeover, &tk));
  InPcbEnds e = table->ends(pcb);
  TcpEndpoints ep;
  ep.family = dst.family;
  put_ip(e.laddr.family ? e.laddr : src, ep.laddr);
  put_ip(dst, ep.faddr);
  ep.lport = e.lport;
  ep.fport = port;
  PathSizes ps = path_sizes(so.kernel(), dst);
  Result<RouteResult> rt = route_lookup(*st, dst);
  bool lo = rt.ok() && rt->local;
  TcpPending pend;
  so.lock_.lock();
  if (conn_ || listener_) {
    so.lock_.unlock();
    return err(EALREADY);
  }
  lo_path_ = lo;
  tcp::TcpConfig cfg = config_locked(ps.mss);
  cfg.gso_max = ps.gso_max;
  Result<TcpConnection*> c = TcpConnection::create(so.kernel().kmem(), *this, ep, cfg);
  if (!c.ok()) {
    so.lock_.unlock();
    table->disconnect(pcb);
    return err(c.error());
  }
  conn_ = c.value();
  if (cork_) conn_->set_cork(true);
  Result<void> r = conn_->connect(tk.taken ? std::optional<tcp::Seq>(tk.iss) : std::nullopt);
  so.error_ = 0;
  after_locked(pend);
  so.lock_.unlock();
  tcp_finish(so.kernel(), pend);
  TRY(r);
  if (nonblock) return err(EINPROGRESS);
  MutexLocker g(so.lock_);
  return wait_connected_locked(l);
}

// Until the handshake ends. Interrupted without SO_SNDTIMEO: restarted
// (Linux's sock_intr_errno), and the restarted call waits here again.
Result<void> TcpCb::wait_connected_locked(Lwp& l) {
  int64_t deadline = so_deadline(so.sndtimeo_ns_);
  while (conn_ && synchronizing(conn_->state())) {
    if (int e = so_sleep(l, so, so.conn_cv_, so.conn_waiters_, deadline)) return err(e == EAGAIN ? EINPROGRESS : e);
  }
  if (so.error_) {
    int e = so.error_;
    so.error_ = 0;
    return err(e);
  }
  if (!conn_ || conn_->state() == TcpState::kClosed) return err(ECONNABORTED);
  connect_reported_ = true;
  return {};
}

// --- data

Result<size_t> TcpCb::send(Lwp& l, SockMsg& m, int flags, bool nonblock) {
  Uio& uio = *m.uio;
  size_t want = uio.resid;
  size_t sent = 0;
  int error = 0;
  TcpPending pend;
  so.lock_.lock();
  int64_t deadline = so_deadline(so.sndtimeo_ns_);
  sync_opts_locked();
  for (;;) {
    if (so.error_) {
      error = so.error_;
      so.error_ = 0;
      break;
    }
    if (so.state_ & kSsCantSendMore) {
      error = EPIPE;
      break;
    }
    // Linux: EPIPE on a socket that is not (or no longer) connected.
    if (!conn_ || conn_->state() == TcpState::kClosed) {
      error = EPIPE;
      break;
    }
    if (synchronizing(conn_->state()) || snd_busy_) {
      if (nonblock) {
        error = EAGAIN;
        break;
      }
      if (int e = so_sleep(l, so, so.snd_cv_, so.snd_waiters_, deadline)) {
        error = e;
        break;
      }
      continue;
    }
    uint8_t *p1, *p2;
    size_t l1, l2;
    Result<size_t> room = conn_->send_room(&p1, &l1, &p2, &l2);
    if (!room.ok()) {
      error = room.error();
      break;
    }
    if (want == 0) break;
    if (room.value() == 0 && !(so.options_ & kSoSndBufLock) && conn_->expand_sndbuf(kSndBufAutoMax)) {
      // SO_SNDBUF shows the size autotuning gave, as on Linux.
      so.sndbuf_ = static_cast<int>(conn_->config().sndbuf);
      continue;
    }
    if (room.value() == 0) {
      if (nonblock) {
        error = EAGAIN;
        break;
      }
      if (int e = so_sleep(l, so, so.snd_cv_, so.snd_waiters_, deadline)) {
        error = e;
        break;
      }
      continue;
    }
    snd_busy_ = true;
    so.lock_.unlock();
    size_t n1 = l1 < uio.resid ? l1 : uio.resid;
    size_t before = uio.resid;
    Result<void> c = uio.copyin(p1, n1);
    if (c.ok() && uio.resid && l2) {
      size_t n2 = l2 < uio.resid ? l2 : uio.resid;
      c = uio.copyin(p2, n2);
    }
    size_t moved = before - uio.resid;
    so.lock_.lock();
    snd_busy_ = false;
    if (conn_) conn_->send_commit(moved, uio.resid > 0 || (flags & MSG_MORE));
    sent += moved;
    if (!c.ok()) {
      error = c.error();
      break;
    }
    if (uio.resid == 0) break;
    // Send what was queued before copying more (the peer's ACKs come
    // back meanwhile on lo).
    after_locked(pend);
    so.lock_.unlock();
    tcp_finish(so.kernel(), pend);
    so.lock_.lock();
  }
  after_locked(pend);
  so.lock_.unlock();
  tcp_finish(so.kernel(), pend);
  if (error && sent == 0) return err(error);
  return sent;
}

Result<size_t> TcpCb::recv(Lwp& l, SockMsg& m, int flags, bool nonblock) {
  Uio& uio = *m.uio;
  bool peek = flags & MSG_PEEK;
  size_t copied = 0;
  int error = 0;
  TcpPending pend;
  so.lock_.lock();
  if (listener_ || !conn_) {
    so.lock_.unlock();
    return err(ENOTCONN);
  }
  int64_t deadline = so_deadline(so.rcvtimeo_ns_);
  while (so.rcv_busy_) {
    if (int e = so_sleep(l, so, so.rcv_cv_, so.rcv_waiters_, deadline)) {
      so.lock_.unlock();
      return err(e);
    }
  }
  sync_opts_locked();
  so.rcv_busy_ = true;
  size_t lowat = static_cast<size_t>(so.rcvlowat_);
  size_t target = (flags & MSG_WAITALL) && !peek ? uio.resid : (lowat < uio.resid ? lowat : uio.resid);
  if (target == 0) target = 1;
  bool peek_more = false;  // a peek that has more bytes to show
  while (uio.resid > 0) {
    const uint8_t *p1, *p2;
    size_t l1, l2;
    void* pins[2];
    size_t have = conn_ ? conn_->recv_pieces(peek ? copied : 0, &p1, &l1, &p2, &l2, pins) : 0;
    if (have > 0 && (!peek || copied == 0 || peek_more)) {
      so.lock_.unlock();
      size_t before = uio.resid;
      size_t n1 = l1 < uio.resid ? l1 : uio.resid;
      Result<void> c = uio.copyout(p1, n1);
      if (c.ok() && uio.resid && l2) {
        size_t n2 = l2 < uio.resid ? l2 : uio.resid;
        c = uio.copyout(p2, n2);
      }
      size_t moved = before - uio.resid;
      tcp::ByteRing::unshare(pins[0]);
      tcp::ByteRing::unshare(pins[1]);
      so.lock_.lock();
      if (!peek && conn_) {
        conn_->recv_consume(moved);
        // SO_RCVBUF shows the size autotuning gave, as on Linux.
        if (conn_->rcv_space_adjust()) so.rcvbuf_ = static_cast<int>(conn_->config().rcvbuf);
      }
      copied += moved;
      if (!c.ok()) {
        if (copied == 0) error = c.error();
        break;
      }
      // Pieces short of what is readable (lent spans): go on for the rest,
      // so a read takes all there is, as a peek does.
      bool more = moved < have;
      if (peek) {
        peek_more = more;
        if (!peek_more) break;
        continue;
      }
      if (copied >= target && !more) break;
      continue;
    }
    if (peek && copied > 0) break;
    if (conn_ && conn_->readable() > 0 && !(peek && copied > 0)) {
      // Urgent data ahead: the engine's own copy skips the urgent byte.
      uint8_t buf[512];
      size_t want = uio.resid < sizeof buf ? uio.resid : sizeof buf;
      Result<size_t> r = conn_->recv(buf, want, peek);
      if (!r.ok() || r.value() == 0) break;
      so.lock_.unlock();
      Result<void> c = uio.copyout(buf, r.value());
      so.lock_.lock();
      if (!c.ok()) {
        if (copied == 0) error = c.error();
        break;
      }
      copied += r.value();
      if (peek || copied >= target) break;
      continue;
    }
    if (copied >= target || (peek && copied > 0)) break;
    sync_locked();
    if (so.error_) {
      if (copied == 0) {
        error = so.error_;
        so.error_ = 0;
      }
      break;
    }
    if (!conn_ || conn_->read_eof() || (so.state_ & kSsCantRcvMore)) break;
    if (nonblock) {
      if (copied == 0) error = EAGAIN;
      break;
    }
    // Send the window update before sleeping.
    after_locked(pend);
    if (!pend.out.empty()) {
      so.lock_.unlock();
      tcp_finish(so.kernel(), pend);
      so.lock_.lock();
      continue;
    }
    if (int e = so_sleep(l, so, so.rcv_cv_, so.rcv_waiters_, deadline)) {
      if (copied == 0) error = e;
      break;
    }
  }
  so.rcv_busy_ = false;
  after_locked(pend);
  so.lock_.unlock();
  tcp_finish(so.kernel(), pend);
  if (error) return err(error);
  return copied;
}

Result<void> TcpCb::shutdown(int how) {
  TcpPending pend;
  so.lock_.lock();
  if (listener_) {
    // Linux: SHUT_RD on a listener stops it; otherwise nothing happens.
    so.lock_.unlock();
    return {};
  }
  if (!conn_ || conn_->state() == TcpState::kClosed || synchronizing(conn_->state())) {
    bool ok = conn_ && conn_->state() != TcpState::kClosed;
    so.lock_.unlock();
    if (!ok) return err(ENOTCONN);
    return {};
  }
  if (how == SHUT_RD || how == SHUT_RDWR) {
    conn_->shutdown_read();
    so.state_ |= kSsCantRcvMore;
  }
  if (how == SHUT_WR || how == SHUT_RDWR) {
    (void)conn_->shutdown_write();
    so.state_ |= kSsCantSendMore;
  }
  after_locked(pend);
  so.lock_.unlock();
  tcp_finish(so.kernel(), pend);
  return {};
}

short TcpCb::poll_locked() {
  if (so.state_ & kSsListening) return so.accept_q_.empty() ? 0 : (POLLIN | POLLRDNORM);
  short m = 0;
  TcpState s = conn_ ? conn_->state() : TcpState::kClosed;
  bool rd_shut = (so.state_ & kSsCantRcvMore) || (conn_ && peer_done(s));
  bool wr_shut = (so.state_ & kSsCantSendMore) || (conn_ && s == TcpState::kClosed);
  if ((rd_shut && wr_shut) || s == TcpState::kClosed) m |= POLLHUP;
  if (rd_shut) m |= POLLIN | POLLRDNORM | POLLRDHUP;
  if (!synchronizing(s)) {
    if (conn_ && conn_->readable() > 0) m |= POLLIN | POLLRDNORM;
    if (wr_shut || !conn_ || conn_->send_space() >= conn_->send_queued() / 2 + 1) m |= POLLOUT | POLLWRNORM;
  }
  if (so.error_) m |= POLLERR;
  return m;
}

// --- options

Result<void> TcpCb::ctloutput(Lwp& l, SockOptArg& o) {
  if (o.level != IPPROTO_TCP) return inet_sock_ctloutput(l, so, o);
  auto get_int = [&](int& v) -> Result<void> {
    if (o.len < sizeof(int)) return err(EINVAL);
    std::memcpy(&v, o.val, sizeof v);
    return {};
  };
  auto put_int = [&](int v) {
    socklen_t n = o.len < sizeof(int) ? o.len : sizeof(int);
    std::memcpy(o.val, &v, n);
    o.len = n;
  };
  TcpPending pend;
  MutexLocker g(so.lock_);
  tcp::TcpConfig* lcfg = listener_ ? &listener_->config() : nullptr;
  int v = 0;
  switch (o.name) {
    case TCP_NODELAY:
      if (!o.set) {
        put_int(opts_.nodelay ? 1 : 0);
        return {};
      }
      TRY(get_int(v));
      opts_.nodelay = v != 0;
      if (lcfg) lcfg->nodelay = v != 0;
      if (conn_) conn_->set_nodelay(v != 0);
      break;
    case TCP_CORK:
      if (!o.set) {
        put_int(cork_ ? 1 : 0);
        return {};
      }
      TRY(get_int(v));
      cork_ = v != 0;
      if (conn_) conn_->set_cork(v != 0);
      break;
    case TCP_MAXSEG:
      if (!o.set) {
        put_int(conn_ && !synchronizing(conn_->state()) && conn_->state() != TcpState::kClosed
                    ? static_cast<int>(conn_->smss())
                    : (user_mss_ ? user_mss_ : 536));
        return {};
      }
      TRY(get_int(v));
      if (v < 88 || v > 65535) return err(EINVAL);
      user_mss_ = v;
      if (lcfg && static_cast<uint32_t>(v) < lcfg->mss) lcfg->mss = static_cast<uint16_t>(v);
      break;
    case TCP_KEEPIDLE:
    case TCP_KEEPINTVL:
    case TCP_KEEPCNT: {
      if (!o.set) {
        if (o.name == TCP_KEEPIDLE) put_int(static_cast<int>(opts_.keepidle_ns / 1000000000));
        else if (o.name == TCP_KEEPINTVL) put_int(static_cast<int>(opts_.keepintvl_ns / 1000000000));
        else put_int(opts_.keepcnt);
        return {};
      }
      TRY(get_int(v));
      int limit = o.name == TCP_KEEPCNT ? 127 : 32767;
      if (v < 1 || v > limit) return err(EINVAL);
      if (o.name == TCP_KEEPIDLE) opts_.keepidle_ns = v * 1000000000LL;
      else if (o.name == TCP_KEEPINTVL) opts_.keepintvl_ns = v * 1000000000LL;
      else opts_.keepcnt = v;
      if (lcfg) {
        lcfg->keepidle_ns = opts_.keepidle_ns;
        lcfg->keepintvl_ns = opts_.keepintvl_ns;
        lcfg->keepcnt = opts_.keepcnt;
      }
      if (conn_) {
        if (o.name == TCP_KEEPIDLE) (void)conn_->set_keepidle(v);
        else if (o.name == TCP_KEEPINTVL) (void)conn_->set_keepintvl(v);
        else (void)conn_->set_keepcnt(v);
      }
      break;
    }
    case TCP_CONGESTION: {
      if (!o.set) {
        const char* name = conn_ ? conn_->congestion() : tcp::cc_name(opts_.cc);
        char buf[kCaNameMax] = {};
        std::strncpy(buf, name, sizeof buf - 1);
        socklen_t n = o.len < sizeof buf ? o.len : sizeof buf;
        std::memcpy(o.val, buf, n);
        o.len = n;
        return {};
      }
      size_t n = strnlen(o.val, o.len < kCaNameMax ? o.len : kCaNameMax);
      tcp::CcAlgo a;
      if (!tcp::cc_from_name(std::string_view(o.val, n), &a)) return err(ENOENT);
      opts_.cc = a;
      if (lcfg) lcfg->cc = a;
      if (conn_) TRY(conn_->set_congestion(std::string_view(o.val, n)));
      break;
    }
    case TCP_INFO: {
      if (o.set) return err(ENOPROTOOPT);
      tcp_info info{};
      if (conn_) conn_->fill_info(info);
      else info.tcpi_state = listener_ ? static_cast<uint8_t>(TcpState::kListen) : static_cast<uint8_t>(TcpState::kClosed);
      socklen_t n = o.len < sizeof info ? o.len : sizeof info;
      std::memcpy(o.val, &info, n);
      o.len = n;
      return {};
    }
    default: return err(ENOPROTOOPT);
  }
  // A change (Nagle off, cork released) may let queued data go now.
  after_locked(pend);
  if (!pend.out.empty()) {
    so.lock_.unlock();
    tcp_finish(so.kernel(), pend);
    so.lock_.lock();
  }
  return {};
}

// --- teardown

void TcpCb::detach() {
  TcpPending pend;
  Socket::AcceptList unaccepted;
  so.lock_.lock();
  // At halt the stack stops before the last files close: nothing may
  // outlive this close.
  bool halting = inet_state_or_null(so.kernel()) == nullptr;
  if (listener_) {
    so.state_ &= ~kSsListening;
    unaccepted.splice(unaccepted.end(), so.accept_q_);
    so.accept_len_ = 0;
    // Resets the children still on its queues (their segments go out
    // through this control block).
    delete listener_;
    listener_ = nullptr;
    children_.clear_and_dispose([](TcpConnection* c) { delete c; });
    table->remove(pcb);
  } else if (conn_) {
    conn_->set_linger(so.linger_.l_onoff != 0, so.linger_.l_linger);
    if (halting) conn_->abort();
    else conn_->close();
    // SO_LINGER with a timeout: close() waits until the peer acknowledged
    // everything and the FIN, or the time is up (then the connection goes
    // on as after any close).
    Lwp* l = reinterpret_cast<Lwp*>(rumpuser_curlwp());
    if (!halting && l && so.linger_.l_onoff && so.linger_.l_linger > 0) {
      int64_t deadline = so_deadline(so.linger_.l_linger * kNsPerSec);
      auto acked = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_) {
        TcpState s = conn_->state();
        return s == TcpState::kFinWait2 || s == TcpState::kTimeWait || s == TcpState::kClosed;
      };
      while (!acked()) {
        after_locked(pend);
        so.lock_.unlock();
        tcp_finish(so.kernel(), pend);
        so.lock_.lock();
        if (acked() || so_sleep(*l, so, so.snd_cv_, so.snd_waiters_, deadline)) break;
      }
    }
    if (conn_->state() != TcpState::kClosed) {
      so.ref();
      orphan_ = true;
      MutexLocker g(st->tcp_orphans_lock_);
      st->tcp_orphans_.push_back(orphan_link_);
    } else {
      table->remove(pcb);
    }
  } else {
    table->remove(pcb);
  }
  so.state_ |= kSsCantRcvMore | kSsCantSendMore;
  after_locked(pend);
  so.lock_.unlock();
  tcp_finish(so.kernel(), pend);
  while (!unaccepted.empty()) {
    Socket& c = unaccepted.front();
    unaccepted.pop_front();
    tcp_cb(c).abort_unaccepted();
    c.unref();
  }
}

void TcpCb::abort_unaccepted() {
  TcpPending pend;
  so.lock_.lock();
  if (conn_) conn_->abort();
  table->remove(pcb);
  after_locked(pend);
  so.lock_.unlock();
  tcp_finish(so.kernel(), pend);
}

void TcpCb::abort_orphan() {
  TcpPending pend;
  so.lock_.lock();
  if (conn_ && conn_->state() != TcpState::kClosed) conn_->abort();
  after_locked(pend);
  so.lock_.unlock();
  tcp_finish(so.kernel(), pend);
}

void TcpCb::free_pcb() {
  timer_.halt();
  {
    MutexLocker g(so.lock_);
    delete listener_;
    listener_ = nullptr;
    children_.clear_and_dispose([](TcpConnection* c) { delete c; });
    delete conn_;
    conn_ = nullptr;
    pkt_list_free(out_);
  }
  table->remove(pcb);
}

void tcp_abort_orphans(InetState& st) {
  for (;;) {
    Socket* s = nullptr;
    {
      MutexLocker g(st.tcp_orphans_lock_);
      if (st.tcp_orphans_.empty()) break;
      TcpOrphanLink& link = st.tcp_orphans_.front();
      st.tcp_orphans_.pop_front();
      if (link.so->try_ref()) s = link.so;
    }
    if (!s) continue;
    tcp_cb(*s).abort_orphan();
    s->unref();
  }
}

void TcpCb::ctl_error(int error) {
  TcpPending pend;
  so.lock_.lock();
  if (conn_ && conn_->state() == TcpState::kSynSent) {
    conn_->abort();
    after_locked(pend);
    so.error_ = error;
    so.wake_locked();
  }
  so.lock_.unlock();
  tcp_finish(so.kernel(), pend);
}

// --- timers

void TcpCb::timer_fn(void* arg) {
  auto* cb = static_cast<TcpCb*>(arg);
  // A socket on its way out halts this callout in free_pcb.
  if (!cb->so.try_ref()) return;
  Socket* s = &cb->so;
  cb->on_timer();
  s->unref();
}

void TcpCb::kick_timer() {
  timer_.schedule(3600 * kNsPerSec);
  timer_.stop();
}

void TcpCb::on_timer() {
  TcpPending pend;
  so.lock_.lock();
  timer_at_ = 0;
  int64_t now = mono_now_ns();
  if (conn_ && conn_->next_deadline() <= now) conn_->on_timer();
  for (TcpConnection& c : children_)
    if (c.next_deadline() <= now) c.on_timer();
  after_locked(pend);
  so.lock_.unlock();
  tcp_finish(so.kernel(), pend);
}

// --- input

bool TcpCb::input(const TcpEndpoints& ep, const TcpSegment& seg, bool first_pass, Kernel& k, const IpAddr& peer,
                  bool lo, tcp::Seq* iss, bool* has_iss) {
  TcpPending pend;
  bool again = false;
  // A SYN may make a child of a listener: the path it would use, looked
  // up before the socket's lock (a cookie's ACK takes the sizes the last
  // SYN left).
  PathSizes ps{0, 0};
  if (seg.has(tcp::kSyn) && !seg.has(tcp::kAck)) ps = path_sizes(k, peer);
  so.lock_.lock();
  in_lo_ = lo;
  sync_opts_locked();
  if (conn_) {
    TcpState s = conn_->state();
    if (s == TcpState::kClosed) {
      tcp::tcp_respond_closed(*this, ep, seg);
    } else if (s == TcpState::kTimeWait && seg.has(tcp::kSyn) && !seg.has(tcp::kAck) &&
               conn_->time_wait_accepts_syn(seg)) {
      // A new incarnation: this one ends and the SYN goes to a listener.
      tcp::TcpTimeWaitState tw;
      if (conn_->time_wait_state(tw)) {
        *iss = tcp::tcp_time_wait_reopen_iss(tw);
        *has_iss = true;
      }
      conn_->abort_time_wait();
      table->remove(pcb);
      again = true;
    } else {
      conn_->input(seg);
    }
  } else if (listener_) {
    if (TcpConnection* c = find_child_locked(ep)) {
      c->input(seg);
    } else if (!seg.has(tcp::kSyn) && first_pass) {
      // The child may have just been handed over (it is in the table now).
      again = true;
    } else {
      if (uint32_t mss = ps.mss) {
        listener_->config().mss =
            static_cast<uint16_t>(user_mss_ && static_cast<uint32_t>(user_mss_) < mss ? user_mss_ : mss);
        listener_->config().gso_max = ps.gso_max;
      }
      listener_->config().rcvbuf = static_cast<uint32_t>(so.rcvbuf_);
      listener_->config().rcvbuf_max = (so.options_ & kSoRcvBufLock) ? 0 : kRcvBufAutoMax;
      listener_->set_backlog(so.backlog_ + 1 - so.accept_len_);
      if (TcpConnection* c = listener_->input(ep, seg, *has_iss ? iss : nullptr)) children_.push_back(*c);
    }
  } else if (time_wait_moved_) {
    // Found before the connection became a record: the record answers.
    again = true;
  } else {
    tcp::tcp_respond_closed(*this, ep, seg);
  }
  after_locked(pend);
  so.lock_.unlock();
  tcp_finish(so.kernel(), pend);
  return again;
}

namespace {

void bump(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

// The send-ring store a packet's bytes from off on were lent from, when
// all of them are lent bytes of one store (lend_piece); else null.
void* payload_lender(const Pkt& p, size_t off) {
  void* store = nullptr;
  for (const PktSeg* s = p.first(); s; s = s->next) {
    if (off >= s->len) {
      off -= s->len;
      continue;
    }
    off = 0;
    if (s->release != &tcp::ByteRing::unshare || (store && s->arg != store)) return nullptr;
    store = s->arg;
  }
  return store;
}

// Parses the TCP segment p holds. The header is made contiguous; the
// payload stays where it is when it is in at most two pieces (a packet
// that borrowed a sender's ring), else it is gathered. False if malformed
// or out of buffers.
bool parse_segment(Pkt& p, TcpSegment& seg) {
  size_t len = p.len();
  Result<char*> h = p.pullup(tcp::kTcpHeaderLen);
  if (!h.ok()) return false;
  size_t hl = (static_cast<uint8_t>(h.value()[12]) >> 4) * 4u;
  if (hl < tcp::kTcpHeaderLen || hl > len) return false;
  h = p.pullup(hl);
  if (!h.ok() || !tcp::tcp_parse(reinterpret_cast<const uint8_t*>(h.value()), hl, seg).ok()) return false;
  const char* ptr[2];
  size_t n[2];
  int k = p.pieces(hl, ptr, n, 2);
  if (k < 0) {
    Result<char*> all = p.pullup(len);
    if (!all.ok()) return false;
    ptr[0] = all.value() + hl;
    n[0] = len - hl;
    k = 1;
  }
  if (k > 0) {
    seg.data = reinterpret_cast<const uint8_t*>(ptr[0]);
    seg.len = n[0];
  }
  if (k > 1) {
    seg.data2 = reinterpret_cast<const uint8_t*>(ptr[1]);
    seg.len2 = n[1];
  }
  if (k > 0) seg.lender = payload_lender(p, hl);
  return true;
}

void tcp_input(Kernel& k, Pkt* p, const IpHdrInfo& ip) {
  InetState* st = inet_state_or_null(k);
  if (!st) {
    Pkt::free(p);
    return;
  }
  TcpStats& s = st->tcp_stats;
  bump(s.InSegs);
  size_t len = p->len();
  if (len < tcp::kTcpHeaderLen || (ip.flags & (kPktBroadcast | kPktMulticast)) || ip.dst.multicast()) {
    bump(s.InErrs);
    Pkt::free(p);
    return;
  }
  if (p->meta.csum != kCsumVerified) {
    uint32_t ps = ip.src.family == AF_INET ? in_pseudo4(ip.src.v4.s, ip.dst.v4.s, IPPROTO_TCP, len)
                                           : in_pseudo6(ip.src.v6.b, ip.dst.v6.b, IPPROTO_TCP, len);
    if (in_cksum_fold(pkt_cksum_add(*p, 0, len, ps)) != 0) {
      bump(s.InCsumErrors);
      bump(s.InErrs);
      Pkt::free(p);
      return;
    }
  }
  TcpSegment seg;
  if (!parse_segment(*p, seg)) {
    bump(s.InErrs);
    Pkt::free(p);
    return;
  }
  TcpEndpoints ep;
  ep.family = ip.dst.family;
  put_ip(ip.dst, ep.laddr);
  put_ip(ip.src, ep.faddr);
  ep.lport = seg.dport;
  ep.fport = seg.sport;
  bool first = true;
  tcp::Seq iss = 0;
  bool has_iss = false;
  for (int pass = 0; pass < 3; pass++) {
    TcpTimeWaitVisit tw;
    tw.seg = &seg;
    bool visited = false;
    RefPtr<Socket> so =
        st->tcp.lookup(ip.src, seg.sport, ip.dst, seg.dport, true, &tcp_time_wait_visit, &tw, &visited);
    if (visited && tw.has_reply) {
      // No bound interface: a link-scope reply leaves by the interface
      // holding its source address, as a stateless reply does.
      if (Pkt* r = build_packet(*st, ep, tw.reply, tw.ttl, static_cast<uint8_t>(tw.tos), 0)) {
        PktList out;
        out.push_back(*r);
        send_list(k, out);
      }
    }
    if (visited) break;
    if (tw.reopen) {
      iss = tw.iss;
      has_iss = true;
    }
    if (!so) {
      bump(s.NoPorts);
      StatelessHost h(*st);
      tcp::tcp_respond_closed(h, ep, seg);
      if (!h.out.empty()) bump(s.OutRsts);
      send_list(k, h.out);
      break;
    }
    if (!tcp_cb(*so).input(ep, seg, first, k, ip.src, (p->meta.flags & kPktLoopback) != 0, &iss, &has_iss)) break;
    first = false;
  }
  Pkt::free(p);
}

// ICMP errors about our segments: hard errors end a connection that is
// still opening (Linux reports them on established ones only as soft
// errors); "fragmentation needed" was learnt by IP already (the MSS of
// later connections follows it).
void tcp_ctlinput(Kernel& k, const IpCtlMsg& m) {
  InetState* st = inet_state_or_null(k);
  if (!st || m.l4len < 4 || m.error == EMSGSIZE) return;
  uint16_t sport = static_cast<uint16_t>(m.l4[0] << 8 | m.l4[1]);
  uint16_t dport = static_cast<uint16_t>(m.l4[2] << 8 | m.l4[3]);
  RefPtr<Socket> so = st->tcp.lookup(m.dst, dport, m.src, sport, false);
  if (so) tcp_cb(*so).ctl_error(m.error);
}

const InetProto kTcpProto = {IPPROTO_TCP, &tcp_input, &tcp_ctlinput};
const InetProtoRegistrar g_tcp_registrar(&kTcpProto);

// --- the Protosw

Result<void> tcp_attach(Socket& s) {
  InetState* st = inet_state_or_null(s.kernel());
  if (!st) return err(EAFNOSUPPORT);
  auto* cb = new (s.kernel().kmem()) TcpCb(s, s.domain().family, *st);
  if (!cb) return err(ENOMEM);
  st->ref();
  s.pcb_ = static_cast<InetCb*>(cb);
  // The callout thread starts with the first schedule(), and starting it
  // takes process locks: TCP arms timers under socket locks, so the first
  // TCP socket starts it here, with no lock held.
  if (!st->tcp_callouts_started.exchange(true)) {
    cb->kick_timer();
  }
  return {};
}

void tcp_detach(Socket& s) { tcp_cb(s).detach(); }

void tcp_free_pcb(Socket& s) {
  if (!s.pcb_) return;
  TcpCb* cb = &tcp_cb(s);
  cb->free_pcb();
  InetState* st = cb->st;
  delete cb;
  s.pcb_ = nullptr;
  st->unref();
}

Result<void> tcp_bind(Lwp& l, Socket& s, const SockAddr& a) { return inet_sock_bind(l, s, a); }
Result<void> tcp_listen(Lwp& l, Socket& s, int backlog) { return tcp_cb(s).listen(l, backlog); }
Result<void> tcp_connect(Lwp& l, Socket& s, const SockAddr& a, bool nonblock) {
  return tcp_cb(s).connect(l, a, nonblock);
}
Result<void> tcp_send(Lwp&, Socket&, SockRecord*, const SockAddr*, bool) { return err(EOPNOTSUPP); }
Result<size_t> tcp_send_msg(Lwp& l, Socket& s, SockMsg& m, int flags, bool nonblock) {
  return tcp_cb(s).send(l, m, flags, nonblock);
}
Result<size_t> tcp_recv_msg(Lwp& l, Socket& s, SockMsg& m, int flags, bool nonblock) {
  return tcp_cb(s).recv(l, m, flags, nonblock);
}
Result<void> tcp_shutdown(Socket& s, int how) { return tcp_cb(s).shutdown(how); }
short tcp_poll_locked(Socket& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.lock_) {
  TcpCb& cb = tcp_cb(s);
  cb.so.lock_.assert_held();  // the same lock as s.lock_
  return cb.poll_locked();
}
void tcp_source_name(SockRecord&, SockAddr& a) { a = SockAddr(); }
Result<void> tcp_ctloutput(Lwp& l, Socket& s, SockOptArg& o) { return tcp_cb(s).ctloutput(l, o); }

Protosw make_tcp_protosw() {
  Protosw p{};
  p.type = SOCK_STREAM;
  p.protocol = IPPROTO_TCP;
  p.stream = true;
  p.connection = true;
  p.attach = &tcp_attach;
  p.detach = &tcp_detach;
  p.bind = &tcp_bind;
  p.listen = &tcp_listen;
  p.connect = &tcp_connect;
  p.connect2 = nullptr;
  p.send = &tcp_send;
  p.shutdown = &tcp_shutdown;
  p.sockname = &inet_sock_sockname;
  p.peername = &inet_sock_peername;
  p.poll_locked = &tcp_poll_locked;
  p.wants_creds = nullptr;
  p.source_name = &tcp_source_name;
  p.free_pcb = &tcp_free_pcb;
  p.send_msg = &tcp_send_msg;
  p.ctloutput = &tcp_ctloutput;
  p.recv_msg = &tcp_recv_msg;
  return p;
}
const Protosw kTcpProtosw = make_tcp_protosw();
const InetProtoswRegistrar g_tcp4(AF_INET, kTcpProtosw);
const InetProtoswRegistrar g_tcp6(AF_INET6, kTcpProtosw);

}  // namespace

}  // namespace rump
