// fork: copy-on-write isolation, inheritance, cost, teardown.
#include "vm_test_util.h"

using namespace vmtest;
using rump::vm::Inherit;

namespace {
RefPtr<Vmspace> fork_of(Vmspace& vs) {
  auto r = vs.fork();
  REQUIRE(r.ok());
  return std::move(r).value();
}
}  // namespace

TEST_CASE("after fork, writes of the parent and of the child stay on their side", "[vm][fork]") {
  Kmem kmem;
  auto parent = make_space(kmem);
  uint64_t a = map_anon(*parent, 2 * kPageSize);
  put(*parent, a, "original");
  auto child = fork_of(*parent);
  CHECK(get(*child, a, 8) == "original");
  put(*parent, a, "parent!!");
  CHECK(get(*child, a, 8) == "original");
  put(*child, a + 4, "CHLD");
  CHECK(get(*child, a, 8) == "origCHLD");
  CHECK(get(*parent, a, 8) == "parent!!");
  // The page untouched before fork: the child's write stays in the child.
  put(*child, a + kPageSize, "second");
  CHECK(get(*parent, a + kPageSize, 6) == std::string(6, '\0'));
}

TEST_CASE("three generations are isolated both ways", "[vm][fork]") {
  Kmem kmem;
  size_t baseline = kmem.in_use();
  {
    auto g1 = make_space(kmem);
    uint64_t a = map_anon(*g1, 4 * kPageSize);
    fill(*g1, a, 4 * kPageSize, '1');
    auto g2 = fork_of(*g1);
    put(*g2, a + kPageSize, "two");
    auto g3 = fork_of(*g2);
    put(*g3, a + 2 * kPageSize, "three");
    put(*g1, a + 3 * kPageSize, "one");
    put(*g2, a, "TWO");
    CHECK(get(*g1, a, 3) == "111");
    CHECK(get(*g1, a + kPageSize, 3) == "111");
    CHECK(get(*g1, a + 3 * kPageSize, 3) == "one");
    CHECK(get(*g2, a, 3) == "TWO");
    CHECK(get(*g2, a + kPageSize, 3) == "two");
    CHECK(get(*g2, a + 2 * kPageSize, 5) == "11111");
    CHECK(get(*g2, a + 3 * kPageSize, 3) == "111");
    CHECK(get(*g3, a, 3) == "111");
    CHECK(get(*g3, a + kPageSize, 3) == "two");
    CHECK(get(*g3, a + 2 * kPageSize, 5) == "three");
    CHECK(get(*g3, a + 3 * kPageSize, 3) == "111");
    // The middle generation goes first; the others keep their images.
    g2 = nullptr;
    CHECK(get(*g3, a + kPageSize, 3) == "two");
    put(*g1, a + kPageSize, "uno");
    CHECK(get(*g3, a + kPageSize, 3) == "two");
  }
  CHECK(kmem.in_use() == baseline);
}

TEST_CASE("fork copies no page contents up front", "[vm][fork]") {
  Kmem kmem;
  auto parent = make_space(kmem);
  uint64_t a = map_anon(*parent, 256 * kPageSize);
  fill(*parent, a, 256 * kPageSize, 'f');
  size_t before = kmem.in_use();
  auto child = fork_of(*parent);
  size_t cost = kmem.in_use() - before;
  CHECK(cost < 32 * kPageSize);  // a table, not 1 MiB of copies
  CHECK(child->resident_pages() == 256);
  put(*child, a, "c");
  CHECK(kmem.in_use() - before < cost + 2 * kPageSize);  // one page copied
}

TEST_CASE("shared mappings stay shared across fork", "[vm][fork]") {
  Kmem kmem;
  auto parent = make_space(kmem);
  uint64_t a = map_anon(*parent, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED);
  auto child = fork_of(*parent);
  put(*child, a, "from child");
  CHECK(get(*parent, a, 10) == "from child");
  put(*parent, a, "from parnt");
  CHECK(get(*child, a, 10) == "from parnt");
}

TEST_CASE("inherit none leaves the range out of the child; zero gives it fresh memory", "[vm][fork]") {
  Kmem kmem;
  auto parent = make_space(kmem);
  uint64_t a = map_anon(*parent, 3 * kPageSize);
  fill(*parent, a, 3 * kPageSize, 'i');
  REQUIRE(parent->inherit(a, kPageSize, Inherit::kNone).ok());
  REQUIRE(parent->advise(a + 2 * kPageSize, kPageSize, MADV_WIPEONFORK).ok());
  CHECK(parent->entry_count() == 3);
  auto child = fork_of(*parent);
  CHECK(copyin_error(*child, a, 1) == EFAULT);
  CHECK(get(*child, a + kPageSize, 1) == "i");
  CHECK(get(*child, a + 2 * kPageSize, 1) == std::string(1, '\0'));
  CHECK(get(*parent, a + 2 * kPageSize, 1) == "i");
  CHECK(child->mapped_bytes() == 2 * kPageSize);
  // MADV_DONTFORK / MADV_DOFORK.
  REQUIRE(parent->advise(a + kPageSize, kPageSize, MADV_DONTFORK).ok());
  REQUIRE(parent->advise(a, kPageSize, MADV_DOFORK).ok());
  auto child2 = fork_of(*parent);
  CHECK(get(*child2, a, 1) == "i");
  CHECK(copyin_error(*child2, a + kPageSize, 1) == EFAULT);
  CHECK(parent->inherit(a, kPageSize * 10, Inherit::kCopy).error() == ENOMEM);
}

TEST_CASE("inherit share of private memory makes writes visible both ways", "[vm][fork]") {
  Kmem kmem;
  size_t baseline = kmem.in_use();
  {
    auto parent = make_space(kmem);
    uint64_t a = map_anon(*parent, 4 * kPageSize);
    put(*parent, a, "before");
    REQUIRE(parent->protect(a + kPageSize, kPageSize, PROT_READ).ok());  // split halves share a layer
    REQUIRE(parent->inherit(a, 4 * kPageSize, Inherit::kShare).ok());
    auto child = fork_of(*parent);
    put(*child, a, "child!");
    CHECK(get(*parent, a, 6) == "child!");
    put(*parent, a + 2 * kPageSize, "parent");
    CHECK(get(*child, a + 2 * kPageSize, 6) == "parent");
    // Unmapping in the parent does not take the pages from the child.
    REQUIRE(parent->unmap(a, 4 * kPageSize).ok());
    CHECK(get(*child, a, 6) == "child!");
  }
  CHECK(kmem.in_use() == baseline);
}

TEST_CASE("mlock is not inherited", "[vm][fork]") {
  Kmem kmem;
  auto parent = make_space(kmem);
  uint64_t a = map_anon(*parent, kPageSize);
  REQUIRE(parent->mlock(a, kPageSize).ok());
  auto child = fork_of(*parent);
  CHECK(child->locked_bytes() == 0);
  CHECK(parent->locked_bytes() == kPageSize);
}

TEST_CASE("teardown of forked spaces with every kind of mapping frees every byte", "[vm][fork]") {
  Kmem kmem;
  size_t baseline = kmem.in_use();
  {
    auto p = make_space(kmem);
    uint64_t a = map_anon(*p, 16 * kPageSize);
    uint64_t s = map_anon(*p, 4 * kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED);
    fill(*p, a, 16 * kPageSize, 'x');
    fill(*p, s, 4 * kPageSize, 'y');
    REQUIRE(p->protect(a + 4 * kPageSize, 4 * kPageSize, PROT_READ).ok());
    auto c = fork_of(*p);
    fill(*c, a, 2 * kPageSize, 'c');
    REQUIRE(c->mremap(a, 4 * kPageSize, 32 * kPageSize, MREMAP_MAYMOVE).ok());
    auto gc = fork_of(*c);
    REQUIRE(p->unmap(a + 8 * kPageSize, kPageSize).ok());
    REQUIRE(gc->advise(s, 4 * kPageSize, MADV_DONTNEED).ok());
  }
  CHECK(kmem.in_use() == baseline);
  CHECK(kmem.live_allocations() == 0);
}
