// The netconfig calls of <rump/rumpnet.h> (NetBSD's rump netconfig): each
// enters the kernel as the calling thread's LWP, parses its text
// arguments and acts on the interface and route tables. Interface types
// beyond lo plug in as cloners (if_clone_register) keyed by a name prefix
// ("shmif", "virt"): ifcreate("shmif0") asks the "shmif" cloner for unit
// 0.
#include <arpa/inet.h>
#include <rump/rumpnet.h>

#include <cstdlib>
#include <cstring>

#include "kern/curlwp.h"
#include "kern/faction_if.h"
#include "kern/kernel.h"
#include "net/inet/if.h"

namespace rump {

// if_shmif.cc: the first free shmifN on the bus at path; its unit.
Result<int> shmif_create(InetState& st, const char* path);

namespace {

constexpr int kMaxCloners = 8;
struct ClonerTable {
  const IfCloner* c[kMaxCloners] = {};
  int n = 0;
};
ClonerTable& cloners() {
  static ClonerTable t;
  return t;
}

// Runs fn(state) inside the kernel; ENOSYS without the inet component,
// ENOMEM when its state cannot be made.
template <class Fn>
int in_kernel(Kernel& k, Fn fn) {
  Lwp* l = enter(k);
  if (!l) return enter_error(k);
  Result<InetState*> st = inet_state(k);
  int e = st.ok() ? fn(**st) : st.error() == ENOMEM ? ENOMEM : ENOSYS;
  leave(k, l);
  return e;
}

bool valid_name(const char* name) { return name && name[0] && std::strlen(name) < IFNAMSIZ; }

Result<RefPtr<Ifnet>> find(InetState& st, const char* ifname) {
  if (!valid_name(ifname)) return err(ENXIO);
  RefPtr<Ifnet> ifp = st.find_if(ifname);
  if (!ifp) return err(ENXIO);
  return ifp;
}

int errno_of(const Result<void>& r) { return r.ok() ? 0 : r.error(); }

int nc_ifcreate(Kernel& k, const char* ifname) {
  return in_kernel(k, [&](InetState& st) {
    if (!valid_name(ifname)) return EINVAL;
    if (st.find_if(ifname)) return EEXIST;
    size_t n = std::strcspn(ifname, "0123456789");
    if (ifname[n] == '\0') return ENXIO;
    char* end = nullptr;
    long unit = std::strtol(ifname + n, &end, 10);
    if (*end != '\0' || unit < 0 || unit > 65535) return ENXIO;
    ClonerTable& t = cloners();
    for (int i = 0; i < t.n; i++)
      if (std::strlen(t.c[i]->prefix) == n && std::strncmp(t.c[i]->prefix, ifname, n) == 0)
        return errno_of(t.c[i]->create(st, ifname, static_cast<int>(unit), t.c[i]->arg));
    return ENXIO;
  });
}

int nc_ifdestroy(Kernel& k, const char* ifname) {
  return in_kernel(k, [&](InetState& st) {
    Result<RefPtr<Ifnet>> ifp = find(st, ifname);
    if (!ifp.ok()) return ifp.error();
    if (ifp.value().get() == st.lo_) return EPERM;  // lo stays, as Linux's
    if_detach(st, *ifp.value());
    return 0;
  });
}

int nc_ifup(Kernel& k, const char* ifname, bool up) {
  return in_kernel(k, [&](InetState& st) {
    Result<RefPtr<Ifnet>> ifp = find(st, ifname);
    if (!ifp.ok()) return ifp.error();
    return errno_of(if_set_up(*ifp.value(), up));
  });
}

int nc_ifsetlinkstr(Kernel& k, const char* ifname, const char* linkstr) {
  return in_kernel(k, [&](InetState& st) {
    Result<RefPtr<Ifnet>> ifp = find(st, ifname);
    if (!ifp.ok()) return ifp.error();
    if (!linkstr) return EINVAL;
    if (!ifp.value()->ops().set_linkstr) return EOPNOTSUPP;
    return errno_of(ifp.value()->ops().set_linkstr(*ifp.value(), linkstr));
  });
}

int mask_to_len(InAddr m) {
  uint32_t h = m.to_host();
  int n = __builtin_popcount(h);
  if (n && h != ~0u << (32 - n)) return -1;
  return n;
}

int nc_ipv4_ifaddr(Kernel& k, const char* ifname, const char* addr, const char* mask, int prefixlen) {
  return in_kernel(k, [&](InetState& st) {
    Result<RefPtr<Ifnet>> ifp = find(st, ifname);
    if (!ifp.ok()) return ifp.error();
    InAddr a;
    if (!addr || inet_pton(AF_INET, addr, &a.s) != 1) return EINVAL;
    if (mask) {
      InAddr m;
      if (inet_pton(AF_INET, mask, &m.s) != 1) return EINVAL;
      prefixlen = mask_to_len(m);
    }
    if (prefixlen < 0 || prefixlen > 32) return EINVAL;
    return errno_of(if_add_addr4(*ifp.value(), a, prefixlen));
  });
}

int nc_ipv6_ifaddr(Kernel& k, const char* ifname, const char* addr, int prefixlen) {
  return in_kernel(k, [&](InetState& st) {
    Result<RefPtr<Ifnet>> ifp = find(st, ifname);
    if (!ifp.ok()) return ifp.error();
    In6Addr a;
    if (!addr || inet_pton(AF_INET6, addr, a.b) != 1) return EINVAL;
    if (prefixlen < 0 || prefixlen > 128) return EINVAL;
    return errno_of(if_add_addr6(*ifp.value(), a, prefixlen));
  });
}

int nc_gw(Kernel& k, int family, const char* addr) {
  return in_kernel(k, [&](InetState& st) {
    IpAddr gw;
    if (!addr) return EINVAL;
    if (family == AF_INET) {
      InAddr a;
      if (inet_pton(AF_INET, addr, &a.s) != 1) return EINVAL;
      gw = IpAddr::of(a);
    } else {
      In6Addr a;
      if (inet_pton(AF_INET6, addr, a.b) != 1) return EINVAL;
      gw = IpAddr::of(a);
    }
    IpAddr any;
    any.family = static_cast<uint8_t>(family);
    return errno_of(route_add(st, any, 0, gw, 0, false));
  });
}

int nc_impair(Kernel& k, const char* ifname, const void* cfgp) {
  return in_kernel(k, [&](InetState& st) {
    Result<RefPtr<Ifnet>> ifp = find(st, ifname);
    if (!ifp.ok()) return ifp.error();
    if (!cfgp) return EINVAL;
    const auto* c = static_cast<const rump_netconfig_impair*>(cfgp);
    ImpairConfig cfg;
    cfg.seed = c->seed;
    cfg.loss = c->loss;
    cfg.duplicate = c->duplicate;
    cfg.reorder = c->reorder;
    cfg.delay_us = c->delay_us;
    return errno_of(if_set_impair(*ifp.value(), cfg));
  });
}

int nc_shmif_create(Kernel& k, const char* path, int* unit) {
  return in_kernel(k, [&](InetState& st) {
    Result<int> r = shmif_create(st, path);
    if (!r.ok()) return r.error();
    if (unit) *unit = r.value();
    return 0;
  });
}

const NetconfigInterface kNetconfig{&nc_ifcreate, &nc_ifdestroy,  &nc_ifup,   &nc_ifsetlinkstr,   &nc_ipv4_ifaddr,
                                    &nc_ipv6_ifaddr, &nc_gw, &nc_impair, &nc_shmif_create};
const NetconfigInterfaceRegistrar g_netconfig_registrar(&kNetconfig);

}  // namespace

void if_clone_register(const IfCloner* c) {
  ClonerTable& t = cloners();
  if (t.n < kMaxCloners) t.c[t.n++] = c;
}

}  // namespace rump
