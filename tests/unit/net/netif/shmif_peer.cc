// The other end of the two-process shmif test (shmif_proc_test.cc): a
// kernel in a host process of its own on the bus file it is given.
//
//   shmif_peer BUS ADDR SEED [LOSS DUP REORDER]
//
// It boots a kernel, puts shmif0 on BUS with ADDR/24, listens on TCP port
// 8000 and UDP port 7000, and says "ready" on stdout. Then it echoes UDP
// datagrams until one says "quit", while it takes one TCP connection,
// checks every byte received against the stream with SEED, and answers
// with the byte count and the offset of the first wrong byte (two
// uint64_t; UINT64_MAX: none). Exit status 0 when all of that worked.
// With LOSS DUP REORDER its interface is impaired so (seeded by SEED).
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "netif_util.h"

using namespace netif_test;

int main(int argc, char** argv) {
  if (argc != 4 && argc != 7) {
    std::fprintf(stderr, "usage: shmif_peer BUS ADDR SEED [LOSS DUP REORDER]\n");
    return 2;
  }
  uint64_t seed = std::strtoull(argv[3], nullptr, 10);
  rump_kernel* k = nullptr;
  if (rump_kernel_boot(nullptr, &k) != 0 || rump_kernel_set_current(k) != 0) return 3;
  int unit = -1;
  if (rump_pub_shmif_create(argv[1], &unit) != 0) return 4;
  char ifname[16];
  std::snprintf(ifname, sizeof ifname, "shmif%d", unit);
  if (if_config(ifname, argv[2], 24) != 0) return 5;
  if (argc == 7) {
    rump_netconfig_impair im{seed, std::atof(argv[4]), std::atof(argv[5]), std::atof(argv[6]), 0};
    if (rump_pub_netconfig_impair(ifname, &im) != 0) return 10;
  }
  int l = tcp_listen(argv[2], 8000);
  int u = rump_sys_socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in ua = in4(argv[2], 7000);
  if (l < 0 || u < 0 || rump_sys_bind(u, sa(ua), sizeof ua) != 0) return 6;
  std::printf("ready\n");
  std::fflush(stdout);
  int echoed = 0;
  std::thread echo([&] {
    rump_kernel_set_current(k);
    echoed = udp_echo_until_quit(u);
  });
  int c = rump_sys_accept(l, nullptr, nullptr);
  int status = 0;
  if (c < 0) {
    status = 7;
  } else {
    StreamResult r = stream_recv(c, seed);
    uint64_t answer[2] = {r.bytes, r.first_bad};
    if (r.error || rump_sys_write(c, answer, sizeof answer) != sizeof answer) status = 8;
    rump_sys_close(c);
  }
  echo.join();
  if (echoed == 0) status = 9;
  rump_sys_close(u);
  rump_sys_close(l);
  rump_kernel_set_current(nullptr);
  rump_kernel_halt(k);
  return status;
}
