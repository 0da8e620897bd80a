// The collector of descriptors in flight (SCM_RIGHTS) on unreachable
// local sockets, after Linux's unix_gc idea: a socket whose every file
// reference sits inside some receive buffer is a candidate; the references
// that candidates' buffers hold to each other are taken away; a candidate
// with references left is reachable from outside, and so is everything
// in flight in its buffer, transitively. The rest are cycles nobody can
// receive from any more: their buffers are purged, which drops the files
// and so closes them.
//
// Locking: NetState::gc_lock_ guards the in-flight counts and the marks,
// and is held for a whole scan, so no file enters or leaves flight
// meanwhile (unp_internalize and unp_dispose take it). A file that gains
// a reference from elsewhere during the scan (a transient fd_get) only
// makes its socket look reachable: the collector errs on keeping. The
// purged records are disposed of after the lock is dropped, since that
// closes files and may run the collector again.
#include <cstdint>

#include "kern/kernel.h"
#include "net/local.h"

namespace rump {

namespace {

UnpCb* local_of(File& f) {
  Socket* so = file_socket(f);
  if (!so || !is_local_socket(*so)) return nullptr;
  return &unp(*so);
}

// Calls fn(UnpCb&) for every local socket in flight in so's receive
// buffer.
template <class Fn>
void for_each_inflight(Socket& so, Fn fn) {
  MutexLocker g(so.lock_);
  for (SockRecord& r : so.rcv_) {
    if (!r.rights) continue;
    for (int i = 0; i < r.rights->n; i++)
      if (UnpCb* u = local_of(*r.rights->files[i])) fn(*u);
  }
}

}  // namespace

void unp_internalize(File& f) {
  UnpCb* u = local_of(f);
  if (!u) return;
  NetState& st = net_state(u->so.kernel());
  MutexLocker g(st.gc_lock_);
  if (u->inflight++ == 0) st.gc_list_.push_back(*u);
}

void unp_dispose(File& f) {
  UnpCb* u = local_of(f);
  if (!u) return;
  NetState& st = net_state(u->so.kernel());
  MutexLocker g(st.gc_lock_);
  if (--u->inflight == 0) st.gc_list_.erase(st.gc_list_.iterator_to(*u));
}

void unp_gc(Kernel& k) {
  NetState& st = net_state(k);
  for (;;) {
    SockRecordList purge;
    {
      MutexLocker g(st.gc_lock_);
      if (st.gc_list_.empty()) return;
      for (UnpCb& u : st.gc_list_) {
        File* f = u.so.file_.load(std::memory_order_acquire);
        u.gc_candidate = f && f->ref_count() == static_cast<uint32_t>(u.inflight);
        u.gc_reachable = false;
        u.gc_refs = u.inflight;
      }
      for (UnpCb& u : st.gc_list_) {
        if (!u.gc_candidate) continue;
        for_each_inflight(u.so, [](UnpCb& v) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          if (v.gc_candidate) v.gc_refs--;
        });
      }
      // Reachable: candidates with references left, and whatever is in
      // flight in their buffers, until nothing changes.
      for (UnpCb& u : st.gc_list_)
        if (u.gc_candidate && u.gc_refs > 0) u.gc_reachable = true;
      bool changed = true;
      while (changed) {
        changed = false;
        for (UnpCb& u : st.gc_list_) {
          if (!u.gc_candidate || !u.gc_reachable) continue;
          u.gc_candidate = false;  // scanned
          for_each_inflight(u.so, [&changed](UnpCb& v) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            if (v.gc_candidate && !v.gc_reachable) {
              v.gc_reachable = true;
              changed = true;
            }
          });
        }
      }
      for (UnpCb& u : st.gc_list_) {
        if (!u.gc_candidate || u.gc_reachable) continue;
        MutexLocker h(u.so.lock_);
        u.so.drain_locked(purge);
      }
    }
    if (purge.empty()) return;
    purge.clear_and_dispose(&SockRecord::dispose);
  }
}

}  // namespace rump

namespace rump {

void unp_purge_inflight(Kernel& k) {
  NetState& st = net_state(k);
  for (;;) {
    SockRecordList purge;
    {
      MutexLocker g(st.gc_lock_);
      for (UnpCb& u : st.gc_list_) {
        MutexLocker h(u.so.lock_);
        u.so.drain_locked(purge);
      }
    }
    if (purge.empty()) return;
    purge.clear_and_dispose(&SockRecord::dispose);
  }
}

}  // namespace rump
