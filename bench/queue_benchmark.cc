// Queue throughput between two processes: mp::Queue against
// Boost.Interprocess `message_queue` (same binary, same run) and Python's
// multiprocessing.Queue (bench/python/queue_bench.py).
//
// Each case forks one consumer process; the benchmark thread is the
// producer. An iteration puts a batch of values and waits until the
// consumer has taken them all, so the time covers the whole trip. Items are
// values, bytes are value bytes. Both queues hold about 1 MiB of messages
// and both get one untimed warm-up batch. Run it on a quiet machine: with
// two cores, anything else running puts the producer and the consumer on
// one core and the numbers measure the scheduler.
//
//   bazel run -c opt //bench:queue_benchmark
//   MP_BAZEL="bazel --output_base=..." bench/compare.py --area ipc

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "benchmark/benchmark.h"
#include "boost/interprocess/ipc/message_queue.hpp"
#include "ipc/queue.h"
#include "shm/shared_memory.h"

namespace {

bool Smoke() { return std::getenv("MP_BENCH_SMOKE") != nullptr; }
int64_t Batch() { return Smoke() ? 1000 : 100000; }

void Fail(benchmark::State& state, const std::string& what) {
  state.SkipWithError(what.c_str());
}

// A shared counter of values consumed (the consumer bumps it per batch).
struct Progress {
  std::atomic<int64_t> consumed{0};
};

void WaitConsumed(Progress* p, int64_t target) {
  while (p->consumed.load(std::memory_order_acquire) < target) {
  }
}

template <typename T>
T MakeValue(int64_t size);
template <>
int64_t MakeValue<int64_t>(int64_t) {
  return 42;
}
template <>
std::string MakeValue<std::string>(int64_t size) {
  return std::string(static_cast<size_t>(size), 'v');
}

// ---- mp::Queue ----------------------------------------------------------------------

template <typename T>
void BM_QueuePutGet(benchmark::State& state) {
  const int64_t size = state.range(0);
  mp::QueueOptions options;
  options.capacity = 1 << 20;
  absl::StatusOr<mp::Queue<T>> q = mp::Queue<T>::Create(options);
  if (!q.ok()) return Fail(state, q.status().ToString());
  absl::StatusOr<mp::SharedMemory> shm =
      mp::SharedMemory::Create(sizeof(Progress));
  if (!shm.ok()) return Fail(state, shm.status().ToString());
  auto* progress = new (shm->data()) Progress();
  const int64_t batch = Batch();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    T value{};
    int64_t n = 0;
    for (;;) {
      if (!q->GetInto(&value).ok()) _exit(1);
      if constexpr (std::is_same<T, int64_t>::value) {
        if (value == -1) _exit(0);
      } else {
        if (value.empty()) _exit(0);
      }
      if (++n % batch == 0) {
        progress->consumed.store(n, std::memory_order_release);
      }
    }
  }
  const T value = MakeValue<T>(size);
  // Warm-up, untimed: one batch, so the ring's pages are mapped on both
  // sides and the consumer runs before timing starts (as for Boost below).
  for (int64_t i = 0; i < batch; ++i) {
    if (!q->Put(value).ok()) return Fail(state, "Put failed");
  }
  int64_t sent = batch;
  WaitConsumed(progress, sent);
  for (auto _ : state) {
    for (int64_t i = 0; i < batch; ++i) {
      if (!q->Put(value).ok()) return Fail(state, "Put failed");
    }
    sent += batch;
    WaitConsumed(progress, sent);
  }
  T stop{};
  if constexpr (std::is_same<T, int64_t>::value) stop = -1;
  (void)q->Put(stop);
  int status = 0;
  waitpid(pid, &status, 0);
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetBytesProcessed(state.iterations() * batch * size);
}
BENCHMARK_TEMPLATE(BM_QueuePutGet, int64_t)->Arg(8)->UseRealTime();
BENCHMARK_TEMPLATE(BM_QueuePutGet, std::string)->Arg(1024)->UseRealTime();

// ---- Boost.Interprocess message_queue --------------------------------------------

void BM_BoostMessageQueue(benchmark::State& state) {
  namespace bip = boost::interprocess;
  const int64_t size = state.range(0);
  const std::string name = "mp_bench_bmq_" + std::to_string(getpid());
  bip::message_queue::remove(name.c_str());
  // Same ring budget as the mp::Queue case: 1 MiB of messages.
  const size_t max_msgs = std::max<size_t>(16, (1 << 20) / (size + 16));
  bip::message_queue mq(bip::create_only, name.c_str(), max_msgs, size);
  absl::StatusOr<mp::SharedMemory> shm =
      mp::SharedMemory::Create(sizeof(Progress));
  if (!shm.ok()) return Fail(state, shm.status().ToString());
  auto* progress = new (shm->data()) Progress();
  const int64_t batch = Batch();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    std::string buf(static_cast<size_t>(size), '\0');
    int64_t n = 0;
    for (;;) {
      bip::message_queue::size_type got = 0;
      unsigned priority = 0;
      mq.receive(&buf[0], buf.size(), got, priority);
      if (got == 0) _exit(0);
      if (++n % batch == 0) {
        progress->consumed.store(n, std::memory_order_release);
      }
    }
  }
  const std::string value(static_cast<size_t>(size), 'v');
  // Warm-up, untimed, as for mp::Queue above.
  for (int64_t i = 0; i < batch; ++i) mq.send(value.data(), value.size(), 0);
  int64_t sent = batch;
  WaitConsumed(progress, sent);
  for (auto _ : state) {
    for (int64_t i = 0; i < batch; ++i) mq.send(value.data(), value.size(), 0);
    sent += batch;
    WaitConsumed(progress, sent);
  }
  mq.send(value.data(), 0, 0);
  int status = 0;
  waitpid(pid, &status, 0);
  bip::message_queue::remove(name.c_str());
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetBytesProcessed(state.iterations() * batch * size);
}
BENCHMARK(BM_BoostMessageQueue)->Arg(8)->Arg(1024)->UseRealTime();

// ---- one process: the cost of a Put+Get pair without a second core -------------------

void BM_QueuePutGetSameProcess(benchmark::State& state) {
  absl::StatusOr<mp::Queue<int64_t>> q = mp::Queue<int64_t>::Create();
  if (!q.ok()) return Fail(state, q.status().ToString());
  int64_t v = 0;
  for (auto _ : state) {
    (void)q->Put(v);
    (void)q->GetInto(&v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_QueuePutGetSameProcess);

}  // namespace
