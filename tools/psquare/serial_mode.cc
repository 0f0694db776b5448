// --mode=serial: the baseline, one number after another in this process.

#include "absl/status/status.h"
#include "tools/psquare/mode.h"

namespace mp {
namespace psquare {
namespace {

absl::Status RunSerial(const Config& config) {
  for (int x = 0; x < config.n; ++x) SquareWork(x, config.sleep);
  return absl::OkStatus();
}

}  // namespace

PSQUARE_MODE(serial, "one number after another, in this process", RunSerial);

}  // namespace psquare
}  // namespace mp
