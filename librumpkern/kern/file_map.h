// file_map.h: the seam between the vm faction, which maps memory, and the
// VFS faction, which knows files: how mmap(2) of a descriptor finds the
// VmObject behind it (a regular file's page cache).
//
// The VFS faction installs the hook when its library is loaded
// (process-wide, like the device mmap hook in kern/kcov.h); the vm
// faction's mmap and vmspace_mmap ask through it. Without the VFS faction
// a file mapping is ENODEV.
//
// A pager's fill that finds no data to give (a page wholly past the end of
// the file after a truncation, a read error) fails with kBusFault: a
// system call's copy turns it into EFAULT, and the process's own access
// (rump_copyin/rump_copyout from an isolated process) raises SIGBUS, as a
// load or store past the end of a mapped file does on Linux.
#pragma once

#include <cerrno>

#include "base/ref.h"
#include "base/result.h"

namespace rump {

namespace vm {
class VmObject;
}
class Lwp;

inline constexpr int kBusFault = ENXIO;

// The VmObject behind fd for a mapping with prot and flags (MAP_SHARED or
// MAP_PRIVATE), and in *max_prot the widest protection the mapping may
// ever have (EACCES then refuses more): EBADF, EACCES, ENODEV as mmap(2).
// What a copy on behalf of a system call reports for a bus fault.
template <class T>
Result<T> bus_to_efault(Result<T> r) {
  if (!r.ok() && r.error() == kBusFault) return err(EFAULT);
  return r;
}

using MmapFileHook = Result<RefPtr<vm::VmObject>> (*)(Lwp& l, int fd, int prot, int flags, int* max_prot);
void set_mmap_file_hook(MmapFileHook hook);
MmapFileHook mmap_file_hook();

// The same seam for prctl(PR_SET_MM, PR_SET_MM_EXE_FILE, fd): the VFS
// faction keeps a process's executable file (what /proc/<pid>/exe shows).
// Without the VFS faction the option is EINVAL.
using ExeFileHook = Result<void> (*)(Lwp& l, int fd);
void set_exe_file_hook(ExeFileHook hook);
ExeFileHook exe_file_hook();

}  // namespace rump
