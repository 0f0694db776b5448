// -----------------------------------------------------------------------------
// File: pool/internal/result_ring.h
// -----------------------------------------------------------------------------
//
// A byte ring in shared memory through which one worker hands large results
// to the pool: the worker copies a result in (`Put()`) and sends the pool a
// 24-byte `RingRecord` over its socket instead of the bytes; the pool copies
// the bytes out (`Get()`) into the string it returns, then `Release()`s them.
// One copy on each side and no kernel buffers, where a socket costs two
// copies, socket-buffer-sized chunks and a wake-up per chunk.
//
// Single producer (the worker), single consumer (the pool), records consumed
// in the order they were put: the socket carries the records in order. Only
// the consumer's release position is shared (an atomic in the mapping); the
// producer keeps its own write position. When the ring has no room, `Put()`
// says so and the worker sends the result over the socket as before: a slow
// pool never makes a worker wait on the ring.
//
//   // worker, with its first large result (the pool maps `fd()`, which it
//   // gets over the socket, with `Map()`):
//   MP_ASSIGN_OR_RETURN(ResultRing ring, ResultRing::Create());
//   // worker, for each large result:
//   RingRecord rec;
//   if (ring.Put(result, &rec)) SendRecord(rec); else SendBytes(result);
//   // pool, for each record, in order:
//   MP_ASSIGN_OR_RETURN(absl::string_view bytes, ring.Get(rec));
//   std::string value(bytes);
//   ring.Release(rec);
//
// A record from the worker is untrusted input: `Get()` refuses one that lies
// outside the ring or out of order.

#ifndef MP_POOL_INTERNAL_RESULT_RING_H_
#define MP_POOL_INTERNAL_RESULT_RING_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "process/fd.h"

namespace mp {
namespace pool_internal {

// Where one result lies in the ring. `end` is the producer's position after
// it (positions count bytes put since the start, wrap skips included).
struct RingRecord {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t end = 0;

  static constexpr size_t kEncodedSize = 24;
  void EncodeTo(char* out) const;
  static RingRecord DecodeFrom(const char* in);
};

class ResultRing {
 public:
  // The ring of pool workers: large enough for a few large results in
  // flight; its pages are allocated as results pass through, and only
  // workers that return large results make one.
  static constexpr size_t kDefaultCapacity = size_t{8} << 20;

  // ResultRing::Create()
  //
  // Maps a new ring of `capacity` bytes (rounded up to pages) on a memfd.
  static absl::StatusOr<ResultRing> Create(size_t capacity = kDefaultCapacity);

  // ResultRing::Map()
  //
  // Maps the ring behind `fd` (another process's `fd()`). Errors: the fd is
  // not a ring.
  static absl::StatusOr<ResultRing> Map(int fd);

  ResultRing() = default;
  ResultRing(ResultRing&& other) noexcept;
  ResultRing& operator=(ResultRing&& other) noexcept;
  ~ResultRing();

  bool valid() const { return base_ != nullptr; }
  size_t capacity() const { return capacity_; }
  // The memfd behind the ring (-1 after `CloseFd()`).
  int fd() const { return fd_.get(); }
  // Closes the memfd; the mapping stays.
  void CloseFd() { fd_.reset(); }

  // ResultRing::Put() (producer)
  //
  // Copies `data` into the ring and describes where in `*record`; false,
  // with nothing written, when the ring has no room for it now.
  bool Put(absl::string_view data, RingRecord* record);

  // ResultRing::Get() (consumer)
  //
  // The bytes `record` names, valid until `Release(record)`. Errors
  // (kDataLoss): a record outside the ring, overlapping bytes not yet
  // released, or out of order.
  absl::StatusOr<absl::string_view> Get(const RingRecord& record) const;

  // ResultRing::Release() (consumer)
  //
  // Frees the ring up to the end of `record` (which `Get()` accepted).
  void Release(const RingRecord& record);

 private:
  ResultRing(UniqueFd fd, char* mapping, size_t capacity);
  std::atomic<uint64_t>* released() const;

  UniqueFd fd_;
  char* base_ = nullptr;  // the header page, then `capacity_` data bytes
  size_t capacity_ = 0;
  uint64_t head_ = 0;      // producer: bytes put so far
  uint64_t consumed_ = 0;  // consumer: end of the last released record
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_INTERNAL_RESULT_RING_H_
