// component.h: pieces of the kernel a program links in or leaves out.
//
// A faction library (vfs, tmpfs, net ...) defines a static Component with
// RUMP_COMPONENT; loading the library registers it (no manual calls). Boot
// runs init functions in type order (kern, vfs, net, dev, postinit) and halt
// runs fini in reverse. Each component gets a per-kernel state slot.
#pragma once

#include "base/result.h"

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

inline constexpr int kMaxComponents = 32;

struct ComponentRegistrar {
  explicit ComponentRegistrar(Component* c);
};
int component_count();
Component* component_at(int i);
// True if a component of that name is linked into the program.
bool component_linked(const char* name);

#define RUMP_COMPONENT(var) static ::rump::ComponentRegistrar var##_registrar_(&(var))

}  // namespace rump
