// The commands' bytes and names as docs/protocol.md lists them, and the
// conversion of an attempt's outcome to and from its RESULT
// (core/protocol/convert.h) where a forged or broken worker could abuse it.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

#include "core/protocol/codec.h"
#include "core/protocol/convert.h"

namespace drover::protocol {
namespace {

// Given every command, should have the byte and the name of the spec; an
// unassigned byte is "UNKNOWN".
TEST(CommandNameTest, EveryCommandHasItsByteAndName) {
  const struct {
    Command command;
    uint8_t byte;
    const char* name;
  } kTable[] = {
      {Command::kHello, 0x01, "HELLO"},
      {Command::kWelcome, 0x02, "WELCOME"},
      {Command::kDispatch, 0x03, "DISPATCH"},
      {Command::kResult, 0x04, "RESULT"},
      {Command::kAck, 0x05, "ACK"},
      {Command::kCancel, 0x06, "CANCEL"},
      {Command::kHeartbeat, 0x07, "HEARTBEAT"},
      {Command::kDisconnect, 0x08, "DISCONNECT"},
      {Command::kSubmit, 0x10, "SUBMIT"},
      {Command::kSubmitted, 0x11, "SUBMITTED"},
      {Command::kTaskEvent, 0x12, "TASK-EVENT"},
      {Command::kJobEvent, 0x13, "JOB-EVENT"},
      {Command::kCancelJob, 0x14, "CANCEL-JOB"},
      {Command::kWatch, 0x15, "WATCH"},
      {Command::kStatusRequest, 0x16, "STATUS"},
      {Command::kStatusReply, 0x17, "STATUS-REPLY"},
      {Command::kWorkersRequest, 0x18, "WORKERS"},
      {Command::kWorkersReply, 0x19, "WORKERS-REPLY"},
      {Command::kRetryJob, 0x1A, "RETRY-JOB"},
      {Command::kLogsRequest, 0x1B, "LOGS-REQUEST"},
      {Command::kLogs, 0x1C, "LOGS"},
      {Command::kOk, 0x1E, "OK"},
      {Command::kDraining, 0x09, "DRAINING"},
      {Command::kOutput, 0x0A, "OUTPUT"},
      {Command::kError, 0x1F, "ERROR"},
      {Command::kJobDone, 0x0B, "JOB-DONE"},
      {Command::kServiceReloaded, 0x0C, "SERVICE-RELOADED"},
      {Command::kServiceReload, 0x1D, "SERVICE-RELOAD"},
  };
  for (const auto& row : kTable) {
    EXPECT_EQ(static_cast<uint8_t>(row.command), row.byte) << row.name;
    EXPECT_EQ(CommandName(row.command), row.name);
  }
  EXPECT_EQ(CommandName(static_cast<Command>(0x7e)), "UNKNOWN");
  EXPECT_EQ(CommandName(static_cast<Command>(0x00)), "UNKNOWN");
}

// Given a RESULT whose times are beyond what a Duration holds (a forged or
// broken worker; found by tests/fuzz), OutcomeFromWire should clamp them to
// the longest Duration instead of overflowing.
TEST(ConvertTest, ResultTimesBeyondADurationAreClamped) {
  wire::Result r;
  r.set_reason("ok");
  r.set_wall_us(UINT64_MAX);
  r.set_cpu_user_us(uint64_t{1} << 63);
  r.set_cpu_sys_us(12);
  const AttemptOutcome o = OutcomeFromWire(r);
  const auto longest =
      std::chrono::duration_cast<std::chrono::microseconds>(Duration::max());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::microseconds>(o.wall), longest);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::microseconds>(o.cpu_user), longest);
  EXPECT_EQ(o.cpu_sys, std::chrono::microseconds(12));
}

// Given an attempt handed back unstarted (worker-lost, not_started), the
// flag should survive the wire; given the flag with any other reason (a
// broken or forged worker), it should be dropped, so that only a hand-back
// is spared a retry.
TEST(ConvertTest, NotStartedTravelsOnlyWithWorkerLost) {
  AttemptOutcome back;
  back.reason = FailureReason::kWorkerLost;
  back.message = "worker w1 is draining";
  back.not_started = true;
  wire::Result r = OutcomeToWire(7, "w1", back);
  EXPECT_TRUE(r.not_started());
  EXPECT_TRUE(OutcomeFromWire(r).not_started);

  AttemptOutcome lost;
  lost.reason = FailureReason::kWorkerLost;
  EXPECT_FALSE(OutcomeToWire(8, "w1", lost).not_started());
  EXPECT_FALSE(OutcomeFromWire(OutcomeToWire(8, "w1", lost)).not_started);

  r.set_reason("exit");
  r.set_exit_code(1);
  EXPECT_FALSE(OutcomeFromWire(r).not_started);
}

}  // namespace
}  // namespace drover::protocol
