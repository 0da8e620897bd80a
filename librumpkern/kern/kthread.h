// kthread.h: kernel threads.
//
// A kernel thread is a host thread (rumpuser_thread_create, joinable) that
// runs a kernel function as its own LWP of proc0 (Lwp::Kind::kKthread),
// holding a virtual CPU while it runs kernel code (blocking hypercalls give
// the CPU back, as for every LWP). Kernel services (the callout thread) and
// components make them; whoever makes one joins it.
//
// Stopping: a kernel thread's function must return when its owner asks
// (its own stop flag and wake-up) and also when its LWP is told to exit:
// Kernel::halt sets exiting_ on every LWP inside the kernel and waits for
// them, and a kernel thread counts as inside the kernel for as long as it
// runs. So loops sleep interruptibly (Lwp::sleep(..., true)) and check
// kthread_should_stop(). The thread frees its own LWP as it ends, before
// halt sweeps the LWP list; kthread_join then only joins the host thread
// and frees the Kthread.
#pragma once

#include "base/kmem.h"
#include "base/result.h"

namespace rump {

class Kernel;
class Lwp;

class Kthread : public KObject {
 public:
  Kernel& kernel() const { return kernel_; }
  const char* name() const { return name_; }
  // The thread's LWP; valid only on the thread itself while fn runs.
  Lwp* lwp() const { return lwp_; }

 private:
  friend Result<Kthread*> kthread_create(Kernel&, const char*, void (*)(void*), void*);
  friend void kthread_join(Kthread*);
  friend void* kthread_main(void*);
  Kthread(Kernel& k, void (*fn)(void*), void* arg) : kernel_(k), fn_(fn), arg_(arg) {}

  Kernel& kernel_;
  void (*fn_)(void*);
  void* arg_;
  Lwp* lwp_ = nullptr;
  void* cookie_ = nullptr;
  char name_[32] = {};
};

// Starts fn(arg) on a new kernel thread. ENOMEM; EAGAIN when the host has
// no thread (or the kernel is halting).
Result<Kthread*> kthread_create(Kernel& k, const char* name, void (*fn)(void*), void* arg);

// Waits until the thread's function has returned, then frees t. Call with
// no kernel locks held (it blocks), from a thread other than t's.
void kthread_join(Kthread* t);

// For a kernel thread's loop: true once the kernel is halting or the
// calling LWP was told to exit.
bool kthread_should_stop(Lwp& l);

}  // namespace rump
