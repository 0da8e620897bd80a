// vnode.h: the vnode layer: Vnode (a file-system object in memory, with its
// operations), Mount (a mounted file system) and the file-system type
// registry. Used by the VFS faction (namei, descriptors, the vfs syscalls)
// and implemented by file systems (fs/tmpfs, fs/etfs).
//
// Locking: every Mount has one tree lock, Mount::lock_ (rank kVnode). It
// guards the whole tree of that mount: directory contents, attributes and
// data of every vnode, and Vnode::mounted_here_. Vnode operations are called
// with it held (the "_locked" convention applies to all of them) and never
// block on anything but kernel memory. Lookup holds at most one tree lock at
// a time (it drops one mount's lock before taking the next), and a rename
// never spans two mounts (EXDEV), so no two tree locks are ever held
// together: the rename lock order question reduces to "one lock per mount".
// User memory is never touched with a tree lock held (copyin/copyout can
// fault into the vm faction, whose locks rank lower): data moves through
// bounded kernel buffers.
//
// Lifetime: Vnodes are reference counted. A directory entry holds a
// reference to the vnode it names, so a vnode lives while it has a name or an
// in-memory user (open file, cwd, a lookup in progress). A Vnode holds a
// reference to its Mount; the mount keeps its root (and so its tree) until
// it is unmounted, when the tree is torn down and the root dropped. A lazy
// unmount (MNT_DETACH) takes the mount out of the namespace at once but
// tears the tree down only when its last user (open file, cwd, root) goes:
// until then those users keep working inside it, as on Linux.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <boost/intrusive/list.hpp>
#include <cstdint>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"
#include "kern/cred.h"
#include "sync/mutex.h"

namespace rump {

struct AdvState;
struct MemfdState;
class File;
class Kernel;
class Lwp;
class Mount;
class Pipe;
class Vnode;
class VnodePager;

enum class VType : uint8_t { kNon, kReg, kDir, kLnk, kChr, kBlk, kFifo, kSock };

inline mode_t vtype_to_ifmt(VType t) {
  switch (t) {
    case VType::kReg: return S_IFREG;
    case VType::kDir: return S_IFDIR;
    case VType::kLnk: return S_IFLNK;
    case VType::kChr: return S_IFCHR;
    case VType::kBlk: return S_IFBLK;
    case VType::kFifo: return S_IFIFO;
    case VType::kSock: return S_IFSOCK;
    default: return 0;
  }
}
inline VType ifmt_to_vtype(mode_t m) {
  switch (m & S_IFMT) {
    case S_IFREG: return VType::kReg;
    case S_IFDIR: return VType::kDir;
    case S_IFLNK: return VType::kLnk;
    case S_IFCHR: return VType::kChr;
    case S_IFBLK: return VType::kBlk;
    case S_IFIFO: return VType::kFifo;
    case S_IFSOCK: return VType::kSock;
    default: return VType::kNon;
  }
}
// The d_type of a directory entry (DT_*).
inline uint8_t vtype_to_dtype(VType t) { return static_cast<uint8_t>(vtype_to_ifmt(t) >> 12); }

inline constexpr size_t kNameMax = 255;
inline constexpr size_t kPathMax = 4096;
inline constexpr uint32_t kBlockSize = 4096;  // st_blksize; tmpfs page size

// Attributes as stat reports them.
struct Vattr {
  VType type = VType::kNon;
  mode_t mode = 0;  // permission bits, S_ISUID, S_ISGID, S_ISVTX (no S_IFMT)
  uid_t uid = 0;
  gid_t gid = 0;
  nlink_t nlink = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units allocated
  ino_t ino = 0;
  dev_t dev = 0;
  dev_t rdev = 0;
  timespec atime{}, mtime{}, ctime{}, btime{};
};

// What setattr changes (mask bits) and to what.
// kCtime: the change time to record is ctime (the clock reading that set
// atime/mtime to "now"), not a fresh one.
struct SetAttr {
  enum : uint32_t { kMode = 1, kUid = 2, kGid = 4, kSize = 8, kAtime = 16, kMtime = 32, kCtime = 64 };
  uint32_t mask = 0;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  uint64_t size = 0;
  timespec atime{}, mtime{}, ctime{};
};

// What a new node gets: the VFS computes owner, group and mode (umask,
// setgid directories) and the file system stores them.
struct NewNode {
  VType type = VType::kReg;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  dev_t rdev = 0;
  std::string_view symlink_target;
};

struct DirEntry {
  uint64_t ino;
  int64_t next_off;  // d_off: the position after this entry
  VType type;
  std::string_view name;
};
// Returns false to stop (the caller's buffer is full).
using ReaddirFn = absl::FunctionRef<bool(const DirEntry&)>;

inline constexpr int kFallocKeepSize = 1;
inline constexpr int kFallocPunchHole = 2;

class FsType;

// A mounted file system. Subclassed by each file system.
class Mount : public KObject, public RefCounted<Mount> {
 public:
  Mount(Kernel& k, FsType& type, int flags);
  virtual ~Mount();

  Kernel& kernel() const { return kernel_; }
  FsType& fstype() const { return type_; }

  // The tree lock (see the top of this file).
  Mutex lock_{LockRank::kVnode};
  Mutex& lock() ABSL_LOCK_RETURNED(lock_) { return lock_; }
  // The root of the tree; reset at unmount.
  RefPtr<Vnode> root_ ABSL_GUARDED_BY(lock_);
  // What this mount covers (nullptr for the root file system) and the
  // mount it belongs to. Set once by mount(2) before the mount enters the
  // table (under the table's lock, which publishes it) and never changed
  // after: read without a lock, so no lock guards it, and only
  // set_covered() writes it.
  const RefPtr<Vnode>& covered() const { return covered_; }
  void set_covered(Ref<Vnode> vp) { covered_ = std::move(vp); }

  std::atomic<int> flags_;  // MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC
  dev_t dev_ = 0;
  // Open files, cwd and root directories on this mount: EBUSY while > 0.
  // On a detached mount, the last one going tears the tree down.
  std::atomic<int> users_{0};
  // The kernel's mount table lock (VfsState::mount_lock_), and what it
  // guards here: the mount left the table.
  Mutex& table_lock() const ABSL_LOCK_RETURNED(table_lock_) { return table_lock_; }
  bool unmounted_ ABSL_GUARDED_BY(table_lock_) = false;
  // The kernel's advisory lock (VfsState::adv_lock_), which guards the
  // advisory lock state of every vnode (Vnode::advlock()).
  Mutex& adv_lock() const ABSL_LOCK_RETURNED(adv_lock_) { return adv_lock_; }
  // Out of the namespace (set with unmounted_, under lock_ as well): ".."
  // at its root stays there and getcwd inside it is "(unreachable)".
  bool detached_ ABSL_GUARDED_BY(lock_) = false;
  // umount2(MNT_EXPIRE) marked it; any use (a lookup entering it, an open
  // or close, a chdir) clears the mark, and a second MNT_EXPIRE finding it
  // still set unmounts.
  std::atomic<bool> expiry_mark_{false};

  // Takes the mount out of the namespace's view (the caller already took
  // it out of the mount table and its covered node): the tree is torn down
  // now, or with lazy, when the last user goes.
  void detach(bool lazy);
  // The last user went (mount_unuse).
  void last_use_gone();

  bool read_only() const;
  // True if vp is this mount's root (takes lock_).
  bool is_root(const Vnode& vp);

  // statfs numbers, in units of bsize (0: kBlockSize). bavail is bfree
  // unless has_bavail (blocks reserved for root).
  struct Stat {
    uint64_t blocks, bfree, files, ffree;
    uint64_t magic;
    uint32_t bsize = 0;
    bool has_bavail = false;
    uint64_t bavail = 0;
  };
  virtual Stat statfs() = 0;
  // Drops the tree (unmount): called with lock_ held.
  virtual void teardown() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) = 0;
  // Writes everything the file system holds back to its device (sync,
  // syncfs): called with lock_ held.
  virtual Result<void> sync() { return {}; }
  // Regular files' data is cached in their pages and written back later
  // (vfs/vnode_pager.h): read/write go through the cache.
  virtual bool caches_file_data() const { return false; }

  // File handles (vfs/fhandle.cc): how many 32-bit words a handle of this
  // file system has (0: none, name_to_handle_at is EOPNOTSUPP), and the
  // vnode a handle names: inode number ino with generation gen, ESTALE if
  // there is none (any more). Both with lock_ held.
  virtual int handle_words() const { return 0; }
  virtual Result<Ref<Vnode>> vget(uint64_t ino, uint32_t gen) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    return err(ESTALE);
  }

  boost::intrusive::list_member_hook<> table_hook_;

 protected:
  friend class RefCounted<Mount>;
  void last_unref() { delete this; }

 private:
  RefPtr<Vnode> covered_;  // see covered()
  Kernel& kernel_;
  FsType& type_;
  Mutex& table_lock_;
  Mutex& adv_lock_;
};

// A file-system object in memory. The operations below are the interface
// between the VFS and a file system; all run with mount().lock_ held, after
// the VFS checked permissions, name validity and existence rules. Names
// are single components ("." and ".." never reach create/remove/rename).
class Vnode : public KObject, public RefCounted<Vnode> {
 public:
  Vnode(Mount& mp, VType type);
  virtual ~Vnode();
  Vnode(const Vnode&) = delete;
  Vnode& operator=(const Vnode&) = delete;

  Mount& mount() const { return *mount_; }
  // The tree lock of the vnode's mount: every operation below needs it.
  Mutex& lock() const ABSL_LOCK_RETURNED(mount().lock_);
  VType type() const { return type_; }
  bool is_dir() const { return type_ == VType::kDir; }

  // --- namespace (directories)
  // The named entry, or ENOENT. ".." of the file system's root is itself.
  virtual Result<Ref<Vnode>> lookup(std::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(ENOTDIR); }
  virtual Result<Ref<Vnode>> create(std::string_view name, const NewNode& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(ENOTDIR); }
  virtual Result<Ref<Vnode>> mknod(std::string_view name, const NewNode& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return create(name, n); }
  virtual Result<Ref<Vnode>> mkdir(std::string_view name, const NewNode& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return create(name, n); }
  virtual Result<Ref<Vnode>> symlink(std::string_view name, const NewNode& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return create(name, n); }
  // An unnamed regular file (O_TMPFILE) on this directory's file system.
  virtual Result<Ref<Vnode>> create_unnamed(const NewNode& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(EOPNOTSUPP); }
  virtual Result<void> link(std::string_view name, Vnode& target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(ENOTDIR); }
  // Removes entry name (which names vp, not a directory).
  virtual Result<void> remove(std::string_view name, Vnode& vp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(ENOTDIR); }
  // Removes entry name (which names the empty directory vp).
  virtual Result<void> rmdir(std::string_view name, Vnode& vp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(ENOTDIR); }
  // Moves entry from_name (naming vp) of this directory to to_name in
  // to_dir, replacing target if non-null (the VFS checked type
  // compatibility and emptiness). exchange: swap the two entries.
  virtual Result<void> rename(std::string_view from_name, Vnode& vp, Vnode& to_dir,
                              std::string_view to_name, Vnode* target, bool exchange) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) {
    return err(ENOTDIR);
  }
  // Entries from position off: 0 is the start, other positions are the
  // file system's cookies as returned in next_off (tmpfs: "." is 0, ".."
  // 1; etfs directories: the host's own cookies).
  virtual Result<void> readdir(int64_t off, ReaddirFn fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(ENOTDIR); }
  // True if the directory has entries besides "." and "..".
  virtual bool has_entries() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return false; }
  // The directory this one is linked in (nullptr for the fs root or a
  // removed directory). Used for ".." and getcwd.
  virtual Vnode* parent_dir() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return nullptr; }
  // The name of child in this directory (for getcwd), or empty.
  virtual std::string_view name_of(const Vnode& child) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return {}; }

  // --- data
  virtual Result<size_t> readlink(char* buf, size_t len) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(EINVAL); }
  // A magic link (procfs's fd/<n>, cwd, root and exe, as Linux's):
  // following it reaches what it stands for, not the path readlink shows:
  // a vnode, or for a description with none (a pipe, a socket) the
  // description itself. Both null: an ordinary link. l is the walker;
  // called with no lock held.
  struct MagicTarget {
    RefPtr<Vnode> vp;
    RefPtr<File> file;
  };
  virtual Result<MagicTarget> magic_target(Lwp& l);
  virtual Result<size_t> read(void* buf, size_t len, uint64_t off) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(EINVAL); }
  virtual Result<size_t> write(const void* buf, size_t len, uint64_t off) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(EINVAL); }
  virtual Result<void> truncate(uint64_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(EINVAL); }
  virtual Result<void> fallocate(int mode, uint64_t off, uint64_t len) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(EOPNOTSUPP); }
  // SEEK_DATA / SEEK_HOLE: the next data (or hole) position at or after off.
  virtual Result<uint64_t> seek_data(uint64_t off, bool hole) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  virtual Result<void> fsync() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return {}; }

  // --- attributes
  virtual void getattr(Vattr& va) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) = 0;
  virtual Result<void> setattr(const SetAttr& sa) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) = 0;
  // Marks access/modification/change now (flags: 1 atime, 2 mtime, 4 ctime).
  virtual void touch(int which) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) {}

  // --- extended attributes (vfs/sys_xattr.cc calls these after its
  // checks: name is a whole name, "user.x", at most 255 bytes, with a
  // known namespace prefix and a non-empty rest; the caller may use the
  // namespace; the mount is writable for changes). File systems without
  // them keep these defaults, Linux's answers for such a file system.
  // The value's size; with len > 0 the value is copied to buf (ERANGE if
  // larger than len). ENODATA if absent.
  virtual Result<size_t> getxattr(std::string_view name, char* buf, size_t len) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(EOPNOTSUPP); }
  // flags: XATTR_CREATE (EEXIST if present) or XATTR_REPLACE (ENODATA if
  // absent). ENOSPC if the value does not fit where the file system keeps
  // attributes.
  virtual Result<void> setxattr(std::string_view name, const char* value, size_t len, int flags) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(EOPNOTSUPP); }
  virtual Result<void> removexattr(std::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(EOPNOTSUPP); }
  // The names, each followed by a NUL, as listxattr(2) returns them: their
  // total size; with len > 0 copied to buf (ERANGE if larger). trusted:
  // the caller may see trusted.* names.
  virtual Result<size_t> listxattr(char* buf, size_t len, bool trusted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return size_t{0}; }

  // --- inode flags (FS_IOC_GETFLAGS/SETFLAGS: FS_*_FL values) and the
  // generation (FS_IOC_GETVERSION); ENOTTY where the file system has none.
  // set_inode_flags gets the whole new set; the caller checked ownership
  // and the privilege for FS_IMMUTABLE_FL and FS_APPEND_FL changes.
  virtual Result<uint32_t> inode_flags() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(ENOTTY); }
  virtual Result<void> set_inode_flags(uint32_t flags) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(ENOTTY); }
  virtual Result<uint32_t> generation() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(ENOTTY); }

  // --- open/close of a description (for file systems that care)
  virtual Result<void> open(int flags) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return {}; }
  virtual void close(int flags) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) {}

  // The mount covering this vnode (a mount point), or nullptr.
  Mount* mounted_here() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return mounted_here_; }
  void set_mounted_here(Mount* m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { mounted_here_ = m; }

  // Advisory locks (vfs/lock.cc), under the kernel's advisory lock.
  AdvState* advlock() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mount().adv_lock()) { return advlock_; }
  void set_advlock(AdvState* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mount().adv_lock()) { advlock_ = s; }
  // The pipe of a FIFO while any description of it is open (vfs/pipe.cc):
  // fifo_get() counts an open of the attached pipe (nullptr: none yet),
  // fifo_attach() attaches p for a first open, fifo_put() counts a close
  // and, at the last, detaches the pipe (true). The count lives here, under
  // the tree lock, so an open never finds a pipe that is going away.
  Pipe* fifo_get() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) {
    if (fifo_) fifo_opens_++;
    return fifo_;
  }
  void fifo_attach(Pipe* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) {
    fifo_ = p;
    fifo_opens_ = 1;
  }
  bool fifo_put() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) {
    if (--fifo_opens_ > 0) return false;
    fifo_ = nullptr;
    return true;
  }

  // An O_TMPFILE file without O_EXCL: linkat(AT_EMPTY_PATH) may name it.
  bool linkable_ ABSL_GUARDED_BY(lock()) = false;

  // A memfd's name and seals (vfs/memfd.cc), or nullptr for any other
  // file. Set once before the vnode is published; freed with the vnode.
  MemfdState* memfd() const { return memfd_; }
  void set_memfd(MemfdState* m) { memfd_ = m; }

  // Where the node was when its last name went while something still used
  // it ("/tmp/f"), from the remover's root: what /proc's links show with
  // " (deleted)", as Linux's dentries keep it. Null otherwise. Set by
  // unlink and rmdir (vfs/sys_dir.cc) with a Kmem block, freed with the
  // vnode.
  const char* deleted_path() const { return deleted_path_.load(std::memory_order_acquire); }
  void set_deleted_path(char* p) { Kmem::free(deleted_path_.exchange(p, std::memory_order_acq_rel)); }

  // Linux's i_writecount, lock-free: above 0, descriptors of the file open
  // for writing; below 0, holders that deny writing (a process's
  // executable, PR_SET_MM_EXE_FILE). Opening for writing while denied, and
  // denying while open for writing, are ETXTBSY.
  Result<void> get_write_access() {
    int n = writecount_.load(std::memory_order_relaxed);
    do {
      if (n < 0) return err(ETXTBSY);
    } while (!writecount_.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel));
    return {};
  }
  void put_write_access() { writecount_.fetch_sub(1, std::memory_order_acq_rel); }
  Result<void> deny_write_access() {
    int n = writecount_.load(std::memory_order_relaxed);
    do {
      if (n > 0) return err(ETXTBSY);
    } while (!writecount_.compare_exchange_weak(n, n - 1, std::memory_order_acq_rel));
    return {};
  }
  void allow_write_access() { writecount_.fetch_add(1, std::memory_order_acq_rel); }

  // The page cache of a mapped regular file (vfs/vnode_pager.h), or
  // nullptr: not a reference (the cache holds the vnode); the cache clears
  // it when it goes, and a finder takes a reference with try_ref().
  VnodePager* pager_ ABSL_GUARDED_BY(lock()) = nullptr;
  // The file's write-back errors as an error sequence (Linux's errseq_t):
  // the errno in the low 16 bits, bit 16 set once a description saw it, a
  // count above that bumped at each new error (vfs/vnode_pager.cc).
  std::atomic<uint64_t> wb_error_{0};
  // Host-space mappings of the file's cache (VmObject host views), kept by
  // the cache: read(2) of a write-through file has their stores written
  // through first (vnode_host_sync).
  std::atomic<uint32_t> host_views_{0};
  static constexpr uint64_t kWbErrorSeen = uint64_t{1} << 16;

 protected:
  // reclaim: the last reference went; the destructor frees everything.
  friend class RefCounted<Vnode>;
  void last_unref() { delete this; }

 private:
  Ref<Mount> mount_;
  VType type_;
  Mount* mounted_here_ ABSL_GUARDED_BY(lock()) = nullptr;
  AdvState* advlock_ ABSL_GUARDED_BY(mount().adv_lock()) = nullptr;
  Pipe* fifo_ ABSL_GUARDED_BY(lock()) = nullptr;
  int fifo_opens_ ABSL_GUARDED_BY(lock()) = 0;
  MemfdState* memfd_ = nullptr;
  std::atomic<char*> deleted_path_{nullptr};
  std::atomic<int> writecount_{0};
};

inline Mutex& Vnode::lock() const { return mount().lock_; }

// A file-system type: tmpfs, ext2 ... Registered at load time.
class FsType {
 public:
  const char* name;
  // Makes a mount from the caller's source and option string (data may be
  // null). The root vnode is set in the returned mount.
  Result<Ref<Mount>> (*mount)(Kernel& k, const char* source, int flags, const char* data);
  // Mounted from a block device (/proc/filesystems leaves "nodev" off).
  bool block_device = false;
};
void register_fstype(FsType* t);
FsType* find_fstype(std::string_view name);
// Every registered type, in registration order.
void for_each_fstype(absl::FunctionRef<void(const FsType&)> fn);

struct FsTypeRegistrar {
  explicit FsTypeRegistrar(FsType* t) { register_fstype(t); }
};

// Mount users: open files and cwd/root directories keep a mount busy.
// Neither is called with a tree lock held (the last unuse of a detached
// mount takes its lock to tear it down).
inline void clear_expiry_mark(Mount& m) {
  if (m.expiry_mark_.load(std::memory_order_relaxed)) m.expiry_mark_.store(false, std::memory_order_relaxed);
}
inline void mount_use(Vnode& vp) {
  vp.mount().users_.fetch_add(1, std::memory_order_acq_rel);
  clear_expiry_mark(vp.mount());
}
inline void mount_unuse(Vnode& vp) {
  Mount& m = vp.mount();
  clear_expiry_mark(m);
  if (m.users_.fetch_sub(1, std::memory_order_acq_rel) == 1) m.last_use_gone();
}

// Permission check of mode bits against a credential: acc is a mask of
// R_OK|W_OK|X_OK. Root passes reads and writes and execute if any x bit is
// set (directories: always).
bool vaccess_ok(const Vattr& va, const Cred& cred, int acc);

// The calling kernel's realtime clock (KernelClock: clock_settime moves
// it), for file times.
timespec wall_timespec();

}  // namespace rump
