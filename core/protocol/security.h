// CurveZMQ for drover's TCP endpoints (docs/operations.md, "Security").
//
// Keys are Z85 text (40 characters for 32 bytes), as libzmq prints them:
//   NAME.key  the secret key, mode 0600 (`drover keygen NAME`)
//   NAME.pub  the public key
//   authorized_keys  the public keys the coordinator accepts, one per line
// The coordinator's ROUTER is a CURVE server whose ZAP handler (ZapHandler,
// below) accepts only the authorized keys; workers and clients are CURVE
// clients that know the coordinator's public key.
//
// Nothing here throws: cppzmq and libzmq errors come back as a Status.
#ifndef DROVER_CORE_PROTOCOL_SECURITY_H_
#define DROVER_CORE_PROTOCOL_SECURITY_H_

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "core/base/status.h"
#include "core/protocol/roles.h"

namespace drover::protocol {

inline constexpr size_t kZ85KeyLength = 40;
// The ZAP domain the coordinator's socket announces; logged by the handler.
inline constexpr std::string_view kZapDomain = "drover";

struct CurveKeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};

// A fresh key pair from libzmq (libsodium). kUnavailable when libzmq was
// built without CURVE.
Result<CurveKeyPair> GenerateCurveKeyPair();
// The public key of a Z85 secret key. kInvalidArgument when it is not one.
Result<std::string> CurvePublicKey(const std::string& secret_z85);
// True when `text` is 40 characters of Z85 that decode to 32 bytes.
bool IsZ85Key(std::string_view text);

// Writes `prefix`.key (the secret, created with mode 0600) and `prefix`.pub.
// Refuses (kAlreadyExists) to overwrite either file. On failure no key file
// is left behind.
Status WriteKeyPair(const std::filesystem::path& prefix, const CurveKeyPair& keys);

// Reads a key file: the first line that is not empty and not a comment
// (a line starting with '#') holds the key as its first word. Errors name the file and line. ReadSecretKeyFile also logs a
// warning when group or others may read the file (a Docker secret is
// mounted 0444, so refusing, as ssh does, would break that deployment).
Result<std::string> ReadSecretKeyFile(const std::filesystem::path& path);
Result<std::string> ReadPublicKeyFile(const std::filesystem::path& path);
// One line of authorized_keys (docs/security.md, "Keys and roles"):
//
//   KEY [role=ROLE] [NAME...]
//
// KEY is the Z85 public key; `role=ROLE`, when present, is the second
// word, ROLE one of read, submit, worker, admin; the rest of the line is
// the key's name (free text, shown as who submitted a job). Before roles
// existed the rest of the line was a free comment, so an old file reads as
// keys with names and no roles; and an older drover reads `role=worker`
// as part of the comment, so a file with roles works with it too.
struct AuthorizedKey {
  std::string key;        // Z85
  Role role = Role::kRead;
  bool role_given = false;  // false: no role= on its line, so kDefaultRole
  std::string name;       // "" when the line has none
  int line = 0;           // 1-based, in its file
};
// The role of a key listed without one: the least, so that an old file
// lets no key do more than read; the warnings say how to give roles.
inline constexpr Role kDefaultRole = Role::kRead;

struct AuthorizedKeys {
  std::map<std::string, AuthorizedKey> keys;  // by key
  // For the log: one line per key listed without a role, naming the file,
  // the line, the key, the role it gets and how to give it one.
  std::vector<std::string> warnings;
};

// Parses authorized_keys text: lines as above, blank lines and '#'
// comments. A key listed twice must have the same role both times. Errors
// are "FILE:LINE:COL: message".
Result<AuthorizedKeys> ParseAuthorizedKeys(std::string_view text, const std::string& file);
Result<AuthorizedKeys> ReadAuthorizedKeys(const std::filesystem::path& path);

// Socket options, set before bind/connect. The server side also sets the ZAP
// domain so that libzmq asks the ZAP handler about every client.
Status ConfigureCurveServer(zmq::socket_t& socket, const std::string& secret_z85);
Status ConfigureCurveClient(zmq::socket_t& socket, const std::string& secret_z85,
                            const std::string& server_public_z85);

// Whether an endpoint can only be reached from this host: inproc://, ipc://,
// and tcp:// on 127.0.0.0/8, ::1 or localhost. tcp://*, 0.0.0.0, an
// interface name or any other address are not.
bool IsLoopbackEndpoint(std::string_view endpoint);

// Empty when `endpoint` is one drover can bind or connect: tcp://HOST:PORT
// (PORT 0 to 65535, or * to bind any), ipc://PATH or inproc://NAME; else
// why not ("tcp://127.0.0.1:99999: the port is not 0 to 65535"). ZeroMQ
// itself would take a port above 65535 modulo 65536.
std::string EndpointProblem(std::string_view endpoint);

// The ZAP handler (ZeroMQ RFC 27) of one zmq context: a REP socket on
// inproc://zeromq.zap.01, served by a thread of its own, that accepts a
// CURVE client only when its public key is in the authorized_keys file.
// Its reply names the key as the User-Id and carries the key's role and
// name as the metadata properties kRoleProperty and kKeyNameProperty
// (roles.h), which libzmq attaches to every message of the connection.
// The file is read again when its modification time changes, so a key can
// be added, revoked or given another role without a restart; each applies
// to the connections made after the change (ZAP is asked once, at the
// handshake). A file that then fails to parse keeps the previous list and
// is logged; keys without a role are logged as warnings at every load.
// Every refusal is logged with the peer's address and key. Other
// mechanisms (NULL, PLAIN) are refused.
//
// Start it before binding a socket that uses it. Destroying it stops the
// thread (within its 100 ms poll). Thread-safe counters.
class ZapHandler {
 public:
  // Binds the handler's socket and starts its thread. Fails when the file
  // cannot be read or parsed, or another handler is bound in `context`.
  static Result<std::unique_ptr<ZapHandler>> Start(zmq::context_t& context,
                                                   std::filesystem::path authorized_keys);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  uint64_t accepted() const { return accepted_.load(); }
  uint64_t refused() const { return refused_.load(); }

 private:
  class Impl;
  ZapHandler() = default;
  std::unique_ptr<Impl> impl_;
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
};

}  // namespace drover::protocol

#endif  // DROVER_CORE_PROTOCOL_SECURITY_H_
