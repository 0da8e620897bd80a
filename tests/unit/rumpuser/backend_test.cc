// Backends of the hypercall layer: registering and finding them, and the
// dispatcher's routing (objects to the backend that made them, threads to
// the backend that created them, the rest to the calling thread's).
#include <rump/rumpuser.h>

#include <stdlib.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include <catch2/catch.hpp>

#include "counting_backend.h"

namespace cb = counting_backend;

namespace {

const rumpuser_backend* find(const char* name) {
  const rumpuser_backend* be = nullptr;
  return rumpuser_backend_find(name, &be) == 0 ? be : nullptr;
}

// Switches the calling thread to be for a scope.
struct Switched {
  const rumpuser_backend* prev;
  explicit Switched(const rumpuser_backend* be) : prev(rumpuser_backend_switch(be)) {}
  ~Switched() { rumpuser_backend_switch(prev); }
};

}  // namespace

TEST_CASE("backends: pthread is there, others register once by a valid name", "[backend]") {
  const rumpuser_backend* pth = find("pthread");
  REQUIRE(pth != nullptr);
  CHECK(std::strcmp(pth->rb_name, "pthread") == 0);
  CHECK(find(nullptr) == pth);
  CHECK(find("") == pth);
  CHECK(find("no-such-backend") == nullptr);
  CHECK(rumpuser_backend_find("no-such-backend", nullptr) == ENOENT);

  cb::ensure_registered();
  CHECK(find(cb::kName) == cb::table());
  CHECK(rumpuser_backend_register(cb::table()) == EEXIST);
  CHECK(rumpuser_backend_register(pth) == EEXIST);
  CHECK(rumpuser_backend_register(nullptr) == EINVAL);

  rumpuser_backend bad = *cb::table();
  bad.rb_name = "bad";
  bad.rb_version = RUMPUSER_BACKEND_VERSION + 1;
  CHECK(rumpuser_backend_register(&bad) == EINVAL);
  bad.rb_version = RUMPUSER_BACKEND_VERSION;
  bad.cv_timedwait = nullptr;
  CHECK(rumpuser_backend_register(&bad) == EINVAL);
  bad = *cb::table();
  bad.rb_name = "";
  CHECK(rumpuser_backend_register(&bad) == EINVAL);
  bad.rb_name = "a-name-that-is-much-longer-than-thirty-one-characters";
  CHECK(rumpuser_backend_register(&bad) == EINVAL);
  CHECK(find("bad") == nullptr);

  // No name: the RUMP_BACKEND parameter decides.
  REQUIRE(setenv("RUMP_BACKEND", cb::kName, 1) == 0);
  CHECK(find(nullptr) == cb::table());
  REQUIRE(setenv("RUMP_BACKEND", "no-such-backend", 1) == 0);
  CHECK(find(nullptr) == nullptr);
  REQUIRE(setenv("RUMP_BACKEND", "pthread-but-with-a-name-too-long-to-be-any-backend", 1) == 0);
  CHECK(find(nullptr) == nullptr);
  unsetenv("RUMP_BACKEND");
  CHECK(find(nullptr) == pth);
}

TEST_CASE("backends: an object is served by the backend that made it", "[backend]") {
  cb::ensure_registered();
  const rumpuser_backend* pth = find("pthread");
  // A thread that never switched is on pthread; switch returns the old one.
  std::thread([&] {
    CHECK(rumpuser_backend_switch(cb::table()) == pth);
    CHECK(rumpuser_backend_switch(nullptr) == cb::table());
    CHECK(rumpuser_backend_switch(nullptr) == pth);
  }).join();

  rumpuser_mtx* m = nullptr;
  rumpuser_cv* cv = nullptr;
  rumpuser_rw* rw = nullptr;
  long live0 = cb::live_objects();
  {
    Switched s(cb::table());
    rumpuser_mutex_init(&m, RUMPUSER_MTX_KMUTEX);
    rumpuser_cv_init(&cv);
    rumpuser_rw_init(&rw);
  }
  CHECK(cb::live_objects() == live0 + 3);
  CHECK(reinterpret_cast<rumpuser_object*>(m)->ro_backend == cb::table());

  // Back on pthread, the calls still reach the counting backend (they
  // could not work otherwise: its objects wrap pthread ones).
  long ops0 = cb::counts.lock_ops;
  long waits0 = cb::counts.cv_waits;
  rumpuser_mutex_enter(m);
  CHECK(rumpuser_cv_timedwait(cv, m, 0, 1000) == ETIMEDOUT);
  rumpuser_mutex_exit(m);
  CHECK(rumpuser_mutex_tryenter(m) == 0);
  rumpuser_mutex_exit(m);
  rumpuser_rw_enter(RUMPUSER_RW_WRITER, rw);
  int held = 0;
  rumpuser_rw_held(RUMPUSER_RW_WRITER, rw, &held);
  CHECK(held == 1);
  rumpuser_rw_exit(rw);
  CHECK(cb::counts.lock_ops >= ops0 + 6);
  CHECK(cb::counts.cv_waits == waits0 + 1);

  // A wait woken from another thread.
  std::atomic<bool> go{false};
  std::thread waker([&] {
    while (!go.load()) std::this_thread::yield();
    rumpuser_mutex_enter(m);
    rumpuser_cv_signal(cv);
    rumpuser_mutex_exit(m);
  });
  rumpuser_mutex_enter(m);
  go = true;
  CHECK(rumpuser_cv_timedwait(cv, m, 10, 0) == 0);
  rumpuser_mutex_exit(m);
  waker.join();

  rumpuser_mutex_destroy(m);
  rumpuser_cv_destroy(cv);
  rumpuser_rw_destroy(rw);
  CHECK(cb::live_objects() == live0);

  // An object made on pthread is not counted, whatever the thread's backend.
  Switched s(cb::table());
  rumpuser_mtx* pm = nullptr;
  {
    Switched back(nullptr);
    rumpuser_mutex_init(&pm, 0);
  }
  ops0 = cb::counts.lock_ops;
  rumpuser_mutex_enter(pm);
  rumpuser_mutex_exit(pm);
  rumpuser_mutex_destroy(pm);
  CHECK(cb::counts.lock_ops == ops0);
  CHECK(cb::live_objects() == live0);
}

namespace {

struct ThreadSeen {
  const rumpuser_backend* be = nullptr;
  long clock_calls = -1;
  std::atomic<bool> done{false};
};

void* thread_body(void* arg) {
  auto* seen = static_cast<ThreadSeen*>(arg);
  seen->be = rumpuser_backend_switch(nullptr);
  rumpuser_backend_switch(seen->be);
  int64_t s;
  long ns;
  rumpuser_clock_gettime(RUMPUSER_CLOCK_RELWALL, &s, &ns);
  seen->clock_calls = cb::mine.clock_calls;
  seen->done = true;
  return nullptr;
}

}  // namespace

TEST_CASE("backends: a thread runs on the backend that created it", "[backend]") {
  cb::ensure_registered();
  const rumpuser_backend* pth = find("pthread");

  ThreadSeen a;
  void* cookie = nullptr;
  long made0 = cb::counts.threads_made;
  long joined0 = cb::counts.threads_joined;
  {
    Switched s(cb::table());
    REQUIRE(rumpuser_thread_create(thread_body, &a, "counted", 1, 0, -1, &cookie) == 0);
  }
  REQUIRE(cookie != nullptr);
  // Joined from a thread on pthread: the join still goes to the creator.
  REQUIRE(rumpuser_thread_join(cookie) == 0);
  CHECK(a.be == cb::table());
  CHECK(a.clock_calls == 1);
  CHECK(cb::counts.threads_made == made0 + 1);
  CHECK(cb::counts.threads_joined == joined0 + 1);

  // Created on pthread: not counted, and its thread is on pthread.
  ThreadSeen b;
  REQUIRE(rumpuser_thread_create(thread_body, &b, "plain", 1, 0, -1, &cookie) == 0);
  REQUIRE(rumpuser_thread_join(cookie) == 0);
  CHECK(b.be == pth);
  CHECK(b.clock_calls == 0);
  CHECK(cb::counts.threads_made == made0 + 1);

  // Detached (no cookie to join with) on the counting backend.
  ThreadSeen c;
  {
    Switched s(cb::table());
    REQUIRE(rumpuser_thread_create(thread_body, &c, "detached", 1, 0, -1, nullptr) == 0);
  }
  for (int i = 0; i < 5000 && !c.done.load(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(c.done.load());
  CHECK(c.be == cb::table());

  CHECK(rumpuser_thread_join(nullptr) == EINVAL);
  CHECK(rumpuser_thread_create(nullptr, nullptr, "x", 1, 0, -1, &cookie) == EINVAL);
}

TEST_CASE("backends: clocks and LWP notices go to the calling thread's backend", "[backend]") {
  cb::ensure_registered();
  std::thread([] {
    int64_t s;
    long ns;
    REQUIRE(rumpuser_clock_gettime(RUMPUSER_CLOCK_ABSMONO, &s, &ns) == 0);
    CHECK(cb::mine.clock_calls == 0);
    long lwpops0 = cb::counts.lwpops;
    {
      Switched sw(cb::table());
      REQUIRE(rumpuser_clock_gettime(RUMPUSER_CLOCK_ABSMONO, &s, &ns) == 0);
      REQUIRE(rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, 1000) == 0);
      CHECK(rumpuser_clock_gettime(99, &s, &ns) == EINVAL);
      CHECK(cb::mine.clock_calls == 3);
      // SET and CLEAR are the dispatcher's own; CREATE and DESTROY are the
      // backend's to know.
      struct lwp* l = reinterpret_cast<struct lwp*>(&s);
      rumpuser_curlwpop(RUMPUSER_LWP_CREATE, l);
      rumpuser_curlwpop(RUMPUSER_LWP_SET, l);
      CHECK(rumpuser_curlwp() == l);
      rumpuser_curlwpop(RUMPUSER_LWP_CLEAR, nullptr);
      rumpuser_curlwpop(RUMPUSER_LWP_DESTROY, l);
      CHECK(cb::counts.lwpops == lwpops0 + 2);
    }
    REQUIRE(rumpuser_clock_gettime(RUMPUSER_CLOCK_ABSMONO, &s, &ns) == 0);
    CHECK(cb::mine.clock_calls == 3);
  }).join();
}
