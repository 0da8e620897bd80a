// cputime.h: CPU-time accounting, the accounting tick and the load average.
//
// What an LWP is charged: the CPU time the host gives the host thread it
// runs on, while it runs there. An LWP goes "on" its thread when the thread
// takes it up (rump_lwproc_switch and the rfork/newlwp calls that bind it,
// or the thread's first call as an implicit LWP) and "off" when the thread
// lets go of it; the time between is read from the thread's CPU clock
// through a hypercall (rumpuser_cpuclock_*), and the clock is read only
// there and by readers, never on the system call path. So a bound thread's
// time in user code counts as its LWP's, as a Linux thread's does. Switches
// in quick succession on one thread share a reading (cputime.cc,
// boundary()): a boundary can be up to 50 us of the thread's time early,
// and the stretches still add up to exactly the thread's time.
//
// User against system time: a tick (a callout every kTickNs) samples each
// LWP that is on a thread, and charges the CPU time it used since the last
// sample to system time if the LWP holds a virtual CPU at that moment, else
// to user time; reported times split an LWP's exact total in the
// proportion of its samples (as the BSDs' statclock does), half and half
// before the first one. The same tick charges ITIMER_VIRTUAL (user time)
// and ITIMER_PROF (all time) and posts SIGVTALRM/SIGPROF when they expire,
// and samples the load average every 5 s.
//
// The tick runs only while the kernel is busy: it starts when a thread
// takes up an LWP (if the callout thread runs already), when a CPU-time
// interval timer is armed and when a process reads its CPU time (then
// starting the callout thread if need be), and stops after kIdleTicks samples in which
// no LWP used CPU time and no CPU-time interval timer was armed. A stopped
// tick costs nothing; the load average decays over the time it did not
// run when it starts again (or is read).
//
// Kernel threads (the callout thread, the flushers: LWPs of proc0) are
// charged too, from when their host thread starts until their function
// returns, all of it as system time. So proc0's totals are the kernel's
// own time, and every figure summed over the processes (/proc/stat's CPU
// lines, and so its idle time) counts them; they keep no tick running and
// add nothing to the load average.
//
// Backends without per-thread CPU clocks ("sim") charge nothing.
//
// Locking: an LWP's record is guarded by its acct_lock() (a leaf); a
// process's totals of its ended LWPs and reaped children by its lock_.
#pragma once

#include <sys/resource.h>

#include <ctime>

#include <atomic>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "base/result.h"
#include "kern/callout.h"

namespace rump {

class Kernel;
class Lwp;
class Proc;
class ProcTable;

// What getrusage reports, in the kernel's units.
struct CpuUsage {
  int64_t utime_ns = 0;
  int64_t stime_ns = 0;
  uint64_t nvcsw = 0;   // voluntary switches: sleeps that waited
  uint64_t nivcsw = 0;  // involuntary ones: waits for a virtual CPU
  uint64_t maxrss_kib = 0;  // peak resident set (a maximum, not a sum)
  // Some of it ran in the host's address space, whose peak is the host
  // process's: read when reported (cpu_fill_rusage), not at every exit.
  bool host_rss = false;
  void add(const CpuUsage& o) {
    utime_ns += o.utime_ns;
    stime_ns += o.stime_ns;
    nvcsw += o.nvcsw;
    nivcsw += o.nivcsw;
    if (o.maxrss_kib > maxrss_kib) maxrss_kib = o.maxrss_kib;
    host_rss |= o.host_rss;
  }
  int64_t total_ns() const { return utime_ns + stime_ns; }
};

// An LWP's accounting record (Lwp::acct_), guarded by Lwp::acct_lock().
struct LwpCpu {
  uint64_t clock = 0;    // the host thread's CPU clock, while on
  bool on = false;
  int64_t base_ns = 0;   // that clock's reading when the LWP went on
  int64_t done_ns = 0;   // time of the finished stretches
  int64_t seen_ns = 0;   // the total at the last tick
  int64_t user_w = 0;    // time the ticks found in user code
  int64_t sys_w = 0;     // and holding a virtual CPU
  std::atomic<uint64_t> nvcsw{0};
  std::atomic<uint64_t> nivcsw{0};
};

// Starts charging l to the calling host thread (which now runs it).
void cpu_on(Lwp& l);
// Stops charging l; called on the thread that runs it.
void cpu_off(Lwp& l);
// cpu_off(*from) then cpu_on(*to) (either may be null), at one reading.
void cpu_switch(Lwp* from, Lwp* to);
// l's CPU time so far (any thread).
int64_t cpu_lwp_total_ns(Lwp& l);
// False where the backend has no CPU-time clocks (sim: its time is
// virtual), so CPU times stay zero and never advance.
bool cpu_clocks_run();
// l's usage, split into user and system time.
CpuUsage cpu_lwp_usage(Lwp& l);
// The process's usage: its LWPs' and its ended LWPs'. children: its
// reaped children's (and theirs) instead.
CpuUsage cpu_proc_usage(Proc& p, bool children);
// l leaves p's list: its time goes to p's total. p.lock_ held.
void cpu_lwp_gone_locked(Proc& p, Lwp& l);
// A child is reaped: its time and its children's go to the parent's
// children total. The process table's lock held.
void cpu_reaped_locked(Proc& parent, Proc& child);
// rusage of u (with the host process's peak if u.host_rss).
void cpu_fill_rusage(const CpuUsage& u, struct rusage& ru);
// The peak resident set of p (ru_maxrss), sampled now and kept with p's
// totals, so that it reaches its parent with them when it is reaped
// (children's peaks are their maximum, as Linux's). An isolated process's
// is the most pages its address space held when sampled: the process
// samples it when it asks (getrusage) and as it exits. A process in the
// host's address space shares that space with the host program and every
// other such process, as a thread shares its process's: it reports the
// host process's peak (rumpuser_rss_peak; 0 on "sim"). Called by p's own
// LWP, which keeps p's space, with no lock held. Returns the peak, KiB.
uint64_t cpu_note_rss(Proc& p);
// At exit: cpu_note_rss for an isolated process; a process in the host's
// space is only marked (host_rss), so that exiting costs no host call.
void cpu_note_exit_rss(Proc& p);
// A zombie is reaped: a peak still marked host_rss becomes the host
// process's peak now (one host call), so that what wait4 reports and what
// the parent's children total keeps are the same number from then on.
void cpu_settle_host_rss(Proc& p);

// The per-kernel tick (KernelServices::cputick()).
class CpuTick : public KObject {
 public:
  static constexpr int64_t kTickNs = 4 * 1000 * 1000;      // 250 Hz, as Linux's usual HZ
  static constexpr int kIdleTicks = 64;                   // about a quarter of a second
  static constexpr int64_t kLoadPeriodNs = 5LL * 1000 * 1000 * 1000;  // Linux's LOAD_FREQ

  explicit CpuTick(Kernel& k);
  // Starts the tick if it is stopped. No lock may be held (it may start
  // the callout thread).
  void kick();
  // kick(), but only if the callout thread runs already: taking up an LWP
  // never makes a host thread (nor uses up a pid for it).
  void kick_if_cheap();
  // Stops it for good (halt).
  void halt();
  bool running() const { return running_.load(std::memory_order_relaxed); }
  // The 1, 5 and 15 minute load averages, fixed point (kLoadOne = 1.0).
  static constexpr int kLoadShift = 11;
  static constexpr uint64_t kLoadOne = 1u << kLoadShift;
  void loadavg(uint64_t out[3]) const;
  // Ticks run so far (tests and diagnostics).
  uint64_t ticks() const { return ticks_.load(std::memory_order_relaxed); }

 private:
  static void fire(void* arg);
  void run();
  // Decays the averages for the whole periods that passed since the last
  // sample (no LWP ran while the tick was stopped), then folds in active.
  void sample_load(int64_t now, int active);

  Kernel& kernel_;
  // Without CPU clocks (sim) nothing is ever charged: the tick never runs,
  // so an armed ITIMER_PROF is no timer that keeps virtual time going.
  const bool clocks_ = cpu_clocks_run();
  Callout callout_;
  std::atomic<bool> running_{false};
  std::atomic<bool> halted_{false};
  std::atomic<uint64_t> ticks_{0};
  int idle_ = 0;  // the callout's own
  std::atomic<int64_t> load_at_{0};  // monotonic time of the last load sample
  std::atomic<uint64_t> load_[3] = {};
};

}  // namespace rump

namespace rump {
// kern/itimer.cc: charges p's ITIMER_VIRTUAL with user_ns and ITIMER_PROF
// with total_ns. Returns the signals due (kItimerVirtualDue,
// kItimerProfDue); *armed says whether either timer is still armed.
// Takes p.lock_.
inline constexpr int kItimerVirtualDue = 1;
inline constexpr int kItimerProfDue = 2;
int itimer_charge_cpu(Proc& p, int64_t user_ns, int64_t total_ns, bool* armed);
// Fires p's POSIX timers on CPU-time clocks that are due, as the tick finds
// the clocks now, posting their signals; fatal(sig) is told of each one
// that ends p (the caller ends it once it holds no lock). Returns true if
// one is still armed (the tick must go on). The process table's lock held
// (t.lock()), no lock of p.
bool itimer_cpu_timers(ProcTable& t, Proc& p, absl::FunctionRef<void(int sig)> fatal);
}  // namespace rump

namespace rump {
// Linux's CPU-time clock ids (clock_getcpuclockid, pthread_getcpuclockid):
// ~pid << 3 | per-thread bit (4) | which (0 PROF: user + system, 1 VIRT:
// user, 2 SCHED: all, as PROF here); 3 names a clock fd. pid 0: the
// caller's own.
inline constexpr int kCpuClockProf = 0;
inline constexpr int kCpuClockVirt = 1;
inline constexpr int kCpuClockSched = 2;
inline constexpr int kCpuClockThread = 4;
// A CPU-time clock as what it measures: process pid's, or thread tid's
// (tid != 0; pid is then its process's), which one (kCpuClock*).
struct CpuClockId {
  pid_t pid = 0;
  pid_t tid = 0;
  int which = kCpuClockSched;
};
// Is clk a CPU-time clock (the two constants or an encoded one)?
inline bool is_cpu_clock(clockid_t clk) { return clk == CLOCK_PROCESS_CPUTIME_ID || clk == CLOCK_THREAD_CPUTIME_ID || clk < 0; }
// The reading of CPU-time clock clk as seen by l; EINVAL for a malformed
// id, a clock fd, a process or thread that does not exist or (thread
// clocks) is not one of l's process. Kicks the tick.
Result<int64_t> cpu_clock_read(Lwp& l, clockid_t clk);
// The resolution Linux reports: 1 ns for SCHED clocks, a tick otherwise.
int64_t cpu_clock_res(clockid_t clk);
// What CPU-time clock clk names for l (errors as cpu_clock_read).
Result<CpuClockId> cpu_clock_resolve(Lwp& l, clockid_t clk);
// The clock's reading now; EINVAL once its process or thread is gone (or
// the thread left its process). The process table's lock held (t.lock()).
Result<int64_t> cpu_clock_value_locked(ProcTable& t, const CpuClockId& c);
}  // namespace rump
