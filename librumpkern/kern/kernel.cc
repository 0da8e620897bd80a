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
#include "kern/sysctl.h"

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
    // A longer name is cut to the UTS limit (64 bytes).
    size_t n = strnlen(buf, sizeof c.hostname - 1);
    std::memcpy(c.hostname, buf, n);
    c.hostname[n] = '\0';
  }
  if (c.verbose < 0) {
    c.verbose = 0;
    if (rumpuser_getparam("RUMP_VERBOSE", buf, sizeof buf) == 0) c.verbose = atoi(buf) != 0 || buf[0] == '\0';
  }
  if (c.cache_pressure < 0) {
    c.cache_pressure = 0;
    if (rumpuser_getparam("RUMP_CACHE_PRESSURE", buf, sizeof buf) == 0) c.cache_pressure = atoi(buf) != 0;
  }
}

Kernel::Kernel(size_t memlimit, uint64_t serial) : kmem_(memlimit), procs_(kmem_), serial_(serial) {}

Kernel::~Kernel() = default;

void Kernel::printf(const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  size_t len = static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n) : sizeof line - 1;
  if (Msgbuf* mb = services_.msgbuf()) mb->append(line, len);
  if (cfg_.verbose > 0) rumpuser_dprintf("%.*s", static_cast<int>(len), line);
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
  k->set_cache_pressure(cfg.cache_pressure > 0);
  if (world) {
    k->sim_ = new (k->kmem_) SimState(world);
    if (!k->sim_) {
      k->halt();
      rumpuser_sim_destroy(world);
      return err(ENOMEM);
    }
  }
  k->procs_.set_maxproc(cfg.maxproc);
  rumpuser_faults* faults = nullptr;
  if (rumpuser_faults_create(&faults) != 0) {
    k->halt();
    return err(ENOMEM);
  }
  k->faults_.store(faults);
  k->boot_time_ns_ = mono_now_ns();
  Result<void> r = k->start(cfg);
  if (!r.ok()) {
    k->halt();
    return Error{r.error()};
  }
  return k;
}

// proc0 and lwp0, the kernel's own process and first thread, then init
// (pid 1): the parent of orphans and the home of implicit LWPs. Each is
// handed to the process table as soon as it exists, so that a failure
// half-way leaves halt() something it knows how to free.
Result<void> Kernel::start_boot_procs() {
  {
    MutexLocker g(procs_.lock());
    TRY(procs_.pids().init(cfg_.pid_max));
    TRY(procs_.pids().reserve(0));
  }
  Proc* p0 = new (kmem_) Proc(*this, 0);
  if (!p0) return err(ENOMEM);
  procs_.set_proc0(p0, nullptr);
  {
    MutexLocker g(procs_.lock());
    procs_.insert_locked(*p0);
    procs_.count_proc_unlimited_locked();
    p0->assert_tree_locked();
    p0->state_ = Proc::State::kActive;
  }
  Ref<Cred> root = TRY(Cred::create_root(kmem_));
  SigActs* sa0 = new (kmem_) SigActs();
  if (!sa0) return err(ENOMEM);
  {
    MutexLocker g(p0->lock_);
    p0->cred_ = root;
    p0->sigacts_ = RefPtr<SigActs>(kAdopt, sa0);
    std::strcpy(p0->comm_, "swapper");
  }
  Lwp* l0 = new (kmem_) Lwp(*this, *p0, 0, Lwp::Kind::kKthread);
  if (!l0) return err(ENOMEM);
  procs_.set_proc0(p0, l0);

  Proc* p1 = new (kmem_) Proc(*this, 1);
  if (!p1) return err(ENOMEM);
  {
    MutexLocker g(procs_.lock());
    if (Result<void> r = procs_.pids().reserve(1); !r.ok()) {
      delete p1;
      return r;
    }
    procs_.set_init(p1);
    procs_.insert_locked(*p1);
    procs_.count_proc_unlimited_locked();
    p0->assert_tree_locked();
    p1->assert_tree_locked();
    p1->parent_ = p0;
    p0->children_.push_back(*p1);
    // init leads its own group and session.
    p1->pgid_ = p1->sid_ = 1;
    procs_.pids().hold(1);
    procs_.pids().hold(1);
  }
  SigActs* sa1 = new (kmem_) SigActs();
  if (!sa1) return err(ENOMEM);
  {
    MutexLocker g(p1->lock_);
    p1->cred_ = root;
    p1->sigacts_ = RefPtr<SigActs>(kAdopt, sa1);
    std::strcpy(p1->comm_, "init");
  }
  MutexLocker g(procs_.lock());
  p1->assert_tree_locked();
  p1->state_ = Proc::State::kActive;
  return {};
}

Result<void> Kernel::start(const BootConfig& cfg) {
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

  // 4. proc0, lwp0 and init; the rest of boot runs as lwp0.
  TRY(start_boot_procs());
  RunAs as(*this, procs_.lwp0());

  // 5. Kernel services: message buffer, host name, sysctl, callouts.
  TRY(services_init(*this, cfg));
  printf("rump kernel %llu booting: %d CPU%s\n", static_cast<unsigned long long>(sim_ ? 1 : serial_), cfg.ncpu,
         cfg.ncpu == 1 ? "" : "s");

  // 6. Components, by type. Halt runs fini for every component whose init
  // ran, even one that failed half-way (fini tolerates a partial start).
  components_up_ = true;
  for (int type = 0; type <= static_cast<int>(ComponentType::kPostinit); type++) {
    for (int i = 0; i < component_count(); i++) {
      Component* c = component_at(i);
      if (static_cast<int>(c->type) != type) continue;
      components_started_ |= uint32_t{1} << i;
      if (c->init) {
        Result<void> r = c->init(*this);
        if (!r.ok()) {
          printf("component %s failed to start: error %d\n", c->name, r.error());
          return r;
        }
      }
    }
  }
  printf("rump kernel %llu ready\n", static_cast<unsigned long long>(sim_ ? 1 : serial_));
  return {};
}

void Kernel::stop_components() {
  if (!components_up_) return;
  for (int type = static_cast<int>(ComponentType::kPostinit); type >= 0; type--) {
    for (int i = component_count() - 1; i >= 0; i--) {
      Component* c = component_at(i);
      if (static_cast<int>(c->type) != type || !(components_started_ & (uint32_t{1} << i))) continue;
      if (c->fini) c->fini(*this);
    }
  }
  components_up_ = false;
  components_started_ = 0;
}

// The processes go: every one but proc0 and init is ended (exit1), the
// zombies nobody waited for are reaped, and the LWPs left (init's and
// proc0's, husks, implicit LWPs) are freed. Runs as lwp0.
void Kernel::end_processes() {
  Proc* p0 = procs_.proc0();
  Proc* p1 = procs_.init();
  auto other = [p0, p1](Proc& p) { return &p != p0 && &p != p1; };
  for (;;) {
    Proc* victim;
    {
      MutexLocker g(procs_.lock());
      victim = procs_.find_if_locked([&](Proc& p) {
        p.assert_tree_locked();
        return other(p) && p.state_ == Proc::State::kActive;
      });
    }
    if (!victim) break;
    exit1(*victim, nullptr, w_exitcode(0, SIGKILL));
    // It may be a zombie of a parent that never waits: reaped below.
  }
  MutexLocker g(procs_.lock());
  while (Proc* z = procs_.find_if_locked(other)) procs_.reap_locked(*z);
  KernelLwpList& all = procs_.lwps_locked();
  while (!all.empty()) {
    Lwp& l = all.front();
    procs_.remove_lwp_locked(l);
    if (l.proc_hook_.is_linked()) {
      Proc& p = l.proc();
      MutexLocker pg(p.lock_);
      p.lwps_.erase(p.lwps_.iterator_to(l));
      p.nlwps_--;
    }
    procs_.pids().release(l.tid());
    delete &l;
  }
}

void Kernel::halt() {
  // Scoped by hand: a sim kernel's backend goes with its world, below.
  const rumpuser_backend* my_backend = backend_;
  const rumpuser_backend* prev_backend = rumpuser_backend_switch(backend_);
  rumpuser_sim* world = sim_ ? sim_->world : nullptr;
  halting_.store(true);
  registry_remove(this);
  Proc* p0 = procs_.proc0();
  Proc* p1 = procs_.init();
  if (Lwp* l0 = procs_.lwp0()) {
    RunAs as(*this, l0);
    // Everyone out of the kernel first.
    drain_lwps([this](absl::FunctionRef<void(Lwp&)> visit) {
      MutexLocker g(procs_.lock());
      for (Lwp& l : procs_.lwps_locked()) visit(l);
    });
    stop_components();
    end_processes();
    if (p1) {
      for (int i = proc_extension_count() - 1; i >= 0; i--) proc_extension(i)->exit(*p1);
    }
    services_fini(*this);
  }
  {
    // Give the table's memory back now, so the leak check below sees it.
    MutexLocker g(procs_.lock());
    if (p1 && p0) {
      p0->assert_tree_locked();
      if (p1->sibling_hook_.is_linked()) p0->children_.erase(p0->children_.iterator_to(*p1));
    }
    procs_.clear_locked();
  }
  delete p1;
  delete procs_.lwp0();
  delete p0;
  procs_.set_init(nullptr);
  procs_.set_proc0(nullptr, nullptr);
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
  if (kmem_.in_use() != 0) {
    // Memory that did not come back is a kernel bug: debug builds (the
    // test suite) stop here; release builds say so and go on.
    rumpuser_dprintf("rump kernel %llu: %zu bytes in %zu allocations not freed at halt\n",
                     static_cast<unsigned long long>(serial_), kmem_.in_use(), kmem_.live_allocations());
#ifndef NDEBUG
    panic("kernel memory leaked at halt");
#endif
  }
  rumpuser_faults_destroy(faults_.exchange(nullptr));
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
