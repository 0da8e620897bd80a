// journal.h: the jbd2 journal of an ext3/ext4 file system (an internal
// journal in an inode): replay at mount and journaled writes.
//
// Who calls: Ext2Mount (fs/ext2), with its tree lock held for every call
// except the commit timer's own entry, which takes that lock itself. The
// tree lock guards all the state below (as it guards the file system's
// blocks), which is why the fields carry no annotation of their own.
//
// On disk (all big-endian): block 0 of the journal is its superblock
// (s_first, s_maxlen, s_sequence: the first transaction to replay,
// s_start: where it begins, 0 when the journal is empty). The log is a
// ring of blocks [s_first, s_maxlen). A transaction is one or more
// descriptor blocks, each followed by the copies of the blocks its tags
// name, revoke blocks (blocks whose earlier copies must not be replayed),
// and a commit block; each header carries the transaction's sequence.
//
// Writing. Every operation's metadata changes go into the running
// transaction: dirty buffers are pinned (dev/buf.h) so that they stay off
// their home blocks until the transaction is committed. A commit writes
// file data first (data=ordered: every unpinned dirty buffer is flushed,
// which also writes committed metadata home), then descriptors, copies,
// revokes and the commit block, with a device sync before and after the
// commit block; then the buffers are unpinned and reach home with the next
// flush. A checkpoint (right after a commit, when nothing is pinned)
// flushes everything and moves the journal's tail to its head. Commits
// happen when the commit interval expires (a callout), when the
// transaction grows past a quarter of the journal or (under a memory
// limit) its pinned buffers past an eighth of the limit, before an
// operation that might not fit, and on fsync, syncfs, sync and unmount;
// checkpoints when less than a quarter of the log is free, on syncfs, sync
// and unmount, and before a commit that does not fit the free log (an
// operation larger than the reserve; only one larger than the whole log
// is ENOSPC).
//
// Version 1 journals (old ext3) are written too: 32-bit tags, no
// checksums, no revoke records (a commit that frees a block with a copy
// in the live log checkpoints instead).
//
// A freed block that has a copy in the live log gets a revoke record; a
// block freed in the running transaction is not handed out again before
// that transaction is committed (the allocator consults the bitmap as it
// was at the last commit), so that in-place data writes never land on a
// block that the committed state still uses.
#pragma once

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/unordered_set_hook.hpp>

#include <atomic>
#include <cstdint>

#include "base/intrusive_hash.h"
#include "base/kmem.h"
#include "base/result.h"
#include "dev/blockdev.h"
#include "dev/buf.h"
#include "kern/callout.h"

namespace rump {

class Ext2Mount;
class Ext2Node;

namespace jbd2 {
inline constexpr uint32_t kMagic = 0xC03B3998;
enum : uint32_t { kDescriptor = 1, kCommit = 2, kSuperV1 = 3, kSuperV2 = 4, kRevoke = 5 };
inline constexpr uint32_t kCompatChecksum = 0x1;
inline constexpr uint32_t kIncompatRevoke = 0x1, kIncompat64bit = 0x2, kIncompatAsyncCommit = 0x4,
                          kIncompatCsumV2 = 0x8, kIncompatCsumV3 = 0x10, kIncompatFastCommit = 0x20;
inline constexpr uint32_t kIncompatKnown =
    kIncompatRevoke | kIncompat64bit | kIncompatAsyncCommit | kIncompatCsumV2 | kIncompatCsumV3;
// Tag flags.
inline constexpr uint32_t kTagEscape = 1, kTagSameUuid = 2, kTagDeleted = 4, kTagLastTag = 8;
// Superblock fields.
inline constexpr size_t kSbBlocksize = 0x0C, kSbMaxlen = 0x10, kSbFirst = 0x14, kSbSequence = 0x18,
                        kSbStart = 0x1C, kSbErrno = 0x20, kSbCompat = 0x24, kSbIncompat = 0x28,
                        kSbRoCompat = 0x2C, kSbUuid = 0x30, kSbChecksumType = 0x50, kSbChecksum = 0xFC;
inline constexpr size_t kSbSize = 1024;
// Commit block fields.
inline constexpr size_t kCommitChksumType = 0x0C, kCommitChksumSize = 0x0D, kCommitChksum = 0x10,
                        kCommitSec = 0x30, kCommitNsec = 0x38;
inline constexpr size_t kHeader = 12;
}  // namespace jbd2

enum class DataMode : uint8_t { kOrdered, kWriteback, kJournal };

class Journal : public KObject {
 public:
  Journal(Ext2Mount& m, BufCache& bc, BlockDevice& dev, Kmem& km);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Reads the journal inode's block map and the journal superblock.
  // EINVAL for a journal this driver cannot use, EUCLEAN when damaged.
  Result<void> load(Ext2Node& jnode);
  // The journal holds transactions to replay (s_start != 0).
  bool needs_recovery() const { return start_ != 0; }
  // Replays every committed transaction into the file system (through the
  // buffer cache, flushed before it returns) honouring revoke records,
  // then marks the journal empty.
  Result<void> recover();
  // Marks the journal empty without replaying it.
  Result<void> wipe();

  // --- writing (after load/recover, on a writable mount)
  // Sets the features this driver writes by and opens the log (s_start =
  // s_first) so that a crash from now on leaves it to replay.
  Result<void> start(DataMode mode, uint32_t commit_seconds);
  bool started() const { return started_; }
  // Arms the commit timer; call with no lock held, after start().
  void start_timer();
  DataMode mode() const { return mode_; }
  // Puts a dirty metadata buffer into the running transaction.
  Result<void> add(const BufRef& b);
  // Block blk was freed: its copies in the log must not be replayed.
  Result<void> forget(uint64_t blk);
  // Before an operation (or each step of a long one): commits (and
  // checkpoints) first when the running transaction could not take
  // another step, and makes the records the step may need (ENOMEM here,
  // before anything changed, rather than in add()).
  Result<void> reserve();
  bool reserve_would_commit() const;
  // Nothing to commit.
  bool idle() const { return running_.empty() && revokes_.empty(); }
  // Commits the running transaction; checkpoint: also writes everything
  // home and empties the log.
  Result<void> commit(bool checkpoint);
  // Unmount: stops the timer (the caller's tree lock is dropped while it
  // waits for a running tick), commits, checkpoints and marks the
  // journal empty (s_start = 0); !write (the mount went read-only on an
  // error): drops the running transaction instead.
  Result<void> stop(bool write);

  // The block bitmap of a group as it was at the last commit, if a block
  // of that group was freed since (an allocation must find the bit clear
  // there too), else nullptr.
  const char* committed_bitmap(uint32_t group) const;
  // Keeps a copy of group's bitmap before the first free of the running
  // transaction clears a bit in it.
  Result<void> freeze_bitmap(uint32_t group, const char* bitmap, uint32_t bytes);

 private:
  // A block of the file system journaled in the running transaction, or
  // with a copy in the live log, or revoked in the running transaction.
  struct Record : KObject {
    uint64_t blkno = 0;
    BufRef pin;            // while in the running transaction
    bool running = false;  // in the running transaction (pinned)
    bool logged = false;   // a committed copy in the live log
    bool revoke = false;   // revoked by the running transaction
    Record* next_spare = nullptr;  // on the spare list (spare_)
    boost::intrusive::unordered_set_member_hook<> hash_hook;
    boost::intrusive::list_member_hook<> list_hook;  // running_ or revokes_
    struct KeyOf {
      using type = uint64_t;
      uint64_t operator()(const Record& r) const { return r.blkno; }
    };
  };
  using RecordList = boost::intrusive::list<
      Record, boost::intrusive::member_hook<Record, boost::intrusive::list_member_hook<>, &Record::list_hook>,
      boost::intrusive::constant_time_size<true>>;
  struct Frozen : KObject {
    uint32_t group = 0;
    char* bits = nullptr;
    boost::intrusive::unordered_set_member_hook<> hash_hook;
    struct KeyOf {
      using type = uint32_t;
      uint32_t operator()(const Frozen& f) const { return f.group; }
    };
  };
  // A revoke record read back at replay: the last transaction revoking blk.
  struct Revoked : KObject {
    uint64_t blkno = 0;
    uint32_t tid = 0;
    boost::intrusive::unordered_set_member_hook<> hash_hook;
    struct KeyOf {
      using type = uint64_t;
      uint64_t operator()(const Revoked& r) const { return r.blkno; }
    };
  };
  // A run of the journal inode's block map.
  struct Extent {
    uint64_t lblk, pblk, count;
  };
  enum class Pass { kScan, kRevoke, kReplay };

  // The file-system block holding log block lb.
  uint64_t phys(uint64_t lb) const;
  Result<void> read_log(uint64_t lb, char* buf);
  Result<void> write_log(uint64_t lb, const char* buf);
  // Log blocks gathered into vectored writes: add sends what is gathered
  // first when lb's block does not follow it on the device. The bytes
  // must stay put until submit.
  class LogRun {
   public:
    explicit LogRun(Journal& j) : j_(j) {}
    Result<void> add(uint64_t lb, const char* buf);
    Result<void> submit();

   private:
    static constexpr size_t kMaxSegments = 256;
    Journal& j_;
    uint64_t first_ = 0;  // file-system block of the first
    size_t n_ = 0;
    BlockDevice::Segment seg_[kMaxSegments];
  };
  uint64_t wrap(uint64_t lb) const { return lb >= maxlen_ ? first_ + (lb - maxlen_) : lb; }
  uint64_t capacity() const { return maxlen_ - first_; }
  uint64_t used() const { return (head_ + capacity() - tail_) % capacity(); }
  uint32_t tag_bytes() const;
  uint32_t tags_per_descriptor() const;
  uint32_t revokes_per_block() const;
  bool csum() const { return incompat_ & (jbd2::kIncompatCsumV2 | jbd2::kIncompatCsumV3); }
  // Log blocks the running transaction takes when committed.
  uint64_t running_blocks() const;
  // The running transaction's pinned buffers take more than 1/kPinnedShare
  // of the kernel's memory limit.
  static constexpr size_t kPinnedShare = 8;
  bool pinned_too_much() const;
  Result<void> write_super();
  Result<void> do_pass(Pass pass, uint32_t& end_tid, uint64_t& replayed);
  Result<void> checkpoint();
  void drop_frozen();
  void arm_timer();
  static void tick(void* arg);

  Ext2Mount& m_;
  BufCache& bc_;
  BlockDevice& dev_;
  Kmem& km_;
  uint32_t bs_ = 0;
  char* sb_ = nullptr;       // the journal superblock (kSbSize bytes)
  char* scratch_ = nullptr;  // one block for descriptors, copies, commit blocks
  char* scratch2_ = nullptr;
  Extent* map_ = nullptr;
  size_t map_len_ = 0;
  uint32_t type_ = 0;  // kSuperV1 or kSuperV2
  uint32_t compat_ = 0, incompat_ = 0;
  uint64_t first_ = 0, maxlen_ = 0, start_ = 0;
  uint32_t sequence_ = 0;  // s_sequence
  uint32_t csum_seed_ = 0;
  // The log: committed transactions live in [tail_, head_).
  uint64_t head_ = 0, tail_ = 0;
  uint32_t tid_ = 0;  // the running transaction's sequence
  bool started_ = false;
  bool closing_ = false;
  bool timer_ready_ = false;
  std::atomic<bool> timer_armed_{false};  // see arm_timer
  // A version 1 journal freed a block with a copy in the live log: the
  // next commit checkpoints (there are no revoke records to write).
  bool checkpoint_due_ = false;
  DataMode mode_ = DataMode::kOrdered;
  int64_t interval_ns_ = 0;
  Callout timer_;
  IntrusiveHash<Record, &Record::hash_hook, Record::KeyOf> records_;
  RecordList running_;
  RecordList revokes_;
  size_t logged_count_ = 0;
  IntrusiveHash<Frozen, &Frozen::hash_hook, Frozen::KeyOf> frozen_;
  IntrusiveHash<Revoked, &Revoked::hash_hook, Revoked::KeyOf> revoked_;
  // Records made ahead, so that journaling a buffer an operation has
  // changed never fails for want of memory (it cannot be undone): reserve()
  // keeps kSpareRecords of them, as many as an operation's room in the
  // log, before the operation changes anything; records that go come back
  // here while it holds fewer.
  static constexpr size_t kSpareRecords = 256;
  Record* spare_ = nullptr;
  size_t nspare_ = 0;
  Result<void> fill_spares();
  Record* take_record();
  // r (cleared, or fresh) onto the spare list.
  void push_spare(Record* r);
  void drop_record(Record* r);
};

}  // namespace rump
