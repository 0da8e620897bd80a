// CPU-time accounting, the accounting tick and the load average (see
// cputime.h).
#include "kern/cputime.h"

#include <rump/rumpuser.h>

#include <csignal>

#include "kern/clock.h"
#include "kern/copy.h"
#include "kern/curlwp.h"
#include "kern/fork.h"
#include "kern/kernel.h"
#include "kern/lwp.h"
#include "kern/proc.h"

namespace rump {

namespace {

// The time the record holds, with the current stretch. acct_lock held.
int64_t total_locked(LwpCpu& a) {
  int64_t t = a.done_ns;
  if (a.on) {
    int64_t now = 0;
    if (rumpuser_cpuclock_read(a.clock, &now) == 0 && now > a.base_ns) t += now - a.base_ns;
  }
  return t;
}

// Splits total in the proportion of the samples (half and half before any).
CpuUsage split(int64_t total, int64_t user_w, int64_t sys_w) {
  CpuUsage u;
  int64_t w = user_w + sys_w;
  if (w <= 0) {
    u.utime_ns = total / 2;
  } else {
    u.utime_ns = static_cast<int64_t>(static_cast<__int128>(total) * user_w / w);
  }
  u.stime_ns = total - u.utime_ns;
  return u;
}

}  // namespace

bool cpu_clocks_run() {
  uint64_t clk;
  return rumpuser_cpuclock_self(&clk) == 0;
}

namespace {

// Where a stretch on the calling thread begins or ends: the thread's last
// CPU clock reading if it is less than kLazyNs old (wall time), else a
// new one. Reading a thread's CPU clock is a host system call (about
// 0.1 to 2 us, against 25 ns for the monotonic clock), and rfork + release
// or a switch and back would otherwise read it four times; with a shared
// reading, consecutive stretches on a thread still add up to exactly the
// thread's time, and a boundary is at most kLazyNs of the thread's time
// early. False on a backend without CPU clocks.
constexpr int64_t kLazyNs = 50 * 1000;

bool boundary(uint64_t* clk, int64_t* cpu) {
  if (rumpuser_cpuclock_self(clk) != 0) return false;
  ThreadCtx::CpuMark& m = thread_ctx().cpu_mark;
  int64_t wall = mono_now_ns();
  if (m.clock == *clk && wall - m.wall_ns < kLazyNs) {
    *cpu = m.cpu_ns;
    return true;
  }
  if (rumpuser_cpuclock_read(*clk, cpu) != 0) return false;
  m = {*clk, *cpu, wall};
  return true;
}

}  // namespace

namespace {

void on_at(Lwp& l, uint64_t clk, int64_t now) {
  SpinLocker g(l.acct_lock());
  LwpCpu& a = l.acct_;
  if (a.on) return;
  a.clock = clk;
  a.base_ns = now;
  a.on = true;
}

void off_at(Lwp& l, bool read, uint64_t clk, int64_t now) {
  SpinLocker g(l.acct_lock());
  LwpCpu& a = l.acct_;
  if (!a.on) return;
  if (read && clk == a.clock) {
    if (now > a.base_ns) a.done_ns += now - a.base_ns;
  } else {
    a.done_ns = total_locked(a);
  }
  a.on = false;
  a.clock = 0;
}

}  // namespace

void cpu_on(Lwp& l) {
  uint64_t clk;
  int64_t now;
  if (boundary(&clk, &now)) on_at(l, clk, now);
}

void cpu_off(Lwp& l) {
  uint64_t clk = 0;
  int64_t now = 0;
  bool read = boundary(&clk, &now);
  off_at(l, read, clk, now);
}

void cpu_switch(Lwp* from, Lwp* to) {
  if (from == to) return;
  uint64_t clk = 0;
  int64_t now = 0;
  bool read = boundary(&clk, &now);
  if (from) off_at(*from, read, clk, now);
  if (to && read) on_at(*to, clk, now);
}

int64_t cpu_lwp_total_ns(Lwp& l) {
  SpinLocker g(l.acct_lock());
  return total_locked(l.acct_);
}

CpuUsage cpu_lwp_usage(Lwp& l) {
  CpuUsage u;
  {
    SpinLocker g(l.acct_lock());
    LwpCpu& a = l.acct_;
    u = split(total_locked(a), a.user_w, a.sys_w);
  }
  u.nvcsw = l.acct_.nvcsw.load(std::memory_order_relaxed);
  u.nivcsw = l.acct_.nivcsw.load(std::memory_order_relaxed);
  return u;
}

CpuUsage cpu_proc_usage(Proc& p, bool children) {
  MutexLocker g(p.lock_);
  if (children) return p.cpu_children_;
  CpuUsage u = p.cpu_dead_;
  for (Lwp& l : p.lwps_) u.add(cpu_lwp_usage(l));
  return u;
}

void cpu_lwp_gone_locked(Proc& p, Lwp& l) {
  p.lock_.assert_held();
  p.cpu_dead_.add(cpu_lwp_usage(l));
}

void cpu_reaped_locked(Proc& parent, Proc& child) {
  CpuUsage u;
  {
    MutexLocker g(child.lock_);
    u = child.cpu_dead_;
    u.add(child.cpu_children_);
  }
  MutexLocker g(parent.lock_);
  parent.cpu_children_.add(u);
}

uint64_t cpu_note_rss(Proc& p) {
  uint64_t bytes = 0;
  if (p.space_) bytes = p.space_->totals().resident;
  else if (rumpuser_rss_peak(&bytes) != 0) bytes = 0;
  uint64_t kib = bytes / 1024;
  MutexLocker g(p.lock_);
  if (kib > p.cpu_dead_.maxrss_kib) p.cpu_dead_.maxrss_kib = kib;
  return p.cpu_dead_.maxrss_kib;
}

void cpu_settle_host_rss(Proc& p) {
  bool host;
  {
    MutexLocker g(p.lock_);
    host = p.cpu_dead_.host_rss || p.cpu_children_.host_rss;
  }
  uint64_t bytes = 0;
  if (!host || rumpuser_rss_peak(&bytes) != 0) return;
  MutexLocker g(p.lock_);
  uint64_t kib = bytes / 1024;
  if (kib > p.cpu_dead_.maxrss_kib) p.cpu_dead_.maxrss_kib = kib;
  if (kib > p.cpu_children_.maxrss_kib) p.cpu_children_.maxrss_kib = kib;
  p.cpu_dead_.host_rss = p.cpu_children_.host_rss = false;
}

void cpu_note_exit_rss(Proc& p) {
  if (p.space_) {
    cpu_note_rss(p);
    return;
  }
  MutexLocker g(p.lock_);
  p.cpu_dead_.host_rss = true;
}

void cpu_fill_rusage(const CpuUsage& u, struct rusage& ru) {
  ru.ru_utime.tv_sec = static_cast<time_t>(u.utime_ns / kNsPerSec);
  ru.ru_utime.tv_usec = static_cast<suseconds_t>(u.utime_ns % kNsPerSec / 1000);
  ru.ru_stime.tv_sec = static_cast<time_t>(u.stime_ns / kNsPerSec);
  ru.ru_stime.tv_usec = static_cast<suseconds_t>(u.stime_ns % kNsPerSec / 1000);
  uint64_t kib = u.maxrss_kib;
  uint64_t host = 0;
  if (u.host_rss && rumpuser_rss_peak(&host) == 0 && host / 1024 > kib) kib = host / 1024;
  ru.ru_maxrss = static_cast<long>(kib);
  ru.ru_nvcsw = static_cast<long>(u.nvcsw);
  ru.ru_nivcsw = static_cast<long>(u.nivcsw);
}

// --- the tick

namespace {
// exp(-5 s / 1, 5, 15 min) in fixed point (Linux's EXP_1, EXP_5, EXP_15).
constexpr uint64_t kLoadExp[3] = {1884, 2014, 2037};

uint64_t calc_load(uint64_t load, uint64_t exp, uint64_t active) {
  uint64_t n = load * exp + active * (CpuTick::kLoadOne - exp);
  // Rounds up while rising, so that a steady load is reached.
  if (active >= load) n += CpuTick::kLoadOne - 1;
  return n >> CpuTick::kLoadShift;
}
}  // namespace

CpuTick::CpuTick(Kernel& k) : kernel_(k) {
  callout_.init(*k.services().callouts(), &CpuTick::fire, this);
  load_at_.store(mono_now_ns(), std::memory_order_relaxed);
}

void CpuTick::kick() {
  if (!clocks_) return;
  if (running_.load(std::memory_order_relaxed) || halted_.load(std::memory_order_relaxed)) return;
  if (running_.exchange(true)) return;
  kernel_.services().callouts()->start();
  idle_ = 0;
  callout_.schedule(kTickNs);
}

void CpuTick::kick_if_cheap() {
  if (running_.load(std::memory_order_relaxed)) return;
  if (kernel_.services().callouts()->started()) kick();
}

void CpuTick::halt() {
  halted_.store(true);
  callout_.halt();
}

void CpuTick::fire(void* arg) { static_cast<CpuTick*>(arg)->run(); }

void CpuTick::run() {
  if (halted_.load()) return;
  ticks_.fetch_add(1, std::memory_order_relaxed);
  Kernel& k = kernel_;
  bool used = false;
  bool armed_any = false;
  int active = 0;
  FatalSignals<16> fatal;
  {
    ProcTable& t = k.procs();
    MutexLocker g(t.lock());
    t.for_each_locked([&](Proc& p) {
      int64_t user = 0;
      int64_t total = 0;
      {
        MutexLocker pg(p.lock_);
        for (Lwp& l : p.lwps_) {
          SpinLocker lg(l.acct_lock());
          LwpCpu& a = l.acct_;
          if (!a.on) continue;
          int64_t now = total_locked(a);
          int64_t d = now - a.seen_ns;
          a.seen_ns = now;
          if (d <= 0) continue;
          if (l.kind() == Lwp::Kind::kKthread) {
            // Kernel threads (of proc0) run kernel code only. Their time
            // keeps no tick going (the tick's own callout thread is one)
            // and counts in no load.
            a.sys_w += d;
            continue;
          }
          bool in_kernel = l.cpu() != nullptr;
          if (in_kernel) a.sys_w += d;
          else a.user_w += d, user += d;
          total += d;
          if (in_kernel || d >= kTickNs / 2) active++;
        }
      }
      if (total > 0) used = true;
      bool armed = false;
      int due = itimer_charge_cpu(p, user, total, &armed);
      armed_any |= armed;
      armed_any |= itimer_cpu_timers(t, p, [&](int sig) { fatal.add(p.pid(), sig); });
      for (int sig : {SIGVTALRM, SIGPROF}) {
        if (!(due & (sig == SIGVTALRM ? kItimerVirtualDue : kItimerProfDue))) continue;
        fatal.post(p, sig);
      }
    });
  }
  fatal.kill_all(k);

  int64_t now = mono_now_ns();
  if (now - load_at_.load(std::memory_order_relaxed) >= kLoadPeriodNs) sample_load(now, active);

  idle_ = used ? 0 : idle_ + 1;
  if (armed_any || idle_ < kIdleTicks) {
    callout_.schedule(kTickNs);
    return;
  }
  // Idle: stop. A kick that saw the tick running just before this store
  // restarts nothing; its LWP is charged its full time anyway, only the
  // user/system split waits for the next kick.
  running_.store(false);
}

void CpuTick::sample_load(int64_t now, int active) {
  int64_t at = load_at_.load(std::memory_order_relaxed);
  int64_t periods = (now - at) / kLoadPeriodNs;
  if (periods <= 0) return;
  // The periods before the last one passed while the tick slept: nothing
  // ran then.
  for (int i = 0; i < 3; i++) {
    uint64_t v = load_[i].load(std::memory_order_relaxed);
    for (int64_t n = 1; n < periods && v != 0; n++) v = calc_load(v, kLoadExp[i], 0);
    v = calc_load(v, kLoadExp[i], static_cast<uint64_t>(active) * kLoadOne);
    load_[i].store(v, std::memory_order_relaxed);
  }
  load_at_.store(at + periods * kLoadPeriodNs, std::memory_order_relaxed);
}

void CpuTick::loadavg(uint64_t out[3]) const {
  int64_t periods = (mono_now_ns() - load_at_.load(std::memory_order_relaxed)) / kLoadPeriodNs;
  // While the tick is stopped nothing runs: the averages decay.
  if (running()) periods = 0;
  for (int i = 0; i < 3; i++) {
    uint64_t v = load_[i].load(std::memory_order_relaxed);
    for (int64_t n = 0; n < periods && v != 0; n++) v = calc_load(v, kLoadExp[i], 0);
    out[i] = v;
  }
}

}  // namespace rump

namespace rump {

namespace {
int64_t pick(const CpuUsage& u, int which) {
  return which == kCpuClockVirt ? u.utime_ns : u.total_ns();
}
}  // namespace

Result<CpuClockId> cpu_clock_resolve(Lwp& l, clockid_t clk) {
  Proc& self = l.proc();
  if (clk == CLOCK_THREAD_CPUTIME_ID) return CpuClockId{self.pid(), l.tid(), kCpuClockSched};
  if (clk == CLOCK_PROCESS_CPUTIME_ID) return CpuClockId{self.pid(), 0, kCpuClockSched};
  if (clk >= 0) return err(EINVAL);
  int which = clk & 3;
  if (which == 3) return err(EINVAL);  // a clock fd: none here
  bool thread = (clk & kCpuClockThread) != 0;
  pid_t pid = static_cast<pid_t>(~(clk >> 3));
  if (pid == 0) return CpuClockId{self.pid(), thread ? l.tid() : 0, which};
  ProcTable& t = l.kernel().procs();
  MutexLocker g(t.lock());
  if (thread) {
    Lwp* x = t.find_tid_locked(pid);
    if (!x || x->dead_.load(std::memory_order_acquire) || &x->proc() != &self) return err(EINVAL);
    return CpuClockId{self.pid(), pid, which};
  }
  Proc* p = t.find_locked(pid);
  if (!p) return err(EINVAL);
  p->assert_tree_locked();
  if (p->state_ == Proc::State::kEmbryo) return err(EINVAL);
  return CpuClockId{pid, 0, which};
}

Result<int64_t> cpu_clock_value_locked(ProcTable& t, const CpuClockId& c) {
  t.lock().assert_held();
  if (c.tid != 0) {
    Lwp* x = t.find_tid_locked(c.tid);
    if (!x || x->dead_.load(std::memory_order_acquire) || x->proc().pid() != c.pid) return err(EINVAL);
    return pick(cpu_lwp_usage(*x), c.which);
  }
  Proc* p = t.find_locked(c.pid);
  if (!p) return err(EINVAL);
  return pick(cpu_proc_usage(*p, false), c.which);
}

Result<int64_t> cpu_clock_read(Lwp& l, clockid_t clk) {
  Kernel& k = l.kernel();
  k.services().cputick()->kick();
  // The caller's own clocks need no lookup.
  if (clk == CLOCK_THREAD_CPUTIME_ID) return cpu_lwp_total_ns(l);
  if (clk == CLOCK_PROCESS_CPUTIME_ID) return cpu_proc_usage(l.proc(), false).total_ns();
  CpuClockId c = TRY(cpu_clock_resolve(l, clk));
  if (c.pid == l.proc().pid()) {
    if (c.tid == l.tid()) return pick(cpu_lwp_usage(l), c.which);
    if (c.tid == 0) return pick(cpu_proc_usage(l.proc(), false), c.which);
  }
  ProcTable& t = k.procs();
  MutexLocker g(t.lock());
  return cpu_clock_value_locked(t, c);
}

int64_t cpu_clock_res(clockid_t clk) {
  if (clk == CLOCK_PROCESS_CPUTIME_ID || clk == CLOCK_THREAD_CPUTIME_ID || (clk & 3) == kCpuClockSched) return 1;
  return CpuTick::kTickNs;
}

}  // namespace rump
