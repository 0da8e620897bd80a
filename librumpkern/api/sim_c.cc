// The C API of deterministic simulation (<rump/sim.h>).
#include <rump/rump.h>
#include <rump/rumpuser.h>
#include <rump/sim.h>

#include <cerrno>

#include "kern/curlwp.h"
#include "kern/kernel.h"
#include "kern/proc.h"
#include "kern/sim.h"

using rump::Kernel;

namespace {

// k as a live sim kernel the caller may act on, or null. host: only from
// the host thread's own stack, not from a fiber.
Kernel* sim_kernel(struct rump_kernel* kk, bool host) {
  Kernel* k = reinterpret_cast<Kernel*>(kk);
  if (!k || !rump::registry_alive(k) || !k->sim()) return nullptr;
  if (rumpuser_sim_check(k->sim()->world, host ? 1 : 0) != 0) return nullptr;
  return k;
}

// One line of the deadlock report per client fiber left.
void report_waiter(void* arg, unsigned id, struct lwp* l, const char* what) {
  Kernel* k = static_cast<Kernel*>(arg);
  rump::Lwp* lwp = reinterpret_cast<rump::Lwp*>(l);
  if (lwp && &lwp->kernel() == k) {
    k->printf("sim: client fiber %u (pid %d, lwp %d) waits for a %s\n", id,
              static_cast<int>(lwp->proc().pid()), static_cast<int>(lwp->tid()), what);
  } else {
    k->printf("sim: client fiber %u (outside the kernel) waits for a %s\n", id, what);
  }
}

}  // namespace

extern "C" {

int rump_sim_spawn(struct rump_kernel* kk, void (*fn)(void*), void* arg) {
  Kernel* k = sim_kernel(kk, false);
  if (!k || !fn || k->halting()) return EINVAL;
  return rumpuser_sim_spawn(k->sim()->world, fn, arg);
}

int rump_sim_run(struct rump_kernel* kk) {
  Kernel* k = sim_kernel(kk, true);
  if (!k) return EINVAL;
  int e = rumpuser_sim_run(k->sim()->world);
  if (e == EDEADLK) {
    k->printf("sim: deadlock at %llu ns: every client fiber is blocked and no timer is pending that "
              "would wake one\n",
              static_cast<unsigned long long>(rumpuser_sim_now(k->sim()->world)));
    rumpuser_sim_waiters(k->sim()->world, report_waiter, k);
  }
  // A reboot() by a fiber: the halt it asked for happens here.
  if (k->halt_requested()) rump::halt_after_reboot(k);
  return e;
}

uint64_t rump_sim_now(struct rump_kernel* kk) {
  Kernel* k = sim_kernel(kk, false);
  return k ? rumpuser_sim_now(k->sim()->world) : 0;
}

}  // extern "C"
