// kcov.h: per-LWP coverage buffers (rump/kcov.h), the kernel's half.
//
// A Kcov is one buffer: made by an open of /dev/kcov (dev/kcov.cc) or by
// rump_kcov_open, sized once (KCOV_INIT_TRACE), then enabled for at most
// one LWP at a time, which records into it at every instrumented edge
// (__sanitizer_cov_trace_pc and friends, kcov.cc) when the kernel is built
// with -Dkcov=true. References: the descriptor (or C handle) holds one,
// and the LWP tracing into it holds one, so either may go first.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/kmem.h"
#include "base/result.h"

namespace rump {

class Lwp;

class Kcov : public KObject {
 public:
  static constexpr int kTracePc = 0;
  static constexpr int kTraceCmp = 1;
  static constexpr size_t kMaxWords = size_t{1} << 27;  // 1 GiB

  static Result<Kcov*> create(Kmem& kmem);
  // KCOV_INIT_TRACE: once, before any enable.
  Result<void> init_trace(size_t words);
  // KCOV_ENABLE for l, the calling LWP.
  Result<void> enable(Lwp& l, int mode);
  // KCOV_DISABLE by l, the LWP that enabled it.
  Result<void> disable(Lwp& l);
  // Another holder (a mapping of the buffer).
  void get() { refs_.fetch_add(1, std::memory_order_relaxed); }
  // The descriptor's or handle's reference, or a mapping's.
  void put();

  uint64_t* area() const { return area_; }
  size_t words() const { return words_; }

  // Read by the tracing LWP at every edge: set before the LWP's kcov_
  // pointer and not changed while it is set.
  uint64_t* area_ = nullptr;
  size_t words_ = 0;
  int mode_ = kTracePc;

 private:
  friend void kcov_lwp_gone(Lwp& l);
  explicit Kcov(Kmem& kmem) : kmem_(kmem) {}
  ~Kcov();

  Kmem& kmem_;
  std::atomic<int> refs_{1};
  // The LWP tracing into the buffer: claimed and released by compare and
  // swap, so enable, disable and an LWP's end need no lock.
  std::atomic<Lwp*> owner_{nullptr};
  std::atomic<bool> initialised_{false};
  size_t bytes_ = 0;
};

// l ends while tracing: it lets go of its buffer.
void kcov_lwp_gone(Lwp& l);

// Memory of a device that a process maps (/dev/kcov's buffer): where it
// is (page aligned), and a reference that keeps it alive while mapped:
// put(cookie) lets go of it.
struct DeviceMem {
  void* addr = nullptr;
  void (*put)(void* cookie) = nullptr;
  void* cookie = nullptr;
};
// The memory behind len bytes at offset off of the device open at fd, with
// a reference, or ENODEV when the file is no such device. The vm
// faction's mmap asks (a process in the host's address space gets the
// memory itself; an isolated space maps it as an object whose pages are
// that memory); the VFS faction, which knows descriptors and devices,
// answers (registered when it is loaded, process-wide, like the
// special-file hook).
using DeviceMmapHook = Result<DeviceMem> (*)(Lwp& l, int fd, uint64_t len, uint64_t off);
void set_device_mmap_hook(DeviceMmapHook hook);
DeviceMmapHook device_mmap_hook();

}  // namespace rump
