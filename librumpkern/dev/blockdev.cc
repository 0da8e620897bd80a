// HostBlockDevice: block I/O on a window of a host file through the
// asynchronous rumpuser_bio hypercall, waited for synchronously.
#include "dev/blockdev.h"

#include <rump/rumpuser.h>

#include "sync/mutex.h"

namespace rump {

namespace {

// One request in flight. biodone runs on a host thread that holds no
// virtual CPU (or on the caller before rumpuser_bio returns), so it only
// touches the hypercall primitives, never the kernel's lock wrappers.
struct BioWait {
  Mutex m;
  CondVar cv;
  bool done = false;
  size_t bytes = 0;
  int error = 0;

  static void biodone(void* arg, size_t bytes, int error) {
    auto* w = static_cast<BioWait*>(arg);
    rumpuser_mutex_enter_nowrap(w->m.raw());
    w->bytes = bytes;
    w->error = error;
    w->done = true;
    rumpuser_cv_signal(w->cv.raw());
    rumpuser_mutex_exit(w->m.raw());
  }
};

}  // namespace

Result<void> HostBlockDevice::io(int op, uint64_t blkno, void* buf, size_t count) {
  uint64_t bytes = static_cast<uint64_t>(count) * kBlockBytes;
  if (blkno > size_ / kBlockBytes || bytes > size_ - blkno * kBlockBytes) return err(EINVAL);
  if (count == 0) return {};
  BioWait w;
  rumpuser_bio(fd_, op, buf, bytes, static_cast<int64_t>(begin_ + blkno * kBlockBytes), &BioWait::biodone, &w);
  {
    MutexLocker g(w.m);
    while (!w.done) w.cv.wait(w.m);
  }
  if (w.error) return err(w.error);
  if (w.bytes != bytes) return err(EIO);
  return {};
}

Result<void> HostBlockDevice::read_blocks(uint64_t blkno, void* buf, size_t count) {
  return io(RUMPUSER_BIO_READ, blkno, buf, count);
}

Result<void> HostBlockDevice::write_blocks(uint64_t blkno, const void* buf, size_t count) {
  if (read_only_) return err(EROFS);
  return io(RUMPUSER_BIO_WRITE, blkno, const_cast<void*>(buf), count);
}

Result<void> HostBlockDevice::sync() {
  return from_errno(rumpuser_syncfd(fd_, RUMPUSER_SYNCFD_WRITE | RUMPUSER_SYNCFD_SYNC, 0, 0));
}

}  // namespace rump
