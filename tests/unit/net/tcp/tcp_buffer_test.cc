// ByteRing's lent spans (a receive ring holding bytes another ring lent
// instead of copies) and the send side's move off borrowed storage: what a
// reader sees, when references go, and that the lender never rewrites
// bytes a borrower still holds.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "base/kmem.h"
#include "net/inet/tcp/tcp_buffer.h"

using rump::tcp::ByteRing;

namespace {

std::string read_all(const ByteRing& r) {
  std::string out(r.size(), '\0');
  r.copy_out(0, reinterpret_cast<uint8_t*>(out.data()), out.size());
  return out;
}

// The bytes pieces() shows from off, as a string.
std::string pieces_at(const ByteRing& r, size_t off) {
  const uint8_t *p1, *p2;
  size_t l1, l2;
  r.pieces(off, r.size() - off, &p1, &l1, &p2, &l2);
  return std::string(reinterpret_cast<const char*>(p1), l1) + std::string(reinterpret_cast<const char*>(p2), l2);
}

const uint8_t* u8(const char* s) { return reinterpret_cast<const uint8_t*>(s); }

}  // namespace

TEST_CASE("a receive ring reads lent spans and own bytes in stream order", "[tcp][buffer]") {
  rump::Kmem kmem;
  ByteRing snd, rcv;
  snd.set_capacity(64);
  rcv.set_capacity(32);
  REQUIRE(snd.prepare(kmem).ok());
  REQUIRE(rcv.prepare(kmem).ok());
  REQUIRE(snd.append(u8("abcdefghijklmnop"), 16) == 16);
  const uint8_t *p1, *p2;
  size_t l1, l2;
  snd.pieces(0, 16, &p1, &l1, &p2, &l2);
  void* store = snd.share();

  REQUIRE(rcv.append(u8("01"), 2) == 2);          // own bytes
  REQUIRE(rcv.append_lent(p1, 4, store));        // "abcd"
  REQUIRE(rcv.append_lent(p1 + 4, 4, store));    // "efgh": joins the span
  REQUIRE(rcv.append(u8("XY"), 2) == 2);          // own bytes after the span
  REQUIRE(rcv.append_lent(p1 + 10, 3, store));   // "klm": a second span
  CHECK(rcv.size() == 15);
  CHECK(rcv.space() == 17);
  CHECK(rcv.lent_room() == 4);
  CHECK(read_all(rcv) == "01abcdefghXYklm");
  // pieces() gives the first two runs.
  CHECK(pieces_at(rcv, 0) == "01abcdefgh");
  CHECK(pieces_at(rcv, 3) == "bcdefghXY");

  // The spans hold the store: the sender letting go does not free it.
  ByteRing::unshare(store);
  snd.drop(16);
  rcv.drop(5);
  CHECK(read_all(rcv) == "defghXYklm");
  rcv.drop(7);
  CHECK(read_all(rcv) == "klm");
  CHECK(rcv.lent_room() == 5);
  rcv.drop(3);
  CHECK(rcv.lent_room() == 6);
  CHECK(rcv.size() == 0);
}

TEST_CASE("a full span table refuses, and the ring copies instead", "[tcp][buffer]") {
  rump::Kmem kmem;
  ByteRing snd, rcv;
  snd.set_capacity(64);
  rcv.set_capacity(64);
  REQUIRE(snd.prepare(kmem).ok());
  REQUIRE(rcv.prepare(kmem).ok());
  std::string text = "the quick brown fox jumps over";
  REQUIRE(snd.append(u8(text.c_str()), text.size()) == text.size());
  const uint8_t *p1, *p2;
  size_t l1, l2;
  snd.pieces(0, text.size(), &p1, &l1, &p2, &l2);
  void* store = snd.share();
  // Every other byte lent: no two spans can join.
  size_t i = 0;
  for (; rcv.lent_room() > 0; i += 2) {
    REQUIRE(rcv.append_lent(p1 + i, 1, store));
    REQUIRE(rcv.append(p1 + i + 1, 1) == 1);
  }
  CHECK_FALSE(rcv.append_lent(p1 + i, 1, store));
  CHECK(read_all(rcv) == text.substr(0, i));
  ByteRing::unshare(store);
}

TEST_CASE("a resize keeps lent bytes as own copies", "[tcp][buffer]") {
  rump::Kmem kmem;
  ByteRing snd, rcv;
  snd.set_capacity(16);
  rcv.set_capacity(16);
  REQUIRE(snd.prepare(kmem).ok());
  REQUIRE(rcv.prepare(kmem).ok());
  REQUIRE(snd.append(u8("lentbytes"), 9) == 9);
  const uint8_t *p1, *p2;
  size_t l1, l2;
  snd.pieces(0, 9, &p1, &l1, &p2, &l2);
  void* store = snd.share();
  REQUIRE(rcv.append(u8(">"), 1) == 1);
  REQUIRE(rcv.append_lent(p1, 9, store));
  ByteRing::unshare(store);
  size_t before = kmem.in_use();
  REQUIRE(rcv.resize(kmem, 40).ok());
  CHECK(rcv.lent_room() == 6);
  snd.release();
  // The sender's store is gone with its last reference.
  CHECK(kmem.in_use() < before + 40);
  CHECK(read_all(rcv) == ">lentbytes");
}

TEST_CASE("a send ring never writes over storage a borrower holds", "[tcp][buffer]") {
  rump::Kmem kmem;
  ByteRing snd;
  snd.set_capacity(8);
  REQUIRE(snd.prepare(kmem).ok());
  REQUIRE(snd.append(u8("AAAAAAAA"), 8) == 8);
  const uint8_t *p1, *p2;
  size_t l1, l2;
  snd.pieces(0, 8, &p1, &l1, &p2, &l2);
  const uint8_t* lent = p1;
  void* held = snd.share();
  snd.drop(6);  // acknowledged, but a reader still holds the bytes
  REQUIRE(snd.own_free_room(kmem).ok());
  uint8_t *f1, *f2;
  snd.free_pieces(&f1, &l1, &f2, &l2);
  CHECK_FALSE(snd.holds(lent));
  CHECK_FALSE((f1 >= lent && f1 < lent + 8));
  REQUIRE(snd.append(u8("BBBBBB"), 6) == 6);
  CHECK(std::string(reinterpret_cast<const char*>(lent), 8) == "AAAAAAAA");
  std::string now(8, '\0');
  snd.copy_out(0, reinterpret_cast<uint8_t*>(now.data()), 8);
  CHECK(now == "AABBBBBB");
  // Once the borrower lets go, the old storage is the spare: the next move
  // takes it instead of allocating.
  ByteRing::unshare(held);
  void* again = snd.share();
  size_t allocs = kmem.live_allocations();
  REQUIRE(snd.own_free_room(kmem).ok());
  CHECK(kmem.live_allocations() == allocs);
  CHECK(snd.holds(lent));
  ByteRing::unshare(again);
  // Nobody borrows: nothing moves.
  REQUIRE(snd.own_free_room(kmem).ok());
  CHECK(snd.holds(lent));
}
