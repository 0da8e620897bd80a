// Signals: posting, actions, and what happens at the end of a kernel entry.
//
// Local clients run on host threads, where the kernel cannot run a signal
// handler. So: ignored signals (explicitly or by default) are dropped when
// posted; caught signals become pending, interrupt interruptible sleeps
// (the call restarts or fails with EINTR: kern/lwp.h) and are consumed ("delivered") when an LWP of the process leaves
// the kernel with them unblocked; fatal default actions end the process
// (WIFSIGNALED for the parent), at once when no LWP of it is in the
// kernel, otherwise when one leaves. Stop and continue signals are treated
// as ignored (no job control for in-process clients).
//
// Temporary masks (ppoll, pselect6). Linux keeps the temporary mask of a
// call that a signal interrupted until that signal is delivered, so the
// signals it unblocks act before the old mask returns. Here delivery is
// the same as at the end of any kernel entry, done under the temporary
// mask: a fatal default action ends the process, a caught signal is
// consumed, an ignored one was never queued; signals the temporary mask
// blocks stay pending and meet the old mask when the LWP leaves. A call
// that was not interrupted (ready, timed out, failed) restores the old
// mask at once, leaving signals that only the temporary mask unblocked
// pending, as Linux does.
//
// Ignoring: a signal whose action ignores it is dropped when posted,
// unless the target blocks it (Linux: a blocked signal is kept, since the
// action may change before it is unblocked); blocked ones stay pending
// for rt_sigtimedwait and signalfd. A process-directed signal asks the
// LWP whose tid is the pid (the main one), or any LWP if that is gone.
//
// Which LWP a process-directed signal interrupts: one, picked when it is
// posted as Linux's complete_signal picks a thread: the main LWP if it
// takes the signal (does not block it, or waits for it in
// rt_sigtimedwait or a signalfd read), otherwise the first other LWP that
// does. The pick is recorded in that LWP's sigclaim_: only its sleeps end,
// and while it is in the kernel, no other LWP takes the signal as it
// leaves. The other LWPs sleep on undisturbed: a timed call of theirs
// keeps its deadline and never fails with EINTR for a signal another LWP
// took. A signal that every LWP blocks is picked by none; an LWP that
// unblocks it takes it (sig_set_mask_locked), and one that blocks a
// signal picked for it, or leaves, hands it to another LWP. A fatal
// action ends the whole process: every LWP that takes the signal is
// interrupted, as Linux's group exit.
//
// Waiting for signals (rt_sigtimedwait, signalfd reads, rt_sigsuspend,
// pause) sleeps on Proc::sigwait_cv_ with the process lock; posting holds
// that lock and wakes the LWPs concerned with Lwp::interrupt(), so no
// wake-up is lost between a waiter's check and its sleep.
#include <cstring>

#include "kern/clock.h"
#include "kern/fork.h"
#include "kern/kernel.h"

namespace rump {

namespace {

enum class Disposition { kDrop, kPending, kFatal };

Disposition disposition(const KernelSigaction& a, int sig) {
  if (sig == SIGKILL) return Disposition::kFatal;
  if (a.handler == reinterpret_cast<uintptr_t>(SIG_IGN)) return Disposition::kDrop;
  if (a.handler == reinterpret_cast<uintptr_t>(SIG_DFL)) {
    switch (sig_default_action(sig)) {
      case SigDefault::kIgnore:
      case SigDefault::kStop:
      case SigDefault::kContinue:
        return Disposition::kDrop;
      case SigDefault::kTerminate:
      case SigDefault::kCore:
        return Disposition::kFatal;
    }
  }
  return Disposition::kPending;
}

KernelSigaction action_of(Proc& p, int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_) {
  if (!p.sigacts_) return {};
  return p.sigacts_->get(sig);
}

// The signals of set whose action is fatal.
SigSet fatal_of(Proc& p, SigSet set) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_) {
  SigSet f = 0;
  for (SigSet rest = set; rest; rest &= rest - 1) {
    int sig = __builtin_ctzll(rest) + 1;
    if (disposition(action_of(p, sig), sig) == Disposition::kFatal) f |= sig_bit(sig);
  }
  return f;
}

// Is sig blocked where a process-directed signal is judged (the main LWP)?
bool blocked_by_process(Proc& p, int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_) {
  bool any = false;
  for (Lwp& l : p.lwps_) {
    bool b = (l.sigmask_.load() & sig_bit(sig)) != 0;
    if (l.tid() == p.pid()) return b;
    any |= b;
  }
  return any;
}

// Would l take sig, sent to its process (Linux's wants_signal)?
bool wants_signal(const Lwp& l, int sig) {
  if (l.exiting_.load(std::memory_order_relaxed) || l.dead_.load(std::memory_order_acquire)) return false;
  return (l.sigmask_.load() & sig_bit(sig)) == 0 || (l.sigwaiting_.load() & sig_bit(sig)) != 0;
}

// The LWP a process-directed sig goes to, never skip; nullptr if none
// takes it. The main LWP if it takes it, otherwise the first other one
// that does; but an LWP that can run (in the kernel, or bound to a host
// thread) comes before one that can't (parked by rump_lwproc_switch, it
// would hold the signal until a thread switches to it).
Lwp* pick_lwp_locked(Proc& p, int sig, const Lwp* skip) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_) {
  Lwp* best = nullptr;
  int best_rank = -1;
  for (Lwp& l : p.lwps_) {
    if (&l == skip || !wants_signal(l, sig)) continue;
    bool runs = l.in_kernel_.load(std::memory_order_acquire) || l.bound_.load(std::memory_order_relaxed);
    int rank = (runs ? 2 : 0) + (l.tid() == p.pid() ? 1 : 0);
    if (rank > best_rank) {
      best = &l;
      best_rank = rank;
    }
  }
  return best;
}

// Gives t the process-directed signals of set to take, and ends its sleep.
// Under the process lock.
void claim(Lwp& t, SigSet set) {
  t.sigclaim_.fetch_or(set, std::memory_order_release);
  if (t.in_kernel_.load(std::memory_order_acquire)) t.interrupt();
}

// The signals of set that were picked for l and are still pending go to
// another LWP that takes them (Linux's retarget_shared_pending).
void retarget_locked(Proc& p, Lwp& l, SigSet set) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_) {
  set &= l.sigclaim_.load() & p.sigpending_.load();
  if (set == 0) return;
  l.sigclaim_.fetch_and(~set);
  for (SigSet rest = set; rest; rest &= rest - 1) {
    int sig = __builtin_ctzll(rest) + 1;
    if (Lwp* t = pick_lwp_locked(p, sig, &l)) claim(*t, sig_bit(sig));
  }
}

// The signals of gone left the process's pending set: no LWP holds them.
void unclaim_locked(Proc& p, SigSet gone) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_) {
  for (Lwp& l : p.lwps_) {
    if (l.sigclaim_.load(std::memory_order_relaxed) & gone) l.sigclaim_.fetch_and(~gone);
  }
}

// Next signal of pend to take: faults first, then the lowest number.
int next_signal(SigSet pend) {
  if (pend == 0) return 0;
  if (pend & kSyncSignals) pend &= kSyncSignals;
  return __builtin_ctzll(pend) + 1;
}

// Takes sig off one queue: its first record, and the bit once no record
// of it is left. A signal pending without a record reads as SI_USER.
// Records of deleted timers (dropped) are thrown away on the way: if they
// were all there was, nothing is taken (returns false), as Linux's
// dequeue drops a deleted timer's signal.
bool collect_signal(Proc& p, std::atomic<SigSet>& set, SigQueue& q, int sig, siginfo_t* info)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_) {
  SigQueued* first = nullptr;
  bool more = false, dropped = false;
  for (auto it = q.begin(); it != q.end();) {
    SigQueued& e = *it;
    if (e.info.si_signo != sig) {
      ++it;
      continue;
    }
    if (e.dropped && !first) {
      it = q.erase(it);
      delete &e;
      p.nsigqueued_--;
      p.sigdropped_--;
      dropped = true;
      continue;
    }
    if (first) {
      more = true;
      break;
    }
    first = &e;
    ++it;
  }
  if (!more) {
    set.fetch_and(~sig_bit(sig), std::memory_order_release);
    if (&set == &p.sigpending_) unclaim_locked(p, sig_bit(sig));
  }
  if (first) {
    if (info) *info = first->info;
    q.erase(q.iterator_to(*first));
    delete first;
    p.nsigqueued_--;
  } else if (dropped) {
    return false;
  } else if (info) {
    std::memset(info, 0, sizeof *info);
    info->si_signo = sig;
    info->si_code = SI_USER;
  }
  return true;
}

// Throws away the dropped records of one queue, and the bits of signals
// that had no other (before a signal is delivered or found fatal).
void purge_dropped(Proc& p, std::atomic<SigSet>& set, SigQueue& q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_) {
  SigSet had = 0, kept = 0;
  q.remove_and_dispose_if(
      [&](const SigQueued& e) {
        if (e.dropped) had |= sig_bit(e.info.si_signo);
        else kept |= sig_bit(e.info.si_signo);
        return e.dropped;
      },
      [&p](SigQueued* e) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        p.nsigqueued_--;
        p.sigdropped_--;
        delete e;
      });
  SigSet gone = had & ~kept;
  if (gone == 0) return;
  set.fetch_and(~gone, std::memory_order_release);
  if (&set == &p.sigpending_) unclaim_locked(p, gone);
}

void discard_queue(Proc& p, std::atomic<SigSet>& set, SigQueue& q, SigSet which)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.lock_) {
  if ((set.load() & which) == 0) return;
  set.fetch_and(~which, std::memory_order_release);
  if (&set == &p.sigpending_) unclaim_locked(p, which);
  q.remove_and_dispose_if([&](const SigQueued& e) { return (sig_bit(e.info.si_signo) & which) != 0; },
                          [&p](SigQueued* e) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                            p.nsigqueued_--;
                            if (e->dropped) p.sigdropped_--;
                            delete e;
                          });
}

}  // namespace

void SigWatchers::add(SigWatch& w) {
  MutexLocker g(lock_);
  list_.push_back(w);
  n_.fetch_add(1, std::memory_order_relaxed);
}

void SigWatchers::remove(SigWatch& w) {
  MutexLocker g(lock_);
  list_.erase(list_.iterator_to(w));
  n_.fetch_sub(1, std::memory_order_relaxed);
}

void SigWatchers::notify(Proc& p, int sig) {
  if (n_.load(std::memory_order_relaxed) == 0) return;
  MutexLocker g(lock_);
  for (SigWatch& w : list_) w.notify(w, p, sig);
}

siginfo_t sig_user_info(Lwp& sender, int sig, int code) {
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  info.si_signo = sig;
  info.si_code = code;
  info.si_pid = sender.proc().pid();
  info.si_uid = sender.cred().uid;
  return info;
}

bool post_signal(Proc& p, int sig) {
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  info.si_signo = sig;
  info.si_code = SI_KERNEL;
  Result<bool> r = post_signal_info(p, nullptr, info);
  return r.ok() && *r;
}

Result<bool> post_signal_info(Proc& p, Lwp* thread, const siginfo_t& info, const void* owner) {
  const int sig = info.si_signo;
  Kernel& k = p.kernel();
  bool fatal_now = false;
  {
    MutexLocker g(p.lock_);
    if (p.exiting_) return false;
    Disposition d = disposition(action_of(p, sig), sig);
    if (&p == k.procs().init() || &p == k.procs().proc0()) {
      // Like Linux's init: only signals it catches reach it.
      if (d != Disposition::kPending) return false;
    }
    if (thread) thread->assert_sig_locked();
    bool blocked = thread ? (thread->sigmask_.load() & sig_bit(sig)) != 0 : blocked_by_process(p, sig);
    if (d == Disposition::kDrop && !blocked) return false;
    std::atomic<SigSet>& set = thread ? thread->sigpending_ : p.sigpending_;
    SigQueue& q = thread ? thread->sigqueue_ : p.sigqueue_;
    // A standard signal already pending is not queued again.
    if (sig < kSigRtMin && (set.load() & sig_bit(sig))) return false;
    if (sig != SIGKILL) {
      // Linux: records of standard signals from kill-like senders are
      // kept past RLIMIT_SIGPENDING; others count against it.
      bool override_limit = sig < kSigRtMin && info.si_code >= 0;
      rlim_t limit = p.rlimits_[RLIMIT_SIGPENDING].rlim_cur;
      SigQueued* e = nullptr;
      if (override_limit || limit == RLIM_INFINITY || static_cast<rlim_t>(p.nsigqueued_) < limit)
        e = new (k.kmem()) SigQueued;
      if (e) {
        e->info = info;
        e->owner = owner;
        q.push_back(*e);
        p.nsigqueued_++;
      } else if (sig >= kSigRtMin && info.si_code != SI_USER) {
        return err(EAGAIN);
      }
    }
    set.fetch_or(sig_bit(sig), std::memory_order_release);
    bool any_in_kernel = false;
    // A thread-directed signal, and one that ends the process, wake each
    // LWP concerned; any other process-directed one wakes one LWP.
    bool each = thread || sig == SIGKILL || d == Disposition::kFatal;
    for (Lwp& l : p.lwps_) {
      if (thread && &l != thread) continue;
      bool in = l.in_kernel_.load(std::memory_order_acquire);
      any_in_kernel |= in;
      if (!each) continue;
      bool wakes = (l.sigmask_.load() & sig_bit(sig)) == 0 || (l.sigwaiting_.load() & sig_bit(sig)) != 0;
      if (!wakes && sig != SIGKILL) continue;
      if (!thread) l.sigclaim_.fetch_or(sig_bit(sig), std::memory_order_release);
      if (in) {
        if (sig == SIGKILL) l.exiting_.store(true);
        l.interrupt();
      }
    }
    if (!each) {
      if (Lwp* t = pick_lwp_locked(p, sig, nullptr)) claim(*t, sig_bit(sig));
    }
    if (d == Disposition::kFatal && !any_in_kernel) {
      // A blocked fatal signal waits, except SIGKILL.
      bool blocked_everywhere = sig != SIGKILL && !p.lwps_.empty();
      for (Lwp& l : p.lwps_) {
        if (thread && &l != thread) continue;
        if ((l.sigmask_.load() & sig_bit(sig)) == 0) blocked_everywhere = false;
      }
      fatal_now = !blocked_everywhere;
    }
  }
  k.sig_watchers().notify(p, sig);
  return fatal_now;
}

int sig_dequeue_locked(Proc& p, Lwp& l, SigSet set, siginfo_t* info) {
  l.assert_sig_locked();
  for (;;) {
    if (int sig = next_signal(l.sigpending_.load() & set)) {
      if (collect_signal(p, l.sigpending_, l.sigqueue_, sig, info)) return sig;
      continue;  // a deleted timer's: dropped
    }
    if (int sig = next_signal(p.sigpending_.load() & set)) {
      if (collect_signal(p, p.sigpending_, p.sigqueue_, sig, info)) return sig;
      continue;
    }
    return 0;
  }
}

void sig_drop_owned_locked(Proc& p, const void* owner) {
  auto mark = [&](SigQueue& q) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (SigQueued& e : q)
      if (e.owner == owner && !e.dropped) {
        e.dropped = true;
        p.sigdropped_++;
      }
  };
  mark(p.sigqueue_);
  for (Lwp& l : p.lwps_) {
    l.assert_sig_locked();
    mark(l.sigqueue_);
  }
}

void sig_discard_locked(Proc& p, SigSet set) {
  discard_queue(p, p.sigpending_, p.sigqueue_, set);
  for (Lwp& l : p.lwps_) {
    l.assert_sig_locked();
    discard_queue(p, l.sigpending_, l.sigqueue_, set);
  }
}

void sig_flush_lwp_locked(Proc& p, Lwp& l) {
  l.assert_sig_locked();
  discard_queue(p, l.sigpending_, l.sigqueue_, ~SigSet{0});
  retarget_locked(p, l, ~SigSet{0});
  l.sigclaim_.store(0);
}

void sig_set_mask_locked(Proc& p, Lwp& l, SigSet mask) {
  l.sigmask_.store(mask);
  SigSet pend = p.sigpending_.load();
  if (pend == 0) return;
  if (pend & ~mask) l.sigclaim_.fetch_or(pend & ~mask, std::memory_order_release);
  retarget_locked(p, l, mask & ~l.sigwaiting_.load());
}

Result<int> sig_wait(Lwp& l, const std::atomic<SigSet>& which, siginfo_t* info, int64_t deadline_ns) {
  Proc& p = l.proc();
  MutexLocker g(p.lock_);
  for (;;) {
    // Read again after each wake-up: a signalfd's set may change while
    // its reader sleeps (sig_wait_set_changed).
    SigSet set = which.load(std::memory_order_acquire) & ~kCantMask;
    // An unblocked signal that would kill is left to do so.
    SigSet take = set & ~(fatal_of(p, set) & ~l.sigmask_.load());
    if (int sig = sig_dequeue_locked(p, l, take, info)) return sig;
    if (deadline_ns == 0) return err(EAGAIN);
    l.sigwaiting_.store(take);
    int r = l.sleep(p.sigwait_cv_, p.lock_, deadline_ns, true);
    l.sigwaiting_.store(0);
    if (r) {
      if (int sig = sig_dequeue_locked(p, l, take, info)) return sig;
      // Signals picked for l because it waited for them, and still
      // pending, go to an LWP that takes them.
      retarget_locked(p, l, l.sigmask_.load());
      return err(r == ETIMEDOUT ? EAGAIN : r);
    }
  }
}

void sig_wait_set_changed(Proc& p) {
  MutexLocker g(p.lock_);
  p.sigwait_cv_.broadcast();
}

bool check_fatal_signals(Lwp& l, Delivered* d) {
  Proc& p = l.proc();
  SigSet pend = p.pending_unblocked(l);
  if (pend == 0) return false;
  int fatal = 0;
  {
    MutexLocker g(p.lock_);
    l.assert_sig_locked();
    if (p.sigdropped_ > 0) {
      // Deleted timers' signals are no signals.
      purge_dropped(p, l.sigpending_, l.sigqueue_);
      purge_dropped(p, p.sigpending_, p.sigqueue_);
      pend &= l.sigpending_.load() | p.sigpending_.load();
      if (pend == 0) return false;
    }
    // Process-directed signals picked for another LWP that is in the
    // kernel are that LWP's to take: it may sleep in a call they end.
    SigSet others = 0;
    for (Lwp& o : p.lwps_) {
      if (&o != &l && o.in_kernel_.load(std::memory_order_acquire)) others |= o.sigclaim_.load();
    }
    pend &= ~(others & ~l.sigclaim_.load() & ~l.sigpending_.load());
    if (pend == 0) return false;
    if (&p != l.kernel().procs().init()) {
      for (int sig = 1; sig <= kNsig; sig++) {
        if (!(pend & sig_bit(sig))) continue;
        if (disposition(action_of(p, sig), sig) == Disposition::kFatal) {
          fatal = sig;
          break;
        }
      }
    }
    if (!fatal) {
      // Caught signals are delivered: their handlers can't run on a host
      // thread, so delivery consumes them (init's too). The first one (as
      // Linux would take it) decides whether an interrupted call restarts.
      if (d) {
        d->sig = next_signal(pend);
        d->restart = (action_of(p, d->sig).flags & SA_RESTART) != 0;
      }
      discard_queue(p, l.sigpending_, l.sigqueue_, pend);
      discard_queue(p, p.sigpending_, p.sigqueue_, pend);
      return false;
    }
  }
  exit1(p, &l, w_exitcode(0, fatal));
  return true;
}

SigSet begin_temp_sigmask(Lwp& l, SigSet mask) {
  Proc& p = l.proc();
  MutexLocker g(p.lock_);
  SigSet old = l.sigmask_.load();
  mask &= ~kCantMask;
  sig_set_mask_locked(p, l, mask);
  SigSet now_open = p.pending_for(l) & old & ~mask;
  SigSet ignored = 0;
  for (SigSet rest = now_open; rest; rest &= rest - 1) {
    int sig = __builtin_ctzll(rest) + 1;
    if (disposition(action_of(p, sig), sig) == Disposition::kDrop) ignored |= sig_bit(sig);
  }
  if (ignored) {
    l.assert_sig_locked();
    discard_queue(p, l.sigpending_, l.sigqueue_, ignored);
    discard_queue(p, p.sigpending_, p.sigqueue_, ignored);
  }
  return old;
}

bool end_temp_sigmask(Lwp& l, SigSet old, bool interrupted, Delivered* d) {
  if (interrupted && check_fatal_signals(l, d)) return true;
  Proc& p = l.proc();
  MutexLocker g(p.lock_);
  sig_set_mask_locked(p, l, old);
  return false;
}

}  // namespace rump
