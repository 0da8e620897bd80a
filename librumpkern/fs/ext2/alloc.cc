// ext2/3/4 allocation: block and inode bitmaps (initialising the groups
// uninit_bg left uninitialised), the free counts of group descriptors and
// the superblock, their checksums, and writing the superblock back.
#include <algorithm>
#include <cstring>

#include "fs/ext2/crc.h"
#include "fs/ext2/ext2.h"
#include "kern/kernel.h"

namespace rump {

using namespace ext2;

namespace {

bool bit_test(const char* map, uint32_t i) { return map[i >> 3] & (1 << (i & 7)); }
void bit_set(char* map, uint32_t i) { map[i >> 3] = static_cast<char>(map[i >> 3] | (1 << (i & 7))); }
void bit_clear(char* map, uint32_t i) { map[i >> 3] = static_cast<char>(map[i >> 3] & ~(1 << (i & 7))); }

// The first bit in [start, end) clear in map and, when also is given, in
// also too; end if none. Whole 64-bit words of taken bits are skipped.
uint32_t find_clear(const char* map, const char* also, uint32_t start, uint32_t end) {
  uint32_t i = start;
  while (i < end) {
    if ((i & 63) == 0 && end - i >= 64) {
      uint64_t w = get64(map, i >> 3) | (also ? get64(also, i >> 3) : 0);
      if (w == ~uint64_t{0}) {
        i += 64;
        continue;
      }
      return i + static_cast<uint32_t>(__builtin_ctzll(~w));
    }
    if (!bit_test(map, i) && !(also && bit_test(also, i))) return i;
    i++;
  }
  return end;
}

bool is_power_of(uint32_t n, uint32_t base) {
  if (n == 0) return false;
  while (n % base == 0) n /= base;
  return n == 1;
}

}  // namespace

uint64_t Ext2Mount::group_first_block(uint32_t g) const {
  return geo_.first_data_block + uint64_t{g} * geo_.blocks_per_group;
}

uint32_t Ext2Mount::group_blocks(uint32_t g) const {
  uint64_t first = group_first_block(g);
  uint64_t left = geo_.blocks_count - first;
  return left < geo_.blocks_per_group ? static_cast<uint32_t>(left) : geo_.blocks_per_group;
}

void Ext2Mount::set_gd_csum(uint32_t g, char* d) {
  if (has_csum()) {
    char gn[4];
    put32(gn, 0, g);
    uint32_t c = crc32c(geo_.csum_seed, gn, 4);
    put16(d, gd::kChecksum, 0);
    c = crc32c(c, d, geo_.desc_size);
    put16(d, gd::kChecksum, static_cast<uint16_t>(c));
  } else if (geo_.ro_compat & kRoCompatGdtCsum) {
    uint16_t c = crc16(0xFFFF, sb_raw_ + sb::kUuid, 16);
    char gn[4];
    put32(gn, 0, g);
    c = crc16(c, gn, 4);
    c = crc16(c, d, gd::kChecksum);
    if (geo_.desc_size > gd::kChecksum + 2) c = crc16(c, d + gd::kChecksum + 2, geo_.desc_size - gd::kChecksum - 2);
    put16(d, gd::kChecksum, c);
  }
}

void Ext2Mount::set_bitmap_csum(char* d, const char* bitmap, bool inode) {
  if (!has_csum()) return;
  uint32_t bytes = (inode ? geo_.inodes_per_group : geo_.blocks_per_group) / 8;
  uint32_t c = crc32c(geo_.csum_seed, bitmap, bytes);
  bool big = geo_.desc_size >= 64;
  if (inode) {
    put16(d, gd::kInodeBitmapCsumLo, static_cast<uint16_t>(c));
    if (big) put16(d, gd::kInodeBitmapCsumHi, static_cast<uint16_t>(c >> 16));
  } else {
    put16(d, gd::kBlockBitmapCsumLo, static_cast<uint16_t>(c));
    if (big) put16(d, gd::kBlockBitmapCsumHi, static_cast<uint16_t>(c >> 16));
  }
}

void Ext2Mount::add_free_blocks(int64_t n) {
  uint64_t v = free_blocks() + static_cast<uint64_t>(n);
  put32(sb_raw_, sb::kFreeBlocksLo, static_cast<uint32_t>(v));
  if (geo_.incompat & kIncompat64bit) put32(sb_raw_, sb::kFreeBlocksHi, static_cast<uint32_t>(v >> 32));
}

void Ext2Mount::add_free_inodes(int64_t n) {
  put32(sb_raw_, sb::kFreeInodes, static_cast<uint32_t>(get32(sb_raw_, sb::kFreeInodes) + n));
}

// The metadata blocks lying in group g: its superblock copy and
// descriptor tables, and every group's bitmaps and inode table placed in
// it (flex_bg packs them together); bits past the group's end are set.
Result<void> Ext2Mount::init_block_bitmap(uint32_t g, char* bitmap) {
  std::memset(bitmap, 0, geo_.block_size);
  uint64_t first = group_first_block(g);
  uint32_t nblocks = group_blocks(g);
  auto mark = [&](uint64_t b) {
    if (b >= first && b < first + nblocks) bit_set(bitmap, static_cast<uint32_t>(b - first));
  };
  bool has_super = g <= 1 || !(geo_.ro_compat & kRoCompatSparseSuper) || ((g & 1) && (is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7)));
  uint64_t gdt_blocks = (uint64_t{geo_.groups} + geo_.desc_per_block - 1) / geo_.desc_per_block;
  if (has_super) {
    uint32_t n = 1;
    if (!(geo_.incompat & kIncompatMetaBg)) n += static_cast<uint32_t>(gdt_blocks) + geo_.reserved_gdt;
    for (uint32_t i = 0; i < n; i++) mark(first + i);
  }
  if (geo_.incompat & kIncompatMetaBg) {
    uint32_t in = g % geo_.desc_per_block;
    if (g / geo_.desc_per_block >= geo_.first_meta_bg && (in == 0 || in == 1 || in == geo_.desc_per_block - 1))
      mark(first + (has_super ? 1 : 0));
  }
  bool big = geo_.desc_size >= 64;
  for (uint32_t i = 0; i < geo_.groups; i++) {
    BufRef h;
    const char* d = TRY(group_desc(i, h));
    mark(gd::get_block(d, gd::kBlockBitmapLo, gd::kBlockBitmapHi, big));
    mark(gd::get_block(d, gd::kInodeBitmapLo, gd::kInodeBitmapHi, big));
    uint64_t it = gd::get_block(d, gd::kInodeTableLo, gd::kInodeTableHi, big);
    for (uint32_t k = 0; k < geo_.inode_table_blocks; k++) mark(it + k);
  }
  for (uint32_t i = nblocks; i < geo_.block_size * 8; i++) bit_set(bitmap, i);
  return {};
}

uint64_t Ext2Mount::free_blocks() const {
  return get32(sb_raw_, sb::kFreeBlocksLo) |
         ((geo_.incompat & kIncompat64bit) ? uint64_t{get32(sb_raw_, sb::kFreeBlocksHi)} << 32 : 0);
}

void Ext2Mount::hint_taken(uint32_t g, bool inode, const char* map, uint32_t end) {
  if (clear_hint_ == nullptr) {
    // All zeros: a lower bound of any bitmap.
    clear_hint_ = static_cast<uint32_t*>(kernel().kmem().zalloc(size_t{geo_.groups} * 2 * sizeof(uint32_t)));
    if (clear_hint_ == nullptr) return;
  }
  uint32_t& h = clear_hint_[2 * g + inode];
  h = find_clear(map, nullptr, h, end);
}

Result<uint64_t> Ext2Mount::alloc_block(uint64_t goal) {
  uint32_t got;
  return alloc_run(goal, 1, got);
}

Result<uint64_t> Ext2Mount::alloc_run(uint64_t goal, uint32_t want, uint32_t& got) {
  uint64_t free_now = free_blocks();
  uint64_t keep = reserved_ + (alloc_nofail_ ? 0 : metadata_pool());
  if (free_now <= keep) return err(ENOSPC);
  if (want > free_now - keep) want = static_cast<uint32_t>(free_now - keep);
  if (want == 0) want = 1;
  if (goal < geo_.first_data_block || goal >= geo_.blocks_count) goal = geo_.first_data_block;
  uint32_t g0 = static_cast<uint32_t>((goal - geo_.first_data_block) / geo_.blocks_per_group);
  bool big = geo_.desc_size >= 64;
  for (uint32_t k = 0; k <= geo_.groups; k++) {
    uint32_t g = (g0 + k) % geo_.groups;
    BufRef dh;
    char* d = const_cast<char*>(TRY(group_desc(g, dh)));
    uint32_t free = gd::get_count(d, gd::kFreeBlocksLo, gd::kFreeBlocksHi, big);
    if (free == 0) continue;
    uint64_t bb = gd::get_block(d, gd::kBlockBitmapLo, gd::kBlockBitmapHi, big);
    BufRef bh = TRY(bread(bb));
    char* map = bh.data();
    uint16_t flags = get16(d, gd::kFlags);
    if (flags & gd::kBlockUninit) {
      TRY(init_block_bitmap(g, map));
      put16(d, gd::kFlags, flags & ~gd::kBlockUninit);
      hint_freed(g, false, 0);
    }
    uint32_t n = group_blocks(g);
    uint32_t start = (k == 0) ? static_cast<uint32_t>((goal - geo_.first_data_block) % geo_.blocks_per_group) : 0;
    // A block freed since the last commit stays taken until then.
    const char* committed = journal_ ? journal_->committed_bitmap(g) : nullptr;
    auto is_free = [&](uint32_t i) { return !bit_test(map, i) && !(committed && bit_test(committed, i)); };
    // From the goal on, then from the group's start; no bit is clear
    // below the hint.
    uint32_t low = std::min(clear_hint(g, false), n);
    uint32_t found = find_clear(map, committed, std::max(start, low), n);
    if (found == n && start > low) {
      found = find_clear(map, committed, low, start);
      if (found == start) found = n;
    }
    if (found == n) {
      if (k == 0 || committed) continue;
      // The descriptor says free blocks, the bitmap none.
      return corrupt("block bitmap and free count disagree", g);
    }
    // The free blocks right after it, up to want (and the group's free
    // count, which a damaged bitmap might contradict), in one bitmap change.
    uint32_t cnt = 1;
    while (cnt < want && cnt < free && found + cnt < n && is_free(found + cnt)) cnt++;
    for (uint32_t i = 0; i < cnt; i++) bit_set(map, found + i);
    hint_taken(g, false, map, n);
    set_bitmap_csum(d, map, false);
    TRY(dirty_meta(bh));
    gd::set_count(d, gd::kFreeBlocksLo, gd::kFreeBlocksHi, big, free - cnt);
    set_gd_csum(g, d);
    TRY(dirty_meta(dh));
    add_free_blocks(-static_cast<int64_t>(cnt));
    got = cnt;
    return group_first_block(g) + found;
  }
  return err(ENOSPC);
}

Result<void> Ext2Mount::free_block(uint64_t b) { return free_run(b, 1); }

Result<void> Ext2Mount::free_run(uint64_t b, uint64_t count) {
  if (count == 0) return {};
  if (b < geo_.first_data_block || b >= geo_.blocks_count || count > geo_.blocks_count - b)
    return corrupt("freeing a block outside", b);
  bool big = geo_.desc_size >= 64;
  // One bitmap change per group the run touches.
  while (count > 0) {
    uint32_t g = static_cast<uint32_t>((b - geo_.first_data_block) / geo_.blocks_per_group);
    uint32_t bit = static_cast<uint32_t>((b - geo_.first_data_block) % geo_.blocks_per_group);
    uint32_t here = static_cast<uint32_t>(std::min<uint64_t>(count, geo_.blocks_per_group - bit));
    BufRef dh;
    char* d = const_cast<char*>(TRY(group_desc(g, dh)));
    if (get16(d, gd::kFlags) & gd::kBlockUninit) return corrupt("freeing a block of an uninitialised group", b);
    BufRef bh = TRY(bread(gd::get_block(d, gd::kBlockBitmapLo, gd::kBlockBitmapHi, big)));
    for (uint32_t i = 0; i < here; i++)
      if (!bit_test(bh.data(), bit + i)) return corrupt("freeing a free block", b + i);
    if (journal_) {
      TRY(journal_->freeze_bitmap(g, bh.data(), (geo_.blocks_per_group + 7) / 8));
      for (uint32_t i = 0; i < here; i++) TRY(journal_->forget(b + i));
    }
    for (uint32_t i = 0; i < here; i++) bit_clear(bh.data(), bit + i);
    hint_freed(g, false, bit);
    set_bitmap_csum(d, bh.data(), false);
    TRY(dirty_meta(bh));
    gd::set_count(d, gd::kFreeBlocksLo, gd::kFreeBlocksHi, big,
                  gd::get_count(d, gd::kFreeBlocksLo, gd::kFreeBlocksHi, big) + here);
    set_gd_csum(g, d);
    TRY(dirty_meta(dh));
    add_free_blocks(here);
    b += here;
    count -= here;
  }
  return {};
}

Result<uint32_t> Ext2Mount::alloc_inode(uint32_t goal_group, bool dir) {
  bool big = geo_.desc_size >= 64;
  bool lazy = geo_.ro_compat & (kRoCompatGdtCsum | kRoCompatMetadataCsum);
  for (uint32_t k = 0; k < geo_.groups; k++) {
    uint32_t g = (goal_group + k) % geo_.groups;
    BufRef dh;
    char* d = const_cast<char*>(TRY(group_desc(g, dh)));
    uint32_t free = gd::get_count(d, gd::kFreeInodesLo, gd::kFreeInodesHi, big);
    if (free == 0) continue;
    BufRef bh = TRY(bread(gd::get_block(d, gd::kInodeBitmapLo, gd::kInodeBitmapHi, big)));
    char* map = bh.data();
    uint16_t flags = get16(d, gd::kFlags);
    if (lazy && (flags & gd::kInodeUninit)) {
      std::memset(map, 0, geo_.block_size);
      for (uint32_t i = geo_.inodes_per_group; i < geo_.block_size * 8; i++) bit_set(map, i);
      flags &= ~gd::kInodeUninit;
      put16(d, gd::kFlags, flags);
      hint_freed(g, true, 0);
    }
    // Inodes below first_ino are reserved whatever the bitmap says.
    uint32_t first = g * geo_.inodes_per_group + 1 < geo_.first_ino ? geo_.first_ino - 1 - g * geo_.inodes_per_group : 0;
    first = std::max(first, clear_hint(g, true));
    uint32_t found = find_clear(map, nullptr, std::min(first, geo_.inodes_per_group), geo_.inodes_per_group);
    if (found == geo_.inodes_per_group) continue;
    bit_set(map, found);
    hint_taken(g, true, map, geo_.inodes_per_group);
    set_bitmap_csum(d, map, true);
    TRY(dirty_meta(bh));
    gd::set_count(d, gd::kFreeInodesLo, gd::kFreeInodesHi, big, free - 1);
    if (dir)
      gd::set_count(d, gd::kUsedDirsLo, gd::kUsedDirsHi, big, gd::get_count(d, gd::kUsedDirsLo, gd::kUsedDirsHi, big) + 1);
    if (lazy) {
      uint32_t unused = gd::get_count(d, gd::kItableUnusedLo, gd::kItableUnusedHi, big);
      if (found >= geo_.inodes_per_group - unused)
        gd::set_count(d, gd::kItableUnusedLo, gd::kItableUnusedHi, big, geo_.inodes_per_group - found - 1);
    }
    set_gd_csum(g, d);
    TRY(dirty_meta(dh));
    add_free_inodes(-1);
    return g * geo_.inodes_per_group + found + 1;
  }
  return err(ENOSPC);
}

Result<BufRef> Ext2Mount::inode_block_for_write(uint32_t g, uint32_t index, uint64_t blkno) {
  if (BufRef b = bc_.lookup(dev_, blkno, geo_.block_size)) return b;
  if (blkno >= geo_.blocks_count) return corrupt("inode table past the end", blkno);
  const uint32_t per = geo_.block_size / geo_.inode_size;
  const uint32_t first = index - index % per;
  BufRef dh;
  const char* d = TRY(group_desc(g, dh));
  bool alone = false;
  if (!(get16(d, gd::kFlags) & gd::kInodeUninit)) {
    BufRef bh = TRY(bread(gd::get_block(d, gd::kInodeBitmapLo, gd::kInodeBitmapHi, geo_.desc_size >= 64)));
    alone = true;
    for (uint32_t i = first; i < first + per && i < geo_.inodes_per_group && alone; i++)
      if (i != index && bit_test(bh.data(), i)) alone = false;
  }
  dh.reset();
  if (!alone) return bread(blkno);
  Result<BufRef> r = bc_.getblk(dev_, blkno, geo_.block_size);
  if (!r.ok() && r.error() != ENOMEM) return err(EIO);
  return r;
}

Result<void> Ext2Mount::free_inode(uint32_t ino, bool dir) {
  if (ino < geo_.first_ino || ino > geo_.inodes_count) return corrupt("freeing a reserved inode", ino);
  // The number may name another directory next.
  names_drop(ino);
  uint32_t g = (ino - 1) / geo_.inodes_per_group, bit = (ino - 1) % geo_.inodes_per_group;
  bool big = geo_.desc_size >= 64;
  BufRef dh;
  char* d = const_cast<char*>(TRY(group_desc(g, dh)));
  BufRef bh = TRY(bread(gd::get_block(d, gd::kInodeBitmapLo, gd::kInodeBitmapHi, big)));
  if (!bit_test(bh.data(), bit)) return corrupt("freeing a free inode", ino);
  bit_clear(bh.data(), bit);
  hint_freed(g, true, bit);
  set_bitmap_csum(d, bh.data(), true);
  TRY(dirty_meta(bh));
  gd::set_count(d, gd::kFreeInodesLo, gd::kFreeInodesHi, big,
                gd::get_count(d, gd::kFreeInodesLo, gd::kFreeInodesHi, big) + 1);
  if (dir) {
    uint32_t used = gd::get_count(d, gd::kUsedDirsLo, gd::kUsedDirsHi, big);
    if (used) gd::set_count(d, gd::kUsedDirsLo, gd::kUsedDirsHi, big, used - 1);
  }
  set_gd_csum(g, d);
  TRY(dirty_meta(dh));
  add_free_inodes(1);
  return {};
}

Result<void> Ext2Mount::set_compat(uint32_t bit) {
  geo_.compat |= bit;
  put32(sb_raw_, sb::kFeatureCompat, get32(sb_raw_, sb::kFeatureCompat) | bit);
  return write_super();
}

Result<void> Ext2Mount::write_super() {
  if (has_csum()) put32(sb_raw_, sb::kChecksum, crc32c(~0u, sb_raw_, sb::kChecksum));
  BufRef bh = TRY(bread(geo_.sb_byte / geo_.block_size));
  std::memcpy(bh.data() + geo_.sb_byte % geo_.block_size, sb_raw_, kSuperSize);
  return dirty_meta(bh);
}

Result<void> Ext2Mount::sync_fs() {
  if (writable()) {
    put32(sb_raw_, sb::kWtime, static_cast<uint32_t>(wall_timespec().tv_sec));
    TRY(write_super());
  }
  // syncfs, sync, unmount: committed and checkpointed, so that the home
  // blocks alone hold everything.
  if (journaling()) TRY(journal_->commit(true));
  return bc_.flush(dev_);
}

Result<void> Ext2Mount::fsync_fs() {
  if (!journaling()) return sync_fs();
  // Ordered mode flushes file data inside the commit; writeback mode and
  // a transaction with nothing to commit need the data flush here.
  if (journal_->mode() == DataMode::kWriteback || journal_->idle()) TRY(bc_.flush(dev_));
  return journal_->commit(false);
}

Result<void> Ext2Mount::dirty_meta(BufRef& b) {
  b.dirty();
  if (journaling()) return journal_->add(b);
  return {};
}

Result<void> Ext2Mount::dirty_data(BufRef& b) {
  if (journaling() && journal_->mode() == DataMode::kJournal) return dirty_meta(b);
  b.dirty();
  return {};
}

Result<void> Ext2Mount::begin_op() {
  if (journal_) return journal_->reserve();
  return {};
}

}  // namespace rump
