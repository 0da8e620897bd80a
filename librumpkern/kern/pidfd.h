// pidfd.h: what the process calls of the core need from process
// descriptors, which the VFS faction makes (vfs/pidfd.cc).
//
// waitid(P_PIDFD) names its child by a pidfd; the core has no descriptors,
// so the VFS faction registers, when its library loads, the function that
// turns a descriptor into the pid it holds (the registry is process-wide
// and written only while libraries load). Without the VFS faction there
// are no descriptors, and every pidfd is EBADF.
#pragma once

#include <sys/types.h>

#include "base/result.h"

namespace rump {

class Lwp;

struct PidfdTarget {
  pid_t pid;
  int file_flags;  // the description's flags (O_NONBLOCK: PIDFD_NONBLOCK)
};

// EBADF when fd is no descriptor or not a pidfd.
using PidfdResolveFn = Result<PidfdTarget> (*)(Lwp& l, int fd);

Result<PidfdTarget> pidfd_resolve(Lwp& l, int fd);

struct PidfdResolverRegistrar {
  explicit PidfdResolverRegistrar(PidfdResolveFn fn);
};

}  // namespace rump
