// Benchmarks of //shm: writing a SharedMemory segment vs memcpy into private
// memory (both faulted in first); the first write into a fresh segment,
// plain or pre-faulted at creation; and what creating + first-touching a
// segment costs plain, pre-faulted (MADV_POPULATE_WRITE) and with huge pages
// requested (MADV_HUGEPAGE; honoured only if the kernel's shmem_enabled
// allows it — the label says whether it was).
// 256 MiB; MP_BENCH_SMOKE=1 uses 4 MiB.
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "benchmark/benchmark.h"
#include "shm/shared_memory.h"

namespace {

size_t Size() { return std::getenv("MP_BENCH_SMOKE") ? (4u << 20) : (256u << 20); }

// A source buffer, faulted in and non-zero.
char* Source() {
  static char* src = [] {
    char* p = static_cast<char*>(std::malloc(Size()));
    std::memset(p, 0x5a, Size());
    return p;
  }();
  return src;
}

void BM_SharedMemoryWrite(benchmark::State& state) {
  const size_t n = Size();
  absl::StatusOr<mp::SharedMemory> shm = mp::SharedMemory::Create(n);
  if (!shm.ok()) {
    state.SkipWithError(shm.status().ToString().c_str());
    return;
  }
  char* src = Source();
  std::memcpy(shm->data(), src, n);  // fault in
  for (auto _ : state) {
    std::memcpy(shm->data(), src, n);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n);
  state.SetItemsProcessed(state.iterations() * n);  // items = bytes
}
BENCHMARK(BM_SharedMemoryWrite)->UseRealTime();

void BM_MemcpyPrivate(benchmark::State& state) {
  const size_t n = Size();
  std::unique_ptr<char[]> dst(new char[n]);
  char* src = Source();
  std::memcpy(dst.get(), src, n);  // fault in
  for (auto _ : state) {
    std::memcpy(dst.get(), src, n);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_MemcpyPrivate)->UseRealTime();

// The first write into a fresh segment (creation not timed): with
// `populate` the pages were faulted in at creation, so the writer runs at
// memory speed; without, it takes every page fault.
void BM_SharedMemoryFirstWrite(benchmark::State& state, bool populate) {
  const size_t n = Size();
  mp::SharedMemory::Options o;
  o.populate = populate;
  char* src = Source();
  for (auto _ : state) {
    state.PauseTiming();
    absl::StatusOr<mp::SharedMemory> shm = mp::SharedMemory::Create(n, "", o);
    if (!shm.ok()) {
      state.SkipWithError(shm.status().ToString().c_str());
      return;
    }
    state.ResumeTiming();
    std::memcpy(shm->data(), src, n);
    benchmark::ClobberMemory();
    state.PauseTiming();
    *shm = mp::SharedMemory();  // unmap and unlink, untimed
    state.ResumeTiming();
  }
  state.SetBytesProcessed(state.iterations() * n);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK_CAPTURE(BM_SharedMemoryFirstWrite, plain, false)->UseRealTime();
BENCHMARK_CAPTURE(BM_SharedMemoryFirstWrite, populate, true)->UseRealTime();

// Create + one full write (page faults included), by creation option:
// plain, populate (pre-faulted at creation), huge_pages (requested).
void BM_SharedMemoryCreateAndWrite(benchmark::State& state, int mode) {
  const size_t n = Size();
  mp::SharedMemory::Options o;
  o.populate = mode == 1;
  o.huge_pages = mode == 2;
  char* src = Source();
  bool huge = false;
  for (auto _ : state) {
    absl::StatusOr<mp::SharedMemory> shm = mp::SharedMemory::Create(n, "", o);
    if (!shm.ok()) {
      state.SkipWithError(shm.status().ToString().c_str());
      return;
    }
    huge = shm->huge_pages();
    std::memcpy(shm->data(), src, n);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n);
  state.SetItemsProcessed(state.iterations() * n);
  if (o.huge_pages) {
    state.SetLabel(huge ? "huge pages in use" : "huge pages unavailable (fell back)");
  }
}
BENCHMARK_CAPTURE(BM_SharedMemoryCreateAndWrite, plain, 0)->UseRealTime();
BENCHMARK_CAPTURE(BM_SharedMemoryCreateAndWrite, populate, 1)->UseRealTime();
BENCHMARK_CAPTURE(BM_SharedMemoryCreateAndWrite, huge_pages, 2)->UseRealTime();

}  // namespace
