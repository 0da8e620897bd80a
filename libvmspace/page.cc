// page.cc: allocation and release of page frames (see page.h).
#include "page.h"

#include <cerrno>
#include <cstring>
#include <new>

#include <rump/rumpuser.h>

namespace rump::vm {

void FrameChunk::put() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  kmem_->give_chunk(base_, shared_);
  // Chunk headers live in host memory next to nothing of the kernel's: they
  // are bookkeeping of frames, charged with them.
  this->~FrameChunk();
  rumpuser_free(this, sizeof(FrameChunk));
}

// From the kernel's chunk cache or the host; nothing is kept on failure.
FrameChunk* Page::new_chunk(Kmem& kmem, bool shared) {
  bool fresh = false;
  void* base = kmem.take_chunk(&fresh, shared);
  if (base == nullptr) return nullptr;
  void* mem = nullptr;
  if (rumpuser_malloc(sizeof(FrameChunk), 0, &mem) != 0) {
    kmem.give_chunk(base, shared);
    return nullptr;
  }
  return new (mem) FrameChunk(kmem, static_cast<std::byte*>(base), fresh, shared);
}

Result<Page*> Page::alloc_raw(Kmem& kmem, FrameChunk** chunkp, bool* zero, bool shared) {
  *zero = false;
  if (!kmem.charge(kPageSize)) return err(ENOMEM);
  std::byte* frame = nullptr;
  FrameChunk* chunk = nullptr;
  if (chunkp != nullptr) {
    chunk = *chunkp;
    if (chunk == nullptr || chunk->next_ == FrameChunk::kChunkPages) {
      FrameChunk* fresh_chunk = new_chunk(kmem, shared);
      if (fresh_chunk == nullptr) {
        kmem.uncharge(kPageSize);
        return err(ENOMEM);
      }
      FrameChunk::drop_owner(chunk);
      chunk = fresh_chunk;
      *chunkp = chunk;
    }
    frame = chunk->base_ + chunk->next_ * kPageSize;
    *zero = chunk->fresh_;
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

Result<Page*> Page::alloc_zeroed(Kmem& kmem, FrameChunk** chunk, bool shared) {
  bool zero = false;
  Page* p = TRY(alloc_raw(kmem, chunk, &zero, shared));
  // A fresh chunk's frames are zero already; writing them here would only
  // take the host's page fault earlier.
  if (!zero) std::memset(p->frame_, 0, kPageSize);
  return p;
}

Result<Page*> Page::alloc_pooled(Kmem& kmem, FramePool& pool) {
  if (!kmem.charge(kPageSize)) return err(ENOMEM);
  std::byte* frame = nullptr;
  FrameChunk* chunk = nullptr;
  bool zero = false;
  for (;;) {
    {
      SpinLocker g(pool.lock_);
      FrameChunk* c = pool.cur_;
      if (c != nullptr && c->next_ < FrameChunk::kChunkPages) {
        frame = c->base_ + c->next_ * kPageSize;
        c->next_++;
        c->refs_.fetch_add(1, std::memory_order_relaxed);
        zero = c->fresh_;
        chunk = c;
        break;
      }
    }
    // The current chunk is used up: a new one, made without the lock (a
    // racing allocation may install its own meanwhile; the older one is
    // let go of, its unused frames with it).
    FrameChunk* fresh_chunk = new_chunk(kmem, true);
    if (fresh_chunk == nullptr) {
      kmem.uncharge(kPageSize);
      return err(ENOMEM);
    }
    FrameChunk* old = nullptr;
    {
      SpinLocker g(pool.lock_);
      old = pool.cur_;
      pool.cur_ = fresh_chunk;
    }
    FrameChunk::drop_owner(old);
  }
  Page* p = new (kmem) Page(kmem, frame, chunk);
  if (p == nullptr) {
    chunk->put();
    kmem.uncharge(kPageSize);
    return err(ENOMEM);
  }
  if (!zero) std::memset(frame, 0, kPageSize);
  return p;
}

Result<Page*> Page::alloc_copy(Kmem& kmem, const Page& src, FrameChunk** chunk) {
  bool zero = false;
  Page* p = TRY(alloc_raw(kmem, chunk, &zero, chunk != nullptr && *chunk != nullptr && (*chunk)->shared_));
  std::memcpy(p->frame_, src.frame_, kPageSize);
  return p;
}

bool Page::aliasable() const { return chunk_ != nullptr && chunk_->shared_; }

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
  // Uncharged first: a chunk that goes back to the cache finds the room
  // this frame leaves under the limit.
  kmem_->uncharge(kPageSize);
  if (chunk_ != nullptr)
    chunk_->put();
  else
    rumpuser_free(frame_, kPageSize);
  delete this;
}

}  // namespace rump::vm
