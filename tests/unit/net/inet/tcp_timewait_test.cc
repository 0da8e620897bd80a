// TIME_WAIT after the socket is gone: a connection whose socket was
// closed leaves a compact record in the PCB table. These tests watch it
// from outside: the segments it sends (seen by a raw IPPROTO_TCP socket on
// lo, which gets a copy of every TCP packet lo delivers), the memory it
// costs, the port it holds, and its end at its timer (a sim kernel, whose
// clock jumps) and at halt (the kernel's leak check).
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <rump/rump.h>
#include <rump/rumpnet.h>

#include "net_diff.h"
#include "tcp_raw.h"
#include "tcp_scenario.h"

using namespace net_test;
using namespace tcp_raw;

namespace {

using RK = K<true>;

int listener(uint16_t* port) {
  int l = static_cast<int>(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
  REQUIRE(l >= 0);
  sockaddr_in a = tcp_in4("127.0.0.1", 0);
  REQUIRE(rump_sys_bind(l, tcp_sa(a), sizeof a) == 0);
  REQUIRE(rump_sys_listen(l, 64) == 0);
  *port = tcp_port<RK>(l);
  return l;
}

// A connection to the listener on port one end of which closes first
// and so stays in TIME_WAIT with no socket (the accepted end, or the
// client with client_first); returns the client's port.
uint16_t closes_first(int l, uint16_t port, bool client_first) {
  sockaddr_in to = tcp_in4("127.0.0.1", port);
  int c = static_cast<int>(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
  REQUIRE(c >= 0);
  REQUIRE(rump_sys_connect(c, tcp_sa(to), sizeof to) == 0);
  uint16_t cport = tcp_port<RK>(c);
  int s = static_cast<int>(rump_sys_accept(l, nullptr, nullptr));
  REQUIRE(s >= 0);
  int first = client_first ? c : s, second = client_first ? s : c;
  REQUIRE(rump_sys_close(first) == 0);
  char b;
  REQUIRE(rump_sys_recv(second, &b, 1, 0) == 0);
  REQUIRE(rump_sys_close(second) == 0);
  return cport;
}
uint16_t server_closes_first(int l, uint16_t port) { return closes_first(l, port, false); }

}  // namespace

TEST_CASE("tcp TIME_WAIT: the record acknowledges a retransmitted FIN, ignores stray segments, holds the port",
          "[inet][tcp]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    int r = static_cast<int>(rump_sys_socket(AF_INET, SOCK_RAW, IPPROTO_TCP));
    REQUIRE(r >= 0);
    uint16_t port;
    int l = listener(&port);
    uint16_t cport = server_closes_first(l, port);
    std::vector<Seen> v = drain(r);
    const Seen* sfin = find(v, port, cport, kFin | kAck);
    const Seen* cfin = find(v, cport, port, kFin | kAck);
    REQUIRE(sfin);
    REQUIRE(cfin);
    uint32_t srv_nxt = sfin->seq + 1, cli_fin = cfin->seq;

    // A bare in-window ACK gets nothing, nor does an out-of-window RST.
    inject(r, cport, port, cli_fin + 1, srv_nxt, kAck);
    inject(r, cport, port, cli_fin + 1000000, 0, kRst);
    v = drain(r);
    CHECK(find(v, port, cport, 0) == nullptr);

    // The record holds the listener's port like the connection did.
    REQUIRE(rump_sys_close(l) == 0);
    int b = static_cast<int>(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in a = tcp_in4("127.0.0.1", port);
    errno = 0;
    CHECK(rump_sys_bind(b, tcp_sa(a), sizeof a) == -1);
    CHECK(errno == EADDRINUSE);

    // The client's FIN again, as if our ACK had been lost: an ACK. The
    // client's port has no socket any more and answers that ACK with a
    // RST, which is exact and ends TIME_WAIT (Linux's default, rfc1337
    // off): the port is free again.
    inject(r, cport, port, cli_fin, srv_nxt, kFin | kAck);
    v = drain(r);
    const Seen* ack = find(v, port, cport, kAck);
    REQUIRE(ack);
    CHECK(ack->flags == kAck);
    CHECK(ack->seq == srv_nxt);
    CHECK(ack->ack == cli_fin + 1);
    const Seen* rst = find(v, cport, port, kRst);
    REQUIRE(rst);
    CHECK(rst->seq == cli_fin + 1);
    CHECK(rump_sys_bind(b, tcp_sa(a), sizeof a) == 0);
    // Now a FIN meets a bound socket that does not listen: a RST.
    inject(r, cport, port, cli_fin, srv_nxt, kFin | kAck);
    v = drain(r);
    CHECK(find(v, port, cport, kRst) != nullptr);
    rump_sys_close(b);
    rump_sys_close(r);
  });
}

TEST_CASE("tcp TIME_WAIT: a newer SYN on the same 4-tuple reopens it with an ISS past the old one's",
          "[inet][tcp]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    int r = static_cast<int>(rump_sys_socket(AF_INET, SOCK_RAW, IPPROTO_TCP));
    REQUIRE(r >= 0);
    uint16_t port;
    int l = listener(&port);
    uint16_t cport = server_closes_first(l, port);
    std::vector<Seen> v = drain(r);
    const Seen* sfin = find(v, port, cport, kFin | kAck);
    REQUIRE(sfin);
    uint32_t srv_nxt = sfin->seq + 1;
    // The new SYN's timestamp must be newer than the last one the record
    // saw: let the millisecond clock move on.
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(3)) {
    }
    int c = static_cast<int>(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in from = tcp_in4("127.0.0.1", cport), to = tcp_in4("127.0.0.1", port);
    REQUIRE(rump_sys_bind(c, tcp_sa(from), sizeof from) == 0);
    REQUIRE(rump_sys_connect(c, tcp_sa(to), sizeof to) == 0);
    v = drain(r);
    const Seen* synack = find(v, port, cport, kSyn | kAck);
    REQUIRE(synack);
    CHECK(synack->seq == srv_nxt + 65535 + 2);
    int s = static_cast<int>(rump_sys_accept(l, nullptr, nullptr));
    REQUIRE(s >= 0);
    REQUIRE(rump_sys_send(c, "hi", 2, 0) == 2);
    char b[2];
    CHECK(rump_sys_recv(s, b, 2, MSG_WAITALL) == 2);
    rump_sys_close(s);
    rump_sys_close(c);
    rump_sys_close(l);
    rump_sys_close(r);
  });
}

TEST_CASE("tcp TIME_WAIT: thousands of closed connections cost a small record each and go at halt",
          "[inet][tcp]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    uint16_t port;
    int l = listener(&port);
    // Warm up: the connection hash and the port lists grow once.
    for (int i = 0; i < 600; i++) server_closes_first(l, port);
    size_t before = up.mem();
    constexpr int kN = 2000;
    for (int i = 0; i < kN; i++) server_closes_first(l, port);
    size_t after = up.mem();
    size_t each = after > before ? (after - before) / kN : 0;
    INFO("bytes per TIME_WAIT connection: " << each);
    // A whole socket, control block and connection took several KiB.
    CHECK(each < 512);
    rump_sys_close(l);
    // The kernel's leak check at halt says whether all of them went.
  });
}

TEST_CASE("tcp TIME_WAIT: records go at their timer, 60 seconds on (sim kernel)", "[inet][tcp]") {
  rump_test::KernelUp up(rump_test::BootOpts{.backend = "sim"});
  uint16_t port;
  int l = listener(&port);
  server_closes_first(l, port);
  REQUIRE(rump_sys_close(l) == 0);
  int b = static_cast<int>(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = tcp_in4("127.0.0.1", port);
  errno = 0;
  CHECK(rump_sys_bind(b, tcp_sa(a), sizeof a) == -1);
  CHECK(errno == EADDRINUSE);
  timespec ts{59, 0};
  REQUIRE(rump_sys_nanosleep(&ts, nullptr) == 0);
  CHECK(rump_sys_bind(b, tcp_sa(a), sizeof a) == -1);
  ts = {2, 0};
  REQUIRE(rump_sys_nanosleep(&ts, nullptr) == 0);
  CHECK(rump_sys_bind(b, tcp_sa(a), sizeof a) == 0);
  rump_sys_close(b);
}

TEST_CASE("tcp TIME_WAIT: the ephemeral search takes a record's 4-tuple over a second on, as tcp_tw_reuse says "
          "(sim kernel)",
          "[inet][tcp]") {
  rump_test::KernelUp up(rump_test::BootOpts{.backend = "sim"});
  int r = static_cast<int>(rump_sys_socket(AF_INET, SOCK_RAW, IPPROTO_TCP));
  REQUIRE(r >= 0);
  // The listener's port first, from the whole range.
  uint16_t port;
  int l = listener(&port);
  const char range[] = "40000 40000";
  REQUIRE(rump_sys_sysctlbyname("net.ipv4.ip_local_port_range", nullptr, nullptr, range, sizeof range - 1) == 0);
  char got[32] = {};
  size_t len = sizeof got;
  REQUIRE(rump_sys_sysctlbyname("net.ipv4.ip_local_port_range", got, &len, nullptr, 0) == 0);
  CHECK(std::string(got) == "40000\t40000");
  int reuse = 0;
  len = sizeof reuse;
  REQUIRE(rump_sys_sysctlbyname("net.ipv4.tcp_tw_reuse", &reuse, &len, nullptr, 0) == 0);
  CHECK(reuse == 2);  // Linux's default: loopback only
  sockaddr_in to = tcp_in4("127.0.0.1", port);
  auto try_connect = [&] {
    int c = static_cast<int>(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
    errno = 0;
    int rc = static_cast<int>(rump_sys_connect(c, tcp_sa(to), sizeof to));
    int e = rc == 0 ? 0 : errno;
    if (rc == 0) {
      int s = static_cast<int>(rump_sys_accept(l, nullptr, nullptr));
      REQUIRE(s >= 0);
      rump_sys_close(s);
    }
    rump_sys_close(c);
    return e;
  };
  timespec sec{1, 0};
  for (int mode : {2, 1, 0}) {
    INFO("tcp_tw_reuse " << mode);
    REQUIRE(rump_sys_sysctlbyname("net.ipv4.tcp_tw_reuse", nullptr, nullptr, &mode, sizeof mode) == 0);
    // From the one ephemeral port, the client closing first: its record
    // holds 40000 -> port.
    CHECK(closes_first(l, port, true) == 40000);
    std::vector<Seen> v = drain(r);
    const Seen* fin = find(v, 40000, port, kFin | kAck);
    REQUIRE(fin);
    uint32_t fin_seq = fin->seq;
    // The record's last timestamp is from this second: not yet.
    CHECK(try_connect() == EADDRNOTAVAIL);
    REQUIRE(rump_sys_nanosleep(&sec, nullptr) == 0);
    drain(r);
    int e = try_connect();
    if (mode == 0) {
      CHECK(e == EADDRNOTAVAIL);
      // Let the record go (60 s), as the next round needs the port.
      timespec wait{61, 0};
      REQUIRE(rump_sys_nanosleep(&wait, nullptr) == 0);
      continue;
    }
    CHECK(e == 0);
    // The new incarnation starts past anything the old one sent.
    v = drain(r);
    const Seen* syn = find(v, 40000, port, kSyn);
    REQUIRE(syn);
    CHECK(syn->seq == fin_seq + 1 + 65535 + 2);
  }
  int bad = 3;
  errno = 0;
  CHECK(rump_sys_sysctlbyname("net.ipv4.tcp_tw_reuse", nullptr, nullptr, &bad, sizeof bad) == -1);
  CHECK(errno == EINVAL);
  rump_sys_close(l);
  rump_sys_close(r);
}
