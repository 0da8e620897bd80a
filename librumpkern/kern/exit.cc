// Process exit, zombies, reaping, and orphan reparenting.
#include <rump/rumpuser.h>

#include "kern/fork.h"
#include "kern/kernel.h"

namespace rump {

namespace {

// Frees a zombie: the parent reaped it (or nobody will).
void reap_locked(Kernel& k, Proc* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.proc_tree_lock_) {
  if (c->parent_) c->parent_->children_.erase(c->parent_->children_.iterator_to(*c));
  c->parent_ = nullptr;
  k.procs_.erase(c->pid());
  k.pids_.release(c->pid());
  k.pids_.release(c->pgid_);
  k.pids_.release(c->sid_);
  k.nprocs_--;
  delete c;
}

// Whether the parent asked not to keep zombies (SIGCHLD ignored or
// SA_NOCLDWAIT), or is init, which reaps everything at once.
bool parent_autoreaps(Kernel& k, Proc* parent) {
  if (parent == k.init_ || parent == k.proc0_) return true;
  RefPtr<SigActs> sa;
  {
    MutexLocker g(parent->lock_);
    sa = parent->sigacts_;
  }
  if (!sa) return false;
  KernelSigaction a = sa->get(SIGCHLD);
  return a.handler == reinterpret_cast<uintptr_t>(SIG_IGN) || (a.flags & SA_NOCLDWAIT);
}

}  // namespace

void exit1(Proc& p, Lwp* self, int wstatus) {
  Kernel& k = p.kernel();
  {
    MutexLocker g(p.lock_);
    if (p.exiting_) return;
    p.exiting_ = true;
    for (Lwp& l : p.lwps_) {
      if (&l == self) continue;
      l.exiting_.store(true);
    }
  }
  // Wake the other LWPs and wait until none is inside the kernel: after
  // this, no code runs on behalf of p but ours.
  for (long pause_ns = 10 * 1000;; pause_ns = pause_ns < 1000 * 1000 ? pause_ns * 2 : pause_ns) {
    bool busy = false;
    {
      MutexLocker g(p.lock_);
      for (Lwp& l : p.lwps_) {
        if (&l == self) continue;
        if (l.in_kernel_.load(std::memory_order_acquire)) {
          busy = true;
          l.interrupt();
        }
      }
    }
    if (!busy) break;
    rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, pause_ns);
  }

  // Per-faction state goes (descriptors are closed here).
  for (int i = proc_extension_count() - 1; i >= 0; i--) proc_extension(i)->exit(p);

  Proc* notify = nullptr;
  int notify_sig = 0;
  pid_t notify_pid = 0;
  {
    MutexLocker g(k.proc_tree_lock_);
    // LWPs: free the idle ones; bound ones (and the caller's) become husks
    // that their host threads free on their next kernel entry.
    {
      MutexLocker pg(p.lock_);
      while (!p.lwps_.empty()) {
        Lwp& l = p.lwps_.front();
        p.lwps_.pop_front();
        p.nlwps_--;
        if (&l == self || l.bound_.load()) {
          l.dead_.store(true);
          continue;
        }
        k.all_lwps_.erase(k.all_lwps_.iterator_to(l));
        k.pids_.release(l.tid());
        delete &l;
      }
    }
    // Orphans go to init, which reaps the dead ones at once.
    while (!p.children_.empty()) {
      Proc& c = p.children_.front();
      p.children_.pop_front();
      c.parent_ = k.init_;
      k.init_->children_.push_back(c);
      if (c.state_ == Proc::State::kZombie) reap_locked(k, &c);
    }
    p.state_ = Proc::State::kZombie;
    p.exit_status_ = wstatus;
    Proc* parent = p.parent_;
    // A waiter in wait4 sees the child's end either way: as a zombie to
    // collect, or (autoreaped) as a child that is no longer there.
    if (parent) parent->child_cv_.broadcast();
    if (parent == nullptr || parent_autoreaps(k, parent)) {
      reap_locked(k, &p);
    } else {
      if (p.exit_signal_ != 0) {
        notify = parent;
        notify_sig = p.exit_signal_;
      }
    }
    // Still under the tree lock, so the parent can't be reaped meanwhile.
    if (notify && notify_sig && post_signal(*notify, notify_sig)) notify_pid = notify->pid();
  }
  if (notify_pid > 0) kill_proc(k, notify_pid, notify_sig);
}

void kill_proc(Kernel& k, pid_t pid, int sig) {
  Proc* p;
  {
    MutexLocker g(k.proc_tree_lock_);
    p = k.find_proc_locked(pid);
    if (!p || p->state_ != Proc::State::kActive || p == k.init_ || p == k.proc0_) return;
    MutexLocker pg(p->lock_);
    if (p->exiting_) return;
  }
  // Nobody else can free p now: only its own exit1 makes it a zombie, and
  // exit1 runs once (p->exiting_). A racing exit1 makes ours return early.
  exit1(*p, nullptr, w_exitcode(0, sig));
}

}  // namespace rump
