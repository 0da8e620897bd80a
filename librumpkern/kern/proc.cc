// Processes: the Proc object, the process table, and faction extensions.
#include "kern/proc.h"

#include <cstring>

#include "kern/clock.h"
#include "kern/kernel.h"

namespace rump {

namespace {
// Filled by static registrars while the program loads; read-only afterwards.
ProcExtension* g_extensions[kMaxProcExtensions];
int g_nextensions;
}  // namespace

int register_proc_extension(ProcExtension* ext) {
  if (g_nextensions >= kMaxProcExtensions) panic("too many process extensions");
  ext->slot = g_nextensions;
  g_extensions[g_nextensions++] = ext;
  return ext->slot;
}
int proc_extension_count() { return g_nextensions; }
ProcExtension* proc_extension(int slot) { return g_extensions[slot]; }

Proc::Proc(Kernel& k, pid_t pid)
    : start_ns_(mono_now_ns()), kernel_(k), tree_lock_(k.procs().lock()), pid_(pid) {
  for (auto& r : rlimits_) r.rlim_cur = r.rlim_max = RLIM_INFINITY;
  // As Linux: no raised nice values or real-time priorities without
  // CAP_SYS_NICE unless a limit is set.
  rlimits_[RLIMIT_NICE].rlim_cur = rlimits_[RLIMIT_NICE].rlim_max = 0;
  rlimits_[RLIMIT_RTPRIO].rlim_cur = rlimits_[RLIMIT_RTPRIO].rlim_max = 0;
}

Proc::~Proc() {
  sigqueue_.clear_and_dispose([](SigQueued* q) { delete q; });
}

Ref<Cred> Proc::cred() const {
  MutexLocker g(lock_);
  return cred_.to_ref();
}

void Proc::set_cred(Ref<Cred> c) {
  {
    MutexLocker g(lock_);
    cred_ = std::move(c);
  }
  cred_gen_.fetch_add(1, std::memory_order_release);
}

SigSet Proc::pending_unblocked(const Lwp& l) const {
  return pending_for(l) & ~l.sigmask_.load(std::memory_order_relaxed);
}

void ProcTable::insert_locked(Proc& p) {
  if (!procs_.insert(p)) panic("pid %d published twice", static_cast<int>(p.pid()));
}

void ProcTable::reap_locked(Proc& c) {
  c.assert_tree_locked();
  if (Proc* parent = c.parent_) {
    parent->assert_tree_locked();
    parent->children_.erase(parent->children_.iterator_to(c));
    cpu_reaped_locked(*parent, c);
  }
  c.parent_ = nullptr;
  procs_.erase(c);
  pids_.release(c.pid());
  pids_.release(c.pgid_);
  pids_.release(c.sid_);
  nprocs_--;
  delete &c;
}

SigDefault sig_default_action(int sig) {
  switch (sig) {
    case SIGCHLD:
    case SIGURG:
    case SIGWINCH:
      return SigDefault::kIgnore;
    case SIGSTOP:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
      return SigDefault::kStop;
    case SIGCONT:
      return SigDefault::kContinue;
    case SIGQUIT:
    case SIGILL:
    case SIGTRAP:
    case SIGABRT:
    case SIGBUS:
    case SIGFPE:
    case SIGSEGV:
    case SIGXCPU:
    case SIGXFSZ:
    case SIGSYS:
      return SigDefault::kCore;
    default:
      return SigDefault::kTerminate;
  }
}

}  // namespace rump
