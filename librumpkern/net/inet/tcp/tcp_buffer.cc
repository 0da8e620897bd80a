// tcp_buffer.cc: the send/receive byte ring and the out-of-order ranges.
#include "net/inet/tcp/tcp_buffer.h"

#include <atomic>
#include <cstring>
#include <new>

namespace rump::tcp {

struct ByteRing::Store {
  std::atomic<uint32_t> refs{1};
  alignas(8) uint8_t bytes[];
};

ByteRing::Store* ByteRing::alloc_store(Kmem& kmem, size_t cap) {
  void* mem = kmem.alloc(sizeof(Store) + cap);
  return mem ? new (mem) Store() : nullptr;
}

Result<void> ByteRing::prepare(Kmem& kmem) {
  if (buf_ != nullptr) return {};
  if (cap_ == 0) return err(EINVAL);
  store_ = alloc_store(kmem, cap_);
  if (store_ == nullptr) return err(ENOMEM);
  buf_ = store_->bytes;
  return {};
}

Result<void> ByteRing::resize(Kmem& kmem, size_t cap) {
  if (buf_ == nullptr) {
    cap_ = cap;
    return {};
  }
  if (cap < size_ || cap == 0) return err(EINVAL);
  if (cap == cap_) return {};
  Store* st = alloc_store(kmem, cap);
  if (st == nullptr) return err(ENOMEM);
  copy_out(0, st->bytes, size_);
  unshare(store_);
  store_ = st;
  buf_ = st->bytes;
  cap_ = cap;
  head_ = 0;
  return {};
}

void* ByteRing::share() const {
  store_->refs.fetch_add(1, std::memory_order_relaxed);
  return store_;
}

void ByteRing::unshare(void* store) {
  auto* st = static_cast<Store*>(store);
  if (st == nullptr || st->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  st->~Store();
  Kmem::free(st);
}

size_t ByteRing::append(const uint8_t* src, size_t n) {
  if (n > space()) n = space();
  write_at(size_, src, n);
  size_ += n;
  return n;
}

void ByteRing::write_at(size_t off, const uint8_t* src, size_t n) {
  size_t pos = (head_ + off) % cap_;
  size_t first = n < cap_ - pos ? n : cap_ - pos;
  memcpy(buf_ + pos, src, first);
  if (n > first) memcpy(buf_, src + first, n - first);
}

void ByteRing::drop(size_t n) {
  if (n > size_) n = size_;
  if (n == 0) return;
  size_ -= n;
  // The head moves even when the ring empties: out-of-order bytes may sit
  // beyond it at their offsets.
  head_ = (head_ + n) % cap_;
}

void ByteRing::copy_out(size_t off, uint8_t* dst, size_t n) const {
  const uint8_t* p1;
  const uint8_t* p2;
  size_t l1, l2;
  pieces(off, n, &p1, &l1, &p2, &l2);
  if (l1) memcpy(dst, p1, l1);
  if (l2) memcpy(dst + l1, p2, l2);
}

void ByteRing::pieces(size_t off, size_t n, const uint8_t** p1, size_t* l1, const uint8_t** p2,
                      size_t* l2) const {
  if (n == 0 || buf_ == nullptr) {
    *p1 = *p2 = nullptr;
    *l1 = *l2 = 0;
    return;
  }
  size_t pos = (head_ + off) % cap_;
  size_t first = n < cap_ - pos ? n : cap_ - pos;
  *p1 = buf_ + pos;
  *l1 = first;
  *p2 = n > first ? buf_ : nullptr;
  *l2 = n - first;
}

void ByteRing::free_pieces(uint8_t** p1, size_t* l1, uint8_t** p2, size_t* l2) const {
  size_t n = space();
  if (n == 0 || buf_ == nullptr) {
    *p1 = *p2 = nullptr;
    *l1 = *l2 = 0;
    return;
  }
  size_t pos = (head_ + size_) % cap_;
  size_t first = n < cap_ - pos ? n : cap_ - pos;
  *p1 = buf_ + pos;
  *l1 = first;
  *p2 = n > first ? buf_ : nullptr;
  *l2 = n - first;
}

bool RecvQueue::add(Seq left, Seq right) {
  if (!seq_lt(left, right)) return true;
  // Merge with every range it touches.
  int i = 0;
  while (i < n_ && seq_lt(r_[i].right, left)) i++;
  int j = i;
  while (j < n_ && seq_leq(r_[j].left, right)) {
    left = seq_min(left, r_[j].left);
    right = seq_max(right, r_[j].right);
    j++;
  }
  int merged = j - i;
  if (merged == 0 && n_ == kMaxRanges) return false;
  // Replace r_[i, j) by the one range.
  int shift = 1 - merged;
  if (shift > 0) {
    for (int k = n_ - 1; k >= i; k--) r_[k + shift] = r_[k];
  } else if (shift < 0) {
    for (int k = j; k < n_; k++) r_[k + shift] = r_[k];
  }
  n_ += shift;
  r_[i] = SackBlock{left, right};
  recent_ = left;
  return true;
}

Seq RecvQueue::take_contiguous(Seq rcv_nxt) {
  Seq nxt = rcv_nxt;
  while (n_ > 0 && seq_leq(r_[0].left, nxt)) {
    nxt = seq_max(nxt, r_[0].right);
    for (int k = 1; k < n_; k++) r_[k - 1] = r_[k];
    n_--;
  }
  return nxt;
}

int RecvQueue::sack_blocks(SackBlock* out, int max) const {
  int m = 0;
  int first = -1;
  for (int k = 0; k < n_; k++) {
    if (seq_in(recent_, r_[k].left, r_[k].right)) first = k;
  }
  if (first >= 0 && m < max) out[m++] = r_[first];
  for (int k = 0; k < n_ && m < max; k++) {
    if (k != first) out[m++] = r_[k];
  }
  return m;
}

uint32_t RecvQueue::bytes() const {
  uint32_t b = 0;
  for (int k = 0; k < n_; k++) b += r_[k].right - r_[k].left;
  return b;
}

}  // namespace rump::tcp
