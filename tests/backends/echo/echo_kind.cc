// The echo backend's task kind: one key, `text`.
#include <memory>
#include <string>
#include <vector>

#include "core/spec/task_kind.h"
#include "tests/backends/echo/echo.pb.h"
#include "tests/backends/echo/echo_backend.h"

namespace drover::echo {
namespace {

// One task, read: its text, with holes for the matrix values.
class CompiledEchoTask : public spec::CompiledTask {
 public:
  explicit CompiledEchoTask(spec::Template text) : text_(std::move(text)) {}

  // Every instance gets its own payload; the loader gives it the generic
  // fingerprint (the payload's bytes and the fields every task has).
  void Render(const spec::Instance& instance, spec::TaskSpec* ts) const override {
    EchoTask task;
    task.set_text(instance.Render(text_));
    ts->summary = "echo " + task.text();
    task.SerializeToString(&ts->payload);
  }

 private:
  spec::Template text_;
};

class EchoTaskKind : public spec::TaskKind {
 public:
  std::vector<spec::TaskKey> Keys() const override {
    return {{"text", spec::KeyType::kText, /*setting=*/true, "the text to print",
             "backend echo"}};
  }

  std::unique_ptr<spec::CompiledTask> Read(spec::TaskReader& r) const override {
    const spec::Located* text = r.Text("text");
    if (text == nullptr) {
      r.Error(r.where(), r.Ref() + " has backend echo but no 'text' (the text to print)");
      return nullptr;
    }
    return std::make_unique<CompiledEchoTask>(r.Compile(*text));
  }
};

}  // namespace

std::unique_ptr<spec::TaskKind> MakeEchoTaskKind() { return std::make_unique<EchoTaskKind>(); }

}  // namespace drover::echo
