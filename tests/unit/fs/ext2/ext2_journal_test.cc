// The ext3/ext4 journal: replay at mount of journals written by the host's
// debugfs (transactions, revoke records, checksums), noload, and crash
// images of the kernel's own journal (a copy taken while mounted, a
// process killed while writing) recovered by the kernel and by the host's
// e2fsck.
#include <signal.h>
#include <sys/wait.h>

#include "ext2_test_util.h"

using namespace ext2_test;

namespace {

std::string dumpe2fs_header(const std::string& img) {
  return capture("dumpe2fs -h " + shell_quote(img) + " 2>/dev/null");
}

bool needs_recovery(const std::string& img) {
  std::string h = dumpe2fs_header(img);
  size_t at = h.find("Filesystem features:");
  if (at == std::string::npos) return false;
  std::string line = h.substr(at, h.find('\n', at) - at);
  return line.find("needs_recovery") != std::string::npos;
}

// e2fsck -fn: clean (exit 0), with its output on failure.
void check_fsck_clean(const std::string& img) { CHECK(fsck_problems(img) == ""); }

// The live log of img as debugfs walks it goes past the journal's end and
// on from its start.
bool log_wraps(const std::string& img) {
  std::string out = capture("debugfs -R logdump " + shell_quote(img) + " 2>/dev/null");
  long prev = -1;
  for (size_t at = out.find(" at block "); at != std::string::npos; at = out.find(" at block ", at + 1)) {
    long b = std::strtol(out.c_str() + at + 10, nullptr, 10);
    if (b < prev) return true;
    prev = b;
  }
  return false;
}

// Whether path on the mounted image img comes to hold want without a sync
// (a commit of the kernel's own): polled for up to 30 s on copies, whose
// log the host's e2fsck replays.
bool reaches_log(const std::string& img, const std::string& path, const std::string& want) {
  std::string copy = img + ".copy";
  for (int tries = 0; tries < 300; tries++) {
    REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(copy) + " && e2fsck -fy " + shell_quote(copy) +
                " >/dev/null 2>&1; true") == 0);
    if (on_image(copy, path) == want) return true;
    usleep(100000);
  }
  return false;
}

uint64_t block_of(const std::string& img, const std::string& path) {
  std::string out = capture("debugfs -R " + shell_quote("bmap " + path + " 0") + " " + shell_quote(img) + " 2>/dev/null");
  return std::strtoull(out.c_str(), nullptr, 10);
}

void write_host_file(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  REQUIRE(std::fwrite(data.data(), 1, data.size(), f) == data.size());
  std::fclose(f);
}

std::string padded(const std::string& s, uint32_t bs) {
  std::string b = s;
  b.resize(bs, '\0');
  return b;
}

// An image with /hello and /other, and a journal holding (without having
// applied them) three transactions written by debugfs: a new block of
// hello, a new block of other, then a revoke of other's block. Replay
// must change hello and leave other.
struct PendingJournal {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  uint32_t bs;
  PendingJournal(const std::string& type, uint32_t block_size, const std::string& jo_flags,
                 const std::string& mkfs_extra = "") : bs(block_size) {
    std::string tree = tmp.path + "/tree";
    REQUIRE(mkdir(tree.c_str(), 0755) == 0);
    write_host_file(tree + "/hello", "original hello\n");
    write_host_file(tree + "/other", "original other\n");
    REQUIRE(make_image(img, type, bs, tree, 32, mkfs_extra));
    uint64_t bh = block_of(img, "/hello"), bo = block_of(img, "/other");
    REQUIRE(bh != 0);
    REQUIRE(bo != 0);
    write_host_file(tmp.path + "/p1", padded("replayed hello\n", bs));
    write_host_file(tmp.path + "/p2", padded("revoked other!\n", bs));
    std::string cmds = "jo " + jo_flags + "\njw -b " + std::to_string(bh) + " " + tmp.path + "/p1\njw -b " +
                       std::to_string(bo) + " " + tmp.path + "/p2\njw -r " + std::to_string(bo) + "\njc\n";
    write_host_file(tmp.path + "/cmds", cmds);
    REQUIRE(run("debugfs -w -f " + shell_quote(tmp.path + "/cmds") + " " + shell_quote(img) + " >/dev/null 2>&1") == 0);
    REQUIRE(needs_recovery(img));
    // Not applied yet.
    REQUIRE(on_image(img, "/hello") == "original hello\n");
  }
};

}  // namespace

TEST_CASE("a journal needing recovery is replayed at mount, revoked blocks are not", "[ext2]") {
  struct Config {
    const char* type;
    uint32_t bs;
    const char* jo;
    const char* extra;
  } configs[] = {
      {"ext4", 1024, "", ""},           {"ext4", 4096, "", ""},
      {"ext4", 4096, "-c", ""},         {"ext4", 1024, "-c -v 2", "-O ^metadata_csum"},
      {"ext3", 4096, "", ""},           {"ext4", 4096, "-c", "-O ^64bit"},
  };
  for (const Config& c : configs) {
    DYNAMIC_SECTION(c.type << " bs " << c.bs << " jo " << c.jo << " " << c.extra) {
      PendingJournal pj(c.type, c.bs, c.jo, c.extra);
      for (unsigned long flags : {0ul, static_cast<unsigned long>(MS_RDONLY)}) {
        INFO("flags " << flags);
        PendingJournal fresh(c.type, c.bs, c.jo, c.extra);
        {
          Mounted m(fresh.img, c.type, flags);
          REQUIRE(m.mount_result == 0);
          std::string got;
          REQUIRE(rump_read_all("/mnt/hello", got));
          CHECK(got == std::string("replayed hello\n\0\0", 15));
          REQUIRE(rump_read_all("/mnt/other", got));
          CHECK(got == "original other\n");
          REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
        }
        CHECK_FALSE(needs_recovery(fresh.img));
        CHECK(on_image(fresh.img, "/hello") == "replayed hello\n");
        check_fsck_clean(fresh.img);
      }
      // The host's e2fsck replays the same journal to the same result
      // (not with v2 checksums: e2fsck 1.47.0 rejects the revoke
      // transaction its own debugfs wrote that way).
      if (std::string(c.jo).find("-v 2") != std::string::npos) continue;
      std::string out = capture("e2fsck -fy " + shell_quote(pj.img) + " 2>&1");
      INFO(out);
      CHECK(on_image(pj.img, "/hello") == "replayed hello\n");
      CHECK(on_image(pj.img, "/other") == "original other\n");
    }
  }
}

TEST_CASE("noload with a journal needing recovery refuses a read-write mount, as Linux", "[ext2]") {
  PendingJournal pj("ext4", 4096, "");
  {
    Mounted m(pj.img, "ext4", 0, "noload");
    CHECK(m.mount_result == -1);
    CHECK(m.mount_errno == EINVAL);
  }
  {
    // Read-only with noload: mounted without replay.
    Mounted m(pj.img, "ext4", MS_RDONLY, "noload");
    REQUIRE(m.mount_result == 0);
    std::string got;
    REQUIRE(rump_read_all("/mnt/hello", got));
    CHECK(got == "original hello\n");
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK(needs_recovery(pj.img));
  {
    // And "ext2" has no journal to replay: the image is the wrong type.
    Mounted m(pj.img, "ext2", MS_RDONLY);
    CHECK(m.mount_result == -1);
    CHECK(m.mount_errno == EINVAL);
  }
}

namespace {

std::string pattern(uint64_t seed, size_t len) {
  std::mt19937_64 rng(seed);
  std::string s(len, '\0');
  for (auto& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

// Writes file i (size from i), fsyncs it when sync.
void write_numbered(int i, bool sync) {
  std::string p = "/mnt/d" + std::to_string(i % 7) + "/f" + std::to_string(i);
  int fd = rump_sys_open(p.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  std::string data = pattern(static_cast<uint64_t>(i), 1000 + static_cast<size_t>(i) * 337 % 20000);
  REQUIRE(rump_sys_write(fd, data.data(), data.size()) == static_cast<long>(data.size()));
  if (sync) REQUIRE(rump_sys_fsync(fd) == 0);
  REQUIRE(rump_sys_close(fd) == 0);
}

void make_dirs() {
  for (int d = 0; d < 7; d++) {
    std::string p = "/mnt/d" + std::to_string(d);
    REQUIRE((rump_sys_mkdir(p.c_str(), 0755) == 0 || errno == EEXIST));
  }
}

// A crash image: recovered by the kernel (every file up to last_synced
// intact, e2fsck clean after), and by the host's e2fsck on a copy.
void check_crash_image(const std::string& img, const char* type, int last_synced, const std::string& dir) {
  std::string copy = dir + "/copy";
  REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(copy)) == 0);
  {
    Mounted m(img, type, 0);
    REQUIRE(m.mount_result == 0);
    for (int i = 0; i <= last_synced; i++) {
      std::string p = "/mnt/d" + std::to_string(i % 7) + "/f" + std::to_string(i);
      std::string got;
      INFO("file " << p);
      REQUIRE(rump_read_all(p, got));
      CHECK((got == pattern(static_cast<uint64_t>(i), 1000 + static_cast<size_t>(i) * 337 % 20000)));
    }
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK_FALSE(needs_recovery(img));
  check_fsck_clean(img);
  // The host's e2fsck replays our journal; nothing else may need fixing.
  // (Not asked to optimise extent trees: a tree one level deeper than its
  // extents need, which a crash between two write-back steps can leave,
  // is valid, and Linux leaves such trees too.)
  std::string out = capture("e2fsck -fy -E no_optimize_extents " + shell_quote(copy) + " 2>&1; echo EXIT=$?");
  INFO(out);
  CHECK(out.find("? yes") == std::string::npos);
  CHECK_FALSE(needs_recovery(copy));
  check_fsck_clean(copy);
  if (last_synced >= 0) {
    std::string p = "/d" + std::to_string(last_synced % 7) + "/f" + std::to_string(last_synced);
    CHECK((on_image(copy, p) == pattern(static_cast<uint64_t>(last_synced),
                                         1000 + static_cast<size_t>(last_synced) * 337 % 20000)));
  }
}

}  // namespace

TEST_CASE("an image copied while mounted is recovered by the kernel and by e2fsck", "[ext2]") {
  struct Config {
    const char* type;
    uint32_t bs;
    const char* opts;
  } configs[] = {{"ext4", 1024, nullptr}, {"ext4", 4096, nullptr}, {"ext3", 1024, nullptr},
                 {"ext4", 4096, "data=journal"}, {"ext4", 1024, "data=writeback,commit=1"}};
  for (const Config& c : configs) {
    DYNAMIC_SECTION(c.type << " bs " << c.bs << " " << (c.opts ? c.opts : "")) {
      TempDir tmp;
      std::string img = tmp.path + "/img";
      REQUIRE(make_image(img, c.type, c.bs, "", 32));
      std::vector<std::string> snaps;
      std::vector<int> synced;
      bool wrapped = false;
      {
        Mounted m(img, c.type, 0, c.opts);
        REQUIRE(m.mount_result == 0);
        make_dirs();
        // Enough fsynced writes to go round the journal more than once;
        // a copy now and then is a crash at that point.
        for (int i = 0; i < 160; i++) {
          write_numbered(i, true);
          if (i % 5 == 4) write_numbered(1000 + i, false);  // not synced: may or may not survive
          bool hunt_wrap = c.bs == 4096 && !c.opts && !wrapped;
          if (i % 40 == 39 || (hunt_wrap && i % 5 == 4)) {
            std::string s = tmp.path + "/snap" + std::to_string(i);
            REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(s)) == 0);

            // Every eighth copy is checked, and the first whose live log
            // runs across the journal's end.
            if (i % 40 == 39 || (!wrapped && log_wraps(s))) {
              wrapped = wrapped || log_wraps(s);
              snaps.push_back(s);
              synced.push_back(i);
            } else {
              unlink(s.c_str());
            }
          }
        }
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      check_fsck_clean(img);
      for (size_t k = 0; k < snaps.size(); k++) {
        INFO("snapshot after file " << synced[k]);
        CHECK(needs_recovery(snaps[k]));
        check_crash_image(snaps[k], c.type, synced[k], tmp.path);
      }
      // With 4 KiB blocks the journal has 1024: the log went round it
      // and some copy has its live part across the end.
      if (c.bs == 4096 && !c.opts) CHECK(wrapped);
    }
  }
}

// The writer of the next test, in a fresh process (an exec of this
// program: a fork alone would inherit no host threads of the kernels the
// parent ran before). A kernel writes heavily (fsynced files, unsynced
// files, overwrites, truncations, renames, unlinks) and reports each
// fsynced file on a pipe, until it is killed.
TEST_CASE("journal crash writer (run by the kill test)", "[.][ext2_writer]") {
  const char* img = std::getenv("EXT2_WRITER_IMG");
  const char* fd_env = std::getenv("EXT2_WRITER_FD");
  if (!img || !fd_env) return;
  int out = std::atoi(fd_env);
  KernelUp up;
  REQUIRE(rump_pub_etfs_register("/dev/img", img, RUMP_ETFS_BLK) == 0);
  REQUIRE(rump_sys_mkdir("/mnt", 0755) == 0);
  REQUIRE(rump_sys_mount("/dev/img", "/mnt", "ext4", 0, "commit=1") == 0);
  for (int d = 0; d < 7; d++) rump_sys_mkdir(("/mnt/d" + std::to_string(d)).c_str(), 0755);
  std::string junk(300000, 'j');
  for (int i = 0;; i++) {
    std::string path = "/mnt/d" + std::to_string(i % 7) + "/f" + std::to_string(i);
    std::string data = pattern(static_cast<uint64_t>(i), 1000 + static_cast<size_t>(i) * 337 % 20000);
    int fd = rump_sys_open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, data.data(), data.size()) == static_cast<long>(data.size()));
    REQUIRE(rump_sys_fsync(fd) == 0);
    rump_sys_close(fd);
    REQUIRE(write(out, &i, sizeof i) == sizeof i);
    std::string j = "/mnt/junk" + std::to_string(i % 5);
    fd = rump_sys_open(j.c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) {
      rump_sys_pwrite(fd, junk.data(), junk.size(), static_cast<off_t>(i % 3) * 100000);
      rump_sys_ftruncate(fd, static_cast<off_t>((i * 7919) % 400000));
      // Unlinked while open: on the orphan list until closed.
      if (i % 6 == 0) rump_sys_unlink(j.c_str());
      rump_sys_close(fd);
    }
    std::string r = "/mnt/r" + std::to_string(i % 11);
    rump_sys_rename(j.c_str(), r.c_str());
    if (i % 4 == 0) rump_sys_unlink(r.c_str());
  }
}

TEST_CASE("a writer killed part-way leaves an image the kernel and e2fsck recover", "[ext2]") {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 64));
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t p = fork();
  REQUIRE(p >= 0);
  if (p == 0) {
    close(fds[0]);
    setenv("EXT2_WRITER_IMG", img.c_str(), 1);
    setenv("EXT2_WRITER_FD", std::to_string(fds[1]).c_str(), 1);
    execl("/proc/self/exe", "ext2_unit", "[ext2_writer]", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  // Let it run until some hundred files are fsynced, then kill it in the
  // middle of whatever it does.
  int last = -1, v;
  while (last < 150 && read(fds[0], &v, sizeof v) == sizeof v) last = v;
  kill(p, SIGKILL);
  int st = 0;
  waitpid(p, &st, 0);
  while (read(fds[0], &v, sizeof v) == sizeof v) last = v;
  close(fds[0]);
  REQUIRE(last >= 150);
  CHECK(WIFSIGNALED(st));
  CHECK(needs_recovery(img));
  check_crash_image(img, "ext4", last, tmp.path);
}

TEST_CASE("data=journal and data=writeback mounts write e2fsck-clean images", "[ext2]") {
  for (const char* opts : {"data=journal", "data=writeback", "data=ordered,commit=30"}) {
    DYNAMIC_SECTION(opts) {
      TempDir tmp;
      std::string img = tmp.path + "/img";
      REQUIRE(make_image(img, "ext4", 4096, "", 32));
      {
        Mounted m(img, "ext4", 0, opts);
        REQUIRE(m.mount_result == 0);
        make_dirs();
        for (int i = 0; i < 60; i++) write_numbered(i, i % 10 == 0);
        // A file larger than a transaction may be (data=journal).
        int fd = rump_sys_open("/mnt/big", O_CREAT | O_WRONLY, 0644);
        REQUIRE(fd >= 0);
        std::string big = pattern(7, 6 << 20);
        REQUIRE(rump_sys_write(fd, big.data(), big.size()) == static_cast<long>(big.size()));
        REQUIRE(rump_sys_ftruncate(fd, 1 << 20) == 0);
        rump_sys_close(fd);
        for (int i = 0; i < 60; i += 3) {
          std::string p = "/mnt/d" + std::to_string(i % 7) + "/f" + std::to_string(i);
          REQUIRE(rump_sys_unlink(p.c_str()) == 0);
        }
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      CHECK_FALSE(needs_recovery(img));
      check_fsck_clean(img);
      CHECK(on_image(img, "/d1/f1") == pattern(1, 1000 + 337));
    }
  }
}

TEST_CASE("the commit timer commits unsynced writes, and again after its first commit; halt commits and checkpoints", "[ext2]") {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 32));
  {
    Mounted m(img, "ext4", 0, "commit=1");
    REQUIRE(m.mount_result == 0);
    int fd = rump_sys_open("/mnt/late", O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    std::string data = pattern(99, 5000);
    REQUIRE(rump_sys_write(fd, data.data(), data.size()) == static_cast<long>(data.size()));
    REQUIRE(rump_sys_close(fd) == 0);
    // No sync: the timer's commit puts it in the log, where the host's
    // e2fsck finds it. Polled, with a bound far above the interval.
    CHECK(reaches_log(img, "/late", data));
    // The timer arms again for the next transaction: a second file, after
    // the first commit, reaches the log the same way.
    fd = rump_sys_open("/mnt/later", O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    std::string more = pattern(100, 3000);
    REQUIRE(rump_sys_write(fd, more.data(), more.size()) == static_cast<long>(more.size()));
    REQUIRE(rump_sys_close(fd) == 0);
    CHECK(reaches_log(img, "/later", more));
    // The kernel halts with the file system mounted.
  }
  CHECK_FALSE(needs_recovery(img));
  check_fsck_clean(img);
  CHECK(on_image(img, "/late") == pattern(99, 5000));
  CHECK(on_image(img, "/later") == pattern(100, 3000));
}

TEST_CASE("stores made only through a host-space view reach the log by the flusher, at the period of "
          "vm.dirty_writeback_centisecs",
          "[ext2][host_map]") {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 32));
  {
    Mounted m(img, "ext4", 0, "commit=1");
    REQUIRE(m.mount_result == 0);
    // Linux's defaults, and its names; then a flusher every 100 ms and no
    // wait for dirty pages to age.
    int v = 0;
    size_t len = sizeof v;
    REQUIRE(rump_sys_sysctlbyname("vm.dirty_writeback_centisecs", &v, &len, nullptr, 0) == 0);
    CHECK(v == 500);
    REQUIRE(rump_sys_sysctlbyname("vm.dirty_expire_centisecs", &v, &len, nullptr, 0) == 0);
    CHECK(v == 3000);
    int bad = -1;
    CHECK_ERRNO(EINVAL, rump_sys_sysctlbyname("vm.dirty_expire_centisecs", nullptr, nullptr, &bad, sizeof bad));
    int period = 10, expire = 0;
    REQUIRE(rump_sys_sysctlbyname("vm.dirty_writeback_centisecs", nullptr, nullptr, &period, sizeof period) == 0);
    REQUIRE(rump_sys_sysctlbyname("vm.dirty_expire_centisecs", nullptr, nullptr, &expire, sizeof expire) == 0);
    REQUIRE(rump_sys_sysctlbyname("vm.dirty_writeback_centisecs", &v, &len, nullptr, 0) == 0);
    CHECK(v == 10);
    int fd = rump_sys_open("/mnt/viewed", O_CREAT | O_RDWR, 0644);
    REQUIRE(fd >= 0);
    const std::string data = pattern(101, 3 * 4096);
    REQUIRE(rump_sys_ftruncate(fd, static_cast<off_t>(data.size())) == 0);
    auto* p = static_cast<char*>(rump_sys_mmap(nullptr, data.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    REQUIRE(p != MAP_FAILED);
    // Plain stores; no msync, fsync, munmap or close until the bytes are
    // found in the image (through its log, as the host's e2fsck replays
    // it). The first run may come at the old period (5 s) still.
    std::memcpy(p, data.data(), data.size());
    CHECK(reaches_log(img, "/viewed", data));
    CHECK(rump_sys_munmap(p, data.size()) == 0);
    rump_sys_close(fd);
  }
  check_fsck_clean(img);
}

TEST_CASE("an open file unlinked goes on the orphan list and is freed at close or at the next mount", "[ext2]") {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 32));
  std::string snap = tmp.path + "/snap";
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    int a = rump_sys_open("/mnt/a", O_CREAT | O_RDWR, 0644);
    int b = rump_sys_open("/mnt/b", O_CREAT | O_RDWR, 0644);
    REQUIRE(a >= 0);
    REQUIRE(b >= 0);
    std::string data = pattern(5, 200000);
    REQUIRE(rump_sys_write(a, data.data(), data.size()) == static_cast<long>(data.size()));
    REQUIRE(rump_sys_write(b, data.data(), data.size()) == static_cast<long>(data.size()));
    REQUIRE(rump_sys_unlink("/mnt/a") == 0);
    REQUIRE(rump_sys_unlink("/mnt/b") == 0);
    REQUIRE(rump_sys_fsync(a) == 0);
    // A crash now: both are orphans.
    REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(snap)) == 0);
    std::string got(data.size(), '\0');
    REQUIRE(rump_sys_pread(a, got.data(), got.size(), 0) == static_cast<long>(got.size()));
    CHECK(got == data);
    REQUIRE(rump_sys_close(a) == 0);
    struct statfs before;
    REQUIRE(rump_sys_statfs("/mnt", &before) == 0);
    REQUIRE(rump_sys_close(b) == 0);
    struct statfs after;
    REQUIRE(rump_sys_statfs("/mnt", &after) == 0);
    CHECK(after.f_bfree >= before.f_bfree + 200000 / 4096);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  check_fsck_clean(img);
  // The crash copy: the next mount frees both orphans.
  // (Orphans are changes in the journal: the superblock with the list is
  // there until the next mount replays it.)
  std::string out = capture("debugfs -R logdump " + shell_quote(snap) + " 2>/dev/null");
  CHECK(needs_recovery(snap));
  {
    Mounted m(snap, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  check_fsck_clean(snap);
  out = capture("dumpe2fs -h " + shell_quote(snap) + " 2>/dev/null");
  CHECK(out.find("First orphan inode") == std::string::npos);
}

TEST_CASE("fallocate and hole punching on ext4 give the bytes the host gives, e2fsck-clean", "[ext2]") {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 32));
  std::string hpath = tmp.path + "/host";
  int hfd = open(hpath.c_str(), O_CREAT | O_RDWR, 0644);
  REQUIRE(hfd >= 0);
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    int rfd = rump_sys_open("/mnt/f", O_CREAT | O_RDWR, 0644);
    REQUIRE(rfd >= 0);
    std::mt19937_64 rng(42);
    auto both_size = [&]() {
      struct stat hs, rs;
      REQUIRE(fstat(hfd, &hs) == 0);
      REQUIRE(rump_sys_fstat(rfd, &rs) == 0);
      CHECK(hs.st_size == rs.st_size);
      return rs;
    };
    for (int step = 0; step < 60; step++) {
      uint64_t off = rng() % (3 << 20);
      uint64_t len = 1 + rng() % (600 << 10);
      int kind = static_cast<int>(rng() % 5);
      INFO("step " << step << " kind " << kind << " off " << off << " len " << len);
      if (kind == 0) {
        std::string data = pattern(rng(), len % 100000 + 1);
        REQUIRE(pwrite(hfd, data.data(), data.size(), static_cast<off_t>(off)) == static_cast<ssize_t>(data.size()));
        REQUIRE(rump_sys_pwrite(rfd, data.data(), data.size(), static_cast<off_t>(off)) ==
                static_cast<long>(data.size()));
      } else {
        int mode = kind == 1 ? 0 : kind == 2 ? FALLOC_FL_KEEP_SIZE : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
        int hr = fallocate(hfd, mode, static_cast<off_t>(off), static_cast<off_t>(len));
        REQUIRE(hr == 0);
        CHECK(rump_sys_fallocate(rfd, mode, static_cast<off_t>(off), static_cast<off_t>(len)) == 0);
      }
      struct stat rs = both_size();
      if (kind == 2 && off >= static_cast<uint64_t>(rs.st_size)) CHECK(rs.st_blocks > 0);
    }
    struct stat rs = both_size();
    std::string got;
    REQUIRE(rump_read_all("/mnt/f", got));
    CHECK((got == host_read_all(hpath)));
    // Punched blocks are free again: punching all of it leaves nothing
    // but what lies past the end (KEEP_SIZE allocations are kept there).
    CHECK(rump_sys_fallocate(rfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 8 << 20) == 0);
    REQUIRE(rump_sys_fstat(rfd, &rs) == 0);
    CHECK(rs.st_blocks == 0);
    REQUIRE(rump_read_all("/mnt/f", got));
    CHECK(got == std::string(got.size(), '\0'));
    rump_sys_close(rfd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  close(hfd);
  check_fsck_clean(img);
}

TEST_CASE(
    "a hole punched inside an extent of a full leaf on a full ext4 keeps every byte outside it; only write-back "
    "and splits take the metadata pool",
    "[ext2]") {
  // Four runs with holes between: four extents, the inode's whole root.
  // A hole inside the first splits it in two: five extents need a leaf
  // block, on a file system that fallocate filled. As on Linux, only
  // ext4's metadata pool is left then, which neither a new directory nor
  // a write may take (both ENOSPC; the host kernel's ext4 on a loop device
  // answers the same), and the punch's split takes from it: it succeeds.
  // Before, the tail of the split extent was freed for want of a leaf
  // block: its bytes read back as zeros.
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 16));
  std::string want(256 << 10, '\0');
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    int fd = rump_sys_open("/mnt/f", O_CREAT | O_RDWR, 0644);
    REQUIRE(fd >= 0);
    for (int r = 0; r < 4; r++) {
      std::string d = pattern(40 + r, 16 << 10);
      off_t at = static_cast<off_t>(r) * (64 << 10);
      REQUIRE(rump_sys_pwrite(fd, d.data(), d.size(), at) == static_cast<long>(d.size()));
      std::copy(d.begin(), d.end(), want.begin() + at);
    }
    REQUIRE(rump_sys_fsync(fd) == 0);
    int fill = rump_sys_open("/mnt/fill", O_CREAT | O_RDWR, 0644);
    REQUIRE(fill >= 0);
    off_t at = 0;
    // A failed call keeps what it allocated; the next, smaller, goes
    // on from the same offset.
    for (off_t chunk = 8 << 20; chunk >= 4096; chunk /= 2) {
      while (rump_sys_fallocate(fill, 0, at, chunk) == 0) at += chunk;
      CHECK(errno == ENOSPC);
    }
    struct statfs sv;
    REQUIRE(rump_sys_statfs("/mnt", &sv) == 0);
    CHECK(sv.f_bavail == 0);
    CHECK(sv.f_bfree > 10);  // the pool
    CHECK_ERRNO(ENOSPC, rump_sys_mkdir("/mnt/d", 0755));
    int nf = rump_sys_open("/mnt/new", O_CREAT | O_WRONLY, 0644);
    REQUIRE(nf >= 0);
    CHECK_ERRNO(ENOSPC, rump_sys_write(nf, "x", 1));
    rump_sys_close(nf);
    REQUIRE(rump_sys_statfs("/mnt", &sv) == 0);
    CHECK(sv.f_bfree > 10);
    REQUIRE(rump_sys_fsync(fill) == 0);
    CHECK(rump_sys_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096) == 0);
    std::fill(want.begin() + 4096, want.begin() + 8192, '\0');
    std::string got;
    want.resize(3 * (64 << 10) + (16 << 10));
    REQUIRE(rump_read_all("/mnt/f", got));
    CHECK(got.size() == want.size());
    CHECK((got == want));
    rump_sys_close(fill);
    rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  check_fsck_clean(img);
  // The host's debugfs sees the tree: one level deeper with five
  // extents after the punch, the root's four before.
  std::string ex = capture("debugfs -R 'ex /f' " + shell_quote(img) + " 2>/dev/null");
  INFO(ex);
  CHECK(ex.find(" 1/ 1   5/  5") != std::string::npos);
}

TEST_CASE("fallocate on a file without extents is EOPNOTSUPP, punching works, as ext4", "[ext2]") {
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext3", 4096, "", 32));
  {
    Mounted m(img, "ext3", 0);
    REQUIRE(m.mount_result == 0);
    int fd = rump_sys_open("/mnt/f", O_CREAT | O_RDWR, 0644);
    REQUIRE(fd >= 0);
    std::string data = pattern(3, 100000);
    REQUIRE(rump_sys_write(fd, data.data(), data.size()) == static_cast<long>(data.size()));
    CHECK_ERRNO(EOPNOTSUPP, rump_sys_fallocate(fd, 0, 0, 200000));
    CHECK_ERRNO(EOPNOTSUPP, rump_sys_fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 200000));
    CHECK(rump_sys_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 5000, 60000) == 0);
    std::string got;
    REQUIRE(rump_read_all("/mnt/f", got));
    std::fill(data.begin() + 5000, data.begin() + 65000, '\0');
    CHECK(got == data);
    rump_sys_close(fd);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  check_fsck_clean(img);
}

TEST_CASE("operations larger than the free log of a 1 MiB journal checkpoint first: no ENOSPC, clean after a crash",
          "[ext2][journal]") {
  // 1 KiB blocks and mke2fs's smallest journal (1,024 blocks). A file with
  // one extent per block (every other block allocated) has an extent tree
  // of hundreds of blocks; each truncate below frees it and builds the
  // kept part again in one operation, hundreds of journaled blocks at
  // once, more than the log has free whenever earlier transactions are
  // still in it (the reserve kept before each operation is an eighth of
  // the log). A directory of thousands of long names adds its own.
  TempDir tmp;
  std::string img = tmp.path + "/img";
  std::string snap = tmp.path + "/snap";
  REQUIRE(make_image(img, "ext4", 1024, "", 64, "-J size=1"));
  constexpr off_t kBs = 1024;
  constexpr int kExtents = 16000;
  {
    Mounted m(img, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    REQUIRE(rump_sys_mkdir("/mnt/big", 0755) == 0);
    for (int i = 0; i < 3000; i++) {
      std::string p = "/mnt/big/" + std::string(150, 'n') + std::to_string(i);
      int fd = rump_sys_open(p.c_str(), O_CREAT | O_WRONLY, 0644);
      REQUIRE(fd >= 0);
      REQUIRE(rump_sys_close(fd) == 0);
    }
    int fd = rump_sys_open("/mnt/frag", O_CREAT | O_RDWR, 0644);
    REQUIRE(fd >= 0);
    for (int i = 0; i < kExtents; i++) REQUIRE(rump_sys_fallocate(fd, 0, 2 * i * kBs, kBs) == 0);
    // Each cut keeps 1,000 extents fewer: transactions of 250 to 400
    // blocks, one after another, so that the log fills up whatever it
    // held before.
    for (off_t keep = kExtents - 1000; keep >= 4000; keep -= 1000) {
      INFO("truncate to " << keep << " extents");
      REQUIRE(rump_sys_ftruncate(fd, 2 * keep * kBs) == 0);
    }
    REQUIRE(rump_sys_fsync(fd) == 0);
    // A crash now: the copy has the last truncate in its log.
    REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(snap)) == 0);
    REQUIRE(rump_sys_ftruncate(fd, 0) == 0);
    REQUIRE(rump_sys_close(fd) == 0);
    for (int i = 0; i < 3000; i += 2) {
      std::string p = "/mnt/big/" + std::string(150, 'n') + std::to_string(i);
      REQUIRE(rump_sys_unlink(p.c_str()) == 0);
    }
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  check_fsck_clean(img);
  {
    Mounted m(img, "ext4", MS_RDONLY);
    REQUIRE(m.mount_result == 0);
    struct stat st;
    REQUIRE(rump_sys_stat("/mnt/frag", &st) == 0);
    CHECK(st.st_size == 0);
    CHECK(st.st_blocks == 0);
    CHECK(rump_list("/mnt/big").entries.size() == 1500);
  }
  // The crash copy: recovered by the kernel and by the host's e2fsck,
  // clean both ways. (e2fsck -fy may offer to make the cut extent tree
  // narrower or shorter: optimisations, which Linux's truncate leaves to
  // it too.)
  CHECK(needs_recovery(snap));
  std::string copy = tmp.path + "/copy";
  REQUIRE(run("cp " + shell_quote(snap) + " " + shell_quote(copy)) == 0);
  {
    Mounted m(snap, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    struct stat st;
    REQUIRE(rump_sys_stat("/mnt/frag", &st) == 0);
    CHECK(st.st_size == 2 * 4000 * kBs);
    CHECK(rump_list("/mnt/big").entries.size() == 3000);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  CHECK_FALSE(needs_recovery(snap));
  check_fsck_clean(snap);
  std::string out = capture("e2fsck -fy " + shell_quote(copy) + " 2>&1");
  INFO(out);
  for (size_t at = out.find("? yes"); at != std::string::npos; at = out.find("? yes", at + 1)) {
    size_t line = out.rfind('\n', at);
    std::string asked = out.substr(line + 1, at - line);
    CHECK((asked.find("could be narrower") != std::string::npos || asked.find("could be shorter") != std::string::npos));
  }
  CHECK_FALSE(needs_recovery(copy));
  check_fsck_clean(copy);
}

TEST_CASE("under a small memory limit the journal commits before its pinned buffers fill it",
          "[ext2][journal][memlimit]") {
  // data=journal pins every written block until its transaction commits;
  // a 256 MiB journal would let a transaction grow to 32 MiB of them, and
  // pinned buffers can be neither written back nor evicted. With a 16 MiB
  // limit, 48 MiB of writes must still succeed.
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext4", 4096, "", 1024, "-J size=256"));
  constexpr uint64_t kFile = 48u << 20;
  constexpr size_t kChunk = 1u << 20;
  {
    rump_test::KernelUp up({.memlimit = 16u << 20});
    REQUIRE(rump_pub_etfs_register("/dev/img", img.c_str(), RUMP_ETFS_BLK) == 0);
    REQUIRE(rump_sys_mkdir("/mnt", 0755) == 0);
    REQUIRE(rump_sys_mount("/dev/img", "/mnt", "ext4", 0, "data=journal,commit=600") == 0);
    int fd = rump_sys_open("/mnt/f", O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    for (uint64_t off = 0; off < kFile; off += kChunk) {
      std::string c = pattern(off, kChunk);
      INFO("offset " << off);
      REQUIRE(rump_sys_write(fd, c.data(), c.size()) == static_cast<long>(c.size()));
    }
    REQUIRE(rump_sys_fsync(fd) == 0);
    REQUIRE(rump_sys_close(fd) == 0);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  check_fsck_clean(img);
  std::string out = tmp.path + "/out";
  REQUIRE(run("debugfs -R " + shell_quote("dump /f " + out) + " " + shell_quote(img) + " >/dev/null 2>&1") == 0);
  std::string got = host_read_all(out);
  REQUIRE(got.size() == kFile);
  for (uint64_t off = 0; off < kFile; off += kChunk) {
    INFO("offset " << off);
    CHECK(got.compare(off, kChunk, pattern(off, kChunk)) == 0);
  }
}

namespace {

// Where the journal superblock of img is (block 0 of inode 8).
off_t journal_super_at(const std::string& img, uint32_t bs) {
  std::string out = capture("debugfs -R " + shell_quote("bmap <8> 0") + " " + shell_quote(img) + " 2>/dev/null");
  uint64_t jb = std::strtoull(out.c_str(), nullptr, 10);
  REQUIRE(jb != 0);
  return static_cast<off_t>(jb * bs);
}

// The journal superblock's type (3: version 1, 4: version 2).
int journal_super_type(const std::string& img, uint32_t bs) {
  std::string all = host_read_all(img);
  off_t at = journal_super_at(img, bs);
  REQUIRE(all.size() >= static_cast<size_t>(at) + 8);
  return static_cast<unsigned char>(all[static_cast<size_t>(at) + 7]);
}

// Makes the journal superblock of img a version 1 one (as old ext3 tools
// wrote): type 3, and nothing after s_errno (no feature fields, no users).
void make_v1_journal(const std::string& img, uint32_t bs) {
  off_t at = journal_super_at(img, bs);
  int fd = open(img.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  char sb[1024];
  REQUIRE(pread(fd, sb, sizeof sb, at) == static_cast<ssize_t>(sizeof sb));
  const char v1[4] = {0, 0, 0, 3};
  std::memcpy(sb + 4, v1, 4);
  std::memset(sb + 0x24, 0, sizeof sb - 0x24);
  REQUIRE(pwrite(fd, sb, sizeof sb, at) == static_cast<ssize_t>(sizeof sb));
  close(fd);
}

}  // namespace

TEST_CASE("a version 1 journal is written: crash copies replay clean, freed logged blocks are reused safely",
          "[ext2][journal]") {
  // Version 1 has no revoke records. A file's indirect block is journaled,
  // freed by a truncate and handed out again as another file's data: a
  // replay of its old copy would overwrite that data.
  TempDir tmp;
  std::string img = tmp.path + "/img";
  REQUIRE(make_image(img, "ext3", 1024, "", 32));
  make_v1_journal(img, 1024);
  check_fsck_clean(img);
  REQUIRE(journal_super_type(img, 1024) == 3);
  std::vector<std::string> snaps;
  std::vector<int> synced;
  {
    Mounted m(img, "ext3", 0);
    REQUIRE(m.mount_result == 0);
    make_dirs();
    std::string scratch = pattern(77, 30000);  // past the 12 direct blocks
    for (int i = 0; i < 90; i++) {
      if (i % 3 == 0) {
        int fd = rump_sys_open("/mnt/scratch", O_CREAT | O_WRONLY | O_TRUNC, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(rump_sys_write(fd, scratch.data(), scratch.size()) == static_cast<long>(scratch.size()));
        REQUIRE(rump_sys_fsync(fd) == 0);
        REQUIRE(rump_sys_ftruncate(fd, 0) == 0);
        REQUIRE(rump_sys_close(fd) == 0);
      }
      write_numbered(i, true);
      if (i % 30 == 29) {
        std::string s = tmp.path + "/snap" + std::to_string(i);
        REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(s)) == 0);
        snaps.push_back(s);
        synced.push_back(i);
      }
    }
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  check_fsck_clean(img);
  // Still a version 1 journal.
  CHECK(journal_super_type(img, 1024) == 3);
  for (size_t k = 0; k < snaps.size(); k++) {
    INFO("snapshot after file " << synced[k]);
    CHECK(needs_recovery(snaps[k]));
    check_crash_image(snaps[k], "ext3", synced[k], tmp.path);
  }
}

TEST_CASE("a truncate larger than the whole log is split into transactions; a crash between them is finished at mount",
          "[ext2][journal]") {
  // 1 KiB blocks, a 1,024-block journal and groups of 256 blocks. A file
  // with one extent per block (every other block allocated) has an extent
  // tree of about a thousand blocks, more than the log; its blocks lie in
  // some 160 groups, so freeing all of them changes that many bitmaps,
  // more than one step may hold.
  TempDir tmp;
  std::string img = tmp.path + "/img";
  std::string snap = tmp.path + "/snap";
  REQUIRE(make_image(img, "ext4", 1024, "", 64, "-J size=1 -g 256 -N 2048"));
  constexpr off_t kBs = 1024;
  constexpr int kExtents = 40000;
  {
    Mounted m(img, "ext4", 0, "commit=600");
    REQUIRE(m.mount_result == 0);
    int fd = rump_sys_open("/mnt/frag", O_CREAT | O_RDWR, 0644);
    REQUIRE(fd >= 0);
    for (int i = 0; i < kExtents; i++) REQUIRE(rump_sys_fallocate(fd, 0, 2 * i * kBs, kBs) == 0);
    REQUIRE(rump_sys_fsync(fd) == 0);
    // Cutting off the last extent: a step of its own (rebuilding the
    // whole tree would not fit the log).
    REQUIRE(rump_sys_ftruncate(fd, 2 * (kExtents - 1) * kBs) == 0);
    REQUIRE(rump_sys_fsync(fd) == 0);
    // Everything: several transactions; the last one is not committed
    // when the copy is taken (a crash right after the call).
    REQUIRE(rump_sys_ftruncate(fd, 0) == 0);
    REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(snap)) == 0);
    struct stat st;
    REQUIRE(rump_sys_fstat(fd, &st) == 0);
    CHECK(st.st_blocks == 0);
    REQUIRE(rump_sys_close(fd) == 0);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  check_fsck_clean(img);
  REQUIRE(needs_recovery(snap));
  std::string copy = tmp.path + "/copy";
  REQUIRE(run("cp " + shell_quote(snap) + " " + shell_quote(copy)) == 0);
  {
    // Ours: the log replayed, then the cut finished from the orphan list.
    Mounted m(snap, "ext4", 0);
    REQUIRE(m.mount_result == 0);
    char msg[16384] = {};
    rump_msgbuf_read(msg, sizeof msg);
    CHECK(std::string(msg).find("truncating orphaned inode") != std::string::npos);
    struct stat st;
    REQUIRE(rump_sys_stat("/mnt/frag", &st) == 0);
    CHECK(st.st_size == 0);
    CHECK(st.st_blocks == 0);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  check_fsck_clean(snap);
  // The host's e2fsck from the same copy: it replays the log and finishes
  // the cut from the orphan list, clean afterwards. (e2fsck 1.47.0 cuts an
  // orphaned extent file with its block iterator, which stops at a tree
  // block the cut itself freed and leaves the rest to its later passes, so
  // it reports fixes here that a Linux-made crash image of a long truncate
  // gets as well; the kernel's own replay above frees every block it finds
  // marked in use and leaves a clean image.)
  std::string out = capture("e2fsck -fy " + shell_quote(copy) + " 2>&1");
  INFO(out);
  CHECK(out.find("Truncating orphaned inode") != std::string::npos);
  check_fsck_clean(copy);
  {
    Mounted m(copy, "ext4", MS_RDONLY);
    REQUIRE(m.mount_result == 0);
    struct stat st;
    REQUIRE(rump_sys_stat("/mnt/frag", &st) == 0);
    CHECK(st.st_size == 0);
  }
}

namespace {

// An image of 1 KiB blocks, some 1,100 groups of 256 blocks and the
// smallest journal (1,024 blocks) holding /spread, a file of about a
// thousand blocks, one in each group: before the kernel writes it, debugfs
// marks every free block in use but one per group (with free counts to
// match, uninitialised groups made initialised first; the last few groups
// left alone), and afterwards e2fsck gives the marked blocks back. Freeing the file's blocks changes
// every group's bitmap: more blocks than the whole log. data: the bytes
// written.
void make_spread_image(const std::string& img, const std::string& dir, const std::string& type,
                       std::string& data) {
  REQUIRE(make_image(img, type, 1024, "", 280, "-g 256 -N 2048 -m 0 -J size=1"));
  struct Group {
    uint64_t first;
    bool uninit;
    long free_block;  // the first free block, or -1
  };
  std::vector<Group> groups;
  std::string dump = capture("dumpe2fs " + shell_quote(img) + " 2>/dev/null");
  for (size_t at = 0; at < dump.size();) {
    size_t nl = dump.find('\n', at);
    if (nl == std::string::npos) nl = dump.size();
    std::string line = dump.substr(at, nl - at);
    at = nl + 1;
    long g = 0;
    unsigned long first = 0, last = 0;
    if (std::sscanf(line.c_str(), "Group %ld: (Blocks %lu-%lu)", &g, &first, &last) == 3)
      groups.push_back(Group{first, line.find("BLOCK_UNINIT") != std::string::npos, -1});
    else if (line.rfind("  Free blocks: ", 0) == 0 && line.size() > 15 && !groups.empty())
      groups.back().free_block = std::strtol(line.c_str() + 15, nullptr, 10);
  }
  REQUIRE(groups.size() > 1050);
  // The last groups stay as they are: room for what an extent mount keeps
  // aside for tree blocks (and the superblock's count stays theirs).
  const size_t spread = groups.size() - 24;
  std::string cmds = "setb " + std::to_string(groups[0].first) + " " +
                     std::to_string(groups[spread].first - groups[0].first) + "\n";
  long kept = 0;
  for (size_t g = 0; g < spread; g++) {
    std::string n = std::to_string(g);
    if (groups[g].uninit) cmds += "set_bg " + n + " flags 4\n";
    cmds += "set_bg " + n + " free_blocks_count " + (groups[g].free_block >= 0 ? "1" : "0") + "\n";
    if (groups[g].free_block >= 0) {
      cmds += "freeb " + std::to_string(groups[g].free_block) + "\n";
      kept++;
    }
    cmds += "set_bg " + n + " checksum calc\n";
  }
  write_host_file(dir + "/cmds", cmds);
  REQUIRE(run("debugfs -w -f " + shell_quote(dir + "/cmds") + " " + shell_quote(img) + " >/dev/null 2>&1") == 0);
  // Room for the data and its indirect or extent tree blocks.
  data = pattern(7, static_cast<size_t>(kept - 40) * 1024);
  {
    Mounted m(img, type.c_str(), 0);
    REQUIRE(m.mount_result == 0);
    int fd = rump_sys_open("/mnt/spread", O_CREAT | O_RDWR, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(rump_sys_write(fd, data.data(), data.size()) == static_cast<long>(data.size()));
    REQUIRE(rump_sys_close(fd) == 0);
    REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
  }
  run("e2fsck -fy " + shell_quote(img) + " >/dev/null 2>&1");
  std::string problems = fsck_problems(img);
  INFO(problems);
  REQUIRE(problems.empty());
  // Its data blocks lie in more groups than the log has blocks.
  std::string blocks = capture("debugfs -R " + shell_quote("blocks /spread") + " " + shell_quote(img) + " 2>/dev/null");
  std::set<uint64_t> in_groups;
  const uint64_t first_data = groups[0].first;
  for (const char* at = blocks.c_str(); *at;) {
    char* end = nullptr;
    uint64_t b = std::strtoull(at, &end, 10);
    if (end == at) break;
    in_groups.insert((b - first_data) / 256);
    at = end;
  }
  INFO(in_groups.size() << " groups");
  REQUIRE(in_groups.size() > 1024);
}

// What a punched hole leaves: the bytes outside [off, off+len) as written,
// those inside zero (all of them when done, else whatever part of the
// blocks a step reached).
void check_punched(const std::string& got, const std::string& data, size_t off, size_t len, bool done) {
  REQUIRE(got.size() == data.size());
  CHECK(got.compare(0, off, data, 0, off) == 0);
  CHECK(got.compare(off + len, std::string::npos, data, off + len, std::string::npos) == 0);
  if (done) CHECK(got.find_first_not_of('\0', off) >= off + len);
}

}  // namespace

TEST_CASE("a hole punched or a truncate larger than the whole log is split into transactions, with or without extents",
          "[ext2][journal]") {
  for (const char* type : {"ext3", "ext4"}) {
    DYNAMIC_SECTION(type) {
      TempDir tmp;
      std::string img = tmp.path + "/img", snap = tmp.path + "/snap", base = tmp.path + "/base";
      std::string data;
      make_spread_image(img, tmp.path, type, data);
      REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(base)) == 0);
      const size_t off = 10 * 1024 + 100, len = data.size() - 20 * 1024;
      {
        Mounted m(img, type, 0, "commit=600");
        REQUIRE(m.mount_result == 0);
        int fd = rump_sys_open("/mnt/spread", O_RDWR, 0);
        REQUIRE(fd >= 0);
        struct stat before, after;
        REQUIRE(rump_sys_fstat(fd, &before) == 0);
        REQUIRE(rump_sys_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0);
        // A crash now: the last step is not committed.
        REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(snap)) == 0);
        // Every step fits the log: the commit succeeds.
        CHECK(rump_sys_fsync(fd) == 0);
        REQUIRE(rump_sys_fstat(fd, &after) == 0);
        CHECK(after.st_size == before.st_size);
        CHECK(after.st_blocks < before.st_blocks / 32);
        std::string got;
        REQUIRE(rump_read_all("/mnt/spread", got));
        check_punched(got, data, off, len, true);
        REQUIRE(rump_sys_close(fd) == 0);
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      check_fsck_clean(img);
      REQUIRE(needs_recovery(snap));
      {
        Mounted m(snap, type, 0);
        REQUIRE(m.mount_result == 0);
        std::string got;
        REQUIRE(rump_read_all("/mnt/spread", got));
        check_punched(got, data, off, len, false);
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      check_fsck_clean(snap);
      // The whole file cut off, and a crash copy between the steps: the
      // next mount finishes the cut from the orphan list.
      REQUIRE(run("cp " + shell_quote(base) + " " + shell_quote(img)) == 0);
      {
        Mounted m(img, type, 0, "commit=600");
        REQUIRE(m.mount_result == 0);
        int fd = rump_sys_open("/mnt/spread", O_RDWR, 0);
        REQUIRE(fd >= 0);
        REQUIRE(rump_sys_ftruncate(fd, 1000) == 0);
        REQUIRE(run("cp " + shell_quote(img) + " " + shell_quote(snap)) == 0);
        CHECK(rump_sys_fsync(fd) == 0);
        REQUIRE(rump_sys_close(fd) == 0);
        struct stat st;
        REQUIRE(rump_sys_stat("/mnt/spread", &st) == 0);
        // One data block (and, with extents, the tree blocks left).
        CHECK(st.st_blocks >= 2);
        CHECK(st.st_blocks <= (std::string(type) == "ext3" ? 2 : 6));
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      check_fsck_clean(img);
      REQUIRE(needs_recovery(snap));
      {
        Mounted m(snap, type, 0);
        REQUIRE(m.mount_result == 0);
        char msg[16384] = {};
        rump_msgbuf_read(msg, sizeof msg);
        CHECK(std::string(msg).find("truncating orphaned inode") != std::string::npos);
        std::string got;
        REQUIRE(rump_read_all("/mnt/spread", got));
        CHECK(got == data.substr(0, 1000));
        REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
      }
      check_fsck_clean(snap);
    }
  }
}
