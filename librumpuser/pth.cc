// pth.cc: the "pthread" backend: threads, mutexes, rwlocks and condition
// variables on POSIX threads (its clocks are in clock.cc).
//
// Every operation that can block on another thread gives the calling
// thread's virtual CPU back while it blocks (KlockWrap, NetBSD's
// KLOCK_WRAP), unless it is a spin mutex or a *_nowrap call. The fast paths
// (a lock that is free) touch neither the upcalls nor the host kernel.
#include <rump/rumpuser.h>

#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "rumpuser_int.h"

using rumpuser_int::curlwp;
using rumpuser_int::KlockWrap;
using rumpuser_int::wrap_hyp;

namespace rumpuser_int::pth {

namespace {

// A failing pthread call on a lock we own is a broken invariant of this
// library or of its caller (destroying a held lock, say): stop loudly.
void nofail(int rv, const char* what) {
  if (rv != 0) {
    fprintf(stderr, "librumpuser: %s: %s\n", what, strerror(rv));
    abort();
  }
}

// The attributes every mutex and condition variable of one kind shares,
// made once (a function-local static: the first init makes them).
struct PthreadAttrs {
  pthread_mutexattr_t adaptive;
  pthread_condattr_t monotonic;
  PthreadAttrs() {
    pthread_mutexattr_init(&adaptive);
    pthread_mutexattr_settype(&adaptive, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
  }
};

// Freed lock objects, kept per host thread for the next init: a kernel
// makes and frees several with every process (fork, exit) and every boot,
// and the host allocator's malloc and free cost more than the rest of an
// init. A cached object is destroyed (pthread_*_destroy) and initialised
// again when it is reused; at most kMax wait, the rest are freed. The list
// is plain data, so a destroy that runs after the thread's cleanup (a
// thread-local destructor of another library) still finds it usable: the
// cleanup marks it closed and from then on objects are freed at once.
template <class T>
struct FreeCache {
  static constexpr int kMax = 64;
  T* items[kMax];
  int n;
  bool closed;

  T* get() { return n > 0 ? items[--n] : nullptr; }
  bool put(T* o);
  void drain() {
    closed = true;
    while (n > 0) delete items[--n];
  }
};

// Runs the caches' cleanup when the thread exits (and at process exit for
// the main thread); registered by the first put.
struct FreeCacheCleanup {
  ~FreeCacheCleanup();
};

thread_local constinit FreeCache<rumpuser_mtx> g_free_mtx __attribute__((tls_model("initial-exec"))) = {};
thread_local constinit FreeCache<rumpuser_cv> g_free_cv __attribute__((tls_model("initial-exec"))) = {};

}  // namespace

// ---------------------------------------------------------------------------
// Threads

namespace {

struct ThreadStart {
  void* (*fn)(void*);
  void* arg;
  char name[16];  // the kernel's limit for a thread name, with the NUL
};

// Names itself from inside: a detached thread may be gone before the
// creator could name it.
void* thread_trampoline(void* p) {
  ThreadStart start = *static_cast<ThreadStart*>(p);
  delete static_cast<ThreadStart*>(p);
  if (start.name[0] != '\0') pthread_setname_np(pthread_self(), start.name);
  return start.fn(start.arg);
}

}  // namespace

int thread_create(void* (*fn)(void*), void* arg, const char* name,
                                      int mustjoin, int /*priority*/, int /*cpuidx*/,
                                      void** cookie) {
  auto* start = new ThreadStart{fn, arg, {}};
  if (name != nullptr) {
    strncpy(start->name, name, sizeof start->name - 1);
    start->name[sizeof start->name - 1] = '\0';
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, mustjoin ? PTHREAD_CREATE_JOINABLE : PTHREAD_CREATE_DETACHED);
  pthread_t tid;
  int rv = pthread_create(&tid, &attr, thread_trampoline, start);
  pthread_attr_destroy(&attr);
  if (rv != 0) {
    delete start;
    return rv;
  }
  if (mustjoin) {
    if (cookie == nullptr) {
      // Nobody could ever join it; do not leak the thread.
      pthread_detach(tid);
    } else {
      *cookie = new pthread_t(tid);
    }
  } else if (cookie != nullptr) {
    *cookie = nullptr;
  }
  return 0;
}

__attribute__((__noreturn__)) void thread_exit(void) { pthread_exit(nullptr); }

int thread_join(void* cookie) {
  if (cookie == nullptr) return EINVAL;
  auto* tid = static_cast<pthread_t*>(cookie);
  int rv;
  {
    KlockWrap wrap;
    rv = pthread_join(*tid, nullptr);
  }
  if (rv == 0) delete tid;
  return rv;
}

// ---------------------------------------------------------------------------
// Mutexes

}  // namespace rumpuser_int::pth

struct rumpuser_mtx {
  rumpuser_object hdr;
  pthread_mutex_t pthmtx;
  // RUMPUSER_MTX_KMUTEX: the LWP that holds it. Written by the holder,
  // read by anyone through rumpuser_mutex_owner.
  std::atomic<struct lwp*> owner{nullptr};
  int flags;
};

namespace rumpuser_int::pth {

namespace {

inline void mtx_set_owner(rumpuser_mtx* mtx) {
  if (mtx->flags & RUMPUSER_MTX_KMUTEX) mtx->owner.store(curlwp(), std::memory_order_relaxed);
}
inline void mtx_clear_owner(rumpuser_mtx* mtx) {
  if (mtx->flags & RUMPUSER_MTX_KMUTEX) mtx->owner.store(nullptr, std::memory_order_relaxed);
}

}  // namespace

void mutex_init(struct rumpuser_mtx** mtxp, int flags) {
  auto* mtx = g_free_mtx.get();
  if (mtx == nullptr) mtx = new rumpuser_mtx;
  mtx->hdr.ro_backend = &backend;
  mtx->owner.store(nullptr, std::memory_order_relaxed);
  mtx->flags = flags;
  // Spin mutexes are held for a few instructions: spin a little in user
  // space before sleeping in the host kernel.
  static const PthreadAttrs attrs;
  nofail(pthread_mutex_init(&mtx->pthmtx, (flags & RUMPUSER_MTX_SPIN) ? &attrs.adaptive : nullptr),
         "mutex_init");
  *mtxp = mtx;
}

void mutex_enter_nowrap(struct rumpuser_mtx* mtx) {
  nofail(pthread_mutex_lock(&mtx->pthmtx), "mutex_enter_nowrap");
  mtx_set_owner(mtx);
}

void mutex_enter(struct rumpuser_mtx* mtx) {
  if (mtx->flags & RUMPUSER_MTX_SPIN) {
    mutex_enter_nowrap(mtx);
    return;
  }
  if (pthread_mutex_trylock(&mtx->pthmtx) != 0) {
    KlockWrap wrap;
    nofail(pthread_mutex_lock(&mtx->pthmtx), "mutex_enter");
  }
  mtx_set_owner(mtx);
}

int mutex_tryenter(struct rumpuser_mtx* mtx) {
  int rv = pthread_mutex_trylock(&mtx->pthmtx);
  if (rv == 0) mtx_set_owner(mtx);
  return rv == 0 ? 0 : EBUSY;
}

void mutex_exit(struct rumpuser_mtx* mtx) {
  mtx_clear_owner(mtx);
  nofail(pthread_mutex_unlock(&mtx->pthmtx), "mutex_exit");
}

void mutex_destroy(struct rumpuser_mtx* mtx) {
  nofail(pthread_mutex_destroy(&mtx->pthmtx), "mutex_destroy");
  if (!g_free_mtx.put(mtx)) delete mtx;
}

void mutex_owner(struct rumpuser_mtx* mtx, struct lwp** lp) {
  *lp = (mtx->flags & RUMPUSER_MTX_KMUTEX) ? mtx->owner.load(std::memory_order_relaxed)
                                           : nullptr;
}

// ---------------------------------------------------------------------------
// Reader/writer locks
//
// A mutex and two condition variables rather than pthread_rwlock, so that
// upgrade and downgrade are atomic. Waiting writers hold back new readers,
// so a stream of readers cannot starve a writer.

}  // namespace rumpuser_int::pth

struct rumpuser_rw {
  rumpuser_object hdr;
  pthread_mutex_t mtx;
  pthread_cond_t readers_cv;
  pthread_cond_t writers_cv;
  int readers = 0;          // read holds
  bool writer = false;      // write-held
  int writers_waiting = 0;  // blocked in enter(WRITER)
  // Who holds it for writing, for rw_held: the LWP if it had one, else the
  // host thread.
  struct lwp* writer_lwp = nullptr;
  pthread_t writer_thread{};
};

namespace rumpuser_int::pth {

namespace {

// Caller holds rw->mtx.
bool rw_try_locked(int op, rumpuser_rw* rw) {
  if (op == RUMPUSER_RW_WRITER) {
    if (rw->writer || rw->readers != 0) return false;
    rw->writer = true;
    rw->writer_lwp = curlwp();
    rw->writer_thread = pthread_self();
    return true;
  }
  if (rw->writer || rw->writers_waiting != 0) return false;
  rw->readers++;
  return true;
}

// Caller holds rw->mtx; the lock is free for op or will be.
void rw_wait_locked(int op, rumpuser_rw* rw) {
  if (op == RUMPUSER_RW_WRITER) {
    rw->writers_waiting++;
    while (!rw_try_locked(op, rw)) pthread_cond_wait(&rw->writers_cv, &rw->mtx);
    rw->writers_waiting--;
  } else {
    while (!rw_try_locked(op, rw)) pthread_cond_wait(&rw->readers_cv, &rw->mtx);
  }
}

// Caller holds rw->mtx and just made the lock free (or read-only).
void rw_wake_locked(rumpuser_rw* rw) {
  if (rw->writers_waiting != 0) {
    if (!rw->writer && rw->readers == 0) pthread_cond_signal(&rw->writers_cv);
  } else if (!rw->writer) {
    pthread_cond_broadcast(&rw->readers_cv);
  }
}

}  // namespace

void rw_init(struct rumpuser_rw** rwp) {
  auto* rw = new rumpuser_rw;
  rw->hdr.ro_backend = &backend;
  nofail(pthread_mutex_init(&rw->mtx, nullptr), "rw_init");
  nofail(pthread_cond_init(&rw->readers_cv, nullptr), "rw_init");
  nofail(pthread_cond_init(&rw->writers_cv, nullptr), "rw_init");
  *rwp = rw;
}

void rw_enter(int op, struct rumpuser_rw* rw) {
  pthread_mutex_lock(&rw->mtx);
  bool got = rw_try_locked(op, rw);
  pthread_mutex_unlock(&rw->mtx);
  if (got) return;

  KlockWrap wrap;
  pthread_mutex_lock(&rw->mtx);
  rw_wait_locked(op, rw);
  pthread_mutex_unlock(&rw->mtx);
}

int rw_tryenter(int op, struct rumpuser_rw* rw) {
  pthread_mutex_lock(&rw->mtx);
  bool got = rw_try_locked(op, rw);
  pthread_mutex_unlock(&rw->mtx);
  return got ? 0 : EBUSY;
}

int rw_tryupgrade(struct rumpuser_rw* rw) {
  int rv = EBUSY;
  pthread_mutex_lock(&rw->mtx);
  // The caller holds a read lock; it is the only reader iff the count is 1.
  if (!rw->writer && rw->readers == 1) {
    rw->readers = 0;
    rw->writer = true;
    rw->writer_lwp = curlwp();
    rw->writer_thread = pthread_self();
    rv = 0;
  }
  pthread_mutex_unlock(&rw->mtx);
  return rv;
}

void rw_downgrade(struct rumpuser_rw* rw) {
  pthread_mutex_lock(&rw->mtx);
  rw->writer = false;
  rw->writer_lwp = nullptr;
  rw->readers = 1;
  // Other readers may come in now, unless a writer is waiting (it keeps
  // its priority and will get the lock when we leave).
  if (rw->writers_waiting == 0) pthread_cond_broadcast(&rw->readers_cv);
  pthread_mutex_unlock(&rw->mtx);
}

void rw_exit(struct rumpuser_rw* rw) {
  pthread_mutex_lock(&rw->mtx);
  if (rw->writer) {
    rw->writer = false;
    rw->writer_lwp = nullptr;
  } else if (rw->readers > 0) {
    rw->readers--;
  } else {
    fprintf(stderr, "librumpuser: rw_exit of a lock not held\n");
    abort();
  }
  rw_wake_locked(rw);
  pthread_mutex_unlock(&rw->mtx);
}

// Approximate for readers (any reader counts), exact for the writer.
void rw_held(int op, struct rumpuser_rw* rw, int* heldp) {
  pthread_mutex_lock(&rw->mtx);
  if (op == RUMPUSER_RW_WRITER) {
    struct lwp* l = curlwp();
    *heldp = rw->writer && (l != nullptr ? rw->writer_lwp == l
                                         : rw->writer_lwp == nullptr &&
                                               pthread_equal(rw->writer_thread, pthread_self()));
  } else {
    *heldp = rw->readers > 0;
  }
  pthread_mutex_unlock(&rw->mtx);
}

void rw_destroy(struct rumpuser_rw* rw) {
  nofail(pthread_cond_destroy(&rw->writers_cv), "rw_destroy");
  nofail(pthread_cond_destroy(&rw->readers_cv), "rw_destroy");
  nofail(pthread_mutex_destroy(&rw->mtx), "rw_destroy");
  delete rw;
}

// ---------------------------------------------------------------------------
// Condition variables

}  // namespace rumpuser_int::pth

struct rumpuser_cv {
  rumpuser_object hdr;
  pthread_cond_t pthcv;
  // Threads inside a wait. Changed under the interlock, read by anyone.
  std::atomic<int> nwaiters{0};
};

namespace rumpuser_int::pth {

namespace {

thread_local constinit bool g_free_cleanup_armed __attribute__((tls_model("initial-exec"))) = false;

// Out of line: the thread-local object with a destructor is reached
// through the slower dynamic TLS path, once per thread.
[[gnu::noinline]] void arm_free_cleanup() {
  static thread_local FreeCacheCleanup cleanup;
  (void)cleanup;
  g_free_cleanup_armed = true;
}

template <class T>
bool FreeCache<T>::put(T* o) {
  if (closed || n == kMax) return false;
  // The first put of the thread registers the cleanup.
  if (!g_free_cleanup_armed) arm_free_cleanup();
  items[n++] = o;
  return true;
}

FreeCacheCleanup::~FreeCacheCleanup() {
  g_free_mtx.drain();
  g_free_cv.drain();
}

}  // namespace

void cv_init(struct rumpuser_cv** cvp) {
  auto* cv = g_free_cv.get();
  if (cv == nullptr) cv = new rumpuser_cv;
  cv->hdr.ro_backend = &backend;
  cv->nwaiters.store(0, std::memory_order_relaxed);
  // Timed waits are relative: measure them on the clock that does not jump.
  static const PthreadAttrs attrs;
  nofail(pthread_cond_init(&cv->pthcv, &attrs.monotonic), "cv_init");
  *cvp = cv;
}

void cv_destroy(struct rumpuser_cv* cv) {
  nofail(pthread_cond_destroy(&cv->pthcv), "cv_destroy");
  if (!g_free_cv.put(cv)) delete cv;
}

namespace {

// One wait on cv with mtx held; deadline (monotonic) or null. Returns 0 or
// ETIMEDOUT, holding mtx again.
//
// Wrapped (the thread has an LWP and a kernel is installed): the CPU is
// given back with mtx as interlock, still held. When the host wait returns
// we hold mtx but no CPU. Waiting for a CPU while holding mtx could
// deadlock against a CPU holder that wants mtx, so we drop mtx, take a CPU
// (backend_schedule with no interlock: we hold none), then take mtx again
// the way an ordinary enter would: a KMUTEX through the wrapping enter
// (which may give the CPU back again while it waits), a spin mutex through
// enter_nowrap.
int cv_wait_common(rumpuser_cv* cv, rumpuser_mtx* mtx, const struct timespec* deadline,
                   bool wrap) {
  const rumpuser_hyperup* hyp = wrap ? wrap_hyp() : nullptr;
  int nlocks = 0;

  cv->nwaiters.fetch_add(1, std::memory_order_relaxed);
  mtx_clear_owner(mtx);
  if (hyp != nullptr) hyp->hyp_backend_unschedule(0, &nlocks, mtx);
  int rv = deadline != nullptr ? pthread_cond_timedwait(&cv->pthcv, &mtx->pthmtx, deadline)
                               : pthread_cond_wait(&cv->pthcv, &mtx->pthmtx);
  cv->nwaiters.fetch_sub(1, std::memory_order_relaxed);

  if (hyp == nullptr) {
    mtx_set_owner(mtx);
  } else {
    nofail(pthread_mutex_unlock(&mtx->pthmtx), "cv_wait");
    hyp->hyp_backend_schedule(nlocks, nullptr);
    if (mtx->flags & RUMPUSER_MTX_SPIN) {
      mutex_enter_nowrap(mtx);
    } else {
      mutex_enter(mtx);
    }
  }
  if (rv != 0 && rv != ETIMEDOUT) nofail(rv, "cv_wait");
  return rv;
}

}  // namespace

void cv_wait(struct rumpuser_cv* cv, struct rumpuser_mtx* mtx) {
  cv_wait_common(cv, mtx, nullptr, true);
}

void cv_wait_nowrap(struct rumpuser_cv* cv, struct rumpuser_mtx* mtx) {
  cv_wait_common(cv, mtx, nullptr, false);
}

int cv_timedwait(struct rumpuser_cv* cv, struct rumpuser_mtx* mtx,
                                     int64_t sec, int64_t nsec) {
  // Relative interval to an absolute monotonic deadline; a non-positive
  // interval still waits zero time and reports ETIMEDOUT.
  sec += nsec / 1000000000;
  nsec %= 1000000000;
  if (nsec < 0) {
    nsec += 1000000000;
    sec -= 1;
  }
  if (sec < 0) sec = nsec = 0;
  struct timespec deadline;
  ::clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_nsec += static_cast<long>(nsec);
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_nsec -= 1000000000L;
    deadline.tv_sec += 1;
  }
  constexpr int64_t kMaxSec = int64_t{1} << 40;  // far beyond any real wait
  deadline.tv_sec += static_cast<time_t>(std::min(sec, kMaxSec));
  return cv_wait_common(cv, mtx, &deadline, true);
}

void cv_signal(struct rumpuser_cv* cv) { pthread_cond_signal(&cv->pthcv); }

void cv_broadcast(struct rumpuser_cv* cv) {
  pthread_cond_broadcast(&cv->pthcv);
}

void cv_has_waiters(struct rumpuser_cv* cv, int* waitersp) {
  *waitersp = cv->nwaiters.load(std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// Memory barriers on every running thread

namespace {

// Taking write access away from a locked, dirty page of ours makes the
// host shoot its translation down on every CPU that runs one of our
// threads; on x86 it does so with an interrupt, which is a full barrier
// there (the way language runtimes flush other threads' store buffers).
// Other CPUs may invalidate translations without interrupting anyone.
int barrier_by_page() {
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  static const long page_size = sysconf(_SC_PAGESIZE);
  static void* const page = [] {
    void* p = mmap(nullptr, static_cast<size_t>(page_size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) return static_cast<void*>(nullptr);
    (void)mlock(p, static_cast<size_t>(page_size));
    return p;
  }();
  if (page == nullptr) return ENOMEM;
  pthread_mutex_lock(&lock);
  int rv = 0;
  if (mprotect(page, static_cast<size_t>(page_size), PROT_READ | PROT_WRITE) != 0) {
    rv = errno;
  } else {
    __atomic_add_fetch(static_cast<int*>(page), 1, __ATOMIC_SEQ_CST);
    if (mprotect(page, static_cast<size_t>(page_size), PROT_NONE) != 0) rv = errno;
  }
  pthread_mutex_unlock(&lock);
  return rv;
}

}  // namespace

// On x86 the page's shootdown, which leaves no trace in the host process.
// Elsewhere the host's expedited membarrier, which needs the process
// registered for it (once, on first use: the program then sees that
// registration in MEMBARRIER_CMD_GET_REGISTRATIONS, and its forks inherit
// it).
int membarrier() {
#if defined(__x86_64__) || defined(__i386__)
  if (barrier_by_page() == 0) return 0;
#endif
  static const bool expedited =
      syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  if (!expedited) return ENOSYS;
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) return errno;
  return 0;
}

int rss_peak(uint64_t* bytesp) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return errno;
  *bytesp = static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // KiB on Linux
  return 0;
}

// ---------------------------------------------------------------------------
// The table

void lwpop(int, struct lwp*) {
  // Nothing per LWP to set up or tear down with host threads.
}

const rumpuser_backend backend = {
    .rb_version = RUMPUSER_BACKEND_VERSION,
    .rb_name = "pthread",
    .thread_create = thread_create,
    .thread_exit = thread_exit,
    .thread_join = thread_join,
    .lwpop = lwpop,
    .mutex_init = mutex_init,
    .mutex_enter = mutex_enter,
    .mutex_enter_nowrap = mutex_enter_nowrap,
    .mutex_tryenter = mutex_tryenter,
    .mutex_exit = mutex_exit,
    .mutex_destroy = mutex_destroy,
    .mutex_owner = mutex_owner,
    .rw_init = rw_init,
    .rw_enter = rw_enter,
    .rw_tryenter = rw_tryenter,
    .rw_tryupgrade = rw_tryupgrade,
    .rw_downgrade = rw_downgrade,
    .rw_exit = rw_exit,
    .rw_held = rw_held,
    .rw_destroy = rw_destroy,
    .cv_init = cv_init,
    .cv_destroy = cv_destroy,
    .cv_wait = cv_wait,
    .cv_wait_nowrap = cv_wait_nowrap,
    .cv_timedwait = cv_timedwait,
    .cv_signal = cv_signal,
    .cv_broadcast = cv_broadcast,
    .cv_has_waiters = cv_has_waiters,
    .clock_gettime = clock_read,
    .clock_sleep = clock_sleep,
    .cpuclock_self = cpuclock_self,
    .cpuclock_read = cpuclock_read,
    .membarrier = membarrier,
    .rss_peak = rss_peak,
};

}  // namespace rumpuser_int::pth
