// ext2/3/4: mount options, the superblock, feature checks, group
// descriptors, statfs, unmount and the file-system types.
#include <fcntl.h>
#include <sys/mount.h>

#include <cstdlib>
#include <cstring>

#include "absl/cleanup/cleanup.h"

#include "fs/ext2/crc.h"
#include "fs/ext2/ext2.h"
#include "kern/kernel.h"
#include "kern/lwp.h"
#include "vfs/vfs.h"

namespace rump {

using namespace ext2;

namespace {

constexpr uint64_t kExt4Magic = 0xEF53;

// Feature names for messages.
struct FeatureName {
  uint32_t bit;
  const char* name;
};
constexpr FeatureName kIncompatNames[] = {
    {kIncompatCompression, "compression"}, {kIncompatFiletype, "filetype"},
    {kIncompatRecover, "needs_recovery"},  {kIncompatJournalDev, "journal_dev"},
    {kIncompatMetaBg, "meta_bg"},          {kIncompatExtents, "extent"},
    {kIncompat64bit, "64bit"},             {kIncompatMmp, "mmp"},
    {kIncompatFlexBg, "flex_bg"},          {kIncompatEaInode, "ea_inode"},
    {kIncompatDirdata, "dirdata"},         {kIncompatCsumSeed, "metadata_csum_seed"},
    {kIncompatLargedir, "large_dir"},      {kIncompatInlineData, "inline_data"},
    {kIncompatEncrypt, "encrypt"},         {kIncompatCasefold, "casefold"},
};
constexpr FeatureName kRoCompatNames[] = {
    {kRoCompatSparseSuper, "sparse_super"}, {kRoCompatLargeFile, "large_file"},
    {kRoCompatBtreeDir, "btree_dir"},       {kRoCompatHugeFile, "huge_file"},
    {kRoCompatGdtCsum, "uninit_bg"},        {kRoCompatDirNlink, "dir_nlink"},
    {kRoCompatExtraIsize, "extra_isize"},   {kRoCompatHasSnapshot, "snapshot"},
    {kRoCompatQuota, "quota"},              {kRoCompatBigalloc, "bigalloc"},
    {kRoCompatMetadataCsum, "metadata_csum"}, {kRoCompatReplica, "replica"},
    {kRoCompatReadonly, "read-only"},       {kRoCompatProject, "project"},
    {kRoCompatSharedBlocks, "shared_blocks"}, {kRoCompatVerity, "verity"},
    {kRoCompatOrphanPresent, "orphan_present"},
};

template <size_t N>
const char* first_name(const FeatureName (&tab)[N], uint32_t bits) {
  for (const FeatureName& f : tab)
    if (bits & f.bit) return f.name;
  return "unknown";
}

// What this driver reads and writes. INCOMPAT features outside the set
// refuse the mount; RO_COMPAT features outside it allow read-only mounts.
constexpr uint32_t kIncompatSupported = kIncompatFiletype | kIncompatRecover | kIncompatMetaBg | kIncompatExtents |
                                        kIncompat64bit | kIncompatFlexBg | kIncompatCsumSeed | kIncompatLargedir |
                                        kIncompatInlineData;
constexpr uint32_t kRoCompatSupported = kRoCompatSparseSuper | kRoCompatLargeFile | kRoCompatBtreeDir |
                                        kRoCompatHugeFile | kRoCompatGdtCsum | kRoCompatDirNlink |
                                        kRoCompatExtraIsize | kRoCompatMetadataCsum | kRoCompatOrphanPresent;
// What Linux lets a mount of type "ext2" or "ext3" have.
constexpr uint32_t kExt2Incompat = kIncompatFiletype | kIncompatMetaBg;
constexpr uint32_t kExt3Incompat = kIncompatFiletype | kIncompatRecover | kIncompatMetaBg;
constexpr uint32_t kExt23RoCompat = kRoCompatSparseSuper | kRoCompatLargeFile | kRoCompatBtreeDir;

bool is_power_of(uint32_t n, uint32_t base) {
  if (n == 0) return false;
  while (n % base == 0) n /= base;
  return n == 1;
}

// Groups holding a superblock backup under sparse_super: 0, 1 and powers
// of 3, 5 and 7.
bool group_has_super(uint32_t g, uint32_t ro_compat) {
  if (g <= 1 || !(ro_compat & kRoCompatSparseSuper)) return true;
  if (!(g & 1)) return false;
  return is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7);
}

}  // namespace

Ext2Mount::Ext2Mount(Kernel& k, FsType& t, int flags, Ref<Vnode> devvp, BlockDevice& dev)
    : Mount(k, t, flags), devvp_(std::move(devvp)), dev_(dev), bc_(buf_cache(k)), nodes_(k.kmem()) {
  bc_.hold();
  mount_use(*devvp_);
}

// After teardown the tree's last nodes may still change blocks: at halt
// the files a process kept open are closed after the unmount (an unlinked
// one is freed then). Those changes go home here, without the journal
// (stopped), before the buffers go.
Ext2Mount::~Ext2Mount() {
  if (torn_down_ && writable() && bc_.has_dirty(dev_)) {
    Result<void> r = write_super();
    if (r.ok()) r = bc_.flush(dev_);
    if (!r.ok()) kernel().printf("EXT4-fs: writing back after unmount failed (%d)\n", r.error());
  }
  delete journal_;
  names_drop_all();
  Kmem::free(sb_raw_);
  drop_desc_blocks();
  bc_.invalidate(dev_);
  bc_.release();
  mount_unuse(*devvp_);
}

void Ext2Mount::abort_changes(const char* what, uint64_t where, int error) {
  bool journaled = journaling();
  kernel().printf("EXT4-fs error (device %s): %s (%llu): error %d%s\n", fstype().name, what,
                  static_cast<unsigned long long>(where), error, journaled ? ": aborting the journal" : "");
  if (!journaled) {
    // Nothing takes the half-made change back: the superblock says the
    // image has errors, so that e2fsck checks it. Should its block not be
    // had now, the unmount tries again (teardown).
    put16(sb_raw_, sb::kState, static_cast<uint16_t>(get16(sb_raw_, sb::kState) | kStateError));
    error_recorded_ = true;
    (void)record_error();
  }
  if (!(flags_.load() & MS_RDONLY)) {
    kernel().printf("EXT4-fs (%s): remounting filesystem read-only\n", fstype().name);
    flags_.fetch_or(MS_RDONLY);
  }
}

// Only the state goes into the superblock's block (as last written):
// sb_raw_ may hold changes of the operation that failed.
Result<void> Ext2Mount::record_error() {
  BufRef bh = TRY(bread(geo_.sb_byte / geo_.block_size));
  char* s = bh.data() + geo_.sb_byte % geo_.block_size;
  put16(s, sb::kState, static_cast<uint16_t>(get16(s, sb::kState) | kStateError));
  if (has_csum()) put32(s, sb::kChecksum, crc32c(~0u, s, sb::kChecksum));
  return dirty_meta(bh);
}

void Ext2Mount::check_undo(const Result<void>& undone, const char* what, uint64_t where) {
  if (!undone.ok()) abort_changes(what, where, undone.error());
}

void Ext2Mount::undo_blocks(uint64_t b, uint64_t count) {
  check_undo(free_run(b, count), "blocks allocated could not be freed", b);
}

void Ext2Mount::undo_inode(uint32_t ino, bool dir) {
  check_undo(free_inode(ino, dir), "an inode allocated could not be freed", ino);
}

Error Ext2Mount::corrupt(const char* what, uint64_t where) {
  kernel().printf("EXT4-fs error (device %s): %s (%llu)\n", fstype().name, what,
                  static_cast<unsigned long long>(where));
  if (errors_ != kErrorsContinue && !(flags_.load() & MS_RDONLY)) {
    kernel().printf("EXT4-fs (%s): remounting filesystem read-only\n", fstype().name);
    flags_.fetch_or(MS_RDONLY);
  }
  return err(EUCLEAN);
}

Result<BufRef> Ext2Mount::bread(uint64_t blkno) {
  if (blkno >= geo_.blocks_count) return corrupt("block number past the end", blkno);
  Result<BufRef> r = bc_.bread(dev_, blkno, geo_.block_size);
  if (!r.ok() && r.error() != ENOMEM) return err(EIO);
  return r;
}

uint32_t Ext2Mount::inode_csum_seed(uint32_t ino, uint32_t gen) const {
  char b[4];
  put32(b, 0, ino);
  uint32_t c = crc32c(geo_.csum_seed, b, 4);
  put32(b, 0, gen);
  return crc32c(c, b, 4);
}

uint32_t Ext2Node::csum_seed() const {
  if (!csum_seed_known_) {
    csum_seed_ = em().inode_csum_seed(ino_, get32(raw_, ino::kGeneration));
    csum_seed_known_ = true;
  }
  return csum_seed_;
}

// --- options

Result<void> Ext2Mount::parse_options(const char* data, const char* type) {
  if (!data) return {};
  const char* p = data;
  while (*p) {
    const char* end = std::strchr(p, ',');
    size_t len = end ? static_cast<size_t>(end - p) : std::strlen(p);
    std::string_view opt(p, len);
    auto val = [&](std::string_view key) -> std::string_view {
      if (opt.size() > key.size() && opt.substr(0, key.size()) == key && opt[key.size()] == '=')
        return opt.substr(key.size() + 1);
      return {};
    };
    auto number = [](std::string_view s, uint64_t& out) {
      if (s.empty() || s.size() > 19) return false;
      uint64_t v = 0;
      for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<uint64_t>(c - '0');
      }
      out = v;
      return true;
    };
    uint64_t n = 0;
    if (opt == "user_xattr" || opt == "nouser_xattr") {
      user_xattr_opt_ = opt == "user_xattr";
    } else if (opt.empty() || opt == "rw" || opt == "acl" ||
        opt == "noacl" || opt == "barrier" || opt == "nobarrier" || opt == "errors=continue" ||
        opt == "defaults") {
      if (opt == "errors=continue") errors_opt_ = kErrorsContinue;
    } else if (opt == "data=ordered") {
      data_mode_ = DataMode::kOrdered;
    } else if (opt == "data=writeback") {
      data_mode_ = DataMode::kWriteback;
    } else if (opt == "data=journal") {
      data_mode_ = DataMode::kJournal;
    } else if (opt == "ro") {
      flags_.fetch_or(MS_RDONLY);
    } else if (opt == "errors=remount-ro") {
      errors_opt_ = kErrorsRo;
    } else if (opt == "errors=panic") {
      errors_opt_ = kErrorsPanic;
    } else if (opt == "noload" || opt == "norecovery") {
      noload_ = true;
    } else if (!val("sb").empty()) {
      if (!number(val("sb"), n) || n == 0) return err(EINVAL);
      sb_opt_ = n;
    } else if (!val("commit").empty()) {
      // Linux: 0 means the default; the interval is kept below a day.
      if (!number(val("commit"), n) || n > 86400) return err(EINVAL);
      commit_secs_ = n ? static_cast<uint32_t>(n) : 5;
    } else {
      kernel().printf("%s: Unrecognized mount option \"%.*s\" or missing value\n", type,
                      static_cast<int>(len), p);
      return err(EINVAL);
    }
    p += len;
    if (*p == ',') p++;
  }
  return {};
}

// --- the superblock

Result<void> Ext2Mount::read_super() {
  drop_desc_blocks();  // the geometry read now decides where they are
  Kmem& km = kernel().kmem();
  if (!sb_raw_) sb_raw_ = static_cast<char*>(km.alloc(kSuperSize));
  if (!sb_raw_) return err(ENOMEM);
  uint64_t byte = sb_opt_ * 1024;
  uint32_t dbs = dev_.block_size();
  if (byte % dbs != 0 || byte + kSuperSize > dev_.size()) return err(EINVAL);
  TRY(dev_.read_blocks(byte / dbs, sb_raw_, kSuperSize / dbs));
  const char* s = sb_raw_;
  if (get16(s, sb::kMagic) != kMagic) {
    kernel().printf("VFS: Can't find ext4 filesystem\n");
    return err(EINVAL);
  }
  Geometry& g = geo_;
  g.sb_byte = byte;
  g.rev = get32(s, sb::kRevLevel);
  if (g.rev > 1) return err(EINVAL);
  g.log_block_size = get32(s, sb::kLogBlockSize);
  if (g.log_block_size > 6) {
    kernel().printf("EXT4-fs: Invalid log block size: %u\n", g.log_block_size);
    return err(EINVAL);
  }
  g.block_size = 1024u << g.log_block_size;
  if (g.block_size % dbs != 0) return err(EINVAL);
  g.compat = g.rev ? get32(s, sb::kFeatureCompat) : 0;
  g.incompat = g.rev ? get32(s, sb::kFeatureIncompat) : 0;
  g.ro_compat = g.rev ? get32(s, sb::kFeatureRoCompat) : 0;
  g.blocks_count = get32(s, sb::kBlocksCountLo);
  g.r_blocks = get32(s, sb::kRBlocksCountLo);
  if (g.incompat & kIncompat64bit) {
    g.blocks_count |= uint64_t{get32(s, sb::kBlocksCountHi)} << 32;
    g.r_blocks |= uint64_t{get32(s, sb::kRBlocksCountHi)} << 32;
  }
  g.first_data_block = get32(s, sb::kFirstDataBlock);
  g.blocks_per_group = get32(s, sb::kBlocksPerGroup);
  g.inodes_per_group = get32(s, sb::kInodesPerGroup);
  g.inodes_count = get32(s, sb::kInodesCount);
  g.inode_size = g.rev ? get16(s, sb::kInodeSize) : kGoodOldInodeSize;
  g.first_ino = g.rev ? get32(s, sb::kFirstIno) : kGoodOldFirstIno;
  g.desc_size = (g.incompat & kIncompat64bit) ? get16(s, sb::kDescSize) : 32;
  g.first_meta_bg = get32(s, sb::kFirstMetaBg);
  g.reserved_gdt = (g.compat & kCompatResizeInode) ? get16(s, sb::kReservedGdtBlocks) : 0;
  for (int i = 0; i < 4; i++) g.hash_seed[i] = get32(s, sb::kHashSeed + 4 * i);
  g.def_hash_version = static_cast<uint8_t>(s[sb::kDefHashVersion]);
  g.sb_flags = get32(s, sb::kFlags);
  g.overhead_clusters = get32(s, sb::kOverheadClusters);
  g.journal_inum = (g.compat & kCompatHasJournal) ? get32(s, sb::kJournalInum) : 0;
  // Sanity of the geometry: everything later indexes with these.
  auto bad = [&](const char* what) {
    kernel().printf("EXT4-fs: corrupt superblock: %s\n", what);
    return err(EINVAL);
  };
  if (g.blocks_count == 0 || g.blocks_count > dev_.size() / g.block_size) {
    kernel().printf("EXT4-fs: bad geometry: block count %llu exceeds size of device (%llu blocks)\n",
                    static_cast<unsigned long long>(g.blocks_count),
                    static_cast<unsigned long long>(dev_.size() / g.block_size));
    return err(EINVAL);
  }
  if (g.block_size == 1024 ? g.first_data_block != 1 : g.first_data_block != 0) return bad("first data block");
  if (g.blocks_per_group == 0 || g.blocks_per_group > 8 * g.block_size) return bad("blocks per group");
  if (g.inodes_per_group == 0 || g.inodes_per_group > 8 * g.block_size) return bad("inodes per group");
  if (g.inode_size < kGoodOldInodeSize || g.inode_size > g.block_size || (g.inode_size & (g.inode_size - 1)))
    return bad("inode size");
  if (g.first_ino < kGoodOldFirstIno || g.first_ino > g.inodes_count) return bad("first inode");
  if ((g.incompat & kIncompat64bit) && (g.desc_size < 64 || g.desc_size > 1024 || (g.desc_size & (g.desc_size - 1))))
    return bad("group descriptor size");
  uint64_t groups = (g.blocks_count - g.first_data_block + g.blocks_per_group - 1) / g.blocks_per_group;
  if (groups == 0 || groups > (uint64_t{1} << 32) - 1) return bad("group count");
  g.groups = static_cast<uint32_t>(groups);
  if (uint64_t{g.groups} * g.inodes_per_group != g.inodes_count) return bad("inode count");
  g.desc_per_block = g.block_size / g.desc_size;
  g.inode_table_blocks =
      static_cast<uint32_t>((uint64_t{g.inodes_per_group} * g.inode_size + g.block_size - 1) / g.block_size);
  if (g.r_blocks > g.blocks_count) return bad("reserved block count");
  // Checksums.
  if (g.ro_compat & kRoCompatMetadataCsum) {
    if (g.ro_compat & kRoCompatGdtCsum) return bad("both metadata_csum and uninit_bg");
    if (static_cast<uint8_t>(s[sb::kChecksumType]) != 1) return bad("unknown checksum type");
    if (crc32c(~0u, s, sb::kChecksum) != get32(s, sb::kChecksum)) {
      kernel().printf("EXT4-fs: VFS: Found ext4 filesystem with invalid superblock checksum\n");
      return err(EUCLEAN);
    }
    g.csum_seed = (g.incompat & kIncompatCsumSeed) ? get32(s, sb::kChecksumSeed) : crc32c(~0u, s + sb::kUuid, 16);
  }
  // An errors= option wins over the superblock's behaviour (read again
  // after a replay), as on Linux.
  int e = get16(s, sb::kErrors);
  errors_ = errors_opt_ >= 0 ? errors_opt_ : (e == kErrorsRo || e == kErrorsPanic) ? kErrorsRo : kErrorsContinue;
  return {};
}

Result<void> Ext2Mount::check_features(const char* type) {
  const Geometry& g = geo_;
  bool ro = flags_.load() & MS_RDONLY;
  std::string_view t(type);
  // A mount as ext2 or ext3 gets what Linux's ext4 driver lets such a
  // mount have; the image is then the wrong type (EINVAL).
  if (t == "ext2" || t == "ext3") {
    uint32_t inc = t == "ext2" ? kExt2Incompat : kExt3Incompat;
    bool ok = !(g.incompat & ~inc) && (t == "ext2" || (g.compat & kCompatHasJournal)) &&
              (ro || !(g.ro_compat & ~kExt23RoCompat));
    if (!ok) {
      kernel().printf("EXT4-fs: couldn't mount as %s due to feature incompatibilities\n", type);
      return err(EINVAL);
    }
  }
  if (uint32_t unknown = g.incompat & ~kIncompatSupported) {
    kernel().printf("EXT4-fs: Couldn't mount because of unsupported optional features (%x: %s)\n", unknown,
                    first_name(kIncompatNames, unknown));
    return err(EINVAL);
  }
  if (uint32_t unknown = g.ro_compat & ~kRoCompatSupported; unknown && !ro) {
    kernel().printf("EXT4-fs: couldn't mount RDWR because of unsupported optional features (%x: %s)\n", unknown,
                    first_name(kRoCompatNames, unknown));
    return err(EINVAL);
  }
  if (g.incompat & kIncompatRecover) {
    if (noload_ && !ro) {
      kernel().printf("EXT4-fs: required journal recovery suppressed and not mounted read-only\n");
      return err(EINVAL);
    }
    if (!(g.compat & kCompatHasJournal)) {
      kernel().printf("EXT4-fs: filesystem needs recovery but has no journal\n");
      return err(EINVAL);
    }
  }
  return {};
}

// --- group descriptors

uint64_t Ext2Mount::desc_block(uint32_t g) const {
  uint64_t sb_block = geo_.first_data_block;
  uint32_t index = g / geo_.desc_per_block;
  if (!(geo_.incompat & kIncompatMetaBg) || index < geo_.first_meta_bg) return sb_block + 1 + index;
  // meta_bg: the descriptors of a meta group live in its first, second
  // and last group (the first copy is used).
  uint64_t first_group = uint64_t{index} * geo_.desc_per_block;
  uint64_t blk = geo_.first_data_block + first_group * geo_.blocks_per_group;
  if (group_has_super(static_cast<uint32_t>(first_group), geo_.ro_compat)) blk++;
  return blk;
}

Result<const char*> Ext2Mount::group_desc(uint32_t g, BufRef& hold) {
  if (g >= geo_.groups) return corrupt("group number out of range", g);
  uint32_t index = g / geo_.desc_per_block;
  if (desc_held_ == nullptr) {
    uint32_t n = (geo_.groups + geo_.desc_per_block - 1) / geo_.desc_per_block;
    auto* refs = static_cast<BufRef*>(kernel().kmem().alloc(size_t{n} * sizeof(BufRef)));
    if (refs == nullptr) return err(ENOMEM);
    for (uint32_t i = 0; i < n; i++) new (&refs[i]) BufRef();
    desc_held_ = refs;
    desc_held_count_ = n;
  }
  BufRef& held = desc_held_[index];
  if (!held) held = TRY(bread(desc_block(g)));
  hold = bc_.share(*held.get());
  return hold.data() + (g % geo_.desc_per_block) * geo_.desc_size;
}

void Ext2Mount::drop_desc_blocks() {
  for (uint32_t i = 0; i < desc_held_count_; i++) desc_held_[i].~BufRef();
  Kmem::free(desc_held_);
  desc_held_ = nullptr;
  desc_held_count_ = 0;
  Kmem::free(clear_hint_);
  clear_hint_ = nullptr;
}

Result<void> Ext2Mount::check_groups() {
  const Geometry& g = geo_;
  uint64_t gdt_blocks = (uint64_t{g.groups} + g.desc_per_block - 1) / g.desc_per_block;
  if (!(g.incompat & kIncompatMetaBg) && g.first_data_block + 1 + gdt_blocks > g.blocks_count)
    return corrupt("group descriptors past the end", gdt_blocks);
  for (uint32_t i = 0; i < g.groups; i++) {
    BufRef hold;
    const char* d = TRY(group_desc(i, hold));
    bool big = g.desc_size >= 64;
    uint64_t bb = get32(d, gd::kBlockBitmapLo) | (big ? uint64_t{get32(d, gd::kBlockBitmapHi)} << 32 : 0);
    uint64_t ib = get32(d, gd::kInodeBitmapLo) | (big ? uint64_t{get32(d, gd::kInodeBitmapHi)} << 32 : 0);
    uint64_t it = get32(d, gd::kInodeTableLo) | (big ? uint64_t{get32(d, gd::kInodeTableHi)} << 32 : 0);
    if (bb < g.first_data_block || bb >= g.blocks_count || ib < g.first_data_block || ib >= g.blocks_count ||
        it < g.first_data_block || it + g.inode_table_blocks > g.blocks_count) {
      kernel().printf("EXT4-fs: ext4_check_descriptors: group %u has metadata outside the file system\n", i);
      return err(EUCLEAN);
    }
    if (g.ro_compat & kRoCompatMetadataCsum) {
      char gn[4];
      put32(gn, 0, i);
      uint32_t c = crc32c(g.csum_seed, gn, 4);
      c = crc32c(c, d, gd::kChecksum);
      uint16_t zero = 0;
      c = crc32c(c, &zero, 2);
      if (g.desc_size > gd::kChecksum + 2) c = crc32c(c, d + gd::kChecksum + 2, g.desc_size - gd::kChecksum - 2);
      if ((c & 0xFFFF) != get16(d, gd::kChecksum)) {
        kernel().printf("EXT4-fs: ext4_check_descriptors: Checksum for group %u failed\n", i);
        return err(EUCLEAN);
      }
    } else if (g.ro_compat & kRoCompatGdtCsum) {
      uint16_t c = crc16(0xFFFF, sb_raw_ + sb::kUuid, 16);
      char gn[4];
      put32(gn, 0, i);
      c = crc16(c, gn, 4);
      c = crc16(c, d, gd::kChecksum);
      if (g.desc_size > gd::kChecksum + 2) c = crc16(c, d + gd::kChecksum + 2, g.desc_size - gd::kChecksum - 2);
      if (c != get16(d, gd::kChecksum)) {
        kernel().printf("EXT4-fs: ext4_check_descriptors: Checksum for group %u failed\n", i);
        return err(EUCLEAN);
      }
    }
  }
  return {};
}

// Blocks of metadata Linux counts as overhead (statfs reports the rest):
// the boot block, superblock copies and descriptor tables (with their
// reserved growth blocks) in the groups that have them, every group's
// bitmaps and inode table, and an internal journal.
uint64_t Ext2Mount::group_overhead() const {
  const Geometry& g = geo_;
  if (g.overhead_clusters) return g.overhead_clusters;
  uint64_t gdt_blocks = (uint64_t{g.groups} + g.desc_per_block - 1) / g.desc_per_block;
  uint64_t total = g.first_data_block;
  for (uint32_t i = 0; i < g.groups; i++) {
    if (!group_has_super(i, g.ro_compat)) continue;
    total += 1;
    if (g.incompat & kIncompatMetaBg) {
      uint32_t index = i / g.desc_per_block;
      if (index < g.first_meta_bg) total += gdt_blocks + g.reserved_gdt;
      continue;
    }
    total += gdt_blocks + g.reserved_gdt;
  }
  if (g.incompat & kIncompatMetaBg) {
    // One descriptor block in the first, second and last group of each
    // meta group past first_meta_bg.
    for (uint32_t i = 0; i < g.groups; i++) {
      uint32_t index = i / g.desc_per_block;
      if (index < g.first_meta_bg) continue;
      uint32_t in = i % g.desc_per_block;
      if (in == 0 || in == 1 || in == g.desc_per_block - 1) total++;
    }
  }
  total += uint64_t{g.groups} * (2 + g.inode_table_blocks);
  total += jblocks_;
  return total < g.blocks_count ? total : g.blocks_count;
}

Mount::Stat Ext2Mount::statfs() {
  Stat s{};
  s.magic = kExt4Magic;
  s.bsize = geo_.block_size;
  MutexLocker g(lock_);
  uint64_t bfree = 0, ffree = 0;
  for (uint32_t i = 0; i < geo_.groups; i++) {
    BufRef hold;
    Result<const char*> d = group_desc(i, hold);
    if (!d.ok()) break;
    bool big = geo_.desc_size >= 64;
    bfree += get16(*d, gd::kFreeBlocksLo) | (big ? uint64_t{get16(*d, gd::kFreeBlocksHi)} << 16 : 0);
    ffree += get16(*d, gd::kFreeInodesLo) | (big ? uint64_t{get16(*d, gd::kFreeInodesHi)} << 16 : 0);
  }
  s.blocks = geo_.blocks_count - group_overhead();
  // Blocks reserved for cached pages count as used (ext4's delayed
  // allocation shows them so).
  bfree = bfree > reserved_ ? bfree - reserved_ : 0;
  s.bfree = bfree;
  uint64_t resv = metadata_pool() + geo_.r_blocks;
  s.bavail = bfree > resv ? bfree - resv : 0;
  s.has_bavail = true;
  s.files = geo_.inodes_count;
  s.ffree = ffree;
  return s;
}

// Unmount (or a failed mount): the tree goes, then the superblock is
// marked clean again and everything reaches the device.
void Ext2Mount::teardown() {
  root_.reset();
  drop_kept_dirs();
  drop_parked();
  if (journaling() && !writable()) {
    (void)journal_->stop(false);
    // A descriptor block may have been in the abandoned transaction: read
    // again, if ever, from the device.
    drop_desc_blocks();
  }
  if (writable() && sb_raw_) {
    // Orphans whose freeing failed (out of memory, a read that failed)
    // are freed now, unless one is still in use (a file a process keeps
    // open at halt, freed when it goes): the image is left without them.
    if (get32(sb_raw_, sb::kLastOrphan) != 0 && !orphans_in_use()) {
      Result<void> o = begin_op();
      if (o.ok()) o = process_orphans();
      if (!o.ok()) kernel().printf("EXT4-fs: freeing orphans at unmount failed (%d)\n", o.error());
    }
    Result<void> r;
    if (journaling()) {
      // The last transaction, a checkpoint, and an empty journal; then
      // the superblock says so, written home directly.
      r = write_super();
      if (r.ok()) r = journal_->stop(true);
      if (r.ok()) put32(sb_raw_, sb::kFeatureIncompat, get32(sb_raw_, sb::kFeatureIncompat) & ~kIncompatRecover);
    }
    // Clean again, unless the image was not clean when mounted and no
    // journal vouches for it (Linux's ext2 puts back the state it found).
    uint16_t state = get16(sb_raw_, sb::kState);
    bool valid = journaling() || (mount_state_ & kStateValid);
    put16(sb_raw_, sb::kState, static_cast<uint16_t>(valid ? state | kStateValid : state & ~kStateValid));
    if (r.ok()) r = sync_fs();
    if (!r.ok()) kernel().printf("EXT4-fs: writing back at unmount failed (%d)\n", r.error());
  } else {
    if (error_recorded_) (void)record_error();
    (void)bc_.flush(dev_);
  }
  torn_down_ = true;
}

// The free counts of the superblock from the group descriptors (Linux
// keeps them so; a crash leaves the superblock's stale).
void Ext2Mount::sum_free_counts() {
  uint64_t bfree = 0, ifree = 0;
  bool big = geo_.desc_size >= 64;
  for (uint32_t i = 0; i < geo_.groups; i++) {
    BufRef hold;
    Result<const char*> d = group_desc(i, hold);
    if (!d.ok()) return;
    bfree += gd::get_count(*d, gd::kFreeBlocksLo, gd::kFreeBlocksHi, big);
    ifree += gd::get_count(*d, gd::kFreeInodesLo, gd::kFreeInodesHi, big);
  }
  put32(sb_raw_, sb::kFreeBlocksLo, static_cast<uint32_t>(bfree));
  if (geo_.incompat & kIncompat64bit) put32(sb_raw_, sb::kFreeBlocksHi, static_cast<uint32_t>(bfree >> 32));
  put32(sb_raw_, sb::kFreeInodes, static_cast<uint32_t>(ifree));
}

// The journal inode, its journal, and replay when it needs recovery
// (Linux replays for read-only mounts too, unless noload); then the
// superblock is read again: the journal may have held it.
Result<void> Ext2Mount::load_journal() {
  if (geo_.journal_inum >= geo_.first_ino && geo_.journal_inum != 8) return corrupt("bad journal inode", 0);
  Ref<Vnode> j = TRY(iget(geo_.journal_inum, nullptr));
  auto& jn = static_cast<Ext2Node&>(*j);
  jblocks_ = jn.size() / geo_.block_size;
  if (noload_) return {};
  journal_ = new (kernel().kmem()) Journal(*this, bc_, dev_, kernel().kmem());
  if (!journal_) return err(ENOMEM);
  TRY(journal_->load(jn));
  if (!(geo_.incompat & kIncompatRecover)) {
    // Log contents without needs_recovery: Linux discards them.
    if (journal_->needs_recovery()) {
      kernel().printf("JBD2: ignoring recovery information on journal\n");
      if (!(flags_.load() & MS_RDONLY)) TRY(journal_->wipe());
    }
    return {};
  }
  if (journal_->needs_recovery()) {
    if (flags_.load() & MS_RDONLY) kernel().printf("EXT4-fs: INFO: recovery required on readonly filesystem\n");
    TRY(journal_->recover());
    kernel().printf("EXT4-fs: recovery complete\n");
  }
  TRY(read_super());
  put32(sb_raw_, sb::kFeatureIncompat, get32(sb_raw_, sb::kFeatureIncompat) & ~kIncompatRecover);
  geo_.incompat &= ~kIncompatRecover;
  {
    // Written home at once: the journal is not running yet.
    if (has_csum()) put32(sb_raw_, sb::kChecksum, crc32c(~0u, sb_raw_, sb::kChecksum));
    BufRef bh = TRY(bread(geo_.sb_byte / geo_.block_size));
    std::memcpy(bh.data() + geo_.sb_byte % geo_.block_size, sb_raw_, kSuperSize);
    bh.dirty();
  }
  TRY(bc_.flush(dev_));
  return {};
}

Result<void> Ext2Mount::load(const char* data, const char* type) {
  TRY(parse_options(data, type));
  TRY(read_super());
  TRY(check_features(type));
  TRY(check_groups());
  // user.* attributes: ext3 and ext4 allow them unless told otherwise;
  // ext2 when told, or when the superblock's default mount options say so.
  constexpr uint32_t kDefmXattrUser = 0x4;
  if (user_xattr_opt_ >= 0) user_xattr_ = user_xattr_opt_ == 1;
  else user_xattr_ = std::string_view(type) != "ext2" || (get32(sb_raw_, sb::kDefaultMountOpts) & kDefmXattrUser);
  if (geo_.journal_inum) {
    {
      MutexLocker g(lock_);
      TRY(load_journal());
    }
    // What the journal replayed is checked as it would be at mount.
    TRY(check_features(type));
    TRY(check_groups());
  }
  // What this driver cannot keep consistent stays read-only: unknown
  // read-only features, orphans it does not process (orphan_present
  // without an orphan file), a journal left unreplayed (noload).
  writable_ = !(geo_.ro_compat & ~kRoCompatSupported) &&
              !((geo_.ro_compat & kRoCompatOrphanPresent) && !(geo_.compat & kCompatOrphanFile)) &&
              !(geo_.incompat & kIncompatRecover);
  if (!writable_ && !(flags_.load() & MS_RDONLY)) {
    kernel().printf("EXT4-fs: an orphan file or an unreplayed journal: mounted read-only\n");
    flags_.fetch_or(MS_RDONLY);
  }
  mount_state_ = get16(sb_raw_, sb::kState);
  if (mount_state_ & kStateError)
    kernel().printf("EXT4-fs (%s): warning: mounting fs with errors, running e2fsck is recommended\n", type);
  else if (!(mount_state_ & kStateValid) && !journal_)
    kernel().printf("EXT4-fs (%s): warning: mounting unchecked fs, running e2fsck is recommended\n", type);
  generation_ = get32(sb_raw_, sb::kWtime) ^ static_cast<uint32_t>(wall_timespec().tv_nsec);
  MutexLocker g(lock_);
  Ref<Vnode> root = TRY(iget(kRootIno, nullptr));
  if (!root->is_dir()) return corrupt("root inode is not a directory", kRootIno);
  root_ = RefPtr<Vnode>(std::move(root));
  if (writable()) {
    // Mounted: not clean until unmounted (a crash leaves it so); with a
    // journal, needs_recovery until then.
    sum_free_counts();
    put16(sb_raw_, sb::kState, static_cast<uint16_t>(get16(sb_raw_, sb::kState) & ~kStateValid));
    put16(sb_raw_, sb::kMntCount, static_cast<uint16_t>(get16(sb_raw_, sb::kMntCount) + 1));
    put32(sb_raw_, sb::kMtime, static_cast<uint32_t>(wall_timespec().tv_sec));
    if (journal_) put32(sb_raw_, sb::kFeatureIncompat, get32(sb_raw_, sb::kFeatureIncompat) | kIncompatRecover);
    TRY(sync_fs());
    if (journal_) TRY(journal_->start(data_mode_, commit_secs_));
    if (get32(sb_raw_, sb::kLastOrphan)) {
      TRY(process_orphans());
      TRY(sync_fs());
    }
    if (geo_.ro_compat & kRoCompatOrphanPresent) {
      TRY(process_orphan_file());
      TRY(sync_fs());
    }
  }
  return {};
}

// --- mounting

namespace {

Result<Ref<Mount>> ext_mount(FsType& type, Kernel& k, const char* source, int flags, const char* data) {
  Lwp* l = reinterpret_cast<Lwp*>(rumpuser_curlwp());
  if (!l || !source || !*source) return err(ENOTBLK);
  Ref<Vnode> devvp = TRY(namei(*l, AT_FDCWD, source, kFollow));
  if (devvp->type() != VType::kBlk) return err(ENOTBLK);
  BlockDevice* dev = block_device_of(*devvp);
  if (!dev) return err(ENXIO);
  // One mount per device: the buffer cache's blocks of a device belong to
  // one file system.
  {
    VfsState& st = vfs_state(k);
    MutexLocker g(st.mount_lock_);
    for (Mount& m : st.mounts_) {
      auto* em = dynamic_cast<Ext2Mount*>(&m);
      if (em && em->device_vnode() == devvp.get()) return err(EBUSY);
    }
  }
  auto* m = new (k.kmem()) Ext2Mount(k, type, flags, devvp, *dev);
  if (!m) return err(ENOMEM);
  Ref<Mount> ref = adopt_ref<Mount>(m);
  Result<void> r = m->load(data, type.name);
  if (!r.ok()) {
    MutexLocker g(m->lock_);
    m->teardown();
    return err(r.error());
  }
  m->start_commit_timer();
  return ref;
}

Result<Ref<Mount>> ext2_mount(Kernel& k, const char* source, int flags, const char* data);
Result<Ref<Mount>> ext3_mount(Kernel& k, const char* source, int flags, const char* data);
Result<Ref<Mount>> ext4_mount(Kernel& k, const char* source, int flags, const char* data);

FsType g_ext2_type{"ext2", &ext2_mount, true};
FsType g_ext3_type{"ext3", &ext3_mount, true};
FsType g_ext4_type{"ext4", &ext4_mount, true};
FsTypeRegistrar ext2_registrar(&g_ext2_type);
FsTypeRegistrar ext3_registrar(&g_ext3_type);
FsTypeRegistrar ext4_registrar(&g_ext4_type);

Result<Ref<Mount>> ext2_mount(Kernel& k, const char* source, int flags, const char* data) {
  return ext_mount(g_ext2_type, k, source, flags, data);
}
Result<Ref<Mount>> ext3_mount(Kernel& k, const char* source, int flags, const char* data) {
  return ext_mount(g_ext3_type, k, source, flags, data);
}
Result<Ref<Mount>> ext4_mount(Kernel& k, const char* source, int flags, const char* data) {
  return ext_mount(g_ext4_type, k, source, flags, data);
}

}  // namespace

}  // namespace rump
