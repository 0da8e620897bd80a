// syscall.h: the system call table and its dispatch.
//
// Entries come from syscalls.master through tools/gensyscalls.py: each
// faction library carries a generated array of SysentInit and registers it
// with a static SysentRegistrar when the library is loaded ("linking is
// enough"). The registry is process-wide and immutable once the program has
// started; a kernel copies nothing from it. Numbers with no entry are ENOSYS:
// every rump_sys_* wrapper is generated into the core, so a program that
// leaves a faction out still links, and its calls into that faction are
// ENOSYS (NetBSD's sys_nomodule). The dispatch is syscall.cc's.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rump {

class Lwp;

// A handler: returns the result, or -errno.
using SyscallEntry = long (*)(Lwp& l, const long* args);

inline constexpr long kMaxSyscall = 1024;

struct SysentInit {
  long nr;
  SyscallEntry entry;
  const char* name;
  int nargs;
};

struct Sysent {
  SyscallEntry entry;
  const char* name;
  int nargs;
};

// Registers a faction's entries at load time.
struct SysentRegistrar {
  SysentRegistrar(const SysentInit* entries, size_t n);
};

// The table, indexed by number; entry is null where nothing is linked.
extern Sysent g_sysent[kMaxSyscall];
inline const Sysent* sysent_table() { return g_sysent; }

struct SyscallName {
  long nr;
  const char* name;
  const char* faction;
  int nargs;
  // Bit i: argument i is a pointer (a user address) / a const one, which
  // the kernel only reads (fuzzers pick bad addresses by these).
  unsigned ptr_mask;
  unsigned in_mask;
};
extern const SyscallName kSyscallNames[];
extern const size_t kSyscallNameCount;
const char* syscall_name(long nr);

// The system call exit's answer to a call that a signal interrupted (r is
// -kErestartSys or -kErestartNoHand, kern/lwp.h): delivers the pending
// signals, then runs entry nr again with the same arguments as long as
// Linux's rules say restart, and returns the final result (EINTR where
// they say not to restart).
long syscall_restart(Lwp& l, long nr, const long* args, long r);
inline bool is_restart_result(long r) {
  // -514 (ERESTARTNOHAND) .. -512 (ERESTARTSYS); -513 is never returned.
  return static_cast<unsigned long>(r) + 514UL <= 2UL;
}

// The per-kernel tracing hook: sees every call's number, arguments and
// result (the raw -errno convention).
using SyscallTraceFn = void (*)(void* arg, long nr, const long* args, long result);

}  // namespace rump
