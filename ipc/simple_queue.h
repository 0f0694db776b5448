// -----------------------------------------------------------------------------
// File: ipc/simple_queue.h
// -----------------------------------------------------------------------------
//
// `mp::SimpleQueue<T>` is the plain queue between processes (Python:
// `multiprocessing.SimpleQueue`): `Put()`, `Get()`, `Empty()`, `Close()`,
// no item limit and no timeouts. It is an `mp::Queue<T>` underneath (same
// shared memory ring, same robustness when a process dies, same sharing
// with children by fork or by passing it as a `Process` argument).
//
//   absl::StatusOr<mp::SimpleQueue<std::string>> q =
//       mp::SimpleQueue<std::string>::Create();
//   // in a child:
//   (void)q->Put("hello");
//   // in the parent:
//   absl::StatusOr<std::string> s = q->Get();   // blocks until a value comes
//
// `Put()` blocks only while the ring's bytes are all in use (Python's
// `put()` blocks on a full pipe too).

#ifndef MP_IPC_SIMPLE_QUEUE_H_
#define MP_IPC_SIMPLE_QUEUE_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ipc/codec.h"
#include "ipc/queue.h"

namespace mp {

template <typename T>
class SimpleQueue {
 public:
  SimpleQueue() = default;

  // SimpleQueue::Create()
  //
  // `capacity`: bytes of ring (see `QueueOptions`). Errors: as
  // `Queue<T>::Create()`.
  static absl::StatusOr<SimpleQueue> Create(uint64_t capacity = 1 << 20) {
    QueueOptions options;
    options.capacity = capacity;
    absl::StatusOr<Queue<T>> q = Queue<T>::Create(options);
    if (!q.ok()) return q.status();
    return SimpleQueue(*std::move(q));
  }
  // SimpleQueue::Create(options): `options.maxsize` must be 0 (Errors:
  // `kInvalidArgument` otherwise); `capacity` and `name` as for `Queue`.
  static absl::StatusOr<SimpleQueue> Create(const QueueOptions& options) {
    if (options.maxsize != 0) {
      return absl::InvalidArgumentError(
          "mp::SimpleQueue has no maxsize (use mp::Queue)");
    }
    absl::StatusOr<Queue<T>> q = Queue<T>::Create(options);
    if (!q.ok()) return q.status();
    return SimpleQueue(*std::move(q));
  }
  static absl::StatusOr<SimpleQueue> Attach(absl::string_view name) {
    absl::StatusOr<Queue<T>> q = Queue<T>::Attach(name);
    if (!q.ok()) return q.status();
    return SimpleQueue(*std::move(q));
  }

  // SimpleQueue::Put(): blocks until `value` is in the queue. Errors:
  // `kFailedPrecondition` after `Close()`.
  absl::Status Put(const T& value) { return q_.Put(value); }

  // SimpleQueue::Get(): blocks until a value is there. Errors: as
  // `Queue<T>::Get()`.
  absl::StatusOr<T> Get() { return q_.Get(); }

  // SimpleQueue::Empty(): a snapshot.
  bool Empty() const { return q_.Empty(); }

  // SimpleQueue::Close(): later `Put()`/`Get()` in this process return
  // `kFailedPrecondition`.
  void Close() { q_.Close(); }

  // See `Queue<T>::lost()`.
  uint64_t lost() const { return q_.lost(); }

  const std::string& name() const { return q_.name(); }

  MP_CODEC_FIELDS(q_);

 private:
  explicit SimpleQueue(Queue<T> q) : q_(std::move(q)) {}
  Queue<T> q_;
};

}  // namespace mp

#endif  // MP_IPC_SIMPLE_QUEUE_H_
