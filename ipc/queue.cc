#include "ipc/queue.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ipc/internal/queue_ring.h"

namespace mp {
namespace ipc_internal {

absl::Status QueueNotCreatedError() {
  return absl::FailedPreconditionError(
      "mp::Queue: this handle was default-constructed; use Create() or "
      "Attach()");
}

absl::Status AttachQueue(const std::string& name,
                         std::shared_ptr<QueueRing>* ring) {
  absl::StatusOr<std::shared_ptr<QueueRing>> r = QueueRing::Attach(name);
  if (!r.ok()) return r.status();
  *ring = *std::move(r);
  return absl::OkStatus();
}

}  // namespace ipc_internal
}  // namespace mp
