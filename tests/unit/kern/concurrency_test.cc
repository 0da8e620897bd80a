// Concurrency: many host threads in one kernel with fewer virtual CPUs than
// threads, processes per thread, LWP switching under load, two kernels at
// once, fork/exit/wait storms, and implicit LWPs of exited threads. Must
// be clean under TSan (meson setup -Db_sanitize=thread).
#include <rump/rump.h>

#include <catch2/catch.hpp>

#include "rump_test.h"

#include <atomic>
#include <cerrno>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace {

using rump_test::KernelUp;

constexpr int kThreads = 8;


template <class F>
void run_threads(int n, F f) {
  std::vector<std::thread> ts;
  for (int i = 0; i < n; i++) ts.emplace_back(f, i);
  for (auto& t : ts) t.join();
}

}  // namespace

TEST_CASE("8 threads x 10000 syscalls on 2 CPUs all get correct answers", "[concurrency]") {
  KernelUp up({.ncpu = 2});
  std::mutex m;
  std::set<pid_t> tids;
  run_threads(kThreads, [&](int) {
    rump_kernel_set_current(up.k);
    pid_t tid = rump_sys_gettid();
    for (int i = 0; i < 10000; i++) {
      switch (i % 3) {
        case 0: TCHECK(rump_sys_getpid() == 1); break;
        case 1: TCHECK(rump_sys_getuid() == 0); break;
        case 2: TCHECK(rump_sys_gettid() == tid); break;
      }
    }
    std::lock_guard<std::mutex> g(m);
    tids.insert(tid);
  });
  CHECK_THREADS_OK();
  CHECK(tids.size() == kThreads);  // an implicit LWP each
  CHECK(tids.count(1) == 0);
}

TEST_CASE("threads each rfork their own process, make calls, and release it", "[concurrency]") {
  KernelUp up({.ncpu = 2});
  std::mutex m;
  std::set<pid_t> pids;
  run_threads(kThreads, [&](int i) {
    rump_kernel_set_current(up.k);
    for (int round = 0; round < 20; round++) {
      int e = rump_lwproc_rfork(RUMP_RFFDG);
      TCHECK(e == 0);
      if (e) return;
      pid_t pid = rump_sys_getpid();
      TCHECK(pid > 1);
      TCHECK(rump_sys_getppid() == 1);
      TCHECK(rump_sys_setuid(1000 + i) == 0);
      for (int j = 0; j < 200; j++) {
        TCHECK(rump_sys_getpid() == pid);
        TCHECK(rump_sys_getuid() == static_cast<uid_t>(1000 + i));
      }
      if (round == 0) {
        std::lock_guard<std::mutex> g(m);
        pids.insert(pid);
      }
      rump_lwproc_releaselwp();
      TCHECK(rump_lwproc_curlwp() == nullptr);
      TCHECK(rump_sys_getuid() == 0);
    }
  });
  CHECK_THREADS_OK();
  CHECK(pids.size() == kThreads);
}

TEST_CASE("threads switch between LWPs of a few processes under load", "[concurrency]") {
  KernelUp up({.ncpu = 2});
  constexpr int kProcs = 3;
  // kProcs processes, each with one LWP per thread (an LWP runs on one
  // thread at a time).
  pid_t pids[kProcs];
  lwp* lwps[kProcs][kThreads];
  for (int p = 0; p < kProcs; p++) {
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    pids[p] = rump_sys_getpid();
    REQUIRE(rump_sys_setuid(100 + p) == 0);
    lwp* first = rump_lwproc_curlwp();
    for (int t = 0; t < kThreads; t++) {
      REQUIRE(rump_lwproc_newlwp(pids[p]) == 0);
      lwps[p][t] = rump_lwproc_curlwp();
    }
    rump_lwproc_switch(first);
    rump_lwproc_releaselwp();  // the process lives on in its other LWPs
  }
  run_threads(kThreads, [&](int t) {
    rump_kernel_set_current(up.k);
    pid_t tids[kProcs];
    for (int p = 0; p < kProcs; p++) {
      rump_lwproc_switch(lwps[p][t]);
      tids[p] = rump_sys_gettid();
    }
    for (int i = 0; i < 3000; i++) {
      int p = (i * 7 + t) % kProcs;
      rump_lwproc_switch(lwps[p][t]);
      TCHECK(rump_lwproc_curlwp() == lwps[p][t]);
      TCHECK(rump_sys_getpid() == pids[p]);
      TCHECK(rump_sys_gettid() == tids[p]);
      TCHECK(rump_sys_getuid() == static_cast<uid_t>(100 + p));
      if (i % 100 == 0) {
        rump_lwproc_switch(nullptr);
        TCHECK(rump_sys_getpid() == 1);
      }
    }
    for (int p = 0; p < kProcs; p++) {
      rump_lwproc_switch(lwps[p][t]);
      rump_lwproc_releaselwp();
    }
  });
  CHECK_THREADS_OK();
  // Every LWP released: the processes are gone.
  for (pid_t p : pids) {
    errno = 0;
    CHECK(rump_sys_kill(p, 0) == -1);
    CHECK(errno == ESRCH);
  }
}

TEST_CASE("two kernels used concurrently by different threads stay separate", "[concurrency]") {
  rump_boot_config c;
  rump_boot_config_init(&c);
  c.ncpu = 2;
  c.verbose = 0;
  rump_kernel *a = nullptr, *b = nullptr;
  REQUIRE(rump_kernel_boot(&c, &a) == 0);
  REQUIRE(rump_kernel_boot(&c, &b) == 0);
  std::mutex m;
  std::set<pid_t> pa, pb;
  run_threads(kThreads, [&](int i) {
    rump_kernel* k = (i % 2) ? b : a;
    rump_kernel_set_current(k);
    TCHECK(rump_kernel_current() == k);
    for (int round = 0; round < 20; round++) {
      int e = rump_lwproc_rfork(RUMP_RFFDG);
      TCHECK(e == 0);
      if (e) return;
      pid_t pid = rump_sys_getpid();
      TCHECK(rump_sys_setuid(i % 2 ? 2000 : 1000) == 0);
      for (int j = 0; j < 100; j++) {
        TCHECK(rump_sys_getpid() == pid);
        TCHECK(rump_sys_geteuid() == static_cast<uid_t>(i % 2 ? 2000 : 1000));
      }
      {
        std::lock_guard<std::mutex> g(m);
        ((i % 2) ? pb : pa).insert(pid);
      }
      rump_lwproc_releaselwp();
    }
  });
  CHECK_THREADS_OK();
  // Each kernel allocated its own pids: they overlap.
  bool overlap = false;
  for (pid_t p : pa) overlap |= pb.count(p) > 0;
  CHECK(overlap);
  CHECK(rump_kernel_halt(a) == 0);
  CHECK(rump_kernel_halt(b) == 0);
}

TEST_CASE("concurrent rfork + exit + wait4 storms", "[concurrency]") {
  KernelUp up({.ncpu = 2});
  std::atomic<int> reaped{0};
  constexpr int kRounds = 300;
  run_threads(kThreads / 2, [&](int t) {
    rump_kernel_set_current(up.k);
    if (rump_lwproc_rfork(RUMP_RFFDG) != 0) {
      TFAIL("rfork parent");
      return;
    }
    lwp* parent = rump_lwproc_curlwp();
    for (int i = 0; i < kRounds; i++) {
      int e = rump_lwproc_rfork(RUMP_RFFDG);
      TCHECK(e == 0);
      if (e) break;
      pid_t child = rump_sys_getpid();
      int status = (t * 31 + i) & 0xff;
      if (i % 3 == 0) {
        rump_sys_exit(status);
      } else if (i % 3 == 1) {
        rump_lwproc_releaselwp();
        status = 0;
      } else {
        // Killed by its parent instead.
        rump_lwproc_switch(parent);
        TCHECK(rump_sys_kill(child, SIGKILL) == 0);
        status = -SIGKILL;
      }
      rump_lwproc_switch(parent);
      int st = -1;
      pid_t r = rump_sys_wait4(i % 2 ? child : -1, &st, 0, nullptr);
      TCHECK(r == child);
      if (status >= 0) {
        TCHECK(WIFEXITED(st) && WEXITSTATUS(st) == status);
      } else {
        TCHECK(WIFSIGNALED(st) && WTERMSIG(st) == -status);
      }
      reaped.fetch_add(1);
    }
    errno = 0;
    TCHECK(rump_sys_wait4(-1, nullptr, WNOHANG, nullptr) == -1 && errno == ECHILD);
    rump_lwproc_releaselwp();
  });
  CHECK_THREADS_OK();
  CHECK(reaped.load() == kThreads / 2 * kRounds);
}

// Under TSan this can show the use-after-free in curlwp.cc leave_inline():
// the exiting thread reads l->proc() after exit1 while the parent, on
// another thread, has already reaped (freed) the Proc in wait4.
TEST_CASE("children exiting on other threads wake a parent blocked in wait4", "[concurrency]") {
  KernelUp up({.ncpu = 2});
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  lwp* parent = rump_lwproc_curlwp();
  constexpr int kKids = 64;
  std::vector<lwp*> kids;
  std::set<pid_t> kidpids;
  for (int i = 0; i < kKids; i++) {
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    kids.push_back(rump_lwproc_curlwp());
    kidpids.insert(rump_sys_getpid());
    rump_lwproc_switch(parent);
  }
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++) {
    ts.emplace_back([&, t] {
      rump_kernel_set_current(up.k);
      for (int i = t; i < kKids; i += 4) {
        rump_lwproc_switch(kids[i]);
        TCHECK(rump_sys_exit(i) == 0);
      }
    });
  }
  std::set<pid_t> got;
  for (int i = 0; i < kKids; i++) {
    int st = -1;
    pid_t r = rump_sys_wait4(-1, &st, 0, nullptr);
    if (r <= 0) break;
    got.insert(r);
    CHECK(WIFEXITED(st));
  }
  for (auto& t : ts) t.join();
  CHECK_THREADS_OK();
  CHECK(got == kidpids);
}

TEST_CASE("implicit LWPs of exited host threads are freed", "[concurrency]") {
  KernelUp up({.ncpu = 2});
  rump_sys_getpid();  // this thread's implicit LWP
  auto wave = [&] {
    run_threads(kThreads, [&](int) {
      rump_kernel_set_current(up.k);
      for (int i = 0; i < 10; i++) rump_sys_getpid();
    });
  };
  size_t base = rump_kernel_memory_in_use(up.k);
  wave();
  size_t after1 = rump_kernel_memory_in_use(up.k);
  for (int i = 0; i < 20; i++) wave();
  size_t after = rump_kernel_memory_in_use(up.k);
  INFO("base " << base << ", after one wave " << after1 << ", after 21 waves " << after);
  // No growth per wave (tables may have grown once).
  CHECK(after <= after1);
  CHECK(after1 - base < 4096);
}
