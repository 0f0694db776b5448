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
// the child's exit code; any other result is ignored (exit code 0).
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

#ifndef MP_PROCESS_REGISTER_H_
#define MP_PROCESS_REGISTER_H_

#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ipc/codec.h"

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

// One registered function. `invoke` decodes the arguments and calls `fn`,
// returning the exit code (it may throw what the function throws); `encode`
// encodes a `const std::tuple<std::decay_t<Params>...>*`.
struct Registration {
  const char* name;
  const void* fn;
  int (*invoke)(const void* fn, absl::string_view args);
  std::string (*encode)(const void* args);
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

template <typename R, typename Fn, typename Tuple>
int CallForExitCode(Fn fn, Tuple& args) {
  if constexpr (std::is_same<R, int>::value) {
    return std::apply(fn, args);
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

template <typename R, typename... P>
void Register(const char* name, R (*fn)(P...)) {
  AddRegistration(new Registration{
      name, reinterpret_cast<const void*>(fn), &InvokeRegistered<R, P...>,
      &EncodeArgs<std::tuple<std::decay_t<P>...>>, nullptr});
}

}  // namespace process_internal
}  // namespace mp

#endif  // MP_PROCESS_REGISTER_H_
