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
// (net/socket.cc). The object keeps a
// generation word that every change a waiter may wait for bumps under the
// object's lock.
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

  // Spins on gen (whose value under m was seen) with m dropped, for at
  // most the budget (and never past max_ns, when >= 0), and adapts the
  // budget. m is held again on return. True if gen moved: the caller
  // re-checks its condition instead of sleeping.
  bool spin(Lwp& l, Mutex& m, const std::atomic<uint32_t>& gen, uint32_t seen, int64_t max_ns)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(m) {
    int32_t budget = ns;
    bool probe = false;
    if (budget == 0 && ++sleeps >= probe_every) {
      budget = kProbeNs;
      probe = true;
      sleeps = 0;
    }
    if (max_ns >= 0 && budget > max_ns) budget = static_cast<int32_t>(max_ns);
    if (budget <= 0) return false;
    m.unlock();
    bool paid_off = l.spin_wait(gen, seen, budget);
    m.lock();
    if (paid_off) {
      ns = !probe && budget < kMaxNs / 2 ? (budget < kMinNs ? kMinNs : budget * 2) : kMaxNs;
      probe_every = kProbeFirst;
      return true;
    }
    if (probe) {
      if (probe_every < kProbeLast) probe_every *= 2;
    } else {
      ns = budget >= 2 * kMinNs ? budget / 2 : 0;
    }
    // A change late in the spin or between its end and the lock: its
    // maker saw no sleeper and woke nobody.
    return gen.load(std::memory_order_relaxed) != seen;
  }
};

}  // namespace rump
