// entry.h: the inline kernel-entry fast path (internal to the core).
//
// enter()/leave() and the system call entry (kern/syscall.cc) share these
// so that a system call compiles into one function: the thread's context is
// one initial-exec TLS access, the halt epoch one compare, the LWP a cached
// pointer. Everything rare (a changed epoch, a first or dead LWP, exit and
// fatal signals) goes out of line to curlwp.cc.
//
// Who may include it: curlwp.cc and syscall.cc only.
#pragma once

#include <atomic>
#include <cstdint>

#include "kern/curlwp.h"
#include "kern/fork.h"
#include "kern/kernel.h"
#include "kern/sim.h"

namespace rump {
namespace entry {

// Hidden: private to the library, so the fast path reaches them
// PC-relative, not through the GOT.
#define RUMP_ENTRY_HIDDEN __attribute__((visibility("hidden")))

// __thread, not thread_local: plain data with no constructor, so another
// file of the library reaches it without a TLS wrapper call.
extern __thread ThreadCtx t_ctx __attribute__((tls_model("initial-exec"))) RUMP_ENTRY_HIDDEN;
extern std::atomic<uint64_t> g_epoch RUMP_ENTRY_HIDDEN;
extern std::atomic<Kernel*> g_default RUMP_ENTRY_HIDDEN;

// Slow paths (curlwp.cc).
RUMP_ENTRY_HIDDEN void revalidate(ThreadCtx& t);
RUMP_ENTRY_HIDDEN Lwp* make_implicit_lwp(ThreadCtx& t, Kernel& k);
// The thread's bound LWP is a husk: unbind and free it.
RUMP_ENTRY_HIDDEN void drop_dead_bound(ThreadCtx& t, Kernel& k, Lwp* l);
// l's process ended during the call: unbind l and free it, give up the CPU.
RUMP_ENTRY_HIDDEN void leave_dead(Kernel& k, Lwp* l);

inline void check_epoch(ThreadCtx& t) {
  if (__builtin_expect(t.epoch != g_epoch.load(std::memory_order_acquire), 0)) revalidate(t);
}

// The kernel-entry path; `t` has been checked against the halt epoch.
inline Lwp* enter_checked(ThreadCtx& t, Kernel& k) {
  // The thread's hypercalls go to k's backend from here on (until it
  // enters a kernel with another one).
  if (__builtin_expect(t.backend != k.backend(), 0)) {
    // A sim kernel admits only its own host thread and fibers.
    if (sim_check_entry(k) != 0) return nullptr;
    rumpuser_backend_switch(k.backend());
    t.backend = k.backend();
  }
  Lwp* l = (t.bound_k == &k) ? t.bound : nullptr;
  if (l && __builtin_expect(l->dead_.load(std::memory_order_relaxed), 0)) {
    // The process ended while this thread was outside the kernel.
    drop_dead_bound(t, k, l);
    l = nullptr;
  }
  if (!l) {
    l = __builtin_expect(t.implicit_k == &k, 1) ? t.implicit : make_implicit_lwp(t, k);
    if (!l) return nullptr;
    // A sim kernel's client fibers are inside it whenever its halt runs
    // (on the same host thread): halt must see them to get them out.
    if (__builtin_expect(k.sim() != nullptr, 0)) l->in_kernel_.store(true, std::memory_order_relaxed);
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
                                      (l->proc().sigpending_.load(std::memory_order_relaxed) |
                                       l->sigpending_.load(std::memory_order_relaxed)) != 0,
                                  0)) {
      check_fatal_signals(*l);
      dead = l->dead_.load(std::memory_order_acquire);
    }
    if (__builtin_expect(dead, 0)) {
      l->in_kernel_.store(false, std::memory_order_release);
      leave_dead(k, l);
      return;
    }
    // The CPU goes first: once in_kernel_ is false, a halt that waited
    // for it may free the LWP, so that store is the last touch of l.
    k.sched().unschedule(l);
    l->in_kernel_.store(false, std::memory_order_release);
    rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, nullptr);
    return;
  } else if (__builtin_expect(k.sim() != nullptr, 0)) {
    l->in_kernel_.store(false, std::memory_order_relaxed);
  }
  k.sched().unschedule(l);
  rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, nullptr);
}

}  // namespace entry
}  // namespace rump
