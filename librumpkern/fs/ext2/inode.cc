// ext2/3/4 inodes: reading them (with checksum and sanity checks), the
// node table, block mapping (extent trees and indirect block maps),
// inline data, file data, symlinks and attributes.
#include <sys/mount.h>
#include <sys/sysmacros.h>

#include <cstring>

#include "fs/ext2/crc.h"
#include "fs/ext2/ext2.h"
#include "kern/kernel.h"

namespace rump {

using namespace ext2;

namespace {

timespec decode_time(const char* raw, size_t sec_off, size_t extra_off, uint32_t extra_isize) {
  timespec t{};
  int64_t sec = static_cast<int32_t>(get32(raw, sec_off));
  if (extra_off + 4 <= kGoodOldInodeSize + extra_isize) {
    uint32_t extra = get32(raw, extra_off);
    sec += static_cast<int64_t>(extra & 3) << 32;
    t.tv_nsec = extra >> 2;
    if (t.tv_nsec > 999999999) t.tv_nsec = 0;
  }
  t.tv_sec = sec;
  return t;
}

}  // namespace

// --- the node table

Ext2Node::Ext2Node(Ext2Mount& m, VType type, uint32_t ino, char* raw)
    : Vnode(m, type), ino_(ino), raw_(raw), promised_(m.kernel().kmem()) {}

Ext2Node::~Ext2Node() {
  em().forget(*this);
  Kmem::free(raw_);
}

Ext2Mount& Ext2Node::em() const { return static_cast<Ext2Mount&>(mount()); }

// The last reference may go with the tree lock held (an operation dropping
// a node) or not (a file closed): take it only in the second case. An
// unlinked inode is freed here.
void Ext2Mount::forget(Ext2Node& n) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  bool held = lock_.owned();
  if (!held) lock_.lock();
  if (n.hash_hook_.is_linked()) nodes_.erase(n);
  n.drop_promises();
  if (n.inode_pending_ && n.links() > 0 && writable()) {
    // A size grown in the cache whose pages never went back (a failed
    // write-back): the inode still gets it.
    Result<void> r = held ? Result<void>() : begin_op();
    if (r.ok()) r = n.write_inode();
    if (!r.ok()) kernel().printf("EXT4-fs: writing inode %u failed (%d)\n", n.ino_, r.error());
  }
  if (n.links() == 0 && n.ino_ != geo_.journal_inum && writable()) {
    // Inside an operation (the lock was held) the freeing is part of it.
    Result<void> r = held ? Result<void>() : begin_op();
    if (r.ok()) r = n.release();
    if (!r.ok()) {
      kernel().printf("EXT4-fs: freeing inode %u failed (%d)\n", n.ino_, r.error());
      // Still on the orphan list: kept until the unmount frees it (from
      // the unmount on, left to its orphan pass or the next mount's). Off
      // it (a failure after it was taken off), it could be freed by nobody.
      if (!unmounting_) {
        if (on_orphan_list(n.ino_)) park_orphan(n);
        else abort_changes("an unlinked inode half freed", n.ino_, r.error());
      }
    }
  }
  if (!held) lock_.unlock();
}

void Ext2Mount::park_orphan(Ext2Node& n) {
  char* raw = static_cast<char*>(kernel().kmem().alloc(geo_.inode_size));
  auto* c = raw ? new (kernel().kmem()) Ext2Node(*this, n.type(), n.ino_, raw) : nullptr;
  if (!c) {
    Kmem::free(raw);
    return abort_changes("an orphan could not be kept", n.ino_, ENOMEM);
  }
  std::memcpy(raw, n.raw_, geo_.inode_size);
  c->table_block_ = std::move(n.table_block_);
  c->parked_ = true;  // keeps its creation reference
  nodes_.insert(*c);
}

void Ext2Mount::keep_dir(Ext2Node& n) {
  if (n.kept_ || n.links() == 0 || unmounting_) return;
  RefPtr<Vnode>& slot = kept_dirs_[kept_next_];
  kept_next_ = (kept_next_ + 1) % kKeptDirs;
  if (slot) static_cast<Ext2Node*>(slot.get())->kept_ = false;
  // The one let go may be its last reference: the lock is held
  // (forget takes that into account).
  slot = RefPtr<Vnode>(static_cast<Vnode*>(&n));
  n.kept_ = true;
}

void Ext2Mount::unkeep_dir(Ext2Node& n) {
  if (!n.kept_) return;
  for (RefPtr<Vnode>& slot : kept_dirs_) {
    if (slot.get() == &n) {
      n.kept_ = false;
      slot.reset();
      return;
    }
  }
}

void Ext2Mount::drop_kept_dirs() {
  for (RefPtr<Vnode>& slot : kept_dirs_) {
    if (slot) static_cast<Ext2Node*>(slot.get())->kept_ = false;
    slot.reset();
  }
}

void Ext2Mount::drop_parked() {
  unmounting_ = true;  // none is parked again
  // Each one's last reference may take others out of the table: look
  // again from the start after each.
  for (;;) {
    Ext2Node* p = nullptr;
    for (Ext2Node& n : nodes_) {
      if (n.parked_) {
        p = &n;
        break;
      }
    }
    if (!p) break;
    p->parked_ = false;
    p->unref();
  }
}

Result<Ref<Vnode>> Ext2Mount::iget(uint32_t ino, Ext2Node* parent, bool for_handle) {
  if (ino == 0 || ino > geo_.inodes_count) {
    if (for_handle) return err(ESTALE);
    return corrupt("inode number out of range", ino);
  }
  if (Ext2Node* n = nodes_.find(ino)) {
    if (n->try_ref()) {
      // A directory reached first without its parent (the root, one
      // found by ".." or a handle) gets it now, unless the link would
      // make a loop: in a corrupt image an entry may name the directory's
      // own ancestor, and an ancestor that held its descendant would
      // hold itself, never freed.
      if (parent && n->is_dir() && !n->parent_ && ino != kRootIno) {
        bool loop = false;
        int depth = 0;
        for (const Vnode* v = parent; v && !loop && depth < 65536; depth++) {
          loop = v == n;
          v = static_cast<const Ext2Node*>(v)->parent_.get();
        }
        if (!loop && depth < 65536) n->parent_ = RefPtr<Vnode>(parent);
      }
      return Ref<Vnode>(kAdopt, static_cast<Vnode*>(n));
    }
    nodes_.erase(*n);  // dying: its destructor finds it gone
  }
  uint32_t group = (ino - 1) / geo_.inodes_per_group;
  uint32_t index = (ino - 1) % geo_.inodes_per_group;
  BufRef gh;
  const char* d = TRY(group_desc(group, gh));
  bool big = geo_.desc_size >= 64;
  uint64_t table = get32(d, gd::kInodeTableLo) | (big ? uint64_t{get32(d, gd::kInodeTableHi)} << 32 : 0);
  if ((geo_.ro_compat & (kRoCompatGdtCsum | kRoCompatMetadataCsum)) && (get16(d, gd::kFlags) & gd::kInodeUninit)) {
    if (for_handle) return err(ESTALE);
    return corrupt("inode in an uninitialised group", ino);
  }
  gh.reset();
  uint64_t byte = uint64_t{index} * geo_.inode_size;
  BufRef ib = TRY(bread(table + byte / geo_.block_size));
  char* raw = static_cast<char*>(kernel().kmem().alloc(geo_.inode_size));
  if (!raw) return err(ENOMEM);
  std::memcpy(raw, ib.data() + byte % geo_.block_size, geo_.inode_size);
  auto fail = [&](const char* what) -> Error {
    Kmem::free(raw);
    if (for_handle) return err(ESTALE);
    return corrupt(what, ino);
  };
  uint32_t extra = 0;
  if (geo_.inode_size > kGoodOldInodeSize) {
    extra = get16(raw, ino::kExtraIsize);
    if (kGoodOldInodeSize + extra > geo_.inode_size || (extra & 3)) return fail("bad extra_isize");
  }
  if (has_csum()) {
    bool hi = extra >= 4;
    uint32_t stored = get16(raw, ino::kChecksumLo) | (hi ? uint32_t{get16(raw, ino::kChecksumHi)} << 16 : 0);
    put16(raw, ino::kChecksumLo, 0);
    if (hi) put16(raw, ino::kChecksumHi, 0);
    uint32_t c = crc32c(inode_csum_seed(ino, get32(raw, ino::kGeneration)), raw, geo_.inode_size);
    if (!hi) c &= 0xFFFF;
    put16(raw, ino::kChecksumLo, static_cast<uint16_t>(stored));
    if (hi) put16(raw, ino::kChecksumHi, static_cast<uint16_t>(stored >> 16));
    if (c != stored) return fail("inode checksum invalid");
  }
  mode_t mode = get16(raw, ino::kMode);
  VType t = ifmt_to_vtype(mode);
  if (t == VType::kNon) return fail("bad inode mode");
  if (get16(raw, ino::kLinks) == 0 && ino != geo_.journal_inum && !allow_deleted_)
    return fail("deleted inode referenced");
  auto* n = new (kernel().kmem()) Ext2Node(*this, t, ino, raw);
  if (!n) {
    Kmem::free(raw);
    return err(ENOMEM);
  }
  Ref<Vnode> ref(kAdopt, static_cast<Vnode*>(n));
  n->table_block_ = std::move(ib);
  if (parent && t == VType::kDir) n->parent_ = RefPtr<Vnode>(parent);
  nodes_.insert(*n);
  return ref;
}

Result<Ref<Vnode>> Ext2Mount::vget(uint64_t ino, uint32_t gen) {
  // Reserved inodes other than the root are not for handles (Linux).
  if (ino > UINT32_MAX || (ino < geo_.first_ino && ino != kRootIno)) return err(ESTALE);
  Ref<Vnode> vp = TRY(iget(static_cast<uint32_t>(ino), nullptr, true));
  vp->lock().assert_held();  // the mount's lock
  if (TRY(vp->generation()) != gen) return err(ESTALE);
  return vp;
}

// --- inode fields

uint32_t Ext2Node::flags() const { return get32(raw_, ino::kFlags); }

uint64_t Ext2Node::size() const {
  uint64_t s = get32(raw_, ino::kSizeLo);
  if (type() == VType::kReg || (type() == VType::kDir && (em().geo().incompat & kIncompatLargedir)))
    s |= uint64_t{get32(raw_, ino::kSizeHigh)} << 32;
  return s;
}

void Ext2Node::getattr(Vattr& va) const {
  const Ext2Mount::Geometry& g = em().geo();
  uint32_t extra = g.inode_size > kGoodOldInodeSize ? get16(raw_, ino::kExtraIsize) : 0;
  va.type = type();
  va.mode = get16(raw_, ino::kMode) & 07777;
  va.uid = get16(raw_, ino::kUid) | uint32_t{get16(raw_, ino::kUidHigh)} << 16;
  va.gid = get16(raw_, ino::kGid) | uint32_t{get16(raw_, ino::kGidHigh)} << 16;
  va.nlink = get16(raw_, ino::kLinks);
  va.size = size();
  uint64_t blocks = get32(raw_, ino::kBlocksLo);
  if (g.ro_compat & kRoCompatHugeFile) {
    blocks |= uint64_t{get16(raw_, ino::kBlocksHi)} << 32;
    if (flags() & kFlHugeFile) blocks *= g.block_size / 512;
  }
  va.blocks = blocks;
  va.ino = ino_;
  va.dev = mount().dev_;
  va.rdev = 0;
  if (type() == VType::kChr || type() == VType::kBlk) {
    uint32_t b0 = get32(raw_, ino::kBlock), b1 = get32(raw_, ino::kBlock + 4);
    if (b0) va.rdev = makedev((b0 >> 8) & 0xff, b0 & 0xff);
    else va.rdev = makedev((b1 & 0xfff00) >> 8, (b1 & 0xff) | ((b1 >> 12) & 0xfff00));
  }
  va.atime = decode_time(raw_, ino::kAtime, ino::kAtimeExtra, extra);
  va.mtime = decode_time(raw_, ino::kMtime, ino::kMtimeExtra, extra);
  va.ctime = decode_time(raw_, ino::kCtime, ino::kCtimeExtra, extra);
  if (extra >= ino::kCrtimeExtra + 4 - kGoodOldInodeSize) va.btime = decode_time(raw_, ino::kCrtime, ino::kCrtimeExtra, extra);
}

Result<void> Ext2Node::fsync() {
  TRY(write_inode_if_pending());
  return em().fsync_fs();
}

// --- block mapping

Result<Ext2Node::Mapping> Ext2Node::bmap(uint64_t lblk) const {
  if (flags() & kFlExtents) return bmap_extents(lblk);
  return bmap_indirect(lblk);
}

Result<Ext2Node::Mapping> Ext2Node::bmap_extents(uint64_t lblk) const {
  Ext2Mount& m = em();
  const Ext2Mount::Geometry& g = m.geo();
  const char* node = raw_ + ino::kBlock;
  size_t node_size = ino::kBlockBytes;
  int expect_depth = -1;
  uint64_t limit = ~uint64_t{0};  // first block the current subtree does not cover
  uint64_t tree_block = 0;
  BufRef hold;
  for (int level = 0;; level++) {
    if (get16(node, 0) != kExtentMagic) return m.corrupt("bad extent header magic", ino_);
    uint16_t entries = get16(node, 2), max = get16(node, 4), depth = get16(node, 6);
    if (kExtentHeader + size_t{max} * kExtentEntry > node_size || entries > max || depth > 5 ||
        (expect_depth >= 0 && depth != expect_depth) || level > 5)
      return m.corrupt("bad extent header", ino_);
    // A tree block's checksum is verified once, when it first comes in
    // from the device (the buffer remembers), not on every lookup.
    if (level > 0 && m.has_csum() && !hold.get()->checked()) {
      size_t tail = kExtentHeader + size_t{max} * kExtentEntry;
      if (tail + 4 > node_size) return m.corrupt("no room for an extent block checksum", tree_block);
      if (crc32c(csum_seed(), node, tail) != get32(node, tail))
        return m.corrupt("extent block checksum invalid", tree_block);
      hold.get()->set_checked();
    }
    // The last entry starting at or before lblk (binary search; entries
    // must be in ascending order, checked on the way).
    int lo = 0, hi = static_cast<int>(entries) - 1, found = -1;
    while (lo <= hi) {
      int mid = (lo + hi) / 2;
      if (get32(node, kExtentHeader + size_t(mid) * kExtentEntry) <= lblk) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found + 1 < entries) {
      uint64_t next = get32(node, kExtentHeader + size_t(found + 1) * kExtentEntry);
      if (found >= 0 && next <= get32(node, kExtentHeader + size_t(found) * kExtentEntry))
        return m.corrupt("extent entries out of order", ino_);
      if (next < limit) limit = next;
    }
    if (found < 0) {
      uint64_t first = entries ? get32(node, kExtentHeader) : limit;
      return Mapping{0, (first < limit ? first : limit) - lblk};
    }
    const char* e = node + kExtentHeader + size_t(found) * kExtentEntry;
    if (depth == 0) {
      uint64_t start = get32(e, 0);
      uint32_t len = get16(e, 4);
      bool unwritten = len > kExtentInitMax;
      if (unwritten) len -= kExtentInitMax;
      uint64_t pstart = get32(e, 8) | uint64_t{get16(e, 6)} << 32;
      if (len == 0 || pstart < g.first_data_block || pstart + len > g.blocks_count)
        return m.corrupt("extent points outside the file system", ino_);
      if (lblk >= start + len) {
        uint64_t end = limit;
        return Mapping{0, end - lblk};
      }
      uint64_t in = lblk - start;
      uint64_t count = len - in;
      if (unwritten) return Mapping{0, count, true};
      return Mapping{pstart + in, count};
    }
    uint64_t leaf = get32(e, 4) | uint64_t{get16(e, 8)} << 32;
    if (leaf < g.first_data_block || leaf >= g.blocks_count) return m.corrupt("extent index points outside", ino_);
    hold = TRY(m.bread(leaf));
    tree_block = leaf;
    node = hold.data();
    node_size = g.block_size;
    expect_depth = depth - 1;
  }
}

Result<Ext2Node::Mapping> Ext2Node::bmap_indirect(uint64_t lblk) const {
  Ext2Mount& m = em();
  const Ext2Mount::Geometry& g = m.geo();
  uint64_t per = g.block_size / 4;
  auto check = [&](uint32_t p) -> Result<void> {
    if (p != 0 && (p < g.first_data_block || p >= g.blocks_count))
      return m.corrupt("block map points outside the file system", ino_);
    return {};
  };
  // Contiguous run from index i of a pointer array.
  auto run = [&](const char* arr, uint64_t i, uint64_t n) -> Result<Mapping> {
    uint32_t p = get32(arr, i * 4);
    TRY(check(p));
    uint64_t count = 1;
    while (i + count < n) {
      uint32_t q = get32(arr, (i + count) * 4);
      if (p == 0 ? q != 0 : q != p + count) break;
      count++;
    }
    return Mapping{p, count};
  };
  if (lblk < 12) return run(raw_ + ino::kBlock, lblk, 12);
  IndirectSlot where;
  if (!indirect_slot(lblk - 12, per, where)) return Mapping{0, 1};
  lblk = where.off;
  int levels = where.levels;
  uint64_t span = where.span;
  uint32_t p = get32(raw_, ino::kBlock + size_t(11 + levels) * 4);
  TRY(check(p));
  BufRef hold;
  while (levels > 0) {
    span /= per;
    if (p == 0) return Mapping{0, span - lblk % span};
    hold = TRY(m.bread(p));
    uint64_t idx = lblk / span;
    lblk %= span;
    if (--levels == 0) return run(hold.data(), idx, per);
    p = get32(hold.data(), idx * 4);
    TRY(check(p));
  }
  return Mapping{0, 1};
}

// --- data

Result<std::string_view> Ext2Node::inline_xattr() const {
  const Ext2Mount::Geometry& g = em().geo();
  if (g.inode_size <= kGoodOldInodeSize) return std::string_view{};
  uint32_t extra = get16(raw_, ino::kExtraIsize);
  size_t start = kGoodOldInodeSize + extra;
  if (start + 4 > g.inode_size || get32(raw_, start) != kXattrMagic) return std::string_view{};
  size_t base = start + 4, end = g.inode_size;
  for (size_t p = base; p + 4 <= end && get32(raw_, p) != 0;) {
    if (p + kXattrEntryHeader > end) break;
    uint8_t name_len = static_cast<uint8_t>(raw_[p]);
    uint8_t index = static_cast<uint8_t>(raw_[p + 1]);
    uint16_t voff = get16(raw_, p + 2);
    uint32_t vinum = get32(raw_, p + 4), vsize = get32(raw_, p + 8);
    if (p + kXattrEntryHeader + name_len > end) break;
    if (index == kXattrIndexSystem && name_len == 4 && std::memcmp(raw_ + p + kXattrEntryHeader, "data", 4) == 0) {
      if (vinum != 0 || base + voff + size_t{vsize} > end) return em().corrupt("bad inline data attribute", ino_);
      return std::string_view(raw_ + base + voff, vsize);
    }
    p += (kXattrEntryHeader + name_len + 3) & ~size_t{3};
  }
  return std::string_view{};
}

Result<size_t> Ext2Node::read_inline(char* out, size_t len, uint64_t off) const {
  std::string_view more = TRY(inline_xattr());
  size_t total = ino::kBlockBytes + more.size();
  size_t done = 0;
  while (done < len && off + done < total) {
    uint64_t pos = off + done;
    out[done++] = pos < ino::kBlockBytes ? raw_[ino::kBlock + pos] : more[pos - ino::kBlockBytes];
  }
  if (done < len) std::memset(out + done, 0, len - done);
  return len;
}

Result<size_t> Ext2Node::read(void* buf, size_t len, uint64_t off) {
  if (is_dir()) return err(EISDIR);
  if (type() != VType::kReg) return err(EINVAL);
  uint64_t sz = size();
  if (off >= sz) return size_t{0};
  if (len > sz - off) len = static_cast<size_t>(sz - off);
  char* out = static_cast<char*>(buf);
  if (flags() & kFlInlineData) return read_inline(out, len, off);
  Ext2Mount& m = em();
  uint32_t bs = m.geo().block_size;
  size_t done = 0;
  while (done < len) {
    uint64_t pos = off + done;
    uint64_t lblk = pos / bs;
    size_t in = pos % bs;
    Mapping map = TRY(bmap(lblk));
    // Whole blocks of the mapping that fit: one pass each.
    uint64_t avail = map.count * bs - in;
    size_t n = len - done < avail ? len - done : static_cast<size_t>(avail);
    if (map.pblk == 0) {
      std::memset(out + done, 0, n);
      done += n;
      continue;
    }
    size_t left = n;
    for (uint64_t b = map.pblk; left > 0; b++) {
      size_t piece = bs - in < left ? bs - in : left;
      BufRef bh = TRY(m.bread(b));
      std::memcpy(out + done, bh.data() + in, piece);
      done += piece;
      left -= piece;
      in = 0;
    }
  }
  return done;
}

Result<size_t> Ext2Node::readlink(char* buf, size_t len) {
  if (type() != VType::kLnk) return err(EINVAL);
  uint64_t sz = size();
  if (sz >= kPathMax) return em().corrupt("symlink too long", ino_);
  size_t n = sz < len ? static_cast<size_t>(sz) : len;
  if (flags() & kFlInlineData) return read_inline(buf, n, 0);
  uint64_t blocks = get32(raw_, ino::kBlocksLo);
  uint64_t acl = get32(raw_, ino::kFileAclLo);
  uint64_t own = blocks - (acl ? em().geo().block_size / 512 : 0);
  // A fast symlink keeps its target in i_block and owns no block.
  if (sz < ino::kBlockBytes && own == 0) {
    std::memcpy(buf, raw_ + ino::kBlock, n);
    return n;
  }
  // A slow symlink: its target is the data of its first block.
  Ext2Mount& m = em();
  Mapping map = TRY(bmap(0));
  if (map.pblk == 0) return m.corrupt("symlink without a block", ino_);
  if (sz > m.geo().block_size) return m.corrupt("symlink longer than a block", ino_);
  BufRef bh = TRY(m.bread(map.pblk));
  std::memcpy(buf, bh.data(), n);
  return n;
}

Result<uint64_t> Ext2Node::seek_data(uint64_t off, bool hole) {
  uint64_t sz = size();
  if (off >= sz) return err(ENXIO);
  if (flags() & kFlInlineData) return hole ? sz : off;
  uint32_t bs = em().geo().block_size;
  uint64_t pos = off;
  while (pos < sz) {
    Mapping map = TRY(bmap(pos / bs));
    bool is_data = map.pblk != 0;
    if (is_data != hole) return pos;
    uint64_t next = (pos / bs + map.count) * bs;
    if (next <= pos) next = pos + bs;
    pos = next;
  }
  if (hole) return sz;
  return err(ENXIO);
}

}  // namespace rump
