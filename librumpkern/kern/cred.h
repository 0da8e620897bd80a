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

class Cred : public KObject, public RefCounted<Cred> {
 public:
  static constexpr int kMaxGroups = 65536;  // Linux NGROUPS_MAX

  uid_t uid = 0, euid = 0, suid = 0, fsuid = 0;
  gid_t gid = 0, egid = 0, sgid = 0, fsgid = 0;

  static Result<Ref<Cred>> create_root(Kmem& kmem);
  // A private copy to change before it is published.
  Result<Ref<Cred>> clone() const;
  // Replaces the supplementary groups (on an unpublished copy).
  Result<void> set_groups(const gid_t* groups, size_t n);

  const gid_t* groups() const { return groups_; }
  size_t ngroups() const { return ngroups_; }
  bool in_group(gid_t g) const;       // egid or a supplementary group
  bool is_root() const { return euid == 0; }  // the root-equivalent check

  ~Cred();

 private:
  friend class RefCounted<Cred>;
  explicit Cred(Kmem& kmem) : kmem_(kmem) {}
  Kmem& kmem_;
  gid_t* groups_ = nullptr;
  size_t ngroups_ = 0;
};

}  // namespace rump
