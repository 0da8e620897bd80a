// page.h: page frames of user memory and the page-size arithmetic.
//
// A Page is one 4 KiB frame of host memory (rumpuser_malloc, page aligned)
// holding user data, charged to the Kmem it was allocated from so that a
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
#include "base/result.h"

namespace rump::vm {

inline constexpr uint64_t kPageShift = 12;
inline constexpr uint64_t kPageSize = uint64_t{1} << kPageShift;
inline constexpr uint64_t kPageMask = kPageSize - 1;

constexpr uint64_t page_trunc(uint64_t a) { return a & ~kPageMask; }
// The caller checks that a + kPageMask does not overflow.
constexpr uint64_t page_round(uint64_t a) { return (a + kPageMask) & ~kPageMask; }
constexpr bool page_aligned(uint64_t a) { return (a & kPageMask) == 0; }

class Page : public KObject {
 public:
  // A zero-filled frame, or ENOMEM when the Kmem limit or the host says no.
  static Result<Page*> alloc_zeroed(Kmem& kmem);
  // A frame holding a copy of src (the copy-on-write break).
  static Result<Page*> alloc_copy(Kmem& kmem, const Page& src);

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

 private:
  Page(Kmem& kmem, std::byte* frame) : kmem_(&kmem), frame_(frame) {}
  ~Page() = default;
  static Result<Page*> alloc_raw(Kmem& kmem);

  Kmem* kmem_;        // the arena the frame is charged to
  std::byte* frame_;  // kPageSize bytes, page aligned, owned
  std::atomic<uint32_t> shares_{1};
};

}  // namespace rump::vm
