// Caller-supplied objects through the pager interface.
#include <atomic>

#include "vm_test_util.h"

using namespace vmtest;
using rump::Result;
using rump::vm::VmObject;

namespace {

// A "file" of `pages` pages whose byte at offset o is 'A' + (o / 4096) % 26.
class PatternObject : public VmObject {
 public:
  PatternObject(Kmem& kmem, uint64_t pages, bool read_only = false)
      : VmObject(kmem, pages * kPageSize, false), read_only_(read_only) {}
  int max_shared_prot() const override { return read_only_ ? PROT_READ | PROT_EXEC : VmObject::max_shared_prot(); }
  Result<void> fill_page(uint64_t offset, std::byte* frame) override {
    fills++;
    if (offset == kBadPage * kPageSize) return rump::err(EIO);
    std::memset(frame, 'A' + static_cast<int>((offset / kPageSize) % 26), kPageSize);
    return {};
  }
  void page_written(uint64_t offset, size_t len) override {
    written_offset = offset;
    written_bytes += len;
  }
  Result<void> sync(uint64_t offset, uint64_t len, int flags) override {
    syncs++;
    synced_len = len;
    return {};
  }
  static constexpr uint64_t kBadPage = 7;
  std::atomic<int> fills{0};
  uint64_t written_offset = 0;
  uint64_t written_bytes = 0;
  int syncs = 0;
  uint64_t synced_len = 0;

 private:
  bool read_only_;
};

RefPtr<PatternObject> make_object(Kmem& kmem, uint64_t pages, bool read_only = false) {
  return RefPtr<PatternObject>(rump::kAdopt, new (kmem) PatternObject(kmem, pages, read_only));
}

}  // namespace

TEST_CASE("a private mapping of a caller's object reads its pages and keeps its writes", "[vm][object]") {
  Kmem kmem;
  size_t baseline = kmem.in_use();
  {
    auto obj = make_object(kmem, 8);
    auto vs = make_space(kmem);
    auto a = vs->map(0, 4 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE, obj.get(), 2 * kPageSize);
    REQUIRE(a.ok());
    CHECK(get(*vs, a.value(), 2) == "CC");
    CHECK(get(*vs, a.value() + kPageSize, 1) == "D");
    CHECK(obj->fills == 2);
    put(*vs, a.value() + kPageSize, "private");
    CHECK(get(*vs, a.value() + kPageSize, 8) == "privateD");
    CHECK(obj->written_bytes == 0);
    // The object itself is unchanged: a shared mapping shows its page.
    auto b = vs->map(0, kPageSize, PROT_READ, MAP_SHARED, obj.get(), 3 * kPageSize);
    REQUIRE(b.ok());
    CHECK(get(*vs, b.value(), 8) == "DDDDDDDD");
    // DONTNEED drops the private copy: the object's page shows again.
    REQUIRE(vs->advise(a.value() + kPageSize, kPageSize, MADV_DONTNEED).ok());
    CHECK(get(*vs, a.value() + kPageSize, 1) == "D");
  }
  CHECK(kmem.in_use() == baseline);
}

TEST_CASE("a shared mapping writes into the caller's object and tells it", "[vm][object]") {
  Kmem kmem;
  auto obj = make_object(kmem, 4);
  auto vs = make_space(kmem);
  auto a = vs->map(0, 4 * kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, obj.get(), 0);
  REQUIRE(a.ok());
  put(*vs, a.value() + kPageSize + 10, "shared");
  CHECK(obj->written_offset == kPageSize + 10);
  CHECK(obj->written_bytes == 6);
  auto other = make_space(kmem);
  auto b = other->map(0, kPageSize, PROT_READ, MAP_SHARED, obj.get(), kPageSize);
  REQUIRE(b.ok());
  CHECK(get(*other, b.value() + 10, 6) == "shared");
  CHECK(vs->msync(a.value(), 2 * kPageSize, MS_SYNC).ok());
  CHECK(obj->syncs == 1);
  CHECK(obj->synced_len == 2 * kPageSize);
  unsigned char vec[4];
  REQUIRE(vs->mincore(a.value(), 4 * kPageSize, vec).ok());
  CHECK(vec[0] == 0);
  CHECK(vec[1] == 1);
}

TEST_CASE("pages past the object's end fault, a pager error reaches the copy", "[vm][object]") {
  Kmem kmem;
  auto obj = make_object(kmem, 8);
  auto vs = make_space(kmem);
  auto a = vs->map(0, 10 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE, obj.get(), 0);
  REQUIRE(a.ok());
  CHECK(copyin_error(*vs, a.value() + 8 * kPageSize, 1) == EFAULT);
  CHECK(copyout_error(*vs, a.value() + 9 * kPageSize, 1) == EFAULT);
  size_t done = 0;
  CHECK(copyin_error(*vs, a.value() + 6 * kPageSize, 2 * kPageSize, &done) == EIO);
  CHECK(done == kPageSize);
}

TEST_CASE("a read-only object cannot be mapped shared writable", "[vm][object]") {
  Kmem kmem;
  auto obj = make_object(kmem, 2, true);
  auto vs = make_space(kmem);
  CHECK(vs->map(0, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, obj.get(), 0).error() == EACCES);
  auto a = vs->map(0, kPageSize, PROT_READ, MAP_SHARED, obj.get(), 0);
  REQUIRE(a.ok());
  CHECK(vs->protect(a.value(), kPageSize, PROT_READ | PROT_WRITE).error() == EACCES);
  // Private copies may be written.
  CHECK(vs->map(0, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE, obj.get(), 0).ok());
}

TEST_CASE("fork of a private object mapping shares unwritten pages and isolates writes", "[vm][object]") {
  Kmem kmem;
  auto obj = make_object(kmem, 4);
  auto parent = make_space(kmem);
  auto a = parent->map(0, 4 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE, obj.get(), 0);
  REQUIRE(a.ok());
  put(*parent, a.value(), "mine");
  auto child = parent->fork();
  REQUIRE(child.ok());
  CHECK(get(*child.value(), a.value(), 5) == "mineA");
  put(*child.value(), a.value() + kPageSize, "kid");
  CHECK(get(*parent, a.value() + kPageSize, 3) == "BBB");
  CHECK(get(*child.value(), a.value() + kPageSize, 4) == "kidB");
}
