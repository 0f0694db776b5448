// --mode=pool: an mp::Pool of CpuCount() workers maps the numbers (the
// tutorials' `with Pool() as p: p.map(square, range(n))`), chunksize 1 so
// each number is its own task; the results come back in order.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "pool/pool.h"
#include "tools/psquare/mode.h"

namespace mp {
namespace psquare {
namespace {

absl::Status RunPool(const Config& config) {
  if (config.start_method != StartMethod::kFork) {
    return absl::UnimplementedError(
        "mode pool supports --start_method=fork only (mp::Pool's limit)");
  }
  std::vector<int> xs(config.n);
  std::iota(xs.begin(), xs.end(), 0);
  PoolOptions options;
  options.processes = std::max(1, std::min(config.n, CpuCount()));
  Pool pool(options);
  if (!pool.status().ok()) return pool.status();
  absl::Duration sleep = config.sleep;
  absl::StatusOr<std::vector<int64_t>> squares =
      pool.Map([sleep](int x) { return SquareWork(x, sleep); }, xs, 1);
  if (!squares.ok()) return squares.status();
  PrintResults(*squares);
  std::fflush(stdout);
  pool.Close();
  return pool.Join();
}

}  // namespace

PSQUARE_MODE(pool, "an mp::Pool maps the numbers (fork only)", RunPool);

}  // namespace psquare
}  // namespace mp
