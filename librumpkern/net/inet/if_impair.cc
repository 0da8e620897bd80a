// Seeded impairment of an interface's input (rump_pub_netconfig_impair;
// see if.h), for tests that need a lossy network without a host netem.
//
// Every packet the interface receives draws three numbers in [0, 1) from
// the interface's generator (splitmix64, seeded by the configuration),
// whatever happens to it, so that the same traffic meets the same fate on
// every run:
//  - the first below `loss`: the packet is dropped;
//  - the second below `duplicate`: a copy goes right after it;
//  - the third below `reorder`: it is held back until the next packet has
//    been delivered (or, if none comes within kHoldNs, 10 ms, until then),
//    so the two swap;
//  - with delay_us set, what would be delivered waits that long first.
// Delivery goes on through if_enqueue, from the receiving thread or from
// the impairment's callout (held and delayed packets).
//
// Locking: IfImpair::lock (a leaf Mutex: packets are copied under it) guards
// the configuration, the generator and the held packets; packets are
// delivered with it released.
#include <linux/if_ether.h>

#include "kern/callout.h"
#include "kern/clock.h"
#include "kern/kernel.h"
#include "net/inet/if.h"

namespace rump {

struct IfImpair : public KObject {
  Mutex lock{LockRank::kNone};
  ImpairConfig cfg ABSL_GUARDED_BY(lock);
  bool on ABSL_GUARDED_BY(lock) = false;
  uint64_t rng ABSL_GUARDED_BY(lock) = 0;
  Pkt* held ABSL_GUARDED_BY(lock) = nullptr;  // meta.stamp: when to let it go
  PktList delayed ABSL_GUARDED_BY(lock);      // in delivery order, meta.stamp: when
  Callout timer;
  std::atomic<uint64_t> dropped{0}, duplicated{0}, reordered{0};
  ~IfImpair() {
    MutexLocker g(lock);
    Pkt::free(held);
    held = nullptr;
    pkt_list_free(delayed);
  }
};

namespace {

constexpr int64_t kHoldNs = 10 * 1000 * 1000;

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
double draw(uint64_t& s) { return static_cast<double>(splitmix(s) >> 11) * 0x1.0p-53; }

// Arms the timer for the earliest held or delayed packet.
void rearm_locked(IfImpair& im) ABSL_EXCLUSIVE_LOCKS_REQUIRED(im.lock) {
  int64_t when = INT64_MAX;
  if (im.held) when = im.held->meta.stamp;
  if (!im.delayed.empty() && im.delayed.front().meta.stamp < when) when = im.delayed.front().meta.stamp;
  if (when == INT64_MAX) {
    im.timer.stop();
    return;
  }
  im.timer.schedule(when - mono_now_ns());
}

// What is ready to go (out, in order) goes to the delay queue instead when
// there is a delay.
void out_or_delay_locked(IfImpair& im, Pkt* q, PktList& out, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(im.lock) {
  if (im.cfg.delay_us == 0) {
    out.push_back(*q);
    return;
  }
  q->meta.stamp = now + static_cast<int64_t>(im.cfg.delay_us) * 1000;
  im.delayed.push_back(*q);
}

void deliver(Ifnet& ifp, PktList& out) {
  out.clear_and_dispose([&](Pkt* q) {
    uint16_t proto = static_cast<uint16_t>(q->meta.aux);
    q->meta.aux = 0;
    q->meta.stamp = 0;
    if_enqueue(ifp, q, proto);
  });
}

void impair_timer(void* arg) {
  Ifnet& ifp = *static_cast<Ifnet*>(arg);
  IfImpair* im = ifp.impair.load(std::memory_order_acquire);
  if (!im) return;
  PktList out;
  {
    MutexLocker g(im->lock);
    int64_t now = mono_now_ns();
    if (im->held && im->held->meta.stamp <= now) {
      Pkt* h = im->held;
      im->held = nullptr;
      out_or_delay_locked(*im, h, out, now);
    }
    while (!im->delayed.empty() && im->delayed.front().meta.stamp <= now) {
      Pkt& q = im->delayed.front();
      im->delayed.pop_front();
      out.push_back(q);
    }
    rearm_locked(*im);
  }
  deliver(ifp, out);
}

}  // namespace

void if_impair_input(Ifnet& ifp, IfImpair& im, Pkt* p, uint16_t proto) {
  PktList out;
  p->meta.aux = proto;
  {
    MutexLocker g(im.lock);
    if (!im.on) {
      out.push_back(*p);
    } else {
      double l = draw(im.rng), d = draw(im.rng), r = draw(im.rng);
      if (l < im.cfg.loss) {
        im.dropped.fetch_add(1, std::memory_order_relaxed);
        Pkt::free(p);
        ifp.counters.iqdrops.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      Pkt* copy = nullptr;
      if (d < im.cfg.duplicate) {
        Result<Pkt*> c = p->copy(0, p->len());
        if (c.ok()) {
          copy = c.value();
          copy->meta = p->meta;
          im.duplicated.fetch_add(1, std::memory_order_relaxed);
        }
      }
      int64_t now = mono_now_ns();
      if (im.held) {
        // The packet the held one waited for: it goes first.
        Pkt* h = im.held;
        im.held = nullptr;
        out_or_delay_locked(im, p, out, now);
        if (copy) out_or_delay_locked(im, copy, out, now);
        out_or_delay_locked(im, h, out, now);
      } else if (r < im.cfg.reorder) {
        im.reordered.fetch_add(1, std::memory_order_relaxed);
        p->meta.stamp = now + kHoldNs;
        im.held = p;
        if (copy) out_or_delay_locked(im, copy, out, now);
      } else {
        out_or_delay_locked(im, p, out, now);
        if (copy) out_or_delay_locked(im, copy, out, now);
      }
      rearm_locked(im);
    }
  }
  deliver(ifp, out);
}

Result<void> if_set_impair(Ifnet& ifp, const ImpairConfig& cfg) {
  auto prob_ok = [](double x) { return x >= 0.0 && x <= 1.0; };  // false for NaN too
  if (!prob_ok(cfg.loss) || !prob_ok(cfg.duplicate) || !prob_ok(cfg.reorder)) return err(EINVAL);
  bool on = cfg.loss > 0 || cfg.duplicate > 0 || cfg.reorder > 0 || cfg.delay_us > 0;
  IfImpair* im = ifp.impair.load(std::memory_order_acquire);
  if (!im) {
    if (!on) return {};
    auto* fresh = new (ifp.state().kernel.kmem()) IfImpair();
    if (!fresh) return err(ENOMEM);
    fresh->timer.init(*ifp.state().kernel.services().callouts(), &impair_timer, &ifp);
    if (ifp.impair.compare_exchange_strong(im, fresh, std::memory_order_acq_rel)) {
      im = fresh;
    } else {
      delete fresh;  // another caller made one first: use theirs
    }
  }
  PktList out;
  {
    MutexLocker g(im->lock);
    im->cfg = cfg;
    im->on = on;
    im->rng = cfg.seed;
    if (!on) {
      // Off: what is held back goes now, in order.
      if (im->held) {
        out.push_back(*im->held);
        im->held = nullptr;
      }
      out.splice(out.end(), im->delayed);
      im->timer.stop();
    }
  }
  deliver(ifp, out);
  return {};
}

void if_impair_free(Ifnet& ifp) {
  IfImpair* im = ifp.impair.exchange(nullptr, std::memory_order_acq_rel);
  if (!im) return;
  im->timer.halt();
  delete im;
}

}  // namespace rump
