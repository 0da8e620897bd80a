// faction_if.h: the C API entry points that a faction serves.
//
// <rump/rump.h> declares every public interface of every faction, and the
// core defines the C functions, so a program that links only the core
// still links; the faction library, when loaded, registers the functions
// that do the work (a static registrar, as its sysent entries). A call
// whose faction is not linked is ENOSYS, never an undefined symbol. The
// registry is process-wide and written only while libraries load.
#pragma once

#include <cstdint>

namespace rump {

class Kernel;

// etfs (fs/etfs, in the vfs faction): rump_pub_etfs_*.
struct EtfsInterface {
  int (*register_withsize)(Kernel& k, const char* key, const char* hostpath, int type, uint64_t begin,
                           uint64_t size);
  int (*remove)(Kernel& k, const char* key);
};

// netconfig (net/inet, in the net faction): rump_pub_netconfig_*.
struct NetconfigInterface {
  int (*ifcreate)(Kernel& k, const char* ifname);
  int (*ifdestroy)(Kernel& k, const char* ifname);
  int (*ifup)(Kernel& k, const char* ifname, bool up);
  int (*ifsetlinkstr)(Kernel& k, const char* ifname, const char* linkstr);
  int (*ipv4_ifaddr)(Kernel& k, const char* ifname, const char* addr, const char* mask, int prefixlen);
  int (*ipv6_ifaddr)(Kernel& k, const char* ifname, const char* addr, int prefixlen);
  int (*gw)(Kernel& k, int family, const char* addr);
  // impair: cfg is a struct rump_netconfig_impair.
  int (*impair)(Kernel& k, const char* ifname, const void* cfg);
  int (*shmif_create)(Kernel& k, const char* path, int* unit);
};

struct FactionInterfaces {
  const EtfsInterface* etfs = nullptr;
  const NetconfigInterface* netconfig = nullptr;
};

// The registered interfaces (null members: that faction is not linked).
const FactionInterfaces& faction_interfaces();

// Registers a faction's interface when its library is loaded.
struct EtfsInterfaceRegistrar {
  explicit EtfsInterfaceRegistrar(const EtfsInterface* etfs);
};
struct NetconfigInterfaceRegistrar {
  explicit NetconfigInterfaceRegistrar(const NetconfigInterface* nc);
};

}  // namespace rump
