// getcpu, membarrier and personality: three small calls Linux programs and
// their runtimes make at start-up.
//
// getcpu reports the virtual CPU the calling LWP holds (Invariant 2: it
// holds one for the whole call) and node 0: the kernel has one memory node.
//
// membarrier: the commands and errors of Linux's kernel/sched/membarrier.c.
// QUERY reports every command, as an x86-64 Linux without nohz_full does.
// The private commands need the process to have registered first (EPERM
// otherwise); registrations are kept per process and a forked child
// starts with its parent's (Linux keeps them in the address space, which
// fork copies with them; only exec clears them). The barrier
// commands fence every running LWP, whether its host thread is in the
// kernel or in the program's own code, through rumpuser_membarrier: a
// barrier on every running thread of the host process, whose threads are
// all the kernel's LWPs (so the global and the private commands are one
// barrier, wider than Linux's private one; SYNC_CORE is that barrier too:
// it interrupts each CPU concerned, and the return from the interrupt
// serialises the core on x86-64).
//
// personality: the kernel has Linux's execution domain only (PER_LINUX,
// the low byte 0); its flag bits (ADDR_NO_RANDOMIZE and the like) are kept
// and inherited, and mean nothing here. Another domain is EINVAL.
#include <rump/rumpuser.h>

#include <atomic>

#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"

namespace rump {

namespace {

// <linux/membarrier.h>
enum : int {
  kMembarrierQuery = 0,
  kMembarrierGlobal = 1 << 0,
  kMembarrierGlobalExpedited = 1 << 1,
  kMembarrierRegisterGlobalExpedited = 1 << 2,
  kMembarrierPrivateExpedited = 1 << 3,
  kMembarrierRegisterPrivateExpedited = 1 << 4,
  kMembarrierPrivateExpeditedSyncCore = 1 << 5,
  kMembarrierRegisterPrivateExpeditedSyncCore = 1 << 6,
  kMembarrierPrivateExpeditedRseq = 1 << 7,
  kMembarrierRegisterPrivateExpeditedRseq = 1 << 8,
  kMembarrierGetRegistrations = 1 << 9,
  kMembarrierAll = (1 << 10) - 1,
};
constexpr unsigned kMembarrierFlagCpu = 1;

// The execution-domain byte of a personality value (PER_MASK).
constexpr uint32_t kPerMask = 0xff;
constexpr uint32_t kPerQuery = 0xffffffff;

// A barrier on every running LWP (and the caller).
Result<long> barrier_all() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (int e = rumpuser_membarrier()) return err(e);
  return 0;
}

Result<long> private_expedited(Lwp& l, int register_cmd) {
  if ((l.proc().membarrier_registered_.load(std::memory_order_acquire) & register_cmd) == 0) return err(EPERM);
  return barrier_all();
}

}  // namespace

Result<long> sys_getcpu(Lwp& l, UserPtr<unsigned int> cpu, UserPtr<unsigned int> node, UserPtr<void>) {
  unsigned int c = l.cpu() ? static_cast<unsigned int>(l.cpu()->index) : 0;
  unsigned int n = 0;
  if (cpu) TRY(copyout_obj(l, c, cpu));
  if (node) TRY(copyout_obj(l, n, node));
  return 0;
}

Result<long> sys_membarrier(Lwp& l, int cmd, unsigned int flags, int cpu_id) {
  if (cmd == kMembarrierPrivateExpeditedRseq) {
    if (flags != 0 && flags != kMembarrierFlagCpu) return err(EINVAL);
  } else if (flags != 0) {
    return err(EINVAL);
  }
  std::atomic<uint32_t>& reg = l.proc().membarrier_registered_;
  switch (cmd) {
    case kMembarrierQuery:
      return kMembarrierAll;
    case kMembarrierGlobal:
    case kMembarrierGlobalExpedited:
      return barrier_all();
    case kMembarrierRegisterGlobalExpedited:
    case kMembarrierRegisterPrivateExpedited:
    case kMembarrierRegisterPrivateExpeditedSyncCore:
    case kMembarrierRegisterPrivateExpeditedRseq:
      reg.fetch_or(static_cast<uint32_t>(cmd), std::memory_order_acq_rel);
      return 0;
    case kMembarrierPrivateExpedited:
      return private_expedited(l, kMembarrierRegisterPrivateExpedited);
    case kMembarrierPrivateExpeditedSyncCore:
      return private_expedited(l, kMembarrierRegisterPrivateExpeditedSyncCore);
    case kMembarrierPrivateExpeditedRseq:
      // One CPU (MEMBARRIER_CMD_FLAG_CPU) that is not there: nothing to do.
      if ((flags & kMembarrierFlagCpu) && cpu_id >= l.kernel().ncpu()) return 0;
      return private_expedited(l, kMembarrierRegisterPrivateExpeditedRseq);
    case kMembarrierGetRegistrations:
      return static_cast<long>(reg.load(std::memory_order_acquire));
    default:
      return err(EINVAL);
  }
}

Result<long> sys_personality(Lwp& l, unsigned long persona) {
  // Linux takes an unsigned int: the upper bits of the register go.
  uint32_t p = static_cast<uint32_t>(persona);
  std::atomic<uint32_t>& cur = l.proc().personality_;
  if (p == kPerQuery) return static_cast<long>(cur.load(std::memory_order_relaxed));
  if ((p & kPerMask) != 0) return err(EINVAL);
  return static_cast<long>(cur.exchange(p, std::memory_order_relaxed));
}

}  // namespace rump
