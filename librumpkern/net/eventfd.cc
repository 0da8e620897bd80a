// eventfd and eventfd2: a 64-bit counter as a descriptor. A write adds to
// it (blocking while the sum would pass 0xfffffffffffffffe), a read takes
// it all (or one, with EFD_SEMAPHORE) and blocks while it is zero. Its
// wait queue is the same one poll, select and epoll use (vfs/poll.h).
//
// Locking: Eventfd::lock_ (rank kSocket) guards the counter, the sleepers
// and the wait queue; user memory is touched only without it.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>


#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "vfs/file.h"
#include "vfs/poll.h"

namespace rump {

namespace {

constexpr uint64_t kMax = ~uint64_t{0} - 1;

class Eventfd : public KObject, public RefCounted<Eventfd> {
 public:
  Eventfd(uint64_t v, bool sem) : count_(v), semaphore_(sem) {}

  Mutex lock_{LockRank::kSocket};
  WaitQueue wq_{lock_};
  CondVar cv_;
  uint64_t count_ ABSL_GUARDED_BY(lock_);
  int sleepers_ ABSL_GUARDED_BY(lock_) = 0;
  const bool semaphore_;

  void changed_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    if (sleepers_) cv_.broadcast();
    wq_.lock().assert_held();  // the queue's lock is the object's lock_
    if (!wq_.empty()) wq_.wakeup();
  }

 private:
  friend class RefCounted<Eventfd>;
  void last_unref() { delete this; }
};

Eventfd& efd_of(File& f) { return *static_cast<Eventfd*>(f.data_); }

int wait_locked(Lwp& l, Eventfd& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e.lock_) {
  e.sleepers_++;
  int r = l.sleep(e.cv_, e.lock_, -1, true);
  e.sleepers_--;
  return r;
}

class EventfdOps : public FileOps {
 public:
  Result<size_t> read(File& f, Uio& uio, uint64_t& off) const override {
    if (uio.resid < 8) return err(EINVAL);
    Eventfd& e = efd_of(f);
    uint64_t v;
    {
      MutexLocker g(e.lock_);
      while (e.count_ == 0) {
        if (f.flags() & O_NONBLOCK) return err(EAGAIN);
        if (int r = wait_locked(*uio.lwp, e)) return err(r);
      }
      v = e.semaphore_ ? 1 : e.count_;
      e.count_ -= v;
      e.changed_locked();
    }
    TRY(uio.copyout(&v, 8));
    return size_t{8};
  }
  Result<size_t> write(File& f, Uio& uio, uint64_t& off) const override {
    if (uio.resid < 8) return err(EINVAL);
    uint64_t v;
    TRY(uio.copyin(&v, 8));
    if (v == ~uint64_t{0}) return err(EINVAL);
    Eventfd& e = efd_of(f);
    MutexLocker g(e.lock_);
    while (kMax - e.count_ < v) {
      if (f.flags() & O_NONBLOCK) return err(EAGAIN);
      if (int r = wait_locked(*uio.lwp, e)) return err(r);
    }
    e.count_ += v;
    if (v) e.changed_locked();
    return size_t{8};
  }
  short poll(File& f, short events, PollTable* pt) const override {
    Eventfd& e = efd_of(f);
    MutexLocker g(e.lock_);
    e.wq_.lock().assert_held();  // the queue's lock is the object's lock_
    if (pt) pt->add(e.wq_);
    short m = 0;
    if (e.count_ > 0) m |= POLLIN | POLLRDNORM;
    if (e.count_ < kMax) m |= POLLOUT | POLLWRNORM;
    if (e.count_ == ~uint64_t{0}) m |= POLLERR;
    return m & (events | POLLERR | POLLHUP);
  }
  Result<void> stat(File& f, struct stat* st) const override { return anon_inode_stat(f, st); }
  const char* anon_name() const override { return "[eventfd]"; }
  void close(File& f) const override {
    if (auto* e = static_cast<Eventfd*>(f.data_)) e->unref();
    f.data_ = nullptr;
  }
};

const EventfdOps g_eventfd_ops;

}  // namespace

Result<long> sys_eventfd2(Lwp& l, unsigned int initval, int flags) {
  if (flags & ~(EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC)) return err(EINVAL);
  Kmem& km = l.kernel().kmem();
  auto* e = new (km) Eventfd(initval, flags & EFD_SEMAPHORE);
  if (!e) return err(ENOMEM);
  Ref<Eventfd> er = adopt_ref(e);
  Ref<File> f = TRY(File::create(km, &g_eventfd_ops, nullptr, O_RDWR | (flags & O_NONBLOCK)));
  f->data_ = er.leak();
  return TRY(fd_install(l, std::move(f), flags & EFD_CLOEXEC));
}

Result<long> sys_eventfd(Lwp& l, unsigned int initval) { return sys_eventfd2(l, initval, 0); }

}  // namespace rump
