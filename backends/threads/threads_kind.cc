// A threads task calls a function in the worker's process: it has no
// command, no environment and no directory of its own. `defaults`' env and
// cwd are for spawn tasks and do not apply.
#include "backends/threads/threads_kind.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/threads/threads.pb.h"
#include "core/spec/fingerprint.h"

namespace drover::threads {
namespace {

// Where fn and args apply, for "only applies to" (the fork kind says the same).
constexpr std::string_view kFnBackends = "backend threads (and fork tasks on a cow pool)";

class CompiledThreadsTask : public spec::CompiledTask {
 public:
  std::string fn;
  std::optional<spec::JsonTemplate> args;
  std::vector<std::string> plugins;

  void Render(const spec::Instance& instance, spec::TaskSpec* ts) const override {
    spec::TaskFingerprintV1Fields v1;
    v1.fn = fn;
    v1.args_json = instance.Render(args);
    ts->fingerprint = spec::TaskFingerprintV1(*ts, v1);
    if (AssignConstant(ts)) return;
    ts->summary = Summary(v1.args_json);
    ts->payload = Payload(std::move(v1.args_json));
  }

  // Once Read has set fn, args and plugins: the summary and payload of
  // every instance when args does not vary with the matrix, made once
  // instead of once an instance (docs/benchmarks.md, session 20).
  void Seal() {
    if (!args || !args->constant()) return;
    SetConstant(Summary(args->text()), Payload(args->text()));
  }

 private:
  std::string Summary(const std::string& args_json) const {
    return fn + "(" + args_json + ")";
  }
  std::string Payload(std::string args_json) const {
    ThreadsTask task;
    task.set_fn(fn);
    task.set_args_json(std::move(args_json));
    for (const std::string& plugin : plugins) task.add_plugins(plugin);
    return task.SerializeAsString();
  }
};

class ThreadsTaskKind : public spec::TaskKind {
 public:
  std::vector<spec::TaskKey> Keys() const override {
    return {
        {"fn", spec::KeyType::kFunctionName, true, {}, kFnBackends},
        {"args", spec::KeyType::kOther, false, {}, kFnBackends},
    };
  }

  std::string_view DoesNotApply(std::string_view key) const override {
    return key == "run" ? "it calls the function named by 'fn'" : "";
  }

  std::unique_ptr<spec::CompiledTask> Read(spec::TaskReader& r) const override {
    auto task = std::make_unique<CompiledThreadsTask>();
    const spec::NameRef* fn = r.Name("fn");
    if (fn == nullptr) {
      r.Error(r.where(), r.Ref() + " has backend threads but no 'fn' (the function to call)");
    } else if (fn->ok) {
      task->fn = fn->name;
    }
    const std::optional<spec::Field> args = r.Own("args");
    task->args = args ? r.Json(*args) : spec::JsonTemplate::Literal("null");
    if (args) r.NoteServiceRefs(*task->args, args->value_pos());
    task->plugins = r.plugins();
    task->Seal();
    return task;
  }
};

}  // namespace

std::unique_ptr<spec::TaskKind> MakeThreadsTaskKind() {
  return std::make_unique<ThreadsTaskKind>();
}

}  // namespace drover::threads
