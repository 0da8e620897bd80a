// sim.cc: the "sim" backend: deterministic simulation on fibers.
//
// A world (rumpuser_sim_create) runs every thread of one kernel, and its
// client threads, as Boost.Context fibers on the host thread that made it.
// That host thread takes part too, as the world's "host context": while it
// blocks in one of the world's hypercalls, the fibers run in its place, and
// it runs again when what it waits for happens. Exactly one context of a
// world runs at a time, and a context switch happens only inside the
// world's hypercalls, so the only sources of variation are the choices
// this file makes, and every one of them comes from the world's seed:
// - which runnable context goes next (uniformly among the runnable ones);
// - whether to switch at a preemption point: a lock acquisition
//   (mutex_enter/tryenter, rw_enter/tryenter), a wake-up (mutex_exit or
//   rw_exit with waiters, cv_signal/broadcast, a new thread) and the
//   clock hypercalls;
// - which waiter a mutex, rwlock or condition variable wakes.
// Time is virtual: it stands still while anything can run, and jumps to
// the earliest timer when nothing can. A timer that expires wakes its
// context with exactly the deadline as the time.
//
// Each context has its own copy of the caller's thread-local state: the
// dispatcher's current LWP and backend, errno, and the blocks the kernel
// registered (rumpuser_tls_register); a switch saves one copy and loads the
// other.
//
// A world belongs to one host thread. Its objects are served only there:
// the kernel refuses entry from any other thread, so a call here from
// elsewhere is a broken invariant and stops the process.
#include <rump/rumpuser.h>

#if defined(__SANITIZE_ADDRESS__)
#define RUMPUSER_SIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RUMPUSER_SIM_ASAN 1
#endif
#endif
#ifdef RUMPUSER_SIM_ASAN
// Debian's Boost.Context is built for its assembly fibers only (the
// ucontext ones, which tell ASan about stack switches, are not in the
// library), so under ASan the fibers get bigger stacks and a stack taken
// back is unpoisoned before reuse.
#include <sanitizer/asan_interface.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define RUMPUSER_SIM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RUMPUSER_SIM_TSAN 1
#endif
#endif
#ifdef RUMPUSER_SIM_TSAN
// TSan keeps a shadow stack and a clock per thread of execution; a stack
// switch it is not told about mixes two fibers' histories and reports
// races (and stack underflows) that are not there. Each context gets a
// TSan fiber, and every switch names the one that runs next, with the
// synchronisation a hand-over implies: everything the previous context
// did happens before what the next one does.
#include <sanitizer/tsan_interface.h>
#endif

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <boost/context/fiber.hpp>
#include <boost/context/stack_context.hpp>
#include <boost/intrusive/list.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "rumpuser_int.h"

namespace rumpuser_int::sim {

namespace {

namespace bctx = boost::context;
namespace bi = boost::intrusive;

// Virtual clocks: the monotonic clock starts at one second (nothing reads
// a zero time as "unset"), the wall clock at 2000-01-01T00:00:00Z.
constexpr int64_t kNsPerSec = 1000000000;
constexpr uint64_t kMonoEpochNs = 1000000000ull;
constexpr int64_t kWallEpochSec = 946684800;
constexpr uint64_t kNever = ~uint64_t{0};
// Virtual time never passes this (about 146 years after boot): a deadline
// beyond it never expires, as a Linux timer near KTIME_MAX, so that the
// wall clock (its epoch plus the virtual time, in signed nanoseconds) can
// never overflow.
constexpr uint64_t kHorizonNs = (uint64_t{INT64_MAX} - uint64_t{kWallEpochSec} * kNsPerSec) / 2;

// One switch in kPreemptOdds at each preemption point.
constexpr uint32_t kPreemptOdds = 8;

// Timer expiries in a row, while every client waits with no deadline of
// its own, that may wake no client before rumpuser_sim_run gives up with
// EDEADLK: kernel timers that only re-arm themselves (a periodic timerfd
// nobody reads, a persist timer probing a window that never opens) would
// otherwise move virtual time on for ever while nothing can change. The
// longest chains of kernel timers that end by waking a client (TCP's
// retransmission and keepalive back-offs) are a few dozen expiries.
constexpr uint32_t kLivelockExpiries = 10000;

#if defined(RUMPUSER_SIM_ASAN) || defined(RUMPUSER_SIM_TSAN)
// Instrumented frames are several times larger.
constexpr size_t kStackSize = 1024 * 1024;
#else
constexpr size_t kStackSize = 256 * 1024;
#endif

[[noreturn]] void fatal(const char* what) {
  fprintf(stderr, "librumpuser sim: %s\n", what);
  abort();
}

// xoshiro256** seeded through splitmix64: small, fast, and the same
// sequence on every machine.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& w : s_) w = splitmix(seed);
  }
  uint64_t next() {
    uint64_t r = rotl(s_[1] * 5, 7) * 9;
    uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  // Uniform enough in [0, n) for n far below 2^32.
  uint32_t below(uint32_t n) {
    return static_cast<uint32_t>(((next() >> 32) * static_cast<uint64_t>(n)) >> 32);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t s_[4];
};

struct World;

using WaitHook = bi::list_member_hook<bi::link_mode<bi::auto_unlink>>;

// A context: the host thread's own, a kernel thread or a client fiber.
struct Ctx {
  enum class Kind : uint8_t { kHost, kThread, kClient };
  enum class State : uint8_t { kRunnable, kRunning, kBlocked, kDone };

  World* w = nullptr;
  Kind kind = Kind::kHost;
  State state = State::kRunnable;
  unsigned id = 0;  // clients: spawn order, from 1
  bctx::fiber cont;  // resumes this context; empty while it runs
  WaitHook wait_hook;  // on a mutex's, rwlock's or cv's queue
  const char* what = "";  // what it blocks on, for the deadlock report
  bool timed_out = false;
  size_t timer_index = SIZE_MAX;  // in World::timers_, or SIZE_MAX
  uint64_t deadline = 0;
  uint64_t timer_seq = 0;

  // The thread-local state of this context while another one runs.
  struct lwp* curlwp = nullptr;
  const rumpuser_backend* backend = nullptr;
  int saved_errno = 0;
  unsigned char* tls = nullptr;

  // The body.
  void* (*thread_fn)(void*) = nullptr;
  void (*client_fn)(void*) = nullptr;
  void* arg = nullptr;
  bool joinable = false;
  Ctx* joiner = nullptr;
  void* stack = nullptr;  // the mapping, guard page first; null once freed
#ifdef RUMPUSER_SIM_TSAN
  void* tsan_fiber = nullptr;  // the host context's is its thread's own
#endif
};

// Tells TSan that c runs from now on (immediately before the stack switch).
inline void tsan_switch_to(Ctx* c) {
#ifdef RUMPUSER_SIM_TSAN
  __tsan_switch_to_fiber(c->tsan_fiber, 0);
#else
  (void)c;
#endif
}

using WaitQueue = bi::list<Ctx, bi::member_hook<Ctx, WaitHook, &Ctx::wait_hook>,
                           bi::constant_time_size<false>>;

// Every mutex, rwlock and condition variable of a world starts with this,
// and is on the world's list until destroyed: a world that ends under
// fibers still blocked on its objects frees those objects too.
using ObjHook = bi::list_member_hook<bi::link_mode<bi::auto_unlink>>;
struct Obj {
  enum class Type : uint8_t { kMtx, kRw, kCv };
  rumpuser_object hdr;
  ObjHook hook;
  Type type;
};
using ObjList = bi::list<Obj, bi::member_hook<Obj, ObjHook, &Obj::hook>,
                         bi::constant_time_size<false>>;

// A backend instance: the table the kernel's objects name, and its world.
struct SimBackend {
  rumpuser_backend table;
  World* world;
};

// The world whose fiber runs on this host thread (null on its own stack).
// initial-exec: one %fs-relative access on every hypercall, no
// __tls_get_addr.
thread_local constinit World* t_fiber_world __attribute__((tls_model("initial-exec"))) = nullptr;
// Its address names the host thread (cheaper to compare than pthread_self).
thread_local constinit char t_thread_tag __attribute__((tls_model("initial-exec"))) = 0;

// Stacks, kept for the next fiber of any world: a kernel boots and halts
// in microseconds, a fresh mapping costs several system calls.
struct StackCache {
  pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
  static constexpr int kMax = 64;
  void* stacks[kMax] = {};
  int n = 0;
};
constinit StackCache g_stacks;

size_t guard_size() {
  static const size_t g = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return g;
}

void* stack_get() {
  pthread_mutex_lock(&g_stacks.mtx);
  void* s = g_stacks.n > 0 ? g_stacks.stacks[--g_stacks.n] : nullptr;
  pthread_mutex_unlock(&g_stacks.mtx);
  if (s != nullptr) return s;
  size_t len = kStackSize + guard_size();
  s = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (s == MAP_FAILED) return nullptr;
  mprotect(s, guard_size(), PROT_NONE);
  return s;
}

void stack_put(void* s) {
#ifdef RUMPUSER_SIM_ASAN
  // Frames left on an abandoned stack keep their poisoned redzones.
  ASAN_UNPOISON_MEMORY_REGION(static_cast<char*>(s) + guard_size(), kStackSize);
#endif
  pthread_mutex_lock(&g_stacks.mtx);
  bool kept = g_stacks.n < StackCache::kMax;
  if (kept) g_stacks.stacks[g_stacks.n++] = s;
  pthread_mutex_unlock(&g_stacks.mtx);
  if (!kept) munmap(s, kStackSize + guard_size());
}

struct StackAlloc {
  Ctx* c;
  bctx::stack_context allocate() {
    void* s = stack_get();
    if (s == nullptr) throw std::bad_alloc();
    c->stack = s;
    bctx::stack_context sc;
    sc.size = kStackSize;
    sc.sp = static_cast<char*>(s) + guard_size() + kStackSize;
    return sc;
  }
  void deallocate(bctx::stack_context&) noexcept {
    stack_put(c->stack);
    c->stack = nullptr;
  }
};

struct World {
  SimBackend be;
  pthread_t owner;
  const char* owner_tag;  // &t_thread_tag of the owner
  Rng rng;
  uint64_t now = kMonoEpochNs;
  uint64_t timer_seq = 0;
  // Pending timers of client and host contexts (those wake a client by
  // themselves), and timer expiries since a client or the host last woke.
  uint32_t client_timers = 0;
  uint32_t idle_expiries = 0;
  rumpuser_sim_hooks hooks{};
  void* cookie = nullptr;

  Ctx host;
  Ctx* cur = &host;
  std::vector<Ctx*> runq;
  std::vector<Ctx*> timers;  // a binary heap on (deadline, timer_seq)
  std::vector<Ctx*> fibers;  // every fiber context not yet freed
  std::vector<Ctx*> zombies;  // ended, unjoinable: free at the next switch
  ObjList objects;

  unsigned clients_spawned = 0;
  unsigned clients_live = 0;
  bool host_in_run = false;
  bool deadlocked = false;

  // The registered thread-local blocks, as of the world's creation.
  const TlsBlock* blocks = nullptr;
  int nblocks = 0;
  // Where each block lives on the owner thread (the only one that runs the
  // world), found once: a switch copies without asking.
  void* block_addr[kMaxTlsBlocks] = {};
  size_t tls_len = 0;

  Rng entropy;  // rumpuser_getrandom's, apart from the scheduling choices

  explicit World(uint64_t seed) : rng(seed), entropy(~seed) {}

  // --- thread-local state

  void save_tls(Ctx* c) {
    c->curlwp = curlwp_tls;
    c->backend = backend_tls;
    c->saved_errno = errno;
    unsigned char* p = c->tls;
    for (int i = 0; i < nblocks; i++) {
      memcpy(p, block_addr[i], blocks[i].len);
      p += blocks[i].len;
    }
  }
  void load_tls(Ctx* c) {
    curlwp_tls = c->curlwp;
    backend_tls = c->backend;
    errno = c->saved_errno;
    const unsigned char* p = c->tls;
    for (int i = 0; i < nblocks; i++) {
      memcpy(block_addr[i], p, blocks[i].len);
      p += blocks[i].len;
    }
  }

  // --- timers

  static bool earlier(const Ctx* a, const Ctx* b) {
    return a->deadline != b->deadline ? a->deadline < b->deadline : a->timer_seq < b->timer_seq;
  }
  void timer_set(size_t i, Ctx* c) {
    timers[i] = c;
    c->timer_index = i;
  }
  void timer_up(size_t i) {
    Ctx* c = timers[i];
    while (i > 0) {
      size_t parent = (i - 1) / 2;
      if (!earlier(c, timers[parent])) break;
      timer_set(i, timers[parent]);
      i = parent;
    }
    timer_set(i, c);
  }
  void timer_down(size_t i) {
    Ctx* c = timers[i];
    size_t n = timers.size();
    for (;;) {
      size_t l = 2 * i + 1;
      if (l >= n) break;
      size_t m = (l + 1 < n && earlier(timers[l + 1], timers[l])) ? l + 1 : l;
      if (!earlier(timers[m], c)) break;
      timer_set(i, timers[m]);
      i = m;
    }
    timer_set(i, c);
  }
  void timer_add(Ctx* c, uint64_t deadline) {
    if (c->kind != Ctx::Kind::kThread) client_timers++;
    c->deadline = deadline;
    c->timer_seq = timer_seq++;
    timers.push_back(c);
    timer_up(timers.size() - 1);
  }
  void timer_cancel(Ctx* c) {
    size_t i = c->timer_index;
    if (i == SIZE_MAX) return;
    c->timer_index = SIZE_MAX;
    if (c->kind != Ctx::Kind::kThread) client_timers--;
    Ctx* last = timers.back();
    timers.pop_back();
    if (i == timers.size()) return;
    timer_set(i, last);
    timer_up(i);
    timer_down(last->timer_index);
  }

  // --- scheduling

  void make_runnable(Ctx* c) {
    if (c->kind != Ctx::Kind::kThread) idle_expiries = 0;
    c->wait_hook.unlink();
    timer_cancel(c);
    c->state = Ctx::State::kRunnable;
    runq.push_back(c);
  }

  void wake(Ctx* c) {
    if (c->state == Ctx::State::kBlocked) make_runnable(c);
  }

  // Moves time to the earliest timer and wakes every context whose timer
  // ends then. False if there is no timer.
  bool fire_timers() {
    if (timers.empty()) return false;
    uint64_t t = timers[0]->deadline;
    if (t > now) now = t;
    while (!timers.empty() && timers[0]->deadline <= now) {
      Ctx* c = timers[0];
      timer_cancel(c);
      c->timed_out = true;
      make_runnable(c);
    }
    return true;
  }

  void report(const char* why) {
    fprintf(stderr, "librumpuser sim: %s at %llu ns; waiting:\n", why,
            static_cast<unsigned long long>(now - kMonoEpochNs));
    if (host.state == Ctx::State::kBlocked) fprintf(stderr, "  host: %s\n", host.what);
    for (Ctx* c : fibers) {
      if (c->state != Ctx::State::kBlocked) continue;
      fprintf(stderr, "  %s %u: %s\n", c->kind == Ctx::Kind::kClient ? "client" : "thread", c->id,
              c->what);
    }
  }

  // The next context to run; the caller is not runnable (or is on runq).
  Ctx* pick_next() {
    for (;;) {
      size_t n = runq.size();
      if (n != 0) {
        size_t i = n == 1 ? 0 : rng.below(static_cast<uint32_t>(n));
        Ctx* c = runq[i];
        runq[i] = runq[n - 1];
        runq.pop_back();
        return c;
      }
      if (!timers.empty()) {
        // With no client timer pending, the next expiry wakes only kernel
        // threads; once that has gone on for kLivelockExpiries without a
        // client waking, rumpuser_sim_run ends as in a deadlock.
        bool livelock = client_timers == 0 && idle_expiries >= kLivelockExpiries && host_in_run &&
                        host.state == Ctx::State::kBlocked;
        if (!livelock) {
          if (client_timers == 0) idle_expiries++;
          fire_timers();
          continue;
        }
      }
      // Nothing can run and nothing will. rumpuser_sim_run reports it; a
      // host context blocked anywhere else would wait forever.
      if (host_in_run && host.state == Ctx::State::kBlocked) {
        deadlocked = true;
        make_runnable(&host);
        continue;
      }
      report("deadlock");
      fatal("deadlock outside rumpuser_sim_run");
    }
  }

  void reap_zombies() {
    while (!zombies.empty()) {
      Ctx* c = zombies.back();
      zombies.pop_back();
      free_ctx(c);
    }
  }

  void switch_to(Ctx* next) {
    Ctx* prev = cur;
    if (next == prev) {
      prev->state = Ctx::State::kRunning;
      return;
    }
    save_tls(prev);
    load_tls(next);
    cur = next;
    next->state = Ctx::State::kRunning;
    t_fiber_world = next->kind == Ctx::Kind::kHost ? nullptr : this;
    tsan_switch_to(next);
    bctx::fiber f = std::move(next->cont);
    std::move(f).resume_with([prev](bctx::fiber&& c) {
      prev->cont = std::move(c);
      return bctx::fiber{};
    });
    // Running as prev again: whoever switched here loaded its state.
    reap_zombies();
  }

  // Blocks the current context until woken or until deadline (kNever:
  // none); true if the deadline ended it. The caller queued it wherever
  // its waker will look.
  bool block(const char* what, uint64_t deadline) {
    Ctx* self = cur;
    self->state = Ctx::State::kBlocked;
    self->what = what;
    self->timed_out = false;
    if (deadline != kNever && deadline <= kHorizonNs) timer_add(self, deadline);
    switch_to(pick_next());
    return self->timed_out;
  }

  // A preemption point: maybe let another runnable context go first.
  void preempt() {
    if (runq.empty() || rng.below(kPreemptOdds) != 0) return;
    Ctx* self = cur;
    self->state = Ctx::State::kRunnable;
    runq.push_back(self);
    switch_to(pick_next());
  }

  // Wakes one of q's waiters, chosen by the seed; true if there was one.
  bool wake_one(WaitQueue& q) {
    if (q.empty()) return false;
    size_t n = 0;
    for (auto it = q.begin(); it != q.end(); ++it) n++;
    size_t k = n == 1 ? 0 : rng.below(static_cast<uint32_t>(n));
    auto it = q.begin();
    std::advance(it, static_cast<long>(k));
    wake(&*it);
    return true;
  }
  // The object q belongs to is being destroyed under its waiters: they
  // can only be fibers the world will drop (a halt under blocked client
  // fibers). They never run again, whatever happens to their timers.
  void orphan_all(WaitQueue& q) {
    while (!q.empty()) {
      Ctx* c = &q.front();
      c->wait_hook.unlink();
      timer_cancel(c);
      c->what = "an object destroyed under it";
    }
  }
  bool wake_all(WaitQueue& q) {
    bool any = !q.empty();
    while (!q.empty()) wake(&q.front());
    return any;
  }

  // --- fibers

  Ctx* new_ctx(Ctx::Kind kind) {
    auto* c = new (std::nothrow) Ctx;
    if (c == nullptr) return nullptr;
    c->w = this;
    c->kind = kind;
    c->backend = &be.table;
    if (tls_len != 0) {
      c->tls = static_cast<unsigned char*>(calloc(1, tls_len));
      if (c->tls == nullptr) {
        delete c;
        return nullptr;
      }
    }
    try {
      c->cont = bctx::fiber(std::allocator_arg, StackAlloc{c},
                            [c](bctx::fiber&&) { return c->w->fiber_main(c); });
    } catch (const std::bad_alloc&) {
      free(c->tls);
      delete c;
      return nullptr;
    }
#ifdef RUMPUSER_SIM_TSAN
    c->tsan_fiber = __tsan_create_fiber(0);
#endif
    fibers.push_back(c);
    c->state = Ctx::State::kRunnable;
    runq.push_back(c);
    return c;
  }

  bctx::fiber fiber_main(Ctx* c) {
    if (c->kind == Ctx::Kind::kThread) {
      c->thread_fn(c->arg);
    } else {
      if (hooks.client_start != nullptr) hooks.client_start(cookie);
      c->client_fn(c->arg);
      if (hooks.client_exit != nullptr) hooks.client_exit(cookie);
    }
    end_current();
    Ctx* next = pick_next();
    load_tls(next);
    cur = next;
    next->state = Ctx::State::kRunning;
    t_fiber_world = next->kind == Ctx::Kind::kHost ? nullptr : this;
    tsan_switch_to(next);
    // Returning switches to next and frees this fiber's stack.
    return std::move(next->cont);
  }

  // The current fiber has ended: tell whoever waits for it.
  void end_current() {
    Ctx* c = cur;
    c->state = Ctx::State::kDone;
    if (c->kind == Ctx::Kind::kClient) {
      clients_live--;
      if (clients_live == 0 && host_in_run) wake(&host);
    }
    if (c->joinable) {
      if (c->joiner != nullptr) wake(c->joiner);
    } else {
      zombies.push_back(c);
    }
  }

  // Frees a context that will never run again. A fiber that did not
  // return (it called thread_exit, or the world ends under it) still owns
  // its stack: drop the handle without resuming it (resuming would unwind
  // through kernel frames) and take the stack back.
  void free_ctx(Ctx* c) {
    if (c->cont) {
      alignas(bctx::fiber) unsigned char husk[sizeof(bctx::fiber)];
      new (husk) bctx::fiber(std::move(c->cont));
      if (c->stack != nullptr) stack_put(c->stack);
      c->stack = nullptr;
    }
    c->wait_hook.unlink();
    timer_cancel(c);
    auto it = std::find(fibers.begin(), fibers.end(), c);
    if (it != fibers.end()) fibers.erase(it);
#ifdef RUMPUSER_SIM_TSAN
    // Never the running context: a fiber is freed by another one.
    if (c->tsan_fiber != nullptr) __tsan_destroy_fiber(c->tsan_fiber);
#endif
    free(c->tls);
    delete c;
  }

  void free_objects();

  void check_caller() {
    if (owner_tag != &t_thread_tag || (t_fiber_world != nullptr && t_fiber_world != this)) {
      fatal("a world's hypercall from a host thread or fiber not running it");
    }
  }
};

World* world_of(const rumpuser_backend* be) {
  if (be == &backend) fatal("the bare \"sim\" table serves no world (use rumpuser_sim_create)");
  return reinterpret_cast<const SimBackend*>(be)->world;
}

// The world of the calling context (for calls that name no object).
World* caller_world() {
  World* w = world_of(thread_backend());
  w->check_caller();
  return w;
}

template <class T>
World* world_of_obj(T* obj) {
  World* w = world_of(reinterpret_cast<const rumpuser_object*>(obj)->ro_backend);
  w->check_caller();
  return w;
}

// ---------------------------------------------------------------------------
// Threads

int thread_create(void* (*fn)(void*), void* arg, const char*, int mustjoin, int, int,
                  void** cookie) {
  World* w = caller_world();
  Ctx* c = w->new_ctx(Ctx::Kind::kThread);
  if (c == nullptr) return EAGAIN;
  c->thread_fn = fn;
  c->arg = arg;
  c->joinable = mustjoin != 0 && cookie != nullptr;
  if (cookie != nullptr) *cookie = c->joinable ? c : nullptr;
  w->preempt();
  return 0;
}

[[noreturn]] void thread_exit() {
  World* w = caller_world();
  if (w->cur->kind == Ctx::Kind::kHost) fatal("thread_exit from the host context");
  w->end_current();
  w->switch_to(w->pick_next());
  fatal("an exited fiber ran again");
}

int thread_join(void* cookie) {
  auto* c = static_cast<Ctx*>(cookie);
  World* w = c->w;
  w->check_caller();
  if (!c->joinable || c->joiner != nullptr || c == w->cur) return EINVAL;
  if (c->state != Ctx::State::kDone) {
    KlockWrap wrap;
    c->joiner = w->cur;
    while (c->state != Ctx::State::kDone) w->block("thread_join", kNever);
  }
  w->free_ctx(c);
  return 0;
}

void lwpop(int, struct lwp*) {}

// ---------------------------------------------------------------------------
// Mutexes

struct Mtx {
  Obj obj;
  Ctx* owner;
  struct lwp* owner_lwp;
  int flags;
  WaitQueue waiters;
};
Mtx* M(rumpuser_mtx* m) { return reinterpret_cast<Mtx*>(m); }

void mutex_init(rumpuser_mtx** mtxp, int flags) {
  World* w = caller_world();
  auto* m = new Mtx{{{&w->be.table}, {}, Obj::Type::kMtx}, nullptr, nullptr, flags, {}};
  w->objects.push_back(m->obj);
  *mtxp = reinterpret_cast<rumpuser_mtx*>(m);
}

void mtx_take(World* w, Mtx* m) {
  m->owner = w->cur;
  m->owner_lwp = (m->flags & RUMPUSER_MTX_KMUTEX) ? curlwp_tls : nullptr;
}

// Waits for m to be free and takes it; the caller gave its CPU back or
// keeps it, as the flavour of enter demands.
void mtx_wait_take(World* w, Mtx* m) {
  if (m->owner == w->cur) fatal("mutex_enter of a mutex the caller holds");
  while (m->owner != nullptr) {
    m->waiters.push_back(*w->cur);
    w->block("mutex", kNever);
  }
  mtx_take(w, m);
}

void mutex_enter_nowrap(rumpuser_mtx* mtx) {
  Mtx* m = M(mtx);
  World* w = world_of_obj(m);
  w->preempt();
  mtx_wait_take(w, m);
}

void mutex_enter(rumpuser_mtx* mtx) {
  Mtx* m = M(mtx);
  World* w = world_of_obj(m);
  w->preempt();
  if (m->owner == nullptr || (m->flags & RUMPUSER_MTX_SPIN)) {
    mtx_wait_take(w, m);
    return;
  }
  KlockWrap wrap;
  mtx_wait_take(w, m);
}

int mutex_tryenter(rumpuser_mtx* mtx) {
  Mtx* m = M(mtx);
  World* w = world_of_obj(m);
  w->preempt();
  if (m->owner != nullptr) return EBUSY;
  mtx_take(w, m);
  return 0;
}

// Gives m up; true if a waiter was woken.
bool mtx_release(World* w, Mtx* m) {
  if (m->owner != w->cur) fatal("mutex_exit of a mutex the caller does not hold");
  m->owner = nullptr;
  m->owner_lwp = nullptr;
  return w->wake_one(m->waiters);
}

void mutex_exit(rumpuser_mtx* mtx) {
  Mtx* m = M(mtx);
  World* w = world_of_obj(m);
  if (mtx_release(w, m)) w->preempt();
}

void mutex_destroy(rumpuser_mtx* mtx) {
  Mtx* m = M(mtx);
  World* w = world_of_obj(m);
  if (m->owner == w->cur) fatal("mutex_destroy of a mutex the caller holds");
  w->orphan_all(m->waiters);
  delete m;
}

void mutex_owner(rumpuser_mtx* mtx, struct lwp** lp) { *lp = M(mtx)->owner_lwp; }

// ---------------------------------------------------------------------------
// Reader/writer locks: waiting writers hold back new readers, as in the
// pthread backend.

struct Rw {
  Obj obj;
  int readers;
  Ctx* writer;
  struct lwp* writer_lwp;
  int writers_waiting;
  WaitQueue readq;
  WaitQueue writeq;
};
Rw* R(rumpuser_rw* r) { return reinterpret_cast<Rw*>(r); }

void rw_init(rumpuser_rw** rwp) {
  World* w = caller_world();
  auto* rw = new Rw{{{&w->be.table}, {}, Obj::Type::kRw}, 0, nullptr, nullptr, 0, {}, {}};
  w->objects.push_back(rw->obj);
  *rwp = reinterpret_cast<rumpuser_rw*>(rw);
}

bool rw_try(World* w, int op, Rw* rw) {
  if (op == RUMPUSER_RW_WRITER) {
    if (rw->writer != nullptr || rw->readers != 0) return false;
    rw->writer = w->cur;
    rw->writer_lwp = curlwp_tls;
    return true;
  }
  if (rw->writer != nullptr || rw->writers_waiting != 0) return false;
  rw->readers++;
  return true;
}

bool rw_wake(World* w, Rw* rw) {
  if (rw->writers_waiting != 0) {
    if (rw->writer == nullptr && rw->readers == 0) return w->wake_one(rw->writeq);
    return false;
  }
  if (rw->writer == nullptr) return w->wake_all(rw->readq);
  return false;
}

void rw_enter(int op, rumpuser_rw* r) {
  Rw* rw = R(r);
  World* w = world_of_obj(rw);
  w->preempt();
  if (rw_try(w, op, rw)) return;
  KlockWrap wrap;
  if (op == RUMPUSER_RW_WRITER) {
    rw->writers_waiting++;
    while (!rw_try(w, op, rw)) {
      rw->writeq.push_back(*w->cur);
      w->block("rwlock (writer)", kNever);
    }
    rw->writers_waiting--;
  } else {
    while (!rw_try(w, op, rw)) {
      rw->readq.push_back(*w->cur);
      w->block("rwlock (reader)", kNever);
    }
  }
}

int rw_tryenter(int op, rumpuser_rw* r) {
  Rw* rw = R(r);
  World* w = world_of_obj(rw);
  w->preempt();
  return rw_try(w, op, rw) ? 0 : EBUSY;
}

int rw_tryupgrade(rumpuser_rw* r) {
  Rw* rw = R(r);
  World* w = world_of_obj(rw);
  if (rw->writer != nullptr || rw->readers != 1) return EBUSY;
  rw->readers = 0;
  rw->writer = w->cur;
  rw->writer_lwp = curlwp_tls;
  return 0;
}

void rw_downgrade(rumpuser_rw* r) {
  Rw* rw = R(r);
  World* w = world_of_obj(rw);
  rw->writer = nullptr;
  rw->writer_lwp = nullptr;
  rw->readers = 1;
  if (rw->writers_waiting == 0 && w->wake_all(rw->readq)) w->preempt();
}

void rw_exit(rumpuser_rw* r) {
  Rw* rw = R(r);
  World* w = world_of_obj(rw);
  if (rw->writer != nullptr) {
    rw->writer = nullptr;
    rw->writer_lwp = nullptr;
  } else if (rw->readers > 0) {
    rw->readers--;
  } else {
    fatal("rw_exit of a lock not held");
  }
  if (rw_wake(w, rw)) w->preempt();
}

void rw_held(int op, rumpuser_rw* r, int* heldp) {
  Rw* rw = R(r);
  World* w = world_of_obj(rw);
  if (op == RUMPUSER_RW_WRITER) {
    struct lwp* l = curlwp_tls;
    *heldp = rw->writer != nullptr &&
             (l != nullptr ? rw->writer_lwp == l : rw->writer_lwp == nullptr && rw->writer == w->cur);
  } else {
    *heldp = rw->readers > 0;
  }
}

void rw_destroy(rumpuser_rw* r) {
  Rw* rw = R(r);
  World* w = world_of_obj(rw);
  if (rw->writer == w->cur) fatal("rw_destroy of a lock the caller holds");
  w->orphan_all(rw->readq);
  w->orphan_all(rw->writeq);
  delete rw;
}

// ---------------------------------------------------------------------------
// Condition variables

struct Cv {
  Obj obj;
  int nwaiters;
  WaitQueue waiters;
};
Cv* C(rumpuser_cv* c) { return reinterpret_cast<Cv*>(c); }

void cv_init(rumpuser_cv** cvp) {
  World* w = caller_world();
  auto* cv = new Cv{{{&w->be.table}, {}, Obj::Type::kCv}, 0, {}};
  w->objects.push_back(cv->obj);
  *cvp = reinterpret_cast<rumpuser_cv*>(cv);
}

void cv_destroy(rumpuser_cv* c) {
  World* w = world_of_obj(C(c));
  w->orphan_all(C(c)->waiters);
  delete C(c);
}

// As the pthread backend: the CPU goes back with mtx as interlock, the
// wait releases mtx, and afterwards the CPU is taken before mtx again.
int cv_wait_common(Cv* cv, Mtx* m, uint64_t deadline, bool wrap) {
  World* w = world_of_obj(cv);
  const rumpuser_hyperup* hyp = wrap ? wrap_hyp() : nullptr;
  int nlocks = 0;
  if (hyp != nullptr) hyp->hyp_backend_unschedule(0, &nlocks, m);
  bool timed_out = false;
  mtx_release(w, m);
  if (deadline == kNever || deadline > w->now) {
    cv->nwaiters++;
    cv->waiters.push_back(*w->cur);
    timed_out = w->block("condition variable", deadline);
    cv->nwaiters--;
  } else {
    timed_out = true;
  }
  if (hyp != nullptr) hyp->hyp_backend_schedule(nlocks, nullptr);
  if (m->flags & RUMPUSER_MTX_SPIN || hyp == nullptr) {
    mtx_wait_take(w, m);
  } else {
    mutex_enter(reinterpret_cast<rumpuser_mtx*>(m));
  }
  return timed_out ? ETIMEDOUT : 0;
}

void cv_wait(rumpuser_cv* cv, rumpuser_mtx* m) { cv_wait_common(C(cv), M(m), kNever, true); }

void cv_wait_nowrap(rumpuser_cv* cv, rumpuser_mtx* m) {
  cv_wait_common(C(cv), M(m), kNever, false);
}

int cv_timedwait(rumpuser_cv* c, rumpuser_mtx* m, int64_t sec, int64_t nsec) {
  World* w = world_of_obj(C(c));
  int64_t interval = 0;
  constexpr int64_t kMaxSec = int64_t{1} << 32;  // far beyond any real wait
  if (sec > 0 || (sec == 0 && nsec > 0)) {
    interval = std::min(sec, kMaxSec) * kNsPerSec + nsec;
    if (interval < 0) interval = 0;
  }
  return cv_wait_common(C(c), M(m), w->now + static_cast<uint64_t>(interval), true);
}

void cv_signal(rumpuser_cv* c) {
  World* w = world_of_obj(C(c));
  if (w->wake_one(C(c)->waiters)) w->preempt();
}

void cv_broadcast(rumpuser_cv* c) {
  World* w = world_of_obj(C(c));
  if (w->wake_all(C(c)->waiters)) w->preempt();
}

void cv_has_waiters(rumpuser_cv* c, int* waitersp) { *waitersp = C(c)->nwaiters; }

void World::free_objects() {
  while (!objects.empty()) {
    Obj* o = &objects.front();
    objects.pop_front();
    switch (o->type) {
      case Obj::Type::kMtx: delete reinterpret_cast<Mtx*>(o); break;
      case Obj::Type::kRw: delete reinterpret_cast<Rw*>(o); break;
      case Obj::Type::kCv: delete reinterpret_cast<Cv*>(o); break;
    }
  }
}

// ---------------------------------------------------------------------------
// Clocks

int clock_gettime(int clock, int64_t* sec, long* nsec) {
  World* w = caller_world();
  w->preempt();
  uint64_t mono = w->now;
  switch (clock) {
    case RUMPUSER_CLOCK_ABSMONO:
      *sec = static_cast<int64_t>(mono / kNsPerSec);
      *nsec = static_cast<long>(mono % kNsPerSec);
      return 0;
    case RUMPUSER_CLOCK_RELWALL: {
      uint64_t since = mono - kMonoEpochNs;
      *sec = kWallEpochSec + static_cast<int64_t>(since / kNsPerSec);
      *nsec = static_cast<long>(since % kNsPerSec);
      return 0;
    }
    default:
      return EINVAL;
  }
}

int clock_sleep(int clock, int64_t sec, long nsec) {
  if (clock != RUMPUSER_CLOCK_RELWALL && clock != RUMPUSER_CLOCK_ABSMONO) return EINVAL;
  if (sec < 0 || nsec < 0 || nsec >= kNsPerSec) return EINVAL;
  World* w = caller_world();
  constexpr int64_t kMaxSec = int64_t{1} << 32;
  uint64_t t = static_cast<uint64_t>(std::min(sec, kMaxSec)) * kNsPerSec + static_cast<uint64_t>(nsec);
  uint64_t deadline = clock == RUMPUSER_CLOCK_RELWALL ? w->now + t : t;
  KlockWrap wrap;
  while (w->now < deadline) w->block("sleep", deadline);
  return 0;
}

// Fibers share their host thread, whose CPU time depends on the host: a
// world has no per-thread CPU time (it would break reproducibility).
int cpuclock_self(uint64_t*) { return ENOTSUP; }
int cpuclock_read(uint64_t, int64_t*) { return ENOTSUP; }

// A world's memory is the host's, shared with whatever else runs there:
// no figure of its own.
int rss_peak(uint64_t*) { return ENOTSUP; }

// A world's fibers take turns on one host thread: a fence orders them all.
int membarrier() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return 0;
}

}  // namespace

bool fill_random(void* buf, size_t len) {
  const rumpuser_backend* be = thread_backend();
  if (be == &backend || be->mutex_init != backend.mutex_init) return false;
  World* w = caller_world();
  auto* p = static_cast<unsigned char*>(buf);
  while (len > 0) {
    uint64_t v = w->entropy.next();
    size_t n = len < sizeof v ? len : sizeof v;
    memcpy(p, &v, n);
    p += n;
    len -= n;
  }
  return true;
}

#define RUMPUSER_SIM_MEMBER_(route, type, name, params, args) .name = name,
const rumpuser_backend backend = {
    .rb_version = RUMPUSER_BACKEND_VERSION,
    .rb_name = RUMPUSER_SIM_NAME,
    RUMPUSER_BACKEND_OPS(RUMPUSER_SIM_MEMBER_)
};
#undef RUMPUSER_SIM_MEMBER_

}  // namespace rumpuser_int::sim

// ---------------------------------------------------------------------------
// Worlds

using rumpuser_int::sim::Ctx;
using rumpuser_int::sim::World;

// struct rumpuser_sim is never defined: a handle is a World.
namespace {

World* W(rumpuser_sim* s) { return reinterpret_cast<World*>(s); }
rumpuser_sim* handle(World* w) { return reinterpret_cast<rumpuser_sim*>(w); }

}  // namespace

extern "C" int rumpuser_sim_create(uint64_t seed, const struct rumpuser_sim_hooks* hooks,
                                   void* cookie, struct rumpuser_sim** simp,
                                   const struct rumpuser_backend** bep) {
  if (simp == nullptr || bep == nullptr) return EINVAL;
  if (rumpuser_int::sim::t_fiber_world != nullptr) return EINVAL;
  auto* w = new (std::nothrow) World(seed);
  if (w == nullptr) return ENOMEM;
  w->be.table = rumpuser_int::sim::backend;
  w->be.world = w;
  w->owner = pthread_self();
  w->owner_tag = &rumpuser_int::sim::t_thread_tag;
  if (hooks != nullptr) w->hooks = *hooks;
  w->cookie = cookie;
  w->nblocks = rumpuser_int::tls_blocks(&w->blocks);
  for (int i = 0; i < w->nblocks; i++) {
    w->tls_len += w->blocks[i].len;
    w->block_addr[i] = w->blocks[i].locate();
  }
  w->host.w = w;
  w->host.kind = Ctx::Kind::kHost;
  w->host.state = Ctx::State::kRunning;
#ifdef RUMPUSER_SIM_TSAN
  w->host.tsan_fiber = __tsan_get_current_fiber();
#endif
  if (w->tls_len != 0) {
    w->host.tls = static_cast<unsigned char*>(calloc(1, w->tls_len));
    if (w->host.tls == nullptr) {
      delete w;
      return ENOMEM;
    }
  }
  *simp = handle(w);
  *bep = &w->be.table;
  return 0;
}

extern "C" void rumpuser_sim_destroy(struct rumpuser_sim* s) {
  if (s == nullptr) return;
  World* w = W(s);
  if (rumpuser_sim_check(s, 1) != 0 || w->cur != &w->host) {
    rumpuser_int::sim::fatal("rumpuser_sim_destroy from a fiber or another thread");
  }
  w->reap_zombies();
  while (!w->fibers.empty()) w->free_ctx(w->fibers.back());
  w->free_objects();
  if (rumpuser_int::backend_tls == &w->be.table) rumpuser_int::backend_tls = nullptr;
  free(w->host.tls);
  delete w;
}

extern "C" struct rumpuser_sim* rumpuser_sim_of(const struct rumpuser_backend* be) {
  if (be == nullptr || be == &rumpuser_int::sim::backend) return nullptr;
  if (be->rb_name == nullptr || strcmp(be->rb_name, RUMPUSER_SIM_NAME) != 0) return nullptr;
  if (be->mutex_init != rumpuser_int::sim::backend.mutex_init) return nullptr;
  return handle(reinterpret_cast<const rumpuser_int::sim::SimBackend*>(be)->world);
}

extern "C" int rumpuser_sim_check(struct rumpuser_sim* s, int host) {
  World* w = W(s);
  if (w->owner_tag != &rumpuser_int::sim::t_thread_tag) return EINVAL;
  World* running = rumpuser_int::sim::t_fiber_world;
  if (running == nullptr) return 0;
  return !host && running == w ? 0 : EINVAL;
}

extern "C" int rumpuser_sim_spawn(struct rumpuser_sim* s, void (*fn)(void*), void* arg) {
  if (fn == nullptr || rumpuser_sim_check(s, 0) != 0) return EINVAL;
  World* w = W(s);
  Ctx* c = w->new_ctx(Ctx::Kind::kClient);
  if (c == nullptr) return EAGAIN;
  c->client_fn = fn;
  c->arg = arg;
  c->id = ++w->clients_spawned;
  w->clients_live++;
  return 0;
}

extern "C" int rumpuser_sim_run(struct rumpuser_sim* s) {
  if (rumpuser_sim_check(s, 1) != 0) return EINVAL;
  World* w = W(s);
  if (w->cur != &w->host) return EINVAL;
  w->host_in_run = true;
  w->deadlocked = false;
  w->idle_expiries = 0;
  while (w->clients_live != 0 && !w->deadlocked) w->block("rumpuser_sim_run", rumpuser_int::sim::kNever);
  w->host_in_run = false;
  bool dead = w->deadlocked;
  w->deadlocked = false;
  return dead ? EDEADLK : 0;
}

extern "C" uint64_t rumpuser_sim_now(struct rumpuser_sim* s) {
  return W(s)->now - rumpuser_int::sim::kMonoEpochNs;
}

extern "C" void rumpuser_sim_waiters(struct rumpuser_sim* s,
                                     void (*fn)(void*, unsigned, struct lwp*, const char*),
                                     void* arg) {
  World* w = W(s);
  for (Ctx* c : w->fibers) {
    if (c->kind != Ctx::Kind::kClient || c->state == Ctx::State::kDone) continue;
    fn(arg, c->id, c->curlwp, c->state == Ctx::State::kBlocked ? c->what : "nothing (runnable)");
  }
}
