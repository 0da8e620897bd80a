// memfd_create and file seals (fcntl F_ADD_SEALS / F_GET_SEALS).
//
// A memfd is a tmpfs regular file with no name (nlink 0, as Linux's): each
// one lives on a tmpfs mount of its own that is in no namespace and is
// detached at once, so its tree goes when the last description of the
// file closes (Mount::detach). The file's MemfdState, hung on its vnode,
// holds the name ("memfd:NAME", what /proc shows for the descriptor) and
// the seals.
//
// Seals, with Linux's meaning (mm/memfd.c, mm/shmem.c):
//   F_SEAL_SEAL    no more seals (F_ADD_SEALS: EPERM)
//   F_SEAL_SHRINK  the size may not go down (truncate: EPERM)
//   F_SEAL_GROW    the size may not go up (truncate, writes and fallocate
//                  past the end: EPERM)
//   F_SEAL_WRITE, F_SEAL_FUTURE_WRITE  no writes, no hole punching (EPERM)
//   F_SEAL_EXEC    the execute bits stay as they are (chmod: EPERM); added
//                  to a file with an execute bit, it brings SHRINK, GROW,
//                  WRITE and FUTURE_WRITE along.
// A memfd made without MFD_ALLOW_SEALING starts with F_SEAL_SEAL. Files
// that are not memfds have no seals: F_GET_SEALS and F_ADD_SEALS are EINVAL
// (F_ADD_SEALS on a description not open for writing is EPERM first).
// F_SEAL_WRITE is EBUSY while a shared mapping that may be made writable
// exists (one made from a description open for writing, whatever its
// protection now: Linux's VM_MAYWRITE), counted by the file's page cache
// (VmObject::add_writable_map); the seal denies new ones for good. Shared
// mappings made after the seal may only be read (mmap with PROT_WRITE:
// EPERM; mprotect to PROT_WRITE: EACCES, as Linux).
//
// Locking: the seals change and are checked under the file's tree lock
// (Mount::lock_), so a check and the change it allows are atomic. mmap
// finds the cache before it looks at the seals (vnode_pager.cc), so a seal
// either sees the cache and denies it, or comes first and is seen.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <atomic>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "fs/tmpfs/tmpfs.h"
#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "vfs/vfs.h"
#include "vfs/vnode_pager.h"

namespace rump {

namespace {

// <linux/memfd.h> and <linux/fcntl.h>
constexpr unsigned kMfdCloexec = 0x1;
constexpr unsigned kMfdAllowSealing = 0x2;
constexpr unsigned kMfdHugetlb = 0x4;
constexpr unsigned kMfdNoexecSeal = 0x8;
constexpr unsigned kMfdExec = 0x10;
constexpr unsigned kMfdAll = kMfdCloexec | kMfdAllowSealing | kMfdHugetlb | kMfdNoexecSeal | kMfdExec;
constexpr unsigned kMfdHugeShift = 26;
constexpr unsigned kMfdHugeMask = 0x3f;

constexpr int kFGetSeals = 1024 + 10;
constexpr uint32_t kSealSeal = 0x1;
constexpr uint32_t kSealShrink = 0x2;
constexpr uint32_t kSealGrow = 0x4;
constexpr uint32_t kSealWrite = 0x8;
constexpr uint32_t kSealFutureWrite = 0x10;
constexpr uint32_t kSealExec = 0x20;
constexpr uint32_t kSealAll = kSealSeal | kSealShrink | kSealGrow | kSealWrite | kSealFutureWrite | kSealExec;

// "memfd:" and a name of at most NAME_MAX less the prefix.
constexpr char kPrefix[] = "memfd:";
constexpr size_t kPrefixLen = sizeof kPrefix - 1;
constexpr size_t kNameMaxLen = kNameMax - kPrefixLen;

uint64_t size_of(Vnode& vp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(vp.lock()) {
  Vattr va;
  vp.getattr(va);
  return va.size;
}

}  // namespace

struct MemfdState : KObject {
  // Changed under the file's tree lock; read under it by the checks.
  std::atomic<uint32_t> seals{0};
  char name[kPrefixLen + kNameMaxLen + 1] = {};
};

void memfd_state_free(MemfdState* m) { delete m; }

const char* memfd_name(const Vnode& vp) { return vp.memfd() ? vp.memfd()->name : nullptr; }

Result<uint64_t> seals_check_write(Vnode& vp, uint64_t off, uint64_t len) {
  MemfdState* m = vp.memfd();
  if (!m) return len;
  uint32_t s = m->seals.load(std::memory_order_relaxed);
  if (s & (kSealWrite | kSealFutureWrite)) return err(EPERM);
  if (!(s & kSealGrow)) return len;
  uint64_t size = size_of(vp), end = off + len, pos = off;
  while (pos < end) {
    uint64_t next = (pos / kBlockSize + 1) * kBlockSize;
    if (next > end) next = end;
    if (next > size) break;
    pos = next;
  }
  if (pos == off) return err(EPERM);
  return pos - off;
}

bool seals_deny_shared_write(const Vnode& vp) {
  const MemfdState* m = vp.memfd();
  return m && (m->seals.load(std::memory_order_relaxed) & (kSealWrite | kSealFutureWrite));
}

Result<void> seals_check_resize(Vnode& vp, uint64_t size) {
  MemfdState* m = vp.memfd();
  if (!m) return {};
  uint32_t s = m->seals.load(std::memory_order_relaxed);
  uint64_t cur = size_of(vp);
  if ((size < cur && (s & kSealShrink)) || (size > cur && (s & kSealGrow))) return err(EPERM);
  return {};
}

Result<void> seals_check_fallocate(Vnode& vp, int mode, uint64_t off, uint64_t len) {
  MemfdState* m = vp.memfd();
  if (!m) return {};
  uint32_t s = m->seals.load(std::memory_order_relaxed);
  if (mode & kFallocPunchHole) {
    if (s & (kSealWrite | kSealFutureWrite)) return err(EPERM);
    return {};
  }
  if ((s & kSealGrow) && off + len > size_of(vp)) return err(EPERM);
  return {};
}

Result<void> seals_check_chmod(Vnode& vp, mode_t mode) {
  MemfdState* m = vp.memfd();
  if (!m || !(m->seals.load(std::memory_order_relaxed) & kSealExec)) return {};
  Vattr va;
  vp.getattr(va);
  if ((va.mode ^ mode) & 0111) return err(EPERM);
  return {};
}

Result<long> memfd_fcntl(File& f, int cmd, unsigned long arg) {
  Vnode* vp = f.vnode();
  if (cmd == kFGetSeals) {
    if (!vp || !vp->memfd()) return err(EINVAL);
    MutexLocker g(vp->mount().lock_);
    return static_cast<long>(vp->memfd()->seals.load(std::memory_order_relaxed));
  }
  // F_ADD_SEALS
  if (!f.writable()) return err(EPERM);
  uint32_t add = static_cast<uint32_t>(arg);
  if (add & ~kSealAll) return err(EINVAL);
  if (!vp || !vp->memfd()) return err(EINVAL);
  MemfdState& m = *vp->memfd();
  MutexLocker g(vp->mount().lock_);
  uint32_t cur = m.seals.load(std::memory_order_relaxed);
  if (cur & kSealSeal) return err(EPERM);
  if (add & kSealExec) {
    Vattr va;
    vp->getattr(va);
    if (va.mode & 0111) add |= kSealShrink | kSealGrow | kSealWrite | kSealFutureWrite;
  }
  if ((add & kSealWrite) && !(cur & kSealWrite))
    if (RefPtr<VnodePager> p = VnodePager::find_locked(*vp)) TRY(p->deny_writable_maps());
  m.seals.store(cur | add, std::memory_order_relaxed);
  return 0;
}

Result<long> sys_memfd_create(Lwp& l, UserPtr<char> uname, unsigned int flags) {
  if (flags & kMfdHugetlb) {
    // No huge pages here: the size bits are checked, then it is EINVAL as
    // on a Linux without hugetlbfs.
    if (flags & ~(kMfdAll | (kMfdHugeMask << kMfdHugeShift))) return err(EINVAL);
    return err(EINVAL);
  }
  if (flags & ~kMfdAll) return err(EINVAL);
  if ((flags & kMfdExec) && (flags & kMfdNoexecSeal)) return err(EINVAL);
  // Linux's strnlen_user over NAME_MAX - 6 + 1 bytes: a longer name is
  // EINVAL.
  auto* state = new (l.kernel().kmem()) MemfdState;
  if (!state) return err(ENOMEM);
  absl::Cleanup free_state = [&] { delete state; };
  std::memcpy(state->name, kPrefix, kPrefixLen);
  {
    char* name = state->name + kPrefixLen;
    size_t i = 0;
    for (;; i++) {
      if (i > kNameMaxLen) return err(EINVAL);
      char c;
      TRY(copyin(l, uname.addr + i, &c, 1));
      if (c == '\0') break;
      if (i < kNameMaxLen) name[i] = c;
    }
  }
  // Sealing allowed (or F_SEAL_EXEC from MFD_NOEXEC_SEAL), else sealed
  // against seals.
  mode_t mode = 0777;
  uint32_t seals = kSealSeal;
  if (flags & kMfdNoexecSeal) {
    mode = 0666;
    seals = kSealExec;
  } else if (flags & kMfdAllowSealing) {
    seals = 0;
  }
  state->seals.store(seals, std::memory_order_relaxed);

  Kernel& k = l.kernel();
  Ref<Mount> mp = TRY(tmpfs_mount(k, "memfd", 0, nullptr));
  mp->dev_ = makedev(0, vfs_state(k).next_dev_.fetch_add(1));
  // The mount is in no namespace: once the file is open it is detached, and
  // goes with the file's last close; until then, any failure tears it down.
  absl::Cleanup drop_mount = [&] { mp->detach(false); };
  Ref<Vnode> vp = TRY([&]() -> Result<Ref<Vnode>> {
    MutexLocker g(mp->lock_);
    Ref<Vnode> root = mp->root_.to_ref();
    root->lock().assert_held();  // the mount's lock
    NewNode n;
    n.type = VType::kReg;
    n.mode = mode;
    n.uid = l.cred().fsuid;
    n.gid = l.cred().fsgid;
    return root->create_unnamed(n);
  }());
  vp->set_memfd(state);
  std::move(free_state).Cancel();
  Ref<File> f = TRY(open_vnode(l, vp, O_RDWR | kOLargefile));
  std::move(drop_mount).Cancel();
  mp->detach(true);
  return TRY(fd_install(l, std::move(f), flags & kMfdCloexec));
}

}  // namespace rump
