// core/protocol/security: key files, authorized_keys parsing, and which
// endpoints count as loopback. No sockets: the ZAP handler itself is tested
// with real processes in tests/integration/daemon_test.cc.
#include "core/protocol/security.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace drover::protocol {
namespace {

namespace fs = std::filesystem;

class KeyFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "drover-keys-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Write(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }
  fs::path dir_;
};

// Given a fresh key pair, should give 40-character Z85 keys whose public
// half is derived from the secret.
TEST(CurveKeysTest, GeneratedPairIsZ85AndConsistent) {
  auto keys = GenerateCurveKeyPair();
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_TRUE(IsZ85Key(keys->public_key));
  EXPECT_TRUE(IsZ85Key(keys->secret_key));
  EXPECT_NE(keys->public_key, keys->secret_key);
  auto derived = CurvePublicKey(keys->secret_key);
  ASSERT_TRUE(derived.ok());
  EXPECT_EQ(*derived, keys->public_key);
}

// Given strings of the wrong length or alphabet, should not take them for keys.
TEST(CurveKeysTest, RejectsWhatIsNotAKey) {
  EXPECT_FALSE(IsZ85Key(""));
  EXPECT_FALSE(IsZ85Key(std::string(39, 'a')));
  EXPECT_FALSE(IsZ85Key(std::string(40, '"')));  // not in the Z85 alphabet
  EXPECT_TRUE(IsZ85Key(std::string(40, 'a')));
}

// Given `drover keygen w1`, should write w1.key with mode 0600 and w1.pub,
// and read back the same keys.
TEST_F(KeyFilesTest, WriteKeyPairRoundTripsWithPrivateSecret) {
  auto keys = GenerateCurveKeyPair();
  ASSERT_TRUE(keys.ok());
  ASSERT_TRUE(WriteKeyPair(dir_ / "w1", *keys).ok());
  struct stat st = {};
  ASSERT_EQ(::stat((dir_ / "w1.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto secret = ReadSecretKeyFile(dir_ / "w1.key");
  auto pub = ReadPublicKeyFile(dir_ / "w1.pub");
  ASSERT_TRUE(secret.ok()) << secret.status().ToString();
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_EQ(*secret, keys->secret_key);
  EXPECT_EQ(*pub, keys->public_key);
}

// Given existing key files, should refuse to overwrite them.
TEST_F(KeyFilesTest, WriteKeyPairRefusesToOverwrite) {
  auto keys = GenerateCurveKeyPair();
  ASSERT_TRUE(keys.ok());
  Write(dir_ / "w1.pub", "precious\n");
  const Status s = WriteKeyPair(dir_ / "w1", *keys);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_FALSE(fs::exists(dir_ / "w1.key"));
  std::ifstream in(dir_ / "w1.pub");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "precious");
}

// Given an authorized_keys file with comments, blank lines, trailing
// comments and a key with a '#' inside, should read exactly the keys.
TEST(AuthorizedKeysTest, ParsesKeysCommentsAndHashKeys) {
  const std::string a(40, 'a');
  const std::string hash_key = std::string(21, 'b') + "#" + std::string(18, 'b');  // Z85
  auto keys = ParseAuthorizedKeys("# workers\n\n" + a + " w1\n  " + hash_key + "\n# end\n",
                                  "authorized_keys");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(*keys, (std::set<std::string>{a, hash_key}));
}

// Given a line that is neither a key nor a comment, should name the file,
// line and column.
TEST(AuthorizedKeysTest, BadLineNamesFileLineAndColumn) {
  auto keys = ParseAuthorizedKeys(std::string(40, 'a') + "\n  not-a-key\n", "ak");
  ASSERT_FALSE(keys.ok());
  EXPECT_NE(keys.status().message().find("ak:2:3: not a CURVE key"), std::string::npos)
      << keys.status().message();
}

// Given a key file with no key in it, should say so, naming the file.
TEST_F(KeyFilesTest, EmptyKeyFileIsAnError) {
  Write(dir_ / "empty.pub", "# nothing here\n");
  auto key = ReadPublicKeyFile(dir_ / "empty.pub");
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.status().message().find("empty.pub: holds no CURVE key"), std::string::npos);
}

// Given endpoints, should call only those reachable from this host alone
// loopback.
TEST(LoopbackTest, OnlyLocalEndpointsAreLoopback) {
  EXPECT_TRUE(IsLoopbackEndpoint("tcp://127.0.0.1:7700"));
  EXPECT_TRUE(IsLoopbackEndpoint("tcp://127.1.2.3:0"));
  EXPECT_TRUE(IsLoopbackEndpoint("tcp://localhost:7700"));
  EXPECT_TRUE(IsLoopbackEndpoint("tcp://[::1]:7700"));
  EXPECT_TRUE(IsLoopbackEndpoint("inproc://drover"));
  EXPECT_TRUE(IsLoopbackEndpoint("ipc:///tmp/drover.sock"));
  EXPECT_FALSE(IsLoopbackEndpoint("tcp://0.0.0.0:7700"));
  EXPECT_FALSE(IsLoopbackEndpoint("tcp://*:7700"));
  EXPECT_FALSE(IsLoopbackEndpoint("tcp://eth0:7700"));
  EXPECT_FALSE(IsLoopbackEndpoint("tcp://10.0.0.5:7700"));
  EXPECT_FALSE(IsLoopbackEndpoint("tcp://127.evil.com:7700"));
  EXPECT_FALSE(IsLoopbackEndpoint("tcp://[::]:7700"));
}

}  // namespace
}  // namespace drover::protocol
