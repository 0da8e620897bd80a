// spin_budget.h: how long a waiter spins before it sleeps, adapted to how
// the spins went on the object it waits on (one budget per object and side,
// guarded by the object's lock).
//
// A waiter whose peer is running on another CPU gets what it waits for
// within a few microseconds: spinning (Lwp::spin_wait, with the object's
// lock dropped and the virtual CPU given back) then hands over without a
// host wake-up on either side. A spin that pays off earns the next one a
// longer budget; one that runs out a shorter one, down to none (the peer is
// not running: a loaded host, an idle object). Sleeping then sustains
// itself (each side is woken only after the other slept), so every so often
// a wait probes with a spin longer than a host wake-up across CPUs plus the
// peer's turn; a probe that runs out makes the next one come later.
//
// Who uses it: pipes and FIFOs (vfs/pipe.cc) and the socket layer
// (net/socket.cc), through spin(): the object keeps a generation word that
// every change a waiter may wait for bumps under the object's lock.
// Futexes (kern/futex.cc) keep one budget per hash bucket and call
// begin()/end() themselves: their waiter spins on its own flag with no
// lock held.
#pragma once

#include <atomic>
#include <cstdint>

#include "kern/lwp.h"
#include "sync/mutex.h"

namespace rump {

struct SpinBudget {
  static constexpr int32_t kMaxNs = 20 * 1000;
  static constexpr int32_t kMinNs = 2 * 1000;
  static constexpr int32_t kProbeNs = 50 * 1000;
  static constexpr uint32_t kProbeFirst = 16;  // sleeps before a probe, at first
  static constexpr uint32_t kProbeLast = 1024;  // ... and at most

  int32_t ns = kMaxNs;  // 0: sleep at once, but for probes
  uint32_t sleeps = 0;  // since the last probe
  uint32_t probe_every = kProbeFirst;

  // One spin's length and whether it is a probe, as begin() chose it.
  struct Turn {
    int32_t ns = 0;
    bool probe = false;
  };

  // The length of the next spin (0: none), never past max_ns when >= 0.
  // The caller spins, then tells end() how it went. Both under the lock
  // that guards the budget.
  Turn begin(int64_t max_ns) {
    Turn t{ns, false};
    if (t.ns == 0 && ++sleeps >= probe_every) {
      t.ns = kProbeNs;
      t.probe = true;
      sleeps = 0;
    }
    if (max_ns >= 0 && t.ns > max_ns) t.ns = static_cast<int32_t>(max_ns);
    if (t.ns < 0) t.ns = 0;
    return t;
  }

  // Adapts the budget to a spin of t that paid off or ran out.
  void end(Turn t, bool paid_off) {
    if (paid_off) {
      ns = !t.probe && t.ns < kMaxNs / 2 ? (t.ns < kMinNs ? kMinNs : t.ns * 2) : kMaxNs;
      probe_every = kProbeFirst;
    } else if (t.probe) {
      if (probe_every < kProbeLast) probe_every *= 2;
    } else {
      ns = t.ns >= 2 * kMinNs ? t.ns / 2 : 0;
    }
  }

  // True if end(t, true) would change nothing: a waiter that spins with
  // no lock held skips taking the lock again after a spin that paid off.
  bool settled(Turn t) const { return !t.probe && t.ns >= kMaxNs / 2 && ns == kMaxNs && probe_every == kProbeFirst; }

  // Spins on gen (whose value under m was seen) with m dropped, for at
  // most the budget (and never past max_ns, when >= 0), and adapts the
  // budget. m is held again on return. True if gen moved: the caller
  // re-checks its condition instead of sleeping.
  bool spin(Lwp& l, Mutex& m, const std::atomic<uint32_t>& gen, uint32_t seen, int64_t max_ns)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(m) {
    Turn t = begin(max_ns);
    if (t.ns <= 0) return false;
    m.unlock();
    bool paid_off = l.spin_wait(gen, seen, t.ns);
    m.lock();
    end(t, paid_off);
    if (paid_off) return true;
    // A change late in the spin or between its end and the lock: its
    // maker saw no sleeper and woke nobody.
    return gen.load(std::memory_order_relaxed) != seen;
  }
};

}  // namespace rump
