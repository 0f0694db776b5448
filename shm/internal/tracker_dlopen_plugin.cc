// Test plugin for tracker_dlopen_test: a shared library holding mp's shared
// memory (linked in statically), loaded with dlopen() by a program that does
// not link mp. Its C entry points:
//
//   int mp_plugin_create(const char* name);  // 0, or the status code
//   int mp_plugin_tracker_pid();             // shm_internal::TrackerPid()
//   int mp_plugin_startup_loads_self();      // StartupLoadsObjectAt(here)
#include <utility>

#include "shm/internal/tracker.h"
#include "shm/shared_memory.h"

namespace {
mp::SharedMemory* g_segment = nullptr;  // kept: its owner unlinks it
}  // namespace

extern "C" __attribute__((visibility("default"))) int mp_plugin_create(
    const char* name) {
  absl::StatusOr<mp::SharedMemory> shm = mp::SharedMemory::Create(4096, name);
  if (!shm.ok()) return static_cast<int>(shm.status().code());
  g_segment = new mp::SharedMemory(std::move(*shm));
  return 0;
}

extern "C" __attribute__((visibility("default"))) int mp_plugin_tracker_pid() {
  return static_cast<int>(mp::shm_internal::TrackerPid());
}

extern "C" __attribute__((visibility("default"))) int
mp_plugin_startup_loads_self() {
  return mp::shm_internal::StartupLoadsObjectAt(
             reinterpret_cast<const void*>(&mp_plugin_create))
             ? 1
             : 0;
}
