// -----------------------------------------------------------------------------
// File: ipc/joinable_queue.h
// -----------------------------------------------------------------------------
//
// `mp::JoinableQueue<T>` is an `mp::Queue<T>` that counts unfinished tasks
// (Python: `multiprocessing.JoinableQueue`): every value put is a task,
// a consumer calls `TaskDone()` when it has processed a value it got, and
// `Join()` blocks until every task put so far is done.
//
//   absl::StatusOr<mp::JoinableQueue<Job>> jobs = mp::JoinableQueue<Job>::Create();
//   // consumer process:
//   for (;;) {
//     absl::StatusOr<Job> job = jobs->Get();
//     Run(*job);
//     (void)jobs->TaskDone();
//   }
//   // producer:
//   for (const Job& j : all) MP_RETURN_IF_ERROR(jobs->Put(j));
//   MP_RETURN_IF_ERROR(jobs->Join());     // all processed
//
// The count lives in the queue's shared memory: it is the number of values
// ever put (published atomically with each value) minus the number of
// `TaskDone()` calls. A value lost because its consumer was killed inside
// `Get()` counts as done (see `lost()`), so `Join()` does not hang on it; a
// value a consumer got but never marked done (it died later) does keep
// `Join()` waiting, as in Python -- use a timeout.

#ifndef MP_IPC_JOINABLE_QUEUE_H_
#define MP_IPC_JOINABLE_QUEUE_H_

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ipc/queue.h"

namespace mp {

template <typename T>
class JoinableQueue : public Queue<T> {
 public:
  JoinableQueue() = default;

  // JoinableQueue::Create() / Attach(): as `Queue<T>`'s.
  static absl::StatusOr<JoinableQueue> Create(const QueueOptions& options) {
    absl::StatusOr<Queue<T>> q = Queue<T>::Create(options);
    if (!q.ok()) return q.status();
    return JoinableQueue(*std::move(q));
  }
  static absl::StatusOr<JoinableQueue> Create(uint64_t maxsize = 0) {
    QueueOptions options;
    options.maxsize = maxsize;
    return Create(options);
  }
  static absl::StatusOr<JoinableQueue> Attach(absl::string_view name) {
    absl::StatusOr<Queue<T>> q = Queue<T>::Attach(name);
    if (!q.ok()) return q.status();
    return JoinableQueue(*std::move(q));
  }

  // JoinableQueue::TaskDone()
  //
  // Marks one task done (Python's `task_done()`). Errors:
  // `kFailedPrecondition` when called more times than values were put
  // (Python's ValueError), or on an empty handle.
  absl::Status TaskDone() {
    ipc_internal::QueueRing* ring = this->Ring();
    if (ring == nullptr) return ipc_internal::QueueNotCreatedError();
    return ring->TaskDone();
  }

  // JoinableQueue::Join()
  //
  // Blocks until every value put so far was marked done, or `timeout`
  // passes (the default waits forever, like Python's `join()`).
  // Errors: `kDeadlineExceeded`; `kFailedPrecondition` on an empty handle.
  absl::Status Join(absl::Duration timeout = absl::InfiniteDuration()) {
    ipc_internal::QueueRing* ring = this->Ring();
    if (ring == nullptr) return ipc_internal::QueueNotCreatedError();
    return ring->Join(timeout);
  }

  // JoinableQueue::unfinished_tasks(): values put and not yet marked done.
  uint64_t unfinished_tasks() const {
    ipc_internal::QueueRing* ring = this->Ring();
    return ring == nullptr ? 0 : ring->unfinished_tasks();
  }

 private:
  explicit JoinableQueue(Queue<T> q) : Queue<T>(std::move(q)) {}
};

}  // namespace mp

#endif  // MP_IPC_JOINABLE_QUEUE_H_
