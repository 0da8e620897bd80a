// procfs: the nodes, lookup and readdir, the mount and the boot-time mount
// at /proc (see procfs.h).
#include "fs/procfs/procfs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "kern/component.h"
#include "kern/curlwp.h"
#include "kern/kernel.h"
#include "kern/proc_table.h"
#include "kern/sysctl.h"
#include "vfs/kvec.h"
#include "vfs/vfs.h"

namespace rump {
namespace procfs {

namespace {

constexpr uint64_t kProcSuperMagic = 0x9fa0;  // PROC_SUPER_MAGIC

// Runs fn with the tree lock released (see the top of procfs.h), and takes
// it back before returning.
template <class Fn>
auto unlocked(Mutex& mu, Fn&& fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  mu.unlock();
  auto r = fn();
  mu.lock();
  return r;
}

// The LWP the calling thread runs as (every VFS call has one).
Lwp& reader() {
  auto* l = reinterpret_cast<Lwp*>(rumpuser_curlwp());
  if (!l) panic("procfs: no LWP");
  return *l;
}

// An entry of a fixed directory.
struct Entry {
  const char* name;
  Kind kind;
  Which which;
  VType type;
  mode_t mode;
};

const Entry kRootEntries[] = {
    {"self", Kind::kSelf, Which::kNone, VType::kLnk, 0777},
    {"thread-self", Kind::kThreadSelf, Which::kNone, VType::kLnk, 0777},
    {"mounts", Kind::kMountsLink, Which::kNone, VType::kLnk, 0777},
    {"cpuinfo", Kind::kGlobal, Which::kCpuinfo, VType::kReg, 0444},
    {"filesystems", Kind::kGlobal, Which::kFilesystems, VType::kReg, 0444},
    {"loadavg", Kind::kGlobal, Which::kLoadavg, VType::kReg, 0444},
    {"meminfo", Kind::kGlobal, Which::kMeminfo, VType::kReg, 0444},
    {"stat", Kind::kGlobal, Which::kSysStat, VType::kReg, 0444},
    {"uptime", Kind::kGlobal, Which::kUptime, VType::kReg, 0444},
    {"sys", Kind::kSysDir, Which::kNone, VType::kDir, 0555},
};

// /proc/<pid>/; task/<tid>/ has the same but "task".
const Entry kPidEntries[] = {
    {"cmdline", Kind::kPidFile, Which::kCmdline, VType::kReg, 0444},
    {"comm", Kind::kPidFile, Which::kComm, VType::kReg, 0644},
    {"cwd", Kind::kPidFile, Which::kCwd, VType::kLnk, 0777},
    {"environ", Kind::kPidFile, Which::kEnviron, VType::kReg, 0400},
    {"exe", Kind::kPidFile, Which::kExe, VType::kLnk, 0777},
    {"fd", Kind::kFdDir, Which::kNone, VType::kDir, 0500},
    {"fdinfo", Kind::kFdinfoDir, Which::kNone, VType::kDir, 0555},
    {"limits", Kind::kPidFile, Which::kLimits, VType::kReg, 0444},
    {"maps", Kind::kPidFile, Which::kMaps, VType::kReg, 0444},
    {"mountinfo", Kind::kPidFile, Which::kMountinfo, VType::kReg, 0444},
    {"mounts", Kind::kPidFile, Which::kMounts, VType::kReg, 0444},
    {"root", Kind::kPidFile, Which::kRootLink, VType::kLnk, 0777},
    {"smaps", Kind::kPidFile, Which::kSmaps, VType::kReg, 0444},
    {"smaps_rollup", Kind::kPidFile, Which::kSmapsRollup, VType::kReg, 0444},
    {"stat", Kind::kPidFile, Which::kStat, VType::kReg, 0444},
    {"statm", Kind::kPidFile, Which::kStatm, VType::kReg, 0444},
    {"status", Kind::kPidFile, Which::kStatus, VType::kReg, 0444},
    {"task", Kind::kTaskDir, Which::kNone, VType::kDir, 0555},
};

constexpr int64_t kFixedBase = 2;     // cookies of fixed entries: 2 + index
constexpr int64_t kNumBase = 1 << 20; // cookies of numbered entries: base + n + 1

// A decimal name ("123"), or -1.
long parse_num(std::string_view s) {
  if (s.empty() || s.size() > 9 || (s.size() > 1 && s[0] == '0')) return -1;
  long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

class ProcMount;

class ProcNode : public Vnode {
 public:
  ProcNode(ProcMount& m, Kind kind, Which which, VType type, mode_t mode, pid_t pid, pid_t tid, int fd,
           const SysctlNode* sys, uid_t uid, gid_t gid);

  Result<Ref<Vnode>> lookup(std::string_view name) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // No names are made here (Linux: ENOENT).
  Result<Ref<Vnode>> create(std::string_view, const NewNode&) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) {
    return err(is_dir() ? ENOENT : ENOTDIR);
  }
  Result<void> readdir(int64_t off, ReaddirFn fn) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  bool has_entries() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return true; }
  Result<size_t> readlink(char* buf, size_t len) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // fd/<n>, cwd, root and exe are magic links (Linux's): following one
  // reaches the description or vnode itself.
  Result<MagicTarget> magic_target(Lwp& l) override;
  Result<size_t> read(void* buf, size_t len, uint64_t off) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<size_t> write(const void* buf, size_t len, uint64_t off) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // O_TRUNC of a writable file changes nothing (as Linux).
  Result<void> truncate(uint64_t) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) { return {}; }
  void getattr(Vattr& va) const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  Result<void> setattr(const SetAttr& sa) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());

 private:
  ProcMount& pmount() const;
  // A child node; uid/gid of the process for per-process nodes.
  Result<Ref<Vnode>> make(Kind kind, Which which, VType type, mode_t mode, pid_t pid, pid_t tid, int fd,
                          const SysctlNode* sys, uid_t uid, gid_t gid);
  Result<Ref<Vnode>> lookup_fixed(const Entry* e, size_t n, std::string_view name, bool skip_task);
  // Emits "." and ".." and the fixed entries from off; false when fn
  // stopped.
  bool readdir_fixed(const Entry* e, size_t n, bool skip_task, int64_t& off, ReaddirFn fn);
  ino_t ino_of(Kind kind, Which which, pid_t pid, pid_t tid, int fd, const SysctlNode* sys) const;
  // The sysctl node a /proc/sys directory shows (the root: the tree's).
  const SysctlNode& sys_dir() const;

  Kind kind_;
  Which which_;
  mode_t mode_;
  pid_t pid_, tid_;
  int fd_;
  const SysctlNode* sys_;
  uid_t uid_;
  gid_t gid_;
  ino_t ino_;
  timespec time_;
};

class ProcMount : public Mount {
 public:
  ProcMount(Kernel& k, FsType& t, int flags) : Mount(k, t, flags) {}
  Stat statfs() override { return Stat{0, 0, 0, 0, kProcSuperMagic}; }
  void teardown() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) { root_.reset(); }
};

ProcNode::ProcNode(ProcMount& m, Kind kind, Which which, VType type, mode_t mode, pid_t pid, pid_t tid,
                   int fd, const SysctlNode* sys, uid_t uid, gid_t gid)
    : Vnode(m, type), kind_(kind), which_(which), mode_(mode), pid_(pid), tid_(tid), fd_(fd), sys_(sys),
      uid_(uid), gid_(gid), ino_(ino_of(kind, which, pid, tid, fd, sys)), time_(wall_timespec()) {}

ProcMount& ProcNode::pmount() const { return static_cast<ProcMount&>(mount()); }

ino_t ProcNode::ino_of(Kind kind, Which which, pid_t pid, pid_t tid, int fd, const SysctlNode* sys) const {
  if (kind == Kind::kRoot) return 1;
  if (sys) return 0x40000000 + (reinterpret_cast<uintptr_t>(sys) >> 4 & 0x3fffffff);
  uint64_t v = (static_cast<uint64_t>(pid) << 32) ^ (static_cast<uint64_t>(tid) << 12) ^
               (static_cast<uint64_t>(kind) << 8) ^ static_cast<uint64_t>(which) ^
               (static_cast<uint64_t>(static_cast<uint32_t>(fd)) << 16);
  return v ? v : 2;
}

Result<Ref<Vnode>> ProcNode::make(Kind kind, Which which, VType type, mode_t mode, pid_t pid, pid_t tid, int fd,
                                  const SysctlNode* sys, uid_t uid, gid_t gid) {
  auto* n = new (mount().kernel().kmem()) ProcNode(pmount(), kind, which, type, mode, pid, tid, fd, sys, uid, gid);
  if (!n) return err(ENOMEM);
  return adopt_ref<Vnode>(n);
}

const SysctlNode& ProcNode::sys_dir() const {
  return sys_ ? *sys_ : mount().kernel().services().sysctl()->root();
}

// The sysctl tree's names as Linux spells them under /proc/sys.
std::string_view sys_name(const SysctlNode& n) {
  if (!n.parent || n.parent->parent) return n.name;  // only the top level differs
  if (std::string_view(n.name) == "kern") return "kernel";
  return n.name;
}

Result<Ref<Vnode>> ProcNode::lookup_fixed(const Entry* e, size_t n, std::string_view name, bool skip_task) {
  for (size_t i = 0; i < n; i++) {
    if (name != e[i].name || (skip_task && e[i].kind == Kind::kTaskDir)) continue;
    return make(e[i].kind, e[i].which, e[i].type, e[i].mode, pid_, tid_, -1, nullptr, uid_, gid_);
  }
  return err(ENOENT);
}

Result<Ref<Vnode>> ProcNode::lookup(std::string_view name) {
  if (!is_dir()) return err(ENOTDIR);
  if (name == ".") return Ref<Vnode>(*this);
  Kernel& k = mount().kernel();
  if (name == "..") {
    // Parents are made afresh: each kind knows its own.
    switch (kind_) {
      case Kind::kRoot: return Ref<Vnode>(*this);
      case Kind::kPidDir: return mount().root_.to_ref();
      case Kind::kSysDir:
        if (!sys_) return mount().root_.to_ref();
        if (!sys_->parent || !sys_->parent->parent)
          return make(Kind::kSysDir, Which::kNone, VType::kDir, 0555, 0, 0, -1, nullptr, 0, 0);
        return make(Kind::kSysDir, Which::kNone, VType::kDir, 0555, 0, 0, -1, sys_->parent, 0, 0);
      case Kind::kTidDir:
        return make(Kind::kTaskDir, Which::kNone, VType::kDir, 0555, pid_, 0, -1, nullptr, uid_, gid_);
      default:
        if (tid_) return make(Kind::kTidDir, Which::kNone, VType::kDir, 0555, pid_, tid_, -1, nullptr, uid_, gid_);
        return make(Kind::kPidDir, Which::kNone, VType::kDir, 0555, pid_, 0, -1, nullptr, uid_, gid_);
    }
  }
  switch (kind_) {
    case Kind::kRoot: {
      if (Result<Ref<Vnode>> r = lookup_fixed(kRootEntries, std::size(kRootEntries), name, false); r.ok() ||
          r.error() != ENOENT)
        return r;
      long pid = parse_num(name);
      if (pid <= 0) return err(ENOENT);
      uid_t uid;
      gid_t gid;
      TRY(unlocked(lock(), [&] { return proc_owner(k, static_cast<pid_t>(pid), 0, &uid, &gid); }));
      return make(Kind::kPidDir, Which::kNone, VType::kDir, 0555, static_cast<pid_t>(pid), 0, -1, nullptr, uid, gid);
    }
    case Kind::kPidDir:
    case Kind::kTidDir:
      return lookup_fixed(kPidEntries, std::size(kPidEntries), name, kind_ == Kind::kTidDir);
    case Kind::kTaskDir: {
      long tid = parse_num(name);
      if (tid <= 0) return err(ENOENT);
      uid_t uid;
      gid_t gid;
      TRY(unlocked(lock(), [&] { return proc_owner(k, pid_, static_cast<pid_t>(tid), &uid, &gid); }));
      return make(Kind::kTidDir, Which::kNone, VType::kDir, 0555, pid_, static_cast<pid_t>(tid), -1, nullptr, uid,
                  gid);
    }
    case Kind::kFdDir:
    case Kind::kFdinfoDir: {
      long fd = parse_num(name);
      if (fd < 0) return err(ENOENT);
      // The link's mode follows the description's access mode (Linux).
      Result<int> flags = unlocked(lock(), [&]() -> Result<int> {
        ProcSnap s(k.kmem());
        TRY(snap_proc(k, pid_, tid_, kSnapVfs, s));
        if (!s.fdt) return err(ENOENT);
        Result<Ref<rump::File>> f = s.fdt->get(static_cast<int>(fd));
        if (!f.ok()) return err(ENOENT);
        return f.value()->flags();
      });
      int fl = TRY(std::move(flags));
      if (kind_ == Kind::kFdinfoDir)
        return make(Kind::kFdinfo, Which::kNone, VType::kReg, 0444, pid_, tid_, static_cast<int>(fd), nullptr,
                    uid_, gid_);
      mode_t mode = 0500;
      if ((fl & O_ACCMODE) == O_WRONLY) mode = 0300;
      if ((fl & O_ACCMODE) == O_RDWR) mode = 0700;
      return make(Kind::kFdLink, Which::kNone, VType::kLnk, mode, pid_, tid_, static_cast<int>(fd), nullptr, uid_,
                  gid_);
    }
    case Kind::kSysDir: {
      const SysctlNode& dir = sys_dir();
      const SysctlNode* c = nullptr;
      Sysctl& sc = *k.services().sysctl();
      sc.for_each_child(dir, [&](const SysctlNode& x) {
        if (!c && sys_name(x) == name) c = &x;
      });
      if (!c) return err(ENOENT);
      if (c->is_dir()) return make(Kind::kSysDir, Which::kNone, VType::kDir, 0555, 0, 0, -1, c, 0, 0);
      return make(Kind::kSysFile, Which::kNone, VType::kReg, c->writable() ? 0644 : 0444, 0, 0, -1, c, 0, 0);
    }
    default:
      return err(ENOTDIR);
  }
}

bool ProcNode::readdir_fixed(const Entry* e, size_t n, bool skip_task, int64_t& off, ReaddirFn fn) {
  if (off == 0) {
    if (!fn(DirEntry{ino_, 1, VType::kDir, "."})) return false;
    off = 1;
  }
  if (off == 1) {
    if (!fn(DirEntry{1, kFixedBase, VType::kDir, ".."})) return false;
    off = kFixedBase;
  }
  for (size_t i = static_cast<size_t>(off - kFixedBase); i < n && off < kNumBase; i++) {
    if (skip_task && e[i].kind == Kind::kTaskDir) {
      off = kFixedBase + static_cast<int64_t>(i) + 1;
      continue;
    }
    ino_t ino = ino_of(e[i].kind, e[i].which, pid_, tid_, -1, nullptr);
    if (!fn(DirEntry{ino, kFixedBase + static_cast<int64_t>(i) + 1, e[i].type, e[i].name})) return false;
    off = kFixedBase + static_cast<int64_t>(i) + 1;
  }
  if (off < kNumBase) off = kNumBase;
  return true;
}

Result<void> ProcNode::readdir(int64_t off, ReaddirFn fn) {
  Kernel& k = mount().kernel();
  Kmem& km = k.kmem();
  switch (kind_) {
    case Kind::kRoot:
    case Kind::kTaskDir:
    case Kind::kFdDir:
    case Kind::kFdinfoDir: {
      if (kind_ == Kind::kRoot) {
        if (!readdir_fixed(kRootEntries, std::size(kRootEntries), false, off, fn)) return {};
      } else if (!readdir_fixed(nullptr, 0, false, off, fn)) {
        return {};
      }
      // The numbers (pids, tids or descriptors) at this moment, in order.
      KVec<int> nums(km);
      TRY(unlocked(lock(), [&]() -> Result<void> {
        if (kind_ == Kind::kRoot) {
          ProcTable& t = k.procs();
          MutexLocker g(t.lock());
          size_t n = 0;
          t.for_each_locked([&](Proc&) { n++; });
          TRY(nums.reserve(n));
          t.for_each_locked([&](Proc& p) {
            p.assert_tree_locked();
            if (p.pid() > 0 && p.state_ != Proc::State::kEmbryo) nums.push_back(p.pid());
          });
          return {};
        }
        if (kind_ == Kind::kTaskDir) {
          ProcTable& t = k.procs();
          MutexLocker g(t.lock());
          Proc* p = t.find_locked(pid_);
          if (!p) return err(ENOENT);
          MutexLocker pg(p->lock_);
          TRY(nums.reserve(static_cast<size_t>(p->nlwps_) + 1));
          for (Lwp& l : p->lwps_)
            if (nums.size() < static_cast<size_t>(p->nlwps_) + 1) nums.push_back(l.tid());
          return {};
        }
        ProcSnap s(km);
        TRY(snap_proc(k, pid_, tid_, kSnapVfs, s));
        if (!s.fdt) return {};
        size_t n = 0;
        s.fdt->for_each_fd([&](int, rump::File&, bool) { n++; });
        TRY(nums.reserve(n + 8));
        s.fdt->for_each_fd([&](int fd, rump::File&, bool) {
          if (nums.size() < n + 8) nums.push_back(fd);
        });
        return {};
      }));
      if (nums.size()) std::sort(&nums[0], &nums[0] + nums.size());
      Kind child = kind_ == Kind::kRoot      ? Kind::kPidDir
                   : kind_ == Kind::kTaskDir ? Kind::kTidDir
                   : kind_ == Kind::kFdDir   ? Kind::kFdLink
                                             : Kind::kFdinfo;
      VType type = kind_ == Kind::kFdDir ? VType::kLnk : kind_ == Kind::kFdinfoDir ? VType::kReg : VType::kDir;
      for (size_t i = 0; i < nums.size(); i++) {
        int64_t cookie = kNumBase + nums[i] + 1;
        if (cookie <= off) continue;
        char name[16];
        int len = std::snprintf(name, sizeof name, "%d", nums[i]);
        bool fd = child == Kind::kFdLink || child == Kind::kFdinfo;
        ino_t ino = ino_of(child, Which::kNone, fd || child == Kind::kTidDir ? pid_ : nums[i],
                           child == Kind::kTidDir ? nums[i] : tid_, fd ? nums[i] : -1, nullptr);
        if (!fn(DirEntry{ino, cookie, type, std::string_view(name, static_cast<size_t>(len))})) return {};
      }
      return {};
    }
    case Kind::kPidDir:
    case Kind::kTidDir:
      readdir_fixed(kPidEntries, std::size(kPidEntries), kind_ == Kind::kTidDir, off, fn);
      return {};
    case Kind::kSysDir: {
      if (!readdir_fixed(nullptr, 0, false, off, fn)) return {};
      int64_t i = kNumBase;
      bool stop = false;
      k.services().sysctl()->for_each_child(sys_dir(), [&](const SysctlNode& c) {
        i++;
        if (stop || i <= off) return;
        ino_t ino = ino_of(Kind::kSysFile, Which::kNone, 0, 0, -1, &c);
        if (!fn(DirEntry{ino, i, c.is_dir() ? VType::kDir : VType::kReg, sys_name(c)})) stop = true;
      });
      return {};
    }
    default:
      return err(ENOTDIR);
  }
}

Result<size_t> ProcNode::readlink(char* buf, size_t len) {
  Lwp& l = reader();
  switch (kind_) {
    case Kind::kSelf:
    case Kind::kThreadSelf: {
      char tmp[48];
      int n = kind_ == Kind::kSelf ? std::snprintf(tmp, sizeof tmp, "%d", l.proc().pid())
                                   : std::snprintf(tmp, sizeof tmp, "%d/task/%d", l.proc().pid(), l.tid());
      size_t m = static_cast<size_t>(n) < len ? static_cast<size_t>(n) : len;
      std::memcpy(buf, tmp, m);
      return m;
    }
    case Kind::kMountsLink: {
      static constexpr char kTarget[] = "self/mounts";
      size_t m = sizeof kTarget - 1 < len ? sizeof kTarget - 1 : len;
      std::memcpy(buf, kTarget, m);
      return m;
    }
    case Kind::kFdLink:
    case Kind::kPidFile: {
      if (type() != VType::kLnk) return err(EINVAL);
      Which w = kind_ == Kind::kFdLink ? Which::kNone : which_;
      return unlocked(lock(), [&] { return link_text(l, w, pid_, fd_, buf, len); });
    }
    default:
      return err(EINVAL);
  }
}

Result<Vnode::MagicTarget> ProcNode::magic_target(Lwp& l) {
  if (kind_ == Kind::kFdLink) return link_target(l, Which::kNone, pid_, fd_);
  if (kind_ == Kind::kPidFile && type() == VType::kLnk) return link_target(l, which_, pid_, -1);
  return MagicTarget{};
}

Result<size_t> ProcNode::read(void* buf, size_t len, uint64_t off) {
  if (type() != VType::kReg) return err(EINVAL);
  Lwp& l = reader();
  return unlocked(lock(), [&]() -> Result<size_t> {
    Text t(mount().kernel().kmem());
    switch (kind_) {
      case Kind::kGlobal: TRY(make_global(l, which_, t)); break;
      case Kind::kPidFile: TRY(make_pid_file(l, which_, pid_, tid_, t)); break;
      case Kind::kFdinfo: TRY(make_fdinfo(l, pid_, fd_, t)); break;
      case Kind::kSysFile: TRY(make_sys(l, *sys_, t)); break;
      default: return err(EINVAL);
    }
    if (t.failed()) return err(ENOMEM);
    if (off >= t.size()) return size_t{0};
    size_t n = t.size() - off < len ? t.size() - off : len;
    std::memcpy(buf, t.data() + off, n);
    return n;
  });
}

Result<size_t> ProcNode::write(const void* buf, size_t len, uint64_t off) {
  Lwp& l = reader();
  if (kind_ == Kind::kPidFile && which_ == Which::kComm)
    return unlocked(lock(), [&] { return write_comm(l, pid_, tid_, static_cast<const char*>(buf), len); });
  if (kind_ == Kind::kSysFile)
    return unlocked(lock(), [&] { return write_sys(l, *sys_, static_cast<const char*>(buf), len); });
  return err(EINVAL);
}

void ProcNode::getattr(Vattr& va) const {
  va.type = type();
  va.mode = mode_;
  va.uid = uid_;
  va.gid = gid_;
  va.nlink = is_dir() ? 2 : 1;
  va.size = type() == VType::kLnk ? 64 : 0;
  va.blocks = 0;
  va.ino = ino_;
  va.dev = mount().dev_;
  va.atime = va.mtime = va.ctime = va.btime = time_;
}

Result<void> ProcNode::setattr(const SetAttr& sa) {
  // chmod/chown are refused; truncation and times of writable files
  // change nothing (echo > /proc/.../comm opens with O_TRUNC).
  if (sa.mask & (SetAttr::kMode | SetAttr::kUid | SetAttr::kGid)) return err(EPERM);
  return {};
}

Result<Ref<Mount>> proc_mount(Kernel& k, const char*, int flags, const char*);

FsType g_proc_type{"proc", &proc_mount};
FsTypeRegistrar g_proc_registrar{&g_proc_type};

Result<Ref<Mount>> proc_mount(Kernel& k, const char*, int flags, const char*) {
  auto* m = new (k.kmem()) ProcMount(k, g_proc_type, flags);
  if (!m) return err(ENOMEM);
  Ref<Mount> mp = adopt_ref<Mount>(m);
  auto* root = new (k.kmem())
      ProcNode(*m, Kind::kRoot, Which::kNone, VType::kDir, 0555, 0, 0, -1, nullptr, 0, 0);
  if (!root) return err(ENOMEM);
  MutexLocker g(mp->lock_);
  mp->root_ = RefPtr<Vnode>(kAdopt, root);
  return mp;
}

// Boot: /proc in the root file system, with procfs on it.
Result<void> procfs_init(Kernel& k) {
  VfsState& st = vfs_state(k);
  Ref<Vnode> root = st.rootvnode.to_ref();
  Ref<Vnode> dir = TRY([&]() -> Result<Ref<Vnode>> {
    MutexLocker g(root->lock());
    Result<Ref<Vnode>> d = root->lookup("proc");
    if (d.ok()) return d;
    NewNode n;
    n.type = VType::kDir;
    n.mode = 0555;
    return root->mkdir("proc", n);
  }());
  Ref<Mount> m = TRY(proc_mount(k, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr));
  m->dev_ = makedev(0, st.next_dev_.fetch_add(1));
  m->set_covered(dir);
  MutexLocker g(st.mount_lock_);
  {
    MutexLocker vg(dir->mount().lock_);
    if (dir->mounted_here()) {
      m->detach(false);
      return {};
    }
    dir->set_mounted_here(m.get());
  }
  st.mounts_.push_back(*m.leak());
  return {};
}

Component g_procfs_component{"procfs", ComponentType::kDev, &procfs_init, nullptr};
RUMP_COMPONENT(g_procfs_component);

}  // namespace

// --- Text

bool Text::reserve(size_t more) {
  if (failed_) return false;
  if (n_ + more <= cap_) return true;
  size_t want = cap_ ? cap_ * 2 : 1024;
  while (want < n_ + more) want *= 2;
  char* p = static_cast<char*>(km_.alloc(want));
  if (!p) {
    failed_ = true;
    return false;
  }
  if (n_) std::memcpy(p, p_, n_);
  Kmem::free(p_);
  p_ = p;
  cap_ = want;
  return true;
}

void Text::put(std::string_view s) {
  if (!reserve(s.size())) return;
  std::memcpy(p_ + n_, s.data(), s.size());
  n_ += s.size();
}

void Text::printf(const char* fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (static_cast<size_t>(n) < sizeof small) {
    put(std::string_view(small, static_cast<size_t>(n)));
    return;
  }
  if (!reserve(static_cast<size_t>(n) + 1)) return;
  va_start(ap, fmt);
  std::vsnprintf(p_ + n_, static_cast<size_t>(n) + 1, fmt, ap);
  va_end(ap);
  n_ += static_cast<size_t>(n);
}

}  // namespace procfs
}  // namespace rump
