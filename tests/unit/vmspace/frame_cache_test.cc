// Frames come from chunks that the Kmem caches when they are freed
// (base/chunk_cache.h): a freed chunk is reused, zeroed, by the next
// fault; the cache is bounded by its own size and by the memory limit;
// freed frames are uncharged at once.
#include <catch2/catch.hpp>

#include <string>

#include "base/chunk_cache.h"
#include "vm_test_util.h"

using namespace vmtest;
using rump::ChunkCache;

namespace {

constexpr uint64_t kChunk = ChunkCache::kChunkBytes;
constexpr uint64_t k1M = 1 << 20;

// Writes one non-zero byte into every page of [addr, addr + len).
void touch_pages(Vmspace& vs, uint64_t addr, uint64_t len) {
  for (uint64_t off = 0; off < len; off += kPageSize) put(vs, addr + off, "x");
}

}  // namespace

TEST_CASE("frames freed by an unmap wait in the Kmem's cache and come back zeroed", "[vm][frames]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  size_t base = kmem.in_use();
  CHECK(kmem.cached_chunks() == 0);
  uint64_t a = map_anon(*vs, k1M);
  for (uint64_t off = 0; off < k1M; off += kPageSize) put(*vs, a + off + 100, std::string(64, 'x'));
  CHECK(kmem.in_use() >= base + k1M);
  CHECK(kmem.cached_chunks() == 0);
  REQUIRE(vs->unmap(a, k1M).ok());
  // Every frame is uncharged, every chunk waits.
  CHECK(kmem.in_use() == base);
  CHECK(kmem.cached_chunks() == k1M / kChunk);
  // The next write faults take the cached chunks, and see zeros, not the
  // old bytes.
  uint64_t b = map_anon(*vs, k1M);
  touch_pages(*vs, b, k1M);
  for (uint64_t off = 0; off < k1M; off += kPageSize) {
    INFO("page at " << off);
    REQUIRE(get(*vs, b + off + 100, 64) == std::string(64, '\0'));
  }
  CHECK(kmem.cached_chunks() == 0);
  REQUIRE(vs->unmap(b, k1M).ok());
  CHECK(kmem.in_use() == base);
}

TEST_CASE("the frame cache holds at most kMaxCached chunks", "[vm][frames]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t len = (ChunkCache::kMaxCached + 8) * kChunk;
  uint64_t a = map_anon(*vs, len);
  touch_pages(*vs, a, len);
  REQUIRE(vs->unmap(a, len).ok());
  CHECK(kmem.cached_chunks() == ChunkCache::kMaxCached);
}

TEST_CASE("under a memory limit, cached chunks and memory in use stay within the limit", "[vm][frames]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, k1M);
  touch_pages(*vs, a, k1M);
  // A limit that leaves room for about half of the chunks once a is gone.
  const size_t limit = kmem.in_use() - k1M / 2;
  kmem.set_limit(limit);
  REQUIRE(vs->unmap(a, k1M).ok());
  size_t cached = kmem.cached_chunks();
  CHECK(cached > 0);
  CHECK(cached < k1M / kChunk);
  CHECK(kmem.in_use() + cached * kChunk <= limit);
  // Cached chunks are charged to nobody: the space can use what the limit
  // leaves, and takes them back.
  uint64_t c = map_anon(*vs, k1M / 4);
  touch_pages(*vs, c, k1M / 4);
  CHECK(kmem.cached_chunks() == cached - k1M / 4 / kChunk);
  CHECK(kmem.in_use() <= limit);
}
