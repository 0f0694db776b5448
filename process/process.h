// -----------------------------------------------------------------------------
// File: process/process.h
// -----------------------------------------------------------------------------
//
// `mp::Process` runs a callable in a child process (Python:
// `multiprocessing.Process`).
//
//   void Work(int n) { std::printf("working on %d\n", n); }
//
//   mp::Process p(Work, 7);                 // any callable plus arguments
//   MP_RETURN_IF_ERROR(p.Start());
//   MP_RETURN_IF_ERROR(p.Join());           // blocks until it ends
//   std::optional<int> code = p.exitcode(); // 0: returned normally
//
// Exit codes follow Python: nullopt while running, 0 when the target
// returned (or the code it returned, if it returns `int`), the status of an
// explicit `exit(n)`/`_exit(n)`, 1 when it threw (the child prints
// `Process <name>: <exception type>: <what()>` to stderr) or returned a
// non-OK `absl::Status`/`absl::StatusOr` (it prints `Process <name>:
// <status>`), and `-N` when it was killed by signal N.
//
// Start methods (`mp::StartMethod`, per process with `ProcessOptions` or per
// context with `mp::GetContext("spawn")`, like Python's `get_context`):
//   * `kFork` (the default): fork(2); any callable, captures and all. The
//     child is a copy of the parent. Forking a process that has other threads
//     prints a warning on stderr once (Python 3.12 does too): those threads'
//     locks are copied in whatever state they were.
//   * `kForkServer`: a single-threaded server process, started on first use
//     (or early with `mp::StartForkServer()`) by fork+exec of this program,
//     forks the children. The target must be registered (`MP_REGISTER`, see
//     `process/register.h`); arguments travel through the codec.
//   * `kSpawn`: fork+exec of this program (/proc/self/exe), which runs the
//     registered target before `main` (see `process/register.h` for the
//     caveat about the program's globals).
// A target that is not registered is an error at `Start()` for the last two.
//
// Daemon processes (`ProcessOptions::daemon`) are killed (SIGKILL) when the
// parent dies, even by SIGKILL (`PR_SET_PDEATHSIG`; note that Linux sends it
// when the parent *thread* that started the child exits, so start daemon
// processes from a long-lived thread). A daemon process may not start
// children of its own (as in Python).
//
// Child-side hygiene: stdio is flushed before fork (no duplicated output);
// the child flushes stdio and calls `_exit()` after the target (never
// `exit()`: the parent's atexit handlers and static destructors do not run in
// the child); mp's own fds are close-on-exec.
//
// Destroying a `Process` whose child still runs does not wait for it and does
// not kill it (Python leaves it running too); a background reaper collects
// its exit status when it ends, so no zombie is left. Join first to learn the
// exit code.
//
// A `Process` is movable and not copyable. Its methods may be called from
// several threads.

#ifndef MP_PROCESS_PROCESS_H_
#define MP_PROCESS_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "process/register.h"

namespace mp {

enum class StartMethod { kFork, kForkServer, kSpawn };

// "fork", "forkserver" or "spawn".
absl::string_view StartMethodName(StartMethod method);

// ParseStartMethod()
//
// The inverse of `StartMethodName()`. Errors: `kInvalidArgument`.
absl::StatusOr<StartMethod> ParseStartMethod(absl::string_view name);

struct ProcessOptions {
  // "" gives `Process-N` (`Process-1:2` for the second child of a first
  // child), as in Python.
  std::string name;
  // nullopt inherits the daemon flag of the current process (Python).
  std::optional<bool> daemon;
  StartMethod start_method = StartMethod::kFork;
};

// What `CurrentProcess()`, `ParentProcess()` and `ActiveChildren()` return.
struct ProcessInfo {
  std::string name;  // "MainProcess" for the main process
  pid_t pid = 0;
  bool daemon = false;
};

namespace process_internal {

// What a forkserver or spawned child needs to run a target: the registered
// name and the encoded arguments.
struct RemoteCall {
  std::string function;
  std::string args;
};

// The type-erased target of a `Process`.
class Target {
 public:
  virtual ~Target() = default;
  // Runs the target in the child (fork start method); returns the exit code.
  // May throw.
  virtual int Run() = 0;
  // Errors: `kInvalidArgument` when the target is not registered.
  virtual absl::StatusOr<RemoteCall> Remote() const = 0;
};

absl::Status NotRegisteredError(const char* what);

// The registered name of function `fn` and the encoding of `args` (a
// `std::tuple` of its parameter types). Errors: `kInvalidArgument` when
// `fn` is not registered; `kFailedPrecondition` when its name is shared by
// another registered function.
absl::StatusOr<RemoteCall> RemoteCallFor(const void* fn, const void* args);

template <typename R, typename... P>
class FunctionTarget final : public Target {
 public:
  template <typename... A>
  explicit FunctionTarget(R (*fn)(P...), A&&... args)
      : fn_(fn), args_(std::forward<A>(args)...) {}
  int Run() override { return CallForExitCode<R>(fn_, args_); }
  absl::StatusOr<RemoteCall> Remote() const override {
    return RemoteCallFor(reinterpret_cast<const void*>(fn_), &args_);
  }

 private:
  R (*fn_)(P...);
  std::tuple<std::decay_t<P>...> args_;
};

template <typename F, typename... A>
class CallableTarget final : public Target {
 public:
  template <typename G, typename... B>
  explicit CallableTarget(G&& f, B&&... args)
      : f_(std::forward<G>(f)), args_(std::forward<B>(args)...) {}
  int Run() override {
    using R = decltype(std::apply(f_, args_));
    return CallForExitCode<R>(f_, args_);
  }
  absl::StatusOr<RemoteCall> Remote() const override {
    return NotRegisteredError("a capturing lambda or function object");
  }

 private:
  F f_;
  std::tuple<A...> args_;
};

// Whether `+f` is a function pointer (functions, function pointers,
// captureless non-generic lambdas).
template <typename F, typename = void>
struct HasFunctionPointer : std::false_type {};
template <typename F>
struct HasFunctionPointer<F, std::void_t<decltype(+std::declval<F&>())>>
    : std::is_function<std::remove_pointer_t<
          std::decay_t<decltype(+std::declval<F&>())>>> {};

template <typename R, typename... P, typename... A>
std::unique_ptr<Target> MakeFunctionTarget(R (*fn)(P...), A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A),
                "mp::Process: wrong number of arguments for the function");
  return std::make_unique<FunctionTarget<R, P...>>(fn,
                                                   std::forward<A>(args)...);
}

template <typename F, typename... A>
std::unique_ptr<Target> MakeTarget(F&& f, A&&... args) {
  if constexpr (HasFunctionPointer<std::remove_reference_t<F>>::value) {
    return MakeFunctionTarget(+f, std::forward<A>(args)...);
  } else {
    return std::make_unique<CallableTarget<std::decay_t<F>, std::decay_t<A>...>>(
        std::forward<F>(f), std::forward<A>(args)...);
  }
}

struct ProcessImpl;

}  // namespace process_internal

class Process {
 public:
  // Process(callable, args...) / Process(options, callable, args...)
  //
  // Stores the callable and copies (or moves) the arguments. A function,
  // function pointer or captureless lambda also works with the forkserver
  // and spawn start methods when registered; its arguments are converted to
  // the parameter types here.
  template <typename F, typename... A,
            typename = std::enable_if_t<
                !std::is_same<std::decay_t<F>, Process>::value &&
                !std::is_same<std::decay_t<F>, ProcessOptions>::value>>
  explicit Process(F&& f, A&&... args)
      : Process(ProcessOptions(),
                process_internal::MakeTarget(std::forward<F>(f),
                                             std::forward<A>(args)...)) {}

  template <typename F, typename... A>
  Process(ProcessOptions options, F&& f, A&&... args)
      : Process(std::move(options),
                process_internal::MakeTarget(std::forward<F>(f),
                                             std::forward<A>(args)...)) {}

  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // See the file comment: a running child is left running and reaped in the
  // background.
  ~Process();

  // Process::Start()
  //
  // Starts the child. Errors: `kFailedPrecondition` when started before,
  // closed, moved from, or called in a daemon process; `kInvalidArgument`
  // when the start method needs a registered function and the target is
  // not one; `kUnavailable` when the forkserver died; the errno of fork,
  // exec and friends.
  absl::Status Start();

  // Process::Join()
  //
  // Waits until the child ends and reaps it. `timeout` as in abseil:
  // `absl::InfiniteDuration()` (the default) waits forever, zero only
  // checks. Joining an ended process again returns OK at once.
  //
  // Errors: `kDeadlineExceeded` when the child still runs after `timeout`
  // (Python's join returns None then; check `is_alive()`);
  // `kFailedPrecondition` before `Start()`, after `Close()`.
  absl::Status Join(absl::Duration timeout = absl::InfiniteDuration());

  // Process::IsAlive()
  //
  // True from `Start()` until the child ended; reaps an ended child. False
  // before `Start()` and after `Close()`.
  bool IsAlive();

  // Process::Terminate() / Process::Kill()
  //
  // Sends SIGTERM / SIGKILL. Nothing happens when the child already ended.
  // Errors: `kFailedPrecondition` before `Start()` or after `Close()`.
  absl::Status Terminate();
  absl::Status Kill();

  // Process::Close()
  //
  // Releases the sentinel fd. Afterwards every method returns
  // `kFailedPrecondition`. Errors: `kFailedPrecondition` while the child
  // still runs (join it first).
  absl::Status Close();

  // The child's pid; 0 before `Start()`.
  pid_t pid() const;

  // nullopt while running (or not started); see the file comment.
  std::optional<int> exitcode() const;

  // `Process-N` unless set. May be changed at any time; the child sees the
  // name it had at `Start()`.
  std::string name() const;
  void set_name(std::string name);

  bool daemon() const;
  StartMethod start_method() const;

  // Process::sentinel()
  //
  // An fd that becomes readable when the child ends (a pidfd, opened on the
  // first call, or a pipe the child holds; for forkserver children, the
  // pipe the server reports the exit status on), and stays readable. Owned
  // by the `Process`: do not read or close it. -1 before `Start()`, after
  // `Close()`, and if no fd could be made (e.g. out of fds).
  int sentinel() const;

 private:
  Process(ProcessOptions options,
          std::unique_ptr<process_internal::Target> target);

  std::unique_ptr<process_internal::ProcessImpl> impl_;
};

// A start method to create processes with (Python's `get_context()`).
class Context {
 public:
  explicit Context(StartMethod method) : method_(method) {}

  StartMethod start_method() const { return method_; }

  // Context::NewProcess()
  //
  // `mp::Process` with this context's start method.
  template <typename F, typename... A,
            typename = std::enable_if_t<
                !std::is_same<std::decay_t<F>, ProcessOptions>::value>>
  Process NewProcess(F&& f, A&&... args) const {
    return NewProcess(ProcessOptions(), std::forward<F>(f),
                      std::forward<A>(args)...);
  }
  template <typename F, typename... A>
  Process NewProcess(ProcessOptions options, F&& f, A&&... args) const {
    options.start_method = method_;
    return Process(std::move(options), std::forward<F>(f),
                   std::forward<A>(args)...);
  }

 private:
  StartMethod method_;
};

// GetContext()
//
// "fork", "forkserver" or "spawn". Errors: `kInvalidArgument` otherwise.
absl::StatusOr<Context> GetContext(absl::string_view method);

// CurrentProcess() / ParentProcess()
//
// This process ("MainProcess" unless started by mp), and the process that
// started it (nullopt in the main process).
ProcessInfo CurrentProcess();
std::optional<ProcessInfo> ParentProcess();

// ActiveChildren()
//
// The processes this process started that are still running (their
// `Process` objects alive); reaps the ones that ended, as Python does.
std::vector<ProcessInfo> ActiveChildren();

// CpuCount()
//
// The number of CPUs this process may run on (`sched_getaffinity`), at
// least 1.
int CpuCount();

// StartForkServer() / StopForkServer()
//
// Starts the forkserver now (else it starts on first use), e.g. before the
// program creates threads or opens files. Stopping closes its control
// socket and reaps it; running forkserver children keep running (daemon
// ones are killed). Both are no-ops when already done.
absl::Status StartForkServer();
absl::Status StopForkServer();

// The forkserver's pid, 0 when not running.
pid_t ForkServerPid();

}  // namespace mp

#endif  // MP_PROCESS_PROCESS_H_
