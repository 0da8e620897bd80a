// Differential scenarios of AF_UNIX sockets: each runs against the host
// kernel and the rump kernel (net_diff.h) and the logs must agree.
//
// Deliberate differences (this list is the one place):
//   * descriptor numbers and pids: logged as "ok" or compared to getpid().
//   * autobound names: five hex digits chosen by each kernel; only their
//     length and leading NUL are compared.
//   * buffer sizes at their limits (SO_SNDBUF minimums, how many bytes a
//     full stream holds) depend on Linux's skb overheads: not compared.
#include <sys/select.h>

#include "net_diff.h"

using namespace net_test;

namespace {

template <class S>
void sc_stream_lifecycle(Log& L, const Env& env) {
  sockaddr_un a, b;
  socklen_t alen = path_addr(a, env, "srv");
  int l = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  R(SYS(bind, l, sa(a), alen));
  R(SYS(listen, l, 5));
  int on = -1;
  socklen_t ol = sizeof on;
  R(SYS(getsockopt, l, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol));
  V("acceptconn %d len %u", on, ol);
  struct stat st;
  R(SYS(stat, a.sun_path, &st));
  V("socket inode: sock %d mode %o", S_ISSOCK(st.st_mode), st.st_mode & 0777 & ~022);
  int c = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  R(SYS(connect, c, sa(a), alen));
  R(SYS(connect, c, sa(a), alen));  // EISCONN
  socklen_t bl = sizeof b;
  int s = F(SYS(accept, l, sa(b), &bl));
  LOG_ADDR(b, bl);
  bl = sizeof b;
  R(SYS(getsockname, s, sa(b), &bl));
  LOG_ADDR(b, bl);
  bl = sizeof b;
  R(SYS(getpeername, c, sa(b), &bl));
  LOG_ADDR(b, bl);
  bl = sizeof b;
  R(SYS(getpeername, s, sa(b), &bl));
  LOG_ADDR(b, bl);
  bl = sizeof b;
  R(SYS(getsockname, c, sa(b), &bl));
  LOG_ADDR(b, bl);
  R(SYS(write, c, "hello", 5));
  R(SYS(sendto, c, " world", 6, 0, nullptr, 0));
  int n = -1;
  R(SYS(ioctl, s, FIONREAD, &n));
  V("fionread %d", n);
  char buf[64] = {};
  R(SYS(read, s, buf, sizeof buf));
  V("got '%s'", buf);
  R(SYS(write, s, "back", 4));
  std::memset(buf, 0, sizeof buf);
  R(SYS(recvfrom, c, buf, sizeof buf, 0, nullptr, nullptr));
  V("got '%s'", buf);
  R(SYS(recvfrom, c, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr));
  R(SYS(close, c));
  R(SYS(read, s, buf, sizeof buf));  // EOF
  R(SYS(send, s, "x", 1, MSG_NOSIGNAL));  // EPIPE
  R(SYS(write, s, "x", 1));  // EPIPE (SIGPIPE ignored)
  R(SYS(close, s));
  R(SYS(close, l));
  // The name stays in the file system; nobody listens on it now.
  R(SYS(stat, a.sun_path, &st));
  c = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  R(SYS(connect, c, sa(a), alen));
  R(SYS(unlink, a.sun_path));
  R(SYS(connect, c, sa(a), alen));
  R(SYS(close, c));
}

template <class S>
void sc_stream_errors(Log& L, const Env& env) {
  sockaddr_un a;
  socklen_t alen = path_addr(a, env, "e");
  R(SYS(socket, 12345, SOCK_STREAM, 0));
  R(SYS(socket, AF_UNIX, 77, 0));
  R(SYS(socket, AF_UNIX, SOCK_RDM, 0));
  R(SYS(socket, AF_UNIX, SOCK_STREAM, 5));
  R(SYS(socket, AF_UNIX, SOCK_STREAM | 0x4000000, 0));
  int x = F(SYS(socket, AF_UNIX, SOCK_RAW, 0));
  int t = -1;
  socklen_t tl = sizeof t;
  R(SYS(getsockopt, x, SOL_SOCKET, SO_TYPE, &t, &tl));
  V("raw becomes type %d", t);
  R(SYS(close, x));
  int s = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  char buf[8];
  R(SYS(read, s, buf, 1));                  // EINVAL: not connected
  R(SYS(write, s, "x", 1));                 // ENOTCONN
  R(SYS(sendto, s, "x", 1, 0, sa(a), alen));  // EOPNOTSUPP
  R(SYS(listen, s, 1));                     // EINVAL: unbound
  R(SYS(accept, s, nullptr, nullptr));      // EINVAL: not listening
  R(SYS(accept4, s, nullptr, nullptr, 0x10));  // EINVAL: flags
  R(SYS(shutdown, s, 7));
  R(SYS(shutdown, s, SHUT_RDWR));  // unconnected: fine on AF_UNIX
  sockaddr_un b;
  socklen_t bl = sizeof b;
  R(SYS(getpeername, s, sa(b), &bl));
  R(SYS(connect, s, sa(a), alen));  // ENOENT
  R(SYS(connect, s, sa(a), 1));     // EINVAL
  R(SYS(connect, s, sa(a), 200));   // EINVAL
  int fd = F(SYS(open, a.sun_path, O_CREAT | O_RDWR, 0644));
  R(SYS(connect, s, sa(a), alen));  // ECONNREFUSED: not a socket
  R(SYS(bind, s, sa(a), alen));     // EADDRINUSE
  R(SYS(getsockname, fd, sa(b), &bl));  // ENOTSOCK
  R(SYS(listen, fd, 1));
  R(SYS(getsockname, 999, sa(b), &bl));  // EBADF
  R(SYS(unlink, a.sun_path));
  R(SYS(bind, s, sa(a), alen));
  R(SYS(bind, s, sa(a), alen));  // EINVAL: bound already
  int s2 = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  R(SYS(connect, s2, sa(a), alen));  // ECONNREFUSED: bound, not listening
  int d = F(SYS(socket, AF_UNIX, SOCK_DGRAM, 0));
  R(SYS(connect, d, sa(a), alen));  // EPROTOTYPE
  R(SYS(listen, d, 1));             // EOPNOTSUPP
  R(SYS(accept, d, nullptr, nullptr));  // EOPNOTSUPP
  int v = 1;
  R(SYS(setsockopt, s, SOL_SOCKET, SO_KEEPALIVE, &v, 2));  // EINVAL
  R(SYS(setsockopt, s, SOL_SOCKET, 9999, &v, sizeof v));   // ENOPROTOOPT
  tl = sizeof t;
  R(SYS(getsockopt, s, SOL_SOCKET, 9999, &t, &tl));
  R(SYS(listen, s, 0));
  R(SYS(connect, s, sa(a), alen));  // EINVAL: listening
  int c2[2];
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, c2));
  R(SYS(listen, c2[0], 1));  // EINVAL: connected
  for (int f : {s, s2, d, fd, c2[0], c2[1]}) SYS(close, f);
}

template <class S>
void sc_stream_peek_waitall(Log& L, const Env& env) {
  int p[2];
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, p));
  R(SYS(write, p[0], "abcdefghij", 10));
  R(SYS(write, p[0], "KLMNO", 5));
  char buf[64] = {};
  R(SYS(recv, p[1], buf, 3, MSG_PEEK));
  V("peek '%.3s'", buf);
  R(SYS(recv, p[1], buf, 12, MSG_PEEK));
  V("peek '%.12s'", buf);
  int n = 0;
  R(SYS(ioctl, p[1], FIONREAD, &n));
  V("fionread %d", n);
  R(SYS(recv, p[1], buf, 8, 0));
  V("got '%.8s'", buf);
  R(SYS(recv, p[1], buf, 7, MSG_WAITALL));
  V("got '%.7s'", buf);
  R(SYS(ioctl, p[1], FIONREAD, &n));
  V("fionread %d", n);
  R(SYS(recv, p[1], buf, 4, MSG_DONTWAIT | MSG_WAITALL));
  // MSG_WAITALL returns short at EOF.
  R(SYS(write, p[0], "xyz", 3));
  R(SYS(shutdown, p[0], SHUT_WR));
  R(SYS(recv, p[1], buf, 10, MSG_WAITALL));
  R(SYS(recv, p[1], buf, 10, MSG_WAITALL));
  // SO_RCVLOWAT: a read waits for that many (here: all there at once).
  R(SYS(close, p[0]));
  R(SYS(close, p[1]));
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, p));
  int lowat = 4;
  R(SYS(setsockopt, p[1], SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat));
  R(SYS(write, p[0], "12345", 5));
  R(SYS(recv, p[1], buf, 64, 0));
  // readv/writev over several buffers.
  char x1[3] = {'a', 'b', 'c'}, x2[2] = {'d', 'e'};
  iovec wv[2] = {{x1, 3}, {x2, 2}};
  R(SYS(writev, p[0], wv, 2));
  char y1[2], y2[8] = {};
  iovec rv[2] = {{y1, 2}, {y2, 8}};
  R(SYS(readv, p[1], rv, 2));
  V("readv '%.2s' '%.3s'", y1, y2);
  SYS(close, p[0]);
  SYS(close, p[1]);
}

template <class S>
void sc_shutdown(Log& L, const Env& env) {
  int p[2];
  char buf[16];
  pollfd pf[2];
  auto masks = [&](int line) {
    pf[0] = {p[0], POLLIN | POLLOUT | POLLRDHUP, 0};
    pf[1] = {p[1], POLLIN | POLLOUT | POLLRDHUP, 0};
    long r = SYS(poll, pf, 2, 0);
    L.add(line, "poll %ld: %#x %#x", r, pf[0].revents, pf[1].revents);
  };
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, p));
  masks(__LINE__);
  R(SYS(shutdown, p[0], SHUT_WR));
  masks(__LINE__);
  R(SYS(write, p[0], "a", 1));  // EPIPE
  R(SYS(read, p[1], buf, sizeof buf));  // EOF
  R(SYS(write, p[1], "b", 1));  // the other direction still works
  R(SYS(read, p[0], buf, sizeof buf));
  R(SYS(shutdown, p[0], SHUT_RD));
  masks(__LINE__);
  R(SYS(read, p[0], buf, sizeof buf));  // 0
  R(SYS(write, p[1], "c", 1));          // EPIPE: the peer shut its read side
  SYS(close, p[0]);
  masks(__LINE__);
  SYS(close, p[1]);
  // SHUT_RD first: data already there is still readable.
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, p));
  R(SYS(write, p[1], "data", 4));
  R(SYS(shutdown, p[0], SHUT_RD));
  R(SYS(read, p[0], buf, sizeof buf));
  R(SYS(read, p[0], buf, sizeof buf));
  masks(__LINE__);
  // Closing with unread data: the peer gets ECONNRESET once, then EOF.
  R(SYS(write, p[0], "zz", 2));
  SYS(close, p[1]);
  R(SYS(read, p[0], buf, sizeof buf));
  masks(__LINE__);
  SYS(close, p[0]);
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, p));
  R(SYS(write, p[1], "q", 1));
  SYS(close, p[0]);
  masks(__LINE__);
  int e = -1;
  socklen_t el = sizeof e;
  R(SYS(getsockopt, p[1], SOL_SOCKET, SO_ERROR, &e, &el));
  V("so_error %d", e);
  R(SYS(read, p[1], buf, sizeof buf));
  R(SYS(getsockopt, p[1], SOL_SOCKET, SO_ERROR, &e, &el));
  V("so_error %d", e);
  SYS(close, p[1]);
}

template <class S>
void sc_nonblocking_backlog(Log& L, const Env& env) {
  sockaddr_un a;
  socklen_t alen = path_addr(a, env, "bl");
  int l = F(SYS(socket, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
  R(SYS(bind, l, sa(a), alen));
  R(SYS(listen, l, 1));
  R(SYS(accept, l, nullptr, nullptr));  // EAGAIN
  pollfd pf{l, POLLIN | POLLOUT, 0};
  R(SYS(poll, &pf, 1, 0));
  V("listener revents %#x", pf.revents);
  int c[4];
  for (int i = 0; i < 4; i++) {
    c[i] = F(SYS(socket, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
    R(SYS(connect, c[i], sa(a), alen));  // two fit (backlog 1 + 1), then EAGAIN
  }
  R(SYS(poll, &pf, 1, 0));
  V("listener revents %#x", pf.revents);
  int s = F(SYS(accept4, l, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  R(SYS(fcntl, s, F_GETFD, 0));
  R(SYS(fcntl, s, F_GETFL, 0) & O_NONBLOCK);
  R(SYS(connect, c[2], sa(a), alen));  // room again
  R(SYS(connect, c[3], sa(a), alen));  // EAGAIN
  int s2 = F(SYS(accept, l, nullptr, nullptr));
  R(SYS(fcntl, s2, F_GETFL, 0) & O_NONBLOCK);
  int s3 = F(SYS(accept, l, nullptr, nullptr));
  R(SYS(accept, l, nullptr, nullptr));
  char buf[4];
  R(SYS(read, s, buf, 1));  // EAGAIN
  R(SYS(write, c[0], "z", 1));
  R(SYS(read, s, buf, 4));
  // Closing the listener refuses what is still queued.
  R(SYS(connect, c[3], sa(a), alen));
  R(SYS(close, l));
  R(SYS(read, c[3], buf, 1));  // ECONNRESET
  R(SYS(read, c[3], buf, 1));  // EOF
  R(SYS(write, c[3], "x", 1));  // EPIPE
  for (int f : {c[0], c[1], c[2], c[3], s, s2, s3}) SYS(close, f);
}

template <class S>
void sc_names(Log& L, const Env& env) {
  sockaddr_un a, b;
  socklen_t alen = abstract_addr(a, env, "one");
  int s = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  R(SYS(bind, s, sa(a), alen));
  socklen_t bl = sizeof b;
  R(SYS(getsockname, s, sa(b), &bl));
  LOG_ADDR(b, bl);
  int s2 = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  R(SYS(bind, s2, sa(a), alen));  // EADDRINUSE
  R(SYS(listen, s, 4));
  int c = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  R(SYS(connect, c, sa(a), alen));
  bl = sizeof b;
  R(SYS(getpeername, c, sa(b), &bl));
  LOG_ADDR(b, bl);
  // A name that differs in its length is another name.
  R(SYS(connect, s2, sa(a), alen - 1));  // ECONNREFUSED
  // Autobind: an empty address.
  sockaddr_un e{};
  e.sun_family = AF_UNIX;
  R(SYS(bind, s2, sa(e), sizeof(sa_family_t)));
  bl = sizeof b;
  R(SYS(getsockname, s2, sa(b), &bl));
  V("autobind len %u first %d", bl, b.sun_path[0]);
  // Truncated getsockname: copies what fits, reports the full length.
  bl = 4;
  std::memset(&b, 0x55, sizeof b);
  R(SYS(getsockname, s, sa(b), &bl));
  V("short: len %u byte2 %d byte4 %d", bl, reinterpret_cast<unsigned char*>(&b)[2],
    reinterpret_cast<unsigned char*>(&b)[4]);
  // Closing frees an abstract name at once.
  R(SYS(close, c));
  R(SYS(close, s));
  int s3 = F(SYS(socket, AF_UNIX, SOCK_DGRAM, 0));
  R(SYS(bind, s3, sa(a), alen));
  // Unbound sockets: family only.
  int u = F(SYS(socket, AF_UNIX, SOCK_DGRAM, 0));
  bl = sizeof b;
  R(SYS(getsockname, u, sa(b), &bl));
  LOG_ADDR(b, bl);
  // Path names: the length as bound, trailing bytes after the NUL ignored.
  sockaddr_un p;
  socklen_t pl = path_addr(p, env, "pathsock");
  R(SYS(bind, u, sa(p), sizeof p));
  bl = sizeof b;
  R(SYS(getsockname, u, sa(b), &bl));
  LOG_ADDR(b, bl);
  (void)pl;
  // A path in a missing directory; a bad family.
  sockaddr_un q;
  socklen_t ql = path_addr(q, env, "nodir/x");
  int w = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  R(SYS(bind, w, sa(q), ql));
  q.sun_family = AF_INET;
  R(SYS(bind, w, sa(q), ql));
  for (int f : {s2, s3, u, w}) SYS(close, f);
}

template <class S>
void sc_dgram(Log& L, const Env& env) {
  sockaddr_un a, b, from;
  socklen_t alen = path_addr(a, env, "d1");
  socklen_t blen = path_addr(b, env, "d2");
  int r = F(SYS(socket, AF_UNIX, SOCK_DGRAM, 0));
  R(SYS(bind, r, sa(a), alen));
  int w = F(SYS(socket, AF_UNIX, SOCK_DGRAM, 0));
  R(SYS(send, w, "x", 1, 0));  // ENOTCONN
  R(SYS(sendto, w, "one", 3, 0, sa(a), alen));
  R(SYS(sendto, w, "", 0, 0, sa(a), alen));  // an empty datagram is a datagram
  R(SYS(bind, w, sa(b), blen));
  R(SYS(sendto, w, "three", 5, 0, sa(a), alen));
  char buf[16] = {};
  socklen_t fl = sizeof from;
  R(SYS(recvfrom, r, buf, sizeof buf, 0, sa(from), &fl));
  V("unnamed sender: fromlen %u", fl);
  fl = sizeof from;
  R(SYS(recvfrom, r, buf, sizeof buf, 0, sa(from), &fl));
  fl = sizeof from;
  std::memset(buf, 0, sizeof buf);
  R(SYS(recvfrom, r, buf, 2, MSG_PEEK, sa(from), &fl));
  LOG_ADDR(from, fl);
  R(SYS(recv, r, buf, 2, MSG_PEEK | MSG_TRUNC));
  int n = 0;
  R(SYS(ioctl, r, FIONREAD, &n));
  V("fionread %d", n);
  msghdr mh{};
  iovec iov{buf, 2};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  R(SYS(recvmsg, r, &mh, 0));
  V("msg_flags %#x '%.2s'", mh.msg_flags, buf);
  R(SYS(recv, r, buf, sizeof buf, MSG_DONTWAIT));  // EAGAIN
  // Connected datagram sockets.
  R(SYS(connect, w, sa(a), alen));
  R(SYS(send, w, "c", 1, 0));
  R(SYS(recv, r, buf, sizeof buf, 0));
  int o = F(SYS(socket, AF_UNIX, SOCK_DGRAM, 0));
  R(SYS(connect, r, sa(b), blen));  // r now only hears from w
  R(SYS(sendto, o, "no", 2, 0, sa(a), alen));  // EPERM
  R(SYS(send, w, "yes", 3, 0));
  R(SYS(recv, r, buf, sizeof buf, 0));
  // EMSGSIZE past the send buffer.
  static char big[300000];
  R(SYS(sendto, o, big, sizeof big, 0, sa(b), blen));
  // Queue limit: max_dgram_qlen (10) + 1 datagrams, then EAGAIN.
  sockaddr_un c;
  socklen_t clen = path_addr(c, env, "d3");
  int q = F(SYS(socket, AF_UNIX, SOCK_DGRAM, 0));
  R(SYS(bind, q, sa(c), clen));
  int sent = 0;
  for (int i = 0; i < 20; i++)
    if (SYS(sendto, o, "m", 1, MSG_DONTWAIT, sa(c), clen) == 1) sent++;
  V("queued %d errno %d", sent, errno);
  // The receiver closes: a connected sender gets ECONNREFUSED once, then
  // ENOTCONN.
  R(SYS(close, r));
  R(SYS(send, w, "z", 1, 0));
  R(SYS(send, w, "z", 1, 0));
  R(SYS(sendto, w, "z", 1, 0, sa(a), alen));  // the name is still a socket inode: ECONNREFUSED
  // Disconnect with AF_UNSPEC.
  R(SYS(connect, o, sa(c), clen));
  sockaddr un{};
  un.sa_family = AF_UNSPEC;
  R(SYS(connect, o, &un, sizeof un));
  R(SYS(send, o, "z", 1, 0));
  // Shut down for reading: senders get EPIPE.
  R(SYS(shutdown, q, SHUT_RD));
  R(SYS(sendto, o, "z", 1, 0, sa(c), clen));
  for (int f : {w, o, q}) SYS(close, f);
  // A datagram socketpair.
  int p[2];
  R(SYS(socketpair, AF_UNIX, SOCK_DGRAM, 0, p));
  R(SYS(send, p[0], "ab", 2, 0));
  R(SYS(send, p[0], "cde", 3, 0));
  R(SYS(recv, p[1], buf, 1, 0));  // the rest of "ab" is gone
  R(SYS(recv, p[1], buf, 16, 0));
  SYS(close, p[1]);
  R(SYS(send, p[0], "x", 1, 0));
  SYS(close, p[0]);
}

template <class S>
void sc_seqpacket(Log& L, const Env& env) {
  sockaddr_un a;
  socklen_t alen = path_addr(a, env, "sp");
  int l = F(SYS(socket, AF_UNIX, SOCK_SEQPACKET, 0));
  char buf[32] = {};
  R(SYS(send, l, "x", 1, 0));  // ENOTCONN
  R(SYS(recv, l, buf, 1, 0));  // ENOTCONN
  R(SYS(bind, l, sa(a), alen));
  R(SYS(listen, l, 3));
  R(SYS(recv, l, buf, 1, 0));  // ENOTCONN
  int c = F(SYS(socket, AF_UNIX, SOCK_SEQPACKET, 0));
  int st = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  R(SYS(connect, st, sa(a), alen));  // EPROTOTYPE
  R(SYS(connect, c, sa(a), alen));
  int s = F(SYS(accept, l, nullptr, nullptr));
  R(SYS(send, c, "first", 5, 0));
  R(SYS(send, c, "second", 6, 0));
  R(SYS(send, c, "", 0, 0));
  R(SYS(recv, s, buf, 3, 0));  // truncated: the rest is dropped
  msghdr mh{};
  iovec iov{buf, 3};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  R(SYS(recvmsg, s, &mh, MSG_PEEK));
  V("flags %#x", mh.msg_flags);
  R(SYS(recv, s, buf, 3, MSG_TRUNC));
  R(SYS(recv, s, buf, 3, 0));  // the empty record
  pollfd pf{s, POLLIN | POLLOUT, 0};
  R(SYS(poll, &pf, 1, 0));
  V("revents %#x", pf.revents);
  R(SYS(sendto, c, "addr", 4, 0, sa(a), alen));  // the address is ignored
  R(SYS(recv, s, buf, sizeof buf, 0));
  R(SYS(close, c));
  R(SYS(poll, &pf, 1, 0));
  V("revents %#x", pf.revents);
  R(SYS(recv, s, buf, sizeof buf, 0));  // EOF
  R(SYS(send, s, "x", 1, 0));           // EPIPE
  int p[2];
  R(SYS(socketpair, AF_UNIX, SOCK_SEQPACKET, 0, p));
  R(SYS(write, p[0], "12345", 5));
  R(SYS(read, p[1], buf, 2));
  R(SYS(recv, p[1], buf, 2, MSG_DONTWAIT));
  for (int f : {l, st, s, p[0], p[1]}) SYS(close, f);
}

template <class S>
void sc_sockopts(Log& L, const Env& env) {
  int p[2];
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, p));
  int v = 0;
  socklen_t vl = sizeof v;
  for (int opt : {SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_ERROR, SO_ACCEPTCONN, SO_PASSCRED, SO_REUSEADDR,
                  SO_KEEPALIVE, SO_RCVLOWAT, SO_SNDBUF}) {
    vl = sizeof v;
    R(SYS(getsockopt, p[0], SOL_SOCKET, opt, &v, &vl));
    V("opt %d = %d (len %u)", opt, v, vl);
  }
  v = 65536;
  R(SYS(setsockopt, p[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
  GETOPT_V(p[0], SOL_SOCKET, SO_SNDBUF, "sndbuf %d");
  v = 1;
  R(SYS(setsockopt, p[0], SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v));
  R(SYS(setsockopt, p[0], SOL_SOCKET, SO_REUSEADDR, &v, sizeof v));
  GETOPT_V(p[0], SOL_SOCKET, SO_KEEPALIVE, "keepalive %d");
  // Short option buffers are filled as far as they go.
  short sh = 0;
  vl = sizeof sh;
  R(SYS(getsockopt, p[0], SOL_SOCKET, SO_TYPE, &sh, &vl));
  V("short %d len %u", sh, vl);
  vl = static_cast<socklen_t>(-1);
  R(SYS(getsockopt, p[0], SOL_SOCKET, SO_TYPE, &v, &vl));
  timeval tv{1, 500000};
  R(SYS(setsockopt, p[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  timeval got{};
  vl = sizeof got;
  R(SYS(getsockopt, p[0], SOL_SOCKET, SO_RCVTIMEO, &got, &vl));
  V("rcvtimeo %ld.%06ld len %u", static_cast<long>(got.tv_sec), static_cast<long>(got.tv_usec), vl);
  tv = {0, 2000000};
  R(SYS(setsockopt, p[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));  // EDOM
  R(SYS(setsockopt, p[0], SOL_SOCKET, SO_SNDTIMEO, &tv, 8));          // EINVAL
  linger lg{1, 7};
  R(SYS(setsockopt, p[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
  linger lg2{};
  vl = sizeof lg2;
  R(SYS(getsockopt, p[0], SOL_SOCKET, SO_LINGER, &lg2, &vl));
  V("linger %d %d", lg2.l_onoff, lg2.l_linger);
  // A receive timeout gives EAGAIN.
  tv = {0, 20000};
  R(SYS(setsockopt, p[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  char c;
  R(SYS(read, p[1], &c, 1));
  // SO_PEERCRED of a socketpair: the creator.
  ucred uc{};
  vl = sizeof uc;
  R(SYS(getsockopt, p[0], SOL_SOCKET, SO_PEERCRED, &uc, &vl));
  V("peercred pid-is-me %d uid %d gid %d len %u", uc.pid == SYS(getpid), uc.uid, uc.gid, vl);
  int u = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  vl = sizeof uc;
  R(SYS(getsockopt, u, SOL_SOCKET, SO_PEERCRED, &uc, &vl));
  V("unconnected peercred %d %d %d", uc.pid, uc.uid, uc.gid);
  struct stat st;
  R(SYS(fstat, u, &st));
  V("fstat sock %d", S_ISSOCK(st.st_mode));
  SYS(close, u);
  SYS(close, p[0]);
  SYS(close, p[1]);
}

template <class S>
void sc_poll_select(Log& L, const Env& env) {
  sockaddr_un a;
  socklen_t alen = path_addr(a, env, "ps");
  int s = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  pollfd pf{s, POLLIN | POLLOUT | POLLRDHUP, 0};
  R(SYS(poll, &pf, 1, 0));
  V("fresh %#x", pf.revents);
  R(SYS(bind, s, sa(a), alen));
  R(SYS(listen, s, 2));
  R(SYS(poll, &pf, 1, 0));
  V("listening %#x", pf.revents);
  int c = F(SYS(socket, AF_UNIX, SOCK_STREAM, 0));
  R(SYS(connect, c, sa(a), alen));
  R(SYS(poll, &pf, 1, 0));
  V("pending %#x", pf.revents);
  fd_set rs, ws;
  FD_ZERO(&rs);
  FD_ZERO(&ws);
  FD_SET(s, &rs);
  FD_SET(c, &rs);
  FD_SET(c, &ws);
  timeval tv{0, 0};
  int maxfd = (s > c ? s : c) + 1;
  R(SYS(select, maxfd, &rs, &ws, nullptr, &tv));
  V("select s-readable %d c-readable %d c-writable %d", FD_ISSET(s, &rs) != 0, FD_ISSET(c, &rs) != 0,
    FD_ISSET(c, &ws) != 0);
  int t = F(SYS(accept, s, nullptr, nullptr));
  pf = {c, POLLIN | POLLOUT, 0};
  R(SYS(poll, &pf, 1, 0));
  V("connected %#x", pf.revents);
  R(SYS(write, t, "x", 1));
  R(SYS(poll, &pf, 1, 0));
  V("data %#x", pf.revents);
  SYS(close, t);
  pf.events = POLLIN | POLLOUT | POLLRDHUP;
  R(SYS(poll, &pf, 1, 0));
  V("peer gone %#x", pf.revents);
  SYS(close, c);
  SYS(close, s);
}

// SCM_RIGHTS: descriptors in flight.
template <class S>
long send_fds(int sock, const int* fds, int n, const char* data) {
  char ctl[CMSG_SPACE(sizeof(int) * 8)] = {};
  iovec iov{const_cast<char*>(data), std::strlen(data)};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctl;
  mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
  cmsghdr* cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
  std::memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
  return SYS(sendmsg, sock, &mh, 0);
}

// Receives with a control buffer of ctllen bytes; logs the control data
// (descriptor counts, not numbers) and returns the first descriptor.
template <class S>
int recv_fds(Log& L, int line, int sock, size_t ctllen, int flags, int* all = nullptr) {
  char data[16] = {};
  alignas(cmsghdr) char ctl[256] = {};
  iovec iov{data, sizeof data};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctllen ? ctl : nullptr;
  mh.msg_controllen = ctllen;
  errno = 0;
  long r = SYS(recvmsg, sock, &mh, flags);
  L.add(line, "recvmsg = %ld errno %d data '%s' flags %#x controllen %zu", r, r < 0 ? errno : 0, data, mh.msg_flags,
        static_cast<size_t>(mh.msg_controllen));
  int first = -1;
  if (r < 0 || !ctllen) return -1;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
    size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    L.add(line, "cmsg level %d type %d len %zu fds %zu", cm->cmsg_level, cm->cmsg_type,
          static_cast<size_t>(cm->cmsg_len), cm->cmsg_type == SCM_RIGHTS ? n : 0);
    if (cm->cmsg_type == SCM_RIGHTS && n > 0) {
      int fds[64];
      std::memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
      if (first < 0) first = fds[0];
      for (size_t i = 0; i < n; i++) {
        if (all) all[i] = fds[i];
        else if (i > 0) SYS(close, fds[i]);
      }
    }
  }
  return first;
}

template <class S>
void sc_scm_rights(Log& L, const Env& env) {
  int p[2], pp[2];
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, p));
  R(SYS(pipe, pp));
  R(send_fds<S>(p[0], &pp[0], 1, "pipe"));
  R(SYS(write, pp[1], "through", 7));
  int got = recv_fds<S>(L, __LINE__, p[1], 64, 0);
  char buf[16] = {};
  R(SYS(read, got, buf, sizeof buf));
  V("via passed fd '%s'", buf);
  R(SYS(fcntl, got, F_GETFD, 0));
  SYS(close, got);
  // MSG_CMSG_CLOEXEC.
  R(send_fds<S>(p[0], &pp[0], 1, "x"));
  got = recv_fds<S>(L, __LINE__, p[1], 64, MSG_CMSG_CLOEXEC);
  R(SYS(fcntl, got, F_GETFD, 0));
  SYS(close, got);
  // Three sent, room for one: MSG_CTRUNC, the others closed.
  int three[3] = {pp[0], pp[1], p[0]};
  R(send_fds<S>(p[0], three, 3, "3"));
  got = recv_fds<S>(L, __LINE__, p[1], CMSG_SPACE(sizeof(int)), 0);
  SYS(close, got);
  // No control buffer at all: MSG_CTRUNC.
  R(send_fds<S>(p[0], three, 3, "none"));
  recv_fds<S>(L, __LINE__, p[1], 0, 0);
  // A buffer too small for a header.
  R(send_fds<S>(p[0], three, 1, "tiny"));
  recv_fds<S>(L, __LINE__, p[1], 8, 0);
  // Stream reads stop after data carrying descriptors.
  R(SYS(write, p[0], "ab", 2));
  R(send_fds<S>(p[0], &pp[0], 1, "cd"));
  R(SYS(write, p[0], "ef", 2));
  got = recv_fds<S>(L, __LINE__, p[1], 64, 0);
  SYS(close, got);
  recv_fds<S>(L, __LINE__, p[1], 64, 0);
  // MSG_PEEK sees the descriptors without taking them.
  R(send_fds<S>(p[0], &pp[0], 1, "pk"));
  got = recv_fds<S>(L, __LINE__, p[1], 64, MSG_PEEK);
  SYS(close, got);
  got = recv_fds<S>(L, __LINE__, p[1], 64, 0);
  SYS(close, got);
  // Errors: a bad descriptor, a bad cmsg_len, too many descriptors.
  int bad = 999;
  R(send_fds<S>(p[0], &bad, 1, "bad"));
  {
    char ctl[CMSG_SPACE(sizeof(int))] = {};
    iovec iov{const_cast<char*>("m"), 1};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof ctl;
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = sizeof ctl + 8;
    R(SYS(sendmsg, p[0], &mh, 0));
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    cm->cmsg_type = 77;
    R(SYS(sendmsg, p[0], &mh, 0));
  }
  // Descriptors over a datagram pair, and the pair's own descriptors over
  // itself, then everything closed with them in flight.
  int d[2];
  R(SYS(socketpair, AF_UNIX, SOCK_DGRAM, 0, d));
  R(send_fds<S>(d[0], d, 2, "self"));
  R(send_fds<S>(d[1], d, 2, "self"));
  R(send_fds<S>(p[0], p, 2, "own"));
  int e = F(SYS(dup, d[0]));
  int two[2] = {-1, -1};
  recv_fds<S>(L, __LINE__, d[1], 64, 0, two);
  R(SYS(send, two[0], "via", 3, 0));
  char b2[8] = {};
  R(SYS(recv, d[1], b2, sizeof b2, 0));
  V("'%s'", b2);
  for (int f : {two[0], two[1], e, d[0], d[1], p[0], p[1], pp[0], pp[1]}) SYS(close, f);
}

template <class S>
void sc_scm_credentials(Log& L, const Env& env) {
  int p[2];
  R(SYS(socketpair, AF_UNIX, SOCK_DGRAM, 0, p));
  int on = 1;
  R(SYS(setsockopt, p[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  R(SYS(send, p[0], "plain", 5, 0));
  auto recv_creds = [&](int line) {
    char data[16] = {};
    alignas(cmsghdr) char ctl[128] = {};
    iovec iov{data, sizeof data};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof ctl;
    errno = 0;
    long r = SYS(recvmsg, p[1], &mh, 0);
    L.add(line, "recvmsg %ld errno %d '%s' flags %#x ctl %zu", r, r < 0 ? errno : 0, data, mh.msg_flags,
          static_cast<size_t>(mh.msg_controllen));
    for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); r >= 0 && cm; cm = CMSG_NXTHDR(&mh, cm)) {
      ucred uc;
      std::memcpy(&uc, CMSG_DATA(cm), sizeof uc);
      L.add(line, "cmsg %d/%d len %zu pid-is-me %d uid %d gid %d", cm->cmsg_level, cm->cmsg_type,
            static_cast<size_t>(cm->cmsg_len), uc.pid == SYS(getpid), uc.uid, uc.gid);
    }
  };
  recv_creds(__LINE__);
  // Explicit credentials.
  {
    char ctl[CMSG_SPACE(sizeof(ucred))] = {};
    iovec iov{const_cast<char*>("explicit"), 8};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof ctl;
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_CREDENTIALS;
    cm->cmsg_len = CMSG_LEN(sizeof(ucred));
    ucred uc{static_cast<pid_t>(SYS(getpid)), static_cast<uid_t>(SYS(getuid)), static_cast<gid_t>(SYS(getgid))};
    std::memcpy(CMSG_DATA(cm), &uc, sizeof uc);
    R(SYS(sendmsg, p[0], &mh, 0));
    recv_creds(__LINE__);
    cm->cmsg_len = CMSG_LEN(sizeof(ucred)) - 1;
    R(SYS(sendmsg, p[0], &mh, 0));  // EINVAL
  }
  // A stream with SO_PASSCRED; a truncated control buffer.
  int s[2];
  R(SYS(socketpair, AF_UNIX, SOCK_STREAM, 0, s));
  R(SYS(setsockopt, s[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  R(SYS(write, s[0], "st", 2));
  {
    char data[8] = {};
    char ctl[CMSG_LEN(4)] = {};
    iovec iov{data, sizeof data};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof ctl;
    R(SYS(recvmsg, s[1], &mh, 0));
    V("flags %#x ctl %zu", mh.msg_flags, static_cast<size_t>(mh.msg_controllen));
  }
  for (int f : {p[0], p[1], s[0], s[1]}) SYS(close, f);
}

}  // namespace

#define DIFF(name) run_diff(&name<K<false>>, &name<K<true>>)

TEST_CASE("net diff: stream lifecycle over a path name", "[net][diff]") { DIFF(sc_stream_lifecycle); }
TEST_CASE("net diff: stream error paths", "[net][diff]") { DIFF(sc_stream_errors); }
TEST_CASE("net diff: MSG_PEEK, MSG_WAITALL, SO_RCVLOWAT and readv byte accounting", "[net][diff]") {
  DIFF(sc_stream_peek_waitall);
}
TEST_CASE("net diff: shutdown in each direction, ECONNRESET, poll masks", "[net][diff]") { DIFF(sc_shutdown); }
TEST_CASE("net diff: non-blocking connect and listen backlog overflow", "[net][diff]") {
  DIFF(sc_nonblocking_backlog);
}
TEST_CASE("net diff: abstract names, autobind, getsockname lengths", "[net][diff]") { DIFF(sc_names); }
TEST_CASE("net diff: datagram lifecycle, MSG_TRUNC, EPERM, ECONNREFUSED, queue limit", "[net][diff]") {
  DIFF(sc_dgram);
}
TEST_CASE("net diff: seqpacket records, truncation, EOF", "[net][diff]") { DIFF(sc_seqpacket); }
TEST_CASE("net diff: socket options", "[net][diff]") { DIFF(sc_sockopts); }
TEST_CASE("net diff: poll and select on sockets", "[net][diff]") { DIFF(sc_poll_select); }
TEST_CASE("net diff: SCM_RIGHTS passing, MSG_CTRUNC, sockets sent over themselves", "[net][diff]") {
  DIFF(sc_scm_rights);
}
TEST_CASE("net diff: SCM_CREDENTIALS and SO_PASSCRED", "[net][diff]") { DIFF(sc_scm_credentials); }
