// The system call table and its dispatch: the process-wide sysent table,
// filled by each linked faction at load time, and the one path every
// system call takes into a kernel (the C API's rump_syscall, the
// hypercall layer's syscall upcall, sysproxy).
#include "kern/syscall.h"

#include <rump/rump.h>

#include "kern/entry.h"
#include "kern/sim.h"
#include "kern/kernel.h"

namespace rump {

Sysent g_sysent[kMaxSyscall];

SysentRegistrar::SysentRegistrar(const SysentInit* entries, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const SysentInit& e = entries[i];
    if (e.nr < 0 || e.nr >= kMaxSyscall) panic("syscall %s: number %ld out of range", e.name, e.nr);
    if (g_sysent[e.nr].entry) panic("syscall %s: number %ld declared twice", e.name, e.nr);
    g_sysent[e.nr] = Sysent{e.entry, e.name, e.nargs};
  }
}


namespace {

// Enters k, runs the handler of nr (ENOSYS where no linked faction declares
// one, EINTR if the process is exiting; restarted or EINTR if a signal
// interrupted it), traces, leaves. *halt says whether a halt was asked for
// (reboot), read while still inside: once out, another thread's halt may
// free k. The whole of it,
// with the entry and exit paths of entry.h, compiles into one function:
// forced, because with two callers gcc keeps it out of line, and the call,
// its own frame and the spills across it cost a bound LWP's getpid about
// 2.5 ns (13 %).
[[gnu::always_inline]] inline long dispatch(ThreadCtx& t, Kernel& k, long nr, const long* args, bool* halt) {
  Lwp* l = entry::enter_checked(t, k);
  // No LWP: out of memory, or a sim kernel refusing a foreign thread.
  if (__builtin_expect(l == nullptr, 0)) return -enter_error(k);
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
    if (__builtin_expect(is_restart_result(r), 0)) r = syscall_restart(*l, nr, args, r);
  }
  k.trace().record(nr, args, r);
  *halt = k.halt_requested();
  entry::leave_inline(k, l);
  return r;
}

}  // namespace

long syscall_enter(Kernel& k, long nr, const long* args) {
  ThreadCtx& t = entry::t_ctx;
  entry::check_epoch(t);
  bool halt = false;
  return dispatch(t, k, nr, args, &halt);
}

const char* syscall_name(long nr) {
  for (size_t i = 0; i < kSyscallNameCount; i++)
    if (kSyscallNames[i].nr == nr) return kSyscallNames[i].name;
  return nullptr;
}

}  // namespace rump

// The raw system call entry of the C API: the calling thread's current
// kernel, or the default one.
extern "C" long rump_syscall(long nr, const long args[6]) {
  static const long kZero[6] = {};
  rump::ThreadCtx& t = rump::entry::t_ctx;
  rump::entry::check_epoch(t);
  rump::Kernel* k = t.cur ? t.cur : rump::entry::g_default.load(std::memory_order_acquire);
  if (__builtin_expect(k == nullptr, 0)) return -ENOSYS;
  bool halt = false;
  long r = rump::dispatch(t, *k, nr, args ? args : kZero, &halt);
  if (__builtin_expect(halt, 0)) rump::halt_after_reboot(k);
  return r;
}
