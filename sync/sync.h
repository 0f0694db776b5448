// -----------------------------------------------------------------------------
// File: sync/sync.h
// -----------------------------------------------------------------------------
//
// All of mp's process-shared synchronization primitives (Python's
// `multiprocessing.Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`,
// `Condition`, `Event`, `Barrier`) and `mp::SharedObject<T>` to place one in
// a named shared memory segment that children of every start method can use.
//
//   absl::StatusOr<mp::SharedObject<mp::Lock>> lock =
//       mp::SharedObject<mp::Lock>::Create();
//   { mp::Guard g(**lock); ... }
//
// See docs/sync.md.

#ifndef MP_SYNC_SYNC_H_
#define MP_SYNC_SYNC_H_

#include "shm/shared_object.h"
#include "sync/barrier.h"
#include "sync/condition.h"
#include "sync/event.h"
#include "sync/guard.h"
#include "sync/lock.h"
#include "sync/rlock.h"
#include "sync/semaphore.h"

#endif  // MP_SYNC_SYNC_H_
