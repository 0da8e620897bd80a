// vm_object.h: a VmObject is a set of pages indexed by offset, the thing a
// map entry maps.
//
// Two uses:
//   * anonymous memory: pages read as zero until written; created by
//     create_anonymous(). Every private mapping has one as its "layer" (the
//     pages it has written), and MAP_SHARED|MAP_ANONYMOUS maps one directly.
//   * caller-supplied objects (the pager interface): a subclass overrides
//     fill_page() to provide a page's content the first time it is touched,
//     page_written() to hear about writes through shared mappings, and
//     sync() for msync. A vnode's page cache is such a subclass. Make one
//     with `new (kmem) MyObject(kmem, size, ...)` and adopt_ref().
//
// Locking: lock_ (rank kVmObject, under the Vmspace map lock) guards the page
// table and the frames' contents: copies out of a page hold it shared, copies
// into a page and every change of the table (fill, COW break, drop) hold it
// exclusive, so a reader never sees half of a COW break or half of one
// copyout's write to a page. libvmspace never holds two object locks at once.
// Pager callbacks run with lock_ held exclusive (fill_page, page_written) or
// not at all (sync); they must not call back into a Vmspace.
//
// Ownership: the table holds one share of each frame (Page::share). Objects
// are refcounted; map entries hold references.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"
#include "page.h"
#include "page_table.h"
#include "sync/mutex.h"

namespace rump::vm {

class VmObject : public KObject, public RefCounted<VmObject> {
 public:
  static constexpr uint64_t kUnbounded = ~uint64_t{0};

  static Result<RefPtr<VmObject>> create_anonymous(Kmem& kmem);
  virtual ~VmObject();
  VmObject(const VmObject&) = delete;
  VmObject& operator=(const VmObject&) = delete;

  Kmem& kmem() const { return *kmem_; }
  // Bytes; pages at or past size() cannot be touched (EFAULT).
  uint64_t size() const { return size_; }
  bool anonymous() const { return anonymous_; }
  // The widest protection a shared mapping of this object may have
  // (a read-only file: PROT_READ|PROT_EXEC).
  virtual int max_shared_prot() const;
  size_t resident_pages();

  // Shared mappings that may be made writable (Linux's i_mmap_writable):
  // each map entry that is one holds a count here, and a seal against
  // writes (memfd F_SEAL_WRITE) denies them for good. add_writable_map:
  // EPERM once denied. deny_writable_maps: EBUSY while any exist.
  // Counting is lock-free, so an mmap and a seal racing see one order.
  Result<void> add_writable_map();
  void drop_writable_map() { writable_maps_.fetch_sub(1, std::memory_order_acq_rel); }
  Result<void> deny_writable_maps();
  // Map entries (of every space) that map this object (MapEntry::
  // set_object): how many mappings share its pages, for /proc's Pss.
  void add_map_entry() { map_entries_.fetch_add(1, std::memory_order_relaxed); }
  void drop_map_entry() { map_entries_.fetch_sub(1, std::memory_order_relaxed); }
  int map_entries() const { return map_entries_.load(std::memory_order_relaxed); }

  // ---- the pager interface (override in a subclass) ----
  // Fills `frame` (kPageSize bytes, zeroed) with the content at `offset`
  // (page aligned, < size()). An error (EIO ...) makes the touching copy fail
  // with that error. Called with lock_ held exclusive.
  virtual Result<void> fill_page(uint64_t offset, std::byte* frame);
  // Bytes [offset, offset+len) were written through a shared mapping.
  virtual void page_written(uint64_t offset, size_t len);
  // msync(2) of [offset, offset+len) with MS_* flags.
  virtual Result<void> sync(uint64_t offset, uint64_t len, int flags);
  // True if every page is a clean copy of what the pager can fill again
  // (a file cache that writes stores through): when a fill finds no memory
  // under the Kmem's limit, the object then drops its pages and tries once
  // more, so a cache never holds memory another fault needs.
  virtual bool pages_clean() const { return false; }
  // True if the page at pindex may be given back and filled again later
  // (a clean page of a write-back file cache). Called with lock_ held
  // exclusive; the default is pages_clean().
  virtual bool page_reclaimable_locked(uint64_t pindex) { return pages_clean(); }
  // Called with lock_ held exclusive when a fill found no memory and no
  // reclaimable page: a write-back cache writes its dirty pages back here
  // so that they can be given back.
  virtual void clean_pages_locked() {}

  // ---- the page table, for libvmspace (indices are page numbers) ----
  RwLock& lock() ABSL_LOCK_RETURNED(lock_) { return lock_; }
  Page* lookup_locked(uint64_t pindex) ABSL_SHARED_LOCKS_REQUIRED(lock_) { return pages_.find(pindex); }
  // The page at pindex, filled (zero or by the pager) if absent.
  Result<Page*> fault_locked(uint64_t pindex) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // The page at pindex, safe to write into: filled if absent, copied if
  // other tables share the frame.
  Result<Page*> fault_write_locked(uint64_t pindex) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Puts a frame (whose share the caller hands over) at an empty index.
  Result<void> insert_locked(uint64_t pindex, Page* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // The page at pindex, about to be overwritten whole: an absent page is
  // not filled by the pager (a fresh zeroed frame), a present one is made
  // safe to write into as fault_write_locked does.
  Result<Page*> fault_overwrite_locked(uint64_t pindex) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Releases the pages in [first, first+count).
  void drop_range(uint64_t first, uint64_t count);
  // Releases every page page_reclaimable_locked() allows; returns how many
  // went (global eviction under the memory limit).
  size_t drop_reclaimable();
  // A new anonymous object holding the pages of [first, first+count) at
  // indices from new_first on, shared with this one (fork, layer split).
  Result<RefPtr<VmObject>> clone_range(uint64_t first, uint64_t count, uint64_t new_first);
  // Copies one page's content (filling it if absent) into a fresh private
  // frame: how a private mapping gets its own copy of a backing page.
  Result<Page*> copy_page(uint64_t pindex);
  // Copies one page's content (filling it if absent) to dst (kPageSize
  // bytes): a snapshot for memory the object does not own.
  Result<void> read_page(uint64_t pindex, std::byte* dst);

 protected:
  VmObject(Kmem& kmem, uint64_t size, bool anonymous);

 private:
  // Room for one more page, made before anything else changes.
  Result<void> reserve_one_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) { return pages_.reserve(pages_.size() + 1); }
  // A zeroed frame with room for it in the table; for a pages_clean()
  // object, dropping its pages when memory runs out.
  Result<Page*> alloc_for_fill_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  size_t drop_reclaimable_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  template <class Fn>
  void for_each_in_range_locked(uint64_t first, uint64_t count, Fn&& fn) ABSL_SHARED_LOCKS_REQUIRED(lock_);

  // > 0: that many writable shared mappings; kDenied (negative): sealed.
  static constexpr int kDenied = -(1 << 30);
  std::atomic<int> writable_maps_{0};
  std::atomic<int> map_entries_{0};
  Kmem* kmem_;
  uint64_t size_;
  bool anonymous_;
  RwLock lock_{LockRank::kVmObject};
  PageTable pages_ ABSL_GUARDED_BY(lock_);
  FrameChunk* chunk_ ABSL_GUARDED_BY(lock_) = nullptr;  // where new frames come from
};

}  // namespace rump::vm
