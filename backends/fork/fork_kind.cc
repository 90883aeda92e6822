// A fork task sends a message to a warm process of its pool, or, on a cow
// pool, has one call a function. The processes' env and cwd are the
// pool's.
#include "backends/fork/fork_kind.h"

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/fork/fork.pb.h"
#include "core/spec/fingerprint.h"
#include "core/spec/text.h"

namespace drover::fork {
namespace {

// Where fn/args and pool/message apply, for "only applies to".
constexpr std::string_view kFnBackends = "backend threads (and fork tasks on a cow pool)";
constexpr std::string_view kForkBackend = "backend fork";

class CompiledForkTask : public spec::CompiledTask {
 public:
  std::string pool;
  // The job's declaration of `pool`; unset for a worker's pool.
  std::optional<spec::PoolDecl> decl;
  uint64_t pool_fingerprint = 0;  // of `decl`; 0 for a worker's pool
  std::string fn;
  std::optional<spec::JsonTemplate> args;
  std::optional<spec::JsonTemplate> message;
  std::vector<std::string> plugins;

  void Render(const spec::Instance& instance, spec::TaskSpec* ts) const override {
    spec::TaskFingerprintV1Fields v1;
    v1.fn = fn;
    v1.args_json = instance.Render(args);
    v1.pool = pool;
    v1.pool_fingerprint = pool_fingerprint;
    v1.message_json = instance.Render(message);
    ts->fingerprint = spec::TaskFingerprintV1(*ts, v1);
    if (!decl) ts->worker_pool = pool;
    if (AssignConstant(ts)) return;
    ts->summary = Summary(v1.message_json, v1.args_json);
    ts->payload = Payload(std::move(v1.message_json), std::move(v1.args_json));
  }

  // Once Read has set the rest: the summary and payload (with the pool's
  // declaration) of every instance when neither args nor message varies
  // with the matrix, made once instead of once an instance.
  void Seal() {
    if ((args && !args->constant()) || (message && !message->constant())) return;
    const std::string a = args ? args->text() : std::string();
    const std::string m = message ? message->text() : std::string();
    SetConstant(Summary(m, a), Payload(m, a));
  }

 private:
  std::string Summary(const std::string& message_json,
                      const std::string& args_json) const {
    return "pool " + pool + ": " +
           (fn.empty() ? message_json : fn + "(" + args_json + ")");
  }

  std::string Payload(std::string message_json, std::string args_json) const {
    ForkTask task;
    task.set_pool(pool);
    if (decl) {
      Pool* p = task.mutable_pool_spec();
      p->set_name(decl->name);
      p->set_mode(decl->mode);
      for (const std::string& arg : decl->command) p->add_command(arg);
      p->set_instances(static_cast<uint32_t>(decl->instances));
      p->set_max_tasks(static_cast<uint32_t>(decl->max_tasks));
      p->set_idle_timeout_ms(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(decl->idle_timeout).count()));
      for (const auto& [name, value] : decl->env) {
        EnvVar* var = p->add_env();
        var->set_name(name);
        var->set_value(value);
      }
      p->set_cwd(decl->cwd);
    }
    task.set_message_json(std::move(message_json));
    task.set_fn(fn);
    task.set_args_json(std::move(args_json));
    for (const std::string& plugin : plugins) task.add_plugins(plugin);
    return task.SerializeAsString();
  }
};

class ForkTaskKind : public spec::TaskKind {
 public:
  std::vector<spec::TaskKey> Keys() const override {
    return {
        {"pool", spec::KeyType::kPoolName, true, {}, kForkBackend},
        {"message", spec::KeyType::kOther, false, {}, kForkBackend},
        {"fn", spec::KeyType::kFunctionName, true, {}, kFnBackends},
        {"args", spec::KeyType::kOther, false, {}, kFnBackends},
    };
  }

  std::string_view DoesNotApply(std::string_view key) const override {
    return key == "run" ? "it sends its 'message' to a process of its 'pool'" : "";
  }

  std::unique_ptr<spec::CompiledTask> Read(spec::TaskReader& r) const override {
    std::unique_ptr<CompiledForkTask> task = ReadTask(r);
    task->Seal();
    return task;
  }

 private:
  std::unique_ptr<CompiledForkTask> ReadTask(spec::TaskReader& r) const {
    auto task = std::make_unique<CompiledForkTask>();
    const std::string context = r.Context();
    const std::optional<spec::Field> args = r.Own("args");
    const std::optional<spec::Field> message = r.Own("message");
    const spec::NameRef* own_fn = r.OwnName("fn");
    const spec::NameRef* fn = r.Name("fn");

    const spec::NameRef* pool = r.Name("pool");
    if (pool == nullptr) {
      r.Error(r.where(), r.Ref() +
                             " has backend fork but no 'pool' (the pool of processes to send "
                             "its message to)");
    }
    if (pool == nullptr || !pool->ok) {
      // Which of fn, args and message belong depends on the pool's mode;
      // still report what is wrong inside them.
      if (args) r.Json(*args);
      if (message) r.Json(*message);
      return task;
    }
    task->pool = pool->name;
    task->plugins = r.plugins();
    const std::string pool_ref = "pool " + spec::internal::Quoted(pool->name);
    const spec::PoolDecl* decl = r.FindPool(pool->name);
    if (decl == nullptr) {
      // A worker's pool (LoadOptions::undeclared_pools), of a mode we cannot
      // know: `fn` (and `args`) mean a cow pool, else the task sends its
      // `message`.
      if (fn != nullptr && fn->ok) task->fn = fn->name;
      if (fn != nullptr) task->args = args ? r.Json(*args) : spec::JsonTemplate::Literal("null");
      task->message = message ? r.Json(*message) : spec::JsonTemplate::Literal("null");
      return task;
    }
    task->decl = *decl;
    task->pool_fingerprint = decl->Fingerprint();
    if (decl->mode != "cow") {
      const std::string why = "; " + pool_ref + " is a process pool: send it a 'message'";
      if (own_fn != nullptr) {
        r.Error(own_fn->key,
                "'fn'" + context + " only applies to " + std::string(kFnBackends) + why);
      }
      if (args) {
        r.Error(args->key_pos(),
                "'args'" + context + " only applies to " + std::string(kFnBackends) + why);
      }
      task->message = message ? r.Json(*message) : spec::JsonTemplate::Literal("null");
      if (message) r.NoteServiceRefs(*task->message, message->value_pos());
      return task;
    }
    if (message) {
      r.Error(message->key_pos(), "'message'" + context + " does not apply to cow " + pool_ref +
                                      ": its processes call 'fn' with 'args'");
    }
    if (fn == nullptr) {
      r.Error(r.where(), r.Ref() + " uses cow " + pool_ref +
                             " but has no 'fn' (the function its processes call)");
    } else if (fn->ok) {
      task->fn = fn->name;
    }
    task->args = args ? r.Json(*args) : spec::JsonTemplate::Literal("null");
    if (args) r.NoteServiceRefs(*task->args, args->value_pos());
    return task;
  }
};

}  // namespace

std::unique_ptr<spec::TaskKind> MakeForkTaskKind() { return std::make_unique<ForkTaskKind>(); }

}  // namespace drover::fork
