// -----------------------------------------------------------------------------
// File: pool/pool.h
// -----------------------------------------------------------------------------
//
// `mp::Pool` is a pool of worker processes (Python: `multiprocessing.Pool`).
//
//   int Square(int x) { return x * x; }
//
//   mp::Pool pool({.processes = 4});
//   absl::StatusOr<std::vector<int>> squares = pool.Map(Square, xs);
//   mp::AsyncResult<int> r = pool.ApplyAsync(Square, 7);
//   for (auto it = pool.Imap(Square, xs); auto v = it.Next();) use(**v);
//   pool.Close();
//   pool.Join();         // or let the destructor terminate it
//
// Start methods (`PoolOptions::start_method`): "fork" (the default),
// "spawn" and "forkserver". With "spawn" and "forkserver" workers are not
// forked from this (multi-threaded) process; tasks name functions
// registered with `MP_REGISTER` / `MP_REGISTER_AS` (`process/register.h`),
// captureless lambdas included, and the initializer must be one too
// (`SetInitializer`). Any other callable fails at the call with
// kInvalidArgument:
//
//   int Square(int x) { return x * x; }
//   MP_REGISTER(Square);
//   mp::Pool pool({.processes = 4, .start_method = "spawn"});
//   auto squares = pool.Map(Square, xs);
//
// Functions with "fork": any callable works, lambdas with captures
// included. The pool keeps a table of the callables it was given; a task names its function by index
// and a worker runs its own copy, the one that existed when the worker was
// forked. A worker forked before a callable was added cannot run it, so the
// pool replaces its idle workers when a task needs a newer entry. Plain
// functions and captureless lambdas get one entry however often they are
// used; each call with a capturing closure adds one (and so re-forks the
// workers): captured values are copied at that time, and references see the
// parent's memory as it was then. Prefer captureless functions in hot loops.
//
// Arguments and results go through the codec (`ipc/codec.h`); a `void`
// function's results are `std::monostate`.
//
// Failures: a task that throws fails with `kUnknown` "task <i> failed in
// worker pid <p>: <type>: <what()>" (payloads `mp.index`, `mp.pid`,
// `mp.exception_type`); `Map` reports the lowest failing index; the pool
// stays usable. A worker that dies mid-task (signal, `abort()`, `_exit()`,
// out-of-memory kill) fails the task it was running with `kUnavailable`
// "task <i> lost: worker lost: pid <p> was killed by signal 9 (Killed)" as
// soon as the pool's poll loop sees the worker's pidfd, or runs it again when
// `retries` allows; the tasks it had not started go to other workers and a
// replacement worker starts. An initializer that fails breaks the pool:
// every task fails with `kAborted` "pool broken: worker initializer failed".
//
// Workers ignore SIGINT: on Ctrl-C the owner process dies and its workers
// are killed with it (PR_SET_PDEATHSIG) without printing anything.

#ifndef MP_POOL_POOL_H_
#define MP_POOL_POOL_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "pool/async_result.h"
#include "pool/internal/core.h"
#include "pool/internal/remote_call.h"
#include "pool/internal/typed.h"
#include "process/process.h"  // CpuCount()

namespace mp {

struct PoolOptions {
  // Number of worker processes; 0 means `CpuCount()`.
  int processes = 0;
  // Runs once in each worker before its first task (Python's
  // `initializer(*initargs)`: capture the arguments, or use
  // `SetInitializer`). An error status or exception breaks the pool.
  std::function<absl::Status()> initializer;
  // A worker exits and is replaced after this many tasks (chunks); 0 never.
  int max_tasks_per_child = 0;
  // How workers start: "fork" (the default, also ""), "spawn" or
  // "forkserver" (see the file comment for what functions each runs).
  std::string start_method = "fork";
  // What happens to the task a worker was running when it died: 0 fails it
  // with "worker lost" (default); N > 0 runs it again up to N more times.
  int retries = 0;
  // Most tasks (chunks) sent ahead to one worker; 0 means 128. More is
  // faster for many small tasks; fewer balances long tasks better and leaves
  // more of them cancellable (the executor uses 32).
  int max_inflight_per_worker = 0;

  // With "spawn" and "forkserver": the registered function and arguments
  // `SetInitializer()` recorded (an `initializer` assigned directly cannot
  // run there). Set by `SetInitializer()`; not for direct use.
  pool_internal::RemoteInitializer remote_initializer;

  // PoolOptions::SetInitializer()
  //
  // `initializer = f(args...)`; `f` may return void or absl::Status. With
  // "spawn" and "forkserver", `f` must be registered (`MP_REGISTER`) and the
  // arguments are converted to its parameter types and sent through the
  // codec; otherwise the pool fails to start with kInvalidArgument.
  template <typename F, typename... Args>
  PoolOptions& SetInitializer(F f, Args... args) {
    remote_initializer = pool_internal::MakeRemoteInitializer(f, args...);
    initializer = [f, args...]() -> absl::Status {
      if constexpr (std::is_void_v<std::invoke_result_t<F, Args...>>) {
        f(args...);
        return absl::OkStatus();
      } else {
        return f(args...);
      }
    };
    return *this;
  }
};

template <typename R>
class ImapIterator;

class Pool {
 public:
  explicit Pool(PoolOptions options = {});
  // Terminates the pool (as leaving Python's `with Pool()` block does):
  // unfinished tasks fail with kCancelled, workers are killed and reaped.
  ~Pool();

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Pool::status()
  //
  // Why the pool could not start (bad options, fork failure); every call
  // then fails with it. OK for a running pool.
  const absl::Status& status() const { return status_; }
  int processes() const { return processes_; }

  // Pool::Map()
  //
  // `f` on each item, results in order (Python's `map`). `chunksize` 0 means
  // Python's default, ceil(len / (4 * processes)). Errors: the lowest failing
  // item's status; kFailedPrecondition when closed.
  template <typename F, typename C,
            typename R = typename pool_internal::CallRunner<
                F, typename C::value_type, false>::R>
  absl::StatusOr<std::vector<R>> Map(F f, const C& items, int chunksize = 0) {
    return MapImpl<false>(std::move(f), items, chunksize,
                          AsyncCallbacks<std::vector<R>>{})
        .TakeWait();
  }

  // Pool::MapAsync()
  //
  // `Map` without waiting; `callbacks` run on the pool's result thread.
  template <typename F, typename C,
            typename R = typename pool_internal::CallRunner<
                F, typename C::value_type, false>::R>
  AsyncResult<std::vector<R>> MapAsync(
      F f, const C& items, int chunksize = 0,
      AsyncCallbacks<std::vector<R>> callbacks = {}) {
    return MapImpl<false>(std::move(f), items, chunksize, std::move(callbacks));
  }

  // Pool::Starmap() / StarmapAsync()
  //
  // Like `Map`, with each item a tuple of arguments: `f(a, b)` for `{a, b}`.
  template <typename F, typename C,
            typename R = typename pool_internal::CallRunner<
                F, typename C::value_type, true>::R>
  absl::StatusOr<std::vector<R>> Starmap(F f, const C& items,
                                         int chunksize = 0) {
    return MapImpl<true>(std::move(f), items, chunksize,
                         AsyncCallbacks<std::vector<R>>{})
        .TakeWait();
  }
  template <typename F, typename C,
            typename R = typename pool_internal::CallRunner<
                F, typename C::value_type, true>::R>
  AsyncResult<std::vector<R>> StarmapAsync(
      F f, const C& items, int chunksize = 0,
      AsyncCallbacks<std::vector<R>> callbacks = {}) {
    return MapImpl<true>(std::move(f), items, chunksize, std::move(callbacks));
  }

  // Pool::Apply() / ApplyAsync()
  //
  // `f(args...)` in a worker (Python's `apply` / `apply_async`). The second
  // `ApplyAsync` takes the arguments as a tuple and Python's `callback` and
  // `error_callback`.
  template <typename F, typename... Args,
            typename R = typename pool_internal::CallRunner<
                F, std::tuple<std::decay_t<Args>...>, true>::R>
  absl::StatusOr<R> Apply(F f, Args... args) {
    using Tuple = std::tuple<std::decay_t<Args>...>;
    return ApplyImpl(std::move(f), Tuple(std::move(args)...),
                     AsyncCallbacks<R>{})
        .TakeWait();
  }
  template <typename F, typename... Args,
            typename = std::enable_if_t<
                !pool_internal::LastIsCallbacks<Args...>()>,
            typename R = typename pool_internal::CallRunner<
                F, std::tuple<std::decay_t<Args>...>, true>::R>
  AsyncResult<R> ApplyAsync(F f, Args... args) {
    using Tuple = std::tuple<std::decay_t<Args>...>;
    return ApplyImpl(std::move(f), Tuple(std::move(args)...),
                     AsyncCallbacks<R>{});
  }
  template <typename F, typename... Args, typename R>
  AsyncResult<R> ApplyAsync(F f, std::tuple<Args...> args,
                            AsyncCallbacks<R> callbacks) {
    return ApplyImpl(std::move(f), std::move(args), std::move(callbacks));
  }

  // Pool::Imap() / ImapUnordered()
  //
  // Lazy `Map`: reads `[begin, end)` as results are consumed, with at most
  // `4 * processes` chunks in flight. `Imap` yields in order,
  // `ImapUnordered` as results arrive. `chunksize` defaults to 1. The input
  // must outlive the iterator. A failed chunk yields its status once, then
  // iteration goes on with the next chunk.
  template <typename F, typename It>
  auto Imap(F f, It begin, It end, int chunksize = 1) {
    return ImapImpl(std::move(f), begin, end, chunksize, /*ordered=*/true);
  }
  template <typename F, typename C>
  auto Imap(F f, const C& items, int chunksize = 1) {
    return Imap(std::move(f), std::begin(items), std::end(items), chunksize);
  }
  template <typename F, typename It>
  auto ImapUnordered(F f, It begin, It end, int chunksize = 1) {
    return ImapImpl(std::move(f), begin, end, chunksize, /*ordered=*/false);
  }
  template <typename F, typename C>
  auto ImapUnordered(F f, const C& items, int chunksize = 1) {
    return ImapUnordered(std::move(f), std::begin(items), std::end(items),
                         chunksize);
  }

  // Pool::Close() / Terminate() / Join()
  //
  // Close: no new tasks; the workers exit once the queued tasks are done.
  // Terminate: stops now; unfinished tasks fail with kCancelled. Join: waits
  // for the workers to exit; kFailedPrecondition before Close or Terminate
  // (Python's ValueError) or from a callback.
  void Close();
  void Terminate();
  absl::Status Join();

  // Pids of the live workers (diagnostics, tests).
  std::vector<int64_t> WorkerPids() const;
  // Workers started so far, replacements included.
  int64_t workers_started() const;

 private:
  // A result that `Map()` can move out of.
  friend class ProcessPoolExecutor;

  template <typename T>
  struct Pending {
    std::shared_ptr<pool_internal::ResultState<T>> state;
    uint64_t task_id = 0;  // Apply only; 0 when not submitted
    absl::StatusOr<T> TakeWait() {
      state->WaitFor(absl::InfiniteDuration());
      return state->Take();
    }
    operator AsyncResult<T>() const { return AsyncResult<T>(state); }
  };

  // Lets a thread waiting on a result poll the workers itself.
  template <typename T>
  void SetDriver(pool_internal::ResultState<T>& state) {
    std::weak_ptr<pool_internal::Core> weak = core_;
    state.set_driver([weak](const std::function<bool()>& ready,
                            absl::Duration timeout) {
      std::shared_ptr<pool_internal::Core> core = weak.lock();
      if (!core) return 2;
      return static_cast<int>(core->Drive(ready, timeout));
    });
  }

  // The table index of `f`. Errors (spawn and forkserver only): `f` is not
  // a registered function (see `remote_call.h`).
  template <typename Runner, typename F>
  absl::StatusOr<uint32_t> AddFunction(F f) {
    if (remote_) {
      absl::StatusOr<const process_internal::Registration*> r =
          pool_internal::ResolveCallable(f);
      if (!r.ok()) return r.status();
      const process_internal::Registration* reg = *r;
      return core_->AddFunction(
          [reg] { return std::make_shared<pool_internal::RegisteredRunner>(reg); },
          {pool_internal::TypeTag<pool_internal::RegisteredRunner>(),
           reinterpret_cast<uintptr_t>(reg)});
    }
    auto key = pool_internal::KeyOf<Runner>(f);
    return core_->AddFunction(
        [&f] { return std::make_shared<Runner>(std::move(f)); }, key);
  }

  template <bool Star, typename F, typename C, typename R>
  Pending<std::vector<R>> MapImpl(F f, const C& items, int chunksize,
                                      AsyncCallbacks<std::vector<R>> callbacks);

  template <typename F, typename Tuple, typename R>
  Pending<R> ApplyImpl(F f, Tuple args, AsyncCallbacks<R> callbacks);

  template <typename F, typename It>
  auto ImapImpl(F f, It begin, It end, int chunksize, bool ordered);

  absl::Status status_;
  int processes_ = 0;
  bool remote_ = false;  // spawn or forkserver workers
  std::shared_ptr<pool_internal::Core> core_;
};

// Iterates over an `Imap` / `ImapUnordered`.
//
//   auto it = pool.Imap(Square, xs);
//   while (std::optional<absl::StatusOr<int>> v = it.Next()) { ... }
template <typename R>
class ImapIterator {
 public:
  // ImapIterator::Next()
  //
  // The next result, its error, or nullopt after the last one.
  // `kDeadlineExceeded` when `timeout` passes first (call again to go on).
  std::optional<absl::StatusOr<R>> Next(
      absl::Duration timeout = absl::InfiniteDuration()) {
    return state_->Next(timeout);
  }

  struct State {
    virtual ~State() = default;
    virtual std::optional<absl::StatusOr<R>> Next(absl::Duration timeout) = 0;
  };
  explicit ImapIterator(std::shared_ptr<State> state)
      : state_(std::move(state)) {}

 private:
  std::shared_ptr<State> state_;
};

// ---- implementation ----------------------------------------------------------

namespace pool_internal {

template <typename T>
struct IsAsyncCallbacks<AsyncCallbacks<T>> : std::true_type {};

// Python's default Map chunksize.
inline size_t DefaultChunksize(size_t n, int processes) {
  if (n == 0) return 1;
  size_t div = static_cast<size_t>(std::max(1, processes)) * 4;
  size_t c = n / div;
  if (n % div) ++c;
  return std::max<size_t>(c, 1);
}

// Collects the chunks of one Map.
template <typename R>
struct MapJob {
  std::mutex mu;
  std::vector<std::vector<R>> chunks;
  size_t left = 0;
  int64_t error_index = -1;
  absl::Status error;
  std::shared_ptr<ResultState<std::vector<R>>> result;

  void OnChunk(size_t chunk, int64_t base, absl::StatusOr<std::vector<R>> rs) {
    absl::Status status;
    if (rs.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      chunks[chunk] = *std::move(rs);
    } else {
      status = rs.status();
    }
    bool last;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!status.ok()) {
        int64_t index = base;
        if (auto p = status.GetPayload("mp.index")) {
          int64_t v;
          if (absl::SimpleAtoi(std::string(*p), &v)) index = v;
        }
        if (error_index < 0 || index < error_index) {
          error_index = index;
          error = status;
        }
      }
      last = --left == 0;
    }
    if (!last) return;
    if (error_index >= 0) {
      result->Set(error);
      return;
    }
    size_t total = 0;
    for (auto& c : chunks) total += c.size();
    std::vector<R> all;
    if (chunks.size() == 1) {
      all = std::move(chunks[0]);
    } else {
      all.reserve(total);
      for (auto& c : chunks) {
        std::move(c.begin(), c.end(), std::back_inserter(all));
      }
    }
    chunks.clear();
    result->Set(std::move(all));
  }
};

}  // namespace pool_internal

template <bool Star, typename F, typename C, typename R>
Pool::Pending<std::vector<R>> Pool::MapImpl(
    F f, const C& items, int chunksize,
    AsyncCallbacks<std::vector<R>> callbacks) {
  using Item = typename C::value_type;
  using Runner = pool_internal::CallRunner<F, Item, Star>;
  auto result = std::make_shared<pool_internal::ResultState<std::vector<R>>>();
  result->set_callbacks(std::move(callbacks));
  if (!status_.ok()) {
    result->Set(status_);
    return {result};
  }
  if (chunksize < 0) {
    result->Set(absl::InvalidArgumentError("chunksize must be >= 0"));
    return {result};
  }
  const size_t n = static_cast<size_t>(std::distance(std::begin(items), std::end(items)));
  if (n == 0) {
    result->Set(std::vector<R>());
    return {result};
  }
  size_t cs = chunksize > 0 ? static_cast<size_t>(chunksize)
                            : pool_internal::DefaultChunksize(n, processes_);
  absl::StatusOr<uint32_t> added = AddFunction<Runner>(std::move(f));
  if (!added.ok()) {
    result->Set(added.status());
    return {result};
  }
  const uint32_t fn = *added;
  auto job = std::make_shared<pool_internal::MapJob<R>>();
  job->result = result;
  size_t nchunks = (n + cs - 1) / cs;
  job->chunks.resize(nchunks);
  job->left = nchunks;
  std::vector<pool_internal::Core::TaskSpec> specs;
  specs.reserve(nchunks);
  auto it = std::begin(items);
  std::vector<Item> chunk;
  for (size_t c = 0; c < nchunks; ++c) {
    size_t begin = c * cs;
    size_t len = std::min(cs, n - begin);
    chunk.assign(it, std::next(it, len));
    it = std::next(it, len);
    pool_internal::Core::TaskSpec spec;
    spec.function = fn;
    spec.payload = remote_ ? pool_internal::EncodeRemote<F, Star>(chunk.begin(),
                                                             chunk.end())
                           : Encode(chunk);
    spec.base_index = static_cast<int64_t>(begin);
    pool_internal::SetDone<R>(
        &spec, [job, c, begin](absl::StatusOr<std::vector<R>> rs) {
          job->OnChunk(c, static_cast<int64_t>(begin), std::move(rs));
        });
    specs.push_back(std::move(spec));
  }
  absl::StatusOr<std::vector<uint64_t>> ids = core_->Submit(std::move(specs));
  if (!ids.ok()) result->Set(ids.status());
  return {result};
}

template <typename F, typename Tuple, typename R>
Pool::Pending<R> Pool::ApplyImpl(F f, Tuple args, AsyncCallbacks<R> callbacks) {
  using Runner = pool_internal::CallRunner<F, Tuple, true, /*Single=*/true>;
  auto result = std::make_shared<pool_internal::ResultState<R>>();
  result->set_callbacks(std::move(callbacks));
  if (!status_.ok()) {
    result->Set(status_);
    return Pending<R>{result};
  }
  absl::StatusOr<uint32_t> added = AddFunction<Runner>(std::move(f));
  if (!added.ok()) {
    result->Set(added.status());
    return Pending<R>{result};
  }
  const uint32_t fn = *added;
  SetDriver(*result);
  std::vector<pool_internal::Core::TaskSpec> specs(1);
  specs[0].function = fn;
  specs[0].payload = remote_ ? pool_internal::EncodeRemote<F, true>(&args, &args + 1)
                             : Encode(args);
  pool_internal::SetDone<R>(&specs[0], [result](absl::StatusOr<std::vector<R>> rs) {
    if (!rs.ok()) {
      result->Set(rs.status());
    } else if (rs->size() != 1) {
      result->Set(absl::DataLossError("expected one result"));
    } else {
      result->Set(std::move((*rs)[0]));
    }
  });
  absl::StatusOr<std::vector<uint64_t>> ids = core_->Submit(std::move(specs));
  if (!ids.ok()) {
    result->Set(ids.status());
    return Pending<R>{result};
  }
  return Pending<R>{result, (*ids)[0]};
}

namespace pool_internal {

// Imap's state: pulls chunks from the input as results are consumed.
template <typename F, typename It, typename R>
class ImapState : public ImapIterator<R>::State,
                  public std::enable_shared_from_this<ImapState<F, It, R>> {
 public:
  using Item = typename std::iterator_traits<It>::value_type;

  ImapState(std::shared_ptr<Core> core, uint32_t fn, It begin, It end,
            size_t chunksize, size_t window, bool ordered, bool remote)
      : core_(std::move(core)), fn_(fn), it_(begin), end_(end),
        chunksize_(chunksize), window_(window), ordered_(ordered),
        remote_(remote) {}

  // Submits chunks until `window_` are in flight or the input ends.
  void TopUp() {
    std::unique_lock<std::mutex> lock(mu_);
    while (in_flight_ < window_ && it_ != end_) {
      std::vector<Item> chunk;
      while (chunk.size() < chunksize_ && it_ != end_) {
        chunk.push_back(*it_);
        ++it_;
      }
      size_t c = submitted_++;
      int64_t base = static_cast<int64_t>(items_);
      items_ += chunk.size();
      ++in_flight_;
      std::vector<Core::TaskSpec> specs(1);
      specs[0].function = fn_;
      specs[0].payload =
          remote_ ? EncodeRemote<F, false>(chunk.begin(), chunk.end())
                  : Encode(chunk);
      specs[0].base_index = base;
      std::weak_ptr<ImapState> self = this->shared_from_this();
      SetDone<R>(&specs[0], [self, c](absl::StatusOr<std::vector<R>> rs) {
        if (auto s = self.lock()) s->OnChunk(c, std::move(rs));
      });
      lock.unlock();
      absl::StatusOr<std::vector<uint64_t>> ids = core_->Submit(std::move(specs));
      if (!ids.ok()) OnChunk(c, ids.status());
      lock.lock();
    }
  }

  void OnChunk(size_t c, absl::StatusOr<std::vector<R>> rs) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.emplace(ordered_ ? c : arrival_++, std::move(rs));
    }
    cv_.notify_all();
  }

  std::optional<absl::StatusOr<R>> Next(absl::Duration timeout) override {
    TopUp();
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      if (current_.has_value()) {
        if (!current_->ok()) {
          absl::Status s = current_->status();
          current_.reset();
          return absl::StatusOr<R>(s);
        }
        if (pos_ < (*current_)->size()) return std::move((**current_)[pos_++]);
        current_.reset();
        pos_ = 0;
      }
      if (yielded_ == submitted_ && it_ == end_) return std::nullopt;
      auto ready = [this] { return done_.count(yielded_) > 0; };
      if (timeout == absl::InfiniteDuration()) {
        cv_.wait(lock, ready);
      } else if (!cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), ready)) {
        return absl::StatusOr<R>(
            absl::DeadlineExceededError("no result before the timeout"));
      }
      auto node = done_.extract(yielded_++);
      current_.emplace(std::move(node.mapped()));
      --in_flight_;
      lock.unlock();
      TopUp();
      lock.lock();
    }
  }

 private:
  std::shared_ptr<Core> core_;
  const uint32_t fn_;
  It it_, end_;
  const size_t chunksize_, window_;
  const bool ordered_;
  const bool remote_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t submitted_ = 0, yielded_ = 0, arrival_ = 0, in_flight_ = 0, items_ = 0;
  std::map<size_t, absl::StatusOr<std::vector<R>>> done_;
  std::optional<absl::StatusOr<std::vector<R>>> current_;
  size_t pos_ = 0;
};

}  // namespace pool_internal

template <typename F, typename It>
auto Pool::ImapImpl(F f, It begin, It end, int chunksize, bool ordered) {
  using Item = typename std::iterator_traits<It>::value_type;
  using Runner = pool_internal::CallRunner<F, Item, false>;
  using R = typename Runner::R;
  using State = pool_internal::ImapState<F, It, R>;
  absl::Status error = status_;
  if (error.ok() && chunksize < 1) {
    error = absl::InvalidArgumentError("chunksize must be >= 1");
  }
  uint32_t fn = 0;
  if (error.ok()) {
    absl::StatusOr<uint32_t> added = AddFunction<Runner>(std::move(f));
    if (added.ok()) {
      fn = *added;
    } else {
      error = added.status();
    }
  }
  if (!error.ok()) {
    // Nothing runs; Next() reports the error once.
    struct Failed : ImapIterator<R>::State {
      absl::Status status;
      bool told = false;
      std::optional<absl::StatusOr<R>> Next(absl::Duration) override {
        if (told) return std::nullopt;
        told = true;
        return absl::StatusOr<R>(status);
      }
    };
    auto failed = std::make_shared<Failed>();
    failed->status = error;
    return ImapIterator<R>(failed);
  }
  auto state = std::make_shared<State>(core_, fn, begin, end,
                                       static_cast<size_t>(chunksize),
                                       static_cast<size_t>(4 * processes_),
                                       ordered, remote_);
  state->TopUp();
  return ImapIterator<R>(state);
}

}  // namespace mp

#endif  // MP_POOL_POOL_H_
