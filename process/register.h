// -----------------------------------------------------------------------------
// File: process/register.h
// -----------------------------------------------------------------------------
//
// `MP_REGISTER(Function)` names a function so that a process started with the
// `spawn` or `forkserver` start method can run it: those children do not
// share the parent's memory, so the parent sends the function's *name* and
// its arguments (through the codec, `ipc/codec.h`), and the child looks the
// name up. This is what "picklable, defined at module level" means in
// Python.
//
//   int Square(int x) { ... }
//   MP_REGISTER(Square);                  // at namespace scope, once
//
//   mp::ProcessOptions opts;
//   opts.start_method = mp::StartMethod::kSpawn;
//   mp::Process p(opts, Square, 7);       // looked up by address at Start()
//
// A captureless lambda is registered under an explicit name:
//
//   constexpr auto kTwice = [](int x) { return 2 * x; };
//   MP_REGISTER_AS("Twice", kTwice);
//
// Every parameter type must be supported by the codec (the registration does
// not compile otherwise); parameters are received by value (`const T&` and
// `T&` parameters bind to a decoded copy). A function that returns `int` sets
// the child's exit code. One that returns `absl::Status` (or an
// `absl::StatusOr<T>`) exits 0 when it is OK; otherwise the child ends as
// when the target throws: it prints `Process <name>: <status>` (e.g.
// `Process Process-1: INTERNAL: disk full`) to stderr and exits 1, as
// Python prints the traceback and exits 1. Any other result is ignored (exit
// code 0). These rules hold for every start method, fork included.
//
// How a spawned child finds its function without changes to `main`: each
// registration is a `__attribute__((constructor(101)))` function. The parent
// tells the child (environment variable `MP_PROCESS_BOOT`) how many
// registrations the program has; the child counts them as the constructors
// run and, at the last one, runs the target and `_exit()`s -- before `main`
// and before the program's ordinary (default-priority) global constructors.
// So a registered function must not rely on the program's own globals with
// dynamic initialisers (the C and C++ standard streams, libraries in shared
// objects, constant-initialised globals and function-local statics are fine).
// Registrations must be linked into the program (not in a `dlopen()`ed
// plugin), and overloaded functions need a cast or `MP_REGISTER_AS`.
//
// A registered function whose result the codec supports (or `void`) can
// also be a task of an `mp::Pool` started with "spawn" or "forkserver": the
// worker looks it up by name and runs it through `Registration::call_chunk`.

#ifndef MP_PROCESS_REGISTER_H_
#define MP_PROCESS_REGISTER_H_

#include <array>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ipc/codec.h"
#include "process/exception_name.h"

// MP_REGISTER(function)
//
// Registers `function` under its spelling (`MP_REGISTER(ns::Work)` registers
// "ns::Work"). Use at namespace scope, followed by a semicolon.
#define MP_REGISTER(fn) MP_REGISTER_AS(#fn, fn)

// MP_REGISTER_AS(name, function)
//
// Registers `function` (a function or a captureless, non-generic lambda)
// under `name`, a string literal. Names must be unique in the program.
#define MP_REGISTER_AS(name, fn) MP_REGISTER_IMPL_(name, fn, __COUNTER__)
#define MP_REGISTER_IMPL_(name, fn, n) MP_REGISTER_IMPL2_(name, fn, n)
#define MP_REGISTER_IMPL2_(name, fn, n)                              \
  __attribute__((constructor(101))) static void mp_register_##n() {  \
    ::mp::process_internal::Register(name, +(fn));                   \
  }                                                                  \
  static_assert(true, "")

namespace mp {
namespace process_internal {

// Why `Registration::call_chunk` failed: the item it failed on, a status
// code (kUnknown for an exception), the exception's type and message.
struct ChunkError {
  uint32_t offset = 0;
  int32_t code = 2;
  std::string type;
  std::string message;
};

// One registered function. `invoke` decodes the arguments and calls `fn`,
// returning the exit code (it may throw what the function throws); `encode`
// encodes a `const std::tuple<std::decay_t<Params>...>*`. `call_chunk` (a
// pool worker's task) decodes a `std::vector<std::tuple<Params...>>`, calls
// `fn` on each, and appends the encoded `std::vector<Result>` (for `void`,
// the count as a `uint64_t`) to `*out`; on the first exception or bad input
// it returns false with `*error` filled (a function without parameters
// takes the count of calls as a `uint64_t` instead). With `string_result`
// not null, a chunk of one call whose result is a `std::string` moves that
// string there instead of encoding it (a pool sends large ones as they
// are). Never throws. nullptr when the codec does not support the result
// type.
struct Registration {
  const char* name;
  const void* fn;
  int (*invoke)(const void* fn, absl::string_view args);
  std::string (*encode)(const void* args);
  bool (*call_chunk)(const void* fn, absl::string_view args, std::string* out,
                     std::optional<std::string>* string_result,
                     ChunkError* error);
  Registration* next;
};

// Links `r` into the registry (leaked on purpose: it lives for the program)
// and, in a spawned child or a forkserver, may start the child's work and
// never return (see the file comment).
void AddRegistration(Registration* r);

// The registration of the function at address `fn`, or the first one named
// `name`; nullptr if none.
const Registration* FindRegistrationByAddress(const void* fn);
const Registration* FindRegistrationByName(absl::string_view name);

// Number of registrations so far.
int RegistrationCount();

// Prints "Process <name>: cannot decode the arguments: ..." for a child.
void ReportBadArguments(const absl::Status& status);

// A target's returned status as its exit code: 0 when OK; else prints
// "Process <name>: <status>" (as for an exception) and returns 1.
int ExitCodeForStatus(const absl::Status& status);

template <typename T>
struct IsStatusOr : std::false_type {};
template <typename T>
struct IsStatusOr<absl::StatusOr<T>> : std::true_type {};

template <typename R, typename Fn, typename Tuple>
int CallForExitCode(Fn fn, Tuple& args) {
  using Result = std::decay_t<R>;
  if constexpr (std::is_same<Result, int>::value) {
    return std::apply(fn, args);
  } else if constexpr (std::is_same<Result, absl::Status>::value) {
    return ExitCodeForStatus(std::apply(fn, args));
  } else if constexpr (IsStatusOr<Result>::value) {
    return ExitCodeForStatus(std::apply(fn, args).status());
  } else {
    std::apply(fn, args);
    return 0;
  }
}

template <typename R, typename... P>
int InvokeRegistered(const void* fn, absl::string_view bytes) {
  using Args = std::tuple<std::decay_t<P>...>;
  absl::StatusOr<Args> args = Decode<Args>(bytes);
  if (!args.ok()) {
    ReportBadArguments(args.status());
    return 1;
  }
  auto f = reinterpret_cast<R (*)(P...)>(const_cast<void*>(fn));
  return CallForExitCode<R>(f, *args);
}

template <typename Args>
std::string EncodeArgs(const void* args) {
  return Encode(*static_cast<const Args*>(args));
}

// Whether the codec supports `T` as a result (conservative: the types the
// codec documents, nested). Decides whether `call_chunk` exists, so that a
// registration never fails to compile for its result type.
template <typename T, typename = void>
struct ResultCodable
    : std::integral_constant<
          bool, std::is_arithmetic<T>::value || std::is_enum<T>::value> {};
template <typename T>
struct ResultCodable<T, std::void_t<typename T::mp_codec_fields_tag>>
    : std::true_type {};
template <typename T>
struct ResultCodable<T, std::void_t<typename T::mp_codec_bitwise_tag>>
    : std::true_type {};
template <>
struct ResultCodable<std::string> : std::true_type {};
template <>
struct ResultCodable<std::monostate> : std::true_type {};
template <>
struct ResultCodable<absl::Status> : std::true_type {};
template <typename T>
struct ResultCodable<absl::StatusOr<T>> : ResultCodable<T> {};
template <typename T>
struct ResultCodable<std::optional<T>> : ResultCodable<T> {};
template <typename T, typename A>
struct ResultCodable<std::vector<T, A>>
    : std::integral_constant<bool, ResultCodable<T>::value &&
                                       !std::is_empty<T>::value> {};
template <typename T, size_t N>
struct ResultCodable<std::array<T, N>> : ResultCodable<T> {};
template <typename A, typename B>
struct ResultCodable<std::pair<A, B>>
    : std::integral_constant<bool, ResultCodable<A>::value &&
                                       ResultCodable<B>::value> {};
template <typename... Ts>
struct ResultCodable<std::tuple<Ts...>>
    : std::integral_constant<bool, (ResultCodable<Ts>::value && ...)> {};
template <typename... Ts>
struct ResultCodable<std::variant<Ts...>>
    : std::integral_constant<bool, (ResultCodable<Ts>::value && ...)> {};
template <typename K, typename V, typename C, typename A>
struct ResultCodable<std::map<K, V, C, A>>
    : std::integral_constant<bool, ResultCodable<K>::value &&
                                       ResultCodable<V>::value> {};
template <typename K, typename V, typename H, typename E, typename A>
struct ResultCodable<std::unordered_map<K, V, H, E, A>>
    : std::integral_constant<bool, ResultCodable<K>::value &&
                                       ResultCodable<V>::value> {};
template <typename K, typename C, typename A>
struct ResultCodable<std::set<K, C, A>> : ResultCodable<K> {};
template <typename K, typename H, typename E, typename A>
struct ResultCodable<std::unordered_set<K, H, E, A>> : ResultCodable<K> {};

template <typename R, typename... P>
bool CallChunk(const void* fn, absl::string_view bytes, std::string* out,
               std::optional<std::string>* string_result,
               ChunkError* error) noexcept {
  using Args = std::tuple<std::decay_t<P>...>;
  using Result = std::decay_t<R>;
  auto f = reinterpret_cast<R (*)(P...)>(const_cast<void*>(fn));
  try {
    absl::StatusOr<std::vector<Args>> items;
    if constexpr (sizeof...(P) == 0) {
      // A vector of empty tuples travels as its count.
      absl::StatusOr<uint64_t> n = Decode<uint64_t>(bytes);
      if (!n.ok()) {
        items = n.status();
      } else if (*n > (uint64_t{1} << 24)) {
        items = absl::DataLossError("too many calls in one chunk");
      } else {
        items.emplace(static_cast<size_t>(*n));
      }
    } else {
      items = Decode<std::vector<Args>>(bytes);
    }
    if (!items.ok()) {
      error->code = static_cast<int32_t>(items.status().code());
      error->message = std::string("cannot decode the arguments: ") +
                       std::string(items.status().message());
      return false;
    }
    std::vector<std::conditional_t<std::is_void<R>::value, char, Result>>
        results;
    results.reserve(items->size());
    for (size_t i = 0; i < items->size(); ++i) {
      try {
        if constexpr (std::is_void<R>::value) {
          std::apply(f, (*items)[i]);
          results.push_back(0);
        } else {
          results.push_back(std::apply(f, (*items)[i]));
        }
      } catch (const std::exception& e) {
        error->offset = static_cast<uint32_t>(i);
        error->type = mp::CurrentExceptionTypeName();
        error->message = e.what();
        return false;
      } catch (...) {
        error->offset = static_cast<uint32_t>(i);
        error->type = mp::CurrentExceptionTypeName();
        error->message = "(not a std::exception)";
        return false;
      }
    }
    if constexpr (std::is_same<Result, std::string>::value) {
      if (string_result != nullptr && results.size() == 1) {
        string_result->emplace(std::move(results[0]));
        return true;
      }
    } else {
      (void)string_result;
    }
    if constexpr (std::is_void<R>::value ||
                  std::is_same<Result, std::monostate>::value) {
      EncodeTo(static_cast<uint64_t>(results.size()), out);
    } else {
      EncodeTo(results, out);
    }
    return true;
  } catch (...) {
    error->type = mp::CurrentExceptionTypeName();
    error->message = "while decoding or encoding";
    return false;
  }
}

template <typename R, typename... P>
constexpr auto ChunkCallerFor() {
  using Caller = bool (*)(const void*, absl::string_view, std::string*,
                          std::optional<std::string>*, ChunkError*);
  if constexpr (std::is_void<R>::value ||
                ResultCodable<std::decay_t<R>>::value) {
    return static_cast<Caller>(&CallChunk<R, P...>);
  } else {
    return static_cast<Caller>(nullptr);
  }
}

template <typename R, typename... P>
void Register(const char* name, R (*fn)(P...)) {
  AddRegistration(new Registration{
      name, reinterpret_cast<const void*>(fn), &InvokeRegistered<R, P...>,
      &EncodeArgs<std::tuple<std::decay_t<P>...>>, ChunkCallerFor<R, P...>(),
      nullptr});
}

}  // namespace process_internal
}  // namespace mp

#endif  // MP_PROCESS_REGISTER_H_
