// poll.h: wait queues for readiness, the mechanism behind poll, ppoll,
// select and pselect6. Any FileOps plugs in by implementing
// FileOps::poll() (vfs/file.h); pipes and FIFOs do, sockets will.
//
// How it fits together:
//   * An object that can become ready (a pipe, later a socket) owns a
//     WaitQueue. The queue is guarded by the object's own lock (passed at
//     construction): entries are linked and unlinked, and wakeup() walks
//     them, only with that lock held. No extra lock per queue.
//   * A poll call owns one PollTable: a PollWaiter (a leaf mutex, a
//     condition variable and a "fired" flag) and one PollEntry per
//     descriptor. FileOps::poll(f, events, pt) takes the object's lock,
//     calls pt->add(queue) (first pass only), tests readiness and returns
//     the ready events. Because registration precedes the test under the
//     same lock, a change after the test always fires the waiter.
//   * The poller sleeps in Lwp::sleep on the waiter (interruptible: a
//     signal gives EINTR), re-polls every descriptor when woken, and
//     unlinks its entries (under each object's lock) before returning.
//
// Lock order: the object's lock (e.g. Pipe::lock_, rank kSocket), then the
// waiter's leaf lock. A FileOps registers at most one queue per file per
// poll call (a second add() for the same entry is ignored).
//
// Lifetime: the poller holds a reference to every File it polls, and the
// object (and so its queue) lives at least as long as its Files.
#pragma once

#include <boost/intrusive/list.hpp>
#include <cstdint>

#include "base/kmem.h"
#include "base/result.h"
#include "sync/mutex.h"

namespace rump {

class Lwp;
class PollTable;
class WaitQueue;

// One descriptor's link into an object's queue. A poll/select call's
// entries fire their PollTable; an entry with wake set (an epoll item,
// net/epoll.cc) has wake(entry) called instead, with the queue owner's lock
// held, and stays linked across calls until poll_entry_unlink(). wake
// returns whether it took the event; exclusive entries (EPOLLEXCLUSIVE)
// stop a wakeup after the first one that took it.
struct PollEntry {
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;
  PollTable* table = nullptr;
  WaitQueue* queue = nullptr;
  bool (*wake)(PollEntry& e) = nullptr;
  bool exclusive = false;
};

class WaitQueue {
 public:
  // lock: the owning object's lock, which guards the queue.
  explicit WaitQueue(Mutex& lock) : lock_(lock) {}
  ~WaitQueue();
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  // Wakes every poller registered here. Caller holds the owner's lock.
  void wakeup() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  bool empty() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) { return entries_.empty(); }
  Mutex& lock() const ABSL_LOCK_RETURNED(lock_) { return lock_; }

 private:
  friend class PollTable;
  friend void poll_entry_unlink(PollEntry& e);
  using List = boost::intrusive::list<
      PollEntry, boost::intrusive::member_hook<PollEntry, decltype(PollEntry::hook), &PollEntry::hook>,
      boost::intrusive::constant_time_size<false>>;
  Mutex& lock_;
  List entries_ ABSL_GUARDED_BY(lock_);
};

// The waiter side of one poll/select call.
class PollTable {
 public:
  // entries: one per descriptor, owned by the caller.
  PollTable(PollEntry* entries, size_t n);
  ~PollTable();  // unlinks whatever is still linked
  PollTable(const PollTable&) = delete;
  PollTable& operator=(const PollTable&) = delete;

  // Selects the entry the next add() uses (the descriptor being polled).
  void set_current(size_t i) { cur_ = i; }
  // Registers this table on q. Caller holds q's owner lock.
  void add(WaitQueue& q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q.lock());
  // Called by WaitQueue::wakeup.
  void fire();
  // Sleeps until fired, the deadline (monotonic ns, < 0: none) or a
  // signal: 0, ETIMEDOUT or EINTR. Clears the fired flag on return.
  int wait(Lwp& l, int64_t deadline_ns);
  // Unlinks every entry (each under its queue's owner lock).
  void detach_all();
  // Forgets the entries without unlinking them: their owner (an epoll
  // item that registered through this table) unlinks them itself.
  void keep_linked() { n_ = 0; }

 private:
  PollEntry* entries_;
  size_t n_;
  size_t cur_ = 0;
  Mutex lock_{LockRank::kNone};  // leaf: taken under the objects' locks
  CondVar cv_;
  bool fired_ ABSL_GUARDED_BY(lock_) = false;
};

// Unlinks a long-lived entry (one with wake) from its queue, under the
// queue owner's lock. No wake() runs for it after this returns.
void poll_entry_unlink(PollEntry& e);

// The monotonic clock in nanoseconds.
int64_t poll_now_ns();

}  // namespace rump
