// user_ptr.h: a user-space address.
//
// System call handlers receive pointer arguments as UserPtr<T>: an address
// in the calling process's user space, which may be the host's address space
// or an isolated Vmspace. It is never dereferenced; the only ways to the
// memory are copyin/copyout (kern/copy.h), which check it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace rump {

template <class T>
struct UserPtr {
  uintptr_t addr = 0;

  bool is_null() const { return addr == 0; }
  explicit operator bool() const { return addr != 0; }
  // The address of element i (for arrays).
  UserPtr offset(size_t i) const { return UserPtr{addr + i * sizeof_elem()}; }
  template <class U>
  UserPtr<U> as() const { return UserPtr<U>{addr}; }

 private:
  static constexpr size_t sizeof_elem() {
    if constexpr (std::is_void_v<T>) return 1;
    else return sizeof(T);
  }
};

}  // namespace rump
