// artifacts::Sha256 (core/artifacts/sha256.h), drover's one SHA-256: the
// artifact store's blob names, cache keys and the `sha256` built-in. A thin
// wrapper over libcrypto, held here to the FIPS 180-4 example vectors and
// to incremental hashing across block and padding boundaries.
#include "core/artifacts/sha256.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace drover::artifacts {
namespace {

// Given the FIPS 180-4 example messages, should produce their published digests.
TEST(Sha256Test, MatchesFips180Vectors) {
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1'000'000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Given a message fed in two pieces split at every offset (across block and
// padding boundaries), should give the same digest as in one piece.
TEST(Sha256Test, IncrementalUpdatesMatchOneShot) {
  std::string message;
  for (int i = 0; i < 200; ++i) message.push_back(static_cast<char>('a' + i % 26));
  const std::string expected = Sha256Hex(message);
  for (size_t split = 0; split <= message.size(); ++split) {
    Sha256 h;
    h.Update(std::string_view(message).substr(0, split));
    h.Update(std::string_view(message).substr(split));
    ASSERT_EQ(h.Final(), expected) << "split at " << split;
  }
  // 55, 56 and 64 bytes sit on the padding's edge cases.
  EXPECT_TRUE(IsSha256Hex(Sha256Hex(std::string(55, 'x'))));
  EXPECT_NE(Sha256Hex(std::string(55, 'x')), Sha256Hex(std::string(56, 'x')));
  EXPECT_NE(Sha256Hex(std::string(56, 'x')), Sha256Hex(std::string(64, 'x')));
}

// Given a file larger than one read block, Sha256File should hash all of
// it; given a missing file, it should fail naming the file.
TEST(Sha256Test, FileHashesEveryBlockAndNamesAMissingFile) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("drover-sha256-test-" + std::to_string(::getpid()));
  const std::string content((1 << 20) + 123, 'q');
  std::ofstream(path, std::ios::binary) << content;
  const Result<std::string> hashed = Sha256File(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(hashed.ok()) << hashed.status().ToString();
  EXPECT_EQ(*hashed, Sha256Hex(content));

  const Result<std::string> missing = Sha256File(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(path.string()), std::string::npos);
}

}  // namespace
}  // namespace drover::artifacts
