// DragonFly's vmspace_* calls: a process's table of guest address spaces.
// The public contract is <rump/vmspace.h>; the semantics follow DragonFly's
// sys/vm/vm_vmspace.c, with vmspace_pread/pwrite implemented (DragonFly
// leaves them EINVAL) and vmspace_ctl adapted to a kernel without register
// frames (RUN switches the LWP's user space; RETURN switches back).
#include <rump/rumpuser.h>
#include <rump/vmspace.h>

#include <sys/mman.h>

#include <algorithm>

#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "vm/user_space.h"
#include "vm/vm_proc.h"

namespace rump {

namespace {

constexpr uint64_t kPage = 4096;

// A referenced space of the caller's table: EINVAL without a table (as
// DragonFly), ENOENT for an unknown id.
class SpaceRef {
 public:
  explicit SpaceRef(VmUserSpace* s) : s_(s) {}
  SpaceRef(SpaceRef&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  ~SpaceRef() {
    if (s_) s_->release();
  }
  VmUserSpace* operator->() const { return s_; }
  VmUserSpace* get() const { return s_; }

 private:
  VmUserSpace* s_;
};

Result<SpaceRef> lookup(Lwp& l, uint64_t id) {
  VmProc* v = vm_proc(l.proc());
  if (!v) return err(EINVAL);
  MutexLocker g(v->lock_);
  if (!v->has_table_) return err(EINVAL);
  VmspaceSlot* slot = v->table_.find(id);
  if (slot == nullptr) return err(ENOENT);
  slot->space->hold();
  return SpaceRef(slot->space);
}

// True if an LWP of p runs in s (vmspace_ctl RUN).
bool running_in(Proc& p, UserSpace* s) {
  MutexLocker g(p.lock_);
  for (Lwp& l : p.lwps_)
    if (l.space_override_ == s) return true;
  return false;
}

// [addr, addr+len) rounded to pages, DragonFly style: EINVAL if it wraps or
// leaves the user range. Returns {start, end}.
Result<std::pair<uint64_t, uint64_t>> dfly_range(vm::Vmspace& s, uint64_t addr, uint64_t len) {
  uint64_t pageoff = addr & (kPage - 1);
  uint64_t a = addr - pageoff;
  uint64_t size = len + pageoff;
  if (size < len) return err(EINVAL);
  uint64_t rounded = (size + kPage - 1) & ~(kPage - 1);
  if (rounded < size) return err(EINVAL);
  uint64_t end = a + rounded;
  if (end < a) return err(EINVAL);
  if (rounded == 0) return std::pair<uint64_t, uint64_t>{a, a};
  if (end > s.max_address() || a < s.min_address()) return err(EINVAL);
  return std::pair<uint64_t, uint64_t>{a, end};
}

}  // namespace

Result<long> sys_vmspace_create(Lwp& l, UserPtr<void> id, int type, UserPtr<void> data) {
  if (id.is_null() || type != 0 || !data.is_null()) return err(EINVAL);
  Kernel& k = l.kernel();
  VmProc* v = TRY(vm_proc_get(l.proc()));
  {
    MutexLocker g(v->lock_);
    v->has_table_ = true;
    if (v->table_.find(id.addr) != nullptr) return err(EEXIST);
  }
  VmUserSpace* s = TRY(VmUserSpace::create(k.kmem()));
  auto* slot = new (k.kmem()) VmspaceSlot(id.addr, s);
  if (slot == nullptr) {
    s->release();
    return err(ENOMEM);
  }
  MutexLocker g(v->lock_);
  if (!v->table_.insert(*slot)) {  // another LWP made it meanwhile
    s->release();
    delete slot;
    return err(EEXIST);
  }
  return 0;
}

Result<long> sys_vmspace_destroy(Lwp& l, UserPtr<void> id) {
  VmProc* v = vm_proc(l.proc());
  if (!v) return err(EINVAL);
  VmspaceSlot* slot;
  {
    MutexLocker g(v->lock_);
    if (!v->has_table_) return err(EINVAL);
    slot = v->table_.find(id.addr);
    if (slot == nullptr) return err(ENOENT);
    // RUN is done by LWPs of this process only, each holding v->lock_ while
    // it sets its override: checked under the same lock, no race.
    if (running_in(l.proc(), slot->space)) return err(EBUSY);
    v->table_.erase(*slot);
  }
  slot->space->release();
  delete slot;
  return 0;
}

Result<long> sys_vmspace_ctl(Lwp& l, UserPtr<void> id, int cmd, UserPtr<void> tframe, UserPtr<void> vframe) {
  if (cmd == RUMP_VMSPACE_CTL_RETURN) {
    if (!l.space_override_) return err(EINVAL);
    l.space_override_ = nullptr;
    return 0;
  }
  VmProc* v = vm_proc(l.proc());
  if (!v) return err(EINVAL);
  MutexLocker g(v->lock_);
  if (!v->has_table_) return err(EINVAL);
  VmspaceSlot* slot = v->table_.find(id.addr);
  if (slot == nullptr) return err(ENOENT);
  if (cmd != RUMP_VMSPACE_CTL_RUN) return err(EOPNOTSUPP);
  l.space_override_ = slot->space;
  return 0;
}

Result<long> sys_vmspace_mmap(Lwp& l, UserPtr<void> id, UserPtr<void> addr, size_t len, unsigned long prot_flags,
                              int fd, off_t offset) {
  SpaceRef s = TRY(lookup(l, id.addr));
  int prot = static_cast<int>(prot_flags & 0xffffffffu);
  int flags = static_cast<int>(prot_flags >> 32);
  if (len == 0 || (offset & (kPage - 1)) != 0) return err(EINVAL);
  RefPtr<vm::VmObject> object;
  int max_prot = vm::kProtAll;
  if (!(flags & MAP_ANONYMOUS)) object = TRY(mmap_file_object(l, fd, prot, flags, &max_prot));
  uint64_t a = TRY(s->vmspace().map(addr.addr, len, prot, flags, object.get(), static_cast<uint64_t>(offset),
                                    max_prot));
  return static_cast<long>(a);
}

Result<long> sys_vmspace_munmap(Lwp& l, UserPtr<void> id, UserPtr<void> addr, size_t len) {
  SpaceRef s = TRY(lookup(l, id.addr));
  auto [a, end] = TRY(dfly_range(s->vmspace(), addr.addr, len));
  if (end == a) return 0;
  TRY(s->vmspace().unmap(a, end - a));
  return 0;
}

Result<long> sys_vmspace_mcontrol(Lwp& l, UserPtr<void> id, UserPtr<void> addr, size_t len, int behav,
                                  off_t value) {
  SpaceRef s = TRY(lookup(l, id.addr));
  uint64_t tmp = addr.addr + len;
  if (tmp < addr.addr) return err(EINVAL);
  vm::Vmspace& vs = s->vmspace();
  if (tmp > vs.max_address() || addr.addr < vs.min_address()) return err(EINVAL);
  if (behav == RUMP_MADV_INVAL || behav == RUMP_MADV_SETMAP) return 0;
  uint64_t start = addr.addr & ~(kPage - 1);
  uint64_t end = (tmp + kPage - 1) & ~(kPage - 1);
  if (end == start) return 0;
  Result<void> r = vs.advise(start, end - start, behav);
  // vm_map_madvise is EINVAL for a range with holes; Vmspace says ENOMEM.
  if (!r.ok()) return err(r.error() == ENOMEM ? EINVAL : r.error());
  return 0;
}

namespace {

// Moves nbyte bytes between the caller's buf and the space at offset in
// bounce-buffered chunks; stops at the first short chunk.
template <bool kRead>
Result<long> vmspace_rw(Lwp& l, uint64_t id, uint64_t buf, size_t nbyte, int flags, off_t offset) {
  SpaceRef s = TRY(lookup(l, id));
  if (flags != 0) return err(EINVAL);
  if (nbyte == 0) return 0;
  if (nbyte > static_cast<size_t>(SSIZE_MAX)) return err(EINVAL);
  vm::Vmspace& vs = s->vmspace();
  char bounce[2048];
  size_t done = 0;
  uint64_t at = static_cast<uint64_t>(offset);
  while (done < nbyte) {
    size_t n = std::min(sizeof bounce, nbyte - done);
    size_t got;
    if constexpr (kRead) {
      Result<size_t> r = vs.pread(at + done, bounce, n);
      if (!r.ok()) {
        if (done) break;
        return err(bus_to_efault(r).error());
      }
      got = r.value();
      if (got && !copyout(l, bounce, buf + done, got).ok()) {
        if (done) break;
        return err(EFAULT);
      }
    } else {
      if (!copyin(l, buf + done, bounce, n).ok()) {
        if (done) break;
        return err(EFAULT);
      }
      Result<size_t> r = vs.pwrite(at + done, bounce, n);
      if (!r.ok()) {
        if (done) break;
        return err(bus_to_efault(r).error());
      }
      got = r.value();
    }
    done += got;
    if (got < n) break;
  }
  return static_cast<long>(done);
}

}  // namespace

Result<long> sys_vmspace_pread(Lwp& l, UserPtr<void> id, UserPtr<void> buf, size_t nbyte, int flags, off_t offset) {
  return vmspace_rw<true>(l, id.addr, buf.addr, nbyte, flags, offset);
}

Result<long> sys_vmspace_pwrite(Lwp& l, UserPtr<void> id, UserPtr<void> buf, size_t nbyte, int flags,
                                off_t offset) {
  return vmspace_rw<false>(l, id.addr, buf.addr, nbyte, flags, offset);
}

}  // namespace rump
