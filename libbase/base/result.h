// result.h: the error-or-value type used by every kernel path, and TRY.
//
// Inside the kernel a fallible function returns Result<T>: a value, or a
// positive errno with Linux's meaning. Callers propagate with TRY(expr),
// which evaluates to the value or returns the error from the enclosing
// function. Shared by librumpkern and libvmspace.
#pragma once

#include <cerrno>
#include <optional>
#include <type_traits>
#include <utility>

namespace rump {

// A positive errno value. Constructing Result from it makes a failure.
struct Error {
  int code;
};

inline constexpr Error err(int code) { return Error{code}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)), error_(0) {}  // NOLINT(implicit)
  Result(Error e) : error_(e.code) {}                         // NOLINT(implicit)
  Result(const Result&) = default;
  Result(Result&&) = default;
  Result& operator=(const Result&) = default;
  Result& operator=(Result&&) = default;

  bool ok() const { return error_ == 0; }
  int error() const { return error_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  int error_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() : error_(0) {}
  Result(Error e) : error_(e.code) {}  // NOLINT(implicit)
  bool ok() const { return error_ == 0; }
  int error() const { return error_; }
  void value() const {}

 private:
  int error_;
};

inline Result<void> ok_result() { return {}; }

// Converts a 0-or-errno int into Result<void>.
inline Result<void> from_errno(int e) {
  if (e != 0) return Error{e};
  return {};
}

}  // namespace rump

// TRY(expr): expr is a Result<T>; yields its value or returns its error.
#define TRY(expr)                                               \
  ({                                                            \
    auto&& rump_try_result_ = (expr);                           \
    if (!rump_try_result_.ok())                                 \
      return ::rump::Error{rump_try_result_.error()};           \
    std::move(rump_try_result_).value();                        \
  })
