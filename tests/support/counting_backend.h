// counting_backend.h: a hypercall backend for tests. It serves every call by
// handing it to the "pthread" backend, and counts what it served: per
// process (atomics) and per calling thread (thread-locals), so a test can
// tell which backend a kernel, an object or a thread really used.
//
// Its objects are its own (a header naming this backend, then the pthread
// object they wrap), so the dispatcher must route each call on an object
// back here for the wrapped object to be found at all.
#pragma once

#include <rump/rumpuser.h>

#include <atomic>
#include <cerrno>

namespace counting_backend {

inline constexpr const char* kName = "counting";

struct Counts {
  std::atomic<long> objects_made{0};     // mutexes, rwlocks and condvars made
  std::atomic<long> objects_freed{0};
  std::atomic<long> lock_ops{0};         // enter/tryenter/exit of mutexes and rwlocks
  std::atomic<long> cv_waits{0};
  std::atomic<long> threads_made{0};
  std::atomic<long> threads_joined{0};
  std::atomic<long> clock_calls{0};
  std::atomic<long> lwpops{0};
};
inline Counts counts;

// What the calling thread asked of this backend.
struct ThreadCounts {
  long objects_made = 0;
  long clock_calls = 0;
  long threads_made = 0;
};
inline thread_local ThreadCounts mine;

inline const rumpuser_backend* inner() {
  static const rumpuser_backend* be = [] {
    const rumpuser_backend* b = nullptr;
    rumpuser_backend_find("pthread", &b);
    return b;
  }();
  return be;
}

const rumpuser_backend* table();

struct Mtx {
  rumpuser_object hdr;
  rumpuser_mtx* in;
};
struct Rw {
  rumpuser_object hdr;
  rumpuser_rw* in;
};
struct Cv {
  rumpuser_object hdr;
  rumpuser_cv* in;
};
inline Mtx* M(rumpuser_mtx* m) { return reinterpret_cast<Mtx*>(m); }
inline Rw* R(rumpuser_rw* r) { return reinterpret_cast<Rw*>(r); }
inline Cv* C(rumpuser_cv* c) { return reinterpret_cast<Cv*>(c); }

inline void made() {
  counts.objects_made++;
  mine.objects_made++;
}

inline int thread_create(void* (*fn)(void*), void* arg, const char* name, int j, int pri, int cpu,
                         void** cookie) {
  counts.threads_made++;
  mine.threads_made++;
  return inner()->thread_create(fn, arg, name, j, pri, cpu, cookie);
}
__attribute__((__noreturn__)) inline void thread_exit() { inner()->thread_exit(); }
inline int thread_join(void* c) {
  counts.threads_joined++;
  return inner()->thread_join(c);
}
inline void lwpop(int op, struct lwp* l) {
  counts.lwpops++;
  inner()->lwpop(op, l);
}

inline void mutex_init(rumpuser_mtx** mp, int flags) {
  auto* m = new Mtx{{table()}, nullptr};
  inner()->mutex_init(&m->in, flags);
  made();
  *mp = reinterpret_cast<rumpuser_mtx*>(m);
}
inline void mutex_enter(rumpuser_mtx* m) {
  counts.lock_ops++;
  inner()->mutex_enter(M(m)->in);
}
inline void mutex_enter_nowrap(rumpuser_mtx* m) {
  counts.lock_ops++;
  inner()->mutex_enter_nowrap(M(m)->in);
}
inline int mutex_tryenter(rumpuser_mtx* m) {
  counts.lock_ops++;
  return inner()->mutex_tryenter(M(m)->in);
}
inline void mutex_exit(rumpuser_mtx* m) {
  counts.lock_ops++;
  inner()->mutex_exit(M(m)->in);
}
inline void mutex_destroy(rumpuser_mtx* m) {
  inner()->mutex_destroy(M(m)->in);
  delete M(m);
  counts.objects_freed++;
}
inline void mutex_owner(rumpuser_mtx* m, struct lwp** lp) { inner()->mutex_owner(M(m)->in, lp); }

inline void rw_init(rumpuser_rw** rp) {
  auto* r = new Rw{{table()}, nullptr};
  inner()->rw_init(&r->in);
  made();
  *rp = reinterpret_cast<rumpuser_rw*>(r);
}
inline void rw_enter(int op, rumpuser_rw* r) {
  counts.lock_ops++;
  inner()->rw_enter(op, R(r)->in);
}
inline int rw_tryenter(int op, rumpuser_rw* r) {
  counts.lock_ops++;
  return inner()->rw_tryenter(op, R(r)->in);
}
inline int rw_tryupgrade(rumpuser_rw* r) { return inner()->rw_tryupgrade(R(r)->in); }
inline void rw_downgrade(rumpuser_rw* r) { inner()->rw_downgrade(R(r)->in); }
inline void rw_exit(rumpuser_rw* r) {
  counts.lock_ops++;
  inner()->rw_exit(R(r)->in);
}
inline void rw_held(int op, rumpuser_rw* r, int* h) { inner()->rw_held(op, R(r)->in, h); }
inline void rw_destroy(rumpuser_rw* r) {
  inner()->rw_destroy(R(r)->in);
  delete R(r);
  counts.objects_freed++;
}

inline void cv_init(rumpuser_cv** cp) {
  auto* c = new Cv{{table()}, nullptr};
  inner()->cv_init(&c->in);
  made();
  *cp = reinterpret_cast<rumpuser_cv*>(c);
}
inline void cv_destroy(rumpuser_cv* c) {
  inner()->cv_destroy(C(c)->in);
  delete C(c);
  counts.objects_freed++;
}
inline void cv_wait(rumpuser_cv* c, rumpuser_mtx* m) {
  counts.cv_waits++;
  inner()->cv_wait(C(c)->in, M(m)->in);
}
inline void cv_wait_nowrap(rumpuser_cv* c, rumpuser_mtx* m) {
  counts.cv_waits++;
  inner()->cv_wait_nowrap(C(c)->in, M(m)->in);
}
inline int cv_timedwait(rumpuser_cv* c, rumpuser_mtx* m, int64_t s, int64_t ns) {
  counts.cv_waits++;
  return inner()->cv_timedwait(C(c)->in, M(m)->in, s, ns);
}
inline void cv_signal(rumpuser_cv* c) { inner()->cv_signal(C(c)->in); }
inline void cv_broadcast(rumpuser_cv* c) { inner()->cv_broadcast(C(c)->in); }
inline void cv_has_waiters(rumpuser_cv* c, int* n) { inner()->cv_has_waiters(C(c)->in, n); }

inline int clock_gettime(int clk, int64_t* s, long* ns) {
  counts.clock_calls++;
  mine.clock_calls++;
  return inner()->clock_gettime(clk, s, ns);
}
inline int clock_sleep(int clk, int64_t s, long ns) {
  counts.clock_calls++;
  mine.clock_calls++;
  return inner()->clock_sleep(clk, s, ns);
}

inline const rumpuser_backend kTable = {
    .rb_version = RUMPUSER_BACKEND_VERSION,
    .rb_name = kName,
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
    .clock_gettime = clock_gettime,
    .clock_sleep = clock_sleep,
};

inline const rumpuser_backend* table() { return &kTable; }

// Registers the backend once per process (later calls find it there).
inline void ensure_registered() {
  static const int rv = rumpuser_backend_register(&kTable);
  (void)rv;
}

inline long live_objects() { return counts.objects_made.load() - counts.objects_freed.load(); }

}  // namespace counting_backend
