// page.h: page frames of user memory and the page-size arithmetic.
//
// A Page is one 4 KiB frame of host memory (from a FrameChunk, or
// rumpuser_malloc'd on its own, page aligned; or a device's own memory,
// wrap_external) holding user data, charged to the Kmem it was allocated from so that a
// memory limit turns into ENOMEM. A frame is referenced by page tables
// (VmObject::pages_): after fork the private layers of parent and child
// refer to the same frames, and `shares_` counts those tables. A table may
// write into a frame in place only when it is the frame's sole holder
// (exclusive()); otherwise it copies the frame first (copy-on-write).
//
// Who calls this: vm_object.cc only. Everything else goes through VmObject.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"
#include "sync/mutex.h"

namespace rump::vm {

class FramePool;

inline constexpr uint64_t kPageShift = 12;
inline constexpr uint64_t kPageSize = uint64_t{1} << kPageShift;
inline constexpr uint64_t kPageMask = kPageSize - 1;

constexpr uint64_t page_trunc(uint64_t a) { return a & ~kPageMask; }
// The caller checks that a + kPageMask does not overflow.
constexpr uint64_t page_round(uint64_t a) { return (a + kPageMask) & ~kPageMask; }
constexpr bool page_aligned(uint64_t a) { return (a & kPageMask) == 0; }

// Frames are carved from host chunks of kChunkPages pages, handed out in
// order to one VmObject (or, for page caches, to the objects sharing a
// FramePool), so that pages faulted in one after the other sit
// next to each other in host memory and a copy can memcpy a whole run of
// them at once. Chunks come from the Kmem's chunk cache (base/chunk_cache.h:
// host mappings kept off the C library's heap, reused resident), and go
// back to it when their last frame is freed and their owner has moved on
// to another chunk. Each frame is charged to the Kmem on its own when
// handed out.
class FrameChunk {
 public:
  static constexpr uint64_t kChunkPages = 16;
  static_assert(kChunkPages * kPageSize == ChunkCache::kChunkBytes);
  // The owner's reference on a chunk it still allocates from; null: none.
  static void drop_owner(FrameChunk* c) {
    if (c != nullptr) c->put();
  }

 private:
  friend class Page;
  friend class FramePool;
  FrameChunk(Kmem& kmem, std::byte* base, bool fresh, bool shared)
      : kmem_(&kmem), base_(base), fresh_(fresh), shared_(shared) {}
  void put();
  // The index in the chunk of one of its frames.
  uint32_t index_of(const std::byte* frame) const { return static_cast<uint32_t>((frame - base_) / kPageSize); }
  Kmem* kmem_;                       // whose cache the chunk goes back to
  std::byte* base_;
  uint32_t next_ = 0;                // frames handed out in order (owner's lock)
  std::atomic<uint32_t> refs_{1};    // frames alive + 1 while owned (not pooled)
  // Straight from the host, so every frame not yet handed out in order is
  // zero.
  bool fresh_;
  // Shared host memory (rumpuser_shmmap): a host-space mapping can alias
  // the frames (page caches).
  bool shared_;
  // A pooled chunk (pool_ set) is counted under the pool's lock instead of
  // by refs_: its freed frames are handed out again.
  FramePool* pool_ = nullptr;
  uint32_t live_ = 0;                // frames alive
  uint32_t free_ = 0;                // bit i: frame i freed, reusable
  bool listed_ = false;              // on the pool's list of chunks with room
  FrameChunk* prev_ = nullptr;       // that list's links
  FrameChunk* next_room_ = nullptr;
};

// One current chunk that many objects take frames from (the page caches
// of files, VnodePager): a small file takes one frame of a chunk rather
// than a chunk of its own, so 20,000 small files need a sixteenth of the
// host mappings (and of the munmaps when their caches go).
//
// A frame freed in a chunk the pool has moved on from is handed out again:
// the chunk waits on the pool's list of chunks with room, and a new chunk
// is taken only when the current one and every listed one are full. So
// the pool holds at most one chunk more than the most frames it ever had
// in use at once, however the caches free their pages (eviction, a file
// dropped): freed frames are never stranded in chunks that some long-kept
// page holds. A chunk goes back to the Kmem's cache when its last frame
// is freed and it is not the current one.
//
// Reference counted: each object using it holds a reference. When the
// last goes, the pool lives on until the last frame of its chunks is
// freed (a page may outlive its object), then goes with it.
class FramePool : public KObject, public RefCounted<FramePool> {
 public:
  static FramePool* create(Kmem& kmem) { return new (kmem) FramePool(); }
  // Chunks held (current, listed, and full ones with frames alive).
  uint32_t chunks() {
    SpinLocker g(lock_);
    return chunks_;
  }

 private:
  friend class Page;
  friend class RefCounted<FramePool>;
  FramePool() = default;
  ~FramePool() = default;
  void last_unref();
  // Frame index i of chunk c is free again; may give c back, and free the
  // pool once retired and empty.
  void give_frame(FrameChunk* c, uint32_t i);
  // Takes a frame of c (which has room) with the lock held.
  static std::byte* take_locked(FrameChunk* c, bool* zero);
  static bool has_room(const FrameChunk* c) { return c->next_ < FrameChunk::kChunkPages || c->free_ != 0; }
  void list_locked(FrameChunk* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void unlist_locked(FrameChunk* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Innermost, as the chunk cache's lock (never held together with it):
  // nothing is called with it held (a new chunk is made outside it, and
  // one given back goes after it is released).
  SpinLock lock_{LockRank::kKmem};
  FrameChunk* cur_ ABSL_GUARDED_BY(lock_) = nullptr;
  FrameChunk* room_ ABSL_GUARDED_BY(lock_) = nullptr;  // list of chunks with room
  uint32_t chunks_ ABSL_GUARDED_BY(lock_) = 0;
  bool retired_ ABSL_GUARDED_BY(lock_) = false;  // no reference left
};

class Page : public KObject {
 public:
  // A zero-filled frame, or ENOMEM when the Kmem limit or the host says no.
  // chunk: the allocating object's current chunk (updated), or null for a
  // frame of its own. shared: from chunks of shared host memory, which a
  // host-space mapping can alias (an object always asks for one kind).
  static Result<Page*> alloc_zeroed(Kmem& kmem, FrameChunk** chunk = nullptr, bool shared = false);
  // A zero-filled frame of shared host memory from pool's current chunk.
  static Result<Page*> alloc_pooled(Kmem& kmem, FramePool& pool);
  // A frame holding a copy of src (the copy-on-write break).
  static Result<Page*> alloc_copy(Kmem& kmem, const Page& src, FrameChunk** chunk = nullptr);
  // A page for memory someone else owns and charged (a device's buffer
  // that a process maps, /dev/kcov): page aligned, kPageSize bytes, alive
  // until the last table lets go. Releasing it frees only the Page.
  static Result<Page*> wrap_external(Kmem& kmem, std::byte* frame);

  std::byte* data() const { return frame_; }

  // Another page table refers to this frame.
  void share() { shares_.fetch_add(1, std::memory_order_relaxed); }
  // A page table lets go; the last one frees the frame and uncharges it.
  // The release ordering publishes this table's last reads of the frame to
  // whoever then finds the frame exclusive() and writes into it.
  void release();
  // True when exactly one page table refers to the frame. Acquire: pairs
  // with release() of the table that went away.
  bool exclusive() const { return shares_.load(std::memory_order_acquire) == 1; }
  uint32_t shares() const { return shares_.load(std::memory_order_relaxed); }

  // Host-space mappings (rumpuser_shmalias views) of this frame, and how
  // many of them may have been written. Guarded by the owning object's
  // lock: while any exists the object keeps the page where it is (no
  // eviction, no drop, no copy-on-write; pager pages are never shared).
  uint32_t host_maps_ = 0;
  uint32_t host_writers_ = 0;
  bool pinned() const { return host_maps_ != 0; }
  // True if the frame lies in shared host memory that rumpuser_shmalias
  // can view; chunk_id: frames of one chunk that are adjacent are viewed
  // with one call.
  bool aliasable() const;
  const void* chunk_id() const { return chunk_; }

 private:
  Page(Kmem& kmem, std::byte* frame, FrameChunk* chunk, bool external = false)
      : kmem_(&kmem), frame_(frame), chunk_(chunk), external_(external) {}
  ~Page() = default;
  // *zero: the frame is known to be all zero (from a fresh chunk).
  static Result<Page*> alloc_raw(Kmem& kmem, FrameChunk** chunk, bool* zero, bool shared);
  // A new chunk of frames with its bookkeeping; null when out of memory.
  static FrameChunk* new_chunk(Kmem& kmem, bool shared);

  Kmem* kmem_;         // the arena the frame is charged to
  std::byte* frame_;   // kPageSize bytes, page aligned, owned
  FrameChunk* chunk_;  // where frame_ lives, or null: frame_ is its own block
  std::atomic<uint32_t> shares_{1};
  bool external_;      // frame_ is not ours (wrap_external): never freed here
};

}  // namespace rump::vm
