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
  unshare(spare_);
  spare_ = nullptr;
  move_to(st, cap);
  return {};
}

void ByteRing::move_to(Store* st, size_t cap) {
  copy_out(0, st->bytes, size_);
  release_lent();
  unshare(store_);
  store_ = st;
  buf_ = st->bytes;
  cap_ = cap;
  head_ = 0;
}

Result<void> ByteRing::own_free_room(Kmem& kmem) {
  if (store_ == nullptr || store_->refs.load(std::memory_order_acquire) == 1) return {};
  Store* st;
  if (spare_ != nullptr && spare_->refs.load(std::memory_order_acquire) == 1) {
    st = spare_;
  } else {
    st = alloc_store(kmem, cap_);
    if (st == nullptr) return err(ENOMEM);
    unshare(spare_);
  }
  // The borrowed store becomes the spare once its borrowers let go.
  spare_ = store_;
  store_->refs.fetch_add(1, std::memory_order_relaxed);
  move_to(st, cap_);
  return {};
}

void* ByteRing::reshare(void* store) {
  static_cast<Store*>(store)->refs.fetch_add(1, std::memory_order_relaxed);
  return store;
}

bool ByteRing::append_lent(const uint8_t* data, size_t n, void* store) {
  if (n == 0) return true;
  if (n > space()) return false;
  uint64_t pos = dropped_ + size_;
  Lent* last = nlent_ > 0 ? &lent_[nlent_ - 1] : nullptr;
  if (last && last->store == store && last->ptr + last->len == data && last->pos + last->len == pos) {
    last->len += n;
  } else {
    if (nlent_ == kMaxLent) return false;
    lent_[nlent_++] = Lent{pos, n, data, reshare(store)};
  }
  size_ += n;
  return true;
}

void ByteRing::pin_lent(size_t off, size_t n, void* pins[2]) const {
  pins[0] = pins[1] = nullptr;
  int k = 0;
  uint64_t lo = dropped_ + off, hi = lo + n;
  for (int i = 0; i < nlent_ && k < 2; i++) {
    const Lent& l = lent_[i];
    if (l.pos < hi && lo < l.pos + l.len) pins[k++] = reshare(l.store);
  }
}

void ByteRing::release_lent() {
  for (int i = 0; i < nlent_; i++) unshare(lent_[i].store);
  nlent_ = 0;
}

const uint8_t* ByteRing::run(size_t off, size_t n, size_t* len) const {
  uint64_t at = dropped_ + off;
  uint64_t limit = UINT64_MAX;
  for (int i = 0; i < nlent_; i++) {
    const Lent& l = lent_[i];
    if (at < l.pos) {
      limit = l.pos;
      break;
    }
    if (at < l.pos + l.len) {
      size_t k = static_cast<size_t>(l.pos + l.len - at);
      *len = k < n ? k : n;
      return l.ptr + (at - l.pos);
    }
  }
  size_t pos = (head_ + off) % cap_;
  size_t k = cap_ - pos;
  if (k > n) k = n;
  if (limit - at < k) k = static_cast<size_t>(limit - at);
  *len = k;
  return buf_ + pos;
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
  dropped_ += n;
  int gone = 0;
  while (gone < nlent_ && lent_[gone].pos + lent_[gone].len <= dropped_) unshare(lent_[gone++].store);
  if (gone > 0) {
    for (int i = gone; i < nlent_; i++) lent_[i - gone] = lent_[i];
    nlent_ -= gone;
  }
  // The head moves even when the ring empties: out-of-order bytes may sit
  // beyond it at their offsets.
  head_ = (head_ + n) % cap_;
}

void ByteRing::copy_out(size_t off, uint8_t* dst, size_t n) const {
  if (nlent_ > 0) {
    while (n > 0) {
      size_t k;
      const uint8_t* p = run(off, n, &k);
      memcpy(dst, p, k);
      dst += k;
      off += k;
      n -= k;
    }
    return;
  }
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
  if (nlent_ > 0) {
    *p1 = run(off, n, l1);
    *p2 = nullptr;
    *l2 = 0;
    if (*l1 < n) *p2 = run(off + *l1, n - *l1, l2);
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
