// core/spec: a scheduled pipeline's keys (docs/spec.md, "Schedules"):
// read into JobSpec::schedule, and bad values reported at FILE:LINE:COL,
// a bad cron line at the field at fault.
#include <gtest/gtest.h>

#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::HasOnlyError;
using test_util::Load;

// Given every schedule key, should carry them into the JobSpec.
TEST(SpecScheduleTest, KeysAreRead) {
  const LoadResult r = Load(R"(
version: 1
schedule: "*/5 9-17 * * mon-fri"
timezone: America/New_York
concurrency: queue
catchup: true
tasks: {a: {run: x}}
)");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r.spec->schedule);
  EXPECT_EQ(r.spec->schedule->schedule, "*/5 9-17 * * mon-fri");
  EXPECT_EQ(r.spec->schedule->timezone, "America/New_York");
  EXPECT_EQ(r.spec->schedule->concurrency, "queue");
  EXPECT_TRUE(r.spec->schedule->catchup);
  EXPECT_EQ(r.spec->schedule->line, 2);
}

// Given only `schedule`, should default to UTC, skip, no catchup; a spec
// without it has no schedule.
TEST(SpecScheduleTest, Defaults) {
  const LoadResult r = Load("version: 1\nschedule: '@daily'\ntasks: {a: {run: x}}\n");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r.spec->schedule);
  EXPECT_EQ(r.spec->schedule->timezone, "UTC");
  EXPECT_EQ(r.spec->schedule->concurrency, "skip");
  EXPECT_FALSE(r.spec->schedule->catchup);
  const LoadResult plain = Load("version: 1\ntasks: {a: {run: x}}\n");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain.spec->schedule);
}

// Given a bad cron field, should point at that field, plain or quoted.
TEST(SpecScheduleTest, BadCronFieldIsReportedAtTheField) {
  EXPECT_TRUE(HasOnlyError(
      Load("version: 1\nschedule: \"0 3 * * funday\"\ntasks: {a: {run: x}}\n"), 2, 20,
      {"bad day of week field 'funday'"}));
  EXPECT_TRUE(
      HasOnlyError(Load("version: 1\nschedule: 0 3 32 * *\ntasks: {a: {run: x}}\n"), 2,
                   15, {"bad day of month field '32'", "from 1 to 31"}));
  EXPECT_TRUE(
      HasOnlyError(Load("version: 1\nschedule: '0 3 * *'\ntasks: {a: {run: x}}\n"), 2, 19,
                   {"five fields"}));
}

// Given a schedule whose day and month never meet (the 30th of February),
// should refuse it at its value rather than keep a pipeline that never
// runs; the 29th of February, every four years, and a day-of-week that
// widens it (cron's "either") are schedules.
TEST(SpecScheduleTest, ScheduleThatNeverFiresIsRefused) {
  EXPECT_TRUE(
      HasOnlyError(Load("version: 1\nschedule: \"0 0 30 2 *\"\ntasks: {a: {run: x}}\n"),
                   2, 11, {"'schedule': \"0 0 30 2 *\" never fires"}));
  EXPECT_TRUE(Load("version: 1\nschedule: \"0 0 29 2 *\"\ntasks: {a: {run: x}}\n").ok());
  EXPECT_TRUE(Load("version: 1\nschedule: \"0 0 30 2 1\"\ntasks: {a: {run: x}}\n").ok());
}

// Given an unknown zone, a bad concurrency or a companion key without
// `schedule`, should say so at the value or the key.
TEST(SpecScheduleTest, BadCompanions) {
  EXPECT_TRUE(HasOnlyError(
      Load("version: 1\nschedule: '@daily'\ntimezone: Mars/Base\ntasks: {a: {run: x}}\n"),
      3, 11, {"unknown time zone 'Mars/Base'"}));
  EXPECT_TRUE(HasOnlyError(Load("version: 1\nschedule: '@daily'\nconcurrency: "
                                "parallel\ntasks: {a: {run: x}}\n"),
                           3, 14,
                           {"'concurrency' is skip, queue or replace, not 'parallel'"}));
  EXPECT_TRUE(HasOnlyError(Load("version: 1\ncatchup: true\ntasks: {a: {run: x}}\n"), 2,
                           1, {"'catchup' needs 'schedule'"}));
}

}  // namespace
}  // namespace drover::spec
