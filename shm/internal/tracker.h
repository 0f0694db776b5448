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
// Design: the tracker is this program re-executed (/proc/self/exe, argv[0]
// "mp-shm-tracker", MP_SHM_TRACKER_PID in its environment); a constructor in
// tracker.cc takes over before main(). It is a separate process with fresh
// memory (a fork()ed helper would pin the creator's pages copy-on-write), a
// grandchild (double fork: never our zombie), in its own session, with
// stdio on /dev/null, no other fd, and all signals blocked. It waits on a
// pidfd of the creator. The registry is a memfd table that both map
// MAP_SHARED; the creator closes its fd after mapping it, so it holds no fd
// for the tracker (nothing a fork child could inherit, nothing a fd leak
// check sees). When the creator exits the tracker unlinks every name still
// registered (and every segment matching a registered prefix) and exits,
// silently. A fork child of the creator that creates
// segments gets its own tracker. Before re-executing, the creator checks that
// the program loads this code at start-up (`StartupLoadsObjectAt()`); when
// it does not (mp inside a plugin `dlopen()`ed by a program that does not
// link it), re-executing would run that program's own `main()`, so a
// CLONE_VM helper running raw system calls takes the tracker's place at
// once. It is also the fallback when the exec'd tracker fails to start.

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

// TrackPrefix()
//
// Registers a name prefix: when this process dies, the tracker also unlinks
// every segment in /dev/shm whose name starts with `prefix` (whoever created
// it). For segments other processes create on this process's behalf, e.g.
// the out-of-line values of a queue this process owns. Errors:
// `kInvalidArgument` for an empty prefix, one containing '/', or one of 252
// bytes or more; otherwise as `TrackSegment()`.
absl::Status TrackPrefix(absl::string_view prefix);

// UntrackPrefix(): forgets `prefix`.
void UntrackPrefix(absl::string_view prefix);

// TrackerPid(): this process's tracker, or 0 when none runs yet.
pid_t TrackerPid();

// StartupLoadsObjectAt()
//
// Whether the object (executable or shared library) holding `addr` is loaded
// when this program starts: the main program (static or PIE alike), or an
// object that it or LD_PRELOAD needs, directly or not, going by the names in
// the loaded objects' dynamic sections (DT_NEEDED against DT_SONAME or the
// file name). False for an object only `dlopen()` brought in, and for an
// address in no object (heap, stack).
bool StartupLoadsObjectAt(const void* addr);

// UseCloneTrackerForTesting(): trackers started from now on in this process
// use the fallback (a CLONE_VM helper) instead of re-executing the program.
void UseCloneTrackerForTesting();

}  // namespace shm_internal
}  // namespace mp

#endif  // MP_SHM_INTERNAL_TRACKER_H_
