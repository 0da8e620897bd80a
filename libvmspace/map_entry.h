// map_entry.h: one mapping of a Vmspace: an address range, its protection,
// fork inheritance, and what backs it.
//
// What backs an entry:
//   * object: the mapped VmObject at object_offset (a caller's object, or an
//     anonymous object for MAP_SHARED|MAP_ANONYMOUS); null for private
//     anonymous memory, which reads as zero.
//   * layer (private mappings only): an anonymous VmObject holding the pages
//     this mapping has written, at layer_offset. Reads look in the layer
//     first, then in object; writes go to the layer (copying the object's
//     page in first). Shared mappings have no layer and write into object.
//
// Invariant of layers: the pages of a layer lie inside the ranges of the
// entries that refer to it, and entries of one space that share a layer (the
// halves of a split) use disjoint offsets. So unmapping a range may drop the
// layer's pages of that range, and an entry whose layer it alone holds may
// grow into free offsets. The exception is a layer handed to a child with
// inherit share: then layer_spans_spaces is set and pages are dropped only
// by the last holder.
//
// Fresh layers start at kLayerBase so that a neighbour can be merged in below
// as well as above.
//
// Locking: every field is guarded by the map lock of the Vmspace that holds
// the entry (not expressible per field: the lock is the owner's).
#pragma once

#include <boost/intrusive/set.hpp>
#include <cstdint>

#include "base/kmem.h"
#include "base/ref.h"
#include "vm_object.h"

namespace rump::vm {

namespace bi = boost::intrusive;

// What a child gets of an entry at fork (minherit(2), NetBSD's values).
enum class Inherit : int {
  kShare = 0,  // the same memory, writes visible both ways
  kCopy = 1,   // a copy-on-write image (default for private mappings)
  kNone = 2,   // nothing: the range is unmapped in the child
  kZero = 3,   // fresh zero-filled memory (MADV_WIPEONFORK; private only)
};

inline constexpr uint64_t kLayerBase = uint64_t{1} << 50;

struct MapEntry : KObject {
  uint64_t start = 0;
  uint64_t end = 0;
  int prot = 0;
  int max_prot = 0;
  bool shared = false;               // MAP_SHARED
  bool locked = false;               // mlock
  bool layer_spans_spaces = false;   // see the invariant above
  Inherit inherit = Inherit::kCopy;
  RefPtr<VmObject> object;
  uint64_t object_offset = 0;
  RefPtr<VmObject> layer;
  uint64_t layer_offset = 0;
  // A shared mapping that may be made writable holds one of its object's
  // writable-map counts (VmObject::add_writable_map) while it exists; the
  // halves of a split and a child's copy each hold their own.
  bool counts_writable = false;

  MapEntry() = default;
  MapEntry(const MapEntry&) = delete;
  MapEntry& operator=(const MapEntry&) = delete;
  ~MapEntry() {
    if (counts_writable) object->drop_writable_map();
    if (object) object->drop_map_entry();
  }
  // Maps o (each entry mapping an object is counted by it, for /proc's
  // sharing figures: VmObject::map_entries). Once, on a fresh entry.
  void set_object(RefPtr<VmObject> o) {
    object = std::move(o);
    if (object) object->add_map_entry();
  }
  // Takes a count for a copy of an entry that holds one (it cannot be
  // denied while that one is held).
  void count_writable_like(const MapEntry& from) {
    if (!from.counts_writable) return;
    (void)object->add_writable_map();
    counts_writable = true;
  }

  bi::set_member_hook<bi::link_mode<bi::safe_link>> map_hook;

  uint64_t size() const { return end - start; }
  bool contains(uint64_t a) const { return a >= start && a < end; }

  struct StartKey {
    using type = uint64_t;
    uint64_t operator()(const MapEntry& e) const { return e.start; }
  };
  // A Vmspace's entries, ordered by start address. The set does not own its
  // elements: tear down with clear_and_dispose.
  using Map = bi::set<MapEntry, bi::member_hook<MapEntry, bi::set_member_hook<bi::link_mode<bi::safe_link>>,
                                                &MapEntry::map_hook>,
                      bi::key_of_value<StartKey>, bi::constant_time_size<false>>;

  struct Disposer {
    void operator()(MapEntry* e) const { delete e; }
  };
};

}  // namespace rump::vm
