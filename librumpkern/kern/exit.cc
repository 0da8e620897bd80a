// Process exit, zombies, reaping, and orphan reparenting.
#include <rump/rumpuser.h>

#include <cstring>

#include "kern/fork.h"
#include "kern/futex.h"
#include "kern/kernel.h"

namespace rump {

namespace {

// Whether the parent asked not to keep zombies (SIGCHLD ignored or
// SA_NOCLDWAIT), or is init, which reaps everything at once.
bool parent_autoreaps(Kernel& k, Proc* parent) {
  if (parent == k.procs().init() || parent == k.procs().proc0()) return true;
  RefPtr<SigActs> sa;
  {
    MutexLocker g(parent->lock_);
    sa = parent->sigacts_;
  }
  if (!sa) return false;
  KernelSigaction a = sa->get(SIGCHLD);
  return a.handler == reinterpret_cast<uintptr_t>(SIG_IGN) || (a.flags & SA_NOCLDWAIT);
}

// The process that adopts the children of p: its nearest ancestor that is
// a child subreaper and not exiting, else init (Linux's find_new_reaper).
Proc* find_reaper_locked(ProcTable& t, Proc& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.lock()) {
  p.assert_tree_locked();
  for (Proc* a = p.parent_; a != nullptr && a != t.init() && a != t.proc0();) {
    a->assert_tree_locked();
    if (a->child_subreaper_ && a->state_ == Proc::State::kActive) {
      MutexLocker g(a->lock_);
      if (!a->exiting_) return a;
    }
    a = a->parent_;
  }
  return t.init();
}

}  // namespace

void exit1(Proc& p, Lwp* self, int wstatus) {
  Kernel& k = p.kernel();
  bool others = false;
  {
    MutexLocker g(p.lock_);
    if (p.exiting_) return;
    p.exiting_ = true;
    for (Lwp& l : p.lwps_) {
      if (&l == self) continue;
      l.exiting_.store(true);
      others = true;
    }
    // Robust futexes and set_tid_address words of every LWP, while the
    // address space is still there (the caller's own at once when it is
    // the only one).
    if (!others)
      for (Lwp& l : p.lwps_) futex_lwp_exit(l);
  }
  if (others) {
    // Wake the other LWPs and wait until none is inside the kernel: after
    // this, no code runs on behalf of p but ours.
    drain_lwps([&p, self](absl::FunctionRef<void(Lwp&)> visit) {
      MutexLocker g(p.lock_);
      for (Lwp& l : p.lwps_)
        if (&l != self) visit(l);
    });
    MutexLocker g(p.lock_);
    for (Lwp& l : p.lwps_) futex_lwp_exit(l);
  }

  // The peak resident set, while the address space is there: it goes to
  // the parent with the process's times.
  cpu_note_exit_rss(p);

  // Per-faction state goes (descriptors are closed here).
  for (int i = proc_extension_count() - 1; i >= 0; i--) proc_extension(i)->exit(p);

  Proc* notify = nullptr;
  int notify_sig = 0;
  pid_t notify_pid = 0;
  // Processes that a signal posted under the tree lock must end, ended
  // once it is released.
  FatalSignals<64> fatal;
  {
    ProcTable& t = k.procs();
    MutexLocker g(t.lock());
    p.assert_tree_locked();
    // LWPs: free the idle ones; bound ones (and the caller's) become husks
    // that their host threads free on their next kernel entry.
    {
      MutexLocker pg(p.lock_);
      while (!p.lwps_.empty()) {
        Lwp& l = p.lwps_.front();
        p.lwps_.pop_front();
        p.nlwps_--;
        cpu_lwp_gone_locked(p, l);
        if (&l == self || l.bound_.load()) {
          l.dead_.store(true);
          continue;
        }
        t.remove_lwp_locked(l);
        t.pids().release(l.tid());
        delete &l;
      }
    }
    // Orphans go to the nearest living ancestor that asked to be their
    // subreaper, else to init, which reaps the dead ones at once. A
    // subreaper is told of a dead one as its parent would have been.
    // Children that asked for a parent-death signal get it.
    Proc* reaper = find_reaper_locked(t, p);
    reaper->assert_tree_locked();
    while (!p.children_.empty()) {
      Proc& c = p.children_.front();
      p.children_.pop_front();
      c.assert_tree_locked();
      c.parent_ = reaper;
      reaper->children_.push_back(c);
      if (c.state_ == Proc::State::kZombie) {
        if (reaper == t.init() || parent_autoreaps(k, reaper)) {
          t.reap_locked(c);
          continue;
        }
        reaper->child_cv_.broadcast();
        if (c.exit_signal_ != 0) fatal.post(*reaper, c.exit_signal_);
        continue;
      }
      int pdeath;
      {
        MutexLocker cg(c.lock_);
        pdeath = c.pdeath_signal_;
      }
      if (pdeath != 0) fatal.post(c, pdeath);
    }
    p.state_ = Proc::State::kZombie;
    p.exit_status_ = wstatus;
    // Process descriptors (pidfd) become readable; p can't be reaped
    // before this, as the tree lock is held.
    k.sig_watchers().notify(p, 0);
    Proc* parent = p.parent_;
    // A waiter in wait4 sees the child's end either way: as a zombie to
    // collect, or (autoreaped) as a child that is no longer there.
    if (parent) parent->child_cv_.broadcast();
    if (parent == nullptr || parent_autoreaps(k, parent)) {
      t.reap_locked(p);
    } else {
      if (p.exit_signal_ != 0) {
        notify = parent;
        notify_sig = p.exit_signal_;
      }
    }
    // Still under the tree lock, so the parent can't be reaped meanwhile.
    if (notify && notify_sig) {
      // What the parent reads (rt_sigtimedwait, signalfd): who ended, how.
      siginfo_t info;
      std::memset(&info, 0, sizeof info);
      info.si_signo = notify_sig;
      info.si_pid = p.pid();
      info.si_uid = p.cred()->uid;
      if (wstatus & 0x80) {
        info.si_code = CLD_DUMPED;
        info.si_status = wstatus & 0x7f;
      } else if (wstatus & 0x7f) {
        info.si_code = CLD_KILLED;
        info.si_status = wstatus & 0x7f;
      } else {
        info.si_code = CLD_EXITED;
        info.si_status = (wstatus >> 8) & 0xff;
      }
      Result<bool> r = post_signal_info(*notify, nullptr, info);
      if (r.ok() && *r) notify_pid = notify->pid();
    }
  }
  if (notify_pid > 0) kill_proc(k, notify_pid, notify_sig);
  fatal.kill_all(k);
}

namespace {

// Ends process pid with wstatus unless it is gone, exiting, init or proc0;
// with only_if_empty, also unless it still has an LWP.
void end_proc(Kernel& k, pid_t pid, int wstatus, bool only_if_empty) {
  Proc* p;
  {
    ProcTable& t = k.procs();
    MutexLocker g(t.lock());
    p = t.find_locked(pid);
    if (!p || p == t.init() || p == t.proc0()) return;
    p->assert_tree_locked();
    if (p->state_ != Proc::State::kActive) return;
    MutexLocker pg(p->lock_);
    if (p->exiting_) return;
    if (only_if_empty && p->nlwps_ != 0) return;
  }
  // Nobody else can free p now: only its own exit1 makes it a zombie, and
  // exit1 runs once (p->exiting_). A racing exit1 makes ours return early.
  // The caller may be an LWP of p (tgkill of a fatal signal to another of
  // its LWPs that is not in the kernel): it ends with p as it would by
  // exit, and exit1 must not wait for it to leave the kernel.
  Lwp* cur = reinterpret_cast<Lwp*>(rumpuser_curlwp());
  exit1(*p, cur != nullptr && &cur->proc() == p ? cur : nullptr, wstatus);
}

}  // namespace

void kill_proc(Kernel& k, pid_t pid, int sig) { end_proc(k, pid, w_exitcode(0, sig), false); }

void end_if_lwpless(Kernel& k, pid_t pid, int wstatus) { end_proc(k, pid, wstatus, true); }

}  // namespace rump
