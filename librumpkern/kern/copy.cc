// copyin/copyout dispatch: host space or an isolated UserSpace.
#include "kern/copy.h"

#include <cerrno>
#include <cstring>

#include "kern/file_map.h"
#include "kern/fork.h"
#include "kern/lwp.h"
#include "kern/proc.h"

namespace rump {

namespace {
// In the host's space any address the host could map is accepted (a local
// client's pointer is its own business); the first page and addresses that
// are not canonical user addresses on x86-64/arm64 are EFAULT, as is a
// range that wraps.
constexpr uintptr_t kHostUserMin = 4096;
constexpr uintptr_t kHostUserMax = uintptr_t{1} << 47;

bool host_range_ok(uintptr_t uaddr, size_t len) {
  if (uaddr < kHostUserMin) return false;
  if (len > kHostUserMax || uaddr > kHostUserMax - len) return false;
  return true;
}
}  // namespace

bool host_user_range_ok(uintptr_t uaddr, size_t len) { return host_range_ok(uaddr, len); }

Result<void> space_copy(UserSpace* s, bool to_user, uintptr_t uaddr, void* kbuf, size_t len, size_t* done) {
  *done = 0;
  if (len == 0) return {};
  if (s) return bus_to_efault(to_user ? s->copyout(kbuf, uaddr, len, done) : s->copyin(uaddr, kbuf, len, done));
  if (!host_range_ok(uaddr, len)) return err(EFAULT);
  if (to_user) std::memcpy(reinterpret_cast<void*>(uaddr), kbuf, len);
  else std::memcpy(kbuf, reinterpret_cast<const void*>(uaddr), len);
  *done = len;
  return {};
}

Result<void> copyin(Lwp& l, uintptr_t uaddr, void* kaddr, size_t len) {
  if (len == 0) return {};
  if (UserSpace* s = l.user_space()) {
    size_t done = 0;
    return bus_to_efault(s->copyin(uaddr, kaddr, len, &done));
  }
  if (!host_range_ok(uaddr, len)) return err(EFAULT);
  std::memcpy(kaddr, reinterpret_cast<const void*>(uaddr), len);
  return {};
}

Result<void> copyout(Lwp& l, const void* kaddr, uintptr_t uaddr, size_t len) {
  if (len == 0) return {};
  if (UserSpace* s = l.user_space()) {
    size_t done = 0;
    return bus_to_efault(s->copyout(kaddr, uaddr, len, &done));
  }
  if (!host_range_ok(uaddr, len)) return err(EFAULT);
  std::memcpy(reinterpret_cast<void*>(uaddr), kaddr, len);
  return {};
}

Result<void> copyinstr(Lwp& l, uintptr_t uaddr, char* kbuf, size_t maxlen, size_t* len) {
  if (UserSpace* s = l.user_space()) return bus_to_efault(s->copyinstr(uaddr, kbuf, maxlen, len));
  if (!host_range_ok(uaddr, 1)) return err(EFAULT);
  const char* src = reinterpret_cast<const char*>(uaddr);
  for (size_t i = 0; i < maxlen; i++) {
    if (i > 0 && !host_range_ok(uaddr + i, 1)) return err(EFAULT);
    kbuf[i] = src[i];
    if (src[i] == '\0') {
      if (len) *len = i + 1;
      return {};
    }
  }
  return err(ENAMETOOLONG);
}

namespace {
// The process's own load or store at uaddr met a mapped file's page past
// its end: SIGBUS (BUS_ADRERR), as the host raises it. The signal is
// synchronous: a process that blocks or ignores it is ended by it.
void raise_bus_fault(Lwp& l, uintptr_t uaddr) {
  siginfo_t info{};
  info.si_signo = SIGBUS;
  info.si_code = BUS_ADRERR;
  info.si_addr = reinterpret_cast<void*>(uaddr);
  Result<bool> fatal = post_signal_info(l.proc(), &l, info);
  if (fatal.ok() && fatal.value()) kill_proc(l.kernel(), l.proc().pid(), SIGBUS);
}
}  // namespace

// One access of the process to its own isolated space: copy(done) does it.
template <class Copy>
Result<void> user_access(Lwp& l, UserSpace* s, uintptr_t uaddr, Copy copy) {
  size_t done = 0;
  Result<void> r = copy(*s, &done);
  if (!r.ok() && r.error() == kBusFault) raise_bus_fault(l, uaddr + done);
  return bus_to_efault(r);
}

Result<void> user_copyin(Lwp& l, uintptr_t uaddr, void* kaddr, size_t len) {
  UserSpace* s = l.user_space();
  if (len == 0 || s == nullptr) return copyin(l, uaddr, kaddr, len);
  return user_access(l, s, uaddr, [&](UserSpace& us, size_t* done) { return us.copyin(uaddr, kaddr, len, done); });
}

Result<void> user_copyout(Lwp& l, const void* kaddr, uintptr_t uaddr, size_t len) {
  UserSpace* s = l.user_space();
  if (len == 0 || s == nullptr) return copyout(l, kaddr, uaddr, len);
  return user_access(l, s, uaddr, [&](UserSpace& us, size_t* done) { return us.copyout(kaddr, uaddr, len, done); });
}

}  // namespace rump
