// ext2/3/4 hashed directories (dir_index): the name hashes (legacy,
// half-MD4 and TEA, signed or unsigned characters as the superblock says),
// lookups through the index, and keeping the index valid as entries are
// added: a full leaf splits in two by hash, a full index node splits
// (or, at the root, the tree grows a level), a one-block linear directory
// that fills becomes indexed.
//
// Layout: block 0 holds "." and ".." (the latter spanning the block), the
// root info (at 0x18: hash version, info length 8, indirect levels) and
// the root's entries (at 0x20: limit, count, then hash/block pairs whose
// first hash slot is the limit/count pair); an interior node is a block
// with one empty entry over it and entries from 0x08. Entry i covers hashes
// from its hash up to the next entry's; a leaf whose range starts with the
// low bit set continues the previous leaf's last hash (a collision run).
// With metadata_csum the index blocks end their entry array (after limit
// entries) in an 8-byte tail with a checksum over the counted entries.
//
// Entries are never taken out of the index: a removal empties a leaf's
// entry, as Linux does; the range stays.
#include <algorithm>
#include <cstring>

#include "fs/ext2/crc.h"
#include "fs/ext2/ext2.h"
#include "kern/kernel.h"

namespace rump {

using namespace ext2;

namespace {

// --- the hashes

void str2hashbuf(const char* msg, size_t len, uint32_t* buf, int num, bool unsigned_chars) {
  uint32_t pad = static_cast<uint32_t>(len) | (static_cast<uint32_t>(len) << 8);
  pad |= pad << 16;
  uint32_t val = pad;
  if (len > static_cast<size_t>(num) * 4) len = static_cast<size_t>(num) * 4;
  for (size_t i = 0; i < len; i++) {
    int c = unsigned_chars ? static_cast<int>(static_cast<unsigned char>(msg[i]))
                           : static_cast<int>(static_cast<signed char>(msg[i]));
    val = static_cast<uint32_t>(c) + (val << 8);
    if ((i % 4) == 3) {
      *buf++ = val;
      val = pad;
      num--;
    }
  }
  if (--num >= 0) *buf++ = val;
  while (--num >= 0) *buf++ = pad;
}

inline uint32_t rol32(uint32_t x, int s) { return (x << s) | (x >> (32 - s)); }

void half_md4(uint32_t buf[4], const uint32_t in[8]) {
  uint32_t a = buf[0], b = buf[1], c = buf[2], d = buf[3];
  auto F = [](uint32_t x, uint32_t y, uint32_t z) { return z ^ (x & (y ^ z)); };
  auto G = [](uint32_t x, uint32_t y, uint32_t z) { return (x & y) + ((x ^ y) & z); };
  auto H = [](uint32_t x, uint32_t y, uint32_t z) { return x ^ y ^ z; };
  constexpr uint32_t K2 = 013240474631u, K3 = 015666365641u;
  auto R = [](auto f, uint32_t& w, uint32_t x, uint32_t y, uint32_t z, uint32_t in_word, int shift) {
    w = rol32(w + f(x, y, z) + in_word, shift);
  };
  R(F, a, b, c, d, in[0], 3);
  R(F, d, a, b, c, in[1], 7);
  R(F, c, d, a, b, in[2], 11);
  R(F, b, c, d, a, in[3], 19);
  R(F, a, b, c, d, in[4], 3);
  R(F, d, a, b, c, in[5], 7);
  R(F, c, d, a, b, in[6], 11);
  R(F, b, c, d, a, in[7], 19);
  R(G, a, b, c, d, in[1] + K2, 3);
  R(G, d, a, b, c, in[3] + K2, 5);
  R(G, c, d, a, b, in[5] + K2, 9);
  R(G, b, c, d, a, in[7] + K2, 13);
  R(G, a, b, c, d, in[0] + K2, 3);
  R(G, d, a, b, c, in[2] + K2, 5);
  R(G, c, d, a, b, in[4] + K2, 9);
  R(G, b, c, d, a, in[6] + K2, 13);
  R(H, a, b, c, d, in[3] + K3, 3);
  R(H, d, a, b, c, in[7] + K3, 9);
  R(H, c, d, a, b, in[2] + K3, 11);
  R(H, b, c, d, a, in[6] + K3, 15);
  R(H, a, b, c, d, in[1] + K3, 3);
  R(H, d, a, b, c, in[5] + K3, 9);
  R(H, c, d, a, b, in[0] + K3, 11);
  R(H, b, c, d, a, in[4] + K3, 15);
  buf[0] += a;
  buf[1] += b;
  buf[2] += c;
  buf[3] += d;
}

void tea(uint32_t buf[4], const uint32_t in[4]) {
  uint32_t sum = 0, b0 = buf[0], b1 = buf[1];
  uint32_t a = in[0], b = in[1], c = in[2], d = in[3];
  for (int n = 0; n < 16; n++) {
    sum += 0x9E3779B9u;
    b0 += ((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >> 5) + b);
    b1 += ((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >> 5) + d);
  }
  buf[0] += b0;
  buf[1] += b1;
}

uint32_t legacy_hash(const char* name, size_t len, bool unsigned_chars) {
  uint32_t hash, hash0 = 0x12a3fe2d, hash1 = 0x37abe8f9;
  for (size_t i = 0; i < len; i++) {
    int c = unsigned_chars ? static_cast<int>(static_cast<unsigned char>(name[i]))
                           : static_cast<int>(static_cast<signed char>(name[i]));
    hash = hash1 + (hash0 ^ static_cast<uint32_t>(c * 7152373));
    if (hash & 0x80000000u) hash -= 0x7fffffff;
    hash1 = hash0;
    hash0 = hash;
  }
  return hash0 << 1;
}

constexpr size_t kDxTail = 8;

}  // namespace

// The hash of name in this directory (version: the root's, made unsigned
// as the superblock says); 0 with an unknown version.
Result<uint32_t> Ext2Node::dx_hash(std::string_view name, uint8_t version) const {
  const Ext2Mount::Geometry& g = em().geo();
  if (version <= kHashTea && (g.sb_flags & kFlagUnsignedHash)) version = static_cast<uint8_t>(version + 3);
  uint32_t buf[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  if (g.hash_seed[0] | g.hash_seed[1] | g.hash_seed[2] | g.hash_seed[3]) std::memcpy(buf, g.hash_seed, sizeof buf);
  uint32_t hash;
  const char* p = name.data();
  size_t len = name.size();
  switch (version) {
    case kHashLegacy:
    case kHashLegacyUnsigned: hash = legacy_hash(p, len, version == kHashLegacyUnsigned); break;
    case kHashHalfMd4:
    case kHashHalfMd4Unsigned: {
      uint32_t in[8];
      for (;;) {
        str2hashbuf(p, len, in, 8, version == kHashHalfMd4Unsigned);
        half_md4(buf, in);
        if (len <= 32) break;
        len -= 32;
        p += 32;
      }
      hash = buf[1];
      break;
    }
    case kHashTea:
    case kHashTeaUnsigned: {
      uint32_t in[4];
      for (;;) {
        str2hashbuf(p, len, in, 4, version == kHashTeaUnsigned);
        tea(buf, in);
        if (len <= 16) break;
        len -= 16;
        p += 16;
      }
      hash = buf[0];
      break;
    }
    default: return em().corrupt("unknown directory hash version", ino_);
  }
  hash &= ~1u;
  if (hash == (0x7fffffffu << 1)) hash = (0x7fffffffu - 1) << 1;
  return hash;
}

// --- index blocks

size_t Ext2Node::dx_limit(bool root) const {
  uint32_t bs = em().geo().block_size;
  size_t start = root ? kDxRootEntries : kDxNodeEntries;
  return (bs - start - (em().has_csum() ? kDxTail : 0)) / 8;
}

void Ext2Node::set_dx_csum(char* blk, size_t entries) const {
  Ext2Mount& m = em();
  if (!m.has_csum()) return;
  size_t limit = get16(blk, entries), count = get16(blk, entries + 2);
  char* tail = blk + entries + limit * 8;
  put32(tail, 0, 0);
  static const char kZero[4] = {};
  uint32_t c = crc32c(csum_seed(), blk, entries + count * 8);
  c = crc32c(c, tail, 4);
  c = crc32c(c, kZero, 4);
  put32(tail, 4, c);
}

// Walks the index from the root to the leaf for hash: path[0] the root,
// path[levels] the deepest index block, each with the entry taken (at).
Result<int> Ext2Node::dx_probe(uint32_t hash, DxFrame* path, uint32_t& hash_version) {
  Ext2Mount& m = em();
  uint32_t bs = m.geo().block_size;
  uint64_t nblocks = size() / bs;
  Mapping map = TRY(bmap(0));
  if (!map.pblk) return m.corrupt("hole in a directory", ino_);
  path[0].bh = TRY(m.bread(map.pblk));
  path[0].lblk = 0;
  const char* root = path[0].bh.data();
  uint8_t levels = static_cast<uint8_t>(root[kDxRootInfo + 6]);
  hash_version = static_cast<uint8_t>(root[kDxRootInfo + 4]);
  uint8_t max_levels = (m.geo().incompat & kIncompatLargedir) ? 3 : 2;
  if (get32(root, kDxRootInfo) != 0 || static_cast<uint8_t>(root[kDxRootInfo + 5]) != 8 || levels >= max_levels ||
      rec_len(root, 0) != 12)
    return m.corrupt("bad hash tree root", ino_);
  for (int level = 0;; level++) {
    DxFrame& f = path[level];
    const char* b = f.bh.data();
    f.entries = level == 0 ? kDxRootEntries : kDxNodeEntries;
    size_t limit = get16(b, f.entries), count = get16(b, f.entries + 2);
    if (limit != dx_limit(level == 0) || count == 0 || count > limit) return m.corrupt("bad hash tree node", f.lblk);
    // The last entry whose hash is at or below hash (entry 0 covers from 0).
    size_t lo = 1, hi = count;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (get32(b, f.entries + mid * 8) <= hash) lo = mid + 1;
      else hi = mid;
    }
    f.at = lo - 1;
    uint64_t next = get32(b, f.entries + f.at * 8 + 4) & 0x0fffffff;
    if (next == 0 || next >= nblocks) return m.corrupt("hash tree points outside the directory", f.lblk);
    if (level == levels) return levels;
    map = TRY(bmap(next));
    if (!map.pblk) return m.corrupt("hole in a directory", ino_);
    path[level + 1].bh = TRY(m.bread(map.pblk));
    path[level + 1].lblk = next;
    const char* nb = path[level + 1].bh.data();
    if (get32(nb, 0) != 0 || rec_len(nb, 0) != bs) return m.corrupt("bad hash tree node", next);
  }
}

uint64_t Ext2Node::DxFrame::block() const { return get32(bh.data(), entries + at * 8 + 4) & 0x0fffffff; }

// Moves path to the leaf after the one it ends in, in hash order: false
// after the last leaf. start: the new leaf's range start (its low bit set
// when it continues the previous leaf's collision run). With run, only a
// leaf continuing the collision run of hash *run is taken.
Result<bool> Ext2Node::dx_step_leaf(DxFrame* path, int levels, uint32_t* start, const uint32_t* run) {
  Ext2Mount& m = em();
  int level = levels;
  for (; level >= 0; level--) {
    DxFrame& f = path[level];
    if (f.at + 1 < get16(f.bh.data(), f.entries + 2)) break;
  }
  if (level < 0) return false;
  path[level].at++;
  *start = get32(path[level].bh.data(), path[level].entries + path[level].at * 8);
  if (run && ((*start & ~1u) != *run || !(*start & 1))) return false;
  uint32_t bs = m.geo().block_size;
  uint64_t nblocks = size() / bs;
  for (int l = level + 1; l <= levels; l++) {
    uint64_t b = path[l - 1].block();
    if (b == 0 || b >= nblocks) return m.corrupt("hash tree points outside the directory", path[l - 1].lblk);
    Mapping map = TRY(bmap(b));
    if (!map.pblk) return m.corrupt("hole in a directory", ino_);
    path[l].bh = TRY(m.bread(map.pblk));
    path[l].lblk = b;
    path[l].entries = kDxNodeEntries;
    path[l].at = 0;
    const char* nb = path[l].bh.data();
    size_t limit = get16(nb, kDxNodeEntries), count = get16(nb, kDxNodeEntries + 2);
    if (get32(nb, 0) != 0 || rec_len(nb, 0) != bs || limit != dx_limit(false) || count == 0 || count > limit)
      return m.corrupt("bad hash tree node", b);
  }
  uint64_t leaf = path[levels].block();
  if (leaf == 0 || leaf >= nblocks) return m.corrupt("hash tree points outside the directory", path[levels].lblk);
  return true;
}

// The leaf after the one path ends in, if it continues hash's collision
// run (its range starts at hash with the low bit set); path moves to it.
Result<bool> Ext2Node::dx_next_leaf(uint32_t hash, DxFrame* path, int levels) {
  uint32_t start;
  return dx_step_leaf(path, levels, &start, &hash);
}

// The leaf block (logical) holding name, through the index: kNoLeaf if
// the name is not there, an error if the index is unusable.
Result<uint64_t> Ext2Node::dx_find(std::string_view name, uint32_t* ino_out) {
  DxFrame path[3];
  uint32_t version;
  // The hash needs the root's version: read it first.
  {
    BufRef rb = TRY(dir_block(0));
    version = static_cast<uint8_t>(rb.data()[kDxRootInfo + 4]);
  }
  uint32_t hash = TRY(dx_hash(name, static_cast<uint8_t>(version)));
  int levels = TRY(dx_probe(hash, path, version));
  for (int leaves = 0;; leaves++) {
    uint64_t lblk = path[levels].block();
    BufRef bh = TRY(dir_block(lblk));
    size_t pos = TRY(find_in_block(bh.data(), lblk, name, nullptr));
    if (pos != kNoEntry) {
      if (ino_out) *ino_out = get32(bh.data(), pos);
      return lblk;
    }
    if (leaves > 1024 || !TRY(dx_next_leaf(hash, path, levels))) return kNoLeaf;
  }
}

// A new block at the end of the directory, zeroed (the caller fills it).
Result<BufRef> Ext2Node::append_dir_block(uint64_t& lblk) {
  Ext2Mount& m = em();
  uint32_t bs = m.geo().block_size;
  lblk = size() / bs;
  bool fresh = false;
  Result<uint64_t> mapped = map_for_write(lblk, fresh);
  if (!mapped.ok()) {
    // A tree block the failed mapping kept (a full root grown a level
    // before the failure) is in the map: the inode's copy shows it.
    (void)write_inode_if_pending();
    return err(mapped.error());
  }
  uint64_t pb = *mapped;
  Result<BufRef> got = m.bc_.getblk(m.dev_, pb, bs);
  if (!got.ok()) {
    // The block just mapped past the end goes again; the map may keep a
    // tree block the mapping added (a full root grown a level), which the
    // inode's copy must show.
    Result<void> u = free_range(lblk, lblk + 1);
    if (u.ok()) u = write_inode();
    if (!u.ok()) m.abort_changes("a directory block mapped past its end", ino_, u.error());
    return err(got.error());
  }
  BufRef bh = std::move(*got);
  std::memset(bh.data(), 0, bs);
  set_size((lblk + 1) * bs);
  TRY(write_inode());
  return bh;
}

// Puts (name, ino, type) into the leaf block blk if it has room.
bool Ext2Node::leaf_insert(char* blk, std::string_view name, uint32_t ino, uint8_t ft) {
  if (!insert_dirent(blk, usable_end(), name, ino, ft)) return false;
  set_leaf_csum(blk);
  return true;
}

bool Ext2Node::insert_dirent(char* blk, size_t end, std::string_view name, uint32_t ino, uint8_t ft) const {
  uint32_t need = dirent_len(static_cast<uint32_t>(name.size()));
  for (size_t pos = 0; pos < end;) {
    uint32_t rec = rec_len(blk, pos);
    if (rec == 0 || pos + rec > end) return false;
    uint32_t used = get32(blk, pos) ? dirent_len(static_cast<uint8_t>(blk[pos + 6])) : 0;
    if (rec - used >= need) {
      size_t at = pos;
      if (used) {
        put_rec_len(blk, pos, used);
        at = pos + used;
      }
      put32(blk, at, ino);
      put_rec_len(blk, at, rec - used);
      blk[at + 6] = static_cast<char>(name.size());
      blk[at + 7] = static_cast<char>(ft);
      std::memcpy(blk + at + 8, name.data(), name.size());
      return true;
    }
    pos += rec;
  }
  return false;
}

namespace {

struct MapEntry {
  uint32_t hash;
  uint32_t pos;
  uint32_t len;  // the entry's own size (dirent_len)
};

}  // namespace

// Moves the upper half (by hash) of leaf old_blk's entries into a new
// leaf and indexes it after path[levels].at. The caller made sure the
// deepest index block has room.
Result<void> Ext2Node::dx_split_leaf(DxFrame* path, int levels, uint8_t version, BufRef& leaf, uint64_t leaf_lblk) {
  Ext2Mount& m = em();
  uint32_t bs = m.geo().block_size;
  char* blk = leaf.data();
  size_t max = bs / 12 + 1;
  auto* map = static_cast<MapEntry*>(m.kernel().kmem().alloc(max * sizeof(MapEntry) + bs));
  if (!map) return err(ENOMEM);
  char* copy = reinterpret_cast<char*>(map + max);
  struct Free {
    void* p;
    ~Free() { Kmem::free(p); }
  } free_map{map};
  std::memcpy(copy, blk, bs);
  size_t n = 0;
  for (size_t pos = 0; pos < usable_end();) {
    TRY(check_dirent(copy, pos, bs, leaf_lblk));
    uint32_t rec = rec_len(copy, pos);
    if (get32(copy, pos) != 0 && n < max) {
      uint8_t nl = static_cast<uint8_t>(copy[pos + 6]);
      uint32_t h = TRY(dx_hash(std::string_view(copy + pos + 8, nl), version));
      map[n++] = MapEntry{h, static_cast<uint32_t>(pos), dirent_len(nl)};
    }
    pos += rec;
  }
  if (n < 2) return m.corrupt("a full directory leaf with fewer than two entries", leaf_lblk);
  std::sort(map, map + n, [](const MapEntry& a, const MapEntry& b) { return a.hash < b.hash || (a.hash == b.hash && a.pos < b.pos); });
  // Split where half the bytes are below; a run of one hash stays
  // together when it can (else the new leaf continues it).
  size_t total = 0, half = 0, split = 0;
  for (size_t i = 0; i < n; i++) total += map[i].len;
  for (split = 0; split < n - 1 && half + map[split].len <= total / 2; split++) half += map[split].len;
  if (split == 0) split = 1;
  size_t s = split;
  while (s > 1 && map[s].hash == map[s - 1].hash) s--;
  if (map[s].hash != map[s - 1].hash) split = s;
  uint32_t hash2 = map[split].hash;
  uint32_t continued = map[split].hash == map[split - 1].hash ? 1 : 0;

  uint64_t new_lblk;
  BufRef nb = TRY(append_dir_block(new_lblk));
  // Rewrite both leaves from the sorted map.
  auto fill = [&](char* out, size_t from, size_t to) {
    std::memset(out, 0, bs);
    size_t pos = 0, last = 0;
    for (size_t i = from; i < to; i++) {
      std::memcpy(out + pos, copy + map[i].pos, map[i].len);
      put_rec_len(out, pos, map[i].len);
      last = pos;
      pos += map[i].len;
    }
    if (from == to) {
      put_rec_len(out, 0, usable_end());
    } else {
      put_rec_len(out, last, static_cast<uint32_t>(usable_end() - last));
    }
    set_leaf_csum(out);
  };
  fill(blk, 0, split);
  fill(nb.data(), split, n);
  TRY(m.dirty_meta(leaf));
  TRY(m.dirty_meta(nb));
  // The new leaf into the index, after the old one's entry.
  DxFrame& f = path[levels];
  char* ib = f.bh.data();
  size_t count = get16(ib, f.entries + 2);
  size_t at = f.at + 1;
  std::memmove(ib + f.entries + (at + 1) * 8, ib + f.entries + at * 8, (count - at) * 8);
  put32(ib, f.entries + at * 8, hash2 | continued);
  put32(ib, f.entries + at * 8 + 4, static_cast<uint32_t>(new_lblk));
  put16(ib, f.entries + 2, static_cast<uint16_t>(count + 1));
  set_dx_csum(ib, f.entries);
  return m.dirty_meta(f.bh);
}

// Makes room in the deepest index block of path: splits it into a new
// node (indexed in its parent), or moves the root's entries down into a
// new node (one more level). ENOSPC when the tree is at its depth limit.
Result<void> Ext2Node::dx_grow(DxFrame* path, int levels) {
  Ext2Mount& m = em();
  uint32_t bs = m.geo().block_size;
  uint8_t max_levels = (m.geo().incompat & kIncompatLargedir) ? 3 : 2;
  // The lowest full block with a parent that has room (or the root).
  int level = levels;
  while (level > 0 && get16(path[level - 1].bh.data(), path[level - 1].entries + 2) ==
                          get16(path[level - 1].bh.data(), path[level - 1].entries))
    level--;
  if (level == 0) {
    // The root is full all the way down: a new level under it.
    if (levels + 1 >= max_levels) return err(ENOSPC);
    char* root = path[0].bh.data();
    size_t count = get16(root, kDxRootEntries + 2);
    uint64_t nl;
    BufRef nb = TRY(append_dir_block(nl));
    char* node = nb.data();
    put32(node, 0, 0);
    put_rec_len(node, 0, bs);
    put16(node, kDxNodeEntries, static_cast<uint16_t>(dx_limit(false)));
    put16(node, kDxNodeEntries + 2, static_cast<uint16_t>(count));
    // Entry 0's hash slot holds limit and count: copy the block pointers
    // and the other entries whole.
    put32(node, kDxNodeEntries + 4, get32(root, kDxRootEntries + 4));
    std::memcpy(node + kDxNodeEntries + 8, root + kDxRootEntries + 8, (count - 1) * 8);
    set_dx_csum(node, kDxNodeEntries);
    TRY(m.dirty_meta(nb));
    put16(root, kDxRootEntries + 2, 1);
    put32(root, kDxRootEntries + 4, static_cast<uint32_t>(nl));
    root[kDxRootInfo + 6] = static_cast<char>(levels + 1);
    set_dx_csum(root, kDxRootEntries);
    return m.dirty_meta(path[0].bh);
  }
  // Split path[level] (a node: level > 0) in two; its parent has room.
  DxFrame& f = path[level];
  char* old = f.bh.data();
  size_t count = get16(old, kDxNodeEntries + 2);
  size_t keep = count / 2;
  uint64_t nl;
  BufRef nb = TRY(append_dir_block(nl));
  char* node = nb.data();
  put32(node, 0, 0);
  put_rec_len(node, 0, bs);
  put16(node, kDxNodeEntries, static_cast<uint16_t>(dx_limit(false)));
  put16(node, kDxNodeEntries + 2, static_cast<uint16_t>(count - keep));
  uint32_t hash2 = get32(old, kDxNodeEntries + keep * 8);
  std::memcpy(node + kDxNodeEntries + 4, old + kDxNodeEntries + keep * 8 + 4, 4);
  std::memcpy(node + kDxNodeEntries + 8, old + kDxNodeEntries + (keep + 1) * 8, (count - keep - 1) * 8);
  set_dx_csum(node, kDxNodeEntries);
  TRY(m.dirty_meta(nb));
  put16(old, kDxNodeEntries + 2, static_cast<uint16_t>(keep));
  std::memset(old + kDxNodeEntries + keep * 8, 0, (count - keep) * 8);
  set_dx_csum(old, kDxNodeEntries);
  TRY(m.dirty_meta(f.bh));
  DxFrame& p = path[level - 1];
  char* pb = p.bh.data();
  size_t pc = get16(pb, p.entries + 2);
  size_t at = p.at + 1;
  std::memmove(pb + p.entries + (at + 1) * 8, pb + p.entries + at * 8, (pc - at) * 8);
  put32(pb, p.entries + at * 8, hash2);
  put32(pb, p.entries + at * 8 + 4, static_cast<uint32_t>(nl));
  put16(pb, p.entries + 2, static_cast<uint16_t>(pc + 1));
  set_dx_csum(pb, p.entries);
  return m.dirty_meta(p.bh);
}

// Adds an entry to an indexed directory: into its leaf, splitting the
// leaf (and the index above it) when full. Each structural change starts
// the walk again from the root.
Result<void> Ext2Node::dx_add(std::string_view name, uint32_t ino, uint8_t ft) {
  Ext2Mount& m = em();
  for (int round = 0; round < 8; round++) {
    DxFrame path[3];
    uint32_t version;
    {
      Mapping map = TRY(bmap(0));
      if (!map.pblk) return m.corrupt("hole in a directory", ino_);
      BufRef rb = TRY(m.bread(map.pblk));
      version = static_cast<uint8_t>(rb.data()[kDxRootInfo + 4]);
    }
    uint32_t hash = TRY(dx_hash(name, static_cast<uint8_t>(version)));
    int levels = TRY(dx_probe(hash, path, version));
    uint64_t lblk = path[levels].block();
    Mapping map = TRY(bmap(lblk));
    if (!map.pblk) return m.corrupt("hole in a directory", ino_);
    BufRef leaf = TRY(m.bread(map.pblk));
    if (leaf_insert(leaf.data(), name, ino, ft)) return m.dirty_meta(leaf);
    DxFrame& f = path[levels];
    if (get16(f.bh.data(), f.entries + 2) == get16(f.bh.data(), f.entries)) {
      TRY(dx_grow(path, levels));
      continue;
    }
    TRY(dx_split_leaf(path, levels, static_cast<uint8_t>(version), leaf, lblk));
  }
  return m.corrupt("hash tree insertion does not converge", ino_);
}

// A full one-block directory becomes indexed: its entries move to a new
// leaf (block 1) and block 0 becomes the root over it.
Result<void> Ext2Node::make_indexed() {
  Ext2Mount& m = em();
  uint32_t bs = m.geo().block_size;
  Mapping map = TRY(bmap(0));
  if (!map.pblk) return m.corrupt("hole in a directory", ino_);
  BufRef rb = TRY(m.bread(map.pblk));
  char* root = rb.data();
  TRY(check_dirent(root, 0, bs, 0));
  if (rec_len(root, 0) != 12) return err(ENOSPC);  // "." not in its usual form: stay linear
  TRY(check_dirent(root, 12, bs, 0));
  uint32_t dotdot_rec = rec_len(root, 12);
  uint64_t lblk;
  BufRef lb = TRY(append_dir_block(lblk));
  char* leaf = lb.data();
  // The entries after ".." move as they are (rec_len chain and all); the
  // last one then spans to the leaf's end.
  size_t end = usable_end();
  if (dotdot_rec < dirent_len(2) || 12 + dotdot_rec > end) return m.corrupt("bad \"..\" entry", ino_);
  size_t moved = end - 12 - dotdot_rec;
  if (moved == 0) {
    put_rec_len(leaf, 0, static_cast<uint32_t>(end));
  } else {
    std::memcpy(leaf, root + 12 + dotdot_rec, moved);
    size_t pos = 0, last = 0;
    while (pos < moved) {
      TRY(check_dirent(leaf, pos, moved, lblk));
      last = pos;
      pos += rec_len(leaf, pos);
    }
    put_rec_len(leaf, last, static_cast<uint32_t>(end - last));
  }
  set_leaf_csum(leaf);
  TRY(m.dirty_meta(lb));
  // Block 0: "." and "..", ".." spanning the rest; the root info; one
  // entry (hash 0 -> leaf).
  put_rec_len(root, 12, bs - 12);
  std::memset(root + 12 + dirent_len(2), 0, bs - 12 - dirent_len(2));
  put32(root, kDxRootInfo, 0);
  root[kDxRootInfo + 4] = static_cast<char>(m.geo().def_hash_version);
  root[kDxRootInfo + 5] = 8;
  root[kDxRootInfo + 6] = 0;
  root[kDxRootInfo + 7] = 0;
  put16(root, kDxRootEntries, static_cast<uint16_t>(dx_limit(true)));
  put16(root, kDxRootEntries + 2, 1);
  put32(root, kDxRootEntries + 4, static_cast<uint32_t>(lblk));
  set_dx_csum(root, kDxRootEntries);
  TRY(m.dirty_meta(rb));
  put32(raw_, ino::kFlags, flags() | kFlIndex);
  return write_inode();
}

}  // namespace rump
