// kvec.h: a growable array of small kernel values whose growth is an
// error value, not an exception.
//
// KVec<T> holds trivially copyable values in one Kmem block. Only
// reserve() allocates, and it says ENOMEM when the kernel is out of
// memory; push_back() and insert() need the room reserved first and panic
// otherwise (a broken invariant of the caller, never an input). So an
// operation reserves everything it will need before it changes anything,
// and the changes themselves cannot fail.
//
// Who may call: VFS code (advisory locks, the etfs table, umount); the
// caller provides the locking.
#pragma once

#include <cstddef>
#include <cstring>
#include <type_traits>

#include "base/kmem.h"
#include "base/result.h"
#include "kern/kernel.h"

namespace rump {

template <class T>
class KVec {
  static_assert(std::is_trivially_copyable_v<T>, "KVec moves its elements with memcpy");

 public:
  explicit KVec(Kmem& kmem) : kmem_(&kmem) {}
  ~KVec() { Kmem::free(data_); }
  KVec(const KVec&) = delete;
  KVec& operator=(const KVec&) = delete;

  // Room for n elements in all (ENOMEM, and nothing changed, if none).
  Result<void> reserve(size_t n) {
    if (n <= cap_) return {};
    size_t want = cap_ * 2 > n ? cap_ * 2 : n;
    if (want < 4) want = 4;
    auto* fresh = static_cast<T*>(kmem_->alloc(want * sizeof(T)));
    if (!fresh) {
      // The doubling was greed: try the exact need once more.
      if (want == n) return err(ENOMEM);
      want = n;
      fresh = static_cast<T*>(kmem_->alloc(want * sizeof(T)));
      if (!fresh) return err(ENOMEM);
    }
    if (size_) std::memcpy(static_cast<void*>(fresh), data_, size_ * sizeof(T));
    Kmem::free(data_);
    data_ = fresh;
    cap_ = want;
    return {};
  }
  // Room for n more.
  Result<void> reserve_more(size_t n) { return reserve(size_ + n); }

  void push_back(const T& v) {
    if (size_ == cap_) panic("KVec::push_back without reserved room");
    data_[size_++] = v;
  }
  void insert(size_t at, const T& v) {
    if (size_ == cap_ || at > size_) panic("KVec::insert without reserved room");
    std::memmove(static_cast<void*>(data_ + at + 1), data_ + at, (size_ - at) * sizeof(T));
    data_[at] = v;
    size_++;
  }
  void erase(size_t at) {
    std::memmove(static_cast<void*>(data_ + at), data_ + at + 1, (size_ - at - 1) * sizeof(T));
    size_--;
  }
  // Keeps the elements for which keep(e) holds, in order.
  template <class Pred>
  void retain(Pred keep) {
    size_t out = 0;
    for (size_t i = 0; i < size_; i++)
      if (keep(data_[i])) data_[out++] = data_[i];
    size_ = out;
  }
  void clear() { size_ = 0; }
  void swap(KVec& o) {
    std::swap(kmem_, o.kmem_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(cap_, o.cap_);
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  Kmem& kmem() const { return *kmem_; }

 private:
  Kmem* kmem_;
  T* data_ = nullptr;
  size_t size_ = 0;
  size_t cap_ = 0;
};

}  // namespace rump
