// mlockall and munlockall against the host: flag validation (MCL_ONFAULT
// only with MCL_CURRENT or MCL_FUTURE, unknown bits EINVAL), and EPERM for
// a caller without CAP_IPC_LOCK whose RLIMIT_MEMLOCK is zero.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "differential.h"
#include "rump_test.h"

namespace {

using rump_diff::Sys;
using rump_diff::Trace;
using rump_test::KernelUp;

Trace mlockall_scenario(Sys sys) {
  Trace trace;
  T(sys(SYS_mlockall, 0));
  T(sys(SYS_mlockall, MCL_ONFAULT));
  T(sys(SYS_mlockall, 0x100));
  T(sys(SYS_mlockall, MCL_FUTURE | 0x100));
  T(sys(SYS_mlockall, MCL_FUTURE));
  T(sys(SYS_munlockall));
  T(sys(SYS_mlockall, MCL_FUTURE | MCL_ONFAULT));
  T(sys(SYS_munlockall));
  // An unprivileged caller with a limit may lock future mappings ...
  rlimit lim{1 << 20, 1 << 20};
  T(sys(SYS_setrlimit, RLIMIT_MEMLOCK, &lim));
  T(sys(SYS_setresuid, 1000, 1000, 1000));
  T(sys(SYS_mlockall, MCL_FUTURE));
  T(sys(SYS_munlockall));
  // ... but not with a zero limit.
  rlimit zero{0, 0};
  T(sys(SYS_setrlimit, RLIMIT_MEMLOCK, &zero));
  T(sys(SYS_mlockall, MCL_FUTURE));
  T(sys(SYS_mlockall, MCL_CURRENT));
  T(sys(SYS_mlockall, 0));
  T(sys(SYS_munlockall));
  return trace;
}

}  // namespace

TEST_CASE("mlockall and munlockall check flags and privilege as the host", "[mman][differential]") {
  KernelUp up;
  rump_diff::differential(mlockall_scenario);
}

TEST_CASE("mlockall in an isolated address space checks the same", "[mman]") {
  KernelUp up;
  rump_lwproc_switch(rump_test::isolated_proc());
  CHECK_ERRNO(EINVAL, rump_sys_mlockall(MCL_ONFAULT));
  CHECK(rump_sys_mlockall(MCL_CURRENT | MCL_FUTURE) == 0);
  CHECK(rump_sys_munlockall() == 0);
  rump_lwproc_switch(nullptr);
}
