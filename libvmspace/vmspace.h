// vmspace.h: an isolated user address space.
//
// A Vmspace is what a process's user memory is when it is not the host's: an
// ordered map of MapEntry over VmObjects whose pages come lazily (demand zero
// or from a pager) and which the kernel reaches only through translated,
// bounds- and protection-checked copies. A bad user pointer is EFAULT, never
// a host fault. fork() gives a copy-on-write image.
//
// Callers: the kernel's process code (fork1, exec, exit), the syscall layer
// (mmap, munmap, mprotect, madvise, minherit, mincore, mlock, msync, mremap,
// vmspace_pread/pwrite) and copyin/copyout. Usable without the kernel: it
// needs only a Kmem and the rumpuser hypercalls.
//
// Semantics are Linux's (flag values from <sys/mman.h>, positive errno
// values); where a call validates differently from Linux it says so.
//
// Address range: [min, max), by default [kDefaultMin, kDefaultMax) =
// [0x10000, 0x7fff'ffff'f000): Linux's default mmap_min_addr (64 KiB) up to
// x86-64's 47-bit TASK_SIZE less its guard page. Mappings placed without a
// fixed address are put top-down below max, as Linux does.
//
// Memory: page frames are charged to the Kmem given to create(); give a space
// an arena of its own (with a limit) to cap its resident memory: a fault past
// the limit fails with ENOMEM. Options::size_limit caps the total mapped size
// (RLIMIT_AS: map/mremap give ENOMEM), Options::lock_limit the mlocked size
// (RLIMIT_MEMLOCK: ENOMEM).
//
// Locking: map_lock_ (rank kVmspaceMap) guards the entry map and every
// entry's fields. Copies hold it shared, so several threads copy at once;
// changes of the map hold it exclusive. Page contents are guarded by the
// lock of the VmObject holding the page (taken under map_lock_, one at a
// time). Nothing here calls out of libvmspace with map_lock_ held except
// the pager callbacks of VmObject.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"
#include "map_entry.h"
#include "page.h"
#include "sync/mutex.h"
#include "vm_object.h"

namespace rump::vm {

inline constexpr uint64_t kDefaultMin = 0x10000;
inline constexpr uint64_t kDefaultMax = 0x7fff'ffff'f000;
inline constexpr int kProtAll = PROT_READ | PROT_WRITE | PROT_EXEC;

struct VmspaceOptions {
  uint64_t min = kDefaultMin;  // page aligned, > 0
  uint64_t max = kDefaultMax;  // page aligned, > min
  uint64_t size_limit = 0;     // bytes mapped at most; 0: no limit
  uint64_t lock_limit = 0;     // bytes mlocked at most; 0: no limit
};

class Vmspace : public KObject, public RefCounted<Vmspace> {
 public:
  // create() and fork() return a RefPtr that is never null on success:
  // Result<T> needs a default-constructible T, which Ref<T> is not.
  static Result<RefPtr<Vmspace>> create(Kmem& kmem, const VmspaceOptions& options = {});
  ~Vmspace();
  Vmspace(const Vmspace&) = delete;
  Vmspace& operator=(const Vmspace&) = delete;

  // ---- map management (vmspace.cc, advice.cc, remap.cc) ----

  // mmap(2). flags: MAP_SHARED or MAP_PRIVATE (MAP_SHARED_VALIDATE too), with
  // MAP_ANONYMOUS (object must be null) or an object (offset into it);
  // MAP_FIXED, MAP_FIXED_NOREPLACE (EEXIST on overlap); MAP_NORESERVE,
  // MAP_POPULATE, MAP_LOCKED, MAP_STACK, MAP_GROWSDOWN-less. max_prot bounds
  // later protect() calls (EACCES); a shared mapping is also bounded by
  // object->max_shared_prot(). Returns the address.
  Result<uint64_t> map(uint64_t addr, uint64_t len, int prot, int flags, VmObject* object = nullptr,
                       uint64_t offset = 0, int max_prot = kProtAll);
  // munmap(2): holes in the range are fine.
  Result<void> unmap(uint64_t addr, uint64_t len);
  // mprotect(2): ENOMEM if part of the range is unmapped, EACCES beyond an
  // entry's max_prot. Unlike Linux, nothing changes when it fails.
  Result<void> protect(uint64_t addr, uint64_t len, int prot);
  // madvise(2): MADV_NORMAL/RANDOM/SEQUENTIAL/WILLNEED (hints), MADV_DONTNEED
  // (private: drop pages, the next read sees the object or zeros), MADV_FREE
  // (private anonymous only, dropped at once), MADV_DONTFORK/DOFORK,
  // MADV_WIPEONFORK/KEEPONFORK. Unknown advice: EINVAL.
  Result<void> advise(uint64_t addr, uint64_t len, int advice);
  // minherit(2).
  Result<void> inherit(uint64_t addr, uint64_t len, Inherit how);
  // mincore(2): vec gets one byte per page, 1 if resident.
  Result<void> mincore(uint64_t addr, uint64_t len, unsigned char* vec);
  // mlock(2)/munlock(2): marks and counts locked bytes, makes pages resident.
  Result<void> mlock(uint64_t addr, uint64_t len);
  Result<void> munlock(uint64_t addr, uint64_t len);
  // msync(2): validates like Linux (EINVAL, ENOMEM for unmapped parts, EBUSY
  // for MS_INVALIDATE of locked memory), then tells shared objects' pagers.
  Result<void> msync(uint64_t addr, uint64_t len, int flags);
  // mremap(2): grow in place, shrink, move (MREMAP_MAYMOVE), MREMAP_FIXED.
  // The old range must lie in one mapping (else EFAULT).
  Result<uint64_t> mremap(uint64_t old_addr, uint64_t old_len, uint64_t new_len, int flags,
                          uint64_t new_addr = 0);
  // Unmaps everything (exec).
  void clear();

  // ---- fork (fork.cc) ----

  // A child space: private mappings copy-on-write (no page copied now; cost
  // grows with entries and resident pages), shared ones shared, inherit-none
  // ones absent. The child uses the same Kmem and options.
  Result<RefPtr<Vmspace>> fork();

  // ---- copies (copy.cc) ----
  // A copy that meets an unmapped page or one without the protection it needs
  // (reads PROT_READ, writes PROT_WRITE) copies up to that page, stores the
  // bytes done in *done and fails with EFAULT; one that wraps or leaves
  // [min, max) fails with EFAULT before touching anything. A fault the Kmem
  // cannot back is ENOMEM, a pager's failure its error.
  Result<void> copyin(uint64_t uaddr, void* kaddr, size_t len, size_t* done = nullptr);
  Result<void> copyout(const void* kaddr, uint64_t uaddr, size_t len, size_t* done = nullptr);
  // NUL-terminated strings of at most maxlen bytes including the NUL. Return
  // the length copied including the NUL; ENAMETOOLONG if no NUL in maxlen.
  Result<size_t> copyinstr(uint64_t uaddr, char* kaddr, size_t maxlen);
  Result<size_t> copyoutstr(const char* kaddr, uint64_t uaddr, size_t maxlen);
  // pread/pwrite into the space: the bytes done, stopping short at the first
  // faulting page; the error only when nothing could be done.
  // Runs fn on the 4-byte word at uaddr in place (uaddr 4-aligned: the
  // word never crosses a page), the page present and, for write, writable
  // with copy-on-write resolved: futexes compare and update user words
  // atomically through it. EFAULT as copyin/copyout.
  Result<void> with_word(uint64_t uaddr, bool write, absl::FunctionRef<void(uint32_t*)> fn);
  // What backs the byte at uaddr: the object and offset of a shared
  // mapping, object null for a private one. EFAULT if nothing is mapped.
  struct Backing {
    const void* object;
    uint64_t offset;
  };
  Result<Backing> backing(uint64_t uaddr);

  Result<size_t> pread(uint64_t uaddr, void* buf, size_t len);
  Result<size_t> pwrite(uint64_t uaddr, const void* buf, size_t len);

  // ---- introspection ----
  uint64_t min_address() const { return min_; }
  uint64_t max_address() const { return max_; }
  Kmem& kmem() const { return *kmem_; }
  uint64_t mapped_bytes();
  uint64_t locked_bytes();
  size_t entry_count();
  // Pages held by this space's private layers and mapped objects (a page
  // of a shared object counts in every space mapping it).
  size_t resident_pages();
  struct EntryInfo {
    uint64_t start, end;
    int prot, max_prot;
    bool shared, locked;
    Inherit inherit;
    bool object;             // backed by an object (a file), not anonymous
    uint64_t object_offset;  // where in it
    VmObject* backing;       // that object, borrowed for the call (or null)
  };
  // What each entry's resident pages are, as Linux's /proc/<pid>/smaps
  // counts them, in bytes. A page is the entry's private copy (its layer:
  // anonymous, dirty) or the mapped object's (a file's page cache, dirty
  // while not yet written back, or shared anonymous memory). Its mappers:
  // for a private copy the layers sharing its frame after fork
  // (Page::shares), for an object's page the entries mapping the object
  // (VmObject::map_entries) less those of this space that do not cover it
  // (an entry split in two in another space counts twice). Shared: more
  // than one mapper. The proportional sizes are in 1/2^kPssShift bytes.
  static constexpr int kPssShift = 12;
  struct EntryUsage {
    uint64_t rss = 0, pss = 0, pss_dirty = 0, pss_anon = 0, pss_file = 0, pss_shmem = 0, pss_locked = 0;
    uint64_t shared_clean = 0, shared_dirty = 0, private_clean = 0, private_dirty = 0, anonymous = 0;
  };
  // Calls fn(const EntryInfo&, const EntryUsage&) for each entry in
  // address order (usage.cc).
  void for_each_entry_usage(absl::FunctionRef<void(const EntryInfo&, const EntryUsage&)> fn);
  // Calls fn(const EntryInfo&) for each entry in address order (tests, /proc).
  template <class Fn>
  void for_each_entry(Fn&& fn) {
    SharedLocker g(map_lock_);
    for_each_entry_locked(fn);
  }

 private:
  Vmspace(Kmem& kmem, const VmspaceOptions& options);

  // The copy loop (copy.cc): walks [uaddr, uaddr+len) entry by entry and page
  // by page under map_lock_ shared, handing each page run to op. Returns
  // false if op stopped early (a string's NUL).
  template <bool kWrite, class Op>
  Result<bool> copy_loop(uint64_t uaddr, size_t len, Op& op, size_t& done);

  using Map = MapEntry::Map;
  using Iter = Map::iterator;

  template <class Fn>
  void for_each_entry_locked(Fn& fn) ABSL_SHARED_LOCKS_REQUIRED(map_lock_) {
    for (MapEntry& e : entries_)
      fn(EntryInfo{e.start, e.end, e.prot, e.max_prot, e.shared, e.locked, e.inherit, static_cast<bool>(e.object),
                   e.object_offset, e.object.get()});
  }

  // The entry containing addr, or end().
  Iter find_locked(uint64_t addr) ABSL_SHARED_LOCKS_REQUIRED(map_lock_);
  // The first entry ending after addr, or end().
  Iter first_ending_after_locked(uint64_t addr) ABSL_SHARED_LOCKS_REQUIRED(map_lock_);
  bool range_free_locked(uint64_t addr, uint64_t len) ABSL_SHARED_LOCKS_REQUIRED(map_lock_);
  // True if [addr, addr+len) is covered by entries without holes.
  bool range_mapped_locked(uint64_t addr, uint64_t len) ABSL_SHARED_LOCKS_REQUIRED(map_lock_);
  // A free range of len bytes, near hint if it is free, else top-down.
  Result<uint64_t> find_space_locked(uint64_t hint, uint64_t len) ABSL_SHARED_LOCKS_REQUIRED(map_lock_);
  // Splits the entry containing addr so that an entry starts at addr.
  // Splitting changes nothing a user sees, so a failure (ENOMEM) midway in
  // an operation leaves a consistent map.
  Result<void> split_at_locked(uint64_t addr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(map_lock_);
  Result<void> clip_locked(uint64_t addr, uint64_t len) ABSL_EXCLUSIVE_LOCKS_REQUIRED(map_lock_);
  // Merges entries touching [addr, end) with their neighbours where nothing
  // tells them apart.
  void merge_range_locked(uint64_t addr, uint64_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(map_lock_);
  bool try_merge_locked(MapEntry& prev, MapEntry& next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(map_lock_);
  // Removes and frees the entries inside [addr, addr+len) (already clipped).
  void remove_range_locked(uint64_t addr, uint64_t len) ABSL_EXCLUSIVE_LOCKS_REQUIRED(map_lock_);
  void release_entry_pages_locked(MapEntry& e, uint64_t from, uint64_t to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(map_lock_);
  // Gives e a layer that only it refers to (before it grows).
  Result<void> own_layer_locked(MapEntry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(map_lock_);
  // Makes the pages of [from, to) of e resident (mlock, MAP_POPULATE).
  Result<void> populate_locked(MapEntry& e, uint64_t from, uint64_t to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(map_lock_);
  // The entries covering [addr, addr+len) after a range check: EINVAL if
  // addr is unaligned, ENOMEM if the rounded range wraps or leaves [min, max)
  // or has holes. Returns the rounded length.
  Result<uint64_t> check_mapped_locked(uint64_t addr, uint64_t len) ABSL_SHARED_LOCKS_REQUIRED(map_lock_);

  Kmem* kmem_;
  const uint64_t min_;
  const uint64_t max_;
  const uint64_t size_limit_;
  const uint64_t lock_limit_;
  RwLock map_lock_{LockRank::kVmspaceMap};
  Map entries_ ABSL_GUARDED_BY(map_lock_);
  uint64_t mapped_ ABSL_GUARDED_BY(map_lock_) = 0;
  uint64_t locked_ ABSL_GUARDED_BY(map_lock_) = 0;
};

}  // namespace rump::vm
