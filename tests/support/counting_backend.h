// counting_backend.h: a hypercall backend for tests. It serves every call by
// handing it to the "pthread" backend, and counts what it served: per
// process (atomics) and per calling thread (thread-locals), so a test can
// tell which backend a kernel, an object or a thread really used.
//
// Its objects are its own (a header naming this backend, then the pthread
// object they wrap), so the dispatcher must route each call on an object
// back here for the wrapped object to be found at all.
//
// The wrappers are derived from RUMPUSER_BACKEND_OPS: each operation is
// counted (calls[], and the aggregates below) and forwarded with its
// objects unwrapped; only making and destroying objects is written out.
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

// Every operation, as an enumerator named after it (RUMPUSER_BACKEND_OPS).
enum class Op {
#define COUNTING_OP_(route, type, name, params, args) name,
  RUMPUSER_BACKEND_OPS(COUNTING_OP_)
#undef COUNTING_OP_
  kCount
};
// Calls served, per operation.
inline std::atomic<long> calls[static_cast<int>(Op::kCount)];

// Counts one call of op.
inline void note(Op op) {
  calls[static_cast<int>(op)]++;
  switch (op) {
    case Op::mutex_enter:
    case Op::mutex_enter_nowrap:
    case Op::mutex_tryenter:
    case Op::mutex_exit:
    case Op::rw_enter:
    case Op::rw_tryenter:
    case Op::rw_exit:
      counts.lock_ops++;
      break;
    case Op::cv_wait:
    case Op::cv_wait_nowrap:
    case Op::cv_timedwait:
      counts.cv_waits++;
      break;
    case Op::thread_create:
      counts.threads_made++;
      mine.threads_made++;
      break;
    case Op::thread_join:
      counts.threads_joined++;
      break;
    case Op::clock_gettime:
    case Op::clock_sleep:
      counts.clock_calls++;
      mine.clock_calls++;
      break;
    case Op::lwpop:
      counts.lwpops++;
      break;
    default:
      break;
  }
}

// An object of ours to the pthread object inside it; anything else as is.
inline rumpuser_mtx* unwrap(rumpuser_mtx* m) { return M(m)->in; }
inline rumpuser_rw* unwrap(rumpuser_rw* r) { return R(r)->in; }
inline rumpuser_cv* unwrap(rumpuser_cv* c) { return C(c)->in; }
template <class T>
T unwrap(T x) {
  return x;
}

// Calls the inner backend's member m with every argument unwrapped.
template <class Member>
struct Forward {
  Member m;
  template <class... A>
  auto operator()(A... a) const {
    return (inner()->*m)(unwrap(a)...);
  }
};

// Every operation counted and forwarded, derived from the list.
#define COUNTING_FORWARD_(route, type, name, params, args) \
  inline type forward_##name params {                        \
    note(Op::name);                                          \
    return Forward<decltype(&rumpuser_backend::name)>{&rumpuser_backend::name} args; \
  }
RUMPUSER_BACKEND_OPS(COUNTING_FORWARD_)
#undef COUNTING_FORWARD_

// Making and destroying objects: ours wrap the pthread backend's.
inline void mutex_init(rumpuser_mtx** mp, int flags) {
  auto* m = new Mtx{{table()}, nullptr};
  forward_mutex_init(&m->in, flags);
  made();
  *mp = reinterpret_cast<rumpuser_mtx*>(m);
}
inline void mutex_destroy(rumpuser_mtx* m) {
  forward_mutex_destroy(m);
  delete M(m);
  counts.objects_freed++;
}
inline void rw_init(rumpuser_rw** rp) {
  auto* r = new Rw{{table()}, nullptr};
  forward_rw_init(&r->in);
  made();
  *rp = reinterpret_cast<rumpuser_rw*>(r);
}
inline void rw_destroy(rumpuser_rw* r) {
  forward_rw_destroy(r);
  delete R(r);
  counts.objects_freed++;
}
inline void cv_init(rumpuser_cv** cp) {
  auto* c = new Cv{{table()}, nullptr};
  forward_cv_init(&c->in);
  made();
  *cp = reinterpret_cast<rumpuser_cv*>(c);
}
inline void cv_destroy(rumpuser_cv* c) {
  forward_cv_destroy(c);
  delete C(c);
  counts.objects_freed++;
}

inline rumpuser_backend make_table() {
  rumpuser_backend t{};
  t.rb_version = RUMPUSER_BACKEND_VERSION;
  t.rb_name = kName;
#define COUNTING_MEMBER_(route, type, name, params, args) t.name = forward_##name;
  RUMPUSER_BACKEND_OPS(COUNTING_MEMBER_)
#undef COUNTING_MEMBER_
  t.mutex_init = mutex_init;
  t.mutex_destroy = mutex_destroy;
  t.rw_init = rw_init;
  t.rw_destroy = rw_destroy;
  t.cv_init = cv_init;
  t.cv_destroy = cv_destroy;
  return t;
}
inline const rumpuser_backend kTable = make_table();

inline const rumpuser_backend* table() { return &kTable; }

// Registers the backend once per process (later calls find it there).
inline void ensure_registered() {
  static const int rv = rumpuser_backend_register(&kTable);
  (void)rv;
}

inline long live_objects() { return counts.objects_made.load() - counts.objects_freed.load(); }

}  // namespace counting_backend
