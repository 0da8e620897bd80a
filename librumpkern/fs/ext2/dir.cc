// ext2/3/4 directories: linear and hash-tree indexed (read as linear:
// the index's interior blocks hold no live entries), inline directories,
// entry checks and checksums, lookup and readdir.
//
// Positions (readdir cookies) are byte offsets in a linear directory of
// several blocks. Indexed, one-block and inline directories (with the
// dir_index feature) are read in hash order, as Linux reads them: "." is
// 0, ".." 1, an entry 2 + its hash / 2, the end INT64_MAX. A leaf split
// or a move to blocks between two getdents calls then neither loses nor
// repeats an entry (except within one run of equal hashes).
#include <algorithm>
#include <cstring>

#include "fs/ext2/crc.h"
#include "fs/ext2/ext2.h"
#include "kern/kernel.h"
#include "vfs/kvec.h"

namespace rump {

using namespace ext2;

namespace {

VType ft_to_vtype(uint8_t ft) {
  switch (ft & 7) {
    case kFtReg: return VType::kReg;
    case kFtDir: return VType::kDir;
    case kFtChr: return VType::kChr;
    case kFtBlk: return VType::kBlk;
    case kFtFifo: return VType::kFifo;
    case kFtSock: return VType::kSock;
    case kFtLnk: return VType::kLnk;
    default: return VType::kNon;
  }
}

struct Entry {
  uint32_t ino;
  uint8_t ft;
  std::string_view name;
};

}  // namespace

uint32_t Ext2Node::rec_len(const char* blk, size_t pos) const {
  uint32_t len = get16(blk, pos + 4);
  if (em().geo().block_size < 65536) return len;
  // 64 KiB blocks: the two low bits carry bits 16 and 17; 65535 (or 0)
  // is a whole block.
  if (len == 65535 || len == 0) return 65536;
  return (len & 65532) | ((len & 3) << 16);
}

const char* Ext2Node::dirent_fault(const char* blk, size_t pos, size_t end) const {
  if (pos + kDirentHeader > end) return "directory entry past the block";
  uint32_t rec = rec_len(blk, pos);
  uint8_t nl = static_cast<uint8_t>(blk[pos + 6]);
  if (rec < dirent_len(1) || (rec & 3) || rec < dirent_len(nl) || pos + rec > end) return "bad directory entry";
  if (get32(blk, pos) > em().geo().inodes_count) return "directory entry inode out of range";
  return nullptr;
}

Result<void> Ext2Node::check_dirent(const char* blk, size_t pos, size_t end, uint64_t lblk) const {
  const char* why = dirent_fault(blk, pos, end);
  if (why == nullptr) return {};
  // An entry past the block is the directory's fault; the others the block's.
  return em().corrupt(why, pos + kDirentHeader > end ? ino_ : lblk);
}

template <class Fn>
Result<void> Ext2Node::for_each_entry(int64_t off, Fn fn) const {
  Ext2Mount& m = em();
  if (off < 0) off = 0;
  auto rec_of = [&](const char* blk, size_t pos) { return rec_len(blk, pos); };
  if (flags() & kFlInlineData) {
    uint32_t parent = get32(raw_, ino::kBlock);
    if (off <= 0 && !fn(Entry{ino_, kFtDir, "."}, 0, 1)) return {};
    if (off <= 1 && !fn(Entry{parent, kFtDir, ".."}, 1, 4)) return {};
    std::string_view more = TRY(inline_xattr());
    struct Area {
      const char* p;
      size_t len;
      size_t base;
    } areas[2] = {{raw_ + ino::kBlock + 4, ino::kBlockBytes - 4, 4}, {more.data(), more.size(), ino::kBlockBytes}};
    for (const Area& a : areas) {
      for (size_t pos = 0; pos < a.len;) {
        TRY(check_dirent(a.p, pos, a.len, ino_));
        uint32_t rec = rec_of(a.p, pos);
        uint32_t ino = get32(a.p, pos);
        size_t here = a.base + pos;
        if (ino && static_cast<int64_t>(here) >= off) {
          Entry e{ino, static_cast<uint8_t>(a.p[pos + 7]), {a.p + pos + 8, static_cast<uint8_t>(a.p[pos + 6])}};
          if (!fn(e, here, here + rec)) return {};
        }
        pos += rec;
      }
    }
    return {};
  }
  uint32_t bs = m.geo().block_size;
  uint64_t sz = size();
  bool indexed = flags() & kFlIndex;
  for (uint64_t lblk = static_cast<uint64_t>(off) / bs; lblk * bs < sz; lblk++) {
    Mapping map = TRY(bmap(lblk));
    if (map.pblk == 0) return m.corrupt("hole in a directory", ino_);
    BufRef bh = TRY(m.bread(map.pblk));
    const char* blk = bh.data();
    size_t end = bs;
    // An index node of a hash tree: one empty entry over the whole block
    // (the index itself lives inside it).
    if (get32(blk, 0) == 0 && rec_of(blk, 0) == bs) continue;
    // The checksum is verified once, when the block first comes in from
    // the device (the buffer remembers; changes here re-seal it).
    if (m.has_csum() && !(indexed && lblk == 0) && !bh.get()->checked()) {
      const char* t = blk + bs - kDirTailSize;
      if (get32(t, 0) == 0 && get16(t, 4) == kDirTailSize && t[6] == 0 && static_cast<uint8_t>(t[7]) == kDirTailType) {
        if (crc32c(csum_seed(), blk, bs - kDirTailSize) != get32(t, 8))
          return m.corrupt("directory block checksum invalid", lblk);
      }
      bh.get()->set_checked();
    }
    for (size_t pos = 0; pos < end;) {
      TRY(check_dirent(blk, pos, end, lblk));
      uint32_t rec = rec_of(blk, pos);
      uint32_t ino = get32(blk, pos);
      uint64_t here = lblk * bs + pos;
      if (ino && here >= static_cast<uint64_t>(off)) {
        Entry e{ino, static_cast<uint8_t>(blk[pos + 7]), {blk + pos + 8, static_cast<uint8_t>(blk[pos + 6])}};
        // The root of a hash tree: only "." and ".." are entries.
        if (!fn(e, here, here + rec)) return {};
      }
      if (indexed && lblk == 0 && pos > 0) break;
      pos += rec;
    }
  }
  return {};
}

// --- the name caches (Ext2Node::NameCache, Ext2Mount::NameCaches)

struct Ext2Node::NameCache : public KObject {
  struct Name {
    boost::intrusive::unordered_set_member_hook<> hook;
    uint32_t ino;
    uint8_t len;
    char text[1];  // len bytes, allocated with the entry (as tmpfs's names)
    std::string_view view() const { return {text, len}; }
    static void dispose(Name* n) {
      n->~Name();
      Kmem::free(n);
    }
  };
  struct KeyOf {
    using type = std::string_view;
    std::string_view operator()(const Name& n) const { return n.view(); }
  };
  struct DirOf {
    using type = uint32_t;
    uint32_t operator()(const NameCache& c) const { return c.dir; }
  };
  NameCache(Kmem& k, uint32_t d) : kmem(k), dir(d), table(k) {}
  ~NameCache() { table.clear_and_dispose(&Name::dispose); }
  // False when memory ran out (the cache is then incomplete).
  bool put(std::string_view name, uint32_t ino) {
    if (Name* n = table.find(name)) {
      n->ino = ino;
      return true;
    }
    void* mem = kmem.alloc(offsetof(Name, text) + name.size());
    if (mem == nullptr) return false;
    Name* n = new (mem) Name;
    n->ino = ino;
    n->len = static_cast<uint8_t>(name.size());
    std::memcpy(n->text, name.data(), name.size());
    table.insert(*n);
    return true;
  }
  void erase(std::string_view name) {
    if (Name* n = table.find(name)) {
      table.erase(*n);
      Name::dispose(n);
    }
  }
  Kmem& kmem;
  const uint32_t dir;  // the directory's inode number
  IntrusiveHash<Name, &Name::hook, KeyOf> table;
  Tail tail;
  boost::intrusive::unordered_set_member_hook<> set_hook;  // Ext2Mount::NameCaches
  boost::intrusive::list_member_hook<> lru_hook;
};

struct Ext2Mount::NameCaches : public KObject {
  using Cache = Ext2Node::NameCache;
  using Lru = boost::intrusive::list<
      Cache, boost::intrusive::member_hook<Cache, boost::intrusive::list_member_hook<>, &Cache::lru_hook>,
      boost::intrusive::constant_time_size<true>>;
  explicit NameCaches(Kmem& k) : set(k) {}
  ~NameCaches() {
    set.clear();
    lru.clear_and_dispose([](Cache* c) { delete c; });
  }
  IntrusiveHash<Cache, &Cache::set_hook, Cache::DirOf> set;
  Lru lru;  // least recently used first
};

Ext2Node::NameCache* Ext2Mount::names_find(uint32_t dir) {
  if (name_caches_ == nullptr) return nullptr;
  NameCaches& cs = *name_caches_;
  Ext2Node::NameCache* c = cs.set.find(dir);
  if (c != nullptr) {
    cs.lru.erase(cs.lru.iterator_to(*c));
    cs.lru.push_back(*c);
  }
  return c;
}

Ext2Node::NameCache* Ext2Mount::names_adopt(Ext2Node::NameCache* c) {
  if (name_caches_ == nullptr) {
    name_caches_ = new (kernel().kmem()) NameCaches(kernel().kmem());
    if (name_caches_ == nullptr) {
      delete c;
      return nullptr;
    }
  }
  NameCaches& cs = *name_caches_;
  if (cs.lru.size() >= kMaxNameCaches) names_drop(cs.lru.front().dir);
  cs.set.insert(*c);
  cs.lru.push_back(*c);
  return c;
}

void Ext2Mount::names_drop(uint32_t dir) {
  if (name_caches_ == nullptr) return;
  NameCaches& cs = *name_caches_;
  Ext2Node::NameCache* c = cs.set.find(dir);
  if (c == nullptr) return;
  cs.set.erase(*c);
  cs.lru.erase(cs.lru.iterator_to(*c));
  delete c;
}

void Ext2Mount::names_drop_all() {
  delete name_caches_;
  name_caches_ = nullptr;
}

void Ext2Node::drop_names() const { em().names_drop(ino_); }

Ext2Node::Tail* Ext2Node::tail() const {
  NameCache* c = em().names_find(ino_);
  return c ? &c->tail : nullptr;
}

Result<Ext2Node::NameCache*> Ext2Node::names() const {
  Ext2Mount& m = em();
  if (NameCache* c = m.names_find(ino_)) return c;
  if ((flags() & kFlInlineData) || size() > kNameCacheMax) return nullptr;
  Kmem& k = m.kernel().kmem();
  auto* c = new (k) NameCache(k, ino_);
  if (c == nullptr) return nullptr;
  bool ok = true;
  Result<void> r = for_each_entry(0, [&](const Entry& e, uint64_t, uint64_t) {
    if (e.name == "." || e.name == "..") return true;
    ok = c->put(e.name, e.ino);
    return ok;
  });
  if (!r.ok() || !ok) {
    delete c;
    if (!r.ok()) return err(r.error());
    return nullptr;
  }
  return m.names_adopt(c);
}

void Ext2Node::names_put(std::string_view name, uint32_t ino) const {
  NameCache* c = em().names_find(ino_);
  if (c == nullptr) return;
  // A directory grown past the bound goes back to its blocks (and its
  // index): a cache's memory stays bounded by kNameCacheMax.
  if (size() > kNameCacheMax || !c->put(name, ino)) drop_names();
}

void Ext2Node::names_erase(std::string_view name) const {
  if (NameCache* c = em().names_find(ino_)) c->erase(name);
}

Result<uint32_t> Ext2Node::find_entry(std::string_view name) const {
  if (name != "." && name != "..") {
    if (const NameCache* c = TRY(names())) {
      const NameCache::Name* n = c->table.find(name);
      if (n == nullptr) return err(ENOENT);
      return n->ino;
    }
  }
  uint32_t found = 0;
  if ((flags() & kFlIndex) && !(flags() & kFlInlineData) && name != "." && name != "..") {
    // Through the index; an index that cannot be used falls back to the
    // linear search below (as Linux does), its error logged.
    Result<uint64_t> leaf = const_cast<Ext2Node*>(this)->dx_find(name, &found);
    if (leaf.ok()) {
      if (*leaf == kNoLeaf) return err(ENOENT);
      return found;
    }
    found = 0;
  }
  TRY(for_each_entry(0, [&](const Entry& e, uint64_t, uint64_t) {
    if (e.name == name) {
      found = e.ino;
      return false;
    }
    return true;
  }));
  if (!found) return err(ENOENT);
  return found;
}

Result<Ref<Vnode>> Ext2Node::lookup(std::string_view name) {
  if (!is_dir()) return err(ENOTDIR);
  if (name == ".") return Ref<Vnode>(*this);
  Ext2Mount& m = em();
  m.lock_.assert_held();
  if (name == "..") {
    if (parent_) return parent_.to_ref();
    if (ino_ == kRootIno) return Ref<Vnode>(*this);
    uint32_t pino = TRY(find_entry(".."));
    return m.iget(pino, nullptr);
  }
  if (name.size() > kNameMax) return err(ENAMETOOLONG);
  uint32_t ino = TRY(find_entry(name));
  // A name for the directory itself (as Linux: corrupt).
  if (ino == ino_) return m.corrupt("entry linked to its own directory", ino_);
  Ref<Vnode> v = TRY(m.iget(ino, this));
  if (v->type() == VType::kDir) m.keep_dir(static_cast<Ext2Node&>(*v));
  return v;
}

namespace {

constexpr int64_t kHashEof = INT64_MAX;
int64_t hash_pos(uint32_t hash) { return static_cast<int64_t>(hash >> 1) + 2; }

struct HashedEntry {
  uint32_t hash;
  uint32_t ino;
  uint32_t name_at;
  uint8_t len;
  uint8_t ft;
};

}  // namespace

bool Ext2Node::readdir_by_hash() const {
  if (!(em().geo().compat & kCompatDirIndex)) return false;
  return (flags() & (kFlIndex | kFlInlineData)) || size() == em().geo().block_size;
}

Result<void> Ext2Node::readdir_hashed(int64_t off, ReaddirFn fn) {
  Ext2Mount& m = em();
  if (off < 0 || off >= kHashEof || off - 2 > 0x7fffffff) return {};
  bool filetype = m.geo().incompat & kIncompatFiletype;
  if (off < 2) {
    uint32_t dotdot = TRY(find_entry(".."));
    if (off == 0 && !fn(DirEntry{ino_, 1, VType::kDir, "."})) return {};
    if (!fn(DirEntry{dotdot, 2, VType::kDir, ".."})) return {};
    off = 2;
  }
  uint32_t from = static_cast<uint32_t>(off - 2) << 1;
  KVec<HashedEntry> ents(m.kernel().kmem());
  KVec<char> names(m.kernel().kmem());
  // The entries of [begin, end) with a hash at or above from, in hash
  // order (equal hashes by name), each given to fn with the position of
  // the one after it (after: the position after the last).
  auto emit = [&](uint64_t begin, uint64_t end, uint8_t version, int64_t after) -> Result<bool> {
    ents.clear();
    names.clear();
    Result<void> inner;
    TRY(for_each_entry(static_cast<int64_t>(begin), [&](const Entry& e, uint64_t here, uint64_t) {
      if (here >= end) return false;
      if (e.name == "." || e.name == "..") return true;
      Result<uint32_t> h = dx_hash(e.name, version);
      if (!h.ok()) {
        inner = err(h.error());
        return false;
      }
      if (*h < from) return true;
      Result<void> room = ents.reserve_more(1);
      if (room.ok()) room = names.reserve_more(e.name.size());
      if (!room.ok()) {
        inner = room;
        return false;
      }
      ents.push_back(HashedEntry{*h, e.ino, static_cast<uint32_t>(names.size()), static_cast<uint8_t>(e.name.size()),
                                 e.ft});
      for (char c : e.name) names.push_back(c);
      return true;
    }));
    TRY(inner);
    auto name = [&](const HashedEntry& x) { return std::string_view(names.begin() + x.name_at, x.len); };
    std::sort(ents.begin(), ents.end(), [&](const HashedEntry& a, const HashedEntry& b) {
      return a.hash != b.hash ? a.hash < b.hash : name(a) < name(b);
    });
    for (size_t i = 0; i < ents.size(); i++) {
      int64_t next = i + 1 < ents.size() ? hash_pos(ents[i + 1].hash) : after;
      VType t = filetype ? ft_to_vtype(ents[i].ft) : VType::kNon;
      if (!fn(DirEntry{ents[i].ino, next, t, name(ents[i])})) return false;
    }
    return true;
  };
  if (!(flags() & kFlIndex) || (flags() & kFlInlineData)) {
    TRY(emit(0, UINT64_MAX, m.geo().def_hash_version, kHashEof));
    return {};
  }
  uint32_t bs = m.geo().block_size;
  DxFrame path[3];
  uint32_t version;
  int levels = TRY(dx_probe(from, path, version));
  for (uint64_t leaves = 0;; leaves++) {
    uint64_t lblk = path[levels].block();
    uint32_t start = 0;
    bool more = TRY(dx_step_leaf(path, levels, &start));
    if (!TRY(emit(lblk * bs, (lblk + 1) * bs, static_cast<uint8_t>(version), more ? hash_pos(start & ~1u) : kHashEof)))
      return {};
    if (!more) return {};
    if (leaves > size() / bs) return m.corrupt("hash tree loops", ino_);
    from = start & ~1u;
  }
}

Result<void> Ext2Node::readdir(int64_t off, ReaddirFn fn) {
  if (!is_dir()) return err(ENOTDIR);
  if (readdir_by_hash()) {
    bool any = false;
    Result<void> r = readdir_hashed(off, [&](const DirEntry& e) {
      any = true;
      return fn(e);
    });
    // A broken index (or hash) before any entry: read linearly, as Linux
    // does.
    if (r.ok() || r.error() != EUCLEAN || any) return r;
  }
  bool filetype = em().geo().incompat & kIncompatFiletype;
  Result<void> r = for_each_entry(off, [&](const Entry& e, uint64_t, uint64_t next) {
    VType t = filetype ? ft_to_vtype(e.ft) : VType::kNon;
    return fn(DirEntry{e.ino, static_cast<int64_t>(next), t, e.name});
  });
  return r;
}

bool Ext2Node::has_entries() const {
  bool any = false;
  Result<void> r = for_each_entry(0, [&](const Entry& e, uint64_t, uint64_t) {
    if (e.name == "." || e.name == "..") return true;
    any = true;
    return false;
  });
  return any || !r.ok();
}

Vnode* Ext2Node::parent_dir() const { return parent_.get(); }

// The name is copied into the mount's scratch slot: the block it sits in
// may go once the buffer is released. Valid until the next name_of on
// this mount; the caller (getcwd) copies it under the tree lock.
std::string_view Ext2Node::name_of(const Vnode& child) const {
  std::string_view out;
  Ext2Mount& m = em();
  uint32_t want = static_cast<const Ext2Node&>(child).ino_;
  (void)for_each_entry(0, [&](const Entry& e, uint64_t, uint64_t) {
    if (e.ino == want && e.name != "." && e.name != "..") {
      std::memcpy(m.name_scratch_, e.name.data(), e.name.size());
      out = std::string_view(m.name_scratch_, e.name.size());
      return false;
    }
    return true;
  });
  return out;
}

}  // namespace rump

// --- changing directories

namespace rump {

using namespace ext2;

namespace {

uint8_t vtype_to_ft(VType t) {
  switch (t) {
    case VType::kReg: return kFtReg;
    case VType::kDir: return kFtDir;
    case VType::kChr: return kFtChr;
    case VType::kBlk: return kFtBlk;
    case VType::kFifo: return kFtFifo;
    case VType::kSock: return kFtSock;
    case VType::kLnk: return kFtLnk;
    default: return kFtUnknown;
  }
}

}  // namespace

uint32_t Ext2Node::usable_end() const {
  uint32_t bs = em().geo().block_size;
  return em().has_csum() ? bs - static_cast<uint32_t>(kDirTailSize) : bs;
}

void Ext2Node::put_rec_len(char* blk, size_t pos, uint32_t len) const {
  if (em().geo().block_size < 65536) {
    put16(blk, pos + 4, static_cast<uint16_t>(len));
  } else if (len == 65536) {
    put16(blk, pos + 4, 65535);
  } else {
    put16(blk, pos + 4, static_cast<uint16_t>((len & 65532) | ((len >> 16) & 3)));
  }
}

void Ext2Node::set_leaf_csum(char* blk) const {
  Ext2Mount& m = em();
  if (!m.has_csum()) return;
  uint32_t bs = m.geo().block_size;
  char* t = blk + bs - kDirTailSize;
  put32(t, 0, 0);
  put16(t, 4, kDirTailSize);
  t[6] = 0;
  t[7] = static_cast<char>(kDirTailType);
  put32(t, 8, crc32c(csum_seed(), blk, bs - kDirTailSize));
}

Result<void> Ext2Node::init_dir_block(char* blk, uint32_t parent) {
  std::memset(blk, 0, em().geo().block_size);
  bool ft = em().geo().incompat & kIncompatFiletype;
  put32(blk, 0, ino_);
  put_rec_len(blk, 0, 12);
  blk[6] = 1;
  blk[7] = ft ? static_cast<char>(kFtDir) : 0;
  blk[8] = '.';
  put32(blk, 12, parent);
  put_rec_len(blk, 12, usable_end() - 12);
  blk[18] = 2;
  blk[19] = ft ? static_cast<char>(kFtDir) : 0;
  blk[20] = '.';
  blk[21] = '.';
  set_leaf_csum(blk);
  return {};
}

// A hashed directory becomes linear: the index root keeps "." and "..",
// whose entry then spans the block, and interior index blocks become
// empty leaves (with checksum tails under metadata_csum).
Result<void> Ext2Node::deindex() {
  forget_tail();
  Ext2Mount& m = em();
  uint32_t bs = m.geo().block_size;
  for (uint64_t lblk = 0; lblk * bs < size(); lblk++) {
    Mapping map = TRY(bmap(lblk));
    if (!map.pblk) return m.corrupt("hole in a directory", ino_);
    BufRef bh = TRY(m.bread(map.pblk));
    char* blk = bh.data();
    if (lblk == 0) {
      TRY(check_dirent(blk, 0, bs, 0));
      if (rec_len(blk, 0) != 12) return m.corrupt("bad hash tree root", ino_);
      put_rec_len(blk, 12, usable_end() - 12);
    } else if (get32(blk, 0) == 0 && rec_len(blk, 0) == bs) {
      put_rec_len(blk, 0, usable_end());
    } else {
      continue;
    }
    set_leaf_csum(blk);
    TRY(m.dirty_meta(bh));
  }
  put32(raw_, ino::kFlags, flags() & ~kFlIndex);
  return write_inode();
}

Result<void> Ext2Node::add_entry(std::string_view name, uint32_t ino, VType t) {
  Result<void> r = add_entry_on_disk(name, ino, t);
  if (r.ok()) names_put(name, ino);
  else drop_names();
  return r;
}

Result<void> Ext2Node::remove_entry(std::string_view name, uint32_t ino, EntryBlock* at) {
  Result<void> r = remove_entry_on_disk(name, ino, at);
  if (r.ok()) names_erase(name);
  else drop_names();
  return r;
}

Result<void> Ext2Node::retarget_entry(std::string_view name, uint32_t ino, VType t, EntryBlock* at) {
  Result<void> r = retarget_entry_on_disk(name, ino, t, at);
  if (r.ok() && name != "." && name != "..") names_put(name, ino);
  else if (!r.ok()) drop_names();
  return r;
}

Result<void> Ext2Node::add_entry_on_disk(std::string_view name, uint32_t ino, VType t) {
  Ext2Mount& m = em();
  bool ft = m.geo().incompat & kIncompatFiletype;
  uint8_t ftype = ft ? vtype_to_ft(t) : 0;
  // An inline directory takes the entry while it fits in i_block (with
  // nothing in system.data); else it moves out to a block first.
  if ((flags() & kFlInlineData) && TRY(inline_xattr()).empty()) {
    char* area = raw_ + ino::kBlock + 4;
    const size_t len = ino::kBlockBytes - 4;
    for (size_t pos = 0; pos < len; pos += rec_len(area, pos)) TRY(check_dirent(area, pos, len, ino_));
    if (insert_dirent(area, len, name, ino, ftype)) return write_inode();
  }
  TRY(uninline());
  if (flags() & kFlIndex) {
    Result<void> r = dx_add(name, ino, ftype);
    if (r.ok() || r.error() != EUCLEAN) return r;
    // A broken index: the directory goes on linear.
    TRY(deindex());
  }
  uint32_t bs = m.geo().block_size;
  uint32_t need = dirent_len(static_cast<uint32_t>(name.size()));
  auto put_entry = [&](char* blk, size_t pos, uint32_t rec) {
    put32(blk, pos, ino);
    put_rec_len(blk, pos, rec);
    blk[pos + 6] = static_cast<char>(name.size());
    blk[pos + 7] = ft ? static_cast<char>(vtype_to_ft(t)) : 0;
    std::memcpy(blk + pos + 8, name.data(), name.size());
  };
  uint64_t nblocks = size() / bs;
  size_t end = usable_end();
  // The name into the entry at pos (rec bytes, used of them taken), which
  // has room for it; the end remembered when that entry is the last.
  auto insert_at = [&](BufRef& bh, uint64_t lblk, size_t pos, uint32_t rec, uint32_t used,
                       uint32_t room_before) -> Result<void> {
    char* blk = bh.data();
    if (used) {
      put_rec_len(blk, pos, used);
      put_entry(blk, pos + used, rec - used);
    } else {
      put_entry(blk, pos, rec);
    }
    set_leaf_csum(blk);
    TRY(m.dirty_meta(bh));
    if (lblk + 1 == nblocks && pos + rec == end)
      if (Tail* t = this->tail()) *t = Tail{lblk, static_cast<uint32_t>(pos + used), room_before, true};
    return {};
  };
  Tail* known = this->tail();
  Tail tail = known ? std::exchange(*known, Tail{}) : Tail{};
  if (tail.known && tail.lblk + 1 == nblocks && need > tail.room_before) {
    // (Anything amiss there is for the scan below to find and report.)
    BufRef bh = TRY(dir_block(tail.lblk));
    char* blk = bh.data();
    size_t pos = tail.pos;
    if (dirent_fault(blk, pos, bs) == nullptr) {
      uint32_t rec = rec_len(blk, pos);
      uint32_t used = get32(blk, pos) ? dirent_len(static_cast<uint8_t>(blk[pos + 6])) : 0;
      if (pos + rec == end && rec - used >= need) return insert_at(bh, tail.lblk, pos, rec, used, tail.room_before);
    }
  }
  uint32_t room_before = 0;
  for (uint64_t lblk = 0; lblk < nblocks; lblk++) {
    BufRef bh = TRY(dir_block(lblk));
    char* blk = bh.data();
    for (size_t pos = 0; pos < end;) {
      TRY(check_dirent(blk, pos, bs, lblk));
      uint32_t rec = rec_len(blk, pos);
      if (pos + rec > end) break;  // the tail
      uint32_t used = get32(blk, pos) ? dirent_len(static_cast<uint8_t>(blk[pos + 6])) : 0;
      if (rec - used >= need) return insert_at(bh, lblk, pos, rec, used, room_before);
      room_before = std::max(room_before, rec - used);
      pos += rec;
    }
  }
  // A full one-block directory becomes indexed (dir_index) rather than
  // grow linearly.
  if (nblocks == 1 && (m.geo().compat & kCompatDirIndex)) {
    Result<void> r = make_indexed();
    if (r.ok()) return dx_add(name, ino, ftype);
    if (r.error() != ENOSPC) return r;
  }
  // A new block at the end.
  uint64_t lblk;
  BufRef bh = TRY(append_dir_block(lblk));
  put_entry(bh.data(), 0, usable_end());
  set_leaf_csum(bh.data());
  TRY(m.dirty_meta(bh));
  if (lblk + 1 == size() / bs)
    if (Tail* t = this->tail()) *t = Tail{lblk, 0, room_before, true};
  return {};
}

Result<BufRef> Ext2Node::dir_block(uint64_t lblk) {
  Mapping map = TRY(bmap(lblk));
  if (!map.pblk) return em().corrupt("hole in a directory", ino_);
  return em().bread(map.pblk);
}

Result<bool> Ext2Node::remove_in_block(uint64_t lblk, std::string_view name, uint32_t ino) {
  BufRef bh = TRY(dir_block(lblk));
  return remove_in(lblk, bh, name, ino);
}

Result<size_t> Ext2Node::find_in_block(const char* blk, uint64_t lblk, std::string_view name, size_t* prev) const {
  uint32_t bs = em().geo().block_size;
  // Index blocks hold no entries; the index root only "." and "..".
  if (get32(blk, 0) == 0 && rec_len(blk, 0) == bs) return kNoEntry;
  bool root = (flags() & kFlIndex) && lblk == 0;
  size_t before = 0;
  for (size_t pos = 0; pos < bs;) {
    TRY(check_dirent(blk, pos, bs, lblk));
    uint8_t nl = static_cast<uint8_t>(blk[pos + 6]);
    if (get32(blk, pos) != 0 && std::string_view(blk + pos + 8, nl) == name) {
      if (prev) *prev = before;
      return pos;
    }
    if (root && pos > 0) break;
    before = pos;
    pos += rec_len(blk, pos);
  }
  return kNoEntry;
}

Result<bool> Ext2Node::remove_in(uint64_t lblk, BufRef& bh, std::string_view name, uint32_t ino) {
  Ext2Mount& m = em();
  forget_tail();  // the room this leaves is before the end
  char* blk = bh.data();
  size_t prev = 0;
  size_t pos = TRY(find_in_block(blk, lblk, name, &prev));
  if (pos == kNoEntry) return false;
  if (get32(blk, pos) != ino) return m.corrupt("directory entry changed under us", ino_);
  if (pos == 0) {
    put32(blk, 0, 0);
  } else {
    put_rec_len(blk, prev, rec_len(blk, prev) + rec_len(blk, pos));
  }
  set_leaf_csum(blk);
  TRY(m.dirty_meta(bh));
  return true;
}

Result<Ext2Node::EntryBlock> Ext2Node::entry_block(std::string_view name) {
  EntryBlock e;
  if (flags() & kFlInlineData) return e;
  uint32_t bs = em().geo().block_size;
  auto take_if_holds = [&](uint64_t lblk) -> Result<bool> {
    BufRef bh = TRY(dir_block(lblk));
    if (TRY(find_in_block(bh.data(), lblk, name, nullptr)) == kNoEntry) return false;
    e.lblk = lblk;
    e.bh = std::move(bh);
    return true;
  };
  if ((flags() & kFlIndex) && name != "." && name != "..") {
    Result<uint64_t> leaf = dx_find(name, nullptr);
    if (leaf.ok() && *leaf != kNoLeaf && TRY(take_if_holds(*leaf))) return e;
  }
  for (uint64_t lblk = 0; lblk * bs < size(); lblk++)
    if (TRY(take_if_holds(lblk))) return e;
  return err(ENOENT);
}

Result<void> Ext2Node::remove_entry_on_disk(std::string_view name, uint32_t ino, EntryBlock* at) {
  Ext2Mount& m = em();
  // The block found before any change, unless a change since moved the
  // entry (a split of that leaf): then the search below.
  if (at && at->bh && TRY(remove_in(at->lblk, at->bh, name, ino))) return {};
  TRY(uninline());
  if (flags() & kFlIndex) {
    Result<uint64_t> leaf = dx_find(name, nullptr);
    if (leaf.ok()) {
      if (*leaf == kNoLeaf) return err(ENOENT);
      if (TRY(remove_in_block(*leaf, name, ino))) return {};
      return err(ENOENT);
    }
  }
  uint32_t bs = m.geo().block_size;
  for (uint64_t lblk = 0; lblk * bs < size(); lblk++) {
    if (TRY(remove_in_block(lblk, name, ino))) return {};
  }
  return err(ENOENT);
}

Result<void> Ext2Node::retarget_entry_on_disk(std::string_view name, uint32_t ino, VType t, EntryBlock* at) {
  Ext2Mount& m = em();
  if (at && at->bh && TRY(retarget_in(at->lblk, at->bh, name, ino, t))) return {};
  TRY(uninline());
  uint32_t bs = m.geo().block_size;
  bool indexed = flags() & kFlIndex;
  // In an indexed directory the leaf the index names is tried first;
  // then every block once (start, then 0 .. start-1, then the rest).
  uint64_t start = 0;
  if (indexed && name != "." && name != "..") {
    Result<uint64_t> leaf = dx_find(name, nullptr);
    if (leaf.ok() && *leaf != kNoLeaf) start = *leaf;
  }
  for (uint64_t i = 0; i * bs < size(); i++) {
    uint64_t lblk = i == 0 ? start : (i <= start ? i - 1 : i);
    BufRef bh = TRY(dir_block(lblk));
    if (TRY(retarget_in(lblk, bh, name, ino, t))) return {};
  }
  return err(ENOENT);
}

Result<bool> Ext2Node::retarget_in(uint64_t lblk, BufRef& bh, std::string_view name, uint32_t ino, VType t) {
  Ext2Mount& m = em();
  char* blk = bh.data();
  size_t pos = TRY(find_in_block(blk, lblk, name, nullptr));
  if (pos == kNoEntry) return false;
  put32(blk, pos, ino);
  if (m.geo().incompat & kIncompatFiletype) blk[pos + 7] = static_cast<char>(vtype_to_ft(t));
  // "." and ".." of an index root are covered by the index's own
  // checksum.
  if (!((flags() & kFlIndex) && lblk == 0)) set_leaf_csum(blk);
  else set_dx_csum(blk, kDxRootEntries);
  TRY(m.dirty_meta(bh));
  return true;
}

}  // namespace rump

// --- leaving inline data (inline_data): a write, truncation or
// fallocate of an inline file, or a change to an inline directory, first
// moves the bytes or entries into an ordinary block (as Linux does when
// they outgrow the inode), then goes on as for any inode.

namespace rump {

using namespace ext2;

Result<void> Ext2Node::uninline() {
  if (!(flags() & kFlInlineData)) return {};
  Ext2Mount& m = em();
  const Ext2Mount::Geometry& g = m.geo();
  uint32_t bs = g.block_size;
  if (type() != VType::kReg && type() != VType::kDir) return err(EOPNOTSUPP);
  uint64_t sz = size();
  if (sz > ino::kBlockBytes + g.inode_size) return m.corrupt("inline data larger than its inode", ino_);
  char* buf = static_cast<char*>(m.kernel().kmem().alloc(bs));
  if (!buf) return err(ENOMEM);
  struct Free {
    char* p;
    ~Free() { Kmem::free(p); }
  } free_buf{buf};
  if (is_dir()) {
    // The entries into a fresh directory block: ".", "..", the rest.
    uint32_t parent = get32(raw_, ino::kBlock);
    TRY(init_dir_block(buf, parent));
    uint8_t ftmask = (g.incompat & kIncompatFiletype) ? 0xff : 0;
    bool full = false;
    TRY(for_each_entry(2, [&](const Entry& e, uint64_t, uint64_t) {
      if (!leaf_insert(buf, e.name, e.ino, static_cast<uint8_t>(e.ft & ftmask))) full = true;
      return !full;
    }));
    if (full) return m.corrupt("inline directory entries do not fit a block", ino_);
  } else {
    TRY(read_inline(buf, static_cast<size_t>(sz), 0));
  }
  TRY(m.begin_op());
  // The inode as it is, and its block held: if moving the bytes out fails
  // half-way, what it allocated goes back and the inode is put back as it
  // was, inline, bytes and all.
  BufRef ib = TRY(inode_block());
  char* saved = static_cast<char*>(m.kernel().kmem().alloc(g.inode_size));
  if (!saved) return err(ENOMEM);
  Free free_saved{saved};
  std::memcpy(saved, raw_, g.inode_size);
  TRY(drop_inline());
  set_size(0);
  Result<void> r = [&]() -> Result<void> {
    TRY(write_inode_to(ib));
    if (is_dir()) {
      bool fresh = false;
      uint64_t pb = TRY(map_for_write(0, fresh));
      BufRef bh = TRY(m.bc_.getblk(m.dev_, pb, bs));
      std::memcpy(bh.data(), buf, bs);
      TRY(m.dirty_meta(bh));
      set_size(bs);
      return write_inode_to(ib);
    }
    if (sz == 0) return {};
    // The bytes through the ordinary write path (block 0 and the size).
    size_t n = TRY(write(buf, static_cast<size_t>(sz), 0));
    if (n != sz) return err(EIO);
    return {};
  }();
  if (r.ok()) return {};
  // The way back: the blocks freed, the inode inline again. If that fails
  // too, blocks may stay allocated with nothing mapping them, or the
  // inode lose its bytes: the changes are aborted.
  Result<void> undone;
  if (!(flags() & kFlInlineData)) undone = free_from(0, &ib);
  std::memcpy(raw_, saved, g.inode_size);
  Result<void> put_back = write_inode_to(ib);
  if (undone.ok()) undone = put_back;
  m.check_undo(undone, "inline data moved out could not be put back", ino_);
  return r;
}

Result<void> Ext2Node::drop_inline() {
  TRY(remove_inline_xattr());
  std::memset(raw_ + ino::kBlock, 0, ino::kBlockBytes);
  uint32_t fl = flags() & ~kFlInlineData;
  if (em().geo().incompat & kIncompatExtents) {
    fl |= kFlExtents;
    put16(raw_, ino::kBlock, kExtentMagic);
    put16(raw_, ino::kBlock + 4, 4);
  }
  put32(raw_, ino::kFlags, fl);
  return {};
}

Result<bool> Ext2Node::write_inline(std::byte* const* pages) {
  Ext2Mount& m = em();
  uint64_t sz = size();
  bool fits = sz <= ino::kBlockBytes;
  if (!(flags() & kFlInlineData)) {
    // A file with no block yet whose bytes fit the inode.
    bool empty = (flags() & kFlExtents) && get32(raw_, ino::kBlocksLo) == 0 && get16(raw_, ino::kBlock + 2) == 0 &&
                 get16(raw_, ino::kBlock + 6) == 0 && xattr_block() == 0;
    if (!fits || !empty || !(m.geo().incompat & kIncompatInlineData)) return false;
    if (!TRY(add_inline_xattr())) return false;
    put32(raw_, ino::kFlags, (flags() & ~kFlExtents) | kFlInlineData);
  } else if (!fits) {
    // Outgrown: page 0 holds every byte, nothing to move.
    TRY(drop_inline());
    TRY(write_inode());
    return false;
  }
  std::memset(raw_ + ino::kBlock, 0, ino::kBlockBytes);
  std::memcpy(raw_ + ino::kBlock, pages[0], static_cast<size_t>(sz));
  TRY(write_inode());
  return true;
}

}  // namespace rump
