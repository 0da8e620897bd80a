// tmpfs: nodes, directories, sparse file data and the mount.
#include "fs/tmpfs/tmpfs.h"

#include <sys/mount.h>

#include <cstdlib>
#include <cstring>

#include "kern/kernel.h"

namespace rump {

namespace {

constexpr uint64_t kPage = kBlockSize;
constexpr uint64_t kDirentBogoSize = 20;  // Linux tmpfs: a directory's size grows by this per entry
constexpr uint64_t kTmpfsMagic = 0x01021994;
constexpr uint64_t kMaxFileSize = uint64_t{1} << 43;  // far beyond any memory limit

bool ts_le(const timespec& a, const timespec& b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec);
}

constexpr time_t kRelatimeMaxAge = 24 * 60 * 60;

}  // namespace

// --- nodes

TmpfsNode::TmpfsNode(TmpfsMount& mp, const NewNode& n, ino_t ino)
    : Vnode(mp, n.type),
      mode_(n.mode & 07777),
      uid_(n.uid),
      gid_(n.gid),
      ino_(ino),
      rdev_(n.rdev),
      by_name_(mp.kernel().kmem()) {
  atime_ = mtime_ = ctime_ = btime_ = wall_timespec();
  if (n.type == VType::kDir) nlink_ = 1;  // "."; the entry in the parent adds one
  mp.nodes_.fetch_add(1, std::memory_order_relaxed);
}

TmpfsNode::~TmpfsNode() {
  destroy_contents();
  Kmem::free(target_);
  tmount().nodes_.fetch_sub(1, std::memory_order_relaxed);
}

void TmpfsNode::destroy_contents() {
  // A directory still holding entries here was torn down with its mount
  // (teardown empties trees first); drop whatever is left.
  while (!by_cookie_.empty()) {
    Dirent* d = &*by_cookie_.begin();
    TmpfsNode* n = d->node;
    drop_entry(d);
    if (n->parent_ == this) n->parent_ = nullptr;
    n->unref();
  }
  free_pages_from(0);
}

TmpfsMount& TmpfsNode::tmount() const { return static_cast<TmpfsMount&>(mount()); }

TmpfsNode::Dirent* TmpfsNode::find(std::string_view name) { return by_name_.find(name); }

Result<TmpfsNode::Dirent*> TmpfsNode::alloc_dirent(std::string_view name) {
  void* mem = mount().kernel().kmem().alloc(offsetof(Dirent, name) + name.size() + 1);
  if (!mem) return err(ENOMEM);
  auto* d = new (mem) Dirent;
  std::memcpy(d->name, name.data(), name.size());
  d->name[name.size()] = '\0';
  d->len = name.size();
  d->cookie = 0;
  d->node = nullptr;
  return d;
}

void TmpfsNode::free_dirent(Dirent* d) {
  d->~Dirent();
  Kmem::free(d);
}

void TmpfsNode::link_entry(Dirent* d, TmpfsNode& n) {
  n.lock().assert_held();  // one tree, one lock
  d->cookie = next_cookie_++;
  d->node = &n;
  by_name_.insert(*d);
  by_cookie_.insert(*d);
  n.ref();
  n.nlink_++;
  if (n.is_dir()) nlink_++;  // the child's ".."
  n.parent_ = this;
}

Result<void> TmpfsNode::add_entry(std::string_view name, TmpfsNode& n) {
  if (find(name)) return err(EEXIST);
  link_entry(TRY(alloc_dirent(name)), n);
  return {};
}

void TmpfsNode::drop_entry(Dirent* d) {
  by_name_.erase(*d);
  by_cookie_.erase(by_cookie_.iterator_to(*d));
  free_dirent(d);
}

Result<Ref<Vnode>> TmpfsNode::lookup(std::string_view name) {
  if (!is_dir()) return err(ENOTDIR);
  if (name == ".") return Ref<Vnode>(*this);
  if (name == "..") return Ref<Vnode>(parent_ ? *static_cast<Vnode*>(parent_) : *this);
  Dirent* d = find(name);
  if (!d) return err(ENOENT);
  return Ref<Vnode>(*d->node);
}

Result<Ref<Vnode>> TmpfsNode::create(std::string_view name, const NewNode& n) {
  if (!is_dir()) return err(ENOTDIR);
  if (find(name)) return err(EEXIST);
  Kmem& km = mount().kernel().kmem();
  char* target = nullptr;
  if (n.type == VType::kLnk) {
    target = static_cast<char*>(km.alloc(n.symlink_target.size() + 1));
    if (!target) return err(ENOMEM);
    std::memcpy(target, n.symlink_target.data(), n.symlink_target.size());
    target[n.symlink_target.size()] = '\0';
  }
  Result<Dirent*> d = alloc_dirent(name);
  if (!d.ok()) {
    Kmem::free(target);
    return err(d.error());
  }
  auto* node = new (km) TmpfsNode(tmount(), n, tmount().next_ino());
  if (!node) {
    Kmem::free(target);
    free_dirent(d.value());
    return err(ENOMEM);
  }
  Ref<Vnode> ref = adopt_ref<Vnode>(node);
  node->target_ = target;
  node->target_len_ = n.symlink_target.size();
  link_entry(d.value(), *node);
  touch(2 | 4);
  return ref;
}

Result<Ref<Vnode>> TmpfsNode::create_unnamed(const NewNode& n) {
  if (!is_dir()) return err(ENOTDIR);
  auto* node = new (mount().kernel().kmem()) TmpfsNode(tmount(), n, tmount().next_ino());
  if (!node) return err(ENOMEM);
  return adopt_ref<Vnode>(node);
}

Result<void> TmpfsNode::link(std::string_view name, Vnode& target) {
  if (!is_dir()) return err(ENOTDIR);
  if (find(name)) return err(EEXIST);
  auto& t = static_cast<TmpfsNode&>(target);
  t.lock().assert_held();  // one tree, one lock
  TRY(add_entry(name, t));
  t.touch(4);
  touch(2 | 4);
  return {};
}

Result<void> TmpfsNode::remove(std::string_view name, Vnode& vp) {
  Dirent* d = find(name);
  if (!d || d->node != &vp) return err(ENOENT);
  TmpfsNode* n = d->node;
  n->lock().assert_held();
  drop_entry(d);
  n->nlink_--;
  if (n->parent_ == this) n->parent_ = nullptr;
  n->touch(4);
  touch(2 | 4);
  n->unref();
  return {};
}

Result<void> TmpfsNode::rmdir(std::string_view name, Vnode& vp) {
  Dirent* d = find(name);
  if (!d || d->node != &vp) return err(ENOENT);
  TmpfsNode* n = d->node;
  n->lock().assert_held();
  if (n->has_entries()) return err(ENOTEMPTY);
  drop_entry(d);
  n->nlink_ = 0;
  n->parent_ = nullptr;
  nlink_--;
  n->touch(4);
  touch(2 | 4);
  n->unref();
  return {};
}

Result<void> TmpfsNode::rename(std::string_view from_name, Vnode& vp, Vnode& to_dir_v,
                               std::string_view to_name, Vnode* target, bool exchange) {
  auto& to_dir = static_cast<TmpfsNode&>(to_dir_v);
  to_dir.lock().assert_held();  // a rename never spans two mounts
  Dirent* d = find(from_name);
  if (!d || d->node != &vp) return err(ENOENT);
  auto* node = static_cast<TmpfsNode*>(&vp);
  node->lock().assert_held();
  if (exchange) {
    Dirent* e = to_dir.find(to_name);
    if (!e || e->node != target) return err(ENOENT);
    auto* other = static_cast<TmpfsNode*>(target);
    other->lock().assert_held();
    d->node = other;
    e->node = node;
    if (this != &to_dir) {
      if (node->is_dir()) {
        nlink_--;
        to_dir.nlink_++;
      }
      if (other->is_dir()) {
        to_dir.nlink_--;
        nlink_++;
      }
      node->parent_ = &to_dir;
      other->parent_ = this;
    }
    node->touch(4);
    other->touch(4);
    touch(2 | 4);
    to_dir.touch(2 | 4);
    return {};
  }
  if (target) {
    Dirent* e = to_dir.find(to_name);
    if (!e || e->node != target) return err(ENOENT);
    target->lock().assert_held();
    if (target->is_dir() && target->has_entries()) return err(ENOTEMPTY);
  } else if (to_dir.find(to_name)) {
    return err(EEXIST);
  }
  // The new entry is made before anything changes: past this point the
  // rename cannot fail, so a full kernel leaves both names as they were.
  Dirent* nd = TRY(to_dir.alloc_dirent(to_name));
  if (target) {
    Result<void> r = target->is_dir() ? to_dir.rmdir(to_name, *target) : to_dir.remove(to_name, *target);
    if (!r.ok()) {
      free_dirent(nd);
      return r;
    }
  }
  // Take a reference across the move: the old entry's goes with it.
  node->ref();
  drop_entry(d);
  node->nlink_--;
  if (node->is_dir()) nlink_--;
  node->parent_ = nullptr;
  node->unref();
  to_dir.link_entry(nd, *node);
  node->unref();
  node->touch(4);
  touch(2 | 4);
  to_dir.touch(2 | 4);
  return {};
}

Result<void> TmpfsNode::readdir(int64_t off, ReaddirFn fn) {
  if (!is_dir()) return err(ENOTDIR);
  if (off <= 0) {
    if (!fn(DirEntry{ino_, 1, VType::kDir, "."})) return {};
    off = 1;
  }
  if (off == 1) {
    ino_t pino = parent_ ? parent_->ino_ : ino_;
    if (!fn(DirEntry{pino, 2, VType::kDir, ".."})) return {};
    off = 2;
  }
  for (auto it = by_cookie_.lower_bound(static_cast<uint64_t>(off)); it != by_cookie_.end(); ++it) {
    const Dirent& d = *it;
    if (!fn(DirEntry{d.node->ino_, static_cast<int64_t>(d.cookie + 1), d.node->type(), d.sv()})) break;
  }
  mark_accessed();
  return {};
}

TmpfsNode* TmpfsNode::find_ino(ino_t ino) {
  for (const Dirent& d : by_cookie_) {
    TmpfsNode* n = d.node;
    n->lock().assert_held();  // one tree, one lock
    if (n->ino_ == ino) return n;
    if (n->is_dir())
      if (TmpfsNode* f = n->find_ino(ino)) return f;
  }
  return nullptr;
}

std::string_view TmpfsNode::name_of(const Vnode& child) const {
  for (const Dirent& d : by_cookie_)
    if (d.node == &child) return d.sv();
  return {};
}

Result<size_t> TmpfsNode::readlink(char* buf, size_t len) {
  if (type() != VType::kLnk) return err(EINVAL);
  size_t n = target_len_ < len ? target_len_ : len;
  std::memcpy(buf, target_, n);
  mark_accessed();
  return n;
}

// --- data

TmpfsNode::Page* TmpfsNode::find_page(uint64_t idx) {
  auto it = pages_.find(idx);
  return it == pages_.end() ? nullptr : &*it;
}

void TmpfsNode::free_page(Page* p) {
  pages_.erase(pages_.iterator_to(*p));
  p->~Page();
  Kmem::free(p);
  tmount().uncharge_page();
}

void TmpfsNode::free_pages_from(uint64_t first_idx) {
  auto it = pages_.lower_bound(first_idx);
  while (it != pages_.end()) {
    Page* p = &*it;
    ++it;
    free_page(p);
  }
}

Result<char*> TmpfsNode::page_for_write(uint64_t idx) {
  if (Page* p = find_page(idx)) return p->data;
  if (!tmount().charge_page()) return err(ENOSPC);
  void* mem = mount().kernel().kmem().alloc(sizeof(Page));
  if (!mem) {
    tmount().uncharge_page();
    return err(ENOSPC);  // out of kernel memory: a full tmpfs to the caller
  }
  auto* p = new (mem) Page;
  p->idx = idx;
  std::memset(p->data, 0, kPage);
  pages_.insert(*p);
  return p->data;
}

// Zeroes [from, to) in the allocated pages (for truncation and holes).
void TmpfsNode::zero_range(uint64_t from, uint64_t to) {
  while (from < to) {
    uint64_t idx = from / kPage, in = from % kPage;
    uint64_t n = kPage - in;
    if (n > to - from) n = to - from;
    if (Page* p = find_page(idx)) {
      if (in == 0 && n == kPage) free_page(p);
      else std::memset(p->data + in, 0, n);
    }
    from += n;
  }
}

Result<size_t> TmpfsNode::read(void* buf, size_t len, uint64_t off) {
  if (is_dir()) return err(EISDIR);
  if (type() != VType::kReg) return err(EINVAL);
  // A read at or past the end is an access too (len > 0: the VFS does
  // not call in for empty reads).
  mark_accessed();
  if (off >= size_) return size_t{0};
  if (len > size_ - off) len = size_ - off;
  char* out = static_cast<char*>(buf);
  size_t done = 0;
  while (done < len) {
    uint64_t pos = off + done;
    uint64_t idx = pos / kPage, in = pos % kPage;
    size_t n = kPage - in;
    if (n > len - done) n = len - done;
    if (const Page* p = find_page(idx)) std::memcpy(out + done, p->data + in, n);
    else std::memset(out + done, 0, n);
    done += n;
  }
  return done;
}

Result<size_t> TmpfsNode::write(const void* buf, size_t len, uint64_t off) {
  if (type() != VType::kReg) return err(EINVAL);
  if (off >= kMaxFileSize) return err(EFBIG);
  if (len > kMaxFileSize - off) len = kMaxFileSize - off;
  const char* in_buf = static_cast<const char*>(buf);
  size_t done = 0;
  while (done < len) {
    uint64_t pos = off + done;
    uint64_t idx = pos / kPage, in = pos % kPage;
    size_t n = kPage - in;
    if (n > len - done) n = len - done;
    Result<char*> p = page_for_write(idx);
    if (!p.ok()) {
      if (done == 0) return err(p.error());
      break;
    }
    std::memcpy(p.value() + in, in_buf + done, n);
    done += n;
  }
  if (off + done > size_) size_ = off + done;
  if (done > 0) touch(2 | 4);
  return done;
}

Result<void> TmpfsNode::truncate(uint64_t size) {
  if (is_dir()) return err(EISDIR);
  if (type() != VType::kReg) return err(EINVAL);
  if (size > kMaxFileSize) return err(EFBIG);
  if (size < size_) {
    free_pages_from((size + kPage - 1) / kPage);
    if (size % kPage) zero_range(size, (size / kPage + 1) * kPage);
  }
  size_ = size;
  touch(2 | 4);
  return {};
}

Result<void> TmpfsNode::fallocate(int mode, uint64_t off, uint64_t len) {
  if (type() != VType::kReg) return err(ENODEV);
  if (off + len > kMaxFileSize || off + len < off) return err(EFBIG);
  if (mode & kFallocPunchHole) {
    uint64_t end = off + len;
    if (end > size_) end = size_;
    if (off < end) zero_range(off, end);
    touch(2 | 4);
    return {};
  }
  for (uint64_t idx = off / kPage; idx * kPage < off + len; idx++) {
    Result<char*> p = page_for_write(idx);
    if (!p.ok()) return err(p.error());
  }
  if (!(mode & kFallocKeepSize) && off + len > size_) {
    size_ = off + len;
    touch(2 | 4);
  }
  return {};
}

Result<uint64_t> TmpfsNode::seek_data(uint64_t off, bool hole) {
  if (off >= size_) return err(ENXIO);
  uint64_t idx = off / kPage;
  if (!hole) {
    auto it = pages_.lower_bound(idx);
    if (it == pages_.end()) return err(ENXIO);
    uint64_t pos = it->idx == idx ? off : it->idx * kPage;
    if (pos >= size_) return err(ENXIO);
    return pos;
  }
  auto it = pages_.find(idx);
  if (it == pages_.end()) return off;
  while (it != pages_.end() && it->idx == idx) {
    ++it;
    idx++;
  }
  uint64_t pos = idx * kPage;
  return pos < size_ ? pos : size_;
}

// --- attributes

void TmpfsNode::getattr(Vattr& va) const {
  va.type = type();
  va.mode = mode_;
  va.uid = uid_;
  va.gid = gid_;
  va.nlink = nlink_;
  va.ino = ino_;
  va.dev = mount().dev_;
  va.rdev = rdev_;
  switch (type()) {
    case VType::kReg: va.size = size_; break;
    case VType::kLnk: va.size = target_len_; break;
    case VType::kDir: va.size = (2 + by_cookie_.size()) * kDirentBogoSize; break;
    default: va.size = 0;
  }
  va.blocks = pages_.size() * (kPage / 512);
  va.atime = atime_;
  va.mtime = mtime_;
  va.ctime = ctime_;
  va.btime = btime_;
}

Result<void> TmpfsNode::setattr(const SetAttr& sa) {
  if (sa.mask & SetAttr::kSize) TRY(truncate(sa.size));
  if (sa.mask & SetAttr::kMode) mode_ = sa.mode & 07777;
  if (sa.mask & SetAttr::kUid) uid_ = sa.uid;
  if (sa.mask & SetAttr::kGid) gid_ = sa.gid;
  if (sa.mask & SetAttr::kAtime) atime_ = sa.atime;
  if (sa.mask & SetAttr::kMtime) mtime_ = sa.mtime;
  ctime_ = (sa.mask & SetAttr::kCtime) ? sa.ctime : wall_timespec();
  return {};
}

// relatime, Linux's default: an access updates atime only when it is not
// newer than mtime or ctime, or is a day old.
void TmpfsNode::mark_accessed() {
  timespec now = wall_timespec();
  if (ts_le(atime_, mtime_) || ts_le(atime_, ctime_) || now.tv_sec - atime_.tv_sec >= kRelatimeMaxAge) atime_ = now;
}

void TmpfsNode::touch(int which) {
  timespec now = wall_timespec();
  if (which & 1) atime_ = now;
  if (which & 2) mtime_ = now;
  if (which & 4) ctime_ = now;
}

// --- the mount

TmpfsMount::TmpfsMount(Kernel& k, FsType& t, int flags, uint64_t max_pages)
    : Mount(k, t, flags), max_pages_(max_pages) {}

TmpfsMount::~TmpfsMount() = default;

bool TmpfsMount::charge_page() {
  uint64_t n = pages_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (max_pages_ != 0 && n > max_pages_) {
    pages_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void TmpfsMount::uncharge_page() { pages_.fetch_sub(1, std::memory_order_relaxed); }

Result<Ref<Vnode>> TmpfsMount::vget(uint64_t ino, uint32_t gen) {
  if (gen != 0 || !root_) return err(ESTALE);
  auto& root = static_cast<TmpfsNode&>(*root_);
  root.lock().assert_held();  // the mount's lock
  if (root.ino_ == ino) return Ref<Vnode>(root);
  TmpfsNode* n = root.find_ino(static_cast<ino_t>(ino));
  if (!n) return err(ESTALE);
  return Ref<Vnode>(*static_cast<Vnode*>(n));
}

Mount::Stat TmpfsMount::statfs() {
  Stat s{};
  uint64_t total = max_pages_;
  if (total == 0) {
    size_t lim = kernel().kmem().limit();
    total = lim ? lim / kPage : (uint64_t{1} << 30) / kPage * 4;  // unlimited: report 4 GiB
  }
  uint64_t used = pages_.load(std::memory_order_relaxed);
  s.blocks = total;
  s.bfree = used < total ? total - used : 0;
  s.files = uint64_t{1} << 20;
  uint64_t nodes = nodes_.load(std::memory_order_relaxed);
  s.ffree = nodes < s.files ? s.files - nodes : 0;
  s.magic = kTmpfsMagic;
  return s;
}

namespace {

// Empties a directory tree bottom-up (unmount): drops every entry's
// reference; nodes still open elsewhere live on, unlinked.
void clear_tree(TmpfsNode& dir) ABSL_EXCLUSIVE_LOCKS_REQUIRED(dir.lock()) {
  Ref<Vnode> keep(dir);
  for (;;) {
    std::string_view name;
    RefPtr<Vnode> child;
    bool found = false;
    Result<void> r = dir.readdir(2, [&](const DirEntry& e) {
      name = e.name;
      found = true;
      return false;
    });
    (void)r;
    if (!found) break;
    Result<Ref<Vnode>> c = dir.lookup(name);
    if (!c.ok()) break;
    Ref<Vnode> cv = std::move(c).value();
    cv->lock().assert_held();
    if (cv->is_dir()) {
      clear_tree(static_cast<TmpfsNode&>(*cv));
      (void)dir.rmdir(name, *cv);
    } else {
      (void)dir.remove(name, *cv);
    }
  }
}

}  // namespace

void TmpfsMount::teardown() {
  if (root_) {
    root_->lock().assert_held();
    clear_tree(static_cast<TmpfsNode&>(*root_));
  }
  root_.reset();
}

namespace {

// size=N with an optional k/m/g suffix (or N%: a share of the memory limit).
Result<uint64_t> parse_size(Kernel& k, const char* s, size_t len) {
  if (len == 0) return err(EINVAL);
  uint64_t v = 0;
  size_t i = 0;
  for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
    if (v > (~uint64_t{0} - 9) / 10) return err(EINVAL);
    v = v * 10 + (s[i] - '0');
  }
  if (i == 0) return err(EINVAL);
  if (i < len) {
    if (i + 1 != len) return err(EINVAL);
    switch (s[i]) {
      case 'k': case 'K': v <<= 10; break;
      case 'm': case 'M': v <<= 20; break;
      case 'g': case 'G': v <<= 30; break;
      case '%': {
        size_t lim = k.kmem().limit();
        v = lim ? lim / 100 * v : (uint64_t{4} << 30) / 100 * v;
        break;
      }
      default: return err(EINVAL);
    }
  }
  return v;
}

}  // namespace

extern FsType g_tmpfs_type;

Result<Ref<Mount>> tmpfs_mount(Kernel& k, const char* source, int flags, const char* data) {
  uint64_t max_pages = 0;
  mode_t root_mode = 01777;
  uid_t uid = 0;
  gid_t gid = 0;
  if (data) {
    const char* p = data;
    while (*p) {
      const char* end = std::strchr(p, ',');
      size_t len = end ? static_cast<size_t>(end - p) : std::strlen(p);
      std::string_view opt(p, len);
      auto val = [&](std::string_view key) -> const char* {
        if (opt.size() > key.size() && opt.substr(0, key.size()) == key && opt[key.size()] == '=')
          return p + key.size() + 1;
        return nullptr;
      };
      if (const char* v = val("size")) {
        uint64_t bytes = TRY(parse_size(k, v, len - 5));
        max_pages = (bytes + kPage - 1) / kPage;
        if (max_pages == 0) max_pages = 0;  // size=0: unlimited, as Linux
      } else if (const char* v = val("mode")) {
        root_mode = static_cast<mode_t>(std::strtoul(v, nullptr, 8)) & 07777;
      } else if (const char* v = val("uid")) {
        uid = static_cast<uid_t>(std::strtoul(v, nullptr, 10));
      } else if (const char* v = val("gid")) {
        gid = static_cast<gid_t>(std::strtoul(v, nullptr, 10));
      } else if (val("nr_inodes") || val("nr_blocks") || opt.empty()) {
        // accepted, not enforced
      } else {
        return err(EINVAL);
      }
      p += len;
      if (*p == ',') p++;
    }
  }
  auto* m = new (k.kmem()) TmpfsMount(k, g_tmpfs_type, flags, max_pages);
  if (!m) return err(ENOMEM);
  Ref<Mount> ref = adopt_ref<Mount>(m);
  NewNode n;
  n.type = VType::kDir;
  n.mode = root_mode;
  n.uid = uid;
  n.gid = gid;
  auto* root = new (k.kmem()) TmpfsNode(*m, n, m->next_ino());
  if (!root) return err(ENOMEM);
  MutexLocker g(m->lock_);
  root->lock().assert_held();
  root->init_root();
  m->root_ = RefPtr<Vnode>(kAdopt, root);
  return ref;
}

FsType g_tmpfs_type{"tmpfs", &tmpfs_mount};
namespace {
FsTypeRegistrar tmpfs_registrar(&g_tmpfs_type);
}

}  // namespace rump
