// remap.cc: mremap(2): shrinking, growing in place and moving a mapping.
//
// The old range must lie inside one mapping (EFAULT otherwise, as Linux).
// Growing needs the entry's layer to itself (own_layer_locked): the new
// offsets must be free. Moving re-keys the entry in the map; its pages stay
// where they are (layers are indexed by offset, not address), so a move
// costs O(1) plus clipping.
#include <sys/mman.h>

#include <cerrno>

#include "vmspace.h"

namespace rump::vm {

Result<uint64_t> Vmspace::mremap(uint64_t old_addr, uint64_t old_len, uint64_t new_len, int flags,
                                 uint64_t new_addr) {
  if ((flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED)) != 0) return err(EINVAL);
  const bool fixed = (flags & MREMAP_FIXED) != 0;
  const bool may_move = (flags & MREMAP_MAYMOVE) != 0;
  if (fixed && !may_move) return err(EINVAL);
  if (!page_aligned(old_addr)) return err(EINVAL);
  if (old_len > max_ || new_len > max_) return err(EINVAL);
  old_len = page_round(old_len);
  new_len = page_round(new_len);
  // old_len 0 (duplicating a shared mapping) is not supported.
  if (new_len == 0 || old_len == 0) return err(EINVAL);
  if (fixed) {
    if (!page_aligned(new_addr) || new_addr < min_ || new_addr > max_ - new_len) return err(EINVAL);
    if (new_addr < old_addr + old_len && old_addr < new_addr + new_len) return err(EINVAL);
  }
  Locker<RwLock> g(map_lock_);
  auto it = find_locked(old_addr);
  if (it == entries_.end() || old_len > it->end - old_addr) return err(EFAULT);

  if (!fixed && new_len <= old_len) {
    if (new_len < old_len) {
      TRY(clip_locked(old_addr + new_len, old_len - new_len));
      remove_range_locked(old_addr + new_len, old_len - new_len);
    }
    return old_addr;
  }

  const uint64_t grow = new_len > old_len ? new_len - old_len : 0;
  if (!fixed) {
    // Grow in place if the old range ends its entry and free space follows.
    uint64_t old_end = old_addr + old_len;
    if (old_end == it->end && old_addr <= max_ - new_len && range_free_locked(old_end, grow)) {
      if (size_limit_ != 0 && mapped_ + grow > size_limit_) return err(ENOMEM);
      TRY(clip_locked(old_addr, old_len));
      MapEntry& e = *find_locked(old_addr);
      TRY(own_layer_locked(e));
      e.end = old_addr + new_len;
      mapped_ += grow;
      if (e.locked) {
        locked_ += grow;
        (void)populate_locked(e, old_end, e.end);
      }
      merge_range_locked(old_addr, e.end);
      return old_addr;
    }
    if (!may_move) return err(ENOMEM);
  }

  uint64_t replaced = 0;
  if (fixed) {
    for (auto o = first_ending_after_locked(new_addr); o != entries_.end() && o->start < new_addr + new_len; ++o)
      replaced += std::min(o->end, new_addr + new_len) - std::max(o->start, new_addr);
  } else {
    new_addr = TRY(find_space_locked(0, new_len));
  }
  if (size_limit_ != 0 && mapped_ + grow - replaced > size_limit_) return err(ENOMEM);
  if (new_len < old_len) {
    TRY(clip_locked(old_addr + new_len, old_len - new_len));
    remove_range_locked(old_addr + new_len, old_len - new_len);
    old_len = new_len;
  }
  TRY(clip_locked(old_addr, old_len));
  if (replaced != 0) {
    TRY(clip_locked(new_addr, new_len));
    remove_range_locked(new_addr, new_len);
  }
  MapEntry& e = *find_locked(old_addr);
  if (grow != 0) TRY(own_layer_locked(e));
  entries_.erase(entries_.iterator_to(e));
  e.start = new_addr;
  e.end = new_addr + new_len;
  entries_.insert_unique(e);
  mapped_ += grow;
  if (e.locked) {
    locked_ += grow;
    (void)populate_locked(e, e.end - grow, e.end);
  }
  merge_range_locked(new_addr, new_addr + new_len);
  return new_addr;
}

}  // namespace rump::vm
