// core/spec/worker_config: the YAML file of `drover worker --config`.
// Snippets start on the line after R"( so that line 1 is the first written.
#include "core/spec/worker_config.h"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::Decode;
using test_util::Options;

WorkerConfigResult Load(std::string_view yaml) {
  if (!yaml.empty() && yaml.front() == '\n') yaml.remove_prefix(1);
  return LoadWorkerConfigString(yaml, "worker.yaml");
}

std::string Dump(const WorkerConfigResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += "  " + e.ToString() + "\n";
  return out;
}

// Given every key, should read them all, pools with the job schema.
TEST(WorkerConfigTest, ReadsEveryKey) {
  const auto r = Load(R"(
name: w1
coordinator: tcp://coordinator:7700
slots: {spawn: 4, threads: 8, fork: 0}
prefetch: 2
labels: {zone: a, gpu: "no"}
drain_timeout: 45s
spool_dir: /var/lib/drover/spool
pools:
  sorter:
    command: [node, fork_sort.js]
    instances: 2
  fns: {mode: cow, instances: 3}
plugins: [/usr/lib/drover/libmyfns.so]
)");
  ASSERT_TRUE(r.ok()) << Dump(r);
  const WorkerConfig& c = *r.config;
  EXPECT_EQ(c.name, "w1");
  EXPECT_EQ(c.coordinator, "tcp://coordinator:7700");
  EXPECT_EQ(c.slots, (std::map<std::string, int>{{"spawn", 4}, {"threads", 8}, {"fork", 0}}));
  EXPECT_EQ(c.prefetch, std::optional<int>(2));
  EXPECT_EQ(c.labels, (std::map<std::string, std::string>{{"zone", "a"}, {"gpu", "no"}}));
  ASSERT_TRUE(c.drain_timeout.has_value());
  EXPECT_EQ(*c.drain_timeout, std::chrono::seconds(45));
  EXPECT_EQ(c.spool_dir, "/var/lib/drover/spool");
  ASSERT_EQ(c.pools.size(), 2u);
  EXPECT_EQ(c.pools[0].name, "sorter");
  EXPECT_EQ(c.pools[0].command, (std::vector<std::string>{"node", "fork_sort.js"}));
  EXPECT_EQ(c.pools[0].instances, 2);
  EXPECT_EQ(c.pools[1].name, "fns");
  EXPECT_EQ(c.pools[1].mode, "cow");
  EXPECT_EQ(c.plugins, (std::vector<std::string>{"/usr/lib/drover/libmyfns.so"}));
}

// Given an empty file, should give an empty configuration (every key is
// optional).
TEST(WorkerConfigTest, EmptyFileIsAnEmptyConfig) {
  const auto r = Load("");
  ASSERT_TRUE(r.ok()) << Dump(r);
  EXPECT_TRUE(r.config->slots.empty());
  EXPECT_TRUE(r.config->pools.empty());
}

// Given a misspelt key, should report it at its line:column with a
// suggestion.
TEST(WorkerConfigTest, UnknownKeySuggestsClosest) {
  const auto r = Load(R"(
name: w1
lables: {zone: a}
)");
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].where.line, 2);
  EXPECT_EQ(r.errors[0].where.column, 1);
  EXPECT_NE(r.errors[0].ToString().find("worker.yaml:2:1: unknown key 'lables'"),
            std::string::npos)
      << Dump(r);
  EXPECT_NE(r.errors[0].message.find("did you mean 'labels'?"), std::string::npos);
}

// Given a negative slot count and a bad pool, should report both, each at
// its own position, through the job spec's pool reader.
TEST(WorkerConfigTest, ReportsEveryErrorWithPosition) {
  const auto r = Load(R"(
slots: {spawn: -1}
pools:
  p: {instances: 2}
)");
  ASSERT_EQ(r.errors.size(), 2u) << Dump(r);
  EXPECT_EQ(r.errors[0].where.line, 1);
  EXPECT_EQ(r.errors[0].where.column, 16);
  EXPECT_NE(r.errors[0].message.find("'spawn' in 'slots'"), std::string::npos) << Dump(r);
  EXPECT_EQ(r.errors[1].where.line, 3);
  EXPECT_NE(r.errors[1].message.find("pool 'p' has no 'command'"), std::string::npos)
      << Dump(r);
  EXPECT_FALSE(r.config.has_value());
}

// Given a prefetch that is not a count from 0, should name the key and its
// position.
TEST(WorkerConfigTest, PrefetchMustBeACount) {
  const auto r = Load("prefetch: -2\n");
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].where.line, 1);
  EXPECT_EQ(r.errors[0].where.column, 11);
  EXPECT_NE(r.errors[0].message.find("prefetch"), std::string::npos) << Dump(r);
}

// Given a coordinator that is not an endpoint, should say what is expected.
TEST(WorkerConfigTest, CoordinatorMustBeAnEndpoint) {
  const auto r = Load("coordinator: coordinator:7700\n");
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].where.column, 14);
  EXPECT_NE(r.errors[0].message.find("tcp://coordinator:7700"), std::string::npos);
}

// Given a list where a map belongs, should name the key and what it got.
TEST(WorkerConfigTest, SlotsMustBeAMap) {
  const auto r = Load("slots: [spawn]\n");
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_NE(r.errors[0].message.find("'slots' must be a map"), std::string::npos);
  EXPECT_NE(r.errors[0].message.find("got a list"), std::string::npos);
}

// Given a file that does not exist, should give one error naming it.
TEST(WorkerConfigTest, MissingFileIsOneError) {
  const auto r = LoadWorkerConfigFile("/nonexistent/worker.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].ToString().find("/nonexistent/worker.yaml"), std::string::npos);
  EXPECT_NE(r.errors[0].message.find("cannot read the file"), std::string::npos);
}

// Given a fork task naming a pool its job does not declare, should refuse
// it by default (`drover run`) and accept it with undeclared_pools (a
// coordinator, whose workers may declare it), keeping message or fn/args.
TEST(WorkerConfigTest, UndeclaredPoolIsAWorkersPoolOnlyWhenAllowed) {
  const std::string_view yaml = R"(version: 1
tasks:
  ask: {backend: fork, pool: sorter, message: [3, 1]}
  call: {backend: fork, pool: fns, fn: sort, args: {numbers: [2, 1]}}
)";
  const LoadResult strict = LoadString(yaml, "job.yaml", Options());
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.errors[0].message.find("unknown pool 'sorter'"), std::string::npos);

  LoadOptions options;
  options.undeclared_pools = true;
  const LoadResult loose = LoadString(yaml, "job.yaml", Options(options));
  ASSERT_TRUE(loose.ok()) << loose.errors[0].ToString();
  const JobSpec& spec = *loose.spec;
  ASSERT_EQ(spec.tasks.size(), 2u);
  EXPECT_EQ(Decode(spec.tasks[0]).pool, "sorter");
  EXPECT_EQ(Decode(spec.tasks[0]).message_json, "[3,1]");
  EXPECT_FALSE(Decode(spec.tasks[0]).pool_spec.has_value());  // the worker's pool
  EXPECT_EQ(spec.tasks[0].worker_pool, "sorter");
  EXPECT_EQ(Decode(spec.tasks[1]).pool, "fns");
  EXPECT_EQ(Decode(spec.tasks[1]).fn, "sort");
  EXPECT_EQ(Decode(spec.tasks[1]).args_json, R"({"numbers":[2,1]})");
  EXPECT_EQ(spec.FindPool("sorter"), nullptr);
}

// Given `services:`, should read them with the job spec's schema, each
// with where it is declared.
TEST(WorkerConfigTest, ReadsServicesWithTheJobSchema) {
  const auto r = Load(R"(
services:
  api:
    command: [drover, serve, hello]
    instances: 3
    listen: 127.0.0.1:8080
    mode: round-robin
  web: {command: node web.js}
)");
  ASSERT_TRUE(r.ok()) << Dump(r);
  ASSERT_EQ(r.config->services.size(), 2u);
  const ServiceDecl& api = r.config->services[0];
  EXPECT_EQ(api.name, "api");
  EXPECT_EQ(api.command, (std::vector<std::string>{"drover", "serve", "hello"}));
  EXPECT_EQ(api.instances, 3);
  EXPECT_EQ(api.port, 8080);
  EXPECT_EQ(api.mode, "round-robin");
  EXPECT_EQ(api.where.file, "worker.yaml");
  EXPECT_EQ(api.where.line, 2);
  EXPECT_EQ(api.where.column, 3);
  EXPECT_EQ(r.config->services[1].command,
            (std::vector<std::string>{"/bin/sh", "-c", "node web.js"}));
}

// Given `from: worker` in a worker configuration, should refuse it at the
// service's line:column: the worker is where services are declared.
TEST(WorkerConfigTest, FromWorkerIsAnErrorInAWorkerConfig) {
  const auto r = Load(R"(
services:
  ok: {command: [drover, serve, hello]}
  api: {from: worker}
)");
  ASSERT_EQ(r.errors.size(), 1u) << Dump(r);
  EXPECT_EQ(r.errors[0].where.line, 3);
  EXPECT_EQ(r.errors[0].where.column, 3);
  EXPECT_NE(r.errors[0].message.find("service 'api': 'from: worker' is for a job spec"),
            std::string::npos)
      << Dump(r);
  EXPECT_FALSE(r.config.has_value());
}

// Given the shipped example, should load without errors.
TEST(WorkerConfigTest, ExampleConfigLoads) {
  const auto r = LoadWorkerConfigFile(std::string(DROVER_SOURCE_DIR) +
                                      "/configs/worker.example.yaml");
  ASSERT_TRUE(r.ok()) << Dump(r);
  EXPECT_EQ(r.config->name, "w1");
  EXPECT_EQ(r.config->pools.size(), 3u);
}

}  // namespace
}  // namespace drover::spec
