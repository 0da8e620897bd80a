// rump_lwproc_*: binding host threads to processes and LWPs.
#include <rump/rump.h>

#include "kern/cputime.h"
#include "kern/curlwp.h"
#include "kern/fork.h"
#include "kern/futex.h"
#include "kern/kernel.h"

using rump::Kernel;
using rump::Lwp;

extern "C" {

int rump_lwproc_rfork(int flags) {
  Kernel* k = rump::current_kernel();
  if (!k) return ENOSYS;
  constexpr uint32_t kAllowed = RUMP_RFFDG | RUMP_RFCFDG | RUMP_RFMEM | RUMP_RFNOWAIT | RUMP_RFVMSPACE;
  uint32_t f = static_cast<uint32_t>(flags);
  if (f & ~kAllowed) return EINVAL;
  Lwp* l = rump::enter(*k);
  if (!l) return rump::enter_error(*k);
  rump::Result<rump::ForkResult> r = rump::fork1(*l, f | rump::RFPROC, nullptr);
  // The thread will run the new process: its CPU time is sampled.
  if (r.ok()) k->services().cputick()->kick_if_cheap();
  rump::leave(*k, l);
  if (!r.ok()) return r.error();
  rump::bind_lwp(*k, r.value().lwp);
  return 0;
}

int rump_lwproc_newlwp(pid_t pid) {
  Kernel* k = rump::current_kernel();
  if (!k) return ENOSYS;
  Lwp* l = rump::enter(*k);
  if (!l) return rump::enter_error(*k);
  rump::Result<Lwp*> nl = rump::err(ESRCH);
  rump::Proc* p = nullptr;
  {
    rump::ProcTable& t = k->procs();
    rump::MutexLocker g(t.lock());
    p = t.find_locked(pid);
    if (p) {
      p->assert_tree_locked();
      if (p->state_ != rump::Proc::State::kActive || p == t.proc0()) p = nullptr;
    }
    if (p) {
      rump::MutexLocker pg(p->lock_);
      if (p->exiting_) p = nullptr;
    }
  }
  // The tree lock is dropped before making the LWP (new_lwp takes it);
  // the process can't be reaped meanwhile unless it exits, which would
  // need one of its LWPs, and a process with none is already gone.
  if (p) nl = k->new_lwp(*p, Lwp::Kind::kProcess);
  if (nl.ok()) k->services().cputick()->kick_if_cheap();
  rump::leave(*k, l);
  if (!nl.ok()) return nl.error();
  rump::bind_lwp(*k, nl.value());
  return 0;
}

void rump_lwproc_switch(struct lwp* nl) {
  Kernel* k = rump::current_kernel();
  if (!k) return;
  Lwp* l = reinterpret_cast<Lwp*>(nl);
  if (l && (&l->kernel() != k || l->dead_.load())) return;
  rump::bind_lwp(*k, l);
  // The tick samples the LWPs that threads run; starting it takes a
  // moment inside the kernel, and happens only once the callout thread
  // exists (kick_if_cheap), so nothing else enters the kernel here.
  rump::CpuTick* tick = k->services().cputick();
  if (l && !tick->running() && k->services().callouts()->started()) {
    if (Lwp* x = rump::enter(*k)) {
      tick->kick_if_cheap();
      rump::leave(*k, x);
    }
  }
}

void rump_lwproc_releaselwp(void) {
  Kernel* k = rump::current_kernel();
  if (!k) return;
  Lwp* l = rump::bound_lwp(*k);
  if (!l) return;
  rump::bind_lwp(*k, nullptr);
  Lwp* i = rump::enter(*k);
  if (!i) return;
  k->release_lwp(l, 0);
  rump::leave(*k, i);
}

struct lwp* rump_lwproc_curlwp(void) {
  Kernel* k = rump::current_kernel();
  if (!k) return nullptr;
  return reinterpret_cast<struct lwp*>(rump::bound_lwp(*k));
}

}  // extern "C"

namespace rump {

void Kernel::release_lwp(Lwp* l, int exit_status) {
  Proc& p = l->proc();
  bool last;
  {
    MutexLocker g(p.lock_);
    last = p.nlwps_ == 1 && !p.exiting_;
  }
  // The last LWP ends the process, and exit1 leaves l (the caller's) a
  // husk; otherwise l just goes.
  if (last) {
    exit1(p, l, w_exitcode(exit_status, 0));
    free_lwp(l);
    return;
  }
  // Two LWPs released at once may each have seen the other and neither
  // was last: whichever finds the process left with none ends it (p may
  // be gone by then, so it is looked up again by pid).
  pid_t pid = p.pid();
  futex_lwp_exit(*l);
  free_lwp(l);
  end_if_lwpless(*this, pid, w_exitcode(exit_status, 0));
}

}  // namespace rump
