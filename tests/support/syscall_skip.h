// The system calls that sweeps over the whole syscall table with made-up
// arguments leave out (tests/unit/sweep/hostile_test.cc, the syscall_fuzz
// target): they end the calling process or halt the kernel, or may block
// for good with hostile but valid arguments (a huge sleep, waiting on a
// child that runs forever, a read of an empty pipe). Each has its own tests.
//
// Plain C++ (no Catch2, no kernel header): the fuzz target uses it too.
#pragma once

#include <cstring>

namespace rump_test {

inline constexpr const char* kSweepSkips[] = {
    "exit", "exit_group", "reboot", "nanosleep", "clock_nanosleep", "pause", "rt_sigsuspend",
    "wait4", "waitid", "poll", "ppoll", "select", "pselect6", "flock", "fcntl", "read", "readv",
    "pread64", "preadv", "vmspace_ctl"};

// Is the call called name one that sweeps leave out?
inline bool sweep_skips(const char* name) {
  for (const char* s : kSweepSkips)
    if (std::strcmp(s, name) == 0) return true;
  return false;
}

}  // namespace rump_test
