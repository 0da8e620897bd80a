// Ext2Mount::abort_changes, forced: an operation changes the image, then
// fails for want of space (ENOSPC, no injection needed), and one injected
// failure (rump_fault_fail_nth) on its way back keeps what it changed from
// being undone. The driver promises (fs/ext2/ext2.h): the operation fails
// with its own errno, a kernel message names what was left half made and
// the error that kept it so, the mount turns read-only (every later change
// is EROFS, reads go on) and unmounts; with a journal the image keeps its
// last committed state (e2fsck-clean once replayed, the operation gone);
// without one the superblock records the error ("with errors") and the
// image needs e2fsck's repair, after which it is clean and mounts
// writable.
//
// Which hypercall to fail is found by sweeping n = 1, 2, ... (each run on
// a fresh copy of the image in a fresh kernel) until the operation runs
// with none left to fail; each test requires that some run aborted. The
// buffer cache is under pressure, so that blocks let go are read again:
// reads that can fail.
#include <sys/statvfs.h>

#include <functional>
#include <string>

#include "ext2_test_util.h"

using namespace ext2_test;

namespace {

// What the n-th run of a sweep saw.
struct Run {
  bool fired = false;  // the n-th hypercall was made and failed
  int error = 0;  // the operation's errno, 0 if it succeeded
  std::string messages;  // the kernel's, after the operation
  bool aborted() const { return messages.find("remounting filesystem read-only") != std::string::npos; }
};

// Runs op on a copy of img mounted as type in a fresh kernel, its n-th
// injectable hypercall failing, for n = 1, 2, ... until none fails. op
// returns 0 or the errno of its failed call: its own error (own, with no
// failure injected, and when the injected failure only kept it from
// undoing its change) or the injected failure's (ENOMEM, EIO). aborted(run)
// then looks at the same kernel, still mounted, when the run aborted the
// mount's changes, and after(run) at the copy of every run once unmounted
// and the kernel halted (which checks for leaks). Returns how many runs
// aborted.
int sweep(const std::string& img, const std::string& copy, const char* type, const std::function<int()>& op,
          int own, const std::function<void(const Run&)>& aborted, const std::function<void(const Run&)>& after) {
  int aborts = 0;
  for (unsigned n = 1;; n++) {
    if (n == 2000) FAIL("no end to the failure points");
    REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(copy)) == 0);
    Run r;
    INFO("n = " << n);
    {
      Mounted m(copy, type, 0);
      REQUIRE(m.mount_result == 0);
      REQUIRE(rump_kernel_set_cache_pressure(nullptr, 1) == 0);
      rump_fault_fail_nth(n);
      r.error = op();
      r.fired = rump_fault_fail_nth_fired() != 0;
      rump_fault_fail_nth(0);
      r.messages = kernel_messages();
      INFO("errno " << r.error << ", kernel messages:\n" << r.messages);
      CHECK((r.error == own || r.error == ENOMEM || r.error == EIO));
      if (!r.fired) CHECK_FALSE(r.aborted());
      if (!r.fired || r.aborted()) CHECK(r.error == own);
      if (r.aborted()) aborted(r);
      REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
    }
    INFO("errno " << r.error << ", kernel messages:\n" << r.messages);
    after(r);
    aborts += r.aborted();
    if (!r.fired) return aborts;
  }
}

// The abort's message for what (at where), with its error: "EXT4-fs
// error (device T): what (where): error E", then ": aborting the journal"
// when there is one.
bool reports_abort(const Run& r, const std::string& what, const std::string& where, int error, bool journal) {
  std::string line = what + " (" + where + "): error " + std::to_string(error);
  size_t at = r.messages.find(line);
  if (at == std::string::npos) return false;
  bool says_journal = r.messages.compare(at + line.size(), 22, ": aborting the journal") == 0;
  return says_journal == journal;
}

// The number in the abort's message for what: "what (where)".
std::string named_in(const Run& r, const std::string& what) {
  size_t at = r.messages.find(what + " (");
  if (at == std::string::npos) return "";
  at += what.size() + 2;
  return r.messages.substr(at, r.messages.find(')', at) - at);
}

// The mount refuses every change and still reads file.
void check_refuses_changes(const char* file, const std::string& content) {
  struct statfs sf;
  REQUIRE(rump_sys_statfs("/mnt", &sf) == 0);
  CHECK((sf.f_flags & ST_RDONLY) != 0);
  CHECK_ERRNO(EROFS, rump_sys_mkdir("/mnt/other", 0755));
  CHECK_ERRNO(EROFS, rump_sys_open(file, O_WRONLY));
  CHECK_ERRNO(EROFS, rump_sys_unlink(file));
  std::string got;
  CHECK(rump_read_all(file, got));
  CHECK((got == content));
}

// Free blocks and inodes of the mounted file system, as statfs counts them.
struct Free {
  uint64_t blocks, inodes;
};
Free statfs_free() {
  struct statfs sf;
  REQUIRE(rump_sys_statfs("/mnt", &sf) == 0);
  return {sf.f_bfree, sf.f_ffree};
}

std::string fill_slot(int i) { return "/mnt/fill/" + std::to_string(i); }

// Takes every free block of the mounted file system, so that the next
// allocation is ENOSPC: most by one file (its data and map blocks), the
// rest by symlinks of a block each, named fill_slot(0, 1, ...) in a
// directory first given room for their names (links to file, removed
// again), so that they take no directory block.
void fill_up(const char* file) {
  constexpr int kSlots = 100;
  REQUIRE(rump_sys_mkdir("/mnt/fill", 0755) == 0);
  for (int i = 0; i < kSlots; i++) REQUIRE(rump_sys_link(file, fill_slot(i).c_str()) == 0);
  for (int i = 0; i < kSlots; i++) REQUIRE(rump_sys_unlink(fill_slot(i).c_str()) == 0);
  REQUIRE(rump_sys_sync() == 0);
  struct statfs sf;
  REQUIRE(rump_sys_statfs("/mnt", &sf) == 0);
  REQUIRE(sf.f_bfree > kSlots);
  std::string bulk((sf.f_bfree - kSlots / 2) * sf.f_bsize, 'b');
  int fd = rump_sys_open("/mnt/bulk", O_CREAT | O_WRONLY, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(rump_sys_write(fd, bulk.data(), bulk.size()) == static_cast<long>(bulk.size()));
  REQUIRE(rump_sys_fsync(fd) == 0);
  REQUIRE(rump_sys_close(fd) == 0);
  const std::string slow(100, 's');  // too long for the inode: a block
  int links = 0;
  while (rump_sys_symlink(slow.c_str(), fill_slot(links).c_str()) == 0) links++;
  REQUIRE(errno == ENOSPC);
  REQUIRE(links > 0);
  REQUIRE(links < kSlots);
  REQUIRE(rump_sys_sync() == 0);
  REQUIRE(statfs_free().blocks == 0);
}

std::string long_name(int i) {
  std::string n(255, 'n');
  std::string tag = std::to_string(i);
  return n.replace(0, tag.size(), tag);
}

// Inodes per block of the inode table of img.
uint32_t inodes_per_table_block(const std::string& img, uint32_t block_size) {
  std::string out = capture("dumpe2fs -h " + shell_quote(img) + " 2>/dev/null");
  size_t at = out.find("Inode size:");
  REQUIRE(at != std::string::npos);
  uint32_t size = static_cast<uint32_t>(std::stoul(out.substr(at + 11)));
  REQUIRE(size > 0);
  return block_size / size;
}

}  // namespace

// mkdir allocates the new directory's inode, then finds no block for it
// (ENOSPC): the inode, its link count 0, goes on the orphan list to be
// freed (ops.cc). Putting it there writes it into its inode table block,
// which another inode in use shares: the block is read then, and when
// that read fails the inode can be neither listed nor freed: the changes
// are aborted. Without a journal the inode stays marked in use with
// nothing in its slot of the table, which e2fsck -fn reports and -fy
// repairs.
TEST_CASE("a new directory's inode that gets no block and cannot be put on the orphan list aborts the changes",
          "[ext2][fault][abort]") {
  struct Config {
    const char* type;
    bool journal;
  } configs[] = {{"ext2", false}, {"ext3", true}};
  for (const Config& c : configs) {
    DYNAMIC_SECTION(c.type) {
      TempDir tmp;
      std::string img = tmp.path + "/img", copy = tmp.path + "/copy";
      REQUIRE(make_image(img, c.type, 4096, "", 8));
      const uint32_t per = inodes_per_table_block(img, 4096);
      const std::string kept = "kept\n";
      Free before{};
      uint64_t next_ino = 0;
      {
        Mounted m(img, c.type, 0);
        REQUIRE(m.mount_result == 0);
        int fd = rump_sys_open("/mnt/kept", O_CREAT | O_WRONLY, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(rump_sys_write(fd, kept.data(), kept.size()) == static_cast<long>(kept.size()));
        REQUIRE(rump_sys_close(fd) == 0);
        fill_up("/mnt/kept");
        // The next inode shares its table block with one in use (the
        // inodes before it are): empty files (no block) until it is not
        // the first of its block.
        for (int i = 0;; i++) {
          std::string p = "/mnt/empty" + std::to_string(i);
          fd = rump_sys_open(p.c_str(), O_CREAT | O_WRONLY, 0644);
          REQUIRE(fd >= 0);
          REQUIRE(rump_sys_close(fd) == 0);
          struct stat st;
          REQUIRE(rump_sys_stat(p.c_str(), &st) == 0);
          if ((st.st_ino - 1) % per == 0) continue;
          REQUIRE(rump_sys_unlink(p.c_str()) == 0);
          next_ino = st.st_ino;
          break;
        }
        REQUIRE(next_ino > per);  // not in the root directory's table block
        REQUIRE(rump_sys_sync() == 0);
        // Without a failure mkdir is ENOSPC and takes nothing.
        before = statfs_free();
        CHECK_ERRNO(ENOSPC, rump_sys_mkdir("/mnt/new", 0755));
        REQUIRE(rump_sys_sync() == 0);
        CHECK(statfs_free().inodes == before.inodes);
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      REQUIRE(fsck_problems(img) == "");
      int aborts = sweep(
          img, copy, c.type, [] { return rump_sys_mkdir("/mnt/new", 0755) == 0 ? 0 : errno; }, ENOSPC,
          [&](const Run& r) {
            // The message names the new inode and the injected failure.
            std::string what = "an unlinked inode could not be put on the orphan list";
            CHECK(named_in(r, what) == std::to_string(next_ino));
            CHECK((reports_abort(r, what, std::to_string(next_ino), EIO, c.journal) ||
                   reports_abort(r, what, std::to_string(next_ino), ENOMEM, c.journal)));
            check_refuses_changes("/mnt/kept", kept);
          },
          [&](const Run& r) {
            CHECK(records_errors(copy) == (r.aborted() && !c.journal));
            if (r.aborted() && !c.journal) {
              CHECK(fsck_problems(copy) != "");
              CHECK(fsck_repair(copy) <= 1);
              CHECK(fsck_problems(copy) == "");
              CHECK_FALSE(records_errors(copy));
            }
            // The last committed state (replayed) or e2fsck's repair: no
            // new directory, no inode taken, writable.
            Mounted m(copy, c.type, 0);
            REQUIRE(m.mount_result == 0);
            struct stat st;
            CHECK_ERRNO(ENOENT, rump_sys_stat("/mnt/new", &st));
            CHECK(statfs_free().inodes == before.inodes);
            std::string got;
            CHECK(rump_read_all("/mnt/kept", got));
            CHECK((got == kept));
            CHECK(rump_sys_unlink(fill_slot(0).c_str()) == 0);
            REQUIRE(rump_sys_sync() == 0);  // the block it freed committed
            CHECK(rump_sys_mkdir("/mnt/new", 0755) == 0);
            REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
            CHECK(fsck_problems(copy) == "");
          });
      CHECK(aborts > 0);
    }
  }
}

// A directory whose twelve direct blocks are full, on a file system with
// one free block: a new name takes it for the directory's thirteenth
// block, finds none for the indirect block that must map it (ENOSPC),
// and gives it back (map_for_write's undo_blocks). With a journal that
// freeing needs memory (the bitmap as last committed, kept until the
// commit): when it fails, the block would stay allocated with nothing
// mapping it, and the changes are aborted.
TEST_CASE("a block a failed link allocated that cannot be freed again aborts the changes, the journal keeping the "
          "last committed state",
          "[ext2][fault][abort]") {
  TempDir tmp;
  std::string img = tmp.path + "/img", copy = tmp.path + "/copy";
  // Linear directories (no dir_index), 1 KiB blocks: three names of 255
  // bytes fill a block.
  REQUIRE(make_image(img, "ext3", 1024, "", 4, "-O ^dir_index"));
  constexpr int kNames = 36;
  const std::string target = "target\n";
  {
    Mounted m(img, "ext3", 0);
    REQUIRE(m.mount_result == 0);
    REQUIRE(rump_sys_mkdir("/mnt/d", 0755) == 0);
    int fd = rump_sys_open("/mnt/t", O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, target.data(), target.size()) == static_cast<long>(target.size()));
    REQUIRE(rump_sys_close(fd) == 0);
    for (int i = 0; i < kNames; i++) REQUIRE(rump_sys_link("/mnt/t", ("/mnt/d/" + long_name(i)).c_str()) == 0);
    struct stat st;
    REQUIRE(rump_sys_stat("/mnt/d", &st) == 0);
    REQUIRE(st.st_size == 12 * 1024);
    fill_up("/mnt/t");
    // One block free (and allocatable: committed).
    REQUIRE(rump_sys_unlink(fill_slot(0).c_str()) == 0);
    REQUIRE(rump_sys_sync() == 0);
    REQUIRE(statfs_free().blocks == 1);
    // Without a failure the new name is ENOSPC and the block goes back.
    CHECK_ERRNO(ENOSPC, rump_sys_link("/mnt/t", ("/mnt/d/" + long_name(kNames)).c_str()));
    REQUIRE(rump_sys_sync() == 0);
    REQUIRE(statfs_free().blocks == 1);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  REQUIRE(fsck_problems(img) == "");
  const std::string fresh = "/mnt/d/" + long_name(kNames);
  int aborts = sweep(
      img, copy, "ext3", [&] { return rump_sys_link("/mnt/t", fresh.c_str()) == 0 ? 0 : errno; }, ENOSPC,
      [&](const Run& r) {
        // The message names the block and the freeing's error.
        std::string what = "blocks allocated could not be freed";
        std::string blk = named_in(r, what);
        CHECK(!blk.empty());
        CHECK(reports_abort(r, what, blk, ENOMEM, true));
        check_refuses_changes("/mnt/t", target);
      },
      [&](const Run&) {
        CHECK_FALSE(records_errors(copy));
        // Replayed: the last committed state, clean, the block free.
        Mounted m(copy, "ext3", 0);
        REQUIRE(m.mount_result == 0);
        struct stat st;
        CHECK_ERRNO(ENOENT, rump_sys_stat(fresh.c_str(), &st));
        for (int i = 0; i < kNames; i++) CHECK(rump_sys_stat(("/mnt/d/" + long_name(i)).c_str(), &st) == 0);
        CHECK(statfs_free().blocks == 1);
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
        CHECK(fsck_problems(copy) == "");
      });
  CHECK(aborts > 0);
}
