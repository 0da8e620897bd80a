// HostBlockDevice: block I/O on a window of a host file through the
// asynchronous rumpuser_bio hypercall, waited for synchronously, and
// vectored I/O through rumpuser_iovread/rumpuser_iovwrite.
#include "dev/blockdev.h"

#include <rump/rumpuser.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>

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

HostBlockDevice::~HostBlockDevice() {
  MutexLocker g(hint_m_);
  while (hint_busy_) hint_cv_.wait(hint_m_);
}

void HostBlockDevice::hint_done(void* arg, size_t, int) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  auto* d = static_cast<HostBlockDevice*>(arg);
  rumpuser_mutex_enter_nowrap(d->hint_m_.raw());
  d->hint_busy_ = false;
  rumpuser_cv_signal(d->hint_cv_.raw());
  rumpuser_mutex_exit(d->hint_m_.raw());
}

void HostBlockDevice::wrote(uint64_t bytes) {
  if (unhinted_.fetch_add(bytes, std::memory_order_relaxed) + bytes < kHintBytes) return;
  {
    MutexLocker g(hint_m_);
    if (hint_busy_) return;  // the next write past the mark tries again
    hint_busy_ = true;
  }
  unhinted_.store(0, std::memory_order_relaxed);
  rumpuser_bio(fd_, RUMPUSER_BIO_WRITEBACK, nullptr, size_, static_cast<int64_t>(begin_), &HostBlockDevice::hint_done,
               this);
}

Result<void> HostBlockDevice::read_blocks(uint64_t blkno, void* buf, size_t count) {
  return io(RUMPUSER_BIO_READ, blkno, buf, count);
}

Result<void> HostBlockDevice::write_blocks(uint64_t blkno, const void* buf, size_t count) {
  if (read_only_) return err(EROFS);
  TRY(io(RUMPUSER_BIO_WRITE, blkno, const_cast<void*>(buf), count));
  wrote(uint64_t{count} * kBlockBytes);
  return {};
}

Result<void> BlockDevice::per_segment(bool write, uint64_t blkno, const Segment* iov, size_t n) {
  for (size_t i = 0; i < n; i++) {
    size_t count = iov[i].len / block_size();
    TRY(write ? write_blocks(blkno, iov[i].base, count) : read_blocks(blkno, iov[i].base, count));
    blkno += count;
  }
  return {};
}

Result<void> BlockDevice::read_blocksv(uint64_t blkno, const Segment* iov, size_t n) {
  return per_segment(false, blkno, iov, n);
}

Result<void> BlockDevice::write_blocksv(uint64_t blkno, const Segment* iov, size_t n) {
  return per_segment(true, blkno, iov, n);
}

static_assert(sizeof(BlockDevice::Segment) == sizeof(rumpuser_iovec) &&
              offsetof(BlockDevice::Segment, base) == offsetof(rumpuser_iovec, iov_base) &&
              offsetof(BlockDevice::Segment, len) == offsetof(rumpuser_iovec, iov_len));

Result<void> HostBlockDevice::iov_io(bool write, uint64_t blkno, const Segment* iov, size_t n) {
  // The host takes at most IOV_MAX (1024) segments per call.
  constexpr size_t kMaxSegments = 1024;
  while (n > 0) {
    size_t k = std::min(n, kMaxSegments);
    uint64_t bytes = 0;
    for (size_t i = 0; i < k; i++) bytes += iov[i].len;
    if (blkno > size_ / kBlockBytes || bytes > size_ - blkno * kBlockBytes) return err(EINVAL);
    size_t done = 0;
    auto* v = const_cast<rumpuser_iovec*>(reinterpret_cast<const rumpuser_iovec*>(iov));
    int64_t at = static_cast<int64_t>(begin_ + blkno * kBlockBytes);
    int e = write ? rumpuser_iovwrite(fd_, v, k, at, &done) : rumpuser_iovread(fd_, v, k, at, &done);
    if (e) return err(e);
    if (done != bytes) return err(EIO);
    if (write) wrote(bytes);
    blkno += bytes / kBlockBytes;
    iov += k;
    n -= k;
  }
  return {};
}

Result<void> HostBlockDevice::read_blocksv(uint64_t blkno, const Segment* iov, size_t n) {
  return iov_io(false, blkno, iov, n);
}

Result<void> HostBlockDevice::write_blocksv(uint64_t blkno, const Segment* iov, size_t n) {
  if (read_only_) return err(EROFS);
  return iov_io(true, blkno, iov, n);
}

Result<void> HostBlockDevice::sync() {
  return from_errno(rumpuser_syncfd(fd_, RUMPUSER_SYNCFD_WRITE | RUMPUSER_SYNCFD_SYNC, 0, 0));
}

}  // namespace rump
