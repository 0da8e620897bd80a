// block_cache.h: a bounded per-Kmem cache of freed heap blocks, so that
// objects made and freed in a loop (a TCP connection's control blocks,
// sockets, files: the same few sizes over and over) do not go to the C
// library's heap each time.
//
// Why: blocks of a kilobyte and more are beyond the C library's per-thread
// cache; each malloc and free of them takes the heap's lock and walks its
// bins (15% of a connect+accept+close loop went there). A freed block here
// waits on a free list of blocks of exactly its size and is handed out
// again as it is.
//
// Sizes: blocks (with Kmem's header) from kMinBlock to kMaxBlock bytes.
// Smaller ones are as fast in the C library's per-thread cache; larger
// ones are buffers whose sizes vary. kSlots lists, each holding blocks of
// one size (a list that empties can take another size); a size is looked
// for in two neighbouring slots, and a block whose size finds no slot goes
// back to the host.
//
// Bounds: at most kMaxPerSlot blocks per size and kMaxBytes in all, and
// with a memory limit never more than the limit leaves unused (in_use +
// cached <= limit, as for ChunkCache), so a kernel never holds more host
// memory than its limit allows and a cached block never makes an
// allocation fail.
//
// Accounting: a cached block is charged to nobody: Kmem uncharges a block
// when it is freed and charges it again, with the same limit check, when
// it hands it out (so in_use(), the leak check at halt and ENOMEM are
// exactly as without the cache). Everything cached goes back to the host
// when the owning Kmem is destroyed (kernel halt).
//
// Sanitizers: under ASan a cached block is poisoned, so a use after free
// is still reported.
//
// Who calls this: Kmem (kmem.h) only.
#pragma once

#include <rump/rumpuser.h>

#include <cstddef>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "sync/mutex.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RUMP_BLOCK_CACHE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define RUMP_BLOCK_CACHE_ASAN 1
#endif
#ifdef RUMP_BLOCK_CACHE_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace rump {

class BlockCache {
 public:
  static constexpr size_t kMinBlock = 512;
  static constexpr size_t kMaxBlock = 16 * 1024;
  static constexpr int kSlots = 32;
  static constexpr int kMaxPerSlot = 32;
  static constexpr size_t kMaxBytes = 1024 * 1024;

  static bool cacheable(size_t bytes) { return bytes >= kMinBlock && bytes <= kMaxBlock; }

  BlockCache() = default;
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;
  ~BlockCache() {
    SpinLocker g(lock_);
    for (Slot& s : slots_) {
      while (Free* f = s.head) {
        unpoison(f, s.size);
        s.head = f->next;
        rumpuser_free(f, s.size);
      }
      s.count = 0;
    }
    bytes_ = 0;
  }

  // A cached block of exactly `bytes` bytes, or null.
  void* pop(size_t bytes) {
    SpinLocker g(lock_);
    for (int i = 0; i < 2; i++) {
      Slot& s = slots_[index(bytes, i)];
      if (s.size != bytes || s.head == nullptr) continue;
      Free* f = s.head;
      unpoison(f, bytes);
      s.head = f->next;
      s.count--;
      bytes_ -= bytes;
      return f;
    }
    return nullptr;
  }

  // Keeps block (of `bytes` bytes, cacheable()) if the bounds allow and
  // cached bytes stay within room; false: the caller frees it to the host.
  bool push(void* block, size_t bytes, size_t room) {
    SpinLocker g(lock_);
    if (bytes_ + bytes > kMaxBytes || bytes_ + bytes > room) return false;
    // The slot already holding this size, else an empty one: one list per
    // size, so the per-size bound holds.
    Slot* to = nullptr;
    for (int i = 0; i < 2; i++) {
      Slot& s = slots_[index(bytes, i)];
      if (s.head != nullptr && s.size == bytes) {
        to = &s;
        break;
      }
      if (s.head == nullptr && to == nullptr) to = &s;
    }
    if (to == nullptr || to->count >= kMaxPerSlot) return false;
    auto* f = static_cast<Free*>(block);
    to->size = bytes;
    f->next = to->head;
    to->head = f;
    to->count++;
    bytes_ += bytes;
    poison(f, bytes);
    return true;
  }

  // Bytes waiting in the cache (tests).
  size_t cached_bytes() {
    SpinLocker g(lock_);
    return bytes_;
  }

 private:
  struct Free {
    Free* next;
  };
  struct Slot {
    size_t size = 0;
    Free* head = nullptr;
    int count = 0;
  };
  static int index(size_t bytes, int probe) {
    // Kmem's blocks are multiples of 8 bytes; spread neighbouring sizes.
    size_t h = (bytes >> 3) * 0x9e3779b1u;
    return static_cast<int>(((h >> 16) + static_cast<size_t>(probe)) % kSlots);
  }
  // The list link stays readable: only the bytes after it are poisoned.
  static void poison(Free* f, size_t bytes) {
#ifdef RUMP_BLOCK_CACHE_ASAN
    ASAN_POISON_MEMORY_REGION(reinterpret_cast<char*>(f) + sizeof(Free), bytes - sizeof(Free));
#else
    (void)f;
    (void)bytes;
#endif
  }
  static void unpoison(Free* f, size_t bytes) {
#ifdef RUMP_BLOCK_CACHE_ASAN
    ASAN_UNPOISON_MEMORY_REGION(reinterpret_cast<char*>(f) + sizeof(Free), bytes - sizeof(Free));
#else
    (void)f;
    (void)bytes;
#endif
  }

  // Innermost: taken inside Kmem::alloc and Kmem::free, under any lock;
  // nothing is called with it held.
  SpinLock lock_{LockRank::kKmemBlocks};
  Slot slots_[kSlots] ABSL_GUARDED_BY(lock_);
  size_t bytes_ ABSL_GUARDED_BY(lock_) = 0;
};

}  // namespace rump
