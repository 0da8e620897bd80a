// format.h: facts of the ext2/3/4 on-disk format (all little-endian):
// field offsets of the superblock, group descriptors, inodes, directory
// entries, hash-tree nodes, extent-tree nodes and in-inode extended
// attributes, feature bits and flags. Structures are read and written
// through the byte accessors below, never by casting disk bytes to structs.
#pragma once

#include <cstdint>
#include <cstring>

namespace rump::ext2 {

inline uint16_t get16(const void* p, size_t off) {
  const auto* b = static_cast<const uint8_t*>(p) + off;
  return static_cast<uint16_t>(b[0] | b[1] << 8);
}
inline uint32_t get32(const void* p, size_t off) {
  const auto* b = static_cast<const uint8_t*>(p) + off;
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}
inline uint64_t get64(const void* p, size_t off) { return get32(p, off) | uint64_t{get32(p, off + 4)} << 32; }
inline void put16(void* p, size_t off, uint16_t v) {
  auto* b = static_cast<uint8_t*>(p) + off;
  b[0] = static_cast<uint8_t>(v);
  b[1] = static_cast<uint8_t>(v >> 8);
}
inline void put32(void* p, size_t off, uint32_t v) {
  auto* b = static_cast<uint8_t*>(p) + off;
  for (int i = 0; i < 4; i++) b[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t be32(const void* p, size_t off) {
  const auto* b = static_cast<const uint8_t*>(p) + off;
  return uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | uint32_t{b[3]};
}
inline void put_be32(void* p, size_t off, uint32_t v) {
  auto* b = static_cast<uint8_t*>(p) + off;
  for (int i = 0; i < 4; i++) b[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

inline constexpr uint16_t kMagic = 0xEF53;
inline constexpr uint32_t kSuperOffset = 1024;  // bytes from the start of the device
inline constexpr uint32_t kSuperSize = 1024;
inline constexpr uint32_t kRootIno = 2;
inline constexpr uint32_t kGoodOldFirstIno = 11;
inline constexpr uint32_t kGoodOldInodeSize = 128;

// Superblock fields (byte offsets).
namespace sb {
inline constexpr size_t kInodesCount = 0x00, kBlocksCountLo = 0x04, kRBlocksCountLo = 0x08,
                        kFreeBlocksLo = 0x0C, kFreeInodes = 0x10, kFirstDataBlock = 0x14, kLogBlockSize = 0x18,
                        kLogClusterSize = 0x1C, kBlocksPerGroup = 0x20, kClustersPerGroup = 0x24,
                        kInodesPerGroup = 0x28, kMtime = 0x2C, kWtime = 0x30, kMntCount = 0x34, kMagic = 0x38,
                        kState = 0x3A, kErrors = 0x3C, kRevLevel = 0x4C, kFirstIno = 0x54, kInodeSize = 0x58,
                        kFeatureCompat = 0x5C, kFeatureIncompat = 0x60, kFeatureRoCompat = 0x64, kUuid = 0x68,
                        kReservedGdtBlocks = 0xCE, kJournalInum = 0xE0, kLastOrphan = 0xE8, kHashSeed = 0xEC,
                        kDefHashVersion = 0xFC, kDefaultMountOpts = 0x100, kDescSize = 0xFE, kFirstMetaBg = 0x104, kBlocksCountHi = 0x150,
                        kRBlocksCountHi = 0x154, kFreeBlocksHi = 0x158, kMinExtraIsize = 0x15C,
                        kWantExtraIsize = 0x15E, kFlags = 0x160, kLogGroupsPerFlex = 0x174, kChecksumType = 0x175,
                        kKbytesWritten = 0x178, kOverheadClusters = 0x248, kChecksumSeed = 0x270,
                        kOrphanFileInum = 0x280, kChecksum = 0x3FC;
}  // namespace sb

inline constexpr uint16_t kStateValid = 1, kStateError = 2, kStateOrphans = 4;
inline constexpr uint16_t kErrorsContinue = 1, kErrorsRo = 2, kErrorsPanic = 3;
inline constexpr uint32_t kFlagSignedHash = 1, kFlagUnsignedHash = 2;

// Feature bits.
inline constexpr uint32_t kCompatDirPrealloc = 0x1, kCompatImagicInodes = 0x2, kCompatHasJournal = 0x4,
                          kCompatExtAttr = 0x8, kCompatResizeInode = 0x10, kCompatDirIndex = 0x20,
                          kCompatSparseSuper2 = 0x200, kCompatFastCommit = 0x400, kCompatStableInodes = 0x800,
                          kCompatOrphanFile = 0x1000;
inline constexpr uint32_t kRoCompatSparseSuper = 0x1, kRoCompatLargeFile = 0x2, kRoCompatBtreeDir = 0x4,
                          kRoCompatHugeFile = 0x8, kRoCompatGdtCsum = 0x10, kRoCompatDirNlink = 0x20,
                          kRoCompatExtraIsize = 0x40, kRoCompatHasSnapshot = 0x80, kRoCompatQuota = 0x100,
                          kRoCompatBigalloc = 0x200, kRoCompatMetadataCsum = 0x400, kRoCompatReplica = 0x800,
                          kRoCompatReadonly = 0x1000, kRoCompatProject = 0x2000, kRoCompatSharedBlocks = 0x4000,
                          kRoCompatVerity = 0x8000, kRoCompatOrphanPresent = 0x10000;
inline constexpr uint32_t kIncompatCompression = 0x1, kIncompatFiletype = 0x2, kIncompatRecover = 0x4,
                          kIncompatJournalDev = 0x8, kIncompatMetaBg = 0x10, kIncompatExtents = 0x40,
                          kIncompat64bit = 0x80, kIncompatMmp = 0x100, kIncompatFlexBg = 0x200,
                          kIncompatEaInode = 0x400, kIncompatDirdata = 0x1000, kIncompatCsumSeed = 0x2000,
                          kIncompatLargedir = 0x4000, kIncompatInlineData = 0x8000, kIncompatEncrypt = 0x10000,
                          kIncompatCasefold = 0x20000;

// Group descriptor fields; the _hi halves exist when the descriptor is 64
// bytes (64bit).
namespace gd {
inline constexpr size_t kBlockBitmapLo = 0x00, kInodeBitmapLo = 0x04, kInodeTableLo = 0x08,
                        kFreeBlocksLo = 0x0C, kFreeInodesLo = 0x0E, kUsedDirsLo = 0x10, kFlags = 0x12,
                        kBlockBitmapCsumLo = 0x18, kInodeBitmapCsumLo = 0x1A, kItableUnusedLo = 0x1C,
                        kChecksum = 0x1E, kBlockBitmapHi = 0x20, kInodeBitmapHi = 0x24, kInodeTableHi = 0x28,
                        kFreeBlocksHi = 0x2C, kFreeInodesHi = 0x2E, kUsedDirsHi = 0x30, kItableUnusedHi = 0x32,
                        kBlockBitmapCsumHi = 0x38, kInodeBitmapCsumHi = 0x3A;
inline constexpr uint16_t kInodeUninit = 1, kBlockUninit = 2, kInodeZeroed = 4;
// Split fields: the low half, and the high half in a 64-byte descriptor.
inline uint64_t get_block(const void* d, size_t lo, size_t hi, bool big) {
  return get32(d, lo) | (big ? uint64_t{get32(d, hi)} << 32 : 0);
}
inline uint32_t get_count(const void* d, size_t lo, size_t hi, bool big) {
  return get16(d, lo) | (big ? uint32_t{get16(d, hi)} << 16 : 0);
}
inline void set_count(void* d, size_t lo, size_t hi, bool big, uint32_t v) {
  put16(d, lo, static_cast<uint16_t>(v));
  if (big) put16(d, hi, static_cast<uint16_t>(v >> 16));
}
}  // namespace gd

// Inode fields.
namespace ino {
inline constexpr size_t kMode = 0x00, kUid = 0x02, kSizeLo = 0x04, kAtime = 0x08, kCtime = 0x0C, kMtime = 0x10,
                        kDtime = 0x14, kGid = 0x18, kLinks = 0x1A, kBlocksLo = 0x1C, kFlags = 0x20,
                        kVersion = 0x24, kBlock = 0x28, kGeneration = 0x64, kFileAclLo = 0x68, kSizeHigh = 0x6C,
                        kBlocksHi = 0x74, kFileAclHi = 0x76, kUidHigh = 0x78, kGidHigh = 0x7A,
                        kChecksumLo = 0x7C, kExtraIsize = 0x80, kChecksumHi = 0x82, kCtimeExtra = 0x84,
                        kMtimeExtra = 0x88, kAtimeExtra = 0x8C, kCrtime = 0x90, kCrtimeExtra = 0x94,
                        kVersionHi = 0x98;
inline constexpr size_t kBlockBytes = 60;  // i_block: 15 words
}  // namespace ino

// Inode flags.
inline constexpr uint32_t kFlSecrm = 0x1, kFlUnrm = 0x2, kFlCompr = 0x4, kFlSync = 0x8, kFlImmutable = 0x10,
                          kFlAppend = 0x20, kFlNodump = 0x40, kFlNoatime = 0x80, kFlIndex = 0x1000,
                          kFlJournalData = 0x4000, kFlDirsync = 0x10000, kFlTopdir = 0x20000,
                          kFlHugeFile = 0x40000, kFlExtents = 0x80000, kFlEaInode = 0x200000,
                          kFlInlineData = 0x10000000, kFlEncrypt = 0x800, kFlCasefold = 0x40000000;

// Directory entries: inode (u32), rec_len (u16), name_len (u8),
// file_type (u8), name. A metadata_csum leaf block ends in a 12-byte
// tail that looks like an empty entry with file_type 0xDE.
inline constexpr size_t kDirentHeader = 8;
inline constexpr uint32_t dirent_len(uint32_t name_len) { return (name_len + kDirentHeader + 3) & ~3u; }
inline constexpr uint8_t kDirTailType = 0xDE;
inline constexpr size_t kDirTailSize = 12;
enum : uint8_t { kFtUnknown = 0, kFtReg = 1, kFtDir = 2, kFtChr = 3, kFtBlk = 4, kFtFifo = 5, kFtSock = 6, kFtLnk = 7 };

// Hash-tree root (block 0 of an indexed directory): "." (12 bytes),
// ".." (rest of the block), then root info at 0x18: reserved (u32),
// hash_version, info_length (8), indirect_levels, unused_flags; then the
// limit/count pair and the entries (hash u32, block u32; the first entry's
// hash slot holds limit and count).
inline constexpr size_t kDxRootInfo = 0x18, kDxRootEntries = 0x20, kDxNodeEntries = 0x08;
inline constexpr uint8_t kHashLegacy = 0, kHashHalfMd4 = 1, kHashTea = 2, kHashLegacyUnsigned = 3,
                         kHashHalfMd4Unsigned = 4, kHashTeaUnsigned = 5, kHashSiphash = 6;

// Extent tree: header (magic, entries, max, depth, generation), then
// 12-byte index entries (block, leaf_lo, leaf_hi) or leaves (block, len,
// start_hi, start_lo); with metadata_csum a tree block ends in a 4-byte
// checksum after max entries.
inline constexpr uint16_t kExtentMagic = 0xF30A;
inline constexpr size_t kExtentHeader = 12, kExtentEntry = 12;
inline constexpr uint16_t kExtentInitMax = 32768;  // a length above this marks an unwritten extent

// Extended attributes in the inode body: magic, then entries.
inline constexpr uint32_t kXattrMagic = 0xEA020000;
inline constexpr size_t kXattrEntryHeader = 16;  // name_len, index, value_offs, value_inum, value_size, hash
inline constexpr uint8_t kXattrIndexSystem = 7;

// Journal (jbd2) block header: magic, block type, sequence (big-endian).
inline constexpr uint32_t kJbd2Magic = 0xC03B3998;

// Where a logical block past the 12 direct ones (lblk counted from the
// first indirect one) sits in a block map with per pointers a block: the
// depth of its indirect tree (1 to 3), the blocks that tree spans, and
// lblk's offset inside it. False past the triple-indirect tree.
struct IndirectSlot {
  int levels;
  uint64_t span;
  uint64_t off;
};
inline bool indirect_slot(uint64_t lblk, uint64_t per, IndirectSlot& s) {
  if (lblk < per) {
    s = {1, per, lblk};
  } else if (lblk - per < per * per) {
    s = {2, per * per, lblk - per};
  } else {
    lblk -= per + per * per;
    if (lblk >= per * per * per) return false;
    s = {3, per * per * per, lblk};
  }
  return true;
}

// A map block of an indirect map, as a key: the tree it is in (levels:
// 1 indirect, 2 double, 3 triple), its depth there (0: the block the
// inode points at) and its place at that depth.
inline uint64_t index_key(int levels, int depth, uint64_t idx) {
  return uint64_t(levels) << 62 | uint64_t(depth) << 60 | idx;
}
// The first logical block the map block of key maps (per pointers a
// block).
inline uint64_t index_key_first(uint64_t key, uint64_t per) {
  int levels = static_cast<int>(key >> 62), depth = static_cast<int>((key >> 60) & 3);
  uint64_t idx = key & ((uint64_t{1} << 60) - 1);
  uint64_t base = 12 + (levels > 1 ? per : 0) + (levels > 2 ? per * per : 0);
  uint64_t cover = 1;
  for (int i = depth; i < levels; i++) cover *= per;
  return base + idx * cover;
}

}  // namespace rump::ext2
