// -----------------------------------------------------------------------------
// File: shm/internal/tracker.h
// -----------------------------------------------------------------------------
//
// The shared memory resource tracker: a helper process, started the first
// time a process creates an owned segment, that unlinks the segments this
// process still owns when it dies (however it dies, SIGKILL included).
//
//   MP_RETURN_IF_ERROR(shm_internal::TrackSegment("psm_1234abcd"));
//   ...
//   shm_internal::UntrackSegment("psm_1234abcd");   // after unlinking it
//
// Design: the registry is an anonymous MAP_SHARED table mapped before the
// tracker is forked, so the creator holds no fd for it (nothing a fork child
// could inherit and keep open, nothing a fd leak check sees). The tracker is a
// grandchild (double fork: it is never our zombie), in its own session,
// closes every inherited fd, blocks all signals, and waits on a pidfd of the
// creator. When the creator exits it unlinks every name still registered and
// exits, silently. A fork child of the creator that creates segments gets its
// own tracker.

#ifndef MP_SHM_INTERNAL_TRACKER_H_
#define MP_SHM_INTERNAL_TRACKER_H_

#include <sys/types.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mp {
namespace shm_internal {

// TrackSegment()
//
// Registers `name` (without '/') to be unlinked when this process dies,
// starting the tracker if this process has none. Errors: `kResourceExhausted`
// when the registry is full; fork/mmap errors.
absl::Status TrackSegment(absl::string_view name);

// UntrackSegment(): forgets `name` (it was unlinked by its owner).
void UntrackSegment(absl::string_view name);

// TrackerPid(): this process's tracker, or 0 when none runs yet.
pid_t TrackerPid();

// Raw pidfd_open(2): the fd or -errno.
int SysPidfdOpen(pid_t pid);

}  // namespace shm_internal
}  // namespace mp

#endif  // MP_SHM_INTERNAL_TRACKER_H_
