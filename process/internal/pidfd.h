// -----------------------------------------------------------------------------
// File: process/internal/pidfd.h
// -----------------------------------------------------------------------------
//
// `pidfd_open(2)`, the one raw syscall of the process layer, with the ENOSYS
// (and EPERM, e.g. seccomp) fallback reported as -1.

#ifndef MP_PROCESS_INTERNAL_PIDFD_H_
#define MP_PROCESS_INTERNAL_PIDFD_H_

#include <sys/types.h>

namespace mp {
namespace process_internal {

// A close-on-exec pidfd for `pid` (readable once it ended), or -1 with errno
// set (ENOSYS when the kernel has no pidfd_open).
int PidfdOpen(pid_t pid) noexcept;

// Whether pidfd_open works here (probed once).
bool PidfdSupported() noexcept;

// Test hook: makes `PidfdSupported()` false, so the pipe fallback is used.
void DisablePidfdForTesting(bool disabled) noexcept;

}  // namespace process_internal
}  // namespace mp

#endif  // MP_PROCESS_INTERNAL_PIDFD_H_
