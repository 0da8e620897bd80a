// Kernel boot and halt.
#include "kern/kernel.h"

#include <rump/rumpuser.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "kern/clock.h"
#include "kern/curlwp.h"
#include "kern/fork.h"
#include "kern/msgbuf.h"
#include "kern/services.h"
#include "kern/sim.h"

namespace rump {

namespace {

std::atomic<uint64_t> g_serial{0};

// Parses a size parameter: a number with an optional k/m/g suffix.
bool parse_size(const char* s, size_t* out) {
  char* end = nullptr;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s) return false;
  switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
  }
  if (*end != '\0') return false;
  *out = static_cast<size_t>(v);
  return true;
}

}  // namespace

void boot_config_from_env(BootConfig& c) {
  char buf[256];
  if (c.ncpu <= 0 && rumpuser_getparam(RUMPUSER_PARAM_NCPU, buf, sizeof buf) == 0) c.ncpu = atoi(buf);
  if (c.ncpu <= 0) c.ncpu = 1;
  if (c.ncpu > 256) c.ncpu = 256;
  if (c.memlimit == 0 && rumpuser_getparam("RUMP_MEMLIMIT", buf, sizeof buf) == 0) {
    size_t v;
    if (parse_size(buf, &v)) c.memlimit = v;
  }
  if (c.hostname[0] == '\0' && rumpuser_getparam("RUMP_HOSTNAME", buf, sizeof buf) == 0) {
    std::strncpy(c.hostname, buf, sizeof c.hostname - 1);
  }
  if (c.verbose < 0) {
    c.verbose = 0;
    if (rumpuser_getparam("RUMP_VERBOSE", buf, sizeof buf) == 0) c.verbose = atoi(buf) != 0 || buf[0] == '\0';
  }
}

Kernel::Kernel(size_t memlimit, uint64_t serial)
    : kmem_(memlimit), pids_(kmem_), procs_(KAllocator<std::pair<const pid_t, Proc*>>(kmem_)), serial_(serial) {}

Kernel::~Kernel() = default;

void Kernel::printf(const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  size_t len = static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n) : sizeof line - 1;
  if (msgbuf_) msgbuf_->append(line, len);
  if (verbose_) rumpuser_dprintf("%.*s", static_cast<int>(len), line);
}

void panic(const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  rumpuser_dprintf("rump kernel panic: %s\n", line);
  rumpuser_exit(RUMPUSER_PANIC);
}

Result<Kernel*> Kernel::boot(const BootConfig& in) {
  // 1. The hypervisor.
  if (int e = hyp_init()) return err(e);
  BootConfig cfg = in;
  // The backend serves every thread and object of the kernel, from the
  // first lock the kernel object makes.
  const rumpuser_backend* be = nullptr;
  if (rumpuser_backend_find(cfg.backend, &be) != 0) return err(EINVAL);
  bool sim = sim_backend(be);
  if (sim && cfg.ncpu <= 0) cfg.ncpu = kSimDefaultNcpu;
  boot_config_from_env(cfg);

  // 2. The kernel object and its memory arena (the object itself is not
  // counted: it is the arena's home).
  void* mem = nullptr;
  if (rumpuser_malloc(sizeof(Kernel), alignof(Kernel), &mem) != 0) return err(ENOMEM);
  // A sim kernel gets its own world, served by its own instance of the
  // backend.
  rumpuser_sim* world = nullptr;
  if (sim) {
    if (int e = sim_world_create(cfg.seed, mem, &world, &be)) {
      rumpuser_free(mem, sizeof(Kernel));
      return err(e);
    }
  }
  BackendScope scope(be);
  Kernel* k = new (mem) Kernel(cfg.memlimit, g_serial.fetch_add(1) + 1);
  k->cfg_ = cfg;
  k->backend_ = be;
  if (world) {
    k->sim_ = new (k->kmem_) SimState(world);
    if (!k->sim_) {
      k->halt();
      rumpuser_sim_destroy(world);
      return err(ENOMEM);
    }
  }
  k->verbose_ = cfg.verbose;
  k->maxproc_ = cfg.maxproc;
  k->boot_time_ns_ = mono_now_ns();
  Result<void> r = k->boot_locked(cfg);
  if (!r.ok()) {
    k->halt();
    return Error{r.error()};
  }
  return k;
}

Result<void> Kernel::boot_locked(const BootConfig& cfg) {
  // 3. CPUs.
  // One cache line per CPU (Kmem's blocks are only 16-byte aligned, so
  // the array comes straight from the hypercall and is charged by hand).
  cpus_bytes_ = sizeof(Cpu) * cfg.ncpu;
  if (!kmem_.charge(cpus_bytes_)) return err(ENOMEM);
  void* cm = nullptr;
  if (rumpuser_malloc(cpus_bytes_, alignof(Cpu), &cm) != 0) {
    kmem_.uncharge(cpus_bytes_);
    return err(ENOMEM);
  }
  cpus_ = static_cast<Cpu*>(cm);
  for (int i = 0; i < cfg.ncpu; i++) new (&cpus_[i]) Cpu();
  sched_.init(cpus_, cfg.ncpu);

  // 4. proc0 and lwp0, the kernel's own process and first thread.
  {
    MutexLocker g(proc_tree_lock_);
    TRY(pids_.init(cfg.pid_max));
    pids_.reserve(0);
  }
  proc0_ = new (kmem_) Proc(*this, 0);
  if (!proc0_) return err(ENOMEM);
  Ref<Cred> root = TRY(Cred::create_root(kmem_));
  SigActs* sa0 = new (kmem_) SigActs();
  if (!sa0) return err(ENOMEM);
  {
    MutexLocker g(proc0_->lock_);
    proc0_->cred_ = root;
    proc0_->sigacts_ = RefPtr<SigActs>(kAdopt, sa0);
    std::strcpy(proc0_->comm_, "swapper");
  }
  proc0_->state_ = Proc::State::kActive;
  lwp0_ = new (kmem_) Lwp(*this, *proc0_, 0, Lwp::Kind::kKthread);
  if (!lwp0_) return err(ENOMEM);
  RunAs as(*this, lwp0_);
  {
    MutexLocker g(proc_tree_lock_);
    procs_[0] = proc0_;
    nprocs_++;
  }

  // 5. Kernel services: sysctl, message buffer, callouts, host name.
  msgbuf_ = TRY(Msgbuf::create(kmem_));
  if (cfg.hostname[0]) std::strncpy(hostname_, cfg.hostname, sizeof hostname_ - 1);
  else snprintf(hostname_, sizeof hostname_, "rump%llu", static_cast<unsigned long long>(serial_));
  printf("rump kernel %llu booting: %d CPU%s\n", static_cast<unsigned long long>(serial_), cfg.ncpu,
         cfg.ncpu == 1 ? "" : "s");
  TRY(services_init(*this));

  // 6. init (pid 1): the parent of orphans and the home of implicit LWPs.
  {
    MutexLocker g(proc_tree_lock_);
    pids_.reserve(1);
    init_ = new (kmem_) Proc(*this, 1);
    if (!init_) return err(ENOMEM);
    procs_[1] = init_;
    nprocs_++;
    init_->parent_ = proc0_;
    proc0_->children_.push_back(*init_);
    init_->pgid_ = init_->sid_ = 1;
    pids_.hold(1);
    pids_.hold(1);
  }
  SigActs* sa1 = new (kmem_) SigActs();
  if (!sa1) return err(ENOMEM);
  {
    MutexLocker g(init_->lock_);
    init_->cred_ = root;
    init_->sigacts_ = RefPtr<SigActs>(kAdopt, sa1);
    std::strcpy(init_->comm_, "init");
  }
  init_->state_ = Proc::State::kActive;

  // 7. Components, by type.
  for (int type = 0; type <= static_cast<int>(ComponentType::kPostinit); type++) {
    for (int i = 0; i < component_count(); i++) {
      Component* c = component_at(i);
      if (static_cast<int>(c->type) != type) continue;
      if (c->init) {
        Result<void> r = c->init(*this);
        if (!r.ok()) {
          printf("component %s failed to start: error %d\n", c->name, r.error());
          return r;
        }
      }
    }
  }
  components_up_ = 1;
  printf("rump kernel %llu ready\n", static_cast<unsigned long long>(serial_));
  return {};
}

void Kernel::halt() {
  // Scoped by hand: a sim kernel's backend goes with its world, below.
  const rumpuser_backend* my_backend = backend_;
  const rumpuser_backend* prev_backend = rumpuser_backend_switch(backend_);
  rumpuser_sim* world = sim_ ? sim_->world : nullptr;
  halting_.store(true);
  registry_remove(this);
  if (lwp0_) {
    RunAs as(*this, lwp0_);
    // Everyone out: interrupt LWPs inside the kernel and wait for them
    // (polling with a growing pause: they leave within microseconds).
    for (long pause_ns = 10 * 1000;; pause_ns = pause_ns < 1000 * 1000 ? pause_ns * 2 : pause_ns) {
      bool busy = false;
      {
        MutexLocker g(proc_tree_lock_);
        for (Lwp& l : all_lwps_) {
          if (l.in_kernel_.load()) {
            busy = true;
            l.exiting_.store(true);
            l.interrupt();
          }
        }
      }
      if (!busy) break;
      rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, pause_ns);
    }
    if (components_up_) {
      for (int type = static_cast<int>(ComponentType::kPostinit); type >= 0; type--) {
        for (int i = component_count() - 1; i >= 0; i--) {
          Component* c = component_at(i);
          if (static_cast<int>(c->type) == type && c->fini) c->fini(*this);
        }
      }
    }
    // End every process but proc0 and init, children first where possible.
    for (;;) {
      Proc* victim = nullptr;
      {
        MutexLocker g(proc_tree_lock_);
        for (auto& [pid, p] : procs_) {
          if (p == proc0_ || p == init_ || p->state_ != Proc::State::kActive) continue;
          victim = p;
          break;
        }
      }
      if (!victim) break;
      exit1(*victim, nullptr, w_exitcode(0, SIGKILL));
      // It may be a zombie of a parent that never waits: reap below.
    }
    {
      MutexLocker g(proc_tree_lock_);
      for (auto it = procs_.begin(); it != procs_.end();) {
        Proc* p = it->second;
        ++it;
        if (p == proc0_ || p == init_) continue;
        if (p->parent_) p->parent_->children_.erase(p->parent_->children_.iterator_to(*p));
        procs_.erase(p->pid());
        delete p;
      }
      // init's and proc0's remaining LWPs, husks and implicit LWPs.
      while (!all_lwps_.empty()) {
        Lwp& l = all_lwps_.front();
        all_lwps_.pop_front();
        if (l.proc_hook_.is_linked()) {
          MutexLocker pg(l.proc().lock_);
          l.proc().lwps_.erase(l.proc().lwps_.iterator_to(l));
        }
        delete &l;
      }
    }
    if (init_) {
      for (int i = proc_extension_count() - 1; i >= 0; i--) proc_extension(i)->exit(*init_);
    }
    services_fini(*this);
  }
  if (init_) {
    MutexLocker g(proc_tree_lock_);
    if (init_->sibling_hook_.is_linked()) proc0_->children_.erase(proc0_->children_.iterator_to(*init_));
    delete init_;
    init_ = nullptr;
  }
  delete lwp0_;
  lwp0_ = nullptr;
  delete proc0_;
  proc0_ = nullptr;
  delete msgbuf_;
  msgbuf_ = nullptr;
  if (sim_) {
    delete sim_;
    sim_ = nullptr;
  }
  sched_.fini();
  if (cpus_) {
    rumpuser_free(cpus_, cpus_bytes_);
    kmem_.uncharge(cpus_bytes_);
  }
  cpus_ = nullptr;
  {
    // Give the tables' memory back now, so the leak check below sees it.
    MutexLocker g(proc_tree_lock_);
    procs_.clear();
    procs_.rehash(0);
    pids_.~PidAllocator();
    new (&pids_) PidAllocator(kmem_);
  }
  if (kmem_.in_use() != 0) {
    // Memory that did not come back is a kernel bug: debug builds (the
    // test suite) stop here; release builds say so and go on.
    rumpuser_dprintf("rump kernel %llu: %zu bytes in %zu allocations not freed at halt\n",
                     static_cast<unsigned long long>(serial_), kmem_.in_use(), kmem_.live_allocations());
#ifndef NDEBUG
    panic("kernel memory leaked at halt");
#endif
  }
  this->~Kernel();
  rumpuser_free(this, sizeof(Kernel));
  if (world) {
    // Every fiber left goes with the world; nothing may name its backend
    // instance afterwards (another world may get its address).
    if (prev_backend == my_backend) prev_backend = nullptr;
    if (thread_ctx().backend == my_backend) thread_ctx().backend = nullptr;
    rumpuser_sim_destroy(world);
  }
  rumpuser_backend_switch(prev_backend);
}

}  // namespace rump
