// Kmem's cache of freed blocks (base/block_cache.h): a freed block of a
// cached size is handed out again, the accounting (in_use, live
// allocations, the limit) is exactly as without the cache, and the cache
// stays within its bounds and the limit's headroom.
#include <catch2/catch.hpp>

#include <vector>

#include "base/kmem.h"

using rump::BlockCache;
using rump::Kmem;

namespace {

// A payload size whose block (with Kmem's header) the cache takes.
constexpr size_t kSize = 1200;

}  // namespace

TEST_CASE("a freed block of a cached size is handed out again, uncharged meanwhile", "[kmem]") {
  Kmem km;
  void* a = km.alloc(kSize);
  REQUIRE(a != nullptr);
  size_t charged = km.in_use();
  CHECK(charged >= kSize);
  Kmem::free(a);
  CHECK(km.in_use() == 0);
  CHECK(km.live_allocations() == 0);
  CHECK(km.cached_block_bytes() == kSize + Kmem::kHeader);
  void* b = km.alloc(kSize);
  CHECK(b == a);
  CHECK(km.in_use() == charged);
  CHECK(km.live_allocations() == 1);
  CHECK(km.cached_block_bytes() == 0);
  // Another size does not get it.
  Kmem::free(b);
  void* c = km.alloc(kSize + 64);
  CHECK(c != b);
  CHECK(km.cached_block_bytes() == kSize + Kmem::kHeader);
  Kmem::free(c);
}

TEST_CASE("small and large blocks bypass the block cache", "[kmem]") {
  Kmem km;
  Kmem::free(km.alloc(BlockCache::kMinBlock - Kmem::kHeader - 1));
  Kmem::free(km.alloc(BlockCache::kMaxBlock));
  CHECK(km.cached_block_bytes() == 0);
  CHECK(km.in_use() == 0);
}

TEST_CASE("the block cache keeps at most its bound per size", "[kmem]") {
  Kmem km;
  std::vector<void*> v;
  for (int i = 0; i < 3 * BlockCache::kMaxPerSlot; i++) {
    void* p = km.alloc(kSize);
    REQUIRE(p != nullptr);
    v.push_back(p);
  }
  for (void* p : v) Kmem::free(p);
  size_t block = kSize + Kmem::kHeader;
  CHECK(km.cached_block_bytes() == BlockCache::kMaxPerSlot * block);
  CHECK(km.in_use() == 0);
  CHECK(km.live_allocations() == 0);
}

TEST_CASE("with a limit, cached blocks stay within the headroom and never cause ENOMEM", "[kmem][memlimit]") {
  constexpr size_t kLimit = 64 * 1024;
  Kmem km(kLimit);
  std::vector<void*> v;
  for (;;) {
    void* p = km.alloc(kSize);
    if (!p) break;
    v.push_back(p);
  }
  REQUIRE(v.size() > 8);
  // At the limit: whatever is freed may be cached only as far as the
  // limit leaves room next to what is still in use.
  for (size_t i = 0; i + 1 < v.size(); i++) {
    Kmem::free(v[i]);
    CHECK(km.in_use() + km.cached_block_bytes() <= kLimit);
  }
  // One block left in use: the biggest allocation the limit allows still
  // succeeds, cache or not, and one byte more fails.
  size_t room = kLimit - km.in_use() - Kmem::kHeader;
  void* big = km.alloc(room + 1);
  CHECK(big == nullptr);
  big = km.alloc(room);
  CHECK(big != nullptr);
  Kmem::free(big);
  Kmem::free(v.back());
  CHECK(km.in_use() == 0);
  CHECK(km.live_allocations() == 0);
}

TEST_CASE("a freed block is reused only when its charge fits the limit", "[kmem][memlimit]") {
  Kmem km(8 * 1024);
  void* a = km.alloc(kSize);
  REQUIRE(a != nullptr);
  Kmem::free(a);
  REQUIRE(km.cached_block_bytes() > 0);
  // The limit shrank below one block: the cached block is not handed out.
  km.set_limit(kSize / 2);
  CHECK(km.alloc(kSize) == nullptr);
  CHECK(km.in_use() == 0);
}
