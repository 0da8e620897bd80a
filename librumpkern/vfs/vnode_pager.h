// vnode_pager.h: the page cache of a regular file: the pages mmap(2) maps
// and, on file systems that cache file data (ext2/3/4, etfs), the pages
// read(2) and write(2) copy to and from.
//
// A VnodePager is the VmObject of one vnode (Vnode::pager_ points at it
// without a reference). It reaches the file system through the vnode's
// page I/O (vfs/page_io.h: runs of pages straight
// between the frames and the device, ext2/3/4), or its read and write
// operations where there is none. Two modes, chosen by the mount
// (Mount::caches_file_data()):
//
// Write-back (ext2/3/4, etfs). The cache is the file's data:
//   * read(2) and write(2) copy through the cache's pages (read_cached,
//     write_cached); a page is filled from the file system on its first
//     touch (a read fills the run of missing pages it covers in one
//     call), unless a write overwrites it whole or it lies past the end;
//   * delayed allocation: write(2) reserves room in the file system for
//     each page it dirties that has no blocks yet (PageIo::reserve_page),
//     so that a full file system is ENOSPC (or a short write) at the
//     call; write-back gives a run's reservations back as it allocates
//     the run's blocks, dropping a dirty page gives its own back;
//   * a write(2) that grows the file sets the new size in the file system
//     at once (a hole there until write-back), so stat and a racing
//     reader see it; the bytes stay in dirty pages;
//   * a store through a MAP_SHARED mapping marks the page dirty (no write
//     through), so read(2) sees it at once: one cache for both; the store
//     reserves the page's room first as write(2) does (page_mkwrite), and
//     a full file system refuses it (SIGBUS, EFAULT to a system call's
//     copy), so no dirty page is ever without blocks or a reservation;
//   * dirty pages go back to the file system in runs of consecutive pages
//     (PageIo::write_pages allocates the blocks, journals the mapping and
//     writes the data to the device before anything can commit that
//     mapping, so ext's data=ordered holds) by flush(): asynchronously
//     from the kernel's flusher (a callout that
//     writes back every cache whose oldest dirty page is older than the
//     dirty expiry), synchronously by a writer that finds more dirty pages
//     than the dirty limit (throttling), and by fsync, fdatasync,
//     msync(MS_SYNC), syncfs, sync, the last close of a description of the
//     file, unmount and halt;
//   * a write-back error is recorded in the vnode (Vnode::wb_error_, an
//     error sequence as Linux's errseq_t): each open description reports
//     it once at its next fsync, fdatasync, msync or syncfs;
//   * truncate, fallocate and O_TRUNC write the dirty pages back first and
//     drop the pages they change afterwards (StalePages).
// Write-through (tmpfs and any other file system): only mmap uses the
// cache; stores reach the file at once (page_written) and changes through
// the file drop the stale pages, as before.
//
// Memory: frames are charged to the kernel's Kmem, so RUMP_MEMLIMIT bounds
// the cache. The kernel keeps every write-back cache on one list, least
// recently used first (PageCache below). A read or write that finds the
// kernel near its limit, or whose fill fails for want of memory, reclaims:
// from the least recently used cache on, dirty pages are written back and
// clean pages given back. A fault through a mapping gives back the clean
// pages of its own cache (VmObject::page_reclaimable_locked). What cannot
// be found is ENOMEM to the caller.
//
// Locking: the cache's page lock (rank kVmObject) ranks below the tree lock
// (kVnode): fill, write-back and the size checks of read/write take the
// tree lock inside the page lock; the VFS never takes the page lock with
// the tree lock held, hence StalePages, which drops pages after the tree
// lock is released. The kernel's cache list lock (a leaf, unranked)
// guards the list; it is never held across I/O or another lock: the list
// is walked by taking references to a batch of caches.
//
// Lifetime: the cache holds a reference to its vnode and a use of its
// mount; mappings and open descriptions (File::cache_) hold the cache. A
// mapped file keeps the mount busy, as on Linux. After the last close the
// kernel keeps the cache (and so the vnode) while the file has a name,
// so that the next open finds its pages: up to PageCache::kMaxRetained
// files, the least recently closed going first; unlink (or a rename over
// it) lets go of it at once (UnlinkedCache), unmount and halt before they
// tear the mount down. Clean pages of kept caches are given back under
// the memory limit as any others, and past the kept-page cap (sysctl
// fs.kept_cache_pages: a quarter of the memory limit, or 65,536 pages,
// 256 MiB, without one), least recently closed first.
#pragma once

#include <atomic>
#include <boost/intrusive/list.hpp>
#include <cstdint>

#include "base/ref.h"
#include "base/result.h"
#include "kern/callout.h"
#include "page_table.h"
#include "vfs/page_io.h"
#include "vfs/vnode.h"
#include "vm_object.h"

namespace rump {

class File;

class VnodePager final : public vm::VmObject {
 public:
  // The cache of vp (a regular file), made if it has none.
  static Result<RefPtr<vm::VmObject>> get(Vnode& vp);
  // With vp's tree lock held: its cache, referenced, or null.
  static RefPtr<VnodePager> find_locked(Vnode& vp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(vp.lock());
  ~VnodePager() override;

  Vnode& vnode() const { return *vp_; }
  bool write_back() const { return write_back_; }
  // The file system's page I/O, or null.
  PageIo* page_io() const { return io_; }

  Result<void> fill_page(uint64_t offset, std::byte* frame) override;
  Result<void> page_mkwrite(uint64_t pindex, vm::Page* p) override;
  void page_written(uint64_t offset, size_t len) override;
  Result<void> host_writer_pin_locked(uint64_t first, uint64_t count) override;
  void host_writer_unpin_locked(uint64_t pindex) override;
  void host_page_written(uint64_t pindex) override;
  Result<void> sync(uint64_t offset, uint64_t len, int flags) override;
  bool pages_clean() const override { return !write_back_; }
  bool page_reclaimable_locked(uint64_t pindex) override;
  void clean_pages_locked() override ABSL_NO_THREAD_SAFETY_ANALYSIS { (void)flush_locked(); }
  void host_views_changed_locked(int delta) override;
  // Write-through mode: the pages of [off, off+len) that writable
  // host-space mappings pin are written through to the file (the host
  // reports no stores), so that read(2) sees them. Without the tree lock.
  void host_sync(uint64_t off, uint64_t len);
  // The file grew (a write past its end through the cache): views of it
  // show the new pages (VmObject::host_views_grow_locked).
  void host_views_grow();
  // Write-back mode: the pages that writable host-space views pin and
  // that changed since they were last seen become dirty (the host reports
  // no stores; see view_sums_). The flusher calls it every period, before
  // it looks for expired caches; flush() before it writes.
  void host_scan();

  // Write-back mode, with no lock held. read_cached: up to len bytes at
  // off (short at the end of the file). write_cached: up to len bytes at
  // off (the caller did the mode and seal checks under the tree lock and
  // grows the file to cover what was written afterwards); short, or
  // ENOSPC, when the file system has no room left for the pages that
  // have no blocks yet (PageIo::reserve_page).
  Result<size_t> read_cached(void* buf, size_t len, uint64_t off);
  Result<size_t> write_cached(const void* buf, size_t len, uint64_t off);

  // Writes the dirty pages back to the file system (write-back mode; a
  // no-op otherwise). The first error is also recorded in the vnode.
  Result<void> flush();
  Result<void> flush_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());

  // Drops the pages holding bytes [off, off+len) (len kToEnd: to the end).
  // Without the tree lock.
  static constexpr uint64_t kToEnd = ~uint64_t{0};
  void invalidate(uint64_t off, uint64_t len);

  size_t dirty_pages() const { return dirty_count_.load(std::memory_order_relaxed); }
  int64_t dirtied_at() const { return dirtied_at_.load(std::memory_order_relaxed); }

  // The cache holds a reference of its own, kept after the last close of
  // the file so that the next open finds its pages (see PageCache).
  std::atomic<bool> retained_{false};
  // The pages this cache counts in PageCache::kept_pages_ (its resident
  // pages at its last close, less what the cap took since).
  std::atomic<int64_t> kept_pages_{0};

  boost::intrusive::list_member_hook<> cache_hook_;  // PageCache::pagers_
  using List = boost::intrusive::list<VnodePager, boost::intrusive::member_hook<VnodePager, boost::intrusive::list_member_hook<>,
                                                                               &VnodePager::cache_hook_>>;

 private:
  VnodePager(Kmem& kmem, Vnode& vp, bool write_back);
  Result<void> mark_dirty_locked(uint64_t pindex) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // Fills the pages from first on that are not resident, up to end (and
  // at most a batch), with one page I/O call of the file system, so that
  // a read moves runs of blocks rather than a page at a time.
  void fill_run_locked(uint64_t first, uint64_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  void host_scan_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // True if page p at pindex differs from its sum (or has none); the sum
  // becomes p's. A page without room for a sum counts as changed.
  bool host_page_changed_locked(uint64_t pindex, const vm::Page* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Ref<Vnode> vp_;
  PageIo* const io_;  // vp_'s page I/O, or null
  const bool write_back_;
  // Reserves room in the file system for page pindex if it has no blocks
  // yet and holds none already (delayed allocation).
  Result<void> reserve_locked(uint64_t pindex) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // How many blocks the pages idx[0..n) hold reserved; erase: they hold
  // none from now on (the caller gives the room back).
  int64_t reserved_among_locked(const uint64_t* idx, size_t n, bool erase) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // Page pindex holds no reservation from now on: the room goes back.
  void give_back_reserved_locked(uint64_t pindex) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // Page indices of dirty pages (the values are never dereferenced).
  vm::PageTable dirty_ ABSL_GUARDED_BY(lock());
  // Page indices of pages holding a block reservation (dirtied by write(2)
  // or a store through a mapping over a hole, not yet written back), each
  // with the number of blocks it holds.
  vm::PageTable reserved_ ABSL_GUARDED_BY(lock());
  // Write-back mode: for each page a writable host-space view pins, a
  // 64-bit sum of its bytes as write-back or a scan last saw them (stored
  // in place of the page pointer, never 0 or 1). A scan marks dirty only the
  // pages whose bytes no longer match, so that a view nobody stores into
  // costs a pass over its bytes per flusher period and no I/O. Taken when
  // a view is made (host_views_changed_locked), and before write-back
  // copies a page out, so that a store after it shows at the next scan; a
  // page whose bytes the kernel changed otherwise (a refill, a truncation)
  // gets a mark that matches no sum and counts as changed. Sums go when
  // no writer view pins their page.
  vm::PageTable view_sums_ ABSL_GUARDED_BY(lock());
  std::atomic<size_t> dirty_count_{0};
  std::atomic<int64_t> dirtied_at_{0};  // when the oldest dirty page became dirty
  // Write-through mode: the first error a write-through met (ENOSPC in a
  // sparse file, EIO), reported by the next msync or fsync.
  std::atomic<int> write_error_{0};
};

// The kernel's write-back caches (one per kernel, VfsState::page_cache).
struct PageCache : public KObject {
  explicit PageCache(Kernel& k);
  Kernel& kernel;
  // A leaf: nothing is taken while it is held (references are taken with
  // try_ref), so it needs no place in the rank order, as the host-name
  // lock.
  Mutex lock_{LockRank::kNone};
  VnodePager::List pagers_ ABSL_GUARDED_BY(lock_);  // least recently used first; no references
  std::atomic<int64_t> dirty_pages_{0};
  // Dirty pages older than this are written back by the flusher, which
  // runs every flusher_period_ns_ while a write-back cache lives (sysctl
  // vm.dirty_expire_centisecs and vm.dirty_writeback_centisecs, 3000 and
  // 500 as Linux's; a period of 0 stops the periodic runs); more dirty
  // pages than dirty_limit_ make a writer write its file back.
  std::atomic<int64_t> dirty_expire_ns_;
  std::atomic<int64_t> flusher_period_ns_;
  int64_t dirty_limit_;
  Callout flusher_;
  std::atomic<bool> flusher_armed_{false};
  // Caches kept after their file's last close (VnodePager::retained_),
  // at most kMaxRetained: past that the least recently used goes. Each
  // keeps its vnode (and a use of its mount) until it goes: when the
  // file loses its last name, at unmount, at halt.
  static constexpr size_t kMaxRetained = 512;
  std::atomic<size_t> retained_count_{0};
  // Pages held by kept caches, as counted at their last close (a kept
  // cache opened again and grown is counted again at its next close),
  // and their cap (sysctl fs.kept_cache_pages): past it, the clean pages
  // of the least recently closed kept caches are given back until a
  // quarter below it. Without a memory limit it is what bounds them.
  static constexpr int64_t kDefaultKeptPages = (int64_t{256} << 20) >> vm::kPageShift;
  std::atomic<int64_t> kept_pages_{0};
  std::atomic<int64_t> kept_cap_{kDefaultKeptPages};
  // Where the caches' frames come from (one current chunk for all, so a
  // small file takes a frame, not a chunk); null: each its own chunks.
  vm::FramePool* frames = nullptr;
};

// The kernel's page cache state, or null (the VFS faction not up).
PageCache* page_cache(Kernel& k);
// Makes and tears down the kernel's state (vfs init and halt).
Result<PageCache*> page_cache_init(Kernel& k);
void page_cache_fini(PageCache* pc);
// Writes back every dirty cache (sync, halt), or those of mount m (syncfs,
// unmount). The first error, if any.
Result<void> page_cache_flush_all(Kernel& k, Mount* m = nullptr);
// Gives back clean pages (writing dirty ones back first), least recently
// used caches first, until the kernel is below its memory limit's low
// mark. True if anything was given back.
bool page_cache_reclaim(Kernel& k);
// Lets go of the caches kept after their last close: those of mount m
// (unmount), or all (halt).
void page_cache_drop_retained(Kernel& k, Mount* m = nullptr);

// The write-back cache of an open description of a regular file on a
// file system that caches file data (attached at first use, held until the
// last close), or null: read/write then go to the file system directly.
VnodePager* file_cache(File& f);
// At the last close of f: writes its cache back and lets go of it (the
// kernel keeps the cache while the file has a name).
void file_cache_release(File& f);
// The write-back error f has not yet seen (0: none), and marks it seen.
int file_check_wb_error(File& f);
// Records write-back error e of vp (fsync's failure, a failed flush).
void vnode_record_wb_error(Vnode& vp, int e);
// Before read(2) of a file that host-space processes map: their stores
// reach the file first (VnodePager::host_sync). Cheap when none does.
void vnode_host_sync(Vnode& vp, uint64_t off, uint64_t len);
// Writes vp's cached pages back, if it has a write-back cache (truncate,
// fallocate, SEEK_DATA/SEEK_HOLE). Without the tree lock.
Result<void> vnode_flush(Vnode& vp);

// The part of a file's cache that a change under the tree lock made stale:
// noted while the lock is held, dropped when this goes, after the lock is
// released (declare it before the lock guard).
class StalePages {
 public:
  StalePages() = default;
  StalePages(const StalePages&) = delete;
  StalePages& operator=(const StalePages&) = delete;
  ~StalePages() {
    if (pager_) pager_->invalidate(from_, to_ - from_);
  }
  // Bytes [off, off+len) of vp changed (len VnodePager::kToEnd: all past off).
  void note_locked(Vnode& vp, uint64_t off, uint64_t len) ABSL_EXCLUSIVE_LOCKS_REQUIRED(vp.lock()) {
    if (vp.pager_ == nullptr) return;
    if (!pager_) pager_ = VnodePager::find_locked(vp);
    uint64_t end = len > VnodePager::kToEnd - off ? VnodePager::kToEnd : off + len;
    if (off < from_) from_ = off;
    if (end > to_) to_ = end;
  }

 private:
  RefPtr<VnodePager> pager_;
  uint64_t from_ = VnodePager::kToEnd;
  uint64_t to_ = 0;
};

// A file whose last name went under the tree lock (unlink, a rename over
// it): the cache kept after its last close goes when this goes, after the
// lock is released (declare it before the lock guard), so that the file
// is freed.
class UnlinkedCache {
 public:
  UnlinkedCache() = default;
  UnlinkedCache(const UnlinkedCache&) = delete;
  UnlinkedCache& operator=(const UnlinkedCache&) = delete;
  ~UnlinkedCache();
  void note_locked(Vnode& vp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(vp.lock()) {
    if (vp.pager_ == nullptr) return;
    Vattr va;
    vp.getattr(va);
    if (va.nlink == 0) pager_ = VnodePager::find_locked(vp);
  }

 private:
  RefPtr<VnodePager> pager_;
};

}  // namespace rump
