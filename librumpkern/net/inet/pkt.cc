// Packets and the Internet checksum (see pkt.h).
#include "net/inet/pkt.h"

#include <arpa/inet.h>

#include <cstring>
#include <new>

#include "vfs/file.h"

namespace rump {

// --- the pool

PktPool::~PktPool() {
  PktSeg* s;
  {
    SpinLocker g(lock_);
    s = free_;
    free_ = nullptr;
    nfree_ = 0;
  }
  while (s) {
    PktSeg* n = s->next;
    Kmem::free(s);
    s = n;
  }
}

PktSeg* PktPool::get(size_t cap) {
  PktSeg* s = nullptr;
  if (cap <= kPktSegData) {
    SpinLocker g(lock_);
    if (free_) {
      s = free_;
      free_ = s->next;
      nfree_--;
    }
  }
  if (!s) {
    bool pooled = cap <= kPktSegData;
    size_t bytes = pooled ? kPktBufSize - Kmem::kHeader : sizeof(PktSeg) + cap;
    void* mem = km_.alloc(bytes);
    if (!mem) return nullptr;
    s = new (mem) PktSeg();
    s->cap = static_cast<uint32_t>(bytes - sizeof(PktSeg));
    s->pooled = pooled;
  }
  s->next = nullptr;
  s->off = 0;
  s->len = 0;
  return s;
}

void PktPool::put(PktSeg* s) {
  if (s->ext) {
    if (s->release) s->release(s->arg);
    Kmem::free(s);
    return;
  }
  if (s->pooled) {
    SpinLocker g(lock_);
    if (nfree_ < kMaxCached) {
      s->next = free_;
      free_ = s;
      nfree_++;
      return;
    }
  }
  Kmem::free(s);
}

size_t PktPool::cached() const {
  SpinLocker g(lock_);
  return static_cast<size_t>(nfree_);
}

// --- packets

Result<Pkt*> Pkt::alloc(PktPool& pool, size_t len, size_t headroom) {
  void* mem = pool.kmem().alloc(sizeof(Pkt));
  if (!mem) return err(ENOBUFS);
  Pkt* p = new (mem) Pkt(pool);
  // The first segment takes the headroom and as much data as fits; the
  // rest goes in further standard (or one big) segments.
  size_t want = headroom + len;
  PktSeg* s = pool.get(want <= kPktSegData ? kPktSegData : want);
  if (!s) {
    free(p);
    return err(ENOBUFS);
  }
  s->off = static_cast<uint32_t>(headroom);
  s->len = static_cast<uint32_t>(len);
  p->push_seg(s);
  p->len_ = len;
  return p;
}

void Pkt::free(Pkt* p) {
  if (!p) return;
  PktSeg* s = p->head_;
  while (s) {
    PktSeg* n = s->next;
    p->pool_->put(s);
    s = n;
  }
  p->~Pkt();
  Kmem::free(p);
}

void Pkt::push_seg(PktSeg* s) {
  s->next = nullptr;
  if (tail_) tail_->next = s;
  else head_ = s;
  tail_ = s;
}

Result<char*> Pkt::prepend(size_t n) {
  if (head_ && head_->headroom() >= n) {
    head_->off -= static_cast<uint32_t>(n);
    head_->len += static_cast<uint32_t>(n);
    len_ += n;
    return head_->data();
  }
  PktSeg* s = pool_->get(n + kPktHeadroom);
  if (!s) return err(ENOBUFS);
  s->off = s->cap - static_cast<uint32_t>(n);
  s->len = static_cast<uint32_t>(n);
  s->next = head_;
  head_ = s;
  if (!tail_) tail_ = s;
  len_ += n;
  return s->data();
}

Result<char*> Pkt::pullup(size_t n) {
  if (n > len_) return err(EINVAL);
  if (n == 0 || (head_->len >= n && !head_->ext)) return head_->data();
  // Gather into the first segment if it has room (and is our own), else
  // into a new one.
  PktSeg* dst = head_;
  if (dst->ext || dst->cap - dst->off < n) {
    PktSeg* s = pool_->get(n + kPktHeadroom);
    if (!s) return err(ENOBUFS);
    s->off = static_cast<uint32_t>(kPktHeadroom);
    s->next = head_;
    head_ = s;
    dst = s;
  }
  // Move bytes from the following segments into dst until it holds n.
  while (dst->len < n) {
    PktSeg* nx = dst->next;
    size_t take = n - dst->len;
    if (take > nx->len) take = nx->len;
    if (dst->tailroom() < take) {
      // Slide the data to the front of dst's buffer.
      std::memmove(dst->buf, dst->data(), dst->len);
      dst->off = 0;
    }
    std::memcpy(dst->data() + dst->len, static_cast<const PktSeg*>(nx)->data(), take);
    dst->len += static_cast<uint32_t>(take);
    nx->off += static_cast<uint32_t>(take);
    nx->len -= static_cast<uint32_t>(take);
    if (nx->len == 0) {
      dst->next = nx->next;
      if (tail_ == nx) tail_ = dst;
      pool_->put(nx);
    }
  }
  return dst->data();
}

void Pkt::trim_front(size_t n) {
  len_ -= n;
  while (n > 0 && head_) {
    if (head_->len > n) {
      head_->off += static_cast<uint32_t>(n);
      head_->len -= static_cast<uint32_t>(n);
      return;
    }
    n -= head_->len;
    // Keep one (empty) segment so that prepend has a place.
    if (!head_->next) {
      head_->off += head_->len;
      head_->len = 0;
      return;
    }
    PktSeg* s = head_;
    head_ = s->next;
    pool_->put(s);
  }
}

void Pkt::trim_back(size_t n) {
  size_t keep = len_ - n;
  len_ = keep;
  PktSeg* s = head_;
  while (s) {
    if (s->len >= keep) {
      s->len = static_cast<uint32_t>(keep);
      PktSeg* rest = s->next;
      s->next = nullptr;
      tail_ = s;
      while (rest) {
        PktSeg* nx = rest->next;
        pool_->put(rest);
        rest = nx;
      }
      return;
    }
    keep -= s->len;
    s = s->next;
  }
}

Result<void> Pkt::append(const void* src, size_t n) {
  const char* from = static_cast<const char*>(src);
  while (n > 0) {
    if (!tail_ || tail_->tailroom() == 0) {
      PktSeg* s = pool_->get(n <= kPktSegData ? kPktSegData : n);
      if (!s) return err(ENOBUFS);
      push_seg(s);
    }
    size_t take = tail_->tailroom() < n ? tail_->tailroom() : n;
    std::memcpy(tail_->data() + tail_->len, from, take);
    tail_->len += static_cast<uint32_t>(take);
    len_ += take;
    from += take;
    n -= take;
  }
  return {};
}

Result<void> Pkt::append_uio(Uio& uio, size_t n) {
  while (n > 0) {
    if (!tail_ || tail_->tailroom() == 0) {
      PktSeg* s = pool_->get(n <= kPktSegData ? kPktSegData : n);
      if (!s) return err(ENOBUFS);
      push_seg(s);
    }
    size_t take = tail_->tailroom() < n ? tail_->tailroom() : n;
    TRY(uio.copyin(tail_->data() + tail_->len, take));
    tail_->len += static_cast<uint32_t>(take);
    len_ += take;
    n -= take;
  }
  return {};
}

Result<void> Pkt::append_ext(const void* data, size_t n, void (*release)(void*), void* arg) {
  if (n == 0) {
    if (release) release(arg);
    return {};
  }
  void* mem = pool_->kmem().alloc(sizeof(PktSeg));
  if (!mem) return err(ENOBUFS);
  auto* s = new (mem) PktSeg();
  s->ext = static_cast<const char*>(data);
  s->len = static_cast<uint32_t>(n);
  s->release = release;
  s->arg = arg;
  push_seg(s);
  len_ += n;
  return {};
}

int Pkt::pieces(size_t off, const char** ptr, size_t* len, int max) const {
  int k = 0;
  for (const PktSeg* s = head_; s; s = s->next) {
    if (off >= s->len) {
      off -= s->len;
      continue;
    }
    if (k == max) return -1;
    ptr[k] = s->data() + off;
    len[k] = s->len - off;
    k++;
    off = 0;
  }
  return k;
}

void Pkt::copy_out(size_t off, size_t n, void* dst) const {
  char* to = static_cast<char*>(dst);
  for (const PktSeg* s = head_; s && n > 0; s = s->next) {
    if (off >= s->len) {
      off -= s->len;
      continue;
    }
    size_t take = s->len - off < n ? s->len - off : n;
    std::memcpy(to, s->data() + off, take);
    to += take;
    n -= take;
    off = 0;
  }
}

Result<void> Pkt::copyout_uio(size_t off, size_t n, Uio& uio) const {
  for (const PktSeg* s = head_; s && n > 0; s = s->next) {
    if (off >= s->len) {
      off -= s->len;
      continue;
    }
    size_t take = s->len - off < n ? s->len - off : n;
    TRY(uio.copyout(s->data() + off, take));
    n -= take;
    off = 0;
  }
  return {};
}

void Pkt::copy_in(size_t off, size_t n, const void* src) {
  const char* from = static_cast<const char*>(src);
  for (PktSeg* s = head_; s && n > 0; s = s->next) {
    if (off >= s->len) {
      off -= s->len;
      continue;
    }
    size_t take = s->len - off < n ? s->len - off : n;
    // Borrowed bytes are never written (callers write headers only).
    if (!s->ext) std::memcpy(s->data() + off, from, take);
    from += take;
    n -= take;
    off = 0;
  }
}

Result<Pkt*> Pkt::copy(size_t off, size_t n, size_t headroom) const {
  Pkt* p = TRY(alloc(*pool_, n, headroom));
  // alloc made the data contiguous only when it fits one segment.
  if (p->head_ == p->tail_) {
    copy_out(off, n, p->head_->data());
  } else {
    size_t done = 0;
    for (PktSeg* s = p->head_; s; s = s->next) {
      copy_out(off + done, s->len, s->data());
      done += s->len;
    }
  }
  p->meta = meta;
  return p;
}

void Pkt::concat(Pkt* tail) {
  if (tail->head_) {
    if (tail_) tail_->next = tail->head_;
    else head_ = tail->head_;
    tail_ = tail->tail_;
    len_ += tail->len_;
  }
  tail->head_ = tail->tail_ = nullptr;
  tail->len_ = 0;
  free(tail);
}

void pkt_list_free(PktList& l) {
  l.clear_and_dispose([](Pkt* p) { Pkt::free(p); });
}

// --- checksums

uint32_t in_cksum_add(uint32_t sum, const void* p, size_t n, bool odd) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint64_t acc = 0;
  // An odd start: this range's first byte is the low byte of a word.
  if (odd && n > 0) {
    acc += b[0];
    b++;
    n--;
  }
  while (n >= 8) {
    uint32_t w0, w1;
    std::memcpy(&w0, b, 4);
    std::memcpy(&w1, b + 4, 4);
    acc += ntohl(w0);
    acc += ntohl(w1);
    b += 8;
    n -= 8;
  }
  while (n >= 2) {
    acc += static_cast<uint32_t>(b[0] << 8 | b[1]);
    b += 2;
    n -= 2;
  }
  if (n) acc += static_cast<uint32_t>(b[0] << 8);
  acc += sum;
  while (acc >> 32) acc = (acc & 0xffffffff) + (acc >> 32);
  uint32_t r = static_cast<uint32_t>(acc);
  // Keep the accumulator small enough for further adds without overflow.
  r = (r & 0xffff) + (r >> 16);
  return r;
}

uint16_t in_cksum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

uint32_t pkt_cksum_add(const Pkt& p, size_t off, size_t n, uint32_t sum) {
  size_t done = 0;
  for (const PktSeg* s = p.first(); s && n > 0; s = s->next) {
    if (off >= s->len) {
      off -= s->len;
      continue;
    }
    size_t take = s->len - off < n ? s->len - off : n;
    sum = in_cksum_add(sum, s->data() + off, take, done & 1);
    done += take;
    n -= take;
    off = 0;
  }
  return sum;
}

uint16_t in_cksum_update16(uint16_t cksum, uint16_t old_word, uint16_t new_word) {
  // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')
  uint32_t s = static_cast<uint16_t>(~cksum) + static_cast<uint16_t>(~old_word) + static_cast<uint32_t>(new_word);
  return in_cksum_fold(s);
}

uint16_t in_cksum_update32(uint16_t cksum, uint32_t old_word, uint32_t new_word) {
  uint16_t c = in_cksum_update16(cksum, static_cast<uint16_t>(old_word >> 16), static_cast<uint16_t>(new_word >> 16));
  return in_cksum_update16(c, static_cast<uint16_t>(old_word), static_cast<uint16_t>(new_word));
}

uint32_t in_pseudo4(uint32_t src, uint32_t dst, uint8_t proto, uint32_t len) {
  uint64_t s = 0;
  uint32_t hs = ntohl(src), hd = ntohl(dst);
  s += (hs >> 16) + (hs & 0xffff) + (hd >> 16) + (hd & 0xffff);
  s += proto;
  s += (len >> 16) + (len & 0xffff);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint32_t>(s);
}

uint32_t in_pseudo6(const uint8_t src[16], const uint8_t dst[16], uint8_t next, uint32_t len) {
  uint32_t s = in_cksum_add(0, src, 16);
  s = in_cksum_add(s, dst, 16);
  uint64_t t = s;
  t += (len >> 16) + (len & 0xffff) + next;
  while (t >> 16) t = (t & 0xffff) + (t >> 16);
  return static_cast<uint32_t>(t);
}

Result<void> pkt_csum_finish(Pkt& p) {
  if (p.meta.csum != kCsumPartial) return {};
  size_t start = p.meta.csum_start, field = start + p.meta.csum_offset;
  if (field + 2 > p.len() || start > p.len()) return err(EINVAL);
  // The field holds the pseudo-header sum: summing the whole transport
  // part over it gives the checksum.
  uint16_t c = in_cksum_fold(pkt_cksum_add(p, start, p.len() - start));
  // UDP sends an all-zero checksum as all ones (RFC 768); harmless for
  // the others, whose computed checksum is never 0 with a nonzero sum.
  if (c == 0) c = 0xffff;
  uint16_t be = htons(c);
  p.copy_in(field, 2, &be);
  p.meta.csum = kCsumNone;
  return {};
}

}  // namespace rump
