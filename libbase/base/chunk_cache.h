// chunk_cache.h: host memory for user-page frames, in chunks mapped through
// rumpuser_anonmmap, with a bounded cache of free chunks per Kmem.
//
// Why not rumpuser_malloc: frames freed to the C library's heap are given
// back to the host by its heap trimming and fault in again when the heap
// hands them out next, so a space that maps, touches and unmaps memory in a
// loop paid a host page fault per reused page. Chunks here never touch that
// heap: a freed chunk waits on a free list and is handed out again as it is,
// resident.
//
// Bounds: at most kMaxCached chunks wait, and with a memory limit, never
// more than the limit leaves unused (in_use + cached <= limit), so a kernel
// never holds more host memory than its limit allows; whatever does not fit
// goes back to the host at once. The cache is empty until the first chunk
// comes back (a kernel that never touches user memory pays one pointer),
// and everything in it goes back to the host when the owning Kmem is
// destroyed (kernel halt).
//
// Accounting: a cached chunk is charged to nobody. Frames are charged to
// the Kmem one by one as they are handed out (libvmspace/page.cc), so the
// limit counts exactly the frames in use, as before.
//
// Who calls this: Kmem (kmem.h), for libvmspace's FrameChunk.
#pragma once

#include <rump/rumpuser.h>

#include <cstddef>

#include "absl/base/thread_annotations.h"
#include "sync/mutex.h"

namespace rump {

class ChunkCache {
 public:
  // 16 frames of 4 KiB: libvmspace's FrameChunk::kChunkPages * kPageSize.
  static constexpr size_t kChunkBytes = 64 * 1024;
  static constexpr size_t kMaxCached = 256;  // 16 MiB

  ChunkCache() = default;
  ChunkCache(const ChunkCache&) = delete;
  ChunkCache& operator=(const ChunkCache&) = delete;
  ~ChunkCache() {
    Free* f = head_;
    while (f != nullptr) {
      Free* next = f->next;
      rumpuser_unmap(f, kChunkBytes);
      f = next;
    }
  }

  // A cached chunk, or null when none waits.
  void* pop() {
    SpinLocker g(lock_);
    Free* f = head_;
    if (f == nullptr) return nullptr;
    head_ = f->next;
    count_--;
    return f;
  }

  // Keeps c if fewer than `room` chunks wait (room <= kMaxCached, set by
  // the owner's limit); false: the caller gives it back to the host.
  bool push(void* c, size_t room) {
    SpinLocker g(lock_);
    if (count_ >= room || count_ >= kMaxCached) return false;
    Free* f = static_cast<Free*>(c);
    f->next = head_;
    head_ = f;
    count_++;
    return true;
  }

  size_t cached() {
    SpinLocker g(lock_);
    return count_;
  }

 private:
  struct Free {
    Free* next;
  };
  // Innermost: taken when a frame is allocated or freed, under any of the
  // vm locks; nothing is called with it held.
  SpinLock lock_{LockRank::kKmem};
  Free* head_ ABSL_GUARDED_BY(lock_) = nullptr;
  size_t count_ ABSL_GUARDED_BY(lock_) = 0;
};

}  // namespace rump
