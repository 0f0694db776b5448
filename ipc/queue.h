// -----------------------------------------------------------------------------
// File: ipc/queue.h
// -----------------------------------------------------------------------------
//
// `mp::Queue<T>` is a multi-producer, multi-consumer FIFO queue between
// processes (Python: `multiprocessing.Queue`), for values of any type the
// codec supports (`ipc/codec.h`).
//
//   absl::StatusOr<mp::Queue<int>> q = mp::Queue<int>::Create();
//   if (!q.ok()) return q.status();
//   mp::Process child([q = *q]() mutable {
//     for (int i = 0; i < 10; ++i) (void)q.Put(i * i);
//   });
//   MP_RETURN_IF_ERROR(child.Start());
//   absl::StatusOr<int> v = q->Get(absl::Seconds(5));   // 0, 1, 4, ...
//
// Unlike Python's, there is no feeder thread: `Put()` returns once the value
// is in the queue (in shared memory), so a child that exits right after
// `Put()` can never deadlock on an undrained pipe, and a value put is never
// lost because its producer exited.
//
// How it works: one shared memory segment holds a byte ring of
// variable-length records (`ipc/internal/queue_ring.h`). Put and Get copy
// the encoded value in and out with no system call unless the queue is
// empty or full (then the waiter sleeps on a futex, and only then does the
// other side wake it). Producers serialize on one robust lock, consumers on
// another, so one producer and one consumer never contend.
//
// Capacity: `maxsize` items (0: no item limit, like Python) and
// `QueueOptions::capacity` bytes of ring (1 MiB by default; a power of two,
// at most 16 GiB). An encoded value larger than half the ring does not
// stall the others: it travels "out of line", in a shared memory segment of
// its own named `<queue name>_ool_<hex>` whose name goes through the ring;
// the consumer unlinks it.
//
// Status codes (Python's exceptions in parentheses):
//   * `kResourceExhausted`: full (`queue.Full`) -- from `PutNoWait()`, and
//     from `Put()` when `timeout` passes before there is room.
//   * `kUnavailable`: empty (`queue.Empty`) -- from `GetNoWait()`, and from
//     `Get()` when `timeout` passes before a value arrives.
//     As in Python, a timeout gives Full/Empty, not kDeadlineExceeded: the
//     caller's reaction ("nothing to get yet") is the same.
//   * `kFailedPrecondition`: after `Close()` in this process (`ValueError`),
//     or on a default-constructed (never created) queue.
//   * `kInvalidArgument` / `kDataLoss`: from `Get()`, a value that does not
//     decode as `T` (the value is consumed), or a corrupt ring.
//
// Processes that die: a process killed (even by SIGKILL) inside `Put()` or
// `Get()` does not wedge the others. The next process to take the same lock
// sees that its owner died, repairs, and goes on. At most the one message
// in flight is lost: a `Put()` that had not published its record, or a
// `Get()` that had taken a value but not returned it. Each loss adds one to
// `lost()`, which every process sees. (A `JoinableQueue` counts a value
// lost with its consumer as done.) An out-of-line value whose producer was
// killed between publishing and handing over its segment is reported by the
// `Get()` that meets it, as `kDataLoss`, and counted in `lost()`.
//
// Sharing with children:
//   * fork: the child inherits the queue (copy the handle into the lambda).
//   * forkserver / spawn: pass the handle as a `Process` argument; it is
//     encoded as its segment name and the child attaches on first use.
//   * any process: `Queue<T>::Attach(q.name())`.
// A `Queue` is a cheap handle: copies share the same mapping. It is
// thread-safe, except that a decoded (not yet attached) handle must not be
// used first from two threads at once.
//
// Lifetime: the creating process owns the segment. When its last handle
// goes away the segment is unlinked (and out-of-line values still queued are
// removed); if the creator is killed (even by SIGKILL), its shm tracker
// unlinks it and every out-of-line value still queued (the segments named
// `<queue name>_ool_*`). Other processes keep their mapping until their
// handles go away.

#ifndef MP_IPC_QUEUE_H_
#define MP_IPC_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ipc/codec.h"
#include "ipc/internal/queue_ring.h"

namespace mp {

struct QueueOptions {
  // Items the queue holds at most; 0: no limit (bytes still are). Python's
  // `maxsize`. At most 2^31 - 1.
  uint64_t maxsize = 0;
  // Bytes of ring, rounded up to a power of two (at least 4 KiB, at most
  // 16 GiB). Each value takes its encoded size plus 8 to 15 bytes.
  uint64_t capacity = 1 << 20;
  // The segment's name; "" picks a fresh `psm_<hex>`.
  std::string name;
};

namespace ipc_internal {
absl::Status QueueNotCreatedError();
absl::Status AttachQueue(const std::string& name,
                         std::shared_ptr<QueueRing>* ring);

// Strings and vectors of bitwise elements: encoded as a count and one run
// of bytes, so the queue writes (reads) them straight into (out of) the ring.
template <typename T>
struct FlatSequence : std::false_type {};
template <>
struct FlatSequence<std::string> : std::true_type {
  using Element = char;
};
template <typename E>
struct FlatSequence<std::vector<E>>
    : std::integral_constant<bool, CodecOf<E>::kBitwise> {
  using Element = E;
};

inline void WriteCodecHeader(char* dst, uint32_t fingerprint) {
  dst[0] = static_cast<char>(kCodecMagic);
  dst[1] = static_cast<char>(kCodecVersion);
  std::memcpy(dst + 2, &fingerprint, sizeof fingerprint);
}

inline bool HasCodecHeader(absl::string_view rec, uint32_t fingerprint) {
  uint32_t got;
  if (rec.size() < kCodecHeaderSize) return false;
  std::memcpy(&got, rec.data() + 2, sizeof got);
  return static_cast<uint8_t>(rec[0]) == kCodecMagic &&
         static_cast<uint8_t>(rec[1]) == kCodecVersion && got == fingerprint;
}

// Encodes `value` into the ring: with one memcpy for bitwise types and flat
// sequences, through a reused per-thread buffer otherwise.
template <typename T>
absl::Status PutValue(QueueRing& ring, const T& value,
                      absl::Duration timeout) {
  if constexpr (FlatSequence<T>::value) {
    using E = typename FlatSequence<T>::Element;
    const uint64_t count = value.size();
    const size_t bytes = value.size() * sizeof(E);
    const uint32_t fingerprint = FingerprintOf<T>();
    return ring.Put(kCodecHeaderSize + sizeof count + bytes, timeout,
                    [&](char* dst) {
                      WriteCodecHeader(dst, fingerprint);
                      std::memcpy(dst + kCodecHeaderSize, &count, sizeof count);
                      if (bytes != 0) {
                        std::memcpy(dst + kCodecHeaderSize + sizeof count,
                                    value.data(), bytes);
                      }
                    });
  } else if constexpr (CodecOf<T>::kBitwise) {
    constexpr size_t kSize = kCodecHeaderSize + sizeof(T);
    const uint32_t fingerprint = FingerprintOf<T>();
    return ring.Put(kSize, timeout, [&](char* dst) {
      WriteCodecHeader(dst, fingerprint);
      std::memcpy(dst + kCodecHeaderSize, &value, sizeof(T));
    });
  } else {
    thread_local std::string buffer;
    buffer.clear();
    EncodeTo(value, &buffer);
    absl::Status s = ring.Put(buffer.size(), timeout, [&](char* dst) {
      std::memcpy(dst, buffer.data(), buffer.size());
    });
    if (buffer.capacity() > (1 << 20)) std::string().swap(buffer);
    return s;
  }
}

// Decodes a value from the ring, with one memcpy for bitwise types.
template <typename T>
absl::Status GetValue(QueueRing& ring, absl::Duration timeout, T* value) {
  return ring.Get(timeout, [value](absl::string_view rec) -> absl::Status {
    if constexpr (FlatSequence<T>::value) {
      using E = typename FlatSequence<T>::Element;
      uint64_t count;
      constexpr size_t kPrefix = kCodecHeaderSize + sizeof count;
      if (ABSL_PREDICT_TRUE(rec.size() >= kPrefix &&
                            HasCodecHeader(rec, FingerprintOf<T>()))) {
        std::memcpy(&count, rec.data() + kCodecHeaderSize, sizeof count);
        const size_t bytes = rec.size() - kPrefix;
        if (ABSL_PREDICT_TRUE(bytes % sizeof(E) == 0 &&
                              count == bytes / sizeof(E))) {
          value->resize(count);
          if (bytes != 0) std::memcpy(&(*value)[0], rec.data() + kPrefix, bytes);
          return absl::OkStatus();
        }
      }
    } else if constexpr (CodecOf<T>::kBitwise) {
      constexpr size_t kSize = kCodecHeaderSize + sizeof(T);
      if (ABSL_PREDICT_TRUE(rec.size() == kSize &&
                            HasCodecHeader(rec, FingerprintOf<T>()))) {
        std::memcpy(value, rec.data() + kCodecHeaderSize, sizeof(T));
        return absl::OkStatus();
      }
    }
    return DecodeInto(rec, value);
  });
}
}  // namespace ipc_internal

template <typename T>
class Queue {
 public:
  // An empty handle: every operation returns kFailedPrecondition. Use
  // `Create()` or `Attach()`.
  Queue() = default;

  // Queue::Create()
  //
  // Creates a queue in a new shared memory segment, owned by this process.
  // Errors: `kInvalidArgument` for a maxsize >= 2^31 or a capacity > 16 GiB;
  // `kAlreadyExists` when `options.name` is taken; shm_open/mmap errors.
  static absl::StatusOr<Queue> Create(const QueueOptions& options) {
    ipc_internal::QueueRingOptions o;
    o.capacity = options.capacity;
    o.maxsize = options.maxsize;
    o.name = options.name;
    absl::StatusOr<std::shared_ptr<ipc_internal::QueueRing>> ring =
        ipc_internal::QueueRing::Create(o);
    if (!ring.ok()) return ring.status();
    return Queue(*std::move(ring));
  }
  static absl::StatusOr<Queue> Create(uint64_t maxsize = 0) {
    QueueOptions options;
    options.maxsize = maxsize;
    return Create(options);
  }

  // Queue::Attach()
  //
  // Maps the queue another process created, by its `name()`. Errors:
  // `kNotFound`; `kInvalidArgument` when the segment is not a queue.
  static absl::StatusOr<Queue> Attach(absl::string_view name) {
    Queue q;
    q.name_ = std::string(name);
    absl::Status s = ipc_internal::AttachQueue(q.name_, &q.ring_);
    if (!s.ok()) return s;
    return q;
  }

  // Queue::Put()
  //
  // Puts `value` at the end, waiting up to `timeout` while the queue is
  // full (`absl::InfiniteDuration()`, the default, is Python's
  // `block=True, timeout=None`; zero or negative does not wait). Returns
  // once the value is in the queue.
  //
  // Errors: `kResourceExhausted` when still full after `timeout`;
  // `kFailedPrecondition` after `Close()`; shm errors for an out-of-line
  // value.
  absl::Status Put(const T& value,
                   absl::Duration timeout = absl::InfiniteDuration()) {
    if (ABSL_PREDICT_FALSE(ring_ == nullptr)) {
      absl::Status s = EnsureAttached();
      if (!s.ok()) return s;
    }
    return ipc_internal::PutValue(*ring_, value, timeout);
  }

  // Queue::PutNoWait(): `Put(value, absl::ZeroDuration())`.
  absl::Status PutNoWait(const T& value) {
    return Put(value, absl::ZeroDuration());
  }

  // Queue::Get()
  //
  // Removes and returns the oldest value, waiting up to `timeout` while the
  // queue is empty (same timeout conventions as `Put()`).
  //
  // Errors: `kUnavailable` when still empty after `timeout`;
  // `kFailedPrecondition` after `Close()`; `kInvalidArgument` /
  // `kDataLoss` for a value that is not a `T` (it is consumed) or a corrupt
  // ring; `kDataLoss` for an out-of-line value lost with its producer.
  absl::StatusOr<T> Get(absl::Duration timeout = absl::InfiniteDuration()) {
    T value{};
    absl::Status s = GetInto(&value, timeout);
    if (!s.ok()) return s;
    return value;
  }

  // Queue::GetInto(): like `Get()`, into `*value` (reusing its storage).
  absl::Status GetInto(T* value,
                       absl::Duration timeout = absl::InfiniteDuration()) {
    if (ABSL_PREDICT_FALSE(ring_ == nullptr)) {
      absl::Status s = EnsureAttached();
      if (!s.ok()) return s;
    }
    return ipc_internal::GetValue(*ring_, timeout, value);
  }

  // Queue::GetNoWait(): `Get(absl::ZeroDuration())`.
  absl::StatusOr<T> GetNoWait() { return Get(absl::ZeroDuration()); }

  // Queue::QSize()
  //
  // The number of values in the queue (a snapshot: others may change it at
  // once). 0 for an empty handle.
  size_t QSize() const { return Ring() ? Ring()->QSize() : 0; }

  // Queue::Empty() / Queue::Full()
  //
  // Snapshots, as in Python. Full means `maxsize` values are queued, or the
  // ring has no room left for even the smallest value.
  bool Empty() const { return Ring() ? Ring()->Empty() : true; }
  bool Full() const { return Ring() ? Ring()->Full() : false; }

  // Queue::Close()
  //
  // Python's `close()`: this process will not use the queue any more; later
  // `Put()`/`Get()` calls in this process (all handles) return
  // `kFailedPrecondition`. Other processes are not affected. The mapping
  // stays until the handles go away. (There is no `join_thread()`: no
  // feeder thread exists.)
  void Close() {
    if (Ring()) Ring()->Close();
  }

  // Queue::lost()
  //
  // How many values were lost because a process died inside `Put()` or
  // `Get()` (see the file comment). Shared by all processes.
  uint64_t lost() const { return Ring() ? Ring()->lost() : 0; }

  // Queue::maxsize() / capacity(): as created (capacity rounded up).
  uint64_t maxsize() const { return Ring() ? Ring()->maxsize() : 0; }
  uint64_t capacity() const { return Ring() ? Ring()->capacity() : 0; }

  // The segment's name, for `Attach()` in another process.
  const std::string& name() const { return name_; }

  // Encoded as the segment's name (see the file comment).
  MP_CODEC_FIELDS(name_);

 protected:
  explicit Queue(std::shared_ptr<ipc_internal::QueueRing> ring)
      : name_(ring->name()), ring_(std::move(ring)) {}

  absl::Status EnsureAttached() {
    if (name_.empty()) return ipc_internal::QueueNotCreatedError();
    return ipc_internal::AttachQueue(name_, &ring_);
  }
  ipc_internal::QueueRing* Ring() const {
    if (ABSL_PREDICT_FALSE(ring_ == nullptr) && !name_.empty()) {
      (void)ipc_internal::AttachQueue(name_, &ring_);
    }
    return ring_.get();
  }

 private:
  std::string name_;
  mutable std::shared_ptr<ipc_internal::QueueRing> ring_;
};

}  // namespace mp

#endif  // MP_IPC_QUEUE_H_
