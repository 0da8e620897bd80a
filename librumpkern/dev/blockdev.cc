// HostBlockDevice: block I/O on a window of a host file through
// rumpuser_iovread/rumpuser_iovwrite on the calling thread (which gives its
// virtual CPU back meanwhile), small writes gathered, and write-back hints
// through the asynchronous rumpuser_bio hypercall.
#include "dev/blockdev.h"

#include <rump/rumpuser.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "sync/mutex.h"

namespace rump {

namespace {

uint64_t segments_bytes(const BlockDevice::Segment* iov, size_t n) {
  uint64_t bytes = 0;
  for (size_t i = 0; i < n; i++) bytes += iov[i].len;
  return bytes;
}

}  // namespace

HostBlockDevice::~HostBlockDevice() {
  {
    // An error here has nobody to go to: a file system syncs its device
    // before it lets go of it, and sync() reports it.
    MutexLocker g(gather_m_);
    (void)send_gathered();
    (void)wait_sent();
    Kmem::free(gather_);
    Kmem::free(spare_);
    gather_ = spare_ = nullptr;
  }
  hint_.wait(nullptr, nullptr);
}

bool HostBlockDevice::BioSlot::start() {
  MutexLocker g(m);
  if (busy) return false;
  busy = true;
  return true;
}

void HostBlockDevice::BioSlot::done(void* arg, size_t bytes, int error) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  auto* s = static_cast<BioSlot*>(arg);
  rumpuser_mutex_enter_nowrap(s->m.raw());
  s->bytes = bytes;
  s->error = error;
  s->busy = false;
  rumpuser_cv_signal(s->cv.raw());
  rumpuser_mutex_exit(s->m.raw());
}

void HostBlockDevice::BioSlot::wait(size_t* bytes_out, int* error_out) {
  MutexLocker g(m);
  while (busy) cv.wait(m);
  if (bytes_out) *bytes_out = bytes;
  if (error_out) *error_out = error;
}

void HostBlockDevice::wrote(uint64_t bytes) {
  if (unhinted_.fetch_add(bytes, std::memory_order_relaxed) + bytes < kHintBytes) return;
  if (!hint_.start()) return;  // the next write past the mark tries again
  unhinted_.store(0, std::memory_order_relaxed);
  rumpuser_bio(fd_, RUMPUSER_BIO_WRITEBACK, nullptr, size_, static_cast<int64_t>(begin_), &BioSlot::done, &hint_);
}

Result<void> HostBlockDevice::wait_sent() {
  if (!sending_) return {};
  int e;
  size_t bytes;
  send_.wait(&bytes, &e);
  sending_ = false;
  if (e) return err(e);
  if (bytes != send_len_) return err(EIO);
  return {};
}

Result<void> HostBlockDevice::send_gathered(bool async) {
  TRY(wait_sent());
  if (gather_len_ == 0) return {};
  size_t len = gather_len_;
  gather_len_ = 0;
  if (len < kAsyncMin) async = false;
  if (async && spare_ == nullptr) spare_ = static_cast<std::byte*>(kmem_.alloc(kGatherBytes));
  if (!async || spare_ == nullptr) {
    Segment seg{gather_, len};
    return iov_io(true, gather_blk_, &seg, 1);
  }
  // The full buffer goes to an I/O thread; the spare one takes the next
  // writes.
  std::byte* full = gather_;
  gather_ = spare_;
  spare_ = full;
  (void)send_.start();  // none in flight: waited for above
  sending_ = true;
  send_len_ = len;
  rumpuser_bio(fd_, RUMPUSER_BIO_WRITE, full, len, static_cast<int64_t>(begin_ + gather_blk_ * kBlockBytes),
               &BioSlot::done, &send_);
  wrote(len);
  return {};
}

Result<void> HostBlockDevice::send_if_overlapping(uint64_t blkno, uint64_t bytes) {
  // Else a send in flight may hold these blocks: it ends first.
  uint64_t end = blkno + bytes / kBlockBytes, gend = gather_blk_ + gather_len_ / kBlockBytes;
  if (blkno < gend && gather_blk_ < end) return send_gathered();
  return wait_sent();
}

Result<bool> HostBlockDevice::gather(uint64_t blkno, const Segment* iov, size_t n, uint64_t bytes) {
  bool joins = gather_len_ > 0 && blkno == gather_blk_ + gather_len_ / kBlockBytes &&
               bytes <= kGatherBytes - gather_len_;
  if (!joins) {
    // What this write will not join goes now: asynchronously when this
    // write is gathered in turn (the spare buffer takes it), else at once,
    // before the caller's own write.
    TRY(send_gathered(bytes < kGatherMax));
    if (bytes >= kGatherMax) return false;
    if (gather_ == nullptr) {
      gather_ = static_cast<std::byte*>(kmem_.alloc(kGatherBytes));
      if (gather_ == nullptr) return false;  // written at once instead
    }
    gather_blk_ = blkno;
  }
  std::byte* at = gather_ + gather_len_;
  for (size_t i = 0; i < n; i++) {
    std::memcpy(at, iov[i].base, iov[i].len);
    at += iov[i].len;
  }
  gather_len_ += bytes;
  return true;
}

Result<void> HostBlockDevice::read_blocks(uint64_t blkno, void* buf, size_t count) {
  Segment seg{buf, count * kBlockBytes};
  return read_blocksv(blkno, &seg, 1);
}

Result<void> HostBlockDevice::write_blocks(uint64_t blkno, const void* buf, size_t count) {
  Segment seg{const_cast<void*>(buf), count * kBlockBytes};
  return write_blocksv(blkno, &seg, 1);
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
    uint64_t bytes = segments_bytes(iov, k);
    if (!in_window(blkno, bytes)) return err(EINVAL);
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
  {
    MutexLocker g(gather_m_);
    TRY(send_if_overlapping(blkno, segments_bytes(iov, n)));
  }
  return iov_io(false, blkno, iov, n);
}

Result<void> HostBlockDevice::write_blocksv(uint64_t blkno, const Segment* iov, size_t n) {
  if (read_only_) return err(EROFS);
  uint64_t bytes = segments_bytes(iov, n);
  if (!in_window(blkno, bytes)) return err(EINVAL);
  if (bytes == 0) return {};
  // Under gather_m_ also when written at once: after the pending run.
  MutexLocker g(gather_m_);
  if (TRY(gather(blkno, iov, n, bytes))) return {};
  return iov_io(true, blkno, iov, n);
}

Result<void> HostBlockDevice::sync() {
  {
    MutexLocker g(gather_m_);
    TRY(send_gathered());
  }
  return from_errno(rumpuser_syncfd(fd_, RUMPUSER_SYNCFD_WRITE | RUMPUSER_SYNCFD_SYNC, 0, 0));
}

}  // namespace rump
