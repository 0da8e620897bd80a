// file.cc: host files for block devices and etfs: open/close, what a path
// is and how big, scatter/gather I/O and sync, directory listings. Calls
// that wait for the host's storage give the virtual CPU back (KLOCK wrap).
#include <rump/rumpuser.h>

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>

#include "rumpuser_int.h"

using rumpuser_int::KlockWrap;
using rumpuser_int::retry_eintr;
using rumpuser_int::fault_inject;

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
  if (fault_inject(RUMPUSER_FAULT_IO)) return EMFILE;
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

namespace {

// The RUMPUSER_FT_* of a host st_mode.
int file_type(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFDIR: return RUMPUSER_FT_DIR;
    case S_IFREG: return RUMPUSER_FT_REG;
    case S_IFBLK: return RUMPUSER_FT_BLK;
    case S_IFCHR: return RUMPUSER_FT_CHR;
    default: return RUMPUSER_FT_OTHER;
  }
}

}  // namespace

extern "C" int rumpuser_getfileinfo(const char* path, uint64_t* sizep, int* typep) {
  if (fault_inject(RUMPUSER_FAULT_IO)) return EIO;
  struct stat st;
  if (stat(path, &st) != 0) return errno;

  int type = file_type(st.st_mode);
  uint64_t size = static_cast<uint64_t>(st.st_size);
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
  if (fault_inject(RUMPUSER_FAULT_IO)) return EIO;
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
  if (fault_inject(RUMPUSER_FAULT_IO)) return EIO;
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
  if (fault_inject(RUMPUSER_FAULT_IO)) return EIO;
  int rv;
  {
    KlockWrap wrap;
    rv = retry_eintr([&] { return (flags & RUMPUSER_SYNCFD_SYNC) ? fsync(fd) : fdatasync(fd); });
  }
  return rv == 0 ? 0 : errno;
}

extern "C" int rumpuser_ftruncate(int fd, uint64_t len) {
  if (len > static_cast<uint64_t>(INT64_MAX)) return EINVAL;
  if (fault_inject(RUMPUSER_FAULT_IO)) return EIO;
  int rv;
  {
    KlockWrap wrap;
    rv = retry_eintr([&] { return ftruncate(fd, static_cast<off_t>(len)); });
  }
  return rv == 0 ? 0 : errno;
}

// --- directory listings

// A handle is a host descriptor of the directory. Nothing is cached in it
// between calls: every rumpuser_readdir seeks to the caller's position, so
// positions from one handle work on another (the kernel opens the host
// directory once per getdents and keeps only the position).

extern "C" int rumpuser_opendir(const char* path, int* dhp) {
  if (fault_inject(RUMPUSER_FAULT_IO)) return EMFILE;
  int fd;
  {
    KlockWrap wrap;
    fd = retry_eintr([&] { return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
  }
  if (fd < 0) return errno;
  *dhp = fd;
  return 0;
}

extern "C" int rumpuser_closedir(int dh) { return rumpuser_close(dh); }

namespace {

// Fills type and inode number of the entry name of directory dh from the
// host's d_type / d_ino, asking the host (stat, following links) where
// those may differ from what stat reports: links, unknown types, and
// directories (a mount point's d_ino is the covered directory's).
// Returns false if the entry no longer exists.
bool classify(int dh, const char* name, unsigned char dtype, uint64_t dino, rumpuser_dirent& e) {
  e.d_ino = dino;
  switch (dtype) {
    case DT_REG: e.d_type = RUMPUSER_FT_REG; return true;
    case DT_BLK: e.d_type = RUMPUSER_FT_BLK; return true;
    case DT_CHR: e.d_type = RUMPUSER_FT_CHR; return true;
    case DT_FIFO:
    case DT_SOCK: e.d_type = RUMPUSER_FT_OTHER; return true;
    default: break;  // DT_DIR, DT_LNK, DT_UNKNOWN
  }
  struct stat st;
  if (fstatat(dh, name, &st, 0) == 0) {
    e.d_type = file_type(st.st_mode);
    e.d_ino = static_cast<uint64_t>(st.st_ino);
    return true;
  }
  if (errno == ENOENT && dtype != DT_LNK) return false;  // gone meanwhile
  // A dangling or looping link, or a name we may not stat: report what
  // the listing said (a link is "other": it leads nowhere usable).
  e.d_type = dtype == DT_DIR ? RUMPUSER_FT_DIR : RUMPUSER_FT_OTHER;
  return true;
}

}  // namespace

extern "C" int rumpuser_readdir(int dh, int64_t* posp, struct rumpuser_dirent* ents, size_t nents,
                                size_t* countp) {
  *countp = 0;
  if (*posp < 0) return EINVAL;
  if (fault_inject(RUMPUSER_FAULT_IO)) return EIO;
  KlockWrap wrap;
  if (lseek(dh, static_cast<off_t>(*posp), SEEK_SET) < 0) return errno;
  int64_t pos = *posp;
  size_t count = 0;
  alignas(struct dirent64) char buf[8192];
  while (count < nents) {
    ssize_t n = retry_eintr([&] { return getdents64(dh, buf, sizeof buf); });
    if (n < 0) {
      if (count > 0) break;  // the caller gets what was read; the error comes again
      return errno;
    }
    if (n == 0) break;
    ssize_t off = 0;
    while (off < n && count < nents) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      rumpuser_dirent& e = ents[count];
      size_t len = strnlen(d->d_name, RUMPUSER_NAME_MAX + 1);
      if (len > RUMPUSER_NAME_MAX) len = RUMPUSER_NAME_MAX;  // never on Linux
      bool exists = classify(dh, d->d_name, d->d_type, d->d_ino, e);
      pos = d->d_off;
      if (!exists) continue;
      std::memcpy(e.d_name, d->d_name, len);
      e.d_name[len] = '\0';
      e.d_off = d->d_off;
      count++;
    }
    if (off < n) break;  // the batch is full: the next call seeks to pos
  }
  *posp = pos;
  *countp = count;
  return 0;
}

extern "C" int rumpuser_getdirent(const char* path, struct rumpuser_dirent* ent) {
  const char* slash = std::strrchr(path, '/');
  const char* name = slash ? slash + 1 : path;
  size_t len = std::strlen(name);
  if (len > RUMPUSER_NAME_MAX) return ENAMETOOLONG;
  if (fault_inject(RUMPUSER_FAULT_IO)) return EIO;
  struct stat st;
  int rv = 0;
  {
    KlockWrap wrap;
    if (stat(path, &st) == 0) {
      ent->d_type = file_type(st.st_mode);
    } else {
      rv = errno;
      // A dangling link is listed (as "other"), so it is found here too.
      if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        ent->d_type = RUMPUSER_FT_OTHER;
        rv = 0;
      }
    }
  }
  if (rv != 0) return rv;
  ent->d_ino = static_cast<uint64_t>(st.st_ino);
  ent->d_off = 0;
  std::memcpy(ent->d_name, name, len + 1);
  return 0;
}
