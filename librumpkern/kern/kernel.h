// kernel.h: a kernel instance: boot, halt, and everything it owns.
//
// All kernel state lives in a Kernel (invariant 1): several run side by side
// in one process (as many as memory holds), and a halted one gives back
// every byte and thread so the next boots clean. Boot order: hypervisor,
// kernel memory, CPUs, proc0 and lwp0, init (pid 1), services (msgbuf, host
// name, sysctl, callouts), components by type, ready. A boot that fails at
// any step halts what it made and returns the error (ENOMEM at a memory
// limit too small).
//
// The state is grouped by what guards it: the process table (ProcTable,
// its own lock), the services, the tracing hook, per-component slots
// (KernelSlot<T>, component.h). No kernel thread starts at boot; the
// callout thread starts with the first callout, so an idle kernel costs
// no host thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <boost/intrusive/unordered_set_hook.hpp>
#include <cstdint>

#include "base/kmem.h"
#include "base/result.h"
#include "kern/kernel_clock.h"
#include "kern/component.h"
#include "kern/lwp.h"
#include "kern/pid.h"
#include "kern/proc.h"
#include "kern/proc_table.h"
#include "kern/sched.h"
#include "kern/syscall.h"
#include "sync/mutex.h"

namespace rump {

class Msgbuf;
class Sysctl;
class CalloutQueue;
class CpuTick;
struct SimState;

struct BootConfig {
  int ncpu = 0;             // 0: RUMP_NCPU, else the host's core count
  size_t memlimit = 0;      // bytes; 0: RUMP_MEMLIMIT, else unlimited
  char hostname[65] = {};   // empty: RUMP_HOSTNAME, else "rump-<serial>"
  int verbose = -1;         // -1: RUMP_VERBOSE
  int cache_pressure = -1;  // -1: RUMP_CACHE_PRESSURE (rump_kernel_set_cache_pressure at boot)
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

inline constexpr size_t kHostNameMax = 64;  // Linux __NEW_UTS_LEN

// Kernel services started at boot before the components and stopped at
// halt after them (kern/services.cc): the message buffer, the sysctl tree,
// the callout queue, and the host name (written by sethostname(2) and
// sysctl kern.hostname through set_hostname, the one writer).
class KernelServices {
 public:
  Msgbuf* msgbuf() const { return msgbuf_; }
  Sysctl* sysctl() const { return sysctl_; }
  CalloutQueue* callouts() const { return callouts_; }
  // CPU-time accounting's tick and load average (kern/cputime.h).
  CpuTick* cputick() const { return cputick_; }

  // Copies the host name (NUL-terminated) into out[kHostNameMax + 1].
  void hostname(char* out) const;
  // Sets the host name from len bytes (not necessarily NUL-terminated):
  // EINVAL beyond kHostNameMax.
  Result<void> set_hostname(const char* name, size_t len);

 private:
  friend Result<void> services_init(Kernel& k, const BootConfig& cfg);
  friend void services_fini(Kernel& k);
  Msgbuf* msgbuf_ = nullptr;
  Sysctl* sysctl_ = nullptr;
  CalloutQueue* callouts_ = nullptr;
  CpuTick* cputick_ = nullptr;
  mutable SpinLock hostname_lock_{LockRank::kNone};
  char hostname_[kHostNameMax + 1] ABSL_GUARDED_BY(hostname_lock_) = {};
};

// The per-kernel system call tracing hook (rump_kernel_set_trace): sees
// every call's number, arguments and result (the raw -errno convention).
class SyscallTrace {
 public:
  void set(SyscallTraceFn fn, void* arg) {
    fn_.store(nullptr, std::memory_order_release);
    arg_.store(arg, std::memory_order_release);
    fn_.store(fn, std::memory_order_release);
  }
  // On the syscall path: one relaxed load when no hook is set.
  void record(long nr, const long* args, long result) const {
    if (SyscallTraceFn fn = fn_.load(std::memory_order_relaxed)) fn(arg_.load(std::memory_order_acquire), nr, args, result);
  }

 private:
  std::atomic<SyscallTraceFn> fn_{nullptr};
  std::atomic<void*> arg_{nullptr};
};

class Kernel {
 public:
  static Result<Kernel*> boot(const BootConfig& cfg);
  // Stops the kernel's threads and frees everything. Must not be called
  // from inside the kernel (reboot() only requests it: request_halt). The
  // caller has won try_begin_halt(), or is boot giving up.
  void halt();
  // Claims the halt of this kernel: true for exactly one caller, who then
  // calls halt(); false if a halt is already under way.
  bool try_begin_halt() {
    bool expected = false;
    return halting_.compare_exchange_strong(expected, true);
  }
  // A halt has begun: no new processes or kernel threads.
  bool halting() const { return halting_.load(std::memory_order_acquire); }
  // reboot(2): the halt happens once the call has left the kernel.
  void request_halt() { halt_requested_.store(true, std::memory_order_relaxed); }
  bool halt_requested() const { return halt_requested_.load(std::memory_order_relaxed); }

  Kmem& kmem() { return kmem_; }
  uint64_t serial() const { return serial_; }
  Scheduler& sched() { return sched_; }
  const BootConfig& config() const { return cfg_; }
  int ncpu() const { return sched_.ncpu(); }
  // The hypercall backend serving this kernel's threads and objects
  // (rumpuser.h, "Backends"), chosen at boot.
  const rumpuser_backend* backend() const { return backend_; }
  uint64_t boot_time_ns() const { return boot_time_ns_; }  // monotonic
  // Fault injection (rump/fault.h, kern/fault.cc): made at boot, freed at
  // halt, read by the hyp_faults upcall from any thread of the kernel.
  rumpuser_faults* faults() const { return faults_.load(std::memory_order_acquire); }
  // rump_kernel_set_cache_pressure: the buffer cache evicts every block
  // its last user lets go unmodified (dev/buf.h).
  const std::atomic<bool>& cache_pressure() const { return cache_pressure_; }
  void set_cache_pressure(bool on) { cache_pressure_.store(on, std::memory_order_relaxed); }
  // On the "sim" backend: the kernel's world (kern/sim.h); else null.
  SimState* sim() const { return sim_; }

  ProcTable& procs() { return procs_; }
  SigWatchers& sig_watchers() { return sig_watchers_; }
  KernelServices& services() { return services_; }
  // The realtime clock (kern/kernel_clock.h).
  KernelClock& clock() { return clock_; }
  SyscallTrace& trace() { return trace_; }

  // --- LWPs (kern/lwp.cc)
  Result<Lwp*> new_lwp(Proc& p, Lwp::Kind kind);
  // Frees an LWP; if it was its process's last, the process exits (status).
  void release_lwp(Lwp* l, int exit_status);
  // Takes l off its process's list (if still on it) and the kernel's, and
  // gives its thread id back; the caller still owns the memory.
  void unlink_lwp(Lwp* l);
  // unlink_lwp, then frees it. l must not hold a CPU.
  void free_lwp(Lwp* l);

  // Kernel messages: printf into the message buffer (and the console when
  // verbose).
  void printf(const char* fmt, ...) __attribute__((__format__(__printf__, 2, 3)));

 private:
  template <class T>
  friend class KernelSlot;
  friend struct KernelRegistry;
  Kernel(size_t memlimit, uint64_t serial);
  ~Kernel();
  // Boot after the kernel object exists: CPUs, proc0, services, init,
  // components. On failure the caller halts what was made.
  Result<void> start(const BootConfig& cfg);
  Result<void> start_boot_procs();
  void stop_components();
  void end_processes();

  Kmem kmem_;  // first: everything below allocates from it
  ProcTable procs_;
  SigWatchers sig_watchers_;
  KernelServices services_;
  KernelClock clock_;
  SyscallTrace trace_;
  // Per-component state, reached only through KernelSlot<T> (component.h).
  void* component_state_[kMaxComponents] = {};
  std::atomic<bool> halt_requested_{false};
  std::atomic<bool> halting_{false};
  uint64_t serial_;
  BootConfig cfg_;
  const rumpuser_backend* backend_ = nullptr;
  // On the "sim" backend: its world (kern/sim.h); else null.
  SimState* sim_ = nullptr;
  uint64_t boot_time_ns_ = 0;
  std::atomic<rumpuser_faults*> faults_{nullptr};
  std::atomic<bool> cache_pressure_{false};
  Scheduler sched_;
  Cpu* cpus_ = nullptr;
  size_t cpus_bytes_ = 0;
  bool components_up_ = false;
  uint32_t components_started_ = 0;  // bit i: component_at(i)'s init ran
  // Linked while the kernel is alive (the process-wide registry, curlwp.cc).
  boost::intrusive::unordered_set_member_hook<> registry_hook_;
};

template <class T>
T* KernelSlot<T>::get(Kernel& k) const {
  return static_cast<T*>(k.component_state_[c_->slot]);
}
template <class T>
void KernelSlot<T>::set(Kernel& k, T* state) const {
  k.component_state_[c_->slot] = state;
}
template <class T>
T* KernelSlot<T>::take(Kernel& k) const {
  T* s = get(k);
  k.component_state_[c_->slot] = nullptr;
  return s;
}

// Kernel panic: a broken invariant of the kernel itself. Never returns.
[[noreturn]] void panic(const char* fmt, ...) __attribute__((__format__(__printf__, 1, 2)));

}  // namespace rump
