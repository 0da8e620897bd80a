// The local domain, AF_UNIX (see local.h): SOCK_STREAM, SOCK_DGRAM and
// SOCK_SEQPACKET with path names in the VFS, abstract names, unnamed
// socketpairs; Linux's rules for every error.
#include "net/local.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "kern/component.h"
#include "kern/kernel.h"
#include "kern/proc.h"
#include "vfs/vfs.h"

namespace rump {

namespace {

Result<void> net_init(Kernel& k);
void net_fini(Kernel& k);
Component g_net_component{"net", ComponentType::kNet, &net_init, &net_fini};
RUMP_COMPONENT(g_net_component);
const KernelSlot<NetState> g_net_state{g_net_component};

Result<void> net_init(Kernel& k) {
  auto* st = new (k.kmem()) NetState(k);
  if (!st) return err(ENOMEM);
  g_net_state.set(k, st);
  return {};
}

void net_fini(Kernel& k) {
  // Halt: no process will receive again, so every descriptor still in
  // flight goes now (this breaks every cycle the collector did not see
  // become garbage). The sockets themselves go as the processes' tables
  // are closed, after this; the state goes with the last of them. A boot
  // that failed before this faction's init has nothing to stop.
  if (!g_net_state.get(k)) return;
  unp_purge_inflight(k);
  net_state(k).unref();
}

constexpr size_t kSunPathOff = offsetof(sockaddr_un, sun_path);

// --- names

SockAddr* new_addr(Kmem& km, const SockAddr& a) {
  void* mem = km.alloc(sizeof(SockAddr));
  if (!mem) return nullptr;
  return new (mem) SockAddr(a);
}

void free_addr(SockAddr* a) {
  if (!a) return;
  a->~SockAddr();
  Kmem::free(a);
}

bool is_abstract(const SockAddr& a) { return a.len > kSunPathOff && a.un.sun_path[0] == '\0'; }

void set_key_abstract(UnpCb& u, const SockAddr& a) {
  u.key[0] = 'A';
  size_t n = a.len - kSunPathOff;
  std::memcpy(u.key + 1, a.un.sun_path, n);
  u.keylen = 1 + n;
}

void set_key_vnode(char* key, size_t& keylen, const Vnode* vp) {
  key[0] = 'V';
  std::memcpy(key + 1, &vp, sizeof vp);
  keylen = 1 + sizeof vp;
}

// The socket bound to a name, referenced; nullptr if none.
Socket* find_bound(NetState& st, std::string_view key) {
  MutexLocker g(st.names_lock_);
  UnpCb* u = st.names_.find(key);
  if (!u) return nullptr;
  u->so.ref();
  return &u->so;
}

// Looks the address up for connect/sendto: the bound socket, referenced.
Result<Ref<Socket>> lookup(Lwp& l, const SockAddr& a) {
  NetState& st = net_state(l.kernel());
  if (a.len <= kSunPathOff || a.un.sun_family != AF_UNIX) return err(EINVAL);
  if (is_abstract(a)) {
    char key[1 + sizeof(sockaddr_un)];
    key[0] = 'A';
    size_t n = a.len - kSunPathOff;
    std::memcpy(key + 1, a.un.sun_path, n);
    Socket* so = find_bound(st, std::string_view(key, 1 + n));
    if (!so) return err(ECONNREFUSED);
    return adopt_ref(so);
  }
  char path[sizeof(sockaddr_un) + 1] = {};
  std::memcpy(path, a.un.sun_path, a.len - kSunPathOff);
  Ref<Vnode> vp = TRY(namei(l, AT_FDCWD, path, kFollow));
  TRY(vaccess(l, *vp, W_OK));
  if (vp->type() != VType::kSock) return err(ECONNREFUSED);
  char key[1 + sizeof(void*)];
  size_t keylen;
  set_key_vnode(key, keylen, vp.get());
  Socket* so = find_bound(st, std::string_view(key, keylen));
  if (!so) return err(ECONNREFUSED);
  return adopt_ref(so);
}

// Binds u to an abstract name; EADDRINUSE if taken.
Result<void> bind_abstract(NetState& st, UnpCb& u, const SockAddr& a) {
  SockAddr* copy = new_addr(st.kernel.kmem(), a);
  if (!copy) return err(ENOMEM);
  MutexLocker g(st.names_lock_);
  if (u.named || u.addr.load()) {
    free_addr(copy);
    return err(EINVAL);
  }
  set_key_abstract(u, a);
  if (!st.names_.insert(u)) {
    u.keylen = 0;
    free_addr(copy);
    return err(EADDRINUSE);
  }
  u.named = true;
  u.addr.store(copy, std::memory_order_release);
  return {};
}

// Autobind: an abstract name of five hex digits (Linux's).
Result<void> autobind(NetState& st, UnpCb& u) {
  SockAddr a;
  a.un.sun_family = AF_UNIX;
  a.len = kSunPathOff + 6;
  for (int tries = 0; tries < 0x100000; tries++) {
    uint32_t n;
    {
      MutexLocker g(st.names_lock_);
      n = st.autobind_next_++ & 0xfffff;
    }
    char buf[8];
    snprintf(buf, sizeof buf, "%05x", n);
    a.un.sun_path[0] = '\0';
    std::memcpy(a.un.sun_path + 1, buf, 5);
    Result<void> r = bind_abstract(st, u, a);
    if (r.ok() || r.error() != EADDRINUSE) return r;
  }
  return err(ENOSPC);
}

Result<void> bind_path(Lwp& l, NetState& st, UnpCb& u, const SockAddr& a) {
  char path[sizeof(sockaddr_un) + 1] = {};
  std::memcpy(path, a.un.sun_path, a.len - kSunPathOff);
  SockAddr stored;
  stored.un.sun_family = AF_UNIX;
  size_t plen = std::strlen(path);
  std::memcpy(stored.un.sun_path, path, plen);
  stored.len = static_cast<socklen_t>(kSunPathOff + plen + 1);
  if (stored.len > sizeof(sockaddr_un)) stored.len = sizeof(sockaddr_un);
  SockAddr* copy = new_addr(st.kernel.kmem(), stored);
  if (!copy) return err(ENOMEM);
  NameiData nd;
  Result<void> r = namei_parent(l, AT_FDCWD, path, nd);
  if (!r.ok()) {
    free_addr(copy);
    return r;
  }
  if (nd.vp || nd.is_dot) {
    free_addr(copy);
    return err(EADDRINUSE);
  }
  Vattr dva = getattr(*nd.dir);
  NewNode n = new_node(l, dva, VType::kSock, 0777 & ~proc_umask(l));
  Result<Ref<Vnode>> vp = create_in(l, nd, n);
  if (!vp.ok()) {
    free_addr(copy);
    return err(vp.error() == EEXIST ? EADDRINUSE : vp.error());
  }
  MutexLocker g(st.names_lock_);
  u.vnode = RefPtr<Vnode>(vp.value());
  set_key_vnode(u.key, u.keylen, vp.value().get());
  st.names_.insert(u);  // a fresh inode: never taken
  u.named = true;
  u.addr.store(copy, std::memory_order_release);
  return {};
}

void unbind(NetState& st, UnpCb& u) {
  RefPtr<Vnode> vp;
  {
    MutexLocker g(st.names_lock_);
    if (u.named) st.names_.erase(u);
    u.named = false;
    vp = std::move(u.vnode);
  }
}

// --- the protocol hooks

Result<void> unp_attach(Socket& so) {
  auto* u = new (so.kernel().kmem()) UnpCb(so);
  if (!u) return err(ENOMEM);
  so.pcb_ = u;
  net_state(so.kernel()).ref();
  return {};
}

// What the last close leaves behind: the name goes, an accept queue's
// connections are refused, a connected peer is told (as Linux's
// unix_release_sock).
void release_peer(Socket& peer, Socket& so, bool reset) {
  MutexLocker g(peer.lock_);
  if (so.proto().connection) {
    peer.state_ |= kSsCantSendMore | kSsCantRcvMore;
    if (reset) peer.error_ = ECONNRESET;
  }
  peer.wake_locked();
}

void release(Socket& so, bool embryo) {
  UnpCb& u = unp(so);
  NetState& st = net_state(so.kernel());
  unbind(st, u);
  Socket::AcceptList q;
  Socket* peer;
  bool unread;
  {
    MutexLocker g(so.lock_);
    if (so.state_ & kSsListening) {
      q.splice(q.end(), so.accept_q_);
      so.accept_len_ = 0;
    }
    so.state_ &= ~(kSsListening | kSsConnected | kSsConnecting);
    so.state_ |= kSsClosed | kSsCantSendMore | kSsCantRcvMore;
    peer = u.peer;
    u.peer = nullptr;
    unread = !so.rcv_.empty();
    so.wake_locked();
  }
  if (peer) {
    release_peer(*peer, so, unread || embryo);
    peer->unref();
  }
  // Connections nobody accepted: each is closed as an embryo.
  q.clear_and_dispose([](Socket* c) {
    release(*c, true);
    SockRecordList left;
    {
      MutexLocker g(c->lock_);
      c->drain_locked(left);
    }
    left.clear_and_dispose(&SockRecord::dispose);
    c->unref();
  });
}

void unp_detach(Socket& so) {
  release(so, false);
  unp_gc(so.kernel());
}

void free_pcb(Socket& so) {
  UnpCb* u = static_cast<UnpCb*>(so.pcb_);
  if (!u) return;
  free_addr(u->addr.load());
  delete u;
  so.pcb_ = nullptr;
  net_state(so.kernel()).unref();
}

Result<void> unp_bind(Lwp& l, Socket& so, const SockAddr& a) {
  NetState& st = net_state(so.kernel());
  UnpCb& u = unp(so);
  if (a.len < kSunPathOff || a.un.sun_family != AF_UNIX) return err(EINVAL);
  MutexLocker b(u.bind_lock);
  // A path that exists is EADDRINUSE even for a bound socket (Linux makes
  // the node before it looks at the socket).
  if (!is_abstract(a) && a.len > kSunPathOff) {
    char path[sizeof(sockaddr_un) + 1] = {};
    std::memcpy(path, a.un.sun_path, a.len - kSunPathOff);
    NameiData nd;
    TRY(namei_parent(l, AT_FDCWD, path, nd));
    if (nd.vp || nd.is_dot) return err(EADDRINUSE);
  }
  if (u.addr.load(std::memory_order_acquire)) return err(EINVAL);
  if (a.len == kSunPathOff) return autobind(st, u);
  if (is_abstract(a)) return bind_abstract(st, u, a);
  return bind_path(l, st, u, a);
}

Result<void> unp_listen(Lwp& l, Socket& so, int backlog) {
  if (!so.proto().connection) return err(EOPNOTSUPP);
  if (!unp(so).addr.load(std::memory_order_acquire)) return err(EINVAL);
  MutexLocker g(so.lock_);
  if (so.state_ & (kSsConnected | kSsConnecting)) return err(EINVAL);
  bool grow = backlog > so.backlog_;
  so.backlog_ = backlog;
  so.state_ |= kSsListening;
  so.has_peercred_ = true;
  so.peercred_ = Socket::creds_of(l);
  if (grow && so.conn_waiters_) so.conn_cv_.broadcast();
  return {};
}

bool passcred(Socket& so) {
  MutexLocker g(so.lock_);
  return so.options_ & kSoPassCred;
}

Result<void> maybe_autobind(Socket& so) {
  UnpCb& u = unp(so);
  if (u.addr.load(std::memory_order_acquire) || !passcred(so)) return {};
  MutexLocker b(u.bind_lock);
  if (u.addr.load(std::memory_order_acquire)) return {};
  return autobind(net_state(so.kernel()), u);
}

Result<void> connect_stream(Lwp& l, Socket& so, const SockAddr& a, bool nonblock) {
  Ref<Socket> lso = TRY(lookup(l, a));
  if (lso->proto().type != so.proto().type) return err(EPROTOTYPE);
  TRY(maybe_autobind(so));
  int64_t timeo;
  // Our own state is checked after the listener's (Linux's order): a
  // connected or listening socket reports EISCONN or EINVAL only when the
  // listener would take the connection.
  int own_error = 0;
  {
    MutexLocker g(so.lock_);
    if (so.state_ & kSsConnected) own_error = EISCONN;
    else if (so.state_ & (kSsListening | kSsConnecting)) own_error = EINVAL;
    else so.state_ |= kSsConnecting;
    timeo = so.sndtimeo_ns_;  // bounds a wait for the backlog (Linux)
  }
  int error = 0;
  RefPtr<Socket> embryo;
  ScmCreds theirs;
  do {
    uint32_t inherit;
    {
      MutexLocker g(lso->lock_);
      if (!(lso->state_ & kSsListening) || (lso->state_ & (kSsClosed | kSsCantRcvMore))) {
        error = ECONNREFUSED;
        break;
      }
      if (own_error) {
        error = own_error;
        break;
      }
      inherit = lso->options_ & kSoPassCred;
    }
    Result<Ref<Socket>> er = Socket::create(l, so.domain(), so.proto());
    if (!er.ok()) {
      error = er.error();
      break;
    }
    embryo = er.value();
    // Not visible to anyone yet; the accepted socket answers getsockname
    // with the listener's name.
    if (SockAddr* la = unp(*lso).addr.load(std::memory_order_acquire)) {
      SockAddr* copy = new_addr(so.kernel().kmem(), *la);
      if (!copy) {
        error = ENOMEM;
        break;
      }
      unp(*embryo).addr.store(copy, std::memory_order_release);
    }
    {
      MutexLocker h(embryo->lock_);
      so.ref();
      unp(*embryo).peer = &so;
      embryo->state_ |= kSsConnected;
      embryo->has_peercred_ = true;
      embryo->peercred_ = Socket::creds_of(l);
      embryo->options_ = inherit;
    }
    MutexLocker g(lso->lock_);
    int64_t deadline = so_deadline(timeo);
    for (;;) {
      if (!(lso->state_ & kSsListening) || (lso->state_ & (kSsClosed | kSsCantRcvMore))) {
        error = ECONNREFUSED;
        break;
      }
      if (lso->accept_len_ <= lso->backlog_) break;
      if (nonblock) {
        error = EAGAIN;
        break;
      }
      if (int e = so_sleep(l, *lso, lso->conn_cv_, lso->conn_waiters_, deadline)) {
        error = e;
        break;
      }
    }
    if (error) break;
    theirs = lso->peercred_;
    embryo->ref();
    lso->accept_q_.push_back(*embryo);
    lso->accept_len_++;
    lso->wake_locked();
  } while (false);
  if (error) {
    if (embryo) {
      // Never queued: it goes quietly, without telling its would-be peer.
      Socket* p;
      {
        MutexLocker g(embryo->lock_);
        p = unp(*embryo).peer;
        unp(*embryo).peer = nullptr;
        embryo->state_ = kSsClosed;
      }
      if (p) p->unref();
    }
    if (!own_error) {
      MutexLocker g(so.lock_);
      so.state_ &= ~kSsConnecting;
    }
    return err(error);
  }
  MutexLocker g(so.lock_);
  embryo->ref();
  unp(so).peer = embryo.get();
  so.state_ = (so.state_ & ~kSsConnecting) | kSsConnected;
  so.has_peercred_ = true;
  so.peercred_ = theirs;
  so.wake_locked();
  return {};
}

Result<void> connect_dgram(Lwp& l, Socket& so, const SockAddr& a) {
  Socket* old = nullptr;
  if (a.len >= sizeof(sa_family_t) && a.family == AF_UNSPEC) {
    // Dissolves the association.
    {
      MutexLocker g(so.lock_);
      old = unp(so).peer;
      unp(so).peer = nullptr;
      so.state_ &= ~kSsConnected;
    }
    if (old) old->unref();
    return {};
  }
  Ref<Socket> target = TRY(lookup(l, a));
  if (target->proto().type != so.proto().type) return err(EPROTOTYPE);
  TRY(maybe_autobind(so));
  {
    MutexLocker g(so.lock_);
    old = unp(so).peer;
    unp(so).peer = target.leak();
    so.state_ |= kSsConnected;
  }
  if (old) old->unref();
  return {};
}

Result<void> unp_connect(Lwp& l, Socket& so, const SockAddr& a, bool nonblock) {
  if (!so.proto().connection) return connect_dgram(l, so, a);
  if (a.len <= kSunPathOff || a.un.sun_family != AF_UNIX) return err(EINVAL);
  return connect_stream(l, so, a, nonblock);
}

Result<void> unp_connect2(Lwp& l, Socket& a, Socket& b) {
  ScmCreds me = Socket::creds_of(l);
  for (Socket* s : {&a, &b}) {
    Socket* other = s == &a ? &b : &a;
    MutexLocker g(s->lock_);
    other->ref();
    unp(*s).peer = other;
    s->state_ |= kSsConnected;
    s->has_peercred_ = true;
    s->peercred_ = me;
  }
  return {};
}

void disconnect_from(Socket& so, Socket& dead) {
  Socket* old = nullptr;
  {
    MutexLocker g(so.lock_);
    if (unp(so).peer == &dead) {
      old = unp(so).peer;
      unp(so).peer = nullptr;
      so.state_ &= ~kSsConnected;
    }
  }
  if (old) old->unref();
}

Result<void> unp_send(Lwp& l, Socket& so, SockRecord* rec, const SockAddr* to, bool nonblock) {
  const Protosw& pr = so.proto();
  RefPtr<Socket> target;
  int64_t timeo;
  Socket* p;
  {
    MutexLocker g(so.lock_);
    timeo = so.sndtimeo_ns_;
    p = to ? nullptr : unp(so).peer;
    if (p) p->ref();
  }
  if (to) {
    target = TRY(lookup(l, *to));
    if (target->proto().type != pr.type) return err(EPROTOTYPE);
  } else {
    if (!p) return err(pr.connection ? EPIPE : ENOTCONN);
    target = adopt_ref(p);
  }
  if (!pr.stream && !pr.connection) TRY(maybe_autobind(so));
  Socket& t = *target;
  bool dead_peer = false;
  bool wake = false;
  int error = 0;
  {
    MutexLocker g(t.lock_);
    int64_t deadline = so_deadline(timeo);
    for (;;) {
      if (t.state_ & kSsClosed) {
        if (pr.connection) {
          error = EPIPE;
        } else {
          dead_peer = !to;
          error = ECONNREFUSED;
        }
        break;
      }
      if (!pr.connection && unp(t).peer && unp(t).peer != &so) {
        error = EPERM;
        break;
      }
      if (t.state_ & kSsCantRcvMore) {
        error = EPIPE;
        break;
      }
      if (pr.connection || unp(t).peer == &so ||
          static_cast<int>(t.rcv_count_) <= net_state(t.kernel()).max_dgram_qlen)
        break;
      if (nonblock) {
        error = EAGAIN;
        break;
      }
      if (int e = so_sleep(l, t, t.conn_cv_, t.conn_waiters_, deadline)) {
        error = e;
        break;
      }
    }
    if (!error) {
      if (!rec->has_creds && (t.options_ & kSoPassCred)) {
        rec->has_creds = true;
        rec->creds = Socket::creds_of(l);
      }
      wake = t.deliver_locked_deferred(rec);
    }
  }
  // target's reference keeps t (and its condition variable) alive.
  if (wake) t.wake_receiver();
  if (dead_peer) disconnect_from(so, t);
  if (error) return err(error);
  return {};
}

Result<void> unp_shutdown(Socket& so, int how) {
  uint32_t mine = 0, theirs = 0;
  if (how == SHUT_RD || how == SHUT_RDWR) mine |= kSsCantRcvMore, theirs |= kSsCantSendMore;
  if (how == SHUT_WR || how == SHUT_RDWR) mine |= kSsCantSendMore, theirs |= kSsCantRcvMore;
  Socket* peer;
  {
    MutexLocker g(so.lock_);
    so.state_ |= mine;
    so.wake_locked();
    peer = unp(so).peer;
    if (peer) peer->ref();
  }
  if (peer) {
    if (so.proto().connection) {
      MutexLocker g(peer->lock_);
      peer->state_ |= theirs;
      peer->wake_locked();
    }
    peer->unref();
  }
  return {};
}

void unp_sockname(Socket& so, SockAddr& a) {
  if (SockAddr* b = unp(so).addr.load(std::memory_order_acquire)) {
    a = *b;
    return;
  }
  a = SockAddr();
  a.un.sun_family = AF_UNIX;
  a.len = kSunPathOff;
}

Result<void> unp_peername(Socket& so, SockAddr& a) {
  Socket* p;
  {
    MutexLocker g(so.lock_);
    if (!(so.state_ & kSsConnected) || !unp(so).peer) return err(ENOTCONN);
    p = unp(so).peer;
    p->ref();
  }
  unp_sockname(*p, a);
  p->unref();
  return {};
}

short unp_poll_locked(Socket& so) ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_) {
  short mask = 0;
  uint32_t s = so.state_;
  if (so.error_) mask |= POLLERR;
  if ((s & kSsCantRcvMore) && (s & kSsCantSendMore)) mask |= POLLHUP;
  if (s & kSsCantRcvMore) mask |= POLLRDHUP | POLLIN | POLLRDNORM;
  if (!so.rcv_.empty() || so.accept_len_ > 0) mask |= POLLIN | POLLRDNORM;
  if (so.proto().connection && !(s & (kSsConnected | kSsListening))) mask |= POLLHUP;
  if (!(s & kSsListening) && so.snd_cc_ * 4 <= static_cast<size_t>(so.sndbuf_))
    mask |= POLLOUT | POLLWRNORM | POLLWRBAND;
  return mask;
}

bool unp_wants_creds(Socket& so) { return passcred(so); }

// A datagram's source is its sender's name at the time it is received
// (Linux reads the sending socket's address then); none for an unnamed
// sender.
void unp_source_name(SockRecord& r, SockAddr& a) {
  a = SockAddr();
  a.len = 0;
  if (!r.sender) return;
  if (SockAddr* b = unp(*r.sender).addr.load(std::memory_order_acquire)) a = *b;
}

Result<void> unp_check_addr(const void* raw, socklen_t len, SockAddr& a) {
  if (len > sizeof(sockaddr_un)) return err(EINVAL);
  std::memcpy(a.bytes, raw, len);
  a.len = len;
  return {};
}

// A stream's one copy into its peer's waiting reader (socket.h).
Result<size_t> unp_send_direct(Lwp& l, Socket& so, Uio& uio, size_t max, bool wait) {
  Socket* p;
  {
    MutexLocker g(so.lock_);
    p = unp(so).peer;
    if (!p) return size_t{0};
    p->ref();
  }
  RefPtr<Socket> target = adopt_ref(p);
  int src_error = 0;
  size_t moved = target->fill_direct(l, uio, max, wait, &src_error);
  if (moved == 0 && src_error) return err(src_error);
  return moved;
}

#define UNP_HOOKS                                                                                       \
  &unp_attach, &unp_detach, &unp_bind, &unp_listen, &unp_connect, &unp_connect2, &unp_send, &unp_shutdown, \
      &unp_sockname, &unp_peername, &unp_poll_locked, &unp_wants_creds, &unp_source_name, &free_pcb

const Protosw g_unp_protos[] = {
    {SOCK_STREAM, 0, true, true, UNP_HOOKS, nullptr, nullptr, nullptr, &unp_send_direct},
    {SOCK_DGRAM, 0, false, false, UNP_HOOKS},
    {SOCK_SEQPACKET, 0, false, true, UNP_HOOKS},
};
const Domain g_local_domain{AF_UNIX, g_unp_protos, 3, &unp_check_addr, &unp_internalize, &unp_dispose};
const DomainRegistrar g_local_registrar(&g_local_domain);

}  // namespace

NetState::NetState(Kernel& k) : kernel(k), names_(k.kmem()) {}

void NetState::unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  g_net_state.take(kernel);
  delete this;
}

bool is_local_socket(Socket& so) { return so.domain().family == AF_UNIX; }

NetState& net_state(Kernel& k) { return *g_net_state.get(k); }

}  // namespace rump
