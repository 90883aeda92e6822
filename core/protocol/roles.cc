#include "core/protocol/roles.h"

#include "core/protocol/codec.h"

namespace drover::protocol {
namespace {

// What each command asks for; a role is a set of these.
// kFetch is for the downloads of artifacts, which workers (staging inputs)
// and readers (`drover artifacts get`) both make.
enum class Permission { kRead, kSubmit, kControl, kWork, kFetch };

Permission Needed(Command command) {
  switch (command) {
    case Command::kWatch:
    case Command::kStatusRequest:
    case Command::kWorkersRequest:
    case Command::kLogsRequest:
    case Command::kPipelinesRequest:
      return Permission::kRead;
    case Command::kSubmit:
    case Command::kPipelineRun:
      return Permission::kSubmit;
    case Command::kCancelJob:
    case Command::kRetryJob:
    case Command::kServiceReload:
      return Permission::kControl;
    case Command::kArtifactGet:
    case Command::kArtifactCredit:
    case Command::kArtifactDone:
      return Permission::kFetch;
    default:
      return Permission::kWork;
  }
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kRead: return "read";
    case Role::kSubmit: return "submit";
    case Role::kWorker: return "worker";
    case Role::kAdmin: return "admin";
    case Role::kNone: break;
  }
  return "none";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kRead, Role::kSubmit, Role::kWorker, Role::kAdmin}) {
    if (name == RoleName(r)) return r;
  }
  return std::nullopt;
}

bool RoleAllows(Role role, Command command) {
  const Permission p = Needed(command);
  switch (role) {
    case Role::kAdmin: return true;
    case Role::kWorker: return p == Permission::kWork || p == Permission::kFetch;
    case Role::kSubmit:
      return p == Permission::kRead || p == Permission::kSubmit || p == Permission::kFetch;
    case Role::kRead: return p == Permission::kRead || p == Permission::kFetch;
    case Role::kNone: break;
  }
  return false;
}

std::string_view RoleSummary(Role role) {
  switch (role) {
    case Role::kRead: return "STATUS, WORKERS, LOGS, WATCH and artifact downloads";
    case Role::kSubmit: return "SUBMIT, STATUS, WORKERS, LOGS, WATCH and artifact downloads";
    case Role::kWorker: return "HELLO and a registered worker's messages";
    case Role::kAdmin: return "everything";
    case Role::kNone: break;
  }
  return "nothing";
}

}  // namespace drover::protocol
