// interrupter.h: the signal side of the differential restart scenarios
// (restart_diff_test.cc, sibling_signal_diff_test.cc), written once for
// the host kernel and the rump kernel (S is net_diff.h's K<bool>):
//  - catch_usr1: SIGUSR1 caught, with or without SA_RESTART;
//  - Interrupter: a SIGUSR1 every millisecond while a call blocks, and
//    steps at given counts that make the call's event come;
//  - Sibling: a second thread of the calling process (rump: an LWP);
//  - raw system calls on either kernel (futex, signalfd4, sigprocmask).
#pragma once

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#include "net_diff.h"
#include "repeat_sender.h"

namespace net_test {

inline void on_usr1(int) {}

// SIGUSR1 caught, with or without SA_RESTART (and other flags).
template <class S>
int catch_usr1(bool restart, unsigned long more_flags = 0) {
  unsigned long flags = (restart ? SA_RESTART : 0) | more_flags;
  if (S::kRump) {
    KSigaction a{reinterpret_cast<void*>(&on_usr1), flags, nullptr, 0};
    return rump_sys_rt_sigaction(SIGUSR1, &a, nullptr, 8);
  }
  struct sigaction sa {};
  sa.sa_handler = on_usr1;
  sa.sa_flags = static_cast<int>(flags);
  return sigaction(SIGUSR1, &sa, nullptr);
}

// Where the Interrupter's signals go.
enum class SignalTo {
  kThread,   // host: the constructing thread (pthread_kill); rump: its process
  kProcess,  // both: the process (kill), from a thread that blocks every signal
};

// Interrupts blocking calls: every millisecond a SIGUSR1 (sent from a
// thread, rump: an LWP of the process, that blocks every signal, so that
// it never takes one itself), and at given counts a step (run on the
// sender's thread; rump: as that LWP), so that a call that is restarted
// rather than failed ends when the step makes its event come. Signals
// stop after kMaxSignals, the steps go on.
template <class S>
class Interrupter {
 public:
  static constexpr int kMaxSignals = 1500;
  using Steps = std::vector<std::pair<int, std::function<void()>>>;

  explicit Interrupter(Steps steps, bool signal = true, SignalTo to = SignalTo::kThread)
      : steps_(std::move(steps)), signal_(signal) {
    if (S::kRump) {
      pid_t pid = rump_sys_getpid();
      sender_.emplace(rump_kernel_current(), pid, true, [this, pid] {
        tick([pid] { rump_sys_kill(pid, SIGUSR1); });
      });
    } else {
      pthread_t self = pthread_self();
      host_ = std::thread([this, self, to] {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        // Not before the constructing thread is out of pthread_create,
        // which blocks every signal for a while (Linux would hand a
        // process-directed signal to another thread then).
        while (!go_.load()) usleep(100);
        pid_t pid = getpid();
        while (!stop_.load()) {
          if (to == SignalTo::kThread) tick([self] { pthread_kill(self, SIGUSR1); });
          else tick([pid] { kill(pid, SIGUSR1); });
          usleep(1000);
        }
      });
      go_.store(true);
    }
  }
  ~Interrupter() { stop(); }
  void stop() {
    stop_.store(true);
    if (host_.joinable()) host_.join();
    if (sender_) sender_->stop();
  }

 private:
  template <class Send>
  void tick(Send send) {
    int n = ++count_;
    if (signal_ && n <= kMaxSignals) send();
    for (auto& [at, step] : steps_)
      if (n == at) step();
  }

  Steps steps_;
  bool signal_;
  int count_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> go_{false};
  std::thread host_;
  std::optional<rump_test::RepeatSender> sender_;
};

// Finished after this many signals: a restarted call ends then.
constexpr int kFinishAt = 20;
// For calls that must fail: their event comes only after this many, so a
// call wrongly restarted ends with a result, not EINTR.
constexpr int kLateAt = 1200;

inline int finish_at(bool restart) { return restart ? kFinishAt : kLateAt; }

// fn on a second thread of the calling process (rump: a new LWP of it,
// released when fn returns), with the caller's signal mask; join() waits.
template <class S>
class Sibling {
 public:
  explicit Sibling(std::function<void()> fn) {
    if (S::kRump) {
      rump_kernel* k = rump_kernel_current();
      pid_t pid = rump_sys_getpid();
      uint64_t mask = 0;
      rump_sys_rt_sigprocmask(SIG_BLOCK, nullptr, reinterpret_cast<sigset_t*>(&mask), 8);
      t_ = std::thread([k, pid, mask, fn = std::move(fn)] {
        rump_kernel_set_current(k);
        if (rump_lwproc_newlwp(pid) != 0) return;
        uint64_t m = mask;
        rump_sys_rt_sigprocmask(SIG_SETMASK, reinterpret_cast<sigset_t*>(&m), nullptr, 8);
        fn();
        rump_lwproc_releaselwp();
      });
    } else {
      t_ = std::thread(std::move(fn));
    }
  }
  ~Sibling() { join(); }
  void join() {
    if (t_.joinable()) t_.join();
  }

 private:
  std::thread t_;
};

// A raw system call on either kernel: rump_sys_name() or the host's
// syscall(SYS_name) (not libc's wrapper, whose arguments may differ).
#define RAW(name, ...) \
  (S::kRump ? static_cast<long>(rump_sys_##name(__VA_ARGS__)) : ::syscall(SYS_##name, ##__VA_ARGS__))

template <class S>
long futex_call(uint32_t* w, int op, uint32_t val, const timespec* ts) {
  return RAW(futex, w, op, val, ts, nullptr, 0);
}

template <class S>
int signalfd_call(int fd, uint64_t mask) {
  return static_cast<int>(RAW(signalfd4, fd, reinterpret_cast<sigset_t*>(&mask), 8, 0));
}

template <class S>
int block(uint64_t mask) {
  return static_cast<int>(RAW(rt_sigprocmask, SIG_BLOCK, reinterpret_cast<sigset_t*>(&mask), nullptr, 8));
}

inline uint64_t bit(int sig) { return uint64_t{1} << (sig - 1); }

}  // namespace net_test
