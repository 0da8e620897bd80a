// procfs: /proc read by one parser on the host and in the kernel (field
// counts and formats equal), its values for the kernel's own processes
// (pids, parent, state, ids, threads, VmSize of isolated spaces, fd
// links), readdir of live pids, a process that exits going away,
// permissions, the writable files (comm, /proc/sys), and the CPU times
// and start time of a busy process in stat, status, /proc/stat and uptime.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <dirent.h>
#include <atomic>
#include <map>
#include <thread>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "rump_test.h"

using rump_test::KernelUp;

namespace {

// Where the text comes from: the host's /proc or the kernel's.
struct Source {
  bool rump;
  std::string read(const std::string& path) const {
    int fd = rump ? rump_sys_open(path.c_str(), O_RDONLY) : open(path.c_str(), O_RDONLY);
    if (fd < 0) return "<open failed: " + std::string(std::strerror(errno)) + ">";
    std::string out;
    char buf[300];  // small reads: the text is read piece by piece, as seq files are
    for (;;) {
      ssize_t n = rump ? rump_sys_read(fd, buf, sizeof buf) : ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    if (rump) rump_sys_close(fd);
    else close(fd);
    return out;
  }
  std::string link(const std::string& path) const {
    char buf[4096];
    ssize_t n = rump ? rump_sys_readlink(path.c_str(), buf, sizeof buf) : ::readlink(path.c_str(), buf, sizeof buf);
    if (n < 0) return "<readlink failed: " + std::string(std::strerror(errno)) + ">";
    return std::string(buf, static_cast<size_t>(n));
  }
};
const Source kHostSrc{false};
const Source kRumpSrc{true};

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}
std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string w; in >> w;) v.push_back(w);
  return v;
}

// /proc/<pid>/stat: the pid, the name in parentheses (it may hold spaces)
// and the fields after it.
struct Stat {
  long pid = -1;
  std::string comm;
  std::vector<std::string> rest;  // field 3 (state) onwards
  size_t fields() const { return 2 + rest.size(); }
};
Stat parse_stat(const std::string& s) {
  Stat st;
  size_t open = s.find('('), close = s.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return st;
  st.pid = std::stol(s.substr(0, open));
  st.comm = s.substr(open + 1, close - open - 1);
  st.rest = words(s.substr(close + 1));
  return st;
}

// /proc/<pid>/status: "Key:\tvalue" lines.
std::map<std::string, std::string> parse_status(const std::string& s) {
  std::map<std::string, std::string> m;
  for (const std::string& l : lines(s)) {
    size_t c = l.find(":\t");
    if (c == std::string::npos) c = l.find(':');
    m[l.substr(0, c)] = c + 1 < l.size() && l[c + 1] == '\t' ? l.substr(c + 2) : l.substr(c + 1);
  }
  return m;
}

// The format of a status value: how many tab-separated fields, and
// whether it is "<n> kB".
std::string value_shape(const std::string& v) {
  static const std::regex kb(R"(^ *\d+ kB$)");
  if (std::regex_match(v, kb)) return "kB";
  size_t tabs = 0;
  for (char c : v) tabs += c == '\t';
  return "fields:" + std::to_string(tabs + 1);
}

long status_num(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return -1;
  return std::stol(it->second);
}

std::set<std::string> dir_names(const char* path) {
  std::set<std::string> out;
  int fd = rump_sys_open(path, O_RDONLY | O_DIRECTORY);
  REQUIRE(fd >= 0);
  char buf[4096];
  for (;;) {
    long n = rump_sys_getdents64(fd, buf, sizeof buf);
    REQUIRE(n >= 0);
    if (n == 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      out.insert(d->d_name);
      off += d->d_reclen;
    }
  }
  rump_sys_close(fd);
  return out;
}

int write_str(const char* path, const std::string& s) {
  int fd = rump_sys_open(path, O_WRONLY | O_TRUNC);
  if (fd < 0) return -errno;
  ssize_t n = rump_sys_write(fd, s.data(), s.size());
  int e = n < 0 ? errno : 0;
  rump_sys_close(fd);
  return n < 0 ? -e : static_cast<int>(n);
}

}  // namespace

TEST_CASE("procfs: stat, status, statm and limits parse the same on the host and in the kernel", "[procfs]") {
  KernelUp up;
  Stat hs = parse_stat(kHostSrc.read("/proc/self/stat"));
  Stat rs = parse_stat(kRumpSrc.read("/proc/self/stat"));
  CHECK(hs.fields() == 52);
  CHECK(rs.fields() == hs.fields());
  CHECK(rs.pid == rump_sys_getpid());
  // Every field is a number (state is one letter), as in the host's.
  for (size_t i = 1; i < rs.rest.size(); i++) {
    INFO("field " << i + 3 << ": " << rs.rest[i]);
    CHECK(std::regex_match(rs.rest[i], std::regex(R"(-?\d+)")));
  }

  auto hst = parse_status(kHostSrc.read("/proc/self/status"));
  auto rst = parse_status(kRumpSrc.read("/proc/self/status"));
  REQUIRE(rst.size() > 30);
  for (const auto& [key, val] : rst) {
    INFO("status key " << key << ": '" << val << "'");
    REQUIRE(hst.count(key) == 1);  // every line the host knows
    // Groups and the CPU list vary in their number of entries.
    if (key == "Groups" || key == "Cpus_allowed_list" || key == "Mems_allowed") continue;
    CHECK(value_shape(val) == value_shape(hst[key]));
  }
  // The lines parsers rely on are all there.
  for (const char* key : {"Name", "State", "Tgid", "Pid", "PPid", "Uid", "Gid", "Threads", "VmSize", "VmRSS",
                          "SigBlk", "CapEff", "Cpus_allowed_list"})
    CHECK(rst.count(key) == 1);
  CHECK(status_num(rst, "Pid") == rump_sys_getpid());

  CHECK(words(kRumpSrc.read("/proc/self/statm")).size() == words(kHostSrc.read("/proc/self/statm")).size());

  auto hl = lines(kHostSrc.read("/proc/self/limits"));
  auto rl = lines(kRumpSrc.read("/proc/self/limits"));
  REQUIRE(rl.size() == hl.size());
  CHECK(rl[0] == hl[0]);
  for (size_t i = 1; i < rl.size(); i++) {
    INFO(rl[i] << " | " << hl[i]);
    CHECK(rl[i].substr(0, 26) == hl[i].substr(0, 26));  // the names, aligned the same
    CHECK(rl[i].size() == hl[i].size());
  }
}

TEST_CASE("procfs: the system files parse the same on the host and in the kernel", "[procfs]") {
  KernelUp up({.ncpu = 2});
  // meminfo: "Key:   <n> kB" lines.
  std::regex kb_line(R"(^[A-Za-z_()0-9]+: +\d+ kB$)");
  auto rm = lines(kRumpSrc.read("/proc/meminfo"));
  REQUIRE(rm.size() > 5);
  for (const auto& l : rm) {
    INFO(l);
    CHECK(std::regex_match(l, kb_line));
    CHECK(kHostSrc.read("/proc/meminfo").find(l.substr(0, l.find(':') + 1)) != std::string::npos);
  }
  CHECK(rm[0].rfind("MemTotal:", 0) == 0);
  // uptime: two numbers with two decimals.
  std::regex two(R"(^\d+\.\d\d \d+\.\d\d\n$)");
  CHECK(std::regex_match(kHostSrc.read("/proc/uptime"), two));
  CHECK(std::regex_match(kRumpSrc.read("/proc/uptime"), two));
  // loadavg: three loads, running/total, the last pid.
  std::regex load(R"(^\d+\.\d\d \d+\.\d\d \d+\.\d\d \d+/\d+ \d+\n$)");
  CHECK(std::regex_match(kHostSrc.read("/proc/loadavg"), load));
  CHECK(std::regex_match(kRumpSrc.read("/proc/loadavg"), load));
  // stat: the cpu lines have the host's field count; one per virtual CPU.
  auto hsl = lines(kHostSrc.read("/proc/stat"));
  auto rsl = lines(kRumpSrc.read("/proc/stat"));
  REQUIRE(!rsl.empty());
  CHECK(words(rsl[0]).size() == words(hsl[0]).size());
  int cpus = 0;
  for (const auto& l : rsl) {
    if (l.rfind("cpu", 0) == 0 && l[3] != ' ') {
      cpus++;
      CHECK(words(l).size() == words(hsl[1]).size());
    }
  }
  CHECK(cpus == 2);
  for (const char* key : {"btime", "processes", "procs_running", "ctxt"}) {
    bool found = false;
    for (const auto& l : rsl) found |= l.rfind(std::string(key) + " ", 0) == 0;
    CHECK(found);
  }
  // cpuinfo: one "processor" block per virtual CPU.
  int procs = 0;
  for (const auto& l : lines(kRumpSrc.read("/proc/cpuinfo"))) procs += l.rfind("processor\t: ", 0) == 0;
  CHECK(procs == 2);
  // filesystems: "nodev\tname" or "\tname", as the host's.
  std::regex fsl(R"(^(nodev)?\t[a-z0-9]+$)");
  auto rf = lines(kRumpSrc.read("/proc/filesystems"));
  for (const auto& l : rf) CHECK(std::regex_match(l, fsl));
  CHECK(std::find(rf.begin(), rf.end(), "nodev\tproc") != rf.end());
  CHECK(std::find(rf.begin(), rf.end(), "nodev\ttmpfs") != rf.end());
  CHECK(std::find(rf.begin(), rf.end(), "\text2") != rf.end());
  // mounts: six fields; mountinfo: the separator and ten fields or more.
  CHECK(kRumpSrc.link("/proc/mounts") == "self/mounts");
  CHECK(kHostSrc.link("/proc/mounts") == "self/mounts");
  auto mounts = lines(kRumpSrc.read("/proc/mounts"));
  for (const auto& l : mounts) CHECK(words(l).size() == 6);
  CHECK(std::find(mounts.begin(), mounts.end(), "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0") != mounts.end());
  CHECK(std::find(mounts.begin(), mounts.end(), "tmpfs / tmpfs rw,relatime 0 0") != mounts.end());
  for (const std::string& l : lines(kRumpSrc.read("/proc/self/mountinfo"))) {
    auto w = words(l);
    INFO(l);
    REQUIRE(w.size() >= 10);
    CHECK(std::regex_match(w[2], std::regex(R"(\d+:\d+)")));
    CHECK(std::find(w.begin(), w.end(), "-") - w.begin() == 6);  // no optional fields
  }
}

TEST_CASE("procfs: a process's pid, parent, state, ids and threads", "[procfs]") {
  KernelUp up;
  pid_t me = rump_sys_getpid();
  auto kid = rump_test::fork_kid();
  rump_test::as(kid.l, [] { return rump_sys_setgid(33) | rump_sys_setuid(1000); });
  REQUIRE(rump_test::as(kid.l, [] { return rump_sys_prctl(PR_SET_NAME, "worker one"); }) == 0);
  std::string base = "/proc/" + std::to_string(kid.pid);
  auto st = parse_status(kRumpSrc.read(base + "/status"));
  CHECK(st["Name"] == "worker one");
  CHECK(status_num(st, "Pid") == kid.pid);
  CHECK(status_num(st, "Tgid") == kid.pid);
  CHECK(status_num(st, "PPid") == me);
  CHECK(st["State"] == "S (sleeping)");
  CHECK(st["Uid"] == "1000\t1000\t1000\t1000");
  CHECK(st["Gid"] == "33\t33\t33\t33");
  CHECK(status_num(st, "Threads") == 1);
  Stat s = parse_stat(kRumpSrc.read(base + "/stat"));
  CHECK(s.pid == kid.pid);
  CHECK(s.comm == "worker one");
  REQUIRE(s.rest.size() > 17);
  CHECK(s.rest[0] == "S");
  CHECK(s.rest[1] == std::to_string(me));  // ppid
  CHECK(s.rest[17] == "1");                // num_threads
  // The reader itself runs.
  CHECK(parse_status(kRumpSrc.read("/proc/self/status"))["State"] == "R (running)");
  // The directory belongs to the process's user.
  struct stat sb;
  REQUIRE(rump_sys_stat(base.c_str(), &sb) == 0);
  CHECK(sb.st_uid == 1000u);
  CHECK(sb.st_gid == 33u);
  CHECK(S_ISDIR(sb.st_mode));

  // A second thread shows in Threads and task/.
  lwp* prev = rump_lwproc_curlwp();
  REQUIRE(rump_lwproc_newlwp(kid.pid) == 0);
  lwp* second = rump_lwproc_curlwp();
  rump_lwproc_switch(prev);
  CHECK(status_num(parse_status(kRumpSrc.read(base + "/status")), "Threads") == 2);
  auto tids = dir_names((base + "/task").c_str());
  tids.erase(".");
  tids.erase("..");
  CHECK(tids.size() == 2);
  for (const std::string& t : tids) {
    auto ts = parse_status(kRumpSrc.read(base + "/task/" + t + "/status"));
    CHECK(status_num(ts, "Tgid") == kid.pid);
    CHECK(status_num(ts, "Pid") == std::stol(t));
  }
  // thread-self names the calling thread.
  std::string ts = kRumpSrc.link("/proc/thread-self");
  CHECK(ts.rfind(std::to_string(me) + "/task/", 0) == 0);
  rump_lwproc_switch(second);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(prev);
}

TEST_CASE("procfs: a busy process's CPU times and start time in stat, status, /proc/stat and uptime", "[procfs]") {
  KernelUp up({.ncpu = 2});
  auto kid = rump_test::fork_kid();
  std::string base = "/proc/" + std::to_string(kid.pid);
  auto field = [](const Stat& s, int n) { return std::stoll(s.rest.at(static_cast<size_t>(n - 3))); };
  Stat s0 = parse_stat(kRumpSrc.read(base + "/stat"));
  REQUIRE(s0.fields() >= 52);
  auto cpu_line = [] { return words(lines(kRumpSrc.read("/proc/stat")).at(0)); };
  auto c0 = cpu_line();
  // 60 ms of the host thread's CPU time, as the kid's LWP.
  rump_test::as(kid.l, [] {
    rump_test::burn_thread_cpu(60 * 1000 * 1000);
    return 0;
  });
  Stat s1 = parse_stat(kRumpSrc.read(base + "/stat"));
  // utime + stime (fields 14, 15) in 10 ms ticks, each rounded down.
  CHECK(field(s1, 14) + field(s1, 15) - field(s0, 14) - field(s0, 15) >= 5);
  CHECK(field(s1, 16) + field(s1, 17) == 0);  // no children
  // starttime (22): since boot, no later than now.
  auto upw = words(kRumpSrc.read("/proc/uptime"));
  double uptime = std::stod(upw.at(0)), idle = std::stod(upw.at(1));
  CHECK(field(s1, 22) >= 0);
  CHECK(field(s1, 22) <= static_cast<long long>(uptime * 100) + 1);
  CHECK(field(s1, 22) == field(s0, 22));
  // The idle time is what the CPU time leaves of the virtual CPUs' time.
  CHECK(idle <= uptime * 2 + 0.01);
  auto c1 = cpu_line();
  REQUIRE(c1.size() == c0.size());
  CHECK(std::stoll(c1.at(1)) + std::stoll(c1.at(3)) - std::stoll(c0.at(1)) - std::stoll(c0.at(3)) >= 5);
  // status: the switch counters are there and parse.
  auto st = parse_status(kRumpSrc.read(base + "/status"));
  CHECK(status_num(st, "voluntary_ctxt_switches") >= 0);
  CHECK(status_num(st, "nonvoluntary_ctxt_switches") >= 0);
}

TEST_CASE("procfs: readdir lists the live pids, and a process that exits goes away", "[procfs]") {
  KernelUp up;
  // A parent that waits, and its child.
  lwp* top = rump_lwproc_curlwp();
  auto parent = rump_test::fork_and_switch();
  auto kid = rump_test::fork_kid();
  std::string pid = std::to_string(kid.pid);
  auto names = dir_names("/proc");
  CHECK(names.count(pid) == 1);
  CHECK(names.count(std::to_string(rump_sys_getpid())) == 1);
  CHECK(names.count("self") == 1);
  CHECK(names.count("sys") == 1);
  CHECK(names.count("0") == 0);
  // Exit: a zombie until it is reaped (state Z), then gone.
  rump_lwproc_switch(kid.l);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(parent.l);
  CHECK(parse_stat(kRumpSrc.read("/proc/" + pid + "/stat")).rest.at(0) == "Z");
  int status = 0;
  REQUIRE(rump_sys_wait4(kid.pid, &status, 0, nullptr) == kid.pid);
  CHECK(dir_names("/proc").count(pid) == 0);
  struct stat sb;
  CHECK_ERRNO(ENOENT, rump_sys_stat(("/proc/" + pid).c_str(), &sb));
  CHECK_ERRNO(ENOENT, rump_sys_stat("/proc/99999", &sb));
  rump_lwproc_releaselwp();
  rump_lwproc_switch(top);
  (void)parent;
}

TEST_CASE("procfs: fd links name the path, pipe:[ino], socket:[ino] or the anonymous inode, as the host's", "[procfs]") {
  KernelUp up;
  REQUIRE(rump_sys_mkdir("/tmp", 0777) == 0);
  int f = rump_sys_open("/tmp/file", O_CREAT | O_RDWR, 0644);
  REQUIRE(f >= 0);
  int p[2];
  REQUIRE(rump_sys_pipe2(p, 0) == 0);
  int e = rump_sys_eventfd2(0, 0);
  REQUIRE(e >= 0);
  auto fd_link = [](int fd) { return kRumpSrc.link("/proc/self/fd/" + std::to_string(fd)); };
  CHECK(fd_link(f) == "/tmp/file");
  struct stat sb;
  REQUIRE(rump_sys_fstat(p[0], &sb) == 0);
  CHECK(fd_link(p[0]) == "pipe:[" + std::to_string(sb.st_ino) + "]");
  CHECK(fd_link(e) == "anon_inode:[eventfd]");
  // The host prints the same forms.
  int hp[2];
  REQUIRE(pipe(hp) == 0);
  int he = eventfd(0, 0);
  std::regex pipe_re(R"(^pipe:\[\d+\]$)");
  CHECK(std::regex_match(kHostSrc.link("/proc/self/fd/" + std::to_string(hp[0])), pipe_re));
  CHECK(std::regex_match(fd_link(p[1]), pipe_re));
  CHECK(kHostSrc.link("/proc/self/fd/" + std::to_string(he)) == "anon_inode:[eventfd]");
  close(hp[0]);
  close(hp[1]);
  close(he);
  // A renamed file's link follows it; a directory's too.
  REQUIRE(rump_sys_mkdir("/tmp/d", 0755) == 0);
  REQUIRE(rump_sys_rename("/tmp/file", "/tmp/d/moved") == 0);
  CHECK(fd_link(f) == "/tmp/d/moved");
  int d = rump_sys_open("/tmp/d", O_RDONLY | O_DIRECTORY);
  CHECK(fd_link(d) == "/tmp/d");
  // The link's mode tells the access mode (Linux); fdinfo has the flags.
  REQUIRE(rump_sys_lstat(("/proc/self/fd/" + std::to_string(p[0])).c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0500);
  REQUIRE(rump_sys_lstat(("/proc/self/fd/" + std::to_string(p[1])).c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0300);
  auto info = parse_status(kRumpSrc.read("/proc/self/fdinfo/" + std::to_string(f)));
  CHECK(info["pos"] == "0");
  CHECK(info["flags"] == "0100002");
  auto hinfo = parse_status(kHostSrc.read("/proc/self/fdinfo/0"));
  for (const char* key : {"pos", "flags", "mnt_id", "ino"}) {
    CHECK(info.count(key) == 1);
    CHECK(hinfo.count(key) == 1);
  }
  // fd/ lists exactly the open descriptors.
  auto fds = dir_names("/proc/self/fd");
  for (int x : {f, p[0], p[1], e, d}) CHECK(fds.count(std::to_string(x)) == 1);
  rump_sys_close(e);
  char lb[64];
  CHECK_ERRNO(ENOENT, rump_sys_readlink(("/proc/self/fd/" + std::to_string(e)).c_str(), lb, sizeof lb));
  // cwd and root.
  CHECK(kRumpSrc.link("/proc/self/cwd") == "/");
  REQUIRE(rump_sys_chdir("/tmp/d") == 0);
  CHECK(kRumpSrc.link("/proc/self/cwd") == "/tmp/d");
  CHECK(kRumpSrc.link("/proc/self/root") == "/");
  // A path through the link opens the file.
  int again = rump_sys_open(("/proc/self/fd/" + std::to_string(f)).c_str(), O_RDONLY);
  CHECK(again >= 0);
}

TEST_CASE("procfs: another user's fd/ is EACCES, its own is not", "[procfs]") {
  KernelUp up;
  std::string init_fd = "/proc/" + std::to_string(rump_sys_getpid()) + "/fd";
  auto kid = rump_test::fork_kid();
  rump_lwproc_switch(kid.l);
  REQUIRE(rump_sys_setuid(1000) == 0);
  CHECK_ERRNO(EACCES, rump_sys_open(init_fd.c_str(), O_RDONLY | O_DIRECTORY));
  char buf[64];
  CHECK_ERRNO(EACCES, rump_sys_readlink((init_fd + "/0").c_str(), buf, sizeof buf));
  int own = rump_sys_open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
  CHECK(own >= 0);
  // status stays readable for everyone.
  CHECK(kRumpSrc.read("/proc/1/status").rfind("Name:", 0) == 0);
  // /proc/sys is root's to write.
  CHECK(write_str("/proc/sys/kernel/hostname", "nope\n") == -EACCES);
  rump_lwproc_releaselwp();
}

TEST_CASE("procfs: comm and /proc/sys/kernel/hostname are writable", "[procfs]") {
  KernelUp up;
  CHECK(write_str("/proc/self/comm", "renamed\n") == 8);
  CHECK(kRumpSrc.read("/proc/self/comm") == "renamed\n");
  char name[17] = {};
  REQUIRE(rump_sys_prctl(PR_GET_NAME, name) == 0);
  CHECK(std::string(name) == "renamed");
  // Longer names are cut to 15 bytes, as Linux's.
  CHECK(write_str("/proc/self/comm", "a-very-long-thread-name") == 23);
  CHECK(kRumpSrc.read("/proc/self/comm") == "a-very-long-thr\n");

  CHECK(write_str("/proc/sys/kernel/hostname", "procbox\n") == 8);
  CHECK(kRumpSrc.read("/proc/sys/kernel/hostname") == "procbox\n");
  struct utsname u;
  REQUIRE(rump_sys_uname(&u) == 0);
  CHECK(std::string(u.nodename) == "procbox");
  // Integers.
  std::string pid_max = kRumpSrc.read("/proc/sys/kernel/pid_max");
  CHECK(std::regex_match(pid_max, std::regex(R"(^\d+\n$)")));
  CHECK(write_str("/proc/sys/kernel/pid_max", "50000\n") == 6);
  CHECK(kRumpSrc.read("/proc/sys/kernel/pid_max") == "50000\n");
  CHECK(write_str("/proc/sys/kernel/pid_max", "many\n") == -EINVAL);
  CHECK(std::regex_match(kRumpSrc.read("/proc/sys/fs/file-max"), std::regex(R"(^\d+\n$)")));
  CHECK(write_str("/proc/sys/fs/file-max", "5\n") == -EACCES);  // read-only: mode 0444
  auto kernel = dir_names("/proc/sys/kernel");
  for (const char* n : {"hostname", "pid_max", "ostype", "osrelease"}) CHECK(kernel.count(n) == 1);
  CHECK(kRumpSrc.read("/proc/sys/kernel/ostype") == std::string(u.sysname) + "\n");
}

TEST_CASE("procfs: an isolated address space shows its real maps and VmSize", "[procfs]") {
  KernelUp up;
  lwp* prev = rump_lwproc_curlwp();
  lwp* iso = rump_test::isolated_proc();
  pid_t pid = rump_sys_getpid();
  void* a = rump_test::guest_map(1 << 20);
  REQUIRE(a != MAP_FAILED);
  void* b = rump_test::guest_map(2 << 20, PROT_READ);
  REQUIRE(b != MAP_FAILED);
  rump_lwproc_switch(prev);
  std::string base = "/proc/" + std::to_string(pid);
  auto st = parse_status(kRumpSrc.read(base + "/status"));
  CHECK(status_num(st, "VmSize") == 3072);
  auto maps = lines(kRumpSrc.read(base + "/maps"));
  std::regex map_line(R"(^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) ([0-9a-f]{8}) 00:00 0( +\[heap\])?$)");
  bool seen_a = false, seen_b = false;
  for (const auto& l : maps) {
    std::smatch m;
    INFO(l);
    REQUIRE(std::regex_match(l, m, map_line));
    uintptr_t lo = std::stoull(m[1], nullptr, 16), hi = std::stoull(m[2], nullptr, 16);
    if (lo == rump_test::U(a) && hi == lo + (1 << 20) && m[3] == "rw-p") seen_a = true;
    if (lo == rump_test::U(b) && hi == lo + (2 << 20) && m[3] == "r--p") seen_b = true;
  }
  CHECK(seen_a);
  CHECK(seen_b);
  // The host's maps lines have the same leading fields.
  std::regex host_line(R"(^[0-9a-f]+-[0-9a-f]+ [r-][w-][x-][ps] [0-9a-f]{8} [0-9a-f]+:[0-9a-f]+ \d+.*$)");
  for (const auto& l : lines(kHostSrc.read("/proc/self/maps"))) CHECK(std::regex_match(l, host_line));
  // smaps_rollup: the host's rows, in its format.
  auto hr = lines(kHostSrc.read("/proc/self/smaps_rollup"));
  auto rr = lines(kRumpSrc.read(base + "/smaps_rollup"));
  REQUIRE(rr.size() >= 2);
  CHECK(rr[0].find("[rollup]") != std::string::npos);
  std::regex row(R"(^[A-Za-z_]+: +\d+ kB$)");
  for (size_t i = 1; i < rr.size(); i++) {
    INFO(rr[i]);
    CHECK(std::regex_match(rr[i], row));
    bool on_host = false;
    for (const auto& h : hr) on_host |= h.substr(0, h.find(':')) == rr[i].substr(0, rr[i].find(':'));
    CHECK(on_host);
  }
  rump_lwproc_switch(iso);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(prev);
}

TEST_CASE("procfs: mountable again, and the boot mount is cheap", "[procfs]") {
  KernelUp up;
  REQUIRE(rump_sys_mkdir("/mnt", 0755) == 0);
  REQUIRE(rump_sys_mount("proc", "/mnt", "proc", 0, nullptr) == 0);
  CHECK(kRumpSrc.link("/mnt/self") == std::to_string(rump_sys_getpid()));
  CHECK(kRumpSrc.read("/mnt/self/comm") == kRumpSrc.read("/proc/self/comm"));
  struct statfs sf;
  REQUIRE(rump_sys_statfs("/mnt", &sf) == 0);
  CHECK(sf.f_type == 0x9fa0);  // PROC_SUPER_MAGIC
  // Nothing under it is writable by creation.
  CHECK_ERRNO(ENOENT, rump_sys_mkdir("/mnt/x", 0755));
  REQUIRE(rump_sys_umount2("/mnt", 0) == 0);
}

TEST_CASE("procfs: reading every process's files races fork, exit and reaping", "[procfs][concurrency]") {
  KernelUp up({.ncpu = 2});
  REQUIRE(rump_sys_mkdir("/tmp", 0777) == 0);
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  std::thread reader([&] {
    rump_kernel_set_current(up.k);
    while (!stop.load()) {
      int dfd = rump_sys_open("/proc", O_RDONLY | O_DIRECTORY);
      TCHECK(dfd >= 0);
      char buf[4096];
      long n = rump_sys_getdents64(dfd, buf, sizeof buf);
      rump_sys_close(dfd);
      for (long off = 0; off < n;) {
        auto* d = reinterpret_cast<struct dirent64*>(buf + off);
        off += d->d_reclen;
        if (d->d_name[0] < '1' || d->d_name[0] > '9') continue;
        std::string base = std::string("/proc/") + d->d_name;
        for (const char* f : {"/status", "/stat", "/maps", "/fdinfo/0", "/mountinfo"}) {
          std::string t = kRumpSrc.read(base + f);
          // Gone meanwhile is fine; what is read is whole.
          if (std::string(f) == "/status" && t.rfind("<open", 0) != 0 && !t.empty())
            TCHECK(t.rfind("Name:", 0) == 0);
          reads++;
        }
        kRumpSrc.link(base + "/cwd");
        kRumpSrc.link(base + "/fd/0");
      }
    }
  });
  lwp* top = rump_lwproc_curlwp();
  auto parent = rump_test::fork_and_switch();
  // The reader is under way before the first fork (it always finds init
  // and the parent to read).
  while (reads.load() == 0) std::this_thread::yield();
  for (int i = 0; i < 200; i++) {
    // Every other kid has an isolated space (whose memory, not the host's,
    // its system calls reach) with a mapping; the others open a file.
    bool isolated = i % 2;
    auto kid = rump_test::fork_kid(isolated ? RUMP_RFFDG | RUMP_RFVMSPACE : RUMP_RFFDG);
    rump_lwproc_switch(kid.l);
    if (isolated) CHECK(rump_test::guest_map(1 << 16) != MAP_FAILED);
    else CHECK(rump_sys_open("/tmp/f", O_CREAT | O_RDWR, 0644) >= 0);
    rump_lwproc_releaselwp();
    rump_lwproc_switch(parent.l);
    int st = 0;
    REQUIRE(rump_sys_wait4(kid.pid, &st, 0, nullptr) == kid.pid);
  }
  stop = true;
  reader.join();
  CHECK_THREADS_OK();
  rump_lwproc_releaselwp();
  rump_lwproc_switch(top);
}
