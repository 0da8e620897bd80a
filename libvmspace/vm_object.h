// vm_object.h: a VmObject is a set of pages indexed by offset, the thing a
// map entry maps.
//
// Two uses:
//   * anonymous memory: pages read as zero until written; created by
//     create_anonymous(). Every private mapping has one as its "layer" (the
//     pages it has written), and MAP_SHARED|MAP_ANONYMOUS maps one directly.
//   * caller-supplied objects (the pager interface): a subclass overrides
//     fill_page() to provide a page's content the first time it is touched,
//     page_mkwrite() and page_written() to hear about writes through
//     shared mappings, and sync() for msync. A vnode's page cache is such
//     a subclass. Make one with `new (kmem) MyObject(kmem, size, ...)` and
//     adopt_ref().
//
// Locking: lock_ (rank kVmObject, under the Vmspace map lock) guards the page
// table and the frames' contents: copies out of a page hold it shared, copies
// into a page and every change of the table (fill, COW break, drop) hold it
// exclusive, so a reader never sees half of a COW break or half of one
// copyout's write to a page. libvmspace never holds two object locks at once.
// Pager callbacks run with lock_ held exclusive (fill_page, page_mkwrite,
// page_written) or not at all (sync); they must not call back into a
// Vmspace.
//
// Ownership: the table holds one share of each frame (Page::share). Objects
// are refcounted; map entries hold references.
#pragma once

#include <atomic>
#include <cerrno>
#include <boost/intrusive/list.hpp>
#include <cstddef>
#include <cstdint>

#include "absl/functional/function_ref.h"

#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"
#include "page.h"
#include "page_table.h"
#include "sync/mutex.h"

namespace rump::vm {

// What fill_page returns for a page wholly past the end of a file (the
// kernel's kBusFault, kern/file_map.h).
inline constexpr int kPagerPastEnd = ENXIO;

// A view of an object's frames in a host-space process's memory
// (rumpuser_shmalias): pages [first, first+pinned) of the object appear at
// host address addr on; each holds a host_maps_ count (and, for a writer,
// host_writers_) of its page. The mapper owns it; the object lists it
// under its lock while it is registered, so that a change of the file
// (truncation) can take the pages out of every view, and a file grown
// again can put them back. Pages of the mapping past `pinned` (up to
// `length`, the mapping's) are a SIGBUS mapping (rumpuser_busmap).
struct HostView {
  uint64_t addr = 0;
  uint64_t first = 0;
  uint64_t pinned = 0;
  uint64_t length = 0;
  int prot = 0;  // the mapping's protection (mprotect keeps it)
  bool writer = false;
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;
  using List = boost::intrusive::list<
      HostView, boost::intrusive::member_hook<HostView, boost::intrusive::list_member_hook<boost::intrusive::link_mode<
                                                            boost::intrusive::safe_link>>,
                                              &HostView::hook>,
      boost::intrusive::constant_time_size<false>>;
};

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
  // A store through a shared mapping is about to change the page p at
  // pindex (resident, writable): a write-back cache makes sure the page
  // will have somewhere to go (Linux's page_mkwrite). An error refuses the
  // store; kBusFault (kern/file_map.h) is SIGBUS to the storing process
  // and EFAULT to a system call's copy. Called with lock_ held exclusive.
  virtual Result<void> page_mkwrite(uint64_t pindex, Page* p);
  // Bytes [offset, offset+len) were written through a shared mapping.
  virtual void page_written(uint64_t offset, size_t len);
  // The page at pindex, pinned by a writer view, may have been written
  // (the host reports no stores: munmap, msync, exit, a read of the
  // file). The default is page_written of the whole page; a pager may
  // first check that the page differs from the file.
  virtual void host_page_written(uint64_t pindex) { page_written(pindex << kPageShift, kPageSize); }
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
  // The number of host views changed by delta (lock_ held exclusive); 0:
  // writer views pin more pages than before (a view grown or made
  // writable), called before the host can store into them.
  virtual void host_views_changed_locked(int delta) {}
  // Pages [first, first+count) are pinned by a writer view from now on (a
  // new view, a view grown or made writable), before the host can store
  // into them: the host's stores reach no page_mkwrite, so a write-back
  // cache reserves the room they may need now. An error refuses the pin
  // (the caller lets the pages go, which gives the room back). Called
  // with lock_ held exclusive.
  virtual Result<void> host_writer_pin_locked(uint64_t first, uint64_t count) { return {}; }
  // The page at pindex is pinned by no writer view any more (after
  // host_page_written when it was let go as written): room it holds for
  // stores that never came goes back. Called with lock_ held exclusive.
  virtual void host_writer_unpin_locked(uint64_t pindex) {}

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
  // Releases the pages in [first, first+count). A page a host view pins
  // stays where it is: bytes [byte_lo, byte_hi) of it are filled again
  // from the pager; a page the pager finds past the end leaves every view
  // (a SIGBUS mapping from there on) and goes.
  void drop_range(uint64_t first, uint64_t count, uint64_t byte_lo = 0, uint64_t byte_hi = ~uint64_t{0});
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

  // ---- views in a host-space process's memory (pager objects only) ----
  // Fills and pins pages [first, first+count) for view v (v.first, v.writer
  // set; v.addr its host address), stopping at the first page past the
  // end (kPagerPastEnd), aliases them at v.addr with protection
  // prot, makes the rest of the count a SIGBUS mapping, and registers v
  // (v.pinned: the pages aliased). An error (EIO, ENOMEM, the host's)
  // leaves nothing pinned, aliased or registered.
  Result<void> host_view_add(HostView& v, uint64_t count, int prot);
  // Lets go of pages [v.first+from, v.first+v.pinned) of a registered
  // view: with written (a writer's munmap, exit), the pager hears of
  // every page first (page_written). from == 0 also unregisters v. The
  // host memory is the caller's business.
  void host_view_cut_locked(HostView& v, uint64_t from, bool written) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Splits a registered view at page `at` (0 < at < its length): tail
  // takes the view's pages from at on and is registered.
  void host_view_split_locked(HostView& head, HostView& tail, uint64_t at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // A view made writable (mprotect): its pages count as written from now.
  // An error of the pager's (host_writer_pin_locked: ENOSPC) leaves it
  // read-only.
  Result<void> host_view_make_writer_locked(HostView& v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // The file grew: every view's pages past its pinned ones that now lie
  // within the file (up to the view's length) are filled, pinned and
  // aliased in place of the SIGBUS mapping, as Linux's mapping reads the
  // file again there. Stops at a page it cannot fill or alias (the rest
  // stays SIGBUS).
  void host_views_grow_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // The pager hears of every pinned page of v in [first, first+count) as
  // written (msync of a writer).
  void host_view_written_locked(const HostView& v, uint64_t first, uint64_t count) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Calls fn with the index of every page a writer view pins (a
  // write-back cache counts them dirty when it writes back: the host
  // reports no stores).
  void for_each_host_written_locked(absl::FunctionRef<void(uint64_t)> fn) ABSL_SHARED_LOCKS_REQUIRED(lock_);
  // Views registered now (relaxed: a hint for hot paths).
  uint32_t host_views() const { return host_views_.load(std::memory_order_relaxed); }

 protected:
  VmObject(Kmem& kmem, uint64_t size, bool anonymous);
  // A zeroed frame for this object, not yet in the table (a pager's run
  // of fills): from shared chunks for a pager object, so that host views
  // can alias it.
  Result<Page*> alloc_page_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    if (pool_ != nullptr) return Page::alloc_pooled(*kmem_, *pool_);
    return Page::alloc_zeroed(*kmem_, &chunk_, !anonymous_);
  }
  // New frames come from pool (shared memory) from now on (a pager
  // object, before its first page); the object holds a reference.
  void use_pool(FramePool* pool) {
    pool->ref();
    pool_ = pool;
  }

 private:
  // Room for one more page, made before anything else changes.
  Result<void> reserve_one_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) { return pages_.reserve(pages_.size() + 1); }
  // A zeroed frame with room for it in the table; for a pages_clean()
  // object, dropping its pages when memory runs out.
  Result<Page*> alloc_for_fill_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Refills bytes [lo, hi) of pinned page p at pindex; false: past the end.
  bool refill_pinned_locked(uint64_t pindex, Page* p, uint64_t lo, uint64_t hi) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Aliases the pinned pages [from, to) of view v at their place in it;
  // 0 or the host's error.
  int alias_locked(const HostView& v, uint64_t from, uint64_t to, int prot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Takes page pindex out of every view that pins it (a SIGBUS mapping
  // from there to the view's end).
  void unalias_locked(uint64_t pindex) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void unpin_locked(uint64_t first, uint64_t count, bool writer, bool written) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
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
  FramePool* pool_ = nullptr;  // or from here (set once, before any page)
  HostView::List views_ ABSL_GUARDED_BY(lock_);
  std::atomic<uint32_t> host_views_{0};
};

}  // namespace rump::vm
