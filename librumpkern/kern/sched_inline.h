// sched_inline.h: the scheduler's fast paths, inline in every kernel entry.
// Included by sched.h after the class; needs the full Lwp.
#pragma once

#include "kern/lwp.h"
#include "kern/sched.h"

namespace rump {

inline Cpu* Scheduler::try_take(Lwp* l, int hint) {
  for (int n = 0; n < ncpu_; n++) {
    int i = hint + n;
    if (i >= ncpu_) i -= ncpu_;
    Cpu* c = &cpus_[i];
    Lwp* expected = nullptr;
    if (c->holder.load(std::memory_order_relaxed) == nullptr &&
        c->holder.compare_exchange_strong(expected, l, std::memory_order_seq_cst)) {
      return c;
    }
  }
  return nullptr;
}

inline Cpu* Scheduler::schedule(Lwp* l) {
  Cpu* c = try_take(l, l->last_cpu_);
  if (__builtin_expect(c == nullptr, 0)) c = schedule_slow(l);
  l->cpu_.store(c, std::memory_order_relaxed);
  l->last_cpu_ = c->index;
  return c;
}

inline void Scheduler::unschedule(Lwp* l) {
  Cpu* c = l->cpu_.load(std::memory_order_relaxed);
  l->cpu_.store(nullptr, std::memory_order_relaxed);
  c->holder.store(nullptr, std::memory_order_release);
  if (__builtin_expect(waiters_.load(std::memory_order_relaxed) != 0, 0)) wake_waiter();
}

}  // namespace rump
