// virtN: an Ethernet interface whose wire is a host tap device:
// ifcreate("virt0") makes it, ifsetlinkstr("virt0", "tap0") attaches it to
// the host's tap0 (made if it does not exist) through the tap hypercalls.
// Frames are read in batches by the receive thread (if_hostlink.h) and
// written one hypercall per frame from the sending thread (a tap takes one
// frame per write(2): a batch would save no host call).
//
// Offloads: the tap is opened with virtio-net headers when the host has
// them (rumpuser_tap_open_vnet; RUMP_VIRT_OFFLOAD=0 in the environment
// asks for a plain tap). Then the interface takes partial checksums (the
// frame goes with VIRTIO_NET_HDR_F_NEEDS_CSUM and the host finishes it or
// trusts it) and TCP segments of up to 64 KiB (Ifnet::tso_max: the frame
// goes with VIRTIO_NET_HDR_GSO_TCPV4/TCPV6 and the host cuts it where it
// must), and it receives what the host's GRO and TSO make: TCP segments
// larger than the MTU, and checksums partial (NEEDS_CSUM) or known good
// (DATA_VALID), both of which the stack takes as verified, as Linux's
// virtio-net does. MTU rules are otherwise unchanged: only the TCP
// segments the host made whole arrive larger than the MTU, and a TCP
// segment of ours built for a device with TSO is cut in software
// (ip_send_gso) when it leaves through one without. On a plain tap
// frames carry complete checksums and at most the MTU.
//
// The receive thread that finds the tap empty polls it for a while before
// it sleeps in the host's poll(2), with a budget that adapts to how such
// spins went (kern/spin_budget.h): frames that come within the spin (the
// host's ACKs to a transfer of ours) cost no host wake-up.
#include <endian.h>
#include <linux/if_ether.h>
#include <rump/rumpuser_net.h>

#include <cstring>

#include "kern/clock.h"
#include "kern/kernel.h"
#include "kern/spin_budget.h"
#include "net/inet/if_hostlink.h"

namespace rump {

namespace {

constexpr size_t kVirtMaxFrame = 1514 + 4;  // Ethernet with MTU 1500 (and a VLAN tag)
// The largest frame the host's GRO or TSO hands a tap with offloads: a
// 64 KiB IP packet behind its Ethernet header (and a VLAN tag).
constexpr size_t kVnetMaxFrame = 65536 + 14 + 4;
constexpr size_t kBatch = 32;
// Frames per receive with offloads, each with room for kVnetMaxFrame.
constexpr size_t kVnetBatch = 8;
// The longest IP packet (one TCP segment) given to the host to cut.
constexpr uint32_t kVnetTsoMax = 65535;

struct VirtLink : public KObject {
  int fd = -1;
  bool vnet = false;   // frames carry a rumpuser_vnet_hdr
  SpinBudget rx_spin;  // the receive thread's
  // With offloads, the receive thread's room for what does not fit a
  // standard packet: kVnetBatch buffers of kVnetMaxFrame bytes.
  char* overflow = nullptr;
};

bool offload_wanted() {
  char buf[16];
  return rumpuser_getparam("RUMP_VIRT_OFFLOAD", buf, sizeof buf) != 0 || std::strcmp(buf, "0") != 0;
}

Result<void*> virt_open(Kernel& k, const char* name) {
  auto* l = new (k.kmem()) VirtLink();
  if (!l) return err(ENOMEM);
  int e = EOPNOTSUPP;
  if (offload_wanted()) {
    e = rumpuser_tap_open_vnet(name, &l->fd);
    if (e == 0) {
      l->vnet = true;
      l->overflow = static_cast<char*>(k.kmem().alloc(kVnetBatch * kVnetMaxFrame));
      if (!l->overflow) {
        rumpuser_close(l->fd);
        delete l;
        return err(ENOMEM);
      }
    }
  }
  if (e == EOPNOTSUPP) e = rumpuser_tap_open(name, &l->fd);
  if (e) {
    delete l;
    return err(e);
  }
  return static_cast<void*>(l);
}

void virt_close(Kernel& k, void* link) {
  auto* l = static_cast<VirtLink*>(link);
  rumpuser_close(l->fd);
  if (l->overflow) Kmem::free(l->overflow);
  delete l;
}

HostLinkOffloads virt_offloads(void* link) {
  auto* l = static_cast<VirtLink*>(link);
  if (!l->vnet) return {};
  return {true, kVnetTsoMax};
}

// The virtio-net header for a frame of ours: its partial checksum and,
// for a TCP segment of more than one MSS, how the host is to cut it.
rumpuser_vnet_hdr vnet_header(Pkt& frame) {
  rumpuser_vnet_hdr h{};
  const PktMeta& m = frame.meta;
  if (m.csum != kCsumPartial) return h;
  h.flags = RUMPUSER_VNET_F_NEEDS_CSUM;
  h.csum_start = htole16(m.csum_start);
  h.csum_offset = htole16(m.csum_offset);
  if (m.gso_size != 0) {
    uint8_t type[2], off;
    frame.copy_out(12, 2, type);
    frame.copy_out(m.csum_start + 12u, 1, &off);
    h.gso_type = (type[0] << 8 | type[1]) == ETH_P_IPV6 ? RUMPUSER_VNET_GSO_TCPV6 : RUMPUSER_VNET_GSO_TCPV4;
    h.gso_size = htole16(m.gso_size);
    h.hdr_len = htole16(static_cast<uint16_t>(m.csum_start + (off >> 4) * 4u));
  }
  return h;
}

bool virt_send(void* link, Pkt* frame) {
  auto* l = static_cast<VirtLink*>(link);
  size_t len = frame->len();
  PktMeta& m = frame->meta;
  bool bad = false;
  if (!l->vnet) {
    // A plain tap: what was made for a tap with offloads just before the
    // link changed is finished here, or lost if it is larger than a frame.
    bad = len > kVirtMaxFrame || !pkt_csum_finish(*frame).ok();
  } else if (m.csum == kCsumPartial) {
    bad = static_cast<size_t>(m.csum_start) + m.csum_offset + 2 > len ||
          (m.gso_size != 0 && static_cast<size_t>(m.csum_start) + 20 > len);
  }
  if (bad || len > kVnetMaxFrame) {
    Pkt::free(frame);
    return false;
  }
  // The frame as it lies in its segments, behind the header; gathered
  // into one new segment when in too many.
  constexpr int kMaxPieces = 16;
  rumpuser_vnet_hdr h = vnet_header(*frame);
  rumpuser_iovec iov[kMaxPieces + 1];
  const char* ptr[kMaxPieces];
  size_t plen[kMaxPieces];
  int n = frame->pieces(0, ptr, plen, kMaxPieces);
  if (n < 0) {
    Result<Pkt*> c = frame->copy(0, len, 0);
    Pkt::free(frame);
    if (!c.ok()) return false;
    frame = c.value();
    n = frame->pieces(0, ptr, plen, kMaxPieces);
  }
  size_t k = 0;
  if (l->vnet) iov[k++] = {&h, sizeof h};
  for (int i = 0; i < n; i++) iov[k++] = {const_cast<char*>(ptr[i]), plen[i]};
  size_t sent = 0;
  rumpuser_tap_sendv(l->fd, iov, &k, 1, &sent);
  Pkt::free(frame);
  return sent == 1;
}

size_t virt_recv(void* link, InetState& st, Pkt** out, size_t max, int64_t timeout_ns) {
  auto* l = static_cast<VirtLink*>(link);
  size_t batch = l->vnet ? kVnetBatch : kBatch;
  if (max > batch) max = batch;
  Pkt* bufs[kBatch];
  rumpuser_vnet_hdr hdr[kVnetBatch];
  rumpuser_iovec iov[3 * kBatch];
  size_t niov[kBatch];
  size_t lens[kBatch];
  size_t n = 0, k = 0;
  for (; n < max; n++) {
    Result<Pkt*> p = Pkt::alloc(st.pool, kVirtMaxFrame, 0);
    if (!p.ok()) break;
    bufs[n] = p.value();
    niov[n] = l->vnet ? 3 : 1;
    if (l->vnet) iov[k++] = {&hdr[n], sizeof hdr[n]};
    iov[k++] = {bufs[n]->first()->data(), kVirtMaxFrame};
    if (l->vnet) iov[k++] = {l->overflow + n * kVnetMaxFrame, kVnetMaxFrame};
  }
  size_t got = 0;
  auto take = [&](int64_t wait_ns) { return rumpuser_tap_recvv(l->fd, iov, niov, n, lens, &got, wait_ns); };
  int e = n ? take(0) : ENOBUFS;
  if (e == 0 && got == 0 && timeout_ns > 0) {
    SpinBudget::Turn t = l->rx_spin.begin(timeout_ns);
    if (t.ns > 0) {
      int64_t until = mono_now_ns() + t.ns;
      do {
        e = take(0);
      } while (e == 0 && got == 0 && mono_now_ns() < until);
      l->rx_spin.end(t, got > 0);
    }
    if (e == 0 && got == 0) e = take(timeout_ns);
  }
  // A tap that fails (the host removed it) or no memory: wait as long as
  // the receive would have, so that the thread does not spin.
  if (e && timeout_ns > 0) rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, static_cast<long>(timeout_ns));
  size_t nout = 0;
  for (size_t i = 0; i < n; i++) {
    Pkt* p = bufs[i];
    if (i >= got) {
      Pkt::free(p);
      continue;
    }
    size_t len = lens[i];
    if (l->vnet) {
      if (len < sizeof hdr[i]) {
        Pkt::free(p);
        continue;
      }
      len -= sizeof hdr[i];
      if (hdr[i].flags & (RUMPUSER_VNET_F_NEEDS_CSUM | RUMPUSER_VNET_F_DATA_VALID)) p->meta.csum = kCsumVerified;
      if ((hdr[i].gso_type & ~RUMPUSER_VNET_GSO_ECN) != RUMPUSER_VNET_GSO_NONE)
        p->meta.gso_size = le16toh(hdr[i].gso_size);
    }
    if (len <= kVirtMaxFrame) {
      p->trim_back(kVirtMaxFrame - len);
    } else if (!p->append(l->overflow + i * kVnetMaxFrame, len - kVirtMaxFrame).ok()) {
      Pkt::free(p);
      continue;
    }
    out[nout++] = p;
  }
  return nout;
}

const HostLinkOps kVirtOps = {"virt", &virt_open, &virt_close, &virt_send, &virt_recv, false, &virt_offloads};

const IfCloner kVirtCloner = {"virt", &hostlink_clone, &kVirtOps};
const IfClonerRegistrar g_virt_cloner(&kVirtCloner);

}  // namespace

}  // namespace rump
