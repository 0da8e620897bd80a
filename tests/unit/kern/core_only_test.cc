// A program that links only the kernel core: it links (every rump_sys_*
// wrapper is in the core), boots, serves the core's calls, and a call into
// a faction it left out (the VFS, the vm faction) is ENOSYS, as NetBSD's
// sys_nomodule does for a module that is not loaded.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/mman.h>

#include <cerrno>

#include "rump_test.h"

TEST_CASE("with only the core linked, VFS and vm calls are ENOSYS and core calls work", "[core][nomodule]") {
  rump_test::KernelUp up;
  CHECK(rump_sys_getpid() > 0);
  CHECK_ERRNO(ENOSYS, rump_sys_open("/x", O_CREAT | O_RDWR, 0644));
  int fds[2];
  CHECK_ERRNO(ENOSYS, rump_sys_pipe2(fds, 0));
  char c;
  CHECK_ERRNO(ENOSYS, rump_sys_read(0, &c, 1));
  CHECK_ERRNO(ENOSYS, rump_sys_mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  CHECK_ERRNO(ENOSYS, rump_sys_vmspace_destroy(nullptr));
  // The kernel is unharmed: processes still work.
  CHECK(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  CHECK(rump_sys_getpid() > 1);
  rump_lwproc_releaselwp();
}
