// blockdev.h: the block-device interface disk file systems (a future
// ext2) mount on. A BlockDevice is a run of fixed-size blocks with
// synchronous block reads and writes and a cache flush; today's provider
// is a window of a host file (etfs RUMP_ETFS_BLK, HostBlockDevice) doing
// its I/O through rumpuser_bio. Callers hold no tree lock across these
// calls: they block (the CPU is released while the host does the I/O).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/kmem.h"
#include "base/result.h"

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
  // Everything written so far is on stable storage.
  virtual Result<void> sync() = 0;
};

// A window [begin, begin + size) of a host file or device, opened by the
// caller (fd stays the caller's).
class HostBlockDevice : public BlockDevice, public KObject {
 public:
  HostBlockDevice(int fd, uint64_t begin, uint64_t size, bool read_only)
      : fd_(fd), begin_(begin), size_(size), read_only_(read_only) {}
  uint32_t block_size() const override { return kBlockBytes; }
  uint64_t size() const override { return size_; }
  Result<void> read_blocks(uint64_t blkno, void* buf, size_t count) override;
  Result<void> write_blocks(uint64_t blkno, const void* buf, size_t count) override;
  Result<void> sync() override;

  static constexpr uint32_t kBlockBytes = 512;

 private:
  Result<void> io(int op, uint64_t blkno, void* buf, size_t count);
  int fd_;
  uint64_t begin_, size_;
  bool read_only_;
};

// The block device behind a vnode (an etfs block-device node), or
// nullptr. Valid while the vnode is referenced.
BlockDevice* block_device_of(Vnode& vp);

}  // namespace rump
