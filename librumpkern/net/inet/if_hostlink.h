// if_hostlink.h: Ethernet interfaces whose wire is outside the kernel: the
// shared-memory bus (shmifN, if_shmif.cc) and a host tap device (virtN,
// if_virt.cc). Both are the same device around a different link:
//
//  - ifcreate("shmif0") makes the interface (Ethernet, a random locally
//    administered MAC, down, no link); ifsetlinkstr names the link (a bus
//    file, a tap name) and attaches to it, replacing an earlier one;
//  - frames the stack sends go to the link's send() from the sending
//    thread; a kernel thread per interface ("<ifname> rx") waits in the
//    link's recv() (a blocking hypercall with a timeout, so that halt and
//    a new link string are noticed) and hands what came to ether_input.
//
// A link type is a HostLinkOps table; this file's code does the rest.
//
// Locking: the device's link_lock_ (an RwLock, kNone: nothing is taken
// under it but the link's own host-side lock) is read by every send and
// written when the link changes; the rx thread owns the link it was
// started with, and is joined before that link is closed.
#pragma once

#include "net/inet/if.h"

namespace rump {

// What a link takes off the stack (set on the interface at attach).
struct HostLinkOffloads {
  bool csum = false;     // partial checksums (Ifnet::no_csum)
  uint32_t tso_max = 0;  // TCP segments it cuts itself (Ifnet::tso_max)
};

struct HostLinkOps {
  const char* prefix;  // the cloner's name prefix ("shmif", "virt")
  // Attaches to the link named s: its state, or an errno.
  Result<void*> (*open)(Kernel& k, const char* s);
  void (*close)(Kernel& k, void* link);
  // Sends one frame (Ethernet header first). Consumes it. false: the link
  // dropped it (counted as an output error).
  bool (*send)(void* link, Pkt* frame);
  // Receives up to max frames into out[], waiting at most timeout_ns for
  // the first; returns how many came.
  size_t (*recv)(void* link, InetState& st, Pkt** out, size_t max, int64_t timeout_ns);
  // The link carries frames whose TCP/UDP checksum is left unfilled
  // (kCsumPartial) and marks them verified at the receiver: a medium
  // that cannot corrupt (memory), as Ifnet::no_csum.
  bool no_csum = false;
  // The offloads of an attached link (null: no_csum and no TSO).
  HostLinkOffloads (*offloads)(void* link) = nullptr;
};

// Makes the interface name (unit already parsed) with no link: EEXIST,
// ENOMEM.
Result<Ref<Ifnet>> hostlink_create(InetState& st, const HostLinkOps& ops, const char* name);
// The cloner's create for a link type (arg: its HostLinkOps).
Result<void> hostlink_clone(InetState& st, const char* name, int unit, const void* arg);

}  // namespace rump
