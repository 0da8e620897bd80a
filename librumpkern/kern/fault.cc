// Fault injection (rump/fault.h): the kernel's half.
//
// The hypercall layer decides which hypercall fails (rumpuser.h, "Fault
// injection"); the kernel only owns its seeded state, made the first time
// faults are configured and freed at halt, and hands it to the hypercall
// layer through the hyp_faults upcall (kern/hyp.cc) when one of its LWPs
// makes an injectable hypercall.
#include <rump/fault.h>
#include <rump/rumpuser.h>

#include <cmath>

#include "kern/curlwp.h"
#include "kern/kernel.h"

namespace rump {

static_assert(RUMP_FAULT_MEMORY == RUMPUSER_FAULT_MEMORY && RUMP_FAULT_THREADS == RUMPUSER_FAULT_THREADS &&
                  RUMP_FAULT_IO == RUMPUSER_FAULT_IO && RUMP_FAULT_RANDOM == RUMPUSER_FAULT_RANDOM &&
                  RUMP_FAULT_NET == RUMPUSER_FAULT_NET,
              "the public classes are the hypercall layer's");

}  // namespace rump

using rump::Kernel;

namespace {

// k, or the calling thread's kernel when k is null.
Kernel* kernel_or_current(struct rump_kernel* k) {
  return k ? reinterpret_cast<Kernel*>(k) : rump::current_kernel();
}

}  // namespace

extern "C" {

int rump_kernel_set_faults(struct rump_kernel* kk, const struct rump_fault_config* c) {
  Kernel* k = kernel_or_current(kk);
  if (!k) return EINVAL;
  if (c && (!(c->probability >= 0 && c->probability <= 1) || (c->classes & ~RUMP_FAULT_ALL) != 0))
    return EINVAL;
  rumpuser_faults* f = k->faults();
  if (!f) return EINVAL;
  if (c) rumpuser_faults_configure(f, c->seed, c->probability, c->classes);
  else rumpuser_faults_configure(f, 0, 0, 0);
  return 0;
}

uint64_t rump_kernel_faults_injected(struct rump_kernel* kk) {
  Kernel* k = kernel_or_current(kk);
  return k ? rumpuser_faults_injected(k->faults()) : 0;
}

int rump_fault_fail_nth(unsigned n) {
  rumpuser_fault_nth(n);
  return 0;
}

int rump_fault_fail_nth_run(unsigned n, unsigned count) {
  rumpuser_fault_nth_run(n, count);
  return 0;
}

int rump_fault_fail_nth_fired(void) { return rumpuser_fault_nth_fired(); }

int rump_kernel_set_cache_pressure(struct rump_kernel* kk, int on) {
  Kernel* k = kernel_or_current(kk);
  if (!k) return EINVAL;
  k->set_cache_pressure(on != 0);
  return 0;
}

}  // extern "C"
