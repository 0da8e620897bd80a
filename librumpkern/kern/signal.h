// signal.h: signal numbers, sets and actions as the kernel keeps them.
//
// Linux numbering: 1..64, a set is a 64-bit mask with bit (sig - 1). A
// kernel sigaction has Linux's kernel layout (handler, flags, restorer,
// mask), which is what rt_sigaction takes.
#pragma once

#include <signal.h>

#include <cstdint>

namespace rump {

inline constexpr int kNsig = 64;
using SigSet = uint64_t;

inline constexpr SigSet sig_bit(int sig) { return SigSet{1} << (sig - 1); }
inline constexpr bool sig_valid(int sig) { return sig >= 1 && sig <= kNsig; }
inline constexpr SigSet kCantMask = sig_bit(SIGKILL) | sig_bit(SIGSTOP);

// Linux's struct kernel_sigaction on x86-64 and arm64.
struct KernelSigaction {
  uintptr_t handler;  // SIG_DFL (0), SIG_IGN (1) or an address
  unsigned long flags;
  uintptr_t restorer;
  SigSet mask;
};

enum class SigDefault { kTerminate, kCore, kIgnore, kStop, kContinue };
SigDefault sig_default_action(int sig);

}  // namespace rump
