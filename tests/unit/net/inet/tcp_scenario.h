// tcp_scenario.h: helpers for TCP scenarios written once for the host
// kernel and the rump kernel (S is net_diff.h's K<bool>): addresses, a
// connected pair over loopback, and a one-thread pump that moves a stream
// both ways through non-blocking sockets and hashes the bytes.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>

#include <cstdint>
#include <cstring>

#include "net_diff.h"
#include "sockaddr6.h"

namespace net_test {

inline sockaddr_in tcp_in4(const char* a, uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  inet_pton(AF_INET, a, &s.sin_addr);
  return s;
}
inline sockaddr_in6 tcp_in6(const char* a, uint16_t port) { return in6(a, port); }
inline sockaddr* tcp_sa(sockaddr_in& a) { return reinterpret_cast<sockaddr*>(&a); }
inline sockaddr* tcp_sa(sockaddr_in6& a) { return reinterpret_cast<sockaddr*>(&a); }

template <class S>
uint16_t tcp_port(int fd) {
  sockaddr_in a{};
  socklen_t l = sizeof a;
  if (SYS(getsockname, fd, tcp_sa(a), &l) != 0) return 0;
  return ntohs(a.sin_port);
}
template <class S>
uint16_t tcp_port6(int fd) {
  sockaddr_in6 a{};
  socklen_t l = sizeof a;
  if (SYS(getsockname, fd, tcp_sa(a), &l) != 0) return 0;
  return ntohs(a.sin6_port);
}

// A listener on the loopback address of fam, a client connected to it and
// the accepted end (all blocking).
struct TcpPair {
  int l = -1, c = -1, s = -1;
};
template <class S>
TcpPair tcp_pair(Log& L, int fam) {
  TcpPair p;
  p.l = F(SYS(socket, fam, SOCK_STREAM, 0));
  p.c = F(SYS(socket, fam, SOCK_STREAM, 0));
  if (fam == AF_INET6) {
    sockaddr_in6 a = tcp_in6("::1", 0);
    R(SYS(bind, p.l, tcp_sa(a), sizeof a));
    R(SYS(listen, p.l, 16));
    sockaddr_in6 to = tcp_in6("::1", tcp_port6<S>(p.l));
    R(SYS(connect, p.c, tcp_sa(to), sizeof to));
  } else {
    sockaddr_in a = tcp_in4("127.0.0.1", 0);
    R(SYS(bind, p.l, tcp_sa(a), sizeof a));
    R(SYS(listen, p.l, 16));
    sockaddr_in to = tcp_in4("127.0.0.1", tcp_port<S>(p.l));
    R(SYS(connect, p.c, tcp_sa(to), sizeof to));
  }
  p.s = F(SYS(accept, p.l, nullptr, nullptr));
  return p;
}

// FNV-1a over a stream, and the pattern the pump sends (a function of the
// offset, so that a lost, doubled or reordered byte changes the hash).
struct TcpPump {
  explicit TcpPump(size_t total) : total(total) {}
  size_t total;
  size_t sent = 0, received = 0;
  uint64_t sent_hash = 1469598103934665603ULL, recv_hash = 1469598103934665603ULL;
  static uint8_t byte_at(size_t off) { return static_cast<uint8_t>((off * 2654435761u) >> 13); }
  static void hash(uint64_t& h, const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
  }
};

// Moves pump.total bytes from `from` to `to` (both non-blocking) in one
// thread; false on an error. Ends after the sender shut down writing and
// the receiver read the end of stream.
template <class S>
bool tcp_pump(TcpPump& pump, int from, int to) {
  static uint8_t out[65536], in[65536];
  bool shut = false;
  for (;;) {
    if (pump.sent < pump.total) {
      size_t n = pump.total - pump.sent < sizeof out ? pump.total - pump.sent : sizeof out;
      for (size_t i = 0; i < n; i++) out[i] = TcpPump::byte_at(pump.sent + i);
      long w = SYS(send, from, out, n, MSG_NOSIGNAL);
      if (w > 0) {
        TcpPump::hash(pump.sent_hash, out, static_cast<size_t>(w));
        pump.sent += static_cast<size_t>(w);
      } else if (errno != EAGAIN) {
        return false;
      }
    } else if (!shut) {
      if (SYS(shutdown, from, SHUT_WR) != 0) return false;
      shut = true;
    }
    long r = SYS(recv, to, in, sizeof in, 0);
    if (r > 0) {
      TcpPump::hash(pump.recv_hash, in, static_cast<size_t>(r));
      pump.received += static_cast<size_t>(r);
      continue;
    }
    if (r == 0) return shut;
    if (errno != EAGAIN) return false;
    pollfd pf[2] = {{to, POLLIN, 0}, {from, static_cast<short>(pump.sent < pump.total ? POLLOUT : 0), 0}};
    if (SYS(poll, pf, 2, -1) < 0) return false;
  }
}

// Sends 1 KiB pieces on a non-blocking socket until the send buffer and
// the peer's window are full (EAGAIN); returns how many bytes went.
template <class S>
size_t tcp_fill(int fd) {
  static uint8_t piece[1024];
  size_t total = 0;
  for (;;) {
    long w = SYS(send, fd, piece, sizeof piece, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w <= 0) return total;
    total += static_cast<size_t>(w);
  }
}

}  // namespace net_test
