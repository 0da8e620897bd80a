// The calling host thread's kernel context, and kernel entry and exit.
#include "kern/curlwp.h"

#include <rump/rump.h>
#include <rump/rumpuser.h>

#include "kern/fork.h"
#include "kern/sim.h"

namespace rump {

namespace {

// Process-wide, outside any kernel: which kernels are alive. Changes only
// at boot and halt; the epoch lets hot paths skip the registry.
struct Registry {
  rumpuser_mtx* mtx = nullptr;
  Kernel* live[kMaxLiveKernels] = {};
  uint64_t serial[kMaxLiveKernels] = {};
  int nlive = 0;
};
Registry& registry() {
  static Registry r = [] {
    Registry x;
    BackendScope scope(nullptr);  // process-wide: the default backend's
    rumpuser_mutex_init(&x.mtx, RUMPUSER_MTX_SPIN);
    return x;
  }();
  return r;
}
std::atomic<uint64_t> g_epoch{1};
std::atomic<Kernel*> g_default{nullptr};

__attribute__((tls_model("initial-exec"))) thread_local ThreadCtx t_ctx;

// Gives the thread's implicit LWP back when the host thread ends.
struct ThreadExitGuard {
  bool armed = false;
  ~ThreadExitGuard();
};
thread_local ThreadExitGuard t_exit_guard;

bool alive_locked(Registry& r, Kernel* k) {
  for (int i = 0; i < r.nlive; i++)
    if (r.live[i] == k) return true;
  return false;
}

// Alive, and the same boot as when the pointer was cached.
bool same_boot_locked(Registry& r, Kernel* k, uint64_t serial) {
  for (int i = 0; i < r.nlive; i++)
    if (r.live[i] == k) return r.serial[i] == serial;
  return false;
}

// Drops cached pointers into kernels that have been halted.
void revalidate(ThreadCtx& t) {
  Registry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  t.epoch = g_epoch.load(std::memory_order_acquire);
  if (t.cur && !same_boot_locked(r, t.cur, t.cur_serial)) t.cur = nullptr;
  if (t.implicit_k && !same_boot_locked(r, t.implicit_k, t.implicit_serial))
    t.implicit_k = nullptr, t.implicit = nullptr;
  for (auto& sp : t.spare)
    if (sp.k && !same_boot_locked(r, sp.k, sp.serial)) sp = {};
  if (t.bound_k && !same_boot_locked(r, t.bound_k, t.bound_serial)) t.bound_k = nullptr, t.bound = nullptr;
  rumpuser_mutex_exit(r.mtx);
}

inline void check_epoch(ThreadCtx& t) {
  if (__builtin_expect(t.epoch != g_epoch.load(std::memory_order_acquire), 0)) revalidate(t);
}


// Runs fn on a CPU of k as a temporary LWP of init, for work done for a
// thread that has no usable LWP of its own (making or freeing one).
template <class Fn>
void with_temp_lwp(Kernel& k, Fn&& fn) {
  // On k's backend: the temporary LWP's own locks, and the work.
  BackendScope scope(k.backend_);
  Lwp tmp(k, *k.init_, 0, Lwp::Kind::kKthread);
  RunAs as(k, &tmp);
  fn();
}

// Gives back an implicit LWP of a kernel that may no longer exist.
void drop_implicit(Kernel* k, uint64_t serial, Lwp* l) {
  Registry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  if (same_boot_locked(r, k, serial) && !k->halting_.load()) with_temp_lwp(*k, [&] { k->free_lwp(l); });
  rumpuser_mutex_exit(r.mtx);
}

Lwp* make_implicit_lwp(ThreadCtx& t, Kernel& k) {
  // The current one goes to the spares; one of those may be k's.
  ThreadCtx::Spare mru{t.implicit_k, t.implicit_serial, t.implicit};
  for (auto& sp : t.spare) {
    if (sp.k == &k && sp.serial == k.serial()) {
      t.implicit_k = sp.k;
      t.implicit_serial = sp.serial;
      t.implicit = sp.l;
      sp = mru;
      return t.implicit;
    }
  }
  if (mru.k) {
    ThreadCtx::Spare& last = t.spare[kSpareImplicit - 1];
    if (last.k) drop_implicit(last.k, last.serial, last.l);
    for (int i = kSpareImplicit - 1; i > 0; i--) t.spare[i] = t.spare[i - 1];
    t.spare[0] = mru;
    t.implicit_k = nullptr;
    t.implicit = nullptr;
  }
  Result<Lwp*> r = err(ENOMEM);
  with_temp_lwp(k, [&] { r = k.new_lwp(*k.init_, Lwp::Kind::kImplicit); });
  if (!r.ok()) return nullptr;
  t.implicit_k = &k;
  t.implicit_serial = k.serial();
  t.implicit = r.value();
  t_exit_guard.armed = true;
  return t.implicit;
}

inline Lwp* implicit_lwp(ThreadCtx& t, Kernel& k) {
  if (__builtin_expect(t.implicit_k == &k, 1)) return t.implicit;
  return make_implicit_lwp(t, k);
}

}  // namespace

ThreadExitGuard::~ThreadExitGuard() {
  // The host thread is going: give its implicit LWP back, if its kernel is
  // still alive.
  ThreadCtx& t = t_ctx;
  for (auto& sp : t.spare) {
    if (sp.k) drop_implicit(sp.k, sp.serial, sp.l);
    sp = {};
  }
  Kernel*& implicit_k = t.implicit_k;
  Lwp*& implicit = t.implicit;
  if (!implicit_k) return;
  Registry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  bool alive = same_boot_locked(r, implicit_k, t.implicit_serial) && !implicit_k->halting_.load();
  if (alive) {
    Kernel& k = *implicit_k;
    Lwp* l = implicit;
    with_temp_lwp(k, [&] { k.free_lwp(l); });
  }
  rumpuser_mutex_exit(r.mtx);
  implicit_k = nullptr;
  implicit = nullptr;
}

ThreadCtx& thread_ctx() { return t_ctx; }

bool registry_add(Kernel* k, bool make_default) {
  Registry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  bool ok = r.nlive < kMaxLiveKernels;
  if (ok) {
    r.live[r.nlive] = k;
    r.serial[r.nlive] = k->serial();
    r.nlive++;
    if (make_default) g_default.store(k);
    g_epoch.fetch_add(1);
  }
  rumpuser_mutex_exit(r.mtx);
  return ok;
}

void registry_remove(Kernel* k) {
  Registry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  for (int i = 0; i < r.nlive; i++) {
    if (r.live[i] == k) {
      --r.nlive;
      r.live[i] = r.live[r.nlive];
      r.serial[i] = r.serial[r.nlive];
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

// A reboot() asked for k to halt: do it now that the call has left it.
void halt_requested(Kernel* k) {
  // A sim kernel halts from its host thread's own stack, never under one
  // of its fibers: rump_sim_run does it when the run ends.
  if (k->sim_ && rumpuser_sim_check(k->sim_->world, 1) != 0) return;
  bool expected = false;
  if (!k->halting_.compare_exchange_strong(expected, true)) return;
  k->halting_.store(false);
  k->halt();
}

void set_current_kernel(Kernel* k) {
  ThreadCtx& t = t_ctx;
  check_epoch(t);
  t.cur = k;
  t.cur_serial = k ? k->serial() : 0;
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
    t.bound_serial = k.serial();
    t.bound = l;
  } else {
    t.bound_k = nullptr;
    t.bound = nullptr;
  }
}

namespace {

// The kernel-entry path; `t` has been checked against the halt epoch.
inline Lwp* enter_checked(ThreadCtx& t, Kernel& k) {
  // The thread's hypercalls go to k's backend from here on (until it
  // enters a kernel with another one).
  if (__builtin_expect(t.backend != k.backend_, 0)) {
    // A sim kernel admits only its own host thread and fibers.
    if (sim_check_entry(k) != 0) return nullptr;
    rumpuser_backend_switch(k.backend_);
    t.backend = k.backend_;
  }
  Lwp* l = (t.bound_k == &k) ? t.bound : nullptr;
  if (l && __builtin_expect(l->dead_.load(std::memory_order_relaxed), 0)) {
    // The process ended while this thread was outside the kernel.
    t.bound_k = nullptr;
    t.bound = nullptr;
    with_temp_lwp(k, [&] { k.free_lwp(l); });
    l = nullptr;
  }
  if (!l) {
    l = implicit_lwp(t, k);
    if (!l) return nullptr;
    // A sim kernel's client fibers are inside it whenever halt runs (on
    // the same host thread): halt must see them to get them out.
    if (__builtin_expect(k.sim_ != nullptr, 0)) l->in_kernel_.store(true, std::memory_order_relaxed);
    rumpuser_curlwpop(RUMPUSER_LWP_SET, reinterpret_cast<struct lwp*>(l));
    k.sched().schedule(l);
    return l;
  }
  // A process LWP: announce it is inside before looking at exit state
  // (exit1 sets the state, then looks at in_kernel_). The scheduler's
  // compare-and-swap below is a full barrier on x86-64 and arm64 (a locked
  // instruction; casal), so this store is visible before the later load
  // of exiting_ without a fence of its own.
  l->in_kernel_.store(true, std::memory_order_relaxed);
  rumpuser_curlwpop(RUMPUSER_LWP_SET, reinterpret_cast<struct lwp*>(l));
  k.sched().schedule(l);
  l->refresh_cred();
  return l;
}

inline void leave_inline(Kernel& k, Lwp* l) {
  if (l->kind() == Lwp::Kind::kProcess) {
    // A dead LWP's process may already be freed (reaped by init at once,
    // or by a parent on another thread): never look at it then.
    bool dead = l->dead_.load(std::memory_order_acquire);
    if (!dead && __builtin_expect(l->exiting_.load(std::memory_order_relaxed) ||
                                      l->proc().sigpending_.load(std::memory_order_relaxed) != 0,
                                  0)) {
      check_fatal_signals(*l);
      dead = l->dead_.load(std::memory_order_acquire);
    }
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
      with_temp_lwp(k, [&] { k.free_lwp(l); });
      rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, nullptr);
      return;
    }
  }
  if (__builtin_expect(k.sim_ != nullptr, 0)) l->in_kernel_.store(false, std::memory_order_relaxed);
  k.sched().unschedule(l);
  rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, nullptr);
}

}  // namespace

Lwp* enter(Kernel& k) {
  ThreadCtx& t = t_ctx;
  check_epoch(t);
  return enter_checked(t, k);
}

void leave(Kernel& k, Lwp* l) { leave_inline(k, l); }


inline long syscall_enter_checked(ThreadCtx& t, Kernel& k, long nr, const long* args) {
  Lwp* l = enter_checked(t, k);
  if (__builtin_expect(l == nullptr, 0)) return sim_check_entry(k) != 0 ? -EINVAL : -ENOMEM;
  long r;
  const Sysent* table = g_sysent;
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
  leave_inline(k, l);
  return r;
}

long syscall_enter(Kernel& k, long nr, const long* args) {
  ThreadCtx& t = t_ctx;
  check_epoch(t);
  return syscall_enter_checked(t, k, nr, args);
}

}  // namespace rump

// The raw system call entry of the C API, next to its fast path so the
// whole of it compiles into one function.
extern "C" long rump_syscall(long nr, const long args[6]) {
  static const long kZero[6] = {};
  rump::ThreadCtx& t = rump::t_ctx;
  rump::check_epoch(t);
  rump::Kernel* k = t.cur ? t.cur : rump::g_default.load(std::memory_order_acquire);
  if (__builtin_expect(k == nullptr, 0)) return -ENOSYS;
  long r = rump::syscall_enter_checked(t, *k, nr, args ? args : kZero);
  if (__builtin_expect(k->halt_requested_.load(std::memory_order_relaxed), 0)) rump::halt_requested(k);
  return r;
}
