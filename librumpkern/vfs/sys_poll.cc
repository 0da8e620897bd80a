// poll, ppoll, select, pselect6: readiness over any descriptor whose
// FileOps implements poll() (vfs/poll.h for the wait-queue mechanism).
#include <sys/poll.h>
#include <fcntl.h>
#include <sys/select.h>
#include <sys/time.h>

#include <climits>
#include <new>

#include "absl/cleanup/cleanup.h"
#include "kern/copy.h"
#include "kern/fork.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "vfs/poll.h"
#include "vfs/vfs.h"

namespace rump {

namespace {

constexpr int64_t kNsPerSec = 1000000000;

// The descriptors of one call with the files they name (nullptr: negative
// fd or bad descriptor).
struct PollSet {
  Kmem& km;
  pollfd* fds = nullptr;
  RefPtr<File>* files = nullptr;
  PollEntry* entries = nullptr;
  size_t n = 0;

  explicit PollSet(Kmem& k) : km(k) {}
  ~PollSet() {
    if (files)
      for (size_t i = 0; i < n; i++) files[i].~RefPtr<File>();
    if (entries)
      for (size_t i = 0; i < n; i++) entries[i].~PollEntry();
    Kmem::free(files);
    Kmem::free(entries);
    Kmem::free(fds);
  }
  Result<void> init(size_t count) {
    size_t c = count ? count : 1;
    fds = static_cast<pollfd*>(km.zalloc(sizeof(pollfd) * c));
    files = static_cast<RefPtr<File>*>(km.alloc(sizeof(RefPtr<File>) * c));
    entries = static_cast<PollEntry*>(km.alloc(sizeof(PollEntry) * c));
    if (!fds || !files || !entries) return err(ENOMEM);
    n = count;
    for (size_t i = 0; i < n; i++) {
      new (&files[i]) RefPtr<File>();
      new (&entries[i]) PollEntry();
    }
    return {};
  }
};

// Polls ps until something is ready, the deadline (monotonic ns; -1 none,
// 0 just look) or a signal. Bad descriptors give POLLNVAL. Returns the
// number of descriptors with events.
Result<int> do_poll(Lwp& l, PollSet& ps, int64_t deadline_ns) {
  for (size_t i = 0; i < ps.n; i++) {
    ps.fds[i].revents = 0;
    if (ps.fds[i].fd < 0) continue;
    Result<Ref<File>> f = fd_get(l, ps.fds[i].fd, true);
    if (f.ok()) ps.files[i] = RefPtr<File>(std::move(f.value()));
  }
  PollTable pt(ps.entries, ps.n);
  bool first = deadline_ns != 0;
  for (;;) {
    int count = 0;
    for (size_t i = 0; i < ps.n; i++) {
      pollfd& p = ps.fds[i];
      if (p.fd < 0) continue;
      if (!ps.files[i]) {
        p.revents = POLLNVAL;
        count++;
        continue;
      }
      File& f = *ps.files[i];
      pt.set_current(i);
      short ev = static_cast<short>(p.events | POLLERR | POLLHUP);
      p.revents = (f.flags() & O_PATH) ? POLLNVAL : f.ops().poll(f, ev, first ? &pt : nullptr);
      if (p.revents) count++;
    }
    first = false;
    if (count || deadline_ns == 0) return count;
    int e = pt.wait(l, deadline_ns);
    if (e == ETIMEDOUT) return 0;
    if (e) return err(e);
  }
}

int64_t deadline_after(int64_t ns) { return ns <= 0 ? 0 : poll_now_ns() + ns; }

// Replaces the LWP's signal mask for the call (ppoll, pselect6). end()
// says how the wait ended: after an interruption, the signals the
// temporary mask lets through are delivered before the old mask returns
// (end_temp_sigmask, kern/sig.cc).
class TempSigmask {
 public:
  TempSigmask(Lwp& l, const SigSet* mask) : l_(l), active_(mask != nullptr) {
    if (!active_) return;
    old_ = begin_temp_sigmask(l, *mask);
  }
  // Returns true if the process ended (return EINTR, touch nothing).
  bool end(bool interrupted) {
    if (!active_) return false;
    active_ = false;
    return end_temp_sigmask(l_, old_, interrupted);
  }
  ~TempSigmask() {
    if (active_) end_temp_sigmask(l_, old_, false);
  }
  TempSigmask(const TempSigmask&) = delete;
  TempSigmask& operator=(const TempSigmask&) = delete;

 private:
  Lwp& l_;
  bool active_;
  SigSet old_ = 0;
};

// Runs the wait of ppoll/pselect6 under the temporary mask (if any).
Result<int> poll_masked(Lwp& l, PollSet& ps, int64_t deadline_ns, const SigSet* mask) {
  TempSigmask tm(l, mask);
  Result<int> r = do_poll(l, ps, deadline_ns);
  if (tm.end(!r.ok() && r.error() == EINTR)) return err(EINTR);
  return r;
}

Result<long> poll_common(Lwp& l, UserPtr<void> ufds, unsigned long nfds, int64_t deadline_ns,
                         const SigSet* mask) {
  if (nfds > nofile_limit(l.proc())) return err(EINVAL);
  PollSet ps(l.kernel().kmem());
  TRY(ps.init(nfds));
  TRY(copyin(l, ufds.addr, ps.fds, sizeof(pollfd) * nfds));
  int n = TRY(poll_masked(l, ps, deadline_ns, mask));
  // Only revents goes back (Linux writes each pollfd's revents).
  for (size_t i = 0; i < nfds; i++)
    TRY(copyout(l, &ps.fds[i].revents, ufds.addr + i * sizeof(pollfd) + offsetof(pollfd, revents),
                sizeof(short)));
  return n;
}

Result<SigSet> copyin_sigmask(Lwp& l, uintptr_t uset, size_t size) {
  if (size != sizeof(SigSet)) return err(EINVAL);
  SigSet s = 0;
  TRY(copyin(l, uset, &s, sizeof s));
  return s;
}

bool timespec_valid(const timespec& ts) { return ts.tv_sec >= 0 && ts.tv_nsec >= 0 && ts.tv_nsec < kNsPerSec; }

int64_t timespec_ns(const timespec& ts) {
  if (ts.tv_sec > INT64_MAX / kNsPerSec - 1) return INT64_MAX / 2;
  return ts.tv_sec * kNsPerSec + ts.tv_nsec;
}

// select and pselect6: the fd_set bit maps become a PollSet.
constexpr short kInSet = POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR;
constexpr short kOutSet = POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR;
constexpr short kExSet = POLLPRI;

Result<long> select_common(Lwp& l, int nfds, UserPtr<void> ur, UserPtr<void> uw, UserPtr<void> ue,
                           int64_t deadline_ns, const SigSet* mask) {
  if (nfds < 0) return err(EINVAL);
  if (static_cast<uint64_t>(nfds) > nofile_limit(l.proc())) return err(EINVAL);
  Kmem& km = l.kernel().kmem();
  size_t words = (static_cast<size_t>(nfds) + 63) / 64;
  size_t bytes = words * 8;
  uint64_t* sets[3] = {};
  UserPtr<void> usets[3] = {ur, uw, ue};
  absl::Cleanup free_sets = [&] {
    for (uint64_t* s : sets) Kmem::free(s);
  };
  for (int k = 0; k < 3; k++) {
    sets[k] = static_cast<uint64_t*>(km.zalloc(bytes ? bytes : 8));
    if (!sets[k]) return err(ENOMEM);
    if (!usets[k].is_null() && bytes) TRY(copyin(l, usets[k].addr, sets[k], bytes));
  }
  auto bit = [](uint64_t* s, int fd) { return (s[fd / 64] >> (fd % 64)) & 1; };
  size_t count = 0;
  for (int fd = 0; fd < nfds; fd++)
    if (bit(sets[0], fd) | bit(sets[1], fd) | bit(sets[2], fd)) count++;
  PollSet ps(km);
  TRY(ps.init(count));
  size_t i = 0;
  for (int fd = 0; fd < nfds; fd++) {
    short ev = 0;
    if (bit(sets[0], fd)) ev |= kInSet;
    if (bit(sets[1], fd)) ev |= kOutSet;
    if (bit(sets[2], fd)) ev |= kExSet;
    if (!ev) continue;
    ps.fds[i].fd = fd;
    ps.fds[i].events = ev;
    i++;
  }
  // select reports a bad descriptor as EBADF, before waiting.
  for (size_t j = 0; j < ps.n; j++) TRY(fd_get(l, ps.fds[j].fd, false));
  TRY(poll_masked(l, ps, deadline_ns, mask));
  uint64_t* out[3] = {};
  absl::Cleanup free_out = [&] {
    for (uint64_t* s : out) Kmem::free(s);
  };
  for (int k = 0; k < 3; k++) {
    out[k] = static_cast<uint64_t*>(km.zalloc(bytes ? bytes : 8));
    if (!out[k]) return err(ENOMEM);
  }
  long ready = 0;
  for (size_t j = 0; j < ps.n; j++) {
    int fd = ps.fds[j].fd;
    short rev = ps.fds[j].revents;
    const short want[3] = {kInSet, kOutSet, kExSet};
    for (int k = 0; k < 3; k++) {
      if (bit(sets[k], fd) && (rev & want[k])) {
        out[k][fd / 64] |= uint64_t{1} << (fd % 64);
        ready++;
      }
    }
  }
  for (int k = 0; k < 3; k++)
    if (!usets[k].is_null() && bytes) TRY(copyout(l, out[k], usets[k].addr, bytes));
  return ready;
}

}  // namespace

Result<long> sys_poll(Lwp& l, UserPtr<void> fds, unsigned long nfds, int timeout) {
  int64_t deadline = timeout < 0 ? -1 : deadline_after(int64_t{timeout} * 1000000);
  return poll_common(l, fds, nfds, deadline, nullptr);
}

Result<long> sys_ppoll(Lwp& l, UserPtr<void> fds, unsigned long nfds, UserPtr<struct timespec> tmo_p,
                       UserPtr<sigset_t> sigmask, size_t sigsetsize) {
  int64_t deadline = -1;
  if (!tmo_p.is_null()) {
    timespec ts = TRY(copyin_obj(l, tmo_p));
    if (!timespec_valid(ts)) return err(EINVAL);
    deadline = deadline_after(timespec_ns(ts));
  }
  SigSet mask = 0;
  if (!sigmask.is_null()) mask = TRY(copyin_sigmask(l, sigmask.addr, sigsetsize));
  Result<long> r = poll_common(l, fds, nfds, deadline, sigmask.is_null() ? nullptr : &mask);
  if (!tmo_p.is_null() && (r.ok() || r.error() == EINTR)) {
    // Linux writes the time left back, also when a signal interrupted.
    int64_t left = deadline == 0 ? 0 : deadline - poll_now_ns();
    if (left < 0) left = 0;
    timespec ts{left / kNsPerSec, left % kNsPerSec};
    (void)copyout_obj(l, ts, tmo_p);  // Linux ignores a failure here
  }
  return r;
}

Result<long> sys_select(Lwp& l, int nfds, UserPtr<void> readfds, UserPtr<void> writefds, UserPtr<void> exceptfds,
                        UserPtr<struct timeval> timeout) {
  int64_t deadline = -1;
  if (!timeout.is_null()) {
    timeval tv = TRY(copyin_obj(l, timeout));
    if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000) return err(EINVAL);
    timespec ts{tv.tv_sec, tv.tv_usec * 1000};
    deadline = deadline_after(timespec_ns(ts));
  }
  Result<long> r = select_common(l, nfds, readfds, writefds, exceptfds, deadline, nullptr);
  if (!timeout.is_null() && (r.ok() || r.error() == EINTR)) {
    // Linux writes the time left back.
    int64_t left = deadline == 0 ? 0 : deadline - poll_now_ns();
    if (left < 0) left = 0;
    timeval tv{left / kNsPerSec, (left % kNsPerSec) / 1000};
    TRY(copyout_obj(l, tv, timeout));
  }
  return r;
}

Result<long> sys_pselect6(Lwp& l, int nfds, UserPtr<void> readfds, UserPtr<void> writefds, UserPtr<void> exceptfds,
                          UserPtr<struct timespec> timeout, UserPtr<void> sigmask) {
  int64_t deadline = -1;
  if (!timeout.is_null()) {
    timespec ts = TRY(copyin_obj(l, timeout));
    if (!timespec_valid(ts)) return err(EINVAL);
    deadline = deadline_after(timespec_ns(ts));
  }
  // Linux's sixth argument: { const sigset_t *ss; size_t ss_len; }.
  SigSet mask = 0;
  bool have_mask = false;
  if (!sigmask.is_null()) {
    struct {
      uintptr_t ss;
      size_t ss_len;
    } arg{};
    TRY(copyin(l, sigmask.addr, &arg, sizeof arg));
    if (arg.ss) {
      mask = TRY(copyin_sigmask(l, arg.ss, arg.ss_len));
      have_mask = true;
    }
  }
  Result<long> r = select_common(l, nfds, readfds, writefds, exceptfds, deadline, have_mask ? &mask : nullptr);
  if (l.dead_.load(std::memory_order_acquire)) return r;  // a signal the mask let through ended the process
  if (!timeout.is_null() && (r.ok() || r.error() == EINTR)) {
    int64_t left = deadline == 0 ? 0 : deadline - poll_now_ns();
    if (left < 0) left = 0;
    timespec ts{left / kNsPerSec, left % kNsPerSec};
    TRY(copyout_obj(l, ts, timeout));
  }
  return r;
}

}  // namespace rump
