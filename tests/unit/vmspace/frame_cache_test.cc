// Frames come from chunks that the Kmem caches when they are freed
// (base/chunk_cache.h): a freed chunk is reused, zeroed, by the next
// fault; the cache is bounded by its own size and by the memory limit;
// freed frames are uncharged at once. A FramePool (page caches) shares its
// current chunk among objects.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/chunk_cache.h"
#include "page.h"
#include "vm_test_util.h"

using namespace vmtest;
using rump::ChunkCache;
using rump::vm::FrameChunk;
using rump::vm::FramePool;
using rump::vm::Page;

namespace {

constexpr uint64_t kChunk = ChunkCache::kChunkBytes;
constexpr uint64_t k1M = 1 << 20;

// Writes one non-zero byte into every page of [addr, addr + len).
void touch_pages(Vmspace& vs, uint64_t addr, uint64_t len) {
  for (uint64_t off = 0; off < len; off += kPageSize) put(vs, addr + off, "x");
}

// A pool, let go of at the end of the scope.
struct PoolRef {
  explicit PoolRef(Kmem& k) : p(FramePool::create(k)) { REQUIRE(p != nullptr); }
  ~PoolRef() { p->unref(); }
  FramePool& operator*() const { return *p; }
  FramePool* p;
};

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

// Page caches take frames from one FramePool: objects share its current
// chunk, so small objects take a frame each, not a chunk each.
TEST_CASE("a frame pool hands out a chunk's frames in order, zeroed, to any caller", "[vm][frames]") {
  Kmem kmem;
  size_t base = kmem.in_use();
  FramePool* pool = FramePool::create(kmem);
  REQUIRE(pool != nullptr);
  size_t with_pool = kmem.in_use();
  std::vector<Page*> pages;
  for (uint64_t i = 0; i < kChunk / kPageSize + 1; i++) {
    auto p = Page::alloc_pooled(kmem, *pool);
    REQUIRE(p.ok());
    pages.push_back(*p);
  }
  // The first chunk's frames lie one after the other; the next one starts
  // a new chunk.
  for (size_t i = 1; i < kChunk / kPageSize; i++) CHECK(pages[i]->data() == pages[0]->data() + i * kPageSize);
  CHECK(pages.back()->data() != pages[0]->data() + kChunk);
  CHECK(kmem.in_use() >= base + pages.size() * kPageSize);
  for (Page* p : pages) {
    CHECK(std::all_of(p->data(), p->data() + kPageSize, [](std::byte b) { return b == std::byte{0}; }));
    std::memset(p->data(), 0x5a, kPageSize);
  }
  // Every frame freed: uncharged; the pool's chunks go back when it goes,
  // and reused frames come out zeroed again.
  for (Page* p : pages) p->release();
  CHECK(kmem.in_use() == with_pool);
  pool->unref();
  FramePool* again = FramePool::create(kmem);
  REQUIRE(again != nullptr);
  for (int i = 0; i < 20; i++) {
    auto p = Page::alloc_pooled(kmem, *again);
    REQUIRE(p.ok());
    CHECK(std::all_of((*p)->data(), (*p)->data() + kPageSize, [](std::byte b) { return b == std::byte{0}; }));
    (*p)->release();
  }
  again->unref();
  CHECK(kmem.in_use() == base);
}

TEST_CASE("a frame pool under the memory limit says ENOMEM and charges nothing", "[vm][frames]") {
  Kmem kmem;
  PoolRef pool(kmem);
  // Room for two frames and their Page records, not for a third frame.
  kmem.set_limit(kmem.in_use() + 3 * kPageSize - 1024);
  auto a = Page::alloc_pooled(kmem, *pool);
  auto b = Page::alloc_pooled(kmem, *pool);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  size_t used = kmem.in_use();
  auto c = Page::alloc_pooled(kmem, *pool);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error() == ENOMEM);
  CHECK(kmem.in_use() == used);
  (*a)->release();
  (*b)->release();
}

TEST_CASE("threads taking frames from one pool never get the same frame", "[vm][frames][concurrency]") {
  Kmem kmem;
  PoolRef pool(kmem);
  constexpr int kPer = 200;
  std::vector<Page*> got[2];
  std::thread t[2];
  for (int i = 0; i < 2; i++)
    t[i] = std::thread([&, i] {
      for (int n = 0; n < kPer; n++) {
        auto p = Page::alloc_pooled(kmem, *pool);
        if (!p.ok()) return;
        got[i].push_back(*p);
      }
    });
  for (auto& th : t) th.join();
  REQUIRE(got[0].size() == kPer);
  REQUIRE(got[1].size() == kPer);
  std::set<std::byte*> frames;
  for (auto& v : got)
    for (Page* p : v) frames.insert(p->data());
  CHECK(frames.size() == 2 * kPer);
  for (auto& v : got)
    for (Page* p : v) p->release();
}

// A page cache frees its pages in any order (eviction, a file dropped):
// the frames freed in chunks that some kept page still holds are handed
// out again before the pool takes another chunk, so the pool never holds
// more than one chunk beyond the most frames in use at once.
TEST_CASE("a frame pool hands out freed frames again before it takes a new chunk", "[vm][frames]") {
  Kmem kmem;
  PoolRef pool(kmem);
  constexpr size_t kPer = FrameChunk::kChunkPages;
  std::vector<Page*> pages;
  for (size_t i = 0; i < 3 * kPer; i++) {
    auto p = Page::alloc_pooled(kmem, *pool);
    REQUIRE(p.ok());
    std::memset((*p)->data(), 0x5a, kPageSize);
    pages.push_back(*p);
  }
  CHECK((*pool).chunks() == 3);
  // One page of each chunk stays; the rest are freed.
  std::vector<Page*> kept;
  std::set<std::byte*> freed;
  for (size_t i = 0; i < pages.size(); i++) {
    if (i % kPer == 5) {
      kept.push_back(pages[i]);
    } else {
      freed.insert(pages[i]->data());
      pages[i]->release();
    }
  }
  CHECK((*pool).chunks() == 3);
  // Every frame freed comes back, zeroed, and no chunk is added.
  std::vector<Page*> again;
  for (size_t i = 0; i < freed.size(); i++) {
    auto p = Page::alloc_pooled(kmem, *pool);
    REQUIRE(p.ok());
    INFO("frame " << i);
    CHECK(freed.count((*p)->data()) == 1);
    CHECK(std::all_of((*p)->data(), (*p)->data() + kPageSize, [](std::byte b) { return b == std::byte{0}; }));
    again.push_back(*p);
  }
  CHECK((*pool).chunks() == 3);
  // Only now is a new chunk needed.
  auto extra = Page::alloc_pooled(kmem, *pool);
  REQUIRE(extra.ok());
  CHECK((*pool).chunks() == 4);
  (*extra)->release();
  for (Page* p : again) p->release();
  // A chunk whose last frame goes, and which is not the current one, goes
  // back to the Kmem's cache; the current one stays for the next frame.
  for (Page* p : kept) p->release();
  CHECK((*pool).chunks() == 1);
}

// A page may outlive the last object using the pool: the pool's chunks
// stay until their frames go, then the pool goes with them.
TEST_CASE("a frame pool outlives its last reference until its last frame is freed", "[vm][frames]") {
  Kmem kmem;
  size_t base = kmem.in_use();
  FramePool* pool = FramePool::create(kmem);
  REQUIRE(pool != nullptr);
  std::vector<Page*> pages;
  for (size_t i = 0; i < FrameChunk::kChunkPages + 3; i++) {
    auto p = Page::alloc_pooled(kmem, *pool);
    REQUIRE(p.ok());
    pages.push_back(*p);
  }
  pages.back()->release();
  pages.pop_back();
  pool->unref();
  for (Page* p : pages) {
    std::memset(p->data(), 0x11, kPageSize);
    p->release();
  }
  // Everything is uncharged, the pool's record included (ASan's leak
  // check sees the chunks' records go).
  CHECK(kmem.in_use() == base);
}
