// sched.h: virtual CPUs and the scheduler.
//
// A host thread runs kernel code only while its LWP holds one of the
// kernel's virtual CPUs (DESIGN.md invariant 2). The fast path is a
// compare-and-swap on the CPU the thread used last and a store to give it
// back: no locks, no system calls. A thread that finds every CPU busy
// registers as a waiter and sleeps on a host condition variable; a thread
// giving a CPU back wakes one waiter if there are any. The waiter count and
// the CPU words are both sequentially consistent, so a release either sees
// the waiter or the waiter's retry sees the free CPU (no lost wake-up).
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
  uint64_t switches = 0;  // times an LWP took this CPU (owner-only writes)
};

class Scheduler {
 public:
  Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  // cpus points at ncpu Cpu objects owned by the kernel.
  void init(Cpu* cpus, int ncpu);
  void fini();

  // Takes a CPU for l; returns it. l must not hold one.
  Cpu* schedule(Lwp* l);
  // Gives l's CPU back.
  void unschedule(Lwp* l);

  int ncpu() const { return ncpu_; }
  Cpu* cpu(int i) const { return &cpus_[i]; }

 private:
  Cpu* try_take(Lwp* l, int hint);
  Cpu* schedule_slow(Lwp* l);

  Cpu* cpus_ = nullptr;
  int ncpu_ = 0;
  std::atomic<int> waiters_{0};
  rumpuser_mtx* wait_mtx_ = nullptr;  // a spin mutex: waiters hold no CPU
  rumpuser_cv* wait_cv_ = nullptr;
};

}  // namespace rump
