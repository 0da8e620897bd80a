// kernel.h: a kernel instance: boot, halt, and everything it owns.
//
// All kernel state lives in a Kernel (invariant 1): several run side by side
// in one process, and a halted one gives back every byte and thread so the
// next boots clean. Boot order: hypervisor, CPUs, kernel memory, proc0 and
// lwp0, sysctl, msgbuf, components by type, init (pid 1), ready.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "base/kmem.h"
#include "base/result.h"
#include "kern/component.h"
#include "kern/lwp.h"
#include "kern/pid.h"
#include "kern/proc.h"
#include "kern/sched.h"
#include "kern/syscall.h"
#include "sync/mutex.h"

namespace rump {

class Msgbuf;
class Sysctl;
class CalloutQueue;
struct SimState;

struct BootConfig {
  int ncpu = 0;             // 0: RUMP_NCPU, else the host's core count
  size_t memlimit = 0;      // bytes; 0: RUMP_MEMLIMIT, else unlimited
  char hostname[65] = {};   // empty: RUMP_HOSTNAME, else "rump-<serial>"
  int verbose = -1;         // -1: RUMP_VERBOSE
  pid_t pid_max = PidAllocator::kDefaultPidMax;
  int maxproc = 4096;
  char backend[32] = {};    // empty: RUMP_BACKEND, else "pthread"
  uint64_t seed = 0;        // "sim" backend: the seed of every scheduling choice
};

// Reads RUMP_* parameters into the fields the caller left at their defaults.
void boot_config_from_env(BootConfig& c);

// Makes be serve the calling thread's scheduling hypercalls (rumpuser.h,
// "Backends") for a scope; null is the default backend.
class BackendScope {
 public:
  explicit BackendScope(const rumpuser_backend* be) : prev_(rumpuser_backend_switch(be)) {}
  ~BackendScope() { rumpuser_backend_switch(prev_); }
  BackendScope(const BackendScope&) = delete;
  BackendScope& operator=(const BackendScope&) = delete;

 private:
  const rumpuser_backend* prev_;
};

class Kernel {
 public:
  static Result<Kernel*> boot(const BootConfig& cfg);
  // Stops the kernel's threads and frees everything. Must not be called
  // from inside the kernel (reboot() only requests it: see halt_requested).
  void halt();

  Kmem& kmem() { return kmem_; }

 private:
  Kmem kmem_;  // first: everything below allocates from it

 public:
  uint64_t serial() const { return serial_; }
  Scheduler& sched() { return sched_; }
  const BootConfig& config() const { return cfg_; }
  int ncpu() const { return sched_.ncpu(); }

  // --- processes (kern/proc.cc, kern/fork.cc, kern/exit.cc)
  Mutex proc_tree_lock_{LockRank::kProcTree};
  PidAllocator pids_ ABSL_GUARDED_BY(proc_tree_lock_);
  absl::flat_hash_map<pid_t, Proc*, absl::container_internal::hash_default_hash<pid_t>,
                      absl::container_internal::hash_default_eq<pid_t>,
                      KAllocator<std::pair<const pid_t, Proc*>>>
      procs_ ABSL_GUARDED_BY(proc_tree_lock_);
  int nprocs_ ABSL_GUARDED_BY(proc_tree_lock_) = 0;
  int maxproc_ = 4096;
  KernelLwpList all_lwps_ ABSL_GUARDED_BY(proc_tree_lock_);
  Proc* proc0_ = nullptr;  // the kernel's own process (kernel threads)
  Proc* init_ = nullptr;   // pid 1: implicit LWPs, orphans
  Lwp* lwp0_ = nullptr;

  // Finds a live or zombie process; caller holds proc_tree_lock_.
  Proc* find_proc_locked(pid_t pid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(proc_tree_lock_);

  // --- LWPs (kern/lwp.cc)
  Result<Lwp*> new_lwp(Proc& p, Lwp::Kind kind);
  // Frees an LWP; if it was its process's last, the process exits (status).
  void release_lwp(Lwp* l, int exit_status);
  // Takes l off its process's list (if still on it) and the kernel's, and
  // gives its thread id back; the caller still owns the memory.
  void unlink_lwp(Lwp* l);
  // unlink_lwp, then frees it. l must not hold a CPU.
  void free_lwp(Lwp* l);

  // --- services
  Msgbuf* msgbuf_ = nullptr;
  Sysctl* sysctl_ = nullptr;
  CalloutQueue* callouts_ = nullptr;
  void* component_state_[kMaxComponents] = {};

  char hostname_[65] = {};  // guarded by proc_tree_lock_ for writes (sethostname)
  std::atomic<bool> halt_requested_{false};
  std::atomic<bool> halting_{false};

  // --- system call tracing
  std::atomic<SyscallTraceFn> trace_fn_{nullptr};
  void* trace_arg_ = nullptr;

  // Kernel messages: printf into the message buffer (and the console when
  // verbose).
  void printf(const char* fmt, ...) __attribute__((__format__(__printf__, 2, 3)));

  uint64_t boot_time_ns_ = 0;  // monotonic
  int verbose_ = 0;

 private:
  Kernel(size_t memlimit, uint64_t serial);
  ~Kernel();
  Result<void> boot_locked(const BootConfig& cfg);

  uint64_t serial_;
  BootConfig cfg_;

 public:
  // The hypercall backend serving this kernel's threads and objects
  // (rumpuser.h, "Backends"), chosen at boot.
  const rumpuser_backend* backend_ = nullptr;
  // On the "sim" backend: its world (kern/sim.h); else null.
  SimState* sim_ = nullptr;

 private:
  Scheduler sched_;
  Cpu* cpus_ = nullptr;
  size_t cpus_bytes_ = 0;
  int components_up_ = 0;
};

// Kernel panic: a broken invariant of the kernel itself. Never returns.
[[noreturn]] void panic(const char* fmt, ...) __attribute__((__format__(__printf__, 1, 2)));

}  // namespace rump
