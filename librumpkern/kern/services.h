// services.h: the kernel services (KernelServices, kernel.h) started at
// boot before components (message buffer, host name, sysctl tree, callouts)
// and stopped at halt after them.
#pragma once

#include "base/result.h"

namespace rump {

class Kernel;
struct BootConfig;

Result<void> services_init(Kernel& k, const BootConfig& cfg);
void services_fini(Kernel& k);

}  // namespace rump
