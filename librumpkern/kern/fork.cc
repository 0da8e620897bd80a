// fork1: process creation with FreeBSD's rfork semantics.
#include "kern/fork.h"

#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "kern/kernel.h"

namespace rump {

Result<void> fork1_check_flags(uint32_t flags) {
  if (flags & ~static_cast<uint32_t>(RFFLAGS_ALL)) return err(EINVAL);
  if ((flags & RFPROC) == 0) return err(EINVAL);
  if ((flags & (RFFDG | RFCFDG)) == (RFFDG | RFCFDG)) return err(EINVAL);
  if ((flags & RFTSIGZMB) == 0 && (flags & RFTSIGFLAGS_ALL) != 0) return err(EINVAL);
  if (flags & RFTSIGZMB) {
    int sig = (flags >> RFTSIGSHIFT) & RFTSIGMASK;
    if (sig > kNsig) return err(EINVAL);
  }
  if ((flags & RFMEM) && (flags & RFVMSPACE)) return err(EINVAL);
  return {};
}

Result<ForkResult> fork1(Lwp& l, uint32_t flags, const char* comm) {
  TRY(fork1_check_flags(flags));
  Kernel& k = l.kernel();
  ProcTable& t = k.procs();
  Proc& parent = l.proc();
  Ref<Cred> cred = parent.cred();

  // Limits, then a pid: all under the tree lock so two forks can't both
  // take the last slot.
  Proc* child = nullptr;
  pid_t pid;
  {
    MutexLocker g(t.lock());
    if (k.halting()) return err(EAGAIN);
    rlim_t nproc_limit;
    {
      MutexLocker pg(parent.lock_);
      nproc_limit = parent.rlimits_[RLIMIT_NPROC].rlim_cur;
    }
    if (!cred->is_root() && nproc_limit != RLIM_INFINITY) {
      rlim_t n = 0;
      t.for_each_locked([&](Proc& p) {
        p.assert_tree_locked();
        if (p.state_ != Proc::State::kZombie && p.cred()->uid == cred->uid) n++;
      });
      if (n >= nproc_limit) return err(EAGAIN);
    }
    uint32_t random = 0;
    if (t.pids().randomize) {
      size_t got = 0;
      rumpuser_getrandom(&random, sizeof random, RUMPUSER_RANDOM_NOWAIT, &got);
    }
    // maxproc and a pid first (EAGAIN), then the memory (ENOMEM): each
    // step is undone if a later one fails.
    TRY(t.count_proc_locked());
    Result<pid_t> r = t.pids().alloc((flags & RFHIGHPID) != 0, random);
    if (!r.ok()) {
      t.uncount_proc_locked();
      return Error{r.error()};
    }
    pid = r.value();
    child = new (k.kmem()) Proc(k, pid);
    if (!child) {
      t.pids().release(pid);
      t.uncount_proc_locked();
      return err(ENOMEM);
    }
  }
  // Until the child is published, failure undoes everything made so far.
  bool published = false;
  int ext_done = 0;
  absl::Cleanup undo = [&] {
    if (published) return;
    for (int i = ext_done - 1; i >= 0; i--) proc_extension(i)->exit(*child);
    MutexLocker g(t.lock());
    t.pids().release(pid);
    t.uncount_proc_locked();
    delete child;
  };

  // Process state the child takes from its parent: read under the
  // parent's lock, written under the (unpublished) child's.
  rlimit limits[RLIM_NLIMITS];
  char name[sizeof child->comm_];
  RefPtr<SigActs> parent_sa;
  int dumpable, nice, policy, priority;
  bool no_new_privs;
  uint64_t affinity[Proc::kAffinityWords];
  Proc::MmArgs mm_args;
  {
    MutexLocker pg(parent.lock_);
    if (!(flags & RFVMSPACE)) mm_args = parent.mm_args_;
    std::memcpy(limits, parent.rlimits_, sizeof limits);
    std::memcpy(name, parent.comm_, sizeof name);
    parent_sa = parent.sigacts_;
    dumpable = parent.dumpable_;
    no_new_privs = parent.no_new_privs_;
    nice = parent.nice_;
    policy = parent.sched_policy_;
    priority = parent.sched_priority_;
    std::memcpy(affinity, parent.affinity_, sizeof affinity);
  }
  // SCHED_RESET_ON_FORK: the child starts with the normal policy and no
  // negative nice value (Linux).
  constexpr int kSchedResetOnFork = 0x40000000;
  if (policy & kSchedResetOnFork) {
    policy = 0;
    priority = 0;
    if (nice < 0) nice = 0;
  }
  if (comm) {
    std::strncpy(name, comm, sizeof name - 1);
    name[sizeof name - 1] = '\0';
  }
  RefPtr<SigActs> child_sa;
  if ((flags & RFSIGSHARE) && parent_sa) {
    child_sa = parent_sa;
  } else {
    SigActs* sa = new (k.kmem()) SigActs();
    if (!sa) return err(ENOMEM);
    child_sa = RefPtr<SigActs>(kAdopt, sa);
    if (parent_sa) {
      KernelSigaction acts[kNsig];
      {
        SpinLocker sg(parent_sa->lock);
        std::memcpy(acts, parent_sa->act, sizeof acts);
      }
      SpinLocker cg(sa->lock);
      std::memcpy(sa->act, acts, sizeof acts);
    }
  }
  {
    MutexLocker cg(child->lock_);
    child->cred_ = cred;
    std::memcpy(child->rlimits_, limits, sizeof limits);
    std::memcpy(child->comm_, name, sizeof name);
    child->sigacts_ = child_sa;
    child->dumpable_ = dumpable;
    child->no_new_privs_ = no_new_privs;
    child->mm_args_ = mm_args;
    child->nice_ = nice;
    child->sched_policy_ = policy;
    child->sched_priority_ = priority;
    std::memcpy(child->affinity_, affinity, sizeof affinity);
  }
  child->umask_.store(parent.umask_.load());
  child->personality_.store(parent.personality_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  // membarrier registrations live in the address space on Linux, and fork
  // copies them with it.
  child->membarrier_registered_.store(parent.membarrier_registered_.load(std::memory_order_acquire),
                                      std::memory_order_relaxed);
  child->space_ = parent.space_;  // the vm faction's fork hook replaces it

  for (; ext_done < proc_extension_count(); ext_done++) {
    ProcExtension* ext = proc_extension(ext_done);
    TRY(ext->fork(parent, *child, flags));
  }

  Lwp* cl = TRY(k.new_lwp(*child, Lwp::Kind::kProcess));
  cl->sigmask_.store(l.sigmask_.load());
  // The alternate signal stack is inherited unless the child shares the
  // address space (Linux: CLONE_VM without CLONE_VFORK resets it).
  if (!(flags & RFMEM) || (flags & RFPPWAIT)) {
    cl->altstack_sp_ = l.altstack_sp_;
    cl->altstack_size_ = l.altstack_size_;
    cl->altstack_flags_ = l.altstack_flags_;
  }

  {
    MutexLocker g(t.lock());
    Proc* p = (flags & RFNOWAIT) ? t.init() : &parent;
    parent.assert_tree_locked();
    p->assert_tree_locked();
    child->assert_tree_locked();
    child->exit_signal_ = (flags & RFTSIGZMB) ? static_cast<int>((flags >> RFTSIGSHIFT) & RFTSIGMASK)
                                              : SIGCHLD;
    child->parent_ = p;
    child->pgid_ = parent.pgid_;
    child->sid_ = parent.sid_;
    t.pids().hold(child->pgid_);
    t.pids().hold(child->sid_);
    child->ppwait_ = (flags & RFPPWAIT) != 0;
    child->stopped_report_ = false;
    p->children_.push_back(*child);
    t.insert_locked(*child);
    child->state_ = Proc::State::kActive;
    published = true;
  }
  return ForkResult{child, cl};
}

}  // namespace rump
