// -----------------------------------------------------------------------------
// File: pool/async_result.h
// -----------------------------------------------------------------------------
//
// `mp::AsyncResult<T>` is what `Pool::ApplyAsync()` and `Pool::MapAsync()`
// return (Python: `multiprocessing.pool.AsyncResult`). Thread-safe; copies
// share one result.
//
//   mp::AsyncResult<int> r = pool.ApplyAsync(Square, 7);
//   absl::StatusOr<int> v = r.Wait(absl::Seconds(1));
//   int x = r.Get();   // Python style: throws mp::RemoteError on failure
//
// A failed task's status is `kUnknown` for an exception, with the message
// "task <i> failed in worker pid <p>: <type>: <what()>" and the payloads
// `mp.index`, `mp.pid` and `mp.exception_type`; `kUnavailable` "task <i>
// lost: worker lost: pid <p> was killed by signal 9 (Killed)" when the
// worker died running it; `kCancelled` after `Pool::Terminate()`.

#ifndef MP_POOL_ASYNC_RESULT_H_
#define MP_POOL_ASYNC_RESULT_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mp {

// `mp::RemoteError` is thrown by `AsyncResult::Get()` and `Future::Result()`
// only: it carries the task's status. `Get()` is the one place mp throws.
class RemoteError : public std::runtime_error {
 public:
  explicit RemoteError(absl::Status status)
      : std::runtime_error(status.ToString()), status_(std::move(status)) {}
  const absl::Status& status() const { return status_; }

 private:
  absl::Status status_;
};

// Called when a result is ready, before its waiters wake, on the pool's
// result thread or on a thread that is waiting for a result: keep them
// short, and do not `Join()` the pool from them.
template <typename T>
struct AsyncCallbacks {
  std::function<void(const T&)> callback;
  std::function<void(const absl::Status&)> error_callback;
};

namespace pool_internal {

// The shared state behind `AsyncResult` and `Future`.
template <typename T>
class ResultState {
 public:
  // Sets the result once (later calls are ignored). As in Python, the
  // `AsyncCallbacks` run first, then waiters wake, then `OnDone` callbacks.
  bool Set(absl::StatusOr<T> value) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (value_.has_value()) return false;  // never reset: Take() moves
                                             // out of it, engaged
      value_.emplace(std::move(value));
    }
    // Nobody else reads value_ until ready_ is set below.
    if (value_->ok()) {
      if (on_.callback) on_.callback(**value_);
    } else if (on_.error_callback) {
      on_.error_callback(value_->status());
    }
    std::vector<std::function<void()>> callbacks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.store(true, std::memory_order_release);
      callbacks.swap(callbacks_);
    }
    cv_.notify_all();
    for (auto& cb : callbacks) cb();
    return true;
  }

  // Runs `cb` when the result is set (now, if it is).
  void OnDone(std::function<void()> cb) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ready_.load(std::memory_order_relaxed)) {
        callbacks_.push_back(std::move(cb));
        return;
      }
    }
    cb();
  }

  // Drives the pool until `ready()` or the timeout (see `Core::Drive`):
  // returns 0 ready, 1 timed out, 2 busy (another thread drives).
  using Driver =
      std::function<int(const std::function<bool()>& ready, absl::Duration)>;
  void set_driver(Driver driver) { driver_ = std::move(driver); }

  bool WaitFor(absl::Duration timeout) {
    if (ready_.load(std::memory_order_acquire)) return true;
    if (driver_ && timeout > absl::ZeroDuration()) {
      int r = driver_([this] { return ready(); }, timeout);
      if (r == 0) return true;
      if (r == 1) return ready();
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (timeout == absl::InfiniteDuration()) {
      cv_.wait(lock, [this] { return ready(); });
      return true;
    }
    if (timeout <= absl::ZeroDuration()) return ready();
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [this] { return ready(); });
  }

  bool ready() const { return ready_.load(std::memory_order_acquire); }

  // Only after WaitFor() returned true: the value no longer changes.
  const absl::StatusOr<T>& value() const { return *value_; }
  absl::StatusOr<T> Take() { return std::move(*value_); }

  void set_callbacks(AsyncCallbacks<T> on) { on_ = std::move(on); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<absl::StatusOr<T>> value_;
  std::atomic<bool> ready_{false};
  std::vector<std::function<void()>> callbacks_;
  AsyncCallbacks<T> on_;
  Driver driver_;
};

}  // namespace pool_internal

template <typename T>
class AsyncResult {
 public:
  // An empty result: `Wait()` returns kFailedPrecondition.
  AsyncResult() = default;
  explicit AsyncResult(std::shared_ptr<pool_internal::ResultState<T>> state)
      : state_(std::move(state)) {}

  // AsyncResult::Wait()
  //
  // Blocks until the result is ready or `timeout` passes. A negative timeout
  // does not wait; `absl::InfiniteDuration()` is Python's `timeout=None`.
  //
  // Errors: `kDeadlineExceeded`, or the status the worker sent.
  absl::StatusOr<T> Wait(absl::Duration timeout = absl::InfiniteDuration()) const {
    if (!state_) return absl::FailedPreconditionError("empty AsyncResult");
    if (!state_->WaitFor(timeout)) {
      return absl::DeadlineExceededError("result not ready before the timeout");
    }
    return state_->value();
  }

  // AsyncResult::Get()
  //
  // Python's `AsyncResult.get()`: the value, or throws `mp::RemoteError`
  // holding the status of `Wait()` (kDeadlineExceeded on timeout).
  T Get(absl::Duration timeout = absl::InfiniteDuration()) const {
    absl::StatusOr<T> v = Wait(timeout);
    if (!v.ok()) throw RemoteError(v.status());
    return *std::move(v);
  }

  // AsyncResult::Ready()
  //
  // True once the task has finished, whatever the outcome.
  bool Ready() const { return state_ && state_->ready(); }

  // AsyncResult::Successful()
  //
  // True when ready and OK. Python raises ValueError when not ready; this
  // returns false then.
  bool Successful() const {
    return Ready() && state_->value().ok();
  }

 private:
  std::shared_ptr<pool_internal::ResultState<T>> state_;
};

}  // namespace mp

#endif  // MP_POOL_ASYNC_RESULT_H_
