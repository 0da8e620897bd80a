// usage.cc: what the pages of each mapping are, for /proc/<pid>/smaps
// (Vmspace::for_each_entry_usage; the rules are in vmspace.h).
//
// The walk holds the map lock shared and takes one object lock at a time
// (libvmspace's rule): a mapping is looked at 64 pages at a time, first in
// its layer (which pages are its private copies), then in its object (the
// pages a private copy does not hide). The object's lock is taken
// exclusive, as its pager's dirty-page test wants.
#include <algorithm>

#include "vmspace.h"

namespace rump::vm {

namespace {

// An entry of this space mapping the same object, as a range of the
// object's page indices.
struct Cover {
  uint64_t first, count;
};
constexpr int kMaxCovers = 8;

void account(Vmspace::EntryUsage& u, bool anon, bool shmem, bool dirty, bool locked, uint64_t mappers) {
  u.rss += kPageSize;
  uint64_t pss = (kPageSize << Vmspace::kPssShift) / (mappers ? mappers : 1);
  u.pss += pss;
  if (dirty) u.pss_dirty += pss;
  if (anon) {
    u.pss_anon += pss;
    u.anonymous += kPageSize;
  } else if (shmem) {
    u.pss_shmem += pss;
  } else {
    u.pss_file += pss;
  }
  if (locked) u.pss_locked += pss;
  if (mappers > 1) (dirty ? u.shared_dirty : u.shared_clean) += kPageSize;
  else (dirty ? u.private_dirty : u.private_clean) += kPageSize;
}

}  // namespace

void Vmspace::for_each_entry_usage(absl::FunctionRef<void(const EntryInfo&, const EntryUsage&)> fn) {
  SharedLocker g(map_lock_);
  for (MapEntry& e : entries_) {
    EntryUsage u;
    const uint64_t npages = e.size() >> kPageShift;
    const uint64_t lfirst = e.layer_offset >> kPageShift, ofirst = e.object_offset >> kPageShift;
    VmObject* layer = e.layer.get();
    VmObject* object = e.object.get();
    if (layer && layer->resident_pages() == 0) layer = nullptr;
    if (object && object->resident_pages() == 0) object = nullptr;
    // This space's other entries of the object: mappers of the pages they
    // cover only.
    Cover covers[kMaxCovers];
    int ncovers = 0, mine = 0;
    if (object)
      for (MapEntry& o : entries_) {
        if (o.object.get() != object) continue;
        mine++;
        if (ncovers < kMaxCovers) covers[ncovers++] = {o.object_offset >> kPageShift, o.size() >> kPageShift};
      }
    const uint64_t others = object ? static_cast<uint64_t>(std::max(object->map_entries() - mine, 0)) : 0;
    for (uint64_t c = 0; c < npages && (layer || object); c += 64) {
      const uint64_t n = std::min<uint64_t>(64, npages - c);
      uint64_t copied = 0;  // bit i: page c + i is a private copy
      if (layer) {
        SharedLocker lg(layer->lock());
        for (uint64_t i = 0; i < n; i++) {
          Page* p = layer->lookup_locked(lfirst + c + i);
          if (!p) continue;
          copied |= uint64_t{1} << i;
          account(u, true, false, true, e.locked, p->shares());
        }
      }
      if (object && copied != (n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1)) {
        Locker<RwLock> og(object->lock());
        for (uint64_t i = 0; i < n; i++) {
          if (copied >> i & 1) continue;
          uint64_t idx = ofirst + c + i;
          if (!object->lookup_locked(idx)) continue;
          uint64_t mappers = others;
          if (mine > kMaxCovers) {
            mappers += static_cast<uint64_t>(mine);
          } else {
            for (int k = 0; k < ncovers; k++)
              if (idx >= covers[k].first && idx - covers[k].first < covers[k].count) mappers++;
          }
          bool dirty = !object->page_reclaimable_locked(idx);
          account(u, false, object->anonymous(), dirty, e.locked, mappers);
        }
      }
    }
    fn(EntryInfo{e.start, e.end, e.prot, e.max_prot, e.shared, e.locked, e.inherit, static_cast<bool>(e.object),
                 e.object_offset, e.object.get()},
       u);
  }
}

}  // namespace rump::vm
