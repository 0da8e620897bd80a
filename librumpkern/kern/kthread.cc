// Kernel threads (see kthread.h).
#include "kern/kthread.h"

#include <rump/rumpuser.h>

#include <cstring>

#include "kern/kernel.h"

namespace rump {

// The host thread's body: become the LWP, take a CPU, run fn, then free
// the LWP before the thread ends (so halt, which waits for LWPs marked
// in_kernel_, never finds a kernel thread's LWP on its lists afterwards).
void* kthread_main(void* arg) {
  Kthread* t = static_cast<Kthread*>(arg);
  Kernel& k = t->kernel_;
  Lwp* l = t->lwp_;
  rumpuser_curlwpop(RUMPUSER_LWP_SET, reinterpret_cast<struct lwp*>(l));
  k.sched().schedule(l);
  // Its CPU time is proc0's (kern/cputime.h), all of it system time.
  cpu_on(*l);
  t->fn_(t->arg_);
  cpu_off(*l);
  k.unlink_lwp(l);
  l->in_kernel_.store(false, std::memory_order_release);
  k.sched().unschedule(l);
  rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, nullptr);
  rumpuser_curlwpop(RUMPUSER_LWP_DESTROY, reinterpret_cast<struct lwp*>(l));
  delete l;
  return nullptr;
}

Result<Kthread*> kthread_create(Kernel& k, const char* name, void (*fn)(void*), void* arg) {
  if (!fn) return err(EINVAL);
  Proc* p0 = k.procs().proc0();
  if (k.halting() || !p0) return err(EAGAIN);
  Kthread* t = new (k.kmem()) Kthread(k, fn, arg);
  if (!t) return err(ENOMEM);
  std::strncpy(t->name_, name ? name : "kthread", sizeof t->name_ - 1);
  Result<Lwp*> lr = k.new_lwp(*p0, Lwp::Kind::kKthread);
  if (!lr.ok()) {
    delete t;
    return Error{lr.error()};
  }
  Lwp* l = lr.value();
  // Inside the kernel from now until the thread frees its LWP: halt waits
  // for it (and tells it to stop through exiting_).
  l->in_kernel_.store(true, std::memory_order_seq_cst);
  t->lwp_ = l;
  rumpuser_curlwpop(RUMPUSER_LWP_CREATE, reinterpret_cast<struct lwp*>(l));
  int e = rumpuser_thread_create(kthread_main, t, t->name_, 1, 0, -1, &t->cookie_);
  if (e != 0) {
    k.unlink_lwp(l);
    rumpuser_curlwpop(RUMPUSER_LWP_DESTROY, reinterpret_cast<struct lwp*>(l));
    delete l;
    delete t;
    return err(EAGAIN);
  }
  return t;
}

void kthread_join(Kthread* t) {
  if (!t) return;
  rumpuser_thread_join(t->cookie_);
  delete t;
}

bool kthread_should_stop(Lwp& l) { return l.exiting_.load(std::memory_order_acquire); }

}  // namespace rump
