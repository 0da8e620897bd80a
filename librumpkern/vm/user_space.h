// user_space.h: the isolated user space of a process, as the kernel sees it.
//
// VmUserSpace adapts a libvmspace Vmspace to the kernel's UserSpace
// interface (kern/copy.h): copyin/copyout translate and check every address
// through the Vmspace, so a bad pointer is EFAULT (invariant 6). It also
// carries the program break (brk), which belongs to the address space: two
// processes sharing a space (RFMEM) share one heap.
//
// Ownership: intrusively counted by hold()/release(). Proc::space_ holds one
// reference; an entry of a process's vmspace table holds one. LWPs running in
// a table space (vmspace_ctl RUN) borrow it: the table entry outlives them
// (destroy is EBUSY while any runs, exit returns them all first).
//
// Callers: the vm faction only (vm_proc.cc, sys_mman.cc, sys_vmspace.cc).
#pragma once

#include <atomic>
#include <cstdint>

#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"
#include "kern/copy.h"
#include "sync/mutex.h"
#include "vmspace.h"

namespace rump {

// Where an isolated space's heap starts unless create() is told otherwise
// (below the top-down mmap area, like a PIE program's heap on Linux).
inline constexpr uint64_t kIsolatedBrkBase = 0x5555'5556'0000;

class VmUserSpace final : public UserSpace, public KObject {
 public:
  // A fresh, empty space charged to kmem (the kernel's: RUMP_MEMLIMIT
  // covers it). The caller holds the one reference.
  static Result<VmUserSpace*> create(Kmem& kmem, uint64_t brk_base = kIsolatedBrkBase);
  // A copy-on-write copy (vm::Vmspace::fork) with the same break.
  Result<VmUserSpace*> fork();

  vm::Vmspace& vmspace() const { return *space_; }

  Result<void> copyin(uintptr_t uaddr, void* kaddr, size_t len, size_t* done) override;
  Result<void> copyout(const void* kaddr, uintptr_t uaddr, size_t len, size_t* done) override;
  Result<void> copyinstr(uintptr_t uaddr, char* kbuf, size_t maxlen, size_t* len) override;
  Result<MemoryKey> memory_key(uintptr_t uaddr) override;
  Result<void> with_word(uintptr_t uaddr, bool write, absl::FunctionRef<void(uint32_t*)> fn) override;
  void for_each_mapping(absl::FunctionRef<void(const Mapping&)> fn) override;
  void for_each_mapping_usage(absl::FunctionRef<void(const Mapping&, const MappingUsage&)> fn) override;
  Totals totals() override;
  void hold() override { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() override;

  // brk(2) with Linux's raw semantics: returns the break after the call.
  // addr 0 or below the base, or a heap that would pass data_limit bytes
  // or run into a mapping, leaves it where it was. Growing maps private
  // anonymous read/write pages; shrinking unmaps them.
  uint64_t brk(uint64_t addr, uint64_t data_limit);

 private:
  VmUserSpace(RefPtr<vm::Vmspace> space, uint64_t brk_base, uint64_t brk_cur);
  // What /proc shows of entry e, the break being brk_cur.
  Mapping mapping_of(const vm::Vmspace::EntryInfo& e, uint64_t brk_cur) const;
  ~VmUserSpace() override = default;

  std::atomic<uint32_t> refs_{1};
  RefPtr<vm::Vmspace> space_;
  // Guards the break. Leaf-like: held across calls into the Vmspace (whose
  // map lock ranks above everything a syscall holds here), never across
  // anything that takes a process lock.
  Mutex brk_lock_{LockRank::kNone};
  const uint64_t brk_base_;
  uint64_t brk_cur_ ABSL_GUARDED_BY(brk_lock_);
};

// The VmUserSpace behind a UserSpace, or nullptr (host space, or a space
// some other faction made).
VmUserSpace* as_vm_space(UserSpace* s);

}  // namespace rump
