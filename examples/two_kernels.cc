// two_kernels.cc: two kernels side by side in one process (C++ API).
//
// Each kernel has its own processes, pids, host name and memory; a thread
// names the kernel it calls into. Halting one leaves the other running, and
// a new one boots in its place.
#include <rump/kernel.hpp>

#include <cstdio>
#include <thread>

int main() {
  auto a = rump::Kernel::boot({.hostname = "alpha"});
  auto b = rump::Kernel::boot({.hostname = "beta"});
  if (!a.ok() || !b.ok()) {
    std::fprintf(stderr, "boot failed\n");
    return 1;
  }

  // The same work in both kernels, from two host threads at once.
  auto work = [](const rump::Kernel& k, const char* name) {
    auto p = k.rfork(RUMP_RFFDG);
    if (!p.ok()) return;
    p->run([&] {
      struct utsname u;
      rump_sys_uname(&u);
      std::printf("%s: nodename %s, pid %d, ppid %d\n", name, u.nodename, rump_sys_getpid(),
                  rump_sys_getppid());
      rump_sys_exit(0);
    });
  };
  std::thread ta(work, std::cref(*a), "kernel a");
  std::thread tb(work, std::cref(*b), "kernel b");
  ta.join();
  tb.join();

  std::printf("kernel a uses %zu bytes, kernel b %zu bytes\n", a->memory_in_use(),
              b->memory_in_use());
  (void)a->halt();
  std::printf("kernel a halted; kernel b still answers getpid = %d\n",
              b->run([] { return rump_sys_getpid(); }));

  auto c = rump::Kernel::boot({.hostname = "gamma"});
  std::printf("a new kernel booted in a's place: %s\n", c.ok() ? "yes" : "no");
  return 0;
}
