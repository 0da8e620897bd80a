// File-backed mmap on ext4 images: the scenario of file_map_scenario.h on
// an image made by the host's mke2fs against the host's tmpfs, files made
// by mke2fs -d read through a mapping, stores through a mapping read back
// by debugfs, and e2fsck -fn clean after it all.
#include <sys/mman.h>

#include <cstring>
#include <string>

#include "differential.h"
#include "ext2_test_util.h"
#include "file_map_scenario.h"

using namespace ext2_test;
using file_map_test::kHostMem;
using file_map_test::kRumpMem;
using rump_diff::Trace;

namespace {

constexpr size_t kPg = 4096;

std::string pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = static_cast<char>('a' + (i * 7 + seed + i / 4096) % 26);
  return s;
}

// Free blocks of the file system on /mnt, as statfs counts them.
uint64_t free_blocks() {
  struct statfs s;
  REQUIRE(rump_sys_statfs("/mnt", &s) == 0);
  return static_cast<uint64_t>(s.f_bfree);
}

// The image is e2fsck-clean, and debugfs's copy of its file path
// (dumped into dir) is want.
void check_image(const std::string& img, const std::string& path, const std::string& dir, const std::string& want) {
  CHECK(fsck_problems(img) == "");
  std::string out = dir + "/dump";
  REQUIRE(run("debugfs -R " + shell_quote("dump " + path + " " + out) + " " + shell_quote(img) + " >/dev/null 2>&1") ==
          0);
  CHECK(host_read_all(out) == want);
}

}  // namespace

TEST_CASE("mmap of an ext4 file behaves as on the host's tmpfs, and e2fsck is clean after",
          "[ext2][file_map][differential]") {
  TempDir t;
  std::string hostdir = t.path + "/host";
  REQUIRE(mkdir(hostdir.c_str(), 0755) == 0);
  Trace host = rump_test::host_child<Trace>([&] {
    static char scratch[file_map_test::kScratch];
    return file_map_test::scenario(rump_diff::kHost, kHostMem, hostdir, scratch);
  });
  for (uint32_t bs : {1024u, 4096u}) {
    INFO("block size " << bs);
    std::string img = t.path + "/img" + std::to_string(bs);
    REQUIRE(make_image(img, "ext4", bs, "", 16));
    {
      Mounted m(img, "ext4", 0);
      REQUIRE(m.mount_result == 0);
      rump_test::isolated_proc();
      auto* scratch = static_cast<char*>(rump_test::guest_map(file_map_test::kScratch));
      Trace rump = file_map_test::scenario(rump_diff::kRump, kRumpMem, "/mnt", scratch);
      rump_lwproc_releaselwp();
      rump_lwproc_switch(nullptr);
      rump_diff::check_same(host, rump);
      REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
    }
    CHECK(fsck_problems(img) == "");
  }
}

TEST_CASE("mke2fs -d files read through a mapping; stores through one reach the image", "[ext2][file_map]") {
  TempDir t;
  std::string tree = t.path + "/tree";
  REQUIRE(mkdir(tree.c_str(), 0755) == 0);
  const std::string a = pattern(5 * kPg + 123, 1);
  {
    int fd = open((tree + "/a").c_str(), O_WRONLY | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, a.data(), a.size()) == static_cast<ssize_t>(a.size()));
    close(fd);
  }
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 1024, tree, 16));
  const std::string b = pattern(3 * kPg, 5);
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    int fd = rump_sys_open("/mnt/a", O_RDWR, 0);
    REQUIRE(fd >= 0);
    int nfd = rump_sys_open("/mnt/b", O_RDWR | O_CREAT, 0644);
    REQUIRE(nfd >= 0);
    rump_test::isolated_proc();
    char* p = static_cast<char*>(rump_sys_mmap(nullptr, a.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    REQUIRE(p != MAP_FAILED);
    std::string got(a.size(), '\0');
    REQUIRE(rump_copyin(p, got.data(), got.size()) == 0);  // into the test's own memory
    CHECK(got == a);
    // A new file filled only through a mapping (ftruncate, then stores).
    REQUIRE(rump_sys_ftruncate(nfd, static_cast<off_t>(b.size())) == 0);
    char* q = static_cast<char*>(rump_sys_mmap(nullptr, b.size(), PROT_READ | PROT_WRITE, MAP_SHARED, nfd, 0));
    REQUIRE(q != MAP_FAILED);
    REQUIRE(rump_copyout(b.data(), q, b.size()) == 0);
    REQUIRE(rump_copyout("MAPPED", p + 2 * kPg + 10, 6) == 0);
    CHECK(rump_sys_msync(q, b.size(), MS_SYNC) == 0);
    rump_sys_close(fd);
    rump_sys_close(nfd);
    // The process exits with the mappings in place.
    rump_lwproc_releaselwp();
    rump_lwproc_switch(nullptr);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
  std::string out = t.path + "/out";
  REQUIRE(run("debugfs -R " + shell_quote("dump /b " + out + "b") + " " + shell_quote(img) + " >/dev/null 2>&1") == 0);
  REQUIRE(run("debugfs -R " + shell_quote("dump /a " + out + "a") + " " + shell_quote(img) + " >/dev/null 2>&1") == 0);
  CHECK(host_read_all(out + "b") == b);
  std::string want = a;
  want.replace(2 * kPg + 10, 6, "MAPPED");
  CHECK(host_read_all(out + "a") == want);
}

// A store through a mapping into the last page past the file's end is
// not the file's: the block goes to the device with zeros there, and the
// file grown over it reads zeros.
TEST_CASE("stores past an ext4 file's end through a mapping never reach the image", "[ext2][file_map]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 16));
  const std::string a = pattern(100, 3);
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    int fd = rump_sys_open("/mnt/f", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, a.data(), a.size()) == static_cast<long>(a.size()));
    rump_test::isolated_proc();
    char* p = static_cast<char*>(rump_sys_mmap(nullptr, kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    REQUIRE(p != MAP_FAILED);
    REQUIRE(rump_copyout("JUNK", p + 1000, 4) == 0);
    REQUIRE(rump_copyout("X", p + 5, 1) == 0);
    CHECK(rump_sys_msync(p, kPg, MS_SYNC) == 0);
    rump_sys_close(fd);
    rump_lwproc_releaselwp();
    rump_lwproc_switch(nullptr);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
  std::string want = a;
  want[5] = 'X';
  std::string bmap = capture("debugfs -R " + shell_quote("bmap /f 0") + " " + shell_quote(img) + " 2>/dev/null");
  uint64_t blk = std::strtoull(bmap.c_str(), nullptr, 10);
  REQUIRE(blk != 0);
  std::string block = host_read_all(img).substr(blk * kPg, kPg);
  CHECK(block == want + std::string(kPg - want.size(), '\0'));
  Mounted m(img, "ext4", 0);
  REQUIRE(m.mount_result == 0);
  REQUIRE(rump_sys_truncate("/mnt/f", static_cast<off_t>(kPg)) == 0);
  std::string got;
  REQUIRE(rump_read_all("/mnt/f", got));
  CHECK(got == want + std::string(kPg - want.size(), '\0'));
}

// A process in the host's address space: its MAP_SHARED mapping is a view
// of the cache's frames. Stores reach read(2) at once, msync(MS_SYNC)
// writes them back, a mapping unmapped without msync still reaches the
// image at unmount, and one that is never unmapped at halt.
TEST_CASE("host-space MAP_SHARED views of ext4 files reach the image", "[ext2][file_map][host_map]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 1024, "", 16));
  const std::string a = pattern(3 * kPg + 100, 2);
  const std::string b = pattern(2 * kPg, 9);
  const std::string c = pattern(kPg, 4);
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    int fa = rump_sys_open("/mnt/a", O_RDWR | O_CREAT, 0644);
    int fb = rump_sys_open("/mnt/b", O_RDWR | O_CREAT, 0644);
    REQUIRE(fa >= 0);
    REQUIRE(fb >= 0);
    REQUIRE(rump_sys_ftruncate(fa, static_cast<off_t>(a.size())) == 0);
    REQUIRE(rump_sys_ftruncate(fb, static_cast<off_t>(b.size())) == 0);
    auto* pa = static_cast<char*>(rump_sys_mmap(nullptr, a.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fa, 0));
    auto* pb = static_cast<char*>(rump_sys_mmap(nullptr, b.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fb, 0));
    REQUIRE(pa != MAP_FAILED);
    REQUIRE(pb != MAP_FAILED);
    std::memcpy(pa, a.data(), a.size());
    std::memcpy(pb, b.data(), b.size());
    std::string got(a.size(), '\0');
    CHECK(rump_sys_pread(fa, got.data(), got.size(), 0) == static_cast<long>(a.size()));
    CHECK(got == a);
    // write(2) shows in the view.
    CHECK(rump_sys_pwrite(fb, "WRITTEN", 7, kPg + 3) == 7);
    CHECK(std::memcmp(pb + kPg + 3, "WRITTEN", 7) == 0);
    CHECK(rump_sys_msync(pa, a.size(), MS_SYNC) == 0);
    CHECK(rump_sys_fsync(fa) == 0);
    CHECK(rump_sys_munmap(pb, b.size()) == 0);
    // A read-only view of a read-only descriptor; a writable one is EACCES.
    int fr = rump_sys_open("/mnt/a", O_RDONLY, 0);
    REQUIRE(fr >= 0);
    CHECK_ERRNO(EACCES, rump_sys_mmap(nullptr, kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fr, 0) == MAP_FAILED ? -1 : 0);
    auto* pr = static_cast<char*>(rump_sys_mmap(nullptr, kPg, PROT_READ, MAP_SHARED, fr, 0));
    REQUIRE(pr != MAP_FAILED);
    CHECK(std::memcmp(pr, a.data(), 64) == 0);
    CHECK(rump_sys_munmap(pr, kPg) == 0);
    CHECK(rump_sys_munmap(pa, a.size()) == 0);
    rump_sys_close(fa);
    rump_sys_close(fb);
    rump_sys_close(fr);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
  {
    // A view still in place at halt.
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    int fc = rump_sys_open("/mnt/c", O_RDWR | O_CREAT, 0644);
    REQUIRE(fc >= 0);
    REQUIRE(rump_sys_ftruncate(fc, static_cast<off_t>(c.size())) == 0);
    auto* pc = static_cast<char*>(rump_sys_mmap(nullptr, c.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fc, 0));
    REQUIRE(pc != MAP_FAILED);
    std::memcpy(pc, c.data(), c.size());
    rump_sys_close(fc);
  }
  CHECK(fsck_problems(img) == "");
  std::string out = t.path + "/out";
  for (const char* name : {"a", "b", "c"})
    REQUIRE(run("debugfs -R " + shell_quote(std::string("dump /") + name + " " + out + name) + " " + shell_quote(img) +
                " >/dev/null 2>&1") == 0);
  CHECK(host_read_all(out + "a") == a);
  std::string want_b = b;
  want_b.replace(kPg + 3, 7, "WRITTEN");
  CHECK(host_read_all(out + "b") == want_b);
  CHECK(host_read_all(out + "c") == c);
}

TEST_CASE("a host-space view of an ext4 file truncated and grown again shows and stores the new pages",
          "[ext2][file_map][host_map]") {
  using file_map_test::host_access;
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 1024, "", 16));
  const std::string a = pattern(3 * kPg, 5);
  std::string want = a.substr(0, kPg) + std::string(2 * kPg, '\0');
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    int fd = rump_sys_open("/mnt/a", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, a.data(), a.size()) == static_cast<long>(a.size()));
    auto* p = static_cast<char*>(rump_sys_mmap(nullptr, 4 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    REQUIRE(p != MAP_FAILED);
    char c = 0;
    REQUIRE(rump_sys_ftruncate(fd, kPg) == 0);
    CHECK_FALSE(host_access(&c, p + kPg, 1));
    // write(2) past the end through the cache: the page it reaches shows,
    // zeros before the bytes; the page between reads zeros and takes a
    // store; past the end stays SIGBUS.
    REQUIRE(rump_sys_pwrite(fd, "grown", 5, 2 * kPg + 1) == 5);
    want.replace(2 * kPg + 1, 5, "grown");
    want.resize(2 * kPg + 6);
    REQUIRE(host_access(&c, p + 2 * kPg + 3, 1));
    CHECK(c == 'o');
    REQUIRE(host_access(&c, p + kPg + 9, 1));
    CHECK(c == 0);
    CHECK(host_access(p + kPg + 9, "v", 1));
    want[kPg + 9] = 'v';
    CHECK_FALSE(host_access(&c, p + 3 * kPg, 1));
    CHECK(rump_sys_munmap(p, 4 * kPg) == 0);
    rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  check_image(img, "/a", t.path, want);
}

TEST_CASE("write-back takes only the pages a host-space view changed: a sparse ext4 file gains no blocks for the rest",
          "[ext2][file_map][host_map]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 1024, "", 16));
  std::string want(16 * kPg, '\0');
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    int fd = rump_sys_open("/mnt/sparse", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_ftruncate(fd, 16 * kPg) == 0);
    auto* p = static_cast<char*>(rump_sys_mmap(nullptr, 16 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    REQUIRE(p != MAP_FAILED);
    struct stat st;
    // Nothing stored: fsync writes nothing.
    REQUIRE(rump_sys_fsync(fd) == 0);
    REQUIRE(rump_sys_fstat(fd, &st) == 0);
    CHECK(st.st_blocks == 0);
    // One page stored: that page only (four 1 KiB blocks).
    std::memcpy(p + 3 * kPg + 10, "first", 5);
    want.replace(3 * kPg + 10, 5, "first");
    REQUIRE(rump_sys_fsync(fd) == 0);
    REQUIRE(rump_sys_fstat(fd, &st) == 0);
    CHECK(st.st_blocks == 8);
    // Stored again after its write-back: written again.
    std::memcpy(p + 3 * kPg + 10, "again", 5);
    want.replace(3 * kPg + 10, 5, "again");
    std::memcpy(p + 9 * kPg, "nine", 4);
    want.replace(9 * kPg, 4, "nine");
    REQUIRE(rump_sys_fsync(fd) == 0);
    REQUIRE(rump_sys_fstat(fd, &st) == 0);
    CHECK(st.st_blocks == 16);
    // write(2) into a viewed page, then the same bytes back through the
    // view: the file ends with the view's bytes.
    REQUIRE(rump_sys_pwrite(fd, "WRITE", 5, 3 * kPg + 10) == 5);
    REQUIRE(rump_sys_fsync(fd) == 0);
    std::memcpy(p + 3 * kPg + 10, "again", 5);
    CHECK(rump_sys_munmap(p, 16 * kPg) == 0);
    REQUIRE(rump_sys_fstat(fd, &st) == 0);
    CHECK(st.st_blocks == 16);
    rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  check_image(img, "/sparse", t.path, want);
}

// The kernel never sees the host's stores through a view, so a writable
// view takes the room its pages may need when it is made (as write(2)
// takes it for the pages it dirties): on a full file system the view is
// refused with ENOSPC (Linux refuses the first store with SIGBUS), and
// room for pages never stored into goes back when the view goes.
TEST_CASE("a writable host-space view of a sparse ext4 file takes room first: ENOSPC when full, given back at munmap",
          "[ext2][file_map][host_map]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 1024, "", 16));
  std::string want(16 * kPg, '\0');
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    int fd = rump_sys_open("/mnt/sparse", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_ftruncate(fd, 16 * kPg) == 0);
    // Room for sixteen pages of four 1 KiB blocks while the view lives,
    // none after it, and no block allocated.
    uint64_t before = free_blocks();
    auto* p = static_cast<char*>(rump_sys_mmap(nullptr, 16 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    REQUIRE(p != MAP_FAILED);
    CHECK(before - free_blocks() == 64);
    CHECK(rump_sys_munmap(p, 16 * kPg) == 0);
    CHECK(free_blocks() == before);
    // A read-only view takes none.
    p = static_cast<char*>(rump_sys_mmap(nullptr, 16 * kPg, PROT_READ, MAP_SHARED, fd, 0));
    REQUIRE(p != MAP_FAILED);
    CHECK(free_blocks() == before);
    CHECK(rump_sys_munmap(p, 16 * kPg) == 0);
    // The file system filled by fallocate: a writable view of the holes
    // is refused, a read-only one is not, and making that one writable is
    // refused too and leaves it readable.
    int fill = rump_sys_open("/mnt/fill", O_CREAT | O_RDWR, 0644);
    REQUIRE(fill >= 0);
    off_t at = 0;
    for (off_t chunk = 8 << 20; chunk >= 4096; chunk /= 2)
      while (rump_sys_fallocate(fill, 0, at, chunk) == 0) at += chunk;
    CHECK_ERRNO(ENOSPC, rump_sys_mmap(nullptr, 16 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ? -1 : 0);
    uint64_t full = free_blocks();
    p = static_cast<char*>(rump_sys_mmap(nullptr, 16 * kPg, PROT_READ, MAP_SHARED, fd, 0));
    REQUIRE(p != MAP_FAILED);
    CHECK_ERRNO(ENOSPC, rump_sys_mprotect(p, 16 * kPg, PROT_READ | PROT_WRITE));
    CHECK(p[5 * kPg] == 0);
    CHECK(free_blocks() == full);
    CHECK(rump_sys_munmap(p, 16 * kPg) == 0);
    // Room again: the view is made, one page stored, and only that page
    // is allocated (the others' room goes back at munmap).
    REQUIRE(rump_sys_ftruncate(fill, 0) == 0);
    REQUIRE(rump_sys_fsync(fill) == 0);
    before = free_blocks();
    p = static_cast<char*>(rump_sys_mmap(nullptr, 16 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    REQUIRE(p != MAP_FAILED);
    std::memcpy(p + 3 * kPg + 10, "stored", 6);
    want.replace(3 * kPg + 10, 6, "stored");
    CHECK(rump_sys_munmap(p, 16 * kPg) == 0);
    REQUIRE(rump_sys_fsync(fd) == 0);
    CHECK(before - free_blocks() == 4);
    struct stat st;
    REQUIRE(rump_sys_fstat(fd, &st) == 0);
    CHECK(st.st_blocks == 8);
    rump_sys_close(fill);
    rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  check_image(img, "/sparse", t.path, want);
}

// A hole punched under a writable view takes the blocks of pages the view
// pins: they need room again before the host stores into them, as when
// the view was made, and get it at the punch.
TEST_CASE("a hole punched under a writable host-space view of an ext4 file takes its pages' room again",
          "[ext2][file_map][host_map]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 1024, "", 16));
  std::string want = pattern(4 * kPg, 3);
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    int fd = rump_sys_open("/mnt/f", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, want.data(), want.size()) == static_cast<long>(want.size()));
    REQUIRE(rump_sys_fsync(fd) == 0);
    // Every page has its blocks: the view takes no room.
    uint64_t before = free_blocks();
    auto* p = static_cast<char*>(rump_sys_mmap(nullptr, 4 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    REQUIRE(p != MAP_FAILED);
    CHECK(free_blocks() == before);
    // The punch frees the eight blocks of pages 1 and 2, and the view
    // takes them back as room for those pages, which now read as zeros.
    REQUIRE(rump_sys_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, kPg, 2 * kPg) == 0);
    want.replace(kPg, 2 * kPg, std::string(2 * kPg, '\0'));
    CHECK(free_blocks() == before);
    CHECK(std::memcmp(p, want.data(), want.size()) == 0);
    // A store into page 1 is written back into blocks of its own, and so
    // are page 2's zeros: a page the kernel refilled under a view counts
    // as stored into, since a store racing with the refill cannot be told
    // apart. Both use the room taken at the punch.
    std::memcpy(p + kPg + 100, "after the punch", 15);
    want.replace(kPg + 100, 15, "after the punch");
    CHECK(rump_sys_munmap(p, 4 * kPg) == 0);
    REQUIRE(rump_sys_fsync(fd) == 0);
    CHECK(free_blocks() == before);
    struct stat st;
    REQUIRE(rump_sys_fstat(fd, &st) == 0);
    CHECK(st.st_blocks == 4 * kPg / 512);
    rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  check_image(img, "/f", t.path, want);
}
