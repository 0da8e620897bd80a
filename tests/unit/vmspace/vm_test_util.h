// Helpers shared by the libvmspace unit tests.
#pragma once

#include <catch2/catch.hpp>
#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "vmspace.h"

namespace vmtest {

using rump::Kmem;
using rump::RefPtr;
using rump::vm::kPageSize;
using rump::vm::Vmspace;

inline RefPtr<Vmspace> make_space(Kmem& kmem, const rump::vm::VmspaceOptions& o = {}) {
  auto r = Vmspace::create(kmem, o);
  REQUIRE(r.ok());
  return std::move(r).value();
}

inline uint64_t map_anon(Vmspace& vs, uint64_t len, int prot = PROT_READ | PROT_WRITE, int flags = MAP_PRIVATE,
                         uint64_t addr = 0) {
  auto r = vs.map(addr, len, prot, flags | MAP_ANONYMOUS);
  REQUIRE(r.ok());
  return r.value();
}

inline void put(Vmspace& vs, uint64_t addr, const std::string& s) {
  REQUIRE(vs.copyout(s.data(), addr, s.size()).ok());
}

inline std::string get(Vmspace& vs, uint64_t addr, size_t n) {
  std::string s(n, '?');
  auto r = vs.copyin(addr, s.data(), n);
  REQUIRE(r.ok());
  return s;
}

inline void fill(Vmspace& vs, uint64_t addr, size_t n, char c) {
  std::string s(n, c);
  REQUIRE(vs.copyout(s.data(), addr, n).ok());
}

inline int copyin_error(Vmspace& vs, uint64_t addr, size_t n, size_t* done = nullptr) {
  std::vector<char> buf(n);
  return vs.copyin(addr, buf.data(), n, done).error();
}

inline int copyout_error(Vmspace& vs, uint64_t addr, size_t n, size_t* done = nullptr) {
  std::vector<char> buf(n, 'x');
  return vs.copyout(buf.data(), addr, n, done).error();
}

struct Entry {
  uint64_t start, end;
  int prot;
};
inline std::vector<Entry> entries(Vmspace& vs) {
  std::vector<Entry> v;
  vs.for_each_entry([&](const Vmspace::EntryInfo& e) { v.push_back({e.start, e.end, e.prot}); });
  return v;
}

}  // namespace vmtest
