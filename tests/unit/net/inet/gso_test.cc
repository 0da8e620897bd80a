// TCP segments larger than one MSS (TSO, net/inet/ip_var.h): how
// tcp_gso_segment cuts one in software (sequence numbers, flags, each
// piece's checksum checked against an independent sum), and a transfer
// between two kernels on a shmif bus whose sender built such segments for
// a device that takes them and then lost the device's TSO: every byte
// arrives, the receiver checks (and passes) every checksum, and far fewer
// IP packets left the sender than reached the receiver.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <rump/rump.h>
#include <rump/rumpnet.h>

#include "kern/curlwp.h"
#include "kern/kernel.h"
#include "net/inet/if.h"
#include "net/inet/ip_var.h"
#include "netif/netif_util.h"
#include "rump_test.h"

using namespace rump;

namespace {

// The Internet checksum of bytes, written out without the kernel's code.
uint32_t sum16(const uint8_t* b, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  if (n & 1) s += static_cast<uint32_t>(b[n - 1] << 8);
  return s;
}
uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

constexpr uint32_t kSrc = 0x0a000001, kDst = 0x0a000002;  // host order

uint32_t pseudo_sum(size_t len) {
  return (kSrc >> 16) + (kSrc & 0xffff) + (kDst >> 16) + (kDst & 0xffff) + IPPROTO_TCP + static_cast<uint32_t>(len);
}

}  // namespace

TEST_CASE("tcp_gso_segment: pieces of one MSS, their sequence numbers, flags and checksums", "[inet][gso]") {
  Kmem km;
  PktPool pool(km);
  constexpr size_t kHl = 32, kPayload = 5000, kMss = 1448;
  std::vector<uint8_t> seg(kHl + kPayload);
  seg[0] = 0x30, seg[1] = 0x39;  // port 12345
  seg[2] = 0x00, seg[3] = 0x50;  // port 80
  const uint32_t seq0 = 0xfffff000u;  // wraps inside the segment
  uint32_t be = htonl(seq0);
  std::memcpy(&seg[4], &be, 4);
  seg[12] = static_cast<uint8_t>((kHl / 4) << 4);
  seg[13] = 0x80 | 0x10 | 0x08 | 0x01;  // CWR ACK PSH FIN
  seg[14] = 0x01, seg[15] = 0x00;       // window
  seg[20] = 1, seg[21] = 1, seg[22] = 8, seg[23] = 10;  // NOP NOP TS
  for (size_t i = 0; i < kPayload; i++) seg[kHl + i] = static_cast<uint8_t>(i * 13 + 5);
  // A partial checksum as TCP leaves it: the pseudo-header sum, folded.
  uint16_t ps = htons(fold(pseudo_sum(seg.size())));
  std::memcpy(&seg[16], &ps, 2);
  Pkt* p = Pkt::alloc(pool, seg.size()).value();
  p->copy_in(0, seg.size(), seg.data());
  p->meta.csum = kCsumPartial;
  p->meta.csum_offset = 16;
  p->meta.gso_size = kMss;

  PktList out;
  tcp_gso_segment(p, out);
  REQUIRE(out.size() == 4);
  size_t off = 0;
  int i = 0;
  for (Pkt& q : out) {
    size_t n = kPayload - off < kMss ? kPayload - off : kMss;
    REQUIRE(q.len() == kHl + n);
    CHECK(q.meta.csum == kCsumPartial);
    CHECK(q.meta.gso_size == 0);
    REQUIRE(pkt_csum_finish(q).ok());
    std::vector<uint8_t> b(q.len());
    q.copy_out(0, q.len(), b.data());
    CHECK(fold(sum16(b.data(), b.size(), pseudo_sum(b.size()))) == 0xffff);
    uint32_t s;
    std::memcpy(&s, &b[4], 4);
    CHECK(ntohl(s) == static_cast<uint32_t>(seq0 + off));
    bool last = i == 3;
    CHECK(b[13] == static_cast<uint8_t>(0x10 | (i == 0 ? 0x80 : 0) | (last ? 0x09 : 0)));
    CHECK(std::memcmp(&b[20], &seg[20], kHl - 20) == 0);  // options as they were
    CHECK(std::memcmp(&b[kHl], &seg[kHl + off], n) == 0);
    off += n;
    i++;
  }
  pkt_list_free(out);

  // Not a partial checksum, or a header longer than the packet: dropped.
  Pkt* bad = Pkt::alloc(pool, seg.size()).value();
  bad->copy_in(0, seg.size(), seg.data());
  bad->meta.gso_size = kMss;
  tcp_gso_segment(bad, out);
  CHECK(out.empty());
  Pkt* shortp = Pkt::alloc(pool, 24).value();
  shortp->copy_in(0, 24, seg.data());
  shortp->meta.csum = kCsumPartial;
  shortp->meta.gso_size = kMss;
  tcp_gso_segment(shortp, out);
  CHECK(out.empty());
}

namespace {

struct GsoNode {
  rump_kernel* k = nullptr;
  GsoNode(const std::string& bus, const char* addr) {
    rump_test::BootOpts o;
    o.ncpu = 2;
    rump_boot_config c = rump_test::boot_config(o);
    REQUIRE(rump_kernel_boot(&c, &k) == 0);
    use();
    int unit = -1;
    REQUIRE(rump_pub_shmif_create(bus.c_str(), &unit) == 0);
    REQUIRE(netif_test::if_config("shmif0", addr, 24) == 0);
  }
  ~GsoNode() {
    rump_kernel_set_current(nullptr);
    rump_kernel_halt(k);
  }
  void use() const { rump_kernel_set_current(k); }
  InetState& st() const { return *inet_state_or_null(*current_kernel()); }
  Ifnet* shmif() const {
    Kernel& kk = *current_kernel();
    Lwp* l = enter(kk);
    RefPtr<Ifnet> i = st().find_if("shmif0");
    leave(kk, l);
    return i.get();  // the kernel holds it until halt
  }
};

}  // namespace

TEST_CASE("gso: TSO segments for a device that stops taking them are cut in software, checksums verified",
          "[inet][gso]") {
  char dir[] = "/tmp/rump-gso-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  std::string bus = std::string(dir) + "/bus";
  {
    GsoNode a(bus, "10.9.0.1"), b(bus, "10.9.0.2");
    b.use();
    int l = netif_test::tcp_listen("10.9.0.2", 7000);
    REQUIRE(l >= 0);
    // The sender's device claims TSO while the connection is made (its
    // TCP builds segments of many MSS) and full checksums on the wire, so
    // that the receiver checks every one in software.
    a.use();
    Ifnet* aifp = a.shmif();
    REQUIRE(aifp != nullptr);
    Ifnet& aif = *aifp;
    aif.tso_max.store(65535);
    aif.no_csum.store(false);
    int s = netif_test::tcp_connect("10.9.0.2", 7000);
    REQUIRE(s >= 0);
    aif.tso_max.store(0);
    b.use();
    int c = rump_sys_accept(l, nullptr, nullptr);
    REQUIRE(c >= 0);
    uint64_t b_in0 = b.st().ip_stats.InReceives.load(), b_csum0 = b.st().tcp_stats.InCsumErrors.load();
    a.use();
    uint64_t a_out0 = a.st().ip_stats.OutRequests.load();
    constexpr uint64_t kBytes = 4u << 20;
    netif_test::StreamResult got;
    std::thread rx([&] {
      b.use();
      got = netif_test::stream_recv(c, 77);
    });
    a.use();
    CHECK(netif_test::stream_send(s, 77, kBytes));
    rx.join();
    CHECK(got.error == 0);
    CHECK(got.bytes == kBytes);
    CHECK(got.first_bad == UINT64_MAX);
    uint64_t a_out = a.st().ip_stats.OutRequests.load() - a_out0;
    b.use();
    uint64_t b_in = b.st().ip_stats.InReceives.load() - b_in0;
    CHECK(b.st().tcp_stats.InCsumErrors.load() == b_csum0);
    // 4 MiB is about 2,900 wire segments: with segments of more than one
    // MSS the sender's IP layer saw fewer (without TSO it sees every one).
    // How many MSS a segment carries follows the ACK clock: 2 on average
    // when each ACK is taken as it comes, more when ACKs arrive in bursts.
    INFO("sender IP packets " << a_out << ", receiver " << b_in << ", receiver sent "
                               << b.st().ip_stats.OutRequests.load() << ", sender received "
                               << a.st().ip_stats.InReceives.load());
    CHECK(b_in > 2000);
    CHECK(a_out * 3 < b_in * 2);
    rump_sys_close(c);
    rump_sys_close(l);
    a.use();
    rump_sys_close(s);
  }
  unlink(bus.c_str());
  rmdir(dir);
}
