// WorkerConfig: the YAML file of `drover worker --config FILE`
// (docs/operations.md, "Worker configuration").
//
//   name: w1
//   coordinator: tcp://coordinator:7700
//   slots: {spawn: 4, fork: 2, threads: 8}
//   prefetch: 4       # tasks of each backend held ready beyond its slots
//   labels: {zone: a, gpu: "no"}
//   drain_timeout: 30s
//   spool_dir: /var/lib/drover/spool
//   pools:            # the schema of a job spec's `pools:` (docs/spec.md)
//     sorter: {command: [node, fork_sort.js], instances: 2}
//   services:         # the schema of a job spec's `services:`
//     api: {command: [drover, serve, hello], instances: 2, listen: 127.0.0.1:8080}
//   plugins: [/usr/lib/drover/libmyfns.so]
//
// Every key is optional; unknown keys are errors with "did you mean". The
// pools and plugins are offered to every task the worker runs: a fork task
// naming a pool its job does not declare uses the worker's (the job's own
// declaration wins), and the threads backend and the cow zygote load the
// plugins at start. The services run as long as the worker does, for the
// tasks of jobs that name them `from: worker` (which a worker
// configuration itself may not say). Like job specs, it is read by core/spec (the only
// module that includes yaml-cpp), and every error is FILE:LINE:COL.
#ifndef DROVER_CORE_SPEC_WORKER_CONFIG_H_
#define DROVER_CORE_SPEC_WORKER_CONFIG_H_

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/clock.h"
#include "core/spec/job_spec.h"

namespace drover::spec {

struct WorkerConfig {
  std::string file;         // the path it was read from (as given)
  std::string name;         // empty: not set
  std::string coordinator;  // empty: not set
  std::map<std::string, int> slots;  // backend name -> slots (>= 0)
  std::optional<int> prefetch;       // WorkerOptions::prefetch
  std::map<std::string, std::string> labels;
  std::optional<Duration> drain_timeout;
  std::string spool_dir;    // empty: not set
  std::vector<PoolDecl> pools;       // in file order
  std::vector<ServiceDecl> services; // in file order; none is from_worker
  std::vector<std::string> plugins;  // in file order, as written
};

struct WorkerConfigResult {
  std::optional<WorkerConfig> config;  // set iff errors is empty
  std::vector<SpecError> errors;       // every error found, in file order
  bool ok() const { return errors.empty(); }
};

// Parses and checks `text` as if read from `file` (used in messages).
WorkerConfigResult LoadWorkerConfigString(std::string_view text, std::string file);
// Reads `path` and calls LoadWorkerConfigString. A missing or unreadable
// file is one error at line 0.
WorkerConfigResult LoadWorkerConfigFile(const std::filesystem::path& path);

}  // namespace drover::spec

#endif  // DROVER_CORE_SPEC_WORKER_CONFIG_H_
