// vfs.h: the VFS faction's per-kernel state and its internal interface:
// the mount table, namei, and helpers shared by the vfs syscall files.
//
// Lock order (lowest rank first, see sync/lock_rank.h):
//   VfsState::mount_lock_ (kMount)      the mount table
//   Mount::lock_          (kVnode)      one mount's tree; never two at once
//   FileTable::lock_, ProcVfs::lock_ (kFileTable)
//   File::lock_           (kFile)       offset bookkeeping
//   VfsState::adv_lock_   (kFile)       advisory (record and flock) locks;
//                                       never held with File::lock_ or a
//                                       tree lock
#pragma once

#include <sys/types.h>

#include <boost/intrusive/list.hpp>
#include <string_view>

#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"
#include "base/user_ptr.h"
#include "kern/lwp.h"
#include "sync/mutex.h"
#include "vfs/file.h"
#include "vfs/vnode.h"

namespace rump {

class Kernel;
struct AdvWaitList;

using MountList = boost::intrusive::list<
    Mount, boost::intrusive::member_hook<Mount, boost::intrusive::list_member_hook<>, &Mount::table_hook_>,
    boost::intrusive::constant_time_size<false>>;

struct PageCache;

struct VfsState : public KObject {
  explicit VfsState(Kernel& k) : kernel(k) {}
  Kernel& kernel;

  Mutex mount_lock_{LockRank::kMount};
  MountList mounts_ ABSL_GUARDED_BY(mount_lock_);  // each holds a reference
  RefPtr<Vnode> rootvnode;                         // set at boot, dropped at halt
  std::atomic<uint32_t> next_dev_{1};

  // Advisory locks of every vnode (vfs/lock.cc).
  Mutex adv_lock_{LockRank::kFile};
  CondVar adv_cv_;
  AdvWaitList* adv_waiters_ ABSL_GUARDED_BY(adv_lock_) = nullptr;  // vfs/lock.cc

  // The kernel's file caches (vfs/vnode_pager.h); made at init, freed at halt.
  PageCache* page_cache = nullptr;
};

VfsState& vfs_state(Kernel& k);

// Takes m out of the mount table and off the node it covers, then tears
// its tree down (now, or with lazy when its last user goes). The caller
// drops the table's reference afterwards.
void unmount_locked(VfsState& st, Mount& m, bool lazy) ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.mount_lock_);

// --- namei
enum : int {
  kFollow = 1,        // follow a symlink in the last component
  kEmptyPath = 2,     // "" names the start directory (AT_EMPTY_PATH)
  kKeepExpiryMark = 4,  // entering a mount leaves its MNT_EXPIRE mark (umount2)
  // openat2's RESOLVE_* scoping (vfs/namei.cc):
  kNoXdev = 8,        // no mount crossed, up or down (EXDEV)
  kNoSymlinks = 16,   // no symlink followed (ELOOP)
  kBeneath = 32,      // never above the start directory: no "/", no ".." out of it (EXDEV)
  kInRoot = 64,       // the start directory is "/" for this walk
  kNoMagiclinks = 128,  // no magic link followed (ELOOP)
  // The last component may be a magic link to a description with no
  // vnode (a pipe): namei_open / namei_create hand it out.
  kMagicFile = 256,
};

// A resolved path. For lookups of the parent (namei_parent), dir is the
// parent, last its final component, and vp the object if it exists.
struct NameiData {
  RefPtr<Vnode> dir;
  RefPtr<Vnode> vp;
  char last[kNameMax + 1] = {};
  bool trailing_slash = false;
  bool is_dot = false;  // last is "." or ".." (or the path is "/")
  // namei_create with kMagicFile: the last component was a magic link to
  // a description with no vnode (vp is then the link).
  RefPtr<File> magic_file;
};

// A kernel buffer for a path of up to kPathMax bytes (p is null when the
// kernel is out of memory: callers answer ENOMEM).
struct PathBuf {
  char* p;
  explicit PathBuf(Kmem& k) : p(static_cast<char*>(k.alloc(kPathMax))) {}
  ~PathBuf() { Kmem::free(p); }
  PathBuf(const PathBuf&) = delete;
  PathBuf& operator=(const PathBuf&) = delete;
};

// Copies a path in (EFAULT, ENAMETOOLONG, ENOENT for "" unless allowed).
// buf has kPathMax bytes.
Result<void> copyin_path(Lwp& l, UserPtr<char> upath, char* buf, bool allow_empty = false);

// The start directory for a *at call: dirfd AT_FDCWD or a directory fd.
Result<Ref<Vnode>> at_dir(Lwp& l, int dirfd, const char* path);

// Resolves path fully (ENOENT if the object doesn't exist). Magic links
// (Vnode::magic_target) lead to their vnode; one to a description with
// no vnode is followed by its text, unless flags has kMagicFile and it is
// the last component: then the link itself is returned and the
// description put in *magic_file.
Result<Ref<Vnode>> namei(Lwp& l, int dirfd, const char* path, int flags, RefPtr<File>* magic_file = nullptr);
// Resolves all but the last component; nd.vp is the object if it exists
// (symlinks in the last component are not followed).
Result<void> namei_parent(Lwp& l, int dirfd, const char* path, NameiData& nd, int flags = 0);
// As namei_parent, for open(O_CREAT): with follow, while the last
// component is a symlink (and the path has no trailing slash) its target
// is resolved the same way, so nd ends at the name to open or create: a
// dangling link creates its target.
// flags: the scoping flags above (kNoXdev ... kNoMagiclinks, kMagicFile:
// nd.magic_file as namei's magic_file).
Result<void> namei_create(Lwp& l, int dirfd, const char* path, bool follow, NameiData& nd, int flags = 0);
// Lookup of one component in dir (locks dir's mount; crosses mounts).
Result<Ref<Vnode>> lookup_one(Lwp& l, Vnode& dir, std::string_view name);

// Attributes and checks, with the mount's lock taken inside.
Vattr getattr(Vnode& vp);
Result<void> vaccess(Lwp& l, Vnode& vp, int acc);
// EROFS if vp's mount is read-only.
Result<void> check_writable_mount(Vnode& vp);
// The sticky-directory rule for removing/renaming vp out of dir.
bool sticky_denies(const Cred& c, const Vattr& dir, const Vattr& vp);

// The owner, group and mode of a new node in a directory with attributes
// dir: setgid directories pass their group on (and to subdirectories
// their setgid bit). mode has the umask applied already.
NewNode new_node(Lwp& l, const Vattr& dir, VType type, mode_t mode);
// Creates nd.last in nd.dir (EEXIST, EACCES, EROFS checked here).
Result<Ref<Vnode>> create_in(Lwp& l, NameiData& nd, const NewNode& n);
mode_t proc_umask(Lwp& l);

// O_LARGEFILE as the kernel reports it in F_GETFL (0 in x86-64 userland).
inline constexpr int kOLargefile = 0100000;

// Opens vp for the flags (permission checks done), returning a File.
Result<Ref<File>> open_vnode(Lwp& l, Ref<Vnode> vp, int flags);

// Advisory locks (vfs/lock.cc).
void adv_release_proc(Kernel& k, Vnode& vp, Proc& p);  // close of any fd
void adv_release_file(Kernel& k, Vnode& vp, File& f);  // last close
Result<long> adv_fcntl(Lwp& l, File& f, int cmd, uintptr_t arg);
Result<long> adv_flock(Lwp& l, File& f, int op);
void adv_fini(VfsState& st);

// The path of vp as seen from root (getcwd, the links under /proc), built
// at the end of buf (kPathMax bytes) and NUL-terminated: returns the
// offset where it starts. ENOENT for a node no name leads to any more (a
// removed directory; a file whose file system does not know its
// directory); "(unreachable)/..." for a node outside root.
Result<size_t> vnode_path(Ref<Vnode> root, Ref<Vnode> vp, char* buf);

// Dropping a cwd/root: the vnode's mount use too.
void release_use(RefPtr<Vnode>& vp);

// --- memfd files and their seals (vfs/memfd.cc). The checks are EPERM
// when vp's seals forbid the change, and nothing for other files; each
// runs under vp's tree lock, just before the change it guards.
// A write of len bytes at off (F_SEAL_WRITE, F_SEAL_FUTURE_WRITE, and
// F_SEAL_GROW past the end): how many of the bytes may be written. As
// Linux writes page by page, F_SEAL_GROW lets the pages that end inside
// the file through and stops at the first that would grow it (EPERM if
// that is the first).
Result<uint64_t> seals_check_write(Vnode& vp, uint64_t off, uint64_t len) ABSL_EXCLUSIVE_LOCKS_REQUIRED(vp.lock());
// truncate/ftruncate to size (F_SEAL_SHRINK, F_SEAL_GROW).
Result<void> seals_check_resize(Vnode& vp, uint64_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(vp.lock());
// fallocate (kFalloc* mode bits).
Result<void> seals_check_fallocate(Vnode& vp, int mode, uint64_t off, uint64_t len)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(vp.lock());
// chmod to mode: F_SEAL_EXEC keeps the execute bits.
Result<void> seals_check_chmod(Vnode& vp, mode_t mode) ABSL_EXCLUSIVE_LOCKS_REQUIRED(vp.lock());
// F_SEAL_WRITE or F_SEAL_FUTURE_WRITE: no shared mapping may write (mmap
// with PROT_WRITE is EPERM, a read-only one may never become writable).
bool seals_deny_shared_write(const Vnode& vp);
// fcntl F_ADD_SEALS and F_GET_SEALS on any description.
Result<long> memfd_fcntl(File& f, int cmd, unsigned long arg);
// The name a memfd's descriptor shows ("memfd:NAME"; Linux's readlink of
// /proc/PID/fd/N adds " (deleted)" and a leading '/'), or nullptr.
const char* memfd_name(const Vnode& vp);
void memfd_state_free(MemfdState* m);

}  // namespace rump
