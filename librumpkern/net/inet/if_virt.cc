// virtN: an Ethernet interface whose wire is a host tap device:
// ifcreate("virt0") makes it, ifsetlinkstr("virt0", "tap0") attaches it to
// the host's tap0 (made if it does not exist) through the tap hypercalls.
// Frames are read in batches by the receive thread (if_hostlink.h) and
// written one hypercall per frame from the sending thread (a tap takes one
// frame per write(2): a batch would save no host call).
//
// The receive thread that finds the tap empty polls it for a while before
// it sleeps in the host's poll(2), with a budget that adapts to how such
// spins went (kern/spin_budget.h): frames that come within the spin (the
// host's ACKs to a transfer of ours) cost no host wake-up.
#include <rump/rumpuser_net.h>

#include "kern/clock.h"
#include "kern/kernel.h"
#include "kern/spin_budget.h"
#include "net/inet/if_hostlink.h"

namespace rump {

namespace {

constexpr size_t kVirtMaxFrame = 1514 + 4;  // Ethernet with MTU 1500 (and a VLAN tag)

struct VirtLink : public KObject {
  int fd = -1;
  SpinBudget rx_spin;  // the receive thread's
};

Result<void*> virt_open(Kernel& k, const char* name) {
  auto* l = new (k.kmem()) VirtLink();
  if (!l) return err(ENOMEM);
  int e = rumpuser_tap_open(name, &l->fd);
  if (e) {
    delete l;
    return err(e);
  }
  return static_cast<void*>(l);
}

void virt_close(Kernel& k, void* link) {
  auto* l = static_cast<VirtLink*>(link);
  rumpuser_close(l->fd);
  delete l;
}

bool virt_send(void* link, Pkt* frame) {
  auto* l = static_cast<VirtLink*>(link);
  // The tap takes a frame in one write: gather it into one buffer when it
  // is in several segments.
  rumpuser_iovec iov;
  char buf[kVirtMaxFrame];
  size_t len = frame->len();
  if (len > sizeof buf) {
    Pkt::free(frame);
    return false;
  }
  if (!frame->first()->next) {
    iov = {frame->first()->data(), len};
  } else {
    frame->copy_out(0, len, buf);
    iov = {buf, len};
  }
  size_t sent = 0;
  rumpuser_tap_send(l->fd, &iov, 1, &sent);
  Pkt::free(frame);
  return sent == 1;
}

size_t virt_recv(void* link, InetState& st, Pkt** out, size_t max, int64_t timeout_ns) {
  auto* l = static_cast<VirtLink*>(link);
  constexpr size_t kBatch = 32;
  if (max > kBatch) max = kBatch;
  Pkt* bufs[kBatch];
  rumpuser_iovec iov[kBatch];
  size_t lens[kBatch];
  size_t n = 0;
  for (; n < max; n++) {
    Result<Pkt*> p = Pkt::alloc(st.pool, kVirtMaxFrame, 0);
    if (!p.ok()) break;
    bufs[n] = p.value();
    iov[n] = {bufs[n]->first()->data(), bufs[n]->first()->len};
  }
  size_t got = 0;
  int e = n ? rumpuser_tap_recv(l->fd, iov, n, lens, &got, 0) : ENOBUFS;
  if (e == 0 && got == 0 && timeout_ns > 0) {
    SpinBudget::Turn t = l->rx_spin.begin(timeout_ns);
    if (t.ns > 0) {
      int64_t until = mono_now_ns() + t.ns;
      do {
        e = rumpuser_tap_recv(l->fd, iov, n, lens, &got, 0);
      } while (e == 0 && got == 0 && mono_now_ns() < until);
      l->rx_spin.end(t, got > 0);
    }
    if (e == 0 && got == 0) e = rumpuser_tap_recv(l->fd, iov, n, lens, &got, timeout_ns);
  }
  // A tap that fails (the host removed it) or no memory: wait as long as
  // the receive would have, so that the thread does not spin.
  if (e && timeout_ns > 0) rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, static_cast<long>(timeout_ns));
  for (size_t i = 0; i < n; i++) {
    if (i < got) {
      bufs[i]->trim_back(bufs[i]->len() - lens[i]);
      out[i] = bufs[i];
    } else {
      Pkt::free(bufs[i]);
    }
  }
  return got;
}

const HostLinkOps kVirtOps = {"virt", &virt_open, &virt_close, &virt_send, &virt_recv};

const IfCloner kVirtCloner = {"virt", &hostlink_clone, &kVirtOps};
const IfClonerRegistrar g_virt_cloner(&kVirtCloner);

}  // namespace

}  // namespace rump
