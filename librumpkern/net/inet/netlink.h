// netlink.h: AF_NETLINK sockets (NETLINK_ROUTE only), inside the inet
// faction since every message they carry is about its interfaces,
// addresses and routes.
//
// The socket side (net/inet/netlink.cc): port ids (bind, autobind),
// multicast groups, the netlink socket options, message framing of a send
// (Linux's netlink_rcv_skb: each message in turn, NLMSG_ERROR for an
// error or a requested ACK), and replies and dumps queued on the
// requester's receive buffer as records of whole messages. A dump is
// built whole when asked for and handed to the receive buffer in pieces
// as the reader makes room (netlink_dump after each recvmsg), so it
// resumes across any number of reads and a small SO_RCVBUF.
//
// The message side (net/inet/rtnetlink.cc): rtnl_rcv_msg serves one
// request, the rtnl_notify_* calls (if.h) build notifications.
//
// Wire format: Linux's <linux/netlink.h> and <linux/rtnetlink.h>, with
// NLMSG_ALIGN/NLA_ALIGN to 4 bytes. Who calls what: the socket layer calls
// the Protosw hooks; rtnetlink.cc calls NlOut and nl_multicast.
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <cstring>

#include "net/inet/if.h"
#include "net/socket.h"

namespace rump {

// Messages on their way to one socket, packed into records of at most
// `chunk` bytes (a message never spans two). Records carry the source
// group after their bytes (for recvmsg's sockaddr_nl).
class NlOut {
 public:
  NlOut(Kmem& km, size_t chunk, uint32_t group = 0) : km_(km), chunk_(chunk), group_(group) {}
  ~NlOut() { recs_.clear_and_dispose(&SockRecord::dispose); }
  // Appends one message (ENOMEM).
  Result<void> add(const void* msg, size_t len);
  SockRecordList& records() { return recs_; }
  bool empty() const { return recs_.empty() && !cur_; }
  Kmem& kmem() const { return km_; }
  // Closes the last record.
  void finish();

 private:
  Kmem& km_;
  size_t chunk_;
  uint32_t group_;
  SockRecordList recs_;
  SockRecord* cur_ = nullptr;
};

// Builds one message in a fixed buffer (every message rtnetlink makes
// fits in kMax bytes).
class NlMsg {
 public:
  static constexpr size_t kMax = 1024;
  NlMsg(uint16_t type, uint16_t flags, uint32_t seq, uint32_t pid);
  // The fixed header after nlmsghdr (ifinfomsg, ifaddrmsg, rtmsg ...).
  template <class T>
  T* header() {
    return static_cast<T*>(reserve(sizeof(T)));
  }
  void put(uint16_t type, const void* data, size_t len);
  void put_u8(uint16_t type, uint8_t v) { put(type, &v, 1); }
  void put_u32(uint16_t type, uint32_t v) { put(type, &v, 4); }
  void put_str(uint16_t type, const char* s) { put(type, s, std::strlen(s) + 1); }
  const char* data() const { return buf_; }
  size_t len() const { return len_; }
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_); }

 private:
  void* reserve(size_t n);
  alignas(8) char buf_[kMax];
  size_t len_ = 0;
};

// One attribute of a request, after nla_parse's checks.
struct NlAttrs {
  static constexpr int kMax = 64;
  const nlattr* tb[kMax] = {};
  const void* data(int t) const { return tb[t] + 1; }
  size_t len(int t) const { return tb[t]->nla_len - NLA_HDRLEN; }
};
// Linux's non-strict nla_parse: attributes in [attrs, attrs+len) by type
// (types >= kMax ignored, a later one of a type wins, parsing stops at the
// first malformed header).
void nl_parse(const char* attrs, size_t len, NlAttrs& out);

// The request being served, for replies.
struct NlRequest {
  Lwp& l;
  Socket& so;
  InetState& st;
  const nlmsghdr& hdr;  // the message (its payload follows in memory)
  size_t len;           // hdr.nlmsg_len, checked
  uint32_t portid;      // the requester's
  bool strict;          // NETLINK_GET_STRICT_CHK
  // Linux's extended ACK (NETLINK_EXT_ACK): what the error was about, as
  // NLMSGERR_ATTR_MSG, and the attribute at fault, as NLMSGERR_ATTR_OFFS.
  const char* ext_msg = nullptr;
  const nlattr* ext_attr = nullptr;
  const char* payload() const { return reinterpret_cast<const char*>(&hdr) + NLMSG_HDRLEN; }
  size_t payload_len() const { return len - NLMSG_HDRLEN; }
  // Returns error after noting msg (and attr) for the extended ACK.
  int fail(int error, const char* msg, const nlattr* attr = nullptr) {
    ext_msg = msg;
    ext_attr = attr;
    return error;
  }
};

// What rtnl_rcv_msg returns besides an errno: a dump was queued (no ACK
// follows it).
inline constexpr int kNlDumpStarted = -1;

// Serves one request: 0 or an errno for NLMSG_ERROR, or kNlDumpStarted.
// Replies go to out; a dump's messages (NLMSG_DONE included) to dump.
int rtnl_rcv_msg(NlRequest& rq, NlOut& out, NlOut& dump);

// Sends msg to every socket of st in group (an RTNLGRP_* number).
void nl_multicast(InetState& st, uint32_t group, const NlMsg& msg);

}  // namespace rump
