// AF_UNIX tests against the rump kernel alone: what the host cannot show
// (kernel memory coming back after descriptors in flight were collected)
// and stress across both virtual CPUs.
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "net_diff.h"

using namespace net_test;

namespace {

long send_fds(int sock, const int* fds, int n) {
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * 8)] = {};
  char c = 'x';
  iovec iov{&c, 1};
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
  return rump_sys_sendmsg(sock, &mh, 0);
}

}  // namespace

TEST_CASE("net: descriptors in flight on unreachable sockets are collected; kernel memory comes back", "[net]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    rump_test::Kid kid = rump_test::fork_kid();
    rump_lwproc_switch(kid.l);
    // Warm up what stays allocated once used: the descriptor table's slots.
    int w[2];
    for (int i = 0; i < 8; i++) REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_STREAM, 0, w) == 0);
    for (int fd = 0; fd < 64; fd++) rump_sys_close(fd);
    size_t before = up.mem();
    for (int round = 0; round < 3; round++) {
      // A pair that carries its own descriptors, another that carries the
      // first, a datagram socket that carries itself, and a pipe.
      int a[2], b[2], d[2], p[2];
      REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0);
      REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_SEQPACKET, 0, b) == 0);
      REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_DGRAM, 0, d) == 0);
      REQUIRE(rump_sys_pipe(p) == 0);
      CHECK(send_fds(a[0], a, 2) == 1);
      CHECK(send_fds(a[1], a, 2) == 1);
      CHECK(send_fds(b[0], a, 2) == 1);
      CHECK(send_fds(b[1], b, 2) == 1);
      CHECK(send_fds(d[0], d, 2) == 1);
      CHECK(send_fds(d[1], p, 2) == 1);
      for (int f : {a[0], a[1], b[0], b[1], d[0], d[1], p[0], p[1]}) CHECK(rump_sys_close(f) == 0);
    }
    // The collector runs at the last close of a local socket (as Linux's):
    // one more pair made and closed.
    REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_STREAM, 0, w) == 0);
    rump_sys_close(w[0]);
    rump_sys_close(w[1]);
    CHECK(up.mem() == before);
    // A reachable socket keeps what is in flight to it.
    int a[2], q[2];
    REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0);
    REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_STREAM, 0, q) == 0);
    CHECK(send_fds(a[0], q, 2) == 1);
    CHECK(rump_sys_close(q[0]) == 0);
    CHECK(rump_sys_close(q[1]) == 0);
    int x[2];
    REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_STREAM, 0, x) == 0);
    CHECK(rump_sys_close(x[0]) == 0);  // a close that runs the collector
    CHECK(rump_sys_close(x[1]) == 0);
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * 2)] = {};
    char c;
    iovec iov{&c, 1};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof ctl;
    REQUIRE(rump_sys_recvmsg(a[1], &mh, 0) == 1);
    int got[2];
    std::memcpy(got, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof got);
    CHECK(rump_sys_write(got[0], "ok", 2) == 2);
    char buf[4] = {};
    CHECK(rump_sys_read(got[1], buf, sizeof buf) == 2);
    for (int f : {a[0], a[1], got[0], got[1]}) rump_sys_close(f);
    CHECK(up.mem() == before);
    rump_lwproc_switch(nullptr);
  });
}

TEST_CASE("net: permission to connect needs write on the socket inode (as a non-root user)", "[net]") {
  Env env = make_env();
  in_rump(env, [&] {
    sockaddr_un a;
    socklen_t alen = path_addr(a, env, "perm");
    int l = rump_sys_socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(rump_sys_bind(l, sa(a), alen) == 0);
    REQUIRE(rump_sys_listen(l, 4) == 0);
    REQUIRE(rump_sys_chmod(env.dir, 0777) == 0);
    REQUIRE(rump_sys_chmod(a.sun_path, 0755) == 0);
    REQUIRE(rump_sys_setgid(1000) == 0);
    REQUIRE(rump_sys_setuid(1000) == 0);
    int c = rump_sys_socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_ERRNO(EACCES, rump_sys_connect(c, sa(a), alen));
    int d = rump_sys_socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK_ERRNO(EACCES, rump_sys_sendto(d, "x", 1, 0, sa(a), alen));
    // A socket the user binds is the user's, with the umask applied.
    sockaddr_un m;
    socklen_t mlen = path_addr(m, env, "mine");
    CHECK(rump_sys_bind(d, sa(m), mlen) == 0);
    struct stat st;
    REQUIRE(rump_sys_stat(m.sun_path, &st) == 0);
    CHECK(st.st_uid == 1000);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == (0777 & ~022));
    CHECK(rump_sys_connect(rump_sys_socket(AF_UNIX, SOCK_DGRAM, 0), sa(m), mlen) == 0);
    // A directory the user cannot write: bind is EACCES.
    sockaddr_un r;
    socklen_t rlen = path_addr(r, env, "");
    std::strcpy(r.sun_path, "/x.sock");
    rlen = offsetof(sockaddr_un, sun_path) + 8;
    CHECK_ERRNO(EACCES, rump_sys_bind(rump_sys_socket(AF_UNIX, SOCK_STREAM, 0), sa(r), rlen));
  });
  std::error_code ec;
  std::filesystem::remove_all(env.dir, ec);
}

TEST_CASE("net: many threads connect, echo and close on both CPUs", "[net][concurrency]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up(rump_test::BootOpts{.ncpu = 2});
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, "\0stress", 7);
    socklen_t alen = offsetof(sockaddr_un, sun_path) + 7;
    int l = rump_sys_socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(rump_sys_bind(l, sa(a), alen) == 0);
    REQUIRE(rump_sys_listen(l, 64) == 0);
    constexpr int kClients = 4, kServers = 3, kRounds = 150;
    std::atomic<int> tickets{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < kServers; i++) {
      ts.emplace_back([&] {
        rump_kernel_set_current(up.k);
        while (tickets.fetch_add(1) < kClients * kRounds) {
          int s = rump_sys_accept(l, nullptr, nullptr);
          TCHECK(s >= 0);
          if (s < 0) continue;
          char buf[256];
          long n;
          while ((n = rump_sys_read(s, buf, sizeof buf)) > 0) TCHECK(rump_sys_write(s, buf, n) == n);
          TCHECK(n == 0);
          rump_sys_close(s);
        }
      });
    }
    for (int i = 0; i < kClients; i++) {
      ts.emplace_back([&, i] {
        rump_kernel_set_current(up.k);
        for (int r = 0; r < kRounds; r++) {
          int c = rump_sys_socket(AF_UNIX, SOCK_STREAM, 0);
          TCHECK(c >= 0);
          TCHECK(rump_sys_connect(c, sa(a), alen) == 0);
          char msg[100], back[100];
          std::memset(msg, 'a' + i, sizeof msg);
          msg[0] = static_cast<char>(r);
          TCHECK(rump_sys_write(c, msg, sizeof msg) == sizeof msg);
          TCHECK(rump_sys_recvfrom(c, back, sizeof back, MSG_WAITALL, nullptr, nullptr) == sizeof back);
          TCHECK(std::memcmp(msg, back, sizeof msg) == 0);
          TCHECK(rump_sys_shutdown(c, SHUT_WR) == 0);
          TCHECK(rump_sys_read(c, back, 1) == 0);
          rump_sys_close(c);
        }
      });
    }
    // Pairs torn down while their peers are blocked in them.
    for (int i = 0; i < 2; i++) {
      ts.emplace_back([&] {
        rump_kernel_set_current(up.k);
        for (int r = 0; r < 100; r++) {
          int p[2];
          TCHECK(rump_sys_socketpair(AF_UNIX, r % 2 ? SOCK_SEQPACKET : SOCK_STREAM, 0, p) == 0);
          std::thread reader([&] {
            rump_kernel_set_current(up.k);
            char b[64];
            long n;
            while ((n = rump_sys_read(p[1], b, sizeof b)) > 0) {
            }
            TCHECK(n == 0 || (n < 0 && errno == ECONNRESET));
          });
          for (int k = 0; k < 10; k++) rump_sys_send(p[0], "0123456789", 10, MSG_NOSIGNAL);
          rump_sys_close(p[0]);
          reader.join();
          rump_sys_close(p[1]);
        }
      });
    }
    for (auto& t : ts) t.join();
    CHECK_THREADS_OK();
    rump_sys_close(l);
  });
}

TEST_CASE("net: a bad user pointer is EFAULT for every socket, epoll and timerfd call", "[net]") {
  Env env = make_env();
  in_rump(env, [&] {
    char* bad = reinterpret_cast<char*>(8);
    int p[2];
    REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p) == 0);
    CHECK_ERRNO(EFAULT, rump_sys_socketpair(AF_UNIX, SOCK_STREAM, 0, reinterpret_cast<int*>(bad)));
    int s = rump_sys_socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_ERRNO(EFAULT, rump_sys_bind(s, bad, 20));
    CHECK_ERRNO(EFAULT, rump_sys_connect(s, bad, 20));
    socklen_t len = sizeof(sockaddr_un);
    sockaddr_un a;
    CHECK_ERRNO(EFAULT, rump_sys_getsockname(p[0], bad, &len));
    CHECK_ERRNO(EFAULT, rump_sys_getsockname(p[0], &a, reinterpret_cast<socklen_t*>(bad)));
    CHECK_ERRNO(EFAULT, rump_sys_getpeername(p[0], bad, &len));
    int v = 1;
    CHECK_ERRNO(EFAULT, rump_sys_setsockopt(p[0], SOL_SOCKET, SO_PASSCRED, bad, sizeof v));
    len = sizeof v;
    CHECK_ERRNO(EFAULT, rump_sys_getsockopt(p[0], SOL_SOCKET, SO_TYPE, bad, &len));
    CHECK_ERRNO(EFAULT, rump_sys_getsockopt(p[0], SOL_SOCKET, SO_TYPE, &v, reinterpret_cast<socklen_t*>(bad)));
    CHECK_ERRNO(EFAULT, rump_sys_sendto(p[0], bad, 10, 0, nullptr, 0));
    CHECK_ERRNO(EFAULT, rump_sys_sendmsg(p[0], bad, 0));
    CHECK_ERRNO(EFAULT, rump_sys_sendmmsg(p[0], bad, 1, 0));
    REQUIRE(rump_sys_write(p[0], "abc", 3) == 3);
    CHECK_ERRNO(EFAULT, rump_sys_recvfrom(p[1], bad, 10, 0, nullptr, nullptr));
    REQUIRE(rump_sys_write(p[0], "abc", 3) == 3);
    CHECK_ERRNO(EFAULT, rump_sys_recvmsg(p[1], bad, 0));
    CHECK_ERRNO(EFAULT, rump_sys_recvmmsg(p[1], bad, 1, 0, nullptr));
    // listen + accept into a bad address buffer
    sockaddr_un la;
    socklen_t lalen = path_addr(la, env, "ef");
    REQUIRE(rump_sys_bind(s, sa(la), lalen) == 0);
    REQUIRE(rump_sys_listen(s, 1) == 0);
    int c = rump_sys_socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(rump_sys_connect(c, sa(la), lalen) == 0);
    len = sizeof a;
    CHECK_ERRNO(EFAULT, rump_sys_accept(s, bad, &len));
    int ep = rump_sys_epoll_create1(0);
    CHECK_ERRNO(EFAULT, rump_sys_epoll_ctl(ep, EPOLL_CTL_ADD, p[0], bad));
    epoll_event ev{EPOLLOUT, {}};
    REQUIRE(rump_sys_epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0);
    CHECK_ERRNO(EFAULT, rump_sys_epoll_wait(ep, bad, 1, 0));
    int t = rump_sys_timerfd_create(CLOCK_MONOTONIC, 0);
    CHECK_ERRNO(EFAULT, rump_sys_timerfd_settime(t, 0, bad, nullptr));
    CHECK_ERRNO(EFAULT, rump_sys_timerfd_gettime(t, bad));
    for (int f : {p[0], p[1], s, c, ep, t}) rump_sys_close(f);
  });
  std::error_code ec;
  std::filesystem::remove_all(env.dir, ec);
}

TEST_CASE("net: sendmmsg sends a batch and recvmmsg with MSG_WAITFORONE returns what is queued", "[net]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    int p[2];
    REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_DGRAM, 0, p) == 0);
    const char* words[3] = {"one", "three", "seventeen"};
    iovec out_iov[3];
    mmsghdr out[3];
    std::memset(out, 0, sizeof out);
    for (int i = 0; i < 3; i++) {
      out_iov[i] = {const_cast<char*>(words[i]), std::strlen(words[i])};
      out[i].msg_hdr.msg_iov = &out_iov[i];
      out[i].msg_hdr.msg_iovlen = 1;
      out[i].msg_len = 12345;
    }
    CHECK(rump_sys_sendmmsg(p[0], out, 3, 0) == 3);
    for (int i = 0; i < 3; i++) CHECK(out[i].msg_len == std::strlen(words[i]));

    char bufs[5][16];
    iovec in_iov[5];
    mmsghdr in[5];
    std::memset(in, 0, sizeof in);
    for (int i = 0; i < 5; i++) {
      in_iov[i] = {bufs[i], sizeof bufs[i]};
      in[i].msg_hdr.msg_iov = &in_iov[i];
      in[i].msg_hdr.msg_iovlen = 1;
    }
    // Blocking socket: the first message is waited for, the rest are not.
    CHECK(rump_sys_recvmmsg(p[1], in, 5, MSG_WAITFORONE, nullptr) == 3);
    for (int i = 0; i < 3; i++) {
      REQUIRE(in[i].msg_len == std::strlen(words[i]));
      CHECK(std::memcmp(bufs[i], words[i], in[i].msg_len) == 0);
    }
    CHECK_ERRNO(EAGAIN, rump_sys_recvmmsg(p[1], in, 5, MSG_DONTWAIT, nullptr));
    CHECK_ERRNO(ENOTSOCK, rump_sys_sendmmsg(0, out, 1, 0));
    rump_sys_close(p[0]);
    rump_sys_close(p[1]);
  });
}

TEST_CASE("net: a stream moves in reused pieces: every byte arrives in order, memory comes back at close", "[net]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up;
    rump_test::Kid kid = rump_test::fork_kid();
    rump_lwproc_switch(kid.l);
    int w[2];
    REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_STREAM, 0, w) == 0);
    rump_sys_close(w[0]);
    rump_sys_close(w[1]);
    size_t before = up.mem();
    int p[2];
    REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0);
    // Writes of odd sizes (small records, whole pieces, a piece and a
    // tail), each read back in reads of another size, several rounds so
    // that cached records are reused.
    std::vector<unsigned char> out(100 * 1024), in(out.size());
    for (size_t i = 0; i < out.size(); i++) out[i] = static_cast<unsigned char>(i * 7 + i / 251);
    for (size_t size : {size_t{1}, size_t{300}, size_t{16 * 1024}, size_t{40000}, out.size()}) {
      for (int round = 0; round < 3; round++) {
        REQUIRE(rump_sys_write(p[0], out.data(), size) == static_cast<long>(size));
        size_t got = 0;
        while (got < size) {
          size_t want = size - got < 777 ? size - got : 777;
          long n = rump_sys_read(p[1], in.data() + got, want);
          REQUIRE(n > 0);
          got += static_cast<size_t>(n);
        }
        CHECK(std::memcmp(in.data(), out.data(), size) == 0);
        int outq = -1;
        REQUIRE(rump_sys_ioctl(p[0], TIOCOUTQ, &outq) == 0);
        CHECK(outq == 0);  // every byte consumed is given back to the sender
      }
    }
    rump_sys_close(p[0]);
    rump_sys_close(p[1]);
    CHECK(up.mem() == before);
    rump_lwproc_switch(nullptr);
  });
}

// Readers and writers that wait first spin (the peer hands over with no
// wake-up) and then sleep; a sleeper is woken after its waker dropped the
// socket lock. Pauses of varying length on one side make the other side
// spin, sleep, or find the data already there.
TEST_CASE("net: socketpair ping-pong and a full stream on both CPUs: every byte in order, every sleeper woken",
          "[net][concurrency]") {
  rump_test::on_fresh_thread([] {
    rump_test::KernelUp up({.ncpu = 2});
    rump_test::Kid kid = rump_test::fork_kid();
    rump_lwproc_switch(kid.l);
    int p[2];
    REQUIRE(rump_sys_socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0);
    int small = 4096;
    REQUIRE(rump_sys_setsockopt(p[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    auto pause = [](unsigned i) {
      for (unsigned j = 0; j < (i * 2654435761u) % 20000; j++) __asm__ volatile("" ::: "memory");
    };
    constexpr int kRounds = 3000;
    // Ping-pong: each side sends the next number and reads the other's.
    std::thread other([&] {
      rump_kernel_set_current(up.k);
      TCHECK(rump_lwproc_newlwp(kid.pid) == 0);
      for (int i = 0; i < kRounds; i++) {
        unsigned char c = 0;
        TCHECK(rump_sys_read(p[1], &c, 1) == 1);
        TCHECK(c == static_cast<unsigned char>(2 * i));
        if (i % 3 == 0) pause(static_cast<unsigned>(i));
        c = static_cast<unsigned char>(2 * i + 1);
        TCHECK(rump_sys_write(p[1], &c, 1) == 1);
      }
      rump_lwproc_releaselwp();
    });
    for (int i = 0; i < kRounds; i++) {
      unsigned char c = static_cast<unsigned char>(2 * i);
      TCHECK(rump_sys_write(p[0], &c, 1) == 1);
      if (i % 5 == 0) pause(static_cast<unsigned>(i) * 3);
      TCHECK(rump_sys_read(p[0], &c, 1) == 1);
      TCHECK(c == static_cast<unsigned char>(2 * i + 1));
    }
    other.join();
    // A stream through a small send buffer: the writer waits for room, the
    // reader for data, each woken by the other.
    constexpr size_t kTotal = 2 * 1024 * 1024;
    std::thread reader([&] {
      rump_kernel_set_current(up.k);
      TCHECK(rump_lwproc_newlwp(kid.pid) == 0);
      std::vector<unsigned char> in(6000);
      size_t got = 0;
      unsigned n = 0;
      while (got < kTotal) {
        long r = rump_sys_read(p[1], in.data(), 1 + (n * 7919u) % in.size());
        TCHECK(r > 0);
        if (r <= 0) break;
        for (long j = 0; j < r; j++) TCHECK(in[j] == static_cast<unsigned char>((got + j) * 7 + (got + j) / 251));
        got += static_cast<size_t>(r);
        if (++n % 7 == 0) pause(n);
      }
      rump_lwproc_releaselwp();
    });
    std::vector<unsigned char> out(kTotal);
    for (size_t i = 0; i < out.size(); i++) out[i] = static_cast<unsigned char>(i * 7 + i / 251);
    size_t sent = 0;
    for (unsigned n = 0; sent < kTotal; n++) {
      size_t len = 1 + (n * 104729u) % 70000;
      if (len > kTotal - sent) len = kTotal - sent;
      long r = rump_sys_write(p[0], out.data() + sent, len);
      TCHECK(r > 0);
      if (r <= 0) break;
      sent += static_cast<size_t>(r);
    }
    reader.join();
    CHECK_THREADS_OK();
    rump_sys_close(p[0]);
    rump_sys_close(p[1]);
    rump_lwproc_switch(nullptr);
  });
}
