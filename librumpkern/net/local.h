// local.h: the local domain (AF_UNIX, AF_LOCAL): its per-kernel state
// (the name table of bound sockets and the collector of descriptors in
// flight) and its protocol control block. Only net/ code uses it.
//
// Names: a socket bound to a path holds the socket inode bind made (a
// VType::kSock vnode) and is found by it; an abstract name (leading NUL)
// is found by its bytes. Both live in one table, keyed by a tag byte and
// either the vnode's address or the name, under NetState::names_lock_
// (rank kFile: taken before any socket lock, never with a tree lock).
//
// Peers: UnpCb::peer (a reference) is guarded by the socket's lock. A
// connection is made and undone one socket lock at a time (socket.h).
#pragma once

#include <boost/intrusive/unordered_set.hpp>

#include <atomic>
#include <string_view>

#include "base/intrusive_hash.h"
#include "net/socket.h"
#include "vfs/vnode.h"

namespace rump {

struct UnpCb : public KObject {
  explicit UnpCb(Socket& s) : so(s) {}
  Socket& so;
  // The bound name (set once under the names lock, read without locks).
  std::atomic<SockAddr*> addr{nullptr};
  RefPtr<Vnode> vnode;  // a path binding's socket inode
  bi::unordered_set_member_hook<> name_hook;
  char key[1 + sizeof(sockaddr_un)] = {};
  size_t keylen = 0;
  bool named = false;  // in the name table; guarded by names_lock_
  Socket* peer = nullptr;  // guarded by so.lock_; holds a reference
  Mutex bind_lock{LockRank::kNone};  // one bind at a time (sleeps in the VFS)
  // Descriptor-passing bookkeeping (net/unix_gc.cc), guarded by
  // NetState::gc_lock_: how many references to this socket's file are in
  // flight, and the collector's marks.
  bi::list_member_hook<bi::link_mode<bi::safe_link>> gc_hook;
  int inflight = 0;
  int gc_refs = 0;
  bool gc_candidate = false;
  bool gc_reachable = false;
};
using UnpGcList = bi::list<UnpCb, bi::member_hook<UnpCb, decltype(UnpCb::gc_hook), &UnpCb::gc_hook>,
                           bi::constant_time_size<false>>;

struct UnpKeyOf {
  using type = std::string_view;
  std::string_view operator()(const UnpCb& u) const { return {u.key, u.keylen}; }
};

// Lives from boot until halt and the last local socket, whichever is
// later (sockets are closed after the component's fini at halt).
struct NetState : public KObject {
  explicit NetState(Kernel& k);
  Kernel& kernel;
  std::atomic<int> refs_{1};  // the component's, and one per local socket
  void ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref();
  Mutex names_lock_{LockRank::kFile};
  IntrusiveHash<UnpCb, &UnpCb::name_hook, UnpKeyOf> names_ ABSL_GUARDED_BY(names_lock_);
  uint32_t autobind_next_ ABSL_GUARDED_BY(names_lock_) = 0;
  int max_dgram_qlen = 10;  // net.unix.max_dgram_qlen
  // The collector (net/unix_gc.cc): sockets whose files are in flight.
  // Rank kFile: socket locks are taken under it, it is taken under none.
  Mutex gc_lock_{LockRank::kFile};
  UnpGcList gc_list_ ABSL_GUARDED_BY(gc_lock_);
  // epoll (net/epoll.cc): every file's list of the items watching it.
  Mutex ep_lock_{LockRank::kFile};
  // epoll: adding an epoll to an epoll (the loop and depth check and the
  // insert are one step, so two adds cannot close a loop between them).
  Mutex ep_nest_lock_{LockRank::kNone};
};
NetState& net_state(Kernel& k);

// Descriptor passing (net/unix_gc.cc): f enters or leaves flight; the
// collector runs at the last close of a local socket while anything is in
// flight.
void unp_internalize(File& f);
void unp_dispose(File& f);
void unp_gc(Kernel& k);
// Drops every descriptor in flight (halt).
void unp_purge_inflight(Kernel& k);
bool is_local_socket(Socket& so);

inline UnpCb& unp(Socket& so) { return *static_cast<UnpCb*>(so.pcb_); }

}  // namespace rump
