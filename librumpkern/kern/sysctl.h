// sysctl.h: the kernel's sysctl tree: named, numbered configuration and
// status values (hw.ncpu, kern.hostname, kern.maxproc ...).
//
// Each kernel owns one Sysctl (Kernel::sysctl_), built by services_init at
// boot and freed by services_fini at halt. Nodes are addressed by a MIB (an
// array of integers, BSD style: {CTL_KERN, KERN_HOSTNAME}) or by a dotted
// name ("kern.hostname"). The standard nodes are declared once, in the table
// in sysctl.cc; components may add their own at boot with add().
//
// Who calls what: the __sysctl and sysctlbyname handlers (sys_sysctl.cc)
// look a node up, then read()/write() it with kernel buffers; uname and
// sethostname share the identity constants below.
//
// Locking: the tree has its own lock (rank kSysctl) held only while nodes are
// looked up or linked. Nodes are never removed before the tree is freed, so a
// looked-up node stays valid; leaf handlers run without the tree lock and
// take whatever lock guards their value (e.g. the process table's lock,
// which ranks before kSysctl).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/intrusive/list.hpp>

#include "absl/functional/function_ref.h"
#include "base/kmem.h"
#include "base/result.h"
#include "sync/mutex.h"

namespace rump {

class Kernel;
class Lwp;

// --- The kernel's identity, shared by uname(2) and kern.ostype/osrelease.
//
// sysname/ostype is "RumpKernel", not "Linux": this kernel speaks Linux's
// syscall ABI but is not Linux, and its release ("0.1.0") is not a Linux
// version number. A program that parses uname to decide which Linux features
// exist would be misled by "Linux" + a made-up release; an honest name lets
// it tell the two apart. kern.ostype equals uname's sysname.
inline constexpr const char kOsType[] = "RumpKernel";
inline constexpr const char kOsRelease[] = "0.1.0";
inline constexpr const char kOsVersion[] = "#1 RumpKernel 0.1.0 anykernel";
#if defined(__x86_64__)
inline constexpr const char kMachine[] = "x86_64";
#elif defined(__aarch64__)
inline constexpr const char kMachine[] = "aarch64";
#elif defined(__i386__)
inline constexpr const char kMachine[] = "i686";
#elif defined(__riscv) && __riscv_xlen == 64
inline constexpr const char kMachine[] = "riscv64";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
inline constexpr const char kMachine[] = "ppc64le";
#elif defined(__s390x__)
inline constexpr const char kMachine[] = "s390x";
#else
inline constexpr const char kMachine[] = "unknown";
#endif

// --- MIB numbers (BSD values where BSD has the node).
inline constexpr unsigned kCtlMaxName = 12;  // CTL_MAXNAME
enum : int {
  CTL_KERN = 1,
  CTL_VM = 2,
  CTL_FS = 5,  // Linux's number: BSD has no "fs" top level
  CTL_HW = 6,
};
enum : int {
  KERN_OSTYPE = 1,
  KERN_OSRELEASE = 2,
  KERN_MAXPROC = 6,
  KERN_HOSTNAME = 10,
  // This kernel's own numbers (no common BSD value).
  KERN_LASTPID = 100,
  KERN_RANDOMPID = 101,
  KERN_PIDMAX = 102,
  KERN_MSGBUF = 103,
};
enum : int {
  // This kernel's own numbers (Linux's names).
  VM_DIRTY_EXPIRE_CENTISECS = 100,
  VM_DIRTY_WRITEBACK_CENTISECS = 101,
};
enum : int {
  FS_FILEMAX = 1,
  // This kernel's own numbers.
  FS_KEPT_CACHE_PAGES = 100,
};
enum : int {
  HW_NCPU = 3,
  HW_PAGESIZE = 7,
};

enum class SysctlType : uint8_t { kNode, kInt, kString };

// Who may write a leaf. Reading is open to everyone.
enum class SysctlAccess : uint8_t { kReadOnly, kRootWrite };

struct SysctlNode;

// Leaf handlers. Integer leaves: get returns the value, set validates and
// stores it (EINVAL for a bad one). String leaves: get copies at most cap
// bytes of the value, NUL included, into buf (nothing when cap is 0) and
// returns the full size including the NUL; set receives the new text (no
// NUL; len bytes) and validates it.
struct SysctlOps {
  int (*get_int)(Kernel& k) = nullptr;
  Result<void> (*set_int)(Kernel& k, int v) = nullptr;
  size_t (*get_string)(Kernel& k, char* buf, size_t cap) = nullptr;
  Result<void> (*set_string)(Kernel& k, const char* s, size_t len) = nullptr;
};

struct SysctlNode : public KObject {
  static constexpr size_t kNameMax = 31;

  int num = 0;
  char name[kNameMax + 1] = {};
  SysctlType type = SysctlType::kNode;
  SysctlAccess access = SysctlAccess::kReadOnly;
  SysctlOps ops;
  SysctlNode* parent = nullptr;

  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook;
  using ChildList =
      boost::intrusive::list<SysctlNode,
                             boost::intrusive::member_hook<SysctlNode, decltype(hook), &SysctlNode::hook>,
                             boost::intrusive::constant_time_size<false>>;
  // The tree's lock (Sysctl::lock_), which guards children; Sysctl's code
  // that holds it through the tree says so with tree_lock->assert_held*().
  const RwLock* tree_lock = nullptr;
  ChildList children ABSL_GUARDED_BY(*tree_lock);  // directories only

  bool is_dir() const { return type == SysctlType::kNode; }
  bool writable() const { return access != SysctlAccess::kReadOnly; }
};

// What a new node looks like (add()).
struct SysctlNodeInit {
  int num;
  const char* name;
  SysctlType type;
  SysctlAccess access;
  SysctlOps ops;
};

class Sysctl : public KObject {
 public:
  // Builds the standard tree (kern.*, hw.*). ENOMEM.
  static Result<Sysctl*> create(Kernel& k);
  ~Sysctl();
  Sysctl(const Sysctl&) = delete;
  Sysctl& operator=(const Sysctl&) = delete;

  // Adds a node under the directory named by parent (parent_len 0: the
  // root). Directories that already exist are returned as they are (so
  // components can share "vfs"); EEXIST for a clashing leaf, ENOTDIR when
  // the parent is a leaf, ENOENT when it does not exist, EINVAL for a bad
  // name.
  Result<SysctlNode*> add(const int* parent, unsigned parent_len, const SysctlNodeInit& init);

  // Finds a node. EINVAL for namelen 0 or > kCtlMaxName, ENOENT for an
  // unknown component, ENOTDIR when a leaf is used as a directory.
  Result<const SysctlNode*> lookup(const int* name, unsigned namelen) const;
  // The same by dotted name ("kern.hostname"). EINVAL for an empty name or
  // an empty component.
  Result<const SysctlNode*> lookup(std::string_view dotted) const;
  // The nameless top directory, a directory's child by name (nullptr if
  // none) and its children in order: for walking the tree as files
  // (/proc/sys).
  const SysctlNode& root() const { return root_; }
  const SysctlNode* child(const SysctlNode& dir, std::string_view name) const;
  void for_each_child(const SysctlNode& dir, absl::FunctionRef<void(const SysctlNode&)> fn) const;

  // Reads a leaf into buf (at most cap bytes); returns the full size of the
  // value (4 for integers; string length + 1). EISDIR for a directory.
  Result<size_t> read(const SysctlNode& n, void* buf, size_t cap) const;
  // Writes a leaf as the LWP l: EISDIR for a directory, EPERM for a
  // read-only leaf or a caller that is not root, EINVAL for a bad size or
  // value.
  Result<void> check_write(Lwp& l, const SysctlNode& n) const;
  Result<void> write(Lwp& l, const SysctlNode& n, const void* buf, size_t len);

 private:
  explicit Sysctl(Kernel& k);
  SysctlNode* find_child_locked(const SysctlNode& dir, int num) const ABSL_SHARED_LOCKS_REQUIRED(lock_);
  SysctlNode* find_child_locked(const SysctlNode& dir, std::string_view name) const
      ABSL_SHARED_LOCKS_REQUIRED(lock_);
  // The destructor's: nobody else can reach the tree any more.
  static void free_children(SysctlNode& dir) ABSL_NO_THREAD_SAFETY_ANALYSIS;

  Kernel& kernel_;
  mutable RwLock lock_{LockRank::kSysctl};
  SysctlNode root_;  // the nameless top directory
};

}  // namespace rump
