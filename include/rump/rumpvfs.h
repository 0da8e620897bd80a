/*
 * rumpvfs.h: host files inside a rump kernel's name space (etfs, "extra
 * terminal file system"), as NetBSD's rump_etfs_register(3).
 *
 * A key is a path in the kernel's name space; registering it makes a node
 * there whose I/O goes to the host file hostpath (through the rumpuser
 * file hypercalls), limited to the window [begin, begin + size). Include
 * this header next to <rump/rump.h>; the functions act on the calling
 * thread's current kernel and need the vfs faction linked. They return 0
 * or an errno value: EEXIST (key in use), ENOENT (unknown key or host
 * path), EINVAL (bad type or window), EBUSY (removing a key still open).
 */
#ifndef RUMP_RUMPVFS_H_
#define RUMP_RUMPVFS_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rump_etfs_type {
	RUMP_ETFS_REG,          /* a regular file */
	RUMP_ETFS_BLK,          /* a block device (what disk file systems mount) */
	RUMP_ETFS_CHR,          /* a character device */
	RUMP_ETFS_DIR,          /* a host directory: its regular files */
	RUMP_ETFS_DIR_SUBDIRS   /* a host directory, recursively */
};

/* size: to the end of the host file. */
#define RUMP_ETFS_SIZE_ENDOFF ((uint64_t)-1)

int rump_pub_etfs_register(const char *key, const char *hostpath, enum rump_etfs_type ftype);
int rump_pub_etfs_register_withsize(const char *key, const char *hostpath, enum rump_etfs_type ftype,
    uint64_t begin, uint64_t size);
int rump_pub_etfs_remove(const char *key);

#ifdef __cplusplus
}
#endif

#endif /* RUMP_RUMPVFS_H_ */
