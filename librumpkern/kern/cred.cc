// Credentials: creation, copy on write, group membership.
#include "kern/cred.h"

#include <cstring>

namespace rump {

Result<Ref<Cred>> Cred::create_root(Kmem& kmem) {
  Cred* c = new (kmem) Cred(kmem);
  if (!c) return err(ENOMEM);
  return adopt_ref(c);
}

Result<Ref<Cred>> Cred::clone() const {
  Cred* c = new (kmem_) Cred(kmem_);
  if (!c) return err(ENOMEM);
  Ref<Cred> r = adopt_ref(c);
  c->uid = uid, c->euid = euid, c->suid = suid, c->fsuid = fsuid;
  c->gid = gid, c->egid = egid, c->sgid = sgid, c->fsgid = fsgid;
  c->cap_effective = cap_effective, c->cap_permitted = cap_permitted, c->cap_inheritable = cap_inheritable;
  TRY(c->set_groups(groups_, ngroups_));
  return r;
}

Result<void> Cred::set_groups(const gid_t* groups, size_t n) {
  if (n > static_cast<size_t>(kMaxGroups)) return err(EINVAL);
  gid_t* g = nullptr;
  if (n) {
    g = static_cast<gid_t*>(kmem_.alloc(n * sizeof(gid_t)));
    if (!g) return err(ENOMEM);
    std::memcpy(g, groups, n * sizeof(gid_t));
  }
  Kmem::free(groups_);
  groups_ = g;
  ngroups_ = n;
  return {};
}

bool Cred::in_group(gid_t g) const {
  if (g == egid) return true;
  for (size_t i = 0; i < ngroups_; i++)
    if (groups_[i] == g) return true;
  return false;
}

Cred::~Cred() { Kmem::free(groups_); }

}  // namespace rump
