// ip_var.h: the IPv4 layer's internal entry points, shared by the files of
// net/inet/ (input, output, reassembly, ICMP, raw sockets). Transports use
// ip.h instead.
#pragma once

#include <netinet/ip.h>

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
// Gives a packet (transport header first) to its transport, counting it
// in delivers. False when no transport is registered for ip.proto: p
// is not consumed, the caller reports it.
bool ip_deliver(InetState& st, Pkt* p, const IpHdrInfo& ip, std::atomic<uint64_t>& delivers);

// The reassembly timer and teardown (net/inet/ip_reass.cc).
void ip_reass_drop_all(InetState& st);

}  // namespace rump
