// msgbuf.h: the kernel message buffer.
//
// Kernel::printf appends here; the text can be read back through the C API
// (rump_msgbuf_read) and sysctl kern.msgbuf. A ring: when full, the oldest
// text goes. With RUMP_VERBOSE set, messages also reach the host console.
#pragma once

#include <cstddef>

#include "base/kmem.h"
#include "base/result.h"
#include "sync/mutex.h"

namespace rump {

class Msgbuf : public KObject {
 public:
  static constexpr size_t kSize = 16 * 1024;

  static Result<Msgbuf*> create(Kmem& kmem);
  ~Msgbuf();

  void append(const char* text, size_t len);
  // Copies out the buffer, oldest first, NUL-terminated (len > 0); returns
  // the full length of the text (which may exceed len).
  size_t read(char* out, size_t len) const;
  size_t length() const;

 private:
  Msgbuf() = default;
  mutable SpinLock lock_{LockRank::kMsgbuf};
  char* buf_ = nullptr;
  size_t head_ ABSL_GUARDED_BY(lock_) = 0;  // next write position
  size_t len_ ABSL_GUARDED_BY(lock_) = 0;   // bytes held (<= kSize)
};

}  // namespace rump
