// The virtual CPU scheduler (see sched.h for the algorithm).
#include "kern/sched.h"

#include "kern/lwp.h"

namespace rump {

namespace {
constexpr long kMissedWakeupNs = 1000 * 1000;
}

void Scheduler::init(Cpu* cpus, int ncpu) {
  cpus_ = cpus;
  ncpu_ = ncpu;
  for (int i = 0; i < ncpu; i++) cpus_[i].index = i;
  rumpuser_mutex_init(&wait_mtx_, RUMPUSER_MTX_SPIN);
  rumpuser_cv_init(&wait_cv_);
}

void Scheduler::fini() {
  if (wait_cv_) rumpuser_cv_destroy(wait_cv_);
  if (wait_mtx_) rumpuser_mutex_destroy(wait_mtx_);
  wait_cv_ = nullptr;
  wait_mtx_ = nullptr;
}

Cpu* Scheduler::schedule_slow(Lwp* l) {
  rumpuser_mutex_enter_nowrap(wait_mtx_);
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  l->acct_.nivcsw.fetch_add(1, std::memory_order_relaxed);
  Cpu* c;
  // The releaser gives the CPU back with a plain release store and then
  // looks at waiters_ without a full fence (that keeps the fast path at
  // one locked instruction). It can miss a waiter that registers in that
  // instant; the bounded wait makes such a miss cost at most one period.
  while ((c = try_take(l, l->last_cpu_)) == nullptr)
    rumpuser_cv_timedwait(wait_cv_, wait_mtx_, 0, kMissedWakeupNs);
  waiters_.fetch_sub(1, std::memory_order_seq_cst);
  rumpuser_mutex_exit(wait_mtx_);
  return c;
}

void Scheduler::wake_waiter() {
  rumpuser_mutex_enter_nowrap(wait_mtx_);
  rumpuser_cv_signal(wait_cv_);
  rumpuser_mutex_exit(wait_mtx_);
}

}  // namespace rump
