// The on-disk format's CRC-32C: the CPU instruction path (x86-64 SSE4.2,
// three chains joined for long inputs)
// and the table path give the same value for every length and alignment,
// and both match the published check value; a checksum carried across
// pieces equals the checksum of the whole.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "fs/ext2/crc.h"

using rump::ext2::crc32c;
using rump::ext2::crc32c_hw;
using rump::ext2::crc32c_hw_available;
using rump::ext2::crc32c_table;

TEST_CASE("crc32c matches the standard check value on both paths", "[ext2][crc]") {
  const char check[] = "123456789";
  // CRC-32C("123456789") with the usual ~0 start and final inversion.
  CHECK(~crc32c_table(~0u, check, 9) == 0xE3069283u);
  CHECK(~crc32c(~0u, check, 9) == 0xE3069283u);
  if (crc32c_hw_available()) CHECK(~crc32c_hw(~0u, check, 9) == 0xE3069283u);
  // 32 bytes of zeros (RFC 3720, B.4).
  std::vector<unsigned char> zeros(32, 0);
  CHECK(~crc32c(~0u, zeros.data(), zeros.size()) == 0x8A9136AAu);
}

TEST_CASE("crc32c's instruction path equals the table path for every length and alignment", "[ext2][crc]") {
  std::vector<unsigned char> buf(16384 + 64);
  uint64_t s = 0x243F6A8885A308D3ull;
  for (auto& b : buf) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    b = static_cast<unsigned char>(s >> 56);
  }
  if (!crc32c_hw_available()) {
    WARN("the CPU has no CRC32 instruction: only the table path runs");
    return;
  }
  for (size_t align = 0; align < 8; align++) {
    for (size_t len : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{15}, size_t{63}, size_t{128},
                       size_t{256}, size_t{383}, size_t{384}, size_t{385}, size_t{767}, size_t{1023},
                       size_t{3071}, size_t{3072}, size_t{3080}, size_t{3456}, size_t{4092}, size_t{4096},
                       size_t{6144}, size_t{9999}, size_t{16384}}) {
      uint32_t seed = static_cast<uint32_t>(len * 2654435761u + align);
      CHECK(crc32c_hw(seed, buf.data() + align, len) == crc32c_table(seed, buf.data() + align, len));
    }
  }
}

TEST_CASE("crc32c carried across pieces equals the crc of the whole", "[ext2][crc]") {
  std::vector<unsigned char> buf(1000);
  for (size_t i = 0; i < buf.size(); i++) buf[i] = static_cast<unsigned char>(i * 131 + 7);
  uint32_t whole = crc32c(~0u, buf.data(), buf.size());
  for (size_t cut : {size_t{1}, size_t{5}, size_t{8}, size_t{333}, size_t{999}}) {
    uint32_t part = crc32c(~0u, buf.data(), cut);
    CHECK(crc32c(part, buf.data() + cut, buf.size() - cut) == whole);
  }
}
