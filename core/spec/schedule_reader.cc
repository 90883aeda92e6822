// YamlReader, part seven: a scheduled pipeline's top-level keys,
// `schedule`, `timezone`, `concurrency` and `catchup` (docs/spec.md,
// "Schedules"). The cron line and the zone are checked here with
// core/sched, so a bad one is reported at its FILE:LINE:COL, pointing at
// the field at fault.
#include "core/sched/cron.h"
#include "core/sched/pipeline.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec::internal {

void YamlReader::ReadSchedule(const std::optional<Entry>& schedule,
                              const std::optional<Entry>& timezone,
                              const std::optional<Entry>& concurrency,
                              const std::optional<Entry>& catchup, RawJob* job) {
  if (!schedule) {
    for (const auto* e : {&timezone, &concurrency, &catchup}) {
      if (*e)
        Error((*e)->key_pos,
              "'" + (*e)->key + "' needs 'schedule' (a scheduled pipeline)");
    }
    return;
  }
  ScheduleDecl decl;
  decl.line = schedule->key_pos.line;
  decl.column = schedule->key_pos.column;
  bool ok = true;
  if (auto text = Scalar(*schedule, "", "a cron line such as \"0 3 * * *\" or @daily")) {
    auto parsed = sched::Schedule::Parse(*text);
    if (auto* e = std::get_if<sched::CronError>(&parsed)) {
      // Point at the field: past the opening quote of a quoted scalar.
      Pos at = schedule->value_pos;
      if (schedule->value.IsScalar() && text->find('\n') == std::string::npos) {
        at.column += static_cast<int>(e->column) + (schedule->value.IsPlain() ? 0 : 1);
      }
      Error(at, "'schedule': " + e->message);
      ok = false;
    } else if (!std::get<sched::Schedule>(parsed).Next(
                   WallTime(std::chrono::hours(24 * 11323)), cctz::utc_time_zone())) {
      // From 2001-01-01 UTC (any start would do: a calendar repeats within
      // the eight years Next looks at): a day that no month has, like the
      // 30th of February, would pass for a schedule and never run.
      Error(schedule->value_pos, "'schedule': \"" + *text +
                                     "\" never fires: no day matches its day and month");
      ok = false;
    } else {
      decl.schedule = std::move(*text);
    }
  } else {
    ok = false;
  }
  if (timezone) {
    if (auto name = Scalar(*timezone, "", "an IANA time zone such as Europe/Paris")) {
      if (auto zone = sched::LoadTimeZone(*name); !zone.ok()) {
        Error(timezone->value_pos, "'timezone': " + zone.status().message());
        ok = false;
      } else {
        decl.timezone = std::move(*name);
      }
    } else {
      ok = false;
    }
  }
  if (concurrency) {
    if (auto name = Scalar(*concurrency, "", "skip, queue or replace")) {
      if (!sched::ParseConcurrency(*name)) {
        Error(concurrency->value_pos,
              "'concurrency' is skip, queue or replace, not '" + *name + "'");
        ok = false;
      } else {
        decl.concurrency = std::move(*name);
      }
    } else {
      ok = false;
    }
  }
  if (catchup) {
    if (auto value = Bool(*catchup, "")) {
      decl.catchup = *value;
    } else {
      ok = false;
    }
  }
  if (ok) job->schedule = std::move(decl);
}

}  // namespace drover::spec::internal
