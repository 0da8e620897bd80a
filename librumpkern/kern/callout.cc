// Callouts and the callout thread (see callout.h).
#include "kern/callout.h"

#include <rump/rumpuser.h>

#include "kern/clock.h"
#include "kern/kernel.h"
#include "kern/kthread.h"

namespace rump {

// --- Callout

Callout::~Callout() {
  if (q_ && hook_.is_linked()) halt();
}

void Callout::init(CalloutQueue& q, Fn fn, void* arg) {
  q_ = &q;
  qlock_ = &q.lock_;
  fn_ = fn;
  arg_ = arg;
}

void Callout::schedule(int64_t ns_from_now) {
  CalloutQueue& q = *q_;
  int64_t now = mono_now_ns();
  bool start_thread;
  {
    MutexLocker g(q.lock_);
    qlock_->assert_held();
    q.stop_locked(*this);
    deadline_ = ns_from_now <= 0 ? now : now + ns_from_now;
    seq_ = q.next_seq_++;
    q.pending_.insert(*this);
    // A deadline before the thread's own wake-up (see sleep_until_).
    if (deadline_ < q.sleep_until_) {
      q.sleep_until_ = 0;
      q.wakeups_++;
      q.wake_cv_.signal();
    }
    start_thread = !q.thread_started_;
    q.thread_started_ = true;
  }
  // The thread starts with the first callout, so a kernel that never uses
  // one boots and halts without making a host thread.
  if (start_thread) q.start_thread();
}

bool Callout::stop() {
  CalloutQueue& q = *q_;
  MutexLocker g(q.lock_);
  return q.stop_locked(*this);
}

bool Callout::halt() {
  CalloutQueue& q = *q_;
  Lwp* self = reinterpret_cast<Lwp*>(rumpuser_curlwp());
  MutexLocker g(q.lock_);
  bool was = q.stop_locked(*this);
  // From the callout's own function the wait would never end.
  while (q.running_ == this && q.thread_lwp_ != self) q.done_cv_.wait(q.lock_);
  return was;
}

bool Callout::pending() const {
  MutexLocker g(q_->lock_);
  return hook_.is_linked();
}

bool Callout::running() const {
  MutexLocker g(q_->lock_);
  return q_->running_ == this;
}

// --- CalloutQueue

Result<CalloutQueue*> CalloutQueue::create(Kernel& k) {
  CalloutQueue* q = new (k.kmem()) CalloutQueue(k);
  if (!q) return err(ENOMEM);
  return q;
}

void CalloutQueue::start() {
  {
    MutexLocker g(lock_);
    if (thread_started_) return;
    thread_started_ = true;
  }
  start_thread();
}

void CalloutQueue::start_thread() {
  Result<Kthread*> t = kthread_create(kernel_, "callout", thread_main, this);
  MutexLocker g(lock_);
  if (t.ok()) {
    thread_ = t.value();
  } else {
    // Pending callouts wait for the next schedule() to try again.
    thread_started_ = false;
    kernel_.printf("callout: cannot start the callout thread: error %d\n", t.error());
  }
}

CalloutQueue::~CalloutQueue() {
  {
    MutexLocker g(lock_);
    stop_ = true;
    wake_cv_.broadcast();
  }
  Kthread* t;
  {
    MutexLocker g(lock_);
    t = thread_;
  }
  if (t) kthread_join(t);
  MutexLocker g(lock_);
  pending_.clear();
}

size_t CalloutQueue::pending_count() const {
  MutexLocker g(lock_);
  return pending_.size();
}

uint64_t CalloutQueue::wakeups() const {
  MutexLocker g(lock_);
  return wakeups_;
}

bool CalloutQueue::stop_locked(Callout& c) {
  if (!c.hook_.is_linked()) return false;
  pending_.erase(pending_.iterator_to(c));
  return true;
}

void CalloutQueue::thread_main(void* arg) {
  auto* q = static_cast<CalloutQueue*>(arg);
  q->run(*reinterpret_cast<Lwp*>(rumpuser_curlwp()));
}

// The callout thread: sleep until the earliest deadline (interruptibly, so
// halt's exiting_ ends it), run what has expired without the lock, repeat.
void CalloutQueue::run(Lwp& l) {
  lock_.lock();
  thread_lwp_ = &l;
  for (;;) {
    if (stop_ || kthread_should_stop(l)) break;
    int64_t deadline = -1;
    if (!pending_.empty()) {
      Callout& c = *pending_.begin();
      c.qlock_->assert_held();
      if (c.deadline_ <= mono_now_ns()) {
        pending_.erase(pending_.iterator_to(c));
        running_ = &c;
        Callout::Fn fn = c.fn_;
        void* arg = c.arg_;
        lock_.unlock();
        fn(arg);
        lock_.lock();
        running_ = nullptr;
        done_cv_.broadcast();
        continue;
      }
      deadline = c.deadline_;
    }
    // 0 (woken or a slice ended), ETIMEDOUT or EINTR: all mean look again.
    sleep_until_ = deadline < 0 ? INT64_MAX : deadline;
    (void)l.sleep(wake_cv_, lock_, deadline, true);
    sleep_until_ = 0;
  }
  thread_lwp_ = nullptr;
  lock_.unlock();
}

}  // namespace rump
