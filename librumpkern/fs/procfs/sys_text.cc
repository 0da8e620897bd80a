// procfs: the system files (meminfo, cpuinfo, uptime, loadavg, stat,
// filesystems), the mount tables (mounts, mountinfo) and /proc/sys over
// the sysctl tree, in Linux's formats (proc(5)).
#include <sys/mount.h>
#include <sys/sysmacros.h>

#include <cstring>

#include "fs/procfs/procfs.h"
#include "kern/clock.h"
#include "kern/kernel.h"
#include "kern/proc_table.h"
#include "kern/sysctl.h"
#include "vfs/vfs.h"

namespace rump {
namespace procfs {

namespace {

constexpr long kClockTicks = 100;  // USER_HZ

int64_t uptime_ns(Kernel& k) { return mono_now_ns() - static_cast<int64_t>(k.boot_time_ns()); }

void put_meminfo(Kernel& k, Text& t) {
  // The kernel's memory is its limit (sysinfo's view); without one, what
  // the kernel holds now counts as all of it in use, and the total is
  // shown as the largest page-aligned value.
  size_t limit = k.kmem().limit();
  size_t used = k.kmem().in_use();
  uint64_t total = limit ? limit : (~uint64_t{0} >> 12 << 2) * 1024;
  uint64_t free = total > used ? total - used : 0;
  struct Row {
    const char* name;
    uint64_t kb;
  } rows[] = {{"MemTotal", total / 1024}, {"MemFree", free / 1024}, {"MemAvailable", free / 1024},
              {"Buffers", 0},            {"Cached", 0},            {"SwapCached", 0},
              {"Active", 0},             {"Inactive", 0},          {"SwapTotal", 0},
              {"SwapFree", 0},           {"Dirty", 0},             {"Writeback", 0},
              {"AnonPages", 0},          {"Mapped", 0},            {"Shmem", 0},
              {"KReclaimable", 0},       {"Slab", used / 1024},    {"SReclaimable", 0},
              {"SUnreclaim", used / 1024}, {"KernelStack", 0},     {"PageTables", 0},
              {"CommitLimit", total / 1024}, {"Committed_AS", used / 1024}, {"VmallocTotal", 0},
              {"VmallocUsed", 0},        {"VmallocChunk", 0}};
  for (const Row& r : rows) {
    char label[32];
    std::snprintf(label, sizeof label, "%s:", r.name);
    t.printf("%-15s %8llu kB\n", label, static_cast<unsigned long long>(r.kb));
  }
}

void put_cpuinfo(Kernel& k, Text& t) {
  for (int i = 0; i < k.ncpu(); i++) {
    t.printf("processor\t: %d\nvendor_id\t: RumpKernel\ncpu family\t: 0\nmodel\t\t: 0\n"
             "model name\t: rump virtual CPU\nstepping\t: 0\ncpu MHz\t\t: 0.000\ncache size\t: 0 KB\n"
             "physical id\t: 0\nsiblings\t: %d\ncore id\t\t: %d\ncpu cores\t: %d\napicid\t\t: %d\n"
             "fpu\t\t: yes\nflags\t\t:\nbogomips\t: 0.00\n\n",
             i, k.ncpu(), i, k.ncpu(), i);
  }
}

// The CPU time every process has used (each one's and its reaped
// children's: a reaped process's time is in its parent's), and the idle
// time: what is left of the virtual CPUs' time since boot.
struct SysTimes {
  CpuUsage used;
  int64_t idle_ns = 0;
};
SysTimes sys_times(Kernel& k) {
  SysTimes st;
  {
    ProcTable& pt = k.procs();
    MutexLocker g(pt.lock());
    pt.for_each_locked([&](Proc& p) {
      MutexLocker pg(p.lock_);
      st.used.add(p.cpu_dead_);
      st.used.add(p.cpu_children_);
      for (Lwp& l : p.lwps_) st.used.add(cpu_lwp_usage(l));
    });
  }
  int64_t all = uptime_ns(k) * k.ncpu();
  st.idle_ns = all > st.used.total_ns() ? all - st.used.total_ns() : 0;
  return st;
}

unsigned long long clock_ticks(int64_t ns) { return static_cast<unsigned long long>(ns / (kNsPerSec / kClockTicks)); }

void put_stat(Kernel& k, Text& t) {
  int64_t up = uptime_ns(k);
  // Per virtual CPU the kernel keeps no times: each shows an equal share.
  SysTimes st = sys_times(k);
  int n = k.ncpu();
  t.printf("cpu  %llu 0 %llu %llu 0 0 0 0 0 0\n", clock_ticks(st.used.utime_ns), clock_ticks(st.used.stime_ns),
           clock_ticks(st.idle_ns));
  for (int i = 0; i < n; i++)
    t.printf("cpu%d %llu 0 %llu %llu 0 0 0 0 0 0\n", i, clock_ticks(st.used.utime_ns / n),
             clock_ticks(st.used.stime_ns / n), clock_ticks(st.idle_ns / n));
  int nprocs = 0, running = 0;
  {
    ProcTable& pt = k.procs();
    MutexLocker g(pt.lock());
    nprocs = pt.nprocs_locked();
    pt.for_each_locked([&](Proc& p) {
      MutexLocker pg(p.lock_);
      for (Lwp& l : p.lwps_)
        if (l.cpu()) running++;
    });
  }
  int64_t boot_wall = k.clock().realtime_ns() - up;
  t.printf("intr 0\nctxt %llu\nbtime %lld\nprocesses %d\nprocs_running %d\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
           static_cast<unsigned long long>(st.used.nvcsw + st.used.nivcsw),
           static_cast<long long>(boot_wall / kNsPerSec), nprocs, running);
}

void put_loadavg(Kernel& k, Text& t) {
  int nlwps = 0, running = 0;
  pid_t last = 0;
  {
    ProcTable& pt = k.procs();
    MutexLocker g(pt.lock());
    last = pt.pids().last();
    pt.for_each_locked([&](Proc& p) {
      MutexLocker pg(p.lock_);
      for (Lwp& l : p.lwps_) {
        nlwps++;
        if (l.cpu()) running++;
      }
    });
  }
  uint64_t avg[3];
  k.services().cputick()->loadavg(avg);
  // Two decimals, rounded (as Linux's LOAD_INT/LOAD_FRAC).
  for (uint64_t v : avg) {
    uint64_t c = (v * 100 + CpuTick::kLoadOne / 2) >> CpuTick::kLoadShift;
    t.printf("%llu.%02llu ", static_cast<unsigned long long>(c / 100), static_cast<unsigned long long>(c % 100));
  }
  t.printf("%d/%d %d\n", running, nlwps, last);
}

void put_filesystems(Text& t) {
  for_each_fstype([&](const FsType& ft) {
    if (!ft.mount) return;  // made by registration only (etfs)
    t.printf("%s\t%s\n", ft.block_device ? "" : "nodev", ft.name);
  });
}

void put_options(Text& t, int flags) {
  t.put(flags & MS_RDONLY ? "ro" : "rw");
  if (flags & MS_NOSUID) t.put(",nosuid");
  if (flags & MS_NODEV) t.put(",nodev");
  if (flags & MS_NOEXEC) t.put(",noexec");
  if (flags & MS_SYNCHRONOUS) t.put(",sync");
  if (flags & MS_NOATIME) t.put(",noatime");
  else if (flags & MS_NODIRATIME) t.put(",nodiratime");
  else if (!(flags & MS_STRICTATIME)) t.put(",relatime");
}

// Octal escapes for the characters that separate fields (Linux's
// mangle(): space, tab, newline, backslash).
void put_escaped(Text& t, std::string_view s) {
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\\') t.printf("\\%03o", static_cast<unsigned char>(c));
    else t.putc(c);
  }
}

}  // namespace

Result<void> make_mounts(Lwp& l, Ref<Vnode> root, bool mountinfo, Text& t) {
  Kernel& k = l.kernel();
  VfsState& st = vfs_state(k);
  PathBuf path(k.kmem());
  if (!path.p) return err(ENOMEM);
  MutexLocker g(st.mount_lock_);
  for (Mount& m : st.mounts_) {
    // The mount point: the root file system's root is "/", others the
    // path of what they cover; mounts outside the reader's root are left
    // out (Linux: not reachable from it).
    std::string_view point = "/";
    if (m.covered()) {
      Result<size_t> r = vnode_path(root, m.covered().to_ref(), path.p);
      if (!r.ok()) continue;
      point = std::string_view(path.p + r.value());
      if (point.substr(0, 13) == "(unreachable)") continue;
    }
    int flags = m.flags_.load(std::memory_order_relaxed);
    const char* type = m.fstype().name;
    if (mountinfo) {
      int id = static_cast<int>(minor(m.dev_));
      int parent = m.covered() ? static_cast<int>(minor(m.covered()->mount().dev_)) : id;
      t.printf("%d %d %u:%u / ", id, parent, major(m.dev_), minor(m.dev_));
      put_escaped(t, point);
      t.putc(' ');
      put_options(t, flags);
      t.printf(" - %s %s %s\n", type, type, flags & MS_RDONLY ? "ro" : "rw");
    } else {
      t.printf("%s ", type);
      put_escaped(t, point);
      t.printf(" %s ", type);
      put_options(t, flags);
      t.put(" 0 0\n");
    }
  }
  return {};
}

Result<void> make_global(Lwp& l, Which which, Text& t) {
  Kernel& k = l.kernel();
  switch (which) {
    case Which::kMeminfo: put_meminfo(k, t); break;
    case Which::kCpuinfo: put_cpuinfo(k, t); break;
    case Which::kSysStat: put_stat(k, t); break;
    case Which::kLoadavg: put_loadavg(k, t); break;
    case Which::kFilesystems: put_filesystems(t); break;
    case Which::kUptime: {
      int64_t up = uptime_ns(k);
      long long cs = up / (kNsPerSec / 100);
      long long idle = sys_times(k).idle_ns / (kNsPerSec / 100);
      t.printf("%lld.%02lld %lld.%02lld\n", cs / 100, cs % 100, idle / 100, idle % 100);
      break;
    }
    default: return err(EINVAL);
  }
  return {};
}

Result<void> make_sys(Lwp& l, const SysctlNode& n, Text& t) {
  Sysctl& sc = *l.kernel().services().sysctl();
  if (n.type == SysctlType::kInt) {
    int v = 0;
    TRY(sc.read(n, &v, sizeof v));
    t.printf("%d\n", v);
    return {};
  }
  size_t need = TRY(sc.read(n, nullptr, 0));
  char* buf = static_cast<char*>(l.kernel().kmem().alloc(need + 1));
  if (!buf) return err(ENOMEM);
  Result<size_t> r = sc.read(n, buf, need + 1);
  if (r.ok()) {
    buf[need] = '\0';
    t.put(std::string_view(buf, std::strlen(buf)));
    t.putc('\n');
  }
  Kmem::free(buf);
  TRY(r);
  return {};
}

Result<size_t> write_sys(Lwp& l, const SysctlNode& n, const char* buf, size_t len) {
  Sysctl& sc = *l.kernel().services().sysctl();
  // A read-only leaf is mode 0444, which binds root too (Linux's
  // sysctl_perm).
  if (!n.writable()) return err(EACCES);
  TRY(sc.check_write(l, n));
  // One trailing newline ends the value (echo's).
  size_t n_len = len;
  if (n_len && buf[n_len - 1] == '\n') n_len--;
  if (n.type == SysctlType::kInt) {
    char num[24];
    if (n_len == 0 || n_len >= sizeof num) return err(EINVAL);
    std::memcpy(num, buf, n_len);
    num[n_len] = '\0';
    char* end = nullptr;
    long v = std::strtol(num, &end, 10);
    if (end == num || *end != '\0' || v < INT_MIN || v > INT_MAX) return err(EINVAL);
    int iv = static_cast<int>(v);
    TRY(sc.write(l, n, &iv, sizeof iv));
    return len;
  }
  TRY(sc.write(l, n, buf, n_len));
  return len;
}

}  // namespace procfs
}  // namespace rump
