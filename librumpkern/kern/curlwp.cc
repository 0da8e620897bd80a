// The calling host thread's kernel context, and kernel entry and exit.
#include "kern/curlwp.h"

#include <rump/rump.h>
#include <rump/rumpuser.h>

#include "base/intrusive_hash.h"
#include "kern/cputime.h"
#include "kern/entry.h"
#include "kern/sim.h"

namespace rump {

namespace entry {
__thread ThreadCtx t_ctx __attribute__((tls_model("initial-exec"))) RUMP_ENTRY_HIDDEN;
RUMP_ENTRY_HIDDEN std::atomic<uint64_t> g_epoch{1};
RUMP_ENTRY_HIDDEN std::atomic<Kernel*> g_default{nullptr};
}  // namespace entry

using entry::check_epoch;
using entry::g_default;
using entry::g_epoch;
using entry::t_ctx;

// Process-wide, outside any kernel: which kernels are alive, an intrusive
// hash table keyed by the kernel's address (the hook is in Kernel), so it
// has no size limit and linking a kernel never fails. Its bucket array comes
// from an arena of its own without a limit, and grows with the number of
// kernels. Changes only at boot and halt; the epoch lets hot paths skip it.
struct KernelRegistry {
  struct Self {
    using type = const Kernel*;
    const Kernel* operator()(const Kernel& k) const { return &k; }
  };
  rumpuser_mtx* mtx = nullptr;
  Kmem kmem;  // unlimited
  IntrusiveHash<Kernel, &Kernel::registry_hook_, Self> live{kmem};

  KernelRegistry() {
    BackendScope scope(nullptr);  // process-wide: the default backend's
    rumpuser_mutex_init(&mtx, RUMPUSER_MTX_SPIN);
  }
  bool alive_locked(Kernel* k) const { return live.find(k) != nullptr; }
  // Alive, and the same boot as when the pointer was cached.
  bool same_boot_locked(Kernel* k, uint64_t serial) const {
    const Kernel* x = live.find(k);
    return x != nullptr && x->serial() == serial;
  }
};

namespace {

// Never destroyed: threads may still look at it while the process exits.
// In static storage, so that making it allocates nothing that can fail
// (an injected failure of the process's first boot would otherwise be a
// panic); its table grows from a small array inside it.
KernelRegistry& registry() {
  alignas(KernelRegistry) static unsigned char storage[sizeof(KernelRegistry)];
  static KernelRegistry* r = new (storage) KernelRegistry();
  return *r;
}

// Gives the thread's implicit LWP back when the host thread ends.
struct ThreadExitGuard {
  bool armed = false;
  ~ThreadExitGuard();
};
thread_local ThreadExitGuard t_exit_guard;

// Runs fn on a CPU of k as a temporary LWP of init, for work done for a
// thread that has no usable LWP of its own (making or freeing one).
template <class Fn>
void with_temp_lwp(Kernel& k, Fn&& fn) {
  // On k's backend: the temporary LWP's own locks, and the work.
  BackendScope scope(k.backend());
  Lwp tmp(k, *k.procs().init(), 0, Lwp::Kind::kKthread);
  RunAs as(k, &tmp);
  fn();
}

// Gives back an implicit LWP of a kernel that may no longer exist.
void drop_implicit(Kernel* k, uint64_t serial, Lwp* l) {
  KernelRegistry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  if (r.same_boot_locked(k, serial) && !k->halting()) with_temp_lwp(*k, [&] { k->free_lwp(l); });
  rumpuser_mutex_exit(r.mtx);
}

}  // namespace

namespace entry {

// Drops cached pointers into kernels that have been halted.
void revalidate(ThreadCtx& t) {
  KernelRegistry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  t.epoch = g_epoch.load(std::memory_order_acquire);
  if (t.cur && !r.same_boot_locked(t.cur, t.cur_serial)) t.cur = nullptr;
  if (t.implicit_k && !r.same_boot_locked(t.implicit_k, t.implicit_serial))
    t.implicit_k = nullptr, t.implicit = nullptr;
  for (auto& sp : t.spare)
    if (sp.k && !r.same_boot_locked(sp.k, sp.serial)) sp = {};
  if (t.bound_k && !r.same_boot_locked(t.bound_k, t.bound_serial)) t.bound_k = nullptr, t.bound = nullptr;
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
  with_temp_lwp(k, [&] { r = k.new_lwp(*k.procs().init(), Lwp::Kind::kImplicit); });
  if (!r.ok()) return nullptr;
  t.implicit_k = &k;
  t.implicit_serial = k.serial();
  t.implicit = r.value();
  t_exit_guard.armed = true;
  // The thread's time in k is the implicit LWP's until it takes up one of
  // a process (bind_lwp).
  if (t.bound_k != &k) cpu_on(*t.implicit);
  return t.implicit;
}

void drop_dead_bound(ThreadCtx& t, Kernel& k, Lwp* l) {
  t.bound_k = nullptr;
  t.bound = nullptr;
  if (t.implicit_k == &k && t.implicit) cpu_on(*t.implicit);
  with_temp_lwp(k, [&] { k.free_lwp(l); });
}

void leave_dead(Kernel& k, Lwp* l) {
  // The process ended (exit, a fatal signal): the thread goes on in
  // implicit context, and the husk goes now.
  k.sched().unschedule(l);
  ThreadCtx& t = t_ctx;
  if (t.bound == l) {
    t.bound = nullptr;
    t.bound_k = nullptr;
    if (t.implicit_k == &k && t.implicit) cpu_on(*t.implicit);
  }
  with_temp_lwp(k, [&] { k.free_lwp(l); });
  rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, nullptr);
}

}  // namespace entry

ThreadExitGuard::~ThreadExitGuard() {
  // The host thread is going: give its implicit LWPs back, if their
  // kernels are still alive.
  ThreadCtx& t = t_ctx;
  for (auto& sp : t.spare) {
    if (sp.k) drop_implicit(sp.k, sp.serial, sp.l);
    sp = {};
  }
  if (t.implicit_k) drop_implicit(t.implicit_k, t.implicit_serial, t.implicit);
  t.implicit_k = nullptr;
  t.implicit = nullptr;
}

ThreadCtx& thread_ctx() { return t_ctx; }

void registry_add(Kernel* k, bool make_default) {
  KernelRegistry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  r.live.insert(*k);
  if (make_default) g_default.store(k);
  g_epoch.fetch_add(1);
  rumpuser_mutex_exit(r.mtx);
}

void registry_remove(Kernel* k) {
  KernelRegistry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  if (r.alive_locked(k)) r.live.erase(*k);
  Kernel* expected = k;
  g_default.compare_exchange_strong(expected, nullptr);
  g_epoch.fetch_add(1);
  rumpuser_mutex_exit(r.mtx);
}

bool registry_alive(Kernel* k) {
  KernelRegistry& r = registry();
  rumpuser_mutex_enter_nowrap(r.mtx);
  bool a = r.alive_locked(k);
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
void halt_after_reboot(Kernel* k) {
  // A sim kernel halts from its host thread's own stack, never under one
  // of its fibers: rump_sim_run does it when the run ends.
  if (k->sim() && rumpuser_sim_check(k->sim()->world, 1) != 0) return;
  if (k->try_begin_halt()) k->halt();
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
  // The thread's time goes from the LWP it ran (its bound one, else its
  // implicit one) to l (else the implicit one).
  Lwp* implicit = t.implicit_k == &k ? t.implicit : nullptr;
  Lwp* ran = implicit;
  if (t.bound_k == &k && t.bound) {
    t.bound->bound_.store(false);
    ran = t.bound;
  }
  cpu_switch(ran, l ? l : implicit);
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

Lwp* enter(Kernel& k) {
  ThreadCtx& t = t_ctx;
  check_epoch(t);
  return entry::enter_checked(t, k);
}

int enter_error(Kernel& k) { return sim_check_entry(k) != 0 ? EINVAL : ENOMEM; }

void leave(Kernel& k, Lwp* l) { entry::leave_inline(k, l); }

}  // namespace rump
