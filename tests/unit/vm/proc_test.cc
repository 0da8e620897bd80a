// Address spaces across rump_lwproc_rfork: COW copies, RFMEM sharing,
// RFVMSPACE fresh spaces, host-space children.
#include <cstring>

#include <rump/rump.h>
#include <rump/vmspace.h>

#include "rump_test.h"

using rump_test::guest_map;
using rump_test::isolated_proc;
using rump_test::KernelUp;
using rump_test::P;
using rump_test::warm_up;

namespace {
constexpr size_t kPg = 4096;

uint32_t peek(void* a) {
  uint32_t v = 0xffffffff;
  REQUIRE(rump_copyin(a, &v, 4) == 0);
  return v;
}
void poke(void* a, uint32_t v) { REQUIRE(rump_copyout(&v, a, 4) == 0); }
}  // namespace

TEST_CASE("fork of an isolated process is copy-on-write, three generations", "[vm][fork]") {
  KernelUp k({.ncpu = 2});
  struct lwp* p = isolated_proc();
  char* g = static_cast<char*>(guest_map(2 * kPg));
  REQUIRE(g != MAP_FAILED);
  poke(g, 1);
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  struct lwp* c = rump_lwproc_curlwp();
  CHECK(peek(g) == 1);  // the child sees the parent's memory
  poke(g, 2);           // and writes its own copy
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  struct lwp* gc = rump_lwproc_curlwp();
  CHECK(peek(g) == 2);
  poke(g, 3);
  poke(g + kPg, 33);
  rump_lwproc_switch(p);
  CHECK(peek(g) == 1);
  CHECK(peek(g + kPg) == 0);
  poke(g, 10);
  rump_lwproc_switch(c);
  CHECK(peek(g) == 2);
  CHECK(peek(g + kPg) == 0);
  rump_lwproc_switch(gc);
  CHECK(peek(g) == 3);
  CHECK(peek(g + kPg) == 33);
  // Mappings made after the fork are private to each.
  void* late = guest_map(kPg, PROT_READ | PROT_WRITE, P(0x400000), MAP_FIXED);
  REQUIRE(late == P(0x400000));
  rump_lwproc_releaselwp();
  rump_lwproc_switch(c);
  uint32_t x;
  CHECK(rump_copyin(P(0x400000), &x, 4) == EFAULT);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(p);
  CHECK(peek(g) == 10);
  rump_lwproc_releaselwp();
}

TEST_CASE("RFMEM shares the space: writes and mappings visible both ways", "[vm][fork]") {
  KernelUp k({.ncpu = 2});
  struct lwp* p = isolated_proc();
  char* g = static_cast<char*>(guest_map(kPg));
  REQUIRE(g != MAP_FAILED);
  REQUIRE(rump_lwproc_rfork(RUMP_RFMEM | RUMP_RFNOWAIT) == 0);
  struct lwp* c = rump_lwproc_curlwp();
  poke(g, 5);
  void* m = guest_map(kPg, PROT_READ | PROT_WRITE, P(0x500000), MAP_FIXED);
  REQUIRE(m == P(0x500000));
  poke(m, 55);
  rump_lwproc_switch(p);
  CHECK(peek(g) == 5);
  CHECK(peek(m) == 55);
  poke(g, 6);
  // The child outlives the parent's reference.
  rump_lwproc_releaselwp();
  rump_lwproc_switch(c);
  CHECK(peek(g) == 6);
  rump_lwproc_releaselwp();
}

TEST_CASE("RFVMSPACE gives a fresh empty space; RFMEM|RFVMSPACE is EINVAL", "[vm][fork]") {
  KernelUp k({.ncpu = 2});
  isolated_proc();
  char* g = static_cast<char*>(guest_map(kPg));
  REQUIRE(g != MAP_FAILED);
  poke(g, 1);
  CHECK(rump_lwproc_rfork(RUMP_RFMEM | RUMP_RFVMSPACE) == EINVAL);
  REQUIRE(rump_lwproc_rfork(RUMP_RFVMSPACE | RUMP_RFNOWAIT) == 0);
  uint32_t x;
  CHECK(rump_copyin(g, &x, 4) == EFAULT);
  rump_lwproc_releaselwp();
}

TEST_CASE("host-space parents make host-space children", "[vm][fork]") {
  KernelUp k({.ncpu = 2});
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  int local = 42, back = 0;
  // Host space: pointers are the host's.
  CHECK(rump_copyin(&local, &back, sizeof back) == 0);
  CHECK(back == 42);
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  back = 0;
  CHECK(rump_copyin(&local, &back, sizeof back) == 0);
  CHECK(back == 42);
  rump_lwproc_releaselwp();
}

TEST_CASE("exit of isolated processes gives their memory back", "[vm][fork]") {
  KernelUp k({.ncpu = 2});
  // Warm up: the thread's implicit LWP and the process table's first
  // growth stay for the kernel's life.
  warm_up();
  size_t before = k.mem();
  for (int i = 0; i < 3; i++) {
    struct lwp* p = isolated_proc();
    char* g = static_cast<char*>(guest_map(64 * kPg));
    REQUIRE(g != MAP_FAILED);
    for (int j = 0; j < 64; j++) poke(g + j * kPg, j);
    REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
    poke(g, 99);
    CHECK(k.mem() > before + 64 * kPg);
    rump_lwproc_releaselwp();
    rump_lwproc_switch(p);
    rump_lwproc_releaselwp();
  }
  CHECK(k.mem() <= before);
}
