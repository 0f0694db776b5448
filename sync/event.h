// -----------------------------------------------------------------------------
// File: sync/event.h
// -----------------------------------------------------------------------------
//
// `mp::Event` is a flag shared between processes that processes can wait for
// (Python: `multiprocessing.Event`). Lives in shared memory (standard
// layout, no pointers; zero bytes = a cleared Event).
//
//   mp::Event& ready = ...;                      // in shared memory
//   // child:  Prepare(); ready.Set();
//   // parent:
//   if (!ready.Wait(absl::Seconds(5))) return absl::DeadlineExceededError("");

#ifndef MP_SYNC_EVENT_H_
#define MP_SYNC_EVENT_H_

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace mp {

class Event {
 public:
  constexpr Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // Event::Set(): sets the flag and wakes every waiter.
  void Set();
  // Event::Clear(): clears the flag.
  void Clear() { flag_.store(0, std::memory_order_release); }
  // Event::IsSet()
  bool IsSet() const { return flag_.load(std::memory_order_acquire) != 0; }

  // Event::Wait()
  //
  // Blocks until the flag is set or `timeout` passes; returns the flag
  // (Python: true unless timed out). Signals do not shorten the wait.
  // Spins, then blocks: polls the flag for up to ~50 us (unless the process
  // may run on one CPU only) before sleeping on a futex.
  bool Wait(absl::Duration timeout = absl::InfiniteDuration());

 private:
  std::atomic<uint32_t> flag_{0};
  std::atomic<uint32_t> waiters_{0};
};

}  // namespace mp

#endif  // MP_SYNC_EVENT_H_
