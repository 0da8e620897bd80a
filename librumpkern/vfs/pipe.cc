// Pipes and FIFOs: the ring buffer, its FileOps, and the special-file hook
// that attaches a Pipe to a FIFO vnode while it is open (see pipe.h).
#include "vfs/pipe.h"

#include <sys/sysmacros.h>

#include <fcntl.h>
#include <sys/poll.h>
#include <signal.h>
#include <sys/ioctl.h>


#include "kern/copy.h"
#include "kern/fork.h"
#include "kern/kernel.h"
#include "vfs/vfs.h"

namespace rump {

namespace {

// Moves n bytes between the ring (at offset at, wrapping) and uio. On a
// fault, uio.resid tells how much moved.
Result<void> ring_copyout(Uio& uio, const char* ring, size_t at, size_t n) {
  size_t first = n < Pipe::kCapacity - at ? n : Pipe::kCapacity - at;
  TRY(uio.copyout(ring + at, first));
  if (n > first) TRY(uio.copyout(ring, n - first));
  return {};
}

Result<void> ring_copyin(Uio& uio, char* ring, size_t at, size_t n) {
  size_t first = n < Pipe::kCapacity - at ? n : Pipe::kCapacity - at;
  TRY(uio.copyin(ring + at, first));
  if (n > first) TRY(uio.copyin(ring, n - first));
  return {};
}

size_t min3(size_t a, size_t b, size_t c) {
  size_t m = a < b ? a : b;
  return m < c ? m : c;
}

}  // namespace

Pipe::~Pipe() { Kmem::free(buf_); }

Result<Ref<Pipe>> Pipe::create(Kmem& k) { return create(k, Origin{}); }

Result<Ref<Pipe>> Pipe::create(Kmem& k, const Origin& o) {
  auto* p = new (k) Pipe(k, o);
  if (!p) return err(ENOMEM);
  return adopt_ref(p);
}

void Pipe::bump_locked() {
  // Only ever changed under lock_: a plain increment, published for the
  // spinners (their acquire load pairs with this release store).
  gen_.store(gen_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

void Pipe::changed_locked() {
  bump_locked();
  wake_pollers_locked();
}

void Pipe::wake_pollers_locked() {
  wq_.lock().assert_held();  // the queue's lock is lock_
  if (!wq_.empty()) wq_.wakeup();
}

int Pipe::wait_locked(Lwp& l, CondVar& cv, int& nwait, SpinBudget& spin) {
  if (spin.spin(l, lock_, gen_, gen_.load(std::memory_order_relaxed), -1)) return 0;
  nwait++;
  int e = l.sleep(cv, lock_, -1, true);
  nwait--;
  return e;
}

Result<size_t> Pipe::read(Lwp& l, Uio& uio, bool nonblock) {
  if (uio.resid == 0) return size_t{0};
  size_t got = 0;
  int error = 0;
  bool wake_writers = false;
  bool wake_readers = false;
  DirectRead direct(uio);
  bool offered = false;
  lock_.lock();
  // Our turn (no other reader copying) and data, or EOF; or, while we
  // offer our uio, a writer's bytes in it.
  for (;;) {
    if (offered) {
      if (direct.filled() || len_ > 0 || writers_ == 0) break;
    } else {
      if (!rbusy_ && (len_ > 0 || writers_ == 0)) break;
      if (nonblock && !rbusy_) {
        error = EAGAIN;
        break;
      }
      if (!rbusy_) {
        // The ring is empty and a writer is there: wait with the offer.
        rbusy_ = true;
        rdirect_ = &direct;
        offered = true;
        bump_locked();  // for a writer spinning for an offer
      }
    }
    // Another reader's turn ends soon; a non-blocking read waits for it
    // as it would for Linux's pipe mutex.
    if (int e = wait_locked(l, rcv_, rwait_, rspin_)) {
      error = e;
      break;
    }
  }
  if (offered) {
    // A writer copying into our uio finishes first (it wakes sleepers
    // when done); then the offer goes, and so does our turn.
    while (direct.claimed) {
      rwait_++;
      (void)l.sleep(rcv_, lock_, -1, false);
      rwait_--;
    }
    rdirect_ = nullptr;
    rbusy_ = false;
    got = direct.moved;
    if (got) error = 0;  // bytes read win over an interrupt
    else if (direct.error) error = direct.error;
    wake_readers = rwait_ > 0;  // the next reader's turn, if we leave
    bump_locked();
  }
  if (!error && len_ > 0 && uio.resid > 0) {
    rbusy_ = true;
    char* ring = buf_;
    // Take what is there, and what arrives meanwhile, up to what was asked.
    // Each piece is committed at once (a spinning writer may refill the
    // space already), sleepers and pollers are told once, at the end.
    while (uio.resid > 0 && len_ > 0) {
      size_t n = min3(uio.resid, len_, kPiece);
      size_t at = head_;
      lock_.unlock();
      size_t before = uio.resid;
      Result<void> r = ring_copyout(uio, ring, at, n);
      size_t moved = before - uio.resid;  // on a fault, what was copied is consumed (as Linux)
      lock_.lock();
      if (moved) {
        head_ = (head_ + moved) % kCapacity;
        len_ -= moved;
        got += moved;
        bump_locked();
      }
      if (!r.ok()) {
        if (got == 0) error = r.error();
        break;
      }
    }
    // An empty ring starts over at its beginning, unless a writer is
    // filling it at the current tail right now.
    if (len_ == 0 && !wbusy_) head_ = 0;
    rbusy_ = false;
    wake_readers = rwait_ > 0;  // the next reader's turn
    wake_writers = got && wwait_ > 0;
    changed_locked();
  }
  lock_.unlock();
  if (wake_writers) wcv_.broadcast();
  if (wake_readers) rcv_.broadcast();
  if (got == 0 && error) return err(error);
  return got;
}

Result<size_t> Pipe::write(Lwp& l, Uio& uio, bool nonblock) {
  size_t want = uio.resid;
  // At most PIPE_BUF bytes go in at once or not at all.
  size_t need = want <= kPipeBuf ? want : 1;
  size_t done = 0;
  int error = 0;
  bool sigpipe = false;
  bool told = true;  // sleeping readers and pollers know of every committed byte
  bool spun_for_offer = false;
  lock_.lock();
  if (want && !buf_ && readers_ > 0) {
    buf_ = static_cast<char*>(kmem_.alloc(kCapacity));
    if (!buf_) error = ENOMEM;
  }
  while (!error) {
    if (readers_ == 0) {
      sigpipe = true;
      error = EPIPE;
      break;
    }
    if (done == want) break;
    size_t room = kCapacity - len_;
    if (wbusy_ || room < need) {
      if (nonblock && !wbusy_) {
        error = EAGAIN;
        break;
      }
      // Before waiting, tell readers what is there (outside the lock, so
      // a woken reader does not block on it at once), then look again.
      if (!told) {
        told = true;
        wake_pollers_locked();
        if (rwait_ > 0) {
          lock_.unlock();
          rcv_.broadcast();
          lock_.lock();
          continue;
        }
      }
      if (int e = wait_locked(l, wcv_, wwait_, wspin_)) {
        error = e;
        break;
      }
      continue;
    }
    bool one_copy = want > kPipeBuf && len_ == 0;
    // (uio_move needs one of the two in the host's address space.)
    if (one_copy && rdirect_ && !rdirect_->claimed && !rdirect_->filled() &&
        (uio.direct() || rdirect_->uio->direct())) {
      // A reader waits with its uio: one copy, straight into it. Only
      // writes of more than PIPE_BUF bytes (no atomicity to keep, and a
      // copy saved that is worth the reader's hand-shake).
      DirectRead& d = *rdirect_;
      d.claimed = true;
      wbusy_ = true;
      size_t n = want - done;
      lock_.unlock();
      UioMoved r = uio_move(*d.uio, uio, n);
      lock_.lock();
      wbusy_ = false;
      d.claimed = false;
      d.moved += r.moved;
      if (r.dst_error && d.moved == 0) d.error = r.dst_error;
      done += r.moved;
      bump_locked();
      if (rwait_ > 0) {
        // The reader sleeps (or waits for the claim to end).
        lock_.unlock();
        rcv_.broadcast();
        lock_.lock();
      }
      if (r.src_error) {
        error = r.src_error;
        break;
      }
      continue;
    }
    if (one_copy && done == 0 && !nonblock && !spun_for_offer && uio.direct()) {
      // The ring is empty and no reader offers its buffer yet: a reader
      // draining the pipe write by write is between two calls, back
      // within a few hundred nanoseconds. Spin for its offer (once per
      // call, for an adaptive budget) rather than put the bytes in the
      // ring, which would make the next write find the ring non-empty
      // and keep the stream on two copies.
      // The spin drops the lock: whatever came meanwhile (another
      // writer's turn, bytes in the ring, an offer) is looked at again
      // from the top, whether or not the spin paid off.
      spun_for_offer = true;
      (void)ospin_.spin(l, lock_, gen_, gen_.load(std::memory_order_relaxed), -1);
      continue;
    }
    // Our turn: copy a piece into the free space without the lock. Other
    // writers wait for wbusy_, so an atomic write is never interleaved.
    // Each piece is committed at once (a spinning reader may take it
    // already); sleeping readers and pollers are told once, at the end or
    // before this writer waits, so a sleeping reader is woken once per
    // write, not per piece.
    wbusy_ = true;
    size_t n = min3(want - done, room, kPiece);
    size_t at = (head_ + len_) % kCapacity;
    char* ring = buf_;
    lock_.unlock();
    size_t before = uio.resid;
    Result<void> r = ring_copyin(uio, ring, at, n);
    size_t moved = before - uio.resid;  // on a fault, the part copied stays
    lock_.lock();
    wbusy_ = false;
    if (moved) {
      len_ += moved;
      done += moved;
      told = false;
    }
    bump_locked();  // also: wbusy_ is clear
    if (!r.ok()) {
      error = r.error();
      break;
    }
  }
  bool wake_readers = !told && rwait_ > 0;
  bool wake_writers = wwait_ > 0;  // waiting for their turn (or for room a reader made)
  if (!told) wake_pollers_locked();
  lock_.unlock();
  if (wake_readers) rcv_.broadcast();
  if (wake_writers) wcv_.broadcast();
  if (sigpipe) {
    // Outside the pipe lock (post_signal takes the process lock, which
    // ranks lower). The writer is in the kernel, so a fatal SIGPIPE ends
    // it as it leaves (check_fatal_signals).
    Proc& p = l.proc();
    if (post_signal(p, SIGPIPE)) kill_proc(l.kernel(), p.pid(), SIGPIPE);
  }
  if (done == 0 && error) return err(error);
  return done;
}

short Pipe::poll(bool rd, bool wr, uint64_t writers_seen, short events, PollTable* pt) {
  MutexLocker g(lock_);
  wq_.lock().assert_held();  // the queue's lock is lock_
  if (pt) pt->add(wq_);
  short mask = 0;
  if (rd) {
    if (len_ > 0) mask |= POLLIN | POLLRDNORM;
    // A hang-up needs a writer that was there: a FIFO reader that opened
    // before any writer sees none until one came and went (as Linux).
    if (writers_ == 0 && w_counter_ != writers_seen) mask |= POLLHUP;
  }
  if (wr) {
    if (len_ < kCapacity) mask |= POLLOUT | POLLWRNORM;
    if (readers_ == 0) mask |= POLLERR;
  }
  return mask & (events | POLLERR | POLLHUP);
}

size_t Pipe::nread() {
  MutexLocker g(lock_);
  return len_;
}

void Pipe::open_ends(bool rd, bool wr) {
  MutexLocker g(lock_);
  if (rd) readers_++, r_counter_++;
  if (wr) writers_++, w_counter_++;
  changed_locked();
}

void Pipe::close_ends(bool rd, bool wr) {
  MutexLocker g(lock_);
  if (rd) readers_--;
  if (wr) writers_--;
  // Readers see EOF, writers EPIPE, pollers HUP/ERR.
  if (rwait_) rcv_.broadcast();
  if (wwait_) wcv_.broadcast();
  changed_locked();
}

// A change of the other side's open counter ends the wait, so a peer that
// came and went already still counts. Interrupted with no partner: the
// caller's end is counted out again.
int Pipe::wait_for_partner(Lwp& l, const uint64_t& their_opens, CondVar& my_cv, int& my_waiters,
                           int& my_ends, CondVar& their_cv, const int& their_waiters) {
  uint64_t seen = their_opens;
  int e = 0;
  while (their_opens == seen && !e) {
    my_waiters++;
    e = l.sleep(my_cv, lock_, -1, true);
    my_waiters--;
  }
  if (!e || their_opens != seen) return 0;
  my_ends--;
  if (their_waiters) their_cv.broadcast();
  changed_locked();
  return e;
}

Result<uint64_t> Pipe::fifo_open(Lwp& l, int flags) {
  int acc = flags & O_ACCMODE;
  bool rd = acc == O_RDONLY || acc == O_RDWR;
  bool wr = acc == O_WRONLY || acc == O_RDWR;
  bool nonblock = flags & O_NONBLOCK;
  MutexLocker g(lock_);
  if (acc == O_WRONLY && nonblock && readers_ == 0) return err(ENXIO);
  if (rd) {
    readers_++, r_counter_++;
    if (wwait_) wcv_.broadcast();
  }
  if (wr) {
    writers_++, w_counter_++;
    if (rwait_) rcv_.broadcast();
  }
  changed_locked();
  if (acc == O_RDONLY && nonblock && writers_ == 0) return w_counter_;
  if (nonblock || acc == O_RDWR) return uint64_t{0};
  // Wait for a partner, as Linux's wait_for_partner.
  int e = 0;
  if (acc == O_RDONLY && writers_ == 0) {
    e = wait_for_partner(l, w_counter_, rcv_, rwait_, readers_, wcv_, wwait_);
  } else if (acc == O_WRONLY && readers_ == 0) {
    e = wait_for_partner(l, r_counter_, wcv_, wwait_, writers_, rcv_, rwait_);
  }
  if (e) return err(e);
  return uint64_t{0};
}

// --- FileOps

namespace {

Pipe& pipe_of(File& f) { return *static_cast<Pipe*>(f.data_); }

class PipeFileOps : public FileOps {
 public:
  Result<size_t> read(File& f, Uio& uio, uint64_t& off) const override {
    return pipe_of(f).read(*uio.lwp, uio, f.flags() & O_NONBLOCK);
  }
  Result<size_t> write(File& f, Uio& uio, uint64_t& off) const override {
    return pipe_of(f).write(*uio.lwp, uio, f.flags() & O_NONBLOCK);
  }
  Result<long> ioctl(File& f, Lwp& l, unsigned long cmd, uintptr_t arg) const override {
    if (cmd == FIONREAD) {
      int n = static_cast<int>(pipe_of(f).nread());
      TRY(copyout_obj(l, n, UserPtr<int>{arg}));
      return 0;
    }
    return err(ENOTTY);
  }
  short poll(File& f, short events, PollTable* pt) const override {
    return pipe_of(f).poll(f.readable(), f.writable(), f.pipe_writers_seen_, events, pt);
  }
  // As Linux's pipefs: a FIFO with mode 0600 owned by the creator, size 0.
  Result<void> stat(File& f, struct stat* st) const override {
    const Pipe& p = pipe_of(f);
    st->st_dev = makedev(0, 12);
    st->st_ino = p.ino_;
    st->st_mode = S_IFIFO | 0600;
    st->st_nlink = 1;
    st->st_uid = p.owner_uid_;
    st->st_gid = p.owner_gid_;
    st->st_blksize = 4096;
    st->st_atim = st->st_mtim = st->st_ctim =
        timespec{static_cast<time_t>(p.ctime_ns_ / 1000000000), static_cast<long>(p.ctime_ns_ % 1000000000)};
    return {};
  }
  // Through /proc/<pid>/fd/<n>: the same pipe, opened as a FIFO is (Linux
  // opens the pipe's inode with the FIFO rules).
  Result<Ref<File>> reopen(File& f, Lwp& l, int fflags) const override {
    Pipe& p = pipe_of(f);
    uint64_t seen = TRY(p.fifo_open(l, fflags));
    Result<Ref<File>> nf = File::create(l.kernel().kmem(), this, nullptr, fflags);
    if (!nf.ok()) {
      p.close_ends((fflags & O_ACCMODE) != O_WRONLY, (fflags & O_ACCMODE) != O_RDONLY);
      return err(nf.error());
    }
    p.ref();
    nf.value()->data_ = &p;
    nf.value()->pipe_writers_seen_ = seen;
    return nf;
  }
  // O_PATH through /proc/<pid>/fd/<n>: a description that holds the pipe
  // and none of its ends (fstat, and a reopen through its own link, as
  // Linux's O_PATH of the pipe's inode).
  Result<Ref<File>> open_path(File& f, Lwp& l, int flags) const override {
    Pipe& p = pipe_of(f);
    Ref<File> nf = TRY(File::create(l.kernel().kmem(), this, nullptr, flags));
    p.ref();
    nf->data_ = &p;
    return nf;
  }
  void close(File& f) const override {
    Pipe* p = static_cast<Pipe*>(f.data_);
    if (!p) return;
    if (f.readable() || f.writable()) p->close_ends(f.readable(), f.writable());
    if (Vnode* vp = f.vnode()) {
      MutexLocker g(vp->lock());
      vp->fifo_put();
    }
    f.data_ = nullptr;
    p->unref();
  }
};

const PipeFileOps g_pipe_ops;

// The special-file hook for FIFOs: find or attach the vnode's pipe.
Result<const FileOps*> fifo_special_open(Lwp& l, Vnode& vp, File& f, int flags) {
  Pipe* p;
  {
    MutexLocker g(vp.lock());
    p = vp.fifo_get();
    if (p) {
      p->ref();
    } else {
      p = TRY(Pipe::create(l.kernel().kmem())).leak();
      vp.fifo_attach(p);
    }
  }
  Result<uint64_t> r = p->fifo_open(l, flags);
  if (!r.ok()) {
    {
      MutexLocker g(vp.lock());
      vp.fifo_put();
    }
    p->unref();
    return err(r.error());
  }
  f.data_ = p;
  f.pipe_writers_seen_ = r.value();
  return &g_pipe_ops;
}

const SpecialOps g_fifo_special{VType::kFifo, kAnyRdev, &fifo_special_open};
const SpecialRegistrar g_fifo_registrar(&g_fifo_special);

}  // namespace

const FileOps& kPipeFileOps = g_pipe_ops;

}  // namespace rump
