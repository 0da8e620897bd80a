// Kernel services: sysctl (by name and MIB), time, identity, getrandom,
// reboot, callouts and kernel threads, boot/halt memory.
#include <rump/rump.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "kern/callout.h"
#include "kern/curlwp.h"
#include "kern/kernel.h"
#include "kern/kthread.h"
#include "kern/sysctl.h"
#include "rump_test.h"

namespace {

void* const kBad = reinterpret_cast<void*>(8);

// A kernel for one test, current for the calling thread.
using rump_test::KernelUp;

// The kernels here have 2 CPUs and the host name "svc-test" unless a test
// says otherwise.
constexpr rump_test::BootOpts kSvc{.ncpu = 2, .hostname = "svc-test"};

rump::Kernel& kernel_of(const KernelUp& up) { return *reinterpret_cast<rump::Kernel*>(up.k); }

int64_t host_mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Runs as a process other than init with uid 1000 until destroyed.
struct NonRoot {
  NonRoot() {
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
    REQUIRE(rump_sys_setuid(1000) == 0);
  }
  ~NonRoot() { rump_lwproc_releaselwp(); }
};

int sysctl_int(const char* name) {
  int v = -1;
  size_t len = sizeof v;
  REQUIRE(rump_sys_sysctlbyname(name, &v, &len, nullptr, 0) == 0);
  REQUIRE(len == sizeof v);
  return v;
}

int sysctl_int_mib(std::initializer_list<int> mib) {
  int v = -1;
  size_t len = sizeof v;
  REQUIRE(rump_sys___sysctl(mib.begin(), mib.size(), &v, &len, nullptr, 0) == 0);
  REQUIRE(len == sizeof v);
  return v;
}

std::string sysctl_str(const char* name) {
  char buf[20000];
  size_t len = sizeof buf;
  REQUIRE(rump_sys_sysctlbyname(name, buf, &len, nullptr, 0) == 0);
  REQUIRE(len >= 1);
  REQUIRE(buf[len - 1] == '\0');
  return std::string(buf);
}

std::string sysctl_str_mib(std::initializer_list<int> mib) {
  char buf[20000];
  size_t len = sizeof buf;
  REQUIRE(rump_sys___sysctl(mib.begin(), mib.size(), buf, &len, nullptr, 0) == 0);
  return std::string(buf);
}

int set_int(const char* name, int v) {
  return rump_sys_sysctlbyname(name, nullptr, nullptr, &v, sizeof v) == 0 ? 0 : errno;
}

int set_str(const char* name, const char* s) {
  return rump_sys_sysctlbyname(name, nullptr, nullptr, s, std::strlen(s)) == 0 ? 0 : errno;
}


// Each test runs on a fresh host thread (rump_test::on_fresh_thread).
using rump_test::on_fresh_thread;

#define SVC_CAT2(a, b) a##b
#define SVC_CAT(a, b) SVC_CAT2(a, b)
#define SVC_TEST_IMPL(fn, name, tags)                   \
  static void fn();                                     \
  TEST_CASE(name, tags) { on_fresh_thread(fn); }        \
  static void fn()
#define SVC_TEST(name, tags) SVC_TEST_IMPL(SVC_CAT(svc_test_body_, __LINE__), name, tags)

}  // namespace

using namespace rump;

SVC_TEST("sysctl hw nodes by name and MIB", "[sysctl]") {
  KernelUp tk({.ncpu = 3, .hostname = "svc-test"});
  CHECK(sysctl_int("hw.ncpu") == 3);
  CHECK(sysctl_int_mib({CTL_HW, HW_NCPU}) == 3);
  CHECK(sysctl_int("hw.pagesize") == 4096);
  CHECK(sysctl_int_mib({CTL_HW, HW_PAGESIZE}) == 4096);
  int v = 5;
  CHECK(rump_sys_sysctlbyname("hw.ncpu", nullptr, nullptr, &v, sizeof v) == -1);
  CHECK(errno == EPERM);
  int mib[] = {CTL_HW, HW_PAGESIZE};
  CHECK(rump_sys___sysctl(mib, 2, nullptr, nullptr, &v, sizeof v) == -1);
  CHECK(errno == EPERM);
}

SVC_TEST("sysctl kern.ostype and osrelease match uname", "[sysctl]") {
  KernelUp tk(kSvc);
  struct utsname u;
  REQUIRE(rump_sys_uname(&u) == 0);
  CHECK(sysctl_str("kern.ostype") == u.sysname);
  CHECK(sysctl_str_mib({CTL_KERN, KERN_OSTYPE}) == u.sysname);
  CHECK(std::string(u.sysname) == "RumpKernel");
  CHECK(sysctl_str("kern.osrelease") == u.release);
  CHECK(sysctl_str_mib({CTL_KERN, KERN_OSRELEASE}) == u.release);
  CHECK(std::string(u.machine).size() > 0);
  CHECK(std::string(u.domainname) == "(none)");
  CHECK(set_str("kern.ostype", "Linux") == EPERM);
  CHECK(set_str("kern.osrelease", "6.1") == EPERM);
}

SVC_TEST("hostname via sysctl, sethostname and uname agree", "[sysctl][uname]") {
  KernelUp tk({.ncpu = 1, .hostname = "first"});
  struct utsname u;
  int urv = rump_sys_uname(&u);
  INFO("errno " << errno);
  REQUIRE(urv == 0);
  CHECK(std::string(u.nodename) == "first");
  CHECK(sysctl_str("kern.hostname") == "first");
  CHECK(sysctl_str_mib({CTL_KERN, KERN_HOSTNAME}) == "first");

  CHECK(set_str("kern.hostname", "second") == 0);
  REQUIRE(rump_sys_uname(&u) == 0);
  CHECK(std::string(u.nodename) == "second");

  REQUIRE(rump_sys_sethostname("third", 5) == 0);
  CHECK(sysctl_str("kern.hostname") == "third");
  REQUIRE(rump_sys_uname(&u) == 0);
  CHECK(std::string(u.nodename) == "third");

  // By MIB, with the NUL included in the new value.
  int mib[] = {CTL_KERN, KERN_HOSTNAME};
  REQUIRE(rump_sys___sysctl(mib, 2, nullptr, nullptr, "fourth", 7) == 0);
  CHECK(sysctl_str("kern.hostname") == "fourth");

  std::string max(64, 'h'), over(65, 'h');
  CHECK(set_str("kern.hostname", max.c_str()) == 0);
  CHECK(sysctl_str("kern.hostname") == max);
  CHECK(set_str("kern.hostname", over.c_str()) == EINVAL);
  CHECK(rump_sys_sethostname(over.c_str(), over.size()) == -1);
  CHECK(errno == EINVAL);
  CHECK(rump_sys_sethostname(max.c_str(), max.size()) == 0);
  REQUIRE(rump_sys_uname(&u) == 0);
  CHECK(std::string(u.nodename) == max);
  CHECK(rump_sys_sethostname(static_cast<const char*>(kBad), 4) == -1);
  CHECK(errno == EFAULT);
  CHECK(rump_sys_uname(static_cast<struct utsname*>(kBad)) == -1);
  CHECK(errno == EFAULT);
  CHECK(rump_sys_sethostname("", 0) == 0);
  CHECK(sysctl_str("kern.hostname") == "");
}

SVC_TEST("sysctl process nodes: maxproc, lastpid, randompid, pid_max", "[sysctl]") {
  KernelUp tk(kSvc);
  CHECK(sysctl_int("kern.maxproc") == 4096);
  CHECK(sysctl_int_mib({CTL_KERN, KERN_MAXPROC}) == 4096);
  CHECK(set_int("kern.maxproc", 100) == 0);
  CHECK(sysctl_int("kern.maxproc") == 100);
  CHECK(set_int("kern.maxproc", 0) == EINVAL);
  CHECK(set_int("kern.maxproc", -5) == EINVAL);
  CHECK(sysctl_int("kern.maxproc") == 100);

  // maxproc limits fork: proc0 and init exist, so 2 allows no more.
  CHECK(set_int("kern.maxproc", 2) == 0);
  CHECK(rump_lwproc_rfork(RUMP_RFFDG) == EAGAIN);
  CHECK(set_int("kern.maxproc", 4096) == 0);

  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  pid_t child = rump_sys_getpid();
  CHECK(sysctl_int("kern.lastpid") == child);
  CHECK(sysctl_int_mib({CTL_KERN, KERN_LASTPID}) == child);
  rump_lwproc_releaselwp();
  int v = 1;
  CHECK(rump_sys_sysctlbyname("kern.lastpid", nullptr, nullptr, &v, sizeof v) == -1);
  CHECK(errno == EPERM);

  CHECK(sysctl_int("kern.randompid") == 0);
  CHECK(set_int("kern.randompid", 1) == 0);
  CHECK(sysctl_int_mib({CTL_KERN, KERN_RANDOMPID}) == 1);
  CHECK(set_int("kern.randompid", 2) == EINVAL);
  CHECK(set_int("kern.randompid", -1) == EINVAL);
  CHECK(set_int("kern.randompid", 0) == 0);
  CHECK(sysctl_int("kern.randompid") == 0);

  CHECK(sysctl_int("kern.pid_max") == 32768);
  CHECK(sysctl_int_mib({CTL_KERN, KERN_PIDMAX}) == 32768);
  CHECK(set_int("kern.pid_max", 1000) == 0);
  CHECK(sysctl_int("kern.pid_max") == 1000);
  CHECK(set_int("kern.pid_max", 10) == EINVAL);
  CHECK(set_int("kern.pid_max", 1 << 30) == EINVAL);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  CHECK(rump_sys_getpid() < 1000);
  rump_lwproc_releaselwp();

  // An integer write of the wrong size.
  int64_t big = 7;
  CHECK(rump_sys_sysctlbyname("kern.maxproc", nullptr, nullptr, &big, sizeof big) == -1);
  CHECK(errno == EINVAL);
}

SVC_TEST("sysctl kern.msgbuf holds the boot messages", "[sysctl]") {
  KernelUp tk(kSvc);
  std::string m = sysctl_str("kern.msgbuf");
  CHECK(m.find("booting") != std::string::npos);
  CHECK(sysctl_str_mib({CTL_KERN, KERN_MSGBUF}).find("ready") != std::string::npos);
  CHECK(set_str("kern.msgbuf", "x") == EPERM);
}

SVC_TEST("sysctl sizes, short buffers and name errors", "[sysctl]") {
  KernelUp tk(kSvc);
  size_t len = 0;
  REQUIRE(rump_sys_sysctlbyname("kern.ostype", nullptr, &len, nullptr, 0) == 0);
  CHECK(len == std::strlen("RumpKernel") + 1);
  int mib[] = {CTL_KERN, KERN_MAXPROC};
  len = 0;
  REQUIRE(rump_sys___sysctl(mib, 2, nullptr, &len, nullptr, 0) == 0);
  CHECK(len == sizeof(int));

  char buf[32];
  std::memset(buf, 'x', sizeof buf);
  len = 3;
  CHECK(rump_sys_sysctlbyname("kern.ostype", buf, &len, nullptr, 0) == -1);
  CHECK(errno == ENOMEM);
  CHECK(std::memcmp(buf, "Rum", 3) == 0);
  CHECK(buf[3] == 'x');
  CHECK(len == std::strlen("RumpKernel") + 1);
  short s = 0;
  len = sizeof s;
  CHECK(rump_sys___sysctl(mib, 2, &s, &len, nullptr, 0) == -1);
  CHECK(errno == ENOMEM);

  // A short buffer with a new value: nothing is written.
  len = 2;
  CHECK(rump_sys_sysctlbyname("kern.hostname", buf, &len, "zzz", 3) == -1);
  CHECK(errno == ENOMEM);
  CHECK(sysctl_str("kern.hostname") == "svc-test");
  // Old and new at once.
  len = sizeof buf;
  REQUIRE(rump_sys_sysctlbyname("kern.hostname", buf, &len, "zzz", 3) == 0);
  CHECK(std::string(buf) == "svc-test");
  CHECK(sysctl_str("kern.hostname") == "zzz");

  auto by_name = [](const char* n) {
    int v;
    size_t l = sizeof v;
    return rump_sys_sysctlbyname(n, &v, &l, nullptr, 0) == 0 ? 0 : errno;
  };
  CHECK(by_name("kern.nope") == ENOENT);
  CHECK(by_name("nope") == ENOENT);
  CHECK(by_name("nope.kern") == ENOENT);
  CHECK(by_name("kern") == EISDIR);
  CHECK(by_name("hw") == EISDIR);
  CHECK(by_name("kern.ostype.x") == ENOTDIR);
  CHECK(by_name("") == EINVAL);
  CHECK(by_name("kern..ostype") == EINVAL);
  CHECK(by_name("kern.") == EINVAL);
  std::string longname(1000, 'a');
  CHECK(by_name(longname.c_str()) == ENOENT);

  auto by_mib = [](std::initializer_list<int> m) {
    int v;
    size_t l = sizeof v;
    return rump_sys___sysctl(m.begin(), m.size(), &v, &l, nullptr, 0) == 0 ? 0 : errno;
  };
  CHECK(by_mib({CTL_KERN, 9999}) == ENOENT);
  CHECK(by_mib({42}) == ENOENT);
  CHECK(by_mib({CTL_KERN}) == EISDIR);
  CHECK(by_mib({CTL_HW}) == EISDIR);
  CHECK(by_mib({CTL_KERN, KERN_OSTYPE, 1}) == ENOTDIR);
  int m13[13] = {CTL_KERN};
  int v;
  len = sizeof v;
  CHECK(rump_sys___sysctl(m13, 0, &v, &len, nullptr, 0) == -1);
  CHECK(errno == EINVAL);
  CHECK(rump_sys___sysctl(m13, 13, &v, &len, nullptr, 0) == -1);
  CHECK(errno == EINVAL);

  // Bad pointers.
  CHECK(rump_sys___sysctl(static_cast<const int*>(kBad), 2, &v, &len, nullptr, 0) == -1);
  CHECK(errno == EFAULT);
  CHECK(rump_sys_sysctlbyname(static_cast<const char*>(kBad), &v, &len, nullptr, 0) == -1);
  CHECK(errno == EFAULT);
  len = sizeof v;
  CHECK(rump_sys___sysctl(mib, 2, kBad, &len, nullptr, 0) == -1);
  CHECK(errno == EFAULT);
  CHECK(rump_sys___sysctl(mib, 2, &v, static_cast<size_t*>(kBad), nullptr, 0) == -1);
  CHECK(errno == EFAULT);
  CHECK(rump_sys___sysctl(mib, 2, nullptr, nullptr, kBad, sizeof(int)) == -1);
  CHECK(errno == EFAULT);
  CHECK(sysctl_int("kern.maxproc") == 4096);
}

SVC_TEST("sysctl writes need root", "[sysctl][cred]") {
  KernelUp tk(kSvc);
  {
    NonRoot nr;
    // Reading is open to everyone.
    CHECK(sysctl_int("kern.maxproc") == 4096);
    CHECK(sysctl_str("kern.hostname") == "svc-test");
    CHECK(set_str("kern.hostname", "evil") == EPERM);
    CHECK(set_int("kern.maxproc", 10) == EPERM);
    CHECK(set_int("kern.randompid", 1) == EPERM);
    CHECK(set_int("kern.pid_max", 1000) == EPERM);
    int mib[] = {CTL_KERN, KERN_MAXPROC};
    int v = 10;
    CHECK(rump_sys___sysctl(mib, 2, nullptr, nullptr, &v, sizeof v) == -1);
    CHECK(errno == EPERM);
    CHECK(rump_sys_sethostname("evil", 4) == -1);
    CHECK(errno == EPERM);
    CHECK(rump_sys_reboot(static_cast<int>(0xfee1dead), 672274793, static_cast<int>(0xCDEF0123), nullptr) == -1);
    CHECK(errno == EPERM);
  }
  CHECK(sysctl_str("kern.hostname") == "svc-test");
  CHECK(sysctl_int("kern.maxproc") == 4096);
  CHECK(sysctl_int("kern.randompid") == 0);
  CHECK(sysctl_int("kern.pid_max") == 32768);
  CHECK(rump_kernel_current() == tk.k);
}

SVC_TEST("clock_gettime: monotonic never goes back, realtime near the host's", "[time]") {
  KernelUp tk(kSvc);
  struct timespec a, b;
  REQUIRE(rump_sys_clock_gettime(CLOCK_MONOTONIC, &a) == 0);
  for (int i = 0; i < 1000; i++) {
    REQUIRE(rump_sys_clock_gettime(CLOCK_MONOTONIC, &b) == 0);
    CHECK((b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec)));
    CHECK(b.tv_nsec >= 0);
    CHECK(b.tv_nsec < 1000000000);
    a = b;
  }
  struct timespec rt;
  REQUIRE(rump_sys_clock_gettime(CLOCK_REALTIME, &rt) == 0);
  time_t host = time(nullptr);
  CHECK(std::abs(static_cast<long>(rt.tv_sec - host)) <= 5);
  struct timeval tv;
  REQUIRE(rump_sys_gettimeofday(&tv, nullptr) == 0);
  CHECK(std::abs(static_cast<long>(tv.tv_sec - host)) <= 5);
  CHECK(tv.tv_usec >= 0);
  CHECK(tv.tv_usec < 1000000);
  struct timezone tz;
  std::memset(&tz, 0xff, sizeof tz);
  REQUIRE(rump_sys_gettimeofday(&tv, &tz) == 0);
  CHECK(tz.tz_minuteswest == 0);
  CHECK(tz.tz_dsttime == 0);
  CHECK(rump_sys_gettimeofday(nullptr, nullptr) == 0);
  CHECK(rump_sys_gettimeofday(static_cast<struct timeval*>(kBad), nullptr) == -1);
  CHECK(errno == EFAULT);

  for (clockid_t c : {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME, CLOCK_REALTIME_COARSE,
                      CLOCK_MONOTONIC_COARSE, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID}) {
    INFO("clock " << c);
    CHECK(rump_sys_clock_gettime(c, &a) == 0);
  }
  CHECK(rump_sys_clock_gettime(12345, &a) == -1);
  CHECK(errno == EINVAL);
  // Linux's encoding: the caller's own process, its user-time clock.
  CHECK(rump_sys_clock_gettime(-7, &a) == 0);
  CHECK(rump_sys_clock_gettime(-5, &a) == -1);  // a clock fd (fd 0)
  CHECK(errno == EINVAL);
  CHECK(rump_sys_clock_gettime(CLOCK_MONOTONIC, static_cast<struct timespec*>(kBad)) == -1);
  CHECK(errno == EFAULT);
}

SVC_TEST("nanosleep and clock_nanosleep sleep at least the time asked", "[time]") {
  KernelUp tk(kSvc);
  struct timespec req = {0, 30 * 1000 * 1000}, rem = {9, 9};
  int64_t t0 = host_mono_ns();
  REQUIRE(rump_sys_nanosleep(&req, &rem) == 0);
  CHECK(host_mono_ns() - t0 >= 30 * 1000 * 1000);

  t0 = host_mono_ns();
  REQUIRE(rump_sys_clock_nanosleep(CLOCK_MONOTONIC, 0, &req, nullptr) == 0);
  CHECK(host_mono_ns() - t0 >= 30 * 1000 * 1000);

  // Absolute, on the monotonic and realtime clocks.
  struct timespec now;
  REQUIRE(rump_sys_clock_gettime(CLOCK_MONOTONIC, &now) == 0);
  struct timespec until = now;
  until.tv_nsec += 40 * 1000 * 1000;
  if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
  REQUIRE(rump_sys_clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == 0);
  struct timespec after;
  REQUIRE(rump_sys_clock_gettime(CLOCK_MONOTONIC, &after) == 0);
  CHECK((after.tv_sec > until.tv_sec || (after.tv_sec == until.tv_sec && after.tv_nsec >= until.tv_nsec)));

  REQUIRE(rump_sys_clock_gettime(CLOCK_REALTIME, &now) == 0);
  until = now;
  until.tv_nsec += 20 * 1000 * 1000;
  if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
  REQUIRE(rump_sys_clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &until, nullptr) == 0);
  REQUIRE(rump_sys_clock_gettime(CLOCK_REALTIME, &after) == 0);
  CHECK((after.tv_sec > until.tv_sec || (after.tv_sec == until.tv_sec && after.tv_nsec >= until.tv_nsec)));
  // A time in the past returns at once.
  struct timespec past = {1, 0};
  CHECK(rump_sys_clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, nullptr) == 0);
  struct timespec zero = {0, 0};
  CHECK(rump_sys_nanosleep(&zero, nullptr) == 0);
}

SVC_TEST("sleeps reject bad times, clocks and pointers", "[time]") {
  KernelUp tk(kSvc);
  struct timespec bad = {0, 1000000000};
  CHECK(rump_sys_nanosleep(&bad, nullptr) == -1);
  CHECK(errno == EINVAL);
  CHECK(rump_sys_clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, nullptr) == -1);
  CHECK(errno == EINVAL);
  struct timespec neg = {0, -1};
  CHECK(rump_sys_nanosleep(&neg, nullptr) == -1);
  CHECK(errno == EINVAL);
  struct timespec negsec = {-1, 0};
  CHECK(rump_sys_nanosleep(&negsec, nullptr) == -1);
  CHECK(errno == EINVAL);
  struct timespec ok = {0, 1000};
  CHECK(rump_sys_clock_nanosleep(999, 0, &ok, nullptr) == -1);
  CHECK(errno == EINVAL);
  CHECK(rump_sys_clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ok, nullptr) == -1);
  CHECK(errno == EOPNOTSUPP);
  CHECK(rump_sys_nanosleep(static_cast<const struct timespec*>(kBad), nullptr) == -1);
  CHECK(errno == EFAULT);
  CHECK(rump_sys_clock_nanosleep(CLOCK_REALTIME, 0, static_cast<const struct timespec*>(kBad), nullptr) == -1);
  CHECK(errno == EFAULT);
}

SVC_TEST("a signal interrupts nanosleep with EINTR and the time left", "[time][signal]") {
  KernelUp tk(kSvc);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  pid_t pid = rump_sys_getpid();
  // The kernel's sigaction layout: handler, flags, restorer, mask.
  struct {
    uintptr_t handler;
    unsigned long flags;
    uintptr_t restorer;
    uint64_t mask;
  } act = {0x1000, 0, 0, 0};
  REQUIRE(rump_sys_rt_sigaction(SIGUSR1, &act, nullptr, 8) == 0);

  std::atomic<int> kill_rv{1};
  std::thread sender([&] {
    rump_kernel_set_current(tk.k);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    kill_rv = rump_sys_kill(pid, SIGUSR1);
  });
  struct timespec req = {20, 0}, rem = {0, 0};
  int64_t t0 = host_mono_ns();
  int rv = rump_sys_nanosleep(&req, &rem);
  int e = errno;
  int64_t slept = host_mono_ns() - t0;
  sender.join();
  CHECK(kill_rv == 0);
  CHECK(rv == -1);
  CHECK(e == EINTR);
  CHECK(slept < 20LL * 1000 * 1000 * 1000);
  CHECK(rem.tv_sec + rem.tv_nsec > 0);
  CHECK(rem.tv_sec <= 20);
  rump_lwproc_releaselwp();
}

SVC_TEST("getrandom fills buffers and rejects bad flags", "[random]") {
  KernelUp tk(kSvc);
  unsigned char a[1000], b[1000];
  std::memset(a, 0, sizeof a);
  std::memset(b, 0, sizeof b);
  CHECK(rump_sys_getrandom(a, sizeof a, 0) == static_cast<ssize_t>(sizeof a));
  CHECK(rump_sys_getrandom(b, sizeof b, 0x1) == static_cast<ssize_t>(sizeof b));
  CHECK(std::memcmp(a, b, sizeof a) != 0);
  int zeros = 0;
  for (unsigned char c : a) zeros += c == 0;
  CHECK(zeros < 100);
  CHECK(rump_sys_getrandom(a, 16, 0x2) == 16);
  CHECK(rump_sys_getrandom(a, 16, 0x4) == 16);
  CHECK(rump_sys_getrandom(a, 0, 0) == 0);
  CHECK(rump_sys_getrandom(a, 16, 0x8) == -1);
  CHECK(errno == EINVAL);
  CHECK(rump_sys_getrandom(a, 16, 0x2 | 0x4) == -1);
  CHECK(errno == EINVAL);
  CHECK(rump_sys_getrandom(kBad, 16, 0) == -1);
  CHECK(errno == EFAULT);
}

SVC_TEST("sched_yield returns 0", "[misc]") {
  KernelUp tk(kSvc);
  for (int i = 0; i < 100; i++) CHECK(rump_sys_sched_yield() == 0);
}

SVC_TEST("reboot checks its magic and halts the kernel", "[reboot]") {
  KernelUp tk(kSvc);
  const int m1 = static_cast<int>(0xfee1dead), m2 = 672274793;
  CHECK(rump_sys_reboot(1, m2, static_cast<int>(0xCDEF0123), nullptr) == -1);
  CHECK(errno == EINVAL);
  CHECK(rump_sys_reboot(m1, 5, static_cast<int>(0xCDEF0123), nullptr) == -1);
  CHECK(errno == EINVAL);
  CHECK(rump_sys_reboot(m1, m2, 0x1234, nullptr) == -1);
  CHECK(errno == EINVAL);
  // Ctrl-Alt-Del on/off: accepted, nothing happens.
  CHECK(rump_sys_reboot(m1, m2, static_cast<int>(0x89ABCDEF), nullptr) == 0);
  CHECK(rump_sys_reboot(m1, 85072278, 0, nullptr) == 0);
  CHECK(rump_kernel_current() == tk.k);
  CHECK(rump_sys_getpid() > 0);

  CHECK(rump_sys_reboot(m1, m2, static_cast<int>(0xCDEF0123), nullptr) == 0);
  tk.k = nullptr;  // halted by the reboot
  CHECK(rump_kernel_current() == nullptr);
  CHECK(rump_sys_getpid() == -1);
  CHECK(errno == ENOSYS);
  // A new kernel boots fine afterwards.
  on_fresh_thread([&] {
    KernelUp again(kSvc);
    CHECK(rump_sys_getpid() > 0);
    CHECK(rump_sys_reboot(m1, m2, static_cast<int>(0x4321FEDC), nullptr) == 0);
    again.k = nullptr;  // halted by the reboot
    CHECK(rump_kernel_current() == nullptr);
  });
}

namespace {

struct CalloutProbe {
  std::atomic<int> fired{0};
  std::atomic<int64_t> at{0};
};

void probe_fn(void* arg) {
  auto* p = static_cast<CalloutProbe*>(arg);
  p->at = host_mono_ns();
  p->fired++;
}

bool wait_for(const std::atomic<int>& v, int want, int ms) {
  for (int i = 0; i < ms; i++) {
    if (v.load() >= want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return v.load() >= want;
}

// Runs fn as an LWP of the kernel on one of its CPUs.
template <class Fn>
void in_kernel(KernelUp& tk, Fn&& fn) {
  Kernel& k = kernel_of(tk);
  Lwp* l = rump::enter(k);
  REQUIRE(l != nullptr);
  fn(k, *l);
  rump::leave(k, l);
}

}  // namespace

SVC_TEST("a callout fires after its delay; stop() prevents it", "[callout]") {
  KernelUp tk(kSvc);
  REQUIRE(kernel_of(tk).services().callouts() != nullptr);
  CalloutProbe p1, p2, p3;
  Callout c1, c2, c3;
  int64_t t0 = host_mono_ns();
  in_kernel(tk, [&](Kernel& k, Lwp&) {
    c1.init(*k.services().callouts(), probe_fn, &p1);
    c2.init(*k.services().callouts(), probe_fn, &p2);
    c3.init(*k.services().callouts(), probe_fn, &p3);
    c1.schedule(50 * 1000 * 1000);
    c2.schedule(30 * 1000 * 1000);
    c3.schedule(10 * 1000 * 1000);
    CHECK(c2.pending());
    CHECK(c2.stop());
    CHECK(!c2.stop());
    CHECK(!c2.pending());
    // Re-arming moves the deadline.
    c3.schedule(20 * 1000 * 1000);
  });
  REQUIRE(wait_for(p1.fired, 1, 5000));
  REQUIRE(wait_for(p3.fired, 1, 5000));
  CHECK(p1.at - t0 >= 50 * 1000 * 1000);
  CHECK(p3.at - t0 >= 20 * 1000 * 1000);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  CHECK(p2.fired == 0);
  CHECK(p1.fired == 1);
  CHECK(p3.fired == 1);
  in_kernel(tk, [&](Kernel& k, Lwp&) {
    CHECK(!c1.pending());
    CHECK(!c1.halt());
    // A far callout is still pending at halt(): halt disarms it.
    c2.schedule(3600LL * 1000 * 1000 * 1000);
    CHECK(k.services().callouts()->pending_count() == 1);
    CHECK(c2.halt());
    CHECK(k.services().callouts()->pending_count() == 0);
  });
}

SVC_TEST("moving the earliest callout later does not wake the callout thread; it fires at the new time",
         "[callout]") {
  KernelUp tk(kSvc);
  CalloutProbe pa, pb;
  Callout a, b;
  int64_t t0 = host_mono_ns();
  uint64_t w0 = 0, w1 = 0, w2 = 0;
  in_kernel(tk, [&](Kernel& k, Lwp&) {
    CalloutQueue& q = *k.services().callouts();
    a.init(q, probe_fn, &pa);
    b.init(q, probe_fn, &pb);
    // From here on a is pending: the thread sleeps until a's deadline, or
    // is awake and looks at the queue before it sleeps again.
    a.schedule(20 * 1000 * 1000);
    w0 = q.wakeups();
    // Later: the thread wakes at the old deadline anyway and sleeps on.
    a.schedule(40 * 1000 * 1000);
    w1 = q.wakeups();
    // Nor does a callout due after that.
    b.schedule(60 * 1000 * 1000);
    w2 = q.wakeups();
  });
  CHECK(w1 == w0);
  CHECK(w2 == w0);
  REQUIRE(wait_for(pa.fired, 1, 5000));
  REQUIRE(wait_for(pb.fired, 1, 5000));
  CHECK(pa.at - t0 >= 40 * 1000 * 1000);
  CHECK(pb.at - t0 >= 60 * 1000 * 1000);
  CHECK(pa.fired == 1);
  CHECK(pb.fired == 1);
}

namespace {

struct SlowProbe {
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
};

void slow_fn(void* arg) {
  auto* p = static_cast<SlowProbe*>(arg);
  p->started++;
  rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, 50 * 1000 * 1000);
  p->finished++;
}

}  // namespace

SVC_TEST("Callout::halt waits for a running function", "[callout]") {
  KernelUp tk(kSvc);
  SlowProbe p;
  Callout c;
  in_kernel(tk, [&](Kernel& k, Lwp&) {
    c.init(*k.services().callouts(), slow_fn, &p);
    c.schedule(0);
  });
  REQUIRE(wait_for(p.started, 1, 5000));
  in_kernel(tk, [&](Kernel&, Lwp&) {
    c.halt();
    CHECK(p.finished == 1);
    CHECK(!c.running());
  });
}

SVC_TEST("a callout left pending does not stop the kernel from halting", "[callout]") {
  KernelUp tk(kSvc);
  static Callout c;  // outlives the kernel; the queue disarms it at halt
  CalloutProbe p;
  in_kernel(tk, [&](Kernel& k, Lwp&) {
    c.init(*k.services().callouts(), probe_fn, &p);
    c.schedule(3600LL * 1000 * 1000 * 1000);
  });
  REQUIRE(rump_kernel_halt(tk.k) == 0);
  tk.k = nullptr;
  CHECK(p.fired == 0);
}

namespace {

struct KthreadProbe {
  std::atomic<int> ran{0};
  std::atomic<bool> had_cpu{false};
  std::atomic<bool> right_lwp{false};
  Kernel* k = nullptr;
};

void kthread_fn(void* arg) {
  auto* p = static_cast<KthreadProbe*>(arg);
  Lwp* l = reinterpret_cast<Lwp*>(rumpuser_curlwp());
  p->right_lwp = l != nullptr && &l->kernel() == p->k && l->kind() == Lwp::Kind::kKthread &&
                 &l->proc() == p->k->procs().proc0();
  p->had_cpu = l != nullptr && l->cpu() != nullptr;
  p->ran++;
}

}  // namespace

SVC_TEST("a kernel thread runs as an LWP of proc0 on a CPU and joins", "[kthread]") {
  KernelUp tk(kSvc);
  KthreadProbe p;
  p.k = &kernel_of(tk);
  // Once first: this thread's implicit LWP, and the pid table's growth.
  in_kernel(tk, [&](Kernel& k, Lwp&) {
    for (int i = 0; i < 10; i++) kthread_join(kthread_create(k, "warm", kthread_fn, &p).value());
  });
  p.ran = 0;
  size_t before = rump_kernel_memory_in_use(tk.k);
  in_kernel(tk, [&](Kernel& k, Lwp&) {
    for (int i = 0; i < 10; i++) {
      Result<Kthread*> t = kthread_create(k, "test", kthread_fn, &p);
      REQUIRE(t.ok());
      kthread_join(t.value());
    }
    CHECK(kthread_create(k, "null", nullptr, nullptr).error() == EINVAL);
  });
  CHECK(p.ran == 10);
  CHECK(p.had_cpu);
  CHECK(p.right_lwp);
  CHECK(rump_kernel_memory_in_use(tk.k) == before);
}

SVC_TEST("boot and halt 50 times leave the same memory behind", "[boot]") {
  size_t first = 0;
  for (int i = 0; i < 50; i++) {
    rump_boot_config c;
    rump_boot_config_init(&c);
    c.ncpu = 2;
    c.verbose = 0;
    c.hostname = "loop";
    rump_kernel* k = nullptr;
    REQUIRE(rump_kernel_boot(&c, &k) == 0);
    size_t used = rump_kernel_memory_in_use(k);
    if (i == 0) first = used;
    CHECK(used == first);
    REQUIRE(rump_kernel_halt(k) == 0);
  }
  CHECK(first > 0);
}
