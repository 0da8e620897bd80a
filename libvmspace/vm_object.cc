// vm_object.cc: page tables of VmObjects, demand fill, copy-on-write (see
// vm_object.h for the locking rules).
#include "vm_object.h"

#include <rump/rumpuser.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"

namespace rump::vm {

VmObject::VmObject(Kmem& kmem, uint64_t size, bool anonymous)
    : kmem_(&kmem), size_(size), anonymous_(anonymous), pages_(kmem) {}

VmObject::~VmObject() {
  // Last reference: nobody else can reach the table, the lock only keeps the
  // analysis honest.
  Locker<RwLock> g(lock_);
  pages_.for_each([](uint64_t, Page* page) { page->release(); });
  pages_.clear();
  FrameChunk::drop_owner(chunk_);
  chunk_ = nullptr;
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
      Result<Page*> p = Page::alloc_zeroed(*kmem_, &chunk_);
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
    if (!page_reclaimable_locked(index)) return false;
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
  Page* copy = TRY(Page::alloc_copy(*kmem_, *p, &chunk_));
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

void VmObject::drop_range(uint64_t first, uint64_t count) {
  Locker<RwLock> g(lock_);
  if (count <= pages_.size()) {
    for (uint64_t i = first; i < first + count; i++)
      if (Page* p = pages_.erase(i)) p->release();
    return;
  }
  pages_.erase_if([&](uint64_t index, Page* page) {
    if (index < first || index - first >= count) return false;
    page->release();
    return true;
  });
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
