// mutex.h: the kernel's own locks, on the rumpuser hypercalls.
//
// Kernel and libvmspace code never use std::mutex or absl::Mutex: those would
// block a host thread that still holds a virtual CPU. Mutex and RwLock are
// sleep locks: while they wait they give the CPU back (rumpuser's KLOCK
// wrap). SpinLock never does; hold it only for a few instructions. CondVar
// waits release the CPU. All carry clang thread-safety capabilities, checked
// in the clang build with -Werror=thread-safety.
//
// Idioms: fields annotated ABSL_GUARDED_BY(mu_) with foo()/foo_locked()
// pairs when one lock guards many fields; Guarded<T> (guarded.h) for a
// self-contained aggregate reached only through with().
#pragma once

#include <rump/rumpuser.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "sync/lock_rank.h"

namespace rump {

// Who holds a lock exclusively, in debug builds only (release builds keep
// nothing and check nothing): the LWP (kernel code always runs as one;
// fibers of the deterministic backend share a host thread but not an LWP),
// else the host thread (code that runs outside any kernel, e.g. libvmspace
// alone). check() panics if the caller is not the holder.
class LockOwner {
 public:
#ifndef NDEBUG
  void note() { owner_.store(self_id(), std::memory_order_relaxed); }
  void clear() { owner_.store(nullptr, std::memory_order_relaxed); }
  void check() const {
    if (owner_.load(std::memory_order_relaxed) != self_id()) not_held();
  }

 private:
  static const void* self_id() {
    static thread_local char thread_token;
    if (struct lwp* l = rumpuser_curlwp()) return l;
    return &thread_token;
  }
  [[noreturn]] static void not_held() {
    rumpuser_dprintf("rump kernel panic: a lock asserted held is not held by the caller\n");
    rumpuser_exit(RUMPUSER_PANIC);
  }
  std::atomic<const void*> owner_{nullptr};
#else
  void note() {}
  void clear() {}
  void check() const {}
#endif
};

class ABSL_LOCKABLE Mutex {
 public:
  explicit Mutex(LockRank rank = LockRank::kNone) : rank_(rank) {
    rumpuser_mutex_init(&mtx_, RUMPUSER_MTX_KMUTEX);
  }
  ~Mutex() { rumpuser_mutex_destroy(mtx_); }
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    lock_rank_acquire(rank_);
    rumpuser_mutex_enter(mtx_);
    note_owner();
  }
  bool try_lock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    if (rumpuser_mutex_tryenter(mtx_) != 0) return false;
    lock_rank_acquire(rank_);
    note_owner();
    return true;
  }
  void unlock() ABSL_UNLOCK_FUNCTION() {
    clear_owner();
    rumpuser_mutex_exit(mtx_);
    lock_rank_release(rank_);
  }
  // True if the calling thread's LWP holds it (for assertions).
  bool owned() const {
    struct lwp* o = nullptr;
    rumpuser_mutex_owner(mtx_, &o);
    return o != nullptr && o == rumpuser_curlwp();
  }
  // Tells the lock analysis the caller holds the lock (a path the analysis
  // cannot follow: the lock was taken through another object that shares
  // it). Debug builds check it: the owner recorded at lock() must be the
  // caller; release builds compile it away.
  void assert_held() const ABSL_ASSERT_EXCLUSIVE_LOCK() { owner_.check(); }
  rumpuser_mtx* raw() const { return mtx_; }
  LockRank rank() const { return rank_; }

 private:
  friend class CondVar;
  void note_owner() { owner_.note(); }
  void clear_owner() { owner_.clear(); }
  [[no_unique_address]] LockOwner owner_;  // nothing in release builds
  rumpuser_mtx* mtx_;
  LockRank rank_;
};

class ABSL_LOCKABLE SpinLock {
 public:
  explicit SpinLock(LockRank rank = LockRank::kNone) : rank_(rank) {
    rumpuser_mutex_init(&mtx_, RUMPUSER_MTX_SPIN);
  }
  ~SpinLock() { rumpuser_mutex_destroy(mtx_); }
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    lock_rank_acquire(rank_);
    rumpuser_mutex_enter_nowrap(mtx_);
  }
  void unlock() ABSL_UNLOCK_FUNCTION() {
    rumpuser_mutex_exit(mtx_);
    lock_rank_release(rank_);
  }
  rumpuser_mtx* raw() const { return mtx_; }

 private:
  rumpuser_mtx* mtx_;
  LockRank rank_;
};

class ABSL_LOCKABLE RwLock {
 public:
  explicit RwLock(LockRank rank = LockRank::kNone) : rank_(rank) { rumpuser_rw_init(&rw_); }
  ~RwLock() { rumpuser_rw_destroy(rw_); }
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    lock_rank_acquire(rank_);
    rumpuser_rw_enter(RUMPUSER_RW_WRITER, rw_);
    writer_.note();
  }
  void unlock() ABSL_UNLOCK_FUNCTION() {
    writer_.clear();
    rumpuser_rw_exit(rw_);
    lock_rank_release(rank_);
  }
  void lock_shared() ABSL_SHARED_LOCK_FUNCTION() {
    lock_rank_acquire(rank_);
    rumpuser_rw_enter(RUMPUSER_RW_READER, rw_);
  }
  void unlock_shared() ABSL_UNLOCK_FUNCTION() {
    rumpuser_rw_exit(rw_);
    lock_rank_release(rank_);
  }
  // As Mutex::assert_held: the writer is checked in debug builds.
  void assert_held() const ABSL_ASSERT_EXCLUSIVE_LOCK() { writer_.check(); }
  // Held for reading or writing. Readers are not recorded (that would cost
  // a shared write on every read lock), so this only informs the analysis.
  void assert_held_shared() const ABSL_ASSERT_SHARED_LOCK() {}

 private:
  [[no_unique_address]] LockOwner writer_;
  rumpuser_rw* rw_;
  LockRank rank_;
};

template <class L>
class ABSL_SCOPED_LOCKABLE Locker {
 public:
  explicit Locker(L& l) ABSL_EXCLUSIVE_LOCK_FUNCTION(l) : l_(l) { l_.lock(); }
  ~Locker() ABSL_UNLOCK_FUNCTION() { l_.unlock(); }
  Locker(const Locker&) = delete;
  Locker& operator=(const Locker&) = delete;

 private:
  L& l_;
};
using MutexLocker = Locker<Mutex>;
using SpinLocker = Locker<SpinLock>;

class ABSL_SCOPED_LOCKABLE SharedLocker {
 public:
  explicit SharedLocker(RwLock& l) ABSL_SHARED_LOCK_FUNCTION(l) : l_(l) { l_.lock_shared(); }
  ~SharedLocker() ABSL_UNLOCK_FUNCTION() { l_.unlock_shared(); }

 private:
  RwLock& l_;
};

// A condition variable bound to Mutex waits; releases the CPU while asleep.
class CondVar {
 public:
  CondVar() { rumpuser_cv_init(&cv_); }
  ~CondVar() { rumpuser_cv_destroy(cv_); }
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;
  // The wait gives the mutex up and takes it again: its recorded owner
  // follows (debug builds).
  void wait(Mutex& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m) {
    m.clear_owner();
    rumpuser_cv_wait(cv_, m.raw());
    m.note_owner();
  }
  // Relative timeout; returns 0 or ETIMEDOUT.
  int timed_wait(Mutex& m, int64_t nsec) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m) {
    if (nsec < 0) nsec = 0;
    m.clear_owner();
    int r = rumpuser_cv_timedwait(cv_, m.raw(), nsec / 1000000000, nsec % 1000000000);
    m.note_owner();
    return r;
  }
  void signal() { rumpuser_cv_signal(cv_); }
  void broadcast() { rumpuser_cv_broadcast(cv_); }
  bool has_waiters() const {
    int n = 0;
    rumpuser_cv_has_waiters(cv_, &n);
    return n != 0;
  }
  rumpuser_cv* raw() const { return cv_; }

 private:
  rumpuser_cv* cv_;
};

}  // namespace rump
