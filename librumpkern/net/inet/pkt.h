// pkt.h: packets of the inet stack, and the Internet checksum.
//
// A Pkt is a chain of PktSegs, each a buffer with a data window inside it.
// A fresh packet keeps headroom in front of its first segment, so every
// layer below a transport (IP, IPv6, Ethernet) prepends its header in place
// instead of copying the payload; when the headroom runs out, prepend()
// puts a new segment in front. Buffers of the standard size come from a
// per-kernel pool (PktPool, owned by the inet state), bigger ones straight
// from the kernel's allocator; both are charged to the kernel's Kmem, so
// RUMP_MEMLIMIT bounds the stack. A failed allocation is ENOBUFS, never a
// panic and never an exception.
//
// Who calls what: transports (UDP, TCP, raw, ICMP) build packets with
// Pkt::alloc + append/append_uio and hand them to ip_output (ip.h);
// interfaces hand received frames to the stack as Pkts; input paths read
// headers with pullup() and strip them with trim_front(). A Pkt has one
// owner at a time: every function that takes a Pkt* consumes it (frees it
// or passes it on), on success and on failure alike.
//
// Checksums: a transport may leave its checksum to the interface (Linux's
// CHECKSUM_PARTIAL): it stores the pseudo-header sum in the checksum field,
// sets meta.csum = kCsumPartial with csum_start (offset of the transport
// header from the packet's start at that time) and csum_offset (of the
// field inside that header), and ip_output finishes it unless the
// interface finishes it itself or needs none (Ifnet::no_csum). A packet
// that arrives with meta.csum = kCsumVerified needs no check by the
// receiver. The offsets stay right as headers are prepended: ip_output
// and ether_send_frame move csum_start with them.
#pragma once

#include <sys/types.h>

#include <boost/intrusive/list.hpp>
#include <cstddef>
#include <cstdint>

#include "base/kmem.h"
#include "base/result.h"
#include "sync/mutex.h"

namespace rump {

class Kernel;
struct Uio;

// The standard buffer: header and data in one 2 KiB block (a whole
// Ethernet frame fits one).
inline constexpr size_t kPktBufSize = 2048;
// Room a fresh packet keeps in front for the headers below a transport
// (Ethernet 14 + IPv6 40 + fragment 8 + TCP 60, rounded up).
inline constexpr size_t kPktHeadroom = 128;

// A segment whose bytes live elsewhere (ext set) borrows them: it holds
// a reference that release(arg) drops when the segment goes, and it is
// read-only: no headroom, no tailroom, and nothing writes its bytes
// (Pkt::pullup gathers into an own segment in front of it).
struct PktSeg {
  PktSeg* next = nullptr;
  uint32_t off = 0;  // where the data starts in buf (or ext)
  uint32_t len = 0;  // bytes of data
  uint32_t cap = 0;  // size of buf
  bool pooled = false;
  const char* ext = nullptr;
  void (*release)(void*) = nullptr;
  void* arg = nullptr;
  char* data() { return buf + off; }
  const char* data() const { return (ext ? ext : buf) + off; }
  uint32_t headroom() const { return ext ? 0 : off; }
  uint32_t tailroom() const { return ext ? 0 : cap - off - len; }
  alignas(8) char buf[];
};
inline constexpr size_t kPktSegData = kPktBufSize - sizeof(PktSeg) - Kmem::kHeader;

// Per-kernel cache of standard buffers. Thread-safe.
class PktPool {
 public:
  explicit PktPool(Kmem& km) : km_(km) {}
  ~PktPool();
  PktPool(const PktPool&) = delete;
  PktPool& operator=(const PktPool&) = delete;
  // A segment with at least cap bytes of buffer, empty, off = 0; nullptr
  // when the kernel is out of memory.
  PktSeg* get(size_t cap);
  void put(PktSeg* s);
  Kmem& kmem() const { return km_; }
  size_t cached() const;

 private:
  static constexpr int kMaxCached = 64;
  Kmem& km_;
  mutable SpinLock lock_{LockRank::kNone};
  PktSeg* free_ ABSL_GUARDED_BY(lock_) = nullptr;
  int nfree_ ABSL_GUARDED_BY(lock_) = 0;
};

enum PktCsum : uint8_t {
  kCsumNone = 0,      // the checksum in the packet is complete (or there is none)
  kCsumPartial = 1,   // send: finish it at csum_start + csum_offset
  kCsumVerified = 2,  // receive: known good, the receiver need not check
};

enum PktFlags : uint32_t {
  kPktBroadcast = 1,   // arrived as a link or IP broadcast
  kPktMulticast = 2,
  kPktLoopback = 4,    // arrived on a loopback interface
};

// What travels with a packet besides its bytes.
struct PktMeta {
  int rcvif = 0;  // index of the interface it arrived on (0: none)
  uint32_t flags = 0;
  PktCsum csum = kCsumNone;
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
  // A TCP segment carrying more than one MSS for a device that cuts it
  // (TSO), or as received whole from one (the host's GRO): the payload
  // bytes per wire segment. 0: an ordinary packet.
  uint16_t gso_size = 0;
  uint32_t aux = 0;  // for the layer holding the packet (reassembly: the fragment's offset)
  int64_t stamp = 0;  // a time for the layer holding it (impairment: when to deliver it)
};

class Pkt {
 public:
  // A packet of len bytes (contents undefined) with headroom bytes free
  // in front: ENOBUFS.
  static Result<Pkt*> alloc(PktPool& pool, size_t len, size_t headroom = kPktHeadroom);
  // Frees the whole chain; null is fine.
  static void free(Pkt* p);

  size_t len() const { return len_; }
  PktSeg* first() { return head_; }
  const PktSeg* first() const { return head_; }
  PktPool& pool() const { return *pool_; }

  // n more bytes in front; returns where they start (contiguous). ENOBUFS.
  Result<char*> prepend(size_t n);
  // Makes the first n bytes contiguous and returns them: EINVAL when the
  // packet is shorter, ENOBUFS.
  Result<char*> pullup(size_t n);
  // Drops n bytes from the front or the back (n <= len()).
  void trim_front(size_t n);
  void trim_back(size_t n);
  // Appends bytes at the end, from kernel memory or from a Uio (user
  // memory): ENOBUFS, or the copy's EFAULT (the packet then holds what was
  // copied before the fault).
  Result<void> append(const void* src, size_t n);
  Result<void> append_uio(Uio& uio, size_t n);
  // Appends n bytes at data without copying them: the packet borrows
  // them until it is freed, then calls release(arg) once. ENOBUFS (then
  // release is not called: the caller keeps its reference).
  Result<void> append_ext(const void* data, size_t n, void (*release)(void*), void* arg);
  // The bytes from off to the end as up to max contiguous pieces (into
  // ptr/len); returns how many, or -1 when more are needed.
  int pieces(size_t off, const char** ptr, size_t* len, int max) const;
  // Copies bytes [off, off + n) out (to kernel memory or a Uio), or
  // overwrites them. off + n <= len().
  void copy_out(size_t off, size_t n, void* dst) const;
  Result<void> copyout_uio(size_t off, size_t n, Uio& uio) const;
  void copy_in(size_t off, size_t n, const void* src);
  // A new packet holding bytes [off, off + n) of this one, with headroom
  // in front: ENOBUFS.
  Result<Pkt*> copy(size_t off, size_t n, size_t headroom = kPktHeadroom) const;
  // Appends tail's bytes (its segments move, nothing is copied) and frees
  // its header. tail's metadata is dropped.
  void concat(Pkt* tail);

  PktMeta meta;
  // One queue at a time (an interface's input queue, a reassembly list).
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;

 private:
  friend class PktPool;
  explicit Pkt(PktPool& pool) : pool_(&pool) {}
  ~Pkt() = default;
  void push_seg(PktSeg* s);

  PktPool* pool_;
  PktSeg* head_ = nullptr;
  PktSeg* tail_ = nullptr;
  size_t len_ = 0;
};
using PktList = boost::intrusive::list<Pkt, boost::intrusive::member_hook<Pkt, decltype(Pkt::hook), &Pkt::hook>,
                                       boost::intrusive::constant_time_size<true>>;
// Frees every packet on a list.
void pkt_list_free(PktList& l);

// --- The Internet checksum (RFC 1071), in network byte order throughout:
// sums are 32-bit accumulators of 16-bit big-endian words, folded at the
// end; the result of in_cksum_fold is the complemented 16-bit checksum as
// it goes on the wire (store it with memcpy of the returned value turned
// into network order by htons).

// Adds n bytes at p to sum. odd: the bytes start at an odd offset of the
// whole summed range (the caller keeps it right over discontiguous parts).
uint32_t in_cksum_add(uint32_t sum, const void* p, size_t n, bool odd = false);
// Folds a sum to 16 bits and complements it.
uint16_t in_cksum_fold(uint32_t sum);
// The checksum of n contiguous bytes.
inline uint16_t in_cksum(const void* p, size_t n) { return in_cksum_fold(in_cksum_add(0, p, n)); }
// Sum of bytes [off, off + n) of a packet (not folded).
uint32_t pkt_cksum_add(const Pkt& p, size_t off, size_t n, uint32_t sum = 0);
// RFC 1624 incremental update: a header whose checksum was cksum had the
// 16-bit word old_word replaced by new_word (all host order); returns the
// new checksum.
uint16_t in_cksum_update16(uint16_t cksum, uint16_t old_word, uint16_t new_word);
uint16_t in_cksum_update32(uint16_t cksum, uint32_t old_word, uint32_t new_word);
// Pseudo-header sums (not folded). Addresses in network byte order; len
// is the transport length in host order.
uint32_t in_pseudo4(uint32_t src, uint32_t dst, uint8_t proto, uint32_t len);
uint32_t in_pseudo6(const uint8_t src[16], const uint8_t dst[16], uint8_t next, uint32_t len);

// Finishes a kCsumPartial checksum in software (ip_output does this for
// interfaces that need it, and before fragmenting). EINVAL for a packet
// whose offsets are out of range.
Result<void> pkt_csum_finish(Pkt& p);

}  // namespace rump
