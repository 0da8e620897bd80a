// Descriptor system calls: open and creation of files, close, dup, fcntl,
// flock, ioctl.
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "vfs/vfs.h"
#include "vfs/vnode_pager.h"

namespace rump {

namespace {

constexpr int kOpenFlagsValid = O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK |
                                O_DSYNC | O_ASYNC | O_DIRECT | kOLargefile | O_DIRECTORY | O_NOFOLLOW |
                                O_NOATIME | O_CLOEXEC | O_SYNC | O_PATH | O_TMPFILE;
// What F_GETFL reports and open keeps.
constexpr int kFileFlagsKept = O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_ASYNC | O_DIRECT | kOLargefile |
                               O_NOATIME | O_SYNC | O_PATH | O_DIRECTORY | O_NOFOLLOW;
constexpr int kSetflChangeable = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;

}  // namespace

mode_t proc_umask(Lwp& l) { return l.proc().umask_.load(); }

NewNode new_node(Lwp& l, const Vattr& dir, VType type, mode_t mode) {
  const Cred& c = l.cred();
  NewNode n;
  n.type = type;
  n.uid = c.euid;
  n.mode = mode & 07777;
  if (dir.mode & S_ISGID) {
    n.gid = dir.gid;
    if (type == VType::kDir) n.mode |= S_ISGID;
    else if ((n.mode & S_ISGID) && (n.mode & S_IXGRP) && !c.in_group(n.gid) && !c.is_root())
      n.mode &= ~S_ISGID;
  } else {
    n.gid = c.egid;
  }
  return n;
}

Result<Ref<Vnode>> create_in(Lwp& l, NameiData& nd, const NewNode& n) {
  if (nd.vp || nd.is_dot) return err(EEXIST);
  Vnode& dir = *nd.dir;
  TRY(check_writable_mount(dir));
  MutexLocker g(dir.lock());
  Vattr va;
  dir.getattr(va);
  if (va.nlink == 0) return err(ENOENT);  // removed directory
  if (!vaccess_ok(va, l.cred(), W_OK | X_OK)) return err(EACCES);
  std::string_view name(nd.last);
  switch (n.type) {
    case VType::kDir: return dir.mkdir(name, n);
    case VType::kLnk: return dir.symlink(name, n);
    case VType::kReg: return dir.create(name, n);
    default: return dir.mknod(name, n);
  }
}

Result<Ref<File>> open_vnode(Lwp& l, Ref<Vnode> vp, int flags) {
  Kmem& km = l.kernel().kmem();
  if (flags & O_PATH) {
    int kept = flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW);
    return File::create(km, &kPathFileOps, RefPtr<Vnode>(std::move(vp)), kept);
  }
  Vattr va = getattr(*vp);
  int acc = flags & O_ACCMODE;
  bool want_write = acc == O_WRONLY || acc == O_RDWR;
  if (va.type == VType::kDir && (want_write || (flags & O_TRUNC))) return err(EISDIR);
  if (va.type == VType::kLnk) return err(ELOOP);
  int check = 0;
  if (acc == O_RDONLY || acc == O_RDWR) check |= R_OK;
  if (want_write || (flags & O_TRUNC)) check |= W_OK;
  TRY(vaccess(l, *vp, check));
  int fflags = (flags & kFileFlagsKept & ~(O_DIRECTORY | O_NOFOLLOW)) | kOLargefile;
  const FileOps* ops = &kVnodeFileOps;
  // Not while it is a process's executable (ETXTBSY, Linux's).
  bool counts_write = want_write && va.type == VType::kReg;
  if (counts_write) TRY(vp->get_write_access());
  Result<Ref<File>> made = File::create(km, ops, RefPtr<Vnode>(vp), fflags);
  if (!made.ok()) {
    if (counts_write) vp->put_write_access();
    return err(made.error());
  }
  Ref<File> f = std::move(made).value();
  f->counts_write_ = counts_write;
  switch (va.type) {
    case VType::kFifo:
    case VType::kChr:
    case VType::kBlk:
    case VType::kSock: {
      if (va.type == VType::kSock) return err(ENXIO);
      if (va.type != VType::kFifo && (vp->mount().flags_.load() & MS_NODEV)) return err(EACCES);
      const SpecialOps* s = find_special(va.type, va.rdev);
      if (!s) return err(ENXIO);  // no pipe or driver attached (yet)
      const FileOps* sops = TRY(s->open(l, *vp, *f, flags));
      f->set_ops(sops);
      return f;
    }
    default: break;
  }
  {
    StalePages stale;
    MutexLocker g(vp->mount().lock_);
    TRY(vp->open(flags));
    if ((flags & O_TRUNC) && va.type == VType::kReg) {
      TRY(seals_check_resize(*vp, 0));
      stale.note_locked(*vp, 0, VnodePager::kToEnd);
      TRY(vp->truncate(0));
    }
  }
  return f;
}

namespace {

// Removes name from dir if it still names vp (removal allocates nothing).
void uncreate(Vnode& dir, const char* name, Vnode& vp) {
  MutexLocker g(dir.lock());
  Result<Ref<Vnode>> now = dir.lookup(name);
  if (now.ok() && now.value().get() == &vp) (void)dir.remove(name, vp);
}

// scope: openat2's RESOLVE_* flags as namei's kNoXdev ... kInRoot.
Result<long> do_open(Lwp& l, int dirfd, UserPtr<char> upath, int flags, mode_t mode, int scope = 0) {
  if (flags & ~kOpenFlagsValid) flags &= kOpenFlagsValid;  // Linux ignores unknown bits
  // Linux (since 6.4) refuses the pair outright, O_PATH or not, rather than
  // create a regular file and fail with ENOTDIR.
  if ((flags & (O_CREAT | O_DIRECTORY)) == (O_CREAT | O_DIRECTORY)) return err(EINVAL);
  if ((flags & O_TMPFILE) == O_TMPFILE) {
    int acc = flags & O_ACCMODE;
    if (acc != O_WRONLY && acc != O_RDWR) return err(EINVAL);
    if (flags & O_CREAT) return err(EINVAL);
  } else if ((flags & O_ACCMODE) == O_ACCMODE && !(flags & O_PATH)) {
    return err(EINVAL);
  }
  if (flags & O_PATH) flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  Kmem& km = l.kernel().kmem();
  PathBuf path(km);
  if (!path.p) return err(ENOMEM);
  TRY(copyin_path(l, upath, path.p));
  mode_t cmode = mode & 07777 & ~proc_umask(l);
  RefPtr<Vnode> vp;
  // A file this call created, taken away again if the open fails after
  // all (out of memory, EMFILE): as on Linux, a failed open leaves no name.
  RefPtr<Vnode> created_in;
  char created_name[kNameMax + 1];
  // A description with no vnode reached through a magic link
  // (/proc/<pid>/fd/<n> of a pipe or socket): opened anew by its kind.
  RefPtr<File> magic;
  scope |= kMagicFile;

  if ((flags & O_TMPFILE) == O_TMPFILE) {
    Ref<Vnode> dir = TRY(namei(l, dirfd, path.p, kFollow | scope));
    if (!dir->is_dir()) return err(ENOTDIR);
    TRY(vaccess(l, *dir, W_OK | X_OK));
    Vattr dva = getattr(*dir);
    NewNode n = new_node(l, dva, VType::kReg, cmode);
    Ref<Vnode> t = TRY([&]() -> Result<Ref<Vnode>> {
      MutexLocker g(dir->lock());
      Ref<Vnode> t = TRY(dir->create_unnamed(n));
      t->lock().assert_held();  // made on dir's mount
      t->linkable_ = !(flags & O_EXCL);
      return t;
    }());
    vp = t;
    flags &= ~(O_TMPFILE | O_CREAT | O_EXCL | O_TRUNC);
  } else if (flags & O_CREAT) {
    // A symlink as the last component is followed to its target, which is
    // created if missing, except with O_EXCL (EEXIST) or O_NOFOLLOW (ELOOP).
    bool follow = !(flags & (O_EXCL | O_NOFOLLOW));
    for (int attempt = 0; !vp; attempt++) {
      NameiData nd;
      TRY(namei_create(l, dirfd, path.p, follow, nd, scope));
      // A trailing slash (in the path or a followed link) is EISDIR before
      // anything else, existing or not.
      if (nd.trailing_slash) return err(EISDIR);
      if (nd.magic_file) {
        if (flags & O_EXCL) return err(EEXIST);
        magic = std::move(nd.magic_file);
        vp = nd.vp;
        break;
      }
      if (nd.vp) {
        if (flags & O_EXCL) return err(EEXIST);
        if (nd.vp->is_dir() || nd.is_dot) return err(EISDIR);
        if (nd.vp->type() == VType::kLnk) return err(ELOOP);  // O_NOFOLLOW
        vp = nd.vp;
        break;
      }
      if (nd.is_dot) return err(EISDIR);
      Vattr dva = getattr(*nd.dir);
      Result<Ref<Vnode>> r = create_in(l, nd, new_node(l, dva, VType::kReg, cmode));
      if (r.ok()) {
        vp = std::move(r).value();
        flags &= ~O_TRUNC;  // new and empty
        created_in = nd.dir;
        std::memcpy(created_name, nd.last, sizeof created_name);
        break;
      }
      if (r.error() != EEXIST || (flags & O_EXCL) || attempt > 8) return err(r.error());
    }
  } else {
    Ref<Vnode> v = TRY(namei(l, dirfd, path.p, ((flags & O_NOFOLLOW) ? 0 : kFollow) | scope, &magic));
    if (v->type() == VType::kLnk && !(flags & O_PATH) && !magic) return err(ELOOP);
    vp = std::move(v);
  }
  if (magic) {
    // Linux: a pipe gives a new description of the same pipe (opened as
    // a FIFO is), a socket or an anonymous inode ENXIO; O_PATH one that
    // refers to the object (FileOps::open_path).
    if (flags & O_DIRECTORY) return err(ENOTDIR);
    if (flags & O_PATH) {
      Ref<File> f = TRY(magic->ops().open_path(*magic, l, flags & (O_PATH | O_NOFOLLOW)));
      return TRY(fd_install(l, std::move(f), flags & O_CLOEXEC));
    }
    int fflags = (flags & kFileFlagsKept & ~(O_DIRECTORY | O_NOFOLLOW)) | kOLargefile;
    Ref<File> f = TRY(magic->ops().reopen(*magic, l, fflags));
    return TRY(fd_install(l, std::move(f), flags & O_CLOEXEC));
  }
  if ((flags & O_DIRECTORY) && !vp->is_dir()) return err(ENOTDIR);
  Result<int> fd = [&]() -> Result<int> {
    Ref<File> f = TRY(open_vnode(l, vp.to_ref(), flags));
    return fd_install(l, std::move(f), flags & O_CLOEXEC);
  }();
  if (!fd.ok() && created_in) uncreate(*created_in, created_name, *vp);
  return TRY(std::move(fd));
}

}  // namespace

Result<long> sys_open(Lwp& l, UserPtr<char> pathname, int flags, mode_t mode) {
  return do_open(l, AT_FDCWD, pathname, flags, mode);
}

Result<long> sys_openat(Lwp& l, int dirfd, UserPtr<char> pathname, int flags, mode_t mode) {
  return do_open(l, dirfd, pathname, flags, mode);
}

namespace {

// <linux/openat2.h>
struct OpenHow {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};
constexpr uint64_t kResolveNoXdev = 0x01;
constexpr uint64_t kResolveNoMagiclinks = 0x02;
constexpr uint64_t kResolveNoSymlinks = 0x04;
constexpr uint64_t kResolveBeneath = 0x08;
constexpr uint64_t kResolveInRoot = 0x10;
constexpr uint64_t kResolveCached = 0x20;
constexpr uint64_t kResolveAll = kResolveNoXdev | kResolveNoMagiclinks | kResolveNoSymlinks | kResolveBeneath |
                                 kResolveInRoot | kResolveCached;
constexpr size_t kOpenHowSizeVer0 = 24;
constexpr size_t kOpenHowSizeMax = 4096;  // a page, as Linux

}  // namespace

// openat2: openat with every argument checked (unknown flags are EINVAL,
// not ignored) and the lookup scoped by RESOLVE_*. The structure may be
// larger than this kernel's (a newer caller) if the extra bytes are zero
// (E2BIG otherwise), as Linux's copy_struct_from_user. RESOLVE_NO_MAGICLINKS
// refuses procfs's magic links (ELOOP). RESOLVE_CACHED:
// every lookup here is served from memory, so only the opens that would
// change something (O_CREAT, O_TRUNC, O_TMPFILE) are EAGAIN, as Linux's.
Result<long> sys_openat2(Lwp& l, int dirfd, UserPtr<char> pathname, UserPtr<void> uhow, size_t size) {
  if (size < kOpenHowSizeVer0) return err(EINVAL);
  if (size > kOpenHowSizeMax) return err(E2BIG);
  OpenHow how;
  TRY(copyin(l, uhow.addr, &how, sizeof how));
  for (size_t off = sizeof how; off < size;) {
    unsigned char tail[64];
    size_t n = size - off < sizeof tail ? size - off : sizeof tail;
    TRY(copyin(l, uhow.addr + off, tail, n));
    for (size_t i = 0; i < n; i++)
      if (tail[i]) return err(E2BIG);
    off += n;
  }
  uint64_t flags = how.flags;
  if (!(flags & O_PATH)) flags |= kOLargefile;
  if (flags & ~static_cast<uint64_t>(static_cast<unsigned>(kOpenFlagsValid))) return err(EINVAL);
  if (how.resolve & ~kResolveAll) return err(EINVAL);
  if ((how.resolve & kResolveBeneath) && (how.resolve & kResolveInRoot)) return err(EINVAL);
  bool creates = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
  if (creates ? (how.mode & ~uint64_t{07777}) != 0 : how.mode != 0) return err(EINVAL);
  if ((flags & O_CREAT) && (flags & O_DIRECTORY)) return err(EINVAL);
  if ((flags & O_TMPFILE) == O_TMPFILE && (flags & O_ACCMODE) == O_RDONLY) return err(EINVAL);
  if ((flags & O_PATH) && (flags & ~uint64_t{O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC})) return err(EINVAL);
  if ((how.resolve & kResolveCached) && (flags & (O_TRUNC | O_CREAT | O_TMPFILE))) return err(EAGAIN);
  int scope = 0;
  if (how.resolve & kResolveNoXdev) scope |= kNoXdev;
  if (how.resolve & kResolveNoSymlinks) scope |= kNoSymlinks;
  if (how.resolve & kResolveBeneath) scope |= kBeneath;
  if (how.resolve & kResolveInRoot) scope |= kInRoot;
  if (how.resolve & kResolveNoMagiclinks) scope |= kNoMagiclinks;
  return do_open(l, dirfd, pathname, static_cast<int>(flags), static_cast<mode_t>(how.mode), scope);
}

Result<long> sys_creat(Lwp& l, UserPtr<char> pathname, mode_t mode) {
  return do_open(l, AT_FDCWD, pathname, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

Result<long> sys_close(Lwp& l, int fd) {
  TRY(fd_close(l, fd));
  return 0;
}

Result<long> sys_close_range(Lwp& l, unsigned int first, unsigned int last, unsigned int flags) {
  if (flags & ~(CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)) return err(EINVAL);
  if (first > last) return err(EINVAL);
  ProcVfs& pv = proc_vfs(l.proc());
  Ref<FileTable> fdt = pv.fdt();
  if ((flags & CLOSE_RANGE_UNSHARE) && fdt->shared()) {
    // Siblings may be using the old table right now: it stays allocated
    // for them until the process ends (ProcVfs), and a descriptor a
    // sibling installs there meanwhile goes with it, as it would had its
    // call come just before ours.
    Ref<FileTable> mine = TRY(fdt->copy(l.kernel().kmem()));
    TRY(pv.replace_fdt(mine));
    fdt = std::move(mine);
  }
  if (flags & CLOSE_RANGE_CLOEXEC) {
    fdt->set_cloexec_range(first, last);
    return 0;
  }
  unsigned fd = first;
  while (RefPtr<File> f = fdt->remove_next(&fd, last))
    if (f->vnode()) adv_release_proc(l.kernel(), *f->vnode(), l.proc());
  return 0;
}

Result<long> sys_dup(Lwp& l, int oldfd) {
  Ref<File> f = TRY(fd_get(l, oldfd, true));
  return TRY(fd_install(l, std::move(f), false));
}

namespace {

Result<long> do_dup3(Lwp& l, int oldfd, int newfd, bool cloexec) {
  Ref<File> f = TRY(fd_get(l, oldfd, true));
  RefPtr<File> old = TRY(proc_vfs(l.proc()).fdt()->install_at(std::move(f), newfd, cloexec, nofile_limit(l.proc())));
  if (old && old->vnode()) adv_release_proc(l.kernel(), *old->vnode(), l.proc());
  return newfd;
}

}  // namespace

Result<long> sys_dup2(Lwp& l, int oldfd, int newfd) {
  if (oldfd == newfd) {
    TRY(fd_get(l, oldfd, true));
    return newfd;
  }
  return do_dup3(l, oldfd, newfd, false);
}

Result<long> sys_dup3(Lwp& l, int oldfd, int newfd, int flags) {
  if (flags & ~O_CLOEXEC) return err(EINVAL);
  if (oldfd == newfd) return err(EINVAL);
  return do_dup3(l, oldfd, newfd, flags & O_CLOEXEC);
}

// fcntl's memfd seal commands (F_LINUX_SPECIFIC_BASE + 9, + 10).
constexpr int kFAddSeals = 1024 + 9;
constexpr int kFGetSeals = 1024 + 10;

Result<long> sys_fcntl(Lwp& l, int fd, int cmd, unsigned long arg) {
  Ref<FileTable> fdt = proc_vfs(l.proc()).fdt();
  bool cloexec = false;
  Ref<File> f = TRY(fdt->get(fd, &cloexec));
  bool is_path = f->flags() & O_PATH;
  switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      uint64_t limit = nofile_limit(l.proc());
      if (arg >= limit) return err(EINVAL);
      return TRY(fdt->alloc(std::move(f), static_cast<int>(arg), cmd == F_DUPFD_CLOEXEC, limit));
    }
    case F_GETFD: return cloexec ? FD_CLOEXEC : 0;
    case F_SETFD:
      TRY(fdt->set_cloexec(fd, arg & FD_CLOEXEC));
      return 0;
    case F_GETFL: return f->flags() & ~(O_DIRECTORY | O_NOFOLLOW);
    default: break;
  }
  if (is_path) return err(EBADF);
  switch (cmd) {
    case F_SETFL: {
      int nf = (f->flags() & ~kSetflChangeable) | (static_cast<int>(arg) & kSetflChangeable);
      f->set_flags(nf);
      return 0;
    }
    case F_GETLK:
    case F_SETLK:
    case F_SETLKW:
    case F_OFD_GETLK:
    case F_OFD_SETLK:
    case F_OFD_SETLKW:
      if (!f->vnode()) return err(EINVAL);
      return adv_fcntl(l, *f, cmd, arg);
    case kFAddSeals:
    case kFGetSeals:
      return memfd_fcntl(*f, cmd, arg);
    default: return err(EINVAL);
  }
}

Result<long> sys_flock(Lwp& l, int fd, int operation) {
  // LOCK_MAND never worked and Linux (5.15 on) ignores it; a bad
  // operation is EINVAL before the descriptor is looked at.
  constexpr int kLockMand = 32;
  if (operation & kLockMand) return 0;
  int op = operation & ~LOCK_NB;
  if (op != LOCK_SH && op != LOCK_EX && op != LOCK_UN) return err(EINVAL);
  Ref<File> f = TRY(fd_get(l, fd));
  if (!f->vnode()) return err(EINVAL);
  return adv_flock(l, *f, operation);
}

Result<long> sys_ioctl(Lwp& l, int fd, unsigned long request, UserPtr<void> arg) {
  Ref<File> f = TRY(fd_get(l, fd));
  switch (request) {
    case FIOCLEX: TRY(proc_vfs(l.proc()).fdt()->set_cloexec(fd, true)); return 0;
    case FIONCLEX: TRY(proc_vfs(l.proc()).fdt()->set_cloexec(fd, false)); return 0;
    case FIONBIO: {
      int on = TRY(copyin_obj(l, arg.as<int>()));
      int fl = f->flags();
      f->set_flags(on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
      return 0;
    }
    default: return f->ops().ioctl(*f, l, request, arg.addr);
  }
}

}  // namespace rump
