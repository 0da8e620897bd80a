// vm_proc.h: a process's memory state beyond its address space.
//
// The vm faction keeps, per process (ProcExtension slot, made on first
// use):
//   * host-space mappings: for a process living in the host's address
//     space, the anonymous memory mmap gave it (from rumpuser_anonmmap,
//     never the host's mmap directly), as an address-ordered map of regions
//     with their protection, so munmap releases exactly what was handed out
//     and exit releases all of it. Calls on ranges we did not hand out never
//     touch host memory: munmap ignores them (as Linux ignores unmapped
//     parts), mprotect/madvise/mincore/msync/mlock/munlock answer ENOMEM.
//   * the host-space program break: a region reserved from
//     rumpuser_anonmmap at the first brk call (kHostBrkReserve bytes).
//   * the table of DragonFly vmspaces (vmspace_create ...): id -> space.
//
// The process's own isolated space is Proc::space_ (a VmUserSpace); the
// fork hook shares it (RFMEM), replaces it with a fresh one (RFVMSPACE) or
// COW-copies it (neither; a host-space parent's child stays in host space
// and starts with no host mappings: they remain the parent's). The table is
// COW-copied into every child. The exit hook returns every LWP to its own
// space and releases everything.
//
// Both are intrusive (a region or a table slot is a node of its own, made
// before anything changes), so no insert can fail halfway through a call.
//
// Locking: lock_ guards the regions, the break and the table. Order:
// lock_ before the process's Proc::lock_ (vmspace_destroy looks for LWPs
// running in a space with both held; vmspace_ctl RUN sets an LWP's override
// under lock_, so the check can't race it). Table entries are taken out
// with a reference so that Vmspace work happens without lock_.
#pragma once

#include <sys/mman.h>

#include <boost/intrusive/set.hpp>
#include <cstdint>

#include "base/intrusive_hash.h"
#include "base/kmem.h"
#include "base/result.h"
#include "kern/proc.h"
#include "sync/mutex.h"
#include "vm/user_space.h"
#include "vm_object.h"

namespace rump {

inline constexpr uint64_t kHostBrkReserve = uint64_t{64} << 20;

// A piece of host memory mmap handed out: [start, start+len), page aligned.
// Anonymous memory, or (object set) a MAP_SHARED file mapping: a view of
// the file cache's frames (vm::HostView, registered with the object; its
// pages pinned there), up to the end of the file at mmap time, a SIGBUS
// mapping after that.
struct HostRegion : KObject {
  HostRegion(uint64_t s, uint64_t l, int p) : start(s), len(l), prot(p) {}
  // The view is unregistered before (VmProc::unmap_region_locked).
  ~HostRegion() {
    if (object && counts_writable) object->drop_writable_map();
  }
  uint64_t start;
  uint64_t len;
  int prot;
  RefPtr<vm::VmObject> object;
  vm::HostView view;
  int max_prot = PROT_READ | PROT_WRITE | PROT_EXEC;
  bool counts_writable = false;  // holds a VmObject::add_writable_map count
  bi::set_member_hook<bi::link_mode<bi::safe_link>> hook;

  struct StartKey {
    using type = uint64_t;
    uint64_t operator()(const HostRegion& r) const { return r.start; }
  };
  // A process's regions by start address; the set does not own them.
  using Set = bi::set<HostRegion, bi::member_hook<HostRegion, bi::set_member_hook<bi::link_mode<bi::safe_link>>,
                                                  &HostRegion::hook>,
                      bi::key_of_value<StartKey>, bi::constant_time_size<false>>;
  struct Disposer {
    void operator()(HostRegion* r) const { delete r; }
  };
};

// An entry of the vmspace table: id -> space, holding one reference.
struct VmspaceSlot : KObject {
  VmspaceSlot(uint64_t i, VmUserSpace* s) : id(i), space(s) {}
  uint64_t id;
  VmUserSpace* space;
  VmspaceSlot* next_dead = nullptr;  // teardown's list of slots to release
  bi::unordered_set_member_hook<> hook;

  struct IdOf {
    using type = uint64_t;
    uint64_t operator()(const VmspaceSlot& s) const { return s.id; }
  };
};

class VmProc : public KObject {
 public:
  explicit VmProc(Kmem& kmem);
  ~VmProc();

  Kmem* const kmem_;
  Mutex lock_{LockRank::kNone};

  // --- host-space mappings by start address. Regions never overlap.
  using RegionMap = HostRegion::Set;
  RegionMap regions_ ABSL_GUARDED_BY(lock_);
  // Links a region made by the caller (the set takes it over).
  void add_region_locked(HostRegion& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) { regions_.insert(r); }
  // Unlinks and frees a region (the host memory is the caller's business).
  RegionMap::iterator erase_region_locked(RegionMap::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    return regions_.erase_and_dispose(it, HostRegion::Disposer());
  }
  uint64_t host_bytes_ ABSL_GUARDED_BY(lock_) = 0;
  // Makes a region boundary at addr if a region spans it (ENOMEM).
  Result<void> split_at_locked(uint64_t addr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // True if [a, b) is covered by regions without holes.
  bool covered_locked(uint64_t a, uint64_t b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Gives a region's host memory back (a file view: its pages counted as
  // written if it could write, then unpinned); the node stays.
  void unmap_region_locked(HostRegion& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);

  // --- host-space break (0: not reserved yet)
  uint64_t host_brk_base_ ABSL_GUARDED_BY(lock_) = 0;
  uint64_t host_brk_cur_ ABSL_GUARDED_BY(lock_) = 0;

  // --- vmspace table. has_table_: vmspace_create was called once (other
  // vmspace_* calls are EINVAL before, as DragonFly).
  using Table = IntrusiveHash<VmspaceSlot, &VmspaceSlot::hook, VmspaceSlot::IdOf>;
  bool has_table_ ABSL_GUARDED_BY(lock_) = false;
  Table table_ ABSL_GUARDED_BY(lock_);

  // Unmaps and releases everything (exit, halt).
  void teardown();
};

// The vm state of p, or nullptr if it never needed one.
VmProc* vm_proc(Proc& p);
// The vm state of p, made on first use.
Result<VmProc*> vm_proc_get(Proc& p);

// The object behind a file mapping of fd, through the VFS faction's hook
// (kern/file_map.h; mmap and vmspace_mmap): EBADF for a negative fd,
// ENODEV without a hook.
Result<RefPtr<vm::VmObject>> mmap_file_object(Lwp& l, int fd, int prot, int flags, int* max_prot);

}  // namespace rump
