// vmspace.cc: creating and tearing down a Vmspace, and the map itself:
// lookup, placement, splitting and merging entries, mmap/munmap/mprotect.
#include "vmspace.h"

#include <cerrno>
#include <iterator>

namespace rump::vm {

Vmspace::Vmspace(Kmem& kmem, const VmspaceOptions& o)
    : kmem_(&kmem), min_(o.min), max_(o.max), size_limit_(o.size_limit), lock_limit_(o.lock_limit) {}

Result<RefPtr<Vmspace>> Vmspace::create(Kmem& kmem, const VmspaceOptions& options) {
  if (options.min == 0 || !page_aligned(options.min) || !page_aligned(options.max) || options.max <= options.min)
    return err(EINVAL);
  auto* vs = new (kmem) Vmspace(kmem, options);
  if (vs == nullptr) return err(ENOMEM);
  return RefPtr<Vmspace>(kAdopt, vs);
}

Vmspace::~Vmspace() { clear(); }

void Vmspace::clear() {
  Locker<RwLock> g(map_lock_);
  entries_.clear_and_dispose(MapEntry::Disposer());
  mapped_ = 0;
  locked_ = 0;
}

uint64_t Vmspace::mapped_bytes() {
  SharedLocker g(map_lock_);
  return mapped_;
}

uint64_t Vmspace::locked_bytes() {
  SharedLocker g(map_lock_);
  return locked_;
}

size_t Vmspace::entry_count() {
  SharedLocker g(map_lock_);
  size_t n = 0;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) n++;
  return n;
}

size_t Vmspace::resident_pages() {
  SharedLocker g(map_lock_);
  // Count each object once: split entries share their layer.
  size_t n = 0;
  const VmObject* last_layer = nullptr;
  const VmObject* last_object = nullptr;
  for (MapEntry& e : entries_) {
    if (e.layer && e.layer.get() != last_layer) n += e.layer->resident_pages();
    if (e.object && e.object.get() != last_object) n += e.object->resident_pages();
    last_layer = e.layer.get();
    last_object = e.object.get();
  }
  return n;
}

// ---- lookup ----

Vmspace::Iter Vmspace::find_locked(uint64_t addr) {
  auto it = entries_.upper_bound(addr);
  if (it == entries_.begin()) return entries_.end();
  --it;
  return it->contains(addr) ? it : entries_.end();
}

Vmspace::Iter Vmspace::first_ending_after_locked(uint64_t addr) {
  auto it = entries_.upper_bound(addr);
  if (it != entries_.begin()) {
    auto prev = std::prev(it);
    if (prev->end > addr) return prev;
  }
  return it;
}

bool Vmspace::range_free_locked(uint64_t addr, uint64_t len) {
  auto it = first_ending_after_locked(addr);
  return it == entries_.end() || it->start >= addr + len;
}

bool Vmspace::range_mapped_locked(uint64_t addr, uint64_t len) {
  uint64_t cur = addr;
  for (auto it = find_locked(addr); it != entries_.end(); ++it) {
    if (it->start > cur) return false;
    cur = it->end;
    if (cur >= addr + len) return true;
  }
  return false;
}

Result<uint64_t> Vmspace::check_mapped_locked(uint64_t addr, uint64_t len) {
  if (!page_aligned(addr)) return err(EINVAL);
  if (len > max_) return err(ENOMEM);
  len = page_round(len);
  if (addr < min_ || addr > max_ - len) return err(ENOMEM);
  if (len != 0 && !range_mapped_locked(addr, len)) return err(ENOMEM);
  return len;
}

Result<uint64_t> Vmspace::find_space_locked(uint64_t hint, uint64_t len) {
  if (len > max_ - min_) return err(ENOMEM);
  if (hint >= min_ && hint <= max_ - len && range_free_locked(hint, len)) return hint;
  // Top-down: the highest gap below max that fits.
  uint64_t gap_end = max_;
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (gap_end - it->end >= len) return gap_end - len;
    gap_end = it->start;
  }
  if (gap_end - min_ >= len) return gap_end - len;
  return err(ENOMEM);
}

// ---- splitting and merging ----

Result<void> Vmspace::split_at_locked(uint64_t addr) {
  auto it = find_locked(addr);
  if (it == entries_.end() || it->start == addr) return {};
  MapEntry& e = *it;
  auto* tail = new (*kmem_) MapEntry();
  if (tail == nullptr) return err(ENOMEM);
  uint64_t delta = addr - e.start;
  tail->start = addr;
  tail->end = e.end;
  tail->prot = e.prot;
  tail->max_prot = e.max_prot;
  tail->shared = e.shared;
  tail->locked = e.locked;
  tail->layer_spans_spaces = e.layer_spans_spaces;
  tail->inherit = e.inherit;
  tail->set_object(e.object);
  tail->object_offset = e.object_offset + delta;
  tail->layer = e.layer;
  tail->layer_offset = e.layer_offset + delta;
  tail->count_writable_like(e);
  e.end = addr;
  entries_.insert_before(std::next(it), *tail);
  return {};
}

Result<void> Vmspace::clip_locked(uint64_t addr, uint64_t len) {
  TRY(split_at_locked(addr));
  TRY(split_at_locked(addr + len));
  return {};
}

bool Vmspace::try_merge_locked(MapEntry& prev, MapEntry& next) {
  if (prev.end != next.start || prev.prot != next.prot || prev.max_prot != next.max_prot ||
      prev.shared != next.shared || prev.locked != next.locked || prev.inherit != next.inherit ||
      prev.layer_spans_spaces != next.layer_spans_spaces || prev.object.get() != next.object.get())
    return false;
  if (prev.object && next.object_offset != prev.object_offset + prev.size()) return false;
  if (prev.layer.get() == next.layer.get()) {
    if (prev.layer && next.layer_offset != prev.layer_offset + prev.size()) return false;
  } else {
    // Different layers: merge only when one is empty and the other is held by
    // its entry alone, so its offsets next to the entry are free (map_entry.h).
    if (!prev.layer || !next.layer || prev.layer_spans_spaces) return false;
    if (prev.layer->ref_count() == 1 && next.layer->resident_pages() == 0) {
      // prev's layer extends upwards over next.
    } else if (next.layer->ref_count() == 1 && prev.layer->resident_pages() == 0 &&
               next.layer_offset >= prev.size()) {
      prev.layer = next.layer;
      prev.layer_offset = next.layer_offset - prev.size();
    } else {
      return false;
    }
  }
  prev.end = next.end;
  entries_.erase_and_dispose(entries_.iterator_to(next), MapEntry::Disposer());
  return true;
}

void Vmspace::merge_range_locked(uint64_t addr, uint64_t end) {
  auto it = first_ending_after_locked(addr > min_ ? addr - 1 : addr);
  while (it != entries_.end() && it->start <= end) {
    auto next = std::next(it);
    if (next == entries_.end()) break;
    if (!try_merge_locked(*it, *next)) it = next;
  }
}

Result<void> Vmspace::own_layer_locked(MapEntry& e) {
  if (!e.layer || e.layer->ref_count() == 1) return {};
  uint64_t first = e.layer_offset >> kPageShift;
  uint64_t count = e.size() >> kPageShift;
  RefPtr<VmObject> fresh = TRY(e.layer->clone_range(first, count, kLayerBase >> kPageShift));
  release_entry_pages_locked(e, e.start, e.end);
  e.layer = fresh;
  e.layer_offset = kLayerBase;
  e.layer_spans_spaces = false;
  return {};
}

// ---- removal ----

void Vmspace::release_entry_pages_locked(MapEntry& e, uint64_t from, uint64_t to) {
  if (!e.layer || (e.layer_spans_spaces && e.layer->ref_count() != 1)) return;
  e.layer->drop_range((e.layer_offset + (from - e.start)) >> kPageShift, (to - from) >> kPageShift);
}

void Vmspace::remove_range_locked(uint64_t addr, uint64_t len) {
  auto it = first_ending_after_locked(addr);
  while (it != entries_.end() && it->start < addr + len) {
    MapEntry& e = *it;
    release_entry_pages_locked(e, e.start, e.end);
    mapped_ -= e.size();
    if (e.locked) locked_ -= e.size();
    it = entries_.erase_and_dispose(it, MapEntry::Disposer());
  }
}

// ---- mmap, munmap, mprotect ----

Result<uint64_t> Vmspace::map(uint64_t addr, uint64_t len, int prot, int flags, VmObject* object, uint64_t offset,
                              int max_prot) {
  constexpr int kKnownFlags = MAP_TYPE | MAP_FIXED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE |
                              MAP_POPULATE | MAP_LOCKED | MAP_STACK | MAP_DENYWRITE | MAP_EXECUTABLE |
                              MAP_NONBLOCK;
  int type = flags & MAP_TYPE;
  if (type != MAP_SHARED && type != MAP_PRIVATE && type != MAP_SHARED_VALIDATE) return err(EINVAL);
  if ((flags & ~kKnownFlags) != 0) {
    if (type == MAP_SHARED_VALIDATE) return err(EOPNOTSUPP);
    if (flags & MAP_GROWSDOWN) return err(EINVAL);  // not supported
  }
  bool shared = type != MAP_PRIVATE;
  bool anonymous = (flags & MAP_ANONYMOUS) != 0;
  if ((prot & ~kProtAll) != 0) return err(EINVAL);
  if (len == 0 || !page_aligned(offset)) return err(EINVAL);
  if (anonymous ? object != nullptr : object == nullptr) return err(anonymous ? EINVAL : EBADF);
  if (len > max_ - min_) return err(ENOMEM);
  len = page_round(len);
  if (!anonymous && offset + len < offset) return err(EOVERFLOW);
  max_prot &= kProtAll;
  if (shared && object != nullptr) max_prot &= object->max_shared_prot();
  if ((prot & ~max_prot) != 0) return err(EACCES);
  bool fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0;
  if (fixed) {
    if (!page_aligned(addr)) return err(EINVAL);
    if (addr < min_) return err(EPERM);
    if (addr > max_ - len) return err(ENOMEM);
  }

  // Everything the new entry needs is made before the map changes, so a
  // failure leaves the old mapping in place.
  auto* e = new (*kmem_) MapEntry();
  if (e == nullptr) return err(ENOMEM);
  MapEntry::Disposer dispose;
  if (anonymous && shared) {
    Result<RefPtr<VmObject>> o = VmObject::create_anonymous(*kmem_);
    if (!o.ok()) return dispose(e), err(ENOMEM);
    e->set_object(std::move(o).value());
  } else if (!anonymous) {
    e->set_object(RefPtr<VmObject>(object));
    e->object_offset = offset;
  }
  if (!shared) {
    Result<RefPtr<VmObject>> o = VmObject::create_anonymous(*kmem_);
    if (!o.ok()) return dispose(e), err(ENOMEM);
    e->layer = std::move(o).value();
    e->layer_offset = kLayerBase;
  }
  e->prot = prot;
  e->max_prot = max_prot;
  e->shared = shared;
  e->inherit = shared ? Inherit::kShare : Inherit::kCopy;
  // A shared mapping of a caller's object that may become writable counts
  // there (EPERM once the object is sealed against writes).
  if (shared && !anonymous && (max_prot & PROT_WRITE)) {
    if (!e->object->add_writable_map().ok()) return dispose(e), err(EPERM);
    e->counts_writable = true;
  }

  Locker<RwLock> g(map_lock_);
  uint64_t replaced = 0;
  if (fixed) {
    for (auto it = first_ending_after_locked(addr); it != entries_.end() && it->start < addr + len; ++it)
      replaced += std::min(it->end, addr + len) - std::max(it->start, addr);
    if (replaced != 0 && (flags & MAP_FIXED_NOREPLACE)) return dispose(e), err(EEXIST);
  } else {
    Result<uint64_t> where = find_space_locked(page_trunc(addr), len);
    if (!where.ok()) return dispose(e), err(where.error());
    addr = where.value();
  }
  if (size_limit_ != 0 && mapped_ - replaced + len > size_limit_) return dispose(e), err(ENOMEM);
  if (replaced != 0) {
    Result<void> r = clip_locked(addr, len);
    if (!r.ok()) return dispose(e), err(r.error());
    remove_range_locked(addr, len);
  }
  e->start = addr;
  e->end = addr + len;
  entries_.insert_unique(*e);
  mapped_ += len;
  if (flags & MAP_LOCKED) {
    e->locked = true;
    locked_ += len;
  }
  // MAP_POPULATE and MAP_LOCKED prefault; like Linux, a failure to populate
  // does not fail the mmap.
  if (flags & (MAP_POPULATE | MAP_LOCKED)) (void)populate_locked(*e, e->start, e->end);
  merge_range_locked(addr, addr + len);
  return addr;
}

Result<void> Vmspace::unmap(uint64_t addr, uint64_t len) {
  if (!page_aligned(addr) || len == 0 || len > max_) return err(EINVAL);
  len = page_round(len);
  if (addr > max_ - len) return err(EINVAL);
  Locker<RwLock> g(map_lock_);
  TRY(clip_locked(addr, len));
  remove_range_locked(addr, len);
  return {};
}

Result<void> Vmspace::protect(uint64_t addr, uint64_t len, int prot) {
  if ((prot & ~kProtAll) != 0) return err(EINVAL);
  Locker<RwLock> g(map_lock_);
  len = TRY(check_mapped_locked(addr, len));
  if (len == 0) return {};
  for (auto it = find_locked(addr); it != entries_.end() && it->start < addr + len; ++it)
    if ((prot & ~it->max_prot) != 0) return err(EACCES);
  TRY(clip_locked(addr, len));
  for (auto it = find_locked(addr); it != entries_.end() && it->start < addr + len; ++it) it->prot = prot;
  merge_range_locked(addr, addr + len);
  return {};
}

}  // namespace rump::vm
