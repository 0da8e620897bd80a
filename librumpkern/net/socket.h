// socket.h: the socket layer, in BSD shape: domains (address families)
// hold protocols (one per socket type), and a Socket is an instance of a
// protocol with a receive buffer of records and the state every protocol
// shares (connection state, shutdown, pending error, options, the accept
// queue of a listener, the wait queue under poll/select/epoll).
//
// Who calls what: the socket syscalls (net/sys_socket.cc) and the socket
// FileOps call the generic entry points below (so_send, so_receive ...);
// those check the rules every protocol shares and call the protocol's
// Protosw hooks. A protocol (net/local.cc for AF_UNIX; an inet domain
// later) registers a Domain at load time with DomainRegistrar and never
// needs the layer changed: delivery into a socket's receive buffer is
// Socket::deliver_locked, whoever calls it.
//
// Buffers: data moves in SockRecords (one kernel allocation each, header
// and bytes together, with an optional sender address and control data).
// A stream protocol's records are read as one byte stream (up to control
// boundaries); a record protocol's are read one per call. Records are
// charged to the socket that sent them (snd_cc_, Linux's write-memory
// accounting) until the receiver consumes them, so a sender blocks on its
// own buffer, and a reader frees space without touching the sender's lock
// while it holds its own. A stream send moves in records of at most
// kStreamPiece bytes, each delivered as soon as it is filled, so a reader
// copies out one piece while the sender copies in the next. A consumed
// record of a size class goes back to its sender's small cache (in the
// same critical section that gives the sender its space back), so a
// steady stream allocates nothing.
//
// One copy: a stream reader that finds the buffer empty offers its uio
// while it waits (rcv_direct_, a DirectRead of vfs/file.h); a sender whose
// protocol has a send_direct hook (local streams) copies from its buffer
// straight into it, with no record, if one of the two is in the host's
// address space (the other may be isolated: uio_move reaches it through
// its space), unless the record would carry credentials or rights; sends
// of at most kSmallRecord bytes keep to (cached) records.
// A blocking sender that finds the buffer empty and no offer yet spins
// for one for an adaptive budget before it falls back on records: a
// reader draining a stream write by write is then between two calls, and
// is back within a few hundred nanoseconds; a record written instead
// would make the next write find the buffer non-empty, and the stream
// would stay on two copies.
//
// Waiting: a reader or writer that must wait first spins on gen_ for an
// adaptive budget (kern/spin_budget.h), so a peer running on another CPU
// hands over without a host wake-up; condition variables are signalled
// only when someone sleeps on them, and gen_ moves only on changes a
// waiter may wait for.
//
// Locking: Socket::lock_ (rank kSocket) guards the socket's state, its
// receive buffer and its wait queue. Two socket locks are never held at
// once: a protocol that links two sockets takes one, drops it, takes the
// other. User memory is never touched with a socket lock held: a reader
// holds the receive side's busy flag (rcv_busy_, as Linux's iolock) while
// it copies out with the lock dropped; a sender copies into a fresh record
// before it takes any lock.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <linux/netlink.h>

#include <atomic>
#include <boost/intrusive/list.hpp>
#include <cstdint>

#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"
#include "kern/spin_budget.h"
#include "sync/mutex.h"
#include "vfs/file.h"
#include "vfs/poll.h"

namespace rump {

class Kernel;
class Lwp;
class Socket;
struct Protosw;

namespace bi = boost::intrusive;

// A socket address held by the kernel (the largest the domains use).
struct SockAddr {
  socklen_t len = 0;
  union {
    sa_family_t family;
    sockaddr_un un;
    sockaddr_in in;
    sockaddr_in6 in6;
    sockaddr_nl nl;
    char bytes[sizeof(sockaddr_un)];
  };
  SockAddr() : bytes{} {}
};

struct Domain;

// Descriptors in flight (SCM_RIGHTS): each holds a reference. dom: the
// domain that counted them in flight (Domain::internalize), told again
// when they leave (Domain::dispose); null for a copy made by MSG_PEEK.
struct ScmRights {
  const Domain* dom = nullptr;
  int n = 0;
  File* files[];
};
// A rights array with room for n files (none filled in yet).
ScmRights* scm_rights_alloc(Kmem& k, int n);
// Drops the files (telling the domain they left flight) and frees r.
void scm_rights_free(ScmRights* r);

// The credentials a record carries (SCM_CREDENTIALS).
struct ScmCreds {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// One unit of data in a receive buffer.
struct SockRecord {
  bi::list_member_hook<bi::link_mode<bi::safe_link>> hook;
  Socket* sender = nullptr;  // holds a reference; `charged` bytes are on its snd_cc_
  uint32_t len = 0;          // bytes of data
  uint32_t cap = 0;          // room for data (>= len)
  uint32_t off = 0;          // bytes already read (streams)
  uint32_t charged = 0;
  bool has_creds = false;
  ScmCreds creds;
  ScmRights* rights = nullptr;  // owned
  SockAddr* addr = nullptr;     // the sender's name (record protocols), owned
  // The bytes may be borrowed (a received packet's payload, taken over
  // instead of copied): then they are at ext, data holds only what the
  // protocol keeps with the record, and dispose calls ext_free(ext_arg).
  const char* ext = nullptr;
  void (*ext_free)(void*) = nullptr;
  void* ext_arg = nullptr;
  const char* bytes() const { return ext ? ext : data; }
  char data[];

  // Records of up to kSmallRecord bytes and stream pieces are made with
  // room for their whole size class, so that they can be reused.
  static constexpr size_t kSmallRecord = 512 - 96;
  static constexpr size_t kStreamPiece = 16 * 1024;
  static SockRecord* alloc(Kmem& k, size_t len);
  // Frees the record, its address and its rights (dropping the files) and
  // gives the sender its space back. No socket lock held.
  static void dispose(SockRecord* r);
};
using SockRecordList = bi::list<SockRecord, bi::member_hook<SockRecord, decltype(SockRecord::hook), &SockRecord::hook>,
                                bi::constant_time_size<false>>;

// Connection state every protocol shares (BSD so_state).
enum SockState : uint32_t {
  kSsConnected = 1,
  kSsConnecting = 2,
  kSsListening = 4,
  kSsCantSendMore = 8,   // SEND_SHUTDOWN
  kSsCantRcvMore = 16,   // RCV_SHUTDOWN
  kSsClosed = 32,        // the last description went (SOCK_DEAD)
};

// Options every protocol shares (SOL_SOCKET booleans).
enum SockOpt : uint32_t {
  kSoReuseAddr = 1,
  kSoKeepAlive = 2,
  kSoPassCred = 4,
  kSoBroadcast = 8,
  kSoReusePort = 16,
  kSoSndBufLock = 32,  // SO_SNDBUF was set: no send-buffer autotuning (Linux's SOCK_SNDBUF_LOCK)
  kSoRcvBufLock = 64,  // SO_RCVBUF was set: no receive-buffer autotuning (SOCK_RCVBUF_LOCK)
};

struct SockMsg;

// A socket option below SOL_SOCKET (or one SOL_SOCKET option the generic
// layer does not know), for Protosw::ctloutput: the value in kernel
// memory, at most kMaxLen bytes. set: len bytes given; get: len is the
// room on entry and the value's length on return.
struct SockOptArg {
  static constexpr size_t kMaxLen = 256;
  bool set = false;
  int level = 0, name = 0;
  socklen_t len = 0;
  alignas(8) char val[kMaxLen];
};

// The hooks of one protocol. Each runs without the socket's lock unless
// named *_locked. Errors are Linux's for that protocol.
struct Protosw {
  int type;       // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET ...
  int protocol;   // what SO_PROTOCOL reports
  bool stream;    // a byte stream (else: records)
  bool connection;  // connection-based (connect/accept, ENOTCONN without)
  Result<void> (*attach)(Socket& so);
  void (*detach)(Socket& so);  // last close: disconnect and unbind
  Result<void> (*bind)(Lwp& l, Socket& so, const SockAddr& a);
  Result<void> (*listen)(Lwp& l, Socket& so, int backlog);
  Result<void> (*connect)(Lwp& l, Socket& so, const SockAddr& a, bool nonblock);
  Result<void> (*connect2)(Lwp& l, Socket& a, Socket& b);  // socketpair
  // Delivers rec (data copied in, charged to so) to the peer, or to the
  // socket named by to. On failure the caller disposes of rec.
  Result<void> (*send)(Lwp& l, Socket& so, SockRecord* rec, const SockAddr* to, bool nonblock);
  Result<void> (*shutdown)(Socket& so, int how);
  void (*sockname)(Socket& so, SockAddr& a);
  Result<void> (*peername)(Socket& so, SockAddr& a);
  // The POLL* events that hold now (lock held).
  short (*poll_locked)(Socket& so);
  // Does the generic send path add SCM_CREDENTIALS to every record?
  bool (*wants_creds)(Socket& so);
  // The source address of a received record (recvfrom, recvmsg).
  void (*source_name)(SockRecord& r, SockAddr& a);
  // The socket is being freed: the control block goes.
  void (*free_pcb)(Socket& so);
  // Optional (null: the generic path). A protocol that builds its own
  // packets takes the whole send from the user's iovec (so_send checks
  // MSG_OOB and then calls it) and returns the bytes sent.
  Result<size_t> (*send_msg)(Lwp& l, Socket& so, SockMsg& m, int flags, bool nonblock) = nullptr;
  // Optional: options of the protocol's levels (IPPROTO_IP, IPPROTO_UDP
  // ...). ENOPROTOOPT for an unknown one.
  Result<void> (*ctloutput)(Lwp& l, Socket& so, SockOptArg& opt) = nullptr;
  // Optional: a protocol that keeps its received bytes itself (TCP: in
  // its connection, which must learn when the reader consumes them to
  // open its window) takes the whole receive (so_receive checks MSG_OOB
  // and then calls it) and returns the bytes read.
  Result<size_t> (*recv_msg)(Lwp& l, Socket& so, SockMsg& m, int flags, bool nonblock) = nullptr;
  // Optional, for streams: moves up to max bytes of uio straight into the
  // uio of a reader of the peer that waits on an empty buffer
  // (Socket::fill_direct; wait: the sender may spin briefly for a reader
  // to come). 0: none waits (the record path follows); an error: the
  // sender's memory faulted before a byte moved.
  Result<size_t> (*send_direct)(Lwp& l, Socket& so, Uio& uio, size_t max, bool wait) = nullptr;
};

// An address family.
struct Domain {
  int family;
  const Protosw* protos;
  int nprotos;
  // Checks an address from user space (length, family) into a.
  Result<void> (*check_addr)(const void* raw, socklen_t len, SockAddr& a);
  // A file enters flight in a message of this domain, and leaves it
  // (received or destroyed): the domain's collector of unreachable
  // in-flight sockets counts them (BSD's dom_internalize/dom_dispose).
  void (*internalize)(File& f);
  void (*dispose)(File& f);
  // Optional: ioctls of the family on any of its sockets (the SIOC*
  // interface calls of AF_INET). ENOTTY for an unknown one.
  Result<long> (*ioctl)(Lwp& l, Socket& so, unsigned long cmd, uintptr_t arg) = nullptr;
};
void register_domain(const Domain* d);
const Domain* find_domain(int family);
struct DomainRegistrar {
  explicit DomainRegistrar(const Domain* d) { register_domain(d); }
};

class Socket : public KObject, public RefCounted<Socket> {
 public:
  static constexpr int kDefaultBuf = 212992;  // Linux's wmem_default/rmem_default

  Socket(Kernel& k, const Domain& d, const Protosw& p) : kernel_(k), domain_(d), proto_(p) {}
  ~Socket();
  // A socket of d's protocol p, attached. protocol: what socket(2) asked
  // for (-1: p's own number).
  static Result<Ref<Socket>> create(Lwp& l, const Domain& d, const Protosw& p, int protocol = -1);

  Kernel& kernel() const { return kernel_; }
  const Domain& domain() const { return domain_; }
  const Protosw& proto() const { return proto_; }

  Mutex lock_{LockRank::kSocket};
  WaitQueue wq_{lock_};
  // Readers waiting for data, or for their turn (rcv_busy_); senders
  // waiting for space; connectors waiting for a place in the backlog.
  CondVar rcv_cv_;
  CondVar snd_cv_;
  CondVar conn_cv_;

  uint32_t state_ ABSL_GUARDED_BY(lock_) = 0;
  uint32_t options_ ABSL_GUARDED_BY(lock_) = 0;
  int error_ ABSL_GUARDED_BY(lock_) = 0;  // SO_ERROR, reported once
  // The receive buffer.
  SockRecordList rcv_ ABSL_GUARDED_BY(lock_);
  size_t rcv_cc_ ABSL_GUARDED_BY(lock_) = 0;     // unread bytes
  size_t rcv_count_ ABSL_GUARDED_BY(lock_) = 0;  // records
  bool rcv_busy_ ABSL_GUARDED_BY(lock_) = false;
  int rcv_waiters_ ABSL_GUARDED_BY(lock_) = 0;
  // Bytes this socket sent that no receiver consumed yet.
  size_t snd_cc_ ABSL_GUARDED_BY(lock_) = 0;
  int snd_waiters_ ABSL_GUARDED_BY(lock_) = 0;
  int conn_waiters_ ABSL_GUARDED_BY(lock_) = 0;
  // A stream reader waiting on an empty buffer offers its uio (while it
  // holds rcv_busy_): a sender copies into it directly (fill_direct).
  DirectRead* rcv_direct_ ABSL_GUARDED_BY(lock_) = nullptr;
  SpinBudget rcv_spin_ ABSL_GUARDED_BY(lock_);
  SpinBudget snd_spin_ ABSL_GUARDED_BY(lock_);
  // Of senders that found this socket's buffer empty and no reader's
  // offer, spinning for one (fill_direct).
  SpinBudget offer_spin_ ABSL_GUARDED_BY(lock_);
  // Consumed records this socket sent, kept for its next sends.
  static constexpr int kRecordCache = 8;
  SockRecordList rec_cache_ ABSL_GUARDED_BY(lock_);
  int rec_cached_ ABSL_GUARDED_BY(lock_) = 0;
  int rcvbuf_ ABSL_GUARDED_BY(lock_) = kDefaultBuf;
  int sndbuf_ ABSL_GUARDED_BY(lock_) = kDefaultBuf;
  int rcvlowat_ ABSL_GUARDED_BY(lock_) = 1;
  int64_t rcvtimeo_ns_ ABSL_GUARDED_BY(lock_) = 0;  // 0: none
  int64_t sndtimeo_ns_ ABSL_GUARDED_BY(lock_) = 0;
  linger linger_ ABSL_GUARDED_BY(lock_) = {};
  // The peer's credentials (SO_PEERCRED): set at connect/accept/socketpair.
  bool has_peercred_ ABSL_GUARDED_BY(lock_) = false;
  ScmCreds peercred_ ABSL_GUARDED_BY(lock_);
  // A listener's accept queue: connected sockets not yet accepted, each
  // holding a reference.
  bi::list_member_hook<bi::link_mode<bi::safe_link>> accept_hook_;
  using AcceptList = bi::list<Socket, bi::member_hook<Socket, decltype(Socket::accept_hook_), &Socket::accept_hook_>,
                              bi::constant_time_size<false>>;
  AcceptList accept_q_ ABSL_GUARDED_BY(lock_);
  int accept_len_ ABSL_GUARDED_BY(lock_) = 0;
  int backlog_ ABSL_GUARDED_BY(lock_) = 0;

  // The protocol's control block (net/local.cc: the AF_UNIX state).
  void* pcb_ = nullptr;
  // Set before attach, constant after: the protocol number (SO_PROTOCOL;
  // a raw socket's is the one it was made with) and the creator's
  // credentials (attach checks privileges against them).
  int protocol_ = 0;
  ScmCreds creator_;
  // The open file description of this socket (one per socket; set when it
  // is made, cleared at its last close): for the collector.
  std::atomic<File*> file_{nullptr};

  // Bumped under lock_ at every change a reader waits for (spinners read it
  // without the lock, as Pipe::gen_).
  std::atomic<uint32_t> gen_{0};

  // --- for protocols (lock held)
  // Appends rec to the receive buffer and wakes readers and pollers.
  void deliver_locked(SockRecord* rec) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // The same, but a sleeping reader is left to the caller: true if one
  // sleeps, and the caller, still holding a reference, calls
  // wake_receiver() once it has dropped lock_. A reader signalled under
  // the lock would wake only to block on it at once (a second host
  // wake-up on the round trip).
  [[nodiscard]] bool deliver_locked_deferred(SockRecord* rec) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void wake_receiver() { rcv_cv_.signal(); }
  // Something a reader, writer or poller waits for changed.
  void wake_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Takes every record out (close, gc); dispose them without the lock.
  void drain_locked(SockRecordList& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Gives back n bytes charged to this socket (a receiver consumed them).
  void uncharge(size_t n);
  // The same, and the records in done that this socket sent and that a
  // receiver consumed are kept for reuse (or disposed of). No socket lock
  // held.
  void uncharge_and_recycle(size_t n, SockRecordList& done);
  // A record with room for len bytes from the cache (sender and charge
  // unset), or nullptr.
  SockRecord* take_record_locked(size_t len) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);

  // A sender's one copy (no lock held, a reference held): if a reader of
  // this socket offers its uio and nothing is buffered before it, moves up
  // to max bytes from src into it and wakes it. With wait, a sender that
  // finds nothing buffered and no offer spins for one (offer_spin_): a
  // reader that drains every write is then mostly between two calls.
  // Returns what moved; a fault of src's memory sets *src_error.
  size_t fill_direct(Lwp& l, Uio& src, size_t max, bool wait, int* src_error);

  // The credentials of the calling LWP as a record carries them.
  static ScmCreds creds_of(Lwp& l);

 private:
  friend class RefCounted<Socket>;
  void last_unref() { delete this; }

  Kernel& kernel_;
  const Domain& domain_;
  const Protosw& proto_;
};

// --- the generic entry points (net/socket.cc)

// A message as sendmsg/recvmsg see it, with the iovec already copied in.
struct SockMsg {
  Uio* uio;
  const SockAddr* to = nullptr;  // send: destination (nullptr: the peer)
  SockAddr* from = nullptr;      // receive: the sender's address
  // Control data: send: the parsed SCM_* of the caller; receive: filled.
  ScmRights* rights = nullptr;   // send: consumed on success
  bool want_creds = false;       // send: explicit SCM_CREDENTIALS given
  ScmCreds creds;
  // Receive results.
  bool got_creds = false;
  ScmCreds rcreds;
  ScmRights* rrights = nullptr;  // the caller owns it
  int flags_out = 0;             // MSG_TRUNC ...
};

Result<size_t> so_send(Lwp& l, Socket& so, SockMsg& m, int flags, bool nonblock);
Result<size_t> so_receive(Lwp& l, Socket& so, SockMsg& m, int flags, bool nonblock);
// so_receive's path over the receive buffer's records, for a protocol
// whose recv_msg does more around it (MSG_OOB checked, nonblock final).
Result<size_t> so_receive_records(Lwp& l, Socket& so, SockMsg& m, int flags, bool nonblock);
Result<void> so_shutdown(Socket& so, int how);
// The next connection of a listener (EINVAL if so does not listen).
Result<Ref<Socket>> so_accept(Lwp& l, Socket& so, bool nonblock);
short so_poll(Socket& so, short events, PollTable* pt);

// Sockets as open files: File::data_ is the Socket (holding a reference).
extern const FileOps& kSocketFileOps;
inline Socket* file_socket(File& f) { return &f.ops() == &kSocketFileOps ? static_cast<Socket*>(f.data_) : nullptr; }
Result<Ref<File>> socket_file(Kmem& k, Socket& so, int flags);

// Waits on cv with so's lock held, up to deadline (monotonic ns, < 0:
// none): 0, EAGAIN (timed out), or on a signal EINTR with a deadline and
// kErestartSys without one.
int so_sleep(Lwp& l, Socket& so, CondVar& cv, int& waiters, int64_t deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(so.lock_);
int64_t so_deadline(int64_t timeo_ns);

}  // namespace rump
