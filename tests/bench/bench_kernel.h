// bench_kernel.h: the kernel the benchmarks run against: booted once per
// program with two virtual CPUs, made current for the calling thread.
#pragma once

#include <rump/rump.h>

#include <cstdlib>

inline struct rump_kernel* bench_kernel() {
  static struct rump_kernel* k = [] {
    struct rump_kernel* kk = nullptr;
    rump_boot_config c;
    rump_boot_config_init(&c);
    c.ncpu = 2;
    if (rump_kernel_boot(&c, &kk) != 0) abort();
    return kk;
  }();
  rump_kernel_set_current(k);
  return k;
}
