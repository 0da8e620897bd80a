// The buffer cache (see buf.h) and its per-kernel component.
#include "dev/buf.h"

#include <algorithm>
#include <cstring>

#include "kern/component.h"
#include "kern/kernel.h"

namespace rump {

namespace {

Result<void> bufcache_init(Kernel& k);
void bufcache_fini(Kernel& k);
Component g_bufcache_component{"bufcache", ComponentType::kKern, &bufcache_init, &bufcache_fini};
RUMP_COMPONENT(g_bufcache_component);
const KernelSlot<BufCache> g_bufcache_state{g_bufcache_component};

Result<void> bufcache_init(Kernel& k) {
  auto* c = new (k.kmem()) BufCache(k.kmem(), k.cache_pressure());
  if (!c) return err(ENOMEM);
  g_bufcache_state.set(k, c);
  return {};
}

// A kern-type component: its fini runs after the vfs faction's, which
// unmounts every file system (each flushes and invalidates its device).
// A mount whose files are still open holds the cache until it goes.
void bufcache_fini(Kernel& k) {
  if (BufCache* c = g_bufcache_state.take(k)) c->release();
}


}  // namespace

BufCache& buf_cache(Kernel& k) { return *g_bufcache_state.get(k); }

BufCache::BufCache(Kmem& km, const std::atomic<bool>& pressure) : km_(km), pressure_(pressure), table_(km) {}

BufCache::~BufCache() {
  MutexLocker g(lock_);
  dirty_.clear();
  lru_.clear();
  table_.clear_and_dispose([](Buf* b) {
    Kmem::free(b->data_);
    delete b;
  });
}

bool BufCache::has_dirty(const BlockDevice& dev) const {
  MutexLocker g(lock_);
  for (const Buf& b : dirty_) {
    b.mu_->assert_held();
    if (b.dev_ == &dev) return true;
  }
  return false;
}

size_t BufCache::bytes() const {
  MutexLocker g(lock_);
  return bytes_;
}

size_t BufCache::count() const {
  MutexLocker g(lock_);
  return count_;
}

void BufCache::free_buf_locked(Buf* b) {
  b->mu_->assert_held();
  if (b->dirty_hook_.is_linked()) dirty_.erase(dirty_.iterator_to(*b));
  lru_.erase(lru_.iterator_to(*b));
  table_.erase(*b);
  bytes_ -= b->size_;
  count_--;
  Kmem::free(b->data_);
  delete b;
}

bool BufCache::evict_one_clean() {
  MutexLocker g(lock_);
  for (Buf& b : lru_) {
    b.mu_->assert_held();
    if (b.refs() == 0 && !b.dirty_) {
      free_buf_locked(&b);
      return true;
    }
  }
  return false;
}

void BufCache::trim_locked() {
  // Under a memory limit the buffers share it with the file page caches,
  // which cannot evict buffers: unreferenced clean ones are kept to a
  // quarter of the limit.
  size_t cap = km_.limit() != 0 ? km_.limit() / 4 : kSoftCap;
  if (bytes_ <= cap) return;
  for (auto it = lru_.begin(); it != lru_.end() && bytes_ > cap;) {
    Buf& b = *it++;
    b.mu_->assert_held();
    if (b.refs() == 0 && !b.dirty_) free_buf_locked(&b);
  }
}

Result<void> BufCache::write_out(Buf& b) {
  uint32_t dbs = b.dev_->block_size();
  return b.dev_->write_blocks(b.blkno_ * (b.size_ / dbs), b.data_, b.size_ / dbs);
}

Result<bool> BufCache::clean_one(BlockDevice& dev) {
  Buf* victim = nullptr;
  {
    MutexLocker g(lock_);
    for (Buf& b : dirty_) {
      b.mu_->assert_held();
      if (b.dev_ == &dev && b.refs() == 0 && !b.pinned_) {
        victim = &b;
        b.ref();
        break;
      }
    }
  }
  if (!victim) return false;
  // Its bytes must have arrived before the only copy goes.
  Result<void> r = write_out(*victim);
  if (r.ok()) r = victim->dev_->drain();
  MutexLocker g(lock_);
  victim->mu_->assert_held();
  victim->refs_.fetch_sub(1, std::memory_order_relaxed);
  if (!r.ok()) return err(r.error());
  free_buf_locked(victim);  // off the dirty list too
  return true;
}

Result<Buf*> BufCache::alloc_buf(BlockDevice& dev, uint32_t size) {
  for (;;) {
    auto* b = new (km_) Buf();
    char* data = b ? static_cast<char*>(km_.alloc(size)) : nullptr;
    if (b && data) {
      b->data_ = data;
      b->size_ = size;
      b->dev_ = &dev;
      b->mu_ = &lock_;
      return b;
    }
    delete b;
    if (evict_one_clean()) continue;
    if (TRY(clean_one(dev))) continue;
    return err(ENOMEM);
  }
}

Result<BufRef> BufCache::get(BlockDevice& dev, uint64_t blkno, uint32_t size, bool read) {
  uint32_t dbs = dev.block_size();
  if (size == 0 || size % dbs != 0) return err(EINVAL);
  uint64_t per = size / dbs;
  if (blkno >= dev.nblocks() / per) return err(EIO);  // past the device: a corrupt pointer
  {
    MutexLocker g(lock_);
    if (Buf* b = table_.find(Buf::Key{&dev, blkno})) {
      b->mu_->assert_held();
      if (b->size_ != size) return err(EINVAL);
      return take_locked(*b, !read);
    }
  }
  Buf* b = TRY(alloc_buf(dev, size));
  b->blkno_ = blkno;
  if (read) {
    Result<void> r = dev.read_blocks(blkno * per, b->data_, per);
    if (!r.ok()) {
      Kmem::free(b->data_);
      delete b;
      return err(r.error() == EINVAL ? EIO : r.error());
    }
  } else {
    std::memset(b->data_, 0, size);
  }
  MutexLocker g(lock_);
  b->mu_->assert_held();
  // The caller owns the device: nobody else can have read it meanwhile.
  b->refs_.store(1, std::memory_order_relaxed);
  table_.insert(*b);
  lru_.push_back(*b);
  bytes_ += size;
  count_++;
  trim_locked();
  return BufRef(this, b);
}

BufRef BufCache::take_locked(Buf& b, bool getblk) {
  b.mu_->assert_held();
  if (getblk) b.checked_ = false;
  b.ref();
  lru_.erase(lru_.iterator_to(b));
  lru_.push_back(b);
  return BufRef(this, &b);
}

Buf* BufCache::find_locked(BlockDevice& dev, uint64_t blkno, uint32_t size) {
  if (count_ == 0) return nullptr;
  Buf* b = table_.find(Buf::Key{&dev, blkno});
  return b != nullptr && b->size_ == size ? b : nullptr;
}

BufRef BufCache::lookup(BlockDevice& dev, uint64_t blkno, uint32_t size) {
  MutexLocker g(lock_);
  Buf* b = find_locked(dev, blkno, size);
  return b != nullptr ? take_locked(*b, false) : BufRef();
}

Result<BufRef> BufCache::bread(BlockDevice& dev, uint64_t blkno, uint32_t size) {
  return get(dev, blkno, size, true);
}

Result<BufRef> BufCache::getblk(BlockDevice& dev, uint64_t blkno, uint32_t size) {
  return get(dev, blkno, size, false);
}

void BufCache::bdirty(Buf& b) {
  if (b.dirty_for_owner()) return;  // the caller owns the device: stays so
  MutexLocker g(lock_);
  mark_dirty_locked(b);
}

void BufCache::mark_dirty_locked(Buf& b) {
  b.mu_->assert_held();
  if (b.dirty_) return;
  b.dirty_ = true;
  dirty_.push_back(b);
}

void BufCache::mark_clean_locked(Buf& b) {
  b.mu_->assert_held();
  if (!b.dirty_) return;
  b.dirty_ = false;
  dirty_.erase(dirty_.iterator_to(b));
}

void BufCache::set_pinned(Buf& b, bool pinned) {
  MutexLocker g(lock_);
  b.mu_->assert_held();
  b.pinned_ = pinned;
}

void BufCache::brelse(Buf& b) {
  if (!b.discarded_ && !pressure_.load(std::memory_order_relaxed)) {
    // Still in the table: an eviction that sees no reference frees it,
    // so b is not touched after the decrement.
    if (b.refs_.fetch_sub(1, std::memory_order_release) == 0) panic("brelse of an unreferenced buffer");
    return;
  }
  MutexLocker g(lock_);
  unref_locked(b);
}

void BufCache::unref_locked(Buf& b) {
  b.mu_->assert_held();
  uint32_t old = b.refs_.fetch_sub(1, std::memory_order_relaxed);
  if (old == 0) panic("brelse of an unreferenced buffer");
  if (old != 1) return;
  if (b.discarded_) {
    bytes_ -= b.size_;
    count_--;
    Kmem::free(b.data_);
    delete &b;
  } else if (pressure_.load(std::memory_order_relaxed) && !b.dirty_ && !b.pinned_) {
    free_buf_locked(&b);
  }
}

void BufCache::discard(BufRef&& ref) {
  Buf* b = ref.get();
  if (b == nullptr) return;
  {
    MutexLocker g(lock_);
    b->mu_->assert_held();
    b->pinned_ = false;
    mark_clean_locked(*b);
    if (!b->discarded_) {
      b->discarded_ = true;
      lru_.erase(lru_.iterator_to(*b));
      table_.erase(*b);
    }
  }
  ref.reset();  // the last reference frees it
}

Result<void> BufCache::flush(BlockDevice& dev, bool durable) {
  // Write in block order: the device sees one ascending sweep. The dirty
  // buffers are taken (referenced, marked clean) in one pass and sorted;
  // when no memory for that list can be had, one at a time.
  Buf** batch = nullptr;
  size_t n = 0;
  {
    MutexLocker g(lock_);
    size_t want = 0;
    for (Buf& b : dirty_) {
      b.mu_->assert_held();
      if (b.dev_ == &dev && !b.pinned_) want++;
    }
    if (want > 1) batch = static_cast<Buf**>(km_.alloc(want * sizeof(Buf*)));
    if (batch) {
      for (auto it = dirty_.begin(); it != dirty_.end();) {
        Buf& b = *it++;
        b.mu_->assert_held();
        if (b.dev_ != &dev || b.pinned_) continue;
        b.ref();
        mark_clean_locked(b);
        batch[n++] = &b;
      }
    }
  }
  if (batch) {
    std::sort(batch, batch + n, [](const Buf* a, const Buf* b) { return a->blkno_ < b->blkno_; });
    Result<void> failed;
    // Buffers of adjacent blocks go out in one vectored request.
    constexpr size_t kMaxRun = 256;
    BlockDevice::Segment seg[kMaxRun];
    for (size_t i = 0; i < n && failed.ok();) {
      size_t run = 1;
      while (i + run < n && run < kMaxRun && batch[i + run]->size_ == batch[i]->size_ &&
             batch[i + run]->blkno_ == batch[i]->blkno_ + run)
        run++;
      Result<void> r;
      if (run == 1) {
        r = write_out(*batch[i]);
      } else {
        for (size_t j = 0; j < run; j++) seg[j] = BlockDevice::Segment{batch[i + j]->data_, batch[i + j]->size_};
        uint32_t per = batch[i]->size_ / dev.block_size();
        r = dev.write_blocksv(batch[i]->blkno_ * per, seg, run);
      }
      if (!r.ok()) failed = err(EIO);
      i += run;
    }
    // A device may gather writes and send them later (dev/blockdev.h), so
    // a write that returned is not yet one that arrived: until the sync
    // says so, any buffer of the batch may be lost, and every one goes
    // back to dirty when something failed (else a journal would empty its
    // log of blocks whose home copies never arrived).
    if (failed.ok()) failed = durable ? dev.sync() : dev.drain();
    MutexLocker g(lock_);
    for (size_t i = 0; i < n; i++) {
      Buf* b = batch[i];
      b->mu_->assert_held();
      if (!failed.ok()) mark_dirty_locked(*b);
      unref_locked(*b);  // under pressure, the last reference evicts it
    }
    Kmem::free(batch);
    return failed;
  }
  bool wrote = false;
  for (;;) {
    Buf* next = nullptr;
    {
      MutexLocker g(lock_);
      for (Buf& b : dirty_) {
        b.mu_->assert_held();
        if (b.dev_ == &dev && !b.pinned_ && (!next || b.blkno_ < next->blkno_)) next = &b;
      }
      if (!next) break;
      next->mu_->assert_held();
      next->ref();
      mark_clean_locked(*next);
    }
    // Without memory for a list (or with one buffer): each write synced,
    // so that a buffer is clean only once its bytes arrived.
    Result<void> r = write_out(*next);
    if (r.ok()) r = durable ? dev.sync() : dev.drain();
    wrote = true;
    MutexLocker g(lock_);
    next->mu_->assert_held();
    if (!r.ok()) mark_dirty_locked(*next);
    unref_locked(*next);
    if (!r.ok()) return err(EIO);
  }
  if (wrote) return {};
  return durable ? dev.sync() : dev.drain();
}

bool BufCache::copy_cached(BlockDevice& dev, uint64_t blkno, uint32_t size, void* dst) {
  MutexLocker g(lock_);
  Buf* b = find_locked(dev, blkno, size);
  if (b == nullptr) return false;
  std::memcpy(dst, b->data_, size);
  return true;
}

void BufCache::wrote_through(BlockDevice& dev, uint64_t blkno, uint32_t size, const void* src) {
  MutexLocker g(lock_);
  Buf* b = find_locked(dev, blkno, size);
  if (b == nullptr) return;
  b->mu_->assert_held();
  std::memcpy(b->data_, src, size);
  b->checked_ = false;
  if (!b->pinned_) mark_clean_locked(*b);
}

void BufCache::invalidate(BlockDevice& dev) {
  MutexLocker g(lock_);
  for (auto it = lru_.begin(); it != lru_.end();) {
    Buf& b = *it++;
    b.mu_->assert_held();
    if (b.dev_ != &dev) continue;
    if (b.refs() != 0) panic("invalidate: block %llu still in use", static_cast<unsigned long long>(b.blkno_));
    free_buf_locked(&b);
  }
}

}  // namespace rump
