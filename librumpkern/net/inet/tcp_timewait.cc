// Compact TIME_WAIT (see tcp_sock.h): when a connection whose socket is
// closed enters TIME_WAIT, its socket, control block and connection give
// way to a TcpTimeWait record of a couple of hundred bytes in the TCP PCB
// table, as Linux's inet_timewait_sock. The record answers the segments
// of its 4-tuple (tcp_time_wait_input, the engine's own TIME_WAIT code),
// holds the port for bind and the 4-tuple for connect as the connection
// did, and goes when its time is up (one callout for all records, armed
// at the earliest expiry), when a RST or a newer SYN ends it, or when the
// stack stops.
#include <rump/rumpuser.h>

#include "kern/clock.h"
#include "kern/kernel.h"
#include "net/inet/tcp_sock.h"

namespace rump {

bool tcp_time_wait_enter(InetState& st, InPcb& pcb, tcp::TcpConnection& conn, int ttl, int tos) {
  auto* tw = new (st.kernel.kmem()) TcpTimeWait(pcb.family);
  if (!tw) return false;
  if (!conn.time_wait_state(tw->tcb)) {
    delete tw;
    return false;
  }
  tw->expire_ns = tw->tcb.expire_ns;
  tw->ttl = static_cast<int16_t>(ttl);
  tw->tos = static_cast<uint8_t>(tos);
  // Once in the table the record belongs to it: a segment on another
  // thread may end it (RST, newer SYN) and free it at once, so nothing
  // of it is read after replace.
  int64_t expire_ns = tw->expire_ns;
  bool first = false;
  if (!st.tcp.replace(pcb, *tw, &first)) {
    delete tw;
    return false;
  }
  // The record expires first: the callout runs at its time (a later
  // record finds the callout armed for an earlier one, which re-arms).
  if (first) st.tcp_tw_timer_.schedule(expire_ns - mono_now_ns());
  return true;
}

InPcbVerdict tcp_time_wait_visit(void* arg, InPcbRecord& r) {
  auto& v = *static_cast<TcpTimeWaitVisit*>(arg);
  auto& tw = static_cast<TcpTimeWait&>(r);
  tcp::TimeWaitAction a = tcp::tcp_time_wait_input(tw.tcb, *v.seg, mono_now_ns(), v.reply, nullptr);
  r.expire_ns = tw.tcb.expire_ns;
  switch (a) {
    case tcp::TimeWaitAction::kReply:
      v.has_reply = true;
      v.ttl = tw.ttl;
      v.tos = tw.tos;
      return InPcbVerdict::kKeep;
    case tcp::TimeWaitAction::kDrop: return InPcbVerdict::kKeep;
    case tcp::TimeWaitAction::kClose: return InPcbVerdict::kRemove;
    case tcp::TimeWaitAction::kReopen:
      // To a listener; with none, TIME_WAIT stays and acknowledges the SYN
      // (as Linux's TCP_TW_SYN without a listener).
      v.reopen = true;
      v.iss = tcp::tcp_time_wait_reopen_iss(tw.tcb);
      tcp::tcp_time_wait_ack(tw.tcb, *v.seg, mono_now_ns(), v.reply);
      v.has_reply = true;
      v.ttl = tw.ttl;
      v.tos = tw.tos;
      return InPcbVerdict::kRemoveAndPass;
  }
  return InPcbVerdict::kKeep;
}

bool tcp_time_wait_takeover(void* arg, InPcbRecord& r, bool searched) {
  auto& t = *static_cast<TcpTimeWaitTakeover*>(arg);
  auto& tw = static_cast<TcpTimeWait&>(r);
  // Without a timestamp from the peer PAWS cannot tell the incarnations
  // apart.
  if (!tw.tcb.ts_ok || tw.tcb.ts_recent_age == 0) return false;
  if (searched) {
    int reuse = t.reuse;
    auto lo = [](const IpAddr& a) {
      if (a.family == AF_INET) return a.v4.loopback();
      if (a.v6.loopback()) return true;
      return a.v6.v4mapped() && a.v6.b[12] == 127;
    };
    if (reuse == 2 && !lo(r.laddr) && !lo(r.faddr)) reuse = 0;
    if (!reuse) return false;
    constexpr int64_t kSec = 1000000000;
    if (mono_now_ns() / kSec <= tw.tcb.ts_recent_age / kSec) return false;
  }
  t.taken = true;
  t.iss = tcp::tcp_time_wait_reopen_iss(tw.tcb);
  return true;
}

void tcp_time_wait_timer(void* arg) {
  auto* st = static_cast<InetState*>(arg);
  int64_t now = mono_now_ns();
  int64_t next = INT64_MAX;
  while (InPcbRecord* r = st->tcp.take_expired(now, &next)) delete r;
  if (next != INT64_MAX) st->tcp_tw_timer_.schedule(next - now);
}

void tcp_time_wait_drop_all(InetState& st) {
  st.tcp_tw_timer_.halt();
  while (InPcbRecord* r = st.tcp.take_record()) delete r;
}

}  // namespace rump
