// syscall_fuzz: sequences of system calls from an isolated process.
//
// Each input boots a fresh kernel (a few microseconds), makes a process with
// an isolated address space holding a small read-write scratch area and a
// read-only page, and decodes the input into system calls: one byte picks
// the call from the table, one byte per argument picks a value from pools
// of small integers, descriptors, limits, and addresses (inside the
// scratch area, the read-only page, NULL, unmapped, straddling the end of a
// mapping, wrapping). The kernel must answer every call and give back all
// of its memory at halt (a debug build panics on a leak). A call given a
// wrapping pointer for memory it reads or writes must answer EFAULT, or
// what the same call answers with that pointer at zeroed memory (it did
// not touch it): the second run is made in a copy-on-write child, so
// that the sequence goes on unchanged.
//
// Built as a libFuzzer target with -Dfuzz=true (clang); syscall_fuzz_replay
// runs seeded random inputs in the normal test suite.
#include <rump/kcov.h>
#include <rump/rump.h>
#include <rump/sim.h>
#include <fcntl.h>
#include <sys/mman.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kern/syscall.h"
#include "syscall_skip.h"

namespace {

constexpr uintptr_t kScratch = 0x400000;
constexpr size_t kScratchLen = 8 * 4096;
constexpr uintptr_t kReadOnly = kScratch + kScratchLen + 4096;  // a gap, then one page
constexpr uintptr_t kProbe = 0x800000;                           // zeroed memory for the second run
constexpr size_t kProbeLen = 2 * 4096;

// Calls the target never makes: they end the calling process or halt the
// kernel, or hand the LWP to a guest (each has its own tests).
constexpr const char* kNeverCalls[] = {"exit", "exit_group", "reboot", "vmspace_ctl"};

bool never_called(const char* name) {
  for (const char* n : kNeverCalls)
    if (std::strcmp(n, name) == 0) return true;
  return false;
}

// Every other call is in the table, including those that may wait for
// good (pause, a read of an empty pipe, a ten-year sleep): in sim mode a
// wait for good ends the input (rump_sim_run says EDEADLK once every
// client fiber waits and no timer is left; a long sleep is virtual time).
// On the pthread backend such calls are left out when the input is run
// (the same input bytes name the same calls on both backends).
const std::vector<const rump::SyscallName*>& calls() {
  static std::vector<const rump::SyscallName*> v = [] {
    std::vector<const rump::SyscallName*> out;
    for (size_t i = 0; i < rump::kSyscallNameCount; i++)
      if (!never_called(rump::kSyscallNames[i].name)) out.push_back(&rump::kSyscallNames[i]);
    return out;
  }();
  return v;
}

long pick_int(uint8_t b) {
  static const long kInts[] = {0, 1, 2, 3, 4, 5, -1, 8, 16, 64, 255, 256, 4096, 0777, 0644, 01000000,
                               INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, 0x80000000L, -4096, 100, 1000};
  if (b < 128) return b % 16;
  return kInts[b % (sizeof kInts / sizeof kInts[0])];
}

long pick_ptr(uint8_t b) {
  switch (b % 8) {
    case 0: return 0;
    case 1: return static_cast<long>(kScratch + (b * 61) % kScratchLen);  // inside
    case 2: return static_cast<long>(kScratch + (b % 64) * 8);            // aligned, low
    case 3: return static_cast<long>(kReadOnly + (b % 16) * 16);          // read-only page
    case 4: return static_cast<long>(kScratch + kScratchLen - (b % 32));  // straddles the end
    case 5: return static_cast<long>(kScratch + kScratchLen + 16);        // the unmapped gap
    case 6: return static_cast<long>(~0UL - (b % 64));                     // wraps (never mappable)
    default: return static_cast<long>(kScratch + 1024);                   // a path-ish string
  }
}

// Trace the calls of each input into a kcov buffer, as a coverage-guided
// executor would (syscall_fuzz_replay --bench-kcov).
bool g_kcov = false;

// SYSCALL_FUZZ_PRINT=1: each call and its result on stderr (to read a
// reproducer).
const bool g_print = std::getenv("SYSCALL_FUZZ_PRINT") != nullptr;

// Sim mode (the default): every input runs on a "sim" kernel seeded from
// the input itself, so a crash found by the fuzzer replays bit for bit.
// SYSCALL_FUZZ_BACKEND=pthread runs inputs on host threads instead.
bool g_sim = [] {
  const char* b = std::getenv("SYSCALL_FUZZ_BACKEND");
  return b == nullptr || std::strcmp(b, "pthread") != 0;
}();

bool wraps(uint8_t b) { return b % 8 == 6; }

// The pointer arguments the call reads or writes through, given its
// arguments. futex's fourth is a timeout only for the operations that
// wait; for the others it is a count (val2), whose value picks the path.
unsigned memory_args(const rump::SyscallName& s, const long a[6]) {
  unsigned m = rump_test::memory_args(s.name, s.ptr_mask);
  if (std::strcmp(s.name, "futex") == 0) {
    switch (a[1] & 0x7f) {  // FUTEX_CMD_MASK: without PRIVATE and CLOCK_REALTIME
      case 0: case 6: case 9: case 11: case 13: break;  // WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2
      default: m &= ~(1u << 3);
    }
  }
  return m;
}

// The same call with each wrapping memory argument at fresh zeroed memory,
// in a copy-on-write child of the calling process (its descriptors
// copied); the caller goes on as itself. False: no second run to compare
// with.
bool second_run(const rump::SyscallName& s, const long a[6], unsigned bad, long* result) {
  lwp* self = rump_lwproc_curlwp();
  pid_t parent = rump_sys_getpid();
  if (rump_lwproc_rfork(RUMP_RFFDG) != 0) return false;
  pid_t child = rump_sys_getpid();
  // A scalar that names the caller or the child (a pid) means another
  // process in the second run: no comparison.
  bool names_pid = false;
  for (int j = 0; j < s.nargs; j++)
    if (!(s.ptr_mask >> j & 1) && (a[j] == parent || a[j] == child)) names_pid = true;
  long b[6];
  for (int j = 0; j < 6; j++) b[j] = (bad >> j & 1) ? static_cast<long>(kProbe) : a[j];
  void* m = rump_sys_mmap(reinterpret_cast<void*>(kProbe), kProbeLen, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  bool ok = m != MAP_FAILED && !names_pid;
  if (ok) *result = rump_syscall(s.nr, b);
  if (rump_lwproc_curlwp() != nullptr) rump_lwproc_releaselwp();
  rump_lwproc_switch(self);
  rump_sys_wait4(child, nullptr, 0, nullptr);
  return ok;
}

// Whether the scratch area still holds what before does.
bool scratch_unchanged(const unsigned char* before) {
  static unsigned char now[kScratchLen];
  if (rump_copyin(reinterpret_cast<void*>(kScratch), now, kScratchLen) != 0) return false;
  return std::memcmp(before, now, kScratchLen) == 0;
}

}  // namespace

void syscall_fuzz_use_kcov(bool on) { g_kcov = on; }

// The input byte that selects the call named name, or -1 if the target
// does not make it (for the seed and dictionary writer).
int syscall_fuzz_call_byte(const char* name) {
  const auto& table = calls();
  for (size_t i = 0; i < table.size() && i < 256; i++)
    if (std::strcmp(table[i]->name, name) == 0) return static_cast<int>(i);
  return -1;
}

// How many argument bytes the call selected by byte b takes, and which of
// them are pointers (bit j: argument j).
void syscall_fuzz_call_shape(uint8_t b, int* nargs, unsigned* ptr_mask) {
  const rump::SyscallName& s = *calls()[b % calls().size()];
  *nargs = s.nargs;
  *ptr_mask = s.ptr_mask;
}

namespace {

// The input's seed for sim mode: FNV-1a over every byte, so that an input
// names its own schedule and replays bit for bit.
uint64_t input_seed(const uint8_t* data, size_t size) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 0x100000001b3ULL;
  return h;
}

// FNV-1a over each call's number and result, in order (the trace hook).
void hash_call(void* arg, long nr, const long*, long result) {
  auto* h = static_cast<uint64_t*>(arg);
  for (long v : {nr, result})
    for (int b = 0; b < 64; b += 8) *h = (*h ^ ((static_cast<uint64_t>(v) >> b) & 0xff)) * 0x100000001b3ULL;
}

struct Input {
  const uint8_t* data;
  size_t size;
};

// The call and its result, and a hash of the scratch area after it (a
// difference between two runs shows at the call that made it).
void print_call(const rump::SyscallName& s, const long a[6], long r) {
  static unsigned char buf[kScratchLen];
  uint64_t h = 0xcbf29ce484222325ULL;
  if (rump_lwproc_curlwp() != nullptr && rump_copyin(reinterpret_cast<void*>(kScratch), buf, sizeof buf) == 0)
    for (unsigned char c : buf) h = (h ^ c) * 0x100000001b3ULL;
  std::fprintf(stderr, "%s(%ld, %ld, %ld, %ld, %ld, %ld) = %ld  [scratch %016llx]\n", s.name, a[0], a[1], a[2], a[3],
               a[4], a[5], r, static_cast<unsigned long long>(h));
}

// The body of one input, on a thread (pthread) or a client fiber (sim) of
// the current kernel.
void run_input(void* p) {
  const uint8_t* data = static_cast<Input*>(p)->data;
  size_t size = static_cast<Input*>(p)->size;
  if (rump_lwproc_rfork(RUMP_RFFDG | RUMP_RFVMSPACE) != 0) abort();
  void* m = rump_sys_mmap(reinterpret_cast<void*>(kScratch), kScratchLen, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  void* ro = rump_sys_mmap(reinterpret_cast<void*>(kReadOnly), 4096, PROT_READ,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (m == MAP_FAILED || ro == MAP_FAILED) abort();
  // Standard descriptors on /dev/null: fuzzed writes to them would flood
  // the host's console with noise (the path is read from
  // the guest space; the scratch area's path overwrites it below).
  static const char kNull[] = "/dev/null";
  if (rump_copyout(kNull, reinterpret_cast<void*>(kScratch + 1024), sizeof kNull) != 0) abort();
  int null = rump_sys_open(reinterpret_cast<const char*>(kScratch + 1024), O_RDWR);
  if (null < 0) abort();
  for (int fd = 0; fd <= 2; fd++)
    if (fd != null && rump_sys_dup2(null, fd) != fd) abort();
  if (null > 2) rump_sys_close(null);
  rump_kcov* kc = nullptr;
  if (g_kcov) {
    if (rump_kcov_open(64 * 1024, &kc) != 0 || rump_kcov_enable(kc, RUMP_KCOV_TRACE_PC) != 0) abort();
  }
  // Some recognisable content: a path and a few integers.
  static const char kPath[] = "/tmp/fuzz/a/../b";
  if (rump_copyout(kPath, reinterpret_cast<void*>(kScratch + 1024), sizeof kPath) != 0) abort();

  size_t i = 0;
  const auto& table = calls();
  while (i + 1 < size) {
    const rump::SyscallName& s = *table[data[i++] % table.size()];
    long a[6] = {};
    unsigned bad = 0;  // memory arguments given a wrapping pointer
    for (int j = 0; j < s.nargs && i < size; j++, i++) {
      a[j] = (s.ptr_mask & (1u << j)) ? pick_ptr(data[i]) : pick_int(data[i]);
      if (wraps(data[i])) bad |= 1u << j;
    }
    bad &= memory_args(s, a);
    if (rump_lwproc_curlwp() == nullptr) {
      // A call ended the process (a signal to itself): carry on as a new one.
      if (rump_lwproc_rfork(RUMP_RFFDG | RUMP_RFVMSPACE) != 0) break;
      if (kc) rump_kcov_enable(kc, RUMP_KCOV_TRACE_PC);
    }
    if (!g_sim && rump_test::sweep_skips(s.name)) continue;  // may wait for good on host threads
    // The scratch memory before a call with a wrapping pointer: the second
    // run compares only if the call wrote none of it (a call that failed
    // after writing, as capget's version write-back, leaves the second run
    // other input).
    static unsigned char before[kScratchLen];
    bool snap = bad != 0 && rump_copyin(reinterpret_cast<void*>(kScratch), before, kScratchLen) == 0;
    long r = rump_syscall(s.nr, a);
    if (g_print) print_call(s, a, r);
    if (r < 0 && r >= -4095 && -r >= 134) {
      std::fprintf(stderr, "syscall_fuzz: %s returned %ld, not an errno\n", s.name, r);
      abort();
    }
    long good = 0;
    if (bad && r != -EFAULT && snap && rump_lwproc_curlwp() != nullptr && scratch_unchanged(before) &&
        second_run(s, a, bad, &good) && good != r) {
      std::fprintf(stderr,
                   "syscall_fuzz: %s(%ld, %ld, %ld, %ld, %ld, %ld) returned %ld with a wrapping pointer (mask %#x), "
                   "%ld with zeroed memory there: neither EFAULT nor the pointer unused\n",
                   s.name, a[0], a[1], a[2], a[3], a[4], a[5], r, bad, good);
      abort();
    }
  }
  if (kc) {
    // The LWP may be gone (the process ended): then it let go already.
    rump_kcov_disable(kc);
    rump_kcov_close(kc);
  }
  rump_lwproc_switch(nullptr);
}

uint64_t g_trace_hash = 0;

}  // namespace

void syscall_fuzz_use_sim(bool on) { g_sim = on; }
uint64_t syscall_fuzz_trace_hash() { return g_trace_hash; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  struct rump_kernel* k = nullptr;
  struct rump_boot_config cfg;
  rump_boot_config_init(&cfg);
  cfg.ncpu = 1;
  cfg.memlimit = 64 << 20;
  if (g_sim) {
    cfg.backend = "sim";
    cfg.seed = input_seed(data, size);
  }
  if (rump_kernel_boot(&cfg, &k) != 0) abort();
  g_trace_hash = 0xcbf29ce484222325ULL;
  if (rump_kernel_set_trace(k, hash_call, &g_trace_hash) != 0) abort();
  Input in{data, size};
  if (g_sim) {
    if (rump_sim_spawn(k, run_input, &in) != 0) abort();
    int rv = rump_sim_run(k);
    if (rv != 0 && rv != EDEADLK) abort();  // EDEADLK: the input blocked itself for good (pause, a read of an empty pipe)
  } else {
    rump_kernel_set_current(k);
    run_input(&in);
    rump_kernel_set_current(nullptr);
  }
  if (rump_kernel_halt(k) != 0) abort();
  return 0;
}
