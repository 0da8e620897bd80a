// Open file descriptions, descriptor tables, the per-process VFS state and
// its fork/exit hooks, and the FileOps of vnode-backed files.
#include "vfs/file.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "kern/copy.h"
#include "kern/file_map.h"
#include "kern/kernel.h"
#include "vfs/vfs.h"
#include "vfs/vnode_pager.h"

namespace rump {

// --- Uio

namespace {

// Walks u's iovecs for up to n bytes, calling piece(iov address, offset
// into the kernel buffer, length) for each stretch and advancing u past
// it; stops at piece's first error.
template <class Piece>
Result<void> uio_walk(Uio& u, size_t n, Piece piece) {
  size_t done = 0;
  while (n > 0 && u.cur < u.iovcnt) {
    size_t room = u.iov[u.cur].iov_len - u.cur_off;
    if (room == 0) {
      u.cur++;
      u.cur_off = 0;
      continue;
    }
    size_t m = n < room ? n : room;
    uintptr_t addr = reinterpret_cast<uintptr_t>(u.iov[u.cur].iov_base) + u.cur_off;
    TRY(piece(addr, done, m));
    done += m;
    n -= m;
    u.cur_off += m;
    u.resid -= m;
  }
  return {};
}

}  // namespace

Result<void> Uio::copyout(const void* k, size_t n) {
  const char* src = static_cast<const char*>(k);
  return uio_walk(*this, n, [&](uintptr_t dst, size_t off, size_t m) -> Result<void> {
    if (kernel) std::memcpy(reinterpret_cast<void*>(dst), src + off, m);
    else TRY(rump::copyout(*lwp, src + off, dst, m));
    return {};
  });
}

Result<void> Uio::copyin(void* k, size_t n) {
  char* dst = static_cast<char*>(k);
  return uio_walk(*this, n, [&](uintptr_t src, size_t off, size_t m) -> Result<void> {
    if (kernel) std::memcpy(dst + off, reinterpret_cast<const void*>(src), m);
    else TRY(rump::copyin(*lwp, src, dst + off, m));
    return {};
  });
}

bool Uio::direct() const { return kernel || (lwp && lwp->user_space() == nullptr); }

// At least one of dst and src is direct(); the other may be an isolated
// space, reached through it (space_copy). A stretch that faults counts
// nothing, as a copy through a buffer (Uio::copyin/copyout) counts it.
UioMoved uio_move(Uio& dst, Uio& src, size_t n) {
  UioMoved r;
  bool src_host = src.direct(), dst_host = dst.direct();
  while (n > 0 && dst.cur < dst.iovcnt && src.cur < src.iovcnt) {
    size_t droom = dst.iov[dst.cur].iov_len - dst.cur_off;
    if (droom == 0) {
      dst.cur++;
      dst.cur_off = 0;
      continue;
    }
    size_t sroom = src.iov[src.cur].iov_len - src.cur_off;
    if (sroom == 0) {
      src.cur++;
      src.cur_off = 0;
      continue;
    }
    size_t m = n < droom ? n : droom;
    if (sroom < m) m = sroom;
    uintptr_t d = reinterpret_cast<uintptr_t>(dst.iov[dst.cur].iov_base) + dst.cur_off;
    uintptr_t s = reinterpret_cast<uintptr_t>(src.iov[src.cur].iov_base) + src.cur_off;
    if (src_host && !src.kernel && !host_user_range_ok(s, m)) {
      r.src_error = EFAULT;
      break;
    }
    if (dst_host && !dst.kernel && !host_user_range_ok(d, m)) {
      r.dst_error = EFAULT;
      break;
    }
    // One side may be an isolated space: the other's bytes are host
    // memory, copied through the space.
    size_t done = m;
    int e = 0;
    if (src_host && dst_host) {
      std::memcpy(reinterpret_cast<void*>(d), reinterpret_cast<const void*>(s), m);
    } else if (src_host) {
      Result<void> c = space_copy(dst.lwp->user_space(), true, d, reinterpret_cast<void*>(s), m, &done);
      if (!c.ok()) e = r.dst_error = c.error();
    } else {
      Result<void> c = space_copy(src.lwp->user_space(), false, s, reinterpret_cast<void*>(d), m, &done);
      if (!c.ok()) e = r.src_error = c.error();
    }
    // A stretch that faulted moves nothing, as a copy through a buffer
    // (Uio::copyin/copyout) counts it: the bytes stay with the writer.
    if (e) done = 0;
    dst.cur_off += done;
    dst.resid -= done;
    src.cur_off += done;
    src.resid -= done;
    r.moved += done;
    n -= done;
    if (e) break;
  }
  return r;
}

// --- File

File::File(const FileOps* ops, RefPtr<Vnode> vp, int flags) : ops_(ops), vnode_(std::move(vp)), flags_(flags) {
  if (vnode_) {
    mount_use(*vnode_);
    // Linux's errseq_sample: an error nobody saw yet is reported to this
    // description too; a seen one is not.
    uint64_t e = vnode_->wb_error_.load(std::memory_order_acquire);
    wb_seen_.store((e & Vnode::kWbErrorSeen) ? e : 0, std::memory_order_relaxed);
  }
}

File::~File() = default;

Result<Ref<File>> File::create(Kmem& k, const FileOps* ops, RefPtr<Vnode> vp, int flags) {
  auto* f = new (k) File(ops, std::move(vp), flags);
  if (!f) return err(ENOMEM);
  return adopt_ref(f);
}

namespace {
std::atomic<void (*)(File&)> g_epoll_release{nullptr};
}  // namespace

void set_file_epoll_release(void (*fn)(File& f)) { g_epoll_release.store(fn, std::memory_order_release); }

void File::last_unref() {
  if (epoll_items_.load(std::memory_order_acquire)) {
    if (auto* fn = g_epoll_release.load(std::memory_order_acquire)) fn(*this);
  }
  ops_->close(*this);
  // The cache's dirty pages go back before the tree lock is taken (the
  // page lock ranks below it).
  file_cache_release(*this);
  if (vnode_) {
    Kernel& k = vnode_->mount().kernel();
    if (counts_write_) vnode_->put_write_access();
    if (has_adv_locks_.load()) adv_release_file(k, *vnode_, *this);
    {
      MutexLocker g(vnode_->mount().lock_);
      vnode_->close(flags());
    }
    mount_unuse(*vnode_);
  }
  delete this;
}

bool File::readable() const {
  int f = flags();
  if (f & O_PATH) return false;
  return (f & O_ACCMODE) == O_RDONLY || (f & O_ACCMODE) == O_RDWR;
}

bool File::writable() const {
  int f = flags();
  if (f & O_PATH) return false;
  return (f & O_ACCMODE) == O_WRONLY || (f & O_ACCMODE) == O_RDWR;
}

uint64_t File::lock_pos() {
  MutexLocker g(lock_);
  while (pos_busy_) pos_cv_.wait(lock_);
  pos_busy_ = true;
  return pos_;
}

void File::unlock_pos(uint64_t pos) {
  MutexLocker g(lock_);
  pos_ = pos;
  pos_busy_ = false;
  pos_cv_.broadcast();
}

uint64_t File::pos() {
  MutexLocker g(lock_);
  return pos_;
}

void File::set_pos(uint64_t pos) {
  MutexLocker g(lock_);
  pos_ = pos;
}

// --- FileTable

FileTable::FileTable(Kmem& k) : kmem_(k) {}

// Files still here (a table retired by an unshare that a racing dup
// filled) close outside the table's lock: a file's last close takes its
// vnode's, which ranks below.
FileTable::~FileTable() { remove_all(); }

void FileTable::free_slots(Slot* s, size_t n) {
  for (size_t i = 0; i < n; i++) s[i].~Slot();
  Kmem::free(s);
}

Result<void> FileTable::grow_locked(size_t n) {
  if (n <= nslots_) return {};
  size_t want = nslots_ * 2 > n ? nslots_ * 2 : n;
  if (want < 8) want = 8;
  void* mem = kmem_.alloc(want * sizeof(Slot));
  if (!mem && want > n) mem = kmem_.alloc((want = n) * sizeof(Slot));
  if (!mem) return err(ENOMEM);
  auto* fresh = static_cast<Slot*>(mem);
  for (size_t i = 0; i < want; i++) new (&fresh[i]) Slot;
  for (size_t i = 0; i < nslots_; i++) {
    fresh[i].file = std::move(slots_[i].file);
    fresh[i].cloexec = slots_[i].cloexec;
  }
  free_slots(slots_, nslots_);
  slots_ = fresh;
  nslots_ = want;
  return {};
}

Result<Ref<FileTable>> FileTable::create(Kmem& k) {
  auto* t = new (k) FileTable(k);
  if (!t) return err(ENOMEM);
  return adopt_ref(t);
}

Result<Ref<FileTable>> FileTable::copy(Kmem& k) {
  Ref<FileTable> n = TRY(create(k));
  // Both locks have the same rank, and the new table is private until we
  // return: fill it without its lock (the analysis cannot see that).
  size_t want;
  {
    MutexLocker g(lock_);
    want = nslots_;
  }
  for (;;) {
    {
      MutexLocker g(n->lock_);
      TRY(n->grow_locked(want));
    }
    MutexLocker g(lock_);
    if (nslots_ > want) {  // grew meanwhile
      want = nslots_;
      continue;
    }
    copy_into(*n);
    return n;
  }
}

Result<int> FileTable::alloc(Ref<File> f, int minfd, bool cloexec, uint64_t limit) {
  MutexLocker g(lock_);
  size_t fd = static_cast<size_t>(minfd);
  while (fd < nslots_ && slots_[fd].file) fd++;
  if (fd >= limit) return err(EMFILE);
  TRY(grow_locked(fd + 1));
  slots_[fd].file = std::move(f);
  slots_[fd].cloexec = cloexec;
  return static_cast<int>(fd);
}

Result<RefPtr<File>> FileTable::install_at(Ref<File> f, int fd, bool cloexec, uint64_t limit) {
  if (fd < 0 || static_cast<uint64_t>(fd) >= limit) return err(EBADF);
  MutexLocker g(lock_);
  TRY(grow_locked(static_cast<size_t>(fd) + 1));
  RefPtr<File> old = std::move(slots_[fd].file);
  slots_[fd].file = std::move(f);
  slots_[fd].cloexec = cloexec;
  return old;
}

Result<Ref<File>> FileTable::get(int fd, bool* cloexec) {
  MutexLocker g(lock_);
  if (fd < 0 || static_cast<size_t>(fd) >= nslots_ || !slots_[fd].file) return err(EBADF);
  if (cloexec) *cloexec = slots_[fd].cloexec;
  return slots_[fd].file.to_ref();
}

Result<Ref<File>> FileTable::remove(int fd) {
  MutexLocker g(lock_);
  if (fd < 0 || static_cast<size_t>(fd) >= nslots_ || !slots_[fd].file) return err(EBADF);
  Ref<File> f = slots_[fd].file.to_ref();
  slots_[fd].file.reset();
  slots_[fd].cloexec = false;
  return f;
}

Result<void> FileTable::set_cloexec(int fd, bool on) {
  MutexLocker g(lock_);
  if (fd < 0 || static_cast<size_t>(fd) >= nslots_ || !slots_[fd].file) return err(EBADF);
  slots_[fd].cloexec = on;
  return {};
}

void FileTable::set_cloexec_range(unsigned lo, unsigned hi) {
  MutexLocker g(lock_);
  for (size_t fd = lo; fd < nslots_ && fd <= hi; fd++)
    if (slots_[fd].file) slots_[fd].cloexec = true;
}

RefPtr<File> FileTable::remove_next(unsigned* fd, unsigned hi) {
  MutexLocker g(lock_);
  for (size_t i = *fd; i < nslots_ && i <= hi; i++) {
    if (!slots_[i].file) continue;
    RefPtr<File> f = std::move(slots_[i].file);
    slots_[i].cloexec = false;
    *fd = static_cast<unsigned>(i) + 1;
    return f;
  }
  *fd = hi;
  return nullptr;
}

void FileTable::remove_all() {
  Slot* s;
  size_t n;
  {
    MutexLocker g(lock_);
    s = slots_;
    n = nslots_;
    slots_ = nullptr;
    nslots_ = 0;
  }
  free_slots(s, n);
}

// n is private to its maker (copy), who made room for nslots_ in it: it
// is filled without its lock, which has the same rank as ours.
void FileTable::copy_into(FileTable& n) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (size_t i = 0; i < nslots_; i++) {
    n.slots_[i].file = slots_[i].file;
    n.slots_[i].cloexec = slots_[i].cloexec;
  }
}

// --- ProcVfs

ProcVfs::~ProcVfs() {
  Retired* r;
  {
    SpinLocker g(fdt_lock_);
    r = std::exchange(retired_, nullptr);
  }
  while (r) delete std::exchange(r, r->next);
  if (FileTable* t = fdt_.exchange(nullptr)) {
    Ref<FileTable> drop = adopt_ref(t);
  }
}

void ProcVfs::init_fdt(Ref<FileTable> t) {
  t->holders_.fetch_add(1, std::memory_order_acq_rel);
  SpinLocker g(fdt_lock_);
  fdt_.store(t.leak(), std::memory_order_release);
}

Result<void> ProcVfs::replace_fdt(Ref<FileTable> t) {
  // The retired entry first: past this point nothing can fail.
  auto* r = new (t->kmem_) Retired(Ref<FileTable>(t), nullptr);
  if (!r) return err(ENOMEM);
  t->holders_.fetch_add(1, std::memory_order_acq_rel);
  FileTable* old;
  {
    SpinLocker g(fdt_lock_);
    old = fdt_.exchange(t.leak(), std::memory_order_acq_rel);
    // The entry keeps old's reference (the one fdt_ held) in place of t's.
    r->table = adopt_ref(old);
    r->next = retired_;
    retired_ = r;
  }
  // Nobody else holds the old table: its files close now (a sibling still
  // looking into it finds it empty, as if its call came after).
  if (old->holders_.fetch_sub(1, std::memory_order_acq_rel) == 1) old->remove_all();
  return {};
}

RefPtr<FileTable> ProcVfs::release_fdt(bool* last) {
  FileTable* t;
  {
    SpinLocker g(fdt_lock_);
    t = fdt_.exchange(nullptr, std::memory_order_acq_rel);
  }
  *last = false;
  if (!t) return nullptr;
  *last = t->holders_.fetch_sub(1, std::memory_order_acq_rel) == 1;
  return RefPtr<FileTable>(adopt_ref(t));
}

Ref<Vnode> ProcVfs::cwd() {
  MutexLocker g(lock_);
  return cwd_.to_ref();
}

Ref<Vnode> ProcVfs::root() {
  MutexLocker g(lock_);
  return root_.to_ref();
}

void ProcVfs::set_cwd(Ref<Vnode> vp) {
  mount_use(*vp);
  RefPtr<Vnode> old(std::move(vp));
  {
    MutexLocker g(lock_);
    std::swap(old, cwd_);
  }
  release_use(old);
}

RefPtr<Vnode> ProcVfs::exe() {
  MutexLocker g(lock_);
  return exe_;
}

void ProcVfs::set_exe(RefPtr<Vnode> vp) {
  if (vp) mount_use(*vp);
  RefPtr<Vnode> old(std::move(vp));
  {
    MutexLocker g(lock_);
    std::swap(old, exe_);
  }
  if (old) old->allow_write_access();
  release_use(old);
}

namespace {

// Is vp mapped anywhere in l's address space? (An isolated space's map
// says; the host's keeps none the kernel sees.)
bool mapped_in(Lwp& l, Vnode& vp) {
  UserSpace* us = l.user_space();
  if (!us) return false;
  bool found = false;
  us->for_each_mapping([&](const UserSpace::Mapping& m) {
    if (auto* pager = dynamic_cast<VnodePager*>(m.backing)) found |= &pager->vnode() == &vp;
  });
  return found;
}

// prctl(PR_SET_MM, PR_SET_MM_EXE_FILE, fd), Linux's checks: EBADF; a file
// that is not regular, on a noexec mount, or not executable by the
// caller: EACCES; the old executable still mapped: EBUSY; the new one
// open for writing somewhere: EACCES (Linux's replace_mm_exe_file). The
// executable then denies writing (ETXTBSY) until it is replaced or the
// process goes.
Result<void> set_exe_file(Lwp& l, int fd) {
  Ref<File> f = TRY(fd_get(l, fd));  // not O_PATH (Linux's fdget)
  Vnode* vp = f->vnode();
  if (!vp || vp->type() != VType::kReg || (vp->mount().flags_.load() & MS_NOEXEC)) return err(EACCES);
  TRY(vaccess(l, *vp, X_OK));
  ProcVfs& pv = proc_vfs(l.proc());
  if (RefPtr<Vnode> old = pv.exe())
    if (mapped_in(l, *old)) return err(EBUSY);
  if (!vp->deny_write_access().ok()) return err(EACCES);
  pv.set_exe(RefPtr<Vnode>(vp));
  return {};
}

struct ExeHookRegistrar {
  ExeHookRegistrar() { set_exe_file_hook(&set_exe_file); }
} g_exe_hook_registrar;

}  // namespace

void ProcVfs::set_root(Ref<Vnode> vp) {
  mount_use(*vp);
  RefPtr<Vnode> old(std::move(vp));
  {
    MutexLocker g(lock_);
    std::swap(old, root_);
  }
  release_use(old);
}

void release_use(RefPtr<Vnode>& vp) {
  if (!vp) return;
  mount_unuse(*vp);
  vp.reset();
}

// --- descriptors

uint64_t nofile_limit(Proc& p) {
  MutexLocker g(p.lock_);
  rlim_t cur = p.rlimits_[RLIMIT_NOFILE].rlim_cur;
  constexpr uint64_t kHardMax = 1024 * 1024;  // Linux's fs.nr_open default
  return cur == RLIM_INFINITY || cur > kHardMax ? kHardMax : cur;
}

namespace {

// Runs op(table) on the process's table; if it fails while a sibling
// replaced the table (close_range's unshare, whose old table may have
// been emptied under the call), runs it again on the new one: the call
// then counts as made after the unshare.
template <class Op>
auto on_table(ProcVfs& pv, Op op) {
  FileTable* t = &pv.table();
  auto r = op(*t);
  while (__builtin_expect(!r.ok(), 0) && &pv.table() != t) {
    t = &pv.table();
    r = op(*t);
  }
  return r;
}

}  // namespace

Result<Ref<File>> fd_get(Lwp& l, int fd, bool allow_path) {
  Ref<File> f = TRY(on_table(proc_vfs(l.proc()), [fd](FileTable& t) { return t.get(fd); }));
  if (!allow_path && (f->flags() & O_PATH)) return err(EBADF);
  return f;
}

Result<int> fd_install(Lwp& l, Ref<File> f, bool cloexec) {
  return proc_vfs(l.proc()).table().alloc(std::move(f), 0, cloexec, nofile_limit(l.proc()));
}

Result<void> fd_close(Lwp& l, int fd) {
  Ref<File> f = TRY(on_table(proc_vfs(l.proc()), [fd](FileTable& t) { return t.remove(fd); }));
  if (Vnode* vp = f->vnode()) adv_release_proc(l.kernel(), *vp, l.proc());
  return {};
}

// --- FileOps of vnode-backed files

namespace {

constexpr size_t kChunk = 64 * 1024;
// The largest file offset write(2) reaches (Linux's MAX_LFS_FILESIZE).
constexpr uint64_t kMaxFileOffset = INT64_MAX;

// Runs io (a read or write through a file cache). Near the kernel's
// memory limit, or when io found no memory, other caches give back pages
// first (and io is tried once more).
template <class Io>
auto cache_io(Vnode& vp, Io io) -> decltype(io()) {
  Kernel& k = vp.mount().kernel();
  Kmem& km = k.kmem();
  if (km.limit() != 0 && km.in_use() > km.limit() / 8 * 7) page_cache_reclaim(k);
  auto r = io();
  if (!r.ok() && r.error() == ENOMEM && page_cache_reclaim(k)) r = io();
  return r;
}

// A writer that finds more dirty pages in the kernel than the dirty limit
// writes its own file back (Linux's balance_dirty_pages, simplified).
void throttle_dirty(Vnode& vp, VnodePager& cache) {
  PageCache* pc = page_cache(vp.mount().kernel());
  if (pc == nullptr || pc->dirty_pages_.load(std::memory_order_relaxed) <= pc->dirty_limit_) return;
  // An error stays recorded in the vnode for the next fsync.
  (void)cache.flush();
}

class VnodeFileOps : public FileOps {
 public:
  Result<size_t> read(File& f, Uio& uio, uint64_t& off) const override {
    Vnode& vp = *f.vnode();
    if (vp.is_dir()) return err(EISDIR);
    size_t want = uio.resid;
    if (want == 0) return size_t{0};
    size_t chunk = want < kChunk ? want : kChunk;
    Kmem& km = vp.mount().kernel().kmem();
    void* buf = km.alloc(chunk);
    if (!buf) return err(ENOMEM);
    VnodePager* cache = file_cache(f);
    if (cache == nullptr) vnode_host_sync(vp, off, want);
    size_t done = 0;
    int error = 0;
    while (done < want) {
      size_t n = want - done < chunk ? want - done : chunk;
      Result<size_t> r = cache ? cache_io(vp, [&] { return cache->read_cached(buf, n, off + done); })
                               : [&]() -> Result<size_t> {
        MutexLocker g(vp.mount().lock_);
        return vp.read(buf, n, off + done);
      }();
      if (!r.ok()) {
        error = r.error();
        break;
      }
      if (r.value() == 0) break;
      Result<void> c = uio.copyout(buf, r.value());
      if (!c.ok()) {
        error = c.error();
        break;
      }
      done += r.value();
      if (r.value() < n) break;
    }
    Kmem::free(buf);
    if (done == 0 && error) return err(error);
    off += done;
    return done;
  }

  Result<size_t> write(File& f, Uio& uio, uint64_t& off) const override {
    Vnode& vp = *f.vnode();
    size_t want = uio.resid;
    if (want == 0) return size_t{0};
    size_t chunk = want < kChunk ? want : kChunk;
    Kmem& km = vp.mount().kernel().kmem();
    void* buf = km.alloc(chunk);
    if (!buf) return err(ENOMEM);
    bool append = f.flags() & O_APPEND;
    VnodePager* cache = file_cache(f);
    size_t done = 0;
    int error = 0;
    while (done < want) {
      size_t n = want - done < chunk ? want - done : chunk;
      Result<void> c = uio.copyin(buf, n);
      if (!c.ok()) {
        error = c.error();
        break;
      }
      bool cached = cache != nullptr;
      if (cached) {
        // Append-only and immutable files are written straight through
        // (the file system checks them; growing one by truncation would be
        // refused), after the cache's dirty pages, which the write's stale
        // pages would otherwise take with them.
        Result<uint32_t> fl = [&] {
          MutexLocker g(vp.mount().lock_);
          return vp.inode_flags();
        }();
        if (fl.ok() && (fl.value() & (FS_APPEND_FL | FS_IMMUTABLE_FL))) {
          cached = false;
          (void)cache->flush();
        }
      }
      StalePages stale;  // the mapped pages this write changes
      bool grew = false;
      uint64_t grown_from = 0;
      Result<size_t> r = [&]() -> Result<size_t> {
        MutexLocker g(vp.mount().lock_);
        if (append || done == 0) {
          Vattr va;
          vp.getattr(va);
          if (append) off = va.size;
          // A write by anyone but root takes away set-user-ID, and
          // set-group-ID when the group may execute (Linux's rule).
          if (done == 0 && uio.lwp && !uio.lwp->cred().is_root()) {
            mode_t kill = va.mode & S_ISUID;
            if ((va.mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) kill |= S_ISGID;
            if (kill) {
              SetAttr sa;
              sa.mask = SetAttr::kMode;
              sa.mode = va.mode & ~kill;
              TRY(vp.setattr(sa));
            }
          }
        }
        size_t allowed = TRY(seals_check_write(vp, off, n));
        if (cached) {
          // The bytes go to the cache; the file grows now (a hole until
          // write-back), so stat and readers see the new size.
          if (allowed == 0) return size_t{0};
          if (off > kMaxFileOffset - allowed) return err(EFBIG);
          Vattr cur;
          vp.getattr(cur);
          if (off + allowed > cur.size) {
            // Growing sets the modification and change times too.
            PageIo* io = cache->page_io();
            TRY(io ? io->grow_for_cache(off + allowed) : vp.truncate(off + allowed));
            grew = true;
            grown_from = cur.size;
          } else {
            vp.touch(2 | 4);
          }
          return allowed;
        }
        Result<size_t> w = vp.write(buf, allowed, off);
        if (w.ok()) {
          stale.note_locked(vp, off, w.value());
          off += w.value();
        }
        return w;
      }();
      if (r.ok() && cached && r.value() > 0) {
        uint64_t at = off;
        Result<size_t> c = cache_io(vp, [&] { return cache->write_cached(buf, r.value(), at); });
        size_t wrote = c.ok() ? c.value() : 0;
        if (wrote < r.value() && grew) {
          // No room for the rest (ENOSPC, or no memory for a page): the
          // file ends where the bytes written end (where it ended, when
          // none were), unless someone wrote past them meanwhile.
          MutexLocker g(vp.mount().lock_);
          Vattr cur;
          vp.getattr(cur);
          uint64_t end = wrote > 0 ? std::max<uint64_t>(grown_from, at + wrote) : grown_from;
          if (cur.size == at + r.value() && end < cur.size) {
            PageIo* io = cache->page_io();
            (void)(io ? io->ungrow_for_cache(grown_from, end) : vp.truncate(end));
          }
        }
        if (!c.ok()) {
          r = err(c.error());
        } else {
          off += wrote;
          r = wrote;
          if (grew) cache->host_views_grow();
          throttle_dirty(vp, *cache);
        }
      }
      if (!r.ok()) {
        error = r.error();
        break;
      }
      done += r.value();
      if (r.value() < n) break;
    }
    Kmem::free(buf);
    if (done == 0 && error) return err(error);
    return done;
  }

  Result<long> ioctl(File& f, Lwp& l, unsigned long cmd, uintptr_t arg) const override {
    Vnode& vp = *f.vnode();
    if (cmd == FIONREAD && vp.type() == VType::kReg) {
      Vattr va = getattr(vp);
      uint64_t pos = f.pos();
      int n = va.size > pos ? static_cast<int>(va.size - pos > 0x7fffffff ? 0x7fffffff : va.size - pos) : 0;
      TRY(copyout_obj(l, n, UserPtr<int>{arg}));
      return 0;
    }
    if (cmd == FS_IOC_GETFLAGS || cmd == FS_IOC_GETVERSION) {
      uint32_t v;
      {
        MutexLocker g(vp.mount().lock_);
        v = TRY(cmd == FS_IOC_GETFLAGS ? vp.inode_flags() : vp.generation());
      }
      TRY(copyout_obj(l, static_cast<int>(v), UserPtr<int>{arg}));
      return 0;
    }
    if (cmd == FS_IOC_SETFLAGS) {
      // Linux's order: a writable mount, the flags word, the owner, the
      // privilege to change immutable or append-only.
      TRY(check_writable_mount(vp));
      uint32_t want = static_cast<uint32_t>(TRY(copyin_obj(l, UserPtr<int>{arg})));
      Vattr va = getattr(vp);
      const Cred& c = l.cred();
      // CAP_LINUX_IMMUTABLE (<linux/capability.h>).
      constexpr int kCapLinuxImmutable = 9;
      if (!c.capable(kCapFowner) && c.euid != va.uid) return err(EPERM);
      MutexLocker g(vp.mount().lock_);
      uint32_t old = TRY(vp.inode_flags());
      if (((old ^ want) & (FS_IMMUTABLE_FL | FS_APPEND_FL)) && !c.capable(kCapLinuxImmutable)) return err(EPERM);
      TRY(vp.set_inode_flags(want));
      return 0;
    }
    return err(ENOTTY);
  }

  bool seekable() const override { return true; }
};

class PathFileOps : public FileOps {};

const VnodeFileOps g_vnode_ops;
const PathFileOps g_path_ops;

}  // namespace

const FileOps& kVnodeFileOps = g_vnode_ops;
const FileOps& kPathFileOps = g_path_ops;

Result<Ref<File>> FileOps::reopen(File&, Lwp&, int) const { return err(ENXIO); }

namespace {

// An O_PATH description of an object with no vnode, made through a magic
// link (FileOps::open_path's default): what fstat and readlink showed of
// the object when it was made.
struct PathSnapshot : KObject {
  struct stat st;
  size_t link_len = 0;
  char link[96];
};

class SnapshotPathOps : public FileOps {
 public:
  Result<void> stat(File& f, struct stat* st) const override {
    *st = static_cast<const PathSnapshot*>(f.data_)->st;
    return {};
  }
  size_t link_name(File& f, char* buf, size_t cap) const override {
    const auto* s = static_cast<const PathSnapshot*>(f.data_);
    size_t n = s->link_len < cap ? s->link_len : cap;
    std::memcpy(buf, s->link, n);
    return n;
  }
  void close(File& f) const override {
    delete static_cast<PathSnapshot*>(f.data_);
    f.data_ = nullptr;
  }
};

const SnapshotPathOps g_snapshot_path_ops;

}  // namespace

Result<Ref<File>> FileOps::open_path(File& f, Lwp& l, int flags) const {
  Kmem& km = l.kernel().kmem();
  auto* s = new (km) PathSnapshot;
  if (!s) return err(ENOMEM);
  std::memset(&s->st, 0, sizeof s->st);
  Result<void> r = stat(f, &s->st);
  if (!r.ok()) {
    delete s;
    return err(r.error());
  }
  s->link_len = link_name(f, s->link, sizeof s->link);
  Result<Ref<File>> nf = File::create(km, &g_snapshot_path_ops, nullptr, flags);
  if (!nf.ok()) {
    delete s;
    return err(nf.error());
  }
  nf.value()->data_ = s;
  return nf;
}

size_t FileOps::link_name(File& f, char* buf, size_t cap) const {
  int n = 0;
  if (const char* a = anon_name()) {
    n = std::snprintf(buf, cap, "anon_inode:%s", a);
  } else if (!f.vnode()) {
    struct stat st;
    if (!stat(f, &st).ok()) return 0;
    const char* kind = S_ISFIFO(st.st_mode) ? "pipe" : S_ISSOCK(st.st_mode) ? "socket" : nullptr;
    if (!kind) return 0;
    n = std::snprintf(buf, cap, "%s:[%llu]", kind, static_cast<unsigned long long>(st.st_ino));
  }
  if (n <= 0) return 0;
  return static_cast<size_t>(n) < cap ? static_cast<size_t>(n) : cap;
}

Result<void> anon_inode_stat(const File& f, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_mode = 0600;
  st->st_nlink = 1;
  st->st_blksize = 4096;
  st->st_ino = reinterpret_cast<uintptr_t>(f.data_) >> 4;
  return {};
}

}  // namespace rump
