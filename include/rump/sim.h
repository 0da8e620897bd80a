/*
 * sim.h: deterministic simulation of a kernel.
 *
 * A kernel booted with backend "sim" (struct rump_boot_config, <rump/rump.h>)
 * runs entirely on the host thread that booted it: its kernel threads,
 * callouts and timers, and its client threads (rump_sim_spawn) are fibers
 * of that thread. Time is virtual: CLOCK_MONOTONIC and CLOCK_REALTIME start
 * at fixed values at boot and move only when every fiber is blocked, then
 * straight to the next timer, so a ten-hour sleep takes no wall time. Every
 * scheduling choice (which runnable fiber goes next; whether to switch at
 * a kernel lock acquisition, a wake-up or a hypercall) is drawn from the
 * config's seed: the same program with the same inputs and seed makes the
 * same system calls with the same results in the same order, every time,
 * on any machine. With no ncpu set, a sim kernel has 2 virtual CPUs.
 *
 * Only the booting host thread, on its own stack or from one of the
 * kernel's fibers, may call into a sim kernel; any other caller gets
 * EINVAL (system calls: -1 and errno EINVAL). Boot and halt it from that
 * thread's own stack. Kernels on "sim" and on "pthread" live side by side.
 */
#ifndef RUMP_SIM_H_
#define RUMP_SIM_H_

#include <stdint.h>

#include <rump/rump.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Makes a client thread of sim kernel k running fn(arg) as a fiber. It
 * starts in implicit context with k current, like a new host thread, and
 * runs once the host thread runs k (rump_sim_run or any blocking call).
 * 0, EINVAL (not a sim kernel, or not its host thread) or EAGAIN. */
int rump_sim_spawn(struct rump_kernel *k, void (*fn)(void *), void *arg);

/* Runs k on the calling host thread until every client fiber has
 * returned: 0, or EDEADLK when all of them that are left are blocked and
 * no timer is pending, or when only kernel timers that wake none of them
 * keep firing (10,000 expiries in a row while no client has a timeout of
 * its own: a periodic timer nobody reads); then what each one waits for
 * is written to the message buffer. EINVAL if k is not a sim kernel or the caller is not
 * its host thread on its own stack. */
int rump_sim_run(struct rump_kernel *k);

/* Virtual nanoseconds since k booted (0 if k is not a sim kernel or the
 * caller is not its host thread). */
uint64_t rump_sim_now(struct rump_kernel *k);

#ifdef __cplusplus
}
#endif

#endif /* RUMP_SIM_H_ */
