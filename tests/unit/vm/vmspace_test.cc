// DragonFly's vmspace_* calls: the table, each call and its errors,
// vmspace_ctl RUN/RETURN, inheritance by fork, teardown at exit.
#include <unistd.h>

#include <cstring>

#include <rump/rump.h>
#include <rump/vmspace.h>

#include "rump_test.h"

using rump_test::KernelUp;
using rump_test::P;
using rump_test::warm_up;

namespace {
constexpr size_t kPg = 4096;
void* const kId = reinterpret_cast<void*>(0x1234);
void* const kId2 = reinterpret_cast<void*>(0x5678);
constexpr uintptr_t kGuest = 0x10000000;
}  // namespace

TEST_CASE("vmspace_create and vmspace_destroy", "[vm][vmspace]") {
  KernelUp k({.ncpu = 2});
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  // No table yet: EINVAL, as DragonFly.
  CHECK_ERRNO(EINVAL, rump_sys_vmspace_destroy(kId));
  CHECK_ERRNO(EINVAL, rump_sys_vmspace_munmap(kId, P(kGuest), kPg));
  CHECK_ERRNO(EINVAL, rump_sys_vmspace_create(nullptr, 0, nullptr));
  CHECK_ERRNO(EINVAL, rump_sys_vmspace_create(kId, 1, nullptr));
  CHECK_ERRNO(EINVAL, rump_sys_vmspace_create(kId, 0, kId2));
  CHECK(rump_sys_vmspace_create(kId, 0, nullptr) == 0);
  CHECK_ERRNO(EEXIST, rump_sys_vmspace_create(kId, 0, nullptr));
  CHECK_ERRNO(ENOENT, rump_sys_vmspace_destroy(kId2));
  CHECK(rump_sys_vmspace_destroy(kId) == 0);
  CHECK_ERRNO(ENOENT, rump_sys_vmspace_destroy(kId));
  CHECK(rump_sys_vmspace_create(kId, 0, nullptr) == 0);  // the id is free again
  rump_lwproc_releaselwp();
}

TEST_CASE("vmspace_mmap, pwrite, pread, munmap, mcontrol", "[vm][vmspace]") {
  KernelUp k({.ncpu = 2});
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  REQUIRE(rump_sys_vmspace_create(kId, 0, nullptr) == 0);
  CHECK_ERRNO(ENOENT, rump_vmspace_mmap(kId2, nullptr, kPg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  void* a = rump_vmspace_mmap(kId, P(kGuest), 4 * kPg, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  REQUIRE(a == P(kGuest));
  CHECK_ERRNO(EINVAL, rump_vmspace_mmap(kId, nullptr, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  CHECK_ERRNO(EBADF, rump_vmspace_mmap(kId, nullptr, kPg, PROT_READ, MAP_PRIVATE, 5, 0));  // not open

  char out[3 * kPg], in[3 * kPg];
  for (size_t i = 0; i < sizeof out; i++) out[i] = static_cast<char>(i * 7);
  CHECK(rump_sys_vmspace_pwrite(kId, out, sizeof out, 0, kGuest + 100) == (ssize_t)sizeof out);
  CHECK(rump_sys_vmspace_pread(kId, in, sizeof in, 0, kGuest + 100) == (ssize_t)sizeof in);
  CHECK(std::memcmp(in, out, sizeof in) == 0);
  // Stops short at the first page that faults; EFAULT if nothing done.
  CHECK(rump_sys_vmspace_pread(kId, in, 2 * kPg, 0, kGuest + 3 * kPg + 10) == (ssize_t)(kPg - 10));
  CHECK(rump_sys_vmspace_pwrite(kId, out, 2 * kPg, 0, kGuest + 3 * kPg) == (ssize_t)kPg);
  CHECK_ERRNO(EFAULT, rump_sys_vmspace_pread(kId, in, 8, 0, kGuest + 8 * kPg));
  CHECK_ERRNO(EFAULT, rump_sys_vmspace_pwrite(kId, out, 8, 0, 0));
  CHECK_ERRNO(EINVAL, rump_sys_vmspace_pread(kId, in, 8, 1, kGuest));
  CHECK_ERRNO(ENOENT, rump_sys_vmspace_pread(kId2, in, 8, 0, kGuest));
  CHECK(rump_sys_vmspace_pread(kId, in, 0, 0, kGuest) == 0);
  // A bad buffer on the caller's side (host space: the first page).
  CHECK_ERRNO(EFAULT, rump_sys_vmspace_pread(kId, P(16), 8, 0, kGuest));

  // mcontrol: MADV_DONTNEED zeroes; DragonFly's extra behaviours are no-ops.
  CHECK(rump_sys_vmspace_mcontrol(kId, P(kGuest), kPg, MADV_DONTNEED, 0) == 0);
  CHECK(rump_sys_vmspace_pread(kId, in, 8, 0, kGuest + 100) == 8);
  CHECK(in[0] == 0);
  CHECK(rump_sys_vmspace_mcontrol(kId, P(kGuest), kPg, RUMP_MADV_INVAL, 0) == 0);
  CHECK(rump_sys_vmspace_mcontrol(kId, P(kGuest), kPg, RUMP_MADV_SETMAP, 0) == 0);
  CHECK_ERRNO(EINVAL, rump_sys_vmspace_mcontrol(kId, P(kGuest), kPg, 9999, 0));
  CHECK_ERRNO(EINVAL, rump_sys_vmspace_mcontrol(kId, P(~uintptr_t{0} - 10), 100, MADV_NORMAL, 0));
  CHECK_ERRNO(EINVAL, rump_sys_vmspace_mcontrol(kId, P(16), kPg, MADV_NORMAL, 0));

  // munmap: page rounding as DragonFly; wrap and range errors are EINVAL.
  CHECK(rump_sys_vmspace_munmap(kId, P(kGuest + kPg + 5), 10) == 0);  // unmaps page 1
  CHECK(rump_sys_vmspace_pread(kId, in, 8, 0, kGuest + kPg) == -1);
  CHECK(rump_sys_vmspace_pread(kId, in, 8, 0, kGuest) == 8);
  CHECK_ERRNO(EINVAL, rump_sys_vmspace_munmap(kId, P(~uintptr_t{0} - 10), 100));
  CHECK_ERRNO(EINVAL, rump_sys_vmspace_munmap(kId, P(16), kPg));
  CHECK(rump_sys_vmspace_munmap(kId, P(kGuest), 0) == 0);
  rump_lwproc_releaselwp();
}

TEST_CASE("vmspace_ctl RUN makes syscalls address the guest, RETURN comes back", "[vm][vmspace]") {
  KernelUp k({.ncpu = 2});
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  REQUIRE(rump_sys_setresuid(11, 22, 33) == 0);
  REQUIRE(rump_sys_vmspace_create(kId, 0, nullptr) == 0);
  REQUIRE(rump_vmspace_mmap(kId, P(kGuest), kPg, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == P(kGuest));
  CHECK_ERRNO(ENOENT, rump_sys_vmspace_ctl(kId2, RUMP_VMSPACE_CTL_RUN, nullptr, nullptr));
  CHECK_ERRNO(EOPNOTSUPP, rump_sys_vmspace_ctl(kId, 77, nullptr, nullptr));
  CHECK_ERRNO(EINVAL, rump_sys_vmspace_ctl(nullptr, RUMP_VMSPACE_CTL_RETURN, nullptr, nullptr));

  REQUIRE(rump_sys_vmspace_ctl(kId, RUMP_VMSPACE_CTL_RUN, nullptr, nullptr) == 0);
  uid_t* g = reinterpret_cast<uid_t*>(kGuest);
  CHECK(rump_sys_getresuid(g, g + 1, g + 2) == 0);          // guest addresses
  uid_t host_uid;
  CHECK_ERRNO(EFAULT, rump_sys_getresuid(&host_uid, g, g));  // a host pointer means nothing here
  CHECK_ERRNO(EBUSY, rump_sys_vmspace_destroy(kId));          // we run in it
  // Memory calls act on the guest too.
  void* m = rump_sys_mmap(P(kGuest + 16 * kPg), kPg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  CHECK(m == P(kGuest + 16 * kPg));
  CHECK(rump_sys_vmspace_ctl(nullptr, RUMP_VMSPACE_CTL_RETURN, nullptr, nullptr) == 0);

  uid_t ids[3] = {};
  CHECK(rump_sys_vmspace_pread(kId, ids, sizeof ids, 0, kGuest) == (ssize_t)sizeof ids);
  CHECK(ids[0] == 11);
  CHECK(ids[1] == 22);
  CHECK(ids[2] == 33);
  char c;
  CHECK(rump_sys_vmspace_pread(kId, &c, 1, 0, kGuest + 16 * kPg) == 1);
  // Back in the own (host) space, host pointers work again.
  uid_t r = 0, e = 0, s = 0;
  CHECK(rump_sys_getresuid(&r, &e, &s) == 0);
  CHECK(e == 22);
  CHECK(rump_sys_vmspace_destroy(kId) == 0);
  rump_lwproc_releaselwp();
}

TEST_CASE("the vmspace table is COW-copied by fork and gone at exit", "[vm][vmspace]") {
  KernelUp k({.ncpu = 2});
  warm_up();
  size_t before = k.mem();
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  struct lwp* p = rump_lwproc_curlwp();
  REQUIRE(rump_sys_vmspace_create(kId, 0, nullptr) == 0);
  REQUIRE(rump_vmspace_mmap(kId, P(kGuest), 64 * kPg, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == P(kGuest));
  int v = 1;
  for (size_t i = 0; i < 64; i++) REQUIRE(rump_sys_vmspace_pwrite(kId, &v, sizeof v, 0, kGuest + i * kPg) == 4);
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);
  struct lwp* c = rump_lwproc_curlwp();
  int r = 0;
  CHECK(rump_sys_vmspace_pread(kId, &r, sizeof r, 0, kGuest) == 4);
  CHECK(r == 1);
  v = 2;
  CHECK(rump_sys_vmspace_pwrite(kId, &v, sizeof v, 0, kGuest) == 4);
  CHECK_ERRNO(EEXIST, rump_sys_vmspace_create(kId, 0, nullptr));
  rump_lwproc_switch(p);
  CHECK(rump_sys_vmspace_pread(kId, &r, sizeof r, 0, kGuest) == 4);
  CHECK(r == 1);
  // The parent can run in its space while the child destroys its copy.
  REQUIRE(rump_sys_vmspace_ctl(kId, RUMP_VMSPACE_CTL_RUN, nullptr, nullptr) == 0);
  rump_lwproc_switch(c);
  CHECK(rump_sys_vmspace_destroy(kId) == 0);
  rump_lwproc_releaselwp();
  // Exit of the parent while an LWP runs in a guest space: all released.
  rump_lwproc_switch(p);
  rump_lwproc_releaselwp();
  CHECK(k.mem() <= before);
}
