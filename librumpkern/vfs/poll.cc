// Wait queues and poll tables (see poll.h).
#include "vfs/poll.h"

#include "kern/lwp.h"

namespace rump {

// Pollers hold the object's files, so nobody can be linked here now, nor
// look: no lock.
WaitQueue::~WaitQueue() ABSL_NO_THREAD_SAFETY_ANALYSIS { entries_.clear(); }

void WaitQueue::wakeup() {
  bool exclusive_done = false;
  for (PollEntry& e : entries_) {
    if (!e.wake) {
      e.table->fire();
      continue;
    }
    if (e.exclusive && exclusive_done) continue;
    if (e.wake(e) && e.exclusive) exclusive_done = true;
  }
}

void poll_entry_unlink(PollEntry& e) {
  if (!e.queue) return;
  {
    MutexLocker g(e.queue->lock());
    if (e.hook.is_linked()) e.queue->entries_.erase(e.queue->entries_.iterator_to(e));
  }
  e.queue = nullptr;
}

PollTable::PollTable(PollEntry* entries, size_t n) : entries_(entries), n_(n) {
  for (size_t i = 0; i < n; i++) entries_[i].table = this;
}

PollTable::~PollTable() { detach_all(); }

void PollTable::add(WaitQueue& q) {
  if (cur_ >= n_) return;
  PollEntry& e = entries_[cur_];
  if (e.hook.is_linked()) return;
  e.queue = &q;
  q.entries_.push_back(e);
}

void PollTable::fire() {
  MutexLocker g(lock_);
  fired_ = true;
  cv_.broadcast();
}

int PollTable::wait(Lwp& l, int64_t deadline_ns) {
  MutexLocker g(lock_);
  int e = 0;
  while (!fired_) {
    e = l.sleep(cv_, lock_, deadline_ns, true);
    if (e) break;
  }
  if (fired_) e = 0;
  fired_ = false;
  // poll, select and their p-forms are never restarted after a handler
  // (signal(7)).
  return eintr_if_restart(e);
}

void PollTable::detach_all() {
  for (size_t i = 0; i < n_; i++) {
    PollEntry& e = entries_[i];
    if (!e.queue) continue;
    {
      MutexLocker g(e.queue->lock());
      if (e.hook.is_linked()) e.queue->entries_.erase(e.queue->entries_.iterator_to(e));
    }
    e.queue = nullptr;
  }
}

int64_t poll_now_ns() {
  int64_t sec = 0;
  long nsec = 0;
  rumpuser_clock_gettime(RUMPUSER_CLOCK_ABSMONO, &sec, &nsec);
  return sec * 1000000000 + nsec;
}

}  // namespace rump
