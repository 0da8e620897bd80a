// Per-LWP coverage (rump/kcov.h): the buffers, the C API, and, in a kernel
// built with -Dkcov=true, the callbacks the compiler's coverage
// instrumentation (-fsanitize-coverage=trace-pc,trace-cmp) calls at every
// edge and comparison of the kernel libraries.
#include "kern/kcov.h"

#include <rump/kcov.h>
#include <rump/rumpuser.h>

#include "kern/curlwp.h"
#include "kern/kernel.h"
#include "kern/lwp.h"

namespace rump {

namespace {
// How many LWPs of the process, in any kernel, are tracing. Process-wide
// like the instrumentation itself (one set of callbacks for every kernel
// of the process): it is not kernel state but the callbacks' fast way out,
// so that a kcov build where nobody traces pays one load per edge rather
// than a hypercall.
std::atomic<int> g_tracing{0};
}  // namespace

Result<Kcov*> Kcov::create(Kmem& kmem) {
  Kcov* kc = new (kmem) Kcov(kmem);
  if (!kc) return err(ENOMEM);
  return kc;
}

Kcov::~Kcov() {
  if (area_) {
    rumpuser_unmap(area_, bytes_);
    kmem_.uncharge(bytes_);
  }
}

Result<void> Kcov::init_trace(size_t words) {
  if (words < 2 || words > kMaxWords) return err(EINVAL);
  bool expected = false;
  if (!initialised_.compare_exchange_strong(expected, true)) return err(EBUSY);
  size_t bytes = (words * sizeof(uint64_t) + 4095) & ~size_t{4095};
  if (!kmem_.charge(bytes)) {
    initialised_.store(false);
    return err(ENOMEM);
  }
  void* mem = nullptr;
  if (int e = rumpuser_anonmmap(nullptr, bytes, 0, 0, &mem)) {
    kmem_.uncharge(bytes);
    initialised_.store(false);
    (void)e;  // the host said no: out of memory for the caller
    return err(ENOMEM);
  }
  bytes_ = bytes;
  words_ = words;
  area_ = static_cast<uint64_t*>(mem);
  return {};
}

Result<void> Kcov::enable(Lwp& l, int mode) {
  if (mode != kTracePc && mode != kTraceCmp) return err(EINVAL);
  if (!area_) return err(EINVAL);
  if (l.kcov_) return err(EBUSY);
  Lwp* expected = nullptr;
  if (!owner_.compare_exchange_strong(expected, &l)) return err(EBUSY);
  mode_ = mode;
  get();  // the LWP's reference
  g_tracing.fetch_add(1, std::memory_order_relaxed);
  l.kcov_ = this;
  return {};
}

Result<void> Kcov::disable(Lwp& l) {
  if (l.kcov_ != this) return err(EINVAL);
  l.kcov_ = nullptr;
  g_tracing.fetch_sub(1, std::memory_order_relaxed);
  owner_.store(nullptr);
  put();
  return {};
}

void Kcov::put() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

namespace {
std::atomic<DeviceMmapHook> g_device_mmap_hook{nullptr};
}  // namespace

void set_device_mmap_hook(DeviceMmapHook hook) { g_device_mmap_hook.store(hook); }
DeviceMmapHook device_mmap_hook() { return g_device_mmap_hook.load(std::memory_order_relaxed); }

void kcov_lwp_gone(Lwp& l) {
  Kcov* kc = l.kcov_;
  l.kcov_ = nullptr;
  g_tracing.fetch_sub(1, std::memory_order_relaxed);
  kc->owner_.store(nullptr);
  kc->put();
}

}  // namespace rump

#if RUMP_KCOV
// The instrumentation's callbacks. Not instrumented themselves; they look
// only at the calling thread's LWP and its buffer, so an LWP records what
// it reached and nothing of any other. A full buffer drops the rest, as
// Linux does.
#if defined(__clang__)
#define RUMP_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define RUMP_NO_COVERAGE __attribute__((no_sanitize_coverage))
#endif

namespace {

RUMP_NO_COVERAGE inline rump::Kcov* tracing(int mode) {
  if (__builtin_expect(rump::g_tracing.load(std::memory_order_relaxed) == 0, 1)) return nullptr;
  auto* l = reinterpret_cast<rump::Lwp*>(rumpuser_curlwp());
  if (__builtin_expect(l == nullptr, 0)) return nullptr;
  rump::Kcov* kc = l->kcov_;
  if (__builtin_expect(kc == nullptr, 1) || kc->mode_ != mode) return nullptr;
  return kc;
}

RUMP_NO_COVERAGE inline void record_cmp(uint64_t type, uint64_t a, uint64_t b, uint64_t pc) {
  rump::Kcov* kc = tracing(rump::Kcov::kTraceCmp);
  if (!kc) return;
  uint64_t* area = kc->area_;
  uint64_t n = __atomic_load_n(&area[0], __ATOMIC_RELAXED);
  uint64_t at = n * 4 + 1;
  if (at + 4 > kc->words_) return;
  area[at] = type;
  area[at + 1] = a;
  area[at + 2] = b;
  area[at + 3] = pc;
  __atomic_store_n(&area[0], n + 1, __ATOMIC_RELAXED);
}

}  // namespace

#define RUMP_PC reinterpret_cast<uint64_t>(__builtin_return_address(0))

extern "C" {

RUMP_NO_COVERAGE void __sanitizer_cov_trace_pc(void) {
  rump::Kcov* kc = tracing(rump::Kcov::kTracePc);
  if (!kc) return;
  uint64_t* area = kc->area_;
  uint64_t n = __atomic_load_n(&area[0], __ATOMIC_RELAXED) + 1;
  if (n >= kc->words_) return;
  area[n] = RUMP_PC;
  __atomic_store_n(&area[0], n, __ATOMIC_RELAXED);
}

RUMP_NO_COVERAGE void __sanitizer_cov_trace_cmp1(uint8_t a, uint8_t b) {
  record_cmp(RUMP_KCOV_CMP_SIZE(0), a, b, RUMP_PC);
}
RUMP_NO_COVERAGE void __sanitizer_cov_trace_cmp2(uint16_t a, uint16_t b) {
  record_cmp(RUMP_KCOV_CMP_SIZE(1), a, b, RUMP_PC);
}
RUMP_NO_COVERAGE void __sanitizer_cov_trace_cmp4(uint32_t a, uint32_t b) {
  record_cmp(RUMP_KCOV_CMP_SIZE(2), a, b, RUMP_PC);
}
RUMP_NO_COVERAGE void __sanitizer_cov_trace_cmp8(uint64_t a, uint64_t b) {
  record_cmp(RUMP_KCOV_CMP_SIZE(3), a, b, RUMP_PC);
}
RUMP_NO_COVERAGE void __sanitizer_cov_trace_const_cmp1(uint8_t a, uint8_t b) {
  record_cmp(RUMP_KCOV_CMP_SIZE(0) | RUMP_KCOV_CMP_CONST, a, b, RUMP_PC);
}
RUMP_NO_COVERAGE void __sanitizer_cov_trace_const_cmp2(uint16_t a, uint16_t b) {
  record_cmp(RUMP_KCOV_CMP_SIZE(1) | RUMP_KCOV_CMP_CONST, a, b, RUMP_PC);
}
RUMP_NO_COVERAGE void __sanitizer_cov_trace_const_cmp4(uint32_t a, uint32_t b) {
  record_cmp(RUMP_KCOV_CMP_SIZE(2) | RUMP_KCOV_CMP_CONST, a, b, RUMP_PC);
}
RUMP_NO_COVERAGE void __sanitizer_cov_trace_const_cmp8(uint64_t a, uint64_t b) {
  record_cmp(RUMP_KCOV_CMP_SIZE(3) | RUMP_KCOV_CMP_CONST, a, b, RUMP_PC);
}
// cases[0]: how many cases; cases[1]: the operand size in bits; then the
// case values. Each case is one constant comparison.
RUMP_NO_COVERAGE void __sanitizer_cov_trace_switch(uint64_t val, uint64_t* cases) {
  uint64_t size;
  switch (cases[1]) {
    case 8: size = RUMP_KCOV_CMP_SIZE(0); break;
    case 16: size = RUMP_KCOV_CMP_SIZE(1); break;
    case 32: size = RUMP_KCOV_CMP_SIZE(2); break;
    default: size = RUMP_KCOV_CMP_SIZE(3); break;
  }
  for (uint64_t i = 0; i < cases[0]; i++)
    record_cmp(size | RUMP_KCOV_CMP_CONST, cases[i + 2], val, RUMP_PC);
}
// Emitted with trace-cmp by some compilers; a division's divisor.
RUMP_NO_COVERAGE void __sanitizer_cov_trace_div4(uint32_t) {}
RUMP_NO_COVERAGE void __sanitizer_cov_trace_div8(uint64_t) {}
RUMP_NO_COVERAGE void __sanitizer_cov_trace_gep(uintptr_t) {}

}  // extern "C"
#endif  // RUMP_KCOV

// --- the C API

using rump::Kcov;
using rump::Kernel;
using rump::Lwp;

namespace {

// Runs fn(k, l) as the calling thread's LWP in its current kernel.
template <class Fn>
int as_caller(Fn&& fn) {
  Kernel* k = rump::current_kernel();
  if (!k) return EINVAL;
  Lwp* l = rump::enter(*k);
  if (!l) return rump::enter_error(*k);
  int e = fn(*k, *l);
  rump::leave(*k, l);
  return e;
}

}  // namespace

extern "C" {

int rump_kcov_open(size_t words, struct rump_kcov** kcp) {
#if !RUMP_KCOV
  (void)words;
  (void)kcp;
  return ENOSYS;
#else
  if (!kcp) return EINVAL;
  return as_caller([&](Kernel& k, Lwp&) {
    rump::Result<Kcov*> r = Kcov::create(k.kmem());
    if (!r.ok()) return r.error();
    if (rump::Result<void> i = r.value()->init_trace(words); !i.ok()) {
      r.value()->put();
      return i.error();
    }
    *kcp = reinterpret_cast<struct rump_kcov*>(r.value());
    return 0;
  });
#endif
}

int rump_kcov_enable(struct rump_kcov* kc, int mode) {
  if (!kc) return EINVAL;
  return as_caller([&](Kernel&, Lwp& l) { return reinterpret_cast<Kcov*>(kc)->enable(l, mode).error(); });
}

int rump_kcov_disable(struct rump_kcov* kc) {
  if (!kc) return EINVAL;
  return as_caller([&](Kernel&, Lwp& l) { return reinterpret_cast<Kcov*>(kc)->disable(l).error(); });
}

uint64_t* rump_kcov_area(struct rump_kcov* kc) { return kc ? reinterpret_cast<Kcov*>(kc)->area() : nullptr; }

void rump_kcov_close(struct rump_kcov* kc) {
  if (kc) reinterpret_cast<Kcov*>(kc)->put();
}

}  // extern "C"
