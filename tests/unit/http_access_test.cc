// tools/http: the --http address rule, the token file, and the chart
// history's reading of the metrics text. Plain data.
#include <gtest/gtest.h>

#include "tools/http/access.h"
#include "tools/http/history.h"

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

}  // namespace
}  // namespace drover::http
