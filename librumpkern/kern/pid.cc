// The pid bitmap allocator (see pid.h).
#include "kern/pid.h"

#include <cstring>

#include "kern/kernel.h"

namespace rump {

namespace {
[[noreturn]] void panic_pid_reused(pid_t id) { panic("pid %d handed out while still held", static_cast<int>(id)); }
[[noreturn]] void panic_pid_unheld(pid_t id) { panic("pid %d held again after its last holder left", static_cast<int>(id)); }
}  // namespace

PidAllocator::PidAllocator(Kmem& kmem) : kmem_(kmem), holders_(kmem) {}

PidAllocator::~PidAllocator() { clear(); }

void PidAllocator::clear() {
  holders_.clear_and_dispose([](Holders* h) { delete h; });
  holders_.clear_and_release();
  Kmem::free(bits_);
  bits_ = nullptr;
  pid_max_ = 0;
  last_ = 0;
}

Result<void> PidAllocator::add_record(pid_t id) {
  auto* h = new (kmem_) Holders();
  if (!h) return err(ENOMEM);
  h->id = id;
  h->count = 1;
  if (!holders_.insert(*h)) {
    delete h;
    panic_pid_reused(id);
  }
  return {};
}

Result<void> PidAllocator::init(pid_t pid_max) {
  if (pid_max < kWrapTo + 2) return err(EINVAL);
  size_t words = (static_cast<size_t>(pid_max) + 63) / 64;
  auto* b = static_cast<uint64_t*>(kmem_.zalloc(words * sizeof(uint64_t)));
  if (!b) return err(ENOMEM);
  if (bits_) {
    // Carry over ids in use below the new maximum (sysctl kern.pid_max).
    size_t old_words = (static_cast<size_t>(pid_max_) + 63) / 64;
    std::memcpy(b, bits_, (words < old_words ? words : old_words) * sizeof(uint64_t));
    Kmem::free(bits_);
  }
  bits_ = b;
  pid_max_ = pid_max;
  return {};
}

bool PidAllocator::in_use(pid_t id) const {
  if (id <= 0 || id >= pid_max_) return false;
  return (bits_[id / 64] >> (id % 64)) & 1;
}

Result<void> PidAllocator::reserve(pid_t id) {
  if (id < 0 || id >= pid_max_) return err(EINVAL);
  if (Holders* h = holders_.find(id)) {
    h->count++;
    return {};
  }
  TRY(add_record(id));
  bits_[id / 64] |= uint64_t{1} << (id % 64);
  return {};
}

void PidAllocator::hold(pid_t id) {
  if (id <= 0) return;
  Holders* h = holders_.find(id);
  if (!h) panic_pid_unheld(id);
  h->count++;
}

void PidAllocator::release(pid_t id) {
  if (id <= 0) return;
  Holders* h = holders_.find(id);
  if (!h) return;
  if (--h->count == 0) {
    holders_.erase(*h);
    delete h;
    if (id < pid_max_) bits_[id / 64] &= ~(uint64_t{1} << (id % 64));
  }
}

Result<pid_t> PidAllocator::alloc(bool high, uint32_t random) {
  pid_t lo = kWrapTo;
  pid_t start = last_ + 1;
  if (high) {
    lo = pid_max_ / 2;
    if (start < lo) start = lo;
  } else if (randomize) {
    start = lo + static_cast<pid_t>(random % static_cast<uint32_t>(pid_max_ - lo));
  }
  if (start >= pid_max_ || start < 1) start = lo;
  // Ids below 300 are used only on the first pass, as on Linux.
  pid_t first_lo = last_ < kWrapTo && !high ? 1 : lo;
  pid_t id = start;
  for (pid_t n = 0; n < pid_max_; n++) {
    if (id >= pid_max_) id = first_lo = lo;
    if (id >= first_lo && !in_use(id)) {
      TRY(add_record(id));
      bits_[id / 64] |= uint64_t{1} << (id % 64);
      last_ = id;
      return id;
    }
    if (bits_[id / 64] == ~uint64_t{0}) {
      pid_t next = (id / 64 + 1) * 64;
      n += next - id - 1;
      id = next;
      continue;
    }
    id++;
  }
  return err(EAGAIN);
}

}  // namespace rump
