// IPv4 and IPv6 reassembly (RFC 791, RFC 815, RFC 8200 4.5) with limits:
// every datagram being reassembled is a ReassQueue (if.h) that expires
// net.ipv4.ipfrag_time (IPv6: net.ipv6.ip6frag_time, 60) seconds after
// its first fragment (ICMP time exceeded if fragment zero came), and the
// bytes held by all of them (both families) stay under
// net.ipv4.ipfrag_high_thresh (a fragment beyond it is dropped). A
// fragment that overlaps one already held drops the whole datagram
// (ReasmOverlaps; RFC 5722 for IPv6): overlaps are how firewalls are
// evaded, and no honest sender makes them; an exact duplicate is dropped
// alone (RFC 8200 4.5 allows it).
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/ip_icmp.h>

#include <cstring>

#include "kern/clock.h"
#include "kern/kernel.h"
#include "net/inet/ip_var.h"

namespace rump {

namespace {

constexpr size_t kMaxQueues = 1024;
void bump(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

void free_queue(ReassQueue* q) {
  pkt_list_free(q->frags);
  delete q;
}

size_t held_bytes(const Pkt& p) { return p.len() + 256; }  // payload and the packet's own overhead

// Drops q (lock held); the caller frees it after unlocking.
void unlink_locked(InetState& st, ReassQueue& q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.reass_lock_) {
  st.reass_.erase(st.reass_.iterator_to(q));
  for (const Pkt& f : q.frags) st.reass_bytes_ -= held_bytes(f);
}

void arm_locked(InetState& st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.reass_lock_) {
  if (st.reass_.empty()) return;
  int64_t first = st.reass_.front().expire_ns;
  for (const ReassQueue& q : st.reass_)
    if (q.expire_ns < first) first = q.expire_ns;
  st.reass_timer_.schedule(first - mono_now_ns());
}

}  // namespace

void ip_reass_timer(void* arg) {
  auto& st = *static_cast<InetState*>(arg);
  ReassList expired;
  int64_t now = mono_now_ns();
  {
    MutexLocker g(st.reass_lock_);
    for (auto it = st.reass_.begin(); it != st.reass_.end();) {
      ReassQueue& q = *it++;
      if (q.expire_ns > now) continue;
      unlink_locked(st, q);
      expired.push_back(q);
    }
    arm_locked(st);
  }
  expired.clear_and_dispose([&](ReassQueue* q) {
    // RFC 792 and RFC 8200 4.5: time exceeded (reassembly) only if
    // fragment zero came.
    if (q->src.family == AF_INET6) {
      bump(st.ip6_stats.ReasmTimeout);
      bump(st.ip6_stats.ReasmFails);
      if (q->hdrlen) icmp6_error_quote(st, q->hdr, q->first8, 8, ICMP6_TIME_EXCEEDED, ICMP6_TIME_EXCEED_REASSEMBLY, 0);
    } else {
      bump(st.ip_stats.ReasmTimeout);
      bump(st.ip_stats.ReasmFails);
      if (q->hdrlen) icmp_error(st, q->hdr, q->hdrlen, q->first8, 8, ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME, 0);
    }
    free_queue(q);
  });
}

void ip_reass_drop_all(InetState& st) {
  ReassList all;
  {
    MutexLocker g(st.reass_lock_);
    all.splice(all.end(), st.reass_);
    st.reass_bytes_ = 0;
  }
  all.clear_and_dispose(&free_queue);
}

namespace {

// The fragment reassembly shared by both families: p is a fragment's
// payload (header stripped) at byte offset off; more: more fragments
// follow. key holds the datagram's identity (family, addresses, id, and
// for IPv4 the protocol); hdr/hlen the fragment's network header, kept
// from fragment zero for time exceeded. Returns the whole payload or null
// (p consumed either way).
template <class Stats>
Pkt* reass_insert(InetState& st, Stats& s, const ReassQueue& key, Pkt* p, uint32_t off, bool more,
                  const uint8_t* hdr, size_t hlen, int64_t timeout_ns, IpHdrInfo& ip) {
  uint32_t len = static_cast<uint32_t>(p->len());
  p->meta.aux = off;
  ReassQueue* drop = nullptr;
  ReassQueue* done = nullptr;
  bool dropped_frag = false;
  {
    MutexLocker g(st.reass_lock_);
    ReassQueue* q = nullptr;
    for (ReassQueue& x : st.reass_)
      if (x.id == key.id && x.src == key.src && x.dst == key.dst &&
          (key.src.family == AF_INET6 || x.proto == key.proto)) {
        q = &x;
        break;
      }
    size_t limit = static_cast<size_t>(st.ipfrag_high_thresh.load());
    if (st.reass_bytes_ + held_bytes(*p) > limit || (!q && st.reass_.size() >= kMaxQueues)) {
      dropped_frag = true;
    } else if (!q) {
      q = new (st.kernel.kmem()) ReassQueue();
      if (!q) {
        dropped_frag = true;
      } else {
        q->src = key.src;
        q->dst = key.dst;
        q->id = key.id;
        q->proto = key.proto;
        q->ttl = key.ttl;
        q->tos = key.tos;
        q->ifindex = ip.ifindex;
        q->flags = ip.flags;
        q->expire_ns = mono_now_ns() + timeout_ns;
        st.reass_.push_back(*q);
        arm_locked(st);
      }
    }
    if (!dropped_frag) {
      // Where it goes, and whether it overlaps a neighbour.
      auto it = q->frags.begin();
      while (it != q->frags.end() && it->meta.aux < off) ++it;
      bool dup = false, overlap = false;
      if (it != q->frags.end()) {
        if (it->meta.aux == off && it->len() == len) dup = true;
        else if (off + len > it->meta.aux) overlap = true;
      }
      if (!dup && !overlap && it != q->frags.begin()) {
        const Pkt& prev = *std::prev(it);
        if (prev.meta.aux + prev.len() > off) overlap = true;
      }
      if (!more) {
        if ((q->total && q->total != off + len) || (!q->frags.empty() && q->frags.back().meta.aux +
                                                                             q->frags.back().len() > off + len))
          overlap = true;
      } else if (q->total && off + len > q->total) {
        overlap = true;
      }
      if (dup) {
        dropped_frag = true;
      } else if (overlap) {
        bump(s.ReasmOverlaps);
        unlink_locked(st, *q);
        drop = q;
        dropped_frag = true;
      } else {
        q->frags.insert(it, *p);
        st.reass_bytes_ += held_bytes(*p);
        q->have += len;
        if (!more) q->total = off + len;
        if (off == 0) {
          std::memcpy(q->hdr, hdr, hlen);
          q->hdrlen = static_cast<uint8_t>(hlen);
          std::memset(q->first8, 0, 8);
          p->copy_out(0, len < 8 ? len : 8, q->first8);
          q->proto = key.proto;
        }
        if (q->total && q->have == q->total) {
          unlink_locked(st, *q);
          done = q;
        }
      }
    }
  }
  if (dropped_frag) {
    Pkt::free(p);
    bump(s.ReasmFails);
    if (drop) free_queue(drop);
    return nullptr;
  }
  if (!done) return nullptr;
  // No gaps and no overlaps, and the bytes add up: the fragments tile the
  // datagram. Chain them.
  Pkt* whole = &done->frags.front();
  done->frags.pop_front();
  done->frags.clear_and_dispose([&](Pkt* f) { whole->concat(f); });
  whole->meta.aux = 0;
  ip.ttl = done->ttl;
  ip.tos = done->tos;
  ip.flags = done->flags;
  ip.proto = done->proto;
  delete done;
  bump(s.ReasmOKs);
  return whole;
}

}  // namespace

Pkt* ip_reass(InetState& st, Pkt* p, const iphdr& h, size_t hlen, IpHdrInfo& ip) {
  IpStats& s = st.ip_stats;
  bump(s.ReasmReqds);
  uint16_t frag = ntohs(h.frag_off);
  uint32_t off = (frag & IP_OFFMASK) * 8u;
  bool more = frag & IP_MF;
  uint8_t hdr[60];
  p->copy_out(0, hlen, hdr);
  p->trim_front(hlen);
  uint32_t len = static_cast<uint32_t>(p->len());
  // Every fragment but the last carries a multiple of 8 bytes, and none
  // reaches past the largest datagram.
  if ((more && (len % 8 != 0 || len == 0)) || off + len > 65535 - hlen) {
    bump(s.InHdrErrors);
    bump(s.ReasmFails);
    Pkt::free(p);
    return nullptr;
  }
  ReassQueue key;
  key.src = IpAddr::of(InAddr{h.saddr});
  key.dst = IpAddr::of(InAddr{h.daddr});
  key.id = h.id;
  key.proto = h.protocol;
  key.ttl = h.ttl;
  key.tos = h.tos;
  int64_t timeout = static_cast<int64_t>(st.ipfrag_time.load()) * kNsPerSec;
  return reass_insert(st, s, key, p, off, more, hdr, hlen, timeout, ip);
}

Pkt* ip6_reass(InetState& st, Pkt* p, const ip6_hdr& h, const ip6_frag& fh, IpHdrInfo& ip) {
  Ip6Stats& s = st.ip6_stats;
  ReassQueue key;
  key.src = ip.src;
  key.dst = ip.dst;
  key.id = fh.ip6f_ident;
  key.proto = fh.ip6f_nxt;
  key.ttl = h.ip6_hlim;
  key.tos = ip.tos;
  uint16_t offlg = ntohs(fh.ip6f_offlg);
  int64_t timeout = static_cast<int64_t>(st.ip6frag_time.load()) * kNsPerSec;
  return reass_insert(st, s, key, p, offlg & 0xfff8u, offlg & 1u, reinterpret_cast<const uint8_t*>(&h), sizeof h,
                      timeout, ip);
}

}  // namespace rump
