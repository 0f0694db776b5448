#include "process/spin.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace mp {

bool MayUseSeveralCpus() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  // The raw system call returns the mask's size in bytes (> 0) on success.
  return ::syscall(SYS_sched_getaffinity, 0, sizeof(cpus), &cpus) > 0 &&
         CPU_COUNT(&cpus) > 1;
}

}  // namespace mp
