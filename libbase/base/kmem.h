// kmem.h: counted kernel memory.
//
// Every byte a kernel (or a Vmspace) allocates comes from a Kmem arena that
// sits on rumpuser_malloc and counts what is in use, enforces a limit
// (RUMP_MEMLIMIT) and lets halt check that everything came back. Each block
// carries a 16-byte header naming its arena, so frees need no context.
//
//   * Objects derive from KObject and are made with `new (kmem) T(...)`;
//     `delete p` returns the memory to the arena it came from.
//   * Standard and absl containers take KAllocator<T>(kmem).
#pragma once

#include <rump/rumpuser.h>
#include <rump/rumpuser_hostmap.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "base/block_cache.h"
#include "base/chunk_cache.h"

namespace rump {

class Kmem {
 public:
  // limit 0 means unlimited.
  explicit Kmem(size_t limit = 0) : limit_(limit) {}
  Kmem(const Kmem&) = delete;
  Kmem& operator=(const Kmem&) = delete;
  // Cached frame chunks and blocks go back to the host here (a kernel's
  // halt).
  ~Kmem() {
    drop_cache(chunks_);
    drop_cache(shared_chunks_);
    drop_cache(blocks_);
  }

  // Returns nullptr when the limit would be exceeded or the host is out.
  void* alloc(size_t size) {
    size_t total = size + kHeader;
    size_t now = in_use_.fetch_add(total, std::memory_order_relaxed) + total;
    if (limit_ != 0 && now > limit_) {
      in_use_.fetch_sub(total, std::memory_order_relaxed);
      return nullptr;
    }
    void* mem = nullptr;
    if (BlockCache::cacheable(total)) {
      if (BlockCache* b = blocks_.load(std::memory_order_acquire)) mem = b->pop(total);
    }
    if (mem == nullptr && rumpuser_malloc(total, kHeader, &mem) != 0) {
      in_use_.fetch_sub(total, std::memory_order_relaxed);
      return nullptr;
    }
    auto* h = static_cast<Header*>(mem);
    h->arena = this;
    h->size = total;
    allocs_.fetch_add(1, std::memory_order_relaxed);
    return static_cast<char*>(mem) + kHeader;
  }

  void* zalloc(size_t size) {
    void* p = alloc(size);
    if (p) __builtin_memset(p, 0, size);
    return p;
  }

  // Frees a block from any arena: to the arena's block cache (see
  // block_cache.h) while its bounds allow, else to the host.
  static void free(void* p) {
    if (!p) return;
    auto* h = reinterpret_cast<Header*>(static_cast<char*>(p) - kHeader);
    Kmem* a = h->arena;
    size_t total = h->size;
    size_t now = a->in_use_.fetch_sub(total, std::memory_order_relaxed) - total;
    a->allocs_.fetch_sub(1, std::memory_order_relaxed);
    if (BlockCache::cacheable(total)) {
      size_t room = BlockCache::kMaxBytes;
      if (a->limit_ != 0) room = now < a->limit_ ? a->limit_ - now : 0;
      BlockCache* b = room < total ? nullptr : a->block_cache();
      if (b != nullptr && b->push(h, total, room)) return;
    }
    rumpuser_free(h, total);
  }

  static Kmem* arena_of(const void* p) {
    return reinterpret_cast<const Header*>(static_cast<const char*>(p) - kHeader)->arena;
  }

  size_t in_use() const { return in_use_.load(std::memory_order_relaxed); }
  size_t live_allocations() const { return allocs_.load(std::memory_order_relaxed); }
  size_t limit() const { return limit_; }
  void set_limit(size_t limit) { limit_ = limit; }

  // Pages that are not kernel heap (user memory, page caches) are charged
  // here too so the limit covers them.
  bool charge(size_t bytes) {
    size_t now = in_use_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    if (limit_ != 0 && now > limit_) {
      in_use_.fetch_sub(bytes, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void uncharge(size_t bytes) { in_use_.fetch_sub(bytes, std::memory_order_relaxed); }

  // Host memory for user-page frames (chunk_cache.h): kChunkBytes, page
  // aligned, charged to nobody (the caller charges each frame it hands
  // out). *fresh says whether it comes straight from the host, all zero.
  // shared: memory a host mapping can alias (rumpuser_shmmap, for file
  // caches), cached apart from private chunks. Null when the host has no
  // memory.
  void* take_chunk(bool* fresh, bool shared = false) {
    if (ChunkCache* c = (shared ? shared_chunks_ : chunks_).load(std::memory_order_acquire)) {
      if (void* p = c->pop()) {
        *fresh = false;
        return p;
      }
    }
    void* p = nullptr;
    int e = shared ? rumpuser_shmmap(ChunkCache::kChunkBytes, &p)
                   : rumpuser_anonmmap(nullptr, ChunkCache::kChunkBytes, 0, 0, &p);
    if (e != 0) return nullptr;
    *fresh = true;
    return p;
  }
  // A chunk whose frames are all free: cached while the bounds allow (with
  // a limit, the cached chunks of both kinds and in_use() together stay
  // within it), else back to the host.
  void give_chunk(void* p, bool shared = false) {
    size_t room = ChunkCache::kMaxCached;
    if (limit_ != 0) {
      size_t used = in_use();
      size_t spare = used < limit_ ? (limit_ - used) / ChunkCache::kChunkBytes : 0;
      ChunkCache* other = (shared ? chunks_ : shared_chunks_).load(std::memory_order_acquire);
      size_t held = other == nullptr ? 0 : other->cached();
      spare = spare > held ? spare - held : 0;
      if (spare < room) room = spare;
    }
    ChunkCache* c = room == 0 ? nullptr : lazy_cache(shared ? shared_chunks_ : chunks_);
    if (c == nullptr || !c->push(p, room)) rumpuser_unmap(p, ChunkCache::kChunkBytes);
  }
  // Bytes of freed blocks waiting in the block cache (tests).
  size_t cached_block_bytes() const {
    BlockCache* b = blocks_.load(std::memory_order_acquire);
    return b == nullptr ? 0 : b->cached_bytes();
  }

  // Chunks waiting in the cache (tests).
  size_t cached_chunks() const {
    ChunkCache* c = chunks_.load(std::memory_order_acquire);
    return c == nullptr ? 0 : c->cached();
  }

  static constexpr size_t kHeader = 16;

 private:
  struct Header {
    Kmem* arena;
    size_t size;
  };
  // A cache made when first needed (the chunk cache when the first chunk
  // comes back, the block cache when the first cacheable block is freed);
  // it stays until the Kmem goes. Its few bytes are host bookkeeping,
  // charged to nobody. nullptr if the host has no memory for it.
  template <class Cache>
  static Cache* lazy_cache(std::atomic<Cache*>& slot) {
    Cache* c = slot.load(std::memory_order_acquire);
    if (c != nullptr) return c;
    void* mem = nullptr;
    if (rumpuser_malloc(sizeof(Cache), alignof(Cache), &mem) != 0) return nullptr;
    Cache* mine = new (mem) Cache();
    if (slot.compare_exchange_strong(c, mine, std::memory_order_acq_rel, std::memory_order_acquire)) return mine;
    mine->~Cache();
    rumpuser_free(mem, sizeof(Cache));
    return c;
  }
  template <class Cache>
  static void drop_cache(std::atomic<Cache*>& slot) {
    if (Cache* c = slot.load(std::memory_order_acquire)) {
      c->~Cache();
      rumpuser_free(c, sizeof(Cache));
    }
  }
  ChunkCache* chunk_cache() { return lazy_cache(chunks_); }
  BlockCache* block_cache() { return lazy_cache(blocks_); }

  std::atomic<size_t> in_use_{0};
  std::atomic<size_t> allocs_{0};
  size_t limit_;
  std::atomic<ChunkCache*> chunks_{nullptr};
  std::atomic<ChunkCache*> shared_chunks_{nullptr};
  std::atomic<BlockCache*> blocks_{nullptr};
};

// Base for kernel objects: `new (kmem) T(...)` allocates from that arena.
// Allocation failure throws nothing: create() functions check for nullptr
// (operator new is noexcept, so a failed new yields nullptr).
struct KObject {
  static void* operator new(size_t size, Kmem& kmem) noexcept { return kmem.alloc(size); }
  static void operator delete(void* p) noexcept { Kmem::free(p); }
  static void operator delete(void* p, Kmem&) noexcept { Kmem::free(p); }
  static void* operator new(size_t) = delete;
};

// Allocator adaptor so containers count their memory against a kernel.
// A container allocation that fails is a broken invariant of its caller:
// kernel code reserves before it publishes anything, or uses an intrusive
// structure (IntrusiveHash, Boost.Intrusive) whose insert never allocates.
// So a failure here is reported the way a kernel panic is (this header sits
// below the kernel and cannot call panic()), and nothing is thrown: the
// kernel is built with -fno-exceptions.
[[noreturn]] inline void kallocator_exhausted(size_t bytes) {
  rumpuser_dprintf("rump kernel panic: container allocation of %zu bytes failed "
                   "(a caller did not reserve)\n", bytes);
  rumpuser_exit(RUMPUSER_PANIC);
  __builtin_unreachable();
}

template <class T>
class KAllocator {
 public:
  using value_type = T;
  explicit KAllocator(Kmem& k) noexcept : kmem_(&k) {}
  template <class U>
  KAllocator(const KAllocator<U>& o) noexcept : kmem_(o.kmem()) {}  // NOLINT(implicit)
  T* allocate(size_t n) {
    void* p = kmem_->alloc(n * sizeof(T));
    if (__builtin_expect(p == nullptr, 0)) kallocator_exhausted(n * sizeof(T));
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) noexcept { Kmem::free(p); }
  Kmem* kmem() const { return kmem_; }
  template <class U>
  bool operator==(const KAllocator<U>& o) const { return kmem_ == o.kmem(); }

 private:
  Kmem* kmem_;
};

}  // namespace rump
