// Debug-build check of the lock order (see lock_rank.h).
#include "sync/lock_rank.h"

#ifndef NDEBUG
#include <rump/rumpuser.h>

namespace rump {
namespace {
// Per host thread: the ranks it holds, in acquisition order. A thread holds
// few locks at once; past 32 nesting levels the check stops recording.
struct HeldRanks {
  LockRank stack[32];
  int depth = 0;
};
thread_local HeldRanks held;
}  // namespace

void lock_rank_acquire(LockRank r) {
  if (r == LockRank::kNone) return;
  for (int i = 0; i < held.depth && i < 32; i++) {
    if (held.stack[i] >= r) {
      rumpuser_dprintf("lock order violation: taking rank %d while holding rank %d\n",
                       static_cast<int>(r), static_cast<int>(held.stack[i]));
      rumpuser_exit(RUMPUSER_PANIC);
    }
  }
  if (held.depth < 32) held.stack[held.depth] = r;
  held.depth++;
}

void lock_rank_release(LockRank r) {
  if (r == LockRank::kNone) return;
  // Locks are usually released in reverse order, but not always.
  int n = held.depth < 32 ? held.depth : 32;
  for (int i = n - 1; i >= 0; i--) {
    if (held.stack[i] == r) {
      for (int j = i; j + 1 < n; j++) held.stack[j] = held.stack[j + 1];
      break;
    }
  }
  held.depth--;
}

}  // namespace rump
#endif
