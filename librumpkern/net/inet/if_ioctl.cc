// Linux's interface ioctls on inet sockets (netdevice(7)): SIOCGIFCONF,
// SIOCGIFFLAGS/SIOCSIFFLAGS, SIOCGIFADDR/SIOCSIFADDR,
// SIOCGIFNETMASK/SIOCSIFNETMASK, SIOCGIFBRDADDR, SIOCGIFMTU/SIOCSIFMTU,
// SIOCGIFINDEX, SIOCGIFNAME, SIOCGIFHWADDR; and the routing table's
// SIOCADDRT/SIOCDELRT (struct rtentry on IPv4 sockets, struct in6_rtmsg
// on IPv6 ones, as Linux's ip_rt_ioctl and ipv6_route_ioctl). struct
// ifreq, ifconf, rtentry and in6_rtmsg are Linux x86-64's; setting needs
// root (CAP_NET_ADMIN).
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <sys/ioctl.h>

#include <cstring>

#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/proc.h"
#include "net/inet/if.h"

namespace rump {

namespace {

// An ifconf as user space lays it out (the pointer is a user address).
struct UserIfconf {
  int len;
  uint64_t buf;
};
static_assert(sizeof(UserIfconf) == sizeof(ifconf));

void put_sin(sockaddr& sa, InAddr a) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = a.s;
  std::memcpy(&sa, &sin, sizeof sin);
}

Result<InAddr> get_sin(const sockaddr& sa) {
  sockaddr_in sin;
  std::memcpy(&sin, &sa, sizeof sin);
  if (sin.sin_family != AF_INET) return err(EINVAL);
  return InAddr{sin.sin_addr.s_addr};
}

// A netmask's prefix length; -1 if its ones are not contiguous.
int mask_len(InAddr m) {
  uint32_t h = m.to_host();
  int n = __builtin_popcount(h);
  if (n && h != ~0u << (32 - n)) return -1;
  return n;
}

int classful_len(InAddr a) {
  uint32_t h = a.to_host();
  if ((h >> 31) == 0) return 8;
  if ((h >> 30) == 2) return 16;
  return 24;
}

Result<long> ifconf_ioctl(Lwp& l, InetState& st, uintptr_t arg) {
  UserIfconf ic;
  TRY(copyin(l, arg, &ic, sizeof ic));
  if (ic.len < 0) return err(EINVAL);
  // Snapshot: one entry per IPv4 address (Linux lists only those).
  constexpr int kMax = 64;
  ifreq* out = static_cast<ifreq*>(st.kernel.kmem().zalloc(sizeof(ifreq) * kMax));
  if (!out) return err(ENOMEM);
  int n = 0;
  {
    SharedLocker g(st.if_lock_);
    for (const Ifnet& i : st.ifs_)
      for (int a = 0; a < i.naddr4 && n < kMax; a++, n++) {
        std::memcpy(out[n].ifr_name, i.name, IFNAMSIZ);
        put_sin(out[n].ifr_addr, i.addr4[a].addr);
      }
  }
  int total = n * static_cast<int>(sizeof(ifreq));
  Result<void> r;
  if (ic.buf == 0) {
    ic.len = total;
  } else {
    int fit = ic.len / static_cast<int>(sizeof(ifreq));
    if (fit > n) fit = n;
    if (fit) r = copyout(l, out, static_cast<uintptr_t>(ic.buf), sizeof(ifreq) * fit);
    ic.len = fit * static_cast<int>(sizeof(ifreq));
  }
  Kmem::free(out);
  TRY(r);
  TRY(copyout(l, &ic, arg, sizeof ic));
  return 0;
}

bool host_bits_clear(const IpAddr& a, int plen) {
  if (a.family == AF_INET) return plen == 32 || (a.v4.to_host() & (plen == 0 ? ~0u : ~(~0u << (32 - plen)))) == 0;
  for (int i = 0; i < 16; i++) {
    int bits = plen - i * 8;
    if (bits >= 8) continue;
    uint8_t keep = bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    if (a.v6.b[i] & ~keep) return false;
  }
  return true;
}

Result<long> route_ioctl(Lwp& l, Socket& so, InetState& st, unsigned long cmd, uintptr_t arg) {
  if (!l.cred().is_root()) return err(EPERM);
  IpAddr dst, gw;
  int plen, ifindex = 0;
  if (so.domain().family == AF_INET6) {
    in6_rtmsg m;
    TRY(copyin(l, arg, &m, sizeof m));
    if (m.rtmsg_dst_len > 128) return err(EINVAL);
    In6Addr d;
    std::memcpy(d.b, &m.rtmsg_dst, 16);
    dst = IpAddr::of(d);
    plen = m.rtmsg_dst_len;
    if (m.rtmsg_flags & RTF_GATEWAY) {
      In6Addr g;
      std::memcpy(g.b, &m.rtmsg_gateway, 16);
      gw = IpAddr::of(g);
    }
    ifindex = m.rtmsg_ifindex;
    if (ifindex && !st.find_if(ifindex)) return err(ENODEV);
  } else {
    rtentry rt;
    TRY(copyin(l, arg, &rt, sizeof rt));
    InAddr d = TRY(get_sin(rt.rt_dst));
    dst = IpAddr::of(d);
    if (rt.rt_flags & RTF_HOST) {
      plen = 32;
    } else {
      sockaddr_in mk;
      std::memcpy(&mk, &rt.rt_genmask, sizeof mk);
      plen = mask_len(InAddr{mk.sin_addr.s_addr});
      if (plen < 0) return err(EINVAL);
    }
    if (rt.rt_flags & RTF_GATEWAY) gw = IpAddr::of(TRY(get_sin(rt.rt_gateway)));
    if (rt.rt_dev) {
      char name[IFNAMSIZ];
      size_t n;
      TRY(copyinstr(l, reinterpret_cast<uintptr_t>(rt.rt_dev), name, sizeof name, &n));
      RefPtr<Ifnet> ifp = st.find_if(name);
      if (!ifp) return err(ENODEV);
      ifindex = ifp->index;
    }
  }
  if (!host_bits_clear(dst, plen)) return err(EINVAL);
  if (cmd == SIOCDELRT) {
    TRY(route_delete(st, dst, plen));
    return 0;
  }
  if (route_exists(st, dst, plen)) return err(EEXIST);  // SIOCADDRT does not replace a route
  if (!gw.family && !ifindex) return err(ENODEV);  // neither a gateway nor a device: Linux's answer
  TRY(route_add(st, dst, plen, gw, ifindex, false));
  return 0;
}

}  // namespace

Result<long> inet_ioctl(Lwp& l, Socket& so, unsigned long cmd, uintptr_t arg) {
  InetState* stp = inet_state_or_null(so.kernel());
  if (!stp) return err(ENODEV);
  InetState& st = *stp;
  switch (cmd) {
    case SIOCGIFCONF: return ifconf_ioctl(l, st, arg);
    case SIOCADDRT: case SIOCDELRT: return route_ioctl(l, so, st, cmd, arg);
    case SIOCGIFFLAGS: case SIOCSIFFLAGS: case SIOCGIFADDR: case SIOCSIFADDR: case SIOCGIFNETMASK:
    case SIOCSIFNETMASK: case SIOCGIFBRDADDR: case SIOCGIFMTU: case SIOCSIFMTU: case SIOCGIFINDEX:
    case SIOCGIFNAME: case SIOCGIFHWADDR: break;
    default: return err(ENOTTY);
  }
  ifreq ifr;
  TRY(copyin(l, arg, &ifr, sizeof ifr));
  bool set = cmd == SIOCSIFFLAGS || cmd == SIOCSIFADDR || cmd == SIOCSIFNETMASK || cmd == SIOCSIFMTU;
  if (set && !l.cred().is_root()) return err(EPERM);
  RefPtr<Ifnet> ifp;
  if (cmd == SIOCGIFNAME) {
    ifp = st.find_if(ifr.ifr_ifindex);
  } else {
    ifr.ifr_name[IFNAMSIZ - 1] = '\0';
    ifp = st.find_if(ifr.ifr_name);
  }
  if (!ifp) return err(ENODEV);
  switch (cmd) {
    case SIOCGIFFLAGS: ifr.ifr_flags = static_cast<short>(ifp->flags.load()); break;
    case SIOCSIFFLAGS: {
      bool up = ifr.ifr_flags & IFF_UP;
      if (up != ifp->up()) TRY(if_set_up(*ifp, up));
      return 0;
    }
    case SIOCGIFADDR: put_sin(ifr.ifr_addr, TRY(if_primary_addr4(*ifp)).addr); break;
    case SIOCGIFNETMASK: put_sin(ifr.ifr_netmask, TRY(if_primary_addr4(*ifp)).mask); break;
    case SIOCGIFBRDADDR: put_sin(ifr.ifr_broadaddr, TRY(if_primary_addr4(*ifp)).bcast); break;
    case SIOCSIFADDR: {
      InAddr a = TRY(get_sin(ifr.ifr_addr));
      Result<IfAddr4> old = if_primary_addr4(*ifp);
      int plen = old.ok() ? old->plen : classful_len(a);
      if (old.ok()) TRY(if_del_addr4(*ifp, old->addr));
      if (a.any()) return 0;  // 0.0.0.0 removes the address (Linux)
      TRY(if_add_addr4(*ifp, a, plen, true));
      return 0;
    }
    case SIOCSIFNETMASK: {
      InAddr m = TRY(get_sin(ifr.ifr_netmask));
      int plen = mask_len(m);
      if (plen < 0) return err(EINVAL);
      IfAddr4 old = TRY(if_primary_addr4(*ifp));
      TRY(if_del_addr4(*ifp, old.addr));
      TRY(if_add_addr4(*ifp, old.addr, plen, true));
      return 0;
    }
    case SIOCGIFMTU: ifr.ifr_mtu = static_cast<int>(ifp->mtu.load()); break;
    case SIOCSIFMTU:
      // IPv4 needs 68 (RFC 791); the largest is what a length field holds.
      if (ifr.ifr_mtu < 68 || ifr.ifr_mtu > 65536) return err(EINVAL);
      if (ifp->mtu.exchange(static_cast<uint32_t>(ifr.ifr_mtu)) != static_cast<uint32_t>(ifr.ifr_mtu))
        rtnl_notify_link(*ifp);
      return 0;
    case SIOCGIFINDEX: ifr.ifr_ifindex = ifp->index; break;
    case SIOCGIFNAME: std::memcpy(ifr.ifr_name, ifp->name, IFNAMSIZ); break;
    case SIOCGIFHWADDR:
      std::memset(&ifr.ifr_hwaddr, 0, sizeof ifr.ifr_hwaddr);
      ifr.ifr_hwaddr.sa_family = static_cast<sa_family_t>(ifp->type);
      std::memcpy(ifr.ifr_hwaddr.sa_data, ifp->hwaddr, 6);
      break;
  }
  TRY(copyout(l, &ifr, arg, sizeof ifr));
  return 0;
}

}  // namespace rump
