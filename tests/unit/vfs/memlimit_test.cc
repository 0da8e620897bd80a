// The VFS at its memory limit: for every limit from 64 KiB to 1 MiB in
// 4 KiB steps, each workload runs until a call fails. Every failure must be
// a clean errno (never an exception or abort reaching the host), what the
// failed call was doing must be undone (the name it would have made is not
// there, a rename leaves exactly one of the two names), the kernel must
// still work afterwards (everything made is removed again) and it must halt
// and give every byte back (a Debug build's halt panics on a leak).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <functional>
#include <vector>

#include <rump/rump_syscalls.h>

#include "rump_test.h"

namespace {

constexpr size_t kLow = 64 * 1024;
constexpr size_t kHigh = 1024 * 1024;
constexpr size_t kStep = 4 * 1024;
// Far more than any limit above allows: a workload that never fails is a
// defect of the memory accounting.
constexpr int kMaxSteps = 1 << 16;

bool clean_out_of_memory(int e) { return e == ENOMEM || e == ENOSPC || e == EMFILE || e == ENFILE; }

// What one workload at one limit did.
struct Outcome {
  bool booted = false;
  int steps = 0;      // successful steps before the failure
  int error = 0;      // errno of the failing call
};

// Boots a kernel with the limit (a limit too small to boot is ENOMEM from
// boot, a clean failure too), runs work (which returns the errno that ended
// it, after cleaning up), halts.
void at_limit(size_t limit, const char* what, const std::function<Outcome()>& work) {
  rump_test::on_fresh_thread([&] {
    rump_test::BootOpts o;
    o.ncpu = 1;
    o.memlimit = limit;
    rump_boot_config c = rump_test::boot_config(o);
    rump_kernel* k = nullptr;
    int e = rump_kernel_boot(&c, &k);
    if (e != 0) {
      INFO(what << " at " << limit << ": boot failed with " << e);
      REQUIRE(e == ENOMEM);
      return;
    }
    REQUIRE(rump_kernel_set_current(k) == 0);
    Outcome r = work();
    rump_kernel_set_current(nullptr);
    REQUIRE(rump_kernel_halt(k) == 0);
    INFO(what << " at " << limit << ": " << r.steps << " steps, then errno " << r.error);
    REQUIRE(r.steps < kMaxSteps);
    REQUIRE(clean_out_of_memory(r.error));
  });
}

void for_each_limit(const char* what, const std::function<Outcome()>& work) {
  for (size_t limit = kLow; limit <= kHigh; limit += kStep) at_limit(limit, what, work);
}

void name(char* buf, size_t n, const char* fmt, int i) { std::snprintf(buf, n, fmt, i); }

// Whether path names something; any answer but yes or ENOENT fails the
// test (the failed call gave back what it took, so stat has room).
bool exists(const char* path) {
  struct stat st;
  if (rump_sys_stat(path, &st) == 0) return true;
  int e = errno;
  INFO("stat " << path);
  CHECK(e == ENOENT);
  return false;
}

// Creates an empty file at p; on failure records errno in r and checks
// that the failed call left no name behind.
bool create_file(const char* p, Outcome& r) {
  int fd = rump_sys_open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
  if (fd < 0) {
    r.error = errno;
    CHECK(!exists(p));
    return false;
  }
  REQUIRE(rump_sys_close(fd) == 0);
  return true;
}

// Files in one directory: creat until it fails; the failed name is absent,
// every made name is there and goes again.
Outcome files_in_one_directory() {
  Outcome r;
  char p[64];
  for (; r.steps < kMaxSteps; r.steps++) {
    name(p, sizeof p, "/file-with-a-longish-name-%d", r.steps);
    if (!create_file(p, r)) break;
  }
  for (int i = 0; i < r.steps; i++) {
    name(p, sizeof p, "/file-with-a-longish-name-%d", i);
    REQUIRE(rump_sys_unlink(p) == 0);
  }
  return r;
}

// A sparse file: one byte every 64 KiB until a write fails; the written
// bytes read back and the holes read as zeros.
Outcome sparse_file_pages() {
  Outcome r;
  int fd = rump_sys_open("/sparse", O_CREAT | O_RDWR, 0644);
  if (fd < 0) {
    r.error = errno;
    return r;
  }
  constexpr off_t kStride = 64 * 1024;
  for (; r.steps < kMaxSteps; r.steps++) {
    char b = static_cast<char>('a' + r.steps % 26);
    if (rump_sys_pwrite64(fd, &b, 1, r.steps * kStride) != 1) {
      r.error = errno;
      break;
    }
  }
  for (int i = 0; i < r.steps; i++) {
    char b[2] = {};
    REQUIRE(rump_sys_pread64(fd, b, 2, i * kStride) >= 1);
    REQUIRE(b[0] == static_cast<char>('a' + i % 26));
    REQUIRE(b[1] == 0);
  }
  // The pages go first, through the descriptor: a path lookup needs a
  // path buffer, and the file holds all the memory there is.
  REQUIRE(rump_sys_ftruncate(fd, 0) == 0);
  REQUIRE(rump_sys_close(fd) == 0);
  REQUIRE(rump_sys_unlink("/sparse") == 0);
  return r;
}

// Pipes, each holding a little data, until pipe2 fails (or the write
// that gives a pipe its buffer); non-blocking, so that the pipe whose
// write failed reads EAGAIN.
Outcome pipes() {
  Outcome r;
  std::vector<int> fds;
  for (; r.steps < kMaxSteps; r.steps++) {
    int p[2];
    if (rump_sys_pipe2(p, O_NONBLOCK) != 0) {
      r.error = errno;
      break;
    }
    fds.push_back(p[0]);
    fds.push_back(p[1]);
    char b = 'x';
    if (rump_sys_write(p[1], &b, 1) != 1) {
      r.error = errno;
      r.steps++;
      break;
    }
  }
  for (size_t i = 0; i + 1 < fds.size(); i += 2) {
    char b = 0;
    long n = rump_sys_read(fds[i], &b, 1);
    if (n == 1) {
      CHECK(b == 'x');
    } else {
      CHECK(n == -1);
      CHECK(errno == EAGAIN);
      CHECK(i + 2 == fds.size());  // only the last pipe's write failed
    }
  }
  for (int fd : fds) REQUIRE(rump_sys_close(fd) == 0);
  return r;
}

// Directory trees with renames: /d<i>/f<i>, then each file moves into the
// previous directory under a new name; a failed mkdir, creat or rename
// changes nothing.
Outcome trees_with_renames() {
  Outcome r;
  char d[64], f[96], to[96];
  int dirs = 0;
  for (; r.steps < kMaxSteps; r.steps++) {
    int i = dirs;
    name(d, sizeof d, "/dir-%d", i);
    if (rump_sys_mkdir(d, 0755) != 0) {
      r.error = errno;
      CHECK(!exists(d));
      break;
    }
    dirs++;
    std::snprintf(f, sizeof f, "/dir-%d/file-%d", i, i);
    if (!create_file(f, r)) break;
    if (i == 0) continue;
    std::snprintf(to, sizeof to, "/dir-%d/renamed-with-a-long-new-name-%d", i - 1, i);
    if (rump_sys_rename(f, to) != 0) {
      r.error = errno;
      CHECK(exists(f));
      CHECK(!exists(to));
      break;
    }
    CHECK(!exists(f));
    CHECK(exists(to));
  }
  // Take everything down again: the kernel still works after the failure.
  for (int i = dirs - 1; i >= 0; i--) {
    std::snprintf(f, sizeof f, "/dir-%d/file-%d", i, i);
    if (exists(f)) REQUIRE(rump_sys_unlink(f) == 0);
    std::snprintf(to, sizeof to, "/dir-%d/renamed-with-a-long-new-name-%d", i, i + 1);
    if (exists(to)) REQUIRE(rump_sys_unlink(to) == 0);
    name(d, sizeof d, "/dir-%d", i);
    REQUIRE(rump_sys_rmdir(d) == 0);
  }
  return r;
}

// tmpfs mounts, each with a file in it, until mkdir, mount or creat fails.
Outcome tmpfs_mounts() {
  Outcome r;
  char d[64], f[96];
  int mounted = 0, dirs = 0;
  for (; r.steps < kMaxSteps; r.steps++) {
    name(d, sizeof d, "/mnt-%d", r.steps);
    if (rump_sys_mkdir(d, 0755) != 0) {
      r.error = errno;
      break;
    }
    dirs++;
    if (rump_sys_mount("none", d, "tmpfs", 0, nullptr) != 0) {
      r.error = errno;
      break;
    }
    mounted++;
    std::snprintf(f, sizeof f, "/mnt-%d/file", r.steps);
    if (!create_file(f, r)) break;
  }
  for (int i = mounted - 1; i >= 0; i--) {
    name(d, sizeof d, "/mnt-%d", i);
    int e = rump_sys_umount2(d, 0) == 0 ? 0 : errno;
    // A call that failed for want of its path buffer leaves too little
    // for the first umount2's: then halt alone takes the mounts down.
    if (e == ENOMEM && i == mounted - 1) return r;
    INFO("umount2 " << d << " of " << mounted << " after errno " << r.error);
    REQUIRE(e == 0);
  }
  for (int i = dirs - 1; i >= 0; i--) {
    name(d, sizeof d, "/mnt-%d", i);
    REQUIRE(rump_sys_rmdir(d) == 0);
  }
  return r;
}

}  // namespace

TEST_CASE("files in one directory up to the memory limit fail cleanly", "[vfs][memlimit]") {
  for_each_limit("files", files_in_one_directory);
}

TEST_CASE("sparse file pages up to the memory limit fail cleanly", "[vfs][memlimit]") {
  for_each_limit("sparse", sparse_file_pages);
}

TEST_CASE("pipes up to the memory limit fail cleanly", "[vfs][memlimit]") {
  for_each_limit("pipes", pipes);
}

TEST_CASE("directory trees with renames up to the memory limit fail cleanly", "[vfs][memlimit]") {
  for_each_limit("renames", trees_with_renames);
}

TEST_CASE("tmpfs mounts up to the memory limit fail cleanly", "[vfs][memlimit]") {
  for_each_limit("mounts", tmpfs_mounts);
}
