// SipHash-2-4 against the reference vectors of the SipHash paper
// (appendix A and the reference implementation's vectors.h): key 00 01 ..
// 0f, messages 00 01 .. (n-1).
#include <catch2/catch.hpp>
#include <cstdint>

#include "base/siphash.h"

namespace {

rump::SipKey paper_key() {
  uint8_t k[16];
  for (int i = 0; i < 16; i++) k[i] = static_cast<uint8_t>(i);
  return {rump::siphash_detail::load_le(k, 8), rump::siphash_detail::load_le(k + 8, 8)};
}

uint64_t hash_of_prefix(size_t n) {
  uint8_t m[64];
  for (size_t i = 0; i < sizeof m; i++) m[i] = static_cast<uint8_t>(i);
  return rump::siphash24(paper_key(), m, n);
}

}  // namespace

TEST_CASE("siphash24 gives the reference vectors", "[base][siphash]") {
  CHECK(hash_of_prefix(0) == 0x726fdb47dd0e0e31ULL);
  CHECK(hash_of_prefix(1) == 0x74f839c593dc67fdULL);
  CHECK(hash_of_prefix(7) == 0xab0200f58b01d137ULL);
  CHECK(hash_of_prefix(8) == 0x93f5f5799a932462ULL);
  CHECK(hash_of_prefix(15) == 0xa129ca6149be45e5ULL);
}

TEST_CASE("siphash24 depends on every key and message bit", "[base][siphash]") {
  rump::SipKey k = paper_key();
  uint8_t m[20] = {};
  uint64_t base = rump::siphash24(k, m, sizeof m);
  m[19] ^= 1;
  CHECK(rump::siphash24(k, m, sizeof m) != base);
  m[19] ^= 1;
  k.k1 ^= 1ULL << 63;
  CHECK(rump::siphash24(k, m, sizeof m) != base);
  CHECK(rump::siphash24(paper_key(), m, sizeof m - 1) != base);
}
