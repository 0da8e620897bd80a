// Scenarios run against the host kernel and against the rump kernel, the
// same code for both: a scenario makes its system calls through a Sys (the
// host's syscall(2), or the rump kernel's raw entry, each returning -1 with
// errno on failure) and records every result and errno in a Trace; the
// test compares the two traces entry by entry.
//
// The host side runs in a forked child (rump_test::host_child) whenever the
// scenario changes process state (credentials, timers, prctl options), so
// the test process is left as it was.
#pragma once

#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <type_traits>
#include <string>

#include "rump_test.h"

namespace rump_diff {

// One system call with up to six arguments (integers or pointers).
struct Sys {
  long (*fn)(long nr, const long a[6]);

  template <class... A>
  long operator()(long nr, A... args) const {
    static_assert(sizeof...(A) <= 6);
    long a[6] = {as_long(args)...};
    return fn(nr, a);
  }

 private:
  template <class T>
  static long as_long(T v) {
    if constexpr (std::is_null_pointer_v<T>)
      return 0;
    else if constexpr (std::is_pointer_v<T>)
      return static_cast<long>(reinterpret_cast<uintptr_t>(v));
    else
      return static_cast<long>(v);
  }
};

inline long host_call(long nr, const long a[6]) { return syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]); }

inline long rump_call(long nr, const long a[6]) {
  long r = rump_syscall(nr, a);
  if (r < 0 && r >= -4095) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}

inline constexpr Sys kHost{&host_call};
inline constexpr Sys kRump{&rump_call};

// What a scenario saw: each call's result (or -1) and errno (0 on success),
// and values it chose to record.
struct Trace {
  static constexpr int kMax = 512;
  long v[kMax] = {};
  int n = 0;
  int line[kMax] = {};

  // Records a call's outcome; returns r.
  long call(long r, int at) {
    put(r, at);
    put(r == -1 ? errno : 0, at);
    return r;
  }
  // Records a value.
  void put(long x, int at) {
    if (n < kMax) {
      line[n] = at;
      v[n++] = x;
    }
  }
};

// In a scenario: T(sys(SYS_x, ...)) records a call, V(x) a value.
#define T(expr) trace.call((expr), __LINE__)
#define V(expr) trace.put(static_cast<long>(expr), __LINE__)

// The two traces are equal, entry by entry (the first difference is named
// by the scenario's line).
inline void check_same(const Trace& host, const Trace& rump) {
  REQUIRE(host.n == rump.n);
  for (int i = 0; i < host.n; i++) {
    INFO("entry " << i << " recorded at line " << host.line[i] << ": host " << host.v[i] << ", rump "
                  << rump.v[i]);
    CHECK(host.v[i] == rump.v[i]);
  }
}

// Runs scenario s (a Trace s(Sys)) in a forked host child and as a fresh
// process of the current rump kernel, forked from the calling context,
// and compares what they saw: for scenarios that change process state.
template <class S>
void differential(S s) {
  Trace host = rump_test::host_child<Trace>([&] { return s(kHost); });
  rump_test::Kid k = rump_test::fork_kid();
  Trace rump = rump_test::as(k.l, [&] { return s(kRump); });
  check_same(host, rump);
}

// As differential, for a scenario s(Sys, dir) that works in an empty
// directory dir and leaves it empty: on the host a fresh one under the
// existing directory parent (removed afterwards), in the rump kernel the
// same path, made with its parents.
template <class S>
void differential_in_dir(const std::string& parent, S s) {
  std::string tmpl = parent + "/rump-diff-XXXXXX";
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  const std::string dir = tmpl;
  Trace host = rump_test::host_child<Trace>([&] { return s(kHost, dir); });
  CHECK(rmdir(dir.c_str()) == 0);
  for (size_t i = 1; i <= dir.size(); i++) {
    if (i < dir.size() && dir[i] != '/') continue;
    int r = rump_sys_mkdir(dir.substr(0, i).c_str(), 0755);
    REQUIRE((r == 0 || errno == EEXIST));
  }
  rump_test::Kid k = rump_test::fork_kid();
  Trace rump = rump_test::as(k.l, [&] { return s(kRump, dir); });
  check_same(host, rump);
}

// A call that returns a descriptor is recorded by its outcome (0, or -1
// and errno), not its number: the host process has others open.
inline long fd_outcome(long r) { return r >= 0 ? 0 : r; }
#define TFD(var, expr) trace.call(::rump_diff::fd_outcome(var = (expr)), __LINE__)

}  // namespace rump_diff
