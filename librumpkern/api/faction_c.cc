// faction_c.cc: the C functions of the factions' public interfaces
// (<rump/rumpvfs.h> ...), defined in the core so that they link whatever
// factions a program has; each goes to the implementation its faction
// registered (kern/faction_if.h), or is ENOSYS without it.
#include <rump/rump.h>
#include <rump/rumpnet.h>
#include <rump/rumpvfs.h>

#include <sys/socket.h>

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
NetconfigInterfaceRegistrar::NetconfigInterfaceRegistrar(const NetconfigInterface* nc) { registry().netconfig = nc; }

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

// The netconfig calls: ENOSYS without the net faction (or a kernel).
#define RUMP_NETCONFIG_CALL(expr)                                    \
  const rump::NetconfigInterface* nc = rump::faction_interfaces().netconfig; \
  rump::Kernel* k = rump::current_kernel();                          \
  if (!nc || !k) return ENOSYS;                                      \
  return expr

int rump_pub_netconfig_ifcreate(const char* ifname) { RUMP_NETCONFIG_CALL(nc->ifcreate(*k, ifname)); }
int rump_pub_netconfig_ifdestroy(const char* ifname) { RUMP_NETCONFIG_CALL(nc->ifdestroy(*k, ifname)); }
int rump_pub_netconfig_ifup(const char* ifname) { RUMP_NETCONFIG_CALL(nc->ifup(*k, ifname, true)); }
int rump_pub_netconfig_ifdown(const char* ifname) { RUMP_NETCONFIG_CALL(nc->ifup(*k, ifname, false)); }
int rump_pub_netconfig_ifsetlinkstr(const char* ifname, const char* linkstr) {
  RUMP_NETCONFIG_CALL(nc->ifsetlinkstr(*k, ifname, linkstr));
}
int rump_pub_netconfig_ipv4_ifaddr(const char* ifname, const char* addr, const char* mask) {
  RUMP_NETCONFIG_CALL(nc->ipv4_ifaddr(*k, ifname, addr, mask, -1));
}
int rump_pub_netconfig_ipv4_ifaddr_cidr(const char* ifname, const char* addr, int prefixlen) {
  RUMP_NETCONFIG_CALL(nc->ipv4_ifaddr(*k, ifname, addr, nullptr, prefixlen));
}
int rump_pub_netconfig_ipv6_ifaddr(const char* ifname, const char* addr, int prefixlen) {
  RUMP_NETCONFIG_CALL(nc->ipv6_ifaddr(*k, ifname, addr, prefixlen));
}
int rump_pub_netconfig_ipv4_gw(const char* addr) { RUMP_NETCONFIG_CALL(nc->gw(*k, AF_INET, addr)); }
int rump_pub_netconfig_ipv6_gw(const char* addr) { RUMP_NETCONFIG_CALL(nc->gw(*k, AF_INET6, addr)); }
int rump_pub_netconfig_impair(const char* ifname, const struct rump_netconfig_impair* cfg) {
  RUMP_NETCONFIG_CALL(nc->impair(*k, ifname, cfg));
}
int rump_pub_shmif_create(const char* path, int* unit) { RUMP_NETCONFIG_CALL(nc->shmif_create(*k, path, unit)); }
#undef RUMP_NETCONFIG_CALL

}  // extern "C"
