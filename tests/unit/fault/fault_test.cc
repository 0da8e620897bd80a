// Fault sweeps: every injectable hypercall a piece of work makes, failed
// in turn (rump/fault.h, fail-nth), for n = 1, 2, ... until the work runs
// with nothing injected. Each step boots a fresh kernel, runs the scenario
// with the n-th hypercall failing, and halts: the failed call (if any)
// must give a clean errno, nothing may fail without an injected fault,
// nothing may crash or hang, and halt's leak check (which panics in the
// debug builds the suite uses) proves the kernel's memory came back.
//
// Also: the seeded per-kernel mode injects failures reproducibly, only of
// the chosen classes, and only into its own kernel.
#include <rump/fault.h>
#include <rump/rump.h>
#include <rump/rumpvfs.h>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

// What a scenario did: ran to the end, or stopped at the first failed call.
struct Outcome {
  bool completed = true;
  int err = 0;
  std::string call;
};

// A failed step ends the scenario; halt cleans up whatever it left.
#define STEP(expr)                                          \
  do {                                                      \
    errno = 0;                                              \
    long r_ = static_cast<long>(expr);                      \
    if (r_ == -1) {                                         \
      o.completed = false;                                  \
      o.err = errno;                                        \
      o.call = #expr;                                       \
      return;                                               \
    }                                                       \
  } while (0)
#define STEP_PTR(expr)                 \
  do {                                 \
    errno = 0;                         \
    if ((expr) == MAP_FAILED) {        \
      o.completed = false;             \
      o.err = errno;                   \
      o.call = #expr;                  \
      return;                          \
    }                                  \
  } while (0)
#define STEP_ERR(expr)       \
  do {                       \
    int e_ = (expr);         \
    if (e_ != 0) {           \
      o.completed = false;   \
      o.err = e_;            \
      o.call = #expr;        \
      return;                \
    }                        \
  } while (0)

// The errors a host's resource failures may turn into at the syscall
// boundary. Anything else (EFAULT, EINVAL, ENOENT ...) would be a lie.
bool clean_errno(int e) {
  switch (e) {
    case ENOMEM: case EAGAIN: case EIO: case EMFILE: case ENFILE: case ENOSPC: case ENOBUFS:
      return true;
    default:
      return false;
  }
}

rump_kernel* boot() {
  rump_boot_config c;
  rump_boot_config_init(&c);
  c.ncpu = 1;
  rump_kernel* k = nullptr;
  REQUIRE(rump_kernel_boot(&c, &k) == 0);
  return k;
}

constexpr unsigned kMaxSteps = 5000;

// Runs scenario with the n-th hypercall failing, n = 1, 2, ... until
// nothing fires. Returns how many failure points there were. FAULT_RUN_OF
// (the environment) fails runs of that many from the n-th on instead, for
// a longer search (rump_fault_fail_nth_run).
//
// warm: run the scenario once without faults first, in the same kernel, so
// that tables which grow once and keep their capacity (the pid table, the
// descriptor table, the root directory) no longer allocate: what is left
// are the allocations each repetition of the work makes.
enum class Start { kCold, kWarm };
template <class Scenario>
unsigned sweep(Scenario&& scenario, Start start = Start::kCold) {
  unsigned n = 1;
  for (;; n++) {
    REQUIRE(n < kMaxSteps);
    rump_kernel* k = boot();
    REQUIRE(rump_kernel_set_current(k) == 0);
    if (start == Start::kWarm) {
      Outcome w;
      scenario(w);
      rump_lwproc_switch(nullptr);
      INFO("warm-up failed at " << w.call << " errno " << w.err);
      REQUIRE(w.completed);
    }
    Outcome o;
    const char* run_env = getenv("FAULT_RUN_OF");
    unsigned run_of = run_env ? static_cast<unsigned>(atoi(run_env)) : 1;
    rump_fault_fail_nth_run(n, run_of);
    scenario(o);
    bool fired = rump_fault_fail_nth_fired() != 0;
    rump_fault_fail_nth(0);
    rump_lwproc_switch(nullptr);
    INFO("n = " << n << ": fired " << fired << "; " << (o.completed ? "completed" : "failed at ")
                << o.call << " errno " << o.err);
    if (!o.completed) {
      CHECK(fired);
      CHECK(clean_errno(o.err));
    }
    // Only the calling thread's hypercalls count, and at most one fails.
    CHECK(rump_kernel_faults_injected(k) <= (fired ? run_of : 0u));
    REQUIRE(rump_kernel_halt(k) == 0);  // the leak check panics on a leak
    rump_kernel_set_current(nullptr);
    if (!fired) {
      CHECK(o.completed);
      break;
    }
  }
  return n - 1;
}

// --- scenarios

void process_tree(Outcome& o) {
  STEP_ERR(rump_lwproc_rfork(RUMP_RFFDG));
  struct lwp* parent = rump_lwproc_curlwp();
  pid_t ppid = rump_sys_getpid();
  STEP_ERR(rump_lwproc_rfork(RUMP_RFFDG));
  pid_t cpid = rump_sys_getpid();
  CHECK(rump_sys_getppid() == ppid);
  STEP_ERR(rump_lwproc_rfork(0));  // a grandchild sharing the descriptors
  STEP_ERR(rump_lwproc_newlwp(rump_sys_getpid()));  // and a second LWP in it
  rump_lwproc_releaselwp();
  rump_lwproc_releaselwp();  // the grandchild ends
  rump_lwproc_switch(nullptr);
  // The child exits; its parent reaps it.
  rump_lwproc_switch(parent);
  int status = -1;
  (void)cpid;
  // Find the child's LWP again: end it through its process.
  STEP(rump_sys_kill(cpid, SIGKILL));
  pid_t w;
  STEP(w = rump_sys_wait4(cpid, &status, 0, nullptr));
  CHECK(w == cpid);
  CHECK(WIFSIGNALED(status));
  rump_lwproc_releaselwp();
}

void vmspace_cow(Outcome& o) {
  constexpr size_t kPg = 4096;
  STEP_ERR(rump_lwproc_rfork(RUMP_RFVMSPACE | RUMP_RFNOWAIT));
  struct lwp* parent = rump_lwproc_curlwp();
  void* m;
  STEP_PTR(m = rump_sys_mmap(nullptr, 4 * kPg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  char* g = static_cast<char*>(m);
  uint32_t v = 1;
  STEP_ERR(rump_copyout(&v, g, sizeof v));
  STEP_ERR(rump_lwproc_rfork(RUMP_RFNOWAIT));  // a copy-on-write copy
  uint32_t x = 0;
  STEP_ERR(rump_copyin(g, &x, sizeof x));
  CHECK(x == 1);
  v = 2;
  STEP_ERR(rump_copyout(&v, g, sizeof v));  // breaks the sharing
  STEP_ERR(rump_copyout(&v, g + 2 * kPg, sizeof v));
  STEP(rump_sys_mprotect(g, kPg, PROT_READ));
  rump_lwproc_releaselwp();
  rump_lwproc_switch(parent);
  STEP_ERR(rump_copyin(g, &x, sizeof x));
  CHECK(x == 1);
  STEP(rump_sys_munmap(g + kPg, kPg));
  rump_lwproc_releaselwp();
}

void tmpfs_files(Outcome& o) {
  STEP(rump_sys_mkdir("/d", 0755));
  int fd;
  STEP(fd = rump_sys_open("/d/f", O_CREAT | O_RDWR, 0644));
  char buf[8192];
  std::memset(buf, 'x', sizeof buf);
  STEP(rump_sys_write(fd, buf, sizeof buf));
  STEP(rump_sys_lseek(fd, 100, SEEK_SET));
  char in[16] = {};
  STEP(rump_sys_read(fd, in, sizeof in));
  CHECK(in[0] == 'x');
  STEP(rump_sys_ftruncate(fd, 10));
  STEP(rump_sys_close(fd));
  STEP(rump_sys_rename("/d/f", "/d/g"));
  STEP(rump_sys_symlink("g", "/d/l"));
  struct stat st;
  STEP(rump_sys_stat("/d/l", &st));
  CHECK(st.st_size == 10);
  int dfd;
  STEP(dfd = rump_sys_open("/d", O_RDONLY | O_DIRECTORY, 0));
  char dents[1024];
  STEP(rump_sys_getdents64(dfd, dents, sizeof dents));
  STEP(rump_sys_close(dfd));
  STEP(rump_sys_unlink("/d/l"));
  STEP(rump_sys_unlink("/d/g"));
  STEP(rump_sys_rmdir("/d"));
}

std::string make_host_file() {
  char path[] = "/tmp/rump_fault_etfsXXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  char data[4096];
  std::memset(data, 'h', sizeof data);
  REQUIRE(write(fd, data, sizeof data) == static_cast<ssize_t>(sizeof data));
  close(fd);
  return path;
}

void etfs_files(Outcome& o, const char* host) {
  STEP_ERR(rump_pub_etfs_register("/host", host, RUMP_ETFS_REG));
  int fd;
  STEP(fd = rump_sys_open("/host", O_RDWR, 0));
  char in[64] = {};
  STEP(rump_sys_pread64(fd, in, sizeof in, 10));
  CHECK(in[0] == 'h');
  STEP(rump_sys_pwrite64(fd, "hh", 2, 20));
  STEP(rump_sys_fsync(fd));
  struct stat st;
  STEP(rump_sys_fstat(fd, &st));
  CHECK(st.st_size == 4096);
  STEP(rump_sys_close(fd));
  STEP_ERR(rump_pub_etfs_remove("/host"));
}

void pipes_poll(Outcome& o) {
  int p[2];
  STEP(rump_sys_pipe2(p, O_CLOEXEC));
  struct pollfd pf[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
  int n;
  STEP(n = rump_sys_poll(pf, 2, 0));
  CHECK(n == 1);  // only the write end is ready
  STEP(rump_sys_write(p[1], "abc", 3));
  STEP(n = rump_sys_poll(pf, 1, 0));
  CHECK(n == 1);
  char in[4] = {};
  STEP(rump_sys_read(p[0], in, sizeof in));
  CHECK(std::strcmp(in, "abc") == 0);
  int d;
  STEP(d = rump_sys_dup(p[0]));
  STEP(rump_sys_close(p[1]));
  STEP(rump_sys_read(d, in, sizeof in));  // EOF
  STEP(rump_sys_close(p[0]));
  STEP(rump_sys_close(d));
}

void mounts(Outcome& o) {
  STEP(rump_sys_mkdir("/mnt", 0755));
  STEP(rump_sys_mount("none", "/mnt", "tmpfs", 0, nullptr));
  int fd;
  STEP(fd = rump_sys_open("/mnt/f", O_CREAT | O_WRONLY, 0644));
  STEP(rump_sys_write(fd, "data", 4));
  STEP(rump_sys_close(fd));
  STEP(rump_sys_mkdir("/mnt/sub", 0755));
  STEP(rump_sys_mount("none", "/mnt/sub", "tmpfs", 0, nullptr));
  STEP(rump_sys_umount2("/mnt/sub", 0));
  STEP(rump_sys_umount2("/mnt", MNT_DETACH));
  STEP(rump_sys_rmdir("/mnt"));
}

}  // namespace

// On both backends: a sim kernel's boot makes its world, fibers and
// objects too, and a failure anywhere must give all of them back.
TEST_CASE("boot fails cleanly at every failure point, and halt frees everything", "[fault]") {
  const char* backend = GENERATE("pthread", "sim");
  INFO("backend " << backend);
  unsigned n = 1;
  for (;; n++) {
    REQUIRE(n < kMaxSteps);
    rump_boot_config c;
    rump_boot_config_init(&c);
    c.ncpu = 2;
    c.backend = backend;
    rump_kernel* k = nullptr;
    const char* run_env = getenv("FAULT_RUN_OF");
    rump_fault_fail_nth_run(n, run_env ? static_cast<unsigned>(atoi(run_env)) : 1);
    int e = rump_kernel_boot(&c, &k);
    bool fired = rump_fault_fail_nth_fired() != 0;
    rump_fault_fail_nth(0);
    INFO("n = " << n << ": fired " << fired << ", boot " << e);
    if (e != 0) {
      CHECK(fired);
      CHECK(clean_errno(e));
      continue;
    }
    REQUIRE(k != nullptr);
    REQUIRE(rump_kernel_set_current(k) == 0);
    CHECK(rump_sys_getpid() == 1);
    REQUIRE(rump_kernel_halt(k) == 0);
    rump_kernel_set_current(nullptr);
    if (!fired) break;
  }
  WARN("boot: " << n - 1 << " failure points");
  CHECK(n > 1);  // boot allocates: there is something to fail
}

// Cold: a fresh kernel per step. Warm: the scenario ran once first.
TEST_CASE("fault sweep cold: process trees", "[fault]") {
  CHECK(sweep(process_tree) > 0);
}
TEST_CASE("fault sweep warm: process trees", "[fault]") {
  CHECK(sweep(process_tree, Start::kWarm) > 0);
}

TEST_CASE("fault sweep cold: isolated address spaces and copy-on-write", "[fault]") {
  CHECK(sweep(vmspace_cow) > 0);
}
TEST_CASE("fault sweep warm: isolated address spaces and copy-on-write", "[fault]") {
  CHECK(sweep(vmspace_cow, Start::kWarm) > 0);
}

TEST_CASE("fault sweep cold: tmpfs file work", "[fault]") {
  CHECK(sweep(tmpfs_files) > 0);
}
TEST_CASE("fault sweep warm: tmpfs file work", "[fault]") {
  CHECK(sweep(tmpfs_files, Start::kWarm) > 0);
}

TEST_CASE("fault sweep cold: etfs file work", "[fault]") {
  std::string host = make_host_file();
  CHECK(sweep([&](Outcome& o) { etfs_files(o, host.c_str()); }) > 0);
  unlink(host.c_str());
}
TEST_CASE("fault sweep warm: etfs file work", "[fault]") {
  std::string host = make_host_file();
  CHECK(sweep([&](Outcome& o) { etfs_files(o, host.c_str()); }, Start::kWarm) > 0);
  unlink(host.c_str());
}

TEST_CASE("fault sweep cold: pipes and poll", "[fault]") {
  CHECK(sweep(pipes_poll) > 0);
}
TEST_CASE("fault sweep warm: pipes and poll", "[fault]") {
  CHECK(sweep(pipes_poll, Start::kWarm) > 0);
}

TEST_CASE("fault sweep cold: mounts", "[fault]") {
  CHECK(sweep(mounts) > 0);
}
TEST_CASE("fault sweep warm: mounts", "[fault]") {
  CHECK(sweep(mounts, Start::kWarm) > 0);
}

TEST_CASE("fail-nth counts only the calling thread and fires once, or a run of times", "[fault]") {
  rump_kernel* k = boot();
  REQUIRE(rump_kernel_set_current(k) == 0);
  CHECK(rump_sys_getpid() == 1);  // the implicit LWP exists: no allocation below
  int p[2];
  REQUIRE(rump_sys_pipe2(p, 0) == 0);
  CHECK(rump_sys_close(p[0]) == 0);
  CHECK(rump_sys_close(p[1]) == 0);
  // A pipe allocates: the first injectable hypercall of pipe2 fails.
  rump_fault_fail_nth(1);
  errno = 0;
  CHECK(rump_sys_pipe2(p, 0) == -1);
  CHECK(errno == ENOMEM);
  CHECK(rump_fault_fail_nth_fired() == 1);
  CHECK(rump_kernel_faults_injected(k) == 1);
  // Once only.
  REQUIRE(rump_sys_pipe2(p, 0) == 0);
  CHECK(rump_sys_close(p[0]) == 0);
  CHECK(rump_sys_close(p[1]) == 0);
  CHECK(rump_fault_fail_nth_fired() == 1);
  // A run of two: the first injectable hypercall of this pipe2 and of
  // the next (a failed pipe2 makes no other), then none.
  rump_fault_fail_nth_run(1, 2);
  errno = 0;
  CHECK(rump_sys_pipe2(p, 0) == -1);
  CHECK(errno == ENOMEM);
  errno = 0;
  CHECK(rump_sys_pipe2(p, 0) == -1);
  CHECK(errno == ENOMEM);
  CHECK(rump_fault_fail_nth_fired() == 1);
  CHECK(rump_kernel_faults_injected(k) == 3);
  REQUIRE(rump_sys_pipe2(p, 0) == 0);
  CHECK(rump_sys_close(p[0]) == 0);
  CHECK(rump_sys_close(p[1]) == 0);
  // Armed but far away: nothing fires, and disarming clears it (a run
  // too).
  rump_fault_fail_nth(1000000);
  CHECK(rump_sys_getpid() == 1);
  CHECK(rump_fault_fail_nth_fired() == 0);
  rump_fault_fail_nth(0);
  rump_fault_fail_nth_run(1, 0);
  REQUIRE(rump_sys_pipe2(p, 0) == 0);
  CHECK(rump_sys_close(p[0]) == 0);
  CHECK(rump_sys_close(p[1]) == 0);
  CHECK(rump_kernel_faults_injected(k) == 3);
  REQUIRE(rump_kernel_halt(k) == 0);
  rump_kernel_set_current(nullptr);
}

namespace {

// Which of 200 pipe2 calls fail, as a bit string.
std::string pipe_failures(rump_kernel* k) {
  std::string s;
  for (int i = 0; i < 200; i++) {
    int p[2];
    if (rump_sys_pipe2(p, 0) == 0) {
      rump_sys_close(p[0]);
      rump_sys_close(p[1]);
      s += '0';
    } else {
      CHECK(clean_errno(errno));
      s += '1';
    }
  }
  return s;
}

}  // namespace

TEST_CASE("seeded faults: reproducible, per class, per kernel", "[fault]") {
  rump_kernel* k = boot();
  rump_kernel* other = boot();
  REQUIRE(rump_kernel_set_current(k) == 0);
  CHECK(rump_sys_getpid() == 1);
  // Descriptors 3 and 4 once, so the descriptor table has grown.
  CHECK(pipe_failures(k).find('1') == std::string::npos);
  CHECK(rump_kernel_set_faults(k, nullptr) == 0);
  rump_fault_config bad = {1, 1.5, RUMP_FAULT_ALL};
  CHECK(rump_kernel_set_faults(k, &bad) == EINVAL);
  bad = {1, 0.5, 0x100};
  CHECK(rump_kernel_set_faults(k, &bad) == EINVAL);

  rump_fault_config c = {42, 0.25, RUMP_FAULT_MEMORY};
  REQUIRE(rump_kernel_set_faults(k, &c) == 0);
  std::string a = pipe_failures(k);
  uint64_t injected = rump_kernel_faults_injected(k);
  REQUIRE(rump_kernel_set_faults(k, &c) == 0);  // the same seed again
  std::string b = pipe_failures(k);
  CHECK(a == b);
  CHECK(a.find('1') != std::string::npos);
  CHECK(a.find('0') != std::string::npos);
  CHECK(injected > 0);
  CHECK(rump_kernel_faults_injected(k) >= 2 * static_cast<uint64_t>(std::count(a.begin(), a.end(), '1')));
  c.seed = 43;
  REQUIRE(rump_kernel_set_faults(k, &c) == 0);
  CHECK(pipe_failures(k) != a);

  // The other kernel is untouched.
  REQUIRE(rump_kernel_set_current(other) == 0);
  CHECK(pipe_failures(other).find('1') == std::string::npos);
  CHECK(rump_kernel_faults_injected(other) == 0);

  // Another class only: pipes allocate memory but do no I/O.
  REQUIRE(rump_kernel_set_current(k) == 0);
  c = {42, 1.0, RUMP_FAULT_IO | RUMP_FAULT_RANDOM};
  REQUIRE(rump_kernel_set_faults(k, &c) == 0);
  CHECK(pipe_failures(k).find('1') == std::string::npos);
  REQUIRE(rump_kernel_set_faults(k, nullptr) == 0);
  CHECK(pipe_failures(k).find('1') == std::string::npos);
  REQUIRE(rump_kernel_halt(k) == 0);
  REQUIRE(rump_kernel_halt(other) == 0);
  rump_kernel_set_current(nullptr);
}
