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

// The registered backends: "pthread" first, then those added at run time.
// Entries are never removed, so a pointer read under the lock stays valid.
constexpr int kMaxBackends = 16;
constexpr size_t kMaxNameLen = 31;

struct Registry {
  pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
  const rumpuser_backend* be[kMaxBackends] = {&rumpuser_int::pth::backend};
  int n = 1;
};
constinit Registry g_registry;

// Every member set: a hole would crash the first caller that needs it.
bool complete(const rumpuser_backend* be) {
  void (*const fns[])() = {
      reinterpret_cast<void (*)()>(be->thread_create),
      reinterpret_cast<void (*)()>(be->thread_exit),
      reinterpret_cast<void (*)()>(be->thread_join),
      reinterpret_cast<void (*)()>(be->lwpop),
      reinterpret_cast<void (*)()>(be->mutex_init),
      reinterpret_cast<void (*)()>(be->mutex_enter),
      reinterpret_cast<void (*)()>(be->mutex_enter_nowrap),
      reinterpret_cast<void (*)()>(be->mutex_tryenter),
      reinterpret_cast<void (*)()>(be->mutex_exit),
      reinterpret_cast<void (*)()>(be->mutex_destroy),
      reinterpret_cast<void (*)()>(be->mutex_owner),
      reinterpret_cast<void (*)()>(be->rw_init),
      reinterpret_cast<void (*)()>(be->rw_enter),
      reinterpret_cast<void (*)()>(be->rw_tryenter),
      reinterpret_cast<void (*)()>(be->rw_tryupgrade),
      reinterpret_cast<void (*)()>(be->rw_downgrade),
      reinterpret_cast<void (*)()>(be->rw_exit),
      reinterpret_cast<void (*)()>(be->rw_held),
      reinterpret_cast<void (*)()>(be->rw_destroy),
      reinterpret_cast<void (*)()>(be->cv_init),
      reinterpret_cast<void (*)()>(be->cv_destroy),
      reinterpret_cast<void (*)()>(be->cv_wait),
      reinterpret_cast<void (*)()>(be->cv_wait_nowrap),
      reinterpret_cast<void (*)()>(be->cv_timedwait),
      reinterpret_cast<void (*)()>(be->cv_signal),
      reinterpret_cast<void (*)()>(be->cv_broadcast),
      reinterpret_cast<void (*)()>(be->cv_has_waiters),
      reinterpret_cast<void (*)()>(be->clock_gettime),
      reinterpret_cast<void (*)()>(be->clock_sleep),
  };
  for (auto f : fns)
    if (f == nullptr) return false;
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

extern "C" void rumpuser_thread_exit(void) { thread_backend()->thread_exit(); }

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
// Objects: made by the calling thread's backend, then served by their own.

extern "C" void rumpuser_mutex_init(struct rumpuser_mtx** mtxp, int flags) {
  thread_backend()->mutex_init(mtxp, flags);
}
extern "C" void rumpuser_mutex_enter(struct rumpuser_mtx* m) { owner(m)->mutex_enter(m); }
extern "C" void rumpuser_mutex_enter_nowrap(struct rumpuser_mtx* m) {
  owner(m)->mutex_enter_nowrap(m);
}
extern "C" int rumpuser_mutex_tryenter(struct rumpuser_mtx* m) { return owner(m)->mutex_tryenter(m); }
extern "C" void rumpuser_mutex_exit(struct rumpuser_mtx* m) { owner(m)->mutex_exit(m); }
extern "C" void rumpuser_mutex_destroy(struct rumpuser_mtx* m) { owner(m)->mutex_destroy(m); }
extern "C" void rumpuser_mutex_owner(struct rumpuser_mtx* m, struct lwp** lp) {
  owner(m)->mutex_owner(m, lp);
}

extern "C" void rumpuser_rw_init(struct rumpuser_rw** rwp) { thread_backend()->rw_init(rwp); }
extern "C" void rumpuser_rw_enter(int op, struct rumpuser_rw* rw) { owner(rw)->rw_enter(op, rw); }
extern "C" int rumpuser_rw_tryenter(int op, struct rumpuser_rw* rw) {
  return owner(rw)->rw_tryenter(op, rw);
}
extern "C" int rumpuser_rw_tryupgrade(struct rumpuser_rw* rw) { return owner(rw)->rw_tryupgrade(rw); }
extern "C" void rumpuser_rw_downgrade(struct rumpuser_rw* rw) { owner(rw)->rw_downgrade(rw); }
extern "C" void rumpuser_rw_exit(struct rumpuser_rw* rw) { owner(rw)->rw_exit(rw); }
extern "C" void rumpuser_rw_held(int op, struct rumpuser_rw* rw, int* heldp) {
  owner(rw)->rw_held(op, rw, heldp);
}
extern "C" void rumpuser_rw_destroy(struct rumpuser_rw* rw) { owner(rw)->rw_destroy(rw); }

extern "C" void rumpuser_cv_init(struct rumpuser_cv** cvp) { thread_backend()->cv_init(cvp); }
extern "C" void rumpuser_cv_destroy(struct rumpuser_cv* cv) { owner(cv)->cv_destroy(cv); }
extern "C" void rumpuser_cv_wait(struct rumpuser_cv* cv, struct rumpuser_mtx* m) {
  owner(cv)->cv_wait(cv, m);
}
extern "C" void rumpuser_cv_wait_nowrap(struct rumpuser_cv* cv, struct rumpuser_mtx* m) {
  owner(cv)->cv_wait_nowrap(cv, m);
}
extern "C" int rumpuser_cv_timedwait(struct rumpuser_cv* cv, struct rumpuser_mtx* m, int64_t sec,
                                     int64_t nsec) {
  return owner(cv)->cv_timedwait(cv, m, sec, nsec);
}
extern "C" void rumpuser_cv_signal(struct rumpuser_cv* cv) { owner(cv)->cv_signal(cv); }
extern "C" void rumpuser_cv_broadcast(struct rumpuser_cv* cv) { owner(cv)->cv_broadcast(cv); }
extern "C" void rumpuser_cv_has_waiters(struct rumpuser_cv* cv, int* waitersp) {
  owner(cv)->cv_has_waiters(cv, waitersp);
}

// ---------------------------------------------------------------------------
// Clocks: the calling thread's backend's (a backend may keep virtual time).

extern "C" int rumpuser_clock_gettime(int clock, int64_t* sec, long* nsec) {
  return thread_backend()->clock_gettime(clock, sec, nsec);
}
extern "C" int rumpuser_clock_sleep(int clock, int64_t sec, long nsec) {
  return thread_backend()->clock_sleep(clock, sec, nsec);
}
