// timerfd_create, timerfd_settime, timerfd_gettime: a timer as a
// descriptor. A read returns the number of expirations since the last
// read (a u64) and blocks while there were none; poll, select and epoll
// see it readable then. The timer is a kernel callout (kern/callout.h) on
// the monotonic clock; a CLOCK_REALTIME absolute time is turned into a
// delay when it is set, and again whenever the kernel's realtime clock is
// set (kern/kernel_clock.h: every CLOCK_REALTIME timerfd watches it), so it
// expires at the realtime it names, as Linux's realtime hrtimers. Armed
// with TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, a setting of the
// clock also cancels the timer: the next read (or the one waiting) fails
// with ECANCELED, and poll sees it readable until then.
//
// Locking: Timerfd::lock_ (rank kSocket) guards the timer's settings,
// the expiration count, the sleepers and the wait queue. The callout
// function takes it with no other lock held; the clock's watcher callback
// under the clock's watcher lock (rank kFile).
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>

#include "kern/callout.h"
#include "kern/clock.h"
#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/kernel_clock.h"
#include "kern/syscall_protos.h"
#include "vfs/file.h"
#include "vfs/poll.h"

namespace rump {

namespace {

class Timerfd : public KObject, public RefCounted<Timerfd> {
 public:
  Timerfd(Kernel& k, int clock) : kernel_(k), clock_(clock) {
    if (clock_ == CLOCK_REALTIME) {
      watcher_.t = this;
      watcher_.was_set = &Timerfd::clock_was_set;
      k.clock().watch(watcher_);
    }
  }
  ~Timerfd() {
    // After unwatch no clock_was_set runs for this timer; then the callout.
    if (clock_ == CLOCK_REALTIME) kernel_.clock().unwatch(watcher_);
    co_.halt();
  }

  Mutex lock_{LockRank::kSocket};
  WaitQueue wq_{lock_};
  CondVar cv_;
  Callout co_;
  Kernel& kernel_;
  const int clock_;
  struct Watcher : RealtimeWatcher {
    Timerfd* t = nullptr;
  };
  Watcher watcher_;
  // An absolute CLOCK_REALTIME setting: the realtime minus the monotonic
  // time when it was turned into next_mono_ (to move it when the clock is
  // set). 0 for any other setting.
  bool abs_real_ ABSL_GUARDED_BY(lock_) = false;
  int64_t real_minus_mono_ ABSL_GUARDED_BY(lock_) = 0;
  // Armed with TFD_TIMER_CANCEL_ON_SET; canceled_: the clock was set since.
  bool might_cancel_ ABSL_GUARDED_BY(lock_) = false;
  bool canceled_ ABSL_GUARDED_BY(lock_) = false;
  int64_t next_mono_ ABSL_GUARDED_BY(lock_) = 0;  // the next expiry (monotonic ns); 0: disarmed
  int64_t interval_ ABSL_GUARDED_BY(lock_) = 0;
  uint64_t ticks_ ABSL_GUARDED_BY(lock_) = 0;
  int sleepers_ ABSL_GUARDED_BY(lock_) = 0;

  // The callout: counts the expirations due and re-arms a periodic timer.
  // The callout is (re)armed without lock_ held (arming may start the
  // callout thread, which takes locks ranked below it).
  static void fire(void* arg) {
    auto* t = static_cast<Timerfd*>(arg);
    int64_t again = -1;
    {
      MutexLocker g(t->lock_);
      if (!t->next_mono_) return;
      int64_t now = mono_now_ns();
      if (now < t->next_mono_) {  // re-armed meanwhile
        again = t->next_mono_ - now;
      } else {
        if (t->interval_) {
          int64_t missed = (now - t->next_mono_) / t->interval_;
          t->ticks_ += 1 + missed;
          t->next_mono_ += (missed + 1) * t->interval_;
          again = t->next_mono_ - now;
        } else {
          t->ticks_ += 1;
          t->next_mono_ = 0;
        }
        if (t->sleepers_) t->cv_.broadcast();
        t->wq_.lock().assert_held();  // the queue's lock is the object's lock_
        if (!t->wq_.empty()) t->wq_.wakeup();
      }
    }
    if (again >= 0) t->co_.schedule(again);
  }

  // The kernel's realtime clock was set (under the clock's watcher lock):
  // a cancel-on-set timer is canceled, and an absolute realtime expiry is
  // moved on the monotonic clock to stay at the realtime it names.
  static void clock_was_set(RealtimeWatcher& w) {
    Timerfd* t = static_cast<Watcher&>(w).t;
    int64_t arm = -1;
    {
      MutexLocker g(t->lock_);
      if (t->might_cancel_ && !t->canceled_) {
        t->canceled_ = true;
        t->ticks_++;  // readable, so that a reader or poller looks
        if (t->sleepers_) t->cv_.broadcast();
        t->wq_.lock().assert_held();  // the queue's lock is the object's lock_
        if (!t->wq_.empty()) t->wq_.wakeup();
      }
      if (t->abs_real_ && t->next_mono_) {
        int64_t mono = mono_now_ns();
        int64_t d = t->kernel_.clock().realtime_ns() - mono;
        t->next_mono_ += t->real_minus_mono_ - d;
        t->real_minus_mono_ = d;
        if (t->next_mono_ < 1) t->next_mono_ = 1;
        arm = t->next_mono_ > mono ? t->next_mono_ - mono : 0;
      }
    }
    // The callout was armed before (the timer is armed), so arming it
    // again starts no thread.
    if (arm >= 0) t->co_.schedule(arm);
  }

 private:
  friend class RefCounted<Timerfd>;
  void last_unref() { delete this; }
};

Timerfd& tfd_of(File& f) { return *static_cast<Timerfd*>(f.data_); }

class TimerfdOps : public FileOps {
 public:
  Result<size_t> read(File& f, Uio& uio, uint64_t& off) const override {
    if (uio.resid < 8) return err(EINVAL);
    Timerfd& t = tfd_of(f);
    uint64_t v;
    {
      MutexLocker g(t.lock_);
      while (t.ticks_ == 0) {
        if (f.flags() & O_NONBLOCK) return err(EAGAIN);
        t.sleepers_++;
        int e = uio.lwp->sleep(t.cv_, t.lock_, -1, true);
        t.sleepers_--;
        if (e) return err(e);
      }
      // The clock was set: the expirations no longer mean anything; the
      // timer stays armed for the realtime it names (Linux).
      if (t.canceled_) {
        t.canceled_ = false;
        t.ticks_ = 0;
        return err(ECANCELED);
      }
      v = t.ticks_;
      t.ticks_ = 0;
    }
    TRY(uio.copyout(&v, 8));
    return size_t{8};
  }
  short poll(File& f, short events, PollTable* pt) const override {
    Timerfd& t = tfd_of(f);
    MutexLocker g(t.lock_);
    t.wq_.lock().assert_held();  // the queue's lock is the object's lock_
    if (pt) pt->add(t.wq_);
    return t.ticks_ ? static_cast<short>((POLLIN | POLLRDNORM) & events) : 0;
  }
  Result<void> stat(File& f, struct stat* st) const override { return anon_inode_stat(f, st); }
  const char* anon_name() const override { return "[timerfd]"; }
  void close(File& f) const override {
    if (auto* t = static_cast<Timerfd*>(f.data_)) t->unref();
    f.data_ = nullptr;
  }
};

const TimerfdOps g_timerfd_ops;

Result<Ref<Timerfd>> timer_get(Lwp& l, int fd) {
  Ref<File> f = TRY(fd_get(l, fd));
  if (&f->ops() != &g_timerfd_ops) return err(EINVAL);
  return Ref<Timerfd>(tfd_of(*f));
}

bool ts_valid(const timespec& ts) { return ts.tv_sec >= 0 && ts.tv_nsec >= 0 && ts.tv_nsec < kNsPerSec; }
int64_t ts_ns(const timespec& ts) {
  return ts.tv_sec > INT64_MAX / kNsPerSec - 1 ? INT64_MAX / 2 : ts.tv_sec * kNsPerSec + ts.tv_nsec;
}
timespec ns_ts(int64_t ns) { return timespec{ns / kNsPerSec, ns % kNsPerSec}; }

itimerspec current_locked(Timerfd& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.lock_) {
  itimerspec cur{};
  cur.it_interval = ns_ts(t.interval_);
  if (t.next_mono_) {
    int64_t left = t.next_mono_ - mono_now_ns();
    cur.it_value = ns_ts(left > 0 ? left : 1);
  }
  return cur;
}

}  // namespace

Result<long> sys_timerfd_create(Lwp& l, int clockid, int flags) {
  if (clockid != CLOCK_REALTIME && clockid != CLOCK_MONOTONIC && clockid != CLOCK_BOOTTIME) return err(EINVAL);
  if (flags & ~(TFD_CLOEXEC | TFD_NONBLOCK)) return err(EINVAL);
  Kmem& km = l.kernel().kmem();
  auto* t = new (km) Timerfd(l.kernel(), clockid);
  if (!t) return err(ENOMEM);
  t->co_.init(*l.kernel().services().callouts(), &Timerfd::fire, t);
  Ref<Timerfd> tr = adopt_ref(t);
  Ref<File> f = TRY(File::create(km, &g_timerfd_ops, nullptr, O_RDWR | (flags & O_NONBLOCK)));
  f->data_ = tr.leak();
  return TRY(fd_install(l, std::move(f), flags & TFD_CLOEXEC));
}

Result<long> sys_timerfd_settime(Lwp& l, int fd, int flags, UserPtr<void> new_value, UserPtr<void> old_value) {
  if (flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)) return err(EINVAL);
  itimerspec nv;
  TRY(copyin(l, new_value.addr, &nv, sizeof nv));
  if (!ts_valid(nv.it_value) || !ts_valid(nv.it_interval)) return err(EINVAL);
  Ref<Timerfd> t = TRY(timer_get(l, fd));
  itimerspec old;
  int64_t arm = -1;  // the delay to arm the callout with; -1: disarm
  {
    MutexLocker g(t->lock_);
    old = current_locked(*t);
    t->ticks_ = 0;
    t->canceled_ = false;
    bool abs_real = t->clock_ == CLOCK_REALTIME && (flags & TFD_TIMER_ABSTIME);
    t->might_cancel_ = abs_real && (flags & TFD_TIMER_CANCEL_ON_SET);
    t->abs_real_ = false;
    t->interval_ = ts_ns(nv.it_interval);
    int64_t v = ts_ns(nv.it_value);
    if (v == 0) {
      t->next_mono_ = 0;
    } else {
      int64_t now_mono = mono_now_ns();
      int64_t delay = v;
      if (flags & TFD_TIMER_ABSTIME) {
        int64_t now = now_mono;
        if (abs_real) {
          now = l.kernel().clock().realtime_ns();
          t->abs_real_ = true;
          t->real_minus_mono_ = now - now_mono;
        }
        delay = v - now;
      }
      t->next_mono_ = now_mono + (delay > 0 ? delay : 0);
      if (!t->next_mono_) t->next_mono_ = 1;
      arm = delay > 0 ? delay : 0;
    }
  }
  // A callout that fires for an old setting finds next_mono_ moved and
  // re-arms or returns (fire), so the order of these calls does not matter.
  if (arm < 0) t->co_.stop();
  else t->co_.schedule(arm);
  if (!old_value.is_null()) TRY(copyout(l, &old, old_value.addr, sizeof old));
  return 0;
}

Result<long> sys_timerfd_gettime(Lwp& l, int fd, UserPtr<void> curr_value) {
  Ref<Timerfd> t = TRY(timer_get(l, fd));
  itimerspec cur;
  {
    MutexLocker g(t->lock_);
    cur = current_locked(*t);
  }
  TRY(copyout(l, &cur, curr_value.addr, sizeof cur));
  return 0;
}

}  // namespace rump
