// file.h: open file descriptions (File), their operations (FileOps), the
// per-process descriptor table (FileTable), the per-process VFS state
// (cwd/root) and the special-file hook through which pipes and device
// drivers attach to FIFO and device vnodes.
//
// Who calls what: the vfs syscalls (vfs/sys_*.cc) look descriptors up with
// fd_get(), do I/O through File::ops(); other factions (pipes, sockets)
// make Files with their own FileOps and install them with fd_install().
//
// Locking: FileTable::lock_ (rank kFileTable) guards the slots; File::lock_
// (rank kFile) guards the offset bookkeeping. A File's position is held
// across an I/O call by a sleep-style "position busy" flag (as Linux's
// f_pos_lock), taken with no other lock held, so concurrent read/write on
// one description are serialised without holding a mutex across the
// mount's tree lock or user copies.
#pragma once

#include <sys/stat.h>

#include <sys/uio.h>

#include <atomic>
#include <cstdint>

#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"
#include "base/user_ptr.h"
#include "sync/mutex.h"
#include "vfs/vnode.h"

namespace rump {

class File;
class Lwp;
class PollTable;
class Proc;

// A transfer between user memory (an iovec array already copied in) and
// the kernel, as BSD's uio: move() copies the next n bytes.
struct Uio {
  Lwp* lwp;
  const iovec* iov;
  int iovcnt;
  size_t resid;       // bytes left
  int cur = 0;        // current iovec
  size_t cur_off = 0; // offset inside it
  bool kernel = false; // iov bases are kernel addresses (sendfile, copy_file_range)
  // Copies n bytes from kernel memory to user memory (reads) ...
  Result<void> copyout(const void* k, size_t n);
  // ... or from user memory to the kernel (writes).
  Result<void> copyin(void* k, size_t n);
  // True if the iovecs are addresses of this host process (kernel memory,
  // or a process in the host's address space): another thread may then
  // copy into or out of them directly (uio_move).
  bool direct() const;
};

// What uio_move did: the bytes moved (both uios advanced by them) and the
// error of the side whose memory faulted, if one did.
struct UioMoved {
  size_t moved = 0;
  int src_error = 0;
  int dst_error = 0;
};
// Copies up to n bytes from src's memory straight into dst's, at least
// one of them direct() (the other may be an isolated space, reached
// through it): one copy from a writer's buffer into a waiting reader's.
// A stretch that faults counts nothing (as through a buffer).
UioMoved uio_move(Uio& dst, Uio& src, size_t n);

// A reader that finds a pipe or stream socket empty offers its uio here
// (under the object's lock) while it waits; a writer that comes while it
// waits and nothing is buffered claims it, copies from its own uio into
// the reader's with the lock dropped (uio_move: one copy instead of two
// through the buffer), and reports under the lock. The reader withdraws
// the offer when it stops waiting, after any claim ended.
struct DirectRead {
  explicit DirectRead(Uio& u) : uio(&u) {}
  Uio* uio;
  bool claimed = false;  // a writer is copying into uio (lock dropped)
  size_t moved = 0;      // bytes writers put into uio
  int error = 0;         // the reader's memory faulted (EFAULT)
  bool filled() const { return moved > 0 || error != 0; }
};

// What a File does. Vnode-backed files get the VFS's default; pipes,
// devices and sockets bring their own.
class FileOps {
 public:
  virtual ~FileOps() = default;
  // off: the position to use (seekable files) on entry, the position after
  // the transfer on return (O_APPEND writes start at the end).
  virtual Result<size_t> read(File& f, Uio& uio, uint64_t& off) const { return err(EINVAL); }
  virtual Result<size_t> write(File& f, Uio& uio, uint64_t& off) const { return err(EINVAL); }
  virtual Result<long> ioctl(File& f, Lwp& l, unsigned long cmd, uintptr_t arg) const { return err(ENOTTY); }
  // The last reference to the description went.
  virtual void close(File& f) const {}
  virtual bool seekable() const { return false; }
  // fstat of a description with no vnode (a pipe): fills *st.
  virtual Result<void> stat(File& f, struct stat* st) const { return err(EBADF); }
  // What readlink of /proc/<pid>/fd/<n> shows for a description with no
  // path of its own: the kind's name, written to buf (at most cap bytes,
  // no NUL), and its length; 0: the description shows its vnode's path.
  // The default names anonymous inodes "anon_inode:<anon_name()>", and
  // FIFOs and sockets without a vnode "pipe:[ino]" and "socket:[ino]" by
  // their stat; a kind with another form ("/memfd:x (deleted)")
  // overrides it.
  virtual size_t link_name(File& f, char* buf, size_t cap) const;
  // open(2) through a magic link (/proc/<pid>/fd/<n>) of a description
  // with no vnode: a new description of the same object with the
  // description flags fflags (a pipe: opened as a FIFO is), or ENXIO
  // (sockets, anonymous inodes: Linux's).
  virtual Result<Ref<File>> reopen(File& f, Lwp& l, int fflags) const;
  // open(2) with O_PATH through such a magic link: an O_PATH description
  // (flags) of the same object, for fstat, readlink of its fd link and,
  // where reopen can, an open through that link. The default keeps what
  // fstat and the link show as they were (a socket, an anonymous inode:
  // holding the object would keep it open); a pipe holds its pipe.
  virtual Result<Ref<File>> open_path(File& f, Lwp& l, int flags) const;
  // The name of an anonymous inode kind ("[eventfd]", "[eventpoll]"), or
  // nullptr.
  virtual const char* anon_name() const { return nullptr; }
  // Readiness (poll/select, vfs/poll.h): the POLL* events of `events`
  // that hold now, plus POLLERR/POLLHUP whenever they hold. With pt
  // non-null, also registers pt on the object's wait queue (under the
  // object's own lock, before testing) so a later change wakes the poller.
  // Default: always readable and writable, as regular files.
  virtual short poll(File& f, short events, PollTable* pt) const {
    return events & (0x001 | 0x004 | 0x040 | 0x100);  // POLLIN|POLLOUT|POLLRDNORM|POLLWRNORM
  }
};

// An open file description: shared by dup'ed descriptors and forks.
class File : public KObject, public RefCounted<File> {
 public:
  // Takes a mount use of vp (released at the last close).
  File(const FileOps* ops, RefPtr<Vnode> vp, int flags);
  ~File();
  static Result<Ref<File>> create(Kmem& k, const FileOps* ops, RefPtr<Vnode> vp, int flags);

  const FileOps& ops() const { return *ops_; }
  // Only before the description is installed (special-file open).
  void set_ops(const FileOps* ops) { ops_ = ops; }
  Vnode* vnode() const { return vnode_.get(); }
  int flags() const { return flags_.load(std::memory_order_relaxed); }
  void set_flags(int f) { flags_.store(f, std::memory_order_relaxed); }
  bool readable() const;
  bool writable() const;

  // Position bookkeeping: lock_pos() waits until no other I/O uses the
  // position and returns it; unlock_pos() stores the new one.
  uint64_t lock_pos();
  void unlock_pos(uint64_t pos);
  uint64_t pos();
  void set_pos(uint64_t pos);

  // For FileOps implementations (pipe ends, device state).
  void* data_ = nullptr;
  // A FIFO read end opened O_NONBLOCK with no writer: the pipe's writer
  // generation at open, so poll holds POLLHUP back until a writer came
  // (and went). Set before the description is installed.
  uint64_t pipe_writers_seen_ = 0;
  // A regular file opened for writing holds one of its vnode's write
  // counts (Vnode::get_write_access) until its last close.
  bool counts_write_ = false;
  // Set when OFD or flock locks were taken through this description, so
  // the last close knows to release them (vfs/lock.cc).
  std::atomic<bool> has_adv_locks_{false};
  // Epoll items watching this description (net/epoll.cc's list head, or
  // null): the last reference drops them, before the object goes, through
  // the hook the epoll code registered (set_file_epoll_release).
  std::atomic<void*> epoll_items_{nullptr};
  // The file's write-back cache, referenced (vfs/vnode_pager.h,
  // file_cache()), and the write-back error sequence this description saw
  // (Vnode::wb_error_), sampled at open.
  std::atomic<VnodePager*> cache_{nullptr};
  std::atomic<uint64_t> wb_seen_{0};

 private:
  friend class RefCounted<File>;
  void last_unref();

  const FileOps* ops_;
  RefPtr<Vnode> vnode_;
  std::atomic<int> flags_;
  Mutex lock_{LockRank::kFile};
  CondVar pos_cv_;
  uint64_t pos_ ABSL_GUARDED_BY(lock_) = 0;
  bool pos_busy_ ABSL_GUARDED_BY(lock_) = false;
};

// A per-process descriptor table, shared by processes forked with neither
// RFFDG nor RFCFDG.
//
// The slots are one Kmem array that grows by allocating a bigger one and
// moving the slots over (EMFILE-like ENOMEM when the kernel is out of
// memory, with the table unchanged); nothing that removes descriptors
// allocates, so close, close_range and exit cannot fail for want of
// memory.
class FileTable : public KObject, public RefCounted<FileTable> {
 public:
  explicit FileTable(Kmem& k);
  ~FileTable();
  static Result<Ref<FileTable>> create(Kmem& k);
  Result<Ref<FileTable>> copy(Kmem& k);

  // Installs f at the lowest free descriptor >= minfd, below limit.
  Result<int> alloc(Ref<File> f, int minfd, bool cloexec, uint64_t limit);
  // Installs f at exactly fd (dup2/dup3), returning what was there.
  Result<RefPtr<File>> install_at(Ref<File> f, int fd, bool cloexec, uint64_t limit);
  Result<Ref<File>> get(int fd, bool* cloexec = nullptr);
  // Removes fd; EBADF if none.
  Result<Ref<File>> remove(int fd);
  // Calls fn(file) for every open file with the table's lock held (exit:
  // release record locks; fn may take locks ranked above kFileTable).
  template <class Fn>
  void for_each(Fn fn) {
    for_each_fd([&](int, File& f, bool) { fn(f); });
  }
  // The same with each descriptor's number and close-on-exec flag, in
  // order (/proc/<pid>/fd).
  template <class Fn>
  void for_each_fd(Fn fn) {
    MutexLocker g(lock_);
    for (size_t i = 0; i < nslots_; i++)
      if (slots_[i].file) fn(static_cast<int>(i), *slots_[i].file, slots_[i].cloexec);
  }
  Result<void> set_cloexec(int fd, bool on);
  // Marks every descriptor in [lo, hi] close-on-exec (close_range).
  void set_cloexec_range(unsigned lo, unsigned hi);
  // Removes the lowest descriptor in [*fd, hi] and sets *fd past it;
  // nullptr when none is left (close_range, one at a time: no list to
  // allocate).
  RefPtr<File> remove_next(unsigned* fd, unsigned hi);
  // Takes every file out (exit); they are dropped on return, outside the
  // table's lock.
  void remove_all();

 private:
  friend class RefCounted<FileTable>;
  struct Slot {
    RefPtr<File> file;
    bool cloexec = false;
  };
  // Room for n slots (ENOMEM).
  Result<void> grow_locked(size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  static void free_slots(Slot* s, size_t n);
  // Copies every slot into n (room made, n's lock held by the caller).
  void copy_into(FileTable& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  Kmem& kmem_;
  Mutex lock_{LockRank::kFileTable};
  Slot* slots_ ABSL_GUARDED_BY(lock_) = nullptr;
  size_t nslots_ ABSL_GUARDED_BY(lock_) = 0;

  // How many processes have this as their table (ProcVfs). References
  // (ref_count) count more: callers in flight and tables a process
  // replaced and keeps until it exits. The last holder to let go empties
  // the table, so its files close then, whoever still refers to it.
  friend class ProcVfs;
  std::atomic<int> holders_{0};

 public:
  // Another process holds the table too (close_range's UNSHARE copies it).
  bool shared() const { return holders_.load(std::memory_order_acquire) > 1; }
};

// A process's VFS state (its ProcExtension slot).
//
// The descriptor table is looked up without a lock or a reference on every
// descriptor call (fd_get, fd_install, fd_close), and sibling LWPs may
// replace it meanwhile (close_range with CLOSE_RANGE_UNSHARE). That is
// safe because a table this process ever had stays allocated until the
// process ends: a replaced one goes on the retired list (it keeps a
// reference, not a holder: its files close as soon as no process holds
// it), and the list goes at exit, when no LWP of the process is in the
// kernel any more. Replacements are rare (an unshare of a shared table)
// and serialised by fdt_lock_; a retired table that no process holds is
// an empty object of about a hundred bytes.
class ProcVfs : public KObject {
 public:
  ~ProcVfs();
  // The current table, borrowed: valid until the process ends, whatever a
  // sibling does meanwhile. The fast path: one load.
  FileTable& table() const { return *fdt_.load(std::memory_order_acquire); }
  // A reference to the current table.
  Ref<FileTable> fdt() const { return Ref<FileTable>(table()); }
  // The first table, before the state is published (creation, fork).
  void init_fdt(Ref<FileTable> t);
  // Makes t the process's table in place of the current one (which is
  // retired); ENOMEM with nothing changed.
  Result<void> replace_fdt(Ref<FileTable> t);
  // Exit, once no LWP of the process is in the kernel: lets go of the
  // table and returns it, with *last set if this was its last holder.
  RefPtr<FileTable> release_fdt(bool* last);

  // cwd and root; each holds a mount use.
  Mutex lock_{LockRank::kFileTable};
  RefPtr<Vnode> cwd_ ABSL_GUARDED_BY(lock_);
  RefPtr<Vnode> root_ ABSL_GUARDED_BY(lock_);

  // The executable (prctl PR_SET_MM_EXE_FILE; there is no exec): what
  // /proc/<pid>/exe shows, null for none. Inherited; holds a mount use
  // and denies writing to the file (Vnode::deny_write_access: set_exe is
  // given a vnode denied for it, and allows it again when it goes).
  RefPtr<Vnode> exe_ ABSL_GUARDED_BY(lock_);

  Ref<Vnode> cwd();
  Ref<Vnode> root();
  RefPtr<Vnode> exe();
  void set_cwd(Ref<Vnode> vp);
  void set_root(Ref<Vnode> vp);
  void set_exe(RefPtr<Vnode> vp);

 private:
  struct Retired : KObject {
    explicit Retired(Ref<FileTable> t, Retired* n) : table(std::move(t)), next(n) {}
    Ref<FileTable> table;
    Retired* next;
  };
  // Holds one reference to the table it points to; null before init_fdt
  // and after release_fdt. Written under fdt_lock_, read without it.
  std::atomic<FileTable*> fdt_{nullptr};
  SpinLock fdt_lock_;
  Retired* retired_ ABSL_GUARDED_BY(fdt_lock_) = nullptr;
};

ProcVfs& proc_vfs(Proc& p);

// --- descriptors for every faction
// The calling process's file for fd: EBADF if none (or O_PATH when the
// call needs a real one: allow_path false).
Result<Ref<File>> fd_get(Lwp& l, int fd, bool allow_path = false);
// Installs f at the lowest free descriptor (EMFILE past RLIMIT_NOFILE).
Result<int> fd_install(Lwp& l, Ref<File> f, bool cloexec);
// Closes fd: releases the process's record locks on its vnode.
Result<void> fd_close(Lwp& l, int fd);
uint64_t nofile_limit(Proc& p);

// --- the special-file hook: FIFOs and device nodes get their FileOps from
// whoever registered for (type, rdev). Registration is process-wide and
// happens at load time (pipes for VType::kFifo, drivers for their device
// numbers). open() sets up f (data_, ops) for the vnode; it returns the ops
// to use. kAnyRdev matches every device number of that type.
struct SpecialOps {
  VType type;
  dev_t rdev;
  // Called when a vnode of this type/rdev is opened; f is the new
  // description (vnode and flags set). Returns the FileOps for it.
  Result<const FileOps*> (*open)(Lwp& l, Vnode& vp, File& f, int flags);
};
inline constexpr dev_t kAnyRdev = static_cast<dev_t>(-1);
void register_special(const SpecialOps* ops);
const SpecialOps* find_special(VType type, dev_t rdev);
struct SpecialRegistrar {
  explicit SpecialRegistrar(const SpecialOps* ops) { register_special(ops); }
};

// Registered at load time by the code that links epoll items to files.
void set_file_epoll_release(void (*fn)(File& f));

// The default FileOps of vnode-backed files.
extern const FileOps& kVnodeFileOps;
// O_PATH descriptors: no I/O.
extern const FileOps& kPathFileOps;

// stat of a file with no inode of its own (eventfd, timerfd, epoll: Linux's
// anonymous inodes): mode 0600, one link, an inode number from the object.
Result<void> anon_inode_stat(const File& f, struct stat* st);

}  // namespace rump
