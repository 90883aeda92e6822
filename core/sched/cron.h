// Cron schedules: when a scheduled pipeline (`schedule:` in a job spec,
// docs/spec.md) comes due. Plain data: no clock, no I/O but the time zone
// database (read once, by LoadTimeZone).
//
// A Schedule is one of
//   - a five-field cron expression, "MIN HOUR DOM MON DOW", each field `*`,
//     a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (from a to the
//     field's end), or a comma list of those; months and weekdays also by
//     name (jan..dec, sun..sat, case-insensitive; weekday 7 is Sunday too).
//     As in Vixie cron, when both DOM and DOW are restricted (neither
//     starts with `*`), a day matches if either does;
//   - a name: @hourly, @daily (= @midnight), @weekly, @monthly, @yearly
//     (= @annually);
//   - an interval, "@every N{s,m,h}" (a whole number of seconds, minutes or hours, 1s at
//   least): fires at every whole
//     multiple of the interval since the Unix epoch, so `@every 1h` fires
//     on the hour UTC, whatever the time zone, and a restart keeps the
//     phase.
// evaluated in an IANA time zone (cctz reads the system's tz database).
//
// Daylight saving, as Vixie cron does it (docs/operations.md, "Schedules"):
//   - a time that the clocks skip (spring forward) fires once, at the
//     instant of the jump, for a fixed-time schedule (neither MIN nor HOUR
//     starts with `*`); a wildcard schedule (e.g. `*/15 * * * *`) just
//     follows the new local time;
//   - a time that happens twice (fall back) fires once, at its first
//     occurrence, for a fixed-time schedule; a wildcard schedule fires at
//     both, since they are distinct instants of its period.
#ifndef DROVER_CORE_SCHED_CRON_H_
#define DROVER_CORE_SCHED_CRON_H_

#include <cctz/time_zone.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/base/clock.h"
#include "core/base/status.h"

namespace drover::sched {

// Where a bad expression is wrong: `column` is the 0-based offset in the
// expression text of the field (or part of it) at fault.
struct CronError {
  size_t column = 0;
  std::string message;
};

class Schedule {
 public:
  // Parses `text`. On failure, the error names the field and its offset.
  static std::variant<Schedule, CronError> Parse(std::string_view text);

  // The first instant strictly after `after` at which the schedule fires
  // in `zone`; nullopt when there is none in the next eight years (e.g.
  // "0 0 30 2 *").
  std::optional<WallTime> Next(WallTime after, const cctz::time_zone& zone) const;

  const std::string& text() const { return text_; }
  bool is_interval() const { return interval_.count() > 0; }
  Duration interval() const { return interval_; }  // @every's; 0 for cron

 private:
  Schedule() = default;
  bool DayMatches(const cctz::civil_day& d) const;

  std::string text_;
  Duration interval_{0};  // @every: > 0; cron fields unused
  // One bit per allowed value (bit v for value v).
  uint64_t minutes_ = 0;   // 0..59
  uint64_t hours_ = 0;     // 0..23
  uint64_t days_ = 0;      // 1..31
  uint64_t months_ = 0;    // 1..12
  uint64_t weekdays_ = 0;  // 0..6, 0 = Sunday
  bool dom_star_ = false;  // the field starts with '*'
  bool dow_star_ = false;
  bool wildcard_ = false;  // MIN or HOUR starts with '*' (the DST rules)
};

// Loads the IANA zone `name` ("Europe/Paris", "UTC"); kNotFound for a name
// the system's tz database does not have.
Result<cctz::time_zone> LoadTimeZone(const std::string& name);

}  // namespace drover::sched

#endif  // DROVER_CORE_SCHED_CRON_H_
