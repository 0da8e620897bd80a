// intrusive_hash.h: a hash table of kernel objects whose insert never fails.
//
// IntrusiveHash<T, Hook, KeyOf> wraps Boost.Intrusive's unordered_set: the
// element carries its hook, so linking it allocates nothing. Only the bucket
// array is memory of the table's own, taken from a Kmem arena. It starts
// with a small array inside the table and grows (doubling) when the load
// passes one element per bucket; when the arena cannot give a bigger array
// the table keeps its old one and chains grow longer, so insert stays
// infallible and a table at the memory limit still works, only slower. The
// array never shrinks below what it reached (a table that was big once is
// likely to be again); clear() keeps it too, clear_and_release() and the
// destructor free it.
//
// Who may call: any kernel or libvmspace code; the caller provides the
// locking (the table is as thread-safe as a std container).
//
//   struct Proc { bi::unordered_set_member_hook<> pid_hook; pid_t pid; ... };
//   struct PidOf { using type = pid_t; pid_t operator()(const Proc& p) const { return p.pid; } };
//   IntrusiveHash<Proc, &Proc::pid_hook, PidOf> table{kmem};
//   table.insert(p);  Proc* q = table.find(pid);  table.erase(*q);
#pragma once

#include <boost/intrusive/unordered_set.hpp>

#include <cstddef>
#include <functional>

#include "absl/hash/hash.h"
#include "base/kmem.h"

namespace rump {

namespace bi = boost::intrusive;

// KeyOf: a function object with `using type = Key;` and
// `Key operator()(const T&) const`. Hash: hashes a Key (absl::Hash by
// default, which takes std::string_view and the integer types).
template <class T, bi::unordered_set_member_hook<> T::*Hook, class KeyOf,
          class Hash = absl::Hash<typename KeyOf::type>, class Eq = std::equal_to<typename KeyOf::type>>
class IntrusiveHash {
 public:
  using Key = typename KeyOf::type;

 private:
  struct HashAdapter {
    size_t operator()(const Key& k) const { return Hash{}(k); }
  };
  using Set = bi::unordered_set<T, bi::member_hook<T, bi::unordered_set_member_hook<>, Hook>,
                                bi::key_of_value<KeyOf>, bi::hash<HashAdapter>, bi::equal<Eq>,
                                bi::constant_time_size<true>, bi::power_2_buckets<true>>;
  using Bucket = typename Set::bucket_type;
  using Traits = typename Set::bucket_traits;
  static constexpr size_t kInline = 8;

 public:
  using iterator = typename Set::iterator;
  using const_iterator = typename Set::const_iterator;

  explicit IntrusiveHash(Kmem& kmem) : kmem_(kmem), set_(Traits(inline_, kInline)) {}
  ~IntrusiveHash() {
    set_.clear();
    if (buckets_ != inline_) {
      set_.rehash(Traits(inline_, kInline));  // the set's own destructor walks its buckets
      free_buckets(buckets_, nbuckets_);
    }
  }
  IntrusiveHash(const IntrusiveHash&) = delete;
  IntrusiveHash& operator=(const IntrusiveHash&) = delete;

  // Links t; returns false (and links nothing) if an element with t's key
  // is already in the table. Never allocates anything that can fail the
  // insert: a bucket array that cannot grow is kept.
  bool insert(T& t) {
    if (!set_.insert(t).second) return false;
    if (set_.size() > nbuckets_) grow();
    return true;
  }
  // Links t even if its key is present (a multiset use).
  void insert_equal(T& t) {
    set_.insert_equal(t);
    if (set_.size() > nbuckets_) grow();
  }

  T* find(const Key& k) {
    auto it = set_.find(k);
    return it == set_.end() ? nullptr : &*it;
  }
  const T* find(const Key& k) const {
    auto it = set_.find(k);
    return it == set_.end() ? nullptr : &*it;
  }
  void erase(T& t) { set_.erase(set_.iterator_to(t)); }
  // Unlinks every element and calls dispose(T*) on each.
  template <class Dispose>
  void clear_and_dispose(Dispose dispose) {
    set_.clear_and_dispose(dispose);
  }
  void clear() { set_.clear(); }
  // Unlinks every element and gives the bucket array back (the table
  // starts over with its inline buckets): for an owner that must account
  // for every byte before it goes (a kernel's leak check at halt).
  void clear_and_release() {
    set_.clear();
    if (buckets_ == inline_) return;
    set_.rehash(Traits(inline_, kInline));
    free_buckets(buckets_, nbuckets_);
    buckets_ = inline_;
    nbuckets_ = kInline;
  }

  size_t size() const { return set_.size(); }
  bool empty() const { return set_.empty(); }
  size_t bucket_count() const { return nbuckets_; }
  iterator begin() { return set_.begin(); }
  iterator end() { return set_.end(); }
  const_iterator begin() const { return set_.begin(); }
  const_iterator end() const { return set_.end(); }

 private:
  void grow() {
    size_t n = nbuckets_ * 2;
    void* mem = kmem_.alloc(n * sizeof(Bucket));
    if (!mem) return;  // keep the old array: longer chains, same answers
    Bucket* fresh = new (mem) Bucket[n];
    set_.rehash(Traits(fresh, n));
    if (buckets_ != inline_) free_buckets(buckets_, nbuckets_);
    buckets_ = fresh;
    nbuckets_ = n;
  }

  static void free_buckets(Bucket* b, size_t n) {
    for (size_t i = 0; i < n; i++) b[i].~Bucket();
    Kmem::free(b);
  }

  Kmem& kmem_;
  Bucket inline_[kInline];
  Bucket* buckets_ = inline_;
  size_t nbuckets_ = kInline;
  Set set_;
};

}  // namespace rump
