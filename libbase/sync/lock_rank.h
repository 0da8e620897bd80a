// lock_rank.h: the lock order, written down once and checked in debug builds.
//
// Every kernel lock has a rank. A thread may take a lock only if its rank is
// greater than the rank of every lock it already holds (kNone locks are not
// checked: leaf locks private to one object). The debug check keeps a
// per-thread stack of held ranks; release builds compile it away.
#pragma once

#include <rump/rumpuser.h>

#include <cstdint>

namespace rump {

enum class LockRank : uint8_t {
  kNone = 0,
  // Process-wide structure, outermost first.
  kProcTree = 10,     // ProcTable's lock: pid table, parent/child links, pgrps
  kProc = 20,         // Proc::lock_: a process's LWPs, signals, exit state
  kVmspaceMap = 30,   // Vmspace map lock
  kVmObject = 40,     // VmObject page lock
  kMount = 50,
  kVnode = 60,
  kFileTable = 70,
  kFile = 80,
  kSigWatch = 85,     // the signal watchers (signalfd wait queues), kern/signal.h
  kNetlinkTable = 87, // InetState::nl_lock_ (netlink ports and groups); a notification takes socket locks under it
  kSocket = 90,
  kSysctl = 100,
  kCallout = 110,
  kCpu = 120,         // scheduler wait lock
  kMsgbuf = 130,
  kKmem = 140,
  kKmemBlocks = 150,  // Kmem's cache of freed blocks (base/block_cache.h): innermost
};

#ifndef NDEBUG
void lock_rank_violation(LockRank taking, LockRank held);

// Per host thread: the ranks it holds, in acquisition order. An inline
// variable, so every library of the program shares the one instance.
struct HeldRanks {
  static constexpr int kMax = 32;
  LockRank stack[kMax];
  int depth = 0;
};
inline thread_local HeldRanks t_held_ranks;

inline void lock_rank_acquire(LockRank r) {
  if (r == LockRank::kNone) return;
  HeldRanks& h = t_held_ranks;
  int n = h.depth < HeldRanks::kMax ? h.depth : HeldRanks::kMax;
  for (int i = 0; i < n; i++)
    if (h.stack[i] >= r) lock_rank_violation(r, h.stack[i]);
  if (h.depth < HeldRanks::kMax) h.stack[h.depth] = r;
  h.depth++;
}

inline void lock_rank_release(LockRank r) {
  if (r == LockRank::kNone) return;
  HeldRanks& h = t_held_ranks;
  // Usually the innermost, but locks may be released out of order.
  int n = h.depth < HeldRanks::kMax ? h.depth : HeldRanks::kMax;
  for (int i = n - 1; i >= 0; i--) {
    if (h.stack[i] == r) {
      for (int j = i; j + 1 < n; j++) h.stack[j] = h.stack[j + 1];
      break;
    }
  }
  h.depth--;
}
#else
inline void lock_rank_acquire(LockRank) {}
inline void lock_rank_release(LockRank) {}
#endif

#ifndef NDEBUG
inline void lock_rank_violation(LockRank taking, LockRank held) {
  rumpuser_dprintf("lock order violation: taking rank %d while holding rank %d\n",
                   static_cast<int>(taking), static_cast<int>(held));
  rumpuser_exit(RUMPUSER_PANIC);
}
#endif

}  // namespace rump
