// page_io.h: what a file system offers a write-back page cache
// (vfs/vnode_pager.h) beyond a vnode's read and write: page I/O straight
// between the cache's frames and the device, and the block reservations
// of delayed allocation. A file system's vnode class implements it next
// to Vnode (ext2/3/4: Ext2Node); the cache finds it when it is made
// (page_io_of) and otherwise goes through read and write.
//
// Every call is made with the vnode's tree lock held.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/result.h"

namespace rump {

class Vnode;

class PageIo {
 public:
  // The bytes [off, off+len) of a regular file to or from the page frames
  // pages[0], pages[1] ... (4096 bytes each; off page aligned, the end may
  // fall inside the last frame). read_pages fills the frames (zeros for
  // holes and past the end of the file); write_pages stores them,
  // allocating what is a hole, up to the end of the file. EOPNOTSUPP:
  // not for this file (the cache then uses read and write).
  virtual Result<void> read_pages(uint64_t off, size_t len, std::byte* const* pages) = 0;
  virtual Result<void> write_pages(uint64_t off, size_t len, std::byte* const* pages) = 0;
  // Delayed allocation: reserve_page sets room aside for the blocks of
  // the page at off that have none yet, and says how many blocks that was
  // (0: none needed), so that a full file system is ENOSPC at write(2) or
  // at the write fault of a shared mapping, not at write-back.
  // adjust_reserved gives back (blocks < 0) or takes again (blocks > 0,
  // unchecked) that many reserved blocks.
  virtual Result<uint32_t> reserve_page(uint64_t off) = 0;
  virtual void adjust_reserved(int64_t blocks) = 0;
  // write(2) into the cache grows the file to size (larger than it is),
  // with new modification and change times. The file system may keep the
  // change in its in-memory inode and store it with the pages
  // (write_pages), once per write-back rather than once per write, as
  // Linux keeps i_size ahead of i_disksize; it is stored at the latest
  // by fsync and when the file's last reference goes.
  virtual Result<void> grow_for_cache(uint64_t size) = 0;
  // The growth taken back when write(2)'s bytes did not all reach the
  // cache (no memory for a page): the file, grown from `from`, ends at
  // size again (from <= size < its size). A growth kept in memory is
  // undone there, so that the undoing needs no memory and no block read,
  // which a truncation would (the failure that stopped the write may
  // still be there).
  virtual Result<void> ungrow_for_cache(uint64_t from, uint64_t size) = 0;

 protected:
  ~PageIo() = default;
};

// vp's page I/O, or null.
PageIo* page_io_of(Vnode& vp);

}  // namespace rump
