// Waiting for and queueing signals: rt_sigtimedwait, rt_sigqueueinfo,
// rt_tgsigqueueinfo, tkill, tgkill, rt_sigsuspend, pause and sigaltstack.
// Differential scenarios run the same code against the host kernel (in a
// forked child) and a rump process; rump-only cases cover what needs
// several LWPs of one process.
#include <pthread.h>
#include <sys/resource.h>

#include <atomic>
#include <thread>

#include "sig_diff.h"

namespace {

using sig_test::bit;
using sig_test::K;
using sig_test::KSigaction;
using sig_test::Log;
using sig_test::queue_info;
using sig_test::RepeatSender;

template <class S>
long self_pid() {
  return SYS(getpid);
}
template <class S>
long self_tid() {
  return SYS(gettid);
}
template <class S>
long set_mask(int how, uint64_t set, uint64_t* old = nullptr) {
  return SYS(rt_sigprocmask, how, reinterpret_cast<sigset_t*>(&set), reinterpret_cast<sigset_t*>(old), 8);
}
template <class S>
long set_action(int sig, uintptr_t handler) {
  KSigaction a{handler, 0, 0, 0};
  return SYS(rt_sigaction, sig, &a, nullptr, 8);
}
void noop_handler(int) {}
// A caught signal: a real handler on the host, a token address in rump
// (handlers don't run there; delivery consumes the signal).
template <class S>
long set_handler(int sig) {
  if (S::kRump) return set_action<S>(sig, 0x1000);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = noop_handler;
  return sigaction(sig, &sa, nullptr);
}
template <class S>
uint64_t pending() {
  uint64_t p = 0;
  SYS(rt_sigpending, reinterpret_cast<sigset_t*>(&p), 8);
  return p;
}
// rt_sigtimedwait for set with a zero timeout, logging what it took.
template <class S>
long take(Log& L, int line, uint64_t set, siginfo_t* out = nullptr) {
  siginfo_t si;
  std::memset(&si, 0xa5, sizeof si);
  timespec zero{0, 0};
  errno = 0;
  long r = SYS(rt_sigtimedwait, reinterpret_cast<sigset_t*>(&set), &si, &zero, 8);
  if (r < 0) {
    L.add(line, "take = -1 errno %d", errno);
    return r;
  }
  long pid = self_pid<S>();
  long uid = SYS(getuid);
  char ubuf[16];
  snprintf(ubuf, sizeof ubuf, "%u", si.si_uid);
  L.add(line, "take = %ld signo %d code %d errno %d pid %s uid %s int %d", r, si.si_signo, si.si_code, si.si_errno,
        si.si_pid == pid ? "self" : si.si_pid == 0 ? "0" : "other",
        static_cast<long>(si.si_uid) == uid && uid != 0 ? "me" : ubuf, si.si_value.sival_int);
  if (out) *out = si;
  return r;
}
#define TAKE(set) take<S>(L, __LINE__, set)

constexpr int kRt = 40;  // a real-time signal (the kernel's SIGRTMIN is 32)

template <class S>
void sc_sigtimedwait(Log& L) {
  uint64_t set = bit(SIGUSR1) | bit(SIGUSR2) | bit(SIGSEGV) | bit(kRt) | bit(SIGCHLD);
  R(set_mask<S>(SIG_BLOCK, set));
  long me = self_pid<S>();
  // Nothing pending: a zero timeout is EAGAIN at once; a short one expires.
  TAKE(set);
  timespec ms{0, 1000 * 1000};
  R(SYS(rt_sigtimedwait, reinterpret_cast<sigset_t*>(&set), nullptr, &ms, 8));
  timespec bad{0, 1000 * 1000 * 1000};
  R(SYS(rt_sigtimedwait, reinterpret_cast<sigset_t*>(&set), nullptr, &bad, 8));
  timespec neg{-1, 0};
  R(SYS(rt_sigtimedwait, reinterpret_cast<sigset_t*>(&set), nullptr, &neg, 8));
  timespec zero{0, 0};
  R(SYS(rt_sigtimedwait, reinterpret_cast<sigset_t*>(&set), nullptr, &zero, 4));
  R(SYS(rt_sigtimedwait, reinterpret_cast<sigset_t*>(&set), nullptr, &zero, 16));
  // kill: SI_USER from this process. A standard signal is queued once.
  R(SYS(kill, me, SIGUSR1));
  R(SYS(kill, me, SIGUSR1));
  V("pending %#llx", static_cast<unsigned long long>(pending<S>()));
  TAKE(set);
  TAKE(set);
  // Real-time signals queue every instance, in order, with their values.
  for (int v : {7, 8, 9}) {
    siginfo_t si = queue_info(SI_QUEUE, static_cast<pid_t>(me), 0, v);
    R(SYS(rt_sigqueueinfo, me, kRt, &si));
  }
  R(SYS(kill, me, kRt));
  // Faults first, then the lowest number.
  R(SYS(kill, me, SIGUSR2));
  R(SYS(kill, me, SIGSEGV));
  V("pending %#llx", static_cast<unsigned long long>(pending<S>()));
  for (int i = 0; i < 7; i++) TAKE(set);
  // Only signals of the set are taken; SIGKILL in the set is ignored.
  R(SYS(kill, me, SIGUSR2));
  TAKE(bit(SIGUSR1) | bit(SIGKILL) | bit(SIGSTOP));
  TAKE(bit(SIGUSR2));
  // A blocked default-ignored signal is kept for the wait; an unblocked
  // one is dropped when sent.
  R(SYS(kill, me, SIGCHLD));
  TAKE(bit(SIGCHLD));
  R(set_mask<S>(SIG_UNBLOCK, bit(SIGCHLD)));
  R(SYS(kill, me, SIGCHLD));
  R(set_mask<S>(SIG_BLOCK, bit(SIGCHLD)));
  TAKE(bit(SIGCHLD));
  // A blocked signal with SIG_IGN is kept too, and setting SIG_IGN again
  // discards it (pending or not).
  R(set_action<S>(SIGUSR1, 1));
  R(SYS(kill, me, SIGUSR1));
  V("pending %#llx", static_cast<unsigned long long>(pending<S>()));
  R(set_action<S>(SIGUSR1, 1));
  V("pending %#llx", static_cast<unsigned long long>(pending<S>()));
  R(set_action<S>(SIGUSR1, 0));
  // A NULL info is fine.
  R(SYS(kill, me, SIGUSR2));
  R(SYS(rt_sigtimedwait, reinterpret_cast<sigset_t*>(&set), nullptr, &zero, 8));
}

template <class S>
void sc_sigqueueinfo(Log& L) {
  R(set_mask<S>(SIG_BLOCK, bit(SIGUSR1) | bit(SIGUSR2) | bit(kRt)));
  long me = self_pid<S>();
  long uid = SYS(getuid);
  // To another process: only negative codes other than SI_TKILL. Those
  // checks come before the target is looked up.
  for (int code : {int{SI_USER}, int{SI_TKILL}, int{SI_KERNEL}, 1}) {
    siginfo_t si = queue_info(code, 0, 0, 0);
    R(SYS(rt_sigqueueinfo, 999999, SIGUSR1, &si));
    R(SYS(rt_tgsigqueueinfo, 999999, 999999, SIGUSR1, &si));
  }
  siginfo_t q = queue_info(SI_QUEUE, static_cast<pid_t>(me), static_cast<uid_t>(uid), 5);
  R(SYS(rt_sigqueueinfo, 999999, SIGUSR1, &q));
  R(SYS(rt_tgsigqueueinfo, 999999, 999999, SIGUSR1, &q));
  R(SYS(rt_sigqueueinfo, 0, SIGUSR1, &q));
  R(SYS(rt_sigqueueinfo, -1, SIGUSR1, &q));
  // Bad signals are EINVAL once the target is found; 0 is a probe.
  R(SYS(rt_sigqueueinfo, me, 65, &q));
  R(SYS(rt_sigqueueinfo, me, 0, &q));
  R(SYS(rt_sigqueueinfo, me, SIGUSR1, nullptr));
  R(SYS(rt_tgsigqueueinfo, 0, me, SIGUSR1, &q));
  R(SYS(rt_tgsigqueueinfo, me, 0, SIGUSR1, &q));
  R(SYS(rt_tgsigqueueinfo, me, -5, SIGUSR1, &q));
  R(SYS(rt_tgsigqueueinfo, me + 999999, self_tid<S>(), SIGUSR1, &q));
  // To itself, any code goes through, as given (si_signo is the signal).
  siginfo_t odd = queue_info(SI_USER, 4242, 77, 3);
  odd.si_signo = 12345;
  R(SYS(rt_sigqueueinfo, me, SIGUSR2, &odd));
  TAKE(bit(SIGUSR2));
  siginfo_t pos = queue_info(3, 0, 0, 0);
  R(SYS(rt_tgsigqueueinfo, me, self_tid<S>(), SIGUSR2, &pos));
  TAKE(bit(SIGUSR2));
  R(SYS(rt_sigqueueinfo, me, SIGUSR1, &q));
  TAKE(bit(SIGUSR1));
  // An unknown code needs the rest of the siginfo zero (E2BIG).
  siginfo_t unk = queue_info(-100, 0, 0, 0);
  R(SYS(rt_sigqueueinfo, me, SIGUSR1, &unk));
  TAKE(bit(SIGUSR1));
  reinterpret_cast<unsigned char*>(&unk)[100] = 1;
  R(SYS(rt_sigqueueinfo, me, SIGUSR1, &unk));
  // RLIMIT_SIGPENDING: a real-time signal from sigqueue that can't be
  // queued is EAGAIN; kill's still arrives, without its record.
  rlimit old, zero;
  R(SYS(getrlimit, RLIMIT_SIGPENDING, &old));
  zero.rlim_cur = 0;
  zero.rlim_max = old.rlim_max;
  R(SYS(setrlimit, RLIMIT_SIGPENDING, &zero));
  R(SYS(rt_sigqueueinfo, me, kRt, &q));
  R(SYS(kill, me, kRt));
  R(SYS(rt_sigqueueinfo, me, SIGUSR1, &q));  // a standard one: arrives, record lost
  TAKE(bit(kRt));
  TAKE(bit(SIGUSR1));
  R(SYS(setrlimit, RLIMIT_SIGPENDING, &old));
  R(SYS(rt_sigqueueinfo, me, kRt, &q));
  TAKE(bit(kRt));
}

template <class S>
void sc_tkill(Log& L) {
  R(set_mask<S>(SIG_BLOCK, bit(SIGUSR1) | bit(SIGUSR2)));
  long me = self_pid<S>();
  long tid = self_tid<S>();
  R(SYS(tkill, 0, SIGUSR1));
  R(SYS(tkill, -1, SIGUSR1));
  R(SYS(tgkill, 0, tid, SIGUSR1));
  R(SYS(tgkill, me, 0, SIGUSR1));
  R(SYS(tgkill, -1, tid, SIGUSR1));
  R(SYS(tkill, 999999, SIGUSR1));
  R(SYS(tgkill, 999999, tid, SIGUSR1));
  R(SYS(tgkill, me, 999999, SIGUSR1));
  R(SYS(tkill, tid, 65));
  R(SYS(tkill, tid, -1));
  R(SYS(tkill, tid, 0));
  R(SYS(tgkill, me, tid, 0));
  R(SYS(tkill, tid, SIGUSR1));
  R(SYS(tgkill, me, tid, SIGUSR2));
  V("pending %#llx", static_cast<unsigned long long>(pending<S>()));
  TAKE(bit(SIGUSR1) | bit(SIGUSR2));
  TAKE(bit(SIGUSR1) | bit(SIGUSR2));
  TAKE(bit(SIGUSR1) | bit(SIGUSR2));
}

template <class S>
void sc_sigsuspend(Log& L) {
  long me = self_pid<S>();
  R(set_handler<S>(SIGUSR1));
  R(set_mask<S>(SIG_BLOCK, bit(SIGUSR1)));
  R(SYS(kill, me, SIGUSR1));
  uint64_t none = 0;
  R(SYS(rt_sigsuspend, reinterpret_cast<sigset_t*>(&none), 4));
  R(SYS(rt_sigsuspend, reinterpret_cast<sigset_t*>(&none), 16));
  R(SYS(rt_sigsuspend, nullptr, 8));
  // The pending signal gets through the temporary mask: EINTR, delivered,
  // and the old mask is back.
  R(SYS(rt_sigsuspend, reinterpret_cast<sigset_t*>(&none), 8));
  V("pending %#llx", static_cast<unsigned long long>(pending<S>()));
  uint64_t cur = 0;
  R(set_mask<S>(SIG_BLOCK, 0, &cur));
  V("mask %#llx", static_cast<unsigned long long>(cur));
}

template <class S>
void sc_sigaltstack(Log& L) {
  static char buf1[16384], buf2[4096];
  auto show = [&](int line) {
    stack_t o;
    std::memset(&o, 0x5a, sizeof o);
    long r = SYS(sigaltstack, nullptr, &o);
    L.add(line, "query = %ld sp %s size %zu flags %#x", r,
          o.ss_sp == nullptr ? "null" : o.ss_sp == buf1 ? "buf1" : o.ss_sp == buf2 ? "buf2" : "other", o.ss_size,
          o.ss_flags);
  };
  // (The host child may have inherited the test runner's stack.)
  stack_t d{nullptr, SS_DISABLE, 0};
  R(SYS(sigaltstack, &d, nullptr));
  show(__LINE__);
  R(SYS(sigaltstack, &d, nullptr));  // no change
  stack_t z{nullptr, 0, 0};
  R(SYS(sigaltstack, &z, nullptr));
  stack_t s{buf1, 0, 2047};
  R(SYS(sigaltstack, &s, nullptr));
  show(__LINE__);
  s.ss_size = 2048;
  R(SYS(sigaltstack, &s, nullptr));
  show(__LINE__);
  s = stack_t{buf2, 4, sizeof buf2};
  R(SYS(sigaltstack, &s, nullptr));
  s.ss_flags = SS_ONSTACK;
  stack_t o;
  std::memset(&o, 0, sizeof o);
  R(SYS(sigaltstack, &s, &o));
  V("old size %zu flags %#x", o.ss_size, o.ss_flags);
  show(__LINE__);
  s = stack_t{buf1, static_cast<int>(1u << 31), sizeof buf1};  // SS_AUTODISARM
  R(SYS(sigaltstack, &s, nullptr));
  show(__LINE__);
  s = stack_t{buf2, SS_DISABLE, 12};
  R(SYS(sigaltstack, &s, nullptr));
  show(__LINE__);
  s = stack_t{buf2, SS_DISABLE | 8, 12};
  R(SYS(sigaltstack, &s, nullptr));
}

// A thread running on the alternate stack it registers: the next change
// is EPERM and a query says SS_ONSTACK.
template <class S>
void on_altstack_body(Log& L, char* stack, size_t size) {
  stack_t s{stack, 0, size};
  R(SYS(sigaltstack, &s, nullptr));
  stack_t o;
  std::memset(&o, 0, sizeof o);
  R(SYS(sigaltstack, nullptr, &o));
  V("flags %#x size %zu", o.ss_flags, o.ss_size);
  stack_t d{nullptr, SS_DISABLE, 0};
  R(SYS(sigaltstack, &d, nullptr));
  // With SS_AUTODISARM the stack is not considered in use (Linux).
}

template <class S>
void sc_on_altstack(Log& L) {
  constexpr size_t kSize = 256 * 1024;
  static char stack[kSize] __attribute__((aligned(64)));
  struct Arg {
    Log* L;
    lwp* l;
    rump_kernel* k;
  } arg{&L, nullptr, nullptr};
  if (S::kRump) {
    arg.k = rump_kernel_current();
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, stack, kSize);
  pthread_t t;
  pid_t pid = static_cast<pid_t>(self_pid<S>());
  static pid_t s_pid;
  s_pid = pid;
  auto body = [](void* p) -> void* {
    Arg* a = static_cast<Arg*>(p);
    if (S::kRump) {
      rump_kernel_set_current(a->k);
      if (rump_lwproc_newlwp(s_pid) != 0) return nullptr;
    }
    on_altstack_body<S>(*a->L, stack, kSize);
    if (S::kRump) rump_lwproc_releaselwp();
    return nullptr;
  };
  int r = pthread_create(&t, &attr, body, &arg);
  if (r == 0) pthread_join(t, nullptr);
  V("pthread_create %d", r);
  pthread_attr_destroy(&attr);
}

}  // namespace

TEST_CASE("signal diff: rt_sigtimedwait polls, times out, dequeues in Linux's order with the sender's info",
          "[signal][diff]") {
  DIFF(sc_sigtimedwait);
}
TEST_CASE("signal diff: rt_sigqueueinfo/rt_tgsigqueueinfo codes, EPERM, EINVAL, ESRCH, E2BIG, EAGAIN",
          "[signal][diff]") {
  DIFF(sc_sigqueueinfo);
}
TEST_CASE("signal diff: tkill and tgkill errors and SI_TKILL", "[signal][diff]") { DIFF(sc_tkill); }
TEST_CASE("signal diff: rt_sigsuspend lets a pending signal through and restores the mask", "[signal][diff]") {
  DIFF(sc_sigsuspend);
}
TEST_CASE("signal diff: sigaltstack validation (SS_DISABLE, MINSIGSTKSZ, flags)", "[signal][diff]") {
  DIFF(sc_sigaltstack);
}
TEST_CASE("signal diff: sigaltstack from a thread running on the alternate stack is EPERM", "[signal][diff]") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The host side cannot run under a sanitizer: its runtime unsets each
  // thread's alternate stack at thread exit, which the host refuses (EPERM)
  // for a thread whose whole stack is its alternate stack, and aborts.
  WARN("host side not runnable under a sanitizer's runtime");
  return;
#endif
  DIFF(sc_on_altstack);
}

TEST_CASE("tkill is for that LWP alone: only it dequeues the signal", "[signal]") {
  rump_test::KernelUp up;
  [[maybe_unused]] rump_test::Kid p = rump_test::fork_and_switch();
  uint64_t set = bit(SIGUSR1);
  REQUIRE(rump_sys_rt_sigprocmask(SIG_BLOCK, reinterpret_cast<sigset_t*>(&set), nullptr, 8) == 0);
  std::atomic<pid_t> tid{0};
  std::atomic<int> phase{0};
  std::atomic<long> got{0}, pend_other{-1};
  std::thread t([&] {
    rump_kernel_set_current(up.k);
    if (rump_lwproc_newlwp(p.pid) != 0) return;
    uint64_t s = bit(SIGUSR1);
    rump_sys_rt_sigprocmask(SIG_BLOCK, reinterpret_cast<sigset_t*>(&s), nullptr, 8);
    tid = rump_sys_gettid();
    while (phase.load() != 1) usleep(100);
    uint64_t pend = 0;
    rump_sys_rt_sigpending(reinterpret_cast<sigset_t*>(&pend), 8);
    pend_other = static_cast<long>(pend);
    siginfo_t si;
    timespec zero{0, 0};
    got = rump_sys_rt_sigtimedwait(reinterpret_cast<sigset_t*>(&s), &si, &zero, 8);
    if (got > 0 && si.si_code != SI_TKILL) got = -100;
    rump_lwproc_releaselwp();
  });
  while (tid.load() == 0) usleep(100);
  REQUIRE(rump_sys_tgkill(p.pid, tid.load(), SIGUSR1) == 0);
  // Not pending for this LWP, not dequeued by it.
  uint64_t pend = 1;
  REQUIRE(rump_sys_rt_sigpending(reinterpret_cast<sigset_t*>(&pend), 8) == 0);
  CHECK(pend == 0);
  siginfo_t si;
  timespec zero{0, 0};
  CHECK_ERRNO(EAGAIN, rump_sys_rt_sigtimedwait(reinterpret_cast<sigset_t*>(&set), &si, &zero, 8));
  phase = 1;
  t.join();
  CHECK(pend_other == static_cast<long>(bit(SIGUSR1)));
  CHECK(got == SIGUSR1);
}

TEST_CASE("rt_sigtimedwait wakes for a signal sent by another LWP while it waits", "[signal][concurrency]") {
  rump_test::KernelUp up;
  [[maybe_unused]] rump_test::Kid p = rump_test::fork_and_switch();
  uint64_t set = bit(SIGUSR1) | bit(kRt);
  REQUIRE(rump_sys_rt_sigprocmask(SIG_BLOCK, reinterpret_cast<sigset_t*>(&set), nullptr, 8) == 0);
  pid_t me = rump_sys_getpid();
  pid_t waiter_tid = rump_sys_gettid();
  // The sender keeps queueing until the waiter got one.
  siginfo_t q = queue_info(SI_QUEUE, me, 0, 99);
  RepeatSender sender(up.k, me, false, [&] { rump_sys_rt_tgsigqueueinfo(me, waiter_tid, kRt, &q); });
  siginfo_t si;
  std::memset(&si, 0, sizeof si);
  long r = rump_sys_rt_sigtimedwait(reinterpret_cast<sigset_t*>(&set), &si, nullptr, 8);
  sender.stop();
  CHECK(r == kRt);
  CHECK(si.si_code == SI_QUEUE);
  CHECK(si.si_value.sival_int == 99);
  CHECK(si.si_pid == me);
}

TEST_CASE("rt_sigtimedwait is EINTR for a caught signal outside its set", "[signal][concurrency]") {
  rump_test::KernelUp up;
  [[maybe_unused]] rump_test::Kid p = rump_test::fork_and_switch();
  REQUIRE(rump_test::set_action(SIGUSR2, rump_test::kHandler) == 0);
  uint64_t set = bit(SIGUSR1);
  REQUIRE(rump_sys_rt_sigprocmask(SIG_BLOCK, reinterpret_cast<sigset_t*>(&set), nullptr, 8) == 0);
  pid_t me = rump_sys_getpid();
  pid_t waiter = rump_sys_gettid();
  RepeatSender sender(up.k, me, true, [&] { rump_sys_tkill(waiter, SIGUSR2); });
  long r = rump_sys_rt_sigtimedwait(reinterpret_cast<sigset_t*>(&set), nullptr, nullptr, 8);
  int e = errno;
  sender.stop();
  CHECK(r == -1);
  CHECK(e == EINTR);
  CHECK(rump_sys_getpid() == me);  // caught, not fatal
}

TEST_CASE("pause returns EINTR once a caught signal arrives", "[signal][concurrency]") {
  rump_test::KernelUp up;
  [[maybe_unused]] rump_test::Kid p = rump_test::fork_and_switch();
  REQUIRE(rump_test::set_action(SIGUSR1, rump_test::kHandler) == 0);
  pid_t me = rump_sys_getpid();
  RepeatSender sender(up.k, me, true, [&] { rump_sys_kill(me, SIGUSR1); });
  long r = rump_sys_pause();
  int e = errno;
  sender.stop();
  CHECK(r == -1);
  CHECK(e == EINTR);
}

TEST_CASE("a signal to a process waiting in rt_sigsuspend with the signal unblocked ends the wait", "[signal][concurrency]") {
  rump_test::KernelUp up;
  [[maybe_unused]] rump_test::Kid p = rump_test::fork_and_switch();
  REQUIRE(rump_test::set_action(SIGUSR1, rump_test::kHandler) == 0);
  uint64_t set = bit(SIGUSR1);
  REQUIRE(rump_sys_rt_sigprocmask(SIG_BLOCK, reinterpret_cast<sigset_t*>(&set), nullptr, 8) == 0);
  pid_t me = rump_sys_getpid();
  RepeatSender sender(up.k, me, true, [&] { rump_sys_kill(me, SIGUSR1); });
  uint64_t none = 0;
  long r = rump_sys_rt_sigsuspend(reinterpret_cast<sigset_t*>(&none), 8);
  int e = errno;
  sender.stop();
  CHECK(r == -1);
  CHECK(e == EINTR);
  uint64_t cur = 0;
  REQUIRE(rump_sys_rt_sigprocmask(SIG_BLOCK, nullptr, reinterpret_cast<sigset_t*>(&cur), 8) == 0);
  CHECK(cur == bit(SIGUSR1));
}

TEST_CASE("libc's forms: rump_sys_sigtimedwait, rump_sys_sigwaitinfo, rump_sys_sigsuspend take a sigset_t",
          "[signal]") {
  rump_test::KernelUp up;
  [[maybe_unused]] rump_test::Kid p = rump_test::fork_and_switch();
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  sigaddset(&s, SIGRTMIN + 1);
  REQUIRE(rump_sys_rt_sigprocmask(SIG_BLOCK, &s, nullptr, 8) == 0);
  timespec zero{0, 0};
  CHECK_ERRNO(EAGAIN, rump_sys_sigtimedwait(&s, nullptr, &zero));
  pid_t me = rump_sys_getpid();
  REQUIRE(rump_sys_kill(me, SIGRTMIN + 1) == 0);
  siginfo_t si;
  CHECK(rump_sys_sigwaitinfo(&s, &si) == SIGRTMIN + 1);
  CHECK(si.si_code == SI_USER);
  CHECK(si.si_pid == me);
  REQUIRE(rump_test::set_action(SIGUSR1, rump_test::kHandler) == 0);
  REQUIRE(rump_sys_kill(me, SIGUSR1) == 0);
  sigset_t none;
  sigemptyset(&none);
  CHECK_ERRNO(EINTR, rump_sys_sigsuspend(&none));
}

TEST_CASE("SIGCHLD carries CLD_EXITED or CLD_KILLED with the child's pid, uid and status", "[signal]") {
  rump_test::KernelUp up;
  rump_test::Kid p = rump_test::fork_and_switch();
  uint64_t set = bit(SIGCHLD);
  REQUIRE(rump_sys_rt_sigprocmask(SIG_BLOCK, reinterpret_cast<sigset_t*>(&set), nullptr, 8) == 0);
  rump_test::Kid a = rump_test::fork_kid();
  REQUIRE(rump_test::as(a.l, [] { return rump_sys_setuid(1234); }) == 0);
  rump_test::as(a.l, [] { return rump_sys_exit(7); });
  siginfo_t si;
  timespec zero{0, 0};
  REQUIRE(rump_sys_rt_sigtimedwait(reinterpret_cast<sigset_t*>(&set), &si, &zero, 8) == SIGCHLD);
  CHECK(si.si_code == CLD_EXITED);
  CHECK(si.si_pid == a.pid);
  CHECK(si.si_uid == 1234u);
  CHECK(si.si_status == 7);
  rump_test::Kid b = rump_test::fork_kid();
  REQUIRE(rump_sys_kill(b.pid, SIGTERM) == 0);
  REQUIRE(rump_sys_rt_sigtimedwait(reinterpret_cast<sigset_t*>(&set), &si, &zero, 8) == SIGCHLD);
  CHECK(si.si_code == CLD_KILLED);
  CHECK(si.si_pid == b.pid);
  CHECK(si.si_status == SIGTERM);
  int st;
  CHECK(rump_sys_wait4(a.pid, &st, 0, nullptr) == a.pid);
  CHECK(rump_sys_wait4(b.pid, &st, 0, nullptr) == b.pid);
  (void)p;
}
