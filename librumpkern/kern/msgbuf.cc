// The kernel message buffer (a ring).
#include "kern/msgbuf.h"

#include <cstring>

namespace rump {

Result<Msgbuf*> Msgbuf::create(Kmem& kmem) {
  Msgbuf* m = new (kmem) Msgbuf();
  if (!m) return err(ENOMEM);
  m->buf_ = static_cast<char*>(kmem.alloc(kSize));
  if (!m->buf_) {
    delete m;
    return err(ENOMEM);
  }
  return m;
}

Msgbuf::~Msgbuf() { Kmem::free(buf_); }

void Msgbuf::append(const char* text, size_t len) {
  SpinLocker g(lock_);
  if (len > kSize) {
    text += len - kSize;
    len = kSize;
  }
  size_t first = kSize - head_ < len ? kSize - head_ : len;
  std::memcpy(buf_ + head_, text, first);
  std::memcpy(buf_, text + first, len - first);
  head_ = (head_ + len) % kSize;
  len_ = len_ + len > kSize ? kSize : len_ + len;
}

size_t Msgbuf::read(char* out, size_t len) const {
  SpinLocker g(lock_);
  size_t start = (head_ + kSize - len_) % kSize;
  if (len == 0) return len_;
  size_t n = len_ < len - 1 ? len_ : len - 1;
  for (size_t i = 0; i < n; i++) out[i] = buf_[(start + i) % kSize];
  out[n] = '\0';
  return len_;
}

size_t Msgbuf::length() const {
  SpinLocker g(lock_);
  return len_;
}

}  // namespace rump
