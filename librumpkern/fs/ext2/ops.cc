// ext2/3/4 changes through the vnode interface: new inodes, links,
// removal (an unlinked inode is freed with its last reference), rename,
// writes, truncation, attributes and times; each change reaches the
// inode table's buffer at once (write_inode).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstring>

#include "fs/ext2/crc.h"
#include "fs/ext2/ext2.h"
#include "kern/kernel.h"

namespace rump {

using namespace ext2;

namespace {

constexpr uint16_t kLinkMax = 65000;

}  // namespace

uint16_t Ext2Node::links() const { return get16(raw_, ino::kLinks); }
void Ext2Node::set_links(uint16_t n) { put16(raw_, ino::kLinks, n); }

void Ext2Node::set_size(uint64_t s) {
  put32(raw_, ino::kSizeLo, static_cast<uint32_t>(s));
  if (type() == VType::kReg || (type() == VType::kDir && (em().geo().incompat & kIncompatLargedir)))
    put32(raw_, ino::kSizeHigh, static_cast<uint32_t>(s >> 32));
}

void Ext2Node::add_blocks(int64_t fs_blocks) {
  const Ext2Mount::Geometry& g = em().geo();
  bool huge = g.ro_compat & kRoCompatHugeFile;
  uint64_t v = get32(raw_, ino::kBlocksLo) | (huge ? uint64_t{get16(raw_, ino::kBlocksHi)} << 32 : 0);
  int64_t unit = (huge && (flags() & kFlHugeFile)) ? 1 : g.block_size / 512;
  v += static_cast<uint64_t>(fs_blocks * unit);
  put32(raw_, ino::kBlocksLo, static_cast<uint32_t>(v));
  if (huge) put16(raw_, ino::kBlocksHi, static_cast<uint16_t>(v >> 32));
  // The map changed with it: an operation that fails before it writes
  // the inode leaves the write to the last reference (forget), rather than
  // to nobody.
  inode_pending_ = true;
}

void Ext2Node::set_time(size_t sec_off, size_t extra_off, const timespec& t) {
  uint32_t extra_isize = em().geo().inode_size > kGoodOldInodeSize ? get16(raw_, ino::kExtraIsize) : 0;
  // The creation time lives past the 128-byte core: only with room.
  if (sec_off + 4 > kGoodOldInodeSize + extra_isize) return;
  put32(raw_, sec_off, static_cast<uint32_t>(t.tv_sec));
  if (extra_off + 4 <= kGoodOldInodeSize + extra_isize) {
    int64_t lo = static_cast<int32_t>(static_cast<uint32_t>(t.tv_sec));
    uint32_t epoch = static_cast<uint32_t>(((t.tv_sec - lo) >> 32) & 3);
    put32(raw_, extra_off, epoch | static_cast<uint32_t>(t.tv_nsec) << 2);
  }
}

Result<void> Ext2Node::write_inode() {
  Result<BufRef> ib = inode_block();
  if (!ib.ok()) {
    inode_pending_ = true;  // as a failed write_inode_to
    return err(ib.error());
  }
  return write_inode_to(*ib);
}

Result<BufRef> Ext2Node::inode_block() {
  Ext2Mount& m = em();
  if (!table_block_) {
    const Ext2Mount::Geometry& g = m.geo();
    uint32_t group = (ino_ - 1) / g.inodes_per_group, index = (ino_ - 1) % g.inodes_per_group;
    BufRef gh;
    const char* d = TRY(m.group_desc(group, gh));
    uint64_t table = gd::get_block(d, gd::kInodeTableLo, gd::kInodeTableHi, g.desc_size >= 64);
    gh.reset();
    table_block_ = TRY(m.inode_block_for_write(group, index, table + uint64_t{index} * g.inode_size / g.block_size));
  }
  return m.bc_.share(*table_block_.get());
}

Result<void> Ext2Node::write_inode_to(BufRef& ib) {
  Ext2Mount& m = em();
  const Ext2Mount::Geometry& g = m.geo();
  if (m.has_csum()) {
    uint32_t extra = g.inode_size > kGoodOldInodeSize ? get16(raw_, ino::kExtraIsize) : 0;
    bool hi = extra >= 4;
    put16(raw_, ino::kChecksumLo, 0);
    if (hi) put16(raw_, ino::kChecksumHi, 0);
    uint32_t c = crc32c(csum_seed(), raw_, g.inode_size);
    put16(raw_, ino::kChecksumLo, static_cast<uint16_t>(c));
    if (hi) put16(raw_, ino::kChecksumHi, static_cast<uint16_t>(c >> 16));
  }
  uint64_t byte = uint64_t{(ino_ - 1) % g.inodes_per_group} * g.inode_size;
  std::memcpy(ib.data() + byte % g.block_size, raw_, g.inode_size);
  // Until the table block is in the transaction, raw_ holds a change the
  // table lacks (a write-back's new blocks, for one): the next write-back,
  // an fsync or the last reference writes it again.
  Result<void> r = m.dirty_meta(ib);
  inode_pending_ = !r.ok();
  return r;
}

void Ext2Node::touch(int which) {
  if (!em().writable()) return;
  timespec now = wall_timespec();
  if (which & 1) set_time(ino::kAtime, ino::kAtimeExtra, now);
  if (which & 2) set_time(ino::kMtime, ino::kMtimeExtra, now);
  if (which & 4) set_time(ino::kCtime, ino::kCtimeExtra, now);
  (void)write_inode();
}

Result<void> Ext2Node::setattr(const SetAttr& sa) {
  Ext2Mount& m = em();
  if (!m.writable()) return err(EROFS);
  if (flags() & kFlImmutable) return err(EPERM);
  if ((flags() & kFlAppend) &&
      ((sa.mask & (SetAttr::kMode | SetAttr::kUid | SetAttr::kGid | SetAttr::kSize)) ||
       ((sa.mask & (SetAttr::kAtime | SetAttr::kMtime)) && !(sa.mask & SetAttr::kCtime))))
    return err(EPERM);
  TRY(m.begin_op());
  if (sa.mask & SetAttr::kSize) TRY(truncate(sa.size));
  if (sa.mask & SetAttr::kMode)
    put16(raw_, ino::kMode, static_cast<uint16_t>((get16(raw_, ino::kMode) & S_IFMT) | (sa.mode & 07777)));
  if (sa.mask & SetAttr::kUid) {
    put16(raw_, ino::kUid, static_cast<uint16_t>(sa.uid));
    put16(raw_, ino::kUidHigh, static_cast<uint16_t>(sa.uid >> 16));
  }
  if (sa.mask & SetAttr::kGid) {
    put16(raw_, ino::kGid, static_cast<uint16_t>(sa.gid));
    put16(raw_, ino::kGidHigh, static_cast<uint16_t>(sa.gid >> 16));
  }
  if (sa.mask & SetAttr::kAtime) set_time(ino::kAtime, ino::kAtimeExtra, sa.atime);
  if (sa.mask & SetAttr::kMtime) set_time(ino::kMtime, ino::kMtimeExtra, sa.mtime);
  set_time(ino::kCtime, ino::kCtimeExtra, (sa.mask & SetAttr::kCtime) ? sa.ctime : wall_timespec());
  return write_inode();
}

// --- new inodes

Result<Ref<Vnode>> Ext2Node::new_inode(const NewNode& n) {
  Ext2Mount& m = em();
  m.lock_.assert_held();
  const Ext2Mount::Geometry& g = m.geo();
  bool dir = n.type == VType::kDir;
  uint32_t goal = (ino_ - 1) / g.inodes_per_group;
  uint32_t ino = TRY(m.alloc_inode(goal, dir));
  char* raw = static_cast<char*>(m.kernel().kmem().zalloc(g.inode_size));
  if (!raw) {
    m.undo_inode(ino, dir);
    return err(ENOMEM);
  }
  put16(raw, ino::kMode, static_cast<uint16_t>(vtype_to_ifmt(n.type) | (n.mode & 07777)));
  put16(raw, ino::kUid, static_cast<uint16_t>(n.uid));
  put16(raw, ino::kUidHigh, static_cast<uint16_t>(n.uid >> 16));
  put16(raw, ino::kGid, static_cast<uint16_t>(n.gid));
  put16(raw, ino::kGidHigh, static_cast<uint16_t>(n.gid >> 16));
  put16(raw, ino::kLinks, dir ? 2 : 1);
  put32(raw, ino::kGeneration, m.next_generation());
  if (g.inode_size > kGoodOldInodeSize) {
    uint32_t extra = g.inode_size - kGoodOldInodeSize < 32 ? g.inode_size - kGoodOldInodeSize : 32;
    put16(raw, ino::kExtraIsize, static_cast<uint16_t>(extra));
  }
  bool slow_link = n.type == VType::kLnk && n.symlink_target.size() >= ino::kBlockBytes;
  bool mapped = n.type == VType::kReg || dir || slow_link;
  if (mapped && (g.incompat & kIncompatExtents)) {
    put32(raw, ino::kFlags, kFlExtents);
    put16(raw, ino::kBlock, kExtentMagic);
    put16(raw, ino::kBlock + 4, 4);
  }
  if (n.type == VType::kChr || n.type == VType::kBlk) {
    uint32_t ma = major(n.rdev), mi = minor(n.rdev);
    if (ma < 256 && mi < 256) put32(raw, ino::kBlock, ma << 8 | mi);
    else put32(raw, ino::kBlock + 4, (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12));
  }
  const uint32_t flags_before_inline = get32(raw, ino::kFlags);
  auto* node = new (m.kernel().kmem()) Ext2Node(m, n.type, ino, raw);
  if (!node) {
    Kmem::free(raw);
    m.undo_inode(ino, dir);
    return err(ENOMEM);
  }
  Ref<Vnode> ref(kAdopt, static_cast<Vnode*>(node));
  m.nodes_.insert(*node);
  if (dir) node->parent_ = RefPtr<Vnode>(static_cast<Vnode*>(this));
  timespec now = wall_timespec();
  node->set_time(ino::kAtime, ino::kAtimeExtra, now);
  node->set_time(ino::kMtime, ino::kMtimeExtra, now);
  node->set_time(ino::kCtime, ino::kCtimeExtra, now);
  node->set_time(ino::kCrtime, ino::kCrtimeExtra, now);
  // From here on a failure unlinks the node: its release frees it, or
  // the orphan list if that fails too.
  auto undo = [&](int e) -> Result<Ref<Vnode>> {
    node->set_links(0);
    m.lock_.assert_held();
    (void)m.orphan_add_unlinked(*node);
    return err(e);
  };
  // With inline_data a new directory starts in its inode, as Linux's
  // does: ".." in the first word, then one empty entry over the rest.
  bool inline_dir = false;
  if (dir && (g.incompat & kIncompatInlineData)) {
    put32(node->raw_, ino::kFlags, kFlInlineData);
    Result<bool> room = node->add_inline_xattr();
    if (!room.ok()) return undo(room.error());
    inline_dir = room.value();
    if (inline_dir) {
      std::memset(node->raw_ + ino::kBlock, 0, ino::kBlockBytes);
      put32(node->raw_, ino::kBlock, ino_);
      node->put_rec_len(node->raw_ + ino::kBlock + 4, 0, ino::kBlockBytes - 4);
      node->set_size(ino::kBlockBytes);
    } else {
      put32(node->raw_, ino::kFlags, flags_before_inline);
    }
  }
  if (dir && !inline_dir) {
    bool fresh;
    Result<uint64_t> pb = node->map_for_write(0, fresh);
    if (!pb.ok()) return undo(pb.error());
    Result<BufRef> bh = m.bc_.getblk(m.dev_, *pb, g.block_size);
    if (!bh.ok()) return undo(bh.error());
    (void)node->init_dir_block(bh->data(), ino_);
    Result<void> d = m.dirty_meta(*bh);
    if (!d.ok()) return undo(d.error());
    node->set_size(g.block_size);
  } else if (n.type == VType::kLnk) {
    size_t len = n.symlink_target.size();
    if (len >= g.block_size || len >= kPathMax) return undo(ENAMETOOLONG);
    if (!slow_link) {
      std::memcpy(node->raw_ + ino::kBlock, n.symlink_target.data(), len);
    } else {
      bool fresh;
      Result<uint64_t> pb = node->map_for_write(0, fresh);
      if (!pb.ok()) return undo(pb.error());
      Result<BufRef> bh = m.bc_.getblk(m.dev_, *pb, g.block_size);
      if (!bh.ok()) return undo(bh.error());
      std::memset(bh->data(), 0, g.block_size);
      std::memcpy(bh->data(), n.symlink_target.data(), len);
      Result<void> d = m.dirty_meta(*bh);
      if (!d.ok()) return undo(d.error());
    }
    node->set_size(len);
  }
  Result<void> w = node->write_inode();
  if (!w.ok()) return undo(w.error());
  return ref;
}

Result<Ref<Vnode>> Ext2Node::create(std::string_view name, const NewNode& n) {
  for (bool retried = false;; retried = true) {
    Result<Ref<Vnode>> r = create_once(name, n);
    // (Not after the failure aborted the mount's changes.)
    if (r.ok() || r.error() != ENOSPC || retried || !em().writable()) return r;
    // Blocks freed by the running transaction (an unlink, a truncate) are
    // allocatable once it commits: commit and try again, as ext4 does.
    // What the first try made is undone by now (its node went).
    if (!TRY(em().commit_for_space())) return r;
  }
}

Result<Ref<Vnode>> Ext2Node::create_once(std::string_view name, const NewNode& n) {
  if (!is_dir()) return err(ENOTDIR);
  Ext2Mount& m = em();
  if (!m.writable()) return err(EROFS);
  if (name.size() > kNameMax) return err(ENAMETOOLONG);
  if (flags() & kFlImmutable) return err(EPERM);
  if (find_entry(name).ok()) return err(EEXIST);
  TRY(m.begin_op());
  if (n.type == VType::kDir && links() >= kLinkMax) return err(EMLINK);
  Ref<Vnode> child = TRY(new_inode(n));
  auto& c = static_cast<Ext2Node&>(*child);
  Result<void> r = add_entry(name, c.ino_, n.type);
  if (!r.ok()) {
    // Freed when the node goes, or at unmount or the next mount from the
    // orphan list.
    c.set_links(0);
    m.lock_.assert_held();
    (void)m.orphan_add_unlinked(c);
    return err(r.error());
  }
  if (n.type == VType::kDir) set_links(static_cast<uint16_t>(links() + 1));
  timespec now = wall_timespec();
  set_time(ino::kMtime, ino::kMtimeExtra, now);
  set_time(ino::kCtime, ino::kCtimeExtra, now);
  TRY(write_inode());
  return child;
}

Result<void> Ext2Node::link(std::string_view name, Vnode& target) {
  if (!is_dir()) return err(ENOTDIR);
  Ext2Mount& m = em();
  if (!m.writable()) return err(EROFS);
  auto& t = static_cast<Ext2Node&>(target);
  if ((flags() & kFlImmutable) || (t.flags() & (kFlImmutable | kFlAppend))) return err(EPERM);
  if (t.links() >= kLinkMax) return err(EMLINK);
  if (find_entry(name).ok()) return err(EEXIST);
  TRY(m.begin_op());
  Result<void> a = add_entry(name, t.ino_, t.type());
  if (!a.ok() && a.error() == ENOSPC && m.writable() && TRY(m.commit_for_space())) {
    // As create: once more after a commit.
    TRY(m.begin_op());
    a = add_entry(name, t.ino_, t.type());
  }
  TRY(a);
  t.set_links(static_cast<uint16_t>(t.links() + 1));
  t.touch(4);
  touch(2 | 4);
  return {};
}

Result<void> Ext2Node::remove(std::string_view name, Vnode& vp) {
  Ext2Mount& m = em();
  if (!m.writable()) return err(EROFS);
  auto& t = static_cast<Ext2Node&>(vp);
  if ((flags() | t.flags()) & (kFlImmutable | kFlAppend)) return err(EPERM);
  TRY(m.begin_op());
  TRY(remove_entry(name, t.ino_));
  if (t.links() > 0) t.set_links(static_cast<uint16_t>(t.links() - 1));
  if (t.links() == 0) {
        m.lock_.assert_held();
        TRY(m.orphan_add_unlinked(t));
      }
  t.touch(4);
  touch(2 | 4);
  return {};
}

Result<void> Ext2Node::rmdir(std::string_view name, Vnode& vp) {
  Ext2Mount& m = em();
  if (!m.writable()) return err(EROFS);
  auto& t = static_cast<Ext2Node&>(vp);
  if ((flags() | t.flags()) & (kFlImmutable | kFlAppend)) return err(EPERM);
  if (t.has_entries()) return err(ENOTEMPTY);
  TRY(m.begin_op());
  TRY(remove_entry(name, t.ino_));
  // The name is gone: this directory loses the ".." link with it, before
  // anything that can fail (a failed orphan_add leaves t to be freed when
  // its last reference goes, as its copy says no link).
  if (links() > 2) set_links(static_cast<uint16_t>(links() - 1));
  touch(2 | 4);
  t.set_links(0);
  t.parent_.reset();
  m.lock_.assert_held();
  Result<void> o = m.orphan_add_unlinked(t);
  (void)t.write_inode();
  return o;
}

Result<void> Ext2Node::rename(std::string_view from_name, Vnode& vp, Vnode& to_dir_v, std::string_view to_name,
                              Vnode* target, bool exchange) {
  Ext2Mount& m = em();
  if (!m.writable()) return err(EROFS);
  auto& to_dir = static_cast<Ext2Node&>(to_dir_v);
  auto& node = static_cast<Ext2Node&>(vp);
  // Taking a name out of a directory (both with exchange, a replaced
  // target's too) is refused by append-only and immutable ones; adding
  // one by immutable ones.
  constexpr uint32_t kFrozen = kFlImmutable | kFlAppend;
  uint32_t to_flags = to_dir.flags() & ((exchange || target) ? kFrozen : kFlImmutable);
  if (((flags() | node.flags()) & kFrozen) || to_flags ||
      (target && (static_cast<Ext2Node*>(target)->flags() & kFrozen)))
    return err(EPERM);
  TRY(m.begin_op());
  // A directory that moves to another parent has its ".." retargeted
  // after the names moved: the block holding it (the first) is read now
  // and held, so that this last step cannot fail for want of it.
  BufRef dotdot[2];
  auto hold_dotdot = [&](Ext2Node& d, BufRef& hold) -> Result<void> {
    if (!d.is_dir() || &to_dir == this || (d.flags() & kFlInlineData)) return {};
    Mapping map = TRY(d.bmap(0));
    if (map.pblk) hold = TRY(m.bread(map.pblk));
    return {};
  };
  TRY(hold_dotdot(node, dotdot[0]));
  if (exchange) TRY(hold_dotdot(static_cast<Ext2Node&>(*target), dotdot[1]));
  // So are the blocks of the entries changed after the first change: the
  // source name's (removed, or retargeted by an exchange) and, for an
  // exchange, the target name's.
  EntryBlock from_at = TRY(entry_block(from_name));
  EntryBlock to_at;
  if (exchange) to_at = TRY(to_dir.entry_block(to_name));
  auto move_dotdot = [&](Ext2Node& d, Ext2Node& from, Ext2Node& to) -> Result<void> {
    if (!d.is_dir() || &from == &to) return {};
    TRY(d.retarget_entry("..", to.ino_, VType::kDir));
    from.set_links(static_cast<uint16_t>(from.links() - 1));
    to.set_links(static_cast<uint16_t>(to.links() + 1));
    d.parent_ = RefPtr<Vnode>(static_cast<Vnode*>(&to));
    return {};
  };
  if (exchange) {
    auto& other = static_cast<Ext2Node&>(*target);
    TRY(retarget_entry(from_name, other.ino_, other.type(), &from_at));
    TRY(to_dir.retarget_entry(to_name, node.ino_, node.type(), &to_at));
    TRY(move_dotdot(node, *this, to_dir));
    TRY(move_dotdot(other, to_dir, *this));
    node.touch(4);
    other.touch(4);
  } else {
    if (target) {
      auto& t = static_cast<Ext2Node&>(*target);
      if (t.is_dir() && t.has_entries()) return err(ENOTEMPTY);
      TRY(to_dir.retarget_entry(to_name, node.ino_, node.type()));
      if (t.is_dir()) {
        t.set_links(0);
        t.parent_.reset();
        to_dir.set_links(static_cast<uint16_t>(to_dir.links() - 1));
      } else if (t.links() > 0) {
        t.set_links(static_cast<uint16_t>(t.links() - 1));
      }
      if (t.links() == 0) {
        m.lock_.assert_held();
        TRY(m.orphan_add_unlinked(t));
      }
      t.touch(4);
    } else {
      TRY(to_dir.add_entry(to_name, node.ino_, node.type()));
    }
    TRY(remove_entry(from_name, node.ino_, &from_at));
    TRY(move_dotdot(node, *this, to_dir));
    node.touch(4);
  }
  touch(2 | 4);
  if (&to_dir != this) to_dir.touch(2 | 4);
  return {};
}

// --- data

Result<size_t> Ext2Node::write(const void* buf, size_t len, uint64_t off) {
  if (type() != VType::kReg) return err(EINVAL);
  Ext2Mount& m = em();
  if (!m.writable()) return err(EROFS);
  if (flags() & kFlImmutable) return err(EPERM);
  TRY(uninline());
  TRY(m.begin_op());
  uint32_t bs = m.geo().block_size;
  uint64_t old = size();
  // Bytes between the old end and the write read as zeros: clear the
  // rest of the old last block.
  if (off > old && old % bs) {
    Mapping map = TRY(bmap(old / bs));
    if (map.pblk) {
      BufRef bh = TRY(m.bread(map.pblk));
      uint64_t end = (old / bs + 1) * bs;
      if (off < end) end = off;
      std::memset(bh.data() + old % bs, 0, end - old);
      TRY(m.dirty_data(bh));
    }
  }
  const char* in = static_cast<const char*>(buf);
  size_t done = 0;
  Result<void> failed;
  while (done < len) {
    uint64_t pos = off + done;
    uint64_t lblk = pos / bs;
    size_t at = pos % bs;
    size_t n = bs - at < len - done ? bs - at : len - done;
    if (done > 0 && m.step_due()) {
      // A long write goes in steps, each a consistent state: the size
      // covers what is written so far.
      if (off + done > size()) set_size(off + done);
      Result<void> s = write_inode();
      if (s.ok()) s = m.begin_op();
      if (!s.ok()) {
        failed = err(s.error());
        break;
      }
    }
    bool fresh = false;
    Result<uint64_t> pb = map_for_write(lblk, fresh);
    if (!pb.ok()) {
      failed = err(pb.error());
      break;
    }
    // A block mapped for this write and then not written holds what the
    // device had there (another file's old bytes, or a block past the
    // end the write stops short of): it goes again.
    auto unmap_fresh = [&] {
      if (fresh) m.check_undo(free_range(lblk, lblk + 1), "a block mapped for a failed write could not be freed", ino_);
    };
    Result<BufRef> bh = (fresh || n == bs) ? m.bc_.getblk(m.dev_, *pb, bs) : m.bread(*pb);
    if (!bh.ok()) {
      failed = err(bh.error());
      unmap_fresh();
      break;
    }
    if (fresh) std::memset(bh->data(), 0, bs);
    std::memcpy(bh->data() + at, in + done, n);
    Result<void> d = m.dirty_data(*bh);
    if (!d.ok()) {
      failed = err(d.error());
      bh->reset();
      unmap_fresh();
      break;
    }
    done += n;
  }
  if (off + done > old) set_size(off + done);
  if (done > 0) {
    timespec now = wall_timespec();
    set_time(ino::kMtime, ino::kMtimeExtra, now);
    set_time(ino::kCtime, ino::kCtimeExtra, now);
  }
  Result<void> w = write_inode();
  if (done == 0) {
    if (!failed.ok()) return err(failed.error());
    TRY(w);
  }
  return done;
}

Result<void> Ext2Node::truncate(uint64_t new_size) {
  if (is_dir()) return err(EISDIR);
  if (type() != VType::kReg) return err(EINVAL);
  Ext2Mount& m = em();
  if (!m.writable()) return err(EROFS);
  if (flags() & (kFlImmutable | kFlAppend)) return err(EPERM);
  if ((flags() & kFlInlineData) && new_size <= ino::kBlockBytes) {
    // Inline and staying so: the bytes past the new end read as zeros.
    TRY(m.begin_op());
    uint64_t from = std::min<uint64_t>(size(), new_size);
    if (from < ino::kBlockBytes) std::memset(raw_ + ino::kBlock + from, 0, ino::kBlockBytes - from);
    set_size(new_size);
    timespec now = wall_timespec();
    set_time(ino::kMtime, ino::kMtimeExtra, now);
    set_time(ino::kCtime, ino::kCtimeExtra, now);
    return write_inode();
  }
  TRY(uninline());
  TRY(m.begin_op());
  uint32_t bs = m.geo().block_size;
  uint64_t old = size();
  // The inode's block is held from here: once blocks are freed, the copy
  // that no longer maps them is written whatever fails.
  BufRef ib = TRY(inode_block());
  if (new_size < old) {
    // The block the new end falls in, read before anything changes (it
    // stays: the cut starts after it); its bytes past the end are zeroed.
    BufRef last;
    if (new_size % bs) {
      Mapping map = TRY(bmap(new_size / bs));
      if (map.pblk) last = TRY(m.bread(map.pblk));
    }
    // The inode on the orphan list first, then the new size, while blocks
    // past it are freed (as Linux's ext4 does): a truncation that fails
    // half-way, or that takes several transactions and a crash cuts
    // short, is finished at that size at unmount or at the next mount.
    // Taken off again when done. (A size set before a listing that failed
    // would leave blocks past the end that nothing frees.)
    m.lock_.assert_held();
    bool listed = links() == 0 || m.on_orphan_list(ino_);
    bool has_blocks = get32(raw_, ino::kBlocksLo) != 0 || get16(raw_, ino::kBlocksHi) != 0;
    if (!listed && has_blocks) TRY(m.orphan_add(*this));
    set_size(new_size);
    TRY(free_from((new_size + bs - 1) / bs, &ib));
    drop_promises((new_size + bs - 1) / bs);
    if (!listed && m.on_orphan_list(ino_)) TRY(m.orphan_del(*this));
    if (last) {
      std::memset(last.data() + new_size % bs, 0, bs - new_size % bs);
      TRY(m.dirty_data(last));
    }
  } else if (new_size > old && old % bs) {
    Mapping map = TRY(bmap(old / bs));
    if (map.pblk) {
      BufRef bh = TRY(m.bread(map.pblk));
      std::memset(bh.data() + old % bs, 0, bs - old % bs);
      TRY(m.dirty_data(bh));
    }
  }
  set_size(new_size);
  timespec now = wall_timespec();
  set_time(ino::kMtime, ino::kMtimeExtra, now);
  set_time(ino::kCtime, ino::kCtimeExtra, now);
  return write_inode_to(ib);
}

// The last reference of an unlinked inode went: its blocks and the inode
// go back to the bitmaps. It stays on the orphan list until everything
// else is done, so that a failure on the way (out of memory, a read that
// fails) leaves it to be freed again, at unmount or at the next mount;
// what has been freed is in the inode's copy on disk by then. The last
// steps (off the list, the inode marked deleted, its bit cleared) read
// nothing that is not held beforehand, so none of them fails half-way.
Result<void> Ext2Node::release() {
  Ext2Mount& m = em();
  m.lock_.assert_held();
  BufRef ib = TRY(inode_block());
  bool mapped = type() == VType::kReg || type() == VType::kDir ||
                (type() == VType::kLnk && !(size() < ino::kBlockBytes && get32(raw_, ino::kBlocksLo) == 0));
  // With blocks to free (an empty file has none), the copy that no longer
  // maps them is written before the last steps, and the journal makes
  // room for those.
  bool has_blocks = get32(raw_, ino::kBlocksLo) != 0 || get16(raw_, ino::kBlocksHi) != 0 || xattr_block() != 0;
  Result<void> r;
  if (mapped && !(flags() & kFlInlineData)) r = free_from(0, &ib);
  if (r.ok()) r = drop_xattr_block();
  if (!r.ok()) {
    (void)write_inode_to(ib);
    return r;
  }
  if (has_blocks) {
    TRY(write_inode_to(ib));
    TRY(m.begin_op());
  }
  // What the rest reads, held.
  Ext2Mount::ReleaseHold hold = TRY(m.hold_for_release(*this));
  TRY(m.orphan_del(*this));
  set_size(0);
  put32(raw_, ino::kDtime, static_cast<uint32_t>(wall_timespec().tv_sec));
  TRY(write_inode_to(ib));
  return m.free_inode(ino_, is_dir());
}

}  // namespace rump

namespace rump {

using namespace ext2;

// --- the orphan list: inodes whose last link went while they are still
// in use (an open file, an operation in progress), chained from the
// superblock's s_last_orphan through their i_dtime, so that a crash
// before their release leaves them to be freed at the next mount.

Result<void> Ext2Mount::orphan_add_unlinked(Ext2Node& n) {
  unkeep_dir(n);  // freed at its last reference, which may be this holder's
  Result<void> r = orphan_add(n);
  if (!r.ok()) abort_changes("an unlinked inode could not be put on the orphan list", n.ino_, r.error());
  return r;
}

Result<void> Ext2Mount::orphan_add(Ext2Node& n) {
  // Already listed (the list's last has a link of 0: a zero i_dtime does
  // not say it is off the list, and adding it again would make it its own
  // next).
  if (on_orphan_list(n.ino_)) return {};
  put32(n.raw_, ino::kDtime, get32(sb_raw_, sb::kLastOrphan));
  put32(sb_raw_, sb::kLastOrphan, n.ino_);
  TRY(n.write_inode());
  return write_super();
}

Result<Ext2Mount::ReleaseHold> Ext2Mount::hold_for_release(Ext2Node& n) {
  ReleaseHold h;
  h.sb = TRY(bread(geo_.sb_byte / geo_.block_size));
  for (uint32_t cur = get32(sb_raw_, sb::kLastOrphan), steps = 0; cur != 0 && cur != n.ino_ && steps <= geo_.inodes_count;
       steps++) {
    Ext2Node* p = nodes_.find(cur);
    if (!p) break;
    cur = get32(p->raw_, ino::kDtime);
    if (cur == n.ino_) h.prev = TRY(p->inode_block());
  }
  uint32_t g = (n.ino_ - 1) / geo_.inodes_per_group;
  const char* d = TRY(group_desc(g, h.desc));
  h.bitmap = TRY(bread(gd::get_block(d, gd::kInodeBitmapLo, gd::kInodeBitmapHi, geo_.desc_size >= 64)));
  return h;
}

bool Ext2Mount::orphans_in_use() {
  // An orphan in use is an unlinked inode something still refers to: in
  // memory.
  for (Ext2Node& n : nodes_)
    if (n.links() == 0) return true;
  return false;
}

bool Ext2Mount::on_orphan_list(uint32_t ino) {
  uint32_t cur = get32(sb_raw_, sb::kLastOrphan);
  for (uint32_t steps = 0; cur != 0 && steps <= geo_.inodes_count; steps++) {
    if (cur == ino) return true;
    Ext2Node* n = nodes_.find(cur);
    if (!n) return false;
    cur = get32(n->raw_, ino::kDtime);
  }
  return false;
}

Result<void> Ext2Mount::orphan_del(Ext2Node& n) {
  uint32_t cur = get32(sb_raw_, sb::kLastOrphan);
  uint32_t next = get32(n.raw_, ino::kDtime);
  // Off the list, i_dtime is no link any more (the caller writes the
  // inode; a freed one gets its deletion time).
  if (on_orphan_list(n.ino_)) put32(n.raw_, ino::kDtime, 0);
  if (cur == n.ino_) {
    put32(sb_raw_, sb::kLastOrphan, next);
    return write_super();
  }
  // Every orphan of this mount is in memory (referenced until released,
  // or parked when its freeing failed). One that is not, or an inode not
  // found on the list, is left where it is: freeing it now would leave a
  // free inode on the list.
  for (uint32_t steps = 0; cur != 0 && steps <= geo_.inodes_count; steps++) {
    Ext2Node* p = nodes_.find(cur);
    if (!p) return corrupt("an orphan list's inode not in memory", cur);
    uint32_t after = get32(p->raw_, ino::kDtime);
    if (after == n.ino_) {
      put32(p->raw_, ino::kDtime, next);
      return p->write_inode();
    }
    cur = after;
  }
  return {};
}

// At mount: the orphans a crash left are freed (or, still linked, cut
// to their size, the list's other use).
Result<void> Ext2Mount::process_orphans() {
  uint32_t cur = get32(sb_raw_, sb::kLastOrphan);
  uint32_t done = 0;
  while (cur != 0) {
    if (++done > geo_.inodes_count || cur < geo_.first_ino || cur > geo_.inodes_count)
      return corrupt("bad orphan list", cur);
    allow_deleted_ = true;
    Result<Ref<Vnode>> r = iget(cur, nullptr);
    allow_deleted_ = false;
    Ref<Vnode> v = TRY(std::move(r));
    auto& n = static_cast<Ext2Node&>(*v);
    uint32_t next = get32(n.raw_, ino::kDtime);
    // It stays at the list's head until done (a crash meanwhile leaves it
    // to the next mount again). A deleted one is freed, and taken off the
    // list, as its reference goes at the end of this pass (forget, lock
    // held).
    TRY(process_orphan(n));
    cur = next;
  }
  return {};
}

Result<void> Ext2Mount::process_orphan(Ext2Node& n) {
  if (n.links() > 0) {
    kernel().printf("EXT4-fs: truncating orphaned inode %u\n", n.ino_);
    if (n.type() == VType::kReg && !(n.flags() & kFlInlineData)) {
      TRY(n.free_from((n.size() + geo_.block_size - 1) / geo_.block_size));
    }
    TRY(orphan_del(n));
    put32(n.raw_, ino::kDtime, 0);
    return n.write_inode();
  }
  kernel().printf("EXT4-fs: deleting orphaned inode %u\n", n.ino_);
  return {};
}

// The orphan file (orphan_file, Linux 5.15+): blocks of inode numbers,
// each ending in a magic number and a checksum (crc32c over the block's
// number and its entries, seeded by the orphan file's inode). With
// orphan_present set (a mount that did not end cleanly), every entry is
// processed as the list's are, the entries are cleared and so is the flag.
Result<void> Ext2Mount::process_orphan_file() {
  constexpr uint32_t kOrphanBlockMagic = 0x0b10ca04;
  uint32_t of_ino = get32(sb_raw_, sb::kOrphanFileInum);
  if (of_ino == 0 || of_ino > geo_.inodes_count) return corrupt("bad orphan file inode", of_ino);
  Ref<Vnode> v = TRY(iget(of_ino, nullptr));
  auto& of = static_cast<Ext2Node&>(*v);
  const uint32_t bs = geo_.block_size;
  const uint32_t per = (bs - 8) / 4;
  const uint32_t seed = of.csum_seed();
  uint64_t nblocks = of.size() / bs;
  for (uint64_t lb = 0; lb < nblocks; lb++) {
    Ext2Node::Mapping map = TRY(of.bmap(lb));
    if (!map.pblk) return corrupt("hole in the orphan file", of_ino);
    BufRef bh = TRY(bread(map.pblk));
    if (get32(bh.data(), bs - 8) != kOrphanBlockMagic) return corrupt("bad orphan file block", map.pblk);
    bool changed = false;
    for (uint32_t i = 0; i < per; i++) {
      uint32_t o = get32(bh.data(), i * 4);
      if (o == 0) continue;
      if (o < geo_.first_ino || o > geo_.inodes_count) return corrupt("bad orphan file entry", map.pblk);
      allow_deleted_ = true;
      Result<Ref<Vnode>> r = iget(o, nullptr);
      allow_deleted_ = false;
      Ref<Vnode> n = TRY(std::move(r));
      TRY(process_orphan(static_cast<Ext2Node&>(*n)));
      put32(bh.data(), i * 4, 0);
      changed = true;
    }
    if (!changed) continue;
    if (has_csum()) {
      char nr[8];
      put32(nr, 0, static_cast<uint32_t>(map.pblk));
      put32(nr, 4, static_cast<uint32_t>(map.pblk >> 32));
      put32(bh.data(), bs - 4, crc32c(crc32c(seed, nr, 8), bh.data(), per * 4));
    }
    TRY(dirty_meta(bh));
  }
  put32(sb_raw_, sb::kFeatureRoCompat, get32(sb_raw_, sb::kFeatureRoCompat) & ~kRoCompatOrphanPresent);
  geo_.ro_compat &= ~kRoCompatOrphanPresent;
  return write_super();
}

}  // namespace rump

// --- inode flags (chattr): FS_IOC_GETFLAGS/SETFLAGS see the flags users
// may see and change, with ext4's masks; immutable and append-only
// inodes refuse changes with EPERM (open for writing, truncation,
// attribute changes, removal, renaming, links), as Linux does.

namespace rump {

using namespace ext2;

namespace {

constexpr uint32_t kFlUserVisible = 0x705BDFFF;
constexpr uint32_t kFlUserModifiable = 0x604BC0FF;
// What each file type may carry: directories anything, regular files no
// directory flags (dirsync, topdir, casefold, project inherit), others only
// nodump and noatime.
constexpr uint32_t kFlRegMask = ~(kFlDirsync | kFlTopdir | kFlCasefold | 0x20000000u);
constexpr uint32_t kFlOtherMask = kFlNodump | kFlNoatime;

}  // namespace

Result<uint32_t> Ext2Node::inode_flags() const { return flags() & kFlUserVisible; }

Result<uint32_t> Ext2Node::generation() const { return get32(raw_, ino::kGeneration); }

Result<void> Ext2Node::set_inode_flags(uint32_t want) {
  Ext2Mount& m = em();
  if (!m.writable()) return err(EROFS);
  if (want & ~kFlUserVisible) return err(EOPNOTSUPP);
  want &= kFlUserModifiable;
  uint32_t mask = is_dir() ? ~0u : type() == VType::kReg ? kFlRegMask : kFlOtherMask;
  if ((want & mask) != want) return err(EOPNOTSUPP);
  uint32_t old = flags();
  // An immutable inode that stays so changes nothing else.
  if ((old & kFlImmutable) && (want & kFlImmutable) && (old & kFlUserModifiable) != want) return err(EPERM);
  uint32_t next = want | (old & ~kFlUserModifiable);
  // Converting between block maps and extents is not done here.
  if ((next ^ old) & kFlExtents) return err(EOPNOTSUPP);
  TRY(m.begin_op());
  put32(raw_, ino::kFlags, next);
  set_time(ino::kCtime, ino::kCtimeExtra, wall_timespec());
  return write_inode();
}

Result<void> Ext2Node::open(int oflags) {
  uint32_t f = flags();
  int acc = oflags & O_ACCMODE;
  bool writes = acc == O_WRONLY || acc == O_RDWR || (oflags & O_TRUNC);
  if ((f & kFlImmutable) && writes) return err(EPERM);
  if ((f & kFlAppend) && ((writes && !(oflags & O_APPEND)) || (oflags & O_TRUNC))) return err(EPERM);
  return {};
}

}  // namespace rump

