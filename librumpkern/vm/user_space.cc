// VmUserSpace: a Vmspace behind the kernel's UserSpace interface.
#include "vm/user_space.h"

#include <sys/mman.h>

namespace rump {

namespace {
constexpr uint64_t kPage = 4096;
uint64_t page_up(uint64_t a) { return (a + kPage - 1) & ~(kPage - 1); }
}  // namespace

VmUserSpace::VmUserSpace(RefPtr<vm::Vmspace> space, uint64_t brk_base, uint64_t brk_cur)
    : space_(std::move(space)), brk_base_(brk_base), brk_cur_(brk_cur) {}

Result<VmUserSpace*> VmUserSpace::create(Kmem& kmem, uint64_t brk_base) {
  RefPtr<vm::Vmspace> s = TRY(vm::Vmspace::create(kmem));
  auto* us = new (kmem) VmUserSpace(std::move(s), brk_base, brk_base);
  if (!us) return err(ENOMEM);
  return us;
}

Result<VmUserSpace*> VmUserSpace::fork() {
  RefPtr<vm::Vmspace> s = TRY(space_->fork());
  uint64_t cur;
  {
    MutexLocker g(brk_lock_);
    cur = brk_cur_;
  }
  auto* us = new (space_->kmem()) VmUserSpace(std::move(s), brk_base_, cur);
  if (!us) return err(ENOMEM);
  return us;
}

void VmUserSpace::for_each_mapping(absl::FunctionRef<void(const Mapping&)> fn) {
  uint64_t brk_cur;
  {
    MutexLocker g(brk_lock_);
    brk_cur = brk_cur_;
  }
  space_->for_each_entry([&](const vm::Vmspace::EntryInfo& e) { fn(mapping_of(e, brk_cur)); });
}

UserSpace::Mapping VmUserSpace::mapping_of(const vm::Vmspace::EntryInfo& e, uint64_t brk_cur) const {
  bool heap = !e.object && e.start >= brk_base_ && e.end <= ((brk_cur + 4095) & ~uint64_t{4095});
  Mapping m{e.start, e.end, e.object_offset, e.prot, e.shared, e.object, heap, e.backing};
  m.max_prot = e.max_prot;
  m.locked = e.locked;
  m.dontfork = e.inherit == vm::Inherit::kNone;
  m.wipeonfork = e.inherit == vm::Inherit::kZero;
  return m;
}

void VmUserSpace::for_each_mapping_usage(absl::FunctionRef<void(const Mapping&, const MappingUsage&)> fn) {
  static_assert(kPssShift == vm::Vmspace::kPssShift);
  uint64_t brk_cur;
  {
    MutexLocker g(brk_lock_);
    brk_cur = brk_cur_;
  }
  space_->for_each_entry_usage([&](const vm::Vmspace::EntryInfo& e, const vm::Vmspace::EntryUsage& v) {
    MappingUsage u;
    u.rss = v.rss;
    u.pss = v.pss;
    u.pss_dirty = v.pss_dirty;
    u.pss_anon = v.pss_anon;
    u.pss_file = v.pss_file;
    u.pss_shmem = v.pss_shmem;
    u.pss_locked = v.pss_locked;
    u.shared_clean = v.shared_clean;
    u.shared_dirty = v.shared_dirty;
    u.private_clean = v.private_clean;
    u.private_dirty = v.private_dirty;
    u.anonymous = v.anonymous;
    fn(mapping_of(e, brk_cur), u);
  });
}

UserSpace::Totals VmUserSpace::totals() {
  Totals t;
  t.mapped = space_->mapped_bytes();
  t.resident = static_cast<uint64_t>(space_->resident_pages()) * 4096;
  t.locked = space_->locked_bytes();
  return t;
}

void VmUserSpace::release() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

Result<void> VmUserSpace::copyin(uintptr_t uaddr, void* kaddr, size_t len, size_t* done) {
  return space_->copyin(uaddr, kaddr, len, done);
}

Result<void> VmUserSpace::copyout(const void* kaddr, uintptr_t uaddr, size_t len, size_t* done) {
  return space_->copyout(kaddr, uaddr, len, done);
}

Result<void> VmUserSpace::copyinstr(uintptr_t uaddr, char* kbuf, size_t maxlen, size_t* len) {
  size_t n = TRY(bus_to_efault(space_->copyinstr(uaddr, kbuf, maxlen)));
  if (len) *len = n;
  return {};
}

Result<MemoryKey> VmUserSpace::memory_key(uintptr_t uaddr) {
  vm::Vmspace::Backing b = TRY(space_->backing(uaddr));
  if (b.object) return MemoryKey{b.object, b.offset};
  return MemoryKey{this, uaddr};
}

Result<void> VmUserSpace::with_word(uintptr_t uaddr, bool write, absl::FunctionRef<void(uint32_t*)> fn) {
  return bus_to_efault(space_->with_word(uaddr, write, fn));
}

uint64_t VmUserSpace::brk(uint64_t addr, uint64_t data_limit) {
  MutexLocker g(brk_lock_);
  if (addr < brk_base_ || addr >= space_->max_address()) return brk_cur_;
  if (data_limit != ~uint64_t{0} && addr - brk_base_ > data_limit) return brk_cur_;
  uint64_t old_top = page_up(brk_cur_), new_top = page_up(addr);
  if (new_top > old_top) {
    Result<uint64_t> r = space_->map(old_top, new_top - old_top, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE);
    if (!r.ok()) return brk_cur_;
  } else if (new_top < old_top) {
    if (!space_->unmap(new_top, old_top - new_top).ok()) return brk_cur_;
  }
  brk_cur_ = addr;
  return brk_cur_;
}

VmUserSpace* as_vm_space(UserSpace* s) { return dynamic_cast<VmUserSpace*>(s); }

}  // namespace rump
