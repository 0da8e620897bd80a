// pipe and pipe2: a Pipe with a read end and a write end (vfs/pipe.h).
#include <fcntl.h>

#include "kern/clock.h"
#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"
#include "vfs/pipe.h"
#include "vfs/vfs.h"

namespace rump {

Result<long> sys_pipe2(Lwp& l, UserPtr<int> pipefd, int flags) {
  if (flags & ~(O_CLOEXEC | O_NONBLOCK)) return err(EINVAL);
  Kmem& km = l.kernel().kmem();
  Ref<Pipe> p = TRY(Pipe::create(km, Pipe::Origin{l.cred().euid, l.cred().egid, l.kernel().clock().realtime_ns()}));
  int fl = flags & O_NONBLOCK;
  // Each end holds a reference to the pipe (File::data_).
  Ref<File> rf = TRY(File::create(km, &kPipeFileOps, nullptr, O_RDONLY | fl));
  p->ref();
  rf->data_ = p.get();
  p->open_ends(true, false);
  Ref<File> wf = TRY(File::create(km, &kPipeFileOps, nullptr, O_WRONLY | fl));
  p->ref();
  wf->data_ = p.get();
  p->open_ends(false, true);
  bool cloexec = flags & O_CLOEXEC;
  int fds[2];
  fds[0] = TRY(fd_install(l, std::move(rf), cloexec));
  Result<int> w = fd_install(l, std::move(wf), cloexec);
  if (!w.ok()) {
    (void)fd_close(l, fds[0]);
    return err(w.error());
  }
  fds[1] = w.value();
  Result<void> c = copyout(l, fds, pipefd, sizeof fds);
  if (!c.ok()) {
    (void)fd_close(l, fds[0]);
    (void)fd_close(l, fds[1]);
    return err(c.error());
  }
  return 0;
}

Result<long> sys_pipe(Lwp& l, UserPtr<int> pipefd) { return sys_pipe2(l, pipefd, 0); }

}  // namespace rump
