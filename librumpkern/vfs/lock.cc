// Advisory locks: POSIX record locks (owned by a process, released at any
// close of the file by that process and at exit), open-file-description
// locks (F_OFD_*, owned by the File) and flock(2) locks (also per File).
//
// Memory: every list is a KVec reserved before anything changes, so a
// request either fails with ENOLCK (Linux's answer when it cannot allocate
// a lock) having changed nothing, or completes; releasing locks (close,
// exit) never allocates and never fails.
//
// All lock state of a kernel is guarded by VfsState::adv_lock_; waiters
// sleep interruptibly on adv_cv_ (EINTR on a signal). Deadlock detection
// for F_SETLKW follows the chain "process waits for the owner of a
// conflicting lock" through the waiters list (POSIX owners only, as Linux).
#include <fcntl.h>
#include <sys/file.h>

#include <climits>
#include <cstdint>

#include "kern/copy.h"
#include "kern/kernel.h"
#include "vfs/kvec.h"
#include "vfs/vfs.h"

namespace rump {

namespace {

struct AdvLock {
  int64_t start;
  int64_t end;  // inclusive; INT64_MAX: to the end of the file
  short type;   // F_RDLCK or F_WRLCK
  const void* owner;  // Proc* (POSIX) or File* (OFD)
  pid_t pid;          // POSIX: the owner's pid; OFD: -1
  bool ofd;
};

struct FlockEntry {
  const File* file;
  short type;  // F_RDLCK (shared) or F_WRLCK (exclusive)
};

struct Waiter {
  const Proc* waiter;
  const void* blocker;
};

}  // namespace

// A vnode's advisory locks (Vnode::advlock()).
struct AdvState : public KObject {
  explicit AdvState(Kmem& k) : locks(k), flocks(k) {}
  KVec<AdvLock> locks;
  KVec<FlockEntry> flocks;
};

// The kernel's waiters list (VfsState::adv_waiters_); small and rarely used.
struct AdvWaitList : public KObject {
  explicit AdvWaitList(Kmem& k) : w(k) {}
  KVec<Waiter> w;
};

namespace {

// Both run under VfsState::adv_lock_, which is every mount's adv_lock().
AdvState* state_of(Kmem& k, Vnode& vp, bool create) {
  vp.mount().adv_lock().assert_held();
  AdvState* s = vp.advlock();
  if (!s && create) {
    s = new (k) AdvState(k);
    vp.set_advlock(s);
  }
  return s;
}

void maybe_free(Vnode& vp) {
  vp.mount().adv_lock().assert_held();
  AdvState* s = vp.advlock();
  if (s && s->locks.empty() && s->flocks.empty()) {
    delete s;
    vp.set_advlock(nullptr);
  }
}

bool overlaps(const AdvLock& a, int64_t start, int64_t end) { return a.start <= end && start <= a.end; }

// The first lock in the list that conflicts with want; for an F_UNLCK
// query (F_OFD_GETLK), the first of want's own owner that overlaps it.
const AdvLock* find_conflict(AdvState* s, const AdvLock& want) {
  if (!s) return nullptr;
  for (const AdvLock& a : s->locks) {
    if (!overlaps(a, want.start, want.end)) continue;
    if (want.type == F_UNLCK) {
      if (a.owner == want.owner) return &a;
      continue;
    }
    if (a.owner == want.owner) continue;
    if (a.type == F_WRLCK || want.type == F_WRLCK) return &a;
  }
  return nullptr;
}

// Removes owner's locks in [start, end] from in, splitting ones that
// straddle it, into out (which has room for in.size() + 1: one owner's
// locks never overlap, so at most one straddles the whole range).
void unlock_into(const KVec<AdvLock>& in, KVec<AdvLock>& out, const void* owner, int64_t start, int64_t end) {
  for (const AdvLock& a : in) {
    if (a.owner != owner || !overlaps(a, start, end)) {
      out.push_back(a);
      continue;
    }
    if (a.start < start) {
      AdvLock left = a;
      left.end = start - 1;
      out.push_back(left);
    }
    if (a.end > end) {
      AdvLock right = a;
      right.start = end + 1;
      out.push_back(right);
    }
  }
}

// Adds want for its owner (whose locks in its range are gone already) to
// in, into out, merging it with the owner's locks of the same type that
// it touches, as Linux does: one owner's locks never overlap or abut with
// the same type, and they sit together in the list, ordered by start,
// where the owner's first lock was. out and mine have room for
// in.size() + 1.
void add_into(const KVec<AdvLock>& in, KVec<AdvLock>& out, KVec<AdvLock>& mine, AdvLock want) {
  size_t at = SIZE_MAX;
  for (const AdvLock& a : in) {
    if (a.owner != want.owner) {
      out.push_back(a);
      continue;
    }
    if (at == SIZE_MAX) at = out.size();
    bool touches = (a.end != INT64_MAX && a.end + 1 == want.start) ||
                   (want.end != INT64_MAX && want.end + 1 == a.start);
    if (a.type == want.type && touches) {
      if (a.start < want.start) want.start = a.start;
      if (a.end > want.end) want.end = a.end;
      continue;
    }
    mine.push_back(a);
  }
  if (at == SIZE_MAX) at = out.size();
  size_t pos = 0;
  while (pos < mine.size() && mine[pos].start < want.start) pos++;
  mine.insert(pos, want);
  for (size_t i = 0; i < mine.size(); i++) out.insert(at + i, mine[i]);
}

// Replaces owner's locks in [start, end] by add (nullptr: unlock the
// range). Everything it needs is reserved first: ENOLCK changes nothing.
Result<void> set_range(AdvState* s, const void* owner, int64_t start, int64_t end, const AdvLock* add) {
  Kmem& k = s->locks.kmem();
  size_t room = s->locks.size() + 2;
  KVec<AdvLock> unlocked(k), added(k), mine(k);
  if (!unlocked.reserve(room).ok() || (add && (!added.reserve(room).ok() || !mine.reserve(room).ok())))
    return err(ENOLCK);
  unlock_into(s->locks, unlocked, owner, start, end);
  if (add) {
    add_into(unlocked, added, mine, *add);
    s->locks.swap(added);
  } else {
    s->locks.swap(unlocked);
  }
  return {};
}

// Drops every lock of owner (close, exit): never allocates.
bool release_owner(AdvState* s, const void* owner) {
  size_t before = s->locks.size();
  s->locks.retain([&](const AdvLock& a) { return a.owner != owner; });
  return s->locks.size() != before;
}

bool would_deadlock(VfsState& st, const Proc* me, const void* blocker) ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.adv_lock_) {
  AdvWaitList* wl = st.adv_waiters_;
  if (!wl) return false;
  const void* cur = blocker;
  for (int depth = 0; depth < 64 && cur; depth++) {
    if (cur == me) return true;
    const void* next = nullptr;
    for (const Waiter& w : wl->w)
      if (w.waiter == cur) next = w.blocker;
    cur = next;
  }
  return false;
}

}  // namespace

void adv_release_proc(Kernel& k, Vnode& vp, Proc& p) {
  VfsState& st = vfs_state(k);
  MutexLocker g(st.adv_lock_);
  auto* s = state_of(k.kmem(), vp, false);
  if (!s) return;
  if (release_owner(s, &p)) st.adv_cv_.broadcast();
  maybe_free(vp);
}

void adv_release_file(Kernel& k, Vnode& vp, File& f) {
  VfsState& st = vfs_state(k);
  MutexLocker g(st.adv_lock_);
  auto* s = state_of(k.kmem(), vp, false);
  if (!s) return;
  release_owner(s, &f);
  s->flocks.retain([&](const FlockEntry& e) { return e.file != &f; });
  st.adv_cv_.broadcast();
  maybe_free(vp);
}

Result<long> adv_fcntl(Lwp& l, File& f, int cmd, uintptr_t arg) {
  Kernel& k = l.kernel();
  VfsState& st = vfs_state(k);
  Vnode& vp = *f.vnode();
  struct flock fl = TRY(copyin_obj(l, UserPtr<struct flock>{arg}));
  bool ofd = cmd == F_OFD_GETLK || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
  bool get = cmd == F_GETLK || cmd == F_OFD_GETLK;
  bool wait = cmd == F_SETLKW || cmd == F_OFD_SETLKW;
  // Linux's order of checks: F_GETLK's type, the range, the type, the
  // open mode, then an OFD call's l_pid. F_OFD_GETLK takes F_UNLCK: it
  // then reports a lock of this description itself (Linux 6.7 on).
  if (cmd == F_GETLK && fl.l_type != F_RDLCK && fl.l_type != F_WRLCK) return err(EINVAL);
  // The range.
  int64_t base;
  switch (fl.l_whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = static_cast<int64_t>(f.pos()); break;
    case SEEK_END: base = static_cast<int64_t>(getattr(vp).size); break;
    default: return err(EINVAL);
  }
  int64_t start, end;
  if (__builtin_add_overflow(base, fl.l_start, &start)) return err(EOVERFLOW);
  if (start < 0) return err(EINVAL);
  if (fl.l_len > 0) {
    if (__builtin_add_overflow(start, fl.l_len - 1, &end)) return err(EOVERFLOW);
  } else if (fl.l_len < 0) {
    end = start - 1;
    if (__builtin_add_overflow(start, fl.l_len, &start)) return err(EINVAL);
  } else {
    end = INT64_MAX;
  }
  if (start < 0) return err(EINVAL);
  if (fl.l_type != F_RDLCK && fl.l_type != F_WRLCK && fl.l_type != F_UNLCK) return err(EINVAL);
  if (!get) {
    if (fl.l_type == F_RDLCK && !f.readable()) return err(EBADF);
    if (fl.l_type == F_WRLCK && !f.writable()) return err(EBADF);
  }
  if (ofd && fl.l_pid != 0) return err(EINVAL);
  const void* owner = ofd ? static_cast<const void*>(&f) : static_cast<const void*>(&l.proc());
  AdvLock want{start, end, fl.l_type, owner, ofd ? -1 : l.proc().pid(), ofd};
  if (ofd) f.has_adv_locks_.store(true);

  MutexLocker g(st.adv_lock_);
  if (get) {
    const AdvLock* c = find_conflict(state_of(k.kmem(), vp, false), want);
    struct flock out = fl;
    if (!c) {
      out.l_type = F_UNLCK;
    } else {
      out.l_type = c->type;
      out.l_whence = SEEK_SET;
      out.l_start = c->start;
      out.l_len = c->end == INT64_MAX ? 0 : c->end - c->start + 1;
      out.l_pid = c->pid;
    }
    // Copy out without the lock held.
    st.adv_lock_.unlock();
    Result<void> r = copyout_obj(l, out, UserPtr<struct flock>{arg});
    st.adv_lock_.lock();
    TRY(r);
    return 0;
  }
  if (fl.l_type == F_UNLCK) {
    AdvState* s = state_of(k.kmem(), vp, false);
    if (!s) return 0;
    TRY(set_range(s, owner, start, end, nullptr));
    st.adv_cv_.broadcast();
    maybe_free(vp);
    return 0;
  }
  AdvState* s = state_of(k.kmem(), vp, true);
  if (!s) return err(ENOLCK);
  for (;;) {
    const AdvLock* c = find_conflict(s, want);
    if (!c) break;
    if (!wait) return err(EAGAIN);
    if (!ofd && !c->ofd && would_deadlock(st, &l.proc(), c->owner)) return err(EDEADLK);
    AdvWaitList*& wl = st.adv_waiters_;
    if (!wl) wl = new (k.kmem()) AdvWaitList(k.kmem());
    if (!wl || !wl->w.reserve_more(1).ok()) {
      maybe_free(vp);
      return err(ENOLCK);
    }
    wl->w.push_back(Waiter{&l.proc(), c->owner});
    int e = l.sleep(st.adv_cv_, st.adv_lock_, -1, true);
    for (size_t i = 0; i < wl->w.size(); i++) {
      if (wl->w[i].waiter == &l.proc()) {
        wl->w.erase(i);
        break;
      }
    }
    s = state_of(k.kmem(), vp, !is_restart(e));
    if (is_restart(e)) {
      if (s) maybe_free(vp);
      return err(e);
    }
    if (!s) return err(ENOLCK);
  }
  // Replace what the owner had in the range with the new lock.
  Result<void> r = set_range(s, owner, start, end, &want);
  if (!r.ok()) {
    maybe_free(vp);
    return err(r.error());
  }
  st.adv_cv_.broadcast();
  return 0;
}

Result<long> adv_flock(Lwp& l, File& f, int op) {
  Kernel& k = l.kernel();
  VfsState& st = vfs_state(k);
  Vnode& vp = *f.vnode();
  bool nb = op & LOCK_NB;
  op &= ~LOCK_NB;
  short type;
  switch (op) {
    case LOCK_SH: type = F_RDLCK; break;
    case LOCK_EX: type = F_WRLCK; break;
    case LOCK_UN: type = F_UNLCK; break;
    default: return err(EINVAL);
  }
  f.has_adv_locks_.store(true);
  MutexLocker g(st.adv_lock_);
  AdvState* s = state_of(k.kmem(), vp, true);
  if (!s) return err(ENOLCK);
  // A conversion drops the old lock first (as Linux: not atomic).
  for (size_t i = 0; i < s->flocks.size(); i++) {
    if (s->flocks[i].file == &f) {
      if (s->flocks[i].type == type) return 0;
      s->flocks.erase(i);
      st.adv_cv_.broadcast();
      break;
    }
  }
  if (type == F_UNLCK) {
    maybe_free(vp);
    return 0;
  }
  for (;;) {
    bool conflict = false;
    for (const FlockEntry& e : s->flocks)
      if (e.file != &f && (e.type == F_WRLCK || type == F_WRLCK)) conflict = true;
    if (!conflict) break;
    if (nb) {
      maybe_free(vp);
      return err(EWOULDBLOCK);
    }
    int e = l.sleep(st.adv_cv_, st.adv_lock_, -1, true);
    s = state_of(k.kmem(), vp, true);
    if (!s) return err(ENOLCK);
    if (is_restart(e)) {
      maybe_free(vp);
      return err(e);
    }
  }
  if (!s->flocks.reserve_more(1).ok()) {
    maybe_free(vp);
    return err(ENOLCK);
  }
  s->flocks.push_back(FlockEntry{&f, type});
  return 0;
}

void adv_fini(VfsState& st) {
  MutexLocker g(st.adv_lock_);
  delete st.adv_waiters_;
  st.adv_waiters_ = nullptr;
}

}  // namespace rump
