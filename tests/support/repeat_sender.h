// A sender LWP that signals every millisecond until stopped: the other
// side of the tests where a call must be interrupted whenever it blocks
// (signal waits, signalfd reads, restarted calls), with no assumption
// about when that is. Public headers only.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

#include <rump/rump.h>
#include <rump/rump_syscalls.h>

namespace rump_test {

// A sender LWP of process pid in kernel k that calls send() every
// millisecond until stop() (or destruction): no timing assumption about
// when the other side sleeps. With block_all it first blocks every signal,
// so that it never takes a process-directed signal itself as it leaves
// the kernel.
class RepeatSender {
 public:
  RepeatSender(rump_kernel* k, pid_t pid, bool block_all, std::function<void()> send)
      : t_([this, k, pid, block_all, send = std::move(send)] {
          rump_kernel_set_current(k);
          if (rump_lwproc_newlwp(pid) != 0) return;
          if (block_all) {
            uint64_t all = ~uint64_t{0};
            rump_sys_rt_sigprocmask(SIG_BLOCK, reinterpret_cast<sigset_t*>(&all), nullptr, 8);
          }
          while (!stop_.load()) {
            send();
            usleep(1000);
          }
          rump_lwproc_releaselwp();
        }) {}
  ~RepeatSender() { stop(); }
  void stop() {
    stop_ = true;
    if (t_.joinable()) t_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread t_;
};

}  // namespace rump_test
