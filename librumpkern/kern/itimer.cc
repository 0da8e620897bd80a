// Interval timers (getitimer, setitimer, alarm) and POSIX timers
// (timer_create, timer_settime, timer_gettime, timer_getoverrun,
// timer_delete).
//
// A process's timers live in a ProcTimers made on its first timer call and
// dropped when it exits (a ProcExtension: a child starts with none, as
// fork(2) children do). Each armed timer is a Callout on the kernel's
// callout queue; when it fires, the callout thread posts the timer's
// signal to the process with post_signal (kern/fork.h), or to the LWP a
// SIGEV_THREAD_ID timer names (to the process once that LWP is gone), and
// re-arms a periodic timer.
//
// Clocks: ITIMER_REAL and timers on the monotonic clocks run on the
// monotonic clock; an absolute CLOCK_REALTIME timer runs on the kernel's
// realtime clock (a clock set back makes it fire later: the callout re-arms
// when it finds the deadline not yet reached). ITIMER_VIRTUAL and
// ITIMER_PROF count down the process's user and total CPU time: the
// accounting tick (kern/cputime.h) charges them through itimer_charge_cpu
// and posts SIGVTALRM and SIGPROF. POSIX timers on CPU-time clocks
// (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID and Linux's encoded
// per-process and per-thread clocks, of any process as Linux allows) have
// no callout: their expiry is a reading of that clock, and the same tick
// looks at them (itimer_cpu_timers), so they fire within a tick of the
// clock reaching it, as Linux's do. A timer whose thread or process has
// gone stays, disarmed (timer_settime then is ESRCH, as Linux).
//
// A POSIX timer's signal carries Linux's siginfo (SI_TIMER, the timer id,
// the sigevent's value) in a record that names the timer: timer_delete
// marks it dropped, so that a deleted timer's signal is never taken, as
// Linux (kern/signal.h). ITIMER_REAL's SIGALRM is SI_KERNEL, as Linux's.
//
// Overruns: a timer's signal counts as delivered once it is no longer
// pending. Expirations while it is
// still pending are overruns; timer_getoverrun reports those of the signal
// delivered last, as Linux.
//
// Locking: the process's lock_ guards every timer of the process (it ranks
// below the callout queue's lock, which arming takes). It is not held while
// a signal is posted (post_signal takes it) nor while a callout is halted
// (the callout function takes it).
#include <sys/time.h>

#include <climits>
#include <csignal>
#include <cstring>
#include <ctime>

#include "kern/callout.h"
#include "kern/clock.h"
#include "kern/component.h"
#include "kern/copy.h"
#include "kern/cputime.h"
#include "kern/fork.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif
#ifndef CLOCK_TAI
#define CLOCK_TAI 11
#endif

namespace rump {

namespace {

constexpr int kMaxPosixTimers = 64;
constexpr int64_t kNsPerUsec = 1000;

enum class Base { kMono, kReal, kCpu };

// One timer: a POSIX timer or the process's ITIMER_REAL.
struct Timer : public KObject {
  explicit Timer(Proc& p) : proc(p), lock_(p.lock_) {}

  Proc& proc;
  Mutex& lock_;  // the process's lock_
  int id = -1;   // -1: ITIMER_REAL
  clockid_t clock = CLOCK_MONOTONIC;
  int notify = SIGEV_SIGNAL;  // SIGEV_SIGNAL, SIGEV_NONE (SIGEV_THREAD_ID: as SIGEV_SIGNAL)
  int signo = SIGALRM;
  pid_t tid = 0;  // SIGEV_THREAD_ID: the LWP the signal goes to; 0: the process
  bool cpu = false;  // on CPU-time clock cpu_clock (Base::kCpu, no callout)
  CpuClockId cpu_clock;
  uint64_t value = 0;  // the sigevent's sigval (POSIX timers)
  Callout callout;
  Timer* next_dead = nullptr;  // ProcTimers::dead
  bool deleted ABSL_GUARDED_BY(lock_) = false;  // by timer_delete

  bool armed ABSL_GUARDED_BY(lock_) = false;
  Base base ABSL_GUARDED_BY(lock_) = Base::kMono;
  int64_t expires ABSL_GUARDED_BY(lock_) = 0;   // on base's clock, ns
  int64_t interval ABSL_GUARDED_BY(lock_) = 0;  // ns, 0: one shot
  bool queued ABSL_GUARDED_BY(lock_) = false;   // its signal was posted and not yet seen delivered
  int64_t overrun ABSL_GUARDED_BY(lock_) = 0;   // since the signal was posted
  int64_t overrun_last ABSL_GUARDED_BY(lock_) = 0;
};

class ProcTimers : public KObject {
 public:
  explicit ProcTimers(Proc& p) : real(p), lock_(p.lock_) {}
  Timer real;  // ITIMER_REAL
  Mutex& lock_;  // the process's lock_
  Timer* posix[kMaxPosixTimers] ABSL_GUARDED_BY(lock_) = {};
  // Deleted timers whose callout was running at the time (see
  // sys_timer_delete): freed once it is not, or at exit.
  Timer* dead ABSL_GUARDED_BY(lock_) = nullptr;
  int next_id ABSL_GUARDED_BY(lock_) = 0;
  // Timers in posix[] on CPU-time clocks (the tick looks only if any).
  int cpu_timers ABSL_GUARDED_BY(lock_) = 0;
  // ITIMER_VIRTUAL and ITIMER_PROF: value and interval, ns.
  int64_t cpu_value[2] ABSL_GUARDED_BY(lock_) = {};
  int64_t cpu_interval[2] ABSL_GUARDED_BY(lock_) = {};
};

Result<void> timers_fork(Proc&, Proc&, uint32_t) { return {}; }
void timers_exit(Proc& p);

ProcExtension g_timers_ext{"timers", &timers_fork, &timers_exit};
const int g_timers_slot = register_proc_extension(&g_timers_ext);
const ProcSlot<ProcTimers> g_timers{g_timers_ext};

// a + b for b >= 0, saturating (huge intervals must not wrap).
int64_t sat_add(int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; }

// The next expiry of a periodic timer due at `expires` (<= now): the first
// one after now. Returns the number of whole periods skipped.
int64_t forward(int64_t& expires, int64_t interval, int64_t now) {
  int64_t missed = (now - expires) / interval;
  expires = sat_add(expires, interval);
  if (missed > 0) {
    int64_t step = missed > INT64_MAX / interval ? INT64_MAX : missed * interval;
    expires = sat_add(expires, step);
  }
  return missed;
}

int64_t base_now(Kernel& k, Base b) { return b == Base::kReal ? k.clock().realtime_ns() : mono_now_ns(); }

// The LWP tid of p, if it is still one of p's.
Lwp* lwp_of_locked(Proc& p, pid_t tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_) {
  for (Lwp& l : p.lwps_)
    if (l.tid() == tid) return &l;
  return nullptr;
}

// Posts a timer's signal: to the process, or to its LWP tid while that
// one lives (found under the process table's lock, which keeps it).
// Returns true if the signal is fatal and the process must be ended. A
// POSIX timer's (id >= 0) carries SI_TIMER, its id and value, and names
// the timer (owner) in its record.
struct TimerPost {
  pid_t tid;
  int sig;
  int id;
  uint64_t value;
  const void* owner;
};

TimerPost timer_post_of(Timer& t, int sig) { return TimerPost{t.tid, sig, t.id, t.value, &t}; }

bool post_timer_signal_locked(ProcTable& t, Proc& p, const TimerPost& tp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.lock()) {
  if (tp.id < 0 && tp.tid == 0) return post_signal(p, tp.sig);
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  info.si_signo = tp.sig;
  info.si_code = SI_KERNEL;
  if (tp.id >= 0) {
    info.si_code = SI_TIMER;
    info.si_timerid = tp.id;
    std::memcpy(&info.si_value, &tp.value, sizeof info.si_value);
  }
  Lwp* x = nullptr;
  if (tp.tid) {
    x = t.find_tid_locked(tp.tid);
    if (x && (&x->proc() != &p || x->dead_.load(std::memory_order_acquire) || !x->proc_hook_.is_linked())) x = nullptr;
  }
  Result<bool> r = post_signal_info(p, x, info, tp.id >= 0 ? tp.owner : nullptr);
  return r.ok() && *r;
}

bool post_timer_signal(Proc& p, const TimerPost& tp) {
  ProcTable& t = p.kernel().procs();
  MutexLocker g(t.lock());
  return post_timer_signal_locked(t, p, tp);
}

// After a post: a timer deleted while its signal was on the way drops it
// as timer_delete drops the ones already pending. owner is alive (its
// callout is running) or gone (then a record naming it is dropped too).
void drop_if_deleted(Proc& p, const void* owner, bool deleted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_) {
  if (deleted) sig_drop_owned_locked(p, owner);
}

void timer_fire(void* arg);

void timer_init(Timer& t, Kernel& k) { t.callout.init(*k.services().callouts(), &timer_fire, &t); }

// The process's timers, made on first use. ENOMEM. Starts the callout
// thread, so that timers can be armed under the process's lock.
Result<ProcTimers*> timers_of(Proc& p) {
  p.kernel().services().callouts()->start();
  MutexLocker g(p.lock_);
  if (ProcTimers* pt = g_timers.get(p)) return pt;
  auto* pt = new (p.kernel().kmem()) ProcTimers(p);
  if (!pt) return err(ENOMEM);
  timer_init(pt->real, p.kernel());
  g_timers.set(p, pt);
  return pt;
}

// Time left before t fires (0: disarmed). A timer that is due but whose
// callout has not run yet reports a little time left rather than none
// (Linux reports 1 ns for its POSIX timers and 1 us for ITIMER_REAL).
// now: the reading of t's clock (base_now, or its CPU-time clock's).
int64_t remaining_locked(Timer& t, int64_t now, int64_t due_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.lock_) {
  if (!t.armed) return 0;
  int64_t left = t.expires - now;
  return left > 0 ? left : due_ns;
}

// Arms (value > 0) or disarms t; value is relative unless abs. now: the
// reading of a CPU-time timer's clock (others read their base's).
void arm_locked(Timer& t, int64_t value, int64_t interval, bool abs, Base base, int64_t now = 0)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.lock_) {
  t.interval = 0;
  t.armed = false;
  t.callout.stop();
  t.overrun = 0;
  t.overrun_last = 0;
  t.queued = false;
  if (value <= 0) return;
  Kernel& k = t.proc.kernel();
  t.base = base;
  if (base != Base::kCpu) now = base_now(k, base);
  t.expires = abs ? value : sat_add(now, value);
  t.interval = interval;
  t.armed = true;
  if (t.notify != SIGEV_NONE && base != Base::kCpu) t.callout.schedule(t.expires - now);
}

// t is due (its clock reads now >= expires): moves a periodic timer on,
// counting the periods that passed entirely as overruns, or disarms a
// one-shot. Returns the signal to post, or 0 where the one posted last is
// still pending (another overrun).
int expire_locked(Timer& t, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.lock_) {
  Proc& p = t.proc;
  if (t.interval > 0) t.overrun += forward(t.expires, t.interval, now);
  else t.armed = false;
  SigSet pend = p.sigpending_.load(std::memory_order_acquire);
  p.lock_.assert_held();  // t.lock_ is the process's lock_
  if (t.tid)
    if (Lwp* x = lwp_of_locked(p, t.tid)) pend |= x->sigpending_.load(std::memory_order_acquire);
  bool pending = (pend & sig_bit(t.signo)) != 0;
  if (t.queued && pending) {
    t.overrun++;
    return 0;
  }
  if (t.queued) {
    // The signal posted last was delivered: its overruns are frozen.
    t.overrun_last = t.overrun;
    t.overrun = 0;
  }
  t.queued = true;
  return t.signo;
}

// The callout: posts the timer's signal and re-arms a periodic timer.
void timer_fire(void* arg) {
  Timer& t = *static_cast<Timer*>(arg);
  Proc& p = t.proc;
  Kernel& k = p.kernel();
  int sig = 0;
  TimerPost tp{};
  {
    MutexLocker g(t.lock_);
    if (!t.armed) return;
    int64_t now = base_now(k, t.base);
    if (now < t.expires) {
      // The realtime clock was set back: not due yet.
      t.callout.schedule(t.expires - now);
      return;
    }
    sig = expire_locked(t, now);
    tp = timer_post_of(t, sig);
    if (t.armed) t.callout.schedule(t.expires - now);
  }
  if (!sig) return;
  bool fatal = post_timer_signal(p, tp);
  if (tp.id >= 0) {
    // t lives while this function runs (sys_timer_delete).
    MutexLocker g(t.lock_);
    p.lock_.assert_held();  // t.lock_ is the process's lock_
    drop_if_deleted(p, &t, t.deleted);
    if (t.deleted) fatal = false;
  }
  // Last: a fatal signal ends the process, whose exit frees t.
  if (fatal) kill_proc(k, p.pid(), sig);
}

void timer_halt(Timer& t) {
  {
    MutexLocker g(t.lock_);
    t.armed = false;
  }
  t.callout.halt();
}

void timers_exit(Proc& p) {
  // No LWP of p is left to make timers, and the tick only reads the slot:
  // a process that never made one has nothing to lock for.
  if (!g_timers.get(p)) return;
  ProcTimers* pt;
  {
    MutexLocker g(p.lock_);
    pt = g_timers.take(p);
  }
  if (!pt) return;
  timer_halt(pt->real);
  Timer* all[kMaxPosixTimers];
  {
    MutexLocker g(pt->lock_);
    std::memcpy(all, pt->posix, sizeof all);
    std::memset(pt->posix, 0, sizeof pt->posix);
  }
  for (Timer* t : all) {
    if (!t) continue;
    timer_halt(*t);
    delete t;
  }
  Timer* dead;
  {
    MutexLocker g(pt->lock_);
    dead = pt->dead;
    pt->dead = nullptr;
  }
  while (dead) {
    Timer* next = dead->next_dead;
    timer_halt(*dead);
    delete dead;
    dead = next;
  }
  delete pt;
}

// --- interval timers

Result<int64_t> timeval_ns(const timeval& tv) {
  if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000) return err(EINVAL);
  constexpr int64_t kMaxSec = INT64_MAX / kNsPerSec - 1;
  int64_t sec = tv.tv_sec > kMaxSec ? kMaxSec : static_cast<int64_t>(tv.tv_sec);
  return sec * kNsPerSec + tv.tv_usec * kNsPerUsec;
}

timeval ns_timeval(int64_t ns) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ns / kNsPerSec);
  tv.tv_usec = static_cast<suseconds_t>((ns % kNsPerSec) / kNsPerUsec);
  return tv;
}

itimerval get_itimer(ProcTimers& pt, int which) {
  itimerval v{};
  MutexLocker g(pt.lock_);
  if (which == ITIMER_REAL) {
    Timer& t = pt.real;
    t.lock_.assert_held();
    v.it_value = ns_timeval(remaining_locked(t, mono_now_ns(), kNsPerUsec));
    v.it_interval = ns_timeval(t.armed ? t.interval : 0);
  } else {
    int i = which == ITIMER_VIRTUAL ? 0 : 1;
    v.it_value = ns_timeval(pt.cpu_value[i]);
    v.it_interval = ns_timeval(pt.cpu_interval[i]);
  }
  return v;
}

// setitimer's work; the old value is returned.
itimerval set_itimer(ProcTimers& pt, int which, int64_t value, int64_t interval) {
  itimerval old = get_itimer(pt, which);
  MutexLocker g(pt.lock_);
  if (which == ITIMER_REAL) {
    Timer& t = pt.real;
    t.lock_.assert_held();
    arm_locked(t, value, interval, false, Base::kMono);
  } else {
    int i = which == ITIMER_VIRTUAL ? 0 : 1;
    pt.cpu_value[i] = value;
    pt.cpu_interval[i] = value ? interval : 0;
  }
  return old;
}

// Charges one CPU-time interval timer with ns; true if it expired.
bool charge_cpu_timer(int64_t& value, int64_t interval, int64_t ns) {
  if (value <= 0 || ns <= 0) return false;
  value -= ns;
  if (value > 0) return false;
  // Expired: a periodic timer goes on from where it should have fired
  // (the overshoot counts against the next period, as Linux).
  if (interval > 0) {
    while (value <= 0) value += interval;
  } else {
    value = 0;
  }
  return true;
}

bool valid_which(int which) { return which == ITIMER_REAL || which == ITIMER_VIRTUAL || which == ITIMER_PROF; }

}  // namespace

int itimer_charge_cpu(Proc& p, int64_t user_ns, int64_t total_ns, bool* armed) {
  MutexLocker g(p.lock_);
  ProcTimers* pt = g_timers.get(p);
  *armed = false;
  if (!pt) return 0;
  pt->lock_.assert_held();  // the process's lock_
  int due = 0;
  if (charge_cpu_timer(pt->cpu_value[0], pt->cpu_interval[0], user_ns)) due |= kItimerVirtualDue;
  if (charge_cpu_timer(pt->cpu_value[1], pt->cpu_interval[1], total_ns)) due |= kItimerProfDue;
  *armed = pt->cpu_value[0] > 0 || pt->cpu_value[1] > 0;
  return due;
}

Result<long> sys_getitimer(Lwp& l, int which, UserPtr<struct itimerval> curr_value) {
  if (!valid_which(which)) return err(EINVAL);
  ProcTimers* pt = TRY(timers_of(l.proc()));
  itimerval v = get_itimer(*pt, which);
  TRY(copyout_obj(l, v, curr_value));
  return 0;
}

Result<long> sys_setitimer(Lwp& l, int which, UserPtr<struct itimerval> new_value,
                           UserPtr<struct itimerval> old_value) {
  // A null new value disarms (an old Linux misfeature, still accepted).
  itimerval nv{};
  if (new_value) nv = TRY(copyin_obj(l, new_value));
  int64_t value = TRY(timeval_ns(nv.it_value));
  int64_t interval = TRY(timeval_ns(nv.it_interval));
  if (!valid_which(which)) return err(EINVAL);
  ProcTimers* pt = TRY(timers_of(l.proc()));
  itimerval old = set_itimer(*pt, which, value, interval);
  // The tick charges CPU-time timers.
  if (which != ITIMER_REAL && value > 0) l.kernel().services().cputick()->kick();
  if (old_value) TRY(copyout_obj(l, old, old_value));
  return 0;
}

Result<long> sys_alarm(Lwp& l, unsigned int seconds) {
  ProcTimers* pt = TRY(timers_of(l.proc()));
  itimerval old = set_itimer(*pt, ITIMER_REAL, static_cast<int64_t>(seconds) * kNsPerSec, 0);
  // What was left, rounded to the nearest second, and at least 1 if any.
  long left = old.it_value.tv_sec;
  if ((left == 0 && old.it_value.tv_usec != 0) || old.it_value.tv_usec >= 500000) left++;
  return left;
}

// --- POSIX timers

namespace {

// Linux's struct sigevent on x86-64 (64 bytes).
struct KernelSigevent {
  uint64_t value;  // sigval
  int signo;
  int notify;
  int tid;  // SIGEV_THREAD_ID target (the union's first member)
  char pad[44];
};
static_assert(sizeof(KernelSigevent) == 64);

Result<Timer*> find_timer_locked(ProcTimers& pt, int id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pt.lock_) {
  if (id < 0) return err(EINVAL);
  for (Timer* t : pt.posix)
    if (t && t->id == id) return t;
  return err(EINVAL);
}

// The thread id names an LWP of p.
bool lwp_of(Proc& p, pid_t tid) {
  MutexLocker g(p.lock_);
  return lwp_of_locked(p, tid) != nullptr;
}

// What a CPU-time timer's clock reads, taken with no timer lock held
// (reading a process's clock takes its lock).
struct ClockNow {
  bool cpu = false;   // the timer is on a CPU-time clock
  bool gone = false;  // whose thread or process has gone
  int64_t ns = 0;
};

Result<ClockNow> clock_now_of(Lwp& l, ProcTimers& pt, int id) {
  ClockNow n;
  CpuClockId c;
  {
    MutexLocker g(pt.lock_);
    Timer* t = TRY(find_timer_locked(pt, id));
    if (!t->cpu) return n;
    n.cpu = true;
    c = t->cpu_clock;
  }
  ProcTable& tab = l.kernel().procs();
  MutexLocker g(tab.lock());
  Result<int64_t> v = cpu_clock_value_locked(tab, c);
  if (v.ok()) n.ns = *v;
  else n.gone = true;
  return n;
}

// cn: the reading of a CPU-time timer's clock (clock_now_of).
Result<itimerspec> get_timer_locked(Timer& t, const ClockNow& cn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.lock_) {
  itimerspec v{};
  if (t.cpu && cn.gone) t.armed = false;
  int64_t now = t.cpu ? cn.ns : base_now(t.proc.kernel(), t.base);
  if (t.armed && t.notify == SIGEV_NONE && t.interval > 0) {
    // A SIGEV_NONE timer has no callout: move it past now here.
    if (now >= t.expires) forward(t.expires, t.interval, now);
  }
  int64_t left = remaining_locked(t, now, 1);
  if (t.armed && t.notify == SIGEV_NONE && t.interval == 0 && t.expires <= now)
    left = 0;  // an expired one-shot SIGEV_NONE timer reads 0
  v.it_value.tv_sec = static_cast<time_t>(left / kNsPerSec);
  v.it_value.tv_nsec = static_cast<long>(left % kNsPerSec);
  int64_t iv = t.armed ? t.interval : 0;
  v.it_interval.tv_sec = static_cast<time_t>(iv / kNsPerSec);
  v.it_interval.tv_nsec = static_cast<long>(iv % kNsPerSec);
  return v;
}

Result<int64_t> itimerspec_part_ns(const timespec& ts) {
  if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= kNsPerSec) return err(EINVAL);
  constexpr int64_t kMaxSec = INT64_MAX / kNsPerSec - 1;
  int64_t sec = ts.tv_sec > kMaxSec ? kMaxSec : static_cast<int64_t>(ts.tv_sec);
  return sec * kNsPerSec + ts.tv_nsec;
}

}  // namespace

Result<long> sys_timer_create(Lwp& l, clockid_t clockid, UserPtr<struct sigevent> sevp, UserPtr<int> timerid) {
  KernelSigevent ev{};
  bool have_ev = static_cast<bool>(sevp);
  if (have_ev) TRY(copyin(l, sevp.addr, &ev, sizeof ev));
  switch (clockid) {
    case CLOCK_REALTIME:
    case CLOCK_MONOTONIC:
    case CLOCK_BOOTTIME:
    case CLOCK_TAI:
    case CLOCK_PROCESS_CPUTIME_ID:
    case CLOCK_THREAD_CPUTIME_ID:
      break;
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_REALTIME_COARSE:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_REALTIME_ALARM:
    case CLOCK_BOOTTIME_ALARM:
      // Clocks without timers (the alarm clocks need an RTC device).
      return err(EOPNOTSUPP);
    default:
      // Linux's encoded CPU-time clocks (of any process, of a thread of
      // the caller's). The clock-fd encoding names a clock without
      // timers.
      if (clockid >= 0) return err(EINVAL);
      if ((clockid & 7) == 3) return err(EOPNOTSUPP);
      break;
  }
  bool cpu = is_cpu_clock(clockid);
  CpuClockId cpu_clock;
  if (cpu) cpu_clock = TRY(cpu_clock_resolve(l, clockid));
  Proc& p = l.proc();
  int notify = SIGEV_SIGNAL;
  int signo = SIGALRM;
  pid_t tid = 0;
  if (have_ev) {
    // Linux's checks: a thread target must be a thread of the caller; a
    // signal must be a valid one. SIGEV_THREAD reaches the kernel only
    // from programs that do not go through libc: it signals, as Linux.
    switch (ev.notify) {
      case SIGEV_SIGNAL | SIGEV_THREAD_ID:
        if (!lwp_of(p, ev.tid)) return err(EINVAL);
        [[fallthrough]];
      case SIGEV_SIGNAL:
      case SIGEV_THREAD:
        if (ev.signo <= 0 || ev.signo > kNsig) return err(EINVAL);
        [[fallthrough]];
      case SIGEV_NONE:
        break;
      default:
        return err(EINVAL);
    }
    notify = ev.notify == SIGEV_NONE ? SIGEV_NONE : SIGEV_SIGNAL;
    signo = ev.signo;
    if (ev.notify == (SIGEV_SIGNAL | SIGEV_THREAD_ID)) tid = ev.tid;
  }
  ProcTimers* pt = TRY(timers_of(p));
  auto* t = new (l.kernel().kmem()) Timer(p);
  if (!t) return err(EAGAIN);
  t->clock = clockid;
  t->notify = notify;
  t->signo = notify == SIGEV_NONE ? 0 : signo;
  t->tid = tid;
  if (have_ev) t->value = ev.value;
  t->cpu = cpu;
  t->cpu_clock = cpu_clock;
  timer_init(*t, l.kernel());
  int id;
  {
    MutexLocker g(pt->lock_);
    int slot = -1;
    for (int i = 0; i < kMaxPosixTimers; i++)
      if (!pt->posix[i]) {
        slot = i;
        break;
      }
    if (slot < 0) {
      delete t;
      return err(EAGAIN);
    }
    // Ids count up per process and are not reused until they wrap (Linux).
    for (;;) {
      id = pt->next_id;
      pt->next_id = pt->next_id == INT_MAX ? 0 : pt->next_id + 1;
      bool used = false;
      for (Timer* o : pt->posix)
        if (o && o->id == id) used = true;
      if (!used) break;
    }
    t->id = id;
    // Without a sigevent, the value is the id (Linux).
    if (!have_ev) t->value = static_cast<uint64_t>(id);
    t->lock_.assert_held();  // the process's lock_, as pt->lock_
    if (cpu) {
      t->base = Base::kCpu;
      pt->cpu_timers++;
    }
    pt->posix[slot] = t;
  }
  Result<void> out = copyout_obj(l, id, timerid);
  if (!out.ok()) {
    MutexLocker g(pt->lock_);
    for (Timer*& s : pt->posix)
      if (s == t) s = nullptr;
    if (cpu) pt->cpu_timers--;
    delete t;
    return Error{out.error()};
  }
  return 0;
}

Result<long> sys_timer_settime(Lwp& l, int timerid, int flags, UserPtr<struct itimerspec> new_value,
                               UserPtr<struct itimerspec> old_value) {
  if (!new_value) return err(EINVAL);
  itimerspec nv = TRY(copyin_obj(l, new_value));
  int64_t interval = TRY(itimerspec_part_ns(nv.it_interval));
  int64_t value = TRY(itimerspec_part_ns(nv.it_value));
  ProcTimers* pt = TRY(timers_of(l.proc()));
  ClockNow cn = TRY(clock_now_of(l, *pt, timerid));
  // The thread or process whose CPU time it counts has gone (Linux).
  if (cn.gone) return err(ESRCH);
  itimerspec old{};
  {
    MutexLocker g(pt->lock_);
    Timer* t = TRY(find_timer_locked(*pt, timerid));
    t->lock_.assert_held();
    old = TRY(get_timer_locked(*t, cn));
    bool abs = (flags & TIMER_ABSTIME) != 0;
    // A relative realtime timer is not moved by clock changes: it runs on
    // the monotonic clock (Linux).
    Base base = abs && (t->clock == CLOCK_REALTIME || t->clock == CLOCK_TAI) ? Base::kReal : Base::kMono;
    if (t->cpu) base = Base::kCpu;
    arm_locked(*t, value, interval, abs, base, cn.ns);
  }
  // The tick looks at CPU-time timers.
  if (cn.cpu && value > 0) l.kernel().services().cputick()->kick();
  if (old_value) TRY(copyout_obj(l, old, old_value));
  return 0;
}

Result<long> sys_timer_gettime(Lwp& l, int timerid, UserPtr<struct itimerspec> curr_value) {
  ProcTimers* pt = TRY(timers_of(l.proc()));
  ClockNow cn = TRY(clock_now_of(l, *pt, timerid));
  itimerspec v{};
  {
    MutexLocker g(pt->lock_);
    Timer* t = TRY(find_timer_locked(*pt, timerid));
    t->lock_.assert_held();
    v = TRY(get_timer_locked(*t, cn));
  }
  TRY(copyout_obj(l, v, curr_value));
  return 0;
}

Result<long> sys_timer_getoverrun(Lwp& l, int timerid) {
  Proc& p = l.proc();
  ProcTimers* pt = TRY(timers_of(p));
  MutexLocker g(pt->lock_);
  Timer* t = TRY(find_timer_locked(*pt, timerid));
  t->lock_.assert_held();
  if (t->queued && (p.sigpending_.load(std::memory_order_acquire) & sig_bit(t->signo)) == 0) {
    // Delivered since it was posted: freeze its overruns.
    t->overrun_last = t->overrun;
    t->overrun = 0;
    t->queued = false;
  }
  return t->overrun_last > INT_MAX ? INT_MAX : t->overrun_last;
}

Result<long> sys_timer_delete(Lwp& l, int timerid) {
  ProcTimers* pt = TRY(timers_of(l.proc()));
  // The callout is stopped, not waited for: its function may be ending
  // this very process (a fatal signal, kill_proc), and that waits for the
  // caller to leave the kernel. A timer whose function is running is
  // parked on the dead list instead, and freed by a later delete or at
  // exit (after halt()).
  Timer* t;
  Timer* reap = nullptr;
  {
    MutexLocker g(pt->lock_);
    t = TRY(find_timer_locked(*pt, timerid));
    t->lock_.assert_held();
    for (Timer*& s : pt->posix)
      if (s == t) s = nullptr;
    if (t->cpu) pt->cpu_timers--;
    t->armed = false;
    t->deleted = true;
    t->callout.stop();
    // Its signal, if pending, is never taken (Linux).
    l.proc().lock_.assert_held();  // pt->lock_ is the process's lock_
    sig_drop_owned_locked(l.proc(), t);
    // Once stopped and not running, the function can no longer start.
    t->next_dead = pt->dead;
    pt->dead = t;
    for (Timer** d = &pt->dead; *d;) {
      if (!(*d)->callout.running()) {
        Timer* x = *d;
        *d = x->next_dead;
        x->next_dead = reap;
        reap = x;
      } else {
        d = &(*d)->next_dead;
      }
    }
  }
  while (reap) {
    Timer* next = reap->next_dead;
    delete reap;
    reap = next;
  }
  return 0;
}

bool itimer_cpu_timers(ProcTable& tab, Proc& p, absl::FunctionRef<void(int sig)> fatal) {
  tab.lock().assert_held();
  // The armed ones that signal, and their clocks: read with p's lock
  // dropped (reading a process's clock takes its lock).
  struct Seen {
    int id;
    CpuClockId clock;
    int64_t now = 0;
    bool gone = false;
  };
  Seen seen[kMaxPosixTimers];
  int n = 0;
  {
    MutexLocker g(p.lock_);
    ProcTimers* pt = g_timers.get(p);
    if (!pt) return false;
    pt->lock_.assert_held();  // the process's lock_
    if (pt->cpu_timers == 0) return false;
    for (Timer* t : pt->posix) {
      if (!t || !t->cpu) continue;
      t->lock_.assert_held();
      if (t->armed && t->notify != SIGEV_NONE) seen[n++] = {t->id, t->cpu_clock};
    }
  }
  if (n == 0) return false;
  for (int i = 0; i < n; i++) {
    Result<int64_t> v = cpu_clock_value_locked(tab, seen[i].clock);
    if (v.ok()) seen[i].now = *v;
    else seen[i].gone = true;
  }
  TimerPost posts[kMaxPosixTimers];
  int np = 0;
  bool armed = false;
  {
    MutexLocker g(p.lock_);
    ProcTimers* pt = g_timers.get(p);
    if (!pt) return false;
    pt->lock_.assert_held();
    for (int i = 0; i < n; i++) {
      // Deleted or disarmed meanwhile: nothing to do. Armed again: a
      // reading of its (never decreasing) clock from before is still one.
      Result<Timer*> f = find_timer_locked(*pt, seen[i].id);
      if (!f.ok()) continue;
      Timer& t = **f;
      t.lock_.assert_held();
      if (!t.armed || !t.cpu || t.notify == SIGEV_NONE) continue;
      if (seen[i].gone) {
        t.armed = false;  // its thread or process has gone
        continue;
      }
      if (seen[i].now >= t.expires)
        if (int sig = expire_locked(t, seen[i].now)) posts[np++] = timer_post_of(t, sig);
      armed |= t.armed;
    }
  }
  for (int i = 0; i < np; i++)
    if (post_timer_signal_locked(tab, p, posts[i])) fatal(posts[i].sig);
  if (np > 0) {
    // A timer deleted since: its signal goes as the pending ones did
    // (found by address and id: a deleted timer is freed at once here).
    MutexLocker g(p.lock_);
    ProcTimers* pt = g_timers.get(p);
    for (int i = 0; i < np; i++) {
      bool live = false;
      if (pt) {
        pt->lock_.assert_held();
        for (Timer* x : pt->posix)
          if (x == posts[i].owner && x->id == posts[i].id) live = true;
      }
      drop_if_deleted(p, posts[i].owner, !live);
    }
  }
  return armed;
}

}  // namespace rump
