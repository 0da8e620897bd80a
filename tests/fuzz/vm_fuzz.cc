// vm_fuzz: drives Vmspaces with random map/unmap/protect/advise/fork/copy
// operations and checks every result against a reference model: a byte array
// of the (small) user range per space with a per-page mapped flag and
// protection. Private anonymous memory only, so a fork is a plain copy of the
// model.
//
// Built as a libFuzzer target with -Dfuzz=true (clang), and always as
// vm_fuzz_replay, which runs a fixed number of seeded random inputs.
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "vmspace.h"

namespace {

using rump::Kmem;
using rump::RefPtr;
using rump::vm::kPageSize;
using rump::vm::Vmspace;

constexpr uint64_t kPages = 24;
constexpr uint64_t kBase = 0x100000;
constexpr uint64_t kTop = kBase + kPages * kPageSize;
constexpr size_t kMaxSpaces = 4;

[[noreturn]] void fail(const char* what, uint64_t a = 0, uint64_t b = 0) {
  std::fprintf(stderr, "vm_fuzz: model mismatch: %s (%#llx, %#llx)\n", what, static_cast<unsigned long long>(a),
               static_cast<unsigned long long>(b));
  std::abort();
}

struct Model {
  std::vector<uint8_t> bytes = std::vector<uint8_t>(kPages * kPageSize, 0);
  bool mapped[kPages] = {};
  int prot[kPages] = {};
};

struct Space {
  RefPtr<Vmspace> vs;
  Model m;
};

class Input {
 public:
  Input(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool empty() const { return i_ >= n_; }
  uint8_t byte() { return i_ < n_ ? d_[i_++] : 0; }
  uint32_t u16() { return byte() | (uint32_t{byte()} << 8); }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

constexpr int kProts[4] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE};

// The bytes a copy may do by the model: up to the first page that is
// unmapped or lacks `need`; -1 when the range leaves [kBase, kTop).
int64_t model_reach(const Model& m, uint64_t addr, uint64_t len, int need) {
  if (len == 0) return 0;
  if (addr < kBase || addr >= kTop || len > kTop - addr) return -1;
  uint64_t done = 0;
  while (done < len) {
    uint64_t a = addr + done;
    uint64_t p = (a - kBase) / kPageSize;
    if (!m.mapped[p] || (m.prot[p] & need) == 0) break;
    uint64_t n = std::min(len - done, kPageSize - (a % kPageSize));
    done += n;
  }
  return static_cast<int64_t>(done);
}

void check_all(Space& s) {
  std::vector<uint8_t> page(kPageSize);
  for (uint64_t p = 0; p < kPages; p++) {
    uint64_t a = kBase + p * kPageSize;
    auto r = s.vs->copyin(a, page.data(), kPageSize);
    bool readable = s.m.mapped[p] && (s.m.prot[p] & PROT_READ);
    if (r.ok() != readable) fail("final readability", a, r.error());
    if (readable && std::memcmp(page.data(), &s.m.bytes[p * kPageSize], kPageSize) != 0) fail("final content", a);
  }
}

void run(const uint8_t* data, size_t size) {
  Kmem kmem;
  {
    rump::vm::VmspaceOptions o;
    o.min = kBase;
    o.max = kTop;
    std::vector<Space> spaces;
    spaces.push_back(Space{Vmspace::create(kmem, o).value(), {}});
    Input in(data, size);
    std::vector<uint8_t> buf(4 * kPageSize);
    int steps = 0;
    while (!in.empty() && steps++ < 400) {
      uint8_t op = in.byte();
      Space& s = spaces[in.byte() % spaces.size()];
      uint64_t p = in.byte() % kPages;
      uint64_t n = 1 + in.byte() % 6;
      if (p + n > kPages) n = kPages - p;
      uint64_t addr = kBase + p * kPageSize;
      uint64_t len = n * kPageSize;
      int prot = kProts[in.byte() % 4];
      switch (op % 9) {
        case 0:
        case 1: {  // mmap MAP_FIXED or MAP_FIXED_NOREPLACE
          bool noreplace = op % 9 == 1;
          bool any = false;
          for (uint64_t i = p; i < p + n; i++) any |= s.m.mapped[i];
          auto r = s.vs->map(addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | (noreplace ? MAP_FIXED_NOREPLACE : MAP_FIXED));
          if (noreplace && any) {
            if (r.error() != EEXIST) fail("noreplace", addr, r.error());
            break;
          }
          if (!r.ok() || r.value() != addr) fail("map", addr, r.error());
          for (uint64_t i = p; i < p + n; i++) {
            s.m.mapped[i] = true;
            s.m.prot[i] = prot;
            std::memset(&s.m.bytes[i * kPageSize], 0, kPageSize);
          }
          break;
        }
        case 2: {  // munmap
          if (!s.vs->unmap(addr, len).ok()) fail("unmap", addr);
          for (uint64_t i = p; i < p + n; i++) s.m.mapped[i] = false;
          break;
        }
        case 3: {  // mprotect
          bool holes = false;
          for (uint64_t i = p; i < p + n; i++) holes |= !s.m.mapped[i];
          auto r = s.vs->protect(addr, len, prot);
          if (holes != (r.error() == ENOMEM) || (!holes && !r.ok())) fail("protect", addr, r.error());
          if (!holes)
            for (uint64_t i = p; i < p + n; i++) s.m.prot[i] = prot;
          break;
        }
        case 4: {  // madvise DONTNEED
          bool holes = false;
          for (uint64_t i = p; i < p + n; i++) holes |= !s.m.mapped[i];
          auto r = s.vs->advise(addr, len, MADV_DONTNEED);
          if (holes ? r.error() != ENOMEM : !r.ok()) fail("advise", addr, r.error());
          for (uint64_t i = p; i < p + n; i++)
            if (s.m.mapped[i]) std::memset(&s.m.bytes[i * kPageSize], 0, kPageSize);
          break;
        }
        case 5: {  // fork
          if (spaces.size() >= kMaxSpaces) break;
          auto r = s.vs->fork();
          if (!r.ok()) fail("fork", 0, r.error());
          Model copy = s.m;
          spaces.push_back(Space{std::move(r).value(), std::move(copy)});
          break;
        }
        case 6:
        case 7: {  // copyout / copyin at a byte address, maybe outside the range
          uint64_t a = kBase - kPageSize + (uint64_t{in.u16()} * 61) % ((kPages + 2) * kPageSize);
          uint64_t l = in.u16() % buf.size();
          bool out = op % 9 == 6;
          int64_t reach = model_reach(s.m, a, l, out ? PROT_WRITE : PROT_READ);
          size_t done = 12345;
          rump::Result<void> r = rump::ok_result();
          if (out) {
            uint8_t v = in.byte();
            for (uint64_t i = 0; i < l; i++) buf[i] = static_cast<uint8_t>(v + i);
            r = s.vs->copyout(buf.data(), a, l, &done);
          } else {
            r = s.vs->copyin(a, buf.data(), l, &done);
          }
          int64_t expect_done = reach < 0 ? 0 : reach;
          bool expect_ok = reach == static_cast<int64_t>(l);
          if (r.ok() != expect_ok || (!r.ok() && r.error() != EFAULT)) fail("copy result", a, l);
          if (static_cast<int64_t>(done) != expect_done) fail("copy bytes done", a, done);
          if (out) {
            if (done > 0) std::memcpy(&s.m.bytes[a - kBase], buf.data(), done);
          } else if (done > 0 && std::memcmp(&s.m.bytes[a - kBase], buf.data(), done) != 0) {
            fail("copyin content", a, l);
          }
          break;
        }
        case 8: {  // drop a space (never the last)
          if (spaces.size() < 2) break;
          spaces.erase(spaces.begin() + (p % spaces.size()));
          break;
        }
      }
    }
    for (Space& s : spaces) check_all(s);
  }
  if (kmem.in_use() != 0 || kmem.live_allocations() != 0) fail("memory left after teardown", kmem.in_use());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run(data, size);
  return 0;
}
