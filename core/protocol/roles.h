// What a connected peer may ask of the coordinator (docs/security.md, "Keys
// and roles"). Each key in authorized_keys has one role; the ZAP handler
// (security.h) hands it to libzmq with the connection, the codec reads it
// back from every message (Message::peer), and the coordinator refuses a
// command outside it before the command's handler runs.
//
//   role    may send
//   read    WATCH, STATUS, WORKERS, LOGS-REQUEST, PIPELINES, and artifact downloads
//           (ARTIFACT-GET, ARTIFACT-CREDIT, ARTIFACT-DONE)
//   submit  what read may, SUBMIT and PIPELINE-RUN
//   worker  HELLO and what a registered worker sends (HEARTBEAT, RESULT,
//           OUTPUT, DRAINING, DISCONNECT, SERVICE-RELOADED, ERROR,
//           ARTIFACT-PUT, ARTIFACT-CHUNK), and artifact downloads
//   admin   everything: the above, CANCEL-JOB, RETRY-JOB, SERVICE-RELOAD
//
// A connection without ZAP (inproc://, `drover run`, and tcp:// with
// --insecure) has no key and is admin, as before roles existed.
#ifndef DROVER_CORE_PROTOCOL_ROLES_H_
#define DROVER_CORE_PROTOCOL_ROLES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace drover::protocol {

enum class Command : uint8_t;  // codec.h, which includes this file

// kNone is never written in authorized_keys: it is what a message whose
// ZAP metadata names no known role gets (fail closed).
enum class Role : uint8_t { kNone, kRead, kSubmit, kWorker, kAdmin };

// "read", "submit", "worker", "admin" ("none" for kNone).
std::string_view RoleName(Role role);
// The role of a name written in authorized_keys; nullopt for any other
// text, including "none".
std::optional<Role> ParseRole(std::string_view name);
// Whether a peer of `role` may send `command` to the coordinator. Commands
// the coordinator never receives (WELCOME, DISPATCH, ...) count as a
// worker's: they reach the handling of unexpected worker messages.
bool RoleAllows(Role role, Command command);
// What `role` may send, for error messages: "STATUS, WORKERS, LOGS and
// WATCH", ...
std::string_view RoleSummary(Role role);

// The ZAP metadata properties (ZeroMQ RFC 27 reply, frame 6) by which the
// handler names the key's role and name. libzmq puts ZAP properties in a
// connection's metadata before those the peer announces itself, so a peer
// cannot replace them.
inline constexpr const char* kRoleProperty = "X-Drover-Role";
inline constexpr const char* kKeyNameProperty = "X-Drover-Key-Name";

}  // namespace drover::protocol

#endif  // DROVER_CORE_PROTOCOL_ROLES_H_
