// The memory limit is an input like any other: for every limit from 64 KiB
// to 1 MiB in steps that are not a multiple of the page size (so the limit
// falls at a different point of each workload's allocations), a kernel
// boots with that limit and one workload runs until a call fails. What
// must hold at every limit:
//   - boot either succeeds or says ENOMEM;
//   - the failing call returns an errno that call may return when memory
//     runs out (ENOMEM, ENOSPC, EAGAIN, EMFILE, ENFILE as the call allows),
//     never EFAULT, EIO or success forever, and the host process survives;
//   - the kernel stays within its limit and still answers calls afterwards;
//   - halt gives every byte back (a debug build's halt panics on a leak).
// Public API only, one test case per workload so that a failing one is
// named.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <rump/rump.h>

#include "rump_test.h"

namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMinLimit = 64 * kKiB;
constexpr size_t kMaxLimit = 1024 * kKiB;
// A prime number of bytes, a little under a page: about 300 limits, each
// landing at a different offset within a page.
constexpr size_t kStep = 3079;
constexpr size_t kPage = 4096;
// A workload that never meets the limit is a failure too (the memory it
// uses is not counted); this many steps is far beyond 1 MiB for each.
constexpr int kMaxSteps = 1 << 16;

// The call that failed and its errno.
struct Failure {
  std::string call;
  int err = 0;
};

// A workload runs as a process of its own kernel (the calling thread is
// that process's LWP) until a call fails, and says which; it leaves the
// thread as the LWP it started on, so the harness can ask the kernel
// something afterwards.
using Workload = Failure (*)();

Failure failed(std::string call, int e) { return Failure{std::move(call), e}; }
Failure failed_errno(std::string call) { return Failure{std::move(call), errno}; }
Failure never_failed() { return Failure{"(no call failed)", 0}; }

std::string path(const char* fmt, int i) {
  char b[64];
  std::snprintf(b, sizeof b, fmt, i);
  return b;
}

struct Stats {
  int limits = 0;
  int boot_enomem = 0;
  int setup_failed = 0;
  int ran = 0;
};

// Runs fn on a new host thread and waits for it. fn checks with CHECK only
// (a failed REQUIRE would leave the kernel up and its CPU held).
template <class Fn>
void on_own_thread(Fn&& fn) {
  std::thread t(std::forward<Fn>(fn));
  t.join();
}

// Boots a kernel at each limit and runs w in a process of it. `allowed`
// lists the errnos the workload's calls may fail with when memory runs out.
void sweep(Workload w, std::initializer_list<int> allowed) {
  Stats st;
  for (size_t limit = kMinLimit; limit <= kMaxLimit; limit += kStep) {
    st.limits++;
    // Each kernel on a fresh thread: per-thread state is keyed by kernel,
    // and a new kernel may sit where a halted one was. Nothing may escape
    // from the kernel: an exception that does ends the test executable
    // (noexcept), instead of leaving a kernel whose CPU is still taken.
    on_own_thread([&]() noexcept {
      INFO("memory limit " << limit << " bytes");
      rump_boot_config c;
      rump_boot_config_init(&c);
      c.ncpu = 1;
      c.memlimit = limit;
      c.verbose = 0;
      rump_kernel* k = nullptr;
      int e = rump_kernel_boot(&c, &k);
      if (e != 0) {
        CHECK(e == ENOMEM);
        st.boot_enomem++;
        return;
      }
      CHECK(rump_kernel_set_current(k) == 0);
      // The workload's own process (its failure to appear is clean too).
      e = rump_lwproc_rfork(RUMP_RFFDG);
      if (e != 0) {
        INFO("rfork for the workload: " << e);
        CHECK((e == ENOMEM || e == EAGAIN));
        st.setup_failed++;
      } else {
        st.ran++;
        pid_t pid = rump_sys_getpid();
        lwp* l = rump_lwproc_curlwp();
        Failure f = w();
        INFO("workload stopped at " << f.call << ": errno " << f.err << " (" << std::strerror(f.err) << ")");
        bool ok_errno = false;
        for (int a : allowed) ok_errno = ok_errno || f.err == a;
        CHECK(ok_errno);
        CHECK(rump_kernel_memory_in_use(k) <= limit);
        // The kernel still answers, as the same process.
        CHECK(rump_lwproc_curlwp() == l);
        CHECK(rump_sys_getpid() == pid);
        errno = 0;
        CHECK(rump_sys_close(-1) == -1);
        CHECK(errno == EBADF);
      }
      rump_lwproc_switch(nullptr);
      CHECK(rump_kernel_set_current(nullptr) == 0);
      // A debug build panics here if a byte is still allocated.
      CHECK(rump_kernel_halt(k) == 0);
    });
  }
  INFO(st.limits << " limits: boot ENOMEM " << st.boot_enomem << ", no process " << st.setup_failed << ", ran "
                 << st.ran);
  // Most limits must reach the workload, or the sweep proves nothing.
  CHECK(st.ran > st.limits / 2);
}

// Files in one directory: create and close until a create fails.
Failure files_in_one_directory() {
  for (int i = 0; i < kMaxSteps; i++) {
    std::string p = path("/f%d", i);
    int fd = rump_sys_open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) return failed_errno("open(O_CREAT) #" + std::to_string(i));
    if (rump_sys_close(fd) != 0) return failed_errno("close");
  }
  return never_failed();
}

// One sparse file: a byte every 16 pages, each one a page of its own.
Failure sparse_file_pages() {
  int fd = rump_sys_open("/sparse", O_CREAT | O_RDWR, 0644);
  if (fd < 0) return failed_errno("open(O_CREAT)");
  for (int i = 0; i < kMaxSteps; i++) {
    char b = static_cast<char>('a' + i % 26);
    off_t at = static_cast<off_t>(i) * 16 * kPage + (i % 7) * 100;
    ssize_t n = rump_sys_pwrite64(fd, &b, 1, at);
    if (n != 1) {
      Failure f = failed_errno("pwrite64 #" + std::to_string(i));
      rump_sys_close(fd);
      return f;
    }
  }
  rump_sys_close(fd);
  return never_failed();
}

// Processes: children of the workload process, each with a copy of its
// descriptor table, all alive until the kernel halts.
Failure processes() {
  lwp* self = rump_lwproc_curlwp();
  for (int i = 0; i < kMaxSteps; i++) {
    int e = rump_lwproc_rfork(RUMP_RFFDG);
    rump_lwproc_switch(self);
    if (e != 0) return failed("rump_lwproc_rfork #" + std::to_string(i), e);
  }
  return never_failed();
}

// Pipes, each holding a little data.
Failure pipes() {
  static const char data[512] = {'p'};
  for (int i = 0; i < kMaxSteps; i++) {
    int fds[2];
    if (rump_sys_pipe2(fds, O_NONBLOCK) != 0) return failed_errno("pipe2 #" + std::to_string(i));
    ssize_t n = rump_sys_write(fds[1], data, sizeof data);
    if (n != static_cast<ssize_t>(sizeof data)) {
      if (n >= 0) return failed("write (short)", 0);
      return failed_errno("write #" + std::to_string(i));
    }
  }
  return never_failed();
}

// Pages of an isolated address space: a process with its own space maps
// and touches pages, grows a mapping with mremap, and now and then forks a
// copy-on-write child that writes to pages it shares with its parent.
// After the failure, the first page still holds what was written to it.
Failure isolated_address_space_pages() {
  lwp* base = rump_lwproc_curlwp();
  int e = rump_lwproc_rfork(RUMP_RFVMSPACE);
  if (e != 0) {
    rump_lwproc_switch(base);
    return failed("rump_lwproc_rfork(RFVMSPACE)", e);
  }
  lwp* self = rump_lwproc_curlwp();
  Failure f = never_failed();
  const uint32_t marker = 0x5eed1234;
  std::vector<char*> maps;
  char* grow = nullptr;
  size_t grow_len = 0;
  for (int i = 0; i < kMaxSteps && f.err == 0; i++) {
    void* m = rump_sys_mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      f = failed_errno("mmap #" + std::to_string(i));
      break;
    }
    char* g = static_cast<char*>(m);
    maps.push_back(g);
    for (int p = 0; p < 4 && f.err == 0; p++) {
      uint32_t v = i == 0 && p == 0 ? marker : static_cast<uint32_t>(i * 4 + p);
      if ((e = rump_copyout(&v, g + p * kPage + 8 * p, sizeof v)) != 0) f = failed("copyout", e);
    }
    if (f.err != 0) break;
    if (i % 3 == 0) {
      // mremap: the growing mapping moves and gets a page more each time.
      size_t nlen = grow_len + kPage;
      void* r = grow == nullptr ? rump_sys_mmap(nullptr, nlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                                : rump_sys_mremap(grow, grow_len, nlen, MREMAP_MAYMOVE, nullptr);
      if (r == MAP_FAILED) {
        f = failed_errno(grow == nullptr ? "mmap (to grow)" : "mremap");
        break;
      }
      grow = static_cast<char*>(r);
      grow_len = nlen;
      uint32_t v = static_cast<uint32_t>(i);
      if ((e = rump_copyout(&v, grow + nlen - kPage, sizeof v)) != 0) {
        f = failed("copyout (grown page)", e);
        break;
      }
    }
    if (i % 4 == 3) {
      // A copy-on-write child writes to a few shared pages, then lives on
      // (it ends with the kernel).
      e = rump_lwproc_rfork(0);
      if (e != 0) {
        rump_lwproc_switch(self);
        f = failed("rump_lwproc_rfork (COW child)", e);
        break;
      }
      for (size_t j = maps.size() >= 3 ? maps.size() - 3 : 0; j < maps.size() && f.err == 0; j++) {
        uint32_t v = 0xc0c0c0c0;
        if ((e = rump_copyout(&v, maps[j] + kPage, sizeof v)) != 0) f = failed("copyout (COW break)", e);
      }
      rump_lwproc_switch(self);
    }
  }
  // The parent's memory is intact.
  uint32_t back = 0;
  CHECK(rump_copyin(maps.empty() ? nullptr : maps[0], &back, sizeof back) == (maps.empty() ? EFAULT : 0));
  if (!maps.empty()) CHECK(back == marker);
  // The isolated process lives on; the harness asks the base process.
  rump_lwproc_switch(base);
  return f;
}

// Directory trees with renames: directory i sits below directory i/2; each
// is made under a temporary name and renamed, gets a file, and the file is
// renamed into the parent directory.
Failure directory_trees_with_renames() {
  if (rump_sys_mkdir("/t", 0755) != 0) return failed_errno("mkdir /t");
  std::vector<std::string> dirs{"/t"};
  for (int i = 1; i < kMaxSteps; i++) {
    std::string parent = dirs[static_cast<size_t>(i) / 2];
    std::string tmp = parent + path("/n%d", i);
    std::string dir = parent + path("/d%d", i);
    if (rump_sys_mkdir(tmp.c_str(), 0755) != 0) return failed_errno("mkdir " + tmp);
    if (rump_sys_rename(tmp.c_str(), dir.c_str()) != 0) return failed_errno("rename " + tmp);
    dirs.push_back(dir);
    std::string file = dir + "/f";
    int fd = rump_sys_open(file.c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd < 0) return failed_errno("open(O_CREAT) " + file);
    if (rump_sys_close(fd) != 0) return failed_errno("close");
    std::string moved = parent + path("/g%d", i);
    if (rump_sys_rename(file.c_str(), moved.c_str()) != 0) return failed_errno("rename " + file);
  }
  return never_failed();
}

// tmpfs mounts: every other one on a directory of the previous mount, each
// with a file in it.
Failure tmpfs_mounts() {
  std::string prev;
  for (int i = 0; i < kMaxSteps; i++) {
    std::string dir = (i % 2 == 1 ? prev : std::string()) + path("/m%d", i);
    if (rump_sys_mkdir(dir.c_str(), 0755) != 0) return failed_errno("mkdir " + dir);
    if (rump_sys_mount("none", dir.c_str(), "tmpfs", 0, nullptr) != 0) return failed_errno("mount " + dir);
    std::string file = dir + "/x";
    int fd = rump_sys_open(file.c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd < 0) return failed_errno("open(O_CREAT) " + file);
    if (rump_sys_close(fd) != 0) return failed_errno("close");
    prev = dir;
  }
  return never_failed();
}

// TCP connections over lo: each one connected, accepted and given a few
// bytes; every other pair closed again at once (the accepted end first, so
// that it stays in TIME_WAIT), so that control blocks and sockets are
// freed and made again while the others pile up. Non-blocking, so that a
// segment lost for want of memory ends the workload (accept4's EAGAIN)
// instead of waiting for a retransmission.
Failure tcp_connections() {
  int l = rump_sys_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (l < 0) return failed_errno("socket (listener)");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (rump_sys_bind(l, &a, sizeof a) != 0) return failed_errno("bind");
  if (rump_sys_getsockname(l, &a, &alen) != 0) return failed_errno("getsockname");
  if (rump_sys_listen(l, 64) != 0) return failed_errno("listen");
  static const char data[100] = {'t'};
  for (int i = 0; i < kMaxSteps; i++) {
    int c = rump_sys_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c < 0) return failed_errno("socket #" + std::to_string(i));
    // On lo the handshake is over when connect returns (EINPROGRESS all
    // the same, as Linux's).
    if (rump_sys_connect(c, &a, sizeof a) != 0 && errno != EINPROGRESS)
      return failed_errno("connect #" + std::to_string(i));
    int s = rump_sys_accept4(l, nullptr, nullptr, SOCK_NONBLOCK);
    if (s < 0) return failed_errno("accept4 #" + std::to_string(i));
    ssize_t n = rump_sys_write(c, data, sizeof data);
    if (n != static_cast<ssize_t>(sizeof data)) {
      if (n >= 0) return failed("write (short)", 0);
      return failed_errno("write #" + std::to_string(i));
    }
    if (i % 2 == 1) {
      rump_sys_close(s);
      rump_sys_close(c);
    }
  }
  return never_failed();
}

}  // namespace

TEST_CASE("memory limit: files in one directory", "[memlimit]") {
  sweep(files_in_one_directory, {ENOMEM, ENOSPC});
}

TEST_CASE("memory limit: sparse file pages", "[memlimit]") {
  sweep(sparse_file_pages, {ENOMEM, ENOSPC});
}

TEST_CASE("memory limit: processes", "[memlimit]") {
  sweep(processes, {ENOMEM, EAGAIN});
}

TEST_CASE("memory limit: pipes", "[memlimit]") {
  sweep(pipes, {ENOMEM, EMFILE, ENFILE, EAGAIN});
}

TEST_CASE("memory limit: pages of an isolated address space", "[memlimit]") {
  sweep(isolated_address_space_pages, {ENOMEM, EAGAIN});
}

TEST_CASE("memory limit: directory trees with renames", "[memlimit]") {
  sweep(directory_trees_with_renames, {ENOMEM, ENOSPC});
}

TEST_CASE("memory limit: tmpfs mounts", "[memlimit]") {
  sweep(tmpfs_mounts, {ENOMEM, ENOSPC});
}

TEST_CASE("memory limit: TCP connections over lo", "[memlimit]") {
  sweep(tcp_connections, {ENOMEM, ENOBUFS, EMFILE, ENFILE, EAGAIN});
}
