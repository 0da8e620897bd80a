// proc.h: processes.
//
// A Proc is owned by its kernel's process table from fork1 until its parent
// reaps it (wait4/waitid) or, for children nobody waits for, until it exits.
// Locking:
//   * The process table's lock (ProcTable, Proc::tree_lock()) guards the
//     pid table, parent/child links, process groups and sessions, process
//     state and exit status. Parents sleep on their child_cv_ with it held.
//   * Proc::lock_ guards the process's own state: LWP list, credentials,
//     signal actions and pending set, resource limits, name, umask.
//   Order: the process table's lock before any Proc::lock_ (lock_rank.h).
//
// Factions that keep per-process state (descriptors, cwd/root, vmspace
// tables) register a ProcExtension: fork1 calls its fork hook to share or
// copy the state into the child, exit calls its exit hook to drop it.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <atomic>
#include <boost/intrusive/list.hpp>
#include <boost/intrusive/unordered_set_hook.hpp>
#include <cstdint>

#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"
#include "kern/copy.h"
#include "kern/cred.h"
#include "kern/lwp.h"
#include "kern/signal.h"
#include "sync/mutex.h"

namespace rump {

class Kernel;
class UserSpace;

// rfork flags with FreeBSD's meaning (values are FreeBSD's).
enum : uint32_t {
  RFFDG = 1u << 2,
  RFPROC = 1u << 4,
  RFMEM = 1u << 5,
  RFNOWAIT = 1u << 6,
  RFCFDG = 1u << 12,
  RFTHREAD = 1u << 13,
  RFSIGSHARE = 1u << 14,
  RFTSIGZMB = 1u << 19,
  RFTSIGSHIFT = 20,
  RFTSIGMASK = 0xFF,
  RFHIGHPID = 1u << 18,
  RFPPWAIT = 1u << 31,
  RFSTOPPED = 1u << 17,
  // This kernel's: give the child a fresh isolated Vmspace.
  RFVMSPACE = 1u << 30,
  RFTSIGFLAGS_ALL = RFTSIGMASK << RFTSIGSHIFT,
  RFFLAGS_ALL = RFFDG | RFPROC | RFMEM | RFNOWAIT | RFCFDG | RFTHREAD | RFSIGSHARE |
                RFTSIGZMB | RFTSIGFLAGS_ALL | RFHIGHPID | RFPPWAIT | RFSTOPPED | RFVMSPACE,
};

inline constexpr int kMaxProcExtensions = 8;

// Signal actions; copied at fork, or shared with RFSIGSHARE.
class SigActs : public KObject, public RefCounted<SigActs> {
 public:
  mutable SpinLock lock{LockRank::kNone};
  KernelSigaction act[kNsig] ABSL_GUARDED_BY(lock) = {};  // index sig - 1

  KernelSigaction get(int sig) const {
    SpinLocker g(lock);
    return act[sig - 1];
  }
};

struct ProcExtension {
  const char* name;
  // Give child its state from parent according to the rfork flags.
  Result<void> (*fork)(Proc& parent, Proc& child, uint32_t flags);
  // Drop the process's state (last LWP gone, before it becomes a zombie).
  void (*exit)(Proc& p);
  // Optional: the mappings of a process in the host's address space that
  // the faction made (the vm faction: rump_sys_mmap's), in address order,
  // for /proc/<pid>/maps. Called with the process table lock and p's lock
  // held (fn must not block); m.backing is borrowed for the call.
  void (*host_maps)(Proc& p, absl::FunctionRef<void(const UserSpace::Mapping& m)> fn) = nullptr;
  int slot = -1;  // assigned at registration
};
// Registers at load time (static object in the faction); returns the slot.
int register_proc_extension(ProcExtension* ext);
int proc_extension_count();
ProcExtension* proc_extension(int slot);

class Proc : public KObject {
 public:
  enum class State : uint8_t { kEmbryo, kActive, kZombie };

  Proc(Kernel& k, pid_t pid);
  ~Proc();

  Kernel& kernel() const { return kernel_; }
  pid_t pid() const { return pid_; }

  // The process table's lock (ProcTable::lock()): it guards the fields
  // below, which link processes to each other. Code that holds it through
  // the table and then touches these fields of a Proc says so with
  // assert_tree_locked() (a real check in debug builds).
  Mutex& tree_lock() const ABSL_LOCK_RETURNED(tree_lock_) { return tree_lock_; }
  void assert_tree_locked() const ABSL_ASSERT_EXCLUSIVE_LOCK(tree_lock_) { tree_lock_.assert_held(); }

  Proc* parent_ ABSL_GUARDED_BY(tree_lock_) = nullptr;
  pid_t pgid_ ABSL_GUARDED_BY(tree_lock_) = 0;
  pid_t sid_ ABSL_GUARDED_BY(tree_lock_) = 0;
  State state_ ABSL_GUARDED_BY(tree_lock_) = State::kEmbryo;
  int exit_status_ ABSL_GUARDED_BY(tree_lock_) = 0;  // wait status (W* encoding)
  bool stopped_report_ ABSL_GUARDED_BY(tree_lock_) = false;
  bool ppwait_ ABSL_GUARDED_BY(tree_lock_) = false;  // vfork: parent waits until exit/exec
  // What the parent gets when this exits (0: none).
  int exit_signal_ ABSL_GUARDED_BY(tree_lock_) = SIGCHLD;
  // prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are reparented
  // here rather than to init. Not inherited.
  bool child_subreaper_ ABSL_GUARDED_BY(tree_lock_) = false;
  ListHook sibling_hook_;
  bi::list<Proc, bi::member_hook<Proc, ListHook, &Proc::sibling_hook_>,
           bi::constant_time_size<false>> children_ ABSL_GUARDED_BY(tree_lock_);
  CondVar child_cv_;  // state changes of children; waited on with the tree lock
  bi::unordered_set_member_hook<> pid_hook_;  // ProcTable's pid -> Proc table

  // --- guarded by lock_
  mutable Mutex lock_{LockRank::kProc};
  LwpList lwps_ ABSL_GUARDED_BY(lock_);
  int nlwps_ ABSL_GUARDED_BY(lock_) = 0;
  RefPtr<Cred> cred_ ABSL_GUARDED_BY(lock_);  // set before the process is published
  // Shared between processes made with RFSIGSHARE.
  RefPtr<SigActs> sigacts_ ABSL_GUARDED_BY(lock_);
  // The shared pending set: changed under lock_, read without it
  // (Lwp::interrupt_pending); its records (kern/signal.h).
  std::atomic<SigSet> sigpending_{0};
  SigQueue sigqueue_ ABSL_GUARDED_BY(lock_);
  // Records queued for the process and its LWPs (RLIMIT_SIGPENDING).
  int nsigqueued_ ABSL_GUARDED_BY(lock_) = 0;
  // Of those, records of deleted timers not yet thrown away (kern/sig.cc).
  int sigdropped_ ABSL_GUARDED_BY(lock_) = 0;
  // What rt_sigsuspend, pause, rt_sigtimedwait and signalfd reads sleep
  // on (with lock_); signal posting wakes them through Lwp::interrupt().
  CondVar sigwait_cv_;
  rlimit rlimits_[RLIM_NLIMITS] ABSL_GUARDED_BY(lock_) = {};
  char comm_[16] ABSL_GUARDED_BY(lock_) = {};
  // prctl state: the signal sent when the parent exits (not inherited,
  // cleared when the credentials change), the dumpable flag (reset to 0
  // when they change), no_new_privs (inherited, never cleared).
  int pdeath_signal_ ABSL_GUARDED_BY(lock_) = 0;
  int dumpable_ ABSL_GUARDED_BY(lock_) = 1;
  bool no_new_privs_ ABSL_GUARDED_BY(lock_) = false;
  // The argument and environment areas of the process's memory, as exec
  // would leave them (set by prctl PR_SET_MM_ARG_START ... ENV_END; there
  // is no exec here): what /proc/<pid>/cmdline and environ read. 0:
  // unset. Inherited, except by a child with a fresh space (RFVMSPACE).
  struct MmArgs {
    uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
    uint64_t start_stack = 0;  // PR_SET_MM_START_STACK: maps' [stack]
  };
  MmArgs mm_args_ ABSL_GUARDED_BY(lock_);
  // personality(2): the execution domain (PER_LINUX, low byte 0) and its
  // flags; inherited.
  std::atomic<uint32_t> personality_{0};
  // membarrier(2): the MEMBARRIER_CMD_REGISTER_* commands this process
  // ran (their bits); inherited, as Linux's live in the address space that
  // fork copies.
  std::atomic<uint32_t> membarrier_registered_{0};
  // Scheduling (kern/sys_sched.cc), inherited: the nice value, policy and
  // real-time priority, and the CPUs allowed (bit n: virtual CPU n; read
  // through the CPUs the kernel has).
  static constexpr int kAffinityWords = 4;  // 256 virtual CPUs at most
  int nice_ ABSL_GUARDED_BY(lock_) = 0;
  int sched_policy_ ABSL_GUARDED_BY(lock_) = 0;
  int sched_priority_ ABSL_GUARDED_BY(lock_) = 0;
  uint64_t affinity_[kAffinityWords] ABSL_GUARDED_BY(lock_) = {~0ull, ~0ull, ~0ull, ~0ull};
  std::atomic<mode_t> umask_{022};
  bool exiting_ ABSL_GUARDED_BY(lock_) = false;
  // CPU usage (kern/cputime.h) of the LWPs that have left the process, and
  // of the reaped children (and theirs).
  CpuUsage cpu_dead_ ABSL_GUARDED_BY(lock_);
  CpuUsage cpu_children_ ABSL_GUARDED_BY(lock_);
  // When the process was made (monotonic ns).
  const int64_t start_ns_;
  std::atomic<uint32_t> cred_gen_{1};

  // The process's user space; nullptr: the host's address space.
  UserSpace* space_ = nullptr;

  Ref<Cred> cred() const;
  // Replaces the credentials (fresh, unpublished Cred).
  void set_cred(Ref<Cred> c);
  SigSet pending_unblocked(const Lwp& l) const;
  // Pending for l: the process's set and l's own.
  SigSet pending_for(const Lwp& l) const {
    return sigpending_.load(std::memory_order_acquire) | l.sigpending_.load(std::memory_order_acquire);
  }

 private:
  template <class T>
  friend class ProcSlot;
  Kernel& kernel_;
  Mutex& tree_lock_;
  pid_t pid_;
  // Per-faction state, reached only through ProcSlot<T> (component.h).
  void* ext_[kMaxProcExtensions] = {};
};

using ProcChildList = decltype(Proc::children_);

}  // namespace rump
