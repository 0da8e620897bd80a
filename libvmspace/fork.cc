// fork.cc: the copy-on-write image of a Vmspace for a child process.
//
// No page is copied here. For each entry the child gets, by its inheritance:
//   copy  - private: a new layer sharing the parent layer's frames
//           (Page::share), so both sides copy a frame on their next write to
//           it; shared: the same object (shared mappings stay shared);
//   share - the same object, and for a private mapping the same layer too
//           (marked layer_spans_spaces so neither side drops the other's
//           pages);
//   zero  - a fresh empty layer over the same object;
//   none  - nothing.
// The cost is one entry per entry and one table slot and share count per
// resident page. mlock is not inherited (as on Linux).
//
// Locking: the parent's map lock is held exclusive while frames are shared,
// so none of the parent's copies runs while share counts change under it.
// The child's entries are staged in a local map and installed under the
// child's map lock afterwards: the two map locks share a rank and are never
// held together.
#include <cerrno>

#include "absl/cleanup/cleanup.h"
#include "vmspace.h"

namespace rump::vm {

Result<RefPtr<Vmspace>> Vmspace::fork() {
  VmspaceOptions options{min_, max_, size_limit_, lock_limit_};
  RefPtr<Vmspace> child = TRY(create(*kmem_, options));
  Map staged;
  absl::Cleanup discard = [&staged] { staged.clear_and_dispose(MapEntry::Disposer()); };
  uint64_t mapped = 0;
  {
    Locker<RwLock> g(map_lock_);
    for (MapEntry& e : entries_) {
      if (e.inherit == Inherit::kNone) continue;
      auto* c = new (*kmem_) MapEntry();
      if (c == nullptr) return err(ENOMEM);
      staged.insert_before(staged.end(), *c);
      c->start = e.start;
      c->end = e.end;
      c->prot = e.prot;
      c->max_prot = e.max_prot;
      c->shared = e.shared;
      c->inherit = e.inherit;
      c->set_object(e.object);
      c->object_offset = e.object_offset;
      c->count_writable_like(e);
      mapped += e.size();
      if (!e.layer) continue;
      switch (e.inherit) {
        case Inherit::kShare:
          // One layer for both spaces: the parent's entry must be its only
          // holder first (split halves hold it too), unless it already spans
          // spaces from an earlier fork.
          if (!e.layer_spans_spaces) TRY(own_layer_locked(e));
          e.layer_spans_spaces = true;
          c->layer = e.layer;
          c->layer_offset = e.layer_offset;
          c->layer_spans_spaces = true;
          break;
        case Inherit::kCopy: {
          c->layer = TRY(e.layer->clone_range(e.layer_offset >> kPageShift, e.size() >> kPageShift,
                                              kLayerBase >> kPageShift));
          c->layer_offset = kLayerBase;
          break;
        }
        case Inherit::kZero:
        case Inherit::kNone:
          c->layer = TRY(VmObject::create_anonymous(*kmem_));
          c->layer_offset = kLayerBase;
          break;
      }
    }
  }
  std::move(discard).Cancel();
  Locker<RwLock> g(child->map_lock_);
  child->entries_.swap(staged);
  child->mapped_ = mapped;
  return child;
}

}  // namespace rump::vm
