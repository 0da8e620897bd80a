// Starting and stopping the kernel services, in order.
#include "kern/services.h"

#include "kern/kernel.h"

namespace rump {

Result<void> services_init(Kernel& k) {
  (void)k;
  return {};
}

void services_fini(Kernel& k) { (void)k; }

}  // namespace rump
