// tcp_buffer.h: the byte stores under a TCP connection.
//
// ByteRing is a fixed-capacity ring of bytes, allocated from the kernel's
// arena on first use (a connection that never carries data costs nothing).
// The send side keeps bytes from SND.UNA on (what is unacknowledged plus
// what is not yet sent); the receive side keeps in-order bytes the user has
// not read, and places out-of-order bytes directly at their offset beyond
// them, with RecvQueue recording which ranges above RCV.NXT are present.
// Neither allocates after the first use, so nothing on the segment path can
// fail for memory. Not thread-safe: the owning connection's lock guards it.
//
// The storage is reference-counted: a packet may borrow bytes of a send
// ring (share()) and read them after the lock is dropped; the storage
// lives until the ring and every borrower let go. A borrower reads only
// bytes that were unacknowledged when it borrowed them; the ring rewrites
// a byte only after it was acknowledged, which needs the receiver to have
// passed it. A receiver on the same kernel (lo) may keep borrowed bytes
// as part of its contents (append_lent) instead of copying them: so that
// they stay as they were, a send ring whose storage is borrowed moves to
// other storage before it takes new bytes (send_room()).
//
// Lent spans (receive side): a span of the contents whose bytes live in
// another ring's storage, with a reference on it. The ring reserves their
// room as if it held them, so space and window accounting are the same;
// every read (copy_out, pieces) takes such bytes from the span, and drop
// lets a span go once its last byte is gone.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/kmem.h"
#include "base/result.h"
#include "net/inet/tcp/tcp_segment.h"

namespace rump::tcp {

class ByteRing {
 public:
  ByteRing() = default;
  ByteRing(const ByteRing&) = delete;
  ByteRing& operator=(const ByteRing&) = delete;
  ~ByteRing() {
    release_lent();
    unshare(store_);
    unshare(spare_);
  }

  // Sets the capacity: before the first allocation only; later calls are
  // ignored (a connection keeps the buffer it started with).
  void set_capacity(size_t cap) {
    if (buf_ == nullptr) cap_ = cap;
  }
  // Allocates the storage if not yet done. ENOMEM.
  Result<void> prepare(Kmem& kmem);
  bool allocated() const { return buf_ != nullptr; }
  bool holds(const uint8_t* p) const { return buf_ != nullptr && p >= buf_ && p < buf_ + cap_; }
  // Gives the storage back (the contents go; prepare() would allocate
  // anew).
  void release() {
    release_lent();
    unshare(store_);
    unshare(spare_);
    spare_ = nullptr;
    store_ = nullptr;
    buf_ = nullptr;
    head_ = size_ = 0;
  }
  // Moves the contents to new storage of cap bytes (cap >= size(); out-of-
  // order bytes beyond the contents are not kept). ENOMEM leaves it as it
  // was. Before the first allocation it only sets the capacity.
  Result<void> resize(Kmem& kmem, size_t cap);
  // A reference on the storage for a borrower (allocated() only), and its
  // release, which may run on any thread without the connection's lock.
  void* share() const;
  static void unshare(void* store);
  // Another reference on a store a packet lent (see share()).
  static void* reshare(void* store);
  // Send side: makes sure no borrower can see the free room, moving the
  // contents to storage nobody borrows (a spare kept from an earlier move,
  // or new storage) when the current one is borrowed. ENOMEM.
  Result<void> own_free_room(Kmem& kmem);

  // Receive side: n bytes at data, inside store (a store a packet lent),
  // become the next contents without a copy (n <= space(); prepare
  // first). False, and nothing done, when the span table is full.
  bool append_lent(const uint8_t* data, size_t n, void* store);
  // Spans still free in the table.
  int lent_room() const { return kMaxLent - nlent_; }
  // References on the stores of the lent spans the bytes [off, off + n)
  // lie in (at most two: what pieces() gives), for a reader that copies
  // them without the owner's lock; each non-null one is given back with
  // unshare().
  void pin_lent(size_t off, size_t n, void* pins[2]) const;

  size_t size() const { return size_; }
  size_t capacity() const { return cap_; }
  size_t space() const { return cap_ - size_; }

  // Copies up to space() bytes to the end; returns how many (prepare first).
  size_t append(const uint8_t* src, size_t n);
  // Stores n bytes at offset off from the head without making them part of
  // the contents (off >= size(), off + n <= capacity()); commit() adopts
  // them later. Used for out-of-order data.
  void write_at(size_t off, const uint8_t* src, size_t n);
  void commit(size_t n) { size_ += n; }
  // Removes n bytes from the head.
  void drop(size_t n);
  // Copies n bytes starting at offset off (off + n <= size()).
  void copy_out(size_t off, uint8_t* dst, size_t n) const;
  // The bytes [off, off + n) as up to two contiguous pieces (with lent
  // spans, the first two runs from off, which may hold fewer bytes).
  void pieces(size_t off, size_t n, const uint8_t** p1, size_t* l1, const uint8_t** p2,
              size_t* l2) const;
  // The free room after the contents as up to two pieces (prepare first).
  // Bytes written there become contents with commit(). The room stays
  // free until then: only append/commit fill it, and drop only adds room
  // at the head, so a host may fill it while another thread drops.
  void free_pieces(uint8_t** p1, size_t* l1, uint8_t** p2, size_t* l2) const;

 private:
  struct Store;
  struct Lent {
    uint64_t pos;  // the stream position (see dropped_) of its first byte
    size_t len;
    const uint8_t* ptr;
    void* store;
  };
  static constexpr int kMaxLent = 6;
  static Store* alloc_store(Kmem& kmem, size_t cap);
  void release_lent();
  // The longest contiguous run of contents from offset off (< size()), at
  // most n bytes: where it is and how long.
  const uint8_t* run(size_t off, size_t n, size_t* len) const;
  void move_to(Store* st, size_t cap);

  Store* store_ = nullptr;
  Store* spare_ = nullptr;  // a store to move to once nobody borrows it
  uint8_t* buf_ = nullptr;
  size_t cap_ = 0;
  size_t head_ = 0;
  size_t size_ = 0;
  uint64_t dropped_ = 0;  // bytes ever dropped: the stream position of the head
  Lent lent_[kMaxLent];
  int nlent_ = 0;
};

// The out-of-order ranges held above RCV.NXT, sorted and disjoint, with the
// most recently changed one remembered for the first SACK block (RFC 2018
// section 4). A range that does not fit in the table is dropped, as the
// segment it came from would have been.
class RecvQueue {
 public:
  static constexpr int kMaxRanges = 16;

  bool empty() const { return n_ == 0; }
  int count() const { return n_; }
  // Records [left, right). Returns false if the table is full and the range
  // touches none already held.
  bool add(Seq left, Seq right);
  // If the lowest range starts at or below rcv_nxt, removes it and returns
  // its right edge (the new RCV.NXT); otherwise returns rcv_nxt.
  Seq take_contiguous(Seq rcv_nxt);
  // Fills up to max SACK blocks, the most recent first.
  int sack_blocks(SackBlock* out, int max) const;
  // Bytes held out of order (for TCP_INFO-like counters).
  uint32_t bytes() const;
  void clear() { n_ = 0; }

 private:
  SackBlock r_[kMaxRanges] = {};
  int n_ = 0;
  Seq recent_ = 0;  // a sequence number inside the most recently added range
};

}  // namespace rump::tcp
