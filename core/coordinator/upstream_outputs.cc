#include "core/coordinator/upstream_outputs.h"

#include <unordered_map>

#include "core/spec/outputs.h"

namespace drover {

Status RenderUpstreamOutputs(const JobState& job, uint32_t t, spec::TaskSpec* out) {
  std::unordered_map<uint32_t, Outputs> parsed;
  auto outputs_of = [&](uint32_t index) -> const Outputs* {
    if (index >= job.size()) return nullptr;
    auto it = parsed.find(index);
    if (it == parsed.end()) {
      it =
          parsed
              .emplace(index, OutputsFromJson(job.OutputsJson(index)).value_or(Outputs()))
              .first;
    }
    return &it->second;
  };
  DROVER_RETURN_IF_ERROR(spec::RenderWithOutputs(job.spec.tasks[t], outputs_of, out));
  // The payload travels in a DISPATCH body (docs/protocol.md: 4 MiB); what
  // the outputs add is only known now.
  if (out->payload.size() > kMaxRenderedPayload) {
    return FailedPrecondition("its payload with the upstream outputs it refers to is " +
                              std::to_string(out->payload.size()) +
                              " bytes, more than the cap of " +
                              std::to_string(kMaxRenderedPayload) + " bytes");
  }
  return Status::Ok();
}

}  // namespace drover
