// The virtual CPU scheduler (see sched.h for the algorithm).
#include "kern/sched.h"

#include "kern/lwp.h"

namespace rump {

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

Cpu* Scheduler::schedule(Lwp* l) {
  Cpu* c = try_take(l, l->last_cpu_);
  if (__builtin_expect(c == nullptr, 0)) c = schedule_slow(l);
  c->switches++;
  l->cpu_ = c;
  l->last_cpu_ = c->index;
  return c;
}

Cpu* Scheduler::schedule_slow(Lwp* l) {
  rumpuser_mutex_enter_nowrap(wait_mtx_);
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  Cpu* c;
  while ((c = try_take(l, l->last_cpu_)) == nullptr) rumpuser_cv_wait_nowrap(wait_cv_, wait_mtx_);
  waiters_.fetch_sub(1, std::memory_order_seq_cst);
  rumpuser_mutex_exit(wait_mtx_);
  return c;
}

void Scheduler::unschedule(Lwp* l) {
  Cpu* c = l->cpu_;
  l->cpu_ = nullptr;
  c->holder.store(nullptr, std::memory_order_seq_cst);
  if (__builtin_expect(waiters_.load(std::memory_order_seq_cst) != 0, 0)) {
    rumpuser_mutex_enter_nowrap(wait_mtx_);
    rumpuser_cv_signal(wait_cv_);
    rumpuser_mutex_exit(wait_mtx_);
  }
}

}  // namespace rump
