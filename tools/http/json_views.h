// The JSON the HTTP API answers with (docs/api.md), made from the wire
// messages of the coordinator's STATUS-REPLY, WORKERS-REPLY, PIPELINES-REPLY
// and LOGS. Plain
// conversions; field names are snake_case and times are Unix milliseconds.
#ifndef DROVER_TOOLS_HTTP_JSON_VIEWS_H_
#define DROVER_TOOLS_HTTP_JSON_VIEWS_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/protocol/drover.pb.h"

namespace drover::http {

nlohmann::json CountsJson(const wire::Counts& c);
// The "task" events of a TASK-EVENT, in order: its head, then each entry
// of `more` (an entry with a `more` of its own is malformed and left out;
// docs/protocol.md, TASK-EVENT).
std::vector<nlohmann::json> TaskEventsJson(const wire::TaskEvent& ev);
// A job without its tasks: state, counts, progress (finished / total),
// submitted, finished, duration_ms (until `now_ms` while it runs).
nlohmann::json JobJson(const wire::JobStatus& js, int64_t now_ms);
nlohmann::json TaskJson(const wire::TaskStatus& ts);
nlohmann::json GroupJson(const wire::TaskGroup& g);
nlohmann::json WorkerJson(const wire::WorkerInfo& w);
// {"dir": ..., "pipelines": [...]}: GET /api/v1/pipelines and `drover
// pipelines --output json` (docs/api.md).
nlohmann::json PipelinesJson(const wire::PipelinesReply& reply);
// A JSON error body: {"error": {"status": 404, "message": "..."}}.
nlohmann::json ErrorJson(int status, const std::string& message);

}  // namespace drover::http

#endif  // DROVER_TOOLS_HTTP_JSON_VIEWS_H_
