// Extended attribute system calls: setxattr, getxattr, listxattr,
// removexattr with their l* (no symlink following) and f* (descriptor)
// forms. The checks Linux's VFS makes are made here, in its order: flags,
// the name (ERANGE for an empty or over-long one), the value's size
// (E2BIG), a writable mount (EROFS), immutable and append-only inodes
// (EPERM), the namespace rules and the file's permission; the file system
// stores and finds the attributes (Vnode::getxattr and friends).
//
// Namespaces: "user." (regular files and directories only; the file's
// read or write permission; only the owner writes on a sticky directory),
// "trusted." (CAP_SYS_ADMIN only: EPERM to write, ENODATA to read for
// others), "security." (anyone reads, CAP_SYS_ADMIN writes, as Linux's
// capability module has it), "system." (left to the file system).
// Any other prefix is EOPNOTSUPP, a known prefix with nothing after it
// EINVAL.
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/limits.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>

#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "vfs/file.h"
#include "vfs/vfs.h"

namespace rump {

namespace {

enum class Ns { kUser, kTrusted, kSecurity, kSystem, kOther };

struct Name {
  char s[XATTR_NAME_MAX + 1];
  size_t len = 0;
  std::string_view view() const { return {s, len}; }
};

Result<void> copyin_name(Lwp& l, UserPtr<char> uname, Name& n) {
  size_t len = 0;
  Result<void> r = copyinstr(l, uname.addr, n.s, sizeof n.s, &len);
  if (!r.ok()) return err(r.error() == ENAMETOOLONG ? ERANGE : r.error());
  n.len = len - 1;
  if (n.len == 0) return err(ERANGE);
  return {};
}

Ns name_space(std::string_view name) {
  if (name.substr(0, 5) == "user.") return Ns::kUser;
  if (name.substr(0, 8) == "trusted.") return Ns::kTrusted;
  if (name.substr(0, 9) == "security.") return Ns::kSecurity;
  if (name.substr(0, 7) == "system.") return Ns::kSystem;
  return Ns::kOther;
}

// xattr_permission() and the handler lookup of Linux: may the caller read
// (write false) or change the attribute name of vp?
Result<void> xattr_permission(Lwp& l, Vnode& vp, std::string_view name, bool write) {
  const Cred& c = l.cred();
  Vattr va = getattr(vp);
  if (write) {
    MutexLocker g(vp.mount().lock_);
    Result<uint32_t> fl = vp.inode_flags();
    if (fl.ok() && (*fl & (FS_IMMUTABLE_FL | FS_APPEND_FL))) return err(EPERM);
  }
  Ns ns = name_space(name);
  switch (ns) {
    case Ns::kSecurity:
      if (write && !c.capable(kCapSysAdmin)) return err(EPERM);
      break;
    case Ns::kSystem: break;
    case Ns::kTrusted:
      if (!c.capable(kCapSysAdmin)) return err(write ? EPERM : ENODATA);
      break;
    case Ns::kUser:
      if (va.type != VType::kReg && va.type != VType::kDir) return err(write ? EPERM : ENODATA);
      if (va.type == VType::kDir && (va.mode & S_ISVTX) && write && !c.capable(kCapFowner) && c.euid != va.uid)
        return err(EPERM);
      [[fallthrough]];
    case Ns::kOther:
      if (!vaccess_ok(va, c, write ? W_OK : R_OK)) return err(EACCES);
      break;
  }
  if (ns == Ns::kOther) return err(EOPNOTSUPP);
  size_t dot = name.find('.');
  if (dot + 1 == name.size()) return err(EINVAL);
  return {};
}

// A kernel buffer for a value or a name list (null when len is 0).
struct ValueBuf {
  char* p = nullptr;
  ValueBuf(Kmem& k, size_t len) : p(len ? static_cast<char*>(k.alloc(len)) : nullptr) {}
  ~ValueBuf() { Kmem::free(p); }
  ValueBuf(const ValueBuf&) = delete;
  ValueBuf& operator=(const ValueBuf&) = delete;
};

Result<Ref<Vnode>> resolve(Lwp& l, UserPtr<char> upath, bool follow) {
  PathBuf path(l.kernel().kmem());
  if (!path.p) return err(ENOMEM);
  TRY(copyin_path(l, upath, path.p));
  return namei(l, AT_FDCWD, path.p, follow ? kFollow : 0);
}

Result<Ref<Vnode>> resolve_fd(Lwp& l, int fd) {
  Ref<File> f = TRY(fd_get(l, fd));
  if (!f->vnode()) return err(EOPNOTSUPP);
  return Ref<Vnode>(*f->vnode());
}

Result<long> do_setxattr(Lwp& l, Vnode& vp, UserPtr<char> uname, UserPtr<void> value, size_t size, int flags) {
  if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) return err(EINVAL);
  Name n;
  TRY(copyin_name(l, uname, n));
  if (size > XATTR_SIZE_MAX) return err(E2BIG);
  ValueBuf v(l.kernel().kmem(), size);
  if (size && !v.p) return err(ENOMEM);
  if (size) TRY(copyin(l, value.addr, v.p, size));
  TRY(check_writable_mount(vp));
  TRY(xattr_permission(l, vp, n.view(), true));
  MutexLocker g(vp.mount().lock_);
  TRY(vp.setxattr(n.view(), v.p ? v.p : "", size, flags));
  return 0;
}

Result<long> do_getxattr(Lwp& l, Vnode& vp, UserPtr<char> uname, UserPtr<void> value, size_t size) {
  Name n;
  TRY(copyin_name(l, uname, n));
  if (size > XATTR_SIZE_MAX) size = XATTR_SIZE_MAX;
  TRY(xattr_permission(l, vp, n.view(), false));
  ValueBuf v(l.kernel().kmem(), size);
  if (size && !v.p) return err(ENOMEM);
  Result<size_t> r = err(EIO);
  {
    MutexLocker g(vp.mount().lock_);
    r = vp.getxattr(n.view(), v.p, size);
  }
  if (!r.ok() && r.error() == ERANGE && size == XATTR_SIZE_MAX) return err(E2BIG);
  size_t got = TRY(std::move(r));
  if (size) TRY(copyout(l, v.p, value.addr, got));
  return static_cast<long>(got);
}

Result<long> do_listxattr(Lwp& l, Vnode& vp, UserPtr<char> list, size_t size) {
  if (size > XATTR_LIST_MAX) size = XATTR_LIST_MAX;
  ValueBuf v(l.kernel().kmem(), size);
  if (size && !v.p) return err(ENOMEM);
  bool trusted = l.cred().capable(kCapSysAdmin);
  Result<size_t> r = err(EIO);
  {
    MutexLocker g(vp.mount().lock_);
    r = vp.listxattr(v.p, size, trusted);
  }
  if (!r.ok() && r.error() == ERANGE && size == XATTR_LIST_MAX) return err(E2BIG);
  size_t got = TRY(std::move(r));
  if (size) TRY(copyout(l, v.p, list.addr, got));
  return static_cast<long>(got);
}

Result<long> do_removexattr(Lwp& l, Vnode& vp, UserPtr<char> uname) {
  Name n;
  TRY(copyin_name(l, uname, n));
  TRY(check_writable_mount(vp));
  TRY(xattr_permission(l, vp, n.view(), true));
  MutexLocker g(vp.mount().lock_);
  TRY(vp.removexattr(n.view()));
  return 0;
}

}  // namespace

Result<long> sys_setxattr(Lwp& l, UserPtr<char> path, UserPtr<char> name, UserPtr<void> value, size_t size,
                          int flags) {
  Ref<Vnode> vp = TRY(resolve(l, path, true));
  return do_setxattr(l, *vp, name, value, size, flags);
}
Result<long> sys_lsetxattr(Lwp& l, UserPtr<char> path, UserPtr<char> name, UserPtr<void> value, size_t size,
                           int flags) {
  Ref<Vnode> vp = TRY(resolve(l, path, false));
  return do_setxattr(l, *vp, name, value, size, flags);
}
Result<long> sys_fsetxattr(Lwp& l, int fd, UserPtr<char> name, UserPtr<void> value, size_t size, int flags) {
  Ref<Vnode> vp = TRY(resolve_fd(l, fd));
  return do_setxattr(l, *vp, name, value, size, flags);
}

Result<long> sys_getxattr(Lwp& l, UserPtr<char> path, UserPtr<char> name, UserPtr<void> value, size_t size) {
  Ref<Vnode> vp = TRY(resolve(l, path, true));
  return do_getxattr(l, *vp, name, value, size);
}
Result<long> sys_lgetxattr(Lwp& l, UserPtr<char> path, UserPtr<char> name, UserPtr<void> value, size_t size) {
  Ref<Vnode> vp = TRY(resolve(l, path, false));
  return do_getxattr(l, *vp, name, value, size);
}
Result<long> sys_fgetxattr(Lwp& l, int fd, UserPtr<char> name, UserPtr<void> value, size_t size) {
  Ref<Vnode> vp = TRY(resolve_fd(l, fd));
  return do_getxattr(l, *vp, name, value, size);
}

Result<long> sys_listxattr(Lwp& l, UserPtr<char> path, UserPtr<char> list, size_t size) {
  Ref<Vnode> vp = TRY(resolve(l, path, true));
  return do_listxattr(l, *vp, list, size);
}
Result<long> sys_llistxattr(Lwp& l, UserPtr<char> path, UserPtr<char> list, size_t size) {
  Ref<Vnode> vp = TRY(resolve(l, path, false));
  return do_listxattr(l, *vp, list, size);
}
Result<long> sys_flistxattr(Lwp& l, int fd, UserPtr<char> list, size_t size) {
  Ref<Vnode> vp = TRY(resolve_fd(l, fd));
  return do_listxattr(l, *vp, list, size);
}

Result<long> sys_removexattr(Lwp& l, UserPtr<char> path, UserPtr<char> name) {
  Ref<Vnode> vp = TRY(resolve(l, path, true));
  return do_removexattr(l, *vp, name);
}
Result<long> sys_lremovexattr(Lwp& l, UserPtr<char> path, UserPtr<char> name) {
  Ref<Vnode> vp = TRY(resolve(l, path, false));
  return do_removexattr(l, *vp, name);
}
Result<long> sys_fremovexattr(Lwp& l, int fd, UserPtr<char> name) {
  Ref<Vnode> vp = TRY(resolve_fd(l, fd));
  return do_removexattr(l, *vp, name);
}

}  // namespace rump
