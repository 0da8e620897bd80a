// copyin/copyout, strings, pread/pwrite: bounds, protection, partial copies.
#include "vm_test_util.h"

using namespace vmtest;
using rump::vm::kDefaultMax;
using rump::vm::kDefaultMin;

TEST_CASE("a copy crossing into an unmapped page copies up to it, reports the bytes and fails EFAULT", "[vm][copy]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 2 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, 0x400000);
  size_t done = 99;
  std::vector<char> out(3 * kPageSize, 'p');
  CHECK(vs->copyout(out.data(), a + kPageSize + 10, 2 * kPageSize, &done).error() == EFAULT);
  CHECK(done == kPageSize - 10);
  CHECK(get(*vs, a + 2 * kPageSize - 1, 1) == "p");
  std::vector<char> in(2 * kPageSize, 0);
  CHECK(vs->copyin(a + kPageSize + 10, in.data(), 2 * kPageSize, &done).error() == EFAULT);
  CHECK(done == kPageSize - 10);
  CHECK(in[kPageSize - 11] == 'p');
}

TEST_CASE("a copy crossing into a page without the needed protection stops there", "[vm][copy]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 2 * kPageSize);
  REQUIRE(vs->protect(a + kPageSize, kPageSize, PROT_READ).ok());
  size_t done = 0;
  CHECK(copyout_error(*vs, a + kPageSize - 3, 8, &done) == EFAULT);
  CHECK(done == 3);
  CHECK(copyin_error(*vs, a + kPageSize - 3, 8, &done) == 0);
  CHECK(done == 8);
}

TEST_CASE("wrapping or out-of-range user addresses are EFAULT before anything is touched", "[vm][copy]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  map_anon(*vs, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, kDefaultMax - kPageSize);
  map_anon(*vs, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, kDefaultMin);
  size_t done = 77;
  CHECK(copyout_error(*vs, kDefaultMax - 10, 20, &done) == EFAULT);
  CHECK(done == 0);
  CHECK(get(*vs, kDefaultMax - 10, 10) == std::string(10, '\0'));
  char c;
  CHECK(vs->copyin(~uint64_t{0} - 5, &c, 10, &done).error() == EFAULT);
  CHECK(done == 0);
  CHECK(vs->copyin(0, &c, 1).error() == EFAULT);
  CHECK(vs->copyin(kDefaultMin - 1, &c, 2).error() == EFAULT);
  CHECK(vs->copyin(kDefaultMax, &c, 1).error() == EFAULT);
  CHECK(vs->copyin(0x1234, &c, 0).ok());  // nothing to copy
}

TEST_CASE("copies spanning several entries and many pages are exact", "[vm][copy]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 8 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, 0x400000);
  map_anon(*vs, 8 * kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, a + 8 * kPageSize);
  std::string s(16 * kPageSize - 200, '\0');
  for (size_t i = 0; i < s.size(); i++) s[i] = static_cast<char>(i * 7 + i / 4096);
  put(*vs, a + 100, s);
  CHECK(get(*vs, a + 100, s.size()) == s);
  CHECK(get(*vs, a, 100) == std::string(100, '\0'));
}

TEST_CASE("copyinstr stops at the NUL, is ENAMETOOLONG without one and EFAULT at a hole", "[vm][copy]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, 0x400000);
  put(*vs, a, std::string("hello\0world", 11));
  char buf[64];
  auto r = vs->copyinstr(a, buf, sizeof buf);
  REQUIRE(r.ok());
  CHECK(r.value() == 6);
  CHECK(std::string(buf) == "hello");
  CHECK(vs->copyinstr(a, buf, 5).error() == ENAMETOOLONG);
  CHECK(vs->copyinstr(a, buf, 0).error() == ENAMETOOLONG);
  // A string running into the unmapped page after the mapping.
  fill(*vs, a + kPageSize - 4, 4, 'x');
  CHECK(vs->copyinstr(a + kPageSize - 4, buf, sizeof buf).error() == EFAULT);
  // Across a page boundary inside the mapping it works.
  map_anon(*vs, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, a + kPageSize);
  put(*vs, a + kPageSize, std::string("yz\0", 3));
  r = vs->copyinstr(a + kPageSize - 4, buf, sizeof buf);
  REQUIRE(r.ok());
  CHECK(std::string(buf) == "xxxxyz");
}

TEST_CASE("copyoutstr writes the string with its NUL", "[vm][copy]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, kPageSize);
  fill(*vs, a, 16, '#');
  auto r = vs->copyoutstr("abc", a, 16);
  REQUIRE(r.ok());
  CHECK(r.value() == 4);
  CHECK(get(*vs, a, 5) == std::string("abc\0#", 5));
  CHECK(vs->copyoutstr("abcdef", a, 3).error() == ENAMETOOLONG);
  CHECK(vs->copyoutstr("abc", a + kPageSize - 2, 16).error() == EFAULT);
}

TEST_CASE("pread and pwrite stop short at the first faulting page", "[vm][copy]") {
  Kmem kmem;
  auto vs = make_space(kmem);
  uint64_t a = map_anon(*vs, 2 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, 0x400000);
  std::vector<char> buf(4 * kPageSize, 'w');
  auto w = vs->pwrite(a + 100, buf.data(), buf.size());
  REQUIRE(w.ok());
  CHECK(w.value() == 2 * kPageSize - 100);
  auto r = vs->pread(a, buf.data(), buf.size());
  REQUIRE(r.ok());
  CHECK(r.value() == 2 * kPageSize);
  CHECK(vs->pread(a + 2 * kPageSize, buf.data(), 10).error() == EFAULT);
  CHECK(vs->pwrite(kDefaultMax, buf.data(), 10).error() == EFAULT);
}
