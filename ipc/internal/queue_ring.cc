#include "ipc/internal/queue_ring.h"

#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "process/status_macros.h"
#include "process/spin.h"
#include "shm/internal/tracker.h"
#include "shm/shared_memory.h"
#include "sync/internal/futex.h"

namespace mp {
namespace ipc_internal {

using sync_internal::Deadline;
using sync_internal::FutexResult;
using sync_internal::FutexWait;
using sync_internal::FutexWake;
using sync_internal::RobustMutex;

std::atomic<QueueHook> g_queue_test_hook{nullptr};

void SetQueueTestHook(QueueHook hook) {
  g_queue_test_hook.store(hook, std::memory_order_relaxed);
}

namespace {

uint64_t RoundUpPow2(uint64_t n) {
  uint64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

absl::Status FullError(absl::string_view why) {
  return absl::ResourceExhaustedError(absl::StrCat("mp::Queue is full", why));
}

absl::Status EmptyError(absl::string_view why) {
  return absl::UnavailableError(absl::StrCat("mp::Queue is empty", why));
}

// How long a waiter polls the other side's word before it sleeps: a
// producer and a consumer running side by side on two cores then hand
// records over without any system call. The budget adapts per process and
// direction, like an adaptive mutex: it halves each time polling fails (the
// peer is probably not running, e.g. both share one CPU: spinning only
// delays it) and doubles each time polling succeeds, between kMinSpinNs and
// kMaxSpinNs. Measured in time, not in pause instructions: a pause takes
// from a few to over 100 ns depending on the CPU and the hypervisor.
constexpr int64_t kMaxSpinNs = 5000;
constexpr int64_t kMinSpinNs = 200;

// A poller looks at the other side's word only about every
// kCheckIntervalNs (a number of pause instructions, see PausesPerCheck()).
// Each look pulls the
// cache line of that word (and then of the records) over to the poller's
// core, and the other side's next store must fetch it back: checking after
// every pause made a consumer that kept pace with its producer steal the
// lines after almost every record, so each Put waited for two cache-line
// transfers (its lock release drains the stores). Looking less often lets
// the producer write a run of records into lines it owns; the consumer then
// takes them as a batch. Measured on a 2-core AMD EPYC VM, one producer and
// one consumer process, 8-byte values: median 16 -> 29 M values/s. The cost
// is up to one check interval of extra latency when the queue was empty.
constexpr int64_t kCheckIntervalNs = 400;
constexpr int kMaxPausesPerCheck = 64;

// PausesPerCheck(): how many pause instructions take about kCheckIntervalNs
// here (16 on the AMD EPYC VM where the interval was tuned), measured once
// per process (the fastest of three samples). A measurement inflated by
// preemption only makes polling more frequent (at least one pause per
// check, as before).
int PausesPerCheck() {
  static std::atomic<int> pauses{0};
  int n = pauses.load(std::memory_order_relaxed);
  if (ABSL_PREDICT_FALSE(n == 0)) {
    constexpr int kSample = 32;
    int64_t elapsed = INT64_MAX;  // the fastest of 3 samples
    for (int round = 0; round < 3; ++round) {
      const int64_t start = mp::MonotonicNanos();
      for (int i = 0; i < kSample; ++i) mp::CpuRelax();
      elapsed = std::min(elapsed, mp::MonotonicNanos() - start);
    }
    elapsed = std::max<int64_t>(1, elapsed);
    n = static_cast<int>(std::clamp<int64_t>(
        kCheckIntervalNs * kSample / elapsed, 1, kMaxPausesPerCheck));
    pauses.store(n, std::memory_order_relaxed);
  }
  return n;
}

// Polls `ready()` for up to `*budget_ns`; true once it holds. Adapts the
// budget.
template <typename F>
bool Poll(std::atomic<int32_t>* budget_ns, F ready) {
  const int64_t budget = budget_ns->load(std::memory_order_relaxed);
  const int pauses = PausesPerCheck();
  int64_t start = 0;
  for (;;) {
    for (int k = 0; k < pauses; ++k) mp::CpuRelax();
    if (ready()) {
      if (budget < kMaxSpinNs) {
        budget_ns->store(static_cast<int32_t>(std::min(kMaxSpinNs, budget * 2)),
                         std::memory_order_relaxed);
      }
      return true;
    }
    {
      const int64_t now = mp::MonotonicNanos();
      if (start == 0) {
        start = now;
      } else if (now - start > budget) {
        budget_ns->store(static_cast<int32_t>(std::max(kMinSpinNs, budget / 2)),
                         std::memory_order_relaxed);
        return false;
      }
    }
  }
}

// The payload of an out-of-line record: u64 size, then the segment name.
constexpr size_t kMaxNameLength = 255;

// Out-of-line segments are named `<queue name>_ool_<8 hex digits>`: a
// prefix no other queue's segment has unless its name is built that way.
constexpr absl::string_view kOutOfLineInfix = "_ool_";
// Hex digits that end an out-of-line segment's name, after the infix.
constexpr size_t kOutOfLineSuffixLength = 8;

// How long a sleeper sleeps at most when membarrier is unavailable to it
// while publishers skip their fence (a mixed setup, e.g. a seccomp filter):
// it then re-checks, so a missed wake costs latency, never a hang.
constexpr absl::Duration kPollSlice = absl::Milliseconds(5);

// 0: unknown, 1: registered (light publishing), 2: unavailable.
std::atomic<int> g_membarrier_state{0};

}  // namespace

// SysMembarrier(): membarrier(2); the result or -errno (-ENOSYS without it).
long SysMembarrier(int cmd, unsigned flags) {
#ifdef SYS_membarrier
  long r = syscall(SYS_membarrier, cmd, flags, 0);
  return r < 0 ? -errno : r;
#else
  (void)cmd;
  (void)flags;
  return -ENOSYS;
#endif
}

bool LightPublishSupported() {
  int state = g_membarrier_state.load(std::memory_order_acquire);
  if (state == 0) {
    const long cmds = SysMembarrier(MEMBARRIER_CMD_QUERY, 0);
    const bool ok =
        cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
        (cmds & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &&
        SysMembarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0) == 0;
    state = ok ? 1 : 2;
    g_membarrier_state.store(state, std::memory_order_release);
  }
  return state == 1;
}

bool g_sleeper_fence_disabled = false;  // tests only

bool SleeperBarrier() {
  if (g_sleeper_fence_disabled) return false;
  return SysMembarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0) == 0;
}

void SetMembarrierForTesting(bool light_publish, bool sleeper_fence) {
  g_membarrier_state.store(0);
  if (!light_publish || !LightPublishSupported()) {
    g_membarrier_state.store(2);
  }
  g_sleeper_fence_disabled = !sleeper_fence;
}

absl::StatusOr<std::shared_ptr<QueueRing>> QueueRing::Create(
    const QueueRingOptions& options) {
  if (options.capacity > kQueueMaxCapacity) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mp::Queue: capacity ", options.capacity, " bytes exceeds the limit ",
        kQueueMaxCapacity));
  }
  if (options.maxsize >= (uint64_t{1} << 31)) {
    return absl::InvalidArgumentError(
        absl::StrCat("mp::Queue: maxsize ", options.maxsize,
                     " is too large (at most 2^31 - 1; 0 means unbounded)"));
  }
  const uint64_t capacity =
      RoundUpPow2(std::max<uint64_t>(options.capacity, kQueueMinCapacity));
  MP_ASSIGN_OR_RETURN(
      SharedMemory shm,
      SharedMemory::Create(kQueueHeaderSize + capacity, options.name));
  auto* h = new (shm.data()) QueueHeader();
  h->config.version = kQueueLayoutVersion;
  h->config.header_size = kQueueHeaderSize;
  h->config.capacity = capacity;
  h->config.maxsize = options.maxsize;
  h->producer.pending = kNoPending;
  h->consumer.pending = kNoPending;
  std::atomic_thread_fence(std::memory_order_release);
  h->config.magic = kQueueMagic;
  std::shared_ptr<QueueRing> ring(new QueueRing(std::move(shm)));
  // If this process dies (even by SIGKILL) while out-of-line values are
  // queued, its shm tracker removes them along with the ring. (When the
  // name is too long for out-of-line values, there can be none.)
  const std::string prefix = ring->OutOfLinePrefix();
  if (prefix.size() + kOutOfLineSuffixLength <= kMaxNameLength) {
    MP_RETURN_IF_ERROR(shm_internal::TrackPrefix(prefix));
    ring->tracks_prefix_ = true;
  }
  return ring;
}

std::string QueueRing::OutOfLinePrefix() const {
  return absl::StrCat(name(), kOutOfLineInfix);
}

absl::StatusOr<std::shared_ptr<QueueRing>> QueueRing::Attach(
    absl::string_view name) {
  MP_ASSIGN_OR_RETURN(SharedMemory shm, SharedMemory::Attach(name));
  auto not_a_queue = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mp::Queue: shared memory segment '", name, "' is not a queue: ", why));
  };
  if (shm.size() < kQueueHeaderSize) return not_a_queue("too small");
  const auto* h = reinterpret_cast<const QueueHeader*>(shm.data());
  if (h->config.magic != kQueueMagic) return not_a_queue("bad magic");
  if (h->config.version != kQueueLayoutVersion ||
      h->config.header_size != kQueueHeaderSize) {
    return not_a_queue(
        absl::StrCat("layout version ", h->config.version, " (expected ",
                     kQueueLayoutVersion, ")"));
  }
  const uint64_t cap = h->config.capacity;
  if (cap < kQueueMinCapacity || cap > kQueueMaxCapacity ||
      (cap & (cap - 1)) != 0 || shm.size() < kQueueHeaderSize + cap) {
    return not_a_queue(absl::StrCat("bad capacity ", cap));
  }
  if (h->config.maxsize >= (uint64_t{1} << 31)) {
    return not_a_queue(absl::StrCat("bad maxsize ", h->config.maxsize));
  }
  return std::shared_ptr<QueueRing>(new QueueRing(std::move(shm)));
}

QueueRing::QueueRing(SharedMemory shm) : shm_(std::move(shm)) {
  h_ = reinterpret_cast<QueueHeader*>(shm_.data());
  data_ = shm_.data() + kQueueHeaderSize;
  capacity_ = h_->config.capacity;
  mask_ = capacity_ - 1;
  maxsize_ = h_->config.maxsize;
  max_inline_ = capacity_ / 2 - sizeof(RecordHeader);
  light_ = LightPublishSupported();
}

QueueRing::~QueueRing() {
  if (shm_.owner()) {
    UnlinkQueuedOutOfLine();
    if (tracks_prefix_) shm_internal::UntrackPrefix(OutOfLinePrefix());
  }
}

void QueueRing::UnlinkQueuedOutOfLine() {
  // Best effort, without locks: the creator is tearing the queue down.
  uint64_t head = h_->head.word.load(std::memory_order_acquire);
  const uint64_t tail = h_->tail.word.load(std::memory_order_acquire);
  if (PosBytes(tail, head) > capacity_) return;
  const std::string prefix = OutOfLinePrefix();
  while (PosUnits(head) != PosUnits(tail)) {
    const uint64_t offset = (uint64_t{PosUnits(head)} * 8) & mask_;
    RecordHeader rh;
    std::memcpy(&rh, data_ + offset, sizeof rh);
    const uint64_t size = RecordSize(rh.length);
    if (rh.check != RecordCheck(rh.length, rh.kind) ||
        size > PosBytes(tail, head) || offset + size > capacity_) {
      return;
    }
    if (rh.kind == kRecordOutOfLine && rh.length > 8 &&
        rh.length <= 8 + kMaxNameLength) {
      std::string seg(data_ + offset + sizeof rh + 8, rh.length - 8);
      if (absl::StartsWith(seg, prefix)) {
        shm_unlink(absl::StrCat("/", seg).c_str());
      }
    }
    head = PosWord(0, PosUnits(head) + static_cast<uint32_t>(size / 8));
  }
}

absl::Status QueueRing::ClosedError() const {
  return absl::FailedPreconditionError(
      "mp::Queue is closed in this process (Close() was called)");
}

// ---- locking and repair -----------------------------------------------------------

absl::Status QueueRing::LockSlow(RobustMutex& lock, RobustMutex::Result r,
                                 LazyDeadline* deadline,
                                 absl::Status (*busy)(absl::string_view),
                                 void (QueueRing::*repair)(),
                                 const SideNames& names) {
  if (r == RobustMutex::Result::kTimedOut) {
    if (deadline->NoWait()) {
      return busy(absl::StrCat(" (another ", names.holder, " holds the ",
                               names.verb, " lock)"));
    }
    r = lock.Lock(deadline->Get());
  }
  switch (r) {
    case RobustMutex::Result::kAcquired:
      return absl::OkStatus();
    case RobustMutex::Result::kOwnerDied:
      (this->*repair)();
      return absl::OkStatus();
    case RobustMutex::Result::kTimedOut:
      return busy(absl::StrCat(" (timed out waiting for the ", names.verb,
                               " lock)"));
    case RobustMutex::Result::kDeadlock:
      break;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "mp::Queue::", names.method, ": re-entered by the thread that is ",
      names.verb, "ting (from a signal handler?)"));
}

absl::Status QueueRing::LockProducerSlow(RobustMutex::Result r,
                                         LazyDeadline* deadline) {
  return LockSlow(h_->producer.lock, r, deadline, FullError,
                  &QueueRing::RepairProducer, {"producer", "put", "Put"});
}

absl::Status QueueRing::LockConsumerSlow(RobustMutex::Result r,
                                         LazyDeadline* deadline) {
  return LockSlow(h_->consumer.lock, r, deadline, EmptyError,
                  &QueueRing::RepairConsumer, {"consumer", "get", "Get"});
}

void QueueRing::RepairProducer() {
  // The previous holder died. Positions are single words, so the ring is
  // consistent; only a record it wrote but did not publish is lost.
  QueueSide& p = h_->producer;
  const uint64_t tail = h_->tail.word.load(std::memory_order_relaxed);
  if (p.pending != kNoPending && p.pending == tail) {
    h_->tasks.lost.fetch_add(1, std::memory_order_relaxed);
  }
  p.pending = kNoPending;
  // Only the lock holder sleeps for space: no one does now.
  h_->waiters.space_waiters.store(0, std::memory_order_relaxed);
  p.cached_other = h_->head.word.load(std::memory_order_seq_cst);
  p.lock.MarkConsistent();
}

void QueueRing::RepairConsumer() {
  QueueSide& c = h_->consumer;
  const uint64_t head = h_->head.word.load(std::memory_order_relaxed);
  if (c.pending != kNoPending && c.pending != head) {
    // It took a record (published head) and died before returning it.
    h_->tasks.lost.fetch_add(1, std::memory_order_relaxed);
    h_->tasks.done.fetch_add(1, std::memory_order_seq_cst);
    if (h_->tasks.join_waiters.load(std::memory_order_seq_cst) != 0) {
      FutexWake(&h_->tasks.done, sync_internal::kWakeAll);
    }
  }
  c.pending = kNoPending;
  h_->waiters.data_waiters.store(0, std::memory_order_relaxed);
  c.cached_other = h_->tail.word.load(std::memory_order_seq_cst);
  c.lock.MarkConsistent();
}

// ---- waiting ------------------------------------------------------------------------

absl::Status QueueRing::WaitForSpace(uint64_t tail, uint64_t need,
                                     LazyDeadline* deadline) {
  QueueSide& p = h_->producer;
  QueueWaiters& w = h_->waiters;
  if (!deadline->NoWait()) {
    if (Poll(&space_spin_ns_, [&] {
          p.cached_other = h_->head.word.load(std::memory_order_acquire);
          return Fits(tail, p.cached_other, need);
        })) {
      return absl::OkStatus();
    }
    for (;;) {
      const uint32_t seq = w.space_seq.load(std::memory_order_seq_cst);
      w.space_waiters.store(1, std::memory_order_seq_cst);
      const bool fenced = SleeperBarrier();
      p.cached_other = h_->head.word.load(std::memory_order_seq_cst);
      if (Fits(tail, p.cached_other, need)) return absl::OkStatus();
      const FutexResult fr = FutexWait(
          &w.space_seq, seq,
          fenced ? deadline->Get()
                 : Deadline::Earlier(deadline->Get(),
                                     Deadline::After(kPollSlice)));
      if (fr == FutexResult::kTimedOut && !deadline->Get().Expired()) {
        continue;
      }
      if (fr == FutexResult::kTimedOut) break;
    }
    p.cached_other = h_->head.word.load(std::memory_order_seq_cst);
    if (Fits(tail, p.cached_other, need)) return absl::OkStatus();
  }
  p.pending = kNoPending;
  p.lock.Unlock();
  return FullError(maxsize_ != 0 &&
                           PosItems(tail, p.cached_other) >= maxsize_
                       ? absl::StrCat(" (", maxsize_, " items)")
                       : absl::StrCat(" (", PosBytes(tail, p.cached_other),
                                      " of ", capacity_, " bytes used, ", need,
                                      " needed)"));
}

absl::Status QueueRing::WaitForData(uint64_t head, LazyDeadline* deadline) {
  QueueSide& c = h_->consumer;
  QueueWaiters& w = h_->waiters;
  if (!deadline->NoWait()) {
    if (Poll(&data_spin_ns_, [&] {
          c.cached_other = h_->tail.word.load(std::memory_order_acquire);
          return PosUnits(c.cached_other) != PosUnits(head);
        })) {
      return absl::OkStatus();
    }
    for (;;) {
      const uint32_t seq = w.data_seq.load(std::memory_order_seq_cst);
      w.data_waiters.store(1, std::memory_order_seq_cst);
      const bool fenced = SleeperBarrier();
      c.cached_other = h_->tail.word.load(std::memory_order_seq_cst);
      if (PosUnits(c.cached_other) != PosUnits(head)) return absl::OkStatus();
      const FutexResult fr = FutexWait(
          &w.data_seq, seq,
          fenced ? deadline->Get()
                 : Deadline::Earlier(deadline->Get(),
                                     Deadline::After(kPollSlice)));
      if (fr == FutexResult::kTimedOut && !deadline->Get().Expired()) {
        continue;
      }
      if (fr == FutexResult::kTimedOut) break;
    }
    c.cached_other = h_->tail.word.load(std::memory_order_seq_cst);
    if (PosUnits(c.cached_other) != PosUnits(head)) return absl::OkStatus();
  }
  c.pending = kNoPending;
  c.lock.Unlock();
  return EmptyError("");
}

void QueueRing::WakeConsumers() {
  // One wake per sleep: the first waker clears the flag; a sleeper that
  // must sleep again sets it again.
  if (h_->waiters.data_waiters.exchange(0, std::memory_order_seq_cst) == 0) {
    return;
  }
  h_->waiters.data_seq.fetch_add(1, std::memory_order_seq_cst);
  FutexWake(&h_->waiters.data_seq, sync_internal::kWakeAll);
}

void QueueRing::WakeProducers() {
  if (h_->waiters.space_waiters.exchange(0, std::memory_order_seq_cst) == 0) {
    return;
  }
  h_->waiters.space_seq.fetch_add(1, std::memory_order_seq_cst);
  FutexWake(&h_->waiters.space_seq, sync_internal::kWakeAll);
}

// ---- out-of-line values ---------------------------------------------------------------

absl::Status QueueRing::PutOutOfLine(size_t length, absl::Duration timeout,
                                     absl::FunctionRef<void(char*)> write) {
  if (closed()) return ClosedError();
  const std::string random = RandomSharedMemoryName();
  const std::string seg_name =
      absl::StrCat(OutOfLinePrefix(),
                   random.substr(random.size() - kOutOfLineSuffixLength));
  if (seg_name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mp::Queue: name too long for out-of-line values: ", name()));
  }
  // Tracked while this process owns it: if it dies before handing the
  // segment over, its tracker removes it.
  MP_ASSIGN_OR_RETURN(SharedMemory seg, SharedMemory::Create(length, seg_name));
  write(seg.data());
  const uint64_t size = length;
  auto put_name = [&](char* dst) {
    std::memcpy(dst, &size, sizeof size);
    std::memcpy(dst + sizeof size, seg_name.data(), seg_name.size());
  };
  MP_RETURN_IF_ERROR(PutRecord(kRecordOutOfLine, sizeof size + seg_name.size(),
                               timeout, put_name));
  // Published: from now on the consumer unlinks it. (Killed between the
  // publish and this line, the tracker removes it and the consumer reports
  // the value lost.)
  seg.Disown();
  return absl::OkStatus();
}

absl::Status QueueRing::GetOutOfLine(
    uint64_t next, absl::string_view rec,
    absl::FunctionRef<absl::Status(absl::string_view)> read) {
  QueueSide& c = h_->consumer;
  const uint64_t head = h_->head.word.load(std::memory_order_relaxed);
  const std::string prefix = OutOfLinePrefix();
  uint64_t size = 0;
  std::string seg_name;
  if (rec.size() > sizeof size) {
    std::memcpy(&size, rec.data(), sizeof size);
    seg_name.assign(rec.data() + sizeof size, rec.size() - sizeof size);
  }
  if (seg_name.size() > kMaxNameLength ||
      !absl::StartsWith(seg_name, prefix) ||
      seg_name.find('/') != std::string::npos ||
      seg_name.find('\0') != std::string::npos) {
    RecordHeader rh{static_cast<uint32_t>(rec.size()), kRecordOutOfLine, 0};
    return Corrupt(head, c.cached_other, rh,
                   "out-of-line record without a valid segment name");
  }
  // If this process dies from here on, its tracker removes the segment.
  const bool tracked = shm_internal::TrackSegment(seg_name).ok();
  const bool wake = Publish(h_->head.word, next, h_->waiters.space_waiters);
  QueueHookAt(QueueHookPoint::kGetAfterPublish);
  c.pending = kNoPending;
  c.lock.Unlock();
  if (wake) WakeProducers();
  absl::Status status;
  absl::StatusOr<SharedMemory> seg = SharedMemory::Attach(seg_name);
  if (!seg.ok()) {
    h_->tasks.lost.fetch_add(1, std::memory_order_relaxed);
    status = absl::DataLossError(absl::StrCat(
        "mp::Queue: an out-of-line value was lost (its producer died before "
        "handing it over): ",
        seg.status().message()));
  } else if (seg->size() < size) {
    status = absl::DataLossError(absl::StrCat(
        "mp::Queue: out-of-line segment ", seg_name, " has ", seg->size(),
        " bytes, the record says ", size));
  } else {
    status = read(absl::string_view(seg->data(), size));
  }
  if (seg.ok()) (void)seg->Unlink();
  if (tracked) shm_internal::UntrackSegment(seg_name);
  return status;
}

absl::Status QueueRing::Corrupt(uint64_t head, uint64_t tail,
                                const RecordHeader& rh,
                                absl::string_view what) {
  QueueSide& c = h_->consumer;
  c.pending = kNoPending;
  c.lock.Unlock();
  return absl::DataLossError(absl::StrFormat(
      "mp::Queue %s: corrupt ring (%s): record at byte offset %d has length "
      "%u, kind %u, check 0x%04x (expected 0x%04x); %d bytes published of a "
      "%d-byte ring",
      name(), what, (uint64_t{PosUnits(head)} * 8) & mask_, rh.length,
      rh.kind, rh.check, RecordCheck(rh.length, rh.kind),
      PosBytes(tail, head), capacity_));
}

// ---- sizes and tasks ------------------------------------------------------------------

uint64_t QueueRing::QSize() const {
  const uint64_t head = h_->head.word.load(std::memory_order_seq_cst);
  const uint64_t tail = h_->tail.word.load(std::memory_order_seq_cst);
  return PosItems(tail, head);
}

bool QueueRing::Empty() const {
  const uint64_t head = h_->head.word.load(std::memory_order_seq_cst);
  const uint64_t tail = h_->tail.word.load(std::memory_order_seq_cst);
  return PosUnits(tail) == PosUnits(head);
}

bool QueueRing::Full() const {
  const uint64_t head = h_->head.word.load(std::memory_order_seq_cst);
  const uint64_t tail = h_->tail.word.load(std::memory_order_seq_cst);
  // Full when no record of the smallest value (a codec header and one
  // byte) fits, or maxsize items are queued.
  return !Fits(tail, head, RecordSize(8));
}

uint32_t QueueRing::unfinished_tasks() const {
  const uint32_t done = h_->tasks.done.load(std::memory_order_seq_cst);
  return PosCount(h_->tail.word.load(std::memory_order_seq_cst)) - done;
}

absl::Status QueueRing::TaskDone() {
  QueueTasks& t = h_->tasks;
  uint32_t done = t.done.load(std::memory_order_seq_cst);
  for (;;) {
    const uint32_t put = PosCount(h_->tail.word.load(std::memory_order_seq_cst));
    if (put == done) {
      return absl::FailedPreconditionError(
          "mp::JoinableQueue::TaskDone() called more times than there were "
          "items put");
    }
    if (t.done.compare_exchange_weak(done, done + 1,
                                     std::memory_order_seq_cst)) {
      break;
    }
  }
  if (t.join_waiters.load(std::memory_order_seq_cst) != 0) {
    FutexWake(&t.done, sync_internal::kWakeAll);
  }
  return absl::OkStatus();
}

absl::Status QueueRing::Join(absl::Duration timeout) {
  QueueTasks& t = h_->tasks;
  const Deadline deadline = Deadline::After(timeout);
  for (;;) {
    const uint32_t done = t.done.load(std::memory_order_seq_cst);
    t.join_waiters.fetch_add(1, std::memory_order_seq_cst);
    const uint32_t put =
        PosCount(h_->tail.word.load(std::memory_order_seq_cst));
    if (put == done) {
      t.join_waiters.fetch_sub(1, std::memory_order_relaxed);
      return absl::OkStatus();
    }
    const FutexResult fr = FutexWait(&t.done, done, deadline);
    t.join_waiters.fetch_sub(1, std::memory_order_relaxed);
    if (fr == FutexResult::kTimedOut) {
      const uint32_t left = unfinished_tasks();
      if (left == 0) return absl::OkStatus();
      return absl::DeadlineExceededError(absl::StrCat(
          "mp::JoinableQueue::Join: ", left, " tasks still unfinished"));
    }
  }
}

}  // namespace ipc_internal
}  // namespace mp
