// The descriptor table pointer of a process under its sibling LWPs:
// close_range(CLOSE_RANGE_UNSHARE) gives the process a private copy of a
// table it shares with another process while sibling LWPs look
// descriptors up and install new ones in it (read, dup, close). Run on
// both virtual CPUs and under TSan, which reports the unguarded access a
// table replaced under a reader used to be.
#include <fcntl.h>
#include <linux/close_range.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include <rump/rump_syscalls.h>

#include "rump_test.h"

namespace {

constexpr char kData[] = "descriptor table race";
constexpr int kRounds = 2000;

}  // namespace

TEST_CASE("close_range(CLOSE_RANGE_UNSHARE) races read and dup on sibling LWPs", "[vfs][concurrency]") {
  rump_test::KernelUp up(rump_test::BootOpts{.ncpu = 2});
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  pid_t pid = rump_sys_getpid();
  lwp* main_lwp = rump_lwproc_curlwp();
  int fd = rump_sys_open("/race", O_CREAT | O_RDWR, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(rump_sys_write(fd, kData, sizeof kData) == static_cast<long>(sizeof kData));
  // Two siblings of the main LWP, one per racing thread.
  lwp* sib[2];
  for (lwp*& l : sib) {
    REQUIRE(rump_lwproc_newlwp(pid) == 0);
    l = rump_lwproc_curlwp();
    rump_lwproc_switch(main_lwp);
  }

  std::atomic<bool> stop{false};
  std::atomic<int> bad_reads{0}, bad_unshares{0}, lost_dups{0}, dups{0};
  // The unsharer: each round shares the table with a new process (rfork
  // with neither RFFDG nor RFCFDG), unshares it, and lets the child go.
  std::thread unsharer([&] {
    rump_kernel_set_current(up.k);
    for (int i = 0; i < kRounds; i++) {
      rump_lwproc_switch(sib[0]);
      if (rump_lwproc_rfork(0) != 0) {
        bad_unshares++;
        continue;
      }
      lwp* child = rump_lwproc_curlwp();
      rump_lwproc_switch(sib[0]);
      if (rump_sys_close_range(1000, ~0U, CLOSE_RANGE_UNSHARE) != 0) bad_unshares++;
      rump_lwproc_switch(child);
      rump_lwproc_releaselwp();
    }
    stop = true;
    rump_lwproc_switch(nullptr);
  });
  // The reader: fd is in every table the process ever has, so each read
  // sees the data; a dup lands in the table of its moment (a replaced one
  // takes it along), so its close is 0 or EBADF, never anything else.
  std::thread reader([&] {
    rump_kernel_set_current(up.k);
    rump_lwproc_switch(sib[1]);
    while (!stop) {
      char buf[sizeof kData] = {};
      if (rump_sys_pread64(fd, buf, sizeof buf, 0) != static_cast<long>(sizeof buf) ||
          std::memcmp(buf, kData, sizeof kData) != 0)
        bad_reads++;
      int d = rump_sys_dup(fd);
      if (d < 0) {
        bad_reads++;
        continue;
      }
      dups++;
      if (rump_sys_close(d) != 0) {
        if (errno == EBADF) lost_dups++;
        else bad_reads++;
      }
    }
    rump_lwproc_switch(nullptr);
  });
  unsharer.join();
  reader.join();
  CHECK(bad_unshares == 0);
  CHECK(bad_reads == 0);
  CHECK(dups > 0);
  INFO("dups " << dups << ", of which lost to an unshare " << lost_dups);
  // The process's table is intact: fd still reads, nothing else open.
  rump_lwproc_switch(main_lwp);
  char buf[sizeof kData] = {};
  CHECK(rump_sys_pread64(fd, buf, sizeof buf, 0) == static_cast<long>(sizeof buf));
  CHECK(std::memcmp(buf, kData, sizeof kData) == 0);
  CHECK(rump_sys_close(fd) == 0);
  for (lwp* l : sib) {
    rump_lwproc_switch(l);
    rump_lwproc_releaselwp();
  }
  rump_lwproc_switch(main_lwp);
  rump_lwproc_releaselwp();
}
