// epoll: epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait,
// epoll_pwait2, on the wait queues every pollable object already has
// (vfs/poll.h), so pipes, FIFOs, sockets, event descriptors and epolls
// themselves can be watched.
//
// An Eventpoll holds its items in a table keyed by (file, fd). Each item
// stays linked on its object's wait queue from ADD to DEL (a PollEntry
// with a wake callback): a wake-up puts the item on the ready list, so a
// wait looks only at items that became ready (O(ready), not O(watched)).
// A wait re-polls each ready item for its current events; level-triggered
// items that still hold go back on the list, edge-triggered ones wait for
// the next wake-up, one-shot ones are disarmed until EPOLL_CTL_MOD.
//
// An item is dropped when its open file description's last reference goes
// (File::epoll_items_ and the release hook), as Linux does; closing one of
// several descriptors of that description keeps it.
//
// Locking:
//   Eventpoll::mtx_ (kNone, a sleep lock): the item table, and the scan of
//     a wait; held while objects are polled (their own locks are taken
//     under it). Nested epolls are taken outer first.
//   NetState::ep_lock_ (kFile): every file's list of items and each
//     item's link to it; never held with an object lock.
//   Eventpoll::lock_ (kNone, a leaf): the ready list, the items' ready
//     flags and armed events, the sleepers, and the epoll's own wait
//     queue. Taken by wake callbacks under the objects' locks.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include <boost/intrusive/list.hpp>
#include <cstring>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "base/intrusive_hash.h"
#include "kern/copy.h"
#include "kern/fork.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "net/local.h"
#include "vfs/file.h"
#include "vfs/poll.h"

namespace rump {

namespace {

struct EpollEvent {
  uint32_t events;
  uint64_t data;
} __attribute__((packed));
static_assert(sizeof(EpollEvent) == 12, "Linux x86-64 packs struct epoll_event");

constexpr uint32_t kPrivateBits = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
constexpr uint32_t kExclusiveOk = EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
constexpr int kMaxNests = 4;
constexpr int kMaxEvents = INT32_MAX / sizeof(EpollEvent);

class Eventpoll;
struct EpFileList;

using Hook = bi::list_member_hook<bi::link_mode<bi::safe_link>>;

struct Epitem : public PollEntry, public KObject {
  Eventpoll* ep = nullptr;
  File* file = nullptr;
  int fd = -1;
  uint64_t data = 0;
  uint32_t events = 0;       // guarded by ep->lock_ (and changed under ep->mtx_)
  bool ready = false;        // on the ready list or a wait's list; ep->lock_
  Hook rdl_hook;
  Hook file_hook;            // in *flist; NetState::ep_lock_
  EpFileList* flist = nullptr;
  bi::unordered_set_member_hook<> table_hook;
};

using Key = std::pair<uintptr_t, int>;
struct KeyOf {
  using type = Key;
  Key operator()(const Epitem& i) const { return {reinterpret_cast<uintptr_t>(i.file), i.fd}; }
};
using ItemList = bi::list<Epitem, bi::member_hook<Epitem, Hook, &Epitem::rdl_hook>, bi::constant_time_size<false>>;
using FileItemList = bi::list<Epitem, bi::member_hook<Epitem, Hook, &Epitem::file_hook>, bi::constant_time_size<false>>;

// The items watching one open file description (File::epoll_items_).
struct EpFileList : public KObject {
  FileItemList items;
};

bool ep_wake(PollEntry& e);

class Eventpoll : public KObject, public RefCounted<Eventpoll> {
 public:
  // Each epoll holds a reference on the faction's state: its ep_lock_
  // serves the files an epoll watches, which may be released after the
  // faction stopped (halt ends the processes after the components).
  explicit Eventpoll(Kernel& k) : items_(k.kmem()), kernel_(k) { net_state(k).ref(); }
  Kernel& kernel() const { return kernel_; }

  Mutex mtx_{LockRank::kNone};
  IntrusiveHash<Epitem, &Epitem::table_hook, KeyOf> items_ ABSL_GUARDED_BY(mtx_);

  // The epoll's own open file description (cleared at its close): the
  // depth check walks up through the items watching it.
  std::atomic<File*> file_{nullptr};

  Mutex lock_{LockRank::kNone};
  ItemList rdl_ ABSL_GUARDED_BY(lock_);
  CondVar cv_;
  int sleepers_ ABSL_GUARDED_BY(lock_) = 0;
  WaitQueue wq_{lock_};

  // Puts it on the ready list (if armed and not there) and wakes waiters.
  bool ready_locked(Epitem& it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    if (!(it.events & ~kPrivateBits)) return false;  // a fired one-shot
    if (!it.ready) {
      rdl_.push_back(it);
      it.ready = true;
    }
    if (sleepers_) cv_.signal();
    wq_.lock().assert_held();  // the queue's lock is the object's lock_
    if (!wq_.empty()) wq_.wakeup();
    return true;
  }

 private:
  friend class RefCounted<Eventpoll>;
  void last_unref() {
    NetState& st = net_state(kernel_);
    delete this;
    st.unref();
  }
  Kernel& kernel_;
};

bool ep_wake(PollEntry& e) {
  Epitem& it = static_cast<Epitem&>(e);
  Eventpoll& ep = *it.ep;
  MutexLocker g(ep.lock_);
  return ep.ready_locked(it);
}

extern const FileOps& kEpollOps;
Eventpoll* epoll_of(File& f) { return &f.ops() == &kEpollOps ? static_cast<Eventpoll*>(f.data_) : nullptr; }

short ep_events16(uint32_t ev) { return static_cast<short>(ev & 0xffff); }

// Takes the item out of everything and frees it. Caller holds ep.mtx_.
void remove_item(Eventpoll& ep, Epitem& it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ep.mtx_) {
  poll_entry_unlink(it);  // no wake-up runs for it after this
  NetState& st = net_state(ep.kernel());
  {
    MutexLocker g(st.ep_lock_);
    if (it.flist) it.flist->items.erase(it.flist->items.iterator_to(it));
    it.flist = nullptr;
  }
  {
    MutexLocker g(ep.lock_);
    if (it.rdl_hook.is_linked()) ep.rdl_.erase(ep.rdl_.iterator_to(it));
  }
  ep.items_.erase(it);
  delete &it;
}

// File::last_unref of a watched description: its items go.
void epoll_release_file(File& f) {
  for (;;) {
    Eventpoll* ep = nullptr;
    Key key;
    {
      auto* fl = static_cast<EpFileList*>(f.epoll_items_.load(std::memory_order_acquire));
      if (!fl) return;
      // Every item of the list is of one kernel: any of them names it.
      NetState* st = nullptr;
      if (!fl->items.empty()) st = &net_state(fl->items.front().ep->kernel());
      if (!st) {
        f.epoll_items_.store(nullptr, std::memory_order_release);
        delete fl;
        return;
      }
      MutexLocker g(st->ep_lock_);
      if (fl->items.empty()) {
        f.epoll_items_.store(nullptr, std::memory_order_release);
        delete fl;
        return;
      }
      Epitem& it = fl->items.front();
      fl->items.pop_front();
      it.flist = nullptr;
      ep = it.ep;
      ep->ref();
      key = KeyOf{}(it);
    }
    {
      MutexLocker g(ep->mtx_);
      if (Epitem* it = ep->items_.find(key)) remove_item(*ep, *it);
    }
    ep->unref();
  }
}

struct ReleaseHookSetter {
  ReleaseHookSetter() { set_file_epoll_release(&epoll_release_file); }
};
const ReleaseHookSetter g_release_hook_setter;

// The longest chain of epolls above the epoll whose file is f (0: none
// watches it), counted up to just past the limit.
int depth_up(NetState& st, File& f, int depth) ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.ep_lock_) {
  if (depth > kMaxNests) return depth;
  auto* fl = static_cast<EpFileList*>(f.epoll_items_.load(std::memory_order_acquire));
  int best = depth;
  if (!fl) return best;
  for (Epitem& it : fl->items) {
    // An item still linked means its epoll's close has not finished, so
    // the file it names is still there.
    File* pf = it.ep->file_.load(std::memory_order_acquire);
    if (!pf) continue;
    int d = depth_up(st, *pf, depth + 1);
    if (d > best) best = d;
  }
  return best;
}

// Would watching target from ep make a loop, or nest deeper than Linux
// allows (a chain of more than kMaxNests + 1 epolls, counting those above
// ep and those below target)? depth: epolls above target so far.
bool loops(Eventpoll& ep, Eventpoll& target, int depth) {
  if (&target == &ep) return true;
  if (depth > kMaxNests) return true;
  MutexLocker g(target.mtx_);
  for (Epitem& it : target.items_) {
    Eventpoll* inner = epoll_of(*it.file);
    if (inner && loops(ep, *inner, depth + 1)) return true;
  }
  return false;
}

Result<void> ep_insert(Eventpoll& ep, File& tf, int fd, const EpollEvent& ev) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ep.mtx_) {
  Kernel& k = ep.kernel();
  NetState& st = net_state(k);
  auto* it = new (k.kmem()) Epitem();
  if (!it) return err(ENOMEM);
  it->ep = &ep;
  it->file = &tf;
  it->fd = fd;
  it->data = ev.data;
  it->events = ev.events | EPOLLERR | EPOLLHUP;
  it->wake = &ep_wake;
  it->exclusive = ev.events & EPOLLEXCLUSIVE;
  {
    MutexLocker g(st.ep_lock_);
    auto* fl = static_cast<EpFileList*>(tf.epoll_items_.load(std::memory_order_acquire));
    if (!fl) {
      fl = new (k.kmem()) EpFileList();
      if (!fl) {
        delete it;
        return err(ENOMEM);
      }
      tf.epoll_items_.store(fl, std::memory_order_release);
    }
    fl->items.push_back(*it);
    it->flist = fl;
  }
  ep.items_.insert(*it);
  // Link the item on the object's queue and look at it once.
  PollEntry* entry = it;
  PollTable pt(entry, 1);
  short rev = tf.ops().poll(tf, ep_events16(it->events), &pt);
  pt.keep_linked();
  if (rev & ep_events16(it->events)) {
    MutexLocker g(ep.lock_);
    ep.ready_locked(*it);
  }
  return {};
}

void ep_modify(Eventpoll& ep, Epitem& it, const EpollEvent& ev) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ep.mtx_) {
  {
    MutexLocker g(ep.lock_);
    it.events = ev.events | EPOLLERR | EPOLLHUP;
    it.data = ev.data;
  }
  short rev = it.file->ops().poll(*it.file, ep_events16(it.events), nullptr);
  if (rev & ep_events16(it.events)) {
    MutexLocker g(ep.lock_);
    ep.ready_locked(it);
  }
}

// One pass over the ready list: up to max events into out.
int ep_scan(Eventpoll& ep, EpollEvent* out, int max) {
  MutexLocker m(ep.mtx_);
  ItemList tx;
  {
    MutexLocker g(ep.lock_);
    tx.splice(tx.end(), ep.rdl_);
  }
  int n = 0;
  while (n < max) {
    Epitem* it;
    uint32_t want;
    {
      MutexLocker g(ep.lock_);
      if (tx.empty()) break;
      it = &tx.front();
      tx.pop_front();
      it->ready = false;
      want = it->events;
    }
    uint32_t rev = static_cast<uint16_t>(it->file->ops().poll(*it->file, ep_events16(want), nullptr));
    rev &= want;
    if (!rev) continue;
    out[n].events = rev;
    out[n].data = it->data;
    n++;
    MutexLocker g(ep.lock_);
    if (want & EPOLLONESHOT) {
      it->events &= kPrivateBits;
    } else if (!(want & EPOLLET) && !it->ready) {
      ep.rdl_.push_back(*it);  // level-triggered: looked at again next time
      it->ready = true;
    }
  }
  MutexLocker g(ep.lock_);
  ep.rdl_.splice(ep.rdl_.begin(), tx);
  // A wake-up woke one sleeper; what is left (level-triggered items put
  // back, items beyond max) is for the next one (Linux's ep_done_scan).
  if (!ep.rdl_.empty() && ep.sleepers_) ep.cv_.signal();
  return n;
}

// Does an item on ep's ready list still hold? Drops those that do not.
bool ep_recheck(Eventpoll& ep) {
  MutexLocker m(ep.mtx_);
  ItemList tx;
  {
    MutexLocker g(ep.lock_);
    tx.splice(tx.end(), ep.rdl_);
  }
  bool ready = false;
  for (;;) {
    Epitem* it;
    uint32_t want;
    {
      MutexLocker g(ep.lock_);
      if (tx.empty()) break;
      it = &tx.front();
      tx.pop_front();
      it->ready = false;  // a wake-up from now on puts it back
      want = it->events;
    }
    uint32_t rev = static_cast<uint16_t>(it->file->ops().poll(*it->file, ep_events16(want), nullptr)) & want;
    if (rev) {
      MutexLocker g(ep.lock_);
      if (!it->ready) {
        tx.push_front(*it);
        it->ready = true;
      }
      ready = true;
      break;
    }
  }
  MutexLocker g(ep.lock_);
  ep.rdl_.splice(ep.rdl_.begin(), tx);
  return ready;
}

Result<long> ep_wait(Lwp& l, int epfd, UserPtr<void> events, int maxevents, int64_t deadline) {
  if (maxevents <= 0 || maxevents > kMaxEvents) return err(EINVAL);
  Ref<File> f = TRY(fd_get(l, epfd));
  Eventpoll* ep = epoll_of(*f);
  if (!ep) return err(EINVAL);
  Kmem& km = l.kernel().kmem();
  // A bounded buffer: a wait returns at most this many at once; the rest
  // stay ready for the next call (as a short user buffer would).
  int cap = maxevents < 1024 ? maxevents : 1024;
  auto* out = static_cast<EpollEvent*>(km.alloc(sizeof(EpollEvent) * cap));
  if (!out) return err(ENOMEM);
  absl::Cleanup free_out = [&] { Kmem::free(out); };
  for (;;) {
    int n = ep_scan(*ep, out, cap);
    if (n > 0) {
      TRY(copyout(l, out, events.addr, sizeof(EpollEvent) * n));
      return n;
    }
    if (deadline == 0) return 0;
    MutexLocker g(ep->lock_);
    while (ep->rdl_.empty()) {
      ep->sleepers_++;
      int e = l.sleep(ep->cv_, ep->lock_, deadline, true);
      ep->sleepers_--;
      if (e == ETIMEDOUT) return 0;
      // Never restarted after a handler (signal(7)).
      if (e) return err(eintr_if_restart(e));
    }
  }
}

class EpollOps : public FileOps {
 public:
  // Readable while an item on the ready list still holds: each one is
  // polled again, and those that no longer hold leave the list (as
  // Linux's ep_eventpoll_poll), so an epoll inside an epoll is not
  // reported for an event that was consumed meanwhile. Items that hold
  // stay on the list: looking does not consume an edge. Takes this
  // epoll's mtx_ (an outer epoll's scan holds its own: outer first).
  short poll(File& f, short events, PollTable* pt) const override {
    Eventpoll& ep = *static_cast<Eventpoll*>(f.data_);
    {
      MutexLocker g(ep.lock_);
      ep.wq_.lock().assert_held();  // the queue's lock is the object's lock_
      if (pt) pt->add(ep.wq_);
      if (ep.rdl_.empty()) return 0;
    }
    return ep_recheck(ep) ? static_cast<short>((POLLIN | POLLRDNORM) & events) : 0;
  }
  Result<void> stat(File& f, struct stat* st) const override { return anon_inode_stat(f, st); }
  const char* anon_name() const override { return "[eventpoll]"; }
  void close(File& f) const override {
    auto* ep = static_cast<Eventpoll*>(f.data_);
    if (!ep) return;
    f.data_ = nullptr;
    ep->file_.store(nullptr, std::memory_order_release);
    {
      MutexLocker g(ep->mtx_);
      while (!ep->items_.empty()) remove_item(*ep, *ep->items_.begin());
    }
    ep->unref();
  }
};

const EpollOps g_epoll_ops;
const FileOps& kEpollOps = g_epoll_ops;

int64_t deadline_ms(int timeout) { return timeout < 0 ? -1 : timeout == 0 ? 0 : poll_now_ns() + int64_t{timeout} * 1000000; }

Result<SigSet> copyin_mask(Lwp& l, UserPtr<sigset_t> m, size_t size) {
  if (size != sizeof(SigSet)) return err(EINVAL);
  SigSet s = 0;
  TRY(copyin(l, m.addr, &s, sizeof s));
  return s;
}

// epoll_pwait's temporary signal mask around the wait.
Result<long> wait_masked(Lwp& l, int epfd, UserPtr<void> events, int maxevents, int64_t deadline,
                         UserPtr<sigset_t> sigmask, size_t sigsetsize) {
  if (sigmask.is_null()) return ep_wait(l, epfd, events, maxevents, deadline);
  SigSet mask = TRY(copyin_mask(l, sigmask, sigsetsize));
  SigSet old = begin_temp_sigmask(l, mask);
  Result<long> r = ep_wait(l, epfd, events, maxevents, deadline);
  if (end_temp_sigmask(l, old, !r.ok() && r.error() == EINTR)) return err(EINTR);
  return r;
}

}  // namespace

Result<long> sys_epoll_create1(Lwp& l, int flags) {
  if (flags & ~EPOLL_CLOEXEC) return err(EINVAL);
  Kmem& km = l.kernel().kmem();
  auto* ep = new (km) Eventpoll(l.kernel());
  if (!ep) return err(ENOMEM);
  Ref<Eventpoll> er = adopt_ref(ep);
  Ref<File> f = TRY(File::create(km, &g_epoll_ops, nullptr, O_RDWR));
  ep->file_.store(f.get(), std::memory_order_release);
  f->data_ = er.leak();
  return TRY(fd_install(l, std::move(f), flags & EPOLL_CLOEXEC));
}

Result<long> sys_epoll_create(Lwp& l, int size) {
  if (size <= 0) return err(EINVAL);
  return sys_epoll_create1(l, 0);
}

Result<long> sys_epoll_ctl(Lwp& l, int epfd, int op, int fd, UserPtr<void> event) {
  EpollEvent ev{};
  bool has_event = op != EPOLL_CTL_DEL;
  if (has_event) TRY(copyin(l, event.addr, &ev, sizeof ev));
  Ref<File> f = TRY(fd_get(l, epfd));
  Ref<File> tf = TRY(fd_get(l, fd, true));
  if (&tf->ops() == &kVnodeFileOps || &tf->ops() == &kPathFileOps) return err(EPERM);
  Eventpoll* ep = epoll_of(*f);
  if (f.get() == tf.get() || !ep) return err(EINVAL);
  ev.events &= ~EPOLLWAKEUP;
  if (has_event && (ev.events & EPOLLEXCLUSIVE)) {
    if (op == EPOLL_CTL_MOD) return err(EINVAL);
    if (op == EPOLL_CTL_ADD && (epoll_of(*tf) || (ev.events & ~kExclusiveOk))) return err(EINVAL);
  }
  Eventpoll* inner = op == EPOLL_CTL_ADD ? epoll_of(*tf) : nullptr;
  if (inner) {
    NetState& st = net_state(l.kernel());
    MutexLocker nest(st.ep_nest_lock_);
    int up;
    {
      MutexLocker g(st.ep_lock_);
      up = depth_up(st, *f, 0);
    }
    if (up > kMaxNests || loops(*ep, *inner, up + 1)) return err(ELOOP);
    MutexLocker g(ep->mtx_);
    if (ep->items_.find(Key{reinterpret_cast<uintptr_t>(tf.get()), fd})) return err(EEXIST);
    TRY(ep_insert(*ep, *tf, fd, ev));
    return 0;
  }
  MutexLocker g(ep->mtx_);
  Epitem* it = ep->items_.find(Key{reinterpret_cast<uintptr_t>(tf.get()), fd});
  switch (op) {
    case EPOLL_CTL_ADD:
      if (it) return err(EEXIST);
      TRY(ep_insert(*ep, *tf, fd, ev));
      return 0;
    case EPOLL_CTL_DEL:
      if (!it) return err(ENOENT);
      remove_item(*ep, *it);
      return 0;
    case EPOLL_CTL_MOD:
      if (!it) return err(ENOENT);
      if (it->exclusive) return err(EINVAL);
      ep_modify(*ep, *it, ev);
      return 0;
    default: return err(EINVAL);
  }
}

Result<long> sys_epoll_wait(Lwp& l, int epfd, UserPtr<void> events, int maxevents, int timeout) {
  return ep_wait(l, epfd, events, maxevents, deadline_ms(timeout));
}

Result<long> sys_epoll_pwait(Lwp& l, int epfd, UserPtr<void> events, int maxevents, int timeout,
                             UserPtr<sigset_t> sigmask, size_t sigsetsize) {
  return wait_masked(l, epfd, events, maxevents, deadline_ms(timeout), sigmask, sigsetsize);
}

Result<long> sys_epoll_pwait2(Lwp& l, int epfd, UserPtr<void> events, int maxevents, UserPtr<struct timespec> timeout,
                              UserPtr<sigset_t> sigmask, size_t sigsetsize) {
  int64_t deadline = -1;
  if (!timeout.is_null()) {
    timespec ts = TRY(copyin_obj(l, timeout));
    if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000) return err(EINVAL);
    int64_t ns = ts.tv_sec > INT64_MAX / 2000000000 ? INT64_MAX / 2 : ts.tv_sec * 1000000000 + ts.tv_nsec;
    deadline = ns == 0 ? 0 : poll_now_ns() + ns;
  }
  return wait_masked(l, epfd, events, maxevents, deadline, sigmask, sigsetsize);
}

}  // namespace rump
