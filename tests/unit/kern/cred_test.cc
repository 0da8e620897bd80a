// Credentials: the same sequences of set*id/setgroups calls run against the
// host kernel (in a host child made with fork(): the test runs as root)
// and against the rump kernel (in a process made with rump_lwproc_rfork);
// every call's result and errno, and the ids and groups after it, must be
// the same. Plus inheritance across rfork, which only the rump side needs.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <sys/syscall.h>
#include <unistd.h>

#include "rump_test.h"

#include <cerrno>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using rump_test::KernelUp;

constexpr long kNo = -1;  // "unchanged" (uid_t)-1

enum Op : int { kSetuid, kSetgid, kSetreuid, kSetregid, kSetresuid, kSetresgid, kSetgroups, kGetgroups };
const char* const kOpNames[] = {"setuid",    "setgid",    "setreuid",  "setregid",
                                "setresuid", "setresgid", "setgroups", "getgroups"};

struct Step {
  Op op;
  long a = 0, b = 0, c = 0;
};

// Group lists for setgroups: b selects one, a is the count.
const gid_t kLists[][4] = {{10, 20, 30, 40}, {0, 5, 5, 7}, {1000, 2000, 3000, 4000}};

constexpr int kMaxSteps = 40;
constexpr int kMaxGroups = 8;

struct Outcome {
  long ret;
  int err;
  uint32_t ids[6];  // r/e/s uid, r/e/s gid
  int ngroups;
  uint32_t groups[kMaxGroups];
  uint32_t got[kMaxGroups];  // what getgroups copied out (kGetgroups)
  bool operator==(const Outcome& o) const { return std::memcmp(this, &o, sizeof *this) == 0; }
};
struct Trace {
  int n;
  Outcome out[kMaxSteps];
};

std::string describe(const Step& s) {
  std::ostringstream os;
  os << kOpNames[s.op] << "(" << s.a;
  if (s.op == kSetgroups) os << ", list " << s.b;
  else if (s.op != kSetuid && s.op != kSetgid && s.op != kGetgroups) os << ", " << s.b;
  if (s.op == kSetresuid || s.op == kSetresgid) os << ", " << s.c;
  os << ")";
  return os.str();
}
std::string describe(const Outcome& o) {
  std::ostringstream os;
  os << "ret " << o.ret << " errno " << o.err << " uids " << o.ids[0] << "/" << o.ids[1] << "/" << o.ids[2]
     << " gids " << o.ids[3] << "/" << o.ids[4] << "/" << o.ids[5] << " groups[" << o.ngroups << "]";
  for (int i = 0; i < o.ngroups && i < kMaxGroups; i++) os << " " << o.groups[i];
  if (o.got[0] || o.got[1]) os << " got " << o.got[0] << "," << o.got[1] << "...";
  return os.str();
}

// The calls, on either kernel.
struct Calls {
  long (*setuid)(long);
  long (*setgid)(long);
  long (*setreuid)(long, long);
  long (*setregid)(long, long);
  long (*setresuid)(long, long, long);
  long (*setresgid)(long, long, long);
  long (*setgroups)(long, const gid_t*);
  long (*getgroups)(long, gid_t*);
  long (*getresuid)(uid_t*, uid_t*, uid_t*);
  long (*getresgid)(gid_t*, gid_t*, gid_t*);
};

const Calls kHost = {
    [](long u) { return syscall(SYS_setuid, u); },
    [](long g) { return syscall(SYS_setgid, g); },
    [](long r, long e) { return syscall(SYS_setreuid, r, e); },
    [](long r, long e) { return syscall(SYS_setregid, r, e); },
    [](long r, long e, long s) { return syscall(SYS_setresuid, r, e, s); },
    [](long r, long e, long s) { return syscall(SYS_setresgid, r, e, s); },
    [](long n, const gid_t* l) { return syscall(SYS_setgroups, n, l); },
    [](long n, gid_t* l) { return syscall(SYS_getgroups, n, l); },
    [](uid_t* r, uid_t* e, uid_t* s) { return syscall(SYS_getresuid, r, e, s); },
    [](gid_t* r, gid_t* e, gid_t* s) { return syscall(SYS_getresgid, r, e, s); },
};

const Calls kRump = {
    [](long u) { return long{rump_sys_setuid(static_cast<uid_t>(u))}; },
    [](long g) { return long{rump_sys_setgid(static_cast<gid_t>(g))}; },
    [](long r, long e) { return long{rump_sys_setreuid(static_cast<uid_t>(r), static_cast<uid_t>(e))}; },
    [](long r, long e) { return long{rump_sys_setregid(static_cast<gid_t>(r), static_cast<gid_t>(e))}; },
    [](long r, long e, long s) {
      return long{rump_sys_setresuid(static_cast<uid_t>(r), static_cast<uid_t>(e), static_cast<uid_t>(s))};
    },
    [](long r, long e, long s) {
      return long{rump_sys_setresgid(static_cast<gid_t>(r), static_cast<gid_t>(e), static_cast<gid_t>(s))};
    },
    [](long n, const gid_t* l) { return long{rump_sys_setgroups(static_cast<size_t>(n), l)}; },
    [](long n, gid_t* l) { return long{rump_sys_getgroups(static_cast<int>(n), l)}; },
    [](uid_t* r, uid_t* e, uid_t* s) { return long{rump_sys_getresuid(r, e, s)}; },
    [](gid_t* r, gid_t* e, gid_t* s) { return long{rump_sys_getresgid(r, e, s)}; },
};

// Runs the steps; async-signal-safe enough for a forked child (no
// allocation, no locks).
void run(const Calls& c, const Step* steps, int n, Trace& t) {
  std::memset(&t, 0, sizeof t);
  t.n = n;
  for (int i = 0; i < n && i < kMaxSteps; i++) {
    const Step& s = steps[i];
    Outcome& o = t.out[i];
    gid_t buf[64];
    std::memset(buf, 0, sizeof buf);
    errno = 0;
    long r = -1;
    switch (s.op) {
      case kSetuid: r = c.setuid(s.a); break;
      case kSetgid: r = c.setgid(s.a); break;
      case kSetreuid: r = c.setreuid(s.a, s.b); break;
      case kSetregid: r = c.setregid(s.a, s.b); break;
      case kSetresuid: r = c.setresuid(s.a, s.b, s.c); break;
      case kSetresgid: r = c.setresgid(s.a, s.b, s.c); break;
      case kSetgroups: r = c.setgroups(s.a, s.a <= 4 ? kLists[s.b] : nullptr); break;
      case kGetgroups: r = c.getgroups(s.a, s.a > 0 ? buf : nullptr); break;
    }
    o.ret = r;
    o.err = r == -1 ? errno : 0;
    if (s.op == kGetgroups && r > 0)
      for (long j = 0; j < r && j < kMaxGroups; j++) o.got[j] = buf[j];
    uid_t u[3] = {}, g[3] = {};
    c.getresuid(&u[0], &u[1], &u[2]);
    c.getresgid(&g[0], &g[1], &g[2]);
    for (int j = 0; j < 3; j++) o.ids[j] = u[j], o.ids[3 + j] = g[j];
    gid_t gl[64];
    long ng = c.getgroups(64, gl);
    o.ngroups = static_cast<int>(ng);
    for (long j = 0; j < ng && j < kMaxGroups; j++) o.groups[j] = gl[j];
  }
}

// Every sequence starts from the same state: root, gid 0, no groups.
std::vector<Step> with_reset(std::vector<Step> s) {
  s.insert(s.begin(), {{kSetgroups, 0, 0}, {kSetresgid, 0, 0, 0}, {kSetresuid, 0, 0, 0}});
  return s;
}

Trace on_host(const std::vector<Step>& steps) {
  return rump_test::host_child<Trace>([&] {
    Trace t;
    run(kHost, steps.data(), static_cast<int>(steps.size()), t);
    return t;
  });
}

Trace on_rump(const std::vector<Step>& steps) {
  lwp* prev = rump_lwproc_curlwp();
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  Trace t;
  run(kRump, steps.data(), static_cast<int>(steps.size()), t);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(prev);
  return t;
}

// Compares step by step; returns false at the first difference.
bool same(const std::vector<Step>& steps, const char* name) {
  REQUIRE(steps.size() <= static_cast<size_t>(kMaxSteps));
  Trace h = on_host(steps);
  Trace r = on_rump(steps);
  for (size_t i = 0; i < steps.size(); i++) {
    if (h.out[i] == r.out[i]) continue;
    std::ostringstream os;
    os << name << ": step " << i << " " << describe(steps[i]) << "\n  host: " << describe(h.out[i])
       << "\n  rump: " << describe(r.out[i]) << "\n  sequence:";
    for (const Step& s : steps) os << " " << describe(s);
    FAIL_CHECK(os.str());
    return false;
  }
  return true;
}

}  // namespace

TEST_CASE("the host lets this test change credentials (precondition)", "[cred]") {
  Trace h = on_host(with_reset({{kSetgroups, 2, 0}}));
  INFO("host: " << describe(h.out[3]));
  REQUIRE(geteuid() == 0);
  REQUIRE(h.out[0].ret == 0);
  REQUIRE(h.out[3].ret == 0);
  REQUIRE(h.out[3].ngroups == 2);
}

TEST_CASE("setuid/setgid as root and non-root behave as on the host", "[cred]") {
  KernelUp up({.ncpu = 1});
  CHECK(same(with_reset({{kSetuid, 1000}, {kSetuid, 0}, {kSetuid, 1000}, {kSetgid, 5}, {kSetuid, 2000}}),
             "setuid drops root for good"));
  CHECK(same(with_reset({{kSetgid, 5}, {kSetgid, 6}, {kSetresuid, 1000, 1000, 1000}, {kSetgid, 5},
                         {kSetgid, 6}, {kSetgid, 7}, {kSetgid, 0}}),
             "setgid"));
  CHECK(same(with_reset({{kSetuid, kNo}, {kSetgid, kNo}}), "setuid(-1) is EINVAL"));
  // Saved ids: a non-root process may go back to its saved uid.
  CHECK(same(with_reset({{kSetresuid, 1000, 2000, 3000}, {kSetuid, 3000}, {kSetuid, 1000}, {kSetuid, 2000},
                         {kSetuid, 4000}, {kSetuid, 3000}}),
             "setuid to real or saved"));
  // euid 0 with a non-zero real uid: setuid sets all three.
  CHECK(same(with_reset({{kSetresuid, 1000, 0, 2000}, {kSetuid, 3000}, {kSetuid, 0}}),
             "setuid with euid 0"));
}

TEST_CASE("setreuid/setregid with -1 arguments and saved-id rules behave as on the host", "[cred]") {
  KernelUp up({.ncpu = 1});
  CHECK(same(with_reset({{kSetreuid, 1000, 2000},
                         {kSetreuid, kNo, 1000},
                         {kSetreuid, kNo, 2000},
                         {kSetreuid, 2000, kNo},
                         {kSetreuid, 3000, kNo},
                         {kSetreuid, kNo, 3000},
                         {kSetreuid, kNo, kNo}}),
             "setreuid"));
  CHECK(same(with_reset({{kSetreuid, kNo, 1000}, {kSetreuid, kNo, 0}, {kSetreuid, 0, 1000}, {kSetreuid, 1000, 0},
                         {kSetreuid, 1000, 1000}, {kSetreuid, 0, kNo}}),
             "setreuid swapping real and effective"));
  CHECK(same(with_reset({{kSetregid, 10, 20},
                         {kSetregid, kNo, 10},
                         {kSetregid, kNo, 20},
                         {kSetresuid, 1000, 1000, 1000},
                         {kSetregid, 20, kNo},
                         {kSetregid, 30, kNo},
                         {kSetregid, kNo, 30},
                         {kSetregid, 10, 20},
                         {kSetregid, kNo, kNo}}),
             "setregid"));
}

TEST_CASE("setresuid/setresgid EPERM transitions behave as on the host", "[cred]") {
  KernelUp up({.ncpu = 1});
  CHECK(same(with_reset({{kSetresuid, kNo, kNo, kNo},
                         {kSetresuid, 1000, kNo, kNo},
                         {kSetresuid, kNo, 1000, kNo},
                         {kSetresuid, kNo, 0, kNo},
                         {kSetresuid, 5, 5, 5},
                         {kSetresuid, 0, kNo, kNo},
                         {kSetresuid, kNo, kNo, 0},
                         {kSetresuid, 5, 5, 5}}),
             "setresuid"));
  CHECK(same(with_reset({{kSetresgid, 1, 2, 3},
                         {kSetresuid, 1000, 1000, 1000},
                         {kSetresgid, 3, 2, 1},
                         {kSetresgid, 4, kNo, kNo},
                         {kSetresgid, kNo, kNo, 4},
                         {kSetresgid, kNo, kNo, kNo},
                         {kSetresgid, 0, 0, 0}}),
             "setresgid"));
  CHECK(same(with_reset({{kSetresuid, 1000, 2000, 0}, {kSetresgid, 7, 7, 7}, {kSetresuid, kNo, 0, kNo},
                         {kSetresgid, 8, 8, 8}, {kSetresuid, 0, 0, 0}}),
             "root kept in the saved uid"));
}

TEST_CASE("getgroups/setgroups: size 0, too small, as non-root, too many, as on the host", "[cred]") {
  KernelUp up({.ncpu = 1});
  CHECK(same(with_reset({{kSetgroups, 3, 0},
                         {kGetgroups, 0},
                         {kGetgroups, 2},
                         {kGetgroups, 3},
                         {kGetgroups, 4},
                         {kGetgroups, -1},
                         {kSetgroups, 4, 1},
                         {kGetgroups, 4},
                         {kSetgroups, 0, 0},
                         {kGetgroups, 0},
                         {kSetgroups, 65537, 0},
                         {kSetgroups, 1, 2},
                         {kSetresuid, 1000, 1000, 1000},
                         {kSetgroups, 1, 0},
                         {kSetgroups, 0, 0},
                         {kGetgroups, 1}}),
             "groups"));
}

TEST_CASE("setgroups with too many groups as non-root is EPERM, as on the host", "[cred]") {
  // Linux checks the privilege (may_setgroups) before the size: EPERM,
  // not EINVAL.
  KernelUp up({.ncpu = 1});
  CHECK(same(with_reset({{kSetresuid, 1000, 1000, 1000}, {kSetgroups, 65537, 0}}), "non-root, too many"));
}

TEST_CASE("random credential sequences behave as on the host", "[cred]") {
  KernelUp up({.ncpu = 1});
  std::mt19937 rng(12345);
  const long ids[] = {0, 1000, 2000, 3000, kNo, 0, 1000};
  auto id = [&] { return ids[rng() % (sizeof ids / sizeof ids[0])]; };
  int failures = 0;
  for (int seq = 0; seq < 150 && failures < 3; seq++) {
    std::vector<Step> steps;
    int n = 4 + static_cast<int>(rng() % 20);
    for (int i = 0; i < n; i++) {
      Op op = static_cast<Op>(rng() % 8);
      Step s{op, id(), id(), id()};
      if (op == kSetgroups) s.a = rng() % 5, s.b = rng() % 3;
      if (op == kGetgroups) s.a = static_cast<long>(rng() % 6) - 1;
      steps.push_back(s);
    }
    if (!same(with_reset(steps), ("random sequence " + std::to_string(seq)).c_str())) failures++;
  }
  CHECK(failures == 0);
}

TEST_CASE("children inherit credentials; a child's changes don't reach its parent", "[cred]") {
  KernelUp up({.ncpu = 1});
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  lwp* parent = rump_lwproc_curlwp();
  const gid_t groups[] = {7, 8};
  REQUIRE(rump_sys_setgroups(2, groups) == 0);
  REQUIRE(rump_sys_setresgid(50, 60, 70) == 0);
  REQUIRE(rump_sys_setresuid(1000, 1000, 2000) == 0);

  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  lwp* child = rump_lwproc_curlwp();
  uid_t r, e, s;
  REQUIRE(rump_sys_getresuid(&r, &e, &s) == 0);
  CHECK(r == 1000);
  CHECK(e == 1000);
  CHECK(s == 2000);
  gid_t gr, ge, gs;
  REQUIRE(rump_sys_getresgid(&gr, &ge, &gs) == 0);
  CHECK(gr == 50);
  CHECK(ge == 60);
  CHECK(gs == 70);
  gid_t gl[4] = {};
  REQUIRE(rump_sys_getgroups(4, gl) == 2);
  CHECK(gl[0] == 7);
  CHECK(gl[1] == 8);
  // The child changes its ids within what it may.
  REQUIRE(rump_sys_setresuid(2000, 2000, 2000) == 0);
  REQUIRE(rump_sys_setresgid(70, 70, 70) == 0);
  CHECK(rump_sys_getuid() == 2000);
  // A grandchild gets the child's new ids.
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  CHECK(rump_sys_geteuid() == 2000);
  CHECK(rump_sys_getegid() == 70);
  // The parent is unchanged.
  rump_lwproc_switch(parent);
  REQUIRE(rump_sys_getresuid(&r, &e, &s) == 0);
  CHECK(r == 1000);
  CHECK(e == 1000);
  CHECK(s == 2000);
  CHECK(rump_sys_getgid() == 50);
  CHECK(rump_sys_getegid() == 60);
  // And the parent's later changes don't reach the child.
  REQUIRE(rump_sys_setuid(2000) == 0);  // euid -> saved 2000
  REQUIRE(rump_sys_getresuid(&r, &e, &s) == 0);
  CHECK(e == 2000);
  rump_lwproc_switch(child);
  CHECK(rump_sys_getuid() == 2000);
  REQUIRE(rump_sys_getgroups(4, gl) == 2);
  // A new LWP of the child acts with the child's credentials.
  REQUIRE(rump_lwproc_newlwp(rump_sys_getpid()) == 0);
  CHECK(rump_sys_getuid() == 2000);
  CHECK(rump_sys_getegid() == 70);
  // Implicit context (init) is still root.
  rump_lwproc_switch(nullptr);
  CHECK(rump_sys_geteuid() == 0);
  CHECK(rump_sys_getuid() == 0);
}
