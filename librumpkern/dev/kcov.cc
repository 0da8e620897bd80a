// /dev/kcov: per-LWP coverage with Linux's interface (rump/kcov.h).
//
// Each open makes a buffer (kern/kcov.h); ioctl KCOV_INIT_TRACE sizes it,
// mmap (MAP_SHARED, offset 0, exactly the buffer's size) gives a process
// the buffer itself (in the host's address space, or as the pages of an
// isolated one), KCOV_ENABLE starts the
// calling LWP tracing into it and KCOV_DISABLE stops it. The node exists
// only in kernels built with -Dkcov=true. Device number 240:0 (Linux's
// first "local use" major): Linux itself serves kcov from debugfs.
#include <rump/kcov.h>

#include <sys/sysmacros.h>

#include "kern/component.h"
#include "kern/kcov.h"
#include "kern/kernel.h"
#include "vfs/vfs.h"

#if RUMP_KCOV
namespace rump {

namespace {

constexpr unsigned kKcovMajor = 240, kKcovMinor = 0;

class KcovOps : public FileOps {
 public:
  Result<long> ioctl(File& f, Lwp& l, unsigned long cmd, uintptr_t arg) const override {
    auto* kc = static_cast<Kcov*>(f.data_);
    switch (cmd) {
      case RUMP_KCOV_INIT_TRACE: TRY(kc->init_trace(arg)); return 0;
      case RUMP_KCOV_ENABLE: TRY(kc->enable(l, static_cast<int>(arg))); return 0;
      case RUMP_KCOV_DISABLE:
        if (arg != 0) return err(EINVAL);
        TRY(kc->disable(l));
        return 0;
      default: return err(ENOTTY);
    }
  }
  void close(File& f) const override {
    static_cast<Kcov*>(f.data_)->put();
    f.data_ = nullptr;
  }
};
const KcovOps g_kcov_ops;

Result<const FileOps*> open_kcov(Lwp& l, Vnode&, File& f, int) {
  f.data_ = TRY(Kcov::create(l.kernel().kmem()));
  return &g_kcov_ops;
}

// As Linux: the whole buffer from offset 0, once it has a size. The
// mapping holds a reference on the buffer.
Result<DeviceMem> kcov_mmap(Lwp& l, int fd, uint64_t len, uint64_t off) {
  Ref<File> f = TRY(fd_get(l, fd));
  if (&f->ops() != &g_kcov_ops) return err(ENODEV);
  auto* kc = static_cast<Kcov*>(f->data_);
  if (!kc->area() || off != 0 || len != kc->words() * sizeof(uint64_t)) return err(EINVAL);
  kc->get();
  return DeviceMem{kc->area(), [](void* c) { static_cast<Kcov*>(c)->put(); }, kc};
}

const SpecialOps g_kcov_special = {VType::kChr, makedev(kKcovMajor, kKcovMinor), &open_kcov};

struct RegisterKcov {
  RegisterKcov() {
    register_special(&g_kcov_special);
    set_device_mmap_hook(&kcov_mmap);
  }
} g_register_kcov;

// The node, once /dev exists.
Result<void> kcov_init(Kernel& k) {
  Ref<Vnode> root = vfs_state(k).rootvnode.to_ref();
  MutexLocker g(root->lock());
  Ref<Vnode> dev = TRY(root->lookup("dev"));
  dev->lock().assert_held();  // the same tree
  if (dev->lookup("kcov").ok()) return {};
  NewNode n;
  n.type = VType::kChr;
  n.mode = 0666;
  n.rdev = makedev(kKcovMajor, kKcovMinor);
  TRY(dev->mknod("kcov", n));
  return {};
}

Component g_kcov_component{"kcov", ComponentType::kPostinit, &kcov_init, nullptr};
RUMP_COMPONENT(g_kcov_component);

}  // namespace

}  // namespace rump
#endif  // RUMP_KCOV
