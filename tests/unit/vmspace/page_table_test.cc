// PageTable, the page table of a VmObject: reserve is the only step that
// allocates and it fails cleanly; erase keeps every other entry reachable.
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdint>
#include <map>
#include <random>

#include "page_table.h"

using rump::Kmem;
using rump::vm::Page;
using rump::vm::PageTable;

namespace {
// Distinct non-null pointers standing for pages (never dereferenced).
Page* fake(uint64_t i) { return reinterpret_cast<Page*>((i + 1) * 16); }
}  // namespace

TEST_CASE("page table: insert, find, erase and erase_if agree with a reference map", "[vm][page_table]") {
  Kmem kmem;
  PageTable t(kmem);
  std::map<uint64_t, Page*> ref;
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20000; round++) {
    // Clustered keys (a mapping's pages) and scattered ones.
    uint64_t k = round % 3 == 0 ? rng() % (1u << 20) : (rng() % 64) * 1024 + rng() % 40;
    if (rng() % 3 == 0) {
      Page* got = t.erase(k);
      auto it = ref.find(k);
      CHECK(got == (it == ref.end() ? nullptr : it->second));
      if (it != ref.end()) ref.erase(it);
    } else if (ref.count(k) == 0) {
      REQUIRE(t.reserve(t.size() + 1).ok());
      t.insert(k, fake(k));
      ref[k] = fake(k);
    }
  }
  REQUIRE(t.size() == ref.size());
  for (auto& [k, p] : ref) CHECK(t.find(k) == p);
  // erase_if sees each entry once and leaves the rest findable.
  size_t seen = 0;
  t.erase_if([&](uint64_t k, Page*) {
    seen++;
    return k % 2 == 0;
  });
  CHECK(seen == ref.size());
  for (auto& [k, p] : ref) CHECK(t.find(k) == (k % 2 == 0 ? nullptr : p));
  size_t odd = 0;
  t.for_each([&](uint64_t k, Page*) { odd += k % 2; });
  CHECK(odd == t.size());
}

TEST_CASE("page table: reserve past the memory limit is ENOMEM and changes nothing", "[vm][page_table]") {
  Kmem kmem(4096);
  PageTable t(kmem);
  uint64_t n = 0;
  for (;; n++) {
    auto r = t.reserve(t.size() + 1);
    if (!r.ok()) {
      CHECK(r.error() == ENOMEM);
      break;
    }
    t.insert(n * 3, fake(n));
  }
  CHECK(n > 8);
  CHECK(t.size() == n);
  for (uint64_t i = 0; i < n; i++) CHECK(t.find(i * 3) == fake(i));
  CHECK(kmem.in_use() <= 4096);
}
