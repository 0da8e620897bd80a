// vm_object.cc: page tables of VmObjects, demand fill, copy-on-write (see
// vm_object.h for the locking rules).
#include "vm_object.h"

#include <rump/rumpuser.h>
#include <rump/rumpuser_hostmap.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"

namespace rump::vm {

VmObject::VmObject(Kmem& kmem, uint64_t size, bool anonymous)
    : kmem_(&kmem), size_(size), anonymous_(anonymous), pages_(kmem) {}

VmObject::~VmObject() {
  // Mappers hold references: no view is left.
  // Last reference: nobody else can reach the table, the lock only keeps the
  // analysis honest.
  Locker<RwLock> g(lock_);
  pages_.for_each([](uint64_t, Page* page) { page->release(); });
  pages_.clear();
  FrameChunk::drop_owner(chunk_);
  chunk_ = nullptr;
  if (pool_ != nullptr) pool_->unref();
}

Result<RefPtr<VmObject>> VmObject::create_anonymous(Kmem& kmem) {
  auto* o = new (kmem) VmObject(kmem, kUnbounded, true);
  if (o == nullptr) return err(ENOMEM);
  return RefPtr<VmObject>(kAdopt, o);
}

int VmObject::max_shared_prot() const { return PROT_READ | PROT_WRITE | PROT_EXEC; }

Result<void> VmObject::fill_page(uint64_t, std::byte*) { return {}; }
Result<void> VmObject::page_mkwrite(uint64_t, Page*) { return {}; }

void VmObject::page_written(uint64_t, size_t) {}
Result<void> VmObject::sync(uint64_t, uint64_t, int) { return {}; }

size_t VmObject::resident_pages() {
  SharedLocker g(lock_);
  return pages_.size();
}

Result<void> VmObject::add_writable_map() {
  int n = writable_maps_.load(std::memory_order_acquire);
  do {
    if (n < 0) return err(EPERM);
  } while (!writable_maps_.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel));
  return {};
}

Result<void> VmObject::deny_writable_maps() {
  int n = writable_maps_.load(std::memory_order_acquire);
  do {
    if (n > 0) return err(EBUSY);
    if (n < 0) return {};
  } while (!writable_maps_.compare_exchange_weak(n, kDenied, std::memory_order_acq_rel));
  return {};
}

void PageTable::panic_full() {
  rumpuser_dprintf("libvmspace: page table insert without reserved room\n");
  rumpuser_exit(RUMPUSER_PANIC);
}

Result<void> VmObject::insert_locked(uint64_t pindex, Page* p) {
  TRY(reserve_one_locked());
  pages_.insert(pindex, p);
  return {};
}

Result<Page*> VmObject::alloc_for_fill_locked() {
  for (bool retried = false;; retried = true) {
    Result<void> room = reserve_one_locked();
    if (room.ok()) {
      Result<Page*> p = alloc_page_locked();
      if (p.ok() || p.error() != ENOMEM) return p;
    } else if (room.error() != ENOMEM) {
      return err(room.error());
    }
    if (retried || anonymous_ || pages_.size() == 0) return err(ENOMEM);
    // Give back every page that can be filled again. Copies hold no frame
    // of a pager object across a fault (copy.cc goes page by page there),
    // so nothing points into them.
    if (drop_reclaimable_locked() > 0) continue;
    clean_pages_locked();
    if (drop_reclaimable_locked() == 0) return err(ENOMEM);
  }
}

size_t VmObject::drop_reclaimable_locked() {
  size_t before = pages_.size();
  pages_.erase_if([&](uint64_t index, Page* page) {
    if (page->pinned() || !page_reclaimable_locked(index)) return false;
    page->release();
    return true;
  });
  return before - pages_.size();
}

size_t VmObject::drop_reclaimable() {
  if (anonymous_) return 0;
  Locker<RwLock> g(lock_);
  return drop_reclaimable_locked();
}

Result<Page*> VmObject::fault_overwrite_locked(uint64_t pindex) {
  if (pages_.find(pindex) != nullptr) return fault_write_locked(pindex);
  if (size_ != kUnbounded && (pindex << kPageShift) >= size_) return err(EFAULT);
  Page* p = TRY(alloc_for_fill_locked());
  pages_.insert(pindex, p);
  return p;
}

Result<Page*> VmObject::fault_locked(uint64_t pindex) {
  if (Page* p = lookup_locked(pindex)) return p;
  if (size_ != kUnbounded && (pindex << kPageShift) >= size_) return err(EFAULT);
  Page* p = TRY(alloc_for_fill_locked());
  if (!anonymous_) {
    Result<void> r = fill_page(pindex << kPageShift, p->data());
    if (!r.ok()) {
      p->release();
      return err(r.error());
    }
  }
  pages_.insert(pindex, p);
  return p;
}

Result<Page*> VmObject::fault_write_locked(uint64_t pindex) {
  Page** slot = pages_.find_slot(pindex);
  if (slot == nullptr) return fault_locked(pindex);
  Page* p = *slot;
  if (p->exclusive()) return p;
  // Copy-on-write: another table (a forked space) still refers to the frame.
  // We hold lock_ exclusive, so no reader of this table sees the swap half
  // done; the other tables keep the old frame.
  Page* copy = nullptr;
  if (pool_ != nullptr) {
    copy = TRY(Page::alloc_pooled(*kmem_, *pool_));
    std::memcpy(copy->data(), p->data(), kPageSize);
  } else {
    copy = TRY(Page::alloc_copy(*kmem_, *p, &chunk_));
  }
  *slot = copy;
  p->release();
  return copy;
}

Result<Page*> VmObject::copy_page(uint64_t pindex) {
  Locker<RwLock> g(lock_);
  Page* src = TRY(fault_locked(pindex));
  return Page::alloc_copy(*kmem_, *src);
}

Result<void> VmObject::read_page(uint64_t pindex, std::byte* dst) {
  Locker<RwLock> g(lock_);
  Page* src = TRY(fault_locked(pindex));
  std::memcpy(dst, src->data(), kPageSize);
  return {};
}

template <class Fn>
void VmObject::for_each_in_range_locked(uint64_t first, uint64_t count, Fn&& fn) {
  // Probe each index of a small range; walk the table for a sparse big one.
  if (count <= pages_.size()) {
    for (uint64_t i = first; i < first + count; i++)
      if (Page* p = pages_.find(i)) fn(i, p);
  } else {
    pages_.for_each([&](uint64_t index, Page* page) {
      if (index >= first && index - first < count) fn(index, page);
    });
  }
}

void VmObject::drop_range(uint64_t first, uint64_t count, uint64_t byte_lo, uint64_t byte_hi) {
  Locker<RwLock> g(lock_);
  if (!views_.empty()) {
    // Pinned pages first, in order: a page past the end cuts every view
    // there, and the pages after it are past the end too.
    for_each_in_range_locked(first, count, [&](uint64_t index, Page* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      if (!p->pinned()) return;
      if (!refill_pinned_locked(index, p, byte_lo, byte_hi))
        unalias_locked(index);
      else if (p->host_writers_ > 0)
        // The page may have lost its blocks (a hole punched under it):
        // room again before the host stores into it, as when the view
        // was made. Without room it holds none, and its write-back may
        // fail as any other's.
        (void)host_writer_pin_locked(index, 1);
    });
  }
  auto drop = [](Page* p) {
    if (p->pinned()) return false;
    p->release();
    return true;
  };
  if (count <= pages_.size()) {
    for (uint64_t i = first; i < first + count; i++) {
      Page* p = pages_.find(i);
      if (p != nullptr && drop(p)) pages_.erase(i);
    }
  } else {
    pages_.erase_if([&](uint64_t index, Page* page) {
      if (index < first || index - first >= count) return false;
      return drop(page);
    });
  }
  // A change that grew the file shows in the views (the pages it made
  // past their old end).
  if (!views_.empty()) host_views_grow_locked();
}

// --- host views

bool VmObject::refill_pinned_locked(uint64_t pindex, Page* p, uint64_t lo, uint64_t hi) {
  uint64_t off = pindex << kPageShift;
  auto* tmp = static_cast<std::byte*>(kmem_->zalloc(kPageSize));
  // Without memory the page keeps what it holds.
  if (tmp == nullptr) return true;
  Result<void> r = fill_page(off, tmp);
  if (r.ok()) {
    uint64_t from = lo > off ? lo - off : 0;
    uint64_t to = hi - off < kPageSize ? hi - off : kPageSize;
    if (hi <= off) to = 0;
    if (from < to) std::memcpy(p->data() + from, tmp + from, to - from);
  }
  Kmem::free(tmp);
  // An I/O error keeps the page's bytes; only the end of the file ends a
  // view.
  return r.ok() || r.error() != kPagerPastEnd;
}

void VmObject::unpin_locked(uint64_t first, uint64_t count, bool writer, bool written) {
  for (uint64_t i = first; i < first + count; i++) {
    Page* p = pages_.find(i);
    if (p == nullptr || p->host_maps_ == 0) continue;  // cannot happen: pinned pages stay
    if (writer && written) host_page_written(i);
    p->host_maps_--;
    if (writer && --p->host_writers_ == 0) host_writer_unpin_locked(i);
  }
}

void VmObject::unalias_locked(uint64_t pindex) {
  for (HostView& v : views_) {
    if (pindex < v.first || pindex - v.first >= v.pinned) continue;
    uint64_t at = pindex - v.first;
    // The host's part cannot fail for a range it mapped (the kernel's own
    // view); were it to, the old frames stay viewed and pinned.
    if (rumpuser_busmap(reinterpret_cast<void*>(v.addr + (at << kPageShift)), (v.pinned - at) << kPageShift) != 0)
      continue;
    unpin_locked(v.first + at, v.pinned - at, v.writer, false);
    v.pinned = at;
  }
}

int VmObject::alias_locked(const HostView& v, uint64_t from, uint64_t to, int prot) {
  // Runs of frames adjacent in one chunk: one host mapping each.
  for (uint64_t i = from; i < to;) {
    Page* p = pages_.find(v.first + i);
    uint64_t run = 1;
    while (i + run < to) {
      Page* q = pages_.find(v.first + i + run);
      if (q->chunk_id() != p->chunk_id() || q->data() != p->data() + run * kPageSize) break;
      run++;
    }
    int e = rumpuser_shmalias(p->data(), run << kPageShift, reinterpret_cast<void*>(v.addr + (i << kPageShift)), prot);
    if (e != 0) return e;
    i += run;
  }
  return 0;
}

void VmObject::host_views_grow_locked() {
  bool grew = false;
  for (HostView& v : views_) {
    uint64_t n = v.pinned;
    for (; n < v.length; n++) {
      Result<Page*> p = fault_locked(v.first + n);
      if (!p.ok() || !p.value()->aliasable()) break;
      p.value()->host_maps_++;
      if (v.writer) p.value()->host_writers_++;
    }
    if (n == v.pinned) continue;
    // Without room for the host's stores the new pages stay SIGBUS.
    if (v.writer && !host_writer_pin_locked(v.first + v.pinned, n - v.pinned).ok()) {
      unpin_locked(v.first + v.pinned, n - v.pinned, v.writer, false);
      continue;
    }
    // The host's part cannot fail for a range it mapped (the SIGBUS
    // mapping there is the kernel's own); were it to, the new pages are
    // let go and the range stays SIGBUS.
    if (alias_locked(v, v.pinned, n, v.prot) != 0) {
      unpin_locked(v.first + v.pinned, n - v.pinned, v.writer, false);
      (void)rumpuser_busmap(reinterpret_cast<void*>(v.addr + (v.pinned << kPageShift)), (n - v.pinned) << kPageShift);
      continue;
    }
    v.pinned = n;
    grew = true;
  }
  // The pager hears of the pages writer views pin now, before the host
  // can store into them.
  if (grew) host_views_changed_locked(0);
}

Result<void> VmObject::host_view_add(HostView& v, uint64_t count, int prot) {
  if (anonymous_) return err(ENODEV);
  Locker<RwLock> g(lock_);
  uint64_t n = 0;
  auto undo = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { unpin_locked(v.first, n, v.writer, false); };
  // Fault and pin page by page: a pinned page is never given back to make
  // room for the next one.
  for (; n < count; n++) {
    Result<Page*> p = fault_locked(v.first + n);
    if (!p.ok()) {
      if (p.error() == kPagerPastEnd || p.error() == EFAULT) break;
      undo();
      return err(p.error());
    }
    if (!p.value()->aliasable()) {
      undo();
      return err(ENODEV);
    }
    p.value()->host_maps_++;
    if (v.writer) p.value()->host_writers_++;
  }
  if (v.writer) {
    if (Result<void> r = host_writer_pin_locked(v.first, n); !r.ok()) {
      undo();
      return r;
    }
  }
  if (int e = alias_locked(v, 0, n, prot)) {
    undo();
    return err(e);
  }
  if (n < count) {
    if (int e = rumpuser_busmap(reinterpret_cast<void*>(v.addr + (n << kPageShift)), (count - n) << kPageShift)) {
      undo();
      return err(e);
    }
  }
  v.pinned = n;
  v.length = count;
  v.prot = prot;
  views_.push_back(v);
  host_views_.fetch_add(1, std::memory_order_relaxed);
  host_views_changed_locked(1);
  return {};
}

void VmObject::host_view_cut_locked(HostView& v, uint64_t from, bool written) {
  if (from < v.pinned) {
    unpin_locked(v.first + from, v.pinned - from, v.writer, written);
    v.pinned = from;
  }
  if (from < v.length) v.length = from;
  if (from == 0 && v.hook.is_linked()) {
    views_.erase(views_.iterator_to(v));
    host_views_.fetch_sub(1, std::memory_order_relaxed);
    host_views_changed_locked(-1);
  }
}

void VmObject::host_view_split_locked(HostView& head, HostView& tail, uint64_t at) {
  tail.addr = head.addr + (at << kPageShift);
  tail.first = head.first + at;
  tail.writer = head.writer;
  tail.prot = head.prot;
  tail.pinned = head.pinned > at ? head.pinned - at : 0;
  tail.length = head.length > at ? head.length - at : 0;
  if (head.pinned > at) head.pinned = at;
  if (head.length > at) head.length = at;
  views_.insert(std::next(views_.iterator_to(head)), tail);
  host_views_.fetch_add(1, std::memory_order_relaxed);
  host_views_changed_locked(1);
}

Result<void> VmObject::host_view_make_writer_locked(HostView& v) {
  if (v.writer) return {};
  for (uint64_t i = 0; i < v.pinned; i++)
    if (Page* p = pages_.find(v.first + i)) p->host_writers_++;
  if (Result<void> r = host_writer_pin_locked(v.first, v.pinned); !r.ok()) {
    for (uint64_t i = 0; i < v.pinned; i++)
      if (Page* p = pages_.find(v.first + i); p != nullptr && --p->host_writers_ == 0) host_writer_unpin_locked(v.first + i);
    return r;
  }
  v.writer = true;
  host_views_changed_locked(0);
  return {};
}

void VmObject::host_view_written_locked(const HostView& v, uint64_t first, uint64_t count) {
  if (!v.writer) return;
  uint64_t lo = first > v.first ? first : v.first;
  uint64_t hi = first + count < v.first + v.pinned ? first + count : v.first + v.pinned;
  for (uint64_t i = lo; i < hi; i++) host_page_written(i);
}

void VmObject::for_each_host_written_locked(absl::FunctionRef<void(uint64_t)> fn) {
  for (const HostView& v : views_)
    if (v.writer)
      for (uint64_t i = 0; i < v.pinned; i++) fn(v.first + i);
}

Result<RefPtr<VmObject>> VmObject::clone_range(uint64_t first, uint64_t count, uint64_t new_first) {
  RefPtr<VmObject> clone = TRY(create_anonymous(*kmem_));
  // Gather under our lock, fill the clone under its own: the two object locks
  // share a rank and are never held together. Both the gathering array and
  // the clone's table are allocated before a frame is shared with the clone.
  struct Slot {
    uint64_t index;
    Page* page;
  };
  Slot* slots = nullptr;
  absl::Cleanup free_slots = [&slots] { Kmem::free(slots); };
  size_t n = 0;
  {
    SharedLocker g(lock_);
    size_t most = count < pages_.size() ? count : pages_.size();
    if (most == 0) return clone;
    slots = static_cast<Slot*>(kmem_->alloc(most * sizeof(Slot)));
    if (slots == nullptr) return err(ENOMEM);
    for_each_in_range_locked(first, count, [&](uint64_t index, Page* p) {
      p->share();
      slots[n++] = Slot{index - first + new_first, p};
    });
  }
  Locker<RwLock> g(clone->lock_);
  if (!clone->pages_.reserve(n).ok()) {
    for (size_t i = 0; i < n; i++) slots[i].page->release();
    return err(ENOMEM);
  }
  for (size_t i = 0; i < n; i++) clone->pages_.insert(slots[i].index, slots[i].page);
  return clone;
}

}  // namespace rump::vm
