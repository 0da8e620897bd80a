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
// A thread's descriptor (PIDFD_THREAD, Linux 6.9) names one LWP by its
// tid, held the same way (tids come from the pid allocator), and knows its
// process. It is readable once that LWP has ended (with POLLHUP: an ended
// LWP is gone at once, as a Linux thread that is not the leader is reaped
// at once; the leader's, whose tid is the pid, reads as a zombie until its
// process is reaped); its signals go to the thread unless
// PIDFD_SIGNAL_THREAD_GROUP says otherwise; pidfd_getfd reaches its
// process's descriptors while it lives; waitid(P_PIDFD) looks for a child
// of its tid, which only a leader's is.
//
// Readiness, as Linux's pidfd_poll: POLLIN|POLLRDNORM once the process is
// a zombie, with POLLHUP too once it is reaped. Each Pidfd is a SigWatch
// (kern/signal.h); exit1 notifies the watchers with sig 0 when a process
// becomes a zombie, and with -tid when an LWP of a living process ends
// (Kernel::unlink_lwp), and the pidfds of that process wake their queue.
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
constexpr unsigned kPidfdThread = O_EXCL;
constexpr unsigned kPidfdSignalThread = 1u << 0;
constexpr unsigned kPidfdSignalThreadGroup = 1u << 1;

class Pidfd : public KObject, public RefCounted<Pidfd>, public SigWatch {
 public:
  // The caller holds pid (a tid if thread) in the allocator for this
  // object; proc_pid is the process's (pid, unless thread).
  Pidfd(Kernel& k, pid_t pid, bool thread, pid_t proc_pid)
      : pid_(pid), proc_pid_(proc_pid), thread_(thread), kernel_(k) {
    SigWatch::notify = &Pidfd::notify;
    k.sig_watchers().add(*this);
  }

  pid_t pid() const { return pid_; }
  pid_t proc_pid() const { return proc_pid_; }
  bool thread() const { return thread_; }
  Kernel& kernel() const { return kernel_; }

  Mutex lock_{LockRank::kSocket};
  WaitQueue wq_{lock_};

 private:
  friend class RefCounted<Pidfd>;
  static void notify(SigWatch& w, Proc& p, int sig) {
    auto* s = static_cast<Pidfd*>(&w);
    if (sig > 0 || p.pid() != s->proc_pid_) return;
    if (sig < 0 && !s->thread_) return;
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
  const pid_t proc_pid_;
  const bool thread_;
  Kernel& kernel_;
};

const FileOps& pidfd_ops();

Pidfd* pidfd_of(File& f) { return &f.ops() == &pidfd_ops() ? static_cast<Pidfd*>(f.data_) : nullptr; }

// The process a pidfd names, and what it is now.
enum class Life { kRunning, kZombie, kGone };

// A thread's LWP, while it has not ended.
Lwp* live_lwp_locked(ProcTable& t, pid_t tid, pid_t proc_pid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.lock()) {
  Lwp* x = t.find_tid_locked(tid);
  if (!x || x->dead_.load(std::memory_order_acquire) || !x->proc_hook_.is_linked() || x->proc().pid() != proc_pid)
    return nullptr;
  return x;
}

Life life_of(Pidfd& s) {
  ProcTable& t = s.kernel().procs();
  MutexLocker g(t.lock());
  if (s.thread()) {
    if (live_lwp_locked(t, s.pid(), s.proc_pid())) return Life::kRunning;
    // Ended: a leader waits as a zombie for its process to be reaped.
    if (s.pid() != s.proc_pid() || !t.find_locked(s.proc_pid())) return Life::kGone;
    return Life::kZombie;
  }
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
  if (flags & ~(kPidfdNonblock | kPidfdThread)) return err(EINVAL);
  if (pid <= 0) return err(EINVAL);
  Kernel& k = l.kernel();
  bool thread = (flags & kPidfdThread) != 0;
  pid_t proc_pid = pid;
  if (thread) {
    // Any thread, the leader or another (Linux 6.9).
    ProcTable& t = k.procs();
    MutexLocker g(t.lock());
    Lwp* x = t.find_tid_locked(pid);
    if (!x || x->dead_.load(std::memory_order_acquire) || !x->proc_hook_.is_linked() ||
        x->kind() == Lwp::Kind::kKthread || &x->proc() == t.proc0())
      return err(ESRCH);
    proc_pid = x->proc().pid();
    t.pids().hold(pid);
  } else {
    ProcTable& t = k.procs();
    MutexLocker g(t.lock());
    Proc* p = t.find_locked(pid);
    if (!p || p == t.proc0()) {
      // A thread id that is not its process's pid names no process
      // (Linux 6.18: ENOENT, a pid with no thread-group leader; EINVAL
      // before).
      bool thread = false;
      for (Lwp& x : t.lwps_locked())
        if (x.tid() == pid && !x.dead_.load(std::memory_order_acquire)) thread = true;
      return err(thread && !p ? ENOENT : ESRCH);
    }
    t.pids().hold(pid);
  }
  auto* s = new (k.kmem()) Pidfd(k, pid, thread, proc_pid);
  if (!s) {
    ProcTable& t = k.procs();
    MutexLocker g(t.lock());
    t.pids().release(pid);
    return err(ENOMEM);
  }
  Ref<Pidfd> sr = adopt_ref(s);
  Ref<File> f = TRY(File::create(k.kmem(), &g_pidfd_ops, nullptr, O_RDWR | (flags & (kPidfdNonblock | kPidfdThread))));
  f->data_ = sr.leak();
  // Always close-on-exec, as Linux.
  return TRY(fd_install(l, std::move(f), true));
}

Result<long> sys_pidfd_send_signal(Lwp& l, int pidfd, int sig, UserPtr<void> info, unsigned int flags) {
  // Linux 6.9's scope flags: the whole process or its thread (the
  // descriptor's kind says which by default: a process's thread is its
  // leader). PIDFD_SIGNAL_PROCESS_GROUP is not served.
  if (flags & ~(kPidfdSignalThread | kPidfdSignalThreadGroup)) return err(EINVAL);
  if (flags == (kPidfdSignalThread | kPidfdSignalThreadGroup)) return err(EINVAL);
  Ref<Pidfd> s = TRY(pidfd_get(l, pidfd));
  pid_t pid = s->proc_pid();
  pid_t tid = s->pid();
  if (s->thread()) {
    // Either scope goes through the thread: ESRCH once it has ended.
    if (flags == 0) flags = kPidfdSignalThread;
    ProcTable& t = l.kernel().procs();
    MutexLocker g(t.lock());
    if (!live_lwp_locked(t, tid, pid)) return err(ESRCH);
  } else {
    tid = pid;  // a process's thread is its leader
  }
  if (info) {
    // The record's si_signo must be sig; rt_sigqueueinfo then checks who
    // may send which si_code, as Linux does here.
    siginfo_t head;
    TRY(copyin(l, info.addr, &head, sizeof head));
    if (head.si_signo != sig) return err(EINVAL);
    UserPtr<siginfo_t> ui{info.addr};
    if (flags & kPidfdSignalThread) return sys_rt_tgsigqueueinfo(l, pid, tid, sig, ui);
    return sys_rt_sigqueueinfo(l, pid, sig, ui);
  }
  if (flags & kPidfdSignalThread) return sys_tgkill(l, pid, tid, sig);
  return sys_kill(l, pid, sig);
}

Result<long> sys_pidfd_getfd(Lwp& l, int pidfd, int targetfd, unsigned int flags) {
  if (flags != 0) return err(EINVAL);
  Ref<Pidfd> s = TRY(pidfd_get(l, pidfd));
  RefPtr<File> f;
  {
    ProcTable& t = l.kernel().procs();
    MutexLocker g(t.lock());
    // A thread's descriptor reaches its process's table while it lives.
    if (s->thread() && !live_lwp_locked(t, s->pid(), s->proc_pid())) return err(ESRCH);
    Proc* p = t.find_locked(s->proc_pid());
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
