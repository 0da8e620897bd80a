// The upcalls: how the hypercall layer calls back into the kernel.
//
// They carry no kernel argument; the kernel is found through the calling
// thread's LWP (rumpuser_curlwp). A blocking hypercall gives the CPU back
// through backend_unschedule and takes one again through backend_schedule.
#include <rump/rump.h>
#include <rump/rumpuser.h>

#include <cstring>

#include "kern/curlwp.h"
#include "kern/kernel.h"

namespace rump {

namespace {

Lwp* cur() { return reinterpret_cast<Lwp*>(rumpuser_curlwp()); }

// The current process took a new program image: record its name.
void hyp_execnotify_impl(const char* comm) {
  Kernel* k = current_kernel();
  if (!k) return;
  Lwp* l = enter(*k);
  if (!l) return;
  if (!l->implicit()) {
    Proc& p = l->proc();
    MutexLocker g(p.lock_);
    std::strncpy(p.comm_, comm, sizeof p.comm_ - 1);
    p.comm_[sizeof p.comm_ - 1] = '\0';
  }
  leave(*k, l);
}

void hyp_schedule() {
  if (Lwp* l = cur(); l && !l->cpu()) l->kernel().sched().schedule(l);
}

void hyp_unschedule() {
  if (Lwp* l = cur(); l && l->cpu()) l->kernel().sched().unschedule(l);
}

void hyp_backend_unschedule(int nlocks, int* countp, void* interlock) {
  (void)nlocks;
  (void)interlock;
  Lwp* l = cur();
  if (l && l->cpu()) {
    l->kernel().sched().unschedule(l);
    *countp = 1;
  } else {
    *countp = 0;
  }
}

void hyp_backend_schedule(int nlocks, void* interlock) {
  (void)interlock;
  if (nlocks == 0) return;
  if (Lwp* l = cur()) l->kernel().sched().schedule(l);
}

void hyp_lwproc_switch(struct lwp* l) {
  if (Kernel* k = current_kernel()) bind_lwp(*k, reinterpret_cast<Lwp*>(l));
}

void hyp_lwproc_release() { rump_lwproc_releaselwp(); }

// For a hypervisor that serves remote clients: a new process for a client
// (priv is the client's cookie, unused here), named comm.
int hyp_lwproc_rfork(void* priv, int flags, const char* comm) {
  (void)priv;
  int e = rump_lwproc_rfork(flags);
  if (e == 0 && comm) hyp_execnotify_impl(comm);
  return e;
}

int hyp_lwproc_newlwp(pid_t pid) { return rump_lwproc_newlwp(pid); }

struct lwp* hyp_lwproc_curlwp() {
  Kernel* k = current_kernel();
  return k ? reinterpret_cast<struct lwp*>(bound_lwp(*k)) : nullptr;
}

int hyp_syscall(int nr, void* arg, long* retval) {
  Kernel* k = current_kernel();
  if (!k) return ENOSYS;
  long r = syscall_enter(*k, nr, static_cast<const long*>(arg));
  if (r < 0 && r >= -4095) return static_cast<int>(-r);
  retval[0] = r;
  return 0;
}

// The calling LWP's thread is going away: its LWP goes with it.
void hyp_lwpexit() { rump_lwproc_releaselwp(); }

void hyp_execnotify(const char* comm) { hyp_execnotify_impl(comm); }

pid_t hyp_getpid() {
  Lwp* l = cur();
  return l ? l->proc().pid() : -1;
}

// The calling LWP's kernel's fault-injection state (rump/fault.h).
struct rumpuser_faults* hyp_faults() {
  Lwp* l = cur();
  return l ? l->kernel().faults() : nullptr;
}

const rumpuser_hyperup kUpcalls = {
    .hyp_schedule = hyp_schedule,
    .hyp_unschedule = hyp_unschedule,
    .hyp_backend_unschedule = hyp_backend_unschedule,
    .hyp_backend_schedule = hyp_backend_schedule,
    .hyp_lwproc_switch = hyp_lwproc_switch,
    .hyp_lwproc_release = hyp_lwproc_release,
    .hyp_lwproc_rfork = hyp_lwproc_rfork,
    .hyp_lwproc_newlwp = hyp_lwproc_newlwp,
    .hyp_lwproc_curlwp = hyp_lwproc_curlwp,
    .hyp_syscall = hyp_syscall,
    .hyp_lwpexit = hyp_lwpexit,
    .hyp_execnotify = hyp_execnotify,
    .hyp_getpid = hyp_getpid,
    .hyp_faults = hyp_faults,
    .hyp__extra = {},
};

// The calling thread's kernel state that a backend running several
// threads on one host thread ("sim") must keep per thread.
void* locate_thread_ctx() { return &thread_ctx(); }
#ifndef NDEBUG
void* locate_held_ranks() { return &t_held_ranks; }
#endif

}  // namespace

int hyp_init() {
  if (int e = rumpuser_tls_register(locate_thread_ctx, sizeof(ThreadCtx))) return e;
#ifndef NDEBUG
  if (int e = rumpuser_tls_register(locate_held_ranks, sizeof(HeldRanks))) return e;
#endif
  return rumpuser_init(RUMPUSER_VERSION, &kUpcalls);
}

}  // namespace rump
