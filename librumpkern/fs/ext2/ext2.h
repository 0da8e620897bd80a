// ext2.h: the ext2/ext3/ext4 file system on a block device, mountable as
// "ext2", "ext3" and "ext4" (rump_sys_mount(source, target, type, flags,
// options), source an etfs RUMP_ETFS_BLK key or another block-device node).
//
// Structure. Ext2Mount holds the parsed superblock and the device; every
// metadata block it touches goes through the kernel's buffer cache
// (dev/buf.h) keyed by (device, block). File data read and written by the
// page cache moves straight between its frames and the device
// (pageio.cc); the file system's own read and write (the write-through
// paths: append-only files, no page cache) use the buffer cache.
// Ext2Node is a vnode for one inode: nodes are cached by inode number in
// the mount's table while they have a reference (an open file, a cwd, a
// lookup in progress, a child directory's parent pointer, a page cache
// kept after the last close); the last reference takes the node out of
// the table and frees it. A node keeps a copy of its on-disk inode;
// each change is written into the inode table's buffer at once, except a
// regular file's size grown by write(2) into its page cache: that goes
// with the pages' write-back (grow_for_cache), so that a growing file's
// inode is journaled once per write-back, not once per write; until then
// the disk holds the old size and no block past it.
//
// Journal (has_journal): replayed at mount when it needs recovery, then
// every metadata change goes into the journal's running transaction
// (dirty_meta) and file data is written in place (dirty_data) before the
// transaction commits (data=ordered); see journal.h.
//
// Locking: the mount's tree lock (Mount::lock_, vfs/vnode.h) guards the
// node table, every node and the file system's blocks; all I/O is done
// under it (it serialises the file system, not the kernel). The node table
// lets a dying node go: a lookup finding a node whose count already fell
// to zero replaces the table entry with a fresh node.
//
// Errors: anything on disk is bounds-checked before use; an inconsistency
// (a pointer past the device, a bad entry, a checksum mismatch with
// metadata_csum) fails that operation with EUCLEAN (Linux's EFSCORRUPTED)
// or EIO, logs a kernel message and, under errors=remount-ro, makes the
// mount read-only.
#pragma once

#include <boost/intrusive/unordered_set_hook.hpp>
#include <sys/mount.h>

#include <cstdint>
#include <string_view>

#include "base/intrusive_hash.h"
#include "dev/blockdev.h"
#include "dev/buf.h"
#include "fs/ext2/format.h"
#include "fs/ext2/journal.h"
#include "vfs/kvec.h"
#include "vfs/page_io.h"
#include "vfs/vnode.h"

namespace rump {

class Ext2Mount;

class Ext2Node : public Vnode, public PageIo {
 public:
  Ext2Node(Ext2Mount& m, VType type, uint32_t ino, char* raw);
  ~Ext2Node() override;

  Result<Ref<Vnode>> lookup(std::string_view name) override;
  Result<void> readdir(int64_t off, ReaddirFn fn) override;
  bool has_entries() const override;
  Vnode* parent_dir() const override;
  std::string_view name_of(const Vnode& child) const override;

  Result<size_t> readlink(char* buf, size_t len) override;
  Result<size_t> read(void* buf, size_t len, uint64_t off) override;
  Result<uint64_t> seek_data(uint64_t off, bool hole) override;
  Result<void> fsync() override;

  // Extended attributes (xattr.cc).
  Result<size_t> getxattr(std::string_view name, char* buf, size_t len) override;
  Result<void> setxattr(std::string_view name, const char* value, size_t len, int flags) override;
  Result<void> removexattr(std::string_view name) override;
  Result<size_t> listxattr(char* buf, size_t len, bool trusted) override;

  // Inode flags (ops.cc).
  Result<uint32_t> inode_flags() const override;
  Result<void> set_inode_flags(uint32_t flags) override;
  Result<uint32_t> generation() const override;
  Result<void> open(int flags) override;

  void getattr(Vattr& va) const override;
  Result<void> setattr(const SetAttr& sa) override;

  uint32_t ino() const { return ino_; }

  // --- writing (ops.cc, dir.cc, map.cc)
  Result<Ref<Vnode>> create(std::string_view name, const NewNode& n) override;
  Result<void> link(std::string_view name, Vnode& target) override;
  Result<void> remove(std::string_view name, Vnode& vp) override;
  Result<void> rmdir(std::string_view name, Vnode& vp) override;
  Result<void> rename(std::string_view from_name, Vnode& vp, Vnode& to_dir, std::string_view to_name,
                      Vnode* target, bool exchange) override;
  Result<size_t> write(const void* buf, size_t len, uint64_t off) override;
  Result<void> truncate(uint64_t size) override;
  // The page cache's I/O straight between its frames and the device
  // (pageio.cc).
  Result<void> read_pages(uint64_t off, size_t len, std::byte* const* pages) override;
  Result<void> write_pages(uint64_t off, size_t len, std::byte* const* pages) override;
  Result<uint32_t> reserve_page(uint64_t off) override;
  void adjust_reserved(int64_t blocks) override;
  Result<void> grow_for_cache(uint64_t size) override;
  Result<void> ungrow_for_cache(uint64_t from, uint64_t size) override;
  Result<void> fallocate(int mode, uint64_t off, uint64_t len) override;
  void touch(int which) override;

  // The inode's copy written into the inode table (with its checksum).
  Result<void> write_inode();
  // The inode table block holding the inode, and write_inode into it: a
  // change that must persist the copy whatever happens on the way (an
  // error half-way through freeing blocks) holds the block from the start,
  // so that the write cannot fail for want of it.
  Result<BufRef> inode_block();
  Result<void> write_inode_to(BufRef& ib);
  // write_inode if the copy holds a change not yet written (a size grown
  // by grow_for_cache).
  Result<void> write_inode_if_pending() { return inode_pending_ ? write_inode() : Result<void>(); }
  uint16_t links() const;
  void set_links(uint16_t n);
  // Frees the blocks and the inode of an unlinked node (its last
  // reference went).
  Result<void> release();

 private:
  friend class Ext2Mount;
  friend class Journal;
  struct InoOf {
    using type = uint32_t;
    uint32_t operator()(const Ext2Node& n) const { return n.ino_; }
  };

  Ext2Mount& em() const;
  uint32_t flags() const;
  uint64_t size() const;
  // The physical block of logical block lblk (0: a hole), and how many
  // blocks from there on are contiguous on disk (or are a hole) within
  // the same mapping unit.
  struct Mapping {
    uint64_t pblk;
    uint64_t count;
    bool unwritten = false;  // an unwritten extent (reads as zeros)
  };
  Result<Mapping> bmap(uint64_t lblk) const;
  Result<Mapping> bmap_extents(uint64_t lblk) const;
  Result<Mapping> bmap_indirect(uint64_t lblk) const;
  // Inline data (inline_data): the bytes kept in i_block and the
  // system.data attribute.
  Result<size_t> read_inline(char* out, size_t len, uint64_t off) const;
  Result<std::string_view> inline_xattr() const;
  // Calls fn(entry, position, next position) for each live entry of the
  // directory from byte position off; fn returns false to stop.
  template <class Fn>
  Result<void> for_each_entry(int64_t off, Fn fn) const;
  uint32_t rec_len(const char* blk, size_t pos) const;
  Result<void> check_dirent(const char* blk, size_t pos, size_t end, uint64_t lblk) const;
  // What check_dirent finds wrong with the entry at pos, without reporting
  // it (null: nothing).
  const char* dirent_fault(const char* blk, size_t pos, size_t end) const;
  Result<uint32_t> find_entry(std::string_view name) const;
  // Directories: the inode numbers of the entries by name, so that a
  // lookup (and the check for an existing name before a create) is a hash
  // probe instead of a walk over the directory's blocks (dir.cc). The
  // caches live in the mount (Ext2Mount::names_find), since a directory's
  // node goes with its last reference, between two lookups. Built by the
  // first lookup that walks a directory of at most kNameCacheMax bytes;
  // every change through add_entry, remove_entry and retarget_entry keeps
  // it; a change that fails part-way, or memory that runs out, drops it
  // (the next lookup walks and builds it again), and so does freeing the
  // directory's inode. "." and ".." are never in it.
  struct NameCache;
  static constexpr uint64_t kNameCacheMax = 16 * 1024;
  // This directory's cache, built if it can be (null otherwise).
  Result<NameCache*> names() const;
  void drop_names() const;
  // Keeps the cache, if any, for an entry added, removed or pointed
  // elsewhere.
  void names_put(std::string_view name, uint32_t ino) const;
  void names_erase(std::string_view name) const;
  // The block that holds the entry name, found and held before an
  // operation changes anything (rename), so that removing or retargeting
  // the entry later needs no read that could fail half-way. Empty (lblk
  // kNoLeaf) for an inline directory; ENOENT if name is absent.
  struct EntryBlock {
    uint64_t lblk = kNoLeaf;
    BufRef bh;
  };
  Result<EntryBlock> entry_block(std::string_view name);
  // The on-disk parts of add_entry, remove_entry and retarget_entry.
  Result<void> add_entry_on_disk(std::string_view name, uint32_t ino, VType t);
  Result<void> remove_entry_on_disk(std::string_view name, uint32_t ino, EntryBlock* at);
  Result<void> retarget_entry_on_disk(std::string_view name, uint32_t ino, VType t, EntryBlock* at);
  // Directory block lblk, read.
  Result<BufRef> dir_block(uint64_t lblk);
  // Where the live entry name lies in directory block blk (lblk), and the
  // entry before it (prev, if given); kNoEntry if not there (an index
  // block holds none, the index root only "." and "..").
  static constexpr size_t kNoEntry = ~size_t{0};
  Result<size_t> find_in_block(const char* blk, uint64_t lblk, std::string_view name, size_t* prev) const;
  // The entry name in the held block lblk removed, or pointed at ino
  // (type t): false if the block lacks it.
  Result<bool> remove_in(uint64_t lblk, BufRef& bh, std::string_view name, uint32_t ino);
  Result<bool> retarget_in(uint64_t lblk, BufRef& bh, std::string_view name, uint32_t ino, VType t);

  void set_size(uint64_t size);
  void add_blocks(int64_t fs_blocks);  // i_blocks bookkeeping
  void set_time(size_t sec_off, size_t extra_off, const timespec& t);
  // Mapping changes (map.cc): the physical block for a write of lblk,
  // allocated if it is a hole (fresh: the block is new, its contents
  // undefined on disk).
  Result<uint64_t> map_for_write(uint64_t lblk, bool& fresh);
  // The same for a run: the physical block of lblk and how many blocks
  // from there (at most want) follow it on disk, a hole of an
  // extent-mapped file allocated as one run (fresh).
  Result<uint64_t> map_run_for_write(uint64_t lblk, uint64_t want, uint64_t& count, bool& fresh);
  // Tree blocks allocated ahead of an insert_extent that must not fail
  // for want of them (a hole punched inside an extent of a full leaf),
  // with their buffers, so that it needs no memory either.
  struct SpareBlocks {
    uint64_t blk[7];
    BufRef buf[7];
    int n = 0;
  };
  Result<void> insert_extent(uint64_t lblk, uint64_t pblk, uint32_t len, bool unwritten,
                             SpareBlocks* spares = nullptr);
  Result<void> insert_indirect(uint64_t lblk, uint64_t pblk);
  // Frees every block from logical block first on (truncation), in as
  // many transactions as it takes (the inode on the orphan list between
  // them).
  Result<void> free_from(uint64_t first, BufRef* held = nullptr);
  // One step of freeing logical blocks [first, end) of an extent tree,
  // from the end back: the extents of one leaf in the range (freed, cut,
  // or split around a hole), the tree blocks left empty, the keys of
  // parents whose child's first key moved. True while more is left.
  Result<bool> trim_extents(uint64_t first, uint64_t end);
  // Frees the blocks of logical blocks [first, end) (punching a hole);
  // an indirect map in as many transactions as it takes.
  Result<void> free_range(uint64_t first, uint64_t end);
  // The steps of free_from and free_range: trim_extents or
  // cut_indirect_map until done; when the running transaction is full,
  // the inode (put on the orphan list first, if orphan) is written and the
  // next transaction begun. The inode's copy is written from its block,
  // held (by the caller, if held is set), even when a step fails.
  Result<void> free_in_steps(uint64_t first, uint64_t end, bool orphan, BufRef* held);
  // One step of cutting [first, end) out of an indirect map, in place:
  // true if it stopped because the running transaction is full (the map
  // consistent, more may be left).
  Result<bool> cut_indirect_map(uint64_t first, uint64_t end);
  // The same under indirect block p (level 1: pointers to data blocks,
  // the first of them for logical block base): true if p holds no
  // pointer afterwards (the caller frees it), else p's changes are
  // journaled. Sets stop when the transaction is full.
  Result<bool> cut_indirect(uint32_t p, int level, uint64_t base, uint64_t first, uint64_t end, bool& stop);
  // A write into an unwritten extent: see map.cc.
  Result<uint64_t> mark_written(uint64_t lblk);
  // Directory changes (dir.cc).
  Result<void> add_entry(std::string_view name, uint32_t ino, VType t);
  // at: the entry's block as entry_block found it, if known.
  Result<void> remove_entry(std::string_view name, uint32_t ino, EntryBlock* at = nullptr);
  Result<void> retarget_entry(std::string_view name, uint32_t ino, VType t, EntryBlock* at = nullptr);
  Result<void> deindex();
  Result<void> init_dir_block(char* blk, uint32_t parent);
  void put_rec_len(char* blk, size_t pos, uint32_t len) const;
  uint32_t usable_end() const;  // where a leaf block's entries end (before the checksum tail)
  void set_leaf_csum(char* blk) const;
  // Extended attributes (xattr.cc): the body's region (false if none;
  // init makes an empty one), the attribute block.
  bool body_region(char*& base, size_t& end, bool init);
  uint64_t xattr_block() const;
  void set_xattr_block(uint64_t b);
  Result<BufRef> read_xattr_block(uint64_t b);
  Result<void> drop_xattr_block();
  Result<void> remove_inline_xattr();
  // Moves inline data (a file's bytes, a directory's entries) out to a
  // block, leaving an ordinary inode (dir.cc).
  Result<void> uninline();
  // Leaves inline data without moving the bytes (the caller holds them):
  // an empty ordinary inode of the same size.
  Result<void> drop_inline();
  // Write-back of a regular file from its first byte, every byte in
  // frame pages[0] (size() <= a page): kept in the inode when it fits
  // (inline_data; a file without blocks becomes inline, as Linux's new
  // files may), true; else an inline file leaves inline data, false.
  Result<bool> write_inline(std::byte* const* pages);
  Result<bool> add_inline_xattr();
  Result<void> change_xattr(std::string_view name, const char* value, size_t len, int flags, bool remove);
  // Hashed directories (htree.cc). A path through the index: each
  // level's buffer, logical block, where its limit/count pair sits and
  // the entry taken.
  struct DxFrame {
    BufRef bh;
    uint64_t lblk = 0;
    size_t entries = 0;
    size_t at = 0;
    uint64_t block() const;  // the block entry at points to
  };
  static constexpr uint64_t kNoLeaf = ~uint64_t{0};
  Result<uint32_t> dx_hash(std::string_view name, uint8_t version) const;
  size_t dx_limit(bool root) const;
  void set_dx_csum(char* blk, size_t entries) const;
  Result<int> dx_probe(uint32_t hash, DxFrame* path, uint32_t& hash_version);
  Result<bool> dx_step_leaf(DxFrame* path, int levels, uint32_t* start, const uint32_t* run = nullptr);
  Result<bool> dx_next_leaf(uint32_t hash, DxFrame* path, int levels);
  // readdir in hash order (indexed, one-block and inline directories):
  // positions are hash based, so that entries moving between blocks
  // (a leaf split) are neither lost nor repeated.
  bool readdir_by_hash() const;
  Result<void> readdir_hashed(int64_t off, ReaddirFn fn);
  Result<uint64_t> dx_find(std::string_view name, uint32_t* ino_out);
  Result<BufRef> append_dir_block(uint64_t& lblk);
  bool leaf_insert(char* blk, std::string_view name, uint32_t ino, uint8_t ft);
  // The same in entries [0, end) of any area (no checksum tail).
  bool insert_dirent(char* blk, size_t end, std::string_view name, uint32_t ino, uint8_t ft) const;
  Result<void> dx_split_leaf(DxFrame* path, int levels, uint8_t version, BufRef& leaf, uint64_t leaf_lblk);
  Result<void> dx_grow(DxFrame* path, int levels);
  Result<void> dx_add(std::string_view name, uint32_t ino, uint8_t ft);
  Result<void> make_indexed();
  // Removes name (naming ino) from the leaf block lblk: false if absent.
  Result<bool> remove_in_block(uint64_t lblk, std::string_view name, uint32_t ino);
  // A new inode (ops.cc).
  Result<Ref<Vnode>> new_inode(const NewNode& n);
  // create without the retry after a commit.
  Result<Ref<Vnode>> create_once(std::string_view name, const NewNode& n);

  uint32_t ino_;
  char* raw_;  // the inode as on disk (the file system's inode size)
  // The seed of this inode's checksums (metadata_csum: from its number and
  // generation, which never changes while it lives), made at first use.
  uint32_t csum_seed() const;
  mutable uint32_t csum_seed_ = 0;
  mutable bool csum_seed_known_ = false;
  // raw_ holds a change the inode table lacks: a regular file grown by a
  // write into its page cache (grow_for_cache), or an inode write that
  // failed (write_inode_to); stored with the pages' write-back, by fsync
  // or when the last reference goes.
  bool inode_pending_ = false;
  // The inode table block, held while the node lives (from iget's read,
  // or a new inode's first write): a node's inode is written many times
  // (each setattr, the write-back's size, the link count), and a held
  // block costs no lookup and cannot fail to be had, however hard memory
  // is pressed, after an operation has changed other blocks.
  BufRef table_block_;
  bool parked_ = false;  // an orphan kept by its mount (Ext2Mount::park_orphan)
  bool kept_ = false;  // a directory held by Ext2Mount::kept_dirs_
  // Indirect maps: the map blocks that write-back will add for this
  // file's pages without blocks, each counted once in the mount's
  // reserved_ when the first such page under it reserved its room (its
  // own blocks are the page's, given back by the page cache). A map block
  // allocated takes its room from here (insert_indirect); what is left
  // goes back when the file is cut below it or the node goes. Keys:
  // index_key. Under the tree lock.
  KVec<uint64_t> promised_;
  // The map blocks lblk's path lacks that no page holds room for yet:
  // their keys into keys[] (at most 3), how many.
  Result<int> unpromised_index(uint64_t lblk, uint64_t* keys) const;
  // Where key lies in promised_ (its size if absent).
  size_t find_promise(uint64_t key) const;
  // Takes the room promised for the map block key, if it was.
  bool take_promise(uint64_t key);
  // Gives back the promises for map blocks that cover only blocks from
  // first on (the file was cut there), or all.
  void drop_promises(uint64_t first = 0);
  RefPtr<Vnode> parent_;  // directories: the directory this one was found in
  // A linear directory's last entry, where the last name went (dir.cc):
  // the next name goes there too without a scan of every entry when it
  // fits there and needs more room than any entry before it has (so the
  // scan would find the same place). Set by an insertion at the end only;
  // any other change to the directory's entries forgets it. Kept with the
  // directory's name cache, which outlives the node; none without one.
  struct Tail {
    uint64_t lblk = 0;
    uint32_t pos = 0;
    uint32_t room_before = 0;  // the most room any entry before it has
    bool known = false;
  };
  Tail* tail() const;
  void forget_tail() const {
    if (Tail* t = tail()) *t = Tail{};
  }
  boost::intrusive::unordered_set_member_hook<> hash_hook_;
};

class Ext2Mount : public Mount {
 public:
  // Parsed superblock values, fixed while mounted.
  struct Geometry {
    uint32_t block_size;
    uint32_t log_block_size;  // block_size = 1024 << log_block_size
    uint64_t blocks_count;
    uint32_t first_data_block;
    uint32_t blocks_per_group;
    uint32_t inodes_per_group;
    uint32_t inodes_count;
    uint32_t inode_size;
    uint32_t first_ino;
    uint32_t rev;
    uint32_t compat, incompat, ro_compat;
    uint32_t desc_size;
    uint32_t groups;
    uint32_t desc_per_block;
    uint32_t first_meta_bg;
    uint32_t reserved_gdt;
    uint32_t inode_table_blocks;  // per group
    uint32_t csum_seed;
    uint32_t hash_seed[4];
    uint8_t def_hash_version;
    uint32_t sb_flags;
    uint64_t r_blocks;
    uint64_t overhead_clusters;
    uint32_t journal_inum;
    uint64_t sb_byte;  // where the superblock was read
  };

  Ext2Mount(Kernel& k, FsType& t, int flags, Ref<Vnode> devvp, BlockDevice& dev);
  ~Ext2Mount() override;
  Stat statfs() override;
  // File data goes through the kernel's page cache (vfs/vnode_pager.h).
  bool caches_file_data() const override { return true; }
  // Handles: the inode number and its generation (Linux's FILEID_INO32_GEN).
  int handle_words() const override { return 2; }
  Result<Ref<Vnode>> vget(uint64_t ino, uint32_t gen) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void teardown() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);

  const Geometry& geo() const { return geo_; }
  const Vnode* device_vnode() const { return devvp_.get(); }
  bool has_csum() const { return geo_.ro_compat & ext2::kRoCompatMetadataCsum; }
  // Changes go through the journal (loaded, not noload, and started by
  // a writable mount).
  bool journaling() const { return journal_ && journal_->started(); }

  // A block of the file system through the buffer cache (EUCLEAN for a
  // block number past the end).
  Result<BufRef> bread(uint64_t blkno);
  // Block blkno of the inode table of group g, to write inode index of
  // the group into. Not read from the device when no other inode of the
  // block is in use (the inode bitmap says so): zeros then, as Linux's
  // __ext4_get_inode_loc, which also spares the read of a fresh table.
  Result<BufRef> inode_block_for_write(uint32_t g, uint32_t index, uint64_t blkno);
  // The group descriptor of group g (a pointer into its cached block).
  Result<const char*> group_desc(uint32_t g, BufRef& hold);
  // The node of inode ino: the cached one or a fresh one read from disk.
  // parent: the directory it was found in (kept by directories).
  // for_handle: an inode that is free or unreadable is ESTALE, not a
  // corruption (a file handle may name a file that went).
  Result<Ref<Vnode>> iget(uint32_t ino, Ext2Node* parent, bool for_handle = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Takes a dying node out of the table (its destructor).
  void forget(Ext2Node& n);
  // Logs a corruption and acts on the errors= behaviour; returns EUCLEAN.
  Error corrupt(const char* what, uint64_t where);
  // A failure that left a change half made, which could not be undone
  // either (a second failure on the way back): as Linux aborts its
  // journal, the mount turns read-only whatever errors= says, so that the
  // running transaction never commits and the image keeps its last
  // committed state (the next mount replays the journal). Without a
  // journal (ext2, or noload) the half-made change stays on the image,
  // which then needs e2fsck's repair: the superblock's state records the
  // error (EXT2_ERROR_FS, "clean with errors"), as Linux's ext2_error
  // does, written home at the latest by the unmount, and the mount turns
  // read-only all the same.
  void abort_changes(const char* what, uint64_t where, int error);
  // orphan_add for an inode whose last name just went: if that fails, the
  // changes are aborted (abort_changes), since an inode with no name off
  // the list would stay allocated for good should its freeing fail.
  Result<void> orphan_add_unlinked(Ext2Node& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // Gives back blocks (or an inode) a failed operation allocated and had
  // not linked; if that fails too, the changes are aborted (they would
  // stay marked in use with nothing using them).
  void undo_blocks(uint64_t b, uint64_t count);
  void undo_inode(uint32_t ino, bool dir);
  // Any other way back of a failed operation: undone is its result, and
  // a failure aborts the changes as above (what and where name it).
  void check_undo(const Result<void>& undone, const char* what, uint64_t where);
  uint32_t inode_csum_seed(uint32_t ino, uint32_t gen) const;

  Result<void> load(const char* data, const char* type);
  // After load, with no lock held: the journal's commit timer runs.
  void start_commit_timer() {
    if (journal_) journal_->start_timer();
  }

  // --- allocation and the superblock (alloc.cc); tree lock held
  bool writable() const { return writable_ && !(flags_.load() & MS_RDONLY); }
  // Allocation keeps the blocks reserved for cached pages (reserved_)
  // free, and the metadata pool too unless it must not fail (NoFail):
  // ENOSPC when only those are left. As ext4 keeps s_resv_clusters for
  // allocations with EXT4_MB_USE_RESERVED (write-back's blocks, data and
  // extent tree, and the tree blocks that splitting an extent takes), a
  // directory's blocks, xattr blocks, fallocate and writes that bypass
  // the page cache leave it, so that write-back and a punch's split still
  // find blocks on a file system that those filled.
  Result<uint64_t> alloc_block(uint64_t goal);
  // Up to want free blocks in a row from goal on (got says how many; at
  // least one), in one bitmap change.
  Result<uint64_t> alloc_run(uint64_t goal, uint32_t want, uint32_t& got);
  // Allocations that may take the metadata pool, for the scope's life.
  class NoFail {
   public:
    explicit NoFail(Ext2Mount& m) : m_(m), was_(m.alloc_nofail_) { m.alloc_nofail_ = true; }
    ~NoFail() { m_.alloc_nofail_ = was_; }
    NoFail(const NoFail&) = delete;
    NoFail& operator=(const NoFail&) = delete;

   private:
    Ext2Mount& m_;
    bool was_;
  };
  // Delayed allocation (pageio.cc): blocks set aside for cached pages not
  // yet written back. Write-back gives a run's reservation back just
  // before it allocates the run's blocks.
  uint64_t free_blocks() const;
  // The blocks ext4 keeps for metadata (s_resv_clusters: 2% of the
  // blocks, at most 4096, with extents): statfs leaves them out of
  // f_bavail, reservations out of what pages may take.
  uint64_t metadata_pool() const;
  Result<void> reserve_blocks(uint64_t n);
  void unreserve_blocks(uint64_t n);
  uint64_t reserved_blocks() const { return reserved_; }
  // Blocks freed in the running transaction stay taken until it commits:
  // commits it if there is one (true), for an allocation that found no
  // room.
  Result<bool> commit_for_space();
  Result<void> free_block(uint64_t b);
  // Blocks [b, b+count), one bitmap change per group.
  Result<void> free_run(uint64_t b, uint64_t count);
  Result<uint32_t> alloc_inode(uint32_t goal_group, bool dir);
  Result<void> free_inode(uint32_t ino, bool dir);
  // The superblock copy into its buffer (journaled once the journal runs).
  Result<void> write_super();
  Result<void> sync_fs();
  // fsync and fdatasync: the running transaction committed (and file
  // data written), or everything written back without a journal.
  Result<void> fsync_fs();
  // A changed metadata buffer (into the running transaction) and a
  // changed file-data buffer (written in place; journaled with
  // data=journal).
  Result<void> dirty_meta(BufRef& b);
  Result<void> dirty_data(BufRef& b);
  // Before each operation that changes the file system (and each step of
  // a long one): makes room in the journal.
  Result<void> begin_op();
  // A long operation should reach a consistent state and call begin_op.
  bool step_due() const { return journal_ && journal_->reserve_would_commit(); }
  uint32_t next_generation() { return generation_++; }
  // user.* attributes allowed (user_xattr).
  bool user_xattr() const { return user_xattr_; }
  // Sets a compatible feature bit in the superblock (ext_attr on first use).
  Result<void> set_compat(uint32_t bit);
  Result<void> sync() override { return sync_fs(); }

  // name_of's answer (see dir.cc); guarded by the tree lock.
  char name_scratch_[kNameMax + 1];

 private:
  Result<void> parse_options(const char* data, const char* type);
  Result<void> read_super();
  Result<void> check_features(const char* type);
  Result<void> check_groups();
  uint64_t desc_block(uint32_t g) const;
  uint64_t group_overhead() const;
  // Lets go of the descriptor blocks held since their first use.
  void drop_desc_blocks();

  Ref<Vnode> devvp_;
  BlockDevice& dev_;
  BufCache& bc_;
  Geometry geo_{};
  char* sb_raw_ = nullptr;  // the superblock bytes (1024)
  // The group descriptor blocks, each held from its first use until the
  // mount goes (as Linux keeps them): a descriptor is read or changed by
  // every allocation and freeing, and a held block costs no lookup.
  // desc_held_ entries, one per descriptor block; null until the first.
  BufRef* desc_held_ = nullptr;
  uint32_t desc_held_count_ = 0;
  // Where each group's bitmaps may have a clear bit: every bit clear in
  // the block bitmap of group g lies at or past clear_hint_[2 * g], every
  // one clear in its inode bitmap past clear_hint_[2 * g + 1]. A search
  // starts there (a filled group is not scanned from its start again for
  // each allocation); a freeing lowers the hint, an allocation moves it to
  // the first clear bit. Made at the first allocation and dropped with the
  // descriptor blocks; without it (no memory) a search starts at 0.
  uint32_t* clear_hint_ = nullptr;
  uint32_t clear_hint(uint32_t g, bool inode) const { return clear_hint_ ? clear_hint_[2 * g + inode] : 0; }
  void hint_taken(uint32_t g, bool inode, const char* map, uint32_t end);
  void hint_freed(uint32_t g, bool inode, uint32_t bit) {
    if (clear_hint_ && bit < clear_hint_[2 * g + inode]) clear_hint_[2 * g + inode] = bit;
  }
  int errors_ = ext2::kErrorsContinue;
  int errors_opt_ = -1;  // an errors= option, or none (-1): the superblock decides
  bool noload_ = false;
  int user_xattr_opt_ = -1;  // user_xattr (1), nouser_xattr (0), neither (-1)
  bool user_xattr_ = true;
  uint64_t sb_opt_ = 1;  // sb=N: in 1 KiB units
  uint64_t jblocks_ = 0;  // blocks of an internal journal
  Journal* journal_ = nullptr;  // owned; loaded unless noload
  DataMode data_mode_ = DataMode::kOrdered;
  uint32_t commit_secs_ = 5;
  Result<void> load_journal() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // The orphan list (ops.cc).
  Result<void> orphan_add(Ext2Node& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // The blocks that taking n off the orphan list and freeing its inode
  // read (the superblock's, the inode before n on the list, n's group
  // descriptor and inode bitmap), held so that those steps find them.
  struct ReleaseHold {
    BufRef sb, prev, desc, bitmap;
  };
  Result<ReleaseHold> hold_for_release(Ext2Node& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // An unlinked inode is still in use (in memory).
  bool orphans_in_use() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  Result<void> orphan_del(Ext2Node& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  bool on_orphan_list(uint32_t ino) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  Result<void> process_orphans() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  // One orphan at mount: freed, or (still linked) cut to its size.
  Result<void> process_orphan(Ext2Node& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  Result<void> process_orphan_file() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  bool allow_deleted_ = false;  // iget of an orphan at mount
  uint64_t reserved_ = 0;  // blocks (tree lock)
  bool alloc_nofail_ = false;  // a NoFail scope is open (tree lock)
  void sum_free_counts();
  bool writable_ = false;  // the driver writes this image (features allow)
  uint32_t generation_ = 1;
  bool torn_down_ = false;
  // abort_changes without a journal: the superblock's state on the
  // device says the file system has errors.
  Result<void> record_error();
  bool error_recorded_ = false;  // it did so
  // The superblock's state when mounted: without a journal, an image
  // that was not clean then is not clean after the unmount either.
  uint16_t mount_state_ = 0;
  // Orphans whose freeing failed when their last reference went: kept in
  // memory (a copy of the node in the table, marked parked, holding its
  // own creation reference), since the orphan list is walked through the
  // nodes of its inodes; let go at unmount, which frees them (or the next
  // mount does). drop_parked, at the unmount, lets them go and parks
  // none from then on (unmounting_).
  void park_orphan(Ext2Node& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void drop_parked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  bool unmounting_ = false;
  // The directories last found by a lookup, held (as Linux's inode cache
  // keeps them) so that the walks through them do not read and check
  // their inodes again each time: kKeptDirs of them, the oldest let go
  // for the next. One unlinked is let go at once (its freeing waits for
  // its last reference); all go at the unmount.
  static constexpr size_t kKeptDirs = 16;
  void keep_dir(Ext2Node& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void unkeep_dir(Ext2Node& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  void drop_kept_dirs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  RefPtr<Vnode> kept_dirs_[kKeptDirs] ABSL_GUARDED_BY(lock_);
  size_t kept_next_ ABSL_GUARDED_BY(lock_) = 0;
  // Group descriptor and bitmap bookkeeping (alloc.cc).
  void set_gd_csum(uint32_t g, char* d);
  void set_bitmap_csum(char* d, const char* bitmap, bool inode);
  Result<void> init_block_bitmap(uint32_t g, char* bitmap);
  uint64_t group_first_block(uint32_t g) const;
  uint32_t group_blocks(uint32_t g) const;
  void add_free_blocks(int64_t n);
  void add_free_inodes(int64_t n);
  friend class Ext2Node;
  IntrusiveHash<Ext2Node, &Ext2Node::hash_hook_, Ext2Node::InoOf> nodes_ ABSL_GUARDED_BY(lock_);
  // Directories' name caches (Ext2Node::NameCache, dir.cc) by inode
  // number, at most kMaxNameCaches, the least recently used going first.
  // Under the tree lock.
  struct NameCaches;
  static constexpr size_t kMaxNameCaches = 256;
  NameCaches* name_caches_ = nullptr;
  Ext2Node::NameCache* names_find(uint32_t dir);
  // Takes c in (the least recently used goes past kMaxNameCaches): c, or
  // null when there is no memory for the table (c is freed).
  Ext2Node::NameCache* names_adopt(Ext2Node::NameCache* c);
  void names_drop(uint32_t dir);
  void names_drop_all();
};

}  // namespace rump
