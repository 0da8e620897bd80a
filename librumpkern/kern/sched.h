// sched.h: virtual CPUs and the scheduler.
//
// A host thread runs kernel code only while its LWP holds one of the
// kernel's virtual CPUs (DESIGN.md invariant 2). The fast path is a
// compare-and-swap on the CPU the thread used last and a store to give it
// back: no locks, no system calls. A thread that finds every CPU busy
// registers as a waiter and sleeps on a host condition variable; a thread
// giving a CPU back wakes one waiter if there are any. Taking a CPU is one
// compare-and-swap; giving it back is a release store and a relaxed look at
// the waiter count, so a waiter registering at that very instant can be
// missed: waiters therefore sleep at most 1 ms before looking again
// (never spinning).
//
// Blocking hypercalls release the CPU (hyp_backend_unschedule) and take one
// again afterwards, possibly another one.
#pragma once

#include <rump/rumpuser.h>

#include <atomic>
#include <cstdint>

namespace rump {

class Lwp;
class Kernel;

struct alignas(64) Cpu {
  std::atomic<Lwp*> holder{nullptr};
  int index = 0;
};

class Scheduler {
 public:
  Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  // cpus points at ncpu Cpu objects owned by the kernel.
  void init(Cpu* cpus, int ncpu);
  void fini();

  // Takes a CPU for l; returns it. l must not hold one. (Inline fast
  // paths in sched_inline.h.)
  inline Cpu* schedule(Lwp* l);
  // Gives l's CPU back.
  inline void unschedule(Lwp* l);

  int ncpu() const { return ncpu_; }
  Cpu* cpu(int i) const { return &cpus_[i]; }

 private:
  inline Cpu* try_take(Lwp* l, int hint);
  Cpu* schedule_slow(Lwp* l);
  void wake_waiter();

  Cpu* cpus_ = nullptr;
  int ncpu_ = 0;
  std::atomic<int> waiters_{0};
  rumpuser_mtx* wait_mtx_ = nullptr;  // a spin mutex: waiters hold no CPU
  rumpuser_cv* wait_cv_ = nullptr;
};

}  // namespace rump

#include "kern/sched_inline.h"
