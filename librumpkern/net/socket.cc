// The generic socket layer (see socket.h): domain registry, records,
// sockets, the send and receive paths every protocol shares, and sockets
// as open files.
#include "net/socket.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstring>

#include "kern/copy.h"
#include "kern/fork.h"
#include "kern/kernel.h"
#include "kern/proc.h"

namespace rump {

// --- domains: registered at load time, read-only afterwards.

namespace {
constexpr int kMaxDomains = 8;
struct DomainTable {
  const Domain* d[kMaxDomains] = {};
  int n = 0;
};
DomainTable& domains() {
  static DomainTable t;
  return t;
}
}  // namespace

void register_domain(const Domain* d) {
  DomainTable& t = domains();
  if (t.n < kMaxDomains) t.d[t.n++] = d;
}

const Domain* find_domain(int family) {
  DomainTable& t = domains();
  for (int i = 0; i < t.n; i++)
    if (t.d[i]->family == family) return t.d[i];
  return nullptr;
}

// --- records

ScmRights* scm_rights_alloc(Kmem& k, int n) {
  void* mem = k.alloc(sizeof(ScmRights) + sizeof(File*) * n);
  if (!mem) return nullptr;
  return new (mem) ScmRights();
}

void scm_rights_free(ScmRights* r) {
  if (!r) return;
  for (int i = 0; i < r->n; i++) {
    if (r->dom) r->dom->dispose(*r->files[i]);
    r->files[i]->unref();
  }
  r->~ScmRights();
  Kmem::free(r);
}

namespace {
// The size class of a record of len bytes (0: none, not kept for reuse).
size_t record_class(size_t len) {
  if (len <= SockRecord::kSmallRecord) return SockRecord::kSmallRecord;
  if (len == SockRecord::kStreamPiece) return SockRecord::kStreamPiece;
  return 0;
}
}  // namespace

SockRecord* SockRecord::alloc(Kmem& k, size_t len) {
  size_t cap = record_class(len);
  if (cap == 0) cap = len;
  void* mem = k.alloc(sizeof(SockRecord) + cap);
  if (!mem) return nullptr;
  auto* r = new (mem) SockRecord();
  r->len = static_cast<uint32_t>(len);
  r->cap = static_cast<uint32_t>(cap);
  return r;
}

void SockRecord::dispose(SockRecord* r) {
  if (r->sender) {
    if (r->charged) r->sender->uncharge(r->charged);
    r->sender->unref();
  }
  if (r->rights) scm_rights_free(r->rights);
  if (r->addr) {
    r->addr->~SockAddr();
    Kmem::free(r->addr);
  }
  if (r->ext_free) r->ext_free(r->ext_arg);
  r->~SockRecord();
  Kmem::free(r);
}

// --- sockets

Socket::~Socket() {
  // detach drained the buffer; a socket that never got a file has none.
  SockRecordList left;
  {
    MutexLocker g(lock_);
    drain_locked(left);
    left.splice(left.end(), rec_cache_);
    rec_cached_ = 0;
  }
  left.clear_and_dispose(&SockRecord::dispose);
  if (pcb_) proto_.free_pcb(*this);
}

Result<Ref<Socket>> Socket::create(Lwp& l, const Domain& d, const Protosw& p, int protocol) {
  auto* so = new (l.kernel().kmem()) Socket(l.kernel(), d, p);
  if (!so) return err(ENOMEM);
  Ref<Socket> r = adopt_ref(so);
  so->protocol_ = protocol >= 0 ? protocol : p.protocol;
  so->creator_ = creds_of(l);
  TRY(p.attach(*so));
  return r;
}

ScmCreds Socket::creds_of(Lwp& l) {
  ScmCreds c;
  c.pid = l.proc().pid();
  c.uid = l.cred().euid;
  c.gid = l.cred().egid;
  return c;
}

void Socket::wake_locked() {
  gen_.store(gen_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  if (rcv_waiters_) rcv_cv_.broadcast();
  if (snd_waiters_) snd_cv_.broadcast();
  if (conn_waiters_) conn_cv_.broadcast();
  wq_.lock().assert_held();  // the queue's lock is the object's lock_
  if (!wq_.empty()) wq_.wakeup();
}

bool Socket::deliver_locked_deferred(SockRecord* rec) {
  rcv_.push_back(*rec);
  rcv_cc_ += rec->len - rec->off;
  rcv_count_++;
  gen_.store(gen_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  wq_.lock().assert_held();  // the queue's lock is the object's lock_
  if (!wq_.empty()) wq_.wakeup();
  return rcv_waiters_ > 0;
}

void Socket::deliver_locked(SockRecord* rec) {
  if (deliver_locked_deferred(rec)) rcv_cv_.signal();
}

void Socket::drain_locked(SockRecordList& out) {
  out.splice(out.end(), rcv_);
  rcv_cc_ = 0;
  rcv_count_ = 0;
}

namespace {

// Gives back n bytes charged to so (lock held): a writer waits only while
// the buffer is full, so only then does a spinner need to see gen_ move
// and a sleeper a wake-up; pollers look for themselves. True if writers
// sleep: the caller broadcasts snd_cv_ after dropping the lock (woken
// under it, they would block on it at once).
[[nodiscard]] bool uncharge_locked(Socket& so, size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_) {
  bool was_full = so.snd_cc_ >= static_cast<size_t>(so.sndbuf_);
  so.snd_cc_ = so.snd_cc_ > n ? so.snd_cc_ - n : 0;
  if (was_full) so.gen_.store(so.gen_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  so.wq_.lock().assert_held();  // the queue's lock is the object's lock_
  if (!so.wq_.empty()) so.wq_.wakeup();
  return was_full && so.snd_waiters_ > 0;
}

// A consumed record that can be reused as it is.
bool reusable(const SockRecord& r) {
  return !r.rights && !r.addr && record_class(r.cap) == r.cap && r.cap != 0;
}

}  // namespace

void Socket::uncharge(size_t n) {
  bool wake;
  {
    MutexLocker g(lock_);
    wake = uncharge_locked(*this, n);
  }
  if (wake) snd_cv_.broadcast();
}

void Socket::uncharge_and_recycle(size_t n, SockRecordList& done) {
  SockRecordList keep;
  int drops = 0;  // references the kept records held on this socket
  for (auto it = done.begin(); it != done.end();) {
    SockRecord& r = *it;
    if (r.sender == this && reusable(r)) {
      it = done.erase(it);
      n += r.charged;
      r.charged = 0;
      r.sender = nullptr;
      drops++;
      keep.push_back(r);
    } else {
      ++it;
    }
  }
  bool wake = false;
  {
    MutexLocker g(lock_);
    if (n) wake = uncharge_locked(*this, n);
    while (!keep.empty() && rec_cached_ < kRecordCache) {
      SockRecord& r = keep.front();
      keep.pop_front();
      r.len = r.off = 0;
      r.has_creds = false;
      rec_cache_.push_front(r);
      rec_cached_++;
    }
  }
  if (wake) snd_cv_.broadcast();
  keep.clear_and_dispose(&SockRecord::dispose);
  done.clear_and_dispose(&SockRecord::dispose);
  // The caller holds a reference of its own: these are never the last.
  for (int i = 0; i < drops; i++) unref();
}

SockRecord* Socket::take_record_locked(size_t len) {
  size_t cls = record_class(len);
  if (cls == 0) return nullptr;
  for (auto it = rec_cache_.begin(); it != rec_cache_.end(); ++it) {
    if (it->cap != cls) continue;
    SockRecord& r = *it;
    rec_cache_.erase(it);
    rec_cached_--;
    r.len = static_cast<uint32_t>(len);
    return &r;
  }
  return nullptr;
}

size_t Socket::fill_direct(Lwp& l, Uio& src, size_t max, bool wait, int* src_error) {
  DirectRead* d;
  {
    MutexLocker g(lock_);
    for (;;) {
      if (!rcv_.empty() || (state_ & (kSsClosed | kSsCantRcvMore)) || (options_ & kSoPassCred)) return 0;
      d = rcv_direct_;
      // An offer nobody claimed or filled; uio_move needs one of the two
      // in the host's address space.
      if (d && !d->claimed && !d->filled() && (src.direct() || d->uio->direct())) break;
      // Nothing buffered and no fresh offer: a reader posting one bumps
      // gen_. One spin per call at most.
      if (!wait) return 0;
      wait = false;
      if (!offer_spin_.spin(l, lock_, gen_, gen_.load(std::memory_order_relaxed), -1)) return 0;
    }
    d->claimed = true;
  }
  UioMoved r = uio_move(*d->uio, src, max);
  bool wake;
  {
    MutexLocker g(lock_);
    d->claimed = false;
    d->moved += r.moved;
    if (r.dst_error && d->moved == 0) d->error = r.dst_error;
    gen_.store(gen_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    wake = rcv_waiters_ > 0;
  }
  // The reader may sleep, or wait for the claim to end; other readers
  // wait on the same condition variable for its turn.
  if (wake) rcv_cv_.broadcast();
  if (r.src_error) *src_error = r.src_error;
  return r.moved;
}

int64_t so_deadline(int64_t timeo_ns) { return timeo_ns > 0 ? poll_now_ns() + timeo_ns : -1; }

int so_sleep(Lwp& l, Socket& so, CondVar& cv, int& waiters, int64_t deadline) {
  // A reader or writer whose peer is running hands over without a host
  // wake-up if what it waits for comes within a short spin.
  SpinBudget* spin = &cv == &so.rcv_cv_ ? &so.rcv_spin_ : &cv == &so.snd_cv_ ? &so.snd_spin_ : nullptr;
  if (spin) {
    int64_t left = -1;
    if (deadline >= 0) {
      left = deadline - poll_now_ns();
      if (left <= 0) return EAGAIN;
    }
    if (spin->spin(l, so.lock_, so.gen_, so.gen_.load(std::memory_order_relaxed), left)) return 0;
  }
  waiters++;
  int e = l.sleep(cv, so.lock_, deadline, true);
  waiters--;
  if (e == ETIMEDOUT) return EAGAIN;
  // A call with a timeout (SO_RCVTIMEO/SO_SNDTIMEO) is never restarted
  // after a handler; one without is (Linux's sock_intr_errno).
  return deadline >= 0 ? eintr_if_restart(e) : e;
}

namespace {

void send_sigpipe(Lwp& l) {
  Proc& p = l.proc();
  if (post_signal(p, SIGPIPE)) kill_proc(l.kernel(), p.pid(), SIGPIPE);
}

}  // namespace

Result<size_t> so_send(Lwp& l, Socket& so, SockMsg& m, int flags, bool nonblock) {
  const Protosw& pr = so.proto();
  if (flags & MSG_OOB) return err(EOPNOTSUPP);
  if (pr.send_msg) {
    Result<size_t> r = pr.send_msg(l, so, m, flags, nonblock || (flags & MSG_DONTWAIT));
    // Streams raise SIGPIPE with EPIPE (Linux's sk_stream_error); datagram
    // protocols return EPIPE alone.
    if (!r.ok() && r.error() == EPIPE && pr.stream && !(flags & MSG_NOSIGNAL)) send_sigpipe(l);
    return r;
  }
  nonblock = nonblock || (flags & MSG_DONTWAIT);
  Kmem& km = so.kernel().kmem();
  size_t want = m.uio->resid;
  size_t sent = 0;
  int error = 0;
  bool creds = m.want_creds || (pr.wants_creds && pr.wants_creds(so));
  constexpr size_t kPiece = SockRecord::kStreamPiece;
  int64_t deadline = -1;
  bool first = true;
  // One copy into a waiting reader's uio, tried before each record; not
  // for small sends, where a cached record costs less than looking at the
  // peer's offer under its lock.
  bool direct_ok = pr.send_direct && pr.stream && !creds && !m.rights && want > SockRecord::kSmallRecord;
  bool direct_tried = false;
  do {
    size_t chunk = pr.stream ? (want - sent < kPiece ? want - sent : kPiece) : want;
    SockRecord* rec = nullptr;
    {
      MutexLocker g(so.lock_);
      if (first) {
        if (pr.connection) {
          if (pr.stream && m.to) return err((so.state_ & kSsConnected) ? EISCONN : EOPNOTSUPP);
          if (!(so.state_ & kSsConnected)) return err(ENOTCONN);
          m.to = nullptr;  // a connected record socket ignores the address
        }
        if (!pr.stream && want > static_cast<size_t>(so.sndbuf_) - 32) return err(EMSGSIZE);
        deadline = so_deadline(so.sndtimeo_ns_);
      }
      for (;;) {
        if (so.state_ & kSsCantSendMore) {
          error = EPIPE;
          break;
        }
        if (so.error_ && pr.stream) {
          error = so.error_;
          so.error_ = 0;
          break;
        }
        if (so.snd_cc_ < static_cast<size_t>(so.sndbuf_)) break;
        if (nonblock) {
          error = EAGAIN;
          break;
        }
        if (int e = so_sleep(l, so, so.snd_cv_, so.snd_waiters_, deadline)) {
          error = e;
          break;
        }
      }
      if (error) break;
      if (pr.stream && want == 0) break;  // the checks only (Linux)
      if (direct_ok && !direct_tried) {
        direct_tried = true;
      } else {
        direct_tried = false;
        so.snd_cc_ += chunk;
        rec = so.take_record_locked(chunk);
      }
    }
    if (direct_tried) {
      // Before the first byte of a blocking send from host memory only, it
      // may wait a little for a reader's offer.
      Result<size_t> d = pr.send_direct(l, so, *m.uio, want - sent, sent == 0 && !nonblock && m.uio->direct());
      if (!d.ok()) {
        error = d.error();
        break;
      }
      if (d.value()) {
        sent += d.value();
        first = false;
        direct_tried = false;
      }
      continue;
    }
    if (!rec) rec = SockRecord::alloc(km, chunk);
    if (!rec) {
      so.uncharge(chunk);
      error = ENOMEM;
      break;
    }
    so.ref();
    rec->sender = &so;
    rec->charged = static_cast<uint32_t>(chunk);
    if (chunk) {
      Result<void> c = m.uio->copyin(rec->data, chunk);
      if (!c.ok()) {
        SockRecord::dispose(rec);
        error = c.error();
        break;
      }
    }
    if (creds) {
      rec->has_creds = true;
      rec->creds = m.want_creds ? m.creds : Socket::creds_of(l);
    }
    if (first && m.rights) {
      rec->rights = m.rights;
      m.rights = nullptr;
    }
    Result<void> s = pr.send(l, so, rec, m.to, nonblock);
    if (!s.ok()) {
      // Rights handed over stay with the caller on failure.
      if (rec->rights && first) {
        m.rights = rec->rights;
        rec->rights = nullptr;
      }
      SockRecord::dispose(rec);
      error = s.error();
      break;
    }
    sent += chunk;
    first = false;
  } while (sent < want);
  if (error == EPIPE && !(flags & MSG_NOSIGNAL)) send_sigpipe(l);
  if (error && sent == 0) return err(error);
  return sent;
}

namespace {

bool same_creds(const SockRecord& a, const ScmCreds& c) {
  return a.creds.pid == c.pid && a.creds.uid == c.uid && a.creds.gid == c.gid;
}

// A copy of rights with a reference on each file (MSG_PEEK).
ScmRights* dup_rights(Kmem& km, const ScmRights* r) {
  ScmRights* d = scm_rights_alloc(km, r->n);
  if (!d) return nullptr;
  d->n = r->n;
  for (int i = 0; i < r->n; i++) {
    d->files[i] = r->files[i];
    d->files[i]->ref();
  }
  return d;
}

}  // namespace

Result<size_t> so_receive(Lwp& l, Socket& so, SockMsg& m, int flags, bool nonblock) {
  const Protosw& pr = so.proto();
  if (flags & MSG_OOB) return err(EOPNOTSUPP);
  nonblock = nonblock || (flags & MSG_DONTWAIT);
  if (pr.recv_msg) return pr.recv_msg(l, so, m, flags, nonblock);
  return so_receive_records(l, so, m, flags, nonblock);
}

Result<size_t> so_receive_records(Lwp& l, Socket& so, SockMsg& m, int flags, bool nonblock) {
  const Protosw& pr = so.proto();
  bool peek = flags & MSG_PEEK;
  Kmem& km = so.kernel().kmem();
  Uio& uio = *m.uio;
  size_t copied = 0;
  size_t result = 0;
  int error = 0;
  SockRecordList done;
  Socket* pend_sender = nullptr;  // referenced; pend_n bytes to give back
  size_t pend_n = 0;
  so.lock_.lock();
  if (pr.connection && !(so.state_ & kSsConnected)) {
    so.lock_.unlock();
    return err(pr.stream ? EINVAL : ENOTCONN);
  }
  int64_t deadline = so_deadline(so.rcvtimeo_ns_);
  while (so.rcv_busy_) {
    if (int e = so_sleep(l, so, so.rcv_cv_, so.rcv_waiters_, deadline)) {
      so.lock_.unlock();
      return err(e);
    }
  }
  so.rcv_busy_ = true;
  bool passcred = so.options_ & kSoPassCred;
  DirectRead direct(uio);
  // A local stream copies and consumes with MSG_TRUNC as without it
  // (Linux's unix_stream_recvmsg ignores the flag; TCP discards the
  // bytes instead, in its own receive path).
  if (pr.stream) {
    size_t target = (flags & MSG_WAITALL) ? uio.resid : (static_cast<size_t>(so.rcvlowat_) < uio.resid ? so.rcvlowat_ : uio.resid);
    if (target == 0) target = 1;
    auto it = so.rcv_.begin();
    size_t skip = 0;  // peek: bytes of *it already looked at
    bool have_creds = false;
    ScmCreds first_creds;
    while (uio.resid > 0) {
      if (!peek) it = so.rcv_.begin(), skip = 0;
      while (it != so.rcv_.end() && it->off + skip == it->len && it->len != 0) ++it, skip = 0;
      if (it == so.rcv_.end()) {
        if (copied >= target) break;
        if (so.error_) {
          if (copied == 0) error = so.error_, so.error_ = 0;
          break;
        }
        if (so.state_ & kSsCantRcvMore) break;
        if (nonblock) {
          if (copied == 0) error = EAGAIN;
          break;
        }
        // Remember where a peek stood: records are only ever appended
        // while we hold rcv_busy_, so the iterator stays valid, but the
        // end() we hold now must be re-read after the sleep.
        bool was_empty = so.rcv_.empty();
        SockRecord* last = was_empty ? nullptr : &so.rcv_.back();
        // Nothing buffered: a sender may copy straight into our uio.
        bool offer = was_empty && !peek && !passcred && pr.send_direct;
        if (offer) {
          so.rcv_direct_ = &direct;
          // For a sender spinning for an offer (fill_direct).
          so.gen_.store(so.gen_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
        }
        int e = so_sleep(l, so, so.rcv_cv_, so.rcv_waiters_, deadline);
        if (offer) {
          while (direct.claimed) {
            // The sender wakes us when its copy ends.
            so.rcv_waiters_++;
            (void)l.sleep(so.rcv_cv_, so.lock_, -1, false);
            so.rcv_waiters_--;
          }
          so.rcv_direct_ = nullptr;
          copied += direct.moved;
          direct.moved = 0;
          if (direct.error) {
            if (copied == 0) error = direct.error;
            break;
          }
        }
        if (e) {
          if (copied == 0) error = e;
          break;
        }
        if (peek) {
          it = last ? std::next(so.rcv_.iterator_to(*last)) : so.rcv_.begin();
          skip = 0;
        }
        continue;
      }
      SockRecord& r = *it;
      if (r.sender != (pend_sender ? pend_sender : r.sender)) break;
      if (passcred) {
        ScmCreds c = r.has_creds ? r.creds : ScmCreds{0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
        if (have_creds && !same_creds(r, first_creds) && r.has_creds) break;
        if (!have_creds) {
          have_creds = true;
          first_creds = c;
          m.got_creds = true;
          m.rcreds = c;
        }
      }
      size_t avail = r.len - r.off - skip;
      size_t n = avail < uio.resid ? avail : uio.resid;
      const char* src = r.bytes() + r.off + skip;
      so.lock_.unlock();
      size_t before = uio.resid;
      Result<void> c = n ? uio.copyout(src, n) : Result<void>{};
      size_t moved = before - uio.resid;
      so.lock_.lock();
      copied += moved;
      if (!peek) {
        r.off += static_cast<uint32_t>(moved);
        so.rcv_cc_ -= moved;
        if (r.sender) {
          if (!pend_sender) {
            pend_sender = r.sender;
            pend_sender->ref();
          }
          size_t u = moved < r.charged ? moved : r.charged;
          r.charged -= static_cast<uint32_t>(u);
          pend_n += u;
        }
      } else {
        skip += moved;
      }
      if (!c.ok()) {
        if (copied == 0) error = c.error();
        break;
      }
      bool rights_here = r.rights != nullptr;
      if (rights_here) {
        if (peek) {
          if (!m.rrights) m.rrights = dup_rights(km, r.rights);
        } else {
          m.rrights = r.rights;
          r.rights = nullptr;
        }
      }
      if (!peek && r.off == r.len) {
        so.rcv_.erase(so.rcv_.iterator_to(r));
        so.rcv_count_--;
        done.push_back(r);
      }
      if (rights_here) break;
    }
    result = copied;
  } else {
    for (;;) {
      if (!so.rcv_.empty()) break;
      if (so.error_) {
        error = so.error_;
        so.error_ = 0;
        break;
      }
      if (so.state_ & kSsCantRcvMore) break;
      if (nonblock) {
        error = EAGAIN;
        break;
      }
      if (int e = so_sleep(l, so, so.rcv_cv_, so.rcv_waiters_, deadline)) {
        error = e;
        break;
      }
    }
    if (!error && !so.rcv_.empty()) {
      SockRecord& r = so.rcv_.front();
      size_t n = r.len < uio.resid ? r.len : uio.resid;
      if (r.len > n) m.flags_out |= MSG_TRUNC;
      if (m.from) pr.source_name(r, *m.from);
      if (passcred && r.has_creds) {
        m.got_creds = true;
        m.rcreds = r.creds;
      }
      so.lock_.unlock();
      Result<void> c = n ? uio.copyout(r.bytes(), n) : Result<void>{};
      so.lock_.lock();
      if (!c.ok()) {
        error = c.error();
      } else {
        if (r.rights) {
          if (peek) {
            m.rrights = dup_rights(km, r.rights);
          } else {
            m.rrights = r.rights;
            r.rights = nullptr;
          }
        }
        if (!peek) {
          so.rcv_.erase(so.rcv_.iterator_to(r));
          so.rcv_count_--;
          so.rcv_cc_ -= r.len;
          done.push_back(r);
          if (r.sender) {
            pend_sender = r.sender;
            pend_sender->ref();
          }
        }
        result = (flags & MSG_TRUNC) ? r.len : n;
      }
    }
  }
  so.rcv_busy_ = false;
  if (so.rcv_waiters_) so.rcv_cv_.broadcast();
  // Room in a record queue: senders waiting for it (Socket::conn_cv_).
  if (!done.empty() && so.conn_waiters_) so.conn_cv_.broadcast();
  so.lock_.unlock();
  if (pend_sender) {
    // One visit to the sender: its space back, its records for reuse.
    pend_sender->uncharge_and_recycle(pend_n, done);
    pend_sender->unref();
  }
  done.clear_and_dispose(&SockRecord::dispose);
  if (error) {
    scm_rights_free(m.rrights);
    m.rrights = nullptr;
    return err(error);
  }
  return result;
}

Result<void> so_shutdown(Socket& so, int how) {
  if (how < SHUT_RD || how > SHUT_RDWR) return err(EINVAL);
  return so.proto().shutdown(so, how);
}

Result<Ref<Socket>> so_accept(Lwp& l, Socket& so, bool nonblock) {
  Socket* c;
  {
    MutexLocker g(so.lock_);
    if (!(so.state_ & kSsListening)) return err(EINVAL);
    int64_t deadline = so_deadline(so.rcvtimeo_ns_);
    while (so.accept_q_.empty()) {
      if (nonblock) return err(EAGAIN);
      if (int e = so_sleep(l, so, so.rcv_cv_, so.rcv_waiters_, deadline)) return err(e);
      if (!(so.state_ & kSsListening)) return err(EINVAL);
    }
    c = &so.accept_q_.front();
    so.accept_q_.pop_front();
    so.accept_len_--;
    // A place in the backlog: connectors waiting for one.
    if (so.conn_waiters_) so.conn_cv_.broadcast();
  }
  return adopt_ref(c);  // the queue's reference
}

short so_poll(Socket& so, short events, PollTable* pt) {
  MutexLocker g(so.lock_);
  so.wq_.lock().assert_held();  // the queue's lock is the object's lock_
  if (pt) pt->add(so.wq_);
  return so.proto().poll_locked(so) & (events | POLLERR | POLLHUP);
}

// --- sockets as files

namespace {

Socket& sock_of(File& f) { return *static_cast<Socket*>(f.data_); }

class SocketFileOps : public FileOps {
 public:
  Result<size_t> read(File& f, Uio& uio, uint64_t& off) const override {
    SockMsg m;
    m.uio = &uio;
    Result<size_t> r = so_receive(*uio.lwp, sock_of(f), m, 0, f.flags() & O_NONBLOCK);
    // read(2) cannot take descriptors: they are closed (as Linux).
    scm_rights_free(m.rrights);
    return r;
  }
  Result<size_t> write(File& f, Uio& uio, uint64_t& off) const override {
    SockMsg m;
    m.uio = &uio;
    return so_send(*uio.lwp, sock_of(f), m, 0, f.flags() & O_NONBLOCK);
  }
  Result<long> ioctl(File& f, Lwp& l, unsigned long cmd, uintptr_t arg) const override {
    Socket& so = sock_of(f);
    int n = 0;
    switch (cmd) {
      case FIONREAD: {  // SIOCINQ: unread bytes (streams), the next record's size (records)
        MutexLocker g(so.lock_);
        if (so.state_ & kSsListening) return err(EINVAL);
        if (so.proto().stream) n = static_cast<int>(so.rcv_cc_);
        else n = so.rcv_.empty() ? 0 : static_cast<int>(so.rcv_.front().len);
        break;
      }
      case TIOCOUTQ: {  // SIOCOUTQ: bytes sent and not yet read
        MutexLocker g(so.lock_);
        if (so.state_ & kSsListening) return err(EINVAL);
        n = static_cast<int>(so.snd_cc_);
        break;
      }
      default:
        if (so.domain().ioctl) return so.domain().ioctl(l, so, cmd, arg);
        return err(ENOTTY);
    }
    TRY(copyout_obj(l, n, UserPtr<int>{arg}));
    return 0;
  }
  short poll(File& f, short events, PollTable* pt) const override { return so_poll(sock_of(f), events, pt); }
  Result<void> stat(File& f, struct stat* st) const override {
    std::memset(st, 0, sizeof *st);
    st->st_dev = makedev(0, 8);
    st->st_ino = reinterpret_cast<uintptr_t>(f.data_) >> 4;
    st->st_mode = S_IFSOCK | 0777;
    st->st_nlink = 1;
    st->st_blksize = 4096;
    return {};
  }
  void close(File& f) const override {
    Socket* so = static_cast<Socket*>(f.data_);
    if (!so) return;
    f.data_ = nullptr;
    so->file_.store(nullptr, std::memory_order_release);
    so->proto().detach(*so);
    SockRecordList left;
    {
      MutexLocker g(so->lock_);
      so->state_ |= kSsClosed;
      so->drain_locked(left);
      so->wake_locked();
    }
    left.clear_and_dispose(&SockRecord::dispose);
    so->unref();
  }
};

const SocketFileOps g_socket_ops;

}  // namespace

const FileOps& kSocketFileOps = g_socket_ops;

Result<Ref<File>> socket_file(Kmem& k, Socket& so, int flags) {
  Ref<File> f = TRY(File::create(k, &kSocketFileOps, nullptr, O_RDWR | (flags & O_NONBLOCK)));
  so.ref();
  f->data_ = &so;
  so.file_.store(f.get(), std::memory_order_release);
  return f;
}

}  // namespace rump
