// pipe.h: pipes and FIFOs. A Pipe is a 64 KiB ring buffer (Linux's default
// capacity) with reader and writer counts; pipe(2) makes one with two
// Files, and a FIFO vnode gets one attached (Vnode::fifo_get) while any
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
// Locking: Pipe::lock_ (rank kSocket) guards the ring's indices, the
// counts and the wait queue, and is never held while bytes move: a reader
// marks itself busy (rbusy_), copies out of the committed bytes without
// the lock and then commits what it took; a writer marks itself busy
// (wbusy_), copies into the free space and then commits what it put. The
// two regions are disjoint, so one reader and one writer copy at the same
// time; readers take turns among themselves, as do writers. Copies go
// straight between the ring and user memory (host or isolated space: a
// fault cannot reach the pipe lock). Long transfers move in pieces of
// kPiece bytes, each committed (and made visible to the other side) on its
// own, so a 64 KiB write and the read draining it overlap.
//
// One copy: a reader that must wait for data on an empty ring offers its
// uio (DirectRead, vfs/file.h) while it waits, keeping its turn (rbusy_);
// a writer that finds the ring empty and the offer there copies from its
// buffer straight into the reader's, with no copy through the ring, and
// wakes it, if one of the two is in the host's address space (the other
// may be isolated: uio_move reaches it through its space).
// The rest of the write, if the reader asked for less, goes into the ring.
// Only writes of more than PIPE_BUF bytes go straight (no atomicity to
// keep, and a copy saved that is worth the reader's hand-shake). Such a
// blocking write that finds the ring empty and no offer spins for one
// first (ospin_, adaptive), as a socket sender does (net/socket.h).
//
// Waiting: a reader or writer that must wait first spins briefly on gen_
// (Lwp::spin_wait), which every change of the pipe's state bumps, and
// sleeps on its condition variable only when the spin ran out; the spin's
// length adapts per pipe and side (SpinBudget, kern/spin_budget.h, as for
// sockets), so a loaded host or an idle pipe mostly sleeps. A peer busy in the pipe thus hands over without
// a host wake-up. Sleepers and pollers are told once per read or write
// call (a writer that must wait tells them first), not per piece, and a
// condition variable is signalled only when someone sleeps on it, after
// the lock is dropped where the caller goes on without it.
//
// The count of a FIFO's opens is the vnode's (Vnode::fifo_get/fifo_put),
// under its tree lock, so an open never finds a pipe that is going away.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"
#include "kern/spin_budget.h"
#include "sync/mutex.h"
#include "vfs/file.h"
#include "vfs/poll.h"

namespace rump {

class Lwp;

class Pipe : public KObject, public RefCounted<Pipe> {
 public:
  static constexpr size_t kCapacity = 64 * 1024;
  static constexpr size_t kPipeBuf = 4096;

  // Who made a pipe(2) and when (a FIFO's pipe reports its vnode's).
  struct Origin {
    uid_t uid = 0;
    gid_t gid = 0;
    int64_t ctime_ns = 0;
  };

  Pipe(Kmem& k, const Origin& o)
      : owner_uid_(o.uid), owner_gid_(o.gid), ino_(reinterpret_cast<uintptr_t>(this) >> 4),
        ctime_ns_(o.ctime_ns), kmem_(k) {}
  ~Pipe();
  static Result<Ref<Pipe>> create(Kmem& k, const Origin& o);
  static Result<Ref<Pipe>> create(Kmem& k);  // a FIFO's: no origin

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

  // What fstat of a pipe(2) end reports: the creator, the creation time
  // and a number unique among the live pipes (from the address). Fixed by
  // the constructor, before any other thread can see the pipe, and never
  // changed (const): read without a lock, so no lock guards them.
  const uid_t owner_uid_;
  const gid_t owner_gid_;
  const uint64_t ino_;
  const int64_t ctime_ns_;

 private:
  friend class RefCounted<Pipe>;
  // The most one reader or writer moves between two commits.
  static constexpr size_t kPiece = 16 * 1024;
  void last_unref() { delete this; }
  // Records a change of the pipe's state for spinners (gen_ moves).
  void bump_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // The same, and pollers are woken. Sleepers are the caller's business
  // (rwait_/wwait_).
  void changed_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Wakes pollers (wq_, whose lock is lock_).
  void wake_pollers_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Waits for the next change of the pipe's state (spin, then sleep on cv;
  // nwait counts the sleepers on cv). 0 (re-check), or EINTR.
  // spin is the side's spin budget (kern/spin_budget.h), adapted there.
  int wait_locked(Lwp& l, CondVar& cv, int& nwait, SpinBudget& spin) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // FIFO open, one side: sleeps on my_cv (my_waiters counts the sleepers)
  // until the other side's open counter moves. 0, or EINTR with my_ends
  // (the caller's count of its own side) taken back.
  int wait_for_partner(Lwp& l, const uint64_t& their_opens, CondVar& my_cv, int& my_waiters, int& my_ends,
                       CondVar& their_cv, const int& their_waiters) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);

  Kmem& kmem_;
  Mutex lock_{LockRank::kSocket};
  CondVar rcv_;  // readers: data, the reader's turn, or a writer arriving (FIFO open)
  CondVar wcv_;  // writers: room, the writer's turn, or a reader arriving (FIFO open)
  WaitQueue wq_{lock_};
  // Bumped (under lock_) at every change a reader or writer may wait for;
  // read without the lock by spinners.
  std::atomic<uint32_t> gen_{0};
  // kCapacity bytes, allocated at the first write, then fixed until the
  // pipe goes: read under the lock, used by busy readers and writers
  // without it.
  char* buf_ ABSL_GUARDED_BY(lock_) = nullptr;
  size_t head_ ABSL_GUARDED_BY(lock_) = 0;  // first unread byte
  size_t len_ ABSL_GUARDED_BY(lock_) = 0;   // committed, unread bytes
  bool rbusy_ ABSL_GUARDED_BY(lock_) = false;  // a reader is copying out
  bool wbusy_ ABSL_GUARDED_BY(lock_) = false;  // a writer is copying in
  // A reader waiting on an empty ring offers its uio (vfs/file.h); it
  // holds rbusy_ meanwhile. A writer that finds the ring empty copies
  // into it straight from its own uio, holding wbusy_.
  DirectRead* rdirect_ ABSL_GUARDED_BY(lock_) = nullptr;
  int readers_ ABSL_GUARDED_BY(lock_) = 0;
  int writers_ ABSL_GUARDED_BY(lock_) = 0;
  int rwait_ ABSL_GUARDED_BY(lock_) = 0;  // sleepers on rcv_ / wcv_
  int wwait_ ABSL_GUARDED_BY(lock_) = 0;
  SpinBudget rspin_ ABSL_GUARDED_BY(lock_);  // of readers / writers
  SpinBudget wspin_ ABSL_GUARDED_BY(lock_);
  SpinBudget ospin_ ABSL_GUARDED_BY(lock_);  // of writers spinning for a reader's offer
  uint64_t r_counter_ ABSL_GUARDED_BY(lock_) = 0;  // read-opens so far (FIFO)
  uint64_t w_counter_ ABSL_GUARDED_BY(lock_) = 0;  // write-opens so far: the writer generation
};

// The FileOps of pipe ends and open FIFOs (File::data_ is the Pipe).
extern const FileOps& kPipeFileOps;

}  // namespace rump
