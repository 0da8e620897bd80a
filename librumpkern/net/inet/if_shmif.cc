// shmifN: an Ethernet bus in a host file that any number of kernels map,
// in one host process or in many (NetBSD's shmif idea, in a format of this
// project's own). Every frame one kernel sends is seen by every other
// kernel on the bus; each takes what its MAC address (or broadcast and
// multicast) asks for, as on a hub.
//
// The file (made and grown to kShmifFileSize by the first mapper; all
// integers little-endian, the host's order, since every mapper runs on the
// same host):
//
//   offset  size  field
//   0       4     magic     0x46494d53 ("SMIF") once set up; 0 in a new
//                           file; 1 while the first mapper sets it up
//   4       4     version   3
//   8       4     lock      the bus lock: 0 free, else the holder's host
//                           process id, bit 31 set while others may wait
//                           (a futex word, shared across processes)
//   12      4     gen       incremented after every frame written: readers
//                           sleep on it
//   16      4     waiters   readers asleep on gen (writers wake only if any)
//   20      4     ringsize  bytes of the ring (kShmifRingSize, a multiple of 8)
//   24      8     wpos      bytes ever written to the ring: the next record
//                           goes at ring offset wpos % ringsize
//   32      8     first     position (as wpos) of the oldest record still
//                           whole in the ring
//   40      8     frames    frames ever written
//   48      16    reserved  zero
//   64      ringsize        the ring of records
//
// A record is a 16-byte header {uint32 len: frame bytes; uint32 flags;
// uint64 sender: the writing interface's random id} and the frame, the
// whole padded to a multiple of 8; a record may wrap from the end of the
// ring to its start. Flags: bit 0 (kShmifRecCsumPartial): the frame's TCP
// or UDP checksum was left unfilled (the field holds the pseudo-header
// sum, as a NIC with checksum offload gets it); the bus is memory, which
// corrupts nothing, so a reader takes such a frame as verified. Other bits
// are zero. (Version 1 had no flags; version 2's lock word was 0 free, 1
// held, 2 held with waiters, so a dead holder stopped the bus.) Positions only grow (2^64 bytes do not wrap in
// practice). A writer holds the lock, drops the oldest records (advancing
// first) until its record fits behind them, copies it in, advances wpos
// and frames, releases the lock, increments gen and wakes the readers if
// waiters is non-zero. A reader keeps its own position: starting at wpos
// when it attaches, it reads records under the lock up to wpos, skips its
// own, and when first has passed it (it was too slow: the ring was
// overrun) it counts the loss and goes on from first. The bus has no
// owner and keeps no state about its readers: a kernel joins by mapping
// the file and leaves by unmapping it. A mapper that dies holding the
// lock is found out by the next one to wait for it, which takes the lock
// over (rumpuser_shm_lock): a writer that died had not yet moved wpos
// past its record, so nobody reads what it left half written, and the
// checks every reader and writer makes mend a bent ring.
//
// A reader that finds nothing spins on gen for a while before it sleeps
// (kern/spin_budget.h, with its virtual CPU given back): a frame that comes
// within the spin costs neither side a host wake-up, and the budget shrinks
// to nothing where frames do not come that fast.
#include <rump/rumpuser_net.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "kern/kernel.h"
#include "kern/lwp.h"
#include "kern/spin_budget.h"
#include "net/inet/if_hostlink.h"

namespace rump {

namespace {

constexpr uint32_t kShmifMagic = 0x46494d53;
constexpr uint32_t kShmifSettingUp = 1;
constexpr uint32_t kShmifVersion = 3;
constexpr uint32_t kShmifRecCsumPartial = 1;
constexpr uint32_t kShmifRingSize = 1u << 20;
constexpr size_t kShmifHeaderSize = 64;
constexpr size_t kShmifFileSize = kShmifHeaderSize + kShmifRingSize;
constexpr size_t kShmifRecHeader = 16;
constexpr uint32_t kShmifMaxFrame = 9018;  // a jumbo frame: anything longer is not Ethernet
constexpr int64_t kLockWaitNs = 1000 * 1000;

struct ShmifBus {
  uint32_t magic, version, lock, gen, waiters, ringsize;
  uint64_t wpos, first, frames;
  uint64_t reserved[2];
};
static_assert(sizeof(ShmifBus) == kShmifHeaderSize);
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) && std::atomic<uint32_t>::is_always_lock_free);

struct ShmifRec {
  uint32_t len, flags;
  uint64_t sender;
};
static_assert(sizeof(ShmifRec) == kShmifRecHeader);

template <class T>
std::atomic_ref<T> at(T& v) {
  return std::atomic_ref<T>(v);
}

struct ShmifLink : public KObject {
  ShmifBus* bus = nullptr;
  char* ring = nullptr;
  uint64_t sender = 0;
  uint64_t rpos = 0;     // the receive thread's
  SpinBudget rx_spin;    // the receive thread's
  std::atomic<uint64_t> overruns{0};
};

uint64_t rec_size(uint32_t len) { return (kShmifRecHeader + len + 7) & ~uint64_t{7}; }

// The bus lock, which outlives a holder's death (EOWNERDEAD: taken over
// from a dead process; nothing to repair, see above).
void bus_lock(ShmifBus* b) { rumpuser_shm_lock(&b->lock); }

void bus_unlock(ShmifBus* b) { rumpuser_shm_unlock(&b->lock); }

// Copies between the ring and linear memory at position pos.
void ring_write(ShmifLink& l, uint64_t pos, const void* src, size_t n) {
  size_t off = pos % kShmifRingSize;
  size_t a = n < kShmifRingSize - off ? n : kShmifRingSize - off;
  std::memcpy(l.ring + off, src, a);
  if (a < n) std::memcpy(l.ring, static_cast<const char*>(src) + a, n - a);
}
void ring_read(const ShmifLink& l, uint64_t pos, void* dst, size_t n) {
  size_t off = pos % kShmifRingSize;
  size_t a = n < kShmifRingSize - off ? n : kShmifRingSize - off;
  std::memcpy(dst, l.ring + off, a);
  if (a < n) std::memcpy(static_cast<char*>(dst) + a, l.ring, n - a);
}

// Sets the bus up if the file is new; waits for another mapper doing so.
Result<void> bus_setup(ShmifBus* b) {
  for (int tries = 0;; tries++) {
    uint32_t m = 0;
    if (at(b->magic).compare_exchange_strong(m, kShmifSettingUp, std::memory_order_acq_rel)) {
      b->version = kShmifVersion;
      b->ringsize = kShmifRingSize;
      at(b->wpos).store(0, std::memory_order_relaxed);
      at(b->first).store(0, std::memory_order_relaxed);
      at(b->magic).store(kShmifMagic, std::memory_order_release);
      return {};
    }
    if (m == kShmifMagic) break;
    if (m != kShmifSettingUp || tries == 1000) return err(EINVAL);  // not a bus, or its maker died
    rumpuser_shm_wait(&b->magic, kShmifSettingUp, kLockWaitNs);
  }
  if (b->version != kShmifVersion || b->ringsize != kShmifRingSize) return err(EINVAL);
  return {};
}

Result<void*> shmif_open(Kernel& k, const char* path) {
  void* mem = nullptr;
  int e = rumpuser_shm_map(path, kShmifFileSize, &mem);
  if (e) return err(e);
  auto* b = static_cast<ShmifBus*>(mem);
  Result<void> r = bus_setup(b);
  if (!r.ok()) {
    rumpuser_unmap(mem, kShmifFileSize);
    return err(r.error());
  }
  auto* l = new (k.kmem()) ShmifLink();
  if (!l) {
    rumpuser_unmap(mem, kShmifFileSize);
    return err(ENOMEM);
  }
  l->bus = b;
  l->ring = static_cast<char*>(mem) + kShmifHeaderSize;
  size_t got = 0;
  rumpuser_getrandom(&l->sender, sizeof l->sender, 0, &got);
  bus_lock(b);
  l->rpos = at(b->wpos).load(std::memory_order_relaxed);
  bus_unlock(b);
  return static_cast<void*>(l);
}

void shmif_close(Kernel& k, void* link) {
  auto* l = static_cast<ShmifLink*>(link);
  rumpuser_unmap(l->bus, kShmifFileSize);
  delete l;
}

bool shmif_send(void* link, Pkt* frame) {
  auto* l = static_cast<ShmifLink*>(link);
  ShmifBus* b = l->bus;
  size_t len = frame->len();
  if (len > kShmifMaxFrame) {
    Pkt::free(frame);
    return false;
  }
  uint32_t flags = frame->meta.csum == kCsumPartial ? kShmifRecCsumPartial : 0;
  ShmifRec h{static_cast<uint32_t>(len), flags, l->sender};
  uint64_t need = rec_size(h.len);
  bus_lock(b);
  uint64_t w = at(b->wpos).load(std::memory_order_relaxed);
  uint64_t f = at(b->first).load(std::memory_order_relaxed);
  if (f > w) f = w;  // a header someone else bent: start the ring over
  while (w + need - f > kShmifRingSize) {
    ShmifRec old;
    ring_read(*l, f, &old, sizeof old);
    if (old.len > kShmifMaxFrame || f + rec_size(old.len) > w) {
      f = w;  // not a record: drop the lot
      break;
    }
    f += rec_size(old.len);
  }
  at(b->first).store(f, std::memory_order_relaxed);
  ring_write(*l, w, &h, sizeof h);
  uint64_t pos = w + sizeof h;
  for (PktSeg* s = frame->first(); s; s = s->next) {
    ring_write(*l, pos, s->data(), s->len);
    pos += s->len;
  }
  at(b->wpos).store(w + need, std::memory_order_relaxed);
  at(b->frames).fetch_add(1, std::memory_order_relaxed);
  bus_unlock(b);
  Pkt::free(frame);
  // Store gen, then load waiters; the reader stores waiters, then loads
  // gen (in the futex wait): sequentially consistent on both sides, so at
  // least one of them sees the other's store and no wake-up is lost.
  at(b->gen).fetch_add(1, std::memory_order_seq_cst);
  if (at(b->waiters).load(std::memory_order_seq_cst) != 0) rumpuser_shm_wake(&b->gen);
  return true;
}

// Takes what is on the bus for us, up to max frames.
size_t shmif_take(ShmifLink& l, InetState& st, Pkt** out, size_t max) {
  ShmifBus* b = l.bus;
  size_t n = 0;
  bus_lock(b);
  uint64_t w = at(b->wpos).load(std::memory_order_relaxed);
  uint64_t f = at(b->first).load(std::memory_order_relaxed);
  if (l.rpos < f || l.rpos > w) {
    l.overruns.fetch_add(1, std::memory_order_relaxed);
    l.rpos = l.rpos > w ? w : f;
  }
  while (n < max && l.rpos < w) {
    ShmifRec h;
    ring_read(l, l.rpos, &h, sizeof h);
    if (h.len > kShmifMaxFrame || l.rpos + rec_size(h.len) > w) {
      l.rpos = w;  // not a record (a bent ring): go on from the end
      break;
    }
    uint64_t at_data = l.rpos + sizeof h;
    l.rpos += rec_size(h.len);
    if (h.sender == l.sender) continue;
    Result<Pkt*> p = Pkt::alloc(st.pool, h.len, 0);
    if (!p.ok()) continue;  // out of memory: lost, as a full queue loses it
    if (h.flags & kShmifRecCsumPartial) p.value()->meta.csum = kCsumVerified;
    // Pkt::alloc gives one contiguous segment for a frame this size.
    size_t pos = 0;
    for (PktSeg* s = p.value()->first(); s; s = s->next) {
      ring_read(l, at_data + pos, s->data(), s->len);
      pos += s->len;
    }
    out[n++] = p.value();
  }
  bus_unlock(b);
  return n;
}

size_t shmif_recv(void* link, InetState& st, Pkt** out, size_t max, int64_t timeout_ns) {
  auto* l = static_cast<ShmifLink*>(link);
  ShmifBus* b = l->bus;
  uint32_t g = at(b->gen).load(std::memory_order_acquire);
  size_t n = shmif_take(*l, st, out, max);
  if (n || timeout_ns <= 0) return n;
  if (auto* lwp = reinterpret_cast<Lwp*>(rumpuser_curlwp())) {
    SpinBudget::Turn t = l->rx_spin.begin(timeout_ns);
    if (t.ns > 0) {
      // The shared word seen as an atomic object: the same lock-free
      // 4 bytes (asserted below), which is what atomic_ref works on too.
      bool paid_off = lwp->spin_wait(*reinterpret_cast<const std::atomic<uint32_t>*>(&b->gen), g, t.ns);
      l->rx_spin.end(t, paid_off);
      if (paid_off || at(b->gen).load(std::memory_order_acquire) != g) return shmif_take(*l, st, out, max);
    }
  }
  at(b->waiters).fetch_add(1, std::memory_order_seq_cst);
  // A frame written after the snapshot changed gen: the wait returns.
  rumpuser_shm_wait(&b->gen, g, timeout_ns);
  at(b->waiters).fetch_sub(1, std::memory_order_acq_rel);
  return shmif_take(*l, st, out, max);
}

const HostLinkOps kShmifOps = {"shmif", &shmif_open, &shmif_close, &shmif_send, &shmif_recv, true};

const IfCloner kShmifCloner = {"shmif", &hostlink_clone, &kShmifOps};
const IfClonerRegistrar g_shmif_cloner(&kShmifCloner);

}  // namespace

// rump_pub_shmif_create: the first free shmifN, attached to the bus at
// path.
Result<int> shmif_create(InetState& st, const char* path) {
  if (!path || !path[0]) return err(EINVAL);
  for (int unit = 0; unit < 65536; unit++) {
    char name[IFNAMSIZ];
    std::snprintf(name, sizeof name, "shmif%d", unit);
    if (st.find_if(name)) continue;
    Result<Ref<Ifnet>> r = hostlink_create(st, kShmifOps, name);
    if (!r.ok()) {
      if (r.error() == EEXIST) continue;  // taken meanwhile
      return err(r.error());
    }
    Ifnet& ifp = *r.value();
    Result<void> l = ifp.ops().set_linkstr(ifp, path);
    if (!l.ok()) {
      if_detach(st, ifp);
      return err(l.error());
    }
    return unit;
  }
  return err(ENOSPC);
}

}  // namespace rump
