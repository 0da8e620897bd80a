/*
 * vmspace.h: DragonFly BSD's vmspace_* calls, as this kernel offers them.
 *
 * For programs that manage isolated guest address spaces from inside a rump
 * process (a virtual kernel, an emulator, a fuzzer). A process keeps a table
 * of spaces keyed by an opaque id (any non-NULL pointer value; it is never
 * dereferenced). Fork gives the child a copy-on-write copy of every space
 * in the table; exit destroys them all. Needs the vm faction (librumpvm).
 *
 * Syscall numbers (private, RUMP_SYS_vmspace_* in <rump/rump_syscalls.h>):
 *   1010 vmspace_create(id, type, data)   EINVAL for a NULL id or nonzero
 *                                         type/data, EEXIST for an id in use
 *   1011 vmspace_destroy(id)              ENOENT unknown, EBUSY while an LWP
 *                                         runs in it (vmspace_ctl RUN)
 *   1012 vmspace_ctl(id, cmd, tframe, vframe)   see below
 *   1013 vmspace_mmap(id, addr, len, prot_flags, fd, offset)
 *                                         mmap(2) inside the space; returns
 *                                         the address. Six arguments only, so
 *                                         prot and flags travel together:
 *                                         RUMP_VMSPACE_PROTFLAGS(prot, flags).
 *                                         Use rump_vmspace_mmap() below.
 *   1014 vmspace_munmap(id, addr, len)    rounds to pages as DragonFly;
 *                                         EINVAL if the range wraps or leaves
 *                                         the user range; len 0 is a no-op
 *   1015 vmspace_mcontrol(id, addr, len, behav, value)   madvise(2) behaviours
 *                                         (MADV_*), plus DragonFly's
 *                                         MADV_INVAL / MADV_SETMAP as no-ops;
 *                                         EINVAL for anything else or a bad range
 *   1016 vmspace_pread(id, buf, nbyte, flags, offset)
 *   1017 vmspace_pwrite(id, buf, nbyte, flags, offset)
 *                                         copy between buf (the caller's
 *                                         memory) and address `offset` in the
 *                                         space; flags must be 0. Return the
 *                                         bytes done, stopping short at the
 *                                         first page that faults in the
 *                                         space; EFAULT if nothing was done.
 * Every call but vmspace_create is EINVAL in a process that never created a
 * space (as DragonFly), ENOENT for an unknown id.
 *
 * vmspace_ctl protocol. There are no register frames here: the host thread
 * keeps running, and what changes is which user space its system calls
 * address.
 *   vmspace_ctl(id, RUMP_VMSPACE_CTL_RUN, NULL, NULL): from now on the
 *     calling LWP's system calls (and rump_copyin/rump_copyout from the
 *     thread bound to it) take their pointer arguments in space `id`, and
 *     the memory calls (mmap, munmap, brk ...) act on it. tframe and vframe
 *     are ignored. RUN while already in a space switches to the new one.
 *   vmspace_ctl(NULL or any id, RUMP_VMSPACE_CTL_RETURN, NULL, NULL): the
 *     LWP returns to its process's own space; EINVAL if it was not in one.
 *   Other commands: EOPNOTSUPP. Exit of the process returns every LWP.
 */
#ifndef RUMP_VMSPACE_H_
#define RUMP_VMSPACE_H_

#include <stdint.h>
#include <sys/types.h>

#include <rump/rump_syscalls.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RUMP_VMSPACE_CTL_RUN 1    /* DragonFly's VMSPACE_CTL_RUN */
#define RUMP_VMSPACE_CTL_RETURN 2 /* this kernel's: back to the own space */

/* DragonFly's extra vmspace_mcontrol behaviours (accepted, no effect).
 * DragonFly numbers them 10 and 11, which are Linux's MADV_DONTFORK and
 * MADV_DOFORK: here they get numbers of their own. */
#define RUMP_MADV_INVAL 0x1000
#define RUMP_MADV_SETMAP 0x1001

/* prot in the low 32 bits, flags in the high 32 bits. */
#define RUMP_VMSPACE_PROTFLAGS(prot, flags) \
	(((unsigned long)(unsigned int)(flags) << 32) | (unsigned long)(unsigned int)(prot))

/* vmspace_mmap with DragonFly's seven arguments: the mapped address, or
 * MAP_FAILED with errno set. */
static inline void *rump_vmspace_mmap(void *id, void *addr, size_t len, int prot, int flags,
                                      int fd, off_t offset) {
	return rump_sys_vmspace_mmap(id, addr, len, RUMP_VMSPACE_PROTFLAGS(prot, flags), fd, offset);
}

#ifdef __cplusplus
}
#endif

#endif /* RUMP_VMSPACE_H_ */
