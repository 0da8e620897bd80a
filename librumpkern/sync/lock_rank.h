// lock_rank.h: the lock order, written down once and checked in debug builds.
//
// Every kernel lock has a rank. A thread may take a lock only if its rank is
// greater than the rank of every lock it already holds (kNone locks are not
// checked: leaf locks private to one object). The debug check keeps a
// per-thread stack of held ranks; release builds compile it away.
#pragma once

#include <cstdint>

namespace rump {

enum class LockRank : uint8_t {
  kNone = 0,
  // Process-wide structure, outermost first.
  kProcTree = 10,     // Kernel::proc_tree_lock_: pid table, parent/child links, pgrps
  kProc = 20,         // Proc::lock_: a process's LWPs, signals, exit state
  kVmspaceMap = 30,   // Vmspace map lock
  kVmObject = 40,     // VmObject page lock
  kMount = 50,
  kVnode = 60,
  kFileTable = 70,
  kFile = 80,
  kSocket = 90,
  kSysctl = 100,
  kCallout = 110,
  kCpu = 120,         // scheduler wait lock
  kMsgbuf = 130,
  kKmem = 140,
};

#ifndef NDEBUG
void lock_rank_acquire(LockRank r);
void lock_rank_release(LockRank r);
#else
inline void lock_rank_acquire(LockRank) {}
inline void lock_rank_release(LockRank) {}
#endif

}  // namespace rump
