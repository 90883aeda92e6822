// The cluster backend's part of the spec: `services`, a task's `service`
// and `request`, and `${services.NAME.port|host}` in any task.
#include <gtest/gtest.h>

#include "core/spec/job_spec.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::Decode;
using test_util::Dump;
using test_util::HasOnlyError;
using test_util::Load;
using test_util::Options;
using test_util::Spec;

// Given a service with every key, should read each into its declaration.
TEST(SpecServicesTest, ReadsEveryServiceKey) {
  const LoadResult r = Load(R"(
version: 1
services:
  hello:
    command: [node, hello_server.js]
    instances: 3
    listen: 0.0.0.0:8080
    mode: round-robin
    ready: {http: /health, timeout: 5s}
    env: {NODE_ENV: production}
    cwd: srv
    idle_timeout: 2m
tasks: {a: {backend: cluster, service: hello}}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.services.size(), 1u);
  const ServiceDecl& s = spec.services[0];
  EXPECT_EQ(s.name, "hello");
  EXPECT_EQ(s.command, (std::vector<std::string>{"node", "hello_server.js"}));
  EXPECT_EQ(s.instances, 3);
  EXPECT_EQ(s.host, "0.0.0.0");
  EXPECT_EQ(s.port, 8080);
  EXPECT_EQ(s.mode, "round-robin");
  EXPECT_EQ(s.ready, "http");
  EXPECT_EQ(s.ready_path, "/health");
  EXPECT_EQ(s.ready_timeout, std::chrono::seconds(5));
  EXPECT_EQ(s.env, (EnvList{{"NODE_ENV", "production"}}));
  EXPECT_EQ(s.cwd, "srv");
  EXPECT_EQ(s.idle_timeout, std::chrono::minutes(2));
  EXPECT_EQ(s.where.line, 3);
  EXPECT_EQ(spec.FindService("hello"), &spec.services[0]);
  EXPECT_EQ(spec.FindService("nope"), nullptr);
}

// Given a service with only a command (a string), should take the
// documented defaults: 1 instance on 127.0.0.1, a free port, reuseport, a
// TCP check within 30s, run through /bin/sh.
TEST(SpecServicesTest, ServiceDefaults) {
  const LoadResult r = Load(R"(
version: 1
services: {web: {command: ./server --fast}}
tasks: {a: {backend: cluster, service: web}}
)");
  const ServiceDecl& s = Spec(r).services.at(0);
  EXPECT_EQ(s.command, (std::vector<std::string>{"/bin/sh", "-c", "./server --fast"}));
  EXPECT_EQ(s.instances, 1);
  EXPECT_EQ(s.host, "127.0.0.1");
  EXPECT_EQ(s.port, 0);
  EXPECT_EQ(s.mode, "reuseport");
  EXPECT_EQ(s.ready, "tcp");
  EXPECT_EQ(s.ready_timeout, std::chrono::seconds(30));
  EXPECT_EQ(s.idle_timeout, std::chrono::seconds(60));
}

// Given the forms of `listen`, should parse host and port, IPv6 in brackets
// and a bare port on 127.0.0.1.
TEST(SpecServicesTest, ListenForms) {
  const LoadResult r = Load(R"(
version: 1
services:
  a: {command: x, listen: "[::1]:9000"}
  b: {command: x, listen: 7000}
  c: {command: x, listen: localhost:0}
tasks: {t: {run: x}}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.services.size(), 3u);
  EXPECT_EQ(spec.services[0].host, "::1");
  EXPECT_EQ(spec.services[0].port, 9000);
  EXPECT_EQ(spec.services[1].host, "127.0.0.1");
  EXPECT_EQ(spec.services[1].port, 7000);
  EXPECT_EQ(spec.services[2].host, "localhost");
  EXPECT_EQ(spec.services[2].port, 0);
}

// Given a port out of range, should report it at the value with the range.
TEST(SpecServicesTest, PortOutOfRange) {
  const LoadResult r = Load(R"(
version: 1
services: {a: {command: x, listen: "127.0.0.1:70000"}}
tasks: {t: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 36, {"'listen' in service 'a'", "0 to 65535", "70000"}));
}

// Given a misspelt mode, should suggest the closest one.
TEST(SpecServicesTest, UnknownModeSuggests) {
  const LoadResult r = Load(R"(
version: 1
services: {a: {command: x, mode: reuse-port}}
tasks: {t: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 34, {"unknown mode 'reuse-port'", "did you mean 'reuseport'?"}));
}

// Given a misspelt service key, should suggest the known one.
TEST(SpecServicesTest, UnknownServiceKeySuggests) {
  const LoadResult r = Load(R"(
version: 1
services:
  a:
    command: x
    instanses: 2
tasks: {t: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 5, {"unknown key 'instanses' in service 'a'",
                                     "did you mean 'instances'?"}));
}

// Given a service without a command, should say what is missing.
TEST(SpecServicesTest, MissingCommand) {
  const LoadResult r = Load(R"(
version: 1
services: {a: {instances: 2}}
tasks: {t: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 12, {"service 'a' has no 'command'"}));
}

// Given `ready` as a bare word, should accept tcp and http and suggest for
// a typo.
TEST(SpecServicesTest, ReadyForms) {
  const LoadResult ok = Load(R"(
version: 1
services: {a: {command: x, ready: http}, b: {command: x, ready: {timeout: 2s}}}
tasks: {t: {run: x}}
)");
  const JobSpec& spec = Spec(ok);
  ASSERT_EQ(spec.services.size(), 2u);
  EXPECT_EQ(spec.services[0].ready, "http");
  EXPECT_EQ(spec.services[0].ready_path, "/");
  EXPECT_EQ(spec.services[1].ready, "tcp");
  EXPECT_EQ(spec.services[1].ready_timeout, std::chrono::seconds(2));

  const LoadResult bad = Load(R"(
version: 1
services: {a: {command: x, ready: htp}}
tasks: {t: {run: x}}
)");
  EXPECT_TRUE(HasOnlyError(bad, 2, 35, {"unknown readiness check 'htp'", "did you mean 'http'?"}));
}

// Given a cluster task with a full request, should carry it to the task.
TEST(SpecServicesTest, ClusterTaskRequest) {
  const LoadResult r = Load(R"(
version: 1
services: {hello: {command: x}}
tasks:
  hit:
    backend: cluster
    service: hello
    request:
      method: POST
      path: /sort?n=3
      headers: {Content-Type: text/plain, X-Try: "1"}
      body: "3 1 2"
      expect: 201
      timeout: 2s
    retries: 2
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 1u);
  const TaskSpec& t = spec.tasks[0];
  EXPECT_EQ(t.backend, "cluster");
  EXPECT_EQ(Decode(t).service, "hello");
  EXPECT_EQ(t.services, (std::vector<std::string>{"hello"}));
  EXPECT_EQ(Decode(t).request.method, "POST");
  EXPECT_EQ(Decode(t).request.path, "/sort?n=3");
  EXPECT_EQ(Decode(t).request.headers, (EnvList{{"Content-Type", "text/plain"}, {"X-Try", "1"}}));
  EXPECT_EQ(Decode(t).request.body, "3 1 2");
  EXPECT_EQ(Decode(t).request.expect, 201);
  EXPECT_EQ(Decode(t).request.timeout, std::chrono::seconds(2));
  EXPECT_EQ(t.retries, 2);
  EXPECT_TRUE(Decode(t).argv.empty());
}

// Given a cluster task without `request`, should send GET / and expect 200.
TEST(SpecServicesTest, DefaultRequest) {
  const LoadResult r = Load(R"(
version: 1
services: {hello: {command: x}}
defaults: {service: hello}
tasks: {hit: {backend: cluster}}
)");
  const TaskSpec& t = Spec(r).tasks.at(0);
  EXPECT_EQ(Decode(t).service, "hello");
  EXPECT_EQ(Decode(t).request.method, "GET");
  EXPECT_EQ(Decode(t).request.path, "/");
  EXPECT_EQ(Decode(t).request.expect, 200);
  EXPECT_FALSE(Decode(t).request.timeout.has_value());
}

// Given a matrix cluster task, should resolve ${matrix.KEY} in the path.
TEST(SpecServicesTest, MatrixInRequestPath) {
  const LoadResult r = Load(R"(
version: 1
services: {hello: {command: x}}
tasks:
  hit:
    backend: cluster
    service: hello
    matrix: {n: [1, 2]}
    request: {path: "/item/${matrix.n}", body: "n=${matrix.n}"}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 2u);
  EXPECT_EQ(Decode(spec.tasks[0]).request.path, "/item/1");
  EXPECT_EQ(Decode(spec.tasks[1]).request.path, "/item/2");
  EXPECT_EQ(Decode(spec.tasks[1]).request.body, "n=2");
}

// Given a cluster task naming a misspelt service, should suggest the
// declared one.
TEST(SpecServicesTest, UnknownServiceSuggests) {
  const LoadResult r = Load(R"(
version: 1
services: {hello: {command: x}}
tasks: {a: {backend: cluster, service: helo}}
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 40, {"unknown service 'helo' in task 'a'",
                                      "did you mean 'hello'?"}));
}

// Given a cluster task without a service, should ask for one.
TEST(SpecServicesTest, ClusterTaskNeedsService) {
  const LoadResult r = Load(R"(
version: 1
services: {hello: {command: x}}
tasks: {a: {backend: cluster}}
)");
  EXPECT_TRUE(HasOnlyError(r, 3, 9, {"task 'a' has backend cluster but no 'service'"}));
}

// Given `run` in a cluster task and `request` in a spawn task, should say
// each does not apply.
TEST(SpecServicesTest, KeysOfOtherBackends) {
  const LoadResult r = Load(R"(
version: 1
services: {hello: {command: x}}
tasks:
  a: {backend: cluster, service: hello, run: x}
  b: {run: x, request: {path: /}}
)");
  ASSERT_EQ(r.errors.size(), 2u) << Dump(r);
  EXPECT_NE(r.errors[0].message.find("'run' in task 'a' does not apply to backend cluster"),
            std::string::npos) << Dump(r);
  EXPECT_NE(r.errors[1].message.find("'request' in task 'b' only applies to backend cluster"),
            std::string::npos) << Dump(r);
}

// Given bad request values, should report each at its value.
TEST(SpecServicesTest, BadRequestValues) {
  const LoadResult r = Load(R"(
version: 1
services: {hello: {command: x}}
tasks:
  a:
    backend: cluster
    service: hello
    request:
      method: "GE T"
      path: nope
      expect: 700
      mehtod: GET
)");
  ASSERT_EQ(r.errors.size(), 4u) << Dump(r);
  EXPECT_EQ(r.errors[0].where.line, 8);
  EXPECT_NE(r.errors[0].message.find("'method'"), std::string::npos);
  EXPECT_NE(r.errors[1].message.find("'path'"), std::string::npos);
  EXPECT_NE(r.errors[2].message.find("at most 599"), std::string::npos);
  EXPECT_NE(r.errors[3].message.find("did you mean 'method'?"), std::string::npos);
}

// Given ${services.NAME.port} in a spawn task's run and env, should keep
// the reference as text and list the service as one the task needs.
TEST(SpecServicesTest, ReferenceInSpawnTaskNeedsService) {
  const LoadResult r = Load(R"(
version: 1
services: {api: {command: x}, db: {command: y}}
tasks:
  probe:
    run: curl -s http://${services.api.host}:${services.api.port}/
    env: {DB_PORT: "${services.db.port}"}
  plain: {run: echo hi}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 2u);
  EXPECT_EQ(Decode(spec.tasks[0]).argv.back(),
            "curl -s http://${services.api.host}:${services.api.port}/");
  EXPECT_EQ(spec.tasks[0].services, (std::vector<std::string>{"api", "db"}));
  EXPECT_TRUE(spec.tasks[1].services.empty());
  EXPECT_NE(spec.tasks[0].fingerprint, 0u);
}

// Given references in a threads task's args and a fork task's message,
// should note the services there too.
TEST(SpecServicesTest, ReferenceInArgsAndMessage) {
  const LoadResult r = Load(R"(
version: 1
services: {api: {command: x}}
pools: {p: {command: y}}
tasks:
  t: {backend: threads, fn: echo, args: {url: "http://127.0.0.1:${services.api.port}"}}
  f: {backend: fork, pool: p, message: ["${services.api.port}"]}
)");
  const JobSpec& spec = Spec(r);
  EXPECT_EQ(spec.tasks[0].services, (std::vector<std::string>{"api"}));
  EXPECT_EQ(spec.tasks[1].services, (std::vector<std::string>{"api"}));
  EXPECT_EQ(Decode(spec.tasks[1]).message_json, "[\"${services.api.port}\"]");
}

// Given a reference to an undeclared service, or to an unknown field,
// should report it with a suggestion.
TEST(SpecServicesTest, BadReferences) {
  const LoadResult unknown = Load(R"(
version: 1
services: {api: {command: x}}
tasks: {a: {run: "echo ${services.apo.port}"}}
)");
  EXPECT_TRUE(HasOnlyError(unknown, 3, 18, {"'${services.apo.port}' in task 'a'",
                                            "unknown service 'apo'", "did you mean 'api'?"}));
  const LoadResult field = Load(R"(
version: 1
services: {api: {command: x}}
tasks: {a: {run: "echo ${services.api.prot}"}}
)");
  EXPECT_TRUE(HasOnlyError(field, 3, 18, {"unknown field 'prot'", "did you mean 'port'?"}));
  const LoadResult none = Load(R"(
version: 1
tasks: {a: {run: "echo ${services.api.port}"}}
)");
  EXPECT_TRUE(HasOnlyError(none, 2, 18, {"no services are declared"}));
}

// Given a change to a service's command, should change the fingerprint of
// the tasks that need it and not of the others; `instances` should not.
TEST(SpecServicesTest, ServiceDeclarationInFingerprint) {
  auto fingerprints = [](std::string_view command, int instances) {
    const std::string yaml = "version: 1\nservices: {s: {command: \"" + std::string(command) +
                             "\", instances: " + std::to_string(instances) +
                             "}}\ntasks: {a: {backend: cluster, service: s}, b: {run: x}}\n";
    const LoadResult r = LoadString(yaml, "job.yaml", Options());
    EXPECT_TRUE(r.ok()) << Dump(r);
    return std::make_pair(r.spec->tasks[0].fingerprint, r.spec->tasks[1].fingerprint);
  };
  const auto base = fingerprints("srv", 1);
  const auto other_command = fingerprints("srv2", 1);
  const auto more_instances = fingerprints("srv", 4);
  EXPECT_NE(base.first, other_command.first);
  EXPECT_EQ(base.second, other_command.second);
  EXPECT_EQ(base.first, more_instances.first);
}

// Given a service `from: worker` used by a cluster task and referred to by
// another, should mark it from_worker, keep the other fields at their
// defaults, and list it among the task's worker services; a job with only
// such services declares none of its own.
TEST(SpecServicesTest, FromWorkerNamesTheWorkersOwnService) {
  const LoadResult r = Load(R"(
version: 1
services:
  api: {from: worker}
  own: {command: x}
tasks:
  a: {backend: cluster, service: api}
  b: {run: "echo ${services.own.port} ${services.api.host}"}
  c: {run: "echo ${services.own.port}"}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.services.size(), 2u);
  const ServiceDecl& api = spec.services[0];
  EXPECT_TRUE(api.from_worker);
  EXPECT_TRUE(api.command.empty());
  EXPECT_EQ(api.where.line, 3);
  EXPECT_FALSE(spec.services[1].from_worker);
  ASSERT_EQ(spec.tasks.size(), 3u);
  EXPECT_EQ(Decode(spec.tasks[0]).service, "api");
  EXPECT_EQ(spec.tasks[0].services, (std::vector<std::string>{"api"}));
  EXPECT_EQ(spec.WorkerServices(spec.tasks[0]), (std::vector<std::string>{"api"}));
  EXPECT_EQ(spec.tasks[1].services, (std::vector<std::string>{"api", "own"}));
  EXPECT_EQ(spec.WorkerServices(spec.tasks[1]), (std::vector<std::string>{"api"}));
  EXPECT_TRUE(spec.WorkerServices(spec.tasks[2]).empty());
  EXPECT_TRUE(spec.DeclaresServices());

  const LoadResult only_worker = Load(R"(
version: 1
services: {api: {from: worker}}
tasks: {a: {backend: cluster, service: api}}
)");
  EXPECT_FALSE(Spec(only_worker).DeclaresServices());
}

// Given `from: worker` with other keys, or `from` naming anything but
// worker, should report each at its FILE:LINE:COL.
TEST(SpecServicesTest, FromWorkerTakesNoOtherKey) {
  const LoadResult extra = Load(R"(
version: 1
services:
  api: {from: worker, command: x, instances: 2}
tasks: {a: {backend: cluster, service: api}}
)");
  ASSERT_EQ(extra.errors.size(), 2u) << Dump(extra);
  EXPECT_EQ(extra.errors[0].ToString(),
            "job.yaml:3:23: 'command' in service 'api' does not go with 'from: worker': the "
            "worker's configuration declares that service");
  EXPECT_EQ(extra.errors[1].where.line, 3);
  EXPECT_EQ(extra.errors[1].where.column, 35);

  const LoadResult other = Load(R"(
version: 1
services: {api: {from: elsewhere}}
tasks: {a: {backend: cluster, service: api}}
)");
  EXPECT_TRUE(HasOnlyError(other, 2, 24, {"'from' in service 'api' must be 'worker'",
                                          "'elsewhere'"}));
}

// Given a `from: worker` service, should fingerprint its name and the flag
// only: a task's fingerprint differs from one using a declared service of
// that name, and from one using another worker service.
TEST(SpecServicesTest, FromWorkerFingerprint) {
  auto fingerprint = [](const std::string& services, const std::string& name) {
    const std::string yaml = "version: 1\nservices: {" + services +
                             "}\ntasks: {a: {backend: cluster, service: " + name + "}}\n";
    const LoadResult r = LoadString(yaml, "job.yaml", Options());
    EXPECT_TRUE(r.ok()) << Dump(r);
    return r.ok() ? r.spec->tasks[0].fingerprint : 0;
  };
  const uint64_t api = fingerprint("api: {from: worker}", "api");
  EXPECT_EQ(api, fingerprint("api: {from: worker}, other: {command: x}", "api"));
  EXPECT_NE(api, fingerprint("api: {command: x}", "api"));
  EXPECT_NE(api, fingerprint("db: {from: worker}", "db"));
  ServiceDecl a;
  a.name = "api";
  a.from_worker = true;
  ServiceDecl b = a;
  b.command = {"ignored"};
  EXPECT_EQ(a.Fingerprint(), b.Fingerprint());
}

// Given `services` that is not a map, should report it once and not repeat
// it for the tasks naming a service.
TEST(SpecServicesTest, UnreadableServicesReportedOnce) {
  const LoadResult r = Load(R"(
version: 1
services: [hello]
tasks: {a: {backend: cluster, service: hello}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 11, {"'services' must be a map"}));
}

// Given `backend: cluster` (once reserved), should accept it now and list
// it among the backends when a name is unknown.
TEST(SpecServicesTest, ClusterIsABackend) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: x, backend: klingon}}
)");
  EXPECT_TRUE(HasOnlyError(r, 2, 30, {"unknown backend 'klingon'", "cluster"}));
}

}  // namespace
}  // namespace drover::spec
