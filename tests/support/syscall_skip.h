// The system calls that sweeps over the whole syscall table with made-up
// arguments leave out (tests/unit/sweep/hostile_test.cc, the syscall_fuzz
// target): they end the calling process or halt the kernel, or may block
// for good with hostile but valid arguments (a huge sleep, waiting on a
// child that runs forever, a read of an empty pipe). Each has its own tests.
//
// Plain C++ (no Catch2, no kernel header): the fuzz target uses it too.
#pragma once

#include <cstring>

namespace rump_test {

inline constexpr const char* kSweepSkips[] = {
    "exit", "exit_group", "reboot", "nanosleep", "clock_nanosleep", "pause", "rt_sigsuspend",
    // Without a timeout it waits for a signal nobody sends (tests:
    // kern/sigwait_test.cc).
    "rt_sigtimedwait",
    "wait4", "waitid", "poll", "ppoll", "select", "pselect6", "flock", "fcntl", "read", "readv",
    "pread64", "preadv", "vmspace_ctl",
    // FUTEX_WAIT without a timeout on a word that holds the value (tests:
    // kern/futex_test.cc, vm/futex_space_test.cc).
    "futex",
    // Socket and epoll calls that wait: on a connected pair nobody writes
    // to, a listener nobody connects to, a full backlog or buffer.
    "accept", "accept4", "connect", "recvfrom", "recvmsg", "recvmmsg", "sendto", "sendmsg", "sendmmsg",
    "epoll_wait", "epoll_pwait", "epoll_pwait2"};

// Is the call called name one that sweeps leave out?
inline bool sweep_skips(const char* name) {
  for (const char* s : kSweepSkips)
    if (std::strcmp(s, name) == 0) return true;
  return false;
}

// Pointer arguments that are addresses the call works on (a range to map,
// protect or unmap, a guest space's identifier), not memory it reads or
// writes: a bad value there is EINVAL, ENOMEM or a hint, never EFAULT.
struct AddressArgs {
  const char* name;
  unsigned mask;  // bit i: argument i
};
inline constexpr AddressArgs kAddressArgs[] = {
    {"mmap", 0x1},           {"munmap", 0x1},         {"mprotect", 0x1},      {"madvise", 0x1},
    {"mincore", 0x1},        {"msync", 0x1},          {"mlock", 0x1},         {"munlock", 0x1},
    {"mremap", 0x11},        {"brk", 0x1},            {"vmspace_create", 0x5}, {"vmspace_destroy", 0x1},
    {"vmspace_ctl", 0xd},    {"vmspace_mmap", 0x3},   {"vmspace_munmap", 0x3}, {"vmspace_mcontrol", 0x3},
    {"vmspace_pread", 0x1},  {"vmspace_pwrite", 0x1},
    // Stored for the LWP's exit, not touched by the call.
    {"set_tid_address", 0x1}, {"set_robust_list", 0x1},
    // Futex words: a misaligned address is EINVAL before any access, as on
    // Linux (EFAULT of aligned bad words: kern/futex_test.cc).
    {"futex", 0x11},
    // A number for most options (a signal, a flag); a pointer only for the
    // options that name one (PR_SET_NAME, PR_GET_NAME ...: kern/procctl_test.cc).
    {"prctl", 0x2},
    // getcpu's third argument is the unused cache of old kernels: never
    // touched (kern/compat_calls_test.cc).
    {"getcpu", 0x4},
};

// The pointer arguments (of ptr_mask) through which the call reads or
// writes user memory.
inline unsigned memory_args(const char* name, unsigned ptr_mask) {
  for (const AddressArgs& a : kAddressArgs)
    if (std::strcmp(a.name, name) == 0) return ptr_mask & ~a.mask;
  return ptr_mask;
}

// Calls with a memory argument that a sweep cannot bring to touch it
// (every probe fails first for another reason), with the reason.
struct NoEfault {
  const char* name;
  const char* why;
};
inline constexpr NoEfault kNoEfaultExpected[] = {
    {"wait4", "a probe has no children: ECHILD comes first (EFAULT: kern/core_test.cc, bad user pointers)"},
    {"waitid", "a probe has no children: ECHILD comes first (EFAULT: kern/core_test.cc, bad user pointers)"},
    {"ioctl", "no sweep scalar is a request that copies (EFAULT of FIONREAD: vfs/pipe_test.cc)"},
    {"flistxattr", "no sweep descriptor's file has attributes: an empty list writes nothing (EFAULT: "
                   "fs/ext2/ext2_xattr_test.cc)"},
    {"vmspace_pread", "needs a guest space made by vmspace_create (EFAULT: vm/vmspace_test.cc)"},
    {"vmspace_pwrite", "needs a guest space made by vmspace_create (EFAULT: vm/vmspace_test.cc)"},
    {"process_vm_readv", "pid, counts and flags take one scalar: flags must be 0, and pid 0 is no process "
                         "(EFAULT: kern/procctl_test.cc)"},
    {"process_vm_writev", "pid, counts and flags take one scalar: flags must be 0, and pid 0 is no process "
                          "(EFAULT: kern/procctl_test.cc)"},
    {"sched_getaffinity", "pid and size take the same scalar: no probe names a live process with a whole word"},
    {"bind", "no sweep descriptor is a socket: ENOTSOCK comes first (EFAULT: net/socket_test.cc)"},
    {"getsockname", "no sweep descriptor is a socket: ENOTSOCK comes first (EFAULT: net/socket_test.cc)"},
    {"getpeername", "no sweep descriptor is a socket: ENOTSOCK comes first (EFAULT: net/socket_test.cc)"},
    {"getsockopt", "no sweep descriptor is a socket: ENOTSOCK comes first (EFAULT: net/socket_test.cc)"},
    {"setsockopt", "no sweep descriptor is a socket: ENOTSOCK comes first (EFAULT: net/socket_test.cc)"},
    {"accept", "no sweep descriptor is a socket: ENOTSOCK comes first (EFAULT: net/socket_test.cc)"},
    {"accept4", "no sweep descriptor is a socket: ENOTSOCK comes first (EFAULT: net/socket_test.cc)"},
    {"connect", "no sweep descriptor is a socket: ENOTSOCK comes first (EFAULT: net/socket_test.cc)"},
    {"sendto", "no sweep descriptor is a socket: ENOTSOCK comes first (EFAULT: net/socket_test.cc)"},
    {"sendmsg", "no sweep descriptor is a socket: ENOTSOCK comes first (EFAULT: net/socket_test.cc)"},
    {"sendmmsg", "no sweep descriptor is a socket: ENOTSOCK comes first (EFAULT: net/socket_test.cc)"},
    {"recvfrom", "no sweep descriptor is a socket: ENOTSOCK comes first (EFAULT: net/socket_test.cc)"},
    {"recvmsg", "no sweep descriptor is a socket: ENOTSOCK comes first (EFAULT: net/socket_test.cc)"},
    {"epoll_wait", "no sweep descriptor is an epoll: EINVAL comes first (EFAULT: net/socket_test.cc)"},
    {"timerfd_gettime", "no sweep descriptor is a timerfd: EINVAL comes first (EFAULT: net/socket_test.cc)"},
    {"timer_gettime", "a probe has no POSIX timer: EINVAL comes first (EFAULT: vm/time_space_test.cc)"},
    {"pidfd_send_signal", "no sweep descriptor is a pidfd: EBADF comes first (the siginfo is read only for "
                          "one: vfs/pidfd_test.cc)"},
};

inline const char* no_efault_reason(const char* name) {
  for (const NoEfault& n : kNoEfaultExpected)
    if (std::strcmp(n.name, name) == 0) return n.why;
  return nullptr;
}

}  // namespace rump_test
