// File handles: name_to_handle_at and open_by_handle_at.
//
// A handle names a file by what its file system keeps for it, not by a
// path: the inode number and generation (Mount::handle_words and
// Mount::vget; tmpfs and ext2 give them, other file systems none:
// EOPNOTSUPP). The words as Linux lays them out: two words (ext2, as
// ext4's FILEID_INO32_GEN) are the inode number and the generation; three
// (tmpfs, as shmem's) are the generation and the 64-bit inode number, low
// half first. A handle whose file is gone (or that was never one) is
// ESTALE.
//
// Linux's rules: handle_bytes above MAX_HANDLE_SZ (128) is EINVAL; a
// buffer too small for the handle is EOVERFLOW, with handle_bytes set to
// the size needed (and the mount id written) so the caller can retry;
// open_by_handle_at needs CAP_DAC_READ_SEARCH (EPERM), and looks the handle
// up on the file system of mount_fd.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstring>

#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "vfs/vfs.h"

namespace rump {

namespace {

constexpr uint32_t kMaxHandleSize = 128;  // MAX_HANDLE_SZ
constexpr int kFileIdIno32Gen = 1;        // FILEID_INO32_GEN
constexpr int kFileIdInvalid = 0xff;      // FILEID_INVALID
constexpr int kAtHandleMntIdUnique = 0x001;
constexpr int kAtHandleFid = 0x200;       // AT_HANDLE_FID (= AT_REMOVEDIR)

// struct file_handle without its flexible array.
struct HandleHeader {
  uint32_t handle_bytes;
  int32_t handle_type;
};

void encode(int words, uint64_t ino, uint32_t gen, uint32_t* w) {
  if (words == 2) {
    w[0] = static_cast<uint32_t>(ino);
    w[1] = gen;
  } else {
    w[0] = gen;
    w[1] = static_cast<uint32_t>(ino);
    w[2] = static_cast<uint32_t>(ino >> 32);
  }
}

void decode(int words, const uint32_t* w, uint64_t* ino, uint32_t* gen) {
  if (words == 2) {
    *ino = w[0];
    *gen = w[1];
  } else {
    *gen = w[0];
    *ino = w[1] | uint64_t{w[2]} << 32;
  }
}

// The id name_to_handle_at reports for a mount.
uint64_t mount_id(const Mount& m) { return minor(m.dev_); }

}  // namespace

Result<long> sys_name_to_handle_at(Lwp& l, int dirfd, UserPtr<char> pathname, UserPtr<void> handle,
                                   UserPtr<int> mount_id_p, int flags) {
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH | kAtHandleFid | kAtHandleMntIdUnique)) return err(EINVAL);
  PathBuf path(l.kernel().kmem());
  if (!path.p) return err(ENOMEM);
  TRY(copyin_path(l, pathname, path.p, flags & AT_EMPTY_PATH));
  int nflags = (flags & AT_SYMLINK_FOLLOW) ? kFollow : 0;
  if (flags & AT_EMPTY_PATH) nflags |= kEmptyPath;
  Ref<Vnode> vp = TRY(namei(l, dirfd, path.p, nflags));
  Mount& m = vp->mount();
  int words = m.handle_words();
  if (words == 0) return err(EOPNOTSUPP);
  HandleHeader h;
  TRY(copyin(l, handle.addr, &h, sizeof h));
  if (h.handle_bytes > kMaxHandleSize) return err(EINVAL);
  uint32_t w[3] = {};
  {
    MutexLocker g(vp->mount().lock_);
    Vattr va;
    vp->getattr(va);
    Result<uint32_t> gen = vp->generation();
    encode(words, va.ino, gen.ok() ? gen.value() : 0, w);
  }
  uint32_t need = static_cast<uint32_t>(words) * 4;
  bool fits = h.handle_bytes >= need;
  HandleHeader out{need, fits ? kFileIdIno32Gen : kFileIdInvalid};
  uint64_t id = mount_id(m);
  if (flags & kAtHandleMntIdUnique) TRY(copyout_obj(l, id, UserPtr<uint64_t>{mount_id_p.addr}));
  else TRY(copyout_obj(l, static_cast<int>(id), mount_id_p));
  TRY(copyout_obj(l, out, UserPtr<HandleHeader>{handle.addr}));
  if (!fits) return err(EOVERFLOW);
  TRY(copyout(l, w, handle.addr + sizeof h, need));
  return 0;
}

Result<long> sys_open_by_handle_at(Lwp& l, int mount_fd, UserPtr<void> handle, int flags) {
  Ref<Vnode> anchor = TRY([&]() -> Result<Ref<Vnode>> {
    if (mount_fd == AT_FDCWD) return proc_vfs(l.proc()).cwd();
    Ref<File> f = TRY(fd_get(l, mount_fd, true));
    if (!f->vnode()) return err(ESTALE);
    return Ref<Vnode>(*f->vnode());
  }());
  if (!l.cred().capable(kCapDacReadSearch)) return err(EPERM);
  HandleHeader h;
  TRY(copyin(l, handle.addr, &h, sizeof h));
  if (h.handle_bytes == 0 || h.handle_bytes > kMaxHandleSize) return err(EINVAL);
  if (h.handle_type < 0) return err(EINVAL);
  uint32_t w[kMaxHandleSize / 4] = {};
  TRY(copyin(l, handle.addr + sizeof h, w, h.handle_bytes));
  Mount& m = anchor->mount();
  int words = m.handle_words();
  if (h.handle_type != kFileIdIno32Gen || words == 0 || h.handle_bytes != static_cast<uint32_t>(words) * 4)
    return err(ESTALE);
  uint64_t ino;
  uint32_t gen;
  decode(words, w, &ino, &gen);
  Ref<Vnode> vp = TRY([&]() -> Result<Ref<Vnode>> {
    MutexLocker g(m.lock_);
    return m.vget(ino, gen);
  }());
  // As open(2) on the object itself: no name is created or followed.
  flags &= ~(O_CREAT | O_EXCL);
  if ((flags & O_TMPFILE) == O_TMPFILE) return err(EINVAL);
  if ((flags & O_ACCMODE) == O_ACCMODE && !(flags & O_PATH)) return err(EINVAL);
  if (flags & O_PATH) flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  if (vp->type() == VType::kLnk && !(flags & O_PATH)) return err(ELOOP);
  if ((flags & O_DIRECTORY) && !vp->is_dir()) return err(ENOTDIR);
  Ref<File> f = TRY(open_vnode(l, std::move(vp), flags));
  return TRY(fd_install(l, std::move(f), flags & O_CLOEXEC));
}

}  // namespace rump
