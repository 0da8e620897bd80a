// The "sim" backend alone (no kernel): fibers, virtual time, seeded
// scheduling, deadlock detection, per-fiber thread-local state.
#include <rump/rumpuser.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdint>
#include <set>
#include <thread>
#include <vector>

namespace {

constexpr int64_t kNs = 1000000000;

// A world on the calling thread, with its backend as the thread's for the
// test's lifetime (objects the test makes are the world's).
struct World {
  explicit World(uint64_t seed) {
    REQUIRE(rumpuser_sim_create(seed, nullptr, nullptr, &sim, &be) == 0);
    prev = rumpuser_backend_switch(be);
  }
  ~World() {
    rumpuser_backend_switch(prev);
    rumpuser_sim_destroy(sim);
  }
  rumpuser_sim* sim = nullptr;
  const rumpuser_backend* be = nullptr;
  const rumpuser_backend* prev = nullptr;
};

int64_t mono_ns() {
  int64_t s = 0;
  long ns = 0;
  REQUIRE(rumpuser_clock_gettime(RUMPUSER_CLOCK_ABSMONO, &s, &ns) == 0);
  return s * kNs + ns;
}

}  // namespace

TEST_CASE("sim: the backend is registered under its name, and instances are told apart",
          "[sim]") {
  const rumpuser_backend* be = nullptr;
  REQUIRE(rumpuser_backend_find(RUMPUSER_SIM_NAME, &be) == 0);
  CHECK(rumpuser_sim_of(be) == nullptr);  // the bare table serves no world
  World w(1);
  CHECK(rumpuser_sim_of(w.be) == w.sim);
  const rumpuser_backend* pth = nullptr;
  REQUIRE(rumpuser_backend_find("pthread", &pth) == 0);
  CHECK(rumpuser_sim_of(pth) == nullptr);
}

TEST_CASE("sim: a fiber sleeping ten hours advances the virtual clock by exactly that",
          "[sim]") {
  World w(7);
  struct Arg {
    int64_t before, after;
    int rv;
  } a{};
  REQUIRE(rumpuser_sim_spawn(w.sim, [](void* p) {
    auto* a = static_cast<Arg*>(p);
    a->before = mono_ns();
    a->rv = rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 10 * 3600, 0);
    a->after = mono_ns();
  }, &a) == 0);
  REQUIRE(rumpuser_sim_run(w.sim) == 0);
  CHECK(a.rv == 0);
  CHECK(a.after - a.before == int64_t{10} * 3600 * kNs);
  CHECK(rumpuser_sim_now(w.sim) == uint64_t{10} * 3600 * kNs);
}

TEST_CASE("sim: a condition variable's timeout lands on the exact virtual nanosecond", "[sim]") {
  World w(3);
  rumpuser_mtx* m;
  rumpuser_cv* cv;
  rumpuser_mutex_init(&m, RUMPUSER_MTX_KMUTEX);
  rumpuser_cv_init(&cv);
  struct Arg {
    rumpuser_mtx* m;
    rumpuser_cv* cv;
    int64_t before, after;
    int rv;
  } a{m, cv, 0, 0, 0};
  REQUIRE(rumpuser_sim_spawn(w.sim, [](void* p) {
    auto* a = static_cast<Arg*>(p);
    rumpuser_mutex_enter(a->m);
    a->before = mono_ns();
    a->rv = rumpuser_cv_timedwait(a->cv, a->m, 1, 234567891);
    a->after = mono_ns();
    rumpuser_mutex_exit(a->m);
  }, &a) == 0);
  REQUIRE(rumpuser_sim_run(w.sim) == 0);
  CHECK(a.rv == ETIMEDOUT);
  CHECK(a.after - a.before == kNs + 234567891);
  rumpuser_cv_destroy(cv);
  rumpuser_mutex_destroy(m);
}

TEST_CASE("sim: a signal ends a timed wait early, at the time of the signal", "[sim]") {
  World w(5);
  struct Arg {
    rumpuser_mtx* m;
    rumpuser_cv* cv;
    bool flag;
    int rv;
    int64_t woke;
  } a{};
  rumpuser_mutex_init(&a.m, RUMPUSER_MTX_KMUTEX);
  rumpuser_cv_init(&a.cv);
  REQUIRE(rumpuser_sim_spawn(w.sim, [](void* p) {
    auto* a = static_cast<Arg*>(p);
    rumpuser_mutex_enter(a->m);
    a->rv = 0;
    while (!a->flag && a->rv == 0) a->rv = rumpuser_cv_timedwait(a->cv, a->m, 100, 0);
    a->woke = mono_ns();
    rumpuser_mutex_exit(a->m);
  }, &a) == 0);
  REQUIRE(rumpuser_sim_spawn(w.sim, [](void* p) {
    auto* a = static_cast<Arg*>(p);
    rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 3, 0);
    rumpuser_mutex_enter(a->m);
    a->flag = true;
    rumpuser_cv_signal(a->cv);
    rumpuser_mutex_exit(a->m);
  }, &a) == 0);
  int64_t start = mono_ns();
  REQUIRE(rumpuser_sim_run(w.sim) == 0);
  CHECK(a.rv == 0);
  CHECK(a.flag);
  CHECK(a.woke - start == 3 * kNs);
  rumpuser_cv_destroy(a.cv);
  rumpuser_mutex_destroy(a.m);
}

namespace {

// Four fibers append their number to a shared log under a mutex, with
// clock calls (preemption points) in between. The log is the schedule.
std::vector<int> schedule_of(uint64_t seed) {
  World w(seed);
  struct Shared {
    rumpuser_mtx* m;
    std::vector<int> log;
  } sh;
  rumpuser_mutex_init(&sh.m, RUMPUSER_MTX_KMUTEX);
  struct Arg {
    Shared* sh;
    int id;
  } args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = {&sh, i};
    REQUIRE(rumpuser_sim_spawn(w.sim, [](void* p) {
      auto* a = static_cast<Arg*>(p);
      for (int n = 0; n < 8; n++) {
        rumpuser_mutex_enter(a->sh->m);
        a->sh->log.push_back(a->id);
        mono_ns();
        rumpuser_mutex_exit(a->sh->m);
        mono_ns();
      }
    }, &args[i]) == 0);
  }
  REQUIRE(rumpuser_sim_run(w.sim) == 0);
  rumpuser_mutex_destroy(sh.m);
  return sh.log;
}

}  // namespace

TEST_CASE("sim: one seed gives one schedule; different seeds give different ones", "[sim]") {
  std::vector<int> first = schedule_of(42);
  REQUIRE(first.size() == 32);
  for (int i = 0; i < 20; i++) CHECK(schedule_of(42) == first);
  std::set<std::vector<int>> seen;
  for (uint64_t seed = 0; seed < 50; seed++) seen.insert(schedule_of(seed));
  CHECK(seen.size() > 25);
}

TEST_CASE("sim: fibers blocked for good and no timer: run reports EDEADLK", "[sim]") {
  World w(9);
  struct Arg {
    rumpuser_mtx* m;
    rumpuser_cv* cv;
  } a{};
  rumpuser_mutex_init(&a.m, RUMPUSER_MTX_KMUTEX);
  rumpuser_cv_init(&a.cv);
  REQUIRE(rumpuser_sim_spawn(w.sim, [](void* p) {
    auto* a = static_cast<Arg*>(p);
    rumpuser_mutex_enter(a->m);
    rumpuser_cv_wait(a->cv, a->m);  // nobody signals
    rumpuser_mutex_exit(a->m);
  }, &a) == 0);
  CHECK(rumpuser_sim_run(w.sim) == EDEADLK);
  struct Seen {
    int n = 0;
    unsigned id = 0;
    std::string what;
  } seen;
  rumpuser_sim_waiters(w.sim, [](void* p, unsigned id, struct lwp*, const char* what) {
    auto* s = static_cast<Seen*>(p);
    s->n++;
    s->id = id;
    s->what = what;
  }, &seen);
  CHECK(seen.n == 1);
  CHECK(seen.id == 1);
  CHECK(seen.what == "condition variable");
  // The world ends with the fiber still blocked: it and the objects it
  // waits on are freed with it (ASan builds check nothing leaks).
}

namespace {

// The planted bug: an ABBA lock order between two fibers. Returns the
// result of running it with seed.
int abba(uint64_t seed) {
  World w(seed);
  struct Arg {
    rumpuser_mtx* a;
    rumpuser_mtx* b;
    bool reverse;
  } x{}, y{};
  rumpuser_mutex_init(&x.a, RUMPUSER_MTX_KMUTEX);
  rumpuser_mutex_init(&x.b, RUMPUSER_MTX_KMUTEX);
  y = x;
  y.reverse = true;
  auto body = [](void* p) {
    auto* a = static_cast<Arg*>(p);
    rumpuser_mtx* first = a->reverse ? a->b : a->a;
    rumpuser_mtx* second = a->reverse ? a->a : a->b;
    rumpuser_mutex_enter(first);
    rumpuser_mutex_enter(second);
    rumpuser_mutex_exit(second);
    rumpuser_mutex_exit(first);
  };
  REQUIRE(rumpuser_sim_spawn(w.sim, body, &x) == 0);
  REQUIRE(rumpuser_sim_spawn(w.sim, body, &y) == 0);
  int rv = rumpuser_sim_run(w.sim);
  if (rv == 0) {
    rumpuser_mutex_destroy(x.a);
    rumpuser_mutex_destroy(x.b);
  }
  return rv;
}

}  // namespace

TEST_CASE("sim: a seed sweep finds an ABBA deadlock, and its seed alone reproduces it", "[sim]") {
  std::vector<uint64_t> deadlocked;
  int clean = 0;
  for (uint64_t seed = 1; seed <= 200; seed++) {
    int rv = abba(seed);
    REQUIRE((rv == 0 || rv == EDEADLK));
    if (rv == EDEADLK) deadlocked.push_back(seed);
    else clean++;
  }
  // The order of the fibers decides: the sweep sees both outcomes.
  REQUIRE(!deadlocked.empty());
  CHECK(clean > 0);
  for (uint64_t seed : deadlocked) CHECK(abba(seed) == EDEADLK);
}

TEST_CASE("sim: threads made inside a world are fibers, and join waits for them", "[sim]") {
  World w(11);
  struct Arg {
    int done = 0;
    int joined = -1;
  } a;
  REQUIRE(rumpuser_sim_spawn(w.sim, [](void* p) {
    auto* a = static_cast<Arg*>(p);
    void* cookie = nullptr;
    CHECK(rumpuser_thread_create([](void* q) -> void* {
      rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 1, 0);
      static_cast<Arg*>(q)->done = 1;
      return nullptr;
    }, a, "worker", 1, 0, -1, &cookie) == 0);
    a->joined = rumpuser_thread_join(cookie);
  }, &a) == 0);
  REQUIRE(rumpuser_sim_run(w.sim) == 0);
  CHECK(a.joined == 0);
  CHECK(a.done == 1);
  CHECK(rumpuser_sim_now(w.sim) == uint64_t{kNs});
}

namespace {
thread_local int t_block[4];
void* locate_block() { return t_block; }
}  // namespace

TEST_CASE("sim: each fiber has its own copy of a registered thread-local block", "[sim]") {
  REQUIRE(rumpuser_tls_register(locate_block, sizeof t_block) == 0);
  REQUIRE(rumpuser_tls_register(locate_block, sizeof t_block) == 0);  // a no-op
  t_block[0] = 99;
  World w(13);
  struct Arg {
    int id;
    int seen_at_start;
    int seen_at_end;
  } args[3];
  for (int i = 0; i < 3; i++) {
    args[i] = {i + 1, -1, -1};
    REQUIRE(rumpuser_sim_spawn(w.sim, [](void* p) {
      auto* a = static_cast<Arg*>(p);
      a->seen_at_start = t_block[0];
      t_block[0] = a->id;
      for (int n = 0; n < 10; n++) rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, 1000);
      a->seen_at_end = t_block[0];
    }, &args[i]) == 0);
  }
  REQUIRE(rumpuser_sim_run(w.sim) == 0);
  for (auto& a : args) {
    CHECK(a.seen_at_start == 0);  // a new fiber starts with zeroes
    CHECK(a.seen_at_end == a.id);
  }
  CHECK(t_block[0] == 99);  // the host thread's copy is its own
}

TEST_CASE("sim: another host thread may not spawn into or run a world", "[sim]") {
  World w(17);
  int spawn_rv = 0, run_rv = 0, check_rv = 0;
  std::thread other([&] {
    spawn_rv = rumpuser_sim_spawn(w.sim, [](void*) {}, nullptr);
    run_rv = rumpuser_sim_run(w.sim);
    check_rv = rumpuser_sim_check(w.sim, 0);
  });
  other.join();
  CHECK(spawn_rv == EINVAL);
  CHECK(run_rv == EINVAL);
  CHECK(check_rv == EINVAL);
  CHECK(rumpuser_sim_check(w.sim, 1) == 0);
}
