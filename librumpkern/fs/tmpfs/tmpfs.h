// tmpfs.h: the memory file system: the root file system at boot and
// mountable anywhere ("tmpfs", option size=N[kmg]).
//
// Nodes are vnodes (no separate cache): a TmpfsNode lives while it has a
// name or an in-memory user. Regular files are sparse: page-sized chunks in
// an ordered map, absent pages read as zeros and count nothing in
// st_blocks. Pages come from the kernel's Kmem (so RUMP_MEMLIMIT covers
// them) and are counted against the mount's size= limit (ENOSPC).
// Everything is guarded by the mount's tree lock (vfs/vnode.h).
#pragma once

#include <map>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "vfs/vnode.h"

namespace rump {

class TmpfsMount;

class TmpfsNode : public Vnode {
 public:
  TmpfsNode(TmpfsMount& mp, const NewNode& n, ino_t ino);
  ~TmpfsNode() override;

  Result<Ref<Vnode>> lookup(std::string_view name) override;
  Result<Ref<Vnode>> create(std::string_view name, const NewNode& n) override;
  Result<Ref<Vnode>> create_unnamed(const NewNode& n) override;
  Result<void> link(std::string_view name, Vnode& target) override;
  Result<void> remove(std::string_view name, Vnode& vp) override;
  Result<void> rmdir(std::string_view name, Vnode& vp) override;
  Result<void> rename(std::string_view from_name, Vnode& vp, Vnode& to_dir, std::string_view to_name,
                      Vnode* target, bool exchange) override;
  Result<void> readdir(int64_t off, ReaddirFn fn) override;
  bool has_entries() const override { return !by_cookie_.empty(); }
  Vnode* parent_dir() const override { return parent_; }
  std::string_view name_of(const Vnode& child) const override;

  Result<size_t> readlink(char* buf, size_t len) override;
  Result<size_t> read(void* buf, size_t len, uint64_t off) override;
  Result<size_t> write(const void* buf, size_t len, uint64_t off) override;
  Result<void> truncate(uint64_t size) override;
  Result<void> fallocate(int mode, uint64_t off, uint64_t len) override;
  Result<uint64_t> seek_data(uint64_t off, bool hole) override;

  void getattr(Vattr& va) const override;
  Result<void> setattr(const SetAttr& sa) override;
  void touch(int which) override;
  // An access (read, readdir, readlink) under relatime rules.
  void mark_accessed();

 private:
  struct Dirent {
    char* name;
    size_t len;
    uint64_t cookie;
    TmpfsNode* node;  // holds a reference
    std::string_view sv() const { return {name, len}; }
  };
  using NameMap = absl::flat_hash_map<std::string_view, Dirent*, absl::container_internal::hash_default_hash<std::string_view>,
                                      absl::container_internal::hash_default_eq<std::string_view>,
                                      KAllocator<std::pair<const std::string_view, Dirent*>>>;
  using CookieMap = std::map<uint64_t, Dirent*, std::less<uint64_t>, KAllocator<std::pair<const uint64_t, Dirent*>>>;
  using PageMap = std::map<uint64_t, char*, std::less<uint64_t>, KAllocator<std::pair<const uint64_t, char*>>>;

  TmpfsMount& tmount() const;
  Result<void> add_entry(std::string_view name, TmpfsNode& n);
  void drop_entry(Dirent* d);  // unlinks d from the maps and frees it (not the node ref)
  Dirent* find(std::string_view name) const;
  Result<char*> page_for_write(uint64_t idx);
  void free_pages_from(uint64_t first_idx);
  void zero_range(uint64_t from, uint64_t to);
  void free_page(PageMap::iterator it);

  mode_t mode_;
  uid_t uid_;
  gid_t gid_;
  nlink_t nlink_ = 0;
  ino_t ino_;
  dev_t rdev_;
  timespec atime_, mtime_, ctime_, btime_;
  // Regular files.
  uint64_t size_ = 0;
  PageMap pages_;
  // Symlinks.
  char* target_ = nullptr;
  size_t target_len_ = 0;
  // Directories.
  TmpfsNode* parent_ = nullptr;  // borrowed: a linked directory's parent outlives it
  NameMap by_name_;
  CookieMap by_cookie_;
  uint64_t next_cookie_ = 2;
  friend class TmpfsMount;
  friend Result<Ref<Mount>> tmpfs_mount(Kernel& k, const char* source, int flags, const char* data);
};

class TmpfsMount : public Mount {
 public:
  TmpfsMount(Kernel& k, FsType& t, int flags, uint64_t max_pages);
  ~TmpfsMount() override;
  Stat statfs() override;
  void teardown() override;

  bool charge_page();
  void uncharge_page();
  ino_t next_ino() { return next_ino_++; }

 private:
  uint64_t max_pages_;  // 0: no limit but the kernel's memory
  std::atomic<uint64_t> pages_{0};
  std::atomic<uint64_t> nodes_{0};
  ino_t next_ino_ = 2;  // guarded by lock_
  friend class TmpfsNode;
};

// Mounts a fresh tmpfs (used for the root file system at boot).
Result<Ref<Mount>> tmpfs_mount(Kernel& k, const char* source, int flags, const char* data);

}  // namespace rump
