// The calling host thread's kernel context, and kernel entry and exit.
#include "kern/curlwp.h"

#include <rump/rumpuser.h>

#include "kern/fork.h"

namespace rump {

namespace {

// Process-wide, outside any kernel: which kernels are alive. Changes only
// at boot and halt; the epoch lets hot paths skip the registry.
struct Registry {
  rumpuser_mtx* mtx = nullptr;
  Kernel* live[64] = {};
  int nlive = 0;
};
Registry& registry() {
  static Registry r = [] {
    Registry x;
    rumpuser_mutex_init(&x.mtx, RUMPUSER_MTX_SPIN);
    return x;
  }();
  return r;
}
std::atomic<uint64_t> g_epoch{1};
std::atomic<Kernel*> g_default{nullptr};

thread_local ThreadCtx t_ctx;

bool alive_locked(Registry& r, Kernel* k) {
  for (int i = 0; i < r.nlive; i++)
    if (r.live[i] == k) return true;
  return false;
}

// Drops cached pointers into kernels that have been halted.
void revalidate(ThreadCtx& t) {
  Registry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  t.epoch = g_epoch.load(std::memory_order_acquire);
  if (t.cur && !alive_locked(r, t.cur)) t.cur = nullptr;
  if (t.implicit_k && !alive_locked(r, t.implicit_k)) t.implicit_k = nullptr, t.implicit = nullptr;
  if (t.bound_k && !alive_locked(r, t.bound_k)) t.bound_k = nullptr, t.bound = nullptr;
  rumpuser_mutex_exit(r.mtx);
}

inline void check_epoch(ThreadCtx& t) {
  if (__builtin_expect(t.epoch != g_epoch.load(std::memory_order_acquire), 0)) revalidate(t);
}

// Frees an LWP whose process has gone (a husk) or that was released.
void free_lwp(Kernel& k, Lwp* l) {
  MutexLocker g(k.proc_tree_lock_);
  if (l->proc_hook_.is_linked()) {
    // Still on its process's list (an implicit LWP of init): the process
    // is alive. Husks were taken off when their process ended.
    Proc& p = l->proc();
    MutexLocker pg(p.lock_);
    p.lwps_.erase(p.lwps_.iterator_to(*l));
    p.nlwps_--;
  }
  k.all_lwps_.erase(k.all_lwps_.iterator_to(*l));
  k.pids_.release(l->tid());
  delete l;
}

// Runs fn on a CPU of k as a temporary LWP of init, for work done for a
// thread that has no usable LWP of its own (making or freeing one).
template <class Fn>
void with_temp_lwp(Kernel& k, Fn&& fn) {
  Lwp tmp(k, *k.init_, 0, Lwp::Kind::kKthread);
  struct lwp* prev = rumpuser_curlwp();
  rumpuser_curlwpop(RUMPUSER_LWP_SET, reinterpret_cast<struct lwp*>(&tmp));
  k.sched().schedule(&tmp);
  fn();
  k.sched().unschedule(&tmp);
  rumpuser_curlwpop(RUMPUSER_LWP_SET, prev);
}

Lwp* implicit_lwp(ThreadCtx& t, Kernel& k) {
  if (t.implicit_k == &k) return t.implicit;
  Result<Lwp*> r = err(ENOMEM);
  with_temp_lwp(k, [&] { r = k.new_lwp(*k.init_, Lwp::Kind::kImplicit); });
  if (!r.ok()) return nullptr;
  // A cached implicit LWP of another kernel stays with that kernel; it
  // goes when the kernel halts.
  t.implicit_k = &k;
  t.implicit = r.value();
  return t.implicit;
}

}  // namespace

ThreadCtx::~ThreadCtx() {
  // The host thread is going: give its implicit LWP back, if its kernel is
  // still alive.
  if (!implicit_k) return;
  Registry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  bool alive = alive_locked(r, implicit_k) && !implicit_k->halting_.load();
  if (alive) {
    Kernel& k = *implicit_k;
    Lwp* l = implicit;
    with_temp_lwp(k, [&] { free_lwp(k, l); });
  }
  rumpuser_mutex_exit(r.mtx);
  implicit_k = nullptr;
  implicit = nullptr;
}

ThreadCtx& thread_ctx() { return t_ctx; }

void registry_add(Kernel* k, bool make_default) {
  Registry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  if (r.nlive < 64) r.live[r.nlive++] = k;
  if (make_default) g_default.store(k);
  g_epoch.fetch_add(1);
  rumpuser_mutex_exit(r.mtx);
}

void registry_remove(Kernel* k) {
  Registry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  for (int i = 0; i < r.nlive; i++) {
    if (r.live[i] == k) {
      r.live[i] = r.live[--r.nlive];
      break;
    }
  }
  Kernel* expected = k;
  g_default.compare_exchange_strong(expected, nullptr);
  g_epoch.fetch_add(1);
  rumpuser_mutex_exit(r.mtx);
}

bool registry_alive(Kernel* k) {
  Registry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  bool a = alive_locked(r, k);
  rumpuser_mutex_exit(r.mtx);
  return a;
}

Kernel* default_kernel() { return g_default.load(std::memory_order_acquire); }

Kernel* current_kernel() {
  ThreadCtx& t = t_ctx;
  check_epoch(t);
  return t.cur ? t.cur : g_default.load(std::memory_order_acquire);
}

void set_current_kernel(Kernel* k) {
  ThreadCtx& t = t_ctx;
  check_epoch(t);
  t.cur = k;
}

Lwp* bound_lwp(Kernel& k) {
  ThreadCtx& t = t_ctx;
  check_epoch(t);
  if (t.bound_k != &k || t.bound == nullptr) return nullptr;
  if (t.bound->dead_.load()) return nullptr;
  return t.bound;
}

void bind_lwp(Kernel& k, Lwp* l) {
  ThreadCtx& t = t_ctx;
  check_epoch(t);
  if (t.bound_k == &k && t.bound) t.bound->bound_.store(false);
  if (l) {
    l->bound_.store(true);
    t.bound_k = &k;
    t.bound = l;
  } else {
    t.bound_k = nullptr;
    t.bound = nullptr;
  }
}

Lwp* enter(Kernel& k) {
  ThreadCtx& t = t_ctx;
  check_epoch(t);
  Lwp* l = (t.bound_k == &k) ? t.bound : nullptr;
  if (l && __builtin_expect(l->dead_.load(std::memory_order_relaxed), 0)) {
    // The process ended while this thread was outside the kernel.
    t.bound_k = nullptr;
    t.bound = nullptr;
    with_temp_lwp(k, [&] { free_lwp(k, l); });
    l = nullptr;
  }
  if (!l) {
    l = implicit_lwp(t, k);
    if (!l) return nullptr;
    rumpuser_curlwpop(RUMPUSER_LWP_SET, reinterpret_cast<struct lwp*>(l));
    k.sched().schedule(l);
    return l;
  }
  // A process LWP: announce it is inside before looking at exit state
  // (exit1 sets the state, then looks at in_kernel_).
  l->in_kernel_.store(true, std::memory_order_seq_cst);
  rumpuser_curlwpop(RUMPUSER_LWP_SET, reinterpret_cast<struct lwp*>(l));
  k.sched().schedule(l);
  l->refresh_cred();
  return l;
}

void leave(Kernel& k, Lwp* l) {
  if (l->kind() == Lwp::Kind::kProcess) {
    if (__builtin_expect(l->exiting_.load(std::memory_order_relaxed) ||
                             l->proc().sigpending_.load(std::memory_order_relaxed) != 0,
                         0) &&
        !l->dead_.load()) {
      check_fatal_signals(*l);
    }
    bool dead = l->dead_.load();
    l->in_kernel_.store(false, std::memory_order_release);
    if (__builtin_expect(dead, 0)) {
      // The process ended (exit, a fatal signal): the thread goes on in
      // implicit context, and the husk goes now.
      k.sched().unschedule(l);
      ThreadCtx& t = t_ctx;
      if (t.bound == l) {
        t.bound = nullptr;
        t.bound_k = nullptr;
      }
      with_temp_lwp(k, [&] { free_lwp(k, l); });
      rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, nullptr);
      return;
    }
  }
  k.sched().unschedule(l);
  rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, nullptr);
}

long syscall_enter(Kernel& k, long nr, const long* args) {
  Lwp* l = enter(k);
  if (__builtin_expect(l == nullptr, 0)) return -ENOMEM;
  long r;
  const Sysent* table = sysent_table();
  if (__builtin_expect(static_cast<unsigned long>(nr) >= static_cast<unsigned long>(kMaxSyscall) ||
                           table[nr].entry == nullptr,
                       0)) {
    r = -ENOSYS;
  } else if (__builtin_expect(l->exiting_.load(std::memory_order_relaxed), 0)) {
    r = -EINTR;
  } else {
    r = table[nr].entry(*l, args);
  }
  if (SyscallTraceFn fn = k.trace_fn_.load(std::memory_order_relaxed)) fn(k.trace_arg_, nr, args, r);
  leave(k, l);
  return r;
}

}  // namespace rump
