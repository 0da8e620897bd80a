// AF_NETLINK sockets of protocol NETLINK_ROUTE (see netlink.h): the
// domain, port ids, groups, options, the send path that frames requests
// for rtnetlink.cc, and the receive path that hands a dump on in pieces.
#include "net/inet/netlink.h"

#include <poll.h>

#include "kern/kernel.h"
#include "kern/proc.h"
#include "net/inet/inet_sock.h"

namespace rump {

namespace {

// The size of the records a dump is cut into (Linux's NLMSG_GOODSIZE on
// 4 KiB pages is a little less; every message fits).
constexpr size_t kDumpChunk = 4096;
// What recvmsg reports as the source of a record, after its bytes.
struct NlTrailer {
  uint32_t portid;
  uint32_t groups;  // the group as a mask (sockaddr_nl.nl_groups)
};
constexpr int kMaxGroups = 64;

enum NlFlags : uint32_t {
  kNlPktinfo = 1,
  kNlBroadcastError = 2,
  kNlNoEnobufs = 4,
  kNlListenAllNsid = 8,
  kNlCapAck = 16,
  kNlExtAck = 32,
  kNlStrict = 64,
};

struct NlCb : public KObject {
  explicit NlCb(InetState& s) : st(s) {}
  NetlinkLink link;
  InetState& st;
  // Port id and groups: written under st.nl_lock_; groups also read by
  // getsockopt and getsockname without it.
  uint32_t portid = 0;
  bool bound = false;
  std::atomic<uint64_t> groups{0};
  // connect(2)'s default destination (kernel: 0, 0).
  std::atomic<uint32_t> dst_portid{0}, dst_group{0};
  std::atomic<uint32_t> flags{0};
  // The rest of a dump, not yet on the receive buffer (the socket's lock).
  SockRecordList dump;
};

NlCb& nl_cb(Socket& so) { return *static_cast<NlCb*>(so.pcb_); }

uint32_t group_mask(uint32_t group) { return group && group <= 32 ? 1u << (group - 1) : 0; }

Result<void> nl_check_addr(const void* raw, socklen_t len, SockAddr& a) {
  if (len < sizeof(sa_family_t)) return err(EINVAL);
  sa_family_t f;
  std::memcpy(&f, raw, sizeof f);
  if (f == AF_UNSPEC) {  // connect(AF_UNSPEC): disconnect
    a.len = sizeof(sa_family_t);
    a.family = AF_UNSPEC;
    return {};
  }
  if (f != AF_NETLINK || len < sizeof(sockaddr_nl)) return err(EINVAL);
  std::memcpy(a.bytes, raw, sizeof(sockaddr_nl));
  a.len = sizeof(sockaddr_nl);
  return {};
}

sockaddr_nl nl_addr(const SockAddr& a) {
  sockaddr_nl n;
  std::memcpy(&n, a.bytes, sizeof n);
  return n;
}

void set_groups_locked(InetState& st, NlCb& cb, uint64_t g) ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.nl_lock_) {
  uint64_t old = cb.groups.exchange(g);
  if (!old && g) st.nl_listeners_.fetch_add(1);
  if (old && !g) st.nl_listeners_.fetch_sub(1);
}

bool port_taken_locked(InetState& st, uint32_t portid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.nl_lock_) {
  for (NetlinkLink& x : st.nl_socks_) {
    NlCb& o = nl_cb(*x.so);
    if (o.bound && o.portid == portid) return true;
  }
  return false;
}

// netlink_autobind: the process id if free, else negative ids from -4096
// down.
void autobind_locked(Lwp& l, InetState& st, NlCb& cb) ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.nl_lock_) {
  if (cb.bound) return;
  uint32_t id = static_cast<uint32_t>(l.proc().pid());
  while (port_taken_locked(st, id)) {
    id = static_cast<uint32_t>(st.nl_rover_--);
    if (st.nl_rover_ > -4096) st.nl_rover_ = -4096;  // wrapped
  }
  cb.portid = id;
  cb.bound = true;
}

uint32_t autobind(Lwp& l, NlCb& cb) {
  MutexLocker g(cb.st.nl_lock_);
  autobind_locked(l, cb.st, cb);
  return cb.portid;
}

Result<void> nl_attach(Socket& so) {
  InetState* st = TRY(inet_state(so.kernel()));
  auto* cb = new (so.kernel().kmem()) NlCb(*st);
  if (!cb) return err(ENOMEM);
  st->ref();
  cb->link.so = &so;
  so.pcb_ = cb;
  MutexLocker g(st->nl_lock_);
  st->nl_socks_.push_back(cb->link);
  return {};
}

void unlink(NlCb& cb) {
  MutexLocker g(cb.st.nl_lock_);
  if (!cb.link.hook.is_linked()) return;
  set_groups_locked(cb.st, cb, 0);
  cb.st.nl_socks_.erase(cb.st.nl_socks_.iterator_to(cb.link));
}

void nl_detach(Socket& so) {
  NlCb& cb = nl_cb(so);
  unlink(cb);
  SockRecordList left;
  {
    MutexLocker g(so.lock_);
    left.splice(left.end(), cb.dump);
    so.state_ |= kSsClosed | kSsCantRcvMore | kSsCantSendMore;
    so.wake_locked();
  }
  left.clear_and_dispose(&SockRecord::dispose);
}

void nl_free_pcb(Socket& so) {
  auto* cb = static_cast<NlCb*>(so.pcb_);
  if (!cb) return;
  unlink(*cb);
  cb->dump.clear_and_dispose(&SockRecord::dispose);
  InetState& st = cb->st;
  so.pcb_ = nullptr;
  delete cb;
  st.unref();
}

Result<void> nl_bind(Lwp& l, Socket& so, const SockAddr& a) {
  if (a.family != AF_NETLINK) return err(EINVAL);
  sockaddr_nl n = nl_addr(a);
  NlCb& cb = nl_cb(so);
  InetState& st = cb.st;
  MutexLocker g(st.nl_lock_);
  if (cb.bound) {
    if (n.nl_pid != cb.portid) return err(EINVAL);
  } else if (n.nl_pid) {
    if (port_taken_locked(st, n.nl_pid)) return err(EADDRINUSE);
    cb.portid = n.nl_pid;
    cb.bound = true;
  } else {
    autobind_locked(l, st, cb);
  }
  set_groups_locked(st, cb, (cb.groups.load() & ~uint64_t{0xffffffff}) | n.nl_groups);
  return {};
}

Result<void> nl_connect(Lwp& l, Socket& so, const SockAddr& a, bool) {
  NlCb& cb = nl_cb(so);
  if (a.family == AF_UNSPEC) {
    cb.dst_portid = 0;
    cb.dst_group = 0;
    return {};
  }
  sockaddr_nl n = nl_addr(a);
  if ((n.nl_groups || n.nl_pid) && !l.cred().is_root()) return err(EPERM);
  autobind(l, cb);
  cb.dst_portid = n.nl_pid;
  cb.dst_group = static_cast<uint32_t>(__builtin_ffs(static_cast<int>(n.nl_groups)));
  return {};
}

Result<void> nl_connect2(Lwp&, Socket&, Socket&) { return err(EOPNOTSUPP); }
Result<void> nl_listen(Lwp&, Socket&, int) { return err(EOPNOTSUPP); }
Result<void> nl_send(Lwp&, Socket&, SockRecord*, const SockAddr*, bool) { return err(EOPNOTSUPP); }
Result<void> nl_shutdown(Socket&, int) { return err(EOPNOTSUPP); }

void fill_name(uint32_t portid, uint32_t groups, SockAddr& a) {
  sockaddr_nl n{};
  n.nl_family = AF_NETLINK;
  n.nl_pid = portid;
  n.nl_groups = groups;
  std::memcpy(a.bytes, &n, sizeof n);
  a.len = sizeof n;
}

void nl_sockname(Socket& so, SockAddr& a) {
  NlCb& cb = nl_cb(so);
  uint32_t portid;
  {
    MutexLocker g(cb.st.nl_lock_);
    portid = cb.portid;
  }
  fill_name(portid, static_cast<uint32_t>(cb.groups.load()), a);
}

Result<void> nl_peername(Socket& so, SockAddr& a) {
  NlCb& cb = nl_cb(so);
  fill_name(cb.dst_portid, group_mask(cb.dst_group), a);
  return {};
}

void nl_source_name(SockRecord& r, SockAddr& a) {
  NlTrailer t;
  std::memcpy(&t, r.data + r.len, sizeof t);
  fill_name(t.portid, t.groups, a);
}

bool no_creds(Socket&) { return false; }

Result<void> nl_ctloutput(Lwp& l, Socket& so, SockOptArg& o) {
  if (o.level != SOL_NETLINK) return err(ENOPROTOOPT);
  NlCb& cb = nl_cb(so);
  uint32_t bit = 0;
  switch (o.name) {
    case NETLINK_PKTINFO: bit = kNlPktinfo; break;
    case NETLINK_BROADCAST_ERROR: bit = kNlBroadcastError; break;
    case NETLINK_NO_ENOBUFS: bit = kNlNoEnobufs; break;
    case NETLINK_LISTEN_ALL_NSID: bit = kNlListenAllNsid; break;
    case NETLINK_CAP_ACK: bit = kNlCapAck; break;
    case NETLINK_EXT_ACK: bit = kNlExtAck; break;
    case NETLINK_GET_STRICT_CHK: bit = kNlStrict; break;
    case NETLINK_ADD_MEMBERSHIP:
    case NETLINK_DROP_MEMBERSHIP:
    case NETLINK_LIST_MEMBERSHIPS: break;
    default: return err(ENOPROTOOPT);
  }
  if (o.set) {
    if (o.len < sizeof(int)) return err(EINVAL);
    int v;
    std::memcpy(&v, o.val, sizeof v);
    if (o.name == NETLINK_ADD_MEMBERSHIP || o.name == NETLINK_DROP_MEMBERSHIP) {
      if (o.name == NETLINK_LIST_MEMBERSHIPS) return err(ENOPROTOOPT);
      uint32_t g = static_cast<uint32_t>(v);
      if (g == 0 || g > kMaxGroups) return err(EINVAL);
      uint64_t m = uint64_t{1} << (g - 1);
      MutexLocker lk(cb.st.nl_lock_);
      uint64_t now = cb.groups.load();
      set_groups_locked(cb.st, cb, o.name == NETLINK_ADD_MEMBERSHIP ? now | m : now & ~m);
      return {};
    }
    if (o.name == NETLINK_LIST_MEMBERSHIPS) return err(ENOPROTOOPT);
    if (o.name == NETLINK_LISTEN_ALL_NSID && v && !l.cred().is_root()) return err(EPERM);
    if (v) cb.flags.fetch_or(bit);
    else cb.flags.fetch_and(~bit);
    return {};
  }
  if (o.name == NETLINK_ADD_MEMBERSHIP || o.name == NETLINK_DROP_MEMBERSHIP) return err(ENOPROTOOPT);
  if (o.name == NETLINK_LIST_MEMBERSHIPS) {
    // The groups as an array of u32 masks; len reports what it takes.
    uint64_t g = cb.groups.load();
    uint32_t words[2] = {static_cast<uint32_t>(g), static_cast<uint32_t>(g >> 32)};
    size_t n = o.len < sizeof words ? o.len / 4 * 4 : sizeof words;
    std::memcpy(o.val, words, n);
    o.len = sizeof words;
    return {};
  }
  if (o.len < sizeof(int)) return err(EINVAL);
  int v = (cb.flags.load() & bit) ? 1 : 0;
  std::memcpy(o.val, &v, sizeof v);
  o.len = sizeof v;
  return {};
}

// Moves dump records onto the receive buffer while there is room (one at
// least when it is empty), as netlink_dump runs after each read.
void pump_dump(Socket& so) {
  NlCb& cb = nl_cb(so);
  MutexLocker g(so.lock_);
  bool moved = false;
  while (!cb.dump.empty()) {
    SockRecord& r = cb.dump.front();
    if (so.rcv_cc_ && so.rcv_cc_ + r.len > static_cast<size_t>(so.rcvbuf_)) break;
    cb.dump.pop_front();
    if (so.deliver_locked_deferred(&r)) moved = true;
  }
  if (moved) so.wake_receiver();
}

// Queues replies on the requester, as netlink_unicast from the kernel
// does: a full receive buffer drops them and reports ENOBUFS (unless
// NETLINK_NO_ENOBUFS).
void queue_replies(Socket& so, SockRecordList& recs) {
  NlCb& cb = nl_cb(so);
  SockRecordList dropped;
  {
    MutexLocker g(so.lock_);
    while (!recs.empty()) {
      SockRecord& r = recs.front();
      recs.pop_front();
      if (so.rcv_cc_ > static_cast<size_t>(so.rcvbuf_)) {
        dropped.push_back(r);
        if (!(cb.flags.load() & kNlNoEnobufs)) so.error_ = ENOBUFS;
        so.wake_locked();
        continue;
      }
      so.deliver_locked(&r);
    }
  }
  dropped.clear_and_dispose(&SockRecord::dispose);
}

// What an extended ACK carries (NETLINK_EXT_ACK): a message and, for an
// error, the offset of the attribute at fault in the request.
struct ExtAck {
  const char* msg = nullptr;
  uint32_t offs = 0;  // 0: none
};

size_t ext_ack_len(const ExtAck& x, int error) {
  size_t n = 0;
  if (x.msg) n += NLA_ALIGN(NLA_HDRLEN + std::strlen(x.msg) + 1);
  if (error && x.offs) n += NLA_ALIGN(NLA_HDRLEN + 4);
  return n;
}

// Writes one attribute at p (zeroed, room made); returns what it took.
size_t put_tlv(char* p, uint16_t type, const void* data, size_t len) {
  nlattr a{static_cast<uint16_t>(NLA_HDRLEN + len), type};
  std::memcpy(p, &a, sizeof a);
  std::memcpy(p + NLA_HDRLEN, data, len);
  return NLA_ALIGN(NLA_HDRLEN + len);
}

// netlink_ack: NLMSG_ERROR with the errno (0: an acknowledgement) and the
// request's header, or the whole request for an error unless
// NETLINK_CAP_ACK, then the extended ACK's attributes (NLM_F_ACK_TLVS).
Result<void> put_ack(NlOut& out, const nlmsghdr& h, size_t len, int error, uint32_t portid, bool cap,
                     const ExtAck& ext = {}) {
  bool whole = error && !cap;
  size_t payload = sizeof(nlmsgerr) + (whole ? len - NLMSG_HDRLEN : 0);
  size_t tlvs = ext_ack_len(ext, error);
  size_t total = NLMSG_HDRLEN + NLMSG_ALIGN(payload) + tlvs;
  char small[NLMSG_HDRLEN + sizeof(nlmsgerr)];
  char* buf = small;
  void* big = nullptr;
  if (total > sizeof small) {
    big = out.kmem().alloc(total);
    if (!big) return err(ENOMEM);
    buf = static_cast<char*>(big);
  }
  std::memset(buf, 0, total);
  nlmsghdr r{};
  r.nlmsg_len = static_cast<uint32_t>(total);
  r.nlmsg_type = NLMSG_ERROR;
  r.nlmsg_flags = static_cast<uint16_t>((whole ? 0 : NLM_F_CAPPED) | (tlvs ? NLM_F_ACK_TLVS : 0));
  r.nlmsg_seq = h.nlmsg_seq;
  r.nlmsg_pid = portid;
  std::memcpy(buf, &r, sizeof r);
  nlmsgerr e{};
  e.error = -error;
  e.msg = h;
  std::memcpy(buf + NLMSG_HDRLEN, &e, sizeof e);
  if (whole) std::memcpy(buf + NLMSG_HDRLEN + sizeof e, reinterpret_cast<const char*>(&h) + NLMSG_HDRLEN, len - NLMSG_HDRLEN);
  char* t = buf + NLMSG_HDRLEN + NLMSG_ALIGN(payload);
  if (ext.msg) t += put_tlv(t, NLMSGERR_ATTR_MSG, ext.msg, std::strlen(ext.msg) + 1);
  if (error && ext.offs) t += put_tlv(t, NLMSGERR_ATTR_OFFS, &ext.offs, 4);
  Result<void> res = out.add(buf, total);
  if (big) Kmem::free(big);
  return res;
}

}  // namespace

// --- messages

Result<void> NlOut::add(const void* msg, size_t len) {
  if (cur_ && cur_->len + len > chunk_) finish();
  if (!cur_) {
    size_t room = len > chunk_ ? len : chunk_;
    cur_ = SockRecord::alloc(km_, room + sizeof(NlTrailer));
    if (!cur_) return err(ENOMEM);
    cur_->len = 0;
  }
  std::memcpy(cur_->data + cur_->len, msg, len);
  cur_->len += static_cast<uint32_t>(len);
  return {};
}

void NlOut::finish() {
  if (!cur_) return;
  NlTrailer t{0, group_mask(group_)};
  std::memcpy(cur_->data + cur_->len, &t, sizeof t);
  recs_.push_back(*cur_);
  cur_ = nullptr;
}

NlMsg::NlMsg(uint16_t type, uint16_t flags, uint32_t seq, uint32_t pid) {
  std::memset(buf_, 0, sizeof buf_);
  nlmsghdr* h = hdr();
  h->nlmsg_type = type;
  h->nlmsg_flags = flags;
  h->nlmsg_seq = seq;
  h->nlmsg_pid = pid;
  len_ = NLMSG_HDRLEN;
  h->nlmsg_len = static_cast<uint32_t>(len_);
}

void* NlMsg::reserve(size_t n) {
  size_t a = NLMSG_ALIGN(n);
  // Every message rtnetlink builds fits; a bug that overran would be a
  // kernel invariant broken, not bad input.
  if (len_ + a > kMax) panic("netlink: message over %zu bytes", kMax);
  void* p = buf_ + len_;
  len_ += a;
  hdr()->nlmsg_len = static_cast<uint32_t>(len_);
  return p;
}

void NlMsg::put(uint16_t type, const void* data, size_t len) {
  nlattr a{};
  a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
  a.nla_type = type;
  char* p = static_cast<char*>(reserve(NLA_HDRLEN + len));
  std::memcpy(p, &a, sizeof a);
  if (len) std::memcpy(p + NLA_HDRLEN, data, len);
  // The message's length counts the attribute's padding but not an
  // unaligned tail of the last one: Linux's nla_put pads, so do we.
}

void nl_parse(const char* attrs, size_t len, NlAttrs& out) {
  size_t off = 0;
  while (len - off >= NLA_HDRLEN) {
    nlattr a;
    std::memcpy(&a, attrs + off, sizeof a);
    if (a.nla_len < NLA_HDRLEN || a.nla_len > len - off) break;
    int t = a.nla_type & NLA_TYPE_MASK;
    if (t < NlAttrs::kMax) out.tb[t] = reinterpret_cast<const nlattr*>(attrs + off);
    size_t step = NLA_ALIGN(a.nla_len);
    if (step > len - off) break;
    off += step;
  }
}

void nl_multicast(InetState& st, uint32_t group, const NlMsg& msg) {
  if (st.nl_listeners_.load(std::memory_order_acquire) == 0 || group == 0 || group > kMaxGroups) return;
  uint64_t bit = uint64_t{1} << (group - 1);
  Kmem& km = st.kernel.kmem();
  MutexLocker g(st.nl_lock_);
  for (NetlinkLink& x : st.nl_socks_) {
    Socket& so = *x.so;
    NlCb& cb = nl_cb(so);
    if (!(cb.groups.load() & bit)) continue;
    NlOut out(km, msg.len(), group);
    if (!out.add(msg.data(), msg.len()).ok()) continue;
    out.finish();
    queue_replies(so, out.records());
  }
}

namespace {

// Serves the messages of one send, in turn (netlink_rcv_skb): a header
// that does not fit ends the batch without a word, as Linux's does.
void serve(Lwp& l, Socket& so, NlCb& cb, const char* buf, size_t len, uint32_t portid) {
  Kmem& km = so.kernel().kmem();
  NlOut out(km, kDumpChunk);
  size_t off = 0;
  while (len - off >= NLMSG_HDRLEN) {
    const auto* h = reinterpret_cast<const nlmsghdr*>(buf + off);
    if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > len - off) break;
    int error = 0;
    bool ack = true;
    ExtAck ext;
    if ((h->nlmsg_flags & NLM_F_REQUEST) && h->nlmsg_type >= NLMSG_MIN_TYPE) {
      bool busy;
      {
        MutexLocker g(so.lock_);
        busy = !cb.dump.empty();
      }
      NlOut dump(km, kDumpChunk);
      NlRequest rq{l, so, cb.st, *h, h->nlmsg_len, portid, (cb.flags.load() & kNlStrict) != 0};
      error = rtnl_rcv_msg(rq, out, dump);
      if (cb.flags.load() & kNlExtAck) {
        ext.msg = rq.ext_msg;
        if (rq.ext_attr) ext.offs = static_cast<uint32_t>(reinterpret_cast<const char*>(rq.ext_attr) - (buf + off));
      }
      if (error == kNlDumpStarted) {
        ack = false;
        error = 0;
        if (busy) {
          error = EBUSY;
          ack = true;
        } else {
          // Replies so far first, then the dump in pieces.
          out.finish();
          queue_replies(so, out.records());
          dump.finish();
          {
            MutexLocker g(so.lock_);
            cb.dump.splice(cb.dump.end(), dump.records());
          }
          pump_dump(so);
        }
      }
    }
    if (ack && (error || (h->nlmsg_flags & NLM_F_ACK)))
      (void)put_ack(out, *h, h->nlmsg_len, error, portid, (cb.flags.load() & kNlCapAck) != 0, ext);
    size_t step = NLMSG_ALIGN(h->nlmsg_len);
    off += step < len - off ? step : len - off;
  }
  out.finish();
  queue_replies(so, out.records());
}

Result<size_t> nl_send_msg(Lwp& l, Socket& so, SockMsg& m, int, bool) {
  NlCb& cb = nl_cb(so);
  uint32_t dst_portid = cb.dst_portid, dst_group = cb.dst_group;
  if (m.to) {
    if (m.to->family != AF_NETLINK) return err(EINVAL);
    sockaddr_nl n = nl_addr(*m.to);
    dst_portid = n.nl_pid;
    dst_group = static_cast<uint32_t>(__builtin_ffs(static_cast<int>(n.nl_groups)));
    if ((dst_group || dst_portid) && !l.cred().is_root()) return err(EPERM);
  }
  uint32_t portid = autobind(l, cb);
  size_t len = m.uio->resid;
  int sndbuf;
  {
    MutexLocker g(so.lock_);
    sndbuf = so.sndbuf_;
  }
  if (len > static_cast<size_t>(sndbuf) - 32) return err(EMSGSIZE);
  Kmem& km = so.kernel().kmem();
  char* buf = static_cast<char*>(km.alloc(len ? len : 1));
  if (!buf) return err(ENOMEM);
  Result<void> c = m.uio->copyin(buf, len);
  if (!c.ok()) {
    Kmem::free(buf);
    return err(c.error());
  }
  if (dst_portid || dst_group) {
    // To other sockets: the bytes as they are, from our port.
    SockRecordList recs;
    MutexLocker g(cb.st.nl_lock_);
    bool found = false;
    for (NetlinkLink& x : cb.st.nl_socks_) {
      NlCb& o = nl_cb(*x.so);
      bool to_port = dst_portid && o.bound && o.portid == dst_portid;
      bool to_group = dst_group && (o.groups.load() & (uint64_t{1} << (dst_group - 1))) && x.so != &so;
      if (!to_port && !to_group) continue;
      found = found || to_port;
      SockRecord* r = SockRecord::alloc(km, len + sizeof(NlTrailer));
      if (!r) continue;
      r->len = static_cast<uint32_t>(len);
      std::memcpy(r->data, buf, len);
      NlTrailer t{portid, group_mask(dst_group)};
      std::memcpy(r->data + len, &t, sizeof t);
      SockRecordList one;
      one.push_back(*r);
      queue_replies(*x.so, one);
    }
    Kmem::free(buf);
    if (dst_portid && !found) return err(ECONNREFUSED);
    return len;
  }
  serve(l, so, cb, buf, len, portid);
  Kmem::free(buf);
  return len;
}

Result<size_t> nl_recv_msg(Lwp& l, Socket& so, SockMsg& m, int flags, bool nonblock) {
  Result<size_t> r = so_receive_records(l, so, m, flags, nonblock);
  if (!(flags & MSG_PEEK)) pump_dump(so);
  return r;
}

Protosw make_protosw(int type) {
  Protosw p{};
  p.type = type;
  p.protocol = NETLINK_ROUTE;
  p.stream = false;
  p.connection = false;
  p.attach = &nl_attach;
  p.detach = &nl_detach;
  p.bind = &nl_bind;
  p.listen = &nl_listen;
  p.connect = &nl_connect;
  p.connect2 = &nl_connect2;
  p.send = &nl_send;
  p.shutdown = &nl_shutdown;
  p.sockname = &nl_sockname;
  p.peername = &nl_peername;
  p.poll_locked = &inet_dgram_poll_locked;
  p.wants_creds = &no_creds;
  p.source_name = &nl_source_name;
  p.free_pcb = &nl_free_pcb;
  p.send_msg = &nl_send_msg;
  p.ctloutput = &nl_ctloutput;
  p.recv_msg = &nl_recv_msg;
  return p;
}

void no_file(File&) {}

const Protosw kNlProtos[] = {make_protosw(SOCK_RAW), make_protosw(SOCK_DGRAM)};
const Domain kNlDomain{AF_NETLINK, kNlProtos, 2, &nl_check_addr, &no_file, &no_file};
const DomainRegistrar g_nl_registrar(&kNlDomain);

}  // namespace

}  // namespace rump
