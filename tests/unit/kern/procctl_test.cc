// Process controls against the host: prctl (names, parent-death signal,
// dumpable, no_new_privs, child subreaper and reparenting to it), the
// sched_* calls over the kernel's virtual CPUs, getpriority/setpriority
// with their permission rules, and capget/capset with the capability
// effects of setuid.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "differential.h"
#include "rump_test.h"

namespace {

using rump_diff::check_same;
using rump_diff::differential;
using rump_diff::kHost;
using rump_diff::kRump;
using rump_diff::Sys;
using rump_diff::Trace;
using rump_test::as;
using rump_test::fork_kid;
using rump_test::host_child;
using rump_test::Kid;
using rump_test::KernelUp;

int host_ncpu() { return static_cast<int>(sysconf(_SC_NPROCESSORS_CONF)); }

struct CapHeader {
  uint32_t version;
  int pid;
};
struct CapData {
  uint32_t effective, permitted, inheritable;
};

}  // namespace

TEST_CASE("prctl: name, parent-death signal, dumpable, no_new_privs, subreaper as the host",
          "[prctl][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    char name[32];
    T(sys(SYS_prctl, PR_SET_NAME, "abcdefghijklmnopqrstuvwxyz", 0, 0, 0));
    std::memset(name, 'x', sizeof name);
    T(sys(SYS_prctl, PR_GET_NAME, name, 0, 0, 0));
    for (int i = 0; i < 17; i++) V(name[i]);
    T(sys(SYS_prctl, PR_SET_NAME, "w", 0, 0, 0));
    T(sys(SYS_prctl, PR_GET_NAME, name, 0, 0, 0));
    V(name[0]), V(name[1]), V(name[2]);
    int sig = -1;
    T(sys(SYS_prctl, PR_GET_PDEATHSIG, &sig, 0, 0, 0));
    V(sig);
    T(sys(SYS_prctl, PR_SET_PDEATHSIG, 65, 0, 0, 0));
    T(sys(SYS_prctl, PR_SET_PDEATHSIG, -1L, 0, 0, 0));
    T(sys(SYS_prctl, PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0));
    T(sys(SYS_prctl, PR_GET_PDEATHSIG, &sig, 0, 0, 0));
    V(sig);
    T(sys(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0));
    T(sys(SYS_prctl, PR_SET_DUMPABLE, 2, 0, 0, 0));
    T(sys(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0));
    T(sys(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0));
    T(sys(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0));
    T(sys(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    T(sys(SYS_prctl, PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0));
    T(sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0));
    T(sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0));
    T(sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    T(sys(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    int sub = -1;
    T(sys(SYS_prctl, PR_GET_CHILD_SUBREAPER, &sub, 0, 0, 0));
    V(sub);
    T(sys(SYS_prctl, PR_SET_CHILD_SUBREAPER, 5, 0, 0, 0));
    T(sys(SYS_prctl, PR_GET_CHILD_SUBREAPER, &sub, 0, 0, 0));
    V(sub);
    T(sys(SYS_prctl, 12345, 0, 0, 0, 0));
    T(sys(SYS_prctl, -1, 0, 0, 0, 0));
    // A change of the effective uid makes the process not dumpable and
    // forgets the parent-death signal.
    T(sys(SYS_setresuid, 1000, 1000, 1000));
    T(sys(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0));
    T(sys(SYS_prctl, PR_GET_PDEATHSIG, &sig, 0, 0, 0));
    V(sig);
    T(sys(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    return trace;
  });
}

TEST_CASE("rump_sys_prctl is variadic as libc's prctl", "[prctl]") {
  KernelUp up;
  Kid k = fork_kid();
  rump_lwproc_switch(k.l);
  CHECK(rump_sys_prctl(PR_SET_NAME, "worker") == 0);
  char name[16] = {};
  CHECK(rump_sys_prctl(PR_GET_NAME, name) == 0);
  CHECK(std::strcmp(name, "worker") == 0);
  CHECK(rump_sys_prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) == 0);
  CHECK(rump_sys_prctl(PR_GET_NO_NEW_PRIVS, 0UL, 0UL, 0UL, 0UL) == 1);
  CHECK_ERRNO(EINVAL, rump_sys_prctl(999));
  rump_lwproc_switch(nullptr);
}

TEST_CASE("orphans go to the nearest subreaper, which reaps them; a parent-death signal is sent",
          "[prctl][differential]") {
  KernelUp up;
  // S is a subreaper; S forks A, A forks B, B asks for SIGUSR1 when its
  // parent dies (default action: terminate), A exits. S then reaps A
  // (status 3) and B (killed by SIGUSR1).
  struct Out {
    int st_a, st_b;
    pid_t reaped_a, reaped_b, pid_a, pid_b;
  };
  Out host = host_child<Out>([] {
    Out o{};
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    int b_ready[2], a_info[2];
    if (pipe(b_ready) != 0 || pipe(a_info) != 0) return o;
    pid_t a = fork();
    if (a == 0) {
      pid_t b = fork();
      if (b == 0) {
        prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0);
        alarm(30);  // never outlive a failed test
        char c = 1;
        (void)!write(b_ready[1], &c, 1);
        for (;;) pause();
      }
      char c;
      (void)!read(b_ready[0], &c, 1);
      (void)!write(a_info[1], &b, sizeof b);
      _exit(3);
    }
    o.pid_a = a;
    (void)!read(a_info[0], &o.pid_b, sizeof o.pid_b);
    o.reaped_a = waitpid(a, &o.st_a, 0);
    o.reaped_b = waitpid(o.pid_b, &o.st_b, 0);
    return o;
  });
  REQUIRE(host.reaped_a == host.pid_a);
  REQUIRE(host.reaped_b == host.pid_b);

  Kid s = fork_kid();
  rump_lwproc_switch(s.l);
  REQUIRE(rump_sys_prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  lwp* a = rump_lwproc_curlwp();
  pid_t pid_a = rump_sys_getpid();
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  pid_t pid_b = rump_sys_getpid();
  REQUIRE(rump_sys_getppid() == pid_a);
  REQUIRE(rump_sys_prctl(PR_SET_PDEATHSIG, SIGUSR1) == 0);
  rump_lwproc_switch(a);
  rump_sys_exit(3);
  rump_lwproc_switch(s.l);
  Out rump{};
  rump.reaped_a = rump_sys_wait4(pid_a, &rump.st_a, 0, nullptr);
  rump.reaped_b = rump_sys_wait4(pid_b, &rump.st_b, 0, nullptr);
  rump_lwproc_switch(nullptr);
  CHECK(rump.reaped_a == pid_a);
  CHECK(rump.reaped_b == pid_b);
  CHECK(rump.st_a == host.st_a);
  CHECK(rump.st_b == host.st_b);
  CHECK(WIFEXITED(rump.st_a));
  CHECK(WEXITSTATUS(rump.st_a) == 3);
  CHECK(WIFSIGNALED(rump.st_b));
  CHECK(WTERMSIG(rump.st_b) == SIGUSR1);
}

TEST_CASE("a living orphan's new parent is the subreaper; without one, init", "[prctl]") {
  KernelUp up;
  Kid s = fork_kid();
  rump_lwproc_switch(s.l);
  REQUIRE(rump_sys_prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  lwp* a = rump_lwproc_curlwp();
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  lwp* b = rump_lwproc_curlwp();
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  lwp* c = rump_lwproc_curlwp();
  rump_lwproc_switch(b);
  rump_sys_exit(0);  // c's parent gone: A is no subreaper, S is
  CHECK(as(c, [] { return rump_sys_getppid(); }) == s.pid);
  // S stops being one: the next orphan goes to init.
  rump_lwproc_switch(s.l);
  REQUIRE(rump_sys_prctl(PR_SET_CHILD_SUBREAPER, 0) == 0);
  rump_lwproc_switch(c);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  lwp* d = rump_lwproc_curlwp();
  rump_lwproc_switch(c);
  rump_sys_exit(0);
  CHECK(as(d, [] { return rump_sys_getppid(); }) == 1);
  rump_lwproc_switch(a);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(nullptr);
}

TEST_CASE("sched_* calls: policies, priorities, affinity over the CPUs, as the host",
          "[sched][differential]") {
  KernelUp up({.ncpu = host_ncpu()});
  differential([](Sys sys) {
    Trace trace;
    for (int pol : {SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, 6, 4, 8, 99, -1}) {
      T(sys(SYS_sched_get_priority_max, pol));
      T(sys(SYS_sched_get_priority_min, pol));
    }
    T(sys(SYS_sched_getscheduler, 0));
    T(sys(SYS_sched_getscheduler, -1));
    T(sys(SYS_sched_getscheduler, 999999));
    sched_param sp{};
    sp.sched_priority = 7;
    T(sys(SYS_sched_getparam, 0, &sp));
    V(sp.sched_priority);
    T(sys(SYS_sched_getparam, 0, nullptr));
    T(sys(SYS_sched_getparam, -1, &sp));
    T(sys(SYS_sched_getparam, 999999, &sp));
    sp.sched_priority = 0;
    T(sys(SYS_sched_setscheduler, 0, SCHED_FIFO, &sp));  // FIFO needs 1..99
    sp.sched_priority = 100;
    T(sys(SYS_sched_setscheduler, 0, SCHED_FIFO, &sp));
    sp.sched_priority = 5;
    T(sys(SYS_sched_setscheduler, 0, SCHED_OTHER, &sp));  // OTHER needs 0
    T(sys(SYS_sched_setscheduler, 0, 42, &sp));
    T(sys(SYS_sched_setscheduler, 0, -3, &sp));
    T(sys(SYS_sched_setscheduler, -1, SCHED_FIFO, &sp));
    T(sys(SYS_sched_setscheduler, 0, SCHED_FIFO, nullptr));
    T(sys(SYS_sched_setscheduler, 0, SCHED_FIFO, &sp));
    T(sys(SYS_sched_getscheduler, 0));
    sp.sched_priority = 0;
    T(sys(SYS_sched_getparam, 0, &sp));
    V(sp.sched_priority);
    sp.sched_priority = 9;
    T(sys(SYS_sched_setparam, 0, &sp));
    T(sys(SYS_sched_getparam, 0, &sp));
    V(sp.sched_priority);
    sp.sched_priority = 0;
    T(sys(SYS_sched_setscheduler, 0, SCHED_BATCH, &sp));
    T(sys(SYS_sched_getscheduler, 0));
    T(sys(SYS_sched_setscheduler, 0, SCHED_OTHER | 0x40000000, &sp));
    T(sys(SYS_sched_getscheduler, 0));
    T(sys(SYS_sched_yield));
    // Affinity: the mask holds the CPUs there are.
    unsigned char mask[64];
    std::memset(mask, 0xee, sizeof mask);
    long n = T(sys(SYS_sched_getaffinity, 0, sizeof mask, mask));
    for (long i = 0; i < n; i++) V(mask[i]);
    T(sys(SYS_sched_getaffinity, 0, 4, mask));
    T(sys(SYS_sched_getaffinity, 0, 12, mask));
    T(sys(SYS_sched_getaffinity, 0, 8, mask));
    T(sys(SYS_sched_getaffinity, 999999, 8, mask));
    unsigned char none[8] = {};
    T(sys(SYS_sched_setaffinity, 0, sizeof none, none));
    unsigned char beyond[8] = {0, 0, 0, 0, 0, 0, 0, 0x80};
    T(sys(SYS_sched_setaffinity, 0, sizeof beyond, beyond));
    unsigned char first[1] = {1};
    T(sys(SYS_sched_setaffinity, 0, sizeof first, first));
    std::memset(mask, 0, sizeof mask);
    T(sys(SYS_sched_getaffinity, 0, 8, mask));
    V(mask[0]), V(mask[1]);
    T(sys(SYS_sched_setaffinity, 999999, sizeof first, first));
    // Another user's process: EPERM without CAP_SYS_NICE.
    T(sys(SYS_setresuid, 1000, 1000, 1000));
    T(sys(SYS_sched_setaffinity, 1, sizeof first, first));
    sp.sched_priority = 0;
    T(sys(SYS_sched_setscheduler, 1, SCHED_OTHER, &sp));
    sp.sched_priority = 3;
    T(sys(SYS_sched_setscheduler, 0, SCHED_FIFO, &sp));  // RLIMIT_RTPRIO 0
    return trace;
  });
}

TEST_CASE("libc's sched_getaffinity form returns 0 and clears the rest of the set", "[sched]") {
  KernelUp up({.ncpu = 2});
  cpu_set_t set;
  std::memset(&set, 0xff, sizeof set);
  REQUIRE(rump_sys_sched_getaffinity(0, sizeof set, &set) == 0);
  CHECK(CPU_COUNT(&set) == 2);
  CHECK(CPU_ISSET(0, &set));
  CHECK(CPU_ISSET(1, &set));
}

TEST_CASE("getpriority/setpriority: nice values, targets and permissions as the host",
          "[sched][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    // From nice 0 in a group of its own, whatever the nice value and group
    // of the process running the tests.
    T(sys(SYS_setpgid, 0, 0));
    T(sys(SYS_setpriority, PRIO_PROCESS, 0, 0));
    T(sys(SYS_getpriority, PRIO_PROCESS, 0));
    T(sys(SYS_getpriority, 3, 0));
    T(sys(SYS_getpriority, -1, 0));
    T(sys(SYS_getpriority, PRIO_PROCESS, 999999));
    T(sys(SYS_setpriority, PRIO_PROCESS, 0, 5));
    T(sys(SYS_getpriority, PRIO_PROCESS, 0));
    T(sys(SYS_getpriority, PRIO_PGRP, 0));
    T(sys(SYS_setpriority, PRIO_PROCESS, 0, 100));  // clamped to 19
    T(sys(SYS_getpriority, PRIO_PROCESS, 0));
    T(sys(SYS_setpriority, PRIO_PROCESS, 0, -100));  // root: -20
    T(sys(SYS_getpriority, PRIO_PROCESS, 0));
    T(sys(SYS_setpriority, PRIO_PROCESS, 0, 0));
    T(sys(SYS_setpriority, 7, 0, 0));
    T(sys(SYS_setpriority, PRIO_PROCESS, 999999, 0));
    T(sys(SYS_setpriority, PRIO_USER, 54321, 0));  // nobody runs as that uid
    // Not root: raising nice is allowed, lowering it is EACCES; another
    // user's process is EPERM.
    T(sys(SYS_setresuid, 1000, 1000, 1000));
    T(sys(SYS_setpriority, PRIO_PROCESS, 0, 10));
    T(sys(SYS_getpriority, PRIO_PROCESS, 0));
    T(sys(SYS_setpriority, PRIO_PROCESS, 0, 5));
    T(sys(SYS_setpriority, PRIO_PROCESS, 1, 10));
    return trace;
  });
  // libc's form returns the nice value.
  Kid k = fork_kid();
  rump_lwproc_switch(k.l);
  REQUIRE(rump_sys_setpriority(PRIO_PROCESS, 0, -3) == 0);
  errno = 0;
  CHECK(rump_sys_getpriority(PRIO_PROCESS, 0) == -3);
  CHECK(errno == 0);
  CHECK_ERRNO(ESRCH, rump_sys_getpriority(PRIO_PROCESS, 999999));
  rump_lwproc_switch(nullptr);
}

TEST_CASE("capget/capset: versions, subsets, and setuid's effect on capabilities", "[cred][caps][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    CapHeader h{0x12345678, 0};
    T(sys(SYS_capget, &h, nullptr));  // asks for the preferred version
    V(h.version);
    CapData d[2];
    h = {0x12345678, 0};
    T(sys(SYS_capget, &h, d));
    V(h.version);
    h = {0x20080522, -1};
    T(sys(SYS_capget, &h, d));
    h = {0x20080522, 999999};
    T(sys(SYS_capget, &h, d));
    h = {0x20080522, 0};
    T(sys(SYS_capget, &h, d));
    uint64_t eff = d[0].effective | uint64_t{d[1].effective} << 32;
    uint64_t perm = d[0].permitted | uint64_t{d[1].permitted} << 32;
    V((eff >> 7) & 1);  // CAP_SETUID
    // Drop CAP_SYS_TIME from the effective set: settime is then EPERM.
    CapData nd[2] = {d[0], d[1]};
    nd[0].effective &= ~(1u << 25);
    // Only once the capability is gone: the host's clock must not be set.
    if (T(sys(SYS_capset, &h, nd)) != 0) return trace;
    timespec now{};
    sys(SYS_clock_gettime, CLOCK_REALTIME, &now);
    T(sys(SYS_clock_settime, CLOCK_REALTIME, &now));
    // Effective beyond permitted, permitted growing: EPERM.
    nd[0].permitted &= ~(1u << 25);
    nd[0].effective |= 1u << 25;
    T(sys(SYS_capset, &h, nd));
    nd[0].effective &= ~(1u << 25);
    T(sys(SYS_capset, &h, nd));
    nd[0].permitted |= 1u << 25;
    T(sys(SYS_capset, &h, nd));
    // Another process: EPERM; a bad version: EINVAL with the version
    // written back.
    CapHeader other{0x20080522, 1};
    T(sys(SYS_capset, &other, nd));
    CapHeader badv{1, 0};
    T(sys(SYS_capset, &badv, nd));
    V(badv.version);
    // setuid to non-root: permitted and effective sets emptied.
    T(sys(SYS_setresuid, 1000, 1000, 1000));
    h = {0x20080522, 0};
    T(sys(SYS_capget, &h, d));
    V(d[0].effective), V(d[0].permitted), V(d[1].effective), V(d[1].permitted);
    (void)perm;
    return trace;
  });
}

TEST_CASE("seteuid away from 0 and back keeps the permitted set", "[cred][caps][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    CapHeader h{0x20080522, 0};
    CapData d0[2], d1[2], d2[2];
    T(sys(SYS_capget, &h, d0));
    T(sys(SYS_setresuid, -1, 1000, -1));
    T(sys(SYS_capget, &h, d1));
    V(d1[0].effective), V(d1[1].effective);
    V(d1[0].permitted == d0[0].permitted);
    T(sys(SYS_setresuid, -1, 0, -1));
    T(sys(SYS_capget, &h, d2));
    V(d2[0].effective == d0[0].permitted);
    return trace;
  });
}

TEST_CASE("process_vm_readv/writev: segments, partial copies, EFAULT, EINVAL, ESRCH, EPERM as the host",
          "[process_vm][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    char src[64] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char dst[64] = {};
    long self = sys(SYS_getpid);
    void* bad = reinterpret_cast<void*>(uintptr_t{8});
    iovec l1{dst, 10}, r1{src, 10};
    T(sys(SYS_process_vm_readv, self, &l1, 1, &r1, 1, 0));
    V(std::memcmp(dst, src, 10) == 0);
    T(sys(SYS_process_vm_readv, self, &l1, 1, &r1, 1, 1));
    T(sys(SYS_process_vm_readv, self, &l1, 1025, &r1, 1, 0));
    T(sys(SYS_process_vm_readv, self, &l1, 1, &r1, 1025, 0));
    T(sys(SYS_process_vm_readv, self, &l1, 0, &r1, 1, 0));  // nothing to copy
    T(sys(SYS_process_vm_readv, 999999, &l1, 0, &r1, 1, 0));
    T(sys(SYS_process_vm_readv, 999999, &l1, 1, &r1, 0, 0));
    T(sys(SYS_process_vm_readv, 999999, &l1, 1, &r1, 1, 0));
    T(sys(SYS_process_vm_readv, self, bad, 1, &r1, 1, 0));
    T(sys(SYS_process_vm_readv, self, &l1, 1, bad, 1, 0));
    iovec neg{dst, static_cast<size_t>(-1)};
    T(sys(SYS_process_vm_readv, self, &neg, 1, &r1, 1, 0));
    // Segments of different sizes on the two sides.
    std::memset(dst, 0, sizeof dst);
    iovec lv[2] = {{dst, 3}, {dst + 10, 7}};
    iovec rv[2] = {{src + 5, 4}, {src + 20, 8}};
    T(sys(SYS_process_vm_readv, self, lv, 2, rv, 2, 0));
    for (int i = 0; i < 20; i++) V(dst[i]);
    // A remote fault after the first segment: what came before it.
    iovec rp[2] = {{src, 4}, {bad, 4}};
    iovec lp{dst, 8};
    T(sys(SYS_process_vm_readv, self, &lp, 1, rp, 2, 0));
    iovec rb{bad, 4};
    T(sys(SYS_process_vm_readv, self, &lp, 1, &rb, 1, 0));
    iovec lb{bad, 4};
    T(sys(SYS_process_vm_readv, self, &lb, 1, &r1, 1, 0));
    // writev into the process's own buffer.
    char msg[] = "HELLO";
    iovec lw{msg, 5}, rw{dst + 1, 5};
    T(sys(SYS_process_vm_writev, self, &lw, 1, &rw, 1, 0));
    for (int i = 0; i < 8; i++) V(dst[i]);
    // Another user's process: EPERM.
    T(sys(SYS_setresuid, 1000, 1000, 1000));
    T(sys(SYS_process_vm_readv, 1, &l1, 1, &r1, 1, 0));
    T(sys(SYS_process_vm_readv, sys(SYS_getpid), &l1, 1, &r1, 1, 0));
    return trace;
  });
}
