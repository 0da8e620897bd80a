// process_vm_readv/writev across address spaces: a host-space process
// reads and writes an isolated one's memory and back; addresses outside
// the isolated map end the copy (a partial count, or EFAULT when nothing
// was copied), as unmapped memory does on Linux.
#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#include <catch2/catch.hpp>
#include <sys/mman.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "rump_test.h"

using rump_test::KernelUp;

TEST_CASE("process_vm_writev/readv between a host-space process and an isolated one", "[process_vm]") {
  KernelUp up;
  rump_test::Kid host = rump_test::fork_kid();
  lwp* iso = rump_test::isolated_proc();
  pid_t iso_pid = rump_sys_getpid();
  // Two pages, the second unmapped again: a hole after the first.
  void* g = rump_test::guest_map(2 * 4096);
  REQUIRE(g != MAP_FAILED);
  REQUIRE(rump_sys_munmap(static_cast<char*>(g) + 4096, 4096) == 0);
  uintptr_t ga = reinterpret_cast<uintptr_t>(g);

  rump_lwproc_switch(host.l);
  char msg[] = "isolated hello";
  iovec lw{msg, sizeof msg}, rw{g, sizeof msg};
  CHECK(rump_sys_process_vm_writev(iso_pid, &lw, 1, &rw, 1, 0) == static_cast<ssize_t>(sizeof msg));
  char back[32] = {};
  iovec lr{back, sizeof msg}, rr{g, sizeof msg};
  CHECK(rump_sys_process_vm_readv(iso_pid, &lr, 1, &rr, 1, 0) == static_cast<ssize_t>(sizeof msg));
  CHECK(std::strcmp(back, msg) == 0);
  // Across the end of the mapping: the bytes before the hole.
  char big[64] = {};
  iovec lb{big, sizeof big}, rb{reinterpret_cast<void*>(ga + 4096 - 10), sizeof big};
  CHECK(rump_sys_process_vm_readv(iso_pid, &lb, 1, &rb, 1, 0) == 10);
  // In the hole: EFAULT; the hole is not filled by a write either.
  iovec rh{reinterpret_cast<void*>(ga + 4096), 8};
  CHECK_ERRNO(EFAULT, rump_sys_process_vm_readv(iso_pid, &lb, 1, &rh, 1, 0));
  CHECK_ERRNO(EFAULT, rump_sys_process_vm_writev(iso_pid, &lw, 1, &rh, 1, 0));

  rump_lwproc_switch(iso);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(nullptr);
}
