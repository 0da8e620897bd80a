// tcp_sock.h: TCP sockets: the glue between the socket layer, the IP
// layer and the TCP engine (net/inet/tcp/), which knows neither.
//
// A TcpCb is the control block of an AF_INET or AF_INET6 SOCK_STREAM
// socket and the TcpHost of the engine objects it owns: at most one
// TcpConnection (connect, or a connection a listener handed over) or one
// TcpListener with the children it has not handed over yet.
//
// Locking: the socket's lock guards the TcpCb's engine objects and
// fields; every engine call runs under it. The engine's output is built
// into packets under the lock and queued on the TcpCb (out_); the caller
// sends them with ip_output after it released the lock (on lo the packet
// is delivered in the calling thread, and the peer takes its own socket
// lock). Two socket locks are never held at once: a listener hands an
// established child over by making its socket, moving the connection to
// it, and only then entering it in the PCB table, all under the
// listener's lock, so nobody can reach the child before it is complete.
//
// Lifetime: the socket holds the TcpCb (pcb_). A connection that still
// runs when its socket is closed (FIN_WAIT, TIME_WAIT) keeps a reference
// on the socket (an orphan, listed in InetState::tcp_orphans_) until it
// reaches CLOSED; then it leaves the PCB table before that reference is
// dropped. An orphan that reaches TIME_WAIT gives way to a TcpTimeWait
// record in the PCB table (tcp_timewait.cc) and ends at once; without
// memory for one it stays whole. Timers are a Callout per socket armed at
// the engine's next deadline.
#pragma once

#include <boost/intrusive/list.hpp>

#include "kern/callout.h"
#include "net/inet/inet_sock.h"
#include "net/inet/tcp/tcp_conn.h"
#include "net/inet/tcp/tcp_listen.h"

namespace rump {

// What must happen after a TCP socket's lock is released: packets to
// send, and the orphan reference to drop (after the sends: the socket may
// go with it).
struct TcpPending {
  PktList out;
  Socket* unref = nullptr;
};
// Sends and releases what p holds (no socket lock held).
void tcp_finish(Kernel& k, TcpPending& p);

// The compact TIME_WAIT record (net/inet/tcp_timewait.cc): what the
// engine's TIME_WAIT needs, in the PCB table, which owns it.
struct TcpTimeWait final : public InPcbRecord, public KObject {
  explicit TcpTimeWait(int fam) : InPcbRecord(fam) {}
  tcp::TcpTimeWaitState tcb;  // under the table's lock (visits)
  int16_t ttl = -1;           // the socket's IP_TTL and IP_TOS, for replies
  uint8_t tos = 0;
};
// Makes conn's record (conn in TIME_WAIT) and puts it in pcb's place in
// the TCP table, arming the records' callout if it expires first. False
// when it cannot (out of memory): the connection stays as it is. Under
// the socket's lock.
bool tcp_time_wait_enter(InetState& st, InPcb& pcb, tcp::TcpConnection& conn, int ttl, int tos);
// A segment meets a record (InPcbTable::lookup's visitor; arg: a
// TcpTimeWaitVisit). Runs under the table's lock: the reply is sent by
// the caller afterwards.
struct TcpTimeWaitVisit {
  const tcp::TcpSegment* seg = nullptr;
  bool has_reply = false;
  tcp::TcpSegment reply;
  int ttl = -1;
  int tos = 0;
  bool reopen = false;  // the record went; the SYN goes to a listener with iss
  tcp::Seq iss = 0;
};
InPcbVerdict tcp_time_wait_visit(void* arg, InPcbRecord& r);
// A connect asks for a record's 4-tuple (InPcbTable::connect's takeover;
// arg: a TcpTimeWaitTakeover): Linux's tcp_twsk_unique. With timestamps
// on the old connection, a port from bind takes the record over at once;
// one from the ephemeral search only as net.ipv4.tcp_tw_reuse allows (1,
// or 2 with a loopback end) and once the seconds clock has moved past the
// record's last timestamp.
struct TcpTimeWaitTakeover {
  int reuse = 2;  // net.ipv4.tcp_tw_reuse
  bool taken = false;
  tcp::Seq iss = 0;    // the new connection's: past the old one's
};
bool tcp_time_wait_takeover(void* arg, InPcbRecord& r, bool searched);

class TcpCb final : public InetCb, public tcp::TcpHost {
 public:
  using ChildList = boost::intrusive::list<
      tcp::TcpConnection,
      boost::intrusive::member_hook<tcp::TcpConnection, decltype(tcp::TcpConnection::host_hook_),
                                    &tcp::TcpConnection::host_hook_>,
      boost::intrusive::constant_time_size<true>>;

  TcpCb(Socket& s, int family, InetState& st);
  ~TcpCb() override;

  Socket& so;

  // --- socket calls (no lock held on entry)
  Result<void> listen(Lwp& l, int backlog);
  Result<void> connect(Lwp& l, const SockAddr& a, bool nonblock);
  Result<size_t> send(Lwp& l, SockMsg& m, int flags, bool nonblock);
  Result<size_t> recv(Lwp& l, SockMsg& m, int flags, bool nonblock);
  Result<void> shutdown(int how);
  Result<void> ctloutput(Lwp& l, SockOptArg& o);
  void detach();
  void free_pcb();
  short poll_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_);

  // --- from IP input and the timer (no lock held). input returns true
  // when the segment must be looked up again (the 4-tuple moved).
  // lo: the segment came over loopback.
  // peer: the segment's source (the path a new child's MSS comes from).
  // iss: a SYN that reopens a 4-tuple in TIME_WAIT (tcp_time_wait_reopen_iss),
  // in and out (set when this connection was that TIME_WAIT).
  bool input(const tcp::TcpEndpoints& ep, const tcp::TcpSegment& seg, bool first_pass, Kernel& k, const IpAddr& peer,
             bool lo, tcp::Seq* iss, bool* has_iss);
  static void timer_fn(void* arg);
  // An ICMP hard error about a segment of this connection: a connection
  // still opening fails with it (ECONNREFUSED, EHOSTUNREACH ...).
  void ctl_error(int error);
  // Starts the kernel's callout thread (no lock held).
  void kick_timer();
  // The stack stops: reset an orphan at once.
  void abort_orphan();

  // --- TcpHost (called by the engine under so.lock_)
  int64_t now_ns() override;
  uint32_t random32() override;
  uint32_t isn(const tcp::TcpEndpoints& ep) override;
  uint32_t ts_offset(const tcp::TcpEndpoints& ep) override;
  void output(const tcp::TcpEndpoints& ep, const tcp::TcpSegment& seg) override;
  void notify(tcp::TcpConnection&) override {}
  void listener_ready(tcp::TcpListener&) override {}
  uint64_t cookie_secret() override;

 private:
  // A blocking connect's wait for the end of the handshake.
  Result<void> wait_connected_locked(Lwp& l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_);
  // After every engine call: the socket's view of the connection (state
  // bits, SO_ERROR, FIONREAD), children handed over or freed, the timer,
  // and the queued packets moved to p.
  void after_locked(TcpPending& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_);
  void sync_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_);
  void rearm_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_);
  void sync_opts_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_);
  tcp::TcpConfig config_locked(uint32_t mss) ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_);
  tcp::TcpConnection* find_child_locked(const tcp::TcpEndpoints& ep) ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_);
  void hand_over_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_);
  bool make_child_locked(tcp::TcpConnection* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_);
  void adopt_child(TcpCb& parent, tcp::TcpConnection* c);
  void abort_unaccepted();
  void on_timer();

  tcp::TcpConnection* conn_ ABSL_GUARDED_BY(so.lock_) = nullptr;
  tcp::TcpListener* listener_ ABSL_GUARDED_BY(so.lock_) = nullptr;
  ChildList children_ ABSL_GUARDED_BY(so.lock_);
  PktList out_ ABSL_GUARDED_BY(so.lock_);
  // TCP-level options given before the connection exists.
  tcp::TcpConfig opts_ ABSL_GUARDED_BY(so.lock_);
  int user_mss_ ABSL_GUARDED_BY(so.lock_) = 0;
  bool cork_ ABSL_GUARDED_BY(so.lock_) = false;
  // A sender is copying into the send buffer with the lock dropped.
  bool snd_busy_ ABSL_GUARDED_BY(so.lock_) = false;
  // connect() has reported the connection (see connect).
  bool connect_reported_ ABSL_GUARDED_BY(so.lock_) = false;
  // The connection outlives the socket's file (see above).
  bool orphan_ ABSL_GUARDED_BY(so.lock_) = false;
  // The orphan's TIME_WAIT went to a TcpTimeWait record (conn_ is gone).
  bool time_wait_moved_ ABSL_GUARDED_BY(so.lock_) = false;
  // The peer is reached over lo: output segments lend their payload
  // (build_packet). in_lo_: the last input came over lo (children inherit
  // it).
  bool lo_path_ ABSL_GUARDED_BY(so.lock_) = false;
  bool in_lo_ ABSL_GUARDED_BY(so.lock_) = false;
  TcpOrphanLink orphan_link_;
  Callout timer_;
  int64_t timer_at_ ABSL_GUARDED_BY(so.lock_) = 0;  // armed deadline (0: none)
};

inline TcpCb& tcp_cb(Socket& so) { return *static_cast<TcpCb*>(static_cast<InetCb*>(so.pcb_)); }

}  // namespace rump
