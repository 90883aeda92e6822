#include "core/sched/cron.h"

#include <cctz/civil_time.h>

#include <array>
#include <cctype>
#include <vector>

namespace drover::sched {
namespace {

struct FieldDef {
  const char* what;  // "minute", ... for messages
  int min;
  int max;
  const char* const* names;  // lower-case, indexed from `min` (nullptr: none)
  int name_count;
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

// The weekday field accepts 7 for Sunday (folded to 0 after parsing).
constexpr std::array<FieldDef, 5> kFields = {{
    {"minute", 0, 59, nullptr, 0},
    {"hour", 0, 23, nullptr, 0},
    {"day of month", 1, 31, nullptr, 0},
    {"month", 1, 12, kMonthNames, 12},
    {"day of week", 0, 7, kDayNames, 7},
}};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A value of `def`: a number, or a name. nullopt when neither.
std::optional<int> ParseValue(std::string_view text, const FieldDef& def) {
  if (text.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(text[0]))) {
    int v = 0;
    for (char c : text) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || v > 1000) return std::nullopt;
      v = v * 10 + (c - '0');
    }
    return v;
  }
  const std::string lower = Lower(text);
  for (int i = 0; i < def.name_count; ++i) {
    if (lower == def.names[i]) return def.min + i;
  }
  return std::nullopt;
}

// Parses one field starting at `offset` of the whole expression into a
// mask; sets *star when it starts with '*'.
std::variant<uint64_t, CronError> ParseField(std::string_view field, size_t offset,
                                             const FieldDef& def, bool* star) {
  *star = !field.empty() && field[0] == '*';
  uint64_t mask = 0;
  size_t pos = 0;
  while (pos <= field.size()) {
    const size_t comma = field.find(',', pos);
    const size_t end = comma == std::string_view::npos ? field.size() : comma;
    const std::string_view item = field.substr(pos, end - pos);
    const size_t at = offset + pos;
    auto bad = [&](const std::string& why) {
      return CronError{at, "bad " + std::string(def.what) + " field '" +
                               std::string(item) + "': " + why};
    };
    if (item.empty()) return bad("empty list item");
    std::string_view range = item;
    int step = 1;
    if (const size_t slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      const auto s =
          ParseValue(item.substr(slash + 1), FieldDef{def.what, 0, 0, nullptr, 0});
      if (!s || *s == 0) return bad("the step after '/' must be a positive number");
      step = *s;
    }
    int lo = def.min, hi = def.max;
    if (range == "*") {
      // every value
    } else if (const size_t dash = range.find('-'); dash != std::string_view::npos) {
      const auto a = ParseValue(range.substr(0, dash), def);
      const auto b = ParseValue(range.substr(dash + 1), def);
      if (!a || !b) return bad("a range is VALUE-VALUE");
      lo = *a;
      hi = *b;
      if (lo > hi) return bad("the range runs backwards");
    } else {
      const auto v = ParseValue(range, def);
      if (!v) {
        return bad(def.names
                       ? "not a number or a name (" + std::string(def.names[0]) + ", ...)"
                       : "not a number");
      }
      lo = *v;
      // "a/n" runs from a to the field's end; a bare value is itself.
      hi = range.size() == item.size() ? *v : def.max;
    }
    if (lo < def.min || hi > def.max) {
      return bad("values run from " + std::to_string(def.min) + " to " +
                 std::to_string(def.max));
    }
    for (int v = lo; v <= hi; v += step) mask |= uint64_t{1} << v;
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return mask;
}

constexpr std::pair<std::string_view, std::string_view> kNamed[] = {
    {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

// "@every" durations: a whole number and one unit, s, m or h. (The spec's
// duration grammar lives in core/spec, which depends on this module.)
std::optional<Duration> ParseEvery(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  const char unit = text.back();
  const auto n =
      ParseValue(text.substr(0, text.size() - 1), FieldDef{"", 0, 0, nullptr, 0});
  if (!n || !std::isdigit(static_cast<unsigned char>(text[0]))) return std::nullopt;
  switch (unit) {
    case 's':
      return std::chrono::seconds(*n);
    case 'm':
      return std::chrono::minutes(*n);
    case 'h':
      return std::chrono::hours(*n);
    default:
      return std::nullopt;
  }
}

bool Has(uint64_t mask, int v) { return (mask >> v) & 1; }

WallTime ToWall(const cctz::time_point<cctz::seconds>& t) {
  return std::chrono::time_point_cast<WallTime::duration>(t);
}

}  // namespace

std::variant<Schedule, CronError> Schedule::Parse(std::string_view text) {
  Schedule s;
  s.text_ = std::string(text);
  std::string_view expr = text;
  if (!text.empty() && text[0] == '@') {
    const size_t space = text.find(' ');
    const std::string name = Lower(text.substr(0, space));
    if (name == "@every") {
      std::string_view rest =
          space == std::string_view::npos ? "" : text.substr(space + 1);
      size_t skip = 0;
      while (skip < rest.size() && rest[skip] == ' ') ++skip;
      rest.remove_prefix(skip);
      const size_t at = text.size() - rest.size();
      const auto d = ParseEvery(rest);
      if (!d) {
        return CronError{at, "@every needs a whole number of s, m or h, e.g. @every 30s"};
      }
      if (*d < std::chrono::seconds(1)) return CronError{at, "@every needs 1s at least"};
      s.interval_ = *d;
      return s;
    }
    expr = {};
    for (const auto& [n, e] : kNamed) {
      if (name == n) expr = e;
    }
    if (expr.empty() || space != std::string_view::npos) {
      return CronError{0, "unknown schedule '" + std::string(text) +
                              "' (names: @hourly, @daily, @midnight, @weekly, @monthly, "
                              "@yearly, @annually, @every DURATION)"};
    }
  }
  // Split into fields, remembering where each starts.
  std::vector<std::pair<std::string_view, size_t>> fields;
  for (size_t i = 0; i < expr.size();) {
    if (expr[i] == ' ' || expr[i] == '\t') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < expr.size() && expr[j] != ' ' && expr[j] != '\t') ++j;
    fields.emplace_back(expr.substr(i, j - i), i);
    i = j;
  }
  if (fields.size() != 5) {
    const size_t at = fields.size() > 5 ? fields[5].second : expr.size();
    return CronError{at,
                     "a cron schedule has five fields (minute hour day-of-month month "
                     "day-of-week), this has " +
                         std::to_string(fields.size())};
  }
  uint64_t* masks[] = {&s.minutes_, &s.hours_, &s.days_, &s.months_, &s.weekdays_};
  bool stars[5] = {};
  for (size_t f = 0; f < 5; ++f) {
    auto parsed = ParseField(fields[f].first, fields[f].second, kFields[f], &stars[f]);
    if (auto* e = std::get_if<CronError>(&parsed)) return std::move(*e);
    *masks[f] = std::get<uint64_t>(parsed);
  }
  if (Has(s.weekdays_, 7)) s.weekdays_ = (s.weekdays_ & ~(uint64_t{1} << 7)) | 1;
  s.wildcard_ = stars[0] || stars[1];
  s.dom_star_ = stars[2];
  s.dow_star_ = stars[4];
  return s;
}

bool Schedule::DayMatches(const cctz::civil_day& d) const {
  const bool dom = Has(days_, d.day());
  // cctz counts weekdays from Monday; cron from Sunday.
  const int wd = (static_cast<int>(cctz::get_weekday(d)) + 1) % 7;
  const bool dow = Has(weekdays_, wd);
  if (dom_star_ || dow_star_) return dom && dow;
  return dom || dow;
}

std::optional<WallTime> Schedule::Next(WallTime after,
                                       const cctz::time_zone& zone) const {
  if (is_interval()) {
    const Duration since_epoch = after.time_since_epoch();
    const int64_t k = since_epoch.count() / interval_.count() + 1;
    return WallTime(std::chrono::duration_cast<WallTime::duration>(interval_ * k));
  }
  const cctz::civil_minute now(cctz::convert(after, zone));
  // Start three hours of local time back, so that the second pass of a
  // repeated hour (fall back) is seen; stop three hours of local time past
  // the best candidate, beyond which no local time can map to an earlier
  // instant (no zone shifts by more).
  constexpr int kSlackMinutes = 180;
  cctz::civil_minute c = now - kSlackMinutes;
  const cctz::civil_minute limit(now.year() + 8, now.month(), now.day(), now.hour(),
                                 now.minute());
  std::optional<WallTime> best;
  cctz::civil_minute best_civil;
  auto consider = [&](const cctz::time_point<cctz::seconds>& t,
                      const cctz::civil_minute& at) {
    const WallTime w = ToWall(t);
    if (w > after && (!best || w < *best)) {
      best = w;
      best_civil = at;
    }
  };
  while (c < limit) {
    if (best && c > best_civil + kSlackMinutes) break;
    if (!Has(months_, c.month())) {
      c = cctz::civil_minute(cctz::civil_month(c) + 1);
      continue;
    }
    if (!DayMatches(cctz::civil_day(c))) {
      c = cctz::civil_minute(cctz::civil_day(c) + 1);
      continue;
    }
    if (!Has(hours_, c.hour())) {
      c = cctz::civil_minute(cctz::civil_hour(c) + 1);
      continue;
    }
    if (!Has(minutes_, c.minute())) {
      c += 1;
      continue;
    }
    const auto look = zone.lookup(cctz::civil_second(c));
    switch (look.kind) {
      case cctz::time_zone::civil_lookup::UNIQUE:
        consider(look.pre, c);
        break;
      case cctz::time_zone::civil_lookup::SKIPPED:
        // Spring forward: a fixed time runs once, as the clocks jump.
        if (!wildcard_) consider(look.trans, c);
        break;
      case cctz::time_zone::civil_lookup::REPEATED:
        // Fall back: a fixed time runs at its first occurrence only.
        consider(look.pre, c);
        if (wildcard_) consider(look.post, c);
        break;
    }
    c += 1;
  }
  return best;
}

Result<cctz::time_zone> LoadTimeZone(const std::string& name) {
  // IANA names only: no file paths, no "localtime" (the host's zone would
  // make a spec mean different times on different hosts).
  if (name.empty() || name[0] == '/' || name.find("..") != std::string::npos ||
      name == "localtime") {
    return NotFound("unknown time zone '" + name +
                    "' (an IANA name, e.g. Europe/Paris or UTC)");
  }
  cctz::time_zone zone;
  if (!cctz::load_time_zone(name, &zone)) {
    return NotFound("unknown time zone '" + name +
                    "' (an IANA name, e.g. Europe/Paris or UTC)");
  }
  return zone;
}

}  // namespace drover::sched
