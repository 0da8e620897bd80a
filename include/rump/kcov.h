/*
 * kcov.h: per-LWP coverage of a rump kernel, as Linux's kcov.
 *
 * In a kernel built with -Dkcov=true, every edge of the kernel's code that
 * an LWP reaches is recorded into a buffer that LWP enabled, and nothing
 * another LWP reaches: a fuzzer sees what its own system call did. Two
 * ways in, the same buffer layout (word 0: the number of records; then one
 * program counter per word in KCOV_TRACE_PC mode, or four words per
 * comparison in KCOV_TRACE_CMP mode: type, first and second operand,
 * program counter):
 * - /dev/kcov with Linux's interface, so syzkaller-style executors work
 *   unchanged: open, ioctl(KCOV_INIT_TRACE, words), mmap the buffer
 *   (words * 8 bytes, MAP_SHARED, processes in the host's address space),
 *   ioctl(KCOV_ENABLE, KCOV_TRACE_PC or KCOV_TRACE_CMP), ...,
 *   ioctl(KCOV_DISABLE, 0). The ioctl numbers are Linux's (below);
 * - the functions below, for host programs that want the buffer without a
 *   descriptor or mmap.
 * Built without kcov, /dev/kcov does not exist and rump_kcov_open is
 * ENOSYS; the kernel then pays nothing.
 */
#ifndef RUMP_KCOV_H_
#define RUMP_KCOV_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Linux's values (<linux/kcov.h>). */
#define RUMP_KCOV_INIT_TRACE 0x80086301UL /* _IOR('c', 1, unsigned long) */
#define RUMP_KCOV_ENABLE 0x6364UL         /* _IO('c', 100) */
#define RUMP_KCOV_DISABLE 0x6365UL        /* _IO('c', 101) */
#define RUMP_KCOV_TRACE_PC 0
#define RUMP_KCOV_TRACE_CMP 1
/* The type word of a KCOV_TRACE_CMP record. */
#define RUMP_KCOV_CMP_CONST 1u         /* one operand is a constant */
#define RUMP_KCOV_CMP_SIZE(n) ((n) << 1) /* operand size: 0, 1, 2, 3 for 1, 2, 4, 8 bytes */

struct rump_kcov;

/* A buffer of `words` 64-bit words (at least 2) in the current kernel:
 * 0, EINVAL, ENOMEM, or ENOSYS (kernel built without kcov). Close it
 * before the kernel halts. */
int rump_kcov_open(size_t words, struct rump_kcov **kcp);
/* Starts tracing the calling thread's LWP (its bound LWP, else its
 * implicit one) in mode RUMP_KCOV_TRACE_PC or _CMP: 0, EBUSY (the buffer
 * or the LWP is already tracing), EINVAL. */
int rump_kcov_enable(struct rump_kcov *kc, int mode);
/* Stops it: 0, or EINVAL if the calling LWP is not the one tracing. */
int rump_kcov_disable(struct rump_kcov *kc);
/* The buffer (word 0 the count), readable and writable by the caller. */
uint64_t *rump_kcov_area(struct rump_kcov *kc);
void rump_kcov_close(struct rump_kcov *kc);

#ifdef __cplusplus
}
#endif

#endif /* RUMP_KCOV_H_ */
