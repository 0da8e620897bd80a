// Starting and stopping the kernel services, in order: the sysctl tree,
// then the callout queue and its thread. services_init runs at boot as lwp0
// on a CPU, before components; services_fini runs at halt after components
// and processes are gone, in reverse order. Both tolerate a partial start
// (boot failing half-way still halts through services_fini).
#include "kern/services.h"

#include "absl/cleanup/cleanup.h"
#include "kern/callout.h"
#include "kern/kernel.h"
#include "kern/sysctl.h"

namespace rump {

Result<void> services_init(Kernel& k) {
  absl::Cleanup undo = [&k] { services_fini(k); };
  k.sysctl_ = TRY(Sysctl::create(k));
  k.callouts_ = TRY(CalloutQueue::create(k));
  std::move(undo).Cancel();
  return {};
}

void services_fini(Kernel& k) {
  delete k.callouts_;
  k.callouts_ = nullptr;
  delete k.sysctl_;
  k.sysctl_ = nullptr;
}

}  // namespace rump
