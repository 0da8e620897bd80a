// The VFS faction's component (boot: root tmpfs, proc0/init state; halt:
// unmount everything), the per-process extension (descriptor table,
// cwd/root across fork and exit), the mount table and mount/umount2.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>

#include <cstring>

#include "absl/cleanup/cleanup.h"

#include "fs/tmpfs/tmpfs.h"
#include "kern/component.h"
#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "vfs/kvec.h"
#include "vfs/vfs.h"
#include "vfs/vnode_pager.h"

namespace rump {

namespace {

Result<void> vfs_init(Kernel& k);
void vfs_fini(Kernel& k);

Component g_vfs_component{"vfs", ComponentType::kVfs, &vfs_init, &vfs_fini};
RUMP_COMPONENT(g_vfs_component);
const KernelSlot<VfsState> g_vfs_state{g_vfs_component};

Result<void> vfs_fork(Proc& parent, Proc& child, uint32_t flags);
void vfs_exit(Proc& p);

ProcExtension g_vfs_ext{"vfs", &vfs_fork, &vfs_exit};
const int g_vfs_ext_slot = register_proc_extension(&g_vfs_ext);
const ProcSlot<ProcVfs> g_proc_vfs{g_vfs_ext};

Result<ProcVfs*> new_proc_vfs(Kernel& k, Ref<FileTable> fdt, Ref<Vnode> cwd, Ref<Vnode> root) {
  auto* pv = new (k.kmem()) ProcVfs();
  if (!pv) return err(ENOMEM);
  pv->init_fdt(std::move(fdt));
  pv->set_cwd(std::move(cwd));
  pv->set_root(std::move(root));
  return pv;
}

Result<void> vfs_fork(Proc& parent, Proc& child, uint32_t flags) {
  ProcVfs* ppv = g_proc_vfs.get(parent);
  if (!ppv) return {};  // the faction is not up (boot)
  Kernel& k = child.kernel();
  Ref<FileTable> fdt = (flags & RFCFDG)  ? TRY(FileTable::create(k.kmem()))
                       : (flags & RFFDG) ? TRY(ppv->table().copy(k.kmem()))
                                         : ppv->fdt();
  ProcVfs* cpv = TRY(new_proc_vfs(k, std::move(fdt), ppv->cwd(), ppv->root()));
  // The child's copy of the executable denies writing too (it cannot
  // fail while the parent's denial stands; if the parent replaced it
  // meanwhile and a writer came, the child has none).
  RefPtr<Vnode> exe = ppv->exe();
  if (exe && exe->deny_write_access().ok()) cpv->set_exe(std::move(exe));
  g_proc_vfs.set(child, cpv);
  return {};
}

// init goes last at halt: the faction's state with it, even when init
// never got its part (a boot that failed before it).
void vfs_release_state(Proc& p) {
  Kernel& k = p.kernel();
  if (&p != k.procs().init() || !k.halting()) return;
  if (VfsState* st = g_vfs_state.take(k)) {
    page_cache_fini(st->page_cache);
    adv_fini(*st);
    delete st;
  }
}

void vfs_exit(Proc& p) {
  ProcVfs* pv = g_proc_vfs.take(p);
  if (!pv) {
    vfs_release_state(p);
    return;
  }
  Kernel& k = p.kernel();
  bool last = false;
  if (RefPtr<FileTable> fdt = pv->release_fdt(&last)) {
    // The process's record locks go whether or not the table is shared
    // (the advisory lock ranks above the table's).
    fdt->for_each([&](File& f) {
      if (f.vnode()) adv_release_proc(k, *f.vnode(), p);
    });
    // The files drop outside every lock.
    if (last) fdt->remove_all();
  }
  RefPtr<Vnode> cwd, root, exe;
  {
    MutexLocker g(pv->lock_);
    std::swap(cwd, pv->cwd_);
    std::swap(root, pv->root_);
    std::swap(exe, pv->exe_);
  }
  release_use(cwd);
  release_use(root);
  if (exe) exe->allow_write_access();
  release_use(exe);
  delete pv;
  vfs_release_state(p);
}

Result<void> vfs_init(Kernel& k) {
  auto* st = new (k.kmem()) VfsState(k);
  if (!st) return err(ENOMEM);
  g_vfs_state.set(k, st);
  st->page_cache = TRY(page_cache_init(k));
  Ref<Mount> root_mount = TRY(tmpfs_mount(k, "rootfs", 0, "mode=0755"));
  root_mount->dev_ = makedev(0, st->next_dev_.fetch_add(1));
  Ref<Vnode> root = [&] {
    MutexLocker g(root_mount->lock_);
    return root_mount->root_.to_ref();
  }();
  {
    MutexLocker g(st->mount_lock_);
    st->mounts_.push_back(*root_mount.leak());
  }
  st->rootvnode = root;
  for (Proc* p : {k.procs().proc0(), k.procs().init()}) {
    if (!p) continue;
    Ref<FileTable> fdt = TRY(FileTable::create(k.kmem()));
    g_proc_vfs.set(*p, TRY(new_proc_vfs(k, std::move(fdt), root, root)));
  }
  return {};
}

void vfs_fini(Kernel& k) {
  VfsState* st = g_vfs_state.get(k);
  if (!st) return;
  vfs_exit(*k.procs().proc0());
  // Cached file data goes back before the file systems are torn down.
  (void)page_cache_flush_all(k);
  page_cache_drop_retained(k);
  st->rootvnode.reset();
  // Unmount everything, newest first; open files keep their vnodes (and
  // mounts) until their processes exit.
  for (;;) {
    Mount* m = nullptr;
    {
      MutexLocker g(st->mount_lock_);
      if (st->mounts_.empty()) break;
      m = &st->mounts_.back();
      unmount_locked(*st, *m, false);
    }
    m->unref();
  }
}

}  // namespace

void unmount_locked(VfsState& st, Mount& m, bool lazy) {
  st.mounts_.erase(st.mounts_.iterator_to(m));
  m.table_lock().assert_held();  // the one table: st's
  m.unmounted_ = true;
  if (m.covered()) {
    Vnode& c = *m.covered();
    MutexLocker g(c.mount().lock_);
    if (c.mounted_here() == &m) c.set_mounted_here(nullptr);
  }
  m.detach(lazy);
}

VfsState& vfs_state(Kernel& k) { return *g_vfs_state.get(k); }

PageCache* page_cache(Kernel& k) {
  VfsState* st = g_vfs_state.get(k);
  return st ? st->page_cache : nullptr;
}

ProcVfs& proc_vfs(Proc& p) {
  ProcVfs* pv = g_proc_vfs.get(p);
  if (!pv) panic("proc %d has no vfs state", p.pid());
  return *pv;
}

// --- mount and umount2

namespace {

// Kept flags are the mount's options (statfs reports them in f_flags);
// ignored ones are accepted and have no effect (MS_MANDLOCK: none on Linux
// since 5.15 either).
constexpr unsigned long kMountFlagsKept = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                                          MS_NODIRATIME | MS_STRICTATIME | MS_SYNCHRONOUS;
constexpr unsigned long kMountFlagsIgnored = MS_SILENT | MS_RELATIME | MS_LAZYTIME | MS_DIRSYNC | MS_MANDLOCK;

Result<void> copy_string(Lwp& l, UserPtr<char> u, char* buf, size_t max) {
  size_t len = 0;
  return copyinstr(l, u.addr, buf, max, &len);
}

}  // namespace

Result<long> sys_mount(Lwp& l, UserPtr<char> source, UserPtr<char> target, UserPtr<char> fstype,
                       unsigned long flags, UserPtr<void> data) {
  if (!l.cred().is_root()) return err(EPERM);
  Kernel& k = l.kernel();
  Kmem& km = k.kmem();
  char* tpath = static_cast<char*>(km.alloc(kPathMax));
  if (!tpath) return err(ENOMEM);
  absl::Cleanup free_path = [&] { Kmem::free(tpath); };
  TRY(copyin_path(l, target, tpath));
  Ref<Vnode> vp = TRY(namei(l, AT_FDCWD, tpath, kFollow));
  if ((flags & MS_MGC_MSK) == MS_MGC_VAL) flags &= ~MS_MGC_MSK;

  if (flags & MS_REMOUNT) {
    if (flags & ~(MS_REMOUNT | kMountFlagsKept | kMountFlagsIgnored | MS_BIND)) return err(EINVAL);
    Mount& m = vp->mount();
    {
      MutexLocker g(m.lock_);
      if (m.root_.get() != vp.get()) return err(EINVAL);
    }
    // Going read-only: the dirty pages of files still open or mapped go
    // back first (afterwards their write-back would meet EROFS and be
    // lost), and the file system syncs, as Linux's remount does.
    if ((flags & MS_RDONLY) && !(m.flags_.load() & MS_RDONLY)) {
      TRY(page_cache_flush_all(k, &m));
      MutexLocker g(m.lock_);
      TRY(m.sync());
    }
    m.flags_.store(static_cast<int>(flags & kMountFlagsKept));
    return 0;
  }
  if (flags & ~(kMountFlagsKept | kMountFlagsIgnored)) return err(EINVAL);  // bind, move, propagation: not yet
  if (!vp->is_dir()) return err(ENOTDIR);

  char tname[64];
  if (fstype.is_null()) return err(EINVAL);
  Result<void> tr = copy_string(l, fstype, tname, sizeof tname);
  if (!tr.ok()) return err(tr.error() == ENAMETOOLONG ? ENODEV : tr.error());
  FsType* type = find_fstype(tname);
  if (!type) return err(ENODEV);
  char src[256] = {};
  if (!source.is_null()) {
    Result<void> sr = copy_string(l, source, src, sizeof src);
    if (!sr.ok() && sr.error() != ENAMETOOLONG) return err(sr.error());
  }
  char* opts = nullptr;
  absl::Cleanup free_opts = [&] { Kmem::free(opts); };
  if (!data.is_null()) {
    opts = static_cast<char*>(km.alloc(kBlockSize));
    if (!opts) return err(ENOMEM);
    size_t len = 0;
    Result<void> r = copyinstr(l, data.addr, opts, kBlockSize, &len);
    if (!r.ok()) {
      if (r.error() != ENAMETOOLONG) return err(r.error());
      opts[kBlockSize - 1] = '\0';
    }
  }
  Ref<Mount> m = TRY(type->mount(k, src, static_cast<int>(flags & kMountFlagsKept), opts));
  VfsState& st = vfs_state(k);
  m->dev_ = makedev(0, st.next_dev_.fetch_add(1));
  m->set_covered(vp);
  // Until the mount is in the table, a failure takes its new tree down
  // again (the root holds the mount: dropping m alone would leak both).
  absl::Cleanup drop_tree = [&] { m->detach(false); };
  MutexLocker g(st.mount_lock_);
  // A directory of a detached (or unmounted) tree is no mount point.
  vp->mount().table_lock().assert_held();  // the one table: st's
  if (vp->mount().unmounted_) return err(ENOENT);
  {
    MutexLocker vg(vp->mount().lock_);
    if (vp->mounted_here()) return err(EBUSY);
    vp->set_mounted_here(m.get());
  }
  std::move(drop_tree).Cancel();
  st.mounts_.push_back(*m.leak());
  return 0;
}

// The order of the checks is Linux's: flags, then the path, then the
// privilege, then whether the path is a mount's root in this namespace.
Result<long> sys_umount2(Lwp& l, UserPtr<char> target, int flags) {
  if (flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW)) return err(EINVAL);
  Kernel& k = l.kernel();
  PathBuf tpath(k.kmem());
  if (!tpath.p) return err(ENOMEM);
  TRY(copyin_path(l, target, tpath.p));
  // Resolving the target is no use of the mount: it keeps an expiry mark.
  int nflags = kKeepExpiryMark | ((flags & UMOUNT_NOFOLLOW) ? 0 : kFollow);
  Ref<Vnode> vp = TRY(namei(l, AT_FDCWD, tpath.p, nflags));
  if (!l.cred().is_root()) return err(EPERM);
  Mount& m = vp->mount();
  {
    MutexLocker g(m.lock_);
    if (m.root_.get() != vp.get() || m.detached_) return err(EINVAL);
  }
  bool expire = flags & MNT_EXPIRE;
  if (expire) {
    if (flags & (MNT_FORCE | MNT_DETACH)) return err(EINVAL);
    if (&proc_vfs(l.proc()).root()->mount() == &m) return err(EINVAL);
  }
  // tmpfs has nothing to abort in flight: MNT_FORCE changes nothing (a busy
  // mount stays EBUSY), as for Linux's local file systems.
  bool lazy = flags & MNT_DETACH;
  if (!m.covered()) return err(EBUSY);  // the root file system
  VfsState& st = vfs_state(k);
  // The caches kept after their files' last close are no users.
  page_cache_drop_retained(k, &m);
  // Our own reference (vp) is not a user; mounts on top are.
  KVec<Mount*> victims(k.kmem());
  {
    MutexLocker g(st.mount_lock_);
    m.table_lock().assert_held();  // the one table: st's
    if (m.unmounted_) return err(EINVAL);
    // Collect m and (lazily) everything mounted below it: each mount of
    // the subtree is detached on its own, as Linux disconnects them. Room
    // for every mount first (allocating under the table lock is fine: Kmem
    // takes no lock), so the collection cannot fail half-way.
    size_t nmounts = 0;
    for (Mount& o : st.mounts_) {
      (void)o;
      nmounts++;
    }
    TRY(victims.reserve(nmounts + 1));
    victims.push_back(&m);
    for (size_t i = 0; i < victims.size(); i++) {
      for (Mount& o : st.mounts_) {
        if (o.covered() && &o.covered()->mount() == victims[i]) {
          if (!lazy) return err(EBUSY);
          victims.push_back(&o);
        }
      }
    }
    if (!lazy && m.users_.load() > 0) return err(EBUSY);
    // The first MNT_EXPIRE of an idle mount only marks it.
    if (expire && !m.expiry_mark_.exchange(true)) return err(EAGAIN);
    for (size_t i = victims.size(); i-- > 0;) unmount_locked(st, *victims[i], lazy);
  }
  // Drop the table's references; covered() goes with each Mount.
  for (Mount* v : victims) v->unref();
  return 0;
}

}  // namespace rump
