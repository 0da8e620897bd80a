// tcp_listen.h: a listening TCP endpoint: the SYN queue, the accept queue
// and SYN cookies (RFC 4987 section 3.6).
//
// The host hands the listener every segment for its local address and port
// that matches no connection. A SYN makes a child connection in
// SYN_RECEIVED on the SYN queue (the host enters the child in its
// connection table, so the rest of the handshake goes to the child); when
// the child's handshake completes it moves to the accept queue. When the
// SYN queue is full, the SYN-ACK carries a cookie instead and no state is
// kept; an ACK that returns a valid cookie creates the child directly in
// ESTABLISHED. A full accept queue drops SYNs and handshake-completing
// ACKs (the peer retransmits), as Linux does.
//
// Locking and lifetime: as TcpConnection. Children on the queues belong to
// the listener until accept() hands them out; a child that dies while
// queued is unlinked and detached, and the host frees it.
#pragma once

#include <cstdint>

#include <boost/intrusive/list.hpp>

#include "net/inet/tcp/tcp_conn.h"

namespace rump::tcp {

struct TcpListenStats {
  uint32_t syns = 0;
  uint32_t cookies_sent = 0;
  uint32_t cookies_valid = 0;
  uint32_t cookies_invalid = 0;
  uint32_t accept_overflows = 0;
};

class TcpListener : public KObject {
 public:
  using Queue = boost::intrusive::list<
      TcpConnection,
      boost::intrusive::member_hook<TcpConnection, decltype(TcpConnection::queue_hook_),
                                    &TcpConnection::queue_hook_>,
      boost::intrusive::constant_time_size<true>>;

  // local: the listening address and port (faddr/fport unused). ENOMEM.
  static Result<TcpListener*> create(Kmem& kmem, TcpHost& host, const TcpEndpoints& local,
                                     int backlog, const TcpConfig& cfg);
  // Resets and detaches every queued child (the host frees them).
  ~TcpListener();

  // A segment from ep.faddr:fport with no connection of its own. Returns a
  // child the host must enter in its connection table, or nullptr. ENOMEM
  // drops the SYN (the peer retries). iss: the ISS for a SYN that reopens
  // a 4-tuple in TIME_WAIT (tcp_time_wait_reopen_iss; null: the host's
  // isn()).
  TcpConnection* input(const TcpEndpoints& ep, const TcpSegment& seg, const Seq* iss = nullptr);
  // An established child, unlinked and now the caller's; nullptr if none.
  TcpConnection* accept();
  // listen(2) again with a new backlog (0: the accept queue counts as
  // full, for a host that keeps accepted children elsewhere).
  void set_backlog(int backlog);
  int backlog() const { return backlog_; }
  size_t accept_queue_length() const { return accepted_.size(); }
  size_t syn_queue_length() const { return syn_queue_.size(); }
  bool accept_queue_full() const { return accepted_.size() >= static_cast<size_t>(backlog_); }
  const TcpListenStats& stats() const { return stats_; }
  TcpConfig& config() { return cfg_; }
  const TcpEndpoints& local() const { return local_; }

 private:
  friend class TcpConnection;
  TcpListener(Kmem& kmem, TcpHost& host, const TcpEndpoints& local, int backlog,
              const TcpConfig& cfg)
      : kmem_(kmem), host_(host), local_(local), cfg_(cfg), backlog_(backlog) {}

  // Called by a child.
  void child_established(TcpConnection& c);
  void child_closed(TcpConnection& c);

  void send_cookie_synack(const TcpEndpoints& ep, const TcpSegment& syn);
  TcpConnection* check_cookie(const TcpEndpoints& ep, const TcpSegment& ack);
  uint32_t cookie_hash(const TcpEndpoints& ep, uint32_t count, uint32_t salt) const;
  uint32_t cookie_count() const;

  Kmem& kmem_;
  TcpHost& host_;
  TcpEndpoints local_;
  TcpConfig cfg_;
  int backlog_;
  Queue syn_queue_;
  Queue accepted_;
  TcpListenStats stats_;
};

}  // namespace rump::tcp
