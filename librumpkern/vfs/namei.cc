// namei: path name to vnode, with Linux's rules: "." and "..", mount
// points crossed both ways, symlinks (ELOOP after 40), ENAMETOOLONG,
// trailing slashes, chroot confinement and the *at start directories.
//
// The walk holds a reference to the current directory and takes one
// mount's tree lock per component (lookup_one); it never holds two.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "kern/copy.h"
#include "kern/kernel.h"
#include "vfs/vfs.h"

namespace rump {

namespace {

constexpr int kMaxSymlinks = 40;

struct Walk {
  Lwp& l;
  Ref<Vnode> root;
  int symlinks = 0;
  bool keep_expiry = false;  // kKeepExpiryMark
  // openat2's scoping: the kNoXdev ... kInRoot flags, the directory a
  // kBeneath walk stays under, the mount a kNoXdev walk stays on.
  int scope = 0;
  RefPtr<Vnode> beneath;
  const Mount* xdev_mount = nullptr;
  // kMagicFile: where a magic link in the last place that reaches a
  // description with no vnode puts it.
  RefPtr<File>* magic_file = nullptr;
};

// kNoXdev: vp must be on the walk's mount.
Result<void> check_xdev(const Walk& w, const Vnode& vp) {
  if (w.xdev_mount && &vp.mount() != w.xdev_mount) return err(EXDEV);
  return {};
}

// Follows mounts stacked on vp (vp's mount lock held by the caller when
// reading mounted_here_; done here with fresh locks). Entering a mount is
// a use of it: its MNT_EXPIRE mark goes, unless keep_expiry.
Ref<Vnode> cross_down(Ref<Vnode> vp, bool keep_expiry) {
  for (;;) {
    RefPtr<Mount> m;
    {
      MutexLocker g(vp->mount().lock_);
      if (!vp->mounted_here()) return vp;
      m = RefPtr<Mount>(vp->mounted_here());
    }
    MutexLocker g(m->lock_);
    if (!m->root_) return vp;  // unmounted meanwhile
    if (!keep_expiry) clear_expiry_mark(*m);
    Ref<Vnode> r = m->root_.to_ref();
    vp = std::move(r);
  }
}

Result<Ref<Vnode>> lookup_in(Lwp& l, Vnode& root, Vnode& dir, std::string_view name, bool keep_expiry);

Result<Ref<Vnode>> read_and_walk(Walk& w, Ref<Vnode> dir, Vnode& link, bool last);

// One component looked up under the walk's rules.
Result<Ref<Vnode>> walk_step(Walk& w, Vnode& dir, std::string_view comp) {
  // kBeneath: ".." of the start directory would leave it.
  if ((w.scope & kBeneath) && comp == ".." && &dir == w.beneath.get()) return err(EXDEV);
  Ref<Vnode> next = TRY(lookup_in(w.l, *w.root, dir, comp, w.keep_expiry));
  TRY(check_xdev(w, *next));
  return next;
}

Result<Ref<Vnode>> walk(Walk& w, Ref<Vnode> dir, std::string_view path, bool follow_last, NameiData* nd) {
  if (!path.empty() && path[0] == '/') {
    if (w.scope & kBeneath) return err(EXDEV);
    dir = w.root;
    TRY(check_xdev(w, *dir));
    while (!path.empty() && path[0] == '/') path.remove_prefix(1);
  }
  if (path.empty()) {
    if (nd) {
      nd->dir = dir;
      nd->vp = dir;
      nd->is_dot = true;
      std::strcpy(nd->last, ".");
    }
    return dir;
  }
  for (;;) {
    size_t slash = path.find('/');
    std::string_view comp = path.substr(0, slash);
    std::string_view rest = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
    bool trailing = !rest.empty();
    while (!rest.empty() && rest[0] == '/') rest.remove_prefix(1);
    bool last = rest.empty();
    if (comp.size() > kNameMax) return err(ENAMETOOLONG);
    if (!dir->is_dir()) return err(ENOTDIR);
    if (last && nd) {
      nd->dir = dir;
      std::memcpy(nd->last, comp.data(), comp.size());
      nd->last[comp.size()] = '\0';
      nd->trailing_slash = trailing;
      nd->is_dot = comp == "." || comp == "..";
      Result<Ref<Vnode>> r = walk_step(w, *dir, comp);
      if (r.ok()) nd->vp = std::move(r).value();
      else if (r.error() != ENOENT) return err(r.error());
      return dir;
    }
    Ref<Vnode> next = TRY(walk_step(w, *dir, comp));
    if (next->type() == VType::kLnk && (!last || follow_last || trailing))
      next = TRY(read_and_walk(w, dir, *next, last));
    if (last) {
      if (trailing && !next->is_dir()) return err(ENOTDIR);
      return next;
    }
    dir = std::move(next);
    path = rest;
  }
}

// A magic link's target (Vnode::magic_target): its vnode, or with
// nd_file the description it reaches (the link stays where the walk is);
// null when the walk goes on with the link's text.
Result<RefPtr<Vnode>> follow_magic(Walk& w, Vnode& link, RefPtr<File>* nd_file) {
  Vnode::MagicTarget m = TRY(link.magic_target(w.l));
  if (!m.vp && !m.file) return RefPtr<Vnode>();
  if (w.scope & kNoMagiclinks) return err(ELOOP);
  if (m.vp) {
    TRY(check_xdev(w, *m.vp));
    return m.vp;
  }
  if (nd_file) {
    *nd_file = std::move(m.file);
    return RefPtr<Vnode>(&link);
  }
  return RefPtr<Vnode>();
}

Result<Ref<Vnode>> read_and_walk(Walk& w, Ref<Vnode> dir, Vnode& link, bool last) {
  if (w.scope & kNoSymlinks) return err(ELOOP);
  if (++w.symlinks > kMaxSymlinks) return err(ELOOP);
  RefPtr<Vnode> magic = TRY(follow_magic(w, link, last ? w.magic_file : nullptr));
  if (magic) return magic.to_ref();
  Kmem& km = w.l.kernel().kmem();
  char* buf = static_cast<char*>(km.alloc(kPathMax));
  if (!buf) return err(ENOMEM);
  absl::Cleanup f = [&] { Kmem::free(buf); };
  size_t n;
  {
    MutexLocker g(link.mount().lock_);
    n = TRY(link.readlink(buf, kPathMax));
  }
  if (n == 0) return err(ENOENT);
  return walk(w, std::move(dir), std::string_view(buf, n), true, nullptr);
}

Result<Walk> start(Lwp& l) {
  ProcVfs& pv = proc_vfs(l.proc());
  return Walk{l, pv.root()};
}

// A walk from dirfd with openat2's scoping: *start_dir is where it
// begins. kBeneath and kInRoot anchor it at dirfd's directory (whatever
// the path); kNoXdev keeps it on the mount it starts on.
Result<Walk> start_scoped(Lwp& l, int dirfd, const char* path, int flags, RefPtr<Vnode>* start_dir) {
  Walk w = TRY(start(l));
  w.keep_expiry = flags & kKeepExpiryMark;
  w.scope = flags & (kNoXdev | kNoSymlinks | kBeneath | kInRoot | kNoMagiclinks);
  if (w.scope & (kBeneath | kInRoot)) {
    Ref<Vnode> anchor = TRY(at_dir(l, dirfd, "."));
    if (!anchor->is_dir()) return err(ENOTDIR);
    if (w.scope & kInRoot) w.root = anchor;
    else w.beneath = anchor;
    *start_dir = path[0] == '/' ? w.root : std::move(anchor);
  } else {
    *start_dir = TRY(at_dir(l, dirfd, path));
  }
  if (w.scope & kNoXdev) w.xdev_mount = &(*start_dir)->mount();
  return w;
}

}  // namespace

Result<void> copyin_path(Lwp& l, UserPtr<char> upath, char* buf, bool allow_empty) {
  size_t len = 0;
  TRY(copyinstr(l, upath.addr, buf, kPathMax, &len));
  if (buf[0] == '\0' && !allow_empty) return err(ENOENT);
  return {};
}

Result<Ref<Vnode>> at_dir(Lwp& l, int dirfd, const char* path) {
  if (path[0] == '/') return proc_vfs(l.proc()).root();
  if (dirfd == AT_FDCWD) return proc_vfs(l.proc()).cwd();
  Ref<File> f = TRY(fd_get(l, dirfd, true));
  if (!f->vnode()) return err(ENOTDIR);
  Ref<Vnode> vp(*f->vnode());
  if (path[0] != '\0' && !vp->is_dir()) return err(ENOTDIR);
  return vp;
}

namespace {

// root: the walk's root, where ".." stays.
Result<Ref<Vnode>> lookup_in(Lwp& l, Vnode& root, Vnode& dir, std::string_view name, bool keep_expiry) {
  Ref<Vnode> d(dir);
  if (name == "..") {
    // At a mount's root, ".." is the covered directory's "..". A detached
    // mount has no parent: its root's ".." is itself.
    for (;;) {
      if (d.get() == &root) return d;
      Mount& m = d->mount();
      RefPtr<Vnode> up;
      {
        MutexLocker g(m.lock_);
        if (!m.detached_ && m.root_.get() == d.get()) up = m.covered();
      }
      if (!up) break;
      d = up.to_ref();
    }
  }
  Ref<Vnode> vp = TRY([&]() -> Result<Ref<Vnode>> {
    MutexLocker g(d->lock());
    Vattr va;
    d->getattr(va);
    if (va.type != VType::kDir) return err(ENOTDIR);
    if (!vaccess_ok(va, l.cred(), X_OK)) return err(EACCES);
    return d->lookup(name);
  }());
  if (name == "..") return vp;  // ".." of a mount's root was handled above
  return cross_down(std::move(vp), keep_expiry);
}

}  // namespace

Result<Ref<Vnode>> lookup_one(Lwp& l, Vnode& dir, std::string_view name) {
  Ref<Vnode> root = proc_vfs(l.proc()).root();
  return lookup_in(l, *root, dir, name, false);
}

Result<Ref<Vnode>> namei(Lwp& l, int dirfd, const char* path, int flags, RefPtr<File>* magic_file) {
  if (path[0] == '\0') {
    Ref<Vnode> start_dir = TRY(at_dir(l, dirfd, path));
    if (!(flags & kEmptyPath)) return err(ENOENT);
    return start_dir;
  }
  RefPtr<Vnode> start_dir;
  Walk w = TRY(start_scoped(l, dirfd, path, flags, &start_dir));
  if (flags & kMagicFile) w.magic_file = magic_file;
  return walk(w, Ref<Vnode>(kAdopt, start_dir.leak()), path, flags & kFollow, nullptr);
}

Result<void> namei_parent(Lwp& l, int dirfd, const char* path, NameiData& nd, int flags) {
  if (path[0] == '\0') return err(ENOENT);
  RefPtr<Vnode> start_dir;
  Walk w = TRY(start_scoped(l, dirfd, path, flags, &start_dir));
  TRY(walk(w, Ref<Vnode>(kAdopt, start_dir.leak()), path, false, &nd));
  return {};
}

Result<void> namei_create(Lwp& l, int dirfd, const char* path, bool follow, NameiData& nd, int flags) {
  if (path[0] == '\0') return err(ENOENT);
  RefPtr<Vnode> start_dir;
  Walk w = TRY(start_scoped(l, dirfd, path, flags, &start_dir));
  TRY(walk(w, Ref<Vnode>(kAdopt, start_dir.leak()), path, false, &nd));
  if (!follow) return {};
  Kmem& km = l.kernel().kmem();
  PathBuf body(km);
  if (!body.p) return err(ENOMEM);
  // A trailing slash makes the open EISDIR whatever the name is: the
  // caller says so without following.
  while (nd.vp && nd.vp->type() == VType::kLnk && !nd.trailing_slash) {
    if (w.scope & kNoSymlinks) return err(ELOOP);
    if (++w.symlinks > kMaxSymlinks) return err(ELOOP);
    Ref<Vnode> link = nd.vp.to_ref();
    RefPtr<Vnode> magic = TRY(follow_magic(w, *link, (flags & kMagicFile) ? &nd.magic_file : nullptr));
    if (magic) {
      nd.vp = std::move(magic);
      break;
    }
    size_t n;
    {
      MutexLocker g(link->mount().lock_);
      n = TRY(link->readlink(body.p, kPathMax));
    }
    if (n == 0) return err(ENOENT);
    Ref<Vnode> dir = nd.dir.to_ref();
    nd = NameiData{};
    TRY(walk(w, std::move(dir), std::string_view(body.p, n), false, &nd));
  }
  return {};
}

// --- attribute helpers

Vattr getattr(Vnode& vp) {
  Vattr va;
  MutexLocker g(vp.mount().lock_);
  vp.getattr(va);
  return va;
}

Result<void> vaccess(Lwp& l, Vnode& vp, int acc) {
  Vattr va = getattr(vp);
  if ((acc & W_OK) && vp.mount().read_only() &&
      (va.type == VType::kReg || va.type == VType::kDir || va.type == VType::kLnk))
    return err(EROFS);
  if ((acc & X_OK) && va.type == VType::kReg && (vp.mount().flags_.load() & MS_NOEXEC)) return err(EACCES);
  if (!vaccess_ok(va, l.cred(), acc)) return err(EACCES);
  return {};
}

Result<void> check_writable_mount(Vnode& vp) {
  if (vp.mount().read_only()) return err(EROFS);
  return {};
}

bool sticky_denies(const Cred& c, const Vattr& dir, const Vattr& vp) {
  if (!(dir.mode & S_ISVTX)) return false;
  if (c.is_root()) return false;
  return c.euid != vp.uid && c.euid != dir.uid;
}

}  // namespace rump
