// rumpuser_int.h: state and helpers shared by the files of librumpuser.
// Internal to librumpuser; nothing outside this folder may include it.
//
// Process-wide state lives here: the upcall table installed by
// rumpuser_init (shared by every kernel of the process), the calling
// thread's backend, and the calling thread's LWP. The upcall table and the
// LWP decide whether a blocking hypercall gives its virtual CPU back: only
// a thread that has an LWP holds a CPU, and only a process with a kernel
// has a scheduler to give it back to.
#pragma once

#include <rump/rumpuser.h>

#include <atomic>
#include <cstddef>
#include <cerrno>
#include <cstdint>

namespace rumpuser_int {

// The upcall table, or null before the first rumpuser_init. The table
// itself belongs to the kernel and must outlive every hypercall.
extern std::atomic<const rumpuser_hyperup*> hyp;

// The "pthread" backend (pth.cc, clock.cc).
namespace pth {
extern const rumpuser_backend backend;
int clock_read(int clock, int64_t* sec, long* nsec);
int clock_sleep(int clock, int64_t sec, long nsec);
int cpuclock_self(uint64_t* clkp);
int cpuclock_read(uint64_t clk, int64_t* nsp);
int membarrier();
int rss_peak(uint64_t* bytesp);
}  // namespace pth

// Thread-local blocks of the kernel (rumpuser_tls_register): a backend
// that runs several threads on one host thread keeps a copy per thread.
struct TlsBlock {
  void* (*locate)(void);
  size_t len;
};
inline constexpr int kMaxTlsBlocks = 8;
inline constexpr size_t kMaxTlsBytes = 4096;
// The registered blocks and their number (stable once read).
int tls_blocks(const TlsBlock** blocksp);

// The "sim" backend (sim.cc): the table registered under its name. A
// kernel is served by an instance of it made by rumpuser_sim_create.
namespace sim {
extern const rumpuser_backend backend;
// Fills buf from the calling thread's world's own generator (seeded from
// the world's seed, apart from its scheduling choices); false if the
// thread is not one of a world's.
bool fill_random(void* buf, size_t len);
}  // namespace sim

// The calling thread's backend; null means pth::backend.
extern thread_local constinit const rumpuser_backend* backend_tls
    __attribute__((tls_model("initial-exec")));

inline const rumpuser_backend* thread_backend() {
  const rumpuser_backend* be = backend_tls;
  return be != nullptr ? be : &pth::backend;
}

// The calling thread's LWP. initial-exec: one %fs-relative load, no
// __tls_get_addr, so rumpuser_curlwp() and the KLOCK checks stay cheap.
extern thread_local constinit struct lwp* curlwp_tls __attribute__((tls_model("initial-exec")));

inline struct lwp* curlwp() { return curlwp_tls; }

// The upcall table to use around a blocking operation of the calling
// thread, or null when the thread holds no CPU (no LWP, or no kernel).
inline const rumpuser_hyperup* wrap_hyp() {
  if (curlwp_tls == nullptr) return nullptr;
  return hyp.load(std::memory_order_acquire);
}

// NetBSD's KLOCK_WRAP: gives the virtual CPU back for the lifetime of the
// object and takes one again when it ends. interlock is the rumpuser_mtx the
// caller holds and is about to block on (cv waits), else null.
class KlockWrap {
 public:
  explicit KlockWrap(void* interlock = nullptr) : hyp_(wrap_hyp()) {
    if (hyp_ != nullptr) hyp_->hyp_backend_unschedule(0, &nlocks_, interlock);
  }
  ~KlockWrap() {
    if (hyp_ != nullptr) {
      int saved = errno;
      hyp_->hyp_backend_schedule(nlocks_, nullptr);
      errno = saved;
    }
  }
  KlockWrap(const KlockWrap&) = delete;
  KlockWrap& operator=(const KlockWrap&) = delete;

 private:
  const rumpuser_hyperup* hyp_;
  int nlocks_ = 0;
};

// Runs a host call that returns -1 and sets errno, retrying on EINTR.
// Returns the call's result; on failure, -1 with errno intact.
template <class F>
auto retry_eintr(F&& f) {
  for (;;) {
    auto r = f();
    if (r == -1 && errno == EINTR) continue;
    return r;
  }
}

}  // namespace rumpuser_int

namespace rumpuser_int {

// Fault injection (fault.cc; rumpuser.h, "Fault injection").
//
// The cost when nothing is armed is one thread-local load and one relaxed
// atomic load per injectable hypercall.
struct FaultNth {
  unsigned remaining = 0;  // 0: disarmed
  unsigned more = 0;       // failures that follow the armed one, one per call
  bool fired = false;
};
extern thread_local constinit FaultNth fault_nth_tls __attribute__((tls_model("initial-exec")));
// How many kernels have seeded faults switched on.
extern std::atomic<int> faults_enabled;

// The slow path: decides, counts, and says whether to fail.
bool fault_decide(uint32_t cls);

// True if the calling hypercall, of class cls (RUMPUSER_FAULT_*), must fail.
inline bool fault_inject(uint32_t cls) {
  if (__builtin_expect(fault_nth_tls.remaining == 0 &&
                           faults_enabled.load(std::memory_order_relaxed) == 0,
                       1)) {
    return false;
  }
  return fault_decide(cls);
}

}  // namespace rumpuser_int
