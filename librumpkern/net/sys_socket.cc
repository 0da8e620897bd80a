// The socket system calls: socket, socketpair, bind, listen, accept,
// accept4, connect, shutdown, sendto, recvfrom, sendmsg, recvmsg,
// sendmmsg, recvmmsg, getsockopt, setsockopt, getsockname, getpeername.
// User structures (sockaddr, msghdr, cmsghdr, ucred, linger, timeval) are
// Linux x86-64's and move only through copyin/copyout.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <climits>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/proc.h"
#include "kern/syscall_protos.h"
#include "net/socket.h"
#include "vfs/vfs.h"

namespace rump {

namespace {

constexpr int kSockMax = 11;      // SOCK_MAX
constexpr int kAfMax = 46;        // AF_MAX
constexpr int kSomaxconn = 4096;  // net.core.somaxconn
constexpr int kIovMax = 1024;
constexpr int kScmMaxFd = 253;
constexpr size_t kOptmemMax = 20480;  // net.core.optmem_max
constexpr int kWmemMax = 212992, kRmemMax = 212992;
constexpr int kMinSndbuf = 4608, kMinRcvbuf = 2304;

Result<Ref<Socket>> sock_get(Lwp& l, int fd, Ref<File>* file = nullptr) {
  Ref<File> f = TRY(fd_get(l, fd));
  Socket* so = file_socket(*f);
  if (!so) return err(ENOTSOCK);
  Ref<Socket> r(*so);
  if (file) *file = std::move(f);
  return r;
}

// move_addr_to_kernel, then the domain's own check.
Result<void> addr_in(Lwp& l, Socket& so, uintptr_t uaddr, socklen_t len, SockAddr& a) {
  if (static_cast<int>(len) < 0 || len > sizeof(sockaddr_storage)) return err(EINVAL);
  sockaddr_storage raw{};
  if (len) TRY(copyin(l, uaddr, &raw, len));
  return so.domain().check_addr(&raw, len, a);
}

// move_addr_to_user: copies what fits and reports the full length.
Result<void> addr_out(Lwp& l, const SockAddr& a, uintptr_t uaddr, UserPtr<socklen_t> ulen) {
  socklen_t len = TRY(copyin_obj(l, ulen));
  if (static_cast<int>(len) < 0) return err(EINVAL);
  if (len > a.len) len = a.len;
  if (len) TRY(copyout(l, a.bytes, uaddr, len));
  TRY(copyout_obj(l, a.len, ulen));
  return {};
}

Result<long> install(Lwp& l, Socket& so, int flags) {
  Ref<File> f = TRY(socket_file(l.kernel().kmem(), so, flags & SOCK_NONBLOCK));
  return TRY(fd_install(l, std::move(f), flags & SOCK_CLOEXEC));
}

Result<const Protosw*> find_proto(int domain, int& type, int protocol) {
  if (domain < 0 || domain >= kAfMax) return err(EAFNOSUPPORT);
  const Domain* d = find_domain(domain);
  if (!d) return err(EAFNOSUPPORT);
  if (type < 0 || type >= kSockMax) return err(EINVAL);
  if (domain == AF_UNIX) {
    if (protocol && protocol != AF_UNIX) return err(EPROTONOSUPPORT);
    if (type == SOCK_RAW) type = SOCK_DGRAM;  // Linux's AF_UNIX takes SOCK_RAW as SOCK_DGRAM
    protocol = 0;
  }
  // A protocol entry of number -1 takes any nonzero protocol (raw IP);
  // others take 0 or their own number.
  bool type_known = false;
  for (int i = 0; i < d->nprotos; i++) {
    const Protosw& p = d->protos[i];
    if (p.type != type) continue;
    type_known = true;
    if (p.protocol == -1 ? protocol > 0 && protocol < 256 : (protocol == 0 || protocol == p.protocol)) return &p;
  }
  return err(type_known ? EPROTONOSUPPORT : ESOCKTNOSUPPORT);
}

void free_rights(ScmRights* r) { scm_rights_free(r); }

// __scm_send: the SOL_SOCKET control messages of a sendmsg.
Result<void> parse_control(Lwp& l, Socket& so, const char* buf, size_t len, SockMsg& m) {
  Kmem& km = l.kernel().kmem();
  size_t off = 0;
  while (off + sizeof(cmsghdr) <= len) {
    cmsghdr h;
    std::memcpy(&h, buf + off, sizeof h);
    if (h.cmsg_len < sizeof(cmsghdr) || h.cmsg_len > len - off) return err(EINVAL);
    const char* data = buf + off + CMSG_LEN(0);
    size_t dlen = h.cmsg_len - CMSG_LEN(0);
    if (h.cmsg_level == SOL_SOCKET) {
      switch (h.cmsg_type) {
        case SCM_RIGHTS: {
          if (so.domain().family != AF_UNIX) return err(EINVAL);
          int n = static_cast<int>(dlen / sizeof(int));
          if (n <= 0) break;
          int have = m.rights ? m.rights->n : 0;
          if (have + n > kScmMaxFd) return err(EINVAL);
          ScmRights* r = scm_rights_alloc(km, have + n);
          if (!r) return err(ENOMEM);
          r->dom = &so.domain();
          r->n = have;
          if (m.rights) {
            std::memcpy(r->files, m.rights->files, sizeof(File*) * have);
            m.rights->n = 0;
            scm_rights_free(m.rights);
          }
          m.rights = r;
          for (int i = 0; i < n; i++) {
            int fd;
            std::memcpy(&fd, data + i * sizeof(int), sizeof fd);
            Ref<File> f = TRY(fd_get(l, fd));
            so.domain().internalize(*f);
            r->files[r->n++] = f.leak();
          }
          break;
        }
        case SCM_CREDENTIALS: {
          if (h.cmsg_len != CMSG_LEN(sizeof(ucred))) return err(EINVAL);
          ucred c;
          std::memcpy(&c, data, sizeof c);
          const Cred& cr = l.cred();
          bool root = cr.is_root();
          if (!root && c.pid != l.proc().pid()) return err(EPERM);
          if (!root && c.uid != cr.uid && c.uid != cr.euid && c.uid != cr.suid) return err(EPERM);
          if (!root && c.gid != cr.gid && c.gid != cr.egid && c.gid != cr.sgid) return err(EPERM);
          m.want_creds = true;
          m.creds = ScmCreds{c.pid, c.uid, c.gid};
          break;
        }
        default: return err(EINVAL);
      }
    }
    off += CMSG_ALIGN(h.cmsg_len);
  }
  return {};
}

// put_cmsg / scm_detach_fds into a kernel copy of the caller's control
// buffer; used counts the bytes written.
struct CtlOut {
  char* buf;
  size_t cap;
  size_t used = 0;
  int flags = 0;
  void put(int type, const void* data, size_t dlen) {
    size_t room = cap - used;
    if (room < sizeof(cmsghdr)) {
      flags |= MSG_CTRUNC;
      return;
    }
    size_t cmlen = CMSG_LEN(dlen);
    if (room < cmlen) {
      flags |= MSG_CTRUNC;
      cmlen = room;
    }
    cmsghdr h{};
    h.cmsg_len = cmlen;
    h.cmsg_level = SOL_SOCKET;
    h.cmsg_type = type;
    std::memcpy(buf + used, &h, sizeof h);
    std::memcpy(buf + used + sizeof h, data, cmlen - sizeof h);
    size_t adv = CMSG_SPACE(dlen);
    used += adv < room ? adv : room;
  }
};

// Installs the received descriptors (what fits) and closes the rest.
Result<void> detach_fds(Lwp& l, CtlOut& c, ScmRights* r, bool cloexec) {
  size_t room = c.cap - c.used;
  int fdmax = room > sizeof(cmsghdr) ? static_cast<int>((room - sizeof(cmsghdr)) / sizeof(int)) : 0;
  int i = 0;
  int* fds = reinterpret_cast<int*>(c.buf + c.used + sizeof(cmsghdr));
  for (; i < fdmax && i < r->n; i++) {
    Result<int> fd = fd_install(l, Ref<File>(*r->files[i]), cloexec);
    if (!fd.ok()) break;
    int v = fd.value();
    std::memcpy(&fds[i], &v, sizeof v);
  }
  if (i > 0) {
    cmsghdr h{};
    h.cmsg_len = CMSG_LEN(i * sizeof(int));
    h.cmsg_level = SOL_SOCKET;
    h.cmsg_type = SCM_RIGHTS;
    std::memcpy(c.buf + c.used, &h, sizeof h);
    size_t adv = CMSG_SPACE(i * sizeof(int));
    c.used += adv < room ? adv : room;
  }
  if (i < r->n) c.flags |= MSG_CTRUNC;
  return {};
}

// One sendmsg with the msghdr already copied in.
Result<long> do_sendmsg(Lwp& l, Socket& so, File& f, const msghdr& mh, int flags) {
  Kmem& km = l.kernel().kmem();
  if (mh.msg_iovlen > static_cast<size_t>(kIovMax)) return err(EMSGSIZE);
  SockAddr to;
  bool have_to = false;
  if (mh.msg_name && mh.msg_namelen) {
    TRY(addr_in(l, so, reinterpret_cast<uintptr_t>(mh.msg_name), mh.msg_namelen, to));
    have_to = true;
  }
  size_t n = mh.msg_iovlen;
  auto* iov = static_cast<iovec*>(km.alloc(sizeof(iovec) * (n ? n : 1)));
  if (!iov) return err(ENOMEM);
  absl::Cleanup free_iov = [&] { Kmem::free(iov); };
  if (n) TRY(copyin(l, reinterpret_cast<uintptr_t>(mh.msg_iov), iov, sizeof(iovec) * n));
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (iov[i].iov_len > static_cast<size_t>(SSIZE_MAX) - total) return err(EINVAL);
    total += iov[i].iov_len;
  }
  SockMsg m;
  absl::Cleanup free_r = [&] { free_rights(m.rights); };
  if (mh.msg_controllen) {
    if (mh.msg_controllen > INT_MAX) return err(ENOBUFS);
    if (mh.msg_controllen > kOptmemMax) return err(ENOBUFS);
    char* ctl = static_cast<char*>(km.alloc(mh.msg_controllen));
    if (!ctl) return err(ENOMEM);
    absl::Cleanup free_ctl = [&] { Kmem::free(ctl); };
    TRY(copyin(l, reinterpret_cast<uintptr_t>(mh.msg_control), ctl, mh.msg_controllen));
    TRY(parse_control(l, so, ctl, mh.msg_controllen, m));
  }
  Uio uio{&l, iov, static_cast<int>(n), total};
  m.uio = &uio;
  m.to = have_to ? &to : nullptr;
  return TRY(so_send(l, so, m, flags, f.flags() & O_NONBLOCK));
}

// One recvmsg; mh's msg_namelen, msg_controllen and msg_flags are updated
// for the caller to copy back.
Result<long> do_recvmsg(Lwp& l, Socket& so, File& f, msghdr& mh, int flags) {
  Kmem& km = l.kernel().kmem();
  if (mh.msg_iovlen > static_cast<size_t>(kIovMax)) return err(EMSGSIZE);
  size_t n = mh.msg_iovlen;
  auto* iov = static_cast<iovec*>(km.alloc(sizeof(iovec) * (n ? n : 1)));
  if (!iov) return err(ENOMEM);
  absl::Cleanup free_iov = [&] { Kmem::free(iov); };
  if (n) TRY(copyin(l, reinterpret_cast<uintptr_t>(mh.msg_iov), iov, sizeof(iovec) * n));
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (iov[i].iov_len > static_cast<size_t>(SSIZE_MAX) - total) return err(EINVAL);
    total += iov[i].iov_len;
  }
  Uio uio{&l, iov, static_cast<int>(n), total};
  SockAddr from;
  from.len = 0;
  SockMsg m;
  m.uio = &uio;
  m.from = &from;
  long got = TRY(so_receive(l, so, m, flags, f.flags() & O_NONBLOCK));
  absl::Cleanup free_r = [&] { free_rights(m.rrights); };
  if (mh.msg_name) {
    socklen_t len = mh.msg_namelen;
    if (static_cast<int>(len) < 0) return err(EINVAL);
    if (len > from.len) len = from.len;
    if (len) TRY(copyout(l, from.bytes, reinterpret_cast<uintptr_t>(mh.msg_name), len));
    mh.msg_namelen = from.len;
  } else {
    mh.msg_namelen = 0;
  }
  int oflags = m.flags_out;
  size_t cap = mh.msg_control ? mh.msg_controllen : 0;
  if (!mh.msg_control) {
    if (m.got_creds || m.rrights) oflags |= MSG_CTRUNC;
    mh.msg_controllen = 0;
  } else {
    if (cap > kOptmemMax * 4) cap = kOptmemMax * 4;
    char* ctl = static_cast<char*>(km.zalloc(cap ? cap : 1));
    if (!ctl) return err(ENOMEM);
    absl::Cleanup free_ctl = [&] { Kmem::free(ctl); };
    CtlOut c{ctl, cap};
    if (m.got_creds) {
      ucred uc{m.rcreds.pid, m.rcreds.uid, m.rcreds.gid};
      c.put(SCM_CREDENTIALS, &uc, sizeof uc);
    }
    if (m.rrights) TRY(detach_fds(l, c, m.rrights, flags & MSG_CMSG_CLOEXEC));
    if (c.used) TRY(copyout(l, ctl, reinterpret_cast<uintptr_t>(mh.msg_control), c.used));
    oflags |= c.flags;
    mh.msg_controllen = c.used;
  }
  mh.msg_flags = oflags | (flags & MSG_CMSG_CLOEXEC);
  return got;
}

constexpr int kRecvFlags = MSG_PEEK | MSG_DONTWAIT | MSG_WAITALL | MSG_TRUNC | MSG_CMSG_CLOEXEC | MSG_OOB |
                           MSG_ERRQUEUE | MSG_NOSIGNAL;

}  // namespace

Result<long> sys_socket(Lwp& l, int domain, int type, int protocol) {
  int flags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC);
  type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  const Protosw* p = TRY(find_proto(domain, type, protocol));
  Ref<Socket> so = TRY(Socket::create(l, *find_domain(domain), *p, p->protocol == -1 ? protocol : -1));
  return install(l, *so, flags);
}

Result<long> sys_socketpair(Lwp& l, int domain, int type, int protocol, UserPtr<int> sv) {
  int flags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC);
  type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  const Protosw* p = TRY(find_proto(domain, type, protocol));
  const Domain& d = *find_domain(domain);
  if (!p->connect2) return err(EOPNOTSUPP);
  Ref<Socket> a = TRY(Socket::create(l, d, *p));
  Ref<Socket> b = TRY(Socket::create(l, d, *p));
  Kmem& km = l.kernel().kmem();
  Ref<File> fa = TRY(socket_file(km, *a, flags));
  Ref<File> fb = TRY(socket_file(km, *b, flags));
  TRY(p->connect2(l, *a, *b));
  int fds[2];
  fds[0] = TRY(fd_install(l, std::move(fa), flags & SOCK_CLOEXEC));
  Result<int> r = fd_install(l, std::move(fb), flags & SOCK_CLOEXEC);
  if (!r.ok()) {
    (void)fd_close(l, fds[0]);
    return err(r.error());
  }
  fds[1] = r.value();
  Result<void> c = copyout(l, fds, sv, sizeof fds);
  if (!c.ok()) {
    (void)fd_close(l, fds[0]);
    (void)fd_close(l, fds[1]);
    return err(c.error());
  }
  return 0;
}

Result<long> sys_bind(Lwp& l, int sockfd, UserPtr<void> addr, socklen_t addrlen) {
  Ref<Socket> so = TRY(sock_get(l, sockfd));
  SockAddr a;
  TRY(addr_in(l, *so, addr.addr, addrlen, a));
  TRY(so->proto().bind(l, *so, a));
  return 0;
}

Result<long> sys_listen(Lwp& l, int sockfd, int backlog) {
  Ref<Socket> so = TRY(sock_get(l, sockfd));
  if (static_cast<unsigned>(backlog) > static_cast<unsigned>(kSomaxconn)) backlog = kSomaxconn;
  TRY(so->proto().listen(l, *so, backlog));
  return 0;
}

Result<long> sys_accept4(Lwp& l, int sockfd, UserPtr<void> addr, UserPtr<socklen_t> addrlen, int flags) {
  if (flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK)) return err(EINVAL);
  Ref<File> f = TRY(fd_get(l, sockfd));
  Socket* lso = file_socket(*f);
  if (!lso) return err(ENOTSOCK);
  if (!lso->proto().connection) return err(EOPNOTSUPP);
  Ref<Socket> c = TRY(so_accept(l, *lso, f->flags() & O_NONBLOCK));
  Ref<File> nf = TRY(socket_file(l.kernel().kmem(), *c, flags));
  if (!addr.is_null()) {
    SockAddr a;
    if (!c->proto().peername(*c, a).ok()) {
      a = SockAddr();
      a.family = static_cast<sa_family_t>(c->domain().family);
      a.len = sizeof(sa_family_t);
    }
    TRY(addr_out(l, a, addr.addr, addrlen));
  }
  return TRY(fd_install(l, std::move(nf), flags & SOCK_CLOEXEC));
}

Result<long> sys_accept(Lwp& l, int sockfd, UserPtr<void> addr, UserPtr<socklen_t> addrlen) {
  return sys_accept4(l, sockfd, addr, addrlen, 0);
}

Result<long> sys_connect(Lwp& l, int sockfd, UserPtr<void> addr, socklen_t addrlen) {
  Ref<File> f = TRY(fd_get(l, sockfd));
  Socket* so = file_socket(*f);
  if (!so) return err(ENOTSOCK);
  SockAddr a;
  TRY(addr_in(l, *so, addr.addr, addrlen, a));
  TRY(so->proto().connect(l, *so, a, f->flags() & O_NONBLOCK));
  return 0;
}

Result<long> sys_shutdown(Lwp& l, int sockfd, int how) {
  Ref<Socket> so = TRY(sock_get(l, sockfd));
  TRY(so_shutdown(*so, how));
  return 0;
}

Result<long> sys_sendto(Lwp& l, int sockfd, UserPtr<void> buf, size_t len, int flags, UserPtr<void> dest_addr,
                        socklen_t addrlen) {
  Ref<File> f = TRY(fd_get(l, sockfd));
  Socket* so = file_socket(*f);
  if (!so) return err(ENOTSOCK);
  if (len > INT_MAX) len = INT_MAX;
  iovec iov{reinterpret_cast<void*>(buf.addr), len};
  Uio uio{&l, &iov, 1, len};
  SockAddr to;
  SockMsg m;
  m.uio = &uio;
  if (!dest_addr.is_null()) {
    TRY(addr_in(l, *so, dest_addr.addr, addrlen, to));
    m.to = &to;
  }
  return TRY(so_send(l, *so, m, flags, f->flags() & O_NONBLOCK));
}

Result<long> sys_recvfrom(Lwp& l, int sockfd, UserPtr<void> buf, size_t len, int flags, UserPtr<void> src_addr,
                          UserPtr<socklen_t> addrlen) {
  Ref<File> f = TRY(fd_get(l, sockfd));
  Socket* so = file_socket(*f);
  if (!so) return err(ENOTSOCK);
  if (len > INT_MAX) len = INT_MAX;
  iovec iov{reinterpret_cast<void*>(buf.addr), len};
  Uio uio{&l, &iov, 1, len};
  SockAddr from;
  from.len = 0;
  SockMsg m;
  m.uio = &uio;
  m.from = &from;
  long got = TRY(so_receive(l, *so, m, flags & kRecvFlags, f->flags() & O_NONBLOCK));
  free_rights(m.rrights);
  if (!src_addr.is_null()) TRY(addr_out(l, from, src_addr.addr, addrlen));
  return got;
}

Result<long> sys_sendmsg(Lwp& l, int sockfd, UserPtr<void> msg, int flags) {
  Ref<File> f = TRY(fd_get(l, sockfd));
  Socket* so = file_socket(*f);
  if (!so) return err(ENOTSOCK);
  msghdr mh;
  TRY(copyin(l, msg.addr, &mh, sizeof mh));
  return do_sendmsg(l, *so, *f, mh, flags);
}

Result<long> sys_recvmsg(Lwp& l, int sockfd, UserPtr<void> msg, int flags) {
  Ref<File> f = TRY(fd_get(l, sockfd));
  Socket* so = file_socket(*f);
  if (!so) return err(ENOTSOCK);
  msghdr mh;
  TRY(copyin(l, msg.addr, &mh, sizeof mh));
  long got = TRY(do_recvmsg(l, *so, *f, mh, flags & kRecvFlags));
  TRY(copyout(l, &mh.msg_namelen, msg.addr + offsetof(msghdr, msg_namelen), sizeof mh.msg_namelen));
  TRY(copyout(l, &mh.msg_controllen, msg.addr + offsetof(msghdr, msg_controllen), sizeof mh.msg_controllen));
  TRY(copyout(l, &mh.msg_flags, msg.addr + offsetof(msghdr, msg_flags), sizeof mh.msg_flags));
  return got;
}

namespace {

// sendmmsg: runs one(mm, i) on each of the vlen mmsghdrs at msgvec and
// stores its length in msg_len. A failure on the first
// message is the call's error; a later one ends the batch, which returns
// how many went.
template <class Fn>
Result<long> each_mmsg(Lwp& l, uintptr_t msgvec, unsigned vlen, Fn one) {
  if (vlen > kIovMax) vlen = kIovMax;
  unsigned i = 0;
  for (; i < vlen; i++) {
    uintptr_t at = msgvec + i * sizeof(mmsghdr);
    mmsghdr mm;
    Result<void> c = copyin(l, at, &mm, sizeof mm);
    if (!c.ok()) {
      if (i == 0) return err(c.error());
      break;
    }
    Result<long> r = one(mm, i);
    if (!r.ok()) {
      if (i == 0) return err(r.error());
      break;
    }
    mm.msg_len = static_cast<unsigned>(r.value());
    TRY(copyout(l, &mm.msg_len, at + offsetof(mmsghdr, msg_len), sizeof mm.msg_len));
  }
  return i;
}

}  // namespace

Result<long> sys_sendmmsg(Lwp& l, int sockfd, UserPtr<void> msgvec, unsigned int vlen, int flags) {
  Ref<File> f = TRY(fd_get(l, sockfd));
  Socket* so = file_socket(*f);
  if (!so) return err(ENOTSOCK);
  return each_mmsg(l, msgvec.addr, vlen,
                   [&](mmsghdr& mm, unsigned) { return do_sendmsg(l, *so, *f, mm.msg_hdr, flags); });
}

// recvmmsg. The timeout is looked at only after each datagram (as Linux:
// a blocking receive inside the batch waits as long as it must, the time
// left is checked when it returns), and the time left is written back
// when at least one datagram came. A pending socket error is the call's
// error before anything is received; an error after some datagrams ends
// the batch and, unless it is EAGAIN, stays pending for the next call.
Result<long> sys_recvmmsg(Lwp& l, int sockfd, UserPtr<void> msgvec, unsigned int vlen, int flags,
                          UserPtr<struct timespec> timeout) {
  timespec ts{};
  int64_t end = -1;
  if (!timeout.is_null()) {
    ts = TRY(copyin_obj(l, timeout));
    if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000) return err(EINVAL);
    int64_t ns = ts.tv_sec > INT64_MAX / 2000000000 ? INT64_MAX / 2 : ts.tv_sec * 1000000000 + ts.tv_nsec;
    end = poll_now_ns() + ns;
  }
  Ref<File> f = TRY(fd_get(l, sockfd));
  Socket* so = file_socket(*f);
  if (!so) return err(ENOTSOCK);
  if (!(flags & MSG_ERRQUEUE)) {
    MutexLocker g(so->lock_);
    if (int e = so->error_) {
      so->error_ = 0;
      return err(e);
    }
  }
  if (vlen > kIovMax) vlen = kIovMax;
  int fl = flags & kRecvFlags;
  unsigned n = 0;
  int error = 0;
  while (n < vlen) {
    uintptr_t at = msgvec.addr + n * sizeof(mmsghdr);
    mmsghdr mm;
    Result<void> c = copyin(l, at, &mm, sizeof mm);
    if (!c.ok()) {
      error = c.error();
      break;
    }
    Result<long> r = do_recvmsg(l, *so, *f, mm.msg_hdr, fl);
    if (!r.ok()) {
      error = r.error();
      break;
    }
    mm.msg_len = static_cast<unsigned>(r.value());
    c = copyout(l, &mm, at, sizeof mm);
    if (!c.ok()) {
      error = c.error();
      break;
    }
    n++;
    // After the first message, MSG_WAITFORONE makes the rest non-blocking.
    if (flags & MSG_WAITFORONE) fl |= MSG_DONTWAIT;
    if (end >= 0) {
      int64_t left = end - poll_now_ns();
      if (left <= 0) {
        ts = timespec{0, 0};
        break;
      }
      ts = timespec{left / 1000000000, left % 1000000000};
    }
  }
  if (n == 0) {
    if (error) return err(error);
    return 0;
  }
  if (error && error != EAGAIN) {
    MutexLocker g(so->lock_);
    so->error_ = error;
  }
  if (!timeout.is_null()) TRY(copyout_obj(l, ts, timeout));
  return n;
}

namespace {

int64_t timeval_ns(const timeval& tv) { return tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL; }
timeval ns_timeval(int64_t ns) { return timeval{ns / 1000000000, (ns % 1000000000) / 1000}; }

}  // namespace

// A protocol's own option (Protosw::ctloutput).
Result<long> proto_setopt(Lwp& l, Socket& so, int level, int optname, UserPtr<void> optval, socklen_t optlen) {
  SockOptArg o;
  o.set = true;
  o.level = level;
  o.name = optname;
  o.len = optlen < SockOptArg::kMaxLen ? optlen : SockOptArg::kMaxLen;
  if (o.len) TRY(copyin(l, optval.addr, o.val, o.len));
  TRY(so.proto().ctloutput(l, so, o));
  return 0;
}

Result<long> sys_setsockopt(Lwp& l, int sockfd, int level, int optname, UserPtr<void> optval, socklen_t optlen) {
  Ref<Socket> so = TRY(sock_get(l, sockfd));
  if (static_cast<int>(optlen) < 0) return err(EINVAL);
  if (level != SOL_SOCKET) {
    if (so->proto().ctloutput) return proto_setopt(l, *so, level, optname, optval, optlen);
    return err(EOPNOTSUPP);
  }
  switch (optname) {
    case SO_RCVTIMEO_OLD:
    case SO_SNDTIMEO_OLD: {
      if (optlen < sizeof(timeval)) return err(EINVAL);
      timeval tv;
      TRY(copyin(l, optval.addr, &tv, sizeof tv));
      if (tv.tv_usec < 0 || tv.tv_usec >= 1000000) return err(EDOM);
      int64_t ns = tv.tv_sec < 0 ? 1 : timeval_ns(tv);
      MutexLocker g(so->lock_);
      (optname == SO_RCVTIMEO_OLD ? so->rcvtimeo_ns_ : so->sndtimeo_ns_) = ns;
      return 0;
    }
    case SO_LINGER: {
      if (optlen < sizeof(linger)) return err(EINVAL);
      linger lg;
      TRY(copyin(l, optval.addr, &lg, sizeof lg));
      MutexLocker g(so->lock_);
      so->linger_.l_onoff = lg.l_onoff ? 1 : 0;
      so->linger_.l_linger = lg.l_linger;
      return 0;
    }
    default: break;
  }
  if (optlen < sizeof(int)) return err(EINVAL);
  int v;
  TRY(copyin(l, optval.addr, &v, sizeof v));
  MutexLocker g(so->lock_);
  uint32_t bit = 0;
  switch (optname) {
    case SO_REUSEADDR: bit = kSoReuseAddr; break;
    case SO_KEEPALIVE: bit = kSoKeepAlive; break;
    case SO_PASSCRED: bit = kSoPassCred; break;
    case SO_BROADCAST: bit = kSoBroadcast; break;
    case SO_REUSEPORT: bit = kSoReusePort; break;
    case SO_SNDBUF: {
      int x = v > kWmemMax ? kWmemMax : v;
      x = x * 2 > kMinSndbuf ? x * 2 : kMinSndbuf;
      so->sndbuf_ = x;
      so->options_ |= kSoSndBufLock;
      so->wake_locked();
      break;
    }
    case SO_RCVBUF: {
      int x = v > kRmemMax ? kRmemMax : v;
      so->rcvbuf_ = x * 2 > kMinRcvbuf ? x * 2 : kMinRcvbuf;
      so->options_ |= kSoRcvBufLock;
      break;
    }
    case SO_RCVLOWAT: so->rcvlowat_ = v < 0 ? INT_MAX : (v ? v : 1); break;
    default: return err(ENOPROTOOPT);
  }
  if (bit) so->options_ = v ? (so->options_ | bit) : (so->options_ & ~bit);
  return 0;
}

Result<long> sys_getsockopt(Lwp& l, int sockfd, int level, int optname, UserPtr<void> optval,
                            UserPtr<socklen_t> optlen) {
  Ref<Socket> so = TRY(sock_get(l, sockfd));
  int len = static_cast<int>(TRY(copyin_obj(l, optlen)));
  if (len < 0) return err(EINVAL);
  if (level != SOL_SOCKET) {
    if (!so->proto().ctloutput) return err(EOPNOTSUPP);
    SockOptArg o;
    o.level = level;
    o.name = optname;
    o.len = static_cast<size_t>(len) < SockOptArg::kMaxLen ? static_cast<socklen_t>(len) : SockOptArg::kMaxLen;
    TRY(so->proto().ctloutput(l, *so, o));
    if (o.len) TRY(copyout(l, o.val, optval.addr, o.len));
    TRY(copyout_obj(l, o.len, optlen));
    return 0;
  }
  union {
    int i;
    timeval tv;
    linger lg;
    ucred uc;
  } v{};
  size_t lv = sizeof(int);
  {
    MutexLocker g(so->lock_);
    switch (optname) {
      case SO_TYPE: v.i = so->proto().type; break;
      case SO_DOMAIN: v.i = so->domain().family; break;
      case SO_PROTOCOL: v.i = so->protocol_; break;
      case SO_ERROR: v.i = so->error_; so->error_ = 0; break;
      case SO_RCVBUF: v.i = so->rcvbuf_; break;
      case SO_SNDBUF: v.i = so->sndbuf_; break;
      case SO_RCVLOWAT: v.i = so->rcvlowat_; break;
      case SO_SNDLOWAT: v.i = 1; break;
      case SO_REUSEADDR: v.i = (so->options_ & kSoReuseAddr) ? 1 : 0; break;
      case SO_KEEPALIVE: v.i = (so->options_ & kSoKeepAlive) ? 1 : 0; break;
      case SO_PASSCRED: v.i = (so->options_ & kSoPassCred) ? 1 : 0; break;
      case SO_BROADCAST: v.i = (so->options_ & kSoBroadcast) ? 1 : 0; break;
      case SO_REUSEPORT: v.i = (so->options_ & kSoReusePort) ? 1 : 0; break;
      case SO_ACCEPTCONN: v.i = (so->state_ & kSsListening) ? 1 : 0; break;
      case SO_RCVTIMEO_OLD: v.tv = ns_timeval(so->rcvtimeo_ns_); lv = sizeof(timeval); break;
      case SO_SNDTIMEO_OLD: v.tv = ns_timeval(so->sndtimeo_ns_); lv = sizeof(timeval); break;
      case SO_LINGER: v.lg = so->linger_; lv = sizeof(linger); break;
      case SO_PEERCRED:
        if (so->has_peercred_) v.uc = ucred{so->peercred_.pid, so->peercred_.uid, so->peercred_.gid};
        else v.uc = ucred{0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
        lv = sizeof(ucred);
        break;
      default: return err(ENOPROTOOPT);
    }
  }
  if (static_cast<size_t>(len) > lv) len = static_cast<int>(lv);
  if (len) TRY(copyout(l, &v, optval.addr, len));
  socklen_t out = static_cast<socklen_t>(len);
  TRY(copyout_obj(l, out, optlen));
  return 0;
}

Result<long> sys_getsockname(Lwp& l, int sockfd, UserPtr<void> addr, UserPtr<socklen_t> addrlen) {
  Ref<Socket> so = TRY(sock_get(l, sockfd));
  SockAddr a;
  so->proto().sockname(*so, a);
  TRY(addr_out(l, a, addr.addr, addrlen));
  return 0;
}

Result<long> sys_getpeername(Lwp& l, int sockfd, UserPtr<void> addr, UserPtr<socklen_t> addrlen) {
  Ref<Socket> so = TRY(sock_get(l, sockfd));
  SockAddr a;
  TRY(so->proto().peername(*so, a));
  TRY(addr_out(l, a, addr.addr, addrlen));
  return 0;
}

}  // namespace rump
