// net.cc: what network interfaces need from the host: a file mapped shared
// between kernels with a cross-process wait on a word of it (the shmif
// bus), and host tap devices (the virt interface). Calls that wait give
// the virtual CPU back (KLOCK wrap).
#include <rump/rumpuser_net.h>

#include <fcntl.h>
#include <linux/futex.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "rumpuser_int.h"

using rumpuser_int::fault_inject;
using rumpuser_int::KlockWrap;
using rumpuser_int::retry_eintr;

extern "C" int rumpuser_shm_map(const char* path, size_t size, void** memp) {
  if (size == 0 || !path) return EINVAL;
  if (fault_inject(RUMPUSER_FAULT_IO)) return EMFILE;
  int fd;
  {
    KlockWrap wrap;
    fd = retry_eintr([&] { return open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644); });
  }
  if (fd < 0) return errno;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return e;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
  }
  // Several mappers may grow it at once: each only ever grows it, to the
  // same size, so none can cut another's contents.
  if (static_cast<uint64_t>(st.st_size) < size && ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int e = errno;
    close(fd);
    return e;
  }
  void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int e = errno;
  close(fd);
  if (m == MAP_FAILED) return e;
  *memp = m;
  return 0;
}

extern "C" int rumpuser_shm_wait(const volatile uint32_t* addr, uint32_t val, int64_t timeout_ns) {
  if (timeout_ns < 0) timeout_ns = 0;
  if (rumpuser_sim_of(rumpuser_int::thread_backend()) != nullptr) {
    // Virtual time: a short sleep lets the world run the writer.
    if (*addr != val) return 0;
    int64_t ns = timeout_ns < 1000000 ? timeout_ns : 1000000;
    rumpuser_clock_sleep(RUMPUSER_CLOCK_RELWALL, 0, static_cast<long>(ns));
    return *addr != val ? 0 : ETIMEDOUT;
  }
  struct timespec ts = {static_cast<time_t>(timeout_ns / 1000000000), static_cast<long>(timeout_ns % 1000000000)};
  long r;
  {
    KlockWrap wrap;
    // A shared (not private) futex: the word may be mapped by other
    // processes at other addresses.
    r = syscall(SYS_futex, const_cast<uint32_t*>(addr), FUTEX_WAIT, val, &ts, nullptr, 0);
  }
  if (r != 0 && errno == ETIMEDOUT) return ETIMEDOUT;
  return 0;  // woken, EAGAIN (the word changed) or EINTR: the caller looks again
}

extern "C" void rumpuser_shm_wake(const volatile uint32_t* addr) {
  syscall(SYS_futex, const_cast<uint32_t*>(addr), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

namespace {

// This process's id, read once and again in a forked child (getpid is a
// system call, dear on some hosts, and the bus lock is taken per frame).
std::atomic<pid_t> g_self_pid{0};

uint32_t self_pid() {
  pid_t p = g_self_pid.load(std::memory_order_relaxed);
  if (p != 0) return static_cast<uint32_t>(p);
  static const int atfork = pthread_atfork(nullptr, nullptr, [] { g_self_pid.store(0, std::memory_order_relaxed); });
  (void)atfork;
  p = getpid();
  g_self_pid.store(p, std::memory_order_relaxed);
  return static_cast<uint32_t>(p);
}

// Has host process pid ended? A zombie has: it runs no more code.
bool process_gone(uint32_t pid) {
  if (pid == 0 || pid >= RUMPUSER_SHM_LOCK_WAITERS) return false;
  if (kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
  char path[40];
  std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  // "pid (comm) S ...": the state follows the last ')'.
  const char* rp = std::strrchr(buf, ')');
  return rp != nullptr && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

std::atomic_ref<uint32_t> word(volatile uint32_t* addr) {
  return std::atomic_ref<uint32_t>(*const_cast<uint32_t*>(addr));
}

constexpr int64_t kShmLockCheckNs = 1000 * 1000;

}  // namespace

extern "C" int rumpuser_shm_lock(volatile uint32_t* addr) {
  const uint32_t self = self_pid();
  auto w = word(addr);
  uint32_t c = 0;
  if (w.compare_exchange_strong(c, self, std::memory_order_acquire)) return 0;
  for (int spin = 0; spin < 100; spin++) {
    __builtin_ia32_pause();
    c = 0;
    if (w.compare_exchange_strong(c, self, std::memory_order_acquire)) return 0;
  }
  // Contended: wait with the waiters bit set; a lock taken here keeps it
  // set, since others may still sleep (a futex mutex's state 2).
  for (;;) {
    c = w.load(std::memory_order_relaxed);
    if (c == 0) {
      if (w.compare_exchange_strong(c, self | RUMPUSER_SHM_LOCK_WAITERS, std::memory_order_acquire)) return 0;
      continue;
    }
    if (!(c & RUMPUSER_SHM_LOCK_WAITERS)) {
      if (!w.compare_exchange_strong(c, c | RUMPUSER_SHM_LOCK_WAITERS, std::memory_order_relaxed)) continue;
      c |= RUMPUSER_SHM_LOCK_WAITERS;
    }
    if (rumpuser_shm_wait(addr, c, kShmLockCheckNs) == ETIMEDOUT && process_gone(c & ~RUMPUSER_SHM_LOCK_WAITERS) &&
        w.compare_exchange_strong(c, self | RUMPUSER_SHM_LOCK_WAITERS, std::memory_order_acquire))
      return EOWNERDEAD;
  }
}

extern "C" void rumpuser_shm_unlock(volatile uint32_t* addr) {
  if (word(addr).exchange(0, std::memory_order_release) & RUMPUSER_SHM_LOCK_WAITERS) rumpuser_shm_wake(addr);
}

namespace {

// Attaches fd to the tap name with flags (TUNSETIFF).
int tap_attach(const char* name, short flags, int* fdp) {
  if (!name || !name[0] || std::strlen(name) >= IFNAMSIZ) return EINVAL;
  if (fault_inject(RUMPUSER_FAULT_NET)) return EIO;
  int fd = retry_eintr([] { return open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC); });
  if (fd < 0) return errno;
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  ifr.ifr_flags = flags;
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    int e = errno;
    close(fd);
    return e;
  }
  *fdp = fd;
  return 0;
}

// At most this many pieces per frame (more is EINVAL).
constexpr size_t kMaxFramePieces = 64;

}  // namespace

extern "C" int rumpuser_tap_open(const char* name, int* fdp) { return tap_attach(name, IFF_TAP | IFF_NO_PI, fdp); }

extern "C" int rumpuser_tap_open_vnet(const char* name, int* fdp) {
  int fd;
  int e = tap_attach(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, &fd);
  if (e) return e;
  // The header without num_buffers (10 bytes), and what the host may send
  // us: partial checksums and TCP segments up to 64 KiB (its GRO and its
  // own TSO); a host that refuses either makes the caller use a plain tap.
  static_assert(sizeof(struct rumpuser_vnet_hdr) == 10, "the virtio-net header without num_buffers");
  int hdrsz = static_cast<int>(sizeof(struct rumpuser_vnet_hdr));
  if (ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) != 0 ||
      ioctl(fd, TUNSETOFFLOAD, static_cast<unsigned long>(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) != 0) {
    e = errno;
    close(fd);
    return e == EINVAL || e == ENOTTY ? EOPNOTSUPP : e;
  }
  *fdp = fd;
  return 0;
}

extern "C" int rumpuser_tap_sendv(int fd, const struct rumpuser_iovec* iov, const size_t* niov, size_t nframes,
                                  size_t* nsent) {
  *nsent = 0;
  if (fault_inject(RUMPUSER_FAULT_NET)) return EIO;
  int first_err = 0;
  size_t sent = 0;
  size_t at = 0;  // the frame's first piece
  for (size_t i = 0; i < nframes; at += niov[i], i++) {
    if (niov[i] == 0 || niov[i] > kMaxFramePieces) {
      if (!first_err) first_err = EINVAL;
      continue;
    }
    // A tap takes a frame per write (it has no sendmmsg).
    auto* v = reinterpret_cast<const struct iovec*>(iov + at);
    ssize_t r = retry_eintr([&] { return writev(fd, v, static_cast<int>(niov[i])); });
    if (r < 0) {
      // EAGAIN: the tap's queue is full; the frame is lost as on a wire.
      if (!first_err) first_err = errno;
      continue;
    }
    sent++;
  }
  *nsent = sent;
  return sent == 0 && nframes != 0 && first_err != EAGAIN ? first_err : 0;
}

extern "C" int rumpuser_tap_send(int fd, const struct rumpuser_iovec* frames, size_t nframes, size_t* nsent) {
  size_t ones[kMaxFramePieces];
  *nsent = 0;
  for (size_t i = 0; i < kMaxFramePieces; i++) ones[i] = 1;
  int first = 0;
  for (size_t done = 0; done < nframes;) {
    size_t n = nframes - done < kMaxFramePieces ? nframes - done : kMaxFramePieces;
    size_t got = 0;
    int e = rumpuser_tap_sendv(fd, frames + done, ones, n, &got);
    if (e && !first) first = e;
    *nsent += got;
    done += n;
  }
  return *nsent == 0 && nframes != 0 ? first : 0;
}

extern "C" int rumpuser_tap_recvv(int fd, const struct rumpuser_iovec* iov, const size_t* niov, size_t nframes,
                                  size_t* lens, size_t* nrecv, int64_t timeout_ns) {
  *nrecv = 0;
  if (fault_inject(RUMPUSER_FAULT_NET)) return EIO;
  for (size_t i = 0; i < nframes; i++)
    if (niov[i] == 0 || niov[i] > kMaxFramePieces) return EINVAL;
  size_t n = 0;
  while (n < nframes) {
    auto* v = reinterpret_cast<const struct iovec*>(iov);
    ssize_t r = retry_eintr([&] { return readv(fd, v, static_cast<int>(niov[n])); });
    if (r < 0) {
      if (errno != EAGAIN) {
        int e = errno;
        *nrecv = n;
        return n ? 0 : e;
      }
      if (n > 0 || timeout_ns <= 0) break;
      struct pollfd p = {fd, POLLIN, 0};
      int ms = static_cast<int>((timeout_ns + 999999) / 1000000);
      int pr;
      {
        KlockWrap wrap;
        pr = poll(&p, 1, ms);
      }
      if (pr <= 0) break;  // timed out (or EINTR: the caller looks again)
      timeout_ns = 0;
      continue;
    }
    lens[n] = static_cast<size_t>(r);
    iov += niov[n];
    n++;
  }
  *nrecv = n;
  return 0;
}

extern "C" int rumpuser_tap_recv(int fd, struct rumpuser_iovec* bufs, size_t nbufs, size_t* lens, size_t* nrecv,
                                 int64_t timeout_ns) {
  size_t ones[kMaxFramePieces];
  for (size_t i = 0; i < kMaxFramePieces; i++) ones[i] = 1;
  return rumpuser_tap_recvv(fd, bufs, ones, nbufs < kMaxFramePieces ? nbufs : kMaxFramePieces, lens, nrecv,
                            timeout_ns);
}
