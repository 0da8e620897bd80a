// The vm faction's per-process state: fork and exit hooks, the component.
#include "vm/vm_proc.h"

#include <rump/rumpuser.h>

#include <atomic>
#include <new>

#include "absl/cleanup/cleanup.h"
#include "kern/component.h"
#include "kern/file_map.h"
#include "kern/kernel.h"

namespace rump {

namespace {

Result<void> vm_fork(Proc& parent, Proc& child, uint32_t flags);
void vm_exit(Proc& p);
void vm_host_maps(Proc& p, absl::FunctionRef<void(const UserSpace::Mapping&)> fn);

ProcExtension g_ext{"vm", vm_fork, vm_exit, vm_host_maps};
const int g_slot = register_proc_extension(&g_ext);
const ProcSlot<VmProc> g_vm_proc{g_ext};

// The parent's table, copied entry by entry (Vmspace::fork: COW).
Result<void> copy_table(VmProc& from, VmProc& to) {
  MutexLocker g(from.lock_);
  if (!from.has_table_) return {};
  MutexLocker cg(to.lock_);
  to.has_table_ = true;
  // A copy that fails halfway is undone with the child (vm_exit).
  for (VmspaceSlot& s : from.table_) {
    VmUserSpace* c = TRY(s.space->fork());
    auto* slot = new (*to.kmem_) VmspaceSlot(s.id, c);
    if (slot == nullptr) {
      c->release();
      return err(ENOMEM);
    }
    to.table_.insert(*slot);
  }
  return {};
}

Result<void> vm_fork(Proc& parent, Proc& child, uint32_t flags) {
  Kernel& k = parent.kernel();
  // fork1 copied the parent's pointer without a reference: replace it.
  UserSpace* ps = parent.space_;
  child.space_ = nullptr;
  absl::Cleanup undo = [&] { vm_exit(child); };
  if (flags & RFVMSPACE) {
    child.space_ = TRY(VmUserSpace::create(k.kmem()));
  } else if (flags & RFMEM) {
    if (ps) {
      ps->hold();
      child.space_ = ps;
    }
  } else if (ps) {
    VmUserSpace* vs = as_vm_space(ps);
    if (!vs) return err(EOPNOTSUPP);  // a space this faction can't copy
    child.space_ = TRY(vs->fork());
  }
  if (VmProc* pv = vm_proc(parent)) {
    bool has_table;
    {
      MutexLocker g(pv->lock_);
      has_table = pv->has_table_;
    }
    if (has_table) {
      VmProc* cv = TRY(vm_proc_get(child));
      TRY(copy_table(*pv, *cv));
    }
  }
  std::move(undo).Cancel();
  return {};
}

void vm_exit(Proc& p) {
  {
    // No other LWP of p is in the kernel (exit1), so none is using an
    // override while we clear it.
    MutexLocker g(p.lock_);
    for (Lwp& l : p.lwps_) l.space_override_ = nullptr;
  }
  if (p.space_) {
    p.space_->release();
    p.space_ = nullptr;
  }
  VmProc* v = g_vm_proc.take(p);
  if (v) {
    v->teardown();
    delete v;
  }
}

// A host-space process's regions: file views (shared, the cache's object)
// and anonymous memory (private; a private file mapping is a copy made at
// mmap, so it shows as anonymous).
void vm_host_maps(Proc& p, absl::FunctionRef<void(const UserSpace::Mapping&)> fn) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  VmProc* v = g_vm_proc.get(p);  // p.lock_ is held
  if (v == nullptr) return;
  MutexLocker g(v->lock_);
  for (const HostRegion& r : v->regions_) {
    UserSpace::Mapping m{};
    m.start = r.start;
    m.end = r.start + r.len;
    m.prot = r.prot;
    m.max_prot = r.max_prot;
    m.object = m.shared = r.object.get() != nullptr;
    m.backing = r.object.get();
    m.offset = m.object ? r.view.first << vm::kPageShift : 0;
    m.heap = v->host_brk_base_ != 0 && r.start >= v->host_brk_base_ && r.start < v->host_brk_cur_;
    fn(m);
  }
}

// init and proc0 never exit1: their state goes at halt.
Result<void> vm_init(Kernel&) { return {}; }
void vm_fini(Kernel& k) {
  for (Proc* p : {k.procs().init(), k.procs().proc0()})
    if (p) vm_exit(*p);
}

Component g_component{"vm", ComponentType::kKern, vm_init, vm_fini};
RUMP_COMPONENT(g_component);

}  // namespace

VmProc::VmProc(Kmem& kmem) : kmem_(&kmem), table_(kmem) {}

// teardown() emptied both containers; the set's hooks must not outlive it.
VmProc::~VmProc() { regions_.clear_and_dispose(HostRegion::Disposer()); }

Result<void> VmProc::split_at_locked(uint64_t addr) {
  auto it = regions_.upper_bound(addr);
  if (it == regions_.begin()) return {};
  --it;
  uint64_t start = it->start, end = start + it->len;
  if (addr <= start || addr >= end) return {};
  auto* tail = new (*kmem_) HostRegion(addr, end - addr, it->prot);
  if (tail == nullptr) return err(ENOMEM);
  if (it->object) {
    tail->object = it->object;
    tail->max_prot = it->max_prot;
    // A count of the object's own: it has one already, so no seal can come
    // between.
    tail->counts_writable = it->counts_writable && it->object->add_writable_map().ok();
    Locker<RwLock> og(it->object->lock());
    it->object->host_view_split_locked(it->view, tail->view, (addr - start) >> vm::kPageShift);
  }
  it->len = addr - start;
  regions_.insert_before(std::next(it), *tail);
  return {};
}

void VmProc::unmap_region_locked(HostRegion& r) {
  if (r.object) {
    Locker<RwLock> og(r.object->lock());
    r.object->host_view_cut_locked(r.view, 0, true);
  }
  rumpuser_unmap(reinterpret_cast<void*>(r.start), r.len);
}

bool VmProc::covered_locked(uint64_t a, uint64_t b) {
  auto it = regions_.upper_bound(a);
  if (it == regions_.begin()) return false;
  --it;
  while (a < b) {
    if (it == regions_.end() || it->start > a) return false;
    uint64_t end = it->start + it->len;
    if (end <= a) return false;
    a = end;
    ++it;
  }
  return true;
}

void VmProc::teardown() {
  // The spaces are released without lock_ held: gather their slots first.
  VmspaceSlot* dead = nullptr;
  {
    MutexLocker g(lock_);
    regions_.clear_and_dispose([this](HostRegion* r) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      unmap_region_locked(*r);
      delete r;
    });
    host_bytes_ = 0;
    if (host_brk_base_) rumpuser_unmap(reinterpret_cast<void*>(host_brk_base_), kHostBrkReserve);
    host_brk_base_ = host_brk_cur_ = 0;
    table_.clear_and_dispose([&dead](VmspaceSlot* s) {
      s->next_dead = dead;
      dead = s;
    });
  }
  while (dead != nullptr) {
    VmspaceSlot* s = dead;
    dead = s->next_dead;
    s->space->release();
    delete s;
  }
}

VmProc* vm_proc(Proc& p) {
  MutexLocker g(p.lock_);
  return g_vm_proc.get(p);
}

Result<VmProc*> vm_proc_get(Proc& p) {
  MutexLocker g(p.lock_);
  if (VmProc* v = g_vm_proc.get(p)) return v;
  auto* v = new (p.kernel().kmem()) VmProc(p.kernel().kmem());
  if (!v) return err(ENOMEM);
  g_vm_proc.set(p, v);
  return v;
}

Result<RefPtr<vm::VmObject>> mmap_file_object(Lwp& l, int fd, int prot, int flags, int* max_prot) {
  if (fd < 0) return err(EBADF);
  MmapFileHook hook = mmap_file_hook();
  if (!hook) return err(ENODEV);
  return hook(l, fd, prot, flags, max_prot);
}

}  // namespace rump
