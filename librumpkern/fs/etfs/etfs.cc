// etfs: host files in the kernel's name space (see etfs.h).
#include "fs/etfs/etfs.h"

#include <fcntl.h>
#include <rump/rumpuser.h>
#include <rump/rumpvfs.h>
#include <sys/sysmacros.h>

#include <cstring>
#include <string_view>

#include "absl/cleanup/cleanup.h"

#include "dev/blockdev.h"
#include "kern/component.h"
#include "kern/curlwp.h"
#include "kern/faction_if.h"
#include "kern/kernel.h"
#include "vfs/kvec.h"
#include "vfs/vfs.h"

namespace rump {

namespace {

constexpr unsigned kEtfsMajor = 250;  // rdev of etfs device nodes: 250:<n>

Result<void> etfs_init(Kernel& k);
void etfs_fini(Kernel& k);
Component g_etfs_component{"etfs", ComponentType::kDev, &etfs_init, &etfs_fini};
RUMP_COMPONENT(g_etfs_component);
struct EtfsState;
const KernelSlot<EtfsState> g_etfs_state{g_etfs_component};

FsType g_etfs_type{"etfs", nullptr};  // not mountable by name: made by registration

// A kernel copy of a string.
char* kstrdup(Kmem& km, std::string_view s) {
  char* p = static_cast<char*>(km.alloc(s.size() + 1));
  if (!p) return nullptr;
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

class EtfsMount;

class EtfsNode : public Vnode {
 public:
  // A file or device: fd (owned), window [begin, begin + size); size
  // kEndOff grows with the host file (known_size: its size at creation,
  // if known).
  static constexpr uint64_t kEndOff = ~uint64_t{0};

  EtfsNode(EtfsMount& m, VType type, char* hostpath, int fd, bool rdonly, uint64_t begin, uint64_t size,
           bool subdirs, EtfsNode* parent, ino_t ino, dev_t rdev, uint64_t known_size = 0);
  ~EtfsNode() override;

  // --- directories
  Result<Ref<Vnode>> lookup(std::string_view name) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<Ref<Vnode>> create(std::string_view, const NewNode&) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(EOPNOTSUPP); }
  Result<void> link(std::string_view, Vnode&) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(EOPNOTSUPP); }
  Result<void> remove(std::string_view, Vnode&) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(EOPNOTSUPP); }
  Result<void> rmdir(std::string_view, Vnode&) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return err(EOPNOTSUPP); }
  Result<void> readdir(int64_t off, ReaddirFn fn) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  bool has_entries() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return !children_.empty(); }
  Vnode* parent_dir() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return parent_; }
  std::string_view name_of(const Vnode& child) const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());

  // --- data
  Result<size_t> read(void* buf, size_t len, uint64_t off) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<size_t> write(const void* buf, size_t len, uint64_t off) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<void> fsync() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  void getattr(Vattr& va) const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<void> setattr(const SetAttr& sa) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<void> truncate(uint64_t size) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());

  // The window's size now; a window that grows with the host file asks
  // the host every time.
  Result<uint64_t> window_size() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  BlockDevice* blockdev() { return blk_; }
  void drop_children() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());

 private:
  bool shows(int ft) const;

  struct Child {
    char* name;
    Vnode* node;  // holds a reference
  };
  EtfsMount& em_;
  char* hostpath_;
  int fd_;
  bool rdonly_;
  uint64_t begin_, size_;
  bool subdirs_;
  EtfsNode* parent_;
  ino_t ino_;
  dev_t rdev_;
  mode_t mode_;
  HostBlockDevice* blk_ = nullptr;
  KVec<Child> children_ ABSL_GUARDED_BY(lock());
  // The size the host last gave (getattr cannot fail: when the host
  // cannot say, it shows this one).
  mutable uint64_t known_size_ ABSL_GUARDED_BY(lock()) = 0;

};

class EtfsMount : public Mount {
 public:
  EtfsMount(Kernel& k) : Mount(k, g_etfs_type, 0) {}
  Stat statfs() override { return Stat{0, 0, 0, 0, 0x45544653}; }
  void teardown() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    if (root_) {
      auto& root = static_cast<EtfsNode&>(*root_);
      root.lock().assert_held();  // lock_ is the root's tree lock
      root.drop_children();
    }
    root_.reset();
  }
};

EtfsNode::EtfsNode(EtfsMount& m, VType type, char* hostpath, int fd, bool rdonly, uint64_t begin, uint64_t size,
                   bool subdirs, EtfsNode* parent, ino_t ino, dev_t rdev, uint64_t known_size)
    : Vnode(m, type), em_(m), hostpath_(hostpath), fd_(fd), rdonly_(rdonly), begin_(begin), size_(size),
      subdirs_(subdirs), parent_(parent), ino_(ino), rdev_(rdev),
      mode_(type == VType::kDir ? 0755 : (rdonly ? 0444 : 0644)),
      children_(m.kernel().kmem()), known_size_(size != kEndOff ? size : known_size) {
  if (type == VType::kBlk) {
    blk_ = new (m.kernel().kmem()) HostBlockDevice(m.kernel().kmem(), fd, begin, size, rdonly);
  }
}

// The last reference went: nobody else can reach the node, no lock.
EtfsNode::~EtfsNode() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  drop_children();
  delete blk_;
  if (fd_ >= 0) rumpuser_close(fd_);
  Kmem::free(hostpath_);
}

void EtfsNode::drop_children() {
  for (Child& c : children_) {
    Kmem::free(c.name);
    c.node->unref();
  }
  children_.clear();
}

Result<uint64_t> EtfsNode::window_size() const {
  if (size_ != kEndOff) return size_;
  uint64_t hs = 0;
  int t = 0;
  if (int e = rumpuser_getfileinfo(hostpath_, &hs, &t)) {
    // The host removed (or renamed) the file under an open descriptor:
    // the window is empty. Any other failure is the caller's error.
    if (e != ENOENT && e != ENOTDIR) return err(e);
    hs = 0;
  }
  known_size_ = hs < begin_ ? 0 : hs - begin_;
  return known_size_;
}

// Whether an open for reading and writing that failed with e may succeed
// read-only: only a refusal of write access. Any other failure (no
// descriptors, I/O error) is the caller's error, not a read-only file.
bool write_refused(int e) { return e == EACCES || e == EROFS || e == EPERM || e == ETXTBSY; }

// Which host entries a directory shows, for lookup and readdir alike:
// regular files (symbolic links followed, as the host's open does), and
// with _SUBDIRS directories too. Devices, FIFOs, sockets and dangling
// links stay hidden, as in NetBSD's rumpfs.
bool EtfsNode::shows(int ft) const { return ft == RUMPUSER_FT_REG || (ft == RUMPUSER_FT_DIR && subdirs_); }

Result<Ref<Vnode>> EtfsNode::lookup(std::string_view name) {
  if (!is_dir()) return err(ENOTDIR);
  if (name == ".") return Ref<Vnode>(*this);
  if (name == "..") return Ref<Vnode>(parent_ ? static_cast<Vnode&>(*parent_) : static_cast<Vnode&>(*this));
  if (name.find('/') != std::string_view::npos || name.size() > kNameMax) return err(ENOENT);
  Kmem& km = mount().kernel().kmem();
  size_t hl = std::strlen(hostpath_);
  char* path = static_cast<char*>(km.alloc(hl + 1 + name.size() + 1));
  if (!path) return err(ENOMEM);
  std::memcpy(path, hostpath_, hl);
  path[hl] = '/';
  std::memcpy(path + hl + 1, name.data(), name.size());
  path[hl + 1 + name.size()] = '\0';
  absl::Cleanup free_path = [&] { Kmem::free(path); };
  // The host decides, every time: a node made earlier stays only while
  // the host still has the same object under the name, so lookup agrees
  // with readdir after the host directory changed. A dropped node lives on
  // for the files open on it.
  rumpuser_dirent de{};
  int gone = rumpuser_getdirent(path, &de);
  // Only the host's "no such entry" answers mean not found; anything else
  // (an I/O error, no memory) is the lookup's error.
  if (gone != 0 && gone != ENOENT && gone != ENOTDIR && gone != ENAMETOOLONG && gone != ELOOP) return err(gone);
  bool found = gone == 0 && shows(de.d_type);
  VType want = de.d_type == RUMPUSER_FT_DIR ? VType::kDir : VType::kReg;
  for (size_t i = 0; i < children_.size(); i++) {
    Child& c = children_[i];
    if (name != c.name) continue;
    auto* cn = static_cast<EtfsNode*>(c.node);
    if (found && cn->ino_ == de.d_ino && cn->type() == want) return Ref<Vnode>(*c.node);
    Kmem::free(c.name);
    c.node->unref();
    children_.erase(i);
    break;
  }
  if (!found) return err(ENOENT);
  EtfsNode* n = nullptr;
  if (want == VType::kReg) {
    int fd = -1;
    bool ro = false;
    if (int e = rumpuser_open(path, RUMPUSER_OPEN_RDWR, &fd)) {
      if (!write_refused(e)) return err(e);
      ro = true;
      if (int e2 = rumpuser_open(path, RUMPUSER_OPEN_RDONLY, &fd)) return err(e2);
    }
    n = new (km) EtfsNode(em_, VType::kReg, path, fd, ro, 0, kEndOff, false, this, de.d_ino, 0);
    if (!n) {
      rumpuser_close(fd);
      return err(ENOMEM);
    }
  } else {
    n = new (km) EtfsNode(em_, VType::kDir, path, -1, false, 0, 0, true, this, de.d_ino, 0);
    if (!n) return err(ENOMEM);
  }
  std::move(free_path).Cancel();  // the node owns path now
  char* cname = kstrdup(km, name);
  if (!cname) {
    n->unref();
    return err(ENOMEM);
  }
  if (!children_.reserve_more(1).ok()) {
    Kmem::free(cname);
    n->unref();
    return err(ENOMEM);
  }
  children_.push_back(Child{cname, n});  // the list keeps the creation reference
  return Ref<Vnode>(*n);
}

// Positions are the host's own directory cookies (rumpuser_readdir), so a
// getdents64 resumes, an lseek to a d_off returns there and 0 rewinds, with
// no state kept between calls. "." and ".." are the host's entries with
// this file system's inode numbers; entries the directory does not show
// are skipped (their cookies are passed over, never returned).
Result<void> EtfsNode::readdir(int64_t off, ReaddirFn fn) {
  if (!is_dir()) return err(ENOTDIR);
  constexpr size_t kBatch = 16;
  Kmem& km = mount().kernel().kmem();
  auto* ents = static_cast<rumpuser_dirent*>(km.alloc(kBatch * sizeof(rumpuser_dirent)));
  if (!ents) return err(ENOMEM);
  absl::Cleanup free_ents = [&] { Kmem::free(ents); };
  int dh = -1;
  TRY(from_errno(rumpuser_opendir(hostpath_, &dh)));
  absl::Cleanup close_dir = [&] { rumpuser_closedir(dh); };
  int64_t pos = off;
  for (;;) {
    size_t n = 0;
    TRY(from_errno(rumpuser_readdir(dh, &pos, ents, kBatch, &n)));
    if (n == 0) return {};
    for (size_t i = 0; i < n; i++) {
      const rumpuser_dirent& e = ents[i];
      std::string_view name = e.d_name;
      DirEntry d{e.d_ino, e.d_off, VType::kReg, name};
      if (name == ".") d = DirEntry{ino_, e.d_off, VType::kDir, name};
      else if (name == "..") d = DirEntry{parent_ ? parent_->ino_ : ino_, e.d_off, VType::kDir, name};
      else if (!shows(e.d_type)) continue;
      else if (e.d_type == RUMPUSER_FT_DIR) d.type = VType::kDir;
      if (!fn(d)) return {};
    }
  }
}

std::string_view EtfsNode::name_of(const Vnode& child) const {
  for (const Child& c : children_)
    if (c.node == &child) return c.name;
  return {};
}

Result<size_t> EtfsNode::read(void* buf, size_t len, uint64_t off) {
  if (is_dir()) return err(EISDIR);
  uint64_t ws = TRY(window_size());
  if (off >= ws) return size_t{0};
  if (len > ws - off) len = static_cast<size_t>(ws - off);
  // What a file system mounted on the device gathered reaches the host
  // file first, so that the node shows it.
  if (blk_ != nullptr) TRY(blk_->send_gathered_writes());
  rumpuser_iovec iov{buf, len};
  size_t got = 0;
  int e = rumpuser_iovread(fd_, &iov, 1, static_cast<int64_t>(begin_ + off), &got);
  if (e) return err(e);
  return got;
}

Result<size_t> EtfsNode::write(const void* buf, size_t len, uint64_t off) {
  if (is_dir()) return err(EISDIR);
  if (rdonly_) return err(EBADF);
  if (size_ != kEndOff) {
    if (off >= size_) return err(len ? ENOSPC : 0);
    if (len > size_ - off) len = static_cast<size_t>(size_ - off);
  }
  if (len == 0) return size_t{0};
  // After what a mounted file system gathered, not overwritten by it.
  if (blk_ != nullptr) TRY(blk_->send_gathered_writes());
  rumpuser_iovec iov{const_cast<void*>(buf), len};
  size_t put = 0;
  int e = rumpuser_iovwrite(fd_, &iov, 1, static_cast<int64_t>(begin_ + off), &put);
  if (e) return err(e);
  return put;
}

Result<void> EtfsNode::fsync() {
  if (fd_ < 0) return {};
  if (blk_ != nullptr) TRY(blk_->send_gathered_writes());
  return from_errno(rumpuser_syncfd(fd_, RUMPUSER_SYNCFD_WRITE | RUMPUSER_SYNCFD_SYNC, 0, 0));
}

void EtfsNode::getattr(Vattr& va) const {
  va = Vattr{};
  va.type = type();
  va.mode = mode_;
  va.nlink = is_dir() ? 2 : 1;
  if (!is_dir()) {
    Result<uint64_t> ws = window_size();
    va.size = ws.ok() ? ws.value() : known_size_;
  }
  va.blocks = (va.size + 511) / 512;
  va.ino = ino_;
  va.dev = mount().dev_;
  va.rdev = rdev_;
  va.atime = va.mtime = va.ctime = va.btime = timespec{};
}

Result<void> EtfsNode::setattr(const SetAttr& sa) {
  if (sa.mask & SetAttr::kSize) return err(EINVAL);
  if (sa.mask & SetAttr::kMode) mode_ = sa.mode & 07777;
  return {};
}

// A window that grows with the host file (a whole regular file) is cut
// or extended as a host file is; a fixed window or a device keeps its
// size (EINVAL, as ftruncate on a device).
Result<void> EtfsNode::truncate(uint64_t size) {
  if (is_dir()) return err(EISDIR);
  if (type() != VType::kReg || size_ != kEndOff) return err(EINVAL);
  if (rdonly_) return err(EACCES);
  if (size > static_cast<uint64_t>(INT64_MAX) - begin_) return err(EFBIG);
  TRY(from_errno(rumpuser_ftruncate(fd_, begin_ + size)));
  known_size_ = size;
  return {};
}

// --- the special-file hook: etfs block and character nodes do byte I/O
// through the vnode operations.
Result<const FileOps*> etfs_dev_open(Lwp&, Vnode& vp, File&, int) {
  if (!dynamic_cast<EtfsNode*>(&vp)) return err(ENXIO);
  return &kVnodeFileOps;
}
const SpecialOps g_etfs_blk{VType::kBlk, kAnyRdev, &etfs_dev_open};
const SpecialOps g_etfs_chr{VType::kChr, kAnyRdev, &etfs_dev_open};
const SpecialRegistrar g_reg_blk(&g_etfs_blk);
const SpecialRegistrar g_reg_chr(&g_etfs_chr);

// --- the registry

struct Entry {
  char* key;
  // A reference of its own: a user may take the mount out of the table
  // (umount2) while the key stays registered.
  EtfsMount* mount;
};

struct EtfsState : public KObject {
  explicit EtfsState(Kmem& k) : entries(k) {}
  // Serialises register/remove; outermost (taken before the mount table,
  // so unranked: kMount is the lowest rank of the VFS).
  Mutex lock{LockRank::kNone};
  KVec<Entry> entries ABSL_GUARDED_BY(lock);
  unsigned next_minor ABSL_GUARDED_BY(lock) = 0;
};

EtfsState* state(Kernel& k) { return g_etfs_state.get(k); }

Result<void> etfs_init(Kernel& k) {
  auto* st = new (k.kmem()) EtfsState(k.kmem());
  if (!st) return err(ENOMEM);
  g_etfs_state.set(k, st);
  return {};
}

void etfs_fini(Kernel& k) {
  EtfsState* st = state(k);
  if (!st) return;
  {
    MutexLocker g(st->lock);
    for (Entry& e : st->entries) {
      Kmem::free(e.key);
      e.mount->unref();
    }
    st->entries.clear();
  }
  delete g_etfs_state.take(k);
}

// Makes the missing directories of path (all but its last component).
// A directory that could not be made is the registration's error (a
// path that leads nowhere is found by the lookup after this).
int make_parents(Lwp& l, const char* path) {
  char buf[kPathMax];
  size_t n = std::strlen(path);
  if (n >= kPathMax) return ENAMETOOLONG;
  std::memcpy(buf, path, n + 1);
  for (size_t i = 1; i < n; i++) {
    if (buf[i] != '/') continue;
    buf[i] = '\0';
    NameiData nd;
    if (namei_parent(l, AT_FDCWD, buf, nd).ok() && !nd.vp && !nd.is_dot) {
      NewNode nn = new_node(l, getattr(*nd.dir), VType::kDir, 0755);
      Result<Ref<Vnode>> made = create_in(l, nd, nn);
      if (!made.ok() && made.error() != EEXIST) return made.error();
    }
    buf[i] = '/';
  }
  return 0;
}

// Detaches m from the mount table and from the node it covers.
void unmount_etfs(Kernel& k, EtfsMount& m) {
  VfsState& vs = vfs_state(k);
  {
    MutexLocker g(vs.mount_lock_);
    m.table_lock().assert_held();  // the one table: vs's
    if (m.unmounted_) return;
    unmount_locked(vs, m, false);
  }
  m.unref();  // the table's reference
}

int do_register(Lwp& l, EtfsState& st, const char* key, const char* hostpath, int type, uint64_t begin,
                uint64_t size) {
  Kernel& k = l.kernel();
  Kmem& km = k.kmem();
  if (!key || !hostpath || key[0] != '/') return EINVAL;
  if (type < RUMP_ETFS_REG || type > RUMP_ETFS_DIR_SUBDIRS) return EINVAL;
  if (std::strlen(key) >= kPathMax) return ENAMETOOLONG;
  bool dir = type == RUMP_ETFS_DIR || type == RUMP_ETFS_DIR_SUBDIRS;
  uint64_t hsize = 0;
  int ft = 0;
  if (int e = rumpuser_getfileinfo(hostpath, &hsize, &ft)) return e;
  if (dir != (ft == RUMPUSER_FT_DIR)) return dir ? ENOTDIR : EINVAL;
  if (!dir && ft != RUMPUSER_FT_REG && ft != RUMPUSER_FT_BLK && ft != RUMPUSER_FT_CHR) return EINVAL;
  bool grows = false;
  if (!dir) {
    if (begin > hsize) return EINVAL;
    if (size == RUMP_ETFS_SIZE_ENDOFF) {
      grows = type == RUMP_ETFS_REG;
      size = hsize - begin;
    } else if (size > hsize - begin) {
      return EINVAL;
    }
  }
  MutexLocker g(st.lock);
  for (Entry& e : st.entries)
    if (std::strcmp(e.key, key) == 0) return EEXIST;
  // Room for the entry first: past the placeholder nothing may fail.
  if (!st.entries.reserve_more(1).ok()) return ENOMEM;
  // The host side.
  int fd = -1;
  bool ro = false;
  ino_t root_ino = 1;  // a directory's is the host's, as its entries' are
  if (dir) {
    rumpuser_dirent de;
    if (int e = rumpuser_getdirent(hostpath, &de)) return e;
    root_ino = de.d_ino;
  } else {
    int bio = type == RUMP_ETFS_BLK ? RUMPUSER_OPEN_BIO : 0;
    if (int e = rumpuser_open(hostpath, RUMPUSER_OPEN_RDWR | bio, &fd)) {
      if (!write_refused(e)) return e;
      ro = true;
      if (int e2 = rumpuser_open(hostpath, RUMPUSER_OPEN_RDONLY | bio, &fd)) return e2;
    }
  }
  char* hp = kstrdup(km, hostpath);
  char* kkey = kstrdup(km, key);
  auto* m = new (km) EtfsMount(k);
  VType vt = dir ? VType::kDir
             : type == RUMP_ETFS_BLK ? VType::kBlk
             : type == RUMP_ETFS_CHR ? VType::kChr
                                     : VType::kReg;
  dev_t rdev = (vt == VType::kBlk || vt == VType::kChr) ? makedev(kEtfsMajor, st.next_minor) : 0;
  EtfsNode* root = nullptr;
  if (m && hp)
    root = new (km) EtfsNode(*m, vt, hp, fd, ro, dir ? 0 : begin, grows ? EtfsNode::kEndOff : size,
                             type == RUMP_ETFS_DIR_SUBDIRS, nullptr, root_ino, rdev, dir ? 0 : size);
  if (!root || !kkey) {
    if (root) root->unref();
    else {
      Kmem::free(hp);
      if (fd >= 0) rumpuser_close(fd);
    }
    if (m) m->unref();
    Kmem::free(kkey);
    return ENOMEM;
  }
  {
    MutexLocker mg(m->lock_);
    m->root_ = RefPtr<Vnode>(kAdopt, root);
  }
  Ref<Mount> mref(kAdopt, m);
  // The placeholder the mount covers.
  NameiData nd;
  Result<void> r = from_errno(make_parents(l, key));
  if (r.ok()) r = namei_parent(l, AT_FDCWD, key, nd);
  if (!r.ok() || nd.vp || nd.is_dot) {
    MutexLocker mg(m->lock_);
    m->teardown();
    Kmem::free(kkey);
    return !r.ok() ? r.error() : EEXIST;
  }
  NewNode nn = new_node(l, getattr(*nd.dir), vt == VType::kBlk || vt == VType::kChr ? vt : (dir ? VType::kDir : VType::kReg),
                        dir ? 0755 : 0644);
  nn.rdev = rdev;
  Result<Ref<Vnode>> ph = create_in(l, nd, nn);
  if (!ph.ok()) {
    MutexLocker mg(m->lock_);
    m->teardown();
    Kmem::free(kkey);
    return ph.error();
  }
  VfsState& vs = vfs_state(k);
  m->dev_ = makedev(0, vs.next_dev_.fetch_add(1));
  m->set_covered(std::move(ph.value()));
  {
    MutexLocker tg(vs.mount_lock_);
    {
      MutexLocker cg(m->covered()->mount().lock_);
      m->covered()->set_mounted_here(m);
    }
    vs.mounts_.push_back(*mref.leak());
  }
  m->ref();  // the entry's
  st.entries.push_back(Entry{kkey, m});
  if (rdev) st.next_minor++;
  return 0;
}

int do_remove(Lwp& l, EtfsState& st, const char* key) {
  if (!key) return EINVAL;
  MutexLocker g(st.lock);
  size_t i = 0;
  while (i < st.entries.size() && std::strcmp(st.entries[i].key, key) != 0) i++;
  if (i == st.entries.size()) return ENOENT;
  EtfsMount* m = st.entries[i].mount;
  if (m->users_.load() > 0) return EBUSY;
  Ref<Mount> hold(*m);
  unmount_etfs(l.kernel(), *m);
  // Unlink the placeholder.
  NameiData nd;
  if (namei_parent(l, AT_FDCWD, key, nd).ok() && nd.vp) {
    Vnode& dir = *nd.dir;
    MutexLocker dg(dir.mount().lock_);
    if (nd.vp->is_dir()) (void)dir.rmdir(nd.last, *nd.vp);
    else (void)dir.remove(nd.last, *nd.vp);
  }
  Kmem::free(st.entries[i].key);
  m->unref();  // the entry's; hold keeps it until we return
  st.entries.erase(i);
  return 0;
}

}  // namespace

int etfs_register(Kernel& k, const char* key, const char* hostpath, int type, uint64_t begin, uint64_t size) {
  EtfsState* st = state(k);
  if (!st) return ENOSYS;
  Lwp* l = enter(k);
  if (!l) return enter_error(k);
  int e = do_register(*l, *st, key, hostpath, type, begin, size);
  leave(k, l);
  return e;
}

int etfs_remove(Kernel& k, const char* key) {
  EtfsState* st = state(k);
  if (!st) return ENOSYS;
  Lwp* l = enter(k);
  if (!l) return enter_error(k);
  int e = do_remove(*l, *st, key);
  leave(k, l);
  return e;
}

BlockDevice* block_device_of(Vnode& vp) {
  auto* n = dynamic_cast<EtfsNode*>(&vp);
  return n ? n->blockdev() : nullptr;
}

namespace {
// The rump_pub_etfs_* functions of <rump/rumpvfs.h> (api/faction_c.cc) reach
// etfs through this.
const EtfsInterface kEtfsInterface{etfs_register, etfs_remove};
const EtfsInterfaceRegistrar etfs_interface_registrar(&kEtfsInterface);
}  // namespace

}  // namespace rump
