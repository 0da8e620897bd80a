// blockdev.h: the block-device interface disk file systems (ext2/3/4)
// mount on. A BlockDevice is a run of fixed-size blocks with synchronous
// block reads and writes and a cache flush; today's provider is a window
// of a host file (etfs RUMP_ETFS_BLK, HostBlockDevice) doing its I/O
// through rumpuser_bio, vectored requests through rumpuser_iovread and
// rumpuser_iovwrite. The calls block (the CPU is released while the host
// does the I/O); a file system makes them under its tree lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/kmem.h"
#include "base/result.h"
#include "sync/mutex.h"

namespace rump {

class Vnode;

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;
  // Bytes per block (512) and the device's size in bytes.
  virtual uint32_t block_size() const = 0;
  virtual uint64_t size() const = 0;
  uint64_t nblocks() const { return size() / block_size(); }
  // count blocks from block blkno. EINVAL past the end, EIO on host
  // errors, EROFS writing a read-only device.
  virtual Result<void> read_blocks(uint64_t blkno, void* buf, size_t count) = 0;
  virtual Result<void> write_blocks(uint64_t blkno, const void* buf, size_t count) = 0;
  // The same for blocks from blkno on, to or from the n segments of iov
  // in turn (each a multiple of the block size long): a run of blocks
  // moves between the device and frames that are not contiguous in
  // memory (a file's cached pages) in one request. The default makes
  // one request per segment.
  struct Segment {
    void* base;
    size_t len;
  };
  virtual Result<void> read_blocksv(uint64_t blkno, const Segment* iov, size_t n);
  virtual Result<void> write_blocksv(uint64_t blkno, const Segment* iov, size_t n);
  // Everything written so far is on stable storage.
  virtual Result<void> sync() = 0;

 private:
  Result<void> per_segment(bool write, uint64_t blkno, const Segment* iov, size_t n);
};

// A window [begin, begin + size) of a host file or device, opened by the
// caller (fd stays the caller's).
//
// Every kHintBytes written, the host is told to start writing the window
// back to its storage (a RUMPUSER_BIO_WRITEBACK request, run by the host's
// I/O threads while the kernel goes on), so that the next sync() waits for
// little more than the last batch. One hint is in flight at a time; the
// destructor waits for it (the fd is closed after).
class HostBlockDevice : public BlockDevice, public KObject {
 public:
  HostBlockDevice(int fd, uint64_t begin, uint64_t size, bool read_only)
      : fd_(fd), begin_(begin), size_(size), read_only_(read_only) {}
  ~HostBlockDevice() override;
  uint32_t block_size() const override { return kBlockBytes; }
  uint64_t size() const override { return size_; }
  Result<void> read_blocks(uint64_t blkno, void* buf, size_t count) override;
  Result<void> write_blocks(uint64_t blkno, const void* buf, size_t count) override;
  Result<void> read_blocksv(uint64_t blkno, const Segment* iov, size_t n) override;
  Result<void> write_blocksv(uint64_t blkno, const Segment* iov, size_t n) override;
  Result<void> sync() override;

  static constexpr uint32_t kBlockBytes = 512;
  static constexpr uint64_t kHintBytes = uint64_t{8} << 20;

 private:
  Result<void> io(int op, uint64_t blkno, void* buf, size_t count);
  Result<void> iov_io(bool write, uint64_t blkno, const Segment* iov, size_t n);
  // bytes reached the host: a write-back hint when kHintBytes gathered.
  void wrote(uint64_t bytes);
  static void hint_done(void* arg, size_t, int);
  int fd_;
  uint64_t begin_, size_;
  bool read_only_;
  std::atomic<uint64_t> unhinted_{0};  // bytes written since the last hint
  // hint_busy_: a hint is in flight. Taken by hint_done on a host thread
  // holding no CPU (raw hypercall primitives, as BioWait in blockdev.cc).
  Mutex hint_m_;
  CondVar hint_cv_;
  bool hint_busy_ = false;
};

// The block device behind a vnode (an etfs block-device node), or
// nullptr. Valid while the vnode is referenced.
BlockDevice* block_device_of(Vnode& vp);

}  // namespace rump
