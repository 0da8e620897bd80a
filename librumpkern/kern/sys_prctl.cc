// prctl(2): the process options Linux programs set on themselves.
//
// PR_SET_NAME/PR_GET_NAME (the command name: per process here, Linux keeps
// it per thread), PR_SET_PDEATHSIG/PR_GET_PDEATHSIG (sent by exit1 when
// the parent exits), PR_SET_DUMPABLE/PR_GET_DUMPABLE,
// PR_SET_NO_NEW_PRIVS/PR_GET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER/
// PR_GET_CHILD_SUBREAPER (exit1 reparents orphans to the nearest
// subreaper), PR_GET_TID_ADDRESS. Anything else is EINVAL, as an option
// Linux does not know.
#include <sys/prctl.h>

#include <cstring>

#include "kern/copy.h"
#include "kern/kernel.h"
#include "kern/syscall_protos.h"

namespace rump {

namespace {

// Linux's strncpy_from_user for the name: at most n bytes, stopping at a
// NUL; EFAULT if a byte before that can't be read.
Result<void> copyin_name(Lwp& l, uintptr_t uaddr, char* out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c;
    TRY(copyin(l, uaddr + i, &c, 1));
    out[i] = c;
    if (c == '\0') return {};
  }
  return {};
}

}  // namespace

Result<long> sys_prctl(Lwp& l, int option, UserPtr<void> uarg2, unsigned long arg3, unsigned long arg4,
                       unsigned long arg5) {
  Proc& p = l.proc();
  // An address for the options that read or write memory, a number for
  // the others.
  unsigned long arg2 = uarg2.addr;
  switch (option) {
    case PR_SET_PDEATHSIG: {
      if (arg2 > static_cast<unsigned long>(kNsig)) return err(EINVAL);
      MutexLocker g(p.lock_);
      p.pdeath_signal_ = static_cast<int>(arg2);
      return 0;
    }
    case PR_GET_PDEATHSIG: {
      int sig;
      {
        MutexLocker g(p.lock_);
        sig = p.pdeath_signal_;
      }
      TRY(copyout_obj(l, sig, UserPtr<int>{arg2}));
      return 0;
    }
    case PR_GET_DUMPABLE: {
      MutexLocker g(p.lock_);
      return p.dumpable_;
    }
    case PR_SET_DUMPABLE: {
      // 2 (root-only core dumps) is for the sysctl, not for prctl.
      if (arg2 != 0 && arg2 != 1) return err(EINVAL);
      MutexLocker g(p.lock_);
      p.dumpable_ = static_cast<int>(arg2);
      return 0;
    }
    case PR_SET_NAME: {
      char name[sizeof p.comm_] = {};
      TRY(copyin_name(l, arg2, name, sizeof name - 1));
      MutexLocker g(p.lock_);
      std::memcpy(p.comm_, name, sizeof name);
      return 0;
    }
    case PR_GET_NAME: {
      char name[sizeof p.comm_];
      {
        MutexLocker g(p.lock_);
        std::memcpy(name, p.comm_, sizeof name);
      }
      name[sizeof name - 1] = '\0';
      TRY(copyout(l, name, arg2, sizeof name));
      return 0;
    }
    case PR_SET_CHILD_SUBREAPER: {
      MutexLocker g(p.tree_lock());
      p.child_subreaper_ = arg2 != 0;
      return 0;
    }
    case PR_GET_CHILD_SUBREAPER: {
      int v;
      {
        MutexLocker g(p.tree_lock());
        v = p.child_subreaper_ ? 1 : 0;
      }
      TRY(copyout_obj(l, v, UserPtr<int>{arg2}));
      return 0;
    }
    case PR_SET_NO_NEW_PRIVS: {
      if (arg2 != 1 || arg3 || arg4 || arg5) return err(EINVAL);
      MutexLocker g(p.lock_);
      p.no_new_privs_ = true;
      return 0;
    }
    case PR_GET_NO_NEW_PRIVS: {
      if (arg2 || arg3 || arg4 || arg5) return err(EINVAL);
      MutexLocker g(p.lock_);
      return p.no_new_privs_ ? 1 : 0;
    }
    case PR_GET_TID_ADDRESS: {
      uintptr_t a = l.clear_child_tid_.load(std::memory_order_relaxed);
      TRY(copyout_obj(l, a, UserPtr<uintptr_t>{arg2}));
      return 0;
    }
    default:
      return err(EINVAL);
  }
}

}  // namespace rump
