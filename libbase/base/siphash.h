// siphash.h: SipHash-2-4 (Aumasson and Bernstein), a keyed 64-bit pseudo-
// random function of a byte string. The kernel uses it where a value must
// be unpredictable without the key yet cheap to compute: TCP initial
// sequence numbers and timestamp offsets after RFC 6528.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace rump {

struct SipKey {
  uint64_t k0 = 0;
  uint64_t k1 = 0;
};

namespace siphash_detail {

inline constexpr uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct State {
  uint64_t v0, v1, v2, v3;
  void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
  void word(uint64_t m) {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
};

// Little-endian load of n <= 8 bytes.
inline uint64_t load_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace siphash_detail

// SipHash-2-4 of n bytes at data under key.
inline uint64_t siphash24(const SipKey& key, const void* data, size_t n) {
  using namespace siphash_detail;
  State s{key.k0 ^ 0x736f6d6570736575ULL, key.k1 ^ 0x646f72616e646f6dULL, key.k0 ^ 0x6c7967656e657261ULL,
          key.k1 ^ 0x7465646279746573ULL};
  const auto* p = static_cast<const uint8_t*>(data);
  size_t whole = n & ~static_cast<size_t>(7);
  for (size_t i = 0; i < whole; i += 8) s.word(load_le(p + i, 8));
  s.word(load_le(p + whole, n - whole) | static_cast<uint64_t>(n & 0xff) << 56);
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; i++) s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace rump
