// Several threads copying in and out of one space while another changes the
// map and forks (run under TSan). Every copy of a page is all-old or all-new.
#include <atomic>
#include <thread>

#include "vm_test_util.h"

using namespace vmtest;

TEST_CASE("concurrent copies, map changes and forks neither tear pages nor race", "[vm][concurrency]") {
  Kmem kmem;
  size_t baseline = kmem.in_use();
  {
    auto vs = make_space(kmem);
    constexpr int kThreads = 4;
    constexpr uint64_t kPages = 8;
    const uint64_t base = 0x1000000;
    // Each copier owns a region it writes whole pages into; all read the
    // shared region written by the main thread before start.
    map_anon(*vs, kThreads * kPages * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, base);
    const uint64_t common = base + 0x800000;
    map_anon(*vs, kPages * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, common);
    fill(*vs, common, kPages * kPageSize, 'C');
    const uint64_t churn = base + 0x1000000;
    std::atomic<int> torn{0};
    std::atomic<int> failures{0};

    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
      threads.emplace_back([&, t] {
        std::vector<char> page(kPageSize);
        uint64_t mine = base + t * kPages * kPageSize;
        for (int round = 0; round < 300; round++) {
          char c = static_cast<char>('a' + (round % 26));
          std::memset(page.data(), c, kPageSize);
          uint64_t at = mine + (round % kPages) * kPageSize;
          if (!vs->copyout(page.data(), at, kPageSize).ok()) failures++;
          if (!vs->copyin(at, page.data(), kPageSize).ok()) failures++;
          for (char x : page) if (x != c) { torn++; break; }
          if (!vs->copyin(common + (round % kPages) * kPageSize, page.data(), kPageSize).ok()) failures++;
          for (char x : page) if (x != 'C') { torn++; break; }
        }
      });
    }
    // The map churner: maps, unmaps, protects, forks (making every page
    // copy-on-write under the copiers) and checks the child's view.
    threads.emplace_back([&] {
      for (int round = 0; round < 60; round++) {
        auto r = vs->map(churn, 4 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
        if (!r.ok()) failures++;
        (void)vs->protect(churn, kPageSize, PROT_READ);
        auto child = vs->fork();
        if (!child.ok()) {
          failures++;
          continue;
        }
        std::vector<char> page(kPageSize);
        for (int t = 0; t < kThreads; t++) {
          if (!child.value()->copyin(base + t * kPages * kPageSize, page.data(), kPageSize).ok()) failures++;
          for (char x : page) if (x != page[0]) { torn++; break; }
        }
        std::memset(page.data(), 'K', kPageSize);
        if (!child.value()->copyout(page.data(), common, kPageSize).ok()) failures++;
        (void)vs->unmap(churn, 4 * kPageSize);
      }
    });
    for (auto& th : threads) th.join();
    CHECK(torn == 0);
    CHECK(failures == 0);
    CHECK(get(*vs, common, 1) == "C");
  }
  CHECK(kmem.in_use() == baseline);
}
