// The process-wide sysent table, filled by each linked faction at load time.
#include "kern/syscall.h"

#include "kern/kernel.h"

namespace rump {

Sysent g_sysent[kMaxSyscall];

SysentRegistrar::SysentRegistrar(const SysentInit* entries, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const SysentInit& e = entries[i];
    if (e.nr < 0 || e.nr >= kMaxSyscall) panic("syscall %s: number %ld out of range", e.name, e.nr);
    if (g_sysent[e.nr].entry) panic("syscall %s: number %ld declared twice", e.name, e.nr);
    g_sysent[e.nr] = Sysent{e.entry, e.name, e.nargs};
  }
}


const char* syscall_name(long nr) {
  for (size_t i = 0; i < kSyscallNameCount; i++)
    if (kSyscallNames[i].nr == nr) return kSyscallNames[i].name;
  return nullptr;
}

}  // namespace rump
