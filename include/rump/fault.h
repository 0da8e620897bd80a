/*
 * fault.h: failures injected on purpose into a rump kernel's hypercalls.
 *
 * For test programs and fuzzers that want to see a kernel survive what the
 * host can do to it: out of memory, no more threads, I/O errors, no
 * entropy. Every hypercall that can fail can be made to fail, below every
 * backend, and the failure is the same the host would give (ENOMEM,
 * EAGAIN, EIO, EMFILE): the kernel must answer with a clean errno or
 * retry, and lose nothing.
 *
 * Two ways to choose the failures:
 * - rump_kernel_set_faults: seeded random failures of the chosen classes
 *   in every thread of one kernel (the same sequence of hypercalls and the
 *   same seed give the same failures);
 * - rump_fault_fail_nth: as Linux's /proc/thread-self/fail-nth, the n-th
 *   injectable hypercall made on behalf of the calling thread (its LWP,
 *   implicit or bound: not the kernel threads it wakes) fails, once.
 *   Sweeping n = 1, 2, ... until nothing fires visits every failure
 *   point of a piece of work. rump_fault_fail_nth_run fails a run of them
 *   from the n-th on: a failure that is still there when the kernel
 *   retries or undoes.
 *
 * And one way to make more of them: rump_kernel_set_cache_pressure makes
 * the kernel's buffer cache behave as under memory pressure at its worst,
 * so that a block a file system lets go and takes again half-way through
 * an operation is read again from the device, a read that can fail.
 */
#ifndef RUMP_FAULT_H_
#define RUMP_FAULT_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rump_kernel;

/* Classes of injectable hypercalls. */
#define RUMP_FAULT_MEMORY  0x01u /* kernel memory: ENOMEM */
#define RUMP_FAULT_THREADS 0x02u /* thread creation: EAGAIN */
#define RUMP_FAULT_IO      0x04u /* host files and block I/O: EIO, EMFILE */
#define RUMP_FAULT_RANDOM  0x08u /* entropy: EAGAIN */
#define RUMP_FAULT_NET     0x10u /* network hypercalls */
#define RUMP_FAULT_ALL     0x1fu

struct rump_fault_config {
	uint64_t seed;      /* the generator's seed */
	double probability; /* of each injectable hypercall failing, in [0, 1] */
	uint32_t classes;   /* RUMP_FAULT_* bits */
};

/* Seeded random failures in k (NULL: the current kernel) from now on; a
 * NULL config switches them off. 0, or EINVAL (no kernel, a probability
 * outside [0, 1], unknown class bits), ENOMEM. */
int rump_kernel_set_faults(struct rump_kernel *k, const struct rump_fault_config *c);
/* Failures injected into k's hypercalls so far, by either mechanism. */
uint64_t rump_kernel_faults_injected(struct rump_kernel *k);

/* The n-th injectable hypercall made on behalf of the calling thread
 * fails (n = 1: the next one); 0 disarms. Clears the fired flag.
 * Returns 0. */
int rump_fault_fail_nth(unsigned n);
/* A run of failures: the n-th injectable hypercall made on behalf of the
 * calling thread and the count - 1 after it fail, as a failure that is
 * still there when the kernel retries or undoes (count 1: as
 * rump_fault_fail_nth; n or count 0 disarms). Clears the fired flag.
 * Returns 0. */
int rump_fault_fail_nth_run(unsigned n, unsigned count);
/* 1 if the armed failure has been injected, else 0. */
int rump_fault_fail_nth_fired(void);

/* While on (nonzero), every block of k's buffer cache (NULL: the current
 * kernel) that its last user lets go unmodified is evicted at once, as
 * the worst memory pressure could: its next use reads the device again.
 * Blocks a file system keeps referenced stay. Off at boot. 0, or EINVAL
 * (no kernel). */
int rump_kernel_set_cache_pressure(struct rump_kernel *k, int on);

#ifdef __cplusplus
}
#endif

#endif /* RUMP_FAULT_H_ */
