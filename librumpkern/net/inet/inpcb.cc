// The inet protocol control block table (see ip.h): Linux's bind
// conflicts, ephemeral ports and the lookup of the socket a packet is for.
//
// Addresses in a pcb are kept in their wire family: a v4-mapped IPv6
// address is stored as the IPv4 address it maps (a dual-stack socket
// bound to ::ffff:127.0.0.1 receives IPv4 packets to 127.0.0.1), and the
// wildcard is family 0. The socket's own family (InPcb::family) says how
// to name them back to the user.
#include <rump/rumpuser.h>

#include <iterator>

#include "net/inet/ip.h"

namespace rump {

namespace {

// What part of the address space a binding covers.
struct Cover {
  bool all4 = false, all6 = false;
  IpAddr one;  // when neither "all"
};

Cover cover_of(uint8_t fam, bool v6only, const IpAddr& laddr) {
  Cover c;
  if (laddr.family == 0) {
    c.all4 = fam == AF_INET || !v6only;
    c.all6 = fam == AF_INET6;
  } else {
    c.one = laddr;
  }
  return c;
}

bool overlaps(const Cover& a, const Cover& b) {
  auto covers = [](const Cover& c, const IpAddr& x) {
    if (x.family == AF_INET) return c.all4 || (c.one.family == AF_INET && c.one == x);
    return c.all6 || (c.one.family == AF_INET6 && c.one == x);
  };
  if (a.one.family && b.one.family) return a.one == b.one;
  if (a.one.family) return covers(b, a.one);
  if (b.one.family) return covers(a, b.one);
  return (a.all4 && b.all4) || (a.all6 && b.all6);
}

uint32_t tuple_hash(const IpAddr& faddr, uint16_t fport) {
  uint32_t h = fport * 0x9e3779b1u;
  if (faddr.family == AF_INET) h ^= faddr.v4.s * 0x85ebca6bu;
  else
    for (int i = 0; i < 16; i += 4) {
      uint32_t w;
      std::memcpy(&w, faddr.v6.b + i, 4);
      h = (h ^ w) * 0xc2b2ae35u;
    }
  // A full finalizer (every input bit reaches the low bits that pick a
  // reuseport member or a bucket).
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  h *= 0x846ca68bu;
  return h ^ (h >> 16);
}

}  // namespace

bool inpcb_laddr_matches(const InPcb& pcb, const IpAddr& a) {
  if (pcb.laddr.family == 0) {
    if (a.family == AF_INET) return pcb.family == AF_INET || !pcb.v6only;
    return pcb.family == AF_INET6;
  }
  return pcb.laddr == a;
}

InPcbTable::~InPcbTable() {
  MutexLocker g(lock_);
  while (!expiring_.empty()) {
    InPcbRecord& r = expiring_.front();
    unlink_record_locked(r);
    delete &r;
  }
  for (List& l : ports_) l.clear();
  for (size_t i = 0; i < nconn_; i++) conns_[i].clear();
  if (conns_ != conns_fixed_) {
    for (size_t i = 0; i < nconn_; i++) conns_[i].~ConnList();
    Kmem::free(conns_);
  }
  if (acc_) {
    for (int i = 0; i < kAccBuckets; i++) {
      acc_[i].clear();
      acc_[i].~AccList();
    }
    Kmem::free(acc_);
  }
}

size_t InPcbTable::conn_bucket(uint16_t lport, const IpAddr& faddr, uint16_t fport) const {
  return (tuple_hash(faddr, fport) ^ (lport * 0x27d4eb2du)) % nconn_;
}

void InPcbTable::unlink_conn_locked(InPcb& pcb) {
  if (!pcb.conn_hook.is_linked()) return;
  conn_list(pcb).erase(ConnList::s_iterator_to(pcb));
  nconnected_--;
}

void InPcbTable::link_conn_locked(InPcb& pcb) {
  unlink_conn_locked(pcb);
  conn_list(pcb).push_back(pcb);
  nconnected_++;
  if (nconnected_ > 2 * nconn_) grow_conns_locked();
}

void InPcbTable::grow_conns_locked() {
  if (!km_) return;
  size_t n = nconn_ * 4;
  void* mem = km_->alloc(n * sizeof(ConnList));
  if (!mem) return;  // the chains stay longer
  auto* fresh = static_cast<ConnList*>(mem);
  for (size_t i = 0; i < n; i++) new (&fresh[i]) ConnList();
  ConnList* old = conns_;
  size_t nold = nconn_;
  conns_ = fresh;
  nconn_ = n;
  for (size_t i = 0; i < nold; i++) {
    while (!old[i].empty()) {
      InPcb& q = old[i].front();
      old[i].pop_front();
      conn_list(q).push_back(q);
    }
  }
  if (old != conns_fixed_) {
    for (size_t i = 0; i < nold; i++) old[i].~ConnList();
    Kmem::free(old);
  }
}

bool InPcbTable::ensure_acc_locked() {
  if (!acc_ && km_) {
    // The lists and the bitmap of ports in them, in one block.
    if (void* mem = km_->alloc(kAccBuckets * sizeof(AccList) + kAccPortWords * sizeof(uint64_t))) {
      acc_ = static_cast<AccList*>(mem);
      for (int i = 0; i < kAccBuckets; i++) new (&acc_[i]) AccList();
      acc_ports_ = reinterpret_cast<uint64_t*>(acc_ + kAccBuckets);
      for (int i = 0; i < kAccPortWords; i++) acc_ports_[i] = 0;
    }
  }
  return acc_ != nullptr;
}

void InPcbTable::link_acc_locked(InPcb& pcb) {
  acc_[pcb.lport % kAccBuckets].push_back(pcb);
  acc_ports_[pcb.lport / 64] |= uint64_t{1} << (pcb.lport % 64);
}

bool InPcbTable::acc_may_hold_locked(uint16_t lport) const {
  return (acc_ports_[lport / 64] >> (lport % 64)) & 1;
}

bool InPcbTable::conflicts_locked(const InPcb& pcb, const IpAddr& laddr, uint16_t lport) const {
  Cover mine = cover_of(pcb.family, pcb.v6only, laddr);
  for (const InPcb& q : ports_[bucket(lport)]) {
    if (&q == &pcb || q.lport != lport) continue;
    if (!overlaps(mine, cover_of(q.family, q.v6only, q.laddr))) continue;
    if (pcb.reuseaddr && q.reuseaddr && !pcb.listening && !q.listening) continue;
    if (pcb.reuseport && q.reuseport && pcb.uid == q.uid) continue;
    return true;
  }
  // Connections share their listener's port, so one list can hold
  // thousands of them (TIME_WAIT): a port none of them has skips it.
  if (!acc_ || !acc_may_hold_locked(lport)) return false;
  bool held = false;
  for (const InPcb& q : acc_[lport % kAccBuckets]) {
    if (q.lport != lport) continue;
    held = true;
    if (!overlaps(mine, cover_of(q.family, q.v6only, q.laddr))) continue;
    // SO_REUSEADDR on both shares a port with a connection (TIME_WAIT
    // included), as Linux's bind conflict check does.
    if (pcb.reuseaddr && q.reuseaddr) continue;
    if (pcb.reuseport && q.reuseport && pcb.uid == q.uid) continue;
    return true;
  }
  // The bit outlived the port's last connection: clear it now.
  if (!held) acc_ports_[lport / 64] &= ~(uint64_t{1} << (lport % 64));
  return false;
}

InPcb* InPcbTable::tuple_holder_locked(const IpAddr& laddr, uint16_t lport, const IpAddr& faddr, uint16_t fport) {
  for (InPcb& q : conns_[conn_bucket(lport, faddr, fport)])
    if (q.lport == lport && q.connected && q.fport == fport && q.faddr == faddr && q.laddr == laddr) return &q;
  return nullptr;
}

bool InPcbTable::shareable_locked(const InPcb& pcb, const IpAddr& laddr, uint16_t lport, const ConnectTo& to) {
  Cover mine = cover_of(pcb.family, pcb.v6only, laddr);
  for (const InPcb& q : ports_[bucket(lport)])
    if (&q != &pcb && q.lport == lport && overlaps(mine, cover_of(q.family, q.v6only, q.laddr))) return false;
  if (!acc_ || !acc_may_hold_locked(lport)) return false;
  bool held = false;
  for (const InPcb& q : acc_[lport % kAccBuckets]) {
    if (q.lport != lport || !overlaps(mine, cover_of(q.family, q.v6only, q.laddr))) continue;
    if (q.so) return false;  // a live connection
    held = true;
  }
  return held && tuple_free_locked(laddr, lport, to);
}

bool InPcbTable::tuple_free_locked(const IpAddr& laddr, uint16_t lport, const ConnectTo& to) {
  InPcb* q = tuple_holder_locked(laddr, lport, *to.faddr, to.fport);
  return !q || (!q->so && to.takeover && to.takeover(to.arg, static_cast<InPcbRecord&>(*q), true));
}

Result<uint16_t> InPcbTable::pick_port_locked(const InPcb& pcb, const IpAddr& laddr, const ConnectTo* to) {
  const uint32_t range = uint32_t{port_hi_} - port_lo_ + 1;
  if (next_port_ == 0) {
    uint32_t r = 0;
    size_t got = 0;
    rumpuser_getrandom(&r, sizeof r, 0, &got);
    next_port_ = r | 0x80000000u;  // the high bit: seeded
  }
  const uint32_t start = (next_port_ & ~0x80000000u) % range;
  // A free port first; a connect then shares one held by records only.
  for (int pass = 0; pass < (to ? 2 : 1); pass++) {
    for (uint32_t i = 0; i < range; i++) {
      uint32_t off = (start + i) % range;
      auto port = static_cast<uint16_t>(port_lo_ + off);
      // (A port SO_REUSEADDR shares must still leave the 4-tuple free.)
      bool ok = pass == 0 ? !conflicts_locked(pcb, laddr, port) && (!to || tuple_free_locked(laddr, port, *to))
                          : shareable_locked(pcb, laddr, port, *to);
      if (ok) {
        next_port_ = ((off + 1) % range) | 0x80000000u;
        return port;
      }
    }
  }
  return err(EAGAIN);
}

void InPcbTable::set_port_range(uint16_t lo, uint16_t hi) {
  MutexLocker g(lock_);
  port_lo_ = lo;
  port_hi_ = hi;
}

void InPcbTable::port_range(uint16_t* lo, uint16_t* hi) const {
  MutexLocker g(lock_);
  *lo = port_lo_;
  *hi = port_hi_;
}

Result<void> InPcbTable::bind(InPcb& pcb, const IpAddr& laddr, uint16_t lport) {
  MutexLocker g(lock_);
  if (pcb.bound) return err(EINVAL);
  IpAddr la = laddr.any() ? IpAddr() : laddr;
  if (lport == 0) {
    lport = TRY(pick_port_locked(pcb, la));
  } else if (conflicts_locked(pcb, la, lport)) {
    return err(EADDRINUSE);
  }
  pcb.laddr = la;
  pcb.lport = lport;
  pcb.bound = true;
  ports_[bucket(lport)].push_back(pcb);
  count_++;
  return {};
}

Result<void> InPcbTable::connect(InPcb& pcb, const IpAddr& laddr, const IpAddr& faddr, uint16_t fport, bool unique,
                                 InPcbTakeover takeover, void* arg) {
  MutexLocker g(lock_);
  IpAddr la = pcb.laddr;
  bool from_connect = false;
  if (la.family == 0 && !laddr.any()) {
    la = laddr;
    from_connect = true;
  }
  bool searched = false;
  if (!pcb.bound) {
    ConnectTo to{&faddr, fport, takeover, arg};
    Result<uint16_t> port = pick_port_locked(pcb, la, unique ? &to : nullptr);
    // No port for a TCP connect: Linux's inet_hash_connect says
    // EADDRNOTAVAIL.
    if (!port.ok()) return err(unique && port.error() == EAGAIN ? EADDRNOTAVAIL : port.error());
    pcb.lport = port.value();
    pcb.bound = true;
    ports_[bucket(pcb.lport)].push_back(pcb);
    count_++;
    searched = true;
  }
  if (unique) {
    if (InPcb* q = tuple_holder_locked(la, pcb.lport, faddr, fport)) {
      if (q->so || !takeover || !takeover(arg, static_cast<InPcbRecord&>(*q), searched)) return err(EADDRNOTAVAIL);
      auto* rec = static_cast<InPcbRecord*>(q);
      unlink_record_locked(*rec);
      delete rec;
    }
  }
  if (from_connect) pcb.laddr_from_connect = true;
  unlink_conn_locked(pcb);
  pcb.laddr = la;
  pcb.faddr = faddr;
  pcb.fport = fport;
  pcb.connected = true;
  link_conn_locked(pcb);
  return {};
}

void InPcbTable::attach_accepted(InPcb& pcb, const IpAddr& laddr, uint16_t lport, const IpAddr& faddr,
                                 uint16_t fport) {
  MutexLocker g(lock_);
  pcb.laddr = laddr;
  pcb.lport = lport;
  pcb.faddr = faddr;
  pcb.fport = fport;
  pcb.bound = true;
  pcb.connected = true;
  // Held by port too, as in Linux's bind bucket: a later bind of the port
  // conflicts with it.
  if (ensure_acc_locked()) link_acc_locked(pcb);
  link_conn_locked(pcb);
  count_++;
}

void InPcbTable::disconnect(InPcb& pcb) {
  MutexLocker g(lock_);
  unlink_conn_locked(pcb);
  pcb.faddr = IpAddr();
  pcb.fport = 0;
  pcb.connected = false;
  if (pcb.laddr_from_connect) pcb.laddr = IpAddr();
  pcb.laddr_from_connect = false;
}

void InPcbTable::remove(InPcb& pcb) {
  MutexLocker g(lock_);
  if (!pcb.bound) return;
  if (pcb.port_hook.is_linked()) ports_[bucket(pcb.lport)].erase(List::s_iterator_to(pcb));
  if (pcb.acc_hook.is_linked()) acc_[pcb.lport % kAccBuckets].erase(AccList::s_iterator_to(pcb));
  unlink_conn_locked(pcb);
  pcb.bound = false;
  count_--;
}

void InPcbTable::unlink_record_locked(InPcbRecord& r) {
  if (r.acc_hook.is_linked()) acc_[r.lport % kAccBuckets].erase(AccList::s_iterator_to(r));
  unlink_conn_locked(r);
  if (r.expire_hook.is_linked()) expiring_.erase(ExpireList::s_iterator_to(r));
  r.bound = false;
  count_--;
}

void InPcbTable::insert_expiring_locked(InPcbRecord& r) {
  // Records mostly come in expiry order: search from the back.
  auto it = expiring_.end();
  while (it != expiring_.begin()) {
    auto prev = std::prev(it);
    if (prev->expire_ns <= r.expire_ns) break;
    it = prev;
  }
  expiring_.insert(it, r);
}

bool InPcbTable::replace(InPcb& live, InPcbRecord& rec, bool* first) {
  MutexLocker g(lock_);
  if (!live.bound || !live.connected || !ensure_acc_locked()) return false;
  rec.family = live.family;
  rec.v6only = live.v6only;
  rec.reuseaddr = live.reuseaddr;
  rec.reuseport = live.reuseport;
  rec.uid = live.uid;
  rec.laddr = live.laddr;
  rec.faddr = live.faddr;
  rec.lport = live.lport;
  rec.fport = live.fport;
  rec.bound = true;
  rec.connected = true;
  if (live.port_hook.is_linked()) ports_[bucket(live.lport)].erase(List::s_iterator_to(live));
  if (live.acc_hook.is_linked()) acc_[live.lport % kAccBuckets].erase(AccList::s_iterator_to(live));
  // In live's place in its hash chain: a lookup finds one or the other.
  ConnList& chain = conn_list(live);
  chain.insert(ConnList::s_iterator_to(live), rec);
  chain.erase(ConnList::s_iterator_to(live));
  live.bound = false;
  link_acc_locked(rec);
  insert_expiring_locked(rec);
  *first = &expiring_.front() == &rec;
  return true;
}

InPcbRecord* InPcbTable::take_expired(int64_t now, int64_t* next) {
  MutexLocker g(lock_);
  InPcbRecord* r = nullptr;
  if (!expiring_.empty() && expiring_.front().expire_ns <= now) {
    r = &expiring_.front();
    unlink_record_locked(*r);
  }
  *next = expiring_.empty() ? INT64_MAX : expiring_.front().expire_ns;
  return r;
}

InPcbRecord* InPcbTable::take_record() {
  MutexLocker g(lock_);
  if (expiring_.empty()) return nullptr;
  InPcbRecord* r = &expiring_.front();
  unlink_record_locked(*r);
  return r;
}

Result<void> InPcbTable::set_listening(InPcb& pcb, bool on) {
  MutexLocker g(lock_);
  if (on) {
    pcb.listening = true;
    if (pcb.bound && conflicts_locked(pcb, pcb.laddr, pcb.lport)) {
      pcb.listening = false;
      return err(EADDRINUSE);
    }
    return {};
  }
  pcb.listening = false;
  return {};
}

RefPtr<Socket> InPcbTable::lookup(const IpAddr& faddr, uint16_t fport, const IpAddr& laddr, uint16_t lport,
                                  bool wildcard, InPcbVisitor visit, void* arg, bool* visited) {
  MutexLocker g(lock_);
  // An exact connected match first. try_ref: a socket on its way out
  // (last reference gone, not yet removed) is not found.
  InPcbRecord* rec = nullptr;
  for (InPcb& q : conns_[conn_bucket(lport, faddr, fport)]) {
    if (q.lport != lport || q.fport != fport || !(q.faddr == faddr) || !inpcb_laddr_matches(q, laddr)) continue;
    if (!q.so) {
      rec = static_cast<InPcbRecord*>(&q);
      break;
    }
    if (q.so->try_ref()) return adopt_ref(q.so);
  }
  if (!rec) return wildcard ? wildcard_locked(faddr, fport, laddr, lport) : nullptr;
  if (!visit) return nullptr;
  int64_t was = rec->expire_ns;
  InPcbVerdict v = visit(arg, *rec);
  RefPtr<Socket> pass;
  // A record passes the packet on only to a socket that takes it (a
  // listener); without one it stays and its own answer goes.
  if (v == InPcbVerdict::kRemoveAndPass && wildcard) pass = wildcard_locked(faddr, fport, laddr, lport);
  if (v == InPcbVerdict::kKeep || (v == InPcbVerdict::kRemoveAndPass && !pass)) {
    if (rec->expire_ns != was) {
      expiring_.erase(ExpireList::s_iterator_to(*rec));
      insert_expiring_locked(*rec);
    }
    if (visited) *visited = true;
    return nullptr;
  }
  unlink_record_locked(*rec);
  delete rec;
  if (!pass && visited) *visited = true;
  return pass;
}

RefPtr<Socket> InPcbTable::wildcard_locked(const IpAddr& faddr, uint16_t fport, const IpAddr& laddr,
                                           uint16_t lport) {
  const List& l = ports_[bucket(lport)];
  // Score: 4 for a specific local address, +1 for the packet's own family
  // (an AF_INET socket before a dual-stack one).
  int best = -1;
  const InPcb* pick = nullptr;
  int group = 0;  // reuseport members at the best score
  for (const InPcb& q : l) {
    if (q.lport != lport || q.connected) continue;
    if (!inpcb_laddr_matches(q, laddr)) continue;
    int score = (q.laddr.family ? 4 : 0) + (q.family == laddr.family ? 1 : 0);
    if (score > best) {
      best = score;
      pick = &q;
      group = q.reuseport ? 1 : 0;
    } else if (score == best && q.reuseport && pick->reuseport) {
      group++;
    }
  }
  if (!pick) return nullptr;
  if (group > 1) {
    // One member of the group, the same one for the same peer.
    int want = static_cast<int>(tuple_hash(faddr, fport) % group);
    for (const InPcb& q : l) {
      if (q.lport != lport || q.connected || !q.reuseport || !inpcb_laddr_matches(q, laddr)) continue;
      int score = (q.laddr.family ? 4 : 0) + (q.family == laddr.family ? 1 : 0);
      if (score != best) continue;
      if (want-- == 0) {
        pick = &q;
        break;
      }
    }
  }
  if (!pick->so->try_ref()) return nullptr;
  return adopt_ref(pick->so);
}

size_t InPcbTable::collect(const IpAddr& faddr, uint16_t fport, const IpAddr& laddr, uint16_t lport, Socket** out,
                           size_t n) {
  MutexLocker g(lock_);
  size_t got = 0;
  for (const InPcb& q : ports_[bucket(lport)]) {
    if (got == n) break;
    if (q.lport != lport) continue;
    if (q.connected && (q.fport != fport || !(q.faddr == faddr))) continue;
    // A broadcast or multicast reaches sockets bound to the wildcard or
    // to that very address.
    if (q.laddr.family != 0 && !(q.laddr == laddr)) continue;
    if (q.laddr.family == 0 && !inpcb_laddr_matches(q, laddr)) continue;
    if (q.so && q.so->try_ref()) out[got++] = q.so;
  }
  return got;
}

InPcbEnds InPcbTable::ends(const InPcb& pcb) const {
  MutexLocker g(lock_);
  InPcbEnds e;
  e.laddr = pcb.laddr;
  e.faddr = pcb.faddr;
  e.lport = pcb.lport;
  e.fport = pcb.fport;
  e.bound = pcb.bound;
  e.connected = pcb.connected;
  e.v6only = pcb.v6only;
  return e;
}

void InPcbTable::set_sharing(InPcb& pcb, bool reuseaddr, bool reuseport, uid_t uid) {
  MutexLocker g(lock_);
  pcb.reuseaddr = reuseaddr;
  pcb.reuseport = reuseport;
  pcb.uid = uid;
}

Result<void> InPcbTable::set_v6only(InPcb& pcb, bool on) {
  MutexLocker g(lock_);
  if (pcb.bound) return err(EINVAL);
  pcb.v6only = on;
  return {};
}

size_t InPcbTable::count() const {
  MutexLocker g(lock_);
  return count_;
}

}  // namespace rump
