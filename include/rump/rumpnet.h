/*
 * rumpnet.h: configuring a rump kernel's network interfaces, as NetBSD's
 * rump netconfig calls. Reachable from <rump/rump.h>; the functions act on
 * the calling thread's current kernel and need the net faction linked
 * (ENOSYS without it). Each returns 0 or an errno value:
 *
 *   ENXIO    no interface of that name (or ifcreate: no such device type)
 *   EEXIST   ifcreate of a name in use
 *   EINVAL   an address, mask or prefix length that does not parse or is
 *            out of range
 *   ENETUNREACH  a gateway that no connected network reaches
 *   EOPNOTSUPP   ifsetlinkstr on an interface without a link
 *
 * Addresses are text ("10.0.0.1", "255.255.255.0", "fe80::1").
 */
#ifndef RUMP_RUMPNET_H_
#define RUMP_RUMPNET_H_

#ifdef __cplusplus
extern "C" {
#endif

int rump_pub_netconfig_ifcreate(const char *ifname);
int rump_pub_netconfig_ifdestroy(const char *ifname);
int rump_pub_netconfig_ifup(const char *ifname);
int rump_pub_netconfig_ifdown(const char *ifname);
int rump_pub_netconfig_ifsetlinkstr(const char *ifname, const char *linkstr);
int rump_pub_netconfig_ipv4_ifaddr(const char *ifname, const char *addr, const char *mask);
int rump_pub_netconfig_ipv4_ifaddr_cidr(const char *ifname, const char *addr, int prefixlen);
int rump_pub_netconfig_ipv6_ifaddr(const char *ifname, const char *addr, int prefixlen);
int rump_pub_netconfig_ipv4_gw(const char *addr);
int rump_pub_netconfig_ipv6_gw(const char *addr);

#ifdef __cplusplus
}
#endif

#endif /* RUMP_RUMPNET_H_ */
