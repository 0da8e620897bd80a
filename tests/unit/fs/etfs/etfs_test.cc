// etfs: host files in the kernel's name space; windows land at the right
// host offsets (checked with host pread/pwrite), stat reports the window,
// remove EBUSY/ENOENT, directories.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <rump/rump.h>
#include <rump/rumpvfs.h>

#include "rump_test.h"

using rump_test::KernelUp;

namespace {

struct HostFile {
  std::string path;
  int fd = -1;
  explicit HostFile(size_t size) {
    char p[] = "/tmp/rump_etfsXXXXXX";
    fd = mkstemp(p);
    REQUIRE(fd >= 0);
    path = p;
    std::string data(size, '\0');
    for (size_t i = 0; i < size; i++) data[i] = static_cast<char>('A' + i % 26);
    REQUIRE(pwrite(fd, data.data(), size, 0) == static_cast<ssize_t>(size));
  }
  ~HostFile() {
    close(fd);
    unlink(path.c_str());
  }
};

std::set<std::string> list_dir(const char* path) {
  std::set<std::string> names;
  int fd = rump_sys_open(path, O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return names;
  char buf[4096];
  for (;;) {
    long n = rump_sys_getdents64(fd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      names.insert(d->d_name);
      off += d->d_reclen;
    }
  }
  rump_sys_close(fd);
  return names;
}

}  // namespace

TEST_CASE("etfs REG: reads and writes go to the host file within the window", "[etfs]") {
  KernelUp up;
  HostFile h(1000);
  REQUIRE(rump_pub_etfs_register_withsize("/host/win", h.path.c_str(), RUMP_ETFS_REG, 100, 200) == 0);
  struct stat st;
  REQUIRE(rump_sys_stat("/host/win", &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK(st.st_size == 200);
  int fd = rump_sys_open("/host/win", O_RDWR, 0);
  REQUIRE(fd >= 0);
  char buf[300] = {};
  CHECK(rump_sys_read(fd, buf, 10) == 10);
  CHECK(std::string(buf, 10) == "WXYZABCDEF");  // host offset 100 = 'A' + 100 % 26
  CHECK(rump_sys_pread64(fd, buf, 300, 150) == 50);  // short at the window's end
  CHECK(rump_sys_pread64(fd, buf, 10, 200) == 0);
  CHECK(rump_sys_pwrite64(fd, "hello", 5, 20) == 5);
  char hb[5];
  REQUIRE(pread(h.fd, hb, 5, 120) == 5);
  CHECK(std::string(hb, 5) == "hello");
  CHECK(rump_sys_pwrite64(fd, "0123456789", 10, 195) == 5);  // clipped
  CHECK_ERRNO(ENOSPC, rump_sys_pwrite64(fd, "x", 1, 200));
  REQUIRE(pread(h.fd, hb, 5, 295) == 5);
  CHECK(std::string(hb, 5) == "01234");
  // Open: EBUSY; closed: removed, and the name goes.
  CHECK(rump_pub_etfs_remove("/host/win") == EBUSY);
  rump_sys_close(fd);
  CHECK(rump_pub_etfs_remove("/host/win") == 0);
  CHECK_ERRNO(ENOENT, rump_sys_stat("/host/win", &st));
  CHECK(rump_pub_etfs_remove("/host/win") == ENOENT);
}

TEST_CASE("etfs REG: O_TRUNC and ftruncate cut and extend the host file; a fixed window keeps its size",
          "[etfs]") {
  KernelUp up;
  HostFile h(1000);
  REQUIRE(rump_pub_etfs_register("/host/whole", h.path.c_str(), RUMP_ETFS_REG) == 0);
  int fd = rump_sys_open("/host/whole", O_CREAT | O_TRUNC | O_WRONLY, 0644);
  REQUIRE(fd >= 0);
  struct stat st, hst;
  REQUIRE(rump_sys_fstat(fd, &st) == 0);
  REQUIRE(fstat(h.fd, &hst) == 0);
  CHECK(st.st_size == 0);
  CHECK(hst.st_size == 0);
  CHECK(rump_sys_write(fd, "abc", 3) == 3);
  CHECK(rump_sys_ftruncate(fd, 10) == 0);
  REQUIRE(fstat(h.fd, &hst) == 0);
  CHECK(hst.st_size == 10);
  char hb[10];
  REQUIRE(pread(h.fd, hb, 10, 0) == 10);
  CHECK(std::string(hb, 10) == std::string("abc") + std::string(7, '\0'));
  CHECK(rump_sys_ftruncate(fd, 2) == 0);
  REQUIRE(rump_sys_fstat(fd, &st) == 0);
  REQUIRE(fstat(h.fd, &hst) == 0);
  CHECK(st.st_size == 2);
  CHECK(hst.st_size == 2);
  rump_sys_close(fd);
  // A window of fixed size cannot change size: EINVAL, the host file as it was.
  REQUIRE(rump_pub_etfs_register_withsize("/host/win", h.path.c_str(), RUMP_ETFS_REG, 0, 2) == 0);
  CHECK_ERRNO(EINVAL, rump_sys_open("/host/win", O_CREAT | O_TRUNC | O_WRONLY, 0644));
  REQUIRE(fstat(h.fd, &hst) == 0);
  CHECK(hst.st_size == 2);
}

TEST_CASE("etfs: errors as NetBSD (EEXIST, ENOENT, EINVAL)", "[etfs]") {
  KernelUp up;
  HostFile h(100);
  CHECK(rump_pub_etfs_register("/a", "/nonexistent/xyz", RUMP_ETFS_REG) == ENOENT);
  CHECK(rump_pub_etfs_register("/a", h.path.c_str(), static_cast<rump_etfs_type>(9)) == EINVAL);
  CHECK(rump_pub_etfs_register_withsize("/a", h.path.c_str(), RUMP_ETFS_REG, 200, 10) == EINVAL);
  CHECK(rump_pub_etfs_register_withsize("/a", h.path.c_str(), RUMP_ETFS_REG, 50, 60) == EINVAL);
  REQUIRE(rump_pub_etfs_register("/a", h.path.c_str(), RUMP_ETFS_REG) == 0);
  CHECK(rump_pub_etfs_register("/a", h.path.c_str(), RUMP_ETFS_REG) == EEXIST);
  CHECK(rump_pub_etfs_remove("/nope") == ENOENT);
  // A whole-file REG grows with the host file.
  int fd = rump_sys_open("/a", O_WRONLY, 0);
  REQUIRE(fd >= 0);
  CHECK(rump_sys_pwrite64(fd, "tail", 4, 100) == 4);
  rump_sys_close(fd);
  struct stat st;
  REQUIRE(rump_sys_stat("/a", &st) == 0);
  CHECK(st.st_size == 104);
}

TEST_CASE("etfs: a key unmounted with umount2 can still be removed, and registered again", "[etfs]") {
  KernelUp up;
  HostFile h(100);
  REQUIRE(rump_pub_etfs_register("/k", h.path.c_str(), RUMP_ETFS_REG) == 0);
  REQUIRE(rump_pub_etfs_register("/d", "/tmp", RUMP_ETFS_DIR) == 0);
  // The user takes the windows out of the namespace behind etfs's back.
  REQUIRE(rump_sys_umount2("/k", 0) == 0);
  REQUIRE(rump_sys_umount2("/d", MNT_DETACH) == 0);
  struct stat st;
  REQUIRE(rump_sys_stat("/k", &st) == 0);
  CHECK(st.st_size == 0);  // the placeholder, no longer the host file
  CHECK(rump_pub_etfs_register("/k", h.path.c_str(), RUMP_ETFS_REG) == EEXIST);
  CHECK(rump_pub_etfs_remove("/k") == 0);
  CHECK(rump_pub_etfs_remove("/d") == 0);
  CHECK(rump_pub_etfs_remove("/k") == ENOENT);
  REQUIRE(rump_pub_etfs_register("/k", h.path.c_str(), RUMP_ETFS_REG) == 0);
  REQUIRE(rump_sys_stat("/k", &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK(st.st_size == 100);
  // Unmounted and never removed: the halt gives everything back.
  REQUIRE(rump_sys_umount2("/k", 0) == 0);
}

TEST_CASE("etfs BLK and CHR: device nodes whose I/O reaches the window; BlockDevice sizes", "[etfs]") {
  KernelUp up;
  HostFile h(8192);
  REQUIRE(rump_pub_etfs_register_withsize("/dev/hd0", h.path.c_str(), RUMP_ETFS_BLK, 1024, 4096) == 0);
  REQUIRE(rump_pub_etfs_register_withsize("/dev/tty9", h.path.c_str(), RUMP_ETFS_CHR, 4096, 512) == 0);
  struct stat st;
  REQUIRE(rump_sys_stat("/dev/hd0", &st) == 0);
  CHECK(S_ISBLK(st.st_mode));
  CHECK(st.st_size == 4096);
  REQUIRE(rump_sys_stat("/dev/tty9", &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
  CHECK(st.st_size == 512);
  int b = rump_sys_open("/dev/hd0", O_RDWR, 0);
  REQUIRE(b >= 0);
  std::string block(512, 'Q');
  CHECK(rump_sys_pwrite64(b, block.data(), 512, 512) == 512);
  char hb[512];
  REQUIRE(pread(h.fd, hb, 512, 1536) == 512);
  CHECK(std::string(hb, 512) == block);
  CHECK_ERRNO(ENOSPC, rump_sys_pwrite64(b, block.data(), 512, 4096));
  rump_sys_close(b);
  int c = rump_sys_open("/dev/tty9", O_RDONLY, 0);
  REQUIRE(c >= 0);
  char cb[600];
  CHECK(rump_sys_read(c, cb, sizeof cb) == 512);
  CHECK(cb[0] == static_cast<char>('A' + 4096 % 26));
  rump_sys_close(c);
  CHECK(rump_pub_etfs_remove("/dev/hd0") == 0);
  CHECK(rump_pub_etfs_remove("/dev/tty9") == 0);
}

TEST_CASE("etfs DIR: lookup, read and write of the host directory's files; SUBDIRS recurses", "[etfs]") {
  KernelUp up;
  char tmpl[] = "/tmp/rump_etfsdirXXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string d = tmpl;
  std::string f1 = d + "/one.txt", sub = d + "/sub", f2 = sub + "/two.txt";
  REQUIRE(mkdir(sub.c_str(), 0755) == 0);
  FILE* fp = fopen(f1.c_str(), "w");
  fputs("first file", fp);
  fclose(fp);
  fp = fopen(f2.c_str(), "w");
  fputs("second", fp);
  fclose(fp);

  REQUIRE(rump_pub_etfs_register("/flat", d.c_str(), RUMP_ETFS_DIR) == 0);
  REQUIRE(rump_pub_etfs_register("/deep", d.c_str(), RUMP_ETFS_DIR_SUBDIRS) == 0);
  CHECK(rump_pub_etfs_register("/bad", f1.c_str(), RUMP_ETFS_DIR) != 0);
  struct stat st;
  REQUIRE(rump_sys_stat("/flat", &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  char buf[64] = {};
  int fd = rump_sys_open("/flat/one.txt", O_RDWR, 0);
  REQUIRE(fd >= 0);
  CHECK(rump_sys_read(fd, buf, sizeof buf) == 10);
  CHECK(std::string(buf, 10) == "first file");
  CHECK(rump_sys_pwrite64(fd, "FIRST", 5, 0) == 5);
  rump_sys_close(fd);
  fp = fopen(f1.c_str(), "r");
  char hb[16] = {};
  CHECK(fread(hb, 1, 10, fp) == 10);
  fclose(fp);
  CHECK(std::string(hb) == "FIRST file");
  CHECK_ERRNO(ENOENT, rump_sys_stat("/flat/sub/two.txt", &st));
  REQUIRE(rump_sys_stat("/deep/sub/two.txt", &st) == 0);
  CHECK(st.st_size == 6);
  CHECK(list_dir("/flat").count("one.txt") == 1);
  CHECK(list_dir("/deep/sub").count("two.txt") == 1);
  CHECK(rump_pub_etfs_remove("/flat") == 0);
  CHECK(rump_pub_etfs_remove("/deep") == 0);
  unlink(f2.c_str());
  rmdir(sub.c_str());
  unlink(f1.c_str());
  rmdir(d.c_str());
}

// --- DIR readdir: the listing comes from the host directory.

namespace {

// A host temp directory, removed with everything in it at the end.
struct HostDir {
  std::string path;
  HostDir() {
    char tmpl[] = "/tmp/rump_etfslsXXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~HostDir() { remove_tree(path); }
  std::string at(const std::string& name) const { return path + "/" + name; }
  void file(const std::string& name, const char* text = "x") const {
    FILE* fp = fopen(at(name).c_str(), "w");
    REQUIRE(fp != nullptr);
    fputs(text, fp);
    fclose(fp);
  }
  static void remove_tree(const std::string& p) {
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
      unlink(p.c_str());
      return;
    }
    DIR* d = opendir(p.c_str());
    if (d) {
      std::vector<std::string> names;
      while (struct dirent* e = readdir(d))
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
      closedir(d);
      for (const std::string& n : names) remove_tree(p + "/" + n);
    }
    rmdir(p.c_str());
  }
};

struct Dent {
  uint64_t ino;
  int64_t off;
  unsigned type;
};

// getdents64 of an open directory from its position to the end, with a
// buffer of bufsize bytes: fn sees each record in order.
template <class Fn>
void for_each_dent(int fd, size_t bufsize, Fn&& fn) {
  std::vector<char> buf(bufsize);
  for (;;) {
    long n = rump_sys_getdents64(fd, buf.data(), buf.size());
    REQUIRE(n >= 0);
    if (n == 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf.data() + off);
      fn(*d);
      off += d->d_reclen;
    }
  }
}

// Every record of an open directory by name; every name once (a repeat
// fails the test).
std::map<std::string, Dent> read_all(int fd, size_t bufsize) {
  std::map<std::string, Dent> out;
  for_each_dent(fd, bufsize, [&](const struct dirent64& d) {
    INFO(d.d_name);
    CHECK(out.count(d.d_name) == 0);
    out[d.d_name] = Dent{d.d_ino, d.d_off, d.d_type};
  });
  return out;
}

std::map<std::string, Dent> listing(const std::string& path, size_t bufsize = 4096) {
  int fd = rump_sys_open(path.c_str(), O_RDONLY | O_DIRECTORY, 0);
  REQUIRE(fd >= 0);
  auto out = read_all(fd, bufsize);
  rump_sys_close(fd);
  return out;
}

// The names of the host directory, "." and ".." included.
std::set<std::string> host_names(const std::string& path) {
  std::set<std::string> names;
  DIR* d = opendir(path.c_str());
  REQUIRE(d != nullptr);
  while (struct dirent* e = readdir(d)) names.insert(e->d_name);
  closedir(d);
  return names;
}

unsigned dtype_of(mode_t m) {
  return S_ISDIR(m) ? DT_DIR : S_ISREG(m) ? DT_REG : S_ISLNK(m) ? DT_LNK : DT_UNKNOWN;
}

// The listing of key agrees with the host directory (what is shown, by
// the rule: regular files after following links, directories with
// subdirs) and with lookups of every host name through the kernel.
void check_against_host(const std::string& key, const std::string& hostdir, bool subdirs) {
  std::map<std::string, Dent> ls = listing(key);
  std::set<std::string> expect;
  for (const std::string& n : host_names(hostdir)) {
    INFO(key << ": host entry " << n);
    struct stat hst;
    bool shown = n == "." || n == ".." ||
                 (stat((hostdir + "/" + n).c_str(), &hst) == 0 &&
                  (S_ISREG(hst.st_mode) || (subdirs && S_ISDIR(hst.st_mode))));
    if (shown) expect.insert(n);
    // lookup agrees with readdir: found exactly when listed, same type and
    // inode number.
    struct stat kst;
    int r = rump_sys_stat((key + "/" + n).c_str(), &kst);
    CHECK((r == 0) == shown);
    if (r == 0 && ls.count(n)) {
      CHECK(ls[n].type == dtype_of(kst.st_mode));
      if (n != "..") CHECK(ls[n].ino == kst.st_ino);
    }
    if (shown && n != "." && n != "..") {
      CHECK(ls[n].ino == hst.st_ino);  // the host's inode numbers
      CHECK(ls[n].type == dtype_of(hst.st_mode));
    }
  }
  std::set<std::string> got;
  for (auto& [n, d] : ls) got.insert(n);
  CHECK(got == expect);
}

}  // namespace

TEST_CASE("etfs DIR: getdents64 lists the host directory as lookup sees it; SUBDIRS adds directories",
          "[etfs][readdir]") {
  KernelUp up;
  HostDir h;
  h.file("one.txt", "first");
  h.file("two.bin", "second");
  REQUIRE(mkdir(h.at("sub").c_str(), 0755) == 0);
  h.file("sub/inner.txt");
  REQUIRE(mkdir(h.at("sub/deeper").c_str(), 0755) == 0);
  REQUIRE(symlink("one.txt", h.at("link_to_file").c_str()) == 0);
  REQUIRE(symlink("sub", h.at("link_to_dir").c_str()) == 0);
  REQUIRE(symlink("nowhere", h.at("dangling").c_str()) == 0);
  REQUIRE(mkfifo(h.at("fifo").c_str(), 0644) == 0);

  REQUIRE(rump_pub_etfs_register("/flat", h.path.c_str(), RUMP_ETFS_DIR) == 0);
  REQUIRE(rump_pub_etfs_register("/deep", h.path.c_str(), RUMP_ETFS_DIR_SUBDIRS) == 0);

  std::map<std::string, Dent> flat = listing("/flat");
  std::set<std::string> names;
  for (auto& [n, d] : flat) names.insert(n);
  CHECK(names == std::set<std::string>{".", "..", "one.txt", "two.bin", "link_to_file"});
  CHECK(flat["one.txt"].type == DT_REG);
  CHECK(flat["link_to_file"].type == DT_REG);  // followed, as lookup and open do
  CHECK(flat["."].type == DT_DIR);
  CHECK(flat[".."].type == DT_DIR);
  struct stat st;
  REQUIRE(rump_sys_stat("/flat", &st) == 0);
  CHECK(flat["."].ino == st.st_ino);
  CHECK(flat[".."].ino == st.st_ino);  // the etfs root is its own ".."
  check_against_host("/flat", h.path, false);

  std::map<std::string, Dent> deep = listing("/deep");
  names.clear();
  for (auto& [n, d] : deep) names.insert(n);
  CHECK(names == std::set<std::string>{".", "..", "one.txt", "two.bin", "link_to_file", "sub", "link_to_dir"});
  CHECK(deep["sub"].type == DT_DIR);
  CHECK(deep["link_to_dir"].type == DT_DIR);
  check_against_host("/deep", h.path, true);
  check_against_host("/deep/sub", h.at("sub"), true);
  std::map<std::string, Dent> sub = listing("/deep/sub");
  REQUIRE(rump_sys_stat("/deep", &st) == 0);
  CHECK(sub[".."].ino == st.st_ino);
  CHECK(sub.count("deeper") == 1);
  CHECK(listing("/deep/sub/deeper").size() == 2);  // "." and ".." only
  // A file found by readdir opens and reads without a lookup before.
  int fd = rump_sys_open("/flat/two.bin", O_RDONLY, 0);
  REQUIRE(fd >= 0);
  char buf[16] = {};
  CHECK(rump_sys_read(fd, buf, sizeof buf) == 6);
  rump_sys_close(fd);

  CHECK(rump_pub_etfs_remove("/flat") == 0);
  CHECK(rump_pub_etfs_remove("/deep") == 0);
}

TEST_CASE("etfs DIR: 1000 entries, read with a small buffer, resume at every d_off, rewind",
          "[etfs][readdir]") {
  KernelUp up;
  HostDir h;
  std::set<std::string> want{".", ".."};
  for (int i = 0; i < 1000; i++) {
    char n[32];
    std::snprintf(n, sizeof n, "entry_%04d", i);
    h.file(n);
    want.insert(n);
  }
  for (int i = 0; i < 20; i++) REQUIRE(mkdir(h.at("dir_" + std::to_string(i)).c_str(), 0755) == 0);
  REQUIRE(rump_pub_etfs_register("/many", h.path.c_str(), RUMP_ETFS_DIR) == 0);

  int fd = rump_sys_open("/many", O_RDONLY | O_DIRECTORY, 0);
  REQUIRE(fd >= 0);
  // One record at a time: 40 bytes hold one "entry_NNNN" (32) but not two.
  std::map<std::string, Dent> small = read_all(fd, 40);
  std::set<std::string> got;
  for (auto& [n, d] : small) got.insert(n);
  CHECK(got == want);  // every file once, no directory (DIR, not SUBDIRS)
  // A buffer too small for the next record is EINVAL, as on Linux.
  CHECK(rump_sys_lseek(fd, 0, SEEK_SET) == 0);
  char tiny[16];
  CHECK_ERRNO(EINVAL, rump_sys_getdents64(fd, tiny, sizeof tiny));
  // rewinddir: the same listing again, in the same order, with a big buffer.
  std::vector<std::string> order;
  std::vector<int64_t> offs;
  CHECK(rump_sys_lseek(fd, 0, SEEK_SET) == 0);
  for_each_dent(fd, 1 << 16, [&](const struct dirent64& d) {
    order.push_back(d.d_name);
    offs.push_back(d.d_off);
  });
  REQUIRE(order.size() == want.size());
  // seekdir to the d_off of entry i continues with entry i + 1.
  for (size_t i : {size_t{0}, size_t{1}, size_t{2}, size_t{500}, order.size() - 2}) {
    INFO("after entry " << i);
    CHECK(rump_sys_lseek(fd, offs[i], SEEK_SET) == offs[i]);
    char buf[40];  // one record
    long n = rump_sys_getdents64(fd, buf, sizeof buf);
    REQUIRE(n > 0);
    CHECK(std::string(reinterpret_cast<struct dirent64*>(buf)->d_name) == order[i + 1]);
    CHECK(rump_sys_lseek(fd, 0, SEEK_CUR) == offs[i + 1]);  // the position moved past it
  }
  CHECK(rump_sys_lseek(fd, offs.back(), SEEK_SET) == offs.back());
  char buf[64];
  CHECK(rump_sys_getdents64(fd, buf, sizeof buf) == 0);  // the end
  rump_sys_close(fd);
  CHECK(rump_pub_etfs_remove("/many") == 0);
}

TEST_CASE("etfs DIR: entries added and removed on the host show in readdir and lookup",
          "[etfs][readdir]") {
  KernelUp up;
  HostDir h;
  h.file("stays");
  h.file("goes");
  h.file("becomes_dir");
  REQUIRE(rump_pub_etfs_register("/live", h.path.c_str(), RUMP_ETFS_DIR_SUBDIRS) == 0);
  struct stat st;
  REQUIRE(rump_sys_stat("/live/goes", &st) == 0);  // looked up before the host changes
  REQUIRE(rump_sys_stat("/live/becomes_dir", &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  int held = rump_sys_open("/live/goes", O_RDONLY, 0);
  REQUIRE(held >= 0);
  std::map<std::string, Dent> before = listing("/live");
  CHECK(before.count("goes") == 1);

  REQUIRE(unlink(h.at("goes").c_str()) == 0);
  REQUIRE(unlink(h.at("becomes_dir").c_str()) == 0);
  REQUIRE(mkdir(h.at("becomes_dir").c_str(), 0755) == 0);
  h.file("new_file", "fresh");
  REQUIRE(mkdir(h.at("new_dir").c_str(), 0755) == 0);

  std::map<std::string, Dent> after = listing("/live");
  std::set<std::string> names;
  for (auto& [n, d] : after) names.insert(n);
  CHECK(names == std::set<std::string>{".", "..", "stays", "becomes_dir", "new_file", "new_dir"});
  CHECK(after["becomes_dir"].type == DT_DIR);
  CHECK_ERRNO(ENOENT, rump_sys_stat("/live/goes", &st));
  REQUIRE(rump_sys_stat("/live/becomes_dir", &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  check_against_host("/live", h.path, true);
  // The descriptor opened before the host removed the file stays valid.
  // (It reads as empty: a growing window's size comes from the host path.)
  char buf[4] = {};
  CHECK(rump_sys_read(held, buf, sizeof buf) >= 0);
  rump_sys_close(held);
  int fd = rump_sys_open("/live/new_file", O_RDONLY, 0);
  REQUIRE(fd >= 0);
  CHECK(rump_sys_read(fd, buf, sizeof buf) == 4);
  rump_sys_close(fd);
  CHECK(rump_pub_etfs_remove("/live") == 0);
}

TEST_CASE("etfs DIR: an open directory keeps the registration; after removal the key is gone",
          "[etfs][readdir]") {
  KernelUp up;
  HostDir h;
  h.file("f");
  REQUIRE(rump_pub_etfs_register("/reg/dir", h.path.c_str(), RUMP_ETFS_DIR) == 0);
  CHECK(listing("/reg").count("dir") == 1);  // the placeholder in tmpfs
  int fd = rump_sys_open("/reg/dir", O_RDONLY | O_DIRECTORY, 0);
  REQUIRE(fd >= 0);
  CHECK(rump_pub_etfs_remove("/reg/dir") == EBUSY);
  CHECK(read_all(fd, 4096).count("f") == 1);
  rump_sys_close(fd);
  CHECK(rump_pub_etfs_remove("/reg/dir") == 0);
  CHECK(listing("/reg").count("dir") == 0);
  struct stat st;
  CHECK_ERRNO(ENOENT, rump_sys_stat("/reg/dir/f", &st));
  CHECK_ERRNO(ENOENT, rump_sys_open("/reg/dir", O_RDONLY | O_DIRECTORY, 0));
  // The host directory is untouched, and can be registered again.
  CHECK(host_names(h.path).count("f") == 1);
  REQUIRE(rump_pub_etfs_register("/reg/dir", h.path.c_str(), RUMP_ETFS_DIR) == 0);
  CHECK(listing("/reg/dir").count("f") == 1);
  CHECK(rump_pub_etfs_remove("/reg/dir") == 0);
}

TEST_CASE("etfs DIR: getdents64 on a host directory removed after registration is ENOENT",
          "[etfs][readdir]") {
  KernelUp up;
  HostDir h;
  std::string gone = h.at("gone");
  REQUIRE(mkdir(gone.c_str(), 0755) == 0);
  REQUIRE(rump_pub_etfs_register("/gone", gone.c_str(), RUMP_ETFS_DIR) == 0);
  int fd = rump_sys_open("/gone", O_RDONLY | O_DIRECTORY, 0);
  REQUIRE(fd >= 0);
  REQUIRE(rmdir(gone.c_str()) == 0);
  char buf[256];
  CHECK_ERRNO(ENOENT, rump_sys_getdents64(fd, buf, sizeof buf));
  rump_sys_close(fd);
  CHECK(rump_pub_etfs_remove("/gone") == 0);
}

// The block-device interface a disk file system will mount on.
#include "dev/blockdev.h"
#include "kern/curlwp.h"
#include "vfs/vfs.h"

TEST_CASE("etfs BLK: BlockDevice reads and writes blocks inside the window", "[etfs][blockdev]") {
  KernelUp up;
  HostFile h(16384);
  REQUIRE(rump_pub_etfs_register_withsize("/dev/hd1", h.path.c_str(), RUMP_ETFS_BLK, 2048, 8192) == 0);
  rump::Kernel* k = rump::current_kernel();
  REQUIRE(k != nullptr);
  rump::Lwp* l = rump::enter(*k);
  REQUIRE(l != nullptr);
  {
    rump::Result<rump::Ref<rump::Vnode>> vp = rump::namei(*l, AT_FDCWD, "/dev/hd1", rump::kFollow);
    REQUIRE(vp.ok());
    rump::BlockDevice* bd = rump::block_device_of(*vp.value());
    REQUIRE(bd != nullptr);
    CHECK(bd->block_size() == 512);
    CHECK(bd->size() == 8192);
    CHECK(bd->nblocks() == 16);
    char b[1024];
    std::memset(b, 'B', sizeof b);
    CHECK(bd->write_blocks(3, b, 2).ok());
    char r[512];
    CHECK(bd->read_blocks(0, r, 1).ok());
    CHECK(r[0] == static_cast<char>('A' + 2048 % 26));
    CHECK(bd->read_blocks(15, r, 2).error() == EINVAL);  // past the end
    CHECK(bd->sync().ok());
  }
  rump::leave(*k, l);
  char hb[1024];
  REQUIRE(pread(h.fd, hb, sizeof hb, 2048 + 3 * 512) == 1024);
  CHECK(std::string(hb, 1024) == std::string(1024, 'B'));
  CHECK(rump_pub_etfs_remove("/dev/hd1") == 0);
}

namespace {

std::string host_bytes(int fd, uint64_t off, size_t n) {
  std::string s(n, '\0');
  if (pread(fd, s.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n)) return "short";
  return s;
}

}  // namespace

// The buffer cache over that device. Under pressure (a fault-injection
// mode) a buffer whose last reference goes while it is clean is evicted at
// once: that includes the reference a flush holds while it writes the
// buffer back, so that a sync leaves no block cached that nobody uses.
#include <rump/fault.h>

#include "dev/buf.h"

TEST_CASE("buffer cache: a flush writes dirty buffers back, and under pressure evicts them", "[etfs][blockdev]") {
  KernelUp up;
  HostFile h(65536);
  REQUIRE(rump_pub_etfs_register("/dev/hd3", h.path.c_str(), RUMP_ETFS_BLK) == 0);
  rump::Kernel* k = rump::current_kernel();
  REQUIRE(k != nullptr);
  rump::Lwp* l = rump::enter(*k);
  REQUIRE(l != nullptr);
  {
    rump::Result<rump::Ref<rump::Vnode>> vp = rump::namei(*l, AT_FDCWD, "/dev/hd3", rump::kFollow);
    REQUIRE(vp.ok());
    rump::BlockDevice* bd = rump::block_device_of(*vp.value());
    REQUIRE(bd != nullptr);
    rump::BufCache* bc = &rump::buf_cache(*k);
    REQUIRE(bc->count() == 0);
    for (bool pressed : {false, true}) {
      INFO("pressure " << pressed);
      REQUIRE(rump_kernel_set_cache_pressure(nullptr, pressed) == 0);
      // Two dirty blocks next to each other (one request) and one apart.
      for (uint64_t b : {3, 4, 9}) {
        rump::Result<rump::BufRef> r = bc->getblk(*bd, b, 1024);
        REQUIRE(r.ok());
        std::memset(r->data(), static_cast<int>('a' + b + pressed), 1024);
        r->dirty();
      }
      CHECK(bc->count() == 3);  // dirty: kept, whatever the pressure
      // A clean block read and let go: kept without pressure only.
      REQUIRE(bc->bread(*bd, 20, 1024).ok());
      CHECK(bc->count() == (pressed ? 3u : 4u));
      REQUIRE(bc->flush(*bd).ok());
      for (uint64_t b : {3, 4, 9})
        CHECK(host_bytes(h.fd, b * 1024, 1024) == std::string(1024, static_cast<char>('a' + b + pressed)));
      CHECK(bc->count() == (pressed ? 0u : 4u));
      bc->invalidate(*bd);
    }
  }
  rump::leave(*k, l);
  CHECK(rump_pub_etfs_remove("/dev/hd3") == 0);
}

TEST_CASE("etfs BLK: small writes are gathered, reach the host in order, and reads and sync see them",
          "[etfs][blockdev]") {
  KernelUp up;
  constexpr uint64_t kBase = 4096, kSize = uint64_t{4} << 20;
  HostFile h(kBase + kSize);
  REQUIRE(rump_pub_etfs_register_withsize("/dev/hd2", h.path.c_str(), RUMP_ETFS_BLK, kBase, kSize) == 0);
  rump::Kernel* k = rump::current_kernel();
  REQUIRE(k != nullptr);
  rump::Lwp* l = rump::enter(*k);
  REQUIRE(l != nullptr);
  const std::string before = host_bytes(h.fd, kBase, 8192);
  {
    rump::Result<rump::Ref<rump::Vnode>> vp = rump::namei(*l, AT_FDCWD, "/dev/hd2", rump::kFollow);
    REQUIRE(vp.ok());
    rump::BlockDevice* bd = rump::block_device_of(*vp.value());
    REQUIRE(bd != nullptr);
    std::string a(1024, 'a'), b(512, 'b');
    // Two writes that continue each other: one pending run, not in the
    // host file yet.
    REQUIRE(bd->write_blocks(2, a.data(), 2).ok());
    rump::BlockDevice::Segment seg[2] = {{b.data(), 512}, {a.data(), 512}};
    REQUIRE(bd->write_blocksv(4, seg, 2).ok());
    CHECK(host_bytes(h.fd, kBase + 1024, 2048) == before.substr(1024, 2048));
    // A read that overlaps the run sees the new bytes.
    char r[2048];
    REQUIRE(bd->read_blocks(2, r, 4).ok());
    CHECK(std::string(r, 2048) == a + b + std::string(512, 'a'));
    // That read sent the run: the host file has it, without a sync.
    CHECK(host_bytes(h.fd, kBase + 1024, 2048) == a + b + std::string(512, 'a'));
    // A write elsewhere sends the pending run before it starts its own: a
    // run shorter than kAsyncMin at once, on the calling thread.
    std::string c(512, 'c'), d(512, 'd');
    REQUIRE(bd->write_blocks(100, c.data(), 1).ok());
    CHECK(host_bytes(h.fd, kBase + 100 * 512, 512) != c);
    REQUIRE(bd->write_blocks(50, d.data(), 1).ok());
    CHECK(host_bytes(h.fd, kBase + 100 * 512, 512) == c);
    // A longer one on an I/O thread: any other request, here a read of an
    // unrelated block, waits for that send to end.
    std::string half(rump::HostBlockDevice::kAsyncMin, 'h');
    REQUIRE(bd->write_blocks(3000, half.data(), half.size() / 512).ok());
    REQUIRE(bd->write_blocks(60, c.data(), 1).ok());
    char unrelated[512];
    REQUIRE(bd->read_blocks(0, unrelated, 1).ok());
    CHECK(host_bytes(h.fd, kBase + 50 * 512, 512) == d);
    CHECK(host_bytes(h.fd, kBase + 3000 * 512, half.size()) == half);
    // A write too large to gather goes straight to the host, after the
    // pending run (block 60).
    std::string big(rump::HostBlockDevice::kGatherMax, 'E');
    REQUIRE(bd->write_blocks(1000, big.data(), big.size() / 512).ok());
    CHECK(host_bytes(h.fd, kBase + 60 * 512, 512) == c);
    CHECK(host_bytes(h.fd, kBase + 1000 * 512, big.size()) == big);
    // Runs longer than the buffer go out as it fills (on an I/O thread,
    // which a read waits for); sync sends the rest.
    std::string piece(64 * 1024, 'f');
    uint64_t blk = 2048;
    const size_t pieces = rump::HostBlockDevice::kGatherBytes / piece.size() + 3;
    for (size_t i = 0; i < pieces; i++, blk += piece.size() / 512) {
      piece[0] = static_cast<char>('g' + i % 16);
      REQUIRE(bd->write_blocks(blk, piece.data(), piece.size() / 512).ok());
    }
    char one[512];
    REQUIRE(bd->read_blocks(0, one, 1).ok());
    CHECK(host_bytes(h.fd, kBase + 2048 * 512, 1)[0] == 'g');
    CHECK(host_bytes(h.fd, kBase + (blk - 128) * 512, 1)[0] != piece[0]);
    REQUIRE(bd->sync().ok());
    CHECK(host_bytes(h.fd, kBase + (blk - 128) * 512, 1)[0] == piece[0]);
    // A write past the end is refused at the call, not when sent.
    CHECK(bd->write_blocks(kSize / 512 - 1, c.data(), 2).error() == EINVAL);
    // The device node's own read shows a pending run.
    std::string e(512, 'z');
    REQUIRE(bd->write_blocks(7, e.data(), 1).ok());
  }
  rump::leave(*k, l);
  int fd = rump_sys_open("/dev/hd2", O_RDONLY, 0);
  REQUIRE(fd >= 0);
  char nb[512];
  REQUIRE(rump_sys_pread(fd, nb, 512, 7 * 512) == 512);
  CHECK(std::string(nb, 512) == std::string(512, 'z'));
  rump_sys_close(fd);
  CHECK(rump_pub_etfs_remove("/dev/hd2") == 0);
}
