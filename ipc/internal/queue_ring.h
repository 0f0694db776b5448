// -----------------------------------------------------------------------------
// File: ipc/internal/queue_ring.h
// -----------------------------------------------------------------------------
//
// `QueueRing`: the untyped engine under `mp::Queue`, `mp::SimpleQueue` and
// `mp::JoinableQueue` -- a multi-producer, multi-consumer byte ring of
// variable-length records in one shared memory segment. Internal.
//
//   absl::StatusOr<std::shared_ptr<QueueRing>> ring =
//       QueueRing::Create({.capacity = 1 << 20});
//   (*ring)->Put(5, absl::InfiniteDuration(),
//                [](char* dst) { std::memcpy(dst, "hello", 5); });
//   (*ring)->Get(absl::InfiniteDuration(), [](absl::string_view rec) {
//     ...copy rec out; it is only valid during the call...
//     return absl::OkStatus();
//   });
//
// Layout of the segment (see `QueueHeader`): a 4 KiB header of cache lines,
// each written by one side only, then `capacity` bytes of ring.
//
//   * Positions: the published `tail` (producers) and `head` (consumers) are
//     each one 64-bit word, `count << 32 | units`: the number of records put
//     (got) so far modulo 2^32 and the byte position / 8 modulo 2^32. One
//     aligned store publishes both, so a process killed at any instruction
//     leaves them consistent. The capacity is a power of two <= 2^34.
//   * Records are 8-byte aligned: a header {u32 length, u16 kind, u16 check}
//     then `length` payload bytes, padded to 8. A record never wraps: when
//     it does not fit before the end of the ring, a PAD record fills the
//     rest and the record starts at offset 0 (published together).
//     `check` is a hash of length and kind, so a corrupt header is detected
//     (kDataLoss) rather than trusted.
//   * A record larger than half the ring goes out of line: the producer
//     writes it into its own SharedMemory segment (named
//     `<queue name>_ool_<hex>`) and puts an OUT_OF_LINE record holding the
//     size and the name; the consumer maps, decodes and unlinks it. The
//     creator registers the prefix `<queue name>_ool_` with its shm tracker,
//     so if it is killed the tracker removes queued ones with the ring.
//   * One robust mutex per side (`sync_internal::RobustMutex`). A producer
//     writes the whole record, then publishes `tail` with one store; a
//     consumer copies the record out, then publishes `head`. The holder
//     keeps a cached copy of the other side's word and re-reads it only
//     when it seems to have run out (no shared cache line is touched on the
//     fast path except the published word).
//   * Only the lock holder ever sleeps for data (space): it polls a while,
//     then raises a waiter flag and sleeps on a futex sequence word; the
//     other side calls futex wake only when it finds the flag set (and
//     clears it). The publish-then-check-flag handshake is fenced by the
//     sleeper with membarrier(2) where available (see `Publish()`).
//   * A process killed while holding a lock: the next holder is told
//     (owner died) and repairs: a producer that died before publishing lost
//     its message; a consumer that died after publishing `head` but before
//     returning lost the one it took. Each such loss adds one to `lost()`
//     (and, for a taken message, counts its task as done so `Join()` does
//     not hang). Nothing else needs repair: positions are single words.

#ifndef MP_IPC_INTERNAL_QUEUE_RING_H_
#define MP_IPC_INTERNAL_QUEUE_RING_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "absl/base/optimization.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "shm/shared_memory.h"
#include "sync/internal/robust_mutex.h"

namespace mp {
namespace ipc_internal {

// ---- shared layout --------------------------------------------------------------

inline constexpr uint64_t kQueueMagic = 0x3155455551504d6dull;  // "mPQUEUE1"
inline constexpr uint32_t kQueueLayoutVersion = 1;
inline constexpr size_t kQueueHeaderSize = 4096;
inline constexpr size_t kQueueMinCapacity = 4096;
inline constexpr uint64_t kQueueMaxCapacity = uint64_t{1} << 34;
inline constexpr uint64_t kNoPending = ~uint64_t{0};

enum RecordKind : uint16_t {
  kRecordValue = 1,
  kRecordPad = 2,
  kRecordOutOfLine = 3,
};

struct RecordHeader {
  uint32_t length;  // payload bytes
  uint16_t kind;
  uint16_t check;
};
static_assert(sizeof(RecordHeader) == 8, "record header is 8 bytes");

inline uint16_t RecordCheck(uint32_t length, uint16_t kind) {
  uint32_t x = (length ^ (length >> 16)) * 0x9E3779B1u;
  return static_cast<uint16_t>((x >> 16) ^ x ^ kind ^ 0xA5C3u);
}

// Bytes a record with `length` payload bytes takes in the ring.
inline uint64_t RecordSize(uint64_t length) {
  return sizeof(RecordHeader) + ((length + 7) & ~uint64_t{7});
}

// Position words: count << 32 | units (bytes / 8).
inline uint32_t PosUnits(uint64_t w) { return static_cast<uint32_t>(w); }
inline uint32_t PosCount(uint64_t w) { return static_cast<uint32_t>(w >> 32); }
inline uint64_t PosWord(uint32_t count, uint32_t units) {
  return (uint64_t{count} << 32) | units;
}
// Bytes and records between two position words (tail - head).
inline uint64_t PosBytes(uint64_t tail, uint64_t head) {
  return uint64_t{static_cast<uint32_t>(PosUnits(tail) - PosUnits(head))} * 8;
}
inline uint32_t PosItems(uint64_t tail, uint64_t head) {
  return PosCount(tail) - PosCount(head);
}

struct alignas(64) QueueConfig {
  uint64_t magic;
  uint32_t version;
  uint32_t header_size;
  uint64_t capacity;  // ring bytes, a power of two
  uint64_t maxsize;   // items; 0 = unbounded
};

struct alignas(64) QueueSide {
  sync_internal::RobustMutex lock;
  uint64_t cached_other;  // producers: a past head; consumers: a past tail
  uint64_t pending;       // the own word when an operation started, or
                          // kNoPending (see the repair in the .cc)
};

struct alignas(64) QueuePosition {
  std::atomic<uint64_t> word;
};

struct alignas(64) QueueWaiters {
  std::atomic<uint32_t> data_seq;      // bumped when data arrives for a sleeper
  std::atomic<uint32_t> data_waiters;  // consumers (lock holder) sleeping
  std::atomic<uint32_t> space_seq;
  std::atomic<uint32_t> space_waiters;
};

struct alignas(64) QueueTasks {
  std::atomic<uint32_t> done;  // TaskDone() calls, modulo 2^32
  std::atomic<uint32_t> join_waiters;
  std::atomic<uint64_t> lost;
};

struct QueueHeader {
  QueueConfig config;
  QueueSide producer;
  QueuePosition tail;
  QueueSide consumer;
  QueuePosition head;
  QueueWaiters waiters;
  QueueTasks tasks;
};
static_assert(sizeof(QueueHeader) <= kQueueHeaderSize, "header too large");

// ---- test hooks -------------------------------------------------------------------

// Points inside the critical sections where tests pause a process to kill
// it "mid-operation".
enum class QueueHookPoint {
  kPutLocked,         // put lock held, record written, not yet published
  kGetLocked,         // get lock held, record read, head not yet published
  kGetAfterPublish,   // get lock held, head published, value not returned
};
using QueueHook = void (*)(QueueHookPoint);
// SetQueueTestHook(): installs a hook called at those points (nullptr
// removes it). Tests only.
void SetQueueTestHook(QueueHook hook);
extern std::atomic<QueueHook> g_queue_test_hook;
inline void QueueHookAt(QueueHookPoint p) {
  QueueHook h = g_queue_test_hook.load(std::memory_order_relaxed);
  if (ABSL_PREDICT_FALSE(h != nullptr)) h(p);
}

// ---- the ring ---------------------------------------------------------------------

struct QueueRingOptions {
  uint64_t capacity = 1 << 20;  // bytes; rounded up to a power of two
  uint64_t maxsize = 0;         // items; 0 = unbounded
  std::string name;             // "" = a fresh psm_<hex> name
};

class QueueRing {
 public:
  // Errors: kInvalidArgument for a capacity > 2^34 or maxsize >= 2^31;
  // SharedMemory::Create's errors.
  static absl::StatusOr<std::shared_ptr<QueueRing>> Create(
      const QueueRingOptions& options);
  // Errors: SharedMemory::Attach's; kInvalidArgument when the segment is
  // not a queue (bad magic, version or sizes).
  static absl::StatusOr<std::shared_ptr<QueueRing>> Attach(
      absl::string_view name);

  QueueRing(const QueueRing&) = delete;
  QueueRing& operator=(const QueueRing&) = delete;
  // The creator (owner) also removes out-of-line segments still queued.
  ~QueueRing();

  // QueueRing::Put()
  //
  // Puts a record of `length` bytes written by `write(char* dst)`. Waits up
  // to `timeout` for the lock and for space (zero or less: not at all).
  // Errors: kResourceExhausted when full after `timeout`; kFailedPrecondition
  // after Close(); SharedMemory errors for out-of-line values.
  template <typename W>
  absl::Status Put(size_t length, absl::Duration timeout, W&& write);

  // QueueRing::Get()
  //
  // Takes the oldest record and calls `read(absl::string_view)` (which
  // returns absl::Status) on its bytes. Waits up to `timeout` for the lock
  // and for a record. Errors: kUnavailable when empty after `timeout`;
  // kDataLoss for a corrupt ring; kFailedPrecondition after Close(); what
  // `read` returns (the record is consumed either way).
  template <typename R>
  absl::Status Get(absl::Duration timeout, R&& read);

  uint64_t QSize() const;
  bool Empty() const;
  bool Full() const;
  uint64_t lost() const {
    return h_->tasks.lost.load(std::memory_order_relaxed);
  }

  // Joinable accounting: every record put is a task.
  // Errors: kFailedPrecondition when called more often than records put.
  absl::Status TaskDone();
  absl::Status Join(absl::Duration timeout);
  uint32_t unfinished_tasks() const;

  void Close() { closed_.store(true, std::memory_order_relaxed); }
  bool closed() const { return closed_.load(std::memory_order_relaxed); }

  const std::string& name() const { return shm_.name(); }
  uint64_t capacity() const { return capacity_; }
  uint64_t maxsize() const { return maxsize_; }
  // The largest record payload stored in the ring; larger ones go out of
  // line.
  uint64_t max_inline_length() const { return max_inline_; }
  QueueHeader* header() const { return h_; }
  char* data() const { return data_; }

 private:
  explicit QueueRing(SharedMemory shm);

  // A deadline computed on first need (the fast path reads no clock).
  struct LazyDeadline {
    absl::Duration timeout;
    bool set = false;
    sync_internal::Deadline deadline = sync_internal::Deadline::Infinite();
    sync_internal::Deadline Get() {
      if (!set) {
        set = true;
        deadline = sync_internal::Deadline::After(timeout);
      }
      return deadline;
    }
    bool NoWait() const { return timeout <= absl::ZeroDuration(); }
  };

  template <typename W>
  absl::Status PutRecord(uint16_t kind, size_t length, absl::Duration timeout,
                         W& write);

  // Slow paths (queue_ring.cc). The lock ones return with the lock held, or
  // an error (kResourceExhausted / kUnavailable on timeout) without it.
  absl::Status LockProducerSlow(sync_internal::RobustMutex::Result r,
                                LazyDeadline* deadline);
  absl::Status LockConsumerSlow(sync_internal::RobustMutex::Result r,
                                LazyDeadline* deadline);
  void RepairProducer();
  void RepairConsumer();
  // The put and get locks' shared slow path: `r` is the result of the
  // try-lock; waits for the lock unless the caller does not wait, repairs
  // the side when its holder died. `busy` makes the Full/Empty status.
  struct SideNames {
    const char* holder;  // "producer"
    const char* verb;    // "put" ("putting")
    const char* method;  // "Put"
  };
  absl::Status LockSlow(sync_internal::RobustMutex& lock,
                        sync_internal::RobustMutex::Result r,
                        LazyDeadline* deadline,
                        absl::Status (*busy)(absl::string_view),
                        void (QueueRing::*repair)(), const SideNames& names);
  // Lock held: waits until `need` bytes and an item slot are free after
  // `tail` (updates producer.cached_other). On timeout unlocks and returns
  // kResourceExhausted.
  absl::Status WaitForSpace(uint64_t tail, uint64_t need,
                            LazyDeadline* deadline);
  // Lock held: waits until a record follows `head` (updates
  // consumer.cached_other). On timeout unlocks and returns kUnavailable.
  absl::Status WaitForData(uint64_t head, LazyDeadline* deadline);
  void WakeConsumers();
  void WakeProducers();
  absl::Status PutOutOfLine(size_t length, absl::Duration timeout,
                            absl::FunctionRef<void(char*)> write);
  // Lock held, the record at `head` is out of line: takes it, unlocks,
  // and reads the value.
  absl::Status GetOutOfLine(
      uint64_t next, absl::string_view rec,
      absl::FunctionRef<absl::Status(absl::string_view)> read);
  // Lock held: unlocks and describes the corruption (kDataLoss).
  absl::Status Corrupt(uint64_t head, uint64_t tail, const RecordHeader& rh,
                       absl::string_view what);
  absl::Status ClosedError() const;
  void UnlinkQueuedOutOfLine();
  // `<name>_ool_`: every out-of-line segment's name starts with it.
  std::string OutOfLinePrefix() const;

  // Publish(): stores a position word, then returns whether the other side
  // has a sleeper to wake. The classic store-then-load handshake needs a
  // full fence between the two (a locked instruction that waits for every
  // earlier store, record bytes included, to leave the store buffer). When
  // membarrier(2) works (`light_`), the fence moves to the sleeper, which
  // issues MEMBARRIER_CMD_GLOBAL_EXPEDITED after raising its flag (see
  // SleeperBarrier()), and the publisher needs only a compiler barrier.
  bool Publish(std::atomic<uint64_t>& word, uint64_t value,
               std::atomic<uint32_t>& flag) {
    if (ABSL_PREDICT_TRUE(light_)) {
      word.store(value, std::memory_order_release);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      return flag.load(std::memory_order_relaxed) != 0;
    }
    word.store(value, std::memory_order_seq_cst);
    return flag.load(std::memory_order_seq_cst) != 0;
  }

  bool Fits(uint64_t tail, uint64_t head, uint64_t need) const {
    return PosBytes(tail, head) + need <= capacity_ &&
           (maxsize_ == 0 || PosItems(tail, head) < maxsize_);
  }

  SharedMemory shm_;
  QueueHeader* h_ = nullptr;
  char* data_ = nullptr;
  uint64_t capacity_ = 0;
  uint64_t mask_ = 0;
  uint64_t maxsize_ = 0;
  uint64_t max_inline_ = 0;
  bool light_ = false;  // publishers skip the fence (membarrier works)
  // The creator registered OutOfLinePrefix() with its shm tracker.
  bool tracks_prefix_ = false;
  // How long this process polls before sleeping (adaptive, see the .cc).
  std::atomic<int32_t> data_spin_ns_{5000};
  std::atomic<int32_t> space_spin_ns_{5000};
  std::atomic<bool> closed_{false};
};

// SleeperBarrier(): after a sleeper raised its flag, makes every publisher
// either see the flag or have its publication visible to the sleeper
// (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)). False when unavailable:
// the sleeper must then not sleep without a timeout.
bool SleeperBarrier();
// Tests only: forces publishers of rings created afterwards to fence
// (`light_publish = false`) and/or sleepers to act as if membarrier failed.
void SetMembarrierForTesting(bool light_publish, bool sleeper_fence);
// LightPublishSupported(): registers this process for global expedited
// membarriers (once per process; fork children inherit it) and says
// whether publishers may skip their fence.
bool LightPublishSupported();
// SysMembarrier(): the raw membarrier(2) call; its result or -errno
// (-ENOSYS where the system call does not exist).
long SysMembarrier(int cmd, unsigned flags);

// ---- inline fast paths --------------------------------------------------------------

// How far ahead of the record it writes a producer asks for the ring's cache
// line for writing (prefetchw). The consumer last read that line one lap
// ago, so the producer's store to it needs the line back (a read for
// ownership from the other core or L3); without the prefetch that transfer
// happens when the store drains, and the put lock's release (a locked
// exchange, which waits for the store buffer) stalls on it. Asking for it
// 2 lines early overlaps the transfer with the puts in between. 1P/1C,
// 8-byte values, 2-core AMD EPYC VM, quiet window, medians of 6 alternating
// runs: 31.1 M values/s without, 44.8 with 128 bytes ahead, 40.1 with 256
// (512: 35.3 in another window; 64 and 192 close to 128). A prefetch of the
// record's own line, at the start of Put, gave nothing: too late. A hint
// only: it changes nothing that is stored.
#ifndef MP_QUEUE_PREFETCH_AHEAD
#define MP_QUEUE_PREFETCH_AHEAD 128
#endif
inline constexpr uint64_t kPutPrefetchAhead = MP_QUEUE_PREFETCH_AHEAD;

inline void PrefetchForWrite(const char* p) {
#if defined(__x86_64__)
  if (kPutPrefetchAhead != 0) asm volatile("prefetchw %0" : : "m"(*p));
#else
  if (kPutPrefetchAhead != 0) __builtin_prefetch(p, 1, 3);
#endif
}

template <typename W>
absl::Status QueueRing::Put(size_t length, absl::Duration timeout, W&& write) {
  if (ABSL_PREDICT_FALSE(length > max_inline_)) {
    return PutOutOfLine(length, timeout, write);
  }
  return PutRecord(kRecordValue, length, timeout, write);
}

template <typename W>
absl::Status QueueRing::PutRecord(uint16_t kind, size_t length,
                                  absl::Duration timeout, W& write) {
  using sync_internal::RobustMutex;
  if (ABSL_PREDICT_FALSE(closed())) return ClosedError();
  LazyDeadline deadline{timeout};
  QueueSide& p = h_->producer;
  RobustMutex::Result r = p.lock.TryLock();
  if (ABSL_PREDICT_FALSE(r != RobustMutex::Result::kAcquired)) {
    absl::Status s = LockProducerSlow(r, &deadline);
    if (!s.ok()) return s;
  }
  const uint64_t tail = h_->tail.word.load(std::memory_order_relaxed);
  const uint64_t offset = (uint64_t{PosUnits(tail)} * 8) & mask_;
  const uint64_t size = RecordSize(length);
  const uint64_t pad = offset + size > capacity_ ? capacity_ - offset : 0;
  const uint64_t need = pad + size;
  if (ABSL_PREDICT_FALSE(!Fits(tail, p.cached_other, need))) {
    p.cached_other = h_->head.word.load(std::memory_order_seq_cst);
    if (!Fits(tail, p.cached_other, need)) {
      absl::Status s = WaitForSpace(tail, need, &deadline);
      if (!s.ok()) return s;  // unlocked
    }
  }
  p.pending = tail;
  char* dst = data_ + offset;
  PrefetchForWrite(data_ + ((offset + kPutPrefetchAhead) & mask_));
  if (pad != 0) {
    const uint32_t pad_length = static_cast<uint32_t>(pad - sizeof(RecordHeader));
    const RecordHeader ph{pad_length, kRecordPad,
                          RecordCheck(pad_length, kRecordPad)};
    std::memcpy(dst, &ph, sizeof ph);
    dst = data_;
  }
  const RecordHeader rh{static_cast<uint32_t>(length), kind,
                        RecordCheck(static_cast<uint32_t>(length), kind)};
  std::memcpy(dst, &rh, sizeof rh);
  write(dst + sizeof rh);
  QueueHookAt(QueueHookPoint::kPutLocked);
  if (ABSL_PREDICT_FALSE(
          Publish(h_->tail.word,
                  PosWord(PosCount(tail) + 1,
                          PosUnits(tail) + static_cast<uint32_t>(need / 8)),
                  h_->waiters.data_waiters))) {
    p.pending = kNoPending;
    p.lock.Unlock();
    WakeConsumers();
    return absl::OkStatus();
  }
  p.pending = kNoPending;
  p.lock.Unlock();
  return absl::OkStatus();
}

template <typename R>
absl::Status QueueRing::Get(absl::Duration timeout, R&& read) {
  using sync_internal::RobustMutex;
  if (ABSL_PREDICT_FALSE(closed())) return ClosedError();
  LazyDeadline deadline{timeout};
  QueueSide& c = h_->consumer;
  RobustMutex::Result r = c.lock.TryLock();
  if (ABSL_PREDICT_FALSE(r != RobustMutex::Result::kAcquired)) {
    absl::Status s = LockConsumerSlow(r, &deadline);
    if (!s.ok()) return s;
  }
  uint64_t head = h_->head.word.load(std::memory_order_relaxed);
  c.pending = head;
  for (;;) {
    uint64_t tail = c.cached_other;
    if (PosUnits(tail) == PosUnits(head)) {
      tail = h_->tail.word.load(std::memory_order_seq_cst);
      c.cached_other = tail;
      if (PosUnits(tail) == PosUnits(head)) {
        absl::Status s = WaitForData(head, &deadline);
        if (!s.ok()) return s;  // unlocked
        tail = c.cached_other;
      }
    }
    const uint64_t offset = (uint64_t{PosUnits(head)} * 8) & mask_;
    RecordHeader rh;
    std::memcpy(&rh, data_ + offset, sizeof rh);
    const uint64_t avail = PosBytes(tail, head);
    const uint64_t size = RecordSize(rh.length);
    if (ABSL_PREDICT_FALSE(rh.check != RecordCheck(rh.length, rh.kind) ||
                           size > avail || offset + size > capacity_ ||
                           avail > capacity_)) {
      return Corrupt(head, tail, rh, "bad record header");
    }
    const uint64_t next =
        PosWord(PosCount(head) + (rh.kind == kRecordPad ? 0 : 1),
                PosUnits(head) + static_cast<uint32_t>(size / 8));
    absl::string_view rec(data_ + offset + sizeof rh, rh.length);
    if (ABSL_PREDICT_TRUE(rh.kind == kRecordValue)) {
      absl::Status s = read(rec);
      QueueHookAt(QueueHookPoint::kGetLocked);
      const bool wake =
          Publish(h_->head.word, next, h_->waiters.space_waiters);
      QueueHookAt(QueueHookPoint::kGetAfterPublish);
      c.pending = kNoPending;
      c.lock.Unlock();
      if (ABSL_PREDICT_FALSE(wake)) WakeProducers();
      return s;
    }
    if (rh.kind == kRecordPad) {
      if (offset + size != capacity_) {
        return Corrupt(head, tail, rh, "pad record before the ring's end");
      }
      head = next;
      continue;
    }
    if (rh.kind == kRecordOutOfLine) {
      return GetOutOfLine(next, rec, read);
    }
    return Corrupt(head, tail, rh, "unknown record kind");
  }
}

}  // namespace ipc_internal
}  // namespace mp

#endif  // MP_IPC_INTERNAL_QUEUE_RING_H_
