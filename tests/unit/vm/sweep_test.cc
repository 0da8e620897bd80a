// The bad-pointer sweep from an isolated process, over every system call
// in the generated name table. Pointers are NULL, unmapped, read-only,
// straddling the end of a mapping, or wrapping, with a few scalar values.
// Every call must answer (a result or -errno); none may crash the host
// (run under ASan+UBSan) or hang; and a pointer the process cannot use
// must give EFAULT unless the call did not touch it (pointer_sweep.h).
#include <fcntl.h>

#include <cstring>
#include <set>
#include <string>

#include <rump/rump.h>
#include <rump/vmspace.h>

#include "kern/syscall.h"
#include "pointer_sweep.h"
#include "rump_test.h"

using rump_test::isolated_proc;
using rump_test::KernelUp;
using rump_test::P;
using rump_test::U;

namespace {

constexpr size_t kPg = 4096;

// Calls that end or halt things, with the reason they are left out.
struct Skip {
  const char* name;
  const char* why;
};
constexpr Skip kSkips[] = {
    {"exit", "ends the sweeping process (no pointer arguments)"},
    {"exit_group", "ends the sweeping process (no pointer arguments)"},
    {"reboot", "halts the kernel under the sweep"},
    {"kill", "kill(0/-1, sig) signals the sweeping process or all (no pointer arguments)"},
    {"tkill", "may signal the sweeping process's own LWP (no pointer arguments)"},
    {"tgkill", "may signal the sweeping process's own LWP (no pointer arguments)"},
    {"pause", "waits for a signal nobody sends (no pointer arguments)"},
    {"rt_sigsuspend", "with a good mask waits for a signal nobody sends (EFAULT: kern/sigwait_test.cc)"},
    {"rt_sigtimedwait", "with a good set and no timeout waits for a signal nobody sends"},
    // No descriptors and no (or a negative) timeout wait forever, as on
    // Linux; their bad-pointer answers are tested in tests/unit/vfs/poll_test.cc.
    {"poll", "waits forever with nfds 0 and timeout -1"},
    {"ppoll", "waits forever with nfds 0 and a NULL timeout"},
    {"select", "waits forever with no fd sets and a NULL timeout"},
    {"pselect6", "waits forever with no fd sets and a NULL timeout"},
    {"futex", "FUTEX_WAIT with no timeout on a zero word waits forever (tests: kern/futex_test.cc, "
              "vm/futex_space_test.cc)"},
};

bool skipped(const char* name) {
  for (const Skip& s : kSkips)
    if (std::strcmp(s.name, name) == 0) return true;
  return false;
}

struct Fixture {
  uintptr_t rw;        // two read/write pages, then a hole
  uintptr_t ro;        // one read-only page (zeros)
  uintptr_t unmapped;  // inside the user range, nothing there
};

Fixture make_fixture() {
  Fixture f;
  void* rw = rump_sys_mmap(P(0x20000000), 3 * kPg, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  REQUIRE(rw != MAP_FAILED);
  REQUIRE(rump_sys_munmap(static_cast<char*>(rw) + 2 * kPg, kPg) == 0);
  void* ro = rump_sys_mmap(P(0x30000000), kPg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  REQUIRE(ro != MAP_FAILED);
  f.rw = U(rw);
  f.ro = U(ro);
  f.unmapped = 0x6000'0000'0000;
  return f;
}

enum Kind { kNull, kUnmapped, kReadOnly, kStraddle, kWrap, kNumBad };
const char* kKindNames[] = {"NULL", "unmapped", "read-only", "straddling", "wrapping"};

uintptr_t bad_pointer(const Fixture& f, int kind) {
  switch (kind) {
    case kNull: return 0;
    case kUnmapped: return f.unmapped;
    case kReadOnly: return f.ro;
    case kStraddle: return f.rw + 2 * kPg - 2;
    default: return ~uintptr_t{0} - 10;
  }
}

const long kScalars[] = {0, 1, 16, -1};

}  // namespace

TEST_CASE("every syscall survives bad pointers from an isolated process", "[sweep]") {
  KernelUp k({.ncpu = 2});
  size_t calls = 0, tested = 0;
  std::set<std::string> seen;
  for (size_t i = 0; i < rump::kSyscallNameCount; i++) {
    const rump::SyscallName& sc = rump::kSyscallNames[i];
    seen.insert(sc.name);
    if (skipped(sc.name)) {
      WARN("skipped " << sc.name);
      continue;
    }
    tested++;
    // A fresh process per call: what one call changes (credentials, limits,
    // the fixture's mappings) doesn't leak into the next.
    isolated_proc();
    Fixture f = make_fixture();
    auto run = [&](const long* a, const char* what) {
      long r = rump_syscall(sc.nr, a);
      calls++;
      INFO(sc.name << " (" << what << ") args " << a[0] << ", " << a[1] << ", " << a[2] << ", " << a[3]
                   << ", " << a[4] << ", " << a[5] << " -> " << r);
      // An LWP left in a guest space by vmspace_ctl comes back.
      if (std::strcmp(sc.name, "vmspace_ctl") == 0) rump_sys_vmspace_ctl(nullptr, RUMP_VMSPACE_CTL_RETURN, nullptr, nullptr);
      // A result, or -errno with a real errno.
      CHECK((r >= 0 || (r < 0 && r >= -133)));
    };
    for (long s : kScalars) {
      long a[6];
      for (int kind = 0; kind < kNumBad; kind++) {
        // Every pointer bad at once ...
        for (int j = 0; j < 6; j++) a[j] = (sc.ptr_mask >> j & 1) ? static_cast<long>(bad_pointer(f, kind)) : s;
        run(a, kKindNames[kind]);
        // ... and one at a time, the others pointing at good zeroed memory.
        for (int j = 0; j < sc.nargs; j++) {
          if (!(sc.ptr_mask >> j & 1)) continue;
          for (int m = 0; m < 6; m++)
            a[m] = (sc.ptr_mask >> m & 1) ? static_cast<long>(m == j ? bad_pointer(f, kind) : f.rw) : s;
          run(a, kKindNames[kind]);
        }
      }
      if (sc.ptr_mask == 0) {
        for (long& x : a) x = s;
        run(a, "scalars");
      }
    }
    // The process is still usable and goes away cleanly.
    CHECK(rump_sys_getpid() > 0);
    rump_lwproc_releaselwp();
  }
  // The table knows the calls this suite is about.
  for (const char* n : {"mmap", "munmap", "brk", "vmspace_create", "vmspace_pwrite", "getresuid"})
    CHECK(seen.count(n) == 1);
  INFO(calls << " calls");
  CHECK(tested > 40);
  CHECK(calls > 1000);
}

TEST_CASE("a pointer an isolated process cannot use is EFAULT for every call that reads or writes through it",
          "[sweep]") {
  KernelUp k({.ncpu = 2});
  // The template each probe forks: the descriptors and groups of
  // open_sweep_descriptors, from a host-space parent, and the fixture's
  // mappings.
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT | RUMP_RFCFDG) == 0);
  lwp* opener = rump_lwproc_curlwp();
  rump_test::open_sweep_descriptors();
  REQUIRE(rump_lwproc_rfork(RUMP_RFVMSPACE | RUMP_RFFDG) == 0);
  lwp* templ = rump_lwproc_curlwp();
  Fixture f = make_fixture();
  rump_test::PointerSweep sw{templ,
                             static_cast<long>(f.rw),
                             {},
                             {{static_cast<long>(bad_pointer(f, kUnmapped)), "unmapped"},
                              {static_cast<long>(bad_pointer(f, kReadOnly)), "read-only"},
                              {static_cast<long>(bad_pointer(f, kStraddle)), "straddling"},
                              {static_cast<long>(bad_pointer(f, kWrap)), "wrapping"}},
                             {}};
  sw.scalars.assign(std::begin(rump_test::kSweepScalars), std::end(rump_test::kSweepScalars));
  sw.scalars.push_back(-1);  // every range check of the isolated space applies
  int swept = 0;
  for (size_t i = 0; i < rump::kSyscallNameCount; i++) {
    const rump::SyscallName& sc = rump::kSyscallNames[i];
    if (skipped(sc.name) || rump_test::memory_args(sc.name, sc.ptr_mask) == 0) continue;
    INFO(sc.name);
    int efaults = rump_test::sweep_bad_pointers(sw, sc);
    if (const char* why = rump_test::no_efault_reason(sc.name)) {
      INFO("expected no EFAULT: " << why);
      CHECK(efaults == 0);
    } else {
      CHECK(efaults > 0);
    }
    swept++;
  }
  CHECK(swept > 60);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(opener);
  rump_lwproc_releaselwp();
}
