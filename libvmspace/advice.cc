// advice.cc: madvise, minherit, mincore, mlock/munlock, msync and populating
// pages: the calls that change how a range behaves, not what is mapped.
#include <sys/mman.h>

#include <cerrno>

#include "vmspace.h"

namespace rump::vm {

namespace {
Inherit default_inherit(const MapEntry& e) { return e.shared ? Inherit::kShare : Inherit::kCopy; }
}  // namespace

Result<void> Vmspace::populate_locked(MapEntry& e, uint64_t from, uint64_t to) {
  for (uint64_t addr = from; addr < to; addr += kPageSize) {
    if (!e.layer) {
      uint64_t index = (e.object_offset + (addr - e.start)) >> kPageShift;
      Locker<RwLock> g(e.object->lock());
      TRY(e.object->fault_locked(index));
      continue;
    }
    VmObject& layer = *e.layer;
    uint64_t index = (e.layer_offset + (addr - e.start)) >> kPageShift;
    if (!e.object) {
      Locker<RwLock> g(layer.lock());
      TRY(layer.fault_locked(index));
      continue;
    }
    {
      SharedLocker g(layer.lock());
      if (layer.lookup_locked(index) != nullptr) continue;
    }
    Page* copy = TRY(e.object->copy_page((e.object_offset + (addr - e.start)) >> kPageShift));
    Locker<RwLock> g(layer.lock());
    if (layer.lookup_locked(index) != nullptr) {
      copy->release();
      continue;
    }
    Result<void> r = layer.insert_locked(index, copy);
    if (!r.ok()) {
      copy->release();
      return r;
    }
  }
  return {};
}

Result<void> Vmspace::advise(uint64_t addr, uint64_t len, int advice) {
  switch (advice) {
    case MADV_NORMAL:
    case MADV_RANDOM:
    case MADV_SEQUENTIAL:
    case MADV_WILLNEED:
    case MADV_DONTNEED:
    case MADV_FREE:
    case MADV_DONTFORK:
    case MADV_DOFORK:
    case MADV_WIPEONFORK:
    case MADV_KEEPONFORK:
      break;
    default:
      return err(EINVAL);
  }
  if (!page_aligned(addr)) return err(EINVAL);
  if (len > max_) return err(ENOMEM);
  len = page_round(len);
  if (len == 0) return {};
  if (addr < min_ || addr > max_ - len) return err(ENOMEM);
  const uint64_t end = addr + len;
  Locker<RwLock> g(map_lock_);
  // Like Linux: the mapped parts get the advice, holes make it ENOMEM.
  bool holes = !range_mapped_locked(addr, len);
  switch (advice) {
    case MADV_NORMAL:
    case MADV_RANDOM:
    case MADV_SEQUENTIAL:
    case MADV_WILLNEED:
      break;  // hints; pages come on demand anyway
    case MADV_DONTNEED:
    case MADV_FREE:
      for (auto it = first_ending_after_locked(addr); it != entries_.end() && it->start < end; ++it) {
        if (it->locked) return err(EINVAL);
        if (advice == MADV_FREE && (it->shared || it->object)) return err(EINVAL);
      }
      for (auto it = first_ending_after_locked(addr); it != entries_.end() && it->start < end; ++it) {
        // Private pages go: the next read sees the object's page or zeros.
        // Shared mappings keep their data (their pages are the object's).
        release_entry_pages_locked(*it, std::max(it->start, addr), std::min(it->end, end));
      }
      break;
    case MADV_WIPEONFORK:
      for (auto it = first_ending_after_locked(addr); it != entries_.end() && it->start < end; ++it)
        if (it->shared || it->object) return err(EINVAL);
      [[fallthrough]];
    case MADV_DONTFORK:
    case MADV_DOFORK:
    case MADV_KEEPONFORK:
      TRY(clip_locked(addr, len));
      for (auto it = first_ending_after_locked(addr); it != entries_.end() && it->start < end; ++it) {
        if (advice == MADV_DONTFORK)
          it->inherit = Inherit::kNone;
        else if (advice == MADV_WIPEONFORK)
          it->inherit = Inherit::kZero;
        else if (advice == MADV_DOFORK ? it->inherit == Inherit::kNone : it->inherit == Inherit::kZero)
          it->inherit = default_inherit(*it);
      }
      merge_range_locked(addr, end);
      break;
  }
  if (holes) return err(ENOMEM);
  return {};
}

Result<void> Vmspace::inherit(uint64_t addr, uint64_t len, Inherit how) {
  if (how != Inherit::kShare && how != Inherit::kCopy && how != Inherit::kNone && how != Inherit::kZero)
    return err(EINVAL);
  Locker<RwLock> g(map_lock_);
  len = TRY(check_mapped_locked(addr, len));
  if (len == 0) return {};
  const uint64_t end = addr + len;
  if (how == Inherit::kZero)
    for (auto it = first_ending_after_locked(addr); it != entries_.end() && it->start < end; ++it)
      if (it->shared) return err(EINVAL);
  TRY(clip_locked(addr, len));
  for (auto it = first_ending_after_locked(addr); it != entries_.end() && it->start < end; ++it) it->inherit = how;
  merge_range_locked(addr, end);
  return {};
}

Result<void> Vmspace::mincore(uint64_t addr, uint64_t len, unsigned char* vec) {
  SharedLocker g(map_lock_);
  len = TRY(check_mapped_locked(addr, len));
  const uint64_t end = addr + len;
  size_t i = 0;
  for (auto it = first_ending_after_locked(addr); it != entries_.end() && it->start < end; ++it) {
    MapEntry& e = *it;
    for (uint64_t a = std::max(e.start, addr); a < std::min(e.end, end); a += kPageSize, i++) {
      bool resident = false;
      if (e.layer) {
        SharedLocker lg(e.layer->lock());
        resident = e.layer->lookup_locked((e.layer_offset + (a - e.start)) >> kPageShift) != nullptr;
      }
      if (!resident && e.object) {
        SharedLocker og(e.object->lock());
        resident = e.object->lookup_locked((e.object_offset + (a - e.start)) >> kPageShift) != nullptr;
      }
      vec[i] = resident ? 1 : 0;
    }
  }
  return {};
}

Result<void> Vmspace::mlock(uint64_t addr, uint64_t len) {
  // Linux rounds the start down instead of refusing it.
  len += addr & kPageMask;
  addr = page_trunc(addr);
  Locker<RwLock> g(map_lock_);
  len = TRY(check_mapped_locked(addr, len));
  if (len == 0) return {};
  const uint64_t end = addr + len;
  uint64_t more = 0;
  for (auto it = first_ending_after_locked(addr); it != entries_.end() && it->start < end; ++it)
    if (!it->locked) more += std::min(it->end, end) - std::max(it->start, addr);
  if (lock_limit_ != 0 && locked_ + more > lock_limit_) return err(ENOMEM);
  TRY(clip_locked(addr, len));
  for (auto it = first_ending_after_locked(addr); it != entries_.end() && it->start < end; ++it) {
    if (!it->locked) {
      it->locked = true;
      locked_ += it->size();
    }
    TRY(populate_locked(*it, it->start, it->end));
  }
  merge_range_locked(addr, end);
  return {};
}

Result<void> Vmspace::munlock(uint64_t addr, uint64_t len) {
  len += addr & kPageMask;
  addr = page_trunc(addr);
  Locker<RwLock> g(map_lock_);
  len = TRY(check_mapped_locked(addr, len));
  if (len == 0) return {};
  const uint64_t end = addr + len;
  TRY(clip_locked(addr, len));
  for (auto it = first_ending_after_locked(addr); it != entries_.end() && it->start < end; ++it) {
    if (it->locked) {
      it->locked = false;
      locked_ -= it->size();
    }
  }
  merge_range_locked(addr, end);
  return {};
}

Result<void> Vmspace::msync(uint64_t addr, uint64_t len, int flags) {
  if ((flags & ~(MS_ASYNC | MS_SYNC | MS_INVALIDATE)) != 0) return err(EINVAL);
  if ((flags & MS_ASYNC) && (flags & MS_SYNC)) return err(EINVAL);
  if (!page_aligned(addr)) return err(EINVAL);
  if (len > max_) return err(ENOMEM);
  len = page_round(len);
  if (len == 0) return {};
  if (addr < min_ || addr > max_ - len) return err(ENOMEM);
  const uint64_t end = addr + len;
  SharedLocker g(map_lock_);
  bool holes = !range_mapped_locked(addr, len);
  for (auto it = first_ending_after_locked(addr); it != entries_.end() && it->start < end; ++it) {
    MapEntry& e = *it;
    if ((flags & MS_INVALIDATE) && e.locked) return err(EBUSY);
    // Anonymous memory has nowhere to go; a shared object's pager hears it.
    if (e.shared && e.object && !e.object->anonymous()) {
      uint64_t from = std::max(e.start, addr);
      uint64_t to = std::min(e.end, end);
      TRY(e.object->sync(e.object_offset + (from - e.start), to - from, flags));
    }
  }
  if (holes) return err(ENOMEM);
  return {};
}

}  // namespace rump::vm
