// guarded.h: data that is reachable only with its lock held.
//
// Guarded<T> owns a T and a Mutex; the only way to the T is with(fn), which
// runs fn(T&) under the lock. Use it for a self-contained aggregate (a
// descriptor table, a cwd/root pair). Don't keep references past with().
#pragma once

#include <utility>

#include "sync/mutex.h"

namespace rump {

template <class T, class Lock = Mutex>
class Guarded {
 public:
  template <class... Args>
  explicit Guarded(LockRank rank, Args&&... args) : lock_(rank), data_(std::forward<Args>(args)...) {}

  template <class Fn>
  decltype(auto) with(Fn&& fn) {
    Locker<Lock> g(lock_);
    return std::forward<Fn>(fn)(data_);
  }
  template <class Fn>
  decltype(auto) with(Fn&& fn) const {
    Locker<Lock> g(lock_);
    return std::forward<Fn>(fn)(data_);
  }

 private:
  mutable Lock lock_;
  T data_;
};

}  // namespace rump
