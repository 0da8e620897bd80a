// IPv6: not carried yet. Input counts and drops; output and source
// selection report the network unreachable.
#include "net/inet/ip_var.h"

namespace rump {

void ip6_input(InetState& st, Ifnet& ifp, Pkt* p) {
  ifp.counters.iqdrops.fetch_add(1, std::memory_order_relaxed);
  Pkt::free(p);
  (void)st;
}

Result<void> ip6_output(InetState& st, Pkt* p, const IpAddr& src, const IpAddr& dst, uint8_t proto,
                        const IpOutOpts& opts) {
  Pkt::free(p);
  return err(ENETUNREACH);
}

Result<IpAddr> ip6_select_source(InetState& st, const IpAddr& dst) { return err(ENETUNREACH); }

}  // namespace rump
