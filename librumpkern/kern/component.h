// component.h: pieces of the kernel a program links in or leaves out.
//
// A faction library (vfs, tmpfs, net ...) defines a static Component with
// RUMP_COMPONENT; loading the library registers it (no manual calls). Boot
// runs init functions in type order (kern, vfs, net, dev, postinit) and halt
// runs fini in reverse. Each component gets a per-kernel state slot, and a
// faction that keeps per-process state registers a ProcExtension (proc.h);
// both are reached only through the typed accessors below, which the
// faction declares once next to its component or extension:
//
//   Component g_vfs_component{"vfs", ComponentType::kVfs, vfs_init, vfs_fini};
//   const KernelSlot<VfsState> g_vfs_state{g_vfs_component};
//   VfsState* st = g_vfs_state.get(k);
#pragma once

#include "base/result.h"
#include "kern/proc.h"

namespace rump {

class Kernel;

enum class ComponentType : int { kKern = 0, kVfs = 1, kNet = 2, kDev = 3, kPostinit = 4 };

struct Component {
  const char* name;
  ComponentType type;
  Result<void> (*init)(Kernel& k);
  void (*fini)(Kernel& k);
  int slot = -1;
};

inline constexpr int kMaxComponents = 32;  // a bit each in Kernel::components_started_

struct ComponentRegistrar {
  explicit ComponentRegistrar(Component* c);
};
int component_count();
Component* component_at(int i);
// True if a component of that name is linked into the program.
bool component_linked(const char* name);

// A component's per-kernel state, typed. The kernel owns the slot, the
// component the object: init sets it, fini takes it back and frees it.
// get/set/take are defined in kernel.h (they need the complete Kernel).
template <class T>
class KernelSlot {
 public:
  explicit constexpr KernelSlot(const Component& c) : c_(&c) {}
  T* get(Kernel& k) const;
  void set(Kernel& k, T* state) const;
  // Returns the state and clears the slot.
  T* take(Kernel& k) const;

 private:
  const Component* c_;  // its slot is assigned when the program loads
};

// A ProcExtension's per-process state, typed: fork sets it in the
// unpublished child, exit takes it back. Whoever reads it concurrently with
// a set provides the locking (the process's lock_ where the state is made
// on demand).
template <class T>
class ProcSlot {
 public:
  explicit constexpr ProcSlot(const ProcExtension& ext) : ext_(&ext) {}
  T* get(const Proc& p) const { return static_cast<T*>(p.ext_[ext_->slot]); }
  void set(Proc& p, T* state) const { p.ext_[ext_->slot] = state; }
  T* take(Proc& p) const {
    T* s = get(p);
    p.ext_[ext_->slot] = nullptr;
    return s;
  }

 private:
  const ProcExtension* ext_;
};

#define RUMP_COMPONENT(var) static ::rump::ComponentRegistrar var##_registrar_(&(var))

}  // namespace rump
