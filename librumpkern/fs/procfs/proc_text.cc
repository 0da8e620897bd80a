// procfs: what /proc/<pid>/ and task/<tid>/ show, in Linux's formats
// (proc(5)): the process snapshot, stat, statm, status, limits, maps,
// smaps_rollup, cmdline, comm, environ, the links and fdinfo.
#include <fcntl.h>
#include <sys/sysmacros.h>

#include <climits>
#include <cstring>

#include "fs/procfs/procfs.h"
#include "kern/clock.h"
#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/proc_table.h"
#include "vfs/kvec.h"
#include "vfs/vfs.h"
#include "vfs/vnode_pager.h"

namespace rump {
namespace procfs {

namespace {

constexpr uint64_t kPage = 4096;

// The snapshot's one critical section: the table's lock, then the
// process's.
Result<void> snap_locked(ProcTable& t, Proc& p, pid_t tid, unsigned what, ProcSnap& s)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.lock()) {
  p.assert_tree_locked();
  s.pid = p.pid();
  s.ppid = p.parent_ ? p.parent_->pid() : 0;
  s.pgid = p.pgid_;
  s.sid = p.sid_;
  s.exit_signal = p.exit_signal_;
  bool zombie = p.state_ == Proc::State::kZombie;
  MutexLocker g(p.lock_);
  Lwp* thread = nullptr;
  bool running = false;
  for (Lwp& l : p.lwps_) {
    if (!s.first_tid) s.first_tid = l.tid();
    if (l.cpu()) running = true;
    if (l.tid() == tid) thread = &l;
  }
  if (tid && !thread) return err(ESRCH);
  s.tid = tid;
  s.nlwps = p.nlwps_;
  if (thread) running = thread->cpu() != nullptr;
  s.state = zombie ? 'Z' : running ? 'R' : 'S';
  std::memcpy(s.comm, p.comm_, sizeof s.comm);
  s.comm[sizeof s.comm - 1] = '\0';
  s.cred = p.cred_;
  s.umask = p.umask_.load(std::memory_order_relaxed);
  std::memcpy(s.rl, p.rlimits_, sizeof s.rl);
  s.nice = p.nice_;
  s.policy = p.sched_policy_;
  s.rtprio = p.sched_priority_;
  s.no_new_privs = p.no_new_privs_;
  std::memcpy(s.affinity, p.affinity_, sizeof s.affinity);
  s.shd_pending = p.sigpending_.load(std::memory_order_acquire);
  s.sigqueued = p.nsigqueued_;
  s.start_ns = p.start_ns_;
  s.mm = p.mm_args_;
  s.cusage = p.cpu_children_;
  if (thread) {
    s.usage = cpu_lwp_usage(*thread);
  } else {
    s.usage = p.cpu_dead_;
    for (Lwp& l : p.lwps_) s.usage.add(cpu_lwp_usage(l));
  }
  Lwp* l0 = thread ? thread : (p.lwps_.empty() ? nullptr : &p.lwps_.front());
  if (l0) {
    s.pending = l0->sigpending_.load(std::memory_order_acquire);
    s.blocked = l0->sigmask_.load(std::memory_order_acquire);
  }
  if (p.sigacts_) {
    for (int sig = 1; sig <= kNsig; sig++) {
      uintptr_t h = p.sigacts_->get(sig).handler;
      if (h == 1) s.ignored |= SigSet{1} << (sig - 1);
      else if (h != 0) s.caught |= SigSet{1} << (sig - 1);
    }
  }
  // Past exiting_ the per-faction state goes without these locks: take
  // references only before it.
  if (!zombie && !p.exiting_) {
    s.mem_ok = (what & kSnapSpace) != 0;
    if ((what & kSnapSpace) && p.space_) {
      s.space = p.space_;
      s.space->hold();
    } else if (what & kSnapSpace) {
      // Kmem takes no lock: growing the list under these is fine; without
      // memory the list is short, as any snapshot may be.
      for (int i = 0; i < proc_extension_count(); i++) {
        ProcExtension* e = proc_extension(i);
        if (e->host_maps == nullptr) continue;
        e->host_maps(p, [&](const UserSpace::Mapping& m) {
          if (!s.host_maps.reserve(s.host_maps.size() + 1).ok()) return;
          if (m.backing) m.backing->ref();
          s.host_maps.push_back(m);
        });
      }
    }
    if (what & kSnapVfs) {
      ProcVfs& pv = proc_vfs(p);
      s.fdt = pv.fdt();
      s.cwd = pv.cwd();
      s.root = pv.root();
      s.exe = pv.exe();
      s.have_vfs = true;
    }
  }
  (void)t;
  return {};
}

// The name (comm) with the characters Linux escapes in status ("\n", "\\").
void put_name(Text& t, const char* name) {
  for (const char* c = name; *c; c++) {
    if (*c == '\n') t.put("\\n");
    else if (*c == '\\') t.put("\\\\");
    else t.putc(*c);
  }
}

const char* state_name(char c) {
  switch (c) {
    case 'R': return "R (running)";
    case 'Z': return "Z (zombie)";
    default: return "S (sleeping)";
  }
}

uint64_t kb(uint64_t bytes) { return bytes / 1024; }

void put_stat(Lwp& l, const ProcSnap& s, Text& t) {
  Kernel& k = l.kernel();
  UserSpace::Totals tot = s.space ? s.space->totals() : UserSpace::Totals{};
  rlim_t rss_lim = s.rl[RLIMIT_RSS].rlim_cur;
  // Fields 1-52 of proc(5); what the kernel does not track is 0.
  // Times in clock ticks (USER_HZ); the start time since boot.
  constexpr int64_t kTick = kNsPerSec / 100;
  auto ticks = [](int64_t ns) { return static_cast<unsigned long long>(ns / kTick); };
  int64_t since_boot = s.start_ns - static_cast<int64_t>(k.boot_time_ns());
  t.printf("%d (%s) %c %d %d %d 0 -1 %u 0 0 0 0 %llu %llu %llu %llu %d %d %d 0 %llu %llu %llu %llu ",
           s.tid ? s.tid : s.pid, s.comm, s.state, s.ppid, s.pgid, s.sid,
           0x400000u /* PF_RANDOMIZE-free, as a user task */, ticks(s.usage.utime_ns), ticks(s.usage.stime_ns),
           ticks(s.cusage.utime_ns), ticks(s.cusage.stime_ns), s.policy ? -1 - s.rtprio : 20 + s.nice, s.nice,
           s.nlwps, ticks(since_boot > 0 ? since_boot : 0),
           static_cast<unsigned long long>(tot.mapped), static_cast<unsigned long long>(tot.resident / kPage),
           static_cast<unsigned long long>(rss_lim == RLIM_INFINITY ? ULLONG_MAX : rss_lim));
  t.printf("0 0 0 0 0 0 0 0 0 0 0 0 %d %d %d %d 0 0 0 0 0 0 0 0 0 0 0\n", s.exit_signal, s.last_cpu, s.rtprio,
           s.policy);
  (void)k;
}

void put_cpus(Text& t, const uint64_t* affinity, int ncpu) {
  // Cpus_allowed: a hex mask; Cpus_allowed_list: ranges.
  uint64_t mask = affinity[0] & (ncpu >= 64 ? ~0ull : ((1ull << ncpu) - 1));
  t.printf("Cpus_allowed:\t%llx\nCpus_allowed_list:\t", static_cast<unsigned long long>(mask));
  bool first = true;
  for (int i = 0; i < ncpu && i < 64;) {
    if (!(mask >> i & 1)) {
      i++;
      continue;
    }
    int j = i;
    while (j + 1 < ncpu && j + 1 < 64 && (mask >> (j + 1) & 1)) j++;
    if (!first) t.putc(',');
    first = false;
    if (j == i) t.printf("%d", i);
    else t.printf("%d-%d", i, j);
    i = j + 1;
  }
  t.putc('\n');
}

void put_status(Lwp& l, const ProcSnap& s, Text& t) {
  Kernel& k = l.kernel();
  const Cred& c = *s.cred;
  t.put("Name:\t");
  put_name(t, s.comm);
  t.printf("\nUmask:\t%04o\nState:\t%s\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\nTracerPid:\t0\n",
           static_cast<unsigned>(s.umask), state_name(s.state), s.pid, s.tid ? s.tid : s.pid, s.ppid);
  t.printf("Uid:\t%u\t%u\t%u\t%u\nGid:\t%u\t%u\t%u\t%u\n", c.uid, c.euid, c.suid, c.fsuid, c.gid, c.egid, c.sgid,
           c.fsgid);
  size_t nfds = 0;
  if (s.fdt) s.fdt->for_each_fd([&](int fd, rump::File&, bool) { nfds = static_cast<size_t>(fd) + 1; });
  size_t fdsize = 64;
  while (fdsize < nfds) fdsize *= 2;
  t.printf("FDSize:\t%zu\nGroups:\t", fdsize);
  for (size_t i = 0; i < c.ngroups(); i++) t.printf("%u ", c.groups()[i]);
  t.printf("\nNStgid:\t%d\nNSpid:\t%d\nNSpgid:\t%d\nNSsid:\t%d\nKthread:\t0\n", s.pid, s.tid ? s.tid : s.pid,
           s.pgid, s.sid);
  if (s.state != 'Z') {
    UserSpace::Totals tot = s.space ? s.space->totals() : UserSpace::Totals{};
    uint64_t heap = 0;
    if (s.space)
      s.space->for_each_mapping([&](const UserSpace::Mapping& m) {
        if (m.heap || (!m.object && !m.shared)) heap += m.end - m.start;
      });
    t.printf("VmPeak:\t%8llu kB\nVmSize:\t%8llu kB\nVmLck:\t%8llu kB\nVmPin:\t%8d kB\nVmHWM:\t%8llu kB\n"
             "VmRSS:\t%8llu kB\nRssAnon:\t%8llu kB\nRssFile:\t%8d kB\nRssShmem:\t%8d kB\nVmData:\t%8llu kB\n"
             "VmStk:\t%8d kB\nVmExe:\t%8d kB\nVmLib:\t%8d kB\nVmPTE:\t%8d kB\nVmSwap:\t%8d kB\n"
             "HugetlbPages:\t%8d kB\n",
             static_cast<unsigned long long>(kb(tot.mapped)), static_cast<unsigned long long>(kb(tot.mapped)),
             static_cast<unsigned long long>(kb(tot.locked)), 0, static_cast<unsigned long long>(kb(tot.resident)),
             static_cast<unsigned long long>(kb(tot.resident)), static_cast<unsigned long long>(kb(tot.resident)),
             0, 0, static_cast<unsigned long long>(kb(heap)), 0, 0, 0, 0, 0, 0);
    t.put("CoreDumping:\t0\nTHP_enabled:\t0\n");
  }
  t.printf("Threads:\t%d\nSigQ:\t%d/%llu\n", s.nlwps, s.sigqueued,
           static_cast<unsigned long long>(s.rl[RLIMIT_SIGPENDING].rlim_cur));
  t.printf("SigPnd:\t%016llx\nShdPnd:\t%016llx\nSigBlk:\t%016llx\nSigIgn:\t%016llx\nSigCgt:\t%016llx\n",
           static_cast<unsigned long long>(s.pending), static_cast<unsigned long long>(s.shd_pending),
           static_cast<unsigned long long>(s.blocked), static_cast<unsigned long long>(s.ignored),
           static_cast<unsigned long long>(s.caught));
  t.printf("CapInh:\t%016llx\nCapPrm:\t%016llx\nCapEff:\t%016llx\nCapBnd:\t%016llx\nCapAmb:\t%016llx\n",
           static_cast<unsigned long long>(c.cap_inheritable), static_cast<unsigned long long>(c.cap_permitted),
           static_cast<unsigned long long>(c.cap_effective), static_cast<unsigned long long>(kCapAll), 0ull);
  t.printf("NoNewPrivs:\t%d\nSeccomp:\t0\nSeccomp_filters:\t0\n", s.no_new_privs ? 1 : 0);
  put_cpus(t, s.affinity, k.ncpu());
  t.printf("Mems_allowed:\t1\nMems_allowed_list:\t0\nvoluntary_ctxt_switches:\t%llu\n"
           "nonvoluntary_ctxt_switches:\t%llu\n",
           static_cast<unsigned long long>(s.usage.nvcsw), static_cast<unsigned long long>(s.usage.nivcsw));
}

struct LimitRow {
  const char* name;
  int res;
  const char* unit;
};
const LimitRow kLimits[] = {
    {"Max cpu time", RLIMIT_CPU, "seconds"},
    {"Max file size", RLIMIT_FSIZE, "bytes"},
    {"Max data size", RLIMIT_DATA, "bytes"},
    {"Max stack size", RLIMIT_STACK, "bytes"},
    {"Max core file size", RLIMIT_CORE, "bytes"},
    {"Max resident set", RLIMIT_RSS, "bytes"},
    {"Max processes", RLIMIT_NPROC, "processes"},
    {"Max open files", RLIMIT_NOFILE, "files"},
    {"Max locked memory", RLIMIT_MEMLOCK, "bytes"},
    {"Max address space", RLIMIT_AS, "bytes"},
    {"Max file locks", RLIMIT_LOCKS, "locks"},
    {"Max pending signals", RLIMIT_SIGPENDING, "signals"},
    {"Max msgqueue size", RLIMIT_MSGQUEUE, "bytes"},
    {"Max nice priority", RLIMIT_NICE, ""},
    {"Max realtime priority", RLIMIT_RTPRIO, ""},
    {"Max realtime timeout", RLIMIT_RTTIME, "us"},
};

void put_limit_value(Text& t, rlim_t v) {
  char b[32];
  if (v == RLIM_INFINITY) std::snprintf(b, sizeof b, "unlimited");
  else std::snprintf(b, sizeof b, "%llu", static_cast<unsigned long long>(v));
  t.printf("%-20s ", b);
}

void put_limits(const ProcSnap& s, Text& t) {
  t.printf("%-25s %-20s %-20s %-10s\n", "Limit", "Soft Limit", "Hard Limit", "Units");
  for (const LimitRow& r : kLimits) {
    t.printf("%-25s ", r.name);
    put_limit_value(t, s.rl[r.res].rlim_cur);
    put_limit_value(t, s.rl[r.res].rlim_max);
    // An empty unit leaves no column (Linux).
    if (*r.unit) t.printf("%-10s\n", r.unit);
    else t.putc('\n');
  }
}

// A mapping and the file it maps (null: none), gathered under the map's
// lock; the names are made after it, with the file systems' locks.
struct MapLine {
  UserSpace::Mapping m;
  Vnode* vp;  // holds a reference
  UserSpace::MappingUsage u;  // smaps only
};

// The rows smaps shows per mapping and smaps_rollup for all (Linux's
// order; what has no counterpart here, huge pages, KSM, swap, is 0).
void put_usage_rows(Text& t, const UserSpace::MappingUsage& u, bool rollup) {
  auto row = [&t](const char* name, uint64_t bytes) {
    char label[32];
    std::snprintf(label, sizeof label, "%s:", name);
    t.printf("%-15s %8llu kB\n", label, static_cast<unsigned long long>(bytes >> 10));
  };
  auto pss = [](uint64_t v) { return v >> UserSpace::kPssShift; };
  row("Rss", u.rss);
  row("Pss", pss(u.pss));
  row("Pss_Dirty", pss(u.pss_dirty));
  if (rollup) {
    row("Pss_Anon", pss(u.pss_anon));
    row("Pss_File", pss(u.pss_file));
    row("Pss_Shmem", pss(u.pss_shmem));
  }
  row("Shared_Clean", u.shared_clean);
  row("Shared_Dirty", u.shared_dirty);
  row("Private_Clean", u.private_clean);
  row("Private_Dirty", u.private_dirty);
  row("Referenced", u.rss);
  row("Anonymous", u.anonymous);
  for (const char* zero : {"KSM", "LazyFree", "AnonHugePages", "ShmemPmdMapped", "FilePmdMapped", "Shared_Hugetlb",
                           "Private_Hugetlb", "Swap", "SwapPss"})
    row(zero, 0);
  row("Locked", pss(u.pss_locked));
}

// smaps' VmFlags: Linux's two-letter names, in its order.
void put_vm_flags(Text& t, const UserSpace::Mapping& m) {
  t.put("VmFlags:");
  auto flag = [&t](bool on, const char* name) {
    if (!on) return;
    t.putc(' ');
    t.put(name);
  };
  bool may_write = (m.max_prot & 2) != 0;
  flag(m.prot & 1, "rd");
  flag(m.prot & 2, "wr");
  flag(m.prot & 4, "ex");
  flag(m.shared && may_write, "sh");
  flag(m.max_prot & 1, "mr");
  flag(may_write, "mw");
  flag(m.max_prot & 4, "me");
  flag(m.shared, "ms");
  flag(m.locked, "lo");
  flag(m.dontfork, "dc");
  flag(!m.shared && (m.prot & 2), "ac");  // private writable memory is accounted
  flag(m.wipeonfork, "wf");
  t.put(" \n");
}

// maps, and with smaps each mapping's page figures after its line.
Result<void> put_maps(Lwp& l, const ProcSnap& s, Text& t, bool smaps) {
  if (!s.space && s.host_maps.size() == 0) return {};
  Kmem& km = l.kernel().kmem();
  KVec<MapLine> maps(km);
  bool full = false;
  auto add = [&](const UserSpace::Mapping& m, const UserSpace::MappingUsage& u) {
    if (full) return;
    if (!maps.reserve(maps.size() + 1).ok()) {
      full = true;
      return;
    }
    Vnode* vp = nullptr;
    if (auto* pager = dynamic_cast<VnodePager*>(m.backing)) {
      vp = &pager->vnode();
      vp->ref();
    }
    maps.push_back(MapLine{m, vp, u});
  };
  if (!s.space) {
    for (size_t i = 0; i < s.host_maps.size(); i++) add(s.host_maps[i], UserSpace::MappingUsage{});
  } else if (smaps) {
    s.space->for_each_mapping_usage(add);
  } else {
    s.space->for_each_mapping([&](const UserSpace::Mapping& m) { add(m, UserSpace::MappingUsage{}); });
  }
  PathBuf path(km);
  for (size_t i = 0; i < maps.size(); i++) {
    const UserSpace::Mapping& m = maps[i].m;
    Vnode* vp = maps[i].vp;
    RefPtr<Vnode> hold(kAdopt, vp);
    uint64_t ino = 0;
    dev_t dev = 0;
    if (vp) {
      Vattr va = getattr(*vp);
      ino = va.ino;
      dev = vp->mount().dev_;
    }
    char line[128];
    int n = std::snprintf(line, sizeof line, "%08llx-%08llx %c%c%c%c %08llx %02x:%02x %llu",
                          static_cast<unsigned long long>(m.start), static_cast<unsigned long long>(m.end),
                          (m.prot & 1) ? 'r' : '-', (m.prot & 2) ? 'w' : '-', (m.prot & 4) ? 'x' : '-',
                          m.shared ? 's' : 'p', static_cast<unsigned long long>(m.offset), major(dev), minor(dev),
                          static_cast<unsigned long long>(ino));
    t.put(std::string_view(line, static_cast<size_t>(n)));
    // The name column: padded to 72, then a space (Linux's seq_pad).
    std::string_view name;
    if (vp && path.p) name = vnode_name(l, *vp, path.p);
    else if (m.heap) name = "[heap]";
    else if (!m.object && !m.shared && s.mm.start_stack && m.start <= s.mm.start_stack && s.mm.start_stack <= m.end)
      name = "[stack]";  // the process's stack, as PR_SET_MM_START_STACK names it (Linux's exec)
    else if (m.shared && m.backing) name = "/dev/zero (deleted)";  // shared anonymous memory, as Linux's
    if (!name.empty()) {
      for (int i = n; i < 72; i++) t.putc(' ');
      t.putc(' ');
      t.put(name);
    }
    t.putc('\n');
    if (!smaps) continue;
    t.printf("%-15s %8llu kB\n", "Size:", static_cast<unsigned long long>((m.end - m.start) >> 10));
    t.printf("%-15s %8d kB\n%-15s %8d kB\n", "KernelPageSize:", 4, "MMUPageSize:", 4);
    put_usage_rows(t, maps[i].u, false);
    t.printf("%-15s %d\n", "THPeligible:", 0);
    put_vm_flags(t, m);
  }
  if (full) return err(ENOMEM);
  return {};
}

// The bytes of [start, end) of the process's memory, up to the first that
// faults; a cmdline whose last byte is not NUL was rewritten in place
// (setproctitle): it ends at its first NUL, as Linux's.
void put_area(const ProcSnap& s, uint64_t start, uint64_t end, bool cmdline, Text& t) {
  if (!s.mem_ok || start >= end) return;
  constexpr uint64_t kMaxArea = 1 << 20;
  if (end - start > kMaxArea) end = start + kMaxArea;
  size_t from = t.size();
  char buf[256];
  for (uint64_t pos = start; pos < end;) {
    size_t want = end - pos < sizeof buf ? static_cast<size_t>(end - pos) : sizeof buf;
    size_t done = 0;
    Result<void> r = space_copy(s.space, false, pos, buf, want, &done);
    t.put(std::string_view(buf, done));
    if (!r.ok() || done < want) break;
    pos += want;
  }
  if (!cmdline || t.size() == from || t.failed() || t.data()[t.size() - 1] == '\0') return;
  const char* d = t.data() + from;
  if (const void* nul = std::memchr(d, '\0', t.size() - from))
    t.truncate(static_cast<size_t>(static_cast<const char*>(nul) - t.data()) + 1);
}

void put_smaps_rollup(const ProcSnap& s, Text& t) {
  uint64_t lo = 0, hi = 0;
  bool any = false;
  UserSpace::MappingUsage sum;
  if (s.space)
    s.space->for_each_mapping_usage([&](const UserSpace::Mapping& m, const UserSpace::MappingUsage& u) {
      if (!any) lo = m.start;
      hi = m.end;
      any = true;
      sum.rss += u.rss;
      sum.pss += u.pss;
      sum.pss_dirty += u.pss_dirty;
      sum.pss_anon += u.pss_anon;
      sum.pss_file += u.pss_file;
      sum.pss_shmem += u.pss_shmem;
      sum.pss_locked += u.pss_locked;
      sum.shared_clean += u.shared_clean;
      sum.shared_dirty += u.shared_dirty;
      sum.private_clean += u.private_clean;
      sum.private_dirty += u.private_dirty;
      sum.anonymous += u.anonymous;
    });
  char head[128];
  int n = std::snprintf(head, sizeof head, "%08llx-%08llx ---p 00000000 00:00 0", static_cast<unsigned long long>(lo),
                        static_cast<unsigned long long>(hi));
  t.put(std::string_view(head, static_cast<size_t>(n)));
  for (int i = n; i < 73; i++) t.putc(' ');
  t.put("[rollup]\n");
  put_usage_rows(t, sum, true);
}

}  // namespace

ProcSnap::~ProcSnap() {
  if (space) space->release();
  for (size_t i = 0; i < host_maps.size(); i++)
    if (host_maps[i].backing) host_maps[i].backing->unref();
}

Result<void> snap_proc(Kernel& k, pid_t pid, pid_t tid, unsigned what, ProcSnap& s) {
  ProcTable& t = k.procs();
  MutexLocker g(t.lock());
  Proc* p = pid > 0 ? t.find_locked(pid) : nullptr;
  if (!p) return err(ESRCH);
  p->assert_tree_locked();
  if (p->state_ == Proc::State::kEmbryo) return err(ESRCH);
  return snap_locked(t, *p, tid, what, s);
}

Result<void> proc_owner(Kernel& k, pid_t pid, pid_t tid, uid_t* uid, gid_t* gid) {
  ProcSnap s(k.kmem());
  Result<void> r = snap_proc(k, pid, tid, 0, s);
  if (!r.ok()) return err(ENOENT);
  *uid = s.cred ? s.cred->euid : 0;
  *gid = s.cred ? s.cred->egid : 0;
  return {};
}

Result<void> make_pid_file(Lwp& l, Which which, pid_t pid, pid_t tid, Text& t) {
  Kernel& k = l.kernel();
  ProcSnap s(k.kmem());
  unsigned what = kSnapSpace | kSnapVfs;
  TRY(snap_proc(k, pid, tid, what, s));
  s.last_cpu = 0;
  switch (which) {
    case Which::kStat: put_stat(l, s, t); break;
    case Which::kStatus: put_status(l, s, t); break;
    case Which::kStatm: {
      UserSpace::Totals tot = s.space ? s.space->totals() : UserSpace::Totals{};
      t.printf("%llu %llu 0 0 0 0 0\n", static_cast<unsigned long long>(tot.mapped / kPage),
               static_cast<unsigned long long>(tot.resident / kPage));
      break;
    }
    case Which::kComm: t.printf("%s\n", s.comm); break;
    case Which::kCmdline:
      // The argument area (prctl PR_SET_MM_ARG_START/END, as exec would
      // set it). A process that set none (there is no exec here) shows its
      // name, NUL-terminated; zombies show nothing, as Linux's.
      if (s.mm.arg_end) put_area(s, s.mm.arg_start, s.mm.arg_end, true, t);
      else if (s.state != 'Z') t.put(std::string_view(s.comm, std::strlen(s.comm) + 1));
      break;
    case Which::kEnviron: put_area(s, s.mm.env_start, s.mm.env_end, false, t); break;
    case Which::kLimits: put_limits(s, t); break;
    case Which::kMaps: TRY(put_maps(l, s, t, false)); break;
    case Which::kSmaps: TRY(put_maps(l, s, t, true)); break;
    case Which::kSmapsRollup: put_smaps_rollup(s, t); break;
    case Which::kMounts:
    case Which::kMountinfo:
      if (!s.root) break;
      TRY(make_mounts(l, s.root.to_ref(), which == Which::kMountinfo, t));
      break;
    default: return err(EINVAL);
  }
  return {};
}

Result<void> make_fdinfo(Lwp& l, pid_t pid, int fd, Text& t) {
  Kernel& k = l.kernel();
  ProcSnap s(k.kmem());
  TRY(snap_proc(k, pid, 0, kSnapVfs, s));
  if (!s.fdt) return err(ENOENT);
  bool cloexec = false;
  Ref<rump::File> f = TRY(s.fdt->get(fd, &cloexec));
  int flags = f->flags() | (cloexec ? O_CLOEXEC : 0);
  uint64_t ino = 0;
  int mnt = 0;
  if (Vnode* vp = f->vnode()) {
    Vattr va = getattr(*vp);
    ino = va.ino;
    mnt = static_cast<int>(minor(vp->mount().dev_));
  } else {
    struct stat st;
    if (f->ops().stat(*f, &st).ok()) ino = st.st_ino;
  }
  t.printf("pos:\t%llu\nflags:\t0%o\nmnt_id:\t%d\nino:\t%llu\n", static_cast<unsigned long long>(f->pos()),
           static_cast<unsigned>(flags), mnt, static_cast<unsigned long long>(ino));
  return {};
}

Result<size_t> write_comm(Lwp& l, pid_t pid, pid_t tid, const char* buf, size_t len) {
  Kernel& k = l.kernel();
  ProcTable& t = k.procs();
  MutexLocker g(t.lock());
  Proc* p = t.find_locked(pid);
  if (!p) return err(ESRCH);
  p->assert_tree_locked();
  if (p->state_ != Proc::State::kActive) return err(ESRCH);
  MutexLocker pg(p->lock_);
  // Only the process itself (any of its threads) names itself; others
  // need the same user (Linux: same thread group, else ptrace access).
  const Cred& c = l.cred();
  if (&l.proc() != p && !c.capable(kCapSysPtrace) && c.euid != p->cred_->euid) return err(EACCES);
  size_t n = len < sizeof p->comm_ - 1 ? len : sizeof p->comm_ - 1;
  std::memset(p->comm_, 0, sizeof p->comm_);
  std::memcpy(p->comm_, buf, n);
  // The write's trailing newline is no part of the name.
  if (n && p->comm_[n - 1] == '\n') p->comm_[n - 1] = '\0';
  (void)tid;
  return len;
}

Result<Vnode::MagicTarget> link_target(Lwp& l, Which which, pid_t pid, int fd) {
  Kernel& k = l.kernel();
  ProcSnap s(k.kmem());
  TRY(snap_proc(k, pid, 0, kSnapVfs, s));
  if (!s.have_vfs) return err(ENOENT);
  Vnode::MagicTarget m;
  if (which == Which::kExe) {
    // The file PR_SET_MM_EXE_FILE named; none (there is no exec): ENOENT,
    // as a kernel thread's.
    if (!s.exe) return err(ENOENT);
    m.vp = s.exe;
  } else if (which == Which::kCwd) {
    m.vp = s.cwd;
  } else if (which == Which::kRootLink) {
    m.vp = s.root;
  } else {
    Result<Ref<rump::File>> r = s.fdt->get(fd);
    if (!r.ok()) return err(ENOENT);
    m.file = RefPtr<rump::File>(std::move(r).value());
    m.vp = RefPtr<Vnode>(m.file->vnode());
  }
  return m;
}

std::string_view vnode_name(Lwp& l, Vnode& vp, char* path) {
  if (const char* m = memfd_name(vp)) {
    int n = std::snprintf(path, kPathMax, "/%s (deleted)", m);
    return std::string_view(path, static_cast<size_t>(n) < kPathMax ? static_cast<size_t>(n) : kPathMax - 1);
  }
  Result<size_t> start = vnode_path(proc_vfs(l.proc()).root(), Ref<Vnode>(vp), path);
  if (start.ok()) return std::string_view(path + start.value());
  // A file no name leads to any more: where it was, when that is known.
  const char* d = vp.deleted_path();
  int n = std::snprintf(path, kPathMax, "%s%s(deleted)", d ? d : "", d ? " " : "");
  return std::string_view(path, static_cast<size_t>(n) < kPathMax ? static_cast<size_t>(n) : kPathMax - 1);
}

Result<size_t> link_text(Lwp& l, Which which, pid_t pid, int fd, char* buf, size_t cap) {
  Vnode::MagicTarget m = TRY(link_target(l, which, pid, fd));
  if (m.file)
    if (size_t n = m.file->ops().link_name(*m.file, buf, cap)) return n;
  if (!m.vp) return err(ENOENT);
  // Paths as the reader's root sees them (Linux: d_path from the
  // reader's root).
  PathBuf path(l.kernel().kmem());
  if (!path.p) return err(ENOMEM);
  std::string_view text = vnode_name(l, *m.vp, path.p);
  size_t n = text.size() < cap ? text.size() : cap;
  std::memcpy(buf, text.data(), n);
  return n;
}

}  // namespace procfs
}  // namespace rump
