// Pipes and FIFOs: the ring buffer, its FileOps, and the special-file hook
// that attaches a Pipe to a FIFO vnode while it is open (see pipe.h).
#include "vfs/pipe.h"

#include <sys/sysmacros.h>

#include <fcntl.h>
#include <sys/poll.h>
#include <signal.h>
#include <sys/ioctl.h>

#include <cstring>

#include "kern/copy.h"
#include "kern/fork.h"
#include "kern/kernel.h"
#include "vfs/vfs.h"

namespace rump {

namespace {

// Direct copies under the pipe lock are safe when no isolated user space
// is involved (see pipe.h).
bool direct_copy(Lwp& l, const Uio& uio) { return uio.kernel || l.user_space() == nullptr; }

}  // namespace

Pipe::~Pipe() { Kmem::free(buf_); }

Result<Ref<Pipe>> Pipe::create(Kmem& k) {
  auto* p = new (k) Pipe(k);
  if (!p) return err(ENOMEM);
  return adopt_ref(p);
}

void Pipe::wake_readers() {
  if (rwait_) rcv_.broadcast();
  wq_.wakeup();
}

void Pipe::wake_writers() {
  if (wwait_) wcv_.broadcast();
  wq_.wakeup();
}

Result<void> Pipe::put_locked(Uio* uio, const char* kbuf, size_t n) {
  size_t tail = (head_ + len_) % kCapacity;
  size_t first = n < kCapacity - tail ? n : kCapacity - tail;
  if (uio) {
    TRY(uio->copyin(buf_ + tail, first));
    if (n > first) TRY(uio->copyin(buf_, n - first));
  } else {
    std::memcpy(buf_ + tail, kbuf, first);
    if (n > first) std::memcpy(buf_, kbuf + first, n - first);
  }
  len_ += n;
  return {};
}

Result<void> Pipe::get_locked(Uio* uio, char* kbuf, size_t n) {
  size_t first = n < kCapacity - head_ ? n : kCapacity - head_;
  if (uio) {
    TRY(uio->copyout(buf_ + head_, first));
    if (n > first) TRY(uio->copyout(buf_, n - first));
  } else {
    std::memcpy(kbuf, buf_ + head_, first);
    if (n > first) std::memcpy(kbuf + first, buf_, n - first);
  }
  head_ = (head_ + n) % kCapacity;
  len_ -= n;
  if (len_ == 0) head_ = 0;
  return {};
}

Result<size_t> Pipe::read(Lwp& l, Uio& uio, bool nonblock) {
  size_t want = uio.resid;
  if (want == 0) return size_t{0};
  bool direct = direct_copy(l, uio);
  char* bounce = nullptr;
  if (!direct) {
    bounce = static_cast<char*>(kmem_.alloc(want < kCapacity ? want : kCapacity));
    if (!bounce) return err(ENOMEM);
  }
  size_t n = 0;
  int error = 0;
  {
    MutexLocker g(lock_);
    while (len_ == 0) {
      if (writers_ == 0) break;  // EOF
      if (nonblock) {
        error = EAGAIN;
        break;
      }
      rwait_++;
      int e = l.sleep(rcv_, lock_, -1, true);
      rwait_--;
      if (e) {
        error = e;
        break;
      }
    }
    if (!error && len_ > 0) {
      n = want < len_ ? want : len_;
      if (!direct && n > kCapacity) n = kCapacity;
      size_t before = uio.resid;
      Result<void> r = get_locked(direct ? &uio : nullptr, bounce, n);
      if (!r.ok()) {
        // A fault part way: what was copied is consumed (as Linux).
        size_t moved = before - uio.resid;
        head_ = (head_ + moved) % kCapacity;
        len_ -= moved;
        n = moved;
        if (n == 0) error = r.error();
      }
      if (n) wake_writers();
    }
  }
  if (!direct) {
    if (n) {
      Result<void> r = uio.copyout(bounce, n);
      if (!r.ok()) error = r.error(), n = 0;
    }
    Kmem::free(bounce);
  }
  if (n == 0 && error) return err(error);
  return n;
}

Result<size_t> Pipe::write(Lwp& l, Uio& uio, bool nonblock) {
  size_t want = uio.resid;
  bool direct = direct_copy(l, uio);
  bool atomic = want <= kPipeBuf;
  char* bounce = nullptr;
  size_t chunk_cap = want < kCapacity ? want : kCapacity;
  if (!direct && want) {
    bounce = static_cast<char*>(kmem_.alloc(chunk_cap));
    if (!bounce) return err(ENOMEM);
  }
  size_t done = 0;
  int error = 0;
  bool sigpipe = false;
  {
    MutexLocker g(lock_);
    if (readers_ == 0) {
      sigpipe = true;
      error = EPIPE;
    } else if (want == 0) {
      // nothing
    } else if (!buf_) {
      buf_ = static_cast<char*>(kmem_.alloc(kCapacity));
      if (!buf_) error = ENOMEM;
    }
  }
  while (!error && done < want) {
    // One chunk: the whole rest when copying directly, else what the
    // bounce buffer holds (copied in without the lock).
    size_t chunk = want - done;
    if (!direct) {
      if (chunk > chunk_cap) chunk = chunk_cap;
      Result<void> r = uio.copyin(bounce, chunk);
      if (!r.ok()) {
        error = r.error();
        break;
      }
    }
    size_t put = 0;  // of this chunk
    MutexLocker g(lock_);
    while (put < chunk) {
      if (readers_ == 0) {
        sigpipe = true;
        error = EPIPE;
        break;
      }
      size_t room = kCapacity - len_;
      size_t need = atomic ? chunk : 1;
      if (room >= need) {
        size_t n = chunk - put < room ? chunk - put : room;
        size_t before = uio.resid;
        Result<void> r = put_locked(direct ? &uio : nullptr, direct ? nullptr : bounce + put, n);
        if (!r.ok()) {
          size_t moved = before - uio.resid;
          len_ += moved;  // the part copied before the fault stays
          put += moved;
          if (moved) wake_readers();
          error = r.error();
          break;
        }
        put += n;
        wake_readers();
        continue;
      }
      if (nonblock) {
        error = EAGAIN;
        break;
      }
      wwait_++;
      int e = l.sleep(wcv_, lock_, -1, true);
      wwait_--;
      if (e) {
        error = e;
        break;
      }
    }
    done += put;
  }
  Kmem::free(bounce);
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
}

void Pipe::close_ends(bool rd, bool wr) {
  MutexLocker g(lock_);
  if (rd) readers_--;
  if (wr) writers_--;
  // Readers see EOF, writers EPIPE, pollers HUP/ERR.
  if (rwait_) rcv_.broadcast();
  if (wwait_) wcv_.broadcast();
  wq_.wakeup();
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
  wq_.wakeup();
  if (acc == O_RDONLY && nonblock && writers_ == 0) return w_counter_;
  if (nonblock || acc == O_RDWR) return uint64_t{0};
  // Wait for a partner: a change of the other side's counter, so a peer
  // that came and went already still counts (as Linux's wait_for_partner).
  int e = 0;
  if (acc == O_RDONLY && writers_ == 0) {
    uint64_t seen = w_counter_;
    while (w_counter_ == seen && !e) {
      rwait_++;
      e = l.sleep(rcv_, lock_, -1, true);
      rwait_--;
    }
    if (e && w_counter_ == seen) {
      readers_--;
      return err(e);
    }
  } else if (acc == O_WRONLY && readers_ == 0) {
    uint64_t seen = r_counter_;
    while (r_counter_ == seen && !e) {
      wwait_++;
      e = l.sleep(wcv_, lock_, -1, true);
      wwait_--;
    }
    if (e && r_counter_ == seen) {
      writers_--;
      if (rwait_) rcv_.broadcast();
      return err(e);
    }
  }
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
  void close(File& f) const override {
    Pipe* p = static_cast<Pipe*>(f.data_);
    if (!p) return;
    p->close_ends(f.readable(), f.writable());
    if (Vnode* vp = f.vnode()) {
      MutexLocker g(vp->mount().lock_);
      if (--p->fifo_opens_ == 0 && vp->fifo_ == p) vp->fifo_ = nullptr;
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
    MutexLocker g(vp.mount().lock_);
    p = static_cast<Pipe*>(vp.fifo_);
    if (p) {
      p->ref();
    } else {
      p = TRY(Pipe::create(l.kernel().kmem())).leak();
      vp.fifo_ = p;
    }
    p->fifo_opens_++;
  }
  Result<uint64_t> r = p->fifo_open(l, flags);
  if (!r.ok()) {
    {
      MutexLocker g(vp.mount().lock_);
      if (--p->fifo_opens_ == 0 && vp.fifo_ == p) vp.fifo_ = nullptr;
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
