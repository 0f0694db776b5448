#include "pool/internal/remote_worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "pool/internal/result_ring.h"
#include "process/status_macros.h"

namespace mp {
namespace pool_internal {
namespace {

// How long Launch() waits for a started worker to connect back.
constexpr absl::Duration kConnectTimeout = absl::Seconds(60);

constexpr size_t kTokenLen = 32;
constexpr size_t kHelloLen = kTokenLen + sizeof(uint64_t);

socklen_t FillAddress(const std::string& name, struct sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  // Abstract namespace: sun_path[0] is NUL; nothing in the file system.
  std::memcpy(addr->sun_path + 1, name.data(), name.size());
  return static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + 1 +
                                name.size());
}

absl::StatusOr<std::string> RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(&raw[got], bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "getrandom");
    }
    got += static_cast<size_t>(n);
  }
  return absl::BytesToHexString(raw);
}

// The page that says which task a worker runs: a memfd, so that it can be
// sent to a worker that was not forked from us.
absl::StatusOr<UniqueFd> MakeSlotMemfd() {
  UniqueFd fd(memfd_create("mp-pool-slot", MFD_CLOEXEC));
  if (!fd) return absl::ErrnoToStatus(errno, "memfd_create");
  if (ftruncate(fd.get(), sizeof(std::atomic<uint64_t>)) != 0) {
    return absl::ErrnoToStatus(errno, "ftruncate");
  }
  return fd;
}

absl::StatusOr<std::atomic<uint64_t>*> MapSlot(int fd, bool init) {
  void* page = mmap(nullptr, sizeof(std::atomic<uint64_t>),
                    PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (page == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap");
  if (init) return new (page) std::atomic<uint64_t>(0);
  return static_cast<std::atomic<uint64_t>*>(page);
}

absl::StatusOr<UniqueFd> ReceiveFd(int sock) {
  char byte;
  UniqueFd fd;
  ssize_t n = ReceiveWithFd(sock, &byte, 1, &fd);
  if (n < 0) return absl::ErrnoToStatus(errno, "recvmsg");
  if (n == 0) return absl::OutOfRangeError("the pool closed the connection");
  if (!fd) return absl::DataLossError("expected one fd from the pool");
  return fd;
}

// A function a worker could not resolve: each of its tasks fails.
class MissingRunner : public ChunkRunner {
 public:
  explicit MissingRunner(std::string message) : message_(std::move(message)) {}
  bool Run(absl::string_view, std::string*, TaskFailure* failure) noexcept
      override {
    failure->code = static_cast<int32_t>(absl::StatusCode::kNotFound);
    failure->message = message_;
    return false;
  }

 private:
  std::string message_;
};

// A spawn/forkserver worker's functions, learnt by name.
class RegisteredFunctions : public WorkerFunctions {
 public:
  ChunkRunner* Get(uint32_t fn) override {
    return fn < runners_.size() ? runners_[fn].get() : nullptr;
  }
  bool Define(uint32_t fn, absl::string_view name,
              std::string* error) override {
    if (fn >= runners_.size()) runners_.resize(fn + 1);
    const process_internal::Registration* r =
        process_internal::FindRegistrationByName(name);
    if (r == nullptr || r->call_chunk == nullptr) {
      *error = absl::StrCat("worker pid ", getpid(),
                            " has no task function registered as \"", name,
                            "\"");
      runners_[fn] = std::make_unique<MissingRunner>(*error);
      return false;
    }
    runners_[fn] = std::make_unique<RegisteredRunner>(r);
    return true;
  }

 private:
  std::vector<std::unique_ptr<ChunkRunner>> runners_;
};

absl::Status RunInitializer(const std::string& name, const std::string& args,
                            bool returns_status) {
  const process_internal::Registration* r =
      process_internal::FindRegistrationByName(name);
  if (r == nullptr || r->call_chunk == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no initializer registered as \"", name, "\""));
  }
  std::string out;
  process_internal::ChunkError e;
  if (!r->call_chunk(r->fn, args, &out, nullptr, &e)) {
    std::string what =
        e.type.empty() ? e.message : absl::StrCat(e.type, ": ", e.message);
    return absl::Status(static_cast<absl::StatusCode>(e.code), what);
  }
  if (!returns_status) return absl::OkStatus();
  absl::StatusOr<std::vector<absl::Status>> s =
      Decode<std::vector<absl::Status>>(out);
  if (!s.ok()) return s.status();
  if (s->size() != 1) return absl::DataLossError("initializer: no result");
  return (*s)[0];
}

}  // namespace

// ---- worker side -------------------------------------------------------------

int PoolWorkerMain(std::string address, std::string token, uint64_t seq,
                   std::string init_name, std::string init_args,
                   bool init_returns_status, uint64_t max_payload) {
  // As forked workers: Ctrl-C is the pool owner's business.
  signal(SIGINT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) return 1;
  struct sockaddr_un addr;
  socklen_t len = FillAddress(address, &addr);
  int rc;
  do {
    rc = ::connect(sock.get(), reinterpret_cast<struct sockaddr*>(&addr), len);
  } while (rc < 0 && errno == EINTR);
  if (rc != 0) return 1;
  std::string hello = token;
  hello.append(reinterpret_cast<const char*>(&seq), sizeof seq);
  if (hello.size() != kHelloLen || !WriteAll(sock.get(), hello).ok()) return 1;
  absl::StatusOr<UniqueFd> memfd = ReceiveFd(sock.get());
  if (!memfd.ok()) return 1;
  absl::StatusOr<std::atomic<uint64_t>*> slot = MapSlot(memfd->get(), false);
  if (!slot.ok()) return 1;
  memfd->reset();
  if (!init_name.empty()) {
    absl::Status s = RunInitializer(init_name, init_args, init_returns_status);
    if (!s.ok()) {
      ReportInitFailure(sock.get(), s);
      return 0;
    }
  }
  RegisteredFunctions functions;
  RunWorkerLoop(sock.get(), *slot, static_cast<size_t>(max_payload),
                ResultRing::kDefaultCapacity, &functions);
  return 0;
}

MP_REGISTER_AS("mp::pool_internal::PoolWorkerMain", PoolWorkerMain);

// ---- pool side ---------------------------------------------------------------

absl::StatusOr<std::shared_ptr<RemoteLauncher>> RemoteLauncher::Create(
    StartMethod method, RemoteInitializer init, size_t max_payload) {
  if (method == StartMethod::kFork) {
    return absl::InvalidArgumentError("RemoteLauncher: not for fork");
  }
  MP_ASSIGN_OR_RETURN(std::string name, RandomHex(16));
  MP_ASSIGN_OR_RETURN(std::string token, RandomHex(kTokenLen / 2));
  std::string address = absl::StrCat("mp-pool-", getpid(), "-", name);
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener) return absl::ErrnoToStatus(errno, "socket");
  struct sockaddr_un addr;
  socklen_t len = FillAddress(address, &addr);
  if (::bind(listener.get(), reinterpret_cast<struct sockaddr*>(&addr), len) !=
      0) {
    return absl::ErrnoToStatus(errno, "bind");
  }
  if (::listen(listener.get(), 64) != 0) {
    return absl::ErrnoToStatus(errno, "listen");
  }
  return std::shared_ptr<RemoteLauncher>(
      new RemoteLauncher(method, std::move(init), max_payload,
                         std::move(listener), std::move(address),
                         std::move(token)));
}

absl::StatusOr<LaunchedWorker> RemoteLauncher::Launch() {
  const uint64_t seq = ++seq_;
  ProcessOptions options;
  options.name = absl::StrCat("PoolWorker-", seq);
  options.start_method = method_;
  options.daemon = true;
  auto proc = std::make_shared<Process>(
      options, &PoolWorkerMain, address_, token_, seq, init_.name, init_.args,
      init_.returns_status, static_cast<uint64_t>(max_payload_));
  MP_RETURN_IF_ERROR(proc->Start());
  auto reap = [proc]() -> int {
    proc->Join().IgnoreError();
    return proc->exitcode().value_or(255);
  };
  auto fail = [&](absl::Status s) {
    proc->Kill().IgnoreError();
    reap();
    return s;
  };
  const int sentinel = proc->sentinel();
  const absl::Time deadline = absl::Now() + kConnectTimeout;
  UniqueFd conn;
  while (!conn) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return fail(absl::DeadlineExceededError(absl::StrCat(
          "pool worker pid ", proc->pid(), " did not connect within ",
          absl::FormatDuration(kConnectTimeout))));
    }
    struct pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {sentinel, POLLIN, 0}};
    int n = ::poll(fds, sentinel >= 0 ? 2 : 1,
                   static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(absl::ErrnoToStatus(errno, "poll"));
    }
    if (n == 0) continue;
    if (fds[0].revents & POLLIN) {
      UniqueFd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) continue;
      // The hello: our token (so no other process can pose as a worker)
      // and this worker's sequence number (so a late worker cannot either).
      char hello[kHelloLen];
      absl::StatusOr<bool> readable = WaitReadable(c.get(), absl::Seconds(10));
      if (!readable.ok() || !*readable) continue;
      if (!ReadExact(c.get(), hello, sizeof hello).ok()) continue;
      uint64_t got_seq;
      std::memcpy(&got_seq, hello + kTokenLen, sizeof got_seq);
      if (std::memcmp(hello, token_.data(), kTokenLen) != 0 || got_seq != seq) {
        continue;  // a stranger, or an earlier worker: drop it
      }
      conn = std::move(c);
    } else if (sentinel >= 0 && fds[1].revents) {
      int code = reap();
      return absl::UnavailableError(absl::StrCat(
          "pool worker pid ", proc->pid(), " (start method ",
          StartMethodName(method_), ") ended with exit code ", code,
          " before it connected to the pool"));
    }
  }
  absl::StatusOr<UniqueFd> memfd = MakeSlotMemfd();
  if (!memfd.ok()) return fail(memfd.status());
  absl::StatusOr<std::atomic<uint64_t>*> slot = MapSlot(memfd->get(), true);
  if (!slot.ok()) return fail(slot.status());
  // The slot memfd travels with one byte.
  absl::Status sent =
      SendWithFd(conn.get(), absl::string_view("", 1), memfd->get());
  if (!sent.ok()) {
    munmap(*slot, sizeof(std::atomic<uint64_t>));
    return fail(sent);
  }
  LaunchedWorker w;
  if (sentinel >= 0) {
    absl::StatusOr<UniqueFd> exit_fd = DupCloexec(sentinel);
    if (!exit_fd.ok()) {
      munmap(*slot, sizeof(std::atomic<uint64_t>));
      return fail(exit_fd.status());
    }
    w.exit_fd = *std::move(exit_fd);
  }
  w.pid = proc->pid();
  w.sock = std::move(conn);
  w.slot = *slot;
  w.reap = std::move(reap);
  return w;
}

}  // namespace pool_internal
}  // namespace mp
