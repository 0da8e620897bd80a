// procfs: /proc read by one parser on the host and in the kernel (field
// counts and formats equal), its values for the kernel's own processes
// (pids, parent, state, ids, threads, VmSize of isolated spaces, fd
// links), readdir of live pids, a process that exits going away,
// permissions, the writable files (comm, /proc/sys), and the CPU times
// and start time of a busy process in stat, status, /proc/stat and uptime;
// against the host: links of unlinked files and removed directories
// ("<path> (deleted)", "/memfd:x (deleted)") and opening through them
// (a deleted file's inode, a new description of a pipe, ENXIO for sockets
// and eventfds), stat and O_PATH through the links of pipes and sockets,
// a file replaced by rename; cmdline and environ from the areas PR_SET_MM sets (the
// host's own argument vector shown the same; an isolated process's;
// setproctitle's rewrite; the checks), and maps naming the mapped files
// with their device and inode.
#include <rump/rump.h>

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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

#include "differential.h"
#include "rump_test.h"

using rump_diff::Sys;
using rump_diff::Trace;
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
  std::vector<rump_test::Dirent> ents;
  REQUIRE(rump_test::rump_dirents(path, ents));
  std::set<std::string> out;
  for (const rump_test::Dirent& e : ents) out.insert(e.name);
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

namespace {

std::string fd_path(long fd) { return "/proc/self/fd/" + std::to_string(fd); }

// Records a link's text, byte by byte, so that two traces compare it.
void link_into(Trace& trace, Sys sys, const std::string& path) {
  char buf[256];
  long n = sys(SYS_readlinkat, AT_FDCWD, path.c_str(), buf, sizeof buf);
  trace.call(n, __LINE__);
  for (long i = 0; i < n; i++) trace.put(buf[i], __LINE__);
}

// Links of things no name leads to any more, and opening through the
// links (Linux's magic links).
Trace magic_link_scenario(Sys sys, const std::string& dir) {
  Trace trace;
  std::string f = dir + "/f", d = dir + "/d";
  long fd, again, w, r, so, ev, dfd, m;
  TFD(fd, sys(SYS_openat, AT_FDCWD, f.c_str(), O_CREAT | O_RDWR, 0600));
  T(sys(SYS_write, fd, "abc", 3));
  link_into(trace, sys, fd_path(fd));
  T(sys(SYS_unlink, f.c_str()));
  link_into(trace, sys, fd_path(fd));
  // The deleted file opens again through its link: the same inode.
  TFD(again, sys(SYS_openat, AT_FDCWD, fd_path(fd).c_str(), O_RDONLY));
  char b[4] = {};
  T(sys(SYS_read, again, b, 3));
  V(b[0]), V(b[1]), V(b[2]);
  struct stat s1, s2;
  T(sys(SYS_fstat, fd, &s1));
  T(sys(SYS_fstat, again, &s2));
  V(s1.st_ino == s2.st_ino), V(s1.st_nlink), V(s2.st_nlink);
  T(sys(SYS_close, again));
  T(sys(SYS_openat, AT_FDCWD, fd_path(fd).c_str(), O_RDONLY | O_NOFOLLOW));
  // A pipe's link opens a new description of the same pipe, either end.
  int p[2];
  T(sys(SYS_pipe2, p, 0));
  TFD(w, sys(SYS_openat, AT_FDCWD, fd_path(p[0]).c_str(), O_WRONLY));
  T(sys(SYS_write, w, "hi", 2));
  T(sys(SYS_read, p[0], b, 2));
  V(b[0]), V(b[1]);
  TFD(r, sys(SYS_openat, AT_FDCWD, fd_path(p[1]).c_str(), O_RDONLY | O_NONBLOCK));
  T(sys(SYS_read, r, b, 1));
  T(sys(SYS_write, p[1], "z", 1));
  T(sys(SYS_read, r, b, 1));
  V(b[0]);
  T(sys(SYS_fstat, r, &s1));
  T(sys(SYS_fstat, p[0], &s2));
  V(s1.st_ino == s2.st_ino), V(s1.st_mode);
  T(sys(SYS_fcntl, r, F_GETFL));
  T(sys(SYS_close, r));
  T(sys(SYS_close, w));
  T(sys(SYS_close, p[0]));
  T(sys(SYS_close, p[1]));
  // Sockets and anonymous inodes do not open again.
  TFD(so, sys(SYS_socket, AF_UNIX, SOCK_STREAM, 0));
  T(sys(SYS_openat, AT_FDCWD, fd_path(so).c_str(), O_RDWR));
  TFD(ev, sys(SYS_eventfd2, 0, 0));
  T(sys(SYS_openat, AT_FDCWD, fd_path(ev).c_str(), O_RDWR));
  T(sys(SYS_close, so));
  T(sys(SYS_close, ev));
  // A removed directory, held open and as the working directory.
  T(sys(SYS_mkdir, d.c_str(), 0755));
  TFD(dfd, sys(SYS_openat, AT_FDCWD, d.c_str(), O_RDONLY | O_DIRECTORY));
  T(sys(SYS_chdir, d.c_str()));
  T(sys(SYS_rmdir, d.c_str()));
  link_into(trace, sys, fd_path(dfd));
  link_into(trace, sys, "/proc/self/cwd");
  T(sys(SYS_close, dfd));
  // A memfd has no name at all.
  TFD(m, sys(SYS_memfd_create, "x", 0));
  link_into(trace, sys, fd_path(m));
  T(sys(SYS_close, m));
  T(sys(SYS_close, fd));
  return trace;
}

}  // namespace

TEST_CASE("procfs: links of unlinked files say (deleted), and open the same object, as the host's",
          "[procfs][differential]") {
  KernelUp up;
  rump_diff::differential_in_dir("/tmp", magic_link_scenario);
}

namespace {

// The text of a link, as one value per byte is hard to compare when the
// numbers in it differ: whether two links read the same.
bool same_link(Sys sys, const std::string& a, const std::string& b) {
  char x[256], y[256];
  long n = sys(SYS_readlinkat, AT_FDCWD, a.c_str(), x, sizeof x);
  long m = sys(SYS_readlinkat, AT_FDCWD, b.c_str(), y, sizeof y);
  return n > 0 && n == m && std::memcmp(x, y, static_cast<size_t>(n)) == 0;
}

// stat and O_PATH through the fd links of descriptions with no path (a
// pipe, a socket) reach the object, not the link's text.
Trace magic_stat_scenario(Sys sys) {
  Trace trace;
  int p[2];
  T(sys(SYS_pipe2, p, 0));
  struct stat st, fst, lst;
  T(sys(SYS_fstat, p[0], &fst));
  T(sys(SYS_stat, fd_path(p[0]).c_str(), &st));
  V(st.st_mode), V(st.st_ino == fst.st_ino), V(st.st_dev == fst.st_dev), V(st.st_nlink);
  T(sys(SYS_lstat, fd_path(p[0]).c_str(), &lst));
  V(lst.st_mode & S_IFMT);
  T(sys(SYS_newfstatat, AT_FDCWD, fd_path(p[1]).c_str(), &st, 0));
  V(st.st_mode), V(st.st_ino == fst.st_ino);
  T(sys(SYS_newfstatat, p[0], "", &st, AT_EMPTY_PATH));
  V(st.st_mode), V(st.st_ino == fst.st_ino);
  struct statx sx;
  std::memset(&sx, 0, sizeof sx);
  T(sys(SYS_statx, AT_FDCWD, fd_path(p[0]).c_str(), 0, STATX_BASIC_STATS, &sx));
  V(sx.stx_mode), V(sx.stx_ino == fst.st_ino), V(sx.stx_mask & STATX_BASIC_STATS);
  // O_PATH: a descriptor of the pipe, holding none of its ends.
  long op, w, sop;
  TFD(op, sys(SYS_openat, AT_FDCWD, fd_path(p[0]).c_str(), O_PATH));
  T(sys(SYS_fstat, op, &st));
  V(st.st_mode), V(st.st_ino == fst.st_ino);
  T(sys(SYS_fcntl, op, F_GETFL));
  char b[4] = {};
  T(sys(SYS_read, op, b, 1));
  V(same_link(sys, fd_path(op), fd_path(p[0])));
  // Its own link opens the pipe again.
  TFD(w, sys(SYS_openat, AT_FDCWD, fd_path(op).c_str(), O_WRONLY | O_NONBLOCK));
  T(sys(SYS_write, w, "q", 1));
  T(sys(SYS_read, p[0], b, 1));
  V(b[0]);
  T(sys(SYS_close, w));
  T(sys(SYS_close, p[1]));
  T(sys(SYS_read, p[0], b, 1));  // end of file: the O_PATH one is no writer
  T(sys(SYS_close, op));
  T(sys(SYS_close, p[0]));
  // A socket: stat and O_PATH reach it; opening through the O_PATH
  // descriptor's link is ENXIO, as through the socket's.
  long so;
  TFD(so, sys(SYS_socket, AF_UNIX, SOCK_STREAM, 0));
  T(sys(SYS_fstat, so, &fst));
  T(sys(SYS_stat, fd_path(so).c_str(), &st));
  V(st.st_mode & S_IFMT), V(st.st_ino == fst.st_ino);
  TFD(sop, sys(SYS_openat, AT_FDCWD, fd_path(so).c_str(), O_PATH | O_CLOEXEC));
  T(sys(SYS_fstat, sop, &st));
  V(st.st_mode & S_IFMT), V(st.st_ino == fst.st_ino);
  T(sys(SYS_fcntl, sop, F_GETFD));
  V(same_link(sys, fd_path(sop), fd_path(so)));
  T(sys(SYS_openat, AT_FDCWD, fd_path(sop).c_str(), O_RDWR));
  T(sys(SYS_openat, AT_FDCWD, fd_path(so).c_str(), O_PATH | O_DIRECTORY));
  T(sys(SYS_close, sop));
  T(sys(SYS_close, so));
  return trace;
}

// A file replaced by rename over its name: its links say where it was.
Trace rename_over_scenario(Sys sys, const std::string& dir) {
  Trace trace;
  std::string f = dir + "/f", g = dir + "/g";
  long fd, gd;
  TFD(fd, sys(SYS_openat, AT_FDCWD, f.c_str(), O_CREAT | O_RDWR, 0600));
  TFD(gd, sys(SYS_openat, AT_FDCWD, g.c_str(), O_CREAT | O_RDWR, 0600));
  T(sys(SYS_rename, g.c_str(), f.c_str()));
  link_into(trace, sys, fd_path(fd));
  link_into(trace, sys, fd_path(gd));
  T(sys(SYS_close, gd));
  T(sys(SYS_close, fd));
  T(sys(SYS_unlink, f.c_str()));
  return trace;
}

}  // namespace

TEST_CASE("procfs: stat and O_PATH through the fd link of a pipe or socket reach it, as the host's",
          "[procfs][differential]") {
  KernelUp up;
  rump_diff::differential(magic_stat_scenario);
}

TEST_CASE("procfs: a file replaced by rename reads <path> (deleted), as the host's", "[procfs][differential]") {
  KernelUp up;
  rump_diff::differential_in_dir("/tmp", rename_over_scenario);
}

TEST_CASE("procfs: RESOLVE_NO_MAGICLINKS refuses the fd links", "[procfs]") {
  KernelUp up;
  int p[2];
  REQUIRE(rump_sys_pipe2(p, 0) == 0);
  struct {
    uint64_t flags, mode, resolve;
  } how{O_WRONLY, 0, 0x02 /* RESOLVE_NO_MAGICLINKS */};
  std::string path = fd_path(p[0]);
  CHECK_ERRNO(ELOOP, rump_sys_openat2(AT_FDCWD, path.c_str(), &how, sizeof how));
  how.resolve = 0;
  long w = rump_sys_openat2(AT_FDCWD, path.c_str(), &how, sizeof how);
  CHECK(w >= 0);
}

TEST_CASE("procfs: cmdline and environ read the areas PR_SET_MM sets, as the host shows its own", "[procfs]") {
  KernelUp up;
  // The host's own argument vector and environment, in this process's
  // memory (the host space of the kernel's processes), set as the areas:
  // the kernel shows the same bytes.
  static std::string host_args = kHostSrc.read("/proc/self/cmdline");
  static std::string host_env = kHostSrc.read("/proc/self/environ");
  REQUIRE(!host_args.empty());
  auto set = [](int opt, const void* at) {
    return rump_sys_prctl(PR_SET_MM, opt, reinterpret_cast<unsigned long>(at), 0, 0);
  };
  // None set: the name, NUL-terminated.
  std::string comm = kRumpSrc.read("/proc/self/comm");
  CHECK(kRumpSrc.read("/proc/self/cmdline") == comm.substr(0, comm.size() - 1) + std::string(1, '\0'));
  // The start may not pass the end: the end goes first (Linux).
  CHECK_ERRNO(EINVAL, set(PR_SET_MM_ARG_START, host_args.data()));
  REQUIRE(set(PR_SET_MM_ARG_END, host_args.data() + host_args.size()) == 0);
  REQUIRE(set(PR_SET_MM_ARG_START, host_args.data()) == 0);
  CHECK(kRumpSrc.read("/proc/self/cmdline") == host_args);
  CHECK(kRumpSrc.read("/proc/self/environ").empty());
  if (!host_env.empty()) {
    REQUIRE(set(PR_SET_MM_ENV_END, host_env.data() + host_env.size()) == 0);
    REQUIRE(set(PR_SET_MM_ENV_START, host_env.data()) == 0);
    CHECK(kRumpSrc.read("/proc/self/environ") == host_env);
  }
  // The host's parser of cmdline splits both the same way.
  auto split = [](const std::string& s) {
    std::vector<std::string> v;
    for (size_t i = 0; i < s.size();) {
      size_t e = s.find('\0', i);
      if (e == std::string::npos) e = s.size();
      v.push_back(s.substr(i, e - i));
      i = e + 1;
    }
    return v;
  };
  CHECK(split(kRumpSrc.read("/proc/self/cmdline")) == split(host_args));
  // A child shares the areas (its memory is the same); with a fresh space
  // it has none.
  auto kid = rump_test::fork_kid();
  CHECK(kRumpSrc.read("/proc/" + std::to_string(kid.pid) + "/cmdline") == host_args);
  // Checks: arguments Linux refuses, then root's capability.
  CHECK_ERRNO(EINVAL, rump_sys_prctl(PR_SET_MM, PR_SET_MM_ARG_END, 0x100000ul, 0, 1));
  CHECK_ERRNO(EINVAL, set(PR_SET_MM_ARG_END, reinterpret_cast<void*>(0x1000)));
  CHECK_ERRNO(EINVAL, set(PR_SET_MM_START_CODE, host_args.data()));
  rump_test::as(kid.l, [] { return rump_sys_setuid(1000); });
  CHECK(rump_test::as(kid.l, [&] { return set(PR_SET_MM_ARG_END, host_args.data()) == -1 && errno == EPERM; }));
  lwp* prev = rump_lwproc_curlwp();
  rump_lwproc_switch(kid.l);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(prev);
}

TEST_CASE("procfs: an isolated process's cmdline comes from its own memory, setproctitle style too", "[procfs]") {
  KernelUp up;
  lwp* prev = rump_lwproc_curlwp();
  lwp* iso = rump_test::isolated_proc();
  pid_t pid = rump_sys_getpid();
  auto* a = static_cast<char*>(rump_test::guest_map(4096));
  REQUIRE(a != MAP_FAILED);
  static const char kArgs[] = "prog\0--flag\0value";  // sizeof: with the last NUL
  REQUIRE(rump_copyout(kArgs, a, sizeof kArgs) == 0);
  REQUIRE(rump_sys_prctl(PR_SET_MM, PR_SET_MM_ARG_END, reinterpret_cast<unsigned long>(a + sizeof kArgs), 0, 0) == 0);
  REQUIRE(rump_sys_prctl(PR_SET_MM, PR_SET_MM_ARG_START, reinterpret_cast<unsigned long>(a), 0, 0) == 0);
  rump_lwproc_switch(prev);
  std::string cmdline = "/proc/" + std::to_string(pid) + "/cmdline";
  CHECK(kRumpSrc.read(cmdline) == std::string(kArgs, sizeof kArgs));
  // Rewritten in place with no NUL at the end: one string, up to its NUL.
  rump_lwproc_switch(iso);
  static const char kTitle[] = "worker: idle\0xxxxx";
  REQUIRE(rump_copyout(kTitle, a, sizeof kTitle - 1) == 0);
  rump_lwproc_switch(prev);
  CHECK(kRumpSrc.read(cmdline) == std::string("worker: idle\0", 13));
  // A zombie shows none.
  auto parent = rump_test::fork_and_switch();
  auto kid = rump_test::fork_kid();
  REQUIRE(rump_test::as(kid.l, [] { return rump_sys_prctl(PR_SET_NAME, "kid"); }) == 0);
  std::string kcmd = "/proc/" + std::to_string(kid.pid) + "/cmdline";
  CHECK(kRumpSrc.read(kcmd) == std::string("kid\0", 4));
  rump_lwproc_switch(kid.l);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(parent.l);
  CHECK(kRumpSrc.read(kcmd).empty());
  int st;
  REQUIRE(rump_sys_wait4(kid.pid, &st, 0, nullptr) == kid.pid);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(iso);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(prev);
}

TEST_CASE("procfs: maps name the mapped files with their device and inode, (deleted) once unlinked", "[procfs]") {
  KernelUp up;
  REQUIRE(rump_sys_mkdir("/tmp", 0777) == 0);
  // The files are opened here (the isolated process's system calls read
  // their pointers from its own space) and mapped there, through the
  // descriptor table the two share.
  int f = rump_sys_open("/tmp/mapped", O_CREAT | O_RDWR, 0644);
  REQUIRE(f >= 0);
  REQUIRE(rump_sys_ftruncate(f, 2 * 4096) == 0);
  int m = rump_sys_memfd_create("blob", 0);
  REQUIRE(m >= 0);
  REQUIRE(rump_sys_ftruncate(m, 4096) == 0);
  struct stat fs, ms;
  REQUIRE(rump_sys_fstat(f, &fs) == 0);
  REQUIRE(rump_sys_fstat(m, &ms) == 0);
  lwp* prev = rump_lwproc_curlwp();
  lwp* iso = rump_test::isolated_proc();
  pid_t pid = rump_sys_getpid();
  void* fa = rump_sys_mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, f, 4096);
  void* ma = rump_sys_mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
  void* za = rump_sys_mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(fa != MAP_FAILED);
  REQUIRE(ma != MAP_FAILED);
  REQUIRE(za != MAP_FAILED);
  char* brk0 = static_cast<char*>(rump_sys_brk(nullptr));
  REQUIRE(rump_sys_brk(brk0 + 8192) == brk0 + 8192);
  rump_lwproc_switch(prev);
  // Each line: the host's fields, then the name at column 73.
  std::regex line(R"(^([0-9a-f]+)-[0-9a-f]+ ([r-][w-][x-][ps]) ([0-9a-f]{8}) ([0-9a-f]{2,}):([0-9a-f]{2,}) (\d+)(?: {2,}(.*))?$)");
  auto find = [&](void* at) -> std::smatch {
    static std::vector<std::string> keep;
    keep = lines(kRumpSrc.read("/proc/" + std::to_string(pid) + "/maps"));
    for (const auto& l : keep) {
      std::smatch mt;
      INFO(l);
      REQUIRE(std::regex_match(l, mt, line));
      if (l.find('/') != std::string::npos || l.find('[') != std::string::npos) CHECK(l.find_first_not_of(' ', 73) == 73);
      if (std::stoull(mt[1], nullptr, 16) == rump_test::U(at)) return mt;
    }
    FAIL("no mapping at " << at);
    return {};
  };
  auto dev = [](const std::smatch& mt) {
    return makedev(std::stoul(mt[4], nullptr, 16), std::stoul(mt[5], nullptr, 16));
  };
  std::smatch fl = find(fa);
  CHECK(fl[2] == "r--p");
  CHECK(fl[3] == "00001000");
  CHECK(fl[7] == "/tmp/mapped");
  CHECK(std::stoull(fl[6]) == fs.st_ino);
  CHECK(dev(fl) == fs.st_dev);
  std::smatch ml = find(ma);
  CHECK(ml[2] == "rw-s");
  CHECK(ml[7] == "/memfd:blob (deleted)");
  CHECK(std::stoull(ml[6]) == ms.st_ino);
  CHECK(find(za)[7] == "/dev/zero (deleted)");
  CHECK(find(reinterpret_cast<void*>(brk0))[7] == "[heap]");
  // Unlinked: the path it had, and (deleted).
  REQUIRE(rump_sys_unlink("/tmp/mapped") == 0);
  CHECK(find(fa)[7] == "/tmp/mapped (deleted)");
  // The host's maps name files the same way.
  bool named = false;
  for (const auto& l : lines(kHostSrc.read("/proc/self/maps"))) {
    std::smatch mt;
    if (std::regex_match(l, mt, line) && mt[7].length() && mt[7].str()[0] == '/') {
      named = true;
      CHECK(l.find_first_not_of(' ', 73) == 73);
    }
  }
  CHECK(named);
  rump_lwproc_switch(iso);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(prev);
}

TEST_CASE("procfs: exe is ENOENT until PR_SET_MM_EXE_FILE names the executable, then a link that opens it",
          "[procfs]") {
  KernelUp up;
  char buf[64];
  CHECK_ERRNO(ENOENT, rump_sys_readlink("/proc/self/exe", buf, sizeof buf));
  CHECK_ERRNO(ENOENT, rump_sys_open("/proc/self/exe", O_RDONLY));
  REQUIRE(rump_sys_mkdir("/bin", 0755) == 0);
  int prog = rump_sys_open("/bin/prog", O_CREAT | O_RDWR, 0755);
  REQUIRE(prog >= 0);
  REQUIRE(rump_sys_write(prog, "\177ELF", 4) == 4);
  REQUIRE(rump_sys_close(prog) == 0);
  prog = rump_sys_open("/bin/prog", O_RDONLY);
  REQUIRE(prog >= 0);
  int data = rump_sys_open("/bin/data", O_CREAT | O_RDWR, 0644);
  int dir = rump_sys_open("/bin", O_RDONLY | O_DIRECTORY);
  auto set = [](int fd) { return rump_sys_prctl(PR_SET_MM, PR_SET_MM_EXE_FILE, fd, 0, 0); };
  // Linux's checks: a descriptor, of a regular file the caller may execute.
  CHECK_ERRNO(EBADF, set(99));
  CHECK_ERRNO(EACCES, set(data));
  CHECK_ERRNO(EACCES, set(dir));
  REQUIRE(set(prog) == 0);
  CHECK(kRumpSrc.link("/proc/self/exe") == "/bin/prog");
  int again = rump_sys_open("/proc/self/exe", O_RDONLY);
  REQUIRE(again >= 0);
  char head[4] = {};
  CHECK(rump_sys_read(again, head, 4) == 4);
  CHECK(std::string(head, 4) == "\177ELF");
  // A child inherits it; a user without CAP_SYS_RESOURCE may not set it.
  auto kid = rump_test::fork_kid();
  CHECK(kRumpSrc.link("/proc/" + std::to_string(kid.pid) + "/exe") == "/bin/prog");
  rump_test::as(kid.l, [] { return rump_sys_setuid(1000); });
  CHECK(rump_test::as(kid.l, [&] { return set(prog) == -1 && errno == EPERM; }));
  // Unlinked, it shows where it was.
  REQUIRE(rump_sys_unlink("/bin/prog") == 0);
  CHECK(kRumpSrc.link("/proc/self/exe") == "/bin/prog (deleted)");
  lwp* prev = rump_lwproc_curlwp();
  rump_lwproc_switch(kid.l);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(prev);
}

TEST_CASE("PR_SET_MM_EXE_FILE: EBUSY while the old executable is mapped, EACCES for a file open for writing, "
          "then ETXTBSY for writers until it is replaced or the process goes",
          "[procfs]") {
  KernelUp up;
  // The host: its executable is mapped (EBUSY) and denies writing.
  auto host = rump_test::host_child<int>([] {
    int fd = open("/proc/self/exe", O_RDONLY);
    int r = prctl(PR_SET_MM, PR_SET_MM_EXE_FILE, fd, 0, 0);
    // (Without CAP_SYS_RESOURCE, as in a container, the host says EPERM
    // first and shows nothing.)
    int busy = r == -1 && (errno == EBUSY || errno == EPERM);
    int txt = open("/proc/self/exe", O_WRONLY) == -1 && errno == ETXTBSY;
    return busy * 2 + txt;
  });
  CHECK(host == 3);
  REQUIRE(rump_sys_mkdir("/bin", 0755) == 0);
  int a = rump_sys_open("/bin/a", O_CREAT | O_RDWR, 0755);
  int b = rump_sys_open("/bin/b", O_CREAT | O_RDWR, 0755);
  REQUIRE(a >= 0);
  REQUIRE(b >= 0);
  REQUIRE(rump_sys_ftruncate(a, 4096) == 0);
  auto set = [](int fd) { return rump_sys_prctl(PR_SET_MM, PR_SET_MM_EXE_FILE, fd, 0, 0); };
  // Open for writing (here, by a): EACCES.
  CHECK_ERRNO(EACCES, set(a));
  REQUIRE(rump_sys_close(a) == 0);
  a = rump_sys_open("/bin/a", O_RDONLY);
  REQUIRE(a >= 0);
  // An isolated process (it shares this descriptor table) names a, then
  // maps it: another may not replace it while the mapping lasts.
  lwp* prev = rump_lwproc_curlwp();
  lwp* iso = rump_test::isolated_proc();
  REQUIRE(set(a) == 0);
  void* at = rump_sys_mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, a, 0);
  REQUIRE(at != MAP_FAILED);
  rump_lwproc_switch(prev);
  // Writers of the executable: ETXTBSY, by open and by truncate.
  CHECK_ERRNO(ETXTBSY, rump_sys_open("/bin/a", O_WRONLY));
  CHECK_ERRNO(ETXTBSY, rump_sys_truncate("/bin/a", 0));
  int ro = rump_sys_open("/bin/a", O_RDONLY);
  CHECK(ro >= 0);
  rump_sys_close(ro);
  rump_lwproc_switch(iso);
  REQUIRE(rump_sys_close(b) == 0);  // b: no writer left
  int b_ro = -1;
  rump_lwproc_switch(prev);
  b_ro = rump_sys_open("/bin/b", O_RDONLY);
  REQUIRE(b_ro >= 0);
  rump_lwproc_switch(iso);
  CHECK_ERRNO(EBUSY, set(b_ro));
  REQUIRE(rump_sys_munmap(at, 4096) == 0);
  REQUIRE(set(b_ro) == 0);
  rump_lwproc_switch(prev);
  // a is free again, b is denied now.
  int w = rump_sys_open("/bin/a", O_WRONLY);
  CHECK(w >= 0);
  rump_sys_close(w);
  CHECK_ERRNO(ETXTBSY, rump_sys_open("/bin/b", O_RDWR));
  // A child's copy denies too; the last holder's exit allows writing.
  rump_lwproc_switch(iso);
  auto kid = rump_test::fork_kid(RUMP_RFFDG);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(prev);
  CHECK_ERRNO(ETXTBSY, rump_sys_open("/bin/b", O_RDWR));
  rump_lwproc_switch(kid.l);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(prev);
  w = rump_sys_open("/bin/b", O_RDWR);
  CHECK(w >= 0);
  rump_sys_close(w);
}

TEST_CASE("procfs: a host-space process's maps show the file views and memory the kernel mapped for it",
          "[procfs]") {
  KernelUp up;
  REQUIRE(rump_sys_mkdir("/tmp", 0777) == 0);
  int f = rump_sys_open("/tmp/viewed", O_CREAT | O_RDWR, 0644);
  REQUIRE(f >= 0);
  REQUIRE(rump_sys_ftruncate(f, 3 * 4096) == 0);
  struct stat fs;
  REQUIRE(rump_sys_fstat(f, &fs) == 0);
  // This test's own process lives in the host's address space: the view
  // is the file cache's frames at a host address.
  void* va = rump_sys_mmap(nullptr, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f, 4096);
  void* aa = rump_sys_mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(va != MAP_FAILED);
  REQUIRE(aa != MAP_FAILED);
  std::string maps = "/proc/" + std::to_string(rump_sys_getpid()) + "/maps";
  std::regex line(R"(^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) ([0-9a-f]{8}) ([0-9a-f]{2,}):([0-9a-f]{2,}) (\d+)(?: {2,}(.*))?$)");
  auto find = [&](void* at) {
    std::vector<std::string> found;
    for (const auto& l : lines(kRumpSrc.read(maps))) {
      std::smatch mt;
      INFO(l);
      REQUIRE(std::regex_match(l, mt, line));
      if (std::stoull(mt[1], nullptr, 16) == rump_test::U(at))
        for (size_t i = 0; i < mt.size(); i++) found.push_back(mt[i]);
    }
    return found;
  };
  std::vector<std::string> v = find(va);
  REQUIRE(v.size() == 9);
  CHECK(std::stoull(v[2], nullptr, 16) - std::stoull(v[1], nullptr, 16) == 2 * 4096);
  CHECK(v[3] == "rw-s");
  CHECK(v[4] == "00001000");
  CHECK(makedev(std::stoul(v[5], nullptr, 16), std::stoul(v[6], nullptr, 16)) == fs.st_dev);
  CHECK(std::stoull(v[7]) == fs.st_ino);
  CHECK(v[8] == "/tmp/viewed");
  std::vector<std::string> a = find(aa);
  REQUIRE(a.size() == 9);
  CHECK(a[3] == "rw-p");
  CHECK(a[7] == "0");
  CHECK(a[8] == "");
  // smaps lists the same mappings, with their sizes (no page figures).
  std::string sm = kRumpSrc.read("/proc/" + std::to_string(rump_sys_getpid()) + "/smaps");
  size_t at = sm.find(v[0]);
  REQUIRE(at != std::string::npos);
  CHECK(sm.find("Size:                  8 kB", at) == sm.find("Size:", at));
  // Gone with munmap.
  REQUIRE(rump_sys_munmap(va, 2 * 4096) == 0);
  CHECK(find(va).empty());
  CHECK(find(aa).size() == 9);
  REQUIRE(rump_sys_munmap(aa, 4096) == 0);
  rump_sys_close(f);
}

TEST_CASE("PR_SET_MM: an address with no mapping at or above it is EFAULT, as on the host; [stack] in maps",
          "[procfs]") {
  KernelUp up;
  // Above every mapping but inside the user range; then the lowest user
  // address, below mappings (Linux's find_vma needs none to contain it).
  constexpr unsigned long kHigh = 0x7fffffffff00ul, kLow = 0x10000ul;
  auto probe = [](auto prctl_fn) {
    long r = 0;
    for (int opt : {PR_SET_MM_START_STACK, PR_SET_MM_ARG_END, PR_SET_MM_ENV_END}) {
      errno = 0;
      r = r * 100 + (prctl_fn(opt, kHigh) == -1 ? errno : 0);
    }
    return r;
  };
  // (-1: the host may not, without CAP_SYS_RESOURCE, as in a container.)
  long host = rump_test::host_child<long>([&] {
    long r = probe([](int opt, unsigned long at) { return prctl(PR_SET_MM, opt, at, 0, 0); });
    return r == EPERM * 10000 + EPERM * 100 + EPERM ? -1L : r;
  });
  lwp* prev = rump_lwproc_curlwp();
  lwp* iso = rump_test::isolated_proc();
  pid_t pid = rump_sys_getpid();
  auto* stack = static_cast<char*>(rump_test::guest_map(2 * 4096));
  REQUIRE(stack != MAP_FAILED);
  auto rump_prctl = [](int opt, unsigned long at) { return rump_sys_prctl(PR_SET_MM, opt, at, 0, 0); };
  long rump = probe(rump_prctl);
  if (host != -1) CHECK(rump == host);
  CHECK(rump == EFAULT * 10000 + EFAULT * 100 + EFAULT);
  CHECK(rump_prctl(PR_SET_MM_START_STACK, kLow) == 0);
  // The stack: the mapping holding the address PR_SET_MM_START_STACK names.
  REQUIRE(rump_prctl(PR_SET_MM_START_STACK, rump_test::U(stack) + 4096 + 100) == 0);
  rump_lwproc_switch(prev);
  bool found = false;
  for (const auto& l : lines(kRumpSrc.read("/proc/" + std::to_string(pid) + "/maps"))) {
    if (std::stoull(l.substr(0, l.find('-')), nullptr, 16) != rump_test::U(stack)) continue;
    found = true;
    CHECK(l.size() > 73);
    CHECK(l.substr(73) == "[stack]");
  }
  CHECK(found);
  // The host shows its own the same way.
  CHECK(kHostSrc.read("/proc/self/maps").find(" [stack]\n") != std::string::npos);
  rump_lwproc_switch(iso);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(prev);
}

namespace {

// smaps: each mapping's start address and its "Name: value" rows, in
// order (the value's number, in kB for sizes).
struct SmapsBlock {
  uint64_t start = 0;
  std::vector<std::string> keys;
  std::map<std::string, long> v;
};
std::vector<SmapsBlock> parse_smaps(const std::string& text) {
  std::vector<SmapsBlock> out;
  std::regex head(R"(^([0-9a-f]+)-[0-9a-f]+ [r-][w-][x-][ps] .*$)");
  for (const auto& l : lines(text)) {
    std::smatch mt;
    if (std::regex_match(l, mt, head)) {
      out.push_back(SmapsBlock{std::stoull(mt[1], nullptr, 16), {}, {}});
      continue;
    }
    if (out.empty()) continue;
    size_t colon = l.find(':');
    if (colon == std::string::npos) continue;
    std::string key = l.substr(0, colon);
    out.back().keys.push_back(key);
    if (key != "VmFlags") out.back().v[key] = std::stol(l.substr(colon + 1));
  }
  return out;
}

const SmapsBlock* block_at(const std::vector<SmapsBlock>& v, void* at) {
  for (const auto& b : v)
    if (b.start == rump_test::U(at)) return &b;
  return nullptr;
}

}  // namespace

TEST_CASE("procfs: smaps shows each mapping's resident, proportional, shared and private pages", "[procfs]") {
  KernelUp up;
  REQUIRE(rump_sys_mkdir("/tmp", 0777) == 0);
  int f = rump_sys_open("/tmp/data", O_CREAT | O_RDWR, 0644);
  REQUIRE(f >= 0);
  REQUIRE(rump_sys_ftruncate(f, 4 * 4096) == 0);
  lwp* prev = rump_lwproc_curlwp();
  lwp* iso = rump_test::isolated_proc();
  pid_t pid = rump_sys_getpid();
  // Anonymous private: 4 pages, 3 written. A file, shared: 2 of 4 pages
  // read.
  auto* anon = static_cast<char*>(rump_test::guest_map(4 * 4096));
  REQUIRE(anon != MAP_FAILED);
  char byte = 1;
  for (int i = 0; i < 3; i++) REQUIRE(rump_copyout(&byte, anon + i * 4096, 1) == 0);
  auto* file = static_cast<char*>(rump_sys_mmap(nullptr, 4 * 4096, PROT_READ, MAP_SHARED, f, 0));
  REQUIRE(file != MAP_FAILED);
  for (int i = 0; i < 2; i++) REQUIRE(rump_copyin(file + i * 4096, &byte, 1) == 0);
  rump_lwproc_switch(prev);
  std::string path = "/proc/" + std::to_string(pid) + "/smaps";
  auto ours = parse_smaps(kRumpSrc.read(path));
  const SmapsBlock* a = block_at(ours, anon);
  const SmapsBlock* fm = block_at(ours, file);
  REQUIRE(a);
  REQUIRE(fm);
  // The rows the host shows, in its order.
  auto host = parse_smaps(kHostSrc.read("/proc/self/smaps"));
  REQUIRE(!host.empty());
  std::vector<std::string> host_keys;
  for (const auto& k : host[0].keys)
    if (k != "ProtectionKey") host_keys.push_back(k);
  CHECK(a->keys == host_keys);
  auto row = [](const SmapsBlock* b, const char* k) { return b->v.at(k); };
  CHECK(row(a, "Size") == 16);
  CHECK(row(a, "Rss") == 12);
  CHECK(row(a, "Pss") == 12);
  CHECK(row(a, "Private_Dirty") == 12);
  CHECK(row(a, "Anonymous") == 12);
  CHECK(row(a, "Shared_Dirty") == 0);
  CHECK(row(fm, "Rss") == 8);
  CHECK(row(fm, "Pss") == 8);
  CHECK(row(fm, "Anonymous") == 0);
  CHECK(row(fm, "Private_Clean") + row(fm, "Private_Dirty") == 8);
  // A child shares all of it: its anonymous pages copy-on-write.
  rump_lwproc_switch(iso);
  auto kid = rump_test::fork_kid(RUMP_RFFDG);
  rump_lwproc_switch(prev);
  ours = parse_smaps(kRumpSrc.read(path));
  a = block_at(ours, anon);
  fm = block_at(ours, file);
  REQUIRE(a);
  REQUIRE(fm);
  CHECK(row(a, "Rss") == 12);
  CHECK(row(a, "Pss") == 6);
  CHECK(row(a, "Shared_Dirty") == 12);
  CHECK(row(a, "Private_Dirty") == 0);
  CHECK(row(fm, "Pss") == 4);
  CHECK(row(fm, "Shared_Clean") + row(fm, "Shared_Dirty") == 8);
  // The child writes one page: a private copy in each.
  byte = 2;
  REQUIRE(rump_test::as(kid.l, [&] { return rump_copyout(&byte, anon, 1); }) == 0);
  ours = parse_smaps(kRumpSrc.read(path));
  a = block_at(ours, anon);
  REQUIRE(a);
  CHECK(row(a, "Rss") == 12);
  CHECK(row(a, "Pss") == 4 + 4);
  CHECK(row(a, "Shared_Dirty") == 8);
  CHECK(row(a, "Private_Dirty") == 4);
  // smaps_rollup is the sum.
  std::map<std::string, long> sum;
  for (const auto& b : ours)
    for (const auto& [k, v] : b.v) sum[k] += v;
  auto roll = parse_smaps(kRumpSrc.read("/proc/" + std::to_string(pid) + "/smaps_rollup"));
  REQUIRE(roll.size() == 1);
  for (const char* k : {"Rss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty", "Anonymous"}) {
    INFO(k);
    CHECK(roll[0].v.at(k) == sum[k]);
  }
  CHECK(roll[0].v.at("Pss_Anon") + roll[0].v.at("Pss_File") + roll[0].v.at("Pss_Shmem") <= roll[0].v.at("Pss") + 2);
  rump_lwproc_switch(kid.l);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(iso);
  rump_lwproc_releaselwp();
  rump_lwproc_switch(prev);
}
