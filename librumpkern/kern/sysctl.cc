// The sysctl tree: the standard nodes, lookup by MIB and by name, and leaf
// reads and writes (see sysctl.h).
#include "kern/sysctl.h"

#include <climits>
#include <cstring>

#include "kern/kernel.h"
#include "kern/msgbuf.h"

namespace rump {

namespace {

// Copies the string s (NUL included) into buf, at most cap bytes; returns
// the full size.
size_t put_string(const char* s, char* buf, size_t cap) {
  size_t full = std::strlen(s) + 1;
  if (cap > 0) std::memcpy(buf, s, full < cap ? full : cap);
  return full;
}

// --- hw
int get_ncpu(Kernel& k) { return k.ncpu(); }
int get_pagesize(Kernel&) { return 4096; }

// --- kern: identity
size_t get_ostype(Kernel&, char* buf, size_t cap) { return put_string(kOsType, buf, cap); }
size_t get_osrelease(Kernel&, char* buf, size_t cap) { return put_string(kOsRelease, buf, cap); }

// kern.hostname: the services keep it (the one writer is set_hostname).
size_t get_hostname(Kernel& k, char* buf, size_t cap) {
  char copy[kHostNameMax + 1];
  k.services().hostname(copy);
  return put_string(copy, buf, cap);
}
Result<void> set_hostname(Kernel& k, const char* s, size_t len) { return k.services().set_hostname(s, len); }

// --- kern: processes (the process table's).
int get_maxproc(Kernel& k) { return k.procs().maxproc(); }
Result<void> set_maxproc(Kernel& k, int v) {
  if (v < 1) return err(EINVAL);
  k.procs().set_maxproc(v);
  return {};
}
int get_lastpid(Kernel& k) {
  MutexLocker g(k.procs().lock());
  return k.procs().pids().last();
}
int get_randompid(Kernel& k) {
  MutexLocker g(k.procs().lock());
  return k.procs().pids().randomize ? 1 : 0;
}
Result<void> set_randompid(Kernel& k, int v) {
  if (v != 0 && v != 1) return err(EINVAL);
  MutexLocker g(k.procs().lock());
  k.procs().pids().randomize = v == 1;
  return {};
}
int get_pidmax(Kernel& k) {
  MutexLocker g(k.procs().lock());
  return k.procs().pids().pid_max();
}
// Linux's range: above the wrap point, at most PID_MAX_LIMIT (4M). Ids in
// use above a lowered maximum stay valid until they are released.
constexpr int kPidMaxLimit = 4 * 1024 * 1024;
Result<void> set_pidmax(Kernel& k, int v) {
  if (v < PidAllocator::kWrapTo + 2 || v > kPidMaxLimit) return err(EINVAL);
  MutexLocker g(k.procs().lock());
  return k.procs().pids().init(v);
}

// kern.msgbuf: the message buffer text, oldest first.
size_t get_msgbuf(Kernel& k, char* buf, size_t cap) {
  Msgbuf* mb = k.services().msgbuf();
  if (!mb) return put_string("", buf, cap);
  return mb->read(buf, cap) + 1;
}

// fs.file-max: the kernel keeps no table of open files, so only memory
// limits them: the largest value the node holds.
int get_filemax(Kernel&) { return INT_MAX; }

// The standard tree, declared once. Directories come before their leaves.
struct StdNode {
  int parent;  // 0: the root
  SysctlNodeInit init;
};

SysctlOps int_ops(int (*get)(Kernel&), Result<void> (*set)(Kernel&, int) = nullptr) {
  SysctlOps o;
  o.get_int = get;
  o.set_int = set;
  return o;
}
SysctlOps string_ops(size_t (*get)(Kernel&, char*, size_t),
                     Result<void> (*set)(Kernel&, const char*, size_t) = nullptr) {
  SysctlOps o;
  o.get_string = get;
  o.set_string = set;
  return o;
}

using enum SysctlType;
using enum SysctlAccess;

const StdNode kStdNodes[] = {
    {0, {CTL_KERN, "kern", kNode, kReadOnly, {}}},
    {0, {CTL_HW, "hw", kNode, kReadOnly, {}}},
    {0, {CTL_FS, "fs", kNode, kReadOnly, {}}},
    {CTL_FS, {FS_FILEMAX, "file-max", kInt, kReadOnly, int_ops(get_filemax)}},
    {CTL_HW, {HW_NCPU, "ncpu", kInt, kReadOnly, int_ops(get_ncpu)}},
    {CTL_HW, {HW_PAGESIZE, "pagesize", kInt, kReadOnly, int_ops(get_pagesize)}},
    {CTL_KERN, {KERN_OSTYPE, "ostype", kString, kReadOnly, string_ops(get_ostype)}},
    {CTL_KERN, {KERN_OSRELEASE, "osrelease", kString, kReadOnly, string_ops(get_osrelease)}},
    {CTL_KERN, {KERN_HOSTNAME, "hostname", kString, kRootWrite, string_ops(get_hostname, set_hostname)}},
    {CTL_KERN, {KERN_MAXPROC, "maxproc", kInt, kRootWrite, int_ops(get_maxproc, set_maxproc)}},
    {CTL_KERN, {KERN_LASTPID, "lastpid", kInt, kReadOnly, int_ops(get_lastpid)}},
    {CTL_KERN, {KERN_RANDOMPID, "randompid", kInt, kRootWrite, int_ops(get_randompid, set_randompid)}},
    {CTL_KERN, {KERN_PIDMAX, "pid_max", kInt, kRootWrite, int_ops(get_pidmax, set_pidmax)}},
    {CTL_KERN, {KERN_MSGBUF, "msgbuf", kString, kReadOnly, string_ops(get_msgbuf)}},
};

}  // namespace

Sysctl::Sysctl(Kernel& k) : kernel_(k) { root_.tree_lock = &lock_; }

Result<Sysctl*> Sysctl::create(Kernel& k) {
  Sysctl* s = new (k.kmem()) Sysctl(k);
  if (!s) return err(ENOMEM);
  for (const StdNode& n : kStdNodes) {
    Result<SysctlNode*> r = s->add(&n.parent, n.parent == 0 ? 0 : 1, n.init);
    if (!r.ok()) {
      delete s;
      return Error{r.error()};
    }
  }
  return s;
}

Sysctl::~Sysctl() { free_children(root_); }

void Sysctl::free_children(SysctlNode& dir) {
  dir.children.clear_and_dispose([](SysctlNode* c) {
    free_children(*c);
    delete c;
  });
}

SysctlNode* Sysctl::find_child_locked(const SysctlNode& dir, int num) const {
  dir.tree_lock->assert_held_shared();
  for (SysctlNode& c : const_cast<SysctlNode&>(dir).children)
    if (c.num == num) return &c;
  return nullptr;
}

SysctlNode* Sysctl::find_child_locked(const SysctlNode& dir, std::string_view name) const {
  dir.tree_lock->assert_held_shared();
  for (SysctlNode& c : const_cast<SysctlNode&>(dir).children)
    if (name == c.name) return &c;
  return nullptr;
}

Result<SysctlNode*> Sysctl::add(const int* parent, unsigned parent_len, const SysctlNodeInit& init) {
  if (!init.name || init.name[0] == '\0' || std::strlen(init.name) > SysctlNode::kNameMax ||
      std::strchr(init.name, '.') || parent_len >= kCtlMaxName)
    return err(EINVAL);
  bool leaf = init.type != SysctlType::kNode;
  if (init.type == SysctlType::kInt && !init.ops.get_int) return err(EINVAL);
  if (init.type == SysctlType::kString && !init.ops.get_string) return err(EINVAL);
  if (init.access != SysctlAccess::kReadOnly && !init.ops.set_int && !init.ops.set_string)
    return err(EINVAL);
  SysctlNode* n = new (kernel_.kmem()) SysctlNode();
  if (!n) return err(ENOMEM);
  n->num = init.num;
  std::strcpy(n->name, init.name);
  n->type = init.type;
  n->access = init.access;
  n->ops = init.ops;

  Locker<RwLock> g(lock_);
  SysctlNode* dir = &root_;
  for (unsigned i = 0; i < parent_len; i++) {
    dir = find_child_locked(*dir, parent[i]);
    if (!dir || !dir->is_dir()) {
      delete n;
      return err(dir ? ENOTDIR : ENOENT);
    }
  }
  SysctlNode* by_num = find_child_locked(*dir, init.num);
  SysctlNode* by_name = find_child_locked(*dir, std::string_view(init.name));
  if (by_num || by_name) {
    delete n;
    if (by_num && by_num == by_name && by_num->is_dir() && !leaf) return by_num;
    return err(EEXIST);
  }
  n->parent = dir;
  n->tree_lock = &lock_;
  dir->tree_lock->assert_held();
  dir->children.push_back(*n);
  return n;
}

Result<const SysctlNode*> Sysctl::lookup(const int* name, unsigned namelen) const {
  if (namelen == 0 || namelen > kCtlMaxName) return err(EINVAL);
  SharedLocker g(lock_);
  const SysctlNode* n = &root_;
  for (unsigned i = 0; i < namelen; i++) {
    if (!n->is_dir()) return err(ENOTDIR);
    n = find_child_locked(*n, name[i]);
    if (!n) return err(ENOENT);
  }
  return n;
}

const SysctlNode* Sysctl::child(const SysctlNode& dir, std::string_view name) const {
  if (!dir.is_dir()) return nullptr;
  SharedLocker g(lock_);
  return find_child_locked(dir, name);
}

void Sysctl::for_each_child(const SysctlNode& dir, absl::FunctionRef<void(const SysctlNode&)> fn) const {
  if (!dir.is_dir()) return;
  SharedLocker g(lock_);
  dir.tree_lock->assert_held_shared();  // the one tree: lock_
  for (const SysctlNode& c : dir.children) fn(c);
}

Result<const SysctlNode*> Sysctl::lookup(std::string_view dotted) const {
  if (dotted.empty()) return err(EINVAL);
  SharedLocker g(lock_);
  const SysctlNode* n = &root_;
  unsigned depth = 0;
  for (;;) {
    size_t dot = dotted.find('.');
    std::string_view part = dotted.substr(0, dot);
    if (part.empty()) return err(EINVAL);
    if (++depth > kCtlMaxName) return err(EINVAL);
    if (!n->is_dir()) return err(ENOTDIR);
    n = find_child_locked(*n, part);
    if (!n) return err(ENOENT);
    if (dot == std::string_view::npos) break;
    dotted.remove_prefix(dot + 1);
  }
  return n;
}

Result<size_t> Sysctl::read(const SysctlNode& n, void* buf, size_t cap) const {
  switch (n.type) {
    case SysctlType::kNode:
      return err(EISDIR);
    case SysctlType::kInt: {
      int v = n.ops.get_int(kernel_);
      if (cap) std::memcpy(buf, &v, cap < sizeof v ? cap : sizeof v);  // buf may be null for a size query
      return sizeof v;
    }
    case SysctlType::kString:
      return n.ops.get_string(kernel_, static_cast<char*>(buf), cap);
  }
  return err(EINVAL);
}

Result<void> Sysctl::check_write(Lwp& l, const SysctlNode& n) const {
  if (n.is_dir()) return err(EISDIR);
  if (!n.writable()) return err(EPERM);
  if (n.access == SysctlAccess::kRootWrite && !l.cred().is_root()) return err(EPERM);
  return {};
}

Result<void> Sysctl::write(Lwp& l, const SysctlNode& n, const void* buf, size_t len) {
  TRY(check_write(l, n));
  if (n.type == SysctlType::kInt) {
    if (len != sizeof(int) || !n.ops.set_int) return err(EINVAL);
    int v;
    std::memcpy(&v, buf, sizeof v);
    return n.ops.set_int(kernel_, v);
  }
  if (!n.ops.set_string) return err(EINVAL);
  // A string value may carry its NUL or not; it ends at the first one.
  const char* s = static_cast<const char*>(buf);
  const void* nul = std::memchr(s, '\0', len);
  if (nul) len = static_cast<size_t>(static_cast<const char*>(nul) - s);
  return n.ops.set_string(kernel_, s, len);
}

}  // namespace rump
