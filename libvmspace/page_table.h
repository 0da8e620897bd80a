// page_table.h: the page table of a VmObject: page index -> Page*, a hash
// table whose growth is a step of its own that can fail.
//
// reserve(n) makes room for n entries or says ENOMEM and leaves the table as
// it was; insert() never allocates and needs that room (inserting without it
// is a broken invariant of the caller). So every path that adds a page
// reserves first, where a failure can still be undone, and the kernel never
// meets an allocation failure inside the table.
//
// Open addressing with linear probing over a power-of-two array of slots
// taken from the Kmem arena; Fibonacci hashing spreads the consecutive page
// indices a mapping touches over the array; the load stays at or below 3/4;
// erase shifts the following entries of the run back (no tombstones), so a
// lookup stops at the first empty slot.
//
// Not thread-safe: the owner's lock guards it (VmObject::lock_). Who calls
// this: vm_object.cc only.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/kmem.h"
#include "base/result.h"

namespace rump::vm {

class Page;

class PageTable {
 public:
  explicit PageTable(Kmem& kmem) : kmem_(&kmem) {}
  ~PageTable() { Kmem::free(slots_); }
  PageTable(const PageTable&) = delete;
  PageTable& operator=(const PageTable&) = delete;

  size_t size() const { return size_; }

  Page* find(uint64_t index) const {
    if (size_ == 0) return nullptr;
    for (size_t i = home(index);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.page == nullptr) return nullptr;
      if (s.index == index) return s.page;
    }
  }
  // Where the page at index is kept, to replace it in place; nullptr if
  // there is none.
  Page** find_slot(uint64_t index) {
    if (size_ == 0) return nullptr;
    for (size_t i = home(index);; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.page == nullptr) return nullptr;
      if (s.index == index) return &s.page;
    }
  }

  // Room for n entries in all: 0 or ENOMEM (the table unchanged).
  Result<void> reserve(size_t n) {
    if (n <= limit()) return {};
    size_t cap = kMinSlots;
    while (n > cap / 4 * 3) cap *= 2;
    return rehash(cap);
  }
  // Adds page at index, which must be absent, in room made by reserve().
  void insert(uint64_t index, Page* page) {
    if (size_ + 1 > limit()) panic_full();
    size_t i = home(index);
    while (slots_[i].page != nullptr) i = (i + 1) & mask_;
    slots_[i] = Slot{index, page};
    size_++;
  }
  // Removes the entry at index; returns its page, or nullptr if absent.
  Page* erase(uint64_t index) {
    if (size_ == 0) return nullptr;
    for (size_t i = home(index);; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.page == nullptr) return nullptr;
      if (s.index == index) {
        Page* p = s.page;
        erase_at(i);
        return p;
      }
    }
  }

  // fn(index, page) for each entry, in no particular order.
  template <class Fn>
  void for_each(Fn&& fn) const {
    if (size_ == 0) return;
    for (size_t i = 0; i <= mask_; i++)
      if (slots_[i].page != nullptr) fn(slots_[i].index, slots_[i].page);
  }
  // Removes each entry for which pred(index, page) is true; each entry is
  // seen exactly once.
  template <class Pred>
  void erase_if(Pred&& pred) {
    if (size_ == 0) return;
    // Start after an empty slot (the load is below 1, so there is one): an
    // erase moves entries back from later in their run only, and no run
    // crosses that slot, so nothing moves into a slot already passed.
    size_t start = 0;
    while (slots_[start].page != nullptr) start++;
    for (size_t n = 1; n <= mask_; n++) {
      size_t i = (start + n) & mask_;
      while (slots_[i].page != nullptr && pred(slots_[i].index, slots_[i].page)) erase_at(i);
    }
  }
  // Forgets every entry (the slots stay for reuse).
  void clear() {
    if (slots_ != nullptr) std::memset(static_cast<void*>(slots_), 0, (mask_ + 1) * sizeof(Slot));
    size_ = 0;
  }

 private:
  struct Slot {
    uint64_t index;
    Page* page;  // nullptr: the slot is empty
  };
  static constexpr size_t kMinSlots = 8;

  size_t limit() const { return slots_ == nullptr ? 0 : (mask_ + 1) / 4 * 3; }
  // Eight consecutive pages share a home run of eight slots (one or two
  // cache lines, as a mapping is mostly touched in order); the runs are
  // spread over the array by Fibonacci hashing of index / 8.
  size_t home(uint64_t index) const {
    size_t run = static_cast<size_t>(((index >> 3) * 0x9e3779b97f4a7c15ull) >> shift_);
    return (run & ~size_t{7}) | static_cast<size_t>(index & 7);
  }

  Result<void> rehash(size_t cap) {
    auto* fresh = static_cast<Slot*>(kmem_->alloc(cap * sizeof(Slot)));
    if (fresh == nullptr) return err(ENOMEM);
    std::memset(static_cast<void*>(fresh), 0, cap * sizeof(Slot));
    Slot* old = slots_;
    size_t old_cap = old == nullptr ? 0 : mask_ + 1;
    slots_ = fresh;
    mask_ = cap - 1;
    shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(cap));
    for (size_t i = 0; i < old_cap; i++) {
      if (old[i].page == nullptr) continue;
      size_t j = home(old[i].index);
      while (slots_[j].page != nullptr) j = (j + 1) & mask_;
      slots_[j] = old[i];
    }
    Kmem::free(old);
    return {};
  }

  // Empties slot i and moves later entries of its run back so that every
  // entry stays reachable from its home slot.
  void erase_at(size_t i) {
    size_t j = i;
    for (;;) {
      j = (j + 1) & mask_;
      if (slots_[j].page == nullptr) break;
      size_t h = home(slots_[j].index);
      // The entry at j may fill i only if its home is not in (i, j].
      bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      i = j;
    }
    slots_[i] = Slot{0, nullptr};
    size_--;
  }

  [[noreturn]] static void panic_full();

  Kmem* kmem_;
  Slot* slots_ = nullptr;
  size_t mask_ = 0;
  unsigned shift_ = 64;
  size_t size_ = 0;
};

}  // namespace rump::vm
