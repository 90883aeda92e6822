// `limits:` end to end: `drover run` with spawn tasks that run into each of
// their limits (a CPU spinner, a memory hog, a descriptor leak, a bounded
// fork bomb) next to a task without limits that must complete on the same
// worker, and the reason and message `drover status` shows for each.
// Every wait has a deadline; the fork bomb is bounded even where its limit
// is not enforced (a timeout ends it, and the group kill reaps the rest).
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "tests/integration/cli_test_util.h"

namespace drover {
namespace {

using nlohmann::json;
using testing::DroverCliTest;
using testing::LinesWith;
using testing::ProcessResult;
using testing::TasksByName;

// RLIMIT_NPROC does not bind root: as root, the fork bomb drops to the
// `nobody` user (setpriv keeps the limits it inherits) so that the limit
// is tested where it applies.
std::string AsUnprivileged(const std::string& script) {
  if (::getuid() != 0) return "sh -c '" + script + "'";
  return "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '" + script + "'";
}

// Given a job with four tasks that each exceed one of their limits and a
// task without limits, all five at once on one worker, `drover run` should exit 1 with
// the four failing and the plain task succeeded; the CPU spinner and the
// memory hog with reason `limit` naming their limit, the descriptor leak
// and the fork bomb (which fail inside the task, on EMFILE and EAGAIN) with
// their own exit code (the bomb not by its timeout).
TEST_F(DroverCliTest, EachLimitFailsItsTaskAlone) {
  const std::string bomb =
      AsUnprivileged("i=0; while [ $i -lt 100 ]; do sleep 20 & i=$((i+1)); done; wait");
  const std::string spec = Spec("limits.yaml", R"yaml(version: 1
name: limits
defaults:
  limits: {files: 256}
tasks:
  plain:
    run: 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done'
  spinner:
    limits: {cpu: 1s}
    run: 'while :; do :; done'
  hog:
    limits: {memory: 64MiB}
    run: head -c 1G /dev/zero | tail
  leak:
    limits: {files: 32}
    run: [python3, -c, "import os\nwhile True: os.open('/dev/null', os.O_RDONLY)"]
  bomb:
    limits: {processes: 16}
    timeout: 30s
    cwd: /
    run: )yaml" + bomb + R"yaml(
)yaml");
  const ProcessResult r = Run(spec, {"--jobs", "5"});
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_EQ(LinesWith(r.out, "ok ", {" plain "}).size(), 1u) << r.out;

  const json doc = Status();
  ASSERT_TRUE(doc.is_object());
  auto tasks = TasksByName(doc);
  EXPECT_EQ(tasks["plain"]["status"], "succeeded");

  EXPECT_EQ(tasks["spinner"]["status"], "failed");
  EXPECT_EQ(tasks["spinner"]["reason"], "limit");
  EXPECT_NE(tasks["spinner"]["detail"].get<std::string>().find(
                "cpu limit 1s exceeded (SIGXCPU)"),
            std::string::npos)
      << tasks["spinner"];

  EXPECT_EQ(tasks["hog"]["status"], "failed");
  EXPECT_EQ(tasks["hog"]["reason"], "limit");
  EXPECT_NE(tasks["hog"]["detail"].get<std::string>().find("memory limit 64MiB reached"),
            std::string::npos)
      << tasks["hog"];

  EXPECT_EQ(tasks["leak"]["status"], "failed");
  EXPECT_EQ(tasks["leak"]["reason"], "exit") << tasks["leak"];

  EXPECT_EQ(tasks["bomb"]["status"], "failed");
  EXPECT_EQ(tasks["bomb"]["reason"], "exit") << tasks["bomb"];
}

}  // namespace
}  // namespace drover
