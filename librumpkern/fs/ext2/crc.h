// crc.h: the checksums of the ext2/3/4 on-disk format: CRC-32C
// (Castagnoli, reflected, polynomial 0x82F63B78) as ext4's metadata_csum
// uses it (the running value passed in and returned as is: no final
// inversion; a fresh checksum starts from ~0), and CRC-16 (reflected
// 0xA001, the ANSI polynomial) for uninit_bg group descriptors.
//
// crc32c takes the CPU's CRC32 instruction (x86-64 SSE4.2) when the CPU
// has it, checked at run time, else the tables; both give the same value.
// crc32c_table and crc32c_hw are the two paths themselves, for the tests
// that compare them (crc32c_hw is only called when crc32c_hw_available).
#pragma once

#include <cstddef>
#include <cstdint>

namespace rump::ext2 {

uint32_t crc32c(uint32_t crc, const void* data, size_t len);
uint16_t crc16(uint16_t crc, const void* data, size_t len);

uint32_t crc32c_table(uint32_t crc, const void* data, size_t len);
bool crc32c_hw_available();
uint32_t crc32c_hw(uint32_t crc, const void* data, size_t len);

}  // namespace rump::ext2
