// -----------------------------------------------------------------------------
// File: pool/internal/remote_call.h
// -----------------------------------------------------------------------------
//
// Tasks for workers that do not share the pool's memory (start methods
// "spawn" and "forkserver"). Such a worker cannot run the pool's copy of a
// callable, so a task names a function registered with `MP_REGISTER`
// (`process/register.h`): the pool finds the registration by the function's
// address, a worker by its name, and runs it with
// `Registration::call_chunk`. The arguments travel as a
// `std::vector<std::tuple<Params...>>` (each item converted to the
// function's parameter types here, in the pool; for a function without
// parameters, the count of calls), the results as the same
// `std::vector<Result>` a forked worker sends (`typed.h`).

#ifndef MP_POOL_INTERNAL_REMOTE_CALL_H_
#define MP_POOL_INTERNAL_REMOTE_CALL_H_

#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "ipc/codec.h"
#include "pool/internal/runner.h"
#include "process/process.h"
#include "process/register.h"

namespace mp {
namespace pool_internal {

// What a spawn or forkserver worker runs before its first task: a
// registered function by name, its encoded arguments (a one-item
// `std::vector<std::tuple<Params...>>`), and whether it returns
// `absl::Status` (else `void`). `error` when the initializer given cannot
// run in such a worker.
struct RemoteInitializer {
  bool set = false;
  std::string name;
  std::string args;
  bool returns_status = false;
  absl::Status error;
};

// A registered function as a table entry. Runs in a spawn or forkserver
// worker (and would run in a forked one too).
class RegisteredRunner : public ChunkRunner {
 public:
  explicit RegisteredRunner(const process_internal::Registration* r) : r_(r) {}

  bool Run(absl::string_view args, std::string* out,
           TaskFailure* failure) noexcept override {
    return RunBare(args, out, nullptr, failure);
  }

  // A one-call chunk's `std::string` result of at least `kBareStringMin`
  // bytes goes to `*bare` as it is; a shorter one is encoded as `Run()`
  // would.
  bool RunBare(absl::string_view args, std::string* out, std::string* bare,
               TaskFailure* failure) noexcept override {
    process_internal::ChunkError e;
    std::optional<std::string> one;
    if (!r_->call_chunk(r_->fn, args, out, bare != nullptr ? &one : nullptr,
                        &e)) {
      failure->offset = e.offset;
      failure->code = e.code;
      failure->type = std::move(e.type);
      failure->message = std::move(e.message);
      return false;
    }
    if (one.has_value()) {
      if (one->size() >= kBareStringMin) {
        *bare = *std::move(one);
      } else {
        try {
          EncodeTo(std::vector<std::string>{*std::move(one)}, out);
        } catch (...) {
          failure->type = mp::CurrentExceptionTypeName();
          failure->message = "while encoding the result";
          return false;
        }
      }
    }
    return true;
  }
  const char* remote_name() const override { return r_->name; }

 private:
  const process_internal::Registration* r_;
};

// ResolveRegistered()
//
// The registration of function `fn` for a spawn/forkserver task. Errors:
// kInvalidArgument when `fn` is not registered or its result type is not
// supported by the codec; kFailedPrecondition when its name is shared by
// another registration (the worker could not tell them apart).
inline absl::StatusOr<const process_internal::Registration*>
ResolveRegistered(const void* fn) {
  const process_internal::Registration* r =
      process_internal::FindRegistrationByAddress(fn);
  if (r == nullptr) {
    return absl::InvalidArgumentError(
        "with the spawn and forkserver start methods a pool runs only "
        "functions registered with MP_REGISTER or MP_REGISTER_AS "
        "(process/register.h); this function is not registered");
  }
  if (process_internal::FindRegistrationByName(r->name) != r) {
    return absl::FailedPreconditionError(absl::StrCat(
        "more than one function is registered as \"", r->name,
        "\"; give them distinct names with MP_REGISTER_AS"));
  }
  if (r->call_chunk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the result type of \"", r->name, "\" is not supported by the codec"));
  }
  return r;
}

// The error for a callable that has no function pointer (a capturing
// lambda, a function object) under spawn or forkserver.
inline absl::Status NotRemoteCallableError() {
  return absl::InvalidArgumentError(
      "with the spawn and forkserver start methods a pool runs only "
      "functions registered with MP_REGISTER or MP_REGISTER_AS "
      "(process/register.h); a capturing lambda or function object cannot "
      "be sent to a worker (use the fork start method, or a registered "
      "function)");
}

// ResolveCallable()
//
// `ResolveRegistered()` for a callable: its function pointer's
// registration, or `NotRemoteCallableError()` when it has none.
template <typename F>
absl::StatusOr<const process_internal::Registration*> ResolveCallable(
    const F& f) {
  if constexpr (process_internal::HasFunctionPointer<F>::value) {
    auto fp = +f;
    return ResolveRegistered(reinterpret_cast<const void*>(fp));
  } else {
    (void)f;
    return NotRemoteCallableError();
  }
}

template <typename FnPtr>
struct FnSig;
template <typename R, typename... P>
struct FnSig<R (*)(P...)> {
  using Args = std::tuple<std::decay_t<P>...>;
  using Result = R;
};

// `F`'s function pointer type (F must have one).
template <typename F>
using FnPtrOf = std::decay_t<decltype(+std::declval<F&>())>;

// One item as the function's parameter tuple: `{item}`, or the item's
// elements when `Star`.
template <typename Args, bool Star, typename Item>
Args ToArgs(const Item& item) {
  if constexpr (Star) {
    return std::apply([](const auto&... a) { return Args(a...); }, item);
  } else {
    static_assert(std::tuple_size<Args>::value == 1,
                  "mp::Pool: the function must take one argument");
    return Args(std::tuple_element_t<0, Args>(item));
  }
}

// EncodeRemote()
//
// The payload of a task running `F` on the items `[begin, end)` in a spawn
// or forkserver worker. Empty when `F` has no function pointer (the pool
// refused it before).
template <typename F, bool Star, typename It>
std::string EncodeRemote(It begin, It end) {
  if constexpr (process_internal::HasFunctionPointer<F>::value) {
    using Args = typename FnSig<FnPtrOf<F>>::Args;
    if constexpr (std::tuple_size<Args>::value == 0) {
      return Encode(static_cast<uint64_t>(std::distance(begin, end)));
    } else {
      std::vector<Args> items;
      items.reserve(static_cast<size_t>(std::distance(begin, end)));
      for (It it = begin; it != end; ++it) {
        items.push_back(ToArgs<Args, Star>(*it));
      }
      return Encode(items);
    }
  } else {
    return std::string();
  }
}

// MakeRemoteInitializer()
//
// `RemoteInitializer` for `f(args...)`.
template <typename F, typename... A>
RemoteInitializer MakeRemoteInitializer(const F& f, const A&... args) {
  RemoteInitializer init;
  init.set = true;
  absl::StatusOr<const process_internal::Registration*> r = ResolveCallable(f);
  if (!r.ok()) {
    init.error = absl::Status(r.status().code(),
                              absl::StrCat("initializer: ", r.status().message()));
    return init;
  }
  if constexpr (process_internal::HasFunctionPointer<F>::value) {
    using Sig = FnSig<FnPtrOf<F>>;
    static_assert(std::tuple_size<typename Sig::Args>::value == sizeof...(A),
                  "mp::PoolOptions::SetInitializer: wrong number of arguments");
    init.name = (*r)->name;
    // One call: the same payload as a task of one item.
    const std::tuple<A...> call(args...);
    init.args = EncodeRemote<F, /*Star=*/true>(&call, &call + 1);
    init.returns_status =
        std::is_same<std::decay_t<typename Sig::Result>, absl::Status>::value;
  }
  return init;
}

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_INTERNAL_REMOTE_CALL_H_
