// vnode_pager.cc: the page cache of regular files, its write-back, and the
// mmap hook that hands it to the vm faction (see vnode_pager.h).
#include "vfs/vnode_pager.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "kern/clock.h"
#include "kern/file_map.h"
#include "kern/kernel.h"
#include "kern/sysctl.h"
#include "vfs/file.h"
#include "vfs/vfs.h"

namespace rump {

namespace {

// Linux's defaults: dirty_expire_centisecs 3000, dirty_writeback_centisecs
// 500. The dirty limit: a quarter of the memory limit, else 64 MiB.
constexpr int64_t kDirtyExpireNs = 30 * kNsPerSec;
constexpr int64_t kFlusherPeriodNs = 5 * kNsPerSec;
constexpr int64_t kDefaultDirtyLimitPages = (int64_t{64} << 20) >> vm::kPageShift;
// Caches handled per pass over the list (references taken under the list
// lock, work done outside it).
constexpr size_t kBatch = 16;
// Pages a sequential read fills ahead of what it asked for (one page I/O
// call of the file system fills at most kMaxRun).
constexpr uint64_t kReadAhead = 64;

// The reserved_ table keeps, for each page holding a reservation, how many
// blocks it holds (1 up to the blocks per page), stored in place of the
// page pointer (the table's values are never dereferenced).
vm::Page* reserved_entry(uint32_t blocks) { return reinterpret_cast<vm::Page*>(static_cast<uintptr_t>(blocks)); }
int64_t reserved_blocks_of(const vm::Page* entry) { return static_cast<int64_t>(reinterpret_cast<uintptr_t>(entry)); }

// A 64-bit sum of a page's bytes (four multiply-rotate lanes, folded and
// mixed at the end), never 0 or 1: what a view's page held when last seen.
uint64_t page_sum(const std::byte* data) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h[4] = {1, 2, 3, 4};
  for (size_t i = 0; i < vm::kPageSize; i += 32) {
    for (int l = 0; l < 4; l++) {
      uint64_t w;
      std::memcpy(&w, data + i + size_t(l) * 8, 8);
      h[l] = ((h[l] ^ w) * kMul);
      h[l] = (h[l] << 31) | (h[l] >> 33);
    }
  }
  uint64_t x = h[0] ^ (h[1] * kMul) ^ ((h[2] << 17 | h[2] >> 47) * kMul) ^ ((h[3] << 41 | h[3] >> 23) * kMul);
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 32;
  return x > 1 ? x : 2;
}
vm::Page* sum_entry(uint64_t sum) { return reinterpret_cast<vm::Page*>(static_cast<uintptr_t>(sum)); }
// The sum of a page whose bytes the kernel changed under a view (a
// refill): matches no page, so the page counts as changed.
vm::Page* const kChangedSum = sum_entry(1);

}  // namespace

PageIo* page_io_of(Vnode& vp) { return dynamic_cast<PageIo*>(&vp); }

void vnode_record_wb_error(Vnode& vp, int e) {
  uint64_t old = vp.wb_error_.load(std::memory_order_relaxed);
  uint64_t fresh;
  do {
    uint64_t count = (old >> 17) + 1;
    fresh = (count << 17) | static_cast<uint16_t>(e);
  } while (!vp.wb_error_.compare_exchange_weak(old, fresh, std::memory_order_acq_rel));
}

namespace {

void flusher_run(void* arg);

void arm_flusher(PageCache& pc, int64_t ns) {
  if (ns <= 0) return;  // periodic write-back turned off
  if (pc.flusher_armed_.exchange(true, std::memory_order_acq_rel)) return;
  pc.flusher_.schedule(ns);
}

}  // namespace

// --- the kernel's state

PageCache::PageCache(Kernel& k) : kernel(k) {
  dirty_expire_ns_ = kDirtyExpireNs;
  flusher_period_ns_ = kFlusherPeriodNs;
  size_t limit = k.kmem().limit();
  dirty_limit_ = limit ? static_cast<int64_t>(limit / 4) >> vm::kPageShift : kDefaultDirtyLimitPages;
  if (dirty_limit_ < 16) dirty_limit_ = 16;
  if (limit) kept_cap_.store(std::max<int64_t>(static_cast<int64_t>(limit / 4) >> vm::kPageShift, 16));
}

namespace {

// fs.kept_cache_pages: the cap on the pages of kept caches (root may set
// it; at least 0, at most what an int holds).
int get_kept_cap(Kernel& k) {
  PageCache* pc = page_cache(k);
  return pc ? static_cast<int>(std::min<int64_t>(pc->kept_cap_.load(), INT_MAX)) : 0;
}
Result<void> set_kept_cap(Kernel& k, int v) {
  PageCache* pc = page_cache(k);
  if (pc == nullptr || v < 0) return err(EINVAL);
  pc->kept_cap_.store(v);
  return {};
}

// vm.dirty_expire_centisecs and vm.dirty_writeback_centisecs (root may set
// them; at least 0). A new period takes effect when the flusher is next
// armed (at the end of its run, or when a write-back cache is made).
constexpr int64_t kNsPerCentisec = kNsPerSec / 100;
template <std::atomic<int64_t> PageCache::*ns>
int get_centisecs(Kernel& k) {
  PageCache* pc = page_cache(k);
  return pc ? static_cast<int>((pc->*ns).load() / kNsPerCentisec) : 0;
}
template <std::atomic<int64_t> PageCache::*ns>
Result<void> set_centisecs(Kernel& k, int v) {
  PageCache* pc = page_cache(k);
  if (pc == nullptr || v < 0) return err(EINVAL);
  (pc->*ns).store(v * kNsPerCentisec);
  return {};
}
template <std::atomic<int64_t> PageCache::*ns>
SysctlOps centisecs_ops() {
  SysctlOps ops;
  ops.get_int = &get_centisecs<ns>;
  ops.set_int = &set_centisecs<ns>;
  return ops;
}

}  // namespace

Result<PageCache*> page_cache_init(Kernel& k) {
  if (Sysctl* sc = k.services().sysctl()) {
    SysctlOps kept;
    kept.get_int = &get_kept_cap;
    kept.set_int = &set_kept_cap;
    const int fs = CTL_FS, vm = CTL_VM;
    const struct {
      const int* parent;
      unsigned plen;
      SysctlNodeInit init;
    } nodes[] = {
        {&fs, 1, {FS_KEPT_CACHE_PAGES, "kept_cache_pages", SysctlType::kInt, SysctlAccess::kRootWrite, kept}},
        {nullptr, 0, {CTL_VM, "vm", SysctlType::kNode, SysctlAccess::kReadOnly, {}}},
        {&vm, 1,
         {VM_DIRTY_EXPIRE_CENTISECS, "dirty_expire_centisecs", SysctlType::kInt, SysctlAccess::kRootWrite,
          centisecs_ops<&PageCache::dirty_expire_ns_>()}},
        {&vm, 1,
         {VM_DIRTY_WRITEBACK_CENTISECS, "dirty_writeback_centisecs", SysctlType::kInt, SysctlAccess::kRootWrite,
          centisecs_ops<&PageCache::flusher_period_ns_>()}},
    };
    for (const auto& n : nodes) {
      Result<SysctlNode*> r = sc->add(n.parent, n.plen, n.init);
      // A kernel whose VFS faction starts again finds its nodes in place.
      if (!r.ok() && r.error() != EEXIST) return err(r.error());
    }
  }
  auto* pc = new (k.kmem()) PageCache(k);
  if (pc == nullptr) return err(ENOMEM);
  pc->frames = vm::FramePool::create(k.kmem());
  if (pc->frames == nullptr) {
    delete pc;
    return err(ENOMEM);
  }
  if (k.services().callouts() != nullptr) pc->flusher_.init(*k.services().callouts(), &flusher_run, pc);
  return pc;
}

void page_cache_fini(PageCache* pc) {
  if (pc == nullptr) return;
  if (pc->kernel.services().callouts() != nullptr) pc->flusher_.halt();
  {
    // Caches still alive (a mapping that outlives the faction) leave the
    // list; they find no state afterwards.
    MutexLocker g(pc->lock_);
    pc->pagers_.clear();
  }
  pc->frames->unref();  // those caches hold their own references
  delete pc;
}

namespace {

// Takes references to up to kBatch caches that pick() selects, from the
// least recently used on, skipping the first `skip` selected ones.
size_t collect(PageCache& pc, RefPtr<VnodePager>* out, size_t skip, absl::FunctionRef<bool(VnodePager&)> pick) {
  size_t n = 0;
  MutexLocker g(pc.lock_);
  for (VnodePager& p : pc.pagers_) {
    if (!pick(p)) continue;
    if (skip > 0) {
      skip--;
      continue;
    }
    if (!p.try_ref()) continue;
    out[n++] = RefPtr<VnodePager>(kAdopt, &p);
    if (n == kBatch) break;
  }
  return n;
}

void flusher_run(void* arg) {
  auto& pc = *static_cast<PageCache*>(arg);
  pc.flusher_armed_.store(false, std::memory_order_release);
  int64_t now = mono_now_ns();
  bool over = pc.dirty_pages_.load(std::memory_order_relaxed) > pc.dirty_limit_ / 2;
  auto expired = [&](VnodePager& p) {
    return p.dirty_pages() > 0 && (over || now - p.dirtied_at() >= pc.dirty_expire_ns_);
  };
  RefPtr<VnodePager> batch[kBatch];
  // Stores through host-space views first: the pages they changed become
  // dirty now and go back once expired, as pages write(2) dirtied.
  for (size_t skip = 0;;) {
    size_t n = collect(pc, batch, skip, [](VnodePager& p) { return p.host_views() != 0; });
    if (n == 0) break;
    for (size_t i = 0; i < n; i++) {
      batch[i]->host_scan();
      batch[i].reset();
    }
    skip += n;
  }
  size_t skip = 0;
  for (;;) {
    size_t n = collect(pc, batch, skip, expired);
    if (n == 0) break;
    for (size_t i = 0; i < n; i++) {
      // A failure stays recorded in the vnode; the pages stay dirty and
      // are tried again at the next pass.
      if (!batch[i]->flush().ok()) skip++;
      batch[i].reset();
    }
  }
  // Every flusher period while a write-back cache lives (Linux's
  // dirty_writeback interval).
  bool any;
  {
    MutexLocker g(pc.lock_);
    any = !pc.pagers_.empty();
  }
  if (any) arm_flusher(pc, pc.flusher_period_ns_.load());
}

}  // namespace

Result<void> page_cache_flush_all(Kernel& k, Mount* m) {
  PageCache* pc = page_cache(k);
  if (pc == nullptr) return {};
  int first = 0;
  RefPtr<VnodePager> batch[kBatch];
  size_t skip = 0;
  for (;;) {
    size_t n = collect(*pc, batch, skip, [m](VnodePager& p) {
      return p.dirty_pages() > 0 && (m == nullptr || &p.vnode().mount() == m);
    });
    if (n == 0) break;
    for (size_t i = 0; i < n; i++) {
      Result<void> r = batch[i]->flush();
      if (!r.ok()) {
        if (first == 0) first = r.error();
        skip++;
      }
      batch[i].reset();
    }
  }
  if (first) return err(first);
  return {};
}

bool page_cache_reclaim(Kernel& k) {
  PageCache* pc = page_cache(k);
  Kmem& km = k.kmem();
  if (pc == nullptr || km.limit() == 0) return false;
  size_t low = km.limit() / 4 * 3;
  bool freed = false;
  RefPtr<VnodePager> batch[kBatch];
  size_t skip = 0;
  while (km.in_use() > low) {
    size_t n = collect(*pc, batch, skip, [](VnodePager&) { return true; });
    if (n == 0) break;
    for (size_t i = 0; i < n; i++) {
      (void)batch[i]->flush();
      if (batch[i]->drop_reclaimable() > 0) freed = true;
      else skip++;
      batch[i].reset();
      if (km.in_use() <= low) break;
    }
  }
  return freed;
}

// --- one cache

VnodePager::VnodePager(Kmem& kmem, Vnode& vp, bool write_back)
    : VmObject(kmem, kUnbounded, false),
      vp_(vp),
      io_(page_io_of(vp)),
      write_back_(write_back),
      dirty_(kmem),
      reserved_(kmem),
      view_sums_(kmem) {
  if (PageCache* pc = page_cache(vp.mount().kernel())) use_pool(pc->frames);
}

VnodePager::~VnodePager() {
  // The last reference went with pages still dirty (a store raced with the
  // last close): they go back now.
  if (dirty_count_.load(std::memory_order_relaxed) > 0) (void)flush();
  {
    // Pages whose write-back failed give their room back.
    Locker<RwLock> g(lock());
    if (reserved_.size() > 0) {
      int64_t blocks = 0;
      reserved_.for_each([&](uint64_t, vm::Page* e) { blocks += reserved_blocks_of(e); });
      MutexLocker t(vp_->lock());
      io_->adjust_reserved(-blocks);
    }
  }
  if (write_back_) {
    if (PageCache* pc = page_cache(vp_->mount().kernel())) {
      MutexLocker g(pc->lock_);
      if (cache_hook_.is_linked()) pc->pagers_.erase(pc->pagers_.iterator_to(*this));
    }
  }
  {
    MutexLocker g(vp_->lock());
    // A new cache may have replaced this one while its count was zero.
    if (vp_->pager_ == this) vp_->pager_ = nullptr;
  }
  mount_unuse(*vp_);
}

Result<RefPtr<vm::VmObject>> VnodePager::get(Vnode& vp) {
  Kernel& k = vp.mount().kernel();
  Kmem& kmem = k.kmem();
  PageCache* pc = page_cache(k);
  bool write_back = pc != nullptr && vp.mount().caches_file_data();
  VnodePager* p;
  {
    MutexLocker g(vp.lock());
    if (vp.pager_ != nullptr && vp.pager_->try_ref()) return RefPtr<vm::VmObject>(kAdopt, vp.pager_);
    p = new (kmem) VnodePager(kmem, vp, write_back);
    if (p == nullptr) return err(ENOMEM);
    vp.pager_ = p;
    mount_use(vp);
  }
  if (write_back) {
    {
      MutexLocker g(pc->lock_);
      pc->pagers_.push_back(*p);
    }
    // With no lock held: the first arming starts the callout thread.
    arm_flusher(*pc, pc->flusher_period_ns_.load());
  }
  return RefPtr<vm::VmObject>(kAdopt, p);
}

RefPtr<VnodePager> VnodePager::find_locked(Vnode& vp) {
  if (vp.pager_ != nullptr && vp.pager_->try_ref()) return RefPtr<VnodePager>(kAdopt, vp.pager_);
  return nullptr;
}

Result<void> VnodePager::fill_page(uint64_t offset, std::byte* frame) {
  Vnode& vp = *vp_;
  MutexLocker g(vp.lock());
  Vattr va;
  vp.getattr(va);
  // A page wholly past the end: nothing backs it (SIGBUS).
  if (offset >= va.size) return err(kBusFault);
  size_t want = static_cast<size_t>(std::min<uint64_t>(vm::kPageSize, va.size - offset));
  Result<void> direct = io_ ? io_->read_pages(offset, want, &frame) : Result<void>(err(EOPNOTSUPP));
  if (direct.ok()) return {};
  if (direct.error() != EOPNOTSUPP) return err(kBusFault);
  size_t got = 0;
  while (got < want) {
    Result<size_t> r = vp.read(frame + got, want - got, offset + got);
    if (!r.ok()) return err(kBusFault);
    if (r.value() == 0) break;  // a hole the file system reports short
    got += r.value();
  }
  return {};
}

Result<void> VnodePager::page_mkwrite(uint64_t pindex, vm::Page*) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // Called by the vm faction with the page lock held exclusive, before a
  // store through a shared mapping. The page gets its room now, as one
  // written by write(2) does, so that no dirty page is ever without a
  // block or a reservation; a full file system refuses the store (SIGBUS,
  // as Linux's page_mkwrite failing with ENOSPC).
  if (!write_back_) return {};
  Result<void> r = reserve_locked(pindex);
  if (!r.ok() && r.error() != ENOMEM) return err(kBusFault);
  return r;
}

bool VnodePager::page_reclaimable_locked(uint64_t pindex) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // Called by VmObject with the page lock held exclusive.
  return !write_back_ || dirty_.find(pindex) == nullptr;
}

Result<void> VnodePager::mark_dirty_locked(uint64_t pindex) {
  if (dirty_.find(pindex) != nullptr) return {};
  TRY(dirty_.reserve(dirty_.size() + 1));
  // The value only says "present"; the page is looked up again at
  // write-back.
  dirty_.insert(pindex, lookup_locked(pindex));
  if (dirty_count_.fetch_add(1, std::memory_order_relaxed) == 0)
    dirtied_at_.store(mono_now_ns(), std::memory_order_relaxed);
  // The flusher is armed while write-back caches exist (get()): arming
  // here could start the callout thread, which takes locks ranked above
  // this one.
  if (PageCache* pc = page_cache(vp_->mount().kernel())) pc->dirty_pages_.fetch_add(1, std::memory_order_relaxed);
  return {};
}

void VnodePager::page_written(uint64_t offset, size_t len) {
  lock().assert_held();
  vm::Page* p = lookup_locked(offset >> vm::kPageShift);
  if (p == nullptr || len == 0) return;
  // Write-back: the page is dirty and goes back later. Without room to
  // note it (no memory), it is written through instead.
  if (write_back_ && mark_dirty_locked(offset >> vm::kPageShift).ok()) {
    // Stores through mappings are throttled as write(2) is: past the
    // kernel's dirty limit, this file's dirty pages go back now.
    PageCache* pc = page_cache(vp_->mount().kernel());
    if (pc != nullptr && pc->dirty_pages_.load(std::memory_order_relaxed) > pc->dirty_limit_) (void)flush_locked();
    return;
  }
  Vnode& vp = *vp_;
  MutexLocker g(vp.lock());
  Vattr va;
  vp.getattr(va);
  // Bytes past the end of the file stay in the page only, as on Linux.
  if (offset >= va.size) return;
  size_t n = static_cast<size_t>(std::min<uint64_t>(len, va.size - offset));
  Result<size_t> w = vp.write(p->data() + (offset & vm::kPageMask), n, offset);
  if (!w.ok() || w.value() != n) {
    int e = w.ok() ? EIO : w.error();
    int none = 0;
    write_error_.compare_exchange_strong(none, e, std::memory_order_relaxed);
    if (write_back_) vnode_record_wb_error(vp, e);
  }
}

Result<void> VnodePager::flush() {
  if (!write_back_) return {};
  Locker<RwLock> g(lock());
  return flush_locked();
}

Result<void> VnodePager::flush_locked() {
  if (!write_back_) return {};
  // Pages host-space mappings changed (the host reports no stores) go
  // back with the rest.
  if (host_views() != 0) host_scan_locked();
  size_t n = dirty_.size();
  if (n == 0) return {};
  // Back in file order, so that the file system allocates blocks in order.
  // Without memory for the whole list (write-back under memory
  // pressure), a batch at a time from buffers on the stack.
  uint64_t small_idx[64];
  std::byte* small_frames[64];
  auto* idx = static_cast<uint64_t*>(kmem().alloc(n * sizeof(uint64_t)));
  auto* frames = static_cast<std::byte**>(kmem().alloc(n * sizeof(std::byte*)));
  size_t cap = n;
  if (idx == nullptr || frames == nullptr) {
    Kmem::free(idx);
    Kmem::free(frames);
    idx = small_idx;
    frames = small_frames;
    cap = std::size(small_idx);
  }
  absl::Cleanup free_idx = [idx, frames, &small_idx] {
    if (idx != small_idx) {
      Kmem::free(idx);
      Kmem::free(frames);
    }
  };
  Vnode& vp = *vp_;
  int first = 0;
  size_t done = 0;
  // The file system's page I/O (straight to the device); without it, runs
  // of up to kBounceRun pages through a bounce buffer and vp.write.
  bool page_io = true;
  constexpr size_t kBounceRun = 16;
  std::byte* bounce = nullptr;
  absl::Cleanup free_bounce = [&bounce] { Kmem::free(bounce); };
  for (bool progress = true; progress && dirty_.size() > 0;) {
    progress = false;
    size_t k = 0;
    dirty_.for_each([&](uint64_t index, vm::Page*) {
      if (k < cap) idx[k++] = index;
    });
    std::sort(idx, idx + k);
    // A run of consecutive resident pages goes back in one call.
    for (size_t i = 0; i < k;) {
      size_t run = 0;
      while (i + run < k && idx[i + run] == idx[i] + run) {
        vm::Page* p = lookup_locked(idx[i + run]);
        if (p == nullptr) break;
        frames[i + run] = p->data();
        run++;
        if (!page_io && run == kBounceRun) break;
      }
      if (run == 0) {
        // Not resident (cannot happen while dirty): forget it.
        dirty_.erase(idx[i]);
        give_back_reserved_locked(idx[i]);
        done++;
        i++;
        continue;
      }
      uint64_t off = idx[i] << vm::kPageShift;
      int e = 0;
      // A view's page: its sum now, before the copy out, so that a store
      // from here on shows at the next scan.
      if (view_sums_.size() > 0)
        for (size_t j = 0; j < run; j++)
          if (vm::Page** slot = view_sums_.find_slot(idx[i + j])) *slot = sum_entry(page_sum(frames[i + j]));
      MutexLocker t(vp.lock());
      // The run's reservations go back just before its blocks are
      // allocated (and are taken again if that fails).
      int64_t res = reserved_among_locked(idx + i, run, false);
      if (res) io_->adjust_reserved(-res);
      Vattr va;
      vp.getattr(va);
      // Past the end (truncated since): nothing to write.
      if (off < va.size) {
        size_t len = static_cast<size_t>(std::min<uint64_t>(run * vm::kPageSize, va.size - off));
        Result<void> w = err(EOPNOTSUPP);
        if (page_io && io_) w = io_->write_pages(off, len, frames + i);
        if (!w.ok() && w.error() == EOPNOTSUPP) {
          page_io = false;
          if (bounce == nullptr) bounce = static_cast<std::byte*>(kmem().alloc(kBounceRun * vm::kPageSize));
          // One page at a time without a bounce buffer.
          size_t step = bounce ? kBounceRun : 1;
          w = Result<void>();
          for (size_t at = 0; at < len && w.ok(); at += step * vm::kPageSize) {
            size_t pages = std::min<size_t>(step, (len - at + vm::kPageMask) >> vm::kPageShift);
            size_t bytes = std::min<size_t>(pages * vm::kPageSize, len - at);
            const std::byte* src = frames[i + (at >> vm::kPageShift)];
            if (bounce) {
              for (size_t j = 0; j < pages; j++)
                std::memcpy(bounce + j * vm::kPageSize, frames[i + (at >> vm::kPageShift) + j], vm::kPageSize);
              src = bounce;
            }
            Result<size_t> wr = vp.write(src, bytes, off + at);
            if (!wr.ok()) w = err(wr.error());
            else if (wr.value() != bytes) w = err(EIO);
          }
        }
        if (!w.ok()) e = w.error();
      }
      if (e != 0) {
        // The pages stay dirty (and resident): nothing is lost while the
        // kernel lives, and a later write-back may succeed (ENOSPC freed).
        if (res) io_->adjust_reserved(res);
        if (first == 0) first = e;
        i += run;
        continue;
      }
      reserved_among_locked(idx + i, run, true);
      for (size_t j = 0; j < run; j++) dirty_.erase(idx[i + j]);
      done += run;
      progress = true;
      i += run;
    }
    if (first) break;
  }
  dirty_count_.fetch_sub(done, std::memory_order_relaxed);
  if (dirty_.size() > 0) dirtied_at_.store(mono_now_ns(), std::memory_order_relaxed);
  if (PageCache* pc = page_cache(vp.mount().kernel())) pc->dirty_pages_.fetch_sub(static_cast<int64_t>(done), std::memory_order_relaxed);
  if (first) {
    vnode_record_wb_error(vp, first);
    return err(first);
  }
  return {};
}

Result<size_t> VnodePager::read_cached(void* buf, size_t len, uint64_t off) {
  Locker<RwLock> g(lock());
  uint64_t size;
  {
    MutexLocker t(vp_->lock());
    Vattr va;
    vp_->getattr(va);
    size = va.size;
  }
  if (off >= size) return size_t{0};
  if (len > size - off) len = static_cast<size_t>(size - off);
  size_t done = 0;
  while (done < len) {
    uint64_t pos = off + done;
    size_t in = static_cast<size_t>(pos & vm::kPageMask);
    size_t n = std::min<size_t>(len - done, vm::kPageSize - in);
    uint64_t pindex = pos >> vm::kPageShift;
    if (lookup_locked(pindex) == nullptr) {
      // The missing pages the read covers, in one call; a read that
      // continues from a resident page (sequential) also reads ahead.
      uint64_t want = ((off + len - 1) >> vm::kPageShift) + 1;
      if (pindex == 0 || lookup_locked(pindex - 1) != nullptr)
        want = std::max(want, std::min(pindex + kReadAhead, (size + vm::kPageMask) >> vm::kPageShift));
      fill_run_locked(pindex, want);
    }
    Result<vm::Page*> p = fault_locked(pindex);
    if (!p.ok()) {
      if (done > 0) break;
      return err(p.error() == kBusFault ? EIO : p.error());
    }
    std::memcpy(static_cast<std::byte*>(buf) + done, p.value()->data() + in, n);
    done += n;
  }
  return done;
}

void VnodePager::fill_run_locked(uint64_t first, uint64_t end) {
  constexpr size_t kMaxRun = 64;
  static_assert(kReadAhead <= kMaxRun);
  vm::Page* pages[kMaxRun];
  std::byte* frames[kMaxRun];
  size_t n = 0;
  for (uint64_t i = first; i < end && n < kMaxRun && lookup_locked(i) == nullptr; i++) {
    Result<vm::Page*> p = alloc_page_locked();
    if (!p.ok()) break;
    pages[n] = p.value();
    frames[n] = p.value()->data();
    n++;
  }
  if (n == 0) return;
  Result<void> r;
  {
    MutexLocker t(vp_->lock());
    r = io_ ? io_->read_pages(first << vm::kPageShift, n << vm::kPageShift, frames) : Result<void>(err(EOPNOTSUPP));
  }
  size_t in = 0;
  // The pages the read filled join the cache; on a failure the caller's
  // own fault fills (or fails) page by page.
  while (r.ok() && in < n && insert_locked(first + in, pages[in]).ok()) in++;
  for (size_t i = in; i < n; i++) pages[i]->release();
}

Result<void> VnodePager::reserve_locked(uint64_t pindex) {
  if (dirty_.find(pindex) != nullptr || reserved_.find(pindex) != nullptr) return {};
  TRY(reserved_.reserve(reserved_.size() + 1));
  if (io_ == nullptr) return {};
  uint32_t got;
  {
    MutexLocker t(vp_->lock());
    got = TRY(io_->reserve_page(pindex << vm::kPageShift));
  }
  if (got > 0) reserved_.insert(pindex, reserved_entry(got));
  return {};
}

void VnodePager::give_back_reserved_locked(uint64_t pindex) {
  if (int64_t res = reserved_among_locked(&pindex, 1, true)) {
    MutexLocker t(vp_->lock());
    io_->adjust_reserved(-res);
  }
}

int64_t VnodePager::reserved_among_locked(const uint64_t* idx, size_t n, bool erase) {
  if (reserved_.size() == 0) return 0;
  int64_t k = 0;
  for (size_t j = 0; j < n; j++) k += reserved_blocks_of(erase ? reserved_.erase(idx[j]) : reserved_.find(idx[j]));
  return k;
}

Result<size_t> VnodePager::write_cached(const void* buf, size_t len, uint64_t off) {
  Locker<RwLock> g(lock());
  uint64_t size;
  {
    MutexLocker t(vp_->lock());
    Vattr va;
    vp_->getattr(va);
    size = va.size;
  }
  size_t done = 0;
  while (done < len) {
    uint64_t pos = off + done;
    size_t in = static_cast<size_t>(pos & vm::kPageMask);
    size_t n = std::min<size_t>(len - done, vm::kPageSize - in);
    uint64_t pindex = pos >> vm::kPageShift;
    // A page overwritten whole, or wholly past the end of the file, has
    // nothing to read first.
    bool fresh = n == vm::kPageSize || (pindex << vm::kPageShift) >= size;
    // A failure after some pages took their bytes is a short write: those
    // are dirty, and write-back may have given them blocks already.
    Result<vm::Page*> p = fresh ? fault_overwrite_locked(pindex) : fault_write_locked(pindex);
    if (!p.ok()) {
      if (done > 0) break;
      return err(p.error() == kBusFault ? EIO : p.error());
    }
    Result<void> room = reserve_locked(pindex);
    if (!room.ok()) {
      if (done > 0) break;
      return err(room.error());
    }
    if (Result<void> d = mark_dirty_locked(pindex); !d.ok()) {
      if (done > 0) break;
      return err(d.error());
    }
    std::memcpy(p.value()->data() + in, static_cast<const std::byte*>(buf) + done, n);
    done += n;
  }
  return done;
}

Result<void> VnodePager::sync(uint64_t offset, uint64_t len, int flags) {
  // Write-back: MS_ASYNC only schedules (the flusher runs anyway), MS_SYNC
  // writes the dirty pages back and makes them durable. Write-through:
  // stores were written already. MS_INVALIDATE drops the clean pages so
  // that the next touch rereads.
  Result<void> wb;
  if ((flags & MS_SYNC) || (flags & MS_INVALIDATE)) wb = flush();
  if (flags & MS_INVALIDATE) {
    if (write_back_) drop_reclaimable();
    else invalidate(offset, len);
  }
  if (flags & MS_SYNC) {
    MutexLocker g(vp_->lock());
    TRY(vp_->fsync());
  }
  if (!wb.ok()) return wb;
  if (int e = write_error_.exchange(0, std::memory_order_relaxed)) return err(e);
  return {};
}

void VnodePager::host_views_changed_locked(int delta) {
  vp_->host_views_.fetch_add(static_cast<uint32_t>(delta), std::memory_order_relaxed);
  if (!write_back_) return;
  lock().assert_held();
  if (delta >= 0) {
    // Pages a writer view has just pinned (a new view, a view grown or
    // made writable: 0), before the host can store into them: their sums
    // as they are now (what the file holds, or dirty pages that go back
    // anyway). Every other pinned page has its sum already, or the mark
    // of a changed one. Without room for a sum, the page is dirty now.
    for_each_host_written_locked([this](uint64_t i) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      if (view_sums_.find(i) != nullptr) return;
      vm::Page* p = lookup_locked(i);
      if (p == nullptr) return;
      if (view_sums_.reserve(view_sums_.size() + 1).ok()) view_sums_.insert(i, sum_entry(page_sum(p->data())));
      else (void)mark_dirty_locked(i);
    });
  } else {
    view_sums_.erase_if([this](uint64_t i, vm::Page*) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      vm::Page* p = lookup_locked(i);
      return p == nullptr || p->host_writers_ == 0;
    });
  }
}

Result<void> VnodePager::host_writer_pin_locked(uint64_t first, uint64_t count) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // Called by VmObject with the page lock held exclusive. Each page gets
  // the room a store through it may need, as write(2)'s pages do; a page
  // reserved or dirty already keeps what it has. A full file system
  // refuses the view (ENOSPC) where Linux would refuse the first store
  // (SIGBUS): the kernel never sees the host's stores.
  if (!write_back_) return {};
  for (uint64_t i = first; i < first + count; i++) TRY(reserve_locked(i));
  return {};
}

void VnodePager::host_writer_unpin_locked(uint64_t pindex) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (write_back_ && dirty_.find(pindex) == nullptr) give_back_reserved_locked(pindex);
}

void VnodePager::host_sync(uint64_t off, uint64_t len) {
  if (write_back_ || host_views() == 0 || len == 0) return;
  uint64_t first = off >> vm::kPageShift;
  uint64_t last = (len > kToEnd - off ? kToEnd : off + len - 1) >> vm::kPageShift;
  Locker<RwLock> g(lock());
  for_each_host_written_locked([&](uint64_t i) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (i >= first && i <= last) host_page_written(i);
  });
}

void VnodePager::host_page_written(uint64_t pindex) {
  lock().assert_held();
  if (write_back_) {
    // Dirty only if its bytes changed since write-back or a scan saw them.
    vm::Page* p = lookup_locked(pindex);
    if (p != nullptr && host_page_changed_locked(pindex, p)) page_written(pindex << vm::kPageShift, vm::kPageSize);
    return;
  }
  // Write-through: only a page that differs from the file goes to it, so
  // that a page never stored to (a hole read through the view, a read(2)
  // of the file) does not fill a hole of a sparse file.
  vm::Page* p = lookup_locked(pindex);
  if (p == nullptr) return;
  auto* tmp = static_cast<std::byte*>(kmem().alloc(vm::kPageSize));
  bool differs = true;
  if (tmp != nullptr) {
    MutexLocker g(vp_->lock());
    Vattr va;
    vp_->getattr(va);
    uint64_t off = pindex << vm::kPageShift;
    size_t n = off < va.size ? static_cast<size_t>(std::min<uint64_t>(vm::kPageSize, va.size - off)) : 0;
    Result<size_t> r = n ? vp_->read(tmp, n, off) : Result<size_t>(size_t{0});
    differs = !r.ok() || r.value() != n || std::memcmp(tmp, p->data(), n) != 0;
    Kmem::free(tmp);
  }
  if (differs) page_written(pindex << vm::kPageShift, vm::kPageSize);
}

bool VnodePager::host_page_changed_locked(uint64_t pindex, const vm::Page* p) {
  uint64_t sum = page_sum(p->data());
  if (vm::Page** slot = view_sums_.find_slot(pindex)) {
    if (*slot == sum_entry(sum)) return false;
    *slot = sum_entry(sum);
    return true;
  }
  if (view_sums_.reserve(view_sums_.size() + 1).ok()) view_sums_.insert(pindex, sum_entry(sum));
  return true;
}

void VnodePager::host_scan_locked() {
  if (!write_back_) return;
  for_each_host_written_locked([this](uint64_t i) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    vm::Page* p = lookup_locked(i);
    if (p != nullptr && dirty_.find(i) == nullptr && host_page_changed_locked(i, p)) (void)mark_dirty_locked(i);
  });
}

void VnodePager::host_scan() {
  if (!write_back_ || host_views() == 0) return;
  Locker<RwLock> g(lock());
  host_scan_locked();
}

void VnodePager::host_views_grow() {
  if (host_views() == 0) return;
  Locker<RwLock> g(lock());
  host_views_grow_locked();
}

void vnode_host_sync(Vnode& vp, uint64_t off, uint64_t len) {
  if (vp.host_views_.load(std::memory_order_relaxed) == 0) return;
  RefPtr<VnodePager> p;
  {
    MutexLocker g(vp.lock());
    p = VnodePager::find_locked(vp);
  }
  if (p) p->host_sync(off, len);
}

void VnodePager::invalidate(uint64_t off, uint64_t len) {
  if (len == 0) return;
  uint64_t first = off >> vm::kPageShift;
  uint64_t count = len >= kToEnd - off ? (kToEnd >> vm::kPageShift) - first + 1
                                       : ((off + len + vm::kPageMask) >> vm::kPageShift) - first;
  if (write_back_) {
    // Dirty pages in the range are forgotten with their frames.
    Locker<RwLock> g(lock());
    size_t gone = 0;
    dirty_.erase_if([&](uint64_t index, vm::Page*) {
      if (index < first || index - first >= count) return false;
      gone++;
      return true;
    });
    dirty_count_.fetch_sub(gone, std::memory_order_relaxed);
    if (PageCache* pc = page_cache(vp_->mount().kernel())) pc->dirty_pages_.fetch_sub(static_cast<int64_t>(gone), std::memory_order_relaxed);
    // Their reservations go with them.
    int64_t res = 0;
    reserved_.erase_if([&](uint64_t index, vm::Page* e) {
      if (index < first || index - first >= count) return false;
      res += reserved_blocks_of(e);
      return true;
    });
    if (res) {
      MutexLocker t(vp_->lock());
      io_->adjust_reserved(-res);
    }
    // Pinned pages refilled from the file: their sums no longer hold, and
    // a store may follow the refill at once (the page counts as changed).
    view_sums_.for_each([&](uint64_t index, vm::Page*) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      if (index >= first && index - first < count) *view_sums_.find_slot(index) = kChangedSum;
    });
  }
  drop_range(first, count, off, len >= kToEnd - off ? kToEnd : off + len);
}

// --- descriptions

VnodePager* file_cache(File& f) {
  if (VnodePager* p = f.cache_.load(std::memory_order_acquire)) return p;
  Vnode* vp = f.vnode();
  if (vp == nullptr || vp->type() != VType::kReg || !vp->mount().caches_file_data()) return nullptr;
  if (page_cache(vp->mount().kernel()) == nullptr) return nullptr;
  Result<RefPtr<vm::VmObject>> r = VnodePager::get(*vp);
  if (!r.ok()) return nullptr;
  auto* p = static_cast<VnodePager*>(r.value().leak());
  VnodePager* none = nullptr;
  if (!f.cache_.compare_exchange_strong(none, p, std::memory_order_acq_rel)) {
    p->unref();
    return none;
  }
  return p;
}

namespace {

// p's resident pages become what it counts in pc.kept_pages_ (at a close
// that keeps it), or it counts none (it is no longer kept).
void count_kept(PageCache& pc, VnodePager& p, bool kept) {
  int64_t now = kept ? static_cast<int64_t>(p.resident_pages()) : 0;
  int64_t old = p.kept_pages_.exchange(now, std::memory_order_relaxed);
  pc.kept_pages_.fetch_add(now - old, std::memory_order_relaxed);
}

// Past the cap: the clean pages of kept caches go, least recently closed
// first, until the count is a quarter below the cap.
void trim_kept(PageCache& pc) {
  int64_t cap = pc.kept_cap_.load(std::memory_order_relaxed);
  if (pc.kept_pages_.load(std::memory_order_relaxed) <= cap) return;
  int64_t low = cap / 4 * 3;
  RefPtr<VnodePager> batch[kBatch];
  size_t skip = 0;
  while (pc.kept_pages_.load(std::memory_order_relaxed) > low) {
    size_t n = collect(pc, batch, skip, [](VnodePager& p) {
      return p.retained_.load(std::memory_order_relaxed) && p.kept_pages_.load(std::memory_order_relaxed) > 0;
    });
    if (n == 0) break;
    for (size_t i = 0; i < n; i++) {
      VnodePager& p = *batch[i];
      auto gone = static_cast<int64_t>(p.drop_reclaimable());
      int64_t had = p.kept_pages_.load(std::memory_order_relaxed);
      int64_t less = std::min(gone, had);
      // What stays (dirty pages of a cache opened again) is not counted
      // again until its next close.
      if (gone == 0) less = had;
      p.kept_pages_.fetch_sub(less, std::memory_order_relaxed);
      pc.kept_pages_.fetch_sub(less, std::memory_order_relaxed);
      if (p.kept_pages_.load(std::memory_order_relaxed) > 0) skip++;
      batch[i].reset();
      if (pc.kept_pages_.load(std::memory_order_relaxed) <= low) break;
    }
  }
}

// Drops the retained reference of up to kBatch caches that pick()
// selects, least recently used first; false if none was found.
bool drop_retained(PageCache& pc, absl::FunctionRef<bool(VnodePager&)> pick, size_t max = kBatch) {
  VnodePager* batch[kBatch];
  size_t n = 0;
  {
    MutexLocker g(pc.lock_);
    for (VnodePager& p : pc.pagers_) {
      if (!pick(p) || !p.retained_.load(std::memory_order_relaxed)) continue;
      if (!p.retained_.exchange(false, std::memory_order_acq_rel)) continue;
      pc.retained_count_.fetch_sub(1, std::memory_order_relaxed);
      batch[n++] = &p;
      if (n == max) break;
    }
  }
  // Without the list lock: the last reference takes it.
  for (size_t i = 0; i < n; i++) {
    count_kept(pc, *batch[i], false);
    batch[i]->unref();
  }
  return n > 0;
}

}  // namespace

void page_cache_drop_retained(Kernel& k, Mount* m) {
  PageCache* pc = page_cache(k);
  if (pc == nullptr) return;
  while (drop_retained(*pc, [m](VnodePager& p) { return m == nullptr || &p.vnode().mount() == m; })) {
  }
}

void file_cache_release(File& f) {
  VnodePager* p = f.cache_.exchange(nullptr, std::memory_order_acq_rel);
  if (p == nullptr) return;
  (void)p->flush();
  Vnode& vp = p->vnode();
  PageCache* pc = page_cache(vp.mount().kernel());
  bool kept = false, over = false;
  if (pc != nullptr) {
    // The cache stays with the kernel while the file has a name (our
    // reference becomes the retained one), unless it is retained already.
    // Decided under the tree lock, so that an unlink sees the decision
    // (UnlinkedCache). A detached mount keeps nothing: its last user
    // tears it down.
    MutexLocker g(vp.lock());
    Vattr va;
    vp.getattr(va);
    if (va.nlink > 0 && !vp.mount().detached_) kept = !p->retained_.exchange(true, std::memory_order_acq_rel);
    if (kept) over = pc->retained_count_.fetch_add(1, std::memory_order_relaxed) + 1 > PageCache::kMaxRetained;
  }
  if (kept) {
    {
      // The list's back: the most recently closed.
      MutexLocker g(pc->lock_);
      if (p->cache_hook_.is_linked()) {
        pc->pagers_.erase(pc->pagers_.iterator_to(*p));
        pc->pagers_.push_back(*p);
      }
    }
    count_kept(*pc, *p, true);
    if (over) drop_retained(*pc, [](VnodePager&) { return true; }, 1);
    trim_kept(*pc);
    return;
  }
  // Kept already (opened again meanwhile): counted anew.
  if (pc != nullptr && p->retained_.load(std::memory_order_relaxed)) {
    count_kept(*pc, *p, true);
    trim_kept(*pc);
  }
  p->unref();
}

UnlinkedCache::~UnlinkedCache() {
  if (!pager_) return;
  if (pager_->retained_.exchange(false, std::memory_order_acq_rel)) {
    if (PageCache* pc = page_cache(pager_->vnode().mount().kernel())) {
      pc->retained_count_.fetch_sub(1, std::memory_order_relaxed);
      count_kept(*pc, *pager_, false);
    }
    pager_->unref();
  }
}

int file_check_wb_error(File& f) {
  Vnode* vp = f.vnode();
  if (vp == nullptr) return 0;
  uint64_t cur = vp->wb_error_.load(std::memory_order_acquire);
  uint64_t seen = f.wb_seen_.load(std::memory_order_relaxed);
  if ((cur & ~Vnode::kWbErrorSeen) == (seen & ~Vnode::kWbErrorSeen)) return 0;
  f.wb_seen_.store(cur, std::memory_order_relaxed);
  // Mark it seen, so that descriptions opened later do not report it.
  vp->wb_error_.compare_exchange_strong(cur, cur | Vnode::kWbErrorSeen, std::memory_order_acq_rel);
  return static_cast<int>(cur & 0xffff);
}

Result<void> vnode_flush(Vnode& vp) {
  RefPtr<VnodePager> p;
  {
    MutexLocker g(vp.lock());
    p = VnodePager::find_locked(vp);
  }
  if (!p) return {};
  return p->flush();
}

namespace {

// mmap(2) of a descriptor, Linux's checks in Linux's order: EBADF, ENODEV
// for what has no pages (directories, pipes, sockets), EACCES for a file
// not open for reading, or a shared writable mapping of a file not open
// for writing or open for appending; EPERM for a shared writable mapping
// of a memfd sealed against writes, and for PROT_EXEC on a noexec mount.
Result<RefPtr<vm::VmObject>> vnode_mmap(Lwp& l, int fd, int prot, int flags, int* max_prot) {
  Ref<File> f = TRY(fd_get(l, fd));
  Vnode* vp = f->vnode();
  if (vp == nullptr || vp->type() != VType::kReg) return err(ENODEV);
  if (!f->readable()) return err(EACCES);
  int most = PROT_READ | PROT_WRITE | PROT_EXEC;
  // The cache first, then the seals (memfd.cc: a seal that comes between
  // finds the cache and denies its writable mappings).
  RefPtr<vm::VmObject> cache = TRY(VnodePager::get(*vp));
  if ((flags & MAP_TYPE) != MAP_PRIVATE) {
    if ((prot & PROT_WRITE) && !f->writable()) return err(EACCES);
    if ((prot & PROT_WRITE) && (f->flags() & O_APPEND)) return err(EACCES);
    if (!f->writable()) most &= ~PROT_WRITE;
    if (seals_deny_shared_write(*vp)) {
      if (prot & PROT_WRITE) return err(EPERM);
      most &= ~PROT_WRITE;
    }
  }
  if (vp->mount().flags_.load(std::memory_order_relaxed) & MS_NOEXEC) {
    if (prot & PROT_EXEC) return err(EPERM);
    most &= ~PROT_EXEC;
  }
  *max_prot = most;
  return cache;
}

struct HookRegistrar {
  HookRegistrar() { set_mmap_file_hook(&vnode_mmap); }
} g_hook_registrar;

}  // namespace

}  // namespace rump
