// What the interface tests (shmif, virt, impairment) and their peer
// program share: a reproducible byte stream for bulk transfers, the
// sending and the byte-for-byte checking side of a TCP bulk transfer, a
// UDP request with retries, and setting up an interface with an address.
// Everything acts on the calling thread's current kernel through the
// public C API (rump_sys_*, rump_pub_*), so the peer program can use it
// without the test framework.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include <rump/rump.h>
#include <rump/rumpnet.h>

namespace netif_test {

// Byte i of the stream with this seed: 8-byte blocks of splitmix64 of
// (seed, block), so any stretch can be made or checked without the rest.
inline uint64_t stream_block(uint64_t seed, uint64_t block) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ull + block * 0xbf58476d1ce4e5b9ull + 1;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
inline void stream_fill(uint64_t seed, uint64_t off, char* buf, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint64_t b = stream_block(seed, (off + i) / 8);
    buf[i] = static_cast<char>(b >> (8 * ((off + i) % 8)));
  }
}

inline sockaddr_in in4(const char* a, uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  inet_pton(AF_INET, a, &s.sin_addr);
  return s;
}
inline sockaddr* sa(sockaddr_in& a) { return reinterpret_cast<sockaddr*>(&a); }

// Brings ifname up with addr/plen. 0 or the first errno.
inline int if_config(const char* ifname, const char* addr, int plen) {
  int e = rump_pub_netconfig_ipv4_ifaddr_cidr(ifname, addr, plen);
  if (e == 0) e = rump_pub_netconfig_ifup(ifname);
  return e;
}

// Sends n bytes of the stream with this seed on a connected socket, then
// shuts the sending side. true if all went.
inline bool stream_send(int fd, uint64_t seed, uint64_t n) {
  char buf[65536];
  uint64_t off = 0;
  while (off < n) {
    size_t k = n - off < sizeof buf ? static_cast<size_t>(n - off) : sizeof buf;
    stream_fill(seed, off, buf, k);
    size_t done = 0;
    while (done < k) {
      long w = rump_sys_write(fd, buf + done, k - done);
      if (w <= 0) return false;
      done += static_cast<size_t>(w);
    }
    off += k;
  }
  return rump_sys_shutdown(fd, SHUT_WR) == 0;
}

// What the receiving side of a bulk transfer saw.
struct StreamResult {
  uint64_t bytes = 0;
  uint64_t first_bad = UINT64_MAX;  // offset of the first byte that differed (none: UINT64_MAX)
  int error = 0;                    // errno of a failed read
};

// Reads to EOF, checking every byte against the stream with this seed.
inline StreamResult stream_recv(int fd, uint64_t seed) {
  StreamResult r;
  char buf[65536], want[65536];
  for (;;) {
    long n = rump_sys_read(fd, buf, sizeof buf);
    if (n < 0) {
      r.error = errno;
      return r;
    }
    if (n == 0) return r;
    stream_fill(seed, r.bytes, want, static_cast<size_t>(n));
    if (r.first_bad == UINT64_MAX && std::memcmp(buf, want, static_cast<size_t>(n)) != 0) {
      for (long i = 0; i < n; i++)
        if (buf[i] != want[i]) {
          r.first_bad = r.bytes + static_cast<uint64_t>(i);
          break;
        }
    }
    r.bytes += static_cast<uint64_t>(n);
  }
}

// A socket address for addr:port, IPv4 or IPv6 text ("2001:db8::1"); its
// length.
inline socklen_t any_addr(const char* addr, uint16_t port, sockaddr_in6& out) {
  std::memset(&out, 0, sizeof out);
  if (inet_pton(AF_INET6, addr, &out.sin6_addr) == 1) {
    out.sin6_family = AF_INET6;
    out.sin6_port = htons(port);
    return sizeof(sockaddr_in6);
  }
  sockaddr_in a = in4(addr, port);
  std::memcpy(&out, &a, sizeof a);
  return sizeof a;
}

// A listening TCP socket on addr:port (backlog 4), or -1.
inline int tcp_listen(const char* addr, uint16_t port) {
  sockaddr_in6 a;
  socklen_t len = any_addr(addr, port, a);
  int s = rump_sys_socket(a.sin6_family, SOCK_STREAM, 0);
  if (s < 0) return -1;
  int one = 1;
  rump_sys_setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (rump_sys_bind(s, reinterpret_cast<sockaddr*>(&a), len) != 0 || rump_sys_listen(s, 4) != 0) {
    rump_sys_close(s);
    return -1;
  }
  return s;
}

// A TCP connection to addr:port, or -1 with errno.
inline int tcp_connect(const char* addr, uint16_t port) {
  sockaddr_in6 a;
  socklen_t len = any_addr(addr, port, a);
  int s = rump_sys_socket(a.sin6_family, SOCK_STREAM, 0);
  if (s < 0) return -1;
  if (rump_sys_connect(s, reinterpret_cast<sockaddr*>(&a), len) != 0) {
    int e = errno;
    rump_sys_close(s);
    errno = e;
    return -1;
  }
  return s;
}

// Sets a receive timeout on a socket (for request/retry loops, not for
// judging speed).
inline void recv_timeout(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  rump_sys_setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

// Sends req to addr:port on UDP socket fd and waits for its echo (a reply
// equal to req: stale or duplicated echoes of earlier requests are
// skipped), sending again after each 200 ms without one (the first
// datagrams may wait for ARP or be lost on an impaired link), at most
// tries times. The echo's length, or -1.
inline long udp_request(int fd, const char* addr, uint16_t port, const void* req, size_t len, void* reply,
                        size_t cap, int tries = 50) {
  recv_timeout(fd, 200);
  sockaddr_in to = in4(addr, port);
  for (int i = 0; i < tries; i++) {
    if (rump_sys_sendto(fd, req, len, 0, sa(to), sizeof to) != static_cast<long>(len)) return -1;
    for (;;) {
      long n = rump_sys_recvfrom(fd, reply, cap, 0, nullptr, nullptr);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        break;
      }
      if (static_cast<size_t>(n) == len && std::memcmp(reply, req, len) == 0) return n;
    }
  }
  return -1;
}

// Echoes datagrams on a bound UDP socket until one says "quit" (or an
// error): the number echoed.
inline int udp_echo_until_quit(int fd) {
  int n = 0;
  static thread_local char buf[65536];
  for (;;) {
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    long k = rump_sys_recvfrom(fd, buf, sizeof buf, 0, sa(from), &fl);
    if (k < 0) return n;
    rump_sys_sendto(fd, buf, static_cast<size_t>(k), 0, sa(from), fl);
    if (k == 4 && std::memcmp(buf, "quit", 4) == 0) return n;
    n++;
  }
}

}  // namespace netif_test
