// faction_c.cc: the C functions of the factions' public interfaces
// (<rump/rumpvfs.h> ...), defined in the core so that they link whatever
// factions a program has; each goes to the implementation its faction
// registered (kern/faction_if.h), or is ENOSYS without it.
#include <rump/rump.h>
#include <rump/rumpvfs.h>

#include <cerrno>

#include "kern/curlwp.h"
#include "kern/faction_if.h"

namespace rump {
namespace {

// Process-wide, written only by the registrars while libraries load.
FactionInterfaces& registry() {
  static FactionInterfaces r;
  return r;
}

}  // namespace

const FactionInterfaces& faction_interfaces() { return registry(); }

EtfsInterfaceRegistrar::EtfsInterfaceRegistrar(const EtfsInterface* etfs) { registry().etfs = etfs; }

}  // namespace rump

extern "C" {

int rump_pub_etfs_register_withsize(const char* key, const char* hostpath, enum rump_etfs_type ftype,
                                    uint64_t begin, uint64_t size) {
  const rump::EtfsInterface* etfs = rump::faction_interfaces().etfs;
  rump::Kernel* k = rump::current_kernel();
  if (!etfs || !k) return ENOSYS;
  return etfs->register_withsize(*k, key, hostpath, static_cast<int>(ftype), begin, size);
}

int rump_pub_etfs_register(const char* key, const char* hostpath, enum rump_etfs_type ftype) {
  return rump_pub_etfs_register_withsize(key, hostpath, ftype, 0, RUMP_ETFS_SIZE_ENDOFF);
}

int rump_pub_etfs_remove(const char* key) {
  const rump::EtfsInterface* etfs = rump::faction_interfaces().etfs;
  rump::Kernel* k = rump::current_kernel();
  if (!etfs || !k) return ENOSYS;
  return etfs->remove(*k, key);
}

}  // extern "C"
