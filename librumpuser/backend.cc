// backend.cc: the dispatcher. The scheduling hypercalls (threads, mutexes,
// rwlocks, condition variables, clocks) go to a backend: an object's to the
// backend that made it, a thread's join to the backend that created it,
// the rest to the calling thread's backend (rumpuser.h, "Backends").
//
// The calling thread's LWP is kept here, not in a backend, so that the
// kernel's entry path (rumpuser_curlwpop SET and CLEAR) is a store to a
// thread-local and nothing more.
#include <rump/rumpuser.h>

#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "rumpuser_int.h"

namespace rumpuser_int {

thread_local constinit struct lwp* curlwp_tls __attribute__((tls_model("initial-exec"))) =
    nullptr;
thread_local constinit const rumpuser_backend* backend_tls
    __attribute__((tls_model("initial-exec"))) = nullptr;

}  // namespace rumpuser_int

using rumpuser_int::thread_backend;

namespace {

// The registered backends: "pthread" and "sim" first, then those added at
// run time.
// Entries are never removed, so a pointer read under the lock stays valid.
constexpr int kMaxBackends = 16;
constexpr size_t kMaxNameLen = 31;

struct Registry {
  pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
  const rumpuser_backend* be[kMaxBackends] = {&rumpuser_int::pth::backend,
                                              &rumpuser_int::sim::backend};
  int n = 2;
};
constinit Registry g_registry;

// Every member set: a hole would crash the first caller that needs it.
bool complete(const rumpuser_backend* be) {
#define RUMPUSER_CHECK_(route, type, name, params, args) \
  if (be->name == nullptr) return false;
  RUMPUSER_BACKEND_OPS(RUMPUSER_CHECK_)
#undef RUMPUSER_CHECK_
  return true;
}

template <class T>
inline const rumpuser_backend* owner(T* obj) {
  return reinterpret_cast<const rumpuser_object*>(obj)->ro_backend;
}

}  // namespace

extern "C" int rumpuser_backend_register(const struct rumpuser_backend* be) {
  if (be == nullptr || be->rb_version != RUMPUSER_BACKEND_VERSION || be->rb_name == nullptr ||
      be->rb_name[0] == '\0' || strlen(be->rb_name) > kMaxNameLen || !complete(be)) {
    return EINVAL;
  }
  Registry& r = g_registry;
  int rv = 0;
  pthread_mutex_lock(&r.mtx);
  for (int i = 0; i < r.n && rv == 0; i++)
    if (strcmp(r.be[i]->rb_name, be->rb_name) == 0) rv = EEXIST;
  if (rv == 0 && r.n == kMaxBackends) rv = ENOMEM;
  if (rv == 0) r.be[r.n++] = be;
  pthread_mutex_unlock(&r.mtx);
  return rv;
}

extern "C" int rumpuser_backend_find(const char* name, const struct rumpuser_backend** bep) {
  char param[kMaxNameLen + 2];
  if (name == nullptr || name[0] == '\0') {
    name = "pthread";
    int rv = rumpuser_getparam("RUMP_BACKEND", param, sizeof param);
    if (rv == ENOMEM) return ENOENT;  // longer than any backend's name
    if (rv == 0 && param[0] != '\0') name = param;
  }
  Registry& r = g_registry;
  const rumpuser_backend* found = nullptr;
  pthread_mutex_lock(&r.mtx);
  for (int i = 0; i < r.n && found == nullptr; i++)
    if (strcmp(r.be[i]->rb_name, name) == 0) found = r.be[i];
  pthread_mutex_unlock(&r.mtx);
  if (found == nullptr) return ENOENT;
  if (bep != nullptr) *bep = found;
  return 0;
}

extern "C" const struct rumpuser_backend* rumpuser_backend_switch(
    const struct rumpuser_backend* be) {
  const rumpuser_backend* prev = thread_backend();
  rumpuser_int::backend_tls = be;
  return prev;
}

// ---------------------------------------------------------------------------
// Threads. The dispatcher wraps each thread so that it starts on the
// backend that created it, and so that a join finds that backend.

namespace {

struct ThreadRec {
  const rumpuser_backend* be;
  void* (*fn)(void*);
  void* arg;
  bool joinable;
  void* inner;  // the backend's cookie, for join
};

void* thread_start(void* p) {
  auto* rec = static_cast<ThreadRec*>(p);
  rumpuser_int::backend_tls = rec->be;
  void* (*fn)(void*) = rec->fn;
  void* arg = rec->arg;
  // A joinable thread's record is the joiner's to free.
  if (!rec->joinable) delete rec;
  return fn(arg);
}

}  // namespace

extern "C" int rumpuser_thread_create(void* (*fn)(void*), void* arg, const char* name,
                                      int mustjoin, int priority, int cpuidx, void** cookie) {
  if (fn == nullptr) return EINVAL;
  if (rumpuser_int::fault_inject(RUMPUSER_FAULT_THREADS)) return EAGAIN;
  const rumpuser_backend* be = thread_backend();
  // Nobody could join a thread with no cookie: it runs detached.
  bool joinable = mustjoin && cookie != nullptr;
  auto* rec = new (std::nothrow) ThreadRec{be, fn, arg, joinable, nullptr};
  if (rec == nullptr) return ENOMEM;
  int rv = be->thread_create(thread_start, rec, name, joinable, priority, cpuidx,
                             joinable ? &rec->inner : nullptr);
  if (rv != 0) {
    delete rec;
    return rv;
  }
  if (cookie != nullptr) *cookie = joinable ? rec : nullptr;
  return 0;
}

extern "C" void rumpuser_thread_exit(void) {
  thread_backend()->thread_exit();
  __builtin_unreachable();  // a backend's thread_exit never returns
}

extern "C" int rumpuser_thread_join(void* cookie) {
  if (cookie == nullptr) return EINVAL;
  auto* rec = static_cast<ThreadRec*>(cookie);
  int rv = rec->be->thread_join(rec->inner);
  if (rv == 0) delete rec;
  return rv;
}

// ---------------------------------------------------------------------------
// The current LWP

extern "C" void rumpuser_curlwpop(int op, struct lwp* l) {
  switch (op) {
    case RUMPUSER_LWP_SET:
      rumpuser_int::curlwp_tls = l;
      break;
    case RUMPUSER_LWP_CLEAR:
      rumpuser_int::curlwp_tls = nullptr;
      break;
    case RUMPUSER_LWP_CREATE:
    case RUMPUSER_LWP_DESTROY:
      thread_backend()->lwpop(op, l);
      break;
  }
}

extern "C" struct lwp* rumpuser_curlwp(void) { return rumpuser_int::curlwp_tls; }

// ---------------------------------------------------------------------------
// Objects, made by the calling thread's backend and then served by their
// own, and clocks (the calling thread's backend: it may keep virtual time).
// Every routed hypercall is one line of RUMPUSER_BACKEND_OPS.

#define RUMPUSER_ROUTE_CALLER thread_backend()
#define RUMPUSER_ROUTE_OWNER(obj) owner(obj)
#define RUMPUSER_DISPATCH_CALLER(route, type, name, params, args) \
  extern "C" type rumpuser_##name params { return RUMPUSER_ROUTE_##route->name args; }
#define RUMPUSER_DISPATCH_OWNER(obj) RUMPUSER_DISPATCH_CALLER
#define RUMPUSER_DISPATCH_CUSTOM(route, type, name, params, args)
#define RUMPUSER_DISPATCH_(route, type, name, params, args) \
  RUMPUSER_DISPATCH_##route(route, type, name, params, args)
RUMPUSER_BACKEND_OPS(RUMPUSER_DISPATCH_)
#undef RUMPUSER_DISPATCH_
#undef RUMPUSER_DISPATCH_CUSTOM
#undef RUMPUSER_DISPATCH_OWNER
#undef RUMPUSER_DISPATCH_CALLER
#undef RUMPUSER_ROUTE_OWNER
#undef RUMPUSER_ROUTE_CALLER

// ---------------------------------------------------------------------------
// Thread-local blocks registered by the kernel (rumpuser_tls_register),
// for backends that run several threads on one host thread. Entries are
// only ever added, before the kernel's first thread exists, and read
// without the lock after an acquire load of the count.

namespace rumpuser_int {

namespace {
struct TlsRegistry {
  pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
  TlsBlock blocks[kMaxTlsBlocks] = {};
  std::atomic<int> n{0};
  size_t bytes = 0;
};
constinit TlsRegistry g_tls;
}  // namespace

int tls_blocks(const TlsBlock** blocksp) {
  *blocksp = g_tls.blocks;
  return g_tls.n.load(std::memory_order_acquire);
}

}  // namespace rumpuser_int

extern "C" int rumpuser_tls_register(void* (*locate)(void), size_t len) {
  if (locate == nullptr || len == 0) return EINVAL;
  auto& r = rumpuser_int::g_tls;
  int rv = 0;
  pthread_mutex_lock(&r.mtx);
  int n = r.n.load(std::memory_order_relaxed);
  bool known = false;
  for (int i = 0; i < n; i++)
    if (r.blocks[i].locate == locate) known = true;
  if (!known) {
    if (n == rumpuser_int::kMaxTlsBlocks || r.bytes + len > rumpuser_int::kMaxTlsBytes) {
      rv = ENOMEM;
    } else {
      r.blocks[n] = {locate, len};
      r.bytes += len;
      r.n.store(n + 1, std::memory_order_release);
    }
  }
  pthread_mutex_unlock(&r.mtx);
  return rv;
}
