// signalfd and signalfd4: a descriptor that reads pending signals as
// struct signalfd_siginfo records.
//
// As on Linux, a signalfd holds only a set of signals; what it reads and
// what makes it readable are the pending signals of the process that
// reads or polls it (its LWP's own and the process's shared ones), so a
// descriptor inherited across fork reads the child's signals. A read
// dequeues them as rt_sigtimedwait does (kern/sig.cc, sig_wait). Signals
// the process does not block are normally delivered before anyone reads
// them; those it blocks stay pending for the read.
//
// Readiness: each Signalfd owns a wait queue (vfs/poll.h) and a SigWatch
// in the kernel's registry (kern/signal.h); posting a signal of its set
// to any process wakes the queue, and poll re-checks against the poller's
// own pending signals.
//
// Locking: Signalfd::lock_ (rank kSocket) guards the wait queue; the set
// is atomic. The registry's lock (kSigWatch) is taken before lock_.
#include <fcntl.h>
#include <sys/poll.h>  // (<poll.h> would be vfs/poll.h here)
#include <sys/signalfd.h>
#include <sys/stat.h>

#include <cstring>

#include "kern/copy.h"
#include "kern/fork.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "vfs/file.h"
#include "vfs/poll.h"

namespace rump {

namespace {

class Signalfd : public KObject, public RefCounted<Signalfd>, public SigWatch {
 public:
  Signalfd(Kernel& k, SigSet mask) : mask_(mask), kernel_(k) {
    SigWatch::notify = &Signalfd::notify;
    k.sig_watchers().add(*this);
  }

  Mutex lock_{LockRank::kSocket};
  WaitQueue wq_{lock_};
  std::atomic<SigSet> mask_;

  // As Linux, a reader of the caller's process that sleeps on the old set
  // wakes to look at the new one.
  void set_mask(Proc& caller, SigSet m) {
    mask_.store(m, std::memory_order_release);
    sig_wait_set_changed(caller);
    wake();
  }
  void wake() {
    MutexLocker g(lock_);
    wq_.lock().assert_held();  // the queue's lock is the object's lock_
    if (!wq_.empty()) wq_.wakeup();
  }

 private:
  friend class RefCounted<Signalfd>;
  static void notify(SigWatch& w, Proc& p, int sig) {
    auto* s = static_cast<Signalfd*>(&w);
    if (sig > 0 && (s->mask_.load(std::memory_order_acquire) & sig_bit(sig))) s->wake();
  }
  void last_unref() {
    kernel_.sig_watchers().remove(*this);
    delete this;
  }
  Kernel& kernel_;
};

Signalfd* sfd_of(File& f);

// Linux's siginfo layouts, as far as signalfd shows them.
enum class Layout { kKill, kTimer, kPoll, kFault, kChld, kRt, kSys };

Layout siginfo_layout(int sig, int code) {
  if (code > SI_USER && code < SI_KERNEL) {
    switch (sig) {
      case SIGILL: return code <= 11 ? Layout::kFault : Layout::kKill;
      case SIGFPE: return code <= 15 ? Layout::kFault : Layout::kKill;
      case SIGSEGV: return code <= 10 ? Layout::kFault : Layout::kKill;
      case SIGBUS: return code <= 5 ? Layout::kFault : Layout::kKill;
      case SIGTRAP: return code <= 6 ? Layout::kFault : Layout::kKill;
      case SIGCHLD: return code <= 6 ? Layout::kChld : Layout::kKill;
      case SIGSYS: return code <= 2 ? Layout::kSys : Layout::kKill;
      default: return code <= 6 ? Layout::kPoll : Layout::kKill;  // NSIGPOLL
    }
  }
  if (code == SI_TIMER) return Layout::kTimer;
  if (code == SI_SIGIO) return Layout::kPoll;
  if (code < 0) return Layout::kRt;
  return Layout::kKill;
}

void to_signalfd_siginfo(const siginfo_t& in, signalfd_siginfo* out) {
  std::memset(out, 0, sizeof *out);
  out->ssi_signo = in.si_signo;
  out->ssi_errno = in.si_errno;
  out->ssi_code = in.si_code;
  switch (siginfo_layout(in.si_signo, in.si_code)) {
    case Layout::kKill:
      out->ssi_pid = in.si_pid;
      out->ssi_uid = in.si_uid;
      break;
    case Layout::kTimer:
      out->ssi_tid = in.si_timerid;
      out->ssi_overrun = in.si_overrun;
      out->ssi_ptr = reinterpret_cast<uintptr_t>(in.si_ptr);
      out->ssi_int = in.si_int;
      break;
    case Layout::kPoll:
      out->ssi_band = in.si_band;
      out->ssi_fd = in.si_fd;
      break;
    case Layout::kFault:
      out->ssi_addr = reinterpret_cast<uintptr_t>(in.si_addr);
      break;
    case Layout::kChld:
      out->ssi_pid = in.si_pid;
      out->ssi_uid = in.si_uid;
      out->ssi_status = in.si_status;
      out->ssi_utime = in.si_utime;
      out->ssi_stime = in.si_stime;
      break;
    case Layout::kRt:
      out->ssi_pid = in.si_pid;
      out->ssi_uid = in.si_uid;
      out->ssi_ptr = reinterpret_cast<uintptr_t>(in.si_ptr);
      out->ssi_int = in.si_int;
      break;
    case Layout::kSys:
      out->ssi_call_addr = reinterpret_cast<uintptr_t>(in.si_call_addr);
      out->ssi_syscall = in.si_syscall;
      out->ssi_arch = in.si_arch;
      break;
  }
}

// The LWP of the calling thread (poll has no Lwp argument).
Lwp* current_lwp() { return reinterpret_cast<Lwp*>(rumpuser_curlwp()); }

class SignalfdOps : public FileOps {
 public:
  Result<size_t> read(File& f, Uio& uio, uint64_t& off) const override {
    size_t count = uio.resid / sizeof(signalfd_siginfo);
    if (count == 0) return err(EINVAL);
    Signalfd& s = *sfd_of(f);
    Lwp& l = *uio.lwp;
    bool nonblock = (f.flags() & O_NONBLOCK) != 0;
    size_t total = 0;
    for (; count > 0; count--) {
      siginfo_t info;
      // Only the first record may wait.
      Result<int> r = sig_wait(l, s.mask_, &info, nonblock ? 0 : -1);
      if (!r.ok()) {
        if (total) break;
        return err(r.error());
      }
      signalfd_siginfo rec;
      to_signalfd_siginfo(info, &rec);
      Result<void> c = uio.copyout(&rec, sizeof rec);
      if (!c.ok()) {
        if (total) break;
        return err(c.error());
      }
      total += sizeof rec;
      nonblock = true;
    }
    return total;
  }
  short poll(File& f, short events, PollTable* pt) const override {
    Signalfd& s = *sfd_of(f);
    MutexLocker g(s.lock_);
    s.wq_.lock().assert_held();  // the queue's lock is the object's lock_
    if (pt) pt->add(s.wq_);
    short m = 0;
    // Registered before the test: a signal posted after it wakes us.
    if (Lwp* l = current_lwp()) {
      if (l->proc().pending_for(*l) & s.mask_.load(std::memory_order_acquire)) m |= POLLIN;  // only POLLIN, as Linux
    }
    return m & events;
  }
  Result<void> stat(File& f, struct stat* st) const override { return anon_inode_stat(f, st); }
  const char* anon_name() const override { return "[signalfd]"; }
  void close(File& f) const override {
    if (auto* s = static_cast<Signalfd*>(f.data_)) s->unref();
    f.data_ = nullptr;
  }
};

const SignalfdOps g_signalfd_ops;

Signalfd* sfd_of(File& f) { return &f.ops() == &g_signalfd_ops ? static_cast<Signalfd*>(f.data_) : nullptr; }

}  // namespace

Result<long> sys_signalfd4(Lwp& l, int fd, UserPtr<sigset_t> mask, size_t sizemask, int flags) {
  if (sizemask != sizeof(SigSet)) return err(EINVAL);
  SigSet m;
  TRY(copyin(l, mask.addr, &m, sizeof m));
  if (flags & ~(SFD_CLOEXEC | SFD_NONBLOCK)) return err(EINVAL);
  m &= ~kCantMask;
  if (fd != -1) {
    // Changes the set of an existing signalfd (its flags stay).
    Ref<File> f = TRY(fd_get(l, fd));
    Signalfd* s = sfd_of(*f);
    if (!s) return err(EINVAL);
    s->set_mask(l.proc(), m);
    return fd;
  }
  Kernel& k = l.kernel();
  Kmem& km = k.kmem();
  auto* s = new (km) Signalfd(k, m);
  if (!s) return err(ENOMEM);
  Ref<Signalfd> sr = adopt_ref(s);
  Ref<File> f = TRY(File::create(km, &g_signalfd_ops, nullptr, O_RDWR | (flags & O_NONBLOCK)));
  f->data_ = sr.leak();
  return TRY(fd_install(l, std::move(f), flags & SFD_CLOEXEC));
}

Result<long> sys_signalfd(Lwp& l, int fd, UserPtr<sigset_t> mask, size_t sizemask) {
  return sys_signalfd4(l, fd, mask, sizemask, 0);
}

}  // namespace rump
