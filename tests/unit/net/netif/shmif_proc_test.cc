// Kernels in two host processes on one shmif bus file: this process's
// kernel and one in a peer program (shmif_peer, started with fork and
// exec) exchange UDP datagrams and a TCP bulk transfer checked byte for
// byte, with and without seeded impairment.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "netif_util.h"
#include "rump_test.h"

using namespace netif_test;

#ifndef SHMIF_PEER_PATH
#error "SHMIF_PEER_PATH: the peer program's path (set by the build)"
#endif

namespace {

// The peer program running on bus with addr; stdout read up to its "ready".
struct Peer {
  pid_t pid = -1;
  Peer(const std::string& bus, const char* addr, uint64_t seed, const rump_netconfig_impair* im) {
    int p[2];
    REQUIRE(pipe(p) == 0);
    std::string s = std::to_string(seed);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      dup2(p[1], 1);
      close(p[0]);
      close(p[1]);
      if (im) {
        std::string l = std::to_string(im->loss), d = std::to_string(im->duplicate), r = std::to_string(im->reorder);
        execl(SHMIF_PEER_PATH, "shmif_peer", bus.c_str(), addr, s.c_str(), l.c_str(), d.c_str(), r.c_str(),
              static_cast<char*>(nullptr));
      } else {
        execl(SHMIF_PEER_PATH, "shmif_peer", bus.c_str(), addr, s.c_str(), static_cast<char*>(nullptr));
      }
      _exit(127);
    }
    close(p[1]);
    std::string line;
    char ch;
    while (read(p[0], &ch, 1) == 1 && ch != '\n') line += ch;
    close(p[0]);
    REQUIRE(line == "ready");
  }
  // The peer program's exit status (-1: killed).
  int wait() {
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  ~Peer() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

void run(const rump_netconfig_impair* im, uint64_t bytes) {
  rump_test::on_fresh_thread([&] {
    char dir[] = "/tmp/rump-shmif-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    std::string bus = std::string(dir) + "/bus";
    const uint64_t seed = 77;
    // Both ends impaired alike (each with its own generator), when asked.
    Peer peer(bus, "10.1.0.2", seed, im);
    {
      rump_test::KernelUp up(rump_test::BootOpts{.ncpu = 2});
      int unit = -1;
      REQUIRE(rump_pub_shmif_create(bus.c_str(), &unit) == 0);
      std::string ifname = "shmif" + std::to_string(unit);
      REQUIRE(if_config(ifname.c_str(), "10.1.0.1", 24) == 0);
      if (im) REQUIRE(rump_pub_netconfig_impair(ifname.c_str(), im) == 0);
      int u = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
      REQUIRE(u >= 0);
      for (int i = 0; i < 10; i++) {
        std::string req = "hello " + std::to_string(i);
        char rep[64] = {};
        long n = udp_request(u, "10.1.0.2", 7000, req.data(), req.size(), rep, sizeof rep);
        REQUIRE(n == static_cast<long>(req.size()));
        CHECK(std::string(rep, static_cast<size_t>(n)) == req);
      }
      int s = tcp_connect("10.1.0.2", 8000);
      REQUIRE(s >= 0);
      CHECK(stream_send(s, seed, bytes));
      uint64_t answer[2] = {};
      size_t got = 0;
      while (got < sizeof answer) {
        long n = rump_sys_read(s, reinterpret_cast<char*>(answer) + got, sizeof answer - got);
        if (n <= 0) break;
        got += static_cast<size_t>(n);
      }
      REQUIRE(got == sizeof answer);
      CHECK(answer[0] == bytes);
      CHECK(answer[1] == UINT64_MAX);
      rump_sys_close(s);
      char rep[8];
      udp_request(u, "10.1.0.2", 7000, "quit", 4, rep, sizeof rep, 10);
      rump_sys_close(u);
    }
    CHECK(peer.wait() == 0);
    unlink(bus.c_str());
    rmdir(dir);
  });
}

}  // namespace

TEST_CASE("shmif: UDP and TCP between kernels in two host processes", "[netif][shmif][proc]") {
  run(nullptr, 8u << 20);
}

TEST_CASE("shmif: two host processes under seeded loss, duplication and reordering",
          "[netif][shmif][proc][impair]") {
  rump_netconfig_impair im{99, 0.05, 0.03, 0.05, 0};
  run(&im, 2u << 20);
}
