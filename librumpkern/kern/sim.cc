// The kernel's side of the "sim" backend (see sim.h).
#include "kern/sim.h"

#include <cstring>

#include "kern/curlwp.h"
#include "kern/kernel.h"

namespace rump {

namespace {

// A client fiber starts as a new host thread would: no LWP of its own
// (implicit context), and its kernel current.
void client_start(void* cookie) {
  Kernel* k = static_cast<Kernel*>(cookie);
  set_current_kernel(k);
  SimState* s = k->sim();
  if (s == nullptr || k->halting() || s->nidle == 0) return;
  ThreadCtx& t = thread_ctx();
  t.implicit_k = k;
  t.implicit_serial = k->serial();
  t.implicit = s->idle[--s->nidle];
}

// Keeps the fiber's implicit LWP for the next one. Nothing else runs in
// the world meanwhile (no hypercall here), so the list needs no lock.
void client_exit(void* cookie) {
  Kernel* k = static_cast<Kernel*>(cookie);
  ThreadCtx& t = thread_ctx();
  SimState* s = k->sim();
  if (s != nullptr && !k->halting() && t.implicit_k == k && t.implicit_serial == k->serial() &&
      t.implicit != nullptr && s->nidle < SimState::kIdleMax) {
    s->idle[s->nidle++] = t.implicit;
  }
  t.implicit_k = nullptr;
  t.implicit = nullptr;
}

const rumpuser_sim_hooks kHooks = {client_start, client_exit};

}  // namespace

bool sim_backend(const rumpuser_backend* be) {
  return be != nullptr && std::strcmp(be->rb_name, RUMPUSER_SIM_NAME) == 0;
}

int sim_world_create(uint64_t seed, void* kernel, rumpuser_sim** worldp,
                     const rumpuser_backend** bep) {
  return rumpuser_sim_create(seed, &kHooks, kernel, worldp, bep);
}

int sim_check_entry(Kernel& k) {
  if (k.sim() == nullptr) return 0;
  return rumpuser_sim_check(k.sim()->world, 0);
}

}  // namespace rump
