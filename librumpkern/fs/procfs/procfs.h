// procfs.h: the process file system ("proc", mounted at /proc at boot and
// mountable anywhere), as Linux lays it out: /proc/self, /proc/thread-self,
// /proc/<pid>/ (stat, status, statm, cmdline, comm, environ, limits, maps,
// smaps, smaps_rollup, mounts, mountinfo, the cwd/root/exe links, fd/, fdinfo/,
// task/<tid>/), the system files (meminfo, cpuinfo, uptime, loadavg, stat,
// filesystems, the mounts link) and /proc/sys over the sysctl tree.
//
// What there is no exec to set: cmdline and environ read the areas of the
// process's memory that prctl(PR_SET_MM, PR_SET_MM_ARG_START ... ENV_END)
// names (cmdline without one: the name, NUL-terminated); exe is the file
// PR_SET_MM_EXE_FILE names (ENOENT without one, as a kernel thread's).
// The fd/<n>, cwd, root and exe links are magic, as Linux's
// (Vnode::magic_target): following one reaches the file itself, even
// unlinked, and opening a pipe's gives a new description of that pipe. A
// file no name leads to any more reads as "<path it had> (deleted)".
//
// Design. Nothing is made ahead of time: the mount is one root vnode, and
// every lookup makes a small node naming what it shows (a kind, a pid, a
// tid, a descriptor, a sysctl node), which goes with its last reference.
// A pid that is gone makes lookups ENOENT and reads ESRCH. Files have size
// 0 and their text is made on each read from the state of the moment (as
// Linux's seq files), so a read at an offset gets that part of a fresh
// text.
//
// Locking. A procfs node holds no state the tree lock guards: the tree
// lock only serialises the VFS's calls. What the files show lives under
// locks that rank before the tree lock (the process table, a process, its
// vmspace map, the mount table) or beside it (other mounts' tree locks,
// for paths), so the operations that gather it (lookup, readdir, read,
// write, readlink) release the tree lock for that and take it back before
// they return (unlocked()). The process's state is gathered in one
// critical section of the process table's and the process's locks
// (ProcSnap), which takes references to what outlives it (credentials,
// descriptor table, cwd/root, the address space), and the text is made
// from those afterwards with no process lock held.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/kmem.h"
#include "base/ref.h"
#include "base/result.h"
#include "kern/cred.h"
#include "kern/proc.h"
#include "vfs/file.h"
#include "vfs/kvec.h"
#include "vfs/vnode.h"

namespace rump {

class Kernel;
class Lwp;
class UserSpace;
struct SysctlNode;

namespace procfs {

// A text made in kernel memory; an allocation failure is remembered and
// reported as ENOMEM by the reader.
class Text {
 public:
  explicit Text(Kmem& km) : km_(km) {}
  ~Text() { Kmem::free(p_); }
  Text(const Text&) = delete;
  Text& operator=(const Text&) = delete;
  void printf(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
  void put(std::string_view s);
  void putc(char c) { put(std::string_view(&c, 1)); }
  // Keeps the first n bytes (n <= size()).
  void truncate(size_t n) { n_ = n < n_ ? n : n_; }
  bool failed() const { return failed_; }
  const char* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  bool reserve(size_t more);
  Kmem& km_;
  char* p_ = nullptr;
  size_t n_ = 0, cap_ = 0;
  bool failed_ = false;
};

// What a node shows.
enum class Kind : uint8_t {
  kRoot,         // /proc
  kSelf,         // /proc/self -> <pid>
  kThreadSelf,   // /proc/thread-self -> <pid>/task/<tid>
  kMountsLink,   // /proc/mounts -> self/mounts
  kGlobal,       // /proc/meminfo ... (which)
  kPidDir,       // /proc/<pid>
  kTidDir,       // /proc/<pid>/task/<tid>
  kTaskDir,      // /proc/<pid>/task
  kFdDir,        // /proc/<pid>/fd
  kFdinfoDir,    // /proc/<pid>/fdinfo
  kPidFile,      // /proc/<pid>/{stat,status,...} and the same per thread
  kFdLink,       // /proc/<pid>/fd/<n>
  kFdinfo,       // /proc/<pid>/fdinfo/<n>
  kSysDir,       // /proc/sys and its directories
  kSysFile,      // a sysctl leaf
};

// The files of /proc/<pid>/ (and task/<tid>/), and the system files.
enum class Which : uint8_t {
  kNone,
  // per process
  kCmdline, kComm, kCwd, kEnviron, kExe, kLimits, kMaps, kMountinfo, kMounts, kRootLink, kSmaps, kSmapsRollup,
  kStat, kStatm, kStatus,
  // system
  kCpuinfo, kFilesystems, kLoadavg, kMeminfo, kSysStat, kUptime,
};

// A process as one critical section saw it (see the top of this file).
// tid 0: the whole process; else that thread (its pending set, mask,
// state).
struct ProcSnap {
  explicit ProcSnap(Kmem& km) : km(km) {}
  ~ProcSnap();
  ProcSnap(const ProcSnap&) = delete;
  ProcSnap& operator=(const ProcSnap&) = delete;

  Kmem& km;
  pid_t pid = 0, tid = 0, ppid = 0, pgid = 0, sid = 0;
  char state = 'S';  // R, S, Z
  char comm[16] = {};
  RefPtr<Cred> cred;
  int nlwps = 0;
  pid_t first_tid = 0;
  int last_cpu = 0;
  mode_t umask = 022;
  rlimit rl[RLIM_NLIMITS] = {};
  int nice = 0, policy = 0, rtprio = 0, exit_signal = 0;
  bool no_new_privs = false;
  uint64_t affinity[Proc::kAffinityWords] = {};
  uint64_t shd_pending = 0, pending = 0, blocked = 0, ignored = 0, caught = 0;
  int sigqueued = 0;
  CpuUsage usage;           // the process's (the thread's for task/<tid>)
  CpuUsage cusage;          // its reaped children's
  int64_t start_ns = 0;     // monotonic
  Proc::MmArgs mm;          // the argument and environment areas
  // The process's memory may be read: not a zombie, not exiting (then
  // space is its isolated space, or null for the host's).
  bool mem_ok = false;
  UserSpace* space = nullptr;  // held; null: the host's address space
  // Without a space: the mappings the kernel made in the host's address
  // space for the process (ProcExtension::host_maps), each backing object
  // held by a reference of the snapshot's.
  KVec<UserSpace::Mapping> host_maps{km};
  bool have_vfs = false;       // fdt, cwd, root (not for zombies)
  RefPtr<FileTable> fdt;
  RefPtr<Vnode> cwd, root, exe;
};
enum : unsigned { kSnapVfs = 1, kSnapSpace = 2 };
// ESRCH when the process (or the thread) is gone.
Result<void> snap_proc(Kernel& k, pid_t pid, pid_t tid, unsigned what, ProcSnap& s);
// The owner of /proc/<pid>: its effective ids (ENOENT if it is gone).
Result<void> proc_owner(Kernel& k, pid_t pid, pid_t tid, uid_t* uid, gid_t* gid);

// Texts (proc_text.cc, sys_text.cc). The reader is l.
Result<void> make_pid_file(Lwp& l, Which which, pid_t pid, pid_t tid, Text& t);
Result<void> make_fdinfo(Lwp& l, pid_t pid, int fd, Text& t);
Result<void> make_global(Lwp& l, Which which, Text& t);
Result<void> make_sys(Lwp& l, const SysctlNode& n, Text& t);
// The mount table as mounts (mountinfo: true, mountinfo) shows it, mount
// points as seen from root.
Result<void> make_mounts(Lwp& l, Ref<Vnode> root, bool mountinfo, Text& t);
// /proc/<pid>/comm and /proc/sys leaves.
Result<size_t> write_comm(Lwp& l, pid_t pid, pid_t tid, const char* buf, size_t len);
Result<size_t> write_sys(Lwp& l, const SysctlNode& n, const char* buf, size_t len);
// readlink of cwd, root, exe and fd/<n>: the text into buf (at most cap
// bytes), its length.
Result<size_t> link_text(Lwp& l, Which which, pid_t pid, int fd, char* buf, size_t cap);
// What following one of those links reaches (Vnode::magic_target); ENOENT
// where there is nothing (a closed descriptor, exe).
Result<Vnode::MagicTarget> link_target(Lwp& l, Which which, pid_t pid, int fd);
// The name Linux's d_path gives vp, as the reader l sees it: its path
// from l's root; for a file no name leads to any more, the path it had
// and " (deleted)" (a memfd: "/memfd:NAME (deleted)"). Made in path
// (kPathMax bytes).
std::string_view vnode_name(Lwp& l, Vnode& vp, char* path);

}  // namespace procfs
}  // namespace rump
