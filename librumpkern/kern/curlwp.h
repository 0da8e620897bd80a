// curlwp.h: which kernel and which LWP the calling host thread is using.
//
// Each host thread has a small context: its current kernel (set with
// rump_kernel_set_current, else the process's default kernel), the LWP it
// is bound to (rump_lwproc_switch), and a cached implicit LWP (attached to
// init) for calls made without one. Cached pointers are checked against a
// process-wide halt epoch, so a thread never touches a halted kernel.
//
// enter()/leave() bracket every entry into a kernel from outside (system
// calls, lwproc calls, other C API calls): they pick the LWP, take a
// virtual CPU, and on the way out act on exit and fatal signals.
#pragma once

#include <cstdint>

#include "kern/kernel.h"

namespace rump {

// Plain data, so the thread-local needs no constructor guard and is
// reached with one instruction (initial-exec TLS). The implicit LWP is
// given back at thread exit by a separate guard object, registered the
// first time the thread gets one.
inline constexpr int kSpareImplicit = 3;

// Cached kernel pointers carry the kernel's boot serial: a kernel booted
// after a halt may sit at the same address, and must not inherit them.
struct ThreadCtx {
  uint64_t epoch;
  Kernel* cur;          // explicit current kernel, or nullptr
  uint64_t cur_serial;
  Kernel* implicit_k;
  uint64_t implicit_serial;
  Lwp* implicit;
  Kernel* bound_k;
  uint64_t bound_serial;
  Lwp* bound;
  // The backend the thread's hypercalls go to, as last set on entry
  // (null: not set yet). Only kernel entry changes it for good; every
  // other switch (boot, halt, work on a temporary LWP) is scoped.
  const rumpuser_backend* backend;
  // Implicit LWPs of other kernels this thread used recently, so a thread
  // alternating between kernels keeps one LWP per kernel.
  struct Spare {
    Kernel* k;
    uint64_t serial;
    Lwp* l;
  } spare[kSpareImplicit];
  // The thread's CPU clock at its last reading (kern/cputime.cc), which
  // quick LWP switches share instead of each reading it again.
  struct CpuMark {
    uint64_t clock;   // the thread's CPU clock (0: never read)
    int64_t cpu_ns;   // its reading
    int64_t wall_ns;  // the monotonic clock then
  } cpu_mark;
};

ThreadCtx& thread_ctx();

// The calling thread's current kernel (validated), or nullptr.
Kernel* current_kernel();
void set_current_kernel(Kernel* k);

// The process-wide registry of live kernels (for validating cached
// pointers and for the default kernel). It has no fixed size: kernels are
// linked into an intrusive hash table (insert never fails), so a process
// can run as many kernels as its memory holds. Hot paths never look at it:
// they compare the thread's cached epoch with the registry's, which changes
// only when a kernel boots or halts.
void registry_add(Kernel* k, bool make_default);
void registry_remove(Kernel* k);
Kernel* default_kernel();
bool registry_alive(Kernel* k);

// Takes a CPU of k for the calling thread and returns the LWP it runs as.
// nullptr if no LWP could be had: enter_error() says why.
Lwp* enter(Kernel& k);
void leave(Kernel& k, Lwp* l);
// Why enter(k) gave no LWP: EINVAL for a sim kernel called from a thread
// that is not running it, otherwise ENOMEM.
int enter_error(Kernel& k);

// The bound LWP of the calling thread in k, or nullptr (implicit context).
Lwp* bound_lwp(Kernel& k);
// Binds the calling thread to l (nullptr: implicit context).
void bind_lwp(Kernel& k, Lwp* l);

// Runs kernel code as l on a CPU of k for a scope, then gives the CPU back
// and restores the thread's previous LWP: for work done outside any system
// call (boot and halt as lwp0; making or freeing an LWP for a thread that
// has no usable one of its own). The caller has already switched the
// thread to k's backend (a BackendScope around the whole piece of work).
class RunAs {
 public:
  RunAs(Kernel& k, Lwp* l)
      : k_(k), l_(l), prev_(rumpuser_curlwp()) {
    rumpuser_curlwpop(RUMPUSER_LWP_SET, reinterpret_cast<struct lwp*>(l));
    k.sched().schedule(l);
  }
  ~RunAs() {
    k_.sched().unschedule(l_);
    rumpuser_curlwpop(RUMPUSER_LWP_SET, prev_);
  }
  RunAs(const RunAs&) = delete;
  RunAs& operator=(const RunAs&) = delete;

 private:
  Kernel& k_;
  Lwp* l_;
  struct lwp* prev_;
};

// Runs a system call in k from the calling thread: -errno on failure
// (kern/syscall.cc).
long syscall_enter(Kernel& k, long nr, const long* args);
// Halts k after a reboot() (called once the call has left the kernel).
void halt_after_reboot(Kernel* k);

// Installs the upcall table with the hypercall layer (idempotent).
int hyp_init();

}  // namespace rump
