// Many kernels in one process: no fixed cap on how many run at once (a
// simulated network of hosts is one kernel per host), each small, each with
// its own files, and no host thread per idle kernel. Links every faction
// (the files are on the VFS's root tmpfs); public API only.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>

#include <cerrno>
#include <cstddef>
#include <vector>

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

rump_boot_config small_config() {
  rump_boot_config c;
  rump_boot_config_init(&c);
  c.ncpu = 1;
  c.verbose = 0;
  return c;
}

// Host threads of this process.
int host_threads() {
  DIR* d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

}  // namespace

TEST_CASE("10,000 kernels boot, each holds its own file, all halt and give their memory back",
          "[core][boot][many]") {
  constexpr int kKernels = 10000;
  // The host heap before (glibc's count; meaningless under a sanitizer's
  // allocator, so only checked without one).
  size_t host_before = mallinfo2().uordblks;
  int threads_before = host_threads();

  std::vector<rump_kernel*> ks(kKernels, nullptr);
  rump_boot_config c = small_config();
  for (int i = 0; i < kKernels; i++) {
    INFO("kernel " << i);
    REQUIRE(rump_kernel_boot(&c, &ks[i]) == 0);
  }
  // Booting starts no host thread: kernel threads start when first needed.
  CHECK(host_threads() == threads_before);

  size_t kernel_bytes = 0;
  for (int i = 0; i < kKernels; i++) {
    INFO("kernel " << i);
    REQUIRE(rump_kernel_set_current(ks[i]) == 0);
    int fd = rump_sys_open("/mine", O_CREAT | O_EXCL | O_RDWR, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, &i, sizeof i) == static_cast<ssize_t>(sizeof i));
    REQUIRE(rump_sys_close(fd) == 0);
    kernel_bytes += rump_kernel_memory_in_use(ks[i]);
  }
  // Each kernel sees its own file only.
  for (int i = 0; i < kKernels; i += 97) {
    INFO("kernel " << i);
    REQUIRE(rump_kernel_set_current(ks[i]) == 0);
    int fd = rump_sys_open("/mine", O_RDONLY, 0);
    REQUIRE(fd >= 0);
    int v = -1;
    CHECK(rump_sys_read(fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v));
    CHECK(v == i);
    rump_sys_close(fd);
  }
  rump_kernel_set_current(nullptr);
  size_t per_kernel = kernel_bytes / kKernels;
  INFO("kernel memory per kernel with a file: " << per_kernel << " bytes");
  // The idle budget of a kernel with every faction linked (DESIGN.md).
  CHECK(per_kernel <= 64 * 1024);

  for (int i = 0; i < kKernels; i++) {
    INFO("kernel " << i);
    // A debug build panics here if any of the kernel's memory is missing.
    REQUIRE(rump_kernel_halt(ks[i]) == 0);
  }
  for (int i = 0; i < kKernels; i += 97) CHECK(rump_kernel_set_current(ks[i]) == EINVAL);
  CHECK(rump_kernel_current() == nullptr);
  if (!kSanitized) {
    // What stays: the registry's bucket array (it never shrinks) and the
    // host's own caches; nothing per kernel (10,000 kernels x 100 bytes
    // would already be 1 MB).
    size_t host_after = mallinfo2().uordblks;
    INFO("host heap before " << host_before << ", after " << host_after);
    CHECK(host_after < host_before + 512 * 1024);
  }
}
