// ref.h: intrusive reference counting: RefCounted<T>, Ref<T>, RefPtr<T>.
//
// A reference-counted object derives from RefCounted<T> and is made by a
// static T::create(...) returning Result<Ref<T>>. Ref<T> is never null;
// RefPtr<T> may be. When the last reference goes, T::last_unref() runs (by
// default `delete this`); an object found through a table overrides it to
// leave the table under the table's lock before it is freed. Raw pointers
// are borrowed, never owning.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

namespace rump {

template <class T>
class RefCounted {
 public:
  void ref() const { refs_.fetch_add(1, std::memory_order_relaxed); }
  // Drops a reference; dropping the last one runs T::last_unref().
  void unref() const {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
      static_cast<T*>(const_cast<RefCounted*>(this))->last_unref();
  }
  // For tables: take a reference only if the object is still live.
  bool try_ref() const {
    uint32_t n = refs_.load(std::memory_order_relaxed);
    while (n != 0) {
      if (refs_.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel)) return true;
    }
    return false;
  }
  uint32_t ref_count() const { return refs_.load(std::memory_order_relaxed); }

 protected:
  RefCounted() = default;
  ~RefCounted() = default;
  void last_unref() { delete static_cast<T*>(this); }

 private:
  mutable std::atomic<uint32_t> refs_{1};
};

struct AdoptTag {};
inline constexpr AdoptTag kAdopt{};

template <class T>
class RefPtr;

// A counted reference that is never null.
template <class T>
class Ref {
 public:
  // Takes over the creation reference of a freshly made object.
  Ref(AdoptTag, T* p) : p_(p) {}
  explicit Ref(T& r) : p_(&r) { p_->ref(); }
  Ref(const Ref& o) : p_(o.p_) { p_->ref(); }
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  template <class U>
  Ref(const Ref<U>& o) : p_(o.get()) { p_->ref(); }  // NOLINT(implicit)
  ~Ref() {
    if (p_) p_->unref();
  }
  Ref& operator=(Ref o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  // Gives up the reference without dropping it.
  T* leak() { return std::exchange(p_, nullptr); }

 private:
  friend class RefPtr<T>;
  T* p_;
};

template <class T>
Ref<T> adopt_ref(T* p) {
  return Ref<T>(kAdopt, p);
}

// A counted reference that may be null.
template <class T>
class RefPtr {
 public:
  RefPtr() : p_(nullptr) {}
  RefPtr(std::nullptr_t) : p_(nullptr) {}  // NOLINT(implicit)
  explicit RefPtr(T* p) : p_(p) {
    if (p_) p_->ref();
  }
  RefPtr(AdoptTag, T* p) : p_(p) {}
  RefPtr(const Ref<T>& r) : p_(r.get()) { p_->ref(); }  // NOLINT(implicit)
  RefPtr(Ref<T>&& r) : p_(std::exchange(r.p_, nullptr)) {}  // NOLINT(implicit)
  RefPtr(const RefPtr& o) : p_(o.p_) {
    if (p_) p_->ref();
  }
  RefPtr(RefPtr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  ~RefPtr() {
    if (p_) p_->unref();
  }
  RefPtr& operator=(RefPtr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  T* leak() { return std::exchange(p_, nullptr); }
  void reset() { RefPtr().swap_with(*this); }
  Ref<T> to_ref() const& { return Ref<T>(*p_); }

 private:
  void swap_with(RefPtr& o) { std::swap(p_, o.p_); }
  T* p_;
};

}  // namespace rump
