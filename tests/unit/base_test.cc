// Unit tests of core/base: Status/Result, durations, failure reasons, clocks,
// reading files.
#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/base/clock.h"
#include "core/base/files.h"
#include "core/base/outcome.h"
#include "core/base/outputs.h"
#include "core/base/status.h"
#include "core/base/utf8.h"

namespace drover {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

const std::vector<FailureReason> kAllReasons = {
    FailureReason::kNone,         FailureReason::kExit,
    FailureReason::kSignal,       FailureReason::kTimeout,
    FailureReason::kCancelled,    FailureReason::kWorkerLost,
    FailureReason::kLaunchFailed, FailureReason::kProcessCrashed,
    FailureReason::kInternal,     FailureReason::kRequestFailed,
    FailureReason::kBadOutputs,   FailureReason::kMissingInput,
    FailureReason::kArtifactFailed, FailureReason::kLimit,
};

// Given a default Status, should be ok with an empty message and print "ok".
TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "ok");
  EXPECT_TRUE(Status::Ok().ok());
}

// Given an error Status, should keep its code and message and print both.
TEST(StatusTest, ErrorKeepsCodeAndMessage) {
  Status s = NotFound("job j-123 is not in the state directory");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "job j-123 is not in the state directory");
  EXPECT_EQ(s.ToString(), "not-found: job j-123 is not in the state directory");
}

// Given each error factory, should produce its code, named distinctly.
TEST(StatusTest, FactoriesProduceTheirCodes) {
  const std::vector<std::pair<Status, std::string>> cases = {
      {InvalidArgument("m"), "invalid-argument: m"},
      {NotFound("m"), "not-found: m"},
      {AlreadyExists("m"), "already-exists: m"},
      {FailedPrecondition("m"), "failed-precondition: m"},
      {Unavailable("m"), "unavailable: m"},
      {DeadlineExceeded("m"), "deadline-exceeded: m"},
      {Cancelled("m"), "cancelled: m"},
      {IoError("m"), "io-error: m"},
      {Internal("m"), "internal: m"},
  };
  std::set<StatusCode> codes;
  for (const auto& [status, text] : cases) {
    EXPECT_FALSE(status.ok()) << text;
    EXPECT_EQ(status.ToString(), text);
    codes.insert(status.code());
  }
  EXPECT_EQ(codes.size(), cases.size());
}

// Given an error, WithContext should prefix the message and keep the code;
// given ok, it should stay ok.
TEST(StatusTest, WithContextPrefixesMessage) {
  Status s = InvalidArgument("bad duration").WithContext("job.yaml:3:5");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "job.yaml:3:5: bad duration");
  EXPECT_EQ(s.WithContext("load").message(), "load: job.yaml:3:5: bad duration");

  Status ok = Status().WithContext("load");
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.message(), "");
}

// Given an errno, ErrnoError should be an I/O error "what: strerror".
TEST(StatusTest, ErrnoErrorCarriesStrerror) {
  Status s = ErrnoError("open /nonexistent", ENOENT);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_EQ(s.message(), std::string("open /nonexistent: ") + std::strerror(ENOENT));
  EXPECT_EQ(s.ToString(), "io-error: " + s.message());
}

Status FailIf(bool fail, int* reached) {
  DROVER_RETURN_IF_ERROR(fail ? Unavailable("down") : Status());
  ++*reached;
  return Status();
}

// Given an error, DROVER_RETURN_IF_ERROR should return it early; given ok,
// it should fall through.
TEST(StatusTest, ReturnIfErrorReturnsEarly) {
  int reached = 0;
  EXPECT_TRUE(FailIf(false, &reached).ok());
  EXPECT_EQ(reached, 1);
  Status s = FailIf(true, &reached);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(reached, 1);
}

// Given a value, a Result should be ok and hand the value out.
TEST(ResultTest, HoldsValue) {
  Result<std::string> r(std::string("drover"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(r.value(), "drover");
  EXPECT_EQ(*r, "drover");
  EXPECT_EQ(r->size(), 6u);
  r.value() += "!";
  EXPECT_EQ(*r, "drover!");
  std::string moved = std::move(r).value();
  EXPECT_EQ(moved, "drover!");
}

// Given an error Status, a Result should not be ok and return that status.
TEST(ResultTest, HoldsError) {
  Result<int> r = NotFound("no such task");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "no such task");
}

// Given durations of every magnitude, FormatDuration should pick the unit
// for humans: us, ms, s with two decimals, m+s, h+m.
TEST(ClockTest, FormatDurationByMagnitude) {
  EXPECT_EQ(FormatDuration(nanoseconds(0)), "0us");
  EXPECT_EQ(FormatDuration(microseconds(999)), "999us");
  EXPECT_EQ(FormatDuration(milliseconds(1)), "1ms");
  EXPECT_EQ(FormatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(FormatDuration(milliseconds(999)), "999ms");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1.50s");
  EXPECT_EQ(FormatDuration(seconds(2)), "2.00s");
  EXPECT_EQ(FormatDuration(seconds(59)), "59.00s");
  EXPECT_EQ(FormatDuration(seconds(60)), "1m00s");
  EXPECT_EQ(FormatDuration(seconds(123)), "2m03s");
  EXPECT_EQ(FormatDuration(minutes(59) + seconds(59)), "59m59s");
  EXPECT_EQ(FormatDuration(hours(1)), "1h00m");
  EXPECT_EQ(FormatDuration(hours(1) + minutes(2) + seconds(30)), "1h02m");
  EXPECT_EQ(FormatDuration(hours(30)), "30h00m");
}

// Given a FakeClock, Advance should move both Now and WallNow by exactly the
// given amount, and nothing else should move them.
TEST(ClockTest, FakeClockAdvanceMovesBothClocks) {
  FakeClock clock;
  const SteadyTime steady0 = clock.Now();
  const WallTime wall0 = clock.WallNow();
  EXPECT_EQ(clock.Now(), steady0);
  EXPECT_EQ(clock.WallNow(), wall0);

  clock.Advance(milliseconds(1500));
  EXPECT_EQ(clock.Now() - steady0, milliseconds(1500));
  EXPECT_EQ(clock.WallNow() - wall0, milliseconds(1500));
  EXPECT_EQ(ToUnixMillis(clock.WallNow()) - ToUnixMillis(wall0), 1500);

  clock.Advance(hours(2));
  EXPECT_EQ(clock.Now() - steady0, hours(2) + milliseconds(1500));
  EXPECT_EQ(clock.WallNow() - wall0, hours(2) + milliseconds(1500));
}

// Given every FailureReason, its name should parse back to it, and every
// name should be distinct; an unknown name should not parse.
TEST(OutcomeTest, ReasonNamesRoundTrip) {
  std::set<std::string> names;
  for (FailureReason r : kAllReasons) {
    const std::string_view name = ReasonName(r);
    EXPECT_NE(name, "unknown");
    names.insert(std::string(name));
    const auto parsed = ParseReason(name);
    ASSERT_TRUE(parsed.has_value()) << name;
    EXPECT_EQ(*parsed, r) << name;
  }
  EXPECT_EQ(names.size(), kAllReasons.size());
  EXPECT_EQ(ReasonName(FailureReason::kWorkerLost), "worker-lost");
  EXPECT_EQ(ReasonName(FailureReason::kLaunchFailed), "launch-failed");
  EXPECT_FALSE(ParseReason("").has_value());
  EXPECT_FALSE(ParseReason("Exit").has_value());
  EXPECT_FALSE(ParseReason("worker_lost").has_value());
}

// Given each failure reason, only a cancel and a missing input (the
// upstream outputs stand, a retry would fail the same way) should not be
// retryable (and a success is not a failure to retry).
TEST(OutcomeTest, EveryFailureButCancelAndMissingInputIsRetryable) {
  for (FailureReason r : kAllReasons) {
    const bool want = r != FailureReason::kCancelled && r != FailureReason::kNone &&
                      r != FailureReason::kMissingInput;
    EXPECT_EQ(IsRetryable(r), want) << ReasonName(r);
  }
}

// Given outcomes of each kind, Describe should say how the attempt ended.
TEST(OutcomeTest, DescribeSaysHowItEnded) {
  AttemptOutcome ok;
  ok.exit_code = 0;
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.Describe(), "exit 0");

  AttemptOutcome returned;  // a function's result: no process, no exit code
  EXPECT_TRUE(returned.ok());
  EXPECT_EQ(returned.Describe(), "ok");

  AttemptOutcome exited;
  exited.reason = FailureReason::kExit;
  exited.exit_code = 3;
  exited.message = "ignored for exits";
  EXPECT_FALSE(exited.ok());
  EXPECT_EQ(exited.Describe(), "exit 3");

  AttemptOutcome killed;
  killed.reason = FailureReason::kSignal;
  killed.signal = SIGKILL;
  EXPECT_EQ(killed.Describe(), "signal SIGKILL");

  AttemptOutcome timed_out;
  timed_out.reason = FailureReason::kTimeout;
  timed_out.signal = SIGTERM;
  timed_out.message = "after 2.00s";
  EXPECT_EQ(timed_out.Describe(), "timeout: after 2.00s");

  AttemptOutcome not_found;
  not_found.reason = FailureReason::kLaunchFailed;
  not_found.message = "no-such-command: No such file or directory";
  EXPECT_EQ(not_found.Describe(),
            "launch-failed: no-such-command: No such file or directory");

  AttemptOutcome lost;
  lost.reason = FailureReason::kWorkerLost;
  EXPECT_EQ(lost.Describe(), "worker-lost");
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

// Given well-formed sequences of each length and the classic malformed
// ones, Utf8SequenceLength should give the length or 0.
TEST(Utf8Test, SequenceLengthAcceptsWellFormedAndRejectsMalformed) {
  EXPECT_EQ(Utf8SequenceLength("a", 0), 1u);
  EXPECT_EQ(Utf8SequenceLength("\xC3\xA9", 0), 2u);          // é
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82\xAC", 0), 3u);      // €
  EXPECT_EQ(Utf8SequenceLength("\xF0\x9F\x98\x80", 0), 4u);  // 😀
  EXPECT_EQ(Utf8SequenceLength("x\xC3\xA9", 1), 2u);         // at an offset
  EXPECT_EQ(Utf8SequenceLength("\xC0\xAF", 0), 0u);          // overlong '/'
  EXPECT_EQ(Utf8SequenceLength("\xE0\x80\xAF", 0), 0u);      // overlong, 3 bytes
  EXPECT_EQ(Utf8SequenceLength("\xED\xA0\x80", 0), 0u);      // a surrogate
  EXPECT_EQ(Utf8SequenceLength("\xF4\x90\x80\x80", 0), 0u);  // above U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82", 0), 0u);          // truncated
  EXPECT_EQ(Utf8SequenceLength("\xE2\x28\xA1", 0), 0u);      // bad continuation
  EXPECT_EQ(Utf8SequenceLength("\x80", 0), 0u);              // a lone continuation
}

// What nlohmann::json writes for `outputs`: the store's format before
// OutputsToJson wrote it by hand.
std::string LibraryJson(const Outputs& outputs) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : outputs) j[k] = v;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Given every ASCII byte, escapes and multi-byte characters, and 2,000
// random byte strings (a fixed seed; valid and invalid UTF-8 alike),
// OutputsToJson should write exactly what the library writes, and read
// back (OutputsFromJson) to the same outputs when the bytes were UTF-8.
TEST(OutputsJsonTest, WritesWhatTheLibraryWrites) {
  EXPECT_EQ(OutputsToJson({}), "");
  std::vector<Outputs> cases;
  for (int c = 0; c < 0x80; ++c)
    cases.push_back({{"k", std::string(1, static_cast<char>(c))}});
  cases.push_back({{"a", "say \"hi\"\\n"}, {"b", "tab\there\r\n\f\b"}, {"c", ""}});
  cases.push_back(
      {{"u", "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF \xF4\x8F\xBF\xBF"}});
  cases.push_back({{"bad", "ok \xC0\xAF then \xE2\x82"}});  // invalid: the library's way
  // Random strings over pieces that exercise every branch.
  const std::vector<std::string> pieces = {"a",
                                           "Z",
                                           " ",
                                           "\"",
                                           "\\",
                                           "\n",
                                           "\t",
                                           "\x01",
                                           "\x1F",
                                           "\x7F",
                                           "\xC3\xA9",
                                           "\xE2\x82\xAC",
                                           "\xF0\x9F\x98\x80",
                                           "\xED\xA0\x80",
                                           "\x80",
                                           "\xFF",
                                           "\xE2\x82"};
  std::mt19937 rng(17);
  for (int i = 0; i < 2000; ++i) {
    Outputs o;
    const int keys = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < keys; ++k) {
      std::string v;
      const int n = static_cast<int>(rng() % 12);
      for (int p = 0; p < n; ++p) v += pieces[rng() % pieces.size()];
      o["key" + std::to_string(k)] = v;
    }
    cases.push_back(o);
  }
  int valid = 0;
  for (const Outputs& o : cases) {
    const std::string json = OutputsToJson(o);
    ASSERT_EQ(json, LibraryJson(o)) << "for " << ::testing::PrintToString(o);
    bool utf8 = true;
    for (const auto& [k, v] : o) {
      for (size_t i = 0; i < v.size() && utf8;) {
        const size_t len = Utf8SequenceLength(v, i);
        utf8 = len > 0;
        i += len;
      }
    }
    if (!utf8) continue;
    ++valid;
    EXPECT_EQ(OutputsFromJson(json), o) << json;
  }
  EXPECT_GT(valid, 200);  // the round trip was checked, not skipped
}

// Given a file of 200,000 bytes with NULs in it (three reads of the
// buffer), ReadWholeFile should append all of it to what the string holds.
TEST(ReadWholeFileTest, AppendsTheWholeFile) {
  const std::filesystem::path path =
      std::filesystem::path(::testing::TempDir()) / "drover-read-whole-file";
  std::string bytes;
  for (int i = 0; i < 200'000; ++i) bytes.push_back(static_cast<char>(i % 251));
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  std::string text = "kept:";
  EXPECT_EQ(ReadWholeFile(path.string(), &text), 0);
  EXPECT_EQ(text, "kept:" + bytes);
  std::filesystem::remove(path);
}

// Given a path that is missing, and one that opens but fails to read (a
// directory: EISDIR, where std::ifstream's underflow throws, as it does
// for ESRCH from the /proc file of a process that has just exited),
// ReadWholeFile should return the errno and throw nothing.
TEST(ReadWholeFileTest, ReturnsTheErrnoOfAFailedOpenOrRead) {
  std::string text;
  EXPECT_EQ(ReadWholeFile("/nonexistent/drover/file", &text), ENOENT);
  EXPECT_EQ(ReadWholeFile(::testing::TempDir(), &text), EISDIR);
  EXPECT_EQ(text, "");
}

}  // namespace
}  // namespace drover
