// -----------------------------------------------------------------------------
// File: process/internal/reaper.h
// -----------------------------------------------------------------------------
//
// The background reaper: children whose `Process` was destroyed while they
// still ran are handed here; a thread (started on demand, gone when it has
// nothing left to wait for) waits on their sentinels and reaps them, so no
// zombie stays behind.

#ifndef MP_PROCESS_INTERNAL_REAPER_H_
#define MP_PROCESS_INTERNAL_REAPER_H_

#include <sys/types.h>

#include "process/fd.h"

namespace mp {
namespace process_internal {

// Takes over child `pid` and its sentinel (a pidfd or a pipe the child
// holds; may be invalid, then the reaper polls).
void ReapInBackground(pid_t pid, UniqueFd sentinel);

// Whether the reaper thread runs now (for the threaded-fork warning).
bool ReaperRunning();

// Forgets the parent's list in a new child (nothing there is ours).
void ReaperAfterFork();

}  // namespace process_internal
}  // namespace mp

#endif  // MP_PROCESS_INTERNAL_REAPER_H_
