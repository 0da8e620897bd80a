// Process descriptors: pidfd_open, pidfd_send_signal, pidfd_getfd, and
// the resolver through which waitid(P_PIDFD) finds the child
// (kern/pidfd.h).
//
// A pidfd names one process for as long as it is open: it holds the
// process's pid in the pid allocator (PidAllocator::hold), so the number
// is not handed out again even after the process is reaped, and looking
// the pid up in the process table finds that process or nothing. (Linux
// pins its struct pid but may give the number to a new process once the
// old one is reaped; here it waits for the last pidfd to close.)
//
// Readiness, as Linux's pidfd_poll: POLLIN|POLLRDNORM once the process is
// a zombie, with POLLHUP too once it is reaped. Each Pidfd is a SigWatch
// (kern/signal.h); exit1 notifies the watchers with sig 0 when a process
// becomes a zombie, and the pidfds of that pid wake their queue.
//
// Locking: Pidfd::lock_ (rank kSocket) guards the wait queue; the watcher
// registry (kSigWatch) is taken before it. poll registers on the queue
// first and then reads the process's state under the process table's
// lock, with lock_ released, so an exit after the test always wakes it.
#include <fcntl.h>
#include <sys/poll.h>  // (<poll.h> would be vfs/poll.h here)
#include <sys/stat.h>

#include <cstring>

#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/pidfd.h"
#include "kern/syscall_protos.h"
#include "vfs/file.h"
#include "vfs/poll.h"

namespace rump {

namespace {

// <linux/pidfd.h>
constexpr unsigned kPidfdNonblock = O_NONBLOCK;
constexpr unsigned kPidfdSignalThread = 1u << 0;
constexpr unsigned kPidfdSignalThreadGroup = 1u << 1;

class Pidfd : public KObject, public RefCounted<Pidfd>, public SigWatch {
 public:
  // The caller holds pid in the allocator for this object.
  Pidfd(Kernel& k, pid_t pid) : pid_(pid), kernel_(k) {
    SigWatch::notify = &Pidfd::notify;
    k.sig_watchers().add(*this);
  }

  pid_t pid() const { return pid_; }
  Kernel& kernel() const { return kernel_; }

  Mutex lock_{LockRank::kSocket};
  WaitQueue wq_{lock_};

 private:
  friend class RefCounted<Pidfd>;
  static void notify(SigWatch& w, Proc& p, int sig) {
    auto* s = static_cast<Pidfd*>(&w);
    if (sig != 0 || p.pid() != s->pid_) return;
    MutexLocker g(s->lock_);
    s->wq_.lock().assert_held();  // the queue's lock is the object's lock_
    if (!s->wq_.empty()) s->wq_.wakeup();
  }
  void last_unref() {
    kernel_.sig_watchers().remove(*this);
    {
      ProcTable& t = kernel_.procs();
      MutexLocker g(t.lock());
      t.pids().release(pid_);
    }
    delete this;
  }
  const pid_t pid_;
  Kernel& kernel_;
};

const FileOps& pidfd_ops();

Pidfd* pidfd_of(File& f) { return &f.ops() == &pidfd_ops() ? static_cast<Pidfd*>(f.data_) : nullptr; }

// The process a pidfd names, and what it is now.
enum class Life { kRunning, kZombie, kGone };

Life life_of(Pidfd& s) {
  ProcTable& t = s.kernel().procs();
  MutexLocker g(t.lock());
  Proc* p = t.find_locked(s.pid());
  if (!p) return Life::kGone;
  p->assert_tree_locked();
  return p->state_ == Proc::State::kZombie ? Life::kZombie : Life::kRunning;
}

class PidfdOps : public FileOps {
 public:
  short poll(File& f, short events, PollTable* pt) const override {
    Pidfd& s = *pidfd_of(f);
    if (pt) {
      MutexLocker g(s.lock_);
      s.wq_.lock().assert_held();  // the queue's lock is the object's lock_
      pt->add(s.wq_);
    }
    short m = 0;
    switch (life_of(s)) {
      case Life::kRunning: break;
      case Life::kZombie: m = POLLIN | POLLRDNORM; break;
      case Life::kGone: m = POLLIN | POLLRDNORM | POLLHUP; break;
    }
    return m & (events | POLLHUP);
  }
  Result<void> stat(File& f, struct stat* st) const override { return anon_inode_stat(f, st); }
  void close(File& f) const override {
    if (auto* s = static_cast<Pidfd*>(f.data_)) s->unref();
    f.data_ = nullptr;
  }
};

const PidfdOps g_pidfd_ops;
const FileOps& pidfd_ops() { return g_pidfd_ops; }

Result<Ref<Pidfd>> pidfd_get(Lwp& l, int fd) {
  Ref<File> f = TRY(fd_get(l, fd));
  Pidfd* s = pidfd_of(*f);
  if (!s) return err(EBADF);
  return Ref<Pidfd>(*s);
}

Result<PidfdTarget> resolve(Lwp& l, int fd) {
  Ref<File> f = TRY(fd_get(l, fd));
  Pidfd* s = pidfd_of(*f);
  if (!s) return err(EBADF);
  return PidfdTarget{s->pid(), f->flags()};
}

const PidfdResolverRegistrar g_resolver_registrar(&resolve);

// May l take descriptors from target? Linux's ptrace_may_access with
// PTRACE_MODE_ATTACH_REALCREDS: the same process; or CAP_SYS_PTRACE; or
// real uid and gid equal to all of the target's, and the target dumpable.
bool may_attach(Lwp& l, Proc& target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(target.lock_) {
  if (&target == &l.proc()) return true;
  const Cred& c = l.cred();
  if (c.capable(kCapSysPtrace)) return true;
  const Cred& t = *target.cred_;
  return c.uid == t.uid && c.uid == t.euid && c.uid == t.suid && c.gid == t.gid && c.gid == t.egid &&
         c.gid == t.sgid && target.dumpable_ != 0;
}

}  // namespace

Result<long> sys_pidfd_open(Lwp& l, pid_t pid, unsigned int flags) {
  if (flags & ~kPidfdNonblock) return err(EINVAL);
  if (pid <= 0) return err(EINVAL);
  Kernel& k = l.kernel();
  {
    ProcTable& t = k.procs();
    MutexLocker g(t.lock());
    Proc* p = t.find_locked(pid);
    if (!p || p == t.proc0()) {
      // A thread id that is not its process's pid names no process
      // (Linux: a pid with no thread-group leader).
      bool thread = false;
      for (Lwp& x : t.lwps_locked())
        if (x.tid() == pid && !x.dead_.load(std::memory_order_acquire)) thread = true;
      return err(thread && !p ? EINVAL : ESRCH);
    }
    t.pids().hold(pid);
  }
  auto* s = new (k.kmem()) Pidfd(k, pid);
  if (!s) {
    ProcTable& t = k.procs();
    MutexLocker g(t.lock());
    t.pids().release(pid);
    return err(ENOMEM);
  }
  Ref<Pidfd> sr = adopt_ref(s);
  Ref<File> f = TRY(File::create(k.kmem(), &g_pidfd_ops, nullptr, O_RDWR | (flags & kPidfdNonblock)));
  f->data_ = sr.leak();
  // Always close-on-exec, as Linux.
  return TRY(fd_install(l, std::move(f), true));
}

Result<long> sys_pidfd_send_signal(Lwp& l, int pidfd, int sig, UserPtr<void> info, unsigned int flags) {
  // Linux 6.9's scope flags: the whole process (the default) or its
  // thread-group leader. PIDFD_SIGNAL_PROCESS_GROUP is not served.
  if (flags & ~(kPidfdSignalThread | kPidfdSignalThreadGroup)) return err(EINVAL);
  if (flags == (kPidfdSignalThread | kPidfdSignalThreadGroup)) return err(EINVAL);
  Ref<Pidfd> s = TRY(pidfd_get(l, pidfd));
  pid_t pid = s->pid();
  if (info) {
    // The record's si_signo must be sig; rt_sigqueueinfo then checks who
    // may send which si_code, as Linux does here.
    siginfo_t head;
    TRY(copyin(l, info.addr, &head, sizeof head));
    if (head.si_signo != sig) return err(EINVAL);
    UserPtr<siginfo_t> ui{info.addr};
    if (flags & kPidfdSignalThread) return sys_rt_tgsigqueueinfo(l, pid, pid, sig, ui);
    return sys_rt_sigqueueinfo(l, pid, sig, ui);
  }
  if (flags & kPidfdSignalThread) return sys_tgkill(l, pid, pid, sig);
  return sys_kill(l, pid, sig);
}

Result<long> sys_pidfd_getfd(Lwp& l, int pidfd, int targetfd, unsigned int flags) {
  if (flags != 0) return err(EINVAL);
  Ref<Pidfd> s = TRY(pidfd_get(l, pidfd));
  RefPtr<File> f;
  {
    ProcTable& t = l.kernel().procs();
    MutexLocker g(t.lock());
    Proc* p = t.find_locked(s->pid());
    if (!p) return err(ESRCH);
    p->assert_tree_locked();
    // The process lock keeps exit1 from releasing the descriptor table
    // while we look: it sets exiting_ under this lock before it does.
    MutexLocker pg(p->lock_);
    if (!may_attach(l, *p)) return err(EPERM);
    // Exiting or a zombie: its descriptors are going or gone (Linux:
    // ESRCH for a task past exit_signals).
    if (p->state_ != Proc::State::kActive || p->exiting_) return err(ESRCH);
    Result<Ref<File>> r = proc_vfs(*p).table().get(targetfd);
    if (!r.ok()) return err(EBADF);
    f = std::move(*r);
  }
  return TRY(fd_install(l, Ref<File>(*f), true));
}

}  // namespace rump
