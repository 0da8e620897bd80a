// vnode_pager.h: the page cache of a mapped regular file, and how the VFS
// keeps it coherent with read(2) and write(2).
//
// A VnodePager is the VmObject that mmap(2) of a regular file maps (tmpfs,
// etfs and ext2/3/4 files alike: it reaches the data through the vnode's
// read and write operations). There is at most one per vnode, made at the
// first mapping and gone with the last (Vnode::pager_ points at it without
// a reference). Its pages are what every mapping of the file sees:
//   * a page is filled from the file at its first touch; a page wholly past
//     the end of the file is kBusFault (EFAULT to a system call's copy,
//     SIGBUS to the process's own access, kern/file_map.h);
//   * a store through a MAP_SHARED mapping reaches the file at once
//     (page_written writes the stored bytes through, up to the end of the
//     file), so read(2) sees it with no write-back step and munmap, exit or
//     a crash of the mapping process lose nothing;
//   * a change made through the file (write, truncate, fallocate) drops the
//     pages it made stale (StalePages), so the next touch reads the new
//     data; MAP_PRIVATE mappings copy a page at their first store and keep
//     seeing the file's later changes until then, as on Linux.
// The frames are charged to the kernel's Kmem, so RUMP_MEMLIMIT bounds the
// cache; every page is clean (written through), so a fill that finds no
// memory drops the cache's pages and tries again (VmObject::pages_clean),
// and msync(MS_INVALIDATE) or the file's change drops pages.
//
// Locking: the cache's page lock (rank kVmObject) ranks below the tree lock
// (kVnode): fill and write-through take the tree lock inside the page lock;
// the VFS never takes the page lock with the tree lock held, hence
// StalePages, which drops pages after the tree lock is released.
//
// Lifetime: the cache holds a reference to its vnode and a use of its
// mount (a mapped file keeps the mount busy, as on Linux), so the data stays
// reachable after close and unlink while a mapping lives.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/ref.h"
#include "base/result.h"
#include "vfs/vnode.h"
#include "vm_object.h"

namespace rump {

class VnodePager final : public vm::VmObject {
 public:
  // The cache of vp (a regular file), made if it has none.
  static Result<RefPtr<vm::VmObject>> get(Vnode& vp);
  // With vp's tree lock held: its cache, referenced, or null.
  static RefPtr<VnodePager> find_locked(Vnode& vp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(vp.lock());
  ~VnodePager() override;

  Result<void> fill_page(uint64_t offset, std::byte* frame) override;
  void page_written(uint64_t offset, size_t len) override;
  Result<void> sync(uint64_t offset, uint64_t len, int flags) override;
  // Written through: every page may be dropped and filled again.
  bool pages_clean() const override { return true; }

  // Drops the pages holding bytes [off, off+len) (len kToEnd: to the end).
  // Without the tree lock.
  static constexpr uint64_t kToEnd = ~uint64_t{0};
  void invalidate(uint64_t off, uint64_t len);

 private:
  VnodePager(Kmem& kmem, Vnode& vp);
  Ref<Vnode> vp_;
  // The first error a write-through met (ENOSPC in a sparse file, EIO):
  // reported once by the next msync or fsync, as Linux reports a failed
  // write-back.
  std::atomic<int> write_error_{0};
};

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

}  // namespace rump
