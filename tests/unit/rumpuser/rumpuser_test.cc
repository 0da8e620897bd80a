// Unit tests of librumpuser on the real host: parameters, memory, clocks,
// threads, locks (including when they give the virtual CPU back), files,
// block I/O and entropy.
#include <rump/rumpuser.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

// ---------------------------------------------------------------------------
// A fake kernel: upcalls that only count. Installed once for the whole
// process; it only takes effect on threads that set an LWP, so tests that
// leave curlwp null see the same behaviour as before any rumpuser_init.

std::atomic<int> g_unsched{0};
std::atomic<int> g_sched{0};
std::atomic<void*> g_last_unsched_interlock{nullptr};
// Nesting check: schedule must follow an unschedule by the same thread.
thread_local int t_cpu_released = 0;
std::atomic<int> g_nesting_errors{0};

void fake_backend_unschedule(int nlocks, int* nlocksp, void* interlock) {
  if (t_cpu_released++ != 0) g_nesting_errors++;
  *nlocksp = 7;  // must come back to backend_schedule
  g_last_unsched_interlock = interlock;
  g_unsched++;
}
void fake_backend_schedule(int nlocks, void* /*interlock*/) {
  if (--t_cpu_released != 0 || nlocks != 7) g_nesting_errors++;
  g_sched++;
}
void fake_noop() {}

const rumpuser_hyperup kFakeHyp = [] {
  rumpuser_hyperup h{};
  h.hyp_schedule = fake_noop;
  h.hyp_unschedule = fake_noop;
  h.hyp_backend_unschedule = fake_backend_unschedule;
  h.hyp_backend_schedule = fake_backend_schedule;
  return h;
}();

void install_fake_kernel() { REQUIRE(rumpuser_init(RUMPUSER_VERSION, &kFakeHyp) == 0); }

// A distinct non-null LWP pointer per use; the library never dereferences it.
alignas(16) char g_lwp_storage[4][16];
struct lwp* fake_lwp(int i) { return reinterpret_cast<struct lwp*>(g_lwp_storage[i]); }

// Sets the calling thread's LWP for a scope.
class WithLwp {
 public:
  explicit WithLwp(struct lwp* l) { rumpuser_curlwpop(RUMPUSER_LWP_SET, l); }
  ~WithLwp() { rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, rumpuser_curlwp()); }
};

void reset_counts() {
  g_unsched = 0;
  g_sched = 0;
  g_nesting_errors = 0;
  g_last_unsched_interlock = nullptr;
}

// Waits until p holds: false if it still does not after a bound far beyond
// any healthy wait, so that a lost wakeup or a thread that never runs fails
// the test instead of hanging it. In a helper thread the result may be
// ignored: the test's thread then sees the wrong state and fails.
template <class Pred>
[[nodiscard]] bool wait_until(Pred p) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!p()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

int64_t mono_ns() {
  int64_t s;
  long ns;
  REQUIRE(rumpuser_clock_gettime(RUMPUSER_CLOCK_ABSMONO, &s, &ns) == 0);
  return s * 1000000000 + ns;
}

std::string temp_path(const char* tag) {
  const char* dir = getenv("TMPDIR");
  std::string p = std::string(dir ? dir : "/tmp") + "/rumpuser_test_" + tag + "_XXXXXX";
  int fd = mkstemp(p.data());
  REQUIRE(fd >= 0);
  close(fd);
  return p;
}

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("rumpuser_init rejects a wrong version or a null table", "[init]") {
  CHECK(rumpuser_init(RUMPUSER_VERSION + 1, &kFakeHyp) == EINVAL);
  CHECK(rumpuser_init(RUMPUSER_VERSION, nullptr) == EINVAL);
  CHECK(rumpuser_init(RUMPUSER_VERSION, &kFakeHyp) == 0);
  CHECK(rumpuser_init(RUMPUSER_VERSION, &kFakeHyp) == 0);  // once per kernel
}

TEST_CASE("getparam reads the environment and reports ENOENT and ENOMEM", "[param]") {
  char buf[256];
  unsetenv("RUMP_VERBOSE");
  CHECK(rumpuser_getparam("RUMP_VERBOSE", buf, sizeof buf) == ENOENT);

  setenv("RUMP_VERBOSE", "1", 1);
  REQUIRE(rumpuser_getparam("RUMP_VERBOSE", buf, sizeof buf) == 0);
  CHECK(std::string(buf) == "1");

  setenv("RUMP_MEMLIMIT", "123456", 1);
  CHECK(rumpuser_getparam("RUMP_MEMLIMIT", buf, 6) == ENOMEM);  // needs 7 with the NUL
  REQUIRE(rumpuser_getparam("RUMP_MEMLIMIT", buf, 7) == 0);
  CHECK(std::string(buf) == "123456");
  unsetenv("RUMP_MEMLIMIT");
  unsetenv("RUMP_VERBOSE");
}

TEST_CASE("getparam NCPU and HOSTNAME default to the host and obey the environment",
          "[param]") {
  char buf[256];
  unsetenv("RUMP_NCPU");
  REQUIRE(rumpuser_getparam(RUMPUSER_PARAM_NCPU, buf, sizeof buf) == 0);
  CHECK(std::stol(buf) == sysconf(_SC_NPROCESSORS_ONLN));
  CHECK(rumpuser_getparam("RUMP_NCPU", buf, sizeof buf) == ENOENT);
  setenv("RUMP_NCPU", "3", 1);
  REQUIRE(rumpuser_getparam(RUMPUSER_PARAM_NCPU, buf, sizeof buf) == 0);
  CHECK(std::string(buf) == "3");
  unsetenv("RUMP_NCPU");

  unsetenv("RUMP_HOSTNAME");
  char host[256] = {};
  REQUIRE(gethostname(host, sizeof host - 1) == 0);
  REQUIRE(rumpuser_getparam(RUMPUSER_PARAM_HOSTNAME, buf, sizeof buf) == 0);
  CHECK(std::string(buf) == host);
  CHECK(rumpuser_getparam(RUMPUSER_PARAM_HOSTNAME, buf, 1) == ENOMEM);
  setenv("RUMP_HOSTNAME", "rumphost", 1);
  REQUIRE(rumpuser_getparam(RUMPUSER_PARAM_HOSTNAME, buf, sizeof buf) == 0);
  CHECK(std::string(buf) == "rumphost");
  unsetenv("RUMP_HOSTNAME");
}

// ---------------------------------------------------------------------------

TEST_CASE("malloc honours the alignment asked for", "[mem]") {
  for (int align : {0, 1, 8, 16, 64, 4096}) {
    void* p = nullptr;
    REQUIRE(rumpuser_malloc(100, align, &p) == 0);
    REQUIRE(p != nullptr);
    if (align != 0) CHECK(reinterpret_cast<uintptr_t>(p) % align == 0);
    memset(p, 0xa5, 100);
    rumpuser_free(p, 100);
  }
  void* p = nullptr;
  CHECK(rumpuser_malloc(16, 24, &p) == EINVAL);  // not a power of two
}

TEST_CASE("anonmmap gives zeroed memory aligned as asked", "[mem]") {
  const size_t size = 3 * 4096 + 100;
  for (int alignbit : {0, 16, 21}) {
    void* p = nullptr;
    REQUIRE(rumpuser_anonmmap(nullptr, size, alignbit, 0, &p) == 0);
    uintptr_t align = alignbit == 0 ? 4096 : uintptr_t{1} << alignbit;
    CHECK(reinterpret_cast<uintptr_t>(p) % align == 0);
    auto* bytes = static_cast<unsigned char*>(p);
    bool all_zero = true;
    for (size_t i = 0; i < size; i++) all_zero &= bytes[i] == 0;
    CHECK(all_zero);
    memset(p, 0x5a, size);  // writable
    rumpuser_unmap(p, size);
  }
}

TEST_CASE("anonmmap uses a free preferred address and can map executable", "[mem]") {
  void* probe = nullptr;
  REQUIRE(rumpuser_anonmmap(nullptr, 1 << 20, 0, 0, &probe) == 0);
  rumpuser_unmap(probe, 1 << 20);  // now a hole we know is free
  void* p = nullptr;
  REQUIRE(rumpuser_anonmmap(probe, 4096, 0, 1, &p) == 0);
  CHECK(p == probe);
  rumpuser_unmap(p, 4096);
}

// ---------------------------------------------------------------------------

TEST_CASE("clock_sleep ABSMONO wakes no earlier than the target", "[clock]") {
  int64_t s;
  long ns;
  REQUIRE(rumpuser_clock_gettime(RUMPUSER_CLOCK_ABSMONO, &s, &ns) == 0);
  int64_t target = s * 1000000000 + ns + 20000000;  // +20 ms
  REQUIRE(rumpuser_clock_sleep(RUMPUSER_CLOCK_ABSMONO, target / 1000000000,
                               target % 1000000000) == 0);
  CHECK(mono_ns() >= target);
}

TEST_CASE("clock_sleep RELWALL sleeps at least the interval", "[clock]") {
  int64_t start = mono_ns();
  REQUIRE(rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, 15000000) == 0);
  CHECK(mono_ns() - start >= 15000000);
  CHECK(rumpuser_clock_sleep(42, 0, 0) == EINVAL);
}

TEST_CASE("clock_gettime RELWALL is the host's wall clock", "[clock]") {
  int64_t s;
  long ns;
  REQUIRE(rumpuser_clock_gettime(RUMPUSER_CLOCK_RELWALL, &s, &ns) == 0);
  // time() reads a coarse clock that may trail CLOCK_REALTIME by a tick,
  // so allow one second either way.
  CHECK(s >= time(nullptr) - 1);
  CHECK(s <= time(nullptr) + 1);
  CHECK(ns >= 0);
  CHECK(ns < 1000000000);
  CHECK(rumpuser_clock_gettime(42, &s, &ns) == EINVAL);
}

TEST_CASE("clock_sleep gives the CPU back around the sleep", "[clock][klock]") {
  install_fake_kernel();
  reset_counts();
  {
    WithLwp lwp(fake_lwp(0));
    REQUIRE(rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, 1000000) == 0);
  }
  CHECK(g_unsched == 1);
  CHECK(g_sched == 1);
  CHECK(g_nesting_errors == 0);
  // Without an LWP the thread holds no CPU: no upcalls.
  REQUIRE(rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, 1000000) == 0);
  CHECK(g_unsched == 1);
}

// ---------------------------------------------------------------------------

TEST_CASE("curlwp is per thread", "[lwp]") {
  CHECK(rumpuser_curlwp() == nullptr);
  rumpuser_curlwpop(RUMPUSER_LWP_CREATE, fake_lwp(1));
  rumpuser_curlwpop(RUMPUSER_LWP_SET, fake_lwp(1));
  CHECK(rumpuser_curlwp() == fake_lwp(1));
  struct lwp* other = fake_lwp(2);
  std::thread([&] { other = rumpuser_curlwp(); }).join();
  CHECK(other == nullptr);
  rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, fake_lwp(1));
  rumpuser_curlwpop(RUMPUSER_LWP_DESTROY, fake_lwp(1));
  CHECK(rumpuser_curlwp() == nullptr);
}

TEST_CASE("thread_join returns after the thread ran", "[thread]") {
  static std::atomic<int> ran{0};
  static char name[32];
  ran = 0;
  auto fn = +[](void* arg) -> void* {
    pthread_getname_np(pthread_self(), name, sizeof name);
    ran.store(*static_cast<int*>(arg));
    return nullptr;
  };
  int value = 42;
  void* cookie = nullptr;
  REQUIRE(rumpuser_thread_create(fn, &value, "a-very-long-thread-name", 1, 0, -1, &cookie) == 0);
  REQUIRE(cookie != nullptr);
  REQUIRE(rumpuser_thread_join(cookie) == 0);
  CHECK(ran == 42);
  CHECK(std::string(name) == "a-very-long-thr");  // 15 characters
}

TEST_CASE("a detached thread runs and can exit early", "[thread]") {
  static std::atomic<int> ran{0};
  ran = 0;
  auto fn = +[](void*) -> void* {
    ran = 1;
    rumpuser_thread_exit();
  };
  REQUIRE(rumpuser_thread_create(fn, nullptr, "detached", 0, 0, -1, nullptr) == 0);
  REQUIRE(wait_until([] { return ran.load() == 1; }));
}

TEST_CASE("thread_join gives the CPU back", "[thread][klock]") {
  install_fake_kernel();
  reset_counts();
  auto fn = +[](void*) -> void* {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return nullptr;
  };
  void* cookie = nullptr;
  REQUIRE(rumpuser_thread_create(fn, nullptr, "j", 1, 0, -1, &cookie) == 0);
  {
    WithLwp lwp(fake_lwp(0));
    REQUIRE(rumpuser_thread_join(cookie) == 0);
  }
  CHECK(g_unsched == 1);
  CHECK(g_sched == 1);
}

// ---------------------------------------------------------------------------

TEST_CASE("mutex tryenter is EBUSY while another thread holds it", "[mutex]") {
  for (int flags : {0, RUMPUSER_MTX_KMUTEX, RUMPUSER_MTX_SPIN}) {
    rumpuser_mtx* mtx;
    rumpuser_mutex_init(&mtx, flags);
    std::atomic<bool> held{false}, release{false};
    std::thread t([&] {
      rumpuser_mutex_enter(mtx);
      held = true;
      (void)wait_until([&] { return release.load(); });
      rumpuser_mutex_exit(mtx);
    });
    REQUIRE(wait_until([&] { return held.load(); }));
    CHECK(rumpuser_mutex_tryenter(mtx) == EBUSY);
    release = true;
    t.join();
    CHECK(rumpuser_mutex_tryenter(mtx) == 0);
    rumpuser_mutex_exit(mtx);
    rumpuser_mutex_destroy(mtx);
  }
}

TEST_CASE("a KMUTEX reports its owner LWP, other mutexes none", "[mutex]") {
  rumpuser_mtx* kmtx;
  rumpuser_mutex_init(&kmtx, RUMPUSER_MTX_KMUTEX);
  struct lwp* owner = fake_lwp(3);
  {
    WithLwp lwp(fake_lwp(1));
    rumpuser_mutex_enter(kmtx);
    rumpuser_mutex_owner(kmtx, &owner);
    CHECK(owner == fake_lwp(1));
    std::thread([&] { rumpuser_mutex_owner(kmtx, &owner); }).join();
    CHECK(owner == fake_lwp(1));  // seen from any thread
    rumpuser_mutex_exit(kmtx);
    rumpuser_mutex_owner(kmtx, &owner);
    CHECK(owner == nullptr);
    REQUIRE(rumpuser_mutex_tryenter(kmtx) == 0);
    rumpuser_mutex_owner(kmtx, &owner);
    CHECK(owner == fake_lwp(1));
    rumpuser_mutex_exit(kmtx);
  }
  rumpuser_mutex_destroy(kmtx);

  rumpuser_mtx* spin;
  rumpuser_mutex_init(&spin, RUMPUSER_MTX_SPIN);
  WithLwp lwp(fake_lwp(1));
  rumpuser_mutex_enter(spin);
  owner = fake_lwp(3);
  rumpuser_mutex_owner(spin, &owner);
  CHECK(owner == nullptr);
  rumpuser_mutex_exit(spin);
  rumpuser_mutex_destroy(spin);
}

// The backend keeps destroyed locks for the next init (LIFO, per thread):
// each new one must start unlocked, of its own kind and with no waiters,
// whatever its memory was before.
TEST_CASE("a lock made after others were destroyed starts fresh and of its own kind",
          "[mutex][cv]") {
  WithLwp lwp(fake_lwp(1));
  for (int round = 0; round < 3; round++) {
    // More than any cache keeps, destroyed after being held and waited on.
    std::vector<rumpuser_mtx*> ms(200);
    std::vector<rumpuser_cv*> cvs(200);
    for (size_t i = 0; i < ms.size(); i++) {
      rumpuser_mutex_init(&ms[i], i % 2 ? RUMPUSER_MTX_KMUTEX : RUMPUSER_MTX_SPIN);
      rumpuser_cv_init(&cvs[i]);
      rumpuser_mutex_enter(ms[i]);
      CHECK(rumpuser_cv_timedwait(cvs[i], ms[i], 0, 0) == ETIMEDOUT);
      rumpuser_mutex_exit(ms[i]);
    }
    for (size_t i = 0; i < ms.size(); i++) {
      rumpuser_cv_destroy(cvs[i]);
      rumpuser_mutex_destroy(ms[i]);
    }
    for (int flags : {RUMPUSER_MTX_SPIN, RUMPUSER_MTX_KMUTEX, 0}) {
      rumpuser_mtx* m;
      rumpuser_cv* cv;
      rumpuser_mutex_init(&m, flags);
      rumpuser_cv_init(&cv);
      struct lwp* owner = fake_lwp(3);
      rumpuser_mutex_owner(m, &owner);
      CHECK(owner == nullptr);
      int waiters = -1;
      rumpuser_cv_has_waiters(cv, &waiters);
      CHECK(waiters == 0);
      REQUIRE(rumpuser_mutex_tryenter(m) == 0);
      rumpuser_mutex_owner(m, &owner);
      CHECK(owner == (flags == RUMPUSER_MTX_KMUTEX ? fake_lwp(1) : nullptr));
      int other = 0;
      std::thread([&] { other = rumpuser_mutex_tryenter(m); }).join();
      CHECK(other == EBUSY);
      // The condition variable still measures timed waits on the
      // monotonic clock and gives the mutex back.
      CHECK(rumpuser_cv_timedwait(cv, m, 0, 1000) == ETIMEDOUT);
      rumpuser_mutex_exit(m);
      std::thread([&] {
        other = rumpuser_mutex_tryenter(m);
        if (other == 0) rumpuser_mutex_exit(m);
      }).join();
      CHECK(other == 0);
      rumpuser_cv_destroy(cv);
      rumpuser_mutex_destroy(m);
    }
  }
}

TEST_CASE("blocking on a held mutex gives the CPU back exactly around the block",
          "[mutex][klock]") {
  install_fake_kernel();
  rumpuser_mtx* mtx;
  rumpuser_mutex_init(&mtx, RUMPUSER_MTX_KMUTEX);

  SECTION("uncontended enter and tryenter call no upcall") {
    reset_counts();
    WithLwp lwp(fake_lwp(0));
    rumpuser_mutex_enter(mtx);
    rumpuser_mutex_exit(mtx);
    REQUIRE(rumpuser_mutex_tryenter(mtx) == 0);
    rumpuser_mutex_exit(mtx);
    CHECK(g_unsched == 0);
    CHECK(g_sched == 0);
  }

  SECTION("contended enter with an LWP") {
    reset_counts();
    std::atomic<bool> held{false};
    std::atomic<int> sched_when_released{-1};
    std::thread holder([&] {
      rumpuser_mutex_enter(mtx);  // no LWP: never any upcall
      held = true;
      // The waiter gives its CPU back before it blocks...
      (void)wait_until([] { return g_unsched.load() == 1; });
      // ...and has not taken one back while we still hold the mutex.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      sched_when_released = g_sched.load();
      rumpuser_mutex_exit(mtx);
    });
    REQUIRE(wait_until([&] { return held.load(); }));
    {
      WithLwp lwp(fake_lwp(0));
      rumpuser_mutex_enter(mtx);
      struct lwp* owner = nullptr;
      rumpuser_mutex_owner(mtx, &owner);
      CHECK(owner == fake_lwp(0));
      rumpuser_mutex_exit(mtx);
    }
    holder.join();
    CHECK(sched_when_released == 0);
    CHECK(g_unsched == 1);
    CHECK(g_sched == 1);
    CHECK(g_nesting_errors == 0);
    CHECK(g_last_unsched_interlock.load() == nullptr);
  }

  SECTION("enter_nowrap and spin mutexes never give the CPU back") {
    reset_counts();
    rumpuser_mtx* spin;
    rumpuser_mutex_init(&spin, RUMPUSER_MTX_SPIN);
    std::atomic<bool> held{false};
    std::thread holder([&] {
      rumpuser_mutex_enter(mtx);
      rumpuser_mutex_enter(spin);
      held = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      rumpuser_mutex_exit(spin);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      rumpuser_mutex_exit(mtx);
    });
    REQUIRE(wait_until([&] { return held.load(); }));
    {
      WithLwp lwp(fake_lwp(0));
      rumpuser_mutex_enter(spin);
      rumpuser_mutex_exit(spin);
      rumpuser_mutex_enter_nowrap(mtx);
      rumpuser_mutex_exit(mtx);
    }
    holder.join();
    CHECK(g_unsched == 0);
    CHECK(g_sched == 0);
    rumpuser_mutex_destroy(spin);
  }

  rumpuser_mutex_destroy(mtx);
}

// ---------------------------------------------------------------------------

TEST_CASE("cv_timedwait times out with ETIMEDOUT and holds the mutex again", "[cv]") {
  rumpuser_mtx* mtx;
  rumpuser_cv* cv;
  rumpuser_mutex_init(&mtx, RUMPUSER_MTX_KMUTEX);
  rumpuser_cv_init(&cv);
  rumpuser_mutex_enter(mtx);
  int64_t start = mono_ns();
  CHECK(rumpuser_cv_timedwait(cv, mtx, 0, 20000000) == ETIMEDOUT);
  CHECK(mono_ns() - start >= 20000000);
  CHECK(rumpuser_cv_timedwait(cv, mtx, 0, 0) == ETIMEDOUT);
  CHECK(rumpuser_cv_timedwait(cv, mtx, -1, 0) == ETIMEDOUT);
  // Held: another thread cannot take it.
  int other = 0;
  std::thread([&] { other = rumpuser_mutex_tryenter(mtx); }).join();
  CHECK(other == EBUSY);
  rumpuser_mutex_exit(mtx);
  rumpuser_cv_destroy(cv);
  rumpuser_mutex_destroy(mtx);
}

TEST_CASE("cv signal wakes a waiter and has_waiters counts it", "[cv]") {
  for (int flags : {RUMPUSER_MTX_KMUTEX, RUMPUSER_MTX_SPIN}) {
    rumpuser_mtx* mtx;
    rumpuser_cv* cv;
    rumpuser_mutex_init(&mtx, flags);
    rumpuser_cv_init(&cv);
    int waiters = -1;
    rumpuser_cv_has_waiters(cv, &waiters);
    CHECK(waiters == 0);

    bool ready = false;  // guarded by mtx
    std::atomic<bool> woke{false};
    std::thread waiter([&] {
      rumpuser_mutex_enter(mtx);
      while (!ready) rumpuser_cv_wait(cv, mtx);
      rumpuser_mutex_exit(mtx);
      woke = true;
    });
    REQUIRE(wait_until([&] {
      int n;
      rumpuser_cv_has_waiters(cv, &n);
      return n == 1;
    }));
    CHECK_FALSE(woke.load());
    rumpuser_mutex_enter(mtx);
    ready = true;
    rumpuser_cv_signal(cv);
    rumpuser_mutex_exit(mtx);
    waiter.join();
    CHECK(woke.load());
    rumpuser_cv_has_waiters(cv, &waiters);
    CHECK(waiters == 0);
    rumpuser_cv_destroy(cv);
    rumpuser_mutex_destroy(mtx);
  }
}

TEST_CASE("cv broadcast wakes every waiter", "[cv]") {
  rumpuser_mtx* mtx;
  rumpuser_cv* cv;
  rumpuser_mutex_init(&mtx, RUMPUSER_MTX_KMUTEX);
  rumpuser_cv_init(&cv);
  bool go = false;
  std::atomic<int> woke{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; i++) {
    ts.emplace_back([&] {
      rumpuser_mutex_enter(mtx);
      while (!go) rumpuser_cv_wait_nowrap(cv, mtx);
      rumpuser_mutex_exit(mtx);
      woke++;
    });
  }
  REQUIRE(wait_until([&] {
    int n;
    rumpuser_cv_has_waiters(cv, &n);
    return n == 3;
  }));
  rumpuser_mutex_enter(mtx);
  go = true;
  rumpuser_cv_broadcast(cv);
  rumpuser_mutex_exit(mtx);
  // One broadcast wakes all three (a waiter it missed would sleep on).
  REQUIRE(wait_until([&] { return woke.load() == 3; }));
  for (auto& t : ts) t.join();
  rumpuser_cv_destroy(cv);
  rumpuser_mutex_destroy(mtx);
}

TEST_CASE("cv wait with an LWP gives the CPU back with the mutex as interlock",
          "[cv][klock]") {
  install_fake_kernel();
  for (int flags : {RUMPUSER_MTX_KMUTEX, RUMPUSER_MTX_SPIN}) {
    reset_counts();
    rumpuser_mtx* mtx;
    rumpuser_cv* cv;
    rumpuser_mutex_init(&mtx, flags);
    rumpuser_cv_init(&cv);
    bool ready = false;
    std::atomic<bool> done{false};
    std::thread waiter([&] {
      WithLwp lwp(fake_lwp(0));
      rumpuser_mutex_enter(mtx);
      while (!ready) rumpuser_cv_wait(cv, mtx);
      struct lwp* owner = nullptr;
      rumpuser_mutex_owner(mtx, &owner);
      if (flags & RUMPUSER_MTX_KMUTEX) CHECK(owner == fake_lwp(0));
      rumpuser_mutex_exit(mtx);
      done = true;
    });
    REQUIRE(wait_until([&] { return g_unsched.load() >= 1; }));
    CHECK(g_last_unsched_interlock.load() == static_cast<void*>(mtx));
    // While it waits the mutex is free and has no owner.
    struct lwp* owner = fake_lwp(3);
    rumpuser_mutex_enter(mtx);
    rumpuser_mutex_owner(mtx, &owner);
    CHECK(owner == nullptr);  // this thread has no LWP
    ready = true;
    rumpuser_cv_signal(cv);
    rumpuser_mutex_exit(mtx);
    waiter.join();
    CHECK(done.load());
    // One pair for the wait; a second pair if re-taking the mutex blocked.
    CHECK(g_unsched >= 1);
    CHECK(g_unsched == g_sched);
    CHECK(g_nesting_errors == 0);

    // A timed wait that expires: the same pairing.
    reset_counts();
    {
      WithLwp lwp(fake_lwp(0));
      rumpuser_mutex_enter(mtx);
      CHECK(rumpuser_cv_timedwait(cv, mtx, 0, 1000000) == ETIMEDOUT);
      rumpuser_mutex_exit(mtx);
    }
    CHECK(g_unsched == 1);
    CHECK(g_sched == 1);

    // wait_nowrap keeps the CPU.
    reset_counts();
    std::thread signaller([&] {
      (void)wait_until([&] {
        int n;
        rumpuser_cv_has_waiters(cv, &n);
        return n == 1;
      });
      rumpuser_mutex_enter(mtx);
      ready = false;
      rumpuser_cv_signal(cv);
      rumpuser_mutex_exit(mtx);
    });
    {
      WithLwp lwp(fake_lwp(0));
      rumpuser_mutex_enter(mtx);
      while (ready) rumpuser_cv_wait_nowrap(cv, mtx);
      rumpuser_mutex_exit(mtx);
    }
    signaller.join();
    CHECK(g_unsched == 0);

    rumpuser_cv_destroy(cv);
    rumpuser_mutex_destroy(mtx);
  }
}

// ---------------------------------------------------------------------------

TEST_CASE("rwlock readers share, writers exclude", "[rw]") {
  rumpuser_rw* rw;
  rumpuser_rw_init(&rw);
  int held = -1;

  REQUIRE(rumpuser_rw_tryenter(RUMPUSER_RW_READER, rw) == 0);
  REQUIRE(rumpuser_rw_tryenter(RUMPUSER_RW_READER, rw) == 0);
  CHECK(rumpuser_rw_tryenter(RUMPUSER_RW_WRITER, rw) == EBUSY);
  rumpuser_rw_held(RUMPUSER_RW_READER, rw, &held);
  CHECK(held == 1);
  rumpuser_rw_exit(rw);
  rumpuser_rw_exit(rw);
  rumpuser_rw_held(RUMPUSER_RW_READER, rw, &held);
  CHECK(held == 0);

  rumpuser_rw_enter(RUMPUSER_RW_WRITER, rw);
  rumpuser_rw_held(RUMPUSER_RW_WRITER, rw, &held);
  CHECK(held == 1);
  std::thread([&] {
    int h = -1;
    rumpuser_rw_held(RUMPUSER_RW_WRITER, rw, &h);
    CHECK(h == 0);  // not this thread's
    CHECK(rumpuser_rw_tryenter(RUMPUSER_RW_READER, rw) == EBUSY);
  }).join();
  rumpuser_rw_exit(rw);
  rumpuser_rw_destroy(rw);
}

TEST_CASE("rw tryupgrade fails with a second reader and succeeds alone", "[rw]") {
  rumpuser_rw* rw;
  rumpuser_rw_init(&rw);
  int held = -1;
  rumpuser_rw_enter(RUMPUSER_RW_READER, rw);
  std::atomic<bool> in{false}, out{false};
  std::thread other([&] {
    rumpuser_rw_enter(RUMPUSER_RW_READER, rw);
    in = true;
    (void)wait_until([&] { return out.load(); });
    rumpuser_rw_exit(rw);
  });
  REQUIRE(wait_until([&] { return in.load(); }));
  CHECK(rumpuser_rw_tryupgrade(rw) == EBUSY);
  out = true;
  other.join();

  REQUIRE(rumpuser_rw_tryupgrade(rw) == 0);
  rumpuser_rw_held(RUMPUSER_RW_WRITER, rw, &held);
  CHECK(held == 1);
  rumpuser_rw_held(RUMPUSER_RW_READER, rw, &held);
  CHECK(held == 0);

  rumpuser_rw_downgrade(rw);
  rumpuser_rw_held(RUMPUSER_RW_WRITER, rw, &held);
  CHECK(held == 0);
  rumpuser_rw_held(RUMPUSER_RW_READER, rw, &held);
  CHECK(held == 1);
  int other_read = -1;
  std::thread([&] {
    other_read = rumpuser_rw_tryenter(RUMPUSER_RW_READER, rw);
    if (other_read == 0) rumpuser_rw_exit(rw);
  }).join();
  CHECK(other_read == 0);  // downgraded: readers may join
  rumpuser_rw_exit(rw);
  rumpuser_rw_destroy(rw);
}

TEST_CASE("a blocked writer gets the lock and gives the CPU back while it waits",
          "[rw][klock]") {
  install_fake_kernel();
  reset_counts();
  rumpuser_rw* rw;
  rumpuser_rw_init(&rw);
  rumpuser_rw_enter(RUMPUSER_RW_READER, rw);
  std::atomic<bool> got{false};
  std::thread writer([&] {
    WithLwp lwp(fake_lwp(2));
    rumpuser_rw_enter(RUMPUSER_RW_WRITER, rw);
    int h = 0;
    rumpuser_rw_held(RUMPUSER_RW_WRITER, rw, &h);
    CHECK(h == 1);
    got = true;
    rumpuser_rw_exit(rw);
  });
  REQUIRE(wait_until([] { return g_unsched.load() == 1; }));
  // A waiting writer holds back new readers.
  CHECK(rumpuser_rw_tryenter(RUMPUSER_RW_READER, rw) == EBUSY);
  CHECK_FALSE(got.load());
  rumpuser_rw_exit(rw);
  writer.join();
  CHECK(got.load());
  CHECK(g_sched == 1);
  CHECK(g_nesting_errors == 0);
  rumpuser_rw_destroy(rw);
}

// ---------------------------------------------------------------------------

TEST_CASE("open maps the rumpuser flags", "[file]") {
  std::string path = temp_path("open");
  int fd = -1;
  CHECK(rumpuser_open(path.c_str(), RUMPUSER_OPEN_RDWR | RUMPUSER_OPEN_CREATE | RUMPUSER_OPEN_EXCL,
                      &fd) == EEXIST);
  REQUIRE(rumpuser_open(path.c_str(), RUMPUSER_OPEN_RDONLY, &fd) == 0);
  CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
  CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY);
  CHECK(rumpuser_close(fd) == 0);
  unlink(path.c_str());
  REQUIRE(rumpuser_open(path.c_str(), RUMPUSER_OPEN_WRONLY | RUMPUSER_OPEN_CREATE, &fd) == 0);
  CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY);
  CHECK(rumpuser_close(fd) == 0);
  unlink(path.c_str());
  CHECK(rumpuser_open(path.c_str(), RUMPUSER_OPEN_RDONLY, &fd) == ENOENT);
  CHECK(rumpuser_close(-1) == EBADF);
}

TEST_CASE("getfileinfo reports type and size of a file and a directory", "[file]") {
  std::string path = temp_path("info");
  int fd = open(path.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, 12345) == 0);
  close(fd);
  uint64_t size = 0;
  int type = -1;
  REQUIRE(rumpuser_getfileinfo(path.c_str(), &size, &type) == 0);
  CHECK(type == RUMPUSER_FT_REG);
  CHECK(size == 12345);
  unlink(path.c_str());
  CHECK(rumpuser_getfileinfo(path.c_str(), &size, &type) == ENOENT);

  REQUIRE(rumpuser_getfileinfo("/", &size, &type) == 0);
  CHECK(type == RUMPUSER_FT_DIR);
  struct stat st;
  REQUIRE(stat("/", &st) == 0);
  CHECK(size == static_cast<uint64_t>(st.st_size));

  REQUIRE(rumpuser_getfileinfo("/dev/null", nullptr, &type) == 0);
  CHECK(type == RUMPUSER_FT_CHR);
}

TEST_CASE("iovwrite and iovread round-trip at an offset", "[file]") {
  std::string path = temp_path("iov");
  int fd;
  REQUIRE(rumpuser_open(path.c_str(), RUMPUSER_OPEN_RDWR, &fd) == 0);
  char a[] = "hello, ", b[] = "world";
  rumpuser_iovec wiov[2] = {{a, 7}, {b, 5}};
  size_t n = 0;
  REQUIRE(rumpuser_iovwrite(fd, wiov, 2, 1000, &n) == 0);
  CHECK(n == 12);
  uint64_t size;
  int type;
  REQUIRE(rumpuser_getfileinfo(path.c_str(), &size, &type) == 0);
  CHECK(size == 1012);

  char x[5] = {}, y[7] = {};
  rumpuser_iovec riov[2] = {{x, 5}, {y, 7}};
  REQUIRE(rumpuser_iovread(fd, riov, 2, 1000, &n) == 0);
  CHECK(n == 12);
  CHECK(std::string(x, 5) == "hello");
  CHECK(std::string(y, 7) == ", world");

  // off < 0: the current position (0 here), which then advances.
  char z[4] = {1, 1, 1, 1};
  rumpuser_iovec ziov[1] = {{z, 4}};
  REQUIRE(rumpuser_iovread(fd, ziov, 1, -1, &n) == 0);
  CHECK(n == 4);
  CHECK(z[0] == 0);
  CHECK(lseek(fd, 0, SEEK_CUR) == 4);

  CHECK(rumpuser_syncfd(fd, RUMPUSER_SYNCFD_WRITE, 0, 0) == 0);
  CHECK(rumpuser_syncfd(fd, RUMPUSER_SYNCFD_SYNC | RUMPUSER_SYNCFD_BARRIER, 0, 0) == 0);
  CHECK(rumpuser_close(fd) == 0);
  CHECK(rumpuser_iovread(fd, riov, 2, 0, &n) == EBADF);
  CHECK(rumpuser_syncfd(fd, RUMPUSER_SYNCFD_WRITE, 0, 0) == EBADF);
  unlink(path.c_str());
}

TEST_CASE("iovread gives the CPU back", "[file][klock]") {
  install_fake_kernel();
  reset_counts();
  std::string path = temp_path("iovk");
  int fd;
  REQUIRE(rumpuser_open(path.c_str(), RUMPUSER_OPEN_RDWR, &fd) == 0);
  char c = 'q';
  rumpuser_iovec iov[1] = {{&c, 1}};
  size_t n;
  reset_counts();
  {
    WithLwp lwp(fake_lwp(0));
    REQUIRE(rumpuser_iovwrite(fd, iov, 1, 0, &n) == 0);
    REQUIRE(rumpuser_iovread(fd, iov, 1, 0, &n) == 0);
  }
  CHECK(g_unsched == 2);
  CHECK(g_sched == 2);
  rumpuser_close(fd);
  unlink(path.c_str());
}

// ---------------------------------------------------------------------------
// Directory listings.

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    const char* dir = getenv("TMPDIR");
    path = std::string(dir ? dir : "/tmp") + "/rumpuser_test_dir_XXXXXX";
    REQUIRE(mkdtemp(path.data()) != nullptr);
  }
  ~TempDir() {
    for (const std::string& n : made) {
      if (unlink((path + "/" + n).c_str()) != 0) rmdir((path + "/" + n).c_str());
    }
    rmdir(path.c_str());
  }
  std::string at(const std::string& n) { return path + "/" + n; }
  void file(const std::string& n) {
    int fd = open(at(n).c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    close(fd);
    made.push_back(n);
  }
  std::vector<std::string> made;  // entries to remove (files, links, empty dirs)
};

// Everything from position pos on, nents at a time.
std::vector<rumpuser_dirent> read_dir(int dh, int64_t pos, size_t nents) {
  std::vector<rumpuser_dirent> all, batch(nents);
  for (;;) {
    size_t n = 99;
    REQUIRE(rumpuser_readdir(dh, &pos, batch.data(), nents, &n) == 0);
    REQUIRE(n <= nents);
    if (n == 0) break;
    CHECK(pos == batch[n - 1].d_off);  // the position after the last one
    all.insert(all.end(), batch.begin(), batch.begin() + static_cast<long>(n));
  }
  return all;
}

}  // namespace

TEST_CASE("readdir lists names, types (links followed) and inode numbers as stat sees them", "[file][dir]") {
  TempDir d;
  d.file("plain");
  REQUIRE(mkdir(d.at("sub").c_str(), 0755) == 0);
  d.made.push_back("sub");
  REQUIRE(symlink("plain", d.at("to_plain").c_str()) == 0);
  d.made.push_back("to_plain");
  REQUIRE(symlink("sub", d.at("to_sub").c_str()) == 0);
  d.made.push_back("to_sub");
  REQUIRE(symlink("missing", d.at("dangling").c_str()) == 0);
  d.made.push_back("dangling");
  REQUIRE(mkfifo(d.at("fifo").c_str(), 0644) == 0);
  d.made.push_back("fifo");

  int dh = -1;
  REQUIRE(rumpuser_opendir(d.path.c_str(), &dh) == 0);
  CHECK((fcntl(dh, F_GETFD) & FD_CLOEXEC) != 0);
  std::vector<rumpuser_dirent> ents = read_dir(dh, 0, 64);
  std::map<std::string, rumpuser_dirent> by_name;
  for (const rumpuser_dirent& e : ents) {
    CHECK(by_name.count(e.d_name) == 0);
    by_name[e.d_name] = e;
  }
  CHECK(by_name.size() == 8);  // ".", ".." and the six made
  struct {
    const char* name;
    int type;
  } want[] = {{".", RUMPUSER_FT_DIR},      {"..", RUMPUSER_FT_DIR},         {"plain", RUMPUSER_FT_REG},
              {"sub", RUMPUSER_FT_DIR},    {"to_plain", RUMPUSER_FT_REG},   {"to_sub", RUMPUSER_FT_DIR},
              {"dangling", RUMPUSER_FT_OTHER}, {"fifo", RUMPUSER_FT_OTHER}};
  for (auto& w : want) {
    INFO(w.name);
    REQUIRE(by_name.count(w.name) == 1);
    CHECK(by_name[w.name].d_type == w.type);
    struct stat st;
    std::string p = d.at(w.name);
    if (stat(p.c_str(), &st) != 0) REQUIRE(lstat(p.c_str(), &st) == 0);
    CHECK(by_name[w.name].d_ino == static_cast<uint64_t>(st.st_ino));
    // getdirent reports the same for the one path.
    rumpuser_dirent one;
    REQUIRE(rumpuser_getdirent(p.c_str(), &one) == 0);
    CHECK(one.d_type == w.type);
    CHECK(one.d_ino == by_name[w.name].d_ino);
    CHECK(std::string(one.d_name) == w.name);
    int ft = -1;
    if (rumpuser_getfileinfo(p.c_str(), nullptr, &ft) == 0) CHECK(ft == w.type);
  }
  CHECK(rumpuser_closedir(dh) == 0);
  rumpuser_dirent one;
  CHECK(rumpuser_getdirent(d.at("nothing").c_str(), &one) == ENOENT);
  CHECK(rumpuser_getdirent((d.at("plain") + "/x").c_str(), &one) == ENOTDIR);
}

TEST_CASE("readdir resumes from any returned position, on this handle or another", "[file][dir]") {
  TempDir d;
  for (int i = 0; i < 300; i++) d.file("f" + std::to_string(i));
  int dh = -1, dh2 = -1;
  REQUIRE(rumpuser_opendir(d.path.c_str(), &dh) == 0);
  REQUIRE(rumpuser_opendir(d.path.c_str(), &dh2) == 0);
  std::vector<rumpuser_dirent> all = read_dir(dh, 0, 1000);
  REQUIRE(all.size() == 302);
  // One at a time gives the same sequence.
  std::vector<rumpuser_dirent> ones = read_dir(dh, 0, 1);
  REQUIRE(ones.size() == all.size());
  for (size_t i = 0; i < all.size(); i++) {
    CHECK(std::string(ones[i].d_name) == all[i].d_name);
    CHECK(ones[i].d_off == all[i].d_off);
  }
  // From the position after entry i, on the other handle: entry i + 1 on.
  for (size_t i : {size_t{0}, size_t{7}, size_t{150}, all.size() - 1}) {
    std::vector<rumpuser_dirent> rest = read_dir(dh2, all[i].d_off, 5);
    REQUIRE(rest.size() == all.size() - i - 1);
    if (!rest.empty()) CHECK(std::string(rest[0].d_name) == all[i + 1].d_name);
  }
  // The end stays the end.
  int64_t pos = all.back().d_off;
  rumpuser_dirent e;
  size_t n = 1;
  CHECK(rumpuser_readdir(dh, &pos, &e, 1, &n) == 0);
  CHECK(n == 0);
  CHECK(pos == all.back().d_off);
  pos = -1;
  CHECK(rumpuser_readdir(dh, &pos, &e, 1, &n) == EINVAL);
  CHECK(rumpuser_closedir(dh) == 0);
  CHECK(rumpuser_closedir(dh2) == 0);
  pos = 0;
  CHECK(rumpuser_readdir(dh, &pos, &e, 1, &n) == EBADF);
}

TEST_CASE("opendir errors: ENOENT, ENOTDIR", "[file][dir]") {
  int dh = -1;
  CHECK(rumpuser_opendir("/nonexistent/rumpuser_test", &dh) == ENOENT);
  CHECK(rumpuser_opendir("/dev/null", &dh) == ENOTDIR);
  CHECK(dh == -1);
}

TEST_CASE("opendir, readdir and getdirent give the CPU back", "[file][dir][klock]") {
  install_fake_kernel();
  TempDir d;
  d.file("a");
  reset_counts();
  {
    WithLwp lwp(fake_lwp(0));
    int dh = -1;
    REQUIRE(rumpuser_opendir(d.path.c_str(), &dh) == 0);
    rumpuser_dirent e[4];
    int64_t pos = 0;
    size_t n = 0;
    REQUIRE(rumpuser_readdir(dh, &pos, e, 4, &n) == 0);
    CHECK(n == 3);
    REQUIRE(rumpuser_getdirent(d.at("a").c_str(), e) == 0);
    CHECK(rumpuser_closedir(dh) == 0);
  }
  CHECK(g_unsched == 3);
  CHECK(g_sched == 3);
  CHECK(g_nesting_errors == 0);
}

// ---------------------------------------------------------------------------

namespace {

struct BioCompletion {
  std::atomic<int> calls{0};
  std::atomic<size_t> bytes{0};
  std::atomic<int> error{-1};
  std::atomic<bool> on_caller_thread{false};
  std::thread::id caller;
};

void bio_done(void* arg, size_t bytes, int error) {
  auto* c = static_cast<BioCompletion*>(arg);
  c->bytes = bytes;
  c->error = error;
  c->on_caller_thread = std::this_thread::get_id() == c->caller;
  c->calls++;
}

void bio_and_wait(int fd, int op, void* data, size_t len, int64_t off, BioCompletion& c) {
  c.caller = std::this_thread::get_id();
  rumpuser_bio(fd, op, data, len, off, bio_done, &c);
  REQUIRE(wait_until([&] { return c.calls.load() > 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  CHECK(c.calls == 1);  // exactly once
}

}  // namespace

TEST_CASE("bio writes and reads a file and completes once", "[bio]") {
  std::string path = temp_path("bio");
  int fd;
  REQUIRE(rumpuser_open(path.c_str(), RUMPUSER_OPEN_RDWR | RUMPUSER_OPEN_BIO, &fd) == 0);
  std::vector<char> out(8192), in(8192);
  for (size_t i = 0; i < out.size(); i++) out[i] = static_cast<char>(i * 7);

  BioCompletion w;
  bio_and_wait(fd, RUMPUSER_BIO_WRITE, out.data(), out.size(), 4096, w);
  CHECK(w.bytes == 8192);
  CHECK(w.error == 0);
  CHECK_FALSE(w.on_caller_thread.load());

  BioCompletion r;
  bio_and_wait(fd, RUMPUSER_BIO_READ, in.data(), in.size(), 4096, r);
  CHECK(r.bytes == 8192);
  CHECK(r.error == 0);
  CHECK(in == out);

  // Past the end: a short read, no error.
  BioCompletion s;
  bio_and_wait(fd, RUMPUSER_BIO_READ, in.data(), in.size(), 8192, s);
  CHECK(s.bytes == 4096);
  CHECK(s.error == 0);

  // SYNC: done by the caller before rumpuser_bio returns.
  BioCompletion y;
  y.caller = std::this_thread::get_id();
  rumpuser_bio(fd, RUMPUSER_BIO_READ | RUMPUSER_BIO_SYNC, in.data(), 100, 4096, bio_done, &y);
  CHECK(y.calls == 1);
  CHECK(y.on_caller_thread.load());
  CHECK(y.bytes == 100);
  CHECK(y.error == 0);

  rumpuser_close(fd);
  unlink(path.c_str());
}

TEST_CASE("bio on a bad descriptor completes with the error", "[bio]") {
  char buf[512];
  BioCompletion c;
  bio_and_wait(-1, RUMPUSER_BIO_READ, buf, sizeof buf, 0, c);
  CHECK(c.error == EBADF);
  CHECK(c.bytes == 0);
  BioCompletion d;
  d.caller = std::this_thread::get_id();
  rumpuser_bio(-1, RUMPUSER_BIO_WRITE | RUMPUSER_BIO_SYNC, buf, sizeof buf, 0, bio_done, &d);
  CHECK(d.calls == 1);
  CHECK(d.error == EBADF);
}

TEST_CASE("a write-back hint completes once with no bytes, and reports a bad descriptor", "[bio]") {
  std::string path = temp_path("biohint");
  int fd;
  REQUIRE(rumpuser_open(path.c_str(), RUMPUSER_OPEN_RDWR | RUMPUSER_OPEN_BIO, &fd) == 0);
  std::vector<char> out(65536, 'h');
  BioCompletion w;
  bio_and_wait(fd, RUMPUSER_BIO_WRITE, out.data(), out.size(), 0, w);
  REQUIRE(w.bytes == out.size());
  BioCompletion h;
  bio_and_wait(fd, RUMPUSER_BIO_WRITEBACK, nullptr, out.size(), 0, h);
  CHECK(h.bytes == 0);
  CHECK(h.error == 0);
  CHECK_FALSE(h.on_caller_thread.load());
  // The bytes are where they were (the hint moves nothing).
  char b[16];
  REQUIRE(pread(fd, b, sizeof b, 4096) == static_cast<ssize_t>(sizeof b));
  CHECK(std::string(b, sizeof b) == std::string(sizeof b, 'h'));
  rumpuser_close(fd);
  unlink(path.c_str());
  BioCompletion bad;
  bio_and_wait(-1, RUMPUSER_BIO_WRITEBACK, nullptr, 4096, 0, bad);
  CHECK(bad.error == EBADF);
  CHECK(bad.bytes == 0);
}

TEST_CASE("many concurrent bios each complete once", "[bio]") {
  std::string path = temp_path("biomany");
  int fd;
  REQUIRE(rumpuser_open(path.c_str(), RUMPUSER_OPEN_RDWR, &fd) == 0);
  constexpr int kN = 64;
  std::vector<std::vector<char>> bufs(kN, std::vector<char>(512));
  std::vector<BioCompletion> done(kN);
  for (int i = 0; i < kN; i++) {
    memset(bufs[i].data(), i, 512);
    rumpuser_bio(fd, RUMPUSER_BIO_WRITE, bufs[i].data(), 512, i * 512, bio_done, &done[i]);
  }
  for (int i = 0; i < kN; i++) {
    REQUIRE(wait_until([&] { return done[i].calls.load() > 0; }));
    CHECK(done[i].bytes == 512);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  for (int i = 0; i < kN; i++) CHECK(done[i].calls == 1);
  char b[512];
  REQUIRE(pread(fd, b, 512, 63 * 512) == 512);
  CHECK(b[0] == 63);
  CHECK(b[511] == 63);
  rumpuser_close(fd);
  unlink(path.c_str());
}

// ---------------------------------------------------------------------------

TEST_CASE("getrandom fills the buffer", "[random]") {
  std::vector<unsigned char> buf(256, 0);
  size_t n = 0;
  REQUIRE(rumpuser_getrandom(buf.data(), buf.size(), RUMPUSER_RANDOM_HARD, &n) == 0);
  CHECK(n == buf.size());
  int zeros = 0;
  for (unsigned char c : buf) zeros += c == 0;
  CHECK(zeros < 32);  // all-zero would be 2^-2048 likely
  std::vector<unsigned char> again(256, 0);
  REQUIRE(rumpuser_getrandom(again.data(), again.size(), RUMPUSER_RANDOM_NOWAIT, &n) == 0);
  CHECK(n == again.size());
  CHECK(again != buf);
}

TEST_CASE("kill and seterrno reach the host", "[misc]") {
  CHECK(rumpuser_kill(getpid(), 0) == 0);
  CHECK(rumpuser_kill(-999999, 0) == ESRCH);
  rumpuser_seterrno(EDOM);
  CHECK(errno == EDOM);
}
