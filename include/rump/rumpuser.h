/*
 * rumpuser.h: the hypercall interface between a rump kernel and its host.
 *
 * Everything a kernel needs from outside itself (threads, locks that may
 * block, clocks, memory, host files and block I/O, entropy, console output,
 * configuration parameters) is reached through these functions and nothing
 * else. librumpuser implements them on POSIX; porting the kernel to another
 * host means implementing this header again.
 *
 * The shape follows NetBSD's rumpuser(3), interface version 17. Callers are
 * the kernel libraries (librumpkern, libvmspace); ordinary programs use the
 * rump_* API in rump.h instead.
 *
 * Blocking and virtual CPUs. A host thread runs kernel code only while it
 * holds a virtual CPU. A hypercall that may block for long (sleep mutexes,
 * condition variables, clock_sleep, synchronous file I/O, thread_join) gives
 * its CPU back through the hyp_backend_unschedule upcall before blocking and
 * takes one again through hyp_backend_schedule afterwards. The *_nowrap
 * variants and spin mutexes never release the CPU.
 *
 * Several kernels may live in one process. The upcalls carry no kernel
 * argument: the kernel finds itself through rumpuser_curlwp(). rumpuser_init
 * may be called once per kernel; every call must pass the same upcall table.
 *
 * Backends. The hypercalls that create threads, wait and tell time (threads,
 * mutexes, rwlocks, condition variables, clocks) are served by a backend,
 * and each kernel chooses its own at boot (see "Backends" below): "pthread"
 * (host threads and clocks, the default) or any backend registered with
 * rumpuser_backend_register. Memory, host files, entropy and the console are
 * the host's for every backend.
 */
#ifndef RUMP_RUMPUSER_H_
#define RUMP_RUMPUSER_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RUMPUSER_VERSION 17

struct lwp;

/* Upcalls: functions of the kernel that the hypercall layer calls. */
struct rumpuser_hyperup {
	/* Take / give back a virtual CPU for the calling thread's LWP. */
	void (*hyp_schedule)(void);
	void (*hyp_unschedule)(void);
	/*
	 * Around a blocking hypercall: backend_unschedule(nlocks, &nlocks_out,
	 * interlock) releases the CPU (and any kernel big lock depth, returned
	 * in *nlocks_out); backend_schedule(nlocks, interlock) takes a CPU back.
	 * interlock is the rumpuser_mtx the caller will block on, or NULL.
	 */
	void (*hyp_backend_unschedule)(int, int *, void *);
	void (*hyp_backend_schedule)(int, void *);
	void (*hyp_lwproc_switch)(struct lwp *);
	void (*hyp_lwproc_release)(void);
	int (*hyp_lwproc_rfork)(void *, int, const char *);
	int (*hyp_lwproc_newlwp)(pid_t);
	struct lwp *(*hyp_lwproc_curlwp)(void);
	int (*hyp_syscall)(int, void *, long *);
	void (*hyp_lwpexit)(void);
	void (*hyp_execnotify)(const char *);
	pid_t (*hyp_getpid)(void);
	/*
	 * The fault-injection state of the calling thread's kernel (see
	 * "Fault injection"), or NULL. Called only while some kernel of the
	 * process has faults configured or a fail-nth is armed, from the
	 * injectable hypercalls of a thread that has an LWP; must not block,
	 * allocate or make hypercalls.
	 */
	struct rumpuser_faults *(*hyp_faults)(void);
	void *hyp__extra[7];
};

/* Returns 0, or an errno value (EINVAL for a version mismatch). */
int rumpuser_init(int version, const struct rumpuser_hyperup *hyp);

/*
 * Parameters. Names are the environment variables RUMP_NCPU, RUMP_VERBOSE,
 * RUMP_THREADS, RUMP_HOSTNAME, RUMP_MEMLIMIT; RUMPUSER_PARAM_NCPU and
 * RUMPUSER_PARAM_HOSTNAME give the host's defaults when the environment sets
 * nothing (core count, host name). Returns 0, ENOENT (unset) or ENOMEM
 * (buffer too small). The value is a NUL-terminated string.
 */
#define RUMPUSER_PARAM_NCPU "_RUMPUSER_NCPU"
#define RUMPUSER_PARAM_HOSTNAME "_RUMPUSER_HOSTNAME"
int rumpuser_getparam(const char *name, void *buf, size_t buflen);

/* Memory. alignment 0 means the natural alignment of malloc. */
int rumpuser_malloc(size_t len, int alignment, void **memp);
void rumpuser_free(void *mem, size_t len);
/*
 * Anonymous memory straight from the host's page allocator. prefaddr is a
 * hint (NULL: anywhere); alignbit is log2 of the required alignment (0: page);
 * exec asks for executable memory. Pages read as zero until written.
 */
int rumpuser_anonmmap(void *prefaddr, size_t size, int alignbit, int exec,
    void **memp);
void rumpuser_unmap(void *addr, size_t len);
/* Changes the protection (PROT_* bits) or gives advice (MADV_*, e.g.
 * MADV_DONTNEED to zero private pages) for a page-aligned range that an
 * earlier rumpuser_anonmmap returned. Used by the vm faction for the
 * mprotect/madvise of processes living in the host's address space.
 * Returns 0 or an errno (EINVAL for unknown bits). */
int rumpuser_mprotect(void *addr, size_t len, int prot);
int rumpuser_madvise(void *addr, size_t len, int advice);

/* Host files (for block devices and etfs). */
#define RUMPUSER_OPEN_RDONLY 0x0000
#define RUMPUSER_OPEN_WRONLY 0x0001
#define RUMPUSER_OPEN_RDWR 0x0002
#define RUMPUSER_OPEN_ACCMODE 0x0003
#define RUMPUSER_OPEN_CREATE 0x0004
#define RUMPUSER_OPEN_EXCL 0x0008
#define RUMPUSER_OPEN_BIO 0x0010 /* will be used for block I/O */
int rumpuser_open(const char *path, int ruflags, int *fdp);
int rumpuser_close(int fd);

#define RUMPUSER_FT_OTHER 0
#define RUMPUSER_FT_DIR 1
#define RUMPUSER_FT_REG 2
#define RUMPUSER_FT_BLK 3
#define RUMPUSER_FT_CHR 4
/* Size in bytes and type of a host path (size of a block device too). */
int rumpuser_getfileinfo(const char *path, uint64_t *sizep, int *typep);

#define RUMPUSER_BIO_READ 0x01
#define RUMPUSER_BIO_WRITE 0x02
#define RUMPUSER_BIO_SYNC 0x04
#define RUMPUSER_BIO_WRITEBACK 0x08
/*
 * Asynchronous block I/O. biodone(arg, bytes_done, error) is called exactly
 * once, from a host thread that is not the caller's and holds no virtual CPU,
 * or from the caller itself before rumpuser_bio returns.
 * RUMPUSER_BIO_WRITEBACK (alone): a hint that has the host write the file's
 * bytes [off, off+dlen) (it may write the whole file's) back to its storage
 * and flush it, so that a later rumpuser_syncfd has little left to wait
 * for (data is not used); biodone reports 0 bytes when that is done. The
 * kernel counts only on rumpuser_syncfd for stability.
 */
typedef void (*rump_biodone_fn)(void *, size_t, int);
void rumpuser_bio(int fd, int op, void *data, size_t dlen, int64_t off,
    rump_biodone_fn biodone, void *bioarg);

struct rumpuser_iovec {
	void *iov_base;
	size_t iov_len;
};
/* off < 0 means the file's current position. Blocking: releases the CPU. */
int rumpuser_iovread(int fd, struct rumpuser_iovec *iov, size_t iovcnt,
    int64_t off, size_t *retv);
int rumpuser_iovwrite(int fd, const struct rumpuser_iovec *iov, size_t iovcnt,
    int64_t off, size_t *retv);

#define RUMPUSER_SYNCFD_READ 0x01
#define RUMPUSER_SYNCFD_WRITE 0x02
#define RUMPUSER_SYNCFD_BARRIER 0x04
#define RUMPUSER_SYNCFD_SYNC 0x08
int rumpuser_syncfd(int fd, int flags, uint64_t start, uint64_t len);
/* Sets the size of an open host file (cut or extended with zeros), as
 * ftruncate: 0 or the host's errno. */
int rumpuser_ftruncate(int fd, uint64_t len);

/*
 * Host directories (for etfs). A listing is read through a handle in
 * batches, from a position that survives the handle: 0 is the start of
 * the directory, and every entry carries the position just after it
 * (d_off), which a later rumpuser_readdir, on this or another handle of
 * the same directory, resumes from. Positions are the host's own
 * directory cookies: non-negative, opaque, not ordered, stable while the
 * entry they follow exists (entries added or removed meanwhile may or
 * may not show, as with the host's readdir).
 *
 * d_type is what rumpuser_getfileinfo would report for the entry's path:
 * symbolic links are followed (a dangling one is RUMPUSER_FT_OTHER), and
 * d_ino is the inode number of the object reached that way (stat's
 * st_ino, so a mount point reports the mounted root). "." and ".." are
 * listed when the host lists them. Entries that vanish while being read
 * are left out.
 */
#define RUMPUSER_NAME_MAX 255
struct rumpuser_dirent {
	uint64_t d_ino;
	int64_t d_off; /* the position after this entry */
	int d_type; /* RUMPUSER_FT_* */
	char d_name[RUMPUSER_NAME_MAX + 1]; /* NUL-terminated */
};
/* Opens the directory at path for reading: 0, or an errno (ENOTDIR ...). */
int rumpuser_opendir(const char *path, int *dhp);
/*
 * Reads up to nents entries from position *posp into ents; *countp is how
 * many were stored (0: the end of the directory) and *posp becomes the
 * position after the last one. Blocking: releases the CPU.
 */
int rumpuser_readdir(int dh, int64_t *posp, struct rumpuser_dirent *ents,
    size_t nents, size_t *countp);
int rumpuser_closedir(int dh);
/*
 * The entry rumpuser_readdir would report for path within its directory
 * (d_name its last component, d_off 0): lets a lookup agree with a
 * listing on type and inode number. Blocking: releases the CPU.
 */
int rumpuser_getdirent(const char *path, struct rumpuser_dirent *ent);

/* Clocks. */
#define RUMPUSER_CLOCK_RELWALL 0 /* wall clock (realtime) */
#define RUMPUSER_CLOCK_ABSMONO 1 /* monotonic clock */
int rumpuser_clock_gettime(int clock, int64_t *sec, long *nsec);
/* RELWALL: sleep for the interval; ABSMONO: until the monotonic time. */
int rumpuser_clock_sleep(int clock, int64_t sec, long nsec);
/*
 * CPU-time clocks of host threads (the kernel's CPU-time accounting).
 * cpuclock_self gives a handle on the calling thread's CPU clock (the CPU
 * time the host charged that thread); cpuclock_read reads such a clock, in
 * nanoseconds, from any thread while the thread it names lives. 0, or
 * ENOTSUP (a backend without per-thread CPU time: "sim", whose time is
 * virtual), or EINVAL (a handle of a thread that has ended).
 */
int rumpuser_cpuclock_self(uint64_t *clkp);
int rumpuser_cpuclock_read(uint64_t clk, int64_t *nsp);

/*
 * A memory barrier on every thread of the host process that runs at the
 * moment (membarrier(2) for the kernel's LWPs, wherever their threads are:
 * in the kernel or in the program's own code), as the host's
 * MEMBARRIER_CMD_PRIVATE_EXPEDITED ("pthread": a TLB shootdown of a page
 * of its own on x86, the host's membarrier elsewhere). 0, or an errno if
 * the host offers no way to do it. Not blocking on other threads.
 */
int rumpuser_membarrier(void);

/*
 * The host process's peak resident set so far, in bytes (what its
 * getrusage(2) reports as ru_maxrss). 0, or ENOTSUP (a backend whose
 * memory is not the host process's own: "sim").
 */
int rumpuser_rss_peak(uint64_t *bytesp);

/* Entropy. */
#define RUMPUSER_RANDOM_HARD 0x01
#define RUMPUSER_RANDOM_NOWAIT 0x02
int rumpuser_getrandom(void *buf, size_t buflen, int flags, size_t *retp);

/* Console and diagnostics. */
void rumpuser_putchar(int ch);
void rumpuser_dprintf(const char *fmt, ...)
    __attribute__((__format__(__printf__, 1, 2)));

/* Ending things. RUMPUSER_PANIC aborts the host process. */
#define RUMPUSER_PANIC (-1)
void rumpuser_exit(int how) __attribute__((__noreturn__));
int rumpuser_kill(int64_t pid, int sig);
void rumpuser_seterrno(int err);

/* Threads. cpuidx < 0: no CPU preference. cookie is for thread_join. */
int rumpuser_thread_create(void *(*fn)(void *), void *arg, const char *name,
    int mustjoin, int priority, int cpuidx, void **cookie);
void rumpuser_thread_exit(void) __attribute__((__noreturn__));
int rumpuser_thread_join(void *cookie);

/* The calling host thread's current LWP (thread-local). */
enum rumplwpop {
	RUMPUSER_LWP_CREATE, /* a new LWP exists (no-op for pthreads) */
	RUMPUSER_LWP_DESTROY, /* an LWP is gone */
	RUMPUSER_LWP_SET, /* make it the calling thread's LWP */
	RUMPUSER_LWP_CLEAR, /* the calling thread has no LWP */
};
void rumpuser_curlwpop(int op, struct lwp *l);
struct lwp *rumpuser_curlwp(void);

/*
 * Mutexes. RUMPUSER_MTX_SPIN: never releases the CPU while waiting.
 * RUMPUSER_MTX_KMUTEX: records the owner (rumpuser_curlwp() at enter) so
 * rumpuser_mutex_owner can report it. enter() releases the CPU while it
 * blocks (unless SPIN); enter_nowrap() never does.
 */
#define RUMPUSER_MTX_SPIN 0x01
#define RUMPUSER_MTX_KMUTEX 0x02
struct rumpuser_mtx;
void rumpuser_mutex_init(struct rumpuser_mtx **mtxp, int flags);
void rumpuser_mutex_enter(struct rumpuser_mtx *mtx);
void rumpuser_mutex_enter_nowrap(struct rumpuser_mtx *mtx);
int rumpuser_mutex_tryenter(struct rumpuser_mtx *mtx); /* 0 or EBUSY */
void rumpuser_mutex_exit(struct rumpuser_mtx *mtx);
void rumpuser_mutex_destroy(struct rumpuser_mtx *mtx);
void rumpuser_mutex_owner(struct rumpuser_mtx *mtx, struct lwp **lp);

/* Reader/writer locks. */
enum rumprwlock { RUMPUSER_RW_READER, RUMPUSER_RW_WRITER };
struct rumpuser_rw;
void rumpuser_rw_init(struct rumpuser_rw **rwp);
void rumpuser_rw_enter(int enum_rumprwlock, struct rumpuser_rw *rw);
int rumpuser_rw_tryenter(int enum_rumprwlock, struct rumpuser_rw *rw);
/* Reader to writer, only if no other reader: 0 or EBUSY. */
int rumpuser_rw_tryupgrade(struct rumpuser_rw *rw);
void rumpuser_rw_downgrade(struct rumpuser_rw *rw);
void rumpuser_rw_exit(struct rumpuser_rw *rw);
void rumpuser_rw_held(int enum_rumprwlock, struct rumpuser_rw *rw, int *heldp);
void rumpuser_rw_destroy(struct rumpuser_rw *rw);

/*
 * Condition variables. wait() releases the CPU and the mutex while it
 * sleeps and returns holding both again; wait_nowrap() keeps the CPU.
 * timedwait's interval is relative; it returns 0 or ETIMEDOUT.
 */
struct rumpuser_cv;
void rumpuser_cv_init(struct rumpuser_cv **cvp);
void rumpuser_cv_destroy(struct rumpuser_cv *cv);
void rumpuser_cv_wait(struct rumpuser_cv *cv, struct rumpuser_mtx *mtx);
void rumpuser_cv_wait_nowrap(struct rumpuser_cv *cv, struct rumpuser_mtx *mtx);
int rumpuser_cv_timedwait(struct rumpuser_cv *cv, struct rumpuser_mtx *mtx,
    int64_t sec, int64_t nsec);
void rumpuser_cv_signal(struct rumpuser_cv *cv);
void rumpuser_cv_broadcast(struct rumpuser_cv *cv);
void rumpuser_cv_has_waiters(struct rumpuser_cv *cv, int *waitersp);

/*
 * Fault injection.
 *
 * Every hypercall that can fail can be made to fail on purpose, in the
 * dispatcher, below every backend: rumpuser_malloc and rumpuser_anonmmap
 * (ENOMEM, class MEMORY), rumpuser_thread_create (EAGAIN, THREADS),
 * rumpuser_open and rumpuser_opendir (EMFILE), rumpuser_getfileinfo,
 * rumpuser_iovread, rumpuser_iovwrite, rumpuser_syncfd, rumpuser_ftruncate,
 * rumpuser_readdir,
 * rumpuser_getdirent and rumpuser_bio (EIO, class IO), rumpuser_getrandom
 * (EAGAIN, RANDOM). An injected failure is indistinguishable from the
 * host's: same return value, nothing done, nothing allocated.
 *
 * Two sources, checked in this order:
 * - fail-nth, per calling thread (and so per LWP bound to it): after
 *   rumpuser_fault_nth(n), the n-th injectable hypercall the thread makes
 *   fails, once (rumpuser_fault_nth_run(n, count): it and the count - 1
 *   after it); rumpuser_fault_nth_fired says whether it has. A backend
 *   that runs several LWPs on one host thread keeps one such counter per
 *   LWP (rumpuser_fault_nth_swap).
 * - per kernel, seeded: a kernel owns a struct rumpuser_faults
 *   (rumpuser_faults_create) and hands it out through the hyp_faults
 *   upcall; each injectable hypercall of a class in the mask fails with the
 *   given probability, drawn from a generator seeded by the seed (the same
 *   sequence of hypercalls gives the same failures).
 * Injected failures are counted in the calling thread's kernel's state.
 */
#define RUMPUSER_FAULT_MEMORY 0x01
#define RUMPUSER_FAULT_THREADS 0x02
#define RUMPUSER_FAULT_IO 0x04
#define RUMPUSER_FAULT_RANDOM 0x08
#define RUMPUSER_FAULT_NET 0x10
struct rumpuser_faults;
/* A kernel's state, off; 0 or ENOMEM. Destroy only when no thread of the
 * kernel can make a hypercall any more (at halt). */
int rumpuser_faults_create(struct rumpuser_faults **fp);
void rumpuser_faults_destroy(struct rumpuser_faults *f);
/* Seeded failures with probability in [0, 1] for the RUMPUSER_FAULT_*
 * classes in mask (0: off); restarts the generator. */
void rumpuser_faults_configure(struct rumpuser_faults *f, uint64_t seed,
    double probability, uint32_t mask);
uint64_t rumpuser_faults_injected(const struct rumpuser_faults *f);
/* Arms (n > 0) or disarms (0) the calling thread's fail-nth and clears its
 * fired flag. */
void rumpuser_fault_nth(unsigned n);
/* The same for a run: the n-th and the count - 1 injectable hypercalls
 * after it fail (count 1: as rumpuser_fault_nth; 0 disarms). */
void rumpuser_fault_nth_run(unsigned n, unsigned count);
int rumpuser_fault_nth_fired(void);
/* For backends that run several LWPs on one host thread: exchanges the
 * calling thread's fail-nth state (remaining count and fired flag) with
 * *state, to save one LWP's and restore another's. */
struct rumpuser_fault_nth_state {
	unsigned fn_remaining;
	unsigned fn_more;
	int fn_fired;
};
void rumpuser_fault_nth_swap(struct rumpuser_fault_nth_state *state);

/*
 * Backends.
 *
 * A backend is a table of the scheduling hypercalls. rumpuser_mutex_enter
 * and the other functions above dispatch to it:
 * - a mutex, rwlock or condition variable is served by the backend that
 *   made it, for its whole life: every such object begins with a struct
 *   rumpuser_object naming its backend. A condition variable waits only
 *   with a mutex of its own backend;
 * - a thread is served by the backend that created it
 *   (rumpuser_thread_create); thread_join goes to that backend too;
 * - everything else (making objects and threads, clocks, LWP creation and
 *   destruction notices) goes to the calling thread's backend, which a
 *   kernel sets with rumpuser_backend_switch whenever a host thread enters
 *   it. A thread that never switched is served by "pthread".
 *
 * The calling thread's LWP (RUMPUSER_LWP_SET/CLEAR, rumpuser_curlwp) is
 * kept by the dispatcher itself, so that the kernel's entry path pays no
 * dispatch; a backend that runs several LWPs on one host thread saves and
 * restores it with rumpuser_curlwpop when it switches between them, and is
 * told of RUMPUSER_LWP_CREATE and RUMPUSER_LWP_DESTROY through lwpop.
 *
 * Every member must be set. The semantics of each are those of the
 * hypercall of the same name, including giving the virtual CPU back
 * through the upcalls while blocking.
 */
#define RUMPUSER_BACKEND_VERSION 3

struct rumpuser_backend;

struct rumpuser_object {
	const struct rumpuser_backend *ro_backend;
};

/*
 * The operations of a backend, declared once. Each entry is
 * X(route, type, name, (parameters), (arguments)); route says which
 * backend serves the call: CALLER (the calling thread's), OWNER(p) (the
 * backend that made object p), or CUSTOM (the dispatcher decides: threads
 * and LWP notices). struct rumpuser_backend, the dispatcher, the
 * registration check and test backends are all derived from this list.
 */
#define RUMPUSER_BACKEND_OPS(X) \
	X(CUSTOM, int, thread_create, (void *(*fn)(void *), void *arg, \
	    const char *name, int mustjoin, int priority, int cpuidx, \
	    void **cookie), (fn, arg, name, mustjoin, priority, cpuidx, cookie)) \
	X(CUSTOM, void, thread_exit, (void), ()) \
	X(CUSTOM, int, thread_join, (void *cookie), (cookie)) \
	X(CUSTOM, void, lwpop, (int op, struct lwp *l), (op, l)) \
	X(CALLER, void, mutex_init, (struct rumpuser_mtx **mtxp, int flags), \
	    (mtxp, flags)) \
	X(OWNER(mtx), void, mutex_enter, (struct rumpuser_mtx *mtx), (mtx)) \
	X(OWNER(mtx), void, mutex_enter_nowrap, (struct rumpuser_mtx *mtx), \
	    (mtx)) \
	X(OWNER(mtx), int, mutex_tryenter, (struct rumpuser_mtx *mtx), (mtx)) \
	X(OWNER(mtx), void, mutex_exit, (struct rumpuser_mtx *mtx), (mtx)) \
	X(OWNER(mtx), void, mutex_destroy, (struct rumpuser_mtx *mtx), (mtx)) \
	X(OWNER(mtx), void, mutex_owner, (struct rumpuser_mtx *mtx, \
	    struct lwp **lp), (mtx, lp)) \
	X(CALLER, void, rw_init, (struct rumpuser_rw **rwp), (rwp)) \
	X(OWNER(rw), void, rw_enter, (int op, struct rumpuser_rw *rw), (op, rw)) \
	X(OWNER(rw), int, rw_tryenter, (int op, struct rumpuser_rw *rw), \
	    (op, rw)) \
	X(OWNER(rw), int, rw_tryupgrade, (struct rumpuser_rw *rw), (rw)) \
	X(OWNER(rw), void, rw_downgrade, (struct rumpuser_rw *rw), (rw)) \
	X(OWNER(rw), void, rw_exit, (struct rumpuser_rw *rw), (rw)) \
	X(OWNER(rw), void, rw_held, (int op, struct rumpuser_rw *rw, \
	    int *heldp), (op, rw, heldp)) \
	X(OWNER(rw), void, rw_destroy, (struct rumpuser_rw *rw), (rw)) \
	X(CALLER, void, cv_init, (struct rumpuser_cv **cvp), (cvp)) \
	X(OWNER(cv), void, cv_destroy, (struct rumpuser_cv *cv), (cv)) \
	X(OWNER(cv), void, cv_wait, (struct rumpuser_cv *cv, \
	    struct rumpuser_mtx *mtx), (cv, mtx)) \
	X(OWNER(cv), void, cv_wait_nowrap, (struct rumpuser_cv *cv, \
	    struct rumpuser_mtx *mtx), (cv, mtx)) \
	X(OWNER(cv), int, cv_timedwait, (struct rumpuser_cv *cv, \
	    struct rumpuser_mtx *mtx, int64_t sec, int64_t nsec), \
	    (cv, mtx, sec, nsec)) \
	X(OWNER(cv), void, cv_signal, (struct rumpuser_cv *cv), (cv)) \
	X(OWNER(cv), void, cv_broadcast, (struct rumpuser_cv *cv), (cv)) \
	X(OWNER(cv), void, cv_has_waiters, (struct rumpuser_cv *cv, \
	    int *waitersp), (cv, waitersp)) \
	X(CALLER, int, clock_gettime, (int clock, int64_t *sec, long *nsec), \
	    (clock, sec, nsec)) \
	X(CALLER, int, clock_sleep, (int clock, int64_t sec, long nsec), \
	    (clock, sec, nsec)) \
	X(CALLER, int, cpuclock_self, (uint64_t *clkp), (clkp)) \
	X(CALLER, int, cpuclock_read, (uint64_t clk, int64_t *nsp), (clk, nsp)) \
	X(CALLER, int, membarrier, (void), ()) \
	X(CALLER, int, rss_peak, (uint64_t *bytesp), (bytesp))

/* thread_exit must not return (the member's type cannot say so). */
#define RUMPUSER_BACKEND_MEMBER_(route, type, name, params, args) \
	type (*name) params;
struct rumpuser_backend {
	int rb_version; /* RUMPUSER_BACKEND_VERSION */
	const char *rb_name; /* at most 31 characters */
	RUMPUSER_BACKEND_OPS(RUMPUSER_BACKEND_MEMBER_)
};
#undef RUMPUSER_BACKEND_MEMBER_

/* Makes a backend known by its name. The table must outlive the process's
 * use of it. 0, EINVAL (wrong version, no name or a member unset), EEXIST
 * (the name is taken) or ENOMEM (too many backends). */
int rumpuser_backend_register(const struct rumpuser_backend *be);
/* The backend called name. NULL or "": the RUMP_BACKEND parameter, else
 * "pthread". 0 or ENOENT. */
int rumpuser_backend_find(const char *name, const struct rumpuser_backend **bep);
/* Makes be (NULL: "pthread") the calling thread's backend; returns the one
 * it had. */
const struct rumpuser_backend *rumpuser_backend_switch(
    const struct rumpuser_backend *be);

/*
 * Thread-local state of the caller. A backend that runs several threads
 * on one host thread (the "sim" backend) gives each of them its own copy
 * of every registered block: it saves the host thread's block when it
 * switches away from a thread and loads the next thread's, and a new
 * thread starts with zeroes, as a new host thread would. locate returns
 * the block's address for the calling host thread (a thread_local's).
 * Registering the same locate again is a no-op. 0, or ENOMEM (too many
 * blocks or bytes).
 */
int rumpuser_tls_register(void *(*locate)(void), size_t len);

/*
 * Deterministic simulation: the "sim" backend.
 *
 * Every thread of a world (the kernel's threads, and client threads made
 * with rumpuser_sim_spawn) is a fiber on the host thread that created the
 * world; the host thread itself takes part while it is inside a blocking
 * hypercall of the world. Time is virtual: it starts at a fixed epoch and
 * jumps to the next timer only when nothing can run. Every scheduling
 * choice (which runnable thread goes next; whether to switch at a lock
 * acquisition, a wake-up or a hypercall) is drawn from the seed, so that
 * the same program with the same seed runs the same way every time.
 *
 * rumpuser_backend_find("sim") names the backend; a kernel booting on it
 * makes its own world with rumpuser_sim_create and is served by the
 * instance of the backend it returns.
 */
struct rumpuser_sim;
struct rumpuser_sim_hooks {
	/* Run on a client fiber before and after its function. */
	void (*client_start)(void *cookie);
	void (*client_exit)(void *cookie);
};
#define RUMPUSER_SIM_NAME "sim"
/* A new world owned by the calling host thread, and the backend serving
 * it. EINVAL when called from a fiber, ENOMEM. */
int rumpuser_sim_create(uint64_t seed, const struct rumpuser_sim_hooks *hooks,
    void *cookie, struct rumpuser_sim **simp,
    const struct rumpuser_backend **bep);
/* Frees the world: every fiber that has not ended is dropped unrun. From
 * the owning host thread, not from one of the world's fibers. */
void rumpuser_sim_destroy(struct rumpuser_sim *sim);
/* The world served by be, or NULL if be is not an instance of "sim". */
struct rumpuser_sim *rumpuser_sim_of(const struct rumpuser_backend *be);
/* 0 if the caller may act on the world: it runs on the owning host
 * thread, on its own stack (host != 0) or also on one of the world's
 * fibers (host == 0); else EINVAL. */
int rumpuser_sim_check(struct rumpuser_sim *sim, int host);
/* A client fiber running fn(arg); it runs once the owner blocks. */
int rumpuser_sim_spawn(struct rumpuser_sim *sim, void (*fn)(void *), void *arg);
/* Runs the world until every client fiber has returned: 0, or EDEADLK when
 * none can run and no timer is pending. From the owner's own stack. */
int rumpuser_sim_run(struct rumpuser_sim *sim);
/* Virtual nanoseconds since the world was made. */
uint64_t rumpuser_sim_now(struct rumpuser_sim *sim);
/* Calls fn for every client fiber that has not returned: its number
 * (in spawn order, from 1), its LWP (as last set) and what it waits for. */
void rumpuser_sim_waiters(struct rumpuser_sim *sim,
    void (*fn)(void *arg, unsigned id, struct lwp *l, const char *what),
    void *arg);

#ifdef __cplusplus
}
#endif

#endif /* RUMP_RUMPUSER_H_ */
