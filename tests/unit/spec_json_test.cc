// core/spec: YAML values as JSON text (a threads task's `args`, a fork
// task's `message`): scalar typing, escaping, aliases and `${matrix.KEY}`
// interpolation (docs/spec.md, "args and message").
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "core/spec/job_spec.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using test_util::Decode;
using test_util::Load;
using test_util::Options;
using test_util::Spec;


// The args_json of the only task of `yaml` (a threads task with `fn: f`).
std::string ArgsJson(const std::string& args_yaml) {
  const LoadResult r =
      Load("version: 1\ntasks:\n  a:\n    backend: threads\n    fn: f\n    args:" + args_yaml);
  const JobSpec& spec = Spec(r);
  return spec.tasks.empty() ? "<no task>" : Decode(spec.tasks[0]).args_json;
}
// ------------------------------------------------------------ YAML -> JSON

// Given scalars of every core-schema type, should type plain ones and keep
// quoted, block and tagged ones strings, numbers in JSON's grammar.
TEST(SpecJsonTest, ScalarTyping) {
  EXPECT_EQ(ArgsJson(R"(
      - null
      - ~
      -
      - Null
      - true
      - False
      - TRUE
      - yes
      - off
      - 42
      - -7
      - +5
      - 007
      - 0x1F
      - 0o17
      - 18446744073709551616
      - 1.5
      - .5
      - -.5e-3
      - 5.
      - 1E+3
      - 1_000
      - 1.2.3
      - 0x
      - "5"
      - 'true'
      - "null"
      - !!str 5
      - |
        block
      - hello world
)"),
            "[null,null,null,null,true,false,true,\"yes\",\"off\",42,-7,5,7,31,15,"
            "18446744073709551616,1.5,0.5,-0.5e-3,5,1E+3,\"1_000\",\"1.2.3\",\"0x\",\"5\","
            "\"true\",\"null\",\"5\",\"block\\n\",\"hello world\"]");
}

// Given strings that need escaping and multi-byte characters, should
// escape quotes, backslashes and control characters, and pass UTF-8.
TEST(SpecJsonTest, StringEscaping) {
  EXPECT_EQ(ArgsJson(R"( "q\"b\\s\n\t\r\x01 \u00e9 \U0001F600")"),
            "\"q\\\"b\\\\s\\n\\t\\r\\u0001 \xC3\xA9 \xF0\x9F\x98\x80\"");
}

// Given nested maps and lists, should keep file order, make every key a
// string, and write {} and [] for empty ones.
TEST(SpecJsonTest, MapsAndSequences) {
  EXPECT_EQ(ArgsJson(R"(
      zeta: 1
      alpha: [1, [2, {x: y}], []]
      1: one
      true: false
      "quoted key": {}
      empty:
)"),
            R"({"zeta":1,"alpha":[1,[2,{"x":"y"}],[]],"1":"one","true":false,)"
            R"("quoted key":{},"empty":null})");
}

// Given a scalar args, should give that one JSON value.
TEST(SpecJsonTest, ScalarArgs) {
  EXPECT_EQ(ArgsJson(" 30"), "30");
  EXPECT_EQ(ArgsJson(" abc"), "\"abc\"");
  EXPECT_EQ(ArgsJson(""), "null");
}

// Given YAML anchors and aliases, should repeat the aliased value.
TEST(SpecJsonTest, AliasesRepeatTheValue) {
  EXPECT_EQ(ArgsJson(R"(
      a: &v {n: [1, 2]}
      b: *v
)"),
            R"({"a":{"n":[1,2]},"b":{"n":[1,2]}})");
}

// Given `${matrix.KEY}` alone and inside text, should keep the matrix
// value's type when alone (quoted or not) and make a string otherwise,
// escaping the value; other `$` text stays as written.
TEST(SpecJsonTest, MatrixInterpolation) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    backend: threads
    fn: f
    matrix:
      n: [1, "2", x, 'a"b', true]
    args:
      whole: ${matrix.n}
      quoted: "${matrix.n}"
      text: n-${matrix.n}!
      list: ["${matrix.n}${matrix.n}", "${HOME}"]
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 5u);
  EXPECT_EQ(Decode(spec.tasks[0]).args_json,
            R"({"whole":1,"quoted":1,"text":"n-1!","list":["11","${HOME}"]})");
  EXPECT_EQ(Decode(spec.tasks[1]).args_json,
            R"({"whole":"2","quoted":"2","text":"n-2!","list":["22","${HOME}"]})");
  EXPECT_EQ(Decode(spec.tasks[2]).args_json,
            R"({"whole":"x","quoted":"x","text":"n-x!","list":["xx","${HOME}"]})");
  EXPECT_EQ(Decode(spec.tasks[3]).args_json,
            R"({"whole":"a\"b","quoted":"a\"b","text":"n-a\"b!","list":["a\"ba\"b","${HOME}"]})");
  EXPECT_EQ(Decode(spec.tasks[4]).args_json,
            R"({"whole":true,"quoted":true,"text":"n-true!","list":["truetrue","${HOME}"]})");
}

// Given `${matrix.KEY}` in a fork task's message, should fill it per
// instance, and keep the rest of the message shared.
TEST(SpecJsonTest, MatrixInterpolationInMessage) {
  const LoadResult r = Load(R"(
version: 1
pools: {p: {command: x}}
tasks:
  send:
    backend: fork
    pool: p
    matrix: {shard: [0, 1], mode: [fast]}
    message:
      - ${matrix.shard}
      - mode=${matrix.mode}
)");
  const JobSpec& spec = Spec(r);
  ASSERT_EQ(spec.tasks.size(), 2u);
  EXPECT_EQ(spec.tasks[0].name, "send[shard=0,mode=fast]");
  EXPECT_EQ(Decode(spec.tasks[0]).message_json, R"([0,"mode=fast"])");
  EXPECT_EQ(Decode(spec.tasks[1]).message_json, R"([1,"mode=fast"])");
}

}  // namespace
}  // namespace drover::spec
