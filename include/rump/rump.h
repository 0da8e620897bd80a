/*
 * rump.h: the C API of the rump anykernel.
 *
 * A program links the kernel and gets a private kernel (or several) that it
 * drives with plain function calls: boot, create processes and LWPs, make
 * system calls (rump_syscalls.h), read the message buffer, halt.
 *
 * Calls act on the calling thread's *current* kernel: the one set with
 * rump_kernel_set_current(), else the process's default kernel, which
 * rump_init() boots. Errors are errno values (functions returning int) or
 * -1 with errno set (the rump_sys_* wrappers).
 *
 * As NetBSD's, this header declares every faction's public interface too
 * (etfs: rump_pub_etfs_*; vmspace_*). A call into a faction the program
 * did not link is ENOSYS.
 */
#ifndef RUMP_RUMP_H_
#define RUMP_RUMP_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <rump/rump_syscalls.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lwp;
struct rump_kernel;

/* Boots the default kernel from the environment (RUMP_NCPU, RUMP_MEMLIMIT,
 * RUMP_HOSTNAME, RUMP_VERBOSE, RUMP_BACKEND). Idempotent: 0 if it is
 * already up. */
int rump_init(void);

/*
 * Boot parameters. Fill one with rump_boot_config_init, then set fields.
 * The struct grows at its end; struct_size, set by rump_boot_config_init,
 * tells the library how much of it the caller's program knows, so that a
 * program built against an older header keeps working: the library never
 * reads a field beyond it (a config not made by rump_boot_config_init is
 * read as the first version: ncpu to backend).
 */
struct rump_boot_config {
	int ncpu;             /* 0: RUMP_NCPU, else the host's core count
	                         ("sim": 2) */
	unsigned int struct_size; /* set by rump_boot_config_init */
	size_t memlimit;      /* bytes of kernel memory; 0: RUMP_MEMLIMIT or none */
	const char *hostname; /* NULL: RUMP_HOSTNAME, else "rump<n>" */
	int verbose;          /* -1: RUMP_VERBOSE; 1: messages to the console */
	int maxproc;          /* 0: 4096 */
	int pid_max;          /* 0: 32768 */
	const char *backend;  /* hypercall backend (rumpuser.h); NULL: RUMP_BACKEND,
	                         else "pthread". An unknown name is EINVAL. */
	/* Since struct_size 56: */
	uint64_t seed;        /* "sim" backend: the seed of every scheduling
	                         choice (<rump/sim.h>); 0 is a seed too */
};
/* Fills c with the defaults (every field "from the environment") and
 * records how big the caller's struct is. */
void rump_boot_config_init_sized(struct rump_boot_config *c, size_t size);
#define rump_boot_config_init(c) rump_boot_config_init_sized((c), sizeof(*(c)))
/* What programs built against the first header call (fills ncpu to
 * backend only). */
void(rump_boot_config_init)(struct rump_boot_config *c);

/* Boots another kernel. NULL config: the defaults. 0 or an errno. */
int rump_kernel_boot(const struct rump_boot_config *c, struct rump_kernel **kp);
/* Makes k the calling thread's current kernel (NULL: the default one). */
int rump_kernel_set_current(struct rump_kernel *k);
/* The calling thread's current kernel, or NULL if none is up. */
struct rump_kernel *rump_kernel_current(void);
/* Stops k's threads and frees all its memory; k is gone afterwards. No
 * other thread may be inside k. NULL: the current kernel. */
int rump_kernel_halt(struct rump_kernel *k);
/* Bytes of kernel memory k has allocated (its footprint). */
size_t rump_kernel_memory_in_use(struct rump_kernel *k);

/* Per-kernel syscall tracing: fn sees each call's number, arguments and
 * result (-errno on failure). NULL fn turns it off. */
typedef void (*rump_syscall_trace_fn)(void *arg, long nr, const long args[6], long result);
int rump_kernel_set_trace(struct rump_kernel *k, rump_syscall_trace_fn fn, void *arg);

/* LWPs and processes (as NetBSD's rump_lwproc). */
#define RUMP_RFFDG    (1 << 2)   /* copy the descriptor table */
#define RUMP_RFCFDG   (1 << 12)  /* start with an empty descriptor table */
#define RUMP_RFMEM    (1 << 5)   /* share the user address space */
#define RUMP_RFNOWAIT (1 << 6)   /* the child belongs to init */
#define RUMP_RFVMSPACE (1 << 30) /* give the child a fresh isolated address space */
/* Creates a child of the current process (init in implicit context) and
 * switches the calling thread to the child's LWP. 0 share descriptors.
 * RUMP_RFFDG|RUMP_RFCFDG is EINVAL. Returns 0 or an errno. */
int rump_lwproc_rfork(int flags);
/* Creates a new LWP in process pid and switches to it; ESRCH if none. */
int rump_lwproc_newlwp(pid_t pid);
/* Switches the calling thread to l (NULL: back to implicit context). */
void rump_lwproc_switch(struct lwp *l);
/* Releases the calling thread's LWP; the thread goes on in implicit
 * context. Releasing a process's last LWP ends it with status 0. */
void rump_lwproc_releaselwp(void);
/* The calling thread's LWP, or NULL in implicit context. */
struct lwp *rump_lwproc_curlwp(void);

/* NetBSD's public spellings of the same calls. */
static inline int rump_pub_lwproc_rfork(int flags) { return rump_lwproc_rfork(flags); }
static inline int rump_pub_lwproc_newlwp(pid_t pid) { return rump_lwproc_newlwp(pid); }
static inline void rump_pub_lwproc_switch(struct lwp *l) { rump_lwproc_switch(l); }
static inline void rump_pub_lwproc_releaselwp(void) { rump_lwproc_releaselwp(); }
static inline struct lwp *rump_pub_lwproc_curlwp(void) { return rump_lwproc_curlwp(); }

/* The message buffer: copies its text (oldest first, NUL-terminated) and
 * returns the full length. */
size_t rump_msgbuf_read(char *buf, size_t len);

/* Copies between the current process's user space and the caller's
 * memory: 0 or EFAULT. */
int rump_copyin(const void *uaddr, void *kaddr, size_t len);
int rump_copyout(const void *kaddr, void *uaddr, size_t len);

#ifdef __cplusplus
}
#endif

#include <rump/rumpnet.h>
#include <rump/rumpvfs.h>
#include <rump/vmspace.h>

#endif /* RUMP_RUMP_H_ */
