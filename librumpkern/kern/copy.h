// copy.h: copyin/copyout, the only way kernel code reaches user memory.
//
// A process's user space is the host's address space (local clients: the
// pointer is used directly, as in rump; only addresses that can't be user
// memory are refused) or an isolated space implementing UserSpace (the vm
// faction's Vmspace adapter), where every address is translated and checked
// and a bad one is EFAULT, never a host crash (invariant 6).
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "base/result.h"
#include "base/user_ptr.h"
#include "kern/file_map.h"

namespace rump {

class Lwp;

// What a word of user memory is, independent of the address it is reached
// at: the futex table keys shared futexes by it. Two keys are equal iff
// the addresses name the same memory (a MAP_SHARED object and offset, or
// one space and one address for private memory).
struct MemoryKey {
  const void* object;
  uint64_t offset;
  bool operator==(const MemoryKey&) const = default;
};

// An isolated user address space as the kernel sees it. Copies stop at the
// first page that faults: *done says how much was copied.
class UserSpace {
 public:
  virtual ~UserSpace() = default;
  virtual Result<void> copyin(uintptr_t uaddr, void* kaddr, size_t len, size_t* done) = 0;
  virtual Result<void> copyout(const void* kaddr, uintptr_t uaddr, size_t len, size_t* done) = 0;
  // Copies a NUL-terminated string of at most maxlen bytes including the
  // NUL; *len counts the bytes copied including it. ENAMETOOLONG if no NUL
  // within maxlen.
  virtual Result<void> copyinstr(uintptr_t uaddr, char* kbuf, size_t maxlen, size_t* len) = 0;
  // The memory at uaddr (EFAULT if nothing is mapped there): the object
  // and offset of a shared mapping, else this space and uaddr.
  virtual Result<MemoryKey> memory_key(uintptr_t uaddr) { return MemoryKey{this, uaddr}; }
  // Runs fn on the aligned 32-bit word at uaddr in place, writable if
  // write (for atomic compare and update: futexes). EFAULT as copyin.
  virtual Result<void> with_word(uintptr_t uaddr, bool write, absl::FunctionRef<void(uint32_t*)> fn) = 0;
  // What /proc shows of the space: its mappings in address order (the
  // heap is the one brk made) and its totals in bytes. A space that keeps
  // no map of its own (the host's) shows none.
  struct Mapping {
    uint64_t start, end, offset;
    int prot;
    bool shared, object, heap;
    // The mapped object (a file's page cache), borrowed for the call; null
    // for private anonymous memory.
    vm::VmObject* backing;
    int max_prot = 7;  // what mprotect may grant (VmFlags' mr mw me)
    bool locked = false;
    bool dontfork = false, wipeonfork = false;  // MADV_DONTFORK, MADV_WIPEONFORK
  };
  virtual void for_each_mapping(absl::FunctionRef<void(const Mapping&)> fn) {}
  // What a mapping's resident pages are, for smaps (libvmspace's
  // Vmspace::EntryUsage: bytes, the proportional sizes in 1/4096 bytes).
  struct MappingUsage {
    uint64_t rss = 0, pss = 0, pss_dirty = 0, pss_anon = 0, pss_file = 0, pss_shmem = 0, pss_locked = 0;
    uint64_t shared_clean = 0, shared_dirty = 0, private_clean = 0, private_dirty = 0, anonymous = 0;
  };
  static constexpr int kPssShift = 12;
  virtual void for_each_mapping_usage(absl::FunctionRef<void(const Mapping&, const MappingUsage&)> fn) {}
  struct Totals {
    uint64_t mapped = 0, resident = 0, locked = 0;
  };
  virtual Totals totals() { return {}; }
  // Reference counting: processes sharing a space (RFMEM) hold it.
  virtual void hold() = 0;
  virtual void release() = 0;
};

// May [uaddr, uaddr + len) be user memory of a host-space process? (What
// copyin/copyout check before touching a host address.)
bool host_user_range_ok(uintptr_t uaddr, size_t len);

Result<void> copyin(Lwp& l, uintptr_t uaddr, void* kaddr, size_t len);
Result<void> copyout(Lwp& l, const void* kaddr, uintptr_t uaddr, size_t len);
Result<void> copyinstr(Lwp& l, uintptr_t uaddr, char* kbuf, size_t maxlen, size_t* len);
// Copies between kernel memory and a given space (null: the host's), not
// the caller's: another process's memory (process_vm_readv, /proc). *done
// is what was copied before the first fault.
Result<void> space_copy(UserSpace* s, bool to_user, uintptr_t uaddr, void* kbuf, size_t len, size_t* done);
// The process's own access to its memory (rump_copyin/rump_copyout): as
// copyin/copyout, and a page past the end of a mapped file also raises
// SIGBUS in the process (kern/file_map.h).
Result<void> user_copyin(Lwp& l, uintptr_t uaddr, void* kaddr, size_t len);
Result<void> user_copyout(Lwp& l, const void* kaddr, uintptr_t uaddr, size_t len);

template <class T, class U>
Result<void> copyin(Lwp& l, UserPtr<U> src, T* dst, size_t len = sizeof(T)) {
  return copyin(l, src.addr, dst, len);
}
template <class T, class U>
Result<void> copyout(Lwp& l, const T* src, UserPtr<U> dst, size_t len = sizeof(T)) {
  return copyout(l, src, dst.addr, len);
}
// Reads one object.
template <class T>
Result<T> copyin_obj(Lwp& l, UserPtr<T> src) {
  T v{};
  TRY(copyin(l, src.addr, &v, sizeof(T)));
  return v;
}
// Writes one object.
template <class T, class U>
Result<void> copyout_obj(Lwp& l, const T& v, UserPtr<U> dst) {
  return copyout(l, &v, dst.addr, sizeof(T));
}

}  // namespace rump
