// pipe.h: pipes and FIFOs. A Pipe is a 64 KiB ring buffer (Linux's default
// capacity) with reader and writer counts; pipe(2) makes one with two
// Files, and a FIFO vnode gets one attached (Vnode::fifo_) while any
// description of it is open (the special-file hook for VType::kFifo).
//
// Semantics are Linux's: writes of at most PIPE_BUF (4096) bytes are
// atomic; a write with no reader is EPIPE and SIGPIPE to the writer's
// process; a read with no writer left returns 0 (EOF) once the buffer is
// empty; O_NONBLOCK gives EAGAIN instead of sleeping; sleeps are
// interruptible (EINTR, or the bytes already written). FIFO opens block
// until the other side arrives (O_RDONLY waits for a writer, O_WRONLY for
// a reader), except O_NONBLOCK (read-open succeeds at once, write-open
// with no reader is ENXIO) and O_RDWR (never blocks).
//
// Locking: Pipe::lock_ (rank kSocket) guards the buffer, the counts and the
// wait queue. User memory is touched under it only when the caller's
// space is the host's (a plain memory copy that cannot reach the vm
// faction's locks); isolated spaces go through a kernel bounce buffer
// copied outside the lock. Pipe::fifo_opens_ is guarded by the FIFO
// vnode's tree lock, so an open never finds a pipe that is going away.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"
#include "sync/mutex.h"
#include "vfs/file.h"
#include "vfs/poll.h"

namespace rump {

class Lwp;

class Pipe : public KObject, public RefCounted<Pipe> {
 public:
  static constexpr size_t kCapacity = 64 * 1024;
  static constexpr size_t kPipeBuf = 4096;

  explicit Pipe(Kmem& k) : kmem_(k) {}
  ~Pipe();
  static Result<Ref<Pipe>> create(Kmem& k);

  Result<size_t> read(Lwp& l, Uio& uio, bool nonblock);
  Result<size_t> write(Lwp& l, Uio& uio, bool nonblock);
  // writers_seen: the writer generation a FIFO read end was opened at
  // (File::pipe_writers_seen_): no POLLHUP while no writer came since.
  short poll(bool rd, bool wr, uint64_t writers_seen, short events, PollTable* pt);
  size_t nread();
  // A description of this pipe opened (pipe(2)) or closed one end.
  void open_ends(bool rd, bool wr);
  void close_ends(bool rd, bool wr);
  // FIFO open: counts the ends in, then waits for the other side as the
  // open rules say. On failure the ends are counted out again. Returns the
  // writer generation a non-blocking read-only open found with no writer
  // (for poll), else 0.
  Result<uint64_t> fifo_open(Lwp& l, int flags);

  // Opens of the FIFO vnode this pipe is attached to; guarded by that
  // vnode's tree lock.
  int fifo_opens_ = 0;

  // What fstat of a pipe(2) end reports: the creator, the creation time
  // and a number unique among the kernel's pipes. Set once, at creation.
  uid_t owner_uid_ = 0;
  gid_t owner_gid_ = 0;
  uint64_t ino_ = 0;
  int64_t ctime_ns_ = 0;

 private:
  friend class RefCounted<Pipe>;
  void last_unref() { delete this; }
  void wake_readers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void wake_writers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Moves n bytes between the ring and uio (or a kernel buffer).
  Result<void> put_locked(Uio* uio, const char* kbuf, size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  Result<void> get_locked(Uio* uio, char* kbuf, size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);

  Kmem& kmem_;
  Mutex lock_{LockRank::kSocket};
  CondVar rcv_;  // readers: data, or a writer arriving (FIFO open)
  CondVar wcv_;  // writers: room, or a reader arriving (FIFO open)
  WaitQueue wq_{lock_};
  char* buf_ ABSL_GUARDED_BY(lock_) = nullptr;  // kCapacity bytes, at the first write
  size_t head_ ABSL_GUARDED_BY(lock_) = 0;      // first unread byte
  size_t len_ ABSL_GUARDED_BY(lock_) = 0;
  int readers_ ABSL_GUARDED_BY(lock_) = 0;
  int writers_ ABSL_GUARDED_BY(lock_) = 0;
  int rwait_ ABSL_GUARDED_BY(lock_) = 0;  // sleepers on rcv_ / wcv_
  int wwait_ ABSL_GUARDED_BY(lock_) = 0;
  uint64_t r_counter_ ABSL_GUARDED_BY(lock_) = 0;  // read-opens so far (FIFO)
  uint64_t w_counter_ ABSL_GUARDED_BY(lock_) = 0;  // write-opens so far: the writer generation
};

// The FileOps of pipe ends and open FIFOs (File::data_ is the Pipe).
extern const FileOps& kPipeFileOps;

}  // namespace rump
