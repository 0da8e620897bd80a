// pid.h: the process-id allocator.
//
// A bitmap over [1, pid_max) marks every id in use as a pid, a thread id, a
// process-group id or a session id; an id is handed out only when its bit
// is clear, so a pid still naming a group or session is never reused.
// Allocation goes round-robin from the last id given (wrapping at pid_max
// to 300, as Linux does after the first pass), starts at a random point
// when randomisation is on, or in the top half for RFHIGHPID.
// The process table's lock guards it (ProcTable).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "base/intrusive_hash.h"
#include "base/kmem.h"
#include "base/result.h"

namespace rump {

class PidAllocator {
 public:
  static constexpr pid_t kDefaultPidMax = 32768;
  static constexpr pid_t kWrapTo = 300;

  explicit PidAllocator(Kmem& kmem);
  ~PidAllocator();
  PidAllocator(const PidAllocator&) = delete;
  PidAllocator& operator=(const PidAllocator&) = delete;
  Result<void> init(pid_t pid_max);

  // A fresh id with one holder. EAGAIN when every id is in use, ENOMEM
  // when its holder record cannot be had (nothing taken then).
  Result<pid_t> alloc(bool high, uint32_t random);
  // Marks a specific id in use with one holder (pid 0 / 1 at boot).
  Result<void> reserve(pid_t id);
  // One more holder of an id already in use (a process joining the group
  // or session the id names, the first LWP of a process taking its pid as
  // tid): never allocates, so it cannot fail. Panics if id has no holder.
  void hold(pid_t id);
  // One fewer holder; the id is free again when none is left.
  void release(pid_t id);
  bool in_use(pid_t id) const;
  // Gives every id and record back (halt).
  void clear();

  pid_t pid_max() const { return pid_max_; }
  pid_t last() const { return last_; }
  bool randomize = false;

 private:
  // Holders of one id; an id with no record has none.
  struct Holders : KObject {
    bi::unordered_set_member_hook<> hook;
    pid_t id;
    uint32_t count;
  };
  struct IdOf {
    using type = pid_t;
    pid_t operator()(const Holders& h) const { return h.id; }
  };

  Result<void> add_record(pid_t id);

  Kmem& kmem_;
  uint64_t* bits_ = nullptr;
  pid_t pid_max_ = 0;
  pid_t last_ = 0;
  IntrusiveHash<Holders, &Holders::hook, IdOf> holders_;
};

}  // namespace rump
