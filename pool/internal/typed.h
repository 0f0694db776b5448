// -----------------------------------------------------------------------------
// File: pool/internal/typed.h
// -----------------------------------------------------------------------------
//
// The typed half of a task: `CallRunner<F, Item, Star>` decodes a chunk of
// arguments (`std::vector<Item>`), calls `F` on each (with `std::apply` when
// `Star`), catches what it throws, and encodes the results as a
// `std::vector<R>` (a count for `void`). `DecodeResults<R>` reads them back.

#ifndef MP_POOL_INTERNAL_TYPED_H_
#define MP_POOL_INTERNAL_TYPED_H_

#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "ipc/codec.h"
#include "pool/internal/runner.h"
#include "process/exception_name.h"

namespace mp {
namespace pool_internal {

template <typename F, typename Item, bool Star>
struct CallTraits;
template <typename F, typename Item>
struct CallTraits<F, Item, false> {
  using Raw = std::invoke_result_t<const F&, const Item&>;
  static Raw Call(const F& f, const Item& item) { return f(item); }
};
template <typename F, typename Item>
struct CallTraits<F, Item, true> {
  using Raw = decltype(std::apply(std::declval<const F&>(), std::declval<const Item&>()));
  static Raw Call(const F& f, const Item& item) { return std::apply(f, item); }
};

// `void` results travel as std::monostate.
template <typename Raw>
using ResultOf = std::conditional_t<std::is_void_v<Raw>, std::monostate,
                                    std::decay_t<Raw>>;

template <typename R>
void EncodeResults(const std::vector<R>& results, std::string* out) {
  if constexpr (std::is_same_v<R, std::monostate>) {
    EncodeTo(static_cast<uint64_t>(results.size()), out);
  } else {
    EncodeTo(results, out);
  }
}

template <typename R>
absl::StatusOr<std::vector<R>> DecodeResults(absl::string_view bytes) {
  if constexpr (std::is_same_v<R, std::monostate>) {
    absl::StatusOr<uint64_t> n = Decode<uint64_t>(bytes);
    if (!n.ok()) return n.status();
    if (*n > (uint64_t{1} << 32)) return absl::DataLossError("bad result count");
    return std::vector<R>(static_cast<size_t>(*n));
  } else {
    return Decode<std::vector<R>>(bytes);
  }
}

// Same, taking the received bytes: a `std::string` result of a one-item
// chunk (e.g. Apply, or Map with chunksize 1) is the received buffer itself,
// its codec prefix dropped with one in-cache move instead of a copy into a
// fresh allocation (for a 1 MiB result that copy, with its page faults, cost
// more than the socket read). Anything else decodes as above.
template <typename R>
absl::StatusOr<std::vector<R>> DecodeResults(std::string&& bytes) {
  if constexpr (std::is_same_v<R, std::string>) {
    // Encoded std::vector<std::string>{s}: magic:u8 version:u8
    // fingerprint:u32 | count:u64 = 1 | size:u64 | bytes. The prefix up to
    // the count is the same for every value of the type.
    static const std::string* const prefix = [] {
      auto* p = new std::string(Encode(std::vector<std::string>{}));
      p->resize(p->size() - sizeof(uint64_t));  // drop the count
      return p;
    }();
    const size_t skip = prefix->size() + 2 * sizeof(uint64_t);
    if (bytes.size() >= skip &&
        std::memcmp(bytes.data(), prefix->data(), prefix->size()) == 0) {
      uint64_t count, size;
      std::memcpy(&count, bytes.data() + prefix->size(), sizeof count);
      std::memcpy(&size, bytes.data() + prefix->size() + sizeof count,
                  sizeof size);
      if (count == 1 && size == bytes.size() - skip) {
        bytes.erase(0, skip);
        std::vector<std::string> out;
        out.push_back(std::move(bytes));
        return out;
      }
    }
  }
  return DecodeResults<R>(absl::string_view(bytes));
}

// SetDone()
//
// Makes `spec` (a `Core::TaskSpec`) call `on_results(StatusOr<vector<R>>)`
// with the chunk's decoded results or its failure. For `std::string`
// results it also sets `done_bare`, which receives a large result as the
// very buffer it was read into (`ChunkRunner::RunBare`): no decode copy.
template <typename R, typename Spec, typename G>
void SetDone(Spec* spec, G on_results) {
  if constexpr (std::is_same_v<R, std::string>) {
    spec->done_bare = [on_results](std::string body) mutable {
      std::vector<std::string> one;
      one.push_back(std::move(body));
      on_results(absl::StatusOr<std::vector<R>>(std::move(one)));
    };
  }
  spec->done = [on_results = std::move(on_results)](
                   absl::StatusOr<std::string> bytes) mutable {
    if (!bytes.ok()) {
      on_results(absl::StatusOr<std::vector<R>>(bytes.status()));
    } else {
      on_results(DecodeResults<R>(std::move(*bytes)));
    }
  };
}

// `Single`: the payload is one encoded `Item` (a tuple for Apply, which may
// be empty), not a vector of them.
template <typename F, typename Item, bool Star, bool Single = false>
class CallRunner : public ChunkRunner {
 public:
  using Traits = CallTraits<F, Item, Star>;
  using R = ResultOf<typename Traits::Raw>;

  explicit CallRunner(F f) : f_(std::move(f)) {}

  bool Run(absl::string_view args, std::string* out,
           TaskFailure* failure) noexcept override {
    return RunBare(args, out, nullptr, failure);
  }

  // `bare` may be null (then every result is encoded into `*out`).
  bool RunBare(absl::string_view args, std::string* out, std::string* bare,
               TaskFailure* failure) noexcept override {
    try {
      absl::StatusOr<std::vector<Item>> items;
      if constexpr (Single) {
        absl::StatusOr<Item> one = Decode<Item>(args);
        if (one.ok()) {
          items.emplace();
          items->push_back(*std::move(one));
        } else {
          items = one.status();
        }
      } else {
        items = Decode<std::vector<Item>>(args);
      }
      if (!items.ok()) {
        failure->code = static_cast<int32_t>(items.status().code());
        failure->message =
            absl::StrCat("cannot decode the arguments: ", items.status().message());
        return false;
      }
      std::vector<R> results;
      results.reserve(items->size());
      for (size_t i = 0; i < items->size(); ++i) {
        try {
          if constexpr (std::is_void_v<typename Traits::Raw>) {
            Traits::Call(f_, (*items)[i]);
            results.emplace_back();
          } else {
            results.push_back(Traits::Call(f_, (*items)[i]));
          }
        } catch (const std::exception& e) {
          failure->offset = static_cast<uint32_t>(i);
          failure->type = mp::CurrentExceptionTypeName();
          failure->message = e.what();
          return false;
        } catch (...) {
          failure->offset = static_cast<uint32_t>(i);
          failure->type = mp::CurrentExceptionTypeName();
          failure->message = "(not a std::exception)";
          return false;
        }
      }
      if constexpr (std::is_same_v<R, std::string>) {
        if (bare != nullptr && results.size() == 1 &&
            results[0].size() >= kBareStringMin) {
          *bare = std::move(results[0]);
          return true;
        }
      }
      EncodeResults(results, out);
      return true;
    } catch (...) {
      failure->type = mp::CurrentExceptionTypeName();
      failure->message = "while decoding or encoding";
      return false;
    }
  }

 private:
  F f_;
};

template <typename T>
struct IsAsyncCallbacks : std::false_type {};

template <typename... Args>
constexpr bool LastIsCallbacks() {
  if constexpr (sizeof...(Args) == 0) {
    return false;
  } else {
    using Last = std::tuple_element_t<sizeof...(Args) - 1, std::tuple<Args...>>;
    return IsAsyncCallbacks<std::decay_t<Last>>::value;
  }
}

template <typename T>
const void* TypeTag() {
  static const char tag = 0;
  return &tag;
}

// The table key of a callable: plain functions and captureless lambdas are
// keyed (one table entry however often they are used); closures with state
// are not.
template <typename Runner, typename F>
std::pair<const void*, uintptr_t> KeyOf(const F& f) {
  if constexpr (std::is_pointer_v<F> &&
                std::is_function_v<std::remove_pointer_t<F>>) {
    return {TypeTag<Runner>(), reinterpret_cast<uintptr_t>(f)};
  } else if constexpr (std::is_empty_v<F>) {
    return {TypeTag<Runner>(), 0};
  } else {
    return {nullptr, 0};
  }
}

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_INTERNAL_TYPED_H_
