// LWPs: creation, release, sleeping and interruption.
#include "kern/lwp.h"

#include <rump/rumpuser.h>

#include <cstdint>

#include "kern/clock.h"
#include "kern/fork.h"
#include "kern/kcov.h"
#include "kern/kernel.h"
#include "kern/parker.h"
#include "kern/proc.h"

namespace rump {

namespace {
// An interruptible sleep waits at most this long at a time, then looks at
// its interrupt state again. interrupt() wakes the sleeper at once when it
// can take the sleep's mutex without waiting; the slice bounds the delay in
// the rare case it can't (the mutex is busy), without any lock ordering
// between signal senders and the objects sleepers wait on.
constexpr int64_t kInterruptSliceNs = 10 * 1000 * 1000;
// On the sim backend there are no slices: a sleep without a deadline has
// no timer (so that a run whose fibers all sleep for good is reported as a
// deadlock), and interrupt() instead waits for the sleep's mutex to come
// free (see there).
constexpr int64_t kNoSlice = INT64_MAX;
}  // namespace

Lwp::Lwp(Kernel& k, Proc& p, pid_t tid, Kind kind)
    : kernel_(k), proc_(&p), tid_(tid), kind_(kind), sig_lock_(p.lock_) {}

Lwp::~Lwp() {
  if (kcov_) kcov_lwp_gone(*this);
  if (futex_parker_) futex_parker_->unref();
  // Records left by a husk (its process gone before it): nobody else can
  // reach them now.
  sigqueue_.clear_and_dispose([](SigQueued* q) { delete q; });
}

void Lwp::refresh_cred() {
  uint32_t g = proc_->cred_gen_.load(std::memory_order_acquire);
  if (__builtin_expect(g == cred_gen_ && cred_, 1)) return;
  cred_ = proc_->cred();
  cred_gen_ = g;
}

bool Lwp::interrupt_pending() const {
  if (exiting_.load(std::memory_order_relaxed)) return true;
  SigSet pend = (proc_->sigpending_.load(std::memory_order_acquire) & sigclaim_.load(std::memory_order_acquire)) |
                sigpending_.load(std::memory_order_acquire);
  return (pend & ~(sigmask_.load(std::memory_order_relaxed) | sigwaiting_.load(std::memory_order_relaxed))) != 0;
}

int Lwp::sleep(CondVar& cv, Mutex& m, int64_t deadline_ns, bool interruptible) {
  if (!interruptible) {
    if (deadline_ns < 0) {
      cv.wait(m);
      return 0;
    }
    int64_t now = mono_now_ns();
    if (now >= deadline_ns) return ETIMEDOUT;
    return cv.timed_wait(m, deadline_ns - now);
  }
  if (interrupt_pending()) return kErestartSys;
  sleep_lock_.lock();
  sleep_mtx_ = m.raw();
  sleep_cv_ = cv.raw();
  sleep_lock_.unlock();
  int rv = 0;
  int64_t now = mono_now_ns();
  int64_t wait = kernel_.sim() ? kNoSlice : kInterruptSliceNs;
  if (deadline_ns >= 0) {
    if (now >= deadline_ns) rv = ETIMEDOUT;
    else if (deadline_ns - now < wait) wait = deadline_ns - now;
  }
  if (rv == 0) {
    acct_.nvcsw.fetch_add(1, std::memory_order_relaxed);
    int r = 0;
    if (wait == kNoSlice) cv.wait(m);
    else r = cv.timed_wait(m, wait);
    if (r == ETIMEDOUT) {
      // A slice ended: a real timeout only if the deadline passed;
      // otherwise report a (spurious) wake-up and let the caller re-check
      // its condition and sleep again.
      if (deadline_ns >= 0 && mono_now_ns() >= deadline_ns) rv = ETIMEDOUT;
    }
  }
  sleep_lock_.lock();
  sleep_mtx_ = nullptr;
  sleep_cv_ = nullptr;
  sleep_lock_.unlock();
  // A wake-up by interrupt() returns 0: the caller re-checks its condition
  // and, if it still has to wait, its next sleep() answers kErestartSys.
  return rv;
}

namespace {
// Tells the core this is a busy-wait loop (lets a sibling hardware thread
// run and avoids the memory-order flush when the loop ends).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}
}  // namespace

bool Lwp::spin_wait(const std::atomic<uint32_t>& word, uint32_t seen, int64_t max_ns) {
  Scheduler& s = kernel_.sched();
  // Nobody else runs while a fiber spins on the sim backend.
  if (s.ncpu() < 2 || kernel_.sim()) return false;
  bool had_cpu = cpu() != nullptr;
  if (had_cpu) s.unschedule(this);
  bool changed = false;
  int64_t start = mono_now_ns();
  for (unsigned i = 1;; i++) {
    if (word.load(std::memory_order_acquire) != seen) {
      // Seen in time, or only after the host preempted us (then the spin
      // did not pay off: report it as run out).
      changed = mono_now_ns() - start < max_ns;
      break;
    }
    // The clock and the signal state are looked at now and then only. A
    // pause takes well over a nanosecond on any CPU, so max_ns iterations
    // also end the spin where the clock stands still meanwhile (a virtual
    // clock that only moves when threads sleep).
    if ((i & 31) == 0 && (interrupt_pending() || mono_now_ns() - start >= max_ns || static_cast<int64_t>(i) >= max_ns)) break;
    cpu_relax();
  }
  if (had_cpu) s.schedule(this);
  return changed;
}

void Lwp::interrupt() {
  // On the sim backend a sleep has no slice to end it, so a busy mutex is
  // waited for: its holder is a fiber that runs while this one pauses
  // (for a virtual nanosecond), and is the sleeper itself about to wait
  // more often than not. Bounded, in case the holder waits for a lock
  // this caller holds.
  constexpr int kSimTries = 64;
  for (int tries = 0;; tries++) {
    bool done = true;
    sleep_lock_.lock();
    rumpuser_mtx* m = sleep_mtx_;
    rumpuser_cv* cv = sleep_cv_;
    if (m) {
      struct lwp* owner = nullptr;
      rumpuser_mutex_owner(m, &owner);
      if (owner != nullptr && owner == rumpuser_curlwp()) {
        rumpuser_cv_broadcast(cv);
      } else if (rumpuser_mutex_tryenter(m) == 0) {
        rumpuser_cv_broadcast(cv);
        rumpuser_mutex_exit(m);
      } else {
        // pthread: the sleeper's slice ends the wait soon.
        done = !kernel_.sim() || tries == kSimTries;
      }
    }
    sleep_lock_.unlock();
    if (done) return;
    rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, 1);
  }
}

void drain_lwps(absl::FunctionRef<void(absl::FunctionRef<void(Lwp&)>)> for_each) {
  for (long pause_ns = 10 * 1000;; pause_ns = pause_ns < 1000 * 1000 ? pause_ns * 2 : pause_ns) {
    bool busy = false;
    for_each([&busy](Lwp& l) {
      if (!l.in_kernel_.load(std::memory_order_acquire)) return;
      busy = true;
      l.exiting_.store(true);
      l.interrupt();
    });
    if (!busy) return;
    rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, pause_ns);
  }
}

UserSpace* Lwp::user_space() const {
  return space_override_ ? space_override_ : proc_->space_;
}

Result<Lwp*> Kernel::new_lwp(Proc& p, Lwp::Kind kind) {
  pid_t tid;
  {
    MutexLocker g(procs_.lock());
    if (kind == Lwp::Kind::kProcess) {
      // The first LWP of a process has tid == pid, as on Linux.
      bool first;
      {
        p.assert_tree_locked();
        MutexLocker pg(p.lock_);
        first = p.nlwps_ == 0 && p.state_ == Proc::State::kEmbryo;
      }
      if (first) {
        tid = p.pid();
        procs_.pids().hold(tid);
      } else {
        tid = TRY(procs_.pids().alloc(false, 0));
      }
    } else {
      tid = TRY(procs_.pids().alloc(false, 0));
    }
  }
  Lwp* l = new (kmem_) Lwp(*this, p, tid, kind);
  if (!l) {
    MutexLocker g(procs_.lock());
    procs_.pids().release(tid);
    return err(ENOMEM);
  }
  {
    MutexLocker g(procs_.lock());
    procs_.add_lwp_locked(*l);
    MutexLocker pg(p.lock_);
    p.lwps_.push_back(*l);
    p.nlwps_++;
  }
  l->refresh_cred();
  return l;
}

void Kernel::unlink_lwp(Lwp* l) {
  MutexLocker g(procs_.lock());
  if (l->proc_hook_.is_linked()) {
    // Still on its process's list, so the process is alive. (Husks were
    // taken off when their process ended; their Proc may be gone.)
    Proc& p = l->proc();
    {
      MutexLocker pg(p.lock_);
      p.lwps_.erase(p.lwps_.iterator_to(*l));
      p.nlwps_--;
      cpu_lwp_gone_locked(p, *l);
      l->assert_sig_locked();
      sig_flush_lwp_locked(p, *l);
    }
    // Descriptors of the thread (PIDFD_THREAD) become readable.
    sig_watchers().notify(p, -l->tid());
  }
  if (l->kernel_hook_.is_linked()) procs_.remove_lwp_locked(*l);
  procs_.pids().release(l->tid());
}

void Kernel::free_lwp(Lwp* l) {
  unlink_lwp(l);
  delete l;
}

}  // namespace rump
