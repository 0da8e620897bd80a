// File data between the page cache (vfs/vnode_pager.h) and the device,
// with no copy in the buffer cache.
//
// read_pages maps the range and reads each run of blocks that lie next to
// each other on the device with one vectored request into the cache's
// frames. write_pages allocates what is a hole (the mapping changes are
// metadata, journaled as every other change) and writes each run with one
// vectored request before anything can commit the running transaction:
// the data is on its home blocks before the metadata pointing at it is
// committed, which is data=ordered. The inode is written once per call.
//
// The buffer cache may still hold a copy of a data block, made by the
// file system's own write path (append-only files, the zeroing done by
// truncate and fallocate): a read takes that copy instead of the device's
// bytes, a write updates it (BufCache::copy_cached, wrote_through), so
// both paths see the same bytes.
//
// Block sizes above the page size and data=journal use read and write
// instead (EOPNOTSUPP here). With inline_data, a file whose bytes fit
// its inode is kept there (write_inline) and read through read().
#include <algorithm>
#include <cstring>

#include "fs/ext2/ext2.h"
#include "kern/kernel.h"
#include "page.h"

namespace rump {

using namespace ext2;

namespace {

// Whether the n bytes at p are all zeros.
bool all_zeros(const std::byte* p, size_t n) {
  size_t i = 0;
  for (uint64_t w; i + sizeof w <= n; i += sizeof w) {
    std::memcpy(&w, p + i, sizeof w);
    if (w != 0) return false;
  }
  for (; i < n; i++)
    if (p[i] != std::byte{0}) return false;
  return true;
}

// Blocks that follow each other on the device, gathered into one request.
class BlockRun {
 public:
  BlockRun(BlockDevice& dev, uint32_t bs, bool write) : dev_(dev), bs_(bs), write_(write) {}
  // Block pblk's bytes are at p (bs bytes): joins the run, or sends the
  // run first when pblk does not continue it.
  Result<void> add(uint64_t pblk, std::byte* p) {
    if (blocks_ > 0 && (pblk != first_ + blocks_ || n_ == kMaxSegments)) TRY(submit());
    if (blocks_ == 0) first_ = pblk;
    if (n_ > 0 && static_cast<std::byte*>(seg_[n_ - 1].base) + seg_[n_ - 1].len == p) {
      seg_[n_ - 1].len += bs_;
    } else {
      seg_[n_++] = BlockDevice::Segment{p, bs_};
    }
    blocks_++;
    return {};
  }
  Result<void> submit() {
    if (blocks_ == 0) return {};
    uint64_t at = first_ * (bs_ / dev_.block_size());
    size_t n = n_;
    n_ = 0;
    blocks_ = 0;
    Result<void> r = write_ ? dev_.write_blocksv(at, seg_, n) : dev_.read_blocksv(at, seg_, n);
    if (!r.ok() && r.error() == EINVAL) return err(EIO);
    return r;
  }

 private:
  static constexpr size_t kMaxSegments = 256;
  BlockDevice& dev_;
  const uint32_t bs_;
  const bool write_;
  uint64_t first_ = 0;
  uint64_t blocks_ = 0;
  size_t n_ = 0;
  BlockDevice::Segment seg_[kMaxSegments];
};

std::byte* frame_at(std::byte* const* pages, uint64_t rel) {
  return pages[rel >> vm::kPageShift] + (rel & vm::kPageMask);
}

}  // namespace

Result<void> Ext2Node::read_pages(uint64_t off, size_t len, std::byte* const* pages) {
  if (type() != VType::kReg) return err(EINVAL);
  Ext2Mount& m = em();
  const uint32_t bs = m.geo().block_size;
  if (bs > vm::kPageSize || (flags() & kFlInlineData)) return err(EOPNOTSUPP);
  uint64_t sz = size();
  uint64_t end = off + len < sz ? off + len : sz;
  BlockRun run(m.dev_, bs, false);
  // off is page aligned and bs divides the page size: whole blocks.
  for (uint64_t pos = off; pos < end;) {
    Mapping map = TRY(bmap(pos / bs));
    uint64_t count = map.count ? map.count : 1;
    for (uint64_t i = 0; i < count && pos < end; i++, pos += bs) {
      std::byte* dst = frame_at(pages, pos - off);
      if (map.pblk == 0 || map.unwritten) {
        std::memset(dst, 0, bs);
        continue;
      }
      uint64_t pb = map.pblk + i;
      if (m.bc_.copy_cached(m.dev_, pb, bs, dst)) continue;
      TRY(run.add(pb, dst));
    }
  }
  TRY(run.submit());
  // What the frames hold past the end of the file: zeros.
  uint64_t total = (len + vm::kPageMask) & ~vm::kPageMask;
  for (uint64_t rel = end > off ? end - off : 0; rel < total;) {
    uint64_t n = vm::kPageSize - (rel & vm::kPageMask);
    std::memset(frame_at(pages, rel), 0, n);
    rel += n;
  }
  return {};
}

Result<void> Ext2Node::write_pages(uint64_t off, size_t len, std::byte* const* pages) {
  if (type() != VType::kReg) return err(EINVAL);
  Ext2Mount& m = em();
  if (!m.writable()) return err(EROFS);
  if (flags() & kFlImmutable) return err(EPERM);
  const uint32_t bs = m.geo().block_size;
  bool journals_data = m.journaling() && m.journal_->mode() == DataMode::kJournal;
  if (bs > vm::kPageSize || journals_data) return err(EOPNOTSUPP);
  TRY(m.begin_op());
  // Write-back's blocks (data, extent tree, the block an inline file moves
  // out to) may take the metadata pool (ext4's
  // EXT4_GET_BLOCKS_METADATA_NOFAIL).
  Ext2Mount::NoFail nofail(m);
  uint64_t sz = size();
  if (off >= sz) return {};
  // Small files live in the inode (inline_data): from page 0 on, its
  // frame holds every byte.
  if (off == 0 && sz <= vm::kPageSize) {
    if (TRY(write_inline(pages))) return {};
  } else {
    TRY(uninline());
  }
  uint64_t end = off + len < sz ? off + len : sz;
  BlockRun run(m.dev_, bs, true);
  // The last block, when the file ends inside it, goes out from here with
  // zeros past the end (the frame may hold bytes a mapping stored there).
  std::byte* tail = nullptr;
  bool changed = false;
  bool retried = false;
  Result<void> r;
  for (uint64_t pos = off; pos < end && r.ok();) {
    if (m.step_due()) {
      // A commit may come: the blocks mapped so far get their data first.
      r = run.submit();
      if (r.ok() && changed) r = write_inode();
      if (r.ok()) r = m.begin_op();
      if (!r.ok()) break;
    }
    bool fresh = false;
    uint64_t count = 1;
    Result<uint64_t> pb = map_run_for_write(pos / bs, (end - pos + bs - 1) / bs, count, fresh);
    if (!pb.ok() && pb.error() == ENOSPC && !retried) {
      // Blocks freed by the running transaction (an unlink, a truncate)
      // are allocatable once it commits: commit (the data mapped so far
      // first) and try again, as ext4 does.
      retried = true;
      r = run.submit();
      if (r.ok() && changed) r = write_inode();
      Result<bool> c = r.ok() ? m.commit_for_space() : Result<bool>(false);
      if (!c.ok()) r = err(c.error());
      if (r.ok() && c.value()) continue;
    }
    if (!pb.ok()) {
      if (r.ok()) r = err(pb.error());
      break;
    }
    changed |= fresh;
    for (uint64_t i = 0; i < count && pos < end && r.ok(); i++, pos += bs) {
      std::byte* src = frame_at(pages, pos - off);
      // (Past the end a frame holds zeros, unless a mapping stored there.)
      if (end - pos < bs && !all_zeros(src + (end - pos), static_cast<size_t>(bs - (end - pos)))) {
        tail = static_cast<std::byte*>(m.kernel().kmem().alloc(bs));
        if (tail == nullptr) {
          r = err(ENOMEM);
          break;
        }
        size_t keep = static_cast<size_t>(end - pos);
        std::memcpy(tail, src, keep);
        std::memset(tail + keep, 0, bs - keep);
        src = tail;
      }
      m.bc_.wrote_through(m.dev_, *pb + i, bs, src);
      r = run.add(*pb + i, src);
    }
  }
  // Whatever was mapped reaches the device even when a later block
  // failed: the mapping may already be in the running transaction.
  Result<void> s = run.submit();
  Kmem::free(tail);
  if (r.ok()) r = s;
  if (changed || inode_pending_) {
    Result<void> w = write_inode();
    if (r.ok()) r = w;
  }
  return r;
}

}  // namespace rump

namespace rump {

using namespace ext2;

// --- delayed allocation: room for cached pages that have no blocks yet

uint64_t Ext2Mount::metadata_pool() const {
  if (!(geo_.incompat & kIncompatExtents)) return 0;
  return geo_.blocks_count / 50 < 4096 ? geo_.blocks_count / 50 : 4096;
}

Result<void> Ext2Mount::reserve_blocks(uint64_t n) {
  // Write-back may need metadata blocks too (extent tree blocks): the
  // pool is left out of what pages may reserve.
  uint64_t pool = metadata_pool();
  uint64_t free = free_blocks();
  if (free < pool || free - pool < reserved_ || free - pool - reserved_ < n) return err(ENOSPC);
  reserved_ += n;
  return {};
}

void Ext2Mount::unreserve_blocks(uint64_t n) { reserved_ = reserved_ > n ? reserved_ - n : 0; }

Result<bool> Ext2Mount::commit_for_space() {
  if (!journaling() || journal_->idle()) return false;
  TRY(journal_->commit(false));
  return true;
}

Result<uint32_t> Ext2Node::reserve_page(uint64_t off) {
  if (type() != VType::kReg) return 0u;
  Ext2Mount& m = em();
  const uint32_t bs = m.geo().block_size;
  if (bs > vm::kPageSize || !m.writable()) return 0u;
  // Only the blocks of the page that have none (with blocks under the
  // page size, a page may be partly allocated). An inline file has none
  // (it may outgrow the inode).
  const uint64_t per = vm::kPageSize / bs;
  if (flags() & kFlInlineData) {
    TRY(m.reserve_blocks(per));
    return static_cast<uint32_t>(per);
  }
  uint32_t holes = 0;
  // Indirect maps: the map blocks the holes' write-back adds, each once
  // per file (promised_): at most 3 for each of the page's blocks, 4 of
  // them with 1 KiB blocks.
  uint64_t fresh[12];
  size_t nfresh = 0;
  const bool indirect = !(flags() & kFlExtents);
  for (uint64_t lblk = off / bs; lblk < off / bs + per;) {
    Mapping map = TRY(bmap(lblk));
    uint64_t n = map.count ? map.count : 1;
    if (n > off / bs + per - lblk) n = off / bs + per - lblk;
    if (map.pblk == 0 && !map.unwritten) {
      holes += static_cast<uint32_t>(n);
      for (uint64_t b = lblk; indirect && b < lblk + n; b++) {
        uint64_t keys[3];
        int k = TRY(unpromised_index(b, keys));
        for (int i = 0; i < k; i++)
          if (std::find(fresh, fresh + nfresh, keys[i]) == fresh + nfresh) fresh[nfresh++] = keys[i];
      }
    }
    lblk += n;
  }
  if (holes == 0) return 0u;
  TRY(promised_.reserve_more(nfresh));
  TRY(m.reserve_blocks(holes + nfresh));
  for (size_t i = 0; i < nfresh; i++) promised_.push_back(fresh[i]);
  return holes;
}

Result<int> Ext2Node::unpromised_index(uint64_t lblk, uint64_t* keys) const {
  if (lblk < 12) return 0;
  Ext2Mount& m = em();
  const uint64_t per = m.geo().block_size / 4;
  IndirectSlot where;
  if (!indirect_slot(lblk - 12, per, where)) return 0;
  int n = 0;
  uint32_t p = get32(raw_, ino::kBlock + size_t(11 + where.levels) * 4);
  uint64_t cover = where.span;  // blocks the map block at this depth covers
  BufRef hold;
  for (int depth = 0; depth < where.levels; depth++) {
    if (p == 0) {
      uint64_t key = index_key(where.levels, depth, where.off / cover);
      if (find_promise(key) == promised_.size()) keys[n++] = key;
    } else if (depth + 1 < where.levels) {
      if (p >= m.geo().blocks_count) return m.corrupt("block map points outside the file system", ino_);
      hold = TRY(m.bread(p));
      p = get32(hold.data(), ((where.off % cover) / (cover / per)) * 4);
    }
    cover /= per;
  }
  return n;
}

size_t Ext2Node::find_promise(uint64_t key) const {
  size_t i = 0;
  while (i < promised_.size() && promised_[i] != key) i++;
  return i;
}

bool Ext2Node::take_promise(uint64_t key) {
  size_t i = find_promise(key);
  if (i == promised_.size()) return false;
  promised_.erase(i);
  em().unreserve_blocks(1);
  return true;
}

void Ext2Node::drop_promises(uint64_t first) {
  if (promised_.empty()) return;
  Ext2Mount& m = em();
  const uint64_t per = m.geo().block_size / 4;
  size_t before = promised_.size();
  promised_.retain([&](uint64_t key) { return index_key_first(key, per) < first; });
  m.unreserve_blocks(before - promised_.size());
}

Result<void> Ext2Node::grow_for_cache(uint64_t new_size) {
  Ext2Mount& m = em();
  uint64_t old = size();
  // Anything but growing a block-aligned regular file (zeros to write in
  // the old last block, inline data to move out) takes truncate's path.
  if (type() != VType::kReg || new_size <= old || old % m.geo().block_size || (flags() & kFlInlineData))
    return truncate(new_size);
  if (!m.writable()) return err(EROFS);
  if (flags() & (kFlImmutable | kFlAppend)) return err(EPERM);
  set_size(new_size);
  timespec now = wall_timespec();
  set_time(ino::kMtime, ino::kMtimeExtra, now);
  set_time(ino::kCtime, ino::kCtimeExtra, now);
  inode_pending_ = true;
  return {};
}

Result<void> Ext2Node::ungrow_for_cache(uint64_t from, uint64_t new_size) {
  // grow_for_cache kept a growth from a block boundary of a file with a
  // block map in memory: nothing but the size changed, and write-back
  // maps blocks only for the bytes below new_size. Anything else went
  // through truncate and goes back through it.
  if (type() != VType::kReg || from % em().geo().block_size || (flags() & kFlInlineData) || new_size < from ||
      new_size >= size())
    return truncate(new_size);
  set_size(new_size);
  inode_pending_ = true;
  return {};
}

void Ext2Node::adjust_reserved(int64_t blocks) {
  Ext2Mount& m = em();
  if (blocks < 0) m.unreserve_blocks(static_cast<uint64_t>(-blocks));
  else m.reserved_ += static_cast<uint64_t>(blocks);
}

}  // namespace rump
