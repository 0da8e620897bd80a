// The C API: booting and halting kernels, the raw syscall entry, tracing,
// the message buffer and copyin/copyout for host programs.
#include <rump/rump.h>
#include <rump/rumpuser.h>

#include <cstddef>
#include <cstring>

#include "kern/copy.h"
#include "kern/curlwp.h"
#include "kern/kernel.h"
#include "kern/msgbuf.h"
#include "kern/sim.h"

using rump::Kernel;

namespace {

Kernel* from(struct rump_kernel* k) { return reinterpret_cast<Kernel*>(k); }
struct rump_kernel* to(Kernel* k) { return reinterpret_cast<struct rump_kernel*>(k); }

rumpuser_mtx* init_lock() {
  static rumpuser_mtx* m = [] {
    rumpuser_mtx* x;
    rump::BackendScope scope(nullptr);  // process-wide: the default backend's
    rumpuser_mutex_init(&x, RUMPUSER_MTX_SPIN);
    return x;
  }();
  return m;
}

// The first version of struct rump_boot_config ended after backend.
constexpr size_t kBootConfigV1Size = offsetof(rump_boot_config, backend) + sizeof(const char*);

// True if the caller's config reaches end. struct_size lies in what was
// padding in the first version: a plausible size there was written by
// rump_boot_config_init_sized, anything else is a first-version config.
bool has_field(const struct rump_boot_config* c, size_t end) {
  size_t n = c->struct_size;
  return n >= end && n <= 4096 && n % alignof(rump_boot_config) == 0;
}

rump::BootConfig to_config(const struct rump_boot_config* c) {
  rump::BootConfig b;
  if (!c) return b;
  b.ncpu = c->ncpu;
  b.memlimit = c->memlimit;
  if (c->hostname) std::strncpy(b.hostname, c->hostname, sizeof b.hostname - 1);
  b.verbose = c->verbose;
  if (c->maxproc > 0) b.maxproc = c->maxproc;
  if (c->pid_max > 0) b.pid_max = c->pid_max;
  if (c->backend) std::strncpy(b.backend, c->backend, sizeof b.backend - 1);
  // Fields past the first version only when the caller's struct has them.
  if (has_field(c, offsetof(rump_boot_config, seed) + sizeof c->seed)) b.seed = c->seed;
  return b;
}

}  // namespace

extern "C" {

int rump_init(void) {
  rumpuser_mutex_enter_nowrap(init_lock());
  int e = 0;
  if (!rump::default_kernel()) {
    rump::Result<Kernel*> r = Kernel::boot(rump::BootConfig{});
    if (r.ok()) rump::registry_add(r.value(), true);
    else e = r.error();
  }
  rumpuser_mutex_exit(init_lock());
  return e;
}

void rump_boot_config_init_sized(struct rump_boot_config* c, size_t size) {
  if (size < kBootConfigV1Size) return;
  if (size > sizeof *c) size = sizeof *c;
  std::memset(c, 0, size);
  c->verbose = -1;
  c->struct_size = static_cast<unsigned int>(size);
}

// Programs built against the first header call this: their struct ends
// after backend.
void(rump_boot_config_init)(struct rump_boot_config* c) {
  std::memset(c, 0, kBootConfigV1Size);
  c->verbose = -1;
}

int rump_kernel_boot(const struct rump_boot_config* c, struct rump_kernel** kp) {
  if (!kp) return EINVAL;
  if (c && (c->ncpu < 0 || c->ncpu > 256 || c->maxproc < 0 || c->pid_max < 0 ||
            (c->hostname && std::strlen(c->hostname) > 64) ||
            (c->backend && std::strlen(c->backend) > 31)))
    return EINVAL;
  rump::BootConfig b = to_config(c);
  if (!c) b.verbose = -1;
  rump::Result<Kernel*> r = Kernel::boot(b);
  if (!r.ok()) return r.error();
  rumpuser_mutex_enter_nowrap(init_lock());
  rump::registry_add(r.value(), rump::default_kernel() == nullptr);
  rumpuser_mutex_exit(init_lock());
  *kp = to(r.value());
  return 0;
}

int rump_kernel_set_current(struct rump_kernel* k) {
  if (k && !rump::registry_alive(from(k))) return EINVAL;
  rump::set_current_kernel(from(k));
  return 0;
}

struct rump_kernel* rump_kernel_current(void) { return to(rump::current_kernel()); }

int rump_kernel_halt(struct rump_kernel* kk) {
  Kernel* k = kk ? from(kk) : rump::current_kernel();
  if (!k || !rump::registry_alive(k)) return EINVAL;
  // A sim kernel halts from its own host thread, outside its fibers.
  if (k->sim() && rumpuser_sim_check(k->sim()->world, 1) != 0) return EINVAL;
  if (!k->try_begin_halt()) return EBUSY;
  k->halt();
  return 0;
}

size_t rump_kernel_memory_in_use(struct rump_kernel* k) {
  Kernel* kk = k ? from(k) : rump::current_kernel();
  return kk ? kk->kmem().in_use() : 0;
}

int rump_kernel_set_trace(struct rump_kernel* kk, rump_syscall_trace_fn fn, void* arg) {
  Kernel* k = kk ? from(kk) : rump::current_kernel();
  if (!k) return EINVAL;
  k->trace().set(reinterpret_cast<rump::SyscallTraceFn>(fn), arg);
  return 0;
}

const char* rump_syscall_name(long nr) { return rump::syscall_name(nr); }

size_t rump_msgbuf_read(char* buf, size_t len) {
  Kernel* k = rump::current_kernel();
  rump::Msgbuf* mb = k ? k->services().msgbuf() : nullptr;
  if (!mb) {
    if (buf && len) buf[0] = '\0';
    return 0;
  }
  return mb->read(buf, len);
}

int rump_copyin(const void* uaddr, void* kaddr, size_t len) {
  Kernel* k = rump::current_kernel();
  if (!k) return ENOSYS;
  rump::Lwp* l = rump::enter(*k);
  if (!l) return rump::enter_error(*k);
  rump::Result<void> r = rump::user_copyin(*l, reinterpret_cast<uintptr_t>(uaddr), kaddr, len);
  rump::leave(*k, l);
  return r.error();
}

int rump_copyout(const void* kaddr, void* uaddr, size_t len) {
  Kernel* k = rump::current_kernel();
  if (!k) return ENOSYS;
  rump::Lwp* l = rump::enter(*k);
  if (!l) return rump::enter_error(*k);
  rump::Result<void> r = rump::user_copyout(*l, kaddr, reinterpret_cast<uintptr_t>(uaddr), len);
  rump::leave(*k, l);
  return r.error();
}

}  // extern "C"
