// etfs.h: host files inside the kernel's name space (rump_pub_etfs_*,
// <rump/rumpvfs.h>), as NetBSD's etfs.
//
// Design. Each registered key is a small file system of its own: an
// EtfsMount whose root vnode is the host object (a regular file, a block
// or character device, or a directory). Registration makes a placeholder
// node at the key in whatever file system holds that path (tmpfs
// normally; missing parent directories are made, mode 0755) and mounts the
// EtfsMount on it, so namei's ordinary mount crossing (vfs/namei.cc)
// leads every lookup of the key to the etfs vnode: no change to namei,
// and open files keep the mount busy, which is what makes remove EBUSY.
// Removal unmounts and unlinks the placeholder.
//
// I/O. File vnodes read and write the host file with rumpuser_iovread /
// rumpuser_iovwrite at begin + offset, clipped to the window [begin,
// begin + size): reads past the end are short (EOF), writes at or past it
// are ENOSPC (the window of RUMP_ETFS_REG with RUMP_ETFS_SIZE_ENDOFF grows
// with the host file). The mount's tree lock is held across the host call
// (it serialises I/O on that one key only). stat reports the window size.
// Block-device keys also offer the BlockDevice interface (dev/blockdev.h,
// block_device_of()) for disk file systems; their descriptors do byte I/O
// through the same vnode operations (the special-file hook for VType::kBlk
// and kChr attaches the vnode FileOps to etfs nodes).
//
// Directories (RUMP_ETFS_DIR, _DIR_SUBDIRS) show the host directory's
// regular files (symbolic links followed) and, with _SUBDIRS, its
// subdirectories, recursively; other host objects stay hidden. lookup
// asks the host each time (rumpuser_getdirent) and keeps the node it made
// only while the host has the same object (inode number and type) under
// the name; readdir lists the host directory (rumpuser_opendir /
// rumpuser_readdir) with the same filter, so the two agree. Directory
// positions are the host's cookies; inode numbers are the host's (a tree
// spanning several host file systems may repeat one). No create/remove
// inside.
//
// The per-kernel registry (key -> mount) is the "etfs" component's state.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace rump {

class Kernel;

int etfs_register(Kernel& k, const char* key, const char* hostpath, int type, uint64_t begin, uint64_t size);
int etfs_remove(Kernel& k, const char* key);

}  // namespace rump
