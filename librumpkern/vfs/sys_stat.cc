// Attribute system calls: the stat family, statfs, access, chmod, chown,
// utimensat, utimes, futimesat.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "vfs/vfs.h"

namespace rump {

namespace {

void fill_stat(const Vattr& va, struct stat& st) {
  std::memset(&st, 0, sizeof st);
  st.st_dev = va.dev;
  st.st_ino = va.ino;
  st.st_mode = vtype_to_ifmt(va.type) | va.mode;
  st.st_nlink = va.nlink;
  st.st_uid = va.uid;
  st.st_gid = va.gid;
  st.st_rdev = va.rdev;
  st.st_size = static_cast<off_t>(va.size);
  st.st_blksize = kBlockSize;
  st.st_blocks = static_cast<blkcnt_t>(va.blocks);
  st.st_atim = va.atime;
  st.st_mtim = va.mtime;
  st.st_ctim = va.ctime;
}

// What a stat-like call reports on: a vnode, or a description with none
// (a pipe or socket reached through /proc/<pid>/fd/<n>, or named by
// AT_EMPTY_PATH), whose kind fills the stat.
struct StatTarget {
  RefPtr<Vnode> vp;
  RefPtr<File> file;
};

// namei's flags for the AT_* flags of a call that follows a last
// symlink by default (stat) or not (linkat).
int namei_flags(int flags, bool follow_default) {
  int nf = 0;
  if (follow_default && !(flags & AT_SYMLINK_NOFOLLOW)) nf |= kFollow;
  if (!follow_default && (flags & AT_SYMLINK_FOLLOW)) nf |= kFollow;
  if (flags & AT_EMPTY_PATH) nf |= kEmptyPath;
  return nf;
}

// Resolves (dirfd, path) for the calls with AT_* flags that act on a
// vnode.
Result<Ref<Vnode>> resolve_at(Lwp& l, int dirfd, UserPtr<char> upath, int flags, bool follow_default = true) {
  PathBuf path(l.kernel().kmem());
  if (!path.p) return err(ENOMEM);
  TRY(copyin_path(l, upath, path.p, flags & AT_EMPTY_PATH));
  return namei(l, dirfd, path.p, namei_flags(flags, follow_default));
}

// The same for the stat family, which reports on descriptions with no
// vnode too.
Result<StatTarget> resolve_stat_at(Lwp& l, int dirfd, UserPtr<char> upath, int flags) {
  PathBuf path(l.kernel().kmem());
  if (!path.p) return err(ENOMEM);
  TRY(copyin_path(l, upath, path.p, flags & AT_EMPTY_PATH));
  StatTarget t;
  if (path.p[0] == '\0' && dirfd != AT_FDCWD) {
    // AT_EMPTY_PATH: the descriptor itself, O_PATH ones too.
    Ref<File> f = TRY(fd_get(l, dirfd, true));
    if (!f->vnode()) {
      t.file = RefPtr<File>(std::move(f));
      return t;
    }
  }
  Ref<Vnode> vp = TRY(namei(l, dirfd, path.p, namei_flags(flags, true) | kMagicFile, &t.file));
  if (!t.file) t.vp = RefPtr<Vnode>(std::move(vp));
  return t;
}

Result<void> stat_of(const StatTarget& t, struct stat& st) {
  if (t.file) {
    std::memset(&st, 0, sizeof st);
    return t.file->ops().stat(*t.file, &st);
  }
  fill_stat(getattr(*t.vp), st);
  return {};
}

Result<long> stat_out(Lwp& l, const StatTarget& t, UserPtr<struct stat> buf) {
  struct stat st;
  TRY(stat_of(t, st));
  TRY(copyout_obj(l, st, buf));
  return 0;
}

Result<long> stat_out(Lwp& l, Vnode& vp, UserPtr<struct stat> buf) {
  struct stat st;
  fill_stat(getattr(vp), st);
  TRY(copyout_obj(l, st, buf));
  return 0;
}

}  // namespace

Result<long> sys_stat(Lwp& l, UserPtr<char> pathname, UserPtr<struct stat> statbuf) {
  StatTarget t = TRY(resolve_stat_at(l, AT_FDCWD, pathname, 0));
  return stat_out(l, t, statbuf);
}

Result<long> sys_lstat(Lwp& l, UserPtr<char> pathname, UserPtr<struct stat> statbuf) {
  StatTarget t = TRY(resolve_stat_at(l, AT_FDCWD, pathname, AT_SYMLINK_NOFOLLOW));
  return stat_out(l, t, statbuf);
}

Result<long> sys_fstat(Lwp& l, int fd, UserPtr<struct stat> statbuf) {
  Ref<File> f = TRY(fd_get(l, fd, true));
  if (!f->vnode()) {
    struct stat st {};
    TRY(f->ops().stat(*f, &st));
    TRY(copyout_obj(l, st, statbuf));
    return 0;
  }
  return stat_out(l, *f->vnode(), statbuf);
}

Result<long> sys_newfstatat(Lwp& l, int dirfd, UserPtr<char> pathname, UserPtr<struct stat> statbuf, int flags) {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT)) return err(EINVAL);
  StatTarget t = TRY(resolve_stat_at(l, dirfd, pathname, flags));
  return stat_out(l, t, statbuf);
}

Result<long> sys_statx(Lwp& l, int dirfd, UserPtr<char> pathname, int flags, unsigned int mask,
                       UserPtr<void> statxbuf) {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE)) return err(EINVAL);
  if ((flags & AT_STATX_SYNC_TYPE) == AT_STATX_SYNC_TYPE) return err(EINVAL);
  if (mask & STATX__RESERVED) return err(EINVAL);
  StatTarget target = TRY(resolve_stat_at(l, dirfd, pathname, flags));
  struct stat st;
  TRY(stat_of(target, st));
  struct statx sx;
  std::memset(&sx, 0, sizeof sx);
  auto ts = [](const timespec& t) {
    struct statx_timestamp s {};
    s.tv_sec = t.tv_sec;
    s.tv_nsec = static_cast<uint32_t>(t.tv_nsec);
    return s;
  };
  sx.stx_mask = STATX_BASIC_STATS;
  sx.stx_blksize = static_cast<uint32_t>(st.st_blksize);
  sx.stx_nlink = static_cast<uint32_t>(st.st_nlink);
  sx.stx_uid = st.st_uid;
  sx.stx_gid = st.st_gid;
  sx.stx_mode = static_cast<uint16_t>(st.st_mode);
  sx.stx_ino = st.st_ino;
  sx.stx_size = static_cast<uint64_t>(st.st_size);
  sx.stx_blocks = static_cast<uint64_t>(st.st_blocks);
  sx.stx_atime = ts(st.st_atim);
  sx.stx_ctime = ts(st.st_ctim);
  sx.stx_mtime = ts(st.st_mtim);
  sx.stx_rdev_major = major(st.st_rdev);
  sx.stx_rdev_minor = minor(st.st_rdev);
  sx.stx_dev_major = major(st.st_dev);
  sx.stx_dev_minor = minor(st.st_dev);
  // A pipe or socket has no birth time and is no mount's root.
  if (!target.vp) {
    TRY(copyout(l, &sx, statxbuf.addr, sizeof sx));
    return 0;
  }
  Vnode* vp = target.vp.get();
  sx.stx_mask |= STATX_BTIME;
  sx.stx_btime = ts(getattr(*vp).btime);
  if (vp->mount().is_root(*vp)) {
    sx.stx_attributes_mask |= STATX_ATTR_MOUNT_ROOT;
    sx.stx_attributes |= STATX_ATTR_MOUNT_ROOT;
  }
  TRY(copyout(l, &sx, statxbuf.addr, sizeof sx));
  return 0;
}

namespace {

// f_flags as Linux reports them for a mount made with the MS_* flags mf:
// ST_VALID, the mount's options, and relatime unless the mount asked for
// noatime or strictatime (Linux's default).
long statfs_flags(int mf) {
  long flags = 0x20;  // ST_VALID
  if (mf & MS_RDONLY) flags |= ST_RDONLY;
  if (mf & MS_NOSUID) flags |= ST_NOSUID;
  if (mf & MS_NODEV) flags |= ST_NODEV;
  if (mf & MS_NOEXEC) flags |= ST_NOEXEC;
  if (mf & MS_SYNCHRONOUS) flags |= ST_SYNCHRONOUS;
  if (mf & MS_NOATIME) flags |= ST_NOATIME;
  if (mf & MS_NODIRATIME) flags |= ST_NODIRATIME;
  if (!(mf & (MS_NOATIME | MS_STRICTATIME))) flags |= ST_RELATIME;
  return flags;
}

Result<long> statfs_out(Lwp& l, Vnode& vp, UserPtr<void> buf) {
  Mount& m = vp.mount();
  Mount::Stat s = m.statfs();
  struct statfs sf;
  std::memset(&sf, 0, sizeof sf);
  sf.f_type = static_cast<__fsword_t>(s.magic);
  sf.f_bsize = s.bsize ? s.bsize : kBlockSize;
  sf.f_blocks = s.blocks;
  sf.f_bfree = s.bfree;
  sf.f_bavail = s.has_bavail ? s.bavail : s.bfree;
  sf.f_files = s.files;
  sf.f_ffree = s.ffree;
  std::memcpy(&sf.f_fsid, &m.dev_, sizeof(int) * 2 < sizeof m.dev_ ? sizeof(int) * 2 : sizeof m.dev_);
  sf.f_namelen = kNameMax;
  sf.f_frsize = sf.f_bsize;
  sf.f_flags = statfs_flags(m.flags_.load());
  TRY(copyout(l, &sf, buf.addr, sizeof sf));
  return 0;
}

}  // namespace

Result<long> sys_statfs(Lwp& l, UserPtr<char> path, UserPtr<void> buf) {
  Ref<Vnode> vp = TRY(resolve_at(l, AT_FDCWD, path, 0));
  return statfs_out(l, *vp, buf);
}

Result<long> sys_fstatfs(Lwp& l, int fd, UserPtr<void> buf) {
  Ref<File> f = TRY(fd_get(l, fd, true));
  if (!f->vnode()) return err(ENOSYS);
  return statfs_out(l, *f->vnode(), buf);
}

// --- access

namespace {

Result<long> do_access(Lwp& l, int dirfd, UserPtr<char> pathname, int mode, int flags) {
  if (mode & ~(R_OK | W_OK | X_OK)) return err(EINVAL);
  if (flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return err(EINVAL);
  Ref<Vnode> vp = TRY(resolve_at(l, dirfd, pathname, flags));
  if (mode == F_OK) return 0;
  Vattr va = getattr(*vp);
  if ((mode & W_OK) && vp->mount().read_only() &&
      (va.type == VType::kReg || va.type == VType::kDir || va.type == VType::kLnk))
    return err(EROFS);
  if ((mode & X_OK) && va.type == VType::kReg && (vp->mount().flags_.load() & MS_NOEXEC)) return err(EACCES);
  const Cred& c = l.cred();
  if (flags & AT_EACCESS || (c.uid == c.euid && c.gid == c.egid)) {
    if (!vaccess_ok(va, c, mode)) return err(EACCES);
    return 0;
  }
  // access() checks with the real ids.
  Ref<Cred> real = TRY(c.clone());
  real->euid = real->fsuid = c.uid;
  real->egid = real->fsgid = c.gid;
  if (!vaccess_ok(va, *real, mode)) return err(EACCES);
  return 0;
}

}  // namespace

Result<long> sys_access(Lwp& l, UserPtr<char> pathname, int mode) { return do_access(l, AT_FDCWD, pathname, mode, 0); }
Result<long> sys_faccessat(Lwp& l, int dirfd, UserPtr<char> pathname, int mode) {
  return do_access(l, dirfd, pathname, mode, 0);
}
Result<long> sys_faccessat2(Lwp& l, int dirfd, UserPtr<char> pathname, int mode, int flags) {
  return do_access(l, dirfd, pathname, mode, flags);
}

// --- chmod, chown

namespace {

Result<long> do_chmod(Lwp& l, Vnode& vp, mode_t mode) {
  if (vp.type() == VType::kLnk) return err(EOPNOTSUPP);
  TRY(check_writable_mount(vp));
  const Cred& c = l.cred();
  MutexLocker g(vp.mount().lock_);
  Vattr va;
  vp.getattr(va);
  if (!c.is_root() && c.euid != va.uid) return err(EPERM);
  SetAttr sa;
  sa.mask = SetAttr::kMode;
  sa.mode = mode & 07777;
  if (!c.is_root() && !c.in_group(va.gid)) sa.mode &= ~S_ISGID;
  TRY(seals_check_chmod(vp, sa.mode));
  TRY(vp.setattr(sa));
  return 0;
}

Result<long> do_chown(Lwp& l, Vnode& vp, uid_t uid, gid_t gid) {
  TRY(check_writable_mount(vp));
  const Cred& c = l.cred();
  MutexLocker g(vp.mount().lock_);
  Vattr va;
  vp.getattr(va);
  constexpr uid_t kKeep = static_cast<uid_t>(-1);
  if (!c.is_root()) {
    if (uid != kKeep && uid != va.uid) return err(EPERM);
    if (gid != kKeep && gid != va.gid && (c.euid != va.uid || !c.in_group(gid))) return err(EPERM);
    if (gid != kKeep && c.euid != va.uid) return err(EPERM);
    if (uid != kKeep && c.euid != va.uid) return err(EPERM);
  }
  SetAttr sa;
  if (uid != kKeep) {
    sa.mask |= SetAttr::kUid;
    sa.uid = uid;
  }
  if (gid != kKeep) {
    sa.mask |= SetAttr::kGid;
    sa.gid = gid;
  }
  // A change of owner clears set-id bits on non-directories (Linux: setgid
  // only when group-executable, since it means mandatory locking otherwise).
  if (va.type != VType::kDir && (uid != kKeep || gid != kKeep)) {
    mode_t m = va.mode;
    m &= ~S_ISUID;
    if (m & S_IXGRP) m &= ~S_ISGID;
    if (m != va.mode) {
      sa.mask |= SetAttr::kMode;
      sa.mode = m;
    }
  }
  TRY(vp.setattr(sa));
  return 0;
}

}  // namespace

Result<long> sys_chmod(Lwp& l, UserPtr<char> pathname, mode_t mode) {
  Ref<Vnode> vp = TRY(resolve_at(l, AT_FDCWD, pathname, 0));
  return do_chmod(l, *vp, mode);
}

Result<long> sys_fchmod(Lwp& l, int fd, mode_t mode) {
  Ref<File> f = TRY(fd_get(l, fd));
  if (!f->vnode()) return err(EINVAL);
  return do_chmod(l, *f->vnode(), mode);
}

Result<long> sys_fchmodat(Lwp& l, int dirfd, UserPtr<char> pathname, mode_t mode) {
  Ref<Vnode> vp = TRY(resolve_at(l, dirfd, pathname, 0));
  return do_chmod(l, *vp, mode);
}

Result<long> sys_chown(Lwp& l, UserPtr<char> pathname, uid_t owner, gid_t group) {
  Ref<Vnode> vp = TRY(resolve_at(l, AT_FDCWD, pathname, 0));
  return do_chown(l, *vp, owner, group);
}

Result<long> sys_lchown(Lwp& l, UserPtr<char> pathname, uid_t owner, gid_t group) {
  Ref<Vnode> vp = TRY(resolve_at(l, AT_FDCWD, pathname, AT_SYMLINK_NOFOLLOW));
  return do_chown(l, *vp, owner, group);
}

Result<long> sys_fchown(Lwp& l, int fd, uid_t owner, gid_t group) {
  Ref<File> f = TRY(fd_get(l, fd));
  if (!f->vnode()) return err(EINVAL);
  return do_chown(l, *f->vnode(), owner, group);
}

Result<long> sys_fchownat(Lwp& l, int dirfd, UserPtr<char> pathname, uid_t owner, gid_t group, int flags) {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return err(EINVAL);
  Ref<Vnode> vp = TRY(resolve_at(l, dirfd, pathname, flags));
  return do_chown(l, *vp, owner, group);
}

// --- utimensat

namespace {

Result<Ref<Vnode>> utimens_target(Lwp& l, int dirfd, UserPtr<char> pathname, int flags) {
  if (pathname.is_null()) {  // Linux: operate on dirfd itself
    if (dirfd == AT_FDCWD) return proc_vfs(l.proc()).cwd();
    Ref<File> f = TRY(fd_get(l, dirfd, true));
    if (!f->vnode()) return err(EBADF);
    return Ref<Vnode>(*f->vnode());
  }
  return resolve_at(l, dirfd, pathname, flags);
}

// utimensat's work, for utimes and futimesat too: times is null (both now)
// or the two times, already copied in.
Result<long> do_utimens(Lwp& l, int dirfd, UserPtr<char> pathname, const timespec* times, int flags) {
  timespec t[2];
  bool now_both = times == nullptr;
  if (!now_both) {
    t[0] = times[0];
    t[1] = times[1];
    for (auto& x : t)
      if (x.tv_nsec != UTIME_NOW && x.tv_nsec != UTIME_OMIT && (x.tv_nsec < 0 || x.tv_nsec >= 1000000000))
        return err(EINVAL);
    if (t[0].tv_nsec == UTIME_OMIT && t[1].tv_nsec == UTIME_OMIT) return 0;
    now_both = t[0].tv_nsec == UTIME_NOW && t[1].tv_nsec == UTIME_NOW;
  } else {
    t[0].tv_nsec = t[1].tv_nsec = UTIME_NOW;
  }
  Ref<Vnode> vp = TRY(utimens_target(l, dirfd, pathname, flags));
  TRY(check_writable_mount(*vp));
  const Cred& c = l.cred();
  MutexLocker g(vp->mount().lock_);
  Vattr va;
  vp->getattr(va);
  bool owner = c.is_root() || c.euid == va.uid;
  if (now_both) {
    // Setting both to now: the owner, or anyone who may write.
    if (!owner && !vaccess_ok(va, c, W_OK)) return err(EACCES);
  } else if (!owner) {
    return err(EPERM);
  }
  // One clock reading for every time set to now and the change time, as
  // Linux: UTIME_NOW leaves atime == mtime == ctime.
  timespec now = wall_timespec();
  SetAttr sa;
  sa.mask = SetAttr::kCtime;
  sa.ctime = now;
  if (t[0].tv_nsec != UTIME_OMIT) {
    sa.mask |= SetAttr::kAtime;
    sa.atime = t[0].tv_nsec == UTIME_NOW ? now : t[0];
  }
  if (t[1].tv_nsec != UTIME_OMIT) {
    sa.mask |= SetAttr::kMtime;
    sa.mtime = t[1].tv_nsec == UTIME_NOW ? now : t[1];
  }
  TRY(vp->setattr(sa));
  return 0;
}

// Linux's futimesat: microseconds out of range (UTIME_NOW and UTIME_OMIT
// included) are EINVAL before anything else.
Result<long> do_futimes(Lwp& l, int dirfd, UserPtr<char> pathname, UserPtr<struct timeval> times) {
  if (times.is_null()) return do_utimens(l, dirfd, pathname, nullptr, 0);
  timeval tv[2];
  TRY(copyin(l, times.addr, tv, sizeof tv));
  timespec t[2];
  for (int i = 0; i < 2; i++) {
    if (tv[i].tv_usec < 0 || tv[i].tv_usec >= 1000000) return err(EINVAL);
    t[i].tv_sec = tv[i].tv_sec;
    t[i].tv_nsec = tv[i].tv_usec * 1000;
  }
  return do_utimens(l, dirfd, pathname, t, 0);
}

}  // namespace

Result<long> sys_utimensat(Lwp& l, int dirfd, UserPtr<char> pathname, UserPtr<struct timespec> times, int flags) {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return err(EINVAL);
  if (times.is_null()) return do_utimens(l, dirfd, pathname, nullptr, flags);
  timespec t[2];
  TRY(copyin(l, times.addr, t, sizeof t));
  return do_utimens(l, dirfd, pathname, t, flags);
}

Result<long> sys_utimes(Lwp& l, UserPtr<char> filename, UserPtr<struct timeval> times) {
  return do_futimes(l, AT_FDCWD, filename, times);
}

Result<long> sys_futimesat(Lwp& l, int dirfd, UserPtr<char> pathname, UserPtr<struct timeval> times) {
  return do_futimes(l, dirfd, pathname, times);
}

}  // namespace rump
