// Process system calls: ids, exit, wait, process groups and sessions,
// umask, resource limits.
#include <fcntl.h>
#include <sys/wait.h>

#include <cstring>

#include "kern/copy.h"
#include "kern/fork.h"
#include "kern/kernel.h"
#include "kern/pidfd.h"
#include "kern/syscall_protos.h"

namespace rump {

Result<long> sys_getpid(Lwp& l) { return l.proc().pid(); }

Result<long> sys_gettid(Lwp& l) { return l.tid(); }

Result<long> sys_getppid(Lwp& l) {
  Proc& p = l.proc();
  MutexLocker g(p.tree_lock());
  Proc* pp = p.parent_;
  return pp ? pp->pid() : 0;
}

// Linux's exit ends the calling thread and exit_group the process. A local
// client's LWP is not a user thread that can vanish on its own, so both end
// the whole process (all its LWPs) with the status, and the calling host
// thread goes on in implicit context. In implicit context the process is
// init, which cannot exit: EPERM.
Result<long> sys_exit(Lwp& l, int status) { return sys_exit_group(l, status); }

Result<long> sys_exit_group(Lwp& l, int status) {
  Proc& p = l.proc();
  if (&p == l.kernel().procs().init() || l.implicit()) return err(EPERM);
  exit1(p, &l, w_exitcode(status, 0));
  return 0;
}

namespace {

enum class WaitId { kAll, kPid, kPgid };

// waitid's idtype for a child named by a pidfd (Linux 5.4's P_PIDFD).
constexpr int kPPidfd = 3;

struct WaitRequest {
  WaitId idtype;
  pid_t id;
  int options;
  bool reap;  // false for WNOWAIT
};

struct WaitResult {
  pid_t pid = 0;
  int status = 0;
  uid_t uid = 0;
  CpuUsage usage;  // the child's and its reaped children's (Linux's RUSAGE_BOTH)
};

bool matches(const WaitRequest& w, const Proc& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.tree_lock()) {
  switch (w.idtype) {
    case WaitId::kAll: return true;
    case WaitId::kPid: return c.pid() == w.id;
    case WaitId::kPgid: return c.pgid_ == w.id;
  }
  return false;
}

// Waits for a child of l's process that matches; 0 pid with WNOHANG and
// none ready. ECHILD with no matching child, EINTR on a signal.
Result<WaitResult> do_wait(Lwp& l, const WaitRequest& w) {
  ProcTable& t = l.kernel().procs();
  Proc& self = l.proc();
  MutexLocker g(t.lock());
  self.assert_tree_locked();
  for (;;) {
    bool any = false;
    for (Proc& c : self.children_) {
      c.assert_tree_locked();
      if (!matches(w, c)) continue;
      any = true;
      if (c.state_ != Proc::State::kZombie) continue;
      WaitResult r{c.pid(), c.exit_status_, c.cred()->uid, {}};
      if (w.reap) cpu_settle_host_rss(c);
      r.usage = cpu_proc_usage(c, false);
      r.usage.add(cpu_proc_usage(c, true));
      if (w.reap) t.reap_locked(c);
      return r;
    }
    if (!any) return err(ECHILD);
    if (w.options & WNOHANG) return WaitResult{};
    if (int e = l.sleep(self.child_cv_, t.lock(), -1, true)) return err(e);
  }
}

}  // namespace

Result<long> sys_wait4(Lwp& l, pid_t pid, UserPtr<int> wstatus, int options, UserPtr<struct rusage> ru) {
  if (options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL)) return err(EINVAL);
  if (pid == INT32_MIN) return err(ESRCH);
  WaitRequest w{WaitId::kAll, 0, options, true};
  if (pid > 0) {
    w.idtype = WaitId::kPid, w.id = pid;
  } else if (pid == 0) {
    Proc& self = l.proc();
    MutexLocker g(self.tree_lock());
    w.idtype = WaitId::kPgid, w.id = self.pgid_;
  } else if (pid < -1) {
    w.idtype = WaitId::kPgid, w.id = -pid;
  }
  WaitResult r = TRY(do_wait(l, w));
  if (r.pid != 0 && wstatus) TRY(copyout_obj(l, r.status, wstatus));
  if (ru) {
    struct rusage out;
    std::memset(&out, 0, sizeof out);
    if (r.pid != 0) cpu_fill_rusage(r.usage, out);
    TRY(copyout_obj(l, out, ru));
  }
  return r.pid;
}

Result<long> sys_waitid(Lwp& l, int idtype, id_t id, UserPtr<siginfo_t> info, int options,
                        UserPtr<struct rusage> ru) {
  if (options & ~(WNOHANG | WNOWAIT | WEXITED | WSTOPPED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL))
    return err(EINVAL);
  if ((options & (WEXITED | WSTOPPED | WCONTINUED)) == 0) return err(EINVAL);
  WaitRequest w{WaitId::kAll, 0, options, (options & WNOWAIT) == 0};
  bool nonblock_pidfd = false;
  switch (idtype) {
    case P_ALL: break;
    case P_PID:
      if (static_cast<pid_t>(id) <= 0) return err(EINVAL);
      w.idtype = WaitId::kPid, w.id = static_cast<pid_t>(id);
      break;
    case P_PGID:
      if (static_cast<pid_t>(id) < 0) return err(EINVAL);
      w.idtype = WaitId::kPgid;
      if (id == 0) {
        Proc& self = l.proc();
        MutexLocker g(self.tree_lock());
        w.id = self.pgid_;
      } else {
        w.id = static_cast<pid_t>(id);
      }
      break;
    case kPPidfd: {
      if (static_cast<int>(id) < 0) return err(EINVAL);
      PidfdTarget pt = TRY(pidfd_resolve(l, static_cast<int>(id)));
      w.idtype = WaitId::kPid, w.id = pt.pid;
      // A PIDFD_NONBLOCK descriptor does not wait: EAGAIN instead of
      // blocking when the child has not ended (Linux 5.10).
      if (pt.file_flags & O_NONBLOCK) {
        if ((options & WNOHANG) == 0) nonblock_pidfd = true;
        w.options |= WNOHANG;
      }
      break;
    }
    default:
      return err(EINVAL);
  }
  // Without WEXITED only stop/continue events are asked for, and there are
  // none here (no job control): WNOHANG reports nothing, else ECHILD.
  if ((options & WEXITED) == 0 && (options & WNOHANG) == 0) return err(ECHILD);
  WaitResult r = (options & WEXITED) ? TRY(do_wait(l, w)) : WaitResult{};
  if (r.pid == 0 && nonblock_pidfd) return err(EAGAIN);
  if (info) {
    siginfo_t si;
    std::memset(&si, 0, sizeof si);
    if (r.pid != 0) {
      si.si_signo = SIGCHLD;
      si.si_pid = r.pid;
      si.si_uid = r.uid;
      if (WIFEXITED(r.status)) {
        si.si_code = CLD_EXITED;
        si.si_status = WEXITSTATUS(r.status);
      } else {
        si.si_code = WCOREDUMP(r.status) ? CLD_DUMPED : CLD_KILLED;
        si.si_status = WTERMSIG(r.status);
      }
    }
    TRY(copyout_obj(l, si, info));
  }
  if (ru) {
    struct rusage out;
    std::memset(&out, 0, sizeof out);
    if (r.pid != 0) cpu_fill_rusage(r.usage, out);
    TRY(copyout_obj(l, out, ru));
  }
  return 0;
}

namespace {
PidfdResolveFn g_pidfd_resolver = nullptr;  // set while libraries load
}  // namespace

PidfdResolverRegistrar::PidfdResolverRegistrar(PidfdResolveFn fn) { g_pidfd_resolver = fn; }

Result<PidfdTarget> pidfd_resolve(Lwp& l, int fd) {
  if (!g_pidfd_resolver) return err(EBADF);
  return g_pidfd_resolver(l, fd);
}

namespace {
// The process a pid names for the id queries (0: the caller), or nullptr.
Proc* find_target_locked(Lwp& l, ProcTable& t, pid_t pid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.lock()) {
  Proc* p = pid == 0 ? &l.proc() : t.find_locked(pid);
  return p == t.proc0() ? nullptr : p;
}
}  // namespace

Result<long> sys_getpgid(Lwp& l, pid_t pid) {
  if (pid < 0) return err(ESRCH);
  ProcTable& t = l.kernel().procs();
  MutexLocker g(t.lock());
  Proc* p = find_target_locked(l, t, pid);
  if (!p) return err(ESRCH);
  p->assert_tree_locked();
  return p->pgid_;
}

Result<long> sys_getpgrp(Lwp& l) { return sys_getpgid(l, 0); }

Result<long> sys_getsid(Lwp& l, pid_t pid) {
  if (pid < 0) return err(ESRCH);
  ProcTable& t = l.kernel().procs();
  MutexLocker g(t.lock());
  Proc* p = find_target_locked(l, t, pid);
  if (!p) return err(ESRCH);
  p->assert_tree_locked();
  return p->sid_;
}

Result<long> sys_setsid(Lwp& l) {
  ProcTable& t = l.kernel().procs();
  Proc& p = l.proc();
  MutexLocker g(t.lock());
  p.assert_tree_locked();
  // EPERM if the caller already leads a group (POSIX), or any process's
  // group has its pid as id.
  if (p.pgid_ == p.pid()) return err(EPERM);
  if (t.find_if_locked([&p](Proc& q) {
        q.assert_tree_locked();
        return q.pgid_ == p.pid();
      }))
    return err(EPERM);
  t.pids().hold(p.pid());
  t.pids().hold(p.pid());
  t.pids().release(p.pgid_);
  t.pids().release(p.sid_);
  p.pgid_ = p.sid_ = p.pid();
  return p.pid();
}

Result<long> sys_setpgid(Lwp& l, pid_t pid, pid_t pgid) {
  ProcTable& t = l.kernel().procs();
  Proc& self = l.proc();
  // Linux's order of checks: pgid 0 means the target's pid, then a
  // negative group is EINVAL, then a negative pid finds no process.
  if (pgid == 0) pgid = pid == 0 ? self.pid() : pid;
  if (pgid < 0) return err(EINVAL);
  if (pid < 0) return err(ESRCH);
  MutexLocker g(t.lock());
  self.assert_tree_locked();
  Proc* p = find_target_locked(l, t, pid);
  if (!p) return err(ESRCH);
  p->assert_tree_locked();
  if (p->state_ == Proc::State::kZombie) return err(ESRCH);
  if (p != &self) {
    if (p->parent_ != &self) return err(ESRCH);
    if (p->sid_ != self.sid_) return err(EPERM);
  }
  if (p->sid_ == p->pid()) return err(EPERM);  // a session leader
  if (pgid == 0) pgid = p->pid();
  if (pgid != p->pid()) {
    // The group must exist in the caller's session.
    pid_t sid = self.sid_;
    bool found = t.find_if_locked([pgid, sid](Proc& q) {
      q.assert_tree_locked();
      return q.pgid_ == pgid && q.sid_ == sid && q.state_ != Proc::State::kZombie;
    }) != nullptr;
    if (!found) return err(EPERM);
  }
  if (pgid != p->pgid_) {
    t.pids().hold(pgid);
    t.pids().release(p->pgid_);
    p->pgid_ = pgid;
  }
  return 0;
}

Result<long> sys_umask(Lwp& l, mode_t mask) {
  return l.proc().umask_.exchange(mask & 0777);
}

namespace {

bool valid_rlimit(const rlimit& r) { return r.rlim_cur <= r.rlim_max; }

Result<void> do_prlimit(Lwp& l, Proc& p, int resource, const rlimit* nl, rlimit* ol) {
  if (resource < 0 || resource >= RLIM_NLIMITS) return err(EINVAL);
  if (nl && !valid_rlimit(*nl)) return err(EINVAL);
  MutexLocker g(p.lock_);
  rlimit& cur = p.rlimits_[resource];
  if (ol) *ol = cur;
  if (nl) {
    if (nl->rlim_max > cur.rlim_max && !l.cred().is_root()) return err(EPERM);
    if (resource == RLIMIT_NOFILE && nl->rlim_max > 1024 * 1024) return err(EPERM);
    cur = *nl;
  }
  return {};
}

}  // namespace

Result<long> sys_getrlimit(Lwp& l, int resource, UserPtr<struct rlimit> rlim) {
  rlimit r;
  TRY(do_prlimit(l, l.proc(), resource, nullptr, &r));
  TRY(copyout_obj(l, r, rlim));
  return 0;
}

Result<long> sys_setrlimit(Lwp& l, int resource, UserPtr<struct rlimit> rlim) {
  rlimit r = TRY(copyin_obj(l, rlim));
  TRY(do_prlimit(l, l.proc(), resource, &r, nullptr));
  return 0;
}

Result<long> sys_prlimit64(Lwp& l, pid_t pid, int resource, UserPtr<struct rlimit> new_limit,
                           UserPtr<struct rlimit> old_limit) {
  rlimit nl;
  if (new_limit) nl = TRY(copyin_obj(l, new_limit));
  Kernel& k = l.kernel();
  Proc* p = &l.proc();
  if (pid < 0) return err(ESRCH);
  if (pid != 0 && pid != p->pid()) {
    // Another process: the caller must be root or have all ids equal
    // (Linux's rule). The tree lock keeps p alive meanwhile.
    ProcTable& t = k.procs();
    MutexLocker g(t.lock());
    Proc* q = t.find_locked(pid);
    if (!q || q == t.proc0()) return err(ESRCH);
    q->assert_tree_locked();
    if (q->state_ != Proc::State::kActive) return err(ESRCH);
    Ref<Cred> tc = q->cred();
    const Cred& c = l.cred();
    if (!c.is_root() && !(c.uid == tc->uid && c.uid == tc->euid && c.uid == tc->suid &&
                          c.gid == tc->gid && c.gid == tc->egid && c.gid == tc->sgid))
      return err(EPERM);
    rlimit ol;
    TRY(do_prlimit(l, *q, resource, new_limit ? &nl : nullptr, &ol));
    if (old_limit) TRY(copyout_obj(l, ol, old_limit));
    return 0;
  }
  rlimit ol;
  TRY(do_prlimit(l, *p, resource, new_limit ? &nl : nullptr, &ol));
  if (old_limit) TRY(copyout_obj(l, ol, old_limit));
  return 0;
}

}  // namespace rump
