// CRC-32C by the CPU's CRC32 instruction or by tables (slicing by 8), and
// table-driven CRC-16; the tables are built at compile time.
//
// The instruction has a latency of three cycles and a throughput of one,
// so one chain of it runs at a third of the CPU's pace. The instruction
// path therefore runs three chains at once over three adjacent pieces of
// equal length n, the second and third from a zero state, and joins them:
// the CRC has no inversion inside, so it is linear, and
//   crc(s, A B) = shift_n(crc(s, A)) ^ crc(0, B)
// where shift_n (the state after n zero bytes) is a fixed 32 x 32 bit
// matrix, applied by four tables of 256 entries, one per byte of the state.
#include "fs/ext2/crc.h"

#include <array>
#include <cstring>

namespace rump::ext2 {

namespace {

template <class T>
constexpr std::array<T, 256> make_table(T poly) {
  std::array<T, 256> t{};
  for (uint32_t i = 0; i < 256; i++) {
    T c = static_cast<T>(i);
    for (int k = 0; k < 8; k++) c = (c & 1) ? static_cast<T>((c >> 1) ^ poly) : static_cast<T>(c >> 1);
    t[i] = c;
  }
  return t;
}

// Slicing by 8 for CRC-32C: eight tables, table k advancing k more bytes.
constexpr std::array<std::array<uint32_t, 256>, 8> make_tables32() {
  std::array<std::array<uint32_t, 256>, 8> t{};
  t[0] = make_table<uint32_t>(0x82F63B78u);
  for (int k = 1; k < 8; k++)
    for (int i = 0; i < 256; i++) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  return t;
}

constexpr auto kCrc32c = make_tables32();
constexpr auto kCrc16 = make_table<uint16_t>(0xA001);

// shift_n as tables: entry b of table k is the state that the state
// b << 8k becomes after n zero bytes.
using ShiftTables = std::array<std::array<uint32_t, 256>, 4>;

constexpr ShiftTables make_shift(size_t n) {
  std::array<uint32_t, 32> col{};  // the state of bit i after n zeros
  for (int i = 0; i < 32; i++) {
    uint32_t s = uint32_t{1} << i;
    for (size_t k = 0; k < n; k++) s = (s >> 8) ^ kCrc32c[0][s & 0xff];
    col[i] = s;
  }
  ShiftTables t{};
  for (int k = 0; k < 4; k++)
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t v = 0;
      for (int j = 0; j < 8; j++)
        if ((b >> j) & 1) v ^= col[8 * k + j];
      t[k][b] = v;
    }
  return t;
}

[[maybe_unused]] inline uint32_t shift(const ShiftTables& t, uint32_t s) {
  return t[0][s & 0xff] ^ t[1][(s >> 8) & 0xff] ^ t[2][(s >> 16) & 0xff] ^ t[3][s >> 24];
}

// The pieces of the three chains: 1,024 bytes each while 3 KiB remain
// (a 4 KiB metadata block takes one round of these), then 128.
constexpr size_t kLong = 1024, kShort = 128;
[[maybe_unused]] constexpr ShiftTables kShiftLong = make_shift(kLong), kShiftLong2 = make_shift(2 * kLong);
[[maybe_unused]] constexpr ShiftTables kShiftShort = make_shift(kShort), kShiftShort2 = make_shift(2 * kShort);

}  // namespace

uint32_t crc32c_table(uint32_t crc, const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (len >= 8) {
    uint32_t lo = crc ^ (uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24);
    crc = kCrc32c[7][lo & 0xff] ^ kCrc32c[6][(lo >> 8) & 0xff] ^ kCrc32c[5][(lo >> 16) & 0xff] ^
          kCrc32c[4][lo >> 24] ^ kCrc32c[3][p[4]] ^ kCrc32c[2][p[5]] ^ kCrc32c[1][p[6]] ^ kCrc32c[0][p[7]];
    p += 8;
    len -= 8;
  }
  while (len--) crc = (crc >> 8) ^ kCrc32c[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__)

namespace {

// Three chains over pieces of n bytes while 3n remain (see the top).
template <size_t n>
__attribute__((target("sse4.2"))) inline uint64_t three_chains(uint64_t c, const unsigned char*& p, size_t& len,
                                                                const ShiftTables& shift_n,
                                                                const ShiftTables& shift_2n) {
  while (len >= 3 * n) {
    uint64_t a = c, b = 0, d = 0;
    for (size_t i = 0; i < n; i += 8) {
      uint64_t wa, wb, wd;
      std::memcpy(&wa, p + i, 8);
      std::memcpy(&wb, p + n + i, 8);
      std::memcpy(&wd, p + 2 * n + i, 8);
      a = __builtin_ia32_crc32di(a, wa);
      b = __builtin_ia32_crc32di(b, wb);
      d = __builtin_ia32_crc32di(d, wd);
    }
    c = shift(shift_2n, static_cast<uint32_t>(a)) ^ shift(shift_n, static_cast<uint32_t>(b)) ^ d;
    p += 3 * n;
    len -= 3 * n;
  }
  return c;
}

}  // namespace

// SSE4.2's crc32 is CRC-32C's reflected update with no inversion: the
// running value goes in and out as ext4 keeps it.
__attribute__((target("sse4.2"))) uint32_t crc32c_hw(uint32_t crc, const void* data, size_t len) {
  const auto* p = static_cast<const unsigned char*>(data);
  while (len > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    crc = __builtin_ia32_crc32qi(crc, *p++);
    len--;
  }
  uint64_t c = crc;
  c = three_chains<kLong>(c, p, len, kShiftLong, kShiftLong2);
  c = three_chains<kShort>(c, p, len, kShiftShort, kShiftShort2);
  while (len >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c = __builtin_ia32_crc32di(c, w);
    p += 8;
    len -= 8;
  }
  crc = static_cast<uint32_t>(c);
  while (len--) crc = __builtin_ia32_crc32qi(crc, *p++);
  return crc;
}

// The CPU's feature word, read by the compiler's runtime at start-up (no
// host service: cpuid is an instruction).
bool crc32c_hw_available() { return __builtin_cpu_supports("sse4.2"); }

uint32_t crc32c(uint32_t crc, const void* data, size_t len) {
  return crc32c_hw_available() ? crc32c_hw(crc, data, len) : crc32c_table(crc, data, len);
}

#else

bool crc32c_hw_available() { return false; }
uint32_t crc32c_hw(uint32_t crc, const void* data, size_t len) { return crc32c_table(crc, data, len); }
uint32_t crc32c(uint32_t crc, const void* data, size_t len) { return crc32c_table(crc, data, len); }

#endif

uint16_t crc16(uint16_t crc, const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (len--) crc = static_cast<uint16_t>((crc >> 8) ^ kCrc16[(crc ^ *p++) & 0xff]);
  return crc;
}

}  // namespace rump::ext2
