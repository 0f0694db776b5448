// Test helper for shared_memory_test: creates a segment, reports its name and
// its tracker's pid on stdout, then exits normally, throws, or hangs.
//   shared_memory_test_helper exit|throw|hang|abort
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "shm/internal/tracker.h"
#include "shm/shared_memory.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const char* mode = argv[1];
  absl::StatusOr<mp::SharedMemory> shm = mp::SharedMemory::Create(8192);
  if (!shm.ok()) {
    std::fprintf(stderr, "%s\n", shm.status().ToString().c_str());
    return 1;
  }
  std::memcpy(shm->data(), "alive", 5);
  std::printf("%s %d\n", shm->name().c_str(),
              static_cast<int>(mp::shm_internal::TrackerPid()));
  std::fflush(stdout);
  if (std::strcmp(mode, "exit") == 0) return 0;
  if (std::strcmp(mode, "throw") == 0) throw std::runtime_error("boom");
  if (std::strcmp(mode, "hang") == 0) {
    for (;;) pause();
  }
  return 3;
}
