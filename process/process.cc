#include "process/process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "process/fd.h"
#include "process/internal/forkserver.h"
#include "process/internal/pidfd.h"
#include "process/internal/reaper.h"
#include "process/internal/runtime.h"
#include "process/spawn.h"
#include "process/status_macros.h"

extern char** environ;

namespace mp {
namespace process_internal {

struct ProcessImpl {
  mutable std::mutex mu;
  std::unique_ptr<Target> target;
  std::string name;
  std::vector<int32_t> identity;
  bool daemon = false;
  StartMethod method = StartMethod::kFork;

  bool started = false;
  bool closed = false;
  bool our_child = false;  // fork/spawn: waitpid is ours; forkserver: not
  pid_t pid = 0;
  UniqueFd sentinel;
  std::optional<int> exitcode;
  // Fork start method: the child's CurrentSelf(), built before fork.
  std::unique_ptr<Self> child_self;

  // fork/spawn with pidfd support: the pidfd is opened only when someone
  // needs the sentinel (opening and closing one costs ~10 us per process
  // here; Join() without a timeout does not need it).
  bool lazy_pidfd = false;

  // Collects the exit status if the child ended (`block`: it has, wait for
  // the kernel to agree). Requires mu.
  void PollLocked(bool block);

  // Opens the lazy pidfd: while the child is not reaped its pid is still
  // ours; once reaped, a pipe at end-of-file (always readable) stands in.
  // Requires mu.
  void EnsureSentinelLocked();
};

namespace {

// ---- the processes this process started and has not forgotten -------------

struct Live {
  pid_t owner = 0;
  std::mutex mu;
  std::set<ProcessImpl*> set;
  // Numbers for default names (`Process-<identity>:<n>`); restarts in a
  // child with the fresh Live. Here rather than in its own global, so that
  // a parent writes one page less per fork.
  std::atomic<int> children_named{0};
};
std::atomic<Live*> g_live{nullptr};

// The set of this process; a fresh one after fork (the parent's children are
// not ours, and its lock may be held by a thread that is not here).
Live* GetLive() {
  return ThisProcessOwn(g_live, [](Live*) {});
}

void AddLive(ProcessImpl* p) {
  Live* l = GetLive();
  std::lock_guard<std::mutex> lock(l->mu);
  l->set.insert(p);
}

int NextChildNumber() { return GetLive()->children_named.fetch_add(1) + 1; }

void RemoveLive(ProcessImpl* p) {
  Live* l = GetLive();
  std::lock_guard<std::mutex> lock(l->mu);
  l->set.erase(p);
}

// ---- the threaded-fork warning ----------------------------------------------

std::atomic<bool> g_warned_threads{false};

// Threads of this process, counting up to 3 (enough to decide), from one
// getdents64 of /proc/self/task into a stack buffer.
int CountThreads() {
  int fd = ::open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 1;
  alignas(8) char buf[512];
  int n = 0;
  long got;
  while (n < 3 && (got = ::syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
    for (long off = 0; off < got;) {
      // struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name.
      unsigned short reclen;
      std::memcpy(&reclen, buf + off + 16, sizeof(reclen));
      if (buf[off + 19] != '.') ++n;
      off += reclen;
    }
  }
  ::close(fd);
  return n > 0 ? n : 1;
}

void WarnIfThreaded() {
  if (g_warned_threads.load(std::memory_order_relaxed)) return;
  // glibc: true until the process first creates a thread (no system call).
  if (__libc_single_threaded) return;
  int threads = CountThreads();
  int ours = ReaperRunning() ? 1 : 0;
  if (threads <= 1 + ours) return;
  if (g_warned_threads.exchange(true)) return;
  std::fprintf(stderr,
               "mp: warning: this process (pid=%d) is multi-threaded (%d "
               "threads); starting a Process with the fork start method may "
               "deadlock the child. Use the forkserver or spawn start "
               "method.\n",
               static_cast<int>(::getpid()), threads);
}

std::string DefaultName(const std::vector<int32_t>& identity) {
  return absl::StrCat("Process-", absl::StrJoin(identity, ":"));
}

absl::Status Misuse(const ProcessImpl* p, absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat("Process ", p ? p->name : "(moved from)", ": ", what));
}

absl::StatusOr<UniqueFd> PayloadFd(const std::string& bytes) {
  int fd = ::memfd_create("mp-process-payload", MFD_CLOEXEC);
  if (fd < 0 && errno == ENOSYS) {
    fd = ::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  }
  if (fd < 0) return absl::ErrnoToStatus(errno, "memfd_create");
  UniqueFd owned(fd);
  MP_RETURN_IF_ERROR(WriteAll(fd, bytes));
  if (::lseek(fd, 0, SEEK_SET) < 0) {
    return absl::ErrnoToStatus(errno, "lseek");
  }
  return owned;
}

ChildPayload MakePayload(const ProcessImpl& p, RemoteCall call) {
  ChildPayload payload;
  payload.function = std::move(call.function);
  payload.args = std::move(call.args);
  payload.name = p.name;
  payload.identity = p.identity;
  payload.daemon = p.daemon;
  payload.parent_pid = CachedPid();
  payload.parent_name = CurrentSelf().name;
  return payload;
}

}  // namespace

absl::StatusOr<RemoteCall> RemoteCallFor(const void* fn, const void* args) {
  const Registration* r = FindRegistrationByAddress(fn);
  if (r == nullptr) return NotRegisteredError("this function");
  const Registration* by_name = FindRegistrationByName(r->name);
  for (const Registration* other = by_name; other != nullptr;
       other = other->next) {
    if (other->fn != r->fn && absl::string_view(other->name) == r->name) {
      return absl::FailedPreconditionError(absl::StrCat(
          "two different functions are registered as \"", r->name,
          "\"; give them distinct names with MP_REGISTER_AS"));
    }
  }
  return RemoteCall{r->name, r->encode(args)};
}

absl::Status NotRegisteredError(const char* what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "the forkserver and spawn start methods need a function registered "
      "with MP_REGISTER (process/register.h); got ",
      what, " that is not registered"));
}

void ProcessImpl::EnsureSentinelLocked() {
  if (!lazy_pidfd || sentinel.valid()) return;
  if (!exitcode.has_value()) {
    sentinel.reset(PidfdOpen(pid));
    return;  // -1 if pidfd_open failed (e.g. out of fds): Join() polls
  }
  absl::StatusOr<FdPair> ended = MakePipe();
  if (ended.ok()) sentinel = std::move(ended->read);
}

void ProcessImpl::PollLocked(bool block) {
  if (!started || exitcode.has_value()) return;
  if (our_child) {
    int wstatus;
    pid_t r;
    do {
      r = ::waitpid(pid, &wstatus, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid) {
      exitcode = DecodeWaitStatus(wstatus);
    } else if (r < 0) {
      // ECHILD: someone else reaped it (e.g. SIGCHLD set to SIG_IGN).
      exitcode = 255;
    }
    return;
  }
  // Forkserver child: the status arrives on the sentinel pipe.
  absl::StatusOr<bool> ready =
      WaitReadable(sentinel.get(), block ? absl::InfiniteDuration()
                                         : absl::ZeroDuration());
  if (!ready.ok() || !*ready) return;
  int32_t code = 0;
  absl::Status s = ReadExact(sentinel.get(), &code, sizeof(code));
  exitcode = s.ok() ? code : 255;  // server gone: unknown, as in Python
  if (s.ok()) {
    // The server closes the pipe right after the status: wait for that EOF
    // so the sentinel stays readable from now on.
    char c;
    (void)ReadSome(sentinel.get(), &c, 1);
  }
}

}  // namespace process_internal

using process_internal::ProcessImpl;

namespace process_internal {
absl::Status StartLocked(ProcessImpl* p);
}  // namespace process_internal

absl::string_view StartMethodName(StartMethod method) {
  switch (method) {
    case StartMethod::kFork:
      return "fork";
    case StartMethod::kForkServer:
      return "forkserver";
    case StartMethod::kSpawn:
      return "spawn";
  }
  return "?";
}

absl::StatusOr<StartMethod> ParseStartMethod(absl::string_view name) {
  for (StartMethod m :
       {StartMethod::kFork, StartMethod::kForkServer, StartMethod::kSpawn}) {
    if (name == StartMethodName(m)) return m;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown start method \"", name,
                   "\"; expected fork, forkserver or spawn"));
}

absl::StatusOr<Context> GetContext(absl::string_view method) {
  MP_ASSIGN_OR_RETURN(StartMethod m, ParseStartMethod(method));
  return Context(m);
}

Process::Process(ProcessOptions options,
                 std::unique_ptr<process_internal::Target> target)
    : impl_(std::make_unique<ProcessImpl>()) {
  const process_internal::Self& self = process_internal::CurrentSelf();
  impl_->target = std::move(target);
  impl_->identity = self.identity;
  impl_->identity.push_back(process_internal::NextChildNumber());
  impl_->name = options.name.empty() ? process_internal::DefaultName(
                                           impl_->identity)
                                     : std::move(options.name);
  impl_->daemon = options.daemon.value_or(self.daemon);
  impl_->method = options.start_method;
}

Process::Process(Process&&) noexcept = default;

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    Process dying(std::move(*this));  // runs the destructor logic
    impl_ = std::move(other.impl_);
  }
  return *this;
}

Process::~Process() {
  if (impl_ == nullptr) return;
  ProcessImpl* p = impl_.get();
  bool detach = false;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    if (p->started && !p->closed) {
      p->PollLocked(/*block=*/false);
      detach = !p->exitcode.has_value() && p->our_child;
      if (detach) p->EnsureSentinelLocked();
    }
  }
  if (p->started) process_internal::RemoveLive(p);
  if (detach) {
    process_internal::ReapInBackground(p->pid, std::move(p->sentinel));
  }
}

absl::Status Process::Start() {
  ProcessImpl* p = impl_.get();
  if (p == nullptr) return process_internal::Misuse(p, "used after move");
  process_internal::CheckNotBootPending();
  // Listed before the fork (ActiveChildren() skips it until started), so the
  // parent allocates nothing between fork and the child's exit. Not under
  // p->mu: ActiveChildren() locks the set, then each process.
  process_internal::AddLive(p);
  absl::Status status;
  bool started;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    status = process_internal::StartLocked(p);
    started = p->started;
  }
  if (!started) process_internal::RemoveLive(p);
  return status;
}

namespace process_internal {

namespace {

MP_PROCESS_CHILD_TEXT int RunTarget(void* target) {
  return static_cast<Target*>(target)->Run();
}

// The fork start method's child, up to the target.
[[noreturn]] MP_PROCESS_CHILD_TEXT void RunForkChild(ProcessImpl* p,
                                                     pid_t parent,
                                                     FdPair* pipe) {
  if (p->daemon) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::raise(SIGKILL);
  }
  if (pipe->read.valid()) {
    pipe->read.reset();
    (void)pipe->write.release();  // held until we end: the sentinel
  }
  BecomeChild(p->child_self.get());
  RunAndExit(RunTarget, p->target.get());
}

// How the parent of a fork or spawn child sees it end: a pidfd, opened
// when first needed, or else the read end of `pipe`, whose write end only
// the child keeps open.
struct ExitWatch {
  bool use_pidfd = false;
  FdPair pipe;  // empty with a pidfd
};

absl::StatusOr<ExitWatch> MakeExitWatch() {
  ExitWatch watch;
  watch.use_pidfd = process_internal::PidfdSupported();
  if (!watch.use_pidfd) {
    MP_ASSIGN_OR_RETURN(watch.pipe, MakePipe());
  }
  return watch;
}

// Records `pid` as our started child, watched as `watch` says.
void AdoptChild(ProcessImpl* p, pid_t pid, ExitWatch* watch) {
  p->pid = pid;
  p->our_child = true;
  if (watch->use_pidfd) {
    p->lazy_pidfd = true;
  } else {
    p->sentinel = std::move(watch->pipe.read);
  }
}

}  // namespace

absl::Status StartLocked(ProcessImpl* p) {
  if (p->closed) return process_internal::Misuse(p, "Start() after Close()");
  if (p->started) {
    return process_internal::Misuse(p, "cannot start a process twice");
  }
  if (process_internal::CurrentSelf().daemon) {
    return process_internal::Misuse(
        p, "daemonic processes are not allowed to have children");
  }
  const pid_t parent = CachedPid();
  const std::string parent_name = process_internal::CurrentSelf().name;
  switch (p->method) {
    case StartMethod::kFork: {
      process_internal::WarnIfThreaded();
      MP_ASSIGN_OR_RETURN(ExitWatch watch, MakeExitWatch());
      p->child_self = std::make_unique<Self>(
          Self{p->name, p->identity, p->daemon, true, parent, parent_name});
      process_internal::FlushStdio();
      pid_t pid = ::fork();
      if (pid < 0) return absl::ErrnoToStatus(errno, "fork");
      if (pid == 0) RunForkChild(p, parent, &watch.pipe);
      AdoptChild(p, pid, &watch);
      break;
    }
    case StartMethod::kSpawn: {
      MP_ASSIGN_OR_RETURN(process_internal::RemoteCall call,
                          p->target->Remote());
      MP_ASSIGN_OR_RETURN(ExitWatch watch, MakeExitWatch());
      ChildPayload child = process_internal::MakePayload(*p, std::move(call));
      if (!watch.use_pidfd) child.sentinel_fd = 4;
      MP_ASSIGN_OR_RETURN(UniqueFd payload,
                          process_internal::PayloadFd(Encode(child)));
      SpawnOptions opts;
      opts.argv = {"/proc/self/exe"};
      opts.env.emplace();
      for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        if (std::strncmp(*e, "MP_PROCESS_BOOT=", 16) == 0) continue;
        opts.env->emplace_back(*e);
      }
      opts.env->push_back(process_internal::BootEnvEntry("spawn", 3));
      opts.fds = {{3, payload.get()}};
      if (!watch.use_pidfd) opts.fds.push_back({4, watch.pipe.write.get()});
      opts.parent_death_signal = p->daemon ? SIGKILL : 0;
      process_internal::FlushStdio();
      MP_ASSIGN_OR_RETURN(pid_t pid, Spawn(opts));
      AdoptChild(p, pid, &watch);
      break;
    }
    case StartMethod::kForkServer: {
      MP_ASSIGN_OR_RETURN(process_internal::RemoteCall call,
                          p->target->Remote());
      process_internal::FlushStdio();
      MP_ASSIGN_OR_RETURN(
          process_internal::ForkServerChild child,
          process_internal::ForkServerStart(
              process_internal::MakePayload(*p, std::move(call))));
      p->pid = child.pid;
      p->our_child = false;
      p->sentinel = std::move(child.status);
      break;
    }
  }
  p->started = true;
  return absl::OkStatus();
}

}  // namespace process_internal

absl::Status Process::Join(absl::Duration timeout) {
  ProcessImpl* p = impl_.get();
  if (p == nullptr) return process_internal::Misuse(p, "used after move");
  int fd;
  pid_t pid;
  bool use_waitid = false;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    if (p->closed) return process_internal::Misuse(p, "Join() after Close()");
    if (!p->started) {
      return process_internal::Misuse(p, "can only join a started process");
    }
    if (p->exitcode.has_value()) return absl::OkStatus();
    use_waitid = timeout == absl::InfiniteDuration() && p->lazy_pidfd &&
                 !p->sentinel.valid();
    if (!use_waitid) p->EnsureSentinelLocked();
    fd = p->sentinel.get();
    pid = p->pid;
  }
  // Wait without the lock, so IsAlive() and ActiveChildren() do not block.
  if (use_waitid) {
    // Our child, no pidfd opened: wait for its end without reaping it
    // (WNOWAIT), so that the reaping and the recording of the exit code
    // happen together under the lock. ECHILD: another thread reaped it.
    siginfo_t info;
    while (::waitid(P_PID, static_cast<id_t>(pid), &info,
                    WEXITED | WNOWAIT) < 0 &&
           errno == EINTR) {
    }
  } else if (fd >= 0) {
    MP_ASSIGN_OR_RETURN(bool ready, WaitReadable(fd, timeout));
    if (!ready) {
      return absl::DeadlineExceededError(absl::StrCat(
          "Process ", name(), " (pid ", pid, ") still running after ",
          absl::FormatDuration(timeout)));
    }
  } else if (timeout != absl::InfiniteDuration()) {
    // No sentinel (pidfd_open failed, e.g. out of fds): poll for the end.
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(p->mu);
        p->PollLocked(/*block=*/false);
        if (p->exitcode.has_value()) return absl::OkStatus();
      }
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            "Process ", name(), " (pid ", pid, ") still running after ",
            absl::FormatDuration(timeout)));
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
  std::lock_guard<std::mutex> lock(p->mu);
  p->PollLocked(/*block=*/true);
  return absl::OkStatus();
}

bool Process::IsAlive() {
  ProcessImpl* p = impl_.get();
  if (p == nullptr) return false;
  std::lock_guard<std::mutex> lock(p->mu);
  if (!p->started || p->closed) return false;
  p->PollLocked(/*block=*/false);
  return !p->exitcode.has_value();
}

namespace {

absl::Status SendSignal(ProcessImpl* p, int sig) {
  if (p == nullptr) return process_internal::Misuse(p, "used after move");
  std::lock_guard<std::mutex> lock(p->mu);
  if (p->closed) return process_internal::Misuse(p, "signal after Close()");
  if (!p->started) {
    return process_internal::Misuse(p, "cannot signal a process not started");
  }
  p->PollLocked(/*block=*/false);
  if (p->exitcode.has_value()) return absl::OkStatus();
  if (::kill(p->pid, sig) < 0 && errno != ESRCH) {
    return absl::ErrnoToStatus(errno, absl::StrCat("kill ", p->pid));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Process::Terminate() { return SendSignal(impl_.get(), SIGTERM); }
absl::Status Process::Kill() { return SendSignal(impl_.get(), SIGKILL); }

absl::Status Process::Close() {
  ProcessImpl* p = impl_.get();
  if (p == nullptr) return process_internal::Misuse(p, "used after move");
  {
    std::lock_guard<std::mutex> lock(p->mu);
    if (p->closed) return absl::OkStatus();  // Python: closing twice is fine
    if (p->started) {
      p->PollLocked(/*block=*/false);
      if (!p->exitcode.has_value()) {
        return process_internal::Misuse(
            p, "cannot close a process while it is still running; join it "
               "first");
      }
    }
    p->closed = true;
    p->sentinel.reset();
    p->target.reset();
  }
  if (p->started) process_internal::RemoveLive(p);
  return absl::OkStatus();
}

pid_t Process::pid() const {
  if (impl_ == nullptr) return 0;
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->pid;
}

std::optional<int> Process::exitcode() const {
  if (impl_ == nullptr) return std::nullopt;
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->exitcode;
}

std::string Process::name() const {
  if (impl_ == nullptr) return "";
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->name;
}

void Process::set_name(std::string name) {
  if (impl_ == nullptr) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->name = std::move(name);
}

bool Process::daemon() const {
  if (impl_ == nullptr) return false;
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->daemon;
}

StartMethod Process::start_method() const {
  if (impl_ == nullptr) return StartMethod::kFork;
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->method;
}

int Process::sentinel() const {
  if (impl_ == nullptr) return -1;
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->closed || !impl_->started) return -1;
  impl_->EnsureSentinelLocked();
  return impl_->sentinel.get();
}

ProcessInfo CurrentProcess() {
  const process_internal::Self& self = process_internal::CurrentSelf();
  return ProcessInfo{self.name, ::getpid(), self.daemon};
}

std::optional<ProcessInfo> ParentProcess() {
  const process_internal::Self& self = process_internal::CurrentSelf();
  if (!self.is_child) return std::nullopt;
  return ProcessInfo{self.parent_name, self.parent_pid, false};
}

std::vector<ProcessInfo> ActiveChildren() {
  process_internal::Live* l = process_internal::GetLive();
  std::vector<ProcessInfo> out;
  std::lock_guard<std::mutex> lock(l->mu);
  for (ProcessImpl* p : l->set) {
    std::lock_guard<std::mutex> plock(p->mu);
    if (!p->started || p->closed) continue;
    p->PollLocked(/*block=*/false);
    if (!p->exitcode.has_value()) {
      out.push_back(ProcessInfo{p->name, p->pid, p->daemon});
    }
  }
  return out;
}

int CpuCount() {
  for (int ncpus = 1024; ncpus <= (1 << 20); ncpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(ncpus);
    if (set == nullptr) break;
    size_t size = CPU_ALLOC_SIZE(ncpus);
    if (::sched_getaffinity(0, size, set) == 0) {
      int n = CPU_COUNT_S(size, set);
      CPU_FREE(set);
      return n > 0 ? n : 1;
    }
    CPU_FREE(set);
    if (errno != EINVAL) break;
  }
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace mp
