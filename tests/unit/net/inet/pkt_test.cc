// Packets and checksums (net/inet/pkt.h) on their own: a Kmem arena, no
// kernel.
#include <arpa/inet.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "net/inet/pkt.h"

using namespace rump;

namespace {

std::vector<uint8_t> bytes_of(const Pkt& p) {
  std::vector<uint8_t> v(p.len());
  p.copy_out(0, p.len(), v.data());
  return v;
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; i++) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

}  // namespace

TEST_CASE("pkt: headers are prepended in the headroom without moving the payload", "[inet][pkt]") {
  Kmem km;
  {
    PktPool pool(km);
    Pkt* p = Pkt::alloc(pool, 100).value();
    char* payload = p->first()->data();
    std::memset(payload, 'x', 100);
    char* h = p->prepend(8).value();
    CHECK(h + 8 == payload);
    char* ip = p->prepend(20).value();
    CHECK(ip + 20 == h);
    CHECK(p->len() == 128);
    CHECK(p->first()->next == nullptr);
    // Past the headroom: a new segment in front, payload still in place.
    p->prepend(kPktHeadroom).value();
    CHECK(p->first()->next != nullptr);
    CHECK(p->len() == 128 + kPktHeadroom);
    char* whole = p->pullup(kPktHeadroom + 28).value();
    CHECK(whole == p->first()->data());
    CHECK(p->first()->len >= kPktHeadroom + 28);
    Pkt::free(p);
  }
  CHECK(km.in_use() == 0);
}

TEST_CASE("pkt: append, copy, trim and concat keep the bytes in order across segments", "[inet][pkt]") {
  Kmem km;
  {
    PktPool pool(km);
    auto data = pattern(5000, 3);
    Pkt* p = Pkt::alloc(pool, 0).value();
    REQUIRE(p->append(data.data(), 1234).ok());
    REQUIRE(p->append(data.data() + 1234, data.size() - 1234).ok());
    CHECK(p->len() == 5000);
    CHECK(bytes_of(*p) == data);
    Pkt* c = p->copy(1000, 3000).value();
    CHECK(bytes_of(*c) == std::vector<uint8_t>(data.begin() + 1000, data.begin() + 4000));
    p->trim_front(10);
    p->trim_back(90);
    CHECK(bytes_of(*p) == std::vector<uint8_t>(data.begin() + 10, data.end() - 90));
    char* h = p->pullup(3000).value();
    CHECK(std::memcmp(h, data.data() + 10, 3000) == 0);
    p->concat(c);
    CHECK(p->len() == 4900 + 3000);
    auto all = bytes_of(*p);
    CHECK(std::memcmp(all.data() + 4900, data.data() + 1000, 3000) == 0);
    CHECK(!p->pullup(p->len() + 1).ok());
    Pkt::free(p);
  }
  CHECK(km.in_use() == 0);
}

TEST_CASE("pkt: allocation beyond the kernel's memory limit is ENOBUFS", "[inet][pkt]") {
  Kmem km(1024);
  PktPool pool(km);
  Result<Pkt*> r = Pkt::alloc(pool, 100);
  REQUIRE(!r.ok());
  CHECK(r.error() == ENOBUFS);
  CHECK(km.in_use() == 0);
}

TEST_CASE("cksum: RFC 1071's example, odd splits, incremental updates, pseudo-headers", "[inet][pkt]") {
  const uint8_t ex[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(in_cksum_fold(in_cksum_add(0, ex, sizeof ex)) == static_cast<uint16_t>(~0xddf2));
  Kmem km;
  {
    PktPool pool(km);
    auto data = pattern(3001, 11);
    uint16_t flat = in_cksum(data.data(), data.size());
    // The same bytes in segments of odd lengths.
    Pkt* p = Pkt::alloc(pool, 0, 0).value();
    size_t off = 0;
    for (size_t n : {1u, 3u, 2000u, 7u, 990u}) {
      // Each append after the first fills a fresh segment once full.
      REQUIRE(p->append(data.data() + off, n).ok());
      off += n;
    }
    REQUIRE(off == data.size());
    Pkt* q = Pkt::alloc(pool, 0, 0).value();
    REQUIRE(q->append(data.data(), 1).ok());
    Pkt* r = Pkt::alloc(pool, 0, 0).value();
    REQUIRE(r->append(data.data() + 1, data.size() - 1).ok());
    q->concat(r);
    CHECK(q->first()->next != nullptr);
    CHECK(in_cksum_fold(pkt_cksum_add(*p, 0, p->len())) == flat);
    CHECK(in_cksum_fold(pkt_cksum_add(*q, 0, q->len())) == flat);
    Pkt::free(p);
    Pkt::free(q);
  }
  // Incremental update of a 16- and a 32-bit word equals recomputation.
  uint8_t hdr[20];
  for (int i = 0; i < 20; i++) hdr[i] = static_cast<uint8_t>(i * 13 + 5);
  hdr[10] = hdr[11] = 0;
  uint16_t c = in_cksum(hdr, 20);
  uint16_t old16 = static_cast<uint16_t>(hdr[8] << 8 | hdr[9]);
  hdr[8] = 0x12;
  hdr[9] = 0x34;
  CHECK(in_cksum_update16(c, old16, 0x1234) == in_cksum(hdr, 20));
  c = in_cksum(hdr, 20);
  uint32_t old32 = static_cast<uint32_t>(hdr[12] << 24 | hdr[13] << 16 | hdr[14] << 8 | hdr[15]);
  hdr[12] = 0xc0, hdr[13] = 0xa8, hdr[14] = 0x01, hdr[15] = 0x02;
  CHECK(in_cksum_update32(c, old32, 0xc0a80102) == in_cksum(hdr, 20));
  // Pseudo-headers equal the sum of their bytes laid out.
  uint32_t s = inet_addr("10.1.2.3"), d = inet_addr("192.168.7.9");
  uint8_t ph[12];
  std::memcpy(ph, &s, 4);
  std::memcpy(ph + 4, &d, 4);
  ph[8] = 0;
  ph[9] = 17;
  ph[10] = 0x01;
  ph[11] = 0x23;
  CHECK(in_cksum_fold(in_pseudo4(s, d, 17, 0x123)) == in_cksum(ph, 12));
  uint8_t s6[16], d6[16], ph6[40] = {};
  for (int i = 0; i < 16; i++) s6[i] = static_cast<uint8_t>(i), d6[i] = static_cast<uint8_t>(0xf0 + i);
  std::memcpy(ph6, s6, 16);
  std::memcpy(ph6 + 16, d6, 16);
  ph6[34] = 0x01;
  ph6[35] = 0x02;
  ph6[39] = 58;
  CHECK(in_cksum_fold(in_pseudo6(s6, d6, 58, 0x102)) == in_cksum(ph6, 40));
}

TEST_CASE("pkt: borrowed bytes are read in place, never written, and released once", "[inet][pkt]") {
  Kmem km;
  int released = 0;
  auto release = [](void* a) { ++*static_cast<int*>(a); };
  {
    PktPool pool(km);
    const auto lent = pattern(3000, 9);
    const auto keep = lent;
    Pkt* p = Pkt::alloc(pool, 20).value();
    std::memset(p->first()->data(), 'h', 20);
    REQUIRE(p->append_ext(lent.data(), 1000, release, &released).ok());
    REQUIRE(p->append_ext(lent.data() + 1000, 2000, release, &released).ok());
    CHECK(p->len() == 3020);
    // The payload as two pieces, in place.
    const char* ptr[2];
    size_t n[2];
    REQUIRE(p->pieces(20, ptr, n, 2) == 2);
    CHECK(ptr[0] == reinterpret_cast<const char*>(lent.data()));
    CHECK(n[0] == 1000);
    CHECK(ptr[1] == reinterpret_cast<const char*>(lent.data()) + 1000);
    CHECK(n[1] == 2000);
    CHECK(p->pieces(0, ptr, n, 2) == -1);
    // Headers go in front, a pullup into the borrowed part gathers into a
    // segment of the packet's own, and a checksum reads the bytes: the
    // lender's bytes stay as they were.
    std::memset(p->prepend(40).value(), 'i', 40);
    char* front = p->pullup(100).value();
    CHECK(front == p->first()->data());
    CHECK(std::memcmp(front + 60, lent.data(), 40) == 0);
    std::vector<uint8_t> all = bytes_of(*p);
    CHECK(std::memcmp(all.data() + 60, lent.data(), 3000) == 0);
    p->trim_front(1000);
    p->prepend(4).value();
    p->copy_in(0, 4, "abcd");
    CHECK(lent == keep);
    CHECK(released == 0);
    Pkt::free(p);
    CHECK(released == 2);
    // A borrowed segment alone at the head: a pullup still copies.
    Pkt* q = Pkt::alloc(pool, 4).value();
    REQUIRE(q->append_ext(lent.data(), 100, release, &released).ok());
    q->trim_front(4);
    CHECK(q->first()->ext != nullptr);
    CHECK(q->first()->headroom() == 0);
    char* h = q->pullup(10).value();
    CHECK(h != reinterpret_cast<const char*>(lent.data()));
    h[0] = 0;
    CHECK(lent == keep);
    Pkt::free(q);
    CHECK(released == 3);
  }
  CHECK(km.in_use() == 0);
}
