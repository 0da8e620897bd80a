// futex, set_tid_address and the robust list: each differential scenario
// is written once over the kernel it talks to (Fx<true>: the rump kernel,
// Fx<false>: the host, in a forked child) and both logs of results,
// errnos and word values must be equal. Then what only the rump kernel
// can show: EINTR, the clear-and-wake at LWP exit, robust futexes of a
// dead LWP, and waiters and wakers
// racing on two virtual CPUs. (Keys across isolated spaces:
// tests/unit/vm/futex_space_test.cc.)
#include <linux/futex.h>
#include <sys/syscall.h>

#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#include <catch2/catch.hpp>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

#include "rump_test.h"

namespace {

using rump_test::fork_and_switch;
using rump_test::KernelUp;
using rump_test::Kid;

// The rump side's kernel and process, for helper threads.
rump_kernel* g_kernel = nullptr;
pid_t g_pid = 0;

template <bool Rump>
struct Fx {
  static long futex(uint32_t* u, int op, uint32_t val, const timespec* ts, uint32_t* u2, uint32_t v3) {
    if constexpr (Rump) return rump_sys_futex(u, op, val, ts, u2, v3);
    else return syscall(SYS_futex, u, op, val, ts, u2, v3);
  }
  static long futex_n(uint32_t* u, int op, uint32_t val, uintptr_t val2, uint32_t* u2, uint32_t v3) {
    return futex(u, op, val, reinterpret_cast<const timespec*>(val2), u2, v3);
  }
  static long set_tid_address(int* p) {
    if constexpr (Rump) return rump_sys_set_tid_address(p);
    else return syscall(SYS_set_tid_address, p);
  }
  static long gettid() {
    if constexpr (Rump) return rump_sys_gettid();
    else return syscall(SYS_gettid);
  }
  static long set_robust_list(void* h, size_t len) {
    if constexpr (Rump) return rump_sys_set_robust_list(h, len);
    else return syscall(SYS_set_robust_list, h, len);
  }
  static long get_robust_list(int pid, void** h, size_t* len) {
    if constexpr (Rump) return rump_sys_get_robust_list(pid, h, len);
    else return syscall(SYS_get_robust_list, pid, h, len);
  }
  static long clock_gettime(clockid_t c, timespec* ts) {
    if constexpr (Rump) return rump_sys_clock_gettime(c, ts);
    else return ::clock_gettime(c, ts);
  }
  // A helper thread's way in: the rump side gives it an LWP of the
  // scenario's process.
  static void thread_enter() {
    if constexpr (Rump) {
      rump_kernel_set_current(g_kernel);
      TCHECK(rump_lwproc_newlwp(g_pid) == 0);
    }
  }
  static void thread_exit() {
    if constexpr (Rump) {
      rump_lwproc_releaselwp();
      rump_kernel_set_current(nullptr);
    }
  }
};

// A log of results: each entry a value and an errno (0 unless < 0).
struct Log {
  static constexpr int kMax = 96;
  long v[kMax];
  int e[kMax];
  int line[kMax];
  int n;
  void add(int ln, long r) {
    if (n >= kMax) return;
    v[n] = r;
    e[n] = r < 0 ? errno : 0;
    line[n] = ln;
    n++;
  }
};
#define R(expr) L.add(__LINE__, (errno = 0, static_cast<long>(expr)))
#define V(expr) L.add(__LINE__, static_cast<long>(expr))

constexpr uint32_t kAny = FUTEX_BITSET_MATCH_ANY;

template <bool Rump>
void errors_scenario(Log& L) {
  using S = Fx<Rump>;
  alignas(8) static uint32_t w[4];
  std::memset(w, 0, sizeof w);
  w[0] = 7;
  timespec zero{0, 0}, ms{0, 1000000}, bad_ns{0, 1000000000}, neg{-1, 0};
  for (int priv : {0, FUTEX_PRIVATE_FLAG}) {
    // Value mismatch, timeouts, bad timespecs.
    R(S::futex(&w[0], FUTEX_WAIT | priv, 6, nullptr, nullptr, 0));
    R(S::futex(&w[0], FUTEX_WAIT | priv, 7, &zero, nullptr, 0));
    R(S::futex(&w[0], FUTEX_WAIT | priv, 7, &ms, nullptr, 0));
    R(S::futex(&w[0], FUTEX_WAIT | priv, 7, &bad_ns, nullptr, 0));
    R(S::futex(&w[0], FUTEX_WAIT | priv, 7, &neg, nullptr, 0));
    R(S::futex(&w[0], FUTEX_WAIT | priv, 6, &bad_ns, nullptr, 0));  // the timeout is checked first
    R(S::futex(&w[0], FUTEX_WAIT | priv, 7, reinterpret_cast<timespec*>(uintptr_t{8}), nullptr, 0));
    // Absolute timeouts of WAIT_BITSET, monotonic and realtime, in the past.
    timespec now{};
    S::clock_gettime(CLOCK_MONOTONIC, &now);
    R(S::futex(&w[0], FUTEX_WAIT_BITSET | priv, 7, &now, nullptr, kAny));
    S::clock_gettime(CLOCK_REALTIME, &now);
    R(S::futex(&w[0], FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME | priv, 7, &now, nullptr, kAny));
    R(S::futex(&w[0], FUTEX_WAIT_BITSET | priv, 7, &zero, nullptr, 0));  // bitset 0
    R(S::futex(&w[0], FUTEX_WAIT | FUTEX_CLOCK_REALTIME | priv, 7, &ms, nullptr, 0));
    // Wakes with nobody waiting.
    R(S::futex(&w[0], FUTEX_WAKE | priv, 1, nullptr, nullptr, 0));
    R(S::futex(&w[0], FUTEX_WAKE | priv, 0, nullptr, nullptr, 0));
    R(S::futex(&w[0], FUTEX_WAKE | priv, INT_MAX, nullptr, nullptr, 0));
    R(S::futex(&w[0], FUTEX_WAKE_BITSET | priv, 1, nullptr, nullptr, 0));
    R(S::futex(&w[0], FUTEX_WAKE_BITSET | priv, 1, nullptr, nullptr, 3));
    R(S::futex(&w[0], FUTEX_WAKE | FUTEX_CLOCK_REALTIME | priv, 1, nullptr, nullptr, 0));
    // Misaligned words.
    auto* odd = reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(&w[1]) + 1);
    R(S::futex(odd, FUTEX_WAIT | priv, 0, &zero, nullptr, 0));
    R(S::futex(odd, FUTEX_WAKE | priv, 1, nullptr, nullptr, 0));
    R(S::futex_n(&w[0], FUTEX_REQUEUE | priv, 1, 1, odd, 0));
    // Unknown and unsupported commands.
    R(S::futex(&w[0], 20 | priv, 0, nullptr, nullptr, 0));
    R(S::futex(&w[0], 2 | priv, 0, nullptr, nullptr, 0));  // FUTEX_FD, gone
    // Requeue counts and the compare of CMP_REQUEUE.
    R(S::futex_n(&w[0], FUTEX_REQUEUE | priv, 1, 1, &w[1], 0));
    R(S::futex_n(&w[0], FUTEX_REQUEUE | priv, static_cast<uint32_t>(-1), 1, &w[1], 0));
    R(S::futex_n(&w[0], FUTEX_REQUEUE | priv, 1, static_cast<uint32_t>(-1), &w[1], 0));
    R(S::futex_n(&w[0], FUTEX_CMP_REQUEUE | priv, 1, 1, &w[1], 6));
    R(S::futex_n(&w[0], FUTEX_CMP_REQUEUE | priv, 1, 1, &w[1], 7));
    // WAKE_OP: each operation and comparison, and the word it leaves.
    for (int op : {FUTEX_OP_SET, FUTEX_OP_ADD, FUTEX_OP_OR, FUTEX_OP_ANDN, FUTEX_OP_XOR, 5}) {
      for (int cmp : {FUTEX_OP_CMP_EQ, FUTEX_OP_CMP_NE, FUTEX_OP_CMP_LT, FUTEX_OP_CMP_GE, FUTEX_OP_CMP_LE,
                      FUTEX_OP_CMP_GT, 6}) {
        w[2] = 12;
        R(S::futex_n(&w[0], FUTEX_WAKE_OP | priv, 1, 1, &w[2], FUTEX_OP(op, 5, cmp, 12)));
        V(w[2]);
      }
    }
    w[2] = 1;
    R(S::futex_n(&w[0], FUTEX_WAKE_OP | priv, 1, 1, &w[2], FUTEX_OP(FUTEX_OP_OR | FUTEX_OP_OPARG_SHIFT, 4, 0, 0)));
    V(w[2]);
    w[2] = 0;
    R(S::futex_n(&w[0], FUTEX_WAKE_OP | priv, 1, 1, &w[2], FUTEX_OP(FUTEX_OP_ADD, -3 & 0xfff, FUTEX_OP_CMP_LT, -1 & 0xfff)));
    V(w[2]);
  }
  // set_tid_address returns the caller's tid.
  V(S::set_tid_address(reinterpret_cast<int*>(&w[3])) == S::gettid());
  V(S::set_tid_address(nullptr) == S::gettid());
  // The robust list head: only its size is checked.
  alignas(8) static uintptr_t head[3];
  head[0] = reinterpret_cast<uintptr_t>(head);
  head[1] = 0;
  head[2] = 0;
  R(S::set_robust_list(head, 23));
  R(S::set_robust_list(head, 25));
  R(S::set_robust_list(head, 24));
  void* got = nullptr;
  size_t len = 0;
  R(S::get_robust_list(0, &got, &len));
  V(got == head);
  V(len);
  R(S::get_robust_list(S::gettid(), &got, &len));
  V(got == head);
  R(S::get_robust_list(0x3fffffff, &got, &len));
  R(S::set_robust_list(nullptr, 24));
}

template <bool Rump>
void waiters_scenario(Log& L) {
  using S = Fx<Rump>;
  alignas(8) static uint32_t f[2];
  f[0] = f[1] = 0;
  std::atomic<long> r1{99}, r2{99};
  for (int priv : {0, FUTEX_PRIVATE_FLAG}) {
    // One waiter, woken by WAKE.
    std::thread a([&] {
      S::thread_enter();
      r1 = S::futex(&f[0], FUTEX_WAIT | priv, 0, nullptr, nullptr, 0);
      S::thread_exit();
    });
    long n;
    while ((n = S::futex(&f[0], FUTEX_WAKE | priv, 1, nullptr, nullptr, 0)) == 0) std::this_thread::yield();
    a.join();
    V(n);
    V(r1.load());
    // Bitsets: a wake whose bitset misses wakes nobody.
    std::thread b([&] {
      S::thread_enter();
      r1 = S::futex(&f[0], FUTEX_WAIT_BITSET | priv, 0, nullptr, nullptr, 0x1);
      S::thread_exit();
    });
    R(S::futex(&f[0], FUTEX_WAKE_BITSET | priv, 1, nullptr, nullptr, 0x2));
    while ((n = S::futex(&f[0], FUTEX_WAKE_BITSET | priv, 1, nullptr, nullptr, 0x3)) == 0) std::this_thread::yield();
    b.join();
    V(n);
    V(r1.load());
    // Two waiters requeued one at a time to the second word, then woken
    // there.
    std::thread c1([&] {
      S::thread_enter();
      r1 = S::futex(&f[0], FUTEX_WAIT | priv, 0, nullptr, nullptr, 0);
      S::thread_exit();
    });
    std::thread c2([&] {
      S::thread_enter();
      r2 = S::futex(&f[0], FUTEX_WAIT | priv, 0, nullptr, nullptr, 0);
      S::thread_exit();
    });
    long moved = 0, woken = 0;
    while (moved < 2) {
      long m = S::futex_n(&f[0], FUTEX_CMP_REQUEUE | priv, 0, 1, &f[1], 0);
      if (m < 0) break;
      moved += m;
      if (m == 0) std::this_thread::yield();
    }
    V(moved);
    R(S::futex(&f[0], FUTEX_WAKE | priv, INT_MAX, nullptr, nullptr, 0));
    while (woken < 2) woken += S::futex(&f[1], FUTEX_WAKE | priv, 1, nullptr, nullptr, 0);
    c1.join();
    c2.join();
    V(woken);
    V(r1.load());
    V(r2.load());
    // WAKE_OP wakes on the first word, and on the second when the
    // comparison holds.
    std::thread d([&] {
      S::thread_enter();
      r1 = S::futex(&f[1], FUTEX_WAIT | priv, 0, nullptr, nullptr, 0);
      S::thread_exit();
    });
    while ((n = S::futex_n(&f[0], FUTEX_WAKE_OP | priv, 1, 1, &f[1], FUTEX_OP(FUTEX_OP_ADD, 0, FUTEX_OP_CMP_EQ, 0))) == 0)
      std::this_thread::yield();
    d.join();
    V(n);
    V(r1.load());
    V(f[1]);
  }
}

template <class Fn>
Log host_log(Fn fn) {
  return rump_test::host_child<Log>([fn] {
    Log L{};
    fn(L);
    return L;
  });
}

template <class Fn>
Log rump_log(Fn fn) {
  KernelUp up({.ncpu = 2});
  g_kernel = up.k;
  Kid k = fork_and_switch();
  g_pid = k.pid;
  Log L{};
  fn(L);
  return L;
}

void compare(const Log& host, const Log& rump) {
  REQUIRE(host.n == rump.n);
  for (int i = 0; i < host.n; i++) {
    INFO("entry " << i << " (line " << host.line[i] << "): host " << host.v[i] << " errno " << host.e[i] << ", rump "
                  << rump.v[i] << " errno " << rump.e[i]);
    CHECK(host.line[i] == rump.line[i]);
    CHECK(host.v[i] == rump.v[i]);
    CHECK(host.e[i] == rump.e[i]);
  }
}

}  // namespace

TEST_CASE("differential: futex errors, timeouts, requeue counts, WAKE_OP arithmetic and the robust list head as on the host",
          "[futex][differential]") {
  Log host = host_log([](Log& L) { errors_scenario<false>(L); });
  Log rump = rump_log([](Log& L) { errors_scenario<true>(L); });
  compare(host, rump);
}

TEST_CASE("differential: futex waiters woken by WAKE, WAKE_BITSET, CMP_REQUEUE and WAKE_OP as on the host",
          "[futex][differential]") {
  Log host = host_log([](Log& L) { waiters_scenario<false>(L); });
  Log rump = rump_log([](Log& L) { waiters_scenario<true>(L); });
  compare(host, rump);
  CHECK_THREADS_OK();
}

TEST_CASE("a caught signal ends a FUTEX_WAIT with EINTR", "[futex]") {
  KernelUp up({.ncpu = 2});
  Kid k = fork_and_switch();
  REQUIRE(rump_test::set_action(SIGUSR1, rump_test::kHandler) == 0);
  alignas(4) static uint32_t w = 0;
  std::thread t = rump_test::kill_later(up.k, k.pid, SIGUSR1);
  CHECK_ERRNO(EINTR, rump_sys_futex(&w, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0));
  t.join();
  CHECK_THREADS_OK();
}

TEST_CASE("an ending LWP clears its set_tid_address word and wakes a waiter sleeping there", "[futex]") {
  KernelUp up({.ncpu = 2});
  Kid k = fork_and_switch();
  alignas(4) static uint32_t tidword;
  lwp* main_lwp = rump_lwproc_curlwp();
  REQUIRE(rump_lwproc_newlwp(k.pid) == 0);
  lwp* worker = rump_lwproc_curlwp();
  pid_t tid = rump_sys_set_tid_address(reinterpret_cast<int*>(&tidword));
  __atomic_store_n(&tidword, static_cast<uint32_t>(tid), __ATOMIC_SEQ_CST);
  rump_lwproc_switch(main_lwp);
  std::atomic<bool> go{false};
  std::atomic<long> r{99};
  std::thread waiter([&] {
    rump_kernel_set_current(up.k);
    TCHECK(rump_lwproc_newlwp(k.pid) == 0);
    go = true;
    r = rump_sys_futex(&tidword, FUTEX_WAIT, static_cast<uint32_t>(tid), nullptr, nullptr, 0);
    rump_lwproc_releaselwp();
  });
  // Release the worker only once the waiter is queued: a CMP_REQUEUE of
  // the word onto itself, waking nobody, counts it without disturbing it.
  while (!go) std::this_thread::yield();
  for (;;) {
    long n = rump_sys_futex(&tidword, FUTEX_CMP_REQUEUE, 0, reinterpret_cast<const timespec*>(uintptr_t{1}), &tidword,
                            static_cast<uint32_t>(tid));
    if (n == 1) break;
    std::this_thread::yield();
  }
  rump_lwproc_switch(worker);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(main_lwp);
  waiter.join();
  CHECK_THREADS_OK();
  CHECK(tidword == 0);
  CHECK(r == 0);
}

TEST_CASE("futexes on an ending LWP's robust list get FUTEX_OWNER_DIED and a waiter is woken", "[futex]") {
  KernelUp up({.ncpu = 2});
  Kid k = fork_and_switch();
  // A lock word followed by its list entry: futex_offset = -8.
  struct Lock {
    alignas(8) uint32_t word;
    uint32_t pad;
    uintptr_t next;
  };
  static Lock held, other;
  static uintptr_t head[3];
  lwp* main_lwp = rump_lwproc_curlwp();
  REQUIRE(rump_lwproc_newlwp(k.pid) == 0);
  lwp* worker = rump_lwproc_curlwp();
  pid_t tid = rump_sys_gettid();
  held.word = static_cast<uint32_t>(tid) | FUTEX_WAITERS;
  other.word = static_cast<uint32_t>(tid + 1);  // someone else's: untouched
  head[0] = reinterpret_cast<uintptr_t>(&held.next);
  held.next = reinterpret_cast<uintptr_t>(&other.next);
  other.next = reinterpret_cast<uintptr_t>(&head[0]);
  head[1] = static_cast<uintptr_t>(-8);
  head[2] = 0;
  REQUIRE(rump_sys_set_robust_list(head, 24) == 0);
  rump_lwproc_switch(main_lwp);
  std::atomic<long> r{99};
  uint32_t seen = held.word;
  std::thread waiter([&] {
    rump_kernel_set_current(up.k);
    TCHECK(rump_lwproc_newlwp(k.pid) == 0);
    r = rump_sys_futex(&held.word, FUTEX_WAIT, seen, nullptr, nullptr, 0);
    rump_lwproc_releaselwp();
  });
  for (;;) {
    long n = rump_sys_futex(&held.word, FUTEX_CMP_REQUEUE, 0, reinterpret_cast<const timespec*>(uintptr_t{1}),
                            &held.word, seen);
    if (n == 1) break;
    std::this_thread::yield();
  }
  rump_lwproc_switch(worker);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(main_lwp);
  waiter.join();
  CHECK_THREADS_OK();
  CHECK(r == 0);
  CHECK(held.word == (FUTEX_WAITERS | FUTEX_OWNER_DIED));
  CHECK(other.word == static_cast<uint32_t>(tid + 1));
}

TEST_CASE("futex mutex: threads on both virtual CPUs count under a futex lock without losing an update",
          "[futex][concurrency]") {
  KernelUp up({.ncpu = 2});
  Kid k = fork_and_switch();
  constexpr int kThreads = 4, kRounds = 2000;
  alignas(4) static uint32_t lock_word;
  static long counter;
  lock_word = 0;
  counter = 0;
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; i++) {
    ts.emplace_back([&] {
      rump_kernel_set_current(up.k);
      TCHECK(rump_lwproc_newlwp(k.pid) == 0);
      for (int j = 0; j < kRounds; j++) {
        // Drepper's mutex: 0 free, 1 locked, 2 locked with waiters.
        uint32_t c = 0;
        if (!__atomic_compare_exchange_n(&lock_word, &c, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
          if (c != 2) c = __atomic_exchange_n(&lock_word, 2, __ATOMIC_ACQUIRE);
          while (c != 0) {
            long r = rump_sys_futex(&lock_word, FUTEX_WAIT_PRIVATE, 2, nullptr, nullptr, 0);
            TCHECK(r == 0 || errno == EAGAIN);
            c = __atomic_exchange_n(&lock_word, 2, __ATOMIC_ACQUIRE);
          }
        }
        counter++;
        if (__atomic_fetch_sub(&lock_word, 1, __ATOMIC_RELEASE) != 1) {
          __atomic_store_n(&lock_word, 0, __ATOMIC_RELEASE);
          TCHECK(rump_sys_futex(&lock_word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0) >= 0);
        }
      }
      rump_lwproc_releaselwp();
    });
  }
  for (auto& t : ts) t.join();
  CHECK_THREADS_OK();
  CHECK(counter == kThreads * kRounds);
  CHECK(lock_word == 0);
}

TEST_CASE("futex ping-pong on two virtual CPUs: every wake reaches the other side", "[futex][concurrency]") {
  KernelUp up({.ncpu = 2});
  Kid k = fork_and_switch();
  constexpr int kRounds = 3000;
  alignas(4) static uint32_t turn;
  turn = 0;
  auto player = [&](uint32_t me) {
    rump_kernel_set_current(up.k);
    TCHECK(rump_lwproc_newlwp(k.pid) == 0);
    for (int i = 0; i < kRounds; i++) {
      uint32_t t;
      while ((t = __atomic_load_n(&turn, __ATOMIC_ACQUIRE)) % 2 != me) {
        long r = rump_sys_futex(&turn, FUTEX_WAIT_PRIVATE, t, nullptr, nullptr, 0);
        TCHECK(r == 0 || errno == EAGAIN);
      }
      __atomic_fetch_add(&turn, 1, __ATOMIC_RELEASE);
      TCHECK(rump_sys_futex(&turn, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0) >= 0);
    }
    rump_lwproc_releaselwp();
  };
  std::thread a(player, 0u), b(player, 1u);
  a.join();
  b.join();
  CHECK_THREADS_OK();
  CHECK(turn == 2 * kRounds);
}

// The hand-over races: a waiter spins a little (its virtual CPU given
// back) before it sleeps, and a waker that finds it spinning hands over
// with a store. Each wake must reach exactly one waiter whatever phase
// (queueing, spinning, sleeping, timing out) the waiter is in.

TEST_CASE("timed FUTEX_WAITs racing FUTEX_WAKEs: every wake a waker counts is one waiter's 0, none lost",
          "[futex][concurrency]") {
  KernelUp up({.ncpu = 2});
  Kid k = fork_and_switch();
  constexpr int kWaits = 4000;
  alignas(4) static uint32_t word;
  word = 0;
  std::atomic<bool> done{false};
  long woke = 0, timed_out = 0, wakes = 0;
  std::thread waiter([&] {
    rump_kernel_set_current(up.k);
    TCHECK(rump_lwproc_newlwp(k.pid) == 0);
    // Timeouts inside the spin budget (20 us), about its end, and beyond.
    constexpr long kTimeoutsNs[] = {1000, 5000, 19000, 25000, 200000};
    for (int i = 0; i < kWaits; i++) {
      timespec ts{0, kTimeoutsNs[i % 5]};
      long r = rump_sys_futex(&word, FUTEX_WAIT_PRIVATE, 0, &ts, nullptr, 0);
      if (r == 0) woke++;
      else if (errno == ETIMEDOUT) timed_out++;
      else TCHECK(false);
    }
    done = true;
    rump_lwproc_releaselwp();
  });
  std::thread waker([&] {
    rump_kernel_set_current(up.k);
    TCHECK(rump_lwproc_newlwp(k.pid) == 0);
    for (unsigned i = 1; !done.load(); i++) {
      long n = rump_sys_futex(&word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
      TCHECK(n == 0 || n == 1);
      if (n > 0) wakes += n;
      // Pauses of varying length, so that wakes land in every phase.
      for (unsigned j = 0; j < (i * 2654435761u) % 4096; j++) __asm__ volatile("" ::: "memory");
    }
    rump_lwproc_releaselwp();
  });
  waiter.join();
  waker.join();
  CHECK_THREADS_OK();
  CHECK(woke + timed_out == kWaits);
  CHECK(wakes == woke);
}

// Sleepers are unparked after the waker dropped the bucket lock, through
// a reference to their LWP's Parker: a waiter may have returned and its
// LWP gone by then. Many waiters (more than a waker's inline list holds)
// on LWPs made and released around every wait, woken in bulk.
TEST_CASE("bulk FUTEX_WAKEs of waiters on short-lived LWPs: every wake counted is one waiter's 0",
          "[futex][concurrency]") {
  KernelUp up({.ncpu = 2});
  Kid k = fork_and_switch();
  constexpr int kWaiters = 12, kWaits = 150;
  alignas(4) static uint32_t word;
  word = 0;
  std::atomic<int> done{0};
  std::atomic<long> woke{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < kWaiters; i++) {
    ts.emplace_back([&] {
      rump_kernel_set_current(up.k);
      for (int j = 0; j < kWaits; j++) {
        TCHECK(rump_lwproc_newlwp(k.pid) == 0);
        uint32_t v = __atomic_load_n(&word, __ATOMIC_ACQUIRE);
        long r = rump_sys_futex(&word, FUTEX_WAIT_PRIVATE, v, nullptr, nullptr, 0);
        if (r == 0) woke++;
        else TCHECK(errno == EAGAIN);
        rump_lwproc_releaselwp();
      }
      done++;
    });
  }
  long wakes = 0;
  rump_kernel_set_current(up.k);
  while (done.load() < kWaiters) {
    __atomic_fetch_add(&word, 1, __ATOMIC_RELEASE);
    long n = rump_sys_futex(&word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
    TCHECK(n >= 0 && n <= kWaiters);
    if (n > 0) wakes += n;
  }
  for (auto& t : ts) t.join();
  CHECK_THREADS_OK();
  CHECK(wakes == woke.load());
}

TEST_CASE("a FUTEX_WAIT timing out inside its spin is ETIMEDOUT, never before its deadline", "[futex][concurrency]") {
  KernelUp up({.ncpu = 2});
  Kid k = fork_and_switch();
  alignas(4) static uint32_t word = 0;
  for (long ns : {2000L, 10000L, 15000L}) {
    for (int i = 0; i < 20; i++) {
      timespec before, after;
      clock_gettime(CLOCK_MONOTONIC, &before);
      timespec ts{0, ns};
      CHECK_ERRNO(ETIMEDOUT, rump_sys_futex(&word, FUTEX_WAIT_PRIVATE, 0, &ts, nullptr, 0));
      clock_gettime(CLOCK_MONOTONIC, &after);
      long waited = (after.tv_sec - before.tv_sec) * 1000000000L + (after.tv_nsec - before.tv_nsec);
      CHECK(waited >= ns);
    }
  }
}

TEST_CASE("futex ping-pong with signals sent to one player: each wait is a wake, EAGAIN or EINTR, no turn lost",
          "[futex][concurrency]") {
  KernelUp up({.ncpu = 2});
  Kid k = fork_and_switch();
  REQUIRE(rump_test::set_action(SIGUSR1, rump_test::kHandler) == 0);
  constexpr int kRounds = 3000;
  alignas(4) static uint32_t turn;
  turn = 0;
  std::atomic<pid_t> target{0};
  std::atomic<bool> done{false};
  std::atomic<long> eintr{0};
  std::atomic<bool> target_leaving{false};
  auto player = [&](uint32_t me) {
    rump_kernel_set_current(up.k);
    TCHECK(rump_lwproc_newlwp(k.pid) == 0);
    if (me == 1) target = static_cast<pid_t>(rump_sys_gettid());
    for (int i = 0; i < kRounds; i++) {
      uint32_t t;
      while ((t = __atomic_load_n(&turn, __ATOMIC_ACQUIRE)) % 2 != me) {
        long r = rump_sys_futex(&turn, FUTEX_WAIT_PRIVATE, t, nullptr, nullptr, 0);
        TCHECK(r == 0 || errno == EAGAIN || errno == EINTR);
        if (r != 0 && errno == EINTR) eintr++;
      }
      __atomic_fetch_add(&turn, 1, __ATOMIC_RELEASE);
      TCHECK(rump_sys_futex(&turn, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0) >= 0);
    }
    if (me == 1) target_leaving = true;
    rump_lwproc_releaselwp();
  };
  std::thread sender([&] {
    rump_kernel_set_current(up.k);
    TCHECK(rump_lwproc_newlwp(k.pid) == 0);
    uint64_t all = ~uint64_t{0};
    rump_sys_rt_sigprocmask(SIG_BLOCK, reinterpret_cast<sigset_t*>(&all), nullptr, 8);
    while (!done.load()) {
      // ESRCH only once the target's LWP is going.
      if (pid_t t = target.load()) TCHECK(rump_sys_tkill(t, SIGUSR1) == 0 || (errno == ESRCH && target_leaving));
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    rump_lwproc_releaselwp();
  });
  std::thread a(player, 0u), b(player, 1u);
  a.join();
  b.join();
  done = true;
  sender.join();
  CHECK_THREADS_OK();
  CHECK(turn == 2 * kRounds);
  INFO("waits ended by a signal: " << eintr.load());
}

TEST_CASE("halting a kernel while an LWP waits in FUTEX_WAIT ends the wait and the halt completes",
          "[futex][concurrency]") {
  int ended = 0;
  for (int round = 0; round < 40; round++) {
    rump_boot_config c;
    rump_boot_config_init(&c);
    c.ncpu = 2;
    rump_kernel* kk = nullptr;
    REQUIRE(rump_kernel_boot(&c, &kk) == 0);
    rump_kernel_set_current(kk);
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    pid_t pid = rump_sys_getpid();
    rump_lwproc_switch(nullptr);
    alignas(4) static uint32_t word;
    word = 0;
    std::atomic<bool> queued{false};
    std::atomic<long> r{99};
    std::atomic<int> e{0};
    std::thread waiter([&] {
      rump_kernel_set_current(kk);
      TCHECK(rump_lwproc_newlwp(pid) == 0);
      queued = true;
      r = rump_sys_futex(&word, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
      e = errno;
      // The kernel is gone: the thread leaves without calling in again.
    });
    // Halt right after the waiter started (it spins then) or a little
    // later (it sleeps).
    while (!queued) std::this_thread::yield();
    if (round % 2) std::this_thread::sleep_for(std::chrono::microseconds(200));
    rump_kernel_set_current(nullptr);
    CHECK(rump_kernel_halt(kk) == 0);
    waiter.join();
    CHECK(r == -1);
    // EINTR: the wait ended. A halt that won the race with the call
    // leaves the thread no kernel to enter: ENOSYS, as for any thread
    // without one.
    CHECK((e == EINTR || e == ENOSYS));
    if (e == EINTR) ended++;
  }
  CHECK(ended > 0);
  CHECK_THREADS_OK();
}
