// sysctl system calls: __sysctl (by MIB) and sysctlbyname (by dotted name),
// with BSD sysctl(3) semantics:
//   * oldp NULL, oldlenp set: *oldlenp gets the size of the value;
//   * a buffer too small: as much as fits is copied out, *oldlenp gets the
//     full size (as NetBSD), and the call fails with ENOMEM (no write of a
//     new value happens then);
//   * newp set: EPERM on a read-only node or for a caller that is not root
//     on a root-writable one; checked before anything is copied out;
//   * ENOENT for an unknown name, EISDIR for a directory, ENOTDIR for a
//     leaf used as a directory, EINVAL for namelen 0 or > CTL_MAXNAME.
#include <cstring>

#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "kern/sysctl.h"

namespace rump {

namespace {

// New values are small (an int, a host name); anything larger is refused.
constexpr size_t kMaxNewLen = 256;
// Longest dotted name accepted by sysctlbyname, NUL included.
constexpr size_t kMaxDottedName = 256;

// Frees a kernel buffer when the scope ends.
struct KBuf {
  void* p = nullptr;
  ~KBuf() { Kmem::free(p); }
};

Result<long> do_sysctl(Lwp& l, const SysctlNode& n, UserPtr<void> oldp, UserPtr<size_t> oldlenp,
                       UserPtr<void> newp, size_t newlen) {
  Kernel& k = l.kernel();
  Sysctl& s = *k.services().sysctl();
  if (n.is_dir()) return err(EISDIR);
  if (newp) TRY(s.check_write(l, n));

  if (oldlenp) {
    size_t oldlen = 0;
    if (oldp) oldlen = TRY(copyin_obj(l, oldlenp));
    // The value's size, then the value itself; a value that grows in
    // between (the message buffer) is read again with the larger size.
    size_t full = TRY(s.read(n, nullptr, 0));
    KBuf buf;
    if (oldp) {
      size_t cap = full;
      for (int attempt = 0;; attempt++) {
        Kmem::free(buf.p);
        buf.p = k.kmem().alloc(cap ? cap : 1);
        if (!buf.p) return err(ENOMEM);
        size_t now = TRY(s.read(n, buf.p, cap));
        if (now <= cap || attempt == 2) {
          full = now <= cap ? now : cap;
          break;
        }
        cap = now;
      }
      size_t n_out = oldlen < full ? oldlen : full;
      if (n_out > 0) TRY(copyout(l, buf.p, oldp.addr, n_out));
    }
    TRY(copyout_obj(l, full, oldlenp));
    if (oldp && oldlen < full) return err(ENOMEM);
  } else if (oldp) {
    return err(EINVAL);
  }

  if (newp) {
    if (newlen > kMaxNewLen) return err(EINVAL);
    char nv[kMaxNewLen];
    TRY(copyin(l, newp.addr, nv, newlen));
    TRY(s.write(l, n, nv, newlen));
  }
  return 0;
}

}  // namespace

Result<long> sys___sysctl(Lwp& l, UserPtr<int> name, unsigned int namelen, UserPtr<void> oldp,
                          UserPtr<size_t> oldlenp, UserPtr<void> newp, size_t newlen) {
  Sysctl* s = l.kernel().services().sysctl();
  if (!s) return err(ENOSYS);
  if (namelen == 0 || namelen > kCtlMaxName) return err(EINVAL);
  int mib[kCtlMaxName];
  TRY(copyin(l, name.addr, mib, namelen * sizeof(int)));
  const SysctlNode* n = TRY(s->lookup(mib, namelen));
  return do_sysctl(l, *n, oldp, oldlenp, newp, newlen);
}

Result<long> sys_sysctlbyname(Lwp& l, UserPtr<char> name, UserPtr<void> oldp, UserPtr<size_t> oldlenp,
                              UserPtr<void> newp, size_t newlen) {
  Sysctl* s = l.kernel().services().sysctl();
  if (!s) return err(ENOSYS);
  char buf[kMaxDottedName];
  size_t len = 0;
  Result<void> r = copyinstr(l, name.addr, buf, sizeof buf, &len);
  if (!r.ok()) return err(r.error() == ENAMETOOLONG ? ENOENT : r.error());
  const SysctlNode* n = TRY(s->lookup(std::string_view(buf, len ? len - 1 : 0)));
  return do_sysctl(l, *n, oldp, oldlenp, newp, newlen);
}

}  // namespace rump
