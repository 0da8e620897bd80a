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

// Makes img (mke2fs_args: options and size, e.g. "-N 2000 512M") and boots
// a two-CPU kernel, current for the calling thread, with it at /mnt.
inline struct rump_kernel* boot_with_ext4(const std::string& img, const std::string& mke2fs_args) {
  std::string cmd = "mke2fs -q -F -t ext4 " + img + " " + mke2fs_args + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) abort();
  rump_boot_config c;
  rump_boot_config_init(&c);
  c.ncpu = 2;
  struct rump_kernel* k = nullptr;
  if (rump_kernel_boot(&c, &k) != 0) abort();
  rump_kernel_set_current(k);
  if (rump_pub_etfs_register("/dev/img", img.c_str(), RUMP_ETFS_BLK) != 0) abort();
  rump_sys_mkdir("/mnt", 0755);
  if (rump_sys_mount("/dev/img", "/mnt", "ext4", 0, nullptr) != 0) abort();
  return k;
}
