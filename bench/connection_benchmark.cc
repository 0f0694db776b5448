// mp::Connection against a raw socketpair (C, same binary) and, through
// bench/comparisons/ipc.py, against Python's multiprocessing.Pipe.
//
//   bazel run -c opt //bench:connection_benchmark
//
// Every case forks an echo (or sink) child; the child exits at EOF and is
// reaped before the case returns. The mp ends are set up as `mp::Pipe()`
// sets up its ends (read-ahead on; the default spin-then-block receive, see
// `Connection::set_spin()`); the raw C peer is a plain blocking ping-pong.
// MP_BENCH_SPIN_US=N overrides the mp ends' spin budget (0: block at once).
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>

#include "bench/raw_peer.h"
#include "benchmark/benchmark.h"
#include "ipc/connection.h"
#include "process/fd.h"

namespace {

bool Smoke() { return std::getenv("MP_BENCH_SMOKE") != nullptr; }

using mp::bench::ForkPeer;
using mp::bench::RawReadExact;
using mp::bench::RawWriteAll;
using mp::bench::Reap;

// The mp ends of every case: as mp::Pipe() makes them, with the spin budget
// of MP_BENCH_SPIN_US when set.
mp::Connection PipeEnd(mp::UniqueFd fd) {
  mp::Connection conn(std::move(fd));
  conn.set_read_ahead(true);
  if (const char* us = std::getenv("MP_BENCH_SPIN_US")) {
    conn.set_spin(absl::Microseconds(std::atoi(us)));
  }
  return conn;
}

// ---- small-message round trips ------------------------------------------------

void BM_RawSocketpairRoundTrip(benchmark::State& state) {
  auto [fd, pid] = ForkPeer([](mp::UniqueFd c) {
    char buf[8];
    while (RawReadExact(c.get(), buf, 8) && RawWriteAll(c.get(), buf, 8)) {
    }
  });
  char buf[8] = "1234567";
  for (auto _ : state) {
    if (!RawWriteAll(fd.get(), buf, 8) || !RawReadExact(fd.get(), buf, 8)) {
      state.SkipWithError("raw ping-pong failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  fd.reset();
  Reap(pid);
}
BENCHMARK(BM_RawSocketpairRoundTrip)->UseRealTime();

void BM_PipeRoundTripBytes(benchmark::State& state) {
  auto [fd, pid] = ForkPeer([](mp::UniqueFd c) {
    mp::Connection conn = PipeEnd(std::move(c));
    std::string buf;
    while (conn.RecvBytesInto(&buf).ok() && conn.SendBytes(buf).ok()) {
    }
  });
  mp::Connection conn = PipeEnd(std::move(fd));
  const std::string msg = "1234567";  // 8 bytes with the NUL below
  std::string payload(msg.data(), 8);
  std::string buf;
  for (auto _ : state) {
    if (!conn.SendBytes(payload).ok() || !conn.RecvBytesInto(&buf).ok()) {
      state.SkipWithError("round trip failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  conn.Close().IgnoreError();
  Reap(pid);
}
BENCHMARK(BM_PipeRoundTripBytes)->UseRealTime();

// The same value Python's benchmark sends: (1, "abc", 2.0).
using Small = std::tuple<int64_t, std::string, double>;

void BM_PipeRoundTripTyped(benchmark::State& state) {
  auto [fd, pid] = ForkPeer([](mp::UniqueFd c) {
    mp::Connection conn = PipeEnd(std::move(c));
    while (true) {
      absl::StatusOr<Small> v = conn.Recv<Small>();
      if (!v.ok() || !conn.Send(*v).ok()) break;
    }
  });
  mp::Connection conn = PipeEnd(std::move(fd));
  const Small value{1, "abc", 2.0};
  for (auto _ : state) {
    if (!conn.Send(value).ok()) {
      state.SkipWithError("send failed");
      break;
    }
    absl::StatusOr<Small> back = conn.Recv<Small>();
    if (!back.ok()) {
      state.SkipWithError("recv failed");
      break;
    }
    benchmark::DoNotOptimize(back);
  }
  state.SetItemsProcessed(state.iterations());
  conn.Close().IgnoreError();
  Reap(pid);
}
BENCHMARK(BM_PipeRoundTripTyped)->UseRealTime();

// ---- bulk transfer: 1 MiB messages, one way, acknowledged at the end --------

size_t BulkSize() { return Smoke() ? 4096 : size_t{1} << 20; }

void BM_RawSocketpair1MiB(benchmark::State& state) {
  const size_t size = BulkSize();
  auto [fd, pid] = ForkPeer([size](mp::UniqueFd c) {
    std::string buf(size, '\0');
    char tag;
    // Each message: a tag byte ('m' = data follows, 'e' = ack wanted).
    while (RawReadExact(c.get(), &tag, 1)) {
      if (tag == 'e') {
        if (!RawWriteAll(c.get(), "k", 1)) break;
        continue;
      }
      if (!RawReadExact(c.get(), &buf[0], size)) break;
    }
  });
  std::string data(1 + size, 'x');
  data[0] = 'm';
  for (auto _ : state) {
    if (!RawWriteAll(fd.get(), data.data(), data.size())) {
      state.SkipWithError("write failed");
      break;
    }
  }
  char ack;
  if (!RawWriteAll(fd.get(), "e", 1) || !RawReadExact(fd.get(), &ack, 1)) {
    state.SkipWithError("ack failed");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
  fd.reset();
  Reap(pid);
}
BENCHMARK(BM_RawSocketpair1MiB)->UseRealTime();

void BM_Pipe1MiB(benchmark::State& state) {
  const size_t size = BulkSize();
  auto [fd, pid] = ForkPeer([](mp::UniqueFd c) {
    mp::Connection conn = PipeEnd(std::move(c));
    std::string buf;
    while (conn.RecvBytesInto(&buf).ok()) {
      if (buf.empty() && !conn.SendBytes("k").ok()) break;  // ack request
    }
  });
  mp::Connection conn = PipeEnd(std::move(fd));
  std::string msg(size, 'x');
  for (auto _ : state) {
    if (!conn.SendBytes(msg).ok()) {
      state.SkipWithError("send failed");
      break;
    }
  }
  if (!conn.SendBytes("").ok() || !conn.RecvBytes().ok()) {
    state.SkipWithError("ack failed");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
  conn.Close().IgnoreError();
  Reap(pid);
}
BENCHMARK(BM_Pipe1MiB)->UseRealTime();

}  // namespace
