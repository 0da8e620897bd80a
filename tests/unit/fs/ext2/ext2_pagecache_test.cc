// The page cache of ext4 files (vfs/vnode_pager.h): read(2), write(2) and
// shared mappings see the same pages before any write-back; more data than
// the kernel's memory limit goes through write(2) and a mapping and reads
// back whole; a snapshot of the image taken right after fsync (a crash)
// mounts with the journal replayed and holds the fsync'ed bytes; a failed
// write-back is reported once to each open description; a file grown in
// pieces has its size on the image after each write-back. e2fsck -fn is
// clean after every scenario that unmounts.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "ext2_test_util.h"

using namespace ext2_test;

namespace {

constexpr size_t kPg = 4096;

// The byte at offset off of a file made with seed.
char byte_at(uint64_t off, int seed) { return static_cast<char>('a' + (off * 7 + seed + off / 4096) % 26); }

std::string pattern(uint64_t from, size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = byte_at(from + i, seed);
  return s;
}

// img registered at /dev/img and mounted read-write at /mnt in a kernel
// booted with opts.
struct MountedWith {
  rump_test::KernelUp up;
  explicit MountedWith(const std::string& img, const rump_test::BootOpts& opts = {}) : up(opts) {
    REQUIRE(rump_pub_etfs_register("/dev/img", img.c_str(), RUMP_ETFS_BLK) == 0);
    REQUIRE(rump_sys_mkdir("/mnt", 0755) == 0);
    REQUIRE(rump_sys_mount("/dev/img", "/mnt", "ext4", 0, nullptr) == 0);
  }
};

// The whole file at path matches pattern(0, size, seed), read in 64 KiB
// pieces (a mismatch names the first bad offset).
void check_file(const char* path, uint64_t size, int seed) {
  int fd = rump_sys_open(path, O_RDONLY, 0);
  REQUIRE(fd >= 0);
  std::string buf(64 * 1024, '\0');
  uint64_t off = 0;
  for (;;) {
    long n = rump_sys_read(fd, buf.data(), buf.size());
    REQUIRE(n >= 0);
    if (n == 0) break;
    std::string want = pattern(off, static_cast<size_t>(n), seed);
    if (buf.compare(0, static_cast<size_t>(n), want) != 0) {
      size_t i = 0;
      while (buf[i] == want[i]) i++;
      FAIL("first difference at offset " << off + i);
    }
    off += static_cast<uint64_t>(n);
  }
  CHECK(off == size);
  rump_sys_close(fd);
}

}  // namespace

TEST_CASE("write(2), read(2) and a shared mapping of an ext4 file see one cache", "[ext2][pagecache]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 16));
  const std::string a = pattern(0, 3 * kPg + 100, 1);
  {
    MountedWith m(img);
    int fd = rump_sys_open("/mnt/f", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, a.data(), a.size()) == static_cast<long>(a.size()));
    struct stat st;
    REQUIRE(rump_sys_fstat(fd, &st) == 0);
    CHECK(st.st_size == static_cast<off_t>(a.size()));
    // The mapping lives in an isolated process that shares the
    // descriptor table; read(2) and write(2) come from the host-space one.
    lwp* host = rump_lwproc_curlwp();
    lwp* iso = rump_test::isolated_proc();
    char* p = static_cast<char*>(rump_sys_mmap(nullptr, 4 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    REQUIRE(p != MAP_FAILED);
    // The mapping sees what write(2) left in the cache.
    std::string got(a.size(), '\0');
    REQUIRE(rump_copyin(p, got.data(), got.size()) == 0);
    CHECK(got == a);
    // A store through the mapping: read(2) sees it at once.
    REQUIRE(rump_copyout("STORE", p + 5000, 5) == 0);
    char back[6] = {};
    rump_lwproc_switch(host);
    REQUIRE(rump_sys_pread(fd, back, 5, 5000) == 5);
    CHECK(std::string(back) == "STORE");
    // A pwrite: the mapping sees it at once.
    REQUIRE(rump_sys_pwrite(fd, "WRITE", 5, 9000) == 5);
    rump_lwproc_switch(iso);
    REQUIRE(rump_copyin(p + 9000, back, 5) == 0);
    CHECK(std::string(back) == "WRITE");
    // Past the end of the file, in the last page: zero, and stays so.
    char tail = 1;
    REQUIRE(rump_copyin(p + a.size() + 10, &tail, 1) == 0);
    CHECK(tail == 0);
    REQUIRE(rump_sys_munmap(p, 4 * kPg) == 0);
    rump_lwproc_releaselwp();
    rump_lwproc_switch(nullptr);
    rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
  std::string out = t.path + "/out";
  REQUIRE(run("debugfs -R " + shell_quote("dump /f " + out) + " " + shell_quote(img) + " >/dev/null 2>&1") == 0);
  std::string want = a;
  want.replace(5000, 5, "STORE");
  want.replace(9000, 5, "WRITE");
  CHECK(host_read_all(out) == want);
}

TEST_CASE("more than the memory limit through write(2) and a mapping reads back whole; e2fsck is clean",
          "[ext2][pagecache][memlimit]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 96));
  constexpr size_t kLimit = 24u << 20;
  constexpr uint64_t kBig = 32u << 20;     // through write(2)
  constexpr uint64_t kMapped = 28u << 20;  // through a mapping
  {
    MountedWith m(img, {.memlimit = kLimit});
    int fd = rump_sys_open("/mnt/big", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    std::string chunk;
    for (uint64_t off = 0; off < kBig; off += 64 * 1024) {
      chunk = pattern(off, 64 * 1024, 3);
      REQUIRE(rump_sys_write(fd, chunk.data(), chunk.size()) == static_cast<long>(chunk.size()));
    }
    // Read back while the file is open (some pages cached, some gone).
    check_file("/mnt/big", kBig, 3);
    rump_sys_close(fd);

    int mfd = rump_sys_open("/mnt/mapped", O_RDWR | O_CREAT, 0644);
    REQUIRE(mfd >= 0);
    REQUIRE(rump_sys_ftruncate(mfd, static_cast<off_t>(kMapped)) == 0);
    lwp* host = rump_lwproc_curlwp();
    lwp* iso = rump_test::isolated_proc();
    char* p = static_cast<char*>(rump_sys_mmap(nullptr, kMapped, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0));
    REQUIRE(p != MAP_FAILED);
    for (uint64_t off = 0; off < kMapped; off += 64 * 1024) {
      chunk = pattern(off, 64 * 1024, 4);
      REQUIRE(rump_copyout(chunk.data(), p + off, chunk.size()) == 0);
    }
    // read(2) of the mapped file while the mapping lives.
    rump_lwproc_switch(host);
    check_file("/mnt/mapped", kMapped, 4);
    rump_lwproc_switch(iso);
    REQUIRE(rump_sys_munmap(p, kMapped) == 0);
    rump_lwproc_releaselwp();
    rump_lwproc_switch(nullptr);
    rump_sys_close(mfd);
    check_file("/mnt/big", kBig, 3);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
  // The image holds the bytes (debugfs reads them without our kernel).
  std::string out = t.path + "/out";
  REQUIRE(run("debugfs -R " + shell_quote("dump /mapped " + out) + " " + shell_quote(img) + " >/dev/null 2>&1") == 0);
  CHECK(host_read_all(out) == pattern(0, kMapped, 4));
}

TEST_CASE("an image copied right after fsync (a crash) replays its journal and holds the fsync'ed data",
          "[ext2][pagecache][journal]") {
  TempDir t;
  std::string img = t.path + "/img";
  std::string crashed = t.path + "/crashed";
  REQUIRE(make_image(img, "ext4", 4096, "", 32));
  const std::string a = pattern(0, 200 * kPg + 7, 5);
  {
    MountedWith m(img);
    int fd = rump_sys_open("/mnt/kept", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, a.data(), a.size()) == static_cast<long>(a.size()));
    REQUIRE(rump_sys_fsync(fd) == 0);
    // The host file is what a crash would leave: copy it now, mounted,
    // with the descriptor still open.
    REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(crashed)) == 0);
    rump_sys_close(fd);
  }
  {
    MountedWith m(crashed);
    std::string got;
    REQUIRE(rump_read_all("/mnt/kept", got));
    CHECK(got == a);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(crashed) == "");
  CHECK(fsck_problems(img) == "");
}

// A file growing through its cache keeps the new size in memory and
// stores it with the write-back: each state a crash could leave holds
// every byte written back before it with the right size.
TEST_CASE("a file grown by write(2) in pieces has its size on the image after syncfs, fsync and the last close",
          "[ext2][pagecache][journal]") {
  TempDir t;
  std::string img = t.path + "/img";
  std::string after_syncfs = t.path + "/after_syncfs", after_fsync = t.path + "/after_fsync";
  REQUIRE(make_image(img, "ext4", 4096, "", 32));
  constexpr size_t kPiece = 64 * 1024;
  const std::string all = pattern(0, 70 * kPiece + 1000, 9);
  uint64_t at = 0;
  auto grow = [&](int fd, size_t n) {
    REQUIRE(rump_sys_write(fd, all.data() + at, n) == static_cast<long>(n));
    at += n;
    struct stat st;
    REQUIRE(rump_sys_fstat(fd, &st) == 0);
    CHECK(static_cast<uint64_t>(st.st_size) == at);
  };
  {
    MountedWith m(img);
    int fd = rump_sys_open("/mnt/grown", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    for (int i = 0; i < 40; i++) grow(fd, kPiece);
    // syncfs writes the pages back (and with them the size), commits and
    // checkpoints; the file stays open.
    REQUIRE(rump_sys_syncfs(fd) == 0);
    REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(after_syncfs)) == 0);
    for (int i = 0; i < 20; i++) grow(fd, kPiece);
    grow(fd, 1000);
    REQUIRE(rump_sys_fsync(fd) == 0);
    REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(after_fsync)) == 0);
    for (int i = 0; i < 10; i++) grow(fd, i == 0 ? kPiece - 1000 : kPiece);
    grow(fd, 1000);
    REQUIRE(rump_sys_close(fd) == 0);
    // Unmounted at halt: the last pieces go back then.
  }
  REQUIRE(at == all.size());
  struct Expect {
    const std::string* image;
    uint64_t size;
  };
  for (const Expect& e : {Expect{&after_syncfs, 40 * kPiece}, Expect{&after_fsync, 60 * kPiece + 1000},
                          Expect{&img, all.size()}}) {
    INFO(*e.image);
    {
      MountedWith m(*e.image);
      check_file("/mnt/grown", e.size, 9);
      REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
    }
    CHECK(fsck_problems(*e.image) == "");
  }
}

TEST_CASE("a failed write-back is reported once to each open description, as Linux's errseq",
          "[ext2][pagecache][fault]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 16));
  MountedWith m(img);
  int fd1 = rump_sys_open("/mnt/f", O_RDWR | O_CREAT, 0644);
  REQUIRE(fd1 >= 0);
  int fd2 = rump_sys_open("/mnt/f", O_RDWR, 0);
  REQUIRE(fd2 >= 0);
  const std::string a = pattern(0, 8 * kPg, 6);
  REQUIRE(rump_sys_write(fd1, a.data(), a.size()) == static_cast<long>(a.size()));
  // With every block I/O failing.
  int fsync_errno = with_io_failing(m.up.k, [&] {
    errno = 0;
    CHECK(rump_sys_fsync(fd1) == -1);
    return errno;
  });
  CHECK(fsync_errno == EIO);
  // fd1 saw it; fd2 sees it once; a description opened now does not.
  int fd3 = rump_sys_open("/mnt/f", O_RDONLY, 0);
  REQUIRE(fd3 >= 0);
  CHECK(rump_sys_fsync(fd1) == 0);
  errno = 0;
  CHECK(rump_sys_fsync(fd2) == -1);
  CHECK(errno == EIO);
  CHECK(rump_sys_fsync(fd2) == 0);
  CHECK(rump_sys_fsync(fd3) == 0);
  // Nothing was lost: the bytes are still there to read.
  std::string got(a.size(), '\0');
  REQUIRE(rump_sys_pread(fd3, got.data(), got.size(), 0) == static_cast<long>(got.size()));
  CHECK(got == a);
  rump_sys_close(fd1);
  rump_sys_close(fd2);
  rump_sys_close(fd3);
}

TEST_CASE("writers, readers, sync and a small memory limit on one ext4 image at once lose nothing",
          "[ext2][pagecache][concurrency]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 64));
  constexpr uint64_t kEach = 6u << 20;
  constexpr int kWriters = 3;
  {
    MountedWith m(img, {.ncpu = 2, .memlimit = 32u << 20});
    std::atomic<bool> done{false};
    std::atomic<int> failures{0};
    std::vector<std::thread> ts;
    for (int w = 0; w < kWriters; w++) {
      ts.emplace_back([&, w] {
        rump_kernel_set_current(m.up.k);
        std::string path = "/mnt/w" + std::to_string(w);
        int fd = rump_sys_open(path.c_str(), O_RDWR | O_CREAT, 0644);
        if (fd < 0) failures++;
        for (uint64_t off = 0; off < kEach; off += 32 * 1024) {
          std::string c = pattern(off, 32 * 1024, w);
          if (rump_sys_pwrite(fd, c.data(), c.size(), static_cast<off_t>(off)) != static_cast<long>(c.size())) failures++;
          // Read back a page written earlier, cached or written back.
          uint64_t back = (off / 2) & ~uint64_t{4095};
          char buf[4096];
          if (rump_sys_pread(fd, buf, sizeof buf, static_cast<off_t>(back)) != static_cast<long>(sizeof buf) ||
              std::string(buf, sizeof buf) != pattern(back, sizeof buf, w))
            failures++;
        }
        if (rump_sys_fsync(fd) != 0) failures++;
        rump_sys_close(fd);
      });
    }
    ts.emplace_back([&] {
      rump_kernel_set_current(m.up.k);
      while (!done.load()) rump_sys_sync();
    });
    for (int w = 0; w < kWriters; w++) ts[static_cast<size_t>(w)].join();
    done = true;
    ts.back().join();
    CHECK(failures.load() == 0);
    for (int w = 0; w < kWriters; w++) check_file(("/mnt/w" + std::to_string(w)).c_str(), kEach, w);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
}

TEST_CASE("two ext4 images in one kernel under a small memory limit evict each other's buffers and lose nothing",
          "[ext2][pagecache][concurrency]") {
  // One buffer cache serves both mounts: a buffer one image's thread
  // needs may evict the other's unreferenced buffers while that one's own
  // thread takes and drops references to them without the cache lock.
  // data=journal puts file data through the buffer cache too, so the
  // buffers outgrow the cache's share of the limit many times over.
  TempDir t;
  constexpr int kImages = 2, kFiles = 40;
  constexpr size_t kFileBytes = 256 * 1024;
  std::string imgs[kImages];
  for (int i = 0; i < kImages; i++) {
    imgs[i] = t.path + "/img" + std::to_string(i);
    REQUIRE(make_image(imgs[i], "ext4", 4096, "", 64));
  }
  {
    rump_test::KernelUp up({.ncpu = 2, .memlimit = 24u << 20});
    for (int i = 0; i < kImages; i++) {
      std::string dev = "/dev/img" + std::to_string(i), dir = "/mnt" + std::to_string(i);
      REQUIRE(rump_pub_etfs_register(dev.c_str(), imgs[i].c_str(), RUMP_ETFS_BLK) == 0);
      REQUIRE(rump_sys_mkdir(dir.c_str(), 0755) == 0);
      REQUIRE(rump_sys_mount(dev.c_str(), dir.c_str(), "ext4", 0, "data=journal") == 0);
    }
    std::atomic<int> failures{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < kImages; i++) {
      ts.emplace_back([&, i] {
        rump_kernel_set_current(up.k);
        std::string dir = "/mnt" + std::to_string(i);
        // Each round writes its file, then reads back an earlier one
        // (its buffers by then evicted or kept) and every name so far.
        for (int f = 0; f < kFiles; f++) {
          std::string path = dir + "/f" + std::to_string(f);
          int fd = rump_sys_open(path.c_str(), O_WRONLY | O_CREAT, 0644);
          std::string c = pattern(0, kFileBytes, f + 10 * i);
          if (fd < 0 || rump_sys_write(fd, c.data(), c.size()) != static_cast<long>(c.size())) failures++;
          if (fd >= 0) rump_sys_close(fd);
          int back = f / 2;
          std::string bp = dir + "/f" + std::to_string(back);
          fd = rump_sys_open(bp.c_str(), O_RDONLY, 0);
          std::string got(kFileBytes, '\0');
          if (fd < 0 || rump_sys_pread(fd, got.data(), got.size(), 0) != static_cast<long>(got.size()) ||
              got != pattern(0, kFileBytes, back + 10 * i))
            failures++;
          if (fd >= 0) rump_sys_close(fd);
          if (f % 8 == 7 && rump_sys_sync() != 0) failures++;
        }
      });
    }
    for (std::thread& th : ts) th.join();
    CHECK(failures.load() == 0);
    for (int i = 0; i < kImages; i++) {
      for (int f = 0; f < kFiles; f++)
        check_file(("/mnt" + std::to_string(i) + "/f" + std::to_string(f)).c_str(), kFileBytes, f + 10 * i);
      REQUIRE(rump_sys_umount2(("/mnt" + std::to_string(i)).c_str(), 0) == 0);
    }
  }
  for (int i = 0; i < kImages; i++) CHECK(fsck_problems(imgs[i]) == "");
}

TEST_CASE("write(2) on an ext2/3/4 image that fills up is short or ENOSPC at the call; fsync and e2fsck are clean",
          "[ext2][pagecache][enospc]") {
  // ext2 and ext3 map blocks through indirect blocks: the room held for a
  // page covers the map blocks its write-back adds too.
  struct Fs {
    const char* type;
    uint32_t bs;
  };
  const Fs fs = GENERATE(Fs{"ext4", 4096}, Fs{"ext2", 4096}, Fs{"ext3", 1024});
  INFO(fs.type << " bs " << fs.bs);
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, fs.type, fs.bs, "", 16));
  uint64_t written = 0;
  {
    MountedWith m(img);
    int fd = rump_sys_open("/mnt/fill", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    // Room is set aside at write(2) for pages without blocks (delayed
    // allocation): the image runs out at a write, never at fsync.
    int last_errno = 0;
    for (int i = 0; i < 1000; i++) {
      std::string c = pattern(written, 64 * 1024, 8);
      errno = 0;
      long n = rump_sys_write(fd, c.data(), c.size());
      if (n < 0) {
        last_errno = errno;
        break;
      }
      written += static_cast<uint64_t>(n);
      if (n < static_cast<long>(c.size())) {
        // A short write; the next one has no room at all.
        errno = 0;
        CHECK(rump_sys_write(fd, c.data(), c.size()) == -1);
        last_errno = errno;
        break;
      }
    }
    CHECK(last_errno == ENOSPC);
    CHECK(written > (8u << 20));  // most of the 16 MiB image (a journal of 4 MiB)
    struct stat st;
    REQUIRE(rump_sys_fstat(fd, &st) == 0);
    CHECK(static_cast<uint64_t>(st.st_size) == written);
    CHECK(rump_sys_fsync(fd) == 0);
    // Overwriting what has blocks still works on the full image.
    std::string c = pattern(0, 8192, 8);
    CHECK(rump_sys_pwrite(fd, c.data(), c.size(), 0) == static_cast<long>(c.size()));
    CHECK(rump_sys_fsync(fd) == 0);
    rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  // Every byte written is on the image.
  CHECK(fsck_problems(img) == "");
  bool same = on_image(img, "/fill") == pattern(0, written, 8);
  CHECK(same);
  {
    MountedWith m(img);
    // Deleting gives the room back to new writes.
    REQUIRE(rump_sys_unlink("/mnt/fill") == 0);
    int fd = rump_sys_open("/mnt/again", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    std::string d = pattern(0, 1u << 20, 9);
    CHECK(rump_sys_write(fd, d.data(), d.size()) == static_cast<long>(d.size()));
    rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
  bool again = on_image(img, "/again") == pattern(0, 1u << 20, 9);
  CHECK(again);
}

TEST_CASE("an ext4 file's cache outlives its last close, and goes with its last name or at unmount",
          "[ext2][pagecache]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 32));
  const std::string a = pattern(0, 1u << 20, 10);
  {
    MountedWith m(img);
    int fd = rump_sys_open("/mnt/f", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, a.data(), a.size()) == static_cast<long>(a.size()));
    REQUIRE(rump_sys_fsync(fd) == 0);
    rump_sys_close(fd);
    // Reopened with every block I/O failing: the same bytes, from the
    // kept cache.
    std::string got;
    bool read_ok = with_io_failing(m.up.k, [&] { return rump_read_all("/mnt/f", got); });
    REQUIRE(read_ok);
    CHECK(got == a);
    struct statfs before, after;
    REQUIRE(rump_sys_statfs("/mnt", &before) == 0);
    // The last name goes: the file's blocks are free at once, although
    // no description was open.
    REQUIRE(rump_sys_unlink("/mnt/f") == 0);
    REQUIRE(rump_sys_statfs("/mnt", &after) == 0);
    CHECK(after.f_bfree >= before.f_bfree + a.size() / 4096);
    // A renamed-over file too.
    fd = rump_sys_open("/mnt/g", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, a.data(), a.size()) == static_cast<long>(a.size()));
    rump_sys_close(fd);
    fd = rump_sys_open("/mnt/h", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, "h", 1) == 1);
    rump_sys_close(fd);
    REQUIRE(rump_sys_statfs("/mnt", &before) == 0);
    REQUIRE(rump_sys_rename("/mnt/h", "/mnt/g") == 0);
    REQUIRE(rump_sys_statfs("/mnt", &after) == 0);
    CHECK(after.f_bfree >= before.f_bfree + a.size() / 4096);
    REQUIRE(rump_read_all("/mnt/g", got));
    CHECK(got == "h");
    // A kept cache does not make the mount busy.
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
}

TEST_CASE("a kernel halted with ext4 files open, dirty, mapped and unlinked leaves a clean image with their bytes",
          "[ext2][pagecache][halt]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 64));
  const std::string written = pattern(0, 300 * kPg + 11, 9);
  const std::string mapped = pattern(0, 40 * kPg, 10);
  {
    MountedWith m(img);
    // Written, not synced, still open.
    int wfd = rump_sys_open("/mnt/written", O_RDWR | O_CREAT, 0644);
    REQUIRE(wfd >= 0);
    REQUIRE(rump_sys_write(wfd, written.data(), written.size()) == static_cast<long>(written.size()));
    // Mapped shared by another process and stored into, still mapped.
    int mfd = rump_sys_open("/mnt/mapped", O_RDWR | O_CREAT, 0644);
    REQUIRE(mfd >= 0);
    REQUIRE(rump_sys_ftruncate(mfd, static_cast<off_t>(mapped.size())) == 0);
    rump_test::isolated_proc();
    char* p = static_cast<char*>(rump_sys_mmap(nullptr, mapped.size(), PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0));
    REQUIRE(p != MAP_FAILED);
    REQUIRE(rump_copyout(mapped.data(), p, mapped.size()) == 0);
    rump_lwproc_switch(nullptr);
    // Unlinked while open: on the orphan list until the halt frees it.
    int ufd = rump_sys_open("/mnt/unlinked", O_RDWR | O_CREAT, 0644);
    REQUIRE(ufd >= 0);
    REQUIRE(rump_sys_write(ufd, written.data(), written.size()) == static_cast<long>(written.size()));
    REQUIRE(rump_sys_unlink("/mnt/unlinked") == 0);
    // The kernel halts with all three open and the file system mounted.
  }
  CHECK(fsck_problems(img) == "");
  std::string out = t.path + "/out";
  REQUIRE(run("debugfs -R " + shell_quote("dump /written " + out) + " " + shell_quote(img) + " >/dev/null 2>&1") == 0);
  CHECK(host_read_all(out) == written);
  REQUIRE(run("debugfs -R " + shell_quote("dump /mapped " + out) + " " + shell_quote(img) + " >/dev/null 2>&1") == 0);
  CHECK(host_read_all(out) == mapped);
  // Nothing of the unlinked file is left.
  CHECK(capture("debugfs -R " + shell_quote("ls /") + " " + shell_quote(img) + " 2>/dev/null").find("unlinked") ==
        std::string::npos);
}

namespace {

// Writes 64 KiB, then 4 KiB pieces to fd until the file system is full:
// the bytes written.
uint64_t fill_up(int fd) {
  uint64_t written = 0;
  std::string c = pattern(0, 64 * 1024, 3);
  for (size_t piece : {c.size(), kPg}) {
    for (int i = 0; i < 100000; i++) {
      long n = rump_sys_write(fd, c.data(), piece);
      if (n <= 0) break;
      written += static_cast<uint64_t>(n);
    }
  }
  errno = 0;
  CHECK(rump_sys_write(fd, c.data(), kPg) == -1);
  CHECK(errno == ENOSPC);
  return written;
}

}  // namespace

TEST_CASE("a store through a shared mapping reserves its block: a full ext4 image raises SIGBUS at the store and loses nothing",
          "[ext2][pagecache][enospc][file_map]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 16));
  const std::string early = pattern(0, kPg, 21);
  {
    MountedWith m(img);
    REQUIRE(rump_lwproc_rfork(RUMP_RFFDG) == 0);  // a parent to wait for the child
    lwp* parent = rump_lwproc_curlwp();
    int mfd = rump_sys_open("/mnt/mapped", O_RDWR | O_CREAT, 0644);
    REQUIRE(mfd >= 0);
    REQUIRE(rump_sys_ftruncate(mfd, 8 * kPg) == 0);  // a hole
    int ffd = rump_sys_open("/mnt/fill", O_RDWR | O_CREAT, 0644);
    REQUIRE(ffd >= 0);
    int rfd = rump_sys_open("/mnt/fill", O_RDONLY, 0);
    REQUIRE(rfd >= 0);
    REQUIRE(rump_lwproc_rfork(RUMP_RFVMSPACE) == 0);
    lwp* child_lwp = rump_lwproc_curlwp();
    pid_t child = rump_sys_getpid();
    char* p = static_cast<char*>(rump_sys_mmap(nullptr, 8 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0));
    REQUIRE(p != MAP_FAILED);
    // A store while there is room: its page holds a block from now on,
    // whatever fills the image afterwards.
    REQUIRE(rump_copyout(early.data(), p, early.size()) == 0);
    // The parent (whose memory is the test's) fills the image.
    rump_lwproc_switch(parent);
    uint64_t filled = fill_up(ffd);
    CHECK(filled > (8u << 20));
    rump_lwproc_switch(child_lwp);
    // Another hole page of the mapping has no room: a system call copying
    // into it is EFAULT (and no signal) ...
    CHECK_ERRNO(EFAULT, rump_sys_read(rfd, p + 3 * kPg, 16));
    CHECK(rump_sys_getpid() == child);
    // ... the page already reserved still takes stores, and the process's
    // own store into the other page is SIGBUS, which ends it.
    CHECK(rump_copyout("again", p + 100, 5) == 0);
    CHECK(rump_copyout("X", p + 5 * kPg, 1) == EFAULT);
    rump_lwproc_switch(parent);
    int st = 0;
    REQUIRE(rump_sys_wait4(child, &st, 0, nullptr) == child);
    CHECK(WIFSIGNALED(st));
    CHECK(WTERMSIG(st) == SIGBUS);
    // Nothing was lost: the write-back of the stored page finds its block.
    CHECK(rump_sys_fsync(mfd) == 0);
    CHECK(rump_sys_fsync(ffd) == 0);
    rump_sys_close(rfd);
    rump_sys_close(mfd);
    rump_sys_close(ffd);
    rump_lwproc_releaselwp();
    rump_lwproc_switch(nullptr);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
  std::string out = t.path + "/out";
  REQUIRE(run("debugfs -R " + shell_quote("dump /mapped " + out) + " " + shell_quote(img) + " >/dev/null 2>&1") == 0);
  std::string want = early;
  want.replace(100, 5, "again");
  want.resize(8 * kPg, '\0');
  CHECK(host_read_all(out) == want);
}

TEST_CASE("with 1 KiB blocks a partly allocated page reserves only the blocks it lacks",
          "[ext2][pagecache][enospc][file_map]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 1024, "", 16));
  {
    MountedWith m(img);
    // Two files whose first page has its first 1 KiB block only.
    for (const char* f : {"/mnt/w", "/mnt/m"}) {
      int fd = rump_sys_open(f, O_RDWR | O_CREAT, 0644);
      REQUIRE(fd >= 0);
      REQUIRE(rump_sys_write(fd, pattern(0, 1024, 1).data(), 1024) == 1024);
      REQUIRE(rump_sys_ftruncate(fd, 2 * kPg) == 0);
      REQUIRE(rump_sys_fsync(fd) == 0);
      rump_sys_close(fd);
    }
    // statfs from the test's own process (an isolated one could not
    // reach the test's memory).
    auto free_blocks = [] {
      lwp* cur = rump_lwproc_curlwp();
      rump_lwproc_switch(nullptr);
      struct statfs s;
      int r = rump_sys_statfs("/mnt", &s);
      rump_lwproc_switch(cur);
      REQUIRE(r == 0);
      return static_cast<uint64_t>(s.f_bfree);
    };
    // write(2) into the page's third block: its three missing blocks are
    // set aside (statfs counts reserved blocks as used), not four.
    int wfd = rump_sys_open("/mnt/w", O_RDWR, 0);
    REQUIRE(wfd >= 0);
    uint64_t before = free_blocks();
    REQUIRE(rump_sys_pwrite(wfd, "w", 1, 2048) == 1);
    CHECK(before - free_blocks() == 3);
    // A store through a shared mapping into the same place: the same.
    int mfd = rump_sys_open("/mnt/m", O_RDWR, 0);
    REQUIRE(mfd >= 0);
    rump_test::isolated_proc();
    char* p = static_cast<char*>(rump_sys_mmap(nullptr, 2 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0));
    REQUIRE(p != MAP_FAILED);
    before = free_blocks();
    REQUIRE(rump_copyout("m", p + 2048, 1) == 0);
    CHECK(before - free_blocks() == 3);
    // The second page has no block at all: four.
    before = free_blocks();
    REQUIRE(rump_copyout("n", p + kPg + 10, 1) == 0);
    CHECK(before - free_blocks() == 4);
    // Written back, only the blocks inside the file are taken, and the
    // reservations are given back.
    REQUIRE(rump_sys_msync(p, 2 * kPg, MS_SYNC) == 0);
    REQUIRE(rump_sys_fsync(wfd) == 0);
    rump_lwproc_releaselwp();
    rump_lwproc_switch(nullptr);
    rump_sys_close(wfd);
    rump_sys_close(mfd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
  std::string out = t.path + "/out";
  REQUIRE(run("debugfs -R " + shell_quote("dump /m " + out) + " " + shell_quote(img) + " >/dev/null 2>&1") == 0);
  std::string want = pattern(0, 1024, 1);
  want.resize(2 * kPg, '\0');
  want[2048] = 'm';
  want[kPg + 10] = 'n';
  CHECK(host_read_all(out) == want);
}

TEST_CASE("a remount read-only writes back the dirty pages of a file still open and syncs: a copy taken then is clean",
          "[ext2][pagecache]") {
  TempDir t;
  std::string img = t.path + "/img", copy = t.path + "/copy";
  REQUIRE(make_image(img, "ext4", 4096, "", 32));
  const std::string a = pattern(0, 300 * 1000, 4);
  {
    MountedWith m(img);
    int fd = rump_sys_open("/mnt/open", O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, a.data(), a.size()) == static_cast<long>(a.size()));
    REQUIRE(rump_sys_mount("/dev/img", "/mnt", "ext4", MS_REMOUNT | MS_RDONLY, nullptr) == 0);
    // What the host sees now is a whole, clean file system holding the
    // bytes, with nothing left in the journal.
    REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(copy)) == 0);
    CHECK_ERRNO(EROFS, rump_sys_open("/mnt/new", O_RDWR | O_CREAT, 0644));
    rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(copy) == "");
  {
    MountedWith m(copy);
    check_file("/mnt/open", a.size(), 4);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
}

TEST_CASE("kept caches of closed ext4 files give back their pages past fs.kept_cache_pages, oldest first",
          "[ext2][pagecache]") {
  TempDir t;
  std::string img = t.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 32));
  constexpr size_t kFilePages = 128;
  {
    MountedWith m(img);  // no memory limit
    int cap = 0;
    size_t len = sizeof cap;
    REQUIRE(rump_sys_sysctlbyname("fs.kept_cache_pages", &cap, &len, nullptr, 0) == 0);
    CHECK(cap == 65536);  // 256 MiB without a memory limit
    int small = 256;
    REQUIRE(rump_sys_sysctlbyname("fs.kept_cache_pages", nullptr, nullptr, &small, sizeof small) == 0);
    // Eight files of 128 pages, each written and closed: four times the
    // cap in all.
    for (int i = 0; i < 8; i++) {
      std::string p = "/mnt/f" + std::to_string(i);
      int fd = rump_sys_open(p.c_str(), O_RDWR | O_CREAT, 0644);
      REQUIRE(fd >= 0);
      std::string d = pattern(0, kFilePages * kPg, i);
      REQUIRE(rump_sys_write(fd, d.data(), d.size()) == static_cast<long>(d.size()));
      REQUIRE(rump_sys_close(fd) == 0);
    }
    // With every block I/O failing, only cached pages can be read: the
    // last file closed still has its cache, the first does not.
    std::string newest, oldest;
    bool newest_ok = false, oldest_ok = false;
    with_io_failing(m.up.k, [&] {
      newest_ok = rump_read_all("/mnt/f7", newest);
      oldest_ok = rump_read_all("/mnt/f0", oldest);
      return 0;
    });
    CHECK(newest_ok);
    CHECK(newest == pattern(0, kFilePages * kPg, 7));
    CHECK_FALSE(oldest_ok);
    // The pages given back were clean: read again from the image.
    REQUIRE(rump_read_all("/mnt/f0", oldest));
    CHECK(oldest == pattern(0, kFilePages * kPg, 0));
    int bad = -1;
    CHECK_ERRNO(EINVAL, rump_sys_sysctlbyname("fs.kept_cache_pages", nullptr, nullptr, &bad, sizeof bad));
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(fsck_problems(img) == "");
}
