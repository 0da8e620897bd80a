// cred.h: process credentials.
//
// A Cred is immutable once shared: processes hold Ref<Cred>, children share
// their parent's, and a change (setuid, setgroups ...) makes a new Cred and
// swaps it in under the process lock (copy on write).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"

namespace rump {

// Linux's capability numbers (<linux/capability.h>), the ones the kernel
// checks; kCapLast is the highest Linux defines.
enum Capability : int {
  kCapChown = 0,
  kCapDacOverride = 1,
  kCapDacReadSearch = 2,
  kCapFowner = 3,
  kCapKill = 5,
  kCapSetgid = 6,
  kCapSetuid = 7,
  kCapSetpcap = 8,
  kCapIpcLock = 14,
  kCapSysPtrace = 19,
  kCapSysAdmin = 21,
  kCapSysNice = 23,
  kCapSysResource = 24,
  kCapSysTime = 25,
  kCapLast = 40,
};
inline constexpr uint64_t kCapAll = (uint64_t{1} << (kCapLast + 1)) - 1;

class Cred : public KObject, public RefCounted<Cred> {
 public:
  static constexpr int kMaxGroups = 65536;  // Linux NGROUPS_MAX

  uid_t uid = 0, euid = 0, suid = 0, fsuid = 0;
  gid_t gid = 0, egid = 0, sgid = 0, fsgid = 0;
  // Capability sets (bit n: capability n). Root starts with all of them;
  // setuid transitions change them as Linux does (sys_cred.cc).
  uint64_t cap_effective = kCapAll, cap_permitted = kCapAll, cap_inheritable = 0;

  static Result<Ref<Cred>> create_root(Kmem& kmem);
  // A private copy to change before it is published.
  Result<Ref<Cred>> clone() const;
  // Replaces the supplementary groups (on an unpublished copy).
  Result<void> set_groups(const gid_t* groups, size_t n);

  const gid_t* groups() const { return groups_; }
  size_t ngroups() const { return ngroups_; }
  bool in_group(gid_t g) const;       // egid or a supplementary group
  bool is_root() const { return euid == 0; }  // the root-equivalent check
  // Holds capability cap in its effective set.
  bool capable(int cap) const { return (cap_effective >> cap) & 1; }

  ~Cred();

 private:
  friend class RefCounted<Cred>;
  explicit Cred(Kmem& kmem) : kmem_(kmem) {}
  Kmem& kmem_;
  gid_t* groups_ = nullptr;
  size_t ngroups_ = 0;
};

}  // namespace rump
