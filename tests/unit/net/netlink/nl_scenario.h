// A small NETLINK_ROUTE client for the scenarios of the rtnetlink tests,
// written once over the kernel it talks to (S: net_diff.h's K<true> for
// the rump kernel, K<false> for the host's): requests built with Linux's
// own <linux/rtnetlink.h> structures, replies read the way `ip` reads
// them (MSG_PEEK|MSG_TRUNC to size the buffer, then the record) and
// parsed into one normalized text line per object, so that two kernels'
// answers compare as sorted lists of lines. Normalized: interface indexes
// (shown by name), counters, cache timestamps.
#pragma once

#include <arpa/inet.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "net_diff.h"

namespace nl_test {

using net_test::Log;

// A request under construction.
struct Req {
  alignas(8) char buf[1024];
  size_t len = 0;
  Req(uint16_t type, uint16_t flags) {
    std::memset(buf, 0, sizeof buf);
    len = NLMSG_HDRLEN;
    hdr()->nlmsg_type = type;
    hdr()->nlmsg_flags = flags;
    hdr()->nlmsg_len = static_cast<uint32_t>(len);
  }
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf); }
  template <class T>
  T* fixed() {
    T* p = reinterpret_cast<T*>(buf + len);
    len += NLMSG_ALIGN(sizeof(T));
    hdr()->nlmsg_len = static_cast<uint32_t>(len);
    return p;
  }
  void attr(uint16_t type, const void* data, size_t n) {
    nlattr a{static_cast<uint16_t>(NLA_HDRLEN + n), type};
    std::memcpy(buf + len, &a, sizeof a);
    std::memcpy(buf + len + NLA_HDRLEN, data, n);
    len += NLA_ALIGN(NLA_HDRLEN + n);
    hdr()->nlmsg_len = static_cast<uint32_t>(len);
  }
  void u32(uint16_t type, uint32_t v) { attr(type, &v, 4); }
  void str(uint16_t type, const char* s) { attr(type, s, std::strlen(s) + 1); }
  void in4(uint16_t type, const char* a) {
    in_addr x{};
    inet_pton(AF_INET, a, &x);
    attr(type, &x, 4);
  }
  void in6(uint16_t type, const char* a) {
    in6_addr x{};
    inet_pton(AF_INET6, a, &x);
    attr(type, &x, 16);
  }
};

// One parsed message.
struct Msg {
  nlmsghdr h;
  std::string body;  // the payload
};

inline std::string ntop(int family, const void* p) {
  char b[64];
  inet_ntop(family, p, b, sizeof b);
  return b;
}

// Attributes of a payload after a fixed header of hl bytes.
inline std::map<int, std::string> attrs(const std::string& body, size_t hl) {
  std::map<int, std::string> out;
  size_t off = NLMSG_ALIGN(hl);
  while (off + NLA_HDRLEN <= body.size()) {
    nlattr a;
    std::memcpy(&a, body.data() + off, sizeof a);
    if (a.nla_len < NLA_HDRLEN || off + a.nla_len > body.size()) break;
    out[a.nla_type & NLA_TYPE_MASK] = body.substr(off + NLA_HDRLEN, a.nla_len - NLA_HDRLEN);
    off += NLA_ALIGN(a.nla_len);
  }
  return out;
}

inline uint32_t u32_of(const std::string& s) {
  uint32_t v = 0;
  std::memcpy(&v, s.data(), std::min<size_t>(4, s.size()));
  return v;
}

struct Client {
  int fd = -1;
  uint32_t seq = 100;
  std::map<int, std::string> names;  // ifindex -> name

  std::string ifname(int index) const {
    auto it = names.find(index);
    return it == names.end() ? "if?" : it->second;
  }

  std::string link_line(const Msg& m) {
    ifinfomsg i;
    std::memcpy(&i, m.body.data(), sizeof i);
    auto a = attrs(m.body, sizeof i);
    std::string name = a.count(IFLA_IFNAME) ? a[IFLA_IFNAME].c_str() : "?";
    names[i.ifi_index] = name;
    char b[256];
    snprintf(b, sizeof b, "link %s type %u flags %#x mtu %u oper %d txq %u mode %d group %u addr %zu brd %zu stats %d/%d",
             name.c_str(), i.ifi_type, i.ifi_flags, a.count(IFLA_MTU) ? u32_of(a[IFLA_MTU]) : 0,
             a.count(IFLA_OPERSTATE) ? a[IFLA_OPERSTATE][0] : -1, a.count(IFLA_TXQLEN) ? u32_of(a[IFLA_TXQLEN]) : 0,
             a.count(IFLA_LINKMODE) ? a[IFLA_LINKMODE][0] : -1, a.count(IFLA_GROUP) ? u32_of(a[IFLA_GROUP]) : 99,
             a.count(IFLA_ADDRESS) ? a[IFLA_ADDRESS].size() : 0, a.count(IFLA_BROADCAST) ? a[IFLA_BROADCAST].size() : 0,
             a.count(IFLA_STATS64) ? 1 : 0, a.count(IFLA_STATS) ? 1 : 0);
    return b;
  }

  std::string addr_line(const Msg& m) {
    ifaddrmsg i;
    std::memcpy(&i, m.body.data(), sizeof i);
    auto a = attrs(m.body, sizeof i);
    auto ip = [&](int t) { return a.count(t) ? ntop(i.ifa_family, a[t].data()) : std::string("-"); };
    // Linux runs duplicate address detection even on lo, later: whether
    // an IPv6 address is still tentative is a race there. IFA_F_NODAD
    // (asked for where the host must not wait for detection) is the
    // request's, not the address's state.
    uint32_t flags = a.count(IFA_FLAGS) ? u32_of(a[IFA_FLAGS]) & ~(IFA_F_TENTATIVE | IFA_F_NODAD) : 0;
    i.ifa_flags &= static_cast<uint8_t>(~(IFA_F_TENTATIVE | IFA_F_NODAD));
    char b[320];
    snprintf(b, sizeof b, "addr %s/%u on %s family %d flags %#x/%#x scope %u local %s brd %s label %s cache %d",
             ip(IFA_ADDRESS).c_str(), i.ifa_prefixlen, ifname(static_cast<int>(i.ifa_index)).c_str(), i.ifa_family,
             i.ifa_flags, flags, i.ifa_scope, ip(IFA_LOCAL).c_str(),
             ip(IFA_BROADCAST).c_str(), a.count(IFA_LABEL) ? a[IFA_LABEL].c_str() : "-",
             a.count(IFA_CACHEINFO) ? static_cast<int>(a[IFA_CACHEINFO].size()) : 0);
    return b;
  }

  std::string route_line(const Msg& m) {
    rtmsg r;
    std::memcpy(&r, m.body.data(), sizeof r);
    auto a = attrs(m.body, sizeof r);
    auto ip = [&](int t) { return a.count(t) ? ntop(r.rtm_family, a[t].data()) : std::string("-"); };
    char b[320];
    snprintf(b, sizeof b, "route %s/%u family %d table %u/%u proto %u scope %u type %u via %s dev %s src %s metric %u",
             ip(RTA_DST).c_str(), r.rtm_dst_len, r.rtm_family, r.rtm_table,
             a.count(RTA_TABLE) ? u32_of(a[RTA_TABLE]) : 0, r.rtm_protocol, r.rtm_scope, r.rtm_type,
             ip(RTA_GATEWAY).c_str(), a.count(RTA_OIF) ? ifname(static_cast<int>(u32_of(a[RTA_OIF]))).c_str() : "-",
             ip(RTA_PREFSRC).c_str(), a.count(RTA_PRIORITY) ? u32_of(a[RTA_PRIORITY]) : 0);
    return b;
  }

  // Normalized: the cache times and reference count.
  std::string neigh_line(const Msg& m) {
    ndmsg n;
    std::memcpy(&n, m.body.data(), sizeof n);
    auto a = attrs(m.body, sizeof n);
    std::string mac = "-";
    if (a.count(NDA_LLADDR)) {
      mac.clear();
      for (unsigned char c : a[NDA_LLADDR]) {
        char h[4];
        snprintf(h, sizeof h, "%s%02x", mac.empty() ? "" : ":", c);
        mac += h;
      }
    }
    char b[320];
    snprintf(b, sizeof b, "neigh %s dev %s family %d state %#x flags %#x type %u lladdr %s probes %d cache %d",
             a.count(NDA_DST) ? ntop(n.ndm_family, a[NDA_DST].data()).c_str() : "-",
             ifname(n.ndm_ifindex).c_str(), n.ndm_family, n.ndm_state, n.ndm_flags, n.ndm_type, mac.c_str(),
             a.count(NDA_PROBES) ? static_cast<int>(u32_of(a[NDA_PROBES])) : -1,
             a.count(NDA_CACHEINFO) ? static_cast<int>(a[NDA_CACHEINFO].size()) : 0);
    return b;
  }

  std::string rule_line(const Msg& m) {
    fib_rule_hdr h;
    std::memcpy(&h, m.body.data(), sizeof h);
    auto a = attrs(m.body, sizeof h);
    auto u32 = [&](int t) { return a.count(t) ? static_cast<long long>(u32_of(a[t])) : -1LL; };
    char b[256];
    snprintf(b, sizeof b, "rule family %u table %u/%lld action %u flags %#x pref %lld proto %d suppress %lld n %zu",
             h.family, h.table, u32(FRA_TABLE), h.action, h.flags, u32(FRA_PRIORITY),
             a.count(FRA_PROTOCOL) ? static_cast<uint8_t>(a[FRA_PROTOCOL][0]) : -1, u32(FRA_SUPPRESS_PREFIXLEN),
             a.size());
    return b;
  }

  std::string line(const Msg& m) {
    switch (m.h.nlmsg_type) {
      case RTM_NEWNEIGH: case RTM_DELNEIGH: return (m.h.nlmsg_type == RTM_DELNEIGH ? "del " : "") + neigh_line(m);
      case RTM_NEWLINK: case RTM_DELLINK: return link_line(m);
      case RTM_NEWADDR: case RTM_DELADDR: return (m.h.nlmsg_type == RTM_DELADDR ? "del " : "") + addr_line(m);
      case RTM_NEWROUTE: case RTM_DELROUTE: return (m.h.nlmsg_type == RTM_DELROUTE ? "del " : "") + route_line(m);
      case RTM_NEWRULE: return rule_line(m);
      default: return "type " + std::to_string(m.h.nlmsg_type);
    }
  }
};

// Splits one received record into messages (false: a malformed one).
inline bool split(const char* buf, size_t n, std::vector<Msg>& out) {
  size_t off = 0;
  while (off + NLMSG_HDRLEN <= n) {
    Msg m;
    std::memcpy(&m.h, buf + off, sizeof m.h);
    if (m.h.nlmsg_len < NLMSG_HDRLEN || m.h.nlmsg_len > n - off) return false;
    m.body.assign(buf + off + NLMSG_HDRLEN, m.h.nlmsg_len - NLMSG_HDRLEN);
    out.push_back(m);
    off += NLMSG_ALIGN(m.h.nlmsg_len);
  }
  return off >= n;
}

template <class S>
struct Nl : Client {
  // socket + bind(nl_pid 0, groups).
  bool open(uint32_t groups = 0) {
    fd = static_cast<int>(SYS(socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (fd < 0) return false;
    sockaddr_nl a{};
    a.nl_family = AF_NETLINK;
    a.nl_groups = groups;
    return SYS(bind, fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  void close() {
    if (fd >= 0) SYS(close, fd);
    fd = -1;
  }
  long send(Req& r) {
    r.hdr()->nlmsg_seq = ++seq;
    sockaddr_nl k{};
    k.nl_family = AF_NETLINK;
    return SYS(sendto, fd, r.buf, r.len, 0, reinterpret_cast<sockaddr*>(&k), sizeof k);
  }
  // One record, sized with MSG_PEEK|MSG_TRUNC as ip does: its bytes, or
  // -errno. recvs counts the calls that returned a record.
  long recv_one(std::vector<char>& buf, bool dontwait = false) {
    char probe[16];
    iovec iov{probe, sizeof probe};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    int fl = dontwait ? MSG_DONTWAIT : 0;
    long n = SYS(recvmsg, fd, &mh, MSG_PEEK | MSG_TRUNC | fl);
    if (n < 0) return -errno;
    buf.resize(static_cast<size_t>(n) + 1);
    sockaddr_nl from{};
    iov = {buf.data(), buf.size()};
    mh = {};
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    n = SYS(recvmsg, fd, &mh, fl);
    if (n < 0) return -errno;
    last_from = from;
    recvs++;
    return n;
  }
  sockaddr_nl last_from{};
  int recvs = 0;

  // The replies to the request of sequence `seq`, up to NLMSG_DONE or an
  // NLMSG_ERROR or the first reply that is not part of a dump. err: the
  // NLMSG_ERROR's errno (0: acknowledged, -1: none came).
  std::vector<Msg> collect(int& err) {
    std::vector<Msg> got;
    err = -1;
    for (;;) {
      std::vector<char> buf;
      long n = recv_one(buf);
      if (n < 0) {
        err = static_cast<int>(-n) + 1000;
        return got;
      }
      std::vector<Msg> ms;
      if (!split(buf.data(), static_cast<size_t>(n), ms)) {
        err = 2000;
        return got;
      }
      for (Msg& m : ms) {
        if (m.h.nlmsg_seq != seq) continue;
        if (m.h.nlmsg_type == NLMSG_DONE) return got;
        if (m.h.nlmsg_type == NLMSG_ERROR) {
          int e;
          std::memcpy(&e, m.body.data(), sizeof e);
          err = -e;
          return got;
        }
        got.push_back(m);
        if (!(m.h.nlmsg_flags & NLM_F_MULTI)) {
          // A single reply: an ACK may follow if asked for.
          continue;
        }
      }
      if (!got.empty() && !(got.back().h.nlmsg_flags & NLM_F_MULTI)) {
        // Without NLM_F_ACK nothing else comes.
        return got;
      }
    }
  }
  // Sends r and returns the NLMSG_ERROR errno (r must ask for an ACK).
  int call(Req& r) {
    r.hdr()->nlmsg_flags |= NLM_F_ACK;
    if (send(r) < 0) return 3000 + errno;
    int err;
    collect(err);
    return err;
  }
  // Sends r asking for an ACK and returns the NLMSG_ERROR's errno, its
  // extended ACK's message ("-" if none) and attribute offset (0: none).
  int call_ext(Req& r, std::string& msg, uint32_t& offs) {
    r.hdr()->nlmsg_flags |= NLM_F_ACK;
    msg = "-";
    offs = 0;
    if (send(r) < 0) return 3000 + errno;
    for (;;) {
      std::vector<char> buf;
      long n = recv_one(buf);
      if (n < 0) return 1000 + static_cast<int>(-n);
      std::vector<Msg> ms;
      split(buf.data(), static_cast<size_t>(n), ms);
      for (Msg& m : ms) {
        if (m.h.nlmsg_seq != seq || m.h.nlmsg_type != NLMSG_ERROR) continue;
        nlmsgerr e;
        std::memcpy(&e, m.body.data(), sizeof e);
        // The TLVs follow the quoted request (all of it unless capped).
        size_t quoted = (m.h.nlmsg_flags & NLM_F_CAPPED) ? 0 : e.msg.nlmsg_len - NLMSG_HDRLEN;
        if (m.h.nlmsg_flags & NLM_F_ACK_TLVS) {
          auto t = attrs(m.body, sizeof e + quoted);
          if (t.count(NLMSGERR_ATTR_MSG)) msg = t[NLMSGERR_ATTR_MSG].c_str();
          if (t.count(NLMSGERR_ATTR_OFFS)) offs = u32_of(t[NLMSGERR_ATTR_OFFS]);
        }
        return -e.error;
      }
    }
  }
  // A dump: the normalized lines, sorted.
  std::vector<std::string> dump(uint16_t type, uint8_t family, int& err) {
    Req r(type, NLM_F_REQUEST | NLM_F_DUMP);
    if (type == RTM_GETLINK) r.fixed<ifinfomsg>()->ifi_family = family;
    else if (type == RTM_GETADDR) r.fixed<ifaddrmsg>()->ifa_family = family;
    else if (type == RTM_GETNEIGH) r.fixed<ndmsg>()->ndm_family = family;
    else r.fixed<rtmsg>()->rtm_family = family;
    err = 0;
    if (send(r) < 0) {
      err = 3000 + errno;
      return {};
    }
    std::vector<Msg> ms = collect(err);
    if (err == -1) err = 0;
    std::vector<std::string> out;
    for (Msg& m : ms) out.push_back(line(m));
    std::sort(out.begin(), out.end());
    return out;
  }
};

// Logs the lines of a dump that contain `keep` (any of several, '|'
// separated), so that objects outside the scenario's (a host's other
// tables, its tunnels) are left out.
inline void log_lines(Log& L, int line, const std::vector<std::string>& v, const char* keep) {
  std::vector<std::string> keys;
  for (const char* p = keep;;) {
    const char* e = std::strchr(p, '|');
    keys.emplace_back(p, e ? static_cast<size_t>(e - p) : std::strlen(p));
    if (!e) break;
    p = e + 1;
  }
  for (const std::string& s : v)
    for (const std::string& k : keys)
      if (s.find(k) != std::string::npos) {
        L.add(line, "%s", s.c_str());
        break;
      }
}
#define LOG_LINES(v, keep) ::nl_test::log_lines(L, __LINE__, v, keep)

}  // namespace nl_test
