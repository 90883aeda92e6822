// tools/http: the --http address rule, the token file, HttpStatusOf, and the chart
// history's reading of the metrics text. Plain data.
#include <gtest/gtest.h>

#include "tools/http/access.h"
#include "tools/http/history.h"
#include "tools/http/http_status.h"

namespace drover::http {
namespace {

// Given addresses in the forms --http takes, ParseHttpAddress should split
// them, and refuse one without a port naming the text.
TEST(HttpAccessTest, ParsesAddresses) {
  auto a = ParseHttpAddress("127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  auto b = ParseHttpAddress("[::1]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  auto c = ParseHttpAddress(":9000");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "");
  auto bad = ParseHttpAddress("localhost");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'localhost'"), std::string::npos);
  EXPECT_FALSE(ParseHttpAddress("1.2.3.4:99999").ok());
  // The flag it came from is named: a worker's is --metrics.
  auto metrics = ParseHttpAddress("bad", "--metrics");
  ASSERT_FALSE(metrics.ok());
  EXPECT_EQ(metrics.status().message().rfind("--metrics: 'bad' has no port", 0), 0u)
      << metrics.status().message();
}

// Given loopback and other hosts, only loopback ones should count as such.
TEST(HttpAccessTest, LoopbackHosts) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.1.2.3"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost(""));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("127.evil.example"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
}

// Given a non-loopback address, the server should need tokens; with
// tokens, it should be allowed.
TEST(HttpAccessTest, NonLoopbackNeedsTokens) {
  const HttpAddress any{"0.0.0.0", 80};
  const Status refused = CheckHttpSecurity(any, Tokens());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("--http-token"), std::string::npos);
  auto tokens = Tokens::Parse("read 0123456789abcdef\n", "t");
  ASSERT_TRUE(tokens.ok());
  EXPECT_TRUE(CheckHttpSecurity(any, *tokens).ok());
  EXPECT_TRUE(CheckHttpSecurity({"127.0.0.1", 80}, Tokens()).ok());
}

// Given a token file with a read and an admin token, each token should
// give its access and anything else none; a bad line should be an error
// naming FILE:LINE.
TEST(HttpAccessTest, TokensGiveTheirAccess) {
  auto tokens = Tokens::Parse(
      "# comment\n\nread  rrrrrrrrrrrrrrrrrrrr\nadmin aaaaaaaaaaaaaaaaaaaa\r\n",
      "tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  EXPECT_TRUE(tokens->required());
  EXPECT_EQ(tokens->Check("rrrrrrrrrrrrrrrrrrrr"), Access::kRead);
  EXPECT_EQ(tokens->Check("aaaaaaaaaaaaaaaaaaaa"), Access::kAdmin);
  EXPECT_EQ(tokens->Check("aaaaaaaaaaaaaaaaaaa"), Access::kNone);
  EXPECT_EQ(tokens->Check(""), Access::kNone);
  EXPECT_EQ(Tokens().Check(""), Access::kAdmin);
  auto bad =
      Tokens::Parse("read rrrrrrrrrrrrrrrrrrrr\nwrite xxxxxxxxxxxxxxxxxxxx\n", "tokens");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tokens:2: unknown role 'write'"),
            std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(Tokens::Parse("admin short\n", "t").ok());
  EXPECT_FALSE(Tokens::Parse("# nothing\n", "t").ok());
}

// Given a metrics text, SumMetric should add the samples of one family
// (not of a family whose name it prefixes), optionally of one state.
TEST(HttpHistoryTest, SumsFamilies) {
  const std::string text =
      "# HELP drover_tasks x\n"
      "drover_tasks{state=\"running\",backend=\"spawn\"} 2\n"
      "drover_tasks{state=\"running\",backend=\"threads\"} 3\n"
      "drover_tasks{state=\"ready\",backend=\"spawn\"} 5\n"
      "drover_tasks_other 100\n"
      "drover_results_total{backend=\"spawn\",reason=\"ok\"} 10\n";
  EXPECT_EQ(SumMetric(text, "drover_tasks"), 10);
  EXPECT_EQ(SumMetric(text, "drover_tasks", "running"), 5);
  EXPECT_EQ(SumMetric(text, "drover_results_total"), 10);
  EXPECT_EQ(SumMetric(text, "drover_absent"), 0);
}

// Given two samples 2 s apart, the history should give the rate between
// them, and none across a counter reset.
TEST(HttpHistoryTest, RatesBetweenSamples) {
  History h(3);
  h.Add({1000, 10, 10, 0, 0, 0});
  h.Add({3000, 30, 30, 4, 1, 1});
  h.Add({5000, 5, 5, 0, 0, 1});  // restarted coordinator
  const auto points = h.Json();
  ASSERT_EQ(points.size(), 3u);
  EXPECT_EQ(points[0]["results_per_s"], 0);
  EXPECT_EQ(points[1]["results_per_s"], 10);
  EXPECT_EQ(points[1]["ready"], 4);
  EXPECT_EQ(points[2]["results_per_s"], 0);
  h.Add({7000, 7, 7, 0, 0, 1});
  EXPECT_EQ(h.Json().size(), 3u);
}

// Given statuses this process made, HttpStatusOf should map them by their
// code: no answer 503, not found 404, a bad argument 400.
TEST(HttpStatusTest, MapsLocalStatusesByCode) {
  EXPECT_EQ(HttpStatusOf(Unavailable("cannot send")), 503);
  EXPECT_EQ(HttpStatusOf(DeadlineExceeded("no answer in 10s")), 503);
  EXPECT_EQ(HttpStatusOf(NotFound("no such thing")), 404);
  EXPECT_EQ(HttpStatusOf(InvalidArgument("no job here either")), 400);
  EXPECT_EQ(HttpStatusOf(Internal("bug")), 500);
}

// Given the coordinator's ERROR messages (which carry no code; the client
// makes them kFailedPrecondition), HttpStatusOf should map each
// documented form: what does not exist 404, what the state forbids 409,
// a key outside its role 403, a full state disk 503, the rest 400.
TEST(HttpStatusTest, MapsTheCoordinatorsErrorForms) {
  auto of = [](const std::string& text) {
    return HttpStatusOf(FailedPrecondition(text));
  };
  EXPECT_EQ(of("no job 20261202-101500-aaaa"), 404);
  EXPECT_EQ(of("no job has been submitted"), 404);
  EXPECT_EQ(of("job J has no task 'nope'"), 404);
  EXPECT_EQ(of("task 't' has no attempt 3 (it has made 1)"), 404);
  EXPECT_EQ(of("no pipeline 'x' (drover pipelines lists them)"), 404);
  EXPECT_EQ(of("this coordinator runs no pipelines (start it with --pipelines DIR)"),
            404);
  EXPECT_EQ(of("job J has already finished (succeeded)"), 409);
  EXPECT_EQ(of("task 'nap' has already finished (cancelled)"), 409);
  EXPECT_EQ(of("job J is not running"), 409);
  EXPECT_EQ(of("job J is still running; wait for it or cancel it first"), 409);
  EXPECT_EQ(of("pipeline p is still running job J (concurrency: skip); not started"),
            409);
  EXPECT_EQ(of("a run of pipeline p already waits for job J"), 409);
  EXPECT_EQ(
      of("CANCEL-JOB refused: this connection's key K (ci) has role read, which may "
         "send ..."),
      403);
  EXPECT_EQ(of("the coordinator cannot record anything now (disk full); try again when "
               "the state disk has room"),
            503);
  EXPECT_EQ(of("StatusRequest.task_state: unknown state 'runing'"), 400);
}

}  // namespace
}  // namespace drover::http
