// tmpfs.h: the memory file system: the root file system at boot and
// mountable anywhere ("tmpfs", option size=N[kmg]).
//
// Nodes are vnodes (no separate cache): a TmpfsNode lives while it has a
// name or an in-memory user. Regular files are sparse: page-sized chunks
// linked in an intrusive tree by index, absent pages read as zeros and
// count nothing in st_blocks. Pages come from the kernel's Kmem (so
// RUMP_MEMLIMIT covers them) and are counted against the mount's size=
// limit (ENOSPC).
//
// Memory: every structure that grows is intrusive. A directory entry is
// one Kmem block (hooks, cookie, name) allocated before anything is
// linked, and a page carries its own tree hook, so once the allocation
// succeeded linking cannot fail: an operation either fails with ENOMEM
// (ENOSPC for file data) having changed nothing, or completes.
//
// Everything is guarded by the mount's tree lock (vfs/vnode.h), reached
// as lock().
#pragma once

#include <boost/intrusive/set.hpp>
#include <boost/intrusive/unordered_set.hpp>
#include <string_view>

#include "base/intrusive_hash.h"
#include "vfs/vnode.h"

namespace rump {

class TmpfsMount;

class TmpfsNode : public Vnode {
 public:
  TmpfsNode(TmpfsMount& mp, const NewNode& n, ino_t ino);
  ~TmpfsNode() override;

  Result<Ref<Vnode>> lookup(std::string_view name) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<Ref<Vnode>> create(std::string_view name, const NewNode& n) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<Ref<Vnode>> create_unnamed(const NewNode& n) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<void> link(std::string_view name, Vnode& target) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<void> remove(std::string_view name, Vnode& vp) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<void> rmdir(std::string_view name, Vnode& vp) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<void> rename(std::string_view from_name, Vnode& vp, Vnode& to_dir, std::string_view to_name,
                      Vnode* target, bool exchange) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<void> readdir(int64_t off, ReaddirFn fn) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  bool has_entries() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return !by_cookie_.empty(); }
  Vnode* parent_dir() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return parent_; }
  std::string_view name_of(const Vnode& child) const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());

  Result<size_t> readlink(char* buf, size_t len) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<size_t> read(void* buf, size_t len, uint64_t off) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<size_t> write(const void* buf, size_t len, uint64_t off) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<void> truncate(uint64_t size) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<void> fallocate(int mode, uint64_t off, uint64_t len) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<uint64_t> seek_data(uint64_t off, bool hole) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());

  void getattr(Vattr& va) const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<void> setattr(const SetAttr& sa) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  void touch(int which) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // An access (read, readdir, readlink) under relatime rules.
  void mark_accessed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());

  // The root directory of a fresh mount: its own "." and the ".." that
  // names itself.
  void init_root() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { nlink_ = 2; }

 private:
  // A directory entry: one Kmem block holding the hooks, the cookie and
  // the name, made before it is linked (see the top of this file).
  struct Dirent {
    bi::unordered_set_member_hook<> name_hook;
    bi::set_member_hook<> cookie_hook;
    uint64_t cookie;
    TmpfsNode* node;  // holds a reference while linked
    size_t len;
    char name[1];     // len bytes and a NUL, allocated with the entry
    std::string_view sv() const { return {name, len}; }
  };
  struct NameOf {
    using type = std::string_view;
    std::string_view operator()(const Dirent& d) const { return d.sv(); }
  };
  struct CookieOf {
    using type = uint64_t;
    uint64_t operator()(const Dirent& d) const { return d.cookie; }
  };
  using NameTable = IntrusiveHash<Dirent, &Dirent::name_hook, NameOf>;
  using CookieSet = bi::set<Dirent, bi::member_hook<Dirent, bi::set_member_hook<>, &Dirent::cookie_hook>,
                            bi::key_of_value<CookieOf>, bi::constant_time_size<true>>;

  // A page of file data with its tree hook.
  struct Page {
    bi::set_member_hook<> hook;
    uint64_t idx;
    alignas(16) char data[kBlockSize];
  };
  struct IndexOf {
    using type = uint64_t;
    uint64_t operator()(const Page& p) const { return p.idx; }
  };
  using PageSet = bi::set<Page, bi::member_hook<Page, bi::set_member_hook<>, &Page::hook>,
                          bi::key_of_value<IndexOf>, bi::constant_time_size<true>>;

  TmpfsMount& tmount() const;
  // An unlinked entry for name (ENOMEM); link_entry makes it name n and
  // cannot fail; free_dirent gives back one that was never linked.
  Result<Dirent*> alloc_dirent(std::string_view name);
  static void free_dirent(Dirent* d);
  void link_entry(Dirent* d, TmpfsNode& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<void> add_entry(std::string_view name, TmpfsNode& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // Unlinks d and frees it (not the node's reference).
  void drop_entry(Dirent* d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Dirent* find(std::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Page* find_page(uint64_t idx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<char*> page_for_write(uint64_t idx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  void free_pages_from(uint64_t first_idx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  void zero_range(uint64_t from, uint64_t to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  void free_page(Page* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // The destructor's teardown: no other user exists, so no lock is held.
  void destroy_contents() ABSL_NO_THREAD_SAFETY_ANALYSIS;

  mode_t mode_ ABSL_GUARDED_BY(lock());
  uid_t uid_ ABSL_GUARDED_BY(lock());
  gid_t gid_ ABSL_GUARDED_BY(lock());
  nlink_t nlink_ ABSL_GUARDED_BY(lock()) = 0;
  const ino_t ino_;
  const dev_t rdev_;
  timespec atime_ ABSL_GUARDED_BY(lock());
  timespec mtime_ ABSL_GUARDED_BY(lock());
  timespec ctime_ ABSL_GUARDED_BY(lock());
  timespec btime_ ABSL_GUARDED_BY(lock());
  // Regular files.
  uint64_t size_ ABSL_GUARDED_BY(lock()) = 0;
  PageSet pages_ ABSL_GUARDED_BY(lock());
  // Symlinks: set before the node is published, constant afterwards.
  char* target_ = nullptr;
  size_t target_len_ = 0;
  // Directories.
  // The directory that last linked this node (a file with several names:
  // one of them), for "..", getcwd and the paths /proc shows; nullptr
  // once that name is gone. Borrowed: a directory outlives the names in it.
  TmpfsNode* parent_ ABSL_GUARDED_BY(lock()) = nullptr;
  NameTable by_name_ ABSL_GUARDED_BY(lock());
  CookieSet by_cookie_ ABSL_GUARDED_BY(lock());
  uint64_t next_cookie_ ABSL_GUARDED_BY(lock()) = 2;
  friend class TmpfsMount;
  // The node numbered ino in this directory's subtree, or nullptr.
  TmpfsNode* find_ino(ino_t ino) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  friend Result<Ref<Mount>> tmpfs_mount(Kernel& k, const char* source, int flags, const char* data);
};

class TmpfsMount : public Mount {
 public:
  TmpfsMount(Kernel& k, FsType& t, int flags, uint64_t max_pages);
  ~TmpfsMount() override;
  Stat statfs() override;
  void teardown() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Handles: a generation word that is always 0 (inode numbers are never
  // reused) and the inode number (two words). A handle finds only a node
  // that still has a name: vget searches the tree.
  int handle_words() const override { return 3; }
  Result<Ref<Vnode>> vget(uint64_t ino, uint32_t gen) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);

  bool charge_page();
  void uncharge_page();
  ino_t next_ino() { return next_ino_.fetch_add(1, std::memory_order_relaxed); }

 private:
  uint64_t max_pages_;  // 0: no limit but the kernel's memory
  std::atomic<uint64_t> pages_{0};
  std::atomic<uint64_t> nodes_{0};
  std::atomic<ino_t> next_ino_{2};
  friend class TmpfsNode;
};

// Mounts a fresh tmpfs (used for the root file system at boot).
Result<Ref<Mount>> tmpfs_mount(Kernel& k, const char* source, int flags, const char* data);

}  // namespace rump
