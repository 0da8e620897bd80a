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
 *
 * Interface types made by name with ifcreate: "shmifN" (an Ethernet on a
 * shared-memory bus: ifsetlinkstr names the bus file) and "virtN" (an
 * Ethernet on a host tap device: ifsetlinkstr names the tap, made if it
 * does not exist). Both start down, without address, with a random
 * locally administered MAC address.
 */
#ifndef RUMP_RUMPNET_H_
#define RUMP_RUMPNET_H_

#include <stdint.h>

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

/*
 * Seeded impairment of what an interface (lo included) receives, for tests:
 * each packet is dropped with probability loss, else duplicated with
 * probability duplicate, held back behind the next packet with
 * probability reorder, and delivered delay_us microseconds late. The
 * draws come from a generator seeded by seed, so the same traffic is
 * impaired the same way every time. All zero turns impairment off.
 * EINVAL for a probability outside [0, 1] (or a null cfg), ENXIO for an
 * unknown interface, ENOMEM.
 */
struct rump_netconfig_impair {
	uint64_t seed;
	double loss;
	double duplicate;
	double reorder;
	uint32_t delay_us;
};
int rump_pub_netconfig_impair(const char *ifname, const struct rump_netconfig_impair *cfg);

/*
 * A shmif interface on the bus in the host file path (made if absent;
 * every kernel, in any process, that names the same file is on the same
 * Ethernet): the first free shmifN is made and attached, and N stored in
 * *unit. The interface starts down. 0, EINVAL (an empty path, a file that
 * is not a bus), the host's errno for the file, ENOMEM.
 */
int rump_pub_shmif_create(const char *path, int *unit);

#ifdef __cplusplus
}
#endif

#endif /* RUMP_RUMPNET_H_ */
