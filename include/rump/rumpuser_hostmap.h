/*
 * rumpuser_hostmap.h: the hypercalls behind MAP_SHARED file mappings of a
 * process living in the host's address space (the vm faction, libvmspace).
 * The kernel's file caches take their frames from shared host memory, and
 * such a mapping is another view of those frames at the process's address.
 * Part of the hypercall interface of <rump/rumpuser.h> (same rules:
 * librumpuser implements them, kernel code calls them), in a header of its
 * own so that only the page frames and the vm faction depend on it.
 *
 * rumpuser_shmmap returns size bytes (a multiple of the page size) of
 * shared anonymous host memory, zero, read-write, resident (the host fills
 * every page at once rather than on its first touch: the kernel takes it
 * for frames it fills in order), not inherited by a forked host child (a
 * child's copy of the kernel must not write into the parent's frames).
 *
 * rumpuser_shmalias makes [dst, dst+size) another view of the frames at
 * [src, src+size), which must lie in one region rumpuser_shmmap returned,
 * replacing what was mapped at dst (memory an earlier rumpuser_anonmmap
 * returned), with protection prot (PROT_* bits). The view is not inherited
 * by a forked host child either.
 *
 * rumpuser_busmap replaces [dst, dst+size) by a mapping whose every access
 * raises SIGBUS in the host process (what Linux gives for the pages of a
 * mapped file past its end).
 *
 * All are given back with rumpuser_unmap. Each returns 0 or an errno
 * (EINVAL for unaligned or unknown arguments, ENOMEM). rumpuser_shmmap is
 * an injectable hypercall of class RUMPUSER_FAULT_MEMORY (ENOMEM).
 */
#ifndef RUMP_RUMPUSER_HOSTMAP_H
#define RUMP_RUMPUSER_HOSTMAP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

int rumpuser_shmmap(size_t size, void **memp);
int rumpuser_shmalias(void *src, size_t size, void *dst, int prot);
int rumpuser_busmap(void *dst, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* RUMP_RUMPUSER_HOSTMAP_H */
