// The loopback interface `lo`: made at boot, up, with 127.0.0.1/8 and ::1
// (as Linux). Its output is its input: the packet object itself is handed
// back to the stack (no copy of anything), and a checksum the transport
// left to the device is marked as not needed (kCsumVerified), so a
// segment sent on loopback is never checksummed.
#include <linux/if_ether.h>
#include <net/if_arp.h>

#include <cstring>

#include "kern/kernel.h"
#include "net/inet/if.h"

namespace rump {

namespace {

Result<void> loop_output(Ifnet& ifp, Pkt* p, const IpAddr& nh, uint16_t proto) {
  ifp.counters.opackets.fetch_add(1, std::memory_order_relaxed);
  ifp.counters.obytes.fetch_add(p->len(), std::memory_order_relaxed);
  if (p->meta.csum == kCsumPartial) p->meta.csum = kCsumVerified;
  p->meta.flags = kPktLoopback;
  if_input(ifp, p, proto);
  return {};
}

const IfOps kLoopOps = {&loop_output, nullptr, nullptr, nullptr};

}  // namespace

Result<void> loop_create(InetState& st) {
  auto* ifp = new (st.kernel.kmem()) Ifnet(st, kLoopOps);
  if (!ifp) return err(ENOMEM);
  Ref<Ifnet> ref = adopt_ref(ifp);
  std::strcpy(ifp->name, "lo");
  ifp->type = ARPHRD_LOOPBACK;
  ifp->no_csum = true;
  ifp->mtu.store(65536);
  ifp->flags.store(IFF_LOOPBACK);
  TRY(if_attach(st, *ifp));
  st.lo_ = ifp;
  TRY(if_set_up(*ifp, true));
  TRY(if_add_addr4(*ifp, InAddr::host(0x7f000001), 8));
  In6Addr one;
  one.b[15] = 1;
  TRY(if_add_addr6(*ifp, one, 128));
  return {};
}

}  // namespace rump
