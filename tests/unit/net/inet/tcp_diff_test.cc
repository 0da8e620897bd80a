// TCP sockets over loopback, each scenario written once (net_diff.h) and
// run against the host kernel's loopback and the rump kernel's; the logs
// must agree.
//
// Deliberate differences (this list is the one place):
//   * ports: both kernels pick ephemeral ports; only "in range" and
//     equalities are compared, and no fixed port is used.
//   * every wait is for an event the scenario caused (poll with no
//     timeout), never for a time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <sys/epoll.h>

#include <vector>

#include "net_diff.h"
#include "tcp_scenario.h"

using namespace net_test;

namespace {

template <class S>
void sc_tcp_basic(Log& L, const Env&) {
  int ls = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
  int v = -1;
  socklen_t vl = sizeof v;
  R(SYS(getsockopt, ls, SOL_SOCKET, SO_TYPE, &v, &vl));
  V("type %d", v);
  GETOPT_V(ls, SOL_SOCKET, SO_PROTOCOL, "protocol %d");
  GETOPT_V(ls, IPPROTO_TCP, TCP_MAXSEG, "maxseg before connect %d");
  tcp_info ti{};
  vl = sizeof ti;
  R(SYS(getsockopt, ls, IPPROTO_TCP, TCP_INFO, &ti, &vl));
  V("info state %d", ti.tcpi_state);
  // A fresh socket: writable and hung up, as Linux says.
  pollfd pf{ls, POLLIN | POLLOUT, 0};
  R(SYS(poll, &pf, 1, 0));
  V("fresh revents %#x", pf.revents);
  char buf[64] = {};
  R(SYS(recv, ls, buf, sizeof buf, 0));               // ENOTCONN
  R(SYS(send, ls, "x", 1, MSG_NOSIGNAL));              // EPIPE
  sockaddr_in a = tcp_in4("127.0.0.1", 0);
  R(SYS(bind, ls, tcp_sa(a), sizeof a));
  R(SYS(listen, ls, 8));
  GETOPT_V(ls, SOL_SOCKET, SO_ACCEPTCONN, "acceptconn %d");
  vl = sizeof ti;
  R(SYS(getsockopt, ls, IPPROTO_TCP, TCP_INFO, &ti, &vl));
  V("listener info state %d", ti.tcpi_state);
  R(SYS(poll, &pf, 1, 0));
  V("listener revents %#x", pf.revents);
  uint16_t port = tcp_port<S>(ls);
  int c = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
  sockaddr_in to = tcp_in4("127.0.0.1", port);
  R(SYS(connect, c, tcp_sa(to), sizeof to));
  R(SYS(connect, c, tcp_sa(to), sizeof to));  // EISCONN
  pf = pollfd{ls, POLLIN, 0};
  R(SYS(poll, &pf, 1, -1));
  V("listener revents %#x", pf.revents);
  sockaddr_in peer{};
  socklen_t pl = sizeof peer;
  int s = F(SYS(accept4, ls, tcp_sa(peer), &pl, SOCK_NONBLOCK));
  uint16_t cport = tcp_port<S>(c);
  V("peer len %u family %d port %s", pl, peer.sin_family, ntohs(peer.sin_port) == cport ? "client's" : "other");
  sockaddr_in n{};
  socklen_t nl = sizeof n;
  R(SYS(getsockname, s, tcp_sa(n), &nl));
  V("accepted name port %s", ntohs(n.sin_port) == port ? "listener's" : "other");
  nl = sizeof n;
  R(SYS(getpeername, c, tcp_sa(n), &nl));
  V("client peer port %s", ntohs(n.sin_port) == port ? "listener's" : "other");
  vl = sizeof ti;
  R(SYS(getsockopt, c, IPPROTO_TCP, TCP_INFO, &ti, &vl));
  V("client info state %d", ti.tcpi_state);
  GETOPT_V(c, SOL_SOCKET, SO_ERROR, "so_error %d");
  // Options.
  v = 1;
  R(SYS(setsockopt, c, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v));
  GETOPT_V(c, IPPROTO_TCP, TCP_NODELAY, "nodelay %d");
  R(SYS(setsockopt, c, IPPROTO_TCP, TCP_CONGESTION, "reno", 4));
  char cc[16] = {};
  vl = sizeof cc;
  R(SYS(getsockopt, c, IPPROTO_TCP, TCP_CONGESTION, cc, &vl));
  V("congestion %s len %u", cc, vl);
  R(SYS(setsockopt, c, IPPROTO_TCP, TCP_CONGESTION, "nosuch", 6));  // ENOENT
  v = 1;
  R(SYS(setsockopt, c, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v));
  GETOPT_V(c, SOL_SOCKET, SO_KEEPALIVE, "keepalive %d");
  v = 30;
  R(SYS(setsockopt, c, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v));
  v = 0;
  R(SYS(setsockopt, c, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v));  // EINVAL
  GETOPT_V(c, IPPROTO_TCP, TCP_KEEPIDLE, "keepidle %d");
  v = 10;
  R(SYS(setsockopt, c, IPPROTO_TCP, TCP_MAXSEG, &v, sizeof v));  // EINVAL
  v = 1;
  R(SYS(setsockopt, c, IPPROTO_TCP, TCP_CORK, &v, sizeof v));
  GETOPT_V(c, IPPROTO_TCP, TCP_CORK, "cork %d");
  v = 0;
  R(SYS(setsockopt, c, IPPROTO_TCP, TCP_CORK, &v, sizeof v));
  v = 65536;
  R(SYS(setsockopt, s, SOL_SOCKET, SO_RCVBUF, &v, sizeof v));
  R(SYS(setsockopt, s, SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
  GETOPT_V(s, SOL_SOCKET, SO_RCVBUF, "rcvbuf %d");
  GETOPT_V(s, SOL_SOCKET, SO_SNDBUF, "sndbuf %d");
  R(SYS(getsockopt, c, IPPROTO_TCP, 9999, &v, &vl));  // ENOPROTOOPT
  // Data both ways, FIONREAD, MSG_PEEK, MSG_DONTWAIT.
  R(SYS(recv, s, buf, sizeof buf, 0));  // EAGAIN (non-blocking)
  R(SYS(send, c, "hello", 5, 0));
  pf = pollfd{s, POLLIN, 0};
  R(SYS(poll, &pf, 1, -1));
  V("server revents %#x", pf.revents);
  int q = -1;
  R(SYS(ioctl, s, FIONREAD, &q));
  V("fionread %d", q);
  R(SYS(recv, s, buf, 2, MSG_PEEK));
  V("peek '%.2s'", buf);
  R(SYS(recv, s, buf, sizeof buf, 0));
  V("got '%.5s'", buf);
  R(SYS(send, s, "world!", 6, 0));
  std::memset(buf, 0, sizeof buf);
  R(SYS(recv, c, buf, sizeof buf, MSG_WAITALL | MSG_DONTWAIT));
  V("got '%s'", buf);
  R(SYS(recv, c, buf, sizeof buf, MSG_DONTWAIT));  // EAGAIN
  R(SYS(sendto, c, "abc", 3, 0, tcp_sa(to), sizeof to));  // the address is ignored
  R(SYS(poll, &pf, 1, -1));
  R(SYS(read, s, buf, sizeof buf));
  R(SYS(close, c));
  R(SYS(poll, &pf, 1, -1));
  V("after peer close revents %#x", pf.revents);
  R(SYS(recv, s, buf, sizeof buf, 0));  // 0: end of stream
  R(SYS(close, s));
  R(SYS(close, ls));
}

// Half-close: the side that shut down writing still reads.
template <class S>
void sc_tcp_half_close(Log& L, const Env&) {
  TcpPair p = tcp_pair<S>(L, AF_INET);
  char buf[16] = {};
  R(SYS(shutdown, p.c, SHUT_WR));
  R(SYS(send, p.c, "x", 1, MSG_NOSIGNAL));  // EPIPE
  pollfd pf{p.s, POLLIN | POLLRDHUP | POLLOUT, 0};
  R(SYS(poll, &pf, 1, -1));
  V("server revents %#x", pf.revents & (POLLIN | POLLRDHUP | POLLOUT | POLLHUP));
  R(SYS(recv, p.s, buf, sizeof buf, 0));  // 0
  R(SYS(send, p.s, "late", 4, 0));
  pollfd pc{p.c, POLLIN, 0};
  R(SYS(poll, &pc, 1, -1));
  R(SYS(recv, p.c, buf, sizeof buf, 0));
  V("client got '%.4s'", buf);
  R(SYS(shutdown, p.s, SHUT_RDWR));
  R(SYS(poll, &pc, 1, -1));
  R(SYS(recv, p.c, buf, sizeof buf, 0));  // 0
  R(SYS(shutdown, p.s, 7));               // EINVAL
  R(SYS(close, p.c));
  R(SYS(close, p.s));
  R(SYS(close, p.l));
}

// Closing with unread data resets the connection (RFC 2525 2.17);
// SO_LINGER with a zero timeout does too.
template <class S>
void sc_tcp_reset(Log& L, const Env&) {
  for (int linger0 = 0; linger0 < 2; linger0++) {
    TcpPair p = tcp_pair<S>(L, AF_INET);
    char buf[16];
    int closer = p.s, other = p.c;
    if (linger0) {
      linger lg{1, 0};
      R(SYS(setsockopt, closer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    } else {
      R(SYS(send, other, "unread", 6, 0));
      pollfd pf{closer, POLLIN, 0};
      R(SYS(poll, &pf, 1, -1));
    }
    R(SYS(close, closer));
    pollfd pf{other, POLLIN, 0};
    R(SYS(poll, &pf, 1, -1));
    V("revents %#x", pf.revents);
    int e = -1;
    socklen_t el = sizeof e;
    R(SYS(recv, other, buf, sizeof buf, 0));  // ECONNRESET
    R(SYS(recv, other, buf, sizeof buf, 0));  // 0
    R(SYS(getsockopt, other, SOL_SOCKET, SO_ERROR, &e, &el));
    V("so_error %d", e);
    R(SYS(send, other, "x", 1, MSG_NOSIGNAL));  // EPIPE
    R(SYS(close, other));
    R(SYS(close, p.l));
  }
}

// SO_LINGER with a timeout: close() returns once the data is
// acknowledged, and the peer reads all of it, then the end of stream.
template <class S>
void sc_tcp_linger(Log& L, const Env&) {
  TcpPair p = tcp_pair<S>(L, AF_INET);
  linger lg{1, 5};
  R(SYS(setsockopt, p.c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
  linger got{};
  socklen_t gl = sizeof got;
  R(SYS(getsockopt, p.c, SOL_SOCKET, SO_LINGER, &got, &gl));
  V("linger %d %d", got.l_onoff, got.l_linger);
  static char big[100000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = static_cast<char>(i * 7);
  R(SYS(send, p.c, big, sizeof big, 0));
  R(SYS(close, p.c));
  static char in[sizeof big];
  R(SYS(recv, p.s, in, sizeof in, MSG_WAITALL));
  V("same %d", std::memcmp(in, big, sizeof big) == 0 ? 1 : 0);
  R(SYS(recv, p.s, in, sizeof in, 0));  // 0
  R(SYS(close, p.s));
  R(SYS(close, p.l));
}

// A port nobody listens on: ECONNREFUSED, blocking and not.
template <class S>
void sc_tcp_refused(Log& L, const Env&) {
  int t = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = tcp_in4("127.0.0.1", 0);
  R(SYS(bind, t, tcp_sa(a), sizeof a));
  uint16_t port = tcp_port<S>(t);
  int c = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
  sockaddr_in to = tcp_in4("127.0.0.1", port);
  R(SYS(connect, c, tcp_sa(to), sizeof to));  // ECONNREFUSED
  int nb = F(SYS(socket, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  R(SYS(connect, nb, tcp_sa(to), sizeof to));  // EINPROGRESS
  pollfd pf{nb, POLLOUT, 0};
  R(SYS(poll, &pf, 1, -1));
  V("revents %#x", pf.revents);
  int e = -1;
  socklen_t el = sizeof e;
  R(SYS(getsockopt, nb, SOL_SOCKET, SO_ERROR, &e, &el));
  V("so_error %d", e);
  R(SYS(getsockopt, nb, SOL_SOCKET, SO_ERROR, &e, &el));
  V("so_error again %d", e);
  R(SYS(close, nb));
  R(SYS(close, c));
  R(SYS(close, t));
}

// Non-blocking connect to a listener: EINPROGRESS, then writable with no
// error; epoll sees it too.
template <class S>
void sc_tcp_nonblock_connect(Log& L, const Env&) {
  int ls = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = tcp_in4("127.0.0.1", 0);
  R(SYS(bind, ls, tcp_sa(a), sizeof a));
  R(SYS(listen, ls, 4));
  sockaddr_in to = tcp_in4("127.0.0.1", tcp_port<S>(ls));
  int c = F(SYS(socket, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  int ep = F(SYS(epoll_create1, 0));
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.u32 = 3;
  R(SYS(connect, c, tcp_sa(to), sizeof to));  // EINPROGRESS
  R(SYS(epoll_ctl, ep, EPOLL_CTL_ADD, c, &ev));
  epoll_event got{};
  R(SYS(epoll_wait, ep, &got, 1, -1));
  V("event %#x data %u", got.events, got.data.u32);
  int e = -1;
  socklen_t el = sizeof e;
  R(SYS(getsockopt, c, SOL_SOCKET, SO_ERROR, &e, &el));
  V("so_error %d", e);
  R(SYS(connect, c, tcp_sa(to), sizeof to));  // EISCONN
  int s = F(SYS(accept, ls, nullptr, nullptr));
  R(SYS(send, c, "ping", 4, 0));
  char buf[8] = {};
  R(SYS(recv, s, buf, 4, MSG_WAITALL));
  R(SYS(close, ep));
  R(SYS(close, c));
  R(SYS(close, s));
  R(SYS(close, ls));
}

// A large transfer both ways from one thread (non-blocking ends and
// poll), checked by a hash of the bytes.
template <class S>
void sc_tcp_bulk(Log& L, const Env&) {
  for (int fam : {AF_INET, AF_INET6}) {
    TcpPair p = tcp_pair<S>(L, fam);
    constexpr size_t kTotal = 4 << 20;
    TcpPump pump(kTotal);
    R(SYS(fcntl, p.c, F_SETFL, O_NONBLOCK));
    R(SYS(fcntl, p.s, F_SETFL, O_NONBLOCK));
    bool ok = tcp_pump<S>(pump, p.c, p.s);
    V("family %d pumped %d sent %zu received %zu hash %s", fam, ok ? 1 : 0, pump.sent, pump.received,
      pump.sent_hash == pump.recv_hash ? "equal" : "different");
    R(SYS(close, p.c));
    R(SYS(close, p.s));
    R(SYS(close, p.l));
  }
}

// Byte-for-byte over loopback with sends of many sizes (below and above
// the size from which lo lends the payload instead of copying it) and
// reads of other sizes, some peeking first: every byte read, peeked or
// not, is checked against the pattern at its offset.
template <class S>
void sc_tcp_bytes_peek(Log& L, const Env&) {
  static uint8_t out[150000], in[70000], pk[70000];
  const size_t sends[] = {1, 511, 512, 4097, 65536, 131072, 70001, 3};
  const size_t reads[] = {1, 100, 7000, 65536, 513, 40000};
  for (int fam : {AF_INET, AF_INET6}) {
    TcpPair p = tcp_pair<S>(L, fam);
    R(SYS(fcntl, p.c, F_SETFL, O_NONBLOCK));
    R(SYS(fcntl, p.s, F_SETFL, O_NONBLOCK));
    constexpr size_t kTotal = 3 << 20;
    size_t sent = 0, got = 0, bad = 0, badpeek = 0, peeks = 0;
    unsigned k = 0, j = 0;
    bool shut = false;
    for (;;) {
      if (sent < kTotal) {
        size_t n = sends[k % 8];
        if (n > kTotal - sent) n = kTotal - sent;
        for (size_t i = 0; i < n; i++) out[i] = TcpPump::byte_at(sent + i);
        long w = SYS(send, p.c, out, n, MSG_NOSIGNAL);
        if (w > 0) {
          sent += static_cast<size_t>(w);
          k++;
        } else if (errno != EAGAIN) {
          break;
        }
      } else if (!shut) {
        R(SYS(shutdown, p.c, SHUT_WR));
        shut = true;
      }
      size_t want = reads[j % 6];
      long pr = -1;
      if (j % 3 == 0) {
        pr = SYS(recv, p.s, pk, want, MSG_PEEK);
        if (pr > 0) peeks++;
      }
      long r = SYS(recv, p.s, in, want, 0);
      if (r > 0) {
        for (long i = 0; i < r; i++)
          if (in[i] != TcpPump::byte_at(got + static_cast<size_t>(i))) bad++;
        for (long i = 0; pr > 0 && i < pr && i < r; i++)
          if (pk[i] != in[i]) badpeek++;
        if (pr > r) badpeek++;  // a peek saw more than the read that follows
        got += static_cast<size_t>(r);
        j++;
        continue;
      }
      if (r == 0) break;
      if (errno != EAGAIN) break;
      pollfd pf[2] = {{p.s, POLLIN, 0}, {p.c, static_cast<short>(sent < kTotal ? POLLOUT : 0), 0}};
      if (SYS(poll, pf, 2, -1) < 0) break;
    }
    V("family %d sent %zu received %zu bad bytes %zu bad peeks %zu peeked %d", fam, sent, got, bad, badpeek,
      peeks > 0 ? 1 : 0);
    R(SYS(close, p.c));
    R(SYS(close, p.s));
    R(SYS(close, p.l));
  }
}

// IPv6 and dual-stack: a v6 listener takes an IPv4 client (names mapped).
template <class S>
void sc_tcp_v6(Log& L, const Env&) {
  TcpPair p = tcp_pair<S>(L, AF_INET6);
  char buf[8] = {};
  R(SYS(send, p.c, "six", 3, 0));
  R(SYS(recv, p.s, buf, 3, MSG_WAITALL));
  V("got '%s'", buf);
  R(SYS(close, p.c));
  R(SYS(close, p.s));
  int v = 0;
  R(SYS(setsockopt, p.l, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v));  // EINVAL: bound
  R(SYS(close, p.l));
  int dl = F(SYS(socket, AF_INET6, SOCK_STREAM, 0));
  R(SYS(setsockopt, dl, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v));
  sockaddr_in6 any = tcp_in6("::", 0);
  R(SYS(bind, dl, tcp_sa(any), sizeof any));
  R(SYS(listen, dl, 4));
  int c = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
  sockaddr_in to = tcp_in4("127.0.0.1", tcp_port6<S>(dl));
  R(SYS(connect, c, tcp_sa(to), sizeof to));
  sockaddr_in6 peer{};
  socklen_t pl = sizeof peer;
  int s = F(SYS(accept, dl, reinterpret_cast<sockaddr*>(&peer), &pl));
  char txt[64];
  inet_ntop(AF_INET6, &peer.sin6_addr, txt, sizeof txt);
  V("peer len %u family %d addr %s", pl, peer.sin6_family, txt);
  R(SYS(close, s));
  R(SYS(close, c));
  R(SYS(close, dl));
}

// Bind rules of a stream socket: a listener's port is not shared, even
// with SO_REUSEADDR; a second listen just changes the backlog.
template <class S>
void sc_tcp_bind_rules(Log& L, const Env&) {
  int a = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
  int one = 1;
  R(SYS(setsockopt, a, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  sockaddr_in sa = tcp_in4("127.0.0.1", 0);
  R(SYS(bind, a, tcp_sa(sa), sizeof sa));
  R(SYS(bind, a, tcp_sa(sa), sizeof sa));  // EINVAL
  R(SYS(listen, a, 1));
  R(SYS(listen, a, 5));
  int b = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
  R(SYS(setsockopt, b, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  sockaddr_in same = tcp_in4("127.0.0.1", tcp_port<S>(a));
  R(SYS(bind, b, tcp_sa(same), sizeof same));  // EADDRINUSE
  sockaddr_in low = tcp_in4("127.0.0.1", 80);
  (void)low;
  R(SYS(close, b));
  R(SYS(close, a));
}

// The port of a closed listener stays taken while a connection it
// accepted lives on (here in TIME_WAIT: the server end closed first):
// EADDRINUSE without SO_REUSEADDR on both sockets; with it on both, bind
// and listen succeed (a server restart).
template <class S>
void sc_tcp_rebind_time_wait(Log& L, const Env&) {
  int one = 1;
  for (int reuse : {0, 1}) {
    V("listener SO_REUSEADDR %d", reuse);
    int l = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
    if (reuse) R(SYS(setsockopt, l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    sockaddr_in a = tcp_in4("127.0.0.1", 0);
    R(SYS(bind, l, tcp_sa(a), sizeof a));
    R(SYS(listen, l, 4));
    uint16_t port = tcp_port<S>(l);
    int c = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
    sockaddr_in to = tcp_in4("127.0.0.1", port);
    R(SYS(connect, c, tcp_sa(to), sizeof to));
    int s = F(SYS(accept, l, nullptr, nullptr));
    R(SYS(close, s));
    char b;
    R(SYS(recv, c, &b, 1, 0));  // the server's FIN
    R(SYS(close, c));
    R(SYS(close, l));
    int n = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
    R(SYS(bind, n, tcp_sa(to), sizeof to));
    int m = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
    R(SYS(setsockopt, m, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    R(SYS(bind, m, tcp_sa(to), sizeof to));
    R(SYS(listen, m, 4));
    sockaddr_in any = tcp_in4("0.0.0.0", port);
    int w = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
    R(SYS(bind, w, tcp_sa(any), sizeof any));
    R(SYS(close, w));
    R(SYS(close, m));
    R(SYS(close, n));
  }
}

// connect() to a 4-tuple a TIME_WAIT holds (Linux's tcp_twsk_unique):
// with the port from bind (SO_REUSEADDR on both) it takes the TIME_WAIT
// over at once whatever net.ipv4.tcp_tw_reuse says, since timestamps
// were on; an ephemeral port held only by a TIME_WAIT to another peer is
// shared. (The ephemeral search reuses a TIME_WAIT of the same 4-tuple
// only a second on: tcp_timewait_test.cc, on a sim kernel's clock.)
template <class S>
void sc_tcp_tw_reuse(Log& L, const Env&) {
  if (!enter_netns<S>(L)) return;
  R(if_up<S>("lo"));
  R(write_sysctl_int<S>("net.ipv4.tcp_tw_reuse", 3));
  R(write_sysctl<S>("net.ipv4.ip_local_port_range", "40001 40000"));
  R(write_sysctl<S>("net.ipv4.ip_local_port_range", "40000 40000"));
  int one = 1;
  sockaddr_in a1 = tcp_in4("127.0.0.1", 5000), a2 = tcp_in4("127.0.0.1", 5001);
  int l1 = F(SYS(socket, AF_INET, SOCK_STREAM, 0)), l2 = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
  R(SYS(bind, l1, tcp_sa(a1), sizeof a1));
  R(SYS(bind, l2, tcp_sa(a2), sizeof a2));
  R(SYS(listen, l1, 8));
  R(SYS(listen, l2, 8));
  char b;
  // The client closes first and keeps the TIME_WAIT.
  auto client_closes = [&](int c, int l) {
    int s = F(SYS(accept, l, nullptr, nullptr));
    R(SYS(close, c));
    R(SYS(recv, s, &b, 1, 0));
    R(SYS(close, s));
  };
  auto server_closes = [&](int c, int l) {
    int s = F(SYS(accept, l, nullptr, nullptr));
    R(SYS(close, s));
    R(SYS(recv, c, &b, 1, 0));
    R(SYS(close, c));
  };
  // (Each round from a port of its own: a SYN that met the peer's own
  // TIME_WAIT of an earlier round would wait for a retransmission.)
  for (int mode : {0, 2}) {
    R(write_sysctl_int<S>("net.ipv4.tcp_tw_reuse", mode));
    sockaddr_in from = tcp_in4("127.0.0.1", static_cast<uint16_t>(41000 + mode));
    int c = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
    R(SYS(setsockopt, c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    R(SYS(bind, c, tcp_sa(from), sizeof from));
    R(SYS(connect, c, tcp_sa(a1), sizeof a1));
    client_closes(c, l1);
    int n = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
    R(SYS(bind, n, tcp_sa(from), sizeof from));
    R(SYS(setsockopt, n, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    R(SYS(bind, n, tcp_sa(from), sizeof from));
    R(SYS(connect, n, tcp_sa(a1), sizeof a1));
    R(SYS(send, n, "x", 1, 0));
    int s = F(SYS(accept, l1, nullptr, nullptr));
    R(SYS(recv, s, &b, 1, 0));
    R(SYS(close, s));
    R(SYS(recv, n, &b, 1, 0));
    R(SYS(close, n));
  }
  // The one ephemeral port: a TIME_WAIT to l1 holds it; a connect to l2
  // shares it.
  int c = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
  R(SYS(connect, c, tcp_sa(a1), sizeof a1));
  V("port %u", tcp_port<S>(c));
  client_closes(c, l1);
  c = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
  R(SYS(connect, c, tcp_sa(a2), sizeof a2));
  V("port %u", tcp_port<S>(c));
  server_closes(c, l2);
  // Two ports and SO_REUSEADDR clients: the search passes over a port
  // whose 4-tuple a TIME_WAIT holds for the one that is free.
  R(write_sysctl<S>("net.ipv4.ip_local_port_range", "40002 40003"));
  // The second connection ends with a reset, which leaves no TIME_WAIT
  // on either side.
  linger lg{1, 0};
  for (int i = 0; i < 3; i++) {
    c = F(SYS(socket, AF_INET, SOCK_STREAM, 0));
    R(SYS(setsockopt, c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    if (R(SYS(connect, c, tcp_sa(a1), sizeof a1)) != 0) {
      SYS(close, c);
      continue;
    }
    if (i == 0) {
      client_closes(c, l1);
      continue;
    }
    int s = F(SYS(accept, l1, nullptr, nullptr));
    R(SYS(setsockopt, c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    R(SYS(close, c));
    R(SYS(close, s));
  }
  R(SYS(close, l1));
  R(SYS(close, l2));
}

// SIGPIPE: a send that fails with EPIPE raises it (held pending here by
// blocking it, with the default action), MSG_NOSIGNAL does not, and
// neither does the ECONNRESET the first send after a reset gets.
template <class S>
int sigpipe_pending() {
  sigset_t set;
  sigemptyset(&set);
  if constexpr (S::kRump) rump_sys_rt_sigpending(&set, 8);
  else sigpending(&set);
  int r = sigismember(&set, SIGPIPE);
  if (r == 1) {
    // Take it, so that the next check starts clean.
    sigset_t w;
    sigemptyset(&w);
    sigaddset(&w, SIGPIPE);
    timespec zero{0, 0};
    if constexpr (S::kRump) rump_sys_rt_sigtimedwait(&w, nullptr, &zero, 8);
    else sigtimedwait(&w, nullptr, &zero);
  }
  return r;
}
template <class S>
void sigpipe_default_blocked(bool on) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  if constexpr (S::kRump) {
    rump_set_action(SIGPIPE, on ? nullptr : kSigIgn);
    rump_sys_rt_sigprocmask(on ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr, 8);
  } else {
    signal(SIGPIPE, on ? SIG_DFL : SIG_IGN);
    sigprocmask(on ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
  }
}
template <class S>
void sc_tcp_sigpipe(Log& L, const Env&) {
  sigpipe_default_blocked<S>(true);
  TcpPair p = tcp_pair<S>(L, AF_INET);
  R(SYS(shutdown, p.c, SHUT_WR));
  R(SYS(send, p.c, "x", 1, MSG_NOSIGNAL));
  V("after MSG_NOSIGNAL: pending %d", sigpipe_pending<S>());
  R(SYS(send, p.c, "x", 1, 0));
  V("after send: pending %d", sigpipe_pending<S>());
  // The peer closed: the first send draws its reset.
  TcpPair q = tcp_pair<S>(L, AF_INET);
  R(SYS(close, q.s));
  R(SYS(send, q.c, "a", 1, 0));
  V("data to a closed peer: pending %d", sigpipe_pending<S>());
  pollfd pf{q.c, POLLERR, 0};
  R(SYS(poll, &pf, 1, -1));
  V("revents %#x", pf.revents);
  R(SYS(send, q.c, "b", 1, 0));  // ECONNRESET
  V("after the reset: pending %d", sigpipe_pending<S>());
  R(SYS(send, q.c, "c", 1, MSG_NOSIGNAL));
  V("EPIPE with MSG_NOSIGNAL: pending %d", sigpipe_pending<S>());
  R(SYS(send, q.c, "d", 1, 0));
  V("EPIPE: pending %d", sigpipe_pending<S>());
  for (int fd : {p.c, p.s, p.l, q.c, q.l}) R(SYS(close, fd));
  sigpipe_default_blocked<S>(false);
}

// SO_SNDBUF and SO_RCVBUF set after connect bound what a connection
// takes: small buffers (set on the established sender and receiver)
// hold far less than the defaults.
template <class S>
void sc_tcp_bufsize_after_connect(Log& L, const Env&) {
  TcpPair a = tcp_pair<S>(L, AF_INET);
  size_t deflt = tcp_fill<S>(a.c);
  TcpPair b = tcp_pair<S>(L, AF_INET);
  int small = 4096, v = 0;
  socklen_t vl;
  R(SYS(setsockopt, b.c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small));
  R(SYS(setsockopt, b.s, SOL_SOCKET, SO_RCVBUF, &small, sizeof small));
  GETOPT_V(b.c, SOL_SOCKET, SO_SNDBUF, "sndbuf %d");
  GETOPT_V(b.s, SOL_SOCKET, SO_RCVBUF, "rcvbuf %d");
  size_t got = tcp_fill<S>(b.c);
  V("small buffers take less than a quarter: %d", got * 4 < deflt ? 1 : 0);
  V("small buffers take at most 128 KiB: %d", got <= 128 * 1024 ? 1 : 0);
  for (int fd : {a.c, a.s, a.l, b.c, b.s, b.l}) R(SYS(close, fd));
}

#define DIFF(name) run_diff(&name<K<false>>, &name<K<true>>)

}  // namespace

TEST_CASE("tcp diff: connect, accept, names, options, data, end of stream", "[inet][tcp][diff]") { DIFF(sc_tcp_basic); }
TEST_CASE("tcp diff: half-close with shutdown(SHUT_WR)", "[inet][tcp][diff]") { DIFF(sc_tcp_half_close); }
TEST_CASE("tcp diff: close with unread data and SO_LINGER 0 reset the peer", "[inet][tcp][diff]") {
  DIFF(sc_tcp_reset);
}
TEST_CASE("tcp diff: SO_LINGER with a timeout, close after sending", "[inet][tcp][diff]") { DIFF(sc_tcp_linger); }
TEST_CASE("tcp diff: ECONNREFUSED, blocking and non-blocking", "[inet][tcp][diff]") { DIFF(sc_tcp_refused); }
TEST_CASE("tcp diff: non-blocking connect, poll and epoll, SO_ERROR", "[inet][tcp][diff]") {
  DIFF(sc_tcp_nonblock_connect);
}
TEST_CASE("tcp diff: 4 MiB over IPv4 and IPv6 from one thread, bytes hashed", "[inet][tcp][diff]") {
  DIFF(sc_tcp_bulk);
}
TEST_CASE("tcp diff: IPv6 and a dual-stack listener", "[inet][tcp][diff]") { DIFF(sc_tcp_v6); }
TEST_CASE("tcp diff: bind rules of stream sockets", "[inet][tcp][diff]") { DIFF(sc_tcp_bind_rules); }
TEST_CASE("tcp diff: a closed listener's port stays taken by its TIME_WAIT children", "[inet][tcp][diff]") {
  DIFF(sc_tcp_rebind_time_wait);
}
TEST_CASE("tcp diff: connect over a TIME_WAIT's 4-tuple (tcp_tw_reuse), a port shared with a TIME_WAIT",
          "[inet][tcp][diff]") {
  DIFF(sc_tcp_tw_reuse);
}
TEST_CASE("tcp diff: SIGPIPE on EPIPE, not with MSG_NOSIGNAL nor on ECONNRESET", "[inet][tcp][diff]") {
  DIFF(sc_tcp_sigpipe);
}
TEST_CASE("tcp diff: SO_SNDBUF/SO_RCVBUF set after connect bound the connection", "[inet][tcp][diff]") {
  DIFF(sc_tcp_bufsize_after_connect);
}
TEST_CASE("tcp diff: 3 MiB in sends and reads of many sizes, with MSG_PEEK, checked byte for byte", "[inet][tcp][diff]") {
  DIFF(sc_tcp_bytes_peek);
}
