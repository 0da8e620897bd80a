// copyin/copyout dispatch: host space or an isolated UserSpace.
#include "kern/copy.h"

#include <cerrno>
#include <cstring>

#include "kern/lwp.h"

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

Result<void> copyin(Lwp& l, uintptr_t uaddr, void* kaddr, size_t len) {
  if (len == 0) return {};
  if (UserSpace* s = l.user_space()) {
    size_t done = 0;
    return s->copyin(uaddr, kaddr, len, &done);
  }
  if (!host_range_ok(uaddr, len)) return err(EFAULT);
  std::memcpy(kaddr, reinterpret_cast<const void*>(uaddr), len);
  return {};
}

Result<void> copyout(Lwp& l, const void* kaddr, uintptr_t uaddr, size_t len) {
  if (len == 0) return {};
  if (UserSpace* s = l.user_space()) {
    size_t done = 0;
    return s->copyout(kaddr, uaddr, len, &done);
  }
  if (!host_range_ok(uaddr, len)) return err(EFAULT);
  std::memcpy(reinterpret_cast<void*>(uaddr), kaddr, len);
  return {};
}

Result<void> copyinstr(Lwp& l, uintptr_t uaddr, char* kbuf, size_t maxlen, size_t* len) {
  if (UserSpace* s = l.user_space()) return s->copyinstr(uaddr, kbuf, maxlen, len);
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

}  // namespace rump
