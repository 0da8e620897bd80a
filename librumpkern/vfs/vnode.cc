// The vnode layer's common parts: Vnode and Mount bases, permission bits,
// the file-system type and special-file registries (process-wide, filled at
// load time, read-only afterwards).
#include "vfs/vnode.h"

#include <sys/mount.h>
#include <unistd.h>

#include <cstring>

#include "kern/clock.h"
#include "kern/kernel.h"
#include "vfs/file.h"
#include "vfs/vfs.h"

namespace rump {

timespec wall_timespec() {
  // Every thread in the kernel has an LWP (invariant 3): the clock is its
  // kernel's.
  auto* l = reinterpret_cast<Lwp*>(rumpuser_curlwp());
  int64_t ns = l ? l->kernel().clock().realtime_ns() : wall_now_ns();
  timespec t;
  t.tv_sec = ns / kNsPerSec;
  t.tv_nsec = ns % kNsPerSec;
  return t;
}

Vnode::Vnode(Mount& mp, VType type) : mount_(mp), type_(type) {}
Vnode::~Vnode() {
  if (memfd_) memfd_state_free(memfd_);
  Kmem::free(deleted_path_.load(std::memory_order_relaxed));
}

Result<Vnode::MagicTarget> Vnode::magic_target(Lwp&) { return MagicTarget{}; }

Result<uint64_t> Vnode::seek_data(uint64_t off, bool hole) {
  Vattr va;
  getattr(va);
  if (off >= va.size) return err(ENXIO);
  return hole ? va.size : off;
}

Mount::Mount(Kernel& k, FsType& type, int flags)
    : flags_(flags), kernel_(k), type_(type), table_lock_(vfs_state(k).mount_lock_),
      adv_lock_(vfs_state(k).adv_lock_) {}
Mount::~Mount() = default;

bool Mount::is_root(const Vnode& vp) {
  MutexLocker g(lock_);
  return root_.get() == &vp;
}

bool Mount::read_only() const { return flags_.load(std::memory_order_relaxed) & MS_RDONLY; }

// A lazy detach and the last unuse race: whichever of the two sees both
// "detached" and "no users" under lock_ tears down (teardown runs once:
// it drops root_).
void Mount::detach(bool lazy) {
  MutexLocker g(lock_);
  detached_ = true;
  if (root_ && (!lazy || users_.load(std::memory_order_acquire) == 0)) teardown();
}

void Mount::last_use_gone() {
  MutexLocker g(lock_);
  if (detached_ && root_) teardown();
}

bool vaccess_ok(const Vattr& va, const Cred& cred, int acc) {
  if (cred.is_root()) {
    if (!(acc & X_OK)) return true;
    // Execute (search for directories) needs some x bit for root.
    return va.type == VType::kDir || (va.mode & 0111);
  }
  mode_t bits;
  if (cred.euid == va.uid) bits = (va.mode >> 6) & 7;
  else if (cred.in_group(va.gid)) bits = (va.mode >> 3) & 7;
  else bits = va.mode & 7;
  mode_t need = 0;
  if (acc & R_OK) need |= 4;
  if (acc & W_OK) need |= 2;
  if (acc & X_OK) need |= 1;
  return (bits & need) == need;
}

// --- registries

namespace {
constexpr int kMaxFsTypes = 16;
FsType* g_fstypes[kMaxFsTypes];
int g_nfstypes;

constexpr int kMaxSpecial = 64;
const SpecialOps* g_special[kMaxSpecial];
int g_nspecial;
}  // namespace

void register_fstype(FsType* t) {
  if (g_nfstypes >= kMaxFsTypes) panic("too many file-system types");
  g_fstypes[g_nfstypes++] = t;
}

FsType* find_fstype(std::string_view name) {
  for (int i = 0; i < g_nfstypes; i++)
    if (name == g_fstypes[i]->name) return g_fstypes[i];
  return nullptr;
}

void for_each_fstype(absl::FunctionRef<void(const FsType&)> fn) {
  for (int i = 0; i < g_nfstypes; i++) fn(*g_fstypes[i]);
}

void register_special(const SpecialOps* ops) {
  if (g_nspecial >= kMaxSpecial) panic("too many special-file handlers");
  g_special[g_nspecial++] = ops;
}

const SpecialOps* find_special(VType type, dev_t rdev) {
  const SpecialOps* any = nullptr;
  for (int i = 0; i < g_nspecial; i++) {
    const SpecialOps* s = g_special[i];
    if (s->type != type) continue;
    if (s->rdev == rdev) return s;
    if (s->rdev == kAnyRdev) any = s;
  }
  return any;
}

}  // namespace rump
