// page.cc: allocation and release of page frames (see page.h).
#include "page.h"

#include <cerrno>
#include <cstring>
#include <new>

#include <rump/rumpuser.h>

namespace rump::vm {

void FrameChunk::put() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  rumpuser_free(base_, kChunkPages * kPageSize);
  // Chunk headers live in host memory next to nothing of the kernel's: they
  // are bookkeeping of frames, charged with them.
  this->~FrameChunk();
  rumpuser_free(this, sizeof(FrameChunk));
}

Result<Page*> Page::alloc_raw(Kmem& kmem, FrameChunk** chunkp) {
  if (!kmem.charge(kPageSize)) return err(ENOMEM);
  std::byte* frame = nullptr;
  FrameChunk* chunk = nullptr;
  if (chunkp != nullptr) {
    chunk = *chunkp;
    if (chunk == nullptr || chunk->next_ == FrameChunk::kChunkPages) {
      void* base = nullptr;
      void* mem = nullptr;
      if (rumpuser_malloc(FrameChunk::kChunkPages * kPageSize, static_cast<int>(kPageSize), &base) != 0) {
        kmem.uncharge(kPageSize);
        return err(ENOMEM);
      }
      if (rumpuser_malloc(sizeof(FrameChunk), 0, &mem) != 0) {
        rumpuser_free(base, FrameChunk::kChunkPages * kPageSize);
        kmem.uncharge(kPageSize);
        return err(ENOMEM);
      }
      FrameChunk::drop_owner(chunk);
      chunk = new (mem) FrameChunk(static_cast<std::byte*>(base));
      *chunkp = chunk;
    }
    frame = chunk->base_ + chunk->next_ * kPageSize;
  } else {
    void* mem = nullptr;
    if (rumpuser_malloc(kPageSize, static_cast<int>(kPageSize), &mem) != 0) {
      kmem.uncharge(kPageSize);
      return err(ENOMEM);
    }
    frame = static_cast<std::byte*>(mem);
  }
  Page* p = new (kmem) Page(kmem, frame, chunk);
  if (p == nullptr) {
    if (chunk == nullptr) rumpuser_free(frame, kPageSize);
    kmem.uncharge(kPageSize);
    return err(ENOMEM);
  }
  if (chunk != nullptr) {
    chunk->next_++;
    chunk->refs_.fetch_add(1, std::memory_order_relaxed);
  }
  return p;
}

Result<Page*> Page::alloc_zeroed(Kmem& kmem, FrameChunk** chunk) {
  Page* p = TRY(alloc_raw(kmem, chunk));
  std::memset(p->frame_, 0, kPageSize);
  return p;
}

Result<Page*> Page::alloc_copy(Kmem& kmem, const Page& src, FrameChunk** chunk) {
  Page* p = TRY(alloc_raw(kmem, chunk));
  std::memcpy(p->frame_, src.frame_, kPageSize);
  return p;
}

Result<Page*> Page::wrap_external(Kmem& kmem, std::byte* frame) {
  Page* p = new (kmem) Page(kmem, frame, nullptr, true);
  if (!p) return err(ENOMEM);
  return p;
}

void Page::release() {
  if (shares_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (external_) {
    delete this;
    return;
  }
  Kmem* kmem = kmem_;
  if (chunk_ != nullptr)
    chunk_->put();
  else
    rumpuser_free(frame_, kPageSize);
  kmem->uncharge(kPageSize);
  delete this;
}

}  // namespace rump::vm
