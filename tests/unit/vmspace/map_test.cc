// Map management: mmap placement and validation, munmap, mprotect, madvise,
// minherit, mincore, mlock, msync, mremap; splitting and merging entries.
#include "vm_test_util.h"

using namespace vmtest;
using rump::vm::Inherit;
using rump::vm::kDefaultMax;
using rump::vm::kDefaultMin;

TEST_CASE("anonymous private memory reads as zero and gets pages only when written", "[vm][map]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 3 * kPageSize);
  CHECK(a % kPageSize == 0);
  CHECK(a >= kDefaultMin);
  CHECK(a + 3 * kPageSize <= kDefaultMax);
  CHECK(get(*vs, a, 3 * kPageSize) == std::string(3 * kPageSize, '\0'));
  CHECK(vs->resident_pages() == 0);
  put(*vs, a + kPageSize + 5, "hello");
  CHECK(vs->resident_pages() == 1);
  CHECK(get(*vs, a + kPageSize + 5, 5) == "hello");
  CHECK(vs->mapped_bytes() == 3 * kPageSize);
}

TEST_CASE("mmap validates its arguments like Linux", "[vm][map]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  const int rw = PROT_READ | PROT_WRITE;
  CHECK(vs->map(0, 0, rw, MAP_PRIVATE | MAP_ANONYMOUS).error() == EINVAL);
  CHECK(vs->map(0, kPageSize, rw, MAP_ANONYMOUS).error() == EINVAL);  // neither shared nor private
  CHECK(vs->map(0x100001, kPageSize, rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED).error() == EINVAL);
  CHECK(vs->map(0, kPageSize, rw, MAP_PRIVATE | MAP_ANONYMOUS, nullptr, 100).error() == EINVAL);
  CHECK(vs->map(0, kPageSize, 0x100, MAP_PRIVATE | MAP_ANONYMOUS).error() == EINVAL);
  CHECK(vs->map(0, kPageSize, rw, MAP_PRIVATE).error() == EBADF);  // no object
  CHECK(vs->map(0x1000, kPageSize, rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED).error() == EPERM);
  CHECK(vs->map(kDefaultMax, kPageSize, rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED).error() == ENOMEM);
  CHECK(vs->map(0, ~uint64_t{0}, rw, MAP_PRIVATE | MAP_ANONYMOUS).error() == ENOMEM);
  CHECK(vs->map(0, kPageSize, rw, MAP_PRIVATE | MAP_ANONYMOUS, nullptr, 0, PROT_READ).error() == EACCES);
  CHECK(vs->map(0, kPageSize, rw, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x800000).error() == EOPNOTSUPP);
  CHECK(vs->entry_count() == 0);
  // An unaligned length is rounded up.
  auto a = vs->map(0, 10, rw, MAP_PRIVATE | MAP_ANONYMOUS);
  REQUIRE(a.ok());
  CHECK(vs->mapped_bytes() == kPageSize);
}

TEST_CASE("a free hint is honoured, otherwise placement is top-down", "[vm][map]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  CHECK(map_anon(*vs, kPageSize, PROT_READ, MAP_PRIVATE, 0x200000) == 0x200000);
  CHECK(map_anon(*vs, kPageSize, PROT_READ, MAP_PRIVATE, 0x200000) == kDefaultMax - kPageSize);
  CHECK(map_anon(*vs, kPageSize, PROT_WRITE, MAP_PRIVATE) == kDefaultMax - 2 * kPageSize);
  // A hint that is not page aligned is rounded down.
  CHECK(map_anon(*vs, kPageSize, PROT_READ, MAP_PRIVATE, 0x300123) == 0x300000);
}

TEST_CASE("MAP_FIXED_NOREPLACE over a mapping is EEXIST, MAP_FIXED replaces it", "[vm][map]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 4 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0x400000);
  fill(*vs, a, 4 * kPageSize, 'a');
  CHECK(vs->map(a + kPageSize, kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE).error() ==
        EEXIST);
  CHECK(vs->map(a - kPageSize, 2 * kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE).error() ==
        EEXIST);
  CHECK(get(*vs, a + kPageSize, 1) == "a");
  auto r = vs->map(a + kPageSize, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  REQUIRE(r.ok());
  CHECK(r.value() == a + kPageSize);
  CHECK(get(*vs, a, 3 * kPageSize) ==
        std::string(kPageSize, 'a') + std::string(kPageSize, '\0') + std::string(kPageSize, 'a'));
  CHECK(vs->mapped_bytes() == 4 * kPageSize);
  CHECK(vs->map(a + 8 * kPageSize, kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE).ok());
}

TEST_CASE("adjacent compatible mappings merge into one entry", "[vm][map]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t base = 0x500000;
  map_anon(*vs, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, base);
  put(*vs, base, "first");
  map_anon(*vs, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, base + kPageSize);
  put(*vs, base + kPageSize, "second");
  map_anon(*vs, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, base - kPageSize);
  REQUIRE(entries(*vs).size() == 1);
  CHECK(entries(*vs)[0].start == base - kPageSize);
  CHECK(entries(*vs)[0].end == base + 2 * kPageSize);
  CHECK(get(*vs, base, 5) == "first");
  CHECK(get(*vs, base + kPageSize, 6) == "second");
  // Different protection keeps them apart.
  map_anon(*vs, kPageSize, PROT_READ, MAP_PRIVATE | MAP_FIXED, base + 2 * kPageSize);
  CHECK(entries(*vs).size() == 2);
}

TEST_CASE("mprotect in the middle of an entry splits it in three, and back merges it", "[vm][map]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 5 * kPageSize);
  fill(*vs, a, 5 * kPageSize, 'z');
  REQUIRE(vs->protect(a + kPageSize, 2 * kPageSize, PROT_READ).ok());
  auto e = entries(*vs);
  REQUIRE(e.size() == 3);
  CHECK(e[0].end == a + kPageSize);
  CHECK(e[1].start == a + kPageSize);
  CHECK(e[1].end == a + 3 * kPageSize);
  CHECK(e[1].prot == PROT_READ);
  CHECK(e[2].prot == (PROT_READ | PROT_WRITE));
  CHECK(copyout_error(*vs, a + kPageSize, 1) == EFAULT);
  CHECK(copyout_error(*vs, a + 2 * kPageSize + 100, 1) == EFAULT);
  CHECK(copyout_error(*vs, a + 3 * kPageSize, 1) == 0);
  CHECK(get(*vs, a + kPageSize, 1) == "z");
  REQUIRE(vs->protect(a + kPageSize, 2 * kPageSize, PROT_READ | PROT_WRITE).ok());
  CHECK(entries(*vs).size() == 1);
  std::string want(5 * kPageSize, 'z');
  want[3 * kPageSize] = 'x';  // the copyout above
  CHECK(get(*vs, a, 5 * kPageSize) == want);
}

TEST_CASE("mprotect beyond max prot is EACCES, over a hole ENOMEM, and changes nothing", "[vm][map]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  auto r = vs->map(0x600000, 2 * kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, nullptr, 0,
                   PROT_READ | PROT_EXEC);
  REQUIRE(r.ok());
  CHECK(vs->protect(0x600000, kPageSize, PROT_READ | PROT_WRITE).error() == EACCES);
  CHECK(vs->protect(0x600000, kPageSize, PROT_READ | PROT_EXEC).ok());
  CHECK(vs->protect(0x600000, 4 * kPageSize, PROT_NONE).error() == ENOMEM);
  CHECK(entries(*vs)[0].prot == (PROT_READ | PROT_EXEC));
  CHECK(vs->protect(0x600001, kPageSize, PROT_READ).error() == EINVAL);
  CHECK(vs->protect(0x600000, kPageSize, 0x1000).error() == EINVAL);
  CHECK(vs->protect(0x600000, 0, PROT_NONE).ok());
  CHECK(vs->protect(0x600000, kPageSize, PROT_NONE).ok());
  CHECK(copyin_error(*vs, 0x600000, 1) == EFAULT);
}

TEST_CASE("write-only memory can be written but not read", "[vm][map]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, kPageSize, PROT_WRITE);
  CHECK(copyout_error(*vs, a, 10) == 0);
  CHECK(copyin_error(*vs, a, 10) == EFAULT);
}

TEST_CASE("munmap in the middle splits an entry; holes in the range are fine", "[vm][map]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 6 * kPageSize);
  fill(*vs, a, 6 * kPageSize, 'q');
  REQUIRE(vs->unmap(a + 2 * kPageSize, 2 * kPageSize).ok());
  auto e = entries(*vs);
  REQUIRE(e.size() == 2);
  CHECK(e[0].end == a + 2 * kPageSize);
  CHECK(e[1].start == a + 4 * kPageSize);
  CHECK(vs->mapped_bytes() == 4 * kPageSize);
  CHECK(vs->resident_pages() == 4);
  CHECK(copyin_error(*vs, a + 2 * kPageSize, 1) == EFAULT);
  CHECK(get(*vs, a + kPageSize, 1) == "q");
  CHECK(get(*vs, a + 4 * kPageSize, 1) == "q");
  // Re-mapping the hole gives zeros, not the old data.
  map_anon(*vs, 2 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, a + 2 * kPageSize);
  CHECK(get(*vs, a + 2 * kPageSize, 2 * kPageSize) == std::string(2 * kPageSize, '\0'));
  CHECK(get(*vs, a + kPageSize, 1) == "q");
  // A range with holes and beyond every mapping.
  REQUIRE(vs->unmap(a - 10 * kPageSize, 16 * kPageSize).ok());
  CHECK(vs->entry_count() == 0);
  CHECK(vs->mapped_bytes() == 0);
  CHECK(vs->resident_pages() == 0);
}

TEST_CASE("munmap rejects an unaligned address, length 0 and ranges past the top", "[vm][map]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  CHECK(vs->unmap(0x10001, kPageSize).error() == EINVAL);
  CHECK(vs->unmap(0x10000, 0).error() == EINVAL);
  CHECK(vs->unmap(kDefaultMax - kPageSize, 2 * kPageSize).error() == EINVAL);
  CHECK(vs->unmap(0x10000, kPageSize).ok());
}

TEST_CASE("MADV_DONTNEED makes private anonymous memory read zero again", "[vm][advise]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 4 * kPageSize);
  fill(*vs, a, 4 * kPageSize, 'd');
  REQUIRE(vs->advise(a + kPageSize, 2 * kPageSize, MADV_DONTNEED).ok());
  CHECK(get(*vs, a, 4 * kPageSize) == std::string(kPageSize, 'd') + std::string(2 * kPageSize, '\0') +
                                          std::string(kPageSize, 'd'));
  CHECK(vs->resident_pages() == 2);
  REQUIRE(vs->advise(a, 4 * kPageSize, MADV_FREE).ok());
  CHECK(vs->resident_pages() == 0);
}

TEST_CASE("MADV_DONTNEED keeps the data of shared memory", "[vm][advise]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED);
  put(*vs, a, "keep");
  REQUIRE(vs->advise(a, kPageSize, MADV_DONTNEED).ok());
  CHECK(get(*vs, a, 4) == "keep");
}

TEST_CASE("madvise: unknown advice EINVAL, holes ENOMEM, MADV_FREE of shared EINVAL", "[vm][advise]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 2 * kPageSize);
  uint64_t s = map_anon(*vs, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED);
  CHECK(vs->advise(a, kPageSize, 12345).error() == EINVAL);
  CHECK(vs->advise(a + 1, kPageSize, MADV_NORMAL).error() == EINVAL);
  CHECK(vs->advise(a, 0, MADV_DONTNEED).ok());
  CHECK(vs->advise(a, kPageSize, MADV_WILLNEED).ok());
  CHECK(vs->advise(a, kPageSize, MADV_SEQUENTIAL).ok());
  CHECK(vs->advise(a, 3 * kPageSize, MADV_WILLNEED).error() == ENOMEM);
  CHECK(vs->advise(s, kPageSize, MADV_FREE).error() == EINVAL);
  CHECK(vs->advise(s, kPageSize, MADV_WIPEONFORK).error() == EINVAL);
  REQUIRE(vs->mlock(a, kPageSize).ok());
  CHECK(vs->advise(a, kPageSize, MADV_DONTNEED).error() == EINVAL);
}

TEST_CASE("mincore reports which pages are resident", "[vm][mincore]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 4 * kPageSize);
  put(*vs, a + 2 * kPageSize, "x");
  unsigned char vec[4] = {9, 9, 9, 9};
  REQUIRE(vs->mincore(a, 4 * kPageSize, vec).ok());
  CHECK(vec[0] == 0);
  CHECK(vec[1] == 0);
  CHECK(vec[2] == 1);
  CHECK(vec[3] == 0);
  CHECK(vs->mincore(a + 1, kPageSize, vec).error() == EINVAL);
  CHECK(vs->mincore(a, 8 * kPageSize, vec).error() == ENOMEM);
}

TEST_CASE("mlock counts locked bytes once, makes pages resident, and munlock undoes it", "[vm][mlock]") {
  Kmem kmem;
  rump::vm::VmspaceOptions o;
  o.lock_limit = 4 * kPageSize;
  auto vs = make_space(kmem, o);
  uint64_t a = map_anon(*vs, 8 * kPageSize);
  REQUIRE(vs->mlock(a + 100, 2 * kPageSize).ok());  // start rounded down: 3 pages
  CHECK(vs->locked_bytes() == 3 * kPageSize);
  CHECK(vs->resident_pages() == 3);
  REQUIRE(vs->mlock(a, 2 * kPageSize).ok());
  CHECK(vs->locked_bytes() == 3 * kPageSize);
  CHECK(vs->mlock(a, 6 * kPageSize).error() == ENOMEM);
  CHECK(vs->mlock(a, 20 * kPageSize).error() == ENOMEM);  // hole
  REQUIRE(vs->munlock(a + kPageSize, kPageSize).ok());
  CHECK(vs->locked_bytes() == 2 * kPageSize);
  REQUIRE(vs->unmap(a, 8 * kPageSize).ok());
  CHECK(vs->locked_bytes() == 0);
}

TEST_CASE("msync validates flags and ranges like Linux", "[vm][msync]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 2 * kPageSize);
  CHECK(vs->msync(a, 2 * kPageSize, MS_SYNC).ok());
  CHECK(vs->msync(a, 2 * kPageSize, MS_ASYNC | MS_INVALIDATE).ok());
  CHECK(vs->msync(a, kPageSize, MS_SYNC | MS_ASYNC).error() == EINVAL);
  CHECK(vs->msync(a, kPageSize, 0x100).error() == EINVAL);
  CHECK(vs->msync(a + 1, kPageSize, MS_SYNC).error() == EINVAL);
  CHECK(vs->msync(a, 3 * kPageSize, MS_SYNC).error() == ENOMEM);
  CHECK(vs->msync(a + 4 * kPageSize, kPageSize, MS_SYNC).error() == ENOMEM);
  REQUIRE(vs->mlock(a, kPageSize).ok());
  CHECK(vs->msync(a, kPageSize, MS_INVALIDATE).error() == EBUSY);
}

TEST_CASE("mremap shrinks, grows in place, and moves only with MREMAP_MAYMOVE", "[vm][mremap]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 4 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, 0x800000);
  fill(*vs, a, 4 * kPageSize, 'm');
  // Shrink.
  REQUIRE(vs->mremap(a, 4 * kPageSize, 2 * kPageSize, 0).value() == a);
  CHECK(vs->mapped_bytes() == 2 * kPageSize);
  CHECK(copyin_error(*vs, a + 2 * kPageSize, 1) == EFAULT);
  // Grow in place: the new part reads zero, not the old data.
  REQUIRE(vs->mremap(a, 2 * kPageSize, 3 * kPageSize, 0).value() == a);
  CHECK(get(*vs, a, 3 * kPageSize) == std::string(2 * kPageSize, 'm') + std::string(kPageSize, '\0'));
  // Blocked by a neighbour.
  map_anon(*vs, kPageSize, PROT_READ, MAP_PRIVATE | MAP_FIXED, a + 3 * kPageSize);
  CHECK(vs->mremap(a, 3 * kPageSize, 5 * kPageSize, 0).error() == ENOMEM);
  auto moved = vs->mremap(a, 3 * kPageSize, 5 * kPageSize, MREMAP_MAYMOVE);
  REQUIRE(moved.ok());
  CHECK(moved.value() != a);
  CHECK(copyin_error(*vs, a, 1) == EFAULT);
  CHECK(get(*vs, moved.value(), 5 * kPageSize) ==
        std::string(2 * kPageSize, 'm') + std::string(3 * kPageSize, '\0'));
  CHECK(vs->mapped_bytes() == 6 * kPageSize);
}

TEST_CASE("mremap with MREMAP_FIXED moves onto a given address and replaces what was there", "[vm][mremap]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 2 * kPageSize);
  put(*vs, a, "moving");
  uint64_t target = map_anon(*vs, 4 * kPageSize);
  put(*vs, target, "old");
  auto r = vs->mremap(a, 2 * kPageSize, 2 * kPageSize, MREMAP_MAYMOVE | MREMAP_FIXED, target + kPageSize);
  REQUIRE(r.ok());
  CHECK(r.value() == target + kPageSize);
  CHECK(get(*vs, target, 3) == "old");
  CHECK(get(*vs, target + kPageSize, 6) == "moving");
  CHECK(copyin_error(*vs, a, 1) == EFAULT);
  CHECK(vs->mapped_bytes() == 4 * kPageSize);
}

TEST_CASE("mremap errors: flags EINVAL, unmapped or straddling old range EFAULT", "[vm][mremap]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 2 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, 0x900000);
  map_anon(*vs, 2 * kPageSize, PROT_READ, MAP_PRIVATE | MAP_FIXED, 0x900000 + 2 * kPageSize);
  CHECK(vs->mremap(a, kPageSize, kPageSize, MREMAP_FIXED, 0xa00000).error() == EINVAL);
  CHECK(vs->mremap(a, kPageSize, kPageSize, 0x80).error() == EINVAL);
  CHECK(vs->mremap(a + 1, kPageSize, kPageSize, 0).error() == EINVAL);
  CHECK(vs->mremap(a, kPageSize, 0, 0).error() == EINVAL);
  CHECK(vs->mremap(a, 4 * kPageSize, 5 * kPageSize, MREMAP_MAYMOVE).error() == EFAULT);
  CHECK(vs->mremap(0x700000, kPageSize, 2 * kPageSize, MREMAP_MAYMOVE).error() == EFAULT);
  CHECK(vs->mremap(a, 2 * kPageSize, 2 * kPageSize, MREMAP_MAYMOVE | MREMAP_FIXED, a + kPageSize).error() == EINVAL);
}

TEST_CASE("a mapping beyond the space's size limit is ENOMEM", "[vm][limit]") {
  Kmem kmem;
  rump::vm::VmspaceOptions o;
  o.size_limit = 8 * kPageSize;
  auto vs = make_space(kmem, o);
  uint64_t a = map_anon(*vs, 6 * kPageSize, PROT_READ, MAP_PRIVATE | MAP_FIXED, 0x400000);
  CHECK(vs->map(0, 4 * kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS).error() == ENOMEM);
  CHECK(vs->mremap(a, 6 * kPageSize, 10 * kPageSize, MREMAP_MAYMOVE).error() == ENOMEM);
  // Replacing with MAP_FIXED does not count twice.
  CHECK(vs->map(a, 8 * kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED).ok());
}

TEST_CASE("page faults past the Kmem limit are ENOMEM and teardown returns every byte", "[vm][limit]") {
  Kmem kmem;
  size_t baseline = kmem.in_use();
  {
    auto vs = make_space(kmem);
    uint64_t a = map_anon(*vs, 64 * kPageSize);
    kmem.set_limit(kmem.in_use() + 8 * kPageSize);
    size_t done = 0;
    std::vector<char> buf(64 * kPageSize, 'x');
    CHECK(vs->copyout(buf.data(), a, buf.size(), &done).error() == ENOMEM);
    CHECK(done > 0);
    CHECK(done < 8 * kPageSize);
    CHECK(done % kPageSize == 0);
    kmem.set_limit(0);
    CHECK(vs->copyout(buf.data(), a, buf.size()).ok());
  }
  CHECK(kmem.in_use() == baseline);
  CHECK(kmem.live_allocations() == 0);
}
