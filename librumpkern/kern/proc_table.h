// proc_table.h: a kernel's process table.
//
// One object owns everything the process-table lock guards: the pid
// allocator, the pid -> Proc table, the process count and its limit
// (maxproc), the list of every LWP of the kernel and the tid -> Lwp table
// over the same LWPs, and the process-tree
// fields of each Proc (parent/child links, groups, sessions, state, exit
// status: Proc::tree_lock() is this lock). proc0, init and lwp0 are set once
// at boot, before anything else can look, and cleared at halt after
// everything else has gone; they are read without the lock.
//
// The table is intrusive (Proc carries its hook), so publishing a process
// never allocates: the only memory a fork needs from the table is the pid's
// holder record, taken by PidAllocator::alloc with an error path.
//
// Who calls: fork1, exit/wait, the process and signal syscalls, boot and
// halt, lwproc. Lock order: this lock before any Proc::lock_ (lock_rank.h).
#pragma once

#include <sys/types.h>

#include <atomic>

#include "base/intrusive_hash.h"
#include "base/kmem.h"
#include "base/result.h"
#include "kern/lwp.h"
#include "kern/pid.h"
#include "kern/proc.h"
#include "sync/mutex.h"

namespace rump {

class ProcTable {
 public:
  explicit ProcTable(Kmem& kmem) : pids_(kmem), procs_(kmem), tids_(kmem) {}
  ProcTable(const ProcTable&) = delete;
  ProcTable& operator=(const ProcTable&) = delete;

  Mutex& lock() const ABSL_LOCK_RETURNED(lock_) { return lock_; }

  PidAllocator& pids() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) { return pids_; }

  // A live or zombie process, or nullptr.
  Proc* find_locked(pid_t pid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) { return procs_.find(pid); }
  // Publishes p under its pid (never allocates). The pid must be p's own
  // and not in the table.
  void insert_locked(Proc& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void erase_locked(Proc& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) { procs_.erase(p); }
  // Calls fn(Proc&) for every process in the table (fn must not add or
  // remove any).
  template <class Fn>
  void for_each_locked(Fn&& fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    for (Proc& p : procs_) fn(p);
  }
  // The first process for which pred(Proc&) is true, or nullptr.
  template <class Pred>
  Proc* find_if_locked(Pred&& pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    for (Proc& p : procs_)
      if (pred(p)) return &p;
    return nullptr;
  }

  // Counts one more process against maxproc: EAGAIN at the limit.
  Result<void> count_proc_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    if (nprocs_ >= maxproc_.load(std::memory_order_relaxed)) return err(EAGAIN);
    nprocs_++;
    return {};
  }
  // Boot's processes are not limited (proc0 and init come first anyway).
  void count_proc_unlimited_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) { nprocs_++; }
  void uncount_proc_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) { nprocs_--; }
  int nprocs_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) { return nprocs_; }
  int maxproc() const { return maxproc_.load(std::memory_order_relaxed); }
  void set_maxproc(int n) { maxproc_.store(n, std::memory_order_relaxed); }

  // Every LWP of the kernel (halt interrupts and frees them from here);
  // linked and unlinked only by add_lwp_locked/remove_lwp_locked.
  KernelLwpList& lwps_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) { return all_lwps_; }
  // Links a new LWP on the list and under its tid, which is unique among
  // them (held in the pid allocator until the LWP is freed), and unlinks
  // one. Neither allocates anything that can fail.
  void add_lwp_locked(Lwp& l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    all_lwps_.push_back(l);
    tids_.insert(l);
  }
  void remove_lwp_locked(Lwp& l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    all_lwps_.erase(all_lwps_.iterator_to(l));
    tids_.erase(l);
  }
  // The LWP with thread id tid (husks included), or nullptr.
  Lwp* find_tid_locked(pid_t tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) { return tids_.find(tid); }

  // Frees a zombie that its parent reaped (or that nobody will): off its
  // parent's list and the table, its ids given back, the memory freed.
  void reap_locked(Proc& zombie) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);

  Proc* proc0() const { return proc0_; }  // the kernel's own process (kernel threads)
  Proc* init() const { return init_; }    // pid 1: implicit LWPs, orphans
  Lwp* lwp0() const { return lwp0_; }
  // Boot sets them once before publishing the kernel; halt clears them.
  void set_proc0(Proc* p, Lwp* l0) {
    proc0_ = p;
    lwp0_ = l0;
  }
  void set_init(Proc* p) { init_ = p; }

  // Gives back the tables' memory at halt (every process is gone), so
  // that the kernel's leak check sees all of it.
  void clear_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    procs_.clear_and_release();
    tids_.clear_and_release();
    pids_.clear();
  }

 private:
  mutable Mutex lock_{LockRank::kProcTree};
  PidAllocator pids_ ABSL_GUARDED_BY(lock_);
  struct PidOf {
    using type = pid_t;
    pid_t operator()(const Proc& p) const { return p.pid(); }
  };
  IntrusiveHash<Proc, &Proc::pid_hook_, PidOf> procs_ ABSL_GUARDED_BY(lock_);
  int nprocs_ ABSL_GUARDED_BY(lock_) = 0;
  std::atomic<int> maxproc_{4096};
  KernelLwpList all_lwps_ ABSL_GUARDED_BY(lock_);
  struct TidOf {
    using type = pid_t;
    pid_t operator()(const Lwp& l) const { return l.tid(); }
  };
  IntrusiveHash<Lwp, &Lwp::tid_hook_, TidOf> tids_ ABSL_GUARDED_BY(lock_);
  Proc* proc0_ = nullptr;
  Proc* init_ = nullptr;
  Lwp* lwp0_ = nullptr;
};

}  // namespace rump
