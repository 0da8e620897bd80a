// The public API as a user sees it: only <rump/rump.h> and
// <rump/kernel.hpp> (no kernel-internal header). Boot, fork, wait, read
// the message buffer, halt; two kernels at once.
#include <rump/kernel.hpp>
#include <rump/rump.h>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

TEST_CASE("C API: boot, fork, exit, wait, msgbuf, halt", "[api]") {
  rump_boot_config c;
  rump_boot_config_init(&c);
  c.ncpu = 1;
  c.hostname = "apihost";
  c.verbose = 0;
  rump_kernel* k = nullptr;
  REQUIRE(rump_kernel_boot(&c, &k) == 0);
  REQUIRE(rump_kernel_set_current(k) == 0);

  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  lwp* parent = rump_lwproc_curlwp();
  pid_t ppid = rump_sys_getpid();
  CHECK(ppid > 1);
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);
  pid_t cpid = rump_sys_getpid();
  CHECK(rump_sys_getppid() == ppid);
  CHECK(rump_sys_exit(3) == 0);
  rump_lwproc_switch(parent);
  int st = -1;
  REQUIRE(rump_sys_wait4(-1, &st, 0, nullptr) == cpid);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 3);
  errno = 0;
  CHECK(rump_sys_wait4(-1, &st, 0, nullptr) == -1);
  CHECK(errno == ECHILD);

  struct utsname u;
  REQUIRE(rump_sys_uname(&u) == 0);
  CHECK(std::string(u.nodename) == "apihost");

  size_t n = rump_msgbuf_read(nullptr, 0);
  std::string buf(n + 1, '\0');
  rump_msgbuf_read(buf.data(), buf.size());
  CHECK(buf.find("booting") != std::string::npos);

  long args[6] = {};
  CHECK(rump_syscall(100000, args) == -ENOSYS);
  CHECK(std::string(rump_syscall_name(SYS_getpid)) == "getpid");

  rump_lwproc_releaselwp();
  CHECK(rump_lwproc_curlwp() == nullptr);
  rump_kernel_set_current(nullptr);
  CHECK(rump_kernel_halt(k) == 0);
}

TEST_CASE("C++ API: Kernel::boot, rfork, run, msgbuf, halt", "[api]") {
  absl::StatusOr<rump::Kernel> k = rump::Kernel::boot({.ncpu = 1, .hostname = "cxx", .verbose = 0});
  REQUIRE(k.ok());
  CHECK(k->running());
  CHECK(k->memory_in_use() > 0);
  absl::StatusOr<rump::Process> p = k->rfork(RUMP_RFFDG);
  REQUIRE(p.ok());
  CHECK(p->pid() > 1);
  CHECK(p->run([] { return rump_sys_getppid(); }) == 1);
  CHECK(p->run([] { return rump_sys_getpid(); }) == p->pid());
  // The thread's context is restored after run().
  CHECK(k->run([] { return rump_sys_getpid(); }) == 1);
  // A child of p, waited for by p.
  pid_t child = p->run([] {
    lwp* me = rump_lwproc_curlwp();
    if (rump_lwproc_rfork(RUMP_RFFDG) != 0) return -1;
    pid_t c = rump_sys_getpid();
    rump_sys_exit(5);
    rump_lwproc_switch(me);
    return c;
  });
  REQUIRE(child > 0);
  int st = -1;
  CHECK(p->run([&] { return rump_sys_wait4(child, &st, 0, nullptr); }) == child);
  CHECK(WEXITSTATUS(st) == 5);
  CHECK(k->msgbuf().find("ready") != std::string::npos);
  // Errors carry the errno.
  absl::StatusOr<rump::Process> bad = k->rfork(RUMP_RFFDG | RUMP_RFCFDG);
  CHECK(!bad.ok());
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(k->halt().ok());
  CHECK(!k->running());
  CHECK(k->halt().ok());  // idempotent
}

TEST_CASE("two kernels at once, each with its own pids and host name", "[api]") {
  auto a = rump::Kernel::boot({.ncpu = 1, .hostname = "alpha", .verbose = 0});
  auto b = rump::Kernel::boot({.ncpu = 1, .hostname = "beta", .verbose = 0});
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  auto name = [](const rump::Kernel& k) {
    return k.run([] {
      struct utsname u;
      rump_sys_uname(&u);
      return std::string(u.nodename);
    });
  };
  CHECK(name(*a) == "alpha");
  CHECK(name(*b) == "beta");
  auto pa = a->rfork();
  auto pb = b->rfork();
  REQUIRE(pa.ok());
  REQUIRE(pb.ok());
  pa->run([] { return rump_sys_setuid(1000); });
  CHECK(pa->run([] { return rump_sys_getuid(); }) == 1000u);
  CHECK(pb->run([] { return rump_sys_getuid(); }) == 0u);
  CHECK(a->halt().ok());
  CHECK(name(*b) == "beta");
  CHECK(pb->run([] { return rump_sys_getpid(); }) == pb->pid());
  // A new kernel boots while b runs.
  auto c = rump::Kernel::boot({.ncpu = 1, .verbose = 0});
  REQUIRE(c.ok());
  CHECK(c->run([] { return rump_sys_getpid(); }) == 1);
}

TEST_CASE("boot with a bad configuration reports EINVAL", "[api]") {
  auto k = rump::Kernel::boot({.ncpu = -1});
  REQUIRE(!k.ok());
  CHECK(k.status().code() == absl::StatusCode::kInvalidArgument);
  rump_kernel* kp = nullptr;
  CHECK(rump_kernel_boot(nullptr, nullptr) == EINVAL);
  CHECK(kp == nullptr);
}

TEST_CASE("the hypercall backend is named at boot", "[api]") {
  auto bad = rump::Kernel::boot({.ncpu = 1, .verbose = 0, .backend = "no-such-backend"});
  REQUIRE(!bad.ok());
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  auto k = rump::Kernel::boot({.ncpu = 1, .verbose = 0, .backend = "pthread"});
  REQUIRE(k.ok());
  CHECK(k->run([] { return rump_sys_getpid(); }) == 1);
}

// This program links the core alone (rumpkern): every faction's public
// interface still links, and calls into the factions it left out are ENOSYS.
TEST_CASE("calls into factions that are not linked are ENOSYS", "[api]") {
  rump_kernel* k = nullptr;
  REQUIRE(rump_kernel_boot(nullptr, &k) == 0);
  REQUIRE(rump_kernel_set_current(k) == 0);
  CHECK(rump_pub_etfs_register("/x", "/etc/hostname", RUMP_ETFS_REG) == ENOSYS);
  CHECK(rump_pub_etfs_remove("/x") == ENOSYS);
  errno = 0;
  CHECK(rump_sys_open("/", O_RDONLY) == -1);
  CHECK(errno == ENOSYS);
  errno = 0;
  CHECK(rump_sys_mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED);
  CHECK(errno == ENOSYS);
  CHECK(rump_sys_getpid() == 1);
  rump_kernel_set_current(nullptr);
  CHECK(rump_kernel_halt(k) == 0);
}
