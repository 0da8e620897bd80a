// prctl(2): the process options Linux programs set on themselves.
//
// PR_SET_NAME/PR_GET_NAME (the command name: per process here, Linux keeps
// it per thread), PR_SET_PDEATHSIG/PR_GET_PDEATHSIG (sent by exit1 when
// the parent exits), PR_SET_DUMPABLE/PR_GET_DUMPABLE,
// PR_SET_NO_NEW_PRIVS/PR_GET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER/
// PR_GET_CHILD_SUBREAPER (exit1 reparents orphans to the nearest
// subreaper), PR_GET_TID_ADDRESS, and PR_SET_MM with PR_SET_MM_ARG_START,
// _ARG_END, _ENV_START and _ENV_END (root's: CAP_SYS_RESOURCE): the
// process's argument and environment areas, which /proc/<pid>/cmdline and
// environ read, set as Linux's checkpoint/restore tools set them (this
// kernel has no exec to set them). Linux's checks: an address below
// 64 KiB or past the user range is EINVAL, and so is a start past its end
// (so the end is set first); an address with no mapping at or above it
// is EFAULT. PR_SET_MM_START_STACK names the process's stack, which
// /proc/<pid>/maps shows as [stack] (Linux's exec sets it; there is no
// exec here). PR_SET_MM_EXE_FILE names the process's executable by a
// descriptor (vfs/file.cc, through kern/file_map.h): what
// /proc/<pid>/exe shows. The other PR_SET_MM fields are not kept: EINVAL.
// Anything else is EINVAL, as an option Linux does not know.
#include <sys/prctl.h>

#include <cstring>

#include "kern/copy.h"
#include "kern/file_map.h"
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
    case PR_SET_MM: {
      unsigned long opt = arg2;
      if (arg5 || (arg4 && opt != PR_SET_MM_AUXV && opt != PR_SET_MM_MAP && opt != PR_SET_MM_MAP_SIZE))
        return err(EINVAL);
      if (opt == PR_SET_MM_MAP || opt == PR_SET_MM_MAP_SIZE) return err(EINVAL);
      if (!l.cred().capable(kCapSysResource)) return err(EPERM);
      if (opt == PR_SET_MM_EXE_FILE) {
        ExeFileHook hook = exe_file_hook();
        if (!hook) return err(EINVAL);
        TRY(hook(l, static_cast<int>(arg3)));
        return 0;
      }
      constexpr uint64_t kMinAddr = 65536;           // Linux's mmap_min_addr
      constexpr uint64_t kUserTop = uint64_t{1} << 47;  // TASK_SIZE, x86-64
      if (arg3 < kMinAddr || arg3 >= kUserTop) return err(EINVAL);
      // Linux's find_vma: some mapping ends above the address (it need not
      // contain it). Looked at before the process lock (the map's lock
      // ranks after it); the host's address space always has one (its
      // stack is at the top).
      bool mapped_above = true;
      if (UserSpace* us = l.user_space()) {
        mapped_above = false;
        us->for_each_mapping([&](const UserSpace::Mapping& m) {
          if (m.end > arg3) mapped_above = true;
        });
      }
      MutexLocker g(p.lock_);
      Proc::MmArgs a = p.mm_args_;
      switch (opt) {
        case PR_SET_MM_START_STACK: a.start_stack = arg3; break;
        case PR_SET_MM_ARG_START: a.arg_start = arg3; break;
        case PR_SET_MM_ARG_END: a.arg_end = arg3; break;
        case PR_SET_MM_ENV_START: a.env_start = arg3; break;
        case PR_SET_MM_ENV_END: a.env_end = arg3; break;
        default: return err(EINVAL);
      }
      if (a.arg_start > a.arg_end || a.env_start > a.env_end) return err(EINVAL);
      if (!mapped_above) return err(EFAULT);
      p.mm_args_ = a;
      return 0;
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
