// The plugin loader (dlopen) against the example plugin and the loader's
// fixture plugins: load errors named with their file, the ABI version, a
// name two plugins register, configured plugins, and a job's plugins loaded
// once before the lookup. The fixture is threads_backend_fixture.h.
#include <gtest/gtest.h>

#include "tests/integration/threads_backend_fixture.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using testing::Attempt;
using testing::Call;
using testing::Encode;
using testing::Gate;
using testing::In;
using testing::kWait;
using testing::PollUntil;
using testing::RecordingEvents;
using testing::ThreadsBackendTest;

// ---------------------------------------------------------------------------
// Plugin loading

std::string Abs(const char* path) { return fs::absolute(path).string(); }

// Given a path that does not exist, should fail naming it.
TEST(PluginLoaderTest, MissingFileIsNamed) {
  FunctionRegistry registry;
  const Status s = LoadPlugin("/nonexistent/drover/plugin.so", registry);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "plugin /nonexistent/drover/plugin.so: no such file");
}

// Given a file that is not a shared library, should fail with dlopen's text.
TEST(PluginLoaderTest, NotALibraryGivesDlopenError) {
  const fs::path file = fs::path(::testing::TempDir()) /
                        ("not_a_plugin_" + std::to_string(::getpid()) + ".so");
  std::ofstream(file) << "this is text, not ELF\n";
  FunctionRegistry registry;
  const Status s = LoadPlugin(file, registry);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("plugin " + file.string() + ": cannot load: ", 0), 0u)
      << s.message();
  fs::remove(file);
}

// Given a library without the entry symbol, should fail naming the file and
// the symbol.
TEST(PluginLoaderTest, LibraryWithoutEntrySymbolIsRefused) {
  FunctionRegistry registry;
  const Status s = LoadPlugin(DROVER_NO_ENTRY_PLUGIN, registry);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("plugin " + Abs(DROVER_NO_ENTRY_PLUGIN)), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("no entry symbol 'drover_plugin_entry'"), std::string::npos)
      << s.message();
}

// Given a plugin built for ABI 99, should refuse it saying both versions.
TEST(PluginLoaderTest, WrongAbiVersionIsRefused) {
  FunctionRegistry registry;
  const Status s = LoadPlugin(DROVER_WRONG_ABI_PLUGIN, registry);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "plugin " + Abs(DROVER_WRONG_ABI_PLUGIN) +
                             " was built for plugin ABI 99; this drover speaks 1");
  EXPECT_EQ(registry.size(), 0u);
}

// Given two plugins that define `reverse`, should refuse the second naming
// both files, and register nothing of it.
TEST(PluginLoaderTest, DuplicateNameAcrossPluginsNamesBothFiles) {
  FunctionRegistry registry;
  ASSERT_TRUE(LoadPlugin(DROVER_EXAMPLE_PLUGIN, registry).ok());
  const Status s = LoadPlugin(DROVER_DUP_REVERSE_PLUGIN, registry);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(), "function 'reverse' is defined twice: by plugin " +
                             Abs(DROVER_EXAMPLE_PLUGIN) + " and by plugin " +
                             Abs(DROVER_DUP_REVERSE_PLUGIN));
  EXPECT_EQ(registry.SourceOf("reverse"), "plugin " + Abs(DROVER_EXAMPLE_PLUGIN));
  EXPECT_EQ(registry.Names(), (std::vector<std::string>{"reverse", "sum"}));
}

// Given a worker config with a bad plugin, ThreadsBackend::Create should fail
// naming it; with the example plugin it should run its functions.
TEST(PluginLoaderTest, CreateLoadsConfiguredPlugins) {
  BackendConfig bad;
  bad.slots = 1;
  bad.plugins = {DROVER_EXAMPLE_PLUGIN, DROVER_WRONG_ABI_PLUGIN};
  auto failed = ThreadsBackend::Create(bad);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find(Abs(DROVER_WRONG_ABI_PLUGIN)),
            std::string::npos)
      << failed.status().message();

  BackendConfig zero;
  zero.slots = 0;
  EXPECT_EQ(ThreadsBackend::Create(zero).status().code(), StatusCode::kInvalidArgument);

  BackendConfig good;
  good.slots = 2;
  good.plugins = {DROVER_EXAMPLE_PLUGIN};
  auto backend = ThreadsBackend::Create(good);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  EXPECT_NE((*backend)->registry()->Find("sum"), nullptr);
  EXPECT_NE((*backend)->registry()->Find("fib"), nullptr);
  RecordingEvents events;
  ASSERT_TRUE((*backend)->Start(&events).ok());
  ASSERT_TRUE(
      (*backend)->Submit(Encode(Attempt(1, "sum", R"({"numbers": [40, 2]})"))).ok());
  auto o = events.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->result_json, "42");
  (*backend)->Shutdown(seconds(5));
}

// Given attempts that name the job's plugins, should load each plugin once
// before the lookup (whatever the path's spelling, and also when the
// worker's config loaded it), keep its functions for later attempts, and
// fail an attempt whose plugin does not load as launch-failed naming it.
TEST(PluginLoaderTest, JobPluginsLoadOnceBeforeTheLookup) {
  BackendConfig config;
  config.slots = 2;
  auto created = ThreadsBackend::Create(config);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ThreadsBackend& backend = **created;
  EXPECT_EQ(backend.registry()->Find("reverse"), nullptr);
  RecordingEvents events;
  ASSERT_TRUE(backend.Start(&events).ok());

  Call a = Attempt(1, "reverse", R"({"string": "abc"})");
  a.plugins = {DROVER_EXAMPLE_PLUGIN};
  ASSERT_TRUE(backend.Submit(Encode(std::move(a))).ok());
  auto o = events.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->ok()) << o->Describe();
  EXPECT_EQ(o->result_json, "\"cba\"");

  // Loaded for good: no plugins needed on the next attempt, and another
  // spelling of the same file is not a second copy (no duplicate names).
  ASSERT_TRUE(backend.Submit(Encode(Attempt(2, "sum", "[1, 2]"))).ok());
  const fs::path example(DROVER_EXAMPLE_PLUGIN);
  Call b = Attempt(3, "reverse", R"("xy")");
  b.plugins = {(example.parent_path() / "." / example.filename()).string()};
  ASSERT_TRUE(backend.Submit(Encode(std::move(b))).ok());
  o = events.WaitFor(2);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->result_json, "3");
  o = events.WaitFor(3);
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->ok()) << o->Describe();
  EXPECT_EQ(o->result_json, "\"yx\"");

  Call c = Attempt(4, "future");
  c.plugins = {DROVER_WRONG_ABI_PLUGIN};
  ASSERT_TRUE(backend.Submit(Encode(std::move(c))).ok());
  o = events.WaitFor(4);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->reason, FailureReason::kLaunchFailed);
  EXPECT_EQ(o->message, "plugin " + Abs(DROVER_WRONG_ABI_PLUGIN) +
                            " was built for plugin ABI 99; this drover speaks 1");
  EXPECT_EQ(events.StartCount(4), 0u);
  backend.Shutdown(seconds(5));

  // A worker that loaded the plugin from its config takes a job naming it.
  BackendConfig with_example;
  with_example.slots = 1;
  with_example.plugins = {DROVER_EXAMPLE_PLUGIN};
  auto second = ThreadsBackend::Create(with_example);
  ASSERT_TRUE(second.ok());
  RecordingEvents events2;
  ASSERT_TRUE((*second)->Start(&events2).ok());
  Call d = Attempt(1, "sum", "[20, 22]");
  d.plugins = {DROVER_EXAMPLE_PLUGIN};
  ASSERT_TRUE((*second)->Submit(Encode(std::move(d))).ok());
  o = events2.WaitFor(1);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->result_json, "42") << o->Describe();
}

}  // namespace
}  // namespace drover
