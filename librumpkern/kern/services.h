// services.h: the kernel services started at boot before components
// (sysctl tree, callouts, kernel threads) and stopped at halt after them.
#pragma once

#include "base/result.h"

namespace rump {

class Kernel;

Result<void> services_init(Kernel& k);
void services_fini(Kernel& k);

}  // namespace rump
