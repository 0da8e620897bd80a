// Starting and stopping the kernel services, in order: the message
// buffer and the host name, the sysctl tree, then the callout queue (whose
// thread starts with the first callout) and the CPU-time tick on it. services_init runs at boot as lwp0
// on a CPU, before components; services_fini runs at halt after components
// and processes are gone, in reverse order. Both tolerate a partial start
// (boot failing half-way still halts through services_fini).
#include "kern/services.h"

#include <cstdio>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "kern/callout.h"
#include "kern/cputime.h"
#include "kern/kernel.h"
#include "kern/msgbuf.h"
#include "kern/sysctl.h"

namespace rump {

Result<void> services_init(Kernel& k, const BootConfig& cfg) {
  KernelServices& s = k.services();
  absl::Cleanup undo = [&k] { services_fini(k); };
  s.msgbuf_ = TRY(Msgbuf::create(k.kmem()));
  char name[kHostNameMax + 1];
  // The default name carries the kernel's serial, except on "sim": a run
  // there may not depend on how many kernels the process booted before
  // (uname, sethostname and the boot messages would differ).
  if (cfg.hostname[0]) std::snprintf(name, sizeof name, "%s", cfg.hostname);
  else std::snprintf(name, sizeof name, "rump%llu", static_cast<unsigned long long>(k.sim() ? 1 : k.serial()));
  TRY(s.set_hostname(name, std::strlen(name)));
  s.sysctl_ = TRY(Sysctl::create(k));
  s.callouts_ = TRY(CalloutQueue::create(k));
  s.cputick_ = new (k.kmem()) CpuTick(k);
  if (!s.cputick_) return err(ENOMEM);
  std::move(undo).Cancel();
  return {};
}

void services_fini(Kernel& k) {
  KernelServices& s = k.services();
  if (s.cputick_) s.cputick_->halt();
  delete s.cputick_;
  s.cputick_ = nullptr;
  delete s.callouts_;
  s.callouts_ = nullptr;
  delete s.sysctl_;
  s.sysctl_ = nullptr;
  delete s.msgbuf_;
  s.msgbuf_ = nullptr;
}

void KernelServices::hostname(char* out) const {
  SpinLocker g(hostname_lock_);
  std::memcpy(out, hostname_, sizeof hostname_);
}

Result<void> KernelServices::set_hostname(const char* name, size_t len) {
  if (len > kHostNameMax) return err(EINVAL);
  SpinLocker g(hostname_lock_);
  std::memset(hostname_, 0, sizeof hostname_);
  std::memcpy(hostname_, name, len);
  return {};
}

}  // namespace rump
