// sim.h: a kernel on the "sim" backend (deterministic simulation).
//
// Such a kernel owns a world of the hypercall layer (rumpuser_sim_create):
// its threads and its client fibers run on the host thread that booted it,
// in an order drawn from the boot config's seed, on a virtual clock. The
// kernel's side of it is small: making and freeing the world with the
// kernel, refusing entry from any other host thread (EINVAL), starting
// client fibers in implicit context like new host threads, and the
// deadlock report of rump_sim_run.
#pragma once

#include <rump/rumpuser.h>

#include <cstdint>

#include "base/kmem.h"

namespace rump {

class Kernel;
class Lwp;

// A sim kernel with no CPU count configured gets this many, whatever the
// host has, so that a run does not depend on the machine.
inline constexpr int kSimDefaultNcpu = 2;

struct SimState : KObject {
  explicit SimState(rumpuser_sim* w) : world(w) {}
  rumpuser_sim* world;
  // Implicit LWPs of client fibers that ended, for the next ones (a fiber
  // is a host thread that lives for one function: without this, each
  // would leave its LWP to the halt).
  static constexpr int kIdleMax = 32;
  Lwp* idle[kIdleMax] = {};
  int nidle = 0;
};

// True if be is the "sim" backend (the registered table).
bool sim_backend(const rumpuser_backend* be);
// Makes the world of a kernel about to be built at kmem (the cookie its
// client fibers get back), and the backend instance serving it.
int sim_world_create(uint64_t seed, void* kernel, rumpuser_sim** worldp,
                     const rumpuser_backend** bep);
// 0 if the calling context may enter k (always, unless k is a sim kernel
// and the caller is not its host thread or one of its fibers): EINVAL.
int sim_check_entry(Kernel& k);

}  // namespace rump
