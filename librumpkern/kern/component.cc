// The component registry: filled by static registrars at load time.
#include "kern/component.h"

#include <cstring>

#include "kern/kernel.h"

namespace rump {

namespace {
Component* g_components[kMaxComponents];
int g_ncomponents;
}  // namespace

ComponentRegistrar::ComponentRegistrar(Component* c) {
  if (g_ncomponents >= kMaxComponents) panic("too many components");
  c->slot = g_ncomponents;
  g_components[g_ncomponents++] = c;
}

int component_count() { return g_ncomponents; }
Component* component_at(int i) { return g_components[i]; }

bool component_linked(const char* name) {
  for (int i = 0; i < g_ncomponents; i++)
    if (std::strcmp(g_components[i]->name, name) == 0) return true;
  return false;
}

}  // namespace rump
