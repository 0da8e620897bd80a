// futex(2), set_tid_address(2), set_robust_list(2), get_robust_list(2)
// with Linux's semantics and errors (see futex.h for keys and locking).
//
// Commands: WAIT, WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP, WAIT_BITSET,
// WAKE_BITSET, with FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME. The
// priority-inheritance commands (LOCK_PI, UNLOCK_PI, TRYLOCK_PI,
// WAIT_REQUEUE_PI, CMP_REQUEUE_PI, LOCK_PI2) are ENOSYS here.
//
// A waiter first spins a little on its own "woken" flag, giving its
// virtual CPU back (Lwp::spin_wait), before it sleeps: a lock handed
// over between two LWPs on two CPUs then costs no host wake-up. How long
// it spins adapts per bucket (kern/spin_budget.h): where the waker is not
// running (a loaded host), waiters soon sleep at once.
//
// A waiter that sleeps parks on its LWP's Parker (kern/parker.h). A waker
// takes it off the bucket and sets its flag under the bucket lock, with a
// reference to its Parker, and unparks it only after dropping the lock
// (WakeList): the sleeper does not wake to block on the bucket lock, and
// the unlock wakes nobody. The waiter may be gone by then; the reference
// keeps the Parker, and a late unpark is a spurious wake-up of the LWP's
// next futex sleep, which re-checks its flag.
#include "kern/futex.h"

#include <linux/futex.h>

#include <atomic>
#include <boost/intrusive/list.hpp>
#include <ctime>

#include "kern/clock.h"
#include "kern/component.h"
#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/parker.h"
#include "kern/spin_budget.h"
#include "kern/syscall_protos.h"

namespace rump {

namespace {

namespace bi = boost::intrusive;

constexpr int kBuckets = 64;  // a power of two
// Linux's limit on robust list entries walked at exit.
constexpr int kRobustListLimit = 2048;
// sizeof(struct robust_list_head) on 64-bit Linux.
constexpr size_t kRobustHeadSize = 24;

struct Bucket;

struct Waiter {
  MemoryKey key{};
  uint32_t bitset = 0;
  // Set by the waker after its last touch of the waiter.
  std::atomic<uint32_t> woken{0};
  // The bucket the waiter is queued on (requeue moves it), changed with
  // that bucket's and the new one's locks held.
  std::atomic<Bucket*> bucket{nullptr};
  // Set when the waiter goes to sleep (under the bucket lock): a waker
  // takes a reference and unparks it once it dropped the lock.
  Parker* parker = nullptr;
  bi::list_member_hook<bi::link_mode<bi::safe_link>> hook;
};
using WaiterList = bi::list<Waiter, bi::member_hook<Waiter, decltype(Waiter::hook), &Waiter::hook>,
                            bi::constant_time_size<false>>;

struct Bucket {
  Mutex lock;
  // Waiters queued or about to be: a waker that sees 0 after its fence
  // has no one to wake (the waiter counts itself before it reads the word).
  std::atomic<int> nwaiters{0};
  WaiterList waiters ABSL_GUARDED_BY(lock);
  // How long waiters on this bucket spin before they sleep.
  SpinBudget spin ABSL_GUARDED_BY(lock);
  // spin is at its longest with no probe pending: a spin that paid off
  // changes nothing then, and its waiter does not take the lock again.
  // Written under lock, read without it.
  std::atomic<bool> spin_full{true};

  void spin_end_locked(SpinBudget::Turn t, bool paid_off) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    spin.end(t, paid_off);
    spin_full.store(spin.settled(SpinBudget::Turn{SpinBudget::kMaxNs, false}), std::memory_order_relaxed);
  }
  bool spin_settled(SpinBudget::Turn t) const {
    return !t.probe && t.ns >= SpinBudget::kMaxNs / 2 && spin_full.load(std::memory_order_relaxed);
  }
};

class FutexTable : public KObject {
 public:
  Bucket& bucket(const MemoryKey& k) {
    uint64_t h = (reinterpret_cast<uintptr_t>(k.object) ^ (k.offset >> 2)) * 0x9E3779B97F4A7C15ull;
    return buckets_[h >> (64 - 6)];
  }

 private:
  static_assert(kBuckets == 64, "the hash takes 6 bits");
  Bucket buckets_[kBuckets];
};

// The component's per-kernel state: the table comes with the first futex
// call, so an idle kernel pays nothing for it.
struct FutexState : KObject {
  std::atomic<FutexTable*> table{nullptr};
};

Result<void> futex_init(Kernel& k);
void futex_fini(Kernel& k);
Component g_futex_component{"futex", ComponentType::kKern, &futex_init, &futex_fini};
RUMP_COMPONENT(g_futex_component);
const KernelSlot<FutexState> g_futex_state{g_futex_component};

Result<void> futex_init(Kernel& k) {
  auto* s = new (k.kmem()) FutexState();
  if (!s) return err(ENOMEM);
  g_futex_state.set(k, s);
  return {};
}

// Every LWP has left the kernel: nobody waits any more. Exit paths that
// run afterwards (halt ending processes) find no table and wake no one.
void futex_fini(Kernel& k) {
  FutexState* s = g_futex_state.take(k);
  if (!s) return;
  delete s->table.exchange(nullptr);
  delete s;
}

FutexTable* table(Kernel& k, bool create) {
  FutexState* s = g_futex_state.get(k);
  if (!s) return nullptr;
  FutexTable* t = s->table.load(std::memory_order_acquire);
  if (t || !create) return t;
  auto* n = new (k.kmem()) FutexTable();
  if (!n) return nullptr;
  if (!s->table.compare_exchange_strong(t, n, std::memory_order_acq_rel)) {
    delete n;
    return t;
  }
  return n;
}

// The key of the word at uaddr for the calling space.
Result<MemoryKey> futex_key(UserSpace* s, uintptr_t uaddr, bool priv) {
  if (uaddr % sizeof(uint32_t) != 0) return err(EINVAL);
  if (!s) {
    if (!host_user_range_ok(uaddr, sizeof(uint32_t))) return err(EFAULT);
    return MemoryKey{nullptr, uaddr};
  }
  if (priv) return MemoryKey{s, uaddr};
  return s->memory_key(uaddr);
}

// Runs fn on the word in place (host pointer or the space's page).
Result<void> with_word(UserSpace* s, uintptr_t uaddr, bool write, absl::FunctionRef<void(uint32_t*)> fn) {
  if (s) return s->with_word(uaddr, write, fn);
  if (!host_user_range_ok(uaddr, sizeof(uint32_t))) return err(EFAULT);
  fn(reinterpret_cast<uint32_t*>(uaddr));
  return {};
}

Result<uint32_t> load_word(UserSpace* s, uintptr_t uaddr) {
  uint32_t v = 0;
  TRY(with_word(s, uaddr, false, [&v](uint32_t* w) { v = __atomic_load_n(w, __ATOMIC_SEQ_CST); }));
  return v;
}

// Two buckets locked in address order (once if the same).
class ABSL_SCOPED_LOCKABLE PairLocker {
 public:
  PairLocker(Bucket& a, Bucket& b) ABSL_EXCLUSIVE_LOCK_FUNCTION(a.lock, b.lock) ABSL_NO_THREAD_SAFETY_ANALYSIS
      : a_(&a < &b ? a : b), b_(&a < &b ? b : a) {
    a_.lock.lock();
    if (&a_ != &b_) b_.lock.lock();
  }
  ~PairLocker() ABSL_UNLOCK_FUNCTION() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (&a_ != &b_) b_.lock.unlock();
    a_.lock.unlock();
  }

 private:
  Bucket& a_;
  Bucket& b_;
};

// The sleepers a waker took off a bucket, unparked when it is destroyed:
// declared before the bucket's lock guard, so after the unlock. A long
// list (a broadcast) unparks the ones beyond kMax under the lock.
class WakeList {
 public:
  WakeList() = default;
  WakeList(const WakeList&) = delete;
  WakeList& operator=(const WakeList&) = delete;
  ~WakeList() {
    for (int i = 0; i < n_; i++) unpark(*parkers_[i]);
  }
  // p is referenced already; its waiter's flag is set.
  void add(Parker& p) {
    if (n_ == kMax) unpark(p);
    else parkers_[n_++] = &p;
  }

 private:
  static constexpr int kMax = 8;
  static void unpark(Parker& p) {
    p.unpark();
    p.unref();
  }
  Parker* parkers_[kMax];
  int n_ = 0;
};

// Takes w off b and sets its flag; a sleeper goes on wl. After this the
// waiter may be gone.
void wake_waiter(Bucket& b, Waiter& w, WakeList& wl) ABSL_EXCLUSIVE_LOCKS_REQUIRED(b.lock) {
  b.waiters.erase(b.waiters.iterator_to(w));
  b.nwaiters.fetch_sub(1, std::memory_order_relaxed);
  // The waiter's LWP holds a reference to its Parker while it is queued.
  Parker* p = w.parker;
  if (p) p->ref();
  w.woken.store(1, std::memory_order_release);
  // Only after the flag: an unpark before it would let the sleeper wake,
  // find no flag and park again for good.
  if (p) wl.add(*p);
}

// Wakes up to n (at least one, as Linux) waiters of key whose bitset
// meets bitset.
int wake_locked(Bucket& b, const MemoryKey& key, int n, uint32_t bitset, WakeList& wl)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(b.lock) {
  int woken = 0;
  for (auto it = b.waiters.begin(); it != b.waiters.end();) {
    Waiter& w = *it++;
    if (!(w.key == key) || (w.bitset & bitset) == 0) continue;
    wake_waiter(b, w, wl);
    if (++woken >= n) break;
  }
  return woken;
}

bool no_waiters(Bucket& b) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return b.nwaiters.load(std::memory_order_relaxed) == 0;
}

Result<long> futex_wake(Kernel& k, UserSpace* s, uintptr_t uaddr, bool priv, int n, uint32_t bitset) {
  if (bitset == 0) return err(EINVAL);
  MemoryKey key = TRY(futex_key(s, uaddr, priv));
  FutexTable* t = table(k, false);
  if (!t) return 0;
  Bucket& b = t->bucket(key);
  if (no_waiters(b)) return 0;
  WakeList wl;
  MutexLocker g(b.lock);
  return wake_locked(b, key, n, bitset, wl);
}

// Takes w off whatever bucket it is on now, unless a waker took it off
// first. Returns true if it was still queued.
bool unqueue(Waiter& w) {
  for (;;) {
    Bucket* b = w.bucket.load(std::memory_order_acquire);
    MutexLocker g(b->lock);
    if (w.bucket.load(std::memory_order_relaxed) != b) continue;
    if (w.woken.load(std::memory_order_acquire)) return false;
    b->waiters.erase(b->waiters.iterator_to(w));
    b->nwaiters.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }
}

// deadline_ns: monotonic, < 0 for none.
Result<long> futex_wait(Lwp& l, uintptr_t uaddr, bool priv, uint32_t val, int64_t deadline_ns, uint32_t bitset) {
  if (bitset == 0) return err(EINVAL);
  UserSpace* s = l.user_space();
  MemoryKey key = TRY(futex_key(s, uaddr, priv));
  FutexTable* t = table(l.kernel(), true);
  if (!t) return err(ENOMEM);
  Bucket& b0 = t->bucket(key);
  Waiter w;
  w.key = key;
  w.bitset = bitset;
  w.bucket.store(&b0, std::memory_order_relaxed);
  int64_t left = -1;
  if (deadline_ns >= 0) {
    left = deadline_ns - mono_now_ns();
    if (left < 0) left = 0;
  }
  b0.nwaiters.fetch_add(1, std::memory_order_seq_cst);
  SpinBudget::Turn turn;
  {
    MutexLocker g(b0.lock);
    Result<uint32_t> cur = load_word(s, uaddr);
    if (!cur.ok() || cur.value() != val) {
      b0.nwaiters.fetch_sub(1, std::memory_order_relaxed);
      return err(cur.ok() ? EAGAIN : cur.error());
    }
    b0.waiters.push_back(w);
    turn = b0.spin.begin(left);
  }
  if (turn.ns > 0 && l.spin_wait(w.woken, 0, turn.ns)) {
    // The hand-over: the waker set the flag while we spun.
    if (!b0.spin_settled(turn)) {
      MutexLocker g(b0.lock);
      b0.spin_end_locked(turn, true);
    }
    return 0;
  }
  Parker* pk = l.futex_parker_;
  if (!pk) {
    pk = new (l.kernel().kmem()) Parker();
    l.futex_parker_ = pk;
  }
  for (;;) {
    Bucket* b = w.bucket.load(std::memory_order_acquire);
    MutexLocker g(b->lock);
    if (w.bucket.load(std::memory_order_relaxed) != b) continue;
    if (turn.ns > 0) {
      // The spin ran out (a flag set only now came too late to count).
      // A waiter requeued meanwhile leaves its first bucket's budget be.
      if (b == &b0) b->spin_end_locked(turn, false);
    }
    if (w.woken.load(std::memory_order_acquire)) return 0;
    // Out of memory for the Parker: no sleep (ENOMEM unless woken).
    if (pk) w.parker = pk;
    break;
  }
  int e = ENOMEM;
  while (pk) {
    e = pk->park(l, deadline_ns);
    // The flag is set last by the waker: after it, w is ours again.
    if (w.woken.load(std::memory_order_acquire)) return 0;
    if (e) break;
  }
  // Timed out or interrupted, unless a waker came first.
  if (!unqueue(w)) return 0;
  // Restarted (the same wait again) only without a timeout, as Linux.
  if (deadline_ns >= 0) e = eintr_if_restart(e);
  return err(e);
}

Result<long> futex_requeue(Lwp& l, uintptr_t uaddr, bool priv, int nwake, int nrequeue, uintptr_t uaddr2,
                           const uint32_t* cmpval) {
  if (nwake < 0 || nrequeue < 0) return err(EINVAL);
  UserSpace* s = l.user_space();
  MemoryKey k1 = TRY(futex_key(s, uaddr, priv));
  MemoryKey k2 = TRY(futex_key(s, uaddr2, priv));
  FutexTable* t = table(l.kernel(), true);
  if (!t) return err(ENOMEM);
  Bucket& b1 = t->bucket(k1);
  Bucket& b2 = t->bucket(k2);
  WakeList wl;
  PairLocker g(b1, b2);
  if (cmpval) {
    uint32_t cur = TRY(load_word(s, uaddr));
    if (cur != *cmpval) return err(EAGAIN);
  }
  int count = 0;
  for (auto it = b1.waiters.begin(); it != b1.waiters.end();) {
    if (count - nwake >= nrequeue) break;
    Waiter& w = *it++;
    if (!(w.key == k1)) continue;
    if (++count <= nwake) {
      wake_waiter(b1, w, wl);
      continue;
    }
    // Moved, with its Parker: a waker of the new word finds it there.
    b1.waiters.erase(b1.waiters.iterator_to(w));
    b1.nwaiters.fetch_sub(1, std::memory_order_relaxed);
    w.key = k2;
    b2.nwaiters.fetch_add(1, std::memory_order_relaxed);
    b2.waiters.push_back(w);
    w.bucket.store(&b2, std::memory_order_release);
  }
  return count;
}

// FUTEX_WAKE_OP's operation on the word at uaddr2; > 0 if the comparison
// of the old value holds.
Result<int> atomic_op(UserSpace* s, uintptr_t uaddr, uint32_t encoded) {
  uint32_t op = (encoded & 0x70000000) >> 28;
  uint32_t cmp = (encoded & 0x0f000000) >> 24;
  int32_t oparg = static_cast<int32_t>(((encoded & 0x00fff000) >> 12) << 20) >> 20;
  int32_t cmparg = static_cast<int32_t>((encoded & 0x00000fff) << 20) >> 20;
  if (encoded & (FUTEX_OP_OPARG_SHIFT << 28)) {
    // Linux masks a shift out of range (and logs it).
    oparg = static_cast<int32_t>(1u << (static_cast<uint32_t>(oparg) & 31));
  }
  if (op > FUTEX_OP_XOR) return err(ENOSYS);
  if (uaddr % sizeof(uint32_t) != 0) return err(EFAULT);
  int32_t oldval = 0;
  TRY(with_word(s, uaddr, true, [&](uint32_t* w) {
    uint32_t old = __atomic_load_n(w, __ATOMIC_RELAXED);
    uint32_t nv;
    do {
      uint32_t a = static_cast<uint32_t>(oparg);
      switch (op) {
        case FUTEX_OP_SET: nv = a; break;
        case FUTEX_OP_ADD: nv = old + a; break;
        case FUTEX_OP_OR: nv = old | a; break;
        case FUTEX_OP_ANDN: nv = old & ~a; break;
        default: nv = old ^ a; break;
      }
    } while (!__atomic_compare_exchange_n(w, &old, nv, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    oldval = static_cast<int32_t>(old);
  }));
  switch (cmp) {
    case FUTEX_OP_CMP_EQ: return oldval == cmparg;
    case FUTEX_OP_CMP_NE: return oldval != cmparg;
    case FUTEX_OP_CMP_LT: return oldval < cmparg;
    case FUTEX_OP_CMP_GE: return oldval >= cmparg;
    case FUTEX_OP_CMP_LE: return oldval <= cmparg;
    case FUTEX_OP_CMP_GT: return oldval > cmparg;
    default: return err(ENOSYS);
  }
}

Result<long> futex_wake_op(Lwp& l, uintptr_t uaddr, bool priv, int nwake, int nwake2, uintptr_t uaddr2,
                           uint32_t encoded) {
  UserSpace* s = l.user_space();
  MemoryKey k1 = TRY(futex_key(s, uaddr, priv));
  MemoryKey k2 = TRY(futex_key(s, uaddr2, priv));
  FutexTable* t = table(l.kernel(), true);
  if (!t) return err(ENOMEM);
  Bucket& b1 = t->bucket(k1);
  Bucket& b2 = t->bucket(k2);
  WakeList wl;
  PairLocker g(b1, b2);
  int opret = TRY(atomic_op(s, uaddr2, encoded));
  int woken = wake_locked(b1, k1, nwake, FUTEX_BITSET_MATCH_ANY, wl);
  if (opret > 0) woken += wake_locked(b2, k2, nwake2, FUTEX_BITSET_MATCH_ANY, wl);
  return woken;
}

Result<int64_t> timeout_ns(const timespec& ts) {
  if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= kNsPerSec) return err(EINVAL);
  constexpr int64_t kMaxSec = INT64_MAX / kNsPerSec - 1;
  int64_t sec = ts.tv_sec > kMaxSec ? kMaxSec : static_cast<int64_t>(ts.tv_sec);
  return sec * kNsPerSec + ts.tv_nsec;
}

// Marks a futex of a dead owner (Linux's handle_futex_death); false ends
// the walk (a fault).
bool futex_owner_died(Lwp& l, uintptr_t uaddr, bool pi, bool pending) {
  if (uaddr % sizeof(uint32_t) != 0) return false;
  UserSpace* s = l.user_space();
  Result<uint32_t> cur = load_word(s, uaddr);
  if (!cur.ok()) return false;
  if (pending && !pi && cur.value() == 0) {
    (void)futex_wake(l.kernel(), s, uaddr, false, 1, FUTEX_BITSET_MATCH_ANY);
    return true;
  }
  bool wake = false;
  Result<void> r = with_word(s, uaddr, true, [&](uint32_t* w) {
    uint32_t old = __atomic_load_n(w, __ATOMIC_SEQ_CST);
    do {
      if ((old & FUTEX_TID_MASK) != static_cast<uint32_t>(l.tid())) return;
    } while (!__atomic_compare_exchange_n(w, &old, (old & FUTEX_WAITERS) | FUTEX_OWNER_DIED, false,
                                          __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    wake = !pi && (old & FUTEX_WAITERS);
  });
  if (!r.ok()) return false;
  if (wake) (void)futex_wake(l.kernel(), s, uaddr, false, 1, FUTEX_BITSET_MATCH_ANY);
  return true;
}

// An entry pointer of the robust list: bit 0 flags a PI futex.
bool fetch_entry(Lwp& l, uintptr_t at, uintptr_t* entry, bool* pi) {
  uintptr_t v = 0;
  if (!copyin(l, at, &v, sizeof v).ok()) return false;
  *entry = v & ~uintptr_t{1};
  *pi = v & 1;
  return true;
}

void exit_robust_list(Lwp& l, uintptr_t head) {
  uintptr_t entry, pending, next = 0;
  bool pi, pip, next_pi = false;
  long offset = 0;
  if (!fetch_entry(l, head, &entry, &pi)) return;
  if (!copyin(l, head + sizeof(uintptr_t), &offset, sizeof offset).ok()) return;
  if (!fetch_entry(l, head + 2 * sizeof(uintptr_t), &pending, &pip)) return;
  int limit = kRobustListLimit;
  while (entry != head) {
    bool ok = fetch_entry(l, entry, &next, &next_pi);
    if (entry != pending && !futex_owner_died(l, entry + static_cast<uintptr_t>(offset), pi, false)) return;
    if (!ok) return;
    entry = next;
    pi = next_pi;
    if (--limit == 0) break;
  }
  if (pending) futex_owner_died(l, pending + static_cast<uintptr_t>(offset), pip, true);
}

}  // namespace

void futex_lwp_exit(Lwp& l) {
  if (uintptr_t head = l.robust_list_.exchange(0)) exit_robust_list(l, head);
  if (uintptr_t tidp = l.clear_child_tid_.exchange(0)) {
    UserSpace* s = l.user_space();
    if (tidp % sizeof(uint32_t) == 0 &&
        with_word(s, tidp, true, [](uint32_t* w) { __atomic_store_n(w, 0, __ATOMIC_SEQ_CST); }).ok())
      (void)futex_wake(l.kernel(), s, tidp, false, 1, FUTEX_BITSET_MATCH_ANY);
  }
}

Result<long> sys_futex(Lwp& l, UserPtr<uint32_t> uaddr, int futex_op, uint32_t val, UserPtr<struct timespec> timeout,
                       UserPtr<uint32_t> uaddr2, uint32_t val3) {
  int cmd = futex_op & FUTEX_CMD_MASK;
  bool priv = futex_op & FUTEX_PRIVATE_FLAG;
  bool realtime = futex_op & FUTEX_CLOCK_REALTIME;
  // The timeout is read and checked before anything else (Linux).
  int64_t deadline = -1;
  if (timeout && (cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET || cmd == FUTEX_LOCK_PI ||
                  cmd == FUTEX_LOCK_PI2 || cmd == FUTEX_WAIT_REQUEUE_PI)) {
    timespec ts = TRY(copyin_obj(l, timeout));
    int64_t ns = TRY(timeout_ns(ts));
    if (cmd == FUTEX_WAIT) deadline = mono_now_ns() + ns;
    else if (realtime) deadline = mono_now_ns() + (ns - wall_now_ns());
    else deadline = ns;
    if (deadline < 0) deadline = 0;
  }
  // Only the absolute waits take the realtime clock (Linux: FUTEX_WAIT too
  // is ENOSYS), and only after the timeout was checked.
  if (realtime && cmd != FUTEX_WAIT_BITSET && cmd != FUTEX_WAIT_REQUEUE_PI && cmd != FUTEX_LOCK_PI2)
    return err(ENOSYS);
  // The fourth argument is a count, not a pointer, for these.
  int val2 = static_cast<int>(static_cast<uint32_t>(timeout.addr));
  switch (cmd) {
    case FUTEX_WAIT:
      return futex_wait(l, uaddr.addr, priv, val, deadline, FUTEX_BITSET_MATCH_ANY);
    case FUTEX_WAIT_BITSET:
      return futex_wait(l, uaddr.addr, priv, val, deadline, val3);
    case FUTEX_WAKE:
      return futex_wake(l.kernel(), l.user_space(), uaddr.addr, priv, static_cast<int>(val), FUTEX_BITSET_MATCH_ANY);
    case FUTEX_WAKE_BITSET:
      return futex_wake(l.kernel(), l.user_space(), uaddr.addr, priv, static_cast<int>(val), val3);
    case FUTEX_REQUEUE:
      return futex_requeue(l, uaddr.addr, priv, static_cast<int>(val), val2, uaddr2.addr, nullptr);
    case FUTEX_CMP_REQUEUE:
      return futex_requeue(l, uaddr.addr, priv, static_cast<int>(val), val2, uaddr2.addr, &val3);
    case FUTEX_WAKE_OP:
      return futex_wake_op(l, uaddr.addr, priv, static_cast<int>(val), val2, uaddr2.addr, val3);
    default:
      return err(ENOSYS);
  }
}

Result<long> sys_set_tid_address(Lwp& l, UserPtr<int> tidptr) {
  l.clear_child_tid_.store(tidptr.addr, std::memory_order_relaxed);
  return l.tid();
}

Result<long> sys_set_robust_list(Lwp& l, UserPtr<void> head, size_t len) {
  if (len != kRobustHeadSize) return err(EINVAL);
  l.robust_list_.store(head.addr, std::memory_order_relaxed);
  return 0;
}

Result<long> sys_get_robust_list(Lwp& l, int pid, UserPtr<void> head_ptr, UserPtr<size_t> len_ptr) {
  uintptr_t head = 0;
  if (pid == 0) {
    head = l.robust_list_.load(std::memory_order_relaxed);
  } else {
    ProcTable& t = l.kernel().procs();
    MutexLocker g(t.lock());
    Lwp* found = t.find_tid_locked(pid);
    if (found && (found->kind() == Lwp::Kind::kKthread || found->dead_.load())) found = nullptr;
    if (!found) return err(ESRCH);
    // Linux's PTRACE_MODE_READ_REALCREDS: the caller's real ids match
    // every id of the target, or the caller is privileged.
    const Cred& c = l.cred();
    if (!c.is_root()) {
      Ref<Cred> tc = found->proc().cred();
      bool same = c.uid == tc->uid && c.uid == tc->euid && c.uid == tc->suid && c.gid == tc->gid &&
                  c.gid == tc->egid && c.gid == tc->sgid;
      if (!same) return err(EPERM);
    }
    head = found->robust_list_.load(std::memory_order_relaxed);
  }
  size_t len = kRobustHeadSize;
  TRY(copyout_obj(l, len, len_ptr));
  TRY(copyout_obj(l, head, head_ptr));
  return 0;
}

}  // namespace rump
