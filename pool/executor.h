// -----------------------------------------------------------------------------
// File: pool/executor.h
// -----------------------------------------------------------------------------
//
// `mp::ProcessPoolExecutor` and `mp::Future<T>` (Python:
// `concurrent.futures.ProcessPoolExecutor` and `Future`). The executor is a
// `Pool` underneath (same core, same functions rule, same failure handling:
// see `pool/pool.h`).
//
//   mp::ProcessPoolExecutor ex(/*max_workers=*/4);
//   mp::Future<int> f = ex.Submit(Square, 7);
//   absl::StatusOr<int> v = f.Result(absl::Seconds(5));
//   absl::StatusOr<std::vector<int>> all = ex.Map(Square, xs);
//   for (mp::AsCompleted<int> it(futures); auto f = it.Next();) use(**f);
//   ex.Shutdown();      // the destructor does this too (wait = true)

#ifndef MP_POOL_EXECUTOR_H_
#define MP_POOL_EXECUTOR_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "pool/pool.h"

namespace mp {

template <typename T>
class Future {
 public:
  Future() = default;

  // Future::Result()
  //
  // Waits up to `timeout` for the result. Errors: kDeadlineExceeded,
  // kCancelled, or the task's status (see `pool/async_result.h`).
  absl::StatusOr<T> Result(absl::Duration timeout = absl::InfiniteDuration()) const {
    if (!state_) return absl::FailedPreconditionError("empty Future");
    if (!state_->WaitFor(timeout)) {
      return absl::DeadlineExceededError("result not ready before the timeout");
    }
    return state_->value();
  }

  // Future::Exception()
  //
  // Python's `exception()`: OK when the task succeeded, its status when it
  // failed; kDeadlineExceeded on timeout.
  absl::Status Exception(absl::Duration timeout = absl::InfiniteDuration()) const {
    return Result(timeout).status();
  }

  // Future::Cancel()
  //
  // Cancels the task if no worker has it yet; true then (or if it was
  // already cancelled).
  bool Cancel() {
    if (!state_) return false;
    if (Cancelled()) return true;
    auto core = core_.lock();
    return core && core->Cancel(task_id_);
  }

  bool Cancelled() const {
    return Done() && state_->value().status().code() == absl::StatusCode::kCancelled;
  }

  // True while a worker holds the task (sent and not finished).
  bool Running() const {
    if (!state_ || Done()) return false;
    auto core = core_.lock();
    return core && core->IsSent(task_id_);
  }

  bool Done() const { return state_ && state_->ready(); }

  // Future::AddDoneCallback()
  //
  // Runs `cb(*this)` when the future is done: at once, on this thread, if it
  // is; otherwise on the pool's result thread.
  void AddDoneCallback(std::function<void(const Future<T>&)> cb) {
    if (!state_) return;
    Future self = *this;
    state_->OnDone([self, cb = std::move(cb)] { cb(self); });
  }

  Future(std::shared_ptr<pool_internal::ResultState<T>> state,
         std::weak_ptr<pool_internal::Core> core, uint64_t task_id)
      : state_(std::move(state)), core_(std::move(core)), task_id_(task_id) {}

 private:
  std::shared_ptr<pool_internal::ResultState<T>> state_;
  std::weak_ptr<pool_internal::Core> core_;
  uint64_t task_id_ = 0;
};

class ProcessPoolExecutor {
 public:
  // `max_workers` 0 means `CpuCount()`; `initializer` and
  // `max_tasks_per_child` as in `PoolOptions`.
  explicit ProcessPoolExecutor(
      int max_workers = 0,
      std::function<absl::Status()> initializer = nullptr,
      int max_tasks_per_child = 0)
      : pool_(MakeOptions(max_workers, std::move(initializer),
                          max_tasks_per_child)) {}
  // Takes all of a `Pool`'s options, the start method included (Python's
  // `mp_context`): `{.processes = 4, .start_method = "spawn"}`. A zero
  // `max_inflight_per_worker` becomes the executor's 32.
  explicit ProcessPoolExecutor(PoolOptions options)
      : pool_(WithExecutorDefaults(std::move(options))) {}
  // Shutdown(/*wait=*/true), as leaving Python's `with` block does.
  ~ProcessPoolExecutor() { Shutdown(true); }

  ProcessPoolExecutor(const ProcessPoolExecutor&) = delete;
  ProcessPoolExecutor& operator=(const ProcessPoolExecutor&) = delete;

  // Why the executor could not start; OK when running.
  const absl::Status& status() const { return pool_.status(); }

  // ProcessPoolExecutor::Submit()
  //
  // Schedules `f(args...)`. After `Shutdown()` the future fails at once with
  // kFailedPrecondition.
  template <typename F, typename... Args,
            typename R = typename pool_internal::CallRunner<
                F, std::tuple<std::decay_t<Args>...>, true>::R>
  Future<R> Submit(F f, Args... args) {
    using Tuple = std::tuple<std::decay_t<Args>...>;
    Pool::Pending<R> p = pool_.ApplyImpl(
        std::move(f), Tuple(std::move(args)...), AsyncCallbacks<R>{});
    return Future<R>(p.state, pool_.core_, p.task_id);
  }

  // ProcessPoolExecutor::Map()
  //
  // `f` on each item, in order, `chunksize` items per task (Python's default
  // 1). Errors: kDeadlineExceeded when `timeout` passes first (the tasks go
  // on), else as `Pool::Map`.
  template <typename F, typename C,
            typename R = typename pool_internal::CallRunner<
                F, typename C::value_type, false>::R>
  absl::StatusOr<std::vector<R>> Map(
      F f, const C& items, absl::Duration timeout = absl::InfiniteDuration(),
      int chunksize = 1) {
    if (chunksize < 1) return absl::InvalidArgumentError("chunksize must be >= 1");
    AsyncResult<std::vector<R>> r = pool_.MapAsync(std::move(f), items, chunksize);
    return r.Wait(timeout);
  }

  // ProcessPoolExecutor::Shutdown()
  //
  // No new tasks. `cancel_futures` cancels those no worker has yet; `wait`
  // waits for the rest and for the workers to exit.
  void Shutdown(bool wait = true, bool cancel_futures = false) {
    if (!pool_.core_) return;
    if (cancel_futures) pool_.core_->CancelPending();
    pool_.Close();
    if (wait) pool_.Join().IgnoreError();
  }

 private:
  static PoolOptions MakeOptions(int n, std::function<absl::Status()> init,
                                 int max_tasks) {
    PoolOptions o;
    o.processes = n;
    o.initializer = std::move(init);
    o.max_tasks_per_child = max_tasks;
    o.max_inflight_per_worker = kInflightPerWorker;
    return o;
  }

  static PoolOptions WithExecutorDefaults(PoolOptions o) {
    if (o.max_inflight_per_worker == 0) {
      o.max_inflight_per_worker = kInflightPerWorker;
    }
    return o;
  }

  // Fewer tasks sent ahead than a Pool: more futures stay cancellable
  // (Python's executor queues even fewer).
  static constexpr int kInflightPerWorker = 32;

  Pool pool_;
};

// What `WaitAll()` returns: indices into the futures given.
struct DoneAndNotDone {
  std::vector<size_t> done;
  std::vector<size_t> not_done;
};

enum class ReturnWhen { kAllCompleted, kFirstCompleted, kFirstException };

namespace pool_internal {
struct Completions {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<size_t> order;
};
}  // namespace pool_internal

// WaitAll()
//
// Python's `concurrent.futures.wait()`: blocks until `when` holds or
// `timeout` passes, then says which futures are done.
template <typename T>
DoneAndNotDone WaitAll(const std::vector<Future<T>>& futures,
                       absl::Duration timeout = absl::InfiniteDuration(),
                       ReturnWhen when = ReturnWhen::kAllCompleted) {
  auto c = std::make_shared<pool_internal::Completions>();
  for (size_t i = 0; i < futures.size(); ++i) {
    Future<T> f = futures[i];
    f.AddDoneCallback([c, i](const Future<T>&) {
      std::lock_guard<std::mutex> lock(c->mu);
      c->order.push_back(i);
      c->cv.notify_all();
    });
  }
  auto satisfied = [&] {
    if (c->order.size() == futures.size()) return true;
    if (when == ReturnWhen::kFirstCompleted) return !c->order.empty();
    if (when == ReturnWhen::kFirstException) {
      for (size_t i : c->order) {
        if (!futures[i].Exception(absl::ZeroDuration()).ok() &&
            !futures[i].Cancelled()) {
          return true;
        }
      }
    }
    return false;
  };
  {
    std::unique_lock<std::mutex> lock(c->mu);
    if (timeout == absl::InfiniteDuration()) {
      c->cv.wait(lock, satisfied);
    } else {
      c->cv.wait_for(lock, absl::ToChronoNanoseconds(timeout), satisfied);
    }
  }
  DoneAndNotDone out;
  for (size_t i = 0; i < futures.size(); ++i) {
    (futures[i].Done() ? out.done : out.not_done).push_back(i);
  }
  return out;
}

// `AsCompleted` yields futures as they finish (Python's `as_completed`).
//
//   mp::AsCompleted<int> it(futures, absl::Seconds(10));
//   while (auto f = it.Next()) { if (!f->ok()) break; use((*f)->Result()); }
template <typename T>
class AsCompleted {
 public:
  explicit AsCompleted(std::vector<Future<T>> futures,
                       absl::Duration timeout = absl::InfiniteDuration())
      : futures_(std::move(futures)),
        deadline_(timeout == absl::InfiniteDuration()
                      ? absl::InfiniteFuture()
                      : absl::Now() + timeout),
        c_(std::make_shared<pool_internal::Completions>()) {
    for (size_t i = 0; i < futures_.size(); ++i) {
      auto c = c_;
      futures_[i].AddDoneCallback([c, i](const Future<T>&) {
        std::lock_guard<std::mutex> lock(c->mu);
        c->order.push_back(i);
        c->cv.notify_all();
      });
    }
  }

  // AsCompleted::Next()
  //
  // The next future to finish; nullopt after the last; kDeadlineExceeded
  // once the timeout given at construction has passed.
  std::optional<absl::StatusOr<Future<T>>> Next() {
    if (yielded_ == futures_.size()) return std::nullopt;
    std::unique_lock<std::mutex> lock(c_->mu);
    auto ready = [this] { return !c_->order.empty(); };
    if (deadline_ == absl::InfiniteFuture()) {
      c_->cv.wait(lock, ready);
    } else if (!c_->cv.wait_for(
                   lock, absl::ToChronoNanoseconds(deadline_ - absl::Now()),
                   ready)) {
      return absl::StatusOr<Future<T>>(absl::DeadlineExceededError(
          "futures unfinished at the timeout"));
    }
    size_t i = c_->order.front();
    c_->order.pop_front();
    ++yielded_;
    return absl::StatusOr<Future<T>>(futures_[i]);
  }

 private:
  std::vector<Future<T>> futures_;
  absl::Time deadline_;
  std::shared_ptr<pool_internal::Completions> c_;
  size_t yielded_ = 0;
};

}  // namespace mp

#endif  // MP_POOL_EXECUTOR_H_
