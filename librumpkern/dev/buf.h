// buf.h: the buffer cache: blocks of block devices (dev/blockdev.h) kept
// in kernel memory, keyed by (device, block), for disk file systems'
// metadata and data.
//
// Who calls: file systems mounted on a BlockDevice (fs/ext2). A block is
// named by its number in units of the caller's block size (the file
// system's, a multiple of the device's 512 bytes); one device is used with
// one block size at a time. The caller serialises everything it does with
// one device's blocks (a file system holds its mount's tree lock), so a
// buffer's bytes are guarded by that caller, not by the cache; the cache
// lock (a leaf) guards only the table, the lists and the counts. Because
// of that ownership, releasing a reference and marking a dirty buffer
// dirty again take no lock: others only read the buffer's state, under
// the lock, to evict it.
//
// Write-back: bdirty() marks a buffer; nothing reaches the device until
// flush() (fsync, syncfs, umount, halt) or until memory runs short. Memory:
// buffers come from the kernel's Kmem, so RUMP_MEMLIMIT bounds the cache.
// When Kmem refuses a new buffer, unreferenced clean buffers are evicted,
// oldest use first; when none is left, the requesting device's
// unreferenced dirty buffers are written back and evicted (the caller
// owns that device, so writing them races with nobody). Without a limit
// the cache keeps at most kSoftCap bytes of unreferenced clean buffers.
//
// Lifetime: the cache is the kernel's "bufcache" component's, and every
// mount on a block device holds it too (hold/release): at halt a file
// system whose files are still open in a process goes only when that
// process ends, after the components' fini, and writes its last changes
// then.
//
// Pressure (a fault-injection mode, rump/fault.h): while the kernel's
// cache_pressure is on, brelse evicts a clean buffer whose last
// reference it drops, as the worst memory pressure could between any two
// uses.
//
// Pinning: a journaling file system pins a buffer it has put in a
// transaction that is not yet committed; neither flush() nor eviction
// writes a pinned buffer to its home block until it is unpinned (the
// caller also keeps a reference, so it is never evicted meanwhile).
#pragma once

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/unordered_set_hook.hpp>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "base/intrusive_hash.h"
#include "base/kmem.h"
#include "base/result.h"
#include "dev/blockdev.h"
#include "sync/mutex.h"

namespace rump {

class Kernel;
class BufCache;

class Buf : public KObject {
 public:
  char* data() const { return data_; }
  uint32_t size() const { return size_; }
  uint64_t blkno() const { return blkno_; }
  // The file system found the bytes as read from the device valid (a
  // checksum verified once, not on every use). Cleared whenever the cache
  // fills the buffer from the device or from a page (wrote_through) and
  // by getblk (the caller writes new bytes); like the bytes, guarded by
  // the caller that owns the device.
  bool checked() const { return checked_; }
  void set_checked() { checked_ = true; }

 private:
  friend class BufCache;
  struct Key {
    const BlockDevice* dev;
    uint64_t blkno;
    bool operator==(const Key& o) const { return dev == o.dev && blkno == o.blkno; }
    template <class H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.dev, k.blkno);
    }
  };
  struct KeyOf {
    using type = Key;
    Key operator()(const Buf& b) const { return Key{b.dev_, b.blkno_}; }
  };

  Mutex* mu_ = nullptr;  // the cache's lock
  BlockDevice* dev_ = nullptr;
  uint64_t blkno_ = 0;
  uint32_t size_ = 0;
  char* data_ = nullptr;
  // References: taken under the cache lock, and given back under it too
  // except by brelse, which drops one with a release decrement (the
  // owner's use of the bytes happens before an eviction that reads 0 with
  // an acquire load, under the lock).
  std::atomic<uint32_t> refs_{0};
  // Changed under the cache lock, and only by the device's owner: the
  // owner may read it without the lock (dirty_for_owner).
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool pinned_ ABSL_GUARDED_BY(mu_) = false;
  bool checked_ = false;
  // Out of the table, freed by its last brelse. Set under the cache lock
  // by the owner (discard), read by the owner alone.
  bool discarded_ = false;
  bool dirty_for_owner() const ABSL_NO_THREAD_SAFETY_ANALYSIS { return dirty_; }
  uint32_t refs() const { return refs_.load(std::memory_order_acquire); }
  void ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  boost::intrusive::unordered_set_member_hook<> hash_hook_;
  boost::intrusive::list_member_hook<> lru_hook_;    // every buffer, oldest use first
  boost::intrusive::list_member_hook<> dirty_hook_;  // dirty buffers only
};

// A counted use of a buffer; releases it when it goes.
class BufRef {
 public:
  BufRef() = default;
  BufRef(BufCache* c, Buf* b) : cache_(c), buf_(b) {}
  BufRef(BufRef&& o) noexcept : cache_(o.cache_), buf_(std::exchange(o.buf_, nullptr)) {}
  BufRef& operator=(BufRef&& o) noexcept {
    if (this != &o) {
      reset();
      cache_ = o.cache_;
      buf_ = std::exchange(o.buf_, nullptr);
    }
    return *this;
  }
  BufRef(const BufRef&) = delete;
  BufRef& operator=(const BufRef&) = delete;
  ~BufRef() { reset(); }
  void reset();
  Buf* get() const { return buf_; }
  char* data() const { return buf_->data(); }
  uint32_t size() const { return buf_->size(); }
  explicit operator bool() const { return buf_ != nullptr; }
  // Marks the block modified (written back later).
  void dirty();

 private:
  BufCache* cache_ = nullptr;
  Buf* buf_ = nullptr;
};

class BufCache : public KObject {
 public:
  // pressure: while true, a buffer whose last reference goes while it is
  // clean is evicted at once (rump_kernel_set_cache_pressure).
  BufCache(Kmem& km, const std::atomic<bool>& pressure);
  ~BufCache();
  BufCache(const BufCache&) = delete;
  BufCache& operator=(const BufCache&) = delete;

  // Block blkno (size bytes) of dev, read from the device unless cached.
  // EIO on a device error, ENOMEM when no memory can be had.
  Result<BufRef> bread(BlockDevice& dev, uint64_t blkno, uint32_t size);
  // The same block without reading it: the caller overwrites all of it
  // (a new block's contents are zeros).
  Result<BufRef> getblk(BlockDevice& dev, uint64_t blkno, uint32_t size);
  // Block blkno if it is cached (referenced, as bread gives it), else an
  // empty reference: the caller decides how to get it.
  BufRef lookup(BlockDevice& dev, uint64_t blkno, uint32_t size);
  // One more reference to b, which the caller already holds one of (so
  // that no eviction can take it meanwhile): no lookup, no lock.
  BufRef share(Buf& b) {
    b.ref();
    return BufRef(this, &b);
  }
  void bdirty(Buf& b);
  void brelse(Buf& b);
  // Keeps a dirty buffer off its home block (pin) or lets it go there
  // again (unpin); see "Pinning" above.
  void set_pinned(Buf& b, bool pinned);
  // Drops the buffer b refers to without writing it (a journal abandoning
  // its running transaction: what was not committed never reaches the
  // device). The next bread of that block reads the device again; other
  // references keep the old bytes until they go. Consumes b.
  void discard(BufRef&& b);
  // Writes every dirty buffer of dev back (pinned ones excepted), then
  // syncs the device. Not durable: the writes have arrived at the device
  // (drain), not its stable storage, when it returns; for a caller that
  // syncs the device itself before anything that depends on them is
  // written (a journal's commit block).
  Result<void> flush(BlockDevice& dev, bool durable = true);
  // File data moved between a page cache and the device past this cache
  // (fs/ext2/pageio.cc) stays coherent with a copy a file system made
  // here (a write through its own write path): copy_cached copies the
  // cached bytes of block blkno to dst (false: not cached, the device's
  // bytes are current); wrote_through gives a cached copy the bytes just
  // written to the device, which make it clean (unless pinned).
  bool copy_cached(BlockDevice& dev, uint64_t blkno, uint32_t size, void* dst);
  void wrote_through(BlockDevice& dev, uint64_t blkno, uint32_t size, const void* src);
  // Forgets every buffer of dev (after a flush, at unmount; dirty ones
  // are dropped unwritten). Buffers still referenced are a caller bug.
  void invalidate(BlockDevice& dev);

  // dev has dirty buffers (pinned ones included).
  bool has_dirty(const BlockDevice& dev) const;

  size_t bytes() const;
  size_t count() const;

  // One more holder; release by the last one deletes the cache.
  void hold() { holds_.fetch_add(1, std::memory_order_relaxed); }
  void release() {
    if (holds_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  static constexpr size_t kSoftCap = size_t{256} << 20;

 private:
  using Table = IntrusiveHash<Buf, &Buf::hash_hook_, Buf::KeyOf>;
  using Lru = boost::intrusive::list<
      Buf, boost::intrusive::member_hook<Buf, boost::intrusive::list_member_hook<>, &Buf::lru_hook_>,
      boost::intrusive::constant_time_size<false>>;
  using DirtyList = boost::intrusive::list<
      Buf, boost::intrusive::member_hook<Buf, boost::intrusive::list_member_hook<>, &Buf::dirty_hook_>,
      boost::intrusive::constant_time_size<false>>;

  Result<BufRef> get(BlockDevice& dev, uint64_t blkno, uint32_t size, bool read);
  // The cached buffer of blkno if it has this size, else null (not
  // referenced).
  Buf* find_locked(BlockDevice& dev, uint64_t blkno, uint32_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // A cached buffer found in the table, referenced and made the most
  // recently used. getblk: the caller writes new bytes over it.
  BufRef take_locked(Buf& b, bool getblk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // A fresh unlinked buffer, evicting to make room if Kmem refuses.
  Result<Buf*> alloc_buf(BlockDevice& dev, uint32_t size);
  // Frees one unreferenced clean buffer (oldest first): false if none.
  bool evict_one_clean();
  // Writes back one unreferenced dirty buffer of dev: false if none.
  Result<bool> clean_one(BlockDevice& dev);
  void free_buf_locked(Buf* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Drops a reference: the last one frees a discarded buffer, and under
  // pressure evicts a clean one (as brelse).
  void unref_locked(Buf& b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // b on the dirty list (marked dirty), or off it (clean), unless it is
  // so already.
  void mark_dirty_locked(Buf& b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void mark_clean_locked(Buf& b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void trim_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  static Result<void> write_out(Buf& b);

  Kmem& km_;
  const std::atomic<bool>& pressure_;
  std::atomic<uint32_t> holds_{1};  // the component's, and each mount's
  mutable Mutex lock_;  // a leaf: nothing else is taken under it
  Table table_ ABSL_GUARDED_BY(lock_);
  Lru lru_ ABSL_GUARDED_BY(lock_);
  DirtyList dirty_ ABSL_GUARDED_BY(lock_);
  size_t bytes_ ABSL_GUARDED_BY(lock_) = 0;
  size_t count_ ABSL_GUARDED_BY(lock_) = 0;
};

// The kernel's buffer cache (the "bufcache" component's state).
BufCache& buf_cache(Kernel& k);

inline void BufRef::reset() {
  if (buf_) cache_->brelse(*std::exchange(buf_, nullptr));
}
inline void BufRef::dirty() { cache_->bdirty(*buf_); }

}  // namespace rump
