// getcpu, membarrier and personality against the host: the CPU and node
// the caller runs on (in range, node 0), membarrier's query mask, flag and
// command errors, the EPERM of private commands before registration and
// the registrations GET_REGISTRATIONS reports (a forked child's too), and
// personality's query, set and inheritance rules.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <linux/membarrier.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "differential.h"
#include "rump_test.h"

namespace {

// MEMBARRIER_CMD_GET_REGISTRATIONS (Linux 6.3; older headers lack it).
constexpr int kGetRegistrations = 1 << 9;

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

}  // namespace

TEST_CASE("membarrier: query mask, flags, registration and EPERM as the host", "[compat][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    T(sys(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_QUERY, 1, 0));
    T(sys(SYS_membarrier, 1 << 12, 0, 0));
    T(sys(SYS_membarrier, -1, 0, 0));
    T(sys(SYS_membarrier, kGetRegistrations, 0, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0));
    // Private commands need the process to register first.
    T(sys(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_FLAG_CPU, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 2, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, MEMBARRIER_CMD_FLAG_CPU, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0));
    T(sys(SYS_membarrier, kGetRegistrations, 0, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0));
    T(sys(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0));
    T(sys(SYS_membarrier, kGetRegistrations, 0, 0));
    return trace;
  });
}

TEST_CASE("personality: query, PER_LINUX with flags, inheritance, as the host", "[compat][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    T(sys(SYS_personality, 0xffffffffUL));
    T(sys(SYS_personality, static_cast<long>(PER_LINUX) | ADDR_NO_RANDOMIZE));
    T(sys(SYS_personality, 0xffffffffUL));
    // The upper half of the register is not part of the argument.
    T(sys(SYS_personality, 0xffffffffffffffffUL));
    T(sys(SYS_personality, PER_LINUX));
    T(sys(SYS_personality, 0xffffffffUL));
    return trace;
  });
}

TEST_CASE("personality keeps only Linux's execution domain and is inherited", "[compat]") {
  KernelUp up;
  Kid k = fork_kid();
  rump_lwproc_switch(k.l);
  CHECK_ERRNO(EINVAL, rump_sys_personality(static_cast<unsigned long>(PER_BSD)));
  CHECK(rump_sys_personality(0xffffffffUL) == 0);
  CHECK(rump_sys_personality(static_cast<unsigned long>(ADDR_NO_RANDOMIZE) | READ_IMPLIES_EXEC) == 0);
  Kid c = fork_kid();
  rump_lwproc_switch(c.l);
  CHECK(rump_sys_personality(0xffffffffUL) == (static_cast<int>(ADDR_NO_RANDOMIZE) | READ_IMPLIES_EXEC));
  rump_lwproc_switch(nullptr);
}

TEST_CASE("membarrier registrations are inherited by a forked child, as the host's", "[compat][differential]") {
  KernelUp up;
  // A host child registers and forks a grandchild, which reports its
  // registrations and whether a private barrier is allowed.
  auto host = host_child<long>([] {
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) return -1L;
    return host_child<long>([] {
      long regs = syscall(SYS_membarrier, kGetRegistrations, 0, 0);
      return regs * 2 + (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 ? 1 : 0);
    });
  });
  Kid k = fork_kid();
  rump_lwproc_switch(k.l);
  REQUIRE(rump_sys_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0);
  Kid d = fork_kid();
  rump_lwproc_switch(d.l);
  long regs = rump_sys_membarrier(kGetRegistrations, 0, 0);
  long rump = regs * 2 + (rump_sys_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 ? 1 : 0);
  CHECK(rump == host);
  CHECK(regs == MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED);
  rump_lwproc_switch(nullptr);
}

TEST_CASE("getcpu reports a CPU of the kernel and node 0, and takes null pointers", "[compat]") {
  KernelUp up({.ncpu = 2});
  for (int i = 0; i < 50; i++) {
    unsigned cpu = 99, node = 99;
    REQUIRE(rump_sys_getcpu(&cpu, &node) == 0);
    CHECK(cpu < 2);
    CHECK(node == 0);
  }
  unsigned cpu = 99;
  CHECK(rump_sys_getcpu(&cpu, nullptr) == 0);
  CHECK(cpu < 2);
  CHECK(rump_sys_getcpu(nullptr, nullptr) == 0);
  CHECK_ERRNO(EFAULT, rump_sys_getcpu(reinterpret_cast<unsigned*>(8), nullptr));
}

TEST_CASE("getcpu with and without null pointers as the host", "[compat][differential]") {
  KernelUp up;
  differential([](Sys sys) {
    Trace trace;
    unsigned cpu = 12345, node = 12345;
    T(sys(SYS_getcpu, &cpu, &node, nullptr));
    V(cpu != 12345), V(node);
    T(sys(SYS_getcpu, nullptr, nullptr, nullptr));
    T(sys(SYS_getcpu, nullptr, &node, nullptr));
    V(node);
    return trace;
  });
}
