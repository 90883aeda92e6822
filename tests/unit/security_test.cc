// core/protocol/security and roles: key files, authorized_keys parsing with
// roles, what each role may send, and which endpoints count as loopback. No
// sockets: the ZAP handler itself is tested with real processes in
// tests/integration/daemon_test.cc and roles_test.cc.
#include "core/protocol/security.h"

#include "core/protocol/codec.h"
#include "core/protocol/roles.h"

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
  ASSERT_EQ(keys->keys.size(), 2u);
  EXPECT_EQ(keys->keys.count(a), 1u);
  EXPECT_EQ(keys->keys.count(hash_key), 1u);
  EXPECT_EQ(keys->keys.at(a).name, "w1");
  EXPECT_EQ(keys->keys.at(hash_key).name, "");
}

// Given a line that is neither a key nor a comment, should name the file,
// line and column.
TEST(AuthorizedKeysTest, BadLineNamesFileLineAndColumn) {
  auto keys = ParseAuthorizedKeys(std::string(40, 'a') + "\n  not-a-key\n", "ak");
  ASSERT_FALSE(keys.ok());
  EXPECT_NE(keys.status().message().find("ak:2:3: not a CURVE key"), std::string::npos)
      << keys.status().message();
}

// Given `KEY role=ROLE NAME` lines for each role, should read each key's
// role and its name (the rest of the line, spaces kept), with no warning.
TEST(AuthorizedKeysTest, ReadsRoleAndNameOfEachKey) {
  const std::string w(40, 'w'), s(40, 's'), r(40, 'r'), a(40, 'a');
  auto keys = ParseAuthorizedKeys(w + " role=worker worker\n" + s + "\trole=submit  ci runner 2 \n" +
                                      r + " role=read\n" + a + " role=admin ops\n",
                                  "ak");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_TRUE(keys->warnings.empty());
  EXPECT_EQ(keys->keys.at(w).role, Role::kWorker);
  EXPECT_EQ(keys->keys.at(w).name, "worker");
  EXPECT_EQ(keys->keys.at(s).role, Role::kSubmit);
  EXPECT_EQ(keys->keys.at(s).name, "ci runner 2");
  EXPECT_EQ(keys->keys.at(r).role, Role::kRead);
  EXPECT_EQ(keys->keys.at(r).name, "");
  EXPECT_EQ(keys->keys.at(a).role, Role::kAdmin);
  EXPECT_EQ(keys->keys.at(a).line, 4);
  for (const auto& [key, k] : keys->keys) EXPECT_TRUE(k.role_given) << key;
}

// Given a file written before roles (`KEY NAME`, as `drover keygen`'s .pub
// and the compose deployment's lines are), should give every key the least
// role, read, keep the comment as its name, and warn once per key naming
// the file, line, key and how to give a role.
TEST(AuthorizedKeysTest, KeyWithoutRoleMayOnlyReadAndIsWarnedAbout) {
  const std::string w(40, 'w'), c(40, 'c');
  auto keys = ParseAuthorizedKeys("# old file\n" + w + " worker\n" + c + "\n", "ak");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(kDefaultRole, Role::kRead);
  EXPECT_EQ(keys->keys.at(w).role, Role::kRead);
  EXPECT_FALSE(keys->keys.at(w).role_given);
  EXPECT_EQ(keys->keys.at(w).name, "worker");  // a comment, not a role
  EXPECT_EQ(keys->keys.at(c).role, Role::kRead);
  ASSERT_EQ(keys->warnings.size(), 2u);
  EXPECT_NE(keys->warnings[0].find("ak:2: key " + w + " (worker) has no role, so it may only read"),
            std::string::npos)
      << keys->warnings[0];
  EXPECT_NE(keys->warnings[0].find("KEY role=ROLE NAME"), std::string::npos) << keys->warnings[0];
  EXPECT_NE(keys->warnings[1].find("ak:3: key " + c + " has no role"), std::string::npos)
      << keys->warnings[1];
}

// Given an unknown role, a role written after the name, or a key listed
// twice with two roles, should refuse the file naming FILE:LINE:COL.
TEST(AuthorizedKeysTest, BadRolesNameFileLineAndColumn) {
  const std::string k(40, 'k');
  auto unknown = ParseAuthorizedKeys(k + " role=root ops\n", "ak");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find(
                "ak:1:42: unknown role 'root' (roles: read, submit, worker, admin)"),
            std::string::npos)
      << unknown.status().message();
  EXPECT_FALSE(ParseAuthorizedKeys(k + " role=\n", "ak").ok());
  EXPECT_FALSE(ParseAuthorizedKeys(k + " role=none\n", "ak").ok());

  auto late = ParseAuthorizedKeys("\n" + k + " ops role=admin\n", "ak");
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.status().message().find("ak:2:46: 'role=admin' must come right after the key"),
            std::string::npos)
      << late.status().message();

  auto twice = ParseAuthorizedKeys(k + " role=read a\n" + k + " role=admin b\n", "ak");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find(
                "ak:2:1: key listed on line 1 as read is listed again as admin"),
            std::string::npos)
      << twice.status().message();
  // The same role twice is harmless (an appended copy of a line).
  auto same = ParseAuthorizedKeys(k + " role=read a\n" + k + " role=read a\n", "ak");
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->keys.size(), 1u);
}

// Given each role, should allow exactly the commands of the table in
// docs/security.md; an unknown role (kNone) nothing.
TEST(RolesTest, EachRoleAllowsItsCommandsOnly) {
  using C = Command;
  const C read[] = {C::kWatch, C::kStatusRequest, C::kWorkersRequest, C::kLogsRequest};
  const C control[] = {C::kCancelJob, C::kRetryJob, C::kServiceReload};
  const C work[] = {C::kHello,    C::kResult,     C::kOutput,          C::kHeartbeat,
                    C::kDraining, C::kDisconnect, C::kServiceReloaded, C::kError};
  for (C c : read) {
    EXPECT_TRUE(RoleAllows(Role::kRead, c)) << CommandName(c);
    EXPECT_TRUE(RoleAllows(Role::kSubmit, c)) << CommandName(c);
    EXPECT_FALSE(RoleAllows(Role::kWorker, c)) << CommandName(c);
    EXPECT_TRUE(RoleAllows(Role::kAdmin, c)) << CommandName(c);
  }
  EXPECT_FALSE(RoleAllows(Role::kRead, C::kSubmit));
  EXPECT_TRUE(RoleAllows(Role::kSubmit, C::kSubmit));
  EXPECT_FALSE(RoleAllows(Role::kWorker, C::kSubmit));
  EXPECT_TRUE(RoleAllows(Role::kAdmin, C::kSubmit));
  for (C c : control) {
    EXPECT_FALSE(RoleAllows(Role::kRead, c)) << CommandName(c);
    EXPECT_FALSE(RoleAllows(Role::kSubmit, c)) << CommandName(c);
    EXPECT_FALSE(RoleAllows(Role::kWorker, c)) << CommandName(c);
    EXPECT_TRUE(RoleAllows(Role::kAdmin, c)) << CommandName(c);
  }
  for (C c : work) {
    EXPECT_FALSE(RoleAllows(Role::kRead, c)) << CommandName(c);
    EXPECT_FALSE(RoleAllows(Role::kSubmit, c)) << CommandName(c);
    EXPECT_TRUE(RoleAllows(Role::kWorker, c)) << CommandName(c);
    EXPECT_TRUE(RoleAllows(Role::kAdmin, c)) << CommandName(c);
  }
  for (C c : read) EXPECT_FALSE(RoleAllows(Role::kNone, c));
  EXPECT_FALSE(RoleAllows(Role::kNone, C::kHello));
  // Names round-trip; "none" cannot be written.
  for (Role r : {Role::kRead, Role::kSubmit, Role::kWorker, Role::kAdmin}) {
    EXPECT_EQ(ParseRole(RoleName(r)), r);
  }
  EXPECT_EQ(ParseRole("none"), std::nullopt);
  EXPECT_EQ(ParseRole("Admin"), std::nullopt);
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

// Given endpoints, should accept those ZeroMQ takes as written and name
// what is wrong with the others: above all a port over 65535, which
// ZeroMQ would bind modulo 65536.
TEST(EndpointTest, PortsOutOfRangeAndNonEndpointsAreNamed) {
  for (const char* ok :
       {"tcp://127.0.0.1:0", "tcp://127.0.0.1:65535", "tcp://*:7700", "tcp://0.0.0.0:*",
        "tcp://[::1]:7700", "tcp://eth0:7700", "tcp://127.0.0.1:7701;127.0.0.1:7700",
        "ipc:///tmp/d.sock", "inproc://drover"}) {
    EXPECT_EQ(EndpointProblem(ok), "") << ok;
  }
  EXPECT_EQ(EndpointProblem("tcp://127.0.0.1:99999"),
            "tcp://127.0.0.1:99999: the port '99999' is not 0 to 65535 (or *)");
  EXPECT_EQ(EndpointProblem("tcp://127.0.0.1:65536"),
            "tcp://127.0.0.1:65536: the port '65536' is not 0 to 65535 (or *)");
  EXPECT_EQ(EndpointProblem("tcp://127.0.0.1:x1"),
            "tcp://127.0.0.1:x1: the port 'x1' is not 0 to 65535 (or *)");
  EXPECT_EQ(EndpointProblem("tcp://127.0.0.1"),
            "tcp://127.0.0.1: tcp:// needs HOST:PORT");
  EXPECT_EQ(EndpointProblem("garbage"),
            "garbage: not an endpoint (tcp://HOST:PORT, ipc://PATH or inproc://NAME)");
  EXPECT_EQ(EndpointProblem("ipc://"), "ipc://: the name after :// is empty");
}

}  // namespace
}  // namespace drover::protocol
