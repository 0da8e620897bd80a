// Table-driven CRC-32C and CRC-16, tables built at compile time.
#include "fs/ext2/crc.h"

#include <array>

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

}  // namespace

uint32_t crc32c(uint32_t crc, const void* data, size_t len) {
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

uint16_t crc16(uint16_t crc, const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (len--) crc = static_cast<uint16_t>((crc >> 8) ^ kCrc16[(crc ^ *p++) & 0xff]);
  return crc;
}

}  // namespace rump::ext2
