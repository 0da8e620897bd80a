// vm_object.cc: page tables of VmObjects, demand fill, copy-on-write (see
// vm_object.h for the locking rules).
#include "vm_object.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

namespace rump::vm {

VmObject::VmObject(Kmem& kmem, uint64_t size, bool anonymous)
    : kmem_(&kmem), size_(size), anonymous_(anonymous), pages_(0, absl::Hash<uint64_t>(), std::equal_to<uint64_t>(),
                                                                KAllocator<std::pair<const uint64_t, Page*>>(kmem)) {}

VmObject::~VmObject() {
  // Last reference: nobody else can reach the table, the lock only keeps the
  // analysis honest.
  Locker<RwLock> g(lock_);
  for (auto& [index, page] : pages_) page->release();
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
void VmObject::page_written(uint64_t, size_t) {}
Result<void> VmObject::sync(uint64_t, uint64_t, int) { return {}; }

size_t VmObject::resident_pages() {
  SharedLocker g(lock_);
  return pages_.size();
}

Result<void> VmObject::reserve_one_locked() {
  // The table grows by rehashing; do it here, where a failure is ENOMEM, and
  // not inside insert, where it would throw.
  try {
    pages_.reserve(pages_.size() + 1);
  } catch (const std::bad_alloc&) {
    return err(ENOMEM);
  }
  return {};
}

Result<void> VmObject::insert_locked(uint64_t pindex, Page* p) {
  TRY(reserve_one_locked());
  pages_.emplace(pindex, p);
  return {};
}

Result<Page*> VmObject::fault_locked(uint64_t pindex) {
  if (Page* p = lookup_locked(pindex)) return p;
  if (size_ != kUnbounded && (pindex << kPageShift) >= size_) return err(EFAULT);
  TRY(reserve_one_locked());
  Page* p = TRY(Page::alloc_zeroed(*kmem_, &chunk_));
  if (!anonymous_) {
    Result<void> r = fill_page(pindex << kPageShift, p->data());
    if (!r.ok()) {
      p->release();
      return err(r.error());
    }
  }
  pages_.emplace(pindex, p);
  return p;
}

Result<Page*> VmObject::fault_write_locked(uint64_t pindex) {
  auto it = pages_.find(pindex);
  if (it == pages_.end()) return fault_locked(pindex);
  Page* p = it->second;
  if (p->exclusive()) return p;
  // Copy-on-write: another table (a forked space) still refers to the frame.
  // We hold lock_ exclusive, so no reader of this table sees the swap half
  // done; the other tables keep the old frame.
  Page* copy = TRY(Page::alloc_copy(*kmem_, *p, &chunk_));
  it->second = copy;
  p->release();
  return copy;
}

Result<Page*> VmObject::copy_page(uint64_t pindex) {
  Locker<RwLock> g(lock_);
  Page* src = TRY(fault_locked(pindex));
  return Page::alloc_copy(*kmem_, *src);
}

template <class Fn>
void VmObject::for_each_in_range_locked(uint64_t first, uint64_t count, Fn&& fn) {
  // Probe each index of a small range; walk the table for a sparse big one.
  if (count <= pages_.size()) {
    for (uint64_t i = first; i < first + count; i++) {
      auto it = pages_.find(i);
      if (it != pages_.end()) fn(it->first, it->second);
    }
  } else {
    for (auto& [index, page] : pages_)
      if (index >= first && index - first < count) fn(index, page);
  }
}

void VmObject::drop_range(uint64_t first, uint64_t count) {
  Locker<RwLock> g(lock_);
  if (count <= pages_.size()) {
    for (uint64_t i = first; i < first + count; i++) {
      auto it = pages_.find(i);
      if (it == pages_.end()) continue;
      it->second->release();
      pages_.erase(it);
    }
    return;
  }
  for (auto it = pages_.begin(); it != pages_.end();) {
    if (it->first >= first && it->first - first < count) {
      it->second->release();
      pages_.erase(it++);
    } else {
      ++it;
    }
  }
}

Result<RefPtr<VmObject>> VmObject::clone_range(uint64_t first, uint64_t count, uint64_t new_first) {
  RefPtr<VmObject> clone = TRY(create_anonymous(*kmem_));
  using Slot = std::pair<uint64_t, Page*>;
  std::vector<Slot, KAllocator<Slot>> slots{KAllocator<Slot>(*kmem_)};
  // Gather under our lock, fill the clone under its own: the two object locks
  // share a rank and are never held together.
  {
    SharedLocker g(lock_);
    try {
      slots.reserve(count < pages_.size() ? count : pages_.size());
    } catch (const std::bad_alloc&) {
      return err(ENOMEM);
    }
    for_each_in_range_locked(first, count, [&](uint64_t index, Page* p) {
      p->share();
      slots.emplace_back(index - first + new_first, p);
    });
  }
  Locker<RwLock> g(clone->lock_);
  try {
    clone->pages_.reserve(slots.size());
  } catch (const std::bad_alloc&) {
    for (auto& s : slots) s.second->release();
    return err(ENOMEM);
  }
  for (auto& s : slots) clone->pages_.emplace(s.first, s.second);
  return clone;
}

}  // namespace rump::vm
