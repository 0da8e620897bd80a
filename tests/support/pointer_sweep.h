// The bad-pointer check that the syscall sweeps share: every call that
// reads or writes user memory through a pointer argument is made twice
// with the same scalar arguments, once with every pointer at good zeroed
// memory and once with one pointer (or all) replaced by a bad one. A bad
// pointer must give EFAULT, or exactly the good call's result (the call
// did not touch that memory for these arguments: a zero length, an error
// found first). Each call runs in a fresh probe process forked from a
// template, so one call's effects on its process never reach the next.
//
// Across all its probes, every such call must answer EFAULT at least once,
// unless kNoEfaultExpected (syscall_skip.h) names it with the reason.
#pragma once

#include <rump/rump.h>
#include <rump/vmspace.h>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "kern/syscall.h"
#include "syscall_skip.h"

namespace rump_test {

struct BadPointer {
  long value;
  const char* kind;
};

struct PointerSweep {
  lwp* templ;                      // forked (RUMP_RFFDG) for each probe
  long good;                       // zeroed read-write memory
  std::function<void()> reset;     // zeroes the good memory again (may be empty)
  std::vector<BadPointer> bad;     // pointers the kernel must refuse
  std::vector<long> scalars;       // values for the other arguments
};

// Scalars for the sweeps: 8 is also the size of a kernel sigset, 64 a
// getdents64 buffer that holds an entry.
inline constexpr long kSweepScalars[] = {0, 1, 8, 16, 64};

// Gives the calling host-space process (with an empty descriptor table)
// what the scalars name, so that calls get past their argument checks to
// the copy: descriptors 0 (an empty file), 1 (/dev/zero), 8 and 16 (files
// of 64 bytes), 64 (the root directory); two supplementary groups.
inline void open_sweep_descriptors() {
  REQUIRE(rump_sys_open("/sweep0", O_RDWR | O_CREAT | O_TRUNC, 0644) == 0);
  REQUIRE(rump_sys_open("/dev/zero", O_RDWR, 0) == 1);
  for (int fd : {8, 16}) {
    std::string path = "/sweep" + std::to_string(fd);
    int f = rump_sys_open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(f >= 0);
    REQUIRE(rump_sys_write(f, std::string(64, 'x').data(), 64) == 64);
    REQUIRE(rump_sys_dup2(f, fd) == fd);
    REQUIRE(rump_sys_close(f) == 0);
  }
  int d = rump_sys_open("/", O_RDONLY | O_DIRECTORY, 0);
  REQUIRE(d >= 0);
  REQUIRE(rump_sys_dup2(d, 64) == 64);
  REQUIRE(rump_sys_close(d) == 0);
  const gid_t groups[] = {100, 200};
  REQUIRE(rump_sys_setgroups(2, groups) == 0);
}

// The call's result in a fresh process forked from the template.
inline long probe_call(const PointerSweep& sw, const rump::SyscallName& sc, const long a[6]) {
  if (sw.reset) sw.reset();
  rump_lwproc_switch(sw.templ);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  long r = rump_syscall(sc.nr, a);
  // An LWP left in a guest space by vmspace_ctl comes back.
  if (std::strcmp(sc.name, "vmspace_ctl") == 0)
    rump_sys_vmspace_ctl(nullptr, RUMP_VMSPACE_CTL_RETURN, nullptr, nullptr);
  if (rump_lwproc_curlwp() != nullptr) rump_lwproc_releaselwp();  // unless the call ended it
  rump_lwproc_switch(sw.templ);
  while (rump_sys_wait4(-1, nullptr, WNOHANG, nullptr) > 0) {  // reap the probe
  }
  return r;
}

inline std::string describe_call(const rump::SyscallName& sc, const long a[6], long r) {
  std::string s = std::string(sc.name) + "(";
  for (int i = 0; i < sc.nargs; i++) s += (i ? ", " : "") + std::to_string(a[i]);
  return s + ") = " + std::to_string(r);
}

// Sweeps sc; returns the number of probes that answered EFAULT.
inline int sweep_bad_pointers(const PointerSweep& sw, const rump::SyscallName& sc) {
  const unsigned mem = memory_args(sc.name, sc.ptr_mask);
  int efaults = 0;
  for (long s : sw.scalars) {
    long good[6] = {};
    for (int j = 0; j < 6; j++) good[j] = (sc.ptr_mask >> j & 1) ? sw.good : s;
    const long rg = probe_call(sw, sc, good);
    for (const BadPointer& b : sw.bad) {
      // One memory argument bad at a time, then all of them (if several).
      for (int j = -1; j < sc.nargs; j++) {
        if (j >= 0 && !(mem >> j & 1)) continue;
        if (j < 0 && (mem & (mem - 1)) == 0) continue;
        long a[6];
        for (int m = 0; m < 6; m++) a[m] = (mem >> m & 1) && (j < 0 || m == j) ? b.value : good[m];
        const long r = probe_call(sw, sc, a);
        INFO(b.kind << " pointer: " << describe_call(sc, a, r) << "; with good pointers: " << rg);
        CHECK((r == -EFAULT || r == rg));
        if (r == -EFAULT) efaults++;
      }
    }
  }
  return efaults;
}

}  // namespace rump_test
