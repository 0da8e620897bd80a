// fault.cc: failures injected on purpose into the hypercalls that can fail
// (rumpuser.h, "Fault injection").
//
// The injectable hypercalls ask fault_inject() first and, when it says so,
// return the error the host would have given without doing anything. The
// decision needs no lock: fail-nth is the calling thread's own, and a
// kernel's generator is one atomic counter (splitmix64 over a sequence
// number), so the same order of hypercalls gives the same failures.
#include <rump/rumpuser.h>

#include <atomic>
#include <cstdint>
#include <new>

#include "rumpuser_int.h"

struct rumpuser_faults {
  std::atomic<uint64_t> seed{0};
  std::atomic<uint64_t> sequence{0};
  // The probability as a threshold on 64 random bits (0: never).
  std::atomic<uint64_t> threshold{0};
  std::atomic<uint32_t> mask{0};
  std::atomic<uint64_t> injected{0};
  // Whether this state counts in faults_enabled.
  std::atomic<bool> enabled{false};
};

namespace rumpuser_int {

thread_local constinit FaultNth fault_nth_tls __attribute__((tls_model("initial-exec")));
std::atomic<int> faults_enabled{0};

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The calling thread's kernel's state, through the upcall; only a thread
// with an LWP is inside a kernel.
rumpuser_faults* current_faults() {
  if (curlwp_tls == nullptr) return nullptr;
  const rumpuser_hyperup* h = hyp.load(std::memory_order_acquire);
  if (h == nullptr || h->hyp_faults == nullptr) return nullptr;
  return h->hyp_faults();
}

}  // namespace

bool fault_decide(uint32_t cls) {
  bool fail = false;
  FaultNth& t = fault_nth_tls;
  if (t.remaining != 0 && --t.remaining == 0) {
    t.fired = true;
    fail = true;
    if (t.more != 0) {  // a run: the next call fails too
      t.more--;
      t.remaining = 1;
    }
  }
  rumpuser_faults* f = current_faults();
  if (!fail && f != nullptr && (f->mask.load(std::memory_order_relaxed) & cls) != 0) {
    uint64_t n = f->sequence.fetch_add(1, std::memory_order_relaxed);
    uint64_t r = splitmix64(f->seed.load(std::memory_order_relaxed) ^ splitmix64(n));
    fail = r < f->threshold.load(std::memory_order_relaxed);
  }
  if (fail && f != nullptr) f->injected.fetch_add(1, std::memory_order_relaxed);
  return fail;
}

}  // namespace rumpuser_int

using rumpuser_int::faults_enabled;

extern "C" int rumpuser_faults_create(struct rumpuser_faults** fp) {
  auto* f = new (std::nothrow) rumpuser_faults;
  if (f == nullptr) return ENOMEM;
  *fp = f;
  return 0;
}

extern "C" void rumpuser_faults_destroy(struct rumpuser_faults* f) {
  if (f == nullptr) return;
  rumpuser_faults_configure(f, 0, 0, 0);
  delete f;
}

extern "C" void rumpuser_faults_configure(struct rumpuser_faults* f, uint64_t seed,
                                          double probability, uint32_t mask) {
  uint64_t threshold;
  if (!(probability > 0)) threshold = 0;  // also NaN
  else if (probability >= 1) threshold = UINT64_MAX;
  else threshold = static_cast<uint64_t>(probability * 18446744073709551616.0);
  bool on = threshold != 0 && mask != 0;
  // Off first, so no hypercall sees a half-written configuration as
  // enabled; then the new one.
  f->mask.store(0, std::memory_order_relaxed);
  f->seed.store(seed, std::memory_order_relaxed);
  f->sequence.store(0, std::memory_order_relaxed);
  f->threshold.store(threshold, std::memory_order_relaxed);
  f->mask.store(on ? mask : 0, std::memory_order_release);
  bool was = f->enabled.exchange(on);
  if (on && !was) faults_enabled.fetch_add(1);
  if (!on && was) faults_enabled.fetch_sub(1);
}

extern "C" uint64_t rumpuser_faults_injected(const struct rumpuser_faults* f) {
  return f == nullptr ? 0 : f->injected.load(std::memory_order_relaxed);
}

extern "C" void rumpuser_fault_nth(unsigned n) { rumpuser_fault_nth_run(n, 1); }

extern "C" void rumpuser_fault_nth_run(unsigned n, unsigned count) {
  rumpuser_int::FaultNth& t = rumpuser_int::fault_nth_tls;
  t.remaining = count != 0 ? n : 0;
  t.more = n != 0 && count > 1 ? count - 1 : 0;
  t.fired = false;
}

extern "C" int rumpuser_fault_nth_fired(void) { return rumpuser_int::fault_nth_tls.fired ? 1 : 0; }

extern "C" void rumpuser_fault_nth_swap(struct rumpuser_fault_nth_state* state) {
  rumpuser_int::FaultNth& t = rumpuser_int::fault_nth_tls;
  rumpuser_int::FaultNth saved = t;
  t.remaining = state->fn_remaining;
  t.more = state->fn_more;
  t.fired = state->fn_fired != 0;
  state->fn_remaining = saved.remaining;
  state->fn_more = saved.more;
  state->fn_fired = saved.fired ? 1 : 0;
}
