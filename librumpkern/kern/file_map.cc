// file_map.cc: the file mapping hook (see file_map.h).
#include "kern/file_map.h"

#include <atomic>

namespace rump {

namespace {
// Written while libraries load, read by mmap: process-wide by design, as
// the other load-time registries.
std::atomic<MmapFileHook> g_file_hook{nullptr};
std::atomic<ExeFileHook> g_exe_hook{nullptr};
}  // namespace

void set_mmap_file_hook(MmapFileHook hook) { g_file_hook.store(hook); }
MmapFileHook mmap_file_hook() { return g_file_hook.load(std::memory_order_relaxed); }
void set_exe_file_hook(ExeFileHook hook) { g_exe_hook.store(hook); }
ExeFileHook exe_file_hook() { return g_exe_hook.load(std::memory_order_relaxed); }

}  // namespace rump
