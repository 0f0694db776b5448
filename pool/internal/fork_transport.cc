#include "pool/internal/fork_transport.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pool/internal/fresh_memory.h"
#include "pool/internal/worker_slots.h"
#include "process/exception_name.h"
#include "process/internal/pidfd.h"
#include "process/spawn.h"
#include "process/status_macros.h"
#include "process/spin.h"

namespace mp {
namespace pool_internal {
namespace {

constexpr size_t kHeader = 16;
constexpr size_t kReadChunk = 256 * 1024;
constexpr size_t kBigFrame = 256 * 1024;
constexpr uint32_t kResultOk = 0;
constexpr uint32_t kResultFailure = 1;
constexpr uint32_t kInitFailure = 2;
// The payload is a bare std::string result (ChunkRunner::RunBare).
constexpr uint32_t kResultOkBare = 3;
// A bare std::string result in the worker's ResultRing: the payload is its
// RingRecord.
constexpr uint32_t kResultOkRing = 4;
// The worker's ResultRing memfd comes with this (empty) frame.
constexpr uint32_t kRingFd = 5;
// Function word flag (pool -> launched worker): the payload starts with
// name_len:u32 and the function's registered name.
constexpr uint32_t kNamedFunction = 0x80000000u;

// Every fd any ForkTransport of this process holds, so a forked worker can
// close the fds of other workers and other pools.
std::mutex& RegistryMu() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
std::set<int>& Registry() {
  static std::set<int>* fds = new std::set<int>;
  return *fds;
}
void Register(int fd) {
  if (fd < 0) return;
  std::lock_guard<std::mutex> lock(RegistryMu());
  Registry().insert(fd);
}
void Unregister(int fd) {
  if (fd < 0) return;
  std::lock_guard<std::mutex> lock(RegistryMu());
  Registry().erase(fd);
}

void PutHeader(std::string* out, size_t at, uint32_t len, uint32_t word,
               uint64_t task) {
  char* p = &(*out)[at];
  std::memcpy(p, &len, 4);
  std::memcpy(p + 4, &word, 4);
  std::memcpy(p + 8, &task, 8);
}

// How a worker's end is reported, from its exit code as `WaitPid()` and
// `Process::exitcode()` give it (-N: signal N).
std::string DescribeExitCode(pid_t pid, int code) {
  if (code < 0) {
    const char* name = strsignal(-code);
    return absl::StrCat("worker lost: pid ", pid, " was killed by signal ",
                        -code, " (", name ? name : "?", ")");
  }
  return absl::StrCat("worker lost: pid ", pid, " exited with code ", code);
}

// A forked worker's functions: its copy of the pool's table.
class TableFunctions : public WorkerFunctions {
 public:
  explicit TableFunctions(const FunctionTable* table) : table_(table) {}
  ChunkRunner* Get(uint32_t fn) override { return table_->Get(fn); }

 private:
  const FunctionTable* table_;
};

// How long an idle worker polls its socket before it sleeps in read():
// 50 us, or 0 when the process may run on one CPU only (spinning would keep
// the pool itself from running).
int64_t WorkerSpinNanos() { return mp::SpinAllowed() ? 50000 : 0; }

// Worker side: blocking full write; false when the pool is gone.
bool WriteFully(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// A copy of `bytes` in a new string from `spare`, without zero-filling it
// first.
std::string CopyOut(SpareBuffer& spare, absl::string_view bytes) {
  std::string s = spare.Take(bytes.size());
  s.append(bytes.data(), bytes.size());
  return s;
}

// The result a kResultOkRing frame's payload (`frame`) names, copied out of
// `ring`, which is then freed up to it. Errors (kDataLoss): not a record of
// that ring.
absl::Status TakeFromRing(ResultRing& ring, SpareBuffer& spare,
                          absl::string_view frame, std::string* out) {
  if (frame.size() != RingRecord::kEncodedSize) {
    return absl::DataLossError(
        absl::StrCat("a result record of ", frame.size(), " bytes"));
  }
  RingRecord record = RingRecord::DecodeFrom(frame.data());
  MP_ASSIGN_OR_RETURN(absl::string_view bytes, ring.Get(record));
  *out = CopyOut(spare, bytes);
  ring.Release(record);
  return absl::OkStatus();
}

// Writes `a` then `b` (no copy into one buffer).
bool WriteFully2(int fd, absl::string_view a, absl::string_view b) {
  while (!a.empty()) {
    iovec iov[2] = {{const_cast<char*>(a.data()), a.size()},
                    {const_cast<char*>(b.data()), b.size()}};
    ssize_t n = ::writev(fd, iov, b.empty() ? 1 : 2);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    size_t done = static_cast<size_t>(n);
    size_t from_a = std::min(done, a.size());
    a.remove_prefix(from_a);
    b.remove_prefix(done - from_a);
  }
  return WriteFully(fd, b.data(), b.size());
}

}  // namespace

char* ReadBuffer::Reserve(size_t n) {
  if (cap_ - len_ < n) {
    size_t cap = std::max(cap_ * 2, len_ + n);
    std::unique_ptr<char[]> bigger(new char[cap]);
    if (len_ > 0) std::memcpy(bigger.get(), buf_.get(), len_);
    buf_ = std::move(bigger);
    cap_ = cap;
  }
  return buf_.get() + len_;
}

void ReadBuffer::Consume(size_t n) {
  if (n >= len_) {
    len_ = 0;
    return;
  }
  std::memmove(buf_.get(), buf_.get() + n, len_ - n);
  len_ -= n;
}

absl::StatusOr<std::unique_ptr<ForkTransport>> ForkTransport::Create(
    const FunctionTable* table, ForkTransportOptions options) {
  UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return absl::ErrnoToStatus(errno, "eventfd");
  UniqueFd driver_wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!driver_wake) return absl::ErrnoToStatus(errno, "eventfd");
  Register(wake.get());
  Register(driver_wake.get());
  return std::unique_ptr<ForkTransport>(new ForkTransport(
      table, std::move(options), std::move(wake), std::move(driver_wake)));
}

ForkTransport::ForkTransport(const FunctionTable* table,
                             ForkTransportOptions options, UniqueFd wake,
                             UniqueFd driver_wake)
    : table_(table),
      options_(std::move(options)),
      wake_(std::move(wake)),
      driver_wake_(std::move(driver_wake)) {}

ForkTransport::Proc::~Proc() {
  if (slot_is_taken) {
    WorkerSlots::Give(slot);
  } else if (slot != nullptr) {
    munmap(slot, sizeof(*slot));
  }
}

absl::StatusOr<int> ForkTransport::Proc::Reap() {
  // A launched worker is reaped by its launcher.
  if (reap) return reap();
  return WaitPid(pid);
}

ForkTransport::~ForkTransport() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, p] : procs_) {
    ::kill(p->pid, SIGKILL);
    (void)p->Reap();
    Unregister(p->sock.get());
    Unregister(p->pidfd.get());
  }
  procs_.clear();
  Unregister(wake_.get());
  Unregister(driver_wake_.get());
}

absl::StatusOr<WorkerId> ForkTransport::StartLaunched() {
  MP_ASSIGN_OR_RETURN(LaunchedWorker w, options_.launcher->Launch());
  auto p = std::make_unique<Proc>();
  p->pid = w.pid;
  p->sock = std::move(w.sock);
  p->pidfd = std::move(w.exit_fd);
  p->slot = w.slot;
  p->reap = std::move(w.reap);
  absl::Status nb = SetNonBlocking(p->sock.get());
  if (!nb.ok()) {
    ::kill(p->pid, SIGKILL);
    (void)p->Reap();
    return nb;
  }
  return Add(std::move(p));
}

WorkerId ForkTransport::Add(std::unique_ptr<Proc> p) {
  Register(p->sock.get());
  Register(p->pidfd.get());
  std::lock_guard<std::mutex> lock(mu_);
  WorkerId id = next_id_++;
  p->id = id;
  procs_[id] = std::move(p);
  // A driver polling since before this worker existed would not see its
  // results (the handler may leave them to the driver): make it re-poll.
  WakeDriver();
  return id;
}

absl::StatusOr<WorkerId> ForkTransport::StartWorker(uint32_t generation) {
  (void)generation;  // the forked worker sees the table as it is now
  if (options_.launcher) return StartLaunched();
  MP_ASSIGN_OR_RETURN(FdPair pair, MakeSocketPair());
  MP_ASSIGN_OR_RETURN(std::atomic<uint64_t>* slot, WorkerSlots::Take());
  auto p = std::make_unique<Proc>();  // gives the slot back if we fail
  p->slot = slot;
  p->slot_is_taken = true;

  std::vector<int> close_fds;
  {
    std::lock_guard<std::mutex> lock(RegistryMu());
    close_fds.assign(Registry().begin(), Registry().end());
  }
  close_fds.push_back(pair.read.get());  // the pool's end

  fflush(nullptr);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t parent = getpid();
  // Forked with the transport's lock held, so that no thread of this pool
  // (a driver reading results) is inside the allocator for the transport's
  // buffers at that instant. glibc's fork() makes its own malloc safe in
  // the child whatever other threads do, but an allocator without fork
  // handlers would leave the child a lock held by a thread that does not
  // exist there: the worker would spin forever in its first allocation
  // (seen with GCC 12's AddressSanitizer, whose allocator has none).
  std::unique_lock<std::mutex> forking(mu_);
  pid_t pid = fork();
  if (pid == 0) {
    // Child: default dispositions for the signals that end a worker, Ctrl-C
    // ignored (the pool's owner handles it), then the old mask back.
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    WorkerMain(pair.write.get(), parent, close_fds, p->slot);
  }
  int fork_errno = errno;
  forking.unlock();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return absl::ErrnoToStatus(fork_errno, "fork");
  pair.write.reset();
  p->pid = pid;
  p->sock = std::move(pair.read);
  int pidfd = process_internal::PidfdOpen(pid);
  if (pidfd >= 0) p->pidfd.reset(pidfd);
  absl::Status nb = SetNonBlocking(p->sock.get());
  if (!nb.ok()) {
    ::kill(pid, SIGKILL);
    (void)p->Reap();
    return nb;
  }
  return Add(std::move(p));
}

void ReportInitFailure(int sock, const absl::Status& s) {
  TaskFailure f;
  f.code = static_cast<int32_t>(s.code());
  f.message = std::string(s.message());
  f.pid = getpid();
  std::string out;
  out.resize(kHeader);
  EncodeTo(f, &out);
  PutHeader(&out, 0, static_cast<uint32_t>(out.size() - kHeader), kInitFailure,
            0);
  WriteFully(sock, out.data(), out.size());
}

void ForkTransport::WorkerMain(int sock, pid_t parent,
                               const std::vector<int>& close_fds,
                               std::atomic<uint64_t>* slot) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  for (int fd : close_fds) {
    if (fd != sock) ::close(fd);
  }
  if (options_.initializer) {
    absl::Status s;
    try {
      s = options_.initializer();
    } catch (const std::exception& e) {
      s = absl::UnknownError(absl::StrCat(mp::CurrentExceptionTypeName(), ": ", e.what()));
    } catch (...) {
      s = absl::UnknownError(mp::CurrentExceptionTypeName());
    }
    if (!s.ok()) {
      ReportInitFailure(sock, s);
      fflush(nullptr);
      _exit(0);
    }
  }
  TableFunctions functions(table_);
  RunWorkerLoop(sock, slot, options_.max_payload, options_.ring_capacity,
                &functions);
  fflush(nullptr);
  _exit(0);
}

void RunWorkerLoop(int sock, std::atomic<uint64_t>* slot, size_t max_payload,
                   size_t ring_capacity, WorkerFunctions* functions) {
  ResultRing ring;  // made with the first large result
  std::string out;
  std::string bare;  // a result sent as it is (ChunkRunner::RunBare)
  const int64_t pid = getpid();
  // Nothing is allocated before the first byte comes: a worker the pool
  // stops before giving it work (a pool closed at once) ends without
  // touching more of its memory, which is copied on write from the pool's
  // (each page it writes is a page fault and a page copied, and one more
  // page for its exit to free).
  for (;;) {
    char first;
    const ssize_t n = ::recv(sock, &first, 1, MSG_PEEK);
    if (n > 0) break;
    if (n == 0 || errno != EINTR) return;  // stopped, or the pool is gone
  }
  ReadBuffer in;
  size_t start = 0;  // parse position in `in`
  int64_t last_flush = mp::MonotonicNanos();
  const int64_t spin_ns = WorkerSpinNanos();
  int ran = 0;  // tasks run since the last read
  for (;;) {
    // Read more: at least what the frame at `start` still needs.
    size_t have = in.size() - start;
    size_t need = kReadChunk;
    if (have >= kHeader) {
      uint32_t len;
      std::memcpy(&len, in.data() + start, 4);
      need = std::max(need, kHeader + len - have);
    }
    if (start > 0) {
      in.Consume(start);
      start = 0;
    }
    char* dst = in.Reserve(need);
    // After a lone task, spin on a non-blocking read for a short while
    // before sleeping: a pool that waits on a round trip sends the next task
    // within microseconds, and then neither side waits for the scheduler to
    // wake it. (After a batch, the pool is busy with its results: sleep.)
    ssize_t n = -1;
    if (spin_ns > 0 && ran == 1) {
      const int64_t until = mp::MonotonicNanos() + spin_ns;
      for (;;) {
        n = ::recv(sock, dst, need, MSG_DONTWAIT);
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ||
            mp::MonotonicNanos() >= until) {
          break;
        }
        sched_yield();  // first whatever else wants this CPU
      }
    }
    while (n < 0) {
      n = ::read(sock, dst, need);
      if (n < 0 && errno != EINTR) break;
    }
    if (n <= 0) break;  // the pool closed our input, or is gone
    ran = 0;
    in.Commit(static_cast<size_t>(n));
    // Run every complete frame.
    while (in.size() - start >= kHeader) {
      uint32_t len, fn;
      uint64_t task;
      const char* h = in.data() + start;
      std::memcpy(&len, h, 4);
      std::memcpy(&fn, h + 4, 4);
      std::memcpy(&task, h + 8, 8);
      if (in.size() - start < kHeader + len) break;
      absl::string_view args(h + kHeader, len);
      size_t at = out.size();
      out.resize(at + kHeader);
      TaskFailure failure;
      bool ok = false;
      std::string define_error;
      if (fn & kNamedFunction) {
        fn &= ~kNamedFunction;
        uint32_t name_len = 0;
        if (args.size() >= 4) std::memcpy(&name_len, args.data(), 4);
        if (args.size() < 4 || args.size() - 4 < name_len) {
          define_error = "malformed function name";
        } else {
          absl::string_view name = args.substr(4, name_len);
          args.remove_prefix(4 + name_len);
          functions->Define(fn, name, &define_error);
        }
      }
      ChunkRunner* runner = functions->Get(fn);
      // The shared page says what we run, should we die in it.
      slot->store(task, std::memory_order_relaxed);
      if (runner == nullptr) {
        failure.code = static_cast<int32_t>(absl::StatusCode::kInternal);
        failure.message = define_error.empty()
                              ? absl::StrCat("worker has no function ", fn)
                              : define_error;
      } else {
        ok = runner->RunBare(args, &out, &bare, &failure);
      }
      slot->store(0, std::memory_order_relaxed);
      const size_t result_size = bare.empty() ? out.size() - at - kHeader
                                              : bare.size();
      if (ok && result_size > max_payload) {
        ok = false;
        failure = TaskFailure();
        failure.code = static_cast<int32_t>(absl::StatusCode::kResourceExhausted);
        failure.message = absl::StrCat("the result of ", result_size,
                                       " bytes exceeds the message limit of ",
                                       max_payload, " bytes");
      }
      if (!ok) {
        bare.clear();
        failure.pid = pid;
        out.resize(at + kHeader);
        EncodeTo(failure, &out);
      }
      start += kHeader + len;
      ++ran;
      int64_t now = mp::MonotonicNanos();
      if (!bare.empty()) {
        if (ring_capacity > 0 && !ring.valid()) {
          absl::StatusOr<ResultRing> made = ResultRing::Create(ring_capacity);
          if (made.ok()) {
            std::string frame(kHeader, '\0');
            PutHeader(&frame, 0, 0, kRingFd, 0);
            if (!SendWithFd(sock, frame, made->fd()).ok()) return;
            made->CloseFd();
            ring = *std::move(made);
          } else {
            ring_capacity = 0;  // no memfd here: the socket it is
          }
        }
        // Sent at once, with what was batched before it: in the ring, only
        // its record travels (the pool frees the ring as it reads records);
        // otherwise the frame's header, then the result's own bytes (no
        // encode copy).
        RingRecord record;
        bool sent;
        if (ring.valid() && ring.Put(bare, &record)) {
          out.resize(at + kHeader + RingRecord::kEncodedSize);
          record.EncodeTo(&out[at + kHeader]);
          PutHeader(&out, at, RingRecord::kEncodedSize, kResultOkRing, task);
          sent = WriteFully(sock, out.data(), out.size());
        } else {
          PutHeader(&out, at, static_cast<uint32_t>(bare.size()),
                    kResultOkBare, task);
          sent = WriteFully2(sock, out, bare);
        }
        if (!sent) return;
        out.clear();
        // Emptied; its buffer, if any, is freed when the next result is
        // moved in.
        bare.clear();
        last_flush = now;
        continue;
      }
      PutHeader(&out, at, static_cast<uint32_t>(out.size() - at - kHeader),
                ok ? kResultOk : kResultFailure, task);
      if (out.size() >= kBigFrame || now - last_flush > 1000000) {
        if (!WriteFully(sock, out.data(), out.size())) return;
        out.clear();
        last_flush = now;
      }
    }
    if (!out.empty()) {
      if (!WriteFully(sock, out.data(), out.size())) return;
      out.clear();
      last_flush = mp::MonotonicNanos();
    }
  }
}

absl::Status ForkTransport::Send(WorkerId worker, uint64_t task_id,
                                 uint32_t function, absl::string_view payload) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = procs_.find(worker);
  if (it == procs_.end() || it->second->eof || it->second->shut) {
    return absl::OutOfRangeError("worker gone");
  }
  Proc& p = *it->second;
  // A launched worker learns a function's name with its first task.
  absl::string_view name;
  if (options_.launcher) {
    ChunkRunner* runner = table_->Get(function);
    const char* remote = runner != nullptr ? runner->remote_name() : nullptr;
    if (remote != nullptr &&
        (function >= p.named.size() || !p.named[function])) {
      if (function >= p.named.size()) p.named.resize(function + 1);
      p.named[function] = true;
      name = remote;
    }
  }
  const uint32_t name_len = static_cast<uint32_t>(name.size());
  const size_t at = p.out.size();
  p.out.resize(at + kHeader);
  PutHeader(&p.out, at,
            static_cast<uint32_t>((name.empty() ? 0 : 4 + name_len) +
                                  payload.size()),
            name.empty() ? function : function | kNamedFunction, task_id);
  if (!name.empty()) {
    p.out.append(reinterpret_cast<const char*>(&name_len), 4);
    p.out.append(name.data(), name.size());
  }
  p.out.append(payload.data(), payload.size());
  return absl::OkStatus();
}

bool ForkTransport::FlushLocked(Proc& p) {
  while (p.out_off < p.out.size()) {
    ssize_t n = ::send(p.sock.get(), p.out.data() + p.out_off,
                       p.out.size() - p.out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      p.out.clear();
      p.out_off = 0;
      return false;
    }
    p.out_off += static_cast<size_t>(n);
  }
  p.out.clear();
  p.out_off = 0;
  if (p.stop_requested && !p.shut) {
    ::shutdown(p.sock.get(), SHUT_WR);
    p.shut = true;
  }
  return true;
}

void ForkTransport::Flush() {
  bool left = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, p] : procs_) {
      if (p->out_off < p->out.size()) {
        FlushLocked(*p);
        left |= p->out_off < p->out.size();
      }
    }
  }
  if (left) Wake();
}

void ForkTransport::StopWorker(WorkerId worker) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = procs_.find(worker);
  if (it == procs_.end()) return;
  Proc& p = *it->second;
  p.stop_requested = true;
  if (p.out_off >= p.out.size() && !p.shut) {
    ::shutdown(p.sock.get(), SHUT_WR);
    p.shut = true;
  }
}

void ForkTransport::KillWorker(WorkerId worker) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = procs_.find(worker);
  if (it == procs_.end()) return;
  ::kill(it->second->pid, SIGKILL);
}

void ForkTransport::Wake() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_.get(), &one, sizeof one);
  (void)n;  // EAGAIN: the counter is already non-zero
}

void ForkTransport::WakeDriver() {
  uint64_t one = 1;
  ssize_t n = ::write(driver_wake_.get(), &one, sizeof one);
  (void)n;
}

absl::Status ForkTransport::Poll(absl::Duration timeout,
                                 std::vector<TransportEvent>* events) {
  return PollWith(wake_.get(), timeout, events);
}

absl::Status ForkTransport::PollForDriver(absl::Duration timeout,
                                          std::vector<TransportEvent>* events) {
  return PollWith(driver_wake_.get(), timeout, events);
}

std::string ForkTransport::WorkerName(WorkerId worker) {
  return absl::StrCat("pid ", WorkerPid(worker));
}

int64_t ForkTransport::WorkerPid(WorkerId worker) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = procs_.find(worker);
  return it == procs_.end() ? 0 : it->second->pid;
}

void ForkTransport::ParseLocked(Proc& p, std::vector<TransportEvent>* events) {
  size_t pos = 0;
  while (p.in.size() - pos >= kHeader) {
    uint32_t len, word;
    uint64_t task;
    const char* h = p.in.data() + pos;
    std::memcpy(&len, h, 4);
    std::memcpy(&word, h + 4, 4);
    std::memcpy(&task, h + 8, 8);
    size_t avail = p.in.size() - pos - kHeader;
    if (avail < len) {
      if (len >= kBigFrame) {
        // Read the rest of a large body straight into its own string.
        p.reading_big = true;
        p.big = spare_.Take(len);
        p.big.resize(len);
        std::memcpy(&p.big[0], h + kHeader, avail);
        p.big_have = avail;
        p.big_word = word;
        p.big_task = task;
        pos = p.in.size();
      }
      break;
    }
    if (word == kRingFd) {  // its fd was taken when read
      pos += kHeader + len;
      continue;
    }
    TransportEvent ev;
    ev.worker = p.id;
    ev.task_id = task;
    ev.bare_string = word == kResultOkBare || word == kResultOkRing;
    if (word == kResultOkRing) {
      absl::Status taken = TakeFromRing(
          p.ring, spare_, absl::string_view(h + kHeader, len), &ev.payload);
      if (taken.ok()) {
        ring_results_.fetch_add(1, std::memory_order_relaxed);
      } else {
        // The worker broke the protocol: its task fails, and it ends.
        TaskFailure f;
        f.code = static_cast<int32_t>(absl::StatusCode::kDataLoss);
        f.message = absl::StrCat("worker pid ", p.pid,
                                 " sent a bad result: ", taken.message());
        f.pid = p.pid;
        ev.payload.clear();
        EncodeTo(f, &ev.payload);
        ev.ok = false;
        ev.bare_string = false;
        ::kill(p.pid, SIGKILL);
      }
    } else if (word == kInitFailure) {
      ev.kind = TransportEvent::Kind::kInitFailed;
      absl::StatusOr<TaskFailure> f =
          Decode<TaskFailure>(absl::string_view(h + kHeader, len));
      ev.status = f.ok() ? absl::Status(static_cast<absl::StatusCode>(f->code),
                                        f->message)
                         : f.status();
    } else {
      ev.payload.assign(h + kHeader, len);
      ev.ok = word == kResultOk || word == kResultOkBare;
    }
    events->push_back(std::move(ev));
    pos += kHeader + len;
  }
  p.in.Consume(pos);
}

void ForkTransport::ReadLocked(Proc& p, std::vector<TransportEvent>* events,
                               bool drain) {
  for (;;) {
    char* dst;
    size_t want;
    if (p.reading_big) {
      dst = &p.big[p.big_have];
      want = p.big.size() - p.big_have;
    } else {
      dst = p.in.Reserve(kReadChunk);
      want = kReadChunk;
    }
    UniqueFd fd;
    ssize_t n = ReceiveWithFd(p.sock.get(), dst, want, &fd);
    if (fd && !p.ring.valid()) {
      // The worker's ring (its kRingFd frame is among these bytes). One
      // that cannot be mapped is ignored: records naming it then fail.
      absl::StatusOr<ResultRing> ring = ResultRing::Map(fd.get());
      if (ring.ok()) p.ring = *std::move(ring);
    }
    if (n <= 0) {
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) p.eof = true;
      return;
    }
    if (p.reading_big) {
      p.big_have += static_cast<size_t>(n);
      if (p.big_have == p.big.size()) {
        TransportEvent ev;
        ev.worker = p.id;
        ev.task_id = p.big_task;
        ev.ok = p.big_word == kResultOk || p.big_word == kResultOkBare;
        ev.bare_string = p.big_word == kResultOkBare;
        ev.payload = std::move(p.big);
        p.big = std::string();
        p.reading_big = false;
        events->push_back(std::move(ev));
      }
    } else {
      p.in.Commit(static_cast<size_t>(n));
      ParseLocked(p, events);
      // A short read drained the socket (poll is level-triggered: anything
      // that arrives later wakes it again). Saves an EAGAIN read per batch.
      if (static_cast<size_t>(n) < want && !drain && !p.reading_big) return;
    }
  }
}

void ForkTransport::ReapLocked(Proc& p, std::vector<TransportEvent>* events) {
  absl::StatusOr<int> code = p.Reap();
  TransportEvent ev;
  ev.kind = TransportEvent::Kind::kWorkerExited;
  ev.worker = p.id;
  if (!code.ok()) {
    ev.status = absl::UnavailableError(absl::StrCat(
        "worker lost: pid ", p.pid, " (", code.status().message(), ")"));
  } else if (*code != 0) {
    ev.status = absl::UnavailableError(DescribeExitCode(p.pid, *code));
  }
  ev.running_task = p.slot->load();
  ev.running_known = true;
  events->push_back(std::move(ev));
}

absl::Status ForkTransport::PollWith(int wake_fd, absl::Duration timeout,
                                     std::vector<TransportEvent>* events) {
  std::vector<struct pollfd> fds;
  std::vector<WorkerId> owners;  // per fd; 0 for the wake fd
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool leave_results =
        wake_fd == wake_.get() && results_to_driver_.load();
    fds.push_back({wake_fd, POLLIN, 0});
    owners.push_back(0);
    for (auto& [id, p] : procs_) {
      if (!p->eof) {
        short ev = POLLIN;
        if (leave_results && p->pidfd) ev = 0;
        if (p->out_off < p->out.size()) ev |= POLLOUT;
        if (ev != 0) {
          fds.push_back({p->sock.get(), ev, 0});
          owners.push_back(id);
        }
      }
      if (p->pidfd) {
        fds.push_back({p->pidfd.get(), POLLIN, 0});
        owners.push_back(id);
      }
    }
  }
  int ms = -1;
  if (timeout != absl::InfiniteDuration()) {
    ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(timeout)));
  }
  int n = ::poll(fds.data(), fds.size(), ms);
  if (n < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return absl::ErrnoToStatus(errno, "poll");
  }
  if (n == 0) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  if (fds[0].revents) {
    uint64_t v;
    ssize_t r = ::read(wake_fd, &v, sizeof v);
    (void)r;
  }
  std::set<WorkerId> dead;
  for (size_t i = 1; i < fds.size(); ++i) {
    if (fds[i].revents == 0) continue;
    auto it = procs_.find(owners[i]);
    if (it == procs_.end()) continue;
    Proc& p = *it->second;
    if (fds[i].fd != p.sock.get() && fds[i].fd != p.pidfd.get()) continue;
    if (fds[i].fd == p.pidfd.get()) {
      dead.insert(p.id);
      continue;
    }
    if (fds[i].revents & POLLOUT) {
      FlushLocked(p);  // on error the worker's exit event follows
    }
    if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
      ReadLocked(p, events, /*drain=*/false);
      if (p.eof && !p.pidfd) dead.insert(p.id);
    }
  }
  for (WorkerId id : dead) {
    auto it = procs_.find(id);
    if (it == procs_.end()) continue;  // the other poller reaped it
    Proc& p = *it->second;
    if (!p.eof) ReadLocked(p, events, /*drain=*/true);  // last results first
    ReapLocked(p, events);
    Unregister(p.sock.get());
    Unregister(p.pidfd.get());
    procs_.erase(it);
  }
  return absl::OkStatus();
}

}  // namespace pool_internal
}  // namespace mp
