// TCP sockets against the rump kernel alone: what the host cannot show
// deterministically (the listen backlog, where lo completes a handshake
// inside connect()), many connections at once, orphaned connections at
// halt, threads of one kernel sending both ways.
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <atomic>
#include <thread>
#include <vector>

#include <rump/rump.h>
#include <rump/rumpnet.h>

#include "net_diff.h"
#include "tcp_scenario.h"

using namespace net_test;

namespace {

using RK = K<true>;

int tcp_state(int fd) {
  tcp_info ti{};
  socklen_t l = sizeof ti;
  if (rump_sys_getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) != 0) return -1;
  return ti.tcpi_state;
}

int listener(uint16_t* port, int backlog) {
  int l = static_cast<int>(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
  REQUIRE(l >= 0);
  sockaddr_in a = tcp_in4("127.0.0.1", 0);
  REQUIRE(rump_sys_bind(l, tcp_sa(a), sizeof a) == 0);
  REQUIRE(rump_sys_listen(l, backlog) == 0);
  *port = tcp_port<RK>(l);
  return l;
}

}  // namespace

TEST_CASE("tcp: the accept queue holds backlog + 1; later SYNs wait for room", "[inet][tcp]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    uint16_t port;
    int l = listener(&port, 1);
    sockaddr_in to = tcp_in4("127.0.0.1", port);
    int c[4];
    for (int i = 0; i < 4; i++) {
      c[i] = static_cast<int>(rump_sys_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
      REQUIRE(c[i] >= 0);
      errno = 0;
      REQUIRE(rump_sys_connect(c[i], tcp_sa(to), sizeof to) == -1);
      REQUIRE(errno == EINPROGRESS);
    }
    // lo runs the handshake inside connect(): two fit (Linux's
    // backlog + 1), the other two stay in SYN_SENT.
    CHECK(tcp_state(c[0]) == TCP_ESTABLISHED);
    CHECK(tcp_state(c[1]) == TCP_ESTABLISHED);
    CHECK(tcp_state(c[2]) == TCP_SYN_SENT);
    CHECK(tcp_state(c[3]) == TCP_SYN_SENT);
    REQUIRE(rump_sys_fcntl(l, F_SETFL, O_NONBLOCK) == 0);
    int a0 = static_cast<int>(rump_sys_accept(l, nullptr, nullptr));
    int a1 = static_cast<int>(rump_sys_accept(l, nullptr, nullptr));
    CHECK(a0 >= 0);
    CHECK(a1 >= 0);
    errno = 0;
    CHECK(rump_sys_accept(l, nullptr, nullptr) == -1);
    CHECK(errno == EAGAIN);
    // The retransmitted SYNs find room now.
    for (int i = 2; i < 4; i++) {
      pollfd pf{c[i], POLLOUT, 0};
      REQUIRE(rump_sys_poll(&pf, 1, -1) == 1);
      CHECK(pf.revents == POLLOUT);
      CHECK(tcp_state(c[i]) == TCP_ESTABLISHED);
    }
    REQUIRE(rump_sys_fcntl(l, F_SETFL, 0) == 0);
    int a2 = static_cast<int>(rump_sys_accept(l, nullptr, nullptr));
    int a3 = static_cast<int>(rump_sys_accept(l, nullptr, nullptr));
    CHECK(a2 >= 0);
    CHECK(a3 >= 0);
    for (int fd : {a0, a1, a2, a3, c[0], c[1], c[2], c[3], l}) rump_sys_close(fd);
  });
}

TEST_CASE("tcp: 100 connections at once, each echoing, then closed", "[inet][tcp]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    uint16_t port;
    int l = listener(&port, 128);
    constexpr int kN = 100;
    std::vector<int> cs, ss;
    sockaddr_in to = tcp_in4("127.0.0.1", port);
    for (int i = 0; i < kN; i++) {
      int c = static_cast<int>(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
      REQUIRE(c >= 0);
      REQUIRE(rump_sys_connect(c, tcp_sa(to), sizeof to) == 0);
      cs.push_back(c);
    }
    for (int i = 0; i < kN; i++) {
      int s = static_cast<int>(rump_sys_accept(l, nullptr, nullptr));
      REQUIRE(s >= 0);
      ss.push_back(s);
    }
    // Accepted in connection order: each server end echoes its client's
    // number.
    for (int i = 0; i < kN; i++) REQUIRE(rump_sys_send(cs[i], &i, sizeof i, 0) == sizeof i);
    for (int i = 0; i < kN; i++) {
      int v = -1;
      REQUIRE(rump_sys_recv(ss[i], &v, sizeof v, MSG_WAITALL) == sizeof v);
      CHECK(v == i);
      REQUIRE(rump_sys_send(ss[i], &v, sizeof v, 0) == sizeof v);
    }
    for (int i = 0; i < kN; i++) {
      int v = -1;
      REQUIRE(rump_sys_recv(cs[i], &v, sizeof v, MSG_WAITALL) == sizeof v);
      CHECK(v == i);
    }
    for (int i = 0; i < kN; i++) {
      REQUIRE(rump_sys_close(cs[i]) == 0);
      char b;
      CHECK(rump_sys_recv(ss[i], &b, 1, 0) == 0);
      REQUIRE(rump_sys_close(ss[i]) == 0);
    }
    rump_sys_close(l);
  });
}

TEST_CASE("tcp: orphaned connections (TIME_WAIT) and unaccepted ones go at halt", "[inet][tcp]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    uint16_t port;
    int l = listener(&port, 8);
    sockaddr_in to = tcp_in4("127.0.0.1", port);
    for (int i = 0; i < 4; i++) {
      int c = static_cast<int>(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
      REQUIRE(rump_sys_connect(c, tcp_sa(to), sizeof to) == 0);
      if (i < 2) {
        int s = static_cast<int>(rump_sys_accept(l, nullptr, nullptr));
        REQUIRE(s >= 0);
        // The active closer ends in TIME_WAIT, an orphan for 60 s.
        REQUIRE(rump_sys_close(c) == 0);
        char b;
        CHECK(rump_sys_recv(s, &b, 1, 0) == 0);
        REQUIRE(rump_sys_close(s) == 0);
      }
    }
    // Two connections are left unaccepted and their clients open; the
    // kernel's leak check at halt says whether everything went.
  });
}

TEST_CASE("tcp: a reset connection reports ECONNRESET once, then EPIPE to senders", "[inet][tcp]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    Log L{};
    TcpPair p = tcp_pair<RK>(L, AF_INET);
    linger lg{1, 0};
    REQUIRE(rump_sys_setsockopt(p.s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    REQUIRE(rump_sys_close(p.s) == 0);
    REQUIRE(rump_set_action(SIGPIPE, kSigIgn) == 0);
    char b;
    errno = 0;
    CHECK(rump_sys_recv(p.c, &b, 1, 0) == -1);
    CHECK(errno == ECONNRESET);
    errno = 0;
    CHECK(rump_sys_send(p.c, "x", 1, MSG_NOSIGNAL) == -1);
    CHECK(errno == EPIPE);
    errno = 0;
    CHECK(rump_sys_send(p.c, "x", 1, 0) == -1);
    CHECK(errno == EPIPE);
    rump_sys_close(p.c);
    rump_sys_close(p.l);
  });
}

TEST_CASE("tcp: two threads send 8 MiB each way at once on two CPUs", "[inet][tcp][concurrency]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up(rump_test::BootOpts{.ncpu = 2});
    Log L{};
    TcpPair p = tcp_pair<RK>(L, AF_INET);
    constexpr size_t kTotal = 8 << 20;
    uint64_t hashes[4] = {};
    auto sender = [&](int fd, uint64_t* h) {
      rump_kernel_set_current(up.k);
      static thread_local uint8_t buf[100000];
      uint64_t hh = 1469598103934665603ULL;
      for (size_t off = 0; off < kTotal;) {
        size_t n = kTotal - off < sizeof buf ? kTotal - off : sizeof buf;
        for (size_t i = 0; i < n; i++) buf[i] = TcpPump::byte_at(off + i);
        long w = rump_sys_send(fd, buf, n, 0);
        TCHECK(w > 0);
        if (w <= 0) break;
        TcpPump::hash(hh, buf, static_cast<size_t>(w));
        off += static_cast<size_t>(w);
      }
      TCHECK(rump_sys_shutdown(fd, SHUT_WR) == 0);
      *h = hh;
    };
    auto receiver = [&](int fd, uint64_t* h) {
      rump_kernel_set_current(up.k);
      static thread_local uint8_t buf[70000];
      uint64_t hh = 1469598103934665603ULL;
      size_t got = 0;
      for (;;) {
        long r = rump_sys_recv(fd, buf, sizeof buf, 0);
        TCHECK(r >= 0);
        if (r <= 0) break;
        TcpPump::hash(hh, buf, static_cast<size_t>(r));
        got += static_cast<size_t>(r);
      }
      TCHECK(got == kTotal);
      *h = hh;
    };
    std::thread t1(sender, p.c, &hashes[0]);
    std::thread t2(sender, p.s, &hashes[1]);
    std::thread t3(receiver, p.s, &hashes[2]);
    std::thread t4(receiver, p.c, &hashes[3]);
    t1.join();
    t2.join();
    t3.join();
    t4.join();
    CHECK_THREADS_OK();
    CHECK(hashes[0] == hashes[2]);
    CHECK(hashes[1] == hashes[3]);
    rump_sys_close(p.c);
    rump_sys_close(p.s);
    rump_sys_close(p.l);
  });
}

TEST_CASE("tcp: SO_SNDBUF/SO_RCVBUF after connect shrink and grow what a connection takes, data intact",
          "[inet][tcp]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    Log L{};
    // What one connection takes with the default buffers, with small ones
    // and with big ones (set on the established ends), nobody reading.
    size_t took[3];
    int sizes[3] = {0, 4096, 200000};
    for (int i = 0; i < 3; i++) {
      TcpPair p = tcp_pair<RK>(L, AF_INET);
      if (sizes[i]) {
        REQUIRE(rump_sys_setsockopt(p.c, SOL_SOCKET, SO_SNDBUF, &sizes[i], sizeof(int)) == 0);
        REQUIRE(rump_sys_setsockopt(p.s, SOL_SOCKET, SO_RCVBUF, &sizes[i], sizeof(int)) == 0);
      }
      took[i] = tcp_fill<RK>(p.c);
      // Then everything arrives, in order, and the buffers still work.
      std::vector<uint8_t> in(took[i]);
      REQUIRE(rump_sys_recv(p.s, in.data(), in.size(), MSG_WAITALL) == static_cast<long>(in.size()));
      REQUIRE(rump_sys_send(p.c, "tail", 4, 0) == 4);
      char t[4];
      REQUIRE(rump_sys_recv(p.s, t, 4, MSG_WAITALL) == 4);
      CHECK(std::memcmp(t, "tail", 4) == 0);
      rump_sys_close(p.c);
      rump_sys_close(p.s);
      rump_sys_close(p.l);
    }
    CHECK(took[1] * 4 < took[0]);
    // Big buffers hold at least what was asked for. They need not hold
    // more than the defaults: those grow with the window (autotuning).
    CHECK(took[2] >= static_cast<size_t>(sizes[2]));
    CHECK(took[2] > took[1] * 8);
  });
}

TEST_CASE("tcp: while a send buffer's bytes are lent to loopback packets, resizing and closing keep them",
          "[inet][tcp]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    Log L{};
    TcpPair p = tcp_pair<RK>(L, AF_INET6);
    // More than the receiver's window: sent bytes stay queued (and lent)
    // at the sender, whose buffer moves at every step meanwhile.
    int big = 100000, mid = 20000;
    std::vector<uint8_t> out(1500000);
    for (size_t i = 0; i < out.size(); i++) out[i] = TcpPump::byte_at(i);
    REQUIRE(rump_sys_fcntl(p.c, F_SETFL, O_NONBLOCK) == 0);
    size_t sent = 0, got = 0, bad = 0;
    std::vector<uint8_t> in(7000);
    int round = 0;
    while (got < out.size()) {
      if (sent < out.size()) {
        long w = rump_sys_send(p.c, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (w > 0) sent += static_cast<size_t>(w);
      }
      int sz = (round++ % 2) ? big : mid;
      REQUIRE(rump_sys_setsockopt(p.c, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz) == 0);
      long r = rump_sys_recv(p.s, in.data(), in.size(), 0);
      REQUIRE(r > 0);
      for (long i = 0; i < r; i++)
        if (in[static_cast<size_t>(i)] != out[got + static_cast<size_t>(i)]) bad++;
      got += static_cast<size_t>(r);
    }
    CHECK(bad == 0);
    CHECK(got == out.size());
    rump_sys_close(p.c);
    rump_sys_close(p.s);
    rump_sys_close(p.l);
  });
}

TEST_CASE("tcp: a full send buffer grows to twice what the windows let fly, unless SO_SNDBUF was set",
          "[inet][tcp]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    Log L{};
    // SO_SNDBUF after filling the sender's buffer while every packet on
    // lo is held for 200 ms: what was sent stays unacknowledged, so the
    // buffer is full while the peer's window (its receive buffer) and the
    // congestion window would let more fly.
    auto filled_sndbuf = [&](bool set) {
      TcpPair p = tcp_pair<RK>(L, AF_INET);
      int v = 106496;  // doubled: the default, 212992
      if (set) REQUIRE(rump_sys_setsockopt(p.c, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) == 0);
      // A segment from the peer tells the sender the peer's scaled window
      // (the SYN-ACK's is unscaled, at most 65535).
      char w = 'w';
      REQUIRE(rump_sys_send(p.s, &w, 1, 0) == 1);
      REQUIRE(rump_sys_recv(p.c, &w, 1, MSG_WAITALL) == 1);
      rump_netconfig_impair slow{1, 0, 0, 0, 200000};
      REQUIRE(rump_pub_netconfig_impair("lo", &slow) == 0);
      size_t took = tcp_fill<RK>(p.c);
      socklen_t len = sizeof v;
      REQUIRE(rump_sys_getsockopt(p.c, SOL_SOCKET, SO_SNDBUF, &v, &len) == 0);
      rump_netconfig_impair off{};
      REQUIRE(rump_pub_netconfig_impair("lo", &off) == 0);
      // Everything arrives, in order.
      std::vector<uint8_t> in(took);
      REQUIRE(rump_sys_recv(p.s, in.data(), in.size(), MSG_WAITALL) == static_cast<long>(in.size()));
      CHECK(took >= static_cast<size_t>(v) / 2);
      rump_sys_close(p.c);
      rump_sys_close(p.s);
      rump_sys_close(p.l);
      return v;
    };
    CHECK(filled_sndbuf(true) == 212992);
    // The peer's window is its receive buffer (212992 by default): the
    // buffer grows to twice that, once.
    CHECK(filled_sndbuf(false) == 2 * 212992);
  });
}

TEST_CASE("tcp: a reader that keeps up grows its receive buffer per round trip, unless SO_RCVBUF was set",
          "[inet][tcp]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    Log L{};
    // 8 MiB through lo with every packet held 1 ms (a round trip of about
    // 2 ms), read as it comes: SO_RCVBUF of the reading end afterwards,
    // and its receive window scale.
    auto transfer = [&](int set_rcvbuf) {
      TcpPair p = tcp_pair<RK>(L, AF_INET);
      if (set_rcvbuf) REQUIRE(rump_sys_setsockopt(p.s, SOL_SOCKET, SO_RCVBUF, &set_rcvbuf, sizeof(int)) == 0);
      rump_netconfig_impair slow{1, 0, 0, 0, 1000};
      REQUIRE(rump_pub_netconfig_impair("lo", &slow) == 0);
      constexpr size_t kTotal = 8u << 20;
      std::thread tx([&] {
        rump_kernel_set_current(up.k);
        std::vector<uint8_t> buf(65536);
        for (size_t i = 0; i < buf.size(); i++) buf[i] = TcpPump::byte_at(i);
        size_t sent = 0;
        while (sent < kTotal) {
          long n = rump_sys_send(p.c, buf.data(), buf.size(), 0);
          if (n <= 0) break;
          sent += static_cast<size_t>(n);
        }
      });
      std::vector<uint8_t> in(65536);
      size_t got = 0;
      while (got < kTotal) {
        long n = rump_sys_recv(p.s, in.data(), in.size(), 0);
        if (n <= 0) break;
        got += static_cast<size_t>(n);
      }
      tx.join();
      CHECK(got == kTotal);
      rump_netconfig_impair off{};
      REQUIRE(rump_pub_netconfig_impair("lo", &off) == 0);
      int v = 0;
      socklen_t len = sizeof v;
      REQUIRE(rump_sys_getsockopt(p.s, SOL_SOCKET, SO_RCVBUF, &v, &len) == 0);
      tcp_info ti{};
      socklen_t tl = sizeof ti;
      REQUIRE(rump_sys_getsockopt(p.s, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0);
      rump_sys_close(p.c);
      rump_sys_close(p.s);
      rump_sys_close(p.l);
      return std::pair<int, int>(v, static_cast<int>(ti.tcpi_rcv_wscale));
    };
    // The window scale is chosen at SYN time for tcp_rmem[2] (6 MiB: 7),
    // as Linux; the buffer grew past the default (212992) and stays
    // within 6 MiB.
    auto [grown, ws] = transfer(0);
    CHECK(ws == 7);
    CHECK(grown > 212992);
    CHECK(grown <= 6 * 1024 * 1024);
    // SO_RCVBUF set after the connection was made: no autotuning (the
    // scale was already chosen).
    auto [fixed, ws2] = transfer(100000);
    CHECK(fixed == 200000);
    CHECK(ws2 == 7);
  });
}

TEST_CASE("tcp: SO_RCVBUF shrunk while a window's data is in flight keeps that data (no retransmission)",
          "[inet][tcp]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    Log L{};
    TcpPair p = tcp_pair<RK>(L, AF_INET);
    // A segment from the reader tells the sender its scaled window.
    char w = 'w';
    REQUIRE(rump_sys_send(p.s, &w, 1, 0) == 1);
    REQUIRE(rump_sys_recv(p.c, &w, 1, MSG_WAITALL) == 1);
    // 150000 bytes leave at once (the window and the initial congestion
    // window of lo's MSS allow it) and are held 50 ms on the way, while
    // the reader shrinks its buffer to 8192 bytes.
    rump_netconfig_impair slow{1, 0, 0, 0, 50000};
    REQUIRE(rump_pub_netconfig_impair("lo", &slow) == 0);
    constexpr size_t kBytes = 150000;
    std::vector<uint8_t> out(kBytes);
    for (size_t i = 0; i < kBytes; i++) out[i] = TcpPump::byte_at(i);
    REQUIRE(rump_sys_send(p.c, out.data(), out.size(), 0) == static_cast<long>(kBytes));
    int small = 4096;
    REQUIRE(rump_sys_setsockopt(p.s, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
    std::vector<uint8_t> in(kBytes);
    REQUIRE(rump_sys_recv(p.s, in.data(), in.size(), MSG_WAITALL) == static_cast<long>(kBytes));
    CHECK(in == out);
    rump_netconfig_impair off{};
    REQUIRE(rump_pub_netconfig_impair("lo", &off) == 0);
    tcp_info ti{};
    socklen_t tl = sizeof ti;
    REQUIRE(rump_sys_getsockopt(p.c, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0);
    // What the window let fly was kept: nothing was sent twice.
    CHECK(ti.tcpi_total_retrans == 0);
    int v = 0;
    socklen_t len = sizeof v;
    REQUIRE(rump_sys_getsockopt(p.s, SOL_SOCKET, SO_RCVBUF, &v, &len) == 0);
    CHECK(v == 8192);
    rump_sys_close(p.c);
    rump_sys_close(p.s);
    rump_sys_close(p.l);
  });
}
