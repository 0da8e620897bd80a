// The device of the interfaces whose wire is outside the kernel (see
// if_hostlink.h): the link it sends through, its receive thread, and link
// changes.
#include "net/inet/if_hostlink.h"

#include <rump/rumpuser.h>

#include <atomic>
#include <cstdio>

#include "kern/kernel.h"
#include "kern/kthread.h"
#include "net/inet/if_ether.h"

namespace rump {

namespace {

// How long the receive thread waits in one recv(): the longest it takes
// to notice halt or a new link.
constexpr int64_t kRxWaitNs = 20 * 1000 * 1000;
constexpr size_t kRxBatch = 32;

struct HostLinkDev : public KObject {
  HostLinkDev(InetState& st, const HostLinkOps& ops) : st(st), ops(ops) {}
  InetState& st;
  const HostLinkOps& ops;
  Ifnet* ifp = nullptr;  // set once attached; lives as long as the device
  RwLock link_lock_{LockRank::kNone};
  void* link_ ABSL_GUARDED_BY(link_lock_) = nullptr;
  // The receive thread and what it runs on (changed only with the thread
  // stopped, by set_linkstr and destroy, which netconfig serialises per
  // interface through conf_lock_).
  Mutex conf_lock_{LockRank::kNone};
  Kthread* rx_ ABSL_GUARDED_BY(conf_lock_) = nullptr;
  void* rx_link = nullptr;
  std::atomic<bool> rx_stop{false};
};

void rx_main(void* arg) {
  auto* d = static_cast<HostLinkDev*>(arg);
  Lwp& l = *reinterpret_cast<Lwp*>(rumpuser_curlwp());
  Pkt* got[kRxBatch];
  while (!d->rx_stop.load(std::memory_order_acquire) && !kthread_should_stop(l)) {
    size_t n = d->ops.recv(d->rx_link, d->st, got, kRxBatch, kRxWaitNs);
    for (size_t i = 0; i < n; i++) ether_input(*d->ifp, got[i]);
  }
}

void stop_rx(HostLinkDev& d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(d.conf_lock_) {
  if (!d.rx_) return;
  d.rx_stop.store(true, std::memory_order_release);
  kthread_join(d.rx_);
  d.rx_ = nullptr;
}

void dev_transmit(void* arg, Ifnet& ifp, Pkt* frame) {
  auto* d = static_cast<HostLinkDev*>(arg);
  bool sent = false;
  {
    SharedLocker g(d->link_lock_);
    if (d->link_) {
      sent = d->ops.send(d->link_, frame);
      frame = nullptr;
    }
  }
  if (frame) Pkt::free(frame);
  if (!sent) ifp.counters.oerrors.fetch_add(1, std::memory_order_relaxed);
}

Result<void> dev_set_linkstr(void* arg, Ifnet& ifp, const char* s) {
  auto* d = static_cast<HostLinkDev*>(arg);
  Kernel& k = d->st.kernel;
  if (!s[0]) return err(EINVAL);
  Result<void*> nl = d->ops.open(k, s);
  if (!nl.ok()) return err(nl.error());
  MutexLocker c(d->conf_lock_);
  stop_rx(*d);
  void* old;
  {
    Locker<RwLock> g(d->link_lock_);
    old = d->link_;
    d->link_ = nl.value();
  }
  if (old) d->ops.close(k, old);
  HostLinkOffloads o = d->ops.offloads ? d->ops.offloads(nl.value()) : HostLinkOffloads{d->ops.no_csum, 0};
  ifp.no_csum.store(o.csum, std::memory_order_relaxed);
  ifp.tso_max.store(o.tso_max, std::memory_order_relaxed);
  char name[32];
  std::snprintf(name, sizeof name, "%s rx", ifp.name);
  d->rx_link = nl.value();
  d->rx_stop.store(false, std::memory_order_relaxed);
  Result<Kthread*> t = kthread_create(k, name, &rx_main, d);
  if (!t.ok()) {
    Locker<RwLock> g(d->link_lock_);
    d->link_ = nullptr;
    d->ops.close(k, nl.value());
    return err(t.error());
  }
  d->rx_ = t.value();
  return {};
}

void dev_destroy(void* arg, Ifnet& ifp) {
  auto* d = static_cast<HostLinkDev*>(arg);
  {
    MutexLocker c(d->conf_lock_);
    stop_rx(*d);
  }
  void* old;
  {
    Locker<RwLock> g(d->link_lock_);
    old = d->link_;
    d->link_ = nullptr;
  }
  if (old) d->ops.close(d->st.kernel, old);
  delete d;
}

}  // namespace

Result<Ref<Ifnet>> hostlink_create(InetState& st, const HostLinkOps& ops, const char* name) {
  auto* d = new (st.kernel.kmem()) HostLinkDev(st, ops);
  if (!d) return err(ENOMEM);
  uint8_t mac[6];
  size_t got = 0;
  if (rumpuser_getrandom(mac, sizeof mac, 0, &got) != 0 || got != sizeof mac) {
    delete d;
    return err(EAGAIN);
  }
  mac[0] = static_cast<uint8_t>((mac[0] & 0xfe) | 0x02);  // unicast, locally administered
  EtherLink link{&dev_transmit, d};
  link.set_linkstr = &dev_set_linkstr;
  link.destroy = &dev_destroy;
  Result<Ref<Ifnet>> r = ether_attach(st, name, mac, link);
  if (!r.ok()) {
    delete d;
    return r;
  }
  d->ifp = r.value().get();
  d->ifp->no_csum = ops.no_csum;
  return r;
}

Result<void> hostlink_clone(InetState& st, const char* name, int unit, const void* arg) {
  Result<Ref<Ifnet>> r = hostlink_create(st, *static_cast<const HostLinkOps*>(arg), name);
  if (!r.ok()) return err(r.error());
  return {};
}

}  // namespace rump
