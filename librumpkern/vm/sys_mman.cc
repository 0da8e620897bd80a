// The memory system calls: mmap, munmap, mprotect, madvise, mincore, msync,
// mlock, munlock, mremap, brk.
//
// Each acts on the calling LWP's current user space (Lwp::user_space()):
//   * an isolated space (VmUserSpace): libvmspace does the work with
//     Linux's semantics; results leave through copyout.
//   * the host's space: anonymous memory from rumpuser_anonmmap, tracked in
//     the process's VmProc (see vm_proc.h for what "ours" means). Host-space
//     differences from Linux, all documented here:
//       - MAP_SHARED anonymous memory is private host memory (a host-space
//         process has no children with copies to share it with).
//       - MAP_FIXED may replace only memory we handed out; elsewhere it is
//         ENOMEM (we never clobber the host's own mappings);
//         MAP_FIXED_NOREPLACE works where the host has nothing mapped.
//       - mlock/munlock check the range and do nothing; mincore reports
//         every page resident; msync checks and does nothing (anonymous).
//       - madvise passes hints and MADV_DONTNEED/FREE/REMOVE to the host;
//         fork-related advice is accepted and ignored (the host process
//         does not fork); other advice is EINVAL.
//       - mremap: in-place growth, shrink and MREMAP_MAYMOVE; the old
//         range must lie in one region as handed out (regions are not
//         merged as Linux merges VMAs); MREMAP_FIXED/DONTUNMAP are EINVAL.
//       - brk works in a kHostBrkReserve-byte region reserved at the first
//         call; the other calls do not treat that heap as "ours".
#include <rump/rumpuser.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/cleanup/cleanup.h"

#include "kern/copy.h"
#include "kern/kcov.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "vm/user_space.h"
#include "vm/vm_proc.h"

namespace rump {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kHostUserMax = uint64_t{1} << 47;
bool aligned(uint64_t a) { return (a & (kPage - 1)) == 0; }
uint64_t page_up(uint64_t a) { return (a + kPage - 1) & ~(kPage - 1); }

// The isolated space the LWP addresses, or nullptr for the host's.
// *foreign is set for a UserSpace this faction did not make.
VmUserSpace* current_space(Lwp& l, bool* foreign) {
  UserSpace* s = l.user_space();
  *foreign = false;
  if (!s) return nullptr;
  VmUserSpace* v = as_vm_space(s);
  if (!v) *foreign = true;
  return v;
}

#define VM_SPACE_OR_HOST(l, vs)                    \
  bool foreign_;                                   \
  VmUserSpace* vs = current_space(l, &foreign_);   \
  if (foreign_) return err(ENOSYS)

// [a, a+len) rounded to pages must stay below the host's user limit.
Result<uint64_t> host_range(uint64_t a, uint64_t len) {
  if (!aligned(a)) return err(EINVAL);
  if (len > kHostUserMax) return err(ENOMEM);
  uint64_t l = page_up(len);
  if (a > kHostUserMax - l) return err(ENOMEM);
  return l;
}

Result<long> host_mmap(Lwp& l, uint64_t addr, uint64_t len, int prot, int flags) {
  VmProc* v = TRY(vm_proc_get(l.proc()));
  void* p = nullptr;
  bool fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0;
  if (fixed && (!aligned(addr) || addr > kHostUserMax - len)) return err(fixed && !aligned(addr) ? EINVAL : ENOMEM);
  MutexLocker g(v->lock_);
  if ((flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE)) {
    // File views in the range go first: the new memory is mapped afresh
    // there.
    TRY(v->split_at_locked(addr));
    TRY(v->split_at_locked(addr + len));
    for (auto it = v->regions_.lower_bound(addr); it != v->regions_.end() && it->start < addr + len;) {
      if (!it->object) {
        ++it;
        continue;
      }
      v->unmap_region_locked(*it);
      v->host_bytes_ -= it->len;
      it = v->erase_region_locked(it);
    }
  }
  if ((flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE) && v->covered_locked(addr, addr + len)) {
    // Replacing memory we handed out: fresh zero pages with the new
    // protection, in place.
    TRY(v->split_at_locked(addr));
    TRY(v->split_at_locked(addr + len));
    TRY(from_errno(rumpuser_mprotect(reinterpret_cast<void*>(addr), len, PROT_READ | PROT_WRITE)));
    TRY(from_errno(rumpuser_madvise(reinterpret_cast<void*>(addr), len, MADV_DONTNEED)));
    TRY(from_errno(rumpuser_mprotect(reinterpret_cast<void*>(addr), len, prot)));
    for (auto it = v->regions_.find(addr); it != v->regions_.end() && it->start < addr + len; ++it) it->prot = prot;
    return static_cast<long>(addr);
  }
  // The region's node first: once the host memory exists nothing can fail
  // but the host's own checks below.
  auto* r = new (*v->kmem_) HostRegion(0, len, prot);
  if (r == nullptr) return err(ENOMEM);
  int e = rumpuser_anonmmap(reinterpret_cast<void*>(addr), len, 0, (prot & PROT_EXEC) != 0, &p);
  if (e) {
    delete r;
    return err(ENOMEM);
  }
  uint64_t got = reinterpret_cast<uint64_t>(p);
  absl::Cleanup undo = [&] {
    rumpuser_unmap(p, len);
    delete r;
  };
  if (fixed && got != addr) return err((flags & MAP_FIXED_NOREPLACE) ? EEXIST : ENOMEM);
  if (got >= kHostUserMax || got + len > kHostUserMax) return err(ENOMEM);
  if (prot != (PROT_READ | PROT_WRITE | (prot & PROT_EXEC))) {
    if (int pe = rumpuser_mprotect(p, len, prot)) return err(pe);
  }
  std::move(undo).Cancel();
  r->start = got;
  v->add_region_locked(*r);
  v->host_bytes_ += len;
  return static_cast<long>(got);
}

// A private host-space mapping of a file: fresh host memory holding a copy
// of the pages of [offset, offset+len) as they are now (pages past the end
// of the file stay zero). Unlike Linux, later changes of the file do not
// show in pages the process has not written.
Result<long> host_map_private_file(Lwp& l, uint64_t addr, uint64_t length, int prot, int flags, vm::VmObject& object,
                                   uint64_t offset) {
  if (length > kHostUserMax) return err(ENOMEM);
  uint64_t len = page_up(length);
  if (offset > ~uint64_t{0} - len) return err(EOVERFLOW);
  long got = TRY(host_mmap(l, addr, len, PROT_READ | PROT_WRITE, flags & ~MAP_POPULATE));
  auto* mem = reinterpret_cast<std::byte*>(got);
  for (uint64_t i = 0; i < len / kPage; i++) {
    Result<void> r = object.read_page((offset >> vm::kPageShift) + i, mem + i * kPage);
    if (r.ok()) continue;
    if (r.error() == kBusFault) break;  // past the end: zero, as host memory is
    // Undoing a mapping this call just made: the error reported is the
    // read's, whatever the unmap says.
    static_cast<void>(sys_munmap(l, UserPtr<void>{static_cast<uint64_t>(got)}, len));
    return err(r.error());
  }
  if (prot != (PROT_READ | PROT_WRITE)) {
    if (int e = rumpuser_mprotect(mem, len, prot)) {
      static_cast<void>(sys_munmap(l, UserPtr<void>{static_cast<uint64_t>(got)}, len));
      return err(e);
    }
    VmProc* v = vm_proc(l.proc());
    MutexLocker g(v->lock_);
    for (auto it = v->regions_.find(static_cast<uint64_t>(got)); it != v->regions_.end() && it->start < got + len; ++it)
      it->prot = prot;
  }
  return got;
}

// A shared host-space mapping of a file: every page up to the end of the
// file is filled now (as MAP_POPULATE; an I/O error fails the call) and
// pinned in the file's cache, and the cache's own frames are viewed at the
// returned address (rumpuser_shmalias), so that loads and stores are the
// cache's bytes, seen by read(2) and write(2) at once. Pages past the end
// of the file are a SIGBUS mapping until the file grows over them (then
// they are filled, pinned and viewed as the rest: VmObject::
// host_views_grow_locked). The host reports no stores: the pages of a
// writable mapping count as written at munmap, msync, exit, fsync and the
// cache's write-back. MAP_FIXED replaces what this process was handed out
// there (unmapped first).
Result<long> host_map_shared_file(Lwp& l, uint64_t addr, uint64_t length, int prot, int flags,
                                  RefPtr<vm::VmObject> object, uint64_t offset, int max_prot) {
  if (length > kHostUserMax) return err(ENOMEM);
  uint64_t len = page_up(length);
  if (offset > ~uint64_t{0} - len) return err(EOVERFLOW);
  bool fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0;
  if (fixed && (!aligned(addr) || addr > kHostUserMax - len)) return err(!aligned(addr) ? EINVAL : ENOMEM);
  VmProc* v = TRY(vm_proc_get(l.proc()));
  if ((flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE)) TRY(sys_munmap(l, UserPtr<void>{addr}, len));
  auto* r = new (*v->kmem_) HostRegion(0, len, prot);
  if (r == nullptr) return err(ENOMEM);
  absl::Cleanup free_r = [r] { delete r; };
  r->object = std::move(object);
  r->max_prot = max_prot;
  if (max_prot & PROT_WRITE) {
    TRY(r->object->add_writable_map());
    r->counts_writable = true;
  }
  void* p = nullptr;
  if (rumpuser_anonmmap(reinterpret_cast<void*>(addr), len, 0, 0, &p) != 0) return err(ENOMEM);
  uint64_t got = reinterpret_cast<uint64_t>(p);
  absl::Cleanup unmap = [p, len] { rumpuser_unmap(p, len); };
  if (fixed && got != addr) return err((flags & MAP_FIXED_NOREPLACE) ? EEXIST : ENOMEM);
  if (got >= kHostUserMax || got + len > kHostUserMax) return err(ENOMEM);
  r->start = got;
  r->view.addr = got;
  r->view.first = offset >> vm::kPageShift;
  r->view.writer = (prot & PROT_WRITE) != 0;
  if (Result<void> a = r->object->host_view_add(r->view, len >> vm::kPageShift, prot); !a.ok())
    return err(a.error() == kBusFault ? EIO : a.error());
  std::move(unmap).Cancel();
  std::move(free_r).Cancel();
  MutexLocker g(v->lock_);
  v->add_region_locked(*r);
  v->host_bytes_ += len;
  return static_cast<long>(got);
}

// Makes region boundaries at a and b; returns the first region at or
// after a (callers walk while it->start < b).
Result<VmProc::RegionMap::iterator> clip_locked(VmProc& v, uint64_t a, uint64_t b)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(v.lock_) {
  TRY(v.split_at_locked(a));
  TRY(v.split_at_locked(b));
  return v.regions_.lower_bound(a);
}

// A host-space range must be ours: ENOMEM otherwise.
Result<VmProc*> host_owned(Lwp& l, uint64_t a, uint64_t len) {
  VmProc* v = vm_proc(l.proc());
  if (!v) return err(ENOMEM);
  return v;
}

// The pages of a device's memory (DeviceMem), mapped shared into an
// isolated space: every page is there from the start, so nothing is ever
// filled, and stores land in the device's memory itself. Holds the
// device's reference until the last mapping goes.
class DeviceObject final : public vm::VmObject {
 public:
  // Takes over mem's reference, whatever happens.
  static Result<RefPtr<vm::VmObject>> create(Kmem& kmem, const DeviceMem& mem, uint64_t len) {
    auto* o = new (kmem) DeviceObject(kmem, mem, vm::page_round(len));
    if (!o) {
      mem.put(mem.cookie);
      return err(ENOMEM);
    }
    RefPtr<vm::VmObject> ref(kAdopt, o);
    Locker<RwLock> g(o->lock());
    for (uint64_t i = 0; i < vm::page_round(len) / vm::kPageSize; i++) {
      vm::Page* p = TRY(vm::Page::wrap_external(kmem, static_cast<std::byte*>(mem.addr) + i * vm::kPageSize));
      if (Result<void> r = o->insert_locked(i, p); !r.ok()) {
        p->release();
        return err(r.error());
      }
    }
    return ref;
  }
  // The base then frees the pages, which never touches the memory.
  ~DeviceObject() override { mem_.put(mem_.cookie); }

 private:
  DeviceObject(Kmem& kmem, const DeviceMem& mem, uint64_t size) : VmObject(kmem, size, false), mem_(mem) {}
  DeviceMem mem_;
};

}  // namespace

Result<long> sys_mmap(Lwp& l, UserPtr<void> addr, size_t length, int prot, int flags, int fd, off_t offset) {
  VM_SPACE_OR_HOST(l, vs);
  int type = flags & MAP_TYPE;
  if (type != MAP_SHARED && type != MAP_PRIVATE && type != MAP_SHARED_VALIDATE) return err(EINVAL);
  if (length == 0 || (offset & (kPage - 1)) != 0) return err(EINVAL);
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) return err(EINVAL);
  RefPtr<vm::VmObject> object;
  int max_prot = vm::kProtAll;
  if (!(flags & MAP_ANONYMOUS)) {
    if (type != MAP_PRIVATE) {
      // A device that shares its own memory (/dev/kcov) with a process:
      // in the host's address space the mapping is that memory; in an
      // isolated one, an object whose pages are that memory.
      if (DeviceMmapHook hook = device_mmap_hook()) {
        Result<DeviceMem> m = hook(l, fd, length, static_cast<uint64_t>(offset));
        if (m.ok() && !vs) {
          // The host mapping is not tracked: the device keeps its memory
          // for as long as it is open.
          m.value().put(m.value().cookie);
          return reinterpret_cast<long>(m.value().addr);
        }
        if (m.ok()) object = TRY(DeviceObject::create(l.kernel().kmem(), m.value(), length));
        if (!m.ok() && m.error() != ENODEV) return err(m.error());
      }
    }
    if (!object) object = TRY(mmap_file_object(l, fd, prot, flags, &max_prot));
    if (!vs) {
      // Host space: a private mapping is a copy of the file's pages made
      // now; a shared one is a view of the cache's own frames.
      if ((prot & ~max_prot) != 0) return err(EACCES);
      if (type == MAP_PRIVATE)
        return host_map_private_file(l, addr.addr, length, prot, flags, *object, static_cast<uint64_t>(offset));
      return host_map_shared_file(l, addr.addr, length, prot, flags, std::move(object), static_cast<uint64_t>(offset),
                                  max_prot);
    }
  }
  if (vs) {
    uint64_t a = TRY(vs->vmspace().map(addr.addr, length, prot, flags, object.get(),
                                       static_cast<uint64_t>(offset), max_prot));
    return static_cast<long>(a);
  }
  // Host space: the same validation Vmspace::map does, then host memory.
  constexpr int kKnown = MAP_TYPE | MAP_FIXED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE |
                         MAP_POPULATE | MAP_LOCKED | MAP_STACK | MAP_DENYWRITE | MAP_EXECUTABLE | MAP_NONBLOCK;
  if ((flags & ~kKnown) && type == MAP_SHARED_VALIDATE) return err(EOPNOTSUPP);
  if (flags & MAP_GROWSDOWN) return err(EINVAL);
  if (length > kHostUserMax) return err(ENOMEM);
  return host_mmap(l, addr.addr, page_up(length), prot, flags);
}

Result<long> sys_munmap(Lwp& l, UserPtr<void> addr, size_t length) {
  VM_SPACE_OR_HOST(l, vs);
  if (vs) {
    TRY(vs->vmspace().unmap(addr.addr, length));
    return 0;
  }
  if (length == 0) return err(EINVAL);
  uint64_t len = TRY(host_range(addr.addr, length));
  if (len == 0) return err(EINVAL);
  VmProc* v = vm_proc(l.proc());
  if (!v) return 0;
  uint64_t a = addr.addr, b = a + len;
  MutexLocker g(v->lock_);
  for (auto it = TRY(clip_locked(*v, a, b)); it != v->regions_.end() && it->start < b;) {
    v->unmap_region_locked(*it);
    v->host_bytes_ -= it->len;
    it = v->erase_region_locked(it);
  }
  return 0;
}

Result<long> sys_mprotect(Lwp& l, UserPtr<void> addr, size_t len, int prot) {
  VM_SPACE_OR_HOST(l, vs);
  if (vs) {
    TRY(vs->vmspace().protect(addr.addr, len, prot));
    return 0;
  }
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) return err(EINVAL);
  uint64_t n = TRY(host_range(addr.addr, len));
  if (n == 0) return 0;
  VmProc* v = TRY(host_owned(l, addr.addr, n));
  uint64_t a = addr.addr, b = a + n;
  MutexLocker g(v->lock_);
  if (!v->covered_locked(a, b)) return err(ENOMEM);
  // A shared view of a file not open for writing never becomes writable.
  for (auto it = v->regions_.upper_bound(a); it != v->regions_.begin();) {
    --it;
    for (; it != v->regions_.end() && it->start < b; ++it)
      if ((prot & ~it->max_prot) != 0) return err(EACCES);
    break;
  }
  for (auto it = TRY(clip_locked(*v, a, b)); it != v->regions_.end() && it->start < b; ++it) {
    if (it->object) {
      // Made writable: from now on its pages count as written at munmap,
      // msync and write-back. Pages a grown file adds take the new
      // protection.
      Locker<RwLock> og(it->object->lock());
      if ((prot & PROT_WRITE) && !it->view.writer) TRY(it->object->host_view_make_writer_locked(it->view));
      it->view.prot = prot;
    }
    TRY(from_errno(rumpuser_mprotect(reinterpret_cast<void*>(it->start), it->len, prot)));
    it->prot = prot;
  }
  return 0;
}

Result<long> sys_madvise(Lwp& l, UserPtr<void> addr, size_t length, int advice) {
  VM_SPACE_OR_HOST(l, vs);
  if (vs) {
    TRY(vs->vmspace().advise(addr.addr, length, advice));
    return 0;
  }
  bool pass;
  switch (advice) {
    case MADV_NORMAL: case MADV_RANDOM: case MADV_SEQUENTIAL: case MADV_WILLNEED:
    case MADV_DONTNEED: case MADV_FREE: case MADV_REMOVE:
      pass = true;
      break;
    case MADV_DONTFORK: case MADV_DOFORK: case MADV_WIPEONFORK: case MADV_KEEPONFORK:
    case MADV_MERGEABLE: case MADV_UNMERGEABLE: case MADV_HUGEPAGE: case MADV_NOHUGEPAGE:
    case MADV_DONTDUMP: case MADV_DODUMP:
      pass = false;
      break;
    default:
      return err(EINVAL);
  }
  uint64_t n = TRY(host_range(addr.addr, length));
  if (n == 0) return 0;
  VmProc* v = TRY(host_owned(l, addr.addr, n));
  MutexLocker g(v->lock_);
  if (!v->covered_locked(addr.addr, addr.addr + n)) return err(ENOMEM);
  // Views of a file: MADV_FREE is for private memory (EINVAL, as Linux);
  // MADV_REMOVE would punch the frames of the cache itself, not the file
  // (EOPNOTSUPP); dropping a view's pages (DONTNEED) changes nothing a
  // process can see, so the hints stay here.
  auto it = v->regions_.upper_bound(addr.addr);
  for (--it; it != v->regions_.end() && it->start < addr.addr + n; ++it) {
    if (!it->object) continue;
    if (advice == MADV_FREE) return err(EINVAL);
    if (advice == MADV_REMOVE) return err(EOPNOTSUPP);
    pass = false;
  }
  if (pass) TRY(from_errno(rumpuser_madvise(reinterpret_cast<void*>(addr.addr), n, advice)));
  return 0;
}

Result<long> sys_mincore(Lwp& l, UserPtr<void> addr, size_t length, UserPtr<unsigned char> vec) {
  VM_SPACE_OR_HOST(l, vs);
  if (!aligned(addr.addr)) return err(EINVAL);
  if (length == 0) return 0;
  constexpr uint64_t kChunk = 1024;  // pages per round
  unsigned char buf[kChunk];
  if (vs) {
    vm::Vmspace& s = vs->vmspace();
    if (length > s.max_address()) return err(ENOMEM);
    uint64_t pages = page_up(length) / kPage;
    for (uint64_t i = 0; i < pages; i += kChunk) {
      uint64_t n = std::min(kChunk, pages - i);
      TRY(s.mincore(addr.addr + i * kPage, n * kPage, buf));
      TRY(copyout(l, buf, vec.addr + i, n));
    }
    return 0;
  }
  uint64_t n = TRY(host_range(addr.addr, length));
  VmProc* v = TRY(host_owned(l, addr.addr, n));
  {
    MutexLocker g(v->lock_);
    if (!v->covered_locked(addr.addr, addr.addr + n)) return err(ENOMEM);
  }
  std::memset(buf, 1, sizeof buf);
  uint64_t pages = n / kPage;
  for (uint64_t i = 0; i < pages; i += kChunk) TRY(copyout(l, buf, vec.addr + i, std::min(kChunk, pages - i)));
  return 0;
}

Result<long> sys_msync(Lwp& l, UserPtr<void> addr, size_t length, int flags) {
  VM_SPACE_OR_HOST(l, vs);
  if (vs) {
    TRY(vs->vmspace().msync(addr.addr, length, flags));
    return 0;
  }
  if (flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) return err(EINVAL);
  if ((flags & MS_ASYNC) && (flags & MS_SYNC)) return err(EINVAL);
  uint64_t n = TRY(host_range(addr.addr, length));
  if (n == 0) return 0;
  VmProc* v = TRY(host_owned(l, addr.addr, n));
  MutexLocker g(v->lock_);
  if (!v->covered_locked(addr.addr, addr.addr + n)) return err(ENOMEM);
  // Views of files: their pages count as written (the host reports no
  // stores), then the file's cache does what the flags ask (MS_SYNC writes
  // back and waits, MS_ASYNC leaves it to the flusher).
  uint64_t a = addr.addr, b = a + n;
  auto it = v->regions_.upper_bound(a);
  int first = 0;
  for (--it; it != v->regions_.end() && it->start < b; ++it) {
    if (!it->object) continue;
    uint64_t lo = std::max(a, it->start), hi = std::min(b, it->start + it->len);
    uint64_t page = it->view.first + ((lo - it->start) >> vm::kPageShift);
    uint64_t count = (hi - lo) >> vm::kPageShift;
    {
      Locker<RwLock> og(it->object->lock());
      it->object->host_view_written_locked(it->view, page, count);
    }
    Result<void> r = it->object->sync(page << vm::kPageShift, count << vm::kPageShift, flags);
    if (!r.ok() && first == 0) first = r.error();
  }
  if (first) return err(first);
  return 0;
}

namespace {
Result<long> host_lock_check(Lwp& l, uint64_t addr, size_t len) {
  // mlock rounds the start down, as Linux.
  uint64_t a = addr & ~(kPage - 1);
  if (len == 0) return 0;
  if (len > kHostUserMax) return err(ENOMEM);
  uint64_t n = TRY(host_range(a, len + (addr - a)));
  VmProc* v = TRY(host_owned(l, a, n));
  MutexLocker g(v->lock_);
  if (!v->covered_locked(a, a + n)) return err(ENOMEM);
  return 0;
}
}  // namespace

Result<long> sys_mlock(Lwp& l, UserPtr<void> addr, size_t len) {
  VM_SPACE_OR_HOST(l, vs);
  if (vs) {
    TRY(vs->vmspace().mlock(addr.addr, len));
    return 0;
  }
  return host_lock_check(l, addr.addr, len);
}

Result<long> sys_munlock(Lwp& l, UserPtr<void> addr, size_t len) {
  VM_SPACE_OR_HOST(l, vs);
  if (vs) {
    TRY(vs->vmspace().munlock(addr.addr, len));
    return 0;
  }
  return host_lock_check(l, addr.addr, len);
}

// mlockall/munlockall: every page here stays resident (isolated spaces
// have no pager that evicts, host-space processes use the host's memory),
// so these check what Linux checks and lock nothing more: flags (MCL_ONFAULT
// only with MCL_CURRENT or MCL_FUTURE), and EPERM for a caller with a zero
// RLIMIT_MEMLOCK and no CAP_IPC_LOCK.
Result<long> sys_mlockall(Lwp& l, int flags) {
  if (flags == 0 || (flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) || flags == MCL_ONFAULT) return err(EINVAL);
  Proc& p = l.proc();
  rlim_t limit;
  {
    MutexLocker g(p.lock_);
    limit = p.rlimits_[RLIMIT_MEMLOCK].rlim_cur;
  }
  if (limit == 0 && !l.cred().capable(kCapIpcLock)) return err(EPERM);
  return 0;
}

Result<long> sys_munlockall(Lwp&) { return 0; }

Result<long> sys_mremap(Lwp& l, UserPtr<void> old_address, size_t old_size, size_t new_size, int flags,
                        UserPtr<void> new_address) {
  VM_SPACE_OR_HOST(l, vs);
  if (vs) {
    uint64_t a = TRY(vs->vmspace().mremap(old_address.addr, old_size, new_size, flags, new_address.addr));
    return static_cast<long>(a);
  }
  if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) return err(EINVAL);
  if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) return err(EINVAL);  // not in host space
  uint64_t a = old_address.addr;
  if (!aligned(a) || new_size == 0 || old_size == 0) return err(EINVAL);
  if (old_size > kHostUserMax || new_size > kHostUserMax) return err(ENOMEM);
  uint64_t olen = page_up(old_size), nlen = page_up(new_size);
  if (a > kHostUserMax - olen) return err(EFAULT);
  VmProc* v = vm_proc(l.proc());
  if (!v) return err(EFAULT);
  MutexLocker g(v->lock_);
  auto it = v->regions_.upper_bound(a);
  if (it == v->regions_.begin()) return err(EFAULT);
  --it;
  uint64_t rstart = it->start, rend = rstart + it->len;
  if (a < rstart || a + olen > rend) return err(EFAULT);
  if (nlen == olen) return static_cast<long>(a);
  // A view of a file shrinks; it neither grows nor moves (EINVAL).
  if (it->object && nlen > olen) return err(EINVAL);
  if (nlen < olen) {
    TRY(v->split_at_locked(a + nlen));
    TRY(v->split_at_locked(a + olen));
    auto tail = v->regions_.find(a + nlen);
    v->unmap_region_locked(*tail);
    v->host_bytes_ -= tail->len;
    v->erase_region_locked(tail);
    return static_cast<long>(a);
  }
  int prot = it->prot;
  // Grow in place if the old range ends its region and the host has room.
  if (a + olen == rend) {
    void* p = nullptr;
    uint64_t extra = nlen - olen;
    if (rumpuser_anonmmap(reinterpret_cast<void*>(rend), extra, 0, (prot & PROT_EXEC) != 0, &p) == 0) {
      if (reinterpret_cast<uint64_t>(p) == rend &&
          (prot == (PROT_READ | PROT_WRITE) || rumpuser_mprotect(p, extra, prot) == 0)) {
        it->len += extra;
        v->host_bytes_ += extra;
        return static_cast<long>(a);
      }
      rumpuser_unmap(p, extra);
    }
  }
  if (!(flags & MREMAP_MAYMOVE)) return err(ENOMEM);
  // Everything that can fail comes before the move: the old range's own
  // region (splitting only adds boundaries), the new region's node, the
  // host memory.
  TRY(v->split_at_locked(a));
  TRY(v->split_at_locked(a + olen));
  auto* r = new (*v->kmem_) HostRegion(0, nlen, prot);
  if (r == nullptr) return err(ENOMEM);
  void* p = nullptr;
  if (rumpuser_anonmmap(nullptr, nlen, 0, (prot & PROT_EXEC) != 0, &p) != 0) {
    delete r;
    return err(ENOMEM);
  }
  uint64_t got = reinterpret_cast<uint64_t>(p);
  r->start = got;
  v->add_region_locked(*r);
  // The old pages may be unreadable (PROT_NONE): make them readable, they
  // are going away.
  if (!(prot & PROT_READ)) rumpuser_mprotect(reinterpret_cast<void*>(a), olen, PROT_READ);
  std::memcpy(p, reinterpret_cast<void*>(a), olen);
  if (prot != (PROT_READ | PROT_WRITE | (prot & PROT_EXEC))) rumpuser_mprotect(p, nlen, prot);
  v->host_bytes_ += nlen;
  auto old = v->regions_.find(a);
  rumpuser_unmap(reinterpret_cast<void*>(a), olen);
  v->host_bytes_ -= old->len;
  v->erase_region_locked(old);
  return static_cast<long>(got);
}

Result<long> sys_brk(Lwp& l, UserPtr<void> addr) {
  VM_SPACE_OR_HOST(l, vs);
  uint64_t data_limit;
  {
    MutexLocker g(l.proc().lock_);
    rlim_t r = l.proc().rlimits_[RLIMIT_DATA].rlim_cur;
    data_limit = r == RLIM_INFINITY ? ~uint64_t{0} : static_cast<uint64_t>(r);
  }
  if (vs) return static_cast<long>(vs->brk(addr.addr, data_limit));
  VmProc* v = TRY(vm_proc_get(l.proc()));
  MutexLocker g(v->lock_);
  if (v->host_brk_base_ == 0) {
    void* p = nullptr;
    if (rumpuser_anonmmap(nullptr, kHostBrkReserve, 0, 0, &p) != 0) return err(ENOMEM);
    v->host_brk_base_ = v->host_brk_cur_ = reinterpret_cast<uint64_t>(p);
  }
  uint64_t a = addr.addr, base = v->host_brk_base_;
  if (a < base || a > base + kHostBrkReserve || a - base > data_limit) return static_cast<long>(v->host_brk_cur_);
  uint64_t old_top = page_up(v->host_brk_cur_), new_top = page_up(a);
  // Pages given back read as zero when the heap grows over them again.
  if (new_top < old_top) rumpuser_madvise(reinterpret_cast<void*>(new_top), old_top - new_top, MADV_DONTNEED);
  v->host_brk_cur_ = a;
  return static_cast<long>(a);
}

}  // namespace rump
