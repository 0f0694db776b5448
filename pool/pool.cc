#include "pool/pool.h"

#include "absl/strings/str_cat.h"
#include "pool/internal/fork_transport.h"

namespace mp {

namespace pool_internal {

absl::StatusOr<std::shared_ptr<Core>> MakeProcessCore(
    int processes, std::function<absl::Status()> initializer,
    int max_tasks_per_child, const std::string& start_method, int retries,
    int max_inflight) {
  if (!start_method.empty() && start_method != "fork") {
    return absl::UnimplementedError(absl::StrCat(
        "start method \"", start_method,
        "\" is not supported by the pool yet; use \"fork\""));
  }
  if (processes < 0) {
    return absl::InvalidArgumentError("processes must be >= 0");
  }
  if (max_tasks_per_child < 0) {
    return absl::InvalidArgumentError("max_tasks_per_child must be >= 0");
  }
  if (retries < 0) return absl::InvalidArgumentError("retries must be >= 0");
  if (max_inflight < 0) {
    return absl::InvalidArgumentError("max_inflight_per_worker must be >= 0");
  }
  CoreOptions options;
  options.processes = processes == 0 ? CpuCount() : processes;
  options.max_tasks_per_child = max_tasks_per_child;
  options.retries = retries;
  options.max_inflight_per_worker = max_inflight == 0 ? 128 : max_inflight;
  auto table = std::make_unique<FunctionTable>();
  ForkTransportOptions topts;
  topts.initializer = std::move(initializer);
  absl::StatusOr<std::unique_ptr<ForkTransport>> transport =
      ForkTransport::Create(table.get(), std::move(topts));
  if (!transport.ok()) return transport.status();
  auto core = std::make_shared<Core>(options, std::move(table),
                                     *std::move(transport));
  absl::Status started = core->Start();
  if (!started.ok()) return started;
  return core;
}

}  // namespace pool_internal

Pool::Pool(PoolOptions options) {
  processes_ = options.processes == 0 ? CpuCount() : options.processes;
  absl::StatusOr<std::shared_ptr<pool_internal::Core>> core =
      pool_internal::MakeProcessCore(options.processes,
                                     std::move(options.initializer),
                                     options.max_tasks_per_child,
                                     options.start_method, options.retries,
                                     options.max_inflight_per_worker);
  if (core.ok()) {
    core_ = *std::move(core);
  } else {
    status_ = core.status();
  }
}

Pool::~Pool() {
  if (core_) {
    core_->Terminate();
    core_->Join().IgnoreError();
  }
}

void Pool::Close() {
  if (core_) core_->Close();
}

void Pool::Terminate() {
  if (core_) core_->Terminate();
}

absl::Status Pool::Join() {
  if (!core_) return status_;
  return core_->Join();
}

std::vector<int64_t> Pool::WorkerPids() const {
  return core_ ? core_->WorkerPids() : std::vector<int64_t>();
}

int64_t Pool::workers_started() const {
  return core_ ? core_->workers_started() : 0;
}

}  // namespace mp
