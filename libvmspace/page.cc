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

std::byte* FramePool::take_locked(FrameChunk* c, bool* zero) {
  uint32_t i = 0;
  if (c->next_ < FrameChunk::kChunkPages) {
    i = c->next_++;
    *zero = c->fresh_;
  } else {
    i = static_cast<uint32_t>(__builtin_ctz(c->free_));
    c->free_ &= c->free_ - 1;
    *zero = false;
  }
  c->live_++;
  return c->base_ + i * kPageSize;
}

void FramePool::list_locked(FrameChunk* c) {
  c->listed_ = true;
  c->prev_ = nullptr;
  c->next_room_ = room_;
  if (room_ != nullptr) room_->prev_ = c;
  room_ = c;
}

void FramePool::unlist_locked(FrameChunk* c) {
  c->listed_ = false;
  if (c->prev_ != nullptr)
    c->prev_->next_room_ = c->next_room_;
  else
    room_ = c->next_room_;
  if (c->next_room_ != nullptr) c->next_room_->prev_ = c->prev_;
  c->prev_ = c->next_room_ = nullptr;
}

// A chunk without frames alive that is not current goes back at once;
// one with frames alive waits on the list, when it is not there yet.
void FramePool::give_frame(FrameChunk* c, uint32_t i) {
  FrameChunk* gone = nullptr;
  bool last = false;
  {
    SpinLocker g(lock_);
    c->free_ |= uint32_t{1} << i;
    c->live_--;
    if (c != cur_) {
      if (c->live_ == 0) {
        if (c->listed_) unlist_locked(c);
        gone = c;
        chunks_--;
        last = retired_ && chunks_ == 0;
      } else if (!c->listed_ && !retired_) {
        list_locked(c);
      }
    }
  }
  if (gone != nullptr) gone->put();
  if (last) delete this;
}

void FramePool::last_unref() {
  FrameChunk* gone = nullptr;
  bool last = false;
  {
    SpinLocker g(lock_);
    retired_ = true;
    // No one allocates any more: chunks with frames alive stay until
    // their last frame goes (give_frame), the others go now.
    while (room_ != nullptr) unlist_locked(room_);
    if (cur_ != nullptr && cur_->live_ == 0) {
      gone = cur_;
      chunks_--;
    }
    cur_ = nullptr;
    last = chunks_ == 0;
  }
  if (gone != nullptr) gone->put();
  if (last) delete this;
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
      if (c == nullptr || !FramePool::has_room(c)) {
        // The current chunk is full: the first chunk with room becomes
        // current (the full one is listed again when a frame of it goes).
        c = pool.room_;
        if (c != nullptr) {
          pool.unlist_locked(c);
          pool.cur_ = c;
        }
      }
      if (c != nullptr) {
        frame = FramePool::take_locked(c, &zero);
        chunk = c;
        break;
      }
    }
    // Every chunk is full: a new one, made without the lock. A racing
    // allocation may have installed its own, or freed frames meanwhile;
    // the chunk it replaces waits on the list if it has room, or goes.
    FrameChunk* fresh_chunk = new_chunk(kmem, true);
    if (fresh_chunk == nullptr) {
      kmem.uncharge(kPageSize);
      return err(ENOMEM);
    }
    fresh_chunk->pool_ = &pool;
    FrameChunk* gone = nullptr;
    {
      SpinLocker g(pool.lock_);
      FrameChunk* old = pool.cur_;
      pool.cur_ = fresh_chunk;
      pool.chunks_++;
      if (old != nullptr) {
        if (old->live_ == 0) {
          gone = old;
          pool.chunks_--;
        } else if (FramePool::has_room(old)) {
          pool.list_locked(old);
        }
      }
    }
    if (gone != nullptr) gone->put();
  }
  Page* p = new (kmem) Page(kmem, frame, chunk);
  if (p == nullptr) {
    kmem.uncharge(kPageSize);
    pool.give_frame(chunk, chunk->index_of(frame));
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
  if (chunk_ != nullptr && chunk_->pool_ != nullptr)
    chunk_->pool_->give_frame(chunk_, chunk_->index_of(frame_));
  else if (chunk_ != nullptr)
    chunk_->put();
  else
    rumpuser_free(frame_, kPageSize);
  delete this;
}

}  // namespace rump::vm
