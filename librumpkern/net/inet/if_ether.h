// if_ether.h: Ethernet interfaces: framing (Ethernet II) and ARP (RFC 826)
// over a link that a device provides (a shared-memory bus, a host tap).
//
// A device makes its interface with ether_attach(), giving its MAC address
// and an EtherLink whose transmit() sends one whole frame; it hands every
// frame it receives to ether_input(). The stack's output resolves IPv4
// next hops through the interface's ARP cache: a packet for a next hop not
// yet resolved waits (at most kArpHold per neighbour, the oldest dropped,
// as Linux's unres_qlen) while a request goes out; the reply releases it.
// Entries are valid for kArpValidNs after they were learnt, then resolved
// again on the next use. IPv6 next hops go through the same cache as a
// neighbour cache with RFC 4861's states (INCOMPLETE, REACHABLE, STALE,
// DELAY, PROBE): the protocol (solicitations, advertisements, duplicate
// address detection) is net/inet/nd6.cc, which tells the cache what it
// learnt through ether_nd_learn(); a per-interface callout retransmits
// solicitations and ages DELAY and PROBE entries.
//
// Locking: the cache has its own lock (a leaf); frames are transmitted and
// packets handed to the stack with no lock held.
#pragma once

#include <cstdint>

#include "net/inet/if.h"

namespace rump {

struct EtherLink {
  // Sends a frame (Ethernet header first). Consumes it. Called with no
  // kernel lock held, from any thread in the kernel.
  void (*transmit)(void* arg, Ifnet& ifp, Pkt* frame);
  void* arg;
  // rump_pub_netconfig_ifsetlinkstr (null: EOPNOTSUPP).
  Result<void> (*set_linkstr)(void* arg, Ifnet& ifp, const char* s) = nullptr;
  // The interface goes: the device stops calling ether_input and frees
  // its state (null: nothing to do). Called with no kernel lock held.
  void (*destroy)(void* arg, Ifnet& ifp) = nullptr;
};

// Makes, attaches and returns an Ethernet interface (down, no address).
// EEXIST for a name in use, ENOMEM.
Result<Ref<Ifnet>> ether_attach(InetState& st, const char* name, const uint8_t mac[6], const EtherLink& link);
// A received frame. Consumes it; no socket lock held.
void ether_input(Ifnet& ifp, Pkt* frame);
// Prepends an Ethernet header (to dst, of type) and transmits. Consumes p.
void ether_send_frame(Ifnet& ifp, Pkt* p, const uint8_t dst[6], uint16_t type);
// What neighbour discovery learnt about ip's link-layer address (mac may
// be null: the message had no option): from a solicitation (is_na false)
// or an advertisement with its Solicited and Override flags (RFC 4861
// 7.2.3 and 7.2.5). Packets held for ip go out once it is known. A no-op
// on interfaces that are not Ethernet.
void ether_nd_learn(Ifnet& ifp, const In6Addr& ip, const uint8_t* mac, bool is_na, bool solicited, bool override);

// The neighbour cache as rtnetlink shows and changes it (RTM_*NEIGH):
// an entry's state is one of Linux's NUD_* values; entries an
// administrator made PERMANENT or NOARP never expire and are not changed
// by what arrives.
struct NeighInfo {
  IpAddr ip;
  uint8_t mac[6];
  uint16_t nud;     // NUD_*
  uint32_t probes;  // solicitations sent in the present state
  uint32_t age_cs;  // centiseconds since the entry last changed
};
// Copies ifp's entries of family (0: both) into out, at most max; returns
// how many there are. Nothing on an interface that is not Ethernet.
size_t ether_neigh_list(Ifnet& ifp, int family, NeighInfo* out, size_t max);
// Sets ip's entry as Linux's neigh_add does: a missing entry is made only
// with create (else ENOENT), an existing one is EEXIST with excl; its
// link-layer address changes only with replace or when it was not valid.
// nud: NUD_PERMANENT, NUD_NOARP, NUD_REACHABLE, NUD_STALE, NUD_DELAY or
// NUD_PROBE (EINVAL otherwise, or without mac for an entry that has
// none). Returns whether its state or address changed. EOPNOTSUPP on
// interfaces that are not Ethernet, ENOMEM.
Result<bool> ether_neigh_set(Ifnet& ifp, const IpAddr& ip, const uint8_t* mac, uint16_t nud, bool create, bool excl,
                             bool replace);
// Removes ip's entry (packets waiting on it are dropped): ENOENT.
Result<void> ether_neigh_delete(Ifnet& ifp, const IpAddr& ip);

// RTNLGRP_NEIGH notifications (net/inet/rtnetlink.cc) of an entry as it
// is now: RTM_NEWNEIGH (add) or RTM_DELNEIGH. An entry that failed or was
// removed is announced as Linux announces it: NUD_FAILED, then gone. No
// lock held; nothing is built without a listener.
void rtnl_notify_neigh_entry(Ifnet& ifp, const NeighInfo& n, bool add);
void rtnl_notify_neigh_failed(Ifnet& ifp, const NeighInfo& n);

}  // namespace rump
