// The cache key (core/coordinator/cache_key.h): its digest, its parts and
// their JSON, and the phrase `drover explain` makes of a difference.
#include "core/coordinator/cache_key.h"

#include <gtest/gtest.h>

namespace drover::cache {
namespace {

KeyPart Input(std::string path, std::string sha) {
  return KeyPart{PartKind::kInput, "", std::move(path), std::move(sha)};
}

std::vector<KeyPart> SomeParts() {
  return {DefinitionPart(0x0123456789abcdefull), Input("src/a.c", std::string(64, 'a')),
          KeyPart{PartKind::kOutput, "build", "version", std::string(64, 'b')},
          KeyPart{PartKind::kArtifact, "gen", "out/data.txt", std::string(64, 'c')}};
}

// Given the same parts twice, the key should be the same 64 hex digits;
// given any part changed, moved or split differently, another key.
TEST(CacheKeyTest, KeyIsStableAndSensitiveToEveryPart) {
  const CacheKey a = MakeKey(SomeParts());
  EXPECT_EQ(a.key, MakeKey(SomeParts()).key);
  ASSERT_EQ(a.key.size(), 64u);
  EXPECT_EQ(a.key.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(a.parts, SomeParts());

  std::vector<KeyPart> changed = SomeParts();
  changed[2].value[0] = 'x';
  EXPECT_NE(MakeKey(changed).key, a.key);
  std::vector<KeyPart> swapped = SomeParts();
  std::swap(swapped[1], swapped[2]);
  EXPECT_NE(MakeKey(swapped).key, a.key);
  // Length prefixes: moving a character between task and name differs.
  std::vector<KeyPart> split = SomeParts();
  split[2].task = "buil";
  split[2].name = "dversion";
  EXPECT_NE(MakeKey(split).key, a.key);
  EXPECT_EQ(DefinitionPart(0x0123456789abcdefull).value, "0123456789abcdef");
}

// Given patterns and the client's hashes, the input parts should list each
// matched file once, by path; a pattern without hashes should say so.
TEST(CacheKeyTest, InputPartsMergeFilesByPath) {
  InputHashes hashes;
  hashes["src/*.c"] = {{"src/a.c", "1"}, {"src/b.c", "2"}};
  hashes["src/a.c"] = {{"src/a.c", "1"}};
  std::vector<KeyPart> parts;
  EXPECT_EQ(InputParts({"src/a.c", "src/*.c"}, hashes, &parts), "");
  EXPECT_EQ(parts, (std::vector<KeyPart>{Input("src/a.c", "1"), Input("src/b.c", "2")}));
  parts.clear();
  const std::string why = InputParts({"src/*.c", "lib/*.c"}, hashes, &parts);
  EXPECT_NE(why.find("no hashes for input 'lib/*.c'"), std::string::npos) << why;
}

// Given two keys' parts, FirstChange should name the first difference in
// key order: the definition, then inputs (changed, added, removed), then
// upstream outputs and artifacts; nothing for equal parts.
TEST(CacheKeyTest, FirstChangeNamesThePart) {
  const std::vector<KeyPart> before = SomeParts();
  EXPECT_EQ(FirstChange(before, before), "");

  std::vector<KeyPart> now = SomeParts();
  now[0] = DefinitionPart(1);
  now[1].value = "changed";
  EXPECT_EQ(FirstChange(before, now), "definition changed");

  now = SomeParts();
  now[1].value = "changed";
  now[2].value = "changed";
  EXPECT_EQ(FirstChange(before, now), "input src/a.c changed");

  now = SomeParts();
  now.insert(now.begin() + 2, Input("src/b.c", "new"));
  EXPECT_EQ(FirstChange(before, now), "input src/b.c added");

  now = SomeParts();
  now.erase(now.begin() + 1);
  EXPECT_EQ(FirstChange(before, now), "input src/a.c removed");

  now = SomeParts();
  now[2].value = "changed";
  EXPECT_EQ(FirstChange(before, now), "upstream build's output version changed");

  now = SomeParts();
  now[3].value = "changed";
  EXPECT_EQ(FirstChange(before, now), "upstream gen's artifact out/data.txt changed");
}

// Given parts and input hashes, their JSON should read back equal; text
// that is not such JSON should give nullopt.
TEST(CacheKeyTest, JsonRoundTrips) {
  EXPECT_EQ(PartsFromJson(PartsToJson(SomeParts())), SomeParts());
  EXPECT_FALSE(PartsFromJson("{}").has_value());
  EXPECT_FALSE(PartsFromJson("[{\"kind\": \"nope\", \"task\": \"\", \"name\": \"\", "
                             "\"value\": \"\"}]")
                   .has_value());
  EXPECT_FALSE(PartsFromJson("not json").has_value());

  InputHashes hashes;
  hashes["src/*.c"] = {{"src/a.c", "1"}, {"src/b.c", "2"}};
  hashes["empty/*"] = {};
  EXPECT_EQ(InputHashesFromJson(InputHashesToJson(hashes)), hashes);
  EXPECT_EQ(InputHashesFromJson(""), InputHashes());
  EXPECT_FALSE(InputHashesFromJson("[1]").has_value());
  EXPECT_FALSE(InputHashesFromJson("{\"p\": [[\"a\"]]}").has_value());
}

}  // namespace
}  // namespace drover::cache
