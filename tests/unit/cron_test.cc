// core/sched: cron parsing, next fire times in time zones across DST
// changes, and the concurrency and catch-up decisions. Plain data: time is
// given, never read, so a year of schedule runs in milliseconds.
#include "core/sched/cron.h"

#include <gtest/gtest.h>

#include <variant>

#include "core/base/clock.h"
#include "core/sched/pipeline.h"

namespace drover::sched {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

Schedule Must(std::string_view text) {
  auto parsed = Schedule::Parse(text);
  if (auto* e = std::get_if<CronError>(&parsed)) {
    ADD_FAILURE() << text << ": " << e->message;
    return std::get<Schedule>(Schedule::Parse("* * * * *"));
  }
  return std::get<Schedule>(std::move(parsed));
}

CronError Bad(std::string_view text) {
  auto parsed = Schedule::Parse(text);
  if (auto* e = std::get_if<CronError>(&parsed)) return *e;
  ADD_FAILURE() << text << " should not parse";
  return {};
}

cctz::time_zone Zone(const std::string& name) {
  auto zone = LoadTimeZone(name);
  EXPECT_TRUE(zone.ok()) << name;
  return zone.ok() ? *zone : cctz::utc_time_zone();
}

// A local time in `zone` (its first occurrence when repeated).
WallTime At(const cctz::time_zone& zone, int y, int mo, int d, int h, int mi, int s = 0) {
  return std::chrono::time_point_cast<WallTime::duration>(
      cctz::convert(cctz::civil_second(y, mo, d, h, mi, s), zone));
}

// "2026-03-29 03:00:00 +0200" for failure messages and comparisons.
std::string Local(std::optional<WallTime> t, const cctz::time_zone& zone) {
  if (!t) return "never";
  return cctz::format("%Y-%m-%d %H:%M:%S %z", *t, zone);
}

// Given a schedule, should list its next `n` fire times after `from`.
std::vector<std::string> Fires(const Schedule& s, const cctz::time_zone& zone,
                               WallTime from, int n) {
  std::vector<std::string> out;
  std::optional<WallTime> t = from;
  for (int i = 0; i < n && t; ++i) {
    t = s.Next(*t, zone);
    out.push_back(Local(t, zone));
  }
  return out;
}

// Given the cron syntax's forms, should accept each and fire where cron does.
TEST(CronTest, FieldsRangesStepsListsAndNames) {
  const auto utc = cctz::utc_time_zone();
  const WallTime from = At(utc, 2026, 1, 1, 0, 0);  // a Thursday
  EXPECT_EQ(Local(Must("*/15 * * * *").Next(from, utc), utc),
            "2026-01-01 00:15:00 +0000");
  EXPECT_EQ(Local(Must("5,35 9-10 * * *").Next(from, utc), utc),
            "2026-01-01 09:05:00 +0000");
  EXPECT_EQ(
      Fires(Must("0 9-17/4 * * *"), utc, from, 3),
      (std::vector<std::string>{"2026-01-01 09:00:00 +0000", "2026-01-01 13:00:00 +0000",
                                "2026-01-01 17:00:00 +0000"}));
  EXPECT_EQ(Local(Must("30 2 * feb MON").Next(from, utc), utc),
            "2026-02-02 02:30:00 +0000");
  EXPECT_EQ(Local(Must("0 0 * * 7").Next(from, utc), utc), "2026-01-04 00:00:00 +0000");
  EXPECT_EQ(Local(Must("0 0 * * sun").Next(from, utc), utc), "2026-01-04 00:00:00 +0000");
  EXPECT_EQ(Local(Must("0 12 1/10 * *").Next(from, utc), utc),
            "2026-01-01 12:00:00 +0000");
  EXPECT_EQ(Fires(Must("0 12 1/10 * *"), utc, from, 4).back(),
            "2026-01-31 12:00:00 +0000");
  // Both day fields restricted: either matches (Vixie cron).
  EXPECT_EQ(Local(Must("0 0 15 * fri").Next(from, utc), utc),
            "2026-01-02 00:00:00 +0000");
  // Day of month restricted, weekday `*`: the day of month alone.
  EXPECT_EQ(Local(Must("0 0 15 * *").Next(from, utc), utc), "2026-01-15 00:00:00 +0000");
  EXPECT_EQ(Local(Must("0 0 29 2 *").Next(from, utc), utc), "2028-02-29 00:00:00 +0000");
  EXPECT_EQ(Must("0 0 30 2 *").Next(from, utc), std::nullopt);
}

// Given the @names, should mean their cron lines.
TEST(CronTest, NamedSchedules) {
  const auto utc = cctz::utc_time_zone();
  const WallTime from = At(utc, 2026, 5, 17, 10, 20);  // a Sunday
  EXPECT_EQ(Local(Must("@hourly").Next(from, utc), utc), "2026-05-17 11:00:00 +0000");
  EXPECT_EQ(Local(Must("@daily").Next(from, utc), utc), "2026-05-18 00:00:00 +0000");
  EXPECT_EQ(Local(Must("@midnight").Next(from, utc), utc), "2026-05-18 00:00:00 +0000");
  EXPECT_EQ(Local(Must("@weekly").Next(from, utc), utc), "2026-05-24 00:00:00 +0000");
  EXPECT_EQ(Local(Must("@monthly").Next(from, utc), utc), "2026-06-01 00:00:00 +0000");
  EXPECT_EQ(Local(Must("@yearly").Next(from, utc), utc), "2027-01-01 00:00:00 +0000");
  EXPECT_EQ(Local(Must("@annually").Next(from, utc), utc), "2027-01-01 00:00:00 +0000");
}

// Given @every, should fire on whole multiples of the interval since the
// epoch, strictly after the time asked about.
TEST(CronTest, EveryInterval) {
  const auto utc = cctz::utc_time_zone();
  const Schedule every = Must("@every 1s");
  EXPECT_TRUE(every.is_interval());
  const WallTime t = At(utc, 2026, 5, 17, 10, 20, 7) + std::chrono::milliseconds(400);
  EXPECT_EQ(every.Next(t, utc), At(utc, 2026, 5, 17, 10, 20, 8));
  EXPECT_EQ(every.Next(At(utc, 2026, 5, 17, 10, 20, 8), utc),
            At(utc, 2026, 5, 17, 10, 20, 9));
  EXPECT_EQ(Must("@every 1h").Next(t, Zone("Asia/Kolkata")), At(utc, 2026, 5, 17, 11, 0));
  EXPECT_EQ(Must("@every 5m").Next(t, utc), At(utc, 2026, 5, 17, 10, 25));
}

// Given a bad expression, should say what is wrong and where (the offset
// of the field at fault), never crash.
TEST(CronTest, ErrorsNameTheField) {
  EXPECT_EQ(Bad("61 * * * *").column, 0u);
  EXPECT_NE(Bad("61 * * * *").message.find("minute"), std::string::npos);
  EXPECT_NE(Bad("61 * * * *").message.find("0 to 59"), std::string::npos);
  EXPECT_EQ(Bad("0 24 * * *").column, 2u);
  EXPECT_EQ(Bad("0 0 0 * *").column, 4u);
  EXPECT_EQ(Bad("0 0 * 13 *").column, 6u);
  EXPECT_EQ(Bad("0 0 * * 8").column, 8u);
  EXPECT_EQ(Bad("0 0 * * mon,funday").column, 12u);
  EXPECT_EQ(Bad("0 0 * * 5-1").column, 8u);
  EXPECT_EQ(Bad("*/0 * * * *").column, 0u);
  EXPECT_EQ(Bad("0 0 * *").column, 7u);
  EXPECT_NE(Bad("0 0 * *").message.find("five fields"), std::string::npos);
  EXPECT_EQ(Bad("0 0 * * * *").column, 10u);
  EXPECT_EQ(Bad("1,,2 * * * *").column, 2u);
  EXPECT_EQ(Bad("@fortnightly").column, 0u);
  EXPECT_EQ(Bad("@every 0s").column, 7u);
  EXPECT_EQ(Bad("@every soon").column, 7u);
  EXPECT_EQ(Bad("@every").column, 6u);
  Bad("");
  Bad("- * * * *");
  Bad("99999999999999 * * * *");
}

// Given zone names, should load the IANA ones and refuse others.
TEST(CronTest, TimeZones) {
  EXPECT_TRUE(LoadTimeZone("Europe/Paris").ok());
  EXPECT_TRUE(LoadTimeZone("UTC").ok());
  EXPECT_FALSE(LoadTimeZone("Mars/Olympus_Mons").ok());
  EXPECT_FALSE(LoadTimeZone("/etc/localtime").ok());
  EXPECT_FALSE(LoadTimeZone("../../etc/passwd").ok());
  EXPECT_FALSE(LoadTimeZone("").ok());
  // The same local time is a different instant in each zone.
  const Schedule daily = Must("0 9 * * *");
  const WallTime from = At(cctz::utc_time_zone(), 2026, 7, 1, 0, 0);
  EXPECT_EQ(Local(daily.Next(from, Zone("America/New_York")), cctz::utc_time_zone()),
            "2026-07-01 13:00:00 +0000");
  EXPECT_EQ(Local(daily.Next(from, Zone("Asia/Tokyo")), cctz::utc_time_zone()),
            "2026-07-02 00:00:00 +0000");
}

// Given spring forward in Paris (2026-03-29, 02:00 -> 03:00), should run a
// fixed time in the gap once, as the clocks jump, and the next day as usual.
TEST(CronTest, SpringForwardRunsASkippedFixedTimeOnce) {
  const auto paris = Zone("Europe/Paris");
  const Schedule s = Must("30 2 * * *");
  EXPECT_EQ(
      Fires(s, paris, At(paris, 2026, 3, 28, 12, 0), 3),
      (std::vector<std::string>{"2026-03-29 03:00:00 +0200", "2026-03-30 02:30:00 +0200",
                                "2026-03-31 02:30:00 +0200"}));
  // A wildcard schedule follows the new local time: nothing in the gap.
  EXPECT_EQ(
      Fires(Must("*/30 * * * *"), paris, At(paris, 2026, 3, 29, 1, 0), 3),
      (std::vector<std::string>{"2026-03-29 01:30:00 +0100", "2026-03-29 03:00:00 +0200",
                                "2026-03-29 03:30:00 +0200"}));
}

// Given fall back in Paris (2026-10-25, 03:00 -> 02:00), should run a fixed
// time of the repeated hour once, at its first occurrence; a wildcard
// schedule at both occurrences.
TEST(CronTest, FallBackRunsARepeatedFixedTimeOnce) {
  const auto paris = Zone("Europe/Paris");
  EXPECT_EQ(Fires(Must("30 2 * * *"), paris, At(paris, 2026, 10, 24, 12, 0), 2),
            (std::vector<std::string>{"2026-10-25 02:30:00 +0200",
                                      "2026-10-26 02:30:00 +0100"}));
  EXPECT_EQ(Fires(Must("30 * * * *"), paris, At(paris, 2026, 10, 25, 1, 0), 4),
            (std::vector<std::string>{
                "2026-10-25 01:30:00 +0200", "2026-10-25 02:30:00 +0200",
                "2026-10-25 02:30:00 +0100", "2026-10-25 03:30:00 +0100"}));
  // Asked from within the second pass, a fixed time does not come again.
  const WallTime second_pass = At(paris, 2026, 10, 25, 2, 0) + hours(1) + minutes(10);
  EXPECT_EQ(Local(Must("30 2 * * *").Next(second_pass, paris), paris),
            "2026-10-26 02:30:00 +0100");
}

// Given a year of an hourly schedule across both DST changes of New York,
// should fire 24 times a day but 23 on spring forward and 25 on fall back
// (wildcard hour), in milliseconds of real time.
TEST(CronTest, AYearOfHourlyRunsAcrossDst) {
  const auto ny = Zone("America/New_York");
  const Schedule s = Must("0 * * * *");
  std::map<std::string, int> per_day;
  WallTime t = At(ny, 2026, 1, 1, 0, 0) - seconds(1);
  int total = 0;
  while (true) {
    auto next = s.Next(t, ny);
    ASSERT_TRUE(next);
    if (*next >= At(ny, 2027, 1, 1, 0, 0)) break;
    ASSERT_GT(*next, t);
    ++per_day[cctz::format("%Y-%m-%d", *next, ny)];
    ++total;
    t = *next;
  }
  EXPECT_EQ(per_day["2026-03-08"], 23);
  EXPECT_EQ(per_day["2026-11-01"], 25);
  EXPECT_EQ(per_day["2026-06-01"], 24);
  EXPECT_EQ(total, 365 * 24);
}

// Given the concurrency policies, should start, skip, queue or replace a run
// that comes due while another runs.
TEST(PipelineTest, ConcurrencyDecisions) {
  EXPECT_EQ(OnDue(Concurrency::kSkip, false, false), Decision::kStart);
  EXPECT_EQ(OnDue(Concurrency::kSkip, true, false), Decision::kSkip);
  EXPECT_EQ(OnDue(Concurrency::kQueue, true, false), Decision::kQueue);
  EXPECT_EQ(OnDue(Concurrency::kQueue, true, true), Decision::kAlreadyQueued);
  EXPECT_EQ(OnDue(Concurrency::kReplace, true, false), Decision::kCancelAndStart);
  EXPECT_EQ(ParseConcurrency("queue"), Concurrency::kQueue);
  EXPECT_EQ(ParseConcurrency("Queue"), std::nullopt);
  EXPECT_EQ(ConcurrencyName(Concurrency::kReplace), "replace");
}

// Given downtime across several fire times, should replay none without
// catchup, and only the latest with it.
TEST(PipelineTest, CatchupStartsAtMostTheLastMissedRun) {
  const auto utc = cctz::utc_time_zone();
  const Schedule hourly = Must("0 * * * *");
  const WallTime last = At(utc, 2026, 5, 1, 10, 0);
  const WallTime now = At(utc, 2026, 5, 1, 14, 20);
  EXPECT_EQ(MissedRun(hourly, utc, last, now, false), std::nullopt);
  EXPECT_EQ(MissedRun(hourly, utc, last, now, true), At(utc, 2026, 5, 1, 14, 0));
  // Nothing missed: nothing to run.
  EXPECT_EQ(MissedRun(hourly, utc, last, At(utc, 2026, 5, 1, 10, 59), true),
            std::nullopt);
  // A monthly schedule after two months down.
  EXPECT_EQ(MissedRun(Must("@monthly"), utc, At(utc, 2026, 1, 1, 0, 0),
                      At(utc, 2026, 3, 15, 0, 0), true),
            At(utc, 2026, 3, 1, 0, 0));
  // An every-second schedule after a day down: the last second.
  EXPECT_EQ(
      MissedRun(Must("@every 1s"), utc, last, now + std::chrono::milliseconds(300), true),
      now);
}

}  // namespace
}  // namespace drover::sched
