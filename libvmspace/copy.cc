// copy.cc: copyin/copyout and friends: the only way the kernel reaches user
// memory of a Vmspace.
//
// A copy translates once per page and copies whole page runs with memcpy; it
// holds the map lock shared for the whole copy (the map cannot change under
// it) and the lock of the object holding the pages of one entry for the run
// within that entry: shared to read, exclusive to write (see vm_object.h).
// Nothing is cached between copies.
//
// Where a private page is read from: the entry's layer if it has the page,
// else the mapped object (filled on demand), else a zero page (anonymous
// memory is demand-zero: reading never allocates). A write goes to the layer,
// copying the object's page in first, or breaking copy-on-write when a
// forked space shares the frame; a shared mapping writes into its object and
// tells the object before (page_mkwrite, which may refuse) and after
// (page_written).
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vmspace.h"

namespace rump::vm {
namespace {

// What private anonymous memory reads as before it is written.
alignas(64) const std::byte kZeroPage[kPageSize] = {};

// One page run handed to the operation. The op may consume less (a NUL) and
// then says stop by returning false.
template <class Op>
bool apply(Op& op, std::byte* user, size_t n, uint64_t& addr, size_t& done) {
  size_t used = n;
  bool more = op(user, n, used);
  addr += used;
  done += used;
  return more;
}

// Pages translated one after the other whose frames are adjacent in host
// memory (frames come from chunks, page.h) are handed to op as one run, so
// a copy of many pages is a few big memcpys. Flush before the lock guarding
// the frames is dropped.
struct Run {
  std::byte* p = nullptr;
  size_t n = 0;
  template <class Op>
  bool add(std::byte* q, size_t m, Op& op, uint64_t& addr, size_t& done) {
    if (p != nullptr && p + n == q) {
      n += m;
      return true;
    }
    bool more = flush(op, addr, done);
    p = q;
    n = m;
    return more;
  }
  template <class Op>
  bool flush(Op& op, uint64_t& addr, size_t& done) {
    if (n == 0) return true;
    bool more = apply(op, p, n, addr, done);
    p = nullptr;
    n = 0;
    return more;
  }
};

inline size_t run_in_page(uint64_t addr, uint64_t end) {
  return static_cast<size_t>(std::min(end, page_trunc(addr) + kPageSize) - addr);
}

enum class Step { kDone, kStopped, kNeedObject };

// Reads from pages of `obj` (a shared mapping's object, or the backing
// object of a private one) for [addr, run_end); obj_base is the object
// offset of user address `base`.
template <class Op>
Result<bool> read_object(VmObject& obj, uint64_t obj_base, uint64_t base, uint64_t& addr, uint64_t run_end, Op& op,
                         size_t& done) {
  bool need_fill = false;
  {
    SharedLocker g(obj.lock());
    Run run;
    for (uint64_t cur = addr; cur < run_end;) {
      size_t n = run_in_page(cur, run_end);
      uint64_t off = obj_base + (cur - base);
      Page* p = obj.lookup_locked(off >> kPageShift);
      const std::byte* src;
      if (p != nullptr) {
        src = p->data();
      } else if (obj.anonymous()) {
        src = kZeroPage;
      } else {
        need_fill = true;
        break;
      }
      if (!run.add(const_cast<std::byte*>(src) + (off & kPageMask), n, op, addr, done)) return false;
      cur += n;
    }
    if (!run.flush(op, addr, done)) return false;
  }
  if (!need_fill) return true;
  // A pager page not yet resident: fill it under the exclusive lock, then
  // carry on page by page under that lock.
  Locker<RwLock> g(obj.lock());
  while (addr < run_end) {
    size_t n = run_in_page(addr, run_end);
    uint64_t off = obj_base + (addr - base);
    Page* p = TRY(obj.fault_locked(off >> kPageShift));
    if (!apply(op, p->data() + (off & kPageMask), n, addr, done)) return false;
  }
  return true;
}

// Writes into a shared mapping's object.
template <class Op>
Result<bool> write_object(VmObject& obj, uint64_t obj_base, uint64_t base, uint64_t& addr, uint64_t run_end, Op& op,
                          size_t& done) {
  Locker<RwLock> g(obj.lock());
  if (!obj.anonymous()) {
    // A pager object hears about each page written.
    while (addr < run_end) {
      size_t n = run_in_page(addr, run_end);
      uint64_t off = obj_base + (addr - base);
      Page* p = TRY(obj.fault_write_locked(off >> kPageShift));
      TRY(obj.page_mkwrite(off >> kPageShift, p));
      uint64_t before = addr;
      bool more = apply(op, p->data() + (off & kPageMask), n, addr, done);
      obj.page_written(off, addr - before);
      if (!more) return false;
    }
    return true;
  }
  Run run;
  for (uint64_t cur = addr; cur < run_end;) {
    size_t n = run_in_page(cur, run_end);
    uint64_t off = obj_base + (cur - base);
    Result<Page*> p = obj.fault_write_locked(off >> kPageShift);
    if (!p.ok()) {
      run.flush(op, addr, done);
      return err(p.error());
    }
    if (!run.add(p.value()->data() + (off & kPageMask), n, op, addr, done)) return false;
    cur += n;
  }
  return run.flush(op, addr, done);
}

// Reads from a private mapping: layer first, then object or zeros.
template <class Op>
Result<bool> read_private(MapEntry& e, uint64_t& addr, uint64_t run_end, Op& op, size_t& done) {
  VmObject& layer = *e.layer;
  while (addr < run_end) {
    {
      SharedLocker g(layer.lock());
      Run run;
      for (uint64_t cur = addr; cur < run_end;) {
        size_t n = run_in_page(cur, run_end);
        uint64_t off = e.layer_offset + (cur - e.start);
        Page* p = layer.lookup_locked(off >> kPageShift);
        const std::byte* src;
        if (p != nullptr)
          src = p->data();
        else if (!e.object)
          src = kZeroPage;
        else
          break;
        if (!run.add(const_cast<std::byte*>(src) + (off & kPageMask), n, op, addr, done)) return false;
        cur += n;
      }
      if (!run.flush(op, addr, done)) return false;
    }
    if (addr >= run_end) break;
    // The layer lacks this page: read the object's (one page, then look in
    // the layer again).
    uint64_t page_end = std::min(run_end, page_trunc(addr) + kPageSize);
    if (!TRY(read_object(*e.object, e.object_offset, e.start, addr, page_end, op, done))) return false;
  }
  return true;
}

// Writes into a private mapping's layer.
template <class Op>
Result<bool> write_private(MapEntry& e, uint64_t& addr, uint64_t run_end, Op& op, size_t& done) {
  VmObject& layer = *e.layer;
  while (addr < run_end) {
    uint64_t missing = 0;
    {
      Locker<RwLock> g(layer.lock());
      Run run;
      for (uint64_t cur = addr; cur < run_end;) {
        size_t n = run_in_page(cur, run_end);
        uint64_t off = e.layer_offset + (cur - e.start);
        uint64_t index = off >> kPageShift;
        if (e.object && layer.lookup_locked(index) == nullptr) {
          missing = index;
          break;
        }
        Result<Page*> p = layer.fault_write_locked(index);
        if (!p.ok()) {
          run.flush(op, addr, done);
          return err(p.error());
        }
        if (!run.add(p.value()->data() + (off & kPageMask), n, op, addr, done)) return false;
        cur += n;
      }
      if (!run.flush(op, addr, done)) return false;
    }
    if (addr >= run_end) break;
    // First write to a page of the backing object: take a private copy of it
    // (under the object's lock only), then install it unless a concurrent
    // writer of this space got there first.
    uint64_t obj_off = e.object_offset + (page_trunc(addr) - e.start);
    Page* copy = TRY(e.object->copy_page(obj_off >> kPageShift));
    Locker<RwLock> g(layer.lock());
    if (layer.lookup_locked(missing) != nullptr) {
      copy->release();
    } else {
      Result<void> r = layer.insert_locked(missing, copy);
      if (!r.ok()) {
        copy->release();
        return err(r.error());
      }
    }
  }
  return true;
}

}  // namespace

template <bool kWrite, class Op>
Result<bool> Vmspace::copy_loop(uint64_t uaddr, size_t len, Op& op, size_t& done) {
  done = 0;
  if (len == 0) return true;
  // Wrapping or leaving the user range is EFAULT before anything is touched.
  if (uaddr < min_ || uaddr >= max_ || len > max_ - uaddr) return err(EFAULT);
  const int need = kWrite ? PROT_WRITE : PROT_READ;
  uint64_t addr = uaddr;
  const uint64_t end = uaddr + len;
  SharedLocker g(map_lock_);
  for (auto it = find_locked(addr); addr < end; ++it) {
    if (it == entries_.end() || !it->contains(addr) || (it->prot & need) == 0) return err(EFAULT);
    MapEntry& e = *it;
    uint64_t run_end = std::min(end, e.end);
    bool more;
    if (e.layer)
      more = TRY(kWrite ? write_private(e, addr, run_end, op, done) : read_private(e, addr, run_end, op, done));
    else
      more = TRY(kWrite ? write_object(*e.object, e.object_offset, e.start, addr, run_end, op, done)
                        : read_object(*e.object, e.object_offset, e.start, addr, run_end, op, done));
    if (!more) return false;
  }
  return true;
}

Result<void> Vmspace::copyin(uint64_t uaddr, void* kaddr, size_t len, size_t* done_out) {
  auto* k = static_cast<std::byte*>(kaddr);
  size_t done = 0;
  auto op = [k, &done](std::byte* user, size_t n, size_t&) {
    std::memcpy(k + done, user, n);
    return true;
  };
  Result<bool> r = copy_loop<false>(uaddr, len, op, done);
  if (done_out) *done_out = done;
  return r.ok() ? Result<void>() : err(r.error());
}

Result<void> Vmspace::copyout(const void* kaddr, uint64_t uaddr, size_t len, size_t* done_out) {
  const auto* k = static_cast<const std::byte*>(kaddr);
  size_t done = 0;
  auto op = [k, &done](std::byte* user, size_t n, size_t&) {
    std::memcpy(user, k + done, n);
    return true;
  };
  Result<bool> r = copy_loop<true>(uaddr, len, op, done);
  if (done_out) *done_out = done;
  return r.ok() ? Result<void>() : err(r.error());
}

Result<size_t> Vmspace::copyinstr(uint64_t uaddr, char* kaddr, size_t maxlen) {
  if (maxlen == 0) return err(ENAMETOOLONG);
  if (uaddr < min_ || uaddr >= max_) return err(EFAULT);
  // Only the bytes up to the end of the user range can be read.
  size_t len = std::min<uint64_t>(maxlen, max_ - uaddr);
  auto* k = reinterpret_cast<std::byte*>(kaddr);
  size_t done = 0;
  auto op = [k, &done](std::byte* user, size_t n, size_t& used) {
    const void* nul = std::memchr(user, 0, n);
    if (nul != nullptr) used = static_cast<size_t>(static_cast<const std::byte*>(nul) - user) + 1;
    std::memcpy(k + done, user, used);
    return nul == nullptr;
  };
  bool more = TRY(copy_loop<false>(uaddr, len, op, done));
  if (!more) return done;
  return err(len < maxlen ? EFAULT : ENAMETOOLONG);
}

Result<size_t> Vmspace::copyoutstr(const char* kaddr, uint64_t uaddr, size_t maxlen) {
  if (maxlen == 0) return err(ENAMETOOLONG);
  size_t n = strnlen(kaddr, maxlen);
  size_t len = n < maxlen ? n + 1 : maxlen;
  TRY(copyout(kaddr, uaddr, len));
  if (n == maxlen) return err(ENAMETOOLONG);
  return len;
}

Result<void> Vmspace::with_word(uint64_t uaddr, bool write, absl::FunctionRef<void(uint32_t*)> fn) {
  if (uaddr % sizeof(uint32_t) != 0) return err(EINVAL);
  size_t done = 0;
  auto op = [&fn](std::byte* user, size_t, size_t&) {
    fn(reinterpret_cast<uint32_t*>(user));
    return true;
  };
  Result<bool> r = write ? copy_loop<true>(uaddr, sizeof(uint32_t), op, done)
                         : copy_loop<false>(uaddr, sizeof(uint32_t), op, done);
  return r.ok() ? Result<void>() : err(r.error());
}

Result<Vmspace::Backing> Vmspace::backing(uint64_t uaddr) {
  if (uaddr < min_ || uaddr >= max_) return err(EFAULT);
  SharedLocker g(map_lock_);
  auto it = find_locked(uaddr);
  if (it == entries_.end()) return err(EFAULT);
  if (!it->shared || !it->object) return Backing{nullptr, 0};
  return Backing{it->object.get(), it->object_offset + (uaddr - it->start)};
}

Result<size_t> Vmspace::pread(uint64_t uaddr, void* buf, size_t len) {
  size_t done = 0;
  Result<void> r = copyin(uaddr, buf, len, &done);
  if (!r.ok() && done == 0) return err(r.error());
  return done;
}

Result<size_t> Vmspace::pwrite(uint64_t uaddr, const void* buf, size_t len) {
  size_t done = 0;
  Result<void> r = copyout(buf, uaddr, len, &done);
  if (!r.ok() && done == 0) return err(r.error());
  return done;
}

}  // namespace rump::vm
