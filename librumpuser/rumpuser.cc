// rumpuser.cc: initialisation and the upcall table, configuration
// parameters, console output, and ending the process.
#include <rump/rumpuser.h>

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "rumpuser_int.h"

namespace rumpuser_int {
std::atomic<const rumpuser_hyperup*> hyp{nullptr};
}  // namespace rumpuser_int

using rumpuser_int::hyp;

// Called once per kernel booted in the process. The upcalls carry no kernel
// argument, so one table serves all kernels; the latest call wins.
extern "C" int rumpuser_init(int version, const struct rumpuser_hyperup* h) {
  if (version != RUMPUSER_VERSION || h == nullptr) return EINVAL;
  hyp.store(h, std::memory_order_release);
  return 0;
}

namespace {

// Copies a NUL-terminated value into the caller's buffer.
int copy_param(const char* value, void* buf, size_t buflen) {
  size_t n = strlen(value) + 1;
  if (buf == nullptr || n > buflen) return ENOMEM;
  memcpy(buf, value, n);
  return 0;
}

}  // namespace

extern "C" int rumpuser_getparam(const char* name, void* buf, size_t buflen) {
  if (name == nullptr) return EINVAL;
  if (strcmp(name, RUMPUSER_PARAM_NCPU) == 0) {
    if (const char* v = getenv("RUMP_NCPU"); v != nullptr) return copy_param(v, buf, buflen);
    // Read once per process: glibc answers by opening and parsing a sysfs
    // file, about a sixth of a default boot's time when read per boot.
    static const long n = [] {
      long c = sysconf(_SC_NPROCESSORS_ONLN);
      return c < 1 ? 1L : c;
    }();
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%ld", n);
    return copy_param(tmp, buf, buflen);
  }
  if (strcmp(name, RUMPUSER_PARAM_HOSTNAME) == 0) {
    if (const char* v = getenv("RUMP_HOSTNAME"); v != nullptr) return copy_param(v, buf, buflen);
    char tmp[256];
    if (gethostname(tmp, sizeof tmp - 1) != 0) return errno;
    tmp[sizeof tmp - 1] = '\0';
    return copy_param(tmp, buf, buflen);
  }
  // RUMP_NCPU, RUMP_VERBOSE, RUMP_THREADS, RUMP_HOSTNAME, RUMP_MEMLIMIT and
  // any other name: straight from the environment.
  const char* v = getenv(name);
  if (v == nullptr) return ENOENT;
  return copy_param(v, buf, buflen);
}

extern "C" void rumpuser_putchar(int ch) {
  char c = static_cast<char>(ch);
  (void)rumpuser_int::retry_eintr([&] { return write(STDOUT_FILENO, &c, 1); });
}

extern "C" void rumpuser_dprintf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
}

extern "C" void rumpuser_exit(int how) {
  if (how == RUMPUSER_PANIC) abort();
  exit(how);
}

extern "C" int rumpuser_kill(int64_t pid, int sig) {
  if (kill(static_cast<pid_t>(pid), sig) != 0) return errno;
  return 0;
}

extern "C" void rumpuser_seterrno(int err) { errno = err; }
