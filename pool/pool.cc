#include "pool/pool.h"

#include "absl/strings/str_cat.h"
#include "process/status_macros.h"
#include "pool/internal/fork_transport.h"
#include "pool/internal/remote_worker.h"

namespace mp {

namespace pool_internal {

absl::StatusOr<std::shared_ptr<Core>> MakeProcessCore(
    int processes, std::function<absl::Status()> initializer,
    RemoteInitializer remote_initializer, int max_tasks_per_child,
    StartMethod method, int retries, int max_inflight) {
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
  if (method == StartMethod::kFork) {
    topts.initializer = std::move(initializer);
  } else {
    if (initializer && !remote_initializer.set) {
      return absl::InvalidArgumentError(absl::StrCat(
          "with the ", StartMethodName(method),
          " start method the initializer must be a registered function set "
          "with PoolOptions::SetInitializer() (a std::function cannot be "
          "sent to a worker)"));
    }
    if (!remote_initializer.error.ok()) return remote_initializer.error;
    MP_ASSIGN_OR_RETURN(
        topts.launcher,
        RemoteLauncher::Create(method, std::move(remote_initializer),
                               topts.max_payload));
  }
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
  StartMethod method = StartMethod::kFork;
  if (!options.start_method.empty()) {
    absl::StatusOr<StartMethod> parsed = ParseStartMethod(options.start_method);
    if (!parsed.ok()) {
      status_ = parsed.status();
      return;
    }
    method = *parsed;
  }
  remote_ = method != StartMethod::kFork;
  absl::StatusOr<std::shared_ptr<pool_internal::Core>> core =
      pool_internal::MakeProcessCore(
          options.processes, std::move(options.initializer),
          std::move(options.remote_initializer), options.max_tasks_per_child,
          method, options.retries, options.max_inflight_per_worker);
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
