// bench_image.h: a kernel with an ext4 image made by the host's mke2fs
// registered at /dev/img and mounted read-write at /mnt, for the
// benchmarks that run on a disk file system. Aborts on any failure (a
// benchmark has no way to report one).
#pragma once

#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpvfs.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

// Boots a two-CPU kernel, current for the calling thread.
inline struct rump_kernel* boot_bench_kernel() {
  rump_boot_config c;
  rump_boot_config_init(&c);
  c.ncpu = 2;
  struct rump_kernel* k = nullptr;
  if (rump_kernel_boot(&c, &k) != 0) abort();
  rump_kernel_set_current(k);
  return k;
}

// Makes img (mke2fs_args: options and size, e.g. "-N 2000 512M") and boots
// a two-CPU kernel, current for the calling thread, with it at /mnt.
inline struct rump_kernel* boot_with_ext4(const std::string& img, const std::string& mke2fs_args) {
  std::string cmd = "mke2fs -q -F -t ext4 " + img + " " + mke2fs_args + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) abort();
  struct rump_kernel* k = boot_bench_kernel();
  if (rump_pub_etfs_register("/dev/img", img.c_str(), RUMP_ETFS_BLK) != 0) abort();
  rump_sys_mkdir("/mnt", 0755);
  if (rump_sys_mount("/dev/img", "/mnt", "ext4", 0, nullptr) != 0) abort();
  return k;
}

// Runs a shell command: true when it exits 0.
inline bool bench_shell(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

// Why the host kernel's own ext4 (an image on a loop device) cannot be
// measured here, or "" when it can: the caller must be root and a loop
// mount of a small image must work. Asked once per run.
inline const std::string& host_loop_unavailable() {
  static const std::string why = [] {
    if (geteuid() != 0) return std::string("not root: the host kernel's ext4 needs a loop mount");
    std::string dir = "/tmp/bench_loop_probe." + std::to_string(getpid());
    bool ok = bench_shell("mkdir -p " + dir + "/mnt && mke2fs -q -F -t ext4 " + dir + "/img 8M >/dev/null 2>&1 && " +
                          "mount -o loop " + dir + "/img " + dir + "/mnt >/dev/null 2>&1 && umount " + dir + "/mnt");
    bench_shell("rm -rf " + dir);
    return ok ? std::string() : std::string("no loop device (mount -o loop failed)");
  }();
  return why;
}
