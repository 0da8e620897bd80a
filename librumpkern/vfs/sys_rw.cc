// Data system calls: read/write and their positional and vector forms,
// lseek, truncation, fallocate, sync, sendfile, copy_file_range.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include "absl/cleanup/cleanup.h"
#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "vfs/vfs.h"
#include "vfs/vnode_pager.h"

namespace rump {

namespace {

constexpr int kIovMax = 1024;  // UIO_MAXIOV
constexpr size_t kMaxRw = 0x7ffff000;  // Linux's MAX_RW_COUNT

// One transfer through f: pos < 0 uses (and advances) the file position.
Result<long> do_rw(Lwp& l, int fd, const iovec* iov, int iovcnt, int64_t pos, bool write) {
  Ref<File> f = TRY(fd_get(l, fd));
  if (write ? !f->writable() : !f->readable()) return err(EBADF);
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++) {
    if (iov[i].iov_len > static_cast<size_t>(SSIZE_MAX) - total) return err(EINVAL);
    total += iov[i].iov_len;
  }
  if (total > kMaxRw) total = kMaxRw;
  const FileOps& ops = f->ops();
  if (pos >= 0 && !ops.seekable()) return err(ESPIPE);
  Uio uio{&l, iov, iovcnt, total};
  if (pos >= 0 || !ops.seekable()) {
    uint64_t off = pos >= 0 ? static_cast<uint64_t>(pos) : 0;
    // pwrite on an O_APPEND file appends anyway (Linux).
    return TRY(write ? ops.write(*f, uio, off) : ops.read(*f, uio, off));
  }
  uint64_t off = f->lock_pos();
  Result<size_t> r = write ? ops.write(*f, uio, off) : ops.read(*f, uio, off);
  f->unlock_pos(off);
  return TRY(std::move(r));
}

Result<long> do_rw1(Lwp& l, int fd, uintptr_t buf, size_t count, int64_t pos, bool write) {
  iovec iov{reinterpret_cast<void*>(buf), count};
  if (count > static_cast<size_t>(SSIZE_MAX)) iov.iov_len = kMaxRw;
  return do_rw(l, fd, &iov, 1, pos, write);
}

Result<long> do_rwv(Lwp& l, int fd, UserPtr<void> uiov, int iovcnt, int64_t pos, bool write) {
  if (iovcnt < 0 || iovcnt > kIovMax) return err(EINVAL);
  Kmem& km = l.kernel().kmem();
  auto* iov = static_cast<iovec*>(km.alloc(sizeof(iovec) * (iovcnt ? iovcnt : 1)));
  if (!iov) return err(ENOMEM);
  absl::Cleanup f = [&] { Kmem::free(iov); };
  TRY(copyin(l, uiov.addr, iov, sizeof(iovec) * iovcnt));
  return do_rw(l, fd, iov, iovcnt, pos, write);
}

}  // namespace

Result<long> sys_read(Lwp& l, int fd, UserPtr<void> buf, size_t count) {
  return do_rw1(l, fd, buf.addr, count, -1, false);
}
Result<long> sys_write(Lwp& l, int fd, UserPtr<void> buf, size_t count) {
  return do_rw1(l, fd, buf.addr, count, -1, true);
}
Result<long> sys_pread64(Lwp& l, int fd, UserPtr<void> buf, size_t count, off_t offset) {
  if (offset < 0) return err(EINVAL);
  return do_rw1(l, fd, buf.addr, count, offset, false);
}
Result<long> sys_pwrite64(Lwp& l, int fd, UserPtr<void> buf, size_t count, off_t offset) {
  if (offset < 0) return err(EINVAL);
  return do_rw1(l, fd, buf.addr, count, offset, true);
}
Result<long> sys_readv(Lwp& l, int fd, UserPtr<void> iov, int iovcnt) { return do_rwv(l, fd, iov, iovcnt, -1, false); }
Result<long> sys_writev(Lwp& l, int fd, UserPtr<void> iov, int iovcnt) { return do_rwv(l, fd, iov, iovcnt, -1, true); }
Result<long> sys_preadv(Lwp& l, int fd, UserPtr<void> iov, int iovcnt, off_t offset) {
  if (offset < 0) return err(EINVAL);
  return do_rwv(l, fd, iov, iovcnt, offset, false);
}
Result<long> sys_pwritev(Lwp& l, int fd, UserPtr<void> iov, int iovcnt, off_t offset) {
  if (offset < 0) return err(EINVAL);
  return do_rwv(l, fd, iov, iovcnt, offset, true);
}

Result<long> sys_lseek(Lwp& l, int fd, off_t offset, int whence) {
  Ref<File> f = TRY(fd_get(l, fd));
  if (!f->ops().seekable() || !f->vnode()) return err(ESPIPE);
  Vnode& vp = *f->vnode();
  uint64_t cur = f->lock_pos();
  int64_t npos = -1;
  int error = 0;
  switch (whence) {
    case SEEK_SET: npos = offset; break;
    case SEEK_CUR: npos = static_cast<int64_t>(cur) + offset; break;
    case SEEK_END:
      if (vp.is_dir()) error = EINVAL;
      else npos = static_cast<int64_t>(getattr(vp).size) + offset;
      break;
    case SEEK_DATA:
    case SEEK_HOLE: {
      if (vp.is_dir() || offset < 0) {
        error = vp.is_dir() ? EINVAL : ENXIO;
        break;
      }
      // Cached pages become data (blocks) at write-back.
      (void)vnode_flush(vp);
      MutexLocker g(vp.mount().lock_);
      Result<uint64_t> r = vp.seek_data(static_cast<uint64_t>(offset), whence == SEEK_HOLE);
      if (r.ok()) npos = static_cast<int64_t>(r.value());
      else error = r.error();
      break;
    }
    default: error = EINVAL;
  }
  if (!error && npos < 0) error = EINVAL;
  f->unlock_pos(error ? cur : static_cast<uint64_t>(npos));
  if (error) return err(error);
  return npos;
}

namespace {

Result<void> do_truncate(Lwp& l, Vnode& vp, off_t length) {
  if (length < 0) return err(EINVAL);
  if (vp.is_dir()) return err(EISDIR);
  if (vp.type() != VType::kReg) return err(EINVAL);
  TRY(check_writable_mount(vp));
  // Cached bytes below the new end must reach the file before it shrinks.
  TRY(vnode_flush(vp));
  StalePages stale;
  MutexLocker g(vp.mount().lock_);
  TRY(seals_check_resize(vp, static_cast<uint64_t>(length)));
  // Pages from the old or the new end on (whichever is lower) change: the
  // tail of the last page reads as zero, pages past the end are gone.
  uint64_t size = static_cast<uint64_t>(length);
  Vattr va;
  vp.getattr(va);
  stale.note_locked(vp, std::min(size, va.size), VnodePager::kToEnd);
  return vp.truncate(size);
}

}  // namespace

Result<long> sys_truncate(Lwp& l, UserPtr<char> upath, off_t length) {
  char* path = static_cast<char*>(l.kernel().kmem().alloc(kPathMax));
  if (!path) return err(ENOMEM);
  absl::Cleanup f = [&] { Kmem::free(path); };
  TRY(copyin_path(l, upath, path));
  Ref<Vnode> vp = TRY(namei(l, AT_FDCWD, path, kFollow));
  if (vp->is_dir()) return err(EISDIR);
  TRY(vaccess(l, *vp, W_OK));
  // Not a process's executable (ETXTBSY), as Linux's vfs_truncate.
  TRY(vp->get_write_access());
  Result<void> r = do_truncate(l, *vp, length);
  vp->put_write_access();
  TRY(std::move(r));
  return 0;
}

Result<long> sys_ftruncate(Lwp& l, int fd, off_t length) {
  Ref<File> f = TRY(fd_get(l, fd));
  if (!f->vnode() || !f->writable()) return err(EINVAL);
  if (length < 0) return err(EINVAL);
  if (f->vnode()->type() != VType::kReg) return err(EINVAL);
  TRY(do_truncate(l, *f->vnode(), length));
  return 0;
}

Result<long> sys_fallocate(Lwp& l, int fd, int mode, off_t offset, off_t len) {
  if (offset < 0 || len <= 0) return err(EINVAL);
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) return err(EOPNOTSUPP);
  if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE)) return err(EOPNOTSUPP);
  Ref<File> f = TRY(fd_get(l, fd));
  if (!f->writable()) return err(EBADF);
  Vnode* vp = f->vnode();
  if (!vp) return err(ESPIPE);
  if (vp->is_dir()) return err(EISDIR);
  if (vp->type() == VType::kFifo) return err(ESPIPE);
  if (vp->type() != VType::kReg) return err(ENODEV);
  if (offset > INT64_MAX - len) return err(EFBIG);
  TRY(check_writable_mount(*vp));
  int m = 0;
  if (mode & FALLOC_FL_KEEP_SIZE) m |= kFallocKeepSize;
  if (mode & FALLOC_FL_PUNCH_HOLE) m |= kFallocPunchHole;
  TRY(vnode_flush(*vp));
  StalePages stale;
  MutexLocker g(vp->mount().lock_);
  TRY(seals_check_fallocate(*vp, m, static_cast<uint64_t>(offset), static_cast<uint64_t>(len)));
  TRY(vp->fallocate(m, static_cast<uint64_t>(offset), static_cast<uint64_t>(len)));
  stale.note_locked(*vp, static_cast<uint64_t>(offset), static_cast<uint64_t>(len));
  return 0;
}

// fsync writes the file's cached pages back first (without the tree lock:
// the page lock ranks below it), then asks the file system to make them
// durable. A write-back error this description has not seen is reported
// once (Linux's errseq), whether it came now or from earlier write-back.
Result<long> sys_fsync(Lwp& l, int fd) {
  Ref<File> f = TRY(fd_get(l, fd));
  if (Vnode* vp = f->vnode()) {
    (void)vnode_flush(*vp);  // a failure is recorded in the vnode
    Result<void> r = [&] {
      MutexLocker g(vp->mount().lock_);
      return vp->fsync();
    }();
    if (!r.ok()) vnode_record_wb_error(*vp, r.error());
    if (int e = file_check_wb_error(*f)) return err(e);
  }
  return 0;
}

Result<long> sys_fdatasync(Lwp& l, int fd) { return sys_fsync(l, fd); }
// sync writes every file system back (errors are not reported, as on
// Linux); syncfs the one fd is on.
Result<long> sys_sync(Lwp& l) {
  VfsState& st = vfs_state(l.kernel());
  (void)page_cache_flush_all(l.kernel());
  MutexLocker g(st.mount_lock_);
  for (Mount& m : st.mounts_) {
    MutexLocker mg(m.lock_);
    (void)m.sync();
  }
  return 0;
}
Result<long> sys_syncfs(Lwp& l, int fd) {
  Ref<File> f = TRY(fd_get(l, fd));
  if (Vnode* vp = f->vnode()) {
    (void)page_cache_flush_all(l.kernel(), &vp->mount());
    {
      MutexLocker g(vp->mount().lock_);
      TRY(vp->mount().sync());
    }
    if (int e = file_check_wb_error(*f)) return err(e);
  }
  return 0;
}

// --- copies between files, through a kernel buffer

namespace {

constexpr size_t kCopyChunk = 64 * 1024;

// Copies up to len bytes from fin at *in_off (nullptr: its position) to
// fout at *out_off (nullptr: its position).
Result<long> copy_range(Lwp& l, File& fin, int64_t* in_off, File& fout, int64_t* out_off, size_t len) {
  if (len > kMaxRw) len = kMaxRw;
  if (len == 0) return 0;
  Kmem& km = l.kernel().kmem();
  size_t chunk = len < kCopyChunk ? len : kCopyChunk;
  void* buf = km.alloc(chunk);
  if (!buf) return err(ENOMEM);
  absl::Cleanup fr = [&] { Kmem::free(buf); };
  size_t done = 0;
  int error = 0;
  while (done < len) {
    size_t n = len - done < chunk ? len - done : chunk;
    iovec kiov{buf, n};
    Uio rin{&l, &kiov, 1, n};
    rin.kernel = true;
    uint64_t ioff = in_off ? static_cast<uint64_t>(*in_off) : fin.lock_pos();
    Result<size_t> r = fin.ops().read(fin, rin, ioff);
    if (in_off) *in_off = static_cast<int64_t>(ioff);
    else fin.unlock_pos(ioff);
    if (!r.ok()) {
      error = r.error();
      break;
    }
    if (r.value() == 0) break;
    iovec wiov{buf, r.value()};
    Uio wout{&l, &wiov, 1, r.value()};
    wout.kernel = true;
    uint64_t ooff = out_off ? static_cast<uint64_t>(*out_off) : fout.lock_pos();
    Result<size_t> w = fout.ops().write(fout, wout, ooff);
    if (out_off) *out_off = static_cast<int64_t>(ooff);
    else fout.unlock_pos(ooff);
    if (!w.ok()) {
      error = w.error();
      break;
    }
    done += w.value();
    if (w.value() < r.value() || r.value() < n) break;
  }
  if (done == 0 && error) return err(error);
  return static_cast<long>(done);
}

}  // namespace

Result<long> sys_sendfile(Lwp& l, int out_fd, int in_fd, UserPtr<off_t> offset, size_t count) {
  Ref<File> fin = TRY(fd_get(l, in_fd));
  Ref<File> fout = TRY(fd_get(l, out_fd));
  if (!fin->readable() || !fout->writable()) return err(EBADF);
  if (!fin->vnode() || fin->vnode()->type() != VType::kReg) return err(EINVAL);
  if (fout->flags() & O_APPEND) return err(EINVAL);
  if (offset.is_null()) return copy_range(l, *fin, nullptr, *fout, nullptr, count);
  int64_t off = TRY(copyin_obj(l, offset));
  if (off < 0) return err(EINVAL);
  long n = TRY(copy_range(l, *fin, &off, *fout, nullptr, count));
  TRY(copyout_obj(l, off, offset));
  return n;
}

// Linux's order (the syscall, then vfs_copy_file_range and its generic
// checks): descriptors (EBADF), offsets copied in (EFAULT), flags (EINVAL),
// the kinds of file (EISDIR, then EINVAL), the open modes (EBADF),
// offsets that wrap (EOVERFLOW); then the count is cut at the input's end
// of file, an overlap within one file (EINVAL) is judged on what is left,
// and a negative offset is EINVAL. A copy that is left with nothing to do
// returns 0.
Result<long> sys_copy_file_range(Lwp& l, int fd_in, UserPtr<off_t> off_in, int fd_out, UserPtr<off_t> off_out,
                                 size_t len, unsigned int flags) {
  Ref<File> fin = TRY(fd_get(l, fd_in));
  Ref<File> fout = TRY(fd_get(l, fd_out));
  int64_t in = static_cast<int64_t>(fin->pos());
  if (!off_in.is_null()) in = TRY(copyin_obj(l, off_in));
  int64_t out = static_cast<int64_t>(fout->pos());
  if (!off_out.is_null()) out = TRY(copyin_obj(l, off_out));
  if (flags != 0) return err(EINVAL);
  Vnode* vin = fin->vnode();
  Vnode* vout = fout->vnode();
  if ((vin && vin->is_dir()) || (vout && vout->is_dir())) return err(EISDIR);
  if (!vin || !vout || vin->type() != VType::kReg || vout->type() != VType::kReg) return err(EINVAL);
  if (!fin->readable() || !fout->writable() || (fout->flags() & O_APPEND)) return err(EBADF);
  // Offsets and the count as Linux compares them: as unsigned 64-bit sums.
  uint64_t uin = static_cast<uint64_t>(in), uout = static_cast<uint64_t>(out);
  uint64_t count = len;
  if (uin + count < uin || uout + count < uout) return err(EOVERFLOW);
  int64_t size_in = static_cast<int64_t>(getattr(*vin).size);
  count = in >= size_in ? 0 : std::min<uint64_t>(count, static_cast<uint64_t>(size_in) - uin);
  if (vin == vout && uout + count > uin && uout < uin + count) return err(EINVAL);
  if (in < 0 || out < 0) return err(EINVAL);
  if (count == 0) return 0;
  long n = TRY(copy_range(l, *fin, off_in.is_null() ? nullptr : &in, *fout, off_out.is_null() ? nullptr : &out,
                          static_cast<size_t>(count)));
  if (!off_in.is_null()) TRY(copyout_obj(l, in, off_in));
  if (!off_out.is_null()) TRY(copyout_obj(l, out, off_out));
  return n;
}

}  // namespace rump
