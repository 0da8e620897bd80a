// file.cc: host files for block devices and etfs: open/close, what a path
// is and how big, scatter/gather I/O and sync. Calls that wait for the
// host's storage give the virtual CPU back (KLOCK wrap).
#include <rump/rumpuser.h>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>

#include "rumpuser_int.h"

using rumpuser_int::KlockWrap;
using rumpuser_int::retry_eintr;

static_assert(sizeof(rumpuser_iovec) == sizeof(struct iovec) &&
                  offsetof(rumpuser_iovec, iov_base) == offsetof(struct iovec, iov_base) &&
                  offsetof(rumpuser_iovec, iov_len) == offsetof(struct iovec, iov_len),
              "rumpuser_iovec must be layout-compatible with struct iovec");

extern "C" int rumpuser_open(const char* path, int ruflags, int* fdp) {
  int flags;
  switch (ruflags & RUMPUSER_OPEN_ACCMODE) {
    case RUMPUSER_OPEN_RDONLY: flags = O_RDONLY; break;
    case RUMPUSER_OPEN_WRONLY: flags = O_WRONLY; break;
    case RUMPUSER_OPEN_RDWR: flags = O_RDWR; break;
    default: return EINVAL;
  }
  if (ruflags & RUMPUSER_OPEN_CREATE) flags |= O_CREAT;
  if (ruflags & RUMPUSER_OPEN_EXCL) flags |= O_EXCL;
  flags |= O_CLOEXEC;
  // RUMPUSER_OPEN_BIO needs nothing special here: the page cache of the
  // host is fine for an image file.

  int fd;
  {
    KlockWrap wrap;
    fd = retry_eintr([&] { return open(path, flags, 0644); });
  }
  if (fd < 0) return errno;
  *fdp = fd;
  return 0;
}

extern "C" int rumpuser_close(int fd) {
  // No retry on EINTR: on Linux the descriptor is gone either way.
  if (close(fd) != 0 && errno != EINTR) return errno;
  return 0;
}

extern "C" int rumpuser_getfileinfo(const char* path, uint64_t* sizep, int* typep) {
  struct stat st;
  if (stat(path, &st) != 0) return errno;

  int type;
  uint64_t size = static_cast<uint64_t>(st.st_size);
  switch (st.st_mode & S_IFMT) {
    case S_IFDIR: type = RUMPUSER_FT_DIR; break;
    case S_IFREG: type = RUMPUSER_FT_REG; break;
    case S_IFBLK: type = RUMPUSER_FT_BLK; break;
    case S_IFCHR: type = RUMPUSER_FT_CHR; break;
    default: type = RUMPUSER_FT_OTHER; break;
  }
  if (type == RUMPUSER_FT_BLK && sizep != nullptr) {
    // st_size of a block device is 0; ask the device.
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    uint64_t bytes = 0;
    int rv = ioctl(fd, BLKGETSIZE64, &bytes) == 0 ? 0 : errno;
    close(fd);
    if (rv != 0) return rv;
    size = bytes;
  }
  if (sizep != nullptr) *sizep = size;
  if (typep != nullptr) *typep = type;
  return 0;
}

extern "C" int rumpuser_iovread(int fd, struct rumpuser_iovec* ruiov, size_t iovcnt, int64_t off,
                                size_t* retv) {
  if (iovcnt > IOV_MAX) return EINVAL;
  auto* iov = reinterpret_cast<const struct iovec*>(ruiov);
  int cnt = static_cast<int>(iovcnt);
  ssize_t n;
  {
    KlockWrap wrap;
    n = retry_eintr([&] { return off < 0 ? readv(fd, iov, cnt) : preadv(fd, iov, cnt, off); });
  }
  if (n < 0) return errno;
  *retv = static_cast<size_t>(n);
  return 0;
}

extern "C" int rumpuser_iovwrite(int fd, const struct rumpuser_iovec* ruiov, size_t iovcnt,
                                 int64_t off, size_t* retv) {
  if (iovcnt > IOV_MAX) return EINVAL;
  auto* iov = reinterpret_cast<const struct iovec*>(ruiov);
  int cnt = static_cast<int>(iovcnt);
  ssize_t n;
  {
    KlockWrap wrap;
    n = retry_eintr([&] { return off < 0 ? writev(fd, iov, cnt) : pwritev(fd, iov, cnt, off); });
  }
  if (n < 0) return errno;
  *retv = static_cast<size_t>(n);
  return 0;
}

// READ needs nothing (reads are never cached behind our back). WRITE and
// BARRIER both become fdatasync: a barrier is at least as strong as
// "everything before is on disk". SYNC also flushes metadata (fsync).
// start/len are not used; the whole file is synced.
extern "C" int rumpuser_syncfd(int fd, int flags, uint64_t /*start*/, uint64_t /*len*/) {
  if ((flags & (RUMPUSER_SYNCFD_WRITE | RUMPUSER_SYNCFD_BARRIER | RUMPUSER_SYNCFD_SYNC)) == 0)
    return 0;
  int rv;
  {
    KlockWrap wrap;
    rv = retry_eintr([&] { return (flags & RUMPUSER_SYNCFD_SYNC) ? fsync(fd) : fdatasync(fd); });
  }
  return rv == 0 ? 0 : errno;
}
