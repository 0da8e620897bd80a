// etfs: host files in the kernel's name space; windows land at the right
// host offsets (checked with host pread/pwrite), stat reports the window,
// remove EBUSY/ENOENT, directories.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "vfs2_util.h"

namespace {

struct HostFile {
  std::string path;
  int fd = -1;
  explicit HostFile(size_t size) {
    char p[] = "/tmp/vfs2_etfsXXXXXX";
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
  char tmpl[] = "/tmp/vfs2_etfsdirXXXXXX";
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
