// ext2/3/4 extended attributes (ext_attr): in the inode body, after
// i_extra_isize (a magic word, then entries), and in one attribute block
// per inode (i_file_acl: a 32-byte header, then entries), which several
// inodes may share (h_refcount): a shared block is copied before a
// change.
//
// A region (the body's or the block's) holds entries growing up from its
// start, ended by a zero word, and values packed down from its end; an
// entry (16 bytes and the name, padded to 4) gives the value's offset
// from the region's base (the first entry in the body, the block's start
// in a block) and size (padded to 4 on disk). Entries in a block are
// sorted by (name index, name length, name) and carry a hash of name and
// value; the block header carries a hash of those and, with
// metadata_csum, a checksum over the block and its number.
//
// A new attribute goes into the body when it fits there, else into the
// block (made when needed); a replaced one is taken out of where it was.
// The body's system.data (inline data) is kept as it is. Names are kept
// as an index (1 user, 4 trusted, 6 security, 7 system) and the rest.
#include <sys/xattr.h>

#include <cstring>

#include "fs/ext2/crc.h"
#include "fs/ext2/ext2.h"
#include "kern/kernel.h"

namespace rump {

using namespace ext2;

namespace {

constexpr size_t kHdrRefcount = 4, kHdrBlocks = 8, kHdrHash = 12, kHdrChecksum = 16, kBlockHeader = 32;
constexpr uint8_t kIndexUser = 1, kIndexTrusted = 4, kIndexSecurity = 6;

struct Prefix {
  uint8_t index;
  std::string_view prefix;
};
constexpr Prefix kPrefixes[] = {{kIndexUser, "user."}, {kIndexTrusted, "trusted."}, {kIndexSecurity, "security."}};

constexpr size_t pad4(size_t n) { return (n + 3) & ~size_t{3}; }
constexpr size_t entry_size(size_t name_len) { return pad4(kXattrEntryHeader + name_len); }

// A region: entries from base + first, value offsets from base, nothing
// past base + end.
struct Region {
  char* base;
  size_t first;
  size_t end;
  bool block;  // sorted entries with hashes
};

struct Scan {
  size_t last;      // offset of the terminating zero word
  size_t min_offs;  // lowest value offset (end if no value)
};

uint32_t entry_hash(const char* e, const char* value) {
  uint32_t h = 0;
  uint8_t nl = static_cast<uint8_t>(e[0]);
  for (size_t i = 0; i < nl; i++) h = (h << 5) ^ (h >> 27) ^ static_cast<uint8_t>(e[kXattrEntryHeader + i]);
  uint32_t vsize = get32(e, 8);
  for (size_t i = 0; i < pad4(vsize) / 4; i++) h = (h << 16) ^ (h >> 16) ^ get32(value, 4 * i);
  return h;
}

}  // namespace

// The region's entries checked: each inside the region, its value inside
// and not over the entries. Where the list ends and where values start.
static Result<Scan> scan_region(Ext2Mount& m, const Region& r, uint64_t where) {
  Scan s{0, r.end};
  size_t p = r.first;
  for (;;) {
    if (p + 4 > r.end) return m.corrupt("extended attribute list runs past its region", where);
    if (get32(r.base, p) == 0) break;
    if (p + kXattrEntryHeader > r.end) return m.corrupt("extended attribute entry past its region", where);
    uint8_t nl = static_cast<uint8_t>(r.base[p]);
    size_t voff = get16(r.base, p + 2);
    uint32_t vinum = get32(r.base, p + 4), vsize = get32(r.base, p + 8);
    if (p + entry_size(nl) > r.end) return m.corrupt("extended attribute name past its region", where);
    if (vinum != 0) return m.corrupt("extended attribute value in an inode (ea_inode)", where);
    if (vsize) {
      if (voff > r.end || pad4(vsize) > r.end - voff || (voff & 3))
        return m.corrupt("bad extended attribute value", where);
      if (voff < s.min_offs) s.min_offs = voff;
    }
    p += entry_size(nl);
  }
  s.last = p;
  if (s.min_offs < s.last + 4) return m.corrupt("extended attribute values overlap the entries", where);
  return s;
}

// The entry named (index, name), or npos.
static size_t find_in(const Region& r, const Scan& s, uint8_t index, std::string_view name) {
  for (size_t p = r.first; p < s.last; p += entry_size(static_cast<uint8_t>(r.base[p]))) {
    uint8_t nl = static_cast<uint8_t>(r.base[p]);
    if (static_cast<uint8_t>(r.base[p + 1]) == index && nl == name.size() &&
        std::memcmp(r.base + p + kXattrEntryHeader, name.data(), nl) == 0)
      return p;
  }
  return std::string_view::npos;
}

static size_t free_space(const Scan& s) { return s.min_offs - (s.last + 4); }
static size_t used_by(const Region& r, size_t p) {
  return entry_size(static_cast<uint8_t>(r.base[p])) + pad4(get32(r.base, p + 8));
}

// Takes the entry at p and its value out, moving the values below it up
// and the entries after it down.
static void remove_at(const Region& r, Scan& s, size_t p) {
  size_t esz = entry_size(static_cast<uint8_t>(r.base[p]));
  size_t voff = get16(r.base, p + 2);
  size_t vsz = pad4(get32(r.base, p + 8));
  if (vsz) {
    std::memmove(r.base + s.min_offs + vsz, r.base + s.min_offs, voff - s.min_offs);
    std::memset(r.base + s.min_offs, 0, vsz);
    for (size_t q = r.first; q < s.last; q += entry_size(static_cast<uint8_t>(r.base[q]))) {
      if (q != p && get32(r.base, q + 8) && get16(r.base, q + 2) < voff)
        put16(r.base, q + 2, static_cast<uint16_t>(get16(r.base, q + 2) + vsz));
    }
    s.min_offs += vsz;
  }
  std::memmove(r.base + p, r.base + p + esz, s.last + 4 - (p + esz));
  std::memset(r.base + s.last + 4 - esz, 0, esz);
  s.last -= esz;
}

// Puts a new entry in (the caller checked it fits): at the end of the
// body's list, in sorted place in a block.
static void insert(const Region& r, Scan& s, uint8_t index, std::string_view name, const char* value, size_t len) {
  size_t p = s.last;
  if (r.block) {
    for (size_t q = r.first; q < s.last; q += entry_size(static_cast<uint8_t>(r.base[q]))) {
      uint8_t qi = static_cast<uint8_t>(r.base[q + 1]), ql = static_cast<uint8_t>(r.base[q]);
      int cmp = index != qi ? index - qi : static_cast<int>(name.size()) - ql;
      if (cmp == 0) cmp = std::memcmp(name.data(), r.base + q + kXattrEntryHeader, ql);
      if (cmp <= 0) {
        p = q;
        break;
      }
    }
  }
  size_t esz = entry_size(name.size());
  std::memmove(r.base + p + esz, r.base + p, s.last + 4 - p);
  s.last += esz;
  char* e = r.base + p;
  std::memset(e, 0, esz);
  e[0] = static_cast<char>(name.size());
  e[1] = static_cast<char>(index);
  std::memcpy(e + kXattrEntryHeader, name.data(), name.size());
  put32(e, 8, static_cast<uint32_t>(len));
  if (len) {
    size_t vsz = pad4(len);
    s.min_offs -= vsz;
    std::memset(r.base + s.min_offs, 0, vsz);
    std::memcpy(r.base + s.min_offs, value, len);
    put16(e, 2, static_cast<uint16_t>(s.min_offs));
  }
  put32(e, 12, r.block ? entry_hash(e, r.base + s.min_offs) : 0);
}

// --- the inode body's region and the block

// The body's region: false if the inode has no room for one. init: write
// the magic (an empty list) if it is not there.
bool Ext2Node::body_region(char*& base, size_t& end, bool init) {
  const Ext2Mount::Geometry& g = em().geo();
  if (g.inode_size <= kGoodOldInodeSize) return false;
  size_t start = kGoodOldInodeSize + get16(raw_, ino::kExtraIsize);
  if (start + 4 + 4 + kXattrEntryHeader > g.inode_size) return false;
  if (get32(raw_, start) != kXattrMagic) {
    if (!init) return false;
    std::memset(raw_ + start, 0, g.inode_size - start);
    put32(raw_, start, kXattrMagic);
  }
  base = raw_ + start + 4;
  end = g.inode_size - start - 4;
  return true;
}

uint64_t Ext2Node::xattr_block() const {
  uint64_t b = get32(raw_, ino::kFileAclLo);
  if (em().geo().incompat & kIncompat64bit) b |= uint64_t{get16(raw_, ino::kFileAclHi)} << 32;
  return b;
}

void Ext2Node::set_xattr_block(uint64_t b) {
  put32(raw_, ino::kFileAclLo, static_cast<uint32_t>(b));
  if (em().geo().incompat & kIncompat64bit) put16(raw_, ino::kFileAclHi, static_cast<uint16_t>(b >> 32));
}

static uint32_t block_csum(Ext2Mount& m, uint64_t blkno, char* blk) {
  char nr[8];
  put32(nr, 0, static_cast<uint32_t>(blkno));
  put32(nr, 4, static_cast<uint32_t>(blkno >> 32));
  uint32_t saved = get32(blk, kHdrChecksum);
  put32(blk, kHdrChecksum, 0);
  uint32_t c = crc32c(crc32c(m.geo().csum_seed, nr, 8), blk, m.geo().block_size);
  put32(blk, kHdrChecksum, saved);
  return c;
}

Result<BufRef> Ext2Node::read_xattr_block(uint64_t b) {
  Ext2Mount& m = em();
  const Ext2Mount::Geometry& g = m.geo();
  if (b < g.first_data_block || b >= g.blocks_count) return m.corrupt("extended attribute block out of range", ino_);
  BufRef bh = TRY(m.bread(b));
  char* blk = bh.data();
  if (get32(blk, 0) != kXattrMagic || get32(blk, kHdrBlocks) != 1)
    return m.corrupt("bad extended attribute block header", b);
  if (m.has_csum() && block_csum(m, b, blk) != get32(blk, kHdrChecksum))
    return m.corrupt("extended attribute block checksum invalid", b);
  return bh;
}

// The block's hash and checksum after a change.
static void seal_block(Ext2Mount& m, uint64_t blkno, char* blk, const Scan& s) {
  uint32_t h = 0;
  for (size_t p = kBlockHeader; p < s.last; p += entry_size(static_cast<uint8_t>(blk[p]))) {
    uint32_t eh = get32(blk, p + 12);
    if (eh == 0) {
      h = 0;
      break;
    }
    h = (h << 16) ^ (h >> 16) ^ eh;
  }
  put32(blk, kHdrHash, h);
  if (m.has_csum()) put32(blk, kHdrChecksum, block_csum(m, blkno, blk));
}

// Drops this inode's hold on its attribute block (freed with its last
// holder).
Result<void> Ext2Node::drop_xattr_block() {
  uint64_t b = xattr_block();
  if (!b) return {};
  Ext2Mount& m = em();
  BufRef bh = TRY(read_xattr_block(b));
  uint32_t refs = get32(bh.data(), kHdrRefcount);
  if (refs <= 1) {
    bh.reset();
    TRY(m.free_block(b));
  } else {
    put32(bh.data(), kHdrRefcount, refs - 1);
    if (m.has_csum()) put32(bh.data(), kHdrChecksum, block_csum(m, b, bh.data()));
    TRY(m.dirty_meta(bh));
  }
  set_xattr_block(0);
  add_blocks(-1);
  return {};
}

// --- names

static Result<std::pair<uint8_t, std::string_view>> split_name(std::string_view name, bool user_ok) {
  for (const Prefix& p : kPrefixes) {
    if (name.substr(0, p.prefix.size()) == p.prefix) {
      if (p.index == kIndexUser && !user_ok) return err(EOPNOTSUPP);
      std::string_view rest = name.substr(p.prefix.size());
      if (rest.empty()) return err(EINVAL);
      if (rest.size() > 255) return err(ERANGE);
      return std::pair<uint8_t, std::string_view>{p.index, rest};
    }
  }
  // system.*: posix ACLs are not kept by this driver; system.data is the
  // inline data's own.
  return err(EOPNOTSUPP);
}

// --- the vnode operations

Result<size_t> Ext2Node::getxattr(std::string_view name, char* buf, size_t len) {
  auto [index, rest] = TRY(split_name(name, em().user_xattr()));
  auto answer = [&](const char* value, size_t size) -> Result<size_t> {
    if (len == 0) return size;
    if (size > len) return err(ERANGE);
    std::memcpy(buf, value, size);
    return size;
  };
  char* base;
  size_t end;
  if (body_region(base, end, false)) {
    Region r{base, 0, end, false};
    Scan s = TRY(scan_region(em(), r, ino_));
    size_t p = find_in(r, s, index, rest);
    if (p != std::string_view::npos) return answer(base + get16(base, p + 2), get32(base, p + 8));
  }
  if (uint64_t b = xattr_block()) {
    BufRef bh = TRY(read_xattr_block(b));
    Region r{bh.data(), kBlockHeader, em().geo().block_size, true};
    Scan s = TRY(scan_region(em(), r, b));
    size_t p = find_in(r, s, index, rest);
    if (p != std::string_view::npos) return answer(r.base + get16(r.base, p + 2), get32(r.base, p + 8));
  }
  return err(ENODATA);
}

Result<size_t> Ext2Node::listxattr(char* buf, size_t len, bool trusted) {
  Ext2Mount& m = em();
  size_t total = 0;
  bool over = false;
  auto list = [&](const Region& r, const Scan& s) {
    for (size_t p = r.first; p < s.last; p += entry_size(static_cast<uint8_t>(r.base[p]))) {
      uint8_t index = static_cast<uint8_t>(r.base[p + 1]);
      std::string_view prefix;
      for (const Prefix& x : kPrefixes)
        if (x.index == index) prefix = x.prefix;
      if (prefix.empty() || (index == kIndexUser && !m.user_xattr()) || (index == kIndexTrusted && !trusted))
        continue;
      std::string_view rest(r.base + p + kXattrEntryHeader, static_cast<uint8_t>(r.base[p]));
      size_t n = prefix.size() + rest.size() + 1;
      if (len) {
        if (total + n > len) {
          over = true;
        } else {
          std::memcpy(buf + total, prefix.data(), prefix.size());
          std::memcpy(buf + total + prefix.size(), rest.data(), rest.size());
          buf[total + n - 1] = '\0';
        }
      }
      total += n;
    }
  };
  char* base;
  size_t end;
  if (body_region(base, end, false)) {
    Region r{base, 0, end, false};
    Scan s = TRY(scan_region(m, r, ino_));
    list(r, s);
  }
  if (uint64_t b = xattr_block()) {
    BufRef bh = TRY(read_xattr_block(b));
    Region r{bh.data(), kBlockHeader, m.geo().block_size, true};
    Scan s = TRY(scan_region(m, r, b));
    list(r, s);
  }
  if (over) return err(ERANGE);
  return total;
}

Result<void> Ext2Node::setxattr(std::string_view name, const char* value, size_t len, int flags) {
  return change_xattr(name, value, len, flags, false);
}

Result<void> Ext2Node::removexattr(std::string_view name) { return change_xattr(name, nullptr, 0, 0, true); }

Result<void> Ext2Node::change_xattr(std::string_view name, const char* value, size_t len, int flags, bool remove) {
  Ext2Mount& m = em();
  if (!m.writable()) return err(EROFS);
  auto [index, rest] = TRY(split_name(name, m.user_xattr()));
  const Ext2Mount::Geometry& g = m.geo();
  uint32_t bs = g.block_size;
  TRY(m.begin_op());

  // Where the attribute is now.
  char* base = nullptr;
  size_t bend = 0;
  bool has_body = body_region(base, bend, false);
  Region body{base, 0, bend, false};
  Scan bscan{0, 0};
  size_t in_body = std::string_view::npos;
  if (has_body) {
    bscan = TRY(scan_region(m, body, ino_));
    in_body = find_in(body, bscan, index, rest);
  }
  uint64_t blkno = xattr_block();
  BufRef bh;
  Region blk{nullptr, kBlockHeader, bs, true};
  Scan kscan{kBlockHeader, bs};
  size_t in_block = std::string_view::npos;
  if (blkno) {
    bh = TRY(read_xattr_block(blkno));
    blk.base = bh.data();
    kscan = TRY(scan_region(m, blk, blkno));
    in_block = find_in(blk, kscan, index, rest);
  }
  bool present = in_body != std::string_view::npos || in_block != std::string_view::npos;
  if (remove || (flags & XATTR_REPLACE)) {
    if (!present) return err(ENODATA);
  } else if ((flags & XATTR_CREATE) && present) {
    return err(EEXIST);
  }

  // Where the new value goes: the body if it fits there (counting the
  // space the old one frees), else the block.
  size_t need = entry_size(rest.size()) + pad4(len);
  bool to_body = false, to_block = false;
  if (!remove) {
    bool body_room = false;
    if (has_body) {
      body_room = free_space(bscan) + (in_body != std::string_view::npos ? used_by(body, in_body) : 0) >= need;
    } else if (g.inode_size > kGoodOldInodeSize) {
      // Room for a list, with no magic yet.
      size_t start = kGoodOldInodeSize + get16(raw_, ino::kExtraIsize);
      body_room = start + 4 + 4 + need <= g.inode_size;
    }
    if (body_room) {
      to_body = true;
    } else {
      size_t room = blkno ? free_space(kscan) + (in_block != std::string_view::npos ? used_by(blk, in_block) : 0)
                          : bs - kBlockHeader - 4;
      if (room < need) return err(ENOSPC);
      to_block = true;
    }
  }

  // The block first (it can fail: allocation, a shared block's copy),
  // then the body, which cannot.
  bool block_changes = in_block != std::string_view::npos || to_block;
  // The block's only attribute leaving it: the block goes whole, with
  // nothing in it changed (it may be in the running transaction, which
  // would commit a change that a failure to free it left behind).
  bool empties = !to_block && in_block != std::string_view::npos &&
                 kscan.last - entry_size(static_cast<uint8_t>(blk.base[in_block])) == kBlockHeader;
  // A block allocated here, freed again if the change fails before the
  // block is in place (else a block marked in use that nothing maps).
  bool fresh = false;
  if (empties) {
    bh.reset();
    TRY(drop_xattr_block());
  } else if (block_changes) {
    if (!blkno) {
      if (!(g.compat & kCompatExtAttr)) TRY(m.set_compat(kCompatExtAttr));
      uint64_t goal = g.first_data_block + uint64_t{(ino_ - 1) / g.inodes_per_group} * g.blocks_per_group;
      blkno = TRY(m.alloc_block(goal));
      Result<BufRef> nbh = m.bc_.getblk(m.dev_, blkno, bs);
      if (!nbh.ok()) {
        m.undo_blocks(blkno, 1);
        return err(nbh.error());
      }
      bh = std::move(*nbh);
      std::memset(bh.data(), 0, bs);
      put32(bh.data(), 0, kXattrMagic);
      put32(bh.data(), kHdrRefcount, 1);
      put32(bh.data(), kHdrBlocks, 1);
      blk.base = bh.data();
      kscan = Scan{kBlockHeader, bs};
      set_xattr_block(blkno);
      add_blocks(1);
      fresh = true;
    } else if (uint32_t refs = get32(bh.data(), kHdrRefcount); refs > 1) {
      // Shared: this inode gets its own copy.
      uint64_t goal = g.first_data_block + uint64_t{(ino_ - 1) / g.inodes_per_group} * g.blocks_per_group;
      uint64_t nb = TRY(m.alloc_block(goal));
      Result<BufRef> copy = m.bc_.getblk(m.dev_, nb, bs);
      if (!copy.ok()) {
        m.undo_blocks(nb, 1);
        return err(copy.error());
      }
      std::memcpy(copy->data(), bh.data(), bs);
      put32(bh.data(), kHdrRefcount, refs - 1);
      if (m.has_csum()) put32(bh.data(), kHdrChecksum, block_csum(m, blkno, bh.data()));
      if (Result<void> d = m.dirty_meta(bh); !d.ok()) {
        put32(bh.data(), kHdrRefcount, refs);
        if (m.has_csum()) put32(bh.data(), kHdrChecksum, block_csum(m, blkno, bh.data()));
        m.undo_blocks(nb, 1);
        return d;
      }
      bh = std::move(*copy);
      put32(bh.data(), kHdrRefcount, 1);
      blkno = nb;
      blk.base = bh.data();
      set_xattr_block(blkno);
    }
    if (in_block != std::string_view::npos) remove_at(blk, kscan, in_block);
    if (to_block) insert(blk, kscan, index, rest, value, len);
    seal_block(m, blkno, bh.data(), kscan);
    if (Result<void> d = m.dirty_meta(bh); !d.ok()) {
      if (fresh) {
        bh.reset();
        set_xattr_block(0);
        add_blocks(-1);
        m.undo_blocks(blkno, 1);
      }
      return d;
    }
  }
  if (in_body != std::string_view::npos) remove_at(body, bscan, in_body);
  if (to_body) {
    if (!has_body) {
      body_region(base, bend, true);
      body = Region{base, 0, bend, false};
      bscan = Scan{0, bend};
    }
    insert(body, bscan, index, rest, value, len);
  }
  if (has_body && bscan.last == 0 && !to_body) {
    // No attribute left in the body: no magic either.
    put32(body.base - 4, 0, 0);
  }
  set_time(ino::kCtime, ino::kCtimeExtra, wall_timespec());
  return write_inode();
}

}  // namespace rump

namespace rump {

using namespace ext2;

// Gives the inode the empty system.data attribute of inline data (the
// bytes all in i_block); false when its body has no room for it.
Result<bool> Ext2Node::add_inline_xattr() {
  char* base;
  size_t end;
  if (!body_region(base, end, true)) return false;
  Region r{base, 0, end, false};
  Scan s = TRY(scan_region(em(), r, ino_));
  if (find_in(r, s, kXattrIndexSystem, "data") != std::string_view::npos) return true;
  if (free_space(s) < entry_size(4)) return false;
  insert(r, s, kXattrIndexSystem, "data", nullptr, 0);
  return true;
}

// Takes the inline data's system.data attribute out of the body (the
// inode leaves inline_data).
Result<void> Ext2Node::remove_inline_xattr() {
  char* base;
  size_t end;
  if (!body_region(base, end, false)) return {};
  Region r{base, 0, end, false};
  Scan s = TRY(scan_region(em(), r, ino_));
  size_t p = find_in(r, s, kXattrIndexSystem, "data");
  if (p != std::string_view::npos) remove_at(r, s, p);
  if (s.last == 0) put32(base - 4, 0, 0);
  return {};
}

}  // namespace rump
