// vnode_pager.cc: the page cache of mapped regular files, and the mmap hook
// that hands it to the vm faction (see vnode_pager.h).
#include "vfs/vnode_pager.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "kern/file_map.h"
#include "kern/kernel.h"
#include "vfs/file.h"
#include "vfs/vfs.h"

namespace rump {

VnodePager::VnodePager(Kmem& kmem, Vnode& vp) : VmObject(kmem, kUnbounded, false), vp_(vp) {}

VnodePager::~VnodePager() {
  {
    MutexLocker g(vp_->lock());
    // A new cache may have replaced this one while its count was zero.
    if (vp_->pager_ == this) vp_->pager_ = nullptr;
  }
  mount_unuse(*vp_);
}

Result<RefPtr<vm::VmObject>> VnodePager::get(Vnode& vp) {
  Kmem& kmem = vp.mount().kernel().kmem();
  MutexLocker g(vp.lock());
  if (vp.pager_ != nullptr && vp.pager_->try_ref()) return RefPtr<vm::VmObject>(kAdopt, vp.pager_);
  auto* p = new (kmem) VnodePager(kmem, vp);
  if (p == nullptr) return err(ENOMEM);
  vp.pager_ = p;
  mount_use(vp);
  return RefPtr<vm::VmObject>(kAdopt, p);
}

RefPtr<VnodePager> VnodePager::find_locked(Vnode& vp) {
  if (vp.pager_ != nullptr && vp.pager_->try_ref()) return RefPtr<VnodePager>(kAdopt, vp.pager_);
  return nullptr;
}

Result<void> VnodePager::fill_page(uint64_t offset, std::byte* frame) {
  Vnode& vp = *vp_;
  MutexLocker g(vp.lock());
  Vattr va;
  vp.getattr(va);
  // A page wholly past the end: nothing backs it (SIGBUS).
  if (offset >= va.size) return err(kBusFault);
  size_t want = static_cast<size_t>(std::min<uint64_t>(vm::kPageSize, va.size - offset));
  size_t got = 0;
  while (got < want) {
    Result<size_t> r = vp.read(frame + got, want - got, offset + got);
    if (!r.ok()) return err(kBusFault);
    if (r.value() == 0) break;  // a hole the file system reports short
    got += r.value();
  }
  return {};
}

void VnodePager::page_written(uint64_t offset, size_t len) {
  lock().assert_held();
  vm::Page* p = lookup_locked(offset >> vm::kPageShift);
  if (p == nullptr || len == 0) return;
  Vnode& vp = *vp_;
  MutexLocker g(vp.lock());
  Vattr va;
  vp.getattr(va);
  // Bytes past the end of the file stay in the page only, as on Linux.
  if (offset >= va.size) return;
  size_t n = static_cast<size_t>(std::min<uint64_t>(len, va.size - offset));
  Result<size_t> w = vp.write(p->data() + (offset & vm::kPageMask), n, offset);
  if (!w.ok() || w.value() != n) {
    int e = w.ok() ? EIO : w.error();
    int none = 0;
    write_error_.compare_exchange_strong(none, e, std::memory_order_relaxed);
  }
}

Result<void> VnodePager::sync(uint64_t offset, uint64_t len, int flags) {
  // Stores were written through already: MS_SYNC makes them durable,
  // MS_INVALIDATE drops the (clean) pages so that the next touch rereads.
  if (flags & MS_INVALIDATE) invalidate(offset, len);
  if (flags & MS_SYNC) {
    MutexLocker g(vp_->lock());
    TRY(vp_->fsync());
  }
  if (int e = write_error_.exchange(0, std::memory_order_relaxed)) return err(e);
  return {};
}

void VnodePager::invalidate(uint64_t off, uint64_t len) {
  if (len == 0) return;
  uint64_t first = off >> vm::kPageShift;
  uint64_t count = len >= kToEnd - off ? (kToEnd >> vm::kPageShift) - first + 1
                                       : ((off + len + vm::kPageMask) >> vm::kPageShift) - first;
  drop_range(first, count);
}

namespace {

// mmap(2) of a descriptor, Linux's checks in Linux's order: EBADF, ENODEV
// for what has no pages (directories, pipes, sockets), EACCES for a file
// not open for reading, or a shared writable mapping of a file not open
// for writing or open for appending; EPERM for a shared writable mapping
// of a memfd sealed against writes, and for PROT_EXEC on a noexec mount.
Result<RefPtr<vm::VmObject>> vnode_mmap(Lwp& l, int fd, int prot, int flags, int* max_prot) {
  Ref<File> f = TRY(fd_get(l, fd));
  Vnode* vp = f->vnode();
  if (vp == nullptr || vp->type() != VType::kReg) return err(ENODEV);
  if (!f->readable()) return err(EACCES);
  int most = PROT_READ | PROT_WRITE | PROT_EXEC;
  if ((flags & MAP_TYPE) != MAP_PRIVATE) {
    if ((prot & PROT_WRITE) && !f->writable()) return err(EACCES);
    if ((prot & PROT_WRITE) && (f->flags() & O_APPEND)) return err(EACCES);
    if (!f->writable()) most &= ~PROT_WRITE;
    if (seals_deny_shared_write(*vp)) {
      if (prot & PROT_WRITE) return err(EPERM);
      most &= ~PROT_WRITE;
    }
  }
  if (vp->mount().flags_.load(std::memory_order_relaxed) & MS_NOEXEC) {
    if (prot & PROT_EXEC) return err(EPERM);
    most &= ~PROT_EXEC;
  }
  *max_prot = most;
  return VnodePager::get(*vp);
}

struct HookRegistrar {
  HookRegistrar() { set_mmap_file_hook(&vnode_mmap); }
} g_hook_registrar;

}  // namespace

}  // namespace rump
