// A spawn task runs `run` as a fresh process group, with `env` added to the
// worker's environment, in `cwd`, under `limits` (resource_limits.h). `run: "make all"`
// (a string) becomes
// {"/bin/sh", "-c", "make all"}; a list is the argv itself.
#include "backends/spawn/spawn_kind.h"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "backends/spawn/spawn.pb.h"
#include "core/artifacts/transfer.h"
#include "core/spec/fingerprint.h"

namespace drover::spawn {
namespace {

constexpr std::string_view kSpawnBackend = "backend spawn";

class CompiledSpawnTask : public spec::CompiledTask {
 public:
  bool shell = false;  // `run` was a string
  std::vector<spec::Template> argv;
  std::vector<std::pair<std::string, spec::Template>> env;
  spec::Template cwd;
  std::vector<spec::Template> artifacts;
  spec::TaskLimits limits;

  void Render(const spec::Instance& instance, spec::TaskSpec* ts) const override {
    ts->artifacts.reserve(artifacts.size());
    for (const spec::Template& a : artifacts) ts->artifacts.push_back(instance.Render(a));
    spec::TaskFingerprintV1Fields v1;
    v1.shell = shell;
    v1.argv.reserve(argv.size());
    for (const spec::Template& arg : argv) v1.argv.push_back(instance.Render(arg));
    v1.env.reserve(env.size());
    for (const auto& [name, value] : env) v1.env.emplace_back(name, instance.Render(value));
    v1.cwd = instance.Render(cwd);
    v1.limits = limits;
    ts->fingerprint = spec::TaskFingerprintV1(*ts, v1);

    if (shell && v1.argv.size() == 3) {
      ts->summary = v1.argv[2];
    } else {
      for (const std::string& arg : v1.argv) {
        if (!ts->summary.empty()) ts->summary += ' ';
        ts->summary += arg;
      }
    }
    SpawnTask task;
    for (std::string& arg : v1.argv) task.add_argv(std::move(arg));
    for (auto& [name, value] : v1.env) {
      EnvVar* var = task.add_env();
      var->set_name(std::move(name));
      var->set_value(std::move(value));
    }
    ts->cwd = v1.cwd;
    task.set_cwd(std::move(v1.cwd));
    if (!limits.empty()) {
      Limits* l = task.mutable_limits();
      if (limits.cpu) {
        l->set_cpu_seconds(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::seconds>(*limits.cpu).count()));
      }
      l->set_memory_bytes(limits.memory.value_or(0));
      l->set_files(limits.files.value_or(0));
      l->set_processes(limits.processes.value_or(0));
    }
    task.SerializeToString(&ts->payload);
  }
};

class SpawnTaskKind : public spec::TaskKind {
 public:
  std::vector<spec::TaskKey> Keys() const override {
    return {
        {"run", spec::KeyType::kArgv, false, {}, kSpawnBackend},
        {"env", spec::KeyType::kEnv, true, {}, kSpawnBackend},
        {"cwd", spec::KeyType::kText, true, "a directory", kSpawnBackend},
        // Files, not settings: `defaults` cannot hold them.
        {"artifacts", spec::KeyType::kOther, false, {}, kSpawnBackend},
        {"limits", spec::KeyType::kLimits, true, {}, kSpawnBackend},
    };
  }

  std::unique_ptr<spec::CompiledTask> Read(spec::TaskReader& r) const override {
    auto task = std::make_unique<CompiledSpawnTask>();
    std::vector<spec::Located> run;
    if (const std::optional<spec::Field> f = r.Own("run")) {
      r.Argv(*f, &task->shell, &run);
    } else {
      r.Error(r.where(), r.Ref() + " has no 'run' (the command to run)");
    }
    const std::optional<spec::RawEnv> env = r.Env("env");
    const spec::Located* cwd = r.Text("cwd");

    if (task->shell && !run.empty()) {
      task->argv.push_back(spec::Template::Literal("/bin/sh"));
      task->argv.push_back(spec::Template::Literal("-c"));
      task->argv.push_back(r.Compile(run.front()));
    } else {
      for (const spec::Located& arg : run) task->argv.push_back(r.Compile(arg));
    }
    if (env) {
      for (const auto& [name, value] : *env) task->env.emplace_back(name, r.Compile(value));
    }
    if (cwd != nullptr) task->cwd = r.Compile(*cwd);
    if (const std::optional<spec::Field> f = r.Own("artifacts")) {
      std::vector<spec::Located> paths = r.Strings(*f, "a path or glob");
      if (paths.size() > artifacts::kMaxFilesPerAttempt) {
        r.Error(f->value_pos(), "'artifacts'" + r.Context() + " lists more than " +
                                    std::to_string(artifacts::kMaxFilesPerAttempt) + " paths");
      }
      for (const spec::Located& path : paths) {
        if (std::optional<std::string> bad = artifacts::BadArtifactPath(path.text)) {
          r.Error(path.where, *bad + r.Context());
          continue;
        }
        spec::Template compiled = r.Compile(path);
        r.CheckEachValue(compiled, path.where, [](std::string_view p) {
          return artifacts::BadArtifactPath(p);
        });
        task->artifacts.push_back(std::move(compiled));
      }
    }
    task->limits = r.Limits("limits");
    return task;
  }
};

}  // namespace

std::unique_ptr<spec::TaskKind> MakeSpawnTaskKind() { return std::make_unique<SpawnTaskKind>(); }

}  // namespace drover::spawn
