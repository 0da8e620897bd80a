// Name-space system calls: mkdir, mknod, rmdir, unlink, rename, link,
// symlink, readlink, getdents64, chdir, fchdir, getcwd, chroot.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
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

#define COPY_PATH(var, upath, allow_empty)         \
  PathBuf var(l.kernel().kmem());                  \
  if (!var.p) return err(ENOMEM);                  \
  TRY(copyin_path(l, upath, var.p, allow_empty))

bool crossed(const NameiData& nd) { return nd.vp && &nd.vp->mount() != &nd.dir->mount(); }

Result<long> do_mknod(Lwp& l, int dirfd, UserPtr<char> upath, mode_t mode, dev_t dev, VType type) {
  COPY_PATH(path, upath, false);
  NameiData nd;
  TRY(namei_parent(l, dirfd, path.p, nd));
  if (nd.vp || nd.is_dot) return err(EEXIST);
  if (nd.trailing_slash && type != VType::kDir) return err(ENOENT);
  Vattr dva = getattr(*nd.dir);
  mode_t m = mode & (type == VType::kDir ? 07777 : 07777) & ~proc_umask(l);
  NewNode n = new_node(l, dva, type, m);
  n.rdev = (type == VType::kChr || type == VType::kBlk) ? dev : 0;
  TRY(create_in(l, nd, n));
  return 0;
}

}  // namespace

Result<long> sys_mkdir(Lwp& l, UserPtr<char> pathname, mode_t mode) {
  return do_mknod(l, AT_FDCWD, pathname, mode & 07777, 0, VType::kDir);
}
Result<long> sys_mkdirat(Lwp& l, int dirfd, UserPtr<char> pathname, mode_t mode) {
  return do_mknod(l, dirfd, pathname, mode & 07777, 0, VType::kDir);
}

Result<long> sys_mknodat(Lwp& l, int dirfd, UserPtr<char> pathname, mode_t mode, dev_t dev) {
  VType t;
  switch (mode & S_IFMT) {
    case 0:
    case S_IFREG: t = VType::kReg; break;
    case S_IFCHR: t = VType::kChr; break;
    case S_IFBLK: t = VType::kBlk; break;
    case S_IFIFO: t = VType::kFifo; break;
    case S_IFSOCK: t = VType::kSock; break;
    case S_IFDIR: return err(EPERM);
    default: return err(EINVAL);
  }
  if ((t == VType::kChr || t == VType::kBlk) && !l.cred().is_root()) return err(EPERM);
  return do_mknod(l, dirfd, pathname, mode & 07777, dev, t);
}
Result<long> sys_mknod(Lwp& l, UserPtr<char> pathname, mode_t mode, dev_t dev) {
  return sys_mknodat(l, AT_FDCWD, pathname, mode, dev);
}

Result<long> sys_symlinkat(Lwp& l, UserPtr<char> target, int newdirfd, UserPtr<char> linkpath) {
  COPY_PATH(tgt, target, false);
  COPY_PATH(path, linkpath, false);
  NameiData nd;
  TRY(namei_parent(l, newdirfd, path.p, nd));
  if (nd.vp || nd.is_dot) return err(EEXIST);
  if (nd.trailing_slash) return err(ENOENT);
  Vattr dva = getattr(*nd.dir);
  NewNode n = new_node(l, dva, VType::kLnk, 0777);
  n.mode = 0777;
  n.symlink_target = tgt.p;
  TRY(create_in(l, nd, n));
  return 0;
}
Result<long> sys_symlink(Lwp& l, UserPtr<char> target, UserPtr<char> linkpath) {
  return sys_symlinkat(l, target, AT_FDCWD, linkpath);
}

// --- removal

namespace {

// True if ancestor is d or one of d's parents (all in one tree: its lock
// covers every step).
bool inside(Vnode* d, Vnode* ancestor) ABSL_EXCLUSIVE_LOCKS_REQUIRED(d->lock()) {
  for (Vnode* p = d; p;) {
    if (p == ancestor) return true;
    p->lock().assert_held();
    p = p->parent_dir();
  }
  return false;
}

// The checks unlink and rmdir share, with the tree lock held: search and
// write permission on the directory, and the sticky bit.
Result<void> may_delete(Lwp& l, Vnode& dir, Vnode& vp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(dir.mount().lock_) {
  Vattr dva, va;
  dir.getattr(dva);
  vp.lock().assert_held();  // an entry of dir: the same tree
  vp.getattr(va);
  if (!vaccess_ok(dva, l.cred(), W_OK | X_OK)) return err(EACCES);
  if (sticky_denies(l.cred(), dva, va)) return err(EPERM);
  return {};
}

// A node whose last name went while something else still uses it (an
// open description, a cwd) remembers where it was, for /proc's links.
// Costs nothing for a node nobody else holds.
// vp's name was name in dir; the caller holds one reference to vp and
// no tree lock.
void note_deleted(Lwp& l, Vnode& dirvp, const char* name, Vnode& vp) {
  if (vp.ref_count() <= 1 || getattr(vp).nlink != 0) return;
  Kmem& km = l.kernel().kmem();
  PathBuf path(km);
  if (!path.p) return;
  Result<size_t> start = vnode_path(proc_vfs(l.proc()).root(), Ref<Vnode>(dirvp), path.p);
  if (!start.ok()) return;
  const char* dir = path.p + start.value();
  size_t dn = std::strlen(dir), nn = std::strlen(name);
  if (dn == 1) dn = 0;  // "/" + name
  auto* p = static_cast<char*>(km.alloc(dn + 1 + nn + 1));
  if (!p) return;
  std::memcpy(p, dir, dn);
  p[dn] = '/';
  std::memcpy(p + dn + 1, name, nn + 1);
  vp.set_deleted_path(p);
}

void note_deleted(Lwp& l, NameiData& nd) { note_deleted(l, *nd.dir, nd.last, *nd.vp); }

Result<long> do_unlink(Lwp& l, int dirfd, UserPtr<char> upath) {
  COPY_PATH(path, upath, false);
  NameiData nd;
  TRY(namei_parent(l, dirfd, path.p, nd));
  if (nd.is_dot) return err(EISDIR);
  if (!nd.vp) return err(ENOENT);
  if (nd.vp->is_dir()) return err(EISDIR);
  if (nd.trailing_slash) return err(ENOTDIR);
  if (crossed(nd)) return err(EBUSY);
  TRY(check_writable_mount(*nd.dir));
  Vnode& dir = *nd.dir;
  UnlinkedCache unlinked;
  {
    MutexLocker g(dir.mount().lock_);
    TRY(may_delete(l, dir, *nd.vp));
    TRY(dir.remove(nd.last, *nd.vp));
    nd.vp->lock().assert_held();  // an entry of dir: the same tree
    unlinked.note_locked(*nd.vp);
  }
  note_deleted(l, nd);
  return 0;
}

Result<long> do_rmdir(Lwp& l, int dirfd, UserPtr<char> upath) {
  COPY_PATH(path, upath, false);
  NameiData nd;
  TRY(namei_parent(l, dirfd, path.p, nd));
  if (nd.is_dot) {
    if (std::strcmp(nd.last, "..") == 0) return err(ENOTEMPTY);
    if (std::strcmp(nd.last, ".") == 0 && path.p[std::strlen(path.p) - 1] != '/') return err(EINVAL);
    return err(EBUSY);  // "/"
  }
  if (!nd.vp) return err(ENOENT);
  if (!nd.vp->is_dir()) return err(ENOTDIR);
  if (crossed(nd)) return err(EBUSY);
  if (nd.vp.get() == proc_vfs(l.proc()).root().get()) return err(EBUSY);
  TRY(check_writable_mount(*nd.dir));
  Vnode& dir = *nd.dir;
  {
    MutexLocker g(dir.mount().lock_);
    TRY(may_delete(l, dir, *nd.vp));
    nd.vp->lock().assert_held();  // an entry of dir: the same tree
    if (nd.vp->mounted_here()) return err(EBUSY);
    if (nd.vp->has_entries()) return err(ENOTEMPTY);
    TRY(dir.rmdir(nd.last, *nd.vp));
  }
  note_deleted(l, nd);
  return 0;
}

}  // namespace

Result<long> sys_unlink(Lwp& l, UserPtr<char> pathname) { return do_unlink(l, AT_FDCWD, pathname); }
Result<long> sys_rmdir(Lwp& l, UserPtr<char> pathname) { return do_rmdir(l, AT_FDCWD, pathname); }
Result<long> sys_unlinkat(Lwp& l, int dirfd, UserPtr<char> pathname, int flags) {
  if (flags & ~AT_REMOVEDIR) return err(EINVAL);
  return (flags & AT_REMOVEDIR) ? do_rmdir(l, dirfd, pathname) : do_unlink(l, dirfd, pathname);
}

// --- rename
//
// Lock order: a rename never spans mounts (EXDEV), so it takes exactly one
// tree lock, that of the mount holding both directories; the
// checks that depend on the tree's shape (is the target inside the moved
// directory?) run under it.

namespace {

// An internal code: the name space changed between lookup and lock.
constexpr int kRaced = 0x7ffe;

// to: where the name goes; its nd.vp, when the rename replaced it, is
// what the caller notes as deleted (after the tree lock).
Result<long> do_rename(Lwp& l, int olddirfd, const char* op, int newdirfd, const char* np, unsigned int flags,
                       NameiData& to) {
  bool exchange = flags & RENAME_EXCHANGE;
  NameiData from;
  TRY(namei_parent(l, olddirfd, op, from));
  TRY(namei_parent(l, newdirfd, np, to));
  if (from.is_dot || to.is_dot) return err(EBUSY);
  if (!from.vp) return err(ENOENT);
  if (&from.dir->mount() != &to.dir->mount()) return err(EXDEV);
  if (crossed(from) || crossed(to)) return err(EBUSY);
  if (exchange && !to.vp) return err(ENOENT);
  if ((flags & RENAME_NOREPLACE) && to.vp) return err(EEXIST);
  Vnode& vp = *from.vp;
  Vnode* target = to.vp.get();
  if (!vp.is_dir() && (from.trailing_slash || (to.trailing_slash && !exchange))) return err(ENOTDIR);
  if (exchange && target && !target->is_dir() && to.trailing_slash) return err(ENOTDIR);
  TRY(check_writable_mount(*from.dir));
  if (target == &vp) {
    to.vp = RefPtr<Vnode>();
    return 0;  // two names of one file: nothing to do
  }
  Vnode& fdir = *from.dir;
  Vnode& tdir = *to.dir;
  UnlinkedCache replaced;
  MutexLocker g(fdir.mount().lock_);
  // One tree (EXDEV was checked), so one lock covers every node here.
  tdir.lock().assert_held();
  vp.lock().assert_held();
  // Both names must still be what the lookups saw.
  {
    Result<Ref<Vnode>> src = fdir.lookup(from.last);
    if (!src.ok() || src.value().get() != &vp) return err(kRaced);
    Result<Ref<Vnode>> dst = tdir.lookup(to.last);
    Vnode* now = dst.ok() ? dst.value().get() : nullptr;
    if (now != target) return err(kRaced);
  }
  const Cred& c = l.cred();
  Vattr fva, tva, va, targ;
  fdir.getattr(fva);
  tdir.getattr(tva);
  vp.getattr(va);
  if (tva.nlink == 0) return err(ENOENT);
  // The tree's shape first, as Linux checks it before any permission or
  // type: no directory may move below itself (EINVAL), and the target may
  // not be an ancestor of the source (ENOTEMPTY, or EINVAL for an exchange,
  // which would move it below itself).
  if (vp.is_dir() && inside(&tdir, &vp)) return err(EINVAL);
  if (target && target->is_dir() && inside(&fdir, target)) return err(exchange ? EINVAL : ENOTEMPTY);
  // Then Linux's may_delete of the source and of the target (or may_create
  // in tdir): search and write permission, the sticky bit, the types.
  if (!vaccess_ok(fva, c, W_OK | X_OK) || !vaccess_ok(tva, c, W_OK | X_OK)) return err(EACCES);
  if (sticky_denies(c, fva, va)) return err(EPERM);
  if (target) {
    target->lock().assert_held();
    target->getattr(targ);
    if (sticky_denies(c, tva, targ)) return err(EPERM);
    if (!exchange && vp.is_dir() && !target->is_dir()) return err(ENOTDIR);
    if (!exchange && !vp.is_dir() && target->is_dir()) return err(EISDIR);
  }
  // A directory moving to another parent rewrites its "..": needs write
  // permission on it.
  if (&fdir != &tdir) {
    if (vp.is_dir() && !vaccess_ok(va, c, W_OK)) return err(EACCES);
    if (exchange && target->is_dir() && !vaccess_ok(targ, c, W_OK)) return err(EACCES);
  }
  if (target) {
    target->lock().assert_held();
    if (target->mounted_here() || vp.mounted_here()) return err(EBUSY);
    if (!exchange && target->is_dir() && target->has_entries()) return err(ENOTEMPTY);
  }
  TRY(fdir.rename(from.last, vp, tdir, to.last, target, exchange));
  if (target && !exchange) {
    target->lock().assert_held();
    replaced.note_locked(*target);
  } else {
    to.vp = RefPtr<Vnode>();
  }
  return 0;
}

}  // namespace

Result<long> sys_renameat2(Lwp& l, int olddirfd, UserPtr<char> oldpath, int newdirfd, UserPtr<char> newpath,
                           unsigned int flags) {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return err(EINVAL);
  if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) return err(EINVAL);
  COPY_PATH(op, oldpath, false);
  COPY_PATH(np, newpath, false);
  for (;;) {
    NameiData to;
    Result<long> r = do_rename(l, olddirfd, op.p, newdirfd, np.p, flags, to);
    // A file the rename replaced, if something still uses it, remembers
    // where it was (for /proc's links).
    if (r.ok() && to.vp) note_deleted(l, to);
    if (r.ok() || r.error() != kRaced) return r;
  }
}

Result<long> sys_renameat(Lwp& l, int olddirfd, UserPtr<char> oldpath, int newdirfd, UserPtr<char> newpath) {
  return sys_renameat2(l, olddirfd, oldpath, newdirfd, newpath, 0);
}
Result<long> sys_rename(Lwp& l, UserPtr<char> oldpath, UserPtr<char> newpath) {
  return sys_renameat2(l, AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

// --- link

Result<long> sys_linkat(Lwp& l, int olddirfd, UserPtr<char> oldpath, int newdirfd, UserPtr<char> newpath, int flags) {
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) return err(EINVAL);
  if ((flags & AT_EMPTY_PATH) && !l.cred().is_root()) return err(ENOENT);
  COPY_PATH(op, oldpath, flags & AT_EMPTY_PATH);
  COPY_PATH(np, newpath, false);
  int nf = 0;
  if (flags & AT_SYMLINK_FOLLOW) nf |= kFollow;
  if (flags & AT_EMPTY_PATH) nf |= kEmptyPath;
  Ref<Vnode> vp = TRY(namei(l, olddirfd, op.p, nf));
  NameiData nd;
  TRY(namei_parent(l, newdirfd, np.p, nd));
  if (nd.vp || nd.is_dot) return err(EEXIST);
  if (vp->is_dir()) return err(EPERM);
  if (nd.trailing_slash) return err(ENOENT);
  if (&vp->mount() != &nd.dir->mount()) return err(EXDEV);
  TRY(check_writable_mount(*nd.dir));
  Vnode& dir = *nd.dir;
  MutexLocker g(dir.mount().lock_);
  vp->lock().assert_held();  // the same mount (EXDEV above)
  Vattr dva, va;
  dir.getattr(dva);
  vp->getattr(va);
  if (dva.nlink == 0) return err(ENOENT);
  if (!vaccess_ok(dva, l.cred(), W_OK | X_OK)) return err(EACCES);
  if (va.nlink == 0 && !vp->linkable_) return err(ENOENT);
  TRY(dir.link(nd.last, *vp));
  vp->linkable_ = false;
  return 0;
}

Result<long> sys_link(Lwp& l, UserPtr<char> oldpath, UserPtr<char> newpath) {
  return sys_linkat(l, AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

// --- readlink

Result<long> sys_readlinkat(Lwp& l, int dirfd, UserPtr<char> pathname, UserPtr<char> buf, size_t bufsiz) {
  if (static_cast<ssize_t>(bufsiz) <= 0) return err(EINVAL);
  COPY_PATH(path, pathname, true);
  Ref<Vnode> vp = TRY(namei(l, dirfd, path.p, kEmptyPath));
  if (vp->type() != VType::kLnk) return err(EINVAL);
  PathBuf out(l.kernel().kmem());
  if (!out.p) return err(ENOMEM);
  size_t n;
  {
    MutexLocker g(vp->mount().lock_);
    n = TRY(vp->readlink(out.p, kPathMax));
  }
  if (n > bufsiz) n = bufsiz;
  TRY(copyout(l, out.p, buf.addr, n));
  return static_cast<long>(n);
}

Result<long> sys_readlink(Lwp& l, UserPtr<char> pathname, UserPtr<char> buf, size_t bufsiz) {
  return sys_readlinkat(l, AT_FDCWD, pathname, buf, bufsiz);
}

// --- getdents64

namespace {

struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  uint16_t d_reclen;
  uint8_t d_type;
  char d_name[];
};

constexpr size_t kDentsChunk = 64 * 1024;

}  // namespace

Result<long> sys_getdents64(Lwp& l, int fd, UserPtr<void> dirp, size_t count) {
  Ref<File> f = TRY(fd_get(l, fd));
  Vnode* vp = f->vnode();
  if (!vp || !vp->is_dir()) return err(ENOTDIR);
  size_t cap = count < kDentsChunk ? count : kDentsChunk;
  char* buf = static_cast<char*>(l.kernel().kmem().alloc(cap ? cap : 1));
  if (!buf) return err(ENOMEM);
  absl::Cleanup fr = [&] { Kmem::free(buf); };
  uint64_t pos = f->lock_pos();
  size_t used = 0;
  bool too_small = false;
  int64_t next = static_cast<int64_t>(pos);
  Result<void> r = [&]() -> Result<void> {
    MutexLocker g(vp->mount().lock_);
    Vattr va;
    vp->getattr(va);
    if (va.nlink == 0) return err(ENOENT);
    return vp->readdir(static_cast<int64_t>(pos), [&](const DirEntry& e) {
      size_t reclen = (offsetof(LinuxDirent64, d_name) + e.name.size() + 1 + 7) & ~size_t{7};
      if (used + reclen > cap) {
        if (used == 0) too_small = true;
        return false;
      }
      auto* d = reinterpret_cast<LinuxDirent64*>(buf + used);
      std::memset(d, 0, reclen);
      d->d_ino = e.ino;
      d->d_off = e.next_off;
      d->d_reclen = static_cast<uint16_t>(reclen);
      d->d_type = vtype_to_dtype(e.type);
      std::memcpy(d->d_name, e.name.data(), e.name.size());
      used += reclen;
      next = e.next_off;
      return true;
    });
  }();
  if (!r.ok()) {
    f->unlock_pos(pos);
    return err(r.error());
  }
  if (too_small) {
    f->unlock_pos(pos);
    return err(EINVAL);
  }
  Result<void> c = copyout(l, buf, dirp.addr, used);
  f->unlock_pos(c.ok() ? static_cast<uint64_t>(next) : pos);
  TRY(c);
  return static_cast<long>(used);
}

// --- cwd and root

namespace {

Result<Ref<Vnode>> dir_for_chdir(Lwp& l, Ref<Vnode> vp) {
  if (!vp->is_dir()) return err(ENOTDIR);
  TRY(vaccess(l, *vp, X_OK));
  return vp;
}

}  // namespace

Result<long> sys_chdir(Lwp& l, UserPtr<char> upath) {
  COPY_PATH(path, upath, false);
  Ref<Vnode> vp = TRY(namei(l, AT_FDCWD, path.p, kFollow));
  proc_vfs(l.proc()).set_cwd(TRY(dir_for_chdir(l, std::move(vp))));
  return 0;
}

Result<long> sys_fchdir(Lwp& l, int fd) {
  Ref<File> f = TRY(fd_get(l, fd, true));
  if (!f->vnode()) return err(ENOTDIR);
  proc_vfs(l.proc()).set_cwd(TRY(dir_for_chdir(l, Ref<Vnode>(*f->vnode()))));
  return 0;
}

Result<long> sys_chroot(Lwp& l, UserPtr<char> upath) {
  COPY_PATH(path, upath, false);
  Ref<Vnode> vp = TRY(namei(l, AT_FDCWD, path.p, kFollow));
  Ref<Vnode> d = TRY(dir_for_chdir(l, std::move(vp)));
  if (!l.cred().is_root()) return err(EPERM);
  proc_vfs(l.proc()).set_root(std::move(d));
  return 0;
}

Result<size_t> vnode_path(Ref<Vnode> root, Ref<Vnode> cur, char* out) {
  // Built right to left at the end of the buffer.
  size_t start = kPathMax - 1;
  out[start] = '\0';
  bool unreachable = false;
  for (;;) {
    if (cur.get() == root.get()) break;
    Mount& m = cur->mount();
    RefPtr<Vnode> up;
    bool detached_root = false;
    {
      MutexLocker g(m.lock_);
      if (m.root_.get() == cur.get() || !m.root_) {
        // A detached mount hangs nowhere: the path is unreachable from
        // the root (Linux: "(unreachable)/...").
        if (m.detached_) detached_root = true;
        else up = m.covered();
      }
    }
    if (detached_root) {
      unreachable = true;
      break;
    }
    if (up) {
      cur = up.to_ref();
      continue;
    }
    RefPtr<Vnode> parent;
    std::string_view name;
    {
      MutexLocker g(m.lock_);
      cur->lock().assert_held();  // m is cur's mount
      Vattr va;
      cur->getattr(va);
      Vnode* p = cur->parent_dir();
      if (!p) {
        if (m.root_.get() == cur.get() || cur->is_dir()) {
          if (va.nlink == 0) return err(ENOENT);
          unreachable = true;  // above the process's root
          break;
        }
        return err(ENOENT);
      }
      p->lock().assert_held();  // cur's parent: the same tree
      name = p->name_of(*cur);
      // No name for it there (its directory could not be read): no path
      // rather than one with an empty component.
      if (name.empty()) return err(ENOENT);
      if (name.size() + 1 > start) return err(ENAMETOOLONG);
      start -= name.size();
      std::memcpy(out + start, name.data(), name.size());
      out[--start] = '/';
      parent = RefPtr<Vnode>(p);
    }
    cur = parent.to_ref();
  }
  if (start == kPathMax - 1) out[--start] = '/';
  if (unreachable) {
    static constexpr char kUnreach[] = "(unreachable)";
    size_t n = sizeof kUnreach - 1;
    if (n > start) return err(ENAMETOOLONG);
    start -= n;
    std::memcpy(out + start, kUnreach, n);
  }
  return start;
}

Result<long> sys_getcwd(Lwp& l, UserPtr<char> buf, size_t size) {
  ProcVfs& pv = proc_vfs(l.proc());
  PathBuf out(l.kernel().kmem());
  if (!out.p) return err(ENOMEM);
  size_t start = TRY(vnode_path(pv.root(), pv.cwd(), out.p));
  size_t len = kPathMax - start;  // including the NUL
  if (size < len) return err(ERANGE);
  TRY(copyout(l, out.p + start, buf.addr, len));
  return static_cast<long>(len);
}

}  // namespace rump
