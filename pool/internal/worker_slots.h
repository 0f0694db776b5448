// -----------------------------------------------------------------------------
// File: pool/internal/worker_slots.h
// -----------------------------------------------------------------------------
//
// Where a fork worker says which task it runs, so that the pool knows which
// task killed it when it dies.
//
// Each worker has one 8-byte slot in memory shared with the pool: it stores a
// task's id there before it runs the task and 0 after. The slots come from
// pages of 512 that the process maps (MAP_SHARED) the first time it needs
// them and never unmaps, so a worker forked later sees them too. Starting and
// reaping a worker therefore costs no mmap/munmap: a page of its own cost
// each worker a page-table page, a fault on each side, and at its end an
// munmap, which flushes the TLB of every CPU the process runs on (an
// interprocessor interrupt per CPU).
//
//   absl::StatusOr<std::atomic<uint64_t>*> slot = WorkerSlots::Take();  // 0
//   ... fork; the worker: (*slot)->store(task); Run(task); (*slot)->store(0);
//   ... after the worker is reaped:
//   WorkerSlots::Give(*slot);
//
// Take() and Give() take no lock (a fork in another thread cannot leave one
// held in the child) and are safe from any thread. Slots belong to the
// process that mapped their page: a forked child that starts workers of its
// own maps pages of its own rather than hand out slots its parent may give
// to another worker at the same time.

#ifndef MP_POOL_INTERNAL_WORKER_SLOTS_H_
#define MP_POOL_INTERNAL_WORKER_SLOTS_H_

#include <atomic>
#include <cstdint>

#include "absl/status/statusor.h"

namespace mp {
namespace pool_internal {

class WorkerSlots {
 public:
  static constexpr int kSlotsPerPage = 512;
  // Pages one process maps at most: 131 072 workers alive at once.
  static constexpr int kMaxPages = 256;

  // A zeroed slot no other worker of this process holds. Errors: the mmap of
  // a new page failed (its errno), or kResourceExhausted when kMaxPages pages
  // are in use.
  static absl::StatusOr<std::atomic<uint64_t>*> Take();

  // Gives back a slot Take() returned in this process (after its worker is
  // reaped: a worker still running may write to it). Anything else is
  // ignored.
  static void Give(std::atomic<uint64_t>* slot);

  // Pages this process has mapped (for tests).
  static int PagesMappedForTesting();
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_INTERNAL_WORKER_SLOTS_H_
