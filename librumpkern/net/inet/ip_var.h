// ip_var.h: the IPv4 layer's internal entry points, shared by the files of
// net/inet/ (input, output, reassembly, ICMP, raw sockets). Transports use
// ip.h instead.
#pragma once

#include <netinet/ip.h>
#include <netinet/ip6.h>

#include "net/inet/if.h"

namespace rump {

// A received IPv4 packet (network header first). Consumes p.
void ip_input(InetState& st, Ifnet& ifp, Pkt* p);
// Reassembly: p is a fragment whose IP header (hlen bytes, already
// checked) is still in front. Returns the whole datagram with its payload
// only (header stripped) and fills ip, or null while fragments are
// missing (p consumed either way).
Pkt* ip_reass(InetState& st, Pkt* p, const iphdr& h, size_t hlen, IpHdrInfo& ip);

// ICMP (net/inet/icmp.cc). An IPv4 packet arrived for ICMP (header
// stripped).
void icmp_input(Kernel& k, Pkt* p, const IpHdrInfo& ip);
// Sends an ICMP error of type/code about a received packet whose IP
// header is hdr (hlen bytes) and whose payload starts with the first
// min(8, n) bytes of payload. mtu: for fragmentation needed. Rate-limited
// and never about an ICMP error, a broadcast or a non-first fragment.
void icmp_error(InetState& st, const uint8_t* hdr, size_t hlen, const uint8_t* payload, size_t n, uint8_t type,
                uint8_t code, uint32_t mtu);
// An ICMP error arrived about one of our packets: tell its transport.
void icmp_notify(Kernel& k, const IpCtlMsg& m);

// Raw IPv4 sockets (net/inet/raw.cc): a copy of every received datagram
// of protocol ip.proto goes to the raw sockets that want it. Returns
// whether any took one. p is not consumed.
bool raw_input(InetState& st, const Pkt& p, const IpHdrInfo& ip);
// ICMP echo replies for unprivileged ICMP (ping) sockets. Consumes p if it
// returns true.
bool ping_input(InetState& st, Pkt* p, const IpHdrInfo& ip);

// IPv6 (net/inet/ip6.cc): port unreachable about a received packet
// (consumes p).
void ip6_send_unreach(InetState& st, Pkt* p, const IpHdrInfo& ip);
// An ICMPv6 error about a packet whose IPv6 header is hdr (40 bytes) and
// whose payload starts with payload[0, n). Rate-limited, never about a
// multicast destination (but for packet too big) or an unspecified or
// multicast source (RFC 4443 2.4).
void icmp6_error_quote(InetState& st, const uint8_t* hdr, const uint8_t* payload, size_t n, uint8_t type,
                       uint8_t code, uint32_t param);
// The same about a whole IPv6 packet (header first); p is not consumed.
void icmp6_error_pkt(InetState& st, const Pkt& p, uint8_t type, uint8_t code, uint32_t param);
// IPv6 reassembly: p is a fragment's payload (the fragment header fh
// stripped); h its IPv6 header, ip filled from it. Returns the whole
// fragmentable part (ip.proto: the next header of the first fragment's
// fragment header) or null while fragments are missing (p consumed
// either way).
Pkt* ip6_reass(InetState& st, Pkt* p, const ip6_hdr& h, const ip6_frag& fh, IpHdrInfo& ip);

// IPv6 neighbour discovery (net/inet/nd6.cc, RFC 4861 and RFC 4862).
// A neighbour solicitation or advertisement arrived (ICMPv6 header
// first). Consumes p.
void nd6_input(InetState& st, Ifnet& ifp, Pkt* p, const IpHdrInfo& ip, uint8_t type);
// Sends a solicitation for target on ifp: to its solicited-node
// multicast group, or (mac given) to that neighbour alone (a probe).
void nd6_solicit(Ifnet& ifp, const In6Addr& target, const uint8_t* mac);
// Duplicate address detection for a's on an Ethernet interface that is
// up: one solicitation from the unspecified address. The address is
// usable at once (optimistic, RFC 4429) and tentative for a second; a
// neighbour that claims it meanwhile removes it (NdDupAddrs counted).
void nd6_dad_start(Ifnet& ifp, const In6Addr& a);
// Sends a router solicitation (RFC 4861 6.3.7) from the unspecified
// address, as a host whose link-local address is still tentative does.
void nd6_router_solicit(Ifnet& ifp);
// A router advertisement arrived (ICMPv6 header first; RFC 4861 6.3.4,
// RFC 4862 5.5.3), processed as Linux's host with accept_ra=1 and
// autoconf=1 does: its source link-layer option enters the neighbour
// cache, a nonzero router lifetime makes (zero removes) a default route
// through it (metric 1024, protocol ra), an MTU option sets the
// interface's IPv6 MTU, and each prefix option with the on-link flag
// makes a prefix route (metric 256), with the autonomous flag and a /64
// an address from the prefix and the interface's MAC (modified EUI-64).
// Lifetimes are not counted down. Anything malformed (hop limit not 255,
// a source that is not link-local, a bad option) is counted in InErrors.
// Consumes p.
void nd6_ra_input(InetState& st, Ifnet& ifp, Pkt* p, const IpHdrInfo& ip);
// The address of the 64-bit prefix with the interface identifier of
// mac (modified EUI-64, RFC 4291 appendix A).
In6Addr nd6_eui64(const In6Addr& prefix, const uint8_t mac[6]);
// Is a one of the solicited-node groups (ff02::1:ffXX:XXXX) of ifp's
// addresses, or all-nodes? (if_lock_ held by the caller or not: takes it)
bool nd6_joined(Ifnet& ifp, const In6Addr& a);

// --- what IPv4 and IPv6 share on their way in and out (net/inet/ip_output.cc)

// The interface and next hop towards dst (opts.oif forces an interface
// that must be up). Counts no_routes on failure: ENETUNREACH or the
// route lookup's error.
Result<RouteResult> ip_route_out(InetState& st, const IpAddr& dst, const IpOutOpts& opts,
                                 std::atomic<uint64_t>& no_routes);
// Puts hlen bytes of network header in front of p for ifp, finishing a
// partial transport checksum first unless ifp needs none (lo). Returns
// where the header goes; on failure p is freed (ENOBUFS counted in
// discards).
Result<char*> ip_prepend_header(Ifnet& ifp, Pkt* p, size_t hlen, std::atomic<uint64_t>& discards);
// Hands a finished packet to the device (consumes p); a failure is
// counted in discards and the interface's output errors.
Result<void> ip_send_if(Ifnet& ifp, Pkt* p, const IpAddr& nexthop, uint16_t ethertype,
                        std::atomic<uint64_t>& discards);
// Sends p (transport header and payload) in fragments for a path MTU it
// exceeds, each behind hlen bytes of network header that fill(at, off, n,
// more) writes for the n bytes at offset off; every fragment but the last
// carries a multiple of 8 bytes. df: EMSGSIZE instead. Consumes p. Stats
// is IpStats or Ip6Stats.
template <class Stats, class Fill>
Result<void> ip_send_fragments(Ifnet& ifp, Pkt* p, size_t mtu, size_t hlen, bool df, const IpAddr& nexthop,
                               uint16_t ethertype, Stats& s, Fill fill) {
  size_t per = mtu > hlen ? (mtu - hlen) & ~size_t{7} : 0;
  if (df || per == 0) {
    s.FragFails.fetch_add(1, std::memory_order_relaxed);
    Pkt::free(p);
    return err(EMSGSIZE);
  }
  Result<void> c = pkt_csum_finish(*p);
  if (!c.ok()) {
    Pkt::free(p);
    return c;
  }
  size_t len = p->len();
  Result<void> result;
  for (size_t off = 0; off < len; off += per) {
    size_t n = len - off < per ? len - off : per;
    Result<Pkt*> f = p->copy(off, n);
    if (!f.ok()) {
      s.FragFails.fetch_add(1, std::memory_order_relaxed);
      result = err(ENOBUFS);
      break;
    }
    Pkt* fp = f.value();
    fp->meta.csum = kCsumNone;
    char* at = fp->prepend(hlen).value();  // the copy has headroom
    fill(at, off, n, off + n < len);
    s.FragCreates.fetch_add(1, std::memory_order_relaxed);
    Result<void> sr = ip_send_if(ifp, fp, nexthop, ethertype, s.OutDiscards);
    if (!sr.ok()) {
      result = sr;
      break;
    }
  }
  if (result.ok()) s.FragOKs.fetch_add(1, std::memory_order_relaxed);
  Pkt::free(p);
  return result;
}

// TCP segments of more than one MSS (meta.gso_size: built for a device
// with TSO). ip_tso_whole: ifp takes p whole behind a network header,
// the packet then being tot bytes. tcp_gso_segment cuts p (TCP header
// first, a partial checksum as TCP leaves it) into segments of gso_size
// payload bytes, each with the header (sequence number advanced, FIN and
// PSH on the last only, CWR on the first only) and its own partial
// checksum, appended to out; consumes p (one that is malformed, or
// not partial, is dropped; out of buffers, the rest is dropped: the
// sender retransmits).
bool ip_tso_whole(const Ifnet& ifp, const Pkt& p, size_t tot);
void tcp_gso_segment(Pkt* p, PktList& out);
// Sends p through send_one (consumes its packet), first cut in software
// when it is a TCP segment of more than one MSS that exceeds the mtu and
// ifp cannot take whole; the first error of the pieces.
template <class SendOne>
Result<void> ip_send_gso(Ifnet& ifp, Pkt* p, size_t hlen, size_t mtu, SendOne send_one) {
  size_t tot = hlen + p->len();
  if (p->meta.gso_size == 0 || tot <= mtu || ip_tso_whole(ifp, *p, tot)) return send_one(p);
  PktList segs;
  tcp_gso_segment(p, segs);
  Result<void> r;
  while (!segs.empty()) {
    Pkt& q = segs.front();
    segs.pop_front();
    Result<void> e = send_one(&q);
    if (!e.ok() && r.ok()) r = e;
  }
  return r;
}

// Gives a packet (transport header first) to its transport, counting it
// in delivers. False when no transport is registered for ip.proto: p
// is not consumed, the caller reports it.
bool ip_deliver(InetState& st, Pkt* p, const IpHdrInfo& ip, std::atomic<uint64_t>& delivers);

// The reassembly timer and teardown (net/inet/ip_reass.cc).
void ip_reass_drop_all(InetState& st);

}  // namespace rump
