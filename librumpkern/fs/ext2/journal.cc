// The jbd2 journal (see journal.h): the log's on-disk format, replay in
// three passes (scan, revoke, replay), and transactions: commit,
// checkpoint, revoke, the commit timer.
#include "fs/ext2/journal.h"

#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "fs/ext2/crc.h"
#include "fs/ext2/ext2.h"
#include "kern/kernel.h"
#include "kern/services.h"

namespace rump {

using ext2::be32;
using ext2::crc32c;
using ext2::put_be32;

namespace {

uint64_t be64(const void* p, size_t off) { return uint64_t{be32(p, off)} << 32 | be32(p, off + 4); }
void put_be64(void* p, size_t off, uint64_t v) {
  put_be32(p, off, static_cast<uint32_t>(v >> 32));
  put_be32(p, off + 4, static_cast<uint32_t>(v));
}
uint16_t be16(const void* p, size_t off) {
  const auto* b = static_cast<const uint8_t*>(p) + off;
  return static_cast<uint16_t>(b[0] << 8 | b[1]);
}
void put_be16(void* p, size_t off, uint16_t v) {
  auto* b = static_cast<uint8_t*>(p) + off;
  b[0] = static_cast<uint8_t>(v >> 8);
  b[1] = static_cast<uint8_t>(v);
}

// Sequence numbers wrap: a is after b.
bool tid_gt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }

// The checksum a tag carries: the transaction's sequence, then the block
// as it stands in the log (escaped).
uint32_t tag_csum(uint32_t seed, uint32_t seq, const char* data, uint32_t bs) {
  char s[4];
  put_be32(s, 0, seq);
  return crc32c(crc32c(seed, s, 4), data, bs);
}

}  // namespace

Journal::Journal(Ext2Mount& m, BufCache& bc, BlockDevice& dev, Kmem& km)
    : m_(m), bc_(bc), dev_(dev), km_(km), records_(km), frozen_(km), revoked_(km) {}

Journal::~Journal() {
  if (started_) timer_.halt();
  running_.clear();
  revokes_.clear();
  records_.clear_and_dispose([](Record* r) { delete r; });
  revoked_.clear_and_dispose([](Revoked* r) { delete r; });
  while (spare_ != nullptr) delete std::exchange(spare_, spare_->next_spare);
  drop_frozen();
  Kmem::free(sb_);
  Kmem::free(scratch_);
  Kmem::free(scratch2_);
  Kmem::free(map_);
}

// --- the log's blocks

uint64_t Journal::phys(uint64_t lb) const {
  // The map is sorted by logical block and usually one run long.
  size_t lo = 0, hi = map_len_;
  while (lo + 1 < hi) {
    size_t mid = (lo + hi) / 2;
    if (map_[mid].lblk <= lb) lo = mid;
    else hi = mid;
  }
  const Extent& e = map_[lo];
  return e.pblk + (lb - e.lblk);
}

Result<void> Journal::read_log(uint64_t lb, char* buf) {
  uint32_t dbs = dev_.block_size();
  Result<void> r = dev_.read_blocks(phys(lb) * (bs_ / dbs), buf, bs_ / dbs);
  if (!r.ok()) return err(EIO);
  return {};
}

Result<void> Journal::write_log(uint64_t lb, const char* buf) {
  uint32_t dbs = dev_.block_size();
  Result<void> r = dev_.write_blocks(phys(lb) * (bs_ / dbs), buf, bs_ / dbs);
  if (!r.ok()) return err(EIO);
  return {};
}

Result<void> Journal::LogRun::add(uint64_t lb, const char* buf) {
  uint64_t pb = j_.phys(lb);
  if (n_ > 0 && (pb != first_ + n_ || n_ == kMaxSegments)) TRY(submit());
  if (n_ == 0) first_ = pb;
  seg_[n_++] = BlockDevice::Segment{const_cast<char*>(buf), j_.bs_};
  return {};
}

Result<void> Journal::LogRun::submit() {
  if (n_ == 0) return {};
  size_t n = n_;
  n_ = 0;
  Result<void> r = j_.dev_.write_blocksv(first_ * (j_.bs_ / j_.dev_.block_size()), seg_, n);
  if (!r.ok()) return err(EIO);
  return {};
}

uint32_t Journal::tag_bytes() const {
  if (incompat_ & jbd2::kIncompatCsumV3) return 16;
  uint32_t sz = 12;
  if (incompat_ & jbd2::kIncompatCsumV2) sz += 2;
  return (incompat_ & jbd2::kIncompat64bit) ? sz : sz - 4;
}

uint32_t Journal::tags_per_descriptor() const {
  // The header, the uuid after the first tag, the checksum tail.
  uint32_t room = bs_ - jbd2::kHeader - 16 - (csum() ? 4 : 0);
  return room / tag_bytes();
}

uint32_t Journal::revokes_per_block() const {
  uint32_t rec = (incompat_ & jbd2::kIncompat64bit) ? 8 : 4;
  return (bs_ - 16 - (csum() ? 4 : 0)) / rec;
}

uint64_t Journal::running_blocks() const {
  uint64_t n = running_.size();
  uint64_t per = tags_per_descriptor();
  uint64_t rper = revokes_per_block();
  return n + (n + per - 1) / per + (revokes_.size() + rper - 1) / rper + 1;
}

// --- loading

Result<void> Journal::load(Ext2Node& jnode) {
  const Ext2Mount::Geometry& g = m_.geo();
  bs_ = g.block_size;
  uint64_t blocks = jnode.size() / bs_;
  if (blocks < 1024 / (bs_ / 1024) && blocks < 32) return m_.corrupt("journal too short", blocks);
  // The block map of the journal inode, as runs.
  size_t cap = 4;
  map_ = static_cast<Extent*>(km_.alloc(cap * sizeof(Extent)));
  if (!map_) return err(ENOMEM);
  for (uint64_t lb = 0; lb < blocks;) {
    Ext2Node::Mapping mp = TRY(jnode.bmap(lb));
    if (mp.pblk == 0) return m_.corrupt("hole in the journal", lb);
    uint64_t n = mp.count < blocks - lb ? mp.count : blocks - lb;
    if (map_len_ && map_[map_len_ - 1].pblk + map_[map_len_ - 1].count == mp.pblk &&
        map_[map_len_ - 1].lblk + map_[map_len_ - 1].count == lb) {
      map_[map_len_ - 1].count += n;
    } else {
      if (map_len_ == cap) {
        auto* bigger = static_cast<Extent*>(km_.alloc(2 * cap * sizeof(Extent)));
        if (!bigger) return err(ENOMEM);
        std::memcpy(bigger, map_, cap * sizeof(Extent));
        Kmem::free(map_);
        map_ = bigger;
        cap *= 2;
      }
      map_[map_len_++] = Extent{lb, mp.pblk, n};
    }
    lb += n;
  }
  sb_ = static_cast<char*>(km_.zalloc(bs_));
  scratch_ = static_cast<char*>(km_.alloc(bs_));
  scratch2_ = static_cast<char*>(km_.alloc(bs_));
  if (!sb_ || !scratch_ || !scratch2_) return err(ENOMEM);
  TRY(read_log(0, sb_));
  if (be32(sb_, 0) != jbd2::kMagic) return m_.corrupt("bad journal superblock magic", 0);
  type_ = be32(sb_, 4);
  if (type_ != jbd2::kSuperV1 && type_ != jbd2::kSuperV2) return m_.corrupt("unknown journal superblock type", type_);
  if (be32(sb_, jbd2::kSbBlocksize) != bs_) return m_.corrupt("journal block size differs", be32(sb_, jbd2::kSbBlocksize));
  maxlen_ = be32(sb_, jbd2::kSbMaxlen);
  first_ = be32(sb_, jbd2::kSbFirst);
  if (maxlen_ > blocks || first_ == 0 || first_ >= maxlen_ || maxlen_ - first_ < 16)
    return m_.corrupt("journal superblock geometry", maxlen_);
  sequence_ = be32(sb_, jbd2::kSbSequence);
  start_ = be32(sb_, jbd2::kSbStart);
  if (start_ != 0 && (start_ < first_ || start_ >= maxlen_)) return m_.corrupt("journal start out of range", start_);
  if (type_ == jbd2::kSuperV2) {
    compat_ = be32(sb_, jbd2::kSbCompat);
    incompat_ = be32(sb_, jbd2::kSbIncompat);
    if (uint32_t unknown = incompat_ & ~jbd2::kIncompatKnown) {
      m_.kernel().printf("JBD2: Unrecognised features on journal (%x)\n", unknown);
      return err(EINVAL);
    }
    if (be32(sb_, jbd2::kSbRoCompat) && !(m_.flags_.load() & MS_RDONLY)) {
      m_.kernel().printf("JBD2: Unrecognised read-only features on journal\n");
      return err(EINVAL);
    }
    if ((incompat_ & jbd2::kIncompatCsumV2) && (incompat_ & jbd2::kIncompatCsumV3)) {
      m_.kernel().printf("JBD2: Can't enable checksumming v2 and v3 at the same time!\n");
      return err(EINVAL);
    }
    if (csum()) {
      if (static_cast<uint8_t>(sb_[jbd2::kSbChecksumType]) != 4) {  // JBD2_CRC32C_CHKSUM
        m_.kernel().printf("JBD2: Unknown checksum type\n");
        return err(EINVAL);
      }
      uint32_t stored = be32(sb_, jbd2::kSbChecksum);
      put_be32(sb_, jbd2::kSbChecksum, 0);
      uint32_t c = crc32c(~0u, sb_, jbd2::kSbSize);
      put_be32(sb_, jbd2::kSbChecksum, stored);
      if (c != stored) {
        m_.kernel().printf("JBD2: journal checksum error\n");
        return err(EUCLEAN);
      }
      csum_seed_ = crc32c(~0u, sb_ + jbd2::kSbUuid, 16);
    }
  }
  head_ = tail_ = start_ ? start_ : first_;
  tid_ = sequence_;
  return {};
}

Result<void> Journal::write_super() {
  put_be32(sb_, jbd2::kSbSequence, sequence_);
  put_be32(sb_, jbd2::kSbStart, static_cast<uint32_t>(start_));
  if (type_ == jbd2::kSuperV2) {
    put_be32(sb_, jbd2::kSbCompat, compat_);
    put_be32(sb_, jbd2::kSbIncompat, incompat_);
    if (csum()) {
      sb_[jbd2::kSbChecksumType] = 4;
      put_be32(sb_, jbd2::kSbChecksum, 0);
      put_be32(sb_, jbd2::kSbChecksum, crc32c(~0u, sb_, jbd2::kSbSize));
    }
  }
  return write_log(0, sb_);
}

// --- replay

// One walk over the log from s_start, transaction by transaction, while
// blocks carry the expected sequence. kScan finds end_tid, the first
// transaction without a valid commit block; the other passes stop there.
Result<void> Journal::do_pass(Pass pass, uint32_t& end_tid, uint64_t& replayed) {
  uint32_t tid = sequence_;
  uint64_t lb = start_;
  uint32_t tb = tag_bytes();
  bool wide = incompat_ & jbd2::kIncompat64bit;
  char* blk = scratch_;
  for (;;) {
    if (pass != Pass::kScan && !tid_gt(end_tid, tid)) break;
    TRY(read_log(lb, blk));
    if (be32(blk, 0) != jbd2::kMagic || be32(blk, 8) != tid) {
      if (pass != Pass::kScan) return m_.corrupt("journal changed during replay", lb);
      break;
    }
    uint32_t type = be32(blk, 4);
    auto tail_ok = [&]() {
      if (!csum()) return true;
      uint32_t stored = be32(blk, bs_ - 4);
      put_be32(blk, bs_ - 4, 0);
      bool ok = crc32c(csum_seed_, blk, bs_) == stored;
      put_be32(blk, bs_ - 4, stored);
      return ok;
    };
    if (type == jbd2::kDescriptor) {
      if (!tail_ok()) {
        if (pass == Pass::kScan) break;
        return m_.corrupt("journal descriptor checksum changed", lb);
      }
      // The tags: copy them out first, the block buffer is reused.
      std::memcpy(scratch2_, blk, bs_);
      const char* d = scratch2_;
      size_t end = bs_ - (csum() ? 4 : 0);
      uint64_t next = wrap(lb + 1);
      for (size_t p = jbd2::kHeader; p + tb <= end;) {
        const char* t = d + p;
        uint64_t target = be32(t, 0);
        uint32_t flags;
        uint32_t tcsum;
        if (incompat_ & jbd2::kIncompatCsumV3) {
          flags = be32(t, 4);
          if (wide) target |= uint64_t{be32(t, 8)} << 32;
          tcsum = be32(t, 12);
        } else {
          tcsum = be16(t, 4);
          flags = be16(t, 6);
          if (wide) target |= uint64_t{be32(t, 8)} << 32;
        }
        p += tb;
        if (!(flags & jbd2::kTagSameUuid)) p += 16;
        if (pass == Pass::kReplay) {
          bool revoked = false;
          if (const Revoked* r = revoked_.find(target)) revoked = !tid_gt(tid, r->tid);
          if (!revoked) {
            TRY(read_log(next, blk));
            bool good = true;
            if (csum()) {
              uint32_t c = tag_csum(csum_seed_, tid, blk, bs_);
              good = (incompat_ & jbd2::kIncompatCsumV3) ? c == tcsum : (c & 0xFFFF) == tcsum;
            }
            if (!good) {
              m_.kernel().printf("JBD2: Invalid checksum recovering data block %llu in log\n",
                                 static_cast<unsigned long long>(target));
            } else if (target < m_.geo().first_data_block || target >= m_.geo().blocks_count) {
              m_.kernel().printf("JBD2: block %llu in the journal is past the file system\n",
                                 static_cast<unsigned long long>(target));
            } else {
              if (flags & jbd2::kTagEscape) put_be32(blk, 0, jbd2::kMagic);
              BufRef b = TRY(bc_.getblk(dev_, target, bs_));
              std::memcpy(b.data(), blk, bs_);
              b.dirty();
              replayed++;
            }
          }
        }
        next = wrap(next + 1);
        if (flags & jbd2::kTagLastTag) break;
      }
      lb = next;
      continue;
    }
    if (type == jbd2::kCommit) {
      if (csum()) {
        uint32_t stored = be32(blk, jbd2::kCommitChksum);
        put_be32(blk, jbd2::kCommitChksum, 0);
        bool ok = crc32c(csum_seed_, blk, bs_) == stored;
        if (!ok) {
          if (pass == Pass::kScan) break;
          return m_.corrupt("journal commit checksum changed", lb);
        }
      }
      tid++;
      lb = wrap(lb + 1);
      if (pass == Pass::kScan) end_tid = tid;
      continue;
    }
    if (type == jbd2::kRevoke) {
      if (!tail_ok()) {
        if (pass == Pass::kScan) break;
        return m_.corrupt("journal revoke block checksum changed", lb);
      }
      if (pass == Pass::kRevoke) {
        uint32_t count = be32(blk, jbd2::kHeader);
        uint32_t rec = wide ? 8 : 4;
        if (count > bs_ - (csum() ? 4 : 0)) return m_.corrupt("journal revoke block overflows", lb);
        for (uint32_t p = 16; p + rec <= count; p += rec) {
          uint64_t b = wide ? be64(blk, p) : be32(blk, p);
          Revoked* r = revoked_.find(b);
          if (!r) {
            r = new (km_) Revoked();
            if (!r) return err(ENOMEM);
            r->blkno = b;
            r->tid = tid;
            revoked_.insert(*r);
          } else if (tid_gt(tid, r->tid)) {
            r->tid = tid;
          }
        }
      }
      lb = wrap(lb + 1);
      continue;
    }
    if (pass != Pass::kScan) return m_.corrupt("journal block of unknown type", lb);
    break;
  }
  return {};
}

Result<void> Journal::recover() {
  if (!start_) return {};
  uint32_t end_tid = sequence_;
  uint64_t replayed = 0;
  TRY(do_pass(Pass::kScan, end_tid, replayed));
  TRY(do_pass(Pass::kRevoke, end_tid, replayed));
  TRY(do_pass(Pass::kReplay, end_tid, replayed));
  revoked_.clear_and_dispose([](Revoked* r) { delete r; });
  TRY(bc_.flush(dev_));
  m_.kernel().printf("JBD2: recovery complete: transactions %u to %u, %llu blocks replayed\n", sequence_, end_tid,
                     static_cast<unsigned long long>(replayed));
  // Sequences go on past anything the log may still hold.
  sequence_ = end_tid + 1;
  start_ = 0;
  tid_ = sequence_;
  head_ = tail_ = first_;
  TRY(write_super());
  return dev_.sync();
}

Result<void> Journal::wipe() {
  start_ = 0;
  sequence_++;
  tid_ = sequence_;
  head_ = tail_ = first_;
  TRY(write_super());
  return dev_.sync();
}

// --- writing

Result<void> Journal::start(DataMode mode, uint32_t commit_seconds) {
  mode_ = mode;
  interval_ns_ = int64_t{commit_seconds ? commit_seconds : 5} * 1000000000;
  const Ext2Mount::Geometry& g = m_.geo();
  if (type_ == jbd2::kSuperV1) {
    // A version 1 superblock has no feature fields: 32-bit block numbers,
    // no checksums and no revoke records (see forget for what stands in
    // for them).
    if (g.blocks_count > UINT32_MAX) {
      m_.kernel().printf("EXT4-fs: a version 1 journal cannot hold 64-bit block numbers\n");
      return err(EINVAL);
    }
    compat_ = incompat_ = 0;
  } else {
    // The features commits are written with: revoke records, 64-bit
    // block numbers on a 64bit file system, v3 checksums with
    // metadata_csum.
    incompat_ |= jbd2::kIncompatRevoke;
    incompat_ &= ~jbd2::kIncompatAsyncCommit;
    if (g.incompat & ext2::kIncompat64bit) incompat_ |= jbd2::kIncompat64bit;
    if (m_.has_csum()) {
      incompat_ = (incompat_ & ~jbd2::kIncompatCsumV2) | jbd2::kIncompatCsumV3;
      compat_ &= ~jbd2::kCompatChecksum;
      csum_seed_ = crc32c(~0u, sb_ + jbd2::kSbUuid, 16);
    } else {
      incompat_ &= ~(jbd2::kIncompatCsumV2 | jbd2::kIncompatCsumV3);
      compat_ &= ~jbd2::kCompatChecksum;
    }
  }
  if (tags_per_descriptor() < 1) return err(EINVAL);
  head_ = tail_ = first_;
  tid_ = sequence_;
  start_ = first_;
  TRY(write_super());
  TRY(dev_.sync());
  timer_.init(*m_.kernel().services().callouts(), &Journal::tick, this);
  started_ = true;
  // The first operation finds its records made (an operation then makes
  // only what the one before used).
  return fill_spares();
}

// timer_armed_ stands for the callout's pending state, which the
// callout queue's lock guards: every journaled buffer would take that lock
// to ask. It is set before each schedule and cleared by every stop and by
// the tick itself, under the tree lock, before the tick commits: an add
// that finds it set while the tick waits for the lock is committed by it.
void Journal::arm_timer() {
  if (!timer_ready_ || closing_ || timer_armed_.load(std::memory_order_relaxed)) return;
  timer_armed_.store(true, std::memory_order_relaxed);
  timer_.schedule(interval_ns_);
}

// The first arming may start the kernel's callout thread, which takes the
// process-tree lock: only from a context holding no file-system lock.
void Journal::start_timer() {
  if (!started_ || timer_ready_) return;
  timer_ready_ = true;
  timer_armed_.store(true, std::memory_order_relaxed);
  timer_.schedule(interval_ns_);
}

void Journal::tick(void* arg) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  auto* j = static_cast<Journal*>(arg);
  MutexLocker g(j->m_.lock_);
  j->timer_armed_.store(false, std::memory_order_relaxed);
  if (j->closing_ || !j->m_.writable()) return;
  Result<void> r = j->commit(false);
  if (!r.ok()) j->m_.kernel().printf("JBD2: commit failed (%d)\n", r.error());
}

Journal::Record* Journal::take_record() {
  if (spare_ == nullptr) return new (km_) Record();
  Record* r = std::exchange(spare_, spare_->next_spare);
  r->next_spare = nullptr;
  nspare_--;
  return r;
}

void Journal::drop_record(Record* r) {
  if (nspare_ >= kSpareRecords) {
    delete r;
    return;
  }
  r->blkno = 0;
  r->pin.reset();
  r->running = r->logged = r->revoke = false;
  push_spare(r);
}

void Journal::push_spare(Record* r) {
  r->next_spare = spare_;
  spare_ = r;
  nspare_++;
}

Result<void> Journal::add(const BufRef& b) {
  uint64_t blk = b.get()->blkno();
  Record* r = records_.find(blk);
  if (!r) {
    r = take_record();
    if (!r) return err(ENOMEM);
    r->blkno = blk;
    records_.insert(*r);
  }
  if (r->revoke) {
    // Journaled again in the transaction that freed it: the copy it gets
    // now is the one to replay.
    r->revoke = false;
    revokes_.erase(revokes_.iterator_to(*r));
  }
  if (!r->running) {
    // A reference of the transaction's own keeps the buffer cached.
    Result<BufRef> pin = bc_.bread(dev_, blk, bs_);
    if (!pin.ok()) {
      if (!r->logged && !r->revoke) {
        records_.erase(*r);
        drop_record(r);
      }
      return err(pin.error());
    }
    r->pin = std::move(*pin);
    bc_.set_pinned(*r->pin.get(), true);
    r->running = true;
    running_.push_back(*r);
  }
  arm_timer();
  return {};
}

Result<void> Journal::forget(uint64_t blk) {
  Record* r = records_.find(blk);
  if (!r) return {};
  if (r->running) {
    // Its copy in this transaction is no longer wanted.
    running_.erase(running_.iterator_to(*r));
    r->running = false;
    bc_.set_pinned(*r->pin.get(), false);
    r->pin.reset();
  }
  if (r->logged && !r->revoke) {
    if (type_ == jbd2::kSuperV1) {
      // No revoke records: the commit that frees the block also
      // checkpoints, so its old copy leaves the live log before the block
      // can be handed out again (until that commit the allocator keeps
      // it, and a replay of the old copy onto a free block is harmless).
      checkpoint_due_ = true;
    } else {
      r->revoke = true;
      revokes_.push_back(*r);
    }
    arm_timer();
  }
  if (!r->logged && !r->revoke) {
    records_.erase(*r);
    drop_record(r);
  }
  return {};
}

bool Journal::pinned_too_much() const {
  size_t limit = km_.limit();
  return limit != 0 && running_.size() * size_t{bs_} > limit / kPinnedShare;
}

namespace {

// The room an operation's step takes at most, which the commit policy
// keeps free in a transaction of a quarter of the log: kStepRoom, or the
// log's eighth (margin) when that is less.
constexpr uint64_t kStepRoom = 256;
uint64_t soft_margin(uint64_t margin) { return margin < kStepRoom ? margin : kStepRoom; }

}  // namespace

bool Journal::reserve_would_commit() const {
  if (!started_) return false;
  uint64_t cap = capacity();
  uint64_t margin = cap / 8;
  uint64_t run = running_blocks();
  return run + soft_margin(margin) > cap / 4 || used() + run + margin + 1 > cap || pinned_too_much();
}

Result<void> Journal::reserve() {
  if (!started_) return {};
  uint64_t cap = capacity();
  uint64_t margin = cap / 8;
  uint64_t run = running_blocks();
  // A whole eighth of the log is kept for the next operation; short of
  // it, a commit and a checkpoint. Pinned buffers cannot be written back
  // or evicted: under a memory limit the transaction is committed (which
  // unpins them) before they take more than their share, so that eviction
  // always finds something. A transaction is committed before it holds a
  // quarter of the log (as jbd2's j_max_transaction_buffers) with the next
  // operation's room on top; that room needs not grow with the log
  // (soft_margin).
  if (used() + run + margin + 1 > cap) {
    TRY(commit(true));
  } else if (run + soft_margin(margin) > cap / 4 || pinned_too_much()) {
    TRY(commit(false));
  }
  // The records the operation may need, before it changes anything.
  return fill_spares();
}

Result<void> Journal::fill_spares() {
  while (nspare_ < kSpareRecords) {
    auto* r = new (km_) Record();
    if (r == nullptr) return err(ENOMEM);
    push_spare(r);
  }
  return {};
}

const char* Journal::committed_bitmap(uint32_t group) const {
  const Frozen* f = frozen_.find(group);
  return f ? f->bits : nullptr;
}

Result<void> Journal::freeze_bitmap(uint32_t group, const char* bitmap, uint32_t bytes) {
  if (!started_ || frozen_.find(group)) return {};
  auto* f = new (km_) Frozen();
  if (!f) return err(ENOMEM);
  f->bits = static_cast<char*>(km_.alloc(bytes));
  if (!f->bits) {
    delete f;
    return err(ENOMEM);
  }
  std::memcpy(f->bits, bitmap, bytes);
  f->group = group;
  frozen_.insert(*f);
  return {};
}

void Journal::drop_frozen() {
  frozen_.clear_and_dispose([](Frozen* f) {
    Kmem::free(f->bits);
    delete f;
  });
}

Result<void> Journal::commit(bool checkpoint_after) {
  if (!started_) return {};
  // A file system gone read-only on an error keeps its last committed
  // state: nothing more is committed (Linux aborts the journal).
  if (!m_.writable()) return err(EROFS);
  if (running_.empty() && revokes_.empty()) {
    if (checkpoint_after && used() > 0) TRY(checkpoint());
    return {};
  }
  // The superblock's free counts go with every transaction (e2fsck takes
  // them from the superblock after replay).
  TRY(m_.write_super());
  uint64_t need = running_blocks();
  if (used() + need + 1 > capacity()) {
    // An operation larger than the free log: what is committed goes home
    // first and the log is empty again (the running transaction's buffers
    // stay pinned meanwhile), as jbd2 checkpoints to make room.
    TRY(checkpoint());
  }
  if (need + 1 > capacity()) {
    // Larger than the whole log: nothing can make room for it.
    m_.kernel().printf("JBD2: transaction of %llu blocks does not fit the journal\n",
                       static_cast<unsigned long long>(need));
    return err(ENOSPC);
  }
  // Ordered data, and committed metadata, reach their home blocks first:
  // written and arrived here, made durable by the sync before the commit
  // block with the log's blocks (one device sync for both, as jbd2's
  // single flush before its commit block).
  if (mode_ != DataMode::kWriteback) TRY(bc_.flush(dev_, false));
  const bool v3 = incompat_ & jbd2::kIncompatCsumV3;
  const bool wide = incompat_ & jbd2::kIncompat64bit;
  const uint32_t tb = tag_bytes();
  const uint32_t per = tags_per_descriptor();
  uint64_t lb = head_;
  // Log blocks that follow each other on the device go out in one
  // vectored request: the descriptors (each its own block of descs, or
  // scratch2_ one at a time when there is no memory for them) and the
  // pinned buffers' own bytes.
  LogRun out(*this);
  size_t ndesc = (running_.size() + per - 1) / per;
  char* descs = ndesc > 1 ? static_cast<char*>(km_.alloc(ndesc * size_t{bs_})) : nullptr;
  absl::Cleanup free_descs = [descs] { Kmem::free(descs); };
  size_t desc_no = 0;
  char* d = scratch2_;
  auto it = running_.begin();
  while (it != running_.end()) {
    // One descriptor and the copies it names.
    auto chunk = it;
    uint32_t n = 0;
    if (descs) {
      d = descs + desc_no++ * size_t{bs_};
    } else {
      TRY(out.submit());
    }
    std::memset(d, 0, bs_);
    put_be32(d, 0, jbd2::kMagic);
    put_be32(d, 4, jbd2::kDescriptor);
    put_be32(d, 8, tid_);
    size_t p = jbd2::kHeader;
    for (; it != running_.end() && n < per; ++it, ++n) {
      const char* data = it->pin.data();
      uint32_t flags = n == 0 ? 0 : jbd2::kTagSameUuid;
      bool escape = be32(data, 0) == jbd2::kMagic;
      if (escape) flags |= jbd2::kTagEscape;
      auto next = it;
      ++next;
      if (next == running_.end() || n + 1 == per) flags |= jbd2::kTagLastTag;
      uint32_t c = 0;
      if (csum()) {
        if (escape) {
          std::memcpy(scratch_, data, bs_);
          put_be32(scratch_, 0, 0);
          data = scratch_;
        }
        c = tag_csum(csum_seed_, tid_, data, bs_);
      }
      char* t = d + p;
      put_be32(t, 0, static_cast<uint32_t>(it->blkno));
      if (v3) {
        put_be32(t, 4, flags);
        put_be32(t, 8, static_cast<uint32_t>(it->blkno >> 32));
        put_be32(t, 12, c);
      } else {
        put_be16(t, 4, static_cast<uint16_t>(c));
        put_be16(t, 6, static_cast<uint16_t>(flags));
        if (wide) put_be32(t, 8, static_cast<uint32_t>(it->blkno >> 32));
      }
      p += tb;
      if (n == 0) {
        std::memcpy(d + p, sb_ + jbd2::kSbUuid, 16);
        p += 16;
      }
    }
    if (csum()) put_be32(d, bs_ - 4, crc32c(csum_seed_, d, bs_));
    TRY(out.add(lb, d));
    lb = wrap(lb + 1);
    for (auto c = chunk; c != it; ++c) {
      const char* data = c->pin.data();
      if (be32(data, 0) == jbd2::kMagic) {
        // Escaped: a copy with the magic cleared, written at once.
        TRY(out.submit());
        std::memcpy(scratch_, data, bs_);
        put_be32(scratch_, 0, 0);
        TRY(write_log(lb, scratch_));
      } else {
        TRY(out.add(lb, data));
      }
      lb = wrap(lb + 1);
    }
  }
  TRY(out.submit());
  // Revoke blocks.
  uint32_t rec = wide ? 8 : 4;
  for (auto r = revokes_.begin(); r != revokes_.end();) {
    std::memset(d, 0, bs_);
    put_be32(d, 0, jbd2::kMagic);
    put_be32(d, 4, jbd2::kRevoke);
    put_be32(d, 8, tid_);
    uint32_t p = 16;
    uint32_t limit = bs_ - (csum() ? 4 : 0);
    for (; r != revokes_.end() && p + rec <= limit; ++r, p += rec) {
      if (wide) put_be64(d, p, r->blkno);
      else put_be32(d, p, static_cast<uint32_t>(r->blkno));
    }
    put_be32(d, jbd2::kHeader, p);
    if (csum()) put_be32(d, bs_ - 4, crc32c(csum_seed_, d, bs_));
    TRY(write_log(lb, d));
    lb = wrap(lb + 1);
  }
  // Everything before the commit block is on the device before it is.
  TRY(dev_.sync());
  std::memset(d, 0, bs_);
  put_be32(d, 0, jbd2::kMagic);
  put_be32(d, 4, jbd2::kCommit);
  put_be32(d, 8, tid_);
  timespec now = wall_timespec();
  put_be64(d, jbd2::kCommitSec, static_cast<uint64_t>(now.tv_sec));
  put_be32(d, jbd2::kCommitNsec, static_cast<uint32_t>(now.tv_nsec));
  if (csum()) put_be32(d, jbd2::kCommitChksum, crc32c(csum_seed_, d, bs_));
  TRY(write_log(lb, d));
  TRY(dev_.sync());
  lb = wrap(lb + 1);
  // Committed: the buffers may go home now.
  head_ = lb;
  tid_++;
  running_.clear_and_dispose([&](Record* r) {
    r->running = false;
    if (!r->logged) logged_count_++;
    r->logged = true;
    bc_.set_pinned(*r->pin.get(), false);
    r->pin.reset();
  });
  revokes_.clear_and_dispose([&](Record* r) {
    r->revoke = false;
    if (r->logged) {
      r->logged = false;
      logged_count_--;
    }
    if (!r->running) {
      records_.erase(*r);
      drop_record(r);
    }
  });
  drop_frozen();
  timer_.stop();
  timer_armed_.store(false, std::memory_order_relaxed);
  // Less than a quarter of the log free: the next transaction may not fit.
  if (checkpoint_after || checkpoint_due_ || used() + capacity() / 4 > capacity()) TRY(checkpoint());
  return {};
}

// Everything committed goes home; the log is then empty. The running
// transaction, if any, stays as it is: its buffers are pinned, so the
// flush leaves them off their home blocks.
Result<void> Journal::checkpoint() {
  TRY(bc_.flush(dev_));
  if (running_.empty() && revokes_.empty()) {
    records_.clear_and_dispose([this](Record* r) { drop_record(r); });
  } else {
    // No copy is left in the live log; the running transaction's records
    // (its buffers and its revokes) stay.
    for (auto it = records_.begin(); it != records_.end();) {
      Record& r = *it++;
      r.logged = false;
      if (!r.running && !r.revoke) {
        records_.erase(r);
        drop_record(&r);
      }
    }
  }
  logged_count_ = 0;
  checkpoint_due_ = false;
  tail_ = head_;
  sequence_ = tid_;
  start_ = tail_;
  TRY(write_super());
  return dev_.sync();
}

Result<void> Journal::stop(bool write) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (!started_) return {};
  closing_ = true;
  // A tick waiting for the tree lock sees closing_ and returns.
  m_.lock_.unlock();
  timer_.halt();
  m_.lock_.lock();
  timer_armed_.store(false, std::memory_order_relaxed);
  if (!write) {
    // Abandoned: what was not committed stays off the disk. The running
    // transaction's buffers are dropped unwritten (the next read of those
    // blocks finds the device's bytes, which the log completes at the
    // next mount); committed ones still reach home with the next flush.
    started_ = false;
    running_.clear_and_dispose([&](Record* r) {
      r->running = false;
      bc_.discard(std::move(r->pin));
    });
    revokes_.clear();
    records_.clear_and_dispose([](Record* r) { delete r; });
    drop_frozen();
    return {};
  }
  Result<void> r = commit(true);
  started_ = false;
  if (!r.ok()) return r;
  start_ = 0;
  sequence_ = tid_;
  TRY(write_super());
  return dev_.sync();
}

}  // namespace rump
