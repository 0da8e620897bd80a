// Scheduling system calls: sched_getscheduler, sched_setscheduler,
// sched_getparam, sched_setparam, sched_get_priority_min/max,
// sched_getaffinity, sched_setaffinity, getpriority, setpriority.
//
// The kernel's scheduler hands virtual CPUs to whichever LWP asks next;
// it has no priorities and does not pin. These calls keep each process's
// policy, real-time priority, nice value and CPU set with Linux's rules
// and errors (so programs that set and read them behave as on Linux), and
// report the kernel's virtual CPUs as the CPUs there are. Linux keeps
// them per thread; here they are per process. sched_policy_ carries
// SCHED_RESET_ON_FORK as sched_getscheduler reports it; fork1 applies it.
//
// Permissions as Linux: changing another user's process needs CAP_SYS_NICE
// (EPERM); lowering a nice value, or a real-time policy, needs
// CAP_SYS_NICE or an RLIMIT_NICE / RLIMIT_RTPRIO that allows it.
#include <sched.h>
#include <sys/resource.h>

#include <cstring>

#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif
#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif

namespace rump {

namespace {

constexpr int kMaxRtPrio = 99;
// The size of a CPU mask the kernel reads and writes: 256 CPUs, the most a
// kernel can have (as a Linux built for 256 CPUs).
constexpr size_t kCpuMaskBytes = Proc::kAffinityWords * sizeof(uint64_t);

bool valid_policy(int policy) {
  return policy == SCHED_OTHER || policy == SCHED_FIFO || policy == SCHED_RR || policy == SCHED_BATCH ||
         policy == SCHED_IDLE || policy == SCHED_DEADLINE;
}
bool rt_policy(int policy) { return policy == SCHED_FIFO || policy == SCHED_RR; }

// Runs fn(Proc&) on the live process pid names (0: the caller), with the
// tree lock held (it keeps the process alive). ESRCH if there is none.
template <class Fn>
auto with_proc(Lwp& l, pid_t pid, Fn&& fn) -> decltype(fn(l.proc())) {
  ProcTable& t = l.kernel().procs();
  MutexLocker g(t.lock());
  Proc* p = pid == 0 ? &l.proc() : t.find_locked(pid);
  if (!p || p == t.proc0()) return err(ESRCH);
  p->assert_tree_locked();
  if (p->state_ != Proc::State::kActive) return err(ESRCH);
  return fn(*p);
}

// Linux's check_same_owner: the caller's effective uid is the target's
// real or effective uid.
bool same_owner(const Cred& c, const Cred& t) { return c.euid == t.euid || c.euid == t.uid; }

Result<long> setscheduler(Lwp& l, pid_t pid, int policy, UserPtr<struct sched_param> param, bool keep_policy) {
  if (!param || pid < 0) return err(EINVAL);
  sched_param sp = TRY(copyin_obj(l, param));
  const Cred& c = l.cred();
  return with_proc(l, pid, [&](Proc& p) -> Result<long> {
    MutexLocker g(p.lock_);
    int pol = policy;
    int reset_on_fork = p.sched_policy_ & SCHED_RESET_ON_FORK;
    if (keep_policy) {
      pol = p.sched_policy_ & ~SCHED_RESET_ON_FORK;
    } else {
      reset_on_fork = pol & SCHED_RESET_ON_FORK;
      pol &= ~SCHED_RESET_ON_FORK;
      if (!valid_policy(pol)) return err(EINVAL);
    }
    int cur = p.sched_policy_ & ~SCHED_RESET_ON_FORK;
    unsigned prio = static_cast<unsigned>(sp.sched_priority);
    if (prio > kMaxRtPrio) return err(EINVAL);
    // SCHED_DEADLINE needs sched_setattr's parameters.
    if (pol == SCHED_DEADLINE) return err(EINVAL);
    if (rt_policy(pol) != (prio != 0)) return err(EINVAL);
    if (!c.capable(kCapSysNice)) {
      if (rt_policy(pol)) {
        rlim_t rtprio = p.rlimits_[RLIMIT_RTPRIO].rlim_cur;
        if (pol != cur && rtprio == 0) return err(EPERM);
        if (static_cast<int>(prio) > p.sched_priority_ && prio > rtprio) return err(EPERM);
      }
      Ref<Cred> tc = p.cred_.to_ref();
      if (!same_owner(c, *tc)) return err(EPERM);
    }
    p.sched_policy_ = pol | reset_on_fork;
    p.sched_priority_ = static_cast<int>(prio);
    return 0;
  });
}

}  // namespace

Result<long> sys_sched_getscheduler(Lwp& l, pid_t pid) {
  if (pid < 0) return err(EINVAL);
  return with_proc(l, pid, [](Proc& p) -> Result<long> {
    MutexLocker g(p.lock_);
    return p.sched_policy_;
  });
}

Result<long> sys_sched_setscheduler(Lwp& l, pid_t pid, int policy, UserPtr<struct sched_param> param) {
  if (policy < 0) return err(EINVAL);
  return setscheduler(l, pid, policy, param, false);
}

Result<long> sys_sched_setparam(Lwp& l, pid_t pid, UserPtr<struct sched_param> param) {
  return setscheduler(l, pid, 0, param, true);
}

Result<long> sys_sched_getparam(Lwp& l, pid_t pid, UserPtr<struct sched_param> param) {
  if (!param || pid < 0) return err(EINVAL);
  sched_param sp{};
  TRY(with_proc(l, pid, [&](Proc& p) -> Result<long> {
    MutexLocker g(p.lock_);
    sp.sched_priority = rt_policy(p.sched_policy_ & ~SCHED_RESET_ON_FORK) ? p.sched_priority_ : 0;
    return 0;
  }));
  TRY(copyout_obj(l, sp, param));
  return 0;
}

Result<long> sys_sched_get_priority_max(Lwp&, int policy) {
  if (rt_policy(policy)) return kMaxRtPrio;
  if (valid_policy(policy)) return 0;
  return err(EINVAL);
}

Result<long> sys_sched_get_priority_min(Lwp&, int policy) {
  if (rt_policy(policy)) return 1;
  if (valid_policy(policy)) return 0;
  return err(EINVAL);
}

Result<long> sys_sched_getaffinity(Lwp& l, pid_t pid, size_t cpusetsize, UserPtr<void> mask) {
  size_t ncpu = static_cast<size_t>(l.kernel().ncpu());
  if (cpusetsize * 8 < ncpu) return err(EINVAL);
  if (cpusetsize & (sizeof(long) - 1)) return err(EINVAL);
  uint64_t m[Proc::kAffinityWords] = {};
  TRY(with_proc(l, pid, [&](Proc& p) -> Result<long> {
    MutexLocker g(p.lock_);
    std::memcpy(m, p.affinity_, sizeof m);
    return 0;
  }));
  // Only the CPUs the kernel has.
  for (size_t i = 0; i < Proc::kAffinityWords; i++) {
    size_t lo = i * 64;
    if (ncpu <= lo) m[i] = 0;
    else if (ncpu < lo + 64) m[i] &= (uint64_t{1} << (ncpu - lo)) - 1;
  }
  size_t n = cpusetsize < kCpuMaskBytes ? cpusetsize : kCpuMaskBytes;
  TRY(copyout(l, m, mask.addr, n));
  return static_cast<long>(n);
}

Result<long> sys_sched_setaffinity(Lwp& l, pid_t pid, size_t cpusetsize, UserPtr<void> mask) {
  uint64_t m[Proc::kAffinityWords] = {};
  size_t n = cpusetsize < kCpuMaskBytes ? cpusetsize : kCpuMaskBytes;
  TRY(copyin(l, mask.addr, m, n));
  size_t ncpu = static_cast<size_t>(l.kernel().ncpu());
  bool any = false;
  for (size_t i = 0; i < ncpu; i++)
    if ((m[i / 64] >> (i % 64)) & 1) any = true;
  const Cred& c = l.cred();
  return with_proc(l, pid, [&](Proc& p) -> Result<long> {
    MutexLocker g(p.lock_);
    if (!c.capable(kCapSysNice)) {
      Ref<Cred> tc = p.cred_.to_ref();
      if (!same_owner(c, *tc)) return err(EPERM);
    }
    // No CPU the kernel has: EINVAL (Linux, after the permission check).
    if (!any) return err(EINVAL);
    std::memcpy(p.affinity_, m, sizeof m);
    return 0;
  });
}

// --- nice values

namespace {

// The processes which and who name, as Linux's getpriority/setpriority:
// calls fn(Proc&) on each live one under the tree lock; false if none.
template <class Fn>
Result<bool> for_each_prio_target(Lwp& l, int which, id_t who, Fn&& fn) {
  if (which != PRIO_PROCESS && which != PRIO_PGRP && which != PRIO_USER) return err(EINVAL);
  ProcTable& t = l.kernel().procs();
  Proc& self = l.proc();
  uid_t uid = l.cred().uid;
  MutexLocker g(t.lock());
  self.assert_tree_locked();
  bool found = false;
  auto visit = [&](Proc& p) {
    p.assert_tree_locked();
    if (&p == t.proc0() || p.state_ != Proc::State::kActive) return;
    found = true;
    fn(p);
  };
  if (which == PRIO_PROCESS) {
    Proc* p = who == 0 ? &self : t.find_locked(static_cast<pid_t>(who));
    if (p) visit(*p);
  } else {
    pid_t pgid = which == PRIO_PGRP ? (who == 0 ? self.pgid_ : static_cast<pid_t>(who)) : 0;
    uid_t u = which == PRIO_USER ? (who == 0 ? uid : static_cast<uid_t>(who)) : 0;
    t.for_each_locked([&](Proc& p) {
      p.assert_tree_locked();
      if (which == PRIO_PGRP ? p.pgid_ == pgid : p.cred()->uid == u) visit(p);
    });
  }
  return found;
}

}  // namespace

Result<long> sys_getpriority(Lwp& l, int which, id_t who) {
  // The raw call returns 20 - nice (1..40), so that it is never negative.
  int best = -1;
  bool found = TRY(for_each_prio_target(l, which, who, [&](Proc& p) {
    MutexLocker g(p.lock_);
    int v = 20 - p.nice_;
    if (v > best) best = v;
  }));
  if (!found) return err(ESRCH);
  return best;
}

Result<long> sys_setpriority(Lwp& l, int which, id_t who, int prio) {
  int nice = prio < -20 ? -20 : prio > 19 ? 19 : prio;
  const Cred& c = l.cred();
  int error = ESRCH;
  TRY(for_each_prio_target(l, which, who, [&](Proc& p) {
    MutexLocker g(p.lock_);
    Ref<Cred> tc = p.cred_.to_ref();
    if (c.euid != tc->uid && c.euid != tc->euid && !c.capable(kCapSysNice)) {
      error = EPERM;
      return;
    }
    // Lowering the nice value needs RLIMIT_NICE (20 - nice) or CAP_SYS_NICE.
    if (nice < p.nice_ && static_cast<rlim_t>(20 - nice) > p.rlimits_[RLIMIT_NICE].rlim_cur &&
        !c.capable(kCapSysNice)) {
      error = EACCES;
      return;
    }
    if (error == ESRCH) error = 0;
    p.nice_ = nice;
  }));
  if (error) return err(error);
  return 0;
}

}  // namespace rump
