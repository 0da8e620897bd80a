// The differential harness of the network tests: one scenario, written
// once as a template over the kernel it talks to, runs in a forked host
// child against the host kernel and in a process of a fresh rump kernel;
// every result and errno is logged and the two logs must be equal.
//
// SYS(name, args...) calls the host's name() or rump_sys_name(). Results
// are logged with R (exact value), F (a descriptor: only ">= 0" or the
// errno, as numbers differ) or V (a value the scenario computed). Both
// runs ignore SIGPIPE (EPIPE is what is compared) and see the same
// directory path (host: a fresh mkdtemp directory; rump: the same path in
// its tmpfs) and the same abstract-name prefix.
#pragma once

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

#include <rump/rump_syscalls.h>

#include "rump_test.h"

namespace net_test {

// The kernel's struct sigaction, for a rump process's signal actions.
struct KSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};
inline void* const kSigIgn = reinterpret_cast<void*>(uintptr_t{1});
inline int rump_set_action(int sig, void* handler) {
  KSigaction a{handler, 0, nullptr, 0};
  return rump_sys_rt_sigaction(sig, &a, nullptr, 8);
}

struct Log {
  char buf[48 * 1024];
  size_t n;
  bool overflow;
  void add(int line, const char* fmt, ...) __attribute__((format(printf, 3, 4))) {
    if (n == 0) std::memset(buf, 0, sizeof buf);
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    int w = snprintf(buf + n, sizeof buf - n, "%d: %s\n", line, tmp);
    if (w < 0 || static_cast<size_t>(w) >= sizeof buf - n) {
      overflow = true;
      return;
    }
    n += static_cast<size_t>(w);
  }
};

struct Env {
  char dir[64];       // an empty directory, same path in both kernels
  char abstract[32];  // a prefix for abstract names, unique on the host
};

template <bool Rump>
struct K {
  static constexpr bool kRump = Rump;
};

#define SYS(name, ...) (S::kRump ? static_cast<long>(rump_sys_##name(__VA_ARGS__)) : static_cast<long>(::name(__VA_ARGS__)))

inline long log_result(Log& L, int line, const char* text, long r, bool exact) {
  int e = errno;
  if (r < 0) L.add(line, "%s = -1 errno %d", text, e);
  else if (exact) L.add(line, "%s = %ld", text, r);
  else L.add(line, "%s = ok", text);
  errno = e;
  return r;
}
#define R(expr) ::net_test::log_result(L, __LINE__, #expr, (errno = 0, static_cast<long>(expr)), true)
#define F(expr) static_cast<int>(::net_test::log_result(L, __LINE__, #expr, (errno = 0, static_cast<long>(expr)), false))
#define V(fmt, ...) L.add(__LINE__, fmt, __VA_ARGS__)
// Reads an int socket option into the scenario's v (vl its length) and
// logs the call and the value with fmt.
#define GETOPT_V(fd, level, opt, fmt)                     \
  do {                                                    \
    vl = sizeof v;                                        \
    R(SYS(getsockopt, fd, level, opt, &v, &vl));          \
    V(fmt, v);                                            \
  } while (0)

// A sockaddr_un for a path inside env.dir, or an abstract name.
inline socklen_t path_addr(sockaddr_un& a, const Env& env, const char* name) {
  std::memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s/%s", env.dir, name);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + std::strlen(a.sun_path) + 1);
}
inline socklen_t abstract_addr(sockaddr_un& a, const Env& env, const char* name) {
  std::memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "%s-%s", env.abstract, name);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}
inline sockaddr* sa(sockaddr_un& a) { return reinterpret_cast<sockaddr*>(&a); }

// Logs an address: its length and bytes (the path or the abstract name).
inline void log_addr(Log& L, int line, const sockaddr_un& a, socklen_t len) {
  std::string s;
  size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
  for (size_t i = 0; i < n && i < sizeof a.sun_path; i++) s += a.sun_path[i] ? a.sun_path[i] : '@';
  L.add(line, "addr len %u family %d '%s'", len, len >= 2 ? a.sun_family : -1, s.c_str());
}
#define LOG_ADDR(a, len) ::net_test::log_addr(L, __LINE__, a, len)

using ScenarioFn = void (*)(Log&, const Env&);

// Can this process make a network namespace (root)? Asked in a child.
bool can_unshare_net();
// The host run of a scenario that changes network state enters a fresh
// network namespace of its own first (false, logged, if it cannot).
template <class S>
bool enter_netns(Log& L) {
  if constexpr (!S::kRump) {
    if (unshare(CLONE_NEWNET) != 0) {
      V("unshare failed %d", errno);
      return false;
    }
  }
  return true;
}

// An Ethernet interface named name ("shmif0", "shmif1" ... in the order
// they are made) without a carrier, so that neither kernel talks on it by
// itself: on the host a persistent tap whose descriptor is closed (in the
// scenario's own network namespace), in the rump kernel a shmif interface
// on a bus file of its own. 0 or -1.
int make_ether_host(const char* name);
int make_ether_rump(const char* name);
template <class S>
int make_ether(const char* name = "shmif0") {
  if constexpr (S::kRump) return make_ether_rump(name);
  else return make_ether_host(name);
}

// Sets IFF_UP on interface name (lo of a fresh host namespace is down).
// 0 or -1.
template <class S>
int if_up(const char* name) {
  int s = static_cast<int>(SYS(socket, AF_INET, SOCK_DGRAM, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name, sizeof ifr.ifr_name - 1);
  int r = static_cast<int>(SYS(ioctl, s, SIOCGIFFLAGS, &ifr));
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (r == 0) r = static_cast<int>(SYS(ioctl, s, SIOCSIFFLAGS, &ifr));
  SYS(close, s);
  return r;
}

// Writes value to the sysctl name ("net.ipv4.ip_default_ttl"): the host's
// /proc/sys file or the rump kernel's node. 0 or the errno.
template <class S>
int write_sysctl(const char* name, const char* value) {
  size_t n = std::strlen(value);
  if constexpr (S::kRump) {
    return rump_sys_sysctlbyname(name, nullptr, nullptr, value, n) == 0 ? 0 : errno;
  } else {
    std::string path = "/proc/sys/";
    for (const char* p = name; *p; p++) path += *p == '.' ? '/' : *p;
    int fd = open(path.c_str(), O_WRONLY);
    if (fd < 0) return errno;
    int e = write(fd, value, n) == static_cast<long>(n) ? 0 : errno;
    close(fd);
    return e;
  }
}

// The same for a sysctl that holds an int (the rump kernel's node takes
// it binary, the host's file as text).
template <class S>
int write_sysctl_int(const char* name, int value) {
  if constexpr (S::kRump) {
    return rump_sys_sysctlbyname(name, nullptr, nullptr, &value, sizeof value) == 0 ? 0 : errno;
  } else {
    return write_sysctl<S>(name, std::to_string(value).c_str());
  }
}

// Lets every group open ICMP datagram (ping) sockets
// (net.ipv4.ping_group_range "0 0" is root's, which both runs are); logs
// whether it could.
template <class S>
bool allow_ping(Log& L) {
  bool set = write_sysctl<S>("net.ipv4.ping_group_range", "0 0") == 0;
  V("ping_group_range set %d", set);
  return set;
}

// Runs host and rump versions and compares their logs.
void run_diff(ScenarioFn host, ScenarioFn rump);

// Runs fn as a process of a fresh rump kernel that ignores SIGPIPE, with
// env.dir made; used by run_diff and by the rump-only tests.
void in_rump(const Env& env, const std::function<void()>& fn);
Env make_env();

}  // namespace net_test
