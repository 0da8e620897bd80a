// File-backed mmap in isolated processes: tmpfs and etfs files against the
// host kernel's tmpfs (the same scenario, file_map_scenario.h), SIGBUS for
// the process's own access past the end of a mapped file, fork with shared
// and private file mappings, a mapped file keeping its mount busy, and the
// cache's pages charged to the kernel's memory.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <string>

#include <rump/rump.h>
#include <rump/rumpvfs.h>

#include "differential.h"
#include "file_map_scenario.h"
#include "rump_test.h"

using file_map_test::kHostMem;
using file_map_test::kRumpMem;
using file_map_test::scenario;
using rump_diff::check_same;
using rump_diff::kHost;
using rump_diff::kRump;
using rump_diff::Trace;
using rump_test::host_child;
using rump_test::isolated_proc;
using rump_test::KernelUp;

namespace {

constexpr size_t kPg = 4096;

// A host directory on a tmpfs when there is one (/dev/shm), removed after.
struct HostDir {
  std::string path;
  HostDir() {
    struct stat st {};
    std::string base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                           ? "/dev/shm"
                           : "/tmp";
    std::string t = base + "/file_map_XXXXXX";
    REQUIRE(mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~HostDir() { rmdir(path.c_str()); }
};

int make_file(const char* path, size_t size, char fill) {
  int fd = rump_sys_open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  std::string data(size, fill);
  REQUIRE(rump_sys_write(fd, data.data(), size) == static_cast<long>(size));
  return fd;
}

}  // namespace

TEST_CASE("mmap of a tmpfs file behaves as on the host's tmpfs", "[vm][file_map][differential]") {
  HostDir hd;
  Trace host = host_child<Trace>([&] {
    static char scratch[file_map_test::kScratch];
    return scenario(kHost, kHostMem, hd.path, scratch);
  });
  KernelUp up;
  REQUIRE(rump_sys_mkdir("/work", 0755) == 0);
  isolated_proc();
  Trace rump = scenario(kRump, kRumpMem, "/work", static_cast<char*>(rump_test::guest_map(file_map_test::kScratch)));
  rump_lwproc_releaselwp();
  check_same(host, rump);
}

TEST_CASE("mmap of an etfs file reads the host file, and stores reach it", "[vm][file_map]") {
  HostDir hd;
  std::string hf = hd.path + "/etfs_file";
  std::string data(3 * kPg, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>('a' + i % 23);
  int hfd = open(hf.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  REQUIRE(hfd >= 0);
  REQUIRE(write(hfd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  KernelUp up;
  REQUIRE(rump_pub_etfs_register("/hostfile", hf.c_str(), RUMP_ETFS_REG) == 0);
  int fd = rump_sys_open("/hostfile", O_RDWR, 0);
  REQUIRE(fd >= 0);
  isolated_proc();
  char* m = static_cast<char*>(rump_sys_mmap(nullptr, data.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  REQUIRE(m != MAP_FAILED);
  std::string got(data.size(), '\0');
  REQUIRE(rump_copyin(m, got.data(), got.size()) == 0);
  CHECK(got == data);
  REQUIRE(rump_copyout("ETFS", m + kPg + 3, 4) == 0);
  // The host file has it at once: the store was written through.
  char buf[4] = {};
  CHECK(pread(hfd, buf, 4, kPg + 3) == 4);
  CHECK(std::memcmp(buf, "ETFS", 4) == 0);
  // A host write shows after the kernel's write(2) path is told (msync
  // with MS_INVALIDATE drops the cached pages).
  REQUIRE(pwrite(hfd, "HOST", 4, 2 * kPg) == 4);
  REQUIRE(rump_sys_msync(m, data.size(), MS_INVALIDATE) == 0);
  REQUIRE(rump_copyin(m + 2 * kPg, buf, 4) == 0);
  CHECK(std::memcmp(buf, "HOST", 4) == 0);
  REQUIRE(rump_sys_munmap(m, data.size()) == 0);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(nullptr);
  rump_sys_close(fd);
  close(hfd);
  unlink(hf.c_str());
}

TEST_CASE("a load past the end of a mapped file raises SIGBUS in the isolated process",
          "[vm][file_map]") {
  KernelUp up;
  REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);  // a parent to wait for the child
  pid_t parent = rump_sys_getpid();
  lwp* me = rump_lwproc_curlwp();
  int fd = make_file("/f", 2 * kPg, 'a');
  REQUIRE(rump_lwproc_rfork(RUMP_RFVMSPACE) == 0);
  pid_t child = rump_sys_getpid();
  CHECK(child != parent);
  char* m = static_cast<char*>(rump_sys_mmap(nullptr, 2 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  REQUIRE(m != MAP_FAILED);
  char c = 0;
  CHECK(rump_copyin(m + kPg, &c, 1) == 0);
  CHECK(c == 'a');
  REQUIRE(rump_sys_ftruncate(fd, 10) == 0);
  // A system call's copy from the cut page: EFAULT, and no signal.
  CHECK_ERRNO(EFAULT, rump_sys_write(fd, m + kPg, 1));
  CHECK(rump_sys_getpid() == child);
  // The process's own load: EFAULT to the caller, SIGBUS to the process,
  // which ends it (the default action).
  CHECK(rump_copyin(m + kPg, &c, 1) == EFAULT);
  rump_lwproc_switch(me);
  int st = 0;
  REQUIRE(rump_sys_wait4(child, &st, 0, nullptr) == child);
  CHECK(WIFSIGNALED(st));
  CHECK(WTERMSIG(st) == SIGBUS);
}

TEST_CASE("fork shares MAP_SHARED file mappings and copies MAP_PRIVATE ones", "[vm][file_map]") {
  KernelUp up;
  int fd = make_file("/f", kPg, 'a');
  isolated_proc();
  lwp* parent = rump_lwproc_curlwp();
  char* s = static_cast<char*>(rump_sys_mmap(nullptr, kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  char* p = static_cast<char*>(rump_sys_mmap(nullptr, kPg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
  REQUIRE(s != MAP_FAILED);
  REQUIRE(p != MAP_FAILED);
  REQUIRE(rump_copyout("P", p, 1) == 0);  // the parent's private copy
  REQUIRE(rump_lwproc_rfork(RUMP_RFNOWAIT) == 0);  // a copy of the isolated space
  CHECK(rump_copyout("child", s + 100, 5) == 0);
  CHECK(rump_copyout("c", p + 1, 1) == 0);
  char buf[8] = {};
  CHECK(rump_copyin(p, buf, 2) == 0);
  CHECK(std::memcmp(buf, "Pc", 2) == 0);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(parent);
  // The child's shared store is the parent's and the file's; its private one is not.
  CHECK(rump_copyin(s + 100, buf, 5) == 0);
  CHECK(std::memcmp(buf, "child", 5) == 0);
  CHECK(rump_copyin(p, buf, 2) == 0);
  CHECK(std::memcmp(buf, "Pa", 2) == 0);
  // The parent exits with the mappings; the file keeps the data.
  rump_lwproc_releaselwp();
  rump_lwproc_switch(nullptr);
  fd = rump_sys_open("/f", O_RDONLY, 0);
  REQUIRE(fd >= 0);
  CHECK(rump_sys_pread(fd, buf, 5, 100) == 5);
  CHECK(std::memcmp(buf, "child", 5) == 0);
  rump_sys_close(fd);
}

TEST_CASE("a mapped file keeps its mount busy and its data after unlink", "[vm][file_map]") {
  KernelUp up;
  REQUIRE(rump_sys_mkdir("/mnt", 0755) == 0);
  REQUIRE(rump_sys_mount("tmpfs", "/mnt", "tmpfs", 0, nullptr) == 0);
  int fd = make_file("/mnt/f", kPg, 'z');
  lwp* mapper = isolated_proc();
  char* s = static_cast<char*>(rump_sys_mmap(nullptr, kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  REQUIRE(s != MAP_FAILED);
  REQUIRE(rump_sys_close(fd) == 0);
  rump_lwproc_switch(nullptr);
  REQUIRE(rump_sys_unlink("/mnt/f") == 0);
  CHECK_ERRNO(EBUSY, rump_sys_umount2("/mnt", 0));
  rump_lwproc_switch(mapper);
  char buf[4] = {};
  CHECK(rump_copyout("new", s, 3) == 0);
  CHECK(rump_copyin(s, buf, 4) == 0);
  CHECK(std::memcmp(buf, "newz", 4) == 0);
  REQUIRE(rump_sys_munmap(s, kPg) == 0);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(nullptr);
  CHECK(rump_sys_umount2("/mnt", 0) == 0);
}

TEST_CASE("the pages of a mapped file count against the kernel's memory limit, and clean ones are given back",
          "[vm][file_map]") {
  KernelUp up({.memlimit = 4 << 20});
  int fd = rump_sys_open("/big", O_RDWR | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(rump_sys_ftruncate(fd, 64 << 20) == 0);  // sparse: no memory yet
  isolated_proc();
  char* m = static_cast<char*>(rump_sys_mmap(nullptr, 64 << 20, PROT_READ, MAP_SHARED, fd, 0));
  REQUIRE(m != MAP_FAILED);
  size_t before = up.mem();
  char c;
  for (size_t i = 0; i < 16; i++) REQUIRE(rump_copyin(m + i * kPg, &c, 1) == 0);
  CHECK(up.mem() >= before + 16 * kPg);
  // All of it would need 64 MiB: the cache gives its clean pages back
  // when the limit is reached, and every page is still readable.
  int failed = 0;
  for (size_t i = 0; i < (64u << 20) / kPg; i++) failed += rump_copyin(m + i * kPg, &c, 1) != 0;
  CHECK(failed == 0);
  CHECK(up.mem() <= (4u << 20));
  REQUIRE(rump_sys_munmap(m, 64 << 20) == 0);
  rump_sys_close(fd);
  rump_lwproc_releaselwp();
}

TEST_CASE("a host-space process maps a file privately as a copy", "[vm][file_map]") {
  KernelUp up;
  int fd = make_file("/f", 2 * kPg + 10, 'q');
  REQUIRE(rump_sys_pwrite(fd, "abc", 3, kPg) == 3);
  auto* p = static_cast<char*>(rump_sys_mmap(nullptr, 3 * kPg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
  REQUIRE(p != MAP_FAILED);
  CHECK(p[0] == 'q');
  CHECK(std::memcmp(p + kPg, "abc", 3) == 0);
  CHECK(p[2 * kPg + 9] == 'q');
  CHECK(p[2 * kPg + 10] == 0);  // past the end of the file: zero
  p[0] = 'W';                   // the process's own copy
  char c = 0;
  CHECK(rump_sys_pread(fd, &c, 1, 0) == 1);
  CHECK(c == 'q');
  CHECK(rump_sys_munmap(p, 3 * kPg) == 0);
  // At an offset, read-only.
  auto* r = static_cast<char*>(rump_sys_mmap(nullptr, kPg, PROT_READ, MAP_PRIVATE, fd, kPg));
  REQUIRE(r != MAP_FAILED);
  CHECK(std::memcmp(r, "abc", 3) == 0);
  CHECK(rump_sys_munmap(r, kPg) == 0);
  rump_sys_close(fd);
}

// A memfd sealed against writes: a shared writable mapping is EPERM, a
// shared read-only one may not become writable (mprotect EACCES), and a
// private writable one is fine, on the host and in an isolated process
// (which gets the descriptor from its host-space parent: its pointers are
// its own).
TEST_CASE("a memfd sealed against writes refuses shared writable mappings, as on the host",
          "[vm][file_map][memfd]") {
  struct Outcome {
    int shared_rw, mprotect_rw, private_rw;
  };
  auto maps = [](int fd, auto mmap, auto mprotect) {
    Outcome o{};
    errno = 0;
    o.shared_rw = mmap(kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd) == MAP_FAILED ? errno : 0;
    void* ro = mmap(kPg, PROT_READ, MAP_SHARED, fd);
    REQUIRE(ro != MAP_FAILED);
    errno = 0;
    o.mprotect_rw = mprotect(ro, kPg, PROT_READ | PROT_WRITE) != 0 ? errno : 0;
    errno = 0;
    o.private_rw = mmap(kPg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd) == MAP_FAILED ? errno : 0;
    return o;
  };
  int hfd = memfd_create("sealed", MFD_ALLOW_SEALING);
  REQUIRE(hfd >= 0);
  REQUIRE(write(hfd, "data", 4) == 4);
  REQUIRE(fcntl(hfd, F_ADD_SEALS, F_SEAL_WRITE) == 0);
  Outcome host = maps(
      hfd, [](size_t len, int prot, int flags, int fd) { return mmap(nullptr, len, prot, flags, fd, 0); },
      [](void* a, size_t len, int prot) { return mprotect(a, len, prot); });
  close(hfd);
  KernelUp up;
  int rfd = rump_sys_memfd_create("sealed", MFD_ALLOW_SEALING);
  REQUIRE(rfd >= 0);
  REQUIRE(rump_sys_write(rfd, "data", 4) == 4);
  REQUIRE(rump_sys_fcntl(rfd, F_ADD_SEALS, F_SEAL_WRITE) == 0);
  isolated_proc();
  Outcome ours = maps(
      rfd, [](size_t len, int prot, int flags, int fd) { return rump_sys_mmap(nullptr, len, prot, flags, fd, 0); },
      [](void* a, size_t len, int prot) { return rump_sys_mprotect(a, len, prot); });
  CHECK(host.shared_rw == EPERM);
  CHECK(host.mprotect_rw == EACCES);
  CHECK(ours.shared_rw == host.shared_rw);
  CHECK(ours.mprotect_rw == host.mprotect_rw);
  CHECK(ours.private_rw == host.private_rw);
}
