// Identity and miscellaneous system calls: uname, sethostname, getrandom,
// sched_yield, reboot.
//
// uname's sysname is kOsType ("RumpKernel", see sysctl.h for why not
// "Linux"), equal to sysctl kern.ostype; release and version are the
// project's; nodename is the kernel's host name (kern.hostname).
#include <sys/utsname.h>

#include <cstring>

#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "kern/sysctl.h"

namespace rump {

namespace {

// Linux's reboot(2) constants (<linux/reboot.h>).
constexpr int kRebootMagic1 = static_cast<int>(0xfee1dead);
constexpr int kRebootMagic2 = 672274793;   // 0x28121969
constexpr int kRebootMagic2A = 85072278;   // 0x05121996
constexpr int kRebootMagic2B = 369367448;  // 0x16041998
constexpr int kRebootMagic2C = 537993216;  // 0x20112000
constexpr unsigned kRebootCmdRestart = 0x01234567;
constexpr unsigned kRebootCmdHalt = 0xCDEF0123;
constexpr unsigned kRebootCmdCadOn = 0x89ABCDEF;
constexpr unsigned kRebootCmdCadOff = 0x00000000;
constexpr unsigned kRebootCmdPowerOff = 0x4321FEDC;
constexpr unsigned kRebootCmdRestart2 = 0xA1B2C3D4;

// getrandom(2) flags.
constexpr unsigned kGrndNonblock = 0x1;
constexpr unsigned kGrndRandom = 0x2;
constexpr unsigned kGrndInsecure = 0x4;

void set_field(char* dst, size_t size, const char* src) {
  std::memset(dst, 0, size);
  std::memcpy(dst, src, strnlen(src, size - 1));
}

}  // namespace

Result<long> sys_uname(Lwp& l, UserPtr<struct utsname> buf) {
  Kernel& k = l.kernel();
  struct utsname u;
  std::memset(&u, 0, sizeof u);
  set_field(u.sysname, sizeof u.sysname, kOsType);
  char host[kHostNameMax + 1];
  k.services().hostname(host);
  set_field(u.nodename, sizeof u.nodename, host);
  set_field(u.release, sizeof u.release, kOsRelease);
  set_field(u.version, sizeof u.version, kOsVersion);
  set_field(u.machine, sizeof u.machine, kMachine);
#ifdef _GNU_SOURCE
  set_field(u.domainname, sizeof u.domainname, "(none)");
#endif
  TRY(copyout_obj(l, u, buf));
  return 0;
}

// As Linux: permission first, then the length, then the copy. The name is
// len bytes, not necessarily NUL-terminated.
Result<long> sys_sethostname(Lwp& l, UserPtr<char> name, size_t len) {
  if (!l.cred().is_root()) return err(EPERM);
  if (len > kHostNameMax) return err(EINVAL);
  char tmp[kHostNameMax + 1] = {};
  TRY(copyin(l, name.addr, tmp, len));
  TRY(l.kernel().services().set_hostname(tmp, len));
  return 0;
}

Result<long> sys_getrandom(Lwp& l, UserPtr<void> buf, size_t buflen, unsigned int flags) {
  if (flags & ~(kGrndNonblock | kGrndRandom | kGrndInsecure)) return err(EINVAL);
  if ((flags & kGrndInsecure) && (flags & kGrndRandom)) return err(EINVAL);
  if (buflen > INT32_MAX) buflen = INT32_MAX;  // Linux caps a call at INT_MAX
  int hflags = 0;
  if (flags & kGrndRandom) hflags |= RUMPUSER_RANDOM_HARD;
  if (flags & (kGrndNonblock | kGrndInsecure)) hflags |= RUMPUSER_RANDOM_NOWAIT;
  constexpr size_t kChunk = 256;
  unsigned char chunk[kChunk];
  size_t done = 0;
  while (done < buflen) {
    // Long requests stop early for a signal, returning what they have.
    if (done > 0 && l.interrupt_pending()) break;
    size_t want = buflen - done < kChunk ? buflen - done : kChunk;
    size_t got = 0;
    int e = rumpuser_getrandom(chunk, want, hflags, &got);
    if (e != 0 || got == 0) {
      if (done > 0) break;
      return err(e != 0 ? e : EAGAIN);
    }
    Result<void> r = copyout(l, chunk, buf.addr + done, got);
    std::memset(chunk, 0, got);
    if (!r.ok()) {
      if (done > 0) break;
      return Error{r.error()};
    }
    done += got;
  }
  return static_cast<long>(done);
}

Result<long> sys_sched_yield(Lwp& l) {
  // Give the virtual CPU back and queue for one again: a waiting thread
  // gets its turn.
  Scheduler& s = l.kernel().sched();
  s.unschedule(&l);
  s.schedule(&l);
  return 0;
}

// reboot: only halting is possible (a rump kernel cannot restart itself):
// HALT, POWER_OFF, RESTART and RESTART2 ask for the kernel to halt, which
// the C API does once the call has left the kernel (rump_c.cc maybe_halt).
Result<long> sys_reboot(Lwp& l, int magic, int magic2, int cmd, UserPtr<void> arg) {
  if (!l.cred().is_root()) return err(EPERM);
  if (magic != kRebootMagic1 || (magic2 != kRebootMagic2 && magic2 != kRebootMagic2A &&
                                 magic2 != kRebootMagic2B && magic2 != kRebootMagic2C))
    return err(EINVAL);
  Kernel& k = l.kernel();
  switch (static_cast<unsigned>(cmd)) {
    case kRebootCmdCadOn:
    case kRebootCmdCadOff:
      return 0;
    case kRebootCmdRestart2: {
      // The command string is read (EFAULT) and, like the command, unused.
      char tmp[256];
      size_t len = 0;
      Result<void> r = copyinstr(l, arg.addr, tmp, sizeof tmp, &len);
      if (!r.ok() && r.error() != ENAMETOOLONG) return Error{r.error()};
      [[fallthrough]];
    }
    case kRebootCmdRestart:
    case kRebootCmdHalt:
    case kRebootCmdPowerOff:
      k.printf("rump kernel %llu: reboot(2) requested halt\n", static_cast<unsigned long long>(k.sim() ? 1 : k.serial()));
      k.request_halt();
      return 0;
    default:
      return err(EINVAL);
  }
}

}  // namespace rump
