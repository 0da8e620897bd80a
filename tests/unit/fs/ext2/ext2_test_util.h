// Helpers for the ext2/3/4 tests: temporary directories, host trees
// generated from a seed, images made by the host's mke2fs, a kernel with an
// image mounted, and tree comparisons between the host and the kernel.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <algorithm>
#include <string>
#include <vector>

#include <rump/fault.h>
#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpvfs.h>

#include "rump_test.h"

namespace ext2_test {

using rump_test::KernelUp;

// Runs a shell command; its exit status.
inline int run(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Runs a command and returns what it printed.
inline std::string capture(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

// e2fsck -fn of img: "" when clean (exit 0), else what it printed (its
// first 4,000 bytes and its exit line: a badly broken image makes
// e2fsck print without end).
inline std::string fsck_problems(const std::string& img) {
  std::string out = capture("e2fsck -fn " + shell_quote(img) + " 2>&1; echo EXIT=$?");
  if (out.find("EXIT=0") != std::string::npos) return "";
  constexpr size_t kShown = 4000;
  if (out.size() > kShown + 100) {
    size_t exit_at = out.rfind("EXIT=");
    out = out.substr(0, kShown) + "\n... (" + std::to_string(out.size() - kShown) + " bytes more)\n" +
          (exit_at != std::string::npos ? out.substr(exit_at) : "");
  }
  return out;
}

// e2fsck -fy of img (repairs what it finds): its exit status, 0 when
// there was nothing to repair, 1 when it repaired everything.
inline int fsck_repair(const std::string& img) {
  return run("e2fsck -fy " + shell_quote(img) + " >/dev/null 2>&1");
}

// The state line of img's superblock as dumpe2fs shows it ("Filesystem
// state:  clean", "not clean", "clean with errors" ...).
inline std::string fs_state(const std::string& img) {
  std::string out = capture("dumpe2fs -h " + shell_quote(img) + " 2>/dev/null");
  size_t at = out.find("Filesystem state:");
  REQUIRE(at != std::string::npos);
  return out.substr(at, out.find('\n', at) - at);
}

// The superblock of img says the file system has errors (EXT2_ERROR_FS,
// which dumpe2fs shows as "with errors").
inline bool records_errors(const std::string& img) { return fs_state(img).find("with errors") != std::string::npos; }

// The bytes of the file at path on img, as debugfs reads them ("" if
// there is none).
inline std::string on_image(const std::string& img, const std::string& path) {
  return capture("debugfs -R " + shell_quote("cat " + path) + " " + shell_quote(img) + " 2>/dev/null");
}

// The current kernel's message buffer, all of it. The buffer is a ring
// of 16 KiB (kern/msgbuf.h) that loses its oldest text when full: a
// REQUIRE fails if it may have, so that a message looked for was not
// lost.
inline std::string kernel_messages() {
  std::string buf(32 * 1024, '\0');
  size_t n = rump_msgbuf_read(buf.data(), buf.size());
  REQUIRE(n < 16 * 1024);
  buf.resize(n);
  return buf;
}

// A temporary directory, removed with everything in it.
struct TempDir {
  std::string path;
  TempDir() {
    char p[] = "/tmp/ext2_testXXXXXX";
    REQUIRE(mkdtemp(p) != nullptr);
    path = p;
  }
  ~TempDir() { run("rm -rf " + shell_quote(path)); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// A tree of files made from a seed: odd names (any byte but '/' and NUL),
// sizes from 0 B to a few MiB with holes, short and long symlinks, hard
// links, FIFOs, device nodes (as root), modes, owners and times.
class TreeGen {
 public:
  // coarse_times: whole seconds before 2038, all that mke2fs -d keeps.
  // sparse: files with holes (mke2fs 1.47.0 -d with inline_data drops a
  // hole at the end of a file, so that variant goes without).
  TreeGen(uint64_t seed, uint32_t block_size, bool coarse_times = true, bool sparse = true)
      : rng_(seed), bs_(block_size), coarse_(coarse_times), sparse_(sparse) {}

  void make(const std::string& root, int depth = 3) {
    REQUIRE((mkdir(root.c_str(), 0755) == 0 || errno == EEXIST));
    fill(root, depth);
    // Times of directories last: creating entries changes them.
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) set_times(*it);
  }

 private:
  uint64_t pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }

  std::string name(std::set<std::string>& used) {
    static const char* const kFixed[] = {" space", "trailing.", "\xc3\xbcnic\xc3\xb6\x64\x65", "-dash",
                                         "\x01\x02\x7f", "\xff\xfe", "a b\tc\nd", "..." , "x"};
    for (;;) {
      std::string n;
      uint64_t kind = pick(10);
      if (kind == 0) {
        n = kFixed[pick(sizeof kFixed / sizeof *kFixed)];
      } else if (kind == 1) {
        n.assign(200 + pick(56), 'L');  // up to 255 bytes
        n[0] = static_cast<char>('a' + pick(26));
      } else {
        size_t len = 1 + pick(24);
        for (size_t i = 0; i < len; i++) {
          char c;
          do c = static_cast<char>(1 + pick(255));
          while (c == '/');
          n += c;
        }
      }
      if (n == "." || n == ".." || used.count(n)) continue;
      used.insert(n);
      return n;
    }
  }

  void set_times(const std::string& p) {
    timespec ts[2];
    ts[0].tv_sec = static_cast<time_t>(1000000000 + pick(1000000000));
    ts[0].tv_nsec = static_cast<long>(pick(1000000000));
    ts[1].tv_sec = static_cast<time_t>(pick(4) == 0 ? 2200000000 + pick(1000000) : 500000000 + pick(1500000000));
    ts[1].tv_nsec = static_cast<long>(pick(1000000000));
    if (coarse_) {
      ts[0].tv_nsec = ts[1].tv_nsec = 0;
      ts[1].tv_sec = static_cast<time_t>(500000000 + pick(1500000000));
    }
    REQUIRE(utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
  }

  void owner(const std::string& p) {
    uid_t u = pick(3) == 0 ? 0 : static_cast<uid_t>(pick(70000));
    gid_t g = pick(3) == 0 ? 0 : static_cast<gid_t>(pick(70000));
    if (geteuid() == 0) REQUIRE(lchown(p.c_str(), u, g) == 0);
  }

  uint64_t file_size() {
    switch (pick(8)) {
      case 0: return 0;
      case 1: return 1 + pick(59);
      case 2: return 59 + pick(3);
      case 3: return bs_ - 1 + pick(3);
      case 4: return pick(64 * 1024);
      case 5: return 12 * uint64_t{bs_} + pick(3 * bs_);  // past the direct blocks
      case 6: return pick(3u << 20);
      default: return pick(300 * 1024);
    }
  }

  void write_file(const std::string& p) {
    int fd = open(p.c_str(), O_CREAT | O_WRONLY | O_EXCL, 0600);
    REQUIRE(fd >= 0);
    uint64_t size = file_size();
    bool sparse = sparse_ && size > 2 * bs_ && pick(2) == 0;
    std::vector<char> data;
    if (!sparse) {
      data.resize(size);
      for (auto& c : data) c = static_cast<char>(rng_());
      REQUIRE(write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    } else {
      // A few pieces at random offsets, holes between (and maybe at the end).
      int pieces = 1 + static_cast<int>(pick(4));
      for (int i = 0; i < pieces; i++) {
        uint64_t off = pick(size);
        uint64_t len = 1 + pick(std::min<uint64_t>(size - off, 3 * bs_));
        data.resize(len);
        for (auto& c : data) c = static_cast<char>(rng_());
        REQUIRE(pwrite(fd, data.data(), len, static_cast<off_t>(off)) == static_cast<ssize_t>(len));
      }
      REQUIRE(ftruncate(fd, static_cast<off_t>(size)) == 0);
    }
    close(fd);
    static const mode_t kModes[] = {0644, 0600, 0755, 0700, 0444, 04755, 02755, 0640, 0111, 0};
    REQUIRE(chmod(p.c_str(), kModes[pick(sizeof kModes / sizeof *kModes)]) == 0);
    owner(p);
    files_.push_back(p);
  }

  void fill(const std::string& dir, int depth) {
    dirs_.push_back(dir);
    std::set<std::string> used;
    int n = dirs_.size() == 1 ? 20 + static_cast<int>(pick(10)) : 3 + static_cast<int>(pick(10));
    for (int i = 0; i < n; i++) {
      std::string p = dir + "/" + name(used);
      switch (pick(10)) {
        case 0: case 1: case 2: case 3: write_file(p); set_times(p); break;
        case 4: {
          std::string target;
          size_t len = pick(2) ? 1 + pick(59) : 60 + pick(400);
          for (size_t j = 0; j < len; j++) target += static_cast<char>(pick(2) ? 'a' + pick(26) : '/');
          REQUIRE(symlink(target.c_str(), p.c_str()) == 0);
          owner(p);
          set_times(p);
          break;
        }
        case 5:
          if (!files_.empty()) {
            REQUIRE(link(files_[pick(files_.size())].c_str(), p.c_str()) == 0);
            break;
          }
          write_file(p);
          set_times(p);
          break;
        case 6:
          REQUIRE(mkfifo(p.c_str(), 0640) == 0);
          set_times(p);
          break;
        case 7:
          if (geteuid() == 0) {
            dev_t d = makedev(static_cast<unsigned>(pick(4096)), static_cast<unsigned>(pick(1u << 20)));
            REQUIRE(mknod(p.c_str(), (pick(2) ? S_IFCHR : S_IFBLK) | 0660, d) == 0);
            set_times(p);
            break;
          }
          write_file(p);
          set_times(p);
          break;
        default:
          if (depth > 0) {
            REQUIRE(mkdir(p.c_str(), pick(4) ? 0755 : 01777) == 0);
            owner(p);
            fill(p, depth - 1);
          } else {
            write_file(p);
            set_times(p);
          }
      }
    }
  }

  std::mt19937_64 rng_;
  uint32_t bs_;
  bool coarse_;
  bool sparse_;
  std::vector<std::string> files_;
  std::vector<std::string> dirs_;
};

// Makes an image of the tree with the host's mke2fs; false if mke2fs
// refuses the combination.
inline bool make_image(const std::string& img, const std::string& type, uint32_t block_size, const std::string& tree,
                       uint64_t size_mb, const std::string& extra = "") {
  std::string cmd = "mke2fs -q -F -t " + type + (block_size ? " -b " + std::to_string(block_size) : "") + " " +
                    extra + (tree.empty() ? "" : " -d " + shell_quote(tree)) + " " + shell_quote(img) + " " +
                    std::to_string(size_mb) + "M >/dev/null 2>&1";
  return run(cmd) == 0;
}

// Runs fn with every block I/O of kernel k failing (RUMP_FAULT_IO at
// probability 1), then switches the failures off; fn's result.
template <class Fn>
auto with_io_failing(struct rump_kernel* k, Fn fn) {
  rump_fault_config fc{1, 1.0, RUMP_FAULT_IO};
  REQUIRE(rump_kernel_set_faults(k, &fc) == 0);
  auto r = fn();
  REQUIRE(rump_kernel_set_faults(k, nullptr) == 0);
  return r;
}

// A kernel with img registered at /dev/img and mounted at /mnt.
struct Mounted {
  KernelUp up;
  int mount_result = -1;
  int mount_errno = 0;
  Mounted(const std::string& img, const char* type, unsigned long flags = MS_RDONLY, const char* opts = nullptr) {
    REQUIRE(rump_pub_etfs_register("/dev/img", img.c_str(), RUMP_ETFS_BLK) == 0);
    REQUIRE(rump_sys_mkdir("/mnt", 0755) == 0);
    errno = 0;
    mount_result = rump_sys_mount("/dev/img", "/mnt", type, flags, opts);
    mount_errno = errno;
  }
};

// Reads a whole file through the kernel.
inline bool rump_read_all(const std::string& path, std::string& out) {
  int fd = rump_sys_open(path.c_str(), O_RDONLY, 0);
  if (fd < 0) return false;
  out.clear();
  char buf[65536];
  for (;;) {
    long n = rump_sys_read(fd, buf, sizeof buf);
    if (n < 0) {
      rump_sys_close(fd);
      return false;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  rump_sys_close(fd);
  return true;
}

inline std::string host_read_all(const std::string& path) {
  std::string out;
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return out;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

struct Listed {
  std::map<std::string, unsigned char> entries;  // name -> d_type
  bool ok = true;
};

inline Listed rump_list(const std::string& path) {
  Listed l;
  std::vector<rump_test::Dirent> ents;
  l.ok = rump_test::rump_dirents(path, ents);
  for (const rump_test::Dirent& e : ents) {
    if (e.name == "." || e.name == "..") continue;
    if (l.entries.count(e.name)) l.ok = false;  // a name twice
    l.entries[e.name] = e.type;
  }
  return l;
}

inline Listed host_list(const std::string& path) {
  Listed l;
  DIR* d = opendir(path.c_str());
  if (!d) {
    l.ok = false;
    return l;
  }
  while (struct dirent* e = readdir(d)) {
    std::string nm = e->d_name;
    if (nm != "." && nm != "..") l.entries[nm] = e->d_type;
  }
  closedir(d);
  return l;
}

// What to compare besides names, bytes and types.
struct CompareOpts {
  bool times = true;
  bool nsec = true;
  bool owners = true;
  bool dtype = true;  // entries carry file types (else DT_UNKNOWN)
};

// Compares the host tree at hpath with the kernel's at rpath, recursively:
// names and types, modes, owners, sizes, link counts, times, device
// numbers, bytes, symlink targets, and hard links (one inode in the image
// for one inode on the host). Every difference is a failed CHECK.
inline void compare_tree(const std::string& hpath, const std::string& rpath, const CompareOpts& o,
                         std::map<ino_t, ino_t>& inos, int& checked) {
  Listed h = host_list(hpath);
  Listed r = rump_list(rpath);
  INFO("directory " << hpath);
  REQUIRE(r.ok);
  r.entries.erase("lost+found");
  h.entries.erase("lost+found");  // a host mount of an image has one too
  std::set<std::string> hn, rn;
  for (auto& [n, t] : h.entries) hn.insert(n);
  for (auto& [n, t] : r.entries) rn.insert(n);
  CHECK(hn == rn);
  for (auto& [name, dtype] : h.entries) {
    std::string hp = hpath + "/" + name, rp = rpath + "/" + name;
    INFO("path " << hp);
    if (!r.entries.count(name)) continue;
    CHECK(r.entries[name] == (o.dtype ? dtype : static_cast<unsigned char>(DT_UNKNOWN)));
    struct stat hs, rs;
    REQUIRE(lstat(hp.c_str(), &hs) == 0);
    REQUIRE(rump_sys_lstat(rp.c_str(), &rs) == 0);
    checked++;
    CHECK(hs.st_mode == rs.st_mode);
    if (o.owners) {
      CHECK(hs.st_uid == rs.st_uid);
      CHECK(hs.st_gid == rs.st_gid);
    }
    if (!S_ISDIR(hs.st_mode)) {
      CHECK(hs.st_size == rs.st_size);
      CHECK(hs.st_nlink == rs.st_nlink);
    }
    if (o.times && !S_ISDIR(hs.st_mode)) {
      CHECK(hs.st_mtim.tv_sec == rs.st_mtim.tv_sec);
      if (o.nsec) CHECK(hs.st_mtim.tv_nsec == rs.st_mtim.tv_nsec);
    }
    if (S_ISCHR(hs.st_mode) || S_ISBLK(hs.st_mode)) CHECK(hs.st_rdev == rs.st_rdev);
    auto [it, fresh] = inos.emplace(hs.st_ino, rs.st_ino);
    CHECK(it->second == rs.st_ino);
    if (S_ISREG(hs.st_mode)) {
      std::string rd;
      CHECK(rump_read_all(rp, rd));
      CHECK((rd == host_read_all(hp)));
    } else if (S_ISLNK(hs.st_mode)) {
      char hb[4096], rb[4096];
      ssize_t hl = readlink(hp.c_str(), hb, sizeof hb);
      long rl = rump_sys_readlink(rp.c_str(), rb, sizeof rb);
      REQUIRE(hl >= 0);
      CHECK(rl == hl);
      if (rl == hl) CHECK(std::string(hb, hl) == std::string(rb, rl));
    } else if (S_ISDIR(hs.st_mode)) {
      compare_tree(hp, rp, o, inos, checked);
    }
  }
}

// Copies the host tree at h into the kernel at r: data (holes stay holes),
// symlinks, hard links, FIFOs and devices, modes, owners and times.
inline void copy_in(const std::string& h, const std::string& r, std::map<ino_t, std::string>& linked) {
  Listed l = host_list(h);
  for (auto& [name, dt] : l.entries) {
    std::string hp = h + "/" + name, rp = r + "/" + name;
    INFO("copying " << hp);
    struct stat st;
    REQUIRE(lstat(hp.c_str(), &st) == 0);
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto it = linked.find(st.st_ino);
      if (it != linked.end()) {
        REQUIRE(rump_sys_link(it->second.c_str(), rp.c_str()) == 0);
        continue;
      }
      linked[st.st_ino] = rp;
    }
    if (S_ISDIR(st.st_mode)) {
      REQUIRE(rump_sys_mkdir(rp.c_str(), 0700) == 0);
      copy_in(hp, rp, linked);
    } else if (S_ISREG(st.st_mode)) {
      int fd = rump_sys_open(rp.c_str(), O_CREAT | O_WRONLY | O_EXCL, 0600);
      REQUIRE(fd >= 0);
      int hfd = open(hp.c_str(), O_RDONLY);
      REQUIRE(hfd >= 0);
      off_t pos = 0;
      std::vector<char> buf(1 << 20);
      for (;;) {
        off_t data = lseek(hfd, pos, SEEK_DATA);
        if (data < 0) break;
        off_t hole = lseek(hfd, data, SEEK_HOLE);
        for (off_t o = data; o < hole;) {
          size_t n = static_cast<size_t>(std::min<off_t>(hole - o, static_cast<off_t>(buf.size())));
          REQUIRE(pread(hfd, buf.data(), n, o) == static_cast<ssize_t>(n));
          REQUIRE(rump_sys_pwrite64(fd, buf.data(), n, o) == static_cast<long>(n));
          o += static_cast<off_t>(n);
        }
        pos = hole;
      }
      close(hfd);
      REQUIRE(rump_sys_ftruncate(fd, st.st_size) == 0);
      rump_sys_close(fd);
    } else if (S_ISLNK(st.st_mode)) {
      char t[4096];
      ssize_t n = readlink(hp.c_str(), t, sizeof t - 1);
      REQUIRE(n >= 0);
      t[n] = 0;
      REQUIRE(rump_sys_symlink(t, rp.c_str()) == 0);
    } else {
      REQUIRE(rump_sys_mknod(rp.c_str(), st.st_mode, st.st_rdev) == 0);
    }
    REQUIRE(rump_sys_lchown(rp.c_str(), st.st_uid, st.st_gid) == 0);
    if (!S_ISLNK(st.st_mode)) REQUIRE(rump_sys_chmod(rp.c_str(), st.st_mode & 07777) == 0);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    REQUIRE(rump_sys_utimensat(AT_FDCWD, rp.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
  }
}

}  // namespace ext2_test
