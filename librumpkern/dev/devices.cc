// The memory devices and the console, Linux's numbers:
//   /dev/null 1:3, /dev/zero 1:5, /dev/full 1:7, /dev/random 1:8,
//   /dev/urandom 1:9 (entropy from rumpuser_getrandom), /dev/console 5:1
//   (output to the host through rumpuser_putchar; reads see end of file).
// Each driver registers with the special-file hook (vfs/file.h) for its
// device number. At boot the "dev" component makes /dev and the nodes in
// the root tmpfs; the "console" postinit component gives init descriptors
// 0, 1 and 2 on the console, so implicit-context writes to fd 1 reach the
// host's console (processes forked from init inherit them).
#include <fcntl.h>
#include <sys/poll.h>
#include <sys/sysmacros.h>

#include <cstring>

#include "kern/component.h"
#include "kern/kernel.h"
#include "vfs/vfs.h"

namespace rump {

namespace {

constexpr size_t kChunk = 4096;
const char kZeros[kChunk] = {};

// Consumes a write whole (null, zero, random).
Result<size_t> sink(Uio& uio) {
  size_t n = uio.resid;
  uio.resid = 0;
  return n;
}

Result<size_t> fill_zeros(Uio& uio) {
  size_t done = 0;
  while (uio.resid > 0) {
    size_t n = uio.resid < kChunk ? uio.resid : kChunk;
    Result<void> r = uio.copyout(kZeros, n);
    if (!r.ok()) {
      if (done) break;
      return err(r.error());
    }
    done += n;
  }
  return done;
}

class NullOps : public FileOps {
 public:
  Result<size_t> read(File&, Uio&, uint64_t&) const override { return size_t{0}; }
  Result<size_t> write(File&, Uio& uio, uint64_t&) const override { return sink(uio); }
  bool seekable() const override { return true; }
};

class ZeroOps : public FileOps {
 public:
  Result<size_t> read(File&, Uio& uio, uint64_t&) const override { return fill_zeros(uio); }
  Result<size_t> write(File&, Uio& uio, uint64_t&) const override { return sink(uio); }
  bool seekable() const override { return true; }
};

class FullOps : public FileOps {
 public:
  Result<size_t> read(File&, Uio& uio, uint64_t&) const override { return fill_zeros(uio); }
  Result<size_t> write(File&, Uio& uio, uint64_t&) const override {
    if (uio.resid == 0) return size_t{0};
    return err(ENOSPC);
  }
  bool seekable() const override { return true; }
};

class RandomOps : public FileOps {
 public:
  Result<size_t> read(File&, Uio& uio, uint64_t&) const override {
    char buf[256];
    size_t done = 0;
    while (uio.resid > 0) {
      size_t want = uio.resid < sizeof buf ? uio.resid : sizeof buf;
      size_t got = 0;
      int e = rumpuser_getrandom(buf, want, 0, &got);
      if (e == 0 && got > 0) e = uio.copyout(buf, got).error();
      if (e) {
        if (done) break;
        return err(e);
      }
      done += got;
      if (got < want) break;
    }
    return done;
  }
  Result<size_t> write(File&, Uio& uio, uint64_t&) const override { return sink(uio); }
  bool seekable() const override { return true; }
};

class ConsoleOps : public FileOps {
 public:
  Result<size_t> read(File&, Uio&, uint64_t&) const override { return size_t{0}; }
  Result<size_t> write(File&, Uio& uio, uint64_t&) const override {
    char buf[256];
    size_t done = 0;
    while (uio.resid > 0) {
      size_t n = uio.resid < sizeof buf ? uio.resid : sizeof buf;
      Result<void> r = uio.copyin(buf, n);
      if (!r.ok()) {
        if (done) break;
        return err(r.error());
      }
      for (size_t i = 0; i < n; i++) rumpuser_putchar(static_cast<unsigned char>(buf[i]));
      done += n;
    }
    return done;
  }
};

const NullOps g_null;
const ZeroOps g_zero;
const FullOps g_full;
const RandomOps g_random;
const ConsoleOps g_console;

struct Device {
  const char* name;
  unsigned major, minor;
  mode_t mode;
  const FileOps* ops;
};
const Device kDevices[] = {
    {"null", 1, 3, 0666, &g_null},      {"zero", 1, 5, 0666, &g_zero},
    {"full", 1, 7, 0666, &g_full},      {"random", 1, 8, 0666, &g_random},
    {"urandom", 1, 9, 0666, &g_random}, {"console", 5, 1, 0600, &g_console},
};

template <int I>
Result<const FileOps*> open_dev(Lwp&, Vnode&, File&, int) {
  return kDevices[I].ops;
}

const SpecialOps g_specials[] = {
    {VType::kChr, makedev(1, 3), &open_dev<0>}, {VType::kChr, makedev(1, 5), &open_dev<1>},
    {VType::kChr, makedev(1, 7), &open_dev<2>}, {VType::kChr, makedev(1, 8), &open_dev<3>},
    {VType::kChr, makedev(1, 9), &open_dev<4>}, {VType::kChr, makedev(5, 1), &open_dev<5>},
};
struct RegisterAll {
  RegisterAll() {
    for (const SpecialOps& s : g_specials) register_special(&s);
  }
} g_register_all;

// /dev in the root file system, with a node per device.
Result<void> dev_init(Kernel& k) {
  Ref<Vnode> root = vfs_state(k).rootvnode.to_ref();
  Mount& m = root->mount();
  MutexLocker g(m.lock_);
  Result<Ref<Vnode>> d = root->lookup("dev");
  if (!d.ok()) {
    NewNode n;
    n.type = VType::kDir;
    n.mode = 0755;
    d = root->mkdir("dev", n);
  }
  if (!d.ok()) return err(d.error());
  Ref<Vnode> dev = std::move(d.value());
  for (const Device& x : kDevices) {
    if (dev->lookup(x.name).ok()) continue;
    NewNode n;
    n.type = VType::kChr;
    n.mode = x.mode;
    n.rdev = makedev(x.major, x.minor);
    TRY(dev->mknod(x.name, n));
  }
  return {};
}

Component g_dev_component{"dev", ComponentType::kDev, &dev_init, nullptr};
RUMP_COMPONENT(g_dev_component);

// init's descriptors 0, 1, 2: one description of /dev/console.
Result<void> console_init(Kernel& k) {
  if (!k.procs().init()) return {};
  Ref<Vnode> root = vfs_state(k).rootvnode.to_ref();
  RefPtr<Vnode> cons;
  {
    MutexLocker g(root->mount().lock_);
    Ref<Vnode> dev = TRY(root->lookup("dev"));
    cons = RefPtr<Vnode>(TRY(dev->lookup("console")));
  }
  Ref<File> f = TRY(File::create(k.kmem(), &g_console, std::move(cons), O_RDWR | kOLargefile));
  ProcVfs& pv = proc_vfs(*k.procs().init());
  for (int fd = 0; fd < 3; fd++) {
    RefPtr<File> old = TRY(pv.fdt->install_at(Ref<File>(*f), fd, false, 3));
    (void)old;
  }
  return {};
}

Component g_console_component{"console", ComponentType::kPostinit, &console_init, nullptr};
RUMP_COMPONENT(g_console_component);

}  // namespace

}  // namespace rump
