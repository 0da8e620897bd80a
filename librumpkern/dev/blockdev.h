// blockdev.h: the block-device interface disk file systems (ext2/3/4)
// mount on. A BlockDevice is a run of fixed-size blocks with synchronous
// block reads and writes and a cache flush; today's provider is a window
// of a host file (etfs RUMP_ETFS_BLK, HostBlockDevice) doing its I/O
// through rumpuser_iovread and rumpuser_iovwrite. The calls block (the
// CPU is released while the host does the I/O); a file system makes them
// under its tree lock.
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
  // Everything written so far has reached the device, not necessarily
  // its stable storage: the error of a write the device held back (a
  // gathered one) comes here at the latest.
  virtual Result<void> drain() { return {}; }

 private:
  Result<void> per_segment(bool write, uint64_t blkno, const Segment* iov, size_t n);
};

// A window [begin, begin + size) of a host file or device, opened by the
// caller (fd stays the caller's).
//
// Small writes are gathered: a write of less than kGatherMax bytes that
// continues the pending run (or starts one) is copied into a buffer of
// kGatherBytes, which goes to the host in one request when a write does
// not continue it, when it is full, before a read that overlaps it, and
// at sync() and destruction. Writes thus reach the host in the order they
// were made (a prefix of them, if the process dies: what a file system
// that orders its writes survives), and a file system's many small runs
// (one per file written back, one per metadata block) cost one host call
// per kGatherBytes instead of one each. A full buffer goes to the host
// asynchronously (rumpuser_bio, on the host's I/O threads, so that the
// host's copy overlaps the kernel's work) while a second buffer fills;
// every other host request, and the next send, waits for it first, so
// the order holds. A run shorter than kAsyncMin that cannot wait for more
// goes at once on the calling thread instead: for it the hand-over to an
// I/O thread and the wait for it cost more than the copy it overlaps (an
// unmount's checkpoint, about 200 runs of 30 KB on average, took 21-23 ms
// handed over and 7 ms written at once). A write error of gathered bytes
// is reported by the call that sent them or, for an asynchronous send, by
// the next call that waits for it.
//
// kGatherBytes is 2 MiB: populating an image with 20,000 files, the
// last closes' write-back took 50-60 ms a pass with it against 75-85 ms
// with 1 MiB (half as many hand-overs, and files up to 512 KiB
// gathered); 4 MiB gained nothing more.
//
// Every kHintBytes written, the host is told to write the window back to
// its storage and flush it (a RUMPUSER_BIO_WRITEBACK request, run by the
// host's I/O threads while the kernel goes on), so that the next sync()
// waits for little more than the last batch: on a host whose storage
// caches writes, the flush that ends a sync costs as much as the bytes
// written since the last flush (populating an image, the unmount's sync
// fell from 110-130 ms to 13-25 ms). One hint is in flight at a time;
// the destructor waits for it (the fd is closed after).
class HostBlockDevice : public BlockDevice, public KObject {
 public:
  HostBlockDevice(Kmem& kmem, int fd, uint64_t begin, uint64_t size, bool read_only)
      : kmem_(kmem), fd_(fd), begin_(begin), size_(size), read_only_(read_only) {}
  ~HostBlockDevice() override;
  uint32_t block_size() const override { return kBlockBytes; }
  uint64_t size() const override { return size_; }
  Result<void> read_blocks(uint64_t blkno, void* buf, size_t count) override;
  Result<void> write_blocks(uint64_t blkno, const void* buf, size_t count) override;
  Result<void> read_blocksv(uint64_t blkno, const Segment* iov, size_t n) override;
  Result<void> write_blocksv(uint64_t blkno, const Segment* iov, size_t n) override;
  Result<void> sync() override;
  // Sends the gathered writes to the host file now, without a sync (for
  // I/O on the same file past the device, the etfs node's own read and
  // write, and for drain()).
  Result<void> send_gathered_writes() {
    MutexLocker g(gather_m_);
    return send_gathered();
  }
  Result<void> drain() override { return send_gathered_writes(); }

  static constexpr uint32_t kBlockBytes = 512;
  static constexpr uint64_t kHintBytes = uint64_t{16} << 20;
  static constexpr size_t kGatherBytes = size_t{1} << 21;
  static constexpr size_t kGatherMax = kGatherBytes / 4;
  static constexpr size_t kAsyncMin = kGatherBytes / 8;

 private:
  // Gathers the write of n segments (bytes in all) at blkno, or sends
  // the pending run and returns false (the caller writes it itself).
  Result<bool> gather(uint64_t blkno, const Segment* iov, size_t n, uint64_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(gather_m_);
  // Sends the pending run, if any: async (unless shorter than kAsyncMin),
  // through the I/O threads (the buffers swap), else at once. Waits for a
  // send in flight first.
  Result<void> send_gathered(bool async = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(gather_m_);
  // Waits for the asynchronous send in flight, if any: its error.
  Result<void> wait_sent() ABSL_EXCLUSIVE_LOCKS_REQUIRED(gather_m_);
  // Sends the pending run if it overlaps [blkno, blkno + bytes).
  Result<void> send_if_overlapping(uint64_t blkno, uint64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(gather_m_);
  // blkno and bytes lie inside the window.
  bool in_window(uint64_t blkno, uint64_t bytes) const {
    return blkno <= size_ / kBlockBytes && bytes <= size_ - blkno * kBlockBytes;
  }
  Result<void> iov_io(bool write, uint64_t blkno, const Segment* iov, size_t n);
  // bytes reached the host: a write-back hint when kHintBytes gathered.
  void wrote(uint64_t bytes);

  // One asynchronous host request (rumpuser_bio) at a time: in flight
  // from start() until done(), which runs on a host I/O thread holding no
  // CPU and so touches only the raw hypercall primitives.
  struct BioSlot {
    Mutex m;
    CondVar cv;
    bool busy ABSL_GUARDED_BY(m) = false;
    size_t bytes ABSL_GUARDED_BY(m) = 0;
    int error ABSL_GUARDED_BY(m) = 0;
    // Marks a request in flight: false if one is already.
    bool start();
    static void done(void* arg, size_t bytes, int error);
    // Waits until none is in flight; the last one's bytes and error.
    void wait(size_t* bytes_out, int* error_out);
  };

  Kmem& kmem_;
  int fd_;
  uint64_t begin_, size_;
  // The pending run: gather_len_ bytes from block gather_blk_ in gather_
  // (kGatherBytes, allocated at the first gathered write). Held across
  // the host calls that send it, so requests reach the host in order.
  Mutex gather_m_;
  std::byte* gather_ ABSL_GUARDED_BY(gather_m_) = nullptr;
  uint64_t gather_blk_ ABSL_GUARDED_BY(gather_m_) = 0;
  size_t gather_len_ ABSL_GUARDED_BY(gather_m_) = 0;
  // The other buffer: the one an asynchronous send (send_) holds while
  // in flight, else free. sending_: a send was made whose result nobody
  // has collected yet (wait_sent); send_len_ its length.
  std::byte* spare_ ABSL_GUARDED_BY(gather_m_) = nullptr;
  bool sending_ ABSL_GUARDED_BY(gather_m_) = false;
  size_t send_len_ ABSL_GUARDED_BY(gather_m_) = 0;
  BioSlot send_;
  bool read_only_;
  std::atomic<uint64_t> unhinted_{0};  // bytes written since the last hint
  BioSlot hint_;  // the write-back hint in flight
};

// The block device behind a vnode (an etfs block-device node), or
// nullptr. Valid while the vnode is referenced.
BlockDevice* block_device_of(Vnode& vp);

}  // namespace rump
