// ext2/3/4 block mapping changes: allocating blocks for writes into
// extent trees (any depth: leaves and index nodes split, the root grows)
// and indirect block maps, and freeing blocks past a new end.
//
// Truncation of an extent tree trims it from its end, a leaf (or part of
// one) per step, freeing tree blocks left empty, so that each step is a
// small transaction and a long cut takes several (free_from). An indirect
// map is cut in place (truncation and punching alike), block by block,
// indirect blocks left empty freed with their pointers, a step ending
// whenever the running transaction is full. Punching a hole in an extent
// tree rebuilds the mapping: it collects what stays, frees every tree
// block and every block of the range, and inserts the kept runs again
// (inserting merges neighbours, so the result is compact).
#include <cstring>

#include "fs/ext2/crc.h"
#include "fs/ext2/ext2.h"
#include "kern/kernel.h"

namespace rump {

using namespace ext2;

namespace {

struct Run {
  uint64_t lblk, pblk;
  uint32_t len;
  bool unwritten;
};

// One node on the way down an extent tree.
struct Level {
  char* node = nullptr;
  BufRef buf;  // empty for the root in the inode
  uint64_t blk = 0;
  int idx = -1;
};

uint16_t entries(const char* n) { return get16(n, 2); }
uint16_t max_entries(const char* n) { return get16(n, 4); }
uint16_t depth_of(const char* n) { return get16(n, 6); }
char* entry(char* n, int i) { return n + kExtentHeader + size_t(i) * kExtentEntry; }

// Where an insert into the full node path[depth] makes room: the deepest
// level up from it whose parent has room (that level splits), or 0 when
// every node up to the root is full (the root grows). It takes one new
// block there and one for each full level below it.
int split_level(const Level* path, int depth) {
  int l = depth;
  while (l > 0 && entries(path[l - 1].node) == max_entries(path[l - 1].node)) l--;
  return l;
}

void set_leaf(char* e, uint64_t lblk, uint64_t pblk, uint32_t len, bool unwritten) {
  put32(e, 0, static_cast<uint32_t>(lblk));
  put16(e, 4, static_cast<uint16_t>(unwritten ? len + kExtentInitMax : len));
  put16(e, 6, static_cast<uint16_t>(pblk >> 32));
  put32(e, 8, static_cast<uint32_t>(pblk));
}
void set_index(char* e, uint64_t lblk, uint64_t child) {
  put32(e, 0, static_cast<uint32_t>(lblk));
  put32(e, 4, static_cast<uint32_t>(child));
  put16(e, 8, static_cast<uint16_t>(child >> 32));
  put16(e, 10, 0);
}
uint64_t leaf_pblk(const char* e) { return get32(e, 8) | uint64_t{get16(e, 6)} << 32; }
uint32_t leaf_len(const char* e) {
  uint32_t l = get16(e, 4);
  return l > kExtentInitMax ? l - kExtentInitMax : l;
}
bool leaf_unwritten(const char* e) { return get16(e, 4) > kExtentInitMax; }
uint64_t index_child(const char* e) { return get32(e, 4) | uint64_t{get16(e, 8)} << 32; }

// A changed tree block: its checksum (metadata_csum) and the journal. The
// root in the inode goes with the inode.
Result<void> seal_node(Ext2Mount& m, uint32_t seed, Level& l) {
  if (!l.buf) return {};
  if (m.has_csum()) {
    size_t tail = kExtentHeader + size_t{max_entries(l.node)} * kExtentEntry;
    put32(l.node, tail, crc32c(seed, l.node, tail));
  }
  return m.dirty_meta(l.buf);
}

// Reads the child of index entry `at` of path[depth] into path[depth + 1],
// checking its header against its parent's.
Result<void> descend(Ext2Mount& m, uint32_t ino, Level* path, int depth, int at) {
  char* n = path[depth].node;
  path[depth].idx = at;
  uint64_t child = index_child(entry(n, at));
  if (child < m.geo().first_data_block || child >= m.geo().blocks_count)
    return m.corrupt("extent index points outside", ino);
  Level& next = path[depth + 1];
  next.buf = TRY(m.bread(child));
  next.blk = child;
  next.node = next.buf.data();
  if (kExtentHeader + size_t{max_entries(next.node)} * kExtentEntry > m.geo().block_size ||
      depth_of(next.node) + 1 != depth_of(n))
    return m.corrupt("bad extent header", ino);
  return {};
}

}  // namespace

// --- extent trees

Result<void> Ext2Node::insert_extent(uint64_t lblk, uint64_t pblk, uint32_t len, bool unwritten,
                                     SpareBlocks* spares) {
  Ext2Mount& m = em();
  const uint32_t bs = m.geo().block_size;
  const uint32_t seed = csum_seed();
  auto seal = [&](Level& l) { return seal_node(m, seed, l); };
  for (int round = 0; round < 64; round++) {
    Level path[7];
    int depth = 0;
    path[0].node = raw_ + ino::kBlock;
    for (;;) {
      char* n = path[depth].node;
      if (get16(n, 0) != kExtentMagic || entries(n) > max_entries(n)) return m.corrupt("bad extent header", ino_);
      if (depth_of(n) == 0) break;
      if (depth >= 5 || entries(n) == 0) return m.corrupt("bad extent index", ino_);
      int idx = 0;
      for (int i = 0; i < entries(n); i++)
        if (get32(entry(n, i), 0) <= lblk) idx = i;
      TRY(descend(m, ino_, path, depth, idx));
      depth++;
    }
    Level& leaf = path[depth];
    char* n = leaf.node;
    int cnt = entries(n);
    int pos = 0;
    while (pos < cnt && get32(entry(n, pos), 0) <= lblk) pos++;
    // Merge with the run before.
    if (pos > 0) {
      char* p = entry(n, pos - 1);
      uint64_t pl = get32(p, 0);
      uint32_t plen = leaf_len(p);
      uint32_t max = unwritten ? kExtentInitMax - 1 : kExtentInitMax;
      if (leaf_unwritten(p) == unwritten && pl + plen == lblk && leaf_pblk(p) + plen == pblk && plen + len <= max) {
        set_leaf(p, pl, leaf_pblk(p), plen + len, unwritten);
        return seal(leaf);
      }
    }
    auto fix_keys = [&]() -> Result<void> {
      for (int i = depth - 1; i >= 0; i--) {
        char* e = entry(path[i].node, path[i].idx);
        if (get32(e, 0) > lblk) {
          put32(e, 0, static_cast<uint32_t>(lblk));
          TRY(seal(path[i]));
        }
      }
      return {};
    };
    if (cnt < max_entries(n)) {
      std::memmove(entry(n, pos + 1), entry(n, pos), size_t(cnt - pos) * kExtentEntry);
      set_leaf(entry(n, pos), lblk, pblk, len, unwritten);
      put16(n, 2, static_cast<uint16_t>(cnt + 1));
      TRY(seal(leaf));
      if (pos == 0) TRY(fix_keys());
      return {};
    }
    // Full: split the deepest full node whose parent has room, or grow
    // the root when every node up to it is full.
    int l = split_level(path, depth);
    uint64_t goal = leaf.blk ? leaf.blk : pblk;
    uint64_t nb = 0;
    BufRef b;
    if (spares != nullptr && spares->n > 0) {
      spares->n--;
      nb = spares->blk[spares->n];
      b = std::move(spares->buf[spares->n]);
    } else {
      nb = TRY(m.alloc_block(goal));
      Result<BufRef> got = m.bc_.getblk(m.dev_, nb, bs);
      if (!got.ok()) {
        m.undo_blocks(nb, 1);
        return err(got.error());
      }
      b = std::move(*got);
    }
    add_blocks(1);
    char* nn = b.data();
    std::memset(nn, 0, bs);
    if (l == 0) {
      // Grow: the root's entries move to the new block, the root becomes
      // an index with one entry one level higher.
      char* root = path[0].node;
      std::memcpy(nn, root, kExtentHeader + size_t{entries(root)} * kExtentEntry);
      put16(nn, 4, static_cast<uint16_t>((bs - kExtentHeader) / kExtentEntry));
      uint64_t first = entries(root) ? get32(entry(root, 0), 0) : lblk;
      uint16_t d = depth_of(root);
      put16(root, 2, 1);
      put16(root, 6, static_cast<uint16_t>(d + 1));
      set_index(entry(root, 0), first, nb);
      Level nl;
      nl.node = nn;
      nl.buf = std::move(b);
      TRY(seal(nl));
      continue;
    }
    // Split path[l] (full) into itself and the new block; its parent
    // path[l - 1] has room for the new index entry.
    Level& full = path[l];
    int fc = entries(full.node);
    int keep = fc / 2;
    put16(nn, 0, kExtentMagic);
    put16(nn, 2, static_cast<uint16_t>(fc - keep));
    put16(nn, 4, static_cast<uint16_t>((bs - kExtentHeader) / kExtentEntry));
    put16(nn, 6, depth_of(full.node));
    std::memcpy(entry(nn, 0), entry(full.node, keep), size_t(fc - keep) * kExtentEntry);
    put16(full.node, 2, static_cast<uint16_t>(keep));
    uint64_t key = get32(entry(nn, 0), 0);
    TRY(seal(full));
    Level nl;
    nl.node = nn;
    nl.buf = std::move(b);
    TRY(seal(nl));
    Level& parent = path[l - 1];
    char* pn = parent.node;
    int pc = entries(pn);
    int at = parent.idx + 1;
    std::memmove(entry(pn, at + 1), entry(pn, at), size_t(pc - at) * kExtentEntry);
    set_index(entry(pn, at), key, nb);
    put16(pn, 2, static_cast<uint16_t>(pc + 1));
    TRY(seal(parent));
  }
  return m.corrupt("extent insert does not converge", ino_);
}

// --- indirect block maps

Result<void> Ext2Node::insert_indirect(uint64_t lblk, uint64_t pblk) {
  Ext2Mount& m = em();
  uint64_t per = m.geo().block_size / 4;
  if (lblk < 12) {
    put32(raw_, ino::kBlock + lblk * 4, static_cast<uint32_t>(pblk));
    return {};
  }
  IndirectSlot where;
  if (!indirect_slot(lblk - 12, per, where)) return err(EFBIG);
  lblk = where.off;
  int levels = where.levels;
  uint64_t span = where.span;
  // The slot holding the pointer at each level: the inode, then blocks.
  char* slot_base = raw_;
  size_t slot = ino::kBlock + size_t(11 + levels) * 4;
  BufRef holder;
  for (int depth = 0;; depth++) {
    uint32_t p = get32(slot_base, slot);
    if (p == 0) {
      // The room a page reserved for this map block is used now; kept
      // for the next try if the block does not get linked.
      uint64_t key = index_key(where.levels, depth, where.off / span);
      bool promised = take_promise(key);
      auto keep_promise = [&] {
        if (!promised) return;
        m.reserved_ += 1;
        promised_.push_back(key);  // room left by the erase
      };
      Result<uint64_t> got = m.alloc_block(pblk);
      if (!got.ok()) {
        keep_promise();
        return err(got.error());
      }
      uint64_t nb = got.value();
      // Until it is linked below, a failure frees it again (else a block
      // marked in use that nothing maps).
      Result<BufRef> z = m.bc_.getblk(m.dev_, nb, m.geo().block_size);
      Result<void> d;
      if (!z.ok()) {
        d = err(z.error());
      } else {
        std::memset(z->data(), 0, m.geo().block_size);
        d = m.dirty_meta(*z);
      }
      if (!d.ok()) {
        m.undo_blocks(nb, 1);
        keep_promise();
        return d;
      }
      add_blocks(1);
      put32(slot_base, slot, static_cast<uint32_t>(nb));
      if (holder) TRY(m.dirty_meta(holder));
      p = static_cast<uint32_t>(nb);
    } else if (p >= m.geo().blocks_count) {
      return m.corrupt("block map points outside the file system", ino_);
    }
    span /= per;
    BufRef b = TRY(m.bread(p));
    holder = std::move(b);
    slot_base = holder.data();
    slot = (lblk / span) * 4;
    lblk %= span;
    if (--levels == 0) {
      put32(slot_base, slot, static_cast<uint32_t>(pblk));
      return m.dirty_meta(holder);
    }
  }
}

// --- truncation

Result<void> Ext2Node::free_from(uint64_t first, BufRef* held) {
  if ((flags() & kFlInlineData) ||
      (type() == VType::kLnk && size() < ino::kBlockBytes && get32(raw_, ino::kBlocksLo) == 0))
    return free_range(first, ~uint64_t{0});
  // From the end of the map, a leaf (or part of one) per step; when the
  // running transaction is full the freeing goes on in the next one, as
  // Linux's ext4_truncate restarts its handle. Meanwhile the inode is on
  // the orphan list (with its new size written), so that a crash between
  // two steps is finished at the next mount.
  return free_in_steps(first, ~uint64_t{0}, true, held);
}

Result<void> Ext2Node::free_in_steps(uint64_t first, uint64_t end, bool orphan, BufRef* held) {
  Ext2Mount& m = em();
  m.lock_.assert_held();
  // Blocks freed are gone from the inode's copy on disk too, even when a
  // step fails half-way: the copy's block is held for that write (by the
  // caller, if it holds it already).
  BufRef own;
  if (held == nullptr) own = TRY(inode_block());
  BufRef& ib = held != nullptr ? *held : own;
  const bool extents = flags() & kFlExtents;
  Result<void> r;
  for (;;) {
    Result<bool> more = extents ? trim_extents(first, end) : cut_indirect_map(first, end);
    if (!more.ok()) {
      r = err(more.error());
      break;
    }
    if (!*more) break;
    if (!m.step_due()) continue;
    if (orphan && !m.on_orphan_list(ino_)) r = m.orphan_add(*this);
    if (r.ok()) r = write_inode_to(ib);
    if (r.ok()) r = m.begin_op();
    if (!r.ok()) break;
  }
  if (!r.ok()) (void)write_inode_to(ib);
  return r;
}

Result<bool> Ext2Node::trim_extents(uint64_t first, uint64_t end) {
  Ext2Mount& m = em();
  const uint32_t seed = csum_seed();
  // Down to the leaf holding the last extent that starts before end: at
  // each level the last entry whose key is below end.
  Level path[7];
  int depth = 0;
  path[0].node = raw_ + ino::kBlock;
  for (;;) {
    char* n = path[depth].node;
    if (get16(n, 0) != kExtentMagic || entries(n) > max_entries(n)) return m.corrupt("bad extent header", ino_);
    if (depth_of(n) == 0 || entries(n) == 0) break;
    if (depth >= 5) return m.corrupt("bad extent index", ino_);
    int at = entries(n) - 1;
    while (at > 0 && get32(entry(n, at), 0) >= end) at--;
    if (get32(entry(n, at), 0) >= end) return false;  // the whole tree lies past the range
    TRY(descend(m, ino_, path, depth, at));
    depth++;
  }
  char* n = path[depth].node;
  if (depth_of(n) != 0 && entries(n) == 0 && depth == 0) {
    // An index root left with no entry: an empty tree.
    put16(n, 6, 0);
    return false;
  }
  bool changed = false, done = false;
  int failed = 0;            // the errno that ended the step early
  bool first_moved = false;  // the leaf's first key changed (its parents' keys follow)
  Run tail{};                // the part past a hole punched inside one extent
  SpareBlocks spares;        // tree blocks for the tail's place; those left go back
  struct SparesBack {
    Ext2Mount& m;
    SpareBlocks& s;
    ~SparesBack() {
      while (s.n > 0) {
        s.n--;
        // Never written: the buffer goes unwritten.
        if (s.buf[s.n]) m.bc_.discard(std::move(s.buf[s.n]));
        m.undo_blocks(s.blk[s.n], 1);
      }
    }
  } spares_back{m, spares};
  // The leaf's extents from the last one starting before end back: freed
  // (what lies in [first, end)), cut, or split around the hole.
  int i = entries(n) - 1;
  while (i >= 0 && get32(entry(n, i), 0) >= end) i--;
  for (; i >= 0 && depth_of(n) == 0; i--) {
    char* e = entry(n, i);
    uint64_t start = get32(e, 0), pb = leaf_pblk(e);
    uint32_t len = leaf_len(e);
    bool unwritten = leaf_unwritten(e);
    if (start + len <= first) {
      done = true;
      break;
    }
    if (len == 0 || pb < m.geo().first_data_block || pb + len > m.geo().blocks_count)
      return m.corrupt("extent points outside the file system", ino_);
    uint64_t lo = start > first ? start : first;
    uint64_t hi = start + len < end ? start + len : end;
    if (lo > start && hi < start + len && entries(n) == max_entries(n)) {
      // A hole inside this extent of a full leaf: the tail needs a place
      // that takes new tree blocks (as insert_extent splits or grows:
      // split_level). They are taken now, before anything changes, so
      // that a full file system is ENOSPC with the file as it was (a tail
      // left without a place would lose its bytes). Nothing of this step
      // has changed yet: the hole lies in this one extent.
      int need = depth - split_level(path, depth) + 1;
      Ext2Mount::NoFail nofail(m);
      while (spares.n < need) {
        Result<uint64_t> b = m.alloc_block(path[depth].blk ? path[depth].blk : pb);
        if (!b.ok()) return err(b.error());
        spares.blk[spares.n++] = *b;
        spares.buf[spares.n - 1] = TRY(m.bc_.getblk(m.dev_, *b, m.geo().block_size));
      }
    }
    if (Result<void> fr = m.free_run(pb + (lo - start), hi - lo); !fr.ok()) {
      // Nothing of this extent changed; what this step changed before it
      // is sealed below, and the error returned then.
      failed = fr.error();
      break;
    }
    add_blocks(-static_cast<int64_t>(hi - lo));
    changed = true;
    if (lo > start && hi < start + len) {
      // The hole inside this extent: the head stays here, the tail goes
      // in after it (in place when the leaf has room).
      set_leaf(e, start, pb, static_cast<uint32_t>(lo - start), unwritten);
      Run t{hi, pb + (hi - start), static_cast<uint32_t>(start + len - hi), unwritten};
      if (entries(n) < max_entries(n)) {
        std::memmove(entry(n, i + 2), entry(n, i + 1), size_t(entries(n) - i - 1) * kExtentEntry);
        set_leaf(entry(n, i + 1), t.lblk, t.pblk, t.len, t.unwritten);
        put16(n, 2, static_cast<uint16_t>(entries(n) + 1));
      } else {
        tail = t;
      }
      done = true;
      break;
    }
    if (lo > start) {  // the head stays
      set_leaf(e, start, pb, static_cast<uint32_t>(lo - start), unwritten);
      done = true;
      break;
    }
    if (hi < start + len) {  // the tail stays
      set_leaf(e, hi, pb + (hi - start), static_cast<uint32_t>(start + len - hi), unwritten);
      if (i == 0) first_moved = true;
    } else {  // all of it goes
      std::memmove(e, entry(n, i + 1), size_t(entries(n) - i - 1) * kExtentEntry);
      put16(n, 2, static_cast<uint16_t>(entries(n) - 1));
      if (i == 0) first_moved = true;
    }
    if (lo == first) {
      done = true;
      break;
    }
    if (m.step_due()) break;
  }
  // Tree blocks left empty go, with their entries in their parents. One
  // that cannot be freed stays, empty (a valid leaf), and what this step
  // changed is sealed all the same.
  int l = depth;
  while (l > 0 && entries(path[l].node) == 0) {
    if (Result<void> fr = m.free_block(path[l].blk); !fr.ok()) {
      if (!failed) failed = fr.error();
      break;
    }
    add_blocks(-1);
    path[l].buf.reset();
    char* parent = path[l - 1].node;
    int at = path[l - 1].idx;
    std::memmove(entry(parent, at), entry(parent, at + 1), size_t(entries(parent) - at - 1) * kExtentEntry);
    put16(parent, 2, static_cast<uint16_t>(entries(parent) - 1));
    first_moved = at == 0;
    changed = true;
    l--;
  }
  if (l == 0 && entries(path[0].node) == 0) put16(path[0].node, 6, 0);  // the tree is empty
  // A node whose first key changed: the key of its entry in its parent
  // follows, up as far as it is the parent's first entry too.
  int top = l;
  for (int k = l; first_moved && k > 0 && entries(path[k].node) > 0; k--) {
    put32(entry(path[k - 1].node, path[k - 1].idx), 0, get32(entry(path[k].node, 0), 0));
    top = k - 1;
    first_moved = path[k - 1].idx == 0;
  }
  if (changed)
    for (int k = top; k <= l; k++) TRY(seal_node(m, seed, path[k]));
  if (failed) return err(failed);
  if (!changed) return false;
  if (tail.len) {
    // The path's buffers stay referenced, so that the insert finds them
    // cached (no read, no memory) now that the head is cut.
    Result<void> r = insert_extent(tail.lblk, tail.pblk, tail.len, tail.unwritten, &spares);
    if (!r.ok()) {
      // The tree could not take the tail (a corrupt tree; room was taken
      // beforehand): its blocks go too, so that nothing is left allocated
      // without a mapping.
      m.undo_blocks(tail.pblk, tail.len);
      add_blocks(-static_cast<int64_t>(tail.len));
      return err(r.error());
    }
  }
  return !done;
}

Result<void> Ext2Node::free_range(uint64_t first, uint64_t end) {
  if (flags() & kFlInlineData) return err(EOPNOTSUPP);
  if (type() == VType::kLnk && size() < ino::kBlockBytes && get32(raw_, ino::kBlocksLo) == 0) return {};
  // From the hole's end back, a leaf (or part of one) per step; indirect
  // maps are cut in place, each step a consistent map (what it freed is
  // gone from the map in the same transaction), so that a cut longer than
  // the log takes several.
  return free_in_steps(first, end, false, nullptr);
}

Result<bool> Ext2Node::cut_indirect(uint32_t p, int level, uint64_t base, uint64_t first, uint64_t end, bool& stop) {
  Ext2Mount& m = em();
  if (p < m.geo().first_data_block || p >= m.geo().blocks_count)
    return m.corrupt("block map points outside the file system", ino_);
  const uint64_t per = m.geo().block_size / 4;
  uint64_t span = 1;  // logical blocks under each pointer of p
  for (int i = 1; i < level; i++) span *= per;
  BufRef b = TRY(m.bread(p));
  uint64_t from = first > base ? (first - base) / span : 0;
  uint64_t to = end - base >= per * span ? per : (end - base + span - 1) / span;
  bool changed = false;
  // A failure half-way keeps what was cut before it: the block is
  // journaled with the pointers cleared so far, as the bitmaps are.
  Result<void> r;
  for (uint64_t i = from; i < to && !stop; i++) {
    uint32_t q = get32(b.data(), i * 4);
    if (!q) continue;
    if (level == 1) {
      if (q < m.geo().first_data_block || q >= m.geo().blocks_count) {
        r = m.corrupt("block map points outside the file system", ino_);
        break;
      }
    } else {
      Result<bool> empty = cut_indirect(q, level - 1, base + i * span, first, end, stop);
      if (!empty.ok()) {
        r = err(empty.error());
        break;
      }
      if (!*empty) continue;  // the child keeps pointers (journaled by the call)
    }
    r = m.free_block(q);
    if (!r.ok()) break;
    add_blocks(-1);
    put32(b.data(), i * 4, 0);
    changed = true;
    if (m.step_due()) stop = true;
  }
  bool empty = true;
  for (uint64_t i = 0; i < per && empty; i++) empty = get32(b.data(), i * 4) == 0;
  // An emptied block is journaled too: should its freeing fail, the
  // pointer to it stays, and what it points to must be nothing.
  if (changed) {
    Result<void> d = m.dirty_meta(b);
    if (r.ok()) r = d;
  }
  TRY(r);
  return empty;  // empty: the caller frees it
}

Result<bool> Ext2Node::cut_indirect_map(uint64_t first, uint64_t end) {
  Ext2Mount& m = em();
  const uint64_t per = m.geo().block_size / 4;
  bool stop = false;
  for (uint64_t l = first; l < 12 && l < end && !stop; l++) {
    uint32_t p = get32(raw_, ino::kBlock + l * 4);
    if (!p) continue;
    if (p < m.geo().first_data_block || p >= m.geo().blocks_count)
      return m.corrupt("block map points outside the file system", ino_);
    TRY(m.free_block(p));
    add_blocks(-1);
    put32(raw_, ino::kBlock + l * 4, 0);
    if (m.step_due()) stop = true;
  }
  uint64_t base = 12, span = per;
  for (int lv = 1; lv <= 3 && !stop; lv++, base += span, span *= per) {
    size_t slot = ino::kBlock + size_t(11 + lv) * 4;
    uint32_t p = get32(raw_, slot);
    if (!p || first >= base + span || end <= base) continue;
    if (!TRY(cut_indirect(p, lv, base, first, end, stop))) continue;
    TRY(m.free_block(p));
    add_blocks(-1);
    put32(raw_, slot, 0);
    if (m.step_due()) stop = true;
  }
  return stop;
}

Result<uint64_t> Ext2Node::map_run_for_write(uint64_t lblk, uint64_t want, uint64_t& count, bool& fresh) {
  count = 1;
  fresh = false;
  Mapping map = TRY(bmap(lblk));
  if (map.pblk && !map.unwritten) {
    count = map.count < want ? map.count : want;
    if (count == 0) count = 1;
    return map.pblk;
  }
  if (map.pblk || map.unwritten || !(flags() & kFlExtents) || want <= 1) return map_for_write(lblk, fresh);
  // A hole of an extent-mapped file: as much of it as asked for, in one
  // run of blocks and one extent (at most an extent's length).
  Ext2Mount& m = em();
  uint64_t n = want;
  if (map.count && map.count < n) n = map.count;
  if (n > kExtentInitMax) n = kExtentInitMax;
  if (lblk >= (uint64_t{1} << 32) - 1) return err(EFBIG);
  if (n > (uint64_t{1} << 32) - 1 - lblk) n = (uint64_t{1} << 32) - 1 - lblk;
  uint64_t goal = 0;
  if (lblk > 0) {
    Mapping prev = TRY(bmap(lblk - 1));
    if (prev.pblk) goal = prev.pblk + 1;
  }
  if (!goal) goal = m.group_first_block((ino_ - 1) / m.geo().inodes_per_group);
  uint32_t got = 0;
  uint64_t pb = TRY(m.alloc_run(goal, static_cast<uint32_t>(n), got));
  add_blocks(got);
  Result<void> r = insert_extent(lblk, pb, got, false);
  if (!r.ok()) {
    m.undo_blocks(pb, got);
    add_blocks(-static_cast<int64_t>(got));
    return err(r.error());
  }
  count = got;
  fresh = true;
  return pb;
}

Result<uint64_t> Ext2Node::map_for_write(uint64_t lblk, bool& fresh) {
  fresh = false;
  Mapping map = TRY(bmap(lblk));
  if (map.pblk) return map.pblk;
  if (map.unwritten) {
    fresh = true;
    return mark_written(lblk);
  }
  Ext2Mount& m = em();
  uint64_t per = m.geo().block_size / 4;
  if (!(flags() & kFlExtents) && lblk >= 12 + per + per * per + per * per * per) return err(EFBIG);
  if ((flags() & kFlExtents) && lblk >= (uint64_t{1} << 32) - 1) return err(EFBIG);
  uint64_t goal = 0;
  if (lblk > 0) {
    Mapping prev = TRY(bmap(lblk - 1));
    if (prev.pblk) goal = prev.pblk + 1;
  }
  if (!goal) {
    uint32_t g = (ino_ - 1) / m.geo().inodes_per_group;
    goal = m.group_first_block(g);
  }
  uint64_t pb = TRY(m.alloc_block(goal));
  add_blocks(1);
  Result<void> r = (flags() & kFlExtents) ? insert_extent(lblk, pb, 1, false) : insert_indirect(lblk, pb);
  if (!r.ok()) {
    m.undo_blocks(pb, 1);
    add_blocks(-1);
    return err(r.error());
  }
  fresh = true;
  return pb;
}

}  // namespace rump

namespace rump {

using namespace ext2;

// A write into an unwritten extent (fallocate): the extent's blocks up to
// and including lblk become written (those before lblk zeroed: they read
// as zeros and are now below the file's new end), the rest stays
// unwritten as an extent of its own. Returns lblk's block.
Result<uint64_t> Ext2Node::mark_written(uint64_t lblk) {
  Ext2Mount& m = em();
  const uint32_t bs = m.geo().block_size;
  char* n = raw_ + ino::kBlock;
  BufRef hold;
  for (int level = 0;; level++) {
    if (level > 5 || get16(n, 0) != kExtentMagic || entries(n) > max_entries(n) || entries(n) == 0)
      return m.corrupt("bad extent header", ino_);
    int idx = 0;
    for (int i = 0; i < entries(n); i++)
      if (get32(entry(n, i), 0) <= lblk) idx = i;
    char* e = entry(n, idx);
    if (depth_of(n) > 0) {
      hold = TRY(m.bread(index_child(e)));
      n = hold.data();
      if (kExtentHeader + size_t{max_entries(n)} * kExtentEntry > bs) return m.corrupt("bad extent header", ino_);
      continue;
    }
    uint64_t start = get32(e, 0), pstart = leaf_pblk(e);
    uint32_t len = leaf_len(e);
    if (!leaf_unwritten(e) || lblk < start || lblk >= start + len) return m.corrupt("extent changed under us", ino_);
    uint32_t head = static_cast<uint32_t>(lblk + 1 - start);
    for (uint32_t b = 0; b + 1 < head; b++) {
      BufRef z = TRY(m.bc_.getblk(m.dev_, pstart + b, bs));
      std::memset(z.data(), 0, bs);
      TRY(m.dirty_data(z));
    }
    set_leaf(e, start, pstart, head, false);
    if (hold) {
      if (m.has_csum()) {
        size_t tail = kExtentHeader + size_t{max_entries(n)} * kExtentEntry;
        put32(n, tail, crc32c(csum_seed(), n, tail));
      }
      TRY(m.dirty_meta(hold));
    }
    hold.reset();
    if (len > head) TRY(insert_extent(lblk + 1, pstart + head, len - head, true));
    return pstart + (lblk - start);
  }
}

// fallocate: mode 0 and KEEP_SIZE allocate the holes of the range as
// unwritten extents (they read as zeros; mode 0 then extends the size),
// PUNCH_HOLE frees the whole blocks of the range and zeroes the partial
// ones at its edges. Extent-mapped files only, as Linux's ext4 (punching
// works on block maps too).
Result<void> Ext2Node::fallocate(int mode, uint64_t off, uint64_t len) {
  if (type() != VType::kReg) return err(ENODEV);
  Ext2Mount& m = em();
  if (!m.writable()) return err(EROFS);
  if ((flags() & kFlImmutable) || ((flags() & kFlAppend) && (mode & ~kFallocKeepSize))) return err(EPERM);
  TRY(uninline());
  if ((flags() & kFlImmutable) || ((flags() & kFlAppend) && (mode & ~kFallocKeepSize))) return err(EPERM);
  bool extents = flags() & kFlExtents;
  if (!extents && !(mode & kFallocPunchHole)) return err(EOPNOTSUPP);
  const uint32_t bs = m.geo().block_size;
  uint64_t end = off + len;
  uint64_t max = extents ? (uint64_t{1} << 32) - 1 : 12 + uint64_t{bs / 4} + uint64_t{bs / 4} * (bs / 4) +
                                                         uint64_t{bs / 4} * (bs / 4) * (bs / 4);
  if (end < off || (end + bs - 1) / bs > max) return err(EFBIG);
  TRY(m.begin_op());
  // Whatever the map has gained or lost by a failure half-way (blocks
  // freed, blocks taken, a tree grown) reaches the inode's copy too.
  auto change = [&]() -> Result<void> {
    uint64_t sz = size();
    if (mode & kFallocPunchHole) {
      uint64_t first = (off + bs - 1) / bs, last = end / bs;  // whole blocks [first, last)
      if (first < last) TRY(free_range(first, last));
      // The partial blocks at the edges, within the file: zeros.
      auto zero = [&](uint64_t from, uint64_t to) -> Result<void> {
        if (to > sz) to = sz;
        if (from >= to) return {};
        Mapping mp = TRY(bmap(from / bs));
        if (!mp.pblk) return {};
        BufRef b = TRY(m.bread(mp.pblk));
        std::memset(b.data() + from % bs, 0, to - from);
        return m.dirty_data(b);
      };
      if (off / bs == (end - 1) / bs) {
        if (off % bs || end % bs) TRY(zero(off, end));
      } else {
        if (off % bs) TRY(zero(off, (off / bs + 1) * bs));
        if (end % bs) TRY(zero(end / bs * bs, end));
      }
    } else {
      for (uint64_t lblk = off / bs; lblk * bs < end;) {
        if (m.step_due()) {
          TRY(write_inode());
          TRY(m.begin_op());
        }
        Mapping mp = TRY(bmap(lblk));
        if (mp.pblk || mp.unwritten) {
          lblk += mp.count ? mp.count : 1;
          continue;
        }
        uint64_t goal = 0;
        if (lblk > 0) {
          Mapping prev = TRY(bmap(lblk - 1));
          if (prev.pblk) goal = prev.pblk + 1;
        }
        if (!goal) goal = m.group_first_block((ino_ - 1) / m.geo().inodes_per_group);
        uint64_t pb = TRY(m.alloc_block(goal));
        add_blocks(1);
        Result<void> r = insert_extent(lblk, pb, 1, true);
        if (!r.ok()) {
          m.undo_blocks(pb, 1);
          add_blocks(-1);
          return r;
        }
        lblk++;
      }
      if (!(mode & kFallocKeepSize) && end > sz) set_size(end);
    }
    return {};
  };
  Result<void> r = change();
  if (r.ok()) {
    timespec now = wall_timespec();
    set_time(ino::kCtime, ino::kCtimeExtra, now);
    if (!(mode & kFallocKeepSize) || (mode & kFallocPunchHole)) set_time(ino::kMtime, ino::kMtimeExtra, now);
  }
  Result<void> w = write_inode();
  return r.ok() ? w : r;
}

}  // namespace rump
