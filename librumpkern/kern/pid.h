// pid.h: the process-id allocator.
//
// A bitmap over [1, pid_max) marks every id in use as a pid, a thread id, a
// process-group id or a session id; an id is handed out only when its bit
// is clear, so a pid still naming a group or session is never reused.
// Allocation goes round-robin from the last id given (wrapping at pid_max
// to 300, as Linux does after the first pass), starts at a random point
// when randomisation is on, or in the top half for RFHIGHPID.
// Guarded by Kernel::proc_tree_lock_.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "base/kmem.h"
#include "base/result.h"

namespace rump {

class PidAllocator {
 public:
  static constexpr pid_t kDefaultPidMax = 32768;
  static constexpr pid_t kWrapTo = 300;

  explicit PidAllocator(Kmem& kmem);
  ~PidAllocator();
  Result<void> init(pid_t pid_max);

  // EAGAIN when every id is in use.
  Result<pid_t> alloc(bool high, uint32_t random);
  // Marks a specific id in use (pid 0 / 1 at boot).
  void reserve(pid_t id);
  // One more / one fewer holder of id (process itself, group, session).
  void hold(pid_t id);
  void release(pid_t id);
  bool in_use(pid_t id) const;

  pid_t pid_max() const { return pid_max_; }
  pid_t last() const { return last_; }
  bool randomize = false;

 private:
  Kmem& kmem_;
  uint64_t* bits_ = nullptr;
  pid_t pid_max_ = 0;
  pid_t last_ = 0;
  // Holders per id; an id absent here has none.
  absl::flat_hash_map<pid_t, uint32_t, absl::container_internal::hash_default_hash<pid_t>,
                      absl::container_internal::hash_default_eq<pid_t>,
                      KAllocator<std::pair<const pid_t, uint32_t>>>
      holders_;
};

}  // namespace rump
