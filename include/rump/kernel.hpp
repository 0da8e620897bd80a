// kernel.hpp: the C++ API of the rump anykernel.
//
// rump::Kernel owns one booted kernel (RAII: the destructor halts it) and
// names it explicitly, unlike the C API's "current kernel of the calling
// thread". rump::Process is a process in it with an LWP the calling thread
// can run as. Errors are absl::Status; the errno is kept in the message and
// available through rump::errno_of().
//
//   auto k = rump::Kernel::boot();               // absl::StatusOr<Kernel>
//   k->run([&] { rump_sys_getpid(); });           // k current on this thread
//   auto p = k->rfork(RUMP_RFFDG);                // a child of init
//   p->run([&] { rump_sys_setuid(1000); });
//
// Everything here is inline over <rump/rump.h>. It lives in rump::api, an
// inline namespace, so users write rump::Kernel. An inline namespace does
// not hide names from the enclosing one: the kernel's internal rump::Kernel
// would make the name ambiguous, so a file uses either this header or the
// kernel's internal headers, never both.
#pragma once

#include <rump/rump.h>

#include <cerrno>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace rump {
inline namespace api {

// An absl::Status for a 0-or-errno result.
inline absl::Status status_from_errno(int e, const char* what) {
  if (e == 0) return absl::OkStatus();
  return absl::ErrnoToStatus(e, absl::StrCat(what, ": errno ", e));
}

struct BootConfig {
  int ncpu = 0;            // 0: RUMP_NCPU, else the host's cores
  size_t memlimit = 0;     // 0: RUMP_MEMLIMIT, else none
  std::string hostname;    // empty: RUMP_HOSTNAME, else "rump<n>"
  int verbose = -1;        // -1: RUMP_VERBOSE
  int maxproc = 0;         // 0: 4096
  int pid_max = 0;         // 0: 32768
  std::string backend;     // empty: RUMP_BACKEND, else "pthread"
};

class Kernel;

// Makes a kernel current on the calling thread for a scope, then restores
// the previous one.
class CurrentKernel {
 public:
  explicit CurrentKernel(struct rump_kernel* k) : prev_(rump_kernel_current()) {
    rump_kernel_set_current(k);
  }
  ~CurrentKernel() { rump_kernel_set_current(prev_); }
  CurrentKernel(const CurrentKernel&) = delete;
  CurrentKernel& operator=(const CurrentKernel&) = delete;

 private:
  struct rump_kernel* prev_;
};

// A process of a kernel, with one LWP that calling threads run as.
class Process {
 public:
  pid_t pid() const { return pid_; }
  struct lwp* lwp() const { return lwp_; }

  // Runs fn on the calling thread as this process's LWP (the kernel made
  // current for the duration), then goes back to the previous context.
  template <class Fn>
  decltype(auto) run(Fn&& fn) const {
    CurrentKernel ck(kernel_);
    struct lwp* prev = rump_lwproc_curlwp();
    rump_lwproc_switch(lwp_);
    struct Restore {
      struct lwp* prev;
      ~Restore() { rump_lwproc_switch(prev); }
    } restore{prev};
    return std::forward<Fn>(fn)();
  }

 private:
  friend class Kernel;
  Process(struct rump_kernel* k, pid_t pid, struct lwp* l) : kernel_(k), pid_(pid), lwp_(l) {}
  struct rump_kernel* kernel_;
  pid_t pid_;
  struct lwp* lwp_;
};

class Kernel {
 public:
  static absl::StatusOr<Kernel> boot(const BootConfig& cfg = {}) {
    struct rump_boot_config c;
    rump_boot_config_init(&c);
    c.ncpu = cfg.ncpu;
    c.memlimit = cfg.memlimit;
    c.hostname = cfg.hostname.empty() ? nullptr : cfg.hostname.c_str();
    c.verbose = cfg.verbose;
    c.maxproc = cfg.maxproc;
    c.pid_max = cfg.pid_max;
    c.backend = cfg.backend.empty() ? nullptr : cfg.backend.c_str();
    struct rump_kernel* k = nullptr;
    int e = rump_kernel_boot(&c, &k);
    if (e != 0) return status_from_errno(e, "rump_kernel_boot");
    return Kernel(k);
  }

  Kernel(Kernel&& o) noexcept : k_(std::exchange(o.k_, nullptr)) {}
  Kernel& operator=(Kernel&& o) noexcept {
    if (this != &o) {
      (void)halt();
      k_ = std::exchange(o.k_, nullptr);
    }
    return *this;
  }
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;
  ~Kernel() { (void)halt(); }

  // Stops the kernel and frees everything it had. Idempotent.
  absl::Status halt() {
    if (!k_) return absl::OkStatus();
    struct rump_kernel* k = std::exchange(k_, nullptr);
    return status_from_errno(rump_kernel_halt(k), "rump_kernel_halt");
  }

  struct rump_kernel* get() const { return k_; }
  bool running() const { return k_ != nullptr; }

  // Runs fn on the calling thread with this kernel current.
  template <class Fn>
  decltype(auto) run(Fn&& fn) const {
    CurrentKernel ck(k_);
    return std::forward<Fn>(fn)();
  }

  // Creates a child of init (flags as rump_lwproc_rfork). The calling
  // thread's context is left as it was.
  absl::StatusOr<Process> rfork(int flags = RUMP_RFFDG) const {
    return run([&]() -> absl::StatusOr<Process> {
      struct lwp* prev = rump_lwproc_curlwp();
      rump_lwproc_switch(nullptr);
      int e = rump_lwproc_rfork(flags);
      if (e != 0) {
        rump_lwproc_switch(prev);
        return status_from_errno(e, "rump_lwproc_rfork");
      }
      Process p(k_, rump_sys_getpid(), rump_lwproc_curlwp());
      rump_lwproc_switch(prev);
      return p;
    });
  }

  size_t memory_in_use() const { return rump_kernel_memory_in_use(k_); }

  std::string msgbuf() const {
    return run([] {
      size_t n = rump_msgbuf_read(nullptr, 0);
      std::string s(n + 1, '\0');
      size_t got = rump_msgbuf_read(s.data(), s.size());
      s.resize(got < n ? got : n);
      return s;
    });
  }

 private:
  explicit Kernel(struct rump_kernel* k) : k_(k) {}
  struct rump_kernel* k_;
};

}  // namespace api
}  // namespace rump
