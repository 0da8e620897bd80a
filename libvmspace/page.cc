// page.cc: allocation and release of page frames (see page.h).
#include "page.h"

#include <cerrno>
#include <cstring>

#include <rump/rumpuser.h>

namespace rump::vm {

Result<Page*> Page::alloc_raw(Kmem& kmem) {
  if (!kmem.charge(kPageSize)) return err(ENOMEM);
  void* frame = nullptr;
  if (rumpuser_malloc(kPageSize, static_cast<int>(kPageSize), &frame) != 0) {
    kmem.uncharge(kPageSize);
    return err(ENOMEM);
  }
  Page* p = new (kmem) Page(kmem, static_cast<std::byte*>(frame));
  if (p == nullptr) {
    rumpuser_free(frame, kPageSize);
    kmem.uncharge(kPageSize);
    return err(ENOMEM);
  }
  return p;
}

Result<Page*> Page::alloc_zeroed(Kmem& kmem) {
  Page* p = TRY(alloc_raw(kmem));
  std::memset(p->frame_, 0, kPageSize);
  return p;
}

Result<Page*> Page::alloc_copy(Kmem& kmem, const Page& src) {
  Page* p = TRY(alloc_raw(kmem));
  std::memcpy(p->frame_, src.frame_, kPageSize);
  return p;
}

void Page::release() {
  if (shares_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  Kmem* kmem = kmem_;
  rumpuser_free(frame_, kPageSize);
  kmem->uncharge(kPageSize);
  delete this;
}

}  // namespace rump::vm
